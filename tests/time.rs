//! Time: change windows (`[runbook.window]`, `--outside-window --reason`) and phase budgets
//! (`max_duration`, `on_max_duration`). "Now" is set with `ROLLOUT_NOW`, so no test depends on
//! the real time of day.

use crate::harness::{Test, journal, run_dirs};

/// Friday 2026-12-04 17:02 in Berlin (UTC+1): after the window closed.
const FRIDAY_EVENING: &str = "2026-12-04T16:02:00Z";
/// Monday 2026-12-07 10:00 in Berlin: inside the window.
const MONDAY_MORNING: &str = "2026-12-07T09:00:00Z";

fn windowed(extra_phase: &str) -> String {
    format!(
        r#"[runbook]
name = "payments"

[runbook.window]
days = ["mon", "tue", "wed", "thu"]
start = "09:00"
end = "16:00"
time_zone = "Europe/Berlin"

[[phases]]
id = "deploy"
title = "Deploy"

[[phases.steps]]
id = "change"
run = "echo changed >> trace"
{extra_phase}
[[rollback]]
id = "undo"
run = "echo undone >> trace"
"#
    )
}

#[test]
fn outside_the_window_run_refuses_before_anything_and_names_the_next_opening() {
    let out = Test::new()
        .runbook(&windowed(""))
        .env("ROLLOUT_NOW", FRIDAY_EVENING)
        .args(["run", "runbook.toml"])
        .status(14);
    out.stderr_has(
        "error: `payments` may not run now: it is Fri 2026-12-04 17:02 in Europe/Berlin, outside the change window (mon,tue,wed,thu 09:00-16:00 Europe/Berlin); the window next opens Mon 2026-12-07 09:00 Europe/Berlin (in 2d15h58m)",
    );
    out.stderr_has("--outside-window --reason");
    assert!(!out.dir.join("trace").exists(), "a step ran");
    assert!(run_dirs(&out.dir).is_empty(), "a run was recorded");
    // Inside the window it runs, and records nothing about the window.
    let out = Test::new()
        .runbook(&windowed(""))
        .env("ROLLOUT_NOW", MONDAY_MORNING)
        .args(["run", "runbook.toml"])
        .status(0);
    assert!(
        !journal(&out.dir)
            .iter()
            .any(|e| e["type"] == "outside_window")
    );
}

#[test]
fn outside_window_with_a_reason_runs_and_is_recorded() {
    let out = Test::new()
        .runbook(&windowed(""))
        .env("ROLLOUT_NOW", FRIDAY_EVENING)
        .args(["run", "runbook.toml", "--outside-window"])
        .args(["--reason", "hotfix for INC-4211, approved by the CAB"])
        .status(0);
    out.stderr_has("warning: run of `payments` goes ahead outside its change window");
    let j = journal(&out.dir);
    let record = j
        .iter()
        .find(|e| e["type"] == "outside_window")
        .expect("an outside_window record");
    assert_eq!(record["reason"], "hotfix for INC-4211, approved by the CAB");
    assert_eq!(
        record["window"],
        "mon,tue,wed,thu 09:00-16:00 Europe/Berlin"
    );
    assert_eq!(record["local_time"], "Fri 2026-12-04 17:02 Europe/Berlin");
    let log = Test::in_dir(&out.dir).args(["log"]).status(0);
    log.stdout_has("started OUTSIDE the change window (mon,tue,wed,thu 09:00-16:00 Europe/Berlin) at Fri 2026-12-04 17:02 Europe/Berlin; reason: hotfix for INC-4211");
    // The report for the change ticket says so too.
    let md = Test::in_dir(&out.dir)
        .args(["report", "--format", "md"])
        .status(0);
    md.stdout_has("- **Started outside the change window** (`mon,tue,wed,thu 09:00-16:00 Europe/Berlin`) at Fri 2026-12-04 17:02 Europe/Berlin");
    md.stdout_has("reason: hotfix for INC-4211, approved by the CAB");
    let json = Test::in_dir(&out.dir)
        .args(["report", "--format", "json"])
        .status(0)
        .json();
    assert_eq!(
        json["outside_window"][0]["reason"],
        "hotfix for INC-4211, approved by the CAB"
    );
    let html = Test::in_dir(&out.dir)
        .args(["report", "--format", "html"])
        .status(0);
    html.stdout_has("<b>Started outside the change window</b>");
    // A reason is required.
    Test::new()
        .runbook(&windowed(""))
        .env("ROLLOUT_NOW", FRIDAY_EVENING)
        .args(["run", "runbook.toml", "--outside-window"])
        .status(2)
        .stderr_has("--reason");
}

#[test]
fn resume_is_held_to_the_window_and_rollback_never_is() {
    let rb = windowed(
        "\n[[phases.steps]]\nid = \"hold\"\npause = \"check the dashboards\"\n\n[[phases.steps]]\nid = \"finish\"\nrun = \"echo finished >> trace\"\n",
    );
    let out = Test::new()
        .runbook(&rb)
        .env("ROLLOUT_NOW", MONDAY_MORNING)
        .args(["run", "runbook.toml"])
        .status(8);
    Test::in_dir(&out.dir)
        .env("ROLLOUT_NOW", FRIDAY_EVENING)
        .args(["resume"])
        .status(14)
        .stderr_has("`payments` may not resume now");
    assert_eq!(
        std::fs::read_to_string(out.dir.join("trace")).unwrap(),
        "changed\n"
    );
    // A rollback goes ahead at any time.
    Test::in_dir(&out.dir)
        .env("ROLLOUT_NOW", FRIDAY_EVENING)
        .args(["rollback", "runbook.toml", "--no-run", "--yes"])
        .status(10);
    assert_eq!(
        std::fs::read_to_string(out.dir.join("trace")).unwrap(),
        "changed\nundone\n"
    );
}

#[test]
fn a_window_from_variables_is_resolved_shown_and_checked() {
    let rb = r#"[runbook]
name = "rehearsed"

[vars]
window_days = "mon-fri"
window_start = "22:00"
window_end = "04:00"
window_zone = "UTC"

[runbook.window]
days = "{{ window_days }}"
start = "{{ window_start }}"
end = "{{ window_end }}"
time_zone = "{{ window_zone }}"

[[phases]]
id = "p"
title = "P"
max_duration = "{{ budget }}"
on_max_duration = "pause"

[[phases.steps]]
run = "true"

[vars.budget]
type = "duration"
default = "45m"
"#;
    let out = Test::new()
        .runbook(rb)
        .args(["plan", "runbook.toml"])
        .status(0);
    out.stdout_has("Change window: mon,tue,wed,thu,fri 22:00-04:00 UTC");
    out.stdout_has("time budget: 45m, then pause");
    // A rehearsal in staging opens the window all day.
    let staging = Test::new()
        .runbook(rb)
        .file(
            "staging.toml",
            "window_days = \"daily\"\nwindow_start = \"00:00\"\nwindow_end = \"24:00\"\nbudget = \"5m\"\n",
        )
        .env("ROLLOUT_NOW", FRIDAY_EVENING)
        .args(["run", "runbook.toml", "--vars-file", "staging.toml"])
        .status(0);
    assert!(
        !journal(&staging.dir)
            .iter()
            .any(|e| e["type"] == "outside_window")
    );
    // Saturday 03:00 belongs to Friday's night window.
    Test::new()
        .runbook(rb)
        .env("ROLLOUT_NOW", "2026-12-05T03:00:00Z")
        .args(["run", "runbook.toml"])
        .status(0);
    let bad = Test::new()
        .runbook(rb)
        .args(["plan", "runbook.toml", "--var", "window_start=9am"])
        .status(2);
    bad.stderr_has(
        "error: cannot render `[runbook.window]`: the change window's `{{ window_start }}` is `9am`: `9am` is not a time",
    );
    bad.stderr_has("start = \"{{ window_start }}\"");
}

#[test]
fn a_written_window_is_checked_by_validate() {
    let out = Test::new()
        .runbook(
            r#"[runbook]
name = "bad"

[runbook.window]
days = "mon-thrusday"
start = "9:00am"
end = "25:00"
time_zone = "Europe/Berln"

[[phases]]
id = "p"
title = "P"
on_max_duration = "pause"

[[phases.steps]]
run = "true"
"#,
        )
        .args(["validate", "runbook.toml"])
        .status(3);
    insta::assert_snapshot!(out.stderr);
}

fn budgeted(action: &str, step: &str) -> String {
    format!(
        r#"[runbook]
name = "budget"

[[phases]]
id = "canary"
title = "Canary"
max_duration = "500ms"
on_max_duration = "{action}"

[[phases.steps]]
id = "soak"
{step}

[[phases.steps]]
id = "after"
run = "touch after-ran"

[[phases.rollback]]
id = "undo"
run = "touch undone"
"#
    )
}

#[test]
fn a_phase_past_its_budget_warns_and_goes_on() {
    let out = Test::new()
        .runbook(&budgeted("warn", "wait = \"1500ms\""))
        .args(["run", "runbook.toml"])
        .status(0);
    out.stderr_has(
        "phase `canary` has run past its max_duration of 500ms; it goes on (on_max_duration = \"warn\")",
    );
    assert!(out.dir.join("after-ran").exists());
    let j = journal(&out.dir);
    let over = j
        .iter()
        .find(|e| e["type"] == "phase_over_budget")
        .expect("a phase_over_budget record");
    assert_eq!(over["action"], "warn");
    // Said while the wait was still going: before the wait step finished.
    let said = j
        .iter()
        .position(|e| e["type"] == "phase_over_budget")
        .unwrap();
    let waited = j
        .iter()
        .position(|e| e["type"] == "step_finished" && e["step"] == "soak")
        .unwrap();
    assert!(said < waited, "{j:#?}");
    Test::in_dir(&out.dir)
        .args(["report", "--format", "md"])
        .status(0)
        .stdout_has("- Phase `canary` ran past its `max_duration` of 500ms at ");
}

#[test]
fn a_phase_past_its_budget_pauses_aborts_or_rolls_back() {
    let step = "run = \"sleep 30 & echo $! > sleep.pid; wait\"";
    for (action, status, extra) in [
        ("pause", 8, vec![]),
        ("abort", 6, vec![]),
        ("rollback", 10, vec!["--yes"]),
    ] {
        let out = Test::new()
            .runbook(&budgeted(action, step))
            .args(["run", "runbook.toml", "--grace", "1s"])
            .args(extra)
            .status(status);
        out.stderr_has(&format!(
            "phase `canary` ran past its max_duration of 500ms (on_max_duration = \"{action}\")"
        ));
        assert!(
            !out.dir.join("after-ran").exists(),
            "{action}: the next step ran"
        );
        assert_eq!(
            out.dir.join("undone").exists(),
            action == "rollback",
            "{action}"
        );
        let j = journal(&out.dir);
        let tripped = j.iter().find(|e| e["type"] == "abort_tripped").unwrap();
        assert_eq!(tripped["criterion"], "max_duration of phase `canary`");
        assert_eq!(tripped["step"], "soak");
    }
}
