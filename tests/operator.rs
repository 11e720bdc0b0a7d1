//! What the operator sees: `repeat` of checks and gates only, `resume` of the newest unfinished
//! run, the rollback preview, `rollout runs`, numbers, multi-line values, the demo, and a state
//! directory that stays out of version control.

use std::io::Write as _;
use std::net::TcpListener;
use std::process::Stdio;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};

use crate::harness::{MINIMAL, Test, journal, repo, run_dirs, trace, wait_for_path};

#[test]
fn repeat_of_a_phase_evaluates_its_checks_and_gates_but_never_its_commands() {
    let rb = r#"[runbook]
name = "waves"

[[phases]]
id = "wave-1"
title = "Wave 1"

[[phases.steps]]
id = "deploy-1"
run = "echo deploy-1 >> trace"

[[phases.gate]]
id = "record-metrics"
run = "echo gate-command >> trace"

[[phases.gate]]
id = "wave-1-ok"
confirm = "Wave 1 criteria met?"

[[phases]]
id = "wave-2"
title = "Wave 2"

[[phases.steps]]
id = "still-good"
repeat = "wave-1"

[[phases.steps]]
id = "deploy-2"
run = "echo deploy-2 >> trace"
"#;
    let plan = Test::new()
        .runbook(rb)
        .args(["plan", "runbook.toml", "--format", "json"])
        .status(0)
        .json();
    assert_eq!(
        plan["phases"][1]["steps"][0]["action"]["steps"],
        serde_json::json!(["wave-1-ok"])
    );
    let out = Test::new()
        .runbook(rb)
        .args(["run", "runbook.toml", "--yes"])
        .status(0);
    assert_eq!(
        trace(&out.dir),
        ["deploy-1", "gate-command", "deploy-2"],
        "the gate's command ran again"
    );
    // "did you mean" offers only what `repeat` accepts.
    let typo = Test::new()
        .runbook(&rb.replace("repeat = \"wave-1\"", "repeat = \"deploy-\""))
        .args(["validate", "runbook.toml"])
        .status(3);
    assert!(
        !typo.stderr.contains("did you mean `deploy-1`"),
        "{}",
        typo.stderr
    );
    let commands_only = rb.replace(
        "[[phases.gate]]\nid = \"wave-1-ok\"\nconfirm = \"Wave 1 criteria met?\"\n",
        "",
    );
    Test::new()
        .runbook(&commands_only)
        .args(["validate", "runbook.toml"])
        .status(3)
        .stderr_has("phase `wave-1` has no check or gate to evaluate again");
}

#[test]
fn resume_without_an_id_picks_the_newest_unfinished_run() {
    let waits = "[runbook]\nname = \"waits\"\n[[phases]]\nid = \"p\"\ntitle = \"P\"\n[[phases.steps]]\nid = \"hold\"\npause = \"hold on\"\n[[phases.steps]]\nid = \"after\"\nrun = \"echo resumed >> trace\"\n";
    let out = Test::new()
        .file("waits.toml", waits)
        .runbook(MINIMAL)
        .args(["run", "waits.toml"])
        .status(8);
    let paused = run_dirs(&out.dir)[0]
        .file_name()
        .unwrap()
        .to_string_lossy()
        .into_owned();
    std::thread::sleep(std::time::Duration::from_millis(5));
    Test::in_dir(&out.dir)
        .args(["run", "runbook.toml"])
        .status(0);
    let finished = run_dirs(&out.dir)[1]
        .file_name()
        .unwrap()
        .to_string_lossy()
        .into_owned();
    let resumed = Test::in_dir(&out.dir).args(["resume"]).status(0);
    resumed.stderr_has(&format!(
        "resuming `{paused}`, the newest unfinished run (`{finished}` is newer but has finished)"
    ));
    assert_eq!(trace(&out.dir), ["resumed"]);
    Test::in_dir(&out.dir)
        .args(["resume"])
        .status(2)
        .stderr_has("every run in .rollout has finished");
}

#[test]
fn the_rollback_preview_names_the_run_and_skips_false_whens_and_the_summary_says_so() {
    let rb = r#"[runbook]
name = "undo"

[[phases]]
id = "p"
title = "P"

[[phases.steps]]
id = "mode"
run = "echo blue-green"
capture = "mode"

[[phases.rollback]]
id = "undo-canary"
run = "echo undo-canary >> trace"
when = "mode == 'canary'"

[[phases.rollback]]
id = "undo-switch"
run = "echo undo-switch >> trace"
"#;
    let out = Test::new()
        .runbook(rb)
        .args(["run", "runbook.toml"])
        .status(0);
    let run = run_dirs(&out.dir)[0]
        .file_name()
        .unwrap()
        .to_string_lossy()
        .into_owned();
    let preview = Test::in_dir(&out.dir)
        .args(["rollback", "runbook.toml", "--dry-run"])
        .status(0);
    preview.stdout_has(&format!("undoes run `{run}`, started "));
    preview.stdout_has("when mode == 'canary' (false: SKIPPED)");
    let done = Test::in_dir(&out.dir)
        .args(["rollback", "runbook.toml", "--yes"])
        .status(10);
    done.stderr_has("skipped p/undo-canary (`when` was false)");
    done.stderr_has("undone p/undo-switch");
    assert!(
        !done.stderr.contains("undone p/undo-canary"),
        "{}",
        done.stderr
    );
    assert_eq!(trace(&out.dir), ["undo-switch"]);
    let report = Test::in_dir(&out.dir)
        .args(["report", "--format", "md"])
        .status(0);
    report.stdout_has("- Skipped: `p/undo-canary: skipped`");
}

#[test]
fn runs_lists_where_each_run_waits_in_aligned_columns() {
    let gate = "[runbook]\nname = \"a-runbook-with-a-long-name\"\n[[phases]]\nid = \"p\"\ntitle = \"P\"\n[[phases.steps]]\nrun = \"true\"\n[[phases.gate]]\nid = \"go\"\nconfirm = \"Go?\"\n";
    let out = Test::new()
        .runbook(gate)
        .args(["run", "runbook.toml"])
        .status(7);
    Test::in_dir(&out.dir)
        .args(["run", "runbook.toml", "--yes"])
        .status(0);
    let runs = Test::in_dir(&out.dir).args(["runs"]).status(0);
    let lines: Vec<&str> = runs.stdout.lines().collect();
    assert_eq!(lines.len(), 3, "{}", runs.stdout);
    assert!(
        lines[1].ends_with("gate `go` of phase `p`"),
        "{}",
        runs.stdout
    );
    assert!(lines[2].ends_with(" -"), "{}", runs.stdout);
    for column in ["runbook", "state", "since", "where"] {
        let at = lines[0].find(column).unwrap();
        for l in &lines[1..] {
            assert_eq!(
                l.as_bytes()[at - 2..at],
                *b"  ",
                "`{column}` is not aligned:\n{}",
                runs.stdout
            );
            assert_ne!(l.as_bytes()[at], b' ', "{}", runs.stdout);
        }
    }
}

#[test]
fn the_lock_message_says_what_the_holder_is_doing() {
    let t = Test::new().runbook(
        "[runbook]\nname = \"slow\"\n[[phases]]\nid = \"p\"\ntitle = \"P\"\n[[phases.steps]]\nrun = \"touch started; sleep 20\"\n",
    );
    let dir = t.path().to_path_buf();
    let mut cmd = t.command();
    cmd.args(["run", "runbook.toml"])
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::null());
    let mut holder = cmd.spawn().unwrap();
    wait_for_path(&dir.join("started"));
    let refused = Test::in_dir(&dir).args(["run", "runbook.toml"]).status(12);
    let _ = holder.kill();
    let _ = holder.wait();
    refused.stderr_has(", running run ");
    assert!(!refused.stderr.contains("run of run"), "{}", refused.stderr);
}

/// Answers each Prometheus query with the next of `values` (the last one over and over).
fn sequence(values: &'static [&'static str]) -> String {
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let port = listener.local_addr().unwrap().port();
    let next = Arc::new(AtomicUsize::new(0));
    std::thread::spawn(move || {
        for mut stream in listener.incoming().flatten() {
            let i = next.fetch_add(1, Ordering::SeqCst).min(values.len() - 1);
            let mut request = [0u8; 4096];
            let _ = std::io::Read::read(&mut stream, &mut request);
            let body = format!(
                r#"{{"status":"success","data":{{"resultType":"vector","result":[{{"metric":{{"__name__":"ratio"}},"value":[1700000000,"{}"]}}]}}}}"#,
                values[i]
            );
            let _ = write!(
                stream,
                "HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{body}",
                body.len()
            );
        }
    });
    format!("http://127.0.0.1:{port}")
}

fn check(url: &str, sampling: &str) -> String {
    format!(
        "[runbook]\nname = \"numbers\"\n[[phases]]\nid = \"p\"\ntitle = \"P\"\n[[phases.steps]]\nid = \"ratio\"\nmetric = \"ratio\"\ncondition = \"< 0.5\"\nprometheus = \"{url}\"\n{sampling}\n"
    )
}

#[test]
fn tiny_and_noisy_values_read_as_numbers() {
    // Floating-point noise around 0.3 draws flat.
    let url = sequence(&["0.30000000000000004", "0.3", "0.30000000000000004", "0.3"]);
    let out = Test::new()
        .runbook(&check(&url, "samples = 4\nevery = \"100ms\""))
        .args(["run", "runbook.toml"])
        .status(0);
    let last = out
        .stderr
        .lines()
        .find(|l| l.contains("4/4 pass"))
        .expect("the fourth measurement");
    let marks: Vec<char> = last.chars().filter(|c| ('▁'..='█').contains(c)).collect();
    assert_eq!(marks.len(), 4, "{last}");
    assert!(marks.iter().all(|m| *m == marks[0]), "{last}");
    out.stderr_has("4 measurements, 0 failed");
    // A value next to zero reads as a number, not as 0.0000000000000000002168.
    let url = sequence(&["-2.168e-19"]);
    let out = Test::new()
        .runbook(&check(&url, ""))
        .args(["run", "runbook.toml"])
        .status(0);
    out.stderr_has("1/1 pass ratio=-2.2e-19 (want < 0.5)");
    assert!(!out.stderr.contains("0.0000000"), "{}", out.stderr);
}

#[test]
fn one_measurement_is_one_measurement_with_one_time_label() {
    let url = sequence(&["0.1"]);
    let out = Test::new()
        .runbook(&check(&url, ""))
        .args(["run", "runbook.toml"])
        .status(0);
    out.stderr_has("1 measurement, 0 failed");
    assert!(!out.stderr.contains("measurement(s)"), "{}", out.stderr);
    let md = Test::in_dir(&out.dir)
        .args(["report", "--format", "md"])
        .status(0);
    md.stdout_has("1 measurement.");
    let html = Test::in_dir(&out.dir)
        .args(["report", "--format", "html"])
        .status(0);
    let plot = &html.stdout[html.stdout.find("<svg class=\"plot\"").expect("a chart")..];
    let plot = &plot[..plot.find("</svg>").unwrap()];
    assert_eq!(
        plot.matches("text-anchor=\"middle\">+").count(),
        1,
        "time labels of a one-measurement chart:\n{plot}"
    );
}

#[test]
fn a_multi_line_value_keeps_its_indentation_where_signers_read_it() {
    let out = Test::new()
        .runbook(
            "[runbook]\nname = \"sign\"\n[[phases]]\nid = \"p\"\ntitle = \"P\"\n[[phases.steps]]\nid = \"scope\"\nrun = \"printf 'Release review:\\\\n  - payments\\\\n  - ledger'\"\ncapture = \"scope\"\n[[phases.gate]]\nid = \"review\"\nsignoff = \"{{ scope }}\"\nroles = [\"Lead\"]\n",
        )
        .args(["run", "runbook.toml"])
        .status(7);
    out.stderr_has("  Release review:\n    - payments\n    - ledger\n");
}

#[test]
fn at_the_signoff_screen_in_a_terminal_a_multi_line_value_keeps_its_indentation() {
    let t = Test::new()
        .runbook(
            "[runbook]\nname = \"sign\"\n[[phases]]\nid = \"p\"\ntitle = \"P\"\non_failure = \"abort\"\n[[phases.steps]]\nid = \"scope\"\nrun = \"printf 'Release review:\\\\n  - payments\\\\n  - ledger'\"\ncapture = \"scope\"\n[[phases.gate]]\nid = \"review\"\nsignoff = \"{{ scope }}\"\nroles = [\"Lead\"]\n",
        )
        .args(["run", "runbook.toml"]);
    let mut tty = crate::gates::Tty::run(&t);
    tty.shows("1 of 1 sign");
    assert!(
        tty.screen.contains("    - payments"),
        "the second line lost its indentation:\n{}",
        tty.screen
    );
    tty.keys("\x1b").finishes_with(5);
}

#[test]
fn kubectl_written_as_one_string_is_shown_as_a_list() {
    Test::new()
        .runbook("[runbook]\nname = \"k\"\n[[phases]]\nid = \"p\"\ntitle = \"P\"\n[[phases.steps]]\nkubectl = \"get pods -n prod\"\n")
        .args(["validate", "runbook.toml"])
        .status(3)
        .stderr_has("kubectl = [\"get\", \"pods\", \"-n\", \"prod\"]");
}

#[test]
fn the_demo_runs_clean() {
    let port = TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let demo = std::fs::read_to_string(repo().join("runbooks/demo.toml")).unwrap();
    let out = Test::new()
        .file("demo.toml", demo)
        .args(["run", "demo.toml", "--var", &format!("port={port}")])
        .args(["--check", "preflight", "--approve", "promote"])
        .args(["--signoff", "looks-good=Ada:Release Manager"])
        .status(0);
    assert!(!out.stderr.contains("warning"), "{}", out.stderr);
    assert!(!out.stderr.contains("not watched"), "{}", out.stderr);
    out.stderr_has("watching `Error ratio above 5% (fake Prometheus)`");
}

#[test]
fn a_state_directory_rollout_creates_stays_out_of_version_control() {
    let t = Test::new().runbook(MINIMAL);
    let git = |args: &[&str]| {
        let out = t
            .command_for_shell("sh", &format!("git {}", args.join(" ")))
            .output()
            .expect("git");
        assert!(out.status.success(), "git {args:?}: {out:?}");
        String::from_utf8_lossy(&out.stdout).into_owned()
    };
    git(&["init", "-q"]);
    git(&["add", "runbook.toml"]);
    git(&[
        "-c",
        "user.name=t",
        "-c",
        "user.email=t@t",
        "commit",
        "-qm",
        "runbook",
    ]);
    let out = t.args(["run", "runbook.toml"]).status(0);
    let ignore = std::fs::read_to_string(out.dir.join(".rollout/.gitignore")).unwrap();
    assert!(ignore.lines().any(|l| l == "*"), "{ignore}");
    let status = std::process::Command::new("git")
        .args(["status", "--porcelain"])
        .current_dir(&out.dir)
        .output()
        .unwrap();
    assert_eq!(
        String::from_utf8_lossy(&status.stdout),
        "",
        "the checkout is dirty"
    );
    assert!(
        journal(&out.dir)
            .iter()
            .any(|e| e["type"] == "run_finished")
    );
    // A state directory that exists already is left as it is.
    let given = Test::new()
        .runbook(MINIMAL)
        .file("state/keep", "")
        .args(["run", "runbook.toml", "--state-dir", "state"])
        .status(0);
    assert!(!given.dir.join("state/.gitignore").exists());
}
