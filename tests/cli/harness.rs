//! Running the binary and reading what it wrote.

use flate2::read::MultiGzDecoder;
use std::collections::BTreeMap;
use std::io::Read;
use std::path::{Path, PathBuf};
use std::process::Command;

pub fn repo() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

pub fn fixture(rel: &str) -> String {
    repo()
        .join("tests/fixtures")
        .join(rel)
        .display()
        .to_string()
}

pub fn example(rel: &str) -> String {
    repo().join("examples").join(rel).display().to_string()
}

pub fn mapping(name: &str) -> String {
    repo().join("mappings").join(name).display().to_string()
}

/// Every mapping template and the bundled example it converts.
pub const TEMPLATES: [(&str, &str); 11] = [
    ("attributes.toml", "attributes.csv"),
    ("bench.toml", "bench-sample.csv"),
    ("c2c.toml", "idsync.csv"),
    ("crm.toml", "crm.csv"),
    ("devices.toml", "devices.ndjson"),
    ("history.toml", "history.csv"),
    ("idsync.toml", "idsync.csv"),
    ("memberships.toml", "memberships.csv"),
    ("overwrite.toml", "crm.parquet"),
    ("segments.toml", "segments.csv"),
    ("taxonomy.toml", "crm.csv"),
];

/// What a run printed and how it ended.
#[derive(Debug)]
pub struct Run {
    pub code: i32,
    pub stdout: String,
    pub stderr: String,
}

/// A temporary working folder in which the binary runs.
pub struct Workdir {
    pub dir: tempfile::TempDir,
}

impl Workdir {
    pub fn new() -> Workdir {
        Workdir {
            dir: tempfile::tempdir().expect("temp dir"),
        }
    }

    pub fn path(&self, rel: &str) -> PathBuf {
        self.dir.path().join(rel)
    }

    /// Writes a file into the folder and returns its path.
    pub fn write(&self, rel: &str, contents: impl AsRef<[u8]>) -> String {
        let p = self.path(rel);
        if let Some(parent) = p.parent() {
            std::fs::create_dir_all(parent).unwrap();
        }
        std::fs::write(&p, contents).unwrap();
        p.display().to_string()
    }

    pub fn run(&self, args: &[&str]) -> Run {
        self.run_in(self.dir.path(), args)
    }

    /// Runs with another working folder (so messages name fixtures by relative path).
    pub fn run_in(&self, cwd: &Path, args: &[&str]) -> Run {
        self.run_env(cwd, args, &[])
    }

    /// Runs with extra environment variables.
    pub fn run_env(&self, cwd: &Path, args: &[&str], env: &[(&str, String)]) -> Run {
        let out = Command::new(env!("CARGO_BIN_EXE_aam-etl"))
            .args(args)
            .current_dir(cwd)
            .envs(env.iter().map(|(k, v)| (k, v)))
            .output()
            .expect("run aam-etl");
        Run {
            code: out.status.code().unwrap_or(-1),
            stdout: String::from_utf8(out.stdout).expect("utf-8 stdout"),
            stderr: String::from_utf8(out.stderr).expect("utf-8 stderr"),
        }
    }

    /// Every file under `rel` (relative path -> raw bytes), sorted.
    pub fn files(&self, rel: &str) -> BTreeMap<String, Vec<u8>> {
        let root = self.path(rel);
        let mut out = BTreeMap::new();
        collect(&root, &root, &mut out);
        out
    }

    /// The files under `rel`, gunzipped, as one text: `== name` then the contents.
    pub fn output_text(&self, rel: &str) -> String {
        let mut text = String::new();
        for (name, bytes) in self.files(rel) {
            text.push_str(&format!("== {name}\n"));
            text.push_str(&String::from_utf8(gunzip_if(&name, &bytes)).expect("utf-8 output"));
        }
        text
    }
}

fn collect(root: &Path, dir: &Path, out: &mut BTreeMap<String, Vec<u8>>) {
    let Ok(entries) = std::fs::read_dir(dir) else {
        return;
    };
    for e in entries {
        let p = e.unwrap().path();
        if p.is_dir() {
            collect(root, &p, out);
        } else {
            let rel = p.strip_prefix(root).unwrap().display().to_string();
            out.insert(rel, std::fs::read(&p).unwrap());
        }
    }
}

pub fn gunzip_if(name: &str, bytes: &[u8]) -> Vec<u8> {
    if !name.ends_with(".gz") {
        return bytes.to_vec();
    }
    let mut out = Vec::new();
    MultiGzDecoder::new(bytes)
        .read_to_end(&mut out)
        .expect("valid gzip");
    out
}

/// Compares `actual` with `tests/fixtures/golden/<name>`; `UPDATE_GOLDEN=1` rewrites it.
pub fn assert_golden(name: &str, actual: &str) {
    let path = repo().join("tests/fixtures/golden").join(name);
    if std::env::var_os("UPDATE_GOLDEN").is_some() {
        std::fs::create_dir_all(path.parent().unwrap()).unwrap();
        std::fs::write(&path, actual).unwrap();
        return;
    }
    let expected = std::fs::read_to_string(&path).unwrap_or_else(|_| {
        panic!(
            "missing golden file {}: run with UPDATE_GOLDEN=1",
            path.display()
        )
    });
    assert_eq!(
        actual,
        expected,
        "output differs from golden file {}",
        path.display()
    );
}
