//! What happens to each user's traits once they are de-duplicated, in user order: a
//! [`Deliver`] decides which lines to write, and into which file (`.sync` or `.overwrite`),
//! through [`Lines`]. Without a state every user goes whole into the mapping's file
//! ([`Plain`]); with one, the state's diff decides (`crate::state`).

use crate::error::Result;
use crate::inbound::{Mode, Rendered, TraitKind};

/// What one trait of a user's line does in AAM.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Effect {
    /// Qualifies the user for an onboarded trait ID (`d_sid=N`).
    Add(u64),
    /// Removes the user from a trait ID (`d_unsid=N`, `N:0`, `N:-1`).
    Remove(u64),
    /// A signal (`ic` forms, key-values): AAM keeps it; a `.sync` cannot take it back.
    Signal,
}

/// A user's traits in line order: what each does, its kind (for the receipt), and its text
/// as written.
#[derive(Debug, Clone, Default)]
pub struct UserTraits {
    /// Per trait: its effect, its kind and where its text ends in `text`.
    items: Vec<(Effect, TraitKind, u32)>,
    text: Vec<u8>,
}

impl UserTraits {
    #[inline]
    pub fn clear(&mut self) {
        self.items.clear();
        self.text.clear();
    }

    #[inline]
    pub fn push(&mut self, effect: Effect, kind: TraitKind, text: &[u8]) {
        self.text.extend_from_slice(text);
        self.push_written(effect, kind);
    }

    /// Adds a trait whose text was just appended to [`UserTraits::text_mut`].
    #[inline]
    pub fn push_written(&mut self, effect: Effect, kind: TraitKind) {
        self.items.push((effect, kind, self.text.len() as u32));
    }

    /// Where the next trait's text is written, for [`UserTraits::push_written`].
    pub fn text_mut(&mut self) -> &mut Vec<u8> {
        &mut self.text
    }

    #[inline]
    pub fn len(&self) -> usize {
        self.items.len()
    }

    #[inline]
    pub fn is_empty(&self) -> bool {
        self.items.is_empty()
    }

    #[inline]
    pub fn get(&self, i: usize) -> (Effect, &[u8]) {
        let start = if i == 0 {
            0
        } else {
            self.items[i - 1].2 as usize
        };
        let (effect, _, end) = self.items[i];
        (effect, &self.text[start..end as usize])
    }

    #[inline]
    pub fn kind(&self, i: usize) -> TraitKind {
        self.items[i].1
    }

    /// Each trait's effect and text, in order.
    #[inline]
    pub fn iter(&self) -> impl Iterator<Item = (Effect, &[u8])> + '_ {
        let mut start = 0;
        self.items.iter().map(move |&(effect, _, end)| {
            let text = &self.text[start..end as usize];
            start = end as usize;
            (effect, text)
        })
    }

    /// Each trait's kind, in order.
    #[inline]
    pub fn kinds(&self) -> impl Iterator<Item = TraitKind> + '_ {
        self.items.iter().map(|&(_, kind, _)| kind)
    }

    /// Appends trait `i` of `other`.
    pub fn push_from(&mut self, other: &UserTraits, i: usize) {
        let (effect, text) = other.get(i);
        self.push(effect, other.kind(i), text);
    }
}

/// Some users' lines for each file of the delivery.
#[derive(Debug, Default)]
pub struct Chunk {
    pub sync: Rendered,
    pub overwrite: Rendered,
}

impl Chunk {
    pub fn get(&self, mode: Mode) -> &Rendered {
        match mode {
            Mode::Sync => &self.sync,
            Mode::Overwrite => &self.overwrite,
        }
    }

    pub(super) fn get_mut(&mut self, mode: Mode) -> &mut Rendered {
        match mode {
            Mode::Sync => &mut self.sync,
            Mode::Overwrite => &mut self.overwrite,
        }
    }

    pub(super) fn bytes(&self) -> usize {
        self.sync.body.len() + self.overwrite.body.len()
    }

    pub(super) fn is_empty(&self) -> bool {
        self.sync.users.is_empty() && self.overwrite.users.is_empty()
    }
}

/// Writes users' lines; implemented by the render step.
pub trait Lines {
    /// Writes `traits` as `uid`'s lines in the file of `mode`. False when the user cannot
    /// be sent whole (too many lines, larger than a part): then nothing is written, and the
    /// user is counted and listed as rejected.
    fn write(&mut self, mode: Mode, uid: &str, traits: &UserTraits) -> Result<bool>;
}

/// Decides, user by user in ID order, what is written.
pub trait Deliver: Send {
    /// `uid`'s traits in this export (empty when its rows gave none).
    fn user(&mut self, uid: &str, traits: &UserTraits, lines: &mut dyn Lines) -> Result<()>;

    /// After the last user.
    fn finish(&mut self, lines: &mut dyn Lines) -> Result<()>;
}

/// Every user with traits, whole, into the file of the mapping's mode.
pub struct Plain(pub Mode);

impl Deliver for Plain {
    fn user(&mut self, uid: &str, traits: &UserTraits, lines: &mut dyn Lines) -> Result<()> {
        if !traits.is_empty() {
            lines.write(self.0, uid, traits)?;
        }
        Ok(())
    }

    fn finish(&mut self, _: &mut dyn Lines) -> Result<()> {
        Ok(())
    }
}
