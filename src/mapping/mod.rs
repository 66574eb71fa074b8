//! The mapping: which column is the user ID and how columns become traits.
//!
//! `raw` mirrors the TOML; [`Mapping::parse`] checks it in one pass and returns either a
//! `Mapping` the rest of the code trusts or every problem found, each with its key path.
//! Checks against the source's columns happen later, when the schema is known
//! ([`Mapping::check_columns`]).

mod check;
mod idsync;
pub mod init;
mod raw;
mod rule;
mod schema;

pub use check::closest;
pub use schema::json_schema;

use crate::error::{Error, Problem, Result};
use crate::inbound::{FileName, IdSyncKind, IdSyncName, IdType, Mode, Removal, Trait};
use std::collections::BTreeMap;
use std::path::Path;

/// Source file formats.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum Format {
    Csv,
    Parquet,
    Json,
    Ndjson,
    Ipc,
}

impl Format {
    pub const NAMES: &'static str = "csv, parquet, json, ndjson, ipc";

    pub fn from_name(s: &str) -> Option<Format> {
        Some(match s {
            "csv" => Format::Csv,
            "parquet" => Format::Parquet,
            "json" => Format::Json,
            "ndjson" | "jsonl" => Format::Ndjson,
            "ipc" | "arrow" | "feather" => Format::Ipc,
            _ => return None,
        })
    }
}

/// Character encodings a source may be in; everything is read as UTF-8 in the end.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Encoding {
    Utf8,
    /// ISO-8859-1.
    Latin1,
    Windows1252,
}

#[derive(Debug, Clone, PartialEq)]
pub struct InputOptions {
    /// `None`: from each file's extension.
    pub format: Option<Format>,
    /// `None`: `,`, or TAB for `.tsv` files.
    pub delimiter: Option<u8>,
    pub quote: Option<u8>,
    pub has_header: bool,
    pub null_values: Vec<String>,
    pub encoding: Encoding,
}

#[derive(Debug, Clone, PartialEq)]
pub struct OutputOptions {
    pub dpid: u64,
    pub target_dpid: Option<u64>,
    pub mode: Mode,
    pub gzip: bool,
    /// libdeflate's level, one of `gzip::LEVELS` (`gzip::DEFAULT_LEVEL` unless the mapping
    /// says otherwise).
    pub gzip_level: u8,
    /// Upper bound of a part's uncompressed content.
    pub max_part_bytes: u64,
    pub date_folder: bool,
    /// Where to deliver (`s3://bucket/folder/`), unless `--deliver` says otherwise.
    pub deliver: Option<crate::upload::Destination>,
}

impl OutputOptions {
    /// The data source whose traits the files carry: the target DPID when there is one
    /// (a device data source's file), else the DPID.
    pub fn data_source(&self) -> u64 {
        self.target_dpid.unwrap_or(self.dpid)
    }
}

#[derive(Debug, Clone, PartialEq)]
pub struct UserIdSpec {
    /// The column that holds the user ID: the first of `[column, fallback...]` whose cell is
    /// not empty.
    pub column: String,
    /// Columns tried in turn where `column` is NULL or empty.
    pub fallback: Vec<String>,
    /// `template = "crm-{id}"`: what comes before and after the ID.
    pub template: Option<(String, String)>,
    pub id_type: IdType,
    pub trim: bool,
    pub normalize_case: bool,
    /// Send SHA-256 of the normalized e-mail address instead of the value.
    pub hash_email: bool,
}

/// Where a rule's values come from.
#[derive(Debug, Clone, PartialEq)]
pub enum Input {
    Column(String),
    /// A Polars SQL boolean expression over the source's columns.
    Condition(String),
}

/// How trait IDs found in a column are written.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Emit {
    /// `d_sid=N`
    Sid,
    /// `N`
    Ic,
    /// `ic=N`
    IcPrefixed,
    /// `d_unsid=N`
    Unsid,
    /// `N:0` or `N:-1`
    Remove(Removal),
}

impl Emit {
    pub fn make(self, id: u64) -> Trait {
        match self {
            Emit::Sid => Trait::Sid(id),
            Emit::Ic => Trait::Ic(id),
            Emit::IcPrefixed => Trait::IcPrefixed(id),
            Emit::Unsid => Trait::Unsid(id),
            Emit::Remove(r) => Trait::Remove(id, r),
        }
    }
}

#[derive(Debug, Clone, PartialEq)]
pub enum RuleKind {
    /// The column holds trait IDs (or text they are found in by `pattern`).
    TraitIds {
        emit: Emit,
        /// A regular expression whose first group (or whole match) is the trait ID.
        pattern: Option<String>,
    },
    /// A boolean column or condition: `on_true` when true, `on_false` (a removal) when false.
    Flag {
        on_true: Trait,
        on_false: Option<Trait>,
    },
    /// Values looked up in a table, each to the traits it adds and removes; values not in
    /// it are rejected or skipped.
    ValueMap {
        /// Keys lower-cased with `ignore_case`.
        values: BTreeMap<String, Vec<Trait>>,
        reject_unmapped: bool,
        /// Values are matched whatever their letter case.
        ignore_case: bool,
    },
    /// `key=value` signals with the cell's value.
    KeyValue {
        /// The key; empty when `key_column` gives each row's.
        key: String,
        key_column: Option<KeyColumn>,
        /// What is done to a value before it is sent.
        shape: Shape,
        /// What replaces a comma in a value; `None`: a value with a comma rejects its row.
        comma_replacement: Option<String>,
    },
    /// ID sync: a column of another data source's IDs, sent beside the master ID.
    SyncId {
        id_type: IdType,
        /// c2c: e-mail addresses, sent as the SHA-256 of the trimmed, lower-cased address.
        hash_email: bool,
    },
    /// c2c: what makes a row more recent than another (`latest_by`).
    SyncOrder,
}

#[derive(Debug, Clone, PartialEq)]
pub struct Rule {
    /// Key path of this rule in the mapping (`traits[0]`), for messages.
    pub path: String,
    pub input: Input,
    /// Polars SQL expression; rows where it is not true produce nothing from this rule.
    pub filter: Option<String>,
    pub split: Option<String>,
    /// `remove_when`: this rule applies only where the condition is true (`removes`), or only
    /// where it is not (NULL included).
    pub gate: Option<Gate>,
    /// `latest_by`: the rule takes, per user, only the values of the user's latest rows by
    /// the column `Mapping::latest_by[n]`.
    pub latest: Option<usize>,
    pub kind: RuleKind,
}

/// Where an attribute table's keys come from (`key_column`), and which are sent.
#[derive(Debug, Clone, PartialEq)]
pub struct KeyColumn {
    pub column: String,
    /// `keys`: the keys sent; rows with another are skipped and counted. `None`: every key.
    pub allowed: Option<std::collections::BTreeSet<String>>,
}

/// How a key-value value is shaped before it is sent, in this order: `map`, `buckets`,
/// `case`, `prefix`.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Shape {
    /// Values replaced as they are (`Y` -> `yes`; booleans are `true` and `false`).
    pub map: BTreeMap<String, String>,
    /// Numbers sent as the band between two edges: `<18`, `18-24`, ..., `65+`.
    pub buckets: Vec<i64>,
    pub case: Option<Case>,
    pub prefix: String,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Case {
    Lower,
    Upper,
}

impl Shape {
    pub fn is_identity(&self) -> bool {
        *self == Shape::default()
    }

    /// The value as it is sent; `Err` says why it cannot be (a bucket of text).
    pub fn apply<'a>(&self, value: &'a str) -> Result<std::borrow::Cow<'a, str>, String> {
        use std::borrow::Cow;
        let mut out = match self.map.get(value) {
            Some(v) => Cow::Owned(v.clone()),
            None => Cow::Borrowed(value),
        };
        if !self.buckets.is_empty() {
            let n: f64 = out
                .trim()
                .parse()
                .map_err(|_| format!("\"{out}\" is not a number, which `buckets` needs"))?;
            out = Cow::Owned(bucket(&self.buckets, n));
        }
        match self.case {
            Some(Case::Lower) if out.chars().any(char::is_uppercase) => {
                out = Cow::Owned(out.to_lowercase())
            }
            Some(Case::Upper) if out.chars().any(char::is_lowercase) => {
                out = Cow::Owned(out.to_uppercase())
            }
            _ => {}
        }
        if !self.prefix.is_empty() {
            out = Cow::Owned(format!("{}{out}", self.prefix));
        }
        Ok(out)
    }
}

/// The band of `n` between increasing `edges`: `<18`, `18-24` (an edge up to the next one
/// less one), `65+`.
fn bucket(edges: &[i64], n: f64) -> String {
    let above = edges.partition_point(|&e| (e as f64) <= n);
    match above {
        0 => format!("<{}", edges[0]),
        i if i == edges.len() => format!("{}+", edges[i - 1]),
        i => format!("{}-{}", edges[i - 1], edges[i] - 1),
    }
}

/// A `remove_when` condition, as one of the two rules it makes sees it.
#[derive(Debug, Clone, PartialEq)]
pub struct Gate {
    /// Polars SQL.
    pub sql: String,
    /// This rule is the removal one: it applies where the condition is true.
    pub removes: bool,
}

/// Incremental delivery (`[state]`): where the state of what was sent lives, and how often
/// a full refresh is sent.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct StateOptions {
    /// `--state` overrides it.
    pub path: Option<std::path::PathBuf>,
    /// A run is a full refresh when the last one is older than this many days.
    pub refresh_days: Option<u64>,
}

/// What an `[id_sync]` mapping writes: `adobe_id_<MASTER>_<DPID>..._<TS>.sync` or
/// `c2c_id_<CRM_DPID>_<HASHED_EMAIL_DPID>_<TS>.sync` files, a line of TAB-separated IDs per
/// pair (or tuple) found in the export.
#[derive(Debug, Clone, PartialEq)]
pub struct IdSync {
    pub kind: IdSyncKind,
    /// The data sources of the columns, the master first.
    pub dpids: Vec<u64>,
    /// c2c: at most this many hashed e-mails per CRM ID, the most recent (AAM keeps 10).
    pub max_emails: usize,
}

/// c2c: AAM keeps at most the 10 most recent hashed e-mails per CRM ID.
pub const MAX_EMAILS_PER_ID: usize = 10;

/// The ID type a column of `dpid`'s IDs holds: AAM UUIDs for 0, a device type for its global
/// data source, the company's own IDs otherwise.
pub fn id_type_of_dpid(dpid: u64) -> IdType {
    match dpid {
        0 => IdType::AamUuid,
        d => IdType::from_global_dpid(d).unwrap_or(IdType::Dpuuid),
    }
}

/// A checked mapping.
#[derive(Debug, Clone, PartialEq)]
pub struct Mapping {
    pub input: InputOptions,
    pub output: OutputOptions,
    pub user_id: UserIdSpec,
    pub rules: Vec<Rule>,
    pub state: StateOptions,
    /// An ID-synchronization mapping: its user ID is the master column, its rules the other
    /// ID columns.
    pub id_sync: Option<IdSync>,
    /// The data source's trait list (`[taxonomy] path`, relative to the mapping's folder;
    /// `--traits` overrides it).
    pub taxonomy: Option<std::path::PathBuf>,
    /// The `latest_by` columns rules use, each once, with the key path that names it first.
    pub latest_by: Vec<(String, String)>,
    /// Things that are allowed but probably not what the author meant.
    pub warnings: Vec<Problem>,
}

impl Mapping {
    /// What every file of a delivery at `timestamp` starts with: `ftp_dpm_21_1700000000`,
    /// `adobe_id_0_21_1700000000`.
    pub fn delivery_stem(&self, timestamp: u64) -> String {
        match &self.id_sync {
            Some(sync) => IdSyncName {
                kind: sync.kind,
                dpids: sync.dpids.clone(),
                timestamp,
                split: None,
                gzip: self.output.gzip,
            }
            .stem(),
            None => FileName {
                dpid: self.output.dpid,
                target_dpid: self.output.target_dpid,
                timestamp,
                mode: Mode::Sync,
                split: None,
                gzip: self.output.gzip,
                encrypted: false,
            }
            .stem(),
        }
    }

    /// Reads and checks a mapping file.
    pub fn load(path: &Path) -> Result<Mapping> {
        let text = std::fs::read_to_string(path).map_err(|e| Error::io(path, e))?;
        let mut mapping = Mapping::parse(&text).map_err(|problems| Error::Mapping {
            path: path.to_owned(),
            problems,
        })?;
        // The trait list is checked in beside the mapping: a relative path starts there.
        if let (Some(list), Some(dir)) = (&mut mapping.taxonomy, path.parent()) {
            if list.is_relative() {
                *list = dir.join(&*list);
            }
        }
        Ok(mapping)
    }

    /// Parses and checks mapping text, returning every problem found.
    pub fn parse(text: &str) -> Result<Mapping, Vec<Problem>> {
        // Every unknown key and wrong type at once; serde would stop at the first.
        schema::check(text)?;
        let raw: raw::RawMapping = toml::from_str(text).map_err(|e| vec![toml_problem(&e)])?;
        check::check(raw)
    }

    /// How removals of trait IDs are written when the mapping does not say it per rule (the
    /// state's removals of traits a user no longer has): the first removal form of a rule,
    /// else `d_unsid`.
    pub fn removal_form(&self) -> Emit {
        self.rules
            .iter()
            .find_map(|r| match &r.kind {
                RuleKind::TraitIds {
                    emit: e @ (Emit::Unsid | Emit::Remove(_)),
                    ..
                } => Some(*e),
                RuleKind::Flag {
                    on_false: Some(t), ..
                } => match t {
                    Trait::Remove(_, r) => Some(Emit::Remove(*r)),
                    _ => Some(Emit::Unsid),
                },
                _ => None,
            })
            .unwrap_or(Emit::Unsid)
    }

    /// Every source column the mapping names directly (conditions and filters are checked by
    /// Polars, which names the missing column itself).
    pub fn columns(&self) -> Vec<(String, &str)> {
        let mut cols = vec![("user_id.column".to_owned(), self.user_id.column.as_str())];
        for (i, c) in self.user_id.fallback.iter().enumerate() {
            cols.push((format!("user_id.column[{}]", i + 1), c.as_str()));
        }
        for rule in &self.rules {
            if let Input::Column(c) = &rule.input {
                cols.push((format!("{}.column", rule.path), c.as_str()));
            }
            if let RuleKind::KeyValue {
                key_column: Some(k),
                ..
            } = &rule.kind
            {
                cols.push((format!("{}.key_column", rule.path), k.column.as_str()));
            }
        }
        for (key, c) in &self.latest_by {
            cols.push((key.clone(), c.as_str()));
        }
        cols
    }

    /// Checks the named columns against the columns a source has.
    pub fn check_columns(&self, available: &[String]) -> Result<(), Vec<Problem>> {
        let problems: Vec<Problem> = self
            .columns()
            .into_iter()
            .filter(|(_, c)| !column_exists(c, available))
            .map(|(key, c)| {
                let hint = match closest(c, available) {
                    Some(m) => format!("; did you mean `{m}`?"),
                    None => String::new(),
                };
                Problem::new(
                    key,
                    format!(
                        "column `{c}` is not in the source{hint} (columns: {})",
                        available.join(", ")
                    ),
                )
            })
            .collect();
        if problems.is_empty() {
            Ok(())
        } else {
            Err(problems)
        }
    }
}

/// A column exists as named, or as a path into a nested (struct) column: `profile.tier`.
fn column_exists(name: &str, available: &[String]) -> bool {
    available.iter().any(|a| a == name)
        || name
            .split_once('.')
            .is_some_and(|(head, _)| available.iter().any(|a| a == head))
}

/// A TOML syntax or type error, as a problem with its line and column.
fn toml_problem(e: &toml::de::Error) -> Problem {
    let message = e.message().to_owned();
    Problem::new("", format!("{}{message}", span_note(e)))
}

fn span_note(e: &toml::de::Error) -> String {
    // toml's Display carries "TOML parse error at line L, column C" plus a snippet.
    let full = e.to_string();
    match full.lines().next() {
        Some(first) if first.starts_with("TOML parse error at ") => {
            format!("{}: ", first.trim_start_matches("TOML parse error at "))
        }
        _ => String::new(),
    }
}
