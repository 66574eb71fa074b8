//! Trait forms (SPEC: Trait forms): rendering for the writer, parsing for the validator.

use std::fmt;

/// The kinds of trait counted in receipts.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TraitKind {
    /// `d_sid=N`
    Sid,
    /// `d_unsid=N`
    Unsid,
    /// `N` and `ic=N`
    Ic,
    /// `key=value`
    KeyValue,
    /// `N:0` and `N:-1`
    Removal,
}

impl TraitKind {
    pub const ALL: [TraitKind; 5] = [
        TraitKind::Sid,
        TraitKind::Unsid,
        TraitKind::Ic,
        TraitKind::KeyValue,
        TraitKind::Removal,
    ];

    /// The name used in reports.
    pub fn name(self) -> &'static str {
        match self {
            TraitKind::Sid => "d_sid",
            TraitKind::Unsid => "d_unsid",
            TraitKind::Ic => "ic",
            TraitKind::KeyValue => "key_value",
            TraitKind::Removal => "removal",
        }
    }
}

/// Traits counted by kind, without allocating on the hot path.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct KindCounts([u64; 5]);

impl KindCounts {
    pub fn add(&mut self, kind: TraitKind, n: u64) {
        self.0[kind as usize] += n;
    }

    pub fn get(&self, kind: TraitKind) -> u64 {
        self.0[kind as usize]
    }

    /// The kinds with a count, by name: the receipts' by-kind table.
    pub fn by_name(&self) -> std::collections::BTreeMap<String, u64> {
        TraitKind::ALL
            .into_iter()
            .filter(|&k| self.get(k) > 0)
            .map(|k| (k.name().to_owned(), self.get(k)))
            .collect()
    }
}

/// How a removal of trait N is spelled when it is not `d_unsid=N`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Removal {
    /// `N:0`
    Zero,
    /// `N:-1`
    MinusOne,
}

/// One trait element of a line. The derived order (variant, then fields) is the order in
/// which traits appear on a line: additions first, removals last, each sorted by ID or text.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Trait {
    /// `d_sid=N`: qualify for trait N.
    Sid(u64),
    /// `N`: qualify for the trait whose rule is `ic == "N"`.
    Ic(u64),
    /// `ic=N`: the same, prefixed form.
    IcPrefixed(u64),
    /// `key=value`: a key-value signal; quotes are added on rendering when needed.
    Signal { key: String, value: String },
    /// `d_unsid=N`: remove the user from trait N.
    Unsid(u64),
    /// `N:0` or `N:-1`: also a removal from trait N.
    Remove(u64, Removal),
}

/// Why a trait element is not one of SPEC's forms, or cannot be rendered as one.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum TraitError {
    Empty,
    /// A trait ID that is not digits only (`d_sid=12a`).
    NotDigits(String),
    /// A key-value signal with an empty key (or only `-`, which AAM strips).
    EmptyKey,
    /// A control character (TAB, CR, LF, NUL...) inside a key or value.
    ControlChar,
    /// A comma inside a value: AAM splits the trait list at commas, and whether it honours
    /// quotes around one is not documented, so the writer never writes one.
    Comma,
    /// A key that is a trait prefix (`d_sid`, `d_unsid`, `ic`, in any case): AAM would read
    /// the signal as that prefix.
    ReservedKey(String),
    /// A key that is not letters, digits and underscores (Adobe: keys are alphanumeric).
    KeyChars(String),
    /// A double quote inside a key or value: the format has no escape for it.
    Quote,
    /// Quotes that do not pair up, or text after a closing quote.
    BadQuoting(String),
    /// Not any of SPEC's forms.
    UnknownForm(String),
}

impl fmt::Display for TraitError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            TraitError::Empty => write!(f, "empty trait element"),
            TraitError::NotDigits(s) => write!(f, "trait ID `{s}` is not digits only"),
            TraitError::EmptyKey => write!(f, "key-value signal has an empty key"),
            TraitError::ControlChar => {
                write!(
                    f,
                    "key-value signal contains a control character (TAB, CR, LF, NUL...)"
                )
            }
            TraitError::Comma => write!(
                f,
                "value contains a comma, which AAM may read as the end of the trait"
            ),
            TraitError::ReservedKey(k) => write!(
                f,
                "key `{k}` is a trait prefix; AAM would read `{k}=...` as a trait ID, not a signal"
            ),
            TraitError::KeyChars(k) => {
                write!(f, "key `{k}` is not letters, digits and underscores only")
            }
            TraitError::Quote => write!(
                f,
                "key-value signal contains a double quote, which the format cannot escape"
            ),
            TraitError::BadQuoting(s) => write!(f, "unbalanced or misplaced quotes in `{s}`"),
            TraitError::UnknownForm(s) => write!(f, "`{s}` is not a trait form AAM accepts"),
        }
    }
}

impl Trait {
    /// A key-value signal, checked so that it renders to something AAM parses back.
    pub fn signal(key: &str, value: &str) -> Result<Trait, TraitError> {
        Trait::check_signal(key, value)?;
        Ok(Trait::Signal {
            key: key.to_owned(),
            value: value.to_owned(),
        })
    }

    /// Whether `key=value` can be written as a signal AAM parses back ([`Trait::signal`]
    /// without building the trait).
    pub fn check_signal(key: &str, value: &str) -> Result<(), TraitError> {
        check_key(key)?;
        Trait::check_value(value)
    }

    /// The value half of [`Trait::check_signal`], for a key checked once beforehand (the
    /// mapping's keys are checked with the mapping, not once per row).
    pub fn check_value(value: &str) -> Result<(), TraitError> {
        check_signal_text(value)?;
        if value.contains(',') {
            return Err(TraitError::Comma);
        }
        Ok(())
    }

    /// How this trait orders against the signal `key=value` in a line (the order of
    /// [`Trait`]'s `Ord`), without building the signal.
    pub fn cmp_signal(&self, key: &str, value: &str) -> std::cmp::Ordering {
        use std::cmp::Ordering;
        match self {
            Trait::Sid(_) | Trait::Ic(_) | Trait::IcPrefixed(_) => Ordering::Less,
            Trait::Signal { key: k, value: v } => (k.as_str(), v.as_str()).cmp(&(key, value)),
            Trait::Unsid(_) | Trait::Remove(..) => Ordering::Greater,
        }
    }

    /// The trait ID this element adds (`Some((id, true))`) or removes (`Some((id, false))`);
    /// `None` for `ic` traits and signals, which are not trait IDs of the data source.
    pub fn target(&self) -> Option<(u64, bool)> {
        match *self {
            Trait::Sid(id) => Some((id, true)),
            Trait::Unsid(id) | Trait::Remove(id, _) => Some((id, false)),
            _ => None,
        }
    }

    pub fn kind(&self) -> TraitKind {
        self.as_id().map_or(TraitKind::KeyValue, IdTrait::kind)
    }

    /// The trait as a number form; `None` for a signal.
    fn as_id(&self) -> Option<IdTrait> {
        Some(match *self {
            Trait::Sid(id) => IdTrait::Sid(id),
            Trait::Ic(id) => IdTrait::Ic(id),
            Trait::IcPrefixed(id) => IdTrait::IcPrefixed(id),
            Trait::Unsid(id) => IdTrait::Unsid(id),
            Trait::Remove(id, r) => IdTrait::Remove(id, r),
            Trait::Signal { .. } => return None,
        })
    }

    /// Appends the compact rendering (SPEC: "A writer should emit the compact form").
    pub fn render_into(&self, out: &mut Vec<u8>) {
        use std::io::Write;
        // Writing to a Vec cannot fail.
        let _ = match self {
            Trait::Sid(id) => write!(out, "d_sid={id}"),
            Trait::Unsid(id) => write!(out, "d_unsid={id}"),
            Trait::Ic(id) => write!(out, "{id}"),
            Trait::IcPrefixed(id) => write!(out, "ic={id}"),
            Trait::Remove(id, Removal::Zero) => write!(out, "{id}:0"),
            Trait::Remove(id, Removal::MinusOne) => write!(out, "{id}:-1"),
            Trait::Signal { key, value } => {
                render_signal(key, value, out);
                Ok(())
            }
        };
    }

    pub fn render(&self) -> String {
        let mut out = Vec::new();
        self.render_into(&mut out);
        String::from_utf8(out).expect("traits render from UTF-8 text")
    }
}

impl fmt::Display for Trait {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.render())
    }
}

/// Appends the compact rendering of the signal `key=value` (checked by
/// [`Trait::check_signal`]).
pub fn render_signal(key: &str, value: &str, out: &mut Vec<u8>) {
    // Keys are checked to be letters, digits and underscores: never quoted.
    out.extend_from_slice(key.as_bytes());
    out.push(b'=');
    push_signal_text(out, value);
}

/// Whether `key` is one of the trait prefixes, in any case (SPEC: Trait forms).
pub fn is_reserved_key(key: &str) -> bool {
    ["d_sid", "d_unsid", "ic"]
        .iter()
        .any(|r| key.eq_ignore_ascii_case(r))
}

/// A key the writer may use: not empty, letters, digits and underscores, not a trait prefix.
pub fn check_key(key: &str) -> Result<(), TraitError> {
    if key.is_empty() {
        return Err(TraitError::EmptyKey);
    }
    if !key.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'_') {
        return Err(TraitError::KeyChars(key.to_owned()));
    }
    if is_reserved_key(key) {
        return Err(TraitError::ReservedKey(key.to_owned()));
    }
    Ok(())
}

/// Control characters as the validator sees them, one byte at a time: C0 and DEL. (The
/// writer also refuses C1 controls, which take two bytes in UTF-8.)
#[inline]
pub const fn is_control_byte(b: u8) -> bool {
    b < 0x20 || b == 0x7f
}

fn check_signal_text(s: &str) -> Result<(), TraitError> {
    if s.chars().any(char::is_control) {
        return Err(TraitError::ControlChar);
    }
    if s.contains('"') {
        return Err(TraitError::Quote);
    }
    Ok(())
}

/// A value is written bare only when it is plainly safe; anything else (spaces, `=`, other
/// punctuation, non-ASCII) is quoted so AAM reads it as one value. (Commas never get here.)
fn push_signal_text(out: &mut Vec<u8>, s: &str) {
    let bare = !s.is_empty()
        && s.bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'_' | b'-' | b'.'));
    if bare {
        out.extend_from_slice(s.as_bytes());
    } else {
        out.push(b'"');
        out.extend_from_slice(s.as_bytes());
        out.push(b'"');
    }
}

/// A trait element as found in a file, with what the validator needs to know of its style.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ParsedTrait {
    pub value: Trait,
    /// Spaces around the element or around `=` (Adobe's own examples do this; AAM accepts it).
    pub spaced: bool,
}

/// A trait element parsed without copying its text: what the validator reads millions of.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Element<'a> {
    pub value: ElementValue<'a>,
    pub spaced: bool,
    /// A trait prefix or its ID in quotes (`d_sid="24"`, `"ic"=5`): Adobe shows quotes
    /// around key-value pairs only, so whether AAM accepts this is unknown.
    pub quoted_prefix: bool,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ElementValue<'a> {
    /// Any form but a signal (none of them holds text).
    Id(IdTrait),
    /// `key=value`, unquoted.
    Signal { key: &'a str, value: &'a str },
}

/// The trait forms that are a number: [`Trait`] without its text variant, so `Copy`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum IdTrait {
    Sid(u64),
    Ic(u64),
    IcPrefixed(u64),
    Unsid(u64),
    Remove(u64, Removal),
}

impl ElementValue<'_> {
    pub fn to_trait(self) -> Trait {
        match self {
            ElementValue::Id(IdTrait::Sid(id)) => Trait::Sid(id),
            ElementValue::Id(IdTrait::Ic(id)) => Trait::Ic(id),
            ElementValue::Id(IdTrait::IcPrefixed(id)) => Trait::IcPrefixed(id),
            ElementValue::Id(IdTrait::Unsid(id)) => Trait::Unsid(id),
            ElementValue::Id(IdTrait::Remove(id, r)) => Trait::Remove(id, r),
            ElementValue::Signal { key, value } => Trait::Signal {
                key: key.to_owned(),
                value: value.to_owned(),
            },
        }
    }

    pub fn kind(self) -> TraitKind {
        match self {
            ElementValue::Id(t) => t.kind(),
            ElementValue::Signal { .. } => TraitKind::KeyValue,
        }
    }
}

impl IdTrait {
    pub fn kind(self) -> TraitKind {
        match self {
            IdTrait::Sid(_) => TraitKind::Sid,
            IdTrait::Unsid(_) => TraitKind::Unsid,
            IdTrait::Ic(_) | IdTrait::IcPrefixed(_) => TraitKind::Ic,
            IdTrait::Remove(..) => TraitKind::Removal,
        }
    }
}

/// Parses one comma-separated trait element, accepting every form in SPEC's table and the
/// spaced style of Adobe's examples (`product = tablet`).
pub fn parse_trait(element: &str) -> Result<ParsedTrait, TraitError> {
    parse_element(element).map(|e| ParsedTrait {
        value: e.value.to_trait(),
        spaced: e.spaced,
    })
}

/// [`parse_trait`] without copying: the one parser of trait syntax.
pub fn parse_element(element: &str) -> Result<Element<'_>, TraitError> {
    parse_scanned(element, Scan::of(element))
}

/// What one pass over an element finds: the first `=` outside quotes (its byte offset in
/// the element), the number of double quotes, and whether a control character occurs. The
/// validator's line splitter finds the same while looking for commas, so elements are read
/// once.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Scan {
    pub eq: Option<usize>,
    pub quotes: u32,
    pub control: bool,
}

impl Scan {
    pub fn of(element: &str) -> Scan {
        let mut scan = Scan::default();
        for (i, &b) in element.as_bytes().iter().enumerate() {
            scan.add(i, b);
        }
        scan
    }

    /// Takes in byte `b` at offset `i` of the element.
    #[inline]
    pub fn add(&mut self, i: usize, b: u8) {
        match b {
            b'"' => self.quotes += 1,
            b'=' if self.eq.is_none() && self.quotes.is_multiple_of(2) => self.eq = Some(i),
            _ if is_control_byte(b) => self.control = true,
            _ => {}
        }
    }
}

/// [`parse_element`] given the element's [`Scan`].
pub fn parse_scanned<'a>(element: &'a str, scan: Scan) -> Result<Element<'a>, TraitError> {
    let trimmed = element.trim_start_matches(' ');
    let lead = element.len() - trimmed.len();
    let trimmed = trimmed.trim_end_matches(' ');
    let mut spaced = trimmed.len() != element.len();
    if trimmed.is_empty() {
        return Err(TraitError::Empty);
    }
    if scan.control {
        return Err(TraitError::ControlChar);
    }
    // Spaces are not `=`: the offset moves by the leading spaces only.
    let eq = scan.eq.map(|i| i - lead);
    let quotes = scan.quotes;
    // Most elements have no quotes: nothing to strip.
    let unquoted = |s: &'a str| if quotes == 0 { Ok(s) } else { unquote(s) };
    let id = |t| Ok(ElementValue::Id(t));
    let mut quoted_prefix = false;
    let value = if let Some(i) = eq {
        let (key_raw, rest) = (&trimmed[..i], &trimmed[i + 1..]);
        let key = key_raw.trim_end_matches(' ');
        let rest_trimmed = rest.trim_start_matches(' ');
        spaced |= key.len() != key_raw.len() || rest_trimmed.len() != rest.len();
        let key_unquoted = unquoted(key)?;
        let prefix_id = |raw: &'a str| {
            let unq = unquoted(raw)?;
            Ok::<_, TraitError>((parse_id(unq)?, unq.len() != raw.len()))
        };
        let id_form = match key_unquoted {
            "d_sid" => Some(prefix_id(rest_trimmed)?).map(|(n, q)| (IdTrait::Sid(n), q)),
            "d_unsid" => Some(prefix_id(rest_trimmed)?).map(|(n, q)| (IdTrait::Unsid(n), q)),
            "ic" => Some(prefix_id(rest_trimmed)?).map(|(n, q)| (IdTrait::IcPrefixed(n), q)),
            _ => None,
        };
        match id_form {
            Some((t, value_quoted)) => {
                quoted_prefix = value_quoted || key_unquoted.len() != key.len();
                id(t)
            }
            None => {
                let value = unquoted(rest_trimmed)?;
                // AAM strips a leading `-` from a key: `-=v` has no key left.
                if key_unquoted.trim_start_matches('-').is_empty() {
                    return Err(TraitError::EmptyKey);
                }
                Ok(ElementValue::Signal {
                    key: key_unquoted,
                    value,
                })
            }
        }
    } else if quotes % 2 == 1 {
        return Err(TraitError::BadQuoting(trimmed.to_owned()));
    } else if let Some(n) = trimmed.strip_suffix(":0") {
        id(IdTrait::Remove(parse_id(n)?, Removal::Zero))
    } else if let Some(n) = trimmed.strip_suffix(":-1") {
        id(IdTrait::Remove(parse_id(n)?, Removal::MinusOne))
    } else if trimmed.bytes().all(|b| b.is_ascii_digit()) {
        id(IdTrait::Ic(parse_id(trimmed)?))
    } else {
        Err(TraitError::UnknownForm(trimmed.to_owned()))
    };
    Ok(Element {
        value: value?,
        spaced,
        quoted_prefix,
    })
}

fn unquote(s: &str) -> Result<&str, TraitError> {
    let quotes = s.bytes().filter(|&b| b == b'"').count();
    match quotes {
        0 => Ok(s),
        2 if s.len() >= 2 && s.starts_with('"') && s.ends_with('"') => Ok(&s[1..s.len() - 1]),
        _ => Err(TraitError::BadQuoting(s.to_owned())),
    }
}

/// Digits only (no sign, unlike `str::parse`), any number of them: trait IDs have no stated
/// range (SPEC: Trait forms), so an ID past `u64::MAX` is still an ID (kept as `u64::MAX`;
/// the validator counts traits, it does not look them up).
fn parse_id(s: &str) -> Result<u64, TraitError> {
    if s.is_empty() || !s.bytes().all(|b| b.is_ascii_digit()) {
        return Err(TraitError::NotDigits(s.to_owned()));
    }
    Ok(s.bytes().fold(0u64, |n, b| {
        n.saturating_mul(10).saturating_add(u64::from(b - b'0'))
    }))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(s: &str) -> Trait {
        parse_trait(s).unwrap().value
    }

    #[test]
    fn every_form_in_the_spec_table_parses() {
        assert_eq!(parse("d_sid=24"), Trait::Sid(24));
        assert_eq!(parse("d_unsid=24"), Trait::Unsid(24));
        assert_eq!(parse("24:0"), Trait::Remove(24, Removal::Zero));
        assert_eq!(parse("24:-1"), Trait::Remove(24, Removal::MinusOne));
        assert_eq!(parse("30608"), Trait::Ic(30608));
        assert_eq!(parse("ic=52"), Trait::IcPrefixed(52));
        let tablet = Trait::signal("product", "tablet").unwrap();
        for s in [
            "product=tablet",
            "\"product\"=tablet",
            "product=\"tablet\"",
            "\"product\"=\"tablet\"",
        ] {
            assert_eq!(parse(s), tablet, "{s}");
        }
    }

    #[test]
    fn spaced_style_is_accepted_and_flagged() {
        let p = parse_trait(" product = tablet").unwrap();
        assert_eq!(p.value, Trait::signal("product", "tablet").unwrap());
        assert!(p.spaced);
        assert!(!parse_trait("product=tablet").unwrap().spaced);
        let p = parse_trait(" \"product\" = \"phone\"").unwrap();
        assert_eq!(p.value, Trait::signal("product", "phone").unwrap());
    }

    #[test]
    fn bad_elements_are_named() {
        assert_eq!(
            parse_trait("d_sid=12a"),
            Err(TraitError::NotDigits("12a".into()))
        );
        assert_eq!(parse_trait("d_sid="), Err(TraitError::NotDigits("".into())));
        assert_eq!(parse_trait(""), Err(TraitError::Empty));
        assert_eq!(parse_trait("=x"), Err(TraitError::EmptyKey));
        assert_eq!(
            parse_trait("abc"),
            Err(TraitError::UnknownForm("abc".into()))
        );
        assert!(matches!(
            parse_trait("a=\"b"),
            Err(TraitError::BadQuoting(_))
        ));
        assert!(matches!(
            parse_trait("12a:0"),
            Err(TraitError::NotDigits(_))
        ));
    }

    #[test]
    fn rendering_is_compact_and_quotes_when_needed() {
        assert_eq!(Trait::Sid(24).render(), "d_sid=24");
        assert_eq!(Trait::Unsid(28).render(), "d_unsid=28");
        assert_eq!(Trait::Remove(28, Removal::Zero).render(), "28:0");
        assert_eq!(Trait::Remove(28, Removal::MinusOne).render(), "28:-1");
        assert_eq!(Trait::Ic(30608).render(), "30608");
        assert_eq!(Trait::IcPrefixed(52).render(), "ic=52");
        let s = |k, v| Trait::signal(k, v).unwrap().render();
        assert_eq!(s("product", "tablet"), "product=tablet");
        assert_eq!(s("city", "New York"), "city=\"New York\"");
        assert_eq!(s("eq", "a=b"), "eq=\"a=b\"");
        assert_eq!(s("luxury_shopper", "yes"), "luxury_shopper=yes");
        assert_eq!(s("city", "Zürich"), "city=\"Zürich\"");
    }

    #[test]
    fn signals_that_cannot_be_written_are_refused() {
        assert_eq!(Trait::signal("k", "a\tb"), Err(TraitError::ControlChar));
        assert_eq!(Trait::signal("k", "a\nb"), Err(TraitError::ControlChar));
        assert_eq!(Trait::signal("k", "say \"hi\""), Err(TraitError::Quote));
        assert_eq!(Trait::signal("", "v"), Err(TraitError::EmptyKey));
        for control in ["a\0b", "a\x1bb", "a\x7fb", "a\u{85}b"] {
            assert_eq!(Trait::signal("k", control), Err(TraitError::ControlChar));
        }
        assert_eq!(Trait::signal("note", "a,b"), Err(TraitError::Comma));
        for reserved in ["d_sid", "D_SID", "d_unsid", "ic", "IC", "Ic"] {
            assert_eq!(
                Trait::signal(reserved, "5"),
                Err(TraitError::ReservedKey(reserved.into()))
            );
        }
        for bad in ["Account Type", "-product", "k\"", "ké", "a-b"] {
            assert_eq!(
                Trait::signal(bad, "v"),
                Err(TraitError::KeyChars(bad.into()))
            );
        }
        assert!(Trait::signal("icon", "v").is_ok());
        assert!(Trait::signal("d_sid2", "v").is_ok());
    }

    #[test]
    fn edges_adobe_leaves_open_parse_as_decided() {
        // Trait IDs are digits, of any length.
        let huge = "d_sid=1234567890123456789012345";
        assert_eq!(parse(huge), Trait::Sid(u64::MAX));
        assert_eq!(
            parse("1234567890123456789012345:0").kind(),
            TraitKind::Removal
        );
        // A quoted prefix or ID is read as the trait, and flagged.
        for (text, want) in [
            ("d_sid=\"24\"", Trait::Sid(24)),
            ("\"d_sid\"=24", Trait::Sid(24)),
            ("\"ic\"=5", Trait::IcPrefixed(5)),
            ("\"d_unsid\"=\"7\"", Trait::Unsid(7)),
        ] {
            let e = parse_element(text).unwrap();
            assert_eq!(e.value.to_trait(), want, "{text}");
            assert!(e.quoted_prefix, "{text}");
        }
        assert!(!parse_element("d_sid=24").unwrap().quoted_prefix);
        assert!(!parse_element("\"city\"=\"x\"").unwrap().quoted_prefix);
        // `-=v`: AAM strips the dash and is left with no key.
        assert_eq!(parse_trait("-=v"), Err(TraitError::EmptyKey));
        assert_eq!(parse_trait("\"--\"=v"), Err(TraitError::EmptyKey));
        assert!(parse_trait("-k=v").is_ok());
        // NUL and other control characters, anywhere in an element.
        for text in ["k=a\0b", "k\x01=v", "d_sid=1\x7f"] {
            assert_eq!(parse_trait(text), Err(TraitError::ControlChar), "{text:?}");
        }
    }

    #[test]
    fn a_trait_orders_against_a_signal_as_against_the_built_signal() {
        let traits = [
            Trait::Sid(9),
            Trait::Ic(1),
            Trait::IcPrefixed(1),
            Trait::signal("city", "A").unwrap(),
            Trait::signal("city", "a b").unwrap(),
            Trait::signal("age", "30").unwrap(),
            Trait::Unsid(1),
            Trait::Remove(1, Removal::Zero),
        ];
        for t in &traits {
            for (k, v) in [
                ("city", "A"),
                ("city", "a b"),
                ("city", "B"),
                ("zz", ""),
                ("", ""),
            ] {
                let built = Trait::Signal {
                    key: k.into(),
                    value: v.into(),
                };
                assert_eq!(t.cmp_signal(k, v), t.cmp(&built), "{t:?} vs {k}={v}");
            }
        }
    }

    #[test]
    fn render_then_parse_round_trips() {
        let traits = [
            Trait::Sid(1),
            Trait::Unsid(u64::MAX),
            Trait::Remove(7, Removal::Zero),
            Trait::Remove(7, Removal::MinusOne),
            Trait::Ic(0),
            Trait::IcPrefixed(99),
            Trait::signal("city", "New York").unwrap(),
            Trait::signal("k", "a;b=c d").unwrap(),
            Trait::signal("k", "").unwrap(),
            Trait::signal("icon", "5").unwrap(),
        ];
        for t in traits {
            let parsed = parse(&t.render());
            assert_eq!(parsed, t, "{}", t.render());
        }
    }
}
