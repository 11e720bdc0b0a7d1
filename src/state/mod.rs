//! Everything durable about runs: the journal of each run, run ids, locks, and the listing of
//! runs. Behind the small [`Store`] / [`Journal`] interface so that a shared database backend
//! can replace the files for teams whose operators work from different machines.
//!
//! The interface is asynchronous (boxed futures), so that a backend on the network waits as a
//! task of the runtime instead of holding the run loop's thread; the file backend does its work
//! synchronously inside and hands back a ready future. A backend that holds a run by a lease
//! says through the journal's [`Fence`] when it lost it: the session then stops the running
//! step's processes and ends without writing another record.

pub mod approval;
pub mod audit;
pub mod file;
pub mod identity;
pub mod lock;
pub mod pg;
pub mod record;
pub mod verify;

use std::future::Future;
use std::pin::Pin;

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
    /// The store no longer lets this process write the run (its lease ran out, or another
    /// holder took the run over): nothing more is written.
    #[error(
        "this rollout lost the right to write run `{run}`: {why}; it stopped the running step and wrote nothing more"
    )]
    LeaseLost { run: String, why: String },
    /// The store could not be reached for long enough that this process can no longer count
    /// on holding the run: it stopped the running step and stops the run as paused.
    #[error(
        "run `{run}` stops as paused: {why}; nothing more was written, and the step that was running is in doubt"
    )]
    Unreachable { run: String, why: String },
}

/// What the store's methods give: the work, to be awaited.
pub type StoreFuture<'a, T> = Pin<Box<dyn Future<Output = Result<T, StoreError>> + Send + 'a>>;

/// Whether a journal may still write: `Some(why)` once its store no longer lets this process
/// write the run (a lease lost). The file backend never loses a run: it has none.
pub type Fence = tokio::sync::watch::Receiver<Option<String>>;

/// A result computed already, as a [`StoreFuture`]: for backends that work synchronously.
pub fn ready<'a, T: Send + 'a>(result: Result<T, StoreError>) -> StoreFuture<'a, T> {
    Box::pin(std::future::ready(result))
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

/// Appends records durably: when `append` is done, the record survives a crash.
pub trait Journal: Send {
    fn append(&mut self, entry: Entry) -> StoreFuture<'_, Record>;
    /// Closes this session's stretch of the log with a `sealed` record; its hash is the
    /// digest to publish.
    fn seal(&mut self) -> StoreFuture<'_, Record>;
    /// Who, where and which run every following record names.
    fn set_envelope(&mut self, envelope: record::Envelope);
    /// Where the record lives, for messages ("the record is in ...").
    fn location(&self) -> String;
    /// Tells when the store stops letting this process write the run; `None` for a store that
    /// never does (files).
    fn fence(&self) -> Option<Fence> {
        None
    }
    /// The signed approvals delivered for this run so far (by `rollout approve`, or files
    /// dropped into the run), each read or the reason it cannot be. The gate asks again while
    /// it waits, so an approval delivered meanwhile is seen.
    fn approvals(&self) -> StoreFuture<'_, Vec<Result<approval::Delivered, String>>> {
        ready(Ok(Vec::new()))
    }
}

pub trait Store: Sync {
    /// Creates a new run and locks it for this process.
    fn create<'a>(
        &'a self,
        run_id: &'a str,
        runbook_text: &'a str,
    ) -> StoreFuture<'a, Box<dyn Journal>>;
    /// Locks an existing run for appending; truncates a damaged tail to the last good record.
    fn open<'a>(&'a self, run_id: &'a str) -> StoreFuture<'a, (Box<dyn Journal>, RunLog)>;
    /// Reads a run without locking or changing it.
    fn read<'a>(&'a self, run_id: &'a str) -> StoreFuture<'a, RunLog>;
    /// The runbook text as it was when the run started.
    fn runbook_snapshot<'a>(&'a self, run_id: &'a str) -> StoreFuture<'a, Option<String>>;
    /// Run ids, oldest first, including runs that never started (see
    /// [`StoreError::NeverStarted`]).
    fn list(&self) -> StoreFuture<'_, Vec<String>>;
    /// Whether some process holds the run's lock right now.
    fn is_locked<'a>(&'a self, run_id: &'a str) -> StoreFuture<'a, bool>;
    /// The command-line flags that point rollout at this store, for the commands it suggests
    /// (`--state-dir DIR`).
    fn flags(&self) -> String;
    /// The signed approvals delivered to a run so far (what its journal's
    /// [`Journal::approvals`] gives the run itself), for `rollout status`.
    fn approvals<'a>(
        &'a self,
        run_id: &'a str,
    ) -> StoreFuture<'a, Vec<Result<approval::Delivered, String>>>;
    /// Delivers a signed approval to a run (`rollout approve`): a run waiting at the gate sees
    /// it. Returns where it was put.
    fn deliver_approval<'a>(
        &'a self,
        run_id: &'a str,
        name: &'a str,
        text: &'a str,
    ) -> StoreFuture<'a, String>;
    /// Why this process gave up its hold on the run because it could not reach the store in
    /// time (then the run stops as paused, not as taken over); `None` for files.
    fn lost_contact(&self) -> Option<String> {
        None
    }
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
