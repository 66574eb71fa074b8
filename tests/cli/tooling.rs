//! What surrounds the mapping format: `init` writes a mapping that converts its export,
//! `schema` prints the JSON Schema every template names and passes, `completions` and
//! `--help`.

use crate::harness::{example, repo, Workdir};
use serde_json::Value;

/// The problems of `value` against `schema`, for the JSON Schema features `aam-etl schema`
/// uses (type, enum, minimum, properties, required, additionalProperties, items, minItems,
/// oneOf).
fn violations(value: &Value, schema: &Value, at: &str, out: &mut Vec<String>) {
    if let Some(options) = schema.get("oneOf").and_then(Value::as_array) {
        let passing = options
            .iter()
            .filter(|s| {
                let mut v = Vec::new();
                violations(value, s, at, &mut v);
                v.is_empty()
            })
            .count();
        if passing != 1 {
            out.push(format!("{at}: matches {passing} of oneOf"));
        }
        return;
    }
    let fits = match schema.get("type").and_then(Value::as_str) {
        Some("object") => value.is_object(),
        Some("array") => value.is_array(),
        Some("string") => value.is_string(),
        Some("integer") => value.is_i64() || value.is_u64(),
        Some("boolean") => value.is_boolean(),
        _ => true,
    };
    if !fits {
        out.push(format!("{at}: not of type {}", schema["type"]));
        return;
    }
    if let Some(allowed) = schema.get("enum").and_then(Value::as_array) {
        if !allowed.contains(value) {
            out.push(format!("{at}: {value} not in enum"));
        }
    }
    if let (Some(min), Some(n)) = (
        schema.get("minimum").and_then(Value::as_i64),
        value.as_i64(),
    ) {
        if n < min {
            out.push(format!("{at}: {n} below {min}"));
        }
    }
    if let Some(object) = value.as_object() {
        let properties = schema.get("properties").and_then(Value::as_object);
        for name in schema
            .get("required")
            .and_then(Value::as_array)
            .into_iter()
            .flatten()
        {
            if !object.contains_key(name.as_str().unwrap()) {
                out.push(format!("{at}: missing {name}"));
            }
        }
        for (k, v) in object {
            let path = format!("{at}.{k}");
            match (
                properties.and_then(|p| p.get(k)),
                schema.get("additionalProperties"),
            ) {
                (Some(s), _) => violations(v, s, &path, out),
                (None, Some(Value::Bool(false))) => out.push(format!("{path}: not allowed")),
                (None, Some(s)) if s.is_object() => violations(v, s, &path, out),
                _ => {}
            }
        }
    }
    if let Some(items) = value.as_array() {
        let min = schema.get("minItems").and_then(Value::as_u64).unwrap_or(0);
        if (items.len() as u64) < min {
            out.push(format!("{at}: fewer than {min} items"));
        }
        if let Some(s) = schema.get("items") {
            for (i, item) in items.iter().enumerate() {
                violations(item, s, &format!("{at}[{i}]"), out);
            }
        }
    }
}

fn check_against(schema: &Value, toml_text: &str) -> Vec<String> {
    let value: toml::Value = toml::from_str(toml_text).unwrap();
    let mut out = Vec::new();
    violations(&serde_json::to_value(value).unwrap(), schema, "", &mut out);
    out
}

#[test]
fn every_template_names_the_schema_and_passes_it() {
    let w = Workdir::new();
    let r = w.run(&["schema"]);
    assert_eq!(r.code, 0, "{}", r.stderr);
    let committed = std::fs::read_to_string(repo().join("mappings/aam-etl.schema.json")).unwrap();
    assert_eq!(
        r.stdout, committed,
        "rewrite it: aam-etl schema > mappings/aam-etl.schema.json"
    );
    let schema: Value = serde_json::from_str(&r.stdout).unwrap();
    for (template, _) in crate::harness::TEMPLATES {
        let text = std::fs::read_to_string(repo().join("mappings").join(template)).unwrap();
        assert!(
            text.starts_with("#:schema ./aam-etl.schema.json\n"),
            "{template}"
        );
        assert_eq!(
            check_against(&schema, &text),
            Vec::<String>::new(),
            "{template}"
        );
    }
    // The check is not empty: what the mapping check refuses, the schema refuses too.
    let bad = "[output]\ndpid = -1\nmod = \"sync\"\n[user_id]\ncolumn = \"id\"\ntype = \"phone\"\n\
               [[traits]]\ntype = \"value_map\"\ncolumn = \"t\"\nvalues = { a = \"x\" }\n";
    assert_eq!(
        check_against(&schema, bad),
        [
            ".output.dpid: -1 below 0",
            ".output.mod: not allowed",
            ".traits[0].values.a: matches 0 of oneOf",
            ".user_id.type: \"phone\" not in enum",
        ]
    );
}

#[test]
fn init_writes_a_mapping_that_converts_its_export() {
    let examples: Vec<String> = std::fs::read_dir(repo().join("examples"))
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .filter(|n| !n.ends_with(".rs"))
        .collect();
    assert!(examples.len() >= 9, "{examples:?}");
    for name in examples {
        let w = Workdir::new();
        let r = w.run(&["init", &example(&name)]);
        assert_eq!(r.code, 0, "{name}: {}", r.stderr);
        let m = w.write("m.toml", &r.stdout);
        let run = w.run(&[
            "--mapping",
            &m,
            &example(&name),
            "--timestamp",
            "1700000000",
        ]);
        assert_eq!(run.code, 0, "{name}: {}\n{}", run.stderr, r.stdout);
        assert!(!w.files("out").is_empty(), "{name}");
    }
    // A spreadsheet export separated by `;`: the mapping says so, and converts it.
    let w = Workdir::new();
    let de = w.write(
        "de.csv",
        "kunde_id;stufe;aktiv\nK1;gold;true\nK2;silber;false\nK3;gold;true\n",
    );
    let r = w.run(&["init", &de]);
    assert_eq!(r.code, 0, "{}", r.stderr);
    assert!(
        r.stdout.contains("[input]\ndelimiter = \";\""),
        "{}",
        r.stdout
    );
    assert!(r.stdout.contains("column = \"kunde_id\""), "{}", r.stdout);
    let m = w.write("m.toml", &r.stdout);
    let run = w.run(&["--mapping", &m, &de, "--timestamp", "1700000000", "-q"]);
    assert_eq!(run.code, 0, "{}", run.stderr);
    assert_eq!(
        w.output_text("out"),
        "== ftp_dpm_12345_1700000000.sync.gz\n\
         K1\td_sid=900000001,d_sid=900000003\n\
         K2\td_sid=900000002,d_unsid=900000003\n\
         K3\td_sid=900000001,d_sid=900000003\n"
    );
    // What it guessed for the CRM export, reviewed by eye: the ID column by its name, the
    // e-mail column left out, value maps of the few values seen, lists split, flags.
    let w = Workdir::new();
    let r = w.run(&["init", &example("crm.csv")]);
    crate::harness::assert_golden("init/crm.toml", &r.stdout);
    // Blank lines are not rows of the sample: the same guess from the same rows.
    let crm = std::fs::read_to_string(example("crm.csv")).unwrap();
    let (header, rows) = crm.split_once('\n').unwrap();
    let blank = w.write("crm.csv", format!("{header}\n\n{rows}\n\n"));
    let again = w.run(&["init", &blank]);
    assert_eq!(again.code, 0, "{}", again.stderr);
    assert_eq!(again.stdout, r.stdout);
    // No rows, no values to guess from: said plainly.
    for text in ["customer_id,tier\n", "customer_id,tier\n\n\n"] {
        let empty = w.write("empty.csv", text);
        let r = w.run(&["init", &empty]);
        assert_eq!(r.code, 2, "{text:?}: {}", r.stderr);
        assert!(r.stdout.is_empty());
        assert!(
            r.stderr.ends_with("empty.csv: the export has no rows: init guesses the mapping from the values it sees; run it on an export with data\n"),
            "{text:?}: {}",
            r.stderr
        );
    }
}

#[test]
fn completions_and_help_say_what_the_tool_takes() {
    let w = Workdir::new();
    let r = w.run(&["completions", "bash"]);
    assert_eq!(r.code, 0, "{}", r.stderr);
    for word in [
        "validate",
        "push",
        "init",
        "schema",
        "--mapping",
        "--max-reject-rate",
    ] {
        assert!(r.stdout.contains(word), "{word}");
    }
    let r = w.run(&["--help"]);
    assert_eq!(r.code, 0);
    for line in [
        "Exit codes:",
        "  1         more rows rejected than --max-reject-rate allows",
        "129, 130, 143",
        "aam-etl init EXPORT > mapping.toml",
        "README.md, \"The mapping\"",
    ] {
        assert!(r.stdout.contains(line), "{line}: {}", r.stdout);
    }
}

#[test]
fn the_readme_describes_every_mapping_key() {
    fn keys(schema: &Value, out: &mut Vec<String>) {
        for (name, s) in schema
            .get("properties")
            .and_then(Value::as_object)
            .into_iter()
            .flatten()
        {
            out.push(name.clone());
            keys(s, out);
            if let Some(items) = s.get("items") {
                keys(items, out);
            }
        }
    }
    let schema: Value = serde_json::from_str(
        &std::fs::read_to_string(repo().join("mappings/aam-etl.schema.json")).unwrap(),
    )
    .unwrap();
    let mut names = Vec::new();
    keys(&schema, &mut names);
    assert!(names.len() > 50, "{names:?}");
    let readme = std::fs::read_to_string(repo().join("README.md")).unwrap();
    let missing: Vec<&String> = names
        .iter()
        .filter(|n| {
            !["`{n}`", "`[{n}]`", "`[[{n}]]`"]
                .iter()
                .any(|f| readme.contains(&f.replace("{n}", n)))
        })
        .collect();
    assert!(
        missing.is_empty(),
        "keys the README does not name: {missing:?}"
    );
}
