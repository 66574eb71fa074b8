//! A run is a transaction: what a scheduler sees (exit code, files in the output folder)
//! matches what was published, whatever stops the run (a signal, a kill, a failed rename,
//! an unwritable report, a second run).

use crate::harness::{fixture, Workdir};
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

const TS: &str = "1700000000";

/// A mapping over `id,seg` with pipe-separated trait IDs, and extra `[output]` lines.
fn mapping(w: &Workdir, output_extra: &str) -> String {
    w.write(
        "m.toml",
        format!(
            "[output]\ndpid = 21\n{output_extra}\n[user_id]\ncolumn = \"id\"\ntype = \"dpuuid\"\n\
             [[traits]]\ntype = \"trait_ids\"\ncolumn = \"seg\"\nsplit = \"|\"\n"
        ),
    )
}

/// `users` users with `traits` trait IDs each.
fn export(w: &Workdir, users: usize, traits: usize) -> String {
    let segs: Vec<String> = (0..traits).map(|t| (1000 + t).to_string()).collect();
    let segs = segs.join("|");
    let mut csv = String::from("id,seg\n");
    for u in 0..users {
        csv.push_str(&format!("user-{u:07},{segs}\n"));
    }
    w.write("in.csv", csv)
}

fn names(dir: &Path) -> Vec<String> {
    let mut n: Vec<String> = std::fs::read_dir(dir)
        .map(|entries| {
            entries
                .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
                .collect()
        })
        .unwrap_or_default();
    n.sort();
    n
}

#[test]
fn force_replaces_the_whole_earlier_delivery() {
    let w = Workdir::new();
    let input = export(&w, 30, 3);
    let small = mapping(&w, "max_part_bytes = 400\ngzip = false");
    let r = w.run(&["--mapping", &small, &input, "--timestamp", TS]);
    assert_eq!(r.code, 0, "{}", r.stderr);
    let parts = names(&w.path("out"));
    assert_eq!(parts.len(), 4, "{parts:?}");
    // The same timestamp again, now one part: without --force the delivery is named...
    let one = mapping(&w, "");
    let r = w.run(&["--mapping", &one, &input, "--timestamp", TS]);
    assert_eq!(r.code, 2);
    assert_eq!(
        r.stderr,
        "error: out/ftp_dpm_21_1700000000.*: a delivery with this name is already there (4 files: ftp_dpm_21_1700000000.sync.1, ftp_dpm_21_1700000000.sync.2, ftp_dpm_21_1700000000.sync.3, ftp_dpm_21_1700000000.sync.4); pass --force to replace all of it\n"
    );
    assert_eq!(names(&w.path("out")), parts);
    // ...and with --force all four parts go, not only the one whose name is reused.
    let r = w.run(&["--mapping", &one, &input, "--timestamp", TS, "--force"]);
    assert_eq!(r.code, 0, "{}", r.stderr);
    assert_eq!(names(&w.path("out")), ["ftp_dpm_21_1700000000.sync.gz"]);
    let v = w.run(&["validate", "out"]);
    assert_eq!(v.code, 0, "{}", v.stdout);
}

#[test]
fn a_name_in_the_way_of_a_later_part_publishes_nothing() {
    let w = Workdir::new();
    let input = export(&w, 30, 3);
    let m = mapping(&w, "max_part_bytes = 400\ngzip = false");
    // A folder where part 2 goes: no part may be published, part 1 included.
    w.write("out/ftp_dpm_21_1700000000.sync.2/x", "");
    let r = w.run(&["--mapping", &m, &input, "--timestamp", TS, "--force"]);
    assert_eq!(r.code, 2);
    assert_eq!(
        r.stderr,
        "error: out/ftp_dpm_21_1700000000.sync.2: already exists; pass --force to replace it\n"
    );
    assert_eq!(names(&w.path("out")), ["ftp_dpm_21_1700000000.sync.2"]);
}

#[test]
fn an_unwritable_report_or_rejects_path_stops_the_run_before_it_reads() {
    let w = Workdir::new();
    let input = export(&w, 5, 2);
    let m = mapping(&w, "");
    for (flag, path) in [
        ("--report", "/no/such/dir/r.json"),
        ("--rejects", "/no/such/dir/r.csv"),
    ] {
        let r = w.run(&["--mapping", &m, &input, "--timestamp", TS, flag, path]);
        assert_eq!(r.code, 2, "{flag}");
        assert_eq!(
            r.stderr,
            format!("error: {path}: No such file or directory (os error 2)\n"),
            "{flag}"
        );
        assert!(!w.path("out").exists(), "{flag}: nothing published");
    }
    // Written, they are published with the delivery, and no temporary stays beside them.
    let r = w.run(&[
        "--mapping",
        &m,
        &input,
        "--timestamp",
        TS,
        "--report",
        "r.json",
        "--rejects",
        "r.csv",
    ]);
    assert_eq!(r.code, 0, "{}", r.stderr);
    let here = names(&w.path(""));
    assert!(here.contains(&"r.json".to_owned()) && here.contains(&"r.csv".to_owned()));
    assert!(!here.iter().any(|n| n.ends_with(".tmp")), "{here:?}");
    // The next run replaces them (the report and rejects of a run are not its delivery).
    std::fs::write(w.path("r.json"), "old").unwrap();
    let again = [
        "--mapping",
        &m,
        &input,
        "--timestamp",
        TS,
        "--report",
        "r.json",
        "--rejects",
        "r.csv",
        "--force",
    ];
    let r = w.run(&again);
    assert_eq!(r.code, 0, "{}", r.stderr);
    assert!(std::fs::read_to_string(w.path("r.json"))
        .unwrap()
        .contains("\"rows_read\": 5"));
}

#[test]
fn a_second_run_into_a_locked_folder_is_refused_and_a_dead_runs_lock_taken_over() {
    let w = Workdir::new();
    let input = export(&w, 5, 2);
    let m = mapping(&w, "");
    // A live holder: this test process, as another run would hold it.
    let lock_path = w.path("out/.aam-etl.lock");
    w.write(
        "out/.aam-etl.lock",
        "pid=4242 host=build-01 started=1700000000\n",
    );
    let held = std::fs::File::open(&lock_path).unwrap();
    held.lock().unwrap();
    let r = w.run(&["--mapping", &m, &input, "--timestamp", TS]);
    assert_eq!(r.code, 2);
    assert_eq!(
        r.stderr,
        "error: out: the output folder is in use by another aam-etl run (pid=4242 host=build-01 started=1700000000); wait for it to finish\n"
    );
    assert_eq!(names(&w.path("out")), [".aam-etl.lock"]);
    // The holder dies without removing its lock file: the next run takes it over.
    drop(held);
    let r = w.run(&["--mapping", &m, &input, "--timestamp", TS]);
    assert_eq!(r.code, 0, "{}", r.stderr);
    assert_eq!(
        r.stderr,
        "note: out/.aam-etl.lock: took over a lock left by a run that is no longer running (pid=4242 host=build-01 started=1700000000)\n"
    );
    assert_eq!(names(&w.path("out")), ["ftp_dpm_21_1700000000.sync.gz"]);
}

/// Starts a conversion big enough to be stopped while it writes; returns once its first
/// temporary part is on disk (or it has already ended).
fn start_and_wait_for_a_part(w: &Workdir) -> Child {
    let input = export(w, 60_000, 40);
    let m = mapping(w, "");
    let child = Command::new(env!("CARGO_BIN_EXE_aam-etl"))
        .args(["--mapping", &m, &input, "--timestamp", TS])
        .current_dir(w.path(""))
        .env("TMPDIR", w.path("tmp"))
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let started = Instant::now();
    while started.elapsed() < Duration::from_secs(60) {
        if names(&w.path("out")).iter().any(|n| n.ends_with(".tmp")) {
            break;
        }
        std::thread::sleep(Duration::from_millis(1));
    }
    child
}

fn send(child: &Child, signal: &str) {
    let ok = Command::new("kill")
        .args([signal, &child.id().to_string()])
        .status()
        .unwrap()
        .success();
    assert!(ok, "kill {signal}");
}

#[test]
fn every_stop_signal_removes_what_the_run_wrote_and_exits_with_its_code() {
    for (signal, code, name) in [
        ("-TERM", 143, "SIGTERM"),
        ("-HUP", 129, "SIGHUP"),
        ("-INT", 130, "SIGINT (Ctrl-C)"),
    ] {
        let w = Workdir::new();
        std::fs::create_dir(w.path("tmp")).unwrap();
        let child = start_and_wait_for_a_part(&w);
        send(&child, signal);
        let out = child.wait_with_output().unwrap();
        assert_eq!(out.status.code(), Some(code), "{signal}");
        assert_eq!(
            String::from_utf8_lossy(&out.stderr),
            format!("error: stopped by {name}: nothing was published and the temporary files were removed\n")
        );
        assert!(
            !w.path("out").exists(),
            "{signal}: {:?}",
            names(&w.path("out"))
        );
        assert_eq!(names(&w.path("tmp")), Vec::<String>::new(), "{signal}");
    }
}

#[test]
fn after_kill_9_the_next_run_removes_the_leftovers_and_says_so() {
    let w = Workdir::new();
    std::fs::create_dir(w.path("tmp")).unwrap();
    let mut child = start_and_wait_for_a_part(&w);
    send(&child, "-KILL");
    child.wait().unwrap();
    // What a killed run that had spilled leaves in TMPDIR: nobody holds its mark. (This one
    // had not spilled: its export fits the sort's memory.)
    w.write("tmp/aam-etl-Ab12Cd/in-use", "");
    w.write("tmp/aam-etl-Ab12Cd/run0", "0123456789");
    let left = names(&w.path("out"));
    assert!(left.contains(&".aam-etl.lock".to_owned()), "{left:?}");
    let temps: Vec<&String> = left.iter().filter(|n| n.ends_with(".tmp")).collect();
    assert!(!temps.is_empty(), "{left:?}");
    let r = Command::new(env!("CARGO_BIN_EXE_aam-etl"))
        .args(["--mapping", "m.toml", "in.csv", "--timestamp", TS])
        .current_dir(w.path(""))
        .env("TMPDIR", w.path("tmp"))
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&r.stderr);
    assert_eq!(r.status.code(), Some(0), "{stderr}");
    let mut expected = vec![format!(
        "note: {}: removed a spill folder left by an earlier run that was stopped (10 bytes)",
        w.path("tmp/aam-etl-Ab12Cd").display()
    )];
    expected.push(
        "note: out/.aam-etl.lock: took over a lock left by a run that is no longer running"
            .to_owned(),
    );
    for t in &temps {
        expected.push(format!(
            "note: out/{t}: removed a temporary file left by an earlier run that was stopped"
        ));
    }
    let notes: Vec<&str> = stderr.lines().collect();
    assert_eq!(notes.len(), expected.len(), "{stderr}");
    for (note, want) in notes.iter().zip(&expected) {
        assert!(note.starts_with(want.as_str()), "{note}\nwanted: {want}");
    }
    assert_eq!(names(&w.path("out")), ["ftp_dpm_21_1700000000.sync.gz"]);
    assert_eq!(names(&w.path("tmp")), Vec::<String>::new());
}

#[test]
fn validate_reports_the_leftovers_of_a_killed_run() {
    let w = Workdir::new();
    let m = fixture("bad/ok.toml");
    let r = w.run(&["--mapping", &m, &fixture("bad/ok.csv"), "--timestamp", TS]);
    assert_eq!(r.code, 0, "{}", r.stderr);
    w.write("out/.ftp_dpm_21_1700000000.sync.gz.4242.tmp", "half a part");
    let v = w.run(&["validate", "out"]);
    assert_eq!(v.code, 1);
    assert!(
        v.stdout.starts_with("out/.ftp_dpm_21_1700000000.sync.gz.4242.tmp:0: error F011 temporary file of an aam-etl run (for ftp_dpm_21_1700000000.sync.gz) that is still writing or was stopped; it is not part of a delivery\n"),
        "{}",
        v.stdout
    );
}
