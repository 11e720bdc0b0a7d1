//! What a lock holder that died left running, and stopping it before the next holder begins.
//!
//! Every process rollout starts shares the target lock's descriptor (see `state::lock`), so when
//! rollout is killed while a step runs, the step's processes keep the lock. The next `run`,
//! `resume` or `rollback` of the target finds the lock held and the process that took it gone,
//! and stops what is left with the escalation a step gets on Ctrl-C (SIGINT, SIGTERM, SIGKILL,
//! `grace` apart) before its own first side effect. Leftovers are found in `/proc` two ways: a
//! descriptor on the lock file that carries the flock (`fdinfo` names the process that took
//! it), and the dead holder's `ROLLOUT_TREE_ID` prefix in the environment, which also finds a
//! process that closed its descriptors. Nothing is stopped unless the process that took the lock
//! is gone and the lock file names a holder of this boot and pid namespace; a live holder is
//! never touched, whatever its processes do.

use std::collections::BTreeMap;
use std::os::unix::fs::MetadataExt;
use std::path::Path;
use std::time::{Duration, Instant};

use nix::sys::signal::{Signal, kill};
use nix::unistd::Pid;

use super::process::{
    KILL_WAIT, POLL, Proc, TREE_VAR, carries_prefix, own_pid, proc_table, read_proc,
};
use crate::state::lock::{self, Holder, LockError, Stopped, TargetLock};
use crate::state::record::LeftoverProcess;

/// Why the lock could not be taken.
#[derive(Debug)]
pub enum TakeError {
    Lock(LockError),
    /// Processes a dead holder left behind survived SIGKILL (stuck in the kernel, or another
    /// user's): the lock is not free, and they are named.
    Stuck {
        holder: Box<Holder>,
        left: Vec<LeftoverProcess>,
    },
}

/// This process as a lock file records it: its start time (clock ticks after boot) and the
/// boot and pid namespace its pid means something in.
pub fn own_identity() -> (u64, String) {
    (read_proc(own_pid()).map_or(0, |p| p.start), pid_scope())
}

fn pid_scope() -> String {
    let boot = std::fs::read_to_string("/proc/sys/kernel/random/boot_id").unwrap_or_default();
    let ns = std::fs::read_link("/proc/self/ns/pid")
        .map(|p| p.display().to_string())
        .unwrap_or_default();
    if boot.trim().is_empty() || ns.is_empty() {
        return String::new();
    }
    format!("{} {ns}", boot.trim())
}

/// How much longer than [`lock::WAIT`] to wait for a held lock's file to name its holder.
const NAMING: Duration = Duration::from_secs(2);

/// Takes the lock of `target` for `holder`. A holder that died holding it (its step processes
/// keep it) has what it left stopped first; one that is alive is waited for briefly, then named
/// in the refusal. `tell` hears, before a stop begins, what is about to be stopped.
pub fn take_lock(
    root: &Path,
    target: &str,
    holder: &Holder,
    grace: Duration,
    tell: &mut dyn FnMut(String),
) -> Result<TargetLock, TakeError> {
    let deadline = Instant::now() + lock::WAIT;
    let mut stopped: Option<Stopped> = None;
    loop {
        match lock::try_acquire(root, target, holder.clone()) {
            Ok(mut taken) => {
                if stopped.is_none() {
                    // Free, but its last holder died without letting go: processes of its steps
                    // that closed the lock's descriptor may still run.
                    if let Some(previous) = taken.previous.clone() {
                        if !left_running(&previous).is_empty() {
                            tell(announce(&previous, target, false, grace));
                            stopped = Some(stop(&previous, grace, || left_running(&previous))?);
                        }
                    }
                }
                taken.stopped = stopped;
                return Ok(taken);
            }
            Err(LockError::Held { holder: held, path }) => {
                if stopped.is_none() && left_holding(&path, &held).is_some() {
                    tell(announce(&held, target, true, grace));
                    // Once no process holds the lock, the ones that closed it are still found
                    // by their tag.
                    let found =
                        || left_holding(&path, &held).unwrap_or_else(|| left_running(&held));
                    stopped = Some(stop(&held, grace, found)?);
                    continue;
                }
                // A holder that has just taken the lock may not have written its name yet: give
                // a loaded machine longer to name it before saying who holds the lock.
                let named = !held.lock_id.is_empty();
                if Instant::now() >= deadline + if named { Duration::ZERO } else { NAMING } {
                    return Err(TakeError::Lock(LockError::Held { holder: held, path }));
                }
                std::thread::sleep(Duration::from_millis(20));
            }
            Err(e) => return Err(TakeError::Lock(e)),
        }
    }
}

/// For a lock that is not a file (team mode's database lease): stops what `previous`, a holder
/// of this machine that died (its lease ran out), left running, found by its tree tag. `None`
/// when nothing of it runs here (it lives, ran elsewhere, or left nothing).
pub fn sweep_dead(
    previous: &Holder,
    target: &str,
    grace: Duration,
    tell: &mut dyn FnMut(String),
) -> Result<Option<Stopped>, TakeError> {
    if left_running(previous).is_empty() {
        return Ok(None);
    }
    tell(announce(previous, target, false, grace));
    stop(previous, grace, || left_running(previous)).map(Some)
}

fn announce(holder: &Holder, target: &str, holding: bool, grace: Duration) -> String {
    format!(
        "rollout pid {} (`{}` of run {}) died while processes of its steps ran; they {}: stopping them first (SIGINT, then SIGTERM and SIGKILL {} apart)",
        holder.pid,
        holder.command,
        holder.run,
        if holding {
            format!("still hold the lock on `{target}`")
        } else {
            "still run".to_string()
        },
        humantime::format_duration(grace)
    )
}

/// What `rollout locks` says about a lock whose holder may have died: the processes it left
/// running, if any (empty when the holder lives or released the lock).
pub fn left_behind(listed: &lock::Listed) -> Vec<(i32, String)> {
    let found = if listed.held {
        left_holding(&listed.path, &listed.holder).unwrap_or_default()
    } else {
        left_running(&listed.holder)
    };
    found.iter().map(|p| (p.pid, name_of(p.pid))).collect()
}

/// When the lock at `path` is held only through what a dead holder left behind: those
/// processes. `None` while the process that took the lock lives, and when that cannot be told
/// (the holders belong to another user or namespace, or the lock file names another holder).
fn left_holding(path: &Path, holder: &Holder) -> Option<Vec<Proc>> {
    // Checked first: it is cheap, and a live holder's processes are never looked at.
    if !is_dead(holder) {
        return None;
    }
    let holders = lock_holders(path);
    // Every descriptor sharing the lock shows the same lock, and so the same creator: the
    // holder the lock file names (or `0`, dead in an outer pid namespace), else it is not its.
    let creator = holders.first()?.1;
    if creator != 0 && u32::try_from(creator).ok() != Some(holder.pid) {
        return None;
    }
    let mut found: BTreeMap<i32, Proc> = holders.into_iter().map(|(p, _)| (p.pid, p)).collect();
    for p in tag_carriers(holder) {
        found.insert(p.pid, p);
    }
    Some(found.into_values().collect())
}

/// Processes of a dead `holder` that run although nothing holds its lock any more.
fn left_running(holder: &Holder) -> Vec<Proc> {
    if holder.released.is_some() || !is_dead(holder) {
        return Vec::new();
    }
    tag_carriers(holder)
}

/// Whether `holder`'s rollout process is gone, as far as this process can tell: a holder of
/// another boot, namespace or machine is never judged dead.
fn is_dead(holder: &Holder) -> bool {
    let Ok(pid) = i32::try_from(holder.pid) else {
        return false;
    };
    if pid <= 0 || holder.pid_scope.is_empty() || holder.pid_scope != pid_scope() {
        return false;
    }
    match read_proc(pid) {
        None => true,
        Some(p) => p.zombie || (holder.started != 0 && p.start != holder.started),
    }
}

/// Processes with a descriptor on `path` that carries its exclusive flock, each with the pid
/// that took the flock as `fdinfo` shows it (`0` when that process died in an outer pid
/// namespace).
fn lock_holders(path: &Path) -> Vec<(Proc, i32)> {
    let Ok(file) = std::fs::canonicalize(path) else {
        return Vec::new();
    };
    let Ok(meta) = std::fs::metadata(&file) else {
        return Vec::new();
    };
    let me = own_pid();
    let mut out = Vec::new();
    for p in proc_table() {
        if p.pid == me || p.zombie {
            continue;
        }
        let Ok(fds) = std::fs::read_dir(format!("/proc/{}/fd", p.pid)) else {
            continue;
        };
        for fd in fds.filter_map(Result::ok) {
            if std::fs::read_link(fd.path()).ok().as_deref() != Some(file.as_path()) {
                continue;
            }
            let same = std::fs::metadata(fd.path())
                .is_ok_and(|m| m.dev() == meta.dev() && m.ino() == meta.ino());
            let info = format!(
                "/proc/{}/fdinfo/{}",
                p.pid,
                fd.file_name().to_string_lossy()
            );
            let creator = std::fs::read_to_string(info)
                .ok()
                .and_then(|text| flock_creator(&text, meta.ino()));
            if let (true, Some(creator)) = (same, creator) {
                out.push((p, creator));
                break;
            }
        }
    }
    out
}

/// The pid in an `fdinfo` line for an exclusive flock on inode `ino`:
/// `lock:\t1: FLOCK  ADVISORY  WRITE 29691 fe:00:10010654 0 EOF`.
fn flock_creator(fdinfo: &str, ino: u64) -> Option<i32> {
    fdinfo
        .lines()
        .filter_map(|l| l.strip_prefix("lock:"))
        .find_map(|l| {
            let f: Vec<&str> = l.split_whitespace().collect();
            if f.get(1) != Some(&"FLOCK") || f.get(3) != Some(&"WRITE") {
                return None;
            }
            let node: u64 = f.get(5)?.rsplit(':').next()?.parse().ok()?;
            if node != ino {
                return None;
            }
            f.get(4)?.parse().ok()
        })
}

/// Processes started since `holder` that carry its `ROLLOUT_TREE_ID` prefix.
fn tag_carriers(holder: &Holder) -> Vec<Proc> {
    if holder.tree_tag.is_empty() {
        return Vec::new();
    }
    let needle = format!("{TREE_VAR}={}", holder.tree_tag);
    let me = own_pid();
    proc_table()
        .into_iter()
        .filter(|p| !p.zombie && p.pid != me && p.start >= holder.started)
        .filter(|p| carries_prefix(p.pid, needle.as_bytes()))
        .collect()
}

fn name_of(pid: i32) -> String {
    std::fs::read_to_string(format!("/proc/{pid}/comm"))
        .map_or_else(|_| "?".into(), |n| n.trim_end().to_string())
}

/// Stops what `found` finds (see [`escalate`]) for a holder that died: what was stopped, or the
/// processes that survived SIGKILL.
fn stop(
    holder: &Holder,
    grace: Duration,
    found: impl Fn() -> Vec<Proc>,
) -> Result<Stopped, TakeError> {
    let began = Instant::now();
    let escalated = escalate(grace, found);
    if !escalated.stuck.is_empty() {
        return Err(TakeError::Stuck {
            holder: Box::new(holder.clone()),
            left: escalated.stuck,
        });
    }
    Ok(Stopped {
        holder: holder.clone(),
        processes: escalated.signalled,
        duration: began.elapsed(),
    })
}

/// What [`escalate`] did.
pub(super) struct Escalated {
    /// Every process signalled, with the last signal it got.
    pub(super) signalled: Vec<LeftoverProcess>,
    /// The ones still there [`KILL_WAIT`] after the first SIGKILL.
    pub(super) stuck: Vec<LeftoverProcess>,
}

/// Stops what `found` finds, asked again (at most every [`POLL`]): SIGINT, then SIGTERM after
/// `grace`, then SIGKILL after `grace` more, resent to newcomers, for at most [`KILL_WAIT`].
pub(super) fn escalate(grace: Duration, found: impl Fn() -> Vec<Proc>) -> Escalated {
    const STAGES: [Signal; 3] = [Signal::SIGINT, Signal::SIGTERM, Signal::SIGKILL];
    let mut seen: BTreeMap<i32, (u64, LeftoverProcess, usize)> = BTreeMap::new();
    let mut stage = 0;
    let mut since = Instant::now();
    let mut left = found();
    // Most leftovers die at the first signal: look again soon, then every POLL.
    let mut nap = Duration::from_millis(2);
    while !left.is_empty() {
        for p in &left {
            let entry = seen.entry(p.pid).or_insert_with(|| {
                let named = LeftoverProcess {
                    pid: p.pid,
                    name: name_of(p.pid),
                    signal: String::new(),
                };
                (p.start, named, usize::MAX)
            });
            // Once per stage, except SIGKILL: a dying parent may have forked since.
            if entry.2 == stage && stage < STAGES.len() - 1 {
                continue;
            }
            // The pid must still be the process found, not a newcomer that reused it.
            if read_proc(p.pid).is_some_and(|now| now.start == entry.0) {
                let _ = kill(Pid::from_raw(p.pid), STAGES[stage]);
                entry.1.signal = STAGES[stage].as_str().to_string();
                entry.2 = stage;
            }
        }
        std::thread::sleep(nap);
        nap = (nap * 2).min(POLL);
        left = found();
        let limit = if stage + 1 < STAGES.len() {
            grace
        } else {
            KILL_WAIT
        };
        if !left.is_empty() && since.elapsed() >= limit {
            if stage + 1 == STAGES.len() {
                break;
            }
            stage += 1;
            since = Instant::now();
        }
    }
    let stuck: Vec<i32> = left.iter().map(|p| p.pid).collect();
    let signalled: Vec<LeftoverProcess> = seen.into_values().map(|(_, p, _)| p).collect();
    Escalated {
        stuck: signalled
            .iter()
            .filter(|p| stuck.contains(&p.pid))
            .cloned()
            .collect(),
        signalled,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_the_creator_of_an_exclusive_flock() {
        let info = "pos:\t0\nflags:\t02\nmnt_id:\t1\nino:\t10010654\n\
                    lock:\t1: FLOCK  ADVISORY  WRITE 29691 fe:00:10010654 0 EOF\n";
        assert_eq!(flock_creator(info, 10_010_654), Some(29691));
        assert_eq!(flock_creator(info, 1), None);
        let shared = "lock:\t1: FLOCK  ADVISORY  READ 29691 fe:00:10010654 0 EOF\n";
        assert_eq!(flock_creator(shared, 10_010_654), None);
        let waiting = "lock:\t1: -> FLOCK  ADVISORY  WRITE 5 fe:00:10010654 0 EOF\n";
        assert_eq!(flock_creator(waiting, 10_010_654), None);
        assert_eq!(flock_creator("pos:\t0\n", 10_010_654), None);
    }
}
