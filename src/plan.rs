//! Model + variable values -> the ordered, fully rendered steps a run would execute.
//! `rollout plan` prints this; `rollout run` executes steps rendered by the same
//! [`Renderer::step`], so a preview cannot differ from the real run.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use serde::Serialize;

use crate::inputs::{Origin, Resolved, env_name};
use crate::redact::MASK;
use crate::runbook::Loaded;
use crate::runbook::condition::Condition;
use crate::runbook::duration::Duration;
use crate::runbook::model::{
    DeadlineAction, ErrorPolicy, FailureAction, FaultPolicies, JsonExpectation, NoDataPolicy,
    NotifyFormat, NotifyOn, Phase, Retry, Risk, Sampling, SamplingSpec, Step, StepKind, VarValue,
};
use crate::runbook::param::{self, Misfit, Param};
use crate::runbook::template::{RenderError, Scope, Tpl, Values};

/// What a plan shows in place of a secret value.
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
    pub when: Option<When>,
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
}

#[derive(Debug, Clone, Serialize)]
pub struct RoleView {
    pub role: String,
    pub approvers: Option<Vec<String>>,
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

/// Values a template can read that only exist once a run is under way.
#[derive(Debug, Clone)]
pub struct RunInfo {
    pub id: String,
    pub operator: String,
    pub started_at: String,
}

impl RunInfo {
    /// Placeholders for a plan, where no run exists yet.
    pub fn preview(operator: String) -> Self {
        RunInfo {
            id: "<run id>".into(),
            operator,
            started_at: "<start time>".into(),
        }
    }
}

/// Renders steps. Holds the values; `plan` gives masked secrets and placeholder captures,
/// `run` gives real ones. Both call [`Renderer::step`].
pub struct Renderer<'l> {
    pub loaded: &'l Loaded,
    base: Values,
    kubectl: String,
    runbook_dir: PathBuf,
    /// A preview (plan) holds placeholders for values only a run has: captures and secrets.
    preview: bool,
    /// Names whose value is a placeholder: a `when` reading one is decided at run time.
    placeholders: indexmap::IndexSet<String>,
    /// `[defaults] env` rendered with the current values: the same for every step until a
    /// value it reads changes, so rendered once, not once a step.
    defaults_env: std::sync::OnceLock<Result<BTreeMap<String, String>, RenderError>>,
    /// The names `[defaults] env` reads, when they are known exactly (its templates are simple).
    defaults_env_reads: Option<Vec<&'l str>>,
    /// Each variable's value as text (secrets masked), for errors about templated values.
    var_text: std::collections::HashMap<String, String>,
    /// Where each step is, for the abort criteria's windows; made when first needed.
    scopes: std::sync::OnceLock<crate::runbook::watch::Scopes<'l>>,
}

/// A step that could not be rendered, located in the runbook.
#[derive(Debug)]
pub struct StepRenderError {
    pub step: String,
    pub error: RenderError,
}

impl<'l> Renderer<'l> {
    /// A renderer for a run: values are real, every `when` is decided.
    pub fn for_run(
        loaded: &'l Loaded,
        vars: &[Resolved],
        run: &RunInfo,
        kubectl_env: Option<String>,
    ) -> Self {
        let mut r = Self::new(loaded, vars, run, kubectl_env);
        r.preview = false;
        r.placeholders.clear();
        r
    }

    /// A renderer for a plan: secrets masked, captures shown as placeholders.
    pub fn new(
        loaded: &'l Loaded,
        vars: &[Resolved],
        run: &RunInfo,
        kubectl_env: Option<String>,
    ) -> Self {
        let mut base = Values::default();
        for v in vars {
            match &v.value {
                Some(VarValue::String(s)) => base.insert(&v.name, s),
                Some(VarValue::Integer(i)) => base.insert(&v.name, i),
                Some(VarValue::Boolean(b)) => base.insert(&v.name, b),
                Some(VarValue::Float(x)) => base.insert(&v.name, x),
                None => base.insert(&v.name, MASK),
            }
        }
        let var_text = vars
            .iter()
            .map(|v| {
                let text = v
                    .value
                    .as_ref()
                    .map_or_else(|| MASK.to_string(), ToString::to_string);
                (v.name.clone(), text)
            })
            .collect();
        let mut run_map = BTreeMap::new();
        run_map.insert("id", run.id.clone());
        run_map.insert("operator", run.operator.clone());
        run_map.insert("started_at", run.started_at.clone());
        base.insert("run", &run_map);
        let kubectl = kubectl_env
            .filter(|k| !k.is_empty())
            .or_else(|| loaded.runbook.defaults.kubectl.binary.clone())
            .unwrap_or_else(|| "kubectl".into());
        let runbook_dir = runbook_dir(&loaded.source.path);
        let mut r = Renderer {
            loaded,
            base,
            kubectl,
            runbook_dir,
            preview: true,
            placeholders: vars
                .iter()
                .filter(|v| v.value.is_none())
                .map(|v| v.name.clone())
                .collect(),
            defaults_env: std::sync::OnceLock::new(),
            defaults_env_reads: {
                let env = &loaded.runbook.defaults.env;
                let t = &loaded.templates;
                env.iter()
                    .all(|(_, tpl)| t.is_simple(*tpl) || !t.source(*tpl).contains('{'))
                    .then(|| env.iter().flat_map(|(_, tpl)| t.reads(*tpl)).collect())
            },
            var_text,
            scopes: std::sync::OnceLock::new(),
        };
        let env = r.declared_env(&[]);
        r.base.insert("env", &env.unwrap_or_default());
        r.defaults_env = std::sync::OnceLock::new();
        r
    }

    /// Gives a secret its real value, for the renderer whose output processes receive.
    pub fn reveal(&mut self, name: &str, value: &str) {
        self.base.insert(name, value);
        self.defaults_env = std::sync::OnceLock::new();
    }

    /// Sets a captured output (or, in a plan, a placeholder for it).
    pub fn set_capture(&mut self, name: &str, value: &str) {
        self.base.insert(name, value);
        if self
            .defaults_env_reads
            .as_ref()
            .is_none_or(|reads| reads.contains(&name))
        {
            self.defaults_env = std::sync::OnceLock::new();
        }
        if self.preview {
            self.placeholders.insert(name.to_string());
        }
    }

    /// Sets a value a run captured, read back from its journal: a real value, not a
    /// placeholder, so a `when` reading it is decided (`rollout rollback --dry-run`).
    pub fn restore_capture(&mut self, name: &str, value: &str) {
        self.set_capture(name, value);
        self.placeholders.shift_remove(name);
    }

    fn render(&self, t: Tpl, ctx: &Scope<'_>) -> Result<String, RenderError> {
        self.loaded.templates.render(t, ctx)
    }

    fn declared_env(
        &self,
        extra: &[(String, Tpl)],
    ) -> Result<BTreeMap<String, String>, RenderError> {
        let defaults = self.defaults_env.get_or_init(|| {
            let mut env = BTreeMap::new();
            for (k, t) in &self.loaded.runbook.defaults.env {
                env.insert(k.clone(), self.render(*t, &Scope::of(&self.base))?);
            }
            Ok(env)
        });
        let mut env = defaults.clone()?;
        for (k, t) in extra {
            env.insert(k.clone(), self.render(*t, &Scope::of(&self.base))?);
        }
        Ok(env)
    }

    fn context<'s>(
        &'s self,
        phase: Option<&'s Phase>,
        step: &'s Step,
        env: &'s BTreeMap<String, String>,
    ) -> Scope<'s> {
        Scope {
            base: &self.base,
            phase: phase.map(|p| [p.id.get_ref().as_str(), p.title.as_str()]),
            step: Some([
                step.id.get_ref().as_str(),
                step.name.as_deref().unwrap_or(step.id.get_ref()),
            ]),
            env: Some(env),
        }
    }

    fn opt(&self, t: Option<Tpl>, ctx: &Scope<'_>) -> Result<Option<String>, RenderError> {
        t.map(|t| self.render(t, ctx)).transpose()
    }

    /// A runbook-level text (such as `lock`) rendered with the run's values.
    pub fn text(&self, t: Tpl) -> Result<String, RenderError> {
        self.render(t, &Scope::of(&self.base))
    }

    /// How to connect to Prometheus. With the real renderer, credentials are the secrets' values.
    pub fn prometheus_conn(&self) -> Result<PrometheusConn, RenderError> {
        let ctx = Scope::of(&self.base);
        let pc = &self.loaded.runbook.defaults.prometheus_client;
        let basic_auth = match &pc.basic_auth {
            Some(b) => Some((
                self.render(b.username, &ctx)?,
                self.render(b.password, &ctx)?,
            )),
            None => None,
        };
        let mut headers = Vec::new();
        for (name, t) in &pc.headers {
            headers.push((name.clone(), self.render(*t, &ctx)?));
        }
        Ok(PrometheusConn {
            bearer_token: self.opt(pc.bearer_token, &ctx)?,
            basic_auth,
            headers,
            ca_file: self
                .opt(pc.ca_file, &ctx)?
                .map(|f| self.runbook_dir.join(f)),
            timeout: pc.timeout.map(|t| t.0),
        })
    }

    /// An abort criterion as shown by `plan` and watched by `run` in `phase` (whose
    /// `on_failure` is its default action). `own`: the phase's own, else the runbook's.
    pub fn abort(
        &self,
        phase: &Phase,
        a: &crate::runbook::model::AbortCriterion,
        own: bool,
    ) -> Result<PlanAbort, RenderError> {
        use crate::runbook::model::Probe;
        let ctx = Scope {
            phase: own.then(|| [phase.id.get_ref().as_str(), phase.title.as_str()]),
            ..Scope::of(&self.base)
        };
        let every = self.interval(a.every, "every")?;
        let probe = match &a.probe {
            Probe::Metric {
                query,
                condition,
                prometheus,
            } => ProbeView::Metric {
                query: self.render(*query, &ctx)?,
                condition: self.condition(*condition, "condition")?,
                prometheus: self
                    .opt(prometheus.or(self.loaded.runbook.defaults.prometheus), &ctx)?
                    .or_else(crate::config::fallback_prometheus),
            },
            Probe::Http { check, timeout } => ProbeView::Http {
                request: Box::new(self.http_action(check, &ctx)?),
                timeout: self.probe_timeout(*timeout)?,
            },
            Probe::Command {
                command,
                shell,
                timeout,
            } => {
                let rb = &self.loaded.runbook;
                let command = self.render(*command, &ctx)?;
                let mut argv = shell.clone().unwrap_or_else(|| rb.defaults.shell.clone());
                argv.push(command.clone());
                let workdir = match self.opt(rb.defaults.workdir, &ctx)? {
                    Some(w) => self.runbook_dir.join(w),
                    None => self.runbook_dir.clone(),
                };
                ProbeView::Command {
                    command,
                    argv,
                    workdir,
                    env: self.declared_env(&[])?,
                    timeout: self.probe_timeout(*timeout)?,
                }
            }
        };
        Ok(PlanAbort {
            id: a.id.get_ref().clone(),
            name: a.name.clone(),
            scope: if own { "phase" } else { "runbook" },
            probe,
            sustained: self.duration(a.sustained, "for")?,
            every,
            action: a.action.unwrap_or(match phase.on_failure {
                FailureAction::Ask => FailureAction::Pause,
                other => other,
            }),
            from: None,
            until: None,
            live: None,
        })
    }

    /// An `http` step's request and expectations, rendered.
    fn http_action(
        &self,
        h: &crate::runbook::model::HttpCheck,
        ctx: &Scope<'_>,
    ) -> Result<Action, RenderError> {
        let ctx = *ctx;
        let expect_json = match &h.expect_json {
            Some((pointer, e)) => Some(JsonView {
                pointer: pointer.clone(),
                equals: match e {
                    JsonExpectation::Equals(v) => serde_json::to_value(v).ok(),
                    JsonExpectation::Condition(_) => None,
                },
                condition: match e {
                    JsonExpectation::Condition(c) => Some(self.condition(*c, "condition")?),
                    JsonExpectation::Equals(_) => None,
                },
            }),
            None => None,
        };
        let mut expect_headers = Vec::with_capacity(h.expect_headers.len());
        for (name, e) in &h.expect_headers {
            use crate::runbook::model::HeaderExpectation;
            let mut view = HeaderView {
                name: name.get_ref().clone(),
                present: None,
                equals: None,
                regex: None,
            };
            match e {
                HeaderExpectation::Present => view.present = Some(true),
                HeaderExpectation::Absent => view.present = Some(false),
                HeaderExpectation::Equals(t) => view.equals = Some(self.render(*t, &ctx)?),
                HeaderExpectation::Matches(r) => view.regex = Some(r.clone()),
            }
            expect_headers.push(view);
        }
        Ok(Action::Http {
            method: h.method.clone(),
            url: self.render(h.url, &ctx)?,
            headers: h
                .headers
                .iter()
                .map(|(k, t)| Ok((k.clone(), self.render(*t, &ctx)?)))
                .collect::<Result<_, RenderError>>()?,
            body: self.opt(h.body, &ctx)?,
            expect_status: h.expect_status.clone(),
            expect_body: self.opt(h.expect_body, &ctx)?,
            expect_body_regex: h.expect_body_regex.clone(),
            expect_json,
            expect_headers,
            max_latency: h
                .max_latency
                .map(|d| self.duration(d, "max_latency"))
                .transpose()?,
            every: self.interval(h.every, "every")?,
        })
    }

    /// The runbook's change window with the run's values, if it has one.
    pub fn window(&self) -> Result<Option<crate::runbook::window::Window>, RenderError> {
        use crate::runbook::window as win;
        let Some(w) = &self.loaded.runbook.meta.window else {
            return Ok(None);
        };
        let ctx = Scope::of(&self.base);
        let part =
            |t: Tpl, parse: &dyn Fn(&str) -> Result<(), String>| -> Result<String, RenderError> {
                let text = self.render(t, &ctx)?;
                parse(&text).map_err(|why| RenderError {
                    message: format!(
                        "the change window's `{}` is `{text}`: {why}",
                        self.loaded.templates.source(t)
                    ),
                    span: self.loaded.templates.span(t),
                })?;
                Ok(text)
            };
        let days = part(w.days, &|s| win::parse_days(s).map(|_| ()))?;
        let start = part(w.start, &|s| win::parse_time(s, false).map(|_| ()))?;
        let end = part(w.end, &|s| win::parse_time(s, true).map(|_| ()))?;
        let zone = part(w.time_zone, &|s| win::parse_zone(s).map(|_| ()))?;
        win::Window::new(&days, &start, &end, &zone)
            .map(Some)
            .map_err(|message| RenderError {
                message,
                span: self.loaded.templates.span(w.days),
            })
    }

    /// A phase's time budget, resolved.
    pub fn budget(&self, phase: &Phase) -> Result<Option<Budget>, RenderError> {
        match phase.max_duration {
            Some((after, then)) => Ok(Some(Budget {
                after: self.interval(after, "max_duration")?,
                then,
            })),
            None => Ok(None),
        }
    }

    /// How long one probe may take: its `timeout`, else 10s.
    fn probe_timeout(&self, t: Option<Param<Duration>>) -> Result<Duration, RenderError> {
        t.map_or(Ok(Duration(std::time::Duration::from_secs(10))), |t| {
            self.interval(t, "timeout")
        })
    }

    /// The criteria watched in (part of) phase `p`, with their windows, and the runbook's that
    /// are not watched there.
    pub fn phase_criteria(
        &self,
        p: usize,
    ) -> Result<(Vec<PlanAbort>, Vec<NotWatched>), StepRenderError> {
        use crate::runbook::watch::{InPhase, Owner, Scopes};
        let rb = &self.loaded.runbook;
        let phase = &rb.phases[p];
        if rb.abort_when.is_empty() && phase.abort_when.is_empty() {
            return Ok((Vec::new(), Vec::new()));
        }
        let scopes = self.scopes.get_or_init(|| Scopes::new(rb));
        let mut watched = Vec::new();
        let mut not = Vec::new();
        for (i, a) in rb.abort_when.iter().enumerate() {
            if let Some(why) = scopes.left_out(i, p) {
                not.push(NotWatched {
                    id: a.id.get_ref().clone(),
                    name: a.name.clone(),
                    why,
                });
            }
        }
        for owner in scopes.candidates(p) {
            let a = scopes.criterion(owner);
            match scopes.in_phase(owner, p) {
                InPhase::NotWatched(why) if matches!(owner, Owner::Runbook(_)) => {
                    not.push(NotWatched {
                        id: a.id.get_ref().clone(),
                        name: a.name.clone(),
                        why,
                    });
                }
                InPhase::NotWatched(_) => {}
                InPhase::Watched { from, until } => {
                    let mut view = self
                        .abort(phase, a, matches!(owner, Owner::Phase(..)))
                        .map_err(|error| StepRenderError {
                            step: format!("abort criterion `{}`", a.id.get_ref()),
                            error,
                        })?;
                    view.from = from;
                    view.until = until;
                    watched.push(view);
                }
            }
        }
        Ok((watched, not))
    }

    /// A duration, count or threshold: as written, or its template rendered with the variables
    /// and parsed. An error names the variables and their values, and points at the template.
    fn param<T: Copy>(
        &self,
        p: Param<T>,
        key: &str,
        what: &str,
        parse: impl Fn(&str) -> Result<T, String>,
    ) -> Result<T, RenderError> {
        let t = match p {
            Param::Fixed(v) => return Ok(v),
            Param::Template(t) => t,
        };
        let rendered = self.render(t, &Scope::of(&self.base))?;
        parse(&rendered).map_err(|why| {
            let values: Vec<String> = self
                .loaded
                .templates
                .reads(t)
                .iter()
                .map(|n| {
                    let v = self.var_text.get(*n).map_or("?", String::as_str);
                    format!("`{n}` = `{v}`")
                })
                .collect();
            RenderError {
                message: format!(
                    "`{key}` = `{}` gives `{rendered}` with {}, which is not {what}: {why}",
                    self.loaded.templates.source(t),
                    values.join(" and ")
                ),
                span: self.loaded.templates.span(t),
            }
        })
    }

    fn duration(&self, p: Param<Duration>, key: &str) -> Result<Duration, RenderError> {
        self.param(p, key, "a duration", param::parse_duration_value)
    }

    /// A duration that must be longer than zero (`every`, `timeout`).
    fn interval(&self, p: Param<Duration>, key: &'static str) -> Result<Duration, RenderError> {
        let d = self.duration(p, key)?;
        match param::interval_problem(key, d) {
            Some(message) => Err(self.misfit(
                p,
                &Misfit {
                    key,
                    message,
                    label: "zero interval",
                    help: None,
                },
            )),
            None => Ok(d),
        }
    }

    fn condition(&self, p: Param<Condition>, key: &str) -> Result<Condition, RenderError> {
        self.param(p, key, "a threshold", param::parse_threshold)
    }

    /// A check's sampling with its values resolved, and checked as `validate` checks written ones.
    fn sampling(
        &self,
        spec: SamplingSpec,
        failure_limit: u32,
        successes: u32,
    ) -> Result<Sampling, RenderError> {
        let window = spec.window.map(|w| self.duration(w, "for")).transpose()?;
        let samples = spec
            .samples
            .map(|n| self.param(n, "samples", "a whole number", |t| param::parse_count(t, 1)))
            .transpose()?;
        let every = spec.every.map(|e| self.duration(e, "every")).transpose()?;
        let at = |key: &str| -> Option<Tpl> {
            let templated = |p: Option<Param<Duration>>| match p {
                Some(Param::Template(t)) => Some(t),
                _ => None,
            };
            match key {
                "samples" => match spec.samples {
                    Some(Param::Template(t)) => Some(t),
                    _ => None,
                },
                "every" => templated(spec.every),
                _ => templated(spec.window),
            }
            .or(templated(spec.window))
            .or(templated(spec.every))
            .or(match spec.samples {
                Some(Param::Template(t)) => Some(t),
                _ => None,
            })
        };
        let sampling =
            param::sampling(window, samples, every).map_err(|m| self.misfit_at(at(m.key), &m))?;
        if let Some(m) = param::limits_problem(sampling, Some(failure_limit), Some(successes)) {
            return Err(self.misfit_at(at(m.key), &m));
        }
        Ok(sampling)
    }

    fn misfit<T: Copy>(&self, p: Param<T>, m: &Misfit) -> RenderError {
        self.misfit_at(
            match p {
                Param::Template(t) => Some(t),
                Param::Fixed(_) => None,
            },
            m,
        )
    }

    /// Values that do not fit together, pointed at the template that made them.
    fn misfit_at(&self, t: Option<Tpl>, m: &Misfit) -> RenderError {
        let with = t.map_or_else(String::new, |t| {
            let values: Vec<String> = self
                .loaded
                .templates
                .reads(t)
                .iter()
                .map(|n| {
                    format!(
                        "`{n}` = `{}`",
                        self.var_text.get(*n).map_or("?", String::as_str)
                    )
                })
                .collect();
            format!(" (with {})", values.join(" and "))
        });
        RenderError {
            message: format!("{}{with}", m.sentence()),
            span: t.map_or(0..0, |t| self.loaded.templates.span(t)),
        }
    }

    pub fn step(&self, phase: Option<&Phase>, step: &Step) -> Result<PlanStep, StepRenderError> {
        self.step_inner(phase, step)
            .map_err(|error| StepRenderError {
                step: step.id.get_ref().clone(),
                error,
            })
    }

    fn step_inner(&self, phase: Option<&Phase>, step: &Step) -> Result<PlanStep, RenderError> {
        let rb = &self.loaded.runbook;
        let step_env = match &step.kind {
            StepKind::Shell(s) => s.env.as_slice(),
            StepKind::Kubectl(k) => k.env.as_slice(),
            _ => &[],
        };
        let env = self.declared_env(step_env)?;
        let ctx = self.context(phase, step, &env);
        let when = match step.when {
            Some(t) => {
                let reads_placeholder = self
                    .loaded
                    .templates
                    .reads(t)
                    .iter()
                    .any(|n| self.placeholders.contains(*n));
                let decision = if reads_placeholder {
                    "at_run_time"
                } else if self.loaded.templates.truthy(t, &ctx)? {
                    "run"
                } else {
                    "skip"
                };
                Some(When {
                    expression: self.loaded.templates.source(t).to_string(),
                    decision,
                })
            }
            None => None,
        };
        let timed = matches!(
            step.kind,
            StepKind::Shell(_) | StepKind::Kubectl(_) | StepKind::Metric(_) | StepKind::Http(_)
        );
        let action = match &step.kind {
            StepKind::Shell(s) => {
                let command = self.render(s.command, &ctx)?;
                let mut argv = s.shell.clone().unwrap_or_else(|| rb.defaults.shell.clone());
                argv.push(command.clone());
                let workdir = match self.opt(s.workdir.or(rb.defaults.workdir), &ctx)? {
                    Some(w) => self.runbook_dir.join(w),
                    None => self.runbook_dir.clone(),
                };
                Action::Run {
                    argv,
                    command,
                    workdir,
                    env,
                }
            }
            StepKind::Kubectl(k) => {
                let mut argv = vec![self.kubectl.clone()];
                let context = self.opt(k.context.or(rb.defaults.kubectl.context), &ctx)?;
                let namespace = self.opt(k.namespace.or(rb.defaults.kubectl.namespace), &ctx)?;
                for (flag, value) in [("--context", context), ("--namespace", namespace)] {
                    if let Some(v) = value.filter(|v| !v.is_empty()) {
                        argv.push(flag.into());
                        argv.push(v);
                    }
                }
                for a in &k.args {
                    argv.push(self.render(*a, &ctx)?);
                }
                Action::Kubectl { argv, env }
            }
            StepKind::Confirm {
                question,
                type_to_confirm,
            } => Action::Confirm {
                question: self.render(*question, &ctx)?,
                type_to_confirm: self.opt(*type_to_confirm, &ctx)?,
            },
            StepKind::Checklist { items } => Action::Checklist {
                items: items
                    .iter()
                    .map(|t| self.render(*t, &ctx))
                    .collect::<Result<_, _>>()?,
            },
            StepKind::Signoff(s) => Action::Signoff {
                title: self.render(s.title, &ctx)?,
                roles: s
                    .roles
                    .iter()
                    .map(|r| RoleView {
                        role: r.name.get_ref().clone(),
                        approvers: r
                            .approvers
                            .as_ref()
                            .map(|a| a.iter().map(|x| x.get_ref().clone()).collect()),
                    })
                    .collect(),
                required: *s.required.get_ref(),
                exclude_operator: s.exclude_operator,
            },
            StepKind::Metric(m) => Action::Metric {
                query: self.render(m.query, &ctx)?,
                condition: self.condition(m.condition, "condition")?,
                sampling: self.sampling(m.sampling, m.failure_limit, m.successes)?,
                failure_limit: m.failure_limit,
                successes: m.successes,
                no_data: m.no_data,
                on_error: m.on_error,
                faults: m.faults,
                prometheus: self
                    .opt(m.prometheus.or(rb.defaults.prometheus), &ctx)?
                    .or_else(crate::config::fallback_prometheus),
            },
            StepKind::Http(h) => self.http_action(h, &ctx)?,
            StepKind::Wait { duration } => Action::Wait {
                duration: self.duration(*duration, "wait")?,
            },
            StepKind::Pause { message } => Action::Pause {
                message: self.render(*message, &ctx)?,
            },
            StepKind::Repeat { target } => Action::Repeat {
                target: target.get_ref().clone(),
                steps: self.repeat_targets(target.get_ref()),
            },
        };
        Ok(PlanStep {
            id: step.id.get_ref().clone(),
            name: step.name.clone(),
            description: step.description.clone(),
            line: self.loaded.source.line(step.span.start),
            when,
            timeout: if timed {
                Some(self.interval(step.timeout.unwrap_or(rb.defaults.timeout), "timeout")?)
            } else {
                None
            },
            retry: match step.retry {
                Some(r) => Some(Retry {
                    attempts: r.attempts,
                    delay: self.duration(r.delay, "delay")?,
                    backoff: r.backoff,
                    max_delay: r
                        .max_delay
                        .map(|d| self.duration(d, "max_delay"))
                        .transpose()?,
                }),
                None => None,
            },
            continue_on_error: step.continue_on_error,
            on_failure: step
                .on_failure
                .or(phase.map(|p| p.on_failure))
                .unwrap_or(FailureAction::Abort),
            idempotent: step.idempotent,
            capture: step.capture.as_ref().map(|c| c.get_ref().clone()),
            deadline: match step.deadline {
                Some((after, then)) => Some(Deadline {
                    after: self.duration(after, "deadline")?,
                    then,
                }),
                None => None,
            },
            action,
            live: None,
        })
    }

    /// The step ids a `repeat` re-evaluates: one step, or every gate step of a phase.
    pub fn repeat_targets(&self, target: &str) -> Vec<String> {
        let rb = &self.loaded.runbook;
        match rb.phases.iter().find(|p| p.id.get_ref() == target) {
            // A phase's checks and gates, evaluated again: never its commands, waits or pauses.
            Some(p) => p
                .gate
                .iter()
                .filter(|s| s.kind.is_repeatable())
                .map(|s| s.id.get_ref().clone())
                .collect(),
            None => vec![target.to_string()],
        }
    }

    /// Renders `steps` in order and sets their captures; without `errors`, only sets the
    /// captures.
    fn steps(
        &mut self,
        phase: Option<&Phase>,
        steps: &[Step],
        mut errors: Option<&mut Vec<StepRenderError>>,
    ) -> Vec<PlanStep> {
        let mut out = Vec::with_capacity(if errors.is_some() { steps.len() } else { 0 });
        for step in steps {
            if let Some(errors) = errors.as_deref_mut() {
                match self.step(phase, step) {
                    Ok(s) => out.push(s),
                    Err(e) => errors.push(e),
                }
            }
            if let Some(c) = &step.capture {
                self.set_capture(
                    c.get_ref(),
                    &format!("<output of step {}>", step.id.get_ref()),
                );
            }
        }
        out
    }
}

/// The directory relative paths in a runbook are resolved against: the runbook's own.
pub fn runbook_dir(path: &Path) -> PathBuf {
    let parent = path
        .parent()
        .filter(|p| !p.as_os_str().is_empty())
        .unwrap_or(Path::new("."));
    std::fs::canonicalize(parent).unwrap_or_else(|_| parent.to_path_buf())
}

/// Builds the whole plan. Nothing is executed and nothing is written.
pub fn build(
    loaded: &Loaded,
    vars: &[Resolved],
    run: &RunInfo,
    kubectl_env: Option<String>,
) -> Result<Plan, Vec<StepRenderError>> {
    let mut r = Renderer::new(loaded, vars, run, kubectl_env);
    let mut errors = Vec::new();
    let phases = loaded
        .runbook
        .phases
        .iter()
        .enumerate()
        .filter_map(|(k, phase)| plan_phase(&mut r, k, phase, Some(&mut errors)))
        .collect();
    let rollback = incident_rollback(&r, vars, run, &mut errors);
    let plan = head(&r, vars, phases, rollback, &mut errors);
    if !errors.is_empty() {
        return Err(errors);
    }
    Ok(plan)
}

/// Renders every step as [`build`] does and keeps nothing: whether a plan can be built.
pub fn check(
    loaded: &Loaded,
    vars: &[Resolved],
    run: &RunInfo,
    kubectl_env: Option<&str>,
) -> Result<(), Vec<StepRenderError>> {
    let make = || Renderer::new(loaded, vars, run, kubectl_env.map(str::to_string));
    let mut errors = render_phases(loaded, &make, &|_, _| (), |()| {});
    let r = make();
    drop(incident_rollback(&r, vars, run, &mut errors));
    if let Err(error) = r.window() {
        errors.push(StepRenderError {
            step: "`[runbook.window]`".into(),
            error,
        });
    }
    if errors.is_empty() {
        Ok(())
    } else {
        Err(errors)
    }
}

/// Renders every phase exactly as one [`Renderer`] going through them in order would, split
/// between two threads (each renders every other phase, and only follows the captures of the
/// others). `each` turns a phase rendered without error into what `sink` gets, on the thread
/// that rendered it; `sink` gets them in phase order, on this thread, until a phase fails.
/// Returns every step that could not be rendered, in runbook order.
fn render_phases<'l, T: Send>(
    loaded: &'l Loaded,
    make: &(dyn Fn() -> Renderer<'l> + Sync),
    each: &(dyn Fn(usize, PlanPhase) -> T + Sync),
    mut sink: impl FnMut(T),
) -> Vec<StepRenderError> {
    const WORKERS: usize = 2;
    let phases = &loaded.runbook.phases;
    std::thread::scope(|s| {
        let mut results = Vec::new();
        let mut workers = Vec::new();
        for w in 0..WORKERS {
            let (send, receive) = std::sync::mpsc::sync_channel::<Option<T>>(2);
            results.push(receive);
            workers.push(s.spawn(move || {
                let mut r = make();
                let mut errors: Vec<(usize, Vec<StepRenderError>)> = Vec::new();
                for (k, phase) in phases.iter().enumerate() {
                    if k % WORKERS != w {
                        plan_phase(&mut r, k, phase, None);
                        continue;
                    }
                    let mut found = Vec::new();
                    let view = plan_phase(&mut r, k, phase, Some(&mut found));
                    // After a failure the phases are still rendered, to report every step
                    // that cannot be, but nothing is handed on.
                    let kept = match view {
                        Some(view) if found.is_empty() && errors.is_empty() => Some(each(k, view)),
                        _ => None,
                    };
                    if !found.is_empty() {
                        errors.push((k, found));
                    }
                    // This side stops only when the other has gone (a panic).
                    if send.send(kept).is_err() {
                        break;
                    }
                }
                errors
            }));
        }
        let mut failed = false;
        for k in 0..phases.len() {
            match results[k % WORKERS].recv() {
                Ok(Some(item)) if !failed => sink(item),
                Ok(_) => failed = true,
                Err(_) => break,
            }
        }
        drop(results);
        let mut errors: Vec<(usize, Vec<StepRenderError>)> = workers
            .into_iter()
            .flat_map(|w| {
                w.join()
                    .unwrap_or_else(|panic| std::panic::resume_unwind(panic))
            })
            .collect();
        errors.sort_by_key(|(k, _)| *k);
        errors.into_iter().flat_map(|(_, e)| e).collect()
    })
}

/// How [`write`] lays out a plan.
pub enum Layout {
    /// What `serde_json::to_writer_pretty(out, &build(..)?)` writes, byte for byte.
    Json,
    /// What [`crate::ui::plan_view::render`] gives for `build(..)?`, byte for byte.
    Text { color: bool },
}

/// Writes the plan, exactly as [`build`] followed by `layout` would, but never holds the whole
/// plan: a 10,000-step plan is rendered and written a phase at a time.
///
/// Each step is rendered once, on another core, while this thread writes the phases already
/// rendered. A step that cannot be rendered must stop the plan before any of it is written, so
/// what is written goes first into a [`Hold`], which lets it out only once every step has been
/// rendered (and drops it if one could not be). The hold keeps a small plan in memory and spills
/// a large one to an unnamed temporary file, which is gone when the process ends.
pub fn write<W: std::io::Write>(
    out: W,
    loaded: &Loaded,
    vars: &[Resolved],
    run: &RunInfo,
    kubectl_env: Option<&str>,
    layout: &Layout,
) -> Result<std::io::Result<()>, Vec<StepRenderError>> {
    use std::io::Write;
    let make = || Renderer::new(loaded, vars, run, kubectl_env.map(str::to_string));
    let mut errors = Vec::new();
    let r = make();
    let rollback = incident_rollback(&r, vars, run, &mut errors);
    // Everything but the phases, laid out as the whole plan would be.
    let mut head = head(&r, vars, Vec::new(), rollback, &mut errors);
    drop(r);
    let total = loaded.runbook.phases.len();
    let mut hold = std::io::BufWriter::with_capacity(
        64 * 1024,
        Hold {
            memory: Vec::new(),
            spill: None,
        },
    );
    let mut written = Ok(());
    let mut write = |bytes: &[u8]| {
        if written.is_ok() {
            written = hold.write_all(bytes);
        }
    };
    match layout {
        Layout::Json => {
            let whole = serde_json::to_string_pretty(&head).map_err(std::io::Error::from);
            let (before, after) = match &whole {
                // No raw line break can be inside a JSON string: this is the `phases` key.
                Ok(text) => text
                    .split_once("\n  \"phases\": []")
                    .unwrap_or((text.as_str(), "")),
                Err(_) => ("", ""),
            };
            write(before.as_bytes());
            write(b"\n  \"phases\": [");
            let mut failed_json = None;
            let mut first = true;
            // Each phase as `to_writer_pretty` lays it out inside the plan: two levels deeper.
            let each = |_: usize, view: PlanPhase| {
                let mut element = Vec::new();
                let mut json =
                    serde_json::Serializer::with_formatter(&mut element, Nested::at_depth(2));
                view.serialize(&mut json).map(|()| element)
            };
            errors.splice(
                0..0,
                render_phases(
                    loaded,
                    &make,
                    &each,
                    |element: serde_json::Result<Vec<u8>>| {
                        write(if first { b"\n    " } else { b",\n    " });
                        match element {
                            Ok(element) => write(&element),
                            Err(e) => failed_json = Some(e),
                        }
                        first = false;
                    },
                ),
            );
            write(if first { b"]" } else { b"\n  ]" });
            write(after.as_bytes());
            write(b"\n");
            if let Err(e) = whole {
                written = Err(e);
            }
            if let Some(e) = failed_json {
                written = Err(e.into());
            }
        }
        Layout::Text { color } => {
            let color = *color;
            write(crate::ui::plan_view::text_head(&mut head, color).as_bytes());
            let mut count = 0;
            let each = |k: usize, mut view: PlanPhase| {
                (
                    crate::ui::plan_view::text_phase(k, total, &mut view, color),
                    view.steps.len() + view.gate.len(),
                )
            };
            errors.splice(
                0..0,
                render_phases(loaded, &make, &each, |(text, steps): (String, usize)| {
                    write(text.as_bytes());
                    count += steps;
                }),
            );
            write(crate::ui::plan_view::text_tail(&head, total, count, color).as_bytes());
        }
    }
    if !errors.is_empty() {
        return Err(errors);
    }
    Ok(written
        .and_then(|()| {
            hold.into_inner()
                .map_err(std::io::IntoInnerError::into_error)
        })
        .and_then(|hold| hold.release(out)))
}

/// `serde_json`'s pretty layout (two spaces a level) for a value written `depth` levels down
/// in a larger document: what `to_writer_pretty` of the whole document writes for it.
struct Nested {
    depth: usize,
    has_value: bool,
}

impl Nested {
    fn at_depth(depth: usize) -> Self {
        Nested {
            depth,
            has_value: false,
        }
    }

    fn newline<W: ?Sized + std::io::Write>(&self, w: &mut W, comma: bool) -> std::io::Result<()> {
        // Two spaces a level, written in one go for the usual depths.
        const SPACES: &[u8; 32] = b"                                ";
        w.write_all(if comma { b",\n" } else { b"\n" })?;
        let mut indent = 2 * self.depth;
        while indent > 0 {
            let n = indent.min(SPACES.len());
            w.write_all(&SPACES[..n])?;
            indent -= n;
        }
        Ok(())
    }
}

impl serde_json::ser::Formatter for Nested {
    fn begin_array<W: ?Sized + std::io::Write>(&mut self, w: &mut W) -> std::io::Result<()> {
        self.depth += 1;
        self.has_value = false;
        w.write_all(b"[")
    }

    fn end_array<W: ?Sized + std::io::Write>(&mut self, w: &mut W) -> std::io::Result<()> {
        self.depth -= 1;
        if self.has_value {
            self.newline(w, false)?;
        }
        w.write_all(b"]")
    }

    fn begin_array_value<W: ?Sized + std::io::Write>(
        &mut self,
        w: &mut W,
        first: bool,
    ) -> std::io::Result<()> {
        self.newline(w, !first)
    }

    fn end_array_value<W: ?Sized + std::io::Write>(&mut self, _: &mut W) -> std::io::Result<()> {
        self.has_value = true;
        Ok(())
    }

    fn begin_object<W: ?Sized + std::io::Write>(&mut self, w: &mut W) -> std::io::Result<()> {
        self.depth += 1;
        self.has_value = false;
        w.write_all(b"{")
    }

    fn end_object<W: ?Sized + std::io::Write>(&mut self, w: &mut W) -> std::io::Result<()> {
        self.depth -= 1;
        if self.has_value {
            self.newline(w, false)?;
        }
        w.write_all(b"}")
    }

    fn begin_object_key<W: ?Sized + std::io::Write>(
        &mut self,
        w: &mut W,
        first: bool,
    ) -> std::io::Result<()> {
        self.newline(w, !first)
    }

    fn begin_object_value<W: ?Sized + std::io::Write>(&mut self, w: &mut W) -> std::io::Result<()> {
        w.write_all(b": ")
    }

    fn end_object_value<W: ?Sized + std::io::Write>(&mut self, _: &mut W) -> std::io::Result<()> {
        self.has_value = true;
        Ok(())
    }
}

/// The most plan bytes a [`Hold`] keeps in memory before it spills to a temporary file.
const HOLD: usize = 256 * 1024;

/// Holds what is written until it may go out.
struct Hold {
    memory: Vec<u8>,
    /// An unnamed temporary file (see [`tempfile::tempfile`]): nothing is left on disk.
    spill: Option<std::fs::File>,
}

impl Hold {
    /// Writes out everything held, in order.
    fn release(mut self, mut out: impl std::io::Write) -> std::io::Result<()> {
        use std::io::Seek;
        if let Some(mut file) = self.spill.take() {
            file.seek(std::io::SeekFrom::Start(0))?;
            std::io::copy(&mut file, &mut out)?;
        }
        out.write_all(&self.memory)?;
        out.flush()
    }
}

impl std::io::Write for Hold {
    fn write(&mut self, data: &[u8]) -> std::io::Result<usize> {
        if let Some(file) = &mut self.spill {
            return file.write(data);
        }
        if self.memory.len() + data.len() > HOLD {
            // Without a usable temporary directory, everything stays in memory.
            if let Ok(mut file) = tempfile::tempfile() {
                if file.write_all(&self.memory).is_ok() {
                    self.memory = Vec::new();
                    self.spill = Some(file);
                    return self.write(data);
                }
            }
        }
        self.memory.extend_from_slice(data);
        Ok(data.len())
    }

    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

/// One phase as the plan shows it. `r` carries the captures of earlier phases, and is given
/// those of this one. Without `errors`, nothing is rendered: `r` only follows the phase.
fn plan_phase(
    r: &mut Renderer<'_>,
    k: usize,
    phase: &Phase,
    mut errors: Option<&mut Vec<StepRenderError>>,
) -> Option<PlanPhase> {
    let (abort_when, abort_not_watched) = match errors.as_deref_mut() {
        Some(errors) => match r.phase_criteria(k) {
            Ok(found) => found,
            Err(e) => {
                errors.push(e);
                (Vec::new(), Vec::new())
            }
        },
        None => (Vec::new(), Vec::new()),
    };
    let max_duration = match errors.as_deref_mut() {
        Some(errors) => r.budget(phase).unwrap_or_else(|error| {
            errors.push(StepRenderError {
                step: format!("the `max_duration` of phase `{}`", phase.id.get_ref()),
                error,
            });
            None
        }),
        None => None,
    };
    let steps = r.steps(Some(phase), &phase.steps, errors.as_deref_mut());
    let gate = r.steps(Some(phase), &phase.gate, errors.as_deref_mut());
    let saved = r.placeholders.len();
    let rollback = r.steps(Some(phase), &phase.rollback, errors.as_deref_mut());
    r.placeholders.truncate(saved);
    errors?;
    Some(PlanPhase {
        id: phase.id.get_ref().clone(),
        title: phase.title.clone(),
        description: phase.description.clone(),
        on_failure: phase.on_failure,
        max_duration,
        steps,
        gate,
        abort_when,
        abort_not_watched,
        rollback,
    })
}

/// The runbook-level rollback, rendered as `rollout rollback` would run it: without the
/// captures of any phase.
fn incident_rollback(
    r: &Renderer<'_>,
    vars: &[Resolved],
    run: &RunInfo,
    errors: &mut Vec<StepRenderError>,
) -> Vec<PlanStep> {
    let mut incident = Renderer::new(r.loaded, vars, run, None);
    incident.kubectl.clone_from(&r.kubectl);
    incident.steps(None, &r.loaded.runbook.rollback, Some(errors))
}

/// The plan around `phases` and the runbook-level `rollback`.
fn head(
    r: &Renderer<'_>,
    vars: &[Resolved],
    phases: Vec<PlanPhase>,
    rollback: Vec<PlanStep>,
    errors: &mut Vec<StepRenderError>,
) -> Plan {
    let window = match r.window() {
        Ok(w) => w.map(|w| WindowView {
            days: ["mon", "tue", "wed", "thu", "fri", "sat", "sun"]
                .into_iter()
                .zip(w.days)
                .filter_map(|(d, on)| on.then_some(d))
                .collect(),
            start: format!("{:02}:{:02}", w.start / 60, w.start % 60),
            end: format!("{:02}:{:02}", w.end / 60, w.end % 60),
            time_zone: w.zone_name.clone(),
            text: w.to_string(),
        }),
        Err(error) => {
            errors.push(StepRenderError {
                step: "`[runbook.window]`".into(),
                error,
            });
            None
        }
    };
    let loaded = r.loaded;
    let rb = &loaded.runbook;
    let exported_env = vars
        .iter()
        .map(|v| {
            (
                env_name(&v.name),
                v.value
                    .as_ref()
                    .map_or_else(|| MASK.to_string(), ToString::to_string),
            )
        })
        .collect();
    let runbook = RunbookInfo {
        name: rb.meta.name.clone(),
        description: rb.meta.description.clone(),
        owner: rb.meta.owner.clone(),
        risk: rb.meta.risk.map(Risk::name),
        version: rb.meta.version.clone(),
        path: loaded.source.name.clone(),
        digest: loaded.source.digest().to_string(),
    };
    let variables = vars
        .iter()
        .map(|v| PlanVar {
            name: v.name.clone(),
            value: v.value.clone(),
            secret: v.value.is_none(),
            origin: v.origin.clone(),
        })
        .collect();
    // As the run makes its targets: the runbook's, rendered, then the user config's.
    let own = rb.notify.iter().map(|t| {
        let (url, skipped) = match r.text(t.url) {
            Ok(url) => (url, None),
            Err(e) => (String::new(), Some(e.message)),
        };
        PlanNotify {
            url,
            format: t.format,
            on: t.on.clone(),
            from: NotifyFrom::Runbook,
            skipped,
        }
    });
    let theirs = crate::config::active().notify.iter().map(|t| PlanNotify {
        url: crate::ui::notify::label(&t.url),
        format: t.format,
        on: t.on.clone(),
        from: NotifyFrom::Config,
        skipped: None,
    });
    Plan {
        format_version: FORMAT_VERSION,
        runbook,
        variables,
        exported_env,
        notify: own.chain(theirs).collect(),
        window,
        phases,
        rollback,
    }
}

#[cfg(test)]
mod tests {
    use std::fmt::Write as _;

    use super::*;

    /// What `plan` writes, a phase at a time from two threads, is exactly what building the whole
    /// plan and then laying it out gives, in both layouts, and for a failing step, nothing.
    fn written_as_built(path: &Path) {
        use crate::runbook::model::{VarType, VarValue};
        let loaded = match crate::runbook::load(path) {
            Ok(loaded) => loaded,
            Err(crate::runbook::LoadError::Invalid(_, d)) => {
                panic!("{}: {:?}", path.display(), d.first().map(|d| &d.message))
            }
            Err(e) => panic!("{}: {e:?}", path.display()),
        };
        // A value for every variable that must be given.
        let assignments = loaded
            .runbook
            .vars
            .iter()
            .filter(|v| v.default.is_none() && v.secret.is_none())
            .map(|v| {
                let value = match (v.allowed.first(), v.ty) {
                    (Some(VarValue::String(s)), _) => s.clone(),
                    (Some(other), _) => other.to_string(),
                    (None, VarType::Integer) => "1".into(),
                    (None, VarType::Boolean) => "true".into(),
                    (None, VarType::Duration) => "1m".into(),
                    (None, _) => "test".into(),
                };
                format!("{}={value}", v.name.get_ref())
            })
            .collect();
        let inputs = crate::inputs::VarInputs {
            assignments,
            files: Vec::new(),
        };
        let resolved =
            crate::inputs::resolve(&loaded.runbook, &inputs, &|_| None).expect("variables");
        let run = RunInfo::preview("ops".into());
        // The JSON layout comes first: the text layouts escape the built plan in place.
        let mut built = build(&loaded, &resolved, &run, None);
        for (layout, name) in [
            (Layout::Json, "json"),
            (Layout::Text { color: false }, "text"),
            (Layout::Text { color: true }, "color text"),
        ] {
            let mut out = Vec::new();
            let written = write(&mut out, &loaded, &resolved, &run, None, &layout);
            match (&mut built, written) {
                (Ok(plan), Ok(Ok(()))) => {
                    let expected = match layout {
                        Layout::Json => {
                            let mut json = serde_json::to_vec_pretty(&*plan).expect("json");
                            json.push(b'\n');
                            json
                        }
                        Layout::Text { color } => {
                            crate::ui::plan_view::render(plan, color).into_bytes()
                        }
                    };
                    assert!(
                        out == expected,
                        "{name} plan of {} differs from the built plan",
                        path.display()
                    );
                }
                (Err(expected), Err(errors)) => {
                    assert!(out.is_empty(), "nothing is written when a step fails");
                    let steps = |e: &[StepRenderError]| -> Vec<String> {
                        e.iter().map(|e| e.step.clone()).collect()
                    };
                    assert_eq!(steps(&errors), steps(expected));
                }
                (b, w) => panic!(
                    "{}: built {:?}, written {:?}",
                    path.display(),
                    b.as_ref().map(|_| ()).map_err(Vec::len),
                    w.map(|_| ()).map_err(|e| e.len())
                ),
            }
        }
    }

    #[test]
    fn streamed_plans_are_the_built_plans() {
        let dir = concat!(env!("CARGO_MANIFEST_DIR"), "/runbooks");
        let mut seen = 0;
        for entry in std::fs::read_dir(dir).expect("runbooks/") {
            written_as_built(&entry.expect("entry").path());
            seen += 1;
        }
        assert!(seen >= 4);
        // Captures flow from phase to phase (each thread renders every other phase), phases
        // without steps, a big enough plan to spill past what is held in memory, and steps that
        // cannot be rendered in several phases.
        let dir = tempfile::tempdir().expect("temp dir");
        let mut text = String::from(
            "[runbook]\nname = \"t\"\n[vars]\nflag = \"-x\"\nok = \"fine\"\n[defaults]\nenv = { LAST = \"{{ ok }}\" }\n",
        );
        for p in 0..40 {
            let _ = write!(text, "[[phases]]\nid = \"p{p}\"\ntitle = \"P{p}\"\n");
            if p % 7 == 3 {
                text.push_str("[[phases.steps]]\nwait = \"1s\"\n");
                continue;
            }
            for s in 0..60 {
                let _ = write!(
                    text,
                    "[[phases.steps]]\nid = \"p{p}s{s}\"\nrun = \"echo {{{{ ok }}}} {p} {s} and a long line of text to make the plan large enough\"\ncapture = \"c{p}_{s}\"\n"
                );
            }
            if p > 0 && p % 7 != 4 {
                let _ = write!(
                    text,
                    "[[phases.steps]]\nrun = \"echo {{{{ c{}_{} }}}}\"\n[[phases.rollback]]\nrun = \"undo {{{{ c{p}_1 }}}}\"\ncapture = \"r{p}\"\n[[phases.rollback]]\nrun = \"undo {{{{ r{p} }}}}\"\n",
                    p - 1,
                    if p % 7 == 0 { 0 } else { 59 }
                );
            }
        }
        let good = dir.path().join("good.toml");
        std::fs::write(&good, &text).expect("write");
        written_as_built(&good);
        let bad = dir.path().join("bad.toml");
        let failing = text
            .replace(
                "id = \"p5s7\"\nrun = \"echo",
                "id = \"p5s7\"\nrun = \"ls {{ flag }} ; echo",
            )
            .replace(
                "id = \"p30s2\"\nrun = \"echo",
                "id = \"p30s2\"\nrun = \"ls {{ flag }} ; echo",
            );
        std::fs::write(&bad, failing).expect("write");
        written_as_built(&bad);
    }
}
