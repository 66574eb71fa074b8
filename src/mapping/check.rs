//! Turns the raw TOML structs into a [`Mapping`], collecting every problem in one pass.

use super::idsync::{check_id_sync, sync_output};
use super::raw::{RawInput, RawMapping, RawOutput, RawRule, RawState, RawUserId};
use super::rule::check_rule;
use super::{
    Encoding, Format, InputOptions, Mapping, OutputOptions, Rule, StateOptions, UserIdSpec,
};
use crate::error::Problem;
use crate::gzip::{DEFAULT_LEVEL, LEVELS};
use crate::inbound::{IdType, Mode, MAX_UNCOMPRESSED_BYTES, OPTIMAL_PART_BYTES};

/// Problems and warnings found so far.
#[derive(Default)]
pub(super) struct Findings {
    pub(super) errors: Vec<Problem>,
    pub(super) warnings: Vec<Problem>,
}

impl Findings {
    pub(super) fn error(&mut self, key: impl Into<String>, message: impl Into<String>) {
        self.errors.push(Problem::new(key, message));
    }

    pub(super) fn warn(&mut self, key: impl Into<String>, message: impl Into<String>) {
        self.warnings.push(Problem::new(key, message));
    }

    /// Looks up an enumerated value; a bad one is reported with the accepted spellings.
    pub(super) fn choice<T: Copy>(
        &mut self,
        key: &str,
        value: Option<&str>,
        default: T,
        options: &[(&str, T)],
    ) -> T {
        let Some(value) = value else { return default };
        if let Some((_, v)) = options.iter().find(|(name, _)| *name == value) {
            return *v;
        }
        let names: Vec<String> = options.iter().map(|(n, _)| format!("\"{n}\"")).collect();
        self.error(
            key,
            format!(
                "unknown value \"{value}\"; expected one of {}",
                names.join(", ")
            ),
        );
        default
    }
}

pub(super) fn check(raw: RawMapping) -> Result<Mapping, Vec<Problem>> {
    let mut f = Findings::default();
    let input = check_input(&raw.input, &mut f);
    // The `latest_by` columns, each once (rules name them by index).
    let mut latest_by: Vec<(String, String)> = Vec::new();
    let (user_id, output, rules, id_sync) = match (&raw.id_sync, &raw.user_id) {
        (Some(sync), _) => {
            let (user_id, rules, spec) = check_id_sync(&raw, sync, &mut f);
            let output = sync_output(check_output_common(&raw.output, &mut f), &spec);
            (user_id, output, rules, Some(spec))
        }
        (None, raw_user_id) => {
            // The output checks need the ID type; problems are still listed in the file's order.
            let mut user_findings = Findings::default();
            let user_id = match raw_user_id {
                Some(u) => check_user_id(u, &mut user_findings),
                None => {
                    user_findings.error(
                        "user_id",
                        "missing: a [user_id] table: which column holds the user ID, and its type (or an [id_sync] table for ID-synchronization files)",
                    );
                    UserIdSpec {
                        column: String::new(),
                        fallback: Vec::new(),
                        template: None,
                        id_type: IdType::Dpuuid,
                        trim: false,
                        normalize_case: false,
                        hash_email: false,
                    }
                }
            };
            let output = check_output(&raw.output, user_id.id_type, &mut f);
            f.errors.append(&mut user_findings.errors);
            f.warnings.append(&mut user_findings.warnings);
            if raw.traits.is_empty() {
                f.error(
                    "traits",
                    "no [[traits]] rules: add at least one rule that turns a column into traits",
                );
            }
            let everywhere = raw_user_id.as_ref().and_then(|u| u.latest_by.as_deref());
            let mut rules = Vec::new();
            for (i, r) in raw.traits.iter().enumerate() {
                let latest = latest_group(i, r, everywhere, &mut latest_by, &mut f);
                let checked = check_rule(i, r, output.mode, &mut f);
                rules.extend(checked.into_iter().map(|rule| Rule { latest, ..rule }));
            }
            (user_id, output, rules, None)
        }
    };
    let state = check_state(&raw.state, &output, &mut f);
    if raw.taxonomy.path.as_deref() == Some("") {
        f.error(
            "taxonomy.path",
            "empty: name the trait list AAM's API gives, e.g. path = \"aam-traits.json\"",
        );
    }
    if f.errors.is_empty() {
        Ok(Mapping {
            input,
            output,
            user_id,
            rules,
            state,
            id_sync,
            latest_by,
            taxonomy: raw.taxonomy.path.map(std::path::PathBuf::from),
            warnings: f.warnings,
        })
    } else {
        Err(f.errors)
    }
}

/// The `latest_by` group of rule `i`: its own column, else `[user_id] latest_by`; a column
/// not seen before starts a group.
fn latest_group(
    i: usize,
    r: &RawRule,
    everywhere: Option<&str>,
    groups: &mut Vec<(String, String)>,
    f: &mut Findings,
) -> Option<usize> {
    let (key, column) = match (r.latest_by.as_deref(), everywhere) {
        (Some(c), _) => (format!("traits[{i}].latest_by"), c),
        (None, Some(c)) => ("user_id.latest_by".to_owned(), c),
        (None, None) => return None,
    };
    if column.is_empty() {
        f.error(
            key,
            "empty: name the column that orders a user's rows, e.g. \"updated_at\"",
        );
        return None;
    }
    Some(match groups.iter().position(|(_, c)| c == column) {
        Some(g) => g,
        None => {
            groups.push((key, column.to_owned()));
            groups.len() - 1
        }
    })
}

fn check_state(raw: &RawState, output: &OutputOptions, f: &mut Findings) -> StateOptions {
    if raw.path.as_deref() == Some("") {
        f.error(
            "state.path",
            "empty: name the state folder, e.g. path = \"state\"",
        );
    }
    if raw.refresh_days == Some(0) {
        f.error(
            "state.refresh_days",
            "0 would make every run a full refresh; remove it, or give the days between full refreshes (e.g. 30)",
        );
    }
    if raw.path.is_some() && output.mode == Mode::Overwrite {
        f.error(
            "output.mode",
            "\"overwrite\" cannot be used with a state: the state decides each user's file; use --full for a full refresh",
        );
    }
    StateOptions {
        path: raw.path.as_ref().map(std::path::PathBuf::from),
        refresh_days: raw.refresh_days,
    }
}

fn single_byte(key: &str, value: Option<&str>, f: &mut Findings) -> Option<u8> {
    let value = value?;
    let bytes = value.as_bytes();
    if bytes.len() == 1 && bytes[0].is_ascii() {
        Some(bytes[0])
    } else {
        f.error(key, format!("\"{value}\" must be a single ASCII character"));
        None
    }
}

fn check_input(raw: &RawInput, f: &mut Findings) -> InputOptions {
    let format = raw.format.as_deref().and_then(|s| {
        let format = Format::from_name(s);
        if format.is_none() {
            f.error(
                "input.format",
                format!("unknown format \"{s}\"; expected one of {}", Format::NAMES),
            );
        }
        format
    });
    let encoding = f.choice(
        "input.encoding",
        raw.encoding.as_deref(),
        Encoding::Utf8,
        &[
            ("utf-8", Encoding::Utf8),
            ("latin-1", Encoding::Latin1),
            ("windows-1252", Encoding::Windows1252),
        ],
    );
    InputOptions {
        format,
        delimiter: single_byte("input.delimiter", raw.delimiter.as_deref(), f),
        quote: single_byte("input.quote", raw.quote.as_deref(), f),
        has_header: raw.has_header.unwrap_or(true),
        null_values: raw.null_values.clone().unwrap_or_default(),
        encoding,
    }
}

fn check_user_id(raw: &RawUserId, f: &mut Findings) -> UserIdSpec {
    let id_type = IdType::from_name(&raw.id_type).unwrap_or_else(|| {
        let names: Vec<&str> = IdType::ALL.iter().map(|t| t.name()).collect();
        f.error(
            "user_id.type",
            format!(
                "unknown ID type \"{}\"; expected one of {}",
                raw.id_type,
                names.join(", ")
            ),
        );
        IdType::Dpuuid
    });
    let columns = raw.column.names();
    if columns.is_empty() || columns.iter().any(String::is_empty) {
        f.error(
            "user_id.column",
            "must name the column that holds the user ID (or a list of columns to try in turn)",
        );
    }
    let template = raw.template.as_ref().and_then(|t| {
        let (before, after) = t.split_once("{id}").unwrap_or((t, "{id}"));
        if after.contains("{id}") || (before.is_empty() && after.is_empty()) {
            f.error(
                "user_id.template",
                format!("\"{t}\" must hold `{{id}}` once, with text around it, e.g. template = \"crm-{{id}}\""),
            );
            return None;
        }
        Some((before.to_owned(), after.to_owned()))
    });
    if template.is_some() && id_type != IdType::Dpuuid {
        f.error(
            "user_id.template",
            format!(
                "only your own IDs (type = \"dpuuid\") can be reshaped; {} IDs must be sent as the device gives them",
                id_type.name()
            ),
        );
    }
    let hash_email = match raw.hash.as_deref() {
        None => false,
        Some("sha256") if id_type == IdType::Dpuuid => true,
        Some("sha256") => {
            f.error(
                "user_id.hash",
                format!(
                    "hashing applies to e-mail addresses sent as type = \"dpuuid\", not \"{}\"",
                    id_type.name()
                ),
            );
            false
        }
        Some(other) => {
            f.error(
                "user_id.hash",
                format!("unknown hash \"{other}\"; expected \"sha256\""),
            );
            false
        }
    };
    let normalize_case = raw.normalize_case.unwrap_or(false);
    if normalize_case && matches!(id_type, IdType::Dpuuid | IdType::AamUuid) {
        f.error(
            "user_id.normalize_case",
            format!(
                "only device IDs have a required letter case; {} IDs are matched exactly as they are",
                id_type.name()
            ),
        );
    }
    UserIdSpec {
        column: columns.first().cloned().unwrap_or_default(),
        fallback: columns.iter().skip(1).cloned().collect(),
        template,
        id_type,
        trim: raw.trim.unwrap_or(false),
        normalize_case,
        hash_email,
    }
}

fn check_output(raw: &RawOutput, id_type: IdType, f: &mut Findings) -> OutputOptions {
    let mode = f.choice(
        "output.mode",
        raw.mode.as_deref(),
        Mode::Sync,
        &[("sync", Mode::Sync), ("overwrite", Mode::Overwrite)],
    );
    let dpid = match (id_type.global_dpid(), raw.dpid) {
        (Some(global), None) => global,
        (Some(global), Some(dpid)) if dpid != global => {
            f.error(
                "output.dpid",
                format!(
                    "{} IDs belong to the global data source {global}, not {dpid}; remove `dpid` or set it to {global}",
                    id_type.name()
                ),
            );
            dpid
        }
        (_, Some(dpid)) => {
            if let Some(other) = IdType::from_global_dpid(dpid).filter(|t| *t != id_type) {
                f.error(
                    "output.dpid",
                    format!(
                        "{dpid} is the global data source of {} IDs, but user_id.type is \"{}\"",
                        other.name(),
                        id_type.name()
                    ),
                );
            }
            dpid
        }
        (None, None) => {
            f.error(
                "output.dpid",
                "missing: set the data source ID (DPID) the user IDs belong to",
            );
            0
        }
    };
    if id_type.is_device() && raw.target_dpid.is_none() {
        f.error(
            "output.target_dpid",
            format!(
                "{} IDs need a target data source: set `target_dpid` to your data source whose traits these devices qualify for",
                id_type.name()
            ),
        );
    }
    OutputOptions {
        dpid,
        target_dpid: raw.target_dpid,
        mode,
        ..check_output_common(raw, f)
    }
}

/// The output options every mapping has: compression, part size, folder, destination.
fn check_output_common(raw: &RawOutput, f: &mut Findings) -> OutputOptions {
    let max_part_bytes = raw.max_part_bytes.unwrap_or(OPTIMAL_PART_BYTES);
    if max_part_bytes == 0 || max_part_bytes > MAX_UNCOMPRESSED_BYTES {
        f.error(
            "output.max_part_bytes",
            format!(
                "{max_part_bytes} is out of range: 1 to {MAX_UNCOMPRESSED_BYTES} (5 GB, AAM's largest file)"
            ),
        );
    }
    let gzip = raw.gzip.unwrap_or(true);
    let gzip_level = match raw.gzip_level {
        None => DEFAULT_LEVEL,
        Some(_) if !gzip => {
            f.error(
                "output.gzip_level",
                "set with gzip = false: remove it, or write gzip files (gzip = true)",
            );
            DEFAULT_LEVEL
        }
        Some(level) => u8::try_from(level)
            .ok()
            .filter(|l| LEVELS.contains(l))
            .unwrap_or_else(|| {
                f.error(
                    "output.gzip_level",
                    format!(
                        "{level} is out of range: {} (fastest) to {} (smallest); {DEFAULT_LEVEL} is gzip's own default",
                        LEVELS.start(),
                        LEVELS.end(),
                    ),
                );
                DEFAULT_LEVEL
            }),
    };
    OutputOptions {
        dpid: 0,
        target_dpid: None,
        mode: Mode::Sync,
        gzip,
        gzip_level,
        max_part_bytes,
        date_folder: raw.date_folder.unwrap_or(false),
        deliver: raw.deliver.as_deref().and_then(|url| {
            crate::upload::Destination::parse(url)
                .map_err(|e| f.error("output.deliver", e.to_string()))
                .ok()
        }),
    }
}

/// The candidate closest to `name` by edit distance, if it is plausibly a typo of it.
pub fn closest<'a>(name: &str, candidates: &'a [String]) -> Option<&'a str> {
    let lower = name.to_lowercase();
    candidates
        .iter()
        .map(|c| (strsim::levenshtein(&lower, &c.to_lowercase()), c))
        .filter(|(d, c)| *d <= (c.chars().count().max(name.chars().count()) / 3).max(1))
        .min_by_key(|(d, _)| *d)
        .map(|(_, c)| c.as_str())
}

#[cfg(test)]
mod tests {
    use super::super::{Emit, Mapping, RuleKind};
    use super::*;
    use crate::inbound::Trait;

    const BASE: &str = r#"
[output]
dpid = 21
[user_id]
column = "customer_id"
type = "dpuuid"
"#;

    fn parse(extra: &str) -> Result<Mapping, Vec<Problem>> {
        Mapping::parse(&format!("{BASE}{extra}"))
    }

    fn errors(extra: &str) -> Vec<String> {
        parse(extra)
            .unwrap_err()
            .iter()
            .map(|p| p.to_string())
            .collect()
    }

    #[test]
    fn gzip_level_is_6_unless_set_and_must_be_a_level_of_gzip_output() {
        let with = |output: &str| {
            let rule = "[[traits]]\ntype = \"trait_ids\"\ncolumn = \"segment\"\n";
            let user = "[user_id]\ncolumn = \"customer_id\"\ntype = \"dpuuid\"\n";
            Mapping::parse(&format!("[output]\ndpid = 21\n{output}\n{user}{rule}"))
                .map(|m| m.output.gzip_level)
                .map_err(|e| e.iter().map(|p| p.to_string()).collect::<Vec<_>>())
        };
        assert_eq!(with(""), Ok(6));
        assert_eq!(with("gzip_level = 1"), Ok(1));
        assert_eq!(with("gzip_level = 12"), Ok(12));
        for level in ["0", "13", "256"] {
            let e = with(&format!("gzip_level = {level}")).unwrap_err();
            assert_eq!(
                e,
                [format!(
                    "output.gzip_level: {level} is out of range: 1 (fastest) to 12 (smallest); 6 is gzip's own default"
                )]
            );
        }
        let e = with("gzip = false\ngzip_level = 9").unwrap_err();
        assert_eq!(
            e,
            ["output.gzip_level: set with gzip = false: remove it, or write gzip files (gzip = true)"]
        );
    }

    #[test]
    fn a_small_mapping_checks() {
        let m = parse(
            r#"
[[traits]]
type = "trait_ids"
column = "segment"
[[traits]]
type = "value_map"
column = "tier"
values = { gold = 111, silver = 112 }
"#,
        )
        .unwrap();
        assert_eq!(m.output.dpid, 21);
        assert_eq!(m.output.mode, Mode::Sync);
        assert!(m.output.gzip);
        assert_eq!(m.rules.len(), 2);
        assert_eq!(
            m.rules[0].kind,
            RuleKind::TraitIds {
                emit: Emit::Sid,
                pattern: None
            }
        );
    }

    #[test]
    fn all_problems_are_reported_at_once() {
        let errs = errors(
            r#"
[[traits]]
type = "trait_id"
column = "x"
[[traits]]
type = "flag"
column = "is_vip"
[[traits]]
type = "key_value"
column = "-city"
"#,
        );
        assert_eq!(errs.len(), 3, "{errs:#?}");
        assert!(errs[0].starts_with("traits[0].type: unknown rule type \"trait_id\""));
        assert_eq!(
            errs[1],
            "traits[1].trait_id: missing: the trait ID to add when true"
        );
        assert!(errs[2].starts_with("traits[2].column: signal key \"-city\" starts with `-`"));
    }

    #[test]
    fn signal_keys_are_alphanumeric_and_not_trait_prefixes() {
        let errs = errors(
            r#"
[[traits]]
type = "key_value"
column = "Account Type"
[[traits]]
type = "key_value"
column = "x"
key = "IC"
[[traits]]
type = "key_value"
column = "d_sid"
[[traits]]
type = "key_value"
column = "Account Type"
key = "account_type"
comma_replacement = ","
"#,
        );
        assert_eq!(
            errs,
            [
                "traits[0].column: signal key \"Account Type\" must be letters, digits and underscores (Adobe: keys are alphanumeric); set key = \"account_type\"",
                "traits[1].key: signal key \"IC\" is a trait prefix: AAM would read `IC=...` as a trait ID, not a signal; set `key` to another name, such as key = \"ic_value\"",
                "traits[2].column: signal key \"d_sid\" is a trait prefix: AAM would read `d_sid=...` as a trait ID, not a signal; set `key` to another name, such as key = \"d_sid_value\"",
                "traits[3].comma_replacement: \",\" cannot replace a comma: value contains a comma, which AAM may read as the end of the trait",
            ]
        );
    }

    #[test]
    fn a_delivery_destination_is_an_s3_url() {
        let m = |url: &str| {
            format!("[output]\ndpid = 21\ndeliver = \"{url}\"\n[user_id]\ncolumn = \"id\"\ntype = \"dpuuid\"\n[[traits]]\ntype = \"trait_ids\"\ncolumn = \"s\"\n")
        };
        let ok = Mapping::parse(&m("s3://demdex-s2s-clients/acme/")).unwrap();
        let dest = ok.output.deliver.unwrap();
        assert_eq!(
            (dest.bucket.as_str(), dest.folder.as_str()),
            ("demdex-s2s-clients", "acme")
        );
        let errs: Vec<String> = Mapping::parse(&m("/tmp/out"))
            .unwrap_err()
            .iter()
            .map(ToString::to_string)
            .collect();
        assert_eq!(
            errs,
            ["output.deliver: `/tmp/out` is not an S3 URL; write s3://<bucket>/<folder>/"]
        );
    }

    #[test]
    fn keys_that_do_not_apply_are_errors() {
        let errs = errors(
            r#"
[[traits]]
type = "key_value"
column = "city"
values = { a = 1 }
"#,
        );
        assert_eq!(
            errs,
            ["traits[0].values: does not apply to type = \"key_value\" rules"]
        );
    }

    #[test]
    fn unknown_keys_are_errors_with_a_line() {
        let errs = errors("[[traits]]\ntype = \"key_value\"\ncolumn = \"c\"\ncolour = 1\n");
        assert_eq!(errs.len(), 1);
        assert_eq!(
            errs[0],
            "traits[0].colour: unknown key (line 10); expected one of type, column, when, where, action, form, removal, trait_id, remove_when_false, values, removes, ignore_case, remove_when, unmapped, key, key_column, keys, map, case, prefix, buckets, pattern, latest_by, split, comma_replacement"
        );
    }

    #[test]
    fn device_ids_need_a_target_and_the_right_dpid() {
        let m = Mapping::parse(
            "[output]\ntarget_dpid = 21\n[user_id]\ncolumn = \"d\"\ntype = \"gaid\"\n[[traits]]\ntype = \"trait_ids\"\ncolumn = \"s\"\n",
        )
        .unwrap();
        assert_eq!(m.output.dpid, 20914);
        let errs = Mapping::parse(
            "[output]\ndpid = 20915\n[user_id]\ncolumn = \"d\"\ntype = \"gaid\"\n[[traits]]\ntype = \"trait_ids\"\ncolumn = \"s\"\n",
        )
        .unwrap_err();
        let keys: Vec<&str> = errs.iter().map(|p| p.key.as_str()).collect();
        assert_eq!(keys, ["output.dpid", "output.target_dpid"]);
    }

    #[test]
    fn overwrite_drops_removals_with_a_warning() {
        let m = Mapping::parse(&format!(
            "{}\n[[traits]]\ntype = \"trait_ids\"\ncolumn = \"a\"\naction = \"remove\"\n[[traits]]\ntype = \"flag\"\ncolumn = \"f\"\ntrait_id = 5\nremove_when_false = true\n",
            BASE.replace("dpid = 21", "dpid = 21\nmode = \"overwrite\"")
        ))
        .unwrap();
        assert_eq!(m.rules.len(), 1);
        assert_eq!(
            m.rules[0].kind,
            RuleKind::Flag {
                on_true: Trait::Sid(5),
                on_false: None
            }
        );
        assert_eq!(m.warnings.len(), 2);
    }

    #[test]
    fn closest_finds_typos() {
        let cols = vec!["customer_id".to_owned(), "segment_id".to_owned()];
        assert_eq!(closest("custmer_id", &cols), Some("customer_id"));
        assert_eq!(closest("Segment_ID", &cols), Some("segment_id"));
        assert_eq!(closest("zzz", &cols), None);
    }
}
