//! The file backend: `<state dir>/runs/<run id>/` holds `journal.ndjson` (one JSON record a
//! line, each fsynced before rollout does anything else), `runbook.toml` (the text the run
//! started from, for showing what changed) and `lock` (held with flock while a process runs it).

use std::fs::{File, OpenOptions};
use std::io::{Read, Seek, SeekFrom, Write};
use std::path::{Path, PathBuf};

use nix::fcntl::{Flock, FlockArg};

use super::audit::{self, Fault};
use super::record::Envelope;
use super::{Entry, Journal, Record, Recovery, RunLog, Store, StoreError, StoreFuture, ready};

/// How long opening a run waits for another process to release it.
const LOCK_WAIT: std::time::Duration = std::time::Duration::from_millis(1500);

pub struct FileStore {
    root: PathBuf,
}

struct FileJournal {
    file: File,
    path: PathBuf,
    next_seq: u64,
    /// The hash of the last record written: the next record's `prev`.
    head: String,
    envelope: Envelope,
    _lock: Flock<File>,
}

fn io(context: impl std::fmt::Display) -> impl FnOnce(std::io::Error) -> StoreError {
    move |e| StoreError::Io(format!("{context}: {e}"))
}

/// Makes a directory entry durable: fsync of the directory itself.
fn sync_dir(dir: &Path) -> Result<(), StoreError> {
    File::open(dir)
        .and_then(|d| d.sync_all())
        .map_err(io(format!("cannot sync {}", dir.display())))
}

/// Writes a file atomically: temp file, fsync, rename, fsync of the directory.
pub fn write_atomic(path: &Path, bytes: &[u8]) -> Result<(), StoreError> {
    let dir = path.parent().unwrap_or(Path::new("."));
    let tmp = dir.join(format!(
        ".{}.tmp",
        path.file_name().and_then(|n| n.to_str()).unwrap_or("file")
    ));
    let mut f = File::create(&tmp).map_err(io(format!("cannot write {}", tmp.display())))?;
    f.write_all(bytes)
        .and_then(|()| f.sync_all())
        .map_err(io(format!("cannot write {}", tmp.display())))?;
    std::fs::rename(&tmp, path).map_err(io(format!("cannot rename to {}", path.display())))?;
    sync_dir(dir)
}

impl FileStore {
    pub fn new(root: PathBuf) -> Self {
        FileStore { root }
    }

    fn run_dir(&self, run_id: &str) -> PathBuf {
        self.root.join("runs").join(run_id)
    }

    fn lock(&self, run_id: &str) -> Result<Flock<File>, StoreError> {
        let path = self.run_dir(run_id).join("lock");
        let file = OpenOptions::new()
            .create(true)
            .truncate(false)
            .read(true)
            .write(true)
            .open(&path)
            .map_err(io(format!("cannot open {}", path.display())))?;
        // A process that just died can hold the lock a moment longer through a child that was
        // between fork and exec; wait briefly before calling the run busy.
        let deadline = std::time::Instant::now() + LOCK_WAIT;
        let mut file = file;
        loop {
            match Flock::lock(file, FlockArg::LockExclusiveNonblock) {
                Ok(mut lock) => {
                    let _ = lock.set_len(0);
                    let _ = write!(lock, "{}", std::process::id());
                    return Ok(lock);
                }
                Err((mut back, _)) if std::time::Instant::now() >= deadline => {
                    let mut holder = String::new();
                    let _ = back.read_to_string(&mut holder);
                    return Err(StoreError::Locked(
                        run_id.to_string(),
                        holder.trim().to_string(),
                    ));
                }
                Err((back, _)) => {
                    file = back;
                    std::thread::sleep(std::time::Duration::from_millis(20));
                }
            }
        }
    }

    /// Why a run has no journal: no such run, or one that never started.
    fn missing(&self, run_id: &str) -> StoreError {
        let dir = self.run_dir(run_id);
        if dir.is_dir() {
            StoreError::NeverStarted {
                run: run_id.to_string(),
                dir: dir.display().to_string(),
            }
        } else {
            StoreError::NotFound(run_id.to_string(), self.root.display().to_string())
        }
    }

    /// When a run's directory was last changed: for a run that never started, when it stopped.
    pub fn touched(&self, run_id: &str) -> Option<String> {
        let modified = std::fs::metadata(self.run_dir(run_id))
            .ok()?
            .modified()
            .ok()?;
        Some(humantime::format_rfc3339_millis(modified).to_string())
    }

    /// Where a run's journal (its audit log) is.
    pub fn journal_path(&self, run_id: &str) -> PathBuf {
        self.run_dir(run_id).join("journal.ndjson")
    }
}

/// Reads journal bytes up to the first fault: the records, where the good part ends, and what
/// is wrong after it (a record cut short, or a fault of the audit chain).
fn parse(bytes: &[u8]) -> (Vec<Record>, usize, Option<String>, Option<Fault>, String) {
    let v = audit::verify(bytes);
    let problem = match (&v.fault, v.truncated) {
        (Some(f), _) => Some(f.to_string()),
        (None, Some(n)) => Some(format!(
            "the last record is cut short ({n} bytes without an end of line)"
        )),
        (None, None) => None,
    };
    (v.records, v.good_end, problem, v.fault, v.head)
}

impl FileStore {
    fn create_run(&self, run_id: &str, runbook_text: &str) -> Result<Box<dyn Journal>, StoreError> {
        let dir = self.run_dir(run_id);
        super::ensure_root(&self.root)
            .map_err(io(format!("cannot create {}", self.root.display())))?;
        std::fs::create_dir_all(&dir).map_err(io(format!("cannot create {}", dir.display())))?;
        if let Some(runs) = dir.parent() {
            sync_dir(runs)?;
        }
        let lock = self.lock(run_id)?;
        write_atomic(&dir.join("runbook.toml"), runbook_text.as_bytes())?;
        let path = self.journal_path(run_id);
        let file = OpenOptions::new()
            .create_new(true)
            .append(true)
            .open(&path)
            .map_err(io(format!("cannot create {}", path.display())))?;
        sync_dir(&dir)?;
        Ok(Box::new(FileJournal {
            file,
            path,
            next_seq: 1,
            head: audit::GENESIS.to_string(),
            envelope: Envelope::default(),
            _lock: lock,
        }))
    }

    fn open_run(&self, run_id: &str) -> Result<(Box<dyn Journal>, RunLog), StoreError> {
        let path = self.journal_path(run_id);
        if !path.exists() {
            return Err(self.missing(run_id));
        }
        let lock = self.lock(run_id)?;
        let mut file = OpenOptions::new()
            .read(true)
            .append(true)
            .open(&path)
            .map_err(io(format!("cannot open {}", path.display())))?;
        let mut bytes = Vec::new();
        file.read_to_end(&mut bytes)
            .map_err(io(format!("cannot read {}", path.display())))?;
        let (records, good_end, problem, fault, head) = parse(&bytes);
        if let Some(fault) = fault {
            // A complete record that fails the chain is not a crash: never cut it off.
            return Err(StoreError::Tampered(
                run_id.to_string(),
                format!("{fault} (`rollout audit verify {run_id}` shows the whole check)"),
            ));
        }
        let mut saved_as = String::new();
        let recovery = problem.map(|detail| Recovery {
            good_records: records.len(),
            dropped_bytes: (bytes.len() - good_end) as u64,
            detail,
            saved_as: String::new(),
        });
        if recovery.is_some() {
            // Keep the cut-short record next to the journal for inspection, then cut it off;
            // the session records that it did.
            let tail = path.with_extension(format!("damaged-{}", std::process::id()));
            std::fs::write(&tail, &bytes[good_end..])
                .map_err(io(format!("cannot write {}", tail.display())))?;
            saved_as = tail.display().to_string();
            file.set_len(good_end as u64)
                .map_err(io(format!("cannot truncate {}", path.display())))?;
            file.sync_all()
                .map_err(io(format!("cannot sync {}", path.display())))?;
        }
        file.seek(SeekFrom::End(0)).map_err(io("seek"))?;
        let next_seq = records.len() as u64 + 1;
        let recovery = recovery.map(|r| Recovery { saved_as, ..r });
        Ok((
            Box::new(FileJournal {
                file,
                path,
                next_seq,
                head,
                envelope: Envelope::default(),
                _lock: lock,
            }),
            RunLog { records, recovery },
        ))
    }

    fn read_run(&self, run_id: &str) -> Result<RunLog, StoreError> {
        let path = self.journal_path(run_id);
        let bytes = std::fs::read(&path).map_err(|e| match e.kind() {
            std::io::ErrorKind::NotFound => self.missing(run_id),
            _ => StoreError::Io(format!("cannot read {}: {e}", path.display())),
        })?;
        let (records, good_end, problem, fault, _) = parse(&bytes);
        if records.is_empty() && fault.is_none() {
            // Empty, or its first record cut short: the run never got going.
            return Err(StoreError::NeverStarted {
                run: run_id.to_string(),
                dir: self.run_dir(run_id).display().to_string(),
            });
        }
        let recovery = problem.map(|detail| Recovery {
            good_records: records.len(),
            dropped_bytes: (bytes.len() - good_end) as u64,
            detail,
            saved_as: String::new(),
        });
        Ok(RunLog { records, recovery })
    }

    fn snapshot(&self, run_id: &str) -> Option<String> {
        std::fs::read_to_string(self.run_dir(run_id).join("runbook.toml")).ok()
    }

    /// Run ids, oldest first (see [`Store::list`]).
    pub fn run_ids(&self) -> Result<Vec<String>, StoreError> {
        let dir = self.root.join("runs");
        let entries = match std::fs::read_dir(&dir) {
            Ok(e) => e,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(Vec::new()),
            Err(e) => {
                return Err(StoreError::Io(format!(
                    "cannot read {}: {e}",
                    dir.display()
                )));
            }
        };
        // Every directory is a run, even one whose journal was never written: it is listed as
        // such rather than hidden.
        let mut ids: Vec<String> = entries
            .filter_map(Result::ok)
            .filter(|e| e.file_type().is_ok_and(|t| t.is_dir()))
            .filter_map(|e| e.file_name().into_string().ok())
            .collect();
        ids.sort();
        Ok(ids)
    }

    /// Whether some process holds the run's lock right now (see [`Store::is_locked`]).
    pub fn run_locked(&self, run_id: &str) -> bool {
        let path = self.run_dir(run_id).join("lock");
        let Ok(file) = OpenOptions::new().read(true).write(true).open(path) else {
            return false;
        };
        Flock::lock(file, FlockArg::LockSharedNonblock).is_err()
    }

    /// The state directory.
    pub fn root(&self) -> PathBuf {
        self.root.clone()
    }
}

/// The file backend works synchronously: each future is ready when it is made.
impl Store for FileStore {
    fn create<'a>(
        &'a self,
        run_id: &'a str,
        runbook_text: &'a str,
    ) -> StoreFuture<'a, Box<dyn Journal>> {
        ready(self.create_run(run_id, runbook_text))
    }

    fn open<'a>(&'a self, run_id: &'a str) -> StoreFuture<'a, (Box<dyn Journal>, RunLog)> {
        ready(self.open_run(run_id))
    }

    fn read<'a>(&'a self, run_id: &'a str) -> StoreFuture<'a, RunLog> {
        ready(self.read_run(run_id))
    }

    fn runbook_snapshot<'a>(&'a self, run_id: &'a str) -> StoreFuture<'a, Option<String>> {
        ready(Ok(self.snapshot(run_id)))
    }

    fn list(&self) -> StoreFuture<'_, Vec<String>> {
        ready(self.run_ids())
    }

    fn is_locked<'a>(&'a self, run_id: &'a str) -> StoreFuture<'a, bool> {
        ready(Ok(self.run_locked(run_id)))
    }

    fn approvals<'a>(
        &'a self,
        run_id: &'a str,
    ) -> StoreFuture<'a, Vec<Result<super::approval::Delivered, String>>> {
        ready(Ok(read_approvals(&self.run_dir(run_id).join(APPROVALS))))
    }

    fn deliver_approval<'a>(
        &'a self,
        run_id: &'a str,
        name: &'a str,
        text: &'a str,
    ) -> StoreFuture<'a, String> {
        let dir = self.run_dir(run_id).join(APPROVALS);
        let path = dir.join(name);
        let result = std::fs::create_dir_all(&dir)
            .map_err(io(format!("cannot create {}", dir.display())))
            .and_then(|()| write_atomic(&path, text.as_bytes()))
            .map(|()| path.display().to_string());
        ready(result)
    }

    fn flags(&self) -> String {
        format!("--state-dir {}", self.root.display())
    }
}

/// Whether a record must be on disk before rollout goes on (see [`FileJournal::write`]).
pub fn needs_sync(entry: &Entry) -> bool {
    !matches!(
        entry,
        Entry::RunStarted { .. }
            | Entry::RunResumed { .. }
            | Entry::PhaseStarted { .. }
            | Entry::PhaseFinished { .. }
            | Entry::StepFinished { .. }
            | Entry::StepSkipped { .. }
            | Entry::Measurement { .. }
            | Entry::InDoubtResolved { .. }
            | Entry::LockAcquired { .. }
            | Entry::LockReleased { .. }
            | Entry::LeftoversStopped { .. }
            | Entry::JournalRecovered { .. }
            | Entry::NotificationFailed { .. }
    )
}

impl FileJournal {
    fn write(&mut self, entry: Entry) -> Result<Record, StoreError> {
        let mut record = Record::chained(&self.envelope, self.next_seq, &self.head, entry);
        let (line, hash) = audit::encode(&record)
            .map_err(|e| StoreError::Io(format!("cannot encode a record: {e}")))?;
        let written = self.file.write_all(&line);
        // One fdatasync makes every earlier line durable too, so records that no side effect
        // follows directly ride on the next synced one: `step_started` (before each side
        // effect) and the records a run stops on. A step's result is therefore durable before
        // the next step's side effect, at one fsync per step instead of two.
        let synced = written.and_then(|()| {
            if needs_sync(&record.event) {
                self.file.sync_data()
            } else {
                Ok(())
            }
        });
        synced.map_err(|e| {
            StoreError::Io(format!(
                "cannot write the journal {}: {e}",
                self.path.display()
            ))
        })?;
        self.next_seq += 1;
        record.hash.clone_from(&hash);
        self.head = hash;
        Ok(record)
    }
}

/// Written synchronously: the future is ready when it is made.
impl Journal for FileJournal {
    fn append(&mut self, entry: Entry) -> StoreFuture<'_, Record> {
        ready(self.write(entry))
    }

    fn seal(&mut self) -> StoreFuture<'_, Record> {
        let records = self.next_seq;
        ready(self.write(Entry::Sealed { records }))
    }

    fn set_envelope(&mut self, envelope: Envelope) {
        self.envelope = envelope;
    }

    fn location(&self) -> String {
        self.path.display().to_string()
    }

    fn approvals(&self) -> StoreFuture<'_, Vec<Result<super::approval::Delivered, String>>> {
        let dir = self.path.parent().map(|d| d.join(APPROVALS));
        ready(Ok(dir.map(|d| read_approvals(&d)).unwrap_or_default()))
    }
}

/// The folder of a run's directory that approvals are delivered to.
pub const APPROVALS: &str = "approvals";

/// Every approval in `dir`, by file name; requests that wait for their signature are left out.
fn read_approvals(dir: &Path) -> Vec<Result<super::approval::Delivered, String>> {
    let Ok(entries) = std::fs::read_dir(dir) else {
        return Vec::new();
    };
    let mut paths: Vec<PathBuf> = entries
        .filter_map(Result::ok)
        .map(|e| e.path())
        .filter(|p| {
            !p.file_name()
                .and_then(|n| n.to_str())
                .is_some_and(|n| n.starts_with('.'))
        })
        .collect();
    paths.sort();
    paths
        .iter()
        .filter_map(|p| super::approval::read_file(p).transpose())
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn recovers_from_a_cut_at_any_byte_of_the_last_record() {
        let dir = tempfile::tempdir().unwrap();
        let store = FileStore::new(dir.path().to_path_buf());
        let mut j = store.create_run("r1", "x").unwrap();
        let runtime = tokio::runtime::Builder::new_current_thread()
            .build()
            .unwrap();
        for i in 0..3 {
            runtime
                .block_on(j.append(Entry::PhaseStarted {
                    phase: format!("p{i}"),
                }))
                .unwrap();
        }
        drop(j);
        let path = store.journal_path("r1");
        let full = std::fs::read(&path).unwrap();
        let second_end = full
            .iter()
            .enumerate()
            .filter(|(_, b)| **b == b'\n')
            .nth(1)
            .unwrap()
            .0
            + 1;
        for cut in second_end..full.len() {
            std::fs::write(&path, &full[..cut]).unwrap();
            let (_, loaded) = store.open_run("r1").unwrap();
            assert_eq!(loaded.records.len(), 2, "cut at {cut}");
            assert_eq!(loaded.recovery.is_some(), cut != second_end, "cut at {cut}");
            assert_eq!(std::fs::read(&path).unwrap(), &full[..second_end]);
        }
    }

    #[test]
    fn a_locked_run_cannot_be_opened_twice() {
        let dir = tempfile::tempdir().unwrap();
        let store = FileStore::new(dir.path().to_path_buf());
        let _j = store.create_run("r1", "x").unwrap();
        assert!(store.run_locked("r1"));
        assert!(matches!(store.open_run("r1"), Err(StoreError::Locked(..))));
    }
}
