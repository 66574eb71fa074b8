//! Sources + mapping -> every user's de-duplicated traits, rendered as lines, plus rejects.
//!
//! Polars reads each source and projects only the columns the mapping uses (conditions and
//! filters are Polars SQL expressions evaluated there). Rows are then turned into traits
//! encoded as integers, grouped per user, and each user's lines are rendered once, in a
//! deterministic order: users by ID (bytewise), traits by form then ID or text.

use crate::error::{Error, Problem, Result};
use crate::inbound::{self, IdType, Trait, MAX_LINES_PER_USER, MAX_LINE_BYTES};
use crate::mapping::{Format, Input, Mapping, RuleKind};
use crate::reject::{mask_pii, Reject};
use crate::report::Receipt;
use crate::source::Source;
use polars::prelude::*;
use std::borrow::Cow;
use std::fmt::Write as _;

/// Hash maps on the hot path use foldhash (hashbrown's default); nothing iterates them unsorted.
type HashMap<K, V> = std::collections::HashMap<K, V, foldhash::fast::RandomState>;
use std::sync::atomic::{AtomicBool, Ordering};

/// What the pipeline produced: the text of every line, grouped by user, ready to be cut
/// into parts.
#[derive(Debug, Default)]
pub struct Conversion {
    pub receipt: Receipt,
    pub rejects: Vec<Reject>,
    /// Every written user's lines, users in output order.
    pub body: Vec<u8>,
    /// Per written user: the end offset of its lines in `body` and how many lines it has.
    pub users: Vec<UserBlock>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct UserBlock {
    pub end: usize,
    pub lines: u32,
}

/// A row-level problem: the row is left out, counted and reported.
struct RowReject {
    code: &'static str,
    message: String,
}

impl RowReject {
    fn new(code: &'static str, message: impl Into<String>) -> RowReject {
        RowReject {
            code,
            message: message.into(),
        }
    }
}

/// Runs the mapping over all sources (one logical export) and renders every user's lines.
/// `cancel` is checked between files and every few thousand rows (Ctrl-C).
pub fn run(mapping: &Mapping, sources: &[Source], cancel: &AtomicBool) -> Result<Conversion> {
    let mut acc = Accumulator::new(mapping);
    for (file_index, source) in sources.iter().enumerate() {
        if cancel.load(Ordering::Relaxed) {
            return Err(Error::Interrupted);
        }
        let df = load(mapping, source)?;
        acc.receipt.files_read += 1;
        acc.add_frame(&df, file_index, source, cancel)?;
    }
    Ok(acc.finish(mapping, sources))
}

const UID: &str = "__aam_uid";

fn value_col(i: usize) -> String {
    format!("__aam_v{i}")
}

fn filter_col(i: usize) -> String {
    format!("__aam_f{i}")
}

/// Reads one source and selects the user ID, each rule's values and each rule's filter.
fn load(mapping: &Mapping, source: &Source) -> Result<DataFrame> {
    let opened = source.open(&mapping.input)?;
    let mut lf = opened.scan(&[])?;
    let names = source.column_names(&mut lf, &mapping.input)?;
    mapping
        .check_columns(&names)
        .map_err(|problems| Error::Columns {
            path: source.path.clone(),
            problems,
        })?;
    if source.format == Format::Csv {
        // Columns the mapping reads are text in CSV (IDs keep leading zeros, bad cells become
        // counted rejects rather than parse failures); other columns keep inferred types for
        // conditions and filters.
        let text: Vec<String> = mapping
            .columns()
            .into_iter()
            .map(|(_, c)| c.to_owned())
            .collect();
        lf = opened.scan(&text)?;
    }
    let mut exprs = vec![column(&mapping.user_id.column, &names)
        .cast(DataType::String)
        .alias(UID)];
    let mut problems = Vec::new();
    for (i, rule) in mapping.rules.iter().enumerate() {
        let value = match &rule.input {
            Input::Column(c) => Some(column(c, &names)),
            Input::Condition(sql) => sql_condition(&lf, sql, &format!("{}.when", rule.path))
                .map_err(|p| problems.push(p))
                .ok(),
        };
        if let Some(v) = value {
            exprs.push(v.alias(value_col(i)));
        }
        if let Some(sql) = &rule.filter {
            match sql_condition(&lf, sql, &format!("{}.where", rule.path)) {
                Ok(f) => exprs.push(f.alias(filter_col(i))),
                Err(p) => problems.push(p),
            }
        }
    }
    if !problems.is_empty() {
        return Err(Error::Columns {
            path: source.path.clone(),
            problems,
        });
    }
    let mut df = lf
        .select(exprs)
        .collect()
        .map_err(|e| source.polars_error(e, &mapping.input))?;
    df.rechunk_mut();
    Ok(df)
}

/// A column by name, or a field inside a struct column for a dotted path (`profile.tier`).
fn column(name: &str, names: &[String]) -> Expr {
    if names.iter().any(|n| n == name) {
        return col(name);
    }
    let mut parts = name.split('.');
    let mut expr = col(parts.next().unwrap_or(name));
    for field in parts {
        expr = expr.struct_().field_by_name(field);
    }
    expr
}

/// Parses a Polars SQL condition and checks it against the source's schema.
fn sql_condition(lf: &LazyFrame, sql: &str, key: &str) -> Result<Expr, Problem> {
    let expr = polars::sql::sql_expr(sql)
        .map_err(|e| Problem::new(key, format!("`{sql}` is not a valid SQL expression: {e}")))?;
    let expr = expr.cast(DataType::Boolean);
    lf.clone()
        .select([expr.clone().alias("check")])
        .collect_schema()
        .map_err(|e| {
            // Polars appends the query plan; the first line says what is wrong.
            let e = e.to_string();
            let first = e.lines().next().unwrap_or_default();
            Problem::new(
                key,
                format!("`{sql}` cannot be evaluated on this source: {first}"),
            )
        })?;
    Ok(expr)
}

/// One cell value, as the rules see it.
#[derive(Debug, Clone, Copy)]
enum Cell<'a> {
    Str(&'a str),
    Int(i64),
    UInt(u64),
    Float(f64),
    Bool(bool),
}

impl Cell<'_> {
    /// The value as text, for value maps and signals: text as it is, numbers written into
    /// `buf` (integral floats without `.0`), so the hot path allocates nothing.
    fn text<'c>(&'c self, buf: &'c mut String) -> &'c str {
        buf.clear();
        let _ = match *self {
            Cell::Str(s) => return s,
            Cell::Int(i) => write!(buf, "{i}"),
            Cell::UInt(u) => write!(buf, "{u}"),
            Cell::Float(f) if f.fract() == 0.0 && f.abs() < 1e15 => write!(buf, "{}", f as i64),
            Cell::Float(f) => write!(buf, "{f}"),
            Cell::Bool(b) => write!(buf, "{b}"),
        };
        buf
    }

    fn describe(&self) -> String {
        match self {
            Cell::Str(s) => format!("\"{s}\""),
            other => other.text(&mut String::new()).to_owned(),
        }
    }
}

/// A column's values in one of the few physical types rules understand.
enum Cells {
    Str(StringChunked),
    Int(Int64Chunked),
    UInt(UInt64Chunked),
    Float(Float64Chunked),
    Bool(BooleanChunked),
    List(ListChunked),
    Null,
}

impl Cells {
    fn from_series(s: &Series) -> PolarsResult<Cells> {
        let dtype = s.dtype();
        Ok(match dtype {
            DataType::Null => Cells::Null,
            DataType::Boolean => Cells::Bool(s.bool()?.clone()),
            DataType::String => Cells::Str(s.str()?.clone()),
            DataType::List(_) => Cells::List(s.list()?.clone()),
            d if d.is_unsigned_integer() => Cells::UInt(s.cast(&DataType::UInt64)?.u64()?.clone()),
            d if d.is_integer() => Cells::Int(s.cast(&DataType::Int64)?.i64()?.clone()),
            d if d.is_float() => Cells::Float(s.cast(&DataType::Float64)?.f64()?.clone()),
            _ => Cells::Str(s.cast(&DataType::String)?.str()?.clone()),
        })
    }

    fn len(&self) -> usize {
        match self {
            Cells::Str(c) => c.len(),
            Cells::Int(c) => c.len(),
            Cells::UInt(c) => c.len(),
            Cells::Float(c) => c.len(),
            Cells::Bool(c) => c.len(),
            Cells::List(c) => c.len(),
            Cells::Null => 0,
        }
    }

    /// Calls `f` for each non-empty value of a row: one for a scalar, one per element of a
    /// list, one per non-empty piece of a string split on `split`. Text is trimmed; nulls
    /// and empty strings produce nothing.
    fn visit(
        &self,
        row: usize,
        split: Option<&str>,
        f: &mut dyn FnMut(Cell) -> Result<(), RowReject>,
    ) -> Result<(), RowReject> {
        match self {
            Cells::Str(c) => {
                if let Some(s) = c.get(row) {
                    match split {
                        Some(sep) => {
                            for piece in s.split(sep) {
                                let piece = piece.trim();
                                if !piece.is_empty() {
                                    f(Cell::Str(piece))?;
                                }
                            }
                        }
                        None => {
                            let s = s.trim();
                            if !s.is_empty() {
                                f(Cell::Str(s))?;
                            }
                        }
                    }
                }
            }
            Cells::Int(c) => c.get(row).map_or(Ok(()), |v| f(Cell::Int(v)))?,
            Cells::UInt(c) => c.get(row).map_or(Ok(()), |v| f(Cell::UInt(v)))?,
            Cells::Float(c) => c.get(row).map_or(Ok(()), |v| f(Cell::Float(v)))?,
            Cells::Bool(c) => c.get(row).map_or(Ok(()), |v| f(Cell::Bool(v)))?,
            Cells::List(c) => {
                if let Some(inner) = c.get_as_series(row) {
                    let inner = Cells::from_series(&inner)
                        .map_err(|e| RowReject::new("unsupported-value", e.to_string()))?;
                    for i in 0..inner.len() {
                        inner.visit(i, split, f)?;
                    }
                }
            }
            Cells::Null => {}
        }
        Ok(())
    }
}

/// A trait ID from a cell: digits, or an integral number (`123.0` from a float column).
fn trait_id(cell: Cell) -> Result<u64, String> {
    match cell {
        Cell::UInt(u) => Ok(u),
        Cell::Int(i) if i >= 0 => Ok(i as u64),
        Cell::Float(f) if f >= 0.0 && f.fract() == 0.0 && f < 9.0e15 => Ok(f as u64),
        Cell::Str(s) => {
            // "123" or, from a float column exported as text, "123.0".
            let digits = match s.split_once('.') {
                Some((int, frac)) if !frac.is_empty() && frac.bytes().all(|b| b == b'0') => int,
                _ => s,
            };
            if !digits.is_empty() && digits.bytes().all(|b| b.is_ascii_digit()) {
                digits.parse().map_err(|_| "too large".to_owned())
            } else {
                Err("not digits only".to_owned())
            }
        }
        _ => Err("not a whole non-negative number".to_owned()),
    }
}

/// The spellings accepted for true/false in a flag column.
fn flag(cell: Cell) -> Option<bool> {
    match cell {
        Cell::Bool(b) => Some(b),
        Cell::Int(1) | Cell::UInt(1) => Some(true),
        Cell::Int(0) | Cell::UInt(0) => Some(false),
        Cell::Float(1.0) => Some(true),
        Cell::Float(0.0) => Some(false),
        Cell::Str(s) => match s.to_ascii_lowercase().as_str() {
            "true" | "t" | "yes" | "y" | "1" => Some(true),
            "false" | "f" | "no" | "n" | "0" => Some(false),
            _ => None,
        },
        _ => None,
    }
}

/// Sorts users bytewise by ID. The first 8 bytes, compared as one big-endian integer, decide
/// most comparisons without touching the strings.
fn sort_by_id<T>(users: &mut Vec<(String, T)>) {
    let prefix = |id: &str| {
        let mut b = [0u8; 8];
        let n = id.len().min(8);
        b[..n].copy_from_slice(&id.as_bytes()[..n]);
        u64::from_be_bytes(b)
    };
    let mut keys: Vec<(u64, u32)> = users
        .iter()
        .enumerate()
        .map(|(i, (id, _))| (prefix(id), i as u32))
        .collect();
    keys.sort_unstable_by(|a, b| {
        a.0.cmp(&b.0).then_with(|| {
            users[a.1 as usize]
                .0
                .as_bytes()
                .cmp(users[b.1 as usize].0.as_bytes())
        })
    });
    let mut slots: Vec<Option<(String, T)>> = std::mem::take(users).into_iter().map(Some).collect();
    users.extend(
        keys.iter()
            .map(|&(_, i)| slots[i as usize].take().expect("each index once")),
    );
}

/// A rule with its values and filter column for the frame at hand.
struct Bound<'m> {
    /// `traits[0] (column "segments")`, for messages.
    label: String,
    split: Option<&'m str>,
    kind: &'m RuleKind,
    values: Cells,
    filter: Option<BooleanChunked>,
}

/// Traits interned as integers, so grouping and de-duplication never touch strings.
#[derive(Default)]
struct Interner {
    codes: HashMap<Trait, u32>,
    traits: Vec<Trait>,
}

impl Interner {
    fn code(&mut self, t: Trait) -> u32 {
        if let Some(&c) = self.codes.get(&t) {
            return c;
        }
        let c = self.traits.len() as u32;
        self.traits.push(t.clone());
        self.codes.insert(t, c);
        c
    }
}

struct UserState {
    traits: Vec<u32>,
    rows: u64,
    first_file: usize,
    first_row: u64,
}

struct Accumulator<'m> {
    mapping: &'m Mapping,
    receipt: Receipt,
    rejects: Vec<Reject>,
    interner: Interner,
    user_index: HashMap<String, u32>,
    users: Vec<(String, UserState)>,
    /// Pre-interned codes of fixed traits (flags and value maps), per rule.
    flag_codes: Vec<(Option<u32>, Option<u32>)>,
    map_codes: Vec<HashMap<String, u32>>,
    /// Per key-value rule: value text -> code, so a value seen before costs one lookup.
    signal_codes: Vec<HashMap<String, u32>>,
    /// Reused for numbers rendered as text.
    text_buf: String,
}

impl<'m> Accumulator<'m> {
    fn new(mapping: &'m Mapping) -> Accumulator<'m> {
        let mut interner = Interner::default();
        let mut flag_codes = Vec::new();
        let mut map_codes = Vec::new();
        for rule in &mapping.rules {
            match &rule.kind {
                RuleKind::Flag { on_true, on_false } => flag_codes.push((
                    Some(interner.code(on_true.clone())),
                    on_false.clone().map(|t| interner.code(t)),
                )),
                _ => flag_codes.push((None, None)),
            }
            match &rule.kind {
                RuleKind::ValueMap { values, .. } => map_codes.push(
                    values
                        .iter()
                        .map(|(k, t)| (k.clone(), interner.code(t.clone())))
                        .collect(),
                ),
                _ => map_codes.push(HashMap::default()),
            }
        }
        Accumulator {
            mapping,
            receipt: Receipt::default(),
            rejects: Vec::new(),
            interner,
            user_index: HashMap::default(),
            users: Vec::new(),
            flag_codes,
            map_codes,
            signal_codes: mapping.rules.iter().map(|_| HashMap::default()).collect(),
            text_buf: String::new(),
        }
    }

    fn add_frame(
        &mut self,
        df: &DataFrame,
        file_index: usize,
        source: &Source,
        cancel: &AtomicBool,
    ) -> Result<()> {
        let err = |e: PolarsError| Error::source(&source.path, e);
        let file = source.path.display().to_string();
        let uids = df
            .column(UID)
            .map_err(err)?
            .as_materialized_series()
            .str()
            .map_err(err)?
            .clone();
        let mut bound = Vec::new();
        for (i, rule) in self.mapping.rules.iter().enumerate() {
            let values = match df.column(&value_col(i)) {
                Ok(c) => Cells::from_series(c.as_materialized_series()).map_err(err)?,
                Err(e) => return Err(err(e)),
            };
            let filter = match df.column(&filter_col(i)) {
                Ok(c) => Some(c.as_materialized_series().bool().map_err(err)?.clone()),
                Err(_) => None,
            };
            let label = match &rule.input {
                Input::Column(c) => format!("{} (column \"{c}\")", rule.path),
                Input::Condition(w) => format!("{} (when \"{w}\")", rule.path),
            };
            bound.push(Bound {
                label,
                split: rule.split.as_deref(),
                kind: &rule.kind,
                values,
                filter,
            });
        }
        let mut scratch: Vec<u32> = Vec::new();
        for row in 0..df.height() {
            if row % 65_536 == 0 && cancel.load(Ordering::Relaxed) {
                return Err(Error::Interrupted);
            }
            self.receipt.rows_read += 1;
            let row_number = row as u64 + 1;
            let raw_uid = uids.get(row).unwrap_or("");
            let result = self.user_id(raw_uid).and_then(|uid| {
                scratch.clear();
                self.row_traits(&bound, row, &mut scratch)?;
                Ok(uid)
            });
            match result {
                Ok(uid) => self.add_user_row(&uid, &scratch, file_index, row_number),
                Err(r) => {
                    self.receipt.reject(r.code, 1);
                    self.rejects.push(Reject {
                        file: file.clone(),
                        row: row_number,
                        user_id: mask_pii(raw_uid),
                        reason: r.code,
                        message: r.message,
                    });
                }
            }
        }
        Ok(())
    }

    /// The user ID as it will be written: trimmed, hashed, case-normalized as the mapping
    /// asks, then checked against its type (SPEC: User IDs).
    fn user_id<'r>(&mut self, raw: &'r str) -> Result<Cow<'r, str>, RowReject> {
        let spec = &self.mapping.user_id;
        let mut id = Cow::Borrowed(if spec.trim { raw.trim() } else { raw });
        if spec.hash_email && !id.is_empty() {
            if !inbound::looks_like_email(&id) {
                return Err(RowReject::new(
                    "not-an-email",
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
        if spec.id_type == IdType::Dpuuid && inbound::looks_like_phone(&id) {
            self.receipt.ids_phone_like += 1;
        }
        spec.id_type.check(&id).map_err(|p| {
            let what = match spec.id_type {
                IdType::Dpuuid => String::new(),
                t => format!(" ({})", t.name()),
            };
            RowReject::new(p.code(), format!("user_id{what}: {p}"))
        })?;
        Ok(id)
    }

    fn row_traits(
        &mut self,
        bound: &[Bound],
        row: usize,
        out: &mut Vec<u32>,
    ) -> Result<(), RowReject> {
        for (i, b) in bound.iter().enumerate() {
            if let Some(f) = &b.filter {
                if f.get(row) != Some(true) {
                    continue;
                }
            }
            let interner = &mut self.interner;
            let receipt = &mut self.receipt;
            let (on_true, on_false) = self.flag_codes[i];
            let map_codes = &self.map_codes[i];
            let signal_codes = &mut self.signal_codes[i];
            let buf = &mut self.text_buf;
            let path = &b.label;
            let mut emit = |cell: Cell| -> Result<(), RowReject> {
                match b.kind {
                    RuleKind::TraitIds { emit } => {
                        let id = trait_id(cell).map_err(|why| {
                            RowReject::new(
                                "invalid-trait-id",
                                format!("{path}: trait ID {} is {why}", cell.describe()),
                            )
                        })?;
                        out.push(interner.code(emit.make(id)));
                    }
                    RuleKind::Flag { .. } => {
                        let value = flag(cell).ok_or_else(|| {
                            RowReject::new(
                                "invalid-flag",
                                format!(
                                    "{path}: {} is not a true/false value (true/false, yes/no, y/n, t/f, 1/0)",
                                    cell.describe()
                                ),
                            )
                        })?;
                        if let Some(code) = if value { on_true } else { on_false } {
                            out.push(code);
                        }
                    }
                    RuleKind::ValueMap {
                        reject_unmapped, ..
                    } => {
                        let text = cell.text(buf);
                        match map_codes.get(text) {
                            Some(&code) => out.push(code),
                            None if *reject_unmapped => {
                                let mut known: Vec<&str> =
                                    map_codes.keys().map(String::as_str).collect();
                                known.sort_unstable();
                                return Err(RowReject::new(
                                    "unmapped-value",
                                    format!(
                                        "{path}: \"{text}\" is not in `values` ({}); add it or set unmapped = \"skip\"",
                                        known.join(", ")
                                    ),
                                ));
                            }
                            None => receipt.values_skipped += 1,
                        }
                    }
                    RuleKind::KeyValue { key } => {
                        let text = cell.text(buf);
                        let code = match signal_codes.get(text) {
                            Some(&code) => code,
                            None => {
                                let t = Trait::signal(key, text).map_err(|e| {
                                    RowReject::new(
                                        "invalid-signal-value",
                                        format!(
                                            "{path}: value {} cannot be sent: {e}",
                                            cell.describe()
                                        ),
                                    )
                                })?;
                                let code = interner.code(t);
                                signal_codes.insert(text.to_owned(), code);
                                code
                            }
                        };
                        out.push(code);
                    }
                }
                Ok(())
            };
            b.values.visit(row, b.split, &mut emit)?;
        }
        Ok(())
    }

    fn add_user_row(&mut self, uid: &str, codes: &[u32], file: usize, row: u64) {
        let index = match self.user_index.get(uid) {
            Some(&i) => i as usize,
            None => {
                let i = self.users.len();
                self.user_index.insert(uid.to_owned(), i as u32);
                self.users.push((
                    uid.to_owned(),
                    UserState {
                        traits: Vec::new(),
                        rows: 0,
                        first_file: file,
                        first_row: row,
                    },
                ));
                i
            }
        };
        let state = &mut self.users[index].1;
        state.rows += 1;
        state.traits.extend_from_slice(codes);
    }

    /// Orders users and traits, resolves add/remove conflicts and renders every user's lines.
    fn finish(mut self, mapping: &Mapping, sources: &[Source]) -> Conversion {
        // Rank of each trait code in the line order (Trait's Ord), so sorting ranks sorts traits.
        let traits = &self.interner.traits;
        let mut by_order: Vec<u32> = (0..traits.len() as u32).collect();
        by_order.sort_unstable_by(|a, b| traits[*a as usize].cmp(&traits[*b as usize]));
        let mut rank = vec![0u32; traits.len()];
        for (r, &code) in by_order.iter().enumerate() {
            rank[code as usize] = r as u32;
        }
        let mut users = std::mem::take(&mut self.users);
        self.user_index = HashMap::default();
        sort_by_id(&mut users);
        self.receipt.users_read = users.len() as u64;

        let max_part = mapping.output.max_part_bytes;
        let mut body = Vec::new();
        let mut blocks = Vec::new();
        let mut kinds = [0u64; 5];
        let mut line: Vec<&Trait> = Vec::new();
        let mut added: Vec<u64> = Vec::new();
        let mut removed: Vec<u64> = Vec::new();
        for (uid, state) in &mut users {
            let mut ranks: Vec<u32> = state.traits.iter().map(|&c| rank[c as usize]).collect();
            ranks.sort_unstable();
            ranks.dedup();
            line.clear();
            added.clear();
            removed.clear();
            for &r in &ranks {
                let t = &traits[by_order[r as usize] as usize];
                match t.target() {
                    Some((id, true)) => added.push(id),
                    // Additions sort before removals, so `added` is complete here.
                    Some((id, false)) if added.binary_search(&id).is_ok() => {
                        self.receipt.conflicts += 1;
                        continue;
                    }
                    // The same removal in two spellings is written once.
                    Some((id, false)) if removed.contains(&id) => continue,
                    Some((id, false)) => removed.push(id),
                    None => {}
                }
                line.push(t);
            }
            if line.is_empty() {
                self.receipt.users_without_traits += 1;
                continue;
            }
            let start = body.len();
            let result = inbound::wrap_user(
                uid,
                line.iter().copied(),
                MAX_LINE_BYTES,
                MAX_LINES_PER_USER,
                &mut body,
            )
            .map_err(|e| (e.code(), e.to_string()))
            .and_then(|n| {
                let bytes = (body.len() - start) as u64;
                if bytes > max_part {
                    body.truncate(start);
                    Err((
                        "user-exceeds-part-size",
                        format!("user's lines take {bytes} bytes, more than output.max_part_bytes = {max_part}"),
                    ))
                } else {
                    Ok(n)
                }
            });
            match result {
                Ok(lines) => {
                    blocks.push(UserBlock {
                        end: body.len(),
                        lines: lines as u32,
                    });
                    self.receipt.users_written += 1;
                    self.receipt.lines += lines as u64;
                    self.receipt.traits += line.len() as u64;
                    for t in &line {
                        kinds[t.kind_index()] += 1;
                    }
                }
                Err((code, message)) => {
                    self.receipt.users_rejected += 1;
                    self.receipt.reject(code, state.rows);
                    self.rejects.push(Reject {
                        file: sources[state.first_file].path.display().to_string(),
                        row: state.first_row,
                        user_id: mask_pii(uid),
                        reason: code,
                        message: format!("{message} ({} rows of this user left out)", state.rows),
                    });
                }
            }
        }
        self.receipt.traits_by_kind = crate::report::by_kind(&kinds);
        Conversion {
            receipt: self.receipt,
            rejects: self.rejects,
            body,
            users: blocks,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn trait_ids_from_cells() {
        assert_eq!(trait_id(Cell::Int(24)), Ok(24));
        assert_eq!(trait_id(Cell::Float(123.0)), Ok(123));
        assert_eq!(trait_id(Cell::Str("123.0")), Ok(123));
        assert_eq!(trait_id(Cell::Str("0042")), Ok(42));
        assert!(trait_id(Cell::Str("12a")).is_err());
        assert!(trait_id(Cell::Str("1.5")).is_err());
        assert!(trait_id(Cell::Float(1.5)).is_err());
        assert!(trait_id(Cell::Int(-3)).is_err());
        assert!(trait_id(Cell::Bool(true)).is_err());
    }

    #[test]
    fn users_sort_bytewise_by_id() {
        let ids = [
            "b",
            "a",
            "abcdefghZ",
            "abcdefgh",
            "abcdefghA",
            "",
            "B",
            "é",
            "abcdefgh\u{0}",
        ];
        let mut users: Vec<(String, usize)> = ids
            .iter()
            .enumerate()
            .map(|(i, s)| (s.to_string(), i))
            .collect();
        let mut expected = users.clone();
        expected.sort_by(|a, b| a.0.as_bytes().cmp(b.0.as_bytes()));
        sort_by_id(&mut users);
        assert_eq!(users, expected);
    }

    #[test]
    fn flag_spellings() {
        for t in ["true", "TRUE", "Y", "yes", "1", "t"] {
            assert_eq!(flag(Cell::Str(t)), Some(true), "{t}");
        }
        for f in ["false", "N", "no", "0", "F"] {
            assert_eq!(flag(Cell::Str(f)), Some(false), "{f}");
        }
        assert_eq!(flag(Cell::Str("maybe")), None);
        assert_eq!(flag(Cell::Int(2)), None);
        assert_eq!(flag(Cell::Bool(true)), Some(true));
    }

    #[test]
    fn cell_text_prints_integral_floats_plainly() {
        let mut buf = String::new();
        assert_eq!(Cell::Float(3.0).text(&mut buf), "3");
        assert_eq!(Cell::Float(3.5).text(&mut buf), "3.5");
        assert_eq!(Cell::Int(-2).text(&mut buf), "-2");
        assert_eq!(Cell::Str("x y").text(&mut buf), "x y");
    }
}
