//! `rollout plan`: the rendered preview of a run, in text and JSON. Variable precedence and
//! errors, secrets masking, kubectl invocations, `when` decisions, captures, gates, checks and
//! rollbacks; and that a plan executes and writes nothing.

use std::collections::BTreeSet;
use std::path::Path;

use serde_json::{Value, json};

use crate::harness::{Outcome, RUNBOOK, Test};

/// Every step kind, kubectl defaults and overrides, a secret, a capture, `when` conditions that
/// decide each way, a gate, abort criteria and both kinds of rollback.
const EVERY_KIND: &str = r##"[runbook]
name = "checkout-deploy"
description = "Ship the checkout service."
owner = "payments"
risk = "high"
version = "2.1"

[vars]
image_tag = "v1.2.3"
replicas = 3
canary = true

[vars.environment]
description = "Target environment"
required = true
allowed = ["staging", "production"]

[vars.api_token]
description = "Token for the health endpoint"
secret = { env = "CHECKOUT_TOKEN" }

[defaults]
timeout = "10m"
prometheus = "http://prometheus:9090"
env = { AWS_REGION = "us-east-1" }

[defaults.kubectl]
context = "prod-cluster"
namespace = "{{ environment }}"

[[phases]]
id = "build"
title = "Build"
on_failure = "abort"

[[phases.steps]]
id = "image"
name = "Build the image"
run = """
docker build -t checkout:{{ image_tag }} .
docker push checkout:{{ image_tag }}
"""
capture = "digest"
retry = { attempts = 3, delay = "10s" }
idempotent = true

[[phases.steps]]
id = "announce"
run = "echo deploying {{ digest }} by {{ run.operator }} in {{ phase.title }}"
env = { SLACK_CHANNEL = "#deploys" }
when = "digest != ''"

[[phases]]
id = "canary"
title = "Canary"
on_failure = "rollback"

[[phases.steps]]
id = "approve"
confirm = "Deploy {{ image_tag }} to {{ environment }}?"
type_to_confirm = "{{ environment }}"
deadline = "30m"
on_deadline = "hold"

[[phases.steps]]
id = "set-image"
kubectl = ["set", "image", "deployment/checkout", "checkout=checkout:{{ image_tag }}"]

[[phases.steps]]
id = "scale"
kubectl = ["scale", "deployment/checkout", "--replicas={{ replicas }}"]
context = "canary-cluster"
namespace = "canary"
when = "canary"

[[phases.steps]]
id = "staging-only"
run = "echo only in staging"
when = "environment == 'staging'"

[[phases.steps]]
id = "health"
http = "https://checkout.example.com/health"
headers = { Authorization = "Bearer {{ api_token }}" }
expect_status = [200, 204]
expect_json = { pointer = "/status", equals = "SERVING" }
max_latency = "500ms"

[[phases.steps]]
id = "error-rate"
metric = 'sum(rate(http_requests_total{code=~"5..",env="{{ environment }}"}[5m]))'
condition = "< 0.01"
for = "10m"
every = "30s"
failure_limit = 2
no_data = "fail"

[[phases.steps]]
id = "latency"
metric = "histogram_quantile(0.99, rate(latency_bucket[5m]))"
condition = "between 0.1 and 0.5"
samples = 5
every = "1m"
prometheus = "http://canary-prometheus:9090"

[[phases.steps]]
id = "soak"
wait = "15m"

[[phases.steps]]
id = "look"
pause = "Check the dashboards, then `rollout resume`."

[[phases.gate]]
id = "go-no-go"
checklist = ["Error rate is flat", "Latency p99 under {{ replicas }}00ms"]

[[phases.gate]]
id = "leads"
signoff = "Canary review"
roles = [{ role = "Backend Lead", approvers = ["alice", "bob"] }, "QA Lead"]
required = 2
exclude_operator = true

[[phases.abort_when]]
name = "error rate above 5%"
metric = 'sum(rate(http_requests_total{code=~"5.."}[1m]))'
condition = "> 0.05"
for = "2m"

[[phases.rollback]]
id = "undo"
kubectl = ["rollout", "undo", "deployment/checkout"]

[[phases]]
id = "full"
title = "Full rollout"

[[phases.steps]]
id = "recheck"
repeat = "canary"

[[rollback]]
id = "restore"
run = "deploy --tag {{ image_tag }} --env {{ environment }} --rollback"
"##;

const SECRET: &str = "s3cr3t-T0ken-value";

fn plan_every_kind(format: &str) -> Outcome {
    Test::new()
        .runbook(EVERY_KIND)
        .env("CHECKOUT_TOKEN", SECRET)
        .env("ROLLOUT_OPERATOR", "tester")
        .args([
            "plan",
            RUNBOOK,
            "--var",
            "environment=production",
            "--format",
            format,
        ])
        .status(0)
}

/// Replaces the test's temporary directory (as given and canonicalized) with `[dir]`.
fn redact_dir(out: &Outcome, text: &str) -> String {
    let mut text = text.to_string();
    if let Ok(real) = std::fs::canonicalize(&out.dir) {
        text = text.replace(&real.display().to_string(), "[dir]");
    }
    text.replace(&out.dir.display().to_string(), "[dir]")
}

/// The step with `id`, wherever it is in the plan (steps, gates, rollbacks).
fn step<'p>(plan: &'p Value, id: &str) -> &'p Value {
    let phases = plan["phases"].as_array().expect("phases");
    phases
        .iter()
        .flat_map(|p| ["steps", "gate", "rollback"].map(|k| &p[k]))
        .chain([&plan["rollback"]])
        .filter_map(Value::as_array)
        .flatten()
        .find(|s| s["id"] == id)
        .unwrap_or_else(|| panic!("no step `{id}` in the plan"))
}

fn variable<'p>(plan: &'p Value, name: &str) -> &'p Value {
    plan["variables"]
        .as_array()
        .expect("variables")
        .iter()
        .find(|v| v["name"] == name)
        .unwrap_or_else(|| panic!("no variable `{name}` in the plan"))
}

#[test]
fn text_plan_of_every_step_kind() {
    let out = plan_every_kind("text");
    assert_eq!(out.stderr, "");
    insta::assert_snapshot!(redact_dir(&out, &out.stdout));
}

#[test]
fn json_plan_is_versioned_json() {
    let plan = plan_every_kind("json").json();
    assert_eq!(plan["format_version"], 1);
    assert_eq!(plan["runbook"]["name"], "checkout-deploy");
    assert_eq!(plan["runbook"]["risk"], "high");
    assert!(
        plan["runbook"]["digest"]
            .as_str()
            .is_some_and(|d| d.starts_with("sha256:") && d.len() == 7 + 64)
    );
    let kinds: Vec<&str> = plan["phases"]
        .as_array()
        .unwrap()
        .iter()
        .flat_map(|p| ["steps", "gate", "rollback"].map(|k| p[k].as_array().unwrap()))
        .chain([plan["rollback"].as_array().unwrap()])
        .flatten()
        .map(|s| s["action"]["kind"].as_str().unwrap())
        .collect();
    let distinct: BTreeSet<&str> = kinds.iter().copied().collect();
    assert_eq!(
        distinct,
        BTreeSet::from([
            "checklist",
            "confirm",
            "http",
            "kubectl",
            "metric",
            "pause",
            "repeat",
            "run",
            "signoff",
            "wait"
        ])
    );
}

#[test]
fn shell_commands_are_rendered() {
    let plan = plan_every_kind("json").json();
    let image = &step(&plan, "image")["action"];
    assert_eq!(
        image["command"],
        "docker build -t checkout:v1.2.3 .\ndocker push checkout:v1.2.3\n"
    );
    assert_eq!(
        image["argv"],
        json!([
            "bash",
            "-euo",
            "pipefail",
            "-c",
            "docker build -t checkout:v1.2.3 .\ndocker push checkout:v1.2.3\n"
        ])
    );
    assert_eq!(image["env"], json!({ "AWS_REGION": "us-east-1" }));
    let announce = &step(&plan, "announce")["action"];
    assert_eq!(
        announce["env"],
        json!({ "AWS_REGION": "us-east-1", "SLACK_CHANNEL": "#deploys" })
    );
    assert_eq!(
        plan["exported_env"]["ROLLOUT_VAR_IMAGE_TAG"], "v1.2.3",
        "every variable is exported"
    );
}

#[test]
fn kubectl_argv_has_context_and_namespace_from_defaults_and_overrides() {
    let plan = plan_every_kind("json").json();
    assert_eq!(
        step(&plan, "set-image")["action"]["argv"],
        json!([
            "kubectl",
            "--context",
            "prod-cluster",
            "--namespace",
            "production",
            "set",
            "image",
            "deployment/checkout",
            "checkout=checkout:v1.2.3"
        ])
    );
    assert_eq!(
        step(&plan, "scale")["action"]["argv"],
        json!([
            "kubectl",
            "--context",
            "canary-cluster",
            "--namespace",
            "canary",
            "scale",
            "deployment/checkout",
            "--replicas=3"
        ])
    );
}

const KUBECTL_BINARY: &str = r#"[runbook]
name = "k"

[defaults.kubectl]
binary = "kubectl-1.28"

[[phases]]
id = "p"
title = "P"

[[phases.steps]]
id = "pods"
kubectl = ["get", "pods"]
"#;

#[test]
fn kubectl_binary_from_defaults() {
    let plan = Test::new()
        .runbook(KUBECTL_BINARY)
        .args(["plan", RUNBOOK, "--format", "json"])
        .status(0)
        .json();
    assert_eq!(
        step(&plan, "pods")["action"]["argv"],
        json!(["kubectl-1.28", "get", "pods"])
    );
}

#[test]
fn kubectl_env_var_overrides_the_binary() {
    let out = Test::new()
        .runbook(KUBECTL_BINARY)
        .env("KUBECTL", "/opt/k8s/bin/kubectl")
        .args(["plan", RUNBOOK, "--format", "json"])
        .status(0);
    assert_eq!(
        step(&out.json(), "pods")["action"]["argv"],
        json!(["/opt/k8s/bin/kubectl", "get", "pods"])
    );
    let text = Test::new()
        .runbook(KUBECTL_BINARY)
        .env("KUBECTL", "/opt/k8s/bin/kubectl")
        .args(["plan", RUNBOOK])
        .status(0);
    text.stdout_has("$ /opt/k8s/bin/kubectl get pods");
}

#[test]
fn secrets_are_masked_in_text_and_json() {
    for format in ["text", "json"] {
        let out = plan_every_kind(format);
        assert!(
            !out.stdout.contains(SECRET) && !out.stderr.contains(SECRET),
            "the secret leaked in the {format} plan"
        );
        out.stdout_has("Bearer ******");
    }
    let plan = plan_every_kind("json").json();
    let token = variable(&plan, "api_token");
    assert_eq!(token["secret"], true);
    assert_eq!(token["value"], Value::Null);
    assert_eq!(
        token["origin"],
        json!({ "kind": "secret", "detail": { "env": "CHECKOUT_TOKEN" } })
    );
    assert_eq!(plan["exported_env"]["ROLLOUT_VAR_API_TOKEN"], "******");
    assert_eq!(
        step(&plan, "health")["action"]["headers"],
        json!({ "Authorization": "Bearer ******" })
    );
}

#[test]
fn secret_in_a_shell_command_is_masked() {
    let out = Test::new()
        .runbook(
            r#"[runbook]
name = "s"

[vars.token]
secret = { env = "TOKEN" }

[[phases]]
id = "p"
title = "P"

[[phases.steps]]
id = "login"
run = "login --token {{ token }}"
"#,
        )
        .env("TOKEN", SECRET)
        .args(["plan", RUNBOOK, "--format", "json"])
        .status(0);
    assert!(!out.stdout.contains(SECRET));
    assert_eq!(
        step(&out.json(), "login")["action"]["command"],
        "login --token '******'"
    );
}

#[test]
fn secret_cannot_be_set_on_the_command_line() {
    let out = Test::new()
        .runbook(EVERY_KIND)
        .args([
            "plan",
            RUNBOOK,
            "--var",
            "environment=production",
            "--var",
            &format!("api_token={SECRET}"),
        ])
        .status(2);
    assert!(
        !out.stderr.contains(SECRET),
        "the value was echoed:\n{}",
        out.stderr
    );
    insta::assert_snapshot!(out.stderr);
}

#[test]
fn when_decisions() {
    let plan = plan_every_kind("json").json();
    assert_eq!(
        step(&plan, "announce")["when"],
        json!({
            "expression": "digest != ''",
            "decision": "at_run_time",
            "depends_on": [{ "name": "digest", "captured_by": "image" }]
        })
    );
    assert_eq!(
        step(&plan, "scale")["when"],
        json!({ "expression": "canary", "decision": "run" })
    );
    assert_eq!(
        step(&plan, "staging-only")["when"],
        json!({ "expression": "environment == 'staging'", "decision": "skip" })
    );
    assert!(step(&plan, "image").get("when").is_none());
    let staging = Test::new()
        .runbook(EVERY_KIND)
        .args([
            "plan",
            RUNBOOK,
            "--var",
            "environment=staging",
            "--format",
            "json",
        ])
        .status(0)
        .json();
    assert_eq!(step(&staging, "staging-only")["when"]["decision"], "run");
}

#[test]
fn captures_are_shown_as_placeholders() {
    let plan = plan_every_kind("json").json();
    assert_eq!(step(&plan, "image")["capture"], "digest");
    assert_eq!(
        step(&plan, "announce")["action"]["command"],
        "echo deploying '<output of step image>' by tester in Build"
    );
}

#[test]
fn gates_with_roles_and_approvers() {
    let plan = plan_every_kind("json").json();
    let canary = &plan["phases"][1];
    let gate: Vec<&str> = canary["gate"]
        .as_array()
        .unwrap()
        .iter()
        .map(|s| s["id"].as_str().unwrap())
        .collect();
    assert_eq!(gate, ["go-no-go", "leads"]);
    assert_eq!(
        step(&plan, "leads")["action"],
        json!({
            "kind": "signoff",
            "title": "Canary review",
            "roles": [
                { "role": "Backend Lead", "approvers": ["alice", "bob"] },
                { "role": "QA Lead", "approvers": null }
            ],
            "required": 2,
            "exclude_operator": true
        })
    );
    assert_eq!(
        step(&plan, "go-no-go")["action"]["items"],
        json!(["Error rate is flat", "Latency p99 under 300ms"])
    );
    assert_eq!(
        step(&plan, "approve")["action"],
        json!({
            "kind": "confirm",
            "question": "Deploy v1.2.3 to production?",
            "type_to_confirm": "production"
        })
    );
    assert_eq!(
        step(&plan, "approve")["deadline"],
        json!({ "after": "30m", "then": "hold" })
    );
    assert_eq!(
        step(&plan, "recheck")["action"],
        json!({ "kind": "repeat", "target": "canary", "steps": ["go-no-go", "leads"] })
    );
}

#[test]
fn metric_thresholds_and_windows() {
    let plan = plan_every_kind("json").json();
    assert_eq!(
        step(&plan, "error-rate")["action"],
        json!({
            "kind": "metric",
            "query": "sum(rate(http_requests_total{code=~\"5..\",env=\"production\"}[5m]))",
            "condition": { "op": "lt", "value": 0.01 },
            "sampling": { "kind": "window", "window": "10m", "every": "30s" },
            "failure_limit": 2,
            "successes": 1,
            "no_data": "fail",
            "on_error": "inconclusive",
            "prometheus": "http://prometheus:9090"
        })
    );
    let latency = &step(&plan, "latency")["action"];
    assert_eq!(
        latency["condition"],
        json!({ "op": "between", "low": 0.1, "high": 0.5 })
    );
    assert_eq!(
        latency["sampling"],
        json!({ "kind": "count", "samples": 5, "every": "1m" })
    );
    assert_eq!(latency["prometheus"], "http://canary-prometheus:9090");
    assert_eq!(
        plan["phases"][1]["abort_when"],
        json!([{
            "id": "canary-abort-1",
            "name": "error rate above 5%",
            "scope": "phase",
            "kind": "metric",
            "query": "sum(rate(http_requests_total{code=~\"5..\"}[1m]))",
            "condition": { "op": "gt", "value": 0.05 },
            "for": "2m",
            "every": "15s",
            "action": "rollback",
            "prometheus": "http://prometheus:9090"
        }])
    );
    let health = &step(&plan, "health")["action"];
    assert_eq!(health["expect_status"], json!([200, 204]));
    assert_eq!(
        health["expect_json"],
        json!({ "pointer": "/status", "equals": "SERVING" })
    );
    assert_eq!(health["max_latency"], "500ms");
}

#[test]
fn phase_and_runbook_rollback() {
    let plan = plan_every_kind("json").json();
    let undo = plan["phases"][1]["rollback"].as_array().unwrap();
    assert_eq!(undo.len(), 1);
    assert_eq!(
        undo[0]["action"]["argv"],
        json!([
            "kubectl",
            "--context",
            "prod-cluster",
            "--namespace",
            "production",
            "rollout",
            "undo",
            "deployment/checkout"
        ])
    );
    let restore = plan["rollback"].as_array().unwrap();
    assert_eq!(restore.len(), 1);
    assert_eq!(
        restore[0]["action"]["command"],
        "deploy --tag v1.2.3 --env production --rollback"
    );
    let text = plan_every_kind("text");
    text.stdout_has("rollback of this phase:")
        .stdout_has("Runbook rollback (for incidents, `rollout rollback`)");
}

#[test]
fn small_json_plan() {
    let out = Test::new()
        .runbook(
            r#"[runbook]
name = "small"

[vars]
tag = "v1"

[vars.token]
secret = { env = "TOKEN" }

[[phases]]
id = "deploy"
title = "Deploy"

[[phases.steps]]
id = "ship"
run = "ship {{ tag }}"
capture = "out"

[[phases.steps]]
id = "check"
http = "https://example.com/{{ out }}"
headers = { Authorization = "Bearer {{ token }}" }
"#,
        )
        .env("TOKEN", SECRET)
        .args(["plan", RUNBOOK, "--format", "json"])
        .status(0);
    assert!(!out.stdout.contains(SECRET));
    out.json();
    insta::assert_snapshot!(redact_dir(&out, &out.stdout));
}

// Variables: precedence `--var` > `--vars-file` > `ROLLOUT_VAR_<NAME>` > default.

const TAGGED: &str = r#"[runbook]
name = "tagged"

[vars]
tag = "from-default"

[[phases]]
id = "p"
title = "P"

[[phases.steps]]
id = "show"
run = "echo {{ tag }}"
"#;

/// The value and origin of `tag` in the plan.
fn tag_of(test: Test, args: &[&str]) -> (String, Value) {
    let plan = test
        .args(["plan", RUNBOOK, "--format", "json"])
        .args(args.iter().copied())
        .status(0)
        .json();
    let tag = variable(&plan, "tag");
    assert_eq!(
        step(&plan, "show")["action"]["command"],
        format!("echo {}", tag["value"].as_str().unwrap())
    );
    (
        tag["value"].as_str().unwrap().to_string(),
        tag["origin"].clone(),
    )
}

#[test]
fn default_is_used_when_nothing_is_given() {
    let (value, origin) = tag_of(Test::new().runbook(TAGGED), &[]);
    assert_eq!(value, "from-default");
    assert_eq!(origin, json!({ "kind": "default" }));
}

#[test]
fn env_beats_default() {
    let (value, origin) = tag_of(
        Test::new()
            .runbook(TAGGED)
            .env("ROLLOUT_VAR_TAG", "from-env"),
        &[],
    );
    assert_eq!(value, "from-env");
    assert_eq!(
        origin,
        json!({ "kind": "env", "detail": "ROLLOUT_VAR_TAG" })
    );
}

#[test]
fn vars_file_beats_env() {
    let (value, origin) = tag_of(
        Test::new()
            .runbook(TAGGED)
            .file("vars.toml", "tag = \"from-file\"\n")
            .env("ROLLOUT_VAR_TAG", "from-env"),
        &["--vars-file", "vars.toml"],
    );
    assert_eq!(value, "from-file");
    assert_eq!(origin, json!({ "kind": "file", "detail": "vars.toml" }));
}

#[test]
fn var_flag_beats_vars_file() {
    let (value, origin) = tag_of(
        Test::new()
            .runbook(TAGGED)
            .file("vars.toml", "tag = \"from-file\"\n")
            .env("ROLLOUT_VAR_TAG", "from-env"),
        &["--var", "tag=from-flag", "--vars-file", "vars.toml"],
    );
    assert_eq!(value, "from-flag");
    assert_eq!(origin, json!({ "kind": "flag" }));
}

#[test]
fn later_vars_file_and_later_flag_win() {
    let (value, _) = tag_of(
        Test::new()
            .runbook(TAGGED)
            .file("a.toml", "tag = \"from-a\"\n")
            .file("b.toml", "tag = \"from-b\"\n"),
        &["--vars-file", "a.toml", "--vars-file", "b.toml"],
    );
    assert_eq!(value, "from-b");
    let (value, _) = tag_of(
        Test::new().runbook(TAGGED),
        &["--var", "tag=first", "--var", "tag=second"],
    );
    assert_eq!(value, "second");
}

#[test]
fn a_value_with_equals_signs_and_spaces_is_one_value() {
    let plan = Test::new()
        .runbook(TAGGED)
        .args(["plan", RUNBOOK, "--format", "json", "--var", "tag=a=b c"])
        .status(0)
        .json();
    assert_eq!(step(&plan, "show")["action"]["command"], "echo 'a=b c'");
}

#[test]
fn unknown_var_with_suggestion() {
    let out = Test::new()
        .runbook(TAGGED)
        .file("vars.toml", "tga = \"x\"\n")
        .args([
            "plan",
            RUNBOOK,
            "--var",
            "tagg=v2",
            "--vars-file",
            "vars.toml",
            "--var",
            "zzz=1",
        ])
        .status(2);
    assert!(out.stdout.is_empty());
    insta::assert_snapshot!(out.stderr);
}

#[test]
fn malformed_var_flag() {
    let out = Test::new()
        .runbook(TAGGED)
        .args(["plan", RUNBOOK, "--var", "tag"])
        .status(2);
    insta::assert_snapshot!(out.stderr);
}

#[test]
fn bad_vars_file() {
    let out = Test::new()
        .runbook(TAGGED)
        .file("vars.toml", "tag = [1, 2]\n")
        .file("broken.toml", "tag = \n")
        .args([
            "plan",
            RUNBOOK,
            "--vars-file",
            "vars.toml",
            "--vars-file",
            "broken.toml",
            "--vars-file",
            "missing.toml",
        ])
        .status(2);
    out.stderr_has("vars.toml")
        .stderr_has("broken.toml")
        .stderr_has("missing.toml");
    assert!(!out.stderr.contains("panicked"));
}

#[test]
fn missing_required_var() {
    let out = Test::new()
        .runbook(EVERY_KIND)
        .args(["plan", RUNBOOK])
        .status(2);
    assert!(out.stdout.is_empty());
    insta::assert_snapshot!(out.stderr);
}

const TYPED: &str = r#"[runbook]
name = "typed"

[vars.replicas]
type = "integer"
default = 1

[vars.canary]
type = "boolean"
default = false

[vars.soak]
type = "duration"
default = "1h"

[vars.environment]
allowed = ["staging", "production"]
default = "staging"

[[phases]]
id = "p"
title = "P"

[[phases.steps]]
id = "show"
run = "echo {{ replicas }} {{ canary }} {{ soak }} {{ environment }}"
"#;

#[test]
fn typed_values_are_checked() {
    let out = Test::new()
        .runbook(TYPED)
        .args([
            "plan",
            RUNBOOK,
            "--var",
            "replicas=three",
            "--var",
            "canary=yes",
            "--var",
            "soak=1.5h",
            "--var",
            "environment=prod",
        ])
        .status(2);
    // Every bad value at once.
    assert_eq!(
        out.stderr
            .lines()
            .filter(|l| l.starts_with("error: "))
            .count(),
        4
    );
    insta::assert_snapshot!(out.stderr);
}

#[test]
fn each_typed_value_alone_is_a_usage_error() {
    for (assignment, needle) in [
        ("replicas=3.5", "is not an integer"),
        ("canary=1", "is not `true` or `false`"),
        ("soak=10", "is not a duration"),
        ("environment=Production", "is not allowed"),
    ] {
        let out = Test::new()
            .runbook(TYPED)
            .args(["plan", RUNBOOK, "--var", assignment])
            .status(2);
        out.stderr_has(needle);
    }
    let env = Test::new()
        .runbook(TYPED)
        .env("ROLLOUT_VAR_REPLICAS", "many")
        .args(["plan", RUNBOOK])
        .status(2);
    env.stderr_has("ROLLOUT_VAR_REPLICAS");
}

#[test]
fn typed_values_are_rendered() {
    let plan = Test::new()
        .runbook(TYPED)
        .args([
            "plan",
            RUNBOOK,
            "--format",
            "json",
            "--var",
            "replicas=5",
            "--var",
            "canary=true",
            "--var",
            "soak=30m",
            "--var",
            "environment=production",
        ])
        .status(0)
        .json();
    assert_eq!(
        step(&plan, "show")["action"]["command"],
        "echo 5 true 30m production"
    );
    assert_eq!(variable(&plan, "replicas")["value"], 5);
    assert_eq!(variable(&plan, "canary")["value"], true);
}

/// Every path under `dir`, relative to it.
fn listing(dir: &Path) -> BTreeSet<String> {
    let mut out = BTreeSet::new();
    let mut todo = vec![dir.to_path_buf()];
    while let Some(d) = todo.pop() {
        for entry in std::fs::read_dir(&d).unwrap() {
            let path = entry.unwrap().path();
            out.insert(path.strip_prefix(dir).unwrap().display().to_string());
            if path.is_dir() {
                todo.push(path);
            }
        }
    }
    out
}

#[test]
fn plan_executes_nothing_and_writes_no_files() {
    let runbook = r#"[runbook]
name = "side-effects"

[vars.token]
secret = { command = "touch secret-command-ran" }

[[phases]]
id = "p"
title = "P"

[[phases.steps]]
run = "touch step-ran && echo {{ token }}"
capture = "x"

[[phases.steps]]
kubectl = ["apply", "-f", "{{ x }}"]

[[phases.rollback]]
run = "touch rollback-ran"

[[rollback]]
run = "touch incident-rollback-ran"
"#;
    let test = Test::new()
        .runbook(runbook)
        .file("rb/runbook.toml", runbook)
        .env("KUBECTL", "./fake-kubectl");
    let before = listing(test.path());
    let dir = test.path().to_path_buf();
    for format in ["text", "json"] {
        for path in [RUNBOOK, "rb/runbook.toml"] {
            let status = test
                .command()
                .args(["plan", path, "--format", format])
                .output()
                .unwrap();
            assert_eq!(status.status.code(), Some(0), "{status:?}");
            assert_eq!(
                listing(&dir),
                before,
                "plan {path} --format {format} wrote files"
            );
        }
    }
    for args in [&["validate", RUNBOOK][..], &["run", RUNBOOK, "--dry-run"]] {
        let out = test.command().args(args).output().unwrap();
        assert_eq!(out.status.code(), Some(0), "{args:?}: {out:?}");
        assert_eq!(listing(&dir), before, "{args:?} wrote files");
    }
}

#[test]
fn run_dry_run_shows_exactly_the_plan() {
    for format in ["text", "json"] {
        let plan = plan_every_kind(format);
        let dry_run = Test::new()
            .runbook(EVERY_KIND)
            .env("CHECKOUT_TOKEN", SECRET)
            .env("ROLLOUT_OPERATOR", "tester")
            .args([
                "run",
                RUNBOOK,
                "--dry-run",
                "--var",
                "environment=production",
                "--format",
                format,
            ])
            .status(0);
        assert_eq!(
            redact_dir(&dry_run, &dry_run.stdout),
            redact_dir(&plan, &plan.stdout),
            "`run --dry-run --format {format}` differs from `plan`"
        );
    }
}

#[test]
fn plan_of_an_invalid_runbook_is_refused_like_validate() {
    let out = Test::new()
        .runbook("[runbook]\nname = \"x\"\n")
        .args(["plan", RUNBOOK, "--format", "json"])
        .status(3);
    assert!(out.stdout.is_empty());
    out.stderr_has("the runbook has no phases");
}

#[test]
fn unknown_format_is_a_usage_error() {
    let out = Test::new()
        .runbook(TAGGED)
        .args(["plan", RUNBOOK, "--format", "yaml"])
        .status(2);
    out.stderr_has("yaml");
}

#[test]
fn plan_never_asks_for_input() {
    // Gates are shown, never asked: answers on stdin change nothing.
    let quiet = plan_every_kind("text");
    let answered = Test::new()
        .runbook(EVERY_KIND)
        .env("CHECKOUT_TOKEN", SECRET)
        .env("ROLLOUT_OPERATOR", "tester")
        .stdin("y\nproduction\ny\ny\n")
        .args(["plan", RUNBOOK, "--var", "environment=production"])
        .status(0);
    assert_eq!(
        redact_dir(&answered, &answered.stdout),
        redact_dir(&quiet, &quiet.stdout)
    );
    assert_eq!(answered.stderr, "");
}
