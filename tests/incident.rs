//! The incident path and its record: rollback (automatic, `rollout rollback` with and without
//! run state, interrupted and resumed), the hash-chained audit log (`audit verify` against
//! every kind of tampering, `log`), a journal that cannot be written, and target locks.

use std::fmt::Write as _;
use std::path::Path;
use std::process::Stdio;
use std::time::{Duration, Instant};

use crate::gates::Tty;
use crate::harness::{
    Test, journal, journal_file, of_type, run_dirs, run_id, trace, wait_bounded, wait_for_path,
};

/// Three phases, each with a step and two rollback steps; `fail_in` names the phase whose step
/// fails (asking for a rollback), if any.
fn three_phases(fail_in: Option<&str>) -> String {
    let mut rb = String::from(
        r#"[runbook]
name = "incident"

[[rollback]]
id = "page-owner"
run = "echo page-owner >> trace"
"#,
    );
    for p in ["p1", "p2", "p3"] {
        let fail = if fail_in == Some(p) { "; exit 7" } else { "" };
        let _ = write!(
            rb,
            r#"
[[phases]]
id = "{p}"
title = "Phase {p}"
on_failure = "rollback"
[[phases.steps]]
id = "do-{p}"
run = "echo do-{p} >> trace{fail}"
[[phases.rollback]]
id = "undo-{p}-a"
run = "echo undo-{p}-a >> trace"
[[phases.rollback]]
id = "undo-{p}-b"
run = "echo undo-{p}-b >> trace"
"#
        );
    }
    rb
}

// ---- rollback --------------------------------------------------------------------------------

#[test]
fn a_failure_in_each_phase_rolls_back_that_phase_then_the_earlier_ones_in_reverse() {
    for (fail_in, done, undone) in [
        ("p1", vec!["do-p1"], vec!["p1"]),
        ("p2", vec!["do-p1", "do-p2"], vec!["p2", "p1"]),
        (
            "p3",
            vec!["do-p1", "do-p2", "do-p3"],
            vec!["p3", "p2", "p1"],
        ),
    ] {
        let out = Test::new()
            .runbook(&three_phases(Some(fail_in)))
            .args(["run", "runbook.toml", "--yes"])
            .status(10);
        let mut expected: Vec<String> = done.iter().map(|s| (*s).to_string()).collect();
        for p in &undone {
            expected.push(format!("undo-{p}-a"));
            expected.push(format!("undo-{p}-b"));
        }
        assert_eq!(trace(&out.dir), expected, "failing in {fail_in}");
        out.stderr_has("Rollback plan")
            .stderr_has("rollback complete")
            .stderr_has(&format!("undone {fail_in}/undo-{fail_in}-b"));
        let finished = of_type(&out.dir, "rollback_finished");
        assert_eq!(finished.len(), 1);
        assert_eq!(finished[0]["complete"], true);
        assert_eq!(
            finished[0]["undone"].as_array().unwrap().len(),
            undone.len() * 2
        );
        let requested = of_type(&out.dir, "rollback_requested");
        assert_eq!(
            requested[0]["phases"],
            serde_json::json!(undone),
            "failing in {fail_in}"
        );
        assert_eq!(
            of_type(&out.dir, "run_finished")[0]["status"],
            "rolled_back"
        );
    }
}

#[test]
fn a_failing_rollback_step_stops_the_rollback_and_the_report_says_what_is_left() {
    let rb = three_phases(Some("p3")).replace(
        "run = \"echo undo-p2-a >> trace\"",
        "run = \"echo undo-p2-a >> trace; echo cannot scale >&2; exit 2\"",
    );
    let out = Test::new()
        .runbook(&rb)
        .args(["run", "runbook.toml", "--yes"])
        .status(11);
    assert_eq!(
        trace(&out.dir),
        [
            "do-p1",
            "do-p2",
            "do-p3",
            "undo-p3-a",
            "undo-p3-b",
            "undo-p2-a"
        ]
    );
    out.stderr_has("rollback INCOMPLETE")
        .stderr_has("undone p3/undo-p3-a")
        .stderr_has("NOT undone p2/undo-p2-a: failed: exited with code 2")
        .stderr_has("NOT undone p2/undo-p2-b: not run")
        .stderr_has("NOT undone p1/undo-p1-a: not run");
    let finished = &of_type(&out.dir, "rollback_finished")[0];
    assert_eq!(finished["complete"], false);
    assert_eq!(finished["not_undone"].as_array().unwrap().len(), 4);
    assert_eq!(
        of_type(&out.dir, "run_finished")[0]["status"],
        "rollback_incomplete"
    );

    // Once the rollback step is fixed, `rollout rollback` finishes the job: the steps already
    // undone are not run again, the failed one is.
    std::fs::write(out.dir.join("runbook.toml"), rb.replace("exit 2", "true")).unwrap();
    Test::in_dir(&out.dir)
        .args(["rollback", "runbook.toml", "--yes"])
        .status(2)
        .stderr_has("changed since run");
    Test::in_dir(&out.dir)
        .args(["rollback", "runbook.toml", "--yes", "--allow-changed"])
        .status(10)
        .stderr_has("rollback complete");
    assert_eq!(
        trace(&out.dir)[6..],
        ["undo-p2-a", "undo-p2-b", "undo-p1-a", "undo-p1-b"]
    );
    Test::in_dir(&out.dir)
        .args(["audit", "verify", &run_id(&out.dir)])
        .status(0);
}

#[test]
fn a_rollback_step_with_continue_on_error_lets_the_rollback_go_on() {
    let rb = three_phases(Some("p2")).replace(
        "run = \"echo undo-p2-a >> trace\"",
        "run = \"echo undo-p2-a >> trace; exit 2\"\ncontinue_on_error = true",
    );
    let out = Test::new()
        .runbook(&rb)
        .args(["run", "runbook.toml", "--yes"])
        .status(11);
    assert_eq!(
        trace(&out.dir),
        [
            "do-p1",
            "do-p2",
            "undo-p2-a",
            "undo-p2-b",
            "undo-p1-a",
            "undo-p1-b"
        ]
    );
    out.stderr_has("NOT undone p2/undo-p2-a: failed; the rollback went on");
}

#[test]
fn rollout_rollback_undoes_a_finished_run_down_to_a_phase_and_records_it() {
    let t = Test::new()
        .runbook(&three_phases(None))
        .args(["run", "runbook.toml"])
        .status(0);
    let dir = t.dir.clone();
    // The preview shows the plan, renders every command, and writes nothing.
    let before = std::fs::read(journal_file(&dir)).unwrap();
    let preview = Test::in_dir(&dir)
        .args(["rollback", "runbook.toml", "--to", "p2", "--dry-run"])
        .status(0);
    preview
        .stdout_has("1. roll back p3")
        .stdout_has("echo undo-p3-a >> trace")
        .stdout_has("2. roll back p2")
        .stdout_has("nothing was executed");
    assert!(!preview.stdout.contains("roll back p1"));
    assert_eq!(std::fs::read(journal_file(&dir)).unwrap(), before);
    assert_eq!(trace(&dir), ["do-p1", "do-p2", "do-p3"]);

    // Without a terminal or --yes, nobody can confirm: nothing runs, and it says how.
    let waiting = Test::in_dir(&dir)
        .args(["rollback", "runbook.toml", "--to", "p2"])
        .status(9);
    waiting.stderr_has("--yes");
    assert_eq!(trace(&dir), ["do-p1", "do-p2", "do-p3"]);

    // `resume --yes` performs the rollback that is owed, with the `--to` it was asked with.
    Test::in_dir(&dir).args(["resume", "--yes"]).status(10);
    assert_eq!(
        trace(&dir),
        [
            "do-p1",
            "do-p2",
            "do-p3",
            "undo-p3-a",
            "undo-p3-b",
            "undo-p2-a",
            "undo-p2-b"
        ]
    );
    let requested = of_type(&dir, "rollback_requested");
    assert_eq!(requested[0]["phases"], serde_json::json!(["p3", "p2"]));
    assert!(
        requested[0]["reason"]
            .as_str()
            .unwrap()
            .starts_with("rollback requested by")
    );
    Test::in_dir(&dir)
        .args(["audit", "verify", &run_id(&dir)])
        .status(0);
}

#[test]
fn a_run_rolled_back_completely_is_not_rolled_back_again() {
    let t = Test::new()
        .runbook(&three_phases(None))
        .args(["run", "runbook.toml"])
        .status(0);
    let dir = t.dir.clone();
    Test::in_dir(&dir)
        .args(["rollback", "runbook.toml", "--yes"])
        .status(10);
    let undone = trace(&dir);
    let before = std::fs::read(journal_file(&dir)).unwrap();
    Test::in_dir(&dir)
        .args(["rollback", "runbook.toml", "--run", &run_id(&dir), "--yes"])
        .status(2)
        .stderr_has(&format!(
            "error: run `{}` was already rolled back completely",
            run_id(&dir)
        ));
    assert_eq!(trace(&dir), undone);
    assert_eq!(std::fs::read(journal_file(&dir)).unwrap(), before);
}

#[test]
fn rollback_to_a_phase_that_did_not_run_is_refused_before_anything_is_written() {
    let t = Test::new()
        .runbook(
            &three_phases(Some("p2"))
                .replace("on_failure = \"rollback\"", "on_failure = \"abort\""),
        )
        .args(["run", "runbook.toml"])
        .status(5);
    let dir = t.dir.clone();
    let before = std::fs::read(journal_file(&dir)).unwrap();
    for (to, says) in [
        ("p3", "phase `p3` did not run in run `"),
        ("p9", "the runbook has no phase `p9`"),
    ] {
        let out = Test::in_dir(&dir)
            .args(["rollback", "runbook.toml", "--to", to, "--yes"])
            .status(2);
        out.stderr_has(says);
        assert!(!out.stderr.contains("rolling back run"), "{}", out.stderr);
        // Not a record more: the run's log is as it was, and still sealed.
        assert_eq!(std::fs::read(journal_file(&dir)).unwrap(), before);
    }
    Test::in_dir(&dir)
        .args(["audit", "verify", &run_id(&dir)])
        .status(0);
    assert_eq!(trace(&dir), ["do-p1", "do-p2"]);
}

#[test]
fn rollout_rollback_without_run_state_runs_the_runbooks_own_rollback_section() {
    let t = Test::new().runbook(&three_phases(None));
    let dir = t.path().to_path_buf();
    let preview = Test::in_dir(&dir)
        .args(["rollback", "runbook.toml", "--dry-run"])
        .status(0);
    preview
        .stdout_has("roll back [rollback]: runbook rollback")
        .stdout_has("echo page-owner >> trace");
    assert!(!dir.join(".rollout").exists(), "a dry run wrote state");
    let out = Test::in_dir(&dir)
        .args(["rollback", "runbook.toml", "--yes"])
        .status(10);
    out.stderr_has("no run of `runbook.toml`")
        .stderr_has("rollback complete");
    assert_eq!(trace(&dir), ["page-owner"]);
    // Recorded like any run.
    assert_eq!(run_dirs(&dir).len(), 1);
    assert_eq!(
        of_type(&dir, "rollback_started")[0]["phases"],
        serde_json::json!(["[rollback]"])
    );
    Test::in_dir(&dir)
        .args(["audit", "verify", &run_id(&dir)])
        .status(0);
    // `--to` needs a run to go by.
    Test::in_dir(&dir)
        .args(["rollback", "runbook.toml", "--no-run", "--to", "p1"])
        .status(2);
}

#[test]
fn an_interrupted_rollback_resumes_where_it_stopped() {
    let rb = three_phases(Some("p3")).replace(
        "run = \"echo undo-p2-a >> trace\"",
        "run = \"echo undo-p2-a >> trace; touch started; sleep 30\"\nidempotent = true",
    );
    let t = Test::new().runbook(&rb);
    let dir = t.path().to_path_buf();
    let mut cmd = t.command();
    cmd.args(["run", "runbook.toml", "--yes", "--grace", "200ms"])
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::piped());
    let child = cmd.spawn().unwrap();
    wait_for_path(&dir.join("started"));
    nix::sys::signal::kill(
        nix::unistd::Pid::from_raw(i32::try_from(child.id()).unwrap()),
        nix::sys::signal::Signal::SIGINT,
    )
    .unwrap();
    let out = wait_bounded(child, Duration::from_secs(20));
    assert_eq!(
        out.status.code(),
        Some(130),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let status = Test::in_dir(&dir).args(["status"]).status(0);
    status.stdout_has("paused");
    // Resume goes on with the rollback (no new confirmation: it was given), not the run.
    std::fs::write(dir.join("runbook.toml"), rb.replace("sleep 30", "true")).unwrap();
    let out = Test::in_dir(&dir)
        .args(["resume", "--allow-changed"])
        .status(10);
    out.stderr_has("Going on with the rollback");
    assert_eq!(
        trace(&dir),
        [
            "do-p1",
            "do-p2",
            "do-p3",
            "undo-p3-a",
            "undo-p3-b",
            "undo-p2-a",
            "undo-p2-a",
            "undo-p2-b",
            "undo-p1-a",
            "undo-p1-b"
        ]
    );
    assert_eq!(of_type(&dir, "rollback_started").len(), 1);
    assert_eq!(of_type(&dir, "gate_answered").len(), 1);
    Test::in_dir(&dir)
        .args(["audit", "verify", &run_id(&dir)])
        .status(0);
}

// ---- the audit log ---------------------------------------------------------------------------

#[test]
fn every_record_says_when_who_where_which_run_and_which_runbook() {
    let out = Test::new()
        .runbook(&three_phases(Some("p2")))
        .env("ROLLOUT_OPERATOR", "Alice Example")
        .args(["run", "runbook.toml", "--yes"])
        .status(10);
    let recs = journal(&out.dir);
    let id = run_id(&out.dir);
    let digest = recs[0]["digest"].as_str().unwrap().to_string();
    assert!(digest.starts_with("sha256:"));
    for (i, r) in recs.iter().enumerate() {
        assert_eq!(r["seq"], i + 1);
        assert!(r["at"].as_str().unwrap().ends_with('Z'), "{r}");
        assert_eq!(r["run"], id.as_str());
        assert_eq!(r["who"]["operator"], "Alice Example");
        assert!(!r["who"]["os_user"].as_str().unwrap().is_empty());
        assert!(!r["who"]["host"].as_str().unwrap().is_empty());
        assert_eq!(r["runbook_digest"], digest.as_str());
        assert!(r["hash"].as_str().unwrap().starts_with("sha256:"));
    }
    assert_eq!(recs[0]["version"], env!("CARGO_PKG_VERSION"));
    let started = of_type(&out.dir, "step_started");
    assert_eq!(
        started[0]["command"],
        serde_json::json!(["echo do-p1 >> trace"])
    );
    let finished = of_type(&out.dir, "step_finished");
    assert_eq!(finished[1]["exit_code"], 7);
    for ty in [
        "lock_acquired",
        "rollback_requested",
        "gate_answered",
        "rollback_finished",
        "lock_released",
        "sealed",
    ] {
        assert_eq!(of_type(&out.dir, ty).len(), 1, "{ty}");
    }
    assert_eq!(recs.last().unwrap()["type"], "sealed");
    // The digest printed at the end is the seal's hash.
    out.stderr_has(&format!(
        "audit digest: {}",
        recs.last().unwrap()["hash"].as_str().unwrap()
    ));
    // `rollout log` tells the story, phase by phase.
    let log = Test::in_dir(&out.dir).args(["log"]).status(0);
    log.stdout_has("started by Alice Example")
        .stdout_has("== phase p1")
        .stdout_has("$ echo do-p2 >> trace")
        .stdout_has("exit code 7")
        .stdout_has("ROLLBACK needed")
        .stdout_has("undone: p2/undo-p2-a")
        .stdout_has("log sealed");
}

/// A log of a few hundred records from a real run: 40 steps, a resume in between.
fn long_log() -> (crate::harness::Outcome, Vec<Vec<u8>>) {
    let mut rb = String::from("[runbook]\nname = \"long\"\n");
    for p in 0..4 {
        let _ = write!(rb, "\n[[phases]]\nid = \"p{p}\"\ntitle = \"P{p}\"\n");
        for s in 0..10 {
            let _ = write!(
                rb,
                "[[phases.steps]]\nid = \"s{p}-{s}\"\nrun = \"echo {p}-{s}\"\n"
            );
        }
        if p == 1 {
            rb.push_str("[[phases.steps]]\nid = \"hold\"\npause = \"half way\"\n");
        }
    }
    let t = Test::new()
        .runbook(&rb)
        .args(["run", "runbook.toml"])
        .status(8);
    Test::in_dir(&t.dir).args(["resume"]).status(0);
    let bytes = std::fs::read(journal_file(&t.dir)).unwrap();
    let lines: Vec<Vec<u8>> = bytes
        .split_inclusive(|&b| b == b'\n')
        .map(<[u8]>::to_vec)
        .collect();
    assert!(lines.len() >= 100, "{} records", lines.len());
    (t, lines)
}

fn verify_bytes(dir: &Path, bytes: &[u8]) -> (i32, serde_json::Value) {
    let file = dir.join("mutated.ndjson");
    std::fs::write(&file, bytes).unwrap();
    let out = Test::in_dir(dir)
        .args(["audit", "verify", "mutated.ndjson", "--format", "json"])
        .run();
    (out.status, serde_json::from_str(&out.stdout).unwrap())
}

#[test]
fn audit_verify_names_every_edit_deletion_insertion_duplication_and_swap() {
    let (t, lines) = long_log();
    let dir = t.dir.as_path();
    let n = lines.len();
    let clean = lines.concat();
    let (code, report) = verify_bytes(dir, &clean);
    assert_eq!(code, 0, "{report}");
    assert_eq!(report["records"], n);
    let id = run_id(dir);
    Test::in_dir(dir).args(["audit", "verify", &id]).status(0);

    let expect = |mutated: Vec<Vec<u8>>, line: usize, kinds: &[&str], what: &str| {
        let (code, report) = verify_bytes(dir, &mutated.concat());
        assert_eq!(code, 13, "{what} not detected: {report}");
        let fault = &report["fault"];
        assert_eq!(fault["line"], line, "{what}: {report}");
        assert!(
            kinds.contains(&fault["kind"].as_str().unwrap()),
            "{what}: {report}"
        );
    };
    for i in 0..n {
        // An edit that keeps the JSON valid: a changed time.
        let mut edited = lines.clone();
        let text = String::from_utf8(edited[i].clone()).unwrap();
        let at = text.find("\"at\":\"").unwrap() + 6;
        let mut bytes = text.into_bytes();
        bytes[at + 3] = if bytes[at + 3] == b'7' { b'8' } else { b'7' };
        edited[i] = bytes;
        expect(
            edited,
            i + 1,
            &["edited"],
            &format!("edit of record {}", i + 1),
        );

        if i + 1 < n {
            let mut deleted = lines.clone();
            deleted.remove(i);
            expect(
                deleted,
                i + 1,
                &["deleted"],
                &format!("deletion of record {}", i + 1),
            );

            let mut swapped = lines.clone();
            swapped.swap(i, i + 1);
            expect(
                swapped,
                i + 1,
                &["reordered"],
                &format!("swap of records {} and {}", i + 1, i + 2),
            );
        }

        let mut duplicated = lines.clone();
        duplicated.insert(i + 1, lines[i].clone());
        expect(
            duplicated,
            i + 2,
            &["duplicated"],
            &format!("duplicate of record {}", i + 1),
        );

        // A record from elsewhere in the log inserted here.
        let mut inserted = lines.clone();
        inserted.insert(i, lines[(i + n / 2) % n].clone());
        expect(
            inserted,
            i + 1,
            &["reordered", "duplicated", "deleted", "inserted"],
            &format!("insertion before record {}", i + 1),
        );
    }
    // The last records removed, seal included: the log no longer ends sealed.
    let (code, report) = verify_bytes(dir, &lines[..n - 3].concat());
    assert_eq!(code, 13);
    assert!(
        report["message"]
            .as_str()
            .unwrap()
            .contains("without a seal"),
        "{report}"
    );
    // Cut in the middle of the last record: reported as truncation, the rest intact.
    let mut cut = clean.clone();
    cut.truncate(clean.len() - 20);
    let (code, report) = verify_bytes(dir, &cut);
    assert_eq!(code, 13);
    assert_eq!(report["fault"], serde_json::Value::Null);
    assert!(report["truncated_bytes"].as_u64().unwrap() > 0, "{report}");
    assert!(
        report["message"]
            .as_str()
            .unwrap()
            .contains("cut short after record"),
        "{report}"
    );
}

#[test]
fn a_published_digest_detects_a_log_rewritten_end_to_end() {
    let out = Test::new()
        .runbook(&three_phases(None))
        .args(["run", "runbook.toml"])
        .status(0);
    let recs = journal(&out.dir);
    let digest = recs.last().unwrap()["hash"].as_str().unwrap().to_string();
    let id = run_id(&out.dir);
    Test::in_dir(&out.dir)
        .args(["audit", "verify", &id, "--digest", &digest])
        .status(0)
        .stdout_has("matches the published digest");
    Test::in_dir(&out.dir)
        .args([
            "audit",
            "verify",
            &id,
            "--digest",
            &format!("sha256:{}", "0".repeat(64)),
        ])
        .status(13)
        .stdout_has("no seal of the log carries the published digest");
}

#[test]
fn a_tampered_journal_is_never_resumed_or_cut() {
    let rb = three_phases(None).replace("run = \"echo do-p2 >> trace\"", "pause = \"hold\"");
    let out = Test::new()
        .runbook(&rb)
        .args(["run", "runbook.toml"])
        .status(8);
    let file = journal_file(&out.dir);
    let text = std::fs::read_to_string(&file).unwrap();
    let tampered = text.replacen("do-p1", "do-pX", 1);
    std::fs::write(&file, &tampered).unwrap();
    Test::in_dir(&out.dir)
        .args(["resume"])
        .status(2)
        .stderr_has("fails its audit check")
        .stderr_has("was changed after it was written");
    assert_eq!(std::fs::read_to_string(&file).unwrap(), tampered);
}

#[test]
fn when_the_journal_cannot_be_written_no_further_step_runs_and_the_operator_is_told() {
    // A file-size limit makes the journal's writes fail (EFBIG) the way a full disk does
    // (ENOSPC); SIGXFSZ is ignored so the write fails instead of killing the process.
    let mut rb =
        String::from("[runbook]\nname = \"full\"\n\n[[phases]]\nid = \"p\"\ntitle = \"P\"\n");
    for s in 0..200 {
        let _ = write!(
            rb,
            "[[phases.steps]]\nid = \"s{s}\"\nrun = \"echo {s} >> trace\"\n"
        );
    }
    let t = Test::new().runbook(&rb);
    let dir = t.path().to_path_buf();
    let mut cmd = std::process::Command::new("bash");
    let inner = t.command();
    cmd.current_dir(&dir)
        .env_clear()
        .envs(
            inner
                .get_envs()
                .filter_map(|(k, v)| v.map(|v| (k.to_owned(), v.to_owned()))),
        )
        .env("PATH", std::env::var_os("PATH").unwrap_or_default())
        .arg("-c")
        .arg(format!(
            "trap '' XFSZ; ulimit -f 24; exec {} run runbook.toml",
            crate::harness::bin().display()
        ))
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped());
    let out = wait_bounded(cmd.spawn().unwrap(), Duration::from_secs(30));
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(1), "{stderr}");
    assert!(stderr.contains("cannot write the journal"), "{stderr}");
    assert!(stderr.contains("no further step runs"), "{stderr}");
    // Every step that ran has its `step_started` on disk: the journal is not behind the trace.
    let journal = std::fs::read_to_string(journal_file(&dir)).unwrap();
    let ran = trace(&dir);
    assert!(
        !ran.is_empty() && ran.len() < 200,
        "{} steps ran",
        ran.len()
    );
    let started = journal
        .lines()
        .filter(|l| l.contains("\"type\":\"step_started\""))
        .count();
    assert!(
        started >= ran.len(),
        "{started} started records for {} steps",
        ran.len()
    );
}

/// The digest printed at the end of a session (`audit digest: sha256:...`), the last if several.
fn printed_digest(stderr: &str) -> String {
    stderr
        .lines()
        .filter_map(|l| l.split("audit digest: ").nth(1))
        .next_back()
        .unwrap_or_else(|| panic!("no digest printed:\n{stderr}"))
        .trim()
        .to_string()
}

/// `sha256:<hex>` of `bytes`, by `sha256sum`, independent of rollout's own code.
fn sha256(bytes: &[u8]) -> String {
    use std::io::Write as _;
    let mut child = std::process::Command::new("sha256sum")
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .spawn()
        .expect("sha256sum");
    child.stdin.take().unwrap().write_all(bytes).unwrap();
    let out = wait_bounded(child, Duration::from_secs(10));
    let text = String::from_utf8(out.stdout).unwrap();
    format!("sha256:{}", text.split_whitespace().next().unwrap())
}

/// A record as someone with write access to the log and the format would forge it: `event`
/// (with its `type`) after `prev`, with the same envelope, and a correct hash.
fn forge(
    prev: &serde_json::Value,
    event: &serde_json::Value,
    operator: &str,
) -> (String, serde_json::Value) {
    let mut record = serde_json::Map::new();
    record.insert("seq".into(), (prev["seq"].as_u64().unwrap() + 1).into());
    record.insert("at".into(), "2026-12-24T23:59:59.000Z".into());
    for (k, v) in event.as_object().unwrap() {
        record.insert(k.clone(), v.clone());
    }
    record.insert("run".into(), prev["run"].clone());
    let mut who = prev["who"].clone();
    who["operator"] = operator.into();
    who["pid"] = 4242.into();
    record.insert("who".into(), who);
    record.insert("runbook_digest".into(), prev["runbook_digest"].clone());
    record.insert("prev".into(), prev["hash"].clone());
    let content = serde_json::to_string(&record).unwrap();
    let hash = sha256(content.as_bytes());
    let line = format!("{},\"hash\":\"{hash}\"}}\n", &content[..content.len() - 1]);
    let mut value = serde_json::Value::Object(record);
    value["hash"] = hash.into();
    (line, value)
}

#[test]
fn a_later_session_names_the_seal_before_it_and_verify_digest_shows_it() {
    let rb = three_phases(None).replace("run = \"echo do-p2 >> trace\"", "pause = \"hold\"");
    let first = Test::new()
        .runbook(&rb)
        .args(["run", "runbook.toml"])
        .status(8);
    let dir = first.dir.clone();
    let published = printed_digest(&first.stderr);
    let second = Test::in_dir(&dir)
        .env("ROLLOUT_OPERATOR", "Bob Later")
        .args(["resume"])
        .status(0);
    let last = printed_digest(&second.stderr);
    // The second session begins with a record naming the first session's seal.
    let records = journal(&dir);
    let seal = records
        .iter()
        .position(|r| r["hash"] == published.as_str())
        .expect("the published seal");
    assert_eq!(records[seal]["type"], "sealed");
    assert_eq!(records[seal + 1]["type"], "run_resumed");
    assert_eq!(records[seal + 1]["previous_seal"], published.as_str());
    assert_eq!(records[seal + 1]["prev"], published.as_str());
    let id = run_id(&dir);

    // What follows the published digest, session by session: who, from where, when.
    let shown = Test::in_dir(&dir)
        .args(["audit", "verify", &id, "--digest", &published])
        .status(0);
    let (from, to) = (seal + 2, records.len());
    shown
        .stdout_has(&format!(
            "the published digest is the seal at record {}, and {} records follow it, written by 1 later session",
            seal + 1,
            to - seal - 1
        ))
        .stdout_has(&format!("records {from}-{to}: resumed by Bob Later ("))
        .stdout_has(&format!("sealed at record {to} with {last}"));
    let json = Test::in_dir(&dir)
        .args([
            "audit", "verify", &id, "--digest", &published, "--format", "json",
        ])
        .status(0)
        .json();
    let sessions = &json["after_digest"]["sessions"];
    assert_eq!(sessions.as_array().unwrap().len(), 1, "{json}");
    assert_eq!(sessions[0]["operator"], "Bob Later");
    assert_eq!(sessions[0]["began_with"], "run_resumed");
    assert_eq!(sessions[0]["first_record"], from);
    assert_eq!(sessions[0]["at"], records[seal + 1]["at"]);
    assert_eq!(sessions[0]["sealed"], last.as_str());
    // --strict: anything after the published digest fails; the last digest passes.
    Test::in_dir(&dir)
        .args(["audit", "verify", &id, "--digest", &published, "--strict"])
        .status(13)
        .stdout_has("FAILED (--strict)")
        .stdout_has("resumed by Bob Later");
    Test::in_dir(&dir)
        .args(["audit", "verify", &id, "--digest", &last, "--strict"])
        .status(0)
        .stdout_has("matches the published digest");
    Test::in_dir(&dir)
        .args(["audit", "verify", &id, "--strict"])
        .status(2)
        .stderr_has("--digest");
    Test::in_dir(&dir)
        .args(["log", &id])
        .status(0)
        .stdout_has("resumed by Bob Later (")
        .stdout_has(&format!("after the seal {published}"));
}

#[test]
fn records_forged_after_a_published_digest_are_shown_or_refused() {
    let out = Test::new()
        .runbook(&three_phases(None))
        .args(["run", "runbook.toml"])
        .status(0);
    let dir = out.dir.clone();
    let published = printed_digest(&out.stderr);
    let clean = std::fs::read_to_string(journal_file(&dir)).unwrap();
    let records = journal(&dir);
    let seal = records.last().unwrap().clone();
    let n = records.len();
    let step = serde_json::json!({"type": "step_finished", "phase": "p1", "step": "do-p1",
        "attempt": 2, "status": "ok", "exit_code": 0, "duration_ms": 5, "reason": null,
        "output_tail": null, "capture": null});
    let verify = |log: &str, strict: bool| {
        std::fs::write(dir.join("forged.ndjson"), log).unwrap();
        let mut args = vec!["audit", "verify", "forged.ndjson", "--digest", &published];
        if strict {
            args.push("--strict");
        }
        Test::in_dir(&dir).args(args).run()
    };

    // Records and a new seal appended straight after the seal: not a session rollout writes.
    let (l1, r1) = forge(&seal, &step, "mallory");
    let (l2, _) = forge(
        &r1,
        &serde_json::json!({"type": "sealed", "records": n + 2}),
        "mallory",
    );
    let shown = verify(&format!("{clean}{l1}{l2}"), false);
    assert_eq!(shown.status, 13, "{}", shown.stdout);
    shown
        .stdout_has(&format!(
            "record {} (line {}) was appended after the seal at record {n}",
            n + 1,
            n + 1
        ))
        .stdout_has("without a `run_resumed` record naming that seal");

    // A session that names another seal than the last one.
    let wrong = serde_json::json!({"type": "run_resumed", "operator": "mallory",
        "digest": seal["runbook_digest"], "previous_seal": format!("sha256:{}", "1".repeat(64))});
    let (l1, _) = forge(&seal, &wrong, "mallory");
    let shown = verify(&format!("{clean}{l1}"), false);
    assert_eq!(shown.status, 13, "{}", shown.stdout);
    shown.stdout_has("begins a session but does not name the last seal before it");

    // A well-formed forged session, new seal and all: it verifies, but is shown for what it is
    // (who, when), and --strict fails on it.
    let opener = serde_json::json!({"type": "run_resumed", "operator": "mallory",
        "digest": seal["runbook_digest"], "previous_seal": published});
    let (l1, r1) = forge(&seal, &opener, "mallory");
    let (l2, r2) = forge(&r1, &step, "mallory");
    let (l3, r3) = forge(
        &r2,
        &serde_json::json!({"type": "sealed", "records": n + 3}),
        "mallory",
    );
    let log = format!("{clean}{l1}{l2}{l3}");
    let shown = verify(&log, false);
    assert_eq!(shown.status, 0, "{}", shown.stdout);
    shown
        .stdout_has(&format!("the published digest is the seal at record {n}, and 3 records follow it, written by 1 later session"))
        .stdout_has(&format!(
            "records {}-{}: resumed by mallory (",
            n + 1,
            n + 3
        ))
        .stdout_has("pid 4242) at 2026-12-24T23:59:59.000Z")
        .stdout_has(&format!("sealed at record {} with {}", n + 3, r3["hash"].as_str().unwrap()));
    let strict = verify(&log, true);
    assert_eq!(strict.status, 13, "{}", strict.stdout);
    strict.stdout_has("FAILED (--strict): 3 records follow the published digest");
}

// ---- a run killed at its edges -----------------------------------------------------------------

/// A webhook that accepts connections and never answers: the end of a run waits for it (up to
/// 5 s) between `run_finished` and `sealed`, which gives a kill there time to land.
fn silent_webhook() -> (std::net::TcpListener, String) {
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let url = format!("http://{}/hook", listener.local_addr().unwrap());
    (listener, url)
}

#[test]
fn a_run_killed_between_its_result_and_its_seal_is_sealed_by_resume_and_says_so() {
    let (_hook, url) = silent_webhook();
    let rb = format!(
        "{}\n[[notify]]\nurl = \"{url}\"\non = [\"run_finished\"]\n",
        three_phases(None)
    );
    let t = Test::new().runbook(&rb);
    let dir = t.path().to_path_buf();
    let mut cmd = t.command();
    cmd.args(["run", "runbook.toml"])
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::null());
    let mut child = cmd.spawn().unwrap();
    let start = Instant::now();
    while !std::fs::read_to_string(journal_file_when_there(&dir))
        .unwrap_or_default()
        .contains("\"type\":\"run_finished\"")
    {
        assert!(start.elapsed() < Duration::from_secs(20), "no run_finished");
        std::thread::sleep(Duration::from_millis(5));
    }
    child.kill().unwrap();
    let _ = wait_bounded(child, Duration::from_secs(10));
    let records = journal(&dir);
    assert_ne!(records.last().unwrap()["type"], "sealed", "killed too late");
    let id = run_id(&dir);

    // verify and status name the command that seals it, and that command does.
    let verified = Test::in_dir(&dir).args(["audit", "verify", &id]).status(13);
    verified.stdout_has("the run finished, but rollout stopped before it sealed the log");
    let command = verified
        .stdout
        .split('`')
        .find(|c| c.starts_with("rollout resume "))
        .expect("a command to run")
        .to_string();
    assert!(
        command.contains(&id) && command.contains("--state-dir"),
        "{command}"
    );
    Test::in_dir(&dir)
        .args(["status", &id])
        .status(0)
        .stdout_has("succeeded")
        .stdout_has("the log is not sealed")
        .stdout_has(&format!("`rollout resume {id} --state-dir"));
    let args: Vec<&str> = command.split_whitespace().skip(1).collect();
    let sealed = Test::in_dir(&dir)
        .env("ROLLOUT_OPERATOR", "Carol")
        .args(args)
        .status(0);
    sealed
        .stderr_has(&format!("run `{id}` had finished (succeeded at "))
        .stderr_has("sealed it now, recorded as a recovery");
    let digest = printed_digest(&sealed.stderr);
    let records = journal(&dir);
    let n = records.len();
    assert_eq!(records[n - 2]["type"], "seal_recovered");
    assert_eq!(records[n - 2]["previous_seal"], serde_json::Value::Null);
    assert_eq!(records[n - 2]["unsealed_from"], 1);
    assert_eq!(records[n - 1]["hash"], digest.as_str());
    Test::in_dir(&dir)
        .args(["audit", "verify", &id, "--digest", &digest])
        .status(0)
        .stdout_has("matches the published digest");
    // Nothing is left to do, and nothing ran again.
    Test::in_dir(&dir)
        .args(["resume", &id])
        .status(2)
        .stderr_has("has already finished and its log is sealed");
    assert_eq!(trace(&dir), ["do-p1", "do-p2", "do-p3"]);
    Test::in_dir(&dir)
        .args(["log", &id])
        .status(0)
        .stdout_has("log sealed late by Carol");
}

/// The latest run's journal, or where it will be once the run has created it.
fn journal_file_when_there(dir: &Path) -> std::path::PathBuf {
    run_dirs(dir)
        .last()
        .map_or_else(|| dir.join("none"), |d| d.join("journal.ndjson"))
}

#[test]
fn a_run_killed_before_its_journal_existed_is_listed_as_never_started() {
    // What `rollout run` leaves when killed between creating the run's directory (and its lock)
    // and writing the journal: the lock, naming a pid, and the runbook's temporary copy.
    let t = Test::new().runbook(&three_phases(None));
    let dir = t.path().to_path_buf();
    let id = "20261203-081500123-0b0e";
    let run = dir.join(".rollout/runs").join(id);
    std::fs::create_dir_all(&run).unwrap();
    std::fs::write(run.join("lock"), "999999").unwrap();
    std::fs::write(run.join(".runbook.toml.tmp"), "[runbook]\n").unwrap();

    let status = Test::in_dir(&dir).args(["status"]).status(0);
    status
        .stdout_has(&format!("run       {id}"))
        .stdout_has("state     never started since ")
        .stdout_has("no step ran")
        .stdout_has("nothing to resume: start a new run with `rollout run RUNBOOK`");
    assert!(
        !status.stdout.contains("rollout resume"),
        "{}",
        status.stdout
    );
    let json = Test::in_dir(&dir)
        .args(["status", id, "--format", "json"])
        .status(0)
        .json();
    assert_eq!(json["state"], "never_started");
    Test::in_dir(&dir)
        .args(["runs"])
        .status(0)
        .stdout_has(id)
        .stdout_has("never started");
    for args in [vec!["resume"], vec!["resume", id], vec!["log", id]] {
        let out = Test::in_dir(&dir).args(args).status(2);
        out.stderr_has(&format!("run `{id}` never started"))
            .stderr_has("there is nothing to resume");
    }
    Test::in_dir(&dir)
        .args(["audit", "verify", id])
        .status(13)
        .stderr_has(&format!("run `{id}` never started"));

    // A new run goes ahead; the latest run is then the new one.
    Test::in_dir(&dir).args(["run", "runbook.toml"]).status(0);
    let runs = Test::in_dir(&dir).args(["runs"]).status(0);
    runs.stdout_has("never started").stdout_has("succeeded");
}

// ---- locks -----------------------------------------------------------------------------------

const SLOW: &str = r#"[runbook]
name = "locked"

[[phases]]
id = "p"
title = "P"
[[phases.steps]]
id = "work"
run = "echo $$ >> ran; sleep 1.5"
"#;

#[test]
fn of_concurrent_runs_on_one_target_exactly_one_proceeds_and_the_others_name_it() {
    let t = Test::new().runbook(SLOW);
    let dir = t.path().to_path_buf();
    for trial in 0..7 {
        let _ = std::fs::remove_file(dir.join("ran"));
        let n = 2 + trial % 7;
        let started = Instant::now();
        let children: Vec<_> = (0..n)
            .map(|_| {
                let mut cmd = Test::in_dir(&dir).command();
                cmd.args(["run", "runbook.toml", "--output", "json"])
                    .stdin(Stdio::null())
                    .stdout(Stdio::null())
                    .stderr(Stdio::piped());
                cmd.spawn().unwrap()
            })
            .collect();
        let outs: Vec<_> = children
            .into_iter()
            .map(|c| wait_bounded(c, Duration::from_secs(30)))
            .collect();
        let codes: Vec<i32> = outs.iter().map(|o| o.status.code().unwrap_or(-1)).collect();
        assert_eq!(
            codes.iter().filter(|c| **c == 0).count(),
            1,
            "trial {trial}: {codes:?}"
        );
        assert_eq!(
            codes.iter().filter(|c| **c == 12).count(),
            n - 1,
            "trial {trial}: {codes:?}"
        );
        for o in outs.iter().filter(|o| o.status.code() == Some(12)) {
            let e = String::from_utf8_lossy(&o.stderr);
            assert!(e.contains("`locked` is locked by "), "{e}");
            assert!(
                e.contains('@') && e.contains("pid ") && e.contains("[lock lk-"),
                "{e}"
            );
        }
        let ran = std::fs::read_to_string(dir.join("ran")).unwrap();
        assert_eq!(ran.lines().count(), 1, "trial {trial}");
        assert!(started.elapsed() < Duration::from_secs(15));
    }
}

#[test]
fn a_second_run_is_refused_within_a_second_and_a_dead_holders_lock_is_free() {
    let t = Test::new().runbook(&SLOW.replace("sleep 1.5", "touch started; sleep 30"));
    let dir = t.path().to_path_buf();
    let mut cmd = t.command();
    cmd.args(["run", "runbook.toml"])
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::null());
    let mut holder = cmd.spawn().unwrap();
    wait_for_path(&dir.join("started"));
    let asked = Instant::now();
    let refused = Test::in_dir(&dir).args(["run", "runbook.toml"]).status(12);
    assert!(
        asked.elapsed() < Duration::from_secs(1),
        "{:?}",
        asked.elapsed()
    );
    refused.stderr_has(&format!("pid {}", holder.id()));
    let locks = Test::in_dir(&dir).args(["locks"]).status(0);
    locks.stdout_has("HELD");
    // The holder dies without cleaning up: the kernel releases its lock.
    holder.kill().unwrap();
    let _ = wait_bounded(holder, Duration::from_secs(10));
    std::fs::write(dir.join("runbook.toml"), SLOW.replace("sleep 1.5", "true")).unwrap();
    Test::in_dir(&dir).args(["run", "runbook.toml"]).status(0);
}

#[test]
fn unlock_removes_a_stuck_holders_lock_and_is_recorded() {
    let t = Test::new().runbook(&SLOW.replace("sleep 1.5", "touch started; sleep 30"));
    let dir = t.path().to_path_buf();
    let mut cmd = t.command();
    cmd.args(["run", "runbook.toml"])
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::null());
    let holder = cmd.spawn().unwrap();
    wait_for_path(&dir.join("started"));
    let refused = Test::in_dir(&dir).args(["run", "runbook.toml"]).status(12);
    let lock_id = refused
        .stderr
        .split("[lock ")
        .nth(1)
        .and_then(|s| s.split(']').next())
        .expect("a lock id")
        .to_string();
    // Without a terminal, a held lock is only removed with --yes.
    Test::in_dir(&dir).args(["unlock", &lock_id]).status(2);
    Test::in_dir(&dir)
        .args(["unlock", &lock_id, "--yes"])
        .status(0)
        .stderr_has("recorded in");
    let log = std::fs::read_to_string(dir.join(".rollout/locks/unlock.log")).unwrap();
    assert!(
        log.contains(&lock_id) && log.contains("\"was_held\":true"),
        "{log}"
    );
    std::fs::write(dir.join("runbook.toml"), SLOW.replace("sleep 1.5", "true")).unwrap();
    let out = Test::in_dir(&dir).args(["run", "runbook.toml"]).status(0);
    out.stderr_has(&format!("lock {lock_id}"))
        .stderr_has("was removed by")
        .stderr_has("with `rollout unlock`");
    let acquired = &of_type(&dir, "lock_acquired")[0];
    assert!(acquired["broken"].as_str().unwrap().contains(&lock_id));
    let mut holder = holder;
    holder.kill().unwrap();
    let _ = wait_bounded(holder, Duration::from_secs(10));
}

#[test]
fn unlock_of_a_held_lock_asks_at_a_terminal_and_needs_yes_without_one() {
    let t = Test::new().runbook(&SLOW.replace("sleep 1.5", "touch started; sleep 30"));
    let dir = t.path().to_path_buf();
    let mut cmd = t.command();
    cmd.args(["run", "runbook.toml"])
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::null());
    let mut holder = cmd.spawn().unwrap();
    wait_for_path(&dir.join("started"));
    let locks = Test::in_dir(&dir).args(["locks"]).status(0);
    let lock_id = locks
        .stdout
        .split_whitespace()
        .next()
        .expect("a lock id")
        .to_string();
    Test::in_dir(&dir)
        .args(["unlock", &lock_id])
        .status(2)
        .stderr_has("error: pass `--yes` to remove a held lock without a terminal");
    // At a terminal: a no keeps the lock, a yes removes it.
    let mut tty = Tty::run(&Test::in_dir(&dir).args(["unlock", &lock_id]));
    tty.shows("Remove this lock?").line("n");
    tty.shows("not removed").finishes_with(2);
    Test::in_dir(&dir)
        .args(["locks"])
        .status(0)
        .stdout_has("HELD");
    let mut tty = Tty::run(&Test::in_dir(&dir).args(["unlock", &lock_id]));
    tty.shows("Remove this lock?").line("y");
    tty.shows(&format!("removed lock {lock_id}"))
        .finishes_with(0);
    holder.kill().unwrap();
    let _ = wait_bounded(holder, Duration::from_secs(10));
}

#[test]
fn the_lock_key_of_a_runbook_separates_targets() {
    let rb = SLOW
        .replace(
            "name = \"locked\"",
            "name = \"locked\"\nlock = \"deploy/{{ stage }}\"\n\n[vars]\nstage = \"staging\"",
        )
        .replace("sleep 1.5", "touch started-$ROLLOUT_VAR_STAGE; sleep 30");
    let t = Test::new().runbook(&rb);
    let dir = t.path().to_path_buf();
    let mut cmd = t.command();
    cmd.args(["run", "runbook.toml", "--var", "stage=prod"])
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::null());
    let mut holder = cmd.spawn().unwrap();
    wait_for_path(&dir.join("started-prod"));
    Test::in_dir(&dir)
        .args(["run", "runbook.toml", "--var", "stage=prod"])
        .status(12)
        .stderr_has("`deploy/prod` is locked by");
    // Another environment is another target: it runs (and is stopped here).
    let mut cmd = Test::in_dir(&dir).command();
    cmd.args(["run", "runbook.toml", "--var", "stage=staging"])
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::null());
    let mut other = cmd.spawn().unwrap();
    wait_for_path(&dir.join("started-staging"));
    for c in [&mut holder, &mut other] {
        c.kill().unwrap();
    }
    let _ = wait_bounded(holder, Duration::from_secs(10));
    let _ = wait_bounded(other, Duration::from_secs(10));
}

/// The issue's overlap: a run killed with SIGKILL in the middle of its step, and a new run
/// started right after. The step's processes outlive rollout; the new run must stop them before
/// its own step starts, and record that it did. The step notes any process of the other run
/// still alive at its start (by pid, checked against the run's variable in its environment, so
/// a reused pid is not mistaken for one).
const OVERLAP: &str = r#"[runbook]
name = "overlap"

[vars]
who = "nobody"
nap = "0"

[[phases]]
id = "p"
title = "P"
[[phases.steps]]
id = "deploy"
run = '''
for p in $(cat pids 2>/dev/null); do
  if grep -qzx "ROLLOUT_VAR_WHO=$p_who" /proc/$p/environ 2>/dev/null; then echo alive $p >> f; fi
done
echo {{ who }} start >> f
echo $$ >> pids
sh -c 'echo $$ >> pids; exec sleep "$ROLLOUT_VAR_NAP"'
echo {{ who }} end >> f
'''
"#;

fn lines_of(path: &Path) -> Vec<String> {
    std::fs::read_to_string(path)
        .unwrap_or_default()
        .lines()
        .map(String::from)
        .collect()
}

/// Waits (at most 10 s) until `path` has at least `n` lines.
fn wait_for_lines(path: &Path, n: usize) {
    let start = Instant::now();
    while lines_of(path).len() < n {
        assert!(
            start.elapsed() < Duration::from_secs(10),
            "{} never had {n} lines: {:?}",
            path.display(),
            lines_of(path)
        );
        std::thread::sleep(Duration::from_millis(2));
    }
}

#[test]
fn a_run_killed_mid_step_never_overlaps_the_next_run_of_its_target() {
    const TRIES: usize = 50;
    // The step checks the other run's processes by its `who` value.
    let t = Test::new().runbook(&OVERLAP.replace("$p_who", "OLD"));
    let dir = t.path().to_path_buf();
    let (f, pids) = (dir.join("f"), dir.join("pids"));
    let mut stop_ms = Vec::new();
    let began = Instant::now();
    for i in 0..TRIES {
        let _ = std::fs::remove_file(&f);
        let _ = std::fs::remove_file(&pids);
        let mut cmd = Test::in_dir(&dir).command();
        cmd.args(["run", "runbook.toml", "--var", "who=OLD", "--var", "nap=5"])
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null());
        let mut old = cmd.spawn().unwrap();
        // Killed at different moments of the step: as its shell starts the `sleep`, or later.
        wait_for_lines(&pids, if i % 3 == 0 { 1 } else { 2 });
        std::thread::sleep(Duration::from_millis((i % 4) as u64 * 5));
        old.kill().unwrap();
        let _ = wait_bounded(old, Duration::from_secs(10));
        let view = (i == 0).then(|| {
            wait_for_lines(&pids, 2);
            let locks = Test::in_dir(&dir).args(["locks"]).run();
            let id = locks
                .stdout
                .split_whitespace()
                .next()
                .unwrap_or("-")
                .to_string();
            // No terminal and no --yes: explained and refused, the lock left in place.
            let unlock = Test::in_dir(&dir).args(["unlock", &id]).run();
            (locks, unlock)
        });
        let new = Test::in_dir(&dir)
            .args(["run", "runbook.toml", "--var", "who=NEW", "--var", "nap=0"])
            .status(0);
        let seen = lines_of(&f);
        assert_eq!(
            seen,
            ["OLD start", "NEW start", "NEW end"],
            "overlap in try {i}\n{}",
            new.stderr
        );
        if let Some((locks, unlock)) = view {
            assert_eq!((locks.status, unlock.status), (0, 2), "{}", unlock.stderr);
            locks
                .stdout_has("HELD by leftovers")
                .stdout_has("is dead; processes of its steps still run: pid ")
                .stdout_has("(sleep)");
            unlock.stderr_has("whose rollout is dead").stderr_has(
                "no unlock is needed: the next run, resume or rollback of `overlap` stops them first",
            );
        }
        new.stderr_has("died while processes of its steps ran")
            .stderr_has("warning: stopped ");
        let stopped = of_type(&dir, "leftovers_stopped");
        assert_eq!(stopped.len(), 1, "try {i}: {}", new.stderr);
        assert!(
            stopped[0]["processes"]
                .as_array()
                .unwrap()
                .iter()
                .all(|p| p["signal"] == "SIGINT" && p["name"].is_string()),
            "{}",
            stopped[0]
        );
        stop_ms.push(stopped[0]["duration_ms"].as_u64().unwrap());
    }
    stop_ms.sort_unstable();
    eprintln!(
        "0 overlaps in {TRIES} tries ({:?}); leftovers stopped in {}..{} ms, median {} ms",
        began.elapsed(),
        stop_ms[0],
        stop_ms[TRIES - 1],
        stop_ms[TRIES / 2]
    );
}

/// A step's background process that closed its descriptors (as daemons do) and ignores SIGINT
/// and SIGTERM, left running when rollout was killed: in the middle of the next step (whose
/// shell still holds the lock), or at a `wait` step (the lock is then free). Either way the next
/// run finds the process by its environment tag and stops it, escalating to SIGKILL.
#[test]
fn a_dead_holders_process_that_closed_the_lock_is_still_stopped_with_escalation() {
    let rb = r#"[runbook]
name = "daemon"

[[phases]]
id = "p"
title = "P"
[[phases.steps]]
id = "start-daemon"
run = '''
python3 -c 'import os, signal, time
signal.signal(signal.SIGINT, signal.SIG_IGN)
signal.signal(signal.SIGTERM, signal.SIG_IGN)
os.closerange(0, 1024)
os.setsid()
open("daemon.pid", "w").write(str(os.getpid()))
time.sleep(60)' &
while [ ! -s daemon.pid ]; do sleep 0.01; done
'''
[[phases.steps]]
id = "soak"
wait = "60s"
"#;
    for mid_step in [true, false] {
        let rb = if mid_step {
            rb.replace("wait = \"60s\"", "run = \"echo $$ > soaking; sleep 60\"")
        } else {
            rb.to_string()
        };
        let t = Test::new().runbook(&rb);
        let dir = t.path().to_path_buf();
        let mut cmd = t.command();
        cmd.args(["run", "runbook.toml", "--output", "json"])
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::null());
        let mut old = cmd.spawn().unwrap();
        let mut events = std::io::BufReader::new(old.stdout.take().unwrap());
        let start = Instant::now();
        loop {
            let mut line = String::new();
            assert!(
                std::io::BufRead::read_line(&mut events, &mut line).unwrap() > 0,
                "the run ended before its second step"
            );
            if line.contains("\"event\":\"waiting\"") {
                break;
            }
            if mid_step && line.contains("\"step\":\"soak\"") && line.contains("step_started") {
                wait_for_lines(&dir.join("soaking"), 1);
                break;
            }
            assert!(start.elapsed() < Duration::from_secs(10));
        }
        old.kill().unwrap();
        let _ = wait_bounded(old, Duration::from_secs(10));
        let pid: i32 = std::fs::read_to_string(dir.join("daemon.pid"))
            .unwrap()
            .parse()
            .unwrap();
        assert!(Path::new(&format!("/proc/{pid}/environ")).exists());
        Test::in_dir(&dir)
            .args(["locks"])
            .status(0)
            .stdout_has(if mid_step {
                "HELD by leftovers"
            } else {
                "free, leftovers run"
            })
            .stdout_has(&format!("pid {pid} (python3)"));

        let shell: Option<i32> = mid_step.then(|| {
            std::fs::read_to_string(dir.join("soaking"))
                .unwrap()
                .trim()
                .parse()
                .unwrap()
        });
        std::fs::write(
            dir.join("runbook.toml"),
            rb.replace("60s", "1ms")
                .replace("echo $$ > soaking; sleep 60", "true"),
        )
        .unwrap();
        let started = Instant::now();
        let new = Test::in_dir(&dir)
            .args(["run", "runbook.toml", "--grace", "200ms"])
            .status(0);
        new.stderr_has(if mid_step {
            "they still hold the lock on `daemon`: stopping them first"
        } else {
            "they still run: stopping them first"
        })
        .stderr_has(&format!("pid {pid} (python3, SIGKILL)"));
        // Two grace periods and the kill, with room for a slow machine.
        assert!(started.elapsed() < Duration::from_secs(8));
        let state = std::fs::read_to_string(format!("/proc/{pid}/stat")).unwrap_or_default();
        assert!(
            state.is_empty() || state.contains(") Z "),
            "the daemon survived: {state}"
        );
        let stopped = &of_type(&dir, "leftovers_stopped")[0];
        let procs = stopped["processes"].as_array().unwrap();
        let daemon = procs.iter().find(|p| p["pid"] == pid).expect("the daemon");
        assert_eq!(daemon["signal"], "SIGKILL");
        if let Some(shell) = shell {
            // The step's shell (or the `sleep` it became) went at the first signal.
            let shell = procs
                .iter()
                .find(|p| p["pid"] == shell)
                .unwrap_or_else(|| panic!("no shell {shell}: {stopped}"));
            assert_eq!(shell["signal"], "SIGINT", "{stopped}");
        } else {
            assert_eq!(procs.len(), 1, "{stopped}");
        }
        assert!(stopped["duration_ms"].as_u64().unwrap() >= 400, "{stopped}");
    }
}
