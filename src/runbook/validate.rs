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

/// Every capture in a runbook, with the id of the step that sets it.
pub struct Captures<'r>(HashMap<&'r str, &'r str>);

struct Checker<'r, 't> {
    runbook: &'r Runbook,
    templates: &'t Templates,
    /// Every capture in the runbook with the step that sets it, for "set by a later step".
    all_captures: &'t Captures<'r>,
    p: &'t mut Problems,
}

/// Every check of this module, in order.
pub fn validate(runbook: &Runbook, templates: &Templates, p: &mut Problems) {
    let all_captures = ids_and_captures(runbook, p);
    references(runbook, templates, &all_captures, p);
}

/// The default of the integer variable `name`, which `validate` counts loops with.
pub fn integer_default(runbook: &Runbook, name: &str) -> Option<i64> {
    runbook
        .vars
        .iter()
        .find(|v| v.name.get_ref() == name && v.secret.is_none())
        .and_then(|v| match v.default {
            Some(super::model::VarValue::Integer(i)) => Some(i),
            _ => None,
        })
}

/// Duplicate phase and step ids, and captures that clash: the checks that need no template.
/// Returns every capture with the step that sets it.
pub fn ids_and_captures<'r>(runbook: &'r Runbook, p: &mut Problems) -> Captures<'r> {
    unique_ids(runbook, p);
    captures(runbook, p)
}

fn unique_ids(runbook: &Runbook, p: &mut Problems) {
    let mut phases: HashMap<&str, Range<usize>> = HashMap::new();
    let mut repeated_phases: Vec<&Phase> = Vec::new();
    for phase in &runbook.phases {
        if phases.contains_key(phase.id.get_ref().as_str()) {
            repeated_phases.push(phase);
            p.push(
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
    for (phase, step) in runbook.all_steps() {
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
            p.push(
                Diagnostic::new(step.id.span(), format!("duplicate step id `{id}`"))
                    .label("already used by an earlier step")
                    .help("step ids must be unique in the whole runbook: the run journal records steps by id"),
            );
        } else {
            steps.insert(id, step.id.span());
        }
    }
}

fn captures<'r>(runbook: &'r Runbook, p: &mut Problems) -> Captures<'r> {
    let mut all_captures = HashMap::new();
    let var_names: Vec<&str> = runbook
        .vars
        .iter()
        .map(|v| v.name.get_ref().as_str())
        .collect();
    for (_, step) in runbook.all_steps() {
        let Some(c) = &step.capture else { continue };
        let name = c.get_ref().as_str();
        if var_names.contains(&name) {
            p.push(
                Diagnostic::new(
                    c.span(),
                    format!("capture `{name}` has the same name as a variable"),
                )
                .label("would hide the variable")
                .help("choose another name for the captured output"),
            );
        } else if let Some(other) = all_captures.get(name) {
            p.push(
                Diagnostic::new(
                    c.span(),
                    format!("`{name}` is already captured by step `{other}`"),
                )
                .label("captured twice")
                .help("each captured output needs its own name"),
            );
        } else {
            all_captures.insert(name, step.id.get_ref().as_str());
        }
    }
    Captures(all_captures)
}

/// That every name a template reads exists where the template is used, and that every `repeat`
/// names an earlier check or gate. The phases are checked in two halves, the second on another
/// thread; the problems come out in the order of one walk through the runbook.
pub fn references(
    runbook: &Runbook,
    templates: &Templates,
    all_captures: &Captures<'_>,
    p: &mut Problems,
) {
    references_split(runbook, templates, all_captures, p, middle(runbook));
}

/// The first phase of the second half: where about half of the steps are behind.
fn middle(runbook: &Runbook) -> usize {
    let size = |ph: &Phase| ph.steps.len() + ph.gate.len() + ph.rollback.len() + 1;
    let total: usize = runbook.phases.iter().map(size).sum();
    let mut behind = 0;
    runbook
        .phases
        .iter()
        .position(|ph| {
            behind += size(ph);
            behind * 2 > total
        })
        .map_or(runbook.phases.len(), |k| k + 1)
}

/// [`references`] with the phases from `middle` on checked on another thread.
fn references_split(
    runbook: &Runbook,
    templates: &Templates,
    all_captures: &Captures<'_>,
    p: &mut Problems,
    middle: usize,
) {
    let (first, second) = runbook.phases.split_at(middle);
    let mut later = Problems::default();
    std::thread::scope(|s| {
        let later = &mut later;
        let second_half = s.spawn(move || {
            let mut checker = Checker {
                runbook,
                templates,
                all_captures,
                p: later,
            };
            let mut scope = checker.base();
            // What the walk through the first half would have seen by now.
            for step in first.iter().flat_map(|ph| ph.steps.iter().chain(&ph.gate)) {
                if let Some(c) = &step.capture {
                    scope.captures.insert(c.get_ref());
                }
            }
            checker.phases(second, &mut scope);
            let mut incident = checker.base();
            for step in &runbook.rollback {
                checker.step(step, &mut incident, true);
            }
        });
        let mut checker = Checker {
            runbook,
            templates,
            all_captures,
            p: &mut *p,
        };
        checker.globals();
        let mut scope = checker.base();
        checker.phases(first, &mut scope);
        second_half
            .join()
            .unwrap_or_else(|panic| std::panic::resume_unwind(panic));
    });
    p.list.append(&mut later.list);
    let mut checker = Checker {
        runbook,
        templates,
        all_captures,
        p,
    };
    checker.repeats();
    checker.params();
    checker.abort_scopes();
    checker.rollback_covers();
}

impl<'r> Checker<'r, '_> {
    /// The names every template may read: the variables and `[defaults] env`.
    fn base(&self) -> Scope<'r> {
        let rb = self.runbook;
        Scope {
            vars: rb.vars.iter().map(|v| v.name.get_ref().as_str()).collect(),
            captures: indexmap::IndexSet::new(),
            rollback_captures: Vec::new(),
            env: rb.defaults.env.iter().map(|(k, _)| k.as_str()).collect(),
            step_env: Vec::new(),
            in_phase: false,
            in_step: false,
        }
    }

    /// The templates outside phases: defaults, the lock, notifications and the Prometheus
    /// client's settings.
    fn globals(&mut self) {
        let rb = self.runbook;
        let base = self.base();
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
        // A runbook-wide criterion with `from` may read what the phases before its step's phase
        // captured: it is checked when the walk reaches that phase (see `phases`).
        for a in rb.abort_when.iter().filter(|a| a.from.is_none()) {
            for t in probe_templates(&a.probe) {
                self.names(t, &base);
            }
        }
        if let Some(w) = &rb.meta.window {
            for t in [w.days, w.start, w.end, w.time_zone] {
                self.names(t, &base);
            }
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
    }

    /// The templates of `phases`, in order; `scope` has what the phases before them captured.
    fn phases(&mut self, phases: &'r [Phase], scope: &mut Scope<'r>) {
        for phase in phases {
            let starts_here = |id: &str| {
                phase
                    .steps
                    .iter()
                    .chain(&phase.gate)
                    .any(|s| s.id.get_ref() == id)
            };
            for a in &self.runbook.abort_when {
                if a.from.as_ref().is_some_and(|f| starts_here(f.get_ref())) {
                    scope.in_phase = false;
                    for t in probe_templates(&a.probe) {
                        self.names(t, scope);
                    }
                }
            }
            scope.in_phase = true;
            for a in &phase.abort_when {
                for t in probe_templates(&a.probe) {
                    self.names(t, scope);
                }
            }
            for step in phase.steps.iter().chain(&phase.gate) {
                self.step(step, scope, false);
            }
            for step in &phase.rollback {
                self.step(step, scope, true);
            }
            scope.rollback_captures.clear();
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
            if let Some(step) = self.all_captures.0.get(name) {
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

    /// Durations, counts and thresholds written as templates name only variables of a type
    /// that fits (so the plan can show their values), and have the right shape.
    fn params(&mut self) {
        let rb = self.runbook;
        let templates = self.templates;
        for u in &rb.params {
            if templates.is_broken(u.tpl) {
                continue;
            }
            let whole = templates.span(u.tpl);
            if !templates.is_simple(u.tpl) {
                self.p.push(
                    Diagnostic::new(whole, format!("`{}` can only be a template of `{{{{ name }}}}` tags", u.key))
                        .label("filters and blocks are not allowed here")
                        .help(format!("{} written as a template names variables, e.g. `{}`; compute other values in the variable itself", u.kind.what(), u.kind.example())),
                );
                continue;
            }
            let names: Vec<(&str, Range<usize>, Option<&super::model::VarDecl>)> = templates
                .names(u.tpl)
                .into_iter()
                .map(|(n, span)| {
                    let decl = rb.vars.iter().find(|v| v.name.get_ref() == n);
                    (n, span, decl)
                })
                .collect();
            let captures = self.all_captures;
            let capture_of = |n: &str| captures.0.get(n).map(|s| (*s).to_string());
            let similar = |n: &str| {
                suggest(n, rb.vars.iter().map(|v| v.name.get_ref().as_str()))
                    .map(ToString::to_string)
            };
            if let Err((message, span, help)) = super::param::check_names(
                u.kind,
                u.key,
                templates.source(u.tpl),
                &names,
                &capture_of,
                &similar,
            ) {
                let span = if span.is_empty() { whole } else { span };
                self.p.push(
                    Diagnostic::new(span, message)
                        .label(format!("{} goes here", u.kind.what()))
                        .help(help),
                );
            }
        }
    }

    /// Abort criteria ids are unique where they are declared, `skip_abort_when` names the
    /// runbook's criteria, and `from`/`until` name steps where the criterion is watched.
    fn abort_scopes(&mut self) {
        let rb = self.runbook;
        let scopes = super::watch::Scopes::new(rb);
        let runbook_ids: Vec<&str> = rb
            .abort_when
            .iter()
            .map(|a| a.id.get_ref().as_str())
            .collect();
        self.unique_criteria(&rb.abort_when);
        for a in &rb.abort_when {
            self.window(a, None, &scopes);
        }
        for (p, phase) in rb.phases.iter().enumerate() {
            self.unique_criteria(&phase.abort_when);
            for a in &phase.abort_when {
                self.window(a, Some(p), &scopes);
            }
            for skip in &phase.skip_abort_when {
                let id = skip.get_ref().as_str();
                if !runbook_ids.contains(&id) {
                    let help = suggest(id, runbook_ids.iter().copied()).map_or_else(
                        || {
                            if runbook_ids.is_empty() {
                                "the runbook has no top-level `[[abort_when]]`".to_string()
                            } else {
                                format!("the runbook's criteria are: {}", runbook_ids.join(", "))
                            }
                        },
                        |c| format!("did you mean `{c}`?"),
                    );
                    self.p.push(
                        Diagnostic::new(
                            skip.span(),
                            format!("no runbook-wide abort criterion has the id `{id}`"),
                        )
                        .label("unknown criterion")
                        .help(help),
                    );
                }
            }
        }
    }

    /// `rollback_covers` names earlier phases, each once, and only a phase with rollback steps
    /// covers others (its rollback replaces theirs).
    fn rollback_covers(&mut self) {
        let rb = self.runbook;
        for (p, phase) in rb.phases.iter().enumerate() {
            let own = phase.id.get_ref().as_str();
            if let (Some(first), true) = (phase.rollback_covers.first(), phase.rollback.is_empty())
            {
                self.p.push(
                    Diagnostic::new(
                        first.span(),
                        format!("phase `{own}` has `rollback_covers` but no `[[phases.rollback]]` steps"),
                    )
                    .label("nothing would undo these phases")
                    .help("a covered phase's own rollback does not run: give this phase the rollback steps that undo them, or remove `rollback_covers`"),
                );
            }
            for (k, c) in phase.rollback_covers.iter().enumerate() {
                let id = c.get_ref().as_str();
                if phase.rollback_covers[..k].iter().any(|d| d.get_ref() == id) {
                    self.p.push(
                        Diagnostic::new(c.span(), format!("`{id}` is listed twice"))
                            .label("already covered")
                            .help("name each phase once"),
                    );
                    continue;
                }
                if id == own {
                    self.p.push(
                        Diagnostic::new(c.span(), format!("phase `{own}` cannot cover its own rollback"))
                            .label("this phase")
                            .help("`rollback_covers` names earlier phases whose rollback this phase's rollback also does"),
                    );
                    continue;
                }
                match rb.phases.iter().position(|q| q.id.get_ref() == id) {
                    Some(q) if q > p => self.p.push(
                        Diagnostic::new(
                            c.span(),
                            format!("phase `{id}` runs after `{own}`, so it cannot be covered by `{own}`'s rollback"),
                        )
                        .label("a later phase")
                        .help(format!("a rollback undoes the latest phase first: name phases before `{own}`, or give `{id}` the `rollback_covers`")),
                    ),
                    Some(_) => {}
                    None => {
                        let earlier = rb.phases[..p].iter().map(|q| q.id.get_ref().as_str());
                        let help = suggest(id, earlier).map_or_else(
                            || "`rollback_covers` names phases that come before this one".to_string(),
                            |s| format!("did you mean `{s}`?"),
                        );
                        self.p.push(
                            Diagnostic::new(c.span(), format!("no phase has the id `{id}`"))
                                .label("unknown phase")
                                .help(help),
                        );
                    }
                }
            }
        }
    }

    fn unique_criteria(&mut self, list: &[super::model::AbortCriterion]) {
        for (i, a) in list.iter().enumerate() {
            if list[..i].iter().any(|b| b.id.get_ref() == a.id.get_ref()) {
                self.p.push(
                    Diagnostic::new(
                        a.id.span(),
                        format!("duplicate abort criterion id `{}`", a.id.get_ref()),
                    )
                    .label("already used by an earlier criterion")
                    .help("phases skip and override criteria by id, so ids must be unique"),
                );
            }
        }
    }

    /// `from` and `until` of a criterion of phase `p` (or of the runbook).
    fn window(
        &mut self,
        a: &super::model::AbortCriterion,
        p: Option<usize>,
        scopes: &super::watch::Scopes<'_>,
    ) {
        let rb = self.runbook;
        let mut at = [None, None];
        for (k, bound) in [&a.from, &a.until].into_iter().enumerate() {
            let Some(id) = bound else { continue };
            let key = if k == 0 { "from" } else { "until" };
            let name = id.get_ref().as_str();
            let found = scopes.position(name);
            let fits = match (found, p) {
                (Some(pos), Some(p)) => pos.0 == p,
                (Some(_), None) => true,
                (None, _) => false,
            };
            if fits {
                at[k] = found;
                continue;
            }
            let candidates: Vec<&str> = match p {
                Some(p) => rb.phases[p]
                    .steps
                    .iter()
                    .chain(&rb.phases[p].gate)
                    .map(|s| s.id.get_ref().as_str())
                    .collect(),
                None => rb
                    .phases
                    .iter()
                    .flat_map(|ph| ph.steps.iter().chain(&ph.gate))
                    .map(|s| s.id.get_ref().as_str())
                    .collect(),
            };
            let message = match (found, p) {
                (Some(_), Some(p)) => format!(
                    "`{key}` names step `{name}`, which is not in phase `{}`",
                    rb.phases[p].id.get_ref()
                ),
                _ => format!("`{key}` names no step: there is no step `{name}`"),
            };
            self.p.push(
                Diagnostic::new(id.span(), message)
                    .label("not a step where this criterion is watched")
                    .maybe_help(
                        suggest(name, candidates.iter().copied())
                            .map(|c| format!("did you mean `{c}`?"))
                            .or_else(|| Some(match p {
                                Some(_) => "a phase's criterion is watched within its phase: name one of its steps or gate steps (a runbook-wide `[[abort_when]]` can name any phase's)".to_string(),
                                None => "name a step or gate step of a phase (not a rollback step)".to_string(),
                            })),
                    ),
            );
        }
        if let ([Some(from), Some(until)], Some(f), Some(u)) = (at, &a.from, &a.until) {
            if from > until {
                self.p.push(
                    Diagnostic::new(
                        u.span(),
                        format!(
                            "`until` step `{}` comes before `from` step `{}`",
                            u.get_ref(),
                            f.get_ref()
                        ),
                    )
                    .label("the window is empty")
                    .help("swap them, or name a later step in `until`"),
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
                        // Only what `repeat` accepts: earlier checks and gates, phases with a gate.
                        let candidates = seen_steps
                            .iter()
                            .filter(|s| s.kind.is_repeatable())
                            .map(|s| s.id.get_ref().as_str())
                            .chain(seen_phases.iter().copied());
                        let earlier_phase = rb
                            .phases
                            .iter()
                            .take_while(|p| !std::ptr::eq(*p, phase))
                            .any(|p| p.id.get_ref() == name);
                        let d = if earlier_phase {
                            Diagnostic::new(
                                target.span(),
                                format!("phase `{name}` has no check or gate to evaluate again"),
                            )
                            .label("nothing to repeat")
                            .help("`repeat` of a phase evaluates its `[[phases.gate]]` metric, http, confirm, checklist and signoff steps again (never its commands); give the phase a gate, or repeat a step")
                        } else if later {
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
            if phase.gate.iter().any(|s| s.kind.is_repeatable()) {
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

/// Every template of an HTTP request and its expectations.
fn http_templates(h: &super::model::HttpCheck) -> Vec<Tpl> {
    use super::model::HeaderExpectation;
    let mut out = vec![h.url];
    out.extend(h.headers.iter().map(|(_, t)| *t));
    out.extend(h.body);
    out.extend(h.expect_body);
    out.extend(h.expect_headers.iter().filter_map(|(_, e)| match e {
        HeaderExpectation::Equals(t) => Some(*t),
        _ => None,
    }));
    out
}

/// Every template an abort criterion's probe uses.
pub fn probe_templates(probe: &super::model::Probe) -> Vec<Tpl> {
    use super::model::Probe;
    match probe {
        Probe::Metric {
            query, prometheus, ..
        } => std::iter::once(*query).chain(*prometheus).collect(),
        Probe::Http { check, .. } => http_templates(check),
        Probe::Command { command, .. } => vec![*command],
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
        StepKind::Http(h) => out.extend(http_templates(h)),
        StepKind::Pause { message } => out.push(*message),
        StepKind::Wait { .. } | StepKind::Repeat { .. } => {}
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::runbook::parse::{Parser, PhaseTables};

    /// Checking the phases in two halves, the second on another thread, finds what one walk
    /// through the runbook finds, in the same order, wherever the runbook is cut.
    #[test]
    fn halves_find_what_one_walk_finds() {
        let mut text = String::from(concat!(
            "[runbook]\nname = \"x\"\n[defaults]\nenv = { REGION = \"eu\" }\n",
            "[vars]\nservice = \"api\"\n\n",
        ));
        for k in 0..8 {
            text.push_str(&format!(
                concat!(
                    "[[phases]]\nid = \"p{k}\"\n",
                    "[[phases.abort_when]]\nmetric = \"up{{job=\\\"{{{{ servce }}}}\\\"}}\"\ncondition = \"< 1\"\n",
                    "[[phases.steps]]\nrun = \"echo {{{{ out{k} }}}} {{{{ out{prev} }}}} {{{{ later{k} }}}}\"\n",
                    "[[phases.steps]]\nrun = \"deploy {{{{ service }}}} {{{{ env.REGON }}}} {{{{ step.nme }}}}\"\ncapture = \"out{k}\"\n",
                    "[[phases.steps]]\nrun = \"true\"\ncapture = \"later{k}\"\nwhen = \"out{k} == 'x' and not outt{k}\"\n",
                    "[[phases.gate]]\nconfirm = \"{{{{ out{k} }}}} {{{{ rb{k} }}}} ok?\"\n",
                    "[[phases.rollback]]\nrun = \"undo {{{{ out{k} }}}}\"\ncapture = \"rb{k}\"\n",
                    "[[phases.rollback]]\nrun = \"undo {{{{ rb{k} }}}} {{{{ rb{prev} }}}}\"\n",
                    "[[phases.steps]]\nrepeat = \"p{next}\"\n\n",
                ),
                k = k,
                prev = k.max(1) - 1,
                next = k + 1,
            ));
        }
        text.push_str("[[rollback]]\nrun = \"undo {{ out3 }} {{ service }} {{ phase.id }}\"\n");
        let (root, errors) = toml::de::DeTable::parse_recoverable(&text);
        assert!(errors.is_empty(), "{errors:?}");
        let mut parser = Parser::new(&text);
        let runbook = parser.runbook(&root, PhaseTables::InRoot).expect("a model");
        parser.templates.compile(&mut parser.p);
        let templates = &parser.templates;
        let checked = |middle: usize| {
            let mut p = Problems::default();
            let all_captures = ids_and_captures(&runbook, &mut p);
            references_split(&runbook, templates, &all_captures, &mut p, middle);
            p.list
        };
        let one_walk = checked(runbook.phases.len());
        // Problems in every phase and in the incident rollback, of every kind the walk finds.
        for wanted in [
            "undefined variable `servce`",
            "undefined variable `outt7`",
            "`later0` is captured by step",
            "`rb0` is captured by step",
            "`env.REGON` is not declared",
            "`step` has no attribute `nme`",
            "`phase` is not available here",
            "`out3` is captured by step",
            "no step or phase has the id `p8`",
            "`repeat` refers to `p7`, which comes later",
        ] {
            assert!(
                one_walk.iter().any(|d| d.message.starts_with(wanted)),
                "no `{wanted}` in {:#?}",
                one_walk.iter().map(|d| &d.message).collect::<Vec<_>>()
            );
        }
        for middle in 0..runbook.phases.len() {
            assert_eq!(
                format!("{:?}", checked(middle)),
                format!("{one_walk:?}"),
                "cut before phase {middle}"
            );
        }
        assert!(middle(&runbook) > 0 && middle(&runbook) < runbook.phases.len());
    }
}
