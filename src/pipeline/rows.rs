//! Rows to trait codes: a [`Converter`] per thread turns its share of each batch into
//! (user ID, trait codes), column by column, and feeds its own sorter. A row refused by one
//! rule is counted once, with its first reason, as if rows went one at a time.

use super::cell::{flag, list, pieces, trait_id, Cell, Cells};
use super::intern::{
    intern, rule_caches, Interner, RuleCache, INLINE, LATEST, POSITION_RULE, REFUSED,
};
use super::select::{filter_col, gate_null_col, key_col, order_col, uid_col, value_col, UID};
use super::{spill_error, RowReject, TraitCheck};
use crate::error::{Error, Result};
use crate::inbound::{self, check_key, IdSyncKind, IdType, Trait};
use crate::mapping::{Input, Mapping, RuleKind};
use crate::reject::{mask_pii, Reject, RejectReason};
use crate::report::Receipt;
use crate::source::Source;
use crate::spill::Sorter;
use polars::prelude::*;
use std::borrow::Cow;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Mutex;

/// A rule with its values and filter column for the frame at hand.
struct Bound<'m> {
    /// `traits[0]`: the rule's key path.
    path: &'m str,
    /// A `when` condition, whose NULLs are counted.
    condition: bool,
    /// `traits[0] (column "segments")`, for messages.
    label: String,
    split: Option<&'m str>,
    kind: &'m RuleKind,
    values: Cells,
    filter: Option<BooleanChunked>,
    /// Where the rule's `remove_when` is NULL (see `gate_null_col`).
    gate_nulls: Option<BooleanChunked>,
    /// `key_column`: each row's key.
    keys: Option<StringChunked>,
}

/// Converts rows on one thread: its own counts, rejects and sorter, and caches in front of
/// the shared interner, so that the lock is taken only for a value not seen before.
pub(super) struct Converter<'m> {
    mapping: &'m Mapping,
    pub(super) receipt: Receipt,
    pub(super) rejects: Vec<Reject>,
    interner: &'m Mutex<Interner>,
    /// Accepted rows, as (user ID, trait codes), sorted by ID on disk past a budget.
    pub(super) sorter: Sorter,
    /// Per rule, its trait codes by value.
    caches: Vec<RuleCache>,
    /// Reused for numbers rendered as text.
    text_buf: String,
    /// Per rule, the codes of the frame being converted (buffers reused).
    rule_codes: Vec<RuleCodes>,
    /// See `Tuning::signal_cache`.
    signal_cache: usize,
    check: Option<TraitCheck<'m>>,
}

impl<'m> Converter<'m> {
    pub(super) fn new(
        mapping: &'m Mapping,
        interner: &'m Mutex<Interner>,
        spill_budget: usize,
        signal_cache: usize,
        check: Option<TraitCheck<'m>>,
    ) -> Converter<'m> {
        Converter {
            signal_cache,
            check,
            mapping,
            receipt: Receipt::default(),
            rejects: Vec::new(),
            interner,
            sorter: Sorter::new(spill_budget),
            caches: rule_caches(mapping, interner, check),
            text_buf: String::new(),
            rule_codes: Vec::new(),
        }
    }

    /// Converts a frame `block_rows` rows at a time: each rule's codes for a block are
    /// gathered row by row for the sorter, and over a block of a few thousand rows they are
    /// still in the core's cache (over a whole batch's rows, the gathers missed it).
    pub(super) fn add_frame(
        &mut self,
        df: &DataFrame,
        block_rows: usize,
        file_index: usize,
        first_row: u64,
        source: &Source,
        cancel: &AtomicBool,
    ) -> Result<()> {
        let block_rows = block_rows.max(1);
        for offset in (0..df.height()).step_by(block_rows) {
            let block = df.slice(offset as i64, block_rows);
            let first = first_row + offset as u64;
            self.add_block(&block, file_index, first, source, cancel)?;
        }
        Ok(())
    }

    /// Converts a block column by column: the user IDs, then each rule over all rows (a
    /// row rejected by one rule is not looked at by the next, as if row by row), then each
    /// accepted row's codes go to the sorter, rejects to the list, in row order.
    fn add_block(
        &mut self,
        df: &DataFrame,
        file_index: usize,
        first_row: u64,
        source: &Source,
        cancel: &AtomicBool,
    ) -> Result<()> {
        let err = |e: PolarsError| Error::source(&source.path, e);
        let uid_column = |name: &str| -> Result<StringChunked> {
            Ok(df
                .column(name)
                .map_err(err)?
                .as_materialized_series()
                .str()
                .map_err(err)?
                .clone())
        };
        let uids = uid_column(UID)?;
        let fallbacks = (1..=self.mapping.user_id.fallback.len())
            .map(|k| uid_column(&uid_col(k)))
            .collect::<Result<Vec<_>>>()?;
        let bound = self.bind_rules(df).map_err(err)?;
        let mut rows = RowStatus {
            rejected: vec![false; df.height()],
            reasons: Vec::new(),
            skipped: vec![false; df.height()],
        };
        let ids = self.user_ids(&uids, &fallbacks, &mut rows, cancel)?;
        let mut codes = std::mem::take(&mut self.rule_codes);
        codes.resize_with(bound.len(), RuleCodes::default);
        for (i, (b, out)) in bound.iter().zip(&mut codes).enumerate() {
            out.ends.clear();
            out.codes.clear();
            self.convert_rule(i, b, &mut rows, out);
        }
        let orders = (0..self.mapping.latest_by.len())
            .map(|g| Cells::from_series(df.column(&order_col(g))?.as_materialized_series()))
            .collect::<PolarsResult<Vec<_>>>()
            .map_err(err)?;
        let result = self.emit_rows(&ids, rows, &codes, &orders, file_index, first_row, source);
        self.rule_codes = codes;
        result
    }

    /// Each rule with its columns in `df`.
    fn bind_rules(&self, df: &DataFrame) -> PolarsResult<Vec<Bound<'m>>> {
        let mut bound = Vec::new();
        for (i, rule) in self.mapping.rules.iter().enumerate() {
            let values = Cells::from_series(df.column(&value_col(i))?.as_materialized_series())?;
            let bools = |name: String| match df.column(&name) {
                Ok(c) => c.as_materialized_series().bool().map(|b| Some(b.clone())),
                Err(_) => Ok(None),
            };
            let filter = bools(filter_col(i))?;
            let gate_nulls = bools(gate_null_col(i))?;
            let keys = match df.column(&key_col(i)) {
                Ok(c) => Some(c.as_materialized_series().str()?.clone()),
                Err(_) => None,
            };
            let label = match &rule.input {
                Input::Column(c) => format!("{} (column \"{c}\")", rule.path),
                Input::Condition(w) => format!("{} (when \"{w}\")", rule.path),
            };
            bound.push(Bound {
                path: &rule.path,
                condition: matches!(rule.input, Input::Condition(_)),
                label,
                split: rule.split.as_deref(),
                kind: &rule.kind,
                values,
                filter,
                gate_nulls,
                keys,
            });
        }
        Ok(bound)
    }

    /// Every row's user ID as it will be written; rows whose ID cannot be sent are rejected.
    /// Where the ID column is empty, the first fallback column that is not.
    fn user_ids<'a>(
        &mut self,
        uids: &'a StringChunked,
        fallbacks: &'a [StringChunked],
        rows: &mut RowStatus,
        cancel: &AtomicBool,
    ) -> Result<Vec<Cow<'a, str>>> {
        let mut ids = Vec::with_capacity(uids.len());
        let trim = self.mapping.user_id.trim;
        let empty = |s: &str| if trim { super::cell::trim(s) } else { s }.is_empty();
        for (row, raw) in uids.iter().enumerate() {
            if row % 65_536 == 0 && cancel.load(Ordering::Relaxed) {
                return Err(Error::Interrupted);
            }
            let mut raw = raw.unwrap_or("");
            if empty(raw) {
                if let Some(other) = fallbacks
                    .iter()
                    .filter_map(|c| c.get(row))
                    .find(|s| !empty(s))
                {
                    raw = other;
                }
            }
            if self.mapping.id_sync.is_some() && super::cell::trim(raw).is_empty() {
                rows.skip(row);
                ids.push(Cow::Borrowed(raw));
                continue;
            }
            match self.user_id(raw) {
                Ok(id) => ids.push(id),
                Err(r) => {
                    rows.reject(row, r);
                    ids.push(Cow::Borrowed(raw));
                }
            }
        }
        Ok(ids)
    }

    /// Hands each accepted row's codes to the sorter and each rejected row to the rejects,
    /// in row order.
    #[allow(clippy::too_many_arguments)] // the frame's parts, each once
    fn emit_rows(
        &mut self,
        ids: &[Cow<str>],
        rows: RowStatus,
        codes: &[RuleCodes],
        orders: &[Cells],
        file_index: usize,
        first_row: u64,
        source: &Source,
    ) -> Result<()> {
        // Rejects in row order; a row has at most one.
        let RowStatus {
            rejected,
            mut reasons,
            skipped,
        } = rows;
        reasons.sort_by_key(|&(row, _)| row);
        let mut reasons = reasons.into_iter();
        let file = source.path.display().to_string();
        let mut scratch: Vec<u32> = Vec::new();
        let mut latest: Vec<u8> = Vec::new();
        self.receipt.rows_read += ids.len() as u64;
        // An ID-sync row needs every one of its IDs; c2c rows also carry their position,
        // which orders a CRM ID's e-mails when `latest_by` does not.
        let sync = self.mapping.id_sync.as_ref();
        let partners = sync.map_or(0, |s| s.dpids.len() - 1);
        for (row, id) in ids.iter().enumerate() {
            let row_number = first_row + row as u64 + 1;
            let incomplete = || codes[..partners].iter().any(|c| c.row(row).is_empty());
            if skipped[row] || (sync.is_some() && !rejected[row] && incomplete()) {
                self.receipt.rows_without_ids += 1;
                continue;
            }
            if rejected[row] {
                let (_, r) = reasons.next().expect("a rejected row has its reason");
                self.receipt.reject(r.reason, 1);
                self.rejects.push(Reject {
                    file: file.clone(),
                    row: row_number,
                    user_id: mask_pii(id),
                    reason: r.reason,
                    message: r.message,
                });
                continue;
            }
            scratch.clear();
            let rules = &self.mapping.rules;
            for (c, _) in codes.iter().zip(rules).filter(|(_, r)| r.latest.is_none()) {
                // A rule gives a row a code or two: a loop, not a call to memcpy.
                scratch.extend(c.row(row).iter().copied());
            }
            // `latest_by`: the row's codes of each group travel with its order value, so
            // that rendering can keep the latest rows' (see `LATEST`).
            for (g, order) in orders.iter().enumerate() {
                latest.clear();
                latest.extend_from_slice(&[0; 4]);
                order_bytes(order, row, &mut latest);
                let len = (latest.len() - 4) as u32;
                latest[..4].copy_from_slice(&len.to_le_bytes());
                for (c, _) in codes.iter().zip(rules).filter(|(_, r)| r.latest == Some(g)) {
                    latest.extend(c.row(row).iter().flat_map(|code| code.to_le_bytes()));
                }
                push_inline(LATEST | g as u32, &latest, &mut scratch);
            }
            if sync.is_some_and(|s| s.kind == IdSyncKind::C2c) {
                let mut position = [0u8; 12];
                position[..4].copy_from_slice(&(file_index as u32).to_be_bytes());
                position[4..].copy_from_slice(&row_number.to_be_bytes());
                push_inline(POSITION_RULE, &position, &mut scratch);
            }
            self.sorter
                .push(id.as_bytes(), file_index as u32, row_number, &scratch)
                .map_err(spill_error)?;
        }
        Ok(())
    }

    /// The user ID as it will be written: trimmed, hashed, case-normalized as the mapping
    /// asks, then checked against its type (SPEC: User IDs).
    fn user_id<'r>(&mut self, raw: &'r str) -> Result<Cow<'r, str>, RowReject> {
        let spec = &self.mapping.user_id;
        let mut id = Cow::Borrowed(if spec.trim {
            super::cell::trim(raw)
        } else {
            raw
        });
        if spec.hash_email && !id.is_empty() {
            if !inbound::looks_like_email(&id) {
                return Err(RowReject::new(
                    RejectReason::NotAnEmail,
                    "user_id.hash = \"sha256\" expects e-mail addresses; this value is not one",
                ));
            }
            id = Cow::Owned(inbound::email_sha256(&id));
        }
        if spec.normalize_case {
            if let Some(n) = spec.id_type.normalize_case(&id) {
                id = Cow::Owned(n);
                self.receipt.ids_normalized += 1;
            }
        }
        if let (Some((before, after)), false) = (&spec.template, id.is_empty()) {
            id = Cow::Owned(format!("{before}{id}{after}"));
        }
        if spec.id_type == IdType::Dpuuid && inbound::looks_like_phone(&id) {
            self.receipt.ids_phone_like += 1;
        }
        spec.id_type.check(&id).map_err(|p| {
            if self.mapping.id_sync.is_some() {
                let label = format!("id_sync.columns[0] (column \"{}\")", spec.column);
                return bad_sync_id(&label, spec.id_type, &p);
            }
            let what = match spec.id_type {
                IdType::Dpuuid => String::new(),
                t => format!(" ({})", t.name()),
            };
            RowReject::new(RejectReason::from(&p), format!("user_id{what}: {p}"))
        })?;
        Ok(id)
    }

    /// Rule `i`'s codes for every row not yet rejected and not filtered out; a row whose
    /// value the rule refuses is rejected.
    fn convert_rule(&mut self, i: usize, b: &Bound, rows: &mut RowStatus, out: &mut RuleCodes) {
        let mut coder = Coder {
            path: b.path,
            row_key: "",
            kind: b.kind,
            rule: i as u32,
            signal_cache: self.signal_cache,
            check: self.check,
            label: &b.label,
            interner: self.interner,
            receipt: &mut self.receipt,
            cache: &mut self.caches[i],
            buf: &mut self.text_buf,
        };
        let filter = b.filter.as_ref();
        let split = b.split;
        // Each physical type gets its own loop over the column, with no per-row dispatch.
        match &b.values {
            // An attribute table: each value with its row's key (both read as text).
            Cells::Str(c) if b.keys.is_some() => {
                let keys = b.keys.as_ref().expect("checked").iter();
                let pairs = c
                    .iter()
                    .zip(keys)
                    .map(|(v, k)| v.map(|v| (v, k.unwrap_or(""))));
                each_row(pairs, filter, rows, out, |(v, k), codes| {
                    coder.row_key = k;
                    pieces(Cell::Str(v), split, &mut |cell| coder.code(cell, codes))
                })
            }
            Cells::Str(c) => each_row(c.iter(), filter, rows, out, |s, codes| {
                pieces(Cell::Str(s), split, &mut |cell| coder.code(cell, codes))
            }),
            Cells::Int(c) => each_row(c.iter(), filter, rows, out, |v, codes| {
                coder.code(Cell::Int(v), codes)
            }),
            Cells::UInt(c) => each_row(c.iter(), filter, rows, out, |v, codes| {
                coder.code(Cell::UInt(v), codes)
            }),
            Cells::Float(c) => each_row(c.iter(), filter, rows, out, |v, codes| {
                coder.code(Cell::Float(v), codes)
            }),
            Cells::Bool(c) => each_row(c.iter(), filter, rows, out, |v, codes| {
                coder.code(Cell::Bool(v), codes)
            }),
            Cells::List(c) => each_row(c.amortized_iter(), filter, rows, out, |v, codes| {
                list(v.as_ref(), split, &mut |cell| coder.code(cell, codes))
            }),
            // No values: every row gets no codes.
            Cells::Null => out.ends.resize(rows.rejected.len(), 0),
        }
        if let Some(gate_nulls) = &b.gate_nulls {
            let nulls = (0..rows.rejected.len())
                .filter(|&row| !rows.rejected[row] && gate_nulls.get(row) == Some(true))
                .count() as u64;
            if nulls > 0 {
                *self
                    .receipt
                    .null_conditions
                    .entry(format!("{}.remove_when", b.path))
                    .or_default() += nulls;
            }
        }
        if b.condition {
            let nulls = null_conditions(&b.values, filter, &rows.rejected);
            if nulls > 0 {
                *self
                    .receipt
                    .null_conditions
                    .entry(b.path.to_owned())
                    .or_default() += nulls;
            }
        }
    }
}

/// Rows (not rejected, filter true) where a condition is NULL: they get neither the trait
/// nor its removal, which the receipt counts so that it is not silent.
fn null_conditions(values: &Cells, filter: Option<&BooleanChunked>, rejected: &[bool]) -> u64 {
    let null_at: Box<dyn Fn(usize) -> bool + '_> = match values {
        Cells::Bool(c) if c.null_count() == 0 => return 0,
        Cells::Bool(c) => Box::new(move |row| c.get(row).is_none()),
        Cells::Null => Box::new(|_| true),
        _ => return 0,
    };
    let passes = |row: usize| filter.is_none_or(|f| f.get(row) == Some(true));
    (0..rejected.len())
        .filter(|&row| !rejected[row] && passes(row) && null_at(row))
        .count() as u64
}

/// The rows of the frame being converted that are rejected, each with its first reason.
struct RowStatus {
    rejected: Vec<bool>,
    reasons: Vec<(usize, RowReject)>,
    /// Rows of an ID-sync mapping without one of its IDs: nothing to sync, not an error
    /// (most CRM rows have no device ID). Marked rejected as well, so rules pass them by.
    skipped: Vec<bool>,
}

impl RowStatus {
    fn skip(&mut self, row: usize) {
        self.rejected[row] = true;
        self.skipped[row] = true;
    }

    fn reject(&mut self, row: usize, why: RowReject) {
        self.rejected[row] = true;
        self.reasons.push((row, why));
    }
}

/// One rule's codes for a frame's rows: row `r`'s are `codes[ends[r - 1]..ends[r]]`.
#[derive(Default)]
struct RuleCodes {
    ends: Vec<u32>,
    codes: Vec<u32>,
}

impl RuleCodes {
    /// Row `row`'s codes.
    fn row(&self, row: usize) -> &[u32] {
        let start = if row == 0 { 0 } else { self.ends[row - 1] };
        &self.codes[start as usize..self.ends[row] as usize]
    }
}

/// Runs `f` on each row's value that is set, where the row is not rejected and its filter
/// (if any) is true; a refused value rejects the row and leaves no codes.
#[allow(clippy::explicit_counter_loop)] // see the counter's comment
fn each_row<T>(
    values: impl Iterator<Item = Option<T>>,
    filter: Option<&BooleanChunked>,
    rows: &mut RowStatus,
    out: &mut RuleCodes,
    mut f: impl FnMut(T, &mut Vec<u32>) -> Result<(), RowReject>,
) {
    let mut filter = filter.map(|f| f.iter());
    // A counter rather than `enumerate`, which does not always inline over Polars' iterators.
    let mut row = 0;
    for value in values {
        let passes = filter
            .as_mut()
            .is_none_or(|f| f.next().flatten() == Some(true));
        if let (true, Some(v)) = (passes && !rows.rejected[row], value) {
            let start = out.codes.len();
            if let Err(why) = f(v, &mut out.codes) {
                out.codes.truncate(start);
                rows.reject(row, why);
            }
        }
        out.ends.push(out.codes.len() as u32);
        row += 1;
    }
}

/// What turns one rule's cells into trait codes: the rule and its cache.
struct Coder<'c> {
    /// `traits[0]`: the rule's key path.
    path: &'c str,
    /// `key_column` rules: the key of the row being converted.
    row_key: &'c str,
    kind: &'c RuleKind,
    /// The rule's index in the mapping.
    rule: u32,
    /// Distinct values a key-value rule interns (see `Tuning::signal_cache`).
    signal_cache: usize,
    check: Option<TraitCheck<'c>>,
    /// `traits[0] (column "segments")`, for messages.
    label: &'c str,
    interner: &'c Mutex<Interner>,
    receipt: &'c mut Receipt,
    cache: &'c mut RuleCache,
    buf: &'c mut String,
}

impl Coder<'_> {
    /// Appends the code of the trait `cell` makes, if any, to `out`. The common paths stay
    /// in this one function (a lookup in the rule's cache), so that they inline into the
    /// per-column loops; what builds a reject's message is out of line. Left to itself the
    /// compiler called it once per cell (its entry and exit were a third of its own cost).
    #[inline(always)]
    fn code(&mut self, cell: Cell, out: &mut Vec<u32>) -> Result<(), RowReject> {
        match self.kind {
            RuleKind::TraitIds { emit, .. } => {
                let cell = match (&self.cache.pattern, cell) {
                    (Some(re), Cell::Str(s)) => {
                        Cell::Str(found_id(re, s).ok_or_else(|| no_match(self.label, s, re))?)
                    }
                    _ => cell,
                };
                let id = trait_id(cell).map_err(|why| bad_trait_id(self.label, cell, &why))?;
                let code = match self.cache.ids.get(id) {
                    Some(code) => code,
                    None => {
                        let t = emit.make(id);
                        let code = match self.check.and_then(|c| c.refuses(&t)) {
                            Some(_) => REFUSED,
                            None => intern(self.interner, t),
                        };
                        self.cache.ids.insert(id, code);
                        code
                    }
                };
                if code == REFUSED {
                    return Err(refused(self.label, self.check, &emit.make(id)));
                }
                out.push(code);
            }
            RuleKind::Flag { on_true, on_false } => {
                let value = flag(cell).ok_or_else(|| bad_flag(self.label, cell))?;
                let (code_true, code_false) = self.cache.flag;
                if let Some(code) = if value { code_true } else { code_false } {
                    if code == REFUSED {
                        let t = if value {
                            Some(on_true)
                        } else {
                            on_false.as_ref()
                        };
                        return Err(refused(self.label, self.check, t.expect("a code")));
                    }
                    out.push(code);
                }
            }
            RuleKind::ValueMap {
                reject_unmapped,
                values,
                ignore_case,
            } => {
                let text = cell.text(self.buf);
                let codes = match self.cache.map.get(text) {
                    Some(codes) => codes,
                    None => match ignore_case.then(|| text.to_lowercase()) {
                        Some(folded) if self.cache.map.contains_key(&folded) => {
                            // Later cells spelled this way cost one lookup.
                            let codes = self.cache.map[&folded].clone();
                            self.cache.map.entry(text.to_owned()).or_insert(codes)
                        }
                        _ if *reject_unmapped => {
                            return Err(unmapped(self.label, values, text, *ignore_case))
                        }
                        _ => {
                            self.receipt.skip_value(self.path, text);
                            return Ok(());
                        }
                    },
                };
                if codes[..] == [REFUSED] {
                    let key = if *ignore_case {
                        Cow::Owned(text.to_lowercase())
                    } else {
                        Cow::Borrowed(text)
                    };
                    return Err(refused_any(self.label, self.check, &values[&*key]));
                }
                out.extend_from_slice(codes);
            }
            RuleKind::SyncId {
                id_type,
                hash_email,
            } => {
                let text = super::cell::trim(cell.text(self.buf));
                if text.is_empty() {
                    // No ID: the row is skipped, not rejected (see `emit_rows`).
                    return Ok(());
                }
                if *hash_email {
                    let hashed = sync_email(text).ok_or_else(|| not_an_email(self.label))?;
                    push_inline(self.rule, hashed.as_bytes(), out);
                } else {
                    id_type
                        .check(text)
                        .map_err(|p| bad_sync_id(self.label, *id_type, &p))?;
                    push_inline(self.rule, text.as_bytes(), out);
                }
            }
            RuleKind::SyncOrder => {
                push_inline(self.rule, &sortable(cell), out);
            }
            RuleKind::KeyValue {
                key_column: Some(_),
                ..
            } => return self.code_keyed(cell, out),
            RuleKind::KeyValue {
                key,
                comma_replacement,
                shape,
                key_column: None,
            } => {
                // Integers are cached as their bits: a distinct value is a distinct key.
                if let Cell::Int(n) = cell {
                    if let Some(code) = self.cache.numbers.get(n as u64) {
                        out.push(code);
                        return Ok(());
                    }
                }
                let text = cell.text(self.buf);
                let text = replace_commas(text, comma_replacement.as_deref(), self.receipt);
                let code = match self.cache.signals.get(&*text) {
                    Some(&code) => code,
                    None if self.cache.signals.len() >= self.signal_cache => {
                        // Past the cache's size, a new value travels with its row.
                        // The key was checked with the mapping.
                        let shaped = shape
                            .apply(&text)
                            .map_err(|why| unshapable(self.label, &why))?;
                        Trait::check_value(&shaped)
                            .map_err(|e| bad_signal(self.label, cell, &e))?;
                        push_inline(self.rule, shaped.as_bytes(), out);
                        return Ok(());
                    }
                    None => {
                        let shaped = shape
                            .apply(&text)
                            .map_err(|why| unshapable(self.label, &why))?;
                        let t = Trait::signal(key, &shaped)
                            .map_err(|e| bad_signal(self.label, cell, &e))?;
                        let code = intern(self.interner, t);
                        self.cache.signals.insert(text.into_owned(), code);
                        code
                    }
                };
                if let Cell::Int(n) = cell {
                    self.cache.numbers.insert(n as u64, code);
                }
                out.push(code);
            }
        }
        Ok(())
    }

    /// A `key_column` rule's signal: the row's key (`row_key`) with the cell's value. Keys
    /// not in `keys`, and rows without one, are skipped and counted. Always interned: the
    /// carried form has one key per rule.
    #[inline(never)]
    fn code_keyed(&mut self, cell: Cell, out: &mut Vec<u32>) -> Result<(), RowReject> {
        let RuleKind::KeyValue {
            key_column: Some(kc),
            shape,
            comma_replacement,
            ..
        } = self.kind
        else {
            unreachable!("only key_column rules have row keys")
        };
        let key = super::cell::trim(self.row_key);
        if key.is_empty() || kc.allowed.as_ref().is_some_and(|a| !a.contains(key)) {
            self.receipt.skip_key(self.path, key);
            return Ok(());
        }
        let text = cell.text(self.buf);
        let text = replace_commas(text, comma_replacement.as_deref(), self.receipt);
        let mut both = String::with_capacity(key.len() + 1 + text.len());
        both.push_str(key);
        both.push('\0');
        both.push_str(&text);
        if let Some(&code) = self.cache.keyed.get(&both) {
            out.push(code);
            return Ok(());
        }
        check_key(key).map_err(|e| bad_key(self.label, key, &e))?;
        let shaped = shape
            .apply(&text)
            .map_err(|why| unshapable(self.label, &why))?;
        let t = Trait::signal(key, &shaped).map_err(|e| bad_signal(self.label, cell, &e))?;
        let code = intern(self.interner, t);
        self.cache.keyed.insert(both, code);
        out.push(code);
        Ok(())
    }
}

/// `text` with its commas replaced, when the rule says so (counted).
fn replace_commas<'t>(text: &'t str, with: Option<&str>, receipt: &mut Receipt) -> Cow<'t, str> {
    match with {
        Some(with) if text.contains(',') => {
            receipt.commas_replaced += 1;
            Cow::Owned(text.replace(',', with))
        }
        _ => Cow::Borrowed(text),
    }
}

/// The trait ID in `text` by `pattern`: its first group, else the whole match.
fn found_id<'t>(re: &regex::Regex, text: &'t str) -> Option<&'t str> {
    let caps = re.captures(text)?;
    caps.get(1).or_else(|| caps.get(0)).map(|m| m.as_str())
}

#[cold]
fn no_match(label: &str, text: &str, re: &regex::Regex) -> RowReject {
    RowReject::new(
        RejectReason::InvalidTraitId,
        format!(
            "{label}: \"{text}\" holds no trait ID: `pattern` {} does not match it",
            re.as_str()
        ),
    )
}

#[cold]
fn unshapable(label: &str, why: &str) -> RowReject {
    RowReject::new(RejectReason::InvalidSignalValue, format!("{label}: {why}"))
}

#[cold]
fn bad_key(label: &str, key: &str, e: &crate::inbound::TraitError) -> RowReject {
    RowReject::new(
        RejectReason::InvalidSignalKey,
        format!("{label}: key \"{key}\" cannot be sent: {e}; list the keys to send in `keys`"),
    )
}

/// A signal value that is not interned (or an ID-sync ID), written into the row's codes as
/// they go to the sorter: `INLINE | rule`, the length, then the bytes, four to a code (see
/// [`INLINE`]).
fn push_inline(rule: u32, text: &[u8], out: &mut Vec<u32>) {
    out.push(INLINE | rule);
    out.push(text.len() as u32);
    out.extend(text.chunks(4).map(|c| {
        let mut word = [0u8; 4];
        word[..c.len()].copy_from_slice(c);
        u32::from_le_bytes(word)
    }));
}

/// c2c: the SHA-256 of a trimmed, lower-cased e-mail address; a value that is already
/// such a hash (64 lower-case hex digits) is sent as it is. `None`: neither.
fn sync_email(text: &str) -> Option<std::borrow::Cow<'_, str>> {
    if text.len() == 64 && text.bytes().all(|b| matches!(b, b'0'..=b'9' | b'a'..=b'f')) {
        Some(std::borrow::Cow::Borrowed(text))
    } else if inbound::looks_like_email(text) {
        Some(std::borrow::Cow::Owned(inbound::email_sha256(text)))
    } else {
        None
    }
}

/// Row `row`'s value of a `latest_by` column, as bytes that sort as the values do, after a
/// byte that puts NULL (0) before every value (1).
fn order_bytes(order: &Cells, row: usize, out: &mut Vec<u8>) {
    // A list column is refused as `latest_by` before reading (`Opened::scan_for`).
    match order.get(row) {
        Some(cell) => {
            out.push(1);
            out.extend_from_slice(&sortable(cell));
        }
        None => out.push(0),
    }
}

/// A cell as bytes that sort as its values do: text as it is (ISO 8601 dates and times
/// sort as text), numbers fixed-width with their sign bit flipped.
fn sortable(cell: Cell) -> Vec<u8> {
    match cell {
        Cell::Str(s) => s.as_bytes().to_vec(),
        Cell::Int(i) => ((i as u64) ^ (1 << 63)).to_be_bytes().to_vec(),
        Cell::UInt(u) => u.to_be_bytes().to_vec(),
        Cell::Float(f) => {
            let bits = f.to_bits();
            let key = if f.is_sign_negative() {
                !bits
            } else {
                bits | 1 << 63
            };
            key.to_be_bytes().to_vec()
        }
        Cell::Bool(b) => vec![u8::from(b)],
    }
}

#[cold]
fn not_an_email(label: &str) -> RowReject {
    RowReject::new(
        RejectReason::NotAnEmail,
        format!("{label}: c2c files carry hashed e-mail addresses; this value is neither an e-mail address nor a SHA-256 hex digest"),
    )
}

#[cold]
fn bad_sync_id(label: &str, id_type: IdType, p: &inbound::IdProblem) -> RowReject {
    let what = match id_type {
        IdType::Dpuuid => String::new(),
        t => format!(" ({})", t.name()),
    };
    // The fix for a case problem in an inbound mapping (`normalize_case`) is not one here.
    let problem = match p {
        inbound::IdProblem::Case { expected } => {
            format!("the ID must be {expected}, as its data source's IDs are")
        }
        p => p.to_string(),
    };
    RowReject::new(RejectReason::from(p), format!("{label}{what}: {problem}"))
}

#[cold]
fn bad_trait_id(label: &str, cell: Cell, why: &str) -> RowReject {
    RowReject::new(
        RejectReason::InvalidTraitId,
        format!("{label}: trait ID {} is {why}", cell.describe()),
    )
}

/// A row that would send a trait ID the trait list refuses.
#[cold]
fn refused(label: &str, check: Option<TraitCheck>, t: &Trait) -> RowReject {
    let check = check.expect("only a trait list refuses");
    let refusal = check.refuses(t).expect("refused");
    let id = t.target().map_or(0, |(id, _)| id);
    RowReject::new(
        RejectReason::from(&refusal),
        format!(
            "{label}: {}",
            refusal.describe(id, check.data_source, check.list.path())
        ),
    )
}

/// A row whose value would send several traits, one of which the trait list refuses.
#[cold]
fn refused_any(label: &str, check: Option<TraitCheck>, traits: &[Trait]) -> RowReject {
    let list = check.expect("only a trait list refuses");
    let t = traits
        .iter()
        .find(|t| list.refuses(t).is_some())
        .expect("a refused trait");
    refused(label, check, t)
}

#[cold]
fn bad_flag(label: &str, cell: Cell) -> RowReject {
    RowReject::new(
        RejectReason::InvalidFlag,
        format!(
            "{label}: {} is not a true/false value (true/false, yes/no, y/n, t/f, 1/0)",
            cell.describe()
        ),
    )
}

#[cold]
fn unmapped(
    label: &str,
    values: &std::collections::BTreeMap<String, Vec<Trait>>,
    text: &str,
    ignore_case: bool,
) -> RowReject {
    let known: Vec<&str> = values.keys().map(String::as_str).collect();
    // The likeliest slip, a value spelled in another case, gets its own hint.
    let hint = if !ignore_case && known.iter().any(|k| k.eq_ignore_ascii_case(text)) {
        " (it differs only in letter case: set ignore_case = true)"
    } else {
        ""
    };
    RowReject::new(
        RejectReason::UnmappedValue,
        format!(
            "{label}: \"{text}\" is not in the rule's values ({}){hint}; add it or set unmapped = \"skip\"",
            known.join(", ")
        ),
    )
}

#[cold]
fn bad_signal(label: &str, cell: Cell, e: &crate::inbound::TraitError) -> RowReject {
    use crate::inbound::TraitError;
    match e {
        TraitError::Comma => RowReject::new(
            RejectReason::CommaInValue,
            format!(
                "{label}: value {} has a comma, which AAM may read as the end of the trait; set comma_replacement on the rule to send it with the commas replaced",
                cell.describe()
            ),
        ),
        _ => RowReject::new(
            RejectReason::InvalidSignalValue,
            format!("{label}: value {} cannot be sent: {e}", cell.describe()),
        ),
    }
}
