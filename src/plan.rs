//! Model + variable values -> the ordered, fully rendered steps a run would execute.
//! `rollout plan` prints this; `rollout run` executes steps rendered by the same
//! [`Renderer::step`], so a preview cannot differ from the real run.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use serde::Serialize;

use crate::inputs::{Origin, Resolved, env_name};
use crate::runbook::Loaded;
use crate::runbook::condition::Condition;
use crate::runbook::duration::Duration;
use crate::runbook::model::{
    DeadlineAction, ErrorPolicy, FailureAction, FaultPolicies, JsonExpectation, NoDataPolicy,
    Phase, Retry, Risk, Sampling, Step, StepKind, VarValue,
};
use crate::runbook::template::{RenderError, Scope, Tpl};

/// What a plan shows in place of a secret value.
pub const MASK: &str = "******";
pub const FORMAT_VERSION: u32 = 1;

#[derive(Debug, Serialize)]
pub struct Plan {
    pub format_version: u32,
    pub runbook: RunbookInfo,
    pub variables: Vec<PlanVar>,
    /// Environment every shell and kubectl step receives in addition to its own `env`.
    pub exported_env: BTreeMap<String, String>,
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

#[derive(Debug, Serialize)]
pub struct PlanPhase {
    pub id: String,
    pub title: String,
    pub description: Option<String>,
    pub on_failure: FailureAction,
    pub steps: Vec<PlanStep>,
    pub gate: Vec<PlanStep>,
    pub abort_when: Vec<PlanAbort>,
    pub rollback: Vec<PlanStep>,
}

#[derive(Debug, Serialize)]
pub struct PlanAbort {
    pub name: String,
    pub query: String,
    pub condition: Condition,
    #[serde(rename = "for")]
    pub sustained: Duration,
    pub every: Duration,
    pub action: FailureAction,
    pub prometheus: Option<String>,
    /// The current value, with `plan --live-checks`.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub live: Option<LiveValue>,
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

#[derive(Debug, Serialize)]
pub struct RoleView {
    pub role: String,
    pub approvers: Option<Vec<String>>,
}

#[derive(Debug, Serialize)]
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

#[derive(Debug, Serialize)]
pub struct JsonView {
    pub pointer: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub equals: Option<serde_json::Value>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub condition: Option<Condition>,
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
    base: tera::Context,
    kubectl: String,
    runbook_dir: PathBuf,
    /// A preview (plan) holds placeholders for values only a run has: captures and secrets.
    preview: bool,
    /// Names whose value is a placeholder: a `when` reading one is decided at run time.
    placeholders: indexmap::IndexSet<String>,
    /// Where each line of the runbook starts, built on first use: a step's line number is then
    /// a binary search instead of a scan of the file up to the step.
    line_starts: std::sync::OnceLock<Vec<usize>>,
    /// `[defaults] env` rendered with the current values: the same for every step until a
    /// value changes, so rendered once, not once a step.
    defaults_env: std::sync::OnceLock<Result<BTreeMap<String, String>, RenderError>>,
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
        let mut base = tera::Context::new();
        for v in vars {
            match &v.value {
                Some(VarValue::String(s)) => base.insert(v.name.clone(), s),
                Some(VarValue::Integer(i)) => base.insert(v.name.clone(), i),
                Some(VarValue::Boolean(b)) => base.insert(v.name.clone(), b),
                None => base.insert(v.name.clone(), MASK),
            }
        }
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
            line_starts: std::sync::OnceLock::new(),
            defaults_env: std::sync::OnceLock::new(),
        };
        let env = r.declared_env(&[]);
        r.base.insert("env", &env.unwrap_or_default());
        r.defaults_env = std::sync::OnceLock::new();
        r
    }

    /// Gives a secret its real value, for the renderer whose output processes receive.
    pub fn reveal(&mut self, name: &str, value: &str) {
        self.base.insert(name.to_string(), value);
        self.defaults_env = std::sync::OnceLock::new();
    }

    /// Sets a captured output (or, in a plan, a placeholder for it).
    pub fn set_capture(&mut self, name: &str, value: &str) {
        self.base.insert(name.to_string(), value);
        self.defaults_env = std::sync::OnceLock::new();
        if self.preview {
            self.placeholders.insert(name.to_string());
        }
    }

    /// The 1-based line of a byte offset in the runbook (as [`Source::line_col`]).
    ///
    /// [`Source::line_col`]: crate::runbook::Source::line_col
    fn line(&self, offset: usize) -> usize {
        let starts = self.line_starts.get_or_init(|| {
            let text = &self.loaded.source.text;
            std::iter::once(0)
                .chain(text.match_indices('\n').map(|(i, _)| i + 1))
                .collect()
        });
        starts.partition_point(|&start| start <= offset)
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

    fn context(
        &self,
        phase: Option<&Phase>,
        step: &Step,
        env: &BTreeMap<String, String>,
    ) -> Scope<'_> {
        let mut ctx = tera::Context::new();
        if let Some(phase) = phase {
            let mut m = BTreeMap::new();
            m.insert("id", phase.id.get_ref().as_str());
            m.insert("title", phase.title.as_str());
            ctx.insert("phase", &m);
        }
        let mut m = BTreeMap::new();
        m.insert("id", step.id.get_ref().as_str());
        m.insert("name", step.name.as_deref().unwrap_or(step.id.get_ref()));
        ctx.insert("step", &m);
        ctx.insert("env", env);
        Scope {
            base: &self.base,
            local: ctx,
        }
    }

    fn opt(&self, t: Option<Tpl>, ctx: &Scope<'_>) -> Result<Option<String>, RenderError> {
        t.map(|t| self.render(t, ctx)).transpose()
    }

    /// Renders one step exactly as it would run.
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

    /// An abort criterion of `phase` as shown by `plan` and watched by `run`.
    pub fn abort(
        &self,
        phase: &Phase,
        a: &crate::runbook::model::AbortCriterion,
    ) -> Result<PlanAbort, RenderError> {
        let ctx = Scope::of(&self.base);
        let prometheus = a.prometheus.or(self.loaded.runbook.defaults.prometheus);
        Ok(PlanAbort {
            name: a.name.clone(),
            query: self.render(a.query, &ctx)?,
            condition: a.condition,
            sustained: a.sustained,
            every: a.every,
            action: a.action.unwrap_or(match phase.on_failure {
                FailureAction::Ask => FailureAction::Pause,
                other => other,
            }),
            prometheus: self
                .opt(prometheus, &ctx)?
                .or_else(crate::config::fallback_prometheus),
            live: None,
        })
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
                    .names(t)
                    .iter()
                    .any(|(n, _)| self.placeholders.contains(n));
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
                condition: m.condition,
                sampling: m.sampling,
                failure_limit: m.failure_limit,
                successes: m.successes,
                no_data: m.no_data,
                on_error: m.on_error,
                faults: m.faults,
                prometheus: self
                    .opt(m.prometheus.or(rb.defaults.prometheus), &ctx)?
                    .or_else(crate::config::fallback_prometheus),
            },
            StepKind::Http(h) => Action::Http {
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
                expect_json: h.expect_json.as_ref().map(|(pointer, e)| JsonView {
                    pointer: pointer.clone(),
                    equals: match e {
                        JsonExpectation::Equals(v) => serde_json::to_value(v).ok(),
                        JsonExpectation::Condition(_) => None,
                    },
                    condition: match e {
                        JsonExpectation::Condition(c) => Some(*c),
                        JsonExpectation::Equals(_) => None,
                    },
                }),
                max_latency: h.max_latency,
                every: h.every,
            },
            StepKind::Wait { duration } => Action::Wait {
                duration: *duration,
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
            line: self.line(step.span.start),
            when,
            timeout: if timed {
                Some(step.timeout.unwrap_or(rb.defaults.timeout))
            } else {
                None
            },
            retry: step.retry,
            continue_on_error: step.continue_on_error,
            on_failure: step
                .on_failure
                .or(phase.map(|p| p.on_failure))
                .unwrap_or(FailureAction::Abort),
            idempotent: step.idempotent,
            capture: step.capture.as_ref().map(|c| c.get_ref().clone()),
            deadline: step.deadline.map(|(after, then)| Deadline { after, then }),
            action,
            live: None,
        })
    }

    /// The step ids a `repeat` re-evaluates: one step, or every gate step of a phase.
    pub fn repeat_targets(&self, target: &str) -> Vec<String> {
        let rb = &self.loaded.runbook;
        match rb.phases.iter().find(|p| p.id.get_ref() == target) {
            Some(p) => p.gate.iter().map(|s| s.id.get_ref().clone()).collect(),
            None => vec![target.to_string()],
        }
    }

    fn steps(
        &mut self,
        phase: Option<&Phase>,
        steps: &[Step],
        errors: &mut Vec<StepRenderError>,
    ) -> Vec<PlanStep> {
        let mut out = Vec::with_capacity(steps.len());
        for step in steps {
            match self.step(phase, step) {
                Ok(s) => out.push(s),
                Err(e) => errors.push(e),
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
        .map(|phase| plan_phase(&mut r, phase, &mut errors))
        .collect();
    let rollback = incident_rollback(&r, vars, run, &mut errors);
    if !errors.is_empty() {
        return Err(errors);
    }
    let (runbook, variables, exported_env) = head(loaded, vars);
    Ok(Plan {
        format_version: FORMAT_VERSION,
        runbook,
        variables,
        exported_env,
        phases,
        rollback,
    })
}

/// Renders every step as [`build`] does and keeps nothing: whether a plan can be built.
pub fn check(
    loaded: &Loaded,
    vars: &[Resolved],
    run: &RunInfo,
    kubectl_env: Option<String>,
) -> Result<(), Vec<StepRenderError>> {
    let mut r = Renderer::new(loaded, vars, run, kubectl_env);
    let mut errors = Vec::new();
    for phase in &loaded.runbook.phases {
        drop(plan_phase(&mut r, phase, &mut errors));
    }
    drop(incident_rollback(&r, vars, run, &mut errors));
    if errors.is_empty() {
        Ok(())
    } else {
        Err(errors)
    }
}

/// Writes the plan as `serde_json::to_writer_pretty(out, &build(..)?)` would, byte for byte,
/// but renders one phase at a time as it writes: a 10,000-step plan is never in memory whole.
///
/// A step that cannot be rendered must stop the plan before anything is written, so every step
/// is first rendered once without keeping anything ([`check`]). That check runs on another
/// core while the plan is already being rendered and written into a [`Gate`], which holds the
/// bytes until the check has passed (and drops them if it fails).
pub fn write_json<W: std::io::Write>(
    out: W,
    loaded: &Loaded,
    vars: &[Resolved],
    run: &RunInfo,
    kubectl_env: Option<String>,
) -> Result<std::io::Result<()>, Vec<StepRenderError>> {
    std::thread::scope(|s| {
        let kubectl = kubectl_env.clone();
        let checked = s.spawn(move || check(loaded, vars, run, kubectl));
        let mut gate = Gate {
            out,
            held: Vec::new(),
            check: Some(checked),
            refused: None,
        };
        // Buffered before the gate, so that the many small writes of the JSON serializer stay
        // cheap.
        let mut buffered = std::io::BufWriter::with_capacity(64 * 1024, &mut gate);
        let written = stream_json(&mut buffered, loaded, vars, run, kubectl_env)
            .and_then(|()| std::io::Write::flush(&mut buffered));
        drop(buffered);
        if !gate.open() {
            return Err(gate.refused.take().unwrap_or_default());
        }
        Ok(written.and_then(|()| gate.release()))
    })
}

fn stream_json(
    out: impl std::io::Write,
    loaded: &Loaded,
    vars: &[Resolved],
    run: &RunInfo,
    kubectl_env: Option<String>,
) -> std::io::Result<()> {
    let r = Renderer::new(loaded, vars, run, kubectl_env);
    let mut errors = Vec::new();
    let rollback = incident_rollback(&r, vars, run, &mut errors);
    let (runbook, variables, exported_env) = head(loaded, vars);
    let plan = StreamedPlan {
        format_version: FORMAT_VERSION,
        runbook,
        variables,
        exported_env,
        phases: PhasesAsWritten {
            renderer: std::cell::RefCell::new(r),
            phases: &loaded.runbook.phases,
        },
        rollback,
    };
    serde_json::to_writer_pretty(out, &plan).map_err(std::io::Error::from)
}

/// The most plan bytes a [`Gate`] holds; past that, writing waits for the check.
const HOLD: usize = 4 * 1024 * 1024;

/// Holds what is written until the check of every step has passed, then lets it through.
struct Gate<'s, W> {
    out: W,
    held: Vec<u8>,
    check: Option<std::thread::ScopedJoinHandle<'s, Result<(), Vec<StepRenderError>>>>,
    refused: Option<Vec<StepRenderError>>,
}

impl<W: std::io::Write> Gate<'_, W> {
    /// Waits for the check if it is still running; whether the bytes may go out.
    fn open(&mut self) -> bool {
        if let Some(check) = self.check.take() {
            match check.join() {
                Ok(Ok(())) => {}
                Ok(Err(errors)) => self.refused = Some(errors),
                Err(panic) => std::panic::resume_unwind(panic),
            }
        }
        self.refused.is_none()
    }

    /// Writes out what is held (the check has passed).
    fn release(&mut self) -> std::io::Result<()> {
        let held = std::mem::take(&mut self.held);
        self.out.write_all(&held)
    }
}

impl<W: std::io::Write> std::io::Write for Gate<'_, W> {
    fn write(&mut self, data: &[u8]) -> std::io::Result<usize> {
        let checking = self.check.as_ref().is_some_and(|c| !c.is_finished());
        if checking && self.held.len() + data.len() <= HOLD {
            if self.held.capacity() == 0 {
                // Reserved once, so it never grows by doubling; only what is written is touched.
                self.held.reserve_exact(HOLD);
            }
            self.held.extend_from_slice(data);
            return Ok(data.len());
        }
        if !self.open() {
            return Err(std::io::Error::other("a step cannot be rendered"));
        }
        if !self.held.is_empty() {
            self.release()?;
        }
        self.out.write(data)
    }

    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

/// [`Plan`] with its phases rendered while they are written: the same fields, in the same order.
#[derive(Serialize)]
struct StreamedPlan<'p, 'l> {
    format_version: u32,
    runbook: RunbookInfo,
    variables: Vec<PlanVar>,
    exported_env: BTreeMap<String, String>,
    phases: PhasesAsWritten<'p, 'l>,
    rollback: Vec<PlanStep>,
}

struct PhasesAsWritten<'p, 'l> {
    renderer: std::cell::RefCell<Renderer<'l>>,
    phases: &'p [Phase],
}

impl Serialize for PhasesAsWritten<'_, '_> {
    fn serialize<S: serde::Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        use serde::ser::{Error, SerializeSeq};
        let mut r = self.renderer.borrow_mut();
        let mut seq = serializer.serialize_seq(Some(self.phases.len()))?;
        for phase in self.phases {
            let mut errors = Vec::new();
            let view = plan_phase(&mut r, phase, &mut errors);
            if let Some(e) = errors.first() {
                // `check` rendered this very step without error; rendering is deterministic.
                return Err(S::Error::custom(format!(
                    "cannot render step `{}`: {}",
                    e.step, e.error.message
                )));
            }
            seq.serialize_element(&view)?;
        }
        seq.end()
    }
}

/// One phase as the plan shows it. `r` carries the captures of earlier phases.
fn plan_phase(r: &mut Renderer<'_>, phase: &Phase, errors: &mut Vec<StepRenderError>) -> PlanPhase {
    let abort_when = phase
        .abort_when
        .iter()
        .filter_map(|a| match r.abort(phase, a) {
            Ok(view) => Some(view),
            Err(error) => {
                errors.push(StepRenderError {
                    step: a.name.clone(),
                    error,
                });
                None
            }
        })
        .collect();
    let steps = r.steps(Some(phase), &phase.steps, errors);
    let gate = r.steps(Some(phase), &phase.gate, errors);
    let saved = r.placeholders.len();
    let rollback = r.steps(Some(phase), &phase.rollback, errors);
    r.placeholders.truncate(saved);
    PlanPhase {
        id: phase.id.get_ref().clone(),
        title: phase.title.clone(),
        description: phase.description.clone(),
        on_failure: phase.on_failure,
        steps,
        gate,
        abort_when,
        rollback,
    }
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
    incident.steps(None, &r.loaded.runbook.rollback, errors)
}

fn head(
    loaded: &Loaded,
    vars: &[Resolved],
) -> (RunbookInfo, Vec<PlanVar>, BTreeMap<String, String>) {
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
    (runbook, variables, exported_env)
}
