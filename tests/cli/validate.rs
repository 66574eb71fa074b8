//! `aam-etl validate`: every rule triggered by a fixture, the SPEC examples clean, and
//! everything the writer produces clean.

use crate::harness::{assert_golden, example, mapping, repo, Workdir};

fn validate_dir() -> std::path::PathBuf {
    repo().join("tests/fixtures/validate")
}

#[test]
fn spec_examples_validate_clean_and_spaced_ones_only_warn_under_strict() {
    let w = Workdir::new();
    let r = w.run_in(&validate_dir(), &["validate", "ok"]);
    assert_eq!(r.code, 0, "{}", r.stdout);
    assert!(
        !r.stdout.contains(": error ") && !r.stdout.contains(": warning "),
        "{}",
        r.stdout
    );
    assert_golden("validate/ok.txt", &r.stdout);
    let strict = w.run_in(&validate_dir(), &["validate", "--strict", "ok"]);
    assert_eq!(strict.code, 0, "warnings only: {}", strict.stdout);
    let warnings: Vec<&str> = strict
        .stdout
        .lines()
        .filter(|l| l.contains(": warning "))
        .collect();
    assert_eq!(
        warnings,
        [
            "ok/ftp_dpm_20914_21_1700000000.sync:1: warning T007 `product = tablet` has spaces; the compact form is `product=tablet`",
            "ok/ftp_dpm_20914_21_1700000000.sync:1: warning T007 ` product = phone` has spaces; the compact form is `product=phone`",
            "ok/ftp_dpm_20915_21_1700000000.sync:1: warning T007 `\"product\" = \"tablet\"` has spaces; the compact form is `product=tablet`",
            "ok/ftp_dpm_20915_21_1700000000.sync:1: warning T007 ` \"product\" = \"phone\"` has spaces; the compact form is `product=phone`",
        ]
    );
}

#[test]
fn every_rule_is_triggered_by_a_fixture_with_its_line_and_message() {
    let w = Workdir::new();
    let r = w.run_in(&validate_dir(), &["validate", "--strict", "bad"]);
    assert_eq!(r.code, 1, "{}", r.stderr);
    assert_golden("validate/bad.txt", &r.stdout);
    // Rules that need big inputs are pinned by the generated cases below and by unit tests
    // (sizes); every other rule appears in the golden output.
    let generated = ["L003", "U002", "U007", "F009", "F010"];
    for rule in aam_etl::validate::Rule::ALL {
        let (code, name) = (rule.code(), rule.name());
        if generated.contains(&code) {
            continue;
        }
        assert!(
            r.stdout.contains(&format!(" {code} ")),
            "no fixture triggers {code} {name}"
        );
    }
}

#[test]
fn json_output_carries_the_same_diagnostics() {
    let w = Workdir::new();
    let r = w.run_in(
        &validate_dir(),
        &[
            "validate",
            "--format",
            "json",
            "bad/ftp_dpm_21_1700000005.overwrite",
        ],
    );
    assert_eq!(r.code, 0, "warnings only: {}", r.stdout);
    assert_golden("validate/overwrite.json", &r.stdout);
}

#[test]
fn generated_long_lines_too_many_lines_and_aam_uuids() {
    let w = Workdir::new();
    let long = format!("u1\td_sid=1,k={}\n", "x".repeat(102_400));
    let mut many = String::new();
    for i in 0..202 {
        many.push_str(&format!("u2\td_sid={i}\n"));
    }
    // An error on a later line: reports stay in line order (users are counted in batches).
    many.push_str("u3\td_sid=x1\n");
    w.write("a/ftp_dpm_21_1700000000.sync", format!("{long}{many}"));
    let r = w.run(&["validate", "a"]);
    assert_eq!(r.code, 1);
    let diags: Vec<&str> = r
        .stdout
        .lines()
        .filter(|l| l.contains(": error "))
        .collect();
    assert_eq!(
        diags,
        [
            "a/ftp_dpm_21_1700000000.sync:1: error L003 line is 102414 bytes, over the 102400-byte limit; AAM drops it",
            "a/ftp_dpm_21_1700000000.sync:202: error U007 user `u2` has more than 200 lines; AAM keeps the first 200 and drops this and later ones",
            "a/ftp_dpm_21_1700000000.sync:204: error T002 trait ID `x1` is not digits only",
        ]
    );
    assert!(
        r.stdout
            .contains("  records received        204\n  format errors           4\n"),
        "{}",
        r.stdout
    );
    w.write(
        "b/ftp_dpm_21_1700000000.sync",
        "5976755918126206006027887090108709825\td_sid=1\n",
    );
    let r = w.run(&["validate", "--id-type", "aam_uuid", "b"]);
    assert_eq!(r.code, 1);
    assert!(
        r.stdout.starts_with("b/ftp_dpm_21_1700000000.sync:1: error U002 `5976755918126206006027887090108709825` is not an AAM UUID (exactly 38 digits) (aam_uuid)\n"),
        "{}",
        r.stdout
    );
    assert!(
        r.stdout.contains("  invalid AAM IDs         1\n"),
        "{}",
        r.stdout
    );
}

#[test]
fn a_missing_path_cannot_be_read() {
    let w = Workdir::new();
    let r = w.run(&["validate", "nowhere"]);
    assert_eq!(r.code, 2);
    assert_eq!(
        r.stderr,
        "error: nowhere: No such file or directory (os error 2)\n"
    );
}

#[test]
fn everything_the_writer_produces_validates_clean() {
    let cases = crate::harness::TEMPLATES;
    for (m, input) in cases {
        let w = Workdir::new();
        let r = w.run(&[
            "--mapping",
            &mapping(m),
            &example(input),
            "--timestamp",
            "1700000000",
        ]);
        assert_eq!(r.code, 0, "{m}: {}", r.stderr);
        let v = w.run(&["validate", "--strict", "out"]);
        assert_eq!(v.code, 0, "{m}: {}", v.stdout);
        assert!(!v.stdout.contains(": warning "), "{m}: {}", v.stdout);
    }
}

/// `aam-etl validate big/ | head -1`: the reader goes away after one line, and the
/// validator must stop quietly (exit 0, nothing on stderr), in text and in JSON.
#[test]
fn a_closed_pipe_is_not_an_error() {
    use std::io::BufRead;
    use std::process::{Command, Stdio};
    let w = Workdir::new();
    // 20,000 bad lines: far more output than a pipe holds.
    let body: String = (0..20_000).map(|i| format!("u{i}\td_sid=x{i}\n")).collect();
    w.write("big/ftp_dpm_21_1700000000.sync", body);
    for format in ["text", "json"] {
        for attempt in 0..5 {
            let mut child = Command::new(env!("CARGO_BIN_EXE_aam-etl"))
                .args(["validate", "--max-per-rule", "100000", "--format", format])
                .arg(w.path("big"))
                .stdout(Stdio::piped())
                .stderr(Stdio::piped())
                .spawn()
                .unwrap();
            let mut first = String::new();
            std::io::BufReader::new(child.stdout.take().unwrap())
                .read_line(&mut first)
                .unwrap();
            // The reader is dropped here: the pipe closes, as `head -1` closes it.
            let out = child.wait_with_output().unwrap();
            let stderr = String::from_utf8_lossy(&out.stderr);
            assert!(!first.is_empty(), "{format}: no first line");
            assert_eq!(
                (out.status.code(), stderr.as_ref()),
                (Some(0), ""),
                "{format}, attempt {attempt}"
            );
        }
    }
}
