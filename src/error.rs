//! Typed library errors. Each says where (file, key path, row) and what to do.

use std::fmt;
use std::path::PathBuf;

/// One problem found in a mapping, located by its key path (`traits[2].values`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Problem {
    pub key: String,
    pub message: String,
}

impl Problem {
    pub fn new(key: impl Into<String>, message: impl Into<String>) -> Problem {
        Problem {
            key: key.into(),
            message: message.into(),
        }
    }
}

impl fmt::Display for Problem {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.key.is_empty() {
            f.write_str(&self.message)
        } else {
            write!(f, "{}: {}", self.key, self.message)
        }
    }
}

#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// The mapping cannot be used; every problem found in one pass.
    #[error("{}: the mapping has {} problem{}:\n{}", path.display(), problems.len(),
        if problems.len() == 1 { "" } else { "s" }, list(problems))]
    Mapping {
        path: PathBuf,
        problems: Vec<Problem>,
    },
    /// The mapping names columns or conditions the source cannot provide.
    #[error("{}: the mapping does not fit this source:\n{}", path.display(), list(problems))]
    Columns {
        path: PathBuf,
        problems: Vec<Problem>,
    },
    /// A source file that cannot be read as the format it claims to be.
    #[error("{}: {message}", path.display())]
    Source { path: PathBuf, message: String },
    #[error("{}: {source}", path.display())]
    Io {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error("{}: already exists; pass --force to replace it", path.display())]
    OutputExists { path: PathBuf },
    /// An earlier delivery with the same name (data source, target, timestamp).
    #[error(
        "{}: a delivery with this name is already there ({}); pass --force to replace all of it",
        delivery(files),
        names(files)
    )]
    DeliveryExists { files: Vec<PathBuf> },
    /// Another run holds the folder.
    #[error("{}: the {what} is in use by another aam-etl run ({}); wait for it to finish",
        path.display(), holder.as_deref().filter(|h| !h.is_empty()).unwrap_or("holder unknown"))]
    Locked {
        path: PathBuf,
        what: String,
        holder: Option<String>,
    },
    /// A trait list (`--traits`, `taxonomy.path`) that cannot be used.
    #[error("{}: {message}", path.display())]
    Taxonomy { path: PathBuf, message: String },
    #[error("{0}")]
    Usage(String),
    /// An S3 delivery or read that failed; the message names the object and what is up.
    #[error("{0}")]
    Upload(String),
    /// A signal (Ctrl-C, SIGTERM, SIGHUP): the run stopped and removed what it had started
    /// to write.
    #[error("interrupted; no output written")]
    Interrupted,
}

/// `out/ftp_dpm_21_1700000000.*`: the delivery the files belong to.
fn delivery(files: &[PathBuf]) -> String {
    let Some(first) = files.first() else {
        return String::new();
    };
    let name = first
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_default();
    let stem = crate::inbound::PartName::stem_of(&name).unwrap_or(name);
    first
        .with_file_name(format!("{stem}.*"))
        .display()
        .to_string()
}

fn names(files: &[PathBuf]) -> String {
    let names: Vec<String> = files
        .iter()
        .filter_map(|f| f.file_name().map(|n| n.to_string_lossy().into_owned()))
        .collect();
    format!(
        "{} file{}: {}",
        names.len(),
        if names.len() == 1 { "" } else { "s" },
        names.join(", ")
    )
}

fn list(problems: &[Problem]) -> String {
    problems
        .iter()
        .map(|p| format!("  - {p}"))
        .collect::<Vec<_>>()
        .join("\n")
}

impl Error {
    pub fn io(path: impl Into<PathBuf>, source: std::io::Error) -> Error {
        Error::Io {
            path: path.into(),
            source,
        }
    }

    pub fn source(path: impl Into<PathBuf>, message: impl fmt::Display) -> Error {
        Error::Source {
            path: path.into(),
            message: message.to_string(),
        }
    }
}

pub type Result<T, E = Error> = std::result::Result<T, E>;
