//! `rollout validate`: one test per kind of problem. Each runs the real binary on a small runbook,
//! expects exit 3 and snapshots the rendered diagnostics, so any change to an error message
//! shows up in review.

use crate::harness::{MINIMAL, Outcome, RUNBOOK, Test};

/// The top of a valid runbook: `[runbook]` and one phase, ready for `[[phases.steps]]`.
const HEAD: &str = r#"[runbook]
name = "checkout"

[[phases]]
id = "deploy"
title = "Deploy"
"#;

fn runbook_with(rest: &str) -> String {
    format!("{HEAD}{rest}")
}

/// Validates `text`, expecting it to be refused (exit 3) with every problem located.
fn invalid(text: &str) -> Outcome {
    let out = Test::new()
        .runbook(text)
        .args(["validate", RUNBOOK])
        .status(3);
    assert!(
        out.stdout.is_empty(),
        "stdout should be empty: {}",
        out.stdout
    );
    assert!(
        out.stderr.contains("nothing was run"),
        "no summary line:\n{}",
        out.stderr
    );
    out
}

/// The number of problems the summary line announces, checked against the diagnostics shown.
fn problem_count(out: &Outcome) -> usize {
    let shown = out
        .stderr
        .lines()
        .filter(|l| l.starts_with("error: ") && !l.contains("nothing was run"))
        .count();
    let summary = out
        .stderr
        .lines()
        .find(|l| l.contains("nothing was run"))
        .expect("summary line");
    let announced: usize = summary
        .split(" has ")
        .nth(1)
        .and_then(|r| r.split(' ').next())
        .and_then(|n| n.parse().ok())
        .unwrap_or_else(|| panic!("cannot read the count in {summary:?}"));
    assert_eq!(
        shown, announced,
        "summary disagrees with the diagnostics:\n{}",
        out.stderr
    );
    shown
}

#[test]
fn valid_runbook_is_accepted() {
    let out = Test::new()
        .runbook(MINIMAL)
        .args(["validate", RUNBOOK])
        .status(0);
    assert_eq!(
        out.stdout,
        "`runbook.toml` is valid: runbook `minimal`, 1 phase, 1 step\n"
    );
    assert_eq!(out.stderr, "");
}

#[test]
fn invalid_toml_syntax() {
    let out = invalid(
        r#"[runbook]
name = "checkout
risk = low

[[phases]]
id = "deploy"
title = "Deploy"
"#,
    );
    assert_eq!(problem_count(&out), 2);
    insta::assert_snapshot!(out.stderr);
}

#[test]
fn invalid_toml_duplicate_key() {
    let out = invalid(&format!("{HEAD}\n[runbook]\nowner = \"payments\"\n"));
    insta::assert_snapshot!(out.stderr);
}

#[test]
fn invalid_toml_echoes_are_not_repeated() {
    // An unclosed array makes the parser report several echoes on the same line: one is enough.
    let out = invalid("x = [1,\n[runbook]\nname = \n");
    assert_eq!(problem_count(&out), 2);
    insta::assert_snapshot!(out.stderr);
}

#[test]
fn missing_runbook_table() {
    let out = invalid(
        r#"# deploys checkout
[[phases]]
id = "deploy"
title = "Deploy"

[[phases.steps]]
run = "make deploy"
"#,
    );
    insta::assert_snapshot!(out.stderr);
}

#[test]
fn missing_runbook_name() {
    let out = invalid(
        r#"[runbook]
description = "deploys checkout"

[[phases]]
id = "deploy"
title = "Deploy"

[[phases.steps]]
run = "make deploy"
"#,
    );
    insta::assert_snapshot!(out.stderr);
}

#[test]
fn runbook_keys_written_above_the_table() {
    let out = invalid(
        r#"name = "checkout"
timeout = "5m"

[runbook]
owner = "payments"

[[phases]]
id = "deploy"
title = "Deploy"

[[phases.steps]]
run = "make deploy"
"#,
    );
    insta::assert_snapshot!(out.stderr);
}

#[test]
fn no_phases() {
    let out = invalid("[runbook]\nname = \"checkout\"\n");
    insta::assert_snapshot!(out.stderr);
}

#[test]
fn empty_phases_array() {
    let out = invalid("phases = []\n\n[runbook]\nname = \"checkout\"\n");
    insta::assert_snapshot!(out.stderr);
}

#[test]
fn phase_without_steps() {
    let out = invalid(&format!(
        "{HEAD}\n[[phases]]\nid = \"verify\"\ntitle = \"Verify\"\nsteps = []\n"
    ));
    // Both the phase with no `[[phases.steps]]` and the one with `steps = []`.
    assert_eq!(problem_count(&out), 2);
    insta::assert_snapshot!(out.stderr);
}

#[test]
fn phase_without_id_or_title() {
    let out = invalid(
        r#"[runbook]
name = "checkout"

[[phases]]
title = "Deploy"

[[phases.steps]]
run = "make deploy"

[[phases]]
id = "verify"

[[phases.steps]]
run = "make verify"
"#,
    );
    insta::assert_snapshot!(out.stderr);
}

#[test]
fn unknown_key_at_top_level() {
    let out = invalid(&format!(
        "{HEAD}\n[[phases.steps]]\nrun = \"x\"\n\n[[rollbak]]\nrun = \"undo\"\n"
    ));
    insta::assert_snapshot!(out.stderr);
}

#[test]
fn unknown_key_in_runbook_table() {
    let out = invalid(
        r#"[runbook]
name = "checkout"
ownr = "payments"

[[phases]]
id = "deploy"
title = "Deploy"

[[phases.steps]]
run = "make deploy"
"#,
    );
    insta::assert_snapshot!(out.stderr);
}

#[test]
fn unknown_key_in_defaults() {
    let out = invalid(&runbook_with(
        r#"
[[phases.steps]]
run = "make deploy"

[defaults]
timout = "5m"

[defaults.kubectl]
namespase = "web"
"#,
    ));
    assert_eq!(problem_count(&out), 2);
    insta::assert_snapshot!(out.stderr);
}

#[test]
fn unknown_key_in_step() {
    let out = invalid(&runbook_with(
        r#"
[[phases.steps]]
id = "migrate"
run = "make migrate"
retries = 3
"#,
    ));
    insta::assert_snapshot!(out.stderr);
}

#[test]
fn unknown_key_in_variable() {
    let out = invalid(&runbook_with(
        r#"
[[phases.steps]]
run = "make deploy"

[vars.environment]
type = "string"
alowed = ["staging", "production"]
default = "staging"
"#,
    ));
    insta::assert_snapshot!(out.stderr);
}

#[test]
fn key_of_another_step_kind() {
    let out = invalid(&runbook_with(
        r#"
[[phases.steps]]
id = "migrate"
run = "make migrate"
namespace = "payments"
condition = "< 0.01"
"#,
    ));
    assert_eq!(problem_count(&out), 2);
    insta::assert_snapshot!(out.stderr);
}

#[test]
fn step_without_a_kind() {
    let out = invalid(&runbook_with(
        r#"
[[phases.steps]]
id = "migrate"
name = "Run the migrations"

[[phases.steps]]
id = "smoke"
rn = "make smoke"
"#,
    ));
    assert_eq!(problem_count(&out), 2);
    insta::assert_snapshot!(out.stderr);
}

#[test]
fn step_with_two_kinds() {
    let out = invalid(&runbook_with(
        r#"
[[phases.steps]]
id = "restart"
run = "make restart"
kubectl = ["rollout", "restart", "deployment/web"]
"#,
    ));
    insta::assert_snapshot!(out.stderr);
}

#[test]
fn wrong_value_types() {
    let out = invalid(
        r#"[runbook]
name = 5

[defaults]
shell = 3
env = "AWS_REGION=us-east-1"

[vars]
replicas = [3]

[[phases]]
id = "deploy"
title = "Deploy"

[[phases.steps]]
run = 5
timeout = 10
continue_on_error = "yes"
retry = { attempts = "3" }

[[phases.steps]]
checklist = "tests pass"
"#,
    );
    assert_eq!(problem_count(&out), 9);
    insta::assert_snapshot!(out.stderr);
}

#[test]
fn bad_risk_choice() {
    let out = invalid(
        r#"[runbook]
name = "checkout"
risk = "hihg"

[[phases]]
id = "deploy"
title = "Deploy"

[[phases.steps]]
run = "make deploy"
"#,
    );
    insta::assert_snapshot!(out.stderr);
}

#[test]
fn bad_on_failure_choice() {
    let out = invalid(
        r#"[runbook]
name = "checkout"

[[phases]]
id = "deploy"
title = "Deploy"
on_failure = "rolback"

[[phases.steps]]
run = "make deploy"
on_failure = "abrot"
"#,
    );
    assert_eq!(problem_count(&out), 2);
    insta::assert_snapshot!(out.stderr);
}

#[test]
fn bad_no_data_choice() {
    let out = invalid(&runbook_with(
        r#"
[[phases.steps]]
metric = "up"
condition = "== 1"
no_data = "pas"
"#,
    ));
    insta::assert_snapshot!(out.stderr);
}

#[test]
fn bad_on_deadline_choice() {
    let out = invalid(&runbook_with(
        r#"
[[phases.steps]]
confirm = "Ship it?"
deadline = "30m"
on_deadline = "hodl"
"#,
    ));
    insta::assert_snapshot!(out.stderr);
}

#[test]
fn duplicate_phase_id() {
    let out = invalid(&runbook_with(
        r#"
[[phases.steps]]
run = "make deploy"

[[phases]]
id = "deploy"
title = "Deploy again"

[[phases.steps]]
run = "make deploy"
"#,
    ));
    insta::assert_snapshot!(out.stderr);
}

#[test]
fn duplicate_step_id() {
    let out = invalid(&runbook_with(
        r#"
[[phases.steps]]
id = "migrate"
run = "make migrate"

[[phases.rollback]]
id = "migrate"
run = "make migrate-down"
"#,
    ));
    insta::assert_snapshot!(out.stderr);
}

#[test]
fn invalid_ids() {
    let out = invalid(
        r#"[runbook]
name = "checkout"

[[phases]]
id = "Deploy Now"
title = "Deploy"

[[phases.steps]]
id = "-migrate"
run = "make migrate"

[[phases.steps]]
id = "smoke.test"
run = "make smoke"
"#,
    );
    assert_eq!(problem_count(&out), 3);
    insta::assert_snapshot!(out.stderr);
}

#[test]
fn undefined_variable_with_suggestion() {
    let out = invalid(&runbook_with(
        r#"
[[phases.steps]]
run = "deploy --tag {{ image_tg }} --region {{ region }}"

[vars]
image_tag = "v1"
"#,
    ));
    assert_eq!(problem_count(&out), 2);
    insta::assert_snapshot!(out.stderr);
}

#[test]
fn undefined_variable_in_when() {
    let out = invalid(&runbook_with(
        r#"
[[phases.steps]]
run = "make deploy"
when = "enviroment == 'production'"

[vars]
environment = "staging"
"#,
    ));
    insta::assert_snapshot!(out.stderr);
}

#[test]
fn capture_used_before_it_is_captured() {
    let out = invalid(&runbook_with(
        r#"
[[phases.steps]]
id = "deploy"
run = "deploy --digest {{ digest }}"

[[phases.steps]]
id = "build"
run = "make build"
capture = "digest"
"#,
    ));
    insta::assert_snapshot!(out.stderr);
}

#[test]
fn capture_is_not_visible_to_runbook_rollback() {
    // The runbook-level rollback runs when no run state exists: no capture is available there.
    let out = invalid(&runbook_with(
        r#"
[[phases.steps]]
id = "build"
run = "make build"
capture = "digest"

[[rollback]]
run = "undeploy {{ digest }}"
"#,
    ));
    insta::assert_snapshot!(out.stderr);
}

#[test]
fn unknown_builtin_attribute() {
    let out = invalid(&runbook_with(
        r#"
[[phases.steps]]
run = "echo {{ run.idd }} {{ phase.name }} {{ step.id }}"
"#,
    ));
    assert_eq!(problem_count(&out), 2);
    insta::assert_snapshot!(out.stderr);
}

#[test]
fn phase_attribute_outside_a_phase() {
    let out = invalid(&runbook_with(
        r#"
[[phases.steps]]
run = "make deploy"

[[rollback]]
run = "echo rolling back {{ phase.id }}"
"#,
    ));
    insta::assert_snapshot!(out.stderr);
}

#[test]
fn env_not_declared() {
    let out = invalid(&runbook_with(
        r#"
[[phases.steps]]
run = "deploy --region {{ env.AWS_REGON }} --home {{ env.HOME }}"
env = { DEPLOY_USER = "ci" }

[defaults]
env = { AWS_REGION = "us-east-1" }
"#,
    ));
    assert_eq!(problem_count(&out), 2);
    insta::assert_snapshot!(out.stderr);
}

#[test]
fn template_syntax_error_is_located() {
    let out = invalid(&runbook_with(
        r#"
[[phases.steps]]
run = """
make build
deploy --tag {{ image_tag
"""

[[phases.steps]]
confirm = "Deploy {% if image_tag %}{{ image_tag }}?"

[vars]
image_tag = "v1"
"#,
    ));
    assert_eq!(problem_count(&out), 2);
    insta::assert_snapshot!(out.stderr);
}

#[test]
fn unknown_filter_test_and_function() {
    // Each is located, and the templates around them are still checked (`image_tg`).
    let out = invalid(&runbook_with(
        r#"
[[phases.steps]]
run = "deploy --tag {{ image_tag | uppper }} --n {{ cont(n=2) }}"

[[phases.steps]]
confirm = "Deploy {{ image_tg }}?"

[[phases.steps]]
pause = "{% if image_tag is strng %}ok{% endif %}"

[vars]
image_tag = "v1"
"#,
    ));
    assert_eq!(problem_count(&out), 4);
    insta::assert_snapshot!(out.stderr);
}

#[test]
fn safe_filter_is_refused() {
    let out = invalid(&runbook_with(
        r#"
[[phases.steps]]
run = 'deploy --tag {{ image_tag | safe }}'

[vars]
image_tag = "v1"
"#,
    ));
    insta::assert_snapshot!(out.stderr);
}

#[test]
fn forbidden_tags_are_refused() {
    // `include` is refused, and the template's neighbours are still checked (`image_tg`).
    let out = invalid(&runbook_with(
        r#"
[[phases.steps]]
run = '''deploy {% include "secrets.txt" %} --tag {{ image_tag }}'''

[[phases.steps]]
pause = '{% extends "base" %}'

[[phases.steps]]
run = "deploy --tag {{ image_tg }}"

[vars]
image_tag = "v1"
"#,
    ));
    assert_eq!(problem_count(&out), 3);
    insta::assert_snapshot!(out.stderr);
}

#[test]
fn interpolation_inside_single_quotes() {
    let out = invalid(&runbook_with(
        r#"
[[phases.steps]]
run = """
echo '{{ image_tag }}'
"""

[vars]
image_tag = "v1"
"#,
    ));
    insta::assert_snapshot!(out.stderr);
}

#[test]
fn interpolation_inside_double_quotes() {
    let out = invalid(&runbook_with(
        r#"
[[phases.steps]]
run = '''
echo "deploying {{ image_tag }} now"
'''

[vars]
image_tag = "v1"
"#,
    ));
    insta::assert_snapshot!(out.stderr);
}

#[test]
fn interpolation_inside_a_comment() {
    let out = invalid(&runbook_with(
        r#"
[[phases.steps]]
run = """
make deploy  # tag {{ image_tag }}
"""

[vars]
image_tag = "v1"
"#,
    ));
    insta::assert_snapshot!(out.stderr);
}

#[test]
fn interpolation_inside_a_heredoc() {
    let out = invalid(&runbook_with(
        r#"
[[phases.steps]]
run = """
cat > release.txt <<EOF
tag: {{ image_tag }}
EOF
deploy --tag {{ image_tag }}
"""

[vars]
image_tag = "v1"
"#,
    ));
    // Only the line inside the heredoc: after `EOF` the command is plain shell again.
    assert_eq!(problem_count(&out), 1);
    insta::assert_snapshot!(out.stderr);
}

#[test]
fn env_names_that_are_not_environment_variable_names() {
    let out = invalid(&runbook_with(
        r#"
[[phases.steps]]
run = "make deploy"
env = { "1TOKEN" = "x", "A-B" = "y", GOOD_ONE = "z" }
"#,
    ));
    assert_eq!(problem_count(&out), 2);
    out.stderr_has("error: `1TOKEN` is not a valid environment variable name")
        .stderr_has("error: `A-B` is not a valid environment variable name")
        .stderr_has("use letters, digits and `_`, not starting with a digit")
        .stderr_has("runbook.toml:10:");
}

#[test]
fn bad_durations() {
    let out = invalid(&runbook_with(
        r#"
[[phases.steps]]
wait = "10"

[[phases.steps]]
wait = "5x"

[[phases.steps]]
run = "make deploy"
timeout = "1.5h"

[[phases.steps]]
run = "make deploy"
timeout = "400d"
"#,
    ));
    assert_eq!(problem_count(&out), 4);
    insta::assert_snapshot!(out.stderr);
}

#[test]
fn bad_thresholds() {
    let out = invalid(&runbook_with(
        r#"
[[phases.steps]]
metric = "up"
condition = "~ 3"

[[phases.steps]]
metric = "up"
condition = "between 5 and 1"

[[phases.steps]]
metric = "up"
condition = "<"

[[phases.steps]]
metric = "up"

[[phases.abort_when]]
metric = "up"
condition = "> lots"
"#,
    ));
    assert_eq!(problem_count(&out), 5);
    insta::assert_snapshot!(out.stderr);
}

#[test]
fn empty_metric_query() {
    let out = invalid(&runbook_with(
        r#"
[[phases.steps]]
metric = "   "
condition = "< 0.01"
"#,
    ));
    insta::assert_snapshot!(out.stderr);
}

#[test]
fn bad_sampling_window() {
    let out = invalid(&runbook_with(
        r#"
[[phases.steps]]
metric = "up"
condition = "== 1"
for = "1m"
every = "2m"

[[phases.steps]]
metric = "up"
condition = "== 1"
for = "10m"
samples = 5
"#,
    ));
    assert_eq!(problem_count(&out), 2);
    insta::assert_snapshot!(out.stderr);
}

#[test]
fn signoff_needs_more_signers_than_roles() {
    let out = invalid(&runbook_with(
        r#"
[[phases.steps]]
signoff = "Release review"
roles = ["Backend Lead", "QA Lead"]
required = 3
"#,
    ));
    insta::assert_snapshot!(out.stderr);
}

#[test]
fn signoff_needs_more_signers_than_approvers() {
    let out = invalid(&runbook_with(
        r#"
[[phases.steps]]
signoff = "Release review"
roles = [
  { role = "Backend Lead", approvers = ["alice"] },
  { role = "DevOps Lead", approvers = ["alice"] },
]
"#,
    ));
    insta::assert_snapshot!(out.stderr);
}

#[test]
fn signoff_with_empty_approvers() {
    let out = invalid(&runbook_with(
        r#"
[[phases.steps]]
signoff = "Release review"
roles = [{ role = "Backend Lead", approvers = [] }]
"#,
    ));
    // One problem, not a second "0 people may sign" echo of it.
    assert_eq!(problem_count(&out), 1);
    insta::assert_snapshot!(out.stderr);
}

#[test]
fn signoff_without_roles() {
    let out = invalid(&runbook_with(
        r#"
[[phases.steps]]
signoff = "Release review"

[[phases.steps]]
signoff = "Release review"
roles = []
required = 0
"#,
    ));
    assert_eq!(problem_count(&out), 3);
    insta::assert_snapshot!(out.stderr);
}

#[test]
fn repeat_of_an_unknown_id() {
    let out = invalid(&runbook_with(
        r#"
[[phases.steps]]
id = "error-rate"
metric = "up"
condition = "== 1"

[[phases.steps]]
repeat = "eror-rate"
"#,
    ));
    insta::assert_snapshot!(out.stderr);
}

#[test]
fn repeat_of_a_later_step() {
    let out = invalid(&runbook_with(
        r#"
[[phases.steps]]
repeat = "error-rate"

[[phases.steps]]
id = "error-rate"
metric = "up"
condition = "== 1"
"#,
    ));
    insta::assert_snapshot!(out.stderr);
}

#[test]
fn repeat_of_a_run_step() {
    let out = invalid(&runbook_with(
        r#"
[[phases.steps]]
id = "migrate"
run = "make migrate"

[[phases.steps]]
repeat = "migrate"
"#,
    ));
    insta::assert_snapshot!(out.stderr);
}

#[test]
fn repeat_in_a_rollback() {
    let out = invalid(&runbook_with(
        r#"
[[phases.steps]]
id = "error-rate"
metric = "up"
condition = "== 1"

[[phases.rollback]]
repeat = "error-rate"
"#,
    ));
    insta::assert_snapshot!(out.stderr);
}

#[test]
fn secret_with_default() {
    let out = invalid(&runbook_with(
        r#"
[[phases.steps]]
run = "make deploy"

[vars.api_token]
secret = { env = "API_TOKEN" }
default = "hunter2"
"#,
    ));
    insta::assert_snapshot!(out.stderr);
}

#[test]
fn secret_with_two_sources() {
    let out = invalid(&runbook_with(
        r#"
[[phases.steps]]
run = "make deploy"

[vars.api_token]
secret = { env = "API_TOKEN", file = "/run/secrets/token" }
"#,
    ));
    insta::assert_snapshot!(out.stderr);
}

#[test]
fn required_variable_with_default() {
    let out = invalid(&runbook_with(
        r#"
[[phases.steps]]
run = "make deploy"

[vars.environment]
required = true
default = "staging"
"#,
    ));
    insta::assert_snapshot!(out.stderr);
}

#[test]
fn default_not_in_allowed() {
    let out = invalid(&runbook_with(
        r#"
[[phases.steps]]
run = "make deploy"

[vars.environment]
allowed = ["staging", "production"]
default = "prod"
"#,
    ));
    insta::assert_snapshot!(out.stderr);
}

#[test]
fn variable_declarations() {
    let out = invalid(&runbook_with(
        r#"
[[phases.steps]]
run = "make deploy"

[vars]
Region = "eu"
env = "prod"

[vars.replicas]
type = "integer"
default = "three"

[vars.wait]
type = "duration"
default = "soon"

[vars.tier]
type = "strng"
"#,
    ));
    assert_eq!(problem_count(&out), 5);
    insta::assert_snapshot!(out.stderr);
}

#[test]
fn failure_limit_tolerates_every_measurement() {
    let out = invalid(&runbook_with(
        r#"
[[phases.steps]]
metric = "up"
condition = "== 1"
samples = 3
failure_limit = 3

[[phases.steps]]
metric = "up"
condition = "== 1"
for = "5m"
every = "1m"
failure_limit = 7
"#,
    ));
    assert_eq!(problem_count(&out), 2);
    insta::assert_snapshot!(out.stderr);
}

#[test]
fn capture_on_a_step_without_output() {
    let out = invalid(&runbook_with(
        r#"
[[phases.steps]]
confirm = "Ship it?"
capture = "answer"

[[phases.steps]]
run = "make build"
capture = "Digest"
"#,
    ));
    assert_eq!(problem_count(&out), 2);
    insta::assert_snapshot!(out.stderr);
}

#[test]
fn many_problems_are_reported_at_once() {
    let out = invalid(
        r#"nme = "checkout"

[runbook]
name = "checkout"
risk = "extreme"

[defaults]
timeout = "forever"

[vars.environment]
allowed = ["staging", "production"]
default = "prod"

[vars.api_token]
secret = { env = "API_TOKEN" }
default = "x"

[[phases]]
id = "Staging"
title = "Staging"
on_failure = "explode"

[[phases.steps]]
id = "build"
run = "make build TAG={{ image_tag }}"
capture = "digest"

[[phases.steps]]
id = "build"
run = "echo '{{ digest }}'"

[[phases.steps]]
metric = ""
condition = "about 1"

[[phases.steps]]
signoff = "Go?"
roles = ["Lead"]
required = 2

[[phases.steps]]
repeat = "biuld"

[[phases.steps]]
run = "deploy {{ env.REGION }} {{ run.idd }}"
kubectl = ["apply"]
"#,
    );
    assert_eq!(problem_count(&out), 15);
    insta::assert_snapshot!(out.stderr);
}

#[test]
fn bad_variable_values_on_validate_are_a_usage_error() {
    let out = Test::new()
        .runbook(&runbook_with(
            "\n[[phases.steps]]\nrun = \"make deploy\"\n\n[vars]\nimage_tag = \"v1\"\n",
        ))
        .args(["validate", RUNBOOK, "--var", "image_tga=v2"])
        .status(2);
    insta::assert_snapshot!(out.stderr);
}

#[test]
fn when_syntax_error() {
    let out = invalid(&runbook_with(
        r#"
[[phases.steps]]
run = "make deploy"
when = "environment =="

[vars]
environment = "staging"
"#,
    ));
    insta::assert_snapshot!(out.stderr);
}

#[test]
fn capture_with_a_reserved_name() {
    // `run` would hide the built-in `run.id`, `run.operator`, ... for every later step.
    let out = invalid(&runbook_with(
        r#"
[[phases.steps]]
run = "make build"
capture = "run"

[[phases.steps]]
run = "echo {{ run.id }}"
"#,
    ));
    insta::assert_snapshot!(out.stderr);
}

#[test]
fn repeat_of_an_id_shared_by_a_phase_and_a_step() {
    let out = invalid(
        r#"[runbook]
name = "checkout"

[[phases]]
id = "canary"
title = "Canary"

[[phases.steps]]
id = "canary"
metric = "up"
condition = "== 1"

[[phases.gate]]
checklist = ["dashboards are green"]

[[phases]]
id = "full"
title = "Full"

[[phases.steps]]
repeat = "canary"
"#,
    );
    insta::assert_snapshot!(out.stderr);
}
