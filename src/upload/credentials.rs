//! Credentials as the AWS CLI finds them: the environment (`AWS_ACCESS_KEY_ID`,
//! `AWS_SECRET_ACCESS_KEY`, `AWS_SESSION_TOKEN`, `AWS_REGION`, `AWS_ENDPOINT_URL`), else the
//! profile `AWS_PROFILE` (or `default`) of `~/.aws/credentials` and `~/.aws/config`, else the
//! instance or container role (object_store asks the metadata service). Secrets are handed to
//! the client and never printed.

use crate::error::{Error, Result};
use object_store::aws::{AmazonS3Builder, AmazonS3ConfigKey};
use std::collections::HashMap;
use std::path::PathBuf;

/// Adds what the environment does not set from the profile files; a region by default.
pub(super) fn apply(mut builder: AmazonS3Builder) -> Result<AmazonS3Builder> {
    let env = |k: &str| std::env::var(k).ok().filter(|v| !v.is_empty());
    let profile = env("AWS_PROFILE");
    let explicit = profile.is_some();
    let profile = profile.unwrap_or_else(|| "default".to_owned());
    let home = env("HOME").map(PathBuf::from);
    let file = |var: &str, name: &str| {
        env(var)
            .map(PathBuf::from)
            .or_else(|| home.as_ref().map(|h| h.join(".aws").join(name)))
    };
    let credentials = file("AWS_SHARED_CREDENTIALS_FILE", "credentials")
        .and_then(|p| read_ini(&p))
        .and_then(|mut sections| sections.remove(&profile));
    let config = file("AWS_CONFIG_FILE", "config")
        .and_then(|p| read_ini(&p))
        .and_then(|mut sections| {
            let name = if profile == "default" {
                "default".to_owned()
            } else {
                format!("profile {profile}")
            };
            sections.remove(&name)
        });
    if explicit && credentials.is_none() && config.is_none() {
        return Err(Error::Usage(format!(
            "AWS_PROFILE={profile}: no such profile in ~/.aws/credentials or ~/.aws/config"
        )));
    }
    let set = |b: AmazonS3Builder,
               key,
               var: &str,
               section: Option<&HashMap<String, String>>,
               name: &str| {
        match (env(var), section.and_then(|s| s.get(name))) {
            (None, Some(v)) => b.with_config(key, v.clone()),
            _ => b,
        }
    };
    if env("AWS_ACCESS_KEY_ID").is_none() {
        for (key, name) in [
            (AmazonS3ConfigKey::AccessKeyId, "aws_access_key_id"),
            (AmazonS3ConfigKey::SecretAccessKey, "aws_secret_access_key"),
            (AmazonS3ConfigKey::Token, "aws_session_token"),
        ] {
            if let Some(v) = credentials.as_ref().and_then(|s| s.get(name)) {
                builder = builder.with_config(key, v.clone());
            }
        }
    }
    builder = set(
        builder,
        AmazonS3ConfigKey::Region,
        "AWS_REGION",
        config.as_ref(),
        "region",
    );
    builder = set(
        builder,
        AmazonS3ConfigKey::Endpoint,
        "AWS_ENDPOINT_URL",
        config.as_ref(),
        "endpoint_url",
    );
    if env("AWS_REGION").is_none() && config.as_ref().and_then(|c| c.get("region")).is_none() {
        // AAM's bucket is in us-east-1; S3 redirects other regions' requests.
        builder = builder.with_config(AmazonS3ConfigKey::Region, "us-east-1");
    }
    Ok(builder)
}

/// An INI file's sections (`[name]`) and their `key = value` pairs; `None` when unreadable.
fn read_ini(path: &std::path::Path) -> Option<HashMap<String, HashMap<String, String>>> {
    let text = std::fs::read_to_string(path).ok()?;
    Some(parse_ini(&text))
}

fn parse_ini(text: &str) -> HashMap<String, HashMap<String, String>> {
    let mut sections: HashMap<String, HashMap<String, String>> = HashMap::new();
    let mut current = None;
    for line in text.lines() {
        let line = line.trim();
        if line.is_empty() || line.starts_with('#') || line.starts_with(';') {
            continue;
        }
        if let Some(name) = line.strip_prefix('[').and_then(|l| l.strip_suffix(']')) {
            current = Some(name.trim().to_owned());
            sections.entry(name.trim().to_owned()).or_default();
        } else if let (Some(section), Some((k, v))) = (&current, line.split_once('=')) {
            sections
                .entry(section.clone())
                .or_default()
                .insert(k.trim().to_owned(), v.trim().to_owned());
        }
    }
    sections
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn profile_files_parse_as_the_aws_cli_writes_them() {
        let s = parse_ini(
            "[default]\naws_access_key_id = AK1\naws_secret_access_key=SK1\n\n# note\n[profile aam]\nregion = eu-west-1\nendpoint_url = http://127.0.0.1:9000\n",
        );
        assert_eq!(s["default"]["aws_access_key_id"], "AK1");
        assert_eq!(s["default"]["aws_secret_access_key"], "SK1");
        assert_eq!(s["profile aam"]["region"], "eu-west-1");
        assert_eq!(s["profile aam"]["endpoint_url"], "http://127.0.0.1:9000");
    }
}
