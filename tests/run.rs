//! `rollout run`, `resume`, `status` and `runs` on the real binary: ordering, timeouts, retries,
//! captures, conditions, failure actions, kubectl argv, pauses, gates without a terminal,
//! interruption and resume after a crash.

use std::fmt::Write as _;
use std::path::Path;
use std::process::Stdio;
use std::time::{Duration, Instant};

use crate::harness::{Test, journal, journal_file, trace, wait_bounded, wait_for_path};

/// A runbook whose every step appends its id to `trace` in the test directory.
fn tracing_runbook(steps: &str) -> String {
    format!(
        r#"[runbook]
name = "t"

[[phases]]
id = "p1"
title = "Phase one"
{steps}
"#
    )
}

#[test]
fn steps_run_in_order_and_the_journal_records_each_before_and_after() {
    let rb = tracing_runbook(
        r#"
[[phases.steps]]
id = "a"
run = "echo a >> trace"
[[phases.steps]]
id = "b"
run = "echo b >> trace"
[[phases]]
id = "p2"
title = "Phase two"
[[phases.steps]]
id = "c"
run = "echo c >> trace"
"#,
    );
    let out = Test::new()
        .runbook(&rb)
        .args(["run", "runbook.toml"])
        .status(0);
    assert_eq!(trace(&out.dir), ["a", "b", "c"]);
    let types: Vec<String> = journal(&out.dir)
        .iter()
        .map(|r| r["type"].as_str().unwrap().to_string())
        .collect();
    assert_eq!(
        types,
        [
            "run_started",
            "lock_acquired",
            "phase_started",
            "step_started",
            "step_finished",
            "step_started",
            "step_finished",
            "phase_finished",
            "phase_started",
            "step_started",
            "step_finished",
            "phase_finished",
            "run_finished",
            "lock_released",
            "sealed"
        ]
    );
    out.stderr_has("phase 1/2: Phase one (p1)")
        .stderr_has("succeeded");
}

#[test]
fn a_failed_step_stops_the_run_with_its_exit_code_and_reason() {
    let rb = tracing_runbook(
        r#"on_failure = "abort"
[[phases.steps]]
id = "bad"
run = "echo partial; exit 7"
[[phases.steps]]
id = "never"
run = "echo never >> trace"
"#,
    );
    let out = Test::new()
        .runbook(&rb)
        .args(["run", "runbook.toml"])
        .status(5);
    assert!(trace(&out.dir).is_empty());
    out.stderr_has("exited with code 7");
    let fin = journal(&out.dir)
        .into_iter()
        .find(|r| r["type"] == "step_finished")
        .unwrap();
    assert_eq!(fin["exit_code"], 7);
    assert_eq!(fin["status"], "failed");
    assert!(fin["output_tail"].as_str().unwrap().contains("partial"));
}

#[test]
fn timeouts_stop_the_step_and_count_as_failure() {
    let rb = tracing_runbook(
        r#"on_failure = "abort"
[[phases.steps]]
id = "slow"
run = "sleep 30"
timeout = "300ms"
"#,
    );
    let start = Instant::now();
    let out = Test::new()
        .runbook(&rb)
        .args(["run", "runbook.toml", "--grace", "200ms"])
        .status(5);
    assert!(start.elapsed() < Duration::from_secs(10));
    out.stderr_has("timed out after 300ms");
}

#[test]
fn retries_with_backoff_until_success() {
    let rb = tracing_runbook(
        r#"
[[phases.steps]]
id = "flaky"
run = "echo try >> trace; [ $(wc -l < trace) -ge 3 ]"
retry = { attempts = 4, delay = "50ms", backoff = 2.0 }
"#,
    );
    let out = Test::new()
        .runbook(&rb)
        .args(["run", "runbook.toml"])
        .status(0);
    assert_eq!(trace(&out.dir).len(), 3);
    out.stderr_has("retrying flaky (attempt 2)")
        .stderr_has("retrying flaky (attempt 3)");
}

#[test]
fn continue_on_error_goes_on_and_records_the_failure() {
    let rb = tracing_runbook(
        r#"
[[phases.steps]]
id = "bad"
run = "exit 1"
continue_on_error = true
[[phases.steps]]
id = "after"
run = "echo after >> trace"
"#,
    );
    let out = Test::new()
        .runbook(&rb)
        .args(["run", "runbook.toml"])
        .status(0);
    assert_eq!(trace(&out.dir), ["after"]);
    assert!(
        journal(&out.dir)
            .iter()
            .any(|r| r["status"] == "failed_ignored")
    );
}

#[test]
fn captured_output_feeds_later_steps_and_when_conditions() {
    let rb = tracing_runbook(
        r#"
[vars]
mode = "fast"
[[phases.steps]]
id = "produce"
run = "printf 'v1.2\n'"
capture = "version"
[[phases.steps]]
id = "consume"
run = "echo got {{ version }} >> trace"
[[phases.steps]]
id = "only-slow"
when = "mode == 'slow'"
run = "echo slow >> trace"
[[phases.steps]]
id = "only-v12"
when = "version == 'v1.2'"
run = "echo v12 >> trace"
[[phases.steps]]
id = "only-v13"
when = "version == 'v1.3'"
run = "echo v13 >> trace"
"#,
    );
    let out = Test::new()
        .runbook(&rb)
        .args(["run", "runbook.toml"])
        .status(0);
    assert_eq!(trace(&out.dir), ["got v1.2", "v12"]);
    out.stderr_has("only-slow skipped")
        .stderr_has("only-v13 skipped");
}

#[test]
fn a_when_reading_a_secret_or_capture_is_decided_at_run_time_in_a_plan() {
    let rb = r#"[runbook]
name = "w"
[vars.token]
secret = { env = "TOKEN" }
[[phases]]
id = "p"
title = "P"
[[phases.steps]]
id = "cap"
run = "echo x"
capture = "out"
[[phases.steps]]
id = "by-secret"
when = "token == 'abc'"
run = "echo secret-branch >> trace"
[[phases.steps]]
id = "by-capture"
when = "out == 'x'"
run = "echo capture-branch >> trace"
"#;
    let plan = Test::new()
        .runbook(rb)
        .args(["plan", "runbook.toml", "--format", "json"])
        .status(0);
    let steps = &plan.json()["phases"][0]["steps"];
    assert_eq!(steps[1]["when"]["decision"], "at_run_time");
    assert_eq!(steps[2]["when"]["decision"], "at_run_time");
    let run = Test::in_dir(&plan.dir)
        .env("TOKEN", "abc")
        .args(["run", "runbook.toml"])
        .status(0);
    assert_eq!(trace(&run.dir), ["secret-branch", "capture-branch"]);
}

#[test]
fn kubectl_steps_run_the_stub_with_exact_argv_context_and_namespace() {
    let stub = "#!/bin/sh\nfor a in \"$@\"; do printf '%s\\n' \"$a\"; done > \"$ARGV_OUT\"\nenv > \"$ENV_OUT\"\n";
    let rb = r#"[runbook]
name = "k"
[vars]
image = "reg/app:v2 with space"
[defaults.kubectl]
context = "prod-ctx"
namespace = "payments"
[[phases]]
id = "p"
title = "P"
[[phases.steps]]
id = "set"
kubectl = ["set", "image", "deployment/app", "app={{ image }}"]
env = { EXTRA = "x" }
"#;
    let t = Test::new().runbook(rb).file("kubectl-stub", stub);
    let dir = t.path().to_path_buf();
    std::fs::set_permissions(
        dir.join("kubectl-stub"),
        std::os::unix::fs::PermissionsExt::from_mode(0o755),
    )
    .unwrap();
    let out = t
        .env("KUBECTL", dir.join("kubectl-stub").to_str().unwrap())
        .env("ARGV_OUT", dir.join("argv").to_str().unwrap())
        .env("ENV_OUT", dir.join("env").to_str().unwrap())
        .args(["run", "runbook.toml"])
        .status(0);
    let argv = std::fs::read_to_string(out.dir.join("argv")).unwrap();
    assert_eq!(
        argv.lines().collect::<Vec<_>>(),
        [
            "--context",
            "prod-ctx",
            "--namespace",
            "payments",
            "set",
            "image",
            "deployment/app",
            "app=reg/app:v2 with space"
        ]
    );
    let env = std::fs::read_to_string(out.dir.join("env")).unwrap();
    assert!(env.contains("EXTRA=x"));
    assert!(env.contains("ROLLOUT_VAR_IMAGE=reg/app:v2 with space"));
    assert!(env.contains("ROLLOUT_STEP=set"));
}

#[test]
fn a_pause_step_stops_and_resume_continues_after_it() {
    let rb = tracing_runbook(
        r#"
[[phases.steps]]
id = "before"
run = "echo before >> trace"
[[phases.steps]]
id = "hold"
pause = "check the dashboards"
[[phases.steps]]
id = "after"
run = "echo after >> trace"
"#,
    );
    let out = Test::new()
        .runbook(&rb)
        .args(["run", "runbook.toml"])
        .status(8);
    out.stderr_has("check the dashboards")
        .stderr_has("rollout resume");
    assert_eq!(trace(&out.dir), ["before"]);
    let dir = out.dir.clone();
    let status = Test::in_dir(&dir).args(["status"]).status(0);
    status.stdout_has("paused");
    let resumed = Test::in_dir(&dir).args(["resume"]).status(0);
    assert_eq!(trace(&resumed.dir), ["before", "after"]);
}

#[test]
fn gates_without_a_terminal_stop_waiting_and_resume_with_the_approval() {
    let rb = tracing_runbook(
        r#"
[[phases.steps]]
id = "go"
confirm = "Deploy?"
[[phases.steps]]
id = "list"
checklist = ["one", "two"]
[[phases.steps]]
id = "leads"
signoff = "Leads"
roles = [{ role = "QA Lead", approvers = ["quinn"] }, "Dev Lead"]
exclude_operator = true
[[phases.steps]]
id = "done"
run = "echo done >> trace"
"#,
    );
    let start = Instant::now();
    let out = Test::new()
        .runbook(&rb)
        .args(["run", "runbook.toml"])
        .status(7);
    assert!(start.elapsed() < Duration::from_secs(5));
    out.stderr_has("confirm `go`").stderr_has("--approve go");
    let dir = out.dir.clone();
    // --yes satisfies the plain confirm but not the checklist.
    let second = Test::in_dir(&dir).args(["resume", "--yes"]).status(7);
    second.stderr_has("checklist `list` has 2 open item(s)");
    let third = Test::in_dir(&dir)
        .args(["resume", "--check", "list"])
        .status(7);
    third.stderr_has("sign-off `leads` needs 2 signer(s)");
    // The operator cannot sign; a non-approver cannot sign as QA Lead. Both are refused
    // before anything runs, and the run still waits at the sign-off.
    let refused = Test::in_dir(&dir)
        .env("ROLLOUT_OPERATOR", "olga")
        .args([
            "resume",
            "--signoff",
            "leads=mallory:QA Lead",
            "--signoff",
            "leads=olga:Dev Lead",
        ])
        .status(2);
    refused
        .stderr_has(
            "`--signoff leads=mallory:QA Lead`: mallory may not sign as QA Lead (allowed: quinn)",
        )
        .stderr_has(
            "`--signoff leads=olga:Dev Lead`: olga is the operator of this run and cannot sign it",
        );
    let signed = Test::in_dir(&dir)
        .env("ROLLOUT_OPERATOR", "olga")
        .args([
            "resume",
            "--signoff",
            "leads=quinn:QA Lead",
            "--signoff",
            "leads=dan:Dev Lead",
        ])
        .status(0);
    assert_eq!(trace(&signed.dir), ["done"]);
    let answers: Vec<String> = journal(&signed.dir)
        .iter()
        .filter(|r| r["type"] == "step_finished")
        .map(|r| r["reason"].as_str().unwrap_or("").to_string())
        .collect();
    assert!(
        answers
            .iter()
            .any(|a| a.contains("signed by quinn (QA Lead), dan (Dev Lead)")),
        "{answers:?}"
    );
}

#[test]
fn resume_refuses_a_changed_runbook_unless_allowed_and_shows_the_change() {
    let rb = tracing_runbook(
        r#"
[[phases.steps]]
id = "hold"
pause = "wait"
[[phases.steps]]
id = "after"
run = "echo after >> trace"
"#,
    );
    let out = Test::new()
        .runbook(&rb)
        .args(["run", "runbook.toml"])
        .status(8);
    let dir = out.dir.clone();
    std::fs::write(
        dir.join("runbook.toml"),
        rb.replace("echo after", "echo changed"),
    )
    .unwrap();
    let refused = Test::in_dir(&dir).args(["resume"]).status(2);
    refused
        .stderr_has("-run = \"echo after >> trace\"")
        .stderr_has("+run = \"echo changed >> trace\"")
        .stderr_has("--allow-changed");
    let allowed = Test::in_dir(&dir)
        .args(["resume", "--allow-changed"])
        .status(0);
    assert_eq!(trace(&allowed.dir), ["changed"]);
}

#[test]
fn output_json_is_one_event_per_line() {
    let rb = tracing_runbook(
        r#"
[[phases.steps]]
id = "hello"
run = "echo hi"
"#,
    );
    let out = Test::new()
        .runbook(&rb)
        .args(["run", "runbook.toml", "--output", "json"])
        .status(0);
    let events = out.events();
    let kinds: Vec<&str> = events
        .iter()
        .map(|e| e["event"].as_str().unwrap())
        .collect();
    assert_eq!(
        kinds,
        [
            "run_started",
            "phase_started",
            "step_started",
            "output",
            "step_finished",
            "phase_finished",
            "run_finished",
            "audit_sealed"
        ]
    );
    assert_eq!(events[3]["data"], "hi\n");
    assert!(
        events[7]["audit_digest"]
            .as_str()
            .unwrap()
            .starts_with("sha256:")
    );
}

#[test]
fn dry_run_is_the_plan_and_writes_nothing() {
    let rb = tracing_runbook(
        r#"
[[phases.steps]]
id = "hello"
run = "echo hi >> trace"
"#,
    );
    let plan = Test::new()
        .runbook(&rb)
        .args(["plan", "runbook.toml"])
        .status(0);
    let dry = Test::in_dir(&plan.dir)
        .args(["run", "--dry-run", "runbook.toml"])
        .status(0);
    assert_eq!(plan.stdout, dry.stdout);
    assert!(!dry.dir.join(".rollout").exists());
    assert!(!dry.dir.join("trace").exists());
}

#[test]
fn secrets_are_masked_in_output_and_never_stored() {
    let rb = r#"[runbook]
name = "s"
[vars.token]
secret = { env = "MY_TOKEN" }
[[phases]]
id = "p"
title = "P"
[[phases.steps]]
id = "use"
run = "echo token={{ token }}; echo env=$ROLLOUT_VAR_TOKEN >&2; test {{ token }} = \"$MY_TOKEN\""
"#;
    let out = Test::new()
        .runbook(rb)
        .env("MY_TOKEN", "hunter2-secret")
        .args(["run", "runbook.toml"])
        .status(0);
    assert!(
        !out.stdout.contains("hunter2") && !out.stderr.contains("hunter2"),
        "{}{}",
        out.stdout,
        out.stderr
    );
    out.stdout_has("token=******");
    let journal = std::fs::read_to_string(journal_file(&out.dir)).unwrap();
    assert!(!journal.contains("hunter2"));
}

#[test]
fn status_and_runs_show_where_each_run_stands() {
    let rb = tracing_runbook(
        r#"
[[phases.steps]]
id = "hold"
pause = "soak for a day"
"#,
    );
    let out = Test::new()
        .runbook(&rb)
        .args(["run", "runbook.toml"])
        .status(8);
    let dir = out.dir.clone();
    let status = Test::in_dir(&dir)
        .args(["status", "--format", "json"])
        .status(0);
    let v = status.json();
    assert_eq!(v["state"], "paused");
    assert_eq!(v["reason"], "soak for a day");
    let runs = Test::in_dir(&dir).args(["runs"]).status(0);
    runs.stdout_has("paused");
}

/// Kills rollout with SIGKILL at random points and resumes each time until the run finishes:
/// no completed step runs twice, and only the one in-doubt step may run again.
#[test]
fn resume_after_kill_9_never_reruns_a_completed_step() {
    const STEPS: usize = 12;
    const KILLS: usize = 210;
    let mut steps = String::new();
    for i in 0..STEPS {
        let _ = writeln!(
            steps,
            "[[phases.steps]]\nid = \"s{i}\"\nrun = \"echo s{i} >> trace; sleep 0.0$((RANDOM % 3))\""
        );
    }
    let rb = tracing_runbook(&steps);
    let t = Test::new().runbook(&rb);
    let dir = t.path().to_path_buf();
    let mut kills = 0;
    let mut seed: u64 = 0x9e37_79b9_7f4a_7c15;
    let mut rounds = 0;
    let mut finished_runs = 0;
    let mut reruns_allowed = 0;
    while kills < KILLS {
        rounds += 1;
        assert!(rounds < KILLS * 4, "too many rounds");
        let _ = std::fs::remove_dir_all(dir.join(".rollout"));
        let _ = std::fs::remove_file(dir.join("trace"));
        let mut first = true;
        loop {
            let mut cmd = t.command();
            if first {
                cmd.args(["run", "runbook.toml"]);
            } else {
                cmd.args(["resume", "--rerun-in-doubt"]);
            }
            first = false;
            cmd.stdin(Stdio::null())
                .stdout(Stdio::null())
                .stderr(Stdio::piped());
            let mut child = cmd.spawn().unwrap();
            seed ^= seed << 13;
            seed ^= seed >> 7;
            seed ^= seed << 17;
            let delay = Duration::from_micros(seed % 60_000);
            std::thread::sleep(delay);
            if child.try_wait().unwrap().is_none() && kills < KILLS {
                child.kill().unwrap();
                kills += 1;
                reruns_allowed += 1;
            }
            let output = wait_bounded(child, Duration::from_secs(20));
            let stderr = String::from_utf8_lossy(&output.stderr);
            match output.status.code() {
                Some(0) => break,
                // Killed after its last record: the run is complete.
                Some(2)
                    if stderr.contains("already finished") || stderr.contains("has finished") =>
                {
                    break;
                }
                // Killed before the run's first record: nothing ran; start again.
                Some(2) => {
                    let _ = std::fs::remove_dir_all(dir.join(".rollout"));
                    assert!(trace(&dir).is_empty(), "resume failed: {stderr}");
                    first = true;
                }
                _ => {}
            }
        }
        finished_runs += 1;
        let trace = trace(&dir);
        for i in 0..STEPS {
            let n = trace.iter().filter(|l| **l == format!("s{i}")).count();
            assert!(n >= 1, "step s{i} never ran: {trace:?}");
        }
        let extra = trace.len() - STEPS;
        assert!(
            extra <= reruns_allowed,
            "{extra} reruns after {reruns_allowed} kills: {trace:?}"
        );
        reruns_allowed = 0;
        // Every step appears in order, each rerun only directly after its own first run.
        let mut last = None;
        for line in &trace {
            let i: usize = line[1..].parse().unwrap();
            if let Some(prev) = last {
                assert!(
                    i == prev || i == prev + 1,
                    "out of order or rerun of a completed step: {trace:?}"
                );
            }
            last = Some(i);
        }
    }
    assert!(finished_runs > 0);
}

fn alive(pid: i32) -> bool {
    // A zombie has no threads to run; count it as gone only once it is reaped.
    Path::new(&format!("/proc/{pid}")).exists()
}

fn wait_for_file(path: &Path, limit: Duration) -> String {
    let start = Instant::now();
    loop {
        if let Ok(text) = std::fs::read_to_string(path) {
            if text.ends_with('\n') {
                return text;
            }
        }
        assert!(start.elapsed() < limit, "{} never appeared", path.display());
        std::thread::sleep(Duration::from_millis(20));
    }
}

/// The step's grandchildren ignore SIGINT and SIGTERM and hold a listening socket; one of them
/// even leaves the process group with setsid. Ctrl-C must stop them all within the grace
/// periods, save the run as paused with the step in doubt, and exit 130.
#[test]
fn ctrl_c_stops_the_whole_process_tree_and_pauses_the_run() {
    let rb = tracing_runbook(
        r#"
[[phases.steps]]
id = "stubborn"
run = '''
python3 -c 'import os, signal, socket, time
signal.signal(signal.SIGINT, signal.SIG_IGN)
signal.signal(signal.SIGTERM, signal.SIG_IGN)
s = socket.socket(); s.bind(("127.0.0.1", 0)); s.listen()
open("pids", "a").write("%d\n" % os.getpid()); time.sleep(100)' &
setsid sh -c 'trap "" INT TERM; echo $$ >> pids; exec sleep 100' &
sleep 100
'''
[[phases.steps]]
id = "after"
run = "echo after >> trace"
"#,
    );
    let t = Test::new().runbook(&rb);
    let dir = t.path().to_path_buf();
    let mut cmd = t.command();
    cmd.args(["run", "runbook.toml", "--grace", "300ms"])
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped());
    let child = cmd.spawn().unwrap();
    let start = Instant::now();
    while std::fs::read_to_string(dir.join("pids"))
        .unwrap_or_default()
        .lines()
        .count()
        < 2
    {
        assert!(
            start.elapsed() < Duration::from_secs(10),
            "the step never started its grandchildren"
        );
        std::thread::sleep(Duration::from_millis(20));
    }
    let pids: Vec<i32> = wait_for_file(&dir.join("pids"), Duration::from_secs(5))
        .lines()
        .map(|l| l.parse().unwrap())
        .collect();
    nix::sys::signal::kill(
        nix::unistd::Pid::from_raw(i32::try_from(child.id()).unwrap()),
        nix::sys::signal::Signal::SIGINT,
    )
    .unwrap();
    let interrupted = Instant::now();
    let out = wait_bounded(child, Duration::from_secs(10));
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(130), "{stderr}");
    // interrupt -> 300 ms -> terminate -> 300 ms -> kill, plus reaping.
    assert!(
        interrupted.elapsed() < Duration::from_secs(3),
        "took {:?}",
        interrupted.elapsed()
    );
    for pid in &pids {
        let gone = Instant::now();
        while alive(*pid) && gone.elapsed() < Duration::from_secs(2) {
            std::thread::sleep(Duration::from_millis(20));
        }
        assert!(!alive(*pid), "grandchild {pid} survived the interrupt");
    }
    assert!(stderr.contains("rollout resume"), "{stderr}");
    let status = Test::in_dir(&dir)
        .args(["status", "--format", "json"])
        .status(0);
    let v = status.json();
    assert_eq!(v["state"], "paused");
    assert_eq!(v["in_doubt"], "stubborn");
    // The interrupted step is in doubt: resume needs a decision; skipping it runs the rest.
    Test::in_dir(&dir)
        .args(["resume"])
        .status(7)
        .stderr_has("--rerun-in-doubt");
    Test::in_dir(&dir)
        .args(["resume", "--skip-in-doubt"])
        .status(0);
    assert_eq!(trace(&dir), ["after"]);
}

#[test]
fn failure_actions_pause_and_rollback_stop_with_their_own_exit_codes() {
    let rb = tracing_runbook(
        r#"on_failure = "pause"
[[phases.steps]]
id = "flaky"
run = "echo try >> trace; test -f fixed"
[[phases.steps]]
id = "after"
run = "echo after >> trace"
"#,
    );
    let out = Test::new()
        .runbook(&rb)
        .args(["run", "runbook.toml"])
        .status(8);
    out.stderr_has("step `flaky` failed");
    std::fs::write(out.dir.join("fixed"), "").unwrap();
    // A failed step is not done: resume runs it again, then the rest.
    Test::in_dir(&out.dir).args(["resume"]).status(0);
    assert_eq!(trace(&out.dir), ["try", "try", "after"]);

    let rb = tracing_runbook(
        r#"
[[phases.steps]]
id = "bad"
run = "exit 3"
on_failure = "rollback"
"#,
    );
    let out = Test::new()
        .runbook(&rb)
        .args(["run", "runbook.toml"])
        .status(9);
    // Nobody here can confirm the rollback: the run waits for it, and `--yes` performs it.
    out.stderr_has("the rollback needs a confirmation")
        .stderr_has("--yes");
    Test::in_dir(&out.dir)
        .args(["resume", "--yes"])
        .status(10)
        .stderr_has("rollback complete");
}

#[test]
fn an_idempotent_step_in_doubt_reruns_without_asking() {
    let rb = tracing_runbook(
        r#"
[[phases.steps]]
id = "sync"
run = "echo sync >> trace; touch started; sleep 30"
idempotent = true
"#,
    );
    let t = Test::new().runbook(&rb);
    let dir = t.path().to_path_buf();
    let mut cmd = t.command();
    cmd.args(["run", "runbook.toml"])
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::null());
    let mut child = cmd.spawn().unwrap();
    wait_for_path(&dir.join("started"));
    child.kill().unwrap();
    let _ = wait_bounded(child, Duration::from_secs(10));
    // The killed rollout's step is still sleeping in its own process group; make it quick.
    let rb2 = rb.replace("sleep 30", "true");
    std::fs::write(dir.join("runbook.toml"), rb2).unwrap();
    let out = Test::in_dir(&dir)
        .args(["resume", "--allow-changed"])
        .status(0);
    out.stderr_has("in-doubt step `sync`: rerun (the step is marked idempotent)");
    assert_eq!(trace(&dir), ["sync", "sync"]);
}

fn signal(child: &std::process::Child, sig: nix::sys::signal::Signal) {
    nix::sys::signal::kill(
        nix::unistd::Pid::from_raw(i32::try_from(child.id()).unwrap()),
        sig,
    )
    .unwrap();
}

#[test]
fn sigterm_stops_the_step_and_exits_143_and_a_second_ctrl_c_kills_at_once() {
    let rb = tracing_runbook(
        r#"
[[phases.steps]]
id = "stubborn"
run = "trap '' INT TERM; touch started; sleep 30 & wait; sleep 30"
"#,
    );
    let t = Test::new().runbook(&rb);
    let dir = t.path().to_path_buf();
    let mut cmd = t.command();
    cmd.args(["run", "runbook.toml", "--grace", "300ms"])
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::piped());
    let child = cmd.spawn().unwrap();
    wait_for_path(&dir.join("started"));
    signal(&child, nix::sys::signal::Signal::SIGTERM);
    let out = wait_bounded(child, Duration::from_secs(10));
    assert_eq!(
        out.status.code(),
        Some(143),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(String::from_utf8_lossy(&out.stderr).contains("SIGTERM"));

    // With a long grace, a second Ctrl-C must not wait for it.
    std::fs::remove_file(dir.join("started")).unwrap();
    let mut cmd = Test::in_dir(&dir).command();
    cmd.args(["resume", "--rerun-in-doubt", "--grace", "60s"])
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::piped());
    let child = cmd.spawn().unwrap();
    wait_for_path(&dir.join("started"));
    let start = Instant::now();
    signal(&child, nix::sys::signal::Signal::SIGINT);
    std::thread::sleep(Duration::from_millis(200));
    signal(&child, nix::sys::signal::Signal::SIGINT);
    let out = wait_bounded(child, Duration::from_secs(20));
    assert_eq!(out.status.code(), Some(130));
    assert!(
        start.elapsed() < Duration::from_secs(10),
        "second Ctrl-C waited {:?}",
        start.elapsed()
    );
}

#[test]
fn a_journal_cut_in_its_last_record_is_recovered_with_a_message() {
    let rb = tracing_runbook(
        r#"
[[phases.steps]]
id = "one"
run = "echo one >> trace"
[[phases.steps]]
id = "hold"
pause = "hold"
[[phases.steps]]
id = "two"
run = "echo two >> trace"
"#,
    );
    let out = Test::new()
        .runbook(&rb)
        .args(["run", "runbook.toml"])
        .status(8);
    let journal = journal_file(&out.dir);
    let mut bytes = std::fs::read(&journal).unwrap();
    // Cut the last record (the pause) in the middle.
    let last_start = bytes[..bytes.len() - 1]
        .iter()
        .rposition(|&b| b == b'\n')
        .unwrap()
        + 1;
    bytes.truncate(last_start + (bytes.len() - last_start) / 2);
    std::fs::write(&journal, &bytes).unwrap();
    Test::in_dir(&out.dir)
        .args(["status"])
        .status(0)
        .stdout_has("damaged");
    let resumed = Test::in_dir(&out.dir).args(["resume"]).status(0);
    resumed
        .stderr_has("was cut short")
        .stderr_has("recovered its first");
    assert_eq!(trace(&out.dir), ["one", "two"]);
}

#[test]
fn repeat_evaluates_an_earlier_gate_again() {
    let rb = r#"[runbook]
name = "r"
[[phases]]
id = "wave-1"
title = "Wave 1"
[[phases.steps]]
id = "w1"
run = "echo w1 >> trace"
[[phases.gate]]
id = "w1-ok"
confirm = "Wave 1 healthy?"
[[phases]]
id = "wave-2"
title = "Wave 2"
[[phases.steps]]
id = "w2"
run = "echo w2 >> trace"
[[phases.gate]]
id = "still-ok"
repeat = "wave-1"
"#;
    let out = Test::new()
        .runbook(rb)
        .args(["run", "runbook.toml", "--approve", "w1-ok"])
        .status(0);
    assert_eq!(trace(&out.dir), ["w1", "w2"]);
    let finished: Vec<String> = journal(&out.dir)
        .iter()
        .filter(|r| r["type"] == "step_finished" && r["step"] == "still-ok")
        .map(|r| r["reason"].as_str().unwrap_or("").to_string())
        .collect();
    assert_eq!(finished, ["passed again: `w1-ok`"]);
}
