//! What a rollback undoes and how it is shown before it starts: a phase whose rollback also
//! covers earlier phases (`rollback_covers`), and previews (`rollback --dry-run`, `plan`, the
//! plan a rollback shows when it starts) that never guess a value captured during the rollback.

use crate::harness::{Test, journal, of_type, trace};

/// One phase whose rollback checks whether the flag took effect, then runs the full rollback
/// only if it did not: the shape of the batch-patches rollback.
const FLAG_CHECK: &str = r#"[runbook]
name = "flag"

[[phases]]
id = "wave"
title = "Wave"
on_failure = "rollback"

[[phases.steps]]
id = "enable"
run = "echo enable >> trace"

[[phases.rollback]]
id = "disable"
run = "echo disable >> trace"

[[phases.rollback]]
id = "verify-flag"
run = "echo unchanged"
capture = "flag_check"

[[phases.rollback]]
id = "full-confirm"
when = "flag_check != 'unchanged'"
confirm = "The flag check said {{ flag_check }}. Run the full rollback?"

[[phases.rollback]]
id = "flush"
when = "flag_check != 'unchanged'"
run = "echo flush >> trace"
"#;

#[test]
fn the_rollback_preview_says_what_a_value_captured_during_the_rollback_decides() {
    let t = Test::new()
        .runbook(FLAG_CHECK)
        .args(["run", "runbook.toml"])
        .status(0);
    let dir = t.dir.clone();
    let preview = Test::in_dir(&dir)
        .args(["rollback", "runbook.toml", "--dry-run"])
        .status(0);
    let decided = "decided when the step is reached: runs if `flag_check` is not `unchanged`; `flag_check` is captured by step `verify-flag`";
    preview.stdout_has(decided).stdout_has(
        "confirm: The flag check said <output of step verify-flag>. Run the full rollback?",
    );
    assert!(
        !preview.stdout.contains("true: runs") && !preview.stdout.contains("cannot render"),
        "the preview guessed:\n{}",
        preview.stdout
    );
    // The plan says the same of the phase's rollback section, and so does its JSON.
    let plan = Test::in_dir(&dir).args(["plan", "runbook.toml"]).status(0);
    plan.stdout_has(decided);
    let json = Test::in_dir(&dir)
        .args(["plan", "runbook.toml", "--format", "json"])
        .status(0)
        .json();
    let when = &json["phases"][0]["rollback"][2]["when"];
    assert_eq!(when["decision"], "at_run_time");
    assert_eq!(
        when["depends_on"],
        serde_json::json!([{ "name": "flag_check", "captured_by": "verify-flag" }])
    );
    // The rollback itself shows the same before it starts, then decides with the real value.
    let out = Test::in_dir(&dir)
        .args(["rollback", "runbook.toml", "--yes"])
        .status(10);
    out.stderr_has("The flag check said <output of step verify-flag>.")
        .stderr_has("runs if `flag_check` is not `unchanged`");
    assert!(!out.stderr.contains("cannot render"), "{}", out.stderr);
    assert_eq!(trace(&dir), ["enable", "disable"]);
    let skipped: Vec<_> = journal(&dir)
        .into_iter()
        .filter(|r| r["type"] == "step_skipped")
        .map(|r| r["step"].as_str().unwrap().to_string())
        .collect();
    assert_eq!(skipped, ["full-confirm", "flush"]);
}

#[test]
fn the_preview_of_the_runbooks_own_rollback_never_evaluates_a_later_capture() {
    let rb = FLAG_CHECK.replace("[[phases.rollback]]", "[[rollback]]");
    let preview = Test::new()
        .runbook(&rb)
        .args(["rollback", "runbook.toml", "--dry-run"])
        .status(0);
    preview
        .stdout_has("runs if `flag_check` is not `unchanged`; `flag_check` is captured by step `verify-flag`")
        .stdout_has("The flag check said <output of step verify-flag>.");
    assert!(!preview.stdout.contains("true: runs"), "{}", preview.stdout);
}

/// Three phases that each switch the same flag on, so each phase's rollback (switch it off,
/// tell people) undoes every earlier phase too. `covers` gives each phase's `rollback_covers`.
fn waves(fail_in: Option<&str>, covers: [&str; 3]) -> String {
    use std::fmt::Write as _;
    let mut rb = String::from("[runbook]\nname = \"waves\"\n");
    for (p, cover) in ["p1", "p2", "p3"].into_iter().zip(covers) {
        let fail = if fail_in == Some(p) { "; exit 3" } else { "" };
        let _ = write!(
            rb,
            r#"
[[phases]]
id = "{p}"
title = "Wave {p}"
on_failure = "rollback"
{cover}

[[phases.steps]]
id = "flag-{p}"
run = "echo flag-{p} >> trace{fail}"

[[phases.rollback]]
id = "disable-{p}"
run = "echo disable-{p} >> trace"

[[phases.rollback]]
id = "tell-{p}"
checklist = ["Announced in #alerts-critical"]
"#
        );
    }
    rb
}

const COVERING: [&str; 3] = [
    "",
    "rollback_covers = [\"p1\"]",
    "rollback_covers = [\"p1\", \"p2\"]",
];

#[test]
fn a_phase_whose_rollback_covers_earlier_phases_undoes_them_once() {
    for (fail_in, expected, tells) in [
        ("p1", vec!["flag-p1", "disable-p1"], "--check=tell-p1"),
        (
            "p2",
            vec!["flag-p1", "flag-p2", "disable-p2"],
            "--check=tell-p2",
        ),
        (
            "p3",
            vec!["flag-p1", "flag-p2", "flag-p3", "disable-p3"],
            "--check=tell-p3",
        ),
    ] {
        let out = Test::new()
            .runbook(&waves(Some(fail_in), COVERING))
            .args(["run", "runbook.toml", "--yes", tells])
            .status(10);
        assert_eq!(trace(&out.dir), expected, "failing in {fail_in}");
        let finished = &of_type(&out.dir, "rollback_finished")[0];
        assert_eq!(finished["complete"], true, "failing in {fail_in}");
        let undone: Vec<&str> = finished["undone"]
            .as_array()
            .unwrap()
            .iter()
            .map(|u| u.as_str().unwrap())
            .collect();
        let covered: Vec<&&str> = undone.iter().filter(|u| u.contains("covered")).collect();
        let earlier = ["p1", "p2", "p3"]
            .iter()
            .take_while(|p| **p != fail_in)
            .count();
        assert_eq!(covered.len(), earlier, "failing in {fail_in}: {undone:?}");
        for u in covered {
            assert!(
                u.ends_with(&format!(": covered by the rollback of `{fail_in}`")),
                "{u}"
            );
        }
        // The whole rollback asked its one checklist once.
        assert_eq!(
            of_type(&out.dir, "gate_answered").len(),
            2,
            "failing in {fail_in}"
        );
        if earlier > 0 {
            out.stderr_has(&format!("covered by the rollback of `{fail_in}`"));
        }
    }
}

#[test]
fn a_covered_phase_is_undone_by_its_own_rollback_when_its_coverer_did_not_run() {
    // p3 covers only p2; p2 covers p1 but is itself covered, so p1 is undone by its own.
    let covers = [
        "",
        "rollback_covers = [\"p1\"]",
        "rollback_covers = [\"p2\"]",
    ];
    let out = Test::new()
        .runbook(&waves(Some("p3"), covers))
        .args([
            "run",
            "runbook.toml",
            "--yes",
            "--check=tell-p3",
            "--check=tell-p1",
        ])
        .status(10);
    assert_eq!(
        trace(&out.dir),
        ["flag-p1", "flag-p2", "flag-p3", "disable-p3", "disable-p1"]
    );
}

#[test]
fn the_rollback_plan_shows_which_phases_a_rollback_covers() {
    let t = Test::new()
        .runbook(&waves(None, COVERING))
        .args(["run", "runbook.toml"])
        .status(0);
    let dir = t.dir.clone();
    let preview = Test::in_dir(&dir)
        .args(["rollback", "runbook.toml", "--dry-run"])
        .status(0);
    preview
        .stdout_has("1. roll back p3: Wave p3")
        .stdout_has("2. roll back p2: Wave p2")
        .stdout_has("covered by the rollback of `p3`: its own rollback steps do not run")
        .stdout_has("3. roll back p1: Wave p1");
    assert_eq!(
        preview.stdout.matches("echo disable-").count(),
        1,
        "{}",
        preview.stdout
    );
    // `--to p2` stops at p2, which p3's rollback covers.
    let to = Test::in_dir(&dir)
        .args(["rollback", "runbook.toml", "--dry-run", "--to", "p2"])
        .status(0);
    assert!(!to.stdout.contains("roll back p1"), "{}", to.stdout);
    assert_eq!(to.stdout.matches("echo disable-").count(), 1);

    let plan = Test::in_dir(&dir).args(["plan", "runbook.toml"]).status(0);
    plan.stdout_has(
        "also undoes phases `p1` and `p2`: their own rollback steps do not run after it",
    )
    .stdout_has("not run after the rollback of `p2` or `p3`, which covers this phase");
    let json = Test::in_dir(&dir)
        .args(["plan", "runbook.toml", "--format", "json"])
        .status(0)
        .json();
    assert_eq!(
        json["phases"][2]["rollback_covers"],
        serde_json::json!(["p1", "p2"])
    );
    assert_eq!(
        json["phases"][0]["rollback_covered_by"],
        serde_json::json!(["p2", "p3"])
    );
    assert!(json["phases"][0].get("rollback_covers").is_none());

    // The rollback itself: p3's steps once, the others covered; the log verifies.
    let out = Test::in_dir(&dir)
        .args(["rollback", "runbook.toml", "--yes", "--check=tell-p3"])
        .status(10);
    out.stderr_has("covered by the rollback of `p3`");
    assert_eq!(trace(&dir), ["flag-p1", "flag-p2", "flag-p3", "disable-p3"]);
}

#[test]
fn validate_checks_what_a_rollback_covers() {
    let rb = waves(
        None,
        [
            "rollback_covers = [\"p1\"]",
            "rollback_covers = [\"p3\", \"p11\"]",
            "rollback_covers = [\"p1\", \"p1\"]",
        ],
    ) + "\n[[phases]]\nid = \"p4\"\ntitle = \"No rollback\"\nrollback_covers = [\"p3\"]\n[[phases.steps]]\nrun = \"true\"\n";
    let out = Test::new()
        .runbook(&rb)
        .args(["validate", "runbook.toml"])
        .status(3);
    out.stderr_has("phase `p1` cannot cover its own rollback")
        .stderr_has("phase `p3` runs after `p2`")
        .stderr_has("no phase has the id `p11`")
        .stderr_has("did you mean `p1`?")
        .stderr_has("`p1` is listed twice")
        .stderr_has("phase `p4` has `rollback_covers` but no `[[phases.rollback]]` steps");
}

#[test]
fn plan_says_how_a_when_that_waits_for_a_value_will_be_decided() {
    let rb = r#"[runbook]
name = "when"

[vars]
region = "eu"

[vars.token]
secret = { env = "TOKEN" }

[[phases]]
id = "p"
title = "P"

[[phases.steps]]
id = "probe"
run = "echo ok"
capture = "probe_out"

[[phases.steps]]
id = "equal"
when = "probe_out == 'ok'"
run = "true"

[[phases.steps]]
id = "negated"
when = "not probe_out"
run = "true"

[[phases.steps]]
id = "compound"
when = "token != '' and probe_out != 'no'"
run = "true"

[[phases.steps]]
id = "known"
when = "region == 'eu'"
run = "true"
"#;
    let plan = Test::new()
        .runbook(rb)
        .args(["plan", "runbook.toml"])
        .status(0);
    plan.stdout_has("when probe_out == 'ok' (decided when the step is reached: runs if `probe_out` is `ok`; `probe_out` is captured by step `probe`)")
        .stdout_has("when not probe_out (decided when the step is reached: runs if `probe_out` is false; `probe_out` is captured by step `probe`)")
        .stdout_has("when token != '' and probe_out != 'no' (decided when the step is reached: runs if `token != '' and probe_out != 'no'` is true; `token` is a secret, read when the run starts; `probe_out` is captured by step `probe`)")
        .stdout_has("when region == 'eu' (true: runs)");
}

#[test]
fn the_preview_of_a_rollback_under_way_keeps_what_the_phases_done_cover() {
    // p3 covers p2; p1 is undone by its own rollback, which is interrupted.
    let covers = ["", "", "rollback_covers = [\"p2\"]"];
    let rb = waves(Some("p3"), covers).replace(
        "run = \"echo disable-p1 >> trace\"",
        "run = \"echo disable-p1 >> trace; touch started; sleep 30\"\nidempotent = true",
    );
    let t = Test::new().runbook(&rb);
    let dir = t.path().to_path_buf();
    let mut cmd = t.command();
    cmd.args([
        "run",
        "runbook.toml",
        "--yes",
        "--check=tell-p3",
        "--grace",
        "200ms",
    ])
    .stdin(std::process::Stdio::null())
    .stdout(std::process::Stdio::null())
    .stderr(std::process::Stdio::null());
    let child = cmd.spawn().unwrap();
    crate::harness::wait_for_path(&dir.join("started"));
    nix::sys::signal::kill(
        nix::unistd::Pid::from_raw(i32::try_from(child.id()).unwrap()),
        nix::sys::signal::Signal::SIGINT,
    )
    .unwrap();
    let out = crate::harness::wait_bounded(child, std::time::Duration::from_secs(20));
    assert_eq!(out.status.code(), Some(130));
    let preview = Test::in_dir(&dir)
        .args(["rollback", "runbook.toml", "--dry-run"])
        .status(0);
    preview
        .stdout_has("a rollback under way: already rolled back `p3`")
        .stdout_has("1. roll back p2: Wave p2")
        .stdout_has("covered by the rollback of `p3`: its own rollback steps do not run")
        .stdout_has("2. roll back p1: Wave p1")
        .stdout_has("echo disable-p1 >> trace");
    assert!(
        !preview.stdout.contains("echo disable-p2"),
        "the preview shows a covered phase's steps:\n{}",
        preview.stdout
    );
    // The rollback goes on as previewed: p1's rollback, not p2's.
    std::fs::write(dir.join("runbook.toml"), rb.replace("sleep 30", "true")).unwrap();
    Test::in_dir(&dir)
        .args(["resume", "--allow-changed", "--check=tell-p1"])
        .status(10);
    assert_eq!(
        trace(&dir),
        [
            "flag-p1",
            "flag-p2",
            "flag-p3",
            "disable-p3",
            "disable-p1",
            "disable-p1"
        ]
    );
}
