//! The inbound data file format (SPEC: File names, File contents, Trait forms, User IDs).
//!
//! This is the one place that knows the syntax: the writer renders through it and the
//! validator parses through it, so the two can never disagree. Nothing here touches Polars.

mod filename;
mod ids;
mod idsync;
mod line;
mod parts;
mod traits;

pub use filename::{date_folder, is_date_folder, FileName, FileNameError, Mode, TIMESTAMP_RANGE};
pub use ids::{
    email_sha256, is_aam_uuid, is_uuid_shape, looks_like_email, looks_like_phone, IdProblem, IdType,
};
pub use idsync::{IdSyncKind, IdSyncName};
pub use line::{parse_line, wrap_user, LineError, ParsedLine, RenderTrait, WrapError};
pub use parts::{PartLimit, PartName, Rendered, UserBlock, UserTooLarge};
pub use traits::{
    check_key, is_control_byte, is_reserved_key, parse_element, parse_trait, render_signal,
    Element, ElementValue, IdTrait, KindCounts, ParsedTrait, Removal, Trait, TraitError, TraitKind,
};

/// SPEC: File contents. A line may be at most 102,400 bytes; longer lines are dropped whole.
/// We count the terminating `\n` too, so a written line is never even one byte over.
pub const MAX_LINE_BYTES: usize = 102_400;

/// SPEC: File contents. AAM keeps the first 200 lines of a user ID per file.
pub const MAX_LINES_PER_USER: usize = 200;

/// SPEC: File sizes. Optimal uncompressed part size (1 GB).
pub const OPTIMAL_PART_BYTES: u64 = 1_000_000_000;

/// SPEC: File sizes. Optimal gzip-compressed part size (200-300 MB).
pub const OPTIMAL_COMPRESSED_BYTES: u64 = 300_000_000;

/// SPEC: File sizes. Maximum uncompressed file size (5 GB).
pub const MAX_UNCOMPRESSED_BYTES: u64 = 5_000_000_000;

/// SPEC: File sizes. Maximum gzip-compressed file size (1 GB; the stricter of Adobe's two pages).
pub const MAX_COMPRESSED_BYTES: u64 = 1_000_000_000;
