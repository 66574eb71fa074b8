//! Incremental delivery (`--state`), checked against a small model of AAM's profile store:
//! day after day a seeded CRM export changes the way a CRM does, each day's delivery is
//! applied to the model in every order of its files, and the model must then hold, for every
//! user, what a full conversion of that day's export says (a user who left holds no trait
//! ID). The delivery must name exactly the users whose profile had to change.

use crate::harness::{gunzip_if, Workdir};
use aam_etl::inbound::{parse_line, Trait};
use std::collections::{BTreeMap, BTreeSet};

type Profiles = BTreeMap<String, BTreeSet<String>>;

const MAPPING: &str = r#"
[output]
dpid = 21

[user_id]
column = "id"
type = "dpuuid"

[[traits]]
type = "value_map"
column = "tier"
values = { gold = 111, silver = 112, bronze = 113 }
unmapped = "skip"

[[traits]]
type = "flag"
column = "vip"
trait_id = 200
remove_when_false = true

[[traits]]
type = "key_value"
column = "city"

[[traits]]
type = "trait_ids"
column = "segs"
split = "|"

[[traits]]
type = "trait_ids"
column = "ics"
form = "ic"
split = "|"
"#;

/// A seeded stream of numbers (an LCG: the same days on every machine).
struct Seeded(u64);

impl Seeded {
    fn next(&mut self, n: u64) -> u64 {
        self.0 = self
            .0
            .wrapping_mul(6364136223846793005)
            .wrapping_add(1442695040888963407);
        (self.0 >> 33) % n
    }
}

#[derive(Clone)]
struct Customer {
    tier: &'static str,
    vip: bool,
    city: &'static str,
    segs: BTreeSet<u64>,
    ics: BTreeSet<u64>,
}

const TIERS: [&str; 4] = ["gold", "silver", "bronze", ""];
const CITIES: [&str; 5] = ["Paris", "New York", "Lyon", "", "Zürich"];

fn customer(r: &mut Seeded) -> Customer {
    Customer {
        tier: TIERS[r.next(4) as usize],
        vip: r.next(3) == 0,
        city: CITIES[r.next(5) as usize],
        segs: (0..r.next(4)).map(|_| 1000 + r.next(12)).collect(),
        ics: (0..r.next(3)).map(|_| 30600 + r.next(5)).collect(),
    }
}

/// The next day of the CRM: users leave, arrive, come back changed; tiers, flags, cities
/// and memberships change.
fn next_day(
    r: &mut Seeded,
    crm: &mut BTreeMap<String, Customer>,
    gone: &mut BTreeMap<String, Customer>,
    next_id: &mut u64,
) {
    let ids: Vec<String> = crm.keys().cloned().collect();
    for id in ids {
        match r.next(20) {
            0 => {
                let c = crm.remove(&id).expect("listed");
                gone.insert(id, c);
            }
            1 => crm.get_mut(&id).expect("listed").tier = TIERS[r.next(4) as usize],
            2 => crm.get_mut(&id).expect("listed").vip ^= true,
            3 => crm.get_mut(&id).expect("listed").city = CITIES[r.next(5) as usize],
            4 => {
                let c = crm.get_mut(&id).expect("listed");
                c.segs.insert(1000 + r.next(12));
            }
            5 => {
                let c = crm.get_mut(&id).expect("listed");
                let first = c.segs.iter().next().copied();
                if let Some(s) = first {
                    c.segs.remove(&s);
                }
            }
            6 => {
                let c = crm.get_mut(&id).expect("listed");
                c.ics.clear();
            }
            _ => {}
        }
    }
    for _ in 0..3 {
        *next_id += 1;
        crm.insert(format!("C{:05}", *next_id), customer(r));
    }
    let back: Vec<String> = gone.keys().filter(|_| r.next(3) == 0).cloned().collect();
    for id in back {
        let mut c = gone.remove(&id).expect("listed");
        if r.next(2) == 0 {
            c.city = CITIES[r.next(5) as usize];
            c.segs.insert(1000 + r.next(12));
        }
        crm.insert(id, c);
    }
}

fn export(crm: &BTreeMap<String, Customer>) -> String {
    let mut csv = String::from("id,tier,vip,city,segs,ics\n");
    for (id, c) in crm {
        let join = |s: &BTreeSet<u64>| s.iter().map(u64::to_string).collect::<Vec<_>>().join("|");
        csv.push_str(&format!(
            "{id},{},{},{},{},{}\n",
            c.tier,
            c.vip,
            c.city,
            join(&c.segs),
            join(&c.ics)
        ));
    }
    csv
}

/// An element as the model keeps it: `id:N` for an onboarded trait, the text for a signal.
fn held(t: &Trait) -> String {
    match t {
        Trait::Sid(id) => format!("id:{id}"),
        other => other.render(),
    }
}

/// The lines of an inbound file: (user, traits).
fn lines(text: &str) -> Vec<(String, Vec<Trait>)> {
    text.lines()
        .map(|l| {
            let parsed = parse_line(l).unwrap();
            let traits = parsed.traits().map(|t| t.unwrap().value).collect();
            (parsed.user_id.to_owned(), traits)
        })
        .collect()
}

/// Applies one file to the model, as AAM does (SPEC: How AAM applies a delivery).
fn apply(model: &mut Profiles, name: &str, text: &str) {
    if name.contains(".overwrite") {
        let mut replaced: Profiles = BTreeMap::new();
        for (user, traits) in lines(text) {
            let set = replaced.entry(user).or_default();
            set.extend(traits.iter().filter_map(|t| match t {
                Trait::Unsid(_) | Trait::Remove(..) => None,
                t => Some(held(t)),
            }));
        }
        for (user, set) in replaced {
            model.insert(user, set);
        }
    } else {
        for (user, traits) in lines(text) {
            let set = model.entry(user).or_default();
            for t in traits {
                match t {
                    Trait::Unsid(id) | Trait::Remove(id, _) => {
                        set.remove(&format!("id:{id}"));
                    }
                    t => {
                        set.insert(held(&t));
                    }
                }
            }
        }
    }
}

/// What a full conversion sends per user: the additions, and the explicit removals.
fn full_conversion(text: &str) -> (Profiles, BTreeMap<String, BTreeSet<u64>>) {
    let mut adds = Profiles::new();
    let mut removals: BTreeMap<String, BTreeSet<u64>> = BTreeMap::new();
    for (user, traits) in lines(text) {
        for t in traits {
            match t {
                Trait::Unsid(id) | Trait::Remove(id, _) => {
                    removals.entry(user.clone()).or_default().insert(id);
                }
                t => {
                    adds.entry(user.clone()).or_default().insert(held(&t));
                }
            }
        }
    }
    (adds, removals)
}

/// Every file of a run's output folder: (name, text).
fn delivery(w: &Workdir, out: &str) -> Vec<(String, String)> {
    w.files(out)
        .into_iter()
        .map(|(name, bytes)| {
            let text = String::from_utf8(gunzip_if(&name, &bytes)).unwrap();
            (name, text)
        })
        .collect()
}

fn all_orders(files: &[(String, String)]) -> Vec<Vec<&(String, String)>> {
    match files {
        [] => vec![vec![]],
        [a] => vec![vec![a]],
        [a, b] => vec![vec![a, b], vec![b, a]],
        _ => panic!(
            "a delivery has a .sync and an .overwrite file at most: {}",
            files.len()
        ),
    }
}

fn run(w: &Workdir, args: &[&str]) -> crate::harness::Run {
    let r = w.run(args);
    assert_eq!(r.code, 0, "{args:?}: {}", r.stderr);
    r
}

#[test]
fn after_each_days_delivery_aam_holds_the_export_in_any_order_of_the_files() {
    let w = Workdir::new();
    w.write("m.toml", MAPPING);
    let mut r = Seeded(42);
    let mut crm: BTreeMap<String, Customer> = (0..40)
        .map(|i| (format!("C{i:05}"), customer(&mut r)))
        .collect();
    let mut gone = BTreeMap::new();
    let mut next_id = 40;
    let mut model = Profiles::new();
    let mut yesterday_removals: BTreeMap<String, BTreeSet<u64>> = BTreeMap::new();
    let mut overwrites = 0;
    for day in 0..8u64 {
        if day > 0 {
            next_day(&mut r, &mut crm, &mut gone, &mut next_id);
        }
        let ts = (1_700_000_000 + day * 86_400).to_string();
        w.write(&format!("day{day}.csv"), export(&crm));
        let input = format!("day{day}.csv");
        let (out, full_out) = (format!("out{day}"), format!("full{day}"));
        run(
            &w,
            &[
                "--mapping",
                "m.toml",
                &input,
                "--out",
                &full_out,
                "--timestamp",
                &ts,
            ],
        );
        let (target, removals) = full_conversion(&delivery(&w, &full_out)[0].1);
        let mut args = vec![
            "--mapping",
            "m.toml",
            &input,
            "--out",
            &out,
            "--timestamp",
            &ts,
        ];
        args.extend(["--state", "state"]);
        // Day 5 is a full refresh.
        if day == 5 {
            args.push("--full");
        }
        run(&w, &args);
        let files = delivery(&w, &out);
        // The users the delivery must name: those whose profile differs from the export,
        // those who left holding trait IDs, and those with an opt-out that appeared.
        let before = model.clone();
        let must: BTreeSet<String> = target
            .iter()
            .filter(|(u, set)| before.get(*u) != Some(set))
            .map(|(u, _)| u.clone())
            .chain(
                before
                    .iter()
                    .filter(|(u, set)| {
                        !target.contains_key(*u) && set.iter().any(|e| e.starts_with("id:"))
                    })
                    .map(|(u, _)| u.clone()),
            )
            .chain(removals.iter().filter_map(|(u, ids)| {
                let old = yesterday_removals.get(u);
                ids.iter()
                    .any(|id| old.is_none_or(|o| !o.contains(id)))
                    .then(|| u.clone())
            }))
            .collect();
        let named: BTreeSet<String> = files
            .iter()
            .flat_map(|(_, text)| lines(text).into_iter().map(|(u, _)| u))
            .collect();
        if day == 5 {
            // A full refresh names everyone with a trait, and those who left.
            assert!(
                named.is_superset(&target.keys().cloned().collect()),
                "day {day}"
            );
        } else {
            assert_eq!(
                named, must,
                "day {day}: the delivery names exactly who changed"
            );
        }
        for (name, text) in &files {
            if name.contains(".overwrite") {
                overwrites += lines(text).len();
            }
        }
        // No user in both files.
        if files.len() == 2 {
            let users = |t: &str| {
                lines(t)
                    .into_iter()
                    .map(|(u, _)| u)
                    .collect::<BTreeSet<_>>()
            };
            assert!(
                users(&files[0].1).is_disjoint(&users(&files[1].1)),
                "day {day}"
            );
        }
        let mut results = Vec::new();
        for order in all_orders(&files) {
            let mut m = model.clone();
            for (name, text) in order {
                apply(&mut m, name, text);
            }
            results.push(m);
        }
        for m in &results {
            assert_eq!(m, &results[0], "day {day}: the order of the files matters");
        }
        model = results.swap_remove(0);
        for (user, set) in &target {
            assert_eq!(model.get(user), Some(set), "day {day}, user {user}");
        }
        for (user, set) in &model {
            if !target.contains_key(user) {
                assert!(
                    !set.iter().any(|e| e.starts_with("id:")),
                    "day {day}: {user} left but holds {set:?}"
                );
            }
        }
        yesterday_removals = removals;
        // An unchanged rerun writes nothing.
        if day == 3 {
            let again = (1_700_000_000 + day * 86_400 + 60).to_string();
            let r = run(
                &w,
                &[
                    "--mapping",
                    "m.toml",
                    &input,
                    "--out",
                    "again",
                    "--timestamp",
                    &again,
                    "--state",
                    "state",
                ],
            );
            assert!(
                r.stdout.contains(&format!(
                    "no changes since the last delivery ({}, {ts}): no file written",
                    &aam_etl::inbound::date_folder(ts.parse().unwrap())[5..]
                )),
                "{}",
                r.stdout
            );
            assert!(w.files("again").is_empty());
        }
    }
    assert!(overwrites > 0, "the scenario has users who lost a signal");
    // The ledger has a line per delivery.
    let ledger = std::fs::read_to_string(w.path("state/ledger.jsonl")).unwrap();
    assert_eq!(ledger.lines().count(), 8, "{ledger}");
    assert!(
        ledger.lines().nth(5).unwrap().contains("\"full\":true"),
        "{ledger}"
    );
}

/// Every file of a folder, byte for byte (the lock aside: it exists only while a run holds
/// the folder).
fn snapshot_of(w: &Workdir, dir: &str) -> BTreeMap<String, Vec<u8>> {
    let mut files = w.files(dir);
    files.remove(".aam-etl.lock");
    files
}

#[test]
fn a_crash_between_publishing_and_committing_is_repaired_by_the_next_run() {
    let w = Workdir::new();
    w.write("m.toml", MAPPING);
    let mut r = Seeded(7);
    let mut crm: BTreeMap<String, Customer> = (0..30)
        .map(|i| (format!("C{i:05}"), customer(&mut r)))
        .collect();
    w.write("day0.csv", export(&crm));
    run(
        &w,
        &[
            "--mapping",
            "m.toml",
            "day0.csv",
            "--state",
            "state",
            "--out",
            "out0",
            "--timestamp",
            "1700000000",
        ],
    );
    let mut model = Profiles::new();
    for (name, text) in delivery(&w, "out0") {
        apply(&mut model, &name, &text);
    }
    let (mut gone, mut next_id) = (BTreeMap::new(), 30);
    next_day(&mut r, &mut crm, &mut gone, &mut next_id);
    next_day(&mut r, &mut crm, &mut gone, &mut next_id);
    w.write("day1.csv", export(&crm));

    // A failed run (a broken row at the end of the export) leaves the state as it was.
    let before = snapshot_of(&w, "state");
    w.write("broken.csv", format!("{}C99999,gold\n", export(&crm)));
    let r1 = w.run(&[
        "--mapping",
        "m.toml",
        "broken.csv",
        "--state",
        "state",
        "--out",
        "outx",
        "--timestamp",
        "1700086400",
    ]);
    assert_eq!(r1.code, 2, "{}", r1.stderr);
    assert_eq!(snapshot_of(&w, "state"), before);

    // Day 1 is published, then the process dies before the state advances: here, the state
    // is put back as it was before the run.
    run(
        &w,
        &[
            "--mapping",
            "m.toml",
            "day1.csv",
            "--state",
            "state",
            "--out",
            "out1",
            "--timestamp",
            "1700086400",
        ],
    );
    assert_ne!(snapshot_of(&w, "state"), before);
    let after = snapshot_of(&w, "state");
    std::fs::remove_dir_all(w.path("state")).unwrap();
    for (name, bytes) in &before {
        w.write(&format!("state/{name}"), bytes);
    }
    // AAM applies day 1; the rerun sends the same diff again, which changes nothing there.
    for (name, text) in delivery(&w, "out1") {
        apply(&mut model, &name, &text);
    }
    run(
        &w,
        &[
            "--mapping",
            "m.toml",
            "day1.csv",
            "--state",
            "state",
            "--out",
            "out1b",
            "--timestamp",
            "1700086500",
        ],
    );
    let again: Vec<(String, String)> = delivery(&w, "out1b");
    let first: Vec<String> = delivery(&w, "out1").into_iter().map(|(_, t)| t).collect();
    assert_eq!(
        again.iter().map(|(_, t)| t.clone()).collect::<Vec<_>>(),
        first
    );
    for (name, text) in &again {
        apply(&mut model, name, text);
    }
    let (target, _) = full_conversion(&{
        run(
            &w,
            &[
                "--mapping",
                "m.toml",
                "day1.csv",
                "--out",
                "full1",
                "--timestamp",
                "1700086400",
            ],
        );
        delivery(&w, "full1")[0].1.clone()
    });
    for (user, set) in &target {
        assert_eq!(model.get(user), Some(set), "{user}");
    }
    // The state now matches the one the crashed run would have committed, but for the
    // timestamps it records.
    let now = snapshot_of(&w, "state");
    assert_eq!(now.len(), after.len());
    let ledger = std::fs::read_to_string(w.path("state/ledger.jsonl")).unwrap();
    assert_eq!(ledger.lines().count(), 2, "{ledger}");
}

#[test]
fn a_state_belongs_to_its_data_source_and_a_refresh_comes_when_due() {
    let w = Workdir::new();
    w.write(
        "m.toml",
        format!("{MAPPING}\n[state]\npath = \"state\"\nrefresh_days = 30\n"),
    );
    let mut r = Seeded(3);
    let crm: BTreeMap<String, Customer> = (0..10)
        .map(|i| (format!("C{i:05}"), customer(&mut r)))
        .collect();
    w.write("day0.csv", export(&crm));
    run(
        &w,
        &[
            "--mapping",
            "m.toml",
            "day0.csv",
            "--out",
            "out0",
            "--timestamp",
            "1700000000",
        ],
    );
    assert!(
        w.path("state/state.json").exists(),
        "the mapping's [state] path is used"
    );
    // 29 days later: nothing changed, nothing sent; 30 days after the first: a full refresh.
    let r29 = run(
        &w,
        &[
            "--mapping",
            "m.toml",
            "day0.csv",
            "--out",
            "out29",
            "--timestamp",
            "1702505600",
        ],
    );
    assert!(
        r29.stdout.contains("no changes since the last delivery"),
        "{}",
        r29.stdout
    );
    run(
        &w,
        &[
            "--mapping",
            "m.toml",
            "day0.csv",
            "--out",
            "out30",
            "--timestamp",
            "1702592000",
        ],
    );
    let names: Vec<String> = w.files("out30").into_keys().collect();
    assert_eq!(names, ["ftp_dpm_21_1702592000.overwrite.gz"]);
    // Another data source's mapping cannot use this state.
    w.write(
        "other.toml",
        MAPPING.replace("dpid = 21", "dpid = 22") + "\n[state]\npath = \"state\"\n",
    );
    let r = w.run(&[
        "--mapping",
        "other.toml",
        "day0.csv",
        "--out",
        "outo",
        "--timestamp",
        "1702600000",
    ]);
    assert_eq!(r.code, 2);
    assert_eq!(
        r.stderr,
        "error: state: this state belongs to DPID 21, dpuuid IDs, but the mapping sends DPID 22, dpuuid IDs; use the state folder of that data source, or a new one\n"
    );
    // --full needs a state.
    w.write("plain.toml", MAPPING);
    let r = w.run(&["--mapping", "plain.toml", "day0.csv", "--full"]);
    assert_eq!(r.code, 2);
    assert_eq!(
        r.stderr,
        "error: --full sends a full refresh of a state: give the state folder (--state DIR, or path under [state])\n"
    );
}

/// The README's worked example, as written there.
#[test]
fn the_readme_worked_example() {
    let w = Workdir::new();
    w.write(
        "crm.toml",
        "[output]\ndpid = 21\n[user_id]\ncolumn = \"id\"\ntype = \"dpuuid\"\n\
         [[traits]]\ntype = \"value_map\"\ncolumn = \"tier\"\nvalues = { gold = 111, silver = 112 }\n\
         [[traits]]\ntype = \"key_value\"\ncolumn = \"city\"\n",
    );
    w.write("day1.csv", "id,tier,city\nC1,gold,Paris\nC2,silver,Lyon\n");
    w.write(
        "day2.csv",
        "id,tier,city\nC1,silver,Paris\nC2,silver,Nice\nC3,gold,Lyon\n",
    );
    let day = |input: &str, ts: &str, out: &str| {
        run(
            &w,
            &[
                "--mapping",
                "crm.toml",
                input,
                "--state",
                "state/",
                "--timestamp",
                ts,
                "--out",
                out,
            ],
        );
        delivery(&w, out)
    };
    assert_eq!(
        day("day1.csv", "1700000000", "o1"),
        [(
            "ftp_dpm_21_1700000000.sync.gz".to_owned(),
            "C1\td_sid=111,city=Paris\nC2\td_sid=112,city=Lyon\n".to_owned()
        )]
    );
    assert_eq!(
        day("day2.csv", "1700086400", "o2"),
        [
            (
                "ftp_dpm_21_1700086400.overwrite.gz".to_owned(),
                "C2\td_sid=112,city=Nice\n".to_owned()
            ),
            (
                "ftp_dpm_21_1700086400.sync.gz".to_owned(),
                "C1\td_sid=112,d_unsid=111\nC3\td_sid=111,city=Lyon\n".to_owned()
            ),
        ]
    );
    let readme = std::fs::read_to_string(crate::harness::repo().join("README.md")).unwrap();
    for line in [
        "    -> ftp_dpm_21_1700000000.sync.gz:  C1  d_sid=111,city=Paris",
        "                                       C2  d_sid=112,city=Lyon",
        "    -> ftp_dpm_21_1700086400.sync.gz:       C1  d_sid=112,d_unsid=111",
        "                                            C3  d_sid=111,city=Lyon",
        "       ftp_dpm_21_1700086400.overwrite.gz:  C2  d_sid=112,city=Nice",
    ] {
        assert!(readme.contains(line), "README: {line}");
    }
}
