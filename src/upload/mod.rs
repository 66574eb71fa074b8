//! Delivery to AAM's S3 inbound location (SPEC: Delivery to S3), and exports read from S3.
//!
//! Objects go to `<bucket>/<folder>/date=<yyyy-mm-dd>/<file name>`, each written once, whole,
//! under its final name, with the ACL `bucket-owner-full-control`. An upload is idempotent:
//! an object already there with the same size and MD5 is skipped; a different one under the
//! same key is an error unless forced. Every PUT is confirmed by a HEAD (size, and the ETag,
//! which for a single PUT is the MD5 of the bytes).
//!
//! object_store is async; a small current-thread runtime drives it, so the rest of the tool
//! stays synchronous.

mod credentials;
mod download;

pub use download::{is_s3_url, Downloads};

use crate::error::{Error, Result};
use crate::inbound::{date_folder, FileName, IdSyncName};
use crate::progress::{Phase, Progress};
use md5::{Digest, Md5};
use object_store::aws::{AmazonS3, AmazonS3Builder, AmazonS3ConfigKey};
use object_store::path::Path as Key;
use object_store::{ClientOptions, ObjectStoreExt, RetryConfig};
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

/// `s3://bucket/folder/`: where a delivery goes.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Destination {
    pub bucket: String,
    /// The partner folder, without leading or trailing `/` (may be empty).
    pub folder: String,
}

impl Destination {
    pub fn parse(url: &str) -> Result<Destination> {
        let (bucket, folder) = split_url(url)?;
        Ok(Destination {
            bucket,
            folder: folder.trim_matches('/').to_owned(),
        })
    }

    /// The key of a delivery file: `<folder>/date=<day of its timestamp>/<name>`. The day is
    /// the file name's (the UTC day it was made for): a rerun after midnight writes the same
    /// keys, not a second delivery under the next day.
    pub fn key(&self, file_name: &str) -> Result<String> {
        let timestamp = FileName::parse(file_name)
            .map(|f| f.timestamp)
            .or_else(|_| IdSyncName::parse(file_name).map(|f| f.timestamp))
            .map_err(|e| Error::Usage(format!("{file_name}: not a delivery file: {e}")))?;
        let day = date_folder(timestamp);
        Ok(if self.folder.is_empty() {
            format!("{day}/{file_name}")
        } else {
            format!("{}/{day}/{file_name}", self.folder)
        })
    }

    pub fn url(&self, key: &str) -> String {
        format!("s3://{}/{key}", self.bucket)
    }
}

/// `s3://bucket/rest` -> (bucket, rest).
fn split_url(url: &str) -> Result<(String, String)> {
    let bad = || {
        Error::Usage(format!(
            "`{url}` is not an S3 URL; write s3://<bucket>/<folder>/"
        ))
    };
    let rest = url.strip_prefix("s3://").ok_or_else(bad)?;
    let (bucket, path) = rest.split_once('/').unwrap_or((rest, ""));
    if bucket.is_empty() {
        return Err(bad());
    }
    Ok((bucket.to_owned(), path.to_owned()))
}

/// What happened to one file.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Action {
    Uploaded,
    /// Already there with the same size and MD5 (a rerun).
    AlreadyThere,
    /// `--dry-run`.
    WouldUpload,
}

#[derive(Debug, Clone, serde::Serialize)]
pub struct Uploaded {
    pub key: String,
    pub bytes: u64,
    pub action: Action,
}

#[derive(Debug, Clone, Default, serde::Serialize)]
pub struct UploadReport {
    pub destination: String,
    pub objects: Vec<Uploaded>,
    /// Bytes sent (objects already there not counted).
    pub bytes_sent: u64,
    pub seconds: f64,
}

/// A connection to one bucket: uploads into it, downloads from it.
pub struct Bucket {
    dest: Destination,
    store: AmazonS3,
    runtime: tokio::runtime::Runtime,
}

impl Bucket {
    /// Credentials and endpoint as the AWS CLI finds them (see [`credentials`]).
    pub fn connect(dest: &Destination) -> Result<Bucket> {
        let mut headers = object_store::HeaderMap::new();
        headers.insert(
            "x-amz-acl",
            object_store::HeaderValue::from_static("bucket-owner-full-control"),
        );
        let builder = credentials::apply(AmazonS3Builder::from_env())?;
        // Plain HTTP only when the endpoint's URL says so (a local S3 server).
        let http = builder
            .get_config_value(&AmazonS3ConfigKey::Endpoint)
            .is_some_and(|u| u.starts_with("http://"));
        let builder = builder
            .with_bucket_name(&dest.bucket)
            .with_client_options(
                ClientOptions::new()
                    .with_default_headers(headers)
                    .with_allow_http(http),
            )
            .with_retry(RetryConfig {
                max_retries: 5,
                retry_timeout: Duration::from_secs(120),
                ..RetryConfig::default()
            });
        let store = builder
            .build()
            .map_err(|e| Error::Usage(format!("S3 ({}): {e}", dest.url(""))))?;
        let runtime = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .map_err(|e| Error::io("tokio runtime", e))?;
        Ok(Bucket {
            dest: dest.clone(),
            store,
            runtime,
        })
    }

    /// Uploads `files` (local paths), in order; stops at the first failure with an error that
    /// names what is up and what is not.
    /// `progress` is told the bytes to send and each file's as it is up.
    pub fn upload(
        &self,
        files: &[PathBuf],
        force: bool,
        dry_run: bool,
        progress: &Progress,
    ) -> Result<UploadReport> {
        let start = Instant::now();
        let sizes: Vec<u64> = files
            .iter()
            .map(|f| std::fs::metadata(f).map_or(0, |m| m.len()))
            .collect();
        progress.start(Phase::Uploading, sizes.iter().sum());
        let mut report = UploadReport {
            destination: self.dest.url(&self.dest.folder),
            ..UploadReport::default()
        };
        for (i, file) in files.iter().enumerate() {
            match self.upload_one(file, force, dry_run) {
                Ok(done) => {
                    progress.add(sizes[i]);
                    if done.action == Action::Uploaded {
                        report.bytes_sent += done.bytes;
                    }
                    report.objects.push(done);
                }
                Err(e) => return Err(self.partial(&report, &files[i..], e)),
            }
        }
        report.seconds = start.elapsed().as_secs_f64();
        Ok(report)
    }

    fn upload_one(&self, file: &Path, force: bool, dry_run: bool) -> Result<Uploaded> {
        let name = file
            .file_name()
            .map(|n| n.to_string_lossy().into_owned())
            .unwrap_or_default();
        let key = self.dest.key(&name)?;
        let bytes = std::fs::read(file).map_err(|e| Error::io(file, e))?;
        let size = bytes.len() as u64;
        let etag = format!("\"{:x}\"", Md5::digest(&bytes));
        let location = Key::from(key.as_str());
        let url = self.dest.url(&key);
        let done = |action| Uploaded {
            key: key.clone(),
            bytes: size,
            action,
        };
        match self.runtime.block_on(self.store.head(&location)) {
            Ok(meta) if meta.size == size && meta.e_tag.as_deref() == Some(etag.as_str()) => {
                return Ok(done(Action::AlreadyThere));
            }
            Ok(meta) if !force => {
                return Err(Error::Upload(format!(
                    "{url}: a different object is already there ({} bytes, ETag {}; this file: {size} bytes, MD5 {etag}); AAM may have processed it: pass --force to replace it",
                    meta.size,
                    meta.e_tag.as_deref().unwrap_or("none"),
                )));
            }
            Ok(_) | Err(object_store::Error::NotFound { .. }) => {}
            Err(e) => return Err(s3_error(&url, &e)),
        }
        if dry_run {
            return Ok(done(Action::WouldUpload));
        }
        self.runtime
            .block_on(self.store.put(&location, bytes.into()))
            .map_err(|e| s3_error(&url, &e))?;
        // S3 is strongly consistent: the HEAD sees what the PUT wrote.
        let meta = self
            .runtime
            .block_on(self.store.head(&location))
            .map_err(|e| s3_error(&url, &e))?;
        let etag_ok = match meta.e_tag.as_deref() {
            // A multipart ETag (`"…-N"`) is not an MD5; S3-compatible servers may send none.
            Some(t) if !t.contains('-') => t == etag,
            _ => true,
        };
        if meta.size != size || !etag_ok {
            return Err(Error::Upload(format!(
                "{url}: the server holds {} bytes (ETag {}) after the upload of {size} bytes (MD5 {etag})",
                meta.size,
                meta.e_tag.as_deref().unwrap_or("none")
            )));
        }
        Ok(done(Action::Uploaded))
    }

    /// The error of a delivery that stopped midway: what is up, what is not, and what to do.
    fn partial(&self, report: &UploadReport, rest: &[PathBuf], e: Error) -> Error {
        let up: Vec<&str> = report.objects.iter().map(|o| o.key.as_str()).collect();
        let not: Vec<String> = rest
            .iter()
            .filter_map(|f| f.file_name())
            .map(|n| n.to_string_lossy().into_owned())
            .collect();
        Error::Upload(format!(
            "{e}\n  up ({}): {}\n  not up ({}): {}\n  the delivery is incomplete: run again to upload the rest (files already up are skipped; a conversion reruns with the same --timestamp and --force)",
            up.len(),
            if up.is_empty() { "none".into() } else { up.join(", ") },
            not.len(),
            not.join(", ")
        ))
    }
}

/// Validates the files as `aam-etl validate` would; any error refuses the upload (AAM would
/// reject records, and says so only a day later).
pub fn check_delivery(files: &[PathBuf], id_type: Option<crate::inbound::IdType>) -> Result<()> {
    let opts = crate::validate::Options {
        id_type,
        strict: false,
        max_per_rule: 3,
        traits: None,
    };
    let mut problems = Vec::new();
    for file in files {
        let report = crate::validate::validate_file(file, &opts)?;
        problems.extend(
            report
                .diagnostics
                .iter()
                .filter(|d| d.severity == crate::validate::Severity::Error)
                .map(|d| d.to_text()),
        );
    }
    if problems.is_empty() {
        return Ok(());
    }
    problems.truncate(10);
    Err(Error::Upload(format!(
        "nothing uploaded: validate finds errors in the delivery:\n  {}",
        problems.join("\n  ")
    )))
}

/// The keys a dry run would write, from the plan (nothing is read or sent).
pub fn would_upload(dest: &Destination, plan: &crate::writer::Plan) -> Result<UploadReport> {
    let mut report = UploadReport {
        destination: dest.url(&dest.folder),
        ..UploadReport::default()
    };
    for part in &plan.parts {
        report.objects.push(Uploaded {
            key: dest.key(&part.name.render())?,
            bytes: part.bytes,
            action: Action::WouldUpload,
        });
    }
    Ok(report)
}

/// An S3 error in words a user can act on; never a credential.
fn s3_error(url: &str, e: &object_store::Error) -> Error {
    let text = e.to_string();
    let hint = if text.contains("InvalidAccessKeyId")
        || text.contains("SignatureDoesNotMatch")
        || text.contains("403")
    {
        "; S3 refused the credentials: check AWS_ACCESS_KEY_ID / AWS_SECRET_ACCESS_KEY or AWS_PROFILE"
    } else if text.contains("error sending request") {
        "; the S3 endpoint could not be reached: check AWS_ENDPOINT_URL and the network"
    } else if text.contains("NoSuchBucket") {
        "; the bucket does not exist: check the destination with your Adobe account team"
    } else {
        ""
    };
    Error::Upload(format!("{url}: {text}{hint}"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keys_carry_the_folder_and_the_day_of_the_file_name() {
        let d = Destination::parse("s3://demdex-s2s-clients/acme/").unwrap();
        assert_eq!(d.bucket, "demdex-s2s-clients");
        assert_eq!(
            d.key("ftp_dpm_21_1700000000.sync.1.gz").unwrap(),
            "acme/date=2023-11-14/ftp_dpm_21_1700000000.sync.1.gz"
        );
        let bare = Destination::parse("s3://b").unwrap();
        assert_eq!(
            bare.key("adobe_id_0_1_1700000000.sync").unwrap(),
            "date=2023-11-14/adobe_id_0_1_1700000000.sync"
        );
        assert!(d.key("notes.txt").is_err());
        for bad in ["b/acme", "s3:///acme", "https://b/acme"] {
            assert!(Destination::parse(bad).is_err(), "{bad}");
        }
    }
}
