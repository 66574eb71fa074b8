//! Lines: `<user ID><TAB><trait>,<trait>,...` (SPEC: File contents).

use super::traits::{parse_scanned, Element, ParsedTrait, Scan, Trait, TraitError};
use std::fmt;

/// Why a user's traits could not be laid out as lines AAM keeps.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum WrapError {
    /// One trait is so long that even alone on a line it exceeds the line limit.
    TraitTooLong { bytes: usize, max: usize },
    /// The user needs more lines than AAM keeps for one ID in one file.
    TooManyLines { needed: usize, max: usize },
}

impl fmt::Display for WrapError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            WrapError::TraitTooLong { bytes, max } => write!(
                f,
                "a line holding just one of this user's traits would be {bytes} bytes (limit {max})"
            ),
            WrapError::TooManyLines { needed, max } => write!(
                f,
                "user's traits need {needed} lines; AAM keeps only the first {max} lines of a user per file"
            ),
        }
    }
}

/// A trait as [`wrap_user`] takes it: a [`Trait`], or its text rendered once beforehand (the
/// writer renders each distinct trait once, not once per user).
pub trait RenderTrait {
    fn render_into(&self, out: &mut Vec<u8>);
}

impl RenderTrait for &Trait {
    fn render_into(&self, out: &mut Vec<u8>) {
        Trait::render_into(self, out);
    }
}

/// Text from [`Trait::render`].
impl RenderTrait for &[u8] {
    fn render_into(&self, out: &mut Vec<u8>) {
        out.extend_from_slice(self);
    }
}

/// Appends one user's lines to `out`: as many traits per line as fit in `max_line_bytes`
/// (counting the `\n`), at most `max_lines` lines. On error `out` is left as it was.
/// Returns the number of lines written.
pub fn wrap_user<T: RenderTrait>(
    user_id: &str,
    traits: impl IntoIterator<Item = T>,
    max_line_bytes: usize,
    max_lines: usize,
    out: &mut Vec<u8>,
) -> Result<usize, WrapError> {
    let start = out.len();
    let mut lines = 0usize;
    let mut line_start = out.len();
    let mut on_line = 0usize;
    let begin_line = |out: &mut Vec<u8>| {
        out.extend_from_slice(user_id.as_bytes());
        out.push(b'\t');
    };
    for t in traits {
        if on_line == 0 {
            line_start = out.len();
            begin_line(out);
        }
        let before = out.len();
        if on_line > 0 {
            out.push(b',');
        }
        t.render_into(out);
        if out.len() - line_start + 1 > max_line_bytes {
            if on_line == 0 {
                let bytes = out.len() - line_start + 1;
                out.truncate(start);
                return Err(WrapError::TraitTooLong {
                    bytes,
                    max: max_line_bytes,
                });
            }
            // Close the full line and put this trait first on a fresh one.
            out.truncate(before);
            out.push(b'\n');
            lines += 1;
            line_start = out.len();
            begin_line(out);
            t.render_into(out);
            if out.len() - line_start + 1 > max_line_bytes {
                let bytes = out.len() - line_start + 1;
                out.truncate(start);
                return Err(WrapError::TraitTooLong {
                    bytes,
                    max: max_line_bytes,
                });
            }
            on_line = 0;
        }
        on_line += 1;
    }
    if on_line > 0 {
        out.push(b'\n');
        lines += 1;
    }
    if lines > max_lines {
        out.truncate(start);
        return Err(WrapError::TooManyLines {
            needed: lines,
            max: max_lines,
        });
    }
    Ok(lines)
}

/// A line's structural problem (its traits are checked one by one after this).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum LineError {
    /// No TAB between user ID and traits.
    NoTab,
    /// More than one TAB: TAB appears nowhere but after the user ID.
    ExtraTab,
    EmptyUserId,
    /// A user ID with nothing after the TAB.
    NoTraits,
    /// Trailing space or TAB: AAM does not process such lines.
    TrailingWhitespace,
}

impl fmt::Display for LineError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            LineError::NoTab => "line has no TAB between user ID and traits",
            LineError::ExtraTab => "line has more than one TAB",
            LineError::EmptyUserId => "line has an empty user ID",
            LineError::NoTraits => "line has a user ID but no traits",
            LineError::TrailingWhitespace => {
                "line ends in a space or TAB, which AAM does not process"
            }
        })
    }
}

/// A line split into its user ID and its trait list; the elements are parsed on demand.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ParsedLine<'a> {
    pub user_id: &'a str,
    /// The trait list, as written.
    pub list: &'a str,
}

impl<'a> ParsedLine<'a> {
    /// The elements of the trait list, split at commas outside double quotes
    /// (`city="a,b"` is one element), each with its parse; one pass over the bytes finds
    /// both the commas and what the parse needs.
    pub fn elements(&self) -> impl Iterator<Item = (&'a str, Result<Element<'a>, TraitError>)> {
        let s = self.list;
        let bytes = s.as_bytes();
        let mut start = 0;
        let mut done = false;
        std::iter::from_fn(move || {
            if done {
                return None;
            }
            let mut scan = Scan::default();
            let mut i = start;
            while i < bytes.len() {
                let b = bytes[i];
                if b == b',' && scan.quotes.is_multiple_of(2) {
                    break;
                }
                scan.add(i - start, b);
                i += 1;
            }
            let element = &s[start..i];
            done = i >= bytes.len();
            start = i + 1;
            Some((element, parse_scanned(element, scan)))
        })
    }

    /// Each element, parsed on its own.
    pub fn traits(&self) -> impl Iterator<Item = Result<ParsedTrait, TraitError>> + 'a {
        self.elements().map(|(_, e)| {
            e.map(|e| ParsedTrait {
                value: e.value.to_trait(),
                spaced: e.spaced,
            })
        })
    }
}

/// Parses a line without its line terminator.
pub fn parse_line(line: &str) -> Result<ParsedLine<'_>, LineError> {
    let (user_id, rest) = line.split_once('\t').ok_or(LineError::NoTab)?;
    if rest.contains('\t') {
        return Err(LineError::ExtraTab);
    }
    if user_id.is_empty() {
        return Err(LineError::EmptyUserId);
    }
    if rest.is_empty() {
        return Err(LineError::NoTraits);
    }
    if line.ends_with(' ') {
        return Err(LineError::TrailingWhitespace);
    }
    Ok(ParsedLine {
        user_id,
        list: rest,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::inbound::{parse_element, Removal, MAX_LINES_PER_USER, MAX_LINE_BYTES};
    use crate::testing::Gen;

    fn traits_of(line: &str) -> Vec<Trait> {
        let parsed = parse_line(line).unwrap();
        parsed.traits().map(|t| t.unwrap().value).collect()
    }

    #[test]
    fn elements_parse_as_parse_element_does() {
        let elements = [
            "d_sid=24",
            " d_sid = 24 ",
            "24:0",
            "24:-1",
            "30608",
            "ic=52",
            "product=tablet",
            "\"product\"=\"tab=let\"",
            " city = \"New York\"",
            "=x",
            "a=\"b",
            "\"a\"b=c",
            "12a:0",
            "d_sid=12a",
            "k=\"v\rw\"",
            "abc",
            "",
            "  ",
        ];
        for e in elements {
            let line = format!("u\t{e},d_sid=1");
            let parsed = parse_line(&line).unwrap();
            let got: Vec<_> = parsed.elements().collect();
            let want = [(e, parse_element(e)), ("d_sid=1", parse_element("d_sid=1"))];
            // An odd quote swallows the comma: then the rest is one element.
            if e.matches('"').count() % 2 == 1 {
                let whole = &line[2..];
                assert_eq!(got, [(whole, parse_element(whole))], "{e:?}");
            } else {
                assert_eq!(got, want, "{e:?}");
            }
        }
    }

    #[test]
    fn spec_documented_examples_parse() {
        let aam = "59767559181262060060278870901087098252";
        assert_eq!(
            traits_of(&format!(
                "{aam}\td_sid=24,d_sid=26,d_sid=27,d_unsid=28,d_unsid=29"
            )),
            vec![
                Trait::Sid(24),
                Trait::Sid(26),
                Trait::Sid(27),
                Trait::Unsid(28),
                Trait::Unsid(29)
            ]
        );
        assert_eq!(
            traits_of(&format!("{aam}\t28:0,29:0")),
            vec![
                Trait::Remove(28, Removal::Zero),
                Trait::Remove(29, Removal::Zero)
            ]
        );
        let dp = "DBwFoc3dhfMNCFBh2M4F9ZkJEXMNnRDh2PXvnI1";
        assert_eq!(
            traits_of(&format!("{dp}\t30608,50354,50338,50352,30626")),
            [30608, 50354, 50338, 50352, 30626].map(Trait::Ic).to_vec()
        );
        assert_eq!(
            traits_of(&format!("{dp}\tic=52,ic=55")),
            vec![Trait::IcPrefixed(52), Trait::IcPrefixed(55)]
        );
        let tablet_phone = vec![
            Trait::signal("product", "tablet").unwrap(),
            Trait::signal("product", "phone").unwrap(),
        ];
        assert_eq!(
            traits_of("e4fe9bde-caa0-47b6-908d-ffba3fa184f2\tproduct = tablet, product = phone"),
            tablet_phone
        );
        assert_eq!(
            traits_of("6D92078A-8246-4BA4-AE5B-76104861E7DC\t\"product\" = \"tablet\", \"product\" = \"phone\""),
            tablet_phone
        );
        assert_eq!(
            traits_of(&format!(
                "{aam}\t\"gender\"=\"female\",\"luxury_shopper\"=\"yes\""
            )),
            vec![
                Trait::signal("gender", "female").unwrap(),
                Trait::signal("luxury_shopper", "yes").unwrap()
            ]
        );
    }

    #[test]
    fn structural_errors() {
        assert_eq!(parse_line("abc"), Err(LineError::NoTab));
        assert_eq!(parse_line("a\tb\tc"), Err(LineError::ExtraTab));
        assert_eq!(parse_line("\td_sid=1"), Err(LineError::EmptyUserId));
        assert_eq!(parse_line("a\t"), Err(LineError::NoTraits));
        assert_eq!(
            parse_line("a\td_sid=1 "),
            Err(LineError::TrailingWhitespace)
        );
        let p = parse_line("a\td_sid=1,,d_sid=2").unwrap();
        assert_eq!(p.traits().nth(1), Some(Err(TraitError::Empty)));
        let p = parse_line("a\tcity=\"x,y\",d_sid=2").unwrap();
        let texts = |p: &ParsedLine| p.elements().map(|(e, _)| e.to_owned()).collect::<Vec<_>>();
        assert_eq!(texts(&p), ["city=\"x,y\"", "d_sid=2"]);
        let p = parse_line("a\td_sid=1,").unwrap();
        assert_eq!(texts(&p), ["d_sid=1", ""]);
    }

    fn wrap(
        uid: &str,
        traits: &[Trait],
        max_bytes: usize,
        max_lines: usize,
    ) -> Result<String, WrapError> {
        let mut out = b"prefix\n".to_vec();
        let res = wrap_user(uid, traits, max_bytes, max_lines, &mut out);
        let text = String::from_utf8(out).unwrap();
        match res {
            Ok(n) => {
                let body = text.strip_prefix("prefix\n").unwrap().to_owned();
                assert_eq!(body.lines().count(), n);
                Ok(body)
            }
            Err(e) => {
                assert_eq!(text, "prefix\n", "output untouched on error");
                Err(e)
            }
        }
    }

    #[test]
    fn wraps_exactly_at_the_limit() {
        let traits = [Trait::Sid(1), Trait::Sid(2), Trait::Sid(3)];
        // "u\td_sid=1,d_sid=2\n" is 18 bytes.
        assert_eq!(
            wrap("u", &traits, 18, 10).unwrap(),
            "u\td_sid=1,d_sid=2\nu\td_sid=3\n"
        );
        assert_eq!(
            wrap("u", &traits, 17, 10).unwrap(),
            "u\td_sid=1\nu\td_sid=2\nu\td_sid=3\n"
        );
        assert_eq!(
            wrap("u", &traits, 26, 10).unwrap(),
            "u\td_sid=1,d_sid=2,d_sid=3\n"
        );
        assert_eq!(
            wrap("u", &traits, 9, 10),
            Err(WrapError::TraitTooLong { bytes: 10, max: 9 })
        );
    }

    #[test]
    fn too_many_lines_is_an_error_not_a_truncation() {
        let traits: Vec<Trait> = (0..5).map(Trait::Sid).collect();
        assert_eq!(wrap("u", &traits, 10, 5).unwrap().lines().count(), 5);
        assert_eq!(
            wrap("u", &traits, 10, 4),
            Err(WrapError::TooManyLines { needed: 5, max: 4 })
        );
    }

    #[test]
    fn real_limits_hold_for_a_huge_user() {
        let traits: Vec<Trait> = (1_000_000..1_020_000).map(Trait::Sid).collect();
        let text = wrap("user", &traits, MAX_LINE_BYTES, MAX_LINES_PER_USER).unwrap();
        let lines: Vec<&str> = text.lines().collect();
        assert_eq!(lines.len(), 3);
        assert!(lines.iter().all(|l| l.len() < MAX_LINE_BYTES));
        // Full lines come within one trait of the limit.
        assert!(lines[0].len() + 1 + ",d_sid=1000000".len() > MAX_LINE_BYTES);
        let back: Vec<Trait> = lines.iter().flat_map(|l| traits_of(l)).collect();
        assert_eq!(back, traits);
    }

    /// Random traits and text for the property test.
    impl Gen {
        /// Keys are letters, digits and underscores; values anything but a comma, a quote
        /// or a control character (what `Trait::signal` takes).
        fn text(&mut self, max_len: u64, chars: &[char]) -> String {
            let len = 1 + self.below(max_len);
            (0..len)
                .map(|_| chars[self.below(chars.len() as u64) as usize])
                .collect()
        }

        fn trait_(&mut self) -> Trait {
            let id = if self.below(4) == 0 {
                self.next()
            } else {
                self.below(100_000)
            };
            match self.below(7) {
                0 => Trait::Sid(id),
                1 => Trait::Unsid(id),
                2 => Trait::Remove(id, Removal::Zero),
                3 => Trait::Remove(id, Removal::MinusOne),
                4 => Trait::Ic(id),
                5 => Trait::IcPrefixed(id),
                _ => {
                    const KEY: &[char] = &['a', 'Z', '0', '9', '_'];
                    const VALUE: &[char] = &[
                        'a', 'Z', '0', '9', ' ', ';', '=', '-', '_', '.', ':', '|', '\'', 'é', '€',
                        '日',
                    ];
                    Trait::signal(&self.text(12, KEY), &self.text(20, VALUE)).unwrap()
                }
            }
        }
    }

    #[test]
    fn property_any_rendered_user_parses_back_to_the_same_traits() {
        let mut g = Gen(0x9e37_79b9_7f4a_7c15);
        for case in 0..2_000 {
            let uid: String = format!("user-{}", g.below(1_000_000));
            let traits: Vec<Trait> = (0..1 + g.below(40)).map(|_| g.trait_()).collect();
            // Small line limits force wrapping in most cases.
            let max_bytes = 60 + g.below(400) as usize;
            let mut out = Vec::new();
            let Ok(n) = wrap_user(&uid, &traits, max_bytes, 1_000, &mut out) else {
                continue; // one trait longer than the limit: refused, checked elsewhere
            };
            let text = String::from_utf8(out).unwrap();
            let mut back = Vec::new();
            for line in text.split_terminator('\n') {
                assert!(line.len() < max_bytes, "case {case}: line over the limit");
                let parsed =
                    parse_line(line).unwrap_or_else(|e| panic!("case {case}: {e}: {line}"));
                assert_eq!(parsed.user_id, uid);
                for t in parsed.traits() {
                    let t = t.unwrap_or_else(|e| panic!("case {case}: {e}: {line}"));
                    assert!(!t.spaced, "case {case}: the writer is compact");
                    back.push(t.value);
                }
            }
            assert_eq!(text.lines().count(), n);
            assert_eq!(back, traits, "case {case}");
        }
    }
}
