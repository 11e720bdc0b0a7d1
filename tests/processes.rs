//! How a step's process is started, on the real binary: where its program is found (the shell
//! once, kubectl at every step), the name it sees, what a stop finds of it, and output that does
//! not carry over from one step to the next.

use std::os::unix::fs::{PermissionsExt, symlink};
use std::path::Path;

use crate::harness::{Test, journal, trace};

fn runbook(defaults: &str, steps: &str) -> String {
    format!(
        r#"[runbook]
name = "t"
{defaults}
[[phases]]
id = "p1"
title = "Phase one"
{steps}
"#
    )
}

/// `PATH` with the test's `a` and `b` directories first.
fn path_with_a_and_b(root: &Path) -> String {
    format!(
        "{}:{}:{}",
        root.join("a").display(),
        root.join("b").display(),
        std::env::var("PATH").unwrap_or_default()
    )
}

fn executable(path: &Path, text: &str) {
    std::fs::create_dir_all(path.parent().unwrap()).unwrap();
    std::fs::write(path, text).unwrap();
    std::fs::set_permissions(path, PermissionsExt::from_mode(0o755)).unwrap();
}

/// The shell is started by the path it was found at, but sees the name it was given: `bash -c`
/// sets `$0` to its `argv[0]` (and prefixes its errors with it).
#[test]
fn the_shell_sees_the_name_it_was_given() {
    let rb = runbook(
        "",
        r#"[[phases.steps]]
id = "zero"
run = 'echo "zero=$0" >> trace'
"#,
    );
    let out = Test::new()
        .runbook(&rb)
        .args(["run", "runbook.toml"])
        .status(0);
    assert_eq!(trace(&out.dir), ["zero=bash"]);
}

/// The shell is looked up once per run; when it is no longer where it was found, the next step
/// looks again instead of failing.
#[test]
fn a_shell_gone_from_where_it_was_found_is_looked_up_again() {
    let t = Test::new();
    let root = t.path().to_path_buf();
    for dir in ["a", "b"] {
        std::fs::create_dir_all(root.join(dir)).unwrap();
        symlink("/bin/sh", root.join(dir).join("rollout-test-sh")).unwrap();
    }
    let rb = runbook(
        "[defaults]\nshell = [\"rollout-test-sh\", \"-c\"]\n",
        r#"[[phases.steps]]
id = "first"
run = "rm a/rollout-test-sh && echo first >> trace"
[[phases.steps]]
id = "second"
run = "echo second >> trace"
"#,
    );
    let out = t
        .runbook(&rb)
        .env("PATH", &path_with_a_and_b(&root))
        .args(["run", "runbook.toml"])
        .status(0);
    assert_eq!(trace(&out.dir), ["first", "second"]);
    assert!(!root.join("a/rollout-test-sh").exists());
}

/// kubectl is looked up at every step: one that a step installs earlier in `PATH` is the one
/// the next kubectl step runs.
#[test]
fn kubectl_is_looked_up_at_every_step() {
    let t = Test::new();
    let root = t.path().to_path_buf();
    let log = root.join("trace");
    executable(
        &root.join("b/kubectl"),
        &format!("#!/bin/sh\necho old >> '{}'\n", log.display()),
    );
    std::fs::create_dir_all(root.join("a")).unwrap();
    let new = format!("#!/bin/sh\necho new >> '{}'\n", log.display());
    let rb = runbook(
        "[defaults.kubectl]\ncontext = \"c\"\nnamespace = \"n\"\n",
        &format!(
            r#"[[phases.steps]]
id = "before"
kubectl = ["version"]
[[phases.steps]]
id = "install"
run = '''printf '%s' "$NEW" > a/kubectl && chmod +x a/kubectl'''
env = {{ NEW = {new:?} }}
[[phases.steps]]
id = "after"
kubectl = ["version"]
"#
        ),
    );
    let out = t
        .runbook(&rb)
        .env("PATH", &path_with_a_and_b(&root))
        .args(["run", "runbook.toml"])
        .status(0);
    assert_eq!(trace(&out.dir), ["old", "new"]);
}

/// A process that left the step's process group and whose parent exited is recognised only by
/// the step's tag in its environment (and its start time, after the step's): a timeout stops it
/// too, before the next step runs.
#[test]
fn a_timeout_stops_a_process_that_left_the_group_and_lost_its_parent() {
    let rb = runbook(
        "",
        r#"[[phases.steps]]
id = "escape"
timeout = "2s"
continue_on_error = true
run = '''
( setsid sh -c 'trap "" INT TERM; echo $$ > escapee; exec sleep 100' & )
i=0
while [ ! -s escapee ] && [ $i -lt 200 ]; do i=$((i + 1)); sleep 0.05; done
sleep 100
'''
[[phases.steps]]
id = "after"
run = 'if kill -0 "$(cat escapee)" 2>/dev/null; then echo alive >> trace; else echo gone >> trace; fi'
"#,
    );
    let out = Test::new()
        .runbook(&rb)
        .args(["run", "runbook.toml", "--grace", "200ms"])
        .status(0);
    let pid: i32 = std::fs::read_to_string(out.dir.join("escapee"))
        .unwrap()
        .trim()
        .parse()
        .unwrap();
    let left = trace(&out.dir);
    if left != ["gone"] {
        let _ = nix::sys::signal::kill(
            nix::unistd::Pid::from_raw(pid),
            nix::sys::signal::Signal::SIGKILL,
        );
    }
    assert_eq!(left, ["gone"], "{}", out.stderr);
    out.stderr_has("timed out");
}

/// Read buffers are reused from step to step: a short output after a long one is exactly
/// itself, in the capture and in the recorded tail.
#[test]
fn a_short_output_after_a_long_one_is_only_itself() {
    let rb = runbook(
        "",
        r#"[[phases.steps]]
id = "long"
run = "head -c 200000 /dev/zero | tr '\\0' x"
[[phases.steps]]
id = "short"
run = "printf short"
capture = "c"
[[phases.steps]]
id = "use"
run = "printf '[%s]\\n' {{ c }} >> trace"
"#,
    );
    let out = Test::new()
        .runbook(&rb)
        .args(["run", "runbook.toml"])
        .status(0);
    assert_eq!(trace(&out.dir), ["[short]"]);
    let tail = journal(&out.dir)
        .into_iter()
        .find(|r| r["type"] == "step_finished" && r["step"] == "short")
        .map(|r| r["output_tail"].clone());
    assert_eq!(
        tail.as_ref().and_then(|t| t.as_str()),
        Some("short"),
        "{tail:?}"
    );
}
