//! Delivery to S3 and exports read from S3, against a real local S3 server: moto in server
//! mode (`pip install "moto[server]"`; `.ci/run` installs it), started by each test on a
//! free port, with every request it receives recorded to a file.

use crate::harness::{example, mapping, Run, Workdir};
use std::io::{Read, Write};
use std::net::TcpStream;
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

const TS: &str = "1700000000";
const DAY: &str = "date=2023-11-14";

/// A moto server for one test; killed when dropped.
struct Moto {
    child: Child,
    port: u16,
    recording: PathBuf,
    _dir: tempfile::TempDir,
}

impl Moto {
    fn start() -> Moto {
        Moto::start_with(&[])
    }

    fn start_with(env: &[(&str, &str)]) -> Moto {
        let dir = tempfile::tempdir().unwrap();
        let port = std::net::TcpListener::bind("127.0.0.1:0")
            .unwrap()
            .local_addr()
            .unwrap()
            .port();
        let recording = dir.path().join("requests.jsonl");
        let child = Command::new("moto_server")
            .args(["-H", "127.0.0.1", "-p", &port.to_string()])
            .env("MOTO_ENABLE_RECORDING", "1")
            .env("MOTO_RECORDER_FILEPATH", &recording)
            .envs(env.iter().copied())
            .current_dir(dir.path())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("moto_server on PATH (pip install \"moto[server]\"; .ci/run installs it)");
        let moto = Moto {
            child,
            port,
            recording,
            _dir: dir,
        };
        let start = Instant::now();
        while TcpStream::connect(("127.0.0.1", port)).is_err() {
            assert!(
                start.elapsed() < Duration::from_secs(30),
                "moto did not start"
            );
            std::thread::sleep(Duration::from_millis(100));
        }
        moto
    }

    /// What the tool needs to reach this server (and nothing from the machine's ~/.aws).
    fn env(&self, home: &std::path::Path) -> Vec<(&'static str, String)> {
        vec![
            (
                "AWS_ENDPOINT_URL",
                format!("http://127.0.0.1:{}", self.port),
            ),
            ("AWS_ACCESS_KEY_ID", "AKIAIOSFODNN7EXAMPLE".into()),
            (
                "AWS_SECRET_ACCESS_KEY",
                "wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY".into(),
            ),
            ("AWS_REGION", "us-east-1".into()),
            ("HOME", home.display().to_string()),
        ]
    }

    /// A plain HTTP request: (status, body). moto does not check signatures, but it serves
    /// a private object (as AAM's ACL makes them) only to a request that names a key.
    fn http(&self, method: &str, path: &str, body: &[u8]) -> (u16, Vec<u8>) {
        let mut s = TcpStream::connect(("127.0.0.1", self.port)).unwrap();
        write!(
            s,
            "{method} {path} HTTP/1.1\r\nHost: 127.0.0.1:{}\r\nContent-Length: {}\r\nConnection: close\r\n\
             Authorization: AWS4-HMAC-SHA256 Credential=AKIAIOSFODNN7EXAMPLE/20261205/us-east-1/s3/aws4_request, SignedHeaders=host, Signature=0\r\n\r\n",
            self.port,
            body.len()
        )
        .unwrap();
        s.write_all(body).unwrap();
        let mut response = Vec::new();
        s.read_to_end(&mut response).unwrap();
        let split = response.windows(4).position(|w| w == b"\r\n\r\n").unwrap();
        let head = String::from_utf8_lossy(&response[..split]).to_lowercase();
        let status = head[9..12].parse().unwrap();
        let mut body = response[split + 4..].to_vec();
        if head.contains("transfer-encoding: chunked") {
            body = unchunk(&body);
        }
        (status, body)
    }

    fn create_bucket(&self, bucket: &str) {
        let (status, body) = self.http("PUT", &format!("/{bucket}"), b"");
        assert_eq!(status, 200, "{}", String::from_utf8_lossy(&body));
    }

    fn object(&self, bucket: &str, key: &str) -> Option<Vec<u8>> {
        let (status, body) = self.http("GET", &format!("/{bucket}/{key}"), b"");
        (status == 200).then_some(body)
    }

    /// The object PUTs the server received: (path, `x-amz-acl` header).
    fn puts(&self) -> Vec<(String, Option<String>)> {
        let text = std::fs::read_to_string(&self.recording).unwrap_or_default();
        text.lines()
            .map(|l| serde_json::from_str::<serde_json::Value>(l).unwrap())
            .filter(|r| r["method"] == "PUT")
            .map(|r| {
                let url = r["url"].as_str().unwrap().to_owned();
                let path = url.splitn(4, '/').nth(3).unwrap_or_default().to_owned();
                let acl = r["headers"]
                    .as_object()
                    .unwrap()
                    .iter()
                    .find(|(k, _)| k.eq_ignore_ascii_case("x-amz-acl"))
                    .map(|(_, v)| v.as_str().unwrap().to_owned());
                (path, acl)
            })
            .filter(|(path, _)| path.contains('/'))
            .collect()
    }
}

impl Drop for Moto {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn unchunk(mut body: &[u8]) -> Vec<u8> {
    let mut out = Vec::new();
    loop {
        let line_end = body.windows(2).position(|w| w == b"\r\n").unwrap();
        let size =
            usize::from_str_radix(std::str::from_utf8(&body[..line_end]).unwrap(), 16).unwrap();
        if size == 0 {
            return out;
        }
        out.extend_from_slice(&body[line_end + 2..line_end + 2 + size]);
        body = &body[line_end + 4 + size..];
    }
}

fn run(w: &Workdir, moto: &Moto, args: &[&str]) -> Run {
    w.run_env(w.dir.path(), args, &moto.env(w.dir.path()))
}

fn convert_args<'a>(input: &'a str, extra: &[&'a str]) -> Vec<&'a str> {
    let mut args = vec!["--mapping", "m.toml", input, "--timestamp", TS];
    args.extend(extra);
    args
}

/// A mapping of the bundled CRM example that writes two parts.
fn write_mapping(w: &Workdir) {
    let text = std::fs::read_to_string(mapping("crm.toml"))
        .unwrap()
        .replace("[output]\n", "[output]\nmax_part_bytes = 200\n");
    w.write("m.toml", text);
}

#[test]
fn a_delivery_lands_once_under_its_keys_with_its_acl_and_bytes() {
    let moto = Moto::start();
    moto.create_bucket("aam");
    let w = Workdir::new();
    write_mapping(&w);
    let crm = example("crm.csv");
    let r = run(
        &w,
        &moto,
        &convert_args(&crm, &["--deliver", "s3://aam/acme/"]),
    );
    assert_eq!(r.code, 0, "{}", r.stderr);
    let local = w.files("out");
    assert!(local.len() >= 2, "{local:?}");
    for (name, bytes) in &local {
        let key = format!("acme/{DAY}/{name}");
        assert_eq!(moto.object("aam", &key).as_ref(), Some(bytes), "{key}");
        assert!(
            r.stdout.contains(&format!("s3 uploaded: s3://aam/{key}\n")),
            "{}",
            r.stdout
        );
    }
    let puts = moto.puts();
    assert_eq!(puts.len(), local.len(), "one PUT per file: {puts:?}");
    for (path, acl) in &puts {
        assert_eq!(acl.as_deref(), Some("bucket-owner-full-control"), "{path}");
    }
    // A rerun of the same delivery sends nothing.
    let r = run(
        &w,
        &moto,
        &convert_args(&crm, &["--deliver", "s3://aam/acme/", "--force"]),
    );
    assert_eq!(r.code, 0, "{}", r.stderr);
    assert_eq!(moto.puts().len(), local.len(), "no new PUT");
    assert!(
        r.stdout
            .contains(&format!("s3: 0 of {} files uploaded, 0 bytes", local.len())),
        "{}",
        r.stdout
    );
}

#[test]
fn push_validates_dry_runs_and_never_replaces_a_different_object_unasked() {
    let moto = Moto::start();
    moto.create_bucket("aam");
    let w = Workdir::new();
    write_mapping(&w);
    let r = w.run(&convert_args(&example("crm.csv"), &[]));
    assert_eq!(r.code, 0, "{}", r.stderr);
    let names: Vec<String> = w.files("out").into_keys().collect();
    let r = run(
        &w,
        &moto,
        &["push", "out", "--deliver", "s3://aam/p", "--dry-run"],
    );
    assert_eq!(r.code, 0, "{}", r.stderr);
    for name in &names {
        assert!(
            r.stdout
                .contains(&format!("s3 would upload: s3://aam/p/{DAY}/{name}\n")),
            "{}",
            r.stdout
        );
    }
    assert!(moto.puts().is_empty());
    // Another object under the second file's key: the first goes up, then it stops.
    let (status, _) = moto.http("PUT", &format!("/aam/p/{DAY}/{}", names[1]), b"other");
    assert_eq!(status, 200);
    let r = run(&w, &moto, &["push", "out", "--deliver", "s3://aam/p"]);
    assert_eq!(r.code, 2, "{}", r.stdout);
    assert!(
        r.stderr.contains("a different object is already there")
            && r.stderr.contains("pass --force to replace it")
            && r.stderr.contains(&format!("up (1): p/{DAY}/{}", names[0]))
            && r.stderr
                .contains(&format!("not up ({}): {}", names.len() - 1, names[1])),
        "{}",
        r.stderr
    );
    assert_eq!(
        moto.object("aam", &format!("p/{DAY}/{}", names[1]))
            .unwrap(),
        b"other"
    );
    let r = run(
        &w,
        &moto,
        &["push", "out", "--deliver", "s3://aam/p", "--force"],
    );
    assert_eq!(r.code, 0, "{}", r.stderr);
    assert_eq!(
        moto.object("aam", &format!("p/{DAY}/{}", names[1]))
            .as_ref(),
        w.files("out").get(&names[1])
    );
    // A folder with a file validate rejects is not uploaded at all.
    w.write("bad/ftp_dpm_21_1700000000.sync", "u1\td_sid=x\n");
    let r = run(&w, &moto, &["push", "bad", "--deliver", "s3://aam/bad"]);
    assert_eq!(r.code, 2);
    assert!(
        r.stderr
            .contains("nothing uploaded: validate finds errors in the delivery")
            && r.stderr.contains("T002"),
        "{}",
        r.stderr
    );
    assert!(moto
        .object("aam", &format!("bad/{DAY}/ftp_dpm_21_1700000000.sync"))
        .is_none());
}

/// The server is down during a daily run with a state: exit 2, the state unchanged; once it
/// is back, the same run completes the delivery and only then advances the state.
#[test]
fn a_failed_upload_leaves_the_state_and_a_rerun_completes_it() {
    let w = Workdir::new();
    write_mapping(&w);
    let crm = example("crm.csv");
    let args = convert_args(&crm, &["--deliver", "s3://aam/acme/", "--state", "state"]);
    let down = {
        let moto = Moto::start();
        moto.env(w.dir.path())
    }; // stopped: nothing listens on its port any more
    let r = w.run_env(w.dir.path(), &args, &down);
    assert_eq!(r.code, 2, "{}", r.stdout);
    assert!(
        r.stderr
            .starts_with("error: s3://aam/acme/date=2023-11-14/ftp_dpm_21_1700000000.sync.1.gz: ")
            && r.stderr.contains("up (0): none")
            && r.stderr.contains("run again to upload the rest"),
        "{}",
        r.stderr
    );
    assert!(
        !w.path("state/state.json").exists(),
        "the state did not advance"
    );
    let moto = Moto::start();
    moto.create_bucket("aam");
    let mut again = args.clone();
    again.push("--force");
    let r = run(&w, &moto, &again);
    assert_eq!(r.code, 0, "{}", r.stderr);
    assert!(w.path("state/state.json").exists());
    for (name, bytes) in w.files("out") {
        assert_eq!(
            moto.object("aam", &format!("acme/{DAY}/{name}")),
            Some(bytes)
        );
    }
}

#[test]
fn wrong_credentials_are_named_and_no_secret_is_printed() {
    // With authentication on, moto knows no access key but its own.
    let moto = Moto::start_with(&[("INITIAL_NO_AUTH_ACTION_COUNT", "0")]);
    let w = Workdir::new();
    write_mapping(&w);
    let r = run(
        &w,
        &moto,
        &convert_args(&example("crm.csv"), &["--deliver", "s3://aam/acme/"]),
    );
    assert_eq!(r.code, 2, "{}", r.stdout);
    assert!(
        r.stderr.contains("S3 refused the credentials"),
        "{}",
        r.stderr
    );
    assert!(!r.stderr.contains("wJalrXUtnFEMI") && !r.stdout.contains("wJalrXUtnFEMI"));
}

/// Exports read from S3 (a key, and a pattern) convert exactly as the same files on disk.
#[test]
fn exports_read_from_s3_convert_as_from_disk() {
    let moto = Moto::start();
    moto.create_bucket("exports");
    for name in ["crm.parquet", "crm.csv"] {
        let bytes = std::fs::read(example(name)).unwrap();
        let (status, _) = moto.http("PUT", &format!("/exports/2026-12-05/{name}"), &bytes);
        assert_eq!(status, 200);
    }
    for (remote, local) in [
        (
            "s3://exports/2026-12-05/crm.parquet",
            example("crm.parquet"),
        ),
        ("s3://exports/2026-12-05/*.csv", example("crm.csv")),
    ] {
        let w = Workdir::new();
        write_mapping(&w);
        let from_s3 = run(&w, &moto, &convert_args(remote, &["--out", "s3"]));
        assert_eq!(from_s3.code, 0, "{remote}: {}", from_s3.stderr);
        let from_disk = w.run(&convert_args(&local, &["--out", "disk"]));
        assert_eq!(from_disk.code, 0, "{}", from_disk.stderr);
        assert_eq!(w.files("s3"), w.files("disk"), "{remote}");
    }
    let w = Workdir::new();
    write_mapping(&w);
    let r = run(
        &w,
        &moto,
        &convert_args("s3://exports/2026-12-05/*.ndjson", &[]),
    );
    assert_eq!(r.code, 2);
    assert_eq!(
        r.stderr,
        "error: s3://exports/2026-12-05/*.ndjson: matches no object\n"
    );
}

/// Credentials from a named profile of `~/.aws/credentials`, as the AWS CLI reads them.
#[test]
fn a_named_profile_supplies_the_credentials() {
    let moto = Moto::start();
    moto.create_bucket("aam");
    let w = Workdir::new();
    write_mapping(&w);
    w.write(
        ".aws/credentials",
        "[default]\naws_access_key_id = WRONG\n\n[aam]\naws_access_key_id = AKIAPROFILE\naws_secret_access_key = profile-secret\n",
    );
    w.write(".aws/config", "[profile aam]\nregion = us-east-1\n");
    let env: Vec<(&str, String)> = moto
        .env(w.dir.path())
        .into_iter()
        .filter(|(k, _)| !k.starts_with("AWS_ACCESS") && !k.starts_with("AWS_SECRET"))
        .chain([("AWS_PROFILE", "aam".to_owned())])
        .collect();
    // The destination from the mapping this time.
    let m = std::fs::read_to_string(w.path("m.toml")).unwrap();
    w.write(
        "m.toml",
        m.replace("[output]\n", "[output]\ndeliver = \"s3://aam/acme/\"\n"),
    );
    let crm = example("crm.csv");
    let args = convert_args(&crm, &["--force"]);
    let r = w.run_env(w.dir.path(), &args, &env);
    assert_eq!(r.code, 0, "{}", r.stderr);
    let text = std::fs::read_to_string(&moto.recording).unwrap();
    assert!(
        text.contains("Credential=AKIAPROFILE/"),
        "signed with the profile's key"
    );
    assert!(!r.stdout.contains("profile-secret") && !r.stderr.contains("profile-secret"));
    let unknown: Vec<(&str, String)> = env
        .iter()
        .map(|(k, v)| {
            (
                *k,
                if *k == "AWS_PROFILE" {
                    "nope".into()
                } else {
                    v.clone()
                },
            )
        })
        .collect();
    let r = w.run_env(w.dir.path(), &args, &unknown);
    assert_eq!(r.code, 2);
    assert_eq!(
        r.stderr,
        "error: AWS_PROFILE=nope: no such profile in ~/.aws/credentials or ~/.aws/config\n"
    );
}

#[test]
fn an_id_sync_delivery_lands_under_its_date_folder() {
    let moto = Moto::start();
    moto.create_bucket("aam");
    let w = Workdir::new();
    let text = std::fs::read_to_string(mapping("idsync.toml")).unwrap();
    w.write("m.toml", text);
    let input = example("idsync.csv");
    let r = run(
        &w,
        &moto,
        &convert_args(&input, &["--deliver", "s3://aam/acme/"]),
    );
    assert_eq!(r.code, 0, "{}", r.stderr);
    let local = w.files("out");
    let name = "adobe_id_0_21_1700000000.sync.gz";
    assert_eq!(local.keys().collect::<Vec<_>>(), [name]);
    let key = format!("acme/{DAY}/{name}");
    assert_eq!(moto.object("aam", &key).as_ref(), local.get(name), "{key}");
    assert_eq!(
        moto.puts(),
        [(
            format!("aam/{key}"),
            Some("bucket-owner-full-control".to_owned())
        )]
    );
}
