//! Seeded generator of a realistic CRM export for the benchmarks (README: Performance):
//!
//!     cargo run --release --example gen_crm -- --rows 10000000 --out bench-data/
//!
//! Writes `crm.parquet`, `crm.csv` and `crm.ndjson` with identical content: about 4 rows per
//! user, rows in random order. The same `--rows` and `--seed` give the same files.
//! `--changed P` makes the next day's export: the same rows, but P% of the users (every
//! user whose number is a multiple of 100 / P) with another tier, flag, city and age.

use polars::prelude::*;
use std::io::{BufWriter, Write};
use std::path::PathBuf;

const CITIES: [&str; 12] = [
    "New York",
    "Los Angeles",
    "Chicago",
    "Houston",
    "San Francisco",
    "Boston",
    "Seattle",
    "Austin",
    "Denver",
    "Miami",
    "Paris",
    "Berlin",
];
const INTERESTS: [&str; 10] = [
    "sports", "travel", "music", "cooking", "gaming", "fashion", "tech", "finance", "health",
    "movies",
];

/// xorshift64*: small, fast and reproducible.
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_f491_4f6c_dd1d)
    }

    fn below(&mut self, n: u64) -> u64 {
        self.next() % n
    }
}

struct Args {
    rows: usize,
    out: PathBuf,
    seed: u64,
    /// Percent of users whose profile differs (0: none).
    changed: u64,
}

fn args() -> Args {
    let mut a = Args {
        rows: 1_000_000,
        out: PathBuf::from("bench-data"),
        seed: 42,
        changed: 0,
    };
    let mut it = std::env::args().skip(1);
    while let Some(flag) = it.next() {
        let value = it.next().unwrap_or_else(|| panic!("{flag} needs a value"));
        match flag.as_str() {
            "--rows" => a.rows = value.parse().expect("--rows takes a number"),
            "--out" => a.out = PathBuf::from(value),
            "--seed" => a.seed = value.parse().expect("--seed takes a number"),
            "--changed" => a.changed = value.parse().expect("--changed takes a percentage"),
            other => {
                panic!("unknown argument {other}; use --rows N --out DIR --seed S --changed P")
            }
        }
    }
    a
}

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let a = args();
    let users = (a.rows / 4).max(1) as u64;
    let mut rng = Rng(a.seed.max(1));
    let n = a.rows;
    let mut customer_id = Vec::with_capacity(n);
    let mut email = Vec::with_capacity(n);
    let mut segment = Vec::with_capacity(n);
    let mut optout: Vec<Option<i64>> = Vec::with_capacity(n);
    let mut tier: Vec<Option<&str>> = Vec::with_capacity(n);
    let mut vip = Vec::with_capacity(n);
    let mut city = Vec::with_capacity(n);
    let mut interests = Vec::with_capacity(n);
    let mut age = Vec::with_capacity(n);
    let mut signup = Vec::with_capacity(n);
    for _ in 0..n {
        // Random user per row: about 4 rows per user, in shuffled order.
        let u = rng.below(users);
        let mut h = Rng(u.wrapping_mul(0x9e37_79b9_7f4a_7c15) | 1);
        customer_id.push(format!("C{u:09}"));
        email.push(format!(
            "{:016x}{:016x}{:016x}{:016x}",
            h.next(),
            h.next(),
            h.next(),
            h.next()
        ));
        if a.changed > 0 && u.is_multiple_of(100 / a.changed.min(100)) {
            // Another day for this user: the profile drawn from another stream.
            h = Rng(u.wrapping_mul(0x2545_f491_4f6c_dd1d) | 1);
        }
        segment.push(1000 + rng.below(500) as i64);
        optout.push((rng.below(20) == 0).then(|| 1000 + rng.below(500) as i64));
        tier.push(match h.below(4) {
            0 => Some("gold"),
            1 => Some("silver"),
            2 => Some("bronze"),
            _ => None,
        });
        vip.push(h.below(10) == 0);
        city.push(CITIES[h.below(CITIES.len() as u64) as usize]);
        let k = rng.below(4) as usize;
        let picked: Vec<&str> = (0..k)
            .map(|_| INTERESTS[rng.below(INTERESTS.len() as u64) as usize])
            .collect();
        interests.push(picked.join("|"));
        age.push(18 + h.below(62) as i64);
        signup.push(format!(
            "20{:02}-{:02}-{:02}",
            15 + h.below(10),
            1 + h.below(12),
            1 + h.below(28)
        ));
    }
    std::fs::create_dir_all(&a.out)?;

    // CSV and NDJSON by hand: the values need no quoting or escaping.
    let mut csv = BufWriter::new(std::fs::File::create(a.out.join("crm.csv"))?);
    let mut ndjson = BufWriter::new(std::fs::File::create(a.out.join("crm.ndjson"))?);
    writeln!(csv, "customer_id,email_sha256,segment_id,optout_segment,tier,is_vip,city,interests,age,signup_date")?;
    for i in 0..n {
        let opt = optout[i].map(|v| v.to_string());
        writeln!(
            csv,
            "{},{},{},{},{},{},{},{},{},{}",
            customer_id[i],
            email[i],
            segment[i],
            opt.as_deref().unwrap_or(""),
            tier[i].unwrap_or(""),
            vip[i],
            city[i],
            interests[i],
            age[i],
            signup[i]
        )?;
        let json_opt = opt.as_deref().unwrap_or("null");
        let json_tier = tier[i].map_or("null".to_owned(), |t| format!("\"{t}\""));
        writeln!(
            ndjson,
            "{{\"customer_id\":\"{}\",\"email_sha256\":\"{}\",\"segment_id\":{},\"optout_segment\":{json_opt},\"tier\":{json_tier},\"is_vip\":{},\"city\":\"{}\",\"interests\":\"{}\",\"age\":{},\"signup_date\":\"{}\"}}",
            customer_id[i], email[i], segment[i], vip[i], city[i], interests[i], age[i], signup[i]
        )?;
    }
    csv.flush()?;
    ndjson.flush()?;

    let mut df = DataFrame::new(
        n,
        vec![
            Column::new("customer_id".into(), customer_id),
            Column::new("email_sha256".into(), email),
            Column::new("segment_id".into(), segment),
            Column::new("optout_segment".into(), optout),
            Column::new("tier".into(), tier),
            Column::new("is_vip".into(), vip),
            Column::new("city".into(), city),
            Column::new("interests".into(), interests),
            Column::new("age".into(), age),
            Column::new("signup_date".into(), signup),
        ],
    )?;
    let file = std::fs::File::create(a.out.join("crm.parquet"))?;
    ParquetWriter::new(file).finish(&mut df)?;
    eprintln!("wrote {n} rows ({users} users) to {}", a.out.display());
    Ok(())
}
