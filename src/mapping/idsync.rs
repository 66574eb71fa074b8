//! The checks of an `[id_sync]` mapping: which columns hold which data sources' IDs. Such
//! a mapping runs through the same pipeline as an inbound one: its master column is the
//! user ID and each other column a rule that carries its IDs in the rows.

use super::check::Findings;
use super::raw::{RawIdSync, RawMapping};
use super::{
    id_type_of_dpid, IdSync, Input, OutputOptions, Rule, RuleKind, UserIdSpec, MAX_EMAILS_PER_ID,
};
use crate::inbound::{IdSyncKind, IdType};

/// The master column as the user ID, the other columns (and `latest_by`) as rules.
pub(super) fn check_id_sync(
    raw: &RawMapping,
    sync: &RawIdSync,
    f: &mut Findings,
) -> (UserIdSpec, Vec<Rule>, IdSync) {
    let kind = f.choice(
        "id_sync.type",
        sync.kind.as_deref(),
        IdSyncKind::Adobe,
        &[("adobe", IdSyncKind::Adobe), ("c2c", IdSyncKind::C2c)],
    );
    if raw.user_id.is_some() {
        f.error(
            "user_id",
            "an [id_sync] mapping has no [user_id]: the master ID is the first of id_sync.columns",
        );
    }
    if !raw.traits.is_empty() {
        f.error(
            "traits",
            "an [id_sync] mapping has no [[traits]]: ID-sync files carry IDs only; convert traits with a mapping of their own",
        );
    }
    if raw.taxonomy.path.is_some() {
        f.error("taxonomy", "an ID-sync file has no traits to check");
    }
    let out = &raw.output;
    let set = [
        ("dpid", out.dpid.is_some()),
        ("target_dpid", out.target_dpid.is_some()),
        ("mode", out.mode.is_some()),
    ];
    for (key, set) in set {
        if set {
            f.error(
                format!("output.{key}"),
                "not for an [id_sync] mapping: the data sources are the dpids of id_sync.columns, and ID-sync files are always .sync",
            );
        }
    }
    let columns = &sync.columns;
    match kind {
        IdSyncKind::Adobe if columns.len() < 2 => f.error(
            "id_sync.columns",
            "at least two columns: the master (e.g. AAM UUIDs, dpid = 0), then each data source synced with it",
        ),
        IdSyncKind::C2c if columns.len() != 2 => f.error(
            "id_sync.columns",
            "exactly two columns for c2c: the CRM ID, then the e-mail address",
        ),
        _ => {}
    }
    for (i, c) in columns.iter().enumerate() {
        if c.column.is_empty() {
            f.error(
                format!("id_sync.columns[{i}].column"),
                "must name the column that holds the IDs",
            );
        }
        if columns[..i].iter().any(|o| o.dpid == c.dpid) {
            f.error(
                format!("id_sync.columns[{i}].dpid"),
                format!("data source {} is named twice", c.dpid),
            );
        }
    }
    if kind == IdSyncKind::C2c {
        if let Some(crm) = columns
            .first()
            .filter(|c| id_type_of_dpid(c.dpid) != IdType::Dpuuid)
        {
            f.error(
                "id_sync.columns[0].dpid",
                format!(
                    "{} is not a CRM data source: the first c2c column holds your own IDs (DPUUIDs)",
                    crm.dpid
                ),
            );
        }
    } else if sync.latest_by.is_some() {
        f.error(
            "id_sync.latest_by",
            "applies to c2c files only (which of a CRM ID's e-mails are the most recent)",
        );
    }
    let master = columns.first();
    let user_id = UserIdSpec {
        column: master.map(|c| c.column.clone()).unwrap_or_default(),
        id_type: master.map_or(IdType::Dpuuid, |c| id_type_of_dpid(c.dpid)),
        // An ID never has surrounding spaces; an export often does.
        trim: true,
        normalize_case: false,
        hash_email: false,
        fallback: Vec::new(),
        template: None,
    };
    let mut rules: Vec<Rule> = columns
        .iter()
        .enumerate()
        .skip(1)
        .map(|(i, c)| Rule {
            path: format!("id_sync.columns[{i}]"),
            input: Input::Column(c.column.clone()),
            filter: None,
            split: None,
            gate: None,
            latest: None,
            kind: RuleKind::SyncId {
                id_type: id_type_of_dpid(c.dpid),
                hash_email: kind == IdSyncKind::C2c,
            },
        })
        .collect();
    if let Some(by) = &sync.latest_by {
        rules.push(Rule {
            path: "id_sync.latest_by".into(),
            input: Input::Column(by.clone()),
            filter: None,
            split: None,
            gate: None,
            latest: None,
            kind: RuleKind::SyncOrder,
        });
    }
    let spec = IdSync {
        kind,
        dpids: columns.iter().map(|c| c.dpid).collect(),
        max_emails: MAX_EMAILS_PER_ID,
    };
    (user_id, rules, spec)
}

/// The output options of an ID-sync mapping: the master's data source stands in for the
/// DPID (it names nothing: the file name comes from `IdSync`).
pub(super) fn sync_output(common: OutputOptions, spec: &IdSync) -> OutputOptions {
    OutputOptions {
        dpid: spec.dpids.first().copied().unwrap_or(0),
        target_dpid: None,
        ..common
    }
}
