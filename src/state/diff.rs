//! The diff: the previous snapshot, merged with this run's users (both in user ID order),
//! decides for each user what AAM must be told so that, once the delivery is applied in any
//! order of its files, what it holds equals this export (SPEC: How AAM applies a delivery):
//!
//! - new users, and users who gained traits or lost trait IDs: a `.sync` line with what is
//!   new and the removals (in the mapping's removal form);
//! - users who lost a signal (an `ic` value or a key-value), which a `.sync` cannot take
//!   back, and users who return with signals AAM still holds that they no longer have: their
//!   whole current set in the `.overwrite` file;
//! - users no longer in the export: `.sync` removals of their trait IDs (their signals
//!   cannot be retracted: counted);
//! - explicit removals (opt-outs) are sent when they appear, not every day;
//! - a full refresh sends everyone's whole set as `.overwrite`.
//!
//! One user is in one file only. The new snapshot is written as the users go.

use super::snapshot::{Held, Reader, Signals, Writer};
use crate::error::Result;
use crate::inbound::{parse_trait, Mode, Trait};
use crate::mapping::Emit;
use crate::pipeline::{Deliver, Effect, Lines, UserTraits};
use crate::report::DiffCounts;

pub struct Diff {
    prev: Reader,
    /// The next user of the previous snapshot, read ahead.
    peeked: Option<Held>,
    next: Writer,
    full: bool,
    /// How a removal of a trait ID is written.
    removal: Emit,
    pub counts: DiffCounts,
    line: UserTraits,
    cur: Current,
}

/// A user's current set, taken apart (buffers reused from user to user).
#[derive(Default)]
struct Current {
    trait_ids: Vec<u64>,
    /// The traits that are signals (indices into the user's traits), by text, no repeats.
    signals: Vec<u32>,
    removals: Vec<u64>,
}

impl Current {
    fn fill(&mut self, traits: &UserTraits) {
        self.trait_ids.clear();
        self.signals.clear();
        self.removals.clear();
        for (i, (effect, _)) in traits.iter().enumerate() {
            match effect {
                Effect::Add(id) => self.trait_ids.push(id),
                Effect::Remove(id) => self.removals.push(id),
                Effect::Signal => self.signals.push(i as u32),
            }
        }
        self.trait_ids.sort_unstable();
        self.trait_ids.dedup();
        self.removals.sort_unstable();
        self.removals.dedup();
        let text = |i: &u32| traits.get(*i as usize).1;
        self.signals.sort_unstable_by(|a, b| text(a).cmp(text(b)));
        self.signals.dedup_by(|a, b| text(a) == text(b));
    }

    fn has_traits(&self) -> bool {
        !self.trait_ids.is_empty() || !self.signals.is_empty()
    }

    fn signal<'t>(&self, traits: &'t UserTraits, k: usize) -> &'t [u8] {
        traits.get(self.signals[k] as usize).1
    }

    fn has_signal(&self, traits: &UserTraits, s: &[u8]) -> bool {
        self.signals
            .binary_search_by(|&i| traits.get(i as usize).1.cmp(s))
            .is_ok()
    }

    /// Whether AAM holds exactly this: the same trait IDs, signals and opt-outs.
    fn same_as(&self, traits: &UserTraits, held: &Held) -> bool {
        held.trait_ids == self.trait_ids
            && held.removals == self.removals
            && held
                .signals
                .iter()
                .map(str::as_bytes)
                .eq((0..self.signals.len()).map(|k| self.signal(traits, k)))
    }

    fn held(&self, uid: &str, traits: &UserTraits, signals: Option<Signals>) -> Held {
        Held {
            user_id: uid.to_owned(),
            present: true,
            trait_ids: self.trait_ids.clone(),
            signals: signals.unwrap_or_else(|| {
                Signals::from_sorted((0..self.signals.len()).map(|k| self.signal(traits, k)))
            }),
            removals: self.removals.clone(),
        }
    }
}

fn contains<T: Ord>(sorted: &[T], x: &T) -> bool {
    sorted.binary_search(x).is_ok()
}

impl Diff {
    pub fn new(prev: Reader, next: Writer, full: bool, removal: Emit) -> Diff {
        Diff {
            prev,
            peeked: None,
            next,
            full,
            removal,
            counts: DiffCounts::default(),
            line: UserTraits::default(),
            cur: Current::default(),
        }
    }

    /// Ends the new snapshot; returns how many users it holds.
    pub fn finish_snapshot(&mut self) -> Result<u64> {
        self.next.finish()
    }

    /// The previous snapshot's next user if its ID sorts before `uid` (bytewise; `None`:
    /// any), or equals it when `equal`.
    fn take_prev(&mut self, uid: Option<&str>, equal: bool) -> Result<Option<Held>> {
        if self.peeked.is_none() {
            self.peeked = self.prev.next_user()?;
        }
        let take = match (&self.peeked, uid) {
            (None, _) => false,
            (Some(_), None) => true,
            (Some(p), Some(u)) => match p.user_id.as_bytes().cmp(u.as_bytes()) {
                std::cmp::Ordering::Less => !equal,
                std::cmp::Ordering::Equal => equal,
                std::cmp::Ordering::Greater => false,
            },
        };
        Ok(if take { self.peeked.take() } else { None })
    }

    /// A user of the previous snapshot who is not in this export.
    fn gone(&mut self, mut p: Held, lines: &mut dyn Lines) -> Result<()> {
        if !p.present {
            // Left before: nothing more to take back; still remembered for a return.
            return self.next.push(p);
        }
        if !p.trait_ids.is_empty() {
            self.line.clear();
            let ids = std::mem::take(&mut p.trait_ids);
            self.push_removals(&ids, &[]);
            if !lines.write(Mode::Sync, &p.user_id, &self.line)? {
                // Not sent: AAM still holds them; try again next time.
                p.trait_ids = ids;
                return self.next.push(p);
            }
            self.counts.users_gone += 1;
            self.counts.traits_removed += self.line.len() as u64;
        }
        if p.signals.is_empty() {
            return Ok(());
        }
        self.counts.users_with_signals_kept += 1;
        p.present = false;
        p.removals.clear();
        self.next.push(p)
    }

    /// Appends removals of `ids` in the mapping's form, and the explicit `explicit` ones
    /// (with their own text), in line order.
    fn push_removals(&mut self, ids: &[u64], explicit: &[(u64, Vec<u8>)]) {
        let mut all: Vec<(Trait, Vec<u8>, u64)> = ids
            .iter()
            .map(|&id| {
                let t = self.removal.make(id);
                let text = t.render().into_bytes();
                (t, text, id)
            })
            .chain(explicit.iter().filter_map(|(id, text)| {
                let t = parse_trait(std::str::from_utf8(text).ok()?).ok()?.value;
                Some((t, text.clone(), *id))
            }))
            .collect();
        all.sort();
        all.dedup_by_key(|(_, _, id)| *id);
        for (t, text, id) in all {
            self.line.push(Effect::Remove(id), t.kind(), &text);
        }
    }

    /// What to send a user who is in the export, given what AAM holds (`prev`).
    fn present(
        &mut self,
        uid: &str,
        traits: &UserTraits,
        prev: Option<Held>,
        lines: &mut dyn Lines,
    ) -> Result<()> {
        let mut cur = std::mem::take(&mut self.cur);
        cur.fill(traits);
        let result = self.decide(uid, traits, &cur, prev, lines);
        self.cur = cur;
        result
    }

    fn decide(
        &mut self,
        uid: &str,
        traits: &UserTraits,
        cur: &Current,
        prev: Option<Held>,
        lines: &mut dyn Lines,
    ) -> Result<()> {
        // Most users are unchanged: nothing to send, and what AAM holds carries over as is.
        if let Some(p) = prev.as_ref().filter(|p| p.present && !self.full) {
            if cur.same_as(traits, p) {
                self.counts.users_unchanged += 1;
                return self.keep(prev);
            }
        }
        let returning = prev.as_ref().is_some_and(|p| !p.present);
        let held = prev.clone().unwrap_or_default();
        let lost_signal = held
            .signals
            .iter()
            .any(|s| !cur.has_signal(traits, s.as_bytes()));
        if (self.full || lost_signal) && cur.has_traits() {
            // The whole current set replaces what AAM holds (removals do not apply there).
            self.line.clear();
            for i in 0..traits.len() {
                if !matches!(traits.get(i).0, Effect::Remove(_)) {
                    self.line.push_from(traits, i);
                }
            }
            if lines.write(Mode::Overwrite, uid, &self.line)? {
                self.counts.users_overwritten += 1;
                self.counts.users_returned += u64::from(returning);
                self.counts.traits_added += self.line.len() as u64;
                return self.next.push(cur.held(uid, traits, None));
            }
            return self.keep(prev);
        }
        // What is new, and what must go.
        self.line.clear();
        let mut explicit = Vec::new();
        for i in 0..traits.len() {
            let (effect, text) = traits.get(i);
            let new = match effect {
                Effect::Add(id) => !contains(&held.trait_ids, &id),
                Effect::Signal => !held.signals.contains(text),
                Effect::Remove(id) => {
                    if !contains(&held.removals, &id) && !contains(&held.trait_ids, &id) {
                        explicit.push((id, text.to_vec()));
                    }
                    false
                }
            };
            if new {
                self.line.push_from(traits, i);
            }
        }
        let added = self.line.len() as u64;
        let dropped: Vec<u64> = held
            .trait_ids
            .iter()
            .copied()
            .filter(|id| !contains(&cur.trait_ids, id))
            .collect();
        self.push_removals(&dropped, &explicit);
        // Signals AAM keeps though the user lost them all: no line can take them back.
        let kept = lost_signal.then_some(held.signals);
        if lost_signal {
            self.counts.users_with_signals_kept += 1;
        }
        if self.line.is_empty() {
            self.counts.users_unchanged += u64::from(prev.is_some());
            let mut s = cur.held(uid, traits, kept);
            s.present = prev.is_some() || cur.has_traits();
            return if s.present || !s.signals.is_empty() {
                self.next.push(s)
            } else {
                Ok(())
            };
        }
        if lines.write(Mode::Sync, uid, &self.line)? {
            match &prev {
                None => self.counts.users_new += 1,
                Some(_) => self.counts.users_changed += 1,
            }
            self.counts.users_returned += u64::from(returning);
            self.counts.traits_added += added;
            self.counts.traits_removed += self.line.len() as u64 - added;
            return self.next.push(cur.held(uid, traits, kept));
        }
        self.keep(prev)
    }

    /// A user AAM holds the same for as before (unchanged, or whose lines could not be
    /// sent).
    fn keep(&mut self, prev: Option<Held>) -> Result<()> {
        match prev {
            Some(p) => self.next.push(p),
            None => Ok(()),
        }
    }
}

impl Deliver for Diff {
    fn user(&mut self, uid: &str, traits: &UserTraits, lines: &mut dyn Lines) -> Result<()> {
        while let Some(p) = self.take_prev(Some(uid), false)? {
            self.gone(p, lines)?;
        }
        let prev = self.take_prev(Some(uid), true)?;
        self.present(uid, traits, prev, lines)
    }

    fn finish(&mut self, lines: &mut dyn Lines) -> Result<()> {
        while let Some(p) = self.take_prev(None, false)? {
            self.gone(p, lines)?;
        }
        Ok(())
    }
}
