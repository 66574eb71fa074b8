//! The checks of one `[[traits]]` rule: its type, the keys that apply to it, where its
//! values come from, and what it produces.

use super::check::Findings;
use super::raw::RawRule;
use super::{Case, Emit, Gate, Input, KeyColumn, Rule, RuleKind, Shape};
use crate::inbound::{check_key, is_reserved_key, Mode, Removal, Trait, TraitError};
use std::collections::BTreeMap;

pub(super) const FORMS: &[(&str, Emit)] = &[
    ("d_sid", Emit::Sid),
    ("ic", Emit::Ic),
    ("ic_prefixed", Emit::IcPrefixed),
];
pub(super) const REMOVALS: &[(&str, Emit)] = &[
    ("d_unsid", Emit::Unsid),
    ("zero", Emit::Remove(Removal::Zero)),
    ("minus_one", Emit::Remove(Removal::MinusOne)),
];

const ONLY_SID_REMOVED: &str = "only d_sid traits can be removed; ic traits have no removal form";

/// Which optional keys each rule type takes; any other key given is an error.
fn allowed_keys(kind: &str) -> Option<&'static [&'static str]> {
    Some(match kind {
        "trait_ids" => &[
            "column",
            "action",
            "form",
            "removal",
            "split",
            "remove_when",
            "pattern",
        ],
        "flag" => &[
            "column",
            "trait_id",
            "form",
            "remove_when_false",
            "removal",
            "remove_when",
        ],
        "condition" => &["when", "trait_id", "form", "remove_when_false", "removal"],
        "value_map" => &[
            "column",
            "values",
            "removes",
            "ignore_case",
            "form",
            "removal",
            "unmapped",
            "split",
            "remove_when",
        ],
        "key_value" => &[
            "column",
            "key",
            "key_column",
            "keys",
            "map",
            "case",
            "prefix",
            "buckets",
            "split",
            "comma_replacement",
        ],
        _ => return None,
    })
}

fn given_keys(r: &RawRule) -> Vec<&'static str> {
    let mut keys = Vec::new();
    let mut add = |present: bool, name| {
        if present {
            keys.push(name)
        }
    };
    add(r.column.is_some(), "column");
    add(r.when.is_some(), "when");
    add(r.action.is_some(), "action");
    add(r.form.is_some(), "form");
    add(r.removal.is_some(), "removal");
    add(r.trait_id.is_some(), "trait_id");
    add(r.remove_when_false.is_some(), "remove_when_false");
    add(r.values.is_some(), "values");
    add(r.removes.is_some(), "removes");
    add(r.ignore_case.is_some(), "ignore_case");
    add(r.remove_when.is_some(), "remove_when");
    add(r.unmapped.is_some(), "unmapped");
    add(r.key.is_some(), "key");
    add(r.key_column.is_some(), "key_column");
    add(r.keys.is_some(), "keys");
    add(r.map.is_some(), "map");
    add(r.case.is_some(), "case");
    add(r.prefix.is_some(), "prefix");
    add(r.buckets.is_some(), "buckets");
    add(r.pattern.is_some(), "pattern");
    add(r.latest_by.is_some(), "latest_by");
    add(r.split.is_some(), "split");
    add(r.comma_replacement.is_some(), "comma_replacement");
    keys
}

/// The rules a `[[traits]]` entry becomes: one, or two with `remove_when` (the rule where the
/// condition is not true, and its removals where it is).
pub(super) fn check_rule(i: usize, r: &RawRule, mode: Mode, f: &mut Findings) -> Vec<Rule> {
    let Some(rule) = check_one(i, r, mode, f) else {
        return Vec::new();
    };
    let Some(sql) = &r.remove_when else {
        return vec![rule];
    };
    if sql.trim().is_empty() {
        f.error(
            format!("{}.remove_when", rule.path),
            "empty condition: remove it or write one such as \"status <> 'active'\"",
        );
        return Vec::new();
    }
    if mode == Mode::Overwrite {
        f.warn(
            format!("{}.remove_when", rule.path),
            "ignored in mode = \"overwrite\": removals are not written there, and rows where it is true add nothing",
        );
    }
    let removal = removal_of(&rule.kind, r, f, &rule.path);
    let gate = |removes| {
        Some(Gate {
            sql: sql.clone(),
            removes,
        })
    };
    let mut rules = vec![Rule {
        gate: gate(false),
        ..rule.clone()
    }];
    if let (Some(kind), false) = (removal, mode == Mode::Overwrite) {
        rules.push(Rule {
            gate: gate(true),
            kind,
            ..rule
        });
    }
    rules
}

/// What a rule does instead where its `remove_when` is true: it removes the trait IDs it would
/// add, written as its `removal` says.
fn removal_of(kind: &RuleKind, r: &RawRule, f: &mut Findings, path: &str) -> Option<RuleKind> {
    let key = format!("{path}.remove_when");
    // Its spelling was checked with the rule.
    let removal = REMOVALS
        .iter()
        .find(|(name, _)| Some(*name) == r.removal.as_deref())
        .map_or(Emit::Unsid, |&(_, e)| e);
    match kind {
        RuleKind::TraitIds {
            emit: Emit::Sid,
            pattern,
        } => Some(RuleKind::TraitIds {
            emit: removal,
            pattern: pattern.clone(),
        }),
        RuleKind::Flag {
            on_true: Trait::Sid(id),
            ..
        } => Some(RuleKind::Flag {
            on_true: removal.make(*id),
            on_false: Some(removal.make(*id)),
        }),
        RuleKind::ValueMap {
            values,
            reject_unmapped,
            ignore_case,
        } => Some(RuleKind::ValueMap {
            values: values
                .iter()
                .map(|(k, traits)| {
                    let removed = traits.iter().filter_map(|t| match t {
                        Trait::Sid(id) => Some(removal.make(*id)),
                        _ => None,
                    });
                    // What the value removes anyway (`removes`) stays removed.
                    let kept = traits.iter().filter(|t| is_removal(t)).cloned();
                    (k.clone(), removed.chain(kept).collect())
                })
                .collect(),
            reject_unmapped: *reject_unmapped,
            ignore_case: *ignore_case,
        }),
        RuleKind::TraitIds {
            emit: Emit::Unsid | Emit::Remove(_),
            ..
        } => {
            f.error(
                key,
                "a rule with action = \"remove\" removes on every row already; remove_when applies to rules that add",
            );
            None
        }
        _ => {
            f.error(key, ONLY_SID_REMOVED);
            None
        }
    }
}

fn is_removal(t: &Trait) -> bool {
    matches!(t.target(), Some((_, false)))
}

fn check_one(i: usize, r: &RawRule, mode: Mode, f: &mut Findings) -> Option<Rule> {
    let path = format!("traits[{i}]");
    let key = |k: &str| format!("{path}.{k}");
    let Some(allowed) = allowed_keys(&r.kind) else {
        f.error(
            key("type"),
            format!(
                "unknown rule type \"{}\"; expected one of \"trait_ids\", \"flag\", \"condition\", \"value_map\", \"key_value\"",
                r.kind
            ),
        );
        return None;
    };
    let errors_before = f.errors.len();
    for k in given_keys(r) {
        // Every rule may take its values from the user's latest row only.
        if !allowed.contains(&k) && k != "latest_by" {
            f.error(
                key(k),
                format!("does not apply to type = \"{}\" rules", r.kind),
            );
        }
    }
    let input = rule_input(r, &key, f);
    if let Some(w) = &r.filter {
        if w.trim().is_empty() {
            f.error(key("where"), "empty filter: remove it or write a condition");
        }
    }
    if r.split.as_deref() == Some("") {
        f.error(
            key("split"),
            "empty separator: remove it or give one such as \"|\"",
        );
    }
    let form = f.choice(&key("form"), r.form.as_deref(), Emit::Sid, FORMS);
    let removal = f.choice(&key("removal"), r.removal.as_deref(), Emit::Unsid, REMOVALS);
    let mut kind = match r.kind.as_str() {
        "trait_ids" => trait_ids_rule(r, form, removal, &key, f),
        "flag" | "condition" => flag_rule(r, form, removal, &key, f)?,
        "value_map" => value_map_rule(r, form, removal, &key, f)?,
        "key_value" => key_value_rule(r, &key, f),
        _ => unreachable!("allowed_keys knows every rule type"),
    };
    if f.errors.len() > errors_before || !fit_mode(&mut kind, mode, &path, f) {
        return None;
    }
    Some(Rule {
        path,
        input,
        filter: r.filter.clone(),
        split: r.split.clone(),
        gate: None,
        latest: None,
        kind,
    })
}

/// Where a rule's values come from: its `when` condition or its `column`.
fn rule_input(r: &RawRule, key: &dyn Fn(&str) -> String, f: &mut Findings) -> Input {
    if r.kind == "condition" {
        match r.when.as_deref().map(str::trim) {
            Some(w) if !w.is_empty() => Input::Condition(w.to_owned()),
            _ => {
                f.error(key("when"), "missing: a condition such as `ltv > 1000`");
                Input::Condition(String::new())
            }
        }
    } else {
        match r.column.as_deref() {
            Some(c) if !c.is_empty() => Input::Column(c.to_owned()),
            _ => {
                f.error(key("column"), "missing: name the source column");
                Input::Column(String::new())
            }
        }
    }
}

fn key_value_rule(r: &RawRule, key: &dyn Fn(&str) -> String, f: &mut Findings) -> RuleKind {
    let key_column = r.key_column.as_ref().map(|column| {
        if r.key.is_some() {
            f.error(
                key("key"),
                "give `key` (one key for every row) or `key_column` (each row's key), not both",
            );
        }
        if column.is_empty() {
            f.error(
                key("key_column"),
                "empty: name the column that holds the keys",
            );
        }
        let allowed = r.keys.as_ref().map(|keys| {
            for (i, k) in keys.iter().enumerate() {
                check_signal_key(k, &key(&format!("keys[{i}]")), f);
            }
            keys.iter().cloned().collect()
        });
        KeyColumn {
            column: column.clone(),
            allowed,
        }
    });
    if r.keys.is_some() && key_column.is_none() {
        f.error(key("keys"), "applies only with `key_column`");
    }
    let name = match &key_column {
        Some(_) => String::new(),
        None => {
            let name = r
                .key
                .clone()
                .or_else(|| r.column.clone())
                .unwrap_or_default();
            let which = if r.key.is_some() { "key" } else { "column" };
            check_signal_key(&name, &key(which), f);
            name
        }
    };
    if let Some(with) = &r.comma_replacement {
        if let Err(e) = Trait::signal("k", with) {
            f.error(
                key("comma_replacement"),
                format!("\"{with}\" cannot replace a comma: {e}"),
            );
        }
    }
    let buckets = r.buckets.clone().unwrap_or_default();
    if r.buckets.is_some() && (buckets.is_empty() || buckets.windows(2).any(|w| w[0] >= w[1])) {
        f.error(
            key("buckets"),
            "give increasing edges, e.g. [18, 25, 35, 45, 65] for <18, 18-24, ..., 65+",
        );
    }
    let case = f.choice(
        &key("case"),
        r.case.as_deref(),
        None,
        &[("lower", Some(Case::Lower)), ("upper", Some(Case::Upper))],
    );
    let shape = Shape {
        map: r.map.clone().unwrap_or_default(),
        buckets,
        case,
        prefix: r.prefix.clone().unwrap_or_default(),
    };
    // What the mapping itself writes must be sendable: each `map` value and the prefix.
    let written = shape
        .map
        .iter()
        .map(|(k, v)| (format!("map.{k}"), v.as_str()))
        .chain(r.prefix.iter().map(|p| ("prefix".to_owned(), p.as_str())));
    for (at, text) in written {
        if let Err(e) = Trait::check_value(text) {
            f.error(key(&at), format!("\"{text}\" cannot be sent: {e}"));
        }
    }
    RuleKind::KeyValue {
        key: name,
        key_column,
        shape,
        comma_replacement: r.comma_replacement.clone(),
    }
}

fn trait_ids_rule(
    r: &RawRule,
    form: Emit,
    removal: Emit,
    key: &dyn Fn(&str) -> String,
    f: &mut Findings,
) -> RuleKind {
    let remove = f.choice(
        &key("action"),
        r.action.as_deref(),
        false,
        &[("add", false), ("remove", true)],
    );
    if remove && r.form.is_some() {
        f.error(
            key("form"),
            "`form` sets how additions are written; removals use `removal`",
        );
    }
    if !remove && r.removal.is_some() && r.remove_when.is_none() {
        f.error(
            key("removal"),
            "applies only with action = \"remove\" or remove_when",
        );
    }
    if let Some(p) = &r.pattern {
        match regex::Regex::new(p) {
            Ok(re) if re.captures_len() > 2 => f.error(
                key("pattern"),
                format!("`{p}` has {} groups; give one, around the digits of the trait ID, e.g. \"SEG-(\\d+)\"", re.captures_len() - 1),
            ),
            Ok(_) => {}
            Err(e) => f.error(
                key("pattern"),
                format!("`{p}` is not a regular expression: {}", e.to_string().lines().last().unwrap_or_default()),
            ),
        }
    }
    RuleKind::TraitIds {
        emit: if remove { removal } else { form },
        pattern: r.pattern.clone(),
    }
}

fn flag_rule(
    r: &RawRule,
    form: Emit,
    removal: Emit,
    key: &dyn Fn(&str) -> String,
    f: &mut Findings,
) -> Option<RuleKind> {
    let Some(id) = r.trait_id else {
        f.error(key("trait_id"), "missing: the trait ID to add when true");
        return None;
    };
    let remove = r.remove_when_false.unwrap_or(false);
    if r.removal.is_some() && !remove && r.remove_when.is_none() {
        f.error(
            key("removal"),
            "applies only with remove_when_false = true or remove_when",
        );
    }
    if remove && form != Emit::Sid {
        f.error(key("remove_when_false"), ONLY_SID_REMOVED);
    }
    Some(RuleKind::Flag {
        on_true: form.make(id),
        on_false: remove.then(|| removal.make(id)),
    })
}

fn value_map_rule(
    r: &RawRule,
    form: Emit,
    removal: Emit,
    key: &dyn Fn(&str) -> String,
    f: &mut Findings,
) -> Option<RuleKind> {
    let empty = BTreeMap::new();
    let adds = r.values.as_ref().unwrap_or(&empty);
    let removes = r.removes.as_ref().unwrap_or(&empty);
    if adds.is_empty() && removes.is_empty() {
        f.error(
            key("values"),
            "missing: a table of value = trait ID, e.g. { gold = 111, silver = 112 } (a value may list several: gold = [111, 112])",
        );
        return None;
    }
    if r.removes.is_some() && form != Emit::Sid {
        f.error(key("removes"), ONLY_SID_REMOVED);
    }
    if r.removal.is_some() && r.removes.is_none() && r.remove_when.is_none() {
        f.error(
            key("removal"),
            "applies only with `removes` or `remove_when`",
        );
    }
    let reject_unmapped = f.choice(
        &key("unmapped"),
        r.unmapped.as_deref(),
        true,
        &[("reject", true), ("skip", false)],
    );
    let ignore_case = r.ignore_case.unwrap_or(false);
    // Each value's traits: what it adds, then what it removes.
    let mut values: BTreeMap<String, Vec<Trait>> = BTreeMap::new();
    let mut spelled: BTreeMap<String, String> = BTreeMap::new();
    let entries = adds
        .iter()
        .map(|e| (e, "values", form))
        .chain(removes.iter().map(|e| (e, "removes", removal)));
    for ((value, ids), table, emit) in entries {
        let folded = if ignore_case {
            value.to_lowercase()
        } else {
            value.clone()
        };
        if let Some(first) = spelled.get(&folded) {
            if first != value {
                f.error(
                    key(&format!("{table}.{value}")),
                    format!(
                        "\"{value}\" and \"{first}\" are the same value with ignore_case = true; list it once"
                    ),
                );
                continue;
            }
        }
        spelled.insert(folded.clone(), value.clone());
        let traits = values.entry(folded).or_default();
        for &id in ids.ids() {
            let t = emit.make(id);
            if !traits.contains(&t) {
                traits.push(t);
            }
        }
    }
    for (value, traits) in &values {
        let added = |id: u64| traits.iter().any(|t| *t == form.make(id));
        if let Some(id) = traits
            .iter()
            .filter(|t| is_removal(t))
            .find_map(|t| t.target().map(|(id, _)| id).filter(|&id| added(id)))
        {
            f.error(
                key(&format!("removes.{value}")),
                format!("\"{value}\" both adds and removes trait {id}; keep one"),
            );
        }
    }
    Some(RuleKind::ValueMap {
        values,
        reject_unmapped,
        ignore_case,
    })
}

/// SPEC: File names. AAM ignores d_unsid removals in .overwrite files, and an overwrite
/// replaces a user's traits anyway, so removals are left out with a warning; false when the
/// whole rule is.
fn fit_mode(kind: &mut RuleKind, mode: Mode, path: &str, f: &mut Findings) -> bool {
    if mode != Mode::Overwrite {
        return true;
    }
    match kind {
        RuleKind::TraitIds {
            emit: Emit::Unsid | Emit::Remove(_),
            ..
        } => {
            f.warn(
                path,
                "removal rule ignored: mode = \"overwrite\" replaces all of a user's traits and AAM ignores removals there",
            );
            false
        }
        RuleKind::Flag { on_false, .. } if on_false.is_some() => {
            f.warn(
                format!("{path}.remove_when_false"),
                "ignored in mode = \"overwrite\": removals are not written there",
            );
            *on_false = None;
            true
        }
        _ => true,
    }
}

fn check_signal_key(name: &str, key: &str, f: &mut Findings) {
    let Err(e) = check_key(name) else {
        return;
    };
    let message = match e {
        TraitError::EmptyKey => "the signal key is empty".to_owned(),
        _ if name.starts_with('-') => format!(
            "signal key \"{name}\" starts with `-`, which AAM strips; set `key` to a name without it"
        ),
        TraitError::ReservedKey(_) => format!(
            "signal key \"{name}\" is a trait prefix: AAM would read `{name}=...` as a trait ID, not a signal; set `key` to another name, such as key = \"{}_value\"",
            name.to_ascii_lowercase()
        ),
        _ => format!(
            "signal key \"{name}\" must be letters, digits and underscores (Adobe: keys are alphanumeric); set key = \"{}\"",
            suggested_key(name)
        ),
    };
    f.error(key, message);
}

/// A key AAM takes for `name`: lowercase ASCII letters and digits, other runs as one `_`.
pub(super) fn suggested_key(name: &str) -> String {
    let mut out = String::new();
    for c in name.chars() {
        if c.is_ascii_alphanumeric() {
            out.push(c.to_ascii_lowercase());
        } else if !out.is_empty() && !out.ends_with('_') {
            out.push('_');
        }
    }
    let out = out.trim_end_matches('_').to_owned();
    if out.is_empty() || is_reserved_key(&out) {
        "signal".to_owned()
    } else {
        out
    }
}
