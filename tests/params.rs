//! Durations, counts and thresholds from variables: `wait = "{{ soak }}"`,
//! `condition = "< {{ max_error_ratio }}"`. Checked by `validate` for what they name, resolved
//! by `plan` and `run` through the same renderer, with the variable named when a value does not
//! fit.

use crate::checks::{Exporter, Prometheus};
use crate::harness::{Test, journal};

/// Every templated slot, with defaults that a rehearsal overrides.
const TEMPLATED: &str = r#"[runbook]
name = "soak"

[vars]
soak = { type = "duration", default = "30m" }
window = { type = "duration", default = "10m" }
interval = { type = "duration", default = "30s" }
max_error_ratio = 0.01
minutes = 5
checks = 3

[defaults]
prometheus = "http://127.0.0.1:9"
timeout = "{{ window }}"

[[phases]]
id = "canary"
title = "Canary"

[[phases.steps]]
id = "hold"
wait = "{{ soak }}"

[[phases.steps]]
id = "error-rate"
metric = "app_error_ratio"
condition = "< {{ max_error_ratio }}"
for = "{{ window }}"
every = "{{ interval }}"

[[phases.steps]]
id = "error-rate-count"
metric = "app_error_ratio"
condition = "between 0 and {{ max_error_ratio }}"
samples = "{{ checks }}"
every = "{{ interval }}"

[[phases.steps]]
id = "deploy"
run = "true"
timeout = "{{ minutes }}m"
retry = { attempts = 2, delay = "{{ interval }}" }

[[phases.gate]]
id = "go"
confirm = "Promote?"
deadline = "{{ soak }}"

[[phases.abort_when]]
name = "errors"
metric = "app_error_ratio"
condition = "> {{ max_error_ratio }}"
for = "{{ interval }}"
every = "{{ interval }}"
"#;

#[test]
fn plan_shows_values_resolved_from_variables() {
    let out = Test::new()
        .runbook(TEMPLATED)
        .file(
            "staging.toml",
            "soak = \"2m\"\nwindow = \"1m\"\ninterval = \"10s\"\nmax_error_ratio = 0.05\nminutes = 2\nchecks = 4\n",
        )
        .args(["plan", "runbook.toml", "--vars-file", "staging.toml"])
        .args(["--format", "json"])
        .status(0);
    let plan = out.json();
    let steps = &plan["phases"][0]["steps"];
    assert_eq!(steps[0]["action"]["duration"], "2m");
    let metric = &steps[1]["action"];
    assert_eq!(metric["condition"]["op"], "lt");
    assert_eq!(metric["condition"]["value"], 0.05);
    assert_eq!(metric["sampling"]["window"], "1m");
    assert_eq!(metric["sampling"]["every"], "10s");
    assert_eq!(
        steps[1]["timeout"], "1m",
        "[defaults] timeout from `window`"
    );
    assert_eq!(steps[2]["action"]["sampling"]["samples"], 4);
    assert_eq!(steps[2]["action"]["condition"]["high"], 0.05);
    assert_eq!(steps[3]["timeout"], "2m");
    assert_eq!(steps[3]["retry"]["delay"], "10s");
    assert_eq!(plan["phases"][0]["gate"][0]["deadline"]["after"], "2m");
    let abort = &plan["phases"][0]["abort_when"][0];
    assert_eq!(abort["condition"]["value"], 0.05);
    assert_eq!(abort["for"], "10s");
    assert_eq!(abort["every"], "10s");
    // The text plan shows the same values; the defaults when nothing is given.
    let text = Test::new()
        .runbook(TEMPLATED)
        .args(["plan", "runbook.toml"])
        .status(0);
    text.stdout_has("wait 30m");
    text.stdout_has("pass when value < 0.01; for 10m, every 30s");
    text.stdout_has("> 0.01");
}

#[test]
fn validate_says_what_a_template_may_name() {
    let out = Test::new()
        .runbook(
            r#"[runbook]
name = "bad"

[vars]
soak = "30m"
max_err = { type = "float", default = 0.01 }
minutes = 5
token = { secret = { env = "TOKEN" } }

[defaults.prometheus_client]
timeout = "{{ soak }}"

[[phases]]
id = "p"
title = "P"

[[phases.steps]]
id = "version"
run = "echo v1"
capture = "version"

[[phases.steps]]
wait = "{{ soak }}"

[[phases.steps]]
wait = "{{ version }}"

[[phases.steps]]
wait = "{{ minutes }}"

[[phases.steps]]
wait = "{{ sock }}"

[[phases.steps]]
metric = "up"
condition = "< {{ max_err | round }}"

[[phases.steps]]
metric = "up"
condition = "{{ max_err }}"

[[phases.steps]]
metric = "up"
condition = "< 1"
samples = "{{ max_err }}"

[[phases.steps]]
run = "true"
timeout = "{{ token }}"
"#,
        )
        .args(["validate", "runbook.toml"])
        .status(3);
    insta::assert_snapshot!(out.stderr);
}

#[test]
fn a_value_that_does_not_fit_names_its_variable_and_stops_plan_and_run() {
    let rb = TEMPLATED.replace(
        "[[phases.steps]]\nid = \"hold\"",
        "[[phases.steps]]\nid = \"first\"\nrun = \"touch ran\"\n\n[[phases.steps]]\nid = \"hold\"",
    );
    for command in ["plan", "run"] {
        let out = Test::new()
            .runbook(&rb)
            .args([command, "runbook.toml", "--var", "window=10s"])
            .status(2);
        out.stderr_has(
            "error: cannot render step `error-rate`: the window `10s` is shorter than the interval `30s`: no room for a second measurement (with `window` = `10s`)",
        );
        out.stderr_has("for = \"{{ window }}\"");
        out.stderr_has("^^^^^^^^^^^^^^");
        assert!(!out.dir.join("ran").exists(), "{command} ran a step");
    }
    // A value of the right type that is out of range for the slot: zero `every`.
    let out = Test::new()
        .runbook(TEMPLATED)
        .args(["plan", "runbook.toml", "--var", "interval=0s"])
        .status(2);
    out.stderr_has("`every` must be longer than zero: zero interval (with `interval` = `0s`)");
    // A duration variable refuses a value that is not one, naming the variable.
    Test::new()
        .runbook(TEMPLATED)
        .args(["plan", "runbook.toml", "--var", "soak=10"])
        .status(2)
        .stderr_has("bad value for `soak` (from --var): `10` is not a duration");
    Test::new()
        .runbook(TEMPLATED)
        .args(["plan", "runbook.toml", "--var", "max_error_ratio=lots"])
        .status(2)
        .stderr_has("bad value for `max_error_ratio` (from --var): `lots` is not a number");
}

#[test]
fn run_waits_times_out_and_retries_with_values_from_variables() {
    let out = Test::new()
        .runbook(
            r#"[runbook]
name = "timed"

[vars]
pause_for = { type = "duration", default = "1h" }
limit = { type = "duration", default = "1h" }
gap = { type = "duration", default = "1h" }

[[phases]]
id = "p"
title = "P"
on_failure = "abort"

[[phases.steps]]
id = "hold"
wait = "{{ pause_for }}"

[[phases.steps]]
id = "slow"
run = "echo try >> tries; sleep 5"
timeout = "{{ limit }}"
retry = { attempts = 2, delay = "{{ gap }}" }
"#,
        )
        .args(["run", "runbook.toml", "--output", "json"])
        .args([
            "--var",
            "pause_for=300ms",
            "--var",
            "limit=500ms",
            "--var",
            "gap=200ms",
        ])
        .status(5);
    let events: Vec<serde_json::Value> = out
        .stdout
        .lines()
        .filter_map(|l| serde_json::from_str(l).ok())
        .collect();
    let waiting = events
        .iter()
        .find(|e| e["event"] == "waiting")
        .expect("a waiting event");
    assert_eq!(waiting["duration_ms"], 300);
    let retrying = events
        .iter()
        .find(|e| e["event"] == "retrying")
        .expect("a retry");
    assert_eq!(retrying["delay_ms"], 200);
    let tries = std::fs::read_to_string(out.dir.join("tries")).unwrap();
    assert_eq!(tries.lines().count(), 2);
    let slow = journal(&out.dir)
        .into_iter()
        .rfind(|e| e["type"] == "step_finished" && e["step"] == "slow")
        .unwrap();
    assert_eq!(slow["status"], "timed_out", "{slow}");
    assert_eq!(slow["reason"], "timed out after 500ms");
}

#[test]
fn a_threshold_from_a_float_variable_decides_a_real_check() {
    let exporter = Exporter::new("app_error_ratio 0.03\n");
    let prom = Prometheus::start(&exporter);
    let rb = format!(
        r#"[runbook]
name = "threshold"

[vars]
max_error_ratio = 0.01

[defaults]
prometheus = "{}"

[[phases]]
id = "verify"
title = "Verify"
on_failure = "abort"

[[phases.steps]]
id = "check"
metric = "app_error_ratio"
condition = "< {{{{ max_error_ratio }}}}"
"#,
        prom.url
    );
    // The production threshold refuses 3% errors; the staging one accepts it.
    Test::new()
        .runbook(&rb)
        .args(["run", "runbook.toml"])
        .status(6)
        .stderr_has("broke `< 0.01`");
    Test::new()
        .runbook(&rb)
        .file("staging.toml", "max_error_ratio = 0.05\n")
        .args(["run", "runbook.toml", "--vars-file", "staging.toml"])
        .status(0)
        .stderr_has("(want < 0.05)");
}
