//! The shape of a mapping file: which keys each table takes and what type of value each
//! holds. Checked on the parsed TOML before serde sees it, so that every unknown key, wrong
//! type and missing key is reported in one pass, each with its key path and line, in the
//! words of the other mapping problems (serde would stop at the first, in its own words).

use crate::error::Problem;
use toml::de::{DeTable, DeValue};
use toml::Spanned;

/// What a key holds.
#[derive(Debug, Clone, Copy)]
enum Kind {
    Str,
    /// A string, one of these (checked later, with the accepted spellings in the message;
    /// listed here for the JSON Schema).
    Choice(&'static [&'static str]),
    /// A non-negative integer.
    UInt,
    /// A non-negative integer in this range (checked later, with the range in the message;
    /// given here for the JSON Schema).
    UIntIn(u64, u64),
    Bool,
    StrList,
    /// A list of whole numbers (negative ones too).
    IntList,
    /// `{ name = "text", ... }`
    StrTable,
    /// A string, or a list of strings.
    StrOrList,
    /// `{ name = <trait ID> or [<trait ID>, ...], ... }`
    UIntTable,
    Table(&'static [Key]),
    TableList(&'static [Key]),
}

#[derive(Debug, Clone, Copy)]
struct Key {
    name: &'static str,
    kind: Kind,
    /// What to say when a required key is missing; `None` for an optional key.
    required: Option<&'static str>,
}

const fn opt(name: &'static str, kind: Kind) -> Key {
    Key {
        name,
        kind,
        required: None,
    }
}

const fn req(name: &'static str, kind: Kind, what: &'static str) -> Key {
    Key {
        name,
        kind,
        required: Some(what),
    }
}

const INPUT: &[Key] = &[
    opt(
        "format",
        Kind::Choice(&[
            "csv", "parquet", "json", "ndjson", "jsonl", "ipc", "arrow", "feather",
        ]),
    ),
    opt("delimiter", Kind::Str),
    opt("quote", Kind::Str),
    opt("has_header", Kind::Bool),
    opt("null_values", Kind::StrList),
    opt(
        "encoding",
        Kind::Choice(&["utf-8", "latin-1", "windows-1252"]),
    ),
];

const OUTPUT: &[Key] = &[
    opt("dpid", Kind::UInt),
    opt("target_dpid", Kind::UInt),
    opt("mode", Kind::Choice(&["sync", "overwrite"])),
    opt("gzip", Kind::Bool),
    opt(
        "gzip_level",
        Kind::UIntIn(
            *crate::gzip::LEVELS.start() as u64,
            *crate::gzip::LEVELS.end() as u64,
        ),
    ),
    opt("max_part_bytes", Kind::UInt),
    opt("date_folder", Kind::Bool),
    opt("deliver", Kind::Str),
];

/// `IdType::name` of every ID type (a test keeps them equal).
const ID_TYPES: &[&str] = &[
    "aam_uuid", "dpuuid", "idfa", "gaid", "rida", "maid", "tifa", "fire_tv", "lgudid", "vizio",
];

const USER_ID: &[Key] = &[
    req(
        "column",
        Kind::StrOrList,
        "the column that holds the user ID, e.g. column = \"customer_id\"",
    ),
    req(
        "type",
        Kind::Choice(ID_TYPES),
        "the kind of ID, e.g. type = \"dpuuid\" (your own IDs) or \"gaid\"",
    ),
    opt("trim", Kind::Bool),
    opt("normalize_case", Kind::Bool),
    opt("hash", Kind::Choice(&["sha256"])),
    opt("template", Kind::Str),
    opt("latest_by", Kind::Str),
];

const RULE: &[Key] = &[
    req(
        "type",
        Kind::Choice(&["trait_ids", "flag", "condition", "value_map", "key_value"]),
        "the rule type: \"trait_ids\", \"flag\", \"condition\", \"value_map\" or \"key_value\"",
    ),
    opt("column", Kind::Str),
    opt("when", Kind::Str),
    opt("where", Kind::Str),
    opt("action", Kind::Choice(&["add", "remove"])),
    opt("form", Kind::Choice(&["d_sid", "ic", "ic_prefixed"])),
    opt("removal", Kind::Choice(&["d_unsid", "zero", "minus_one"])),
    opt("trait_id", Kind::UInt),
    opt("remove_when_false", Kind::Bool),
    opt("values", Kind::UIntTable),
    opt("removes", Kind::UIntTable),
    opt("ignore_case", Kind::Bool),
    opt("remove_when", Kind::Str),
    opt("unmapped", Kind::Choice(&["reject", "skip"])),
    opt("key", Kind::Str),
    opt("key_column", Kind::Str),
    opt("keys", Kind::StrList),
    opt("map", Kind::StrTable),
    opt("case", Kind::Choice(&["lower", "upper"])),
    opt("prefix", Kind::Str),
    opt("buckets", Kind::IntList),
    opt("pattern", Kind::Str),
    opt("latest_by", Kind::Str),
    opt("split", Kind::Str),
    opt("comma_replacement", Kind::Str),
];

const STATE: &[Key] = &[opt("path", Kind::Str), opt("refresh_days", Kind::UInt)];

const TAXONOMY: &[Key] = &[opt("path", Kind::Str)];

const SYNC_COLUMN: &[Key] = &[
    req(
        "column",
        Kind::Str,
        "the column that holds this data source's IDs",
    ),
    req(
        "dpid",
        Kind::UInt,
        "the data source (DPID) of the column's IDs",
    ),
];

const ID_SYNC: &[Key] = &[
    opt("type", Kind::Choice(&["adobe", "c2c"])),
    req(
        "columns",
        Kind::TableList(SYNC_COLUMN),
        "the ID columns, master first: columns = [{ column = \"aam_uuid\", dpid = 0 }, { column = \"crm_id\", dpid = 21 }]",
    ),
    opt("latest_by", Kind::Str),
];

const ROOT: &[Key] = &[
    opt("input", Kind::Table(INPUT)),
    req(
        "output",
        Kind::Table(OUTPUT),
        "an [output] table with at least the data source: dpid = 21",
    ),
    // Required unless the mapping is an [id_sync] one (see `check`).
    opt("user_id", Kind::Table(USER_ID)),
    opt("traits", Kind::TableList(RULE)),
    opt("state", Kind::Table(STATE)),
    opt("taxonomy", Kind::Table(TAXONOMY)),
    opt("id_sync", Kind::Table(ID_SYNC)),
];

/// Every problem with the shape of `text` (TOML syntax errors aside, which stop the parse).
pub(super) fn check(text: &str) -> Result<(), Vec<Problem>> {
    let root = DeTable::parse(text).map_err(|e| vec![syntax_problem(&e, text)])?;
    let mut found = Vec::new();
    let lines = Lines::new(text);
    check_table(root.get_ref(), root.span(), ROOT, "", &lines, &mut found);
    if found.is_empty() {
        Ok(())
    } else {
        // In the order of the file.
        found.sort_by_key(|(at, _)| *at);
        Err(found.into_iter().map(|(_, p)| p).collect())
    }
}

/// A TOML syntax error, with its line and column.
fn syntax_problem(e: &toml::de::Error, text: &str) -> Problem {
    let at = e.span().map_or(String::new(), |s| {
        let (line, column) = Lines::new(text).position(s.start);
        format!("line {line}, column {column}: ")
    });
    Problem::new("", format!("{at}{}", e.message()))
}

/// Byte offsets to line numbers.
struct Lines(Vec<usize>);

impl Lines {
    fn new(text: &str) -> Lines {
        Lines(
            std::iter::once(0)
                .chain(text.match_indices('\n').map(|(i, _)| i + 1))
                .collect(),
        )
    }

    /// 1-based line and column of byte `at`.
    fn position(&self, at: usize) -> (usize, usize) {
        let line = self.0.partition_point(|&start| start <= at);
        (line, at - self.0[line - 1] + 1)
    }

    fn line(&self, at: usize) -> usize {
        self.position(at).0
    }
}

type Found = Vec<(usize, Problem)>;

fn path_of(prefix: &str, name: &str) -> String {
    if prefix.is_empty() {
        name.to_owned()
    } else {
        format!("{prefix}.{name}")
    }
}

fn check_table(
    table: &DeTable,
    span: std::ops::Range<usize>,
    keys: &[Key],
    prefix: &str,
    lines: &Lines,
    found: &mut Found,
) {
    for (name, value) in table.iter() {
        let path = path_of(prefix, name.get_ref());
        let at = name.span().start;
        match keys.iter().find(|k| k.name == name.get_ref().as_ref()) {
            Some(key) => check_value(value, key.kind, &path, lines, found),
            None => {
                let names: Vec<String> = keys.iter().map(|k| k.name.to_owned()).collect();
                let hint = super::closest(name.get_ref(), &names)
                    .map(|c| format!("did you mean `{c}`? "))
                    .unwrap_or_default();
                found.push((
                    at,
                    Problem::new(
                        path,
                        format!(
                            "unknown key (line {}); {hint}expected one of {}",
                            lines.line(at),
                            names.join(", ")
                        ),
                    ),
                ));
            }
        }
    }
    for key in keys {
        if let Some(what) = key.required {
            if !table.iter().any(|(k, _)| k.get_ref() == key.name) {
                found.push((
                    span.start,
                    Problem::new(
                        path_of(prefix, key.name),
                        format!("missing (line {}): {what}", lines.line(span.start)),
                    ),
                ));
            }
        }
    }
}

fn check_value(value: &Spanned<DeValue>, kind: Kind, path: &str, lines: &Lines, found: &mut Found) {
    let at = value.span().start;
    let mut wrong = |expected: &str| {
        found.push((
            at,
            Problem::new(
                path,
                format!(
                    "expected {expected}, found {} (line {})",
                    describe(value.get_ref()),
                    lines.line(at)
                ),
            ),
        ));
    };
    match (kind, value.get_ref()) {
        (Kind::Str | Kind::Choice(_), DeValue::String(_)) | (Kind::Bool, DeValue::Boolean(_)) => {}
        (Kind::UInt | Kind::UIntIn(..), DeValue::Integer(i)) if !i.as_str().starts_with('-') => {}
        (Kind::Str | Kind::Choice(_), _) => wrong("a string"),
        (Kind::Bool, _) => wrong("true or false"),
        (Kind::UInt | Kind::UIntIn(..), _) => wrong("a whole number, 0 or more"),
        (Kind::StrList, DeValue::Array(items)) => {
            for (i, item) in items.iter().enumerate() {
                check_value(item, Kind::Str, &format!("{path}[{i}]"), lines, found);
            }
        }
        (Kind::StrList, _) => wrong("a list of strings"),
        (Kind::IntList, DeValue::Array(items)) => {
            for (i, item) in items.iter().enumerate() {
                if !matches!(item.get_ref(), DeValue::Integer(_)) {
                    let path = format!("{path}[{i}]");
                    found.push((
                        item.span().start,
                        Problem::new(
                            path,
                            format!(
                                "expected a whole number, found {} (line {})",
                                describe(item.get_ref()),
                                lines.line(item.span().start)
                            ),
                        ),
                    ));
                }
            }
        }
        (Kind::IntList, _) => wrong("a list of whole numbers"),
        (Kind::StrTable, DeValue::Table(t)) => {
            for (name, v) in t.iter() {
                let key = format!("{path}.{}", name.get_ref());
                check_value(v, Kind::Str, &key, lines, found);
            }
        }
        (Kind::StrTable, _) => wrong("a table of value = \"text\""),
        (Kind::StrOrList, DeValue::String(_)) => {}
        (Kind::StrOrList, DeValue::Array(_)) => {
            check_value(value, Kind::StrList, path, lines, found)
        }
        (Kind::StrOrList, _) => wrong("a string or a list of strings"),
        (Kind::UIntTable, DeValue::Table(t)) => {
            for (name, v) in t.iter() {
                let key = format!("{path}.{}", name.get_ref());
                match v.get_ref() {
                    DeValue::Array(ids) if !ids.is_empty() => {
                        for (i, id) in ids.iter().enumerate() {
                            check_value(id, Kind::UInt, &format!("{key}[{i}]"), lines, found);
                        }
                    }
                    _ => check_value(v, Kind::UInt, &key, lines, found),
                }
            }
        }
        (Kind::UIntTable, _) => wrong("a table of value = trait ID (or a list of them)"),
        (Kind::Table(keys), DeValue::Table(t)) => {
            check_table(t, value.span(), keys, path, lines, found);
        }
        (Kind::Table(_), _) => wrong("a table"),
        (Kind::TableList(keys), DeValue::Array(items)) => {
            for (i, item) in items.iter().enumerate() {
                let path = format!("{path}[{i}]");
                match item.get_ref() {
                    DeValue::Table(t) => check_table(t, item.span(), keys, &path, lines, found),
                    _ => check_value(item, Kind::Table(keys), &path, lines, found),
                }
            }
        }
        (Kind::TableList(_), _) => wrong("a list of tables ([[...]])"),
    }
}

/// The mapping's JSON Schema (draft-07), from the same tables the checks use, for editors
/// (`#:schema` in Taplo and Even Better TOML): key completion, types and spellings.
pub fn json_schema() -> serde_json::Value {
    let mut root = table_schema(ROOT);
    root["$schema"] = "http://json-schema.org/draft-07/schema#".into();
    root["title"] = "aam-etl mapping".into();
    root["description"] =
        "How an export becomes Adobe Audience Manager inbound data files; every key is described in aam-etl's README, \"The mapping\"."
            .into();
    root
}

fn table_schema(keys: &[Key]) -> serde_json::Value {
    let properties: serde_json::Map<String, serde_json::Value> = keys
        .iter()
        .map(|k| {
            let mut schema = kind_schema(k.kind);
            if let Some(what) = k.required {
                schema["description"] = what.into();
            }
            (k.name.to_owned(), schema)
        })
        .collect();
    let required: Vec<&str> = keys
        .iter()
        .filter(|k| k.required.is_some())
        .map(|k| k.name)
        .collect();
    serde_json::json!({
        "type": "object",
        "properties": properties,
        "required": required,
        "additionalProperties": false,
    })
}

fn kind_schema(kind: Kind) -> serde_json::Value {
    use serde_json::json;
    let uint = json!({ "type": "integer", "minimum": 0 });
    match kind {
        Kind::Str => json!({ "type": "string" }),
        Kind::Choice(names) => json!({ "type": "string", "enum": names }),
        Kind::UInt => uint,
        Kind::UIntIn(min, max) => json!({ "type": "integer", "minimum": min, "maximum": max }),
        Kind::Bool => json!({ "type": "boolean" }),
        Kind::StrList => json!({ "type": "array", "items": { "type": "string" } }),
        Kind::IntList => json!({ "type": "array", "items": { "type": "integer" } }),
        Kind::StrOrList => json!({
            "oneOf": [{ "type": "string" }, { "type": "array", "items": { "type": "string" }, "minItems": 1 }]
        }),
        Kind::UIntTable => json!({
            "type": "object",
            "additionalProperties": {
                "oneOf": [uint, { "type": "array", "items": uint, "minItems": 1 }]
            }
        }),
        Kind::StrTable => json!({ "type": "object", "additionalProperties": { "type": "string" } }),
        Kind::Table(keys) => table_schema(keys),
        Kind::TableList(keys) => json!({ "type": "array", "items": table_schema(keys) }),
    }
}

fn describe(v: &DeValue) -> String {
    match v {
        DeValue::String(s) => format!("the string \"{s}\""),
        DeValue::Integer(i) => format!("the number {}", i.as_str()),
        DeValue::Float(f) => format!("the number {f}"),
        DeValue::Boolean(b) => format!("{b}"),
        DeValue::Datetime(d) => format!("the date {d}"),
        DeValue::Array(_) => "a list".to_owned(),
        DeValue::Table(_) => "a table".to_owned(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn problems(text: &str) -> Vec<String> {
        check(text)
            .err()
            .unwrap_or_default()
            .iter()
            .map(|p| p.to_string())
            .collect()
    }

    #[test]
    fn every_shape_problem_is_reported_with_its_key_and_line() {
        let text = "\
[output]
dpid = \"twenty-one\"
colour = 1
[user_id]
column = \"id\"
[[traits]]
type = \"flag\"
trait_id = -5
values = { gold = \"x\" }
[[traits]]
typ = \"key_value\"
";
        assert_eq!(
            problems(text),
            [
                "output.dpid: expected a whole number, 0 or more, found the string \"twenty-one\" (line 2)",
                "output.colour: unknown key (line 3); expected one of dpid, target_dpid, mode, gzip, gzip_level, max_part_bytes, date_folder, deliver",
                "user_id.type: missing (line 4): the kind of ID, e.g. type = \"dpuuid\" (your own IDs) or \"gaid\"",
                "traits[0].trait_id: expected a whole number, 0 or more, found the number -5 (line 8)",
                "traits[0].values.gold: expected a whole number, 0 or more, found the string \"x\" (line 9)",
                "traits[1].type: missing (line 10): the rule type: \"trait_ids\", \"flag\", \"condition\", \"value_map\" or \"key_value\"",
                "traits[1].typ: unknown key (line 11); did you mean `type`? expected one of type, column, when, where, action, form, removal, trait_id, remove_when_false, values, removes, ignore_case, remove_when, unmapped, key, key_column, keys, map, case, prefix, buckets, pattern, latest_by, split, comma_replacement",
            ]
        );
    }

    /// A key's `enum` in the JSON Schema.
    fn choices(keys: &[Key], name: &str) -> Vec<&'static str> {
        match keys.iter().find(|k| k.name == name).map(|k| k.kind) {
            Some(Kind::Choice(names)) => names.to_vec(),
            other => panic!("{name}: {other:?}"),
        }
    }

    #[test]
    fn the_schema_lists_the_spellings_the_rule_checks_take() {
        let names = |table: &[(&'static str, crate::mapping::Emit)]| -> Vec<&'static str> {
            table.iter().map(|(n, _)| *n).collect()
        };
        assert_eq!(choices(RULE, "form"), names(super::super::rule::FORMS));
        assert_eq!(
            choices(RULE, "removal"),
            names(super::super::rule::REMOVALS)
        );
    }

    #[test]
    fn the_schema_lists_every_id_type() {
        let names: Vec<&str> = crate::inbound::IdType::ALL
            .iter()
            .map(|t| t.name())
            .collect();
        assert_eq!(ID_TYPES, names);
    }

    /// Every value the schema offers for a choice is one the mapping check takes, and a
    /// value it does not offer is refused: the lists in the schema and in the checks
    /// cannot drift apart.
    #[test]
    fn every_choice_the_schema_offers_is_taken_by_the_check() {
        let head = "[output]\ndpid = 21\n[user_id]\ncolumn = \"id\"\ntype = \"dpuuid\"\n";
        let rule = |kind: &str, extra: &str| {
            format!("{head}[[traits]]\ntype = \"{kind}\"\ncolumn = \"c\"\n{extra}")
        };
        let flag = rule("flag", "trait_id = 1\n");
        let value_map = rule("value_map", "values = { a = 1 }\nunmapped = \"@\"\n");
        let cases = [
            (INPUT, "format", "input.format", format!("[input]\nformat = \"@\"\n{flag}")),
            (INPUT, "encoding", "input.encoding", format!("[input]\nencoding = \"@\"\n{flag}")),
            (OUTPUT, "mode", "output.mode", flag.replace("dpid = 21\n", "dpid = 21\nmode = \"@\"\n")),
            (USER_ID, "type", "user_id.type", flag.replace("\"dpuuid\"", "\"@\"")),
            (USER_ID, "hash", "user_id.hash", flag.replace("[[traits]]", "hash = \"@\"\n[[traits]]")),
            (RULE, "type", "traits[0].type", rule("@", "trait_id = 1\n")),
            (RULE, "action", "traits[0].action", rule("trait_ids", "action = \"@\"\n")),
            (RULE, "form", "traits[0].form", rule("trait_ids", "form = \"@\"\n")),
            (RULE, "removal", "traits[0].removal", rule("trait_ids", "removal = \"@\"\n")),
            (RULE, "unmapped", "traits[0].unmapped", value_map),
            (RULE, "case", "traits[0].case", rule("key_value", "case = \"@\"\n")),
            (ID_SYNC, "type", "id_sync.type", "[output]\ndpid = 21\n[id_sync]\ntype = \"@\"\ncolumns = [{ column = \"a\", dpid = 0 }, { column = \"b\", dpid = 21 }]\n".to_owned()),
        ];
        for (keys, name, path, template) in cases {
            // The check's message when it refuses `value`.
            let refusal = |value: &str| {
                let problems = crate::mapping::Mapping::parse(&template.replace('@', value))
                    .err()
                    .unwrap_or_default();
                let unknown = format!("{path}: unknown");
                problems
                    .iter()
                    .map(|p| p.to_string())
                    .find(|p| p.starts_with(&unknown))
            };
            let offered = choices(keys, name);
            for value in &offered {
                assert_eq!(refusal(value), None, "{path} = \"{value}\"");
            }
            // And what the check says it takes, the schema offers.
            let message = refusal("zzz").unwrap_or_else(|| panic!("{path} = \"zzz\" is taken"));
            let (_, listed) = message
                .split_once("expected ")
                .expect("the choices are listed");
            let listed = listed.strip_prefix("one of ").unwrap_or(listed);
            for taken in listed.split(", ").map(|n| n.trim_matches('"')) {
                assert!(
                    offered.contains(&taken),
                    "{path}: {taken} is not in the schema"
                );
            }
        }
    }

    #[test]
    fn a_well_shaped_mapping_passes() {
        let text = "[input]\nnull_values = [\"NULL\"]\n[output]\ndpid = 21\n[user_id]\ncolumn = \"id\"\ntype = \"dpuuid\"\n[[traits]]\ntype = \"value_map\"\ncolumn = \"t\"\nvalues = { a = 1 }\n";
        assert_eq!(problems(text), Vec::<String>::new());
    }
}
