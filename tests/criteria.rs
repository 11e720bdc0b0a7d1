//! Abort criteria written once (`[[abort_when]]` at the top level, watched in every phase, a
//! phase skipping or overriding one by id), scoped to a window of steps (`from`, `until`), and
//! watching more than `PromQL`: an HTTP endpoint and a check script.

use std::io::{BufRead, BufReader, Write};
use std::net::TcpListener;
use std::sync::Arc;
use std::sync::atomic::{AtomicU16, Ordering};
use std::time::Duration;

use crate::checks::{Exporter, Prometheus};
use crate::harness::{Test, journal};

/// Four phases: a checklist, a canary, a phase that skips the runbook's criterion, and one that
/// overrides it.
fn four_phases(prom: &str, step: &str) -> String {
    format!(
        r#"[runbook]
name = "canary"

[defaults]
prometheus = "{prom}"

[[abort_when]]
id = "error-ratio"
name = "error ratio above 50%"
metric = "app_error_ratio"
condition = "> 0.5"
every = "250ms"
action = "abort"
from = "deploy-canary"

[[phases]]
id = "checklist"
title = "Pre-deployment checklist"

[[phases.steps]]
id = "leftovers"
run = "sleep 1.5; touch checklist-done"

[[phases]]
id = "canary"
title = "Canary"

[[phases.steps]]
id = "deploy-canary"
{step}

[[phases]]
id = "maintenance"
title = "Maintenance window"
skip_abort_when = ["error-ratio"]

[[phases.steps]]
id = "migrate"
run = "true"

[[phases]]
id = "promote"
title = "Promote"

[[phases.abort_when]]
id = "error-ratio"
name = "error ratio above 90% while promoting"
metric = "app_error_ratio"
condition = "> 0.9"
until = "promote-1"

[[phases.steps]]
run = "true"

[[phases.steps]]
run = "true"
"#
    )
}

#[test]
fn the_plan_shows_each_criterion_and_its_window_phase_by_phase() {
    let rb = four_phases("http://127.0.0.1:9", "run = \"true\"");
    let out = Test::new()
        .runbook(&rb)
        .args(["plan", "runbook.toml", "--format", "json"])
        .status(0);
    let plan = out.json();
    let phases = plan["phases"].as_array().unwrap();
    // Before the step it starts at, the runbook's criterion is not watched: said so.
    assert_eq!(phases[0]["abort_when"], serde_json::json!([]));
    assert_eq!(phases[0]["abort_not_watched"][0]["id"], "error-ratio");
    assert_eq!(
        phases[0]["abort_not_watched"][0]["why"],
        "it starts at step `deploy-canary`, in a later phase"
    );
    let canary = &phases[1]["abort_when"][0];
    assert_eq!(canary["id"], "error-ratio");
    assert_eq!(canary["scope"], "runbook");
    assert_eq!(canary["kind"], "metric");
    assert_eq!(canary["action"], "abort");
    assert!(
        canary.get("from").is_none(),
        "the window opens at the phase's first step"
    );
    assert_eq!(
        phases[2]["abort_not_watched"][0]["why"],
        "skipped in this phase (`skip_abort_when`)"
    );
    let own = &phases[3]["abort_when"];
    assert_eq!(own.as_array().unwrap().len(), 1, "{own}");
    assert_eq!(own[0]["scope"], "phase");
    assert_eq!(own[0]["until"], "promote-1");
    assert_eq!(
        phases[3]["abort_not_watched"][0]["why"],
        "replaced by this phase's own criterion of the same id"
    );
    let text = Test::new()
        .runbook(&rb)
        .args(["plan", "runbook.toml"])
        .status(0);
    text.stdout_has("not watched in this phase: error ratio above 50% (it starts at step `deploy-canary`, in a later phase)");
    text.stdout_has(
        "abort when error ratio above 50%: `app_error_ratio` > 0.5 for 0s (every 250ms) -> abort [runbook-wide]",
    );
    text.stdout_has("watched from the start of the phase until step `promote-1`");
}

#[test]
fn a_criterion_starts_watching_at_its_step_and_not_before() {
    // The bad state is there from the start: a leftover from before the change.
    let exporter = Exporter::new("app_error_ratio 0.9\n");
    let prom = Prometheus::start(&exporter);
    let rb = four_phases(&prom.url, "run = \"sleep 30 & echo $! > sleep.pid; wait\"");
    let out = Test::new()
        .runbook(&rb)
        .args(["run", "runbook.toml", "--grace", "1s"])
        .status(6);
    assert!(
        out.dir.join("checklist-done").exists(),
        "the checklist phase was stopped by a criterion that does not watch it:\n{}",
        out.stderr
    );
    let j = journal(&out.dir);
    let tripped = j
        .iter()
        .find(|e| e["type"] == "abort_tripped")
        .expect("an abort_tripped record");
    assert_eq!(tripped["phase"], "canary");
    assert_eq!(tripped["step"], "deploy-canary");
    assert_eq!(tripped["criterion"], "error ratio above 50%");
    out.stderr_has(
        "watching `error ratio above 50%`: `app_error_ratio` > 0.5 every 250ms -> abort",
    );
    out.stderr_has("abort criterion `error ratio above 50%` tripped");
}

#[test]
fn a_skipped_criterion_does_not_stop_its_phase_and_the_override_applies() {
    let exporter = Exporter::new("app_error_ratio 0.6\n");
    let prom = Prometheus::start(&exporter);
    // 0.6 is bad for the runbook's criterion (> 0.5), which reads every 250ms; the phases that
    // would see it skip it or override it, and each takes long enough to be read.
    let rb = four_phases(&prom.url, "run = \"true\"")
        .replace("id = \"migrate\"\nrun = \"true\"", "id = \"migrate\"\nrun = \"sleep 1.5\"")
        .replace(
            "[[phases.steps]]\nrun = \"true\"\n\n[[phases.steps]]\nrun = \"true\"\n",
            "[[phases.steps]]\nrun = \"sleep 1.5\"\n\n[[phases.steps]]\nrun = \"sleep 1.5\"\n",
        )
        .replace("[[phases]]\nid = \"canary\"\ntitle = \"Canary\"\n", "[[phases]]\nid = \"canary\"\ntitle = \"Canary\"\nskip_abort_when = [\"error-ratio\"]\n");
    // 0.6 is below the promote phase's own threshold (> 0.9): nothing trips anywhere.
    let out = Test::new()
        .runbook(&rb)
        .args(["run", "runbook.toml"])
        .status(0);
    assert!(
        !journal(&out.dir)
            .iter()
            .any(|e| e["type"] == "abort_tripped"),
        "{}",
        out.stderr
    );
    out.stderr_has("watching `error ratio above 90% while promoting`");
    out.stderr_has("no longer watching `error ratio above 90% while promoting`");
}

/// A tiny HTTP server: `/health` answers with the status the test sets.
fn health_server(status: &Arc<AtomicU16>) -> u16 {
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let port = listener.local_addr().unwrap().port();
    let status = Arc::clone(status);
    std::thread::spawn(move || {
        for stream in listener.incoming().flatten() {
            let mut reader = BufReader::new(stream.try_clone().unwrap());
            let mut line = String::new();
            while reader.read_line(&mut line).is_ok_and(|n| n > 2) {
                line.clear();
            }
            let code = status.load(Ordering::SeqCst);
            let body = if code == 200 { "ok" } else { "unavailable" };
            let mut stream = stream;
            let _ = write!(
                stream,
                "HTTP/1.1 {code} X\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{body}",
                body.len()
            );
        }
    });
    port
}

#[test]
fn an_http_probe_trips_when_the_health_endpoint_fails_for_long_enough() {
    let status = Arc::new(AtomicU16::new(200));
    let port = health_server(&status);
    let flip = {
        let status = Arc::clone(&status);
        std::thread::spawn(move || {
            std::thread::sleep(Duration::from_millis(1200));
            status.store(503, Ordering::SeqCst);
        })
    };
    let out = Test::new()
        .runbook(&format!(
            r#"[runbook]
name = "health"

[[abort_when]]
name = "health endpoint fails"
http = "http://127.0.0.1:{port}/health"
expect_status = 200
expect_body = "ok"
every = "200ms"
for = "600ms"
action = "abort"

[[phases]]
id = "p"
title = "P"

[[phases.steps]]
id = "soak"
run = "sleep 30 & echo $! > sleep.pid; wait"

[[phases.steps]]
id = "after"
run = "touch after-ran"
"#
        ))
        .args(["run", "runbook.toml", "--grace", "1s"])
        .status(6);
    flip.join().unwrap();
    assert!(!out.dir.join("after-ran").exists());
    out.stderr_has("watching `health endpoint fails`: GET http://127.0.0.1:");
    out.stderr_has("abort criterion `health endpoint fails` tripped: GET http://127.0.0.1:");
    out.stderr_has("status 503, expected 200");
    out.stderr_has("(for = 600ms)");
    let j = journal(&out.dir);
    let tripped = j.iter().find(|e| e["type"] == "abort_tripped").unwrap();
    assert_eq!(tripped["step"], "soak");
    assert_eq!(tripped["action"], "abort");
}

#[test]
fn a_command_probe_runs_a_real_check_script() {
    let out = Test::new()
        .file(
            "synthetic.sh",
            "#!/bin/sh\n# A synthetic checkout: fails once the broken marker exists.\nif [ -e broken ]; then\n  echo \"synthetic checkout failed: HTTP 502 at /checkout\" >&2\n  exit 1\nfi\necho ok\n",
        )
        .runbook(
            r#"[runbook]
name = "synthetic"

[[abort_when]]
id = "synthetic"
name = "synthetic monitoring"
command = "sh synthetic.sh"
every = "200ms"
action = "pause"

[[phases]]
id = "p"
title = "P"

[[phases.steps]]
id = "break-it"
run = "sleep 0.5; touch broken; sleep 30 & echo $! > sleep.pid; wait"
"#,
        )
        .args(["run", "runbook.toml", "--grace", "1s"])
        .status(8);
    out.stderr_has(
        "watching `synthetic monitoring`: `sh synthetic.sh` exits non-zero every 200ms -> pause",
    );
    out.stderr_has(
        "abort criterion `synthetic monitoring` tripped: the check exited with code 1: synthetic checkout failed: HTTP 502 at /checkout",
    );
    let j = journal(&out.dir);
    assert!(j.iter().any(|e| e["type"] == "abort_tripped"));
    assert!(j.iter().any(|e| e["type"] == "paused"));
}

#[test]
fn validate_checks_ids_windows_and_kinds_of_criteria() {
    let out = Test::new()
        .runbook(
            r#"[runbook]
name = "bad"

[[abort_when]]
id = "errors"
metric = "up"
condition = "> 1"
from = "deploy-canry"

[[abort_when]]
id = "errors"
http = "http://127.0.0.1:9/"
condition = "> 1"

[[abort_when]]
name = "nothing"

[[phases]]
id = "a"
title = "A"
skip_abort_when = ["erors"]

[[phases.steps]]
id = "deploy-canary"
run = "true"

[[phases.steps]]
id = "verify"
run = "true"

[[phases.abort_when]]
command = "true"
from = "verify"
until = "deploy-canary"

[[phases]]
id = "b"
title = "B"

[[phases.steps]]
id = "later"
run = "true"

[[phases.abort_when]]
command = "true"
from = "verify"

[[phases.abort_when]]
command = "true"
metric = "up"
"#,
        )
        .args(["validate", "runbook.toml"])
        .status(3);
    insta::assert_snapshot!(out.stderr);
}
