//! Runs one step's command as a child process and owns everything about its lifetime: its own
//! process group, live streaming of stdout and stderr, bounded tails and capture, the timeout,
//! the graceful stop (SIGINT, SIGTERM, SIGKILL) on timeout or interrupt, the sweep of
//! descendants that escaped the group, and reaping. It never prints and knows nothing about
//! runbooks: output goes to the caller's callback, the result comes back as a [`Finished`].
//!
//! A step's processes are recognised in `/proc` three ways, because each alone misses some: the
//! subtree under the main child (gone once a parent dies), the step's process group (left by
//! `setsid`), and an environment tag (`ROLLOUT_TREE_ID`) inherited by every descendant, which
//! still marks an escapee after it has been reparented.

use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::ffi::{OsStr, OsString};
use std::io;
use std::os::unix::process::ExitStatusExt;
use std::path::{Path, PathBuf};
use std::process::{ExitStatus, Stdio};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Mutex, MutexGuard, OnceLock, PoisonError};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use nix::sys::signal::{Signal, kill, killpg};
use nix::sys::wait::{Id, WaitPidFlag, waitid, waitpid};
use nix::time::{ClockId, clock_gettime};
use nix::unistd::{AccessFlags, Pid, SysconfVar, access, getpgrp, sysconf};
use tokio::io::{AsyncRead, AsyncReadExt};
use tokio::process::{Child, ChildStderr, ChildStdout, Command};
use tokio::sync::watch;
use tokio::time::{Instant, sleep_until};

/// How much of the end of each stream [`Finished`] keeps for the report.
pub const TAIL_BYTES: usize = 64 * 1024;
/// The most stdout that `capture_stdout` keeps.
pub const CAPTURE_LIMIT: usize = 1024 * 1024;

const READ_CHUNK: usize = 64 * 1024;
/// A background descendant may hold the pipes open forever; the step is over when its main
/// process is, plus this long for the last output to arrive.
const DRAIN_AFTER_EXIT: Duration = Duration::from_millis(500);
/// How often a stop re-reads `/proc` to see whether the step's processes are gone.
pub(super) const POLL: Duration = Duration::from_millis(25);
/// How often a running step's orphaned, dead descendants are reaped.
const REAP_EVERY: Duration = Duration::from_millis(100);
/// After SIGKILL, how long to wait for processes stuck in the kernel before giving up on them.
pub(super) const KILL_WAIT: Duration = Duration::from_secs(2);
pub(super) const TREE_VAR: &str = "ROLLOUT_TREE_ID";

/// What to run and how.
#[derive(Debug, Clone)]
pub struct ProcessSpec {
    /// Program and arguments; the program is looked up in `PATH` (the one in `env` if set).
    pub argv: Vec<String>,
    /// Look the program up once per `PATH` value for the whole process instead of at every
    /// spawn (for the runbook's shell). A program that cannot be run from where it was found
    /// is looked up again.
    pub lookup_once: bool,
    /// Added to the environment rollout inherited.
    pub env: BTreeMap<String, String>,
    pub workdir: PathBuf,
    pub timeout: Duration,
    /// Time allowed between SIGINT, SIGTERM and SIGKILL when stopping.
    pub grace: Duration,
    /// Keep the whole of stdout (up to [`CAPTURE_LIMIT`]) in [`Finished::captured`].
    pub capture_stdout: bool,
    /// Give the process `/dev/null` as stdin instead of rollout's own.
    pub stdin_null: bool,
    /// The session's warden, told of the step's process group while its main process runs
    /// (team mode; see [`super::warden`]).
    pub warden: Option<std::sync::Arc<super::warden::Warden>>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Stream {
    Stdout,
    Stderr,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Outcome {
    Exited(i32),
    /// Killed by this signal, not by rollout.
    Signaled(i32),
    TimedOut,
    Interrupted,
    /// The process never ran; the message names the program and says why.
    FailedToStart(String),
}

#[derive(Debug)]
pub struct Finished {
    pub outcome: Outcome,
    pub duration: Duration,
    /// The last [`TAIL_BYTES`] of stdout.
    pub stdout_tail: Vec<u8>,
    /// The last [`TAIL_BYTES`] of stderr.
    pub stderr_tail: Vec<u8>,
    /// `Some` exactly when `capture_stdout` was asked for; `Err` when stdout outgrew
    /// [`CAPTURE_LIMIT`].
    pub captured: Option<Result<Vec<u8>, String>>,
}

/// A request to stop the running step, shared with whoever watches for signals.
///
/// Requests are sticky: once interrupted, every later [`run`] with this handle returns
/// [`Outcome::Interrupted`] without starting anything. Work that must run after an interrupt
/// (a rollback, say) needs a fresh `Cancel`.
#[derive(Debug, Clone)]
pub struct Cancel {
    requests: watch::Sender<Request>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
enum Request {
    None,
    Interrupt,
    Kill,
}

impl Default for Cancel {
    fn default() -> Self {
        Self {
            requests: watch::Sender::new(Request::None),
        }
    }
}

impl Cancel {
    pub fn new() -> Self {
        Self::default()
    }

    /// Stop gracefully: SIGINT to the step, then SIGTERM, then SIGKILL, `grace` apart.
    pub fn interrupt(&self) {
        self.request(Request::Interrupt);
    }

    /// SIGKILL the step at once, even in the middle of a graceful stop.
    pub fn kill(&self) {
        self.request(Request::Kill);
    }

    pub fn is_requested(&self) -> bool {
        *self.requests.borrow() != Request::None
    }

    fn request(&self, request: Request) {
        // send_if_modified updates the value even when no step is running to receive it.
        self.requests.send_if_modified(|current| {
            let raise = request > *current;
            if raise {
                *current = request;
            }
            raise
        });
    }
}

/// Run `spec` to completion, streaming its output to `on_output` as it arrives.
///
/// Returns once the main process has exited and its pipes are drained (or 500 ms after it
/// exited, if a background descendant holds them open). Descendants left behind by a normal
/// exit keep running — a step may start a server that a later step stops; see
/// [`sweep_descendants`]. A timeout or interrupt stops every process of the step, including
/// ones that left its process group.
pub async fn run(
    spec: &ProcessSpec,
    cancel: &Cancel,
    on_output: &mut dyn FnMut(Stream, &[u8]),
) -> Finished {
    let started = Instant::now();
    let mut requests = cancel.requests.subscribe();
    if *requests.borrow_and_update() != Request::None {
        return Finished::without_process(spec, Outcome::Interrupted, started);
    }
    let tag = next_tree_id();
    let spawned_after = boot_ticks();
    let (mut child, mut registration) = match spawn(spec, &tag) {
        Ok(spawned) => spawned,
        Err(why) => return Finished::without_process(spec, Outcome::FailedToStart(why), started),
    };
    let mut tree = Tree::new(registration.pid, tag, spawned_after);
    let mut pipes = Pipes::new(&mut child, spec.capture_stdout);

    let mut exit: Option<io::Result<ExitStatus>> = None;
    let mut stop: Option<Stop> = None;
    let mut drain_until: Option<Instant> = None;
    let mut watching_cancel = true;
    let deadline = sleep_until(
        started
            .checked_add(spec.timeout)
            .unwrap_or_else(|| started + Duration::from_secs(365 * 24 * 3600)),
    );
    let tick = sleep_until(started);
    // Orphans reparented to rollout (it is their subreaper) become zombies when they die; reap
    // them while the step runs, so a step polling `kill -0` on a process it killed sees it gone.
    let reaper = sleep_until(started + REAP_EVERY);
    tokio::pin!(deadline, tick, reaper);

    loop {
        if exit.is_some() && stop.as_ref().is_none_or(|s| s.done) {
            if !pipes.is_open() {
                break;
            }
            let now = Instant::now();
            match drain_until {
                None => {
                    drain_until = Some(now + DRAIN_AFTER_EXIT);
                    tick.as_mut().reset(now + DRAIN_AFTER_EXIT);
                }
                Some(until) if now >= until => {
                    pipes.abandon();
                    break;
                }
                Some(_) => {}
            }
        }
        let stopping = stop.as_ref().is_some_and(|s| !s.done);
        tokio::select! {
            () = &mut reaper => {
                reap_orphans();
                reaper.as_mut().reset(Instant::now() + REAP_EVERY);
            }
            (stream, read) = pipes.read_some(), if pipes.is_open() => {
                pipes.deliver(stream, read, on_output);
            }
            status = child.wait(), if exit.is_none() => {
                exit = Some(status);
                registration.reaped = true;
                tree.main_reaped = true;
            }
            () = &mut deadline, if exit.is_none() && stop.is_none() => {
                stop = Some(Stop::begin(Outcome::TimedOut, Stage::Interrupt, &tree));
                tick.as_mut().reset(Instant::now() + POLL);
            }
            changed = requests.changed(), if watching_cancel && (exit.is_none() || stopping) => {
                if changed.is_err() {
                    watching_cancel = false;
                    continue;
                }
                let stage = match *requests.borrow_and_update() {
                    Request::None => continue,
                    Request::Interrupt => Stage::Interrupt,
                    Request::Kill => Stage::Kill,
                };
                match &mut stop {
                    Some(stop) => stop.escalate(stage, &tree),
                    None => stop = Some(Stop::begin(Outcome::Interrupted, stage, &tree)),
                }
                tick.as_mut().reset(Instant::now() + POLL);
            }
            () = &mut tick, if stopping || drain_until.is_some() => {
                if let Some(stop) = stop.as_mut().filter(|s| !s.done) {
                    stop.poll(&tree, spec.grace);
                    tick.as_mut().reset(Instant::now() + POLL);
                }
            }
        }
    }

    let outcome = match (stop, exit) {
        (Some(stop), _) => stop.reason,
        (None, Some(Ok(status))) => outcome_of(status),
        (None, Some(Err(e))) => Outcome::FailedToStart(format!(
            "lost track of `{}`: {e}",
            spec.argv.first().map_or("", String::as_str)
        )),
        (None, None) => Outcome::Interrupted,
    };
    reap_orphans();
    Finished {
        outcome,
        duration: started.elapsed(),
        stdout_tail: pipes.stdout_tail.into_vec(),
        stderr_tail: pipes.stderr_tail.into_vec(),
        captured: pipes.capture.into_result(),
    }
}

/// Stop every remaining descendant of rollout (SIGTERM, then SIGKILL after `grace`) and reap
/// the dead. Meant for the end of a run; processes of a step that is still in [`run`] are
/// left alone.
pub fn sweep_descendants(grace: Duration) {
    sweep(grace, |_| true);
}

/// [`sweep_descendants`], restricted to the descendants `chosen` accepts.
fn sweep(grace: Duration, chosen: impl Fn(&Proc) -> bool) {
    // No child at all means no descendant (orphans are reparented to rollout, their
    // subreaper): skip reading /proc, the common case at the end of a run.
    let peek = WaitPidFlag::WEXITED | WaitPidFlag::WNOHANG | WaitPidFlag::WNOWAIT;
    if waitid(Id::All, peek) == Err(nix::errno::Errno::ECHILD) || only_spared_children() {
        return;
    }
    let targets = || {
        let live = live_pids().clone();
        let spared = spared().clone();
        let me = own_pid();
        let table = proc_table();
        let ours = descendants(&table, me);
        table
            .into_iter()
            .filter(|p| {
                ours.contains(&p.pid)
                    && !p.zombie
                    && !live.contains(&p.pid)
                    && !live.contains(&p.pgrp)
                    && !spared.contains(&p.pid)
                    && chosen(p)
            })
            .map(|p| p.pid)
            .collect::<Vec<_>>()
    };
    let signal_all = |pids: &[i32], signal: Signal| {
        for &pid in pids {
            let _ = kill(Pid::from_raw(pid), signal);
        }
    };
    let start = std::time::Instant::now();
    let mut remaining = targets();
    signal_all(&remaining, Signal::SIGTERM);
    while !remaining.is_empty() && start.elapsed() < grace {
        std::thread::sleep(POLL);
        remaining = targets();
    }
    let kill_start = std::time::Instant::now();
    while !remaining.is_empty() && kill_start.elapsed() < KILL_WAIT {
        // Re-sent each round: a dying parent may have forked since the last look.
        signal_all(&remaining, Signal::SIGKILL);
        std::thread::sleep(POLL);
        remaining = targets();
    }
    reap_orphans();
}

/// Make orphaned descendants reparent to rollout instead of init, so that `/proc` still shows
/// them as ours and they can be swept and reaped. Best effort: without it, escapees are still
/// found by their environment tag, but their zombies go to init.
pub fn become_subreaper() {
    #[cfg(target_os = "linux")]
    let _ = nix::sys::prctl::set_child_subreaper(true);
}

impl Finished {
    fn without_process(spec: &ProcessSpec, outcome: Outcome, started: Instant) -> Self {
        Self {
            outcome,
            duration: started.elapsed(),
            stdout_tail: Vec::new(),
            stderr_tail: Vec::new(),
            captured: spec.capture_stdout.then(|| Ok(Vec::new())),
        }
    }
}

fn outcome_of(status: ExitStatus) -> Outcome {
    match (status.code(), status.signal()) {
        (Some(code), _) => Outcome::Exited(code),
        (None, Some(signal)) => Outcome::Signaled(signal),
        (None, None) => Outcome::Exited(status.into_raw()),
    }
}

fn spawn(spec: &ProcessSpec, tag: &str) -> Result<(Child, Registration), String> {
    let (program, args) = spec
        .argv
        .split_first()
        .ok_or_else(|| "the command is empty".to_owned())?;
    check_workdir(&spec.workdir)?;
    let search_path = spec
        .env
        .get("PATH")
        .map(OsString::from)
        .or_else(|| std::env::var_os("PATH"));
    let search_path = search_path.as_deref();
    let found = program_path(program, search_path, spec.lookup_once);
    // Held across the spawn so that no sweep can reap the child before it is registered.
    let mut live = live_pids();
    let child = match command(spec, program, args, found.as_deref(), tag).spawn() {
        // What was found once may be gone since: look again, as a fresh spawn would.
        Err(_) if spec.lookup_once && found.is_some() => {
            forget_program_path(program, search_path);
            let found = program_path(program, search_path, false);
            command(spec, program, args, found.as_deref(), tag).spawn()
        }
        spawned => spawned,
    }
    .map_err(|e| spawn_error(program, &e))?;
    let pid = child
        .id()
        .and_then(|id| i32::try_from(id).ok())
        .ok_or_else(|| format!("`{program}` exited before it could be watched"))?;
    live.insert(pid);
    if let Some(warden) = &spec.warden {
        warden.watch(pid);
    }
    Ok((
        child,
        Registration {
            pid,
            reaped: false,
            warden: spec.warden.clone(),
        },
    ))
}

fn command(
    spec: &ProcessSpec,
    program: &str,
    args: &[String],
    found: Option<&Path>,
    tag: &str,
) -> Command {
    let mut command = match found {
        Some(path) => {
            let mut command = Command::new(path);
            // The program sees the name it was given, as after a search of its own.
            command.arg0(program);
            command
        }
        None => Command::new(program),
    };
    command
        .args(args)
        .envs(&spec.env)
        .env(TREE_VAR, tag)
        .current_dir(&spec.workdir)
        // Its own group: Ctrl-C at the terminal reaches rollout only, and a stop can signal the
        // whole step at once.
        .process_group(0)
        .stdin(if spec.stdin_null {
            dev_null()
        } else {
            Stdio::inherit()
        })
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .kill_on_drop(true);
    command
}

/// `/dev/null` for a child's stdin: a duplicate of one descriptor opened once, which is
/// cheaper than opening the file again at every spawn (what `Stdio::null` does).
fn dev_null() -> Stdio {
    static DEV_NULL: OnceLock<Option<std::fs::File>> = OnceLock::new();
    DEV_NULL
        .get_or_init(|| std::fs::File::open("/dev/null").ok())
        .as_ref()
        .and_then(|f| f.try_clone().ok())
        .map_or_else(Stdio::null, Stdio::from)
}

type Found = HashMap<(String, OsString), PathBuf>;

fn found_programs() -> MutexGuard<'static, Found> {
    static FOUND: OnceLock<Mutex<Found>> = OnceLock::new();
    FOUND
        .get_or_init(Mutex::default)
        .lock()
        .unwrap_or_else(PoisonError::into_inner)
}

/// Where a program named without a `/` is, searched in `path` as `execvp` would; `None` for a
/// path, and when the search is better left to the spawn (nothing found, no `PATH`, or a
/// relative directory in it, which depends on the working directory). Searching here rather
/// than in the child keeps spawns on `posix_spawn`, and `once` saves a failed `execve` for each
/// directory before the shell's at every step.
fn program_path(program: &str, path: Option<&OsStr>, once: bool) -> Option<PathBuf> {
    if program.contains('/') || program.is_empty() {
        return None;
    }
    let path = path?;
    let key = (program.to_owned(), path.to_owned());
    if once {
        if let Some(found) = found_programs().get(&key) {
            return Some(found.clone());
        }
    }
    let found = search(program, path)?;
    if once {
        found_programs().insert(key, found.clone());
    }
    Some(found)
}

fn forget_program_path(program: &str, path: Option<&OsStr>) {
    if let Some(path) = path {
        found_programs().remove(&(program.to_owned(), path.to_owned()));
    }
}

fn search(program: &str, path: &OsStr) -> Option<PathBuf> {
    for dir in std::env::split_paths(path) {
        if !dir.is_absolute() {
            return None;
        }
        let candidate = dir.join(program);
        // As execvp: the first that may be executed; one that may not is passed over.
        if access(&candidate, AccessFlags::X_OK).is_ok()
            && std::fs::metadata(&candidate).is_ok_and(|m| m.is_file())
        {
            return Some(candidate);
        }
    }
    None
}

fn check_workdir(dir: &Path) -> Result<(), String> {
    match std::fs::metadata(dir) {
        Ok(meta) if meta.is_dir() => Ok(()),
        Ok(_) => Err(format!(
            "working directory `{}` is not a directory",
            dir.display()
        )),
        Err(e) if e.kind() == io::ErrorKind::NotFound => Err(format!(
            "working directory `{}` does not exist",
            dir.display()
        )),
        Err(e) => Err(format!(
            "working directory `{}`: {}",
            dir.display(),
            plain_io_error(&e)
        )),
    }
}

fn spawn_error(program: &str, e: &io::Error) -> String {
    match e.kind() {
        io::ErrorKind::NotFound if program.contains('/') => {
            format!("`{program}`: no such file (or its interpreter is missing)")
        }
        io::ErrorKind::NotFound => format!("`{program}`: command not found"),
        io::ErrorKind::PermissionDenied => {
            format!("`{program}`: permission denied (is it executable?)")
        }
        _ => format!("`{program}`: {}", plain_io_error(e)),
    }
}

/// `io::Error` says "Permission denied (os error 13)"; people want "permission denied".
fn plain_io_error(e: &io::Error) -> String {
    let text = e.to_string();
    let text = text.split(" (os error").next().unwrap_or(&text);
    let mut chars = text.chars();
    chars.next().map_or_else(String::new, |first| {
        first.to_lowercase().chain(chars).collect()
    })
}

/// What every `ROLLOUT_TREE_ID` of this process begins with: its pid and the time of the first
/// step, so that a later rollout that reuses the pid has other tags. The target lock records it
/// (see [`super::leftovers`]): a dead holder's processes are found by it.
pub fn tree_tag() -> &'static str {
    static TAG: std::sync::OnceLock<String> = std::sync::OnceLock::new();
    TAG.get_or_init(|| {
        let nanos = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .map_or(0, |d| d.as_nanos());
        format!("{}.{nanos}.", own_pid())
    })
}

/// Now, in the unit of the start times in `/proc/<pid>/stat` (clock ticks since boot), rounded
/// down: no process forked later has an earlier start time. Both count `CLOCK_BOOTTIME`, in
/// the same time namespace. 0 (no bound) if the clock cannot be read.
fn boot_ticks() -> u64 {
    static HZ: OnceLock<u64> = OnceLock::new();
    let hz = *HZ.get_or_init(|| {
        sysconf(SysconfVar::CLK_TCK)
            .ok()
            .flatten()
            .and_then(|t| u64::try_from(t).ok())
            .filter(|&t| t > 0)
            .unwrap_or(100)
    });
    clock_gettime(ClockId::CLOCK_BOOTTIME).map_or(0, |now| {
        let secs = u64::try_from(now.tv_sec()).unwrap_or(0);
        let nanos = u64::try_from(now.tv_nsec()).unwrap_or(0);
        // One tick less, for a kernel that rounds differently.
        (secs * hz + nanos * hz / 1_000_000_000).saturating_sub(1)
    })
}

fn next_tree_id() -> String {
    static COUNTER: AtomicU64 = AtomicU64::new(0);
    format!("{}{}", tree_tag(), COUNTER.fetch_add(1, Ordering::Relaxed))
}

pub(super) fn own_pid() -> i32 {
    i32::try_from(std::process::id()).unwrap_or(i32::MAX)
}

/// Main pids of the steps currently inside [`run`]: the sweeps must neither kill nor reap them,
/// or tokio would lose their exit status.
fn live_pids() -> MutexGuard<'static, BTreeSet<i32>> {
    static LIVE: Mutex<BTreeSet<i32>> = Mutex::new(BTreeSet::new());
    LIVE.lock().unwrap_or_else(PoisonError::into_inner)
}

/// Keeps the main pid in the live set until tokio has reaped it; if [`run`] is dropped midway,
/// takes the step's process group down with it.
struct Registration {
    pid: i32,
    reaped: bool,
    warden: Option<std::sync::Arc<super::warden::Warden>>,
}

impl Drop for Registration {
    fn drop(&mut self) {
        if !self.reaped {
            let _ = killpg(Pid::from_raw(self.pid), Signal::SIGKILL);
        }
        live_pids().remove(&self.pid);
        if let Some(warden) = &self.warden {
            warden.forget(self.pid);
        }
    }
}

/// Children of rollout that are not its steps' and that no sweep may stop (the warden).
fn spared() -> MutexGuard<'static, BTreeSet<i32>> {
    static SPARED: Mutex<BTreeSet<i32>> = Mutex::new(BTreeSet::new());
    SPARED.lock().unwrap_or_else(PoisonError::into_inner)
}

/// Whether every child of rollout is a spared one (and there is one): then it has no other
/// descendant either. Read from `/proc/self/task/*/children`, much less than all of `/proc`.
fn only_spared_children() -> bool {
    let spared = spared().clone();
    if spared.is_empty() {
        return false;
    }
    let Ok(tasks) = std::fs::read_dir("/proc/self/task") else {
        return false;
    };
    let mut children = BTreeSet::new();
    for task in tasks {
        let Ok(task) = task else { return false };
        let Ok(list) = std::fs::read_to_string(task.path().join("children")) else {
            return false;
        };
        children.extend(
            list.split_whitespace()
                .filter_map(|c| c.parse::<i32>().ok()),
        );
    }
    children.iter().all(|c| spared.contains(c))
}

/// Marks child `pid` as one the sweeps leave alone (`true`), or no longer (`false`).
pub(super) fn spare(pid: i32, spare: bool) {
    if spare {
        spared().insert(pid);
    } else {
        spared().remove(&pid);
    }
}

/// Reap dead children that nobody else will wait for: orphans reparented to rollout. Children
/// in rollout's own process group belong to other code (checks, hooks) that waits for them.
fn reap_orphans() {
    // Peek at a dead child without reaping it (WNOWAIT), then reap it by pid unless it belongs
    // to someone else: a step's main child is tokio's to reap, and children in rollout's own
    // process group belong to a `std::process::Command` waiting for them. One syscall when
    // there is nothing to reap, instead of reading all of /proc.
    for _ in 0..256 {
        let flags = WaitPidFlag::WEXITED | WaitPidFlag::WNOHANG | WaitPidFlag::WNOWAIT;
        let Ok(status) = waitid(Id::All, flags) else {
            return;
        };
        let Some(pid) = status.pid() else { return };
        if live_pids().contains(&pid.as_raw())
            || read_proc(pid.as_raw()).is_some_and(|p| p.pgrp == getpgrp().as_raw())
        {
            return;
        }
        let _ = waitpid(pid, Some(WaitPidFlag::WNOHANG));
    }
}

// ---------------------------------------------------------------------------------------------
// Output

struct Pipes {
    stdout: Option<ChildStdout>,
    stderr: Option<ChildStderr>,
    stdout_buf: ReadBuf,
    stderr_buf: ReadBuf,
    stdout_tail: Tail,
    stderr_tail: Tail,
    capture: Capture,
}

impl Pipes {
    fn new(child: &mut Child, capture: bool) -> Self {
        Self {
            stdout: child.stdout.take(),
            stderr: child.stderr.take(),
            stdout_buf: ReadBuf::take(),
            stderr_buf: ReadBuf::take(),
            stdout_tail: Tail::default(),
            stderr_tail: Tail::default(),
            capture: if capture {
                Capture::On(Vec::new())
            } else {
                Capture::Off
            },
        }
    }

    fn is_open(&self) -> bool {
        self.stdout.is_some() || self.stderr.is_some()
    }

    /// Waits for whichever pipe has data first. Cancel-safe: a read that loses the race has
    /// consumed nothing.
    async fn read_some(&mut self) -> (Stream, io::Result<usize>) {
        let Self {
            stdout,
            stderr,
            stdout_buf,
            stderr_buf,
            ..
        } = self;
        tokio::select! {
            read = read_or_pend(stdout.as_mut(), &mut stdout_buf.0) => (Stream::Stdout, read),
            read = read_or_pend(stderr.as_mut(), &mut stderr_buf.0) => (Stream::Stderr, read),
        }
    }

    fn deliver(
        &mut self,
        stream: Stream,
        read: io::Result<usize>,
        on_output: &mut dyn FnMut(Stream, &[u8]),
    ) {
        let n = match read {
            Ok(n) if n > 0 => n,
            Err(e) if e.kind() == io::ErrorKind::Interrupted => return,
            // EOF, or a broken pipe that will never yield more.
            _ => {
                match stream {
                    Stream::Stdout => self.stdout = None,
                    Stream::Stderr => self.stderr = None,
                }
                return;
            }
        };
        let chunk = match stream {
            Stream::Stdout => {
                let chunk = &self.stdout_buf.0[..n];
                self.stdout_tail.push(chunk);
                self.capture.push(chunk);
                chunk
            }
            Stream::Stderr => {
                let chunk = &self.stderr_buf.0[..n];
                self.stderr_tail.push(chunk);
                chunk
            }
        };
        on_output(stream, chunk);
    }

    /// Keep emptying pipes that a background descendant still holds, without delivering: a
    /// dropped pipe would kill a step's background server with SIGPIPE on its next write, and an
    /// unread one would block it once full. Ends at EOF or when the runtime shuts down.
    fn abandon(&mut self) {
        let (stdout, stderr) = (self.stdout.take(), self.stderr.take());
        if let Ok(runtime) = tokio::runtime::Handle::try_current() {
            runtime.spawn(async move {
                tokio::join!(discard(stdout), discard(stderr));
            });
        }
    }
}

/// A read buffer of [`READ_CHUNK`] bytes, returned for the next step when dropped: a fresh pair
/// at every step cost two zeroed 64 KiB allocations, given back to the kernel (`madvise`) and
/// faulted in again each time.
struct ReadBuf(Box<[u8]>);

fn spare_buffers() -> MutexGuard<'static, Vec<Box<[u8]>>> {
    static SPARE: Mutex<Vec<Box<[u8]>>> = Mutex::new(Vec::new());
    SPARE.lock().unwrap_or_else(PoisonError::into_inner)
}

impl ReadBuf {
    fn take() -> Self {
        let spare = spare_buffers().pop();
        Self(spare.unwrap_or_else(|| vec![0; READ_CHUNK].into_boxed_slice()))
    }
}

impl Drop for ReadBuf {
    fn drop(&mut self) {
        let mut spare = spare_buffers();
        // Enough for a few steps running at once (checks, hooks); more are freed.
        if spare.len() < 8 {
            spare.push(std::mem::take(&mut self.0));
        }
    }
}

async fn read_or_pend<R: AsyncRead + Unpin>(
    pipe: Option<&mut R>,
    buf: &mut [u8],
) -> io::Result<usize> {
    match pipe {
        Some(pipe) => pipe.read(buf).await,
        None => std::future::pending().await,
    }
}

async fn discard<R: AsyncRead + Unpin>(pipe: Option<R>) {
    if let Some(mut pipe) = pipe {
        let _ = tokio::io::copy(&mut pipe, &mut tokio::io::sink()).await;
    }
}

/// The last [`TAIL_BYTES`] of a stream. Trims only when twice the size, so each byte is moved
/// at most once more.
#[derive(Default)]
struct Tail {
    bytes: Vec<u8>,
}

impl Tail {
    fn push(&mut self, chunk: &[u8]) {
        if chunk.len() >= TAIL_BYTES {
            self.bytes.clear();
            self.bytes
                .extend_from_slice(&chunk[chunk.len() - TAIL_BYTES..]);
            return;
        }
        self.bytes.extend_from_slice(chunk);
        if self.bytes.len() > 2 * TAIL_BYTES {
            self.bytes.drain(..self.bytes.len() - TAIL_BYTES);
        }
    }

    fn into_vec(mut self) -> Vec<u8> {
        if self.bytes.len() > TAIL_BYTES {
            self.bytes.drain(..self.bytes.len() - TAIL_BYTES);
        }
        self.bytes
    }
}

enum Capture {
    Off,
    On(Vec<u8>),
    Overflowed,
}

impl Capture {
    fn push(&mut self, chunk: &[u8]) {
        if let Capture::On(bytes) = self {
            if bytes.len() + chunk.len() > CAPTURE_LIMIT {
                *self = Capture::Overflowed;
            } else {
                bytes.extend_from_slice(chunk);
            }
        }
    }

    fn into_result(self) -> Option<Result<Vec<u8>, String>> {
        match self {
            Capture::Off => None,
            Capture::On(bytes) => Some(Ok(bytes)),
            Capture::Overflowed => Some(Err("output larger than 1 MiB".to_owned())),
        }
    }
}

// ---------------------------------------------------------------------------------------------
// Stopping a step

#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
enum Stage {
    Interrupt,
    Terminate,
    Kill,
}

impl Stage {
    fn signal(self) -> Signal {
        match self {
            Stage::Interrupt => Signal::SIGINT,
            Stage::Terminate => Signal::SIGTERM,
            Stage::Kill => Signal::SIGKILL,
        }
    }

    fn next(self) -> Option<Stage> {
        match self {
            Stage::Interrupt => Some(Stage::Terminate),
            Stage::Terminate => Some(Stage::Kill),
            Stage::Kill => None,
        }
    }
}

/// A stop in progress: which signal was sent last and when. `done` once no process of the step
/// is left (or SIGKILL has had [`KILL_WAIT`] to work).
struct Stop {
    reason: Outcome,
    stage: Stage,
    since: Instant,
    done: bool,
}

impl Stop {
    fn begin(reason: Outcome, stage: Stage, tree: &Tree) -> Self {
        tree.signal(&tree.members(), stage.signal());
        Self {
            reason,
            stage,
            since: Instant::now(),
            done: false,
        }
    }

    fn escalate(&mut self, stage: Stage, tree: &Tree) {
        if stage > self.stage {
            self.stage = stage;
            self.since = Instant::now();
            tree.signal(&tree.members(), stage.signal());
        }
    }

    fn poll(&mut self, tree: &Tree, grace: Duration) {
        let members = tree.members();
        if members.is_empty() {
            self.done = true;
            return;
        }
        let waited = self.since.elapsed();
        match self.stage.next() {
            Some(next) if waited >= grace => {
                self.stage = next;
                self.since = Instant::now();
                tree.signal(&members, next.signal());
            }
            Some(_) => {}
            None if waited >= KILL_WAIT => self.done = true,
            // Processes forked since the last SIGKILL need their own.
            None => tree.signal(&members, Signal::SIGKILL),
        }
    }
}

/// The processes of one step, as found in `/proc`.
struct Tree {
    /// Pid of the main child, which is also the step's process group id.
    main: i32,
    /// Once tokio has reaped the main child its pid may be reused, so the subtree under it
    /// means nothing any more.
    main_reaped: bool,
    tag: String,
    /// Nothing started before the step can carry its tag; saves reading every `environ`.
    /// Taken from the clock before the spawn rather than from `/proc/<main>/stat` after it:
    /// reading that file was 9 of a step's syscalls.
    started_at: u64,
}

impl Tree {
    /// `started_at`: a time before the main child was started, in [`boot_ticks`].
    fn new(main: i32, tag: String, started_at: u64) -> Self {
        Self {
            main,
            main_reaped: false,
            tag,
            started_at,
        }
    }

    /// Living processes of the step: under the main child, in its process group (and still
    /// ours), or carrying its tag.
    fn members(&self) -> Vec<Proc> {
        let me = own_pid();
        let table = proc_table();
        let ours = descendants(&table, me);
        let mut under_main = BTreeSet::new();
        if !self.main_reaped {
            under_main = descendants(&table, self.main);
            under_main.insert(self.main);
        }
        let needle = format!("{TREE_VAR}={}", self.tag);
        table
            .into_iter()
            .filter(|p| !p.zombie && p.pid != me)
            .filter(|p| {
                under_main.contains(&p.pid)
                    || (p.pgrp == self.main && ours.contains(&p.pid))
                    || (p.start >= self.started_at && carries(p.pid, needle.as_bytes()))
            })
            .collect()
    }

    fn signal(&self, members: &[Proc], signal: Signal) {
        // The group signal also reaches members forked since `members` was read.
        if members.iter().any(|p| p.pgrp == self.main) {
            let _ = killpg(Pid::from_raw(self.main), signal);
        }
        for p in members.iter().filter(|p| p.pgrp != self.main) {
            let _ = kill(Pid::from_raw(p.pid), signal);
        }
    }
}

pub(super) fn carries(pid: i32, entry: &[u8]) -> bool {
    std::fs::read(format!("/proc/{pid}/environ"))
        .is_ok_and(|environ| environ.split(|&b| b == 0).any(|e| e == entry))
}

/// Whether process `pid`'s environment has an entry that begins with `prefix`.
pub(super) fn carries_prefix(pid: i32, prefix: &[u8]) -> bool {
    std::fs::read(format!("/proc/{pid}/environ"))
        .is_ok_and(|environ| environ.split(|&b| b == 0).any(|e| e.starts_with(prefix)))
}

// ---------------------------------------------------------------------------------------------
// /proc

/// The fields of `/proc/<pid>/stat` that the sweeps need.
#[derive(Debug, Clone, Copy)]
pub(super) struct Proc {
    pub(super) pid: i32,
    ppid: i32,
    pub(super) pgrp: i32,
    pub(super) zombie: bool,
    /// Clock ticks after boot.
    pub(super) start: u64,
}

pub(super) fn proc_table() -> Vec<Proc> {
    let Ok(dir) = std::fs::read_dir("/proc") else {
        return Vec::new();
    };
    dir.filter_map(|entry| entry.ok()?.file_name().to_str()?.parse().ok())
        .filter_map(read_proc)
        .collect()
}

pub(super) fn read_proc(pid: i32) -> Option<Proc> {
    parse_stat(
        pid,
        &std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?,
    )
}

fn parse_stat(pid: i32, line: &str) -> Option<Proc> {
    // The command name (field 2) is in parentheses and may itself contain spaces and ')'.
    let rest = &line[line.rfind(')')? + 1..];
    let mut fields = rest.split_ascii_whitespace();
    let state = fields.next()?;
    let parent = fields.next()?.parse().ok()?;
    let group = fields.next()?.parse().ok()?;
    // Field 6 comes next; starttime is field 22.
    let began = fields.nth(22 - 6)?.parse().ok()?;
    Some(Proc {
        pid,
        ppid: parent,
        pgrp: group,
        zombie: matches!(state, "Z" | "X"),
        start: began,
    })
}

fn descendants(table: &[Proc], root: i32) -> BTreeSet<i32> {
    let mut children: BTreeMap<i32, Vec<i32>> = BTreeMap::new();
    for p in table {
        children.entry(p.ppid).or_default().push(p.pid);
    }
    let mut found = BTreeSet::new();
    let mut stack = vec![root];
    while let Some(pid) = stack.pop() {
        for &child in children.get(&pid).map_or(&[][..], Vec::as_slice) {
            if found.insert(child) {
                stack.push(child);
            }
        }
    }
    found
}

#[cfg(test)]
mod tests {
    use super::*;

    fn block_on<F: Future>(future: F) -> F::Output {
        become_subreaper();
        let runtime = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .expect("runtime");
        runtime.block_on(async {
            tokio::time::timeout(Duration::from_secs(30), future)
                .await
                .expect("the test hung")
        })
    }

    fn sh(dir: &Path, script: &str) -> ProcessSpec {
        ProcessSpec {
            argv: vec!["sh".into(), "-c".into(), script.into()],
            env: BTreeMap::new(),
            workdir: dir.to_path_buf(),
            timeout: Duration::from_secs(20),
            grace: Duration::from_secs(5),
            capture_stdout: false,
            stdin_null: true,
            lookup_once: false,
            warden: None,
        }
    }

    struct Ran {
        finished: Finished,
        stdout: Vec<u8>,
        stderr: Vec<u8>,
    }

    /// Runs `spec`, collecting both streams; interrupts once stdout contains `interrupt_at`.
    fn collect(spec: &ProcessSpec, cancel: &Cancel, interrupt_at: Option<&str>) -> Ran {
        let (mut stdout, mut stderr) = (Vec::new(), Vec::new());
        let finished = block_on(run(spec, cancel, &mut |stream, chunk| match stream {
            Stream::Stdout => {
                stdout.extend_from_slice(chunk);
                if let Some(marker) = interrupt_at {
                    if String::from_utf8_lossy(&stdout).contains(marker) {
                        cancel.interrupt();
                    }
                }
            }
            Stream::Stderr => stderr.extend_from_slice(chunk),
        }));
        Ran {
            finished,
            stdout,
            stderr,
        }
    }

    fn run_sh(script: &str) -> Ran {
        let dir = tempfile::tempdir().unwrap();
        collect(&sh(dir.path(), script), &Cancel::new(), None)
    }

    fn exists(pid: i32) -> bool {
        Path::new(&format!("/proc/{pid}")).exists()
    }

    fn read_pids(dir: &Path) -> Vec<i32> {
        std::fs::read_to_string(dir.join("pids"))
            .unwrap()
            .lines()
            .map(|l| l.trim().parse().unwrap())
            .collect()
    }

    #[test]
    fn exit_codes_and_signals() {
        assert_eq!(run_sh("exit 0").finished.outcome, Outcome::Exited(0));
        assert_eq!(run_sh("exit 3").finished.outcome, Outcome::Exited(3));
        assert_eq!(
            run_sh("kill -KILL $$").finished.outcome,
            Outcome::Signaled(9)
        );
    }

    #[test]
    fn missing_program_and_workdir_fail_to_start() {
        let dir = tempfile::tempdir().unwrap();
        let mut spec = sh(dir.path(), "true");
        spec.argv = vec!["rollout-no-such-program".into()];
        let ran = collect(&spec, &Cancel::new(), None);
        assert_eq!(
            ran.finished.outcome,
            Outcome::FailedToStart("`rollout-no-such-program`: command not found".into())
        );

        let mut spec = sh(dir.path(), "true");
        spec.workdir = dir.path().join("missing");
        let Outcome::FailedToStart(why) = collect(&spec, &Cancel::new(), None).finished.outcome
        else {
            panic!("expected a failure to start");
        };
        assert!(why.contains("does not exist"), "{why}");
    }

    #[test]
    fn streams_are_separate_and_env_and_workdir_apply() {
        let dir = tempfile::tempdir().unwrap();
        let mut spec = sh(
            dir.path(),
            "printf 'out %s' \"$GREETING\"; printf err >&2; pwd >&2",
        );
        spec.env.insert("GREETING".into(), "hello".into());
        let ran = collect(&spec, &Cancel::new(), None);
        assert_eq!(ran.finished.outcome, Outcome::Exited(0));
        assert_eq!(ran.stdout, b"out hello");
        let expected_err = format!("err{}\n", dir.path().canonicalize().unwrap().display());
        assert_eq!(String::from_utf8_lossy(&ran.stderr), expected_err);
        assert_eq!(ran.finished.stdout_tail, b"out hello");
        assert_eq!(ran.finished.stderr_tail, expected_err.as_bytes());
        assert_eq!(ran.finished.captured, None);
    }

    #[test]
    fn output_arrives_while_the_process_runs() {
        let dir = tempfile::tempdir().unwrap();
        let mut spec = sh(dir.path(), "echo first; sleep 20");
        spec.grace = Duration::from_millis(200);
        let ran = collect(&spec, &Cancel::new(), Some("first"));
        assert_eq!(ran.finished.outcome, Outcome::Interrupted);
        assert!(ran.finished.duration < Duration::from_secs(5));
        assert_eq!(ran.stdout, b"first\n");
    }

    #[test]
    fn stdin_is_null() {
        let ran = run_sh("cat; echo done");
        assert_eq!(ran.stdout, b"done\n");
    }

    #[test]
    fn tail_keeps_the_last_64_kib() {
        let ran = run_sh("seq 1 1000000; seq 1 1000 >&2");
        assert!(ran.stdout.len() > 5_000_000);
        let tail = &ran.finished.stdout_tail;
        assert_eq!(tail.len(), TAIL_BYTES);
        assert_eq!(tail[..], ran.stdout[ran.stdout.len() - TAIL_BYTES..]);
        assert!(tail.ends_with(b"999999\n1000000\n"));
        assert_eq!(ran.finished.stderr_tail, ran.stderr);
    }

    #[test]
    fn tail_trims_across_chunk_sizes() {
        let mut tail = Tail::default();
        let mut all = Vec::new();
        for i in 0..5000_u32 {
            let chunk: Vec<u8> = (0..(i * 37) % 70_001)
                .map(|j| (i + j).to_le_bytes()[0])
                .collect();
            tail.push(&chunk);
            all.extend_from_slice(&chunk);
        }
        assert_eq!(tail.into_vec(), all[all.len() - TAIL_BYTES..]);
    }

    #[test]
    fn capture_is_bounded() {
        let dir = tempfile::tempdir().unwrap();
        let captured = |script: &str| {
            let mut spec = sh(dir.path(), script);
            spec.capture_stdout = true;
            collect(&spec, &Cancel::new(), None).finished.captured
        };
        assert_eq!(
            captured("printf hello; echo noise >&2"),
            Some(Ok(b"hello".to_vec()))
        );
        assert_eq!(
            captured("head -c 1048576 /dev/zero").map(|c| c.map(|b| b.len())),
            Some(Ok(CAPTURE_LIMIT))
        );
        assert_eq!(
            captured("head -c 1048577 /dev/zero"),
            Some(Err("output larger than 1 MiB".into()))
        );
    }

    #[test]
    fn timeout_stops_a_sleep_quickly() {
        let dir = tempfile::tempdir().unwrap();
        let mut spec = sh(dir.path(), "sleep 100");
        spec.timeout = Duration::from_millis(300);
        let ran = collect(&spec, &Cancel::new(), None);
        assert_eq!(ran.finished.outcome, Outcome::TimedOut);
        assert!(
            ran.finished.duration < Duration::from_secs(5),
            "{:?}",
            ran.finished.duration
        );
    }

    #[test]
    fn an_interrupt_before_the_start_runs_nothing() {
        let dir = tempfile::tempdir().unwrap();
        let cancel = Cancel::new();
        cancel.interrupt();
        let ran = collect(&sh(dir.path(), "echo ran > marker"), &cancel, None);
        assert_eq!(ran.finished.outcome, Outcome::Interrupted);
        assert!(!dir.path().join("marker").exists());
    }

    /// A step whose main shell waits on two stubborn descendants that ignore SIGINT and SIGTERM:
    /// python holding a listening TCP socket and the output pipe, and a `sleep` that left the
    /// process group and session with `setsid`. Prints `ready` once all pids are in `pids`.
    const STUBBORN: &str = r#"
        command -v python3 >/dev/null || { echo 'python3 is missing' >&2; exit 97; }
        echo $$ > pids
        ( trap '' INT TERM; exec python3 -c "$SERVER" ) &
        setsid sh -c 'trap "" INT TERM; echo $$ >> pids; exec sleep 100' &
        i=0
        while [ "$(wc -l < pids)" -lt 3 ] || [ ! -s port ]; do
            i=$((i + 1)); [ $i -lt 400 ] || { echo 'not ready' >&2; exit 98; }
            sleep 0.05
        done
        echo ready
        wait
    "#;

    const SERVER: &str = "import os, socket, time
s = socket.socket()
s.bind(('127.0.0.1', 0))
s.listen()
open('port', 'w').write(str(s.getsockname()[1]))
open('pids', 'a').write('%d\\n' % os.getpid())
time.sleep(100)
";

    fn stubborn(dir: &Path, grace: Duration) -> ProcessSpec {
        let mut spec = sh(dir, STUBBORN);
        spec.env.insert("SERVER".into(), SERVER.into());
        spec.grace = grace;
        spec
    }

    fn assert_all_gone(dir: &Path) {
        let pids = read_pids(dir);
        assert_eq!(pids.len(), 3, "{pids:?}");
        for pid in pids {
            // Not even a zombie: /proc/<pid> disappears only once the process is reaped.
            assert!(!exists(pid), "pid {pid} survived: {:?}", read_proc(pid));
        }
        let port: u16 = std::fs::read_to_string(dir.join("port"))
            .unwrap()
            .parse()
            .unwrap();
        assert!(
            std::net::TcpStream::connect(("127.0.0.1", port)).is_err(),
            "port {port} still accepts connections"
        );
    }

    #[test]
    fn timeout_stops_stubborn_and_escaped_descendants() {
        let dir = tempfile::tempdir().unwrap();
        let grace = Duration::from_millis(300);
        let mut spec = stubborn(dir.path(), grace);
        spec.timeout = Duration::from_secs(4);
        let ran = collect(&spec, &Cancel::new(), None);
        assert_eq!(
            ran.finished.outcome,
            Outcome::TimedOut,
            "{}",
            String::from_utf8_lossy(&ran.stderr)
        );
        assert_eq!(ran.stdout, b"ready\n");
        assert!(ran.finished.duration < spec.timeout + 2 * grace + Duration::from_secs(2));
        assert_all_gone(dir.path());
    }

    #[test]
    fn interrupt_stops_stubborn_and_escaped_descendants() {
        let dir = tempfile::tempdir().unwrap();
        let grace = Duration::from_millis(300);
        let spec = stubborn(dir.path(), grace);
        let started = std::time::Instant::now();
        let ran = collect(&spec, &Cancel::new(), Some("ready"));
        assert_eq!(
            ran.finished.outcome,
            Outcome::Interrupted,
            "{}",
            String::from_utf8_lossy(&ran.stderr)
        );
        assert!(started.elapsed() < Duration::from_secs(10));
        assert_all_gone(dir.path());
    }

    #[test]
    fn kill_skips_the_grace_period() {
        let dir = tempfile::tempdir().unwrap();
        let spec = stubborn(dir.path(), Duration::from_secs(60));
        let cancel = Cancel::new();
        let (mut stdout, mut killed_at) = (Vec::new(), None);
        let finished = block_on(run(&spec, &cancel, &mut |stream, chunk| {
            if stream == Stream::Stdout {
                stdout.extend_from_slice(chunk);
                if stdout.ends_with(b"ready\n") {
                    killed_at = Some(std::time::Instant::now());
                    cancel.interrupt();
                    cancel.kill();
                }
            }
        }));
        assert_eq!(finished.outcome, Outcome::Interrupted);
        let killed_at = killed_at.expect("the step never got ready");
        assert!(killed_at.elapsed() < Duration::from_secs(5));
        assert_all_gone(dir.path());
    }

    #[test]
    fn a_background_process_holding_the_pipe_neither_hangs_nor_dies() {
        let dir = tempfile::tempdir().unwrap();
        let started = std::time::Instant::now();
        let ran = collect(
            &sh(dir.path(), "sleep 30 & echo $! > pids; echo started"),
            &Cancel::new(),
            None,
        );
        assert_eq!(ran.finished.outcome, Outcome::Exited(0));
        assert_eq!(ran.stdout, b"started\n");
        assert!(started.elapsed() < Duration::from_secs(5));
        let pid = read_pids(dir.path())[0];
        assert!(exists(pid), "the background process was killed");
        let _ = kill(Pid::from_raw(pid), Signal::SIGKILL);
        let deadline = std::time::Instant::now() + Duration::from_secs(5);
        while exists(pid) && std::time::Instant::now() < deadline {
            reap_orphans();
            std::thread::sleep(POLL);
        }
        assert!(!exists(pid));
    }

    #[test]
    fn sweep_stops_what_steps_left_behind() {
        let dir = tempfile::tempdir().unwrap();
        let script = r#"
            setsid sh -c 'trap "" TERM; echo $$ >> pids; exec sleep 100' &
            sleep 100 &
            echo $! >> pids
            while [ "$(wc -l < pids)" -lt 2 ]; do sleep 0.05; done
        "#;
        let ran = collect(&sh(dir.path(), script), &Cancel::new(), None);
        assert_eq!(ran.finished.outcome, Outcome::Exited(0));
        let pids = read_pids(dir.path());
        assert!(pids.iter().all(|&pid| exists(pid)));
        let started = std::time::Instant::now();
        // Only this test's processes: other tests of this binary run concurrently.
        sweep(Duration::from_millis(200), |p| pids.contains(&p.pid));
        assert!(started.elapsed() < Duration::from_secs(5));
        for pid in pids {
            assert!(!exists(pid), "pid {pid} survived: {:?}", read_proc(pid));
        }
    }

    #[test]
    fn the_clock_before_a_spawn_bounds_the_start_time_in_proc() {
        let me = read_proc(own_pid()).unwrap().start;
        for _ in 0..20 {
            let before = boot_ticks();
            assert!(
                me <= before,
                "this process started at {me}, now is {before}"
            );
            let mut child = std::process::Command::new("sleep")
                .arg("5")
                .spawn()
                .unwrap();
            let started = read_proc(i32::try_from(child.id()).unwrap()).map(|p| p.start);
            let _ = child.kill();
            let _ = child.wait();
            let started = started.unwrap();
            assert!(before <= started, "taken at {before}, started at {started}");
        }
    }

    #[test]
    fn parses_stat_with_awkward_command_names() {
        let stat = "42 (a) b (c) S 7 42 42 0 -1 4194560 100 0 0 0 1 2 0 0 20 0 1 0 12345 \
                    1000 10 18446744073709551615 0 0 0 0 0 0 0 0 0 0 0 0 17 3 0 0 0 0 0";
        let p = parse_stat(42, stat).unwrap();
        assert_eq!((p.ppid, p.pgrp, p.start, p.zombie), (7, 42, 12345, false));
    }

    /// `cargo test --release -- --ignored passthrough_1gib --nocapture`
    #[test]
    #[ignore = "benchmark: streams 1 GiB"]
    fn passthrough_1gib() {
        const GIB: u64 = 1 << 30;
        let dir = tempfile::tempdir().unwrap();
        let mut spec = sh(dir.path(), "head -c 1073741824 /dev/zero");
        spec.timeout = Duration::from_secs(120);
        let mut total = 0_u64;
        let started = std::time::Instant::now();
        let finished = block_on(run(&spec, &Cancel::new(), &mut |_, chunk| {
            total += chunk.len() as u64;
        }));
        let ours = started.elapsed();
        assert_eq!(finished.outcome, Outcome::Exited(0));
        assert_eq!(total, GIB);

        let started = std::time::Instant::now();
        let status = std::process::Command::new("sh")
            .args(["-c", "head -c 1073741824 /dev/zero | cat > /dev/null"])
            .status()
            .unwrap();
        let cat = started.elapsed();
        assert!(status.success());

        let hwm = std::fs::read_to_string("/proc/self/status")
            .unwrap()
            .lines()
            .find(|l| l.starts_with("VmHWM"))
            .unwrap_or("VmHWM: ?")
            .to_owned();
        let rate = |d: Duration| GIB as f64 / d.as_secs_f64() / f64::from(1 << 20);
        println!(
            "run(): {ours:.2?} ({:.0} MiB/s); cat: {cat:.2?} ({:.0} MiB/s); {hwm}",
            rate(ours),
            rate(cat)
        );
    }
}
