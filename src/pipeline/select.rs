//! What Polars selects from each batch: the user ID, each rule's column or condition, and
//! each rule's filter. Conditions are Polars SQL, checked against the source's schema before
//! anything is read, and refused when they would look at the whole column.

use super::Tuning;
use crate::error::{Error, Problem, Result};
use crate::mapping::{Input, Mapping, RuleKind};
use crate::source::{Scan, Source};
use polars::prelude::*;
use std::sync::atomic::{AtomicBool, Ordering};

pub(super) const UID: &str = "__aam_uid";

/// The user ID's fallback column `k` (1-based), tried where the ones before are empty.
pub(super) fn uid_col(k: usize) -> String {
    format!("{UID}{k}")
}

pub(super) fn value_col(i: usize) -> String {
    format!("__aam_v{i}")
}

/// The values of `latest_by` column `g`, with their own type.
pub(super) fn order_col(g: usize) -> String {
    format!("__aam_o{g}")
}

/// Rule `i`'s keys (`key_column`), as text.
pub(super) fn key_col(i: usize) -> String {
    format!("__aam_k{i}")
}

pub(super) fn filter_col(i: usize) -> String {
    format!("__aam_f{i}")
}

/// True where rule `i`'s `remove_when` is NULL (and its filter true): counted, as the rule
/// adds there.
pub(super) fn gate_null_col(i: usize) -> String {
    format!("__aam_n{i}")
}

/// Reads one source batch by batch, selecting the user ID, each rule's values and each
/// rule's filter; `emit(first_row, batch, share of the source read)` returns false to stop.
pub(super) fn read_source(
    mapping: &Mapping,
    source: &Source,
    tuning: Tuning,
    run_time: u64,
    cancel: &AtomicBool,
    emit: &mut dyn FnMut(u64, DataFrame, f64) -> bool,
) -> Result<()> {
    let opened = source.open(&mapping.input, tuning.batch_bytes)?;
    let scan = opened.scan_for(mapping)?;
    let selection = Selection::new(mapping, source, &scan, run_time)?;
    let mut first_row = 0u64;
    let mut batches = opened.batches(scan.lf, tuning.batch_rows)?;
    while let Some(batch) = batches.next() {
        if cancel.load(Ordering::Relaxed) {
            return Err(Error::Interrupted);
        }
        let df = selection
            .apply(batch?)
            .collect()
            .map_err(|e| source.polars_error(e, &mapping.input))?;
        // Wide rows make smaller batches, so that memory does not grow with them.
        batches.fit(df.height(), df.estimated_size(), tuning.batch_bytes);
        let rows = df.height() as u64;
        if !emit(first_row, df, batches.fraction()) {
            return Ok(());
        }
        first_row += rows;
    }
    Ok(())
}

/// What each batch selects, under the names the converters look up: the user ID as text,
/// each rule's values (a column, or a condition's truth) and each rule's filter.
struct Selection {
    /// The user ID and the columns rules read, as read (text, in CSV files).
    columns: Vec<Expr>,
    /// CSV columns read as text, cast back to their inferred type for the conditions.
    typed: Vec<Expr>,
    /// Conditions and filters.
    conditions: Vec<Expr>,
    /// The names `columns` are selected under.
    read: Vec<String>,
    /// `{run_date}` and `{run_time}`, for the conditions; empty when none uses them.
    run: Vec<Expr>,
}

/// What `{run_date}` and `{run_time}` in a condition stand for: columns holding the run's
/// UTC day (a date) and time (a UTC datetime), from `--timestamp`, so that "the last 30
/// days" means the same days when a run is repeated.
const RUN_DATE: &str = "__aam_run_date";
const RUN_TIME: &str = "__aam_run_time";

fn run_columns(run_time: u64) -> [Expr; 2] {
    [
        lit((run_time / 86_400) as i32)
            .cast(DataType::Date)
            .alias(RUN_DATE),
        lit(run_time as i64 * 1000)
            .cast(DataType::Datetime(TimeUnit::Milliseconds, None))
            .alias(RUN_TIME),
    ]
}

impl Selection {
    fn new(mapping: &Mapping, source: &Source, scan: &Scan, run_time: u64) -> Result<Selection> {
        let mut sel = Selection {
            columns: vec![column(&mapping.user_id.column, &scan.names)
                .cast(DataType::String)
                .alias(UID)],
            // Not strict: a cell that does not parse is NULL to a condition, as it would be
            // had the column been read with its inferred type.
            typed: scan
                .text_columns
                .iter()
                .map(|(c, dtype)| col(c.as_str()).cast(dtype.clone()))
                .collect(),
            conditions: Vec::new(),
            read: vec![UID.to_owned()],
            run: if mapping_uses_run_time(mapping) {
                run_columns(run_time).to_vec()
            } else {
                Vec::new()
            },
        };
        for (k, c) in mapping.user_id.fallback.iter().enumerate() {
            sel.columns.push(
                column(c, &scan.names)
                    .cast(DataType::String)
                    .alias(uid_col(k + 1)),
            );
            sel.read.push(uid_col(k + 1));
        }
        let typed_lf = scan.lf.clone().with_columns(sel.typed.clone());
        let mut problems = Vec::new();
        for (i, rule) in mapping.rules.iter().enumerate() {
            match (&rule.input, keyed(&rule.kind)) {
                // What orders c2c rows is read with its own type (numbers compare as numbers
                // in a CSV file too), as conditions are.
                (Input::Column(c), _) if rule.kind == RuleKind::SyncOrder => {
                    sel.conditions
                        .push(column(c, &scan.names).alias(value_col(i)));
                }
                // An attribute table's values are text beside their keys.
                (Input::Column(c), Some(key)) => {
                    sel.columns.push(
                        column(c, &scan.names)
                            .cast(DataType::String)
                            .alias(value_col(i)),
                    );
                    sel.columns.push(
                        column(key, &scan.names)
                            .cast(DataType::String)
                            .alias(key_col(i)),
                    );
                    sel.read.extend([value_col(i), key_col(i)]);
                }
                (Input::Column(c), None) => {
                    sel.columns.push(column(c, &scan.names).alias(value_col(i)));
                    sel.read.push(value_col(i));
                }
                (Input::Condition(sql), _) => {
                    match sql_condition(&typed_lf, &sel.run, sql, &format!("{}.when", rule.path)) {
                        Ok(c) => sel.conditions.push(c.alias(value_col(i))),
                        Err(p) => problems.push(p),
                    }
                }
            }
            let filter = rule.filter.as_ref().map(|sql| {
                sql_condition(&typed_lf, &sel.run, sql, &format!("{}.where", rule.path))
            });
            let gate = rule.gate.as_ref().map(|g| {
                let key = format!("{}.remove_when", rule.path);
                sql_condition(&typed_lf, &sel.run, &g.sql, &key).map(|e| (g.removes, e))
            });
            let filter = match (filter.transpose(), gate.transpose()) {
                (Err(p), _) | (_, Err(p)) => Some(Err(p)),
                (Ok(f), Ok(None)) => f.map(Ok),
                (Ok(f), Ok(Some((removes, e)))) => {
                    if !removes {
                        let nulls = gated_nulls(f.clone(), e.clone());
                        sel.conditions.push(nulls.alias(gate_null_col(i)));
                    }
                    Some(Ok(gated(f, removes, e)))
                }
            };
            match filter {
                Some(Ok(f)) => sel.conditions.push(f.alias(filter_col(i))),
                // The two rules of a `remove_when` would say it twice.
                Some(Err(p)) if !problems.contains(&p) => problems.push(p),
                _ => {}
            }
        }
        // What orders a user's rows is read with its own type (numbers compare as numbers
        // in a CSV file too), as conditions are.
        for (g, (_, c)) in mapping.latest_by.iter().enumerate() {
            sel.conditions
                .push(column(c, &scan.names).alias(order_col(g)));
        }
        if problems.is_empty() {
            Ok(sel)
        } else {
            Err(Error::Columns {
                path: source.path.clone(),
                problems,
            })
        }
    }

    /// The batch's selection: the columns as read, then the conditions over the columns
    /// with their types.
    fn apply(&self, batch: LazyFrame) -> LazyFrame {
        let conditions = self.conditions.iter().cloned();
        let batch = if self.run.is_empty() {
            batch
        } else {
            batch.with_columns(self.run.clone())
        };
        if self.typed.is_empty() {
            return batch.select(
                self.columns
                    .iter()
                    .cloned()
                    .chain(conditions)
                    .collect::<Vec<_>>(),
            );
        }
        let read = self.read.iter().map(|n| col(n.as_str()));
        batch
            .with_columns(self.columns.clone())
            .with_columns(self.typed.clone())
            .select(read.chain(conditions).collect::<Vec<_>>())
    }
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

/// A `remove_when` rule's filter: the removing rule where the condition is true, the other
/// where it is not, NULL included (as SQL's CASE WHEN ... ELSE would); and its `where`.
fn gated(filter: Option<Expr>, removes: bool, gate: Expr) -> Expr {
    let gate = gate.fill_null(lit(false));
    let gate = if removes { gate } else { gate.not() };
    match filter {
        Some(f) => f.and(gate),
        None => gate,
    }
}

/// Rows that pass the `where` and whose `remove_when` is NULL: the adding rule counts them.
fn gated_nulls(filter: Option<Expr>, gate: Expr) -> Expr {
    filter
        .map_or(lit(true), |f| f.fill_null(lit(false)))
        .and(gate.is_null())
}

/// The column a key-value rule takes its keys from, if it does.
fn keyed(kind: &RuleKind) -> Option<&str> {
    match kind {
        RuleKind::KeyValue {
            key_column: Some(k),
            ..
        } => Some(&k.column),
        _ => None,
    }
}

/// Whether a condition names `{run_date}` or `{run_time}` (or a misspelling of them).
fn names_run_time(sql: &str) -> bool {
    sql.contains("{run_")
}

/// Whether a condition of the mapping names `{run_date}` or `{run_time}`.
fn mapping_uses_run_time(mapping: &Mapping) -> bool {
    mapping.rules.iter().any(|r| {
        let condition = match &r.input {
            Input::Condition(sql) => Some(sql),
            Input::Column(_) => None,
        };
        [
            condition,
            r.filter.as_ref(),
            r.gate.as_ref().map(|g| &g.sql),
        ]
        .into_iter()
        .flatten()
        .any(|sql| names_run_time(sql))
    })
}

/// Parses a Polars SQL condition and checks it against the source's schema (with the
/// `run` columns, when the condition names them).
fn sql_condition(lf: &LazyFrame, run: &[Expr], sql: &str, key: &str) -> Result<Expr, Problem> {
    let lf = &if names_run_time(sql) {
        lf.clone().with_columns(run)
    } else {
        lf.clone()
    };
    let with_run = sql
        .replace("{run_date}", RUN_DATE)
        .replace("{run_time}", RUN_TIME);
    if let Some(at) = with_run.find('{') {
        let end = with_run[at..]
            .find('}')
            .map_or(with_run.len(), |e| at + e + 1);
        return Err(Problem::new(
            key,
            format!(
                "`{sql}`: unknown placeholder `{}`; conditions know {{run_date}} (the run's UTC day) and {{run_time}} (its UTC time)",
                &with_run[at..end]
            ),
        ));
    }
    let expr = polars::sql::sql_expr(&with_run)
        .map_err(|e| Problem::new(key, format!("`{sql}` is not a valid SQL expression: {e}")))?;
    if let Some(agg) = whole_column_function(&expr) {
        return Err(Problem::new(
            key,
            format!(
                "`{sql}` uses {agg}, which looks at the whole column; conditions are evaluated one row at a time (sources are read in batches), so compute it before the export"
            ),
        ));
    }
    let schema = lf
        .clone()
        .select([expr.clone().alias("check")])
        .collect_schema()
        .map_err(|e| {
            // Polars appends the query plan; the first line says what is wrong.
            let e = e.to_string();
            let first = e.lines().next().unwrap_or_default();
            // Dates in CSV files are text.
            let hint = if names_run_time(sql) && first.contains("string") {
                "; a date held as text compares after STRPTIME(column, '%Y-%m-%d')"
            } else {
                ""
            };
            Problem::new(
                key,
                format!("`{sql}` cannot be evaluated on this source: {first}{hint}"),
            )
        })?;
    // A condition must be true or false (NULL included): text or a number is a mistake,
    // such as `where = "tier"` for `where = "tier = 'gold'"`.
    match schema.get("check") {
        Some(DataType::Boolean | DataType::Null) | None => {}
        Some(dtype) => {
            return Err(Problem::new(
                key,
                format!(
                    "`{sql}` is not a true/false condition: it gives {dtype} values; compare it, e.g. `{sql} = 'gold'` or `{sql} > 0`"
                ),
            ))
        }
    }
    Ok(expr.cast(DataType::Boolean))
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

#[cfg(test)]
mod tests {
    use super::*;

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
}
