//! The main job: export + mapping -> inbound files.

use crate::harness::{assert_golden, example, fixture, mapping, Workdir};

const TS: &str = "1700000000";

#[test]
fn readme_example_command_converts_the_bundled_export() {
    let w = Workdir::new();
    let r = w.run(&[
        "--mapping",
        &mapping("crm.toml"),
        &example("crm.csv"),
        "--timestamp",
        TS,
    ]);
    assert_eq!(r.code, 0, "{}", r.stderr);
    assert_golden(
        "crm.stdout",
        &r.stdout
            .replace(&w.path("").display().to_string(), "<tmp>/"),
    );
    assert_golden("crm.out", &w.output_text("out"));
}

/// The bundled export as Arrow IPC and as gzip-compressed CSV and NDJSON, made here.
fn derived_inputs(w: &Workdir) -> Vec<String> {
    use flate2::{write::GzEncoder, Compression};
    use polars::prelude::*;
    use std::io::Write;
    let mut df = ParquetReader::new(std::fs::File::open(example("crm.parquet")).unwrap())
        .finish()
        .unwrap();
    let ipc = w.path("crm.arrow");
    IpcWriter::new(std::fs::File::create(&ipc).unwrap())
        .finish(&mut df)
        .unwrap();
    let mut paths = vec![ipc.display().to_string()];
    for name in ["crm.csv", "crm.ndjson"] {
        let gz = w.path(&format!("{name}.gz"));
        let mut enc = GzEncoder::new(std::fs::File::create(&gz).unwrap(), Compression::fast());
        enc.write_all(&std::fs::read(example(name)).unwrap())
            .unwrap();
        enc.finish().unwrap();
        paths.push(gz.display().to_string());
    }
    paths
}

#[test]
fn same_export_in_every_format_gives_identical_bytes() {
    let inputs_dir = Workdir::new();
    let mut inputs: Vec<String> = ["crm.csv", "crm.parquet", "crm.ndjson"]
        .iter()
        .map(|n| example(n))
        .collect();
    inputs.extend(derived_inputs(&inputs_dir));
    assert_eq!(inputs.len(), 6);
    let mut outputs = Vec::new();
    for input in &inputs {
        let w = Workdir::new();
        let r = w.run(&["--mapping", &mapping("crm.toml"), input, "--timestamp", TS]);
        assert_eq!(r.code, 0, "{input}: {}", r.stderr);
        outputs.push((input, w.files("out")));
    }
    assert_eq!(outputs[0].1.len(), 1);
    for (input, files) in &outputs[1..] {
        assert_eq!(files, &outputs[0].1, "{input} differs from crm.csv");
    }
}

/// Blank lines in a CSV (after the header, between rows, at the end; LF and CRLF) are not
/// rows: the run reads, rejects and writes exactly what it does without them, and a
/// rejected row keeps its record number.
#[test]
fn blank_lines_in_a_csv_are_not_rows() {
    let text = std::fs::read_to_string(example("crm.csv")).unwrap();
    let mut lines: Vec<&str> = text.lines().collect();
    lines.push("CRM-0009,x@example.com,not-a-number,,gold,true,Rome,,1");
    let clean = lines.join("\n") + "\n";
    let blank = format!(
        "{}\n\n{}\r\n\r\n{}\n\n\n",
        lines[0],
        lines[1..4].join("\n"),
        lines[4..].join("\r\n")
    );
    let run = |text: &str| {
        let w = Workdir::new();
        let input = w.write("crm.csv", text);
        let args = ["--mapping", &mapping("crm.toml"), &input, "--timestamp", TS];
        let r = w.run(
            &[
                &args[..],
                &["--rejects", "rejects.csv", "--max-reject-rate", "50"],
            ]
            .concat(),
        );
        assert_eq!(r.code, 0, "{}", r.stderr);
        let tmp = |text: &str| text.replace(&w.path("").display().to_string(), "<tmp>/");
        let rejects = std::fs::read_to_string(w.path("rejects.csv")).unwrap();
        (tmp(&r.stdout), tmp(&rejects), w.files("out"))
    };
    let (clean, blank) = (run(&clean), run(&blank));
    assert!(
        clean.0.contains("rows read                 7\n"),
        "{}",
        clean.0
    );
    assert!(
        clean
            .1
            .contains("<tmp>/crm.csv,7,CRM-0009,invalid-trait-id,"),
        "{}",
        clean.1
    );
    assert_eq!(blank, clean);
}

/// A CSV without a header row: its columns are `column_1`, `column_2`, ..., its first row is
/// data, and a blank last line is not a row.
#[test]
fn a_csv_without_a_header_names_its_columns_by_position() {
    let w = Workdir::new();
    let input = w.write("in.csv", "u1,gold\nu2,silver\nu1,bronze\n\n");
    let m = w.write(
        "m.toml",
        "[input]\nhas_header = false\n[output]\ndpid = 21\ngzip = false\n[user_id]\ncolumn = \"column_1\"\ntype = \"dpuuid\"\n[[traits]]\ntype = \"value_map\"\ncolumn = \"column_2\"\nvalues = { gold = 1, silver = 2, bronze = 3 }\n",
    );
    let r = w.run(&["--mapping", &m, &input, "--timestamp", TS]);
    assert_eq!(r.code, 0, "{}", r.stderr);
    assert!(
        r.stdout.contains("rows read                 3\n"),
        "{}",
        r.stdout
    );
    assert_eq!(
        w.output_text("out"),
        "== ftp_dpm_21_1700000000.sync\nu1\td_sid=1,d_sid=3\nu2\td_sid=2\n"
    );
}

/// Every template in mappings/ converts its example; a new template without an entry here
/// fails the test.
#[test]
fn every_mapping_template_converts_its_example() {
    let cases = crate::harness::TEMPLATES;
    let mut templates: Vec<String> = std::fs::read_dir(crate::harness::repo().join("mappings"))
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .filter(|n| n.ends_with(".toml"))
        .collect();
    templates.sort();
    let covered: Vec<&str> = cases.iter().map(|(m, _)| *m).collect();
    assert_eq!(templates, covered, "every template needs an example here");
    for (m, input) in cases {
        let w = Workdir::new();
        let r = w.run(&["--mapping", &mapping(m), &example(input), "--timestamp", TS]);
        assert_eq!(r.code, 0, "{m}: {}", r.stderr);
        assert_eq!(r.stderr, "", "{m} prints no warning");
        assert_golden(
            &format!("templates/{}.out", m.trim_end_matches(".toml")),
            &w.output_text("out"),
        );
    }
}

/// SPEC's documented examples, rebuilt from equivalent CSV sources, one file per ID type.
#[test]
fn spec_documented_examples_are_rebuilt() {
    for case in [
        "sid_unsid",
        "removals",
        "ic",
        "kv_gaid",
        "kv_idfa",
        "kv_aam",
    ] {
        let w = Workdir::new();
        let r = w.run(&[
            "--mapping",
            &fixture(&format!("spec/{case}.toml")),
            &fixture(&format!("spec/{case}.csv")),
            "--timestamp",
            TS,
        ]);
        assert_eq!(r.code, 0, "{case}: {}", r.stderr);
        assert_golden(&format!("spec/{case}.out"), &w.output_text("out"));
    }
}

/// A mapping for generated sources: `id` -> dpuuid, `seg` pipe-separated trait IDs,
/// `kv` pipe-separated `v=` signals; extra [output] lines appended.
fn generated_mapping(w: &Workdir, output_extra: &str) -> String {
    w.write(
        "m.toml",
        format!(
            "[output]\ndpid = 21\n{output_extra}\n[user_id]\ncolumn = \"id\"\ntype = \"dpuuid\"\n\
             [[traits]]\ntype = \"trait_ids\"\ncolumn = \"seg\"\nsplit = \"|\"\n\
             [[traits]]\ntype = \"key_value\"\ncolumn = \"kv\"\nkey = \"v\"\nsplit = \"|\"\n"
        ),
    )
}

#[test]
fn parts_split_by_size_with_numbered_names_and_whole_users() {
    let w = Workdir::new();
    let m = generated_mapping(&w, "max_part_bytes = 100\ngzip = false");
    let mut csv = String::from("id,seg,kv\n");
    for u in 0..10 {
        // Each user's line: "user-0N\td_sid=1000N,d_sid=2000N\n" = 31 bytes; 3 fit in 100.
        csv.push_str(&format!("user-0{u},1000{u}|2000{u},\n"));
    }
    let input = w.write("in.csv", csv);
    let r = w.run(&["--mapping", &m, &input, "--timestamp", TS]);
    assert_eq!(r.code, 0, "{}", r.stderr);
    let files = w.files("out");
    let names: Vec<&str> = files.keys().map(String::as_str).collect();
    assert_eq!(
        names,
        [
            "ftp_dpm_21_1700000000.sync.1",
            "ftp_dpm_21_1700000000.sync.2",
            "ftp_dpm_21_1700000000.sync.3",
            "ftp_dpm_21_1700000000.sync.4"
        ]
    );
    let mut all = String::new();
    for (name, bytes) in &files {
        assert!(bytes.len() <= 100, "{name} is {} bytes", bytes.len());
        all.push_str(std::str::from_utf8(bytes).unwrap());
    }
    let expected: String = (0..10)
        .map(|u| format!("user-0{u}\td_sid=1000{u},d_sid=2000{u}\n"))
        .collect();
    assert_eq!(all, expected, "parts hold every user once, in order");
    assert_golden("split.stdout", &r.stdout);
}

#[test]
fn gzip_level_trades_size_for_time_and_not_the_lines() {
    let w = Workdir::new();
    let mut csv = String::from("id,seg,kv\n");
    for u in 0..3000 {
        csv.push_str(&format!(
            "u{u:05},{}|{},city{}\n",
            1000 + u % 37,
            2000 + u % 11,
            u % 7
        ));
    }
    let input = w.write("in.csv", csv);
    // One ordinary gzip member (`GzDecoder` reads only the first), decompressed.
    let run = |level: u8| {
        let m = generated_mapping(&w, &format!("gzip_level = {level}"));
        let out = format!("out{level}");
        let r = w.run(&["--mapping", &m, &input, "--out", &out, "--timestamp", TS]);
        assert_eq!(r.code, 0, "{}", r.stderr);
        let gz = w
            .files(&out)
            .remove("ftp_dpm_21_1700000000.sync.gz")
            .unwrap();
        let mut lines = String::new();
        std::io::Read::read_to_string(&mut flate2::read::GzDecoder::new(&gz[..]), &mut lines)
            .unwrap();
        (gz.len(), lines)
    };
    let (fastest, lines) = run(1);
    let (smallest, same) = run(12);
    assert!(
        lines.starts_with("u00000\td_sid=1000,d_sid=2000,v=city0\n"),
        "{lines}"
    );
    assert_eq!(lines.lines().count(), 3000);
    assert!(
        same == lines,
        "the level changes the bytes on disk, not the lines"
    );
    assert!(
        smallest < fastest,
        "level 12: {smallest} bytes, level 1: {fastest}"
    );
    // Out of range: the key, the range and the default.
    let m = generated_mapping(&w, "gzip_level = 0");
    let r = w.run(&["--mapping", &m, &input, "--timestamp", TS]);
    assert_eq!(r.code, 2, "{}", r.stderr);
    assert!(
        r.stderr
            .contains("output.gzip_level: 0 is out of range: 1 (fastest) to 12 (smallest)"),
        "{}",
        r.stderr
    );
}

#[test]
fn a_long_user_wraps_onto_lines_of_at_most_102400_bytes() {
    let w = Workdir::new();
    let m = generated_mapping(&w, "");
    let segs: Vec<String> = (1_000_000..1_020_000).map(|n| n.to_string()).collect();
    let input = w.write(
        "in.csv",
        format!("id,seg,kv\nbig,{},\nsmall,7,\n", segs.join("|")),
    );
    let r = w.run(&["--mapping", &m, &input, "--timestamp", TS]);
    assert_eq!(r.code, 0, "{}", r.stderr);
    let text = w.output_text("out");
    let lines: Vec<&str> = text.lines().skip(1).collect();
    assert_eq!(lines.len(), 4, "3 lines for `big`, 1 for `small`");
    for (i, l) in lines[..3].iter().enumerate() {
        assert!(l.starts_with("big\td_sid="));
        assert!(l.len() < 102_400, "line of {} bytes plus newline", l.len());
        if i < 2 {
            assert!(
                l.len() + ",d_sid=1000000".len() >= 102_400,
                "full lines are filled"
            );
        }
    }
    let written: Vec<String> = lines[..3]
        .iter()
        .flat_map(|l| l.split_once('\t').unwrap().1.split(','))
        .map(|t| t.trim_start_matches("d_sid=").to_owned())
        .collect();
    assert_eq!(written, segs, "every trait once, in order");
    assert_eq!(lines[3], "small\td_sid=7");
    assert!(
        r.stdout.contains("lines                     4\n"),
        "{}",
        r.stdout
    );
}

#[test]
fn a_user_needing_more_than_200_lines_is_rejected_not_truncated() {
    let w = Workdir::new();
    let m = generated_mapping(&w, "");
    // 201 distinct values of 60,000 bytes: no two fit on one line.
    let values: Vec<String> = (0..201)
        .map(|i| format!("{i:03}{}", "x".repeat(59_997)))
        .collect();
    let mut csv = format!("id,seg,kv\nhuge,,{}\n", values.join("|"));
    for u in 0..99 {
        csv.push_str(&format!("u{u:02},5,\n"));
    }
    let input = w.write("in.csv", csv);
    let r = w.run(&[
        "--mapping",
        &m,
        &input,
        "--timestamp",
        TS,
        "--rejects",
        "rejects.csv",
    ]);
    assert_eq!(
        r.code, 0,
        "1 row of 100 is within the 1% threshold: {}",
        r.stderr
    );
    let text = w.output_text("out");
    assert!(!text.contains("huge"), "the user is left out whole");
    assert_eq!(text.lines().count(), 1 + 99);
    let rejects = std::fs::read_to_string(w.path("rejects.csv")).unwrap();
    assert_eq!(
        rejects.lines().nth(1).unwrap(),
        format!(
            "{input},1,huge,too-many-lines,user's traits need 201 lines; AAM keeps only the first 200 lines of a user per file (1 rows of this user left out)"
        )
    );
    assert!(
        r.stdout.contains("  too-many-lines          1\n"),
        "{}",
        r.stdout
    );
    assert!(
        r.stdout.contains("users rejected            1\n"),
        "{}",
        r.stdout
    );
}

#[test]
fn two_runs_give_the_same_bytes() {
    let runs: Vec<_> = (0..2)
        .map(|_| {
            let w = Workdir::new();
            let r = w.run(&[
                "--mapping",
                &mapping("crm.toml"),
                &example("crm.csv"),
                &example("crm.parquet"),
                "--timestamp",
                TS,
            ]);
            assert_eq!(r.code, 0, "{}", r.stderr);
            w.files("out")
        })
        .collect();
    assert_eq!(runs[0], runs[1]);
}

#[test]
fn several_inputs_and_globs_are_one_export() {
    let w = Workdir::new();
    let m = generated_mapping(&w, "");
    w.write("in/a.csv", "id,seg,kv\nu1,1,\nu2,2,\n");
    w.write("in/b.csv", "id,seg,kv\nu1,3,x\n");
    let r = w.run(&["--mapping", &m, "in/*.csv", "--timestamp", TS]);
    assert_eq!(r.code, 0, "{}", r.stderr);
    assert_eq!(
        w.output_text("out"),
        "== ftp_dpm_21_1700000000.sync.gz\nu1\td_sid=1,d_sid=3,v=x\nu2\td_sid=2\n"
    );
    assert!(
        r.stdout
            .starts_with("files read                2\nrows read                 3\n"),
        "{}",
        r.stdout
    );
}

#[test]
fn existing_output_is_kept_unless_forced() {
    let w = Workdir::new();
    let args = [
        "--mapping",
        &mapping("segments.toml"),
        &example("segments.csv"),
        "--timestamp",
        TS,
    ];
    assert_eq!(w.run(&args).code, 0);
    let name = "out/ftp_dpm_21_1700000000.sync.gz";
    w.write(name, "sentinel");
    let r = w.run(&args);
    assert_eq!(r.code, 2);
    assert_eq!(
        r.stderr,
        "error: out/ftp_dpm_21_1700000000.*: a delivery with this name is already there (1 file: ftp_dpm_21_1700000000.sync.gz); pass --force to replace all of it\n"
    );
    assert_eq!(std::fs::read(w.path(name)).unwrap(), b"sentinel");
    let mut forced = args.to_vec();
    forced.push("--force");
    assert_eq!(w.run(&forced).code, 0);
    assert_ne!(std::fs::read(w.path(name)).unwrap(), b"sentinel");
    let leftovers: Vec<String> = w
        .files("out")
        .into_keys()
        .filter(|n| n.contains(".tmp"))
        .collect();
    assert!(leftovers.is_empty(), "{leftovers:?}");
}

#[test]
fn dry_run_prints_the_plan_and_writes_nothing() {
    let w = Workdir::new();
    let r = w.run(&[
        "--mapping",
        &mapping("devices.toml"),
        &example("devices.ndjson"),
        "--timestamp",
        TS,
        "--dry-run",
    ]);
    assert_eq!(r.code, 0, "{}", r.stderr);
    assert!(!w.path("out").exists());
    assert_golden("dry_run.stdout", &r.stdout);
}

#[test]
fn report_json_carries_the_summary() {
    let w = Workdir::new();
    let r = w.run(&[
        "--mapping",
        &mapping("crm.toml"),
        &example("crm.csv"),
        "--timestamp",
        TS,
        "--report",
        "report.json",
    ]);
    assert_eq!(r.code, 0, "{}", r.stderr);
    assert_golden(
        "crm.report.json",
        &std::fs::read_to_string(w.path("report.json")).unwrap(),
    );
}
