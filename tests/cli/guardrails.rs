//! Bad input gets a clear answer and nothing is lost: one case per defect, each asserting
//! the exit code, the whole message (golden) and that the output folder is untouched.

use crate::harness::{assert_golden, repo, Run, Workdir};

const TS: &str = "1700000000";

/// (case, mapping, inputs..., expected exit code). Paths are relative to tests/fixtures/bad.
const FAILURES: &[(&str, &[&str], i32)] = &[
    // Mappings, one defect each.
    ("unknown_key", &["m_unknown_key.toml", "ok.csv"], 2),
    ("toml_syntax", &["m_toml_syntax.toml", "ok.csv"], 2),
    ("missing_dpid", &["m_missing_dpid.toml", "ok.csv"], 2),
    ("unknown_id_type", &["m_unknown_id_type.toml", "ok.csv"], 2),
    (
        "device_no_target",
        &["m_device_no_target.toml", "ok.csv"],
        2,
    ),
    (
        "dpid_contradicts",
        &["m_dpid_contradicts.toml", "ok.csv"],
        2,
    ),
    (
        "dpuuid_global_dpid",
        &["m_dpuuid_global_dpid.toml", "ok.csv"],
        2,
    ),
    ("bad_mode", &["m_bad_mode.toml", "ok.csv"], 2),
    ("no_traits", &["m_no_traits.toml", "ok.csv"], 2),
    (
        "unknown_rule_type",
        &["m_unknown_rule_type.toml", "ok.csv"],
        2,
    ),
    (
        "flag_no_trait_id",
        &["m_flag_no_trait_id.toml", "ok.csv"],
        2,
    ),
    ("value_map_empty", &["m_value_map_empty.toml", "ok.csv"], 2),
    ("dash_key", &["m_dash_key.toml", "ok.csv"], 2),
    ("reserved_key", &["m_reserved_key.toml", "ok.csv"], 2),
    ("key_chars", &["m_key_chars.toml", "ok.csv"], 2),
    ("empty_key", &["m_empty_key.toml", "ok.csv"], 2),
    (
        "key_not_applicable",
        &["m_key_not_applicable.toml", "ok.csv"],
        2,
    ),
    ("hash_on_device", &["m_hash_on_device.toml", "ok.csv"], 2),
    (
        "normalize_dpuuid",
        &["m_normalize_dpuuid.toml", "ok.csv"],
        2,
    ),
    ("part_size_zero", &["m_part_size_zero.toml", "ok.csv"], 2),
    ("missing_column", &["m_missing_column.toml", "ok.csv"], 2),
    ("bad_sql", &["m_bad_sql.toml", "ok.csv"], 2),
    (
        "sql_unknown_column",
        &["m_sql_unknown_column.toml", "ok.csv"],
        2,
    ),
    ("ic_removal", &["m_ic_removal.toml", "ok.csv"], 2),
    ("bad_delimiter", &["m_bad_delimiter.toml", "ok.csv"], 2),
    ("wrong_type", &["m_wrong_type.toml", "ok.csv"], 2),
    ("several", &["m_several.toml", "ok.csv"], 2),
    ("mapping_not_found", &["no_such_mapping.toml", "ok.csv"], 2),
    // Sources.
    ("input_not_found", &["ok.toml", "no_such_export.csv"], 2),
    ("glob_matches_nothing", &["ok.toml", "no_such_*.csv"], 2),
    ("unknown_extension", &["ok.toml", "export.xlsx"], 2),
    ("invalid_utf8", &["ok.toml", "latin1.csv"], 2),
    ("invalid_utf8_crlf", &["ok.toml", "crlf_latin1.csv"], 2),
    ("ragged_row", &["ok.toml", "ragged.csv"], 2),
    ("short_row", &["ok.toml", "short_row.csv"], 2),
    ("lone_carriage_returns", &["ok.toml", "mac_cr.csv"], 2),
    ("truncated_json", &["ok.toml", "truncated.json"], 2),
    ("malformed_ndjson", &["ok.toml", "malformed.ndjson"], 2),
    ("corrupt_parquet", &["ok.toml", "corrupt.parquet"], 2),
    ("empty_file", &["ok.toml", "empty.csv"], 2),
    ("not_gzip", &["ok.toml", "notgzip.csv.gz"], 2),
    ("second_input_bad", &["ok.toml", "ok.csv", "ragged.csv"], 2),
    // Values: too many rejected rows publish nothing.
    ("values_over_threshold", &["ok.toml", "values.csv"], 1),
    (
        "device_ids_over_threshold",
        &["devices.toml", "devices.csv"],
        1,
    ),
    (
        "aam_uuids_over_threshold",
        &["aam_uuid.toml", "aam_uuid.csv"],
        1,
    ),
];

fn bad_dir() -> std::path::PathBuf {
    repo().join("tests/fixtures/bad")
}

/// Converts fixtures named relative to tests/fixtures/bad into `w`'s `out` folder.
fn convert(w: &Workdir, args: &[&str]) -> Run {
    let out = w.path("out").display().to_string();
    let mut all = args.to_vec();
    all.extend(["--out", &out, "--timestamp", TS]);
    w.run_in(&bad_dir(), &all)
}

#[test]
fn every_bad_input_fails_clearly_and_leaves_the_output_folder_untouched() {
    assert!(FAILURES.len() >= 30);
    for (case, files, code) in FAILURES {
        let w = Workdir::new();
        w.write("out/keep.txt", "already here");
        let out = w.path("out").display().to_string();
        let mut args = vec!["--mapping", files[0]];
        args.extend(&files[1..]);
        args.extend(["--out", &out, "--timestamp", TS]);
        let r = w.run_in(&bad_dir(), &args);
        assert_eq!(r.code, *code, "{case}: {}", r.stderr);
        assert_golden(&format!("bad/{case}.stderr"), &r.stderr);
        assert!(r.stderr.starts_with("error: "), "{case}: {}", r.stderr);
        let files: Vec<String> = w.files("out").into_keys().collect();
        assert_eq!(
            files,
            ["keep.txt"],
            "{case} left the output folder as it was"
        );
    }
}

#[test]
fn rejected_rows_are_listed_with_reasons_and_written_under_the_threshold() {
    let w = Workdir::new();
    let out = w.path("out").display().to_string();
    let rejects = w.path("rejects.csv").display().to_string();
    let r = convert(
        &w,
        &[
            "--mapping",
            "ok.toml",
            "values.csv",
            "--rejects",
            &rejects,
            "--max-reject-rate",
            "100",
        ],
    );
    assert_eq!(r.code, 0, "{}", r.stderr);
    assert_golden("bad/values.stdout", &r.stdout.replace(&out, "<out>"));
    assert_golden(
        "bad/values.rejects.csv",
        &std::fs::read_to_string(&rejects).unwrap(),
    );
    assert_golden("bad/values.out", &w.output_text("out"));
    assert_eq!(r.stderr, "note: 16 rows rejected; see the rejects file\n");
}

#[test]
fn over_the_threshold_the_rejects_file_is_still_written() {
    let w = Workdir::new();
    let rejects = w.path("rejects.csv").display().to_string();
    let r = convert(
        &w,
        &[
            "--mapping",
            "devices.toml",
            "devices.csv",
            "--rejects",
            &rejects,
        ],
    );
    assert_eq!(r.code, 1);
    assert!(!w.path("out").exists());
    assert_golden(
        "bad/devices.rejects.csv",
        &std::fs::read_to_string(&rejects).unwrap(),
    );
}

#[test]
fn existing_output_without_force_is_an_error_and_untouched() {
    let w = Workdir::new();
    let name = "out/ftp_dpm_21_1700000000.sync.gz";
    w.write(name, "earlier delivery");
    let out = w.path("out").display().to_string();
    let r = convert(&w, &["--mapping", "ok.toml", "ok.csv"]);
    assert_eq!(r.code, 2);
    assert_eq!(
        r.stderr,
        format!("error: {out}/ftp_dpm_21_1700000000.*: a delivery with this name is already there (1 file: ftp_dpm_21_1700000000.sync.gz); pass --force to replace all of it\n")
    );
    assert_eq!(std::fs::read(w.path(name)).unwrap(), b"earlier delivery");
}

#[test]
fn removal_rules_in_overwrite_mode_are_left_out_with_a_warning() {
    let w = Workdir::new();
    let r = convert(&w, &["--mapping", "m_overwrite_removal.toml", "ok.csv"]);
    assert_eq!(r.code, 0, "{}", r.stderr);
    assert_eq!(
        r.stderr,
        "warning: m_overwrite_removal.toml: traits[1]: removal rule ignored: mode = \"overwrite\" replaces all of a user's traits and AAM ignores removals there\n"
    );
    assert_eq!(
        w.output_text("out"),
        "== ftp_dpm_21_1700000000.overwrite.gz\nu1\td_sid=5\n"
    );
}

#[test]
fn a_latin1_export_reads_with_the_encoding_option() {
    let w = Workdir::new();
    let r = convert(&w, &["--mapping", "latin1.toml", "latin1.csv"]);
    assert_eq!(r.code, 0, "{}", r.stderr);
    assert_eq!(
        w.output_text("out"),
        "== ftp_dpm_21_1700000000.sync.gz\nu1\tcity=Paris\nu2\tcity=\"Zürich\"\n"
    );
}

#[test]
fn add_and_remove_of_one_trait_keeps_the_addition_and_phone_ids_are_flagged() {
    let w = Workdir::new();
    let r = convert(&w, &["--mapping", "conflicts.toml", "conflicts.csv"]);
    assert_eq!(r.code, 0, "{}", r.stderr);
    assert_eq!(
        w.output_text("out"),
        "== ftp_dpm_21_1700000000.sync\n+1 415 555 0123\td_sid=8\nu1\td_sid=5,d_sid=6\nu2\td_unsid=7\n"
    );
    assert!(
        r.stdout
            .contains("add/remove conflicts      1 (the addition was kept)\n"),
        "{}",
        r.stdout
    );
    assert!(
        r.stdout
            .contains("warning: 1 user IDs look like phone numbers; AAM must not receive PII\n"),
        "{}",
        r.stdout
    );
}

#[test]
fn emails_are_hashed_when_asked_and_non_emails_rejected() {
    let w = Workdir::new();
    let rejects = w.path("rejects.csv").display().to_string();
    let r = convert(
        &w,
        &[
            "--mapping",
            "hashed.toml",
            "hashed.csv",
            "--rejects",
            &rejects,
            "--max-reject-rate",
            "50",
        ],
    );
    assert_eq!(r.code, 0, "{}", r.stderr);
    let hash = aam_etl::inbound::email_sha256("jane.doe@example.com");
    assert_eq!(
        w.output_text("out"),
        format!("== ftp_dpm_21_1700000000.sync\n{hash}\td_sid=5\n")
    );
    assert_eq!(
        std::fs::read_to_string(&rejects).unwrap(),
        "file,row,user_id,reason,message\nhashed.csv,2,not-an-email,not-an-email,\"user_id.hash = \"\"sha256\"\" expects e-mail addresses; this value is not one\"\n"
    );
}

#[test]
fn an_export_without_traits_writes_no_file_and_says_why() {
    let w = Workdir::new();
    let r = convert(&w, &["--mapping", "ok.toml", "header_only.csv"]);
    assert_eq!(r.code, 0, "{}", r.stderr);
    assert_eq!(
        r.stderr,
        "no file written: no user has a trait to send (AAM does not process empty files)\n"
    );
    assert!(!w.path("out").exists());
    // Without values a CSV's columns have no types: a condition comparing a number still
    // runs (on no rows), and blank lines after the header are not rows.
    let m = w.write(
        "m.toml",
        "[output]\ndpid = 21\n[user_id]\ncolumn = \"user_id\"\ntype = \"dpuuid\"\n[[traits]]\ntype = \"condition\"\nwhen = \"ltv > 1000\"\ntrait_id = 7\n",
    );
    for text in ["user_id,ltv\n", "user_id,ltv\r\n\r\n\n"] {
        let csv = w.write("empty.csv", text);
        let r = convert(&w, &["--mapping", &m, &csv]);
        assert_eq!(r.code, 0, "{text:?}: {}", r.stderr);
        assert_eq!(
            r.stderr,
            "no file written: no user has a trait to send (AAM does not process empty files)\n"
        );
        assert!(
            r.stdout.contains("rows read                 0\n"),
            "{text:?}: {}",
            r.stdout
        );
        assert!(!w.path("out").exists());
    }
}

#[test]
fn a_user_id_column_that_is_not_text_or_whole_numbers_is_refused() {
    let w = Workdir::new();
    let m = w.write(
        "m.toml",
        "[output]\ndpid = 21\n[user_id]\ncolumn = \"id\"\ntype = \"dpuuid\"\n[[traits]]\ntype = \"trait_ids\"\ncolumn = \"seg\"\n",
    );
    for (case, rows, dtype) in [
        (
            "float",
            "{\"id\": 1.0, \"seg\": 5}\n{\"id\": 2.5, \"seg\": 6}\n",
            "f64",
        ),
        ("struct", "{\"id\": {\"a\": 1}, \"seg\": 5}\n", "struct[1]"),
        ("list", "{\"id\": [1, 2], \"seg\": 5}\n", "list[i64]"),
    ] {
        let input = w.write(&format!("{case}.ndjson"), rows);
        let r = w.run(&["--mapping", &m, &input, "--timestamp", TS]);
        assert_eq!(r.code, 2, "{case}");
        assert_eq!(
            r.stderr,
            format!("error: {input}: the mapping does not fit this source:\n  - user_id.column: column `id` holds {dtype} values; a user ID must be text or a whole number: cast it to text (or integers) in the export\n"),
            "{case}"
        );
        assert!(!w.path("out").exists(), "{case}");
    }
}

#[test]
fn a_csv_header_with_a_column_twice_is_refused() {
    let w = Workdir::new();
    let m = w.write(
        "m.toml",
        "[output]\ndpid = 21\n[user_id]\ncolumn = \"id\"\ntype = \"dpuuid\"\n[[traits]]\ntype = \"trait_ids\"\ncolumn = \"segment_id\"\n",
    );
    let input = w.write("in.csv", "id,segment_id,tier,segment_id\nu1,5,gold,6\n");
    let r = w.run(&["--mapping", &m, &input, "--timestamp", TS]);
    assert_eq!(r.code, 2);
    assert_eq!(
        r.stderr,
        format!("error: {input}: line 1: the header names column `segment_id` twice (columns 2 and 4); rename one of them\n")
    );
}

#[test]
fn conditions_see_the_columns_types_even_when_a_rule_reads_them_as_text() {
    let w = Workdir::new();
    // `ltv` is both a key-value (read as text, so `0100` stays `0100`) and compared as a
    // number in a condition.
    let m = w.write(
        "m.toml",
        "[output]\ndpid = 21\ngzip = false\n[user_id]\ncolumn = \"id\"\ntype = \"dpuuid\"\n\
         [[traits]]\ntype = \"key_value\"\ncolumn = \"ltv\"\n\
         [[traits]]\ntype = \"condition\"\nwhen = \"ltv > 1000\"\ntrait_id = 300\n",
    );
    let input = w.write("in.csv", "id,ltv\nu1,0100\nu2,2500\nu3,\n");
    let r = w.run(&["--mapping", &m, &input, "--timestamp", TS]);
    assert_eq!(r.code, 0, "{}", r.stderr);
    assert_eq!(
        w.output_text("out"),
        "== ftp_dpm_21_1700000000.sync\nu1\tltv=0100\nu2\td_sid=300,ltv=2500\n"
    );
    // u3's empty `ltv` makes the condition NULL: neither trait nor removal, but counted.
    assert!(
        r.stdout.contains(
            "NULL condition traits[1]  1 rows (neither added nor removed; see COALESCE in the README)\n"
        ),
        "{}",
        r.stdout
    );
}

#[test]
fn a_condition_that_is_not_true_or_false_names_its_rule() {
    let w = Workdir::new();
    let m = w.write(
        "m.toml",
        "[output]\ndpid = 21\n[user_id]\ncolumn = \"id\"\ntype = \"dpuuid\"\n\
         [[traits]]\ntype = \"trait_ids\"\ncolumn = \"seg\"\nwhere = \"tier\"\n",
    );
    let input = w.write("in.csv", "id,seg,tier\nu1,5,gold\n");
    let r = w.run(&["--mapping", &m, &input, "--timestamp", TS]);
    assert_eq!(r.code, 2);
    assert_eq!(
        r.stderr,
        format!("error: {input}: the mapping does not fit this source:\n  - traits[0].where: `tier` is not a true/false condition: it gives str values; compare it, e.g. `tier = 'gold'` or `tier > 0`\n")
    );
}

#[test]
fn every_unknown_key_and_wrong_type_is_reported_at_once() {
    let w = Workdir::new();
    let m = w.write(
        "m.toml",
        "[output]\ndpid = \"21\"\nmod = \"sync\"\n[user_id]\ncolumn = \"id\"\ntype = \"dpuuid\"\n\
         [[traits]]\ntype = \"flag\"\ncolumn = \"vip\"\ntrait_id = 2.5\ncolour = \"red\"\n",
    );
    let r = w.run(&["--mapping", &m, "in.csv"]);
    assert_eq!(r.code, 2);
    assert_eq!(
        r.stderr,
        format!("error: {m}: the mapping has 4 problems:\n  - output.dpid: expected a whole number, 0 or more, found the string \"21\" (line 2)\n  - output.mod: unknown key (line 3); did you mean `mode`? expected one of dpid, target_dpid, mode, gzip, gzip_level, max_part_bytes, date_folder, deliver\n  - traits[0].trait_id: expected a whole number, 0 or more, found the number 2.5 (line 10)\n  - traits[0].colour: unknown key (line 11); expected one of type, column, when, where, action, form, removal, trait_id, remove_when_false, values, removes, ignore_case, remove_when, unmapped, key, key_column, keys, map, case, prefix, buckets, pattern, latest_by, split, comma_replacement\n")
    );
}

/// A value with a comma is never written (AAM may split the trait list inside it): the row is
/// rejected by default; `comma_replacement` sends it with the commas replaced, counted.
#[test]
fn values_with_commas_are_rejected_or_replaced_when_asked() {
    let w = Workdir::new();
    w.write(
        "in.csv",
        "user_id,city\nu1,\"Paris, TX\"\nu2,Lyon\nu3,\"a,b,c\"\n",
    );
    let mapping = |extra: &str| {
        format!(
            "[output]\ndpid = 21\n[user_id]\ncolumn = \"user_id\"\ntype = \"dpuuid\"\n[[traits]]\ntype = \"key_value\"\ncolumn = \"city\"\n{extra}"
        )
    };
    w.write("reject.toml", mapping(""));
    w.write("replace.toml", mapping("comma_replacement = \";\"\n"));
    let r = w.run(&[
        "--mapping",
        "reject.toml",
        "in.csv",
        "--timestamp",
        TS,
        "--rejects",
        "rejects.csv",
        "--max-reject-rate",
        "100",
    ]);
    assert_eq!(r.code, 0, "{}", r.stderr);
    assert_eq!(
        w.output_text("out"),
        "== ftp_dpm_21_1700000000.sync.gz\nu2\tcity=Lyon\n"
    );
    assert_eq!(
        std::fs::read_to_string(w.path("rejects.csv")).unwrap(),
        "file,row,user_id,reason,message\n\
         in.csv,1,u1,comma-in-value,\"traits[0] (column \"\"city\"\"): value \"\"Paris, TX\"\" has a comma, which AAM may read as the end of the trait; set comma_replacement on the rule to send it with the commas replaced\"\n\
         in.csv,3,u3,comma-in-value,\"traits[0] (column \"\"city\"\"): value \"\"a,b,c\"\" has a comma, which AAM may read as the end of the trait; set comma_replacement on the rule to send it with the commas replaced\"\n"
    );
    let r = w.run(&[
        "--mapping",
        "replace.toml",
        "in.csv",
        "--timestamp",
        TS,
        "--force",
        "--report",
        "r.json",
    ]);
    assert_eq!(r.code, 0, "{}", r.stderr);
    assert_eq!(
        w.output_text("out"),
        "== ftp_dpm_21_1700000000.sync.gz\nu1\tcity=\"Paris; TX\"\nu2\tcity=Lyon\nu3\tcity=\"a;b;c\"\n"
    );
    assert!(
        r.stdout
            .contains("values with commas        2 (commas replaced)\n"),
        "{}",
        r.stdout
    );
    let report: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(w.path("r.json")).unwrap()).unwrap();
    assert_eq!(report["commas_replaced"], 2, "{report}");
    let v = w.run(&["validate", "--strict", "out"]);
    assert_eq!(v.code, 0, "{}", v.stdout);
    assert!(!v.stdout.contains(": warning "), "{}", v.stdout);
}
