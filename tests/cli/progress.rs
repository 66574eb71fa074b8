//! Progress on stderr: a line redrawn in place on a terminal, JSON lines on request, and
//! nothing at all when stderr is not a terminal (a log file, a scheduler's pipe).

use crate::harness::{example, mapping, Workdir};

const TS: &str = "1700000000";

/// A segment export big enough that a run lasts several ticks of the display.
fn big_export(w: &Workdir) -> String {
    let mut text = String::from("user_id,segment_id,added\n");
    for i in 0..150_000u32 {
        text.push_str(&format!("u-{},{},2026-11-01\n", i % 40_000, 5000 + i % 17));
    }
    w.write("segments.csv", text)
}

#[test]
fn stderr_that_is_not_a_terminal_gets_no_progress() {
    let w = Workdir::new();
    let input = big_export(&w);
    let r = w.run(&[
        "--mapping",
        &mapping("segments.toml"),
        &input,
        "--timestamp",
        TS,
    ]);
    assert_eq!(r.code, 0, "{}", r.stderr);
    assert_eq!(r.stderr, "", "no progress, no escape codes");
    assert!(
        r.stdout.contains("rows read                 150000"),
        "{}",
        r.stdout
    );
}

#[test]
fn progress_json_writes_a_line_per_phase_and_leaves_stdout_alone() {
    let w = Workdir::new();
    let args = [
        "--mapping",
        &mapping("crm.toml"),
        &example("crm.csv"),
        "--timestamp",
        TS,
    ];
    let plain = w.run(&args);
    let mut with_json = args.to_vec();
    with_json.extend(["--progress", "json", "--force"]);
    let r = w.run(&with_json);
    assert_eq!(r.code, 0, "{}", r.stderr);
    assert_eq!(r.stdout, plain.stdout);
    let lines: Vec<serde_json::Value> = r
        .stderr
        .lines()
        .map(|l| serde_json::from_str(l).unwrap_or_else(|e| panic!("{e}: {l}")))
        .collect();
    let mut phases: Vec<&str> = lines.iter().map(|l| l["phase"].as_str().unwrap()).collect();
    phases.dedup();
    assert_eq!(phases, ["reading", "sorting", "writing", "done"]);
    let reading = &lines[0];
    assert_eq!(reading["unit"], "bytes");
    let size = std::fs::metadata(example("crm.csv")).unwrap().len();
    assert_eq!(reading["total"], size);
    let writing = lines.iter().find(|l| l["phase"] == "writing").unwrap();
    assert_eq!(
        (&writing["unit"], &writing["total"]),
        (&"rows".into(), &6.into())
    );
    assert_eq!(lines.last().unwrap()["rows_read"], 6);
}

#[test]
fn quiet_prints_nothing_but_writes_the_delivery() {
    let w = Workdir::new();
    let r = w.run(&[
        "--mapping",
        &mapping("crm.toml"),
        &example("crm.csv"),
        "--timestamp",
        TS,
        "-q",
    ]);
    assert_eq!(r.code, 0, "{}", r.stderr);
    assert_eq!((r.stdout.as_str(), r.stderr.as_str()), ("", ""));
    assert_eq!(w.files("out").len(), 1);
}

#[test]
fn a_terminal_gets_a_line_redrawn_in_place_and_cleared_at_the_end() {
    // `script` (util-linux) runs the binary with a pseudo-terminal as its stderr.
    let w = Workdir::new();
    let input = big_export(&w);
    let command = format!(
        "{} --mapping {} {input} --timestamp {TS} --out {}",
        env!("CARGO_BIN_EXE_aam-etl"),
        mapping("segments.toml"),
        w.path("out").display()
    );
    let out = std::process::Command::new("script")
        .args(["-qec", &command, "/dev/null"])
        .current_dir(w.dir.path())
        .output()
        .expect("script (util-linux) runs");
    assert!(out.status.success(), "{out:?}");
    let text = String::from_utf8_lossy(&out.stdout);
    let redraw = "\r\x1b[2K";
    assert!(text.starts_with(redraw), "{text:?}");
    let shown: Vec<&str> = text.split(redraw).filter(|s| !s.is_empty()).collect();
    assert!(
        shown
            .iter()
            .any(|s| s.starts_with("reading ") && s.contains(" of ")),
        "{shown:?}"
    );
    // The last redraw clears the line; the summary follows on a clean line.
    assert!(shown.last().unwrap().starts_with("files read"), "{shown:?}");
}
