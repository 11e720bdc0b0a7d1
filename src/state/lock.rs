//! Target locks: one `run`, `resume` or `rollback` at a time per target (by default the
//! runbook's name; a runbook's `lock` key makes it finer, e.g. `payments/{{ environment }}`).
//!
//! A lock is an flock(2) on `<state dir>/locks/<hash of target>.lock`, whose content names the
//! holder (user, host, pid, since when, lock id). The lock's descriptor is inherited by every
//! process the holder starts, so the kernel frees the lock only when the holder *and* every step
//! process it left behind have exited: a free lock means nothing of the previous holder still
//! runs. Dropping a [`TargetLock`] therefore never unlocks explicitly (that would free the lock
//! for every process sharing the descriptor); the descriptor closes when rollout exits. When a
//! holder was killed and its step processes keep its lock, the next holder stops them first
//! (`exec::leftovers`), guided by what the lock file says about the dead holder.
//!
//! `rollout unlock` exists for the exceptional case (a holder that is alive but stuck, or on
//! another machine sharing the directory): it moves the lock file aside, which lets the next run
//! lock a fresh one, and records that it did.

use std::fs::{File, OpenOptions};
use std::io::{Read, Write};
use std::os::unix::fs::{FileExt, MetadataExt};
use std::path::{Path, PathBuf};
use std::time::Duration;

use nix::fcntl::{FcntlArg, FdFlag, Flock, FlockArg, fcntl};
use serde::{Deserialize, Serialize};

/// How long a second run waits for the lock before it is refused: long enough for a holder
/// that is exiting right now, short enough to answer within a second.
pub const WAIT: Duration = Duration::from_millis(400);

/// Who holds a lock, as written in the lock file.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Holder {
    pub lock_id: String,
    pub target: String,
    pub operator: String,
    pub os_user: String,
    pub host: String,
    pub pid: u32,
    pub since: String,
    /// `run`, `resume` or `rollback`.
    pub command: String,
    pub run: String,
    /// When the holder process started, in clock ticks after boot: tells it from a later
    /// process that was given the same pid.
    #[serde(default)]
    pub started: u64,
    /// The boot and pid namespace `pid` belongs to; pids are compared only within the same one.
    #[serde(default)]
    pub pid_scope: String,
    /// What the `ROLLOUT_TREE_ID` of every process of the holder's steps begins with.
    #[serde(default)]
    pub tree_tag: String,
    /// When the holder let go of the lock at the end of its session, its steps' processes
    /// stopped; absent while it holds the lock, and when it died holding it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub released: Option<String>,
}

impl std::fmt::Display for Holder {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        if self.lock_id.is_empty() {
            // Its lock file did not name a holder (yet) when it was read.
            return write!(f, "{}", self.operator);
        }
        write!(
            f,
            "{} ({}@{}, pid {}) since {}, {} run {} [lock {}]",
            self.operator,
            self.os_user,
            self.host,
            self.pid,
            self.since,
            match self.command.as_str() {
                "run" => "running",
                "resume" => "resuming",
                "rollback" => "rolling back",
                other => other,
            },
            self.run,
            self.lock_id
        )
    }
}

#[derive(Debug, thiserror::Error)]
pub enum LockError {
    #[error("`{}` is locked by {holder}", holder.target)]
    Held { holder: Box<Holder>, path: PathBuf },
    #[error("no lock `{0}` in {1}")]
    NotFound(String, String),
    #[error("{0}")]
    Io(String),
}

/// A held lock. Its descriptor closes when rollout exits (see the module's documentation).
pub struct TargetLock {
    file: Option<Flock<File>>,
    pub holder: Holder,
    /// The holder before, when its lock was removed with `rollout unlock`.
    pub broken: Option<String>,
    /// The lock file's previous content: the last holder, if any.
    pub previous: Option<Holder>,
    /// What the previous holder left running and this one stopped before taking over.
    pub stopped: Option<Stopped>,
}

/// Processes a dead holder left running, stopped by the next holder.
#[derive(Debug, Clone)]
pub struct Stopped {
    pub holder: Holder,
    pub processes: Vec<super::record::LeftoverProcess>,
    pub duration: Duration,
}

impl TargetLock {
    /// A lock held as a lease in a database (team mode): no file; `broken` says whose expired
    /// lease it took over.
    pub fn leased(holder: Holder, broken: Option<String>) -> Self {
        TargetLock {
            file: None,
            holder,
            broken,
            previous: None,
            stopped: None,
        }
    }

    /// Whether this lock is a lease in a database (team mode), which runs out unless renewed.
    pub fn is_lease(&self) -> bool {
        self.file.is_none()
    }

    /// Notes in the lock file that the holder let go of it at the end of its session (its step
    /// processes swept), so the next holder need not look for processes it left behind.
    pub fn release(mut self) {
        if let Some(file) = self.file.as_mut() {
            self.holder.released = Some(super::now());
            let text = serde_json::to_string_pretty(&self.holder).unwrap_or_default();
            // Not synced: after a crash of the machine, the boot id tells the next holder that
            // nothing of this one runs.
            let _ = file
                .set_len(0)
                .and_then(|()| file.write_all_at(text.as_bytes(), 0));
        }
    }
}

impl Drop for TargetLock {
    fn drop(&mut self) {
        // No LOCK_UN: that would free the lock for step processes still sharing it. The
        // descriptor stays open until rollout exits, moments later.
        if let Some(file) = self.file.take() {
            std::mem::forget(file);
        }
    }
}

fn locks_dir(root: &Path) -> PathBuf {
    root.join("locks")
}

fn file_for(root: &Path, target: &str) -> PathBuf {
    let digest = super::audit::sha256(target.as_bytes());
    let hex = digest.trim_start_matches("sha256:");
    locks_dir(root).join(format!("{}.lock", &hex[..16]))
}

fn io(context: impl std::fmt::Display) -> impl FnOnce(std::io::Error) -> LockError {
    move |e| LockError::Io(format!("{context}: {e}"))
}

pub fn new_lock_id() -> String {
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap_or_default();
    let digest = super::audit::sha256(
        format!("{}-{}-{:?}", now.as_nanos(), std::process::id(), now).as_bytes(),
    );
    format!("lk-{}", &digest.trim_start_matches("sha256:")[..10])
}

fn read_holder(file: &mut File) -> Option<Holder> {
    let mut text = String::new();
    file.read_to_string(&mut text).ok()?;
    serde_json::from_str(&text).ok()
}

/// Takes the lock of `target` if it is free now, or says who holds it. `holder` is filled in
/// with the lock id, the target and the time. The lock's descriptor is left open across `exec`,
/// so every process rollout starts from now on shares it.
pub fn try_acquire(root: &Path, target: &str, mut holder: Holder) -> Result<TargetLock, LockError> {
    let dir = locks_dir(root);
    super::ensure_root(root).map_err(io(format!("cannot create {}", root.display())))?;
    std::fs::create_dir_all(&dir).map_err(io(format!("cannot create {}", dir.display())))?;
    let path = file_for(root, target);
    loop {
        let file = OpenOptions::new()
            .create(true)
            .truncate(false)
            .read(true)
            .write(true)
            .open(&path)
            .map_err(io(format!("cannot open {}", path.display())))?;
        match Flock::lock(file, FlockArg::LockExclusiveNonblock) {
            Ok(mut lock) => {
                // `rollout unlock` may have moved the file aside between our open and lock:
                // then this lock guards nothing, and we start over on the new file.
                let same = std::fs::metadata(&path)
                    .ok()
                    .zip(lock.metadata().ok())
                    .is_some_and(|(a, b)| a.ino() == b.ino() && a.dev() == b.dev());
                if !same {
                    continue;
                }
                let previous = read_holder(&mut lock);
                holder.lock_id = new_lock_id();
                holder.target = target.to_string();
                holder.since = super::now();
                holder.released = None;
                let text = serde_json::to_string_pretty(&holder).unwrap_or_default();
                lock.set_len(0)
                    .and_then(|()| lock.write_all_at(text.as_bytes(), 0))
                    .and_then(|()| lock.sync_data())
                    .map_err(io(format!("cannot write {}", path.display())))?;
                fcntl(&*lock, FcntlArg::F_SETFD(FdFlag::empty()))
                    .map_err(|e| LockError::Io(format!("cannot share {}: {e}", path.display())))?;
                let broken = take_unlocked(&path);
                return Ok(TargetLock {
                    file: Some(lock),
                    holder,
                    broken,
                    previous,
                    stopped: None,
                });
            }
            Err((mut file, _)) => {
                let held = read_holder(&mut file).unwrap_or_else(|| Holder {
                    target: target.to_string(),
                    operator: "another rollout process, whose lock file names no holder yet".into(),
                    ..Holder::default()
                });
                return Err(LockError::Held {
                    holder: Box::new(held),
                    path,
                });
            }
        }
    }
}

/// The note `rollout unlock` left beside the lock file, if any: who held the lock it removed.
fn take_unlocked(path: &Path) -> Option<String> {
    let aside = path.with_extension("lock.unlocked");
    let text = std::fs::read_to_string(&aside).ok()?;
    let _ = std::fs::remove_file(&aside);
    let note: UnlockNote = serde_json::from_str(&text).ok()?;
    Some(format!(
        "lock {} held by {} was removed by {} with `rollout unlock` at {}",
        note.holder.lock_id, note.holder, note.by, note.at
    ))
}

/// One `rollout unlock`, as recorded in `<state dir>/locks/unlock.log`.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct UnlockNote {
    pub at: String,
    pub by: String,
    pub holder: Holder,
    /// Whether a live process still held the lock.
    pub was_held: bool,
}

/// A lock file as `rollout locks` lists it.
pub struct Listed {
    /// Who holds it, or held it last.
    pub holder: Holder,
    /// Whether some process holds it now.
    pub held: bool,
    pub path: PathBuf,
}

/// Every lock file in the state directory, with whether a process holds it now.
pub fn list(root: &Path) -> Vec<Listed> {
    let Ok(entries) = std::fs::read_dir(locks_dir(root)) else {
        return Vec::new();
    };
    let mut out: Vec<Listed> = entries
        .filter_map(Result::ok)
        .map(|e| e.path())
        .filter(|p| p.extension().is_some_and(|x| x == "lock"))
        .filter_map(|path| {
            let mut file = OpenOptions::new().read(true).write(true).open(&path).ok()?;
            let holder = read_holder(&mut file)?;
            let held = Flock::lock(file, FlockArg::LockSharedNonblock).is_err();
            Some(Listed { holder, held, path })
        })
        .collect();
    out.sort_by(|a, b| a.holder.since.cmp(&b.holder.since));
    out
}

/// Removes lock `lock_id` whoever holds it, and records who did. Returns the note.
pub fn unlock(root: &Path, lock_id: &str, by: &str) -> Result<UnlockNote, LockError> {
    let Some(Listed {
        holder,
        held: was_held,
        ..
    }) = list(root).into_iter().find(|l| l.holder.lock_id == lock_id)
    else {
        return Err(LockError::NotFound(
            lock_id.to_string(),
            locks_dir(root).display().to_string(),
        ));
    };
    let path = file_for(root, &holder.target);
    let note = UnlockNote {
        at: super::now(),
        by: by.to_string(),
        holder,
        was_held,
    };
    let line = serde_json::to_string(&note).unwrap_or_default();
    let log = locks_dir(root).join("unlock.log");
    OpenOptions::new()
        .create(true)
        .append(true)
        .open(&log)
        .and_then(|mut f| {
            f.write_all(line.as_bytes())?;
            f.write_all(b"\n")?;
            f.sync_data()
        })
        .map_err(io(format!("cannot record the unlock in {}", log.display())))?;
    let aside = path.with_extension("lock.unlocked");
    super::file::write_atomic(&aside, line.as_bytes()).map_err(|e| LockError::Io(e.to_string()))?;
    std::fs::remove_file(&path).map_err(io(format!("cannot remove {}", path.display())))?;
    Ok(note)
}
