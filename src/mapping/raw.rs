//! Serde structs that mirror the mapping TOML exactly. Enumerated values stay strings here so
//! the check step can report every bad one, with its key path and the accepted spellings.

use serde::Deserialize;
use std::collections::BTreeMap;

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawMapping {
    #[serde(default)]
    pub input: RawInput,
    pub output: RawOutput,
    pub user_id: Option<RawUserId>,
    #[serde(default)]
    pub traits: Vec<RawRule>,
    #[serde(default)]
    pub state: RawState,
    #[serde(default)]
    pub taxonomy: RawTaxonomy,
    pub id_sync: Option<RawIdSync>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawIdSync {
    #[serde(rename = "type")]
    pub kind: Option<String>,
    pub columns: Vec<RawSyncColumn>,
    pub latest_by: Option<String>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawSyncColumn {
    pub column: String,
    pub dpid: u64,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawTaxonomy {
    pub path: Option<String>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawState {
    pub path: Option<String>,
    pub refresh_days: Option<u64>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawInput {
    pub format: Option<String>,
    pub delimiter: Option<String>,
    pub quote: Option<String>,
    pub has_header: Option<bool>,
    pub null_values: Option<Vec<String>>,
    pub encoding: Option<String>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawOutput {
    pub dpid: Option<u64>,
    pub target_dpid: Option<u64>,
    pub mode: Option<String>,
    pub gzip: Option<bool>,
    pub gzip_level: Option<u64>,
    pub max_part_bytes: Option<u64>,
    pub date_folder: Option<bool>,
    pub deliver: Option<String>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawUserId {
    pub column: Columns,
    pub template: Option<String>,
    pub latest_by: Option<String>,
    #[serde(rename = "type")]
    pub id_type: String,
    pub trim: Option<bool>,
    pub normalize_case: Option<bool>,
    pub hash: Option<String>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawRule {
    #[serde(rename = "type")]
    pub kind: String,
    pub column: Option<String>,
    pub when: Option<String>,
    #[serde(rename = "where")]
    pub filter: Option<String>,
    pub action: Option<String>,
    pub form: Option<String>,
    pub removal: Option<String>,
    pub trait_id: Option<u64>,
    pub remove_when_false: Option<bool>,
    pub values: Option<BTreeMap<String, TraitIdList>>,
    pub removes: Option<BTreeMap<String, TraitIdList>>,
    pub ignore_case: Option<bool>,
    pub remove_when: Option<String>,
    pub unmapped: Option<String>,
    pub key: Option<String>,
    pub key_column: Option<String>,
    pub keys: Option<Vec<String>>,
    pub map: Option<BTreeMap<String, String>>,
    pub case: Option<String>,
    pub prefix: Option<String>,
    pub buckets: Option<Vec<i64>>,
    pub pattern: Option<String>,
    pub latest_by: Option<String>,
    pub split: Option<String>,
    pub comma_replacement: Option<String>,
}

/// A value map's entry: one trait ID or several (`gold = [111, 112]`).
#[derive(Debug, Clone, Deserialize)]
#[serde(untagged)]
pub enum TraitIdList {
    One(u64),
    Many(Vec<u64>),
}

impl TraitIdList {
    pub fn ids(&self) -> &[u64] {
        match self {
            TraitIdList::One(id) => std::slice::from_ref(id),
            TraitIdList::Many(ids) => ids,
        }
    }
}

/// A column, or columns tried in order (`["crm_id", "legacy_id"]`).
#[derive(Debug, Clone, Deserialize)]
#[serde(untagged)]
pub enum Columns {
    One(String),
    Many(Vec<String>),
}

impl Columns {
    pub fn names(&self) -> &[String] {
        match self {
            Columns::One(c) => std::slice::from_ref(c),
            Columns::Many(c) => c,
        }
    }
}
