//! Reading a runbook file into checked text. Owns every byte-level rule (size cap, UTF-8, BOM,
//! NUL bytes, emptiness) so that the TOML parser only ever sees plain text. No parsing here.

use std::io::Read;
use std::path::{Path, PathBuf};

/// The largest runbook rollout reads. A 10,000-step runbook is about 1.5 MiB.
pub const MAX_RUNBOOK_BYTES: u64 = 8 * 1024 * 1024;

/// A runbook's text, with the name errors show for it and the digest runs are bound to.
#[derive(Debug, Clone)]
pub struct Source {
    pub path: PathBuf,
    pub name: String,
    pub text: String,
    /// `sha256:<hex>` of the file, computed on first use.
    digest: std::sync::OnceLock<String>,
    /// Where each line starts, built on first use: a line number is then a binary search
    /// instead of a scan of the file up to the offset.
    /// Where each line starts (a runbook is far smaller than 4 GiB: see [`MAX_RUNBOOK_BYTES`]).
    line_starts: std::sync::OnceLock<Vec<u32>>,
}

#[derive(Debug, thiserror::Error)]
pub enum SourceError {
    #[error("cannot read `{name}`: {reason}")]
    Io { name: String, reason: String },
    #[error("`{name}` is {size} bytes, larger than the {max} byte limit for a runbook")]
    TooLarge { name: String, size: u64, max: u64 },
    #[error("`{name}` is empty: a runbook needs at least a [runbook] table and one phase")]
    Empty { name: String },
    #[error(
        "`{name}` contains only whitespace: a runbook needs at least a [runbook] table and one phase"
    )]
    Blank { name: String },
    #[error(
        "`{name}` starts with a UTF-8 byte-order mark: save it as UTF-8 without a BOM (e.g. `sed -i '1s/^\\xEF\\xBB\\xBF//' {name}`)"
    )]
    Utf8Bom { name: String },
    #[error(
        "`{name}` is encoded as UTF-16 (it starts with a UTF-16 byte-order mark): save it as UTF-8 (e.g. `iconv -f UTF-16 -t UTF-8 {name} > {name}.utf8`)"
    )]
    Utf16 { name: String },
    #[error(
        "`{name}` contains a NUL byte at byte offset {offset} (line {line}, column {column}): it looks like a binary file, not a TOML runbook"
    )]
    Nul {
        name: String,
        offset: usize,
        line: usize,
        column: usize,
    },
    #[error(
        "`{name}` is not valid UTF-8: invalid byte at byte offset {offset} (line {line}, column {column}); save it as UTF-8"
    )]
    NotUtf8 {
        name: String,
        offset: usize,
        line: usize,
        column: usize,
    },
}

impl Source {
    /// Reads and checks the file at `path`. `name` is how messages refer to it.
    pub fn read(path: &Path) -> Result<Source, SourceError> {
        let name = path.display().to_string();
        let io = |e: std::io::Error| SourceError::Io {
            name: name.clone(),
            reason: describe_io(&e),
        };
        let file = open_regular(path).map_err(|e| match e {
            OpenError::Io(e) => io(e),
            OpenError::Special(kind) => SourceError::Io {
                name: name.clone(),
                reason: special_reason(kind, "a runbook"),
            },
        })?;
        let meta = file.metadata().map_err(io)?;
        let mut bytes =
            Vec::with_capacity(usize::try_from(meta.len().min(MAX_RUNBOOK_BYTES)).unwrap_or(0));
        file.take(MAX_RUNBOOK_BYTES + 1)
            .read_to_end(&mut bytes)
            .map_err(io)?;
        if bytes.len() as u64 > MAX_RUNBOOK_BYTES {
            return Err(SourceError::TooLarge {
                name,
                size: meta.len().max(bytes.len() as u64),
                max: MAX_RUNBOOK_BYTES,
            });
        }
        Self::from_bytes(path, name, bytes)
    }

    pub fn from_bytes(path: &Path, name: String, bytes: Vec<u8>) -> Result<Source, SourceError> {
        if bytes.is_empty() {
            return Err(SourceError::Empty { name });
        }
        if bytes.starts_with(&[0xEF, 0xBB, 0xBF]) {
            return Err(SourceError::Utf8Bom { name });
        }
        if bytes.starts_with(&[0xFF, 0xFE]) || bytes.starts_with(&[0xFE, 0xFF]) {
            return Err(SourceError::Utf16 { name });
        }
        if let Some(offset) = memchr::memchr(0, &bytes) {
            let (line, column) = line_col_bytes(&bytes, offset);
            return Err(SourceError::Nul {
                name,
                offset,
                line,
                column,
            });
        }
        let text = match String::from_utf8(bytes) {
            Ok(text) => text,
            Err(e) => {
                let offset = e.utf8_error().valid_up_to();
                let (line, column) = line_col_bytes(e.as_bytes(), offset);
                return Err(SourceError::NotUtf8 {
                    name,
                    offset,
                    line,
                    column,
                });
            }
        };
        if text.trim().is_empty() {
            return Err(SourceError::Blank { name });
        }
        Ok(Source {
            path: path.to_path_buf(),
            name,
            text,
            digest: std::sync::OnceLock::new(),
            line_starts: std::sync::OnceLock::new(),
        })
    }

    /// The digest runs are bound to: `sha256:<hex>` of the file's bytes.
    pub fn digest(&self) -> &str {
        self.digest.get_or_init(|| digest_of(self.text.as_bytes()))
    }

    /// Where `span` is, for an error at run time: the file as named, its line and column.
    pub fn locate(&self, span: std::ops::Range<usize>) -> Location {
        let (line, column) = self.line_col(span.start);
        Location {
            file: self.name.clone(),
            line,
            column,
            span,
        }
    }

    /// The 1-based line of a byte offset (the line of [`Source::line_col`]).
    pub fn line(&self, offset: usize) -> usize {
        let at = |i: usize| u32::try_from(i).expect("a runbook is smaller than 4 GiB");
        let starts = self.line_starts.get_or_init(|| {
            std::iter::once(0)
                .chain(memchr::memchr_iter(b'\n', self.text.as_bytes()).map(|i| at(i + 1)))
                .collect()
        });
        starts.partition_point(|&start| start as usize <= offset)
    }

    /// 1-based line and column (in characters) of a byte offset.
    pub fn line_col(&self, offset: usize) -> (usize, usize) {
        line_col(&self.text, offset)
    }
}

/// Where something is in a runbook, for what happens at run time: the failing step's events,
/// its journal record and the report carry it, and the terminal draws the line with a caret.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct Location {
    /// The runbook as it was named (the path given on the command line).
    pub file: String,
    /// 1-based.
    pub line: usize,
    /// 1-based, in characters.
    pub column: usize,
    /// The bytes of the runbook it covers, for drawing it; not kept in records or events.
    #[serde(skip)]
    pub span: std::ops::Range<usize>,
}

impl std::fmt::Display for Location {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}:{}:{}", self.file, self.line, self.column)
    }
}

/// 1-based line and column (in characters) of a byte offset in `text`.
pub fn line_col(text: &str, offset: usize) -> (usize, usize) {
    let offset = offset.min(text.len());
    let before = &text[..offset];
    let line = before.matches('\n').count() + 1;
    let line_start = before.rfind('\n').map_or(0, |i| i + 1);
    (line, before[line_start..].chars().count() + 1)
}

fn line_col_bytes(bytes: &[u8], offset: usize) -> (usize, usize) {
    let before = &bytes[..offset];
    let line = before.iter().filter(|&&b| b == b'\n').count() + 1;
    let line_start = before
        .iter()
        .rposition(|&b| b == b'\n')
        .map_or(0, |i| i + 1);
    (line, offset - line_start + 1)
}

/// Why a file that is not a regular file is refused: `what` is what rollout wanted from it.
pub fn special_reason(kind: &str, what: &str) -> String {
    if kind == "a directory" {
        return "it is a directory".into();
    }
    format!("it is {kind}, not a regular file: rollout reads {what} only from a regular file")
}

/// A file rollout would not open.
#[derive(Debug)]
pub enum OpenError {
    Io(std::io::Error),
    /// Not a regular file: what it is, e.g. "a FIFO (named pipe)".
    Special(&'static str),
}

impl std::fmt::Display for OpenError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            OpenError::Io(e) => f.write_str(&describe_io(e)),
            OpenError::Special(kind) => write!(f, "it is {kind}, not a regular file"),
        }
    }
}

/// What a file is when it is not a regular file.
pub fn special_kind(t: std::fs::FileType) -> Option<&'static str> {
    use std::os::unix::fs::FileTypeExt;
    if t.is_file() {
        None
    } else if t.is_dir() {
        Some("a directory")
    } else if t.is_fifo() {
        Some("a FIFO (named pipe)")
    } else if t.is_socket() {
        Some("a socket")
    } else if t.is_char_device() {
        Some("a character device")
    } else if t.is_block_device() {
        Some("a block device")
    } else {
        Some("not a regular file")
    }
}

/// Opens a regular file for reading, and nothing else: opening a FIFO waits for a writer,
/// possibly forever, reading a device may never end, and opening one can have effects. The
/// file is checked before it is opened (following links) and again once open, in case another
/// was put in its place meanwhile; it is opened without blocking, so that a FIFO swapped in
/// cannot hold up the open either.
pub fn open_regular(path: &Path) -> Result<std::fs::File, OpenError> {
    use std::os::unix::fs::OpenOptionsExt;
    let meta = std::fs::metadata(path).map_err(OpenError::Io)?;
    if let Some(kind) = special_kind(meta.file_type()) {
        return Err(OpenError::Special(kind));
    }
    let file = std::fs::OpenOptions::new()
        .read(true)
        .custom_flags(nix::fcntl::OFlag::O_NONBLOCK.bits())
        .open(path)
        .map_err(OpenError::Io)?;
    let meta = file.metadata().map_err(OpenError::Io)?;
    if let Some(kind) = special_kind(meta.file_type()) {
        return Err(OpenError::Special(kind));
    }
    Ok(file)
}

/// Reads a whole regular file (see [`open_regular`]), at most `max` bytes of it; `Ok(None)`
/// when it is larger.
pub fn read_regular(path: &Path, max: u64) -> Result<Option<Vec<u8>>, OpenError> {
    let file = open_regular(path)?;
    let mut bytes = Vec::new();
    file.take(max + 1)
        .read_to_end(&mut bytes)
        .map_err(OpenError::Io)?;
    Ok((bytes.len() as u64 <= max).then_some(bytes))
}

fn describe_io(e: &std::io::Error) -> String {
    match e.kind() {
        std::io::ErrorKind::NotFound => "no such file".into(),
        std::io::ErrorKind::PermissionDenied => "permission denied".into(),
        _ => e.to_string(),
    }
}

/// `sha256:<hex>` of some bytes: how runs are bound to the exact runbook text they started from.
/// (aws-lc's SHA-256, already linked for TLS: several times faster than a portable one on
/// CPUs without SHA instructions, which matters for a large runbook.)
pub fn digest_of(bytes: &[u8]) -> String {
    const HEX: &[u8; 16] = b"0123456789abcdef";
    let mut hex = String::with_capacity(71);
    hex.push_str("sha256:");
    // By table, not `write!("{b:02x}")`: every journal record is hashed, and formatting was a
    // third of the hashing's cost.
    for &b in aws_lc_rs::digest::digest(&aws_lc_rs::digest::SHA256, bytes).as_ref() {
        hex.push(char::from(HEX[usize::from(b >> 4)]));
        hex.push(char::from(HEX[usize::from(b & 15)]));
    }
    hex
}
