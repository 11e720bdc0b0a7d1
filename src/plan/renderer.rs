//! The one renderer: a runbook's templates with a run's values (or a preview's placeholders)
//! turned into [`PlanStep`]s, abort criteria, budgets and the change window. `plan` and `run`
//! both call [`Renderer::step`], so a preview cannot differ from the real run.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use crate::config::Settings;
use crate::inputs::Resolved;
use crate::redact::MASK;
use crate::runbook::Loaded;
use crate::runbook::condition::Condition;
use crate::runbook::duration::Duration;
use crate::runbook::model::{
    FailureAction, JsonExpectation, Phase, Retry, Sampling, SamplingSpec, Step, StepKind, VarValue,
};
use crate::runbook::param::{self, Misfit, Param};
use crate::runbook::template::{RenderError, Scope, Tpl, Values};

use super::types::{
    Action, Budget, Deadline, HeaderView, JsonView, NotWatched, Pending, PlanAbort, PlanStep,
    ProbeView, PrometheusConn, RoleView, When,
};

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
    /// The invocation's settings: the kubectl program, the fallback Prometheus, the operator's
    /// webhooks. The same value for `plan` and `run`.
    pub(super) settings: &'l Settings,
    runbook_dir: PathBuf,
    /// Names whose value is a placeholder, with the step that captures it (`None`: a
    /// secret): a `when` reading one is decided at run time, and says by what.
    pub(super) placeholders: indexmap::IndexMap<String, Option<String>>,
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
        settings: &'l Settings,
    ) -> Self {
        let mut r = Self::new(loaded, vars, run, settings);
        r.placeholders.clear();
        r
    }

    /// A renderer for a plan: secrets masked, captures shown as placeholders.
    pub fn new(
        loaded: &'l Loaded,
        vars: &[Resolved],
        run: &RunInfo,
        settings: &'l Settings,
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
        let kubectl = settings
            .kubectl
            .clone()
            .filter(|k| !k.is_empty())
            .or_else(|| loaded.runbook.defaults.kubectl.binary.clone())
            .unwrap_or_else(|| "kubectl".into());
        let runbook_dir = runbook_dir(&loaded.source.path);
        let mut r = Renderer {
            loaded,
            base,
            kubectl,
            settings,
            runbook_dir,
            placeholders: vars
                .iter()
                .filter(|v| v.value.is_none())
                .map(|v| (v.name.clone(), None))
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

    /// Sets a captured output: a real value (a run's, or one read back from its journal), so
    /// a `when` reading it is decided.
    pub fn set_capture(&mut self, name: &str, value: &str) {
        self.put(name, value);
        self.placeholders.shift_remove(name);
    }

    /// Stands in for the output step `step` will capture as `name`: texts show
    /// `<output of step STEP>`, and a `when` reading it is decided when it is reached.
    pub(super) fn pend_capture(&mut self, name: &str, step: &str) {
        self.put(name, &format!("<output of step {step}>"));
        self.placeholders
            .insert(name.to_string(), Some(step.to_string()));
    }

    /// Whether `name` has a value (a variable, a capture or a placeholder for one).
    pub(super) fn has(&self, name: &str) -> bool {
        self.base.contains(name)
    }

    /// Forgets `name` (a placeholder set for a preview).
    pub(super) fn forget(&mut self, name: &str) {
        self.base.remove(name);
        self.placeholders.shift_remove(name);
        self.defaults_env = std::sync::OnceLock::new();
    }

    fn put(&mut self, name: &str, value: &str) {
        self.base.insert(name, value);
        if self
            .defaults_env_reads
            .as_ref()
            .is_none_or(|reads| reads.contains(&name))
        {
            self.defaults_env = std::sync::OnceLock::new();
        }
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
                    .or_else(|| self.settings.prometheus_url.clone()),
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
        parse(&rendered).map_err(|why| RenderError {
            message: format!(
                "`{key}` = `{}` gives `{rendered}` with {}, which is not {what}: {why}",
                self.loaded.templates.source(t),
                self.values_read(t)
            ),
            span: self.loaded.templates.span(t),
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

    /// The values template `t` reads, for an error: "`a` = `1` and `b` = `x`".
    fn values_read(&self, t: Tpl) -> String {
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
        values.join(" and ")
    }

    /// Values that do not fit together, pointed at the template that made them.
    fn misfit_at(&self, t: Option<Tpl>, m: &Misfit) -> RenderError {
        let with = t.map_or_else(String::new, |t| format!(" (with {})", self.values_read(t)));
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
                let mut depends_on: Vec<Pending> = Vec::new();
                let expression = self.loaded.templates.source(t);
                let mut reads = self.loaded.templates.reads(t);
                // In the order the expression names them.
                reads.sort_by_key(|n| expression.find(*n).unwrap_or(usize::MAX));
                for n in reads {
                    if let Some(by) = self.placeholders.get(n) {
                        if !depends_on.iter().any(|p| p.name == n) {
                            depends_on.push(Pending {
                                name: n.to_string(),
                                captured_by: by.clone(),
                            });
                        }
                    }
                }
                let decision = if !depends_on.is_empty() {
                    "at_run_time"
                } else if self.loaded.templates.truthy(t, &ctx)? {
                    "run"
                } else {
                    "skip"
                };
                Some(Box::new(When {
                    expression: self.loaded.templates.source(t).to_string(),
                    decision,
                    depends_on,
                }))
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
                roles: RoleView::all(&s.roles),
                required: *s.required.get_ref(),
                exclude_operator: s.exclude_operator,
                valid_for: s.valid_for.map(|d| d.to_string()),
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
                    .or_else(|| self.settings.prometheus_url.clone()),
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
    pub(super) fn steps(
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
                self.pend_capture(c.get_ref(), step.id.get_ref());
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
