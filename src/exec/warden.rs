//! The warden of a team-mode session: a small process of rollout's own (`rollout __warden`),
//! started once per session, that stops the run's step processes when rollout dies without
//! stopping them itself (SIGKILL, the OOM killer, a crash). In team mode a holder on another
//! machine takes the run over once the lease runs out, and must not find the dead holder's steps
//! still running; file mode has no warden (a takeover there is on the same machine, and stops
//! what the dead holder left, see [`super::leftovers`]).
//!
//! Rollout keeps the only writing end of a pipe whose reading end is the warden's stdin, and
//! writes `bye` on it when its session ends. However rollout dies, the kernel closes that end:
//! the warden reads the end of the pipe without a `bye`, and stops every process in the group of a
//! step that was running, and every process that carries rollout's `ROLLOUT_TREE_ID` prefix in its
//! environment (what steps moved out of their group, and what finished steps left running):
//! SIGINT, SIGTERM, SIGKILL, the run's `--grace` apart, as a stop at Ctrl-C does. Then it exits.
//!
//! The groups of the running steps are kept in a memory file the two share (the warden's stdout),
//! which rollout rewrites when a step starts and when its main process is reaped, and the warden
//! reads only once rollout is gone: a step costs two writes to memory and wakes nobody. The warden
//! runs in a process group of its own, so that Ctrl-C at the terminal, and rollout's own stops, do
//! not reach it.

use std::collections::BTreeSet;
use std::fs::File;
use std::io::{BufRead, Write};
use std::os::fd::AsFd;
use std::os::unix::fs::FileExt;
use std::os::unix::process::CommandExt;
use std::process::{Child, Command, Stdio};
use std::sync::{Mutex, PoisonError};
use std::time::Duration;

use nix::sys::memfd::{MFdFlags, memfd_create};

use super::leftovers;
use super::process::{self, Proc, TREE_VAR};

/// The first argument that makes this binary a session's warden (see [`serve_if_asked`]).
const WARDEN_ARG: &str = "__warden";
/// What rollout writes when its session ends as it should: nothing is to be stopped.
const BYE: &str = "bye";

/// Rollout's end of a running warden. Dropping it ends the warden without it stopping anything.
#[derive(Debug)]
pub struct Warden {
    /// The process groups of the running steps, and the memory file the warden reads them from.
    groups: Mutex<(BTreeSet<i32>, File)>,
    /// The warden, with the writing end of its pipe as its stdin.
    child: Child,
}

impl Warden {
    /// Starts this process's warden, whose stop waits `grace` between signals. Only this
    /// binary, which serves [`WARDEN_ARG`] first thing in `main`, can be one.
    ///
    /// # Errors
    /// When the warden cannot be started.
    pub fn start(grace: Duration) -> std::io::Result<Self> {
        let (started, _) = leftovers::own_identity();
        let shared = File::from(memfd_create(c"rollout-steps", MFdFlags::MFD_CLOEXEC)?);
        // `/proc/self/exe` is this very binary, even if its file was replaced meanwhile.
        let child = Command::new("/proc/self/exe")
            .arg(WARDEN_ARG)
            .arg(grace.as_millis().to_string())
            .arg(process::tree_tag())
            .arg(started.to_string())
            .stdin(Stdio::piped())
            .stdout(shared.try_clone()?)
            .stderr(Stdio::null())
            .process_group(0)
            .spawn()?;
        // The end of a session stops what the steps left, but not their warden.
        process::spare(pid_of(&child), true);
        Ok(Self {
            groups: Mutex::new((BTreeSet::new(), shared)),
            child,
        })
    }

    /// Tells the warden of a step whose process group is `group` (its main process's pid).
    pub fn watch(&self, group: i32) {
        self.note(|groups| groups.insert(group));
    }

    /// Tells the warden that the main process of step group `group` has been reaped: its pid
    /// may be reused, and what the group still holds is found by its tag.
    pub fn forget(&self, group: i32) {
        self.note(|groups| groups.remove(&group));
    }

    fn note(&self, change: impl FnOnce(&mut BTreeSet<i32>) -> bool) {
        let mut guard = self.groups.lock().unwrap_or_else(PoisonError::into_inner);
        let (groups, shared) = &mut *guard;
        if change(groups) {
            // One write, which the warden reads up to the first newline: what a longer list
            // left after it does not count.
            let _ = shared.write_all_at(listed(groups).as_bytes(), 0);
        }
    }
}

fn pid_of(child: &Child) -> i32 {
    i32::try_from(child.id()).unwrap_or(i32::MAX)
}

/// Groups as the shared memory file holds them.
fn listed(groups: &BTreeSet<i32>) -> String {
    let mut text: Vec<String> = groups.iter().map(i32::to_string).collect();
    text.push("\n".into());
    text.join(" ")
}

/// The groups a shared memory file lists (see [`listed`]).
fn read_listed(text: &[u8]) -> BTreeSet<i32> {
    let text = String::from_utf8_lossy(text);
    text.split('\n')
        .next()
        .unwrap_or_default()
        .split_whitespace()
        .filter_map(|g| g.parse().ok())
        .filter(|&g| g > 1)
        .collect()
}

impl Drop for Warden {
    fn drop(&mut self) {
        // Written, then the pipe closed. A warden that is gone (killed by someone) is not told.
        if let Some(mut pipe) = self.child.stdin.take() {
            let _ = pipe.write_all(format!("{BYE}\n").as_bytes());
        }
        // It exits as soon as it reads `bye`, which may be after its own start if the session
        // was short: not waited for (rollout's end reaps it, or the sweeps of a later step).
        if matches!(self.child.try_wait(), Ok(Some(_))) {
            process::spare(pid_of(&self.child), false);
        }
    }
}

/// When this process was started as a warden, serves as one and exits; else returns at once.
/// Called first thing in `main`.
pub fn serve_if_asked() {
    let mut args = std::env::args().skip(1);
    if args.next().is_none_or(|a| a != WARDEN_ARG) {
        return;
    }
    let grace = args.next().and_then(|a| a.parse::<u64>().ok());
    let tag = args.next();
    let started = args.next().and_then(|a| a.parse::<u64>().ok());
    let (Some(grace), Some(tag), Some(started)) = (grace, tag, started) else {
        eprintln!("error: `rollout __warden` is started by rollout itself, for a session");
        std::process::exit(2);
    };
    // Named apart from rollout in `ps`/`top`.
    let _ = nix::sys::prctl::set_name(c"rollout-warden");
    if rollout_died(std::io::stdin().lock()) {
        stop(
            &running_groups(),
            &tag,
            started,
            Duration::from_millis(grace),
        );
    }
    std::process::exit(0);
}

/// Reads rollout's pipe to its end: whether it ended without a `bye`.
fn rollout_died(input: impl BufRead) -> bool {
    for line in input.lines() {
        match line {
            Ok(line) if line == BYE => return false,
            Ok(_) => {}
            Err(_) => break,
        }
    }
    true
}

/// The groups of the steps that were running, from the memory file that is this process's
/// stdout.
fn running_groups() -> BTreeSet<i32> {
    let Ok(shared) = std::io::stdout().as_fd().try_clone_to_owned() else {
        return BTreeSet::new();
    };
    let mut text = vec![0; 64 * 1024];
    let read = File::from(shared).read_at(&mut text, 0).unwrap_or(0);
    read_listed(&text[..read])
}

/// Stops every process in `groups` and every one started since `started` that carries `tag`.
fn stop(groups: &BTreeSet<i32>, tag: &str, started: u64, grace: Duration) {
    let me = process::own_pid();
    let needle = format!("{TREE_VAR}={tag}");
    let found = || -> Vec<Proc> {
        process::proc_table()
            .into_iter()
            .filter(|p| !p.zombie && p.pid != me)
            .filter(|p| {
                groups.contains(&p.pgrp)
                    || (p.start >= started && process::carries_prefix(p.pid, needle.as_bytes()))
            })
            .collect()
    };
    let _ = leftovers::escalate(grace, found);
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rollout_died_when_its_pipe_ends_without_bye() {
        assert!(!rollout_died("bye\n".as_bytes()));
        assert!(!rollout_died("hello\nbye\nmore\n".as_bytes()));
        assert!(rollout_died("".as_bytes()));
        assert!(rollout_died("by".as_bytes()));
    }

    #[test]
    fn the_groups_are_read_back_up_to_the_newline() {
        let groups = BTreeSet::from([12, 345]);
        assert_eq!(read_listed(listed(&groups).as_bytes()), groups);
        // A shorter list written over a longer one.
        let over = format!("{}{}", listed(&BTreeSet::from([7])), "8 9 10\n");
        assert_eq!(read_listed(over.as_bytes()), BTreeSet::from([7]));
        assert_eq!(
            read_listed(listed(&BTreeSet::new()).as_bytes()),
            BTreeSet::new()
        );
        // Nothing written yet, and groups that are not a step's (0, 1, negative).
        assert_eq!(read_listed(b""), BTreeSet::new());
        assert_eq!(read_listed(b"0 1 -4 x 9\n"), BTreeSet::from([9]));
    }
}
