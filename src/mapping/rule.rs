//! The checks of one `[[traits]]` rule: its type, the keys that apply to it, where its
//! values come from, and what it produces.

use super::check::Findings;
use super::raw::RawRule;
use super::{Emit, Input, Rule, RuleKind};
use crate::inbound::{check_key, is_reserved_key, Mode, Removal, Trait, TraitError};
use std::collections::BTreeMap;

const FORMS: &[(&str, Emit)] = &[
    ("d_sid", Emit::Sid),
    ("ic", Emit::Ic),
    ("ic_prefixed", Emit::IcPrefixed),
];
const REMOVALS: &[(&str, Emit)] = &[
    ("d_unsid", Emit::Unsid),
    ("zero", Emit::Remove(Removal::Zero)),
    ("minus_one", Emit::Remove(Removal::MinusOne)),
];

/// Which optional keys each rule type takes; any other key given is an error.
fn allowed_keys(kind: &str) -> Option<&'static [&'static str]> {
    Some(match kind {
        "trait_ids" => &["column", "action", "form", "removal", "split"],
        "flag" => &["column", "trait_id", "form", "remove_when_false", "removal"],
        "condition" => &["when", "trait_id", "form", "remove_when_false", "removal"],
        "value_map" => &["column", "values", "form", "unmapped", "split"],
        "key_value" => &["column", "key", "split", "comma_replacement"],
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
    add(r.unmapped.is_some(), "unmapped");
    add(r.key.is_some(), "key");
    add(r.split.is_some(), "split");
    add(r.comma_replacement.is_some(), "comma_replacement");
    keys
}

pub(super) fn check_rule(i: usize, r: &RawRule, mode: Mode, f: &mut Findings) -> Option<Rule> {
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
        if !allowed.contains(&k) {
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
        "value_map" => value_map_rule(r, form, &key, f)?,
        "key_value" => {
            let name = r
                .key
                .clone()
                .or_else(|| r.column.clone())
                .unwrap_or_default();
            let which = if r.key.is_some() { "key" } else { "column" };
            check_signal_key(&name, &key(which), f);
            if let Some(with) = &r.comma_replacement {
                if let Err(e) = Trait::signal("k", with) {
                    f.error(
                        key("comma_replacement"),
                        format!("\"{with}\" cannot replace a comma: {e}"),
                    );
                }
            }
            RuleKind::KeyValue {
                key: name,
                comma_replacement: r.comma_replacement.clone(),
            }
        }
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
    if !remove && r.removal.is_some() {
        f.error(key("removal"), "applies only with action = \"remove\"");
    }
    RuleKind::TraitIds {
        emit: if remove { removal } else { form },
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
    if r.removal.is_some() && !remove {
        f.error(key("removal"), "applies only with remove_when_false = true");
    }
    if remove && form != Emit::Sid {
        f.error(
            key("remove_when_false"),
            "only d_sid traits can be removed; ic traits have no removal form",
        );
    }
    Some(RuleKind::Flag {
        on_true: form.make(id),
        on_false: remove.then(|| removal.make(id)),
    })
}

fn value_map_rule(
    r: &RawRule,
    form: Emit,
    key: &dyn Fn(&str) -> String,
    f: &mut Findings,
) -> Option<RuleKind> {
    let values = match &r.values {
        Some(v) if !v.is_empty() => v,
        _ => {
            f.error(
                key("values"),
                "missing: a table of value = trait ID, e.g. { gold = 111, silver = 112 }",
            );
            return None;
        }
    };
    let reject_unmapped = f.choice(
        &key("unmapped"),
        r.unmapped.as_deref(),
        true,
        &[("reject", true), ("skip", false)],
    );
    Some(RuleKind::ValueMap {
        values: values
            .iter()
            .map(|(k, id)| (k.clone(), form.make(*id)))
            .collect::<BTreeMap<_, _>>(),
        reject_unmapped,
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
fn suggested_key(name: &str) -> String {
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
