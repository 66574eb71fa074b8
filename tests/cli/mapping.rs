//! The mapping language (issue 16): what each capability writes from its template's
//! example, and the mistakes each new key is checked for.

use crate::harness::{example, mapping, Run, Workdir};

const TS: &str = "1700000000";

/// The mapping text after a `[output] dpid = 21` and a `dpuuid` user ID in column `id`.
fn with_header(rules: &str) -> String {
    format!(
        "[output]\ndpid = 21\ngzip = false\n[user_id]\ncolumn = \"id\"\ntype = \"dpuuid\"\n{rules}"
    )
}

/// Converts `input` with `rules` (after [`with_header`], written to `m.toml`) and `args`.
fn convert(w: &Workdir, input: &str, rules: &str, args: &[&str]) -> Run {
    let m = w.write("m.toml", with_header(rules));
    w.run(&[&["--mapping", &m, input, "--timestamp", TS], args].concat())
}

#[test]
fn a_membership_table_adds_and_removes_by_status_in_one_rule() {
    let w = Workdir::new();
    let (m, input) = (mapping("memberships.toml"), example("memberships.csv"));
    let r = w.run(&["--mapping", &m, &input, "--timestamp", TS]);
    assert_eq!(r.code, 0, "{}", r.stderr);
    // The lines themselves are the template's golden file; the summary says what was not
    // sent as it stands: the unmapped tier by name, the row without a status.
    assert!(
        r.stdout.contains(
            "unmapped values           1 (skipped)\n  traits[1]               \"platinum\" x1\n"
        ),
        "{}",
        r.stdout
    );
    assert!(
        r.stdout.contains(
            "NULL condition traits[0].remove_when 1 rows (added, not removed; see COALESCE in the README)"
        ),
        "{}",
        r.stdout
    );
}

#[test]
fn a_value_in_another_letter_case_is_rejected_with_a_hint() {
    let w = Workdir::new();
    let input = w.write("t.csv", "id,tier\nu1,gold\nu2,Gold\n");
    let rejects = w.path("rejects.csv").display().to_string();
    let r = convert(
        &w,
        &input,
        "[[traits]]\ntype = \"value_map\"\ncolumn = \"tier\"\nvalues = { gold = 1 }\n",
        &["--max-reject-rate", "60", "--rejects", &rejects],
    );
    assert_eq!(r.code, 0, "{}", r.stderr);
    assert_eq!(
        std::fs::read_to_string(&rejects).unwrap().lines().nth(1).unwrap(),
        format!("{input},2,u2,unmapped-value,\"traits[0] (column \"\"tier\"\"): \"\"Gold\"\" is not in the rule's values (gold) (it differs only in letter case: set ignore_case = true); add it or set unmapped = \"\"skip\"\"\"")
    );
}

#[test]
fn mistakes_with_the_removal_keys_are_reported_together() {
    let w = Workdir::new();
    let input = w.write("t.csv", "id,seg,tier\nu1,1,gold\n");
    let m = w.write(
        "m.toml",
        with_header(
            "[[traits]]\ntype = \"trait_ids\"\ncolumn = \"seg\"\naction = \"remove\"\nremove_when = \"seg > 1\"\n\
             [[traits]]\ntype = \"value_map\"\ncolumn = \"tier\"\nignore_case = true\nvalues = { gold = 1, Gold = 2 }\n\
             [[traits]]\ntype = \"value_map\"\ncolumn = \"tier\"\nvalues = { gold = [1, 2] }\nremoves = { gold = 2 }\n\
             [[traits]]\ntype = \"value_map\"\ncolumn = \"tier\"\nform = \"ic\"\nvalues = { gold = 3 }\nremoves = { silver = 3 }\n\
             [[traits]]\ntype = \"trait_ids\"\ncolumn = \"seg\"\nremove_when = \" \"\n",
        ),
    );
    let r = w.run(&["--mapping", &m, &input, "--timestamp", TS]);
    assert_eq!(r.code, 2);
    assert_eq!(
        r.stderr,
        format!(
            "error: {m}: the mapping has 5 problems:\n\
             \x20 - traits[0].remove_when: a rule with action = \"remove\" removes on every row already; remove_when applies to rules that add\n\
             \x20 - traits[1].values.gold: \"gold\" and \"Gold\" are the same value with ignore_case = true; list it once\n\
             \x20 - traits[2].removes.gold: \"gold\" both adds and removes trait 2; keep one\n\
             \x20 - traits[3].removes: only d_sid traits can be removed; ic traits have no removal form\n\
             \x20 - traits[4].remove_when: empty condition: remove it or write one such as \"status <> 'active'\"\n"
        )
    );
    assert!(!w.path("out").exists());
}

#[test]
fn mistakes_with_the_shaping_keys_are_reported_together() {
    let w = Workdir::new();
    let input = w.write("t.csv", "id,k,v,seen\nu1,a,1,2023-01-01\n");
    let m = w.write(
        "m.toml",
        "[output]\ndpid = 21\n[user_id]\ncolumn = [\"id\", \"\"]\ntype = \"dpuuid\"\ntemplate = \"crm-\"\n\
         [[traits]]\ntype = \"key_value\"\ncolumn = \"v\"\nkey = \"x\"\nkey_column = \"k\"\n\
         [[traits]]\ntype = \"key_value\"\ncolumn = \"v\"\nkeys = [\"a\"]\nbuckets = [30, 18]\ncase = \"title\"\nmap = { a = \"b\\tc\" }\n\
         [[traits]]\ntype = \"trait_ids\"\ncolumn = \"v\"\npattern = \"(a)(b)\"\n\
         [[traits]]\ntype = \"trait_ids\"\ncolumn = \"v\"\npattern = \"SEG-(\"\n",
    );
    let r = w.run(&["--mapping", &m, &input, "--timestamp", TS]);
    assert_eq!(r.code, 2);
    let problems: Vec<&str> = r.stderr.lines().skip(1).collect();
    assert_eq!(
        problems,
        [
            "  - user_id.column: must name the column that holds the user ID (or a list of columns to try in turn)",
            "  - user_id.template: \"crm-\" must hold `{id}` once, with text around it, e.g. template = \"crm-{id}\"",
            "  - traits[0].key: give `key` (one key for every row) or `key_column` (each row's key), not both",
            "  - traits[1].keys: applies only with `key_column`",
            "  - traits[1].buckets: give increasing edges, e.g. [18, 25, 35, 45, 65] for <18, 18-24, ..., 65+",
            "  - traits[1].case: unknown value \"title\"; expected one of \"lower\", \"upper\"",
            "  - traits[1].map.a: \"b\tc\" cannot be sent: key-value signal contains a control character (TAB, CR, LF, NUL...)",
            "  - traits[2].pattern: `(a)(b)` has 2 groups; give one, around the digits of the trait ID, e.g. \"SEG-(\\d+)\"",
            "  - traits[3].pattern: `SEG-(` is not a regular expression: error: unclosed group",
        ],
        "{}",
        r.stderr
    );
}

#[test]
fn a_condition_with_an_unknown_placeholder_names_the_ones_there_are() {
    let w = Workdir::new();
    let input = w.write("t.csv", "id,seen\nu1,2023-01-01\n");
    let rules = "[[traits]]\ntype = \"condition\"\ntrait_id = 1\nwhen = \"seen > {run_day}\"\n";
    let r = convert(&w, &input, rules, &[]);
    assert_eq!(r.code, 2);
    assert!(
        r.stderr.contains("traits[0].when: `seen > {run_day}`: unknown placeholder `{run_day}`; conditions know {run_date} (the run's UTC day) and {run_time} (its UTC time)"),
        "{}",
        r.stderr
    );
    // A date held as text is compared after STRPTIME, which the message says.
    let rules = "[[traits]]\ntype = \"condition\"\ntrait_id = 1\nwhen = \"seen > {run_date}\"\n";
    let r = convert(&w, &input, rules, &[]);
    assert_eq!(r.code, 2);
    assert!(
        r.stderr
            .contains("a date held as text compares after STRPTIME(column, '%Y-%m-%d')"),
        "{}",
        r.stderr
    );
}

#[test]
fn a_list_column_cannot_order_rows() {
    let w = Workdir::new();
    let input = w.write("t.ndjson", "{\"id\":\"u1\",\"seg\":1,\"at\":[1,2]}\n");
    let rules = "[[traits]]\ntype = \"trait_ids\"\ncolumn = \"seg\"\nlatest_by = \"at\"\n";
    let r = convert(&w, &input, rules, &[]);
    assert_eq!(r.code, 2);
    assert!(
        r.stderr.contains("traits[0].latest_by: column `at` holds list[i64] values; latest_by needs one value per row, such as a date or a number"),
        "{}",
        r.stderr
    );
    assert!(!w.path("out").exists());
}
