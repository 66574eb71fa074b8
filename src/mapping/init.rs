//! `aam-etl init`: a commented mapping guessed from an export's columns and a sample of its
//! values, which converts that export as it is (trait IDs and the data source being
//! placeholders to edit).

use super::rule::suggested_key;
use super::{Format, InputOptions, Mapping};
use crate::error::{Error, Result};
use crate::inbound::{is_uuid_shape, looks_like_email};
use crate::pipeline::flag_text;
use crate::source::Source;
use polars::prelude::*;
use std::collections::BTreeSet;
use std::fmt::Write as _;
use std::io::Read as _;
use std::path::Path;

/// Trait IDs written as placeholders count up from here: easy to find and replace.
const PLACEHOLDER: u64 = 900_000_001;

/// Distinct values up to which a text column is taken for a value map.
const FEW_VALUES: usize = 20;

/// What a column looks like in the sample.
struct Column {
    name: String,
    dtype: DataType,
    /// Non-empty values as text, in the sample's order.
    values: Vec<String>,
    distinct: BTreeSet<String>,
}

impl Column {
    fn all(&self, f: impl Fn(&str) -> bool) -> bool {
        !self.values.is_empty() && self.values.iter().all(|v| f(v))
    }

    /// Nine values in ten or more (a sample has its bad IDs too).
    fn most(&self, f: impl Fn(&str) -> bool) -> bool {
        let n = self.values.iter().filter(|v| f(v)).count();
        n > 0 && n * 10 >= self.values.len() * 9
    }

    /// Dates and times: neither categories nor signals worth a guess.
    fn is_temporal(&self) -> bool {
        matches!(self.dtype, DataType::Date | DataType::Datetime(..))
            || self.all(|v| {
                v.len() >= 8
                    && v.bytes().next().is_some_and(|b| b.is_ascii_digit())
                    && v.bytes()
                        .all(|b| b.is_ascii_digit() || b"-:/ T.Z+".contains(&b))
                    && v.contains(['-', '/'])
            })
    }

    /// The ID type its values have, if they have one by their shape.
    fn id_kind(&self) -> Option<(&'static str, bool)> {
        if self.most(|v| v.len() == 38 && v.bytes().all(|b| b.is_ascii_digit())) {
            Some(("aam_uuid", false))
        } else if self.most(|v| is_uuid_shape(v) && !v.bytes().any(|b| b.is_ascii_lowercase())) {
            Some(("idfa", false))
        } else if self.most(|v| is_uuid_shape(v) && !v.bytes().any(|b| b.is_ascii_uppercase())) {
            Some(("gaid", false))
        } else if self.most(is_uuid_shape) {
            // Device IDs in both cases: the name says which (normalize_case fixes the case).
            let name = self.name.to_ascii_lowercase();
            let upper = self
                .values
                .iter()
                .filter(|v| !v.bytes().any(|b| b.is_ascii_lowercase()));
            if name.contains("idfa") || name.contains("ios") {
                Some(("idfa", false))
            } else if name.contains("gaid") || name.contains("adid") || name.contains("android") {
                Some(("gaid", false))
            } else if upper.count() * 2 > self.values.len() {
                Some(("idfa", false))
            } else {
                Some(("gaid", false))
            }
        } else if self.most(looks_like_email) {
            Some(("dpuuid", true))
        } else {
            None
        }
    }

    fn named_like_an_id(&self) -> bool {
        let n = self.name.to_ascii_lowercase();
        n == "id" || n.ends_with("_id") || n.ends_with("id") && n.len() <= 10
    }

    fn is_flag(&self) -> bool {
        self.dtype == DataType::Boolean || self.all(|v| flag_text(v).is_some())
    }

    /// Whether its values are lists, or text with `|` between items.
    fn split(&self) -> Option<Option<&'static str>> {
        if matches!(self.dtype, DataType::List(_)) {
            Some(None)
        } else if self.dtype == DataType::String && self.values.iter().any(|v| v.contains('|')) {
            Some(Some("|"))
        } else {
            None
        }
    }

    /// Whether every item (of each list, or between `|`) is a whole number.
    fn items_are_ids(&self) -> bool {
        self.all(|v| {
            v.trim_matches(|c| c == '[' || c == ']')
                .split([',', '|'])
                .map(|s| s.trim().trim_matches('"'))
                .all(|s| s.is_empty() || s.bytes().all(|b| b.is_ascii_digit()))
        })
    }
}

/// A column's non-empty values as trimmed text; a list's items joined by `|`.
fn texts(s: &Series) -> PolarsResult<Vec<String>> {
    let values: Vec<String> = if let DataType::List(_) = s.dtype() {
        let mut values = Vec::new();
        for items in s.list()?.amortized_iter().flatten() {
            let items = items.as_ref().cast(&DataType::String)?;
            let items: Vec<&str> = items.str()?.iter().flatten().collect();
            values.push(items.join("|"));
        }
        values
    } else {
        let text = s.cast(&DataType::String)?;
        text.str()?.iter().flatten().map(str::to_owned).collect()
    };
    Ok(values
        .into_iter()
        .map(|v| v.trim().to_owned())
        .filter(|v| !v.is_empty())
        .collect())
}

/// A TOML string.
fn quoted(s: &str) -> String {
    toml::Value::String(s.to_owned()).to_string()
}

/// A commented mapping for `path`, from its first `sample` rows.
pub fn guess(path: &Path, sample: usize) -> Result<String> {
    let source = Source::detect(path.to_owned(), None)?;
    let delimiter = match (source.format, source.gzip, source.tsv) {
        (Format::Csv, false, false) => sniff_delimiter(path)?,
        _ => None,
    };
    let input = InputOptions {
        format: None,
        delimiter,
        quote: None,
        has_header: true,
        null_values: Vec::new(),
        encoding: super::Encoding::Utf8,
    };
    let df = source.open(&input, 64 << 20)?.sample(sample.max(1))?;
    if df.height() == 0 {
        return Err(Error::source(
            path,
            "the export has no rows: init guesses the mapping from the values it sees; run it on an export with data",
        ));
    }
    // Columns whose values cannot be read as text (nested structs) are left out; a rule may
    // still name a field of one (`profile.tier`).
    let columns: Vec<Column> = df
        .columns()
        .iter()
        .filter_map(|c| {
            let s = c.as_materialized_series();
            let values = texts(s).ok()?;
            Some(Column {
                name: s.name().to_string(),
                dtype: s.dtype().clone(),
                distinct: values.iter().cloned().collect(),
                values,
            })
        })
        .collect();
    if columns.len() < 2 {
        return Err(Error::source(
            path,
            "init needs a user ID column and at least one other column it can read",
        ));
    }
    let text = write_mapping(path, &columns, df.height(), delimiter);
    // What `init` writes must be a mapping: checked like any other.
    Mapping::parse(&text).map_err(|problems| Error::Mapping {
        path: path.with_extension("toml"),
        problems,
    })?;
    Ok(text)
}

/// The separator of a CSV file whose header line has more `;`, TAB or `|` than commas
/// (exports from spreadsheets in many locales use `;`); `None` for commas.
fn sniff_delimiter(path: &Path) -> Result<Option<u8>> {
    use std::io::BufRead;
    let file = std::fs::File::open(path).map_err(|e| Error::io(path, e))?;
    let mut header = Vec::new();
    std::io::BufReader::new(file)
        .take(64 << 10)
        .read_until(b'\n', &mut header)
        .map_err(|e| Error::io(path, e))?;
    let count = |b: u8| header.iter().filter(|&&c| c == b).count();
    let best = [b';', b'\t', b'|']
        .into_iter()
        .max_by_key(|&b| count(b))
        .filter(|&b| count(b) > count(b','));
    Ok(best)
}

fn write_mapping(path: &Path, columns: &[Column], rows: usize, delimiter: Option<u8>) -> String {
    // A device ID or AAM UUID by its shape, else a column named like an ID, else e-mail
    // addresses, else the first column.
    let device = |c: &Column| c.id_kind().is_some_and(|(_, hash)| !hash);
    let named = |c: &Column| c.named_like_an_id() && c.id_kind().is_none();
    // Of these, the first that no row leaves empty, if there is one.
    let candidates: Vec<usize> = [
        columns.iter().position(device),
        columns.iter().position(named),
        columns.iter().position(|c| c.id_kind().is_some()),
        Some(0),
    ]
    .into_iter()
    .flatten()
    .collect();
    let uid = candidates
        .iter()
        .copied()
        .find(|&i| columns[i].values.len() == rows)
        .unwrap_or(candidates[0]);
    let (id_type, hash) = columns[uid].id_kind().unwrap_or(("dpuuid", false));
    // Where the ID column is empty in the sample, other ID-named columns are tried in turn.
    let mut id_columns = vec![uid];
    if columns[uid].values.len() < rows && id_type == "dpuuid" && !hash {
        id_columns.extend((0..columns.len()).filter(|&i| i != uid && named(&columns[i])));
    }
    let device = !matches!(id_type, "dpuuid" | "aam_uuid");
    let file = path
        .file_name()
        .map_or(String::new(), |f| f.to_string_lossy().into_owned());
    let mut out = String::new();
    let _ = writeln!(
        out,
        "#:schema ./aam-etl.schema.json\n\
         # A mapping guessed by `aam-etl init` from the first {rows} rows of {file}.\n\
         # It converts that file as it is; before a real delivery, replace the placeholders:\n\
         # the data source ID and the trait IDs 9000000xx (search for \"placeholder\").\n\
         # Every key: README.md, \"The mapping\". `aam-etl schema > aam-etl.schema.json` lets\n\
         # editors (Taplo, Even Better TOML) complete and check the keys.\n\
         #   aam-etl --mapping this.toml {file}\n"
    );
    if let Some(d) = delimiter {
        let _ = writeln!(
            out,
            "[input]\ndelimiter = {}   # the header is separated by it\n",
            quoted(&char::from(d).to_string())
        );
    }
    let _ = writeln!(out, "[output]");
    if device {
        let _ = writeln!(
            out,
            "target_dpid = 12345   # placeholder: the data source whose traits the users get"
        );
    } else {
        let _ = writeln!(
            out,
            "dpid = 12345          # placeholder: your data source ID"
        );
    }
    let _ = writeln!(out, "\n[user_id]");
    let why = match (id_type, hash) {
        (_, true) => "its values are e-mail addresses: sent as their SHA-256",
        ("aam_uuid", _) => "38 digits: AAM UUIDs",
        ("idfa", _) => "UUIDs: IDFAs",
        ("gaid", _) => "UUIDs: GAIDs",
        _ => "guessed from its name; your own IDs",
    };
    if id_columns.len() > 1 {
        let names: Vec<String> = id_columns
            .iter()
            .map(|&i| quoted(&columns[i].name))
            .collect();
        let _ = writeln!(
            out,
            "column = [{}]   # {why}; the first that is not empty",
            names.join(", ")
        );
    } else {
        let _ = writeln!(out, "column = {}   # {why}", quoted(&columns[uid].name));
    }
    let _ = writeln!(out, "type = \"{id_type}\"");
    if hash {
        let _ = writeln!(out, "hash = \"sha256\"");
    }
    let case_ok = |v: &str| match id_type {
        "idfa" => !v.bytes().any(|b| b.is_ascii_lowercase()),
        _ => !v.bytes().any(|b| b.is_ascii_uppercase()),
    };
    if device && !columns[uid].all(case_ok) {
        let _ = writeln!(
            out,
            "normalize_case = true   # some IDs in the sample are in the other letter case"
        );
    }
    let _ = writeln!(out, "trim = true");
    let mut next_id = PLACEHOLDER;
    let mut id = || {
        next_id += 1;
        next_id - 1
    };
    let mut rules = 0;
    let mut commented: Vec<&Column> = Vec::new();
    let others = columns
        .iter()
        .enumerate()
        .filter(|(i, _)| !id_columns.contains(i));
    for c in others.map(|(_, c)| c) {
        let name = quoted(&c.name);
        if c.values.is_empty() {
            let _ = writeln!(out, "\n# {name}: empty in the sample; left out.");
            continue;
        }
        if c.id_kind() == Some(("dpuuid", true)) {
            let _ = writeln!(
                out,
                "\n# {name}: e-mail addresses, which are never sent as traits; left out."
            );
            continue;
        }
        if c.is_temporal() {
            let _ = writeln!(
                out,
                "\n# {name}: dates. Use them in conditions (`when`, `where`), e.g. for the last\n# 30 days: when = \"STRPTIME({}, '%Y-%m-%d') >= {{run_date}} - INTERVAL '30 days'\"",
                c.name
            );
            continue;
        }
        if c.is_flag() {
            let _ = writeln!(
                out,
                "\n# {name}: true/false values.\n[[traits]]\ntype = \"flag\"\ncolumn = {name}\ntrait_id = {}   # placeholder\nremove_when_false = true",
                id()
            );
        } else if c.split().is_none()
            && c.items_are_ids()
            && ["segment", "trait"]
                .iter()
                .any(|w| c.name.to_ascii_lowercase().contains(w))
        {
            let _ = writeln!(
                out,
                "\n# {name}: trait IDs (by its name and its whole numbers).\n[[traits]]\ntype = \"trait_ids\"\ncolumn = {name}"
            );
        } else if let Some(split) = c.split() {
            let split_line = split.map_or(String::new(), |s| format!("split = \"{s}\"\n"));
            if c.items_are_ids() {
                let _ = write!(
                    out,
                    "\n# {name}: lists of trait IDs.\n[[traits]]\ntype = \"trait_ids\"\ncolumn = {name}\n{split_line}"
                );
            } else {
                let _ = writeln!(
                    out,
                    "\n# {name}: lists of values, each sent as a signal.\n[[traits]]\ntype = \"key_value\"\ncolumn = {name}\nkey = \"{}\"\n{split_line}comma_replacement = \";\"",
                    suggested_key(&c.name)
                );
            }
        } else if c.dtype == DataType::String
            && !c.named_like_an_id()
            && c.distinct.len() <= FEW_VALUES
            && (c.distinct.len() * 2 <= c.values.len() || rows < 2 * FEW_VALUES)
            && !c.all(|v| v.parse::<f64>().is_ok())
        {
            let values: Vec<String> = c
                .distinct
                .iter()
                .map(|v| format!("{} = {}", quoted(v), id()))
                .collect();
            let _ = writeln!(
                out,
                "\n# {name}: {} values seen; each adds a trait (placeholders). Values not listed\n# are skipped and counted.\n[[traits]]\ntype = \"value_map\"\ncolumn = {name}\nvalues = {{ {} }}\nunmapped = \"skip\"",
                c.distinct.len(),
                values.join(", ")
            );
        } else {
            commented.push(c);
            continue;
        }
        rules += 1;
    }
    // A mapping needs a rule: the first other column is sent as signals if nothing else is.
    let (active, commented) = match (rules, commented.split_first()) {
        (0, Some((first, rest))) => (Some(*first), rest),
        _ => (None, &commented[..]),
    };
    if let Some(c) = active {
        key_value(&mut out, c, "sent as key-value signals.", "");
    }
    for c in commented {
        let why = "many distinct values. To send them as key-value signals, uncomment:";
        key_value(&mut out, c, why, "# ");
    }
    out
}

/// A key-value rule for column `c`, each line after `prefix` (`"# "`: commented out).
fn key_value(out: &mut String, c: &Column, why: &str, prefix: &str) {
    let name = quoted(&c.name);
    let _ = writeln!(out, "\n# {name}: {why}");
    let mut lines = vec![
        "[[traits]]".to_owned(),
        "type = \"key_value\"".to_owned(),
        format!("column = {name}"),
        format!("key = \"{}\"", suggested_key(&c.name)),
    ];
    if prefix.is_empty() {
        lines.push("comma_replacement = \";\"".to_owned());
    }
    for line in lines {
        let _ = writeln!(out, "{prefix}{line}");
    }
}
