//! Traits interned as integers, and each rule's caches in front of the interner, so that
//! converting a value seen before costs one lookup and grouping never touches strings.

use super::TraitCheck;
use crate::inbound::Trait;
use crate::mapping::{Mapping, RuleKind};
use std::sync::Mutex;

/// Hash maps on the hot path use foldhash (hashbrown's default); nothing iterates them unsorted.
pub(super) type HashMap<K, V> = std::collections::HashMap<K, V, foldhash::fast::RandomState>;

/// Marks a code that is not an interned trait but a key-value signal carried in the row:
/// `INLINE | rule index`, then the value's length, then its bytes four to a code. A column with a
/// distinct value per user would otherwise intern millions of traits that are each sent
/// once; carried in the rows, they go through the external sort and memory stays flat.
/// Lines are the same either way: rendering orders and de-duplicates both kinds together.
/// The spill stores the value's bytes as they are (`spill::CARRIED`).
pub(super) const INLINE: u32 = crate::spill::CARRIED;

/// The rule index of a c2c row's position (file, row), carried as a signal would be: it
/// orders a CRM ID's e-mails when the mapping has no `latest_by`. The largest rule index,
/// which no mapping reaches.
pub(super) const POSITION_RULE: u32 = !INLINE;

/// Marks, in a carried item's rule index, the codes of `latest_by` group `g` for one row:
/// `INLINE | LATEST | g`, then as bytes the order value's length (4 bytes), the order value
/// (see `rows::order_bytes`), and the codes of the group's rules for the row. Rendering
/// keeps, per user and group, the codes of the rows with the greatest order value.
/// (`POSITION_RULE` has every bit set and is told apart first.)
pub(super) const LATEST: u32 = 1 << 29;

/// Stands in a rule's cache for a trait the trait list refuses (see `TraitCheck`): never
/// interned, never sent; a row that makes it is rejected.
pub(super) const REFUSED: u32 = INLINE - 1;

/// A trait's code from the shared interner.
pub(super) fn intern(interner: &Mutex<Interner>, t: Trait) -> u32 {
    interner.lock().expect("no converter panicked").code(t)
}

/// Traits interned as integers, so grouping and de-duplication never touch strings.
#[derive(Default)]
pub(super) struct Interner {
    codes: HashMap<Trait, u32>,
    /// By code.
    pub(super) traits: Vec<Trait>,
}

impl Interner {
    pub(super) fn code(&mut self, t: Trait) -> u32 {
        if let Some(&c) = self.codes.get(&t) {
            return c;
        }
        let c = self.traits.len() as u32;
        self.traits.push(t.clone());
        self.codes.insert(t, c);
        c
    }
}

/// One rule's trait codes by value, in front of the shared interner.
#[derive(Default)]
pub(super) struct RuleCache {
    /// A flag's pre-interned traits for true and false.
    pub(super) flag: (Option<u32>, Option<u32>),
    /// A value map's pre-interned traits by value (folded with `ignore_case`, and then also
    /// by each spelling met); `[REFUSED]` when the trait list refuses one of them.
    pub(super) map: HashMap<String, Box<[u32]>>,
    /// Trait ID -> code.
    pub(super) ids: IntCache,
    /// Key-value: value text -> code, so a value seen before costs one lookup.
    pub(super) signals: HashMap<String, u32>,
    /// Key-value over an integer column: value -> code, without writing the text.
    pub(super) numbers: IntCache,
    /// `pattern`, compiled.
    pub(super) pattern: Option<regex::Regex>,
    /// `key_column`: "key NUL value" -> code.
    pub(super) keyed: HashMap<String, u32>,
}

/// Codes by integer: small integers (trait IDs, ages, counts) index a table, no hashing;
/// the rest go to a map.
#[derive(Default)]
pub(super) struct IntCache {
    /// Code + 1 by value; 0 for not seen.
    small: Vec<u32>,
    large: HashMap<u64, u32>,
}

/// Values below this are looked up in the table (4 MB at most per rule).
const SMALL_INT: u64 = 1 << 20;

impl IntCache {
    pub(super) fn get(&self, v: u64) -> Option<u32> {
        if v < SMALL_INT {
            self.small.get(v as usize).and_then(|&c| c.checked_sub(1))
        } else {
            self.large.get(&v).copied()
        }
    }

    pub(super) fn insert(&mut self, v: u64, code: u32) {
        if v < SMALL_INT {
            let i = v as usize;
            if i >= self.small.len() {
                self.small.resize((i + 1).next_power_of_two().max(1024), 0);
            }
            self.small[i] = code + 1;
        } else {
            self.large.insert(v, code);
        }
    }
}

/// Each rule's cache, with the traits its mapping names (flags, value maps) interned up front.
/// A trait the trait list refuses is `REFUSED`, not interned.
pub(super) fn rule_caches(
    mapping: &Mapping,
    interner: &Mutex<Interner>,
    check: Option<TraitCheck>,
) -> Vec<RuleCache> {
    let mut interner = interner.lock().expect("no converter panicked");
    let interner = &mut *interner;
    let mut code = |t: &Trait| match check.and_then(|c| c.refuses(t)) {
        Some(_) => REFUSED,
        None => interner.code(t.clone()),
    };
    let caches = mapping.rules.iter().map(|rule| match &rule.kind {
        RuleKind::Flag { on_true, on_false } => RuleCache {
            flag: (Some(code(on_true)), on_false.as_ref().map(&mut code)),
            ..RuleCache::default()
        },
        RuleKind::ValueMap { values, .. } => RuleCache {
            map: values
                .iter()
                .map(|(k, traits)| {
                    let codes: Box<[u32]> = traits.iter().map(&mut code).collect();
                    let codes = if codes.contains(&REFUSED) {
                        Box::new([REFUSED]) as Box<[u32]>
                    } else {
                        codes
                    };
                    (k.clone(), codes)
                })
                .collect(),
            ..RuleCache::default()
        },
        RuleKind::TraitIds {
            pattern: Some(p), ..
        } => RuleCache {
            pattern: Some(regex::Regex::new(p).expect("checked with the mapping")),
            ..RuleCache::default()
        },
        _ => RuleCache::default(),
    });
    caches.collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn int_cache_keeps_small_large_and_negative_values_apart() {
        let mut cache = IntCache::default();
        let values = [
            0,
            1,
            5000,
            SMALL_INT - 1,
            SMALL_INT,
            u64::MAX,
            (-3i64) as u64,
        ];
        for v in values {
            assert_eq!(cache.get(v), None, "{v} before it is inserted");
        }
        for (code, v) in values.into_iter().enumerate() {
            cache.insert(v, code as u32);
        }
        for (code, v) in values.into_iter().enumerate() {
            assert_eq!(cache.get(v), Some(code as u32), "{v}");
        }
        assert_eq!(cache.get(2), None);
        assert_eq!(cache.get(SMALL_INT + 1), None);
    }
}
