//! Sources + mapping -> every user's de-duplicated traits, rendered as lines, plus rejects.
//!
//! Two phases, so that memory stays flat however large the export:
//! 1. Each source is read in batches (Polars projects the mapping's columns and evaluates its
//!    SQL conditions and filters; a second thread reads the next batch while this one is
//!    converted). Each batch is cut into one slice per converting thread; each row becomes
//!    (user ID, trait codes), computed column by column, with traits interned as integers.
//!    Each converter sorts its rows by user ID, in runs spilled to disk past its share of the
//!    budget (`spill`).
//! 2. The runs are merged; each user's rows come out together and the user's lines are
//!    rendered once, on one thread while the writer compresses on the others. Users are in
//!    bytewise ID order; traits by form then ID or text.

use crate::error::{Error, Problem, Result};
use crate::inbound::{self, IdType, Trait, MAX_LINES_PER_USER, MAX_LINE_BYTES};
use crate::mapping::{Format, Input, Mapping, RuleKind};
use crate::reject::{mask_pii, Reject};
use crate::report::Receipt;
use crate::source::Source;
use crate::spill::{self, Merge, Sorter, UserRows};
use crate::writer::{Rendered, UserBlock};
use polars::prelude::*;
use std::borrow::Cow;
use std::fmt::Write as _;
use std::sync::mpsc::sync_channel;
use std::sync::Mutex;

/// Hash maps on the hot path use foldhash (hashbrown's default); nothing iterates them unsorted.
type HashMap<K, V> = std::collections::HashMap<K, V, foldhash::fast::RandomState>;
use std::sync::atomic::{AtomicBool, Ordering};

/// How big the pieces are. The output does not depend on these, only memory and speed do.
#[derive(Debug, Clone, Copy)]
pub struct Tuning {
    /// Rows per batch for Parquet and IPC.
    pub batch_rows: u64,
    /// Bytes per batch for CSV and NDJSON.
    pub batch_bytes: u64,
    /// Bytes of converted rows held in memory before they are spilled to TMPDIR.
    pub spill_budget: usize,
    /// Threads converting rows, each over its share of every batch.
    pub threads: usize,
}

impl Default for Tuning {
    fn default() -> Tuning {
        Tuning {
            batch_rows: 1 << 20,
            batch_bytes: 64 << 20,
            spill_budget: 256 << 20,
            threads: std::thread::available_parallelism().map_or(1, |n| n.get()),
        }
    }
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

/// Runs the mapping over all sources (one logical export) and hands every user's lines to
/// `sink`, in output order, about 4 MB at a time. `cancel` is checked between batches and
/// every few thousand rows (Ctrl-C).
pub fn run(
    mapping: &Mapping,
    sources: &[Source],
    tuning: Tuning,
    cancel: &AtomicBool,
    sink: &mut dyn FnMut(&Rendered) -> Result<()>,
) -> Result<(Receipt, Vec<Reject>)> {
    let interner = Mutex::new(Interner::default());
    let threads = tuning.threads.max(1);
    let mut converters: Vec<Converter> = (0..threads)
        .map(|_| Converter::new(mapping, &interner, tuning.spill_budget / threads))
        .collect();
    let mut receipt = Receipt::default();
    let mut rejects = Vec::new();
    std::thread::scope(|s| -> Result<()> {
        let (tx, rx) = sync_channel(1);
        let reader = std::thread::Builder::new().name("read".into());
        reader
            .spawn_scoped(s, move || {
                for (file, source) in sources.iter().enumerate() {
                    let read =
                        read_source(mapping, source, tuning, cancel, &mut |first_row, df| {
                            // A closed channel: the converting side stopped (and reports why).
                            tx.send(Ok((file, first_row, df))).is_ok()
                        });
                    if let Err(e) = read {
                        let _ = tx.send(Err(e));
                        return;
                    }
                }
            })
            .expect("a thread can be started");
        for batch in rx {
            let (file, first_row, df) = batch?;
            convert_frame(
                &mut converters,
                &df,
                file,
                first_row,
                &sources[file],
                cancel,
            )?;
            // In input order: each converter took the rows after the previous one's.
            for c in &mut converters {
                rejects.append(&mut c.rejects);
            }
        }
        Ok(())
    })?;
    let mut sorters = Vec::new();
    for c in converters {
        receipt.absorb(c.receipt);
        sorters.push(c.sorter);
    }
    receipt.files_read = sources.len() as u64;
    let interner = interner.into_inner().expect("no converter panicked");
    let ctx = RenderContext::new(&interner.traits, mapping, sources);
    let merge = spill::merge(sorters).map_err(spill_error)?;
    let tally = Tally {
        receipt,
        rejects,
        kinds: [0; 5],
    };
    ctx.render(merge, tally, cancel, sink)
}

fn spill_error(e: std::io::Error) -> Error {
    Error::io(std::env::temp_dir(), e)
}

/// Converts one batch, cut into as many row ranges as there are converters, on that many
/// threads.
fn convert_frame(
    converters: &mut [Converter],
    df: &DataFrame,
    file: usize,
    first_row: u64,
    source: &Source,
    cancel: &AtomicBool,
) -> Result<()> {
    let per = df.height().div_ceil(converters.len()).max(1);
    std::thread::scope(|s| {
        let mut pieces = converters.iter_mut().enumerate().map(|(k, c)| {
            let offset = k * per;
            let piece = df.slice(offset as i64, per);
            let first = first_row + offset as u64;
            move || c.add_frame(&piece, file, first, source, cancel)
        });
        let mut mine = pieces.next().expect("at least one converter");
        let others: Vec<_> = pieces
            .map(|work| {
                std::thread::Builder::new()
                    .name("convert".into())
                    .spawn_scoped(s, work)
                    .expect("a thread can be started")
            })
            .collect();
        // The first error in row order is the one reported.
        let mut result = mine();
        for h in others {
            let r = h.join().expect("converters do not panic");
            result = result.and(r);
        }
        result
    })
}

const UID: &str = "__aam_uid";

fn value_col(i: usize) -> String {
    format!("__aam_v{i}")
}

fn filter_col(i: usize) -> String {
    format!("__aam_f{i}")
}

/// Reads one source batch by batch, selecting the user ID, each rule's values and each
/// rule's filter; `emit(first_row, batch)` returns false to stop.
fn read_source(
    mapping: &Mapping,
    source: &Source,
    tuning: Tuning,
    cancel: &AtomicBool,
    emit: &mut dyn FnMut(u64, DataFrame) -> bool,
) -> Result<()> {
    let opened = source.open(&mapping.input, tuning.batch_bytes)?;
    let mut lf = opened.scan(&[])?;
    let names = source.column_names(&mut lf, &mapping.input)?;
    mapping
        .check_columns(&names)
        .map_err(|problems| Error::Columns {
            path: source.path.clone(),
            problems,
        })?;
    // Columns the mapping reads are text in CSV (IDs keep leading zeros, bad cells become
    // counted rejects rather than parse failures); other columns keep inferred types for
    // conditions and filters.
    if source.format == Format::Csv {
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
    let mut first_row = 0u64;
    for batch in opened.batches(lf, tuning.batch_rows)? {
        if cancel.load(Ordering::Relaxed) {
            return Err(Error::Interrupted);
        }
        let df = batch?
            .select(exprs.clone())
            .collect()
            .map_err(|e| source.polars_error(e, &mapping.input))?;
        let rows = df.height() as u64;
        if !emit(first_row, df) {
            return Ok(());
        }
        first_row += rows;
    }
    Ok(())
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
    if let Some(agg) = whole_column_function(&expr) {
        return Err(Problem::new(
            key,
            format!(
                "`{sql}` uses {agg}, which looks at the whole column; conditions are evaluated one row at a time (sources are read in batches), so compute it before the export"
            ),
        ));
    }
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

/// An aggregate or window function in a condition, if any. Sources are read in batches,
/// so such a function would see one batch, not the column; it is refused rather than
/// allowed to give results that change with the batch size.
fn whole_column_function(expr: &Expr) -> Option<&'static str> {
    const FUNCTIONS: [(&str, &str); 16] = [
        (".mean()", "an average"),
        (".sum()", "a sum"),
        (".min()", "a minimum"),
        (".max()", "a maximum"),
        (".count()", "a count"),
        (".len()", "a count"),
        ("(len())", "a count"),
        (".first()", "first()"),
        (".last()", "last()"),
        (".median()", "a median"),
        (".std(", "a standard deviation"),
        (".var(", "a variance"),
        (".n_unique()", "a distinct count"),
        (".quantile(", "a quantile"),
        (".over(", "a window function"),
        (".rank(", "a rank"),
    ];
    let shown = format!("{expr:?}");
    FUNCTIONS
        .iter()
        .find(|(f, _)| shown.contains(f))
        .map(|&(_, what)| what)
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

    /// Calls `f` for each non-empty value in row `row` (see `pieces`); used for the elements
    /// of a list cell, where rows are few.
    fn visit(&self, row: usize, split: Option<&str>, f: &mut CellFn) -> Result<(), RowReject> {
        let cell = match self {
            Cells::Str(c) => c.get(row).map(Cell::Str),
            Cells::Int(c) => c.get(row).map(Cell::Int),
            Cells::UInt(c) => c.get(row).map(Cell::UInt),
            Cells::Float(c) => c.get(row).map(Cell::Float),
            Cells::Bool(c) => c.get(row).map(Cell::Bool),
            Cells::List(c) => return c.get_as_series(row).map_or(Ok(()), |s| list(&s, split, f)),
            Cells::Null => None,
        };
        let mut f = f;
        cell.map_or(Ok(()), |cell| pieces(cell, split, &mut f))
    }
}

type CellFn<'f> = dyn FnMut(Cell) -> Result<(), RowReject> + 'f;

/// Calls `f` for each element of a list cell (see `pieces`).
fn list(inner: &Series, split: Option<&str>, f: &mut CellFn) -> Result<(), RowReject> {
    let inner = Cells::from_series(inner)
        .map_err(|e| RowReject::new("unsupported-value", e.to_string()))?;
    (0..inner.len()).try_for_each(|i| inner.visit(i, split, f))
}

/// Calls `f` for each non-empty value in a cell: the cell itself, or each non-empty piece
/// of a string split on `split`. Text is trimmed; empty strings produce nothing.
fn pieces(
    cell: Cell,
    split: Option<&str>,
    f: &mut impl FnMut(Cell) -> Result<(), RowReject>,
) -> Result<(), RowReject> {
    let Cell::Str(s) = cell else {
        return f(cell);
    };
    let mut each = |piece: &str| {
        let piece = trim(piece);
        if piece.is_empty() {
            Ok(())
        } else {
            f(Cell::Str(piece))
        }
    };
    match split.map(str::as_bytes) {
        // A one-byte separator (the usual `|`) is found byte by byte: faster than a string
        // search on short values.
        Some(&[sep]) if sep.is_ascii() => {
            let mut start = 0;
            for (i, &b) in s.as_bytes().iter().enumerate() {
                if b == sep {
                    each(&s[start..i])?;
                    start = i + 1;
                }
            }
            each(&s[start..])
        }
        Some(_) => s.split(split.unwrap_or_default()).try_for_each(each),
        None => each(s),
    }
}

/// `str::trim`, with a shortcut for the usual value that starts and ends with a visible
/// ASCII character.
fn trim(s: &str) -> &str {
    match s.as_bytes() {
        [first, .., last] if first.is_ascii_graphic() && last.is_ascii_graphic() => s,
        [only] if only.is_ascii_graphic() => s,
        _ => s.trim(),
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

/// A rule with its values and filter column for the frame at hand.
struct Bound<'m> {
    /// `traits[0] (column "segments")`, for messages.
    label: String,
    split: Option<&'m str>,
    kind: &'m RuleKind,
    values: Cells,
    filter: Option<BooleanChunked>,
}

/// A trait's code from the shared interner.
fn intern(interner: &Mutex<Interner>, t: Trait) -> u32 {
    interner.lock().expect("no converter panicked").code(t)
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

/// Converts rows on one thread: its own counts, rejects and sorter, and caches in front of
/// the shared interner, so that the lock is taken only for a value not seen before.
struct Converter<'m> {
    mapping: &'m Mapping,
    receipt: Receipt,
    rejects: Vec<Reject>,
    interner: &'m Mutex<Interner>,
    /// Accepted rows, as (user ID, trait codes), sorted by ID on disk past a budget.
    sorter: Sorter,
    /// Per rule, its trait codes by value.
    caches: Vec<RuleCache>,
    /// Reused for numbers rendered as text.
    text_buf: String,
    /// Per rule, the codes of the frame being converted (buffers reused).
    rule_codes: Vec<RuleCodes>,
}

impl<'m> Converter<'m> {
    fn new(
        mapping: &'m Mapping,
        interner: &'m Mutex<Interner>,
        spill_budget: usize,
    ) -> Converter<'m> {
        let caches = {
            let mut interner = interner.lock().expect("no converter panicked");
            let interner = &mut *interner;
            let caches = mapping.rules.iter().map(|rule| match &rule.kind {
                RuleKind::Flag { on_true, on_false } => RuleCache {
                    flag: (
                        Some(interner.code(on_true.clone())),
                        on_false.clone().map(|t| interner.code(t)),
                    ),
                    ..RuleCache::default()
                },
                RuleKind::ValueMap { values, .. } => RuleCache {
                    map: values
                        .iter()
                        .map(|(k, t)| (k.clone(), interner.code(t.clone())))
                        .collect(),
                    ..RuleCache::default()
                },
                _ => RuleCache::default(),
            });
            caches.collect()
        };
        Converter {
            mapping,
            receipt: Receipt::default(),
            rejects: Vec::new(),
            interner,
            sorter: Sorter::new(spill_budget),
            caches,
            text_buf: String::new(),
            rule_codes: Vec::new(),
        }
    }

    /// Converts a frame column by column: the user IDs, then each rule over all rows (a
    /// row rejected by one rule is not looked at by the next, as if row by row), then each
    /// accepted row's codes go to the sorter, rejects to the list, in row order.
    fn add_frame(
        &mut self,
        df: &DataFrame,
        file_index: usize,
        first_row: u64,
        source: &Source,
        cancel: &AtomicBool,
    ) -> Result<()> {
        let err = |e: PolarsError| Error::source(&source.path, e);
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
        let n = df.height();
        let mut rows = RowStatus {
            rejected: vec![false; n],
            reasons: Vec::new(),
        };
        let mut ids: Vec<Cow<str>> = Vec::with_capacity(n);
        for (row, raw) in uids.iter().enumerate() {
            if row % 65_536 == 0 && cancel.load(Ordering::Relaxed) {
                return Err(Error::Interrupted);
            }
            let raw = raw.unwrap_or("");
            match self.user_id(raw) {
                Ok(id) => ids.push(id),
                Err(r) => {
                    rows.reject(row, r);
                    ids.push(Cow::Borrowed(raw));
                }
            }
        }
        let mut codes = std::mem::take(&mut self.rule_codes);
        codes.resize_with(bound.len(), RuleCodes::default);
        for (i, (b, out)) in bound.iter().zip(&mut codes).enumerate() {
            out.ends.clear();
            out.codes.clear();
            self.convert_rule(i, b, &mut rows, out);
        }
        // Rejects in row order; a row has at most one.
        rows.reasons.sort_by_key(|&(row, _)| row);
        let mut reasons = rows.reasons.into_iter();
        let file = source.path.display().to_string();
        let mut scratch: Vec<u32> = Vec::new();
        self.receipt.rows_read += n as u64;
        for (row, id) in ids.iter().enumerate() {
            let row_number = first_row + row as u64 + 1;
            if rows.rejected[row] {
                let (_, r) = reasons.next().expect("a rejected row has its reason");
                self.receipt.reject(r.code, 1);
                self.rejects.push(Reject {
                    file: file.clone(),
                    row: row_number,
                    user_id: mask_pii(id),
                    reason: r.code,
                    message: r.message,
                });
                continue;
            }
            scratch.clear();
            for c in &codes {
                let start = if row == 0 { 0 } else { c.ends[row - 1] };
                // A rule gives a row a code or two: a loop, not a call to memcpy.
                let mine = &c.codes[start as usize..c.ends[row] as usize];
                scratch.extend(mine.iter().copied());
            }
            self.sorter
                .push(id.as_bytes(), file_index as u32, row_number, &scratch)
                .map_err(spill_error)?;
        }
        self.rule_codes = codes;
        Ok(())
    }

    /// The user ID as it will be written: trimmed, hashed, case-normalized as the mapping
    /// asks, then checked against its type (SPEC: User IDs).
    fn user_id<'r>(&mut self, raw: &'r str) -> Result<Cow<'r, str>, RowReject> {
        let spec = &self.mapping.user_id;
        let mut id = Cow::Borrowed(if spec.trim { trim(raw) } else { raw });
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

    /// Rule `i`'s codes for every row not yet rejected and not filtered out; a row whose
    /// value the rule refuses is rejected.
    fn convert_rule(&mut self, i: usize, b: &Bound, rows: &mut RowStatus, out: &mut RuleCodes) {
        let mut coder = Coder {
            kind: b.kind,
            label: &b.label,
            interner: self.interner,
            receipt: &mut self.receipt,
            cache: &mut self.caches[i],
            buf: &mut self.text_buf,
        };
        let filter = b.filter.as_ref();
        let split = b.split;
        // Each physical type gets its own loop over the column, with no per-row dispatch.
        match &b.values {
            Cells::Str(c) => each_row(c.iter(), filter, rows, out, |s, codes| {
                pieces(Cell::Str(s), split, &mut |cell| coder.code(cell, codes))
            }),
            Cells::Int(c) => each_row(c.iter(), filter, rows, out, |v, codes| {
                coder.code(Cell::Int(v), codes)
            }),
            Cells::UInt(c) => each_row(c.iter(), filter, rows, out, |v, codes| {
                coder.code(Cell::UInt(v), codes)
            }),
            Cells::Float(c) => each_row(c.iter(), filter, rows, out, |v, codes| {
                coder.code(Cell::Float(v), codes)
            }),
            Cells::Bool(c) => each_row(c.iter(), filter, rows, out, |v, codes| {
                coder.code(Cell::Bool(v), codes)
            }),
            Cells::List(c) => each_row(c.amortized_iter(), filter, rows, out, |v, codes| {
                list(v.as_ref(), split, &mut |cell| coder.code(cell, codes))
            }),
            // No values: every row gets no codes.
            Cells::Null => out.ends.resize(rows.rejected.len(), 0),
        }
    }
}

/// The rows of the frame being converted that are rejected, each with its first reason.
struct RowStatus {
    rejected: Vec<bool>,
    reasons: Vec<(usize, RowReject)>,
}

impl RowStatus {
    fn reject(&mut self, row: usize, why: RowReject) {
        self.rejected[row] = true;
        self.reasons.push((row, why));
    }
}

/// One rule's codes for a frame's rows: row `r`'s are `codes[ends[r - 1]..ends[r]]`.
#[derive(Default)]
struct RuleCodes {
    ends: Vec<u32>,
    codes: Vec<u32>,
}

/// Runs `f` on each row's value that is set, where the row is not rejected and its filter
/// (if any) is true; a refused value rejects the row and leaves no codes.
fn each_row<T>(
    values: impl Iterator<Item = Option<T>>,
    filter: Option<&BooleanChunked>,
    rows: &mut RowStatus,
    out: &mut RuleCodes,
    mut f: impl FnMut(T, &mut Vec<u32>) -> Result<(), RowReject>,
) {
    let mut filter = filter.map(|f| f.iter());
    for (row, value) in values.enumerate() {
        let passes = filter
            .as_mut()
            .is_none_or(|f| f.next().flatten() == Some(true));
        if let (true, Some(v)) = (passes && !rows.rejected[row], value) {
            let start = out.codes.len();
            if let Err(why) = f(v, &mut out.codes) {
                out.codes.truncate(start);
                rows.reject(row, why);
            }
        }
        out.ends.push(out.codes.len() as u32);
    }
}

/// One rule's trait codes by value, in front of the shared interner.
#[derive(Default)]
struct RuleCache {
    /// A flag's pre-interned traits for true and false.
    flag: (Option<u32>, Option<u32>),
    /// A value map's pre-interned traits.
    map: HashMap<String, u32>,
    /// Trait ID -> code.
    ids: IntCache,
    /// Key-value: value text -> code, so a value seen before costs one lookup.
    signals: HashMap<String, u32>,
    /// Key-value over an integer column: value -> code, without writing the text.
    numbers: IntCache,
}

/// Codes by integer: small integers (trait IDs, ages, counts) index a table, no hashing;
/// the rest go to a map.
#[derive(Default)]
struct IntCache {
    /// Code + 1 by value; 0 for not seen.
    small: Vec<u32>,
    large: HashMap<u64, u32>,
}

/// Values below this are looked up in the table (4 MB at most per rule).
const SMALL_INT: u64 = 1 << 20;

impl IntCache {
    fn get(&self, v: u64) -> Option<u32> {
        if v < SMALL_INT {
            self.small.get(v as usize).and_then(|&c| c.checked_sub(1))
        } else {
            self.large.get(&v).copied()
        }
    }

    fn insert(&mut self, v: u64, code: u32) {
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

/// What turns one rule's cells into trait codes: the rule and its cache.
struct Coder<'c> {
    kind: &'c RuleKind,
    /// `traits[0] (column "segments")`, for messages.
    label: &'c str,
    interner: &'c Mutex<Interner>,
    receipt: &'c mut Receipt,
    cache: &'c mut RuleCache,
    buf: &'c mut String,
}

impl Coder<'_> {
    /// Appends the code of the trait `cell` makes, if any, to `out`.
    fn code(&mut self, cell: Cell, out: &mut Vec<u32>) -> Result<(), RowReject> {
        let path = self.label;
        match self.kind {
            RuleKind::TraitIds { emit } => {
                let id = trait_id(cell).map_err(|why| {
                    RowReject::new(
                        "invalid-trait-id",
                        format!("{path}: trait ID {} is {why}", cell.describe()),
                    )
                })?;
                let code = match self.cache.ids.get(id) {
                    Some(code) => code,
                    None => {
                        let code = intern(self.interner, emit.make(id));
                        self.cache.ids.insert(id, code);
                        code
                    }
                };
                out.push(code);
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
                let (on_true, on_false) = self.cache.flag;
                if let Some(code) = if value { on_true } else { on_false } {
                    out.push(code);
                }
            }
            RuleKind::ValueMap {
                reject_unmapped, ..
            } => {
                let text = cell.text(self.buf);
                match self.cache.map.get(text) {
                    Some(&code) => out.push(code),
                    None if *reject_unmapped => {
                        let mut known: Vec<&str> =
                            self.cache.map.keys().map(String::as_str).collect();
                        known.sort_unstable();
                        return Err(RowReject::new(
                            "unmapped-value",
                            format!(
                                "{path}: \"{text}\" is not in `values` ({}); add it or set unmapped = \"skip\"",
                                known.join(", ")
                            ),
                        ));
                    }
                    None => self.receipt.values_skipped += 1,
                }
            }
            RuleKind::KeyValue { key } => {
                // Integers are cached as their bits: a distinct value is a distinct key.
                if let Cell::Int(n) = cell {
                    if let Some(code) = self.cache.numbers.get(n as u64) {
                        out.push(code);
                        return Ok(());
                    }
                }
                let text = cell.text(self.buf);
                let code = match self.cache.signals.get(text) {
                    Some(&code) => code,
                    None => {
                        let t = Trait::signal(key, text).map_err(|e| {
                            RowReject::new(
                                "invalid-signal-value",
                                format!("{path}: value {} cannot be sent: {e}", cell.describe()),
                            )
                        })?;
                        let code = intern(self.interner, t);
                        self.cache.signals.insert(text.to_owned(), code);
                        code
                    }
                };
                if let Cell::Int(n) = cell {
                    self.cache.numbers.insert(n as u64, code);
                }
                out.push(code);
            }
        }
        Ok(())
    }
}

/// Rendered bytes handed to the sink at a time.
const CHUNK_BYTES: usize = 4 << 20;

/// What rendering needs to know besides a user's rows.
struct RenderContext<'a> {
    /// Trait code -> rank in line order.
    rank: Vec<u32>,
    /// Rank -> what rendering asks of the trait: the trait ID it adds (true) or removes
    /// (false), if any, and its kind (index into the report's kinds).
    ranked: Vec<(Option<(u64, bool)>, usize)>,
    /// Rank -> the trait's text, rendered once.
    texts: Vec<Vec<u8>>,
    max_part: u64,
    sources: &'a [Source],
}

/// What happened to the users: the receipt's counters, the rejected users, and traits
/// written by kind.
struct Tally {
    receipt: Receipt,
    rejects: Vec<Reject>,
    kinds: [u64; 5],
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
    /// The ranks of the traits written.
    line: Vec<u32>,
}

impl<'a> RenderContext<'a> {
    /// `traits` by code.
    fn new(traits: &'a [Trait], mapping: &Mapping, sources: &'a [Source]) -> RenderContext<'a> {
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
            .map(|t| (t.target(), t.kind_index()))
            .collect();
        let texts = in_order.map(|t| t.render().into_bytes()).collect();
        RenderContext {
            rank,
            ranked,
            texts,
            max_part: mapping.output.max_part_bytes,
            sources,
        }
    }

    /// Merges the sorted rows into users and renders their lines on a second thread, so
    /// that rendering overlaps the sink's work; hands the sink about 4 MB at a time.
    fn render(
        &self,
        mut merge: Merge,
        mut tally: Tally,
        cancel: &AtomicBool,
        sink: &mut dyn FnMut(&Rendered) -> Result<()>,
    ) -> Result<(Receipt, Vec<Reject>)> {
        let mut tally = std::thread::scope(|s| -> Result<Tally> {
            let (tx, rx) = sync_channel::<Rendered>(1);
            let renderer = std::thread::Builder::new().name("render".into());
            let rendering = renderer
                .spawn_scoped(s, move || -> Result<Tally> {
                    let mut user = UserRows::default();
                    let mut scratch = Scratch::default();
                    loop {
                        let mut chunk = Rendered::default();
                        let mut more = true;
                        while more && chunk.body.len() < CHUNK_BYTES {
                            more = merge.next_user(&mut user).map_err(spill_error)?;
                            if more {
                                self.render_user(&user, &mut chunk, &mut tally, &mut scratch);
                            }
                        }
                        if cancel.load(Ordering::Relaxed) {
                            return Err(Error::Interrupted);
                        }
                        // A closed channel: the sink failed, and that error is reported.
                        let sent = chunk.users.is_empty() || tx.send(chunk).is_ok();
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
        tally.receipt.traits_by_kind = crate::report::by_kind(&tally.kinds);
        Ok((tally.receipt, tally.rejects))
    }

    /// Orders and de-duplicates a user's traits, resolves add/remove conflicts and renders
    /// the user's lines into `out`.
    fn render_user(
        &self,
        user: &UserRows,
        out: &mut Rendered,
        tally: &mut Tally,
        scratch: &mut Scratch,
    ) {
        let Scratch {
            ranks,
            seen,
            user: stamp,
            added,
            removed,
            line,
        } = scratch;
        let receipt = &mut tally.receipt;
        receipt.users_read += 1;
        *stamp = stamp.wrapping_add(1);
        if *stamp == 0 || seen.len() < self.rank.len() {
            seen.clear();
            seen.resize(self.rank.len(), 0);
            *stamp = 1;
        }
        ranks.clear();
        for &c in &user.codes {
            let last = &mut seen[c as usize];
            if *last != *stamp {
                *last = *stamp;
                ranks.push(self.rank[c as usize]);
            }
        }
        ranks.sort_unstable();
        added.clear();
        removed.clear();
        line.clear();
        for &r in ranks.iter() {
            match self.ranked[r as usize].0 {
                Some((id, true)) => added.push(id),
                // Additions sort before removals, so `added` is complete here.
                Some((id, false)) if added.binary_search(&id).is_ok() => {
                    receipt.conflicts += 1;
                    continue;
                }
                // The same removal in two spellings is written once.
                Some((id, false)) if removed.contains(&id) => continue,
                Some((id, false)) => removed.push(id),
                None => {}
            }
            line.push(r);
        }
        if line.is_empty() {
            receipt.users_without_traits += 1;
            return;
        }
        // IDs were checked as UTF-8 text on the way in.
        let uid = std::str::from_utf8(&user.id).unwrap_or_default();
        let body = &mut out.body;
        let start = body.len();
        let result = inbound::wrap_user(
            uid,
            line.iter().map(|&r| &self.texts[r as usize][..]),
            MAX_LINE_BYTES,
            MAX_LINES_PER_USER,
            body,
        )
        .map_err(|e| (e.code(), e.to_string()))
        .and_then(|n| {
            let bytes = (body.len() - start) as u64;
            if bytes > self.max_part {
                body.truncate(start);
                Err((
                    "user-exceeds-part-size",
                    format!(
                        "user's lines take {bytes} bytes, more than output.max_part_bytes = {}",
                        self.max_part
                    ),
                ))
            } else {
                Ok(n)
            }
        });
        match result {
            Ok(lines) => {
                out.users.push(UserBlock {
                    end: body.len(),
                    lines: lines as u32,
                });
                receipt.users_written += 1;
                receipt.lines += lines as u64;
                receipt.traits += line.len() as u64;
                for &r in line.iter() {
                    tally.kinds[self.ranked[r as usize].1] += 1;
                }
            }
            Err((code, message)) => {
                receipt.users_rejected += 1;
                receipt.reject(code, user.rows);
                tally.rejects.push(Reject {
                    file: self.sources[user.first_file as usize]
                        .path
                        .display()
                        .to_string(),
                    row: user.first_row,
                    user_id: mask_pii(uid),
                    reason: code,
                    message: format!("{message} ({} rows of this user left out)", user.rows),
                });
            }
        }
    }
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
    fn conditions_over_the_whole_column_are_refused() {
        let parse = |sql| whole_column_function(&polars::sql::sql_expr(sql).unwrap());
        assert_eq!(parse("age > AVG(age)"), Some("an average"));
        assert_eq!(parse("spend >= MAX(spend) * 0.9"), Some("a maximum"));
        assert_eq!(parse("COUNT(*) > 3"), Some("a count"));
        assert_eq!(parse("age > 30 AND tier = 'gold'"), None);
        assert_eq!(parse("city LIKE '%York' OR age IN (1, 2)"), None);
        assert_eq!(parse("LENGTH(city) > 3"), None);
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
