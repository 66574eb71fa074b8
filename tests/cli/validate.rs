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
    let generated = ["L003", "L009", "U002", "U007", "F009", "F010", "F014"];
    for rule in aam_etl::validate::Rule::ALL {
        let (code, name) = (rule.code(), rule.name());
        // The trait-list rules need --traits: tests/cli/taxonomy.rs triggers each.
        if generated.contains(&code) || code.starts_with('X') {
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
            "a/ftp_dpm_21_1700000000.sync:1: error L003 line is 102413 bytes without its line break, over the 102400-byte limit; AAM drops it",
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

/// Adobe's three published sample files, byte for byte (the overwrite sample has CRLF line
/// ends, an empty element on its last line and no final line break; the ID-sync samples end
/// in blank lines): accepted, with warnings only.
#[test]
fn adobes_sample_files_validate_with_warnings_only() {
    let w = Workdir::new();
    let r = w.run_in(&validate_dir(), &["validate", "--strict", "adobe"]);
    assert_eq!(r.code, 0, "{}", r.stdout);
    assert!(!r.stdout.contains(": error "), "{}", r.stdout);
    assert_golden("validate/adobe.txt", &r.stdout);
}

/// A line is measured without its break: exactly 102,400 bytes is ambiguous (a warning),
/// one more is an error; a last line without a break is not counted one byte longer; and the
/// writer's own lines stay under the limit (see `wrap_user`).
#[test]
fn the_line_limit_is_measured_without_the_line_break() {
    let w = Workdir::new();
    let line = |bytes: usize| {
        let head = "u1\td_sid=1,k=";
        format!("{head}{}", "x".repeat(bytes - head.len()))
    };
    let cases = [
        ("at_limit", format!("{}\n", line(102_400)), 0, vec!["L009"]),
        (
            "at_limit_crlf",
            format!("{}\r\n", line(102_400)),
            0,
            vec!["L005", "L009"],
        ),
        ("last_line_no_break", line(102_400), 0, vec!["L009"]),
        ("under", format!("{}\n", line(102_399)), 0, vec![]),
        ("over", format!("{}\n", line(102_401)), 1, vec!["L003"]),
        ("over_no_break", line(102_401), 1, vec!["L003"]),
    ];
    for (case, text, code, rules) in cases {
        w.write(&format!("{case}/ftp_dpm_21_1700000000.sync"), &text);
        let r = w.run(&["validate", case]);
        assert_eq!(r.code, code, "{case}: {}", r.stdout);
        let got: Vec<&str> = r
            .stdout
            .lines()
            .filter(|l| l.contains(": error ") || l.contains(": warning "))
            .map(|l| l.split(' ').nth(2).unwrap())
            .collect();
        assert_eq!(got, rules, "{case}: {}", r.stdout);
    }
    let r = w.run(&["validate", "over_no_break"]);
    assert!(
        r.stdout
            .contains(":1: error L003 line is 102401 bytes without its line break"),
        "{}",
        r.stdout
    );
}

/// The file name's DPID decides the ID type: a company's own IDs may be 38 digits, and a
/// file that mixes shapes gets a warning, not an error.
#[test]
fn thirty_eight_digit_ids_in_a_dpuuid_file_are_ids() {
    let w = Workdir::new();
    w.write(
        "a/ftp_dpm_21_1700000000.sync",
        "59767559181262060060278870901087098252\td_sid=1\nCRM-1\td_sid=2\n",
    );
    let r = w.run(&["validate", "a"]);
    assert_eq!(r.code, 0, "{}", r.stdout);
    assert!(
        r.stdout.contains("a/ftp_dpm_21_1700000000.sync:2: warning U006 mixed ID types: DPUUID here, AAM UUID on line 1; never mix ID types in one file\n"),
        "{}",
        r.stdout
    );
    assert!(
        r.stdout.contains("  records stored          2\n"),
        "{}",
        r.stdout
    );
}

/// `--id-type` must agree with the file name: a device type only with its global DPID.
#[test]
fn an_id_type_that_contradicts_the_file_name_is_an_error() {
    let w = Workdir::new();
    w.write("a/ftp_dpm_21_1700000000.sync", "u1\td_sid=1\n");
    w.write(
        "b/ftp_dpm_20914_21_1700000000.sync",
        "e4fe9bde-caa0-47b6-908d-ffba3fa184f2\td_sid=1\n",
    );
    let r = w.run(&["validate", "--id-type", "vizio", "a"]);
    assert_eq!(r.code, 1, "{}", r.stdout);
    assert!(
        r.stdout.starts_with("a/ftp_dpm_21_1700000000.sync:0: error F014 --id-type vizio contradicts the file name: DPID 21 is the company's own data source (DPUUIDs or AAM UUIDs); vizio files are named ftp_dpm_1171489_<TARGET_DPID>_...\n"),
        "{}",
        r.stdout
    );
    let r = w.run(&["validate", "--id-type", "idfa", "b"]);
    assert_eq!(r.code, 1, "{}", r.stdout);
    assert!(
        r.stdout.starts_with("b/ftp_dpm_20914_21_1700000000.sync:0: error F014 --id-type idfa contradicts the file name: DPID 20914 is the global gaid data source; idfa files are named ftp_dpm_20915_<TARGET_DPID>_...\n"),
        "{}",
        r.stdout
    );
    // Agreeing types are fine.
    assert_eq!(w.run(&["validate", "--id-type", "gaid", "b"]).code, 0);
    assert_eq!(w.run(&["validate", "--id-type", "dpuuid", "a"]).code, 0);
}
