//! The JSON Schema of the runbook format, for editors (taplo, VS Code "Even Better TOML", ...):
//! completion of keys, hover documentation and early squiggles. Printed by `rollout schema` and
//! committed as `docs/runbook.schema.json`.
//!
//! The parser (`parse.rs`) reads tables imperatively and is the authority on what a runbook
//! means; the types here only describe its surface: which keys each table takes, their types,
//! and the closed sets of words (taken from the model's own `NAMES`). They are kept honest by
//! the integration tests in `tests/schema.rs`: for every table described here, the set of keys
//! the parser accepts (read from its "unknown key ... expected one of" diagnostic) must equal
//! the set of properties here, and every runbook in `runbooks/` and every `rollout new` template
//! must validate against the schema. Checks that need more than one key (a step's kind,
//! `for` against `samples`, cross references) stay the parser's job.

#![allow(dead_code)]
// The fields exist only to be described.
// Doc comments here are the descriptions editors show, written for runbook authors.
#![allow(clippy::doc_markdown)]

use std::collections::BTreeMap;

use schemars::transform::RecursiveTransform;
use schemars::{JsonSchema, Schema, SchemaGenerator, json_schema};
use serde_json::Value;

use super::model::{
    BudgetAction, DeadlineAction, ErrorPolicy, FailureAction, NoDataPolicy, NotifyOn, Risk,
    Signatures, VarType,
};

/// The schema as pretty-printed JSON, ending in a newline.
pub fn json() -> String {
    // Draft 7: what taplo and most editors' TOML plugins understand. TOML has no null, so an
    // optional key is just an optional property.
    let schema = schemars::generate::SchemaSettings::draft07()
        .with_transform(RecursiveTransform(without_null))
        .into_generator()
        .into_root_schema_for::<RunbookFile>();
    let mut text = serde_json::to_string_pretty(&schema).unwrap_or_default();
    text.push('\n');
    text
}

/// Drops the `null` that schemars allows for `Option` fields.
fn without_null(schema: &mut Schema) {
    if let Some(Value::Array(types)) = schema.get_mut("type") {
        types.retain(|t| t != "null");
        if let [only] = types.as_slice() {
            let only = only.clone();
            schema.insert("type".into(), only);
        }
    }
    if let Some(Value::Array(any)) = schema.get_mut("anyOf") {
        any.retain(|s| s.get("type").is_none_or(|t| t != "null"));
    }
}

fn words(names: &[&str], description: &str) -> Schema {
    json_schema!({ "type": "string", "enum": names, "description": description })
}

fn signatures(_: &mut SchemaGenerator) -> Schema {
    words(
        &Signatures::NAMES,
        "\"required\": sign-offs are signed with SSH keys; \"optional\": typed names count too",
    )
}

fn risk(_: &mut SchemaGenerator) -> Schema {
    words(
        &Risk::NAMES,
        "How dangerous the change is; shown in plans and prompts.",
    )
}
fn failure_action(_: &mut SchemaGenerator) -> Schema {
    words(&FailureAction::NAMES, "What happens when a step fails.")
}
fn abort_action(_: &mut SchemaGenerator) -> Schema {
    words(
        &["abort", "rollback", "pause"],
        "What happens when the criterion holds [default: the phase's `on_failure`, `ask` becoming `pause`].",
    )
}
fn deadline_action(_: &mut SchemaGenerator) -> Schema {
    words(
        &DeadlineAction::NAMES,
        "What happens when the deadline passes unanswered [default: abort].",
    )
}
fn no_data(_: &mut SchemaGenerator) -> Schema {
    words(
        &NoDataPolicy::NAMES,
        "How a measurement with no usable value counts.",
    )
}
fn error_policy(_: &mut SchemaGenerator) -> Schema {
    words(
        &ErrorPolicy::NAMES,
        "How a measurement that could not be taken counts.",
    )
}
fn notify_format(_: &mut SchemaGenerator) -> Schema {
    words(
        &["json", "slack"],
        "The message body: `json` (default) or `slack` ({\"text\": ...}: Slack, Mattermost, Rocket.Chat).",
    )
}
fn notify_on(_: &mut SchemaGenerator) -> Schema {
    json_schema!({
        "type": "array",
        "items": { "type": "string", "enum": NotifyOn::NAMES },
        "description": "What to notify about [default: all]."
    })
}
fn var_type(_: &mut SchemaGenerator) -> Schema {
    words(
        &VarType::NAMES,
        "The variable's type [default: from `default`, else string].",
    )
}
fn http_method(_: &mut SchemaGenerator) -> Schema {
    words(
        &["GET", "HEAD", "POST", "PUT", "PATCH", "DELETE", "OPTIONS"],
        "The HTTP method [default: GET].",
    )
}

const DURATION: &str = r"^\s*([0-9]+(ms|s|m|h|d))+\s*$";
/// A duration, or a template naming variables (`{{ soak }}`, `{{ minutes }}m`).
const DURATION_OR_TEMPLATE: &str = r"^\s*(([0-9]+(ms|s|m|h|d))+|.*\{\{.*\}\}.*)\s*$";
const TEMPLATE: &str = r"\{\{.*\}\}";
const ID: &str = r"^[a-z0-9][a-z0-9_-]*$";
const IDENTIFIER: &str = r"^[a-z_][a-z0-9_]*$";

/// A duration such as "500ms", "30s", "10m", "1h30m" or "1d", or a template naming variables
/// ("{{ soak }}" with a `duration` variable), resolved when the plan is made.
#[derive(JsonSchema)]
#[schemars(transparent)]
struct Dur(#[schemars(regex(pattern = DURATION_OR_TEMPLATE))] String);

/// A duration such as "500ms", "30s", "10m", "1h30m" or "1d" (no template here).
#[derive(JsonSchema)]
#[schemars(transparent)]
struct FixedDur(#[schemars(regex(pattern = DURATION))] String);

/// A whole number, or a template naming an integer variable ("{{ samples }}").
#[derive(JsonSchema)]
#[schemars(untagged)]
enum Count {
    Number(#[schemars(range(min = 1))] u32),
    Template(#[schemars(regex(pattern = TEMPLATE))] String),
}

/// A threshold such as "< 0.01", ">= 99.9" or "between 0.1 and 0.5"; the numbers may be
/// templates naming integer or float variables ("< {{ max_error_ratio }}").
#[derive(JsonSchema)]
#[schemars(transparent)]
struct Condition(String);

/// A runbook: a production change as phases of steps, with gates, checks and rollback.
#[derive(JsonSchema)]
#[schemars(deny_unknown_fields, title = "rollout runbook")]
struct RunbookFile {
    runbook: Meta,
    defaults: Option<Defaults>,
    /// Variables, usable in templates as `{{ name }}`: a literal default, or a table declaring
    /// the variable.
    vars: Option<BTreeMap<String, VarDecl>>,
    /// The phases, run in order.
    #[schemars(length(min = 1))]
    phases: Vec<Phase>,
    /// Steps that undo the whole change, run by `rollout rollback` or a failure whose action is
    /// `rollback`.
    rollback: Option<Vec<Step>>,
    /// Webhooks told about the run as it goes.
    notify: Option<Vec<Notify>>,
    /// Abort criteria watched in every phase (a phase may skip one with `skip_abort_when`, or
    /// override it with its own of the same `id`).
    abort_when: Option<Vec<AbortCriterion>>,
}

/// A webhook told about the run as it goes; a failure is recorded and never stops the run.
#[derive(JsonSchema)]
#[schemars(deny_unknown_fields)]
struct Notify {
    /// The webhook URL (a template; keep a URL carrying a token in a secret variable).
    url: String,
    #[serde(default)]
    #[schemars(schema_with = "notify_format")]
    format: Option<String>,
    #[serde(default)]
    #[schemars(schema_with = "notify_on")]
    on: Option<Vec<String>>,
}

/// What the runbook is.
#[derive(JsonSchema)]
#[schemars(deny_unknown_fields)]
struct Meta {
    /// The runbook's name.
    #[schemars(length(min = 1))]
    name: String,
    description: Option<String>,
    /// The team or person who owns the runbook.
    owner: Option<String>,
    #[serde(default)]
    #[schemars(schema_with = "risk")]
    risk: Option<String>,
    version: Option<Version>,
    /// What a run locks: two runs whose rendered `lock` is the same cannot proceed at once
    /// [default: the runbook's name].
    lock: Option<String>,
    /// Whether a rollback asks before it starts [default: true].
    confirm_rollback: Option<bool>,
    window: Option<Window>,
    /// The allowed-signers file (OpenSSH's format, as git's `gpg.ssh.allowedSignersFile`)
    /// whose principals sign the sign-offs, relative to the runbook [default: the user
    /// config's `allowed_signers`].
    allowed_signers: Option<String>,
    /// `required`: every sign-off must be signed with the signer's SSH key (`rollout
    /// approve`); `optional`: typed names count too [default: `required` when `risk` is high
    /// or critical, else `optional`].
    #[serde(default)]
    #[schemars(schema_with = "signatures")]
    signatures: Option<String>,
}

/// When `run` and `resume` may start; outside it they refuse (unless `--outside-window
/// --reason`), naming the next opening. A rollback is never held back. Each part may be a
/// template of variables.
#[derive(JsonSchema)]
#[schemars(deny_unknown_fields)]
struct Window {
    /// The days it opens: "mon-thu", "mon,wed,fri", "daily", or a list of day names
    /// [default: daily].
    days: Option<Days>,
    /// When it opens each day, "HH:MM" (24-hour).
    start: String,
    /// When it closes, "HH:MM" ("24:00" for midnight); at or before `start`, the next day.
    end: String,
    /// The IANA time zone of `start` and `end`, e.g. "Europe/Berlin" or "UTC".
    time_zone: String,
}

#[derive(JsonSchema)]
#[schemars(untagged)]
enum Days {
    Text(String),
    List(Vec<String>),
}

fn budget_action(_: &mut SchemaGenerator) -> Schema {
    words(
        &BudgetAction::NAMES,
        "What happens when the phase runs past `max_duration` [default: warn].",
    )
}

#[derive(JsonSchema)]
#[schemars(untagged)]
enum Version {
    Text(String),
    Integer(i64),
    Number(f64),
}

/// Settings every step starts from.
#[derive(JsonSchema)]
#[schemars(deny_unknown_fields)]
struct Defaults {
    shell: Option<ShellSpec>,
    /// The directory commands run in, relative to the runbook.
    workdir: Option<String>,
    /// Environment variables for every command.
    env: Option<BTreeMap<String, String>>,
    /// How long a command may run [default: 30m].
    timeout: Option<Dur>,
    /// The Prometheus base URL for metric checks and abort criteria.
    prometheus: Option<String>,
    kubectl: Option<KubectlDefaults>,
    prometheus_client: Option<PrometheusClient>,
}

/// The shell for `run` steps: a program name (run as `NAME -c`) or the full argument list.
#[derive(JsonSchema)]
#[schemars(untagged)]
enum ShellSpec {
    Program(String),
    Argv(#[schemars(length(min = 1))] Vec<String>),
}

/// Defaults for `kubectl` steps.
#[derive(JsonSchema)]
#[schemars(deny_unknown_fields)]
struct KubectlDefaults {
    /// The kubectl context.
    context: Option<String>,
    /// The namespace.
    namespace: Option<String>,
    /// The kubectl program [default: kubectl].
    binary: Option<String>,
}

/// How every Prometheus request is sent.
#[derive(JsonSchema)]
#[schemars(deny_unknown_fields)]
struct PrometheusClient {
    /// Sent as `Authorization: Bearer ...` (usually `{{ a_secret_variable }}`).
    bearer_token: Option<String>,
    basic_auth: Option<BasicAuth>,
    /// Extra request headers, e.g. `X-Scope-OrgID`.
    headers: Option<BTreeMap<String, String>>,
    /// A PEM file of CA certificates to trust, relative to the runbook.
    ca_file: Option<String>,
    /// How long one request may take.
    timeout: Option<FixedDur>,
}

/// HTTP basic authentication.
#[derive(JsonSchema)]
#[schemars(deny_unknown_fields)]
struct BasicAuth {
    username: String,
    password: String,
}

#[derive(JsonSchema)]
#[schemars(untagged)]
enum VarDecl {
    Text(String),
    Integer(i64),
    Number(f64),
    Boolean(bool),
    Table(VarTable),
}

#[derive(JsonSchema)]
#[schemars(untagged)]
enum Scalar {
    Text(String),
    Integer(i64),
    Number(f64),
    Boolean(bool),
}

/// A declared variable.
#[derive(JsonSchema)]
#[schemars(deny_unknown_fields)]
struct VarTable {
    #[serde(rename = "type")]
    #[serde(default)]
    #[schemars(schema_with = "var_type")]
    ty: Option<String>,
    description: Option<String>,
    /// The run cannot start until a value is given.
    required: Option<bool>,
    default: Option<Scalar>,
    /// The only values accepted.
    #[schemars(length(min = 1))]
    allowed: Option<Vec<Scalar>>,
    secret: Option<Secret>,
}

/// Where a secret's value is read at run time (never stored): exactly one source.
#[derive(JsonSchema)]
#[serde(rename_all = "snake_case", deny_unknown_fields)]
enum Secret {
    /// An environment variable's name.
    Env(String),
    /// A file, relative to the runbook.
    File(String),
    /// A command whose output is the value.
    Command(String),
}

/// A phase: steps, then an optional gate, with its own abort criteria and rollback.
#[derive(JsonSchema)]
#[schemars(deny_unknown_fields)]
struct Phase {
    #[schemars(regex(pattern = ID))]
    id: String,
    title: String,
    description: Option<String>,
    #[serde(default)]
    #[schemars(schema_with = "failure_action")]
    on_failure: Option<String>,
    #[schemars(length(min = 1))]
    steps: Vec<Step>,
    /// Steps that must pass before the next phase starts.
    gate: Option<Vec<Step>>,
    /// Steps that undo this phase.
    rollback: Option<Vec<Step>>,
    /// Ids of earlier phases this phase's rollback also undoes: in a rollback that runs it,
    /// their own rollback steps do not run.
    rollback_covers: Option<Vec<String>>,
    /// Bad states watched while the phase runs.
    abort_when: Option<Vec<AbortCriterion>>,
    /// Ids of the runbook's `[[abort_when]]` not watched in this phase.
    skip_abort_when: Option<Vec<String>>,
    /// How long the phase may take, from its start (or resume).
    max_duration: Option<Dur>,
    #[serde(default)]
    #[schemars(schema_with = "budget_action")]
    on_max_duration: Option<String>,
}

/// A bad state watched in the background: a PromQL query (`metric`), an HTTP endpoint (`http`)
/// or a check script (`command`).
#[derive(JsonSchema)]
#[schemars(untagged)]
#[allow(clippy::large_enum_variant)]
enum AbortCriterion {
    Metric(MetricCriterion),
    Http(HttpCriterion),
    Command(CommandCriterion),
}

/// Keys every abort criterion takes.
#[derive(JsonSchema)]
struct CriterionCommon {
    /// How a phase skips or overrides it [default: abort-N, or PHASE-abort-N].
    #[schemars(regex(pattern = ID))]
    id: Option<String>,
    name: Option<String>,
    /// How long the bad state must hold [default: at once].
    #[serde(rename = "for")]
    sustained: Option<Dur>,
    /// Time between readings [default: 15s].
    every: Option<Dur>,
    #[serde(default)]
    #[schemars(schema_with = "abort_action")]
    action: Option<String>,
    /// Watched from the start of this step (a step id) [default: the phase's start].
    from: Option<String>,
    /// Watched until this step has finished (a step id) [default: the phase's end].
    until: Option<String>,
}

/// Bad when a series of the PromQL query meets `condition`.
#[derive(JsonSchema)]
#[schemars(deny_unknown_fields)]
struct MetricCriterion {
    /// The PromQL query.
    metric: String,
    #[serde(flatten)]
    common: CriterionCommon,
    condition: Condition,
    /// The Prometheus base URL [default: `[defaults] prometheus`].
    prometheus: Option<String>,
}

/// Bad when the request does not meet its expectations (as an `http` step), or no answer comes
/// within `timeout`.
#[derive(JsonSchema)]
#[schemars(deny_unknown_fields)]
struct HttpCriterion {
    /// The URL (http:// or https://).
    http: String,
    #[serde(flatten)]
    common: CriterionCommon,
    #[serde(default)]
    #[schemars(schema_with = "http_method")]
    method: Option<String>,
    headers: Option<BTreeMap<String, String>>,
    body: Option<String>,
    /// Accepted status codes [default: 200].
    expect_status: Option<Statuses>,
    /// Text the body must contain.
    expect_body: Option<String>,
    /// A regular expression the body must match.
    expect_body_regex: Option<String>,
    expect_json: Option<ExpectJson>,
    expect_headers: Option<BTreeMap<String, HeaderExpectation>>,
    max_latency: Option<Dur>,
    /// How long one request may take [default: 10s].
    timeout: Option<Dur>,
}

/// Bad when the command (run with the shell) exits non-zero or runs past `timeout`.
#[derive(JsonSchema)]
#[schemars(deny_unknown_fields)]
struct CommandCriterion {
    /// The command, e.g. a synthetic check script.
    command: String,
    #[serde(flatten)]
    common: CriterionCommon,
    shell: Option<ShellSpec>,
    /// How long one run may take [default: 10s].
    timeout: Option<Dur>,
}

/// A step does exactly one thing, named by its kind key: `run`, `kubectl`, `confirm`,
/// `checklist`, `signoff`, `metric`, `http`, `wait`, `pause` or `repeat`.
#[derive(JsonSchema)]
#[schemars(untagged)]
enum Step {
    Run(RunStep),
    Kubectl(KubectlStep),
    Confirm(ConfirmStep),
    Checklist(ChecklistStep),
    Signoff(SignoffStep),
    Metric(MetricStep),
    Http(HttpStep),
    Wait(WaitStep),
    Pause(PauseStep),
    Repeat(RepeatStep),
}

/// Keys every step takes.
#[derive(JsonSchema)]
struct Common {
    /// The step's id [default: PHASE-N].
    #[schemars(regex(pattern = ID))]
    id: Option<String>,
    name: Option<String>,
    description: Option<String>,
    /// How long the step may run (run, kubectl, metric and http steps).
    timeout: Option<Dur>,
    retry: Option<RetrySpec>,
    /// A failure is reported but the run goes on.
    continue_on_error: Option<bool>,
    /// A template expression; the step is skipped when it is false.
    when: Option<String>,
    /// Save the output as a variable (run, kubectl and http steps).
    #[schemars(regex(pattern = IDENTIFIER))]
    capture: Option<String>,
    #[serde(default)]
    #[schemars(schema_with = "failure_action")]
    on_failure: Option<String>,
    /// Safe to run again if rollout stopped while it was in flight.
    idempotent: Option<bool>,
    /// How long a human gate waits for an answer (confirm, checklist and signoff steps).
    deadline: Option<Dur>,
}

/// Retries: a number of attempts, or a table.
#[derive(JsonSchema)]
#[schemars(untagged)]
enum RetrySpec {
    Attempts(#[schemars(range(min = 1, max = 100))] u32),
    Table(Retry),
}

#[derive(JsonSchema)]
#[schemars(deny_unknown_fields)]
struct Retry {
    #[schemars(range(min = 1, max = 100))]
    attempts: u32,
    /// Wait before the first retry [default: 5s].
    delay: Option<Dur>,
    /// Multiplier for the delay after each attempt [default: 2].
    #[schemars(range(min = 1.0, max = 10.0))]
    backoff: Option<f64>,
    max_delay: Option<Dur>,
}

/// Runs a shell command.
#[derive(JsonSchema)]
#[schemars(deny_unknown_fields)]
struct RunStep {
    /// The command, run with the shell.
    run: String,
    #[serde(flatten)]
    common: Common,
    env: Option<BTreeMap<String, String>>,
    workdir: Option<String>,
    shell: Option<ShellSpec>,
}

/// Runs kubectl with these arguments (no shell).
#[derive(JsonSchema)]
#[schemars(deny_unknown_fields)]
struct KubectlStep {
    #[schemars(length(min = 1))]
    kubectl: Vec<String>,
    #[serde(flatten)]
    common: Common,
    context: Option<String>,
    namespace: Option<String>,
    env: Option<BTreeMap<String, String>>,
}

/// Asks a yes/no question.
#[derive(JsonSchema)]
#[schemars(deny_unknown_fields)]
struct ConfirmStep {
    confirm: String,
    #[serde(flatten)]
    common: Common,
    /// A word the operator must type (a severe confirm).
    type_to_confirm: Option<String>,
    #[serde(default)]
    #[schemars(schema_with = "deadline_action")]
    on_deadline: Option<String>,
}

/// Items the operator ticks one by one.
#[derive(JsonSchema)]
#[schemars(deny_unknown_fields)]
struct ChecklistStep {
    #[schemars(length(min = 1))]
    checklist: Vec<String>,
    #[serde(flatten)]
    common: Common,
    #[serde(default)]
    #[schemars(schema_with = "deadline_action")]
    on_deadline: Option<String>,
}

/// Named people sign for their roles.
#[derive(JsonSchema)]
#[schemars(deny_unknown_fields)]
struct SignoffStep {
    signoff: String,
    #[serde(flatten)]
    common: Common,
    #[schemars(length(min = 1))]
    roles: Vec<RoleSpec>,
    /// How many roles must sign [default: all].
    #[schemars(range(min = 1))]
    required: Option<u32>,
    /// The operator running the change cannot sign.
    exclude_operator: Option<bool>,
    /// How long a signed approval counts after it was signed, e.g. "4h".
    valid_for: Option<Dur>,
    #[serde(default)]
    #[schemars(schema_with = "deadline_action")]
    on_deadline: Option<String>,
}

#[derive(JsonSchema)]
#[schemars(untagged)]
enum RoleSpec {
    Name(String),
    Table(Role),
}

/// A role and who may sign for it.
#[derive(JsonSchema)]
#[schemars(deny_unknown_fields)]
struct Role {
    role: String,
    #[schemars(length(min = 1))]
    approvers: Option<Vec<String>>,
}

/// Measures a PromQL query against a threshold.
#[derive(JsonSchema)]
#[schemars(deny_unknown_fields)]
struct MetricStep {
    /// The PromQL query.
    metric: String,
    #[serde(flatten)]
    common: Common,
    condition: Condition,
    /// Measure for this long (a window); not with `samples`.
    #[serde(rename = "for")]
    window: Option<Dur>,
    /// Time between measurements [default: 30s].
    every: Option<Dur>,
    /// Take this many measurements; not with `for`.
    samples: Option<Count>,
    /// Failed measurements tolerated [default: 0].
    failure_limit: Option<u32>,
    /// Passing measurements needed [default: 1].
    #[schemars(range(min = 1))]
    successes: Option<u32>,
    #[serde(default)]
    #[schemars(schema_with = "no_data")]
    no_data: Option<String>,
    #[serde(default)]
    #[schemars(schema_with = "error_policy")]
    on_error: Option<String>,
    #[serde(default)]
    #[schemars(schema_with = "no_data")]
    on_nan: Option<String>,
    #[serde(default)]
    #[schemars(schema_with = "no_data")]
    on_inf: Option<String>,
    #[serde(default)]
    #[schemars(schema_with = "error_policy")]
    on_http_error: Option<String>,
    #[serde(default)]
    #[schemars(schema_with = "error_policy")]
    on_timeout: Option<String>,
    #[serde(default)]
    #[schemars(schema_with = "error_policy")]
    on_malformed: Option<String>,
    /// The Prometheus base URL [default: `[defaults] prometheus`].
    prometheus: Option<String>,
}

/// Sends an HTTP request and checks the answer.
#[derive(JsonSchema)]
#[schemars(deny_unknown_fields)]
struct HttpStep {
    /// The URL (http:// or https://).
    http: String,
    #[serde(flatten)]
    common: Common,
    #[serde(default)]
    #[schemars(schema_with = "http_method")]
    method: Option<String>,
    headers: Option<BTreeMap<String, String>>,
    body: Option<String>,
    /// Accepted status codes [default: 200].
    expect_status: Option<Statuses>,
    /// Text the body must contain.
    expect_body: Option<String>,
    /// A regular expression the body must match.
    expect_body_regex: Option<String>,
    expect_json: Option<ExpectJson>,
    expect_headers: Option<BTreeMap<String, HeaderExpectation>>,
    max_latency: Option<Dur>,
    /// Time between attempts while retrying [default: 5s].
    every: Option<Dur>,
}

#[derive(JsonSchema)]
#[schemars(untagged)]
enum Statuses {
    One(#[schemars(range(min = 100, max = 599))] u16),
    Many(Vec<Status>),
}

#[derive(JsonSchema)]
#[schemars(transparent)]
struct Status(#[schemars(range(min = 100, max = 599))] u16);

/// What a response header must be: `true` (sent), `false` (not sent), a value it equals,
/// `{ equals = "..." }` or `{ regex = "..." }`.
#[derive(JsonSchema)]
#[schemars(untagged)]
enum HeaderExpectation {
    Present(bool),
    Equals(String),
    Table(HeaderMatch),
}

/// A header's value: `equals` a value, or matches `regex`.
#[derive(JsonSchema)]
#[schemars(deny_unknown_fields)]
struct HeaderMatch {
    equals: Option<String>,
    regex: Option<String>,
}

/// A value in a JSON response: `equals` a value, or meets a `condition`.
#[derive(JsonSchema)]
#[schemars(deny_unknown_fields)]
struct ExpectJson {
    /// A JSON pointer such as "/status".
    pointer: String,
    equals: Option<serde_json::Value>,
    condition: Option<Condition>,
}

/// Waits for a while.
#[derive(JsonSchema)]
#[schemars(deny_unknown_fields)]
struct WaitStep {
    wait: Dur,
    #[serde(flatten)]
    common: Common,
}

/// Stops the run until `rollout resume`.
#[derive(JsonSchema)]
#[schemars(deny_unknown_fields)]
struct PauseStep {
    pause: String,
    #[serde(flatten)]
    common: Common,
}

/// Evaluates an earlier check or gate again: a step id, or a phase id (its whole gate).
#[derive(JsonSchema)]
#[schemars(deny_unknown_fields)]
struct RepeatStep {
    repeat: String,
    #[serde(flatten)]
    common: Common,
}
