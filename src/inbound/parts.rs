//! Rendered users and how they are cut into parts (SPEC: File sizes): the pipeline renders
//! users into [`Rendered`] chunks, the writer cuts them into parts, and both follow the one
//! [`PartLimit`] here, so that a user the pipeline accepts always fits a part.

use std::fmt;

/// Some users' lines, rendered back to back: what the pipeline hands the writer.
#[derive(Debug, Default)]
pub struct Rendered {
    pub body: Vec<u8>,
    /// Per user: the end offset of its lines in `body` and how many lines it has.
    pub users: Vec<UserBlock>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct UserBlock {
    pub end: usize,
    pub lines: u32,
}

/// The most uncompressed bytes of lines in one part (`output.max_part_bytes`). A user's
/// lines never straddle two parts, so a user larger than a part cannot be sent at all.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct PartLimit {
    pub max_bytes: u64,
}

/// A user whose lines alone are larger than a part.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct UserTooLarge {
    pub bytes: u64,
    pub max: u64,
}

impl fmt::Display for UserTooLarge {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "user's lines take {} bytes, more than output.max_part_bytes = {}",
            self.bytes, self.max
        )
    }
}

impl PartLimit {
    /// Whether a user whose lines take `bytes` can be sent at all.
    pub fn check_user(self, bytes: u64) -> Result<(), UserTooLarge> {
        if bytes > self.max_bytes {
            Err(UserTooLarge {
                bytes,
                max: self.max_bytes,
            })
        } else {
            Ok(())
        }
    }

    /// Whether a part holding `users` users in `bytes` bytes must be closed before a user
    /// of `user_bytes` is added (a part always takes at least one user).
    pub fn closes_before(self, bytes: u64, users: u64, user_bytes: u64) -> bool {
        users > 0 && bytes + user_bytes > self.max_bytes
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_part_takes_users_up_to_the_limit_and_one_user_at_least() {
        let limit = PartLimit { max_bytes: 100 };
        assert!(
            !limit.closes_before(0, 0, 150),
            "an empty part takes any user"
        );
        assert!(!limit.closes_before(60, 1, 40));
        assert!(limit.closes_before(60, 1, 41));
        assert_eq!(limit.check_user(100), Ok(()));
        assert_eq!(
            limit.check_user(101).unwrap_err().to_string(),
            "user's lines take 101 bytes, more than output.max_part_bytes = 100"
        );
    }
}

/// The name of one part of a delivery, `<stem>.<ending>[.<split>][.gz]`: inbound files
/// (`ftp_dpm_21_1700000000.sync.2.gz`) and ID-synchronization files
/// (`adobe_id_0_21_1700000000.sync.gz`) alike.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PartName {
    /// What every file of the delivery shares (`FileName::stem`, `IdSyncName::stem`).
    pub stem: String,
    /// `sync` or `overwrite`.
    pub ending: &'static str,
    /// Only when the delivery has more than one part (numbered from 1).
    pub split: Option<u32>,
    pub gzip: bool,
}

impl PartName {
    pub fn render(&self) -> String {
        let mut s = format!("{}.{}", self.stem, self.ending);
        if let Some(n) = self.split {
            s.push_str(&format!(".{n}"));
        }
        if self.gzip {
            s.push_str(".gz");
        }
        s
    }

    /// The delivery stem of a file name, inbound or ID sync; `None` for any other name.
    pub fn stem_of(name: &str) -> Option<String> {
        super::FileName::parse(name)
            .map(|f| f.stem())
            .or_else(|_| super::IdSyncName::parse(name).map(|n| n.stem()))
            .ok()
    }
}

#[cfg(test)]
mod part_name_tests {
    use super::*;

    #[test]
    fn part_names_render_and_give_back_their_stem() {
        let mut name = PartName {
            stem: "adobe_id_0_21_1700000000".into(),
            ending: "sync",
            split: Some(2),
            gzip: true,
        };
        assert_eq!(name.render(), "adobe_id_0_21_1700000000.sync.2.gz");
        name.split = None;
        name.gzip = false;
        assert_eq!(name.render(), "adobe_id_0_21_1700000000.sync");
        for (file, stem) in [
            (
                "adobe_id_0_21_1700000000.sync.2.gz",
                Some("adobe_id_0_21_1700000000"),
            ),
            (
                "ftp_dpm_21_99_1700000000.overwrite.gz",
                Some("ftp_dpm_21_99_1700000000"),
            ),
            ("notes.txt", None),
        ] {
            assert_eq!(PartName::stem_of(file).as_deref(), stem, "{file}");
        }
    }
}
