//! AAM's trait list (SPEC: Trait taxonomy): which trait IDs a file may add or remove, and
//! which signals some rule-based trait refers to. A file that passes every format check
//! still changes nothing when its `d_sid` is not an onboarded trait of its data source, or
//! when no rule reads its signals; with the list at hand, the tool says so before upload.
//!
//! The list is the JSON that AAM's REST API returns for a data source's traits (an array of
//! objects, or an object with the array in `list`), or a CSV with the same field names as
//! its header.

use crate::error::{Error, Result};
use crate::inbound::{ElementValue, IdTrait, Trait};
use serde::Deserialize;
use std::collections::{HashMap, HashSet};
use std::path::{Path, PathBuf};

/// `traitType` of a trait whose users come from inbound files.
pub const ONBOARDED: &str = "ON_BOARDED_TRAIT";

/// A data source's traits, loaded from the file AAM's API gives.
#[derive(Debug)]
pub struct Taxonomy {
    path: PathBuf,
    /// Trait ID -> its type and data source.
    traits: HashMap<u64, Listed>,
    /// Data source -> the keys named in its rule-based traits' `traitRule`s.
    keys: HashMap<u64, HashSet<String>>,
    /// (data source, N) for `ic == "N"` in a rule-based trait's `traitRule`.
    ics: HashSet<(u64, u64)>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
struct Listed {
    trait_type: String,
    data_source: u64,
}

/// Why a trait ID cannot be realized by a file of a data source.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Refusal {
    /// Not in the list.
    Unknown,
    /// Listed, but not an onboarded trait (its `traitType`): AAM realizes only onboarded
    /// traits from an inbound file.
    NotOnboarded(String),
    /// An onboarded trait of another data source (its `dataSourceId`).
    OtherDataSource(u64),
}

impl Refusal {
    /// What it means for trait `id` in a file of `data_source`, and what to do, naming the
    /// list.
    pub fn describe(&self, id: u64, data_source: u64, list: &Path) -> String {
        let list = list.display();
        match self {
            Refusal::Unknown => format!(
                "trait {id} is not in the trait list {list}; AAM would report \"No Trait Realized\" (create the trait in AAM, fix the ID, or refresh the list)"
            ),
            Refusal::NotOnboarded(t) => format!(
                "trait {id} is a {t}, not an {ONBOARDED}, in {list}; AAM realizes only onboarded traits from a file"
            ),
            Refusal::OtherDataSource(ds) => format!(
                "trait {id} belongs to data source {ds}, not {data_source}, in {list}; AAM would report \"Traits failed validation\""
            ),
        }
    }
}

/// One trait as the API writes it; fields the checks do not use are ignored.
#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase")]
struct RawTrait {
    sid: u64,
    trait_type: String,
    data_source_id: u64,
    #[serde(default)]
    trait_rule: Option<String>,
}

#[derive(Deserialize)]
#[serde(untagged)]
enum RawList {
    Array(Vec<RawTrait>),
    /// A paged answer: `{"list": [...], "total": ...}`.
    Paged {
        list: Vec<RawTrait>,
    },
}

impl Taxonomy {
    /// Reads a `.json` or `.csv` trait list.
    pub fn load(path: &Path) -> Result<Taxonomy> {
        let bad = |message: String| Error::Taxonomy {
            path: path.to_owned(),
            message,
        };
        let text = std::fs::read_to_string(path).map_err(|e| Error::io(path, e))?;
        let ext = path
            .extension()
            .and_then(|e| e.to_str())
            .map(str::to_ascii_lowercase);
        let raw = match ext.as_deref() {
            Some("json") => match serde_json::from_str::<RawList>(&text) {
                Ok(RawList::Array(list) | RawList::Paged { list }) => list,
                Err(e) => {
                    // The untagged enum's own message says nothing useful: read it as an
                    // array again for the field and line at fault.
                    let why = serde_json::from_str::<Vec<RawTrait>>(&text)
                        .err()
                        .map_or(e.to_string(), |e| e.to_string());
                    return Err(bad(format!(
                        "not a trait list: {why}; expected an array of objects with sid, traitType, dataSourceId (and traitRule), as AAM's GET /v1/traits returns"
                    )));
                }
            },
            Some("csv") => from_csv(&text).map_err(bad)?,
            _ => {
                return Err(bad(
                    "name the trait list .json (AAM's API answer) or .csv (columns sid, traitType, dataSourceId, traitRule)".into(),
                ))
            }
        };
        Taxonomy::from_traits(path, raw).map_err(bad)
    }

    fn from_traits(path: &Path, raw: Vec<RawTrait>) -> std::result::Result<Taxonomy, String> {
        let mut t = Taxonomy {
            path: path.to_owned(),
            traits: HashMap::with_capacity(raw.len()),
            keys: HashMap::new(),
            ics: HashSet::new(),
        };
        for r in raw {
            let listed = Listed {
                trait_type: r.trait_type.trim().to_owned(),
                data_source: r.data_source_id,
            };
            if let Some(rule) = r.trait_rule.as_deref().filter(|_| listed.is_rule_based()) {
                let refs = rule_refs(rule);
                t.keys
                    .entry(r.data_source_id)
                    .or_default()
                    .extend(refs.keys);
                t.ics
                    .extend(refs.ics.into_iter().map(|n| (r.data_source_id, n)));
            }
            if let Some(first) = t.traits.insert(r.sid, listed.clone()) {
                if first != listed {
                    return Err(format!(
                        "trait {} is listed twice, differently ({} of data source {}, then {} of data source {}); export the list again",
                        r.sid, first.trait_type, first.data_source, listed.trait_type, listed.data_source
                    ));
                }
            }
        }
        Ok(t)
    }

    pub fn path(&self) -> &Path {
        &self.path
    }

    /// Traits listed.
    pub fn len(&self) -> usize {
        self.traits.len()
    }

    pub fn is_empty(&self) -> bool {
        self.traits.is_empty()
    }

    /// Whether a file of `data_source` can add or remove trait `id`.
    pub fn check_id(&self, id: u64, data_source: u64) -> std::result::Result<(), Refusal> {
        let Some(listed) = self.traits.get(&id) else {
            return Err(Refusal::Unknown);
        };
        if listed.trait_type != ONBOARDED {
            return Err(Refusal::NotOnboarded(listed.trait_type.clone()));
        }
        if listed.data_source != data_source {
            return Err(Refusal::OtherDataSource(listed.data_source));
        }
        Ok(())
    }

    /// `check_id` for a trait that adds or removes a trait ID; signals pass.
    pub fn check(&self, t: &Trait, data_source: u64) -> std::result::Result<(), Refusal> {
        match t.target() {
            Some((id, _)) => self.check_id(id, data_source),
            None => Ok(()),
        }
    }

    /// The key a signal is counted under when no rule-based trait of `data_source` reads
    /// it: a key-value signal's key (rules read keys), or `ic` for an `ic` value no rule
    /// matches (`ic=="30608"`); `None` for a trait ID, or a signal some rule reads.
    pub fn unrealized_key<'v>(
        &self,
        data_source: u64,
        element: &ElementValue<'v>,
    ) -> Option<&'v str> {
        match *element {
            ElementValue::Signal { key, .. } => {
                let read = self
                    .keys
                    .get(&data_source)
                    .is_some_and(|keys| keys.contains(key));
                (!read).then_some(key)
            }
            ElementValue::Id(IdTrait::Ic(n) | IdTrait::IcPrefixed(n)) => {
                (!self.ics.contains(&(data_source, n))).then_some("ic")
            }
            ElementValue::Id(_) => None,
        }
    }
}

impl Listed {
    fn is_rule_based(&self) -> bool {
        self.trait_type != ONBOARDED && self.trait_type != "SEGMENT"
    }
}

/// Reads the CSV form: a header naming at least sid, traitType and dataSourceId (any case,
/// `_` ignored), optionally traitRule.
fn from_csv(text: &str) -> std::result::Result<Vec<RawTrait>, String> {
    let mut reader = csv::ReaderBuilder::new()
        .flexible(false)
        .from_reader(text.as_bytes());
    let header = reader.headers().map_err(|e| e.to_string())?.clone();
    let norm = |s: &str| s.trim().replace('_', "").to_ascii_lowercase();
    let col = |name: &str| header.iter().position(|h| norm(h) == norm(name));
    let need = |name: &str| {
        col(name).ok_or_else(|| {
            format!(
                "no `{name}` column in the header ({}); the columns are sid, traitType, dataSourceId and traitRule",
                header.iter().collect::<Vec<_>>().join(", ")
            )
        })
    };
    let (sid, kind, ds) = (need("sid")?, need("traitType")?, need("dataSourceId")?);
    let rule = col("traitRule");
    let mut out = Vec::new();
    for (i, record) in reader.records().enumerate() {
        let line = i + 2;
        let record = record.map_err(|e| format!("line {line}: {e}"))?;
        let field = |c: usize| record.get(c).unwrap_or("").trim();
        let number = |c: usize, name: &str| {
            field(c)
                .parse::<u64>()
                .map_err(|_| format!("line {line}: {name} \"{}\" is not a whole number", field(c)))
        };
        out.push(RawTrait {
            sid: number(sid, "sid")?,
            trait_type: field(kind).to_owned(),
            data_source_id: number(ds, "dataSourceId")?,
            trait_rule: rule.map(|c| field(c).to_owned()).filter(|r| !r.is_empty()),
        });
    }
    Ok(out)
}

/// What a `traitRule` reads.
#[derive(Debug, Default, PartialEq, Eq)]
struct RuleRefs {
    keys: Vec<String>,
    ics: Vec<u64>,
}

/// Words of the rule language that are not keys.
const RULE_WORDS: [&str; 11] = [
    "and",
    "or",
    "not",
    "contains",
    "matches",
    "startswith",
    "endswith",
    "true",
    "false",
    "null",
    "in",
];

/// The keys a `traitRule` compares (`city == "Boston" AND age > 30`: city, age) and the `ic`
/// values it matches (`ic == "30608"`). Text in quotes is a value, not a key. A key with
/// AAM's `c_` or `p_` prefix also counts for the key without it: whether the file's key
/// carries the prefix is not always visible in the rule, and a warning that stays silent
/// is better than one that cries wolf.
fn rule_refs(rule: &str) -> RuleRefs {
    let mut refs = RuleRefs::default();
    let b = rule.as_bytes();
    let mut i = 0;
    while i < b.len() {
        let c = b[i];
        if c == b'"' || c == b'\'' {
            i = skip_quoted(b, i);
        } else if c.is_ascii_alphabetic() || c == b'_' {
            let start = i;
            while i < b.len() && (b[i].is_ascii_alphanumeric() || b[i] == b'_' || b[i] == b'.') {
                i += 1;
            }
            let word = &rule[start..i];
            if RULE_WORDS.iter().any(|w| w.eq_ignore_ascii_case(word)) {
                continue;
            }
            if word.eq_ignore_ascii_case("ic") {
                if let Some(n) = ic_value(&rule[i..]) {
                    refs.ics.push(n);
                }
                continue;
            }
            refs.keys.push(word.to_owned());
            for prefix in ["c_", "p_"] {
                if let Some(bare) = word.strip_prefix(prefix).filter(|k| !k.is_empty()) {
                    refs.keys.push(bare.to_owned());
                }
            }
        } else if c.is_ascii_digit() {
            while i < b.len() && (b[i].is_ascii_alphanumeric() || b[i] == b'.') {
                i += 1;
            }
        } else {
            i += 1;
        }
    }
    refs
}

/// Past a quoted string that starts at `at` (a backslash escapes the next character).
fn skip_quoted(b: &[u8], at: usize) -> usize {
    let quote = b[at];
    let mut i = at + 1;
    while i < b.len() && b[i] != quote {
        i += if b[i] == b'\\' { 2 } else { 1 };
    }
    i + 1
}

/// The N of `== "N"` (or `== N`) at the start of `rest`.
fn ic_value(rest: &str) -> Option<u64> {
    let rest = rest.trim_start().strip_prefix("==")?.trim_start();
    let rest = rest.trim_start_matches(['"', '\'']);
    let digits: &str = &rest[..rest.bytes().take_while(u8::is_ascii_digit).count()];
    digits.parse().ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn refs(rule: &str) -> (Vec<&str>, Vec<u64>) {
        let r = rule_refs(rule);
        // Leaked for the comparison's convenience; a test's few bytes.
        let keys = r.keys.into_iter().map(|k| &*k.leak()).collect();
        (keys, r.ics)
    }

    #[test]
    fn a_rule_names_its_keys_not_its_values_or_words() {
        assert_eq!(refs(r#"city=="Boston""#), (vec!["city"], vec![]));
        assert_eq!(
            refs(r#"(age > 30) AND (tier == "gold or silver") OR NOT contains(city, "x")"#),
            (vec!["age", "tier", "city"], vec![])
        );
        assert_eq!(
            refs(r#"c_city == 'a\'b' and x.y >= 1.5"#),
            (vec!["c_city", "city", "x.y"], vec![])
        );
    }

    #[test]
    fn a_rule_names_ic_values() {
        assert_eq!(refs(r#"ic=="30608""#), (vec![], vec![30608]));
        assert_eq!(refs(r#"ic == 12 OR IC == "13""#), (vec![], vec![12, 13]));
        assert_eq!(refs(r#"ic contains "9""#), (vec![], vec![]));
    }

    fn list() -> Taxonomy {
        let raw = serde_json::from_str::<Vec<RawTrait>>(
            r#"[
              {"sid": 111, "name": "Gold", "traitType": "ON_BOARDED_TRAIT", "dataSourceId": 21},
              {"sid": 112, "traitType": "RULE_BASED_TRAIT", "dataSourceId": 21, "traitRule": "city==\"Boston\" OR ic==\"30608\""},
              {"sid": 113, "traitType": "ON_BOARDED_TRAIT", "dataSourceId": 99},
              {"sid": 114, "traitType": "RULE_BASED_TRAIT", "dataSourceId": 99, "traitRule": "age > 3"}
            ]"#,
        )
        .expect("a list");
        Taxonomy::from_traits(Path::new("t.json"), raw).expect("consistent")
    }

    #[test]
    fn trait_ids_are_checked_for_existence_type_and_data_source() {
        let t = list();
        assert_eq!(t.check_id(111, 21), Ok(()));
        assert_eq!(t.check_id(110, 21), Err(Refusal::Unknown));
        assert_eq!(
            t.check_id(112, 21),
            Err(Refusal::NotOnboarded("RULE_BASED_TRAIT".into()))
        );
        assert_eq!(t.check_id(113, 21), Err(Refusal::OtherDataSource(99)));
        assert_eq!(
            t.check(&Trait::Remove(113, crate::inbound::Removal::Zero), 99),
            Ok(())
        );
        assert_eq!(t.check(&Trait::Ic(110), 21), Ok(()), "ic is a signal");
    }

    /// `unrealized_key` of an element as a file writes it.
    fn unrealized(t: &Taxonomy, data_source: u64, text: &str) -> Option<String> {
        let element = crate::inbound::parse_element(text).expect("a trait element");
        t.unrealized_key(data_source, &element.value)
            .map(str::to_owned)
    }

    #[test]
    fn signals_are_realized_by_rules_of_the_same_data_source() {
        let t = list();
        assert_eq!(unrealized(&t, 21, "city=Boston").as_deref(), None);
        assert_eq!(unrealized(&t, 21, "city=\"New York\"").as_deref(), None);
        assert_eq!(
            unrealized(&t, 21, "age=4").as_deref(),
            Some("age"),
            "age is read for 99 only"
        );
        assert_eq!(unrealized(&t, 99, "age=4").as_deref(), None);
        assert_eq!(unrealized(&t, 21, "30608").as_deref(), None);
        assert_eq!(unrealized(&t, 21, "ic=30608").as_deref(), None);
        assert_eq!(unrealized(&t, 21, "ic=1").as_deref(), Some("ic"));
        assert_eq!(
            unrealized(&t, 21, "d_sid=110").as_deref(),
            None,
            "not a signal"
        );
    }

    #[test]
    fn the_csv_form_reads_the_same_fields() {
        let raw = from_csv(
            "sid,name,trait_type,DataSourceId,traitRule\n111,Gold,ON_BOARDED_TRAIT,21,\n112,Boston,RULE_BASED_TRAIT,21,\"city==\"\"Boston\"\"\"\n",
        )
        .expect("read");
        let t = Taxonomy::from_traits(Path::new("t.csv"), raw).expect("consistent");
        assert_eq!(t.check_id(111, 21), Ok(()));
        assert_eq!(unrealized(&t, 21, "city=x").as_deref(), None);
        let e = from_csv("sid,traitType\n1,ON_BOARDED_TRAIT\n").err();
        assert!(e.is_some_and(|e| e.contains("no `dataSourceId` column")));
        let e = from_csv("sid,traitType,dataSourceId\n1x,ON_BOARDED_TRAIT,21\n").err();
        assert_eq!(
            e.as_deref(),
            Some("line 2: sid \"1x\" is not a whole number")
        );
    }

    #[test]
    fn a_trait_listed_twice_differently_is_an_error() {
        let raw =
            from_csv("sid,traitType,dataSourceId\n1,ON_BOARDED_TRAIT,21\n1,ON_BOARDED_TRAIT,22\n")
                .expect("read");
        let e = Taxonomy::from_traits(Path::new("t.csv"), raw).err();
        assert!(e.is_some_and(|e| e.starts_with("trait 1 is listed twice")));
    }
}
