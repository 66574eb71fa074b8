//! Exports read from S3 (`s3://bucket/exports/2026-12-05/*.parquet`): each matching object
//! is copied into a temporary folder of the run, in ranges (memory does not grow with its
//! size), and read from there like any local file; the folder goes when the run ends.

use super::{s3_error, split_url, Bucket, Destination};
use crate::error::{Error, Result};
use object_store::path::Path as Key;
use object_store::{ObjectStore, ObjectStoreExt};
use std::io::Write;

/// Bytes fetched per request.
const RANGE_BYTES: u64 = 64 << 20;

pub fn is_s3_url(input: &str) -> bool {
    input.starts_with("s3://")
}

/// The local copies of a run's S3 inputs; removed when dropped.
pub struct Downloads {
    _dir: Option<tempfile::TempDir>,
}

impl Downloads {
    /// Replaces each `s3://` input (a key or a pattern in its last segment) with the local
    /// copies of the objects it names, in key order; other inputs pass through.
    pub fn fetch(inputs: &[String]) -> Result<(Downloads, Vec<String>)> {
        if !inputs.iter().any(|i| is_s3_url(i)) {
            return Ok((Downloads { _dir: None }, inputs.to_vec()));
        }
        let dir = tempfile::Builder::new()
            .prefix("aam-etl-s3-")
            .tempdir()
            .map_err(|e| Error::io(std::env::temp_dir(), e))?;
        let mut local = Vec::new();
        for (n, input) in inputs.iter().enumerate() {
            if !is_s3_url(input) {
                local.push(input.clone());
                continue;
            }
            let (bucket_name, key) = split_url(input)?;
            let bucket = Bucket::connect(&Destination {
                bucket: bucket_name,
                folder: String::new(),
            })?;
            let keys = bucket.matching(input, &key)?;
            let into = dir.path().join(n.to_string());
            std::fs::create_dir_all(&into).map_err(|e| Error::io(&into, e))?;
            for key in keys {
                let name = key.filename().unwrap_or("export").to_owned();
                let path = into.join(&name);
                bucket.download(&key, &path)?;
                local.push(path.display().to_string());
            }
        }
        Ok((Downloads { _dir: Some(dir) }, local))
    }
}

impl Bucket {
    /// The keys `pattern` names: itself, or with a wildcard in its last segment, the objects
    /// of that folder whose names match.
    fn matching(&self, url: &str, pattern: &str) -> Result<Vec<Key>> {
        let (folder, name) = pattern.rsplit_once('/').unwrap_or(("", pattern));
        if !name.contains(['*', '?', '[']) {
            return Ok(vec![Key::from(pattern)]);
        }
        let glob = glob::Pattern::new(name)
            .map_err(|e| Error::Usage(format!("{url}: bad pattern: {e}")))?;
        let prefix = (!folder.is_empty()).then(|| Key::from(folder));
        let listing = self
            .runtime
            .block_on(self.store.list_with_delimiter(prefix.as_ref()))
            .map_err(|e| s3_error(url, &e))?;
        let mut keys: Vec<Key> = listing
            .objects
            .into_iter()
            .map(|m| m.location)
            .filter(|k| k.filename().is_some_and(|f| glob.matches(f)))
            .collect();
        keys.sort();
        if keys.is_empty() {
            return Err(Error::Usage(format!("{url}: matches no object")));
        }
        Ok(keys)
    }

    fn download(&self, key: &Key, path: &std::path::Path) -> Result<()> {
        let object = self.dest.url(key.as_ref());
        let meta = self
            .runtime
            .block_on(self.store.head(key))
            .map_err(|e| s3_error(&object, &e))?;
        let mut file = std::fs::File::create(path).map_err(|e| Error::io(path, e))?;
        let mut at = 0;
        while at < meta.size {
            let end = (at + RANGE_BYTES).min(meta.size);
            let bytes = self
                .runtime
                .block_on(self.store.get_range(key, at..end))
                .map_err(|e| s3_error(&object, &e))?;
            file.write_all(&bytes).map_err(|e| Error::io(path, e))?;
            at = end;
        }
        file.sync_all().map_err(|e| Error::io(path, e))?;
        Ok(())
    }
}
