//! User ID types and their formats (SPEC: User IDs).

use super::traits::is_control_byte;
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};
use std::fmt;

/// The kind of user ID a file holds. A file never mixes ID types (SPEC: File names).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize, clap::ValueEnum)]
#[serde(rename_all = "snake_case")]
#[value(rename_all = "snake_case")]
pub enum IdType {
    /// AAM's own 38-digit UUID.
    AamUuid,
    /// The company's own ID (CRM ID), matched exactly and case-sensitively.
    Dpuuid,
    Idfa,
    Gaid,
    Rida,
    Maid,
    Tifa,
    FireTv,
    Lgudid,
    Vizio,
}

/// How a device ID is spelled (SPEC: User IDs table).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Shape {
    UuidUpper,
    UuidLower,
    Alphanumeric,
}

/// Why a user ID would be rejected by AAM, or must not be sent at all.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum IdProblem {
    Empty,
    /// An e-mail address is PII (SPEC: User IDs).
    Email,
    /// Holds `:` or `%3A`, which AAM reads as a separator.
    Colon,
    /// Holds a control character (TAB, CR, LF, NUL...): SPEC allows none.
    ControlChar,
    /// Looks URL-encoded (`%2F`); AAM matches IDs exactly, never decoded.
    PercentEncoded,
    /// Does not match the device ID format of its type.
    Format {
        expected: &'static str,
    },
    /// Right format but wrong letter case (e.g. a lowercase IDFA).
    Case {
        expected: &'static str,
    },
}

impl fmt::Display for IdProblem {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            IdProblem::Empty => write!(f, "user ID is empty"),
            IdProblem::Email => write!(
                f,
                "user ID looks like an e-mail address (PII); set `hash = \"sha256\"` under [user_id] to send its SHA-256 instead"
            ),
            IdProblem::Colon => write!(f, "user ID contains `:` or `%3A`, which AAM does not accept"),
            IdProblem::ControlChar => write!(
                f,
                "user ID contains a control character (TAB, CR, LF, NUL...)"
            ),
            IdProblem::PercentEncoded => {
                write!(f, "user ID looks URL-encoded; send the decoded ID")
            }
            IdProblem::Format { expected } => write!(f, "user ID is not {expected}"),
            IdProblem::Case { expected } => write!(
                f,
                "user ID must be {expected}; set `normalize_case = true` under [user_id] to convert it"
            ),
        }
    }
}

impl IdType {
    pub const ALL: [IdType; 10] = [
        IdType::AamUuid,
        IdType::Dpuuid,
        IdType::Idfa,
        IdType::Gaid,
        IdType::Rida,
        IdType::Maid,
        IdType::Tifa,
        IdType::FireTv,
        IdType::Lgudid,
        IdType::Vizio,
    ];

    /// The mapping / CLI spelling.
    pub fn name(self) -> &'static str {
        match self {
            IdType::AamUuid => "aam_uuid",
            IdType::Dpuuid => "dpuuid",
            IdType::Idfa => "idfa",
            IdType::Gaid => "gaid",
            IdType::Rida => "rida",
            IdType::Maid => "maid",
            IdType::Tifa => "tifa",
            IdType::FireTv => "fire_tv",
            IdType::Lgudid => "lgudid",
            IdType::Vizio => "vizio",
        }
    }

    pub fn from_name(name: &str) -> Option<IdType> {
        IdType::ALL.into_iter().find(|t| t.name() == name)
    }

    /// The global data source of a device ID type (SPEC: User IDs). Files of these IDs are
    /// named with this DPID and must carry a target DPID.
    pub fn global_dpid(self) -> Option<u64> {
        match self {
            IdType::AamUuid | IdType::Dpuuid => None,
            IdType::Idfa => Some(20915),
            IdType::Gaid => Some(20914),
            IdType::Rida => Some(121963),
            IdType::Maid => Some(389146),
            IdType::Tifa => Some(963906),
            IdType::FireTv => Some(488258),
            IdType::Lgudid => Some(1171485),
            IdType::Vizio => Some(1171489),
        }
    }

    /// The device ID type whose global data source is `dpid`, if any.
    pub fn from_global_dpid(dpid: u64) -> Option<IdType> {
        IdType::ALL
            .into_iter()
            .find(|t| t.global_dpid() == Some(dpid))
    }

    pub fn is_device(self) -> bool {
        self.global_dpid().is_some()
    }

    fn shape(self) -> Option<Shape> {
        match self {
            IdType::AamUuid | IdType::Dpuuid => None,
            IdType::Idfa => Some(Shape::UuidUpper),
            IdType::Gaid | IdType::Rida | IdType::FireTv | IdType::Lgudid => Some(Shape::UuidLower),
            IdType::Maid | IdType::Tifa | IdType::Vizio => Some(Shape::Alphanumeric),
        }
    }

    /// Converts a device ID to the letter case its type requires (the opt-in
    /// `normalize_case`). Returns `None` when nothing would change or the type has no case.
    pub fn normalize_case(self, id: &str) -> Option<String> {
        match self.shape() {
            Some(Shape::UuidUpper) if id.bytes().any(|b| b.is_ascii_lowercase()) => {
                Some(id.to_ascii_uppercase())
            }
            Some(Shape::UuidLower) if id.bytes().any(|b| b.is_ascii_uppercase()) => {
                Some(id.to_ascii_lowercase())
            }
            _ => None,
        }
    }

    /// Checks `id` against this type's format (SPEC: User IDs).
    pub fn check(self, id: &str) -> Result<(), IdProblem> {
        if id.is_empty() {
            return Err(IdProblem::Empty);
        }
        // The usual DPUUID, in one pass: none of the bytes the checks below look for
        // (control characters, an e-mail's `@`, a colon or a percent escape). One table
        // lookup a byte: this runs on every row.
        if self == IdType::Dpuuid && !id.bytes().any(|b| DPUUID_LOOK_CLOSER[usize::from(b)]) {
            return Ok(());
        }
        if id.bytes().any(is_control_byte) {
            return Err(IdProblem::ControlChar);
        }
        if looks_like_email(id) {
            return Err(IdProblem::Email);
        }
        match self {
            IdType::AamUuid => {
                if is_aam_uuid(id) {
                    Ok(())
                } else {
                    Err(IdProblem::Format {
                        expected: "an AAM UUID (exactly 38 digits)",
                    })
                }
            }
            IdType::Dpuuid => check_dpuuid(id),
            _ => match self.shape() {
                Some(Shape::Alphanumeric) => {
                    if id.bytes().all(|b| b.is_ascii_alphanumeric()) {
                        Ok(())
                    } else {
                        Err(IdProblem::Format {
                            expected: "alphanumeric",
                        })
                    }
                }
                Some(shape) => check_uuid(id, shape == Shape::UuidUpper),
                None => Ok(()),
            },
        }
    }
}

/// The bytes after which a DPUUID needs the full check: control characters, `@`, `:`, `%`.
const DPUUID_LOOK_CLOSER: [bool; 256] = {
    let mut table = [false; 256];
    let mut b = 0;
    while b < 256 {
        table[b] = is_control_byte(b as u8) || matches!(b as u8, b'@' | b':' | b'%');
        b += 1;
    }
    table
};

fn check_dpuuid(id: &str) -> Result<(), IdProblem> {
    let bytes = id.as_bytes();
    if id.contains(':') || bytes.windows(3).any(|w| w.eq_ignore_ascii_case(b"%3a")) {
        return Err(IdProblem::Colon);
    }
    let percent_escape = bytes
        .windows(3)
        .any(|w| w[0] == b'%' && w[1].is_ascii_hexdigit() && w[2].is_ascii_hexdigit());
    if percent_escape {
        return Err(IdProblem::PercentEncoded);
    }
    Ok(())
}

/// 8-4-4-4-12 hex digits, in the given case.
fn check_uuid(id: &str, upper: bool) -> Result<(), IdProblem> {
    let (format, case) = if upper {
        ("an UPPERCASE 8-4-4-4-12 hex ID", "UPPERCASE")
    } else {
        ("a lowercase 8-4-4-4-12 hex ID", "lowercase")
    };
    if !is_uuid_shape(id) {
        return Err(IdProblem::Format { expected: format });
    }
    let bytes = id.as_bytes();
    let wrong_case = if upper {
        bytes.iter().any(|b| b.is_ascii_lowercase())
    } else {
        bytes.iter().any(|b| b.is_ascii_uppercase())
    };
    if wrong_case {
        return Err(IdProblem::Case { expected: case });
    }
    Ok(())
}

/// Exactly 38 digits: the shape of AAM's own UUID (SPEC: User IDs).
pub fn is_aam_uuid(id: &str) -> bool {
    id.len() == 38 && id.bytes().all(|b| b.is_ascii_digit())
}

/// 8-4-4-4-12 hex digits, in either case: the shape of most device IDs.
pub fn is_uuid_shape(id: &str) -> bool {
    let bytes = id.as_bytes();
    bytes.len() == 36
        && bytes.iter().enumerate().all(|(i, &b)| match i {
            8 | 13 | 18 | 23 => b == b'-',
            _ => b.is_ascii_hexdigit(),
        })
}

/// True for values shaped like an e-mail address: `local@domain.tld` with no spaces.
pub fn looks_like_email(s: &str) -> bool {
    let s = s.trim();
    let Some((local, domain)) = s.split_once('@') else {
        return false;
    };
    !local.is_empty()
        && !s.contains(char::is_whitespace)
        && domain
            .rsplit_once('.')
            .is_some_and(|(host, tld)| !host.is_empty() && tld.len() >= 2)
}

/// True for values formatted like a phone number: `+` and 10-15 digits, or 10-15 digits
/// grouped with spaces, dashes, dots or parentheses. Plain digit strings are not flagged:
/// numeric CRM IDs are common.
pub fn looks_like_phone(s: &str) -> bool {
    // Checked first: most IDs fail it at their first letter.
    let allowed = s
        .bytes()
        .all(|b| b.is_ascii_digit() || matches!(b, b'+' | b' ' | b'-' | b'.' | b'(' | b')'));
    if !allowed {
        return false;
    }
    let digits = s.bytes().filter(u8::is_ascii_digit).count();
    let formatted = s.starts_with('+') || s.bytes().any(|b| !b.is_ascii_digit());
    allowed && formatted && (10..=15).contains(&digits) && !s.contains("++")
}

/// SHA-256 (lowercase hex) of a normalized e-mail address: trimmed and lowercased
/// (SPEC: User IDs, "a one-way hash of the normalized address").
pub fn email_sha256(email: &str) -> String {
    let normalized = email.trim().to_lowercase();
    let digest = Sha256::digest(normalized.as_bytes());
    let mut hex = String::with_capacity(64);
    for byte in digest {
        hex.push(char::from_digit(u32::from(byte >> 4), 16).unwrap_or('0'));
        hex.push(char::from_digit(u32::from(byte & 0xf), 16).unwrap_or('0'));
    }
    hex
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn spec_example_ids_are_valid() {
        // The user IDs of SPEC's documented examples.
        let aam = "59767559181262060060278870901087098252";
        assert_eq!(IdType::AamUuid.check(aam), Ok(()));
        assert_eq!(
            IdType::Dpuuid.check("DBwFoc3dhfMNCFBh2M4F9ZkJEXMNnRDh2PXvnI1"),
            Ok(())
        );
        assert_eq!(
            IdType::Gaid.check("e4fe9bde-caa0-47b6-908d-ffba3fa184f2"),
            Ok(())
        );
        assert_eq!(
            IdType::Idfa.check("6D92078A-8246-4BA4-AE5B-76104861E7DC"),
            Ok(())
        );
    }

    #[test]
    fn aam_uuid_needs_exactly_38_digits() {
        assert!(IdType::AamUuid.check(&"1".repeat(37)).is_err());
        assert!(IdType::AamUuid.check(&"1".repeat(39)).is_err());
        assert!(IdType::AamUuid
            .check(&format!("{}a", "1".repeat(37)))
            .is_err());
    }

    #[test]
    fn device_uuid_case_is_checked_per_type() {
        let lower = "e4fe9bde-caa0-47b6-908d-ffba3fa184f2";
        let upper = "E4FE9BDE-CAA0-47B6-908D-FFBA3FA184F2";
        for t in [IdType::Gaid, IdType::Rida, IdType::FireTv, IdType::Lgudid] {
            assert_eq!(t.check(lower), Ok(()), "{t:?}");
            assert!(
                matches!(t.check(upper), Err(IdProblem::Case { .. })),
                "{t:?}"
            );
        }
        assert_eq!(IdType::Idfa.check(upper), Ok(()));
        assert!(matches!(
            IdType::Idfa.check(lower),
            Err(IdProblem::Case { .. })
        ));
        assert_eq!(IdType::Idfa.normalize_case(lower).as_deref(), Some(upper));
        assert_eq!(IdType::Gaid.normalize_case(upper).as_deref(), Some(lower));
        assert_eq!(IdType::Gaid.normalize_case(lower), None);
    }

    #[test]
    fn device_uuid_shape_is_checked() {
        for bad in [
            "e4fe9bde-caa0-47b6-908d-ffba3fa184f",    // short
            "e4fe9bdecaa047b6908dffba3fa184f2",       // no dashes
            "g4fe9bde-caa0-47b6-908d-ffba3fa184f2",   // not hex
            "e4fe9bde-caa0-47b6-908d-ffba3fa184f2-0", // long
        ] {
            assert!(
                matches!(IdType::Gaid.check(bad), Err(IdProblem::Format { .. })),
                "{bad}"
            );
        }
    }

    #[test]
    fn alphanumeric_device_ids() {
        for t in [IdType::Maid, IdType::Tifa, IdType::Vizio] {
            assert_eq!(t.check("AbC123"), Ok(()));
            assert!(t.check("abc-123").is_err());
        }
    }

    #[test]
    fn dpuuid_rules() {
        assert_eq!(IdType::Dpuuid.check("User123"), Ok(()));
        assert_eq!(IdType::Dpuuid.check(""), Err(IdProblem::Empty));
        assert_eq!(IdType::Dpuuid.check("a:b"), Err(IdProblem::Colon));
        assert_eq!(IdType::Dpuuid.check("a%3Ab"), Err(IdProblem::Colon));
        assert_eq!(IdType::Dpuuid.check("a%3ab"), Err(IdProblem::Colon));
        assert_eq!(IdType::Dpuuid.check("a\tb"), Err(IdProblem::ControlChar));
        assert_eq!(IdType::Dpuuid.check("a\x7fb"), Err(IdProblem::ControlChar));
        for t in [IdType::Dpuuid, IdType::Maid] {
            assert_eq!(t.check("a\0b"), Err(IdProblem::ControlChar));
            assert_eq!(t.check("ab\x1f"), Err(IdProblem::ControlChar));
        }
        assert_eq!(
            IdType::Dpuuid.check("a%2Fb"),
            Err(IdProblem::PercentEncoded)
        );
        assert_eq!(
            IdType::Dpuuid.check("jane@example.com"),
            Err(IdProblem::Email)
        );
        assert_eq!(IdType::Dpuuid.check("100%"), Ok(()));
    }

    #[test]
    fn every_device_type_has_its_global_dpid() {
        for t in IdType::ALL {
            if let Some(dpid) = t.global_dpid() {
                assert_eq!(IdType::from_global_dpid(dpid), Some(t));
            }
            assert_eq!(IdType::from_name(t.name()), Some(t));
        }
        assert_eq!(IdType::from_global_dpid(20914), Some(IdType::Gaid));
        assert_eq!(IdType::from_global_dpid(21), None);
    }

    #[test]
    fn email_hash_normalizes_first() {
        // Known SHA-256 of "jane@example.com".
        let want = email_sha256("jane@example.com");
        assert_eq!(email_sha256("  Jane@Example.COM "), want);
        assert_eq!(want.len(), 64);
        assert_eq!(
            email_sha256(""),
            "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855"
        );
    }

    #[test]
    fn phone_detection() {
        assert!(looks_like_phone("+14155550123"));
        assert!(looks_like_phone("(415) 555-0123"));
        assert!(looks_like_phone("415.555.0123"));
        assert!(
            !looks_like_phone("4155550123"),
            "plain digits may be a CRM ID"
        );
        assert!(!looks_like_phone("CRM-415-555-0123"));
        assert!(!looks_like_phone("+1234"));
    }

    #[test]
    fn email_detection() {
        assert!(looks_like_email("a.b@example.co"));
        assert!(!looks_like_email("user@localhost"));
        assert!(!looks_like_email("@example.com"));
        assert!(!looks_like_email("abc"));
    }
}
