//! ID-synchronization files (`[id_sync]` mappings): `adobe_id_` and `c2c_id_` files with
//! the guarantees of inbound files: ID checks per data source, rejects with reasons, parts,
//! the state's diff (only new pairs), and what `validate` says of the result.

use crate::harness::{example, mapping, Run, Workdir};

const TS: &str = "1700000000";
const UUID_A: &str = "12345678901234567890123456789012345678";
const UUID_B: &str = "98765432109876543210987654321098765432";
const GAID: &str = "38400000-8cf0-11bd-b23e-10b96e40000d";

fn run(w: &Workdir, mapping: &str, input: &str, extra: &[&str]) -> Run {
    let mut args = vec!["--mapping", mapping, input, "--timestamp", TS];
    args.extend_from_slice(extra);
    w.run(&args)
}

#[test]
fn adobe_id_files_check_each_id_by_its_data_source_and_skip_rows_without_one() {
    let w = Workdir::new();
    let m = w.write(
        "m.toml",
        "[output]\ngzip = false\n[id_sync]\ncolumns = [\n  { column = \"gaid\", dpid = 20914 },\n  { column = \"aam\", dpid = 0 },\n  { column = \"crm\", dpid = 21 },\n]\n",
    );
    let input = w.write(
        "ids.csv",
        format!(
            "gaid,aam,crm\n\
             {GAID},{UUID_A},C1\n\
             {GAID},{UUID_A},C1\n\
             {GAID},{UUID_B},C2\n\
             38400000-8CF0-11BD-B23E-10B96E40000D,{UUID_A},C3\n\
             {GAID},1234,C4\n\
             {GAID},{UUID_A},a:b\n\
             ,{UUID_A},C5\n\
             {GAID},,C6\n"
        ),
    );
    let r = run(
        &w,
        &m,
        &input,
        &["--rejects", "rejects.csv", "--max-reject-rate", "100"],
    );
    assert_eq!(r.code, 0, "{}", r.stderr);
    // One line per distinct tuple, master first, in the name's DPID order.
    assert_eq!(
        w.output_text("out"),
        format!(
            "== adobe_id_20914_0_21_1700000000.sync\n\
             {GAID}\t{UUID_A}\tC1\n\
             {GAID}\t{UUID_B}\tC2\n"
        )
    );
    let rejects = std::fs::read_to_string(w.path("rejects.csv")).unwrap();
    let reasons: Vec<&str> = rejects
        .lines()
        .skip(1)
        .map(|l| l.split(',').nth(3).unwrap())
        .collect();
    assert_eq!(
        reasons,
        ["device-id-case", "invalid-device-id", "invalid-user-id"],
        "{rejects}"
    );
    assert!(
        rejects.contains("id_sync.columns[1] (column \"\"aam\"\") (aam_uuid): user ID is not an AAM UUID")
            && rejects.contains("id_sync.columns[0] (column \"\"gaid\"\") (gaid): the ID must be lowercase, as its data source's IDs are"),
        "the column and its type are named: {rejects}"
    );
    assert!(
        r.stdout
            .contains("rows without an ID        2 (nothing to sync)"),
        "{}",
        r.stdout
    );
    // Its lines carry ID pairs, and the summary says so.
    assert!(
        r.stdout.contains("ID pairs                  2\n") && !r.stdout.contains("traits"),
        "{}",
        r.stdout
    );
    let v = w.run(&["validate", "out"]);
    assert_eq!(v.code, 0, "{}", v.stdout);
}

#[test]
fn c2c_files_keep_the_ten_most_recent_emails_of_each_crm_id() {
    let w = Workdir::new();
    let mut rows = String::from("crm_id,email,updated_at\n");
    // C1: 12 addresses, the oldest two (by updated_at, not by row) are dropped; one is
    // already a SHA-256 digest, one repeats in another spelling.
    for i in 0..12u32 {
        let day = [5, 1, 12, 2, 8, 9, 10, 11, 3, 4, 6, 7][i as usize];
        rows.push_str(&format!("C1,user{i}@example.com,2026-11-{day:02}\n"));
    }
    rows.push_str(" C1 , USER0@Example.com ,2026-11-30\n");
    rows.push_str("C2,not-an-address,2026-11-01\n");
    let digest = "5ff860bf1190596c7188ab851db691f0f3169c453936e9e1eba2f9a47f7a0018";
    rows.push_str(&format!("C3,{digest},\n"));
    let input = w.write("people.csv", rows);
    let r = run(
        &w,
        &mapping("c2c.toml"),
        &input,
        &[
            "--report",
            "report.json",
            "--max-reject-rate",
            "100",
            "--rejects",
            "rejects.csv",
        ],
    );
    assert_eq!(r.code, 0, "{}", r.stderr);
    let text = w.output_text("out");
    let lines: Vec<&str> = text.lines().skip(1).collect();
    let hash = |e: &str| {
        use sha2::Digest;
        format!("{:x}", sha2::Sha256::digest(e.as_bytes()))
    };
    let mut expected: Vec<String> = (0..12u32)
        .filter(|&i| i != 1 && i != 3) // 2026-11-01 and 2026-11-02: the oldest
        .map(|i| format!("C1\t{}", hash(&format!("user{i}@example.com"))))
        .collect();
    expected.sort();
    expected.push(format!("C3\t{digest}"));
    assert_eq!(lines, expected);
    let report: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(w.path("report.json")).unwrap()).unwrap();
    assert_eq!(report["emails_dropped"], 2);
    let rejects = std::fs::read_to_string(w.path("rejects.csv")).unwrap();
    assert!(rejects.contains(",C2,not-an-email,"), "{rejects}");
}

#[test]
fn without_latest_by_later_rows_are_the_more_recent() {
    let w = Workdir::new();
    let text = std::fs::read_to_string(mapping("c2c.toml")).unwrap();
    let m = w.write("m.toml", text.replace("latest_by = \"updated_at\"", ""));
    let mut rows = String::from("crm_id,email\n");
    for i in 0..11u32 {
        rows.push_str(&format!("C1,u{i}@example.com\n"));
    }
    let input = w.write("people.csv", rows);
    let r = run(&w, &m, &input, &[]);
    assert_eq!(r.code, 0, "{}", r.stderr);
    let out = w.output_text("out");
    assert_eq!(out.lines().count(), 11, "a header and ten lines: {out}");
    use sha2::Digest;
    let first = format!("{:x}", sha2::Sha256::digest(b"u0@example.com"));
    assert!(!out.contains(&first), "the first row is the oldest");
    assert!(
        r.stdout.contains("e-mails over 10 per ID    1"),
        "{}",
        r.stdout
    );
}

#[test]
fn a_state_sends_only_new_pairs_and_a_master_never_straddles_two_parts() {
    let w = Workdir::new();
    let m = w.write(
        "m.toml",
        "[output]\ngzip = false\nmax_part_bytes = 100\n[state]\npath = \"state\"\n[id_sync]\ncolumns = [{ column = \"aam\", dpid = 0 }, { column = \"crm\", dpid = 21 }]\n",
    );
    let day1 = w.write(
        "day1.csv",
        format!("aam,crm\n{UUID_A},C1\n{UUID_A},C2\n{UUID_B},C3\n"),
    );
    let r = run(&w, &m, &day1, &[]);
    assert_eq!(r.code, 0, "{}", r.stderr);
    // Two lines of UUID_A (98 bytes) fill a part; UUID_B goes to the next.
    assert_eq!(
        w.output_text("out"),
        format!(
            "== adobe_id_0_21_1700000000.sync.1\n{UUID_A}\tC1\n{UUID_A}\tC2\n\
             == adobe_id_0_21_1700000000.sync.2\n{UUID_B}\tC3\n"
        )
    );
    let day2 = w.write(
        "day2.csv",
        format!("aam,crm\n{UUID_A},C1\n{UUID_A},C2\n{UUID_B},C3\n{UUID_B},C4\n"),
    );
    let r = w.run(&[
        "--mapping",
        &m,
        &day2,
        "--timestamp",
        "1700086400",
        "--out",
        "out2",
    ]);
    assert_eq!(r.code, 0, "{}", r.stderr);
    assert_eq!(
        w.output_text("out2"),
        format!("== adobe_id_0_21_1700086400.sync\n{UUID_B}\tC4\n"),
        "only the new pair"
    );
    assert!(
        r.stdout.contains("ID pairs added            1\n") && !r.stdout.contains("traits"),
        "the summary counts pairs: {}",
        r.stdout
    );
    let r = w.run(&[
        "--mapping",
        &m,
        &day2,
        "--timestamp",
        "1700172800",
        "--out",
        "out3",
    ]);
    assert_eq!(r.code, 0, "{}", r.stderr);
    assert!(
        r.stdout.contains("no changes since the last delivery"),
        "{}",
        r.stdout
    );
    // An inbound mapping cannot use this state: it holds ID pairs, not traits.
    let inbound = w.run(&[
        "--mapping",
        &mapping("crm.toml"),
        &example("crm.csv"),
        "--state",
        "state",
        "--timestamp",
        "1700259200",
    ]);
    assert_eq!(inbound.code, 2);
    assert!(
        inbound.stderr.contains("this state holds the ID pairs of adobe_id_0_21_* files, but the mapping sends inbound traits"),
        "{}",
        inbound.stderr
    );
}

#[test]
fn force_replaces_an_earlier_id_sync_delivery_whole() {
    let w = Workdir::new();
    let input = example("idsync.csv");
    let m = mapping("idsync.toml");
    assert_eq!(run(&w, &m, &input, &[]).code, 0);
    w.write("out/adobe_id_0_21_1700000000.sync.2.gz", "stale part");
    let again = run(&w, &m, &input, &[]);
    assert_eq!(again.code, 2);
    assert!(
        again.stderr.contains(
            "out/adobe_id_0_21_1700000000.*: a delivery with this name is already there (2 files"
        ),
        "{}",
        again.stderr
    );
    assert_eq!(run(&w, &m, &input, &["--force"]).code, 0);
    let names: Vec<String> = w.files("out").into_keys().collect();
    assert_eq!(names, ["adobe_id_0_21_1700000000.sync.gz"]);
}

#[test]
fn id_sync_mappings_say_what_does_not_belong_in_them() {
    let w = Workdir::new();
    let cases = [
        (
            "[output]\ndpid = 21\n[user_id]\ncolumn = \"c\"\ntype = \"dpuuid\"\n[id_sync]\ncolumns = [{ column = \"a\", dpid = 0 }, { column = \"c\", dpid = 21 }]\n",
            &[
                "output.dpid: not for an [id_sync] mapping",
                "user_id: an [id_sync] mapping has no [user_id]",
            ][..],
        ),
        (
            "[output]\n[id_sync]\ntype = \"c2c\"\ncolumns = [{ column = \"a\", dpid = 0 }, { column = \"c\", dpid = 21 }, { column = \"e\", dpid = 22 }]\n",
            &[
                "id_sync.columns: exactly two columns for c2c",
                "id_sync.columns[0].dpid: 0 is not a CRM data source",
            ][..],
        ),
        (
            "[output]\n[id_sync]\ncolumns = [{ column = \"a\", dpid = 0 }, { column = \"c\", dpid = 0 }]\nlatest_by = \"t\"\n",
            &[
                "id_sync.columns[1].dpid: data source 0 is named twice",
                "id_sync.latest_by: applies to c2c files only",
            ][..],
        ),
        (
            "[output]\n[id_sync]\ncolumns = [{ column = \"a\" }]\n",
            &["id_sync.columns[0].dpid: missing (line 3)"][..],
        ),
    ];
    for (text, expected) in cases {
        let m = w.write("m.toml", text);
        let r = run(&w, &m, &example("idsync.csv"), &[]);
        assert_eq!(r.code, 2, "{text}");
        for e in expected {
            assert!(r.stderr.contains(e), "{e}\n{}", r.stderr);
        }
    }
}
