//! The validated runbook: what the file means, with the spans errors point back to. Built by
//! `parse`, checked by `validate`; nothing here reads files or runs anything.

use std::ops::Range;

use serde::Serialize;
use toml::Spanned;

use super::condition::Condition;
use super::duration::Duration;
use super::param::{Param, ParamUse};
use super::template::Tpl;

#[derive(Debug)]
pub struct Runbook {
    pub meta: Meta,
    pub defaults: Defaults,
    pub vars: Vec<VarDecl>,
    pub phases: Vec<Phase>,
    pub rollback: Vec<Step>,
    /// Webhooks told about the run as it goes.
    pub notify: Vec<NotifyTarget>,
    /// Every duration, count and threshold written as a template, for `validate`.
    pub params: Vec<ParamUse>,
    /// Abort criteria watched in every phase (`[[abort_when]]`), unless a phase skips one
    /// (`skip_abort_when`) or has its own of the same id.
    pub abort_when: Vec<AbortCriterion>,
}

/// A webhook (`[[notify]]`): where, in which format, about what.
#[derive(Debug)]
pub struct NotifyTarget {
    /// May use variables and secrets (a Slack webhook URL is one).
    pub url: Tpl,
    pub format: NotifyFormat,
    /// What it is told about; all of [`NotifyOn::ALL`] when not given.
    pub on: Vec<NotifyOn>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum NotifyFormat {
    /// `{"event": ..., "run_id": ..., "text": ..., "details": {...}}`
    Json,
    /// `{"text": ...}`, as Slack (and Mattermost, Rocket.Chat, ...) incoming webhooks take it.
    Slack,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum NotifyOn {
    RunStarted,
    PhaseFinished,
    /// A gate waits for someone who is not at the terminal.
    GateWaiting,
    /// An abort criterion tripped, or the run failed.
    Aborted,
    /// A rollback starts, and how it ended.
    Rollback,
    /// The run stopped: finished, paused or interrupted.
    RunFinished,
}

impl NotifyOn {
    pub const NAMES: [&'static str; 6] = [
        "run_started",
        "phase_finished",
        "gate_waiting",
        "aborted",
        "rollback",
        "run_finished",
    ];
    pub const ALL: [NotifyOn; 6] = [
        NotifyOn::RunStarted,
        NotifyOn::PhaseFinished,
        NotifyOn::GateWaiting,
        NotifyOn::Aborted,
        NotifyOn::Rollback,
        NotifyOn::RunFinished,
    ];
    pub fn parse(s: &str) -> Option<NotifyOn> {
        Self::NAMES
            .iter()
            .position(|n| *n == s)
            .map(|i| Self::ALL[i])
    }
    pub fn name(self) -> &'static str {
        Self::NAMES[self as usize]
    }
}

#[derive(Debug, Default)]
pub struct Meta {
    pub name: String,
    pub description: Option<String>,
    pub owner: Option<String>,
    pub risk: Option<Risk>,
    pub version: Option<String>,
    /// What a run locks: runs whose rendered `lock` is the same exclude each other. Defaults to
    /// the runbook's name.
    pub lock: Option<Tpl>,
    /// Whether a rollback asks before it starts (`--yes` answers it).
    pub confirm_rollback: bool,
    /// When `run` and `resume` may start: `[runbook.window]`.
    pub window: Option<WindowSpec>,
    /// The allowed-signers file (OpenSSH's format) whose principals sign its sign-offs, as
    /// written: relative to the runbook's directory.
    pub allowed_signers: Option<Spanned<String>>,
    /// `signatures`, as written; see [`Meta::signatures_required`].
    pub signatures: Option<Signatures>,
}

impl Meta {
    /// Whether every sign-off must be signed with an SSH key: `signatures = "required"`, and by
    /// default for `risk = "high"` or `"critical"`.
    pub fn signatures_required(&self) -> bool {
        match self.signatures {
            Some(s) => s == Signatures::Required,
            None => matches!(self.risk, Some(Risk::High | Risk::Critical)),
        }
    }
}

/// Whether a sign-off may be a typed name or must be signed with the signer's SSH key.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Signatures {
    /// Every signer signs with their key (`rollout approve`); typed names are refused.
    Required,
    /// Typed names and signed approvals both count.
    Optional,
}

impl Signatures {
    pub const NAMES: [&'static str; 2] = ["required", "optional"];
    pub fn parse(s: &str) -> Option<Signatures> {
        Some(match s {
            "required" => Signatures::Required,
            "optional" => Signatures::Optional,
            _ => return None,
        })
    }
}

/// `[runbook.window]` as written: each part may be a template of variables.
#[derive(Debug)]
pub struct WindowSpec {
    /// `"mon-thu"`, `"mon,wed,fri"`, `"daily"` (a list is joined with commas).
    pub days: Tpl,
    pub start: Tpl,
    pub end: Tpl,
    pub time_zone: Tpl,
}

/// What happens when a phase runs past its `max_duration`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum BudgetAction {
    /// Say so (shown and recorded) and go on.
    Warn,
    Pause,
    Abort,
    Rollback,
}

impl BudgetAction {
    pub const NAMES: [&'static str; 4] = ["warn", "pause", "abort", "rollback"];
    pub fn parse(s: &str) -> Option<BudgetAction> {
        Some(match s {
            "warn" => BudgetAction::Warn,
            "pause" => BudgetAction::Pause,
            "abort" => BudgetAction::Abort,
            "rollback" => BudgetAction::Rollback,
            _ => return None,
        })
    }
    pub fn name(self) -> &'static str {
        Self::NAMES[self as usize]
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Risk {
    Low,
    Medium,
    High,
    Critical,
}

impl Risk {
    pub const NAMES: [&'static str; 4] = ["low", "medium", "high", "critical"];
    pub fn parse(s: &str) -> Option<Risk> {
        Some(match s {
            "low" => Risk::Low,
            "medium" => Risk::Medium,
            "high" => Risk::High,
            "critical" => Risk::Critical,
            _ => return None,
        })
    }
    pub fn name(self) -> &'static str {
        Self::NAMES[self as usize]
    }
}

pub const DEFAULT_SHELL: [&str; 4] = ["bash", "-euo", "pipefail", "-c"];
pub const DEFAULT_TIMEOUT: Duration = Duration(std::time::Duration::from_secs(30 * 60));

#[derive(Debug)]
pub struct Defaults {
    pub shell: Vec<String>,
    pub workdir: Option<Tpl>,
    pub env: Vec<(String, Tpl)>,
    pub timeout: Param<Duration>,
    pub kubectl: KubectlDefaults,
    pub prometheus: Option<Tpl>,
    pub prometheus_client: PrometheusClient,
}

/// How rollout connects to Prometheus, for metric steps, abort criteria and live checks:
/// `[defaults.prometheus_client]`.
#[derive(Debug, Default)]
pub struct PrometheusClient {
    /// Sent as `Authorization: Bearer ...`; must come from secret variables.
    pub bearer_token: Option<Tpl>,
    pub basic_auth: Option<BasicAuth>,
    pub headers: Vec<(String, Tpl)>,
    /// PEM file of extra CA certificates, relative to the runbook's directory.
    pub ca_file: Option<Tpl>,
    /// Per request; the default is the step's timeout (at most 30s), 10s for abort criteria.
    pub timeout: Option<Duration>,
}

#[derive(Debug)]
pub struct BasicAuth {
    pub username: Tpl,
    /// Must come from secret variables.
    pub password: Tpl,
}

#[derive(Debug, Default)]
pub struct KubectlDefaults {
    pub context: Option<Tpl>,
    pub namespace: Option<Tpl>,
    pub binary: Option<String>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum VarType {
    String,
    Integer,
    Boolean,
    Duration,
    /// A decimal number, e.g. a threshold such as `0.01`.
    Float,
}

impl VarType {
    pub const NAMES: [&'static str; 5] = ["string", "integer", "boolean", "duration", "float"];
    pub fn parse(s: &str) -> Option<VarType> {
        Some(match s {
            "string" => VarType::String,
            "integer" => VarType::Integer,
            "boolean" => VarType::Boolean,
            "duration" => VarType::Duration,
            "float" => VarType::Float,
            _ => return None,
        })
    }
    pub fn name(self) -> &'static str {
        Self::NAMES[self as usize]
    }
}

#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(untagged)]
pub enum VarValue {
    String(String),
    Integer(i64),
    Boolean(bool),
    Float(f64),
}

impl std::fmt::Display for VarValue {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            VarValue::String(s) => f.write_str(s),
            VarValue::Integer(i) => write!(f, "{i}"),
            VarValue::Boolean(b) => write!(f, "{b}"),
            VarValue::Float(x) => write!(f, "{x}"),
        }
    }
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum SecretSource {
    Env(String),
    File(String),
    Command(String),
}

#[derive(Debug)]
pub struct VarDecl {
    pub name: Spanned<String>,
    pub ty: VarType,
    pub description: Option<String>,
    pub required: bool,
    pub allowed: Vec<VarValue>,
    pub default: Option<VarValue>,
    pub secret: Option<SecretSource>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum FailureAction {
    Abort,
    Rollback,
    Pause,
    Ask,
}

impl FailureAction {
    pub const NAMES: [&'static str; 4] = ["abort", "rollback", "pause", "ask"];
    pub fn parse(s: &str) -> Option<FailureAction> {
        Some(match s {
            "abort" => FailureAction::Abort,
            "rollback" => FailureAction::Rollback,
            "pause" => FailureAction::Pause,
            "ask" => FailureAction::Ask,
            _ => return None,
        })
    }
    pub fn name(self) -> &'static str {
        Self::NAMES[self as usize]
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum DeadlineAction {
    Abort,
    Rollback,
    Hold,
}

impl DeadlineAction {
    pub const NAMES: [&'static str; 3] = ["abort", "rollback", "hold"];
    pub fn parse(s: &str) -> Option<DeadlineAction> {
        Some(match s {
            "abort" => DeadlineAction::Abort,
            "rollback" => DeadlineAction::Rollback,
            "hold" => DeadlineAction::Hold,
            _ => return None,
        })
    }
}

#[derive(Debug)]
pub struct Phase {
    pub id: Spanned<String>,
    pub title: String,
    pub description: Option<String>,
    pub on_failure: FailureAction,
    pub steps: Vec<Step>,
    pub gate: Vec<Step>,
    pub abort_when: Vec<AbortCriterion>,
    /// Ids of the runbook's `[[abort_when]]` not watched in this phase.
    pub skip_abort_when: Vec<Spanned<String>>,
    /// How long the phase may take, and what then.
    pub max_duration: Option<(Param<Duration>, BudgetAction)>,
    pub rollback: Vec<Step>,
    /// Earlier phases this phase's rollback also undoes: in a rollback that runs it, their own
    /// rollback steps do not run.
    pub rollback_covers: Vec<Spanned<String>>,
    pub span: Range<usize>,
}

impl Phase {
    /// The ids of the phase's steps, then its gate's, in the order they run.
    pub fn step_ids(&self) -> Vec<&str> {
        self.steps
            .iter()
            .chain(&self.gate)
            .map(|s| s.id.get_ref().as_str())
            .collect()
    }
}

/// How often a failed step is tried again, with its delays resolved.
#[derive(Debug, Clone, Copy, PartialEq, Serialize)]
pub struct Retry {
    pub attempts: u32,
    pub delay: Duration,
    pub backoff: f64,
    pub max_delay: Option<Duration>,
}

/// `retry` as written: its delays may come from variables.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct RetrySpec {
    pub attempts: u32,
    pub delay: Param<Duration>,
    pub backoff: f64,
    pub max_delay: Option<Param<Duration>>,
}

#[derive(Debug)]
pub struct Step {
    pub id: Spanned<String>,
    pub name: Option<String>,
    pub description: Option<String>,
    pub kind: StepKind,
    pub timeout: Option<Param<Duration>>,
    pub retry: Option<RetrySpec>,
    pub continue_on_error: bool,
    pub when: Option<Tpl>,
    pub capture: Option<Spanned<String>>,
    pub on_failure: Option<FailureAction>,
    pub idempotent: bool,
    pub deadline: Option<(Param<Duration>, DeadlineAction)>,
    /// The step's table in the file, for errors at run time.
    pub span: Range<usize>,
}

impl Step {
    /// Where what the step does is written: its command, question, query, URL or target (the
    /// value of the key that gives the step its kind), else the step's table. Errors at run
    /// time point here.
    pub fn action_span(&self, templates: &super::Templates) -> Range<usize> {
        let of = |t: &Tpl| Some(templates.span(*t));
        let span = match &self.kind {
            StepKind::Shell(s) => of(&s.command),
            StepKind::Kubectl(k) => k.args.first().and_then(of),
            StepKind::Confirm { question, .. } => of(question),
            StepKind::Checklist { items } => items.first().and_then(of),
            StepKind::Signoff(s) => of(&s.title),
            StepKind::Metric(m) => of(&m.query),
            StepKind::Http(h) => of(&h.url),
            StepKind::Wait { duration } => match duration {
                Param::Template(t) => of(t),
                Param::Fixed(_) => None,
            },
            StepKind::Pause { message } => of(message),
            StepKind::Repeat { target, .. } => Some(target.span()),
        };
        span.filter(|s| !s.is_empty())
            .unwrap_or_else(|| self.span.clone())
    }
}

#[derive(Debug)]
pub enum StepKind {
    Shell(ShellStep),
    Kubectl(KubectlStep),
    Confirm {
        question: Tpl,
        type_to_confirm: Option<Tpl>,
    },
    Checklist {
        items: Vec<Tpl>,
    },
    Signoff(Signoff),
    Metric(Box<MetricCheck>),
    Http(Box<HttpCheck>),
    Wait {
        duration: Param<Duration>,
    },
    Pause {
        message: Tpl,
    },
    /// Evaluates again an earlier check or gate step (by step id), or every gate step of an
    /// earlier phase (by phase id): "all Wave 1 criteria still met".
    Repeat {
        target: Spanned<String>,
    },
}

impl StepKind {
    /// A check or a gate: what `repeat` evaluates again.
    pub fn is_repeatable(&self) -> bool {
        matches!(
            self,
            StepKind::Metric(_)
                | StepKind::Http(_)
                | StepKind::Confirm { .. }
                | StepKind::Checklist { .. }
                | StepKind::Signoff(_)
        )
    }

    pub fn name(&self) -> &'static str {
        match self {
            StepKind::Shell(_) => "run",
            StepKind::Kubectl(_) => "kubectl",
            StepKind::Confirm { .. } => "confirm",
            StepKind::Checklist { .. } => "checklist",
            StepKind::Signoff(_) => "signoff",
            StepKind::Metric(_) => "metric",
            StepKind::Http(_) => "http",
            StepKind::Wait { .. } => "wait",
            StepKind::Pause { .. } => "pause",
            StepKind::Repeat { .. } => "repeat",
        }
    }
}

#[derive(Debug)]
pub struct ShellStep {
    pub command: Tpl,
    pub shell: Option<Vec<String>>,
    pub env: Vec<(String, Tpl)>,
    pub workdir: Option<Tpl>,
}

#[derive(Debug)]
pub struct KubectlStep {
    pub args: Vec<Tpl>,
    pub context: Option<Tpl>,
    pub namespace: Option<Tpl>,
    pub env: Vec<(String, Tpl)>,
}

#[derive(Debug)]
pub struct Role {
    pub name: Spanned<String>,
    pub approvers: Option<Vec<Spanned<String>>>,
}

#[derive(Debug)]
pub struct Signoff {
    pub title: Tpl,
    pub roles: Vec<Role>,
    pub required: Spanned<usize>,
    pub exclude_operator: bool,
    /// How long a signed approval counts after it was signed.
    pub valid_for: Option<Duration>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum NoDataPolicy {
    Inconclusive,
    Fail,
    Pass,
}

/// What a metric check does with a measurement that got no answer at all: an HTTP error, a
/// timeout, a malformed response. Never `pass`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum ErrorPolicy {
    Inconclusive,
    Fail,
}

impl ErrorPolicy {
    pub const NAMES: [&'static str; 2] = ["inconclusive", "fail"];
    pub fn parse(s: &str) -> Option<ErrorPolicy> {
        Some(match s {
            "inconclusive" => ErrorPolicy::Inconclusive,
            "fail" => ErrorPolicy::Fail,
            _ => return None,
        })
    }
}

impl NoDataPolicy {
    pub const NAMES: [&'static str; 3] = ["inconclusive", "fail", "pass"];
    pub fn parse(s: &str) -> Option<NoDataPolicy> {
        Some(match s {
            "inconclusive" => NoDataPolicy::Inconclusive,
            "fail" => NoDataPolicy::Fail,
            "pass" => NoDataPolicy::Pass,
            _ => return None,
        })
    }
}

/// How many measurements a check takes: one, a count, or as many as fit in a window.
#[derive(Debug, Clone, Copy, PartialEq, Serialize)]
#[serde(rename_all = "snake_case", tag = "kind")]
pub enum Sampling {
    Once,
    Count { samples: u32, every: Duration },
    Window { window: Duration, every: Duration },
}

/// `for`, `samples` and `every` as written; resolved into a [`Sampling`] when values are known.
#[derive(Debug, Clone, Copy, Default, PartialEq)]
pub struct SamplingSpec {
    pub window: Option<Param<Duration>>,
    pub samples: Option<Param<u32>>,
    pub every: Option<Param<Duration>>,
}

#[derive(Debug)]
pub struct MetricCheck {
    pub query: Tpl,
    pub condition: Param<Condition>,
    pub sampling: SamplingSpec,
    pub failure_limit: u32,
    pub successes: u32,
    pub no_data: NoDataPolicy,
    pub on_error: ErrorPolicy,
    pub faults: FaultPolicies,
    pub prometheus: Option<Tpl>,
}

/// Per-fault policies that override `no_data` (for NaN and infinities) and `on_error` (for
/// HTTP errors, timeouts and malformed answers) on one check.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize)]
pub struct FaultPolicies {
    #[serde(skip_serializing_if = "Option::is_none")]
    pub on_nan: Option<NoDataPolicy>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub on_inf: Option<NoDataPolicy>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub on_http_error: Option<ErrorPolicy>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub on_timeout: Option<ErrorPolicy>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub on_malformed: Option<ErrorPolicy>,
}

impl FaultPolicies {
    pub fn is_default(&self) -> bool {
        *self == FaultPolicies::default()
    }
}

#[derive(Debug)]
pub enum JsonExpectation {
    Equals(toml::Value),
    Condition(Param<Condition>),
}

/// What a response header must be (`expect_headers`).
#[derive(Debug)]
pub enum HeaderExpectation {
    /// `true`: sent, with any value.
    Present,
    /// `false`: not sent (e.g. no `Server` header giving the version away).
    Absent,
    /// A value, or `{ equals = "..." }` (a template).
    Equals(Tpl),
    /// `{ regex = "..." }`.
    Matches(String),
}

#[derive(Debug)]
pub struct HttpCheck {
    pub url: Tpl,
    pub method: String,
    pub headers: Vec<(String, Tpl)>,
    pub body: Option<Tpl>,
    pub expect_status: Vec<u16>,
    pub expect_body: Option<Tpl>,
    pub expect_body_regex: Option<String>,
    pub expect_json: Option<(String, JsonExpectation)>,
    /// Response headers: present, absent, equal to a value, or matching a regex.
    pub expect_headers: Vec<(Spanned<String>, HeaderExpectation)>,
    pub max_latency: Option<Param<Duration>>,
    pub every: Param<Duration>,
}

/// A bad state watched in the background; when it has held for `for`, its action applies.
#[derive(Debug)]
pub struct AbortCriterion {
    /// How a phase refers to it (to skip or override a runbook-wide one).
    pub id: Spanned<String>,
    pub name: String,
    pub probe: Probe,
    pub sustained: Param<Duration>,
    pub every: Param<Duration>,
    pub action: Option<FailureAction>,
    /// Watched from the start of this step on (a step id).
    pub from: Option<Spanned<String>>,
    /// Watched until this step has finished (a step id).
    pub until: Option<Spanned<String>>,
    pub span: Range<usize>,
}

/// What an abort criterion measures, and what counts as the bad state.
#[derive(Debug)]
pub enum Probe {
    /// A `PromQL` query; bad when a series meets `condition`.
    Metric {
        query: Tpl,
        condition: Param<Condition>,
        prometheus: Option<Tpl>,
    },
    /// An HTTP request; bad when the answer does not meet the expectations (as an `http` step
    /// judges it), or there is no answer within `timeout`.
    Http {
        check: Box<HttpCheck>,
        timeout: Option<Param<Duration>>,
    },
    /// A command (a synthetic check script); bad when it exits non-zero or runs past `timeout`.
    Command {
        command: Tpl,
        shell: Option<Vec<String>>,
        timeout: Option<Param<Duration>>,
    },
}

impl Probe {
    pub fn kind(&self) -> &'static str {
        match self {
            Probe::Metric { .. } => "metric",
            Probe::Http { .. } => "http",
            Probe::Command { .. } => "command",
        }
    }
}

impl Runbook {
    /// Every step of the runbook in file order, with the phase it belongs to.
    pub fn all_steps(&self) -> impl Iterator<Item = (Option<&Phase>, &Step)> {
        self.phases
            .iter()
            .flat_map(|ph| {
                ph.steps
                    .iter()
                    .chain(&ph.gate)
                    .chain(&ph.rollback)
                    .map(move |s| (Some(ph), s))
            })
            .chain(self.rollback.iter().map(|s| (None, s)))
    }
}
