//! The main job: mapping + sources -> inbound files, with the reject threshold applied. A
//! run is one transaction: the delivery, the rejects file and the report are published
//! together at the end, or not at all (see [`crate::publish`]).

use crate::error::{Error, Result};
use crate::inbound::Mode;
use crate::inbound::TIMESTAMP_RANGE;
use crate::mapping::{Format, Mapping};
use crate::pipeline::{self, Deliver, Plain, TraitCheck, Tuning};
use crate::progress::{Phase, Progress};
use crate::publish::{existing_delivery, OutputFolder, Staged, Transaction};
use crate::reject::{Reject, RejectLog};
use crate::report::Receipt;
use crate::source::{self, Source};
use crate::spill;
use crate::state::diff::Diff;
use crate::state::{ledger_entry, snapshot, State};
use crate::taxonomy::Taxonomy;
use crate::upload::{self, Bucket, Destination, UploadReport};
use crate::writer::{delivery_dir, PartWriter, Plan};
use std::io::Write;
use std::path::PathBuf;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::{SystemTime, UNIX_EPOCH};

/// The timestamp in the file names: the one given (`--timestamp`), which must be a 10-digit
/// UTC Unix time, or now.
pub fn timestamp(given: Option<u64>) -> Result<u64> {
    match given {
        Some(t) if TIMESTAMP_RANGE.contains(&t) => Ok(t),
        Some(t) => Err(Error::Usage(format!(
            "--timestamp {t} is not a 10-digit UTC Unix time in seconds"
        ))),
        None => Ok(SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .map_or(0, |d| d.as_secs())),
    }
}

/// The export's files: `inputs` (paths and glob patterns) read as `format` (`--format`),
/// else as the mapping's `[input] format`, else by extension.
pub fn sources(
    mapping: &Mapping,
    inputs: &[String],
    format: Option<Format>,
) -> Result<Vec<Source>> {
    source::resolve(inputs, format.or(mapping.input.format))
}

#[derive(Debug, Clone)]
pub struct Options {
    pub out_dir: PathBuf,
    /// 10-digit UTC Unix time for the file names.
    pub timestamp: u64,
    /// Replace an earlier delivery with the same name (all of its files).
    pub force: bool,
    pub dry_run: bool,
    /// Fraction of rows (0.01 = 1%) that may be rejected before the run publishes nothing.
    pub max_reject_rate: f64,
    /// Where to write the summary as JSON, and every rejected row as CSV.
    pub report: Option<PathBuf>,
    pub rejects: Option<PathBuf>,
    /// The state folder (`--state`, else the mapping's `[state] path`): deliver only what
    /// changed since the last delivery.
    pub state: Option<PathBuf>,
    /// A full refresh: every user's whole set, as `.overwrite` (with a state).
    pub full: bool,
    /// Upload the published delivery here (`--deliver`, else the mapping's `deliver`); the
    /// state advances only once every file is up.
    pub deliver: Option<Destination>,
    /// The data source's trait list (`--traits`, else the mapping's `[taxonomy] path`):
    /// rows that would send a trait ID it does not list as an onboarded trait of the data
    /// source are rejected.
    pub traits: Option<PathBuf>,
    /// The run's progress, for a display (the binary's `--progress`).
    pub progress: Arc<Progress>,
    /// Set by a signal handler: the run stops and removes what it had started to write.
    pub cancel: Arc<AtomicBool>,
}

/// What happened to the output.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Status {
    Written,
    /// `--dry-run`: nothing written.
    DryRun,
    /// No user has a trait to send: no file is written (AAM does not process empty files).
    Empty,
    /// Too many rows rejected: nothing published.
    OverThreshold,
    /// With a state: nothing changed since the last delivery (its timestamp); no file.
    NoChanges(u64),
}

#[derive(Debug)]
pub struct Outcome {
    pub status: Status,
    pub receipt: Receipt,
    /// The first rejected rows (all of them are in the rejects file).
    pub rejects: Vec<Reject>,
    pub plan: Plan,
    /// The first lines of output, for `--dry-run`.
    pub preview: Vec<String>,
    /// What the run found and cleaned up on its way (stale locks, leftovers of killed runs).
    pub notes: Vec<String>,
    /// What went to S3 (or would, with `--dry-run`).
    pub upload: Option<UploadReport>,
}

/// Number of output lines shown by a dry run.
const PREVIEW_LINES: usize = 10;

pub fn run(mapping: &Mapping, sources: &[Source], opts: &Options) -> Result<Outcome> {
    run_tuned(mapping, sources, opts, Tuning::default())
}

/// [`run`] with explicit batch and memory sizes (tests use tiny ones).
pub fn run_tuned(
    mapping: &Mapping,
    sources: &[Source],
    opts: &Options,
    tuning: Tuning,
) -> Result<Outcome> {
    let mut notes = spill::remove_abandoned();
    // Everything that can be checked before the export is read: the output folder (locked
    // for the run), an earlier delivery of the same name, and the report and rejects paths.
    let _folder = if opts.dry_run {
        None
    } else {
        let (folder, found) = OutputFolder::open(&opts.out_dir)?;
        notes.extend(found);
        Some(folder)
    };
    let stem = mapping.delivery_stem(opts.timestamp);
    let mut writers = [Mode::Sync, Mode::Overwrite].map(|mode| {
        PartWriter::new(
            &mapping.output,
            (stem.clone(), mode.name()),
            opts.timestamp,
            &opts.out_dir,
            opts.dry_run,
        )
    });
    let earlier = existing_delivery(
        &delivery_dir(&mapping.output, opts.timestamp, &opts.out_dir),
        &stem,
    )?;
    if !earlier.is_empty() && !opts.force && !opts.dry_run {
        return Err(Error::DeliveryExists { files: earlier });
    }
    // Credentials and the destination are checked before the export is read.
    let destination = opts.deliver.as_ref().or(mapping.output.deliver.as_ref());
    let bucket = match destination {
        Some(dest) if !opts.dry_run => Some(Bucket::connect(dest)?),
        _ => None,
    };
    let mut state = match opts.state.as_ref().or(mapping.state.path.as_ref()) {
        Some(dir) => {
            let state = State::open(dir, mapping)?;
            notes.extend(state.notes.iter().cloned());
            Some(state)
        }
        None => None,
    };
    if opts.full && state.is_none() {
        return Err(Error::Usage(
            "--full sends a full refresh of a state: give the state folder (--state DIR, or path under [state])".into(),
        ));
    }
    let full = opts.full
        || state
            .as_ref()
            .is_some_and(|s| s.refresh_due(mapping, opts.timestamp));
    let taxonomy = match opts.traits.as_ref().or(mapping.taxonomy.as_ref()) {
        Some(path) => Some(Taxonomy::load(path)?),
        None => None,
    };
    let check = taxonomy.as_ref().map(|list| TraitCheck {
        list,
        data_source: mapping.output.data_source(),
    });
    let mut diff = match &mut state {
        Some(st) => Some(Diff::new(
            snapshot::Reader::open(st.snapshot()),
            snapshot::Writer::create(&st.new_snapshot())?,
            full,
            mapping.removal_form(),
        )),
        None => None,
    };
    let mut tx = Transaction::default();
    let mut rejects = RejectLog::new(match &opts.rejects {
        Some(path) => {
            let (staged, file) = Staged::create(path)?;
            // The rejects file and the report of an earlier run are replaced.
            tx.replace([path.clone()]);
            tx.stage(staged);
            Some((file, path.clone()))
        }
        None => None,
    });
    let report = match &opts.report {
        Some(path) => {
            let (staged, file) = Staged::create(path)?;
            tx.replace([path.clone()]);
            tx.stage(staged);
            Some((path, file))
        }
        None => None,
    };

    let mut preview = Vec::new();
    let mut plain = Plain(mapping.output.mode);
    let deliver: &mut dyn Deliver = match &mut diff {
        Some(d) => d,
        None => &mut plain,
    };
    let mut receipt = pipeline::run(
        mapping,
        sources,
        tuning,
        opts.timestamp,
        check,
        &opts.cancel,
        &opts.progress,
        &mut rejects,
        deliver,
        &mut |chunk| {
            for (rendered, writer) in [&chunk.sync, &chunk.overwrite]
                .into_iter()
                .zip(&mut writers)
            {
                if preview.len() < PREVIEW_LINES {
                    let body = &rendered.body
                        [..preview_len(&rendered.body, PREVIEW_LINES - preview.len())];
                    preview.extend(String::from_utf8_lossy(body).lines().map(str::to_owned));
                }
                writer.push(rendered)?;
            }
            Ok(())
        },
    )?;
    let plans = [writers[0].finish()?, writers[1].finish()?];
    let plan = Plan {
        dir: plans[0].dir.clone(),
        parts: plans.iter().flat_map(|p| p.parts.clone()).collect(),
    };
    if let Some(d) = &mut diff {
        d.finish_snapshot()?;
        receipt.delivery = Some(d.counts.clone());
    }
    let rejects = rejects.finish()?;
    let status = if receipt.reject_rate() > opts.max_reject_rate {
        Status::OverThreshold
    } else if plan.parts.is_empty() {
        match state.as_ref().and_then(|s| s.meta.as_ref()) {
            Some(meta) => Status::NoChanges(meta.last.timestamp),
            None => Status::Empty,
        }
    } else if opts.dry_run {
        Status::DryRun
    } else {
        receipt.parts = plan.reports();
        for (writer, plan) in writers.into_iter().zip(&plans) {
            writer.stage(plan, &mut tx);
        }
        tx.replace(earlier);
        Status::Written
    };
    if let Some((path, mut file)) = report {
        let mut json = serde_json::to_vec_pretty(&receipt).map_err(std::io::Error::other);
        if let Ok(json) = &mut json {
            json.push(b'\n');
        }
        json.and_then(|j| file.write_all(&j))
            .and_then(|()| file.sync_all())
            .map_err(|e| Error::io(path, e))?;
    }
    // The last moment a signal stops the run: past it, the run publishes.
    if opts.cancel.load(Ordering::SeqCst) {
        return Err(Error::Interrupted);
    }
    tx.commit()?;
    let upload = match (&bucket, destination, &status) {
        (Some(bucket), _, Status::Written) => {
            let files = plan.paths();
            // ID-sync files are checked by the types of the DPIDs in their names.
            let id_type = mapping.id_sync.is_none().then_some(mapping.user_id.id_type);
            upload::check_delivery(&files, id_type)?;
            Some(bucket.upload(&files, opts.force, false, &opts.progress)?)
        }
        (_, Some(dest), Status::DryRun) => Some(upload::would_upload(dest, &plan)?),
        _ => None,
    };
    // The state advances only once its delivery is published (and uploaded).
    if let (Some(state), Some(counts), Status::Written) = (&mut state, &receipt.delivery, &status) {
        let files = plan.parts.iter().map(|p| p.name.render()).collect();
        let inputs: Vec<PathBuf> = sources.iter().map(|s| s.path.clone()).collect();
        state.commit(
            mapping,
            ledger_entry(opts.timestamp, full, files, counts, &inputs),
        )?;
    }
    opts.progress.start(Phase::Done, 0);
    Ok(Outcome {
        status,
        receipt,
        rejects,
        plan,
        preview,
        notes,
        upload,
    })
}

/// Length of the first `lines` lines of `body`.
fn preview_len(body: &[u8], lines: usize) -> usize {
    body.iter()
        .enumerate()
        .filter(|(_, &b)| b == b'\n')
        .nth(lines.saturating_sub(1))
        .map_or(body.len(), |(i, _)| i + 1)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::source;
    use std::fmt::Write as _;
    use std::path::Path;

    fn repo(path: &str) -> String {
        Path::new(env!("CARGO_MANIFEST_DIR"))
            .join(path)
            .display()
            .to_string()
    }

    fn options(out_dir: &Path) -> Options {
        Options {
            out_dir: out_dir.to_owned(),
            timestamp: 1_700_000_000,
            force: false,
            dry_run: false,
            max_reject_rate: 1.0,
            report: None,
            rejects: None,
            state: None,
            traits: None,
            full: false,
            deliver: None,
            progress: Arc::default(),
            cancel: Arc::new(AtomicBool::new(false)),
        }
    }

    /// What a run produced: (file name, bytes) of each output file, the receipt, the rejects.
    type Produced = (Vec<(String, Vec<u8>)>, Receipt, Vec<Reject>);

    /// Converts into a fresh folder.
    fn convert(mapping: &Mapping, inputs: &[String], tuning: Tuning) -> Produced {
        let out = tempfile::tempdir().unwrap();
        let sources = source::resolve(inputs, None).unwrap();
        let outcome = run_tuned(mapping, &sources, &options(out.path()), tuning).unwrap();
        let mut files: Vec<(String, Vec<u8>)> = std::fs::read_dir(out.path())
            .unwrap()
            .map(|e| {
                let e = e.unwrap();
                (
                    e.file_name().into_string().unwrap(),
                    std::fs::read(e.path()).unwrap(),
                )
            })
            .collect();
        files.sort();
        (files, outcome.receipt, outcome.rejects)
    }

    /// One-row batches, every row spilled, more converting threads than rows per batch,
    /// and every key-value signal after a rule's first carried in its row.
    const TINY: Tuning = Tuning {
        batch_rows: 1,
        batch_bytes: 1,
        spill_budget: 1,
        threads: 3,
        block_rows: 1,
        signal_cache: 1,
    };

    #[test]
    fn output_does_not_depend_on_batches_spilling_or_threads() {
        // Two CSV files, one user's rows spread over both, quoted fields with commas and line
        // breaks (a batch must never start inside one), and rows that get rejected.
        let dir = tempfile::tempdir().unwrap();
        let header = "customer_id,email_sha256,segment_id,optout_segment,tier,is_vip,city,interests,age,signup_date\n";
        let mut files = [header.to_owned(), header.to_owned()];
        for i in 0..400u32 {
            let user = if i % 50 == 0 {
                "C-shared".to_owned()
            } else {
                format!("C{:04}", i % 97)
            };
            let note = if i % 7 == 0 {
                "\"2020-01-01\nsee, notes\""
            } else {
                "2020-01-01"
            };
            let segment = if i % 31 == 0 {
                "12x".to_owned()
            } else {
                (1000 + i % 13).to_string()
            };
            let tier = ["gold", "silver", "", "bronze"][i as usize % 4];
            let city = ["Paris", "\"New York\"", "", "Lyon"][i as usize % 4];
            let _ = writeln!(
                files[(i % 2) as usize],
                "{user},x,{segment},{},{tier},{},{city},a|b|c{},{},{note}",
                if i % 5 == 0 { "1003" } else { "" },
                i % 3 == 0,
                i % 6,
                20 + i % 50,
            );
        }
        let inputs: Vec<String> = files
            .iter()
            .enumerate()
            .map(|(n, text)| {
                let path = dir.path().join(format!("part{n}.csv"));
                std::fs::write(&path, text).unwrap();
                path.display().to_string()
            })
            .collect();
        let mapping = Mapping::load(Path::new(&repo("mappings/bench.toml"))).unwrap();
        let whole = convert(&mapping, &inputs, Tuning::default());
        assert_eq!(whole.1.rows_read, 400);
        assert!(whole.1.rows_rejected > 0 && whole.1.users_written > 90);
        let tiny = convert(&mapping, &inputs, TINY);
        assert_eq!(whole.0, tiny.0);
        assert_eq!(whole.1, tiny.1);
        assert_eq!(whole.2, tiny.2);
        let some = Tuning {
            batch_rows: 3,
            batch_bytes: 700,
            spill_budget: 2000,
            threads: 1,
            block_rows: 2,
            signal_cache: 4,
        };
        assert_eq!(whole.0, convert(&mapping, &inputs, some).0);
        // Each batch converted a few rows at a time: the same lines, counts and rejects
        // (with their row numbers).
        let blocks = Tuning {
            block_rows: 7,
            ..Tuning::default()
        };
        assert_eq!(whole, convert(&mapping, &inputs, blocks));
    }

    #[test]
    fn signals_carried_in_rows_give_the_lines_interned_ones_give() {
        // Values whose quoted rendering sorts apart from the value (`"a b"` before `A`, but
        // "A" < "a b"), repeats within and across rows and rules, and two rules with one key.
        let dir = tempfile::tempdir().unwrap();
        let input = dir.path().join("kv.csv");
        std::fs::write(
            &input,
            "id,c1,c2,seg\n\
             u1,a b,A,5\n\
             u1,A,a b,\n\
             u2,Zed,Zed,7\n\
             u3,New York,Newark,\n\
             u2,x-1,A,\n\
             u3,Newark,,5\n",
        )
        .unwrap();
        let mapping = Mapping::parse(
            "[output]\ndpid = 21\ngzip = false\n[user_id]\ncolumn = \"id\"\ntype = \"dpuuid\"\n\
             [[traits]]\ntype = \"key_value\"\ncolumn = \"c1\"\nkey = \"city\"\n\
             [[traits]]\ntype = \"key_value\"\ncolumn = \"c2\"\nkey = \"city\"\n\
             [[traits]]\ntype = \"trait_ids\"\ncolumn = \"seg\"\n",
        )
        .unwrap();
        let inputs = [input.display().to_string()];
        let interned = convert(&mapping, &inputs, Tuning::default());
        assert_eq!(
            String::from_utf8(interned.0[0].1.clone()).unwrap(),
            "u1\td_sid=5,city=A,city=\"a b\"\n\
             u2\td_sid=7,city=A,city=Zed,city=x-1\n\
             u3\td_sid=5,city=\"New York\",city=Newark\n"
        );
        for signal_cache in [0, 1, 2] {
            for threads in [1, 2] {
                let tuning = Tuning {
                    signal_cache,
                    threads,
                    ..TINY
                };
                let carried = convert(&mapping, &inputs, tuning);
                assert_eq!(
                    carried.0, interned.0,
                    "cache {signal_cache}, {threads} threads"
                );
                assert_eq!(
                    carried.1, interned.1,
                    "cache {signal_cache}, {threads} threads"
                );
            }
        }
    }

    #[test]
    fn id_sync_files_do_not_depend_on_batches_spilling_or_threads() {
        // Pairs repeated across batches and threads, rows without an ID, a rejected ID, and
        // a CRM ID with more e-mails than AAM keeps (the most recent by position).
        let dir = tempfile::tempdir().unwrap();
        let input = dir.path().join("ids.csv");
        let mut text = String::from("crm_id,aam_uuid,email,updated_at\n");
        for i in 0..300u32 {
            let uuid = format!("{:038}", 10_000 + i % 37);
            let uuid = if i % 41 == 0 { String::new() } else { uuid };
            let uuid = if i % 53 == 0 { "12".to_owned() } else { uuid };
            let _ = writeln!(text, "C{},{uuid},u{}@example.com,", i % 7, i % 23);
        }
        std::fs::write(&input, text).unwrap();
        let inputs = [input.display().to_string()];
        for template in ["mappings/idsync.toml", "mappings/c2c.toml"] {
            let mapping = Mapping::load(Path::new(&repo(template))).unwrap();
            let whole = convert(&mapping, &inputs, Tuning::default());
            assert!(whole.1.lines > 10, "{template}");
            let tiny = convert(&mapping, &inputs, TINY);
            assert_eq!(whole.0, tiny.0, "{template}");
            assert_eq!(whole.1, tiny.1, "{template}");
            assert_eq!(whole.2, tiny.2, "{template}");
        }
    }

    #[test]
    fn trait_list_checks_do_not_depend_on_batches_spilling_or_threads() {
        // Every rule kind meets the list: trait IDs (1003 not onboarded, 1004 unknown), a
        // condition (300 of another data source), a flag and a value map (listed), and
        // key-values (interest read by no rule-based trait).
        let mapping = Mapping::load(Path::new(&repo("mappings/crm.toml"))).unwrap();
        let sources = source::resolve(&[repo("examples/crm.csv")], None).unwrap();
        let run = |tuning: Tuning| {
            let out = tempfile::tempdir().unwrap();
            let opts = Options {
                traits: Some(repo("tests/fixtures/taxonomy/traits.csv").into()),
                ..options(out.path())
            };
            let outcome = run_tuned(&mapping, &sources, &opts, tuning).unwrap();
            let reasons: Vec<(u64, String)> = outcome
                .rejects
                .iter()
                .map(|r| (r.row, r.reason.code().to_owned()))
                .collect();
            (reasons, outcome.receipt)
        };
        let (reasons, receipt) = run(Tuning::default());
        assert_eq!(
            reasons,
            [
                (1, "trait-other-data-source".to_owned()),
                (4, "trait-not-onboarded".to_owned()),
                (5, "trait-other-data-source".to_owned()),
                (6, "unknown-trait".to_owned()),
            ]
        );
        assert_eq!(
            receipt.unrealized_signals,
            [("interest".to_owned(), 1)].into_iter().collect()
        );
        for tuning in [TINY, Tuning { threads: 1, ..TINY }] {
            let (tiny_reasons, tiny_receipt) = run(tuning);
            assert_eq!(tiny_reasons, reasons);
            assert_eq!(tiny_receipt, receipt);
        }
    }

    #[test]
    fn a_row_refused_by_one_rule_is_not_looked_at_by_the_next() {
        // Rules run column by column; the receipt must read as if rows went one at a time:
        // a row's first refusal is its reason, and later rules neither count nor skip it.
        let dir = tempfile::tempdir().unwrap();
        let input = dir.path().join("rows.csv");
        std::fs::write(
            &input,
            "id,seg,tier\n\
             U1,5,gold\n\
             U2,x,gold\n\
             U3,6,tin\n\
             ,x,tin\n\
             U5,x,tin\n\
             U6,7,gold\n",
        )
        .unwrap();
        let mapping = Mapping::parse(
            "[output]\ndpid = 21\nmode = \"sync\"\n\
             [user_id]\ncolumn = \"id\"\ntype = \"dpuuid\"\n\
             [[traits]]\ntype = \"trait_ids\"\ncolumn = \"seg\"\n\
             [[traits]]\ntype = \"value_map\"\ncolumn = \"tier\"\nvalues = { gold = 9 }\nunmapped = \"skip\"\n",
        )
        .unwrap();
        let blocks = Tuning {
            block_rows: 2,
            ..Tuning::default()
        };
        for tuning in [Tuning::default(), TINY, blocks] {
            let (_, receipt, rejects) = convert(&mapping, &[input.display().to_string()], tuning);
            let got: Vec<(u64, &str)> = rejects.iter().map(|r| (r.row, r.reason.code())).collect();
            // Row 4 has no ID: that, not its segment, is why it is left out.
            assert_eq!(got[0], (2, "invalid-trait-id"));
            assert_eq!(got[1].0, 4);
            assert_ne!(got[1].1, "invalid-trait-id");
            assert_eq!(got[2], (5, "invalid-trait-id"));
            assert_eq!(got.len(), 3);
            // Only U3's "tin" is skipped: rows 4 and 5 were refused before their tier.
            assert_eq!(receipt.values_skipped, 1);
            assert_eq!((receipt.rows_read, receipt.users_written), (6, 3));
        }
    }

    #[test]
    fn a_broken_row_in_a_later_batch_fails_the_run_and_writes_nothing() {
        let dir = tempfile::tempdir().unwrap();
        let mut text =
            String::from("customer_id,segment_id,tier,is_vip,city,interests,age,optout_segment\n");
        for i in 0..300 {
            text.push_str(&format!("C{i},{},gold,true,Paris,a,30,\n", 1000 + i));
        }
        text.push_str("C300,1,gold\n");
        let input = dir.path().join("late.csv");
        std::fs::write(&input, text).unwrap();
        let mapping = Mapping::load(Path::new(&repo("mappings/bench.toml"))).unwrap();
        let sources = source::resolve(&[input.display().to_string()], None).unwrap();
        let out = dir.path().join("out");
        let tiny = Tuning {
            batch_bytes: 500,
            ..Tuning::default()
        };
        let err = run_tuned(&mapping, &sources, &options(&out), tiny).unwrap_err();
        assert_eq!(
            err.to_string(),
            format!(
                "{}: line 302: 3 fields where the header has 8; check the delimiter and quoting",
                input.display()
            )
        );
        assert!(!out.exists());
    }

    #[test]
    fn parquet_ndjson_and_gzip_batches_give_the_same_output() {
        let mapping = Mapping::load(Path::new(&repo("mappings/crm.toml"))).unwrap();
        // A gzipped CSV is decoded into memory and cut there.
        let dir = tempfile::tempdir().unwrap();
        let gz = dir.path().join("crm.csv.gz");
        let mut enc = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::fast());
        std::io::Write::write_all(&mut enc, &std::fs::read(repo("examples/crm.csv")).unwrap())
            .unwrap();
        std::fs::write(&gz, enc.finish().unwrap()).unwrap();
        let gz = gz.display().to_string();
        for example in ["examples/crm.parquet", "examples/crm.ndjson", &gz] {
            let inputs = [repo(example)];
            let whole = convert(&mapping, &inputs, Tuning::default());
            assert!(!whole.0.is_empty());
            assert_eq!(whole, convert(&mapping, &inputs, TINY), "{example}");
            // Parquet batches of 2 rows, then cut to 1 (wider than `batch_bytes`).
            let fitted = Tuning {
                batch_rows: 2,
                batch_bytes: 1,
                ..Tuning::default()
            };
            assert_eq!(whole, convert(&mapping, &inputs, fitted), "{example}");
        }
    }

    /// Flat NDJSON, read from simd-json's tape rather than by Polars' reader, converts to
    /// the same files and receipt as the same rows in CSV, in one batch and in one-line
    /// batches: keys in any order, nulls, a missing key, whole numbers in a decimal column,
    /// a nested value no rule reads, a blank line.
    #[test]
    fn flat_ndjson_converts_like_the_same_csv() {
        let dir = tempfile::tempdir().unwrap();
        let csv = dir.path().join("in.csv");
        std::fs::write(
            &csv,
            "id,seg,tier,vip,score\nu1,11,gold,true,1.5\nu2,12,,false,2\nu1,13,silver,true,\nu3,14,gold,,7\n",
        )
        .unwrap();
        let ndjson = dir.path().join("in.ndjson");
        std::fs::write(
            &ndjson,
            concat!(
                r#"{"id":"u1","seg":11,"tier":"gold","vip":true,"score":1.5,"x":{"a":[1]}}"#,
                "\n",
                r#"{"score":2,"vip":false,"tier":null,"seg":12,"id":"u2"}"#,
                "\n\n",
                r#"{"id":"u1","seg":13,"tier":"silver","vip":true,"score":null}"#,
                "\n",
                r#"{"id":"u3","seg":14,"tier":"gold","score":7}"#,
                "\n",
            ),
        )
        .unwrap();
        let mapping = Mapping::parse(
            "[output]\ndpid = 21\ngzip = false\n[user_id]\ncolumn = \"id\"\ntype = \"dpuuid\"\n\
             [[traits]]\ntype = \"trait_ids\"\ncolumn = \"seg\"\n\
             [[traits]]\ntype = \"value_map\"\ncolumn = \"tier\"\nvalues = { gold = 101, silver = 102 }\n\
             [[traits]]\ntype = \"flag\"\ncolumn = \"vip\"\ntrait_id = 200\n\
             [[traits]]\ntype = \"condition\"\nwhen = \"score > 1.6\"\ntrait_id = 300\n",
        )
        .unwrap_or_else(|p| panic!("{p:?}"));
        let from_csv = convert(&mapping, &[csv.display().to_string()], Tuning::default());
        let lines = String::from_utf8(from_csv.0[0].1.clone()).unwrap();
        assert_eq!(
            lines,
            "u1\td_sid=11,d_sid=13,d_sid=101,d_sid=102,d_sid=200\nu2\td_sid=12,d_sid=300\nu3\td_sid=14,d_sid=101,d_sid=300\n"
        );
        for tuning in [Tuning::default(), TINY] {
            let from_ndjson = convert(&mapping, &[ndjson.display().to_string()], tuning);
            assert_eq!((&from_ndjson.0, &from_ndjson.1), (&from_csv.0, &from_csv.1));
        }
    }

    /// Converts `csv` with `mapping` (gzip off) in one batch and in TINY ones, checks that
    /// both give the same files, receipt and rejects, and returns the lines and receipt.
    fn converts_alike(mapping: &str, csv: &str) -> (String, Receipt) {
        let dir = tempfile::tempdir().unwrap();
        let input = dir.path().join("in.csv");
        std::fs::write(&input, csv).unwrap();
        let mapping = Mapping::parse(&format!("[output]\ndpid = 21\ngzip = false\n{mapping}"))
            .unwrap_or_else(|p| panic!("{p:?}"));
        let inputs = [input.display().to_string()];
        let whole = convert(&mapping, &inputs, Tuning::default());
        assert_eq!(whole, convert(&mapping, &inputs, TINY), "{mapping:?}");
        let lines = whole
            .0
            .iter()
            .map(|(_, bytes)| String::from_utf8(bytes.clone()).unwrap())
            .collect();
        (lines, whole.1)
    }

    #[test]
    fn remove_when_and_value_map_removals_do_not_depend_on_batches() {
        let mut csv = String::from("id,seg,status,tier\n");
        for i in 0..120u32 {
            let status = ["active", "churned", "", "paused"][i as usize % 4];
            let tier = ["Gold", "silver", "GOLD", "bronze", "tin"][i as usize % 5];
            let _ = writeln!(csv, "u{},{},{status},{tier}", i % 7, 100 + i % 3);
        }
        let (lines, receipt) = converts_alike(
            "[user_id]\ncolumn = \"id\"\ntype = \"dpuuid\"\n\
             [[traits]]\ntype = \"trait_ids\"\ncolumn = \"seg\"\nremove_when = \"status <> 'active'\"\nremoval = \"zero\"\n\
             [[traits]]\ntype = \"value_map\"\ncolumn = \"tier\"\nignore_case = true\nunmapped = \"skip\"\n\
             values = { gold = [1, 2], silver = 2 }\nremoves = { silver = 1, bronze = [1, 2] }\n",
            &csv,
        );
        // Rows 0..120: status cycles over 4 and users over 7, so every user has rows of
        // each status; segment i % 3 with status i % 4.
        assert!(lines.starts_with("u0\t"), "{lines}");
        assert_eq!(lines.lines().count(), 7);
        // Each (status, tier) is counted: NULL statuses add (30 rows), "tin" is skipped.
        assert_eq!(receipt.null_conditions["traits[0].remove_when"], 30);
        assert_eq!(receipt.values_skipped, 24);
        assert_eq!(receipt.top_unmapped("traits[1]", 5), [("tin", 24)]);
        // Every user had an active row of each segment and an inactive one: the addition
        // wins, as for any add and remove of one trait in one run.
        assert!(receipt.conflicts > 0);
        for line in lines.lines() {
            assert!(line.contains("d_sid=100,d_sid=101,d_sid=102"), "{line}");
        }
    }

    #[test]
    fn a_user_id_falls_back_to_the_next_column_and_takes_its_template() {
        let mut csv = String::from("crm,legacy,seg\n");
        for i in 0..60u32 {
            let crm = match i % 3 {
                0 => format!("C{}", i % 5),
                1 => " ".to_owned(),
                _ => String::new(),
            };
            let legacy = if i % 6 == 5 {
                String::new()
            } else {
                format!("L{}", i % 4)
            };
            let _ = writeln!(csv, "{crm},{legacy},{}", i % 2);
        }
        let (lines, receipt) = converts_alike(
            "[user_id]\ncolumn = [\"crm\", \"legacy\"]\ntype = \"dpuuid\"\ntrim = true\n\
             template = \"eu-{id}\"\n[[traits]]\ntype = \"trait_ids\"\ncolumn = \"seg\"\n",
            &csv,
        );
        let ids: Vec<&str> = lines
            .lines()
            .map(|l| l.split('\t').next().unwrap())
            .collect();
        assert_eq!(
            ids,
            ["eu-C0", "eu-C1", "eu-C2", "eu-C3", "eu-C4", "eu-L0", "eu-L1", "eu-L2", "eu-L3"]
        );
        // Rows 5, 11, ...: no CRM ID (i % 3 == 2) and no legacy ID (i % 6 == 5): rejected
        // as empty, not given the template.
        assert_eq!(receipt.rows_rejected, 10);
        assert_eq!(receipt.rejected_by_reason["missing-user-id"], 10);
    }

    #[test]
    fn conditions_see_the_run_date_of_the_timestamp() {
        // The run is at 1700000000: 2023-11-14 22:13:20 UTC.
        let csv = "id,bought,seen\n\
                   u1,2023-11-14,2023-11-14 22:13:19\n\
                   u2,2023-10-15,2023-11-14 22:13:21\n\
                   u3,2023-10-14,2023-01-01 00:00:00\n\
                   u4,,\n";
        let (lines, receipt) = converts_alike(
            "[user_id]\ncolumn = \"id\"\ntype = \"dpuuid\"\n\
             [[traits]]\ntype = \"condition\"\ntrait_id = 30\nremove_when_false = true\n\
             when = \"STRPTIME(bought, '%Y-%m-%d') >= {run_date} - INTERVAL '30 days'\"\n\
             [[traits]]\ntype = \"condition\"\ntrait_id = 1\n\
             when = \"STRPTIME(seen, '%Y-%m-%d %H:%M:%S') < {run_time}\"\n",
            csv,
        );
        assert_eq!(
            lines,
            "u1\td_sid=1,d_sid=30\nu2\td_sid=30\nu3\td_sid=1,d_unsid=30\n"
        );
        assert_eq!(receipt.null_conditions["traits[0]"], 1);
    }

    #[test]
    fn attribute_tables_and_shaped_values_do_not_depend_on_batches() {
        let mut csv = String::from("id,attr,val,age,code\n");
        for i in 0..90u32 {
            let attr = ["tier", "opt_in", "secret", "", "bad key"][i as usize % 5];
            let val = ["Gold", "Y", "x", "N", "SILVER", "12"][i as usize % 6];
            let age = if i % 11 == 0 {
                "n/a".to_owned()
            } else {
                (i % 80).to_string()
            };
            let code = if i % 9 == 0 { "none" } else { "seg_7-x" };
            let _ = writeln!(csv, "u{},{attr},{val},{age},{code}", i % 8);
        }
        let (lines, receipt) = converts_alike(
            "[user_id]\ncolumn = \"id\"\ntype = \"dpuuid\"\n\
             [[traits]]\ntype = \"key_value\"\ncolumn = \"val\"\nkey_column = \"attr\"\n\
             map = { Y = \"yes\" }\ncase = \"lower\"\nprefix = \"v_\"\n\
             [[traits]]\ntype = \"key_value\"\ncolumn = \"age\"\nkey = \"band\"\nbuckets = [18, 40]\n\
             [[traits]]\ntype = \"trait_ids\"\ncolumn = \"code\"\npattern = \"_(\\\\d+)-\"\n",
            &csv,
        );
        // Rows without a key (18) are skipped and counted.
        assert_eq!(receipt.top_keys_skipped("traits[0]", 5), [("", 18)]);
        // "bad key" cannot be sent (18 rows), "n/a" is not an age (9 rows, 1 of them
        // already rejected for its key), "none" has no ID (10 rows, 3 of them already
        // rejected): each row once, with its first reason.
        assert_eq!(receipt.rejected_by_reason["invalid-signal-key"], 18);
        assert_eq!(receipt.rejected_by_reason["invalid-signal-value"], 8);
        assert_eq!(receipt.rejected_by_reason["invalid-trait-id"], 7);
        let u1 = lines.lines().find(|l| l.starts_with("u1\t")).unwrap();
        // u1's rows (i = 1, 9, ..., 89), worked out by hand: "bad key" rows (9, 49, 89),
        // the "n/a" age (33) and the code "none" (81) are rejected whole; 73 has no key.
        assert_eq!(
            u1,
            "u1\td_sid=7,band=18-39,band=\"40+\",band=\"<18\",opt_in=v_12,opt_in=v_yes,\
             secret=v_12,secret=v_n,tier=v_12,tier=v_yes"
        );
        assert!(
            lines.contains("secret=v_") && !lines.contains("=v_Y"),
            "{lines}"
        );
        for band in ["band=\"<18\"", "band=18-39", "band=\"40+\""] {
            assert!(lines.contains(band), "{band}: {lines}");
        }
    }

    #[test]
    fn the_latest_row_wins_over_batches_and_spills() {
        // A history export: each user's rows in shuffled time order, some without a date
        // (older than any), one tie.
        let mut csv = String::from("id,tier,status,seg,at\n");
        for i in 0..200u32 {
            let user = i % 9;
            let day = (i * 37) % 200;
            let at = if i % 13 == 0 {
                String::new()
            } else {
                format!("2023-{:02}-{:02}", 1 + day / 28, 1 + day % 28)
            };
            let tier = ["gold", "silver", "bronze"][(i as usize / 9) % 3];
            let status = ["active", "churned"][(i as usize / 5) % 2];
            let _ = writeln!(csv, "u{user},{tier},{status},{},{at}", 10 + i % 4);
        }
        let mapping = "[user_id]\ncolumn = \"id\"\ntype = \"dpuuid\"\nlatest_by = \"at\"\n\
             [[traits]]\ntype = \"value_map\"\ncolumn = \"tier\"\nvalues = { gold = 1, silver = 2, bronze = 3 }\n\
             [[traits]]\ntype = \"trait_ids\"\ncolumn = \"seg\"\nremove_when = \"status <> 'active'\"\n";
        let (lines, _) = converts_alike(mapping, &csv);
        // The expected lines, computed row by row: each user's latest rows (by `at`, empty
        // first), then their tier and their segment added or removed.
        // User -> (latest `at`, its rows' (tier, status, seg)).
        type Rows = Vec<(String, String, String)>;
        let mut latest: std::collections::BTreeMap<String, (String, Rows)> = Default::default();
        for line in csv.lines().skip(1) {
            let f: Vec<&str> = line.split(',').collect();
            let row = (f[1].to_owned(), f[2].to_owned(), f[3].to_owned());
            let entry = latest
                .entry(f[0].to_owned())
                .or_insert_with(|| (f[4].to_owned(), Vec::new()));
            if f[4] > entry.0.as_str() {
                *entry = (f[4].to_owned(), vec![row]);
            } else if f[4] == entry.0 {
                entry.1.push(row);
            }
        }
        let mut expected = String::new();
        for (user, (_, rows)) in &latest {
            let mut traits = std::collections::BTreeSet::new();
            let mut removed = std::collections::BTreeSet::new();
            for (tier, status, seg) in rows {
                let t = match tier.as_str() {
                    "gold" => 1,
                    "silver" => 2,
                    _ => 3,
                };
                traits.insert(t);
                let seg: u32 = seg.parse().unwrap();
                if status == "active" {
                    traits.insert(seg);
                } else {
                    removed.insert(seg);
                }
            }
            let removed: Vec<String> = removed
                .difference(&traits)
                .map(|s| format!("d_unsid={s}"))
                .collect();
            let added: Vec<String> = traits.iter().map(|t| format!("d_sid={t}")).collect();
            let _ = writeln!(
                expected,
                "{user}\t{}",
                added
                    .into_iter()
                    .chain(removed)
                    .collect::<Vec<_>>()
                    .join(",")
            );
        }
        assert_eq!(lines, expected);
        assert!(lines.lines().any(|l| l.contains("d_unsid")), "{lines}");
        // Not the union of every row: each user has rows of every tier.
        assert!(!lines.contains("d_sid=1,d_sid=2,d_sid=3"), "{lines}");
    }
}
