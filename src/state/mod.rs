//! Everything durable about runs: the journal of each run, run ids, locks, and the listing of
//! runs. Behind the small [`Store`] / [`Journal`] interface so that a shared database backend
//! can replace the files for teams whose operators work from different machines.

pub mod audit;
pub mod file;
pub mod identity;
pub mod lock;
pub mod record;
pub mod verify;

use std::path::PathBuf;

pub use file::FileStore;
pub use identity::who;
pub use record::{Entry, Record, RunState};

#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    #[error("no run `{0}` in {1}")]
    NotFound(String, String),
    #[error("no runs in {0}")]
    NoRuns(String),
    #[error("run `{0}` is in use by another rollout process (pid {1}); wait for it to stop")]
    Locked(String, String),
    #[error("the journal of run `{0}` fails its audit check: {1}; refusing to write to it")]
    Tampered(String, String),
    /// The run's directory exists but its journal has no complete record.
    #[error(
        "run `{run}` never started: it has no journal record, so rollout stopped (killed) before the run's first record and no step ran, or its journal was removed; there is nothing to resume: start a new run with `rollout run RUNBOOK`, and `rm -r {dir}` removes this one"
    )]
    NeverStarted { run: String, dir: String },
    #[error("{0}")]
    Io(String),
}

/// A journal that was cut short or damaged and has been read up to its last good record.
#[derive(Debug, Clone)]
pub struct Recovery {
    pub good_records: usize,
    pub dropped_bytes: u64,
    pub detail: String,
    /// Where the cut-off bytes were kept.
    pub saved_as: String,
}

/// A run's records as read back, with what had to be recovered.
pub struct RunLog {
    pub records: Vec<Record>,
    pub recovery: Option<Recovery>,
}

/// Appends records durably: when `append` returns, the record survives a crash.
pub trait Journal {
    fn append(&mut self, entry: Entry) -> Result<Record, StoreError>;
    /// Closes this session's stretch of the log with a `sealed` record; its hash is the
    /// digest to publish.
    fn seal(&mut self) -> Result<Record, StoreError>;
    /// Who, where and which run every following record names.
    fn set_envelope(&mut self, envelope: record::Envelope);
    /// Where the record lives, for messages ("the record is in ...").
    fn location(&self) -> String;
}

pub trait Store {
    /// Creates a new run and locks it for this process.
    fn create(&self, run_id: &str, runbook_text: &str) -> Result<Box<dyn Journal>, StoreError>;
    /// Locks an existing run for appending; truncates a damaged tail to the last good record.
    fn open(&self, run_id: &str) -> Result<(Box<dyn Journal>, RunLog), StoreError>;
    /// Reads a run without locking or changing it.
    fn read(&self, run_id: &str) -> Result<RunLog, StoreError>;
    /// The runbook text as it was when the run started.
    fn runbook_snapshot(&self, run_id: &str) -> Option<String>;
    /// Run ids, oldest first, including runs that never started (see
    /// [`StoreError::NeverStarted`]).
    fn list(&self) -> Result<Vec<String>, StoreError>;
    /// Whether some process holds the run's lock right now.
    fn is_locked(&self, run_id: &str) -> bool;
    fn root(&self) -> PathBuf;
}

/// A new run id: sortable by start time (to the millisecond), unique enough for one state
/// directory: `20261121-233700123-a1b2`.
pub fn new_run_id() -> String {
    let now = std::time::SystemTime::now();
    let stamp = humantime::format_rfc3339_millis(now).to_string();
    let digits: String = stamp
        .chars()
        .filter(char::is_ascii_digit)
        .take(17)
        .collect();
    let nanos = now
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.subsec_nanos());
    let salt = (nanos ^ std::process::id().rotate_left(16)) & 0xffff;
    format!("{}-{}-{salt:04x}", &digits[..8], &digits[8..])
}

pub fn now() -> String {
    humantime::format_rfc3339_millis(std::time::SystemTime::now()).to_string()
}

/// Creates the state directory `root` if it does not exist yet, with a `.gitignore` that
/// ignores everything in it: runs and locks beside a runbook must not dirty the checkout (as
/// `.terraform/` does not). A directory that exists already is left as it is.
pub fn ensure_root(root: &std::path::Path) -> std::io::Result<()> {
    if root.is_dir() {
        return Ok(());
    }
    std::fs::create_dir_all(root)?;
    std::fs::write(
        root.join(".gitignore"),
        "# Written by rollout: its runs, journals and locks stay out of version control.\n*\n",
    )
}
