//! Whole-runbook checks that need more than one table: unique ids, references between phases and
//! steps, and that every name a template reads exists where the template is used. Runs after
//! `parse` and reports every problem it finds; it never stops at the first.

use std::collections::HashMap;
use std::ops::Range;

use super::diagnostic::{Diagnostic, suggest};
use super::model::{Phase, Runbook, Step, StepKind};
use super::reader::Problems;
use super::template::{Templates, Tpl};

/// Attributes of the built-in objects available to every template.
pub const BUILTINS: [(&str, &[&str]); 3] = [
    ("run", &["id", "operator", "started_at"]),
    ("phase", &["id", "title"]),
    ("step", &["id", "name"]),
];

/// The names a template may read at one point of the runbook. Updated in place as the walk goes
/// step by step (never cloned per step: a large runbook has thousands of captures).
#[derive(Clone)]
struct Scope<'r> {
    vars: Vec<&'r str>,
    /// Captures of the steps walked so far (in runbook order, for suggestions).
    captures: indexmap::IndexSet<&'r str>,
    /// Captures of a phase's rollback steps: seen only by the later rollback steps of that phase.
    rollback_captures: Vec<&'r str>,
    env: Vec<&'r str>,
    /// The `env` keys of the step being checked, after `env`.
    step_env: Vec<&'r str>,
    in_phase: bool,
    in_step: bool,
}

impl Scope<'_> {
    fn has_capture(&self, name: &str) -> bool {
        self.captures.contains(name) || self.rollback_captures.contains(&name)
    }
}

struct Checker<'r, 't> {
    runbook: &'r Runbook,
    templates: &'t Templates,
    /// Every capture in the runbook with the step that sets it, for "set by a later step".
    all_captures: HashMap<&'r str, &'r str>,
    p: &'t mut Problems,
}

pub fn validate(runbook: &Runbook, templates: &Templates, p: &mut Problems) {
    let mut checker = Checker {
        runbook,
        templates,
        all_captures: HashMap::new(),
        p,
    };
    checker.unique_ids();
    checker.captures();
    checker.templates();
    checker.repeats();
}

impl<'r> Checker<'r, '_> {
    fn unique_ids(&mut self) {
        let mut phases: HashMap<&str, Range<usize>> = HashMap::new();
        let mut repeated_phases: Vec<&Phase> = Vec::new();
        for phase in &self.runbook.phases {
            if phases.contains_key(phase.id.get_ref().as_str()) {
                repeated_phases.push(phase);
                self.p.push(
                    Diagnostic::new(
                        phase.id.span(),
                        format!("duplicate phase id `{}`", phase.id.get_ref()),
                    )
                    .label("already used by an earlier phase")
                    .help("phase ids must be unique: runs and resumes refer to phases by id"),
                );
            } else {
                phases.insert(phase.id.get_ref(), phase.id.span());
            }
        }
        let mut steps: HashMap<&str, Range<usize>> = HashMap::new();
        for (phase, step) in self.runbook.all_steps() {
            let id = step.id.get_ref().as_str();
            // A phase whose id is a duplicate gives its unnamed steps duplicate default ids
            // (`<phase>-<n>`): that is the same problem, already reported.
            let echo = phase.is_some_and(|ph| {
                repeated_phases.iter().any(|r| std::ptr::eq(*r, ph))
                    && id.starts_with(&format!("{}-", ph.id.get_ref()))
            });
            if echo {
                continue;
            }
            if steps.contains_key(id) {
                self.p.push(
                    Diagnostic::new(step.id.span(), format!("duplicate step id `{id}`"))
                        .label("already used by an earlier step")
                        .help("step ids must be unique in the whole runbook: the run journal records steps by id"),
                );
            } else {
                steps.insert(id, step.id.span());
            }
        }
    }

    fn captures(&mut self) {
        let var_names: Vec<&str> = self
            .runbook
            .vars
            .iter()
            .map(|v| v.name.get_ref().as_str())
            .collect();
        for (_, step) in self.runbook.all_steps() {
            let Some(c) = &step.capture else { continue };
            let name = c.get_ref().as_str();
            if var_names.contains(&name) {
                self.p.push(
                    Diagnostic::new(
                        c.span(),
                        format!("capture `{name}` has the same name as a variable"),
                    )
                    .label("would hide the variable")
                    .help("choose another name for the captured output"),
                );
            } else if let Some(other) = self.all_captures.get(name) {
                self.p.push(
                    Diagnostic::new(
                        c.span(),
                        format!("`{name}` is already captured by step `{other}`"),
                    )
                    .label("captured twice")
                    .help("each captured output needs its own name"),
                );
            } else {
                self.all_captures.insert(name, step.id.get_ref());
            }
        }
    }

    fn templates(&mut self) {
        let rb = self.runbook;
        let env: Vec<&str> = rb.defaults.env.iter().map(|(k, _)| k.as_str()).collect();
        let base = Scope {
            vars: rb.vars.iter().map(|v| v.name.get_ref().as_str()).collect(),
            captures: indexmap::IndexSet::new(),
            rollback_captures: Vec::new(),
            env,
            step_env: Vec::new(),
            in_phase: false,
            in_step: false,
        };
        let d = &rb.defaults;
        for t in [
            d.workdir,
            d.prometheus,
            d.kubectl.context,
            d.kubectl.namespace,
            rb.meta.lock,
        ]
        .into_iter()
        .flatten()
        .chain(rb.notify.iter().map(|n| n.url))
        {
            self.names(t, &base);
        }
        for (_, t) in &d.env {
            self.names(*t, &base);
        }
        let pc = &d.prometheus_client;
        for t in [pc.ca_file, pc.basic_auth.as_ref().map(|b| b.username)]
            .into_iter()
            .flatten()
            .chain(pc.headers.iter().map(|(_, t)| *t))
        {
            self.names(t, &base);
        }
        let credentials = [
            pc.bearer_token.map(|t| (t, "bearer_token")),
            pc.basic_auth
                .as_ref()
                .map(|b| (b.password, "basic_auth.password")),
        ];
        for (t, key) in credentials.into_iter().flatten() {
            self.names(t, &base);
            self.secret_only(t, key);
        }
        let mut scope = base.clone();
        for phase in &rb.phases {
            scope.in_phase = true;
            for a in &phase.abort_when {
                self.names(a.query, &scope);
                if let Some(t) = a.prometheus {
                    self.names(t, &scope);
                }
            }
            for step in phase.steps.iter().chain(&phase.gate) {
                self.step(step, &mut scope, false);
            }
            for step in &phase.rollback {
                self.step(step, &mut scope, true);
            }
            scope.rollback_captures.clear();
        }
        let mut incident = base;
        incident.in_phase = false;
        for step in &rb.rollback {
            self.step(step, &mut incident, true);
        }
    }

    /// Checks the templates of `step`, then adds its capture to `scope` (to the rollback's own
    /// captures for a rollback step).
    fn step(&mut self, step: &'r Step, scope: &mut Scope<'r>, rollback: bool) {
        scope.in_step = true;
        let step_env = match &step.kind {
            StepKind::Shell(s) => s.env.as_slice(),
            StepKind::Kubectl(k) => k.env.as_slice(),
            _ => &[],
        };
        scope
            .step_env
            .extend(step_env.iter().map(|(k, _)| k.as_str()));
        for t in step_templates(step) {
            self.names(t, scope);
        }
        scope.in_step = false;
        scope.step_env.clear();
        if let Some(c) = &step.capture {
            if rollback {
                scope.rollback_captures.push(c.get_ref());
            } else {
                scope.captures.insert(c.get_ref());
            }
        }
    }

    /// Credentials come from secret variables, never from the file itself.
    fn secret_only(&mut self, t: Tpl, key: &str) {
        let names = self.templates.names(t);
        let secret = |name: &str| {
            self.runbook
                .vars
                .iter()
                .any(|v| v.name.get_ref() == name && v.secret.is_some())
        };
        let plain: Vec<&str> = names
            .iter()
            .map(|(n, _)| *n)
            .filter(|n| !secret(n))
            .collect();
        if names.is_empty() || !plain.is_empty() {
            let what = if names.is_empty() {
                format!("`{key}` is written in the runbook")
            } else {
                format!(
                    "`{key}` uses non-secret variable(s) `{}`",
                    plain.join("`, `")
                )
            };
            self.p.push(
                Diagnostic::new(self.templates.span(t), what)
                    .label("not from a secret variable")
                    .help(format!(
                        "declare a secret variable (e.g. `prom_token = {{ secret = \"env:PROM_TOKEN\" }}` in [vars]) and write `{key} = \"{{{{ prom_token }}}}\"`"
                    )),
            );
        }
    }

    fn names(&mut self, t: Tpl, scope: &Scope<'_>) {
        let templates = self.templates;
        let names = templates.names(t);
        // A simple template reads `x.attr` only if it reads `x`: skip looking for attributes
        // of objects it never names (most templates, most objects).
        let reads =
            |object: &str| !templates.is_simple(t) || names.iter().any(|(n, _)| *n == object);
        for (name, span) in names.iter().cloned() {
            if scope.vars.contains(&name) || scope.has_capture(name) {
                continue;
            }
            match name {
                "run" | "env" => continue,
                "phase" if scope.in_phase => continue,
                "step" if scope.in_step => continue,
                "phase" | "step" => {
                    self.p.push(
                        Diagnostic::new(span, format!("`{name}` is not available here"))
                            .label(format!("outside a {name}"))
                            .help(format!("`{name}.*` can be used inside a {name} only")),
                    );
                    continue;
                }
                _ => {}
            }
            if let Some(step) = self.all_captures.get(name) {
                self.p.push(
                    Diagnostic::new(span, format!("`{name}` is captured by step `{step}`, which has not run at this point"))
                        .label("not captured yet")
                        .help("a captured output can be used only by steps after the step that captures it"),
                );
                continue;
            }
            let candidates = scope
                .vars
                .iter()
                .chain(&scope.captures)
                .chain(&scope.rollback_captures)
                .copied()
                .chain(["run", "env", "phase", "step"]);
            let help = suggest(name, candidates).map_or_else(
                || "declare it under [vars], or capture it with `capture = \"...\"` in an earlier step".to_string(),
                |c| format!("did you mean `{c}`?"),
            );
            self.p.push(
                Diagnostic::new(span, format!("undefined variable `{name}`"))
                    .label("not defined")
                    .help(help),
            );
        }
        for (object, attrs) in BUILTINS {
            if !reads(object) {
                continue;
            }
            for (attr, span) in templates.attributes(t, object) {
                if !attrs.contains(&attr.as_str()) {
                    self.p.push(
                        Diagnostic::new(span, format!("`{object}` has no attribute `{attr}`"))
                            .label("unknown attribute")
                            .maybe_help(
                                suggest(&attr, attrs.iter().copied())
                                    .map(|c| format!("did you mean `{object}.{c}`?"))
                                    .or_else(|| {
                                        Some(format!("`{object}` has: {}", attrs.join(", ")))
                                    }),
                            ),
                    );
                }
            }
        }
        let env = if reads("env") {
            templates.attributes(t, "env")
        } else {
            Vec::new()
        };
        for (attr, span) in env {
            let attr = attr.as_str();
            if !scope.env.contains(&attr) && !scope.step_env.contains(&attr) {
                self.p.push(
                    Diagnostic::new(span, format!("`env.{attr}` is not declared"))
                        .label("not in [defaults.env] or the step's `env`")
                        .maybe_help(
                            suggest(attr, scope.env.iter().chain(&scope.step_env).copied())
                                .map(|c| format!("did you mean `env.{c}`?"))
                                .or_else(|| Some("templates see only the environment the runbook declares; to use a value from the operator's environment, declare a variable and set ROLLOUT_VAR_<NAME>".into())),
                        ),
                );
            }
        }
    }

    /// `repeat` must name an earlier check or gate step, or an earlier phase with a gate.
    fn repeats(&mut self) {
        let rb = self.runbook;
        let mut seen_steps: Vec<&Step> = Vec::new();
        let mut seen_phases: Vec<&str> = Vec::new();
        for phase in &rb.phases {
            for step in phase.steps.iter().chain(&phase.gate) {
                if let StepKind::Repeat { target } = &step.kind {
                    let name = target.get_ref().as_str();
                    let earlier_step = seen_steps.iter().find(|s| s.id.get_ref() == name);
                    if rb.phases.iter().any(|p| p.id.get_ref() == name)
                        && rb.all_steps().any(|(_, s)| s.id.get_ref() == name)
                    {
                        self.p.push(
                            Diagnostic::new(
                                target.span(),
                                format!("`{name}` is the id of both a phase and a step"),
                            )
                            .label("ambiguous")
                            .help(
                                "rename the step or the phase so that `repeat` names one of them",
                            ),
                        );
                        seen_steps.push(step);
                        continue;
                    }
                    let ok = match earlier_step {
                        Some(s) => {
                            if matches!(
                                s.kind,
                                StepKind::Shell(_)
                                    | StepKind::Kubectl(_)
                                    | StepKind::Wait { .. }
                                    | StepKind::Pause { .. }
                                    | StepKind::Repeat { .. }
                            ) {
                                self.p.push(
                                    Diagnostic::new(target.span(), format!("step `{name}` is a `{}` step and cannot be repeated", s.kind.name()))
                                        .label("not a check or gate")
                                        .help("`repeat` re-evaluates metric, http, confirm, checklist and signoff steps"),
                                );
                            }
                            true
                        }
                        None => seen_phases.contains(&name),
                    };
                    if !ok {
                        let later = rb.all_steps().any(|(_, s)| s.id.get_ref() == name)
                            || rb.phases.iter().any(|p| p.id.get_ref() == name);
                        let candidates = seen_steps
                            .iter()
                            .map(|s| s.id.get_ref().as_str())
                            .chain(seen_phases.iter().copied());
                        let d = if later {
                            Diagnostic::new(
                                target.span(),
                                format!("`repeat` refers to `{name}`, which comes later"),
                            )
                            .label("not evaluated yet")
                            .help("`repeat` can only refer to an earlier step or phase")
                        } else {
                            Diagnostic::new(
                                target.span(),
                                format!("no step or phase has the id `{name}`"),
                            )
                            .label("unknown id")
                            .maybe_help(
                                suggest(name, candidates).map(|c| format!("did you mean `{c}`?")),
                            )
                        };
                        self.p.push(d);
                    }
                }
                seen_steps.push(step);
            }
            if !phase.gate.is_empty() {
                seen_phases.push(phase.id.get_ref());
            }
        }
        for step in rb
            .phases
            .iter()
            .flat_map(|p| &p.rollback)
            .chain(&rb.rollback)
        {
            if let StepKind::Repeat { target } = &step.kind {
                self.p.push(
                    Diagnostic::new(target.span(), "`repeat` cannot be used in a rollback")
                        .label("not allowed in rollback steps")
                        .help("a rollback must not depend on the state of the run; write the check out"),
                );
            }
        }
    }
}

/// Every template a step uses, in the order they appear.
pub fn step_templates(step: &Step) -> Vec<Tpl> {
    let mut out: Vec<Tpl> = step.when.into_iter().collect();
    match &step.kind {
        StepKind::Shell(s) => {
            out.push(s.command);
            out.extend(s.workdir);
            out.extend(s.env.iter().map(|(_, t)| *t));
        }
        StepKind::Kubectl(k) => {
            out.extend(k.args.iter().copied());
            out.extend(k.context);
            out.extend(k.namespace);
            out.extend(k.env.iter().map(|(_, t)| *t));
        }
        StepKind::Confirm {
            question,
            type_to_confirm,
        } => {
            out.push(*question);
            out.extend(*type_to_confirm);
        }
        StepKind::Checklist { items } => out.extend(items.iter().copied()),
        StepKind::Signoff(s) => out.push(s.title),
        StepKind::Metric(m) => {
            out.push(m.query);
            out.extend(m.prometheus);
        }
        StepKind::Http(h) => {
            out.push(h.url);
            out.extend(h.headers.iter().map(|(_, t)| *t));
            out.extend(h.body);
            out.extend(h.expect_body);
        }
        StepKind::Pause { message } => out.push(*message),
        StepKind::Wait { .. } | StepKind::Repeat { .. } => {}
    }
    out
}
