//! Users to lines: each user's rows, merged from the sorted runs, are de-duplicated, their
//! add/remove conflicts resolved (the addition wins, counted), and rendered through
//! [`inbound::wrap_user`]; users that cannot be sent whole are rejected whole.

use super::deliver::{Chunk, Deliver, Effect, Lines, UserTraits};
use super::intern::{INLINE, LATEST, POSITION_RULE};
use super::{spill_error, TraitCheck};
use crate::error::{Error, Result};
use crate::inbound::{
    self, render_signal, IdSyncKind, KindCounts, Mode, PartLimit, Trait, TraitKind, UserBlock,
    MAX_LINES_PER_USER, MAX_LINE_BYTES,
};
use crate::mapping::{IdSync, Mapping, RuleKind};
use crate::progress::Progress;
use crate::reject::{mask_pii, Reject, RejectLog, RejectReason};
use crate::report::Receipt;
use crate::source::Source;
use crate::spill::{prefix, Merge, UserRows};
use std::cmp::Ordering as Order;
use std::collections::BTreeMap;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::mpsc::sync_channel;

/// Rendered bytes handed to the sink at a time.
const CHUNK_BYTES: usize = 4 << 20;

/// What rendering needs to know besides a user's rows.
pub(super) struct RenderContext<'a> {
    /// Trait code -> rank in line order.
    rank: Vec<u32>,
    /// Rank -> what the trait does (the trait ID it adds or removes, if any) and its kind.
    ranked: Vec<(Effect, TraitKind)>,
    /// Rank -> the trait's text, rendered once.
    texts: Vec<Vec<u8>>,
    /// Rank -> a signal's value (empty for other traits), after its first 16 bytes as
    /// integers (`spill::prefix`, as the sort keys IDs): where a signal carried in the rows
    /// falls among them. The integers decide most comparisons of a search without reading
    /// the values, scattered in memory.
    values: Vec<([u64; 2], &'a [u8])>,
    /// Rule index -> a key-value rule's key (signals carried in the rows name their rule).
    keys: Vec<&'a str>,
    /// Rule index -> the ranks of the interned signals with the rule's key, which line
    /// order keeps together, sorted by value.
    keyed: Vec<std::ops::Range<usize>>,
    part: PartLimit,
    sources: &'a [Source],
    /// With a trait list, written signals no rule-based trait reads are counted.
    check: Option<TraitCheck<'a>>,
    /// An ID-sync mapping: users' rows carry IDs, written a line per pair (or tuple).
    sync: Option<&'a IdSync>,
    /// How many `latest_by` groups rows carry (see `LATEST`).
    latest_groups: usize,
}

/// What happened to the users: the receipt's counters, the rejected users, and traits
/// written by kind.
pub(super) struct Tally<'r> {
    pub(super) receipt: Receipt,
    pub(super) rejects: &'r mut RejectLog,
    pub(super) kinds: KindCounts,
}

/// Buffers reused from user to user.
#[derive(Default)]
struct Scratch {
    ranks: Vec<u32>,
    /// Per trait code, the last user (by `user`) that had it: duplicates are dropped before
    /// sorting, which leaves a dozen ranks rather than forty.
    seen: Vec<u32>,
    user: u32,
    added: Vec<u64>,
    removed: Vec<u64>,
    /// The traits written: ranks, or `INLINE | k` for `inline[k]`.
    line: Vec<u32>,
    /// The user's signals carried in the rows, not interned, in line order, and their
    /// values back to back.
    inline: Vec<Inline>,
    inline_text: Vec<u8>,
    merged: Vec<u32>,
    /// The user's traits as the delivery sees them.
    traits: UserTraits,
    /// `latest_by`: the user's codes once only the latest rows' are left of each group.
    latest_codes: Vec<u32>,
    /// Per group, the greatest order value seen and its rows' codes.
    latest: Vec<(Vec<u8>, Vec<u32>)>,
    latest_bytes: Vec<u8>,
}

/// A key-value signal carried in the rows (see `intern::INLINE`).
#[derive(Debug, Clone)]
struct Inline {
    /// It goes before the trait of this rank.
    pos: u32,
    /// The rule it comes from, which knows its key.
    rule: u32,
    /// Its value, in `Scratch::inline_text`.
    value: std::ops::Range<usize>,
}

impl<'a> RenderContext<'a> {
    /// `traits` by code.
    pub(super) fn new(
        traits: &'a [Trait],
        mapping: &'a Mapping,
        part: PartLimit,
        sources: &'a [Source],
        check: Option<TraitCheck<'a>>,
    ) -> RenderContext<'a> {
        // Rank of each trait code in the line order (Trait's Ord), so sorting ranks sorts traits.
        let mut by_order: Vec<u32> = (0..traits.len() as u32).collect();
        by_order.sort_unstable_by(|a, b| traits[*a as usize].cmp(&traits[*b as usize]));
        let mut rank = vec![0u32; traits.len()];
        for (r, &code) in by_order.iter().enumerate() {
            rank[code as usize] = r as u32;
        }
        let in_order = by_order.iter().map(|&c| &traits[c as usize]);
        let ranked = in_order
            .clone()
            .map(|t| {
                let effect = match t.target() {
                    Some((id, true)) => Effect::Add(id),
                    Some((id, false)) => Effect::Remove(id),
                    None => Effect::Signal,
                };
                (effect, t.kind())
            })
            .collect();
        let texts = in_order.clone().map(|t| t.render().into_bytes()).collect();
        let keys: Vec<&str> = mapping
            .rules
            .iter()
            .map(|r| match &r.kind {
                RuleKind::KeyValue { key, .. } => key.as_str(),
                _ => "",
            })
            .collect();
        let in_order: Vec<&Trait> = in_order.collect();
        let values = in_order
            .iter()
            .map(|t| match t {
                Trait::Signal { value, .. } => (prefix(value.as_bytes()), value.as_bytes()),
                _ => ([0; 2], &[][..]),
            })
            .collect();
        let keyed = keys
            .iter()
            .map(|key| {
                let start = in_order.partition_point(|t| t.cmp_signal(key, "") == Order::Less);
                let len = in_order[start..]
                    .iter()
                    .take_while(|t| matches!(t, Trait::Signal { key: k, .. } if k == key))
                    .count();
                start..start + len
            })
            .collect();
        RenderContext {
            rank,
            ranked,
            texts,
            values,
            keys,
            keyed,
            part,
            sources,
            check,
            sync: mapping.id_sync.as_ref(),
            latest_groups: mapping.latest_by.len(),
        }
    }

    /// Merges the sorted rows into users and renders their lines on a second thread, so
    /// that rendering overlaps the sink's work; hands the sink about 4 MB at a time.
    pub(super) fn render(
        &self,
        mut merge: Merge,
        mut tally: Tally,
        cancel: &AtomicBool,
        progress: &Progress,
        deliver: &mut dyn Deliver,
        sink: &mut dyn FnMut(&Chunk) -> Result<()>,
    ) -> Result<Receipt> {
        let mut tally = std::thread::scope(|s| -> Result<Tally> {
            let (tx, rx) = sync_channel::<Chunk>(1);
            let renderer = std::thread::Builder::new().name("render".into());
            let rendering = renderer
                .spawn_scoped(s, move || -> Result<Tally> {
                    let mut user = UserRows::default();
                    let mut scratch = Scratch::default();
                    loop {
                        let mut chunk = Chunk::default();
                        let mut more = true;
                        let mut rows = 0;
                        while more && chunk.bytes() < CHUNK_BYTES {
                            more = merge.next_user(&mut user).map_err(spill_error)?;
                            if more {
                                rows += user.rows;
                            }
                            let mut out = Writer {
                                ctx: self,
                                chunk: &mut chunk,
                                tally: &mut tally,
                                user: &user,
                            };
                            if more {
                                match self.sync {
                                    Some(sync) => {
                                        sync_traits(sync, &user, &mut scratch, out.tally);
                                    }
                                    None => self.user_traits(&user, &mut scratch, out.tally),
                                }
                                let uid = std::str::from_utf8(&user.id).unwrap_or_default();
                                deliver.user(uid, &scratch.traits, &mut out)?;
                            } else {
                                deliver.finish(&mut out)?;
                            }
                        }
                        if cancel.load(Ordering::Relaxed) {
                            return Err(Error::Interrupted);
                        }
                        progress.add(rows);
                        // A closed channel: the sink failed, and that error is reported.
                        let sent = chunk.is_empty() || tx.send(chunk).is_ok();
                        if !sent || !more {
                            return Ok(tally);
                        }
                    }
                })
                .expect("a thread can be started");
            for chunk in rx {
                sink(&chunk)?;
            }
            rendering.join().expect("the render thread does not panic")
        })?;
        tally.receipt.traits_by_kind = tally.kinds.by_name();
        tally.receipt.id_sync = self.sync.is_some();
        Ok(tally.receipt)
    }

    /// Orders and de-duplicates a user's traits and resolves add/remove conflicts, into
    /// `scratch.traits`.
    fn user_traits(&self, user: &UserRows, scratch: &mut Scratch, tally: &mut Tally) {
        tally.receipt.users_read += 1;
        if self.latest_groups > 0 {
            let codes = std::mem::take(&mut scratch.latest_codes);
            let codes = self.latest_rows(&user.codes, scratch, codes);
            self.distinct_ranks(&codes, scratch);
            scratch.latest_codes = codes;
        } else {
            self.distinct_ranks(&user.codes, scratch);
        }
        self.resolve_conflicts(scratch, &mut tally.receipt);
        let Scratch {
            line,
            inline,
            inline_text,
            traits,
            ..
        } = scratch;
        traits.clear();
        if line.is_empty() {
            tally.receipt.users_without_traits += 1;
        }
        for &r in line.iter() {
            if r & INLINE == 0 {
                let (effect, kind) = self.ranked[r as usize];
                traits.push(effect, kind, &self.texts[r as usize]);
            } else {
                let x = &inline[(r & !INLINE) as usize];
                // The value was text when it was converted.
                let value = std::str::from_utf8(&inline_text[x.value.clone()]).unwrap_or_default();
                render_signal(self.keys[x.rule as usize], value, traits.text_mut());
                traits.push_written(Effect::Signal, TraitKind::KeyValue);
            }
        }
    }

    /// A user's codes with each `latest_by` group's reduced to those of its latest rows (the
    /// rows with the greatest order value; NULL orders before any value), into `out`.
    fn latest_rows(&self, codes: &[u32], scratch: &mut Scratch, mut out: Vec<u32>) -> Vec<u32> {
        let Scratch {
            latest,
            latest_bytes: bytes,
            ..
        } = scratch;
        latest.resize_with(self.latest_groups, Default::default);
        for (order, kept) in latest.iter_mut() {
            order.clear();
            kept.clear();
        }
        out.clear();
        let mut i = 0;
        while i < codes.len() {
            let c = codes[i];
            let rule = c & !INLINE;
            if c & INLINE == 0 || rule == POSITION_RULE || rule & LATEST == 0 {
                // An interned trait, or a carried signal: kept as it is.
                let next = if c & INLINE == 0 {
                    i + 1
                } else {
                    i + 2 + (codes[i + 1] as usize).div_ceil(4)
                };
                out.extend_from_slice(&codes[i..next]);
                i = next;
                continue;
            }
            bytes.clear();
            i = decode_inline(codes, i, bytes);
            let g = (rule & !LATEST) as usize;
            let len = u32::from_le_bytes(bytes[..4].try_into().expect("4 bytes")) as usize;
            let (order, row_codes) = bytes[4..].split_at(len);
            let (best, kept) = &mut latest[g];
            // An order value is never empty (it starts with its NULL byte): an empty `best`
            // is a group without a row yet.
            match (best.is_empty(), order.cmp(best.as_slice())) {
                (false, Order::Less) => continue,
                (false, Order::Equal) => {}
                _ => {
                    best.clear();
                    best.extend_from_slice(order);
                    kept.clear();
                }
            }
            kept.extend(
                row_codes
                    .chunks_exact(4)
                    .map(|w| u32::from_le_bytes(w.try_into().expect("4 bytes"))),
            );
        }
        for (_, kept) in latest.iter() {
            out.extend_from_slice(kept);
        }
        out
    }

    /// The ranks of a user's distinct trait codes, in line order, into `scratch.ranks`; the
    /// signals carried in the rows into `scratch.inline` (or, when one equals an interned
    /// trait, its rank into `ranks`).
    fn distinct_ranks(&self, codes: &[u32], scratch: &mut Scratch) {
        let Scratch {
            ranks,
            seen,
            user: stamp,
            inline,
            inline_text,
            ..
        } = scratch;
        *stamp = stamp.wrapping_add(1);
        if *stamp == 0 || seen.len() < self.rank.len() {
            seen.clear();
            seen.resize(self.rank.len(), 0);
            *stamp = 1;
        }
        // Room for every code: each code's rank is written at `n`, which moves on only for
        // a code not seen before. Whether it was is about as likely as not, so a branch on it
        // was mispredicted often.
        ranks.clear();
        ranks.resize(codes.len(), 0);
        let mut n = 0;
        inline.clear();
        inline_text.clear();
        let mut i = 0;
        while i < codes.len() {
            let c = codes[i];
            if c & INLINE != 0 {
                let start = inline_text.len();
                i = decode_inline(codes, i, inline_text);
                inline.push(Inline {
                    pos: 0,
                    rule: c & !INLINE,
                    value: start..inline_text.len(),
                });
                continue;
            }
            let last = &mut seen[c as usize];
            let new = *last != *stamp;
            *last = *stamp;
            ranks[n] = self.rank[c as usize];
            n += usize::from(new);
            i += 1;
        }
        ranks.truncate(n);
        if !inline.is_empty() {
            // A user's rows repeat their values: each distinct one is placed once. Sorted by
            // key and value, they are in line order, and so are their places.
            let text = |x: &Inline| (self.keys[x.rule as usize], &inline_text[x.value.clone()]);
            inline.sort_by(|a, b| text(a).cmp(&text(b)));
            inline.dedup_by(|a, b| text(a) == text(b));
            inline.retain_mut(
                |x| match self.place_inline(x.rule, &inline_text[x.value.clone()]) {
                    Ok(rank) => {
                        ranks.push(rank);
                        false
                    }
                    Err(pos) => {
                        x.pos = pos;
                        true
                    }
                },
            );
        }
        ranks.sort_unstable();
        ranks.dedup();
    }

    /// Where a carried signal of `rule` goes among the interned traits: `Ok` with the rank
    /// of an equal one, or `Err` with the rank it goes before. Only the interned signals of
    /// the rule's key are searched, by their values.
    fn place_inline(&self, rule: u32, value: &[u8]) -> std::result::Result<u32, u32> {
        let keyed = self.keyed[rule as usize].clone();
        let values = &self.values[keyed.clone()];
        let p = prefix(value);
        let at = values.partition_point(|&(q, v)| q < p || (q == p && v < value));
        let pos = (keyed.start + at) as u32;
        if values.get(at).is_some_and(|&(_, v)| v == value) {
            Ok(pos)
        } else {
            Err(pos)
        }
    }

    /// The traits to write, into `scratch.line`: a removal of a trait the user also gets
    /// is dropped (a conflict, counted), and a removal in two spellings is written once.
    fn resolve_conflicts(&self, scratch: &mut Scratch, receipt: &mut Receipt) {
        let Scratch {
            ranks,
            added,
            removed,
            line,
            ..
        } = scratch;
        added.clear();
        removed.clear();
        line.clear();
        for &r in ranks.iter() {
            match self.ranked[r as usize].0 {
                Effect::Add(id) => added.push(id),
                // Additions sort before removals, so `added` is complete here.
                Effect::Remove(id) if added.binary_search(&id).is_ok() => {
                    receipt.conflicts += 1;
                    continue;
                }
                Effect::Remove(id) if removed.contains(&id) => continue,
                Effect::Remove(id) => removed.push(id),
                Effect::Signal => {}
            }
            line.push(r);
        }
        if !scratch.inline.is_empty() {
            // Carried signals go before the interned trait of their rank.
            let Scratch {
                line,
                inline,
                merged,
                ..
            } = scratch;
            merged.clear();
            let mut k = 0;
            for &r in line.iter() {
                while k < inline.len() && inline[k].pos <= r {
                    merged.push(INLINE | k as u32);
                    k += 1;
                }
                merged.push(r);
            }
            merged.extend((k..inline.len()).map(|k| INLINE | k as u32));
            std::mem::swap(line, merged);
        }
    }
}

/// Appends the bytes of the carried value that starts at `codes[i]` (`INLINE | rule`, the
/// length, the bytes four to a code) to `out`; returns where the next code starts.
fn decode_inline(codes: &[u32], i: usize, out: &mut Vec<u8>) -> usize {
    let len = codes[i + 1] as usize;
    let words = &codes[i + 2..i + 2 + len.div_ceil(4)];
    let start = out.len();
    out.extend(words.iter().flat_map(|w| w.to_le_bytes()));
    out.truncate(start + len);
    i + 2 + words.len()
}

/// One ID-sync row: the text after the master ID and its TAB (partner IDs TAB-separated,
/// or a hashed e-mail), and for c2c what makes it recent: `latest_by`'s value, if any,
/// then its position in the export.
#[derive(Default)]
struct SyncRow {
    text: Vec<u8>,
    latest: Option<Vec<u8>>,
    position: Vec<u8>,
}

/// An ID-sync user's line texts, de-duplicated and sorted, into `scratch.traits`: a tuple
/// of partner IDs per row (adobe), or the user's distinct hashed e-mails, the most recent
/// `max_emails` of them (c2c; the rest are counted).
fn sync_traits(sync: &IdSync, user: &UserRows, scratch: &mut Scratch, tally: &mut Tally) {
    tally.receipt.users_read += 1;
    let partners = (sync.dpids.len() - 1) as u32;
    let mut rows: Vec<SyncRow> = Vec::new();
    let mut row = SyncRow::default();
    let mut bytes = Vec::new();
    let mut i = 0;
    // Each row's values come in rule order: the partner IDs, `latest_by`, the position.
    while i < user.codes.len() {
        let rule = user.codes[i] & !INLINE;
        bytes.clear();
        i = decode_inline(&user.codes, i, &mut bytes);
        match rule {
            r if r < partners => {
                if r > 0 {
                    row.text.push(b'\t');
                }
                row.text.extend_from_slice(&bytes);
                if r + 1 == partners && sync.kind == IdSyncKind::Adobe {
                    rows.push(std::mem::take(&mut row));
                }
            }
            POSITION_RULE => {
                row.position = bytes.clone();
                rows.push(std::mem::take(&mut row));
            }
            _ => row.latest = Some(bytes.clone()),
        }
    }
    let recent_first =
        |a: &SyncRow, b: &SyncRow| (&b.latest, &b.position).cmp(&(&a.latest, &a.position));
    rows.sort_by(|a, b| a.text.cmp(&b.text).then_with(|| recent_first(a, b)));
    // The first of each text is its most recent row.
    rows.dedup_by(|later, first| later.text == first.text);
    if sync.kind == IdSyncKind::C2c && rows.len() > sync.max_emails {
        rows.sort_by(recent_first);
        tally.receipt.emails_dropped += (rows.len() - sync.max_emails) as u64;
        rows.truncate(sync.max_emails);
        rows.sort_by(|a, b| a.text.cmp(&b.text));
    }
    let traits = &mut scratch.traits;
    traits.clear();
    for r in &rows {
        traits.push(Effect::Signal, TraitKind::KeyValue, &r.text);
    }
}

/// Writes users' lines into a chunk, counting what it writes and rejecting users that cannot
/// be sent whole.
struct Writer<'w, 'a, 't> {
    ctx: &'w RenderContext<'a>,
    chunk: &'w mut Chunk,
    tally: &'w mut Tally<'t>,
    /// The user being rendered: a rejected user is named by its first row.
    user: &'w UserRows,
}

impl Lines for Writer<'_, '_, '_> {
    fn write(&mut self, mode: Mode, uid: &str, traits: &UserTraits) -> Result<bool> {
        if self.ctx.sync.is_some() {
            return self.write_sync(uid, traits);
        }
        let out = self.chunk.get_mut(mode);
        let start = out.body.len();
        let written = inbound::wrap_user(
            uid,
            traits.iter().map(|(_, text)| text),
            MAX_LINE_BYTES,
            MAX_LINES_PER_USER,
            &mut out.body,
        )
        .map_err(|e| (RejectReason::from(&e), e.to_string()))
        .and_then(|lines| {
            let bytes = (out.body.len() - start) as u64;
            self.ctx
                .part
                .check_user(bytes)
                .map(|()| lines)
                .map_err(|e| {
                    out.body.truncate(start);
                    (RejectReason::from(&e), e.to_string())
                })
        });
        match written {
            Ok(lines) => {
                out.users.push(UserBlock {
                    end: out.body.len(),
                    lines: lines as u32,
                });
                let receipt = &mut self.tally.receipt;
                receipt.users_written += 1;
                receipt.lines += lines as u64;
                receipt.traits += traits.len() as u64;
                for kind in traits.kinds() {
                    self.tally.kinds.add(kind, 1);
                }
                if let Some(check) = self.ctx.check {
                    count_unrealized(check, traits, &mut receipt.unrealized_signals);
                }
                Ok(true)
            }
            Err((reason, message)) => {
                self.reject(uid, reason, message)?;
                Ok(false)
            }
        }
    }
}

/// Counts the user's signals, by key, that no rule-based trait of the data source reads:
/// AAM's receipt would count them as unused.
fn count_unrealized(check: TraitCheck, traits: &UserTraits, counts: &mut BTreeMap<String, u64>) {
    for (i, (_, text)) in traits.iter().enumerate() {
        if !matches!(traits.kind(i), TraitKind::KeyValue | TraitKind::Ic) {
            continue;
        }
        // Written by the renderer, so it parses.
        let text = std::str::from_utf8(text).unwrap_or_default();
        let Ok(element) = inbound::parse_element(text) else {
            continue;
        };
        if let Some(key) = check.list.unrealized_key(check.data_source, &element.value) {
            match counts.get_mut(key) {
                Some(n) => *n += 1,
                None => {
                    counts.insert(key.to_owned(), 1);
                }
            }
        }
    }
}

impl Writer<'_, '_, '_> {
    /// An ID-sync user's lines, `<master>\t<text>`, all in the `.sync` file (a full
    /// refresh of a state sends every pair again, in the same kind of file).
    fn write_sync(&mut self, uid: &str, traits: &UserTraits) -> Result<bool> {
        let out = self.chunk.get_mut(Mode::Sync);
        let start = out.body.len();
        for (_, text) in traits.iter() {
            out.body.extend_from_slice(uid.as_bytes());
            out.body.push(b'\t');
            out.body.extend_from_slice(text);
            out.body.push(b'\n');
        }
        let bytes = (out.body.len() - start) as u64;
        if let Err(e) = self.ctx.part.check_user(bytes) {
            out.body.truncate(start);
            self.reject(uid, RejectReason::from(&e), e.to_string())?;
            return Ok(false);
        }
        out.users.push(UserBlock {
            end: out.body.len(),
            lines: traits.len() as u32,
        });
        let receipt = &mut self.tally.receipt;
        receipt.users_written += 1;
        receipt.lines += traits.len() as u64;
        receipt.traits += traits.len() as u64;
        Ok(true)
    }

    /// Counts and lists a user that cannot be sent: named by its first row when it is the
    /// user being rendered (else it has no rows in this export).
    fn reject(&mut self, uid: &str, reason: RejectReason, message: String) -> Result<()> {
        let receipt = &mut self.tally.receipt;
        receipt.users_rejected += 1;
        let (file, row, rows) = if self.user.id == uid.as_bytes() {
            let source = &self.ctx.sources[self.user.first_file as usize];
            (
                source.path.display().to_string(),
                self.user.first_row,
                self.user.rows,
            )
        } else {
            (String::new(), 0, 0)
        };
        receipt.reject(reason, rows);
        self.tally.rejects.push(Reject {
            file,
            row,
            user_id: mask_pii(uid),
            reason,
            message: format!("{message} ({rows} rows of this user left out)"),
        })
    }
}
