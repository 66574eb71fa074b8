//! The trait list (`--traits`, `[taxonomy] path`): rows that would send a trait ID AAM
//! cannot realize are rejected with their own reasons, signals no rule reads are counted,
//! and `validate --traits` applies the same checks to files already written.

use crate::harness::{example, mapping, repo, Run, Workdir};

const TS: &str = "1700000000";

fn traits_csv() -> String {
    repo()
        .join("tests/fixtures/taxonomy/traits.csv")
        .display()
        .to_string()
}

/// `crm.toml` over the bundled `crm.csv`, with `extra` arguments.
fn convert_crm(w: &Workdir, extra: &[&str]) -> Run {
    let (m, input) = (mapping("crm.toml"), example("crm.csv"));
    let mut args = vec!["--mapping", &m, &input, "--timestamp", TS];
    args.extend_from_slice(extra);
    w.run(&args)
}

/// The rejects file's (row, user, reason) columns.
fn reasons(rejects: &str) -> Vec<String> {
    rejects
        .lines()
        .skip(1)
        .map(|l| {
            let cols: Vec<&str> = l.splitn(5, ',').collect();
            format!("{} {} {}", cols[1], cols[2], cols[3])
        })
        .collect()
}

#[test]
fn rows_sending_traits_aam_cannot_realize_are_rejected_with_their_reason() {
    let w = Workdir::new();
    let traits = traits_csv();
    let r = convert_crm(
        &w,
        &[
            "--traits",
            &traits,
            "--rejects",
            "rejects.csv",
            "--report",
            "report.json",
            "--max-reject-rate",
            "100",
        ],
    );
    assert_eq!(r.code, 0, "{}", r.stderr);
    let rejects = std::fs::read_to_string(w.path("rejects.csv")).unwrap();
    assert_eq!(
        reasons(&rejects),
        [
            "1 CRM-0001 trait-other-data-source",
            "4 CRM-0001 trait-not-onboarded",
            "5 CRM-0004 trait-other-data-source",
            "6 CRM-0002 unknown-trait",
        ]
    );
    // Each message names the rule, the trait, the list and what AAM would say.
    assert!(rejects.contains(&format!(
        "traits[4] (when \"\"ltv > 1000\"\"): trait 300 belongs to data source 22, not 21, in {traits}; AAM would report \"\"Traits failed validation\"\""
    )), "{rejects}");
    assert!(
        rejects
            .contains("traits[0] (column \"\"segments\"\"): trait 1004 is not in the trait list"),
        "{rejects}"
    );
    assert!(
        rejects.contains("trait 1003 is a RULE_BASED_TRAIT, not an ON_BOARDED_TRAIT"),
        "{rejects}"
    );
    // The users' other rows still go; nothing the list refuses is written.
    assert_eq!(
        w.output_text("out"),
        "== ftp_dpm_21_1700000000.sync.gz\n\
         CRM-0002\td_sid=112,d_sid=1002,city=Boston,d_unsid=200,d_unsid=1001\n\
         CRM-0003\td_sid=113,city=\"San Francisco\",interest=music,d_unsid=200\n"
    );
    assert!(
        r.stdout
            .contains("warning: 1 signal with key `interest` will not realize any trait"),
        "{}",
        r.stdout
    );
    let report: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(w.path("report.json")).unwrap()).unwrap();
    assert_eq!(
        report["unrealized_signals"],
        serde_json::json!({"interest": 1})
    );
    assert_eq!(
        report["rejected_by_reason"],
        serde_json::json!({"trait-not-onboarded": 1, "trait-other-data-source": 2, "unknown-trait": 1})
    );
}

#[test]
fn trait_list_rejects_count_against_the_reject_threshold() {
    let w = Workdir::new();
    let r = convert_crm(&w, &["--traits", &traits_csv()]);
    assert_eq!(r.code, 1, "{}", r.stderr);
    assert!(
        r.stderr.contains(
            "error: 66.67% of rows were rejected, over --max-reject-rate 1%; no file written"
        ),
        "{}",
        r.stderr
    );
    assert!(w.files("out").is_empty(), "nothing published");
}

#[test]
fn the_mappings_trait_list_is_found_beside_the_mapping_and_traits_overrides_it() {
    let w = Workdir::new();
    let text = std::fs::read_to_string(mapping("crm.toml")).unwrap();
    let m = w.write(
        "conf/crm.toml",
        format!("{text}\n[taxonomy]\npath = \"lists/traits.csv\"\n"),
    );
    w.write(
        "conf/lists/traits.csv",
        std::fs::read(traits_csv()).unwrap(),
    );
    // Run from another folder: the path is relative to the mapping, not to the run.
    let elsewhere = Workdir::new();
    let args = [
        "--mapping",
        m.as_str(),
        &example("crm.csv"),
        "--timestamp",
        TS,
        "--max-reject-rate",
        "100",
    ];
    let r = elsewhere.run(&args);
    assert_eq!(r.code, 0, "{}", r.stderr);
    assert!(
        r.stdout.contains("unknown-trait           1"),
        "{}",
        r.stdout
    );
    // --traits wins over the mapping: the template's full list refuses nothing.
    let full = mapping("aam-traits.json");
    let mut with_full = args.to_vec();
    with_full.extend(["--traits", full.as_str(), "--force"]);
    let r = elsewhere.run(&with_full);
    assert_eq!(r.code, 0, "{}", r.stderr);
    assert!(
        r.stdout.contains("rows rejected             0"),
        "{}",
        r.stdout
    );
    assert!(!r.stdout.contains("warning"), "{}", r.stdout);
}

#[test]
fn a_trait_list_that_cannot_be_used_stops_the_run_before_anything_is_read() {
    let w = Workdir::new();
    let cases = [
        ("missing.json", None, "missing.json: No such file"),
        (
            "list.json",
            Some("{\"sid\": 1}"),
            "list.json: not a trait list:",
        ),
        (
            "list.csv",
            Some("sid,traitType\n1,ON_BOARDED_TRAIT\n"),
            "list.csv: no `dataSourceId` column in the header (sid, traitType)",
        ),
        (
            "list.txt",
            Some("sid\n"),
            "list.txt: name the trait list .json (AAM's API answer) or .csv",
        ),
    ];
    for (name, contents, expected) in cases {
        if let Some(c) = contents {
            w.write(name, c);
        }
        let r = convert_crm(&w, &["--traits", name]);
        assert_eq!(r.code, 2, "{name}: {}", r.stderr);
        assert!(r.stderr.contains(expected), "{name}: {}", r.stderr);
        assert!(w.files("out").is_empty(), "{name}: nothing written");
    }
}

#[test]
fn validate_with_traits_reports_what_aam_would_not_realize() {
    let w = Workdir::new();
    let r = convert_crm(&w, &[]);
    assert_eq!(r.code, 0, "{}", r.stderr);
    let r = w.run(&["validate", "out", "--traits", &traits_csv()]);
    assert_eq!(r.code, 1, "{}", r.stdout);
    let codes: Vec<String> = r
        .stdout
        .lines()
        .filter(|l| l.contains(": error ") || l.contains(": warning "))
        .map(|l| {
            let (at, rest) = l.split_once(": ").unwrap();
            let line = at.rsplit(':').next().unwrap();
            let code = rest.split(' ').nth(1).unwrap();
            format!("{line} {code}")
        })
        .collect();
    assert_eq!(
        codes,
        [
            "1 X003", "1 X002", "1 X004", "1 X004", "1 X004", "2 X001", "2 X004", "3 X004",
            "4 X003", "4 X004", "4 X004"
        ]
    );
    for rule in aam_etl::validate::Rule::ALL {
        if rule.code().starts_with('X') {
            assert!(
                r.stdout.contains(&format!(" {} ", rule.code())),
                "{}",
                rule.code()
            );
        }
    }
    assert!(
        r.stdout
            .contains("error X001 trait 1004 is not in the trait list"),
        "{}",
        r.stdout
    );
    assert!(r.stdout.contains(
        "warning X004 `interest=music`: no rule-based trait of data source 21 reads the key `interest`"
    ), "{}", r.stdout);
    // Traits AAM leaves out do not cost it the record: all four are stored.
    assert!(
        r.stdout.contains("records stored          4"),
        "{}",
        r.stdout
    );
    assert!(
        r.stdout.contains("traits not realized     4"),
        "{}",
        r.stdout
    );
    assert!(
        r.stdout.contains("unused signals          7"),
        "{}",
        r.stdout
    );
    // The full list finds nothing.
    let r = w.run(&["validate", "out", "--traits", &mapping("aam-traits.json")]);
    assert_eq!(r.code, 0, "{}", r.stdout);
    assert!(!r.stdout.contains(" X00"), "{}", r.stdout);
}
