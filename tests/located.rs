//! Runtime errors point at the runbook, as validation does: a step that fails for good, a failed
//! check and a refused gate are drawn where they are written (`--> file:line:column`, the line,
//! a caret under the value), and the place is carried in the `--output json` events, the
//! journal and the report (md, html, json).

use crate::checks::{Exporter, Prometheus};
use crate::harness::{Outcome, Test, journal};

/// The located block the terminal draws: from `error: step ...` to the caret line.
fn drawn(out: &Outcome) -> String {
    let lines: Vec<&str> = out.stderr.lines().collect();
    let start = lines
        .iter()
        .position(|l| l.starts_with("error: step `"))
        .unwrap_or_else(|| panic!("no located error in:\n{}", out.stderr));
    let end = lines[start..]
        .iter()
        .position(|l| l.contains('^'))
        .map_or(lines.len(), |n| start + n + 1);
    lines[start..end].join("\n")
}

/// The `location` of each `step_finished` event of `step`, in order (null when absent).
fn event_locations(out: &Outcome, step: &str) -> Vec<serde_json::Value> {
    out.stdout
        .lines()
        .chain(out.stderr.lines())
        .filter_map(|l| serde_json::from_str::<serde_json::Value>(l).ok())
        .filter(|e| e["event"] == "step_finished" && e["step"] == step)
        .map(|e| e["location"].clone())
        .collect()
}

/// `text` with the label after the carets cut off.
fn without_label(text: &str) -> String {
    text.lines()
        .map(|l| match l.rfind('^') {
            Some(end) => &l[..=end],
            None => l,
        })
        .collect::<Vec<_>>()
        .join("\n")
}

/// `text` with every `127.0.0.1:PORT` written so.
fn without_port(text: &str) -> String {
    let mut out = String::new();
    let mut rest = text;
    while let Some(at) = rest.find("127.0.0.1:") {
        let (before, after) = rest.split_at(at + "127.0.0.1:".len());
        out.push_str(before);
        out.push_str("PORT");
        rest = after.trim_start_matches(|c: char| c.is_ascii_digit());
    }
    out.push_str(rest);
    out
}

fn report(out: &Outcome, format: &str) -> String {
    Test::in_dir(&out.dir)
        .args(["report", "--format", format])
        .status(0)
        .stdout
}

const FAILING: &str = r#"[runbook]
name = "located"

[[phases]]
id = "deploy"
title = "Deploy"
on_failure = "abort"

[[phases.steps]]
id = "ok"
run = "true"

[[phases.steps]]
id = "push"
retry = { attempts = 2, delay = "10ms" }
run = "echo pushing; exit 3"
"#;

#[test]
fn a_failing_step_is_drawn_where_it_is_written() {
    let out = Test::new()
        .runbook(FAILING)
        .args(["run", "runbook.toml"])
        .status(5);
    insta::assert_snapshot!("failing_step", drawn(&out));
    out.stderr_has("<-- step push failed in");
}

#[test]
fn a_failing_steps_place_is_in_its_events_journal_and_report() {
    let out = Test::new()
        .runbook(FAILING)
        .args(["run", "runbook.toml", "--output", "json"])
        .status(5);
    let at = serde_json::json!({"file": "runbook.toml", "line": 16, "column": 7});
    // The first attempt is retried: only the last one, which fails for good, is located.
    assert_eq!(
        event_locations(&out, "push"),
        [serde_json::Value::Null, at.clone()]
    );
    assert_eq!(event_locations(&out, "ok"), [serde_json::Value::Null]);
    let records: Vec<serde_json::Value> = journal(&out.dir)
        .into_iter()
        .filter(|r| r["type"] == "step_finished" && r["step"] == "push")
        .collect();
    assert_eq!(records.len(), 2);
    assert!(records[0].get("location").is_none(), "{:?}", records[0]);
    assert_eq!(records[1]["location"], at);

    let json: serde_json::Value = serde_json::from_str(&report(&out, "json")).unwrap();
    let steps = &json["phases"][0]["steps"];
    assert_eq!(steps[2]["step"], "push");
    assert_eq!(steps[2]["location"], at);
    assert!(steps[0].get("location").is_none());
    let md = report(&out, "md");
    assert!(
        md.contains(
            "## Where it failed\n\n| Step | In the runbook | Status | Reason |\n|---|---|---|---|\n| `deploy/push` | `runbook.toml:16:7` | failed | exited with code 3 |\n"
        ),
        "{md}"
    );
    let html = report(&out, "html");
    assert!(
        html.contains("at <code>runbook.toml:16:7</code> in the runbook"),
        "{html}"
    );
}

#[test]
fn a_failed_metric_check_points_at_its_query() {
    let exporter = Exporter::new("app_error_ratio 0.5\n");
    let prom = Prometheus::start(&exporter);
    let rb = format!(
        "[runbook]\nname = \"located\"\n\n[[phases]]\nid = \"verify\"\ntitle = \"Verify\"\non_failure = \"abort\"\n\n\
         [[phases.steps]]\nid = \"errors\"\nprometheus = \"{}\"\nmetric = 'app_error_ratio'\n\
         condition = \"< 0.01\"\n",
        prom.url
    );
    let out = Test::new()
        .runbook(&rb)
        .args(["run", "runbook.toml"])
        .status(6);
    // The series names the exporter by its port, which changes from run to run.
    insta::assert_snapshot!("failed_metric_check", without_port(&drawn(&out)));
    let json = Test::new()
        .runbook(&rb)
        .args(["run", "runbook.toml", "--output", "json"])
        .status(6);
    assert_eq!(
        event_locations(&json, "errors"),
        [serde_json::json!({"file": "runbook.toml", "line": 12, "column": 10})]
    );
}

#[test]
fn a_failed_http_check_points_at_its_url() {
    // Nothing listens on port 9 of the loopback: the check fails at once.
    let rb = "[runbook]\nname = \"located\"\n\n[[phases]]\nid = \"verify\"\ntitle = \"Verify\"\non_failure = \"abort\"\n\n\
              [[phases.steps]]\nid = \"health\"\nhttp = \"http://127.0.0.1:9/healthz\"\n\
              timeout = \"1s\"\n";
    let out = Test::new()
        .runbook(rb)
        .args(["run", "runbook.toml"])
        .status(6);
    // The reason says how long the check tried, which varies: the label is cut off.
    insta::assert_snapshot!("failed_http_check", without_label(&drawn(&out)));
    out.stderr_has("Connection refused");
}

#[test]
fn a_refused_gate_points_at_its_question() {
    // The word the gate asks for is known only once the run captured it, so a wrong word given
    // in advance is refused by the gate itself.
    let rb = r#"[runbook]
name = "located"

[[phases]]
id = "deploy"
title = "Deploy"
on_failure = "abort"

[[phases.steps]]
id = "target"
run = "echo production"
capture = "target"

[[phases.steps]]
id = "go"
confirm = "Really deploy to {{ target }}?"
type_to_confirm = "{{ target }}"
"#;
    let out = Test::new()
        .runbook(rb)
        .args(["run", "runbook.toml", "--approve", "go=staging"])
        .status(5);
    insta::assert_snapshot!("refused_gate", drawn(&out));
    let records: Vec<serde_json::Value> = journal(&out.dir)
        .into_iter()
        .filter(|r| r["type"] == "step_finished" && r["step"] == "go")
        .collect();
    assert_eq!(
        records[0]["location"],
        serde_json::json!({"file": "runbook.toml", "line": 16, "column": 11})
    );
}

#[test]
fn a_step_that_cannot_be_rendered_points_at_the_template() {
    // The plan cannot know what `out` will be; the run finds it is not a number.
    let rb = r#"[runbook]
name = "located"

[[phases]]
id = "deploy"
title = "Deploy"
on_failure = "abort"

[[phases.steps]]
id = "read"
run = "echo x"
capture = "out"

[[phases.steps]]
id = "use"
run = "echo {% if out == 'x' %}{{ out | int }}{% endif %}"
"#;
    let out = Test::new()
        .runbook(rb)
        .args(["run", "runbook.toml", "--output", "json"])
        .status(5);
    assert_eq!(
        event_locations(&out, "use"),
        [serde_json::json!({"file": "runbook.toml", "line": 16, "column": 41})]
    );
    let out = Test::new()
        .runbook(rb)
        .args(["run", "runbook.toml"])
        .status(5);
    insta::assert_snapshot!("step_that_cannot_be_rendered", drawn(&out));
}
