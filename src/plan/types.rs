//! What a plan is made of: the runbook's phases and steps with every value rendered, as `rollout
//! plan` shows them (text or JSON) and `rollout run` executes them. Plain data, serialised as
//! docs/plan-json.md describes; nothing here renders or decides.

use std::collections::BTreeMap;
use std::path::PathBuf;

use serde::Serialize;

use crate::inputs::Origin;
use crate::runbook::condition::Condition;
use crate::runbook::duration::Duration;
use crate::runbook::model::{
    DeadlineAction, ErrorPolicy, FailureAction, FaultPolicies, NoDataPolicy, NotifyFormat,
    NotifyOn, Retry, Sampling, VarValue,
};

/// The version of the plan's JSON layout (see docs/plan-json.md).
pub const FORMAT_VERSION: u32 = 1;

#[derive(Debug, Serialize)]
pub struct Plan {
    pub format_version: u32,
    pub runbook: RunbookInfo,
    pub variables: Vec<PlanVar>,
    /// Environment every shell and kubectl step receives in addition to its own `env`.
    pub exported_env: BTreeMap<String, String>,
    /// The webhooks a run would tell about its progress.
    pub notify: Vec<PlanNotify>,
    /// When `run` and `resume` may start (`[runbook.window]`), resolved.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub window: Option<WindowView>,
    pub phases: Vec<PlanPhase>,
    /// The runbook-level rollback, run by `rollout rollback` when no run state exists.
    pub rollback: Vec<PlanStep>,
}

#[derive(Debug, Serialize)]
pub struct RunbookInfo {
    pub name: String,
    pub description: Option<String>,
    pub owner: Option<String>,
    pub risk: Option<&'static str>,
    pub version: Option<String>,
    pub path: String,
    pub digest: String,
}

#[derive(Debug, Serialize)]
pub struct PlanVar {
    pub name: String,
    /// `None` for secrets.
    pub value: Option<VarValue>,
    pub secret: bool,
    pub origin: Origin,
}

/// A webhook a run would post to: a `[[notify]]` of the runbook, or one of the operator's own
/// (user config).
#[derive(Debug, Serialize)]
pub struct PlanNotify {
    /// The runbook's URL rendered as a run renders it, secrets masked. A user-config URL is not
    /// the runbook's and usually embeds a token: only its scheme and host are shown.
    pub url: String,
    pub format: NotifyFormat,
    pub on: Vec<NotifyOn>,
    pub from: NotifyFrom,
    /// Why a run would skip this target (its URL cannot be rendered), as the run's warning says.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub skipped: Option<String>,
}

/// Whose webhook a [`PlanNotify`] is.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum NotifyFrom {
    /// The runbook's `[[notify]]`.
    Runbook,
    /// The operator's user config.
    Config,
}

/// A change window with its values resolved.
#[derive(Debug, Serialize)]
pub struct WindowView {
    /// `mon`..`sun`.
    pub days: Vec<&'static str>,
    pub start: String,
    pub end: String,
    pub time_zone: String,
    /// As the plan and the refusal say it: `mon,tue 09:00-16:00 Europe/Berlin`.
    pub text: String,
}

/// A phase's time budget: after `after`, `then`.
#[derive(Debug, Clone, Copy, Serialize)]
pub struct Budget {
    pub after: Duration,
    pub then: crate::runbook::model::BudgetAction,
}

#[derive(Debug, Serialize)]
pub struct PlanPhase {
    pub id: String,
    pub title: String,
    pub description: Option<String>,
    pub on_failure: FailureAction,
    /// How long the phase may run (`max_duration`), and what then.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub max_duration: Option<Budget>,
    pub steps: Vec<PlanStep>,
    pub gate: Vec<PlanStep>,
    /// The abort criteria watched in (part of) this phase: the runbook's and its own.
    pub abort_when: Vec<PlanAbort>,
    /// The runbook's criteria that are not watched in this phase, and why.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub abort_not_watched: Vec<NotWatched>,
    pub rollback: Vec<PlanStep>,
    /// Earlier phases this phase's rollback also undoes (`rollback_covers`): after it, theirs
    /// does not run.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub rollback_covers: Vec<String>,
    /// Later phases whose rollback covers this one: when one of those runs, this phase's
    /// rollback steps do not.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub rollback_covered_by: Vec<String>,
}

#[derive(Debug, Clone, Serialize)]
pub struct PlanAbort {
    pub id: String,
    pub name: String,
    /// `runbook` for a top-level `[[abort_when]]`, `phase` for the phase's own.
    pub scope: &'static str,
    /// What is watched: `kind` is `metric`, `http` or `command`.
    #[serde(flatten)]
    pub probe: ProbeView,
    #[serde(rename = "for")]
    pub sustained: Duration,
    pub every: Duration,
    pub action: FailureAction,
    /// Watched from the start of this step of the phase (else from the phase's start).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub from: Option<String>,
    /// Watched until this step of the phase has finished (else to the phase's end).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub until: Option<String>,
    /// The current value, with `plan --live-checks`.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub live: Option<LiveValue>,
}

/// What an abort criterion watches, rendered.
#[derive(Debug, Clone, Serialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum ProbeView {
    /// Bad when a series of `query` meets `condition`.
    Metric {
        query: String,
        condition: Condition,
        prometheus: Option<String>,
    },
    /// Bad when the request does not meet its expectations (an `http` step's), or gets no
    /// answer within `timeout`.
    Http {
        request: Box<Action>,
        timeout: Duration,
    },
    /// Bad when the command exits non-zero or runs past `timeout`.
    Command {
        command: String,
        argv: Vec<String>,
        workdir: PathBuf,
        env: BTreeMap<String, String>,
        timeout: Duration,
    },
}

impl ProbeView {
    /// One line saying what is watched and what the bad state is.
    pub fn describe(&self) -> String {
        match self {
            ProbeView::Metric {
                query, condition, ..
            } => format!("`{query}` {condition}"),
            ProbeView::Http { request, .. } => match request.as_ref() {
                Action::Http { method, url, .. } => {
                    format!("{method} {url} fails its expectations")
                }
                _ => String::new(),
            },
            ProbeView::Command { command, .. } => {
                format!("`{}` exits non-zero", command.trim())
            }
        }
    }
}

/// A runbook-wide abort criterion that a phase does not watch.
#[derive(Debug, Serialize)]
pub struct NotWatched {
    pub id: String,
    pub name: String,
    pub why: String,
}

/// `[defaults.prometheus_client]` rendered: what every Prometheus request is sent with.
#[derive(Debug, Clone, Default)]
pub struct PrometheusConn {
    pub bearer_token: Option<String>,
    pub basic_auth: Option<(String, String)>,
    pub headers: Vec<(String, String)>,
    pub ca_file: Option<PathBuf>,
    pub timeout: Option<std::time::Duration>,
}

/// One read-only measurement taken by `plan --live-checks`.
#[derive(Debug, Clone, Serialize)]
pub struct LiveValue {
    /// Metric steps: `pass`, `fail` or `inconclusive`. Abort criteria: `bad` (the condition
    /// holds now), `ok` or `inconclusive`.
    pub verdict: &'static str,
    pub values: Vec<(String, f64)>,
    pub detail: Option<String>,
}

#[derive(Debug, Serialize)]
pub struct PlanStep {
    pub id: String,
    pub name: Option<String>,
    pub description: Option<String>,
    pub line: usize,
    #[serde(skip_serializing_if = "Option::is_none")]
    /// Boxed: most steps have none, and a step is held across every await of a run.
    pub when: Option<Box<When>>,
    pub timeout: Option<Duration>,
    pub retry: Option<Retry>,
    pub continue_on_error: bool,
    pub on_failure: FailureAction,
    pub idempotent: bool,
    pub capture: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub deadline: Option<Deadline>,
    pub action: Action,
    /// The current value of a metric check, with `plan --live-checks`.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub live: Option<LiveValue>,
}

#[derive(Debug, Serialize)]
pub struct Deadline {
    pub after: Duration,
    pub then: DeadlineAction,
}

#[derive(Debug, Serialize)]
pub struct When {
    pub expression: String,
    /// `run`, `skip`, or `at_run_time` when it reads values only a run produces.
    pub decision: &'static str,
    /// For `at_run_time`: the values it waits for, each with where it comes from. A preview
    /// never evaluates the expression with a stand-in for them.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub depends_on: Vec<Pending>,
}

/// A value a preview does not have yet: a capture (with the step that makes it) or a secret.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Pending {
    pub name: String,
    /// The step whose output it is; absent for a secret, which a run reads when it starts.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub captured_by: Option<String>,
}

impl When {
    /// What the plan says of it, after the expression: `true: runs`, `false: SKIPPED`, or,
    /// when it waits for values, how it will be decided and by what, never a guess.
    pub fn verdict(&self) -> String {
        use std::fmt::Write as _;
        match self.decision {
            "run" => "true: runs".into(),
            "skip" => "false: SKIPPED".into(),
            _ => {
                let mut out = format!(
                    "decided when the step is reached: runs if {}",
                    condition_words(&self.expression)
                );
                for p in &self.depends_on {
                    let _ = match &p.captured_by {
                        Some(step) => write!(out, "; `{}` is captured by step `{step}`", p.name),
                        None => write!(out, "; `{}` is a secret, read when the run starts", p.name),
                    };
                }
                out
            }
        }
    }
}

/// A `when` expression in words where it has a simple shape (`name == 'value'`, `name !=
/// 'value'`, `not name`, `name`), else the expression itself.
fn condition_words(expr: &str) -> String {
    let e = expr.trim();
    let is_name = |s: &str| {
        !s.is_empty()
            && s.chars()
                .all(|c| c.is_ascii_alphanumeric() || c == '_' || c == '.')
            && !s.starts_with(|c: char| c.is_ascii_digit())
            && !matches!(s, "true" | "false" | "not" | "and" | "or" | "in")
    };
    let literal = |s: &str| -> Option<String> {
        let s = s.trim();
        for q in ['\'', '"'] {
            if let Some(inner) = s.strip_prefix(q).and_then(|x| x.strip_suffix(q)) {
                if !inner.contains(q) {
                    return Some(inner.to_string());
                }
            }
        }
        (s.parse::<f64>().is_ok() || matches!(s, "true" | "false")).then(|| s.to_string())
    };
    for (op, words) in [("!=", "is not"), ("==", "is")] {
        if let Some((a, b)) = e.split_once(op) {
            let (a, b) = (a.trim(), b.trim());
            let said = |name: &str, v: String| {
                if v.is_empty() {
                    format!("`{name}` {words} empty")
                } else {
                    format!("`{name}` {words} `{v}`")
                }
            };
            if is_name(a) {
                if let Some(v) = literal(b) {
                    return said(a, v);
                }
            }
            if is_name(b) {
                if let Some(v) = literal(a) {
                    return said(b, v);
                }
            }
        }
    }
    if let Some(n) = e.strip_prefix("not ").map(str::trim) {
        if is_name(n) {
            return format!("`{n}` is false");
        }
    }
    if is_name(e) {
        return format!("`{e}` is true");
    }
    format!("`{e}` is true")
}

#[derive(Debug, Clone, Serialize)]
pub struct RoleView {
    pub role: String,
    pub approvers: Option<Vec<String>>,
}

impl RoleView {
    /// A sign-off's roles as a plan (and the gate that checks them) shows them.
    pub fn all(roles: &[crate::runbook::model::Role]) -> Vec<RoleView> {
        roles
            .iter()
            .map(|r| RoleView {
                role: r.name.get_ref().clone(),
                approvers: r
                    .approvers
                    .as_ref()
                    .map(|a| a.iter().map(|x| x.get_ref().clone()).collect()),
            })
            .collect()
    }
}

#[derive(Debug, Clone, Serialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum Action {
    Run {
        argv: Vec<String>,
        command: String,
        workdir: PathBuf,
        env: BTreeMap<String, String>,
    },
    Kubectl {
        argv: Vec<String>,
        env: BTreeMap<String, String>,
    },
    Confirm {
        question: String,
        type_to_confirm: Option<String>,
    },
    Checklist {
        items: Vec<String>,
    },
    Signoff {
        title: String,
        roles: Vec<RoleView>,
        required: usize,
        exclude_operator: bool,
        /// How long a signed approval counts after it was signed (`valid_for`), e.g. `4h`.
        #[serde(skip_serializing_if = "Option::is_none")]
        valid_for: Option<String>,
    },
    Metric {
        query: String,
        condition: Condition,
        sampling: Sampling,
        failure_limit: u32,
        successes: u32,
        no_data: NoDataPolicy,
        on_error: ErrorPolicy,
        /// Per-fault overrides, only when the runbook sets some.
        #[serde(skip_serializing_if = "FaultPolicies::is_default")]
        faults: FaultPolicies,
        prometheus: Option<String>,
    },
    Http {
        method: String,
        url: String,
        headers: BTreeMap<String, String>,
        body: Option<String>,
        expect_status: Vec<u16>,
        expect_body: Option<String>,
        expect_body_regex: Option<String>,
        expect_json: Option<JsonView>,
        /// Only when the check has some.
        #[serde(skip_serializing_if = "Vec::is_empty")]
        expect_headers: Vec<HeaderView>,
        max_latency: Option<Duration>,
        every: Duration,
    },
    Wait {
        duration: Duration,
    },
    Pause {
        message: String,
    },
    Repeat {
        target: String,
        steps: Vec<String>,
    },
}

/// What a response header must be: `present` (true: sent; false: not sent), `equals` a value
/// or matches `regex`.
#[derive(Debug, Clone, Serialize)]
pub struct HeaderView {
    pub name: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub present: Option<bool>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub equals: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub regex: Option<String>,
}

#[derive(Debug, Clone, Serialize)]
pub struct JsonView {
    pub pointer: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub equals: Option<serde_json::Value>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub condition: Option<Condition>,
}

/// Text visitors for the plan's views: each calls `t` on every text of the plan that can hold
/// what a runbook or a value wrote (not on numbers, enumerations or JSON values, which are
/// written by rollout or escaped by JSON). The text views escape control characters with it.
fn texts_of_map(map: &mut BTreeMap<String, String>, t: &mut dyn FnMut(&mut String)) {
    map.values_mut().for_each(&mut *t);
    let renamed = map.keys().any(|k| {
        let mut k2 = k.clone();
        t(&mut k2);
        k2 != *k
    });
    if renamed {
        *map = std::mem::take(map)
            .into_iter()
            .map(|(mut k, v)| {
                t(&mut k);
                (k, v)
            })
            .collect();
    }
}

fn texts_of_path(path: &mut PathBuf, t: &mut dyn FnMut(&mut String)) {
    let mut text = path.to_string_lossy().into_owned();
    let before = text.clone();
    t(&mut text);
    if text != before {
        *path = PathBuf::from(text);
    }
}

impl Plan {
    /// Calls `t` on each text of the plan (see [`PlanStep::texts_mut`]).
    pub fn texts_mut(&mut self, t: &mut dyn FnMut(&mut String)) {
        let rb = &mut self.runbook;
        t(&mut rb.name);
        t(&mut rb.path);
        for o in [&mut rb.description, &mut rb.owner, &mut rb.version] {
            o.iter_mut().for_each(&mut *t);
        }
        for v in &mut self.variables {
            if let Some(VarValue::String(s)) = &mut v.value {
                t(s);
            }
            match &mut v.origin {
                Origin::File(path) => texts_of_path(path, t),
                Origin::Env(name) => t(name),
                _ => {}
            }
        }
        texts_of_map(&mut self.exported_env, t);
        for n in &mut self.notify {
            t(&mut n.url);
            n.skipped.iter_mut().for_each(&mut *t);
        }
        for p in &mut self.phases {
            p.texts_mut(t);
        }
        for s in &mut self.rollback {
            s.texts_mut(t);
        }
    }
}

impl PlanPhase {
    /// Calls `t` on each text of the phase (see [`PlanStep::texts_mut`]).
    pub fn texts_mut(&mut self, t: &mut dyn FnMut(&mut String)) {
        t(&mut self.title);
        self.description.iter_mut().for_each(&mut *t);
        for s in self
            .steps
            .iter_mut()
            .chain(&mut self.gate)
            .chain(&mut self.rollback)
        {
            s.texts_mut(t);
        }
        for a in &mut self.abort_when {
            t(&mut a.id);
            t(&mut a.name);
            match &mut a.probe {
                ProbeView::Metric {
                    query, prometheus, ..
                } => {
                    t(query);
                    prometheus.iter_mut().for_each(&mut *t);
                }
                ProbeView::Http { request, .. } => action_texts(request, t),
                ProbeView::Command {
                    command,
                    argv,
                    workdir,
                    env,
                    ..
                } => {
                    t(command);
                    argv.iter_mut().for_each(&mut *t);
                    texts_of_path(workdir, t);
                    texts_of_map(env, t);
                }
            }
            for o in [&mut a.from, &mut a.until] {
                o.iter_mut().for_each(&mut *t);
            }
            if let Some(live) = &mut a.live {
                live.texts_mut(t);
            }
        }
        for n in &mut self.abort_not_watched {
            t(&mut n.id);
            t(&mut n.name);
            t(&mut n.why);
        }
    }
}

impl LiveValue {
    fn texts_mut(&mut self, t: &mut dyn FnMut(&mut String)) {
        for (series, _) in &mut self.values {
            t(series);
        }
        self.detail.iter_mut().for_each(&mut *t);
    }
}

impl PlanStep {
    /// Calls `t` on each text of the step: its name, description, `when`, capture name and
    /// every text of its action (commands, arguments, environment, questions, items, roles,
    /// queries, URLs, headers, bodies, messages).
    pub fn texts_mut(&mut self, t: &mut dyn FnMut(&mut String)) {
        for o in [&mut self.name, &mut self.description, &mut self.capture] {
            o.iter_mut().for_each(&mut *t);
        }
        if let Some(w) = &mut self.when {
            t(&mut w.expression);
        }
        if let Some(live) = &mut self.live {
            live.texts_mut(t);
        }
        action_texts(&mut self.action, t);
    }
}

/// Calls `t` on each text of an action (see [`PlanStep::texts_mut`]).
fn action_texts(action: &mut Action, t: &mut dyn FnMut(&mut String)) {
    match action {
        Action::Run {
            argv,
            command,
            workdir,
            env,
        } => {
            argv.iter_mut().for_each(&mut *t);
            t(command);
            texts_of_path(workdir, t);
            texts_of_map(env, t);
        }
        Action::Kubectl { argv, env } => {
            argv.iter_mut().for_each(&mut *t);
            texts_of_map(env, t);
        }
        Action::Confirm {
            question,
            type_to_confirm,
        } => {
            t(question);
            type_to_confirm.iter_mut().for_each(&mut *t);
        }
        Action::Checklist { items } => items.iter_mut().for_each(&mut *t),
        Action::Signoff { title, roles, .. } => {
            t(title);
            for r in roles {
                t(&mut r.role);
                r.approvers.iter_mut().flatten().for_each(&mut *t);
            }
        }
        Action::Metric {
            query, prometheus, ..
        } => {
            t(query);
            prometheus.iter_mut().for_each(&mut *t);
        }
        Action::Http {
            method,
            url,
            headers,
            body,
            expect_body,
            expect_body_regex,
            expect_json,
            expect_headers,
            ..
        } => {
            t(method);
            t(url);
            texts_of_map(headers, t);
            for o in [body, expect_body, expect_body_regex] {
                o.iter_mut().for_each(&mut *t);
            }
            if let Some(j) = expect_json {
                t(&mut j.pointer);
            }
            for h in expect_headers {
                t(&mut h.name);
                for o in [&mut h.equals, &mut h.regex] {
                    o.iter_mut().for_each(&mut *t);
                }
            }
        }
        Action::Pause { message } => t(message),
        Action::Repeat { target, steps } => {
            t(target);
            steps.iter_mut().for_each(&mut *t);
        }
        Action::Wait { .. } => {}
    }
}
