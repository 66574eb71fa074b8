//! File names (SPEC: File names):
//! `ftp_dpm_<DPID>[_<TARGET_DPID>]_<TIMESTAMP>(.sync|.overwrite)[.<SPLIT>][.gz|.pgp|.gpg]`.

use serde::{Deserialize, Serialize};
use std::fmt;

/// `.sync` adds and removes traits; `.overwrite` replaces all of a user's traits of the data
/// source (SPEC: File names).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Mode {
    Sync,
    Overwrite,
}

impl Mode {
    pub fn name(self) -> &'static str {
        match self {
            Mode::Sync => "sync",
            Mode::Overwrite => "overwrite",
        }
    }
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FileName {
    pub dpid: u64,
    pub target_dpid: Option<u64>,
    /// UTC Unix time in seconds; always 10 digits.
    pub timestamp: u64,
    pub mode: Mode,
    /// Part number, only when a delivery has more than one part (numbered from 1).
    pub split: Option<u32>,
    pub gzip: bool,
    /// PGP-encrypted (`.pgp` or `.gpg`; SPEC: File names). PGP compresses, so never with gzip.
    pub encrypted: bool,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum FileNameError {
    /// Does not follow the `ftp_dpm_...` pattern; the text says which piece is wrong.
    Pattern(String),
    /// The timestamp is not 10 digits.
    Timestamp(String),
    /// `.gz` and `.pgp`/`.gpg` together: AAM does not accept a gzipped encrypted file.
    DoubleCompression(String),
}

impl fmt::Display for FileNameError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            FileNameError::Pattern(why) => write!(
                f,
                "file name does not match ftp_dpm_<DPID>[_<TARGET_DPID>]_<TIMESTAMP>.sync|.overwrite[.<SPLIT>][.gz]: {why}"
            ),
            FileNameError::Timestamp(ts) => {
                write!(f, "timestamp `{ts}` is not a 10-digit UTC Unix time in seconds")
            }
            FileNameError::DoubleCompression(ext) => write!(
                f,
                "`{ext}`: an encrypted file is compressed by PGP and must not be gzipped too"
            ),
        }
    }
}

/// The range of 10-digit Unix timestamps (2001-09-09 to 2286-11-20).
pub const TIMESTAMP_RANGE: std::ops::RangeInclusive<u64> = 1_000_000_000..=9_999_999_999;

impl FileName {
    /// What the files of one delivery share: `ftp_dpm_<DPID>[_<TARGET_DPID>]_<TIMESTAMP>`.
    pub fn stem(&self) -> String {
        match self.target_dpid {
            Some(t) => format!("ftp_dpm_{}_{t}_{}", self.dpid, self.timestamp),
            None => format!("ftp_dpm_{}_{}", self.dpid, self.timestamp),
        }
    }

    pub fn render(&self) -> String {
        let mut s = format!("{}.{}", self.stem(), self.mode.name());
        if let Some(n) = self.split {
            s.push_str(&format!(".{n}"));
        }
        if self.gzip {
            s.push_str(".gz");
        }
        if self.encrypted {
            s.push_str(".pgp");
        }
        s
    }

    pub fn parse(name: &str) -> Result<FileName, FileNameError> {
        let bad = |why: &str| FileNameError::Pattern(why.to_owned());
        let rest = name
            .strip_prefix("ftp_dpm_")
            .ok_or_else(|| bad("it must start with `ftp_dpm_`"))?;
        let (rest, encrypted) = match rest
            .strip_suffix(".pgp")
            .or_else(|| rest.strip_suffix(".gpg"))
        {
            Some(r) => (r, true),
            None => (rest, false),
        };
        let (rest, gzip) = match rest.strip_suffix(".gz") {
            Some(r) => (r, true),
            None => (rest, false),
        };
        if gzip && encrypted {
            return Err(FileNameError::DoubleCompression(
                name[name.len() - 7..].to_owned(),
            ));
        }
        let (ids, kind, split) = split_dots(rest);
        let mode = match kind {
            Some("sync") => Mode::Sync,
            Some("overwrite") => Mode::Overwrite,
            Some(other) => {
                return Err(bad(&format!(
                    "`.{other}` where `.sync` or `.overwrite` belongs"
                )))
            }
            None => return Err(bad("no `.sync` or `.overwrite`")),
        };
        let split = split.map_err(|why| bad(&why))?;
        let parts: Vec<&str> = ids.split('_').collect();
        if parts.iter().any(|p| !is_digits(p)) || !(2..=3).contains(&parts.len()) {
            return Err(bad(&format!(
                "`{ids}` is not <DPID>[_<TARGET_DPID>]_<TIMESTAMP> in digits"
            )));
        }
        let ts = parts[parts.len() - 1];
        if ts.len() != 10 {
            return Err(FileNameError::Timestamp(ts.to_owned()));
        }
        Ok(FileName {
            dpid: number(parts[0]),
            target_dpid: (parts.len() == 3).then(|| number(parts[1])),
            timestamp: number(ts),
            mode,
            split,
            gzip,
            encrypted,
        })
    }
}

/// `<ids>.<kind>[.<split>]`, the name between its prefix and its compression suffix, in
/// pieces: the caller checks the kind first; the split is the number, or why it is not one
/// (or why there is a piece too many).
pub(crate) fn split_dots(rest: &str) -> (&str, Option<&str>, Result<Option<u32>, String>) {
    let mut dots = rest.split('.');
    let ids = dots.next().unwrap_or_default();
    let kind = dots.next();
    let split = match dots.next() {
        None => Ok(None),
        Some(n) if is_digits(n) => Ok(Some(u32::try_from(number(n)).unwrap_or(u32::MAX))),
        Some(other) => Err(format!("`.{other}` is not a split number")),
    };
    let split = match dots.next() {
        Some(extra) if split.is_ok() => Err(format!("unexpected `.{extra}`")),
        _ => split,
    };
    (ids, kind, split)
}

/// A digit string as a number. DPIDs and split numbers are integers with no stated bound
/// (SPEC: File names): any digit string is accepted, and one past `u64::MAX` is kept as
/// `u64::MAX` (it names no global data source, which is all the checks ask of it).
pub(crate) fn number(digits: &str) -> u64 {
    digits.bytes().fold(0u64, |n, b| {
        n.saturating_mul(10).saturating_add(u64::from(b - b'0'))
    })
}

pub(crate) fn is_digits(s: &str) -> bool {
    !s.is_empty() && s.bytes().all(|b| b.is_ascii_digit())
}

/// The S3 folder for a delivery: `date=YYYY-MM-DD`, the UTC day of `timestamp`.
pub fn date_folder(timestamp: u64) -> String {
    let (y, m, d) = civil_from_days((timestamp / 86_400) as i64);
    format!("date={y:04}-{m:02}-{d:02}")
}

/// Whether `folder` is `date=YYYY-MM-DD` with a real calendar date.
pub fn is_date_folder(folder: &str) -> bool {
    let Some(date) = folder.strip_prefix("date=") else {
        return false;
    };
    let parts: Vec<&str> = date.split('-').collect();
    let [y, m, d] = parts.as_slice() else {
        return false;
    };
    let digits = |s: &str, n: usize| s.len() == n && s.bytes().all(|b| b.is_ascii_digit());
    if !(digits(y, 4) && digits(m, 2) && digits(d, 2)) {
        return false;
    }
    let (Ok(y), Ok(m), Ok(d)) = (y.parse::<u32>(), m.parse::<u32>(), d.parse::<u32>()) else {
        return false;
    };
    // The proleptic Gregorian calendar has no year 0.
    if y == 0 {
        return false;
    }
    let leap = (y % 4 == 0 && y % 100 != 0) || y % 400 == 0;
    let days = match m {
        1 | 3 | 5 | 7 | 8 | 10 | 12 => 31,
        4 | 6 | 9 | 11 => 30,
        2 if leap => 29,
        2 => 28,
        _ => return false,
    };
    (1..=days).contains(&d)
}

/// Days since 1970-01-01 to a proleptic Gregorian (year, month, day); Howard Hinnant's
/// algorithm, exact for every date we can meet.
fn civil_from_days(z: i64) -> (i64, u32, u32) {
    let z = z + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z.rem_euclid(146_097);
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = (doy - (153 * mp + 2) / 5 + 1) as u32;
    let m = if mp < 10 { mp + 3 } else { mp - 9 } as u32;
    let y = yoe + era * 400 + i64::from(m <= 2);
    (y, m, d)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn name(dpid: u64, target: Option<u64>, split: Option<u32>, gzip: bool) -> FileName {
        FileName {
            dpid,
            target_dpid: target,
            timestamp: 1_366_545_717,
            mode: Mode::Sync,
            split,
            gzip,
            encrypted: false,
        }
    }

    #[test]
    fn renders_spec_examples() {
        assert_eq!(
            name(478, None, Some(1), true).render(),
            "ftp_dpm_478_1366545717.sync.1.gz"
        );
        assert_eq!(
            name(478, None, Some(2), true).render(),
            "ftp_dpm_478_1366545717.sync.2.gz"
        );
        assert_eq!(
            name(33, Some(21), None, false).render(),
            "ftp_dpm_33_21_1366545717.sync"
        );
        let mut o = name(21, None, None, true);
        o.mode = Mode::Overwrite;
        assert_eq!(o.render(), "ftp_dpm_21_1366545717.overwrite.gz");
    }

    #[test]
    fn parse_round_trips() {
        for n in [
            name(478, None, Some(1), true),
            name(20914, Some(21), None, false),
            name(1, Some(2), Some(12), false),
        ] {
            assert_eq!(FileName::parse(&n.render()), Ok(n));
        }
    }

    #[test]
    fn parse_rejects_bad_names() {
        for bad in [
            "dpm_1_1366545717.sync",
            "ftp_dpm_1_1366545717.zip",
            "ftp_dpm_1_1366545717",
            "ftp_dpm_1_1366545717.sync.x",
            "ftp_dpm_1_2_3_1366545717.sync",
            "ftp_dpm_a_1366545717.sync",
            "ftp_dpm_1_1366545717.sync.1.2",
        ] {
            assert!(
                matches!(FileName::parse(bad), Err(FileNameError::Pattern(_))),
                "{bad}"
            );
        }
        assert_eq!(
            FileName::parse("ftp_dpm_1_136654571.sync"),
            Err(FileNameError::Timestamp("136654571".into()))
        );
    }

    #[test]
    fn date_folder_is_the_utc_day() {
        assert_eq!(date_folder(0), "date=1970-01-01");
        assert_eq!(date_folder(1_366_545_717), "date=2013-04-21");
        assert_eq!(date_folder(1_700_000_000), "date=2023-11-14");
        assert_eq!(date_folder(951_782_400), "date=2000-02-29");
        assert_eq!(date_folder(1_709_164_799), "date=2024-02-28");
    }

    #[test]
    fn date_folders_are_real_dates() {
        assert!(is_date_folder("date=2024-02-29"));
        assert!(is_date_folder(&date_folder(1_700_000_000)));
        assert!(!is_date_folder("date=2023-02-29"));
        assert!(!is_date_folder("date=2024-13-01"));
        assert!(!is_date_folder("date=24-01-01"));
        assert!(!is_date_folder("date=+024-01-01"));
        assert!(!is_date_folder("2024-01-01"));
        assert!(!is_date_folder("date=0000-01-01"));
        assert!(is_date_folder("date=0001-01-01"));
    }

    #[test]
    fn encrypted_names_and_large_numbers_are_names() {
        let pgp = FileName::parse("ftp_dpm_100_1234567890.sync.pgp").unwrap();
        assert!(pgp.encrypted && !pgp.gzip);
        assert_eq!(pgp.render(), "ftp_dpm_100_1234567890.sync.pgp");
        let gpg = FileName::parse("ftp_dpm_100_1234567890.overwrite.2.gpg").unwrap();
        assert!(gpg.encrypted);
        assert_eq!(gpg.split, Some(2));
        assert_eq!(
            FileName::parse("ftp_dpm_100_1234567890.sync.gz.pgp"),
            Err(FileNameError::DoubleCompression(".gz.pgp".into()))
        );
        let big = FileName::parse(
            "ftp_dpm_99999999999999999999999_4294967296_1234567890.sync.99999999999",
        )
        .unwrap();
        assert_eq!(big.dpid, u64::MAX);
        assert_eq!(big.target_dpid, Some(4_294_967_296));
        assert_eq!(big.split, Some(u32::MAX));
    }
}
