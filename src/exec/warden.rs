//! The warden of a team-mode session: a small process of rollout's own (`rollout __warden`),
//! started once per session, that stops the run's step processes when rollout dies without
//! stopping them itself (SIGKILL, the OOM killer, a crash). In team mode a holder on another
//! machine takes the run over once the lease runs out, and must not find the dead holder's steps
//! still running; file mode has no warden (a takeover there is on the same machine, and stops
//! what the dead holder left, see [`super::leftovers`]).
//!
//! Rollout keeps the only writing end of a pipe whose reading end is the warden's stdin, and
//! writes on it the process group of each step while its main process runs (`+<group>`, then
//! `-<group>`), and `bye` when its session ends. However rollout dies, the kernel closes that end:
//! the warden reads the end of the pipe without a `bye`, and stops every process in a step group it
//! was told of, and every process that carries rollout's `ROLLOUT_TREE_ID` prefix in its
//! environment (what steps moved out of their group, and what finished steps left running):
//! SIGINT, SIGTERM, SIGKILL, the run's `--grace` apart, as a stop at Ctrl-C does. Then it exits.
//!
//! A step costs two writes of a few bytes on the pipe, not a process: the warden is started once.
//! It runs in a process group of its own, so that Ctrl-C at the terminal, and rollout's own stops,
//! do not reach it.

use std::collections::BTreeSet;
use std::io::{BufRead, Write};
use std::process::{Child, ChildStdin, Command, Stdio};
use std::sync::{Mutex, PoisonError};
use std::time::{Duration, Instant};

use std::os::unix::process::CommandExt;

use super::leftovers;
use super::process::{self, Proc, TREE_VAR};

/// The first argument that makes this binary a session's warden (see [`serve_if_asked`]).
const WARDEN_ARG: &str = "__warden";
/// What rollout writes when its session ends as it should: nothing is to be stopped.
const BYE: &str = "bye";
/// How long rollout waits for its warden to exit after `bye`.
const EXIT_WAIT: Duration = Duration::from_secs(1);

/// Rollout's end of a running warden. Dropping it ends the warden without it stopping anything.
#[derive(Debug)]
pub struct Warden {
    pipe: Mutex<Option<ChildStdin>>,
    child: Mutex<Child>,
    pid: i32,
}

impl Warden {
    /// Starts this process's warden, whose stop waits `grace` between signals. Only this
    /// binary, which serves [`WARDEN_ARG`] first thing in `main`, can be one.
    ///
    /// # Errors
    /// When the warden cannot be started.
    pub fn start(grace: Duration) -> std::io::Result<Self> {
        let (started, _) = leftovers::own_identity();
        // `/proc/self/exe` is this very binary, even if its file was replaced meanwhile.
        let mut child = Command::new("/proc/self/exe")
            .arg(WARDEN_ARG)
            .arg(grace.as_millis().to_string())
            .arg(process::tree_tag())
            .arg(started.to_string())
            .stdin(Stdio::piped())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .process_group(0)
            .spawn()?;
        let pid = i32::try_from(child.id()).unwrap_or(i32::MAX);
        // The end of a session stops what the steps left, but not their warden.
        process::spare(pid, true);
        Ok(Self {
            pipe: Mutex::new(child.stdin.take()),
            child: Mutex::new(child),
            pid,
        })
    }

    /// Tells the warden of a step whose process group is `group` (its main process's pid).
    pub fn watch(&self, group: i32) {
        self.send(&format!("+{group}"));
    }

    /// Tells the warden that the main process of step group `group` has been reaped: its pid
    /// may be reused, and what the group still holds is found by its tag.
    pub fn forget(&self, group: i32) {
        self.send(&format!("-{group}"));
    }

    fn send(&self, line: &str) {
        let mut pipe = self.pipe.lock().unwrap_or_else(PoisonError::into_inner);
        // A warden that is gone (killed by someone) cannot be told: the step runs as in file
        // mode, and a takeover on this machine still stops what it leaves.
        if let Some(p) = pipe.as_mut() {
            let _ = p.write_all(format!("{line}\n").as_bytes());
        }
    }
}

impl Drop for Warden {
    fn drop(&mut self) {
        self.send(BYE);
        drop(
            self.pipe
                .lock()
                .unwrap_or_else(PoisonError::into_inner)
                .take(),
        );
        let mut child = self.child.lock().unwrap_or_else(PoisonError::into_inner);
        let until = Instant::now() + EXIT_WAIT;
        while matches!(child.try_wait(), Ok(None)) && Instant::now() < until {
            std::thread::sleep(Duration::from_millis(2));
        }
        process::spare(self.pid, false);
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
    let groups = listen(std::io::stdin().lock());
    if let Some(groups) = groups {
        stop(&groups, &tag, started, Duration::from_millis(grace));
    }
    std::process::exit(0);
}

/// Reads rollout's lines until `bye` (`None`: nothing to stop) or the end of the pipe (the
/// groups of the steps that were running then).
fn listen(input: impl BufRead) -> Option<BTreeSet<i32>> {
    let mut groups = BTreeSet::new();
    for line in input.lines() {
        let Ok(line) = line else { break };
        if line == BYE {
            return None;
        }
        let (sign, group) = line.split_at(line.len().min(1));
        match (sign, group.parse::<i32>()) {
            ("+", Ok(group)) if group > 1 => {
                groups.insert(group);
            }
            ("-", Ok(group)) => {
                groups.remove(&group);
            }
            _ => {}
        }
    }
    Some(groups)
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
    fn listens_until_bye_or_the_end_of_the_pipe() {
        assert_eq!(listen("+12\n+13\n-12\nbye\n".as_bytes()), None);
        assert_eq!(
            listen("+12\n+13\n-12\n".as_bytes()),
            Some(BTreeSet::from([13]))
        );
        // Nonsense, and groups that are not a step's (0, 1, negative), are ignored.
        assert_eq!(
            listen("+1\n+0\n+-4\nhello\n+\n+7".as_bytes()),
            Some(BTreeSet::from([7]))
        );
    }
}
