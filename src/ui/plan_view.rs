//! The text preview of a plan: every phase and step in order, commands fully rendered, kubectl
//! invocations with their context and namespace, gates with who must sign, checks with their
//! thresholds and windows, each phase's rollback, and the webhooks a run would post to.
//! Every text of the plan is shown with its control characters escaped ([`crate::escape`]):
//! each entry point escapes the plan it is given in place before it lays it out, so the only
//! escape sequences in what it writes are its own colours.

use std::fmt::Write;

use console::Style;

use crate::plan::{Action, LiveValue, NotifyFrom, Plan, PlanPhase, PlanStep, TextLayout};
use crate::runbook::model::{NotifyFormat, NotifyOn, Sampling};
use crate::runbook::template::shell_quote_into;

struct Styles {
    heading: Style,
    dim: Style,
    command: Style,
    warn: Style,
    color: bool,
}

impl Styles {
    fn new(color: bool) -> Self {
        let s = |st: Style| st.force_styling(color);
        Styles {
            heading: s(Style::new().bold()),
            dim: s(Style::new().dim()),
            command: s(Style::new().cyan()),
            warn: s(Style::new().yellow()),
            color,
        }
    }

    /// Appends what `text` writes, in `style`. Without colors (a plan piped to a file or a
    /// review) it is written as it is, without the formatting machinery: the lines every step
    /// has are written this way, which matters for a plan of thousands of steps.
    fn styled(&self, o: &mut String, style: &Style, text: impl FnOnce(&mut String)) {
        if self.color {
            let mut plain = String::new();
            text(&mut plain);
            let _ = write!(o, "{}", style.apply_to(plain));
        } else {
            text(o);
        }
    }

    fn put(&self, o: &mut String, style: &Style, text: &str) {
        self.styled(o, style, |o| o.push_str(text));
    }
}

/// Escapes the control characters of every text of `plan`, in place.
pub fn escape_plan(plan: &mut Plan) {
    plan.texts_mut(&mut |s| {
        crate::escape::in_place(s);
    });
}

/// Escapes the control characters of every text of `phase`, in place.
pub fn escape_phase(phase: &mut PlanPhase) {
    phase.texts_mut(&mut |s| {
        crate::escape::in_place(s);
    });
}

/// The plan as text; its texts are escaped in place first.
pub fn render(plan: &mut Plan, color: bool) -> String {
    escape_plan(plan);
    let st = Styles::new(color);
    let mut o = String::new();
    head(&mut o, &st, plan);
    let total = plan.phases.len();
    for (i, phase) in plan.phases.iter().enumerate() {
        phase_text(&mut o, &st, i, total, phase);
    }
    let count = plan.phases.iter().map(counted).sum();
    tail(&mut o, &st, plan, total, count);
    o
}

/// The steps a phase counts for in the closing line (its rollback is not counted).
fn counted(phase: &PlanPhase) -> usize {
    phase.steps.len() + phase.gate.len()
}

/// The plan's text layout, for the plan's streaming writer and the sign-off's digest: what
/// [`render`] writes, piece by piece.
pub struct PlanText {
    pub color: bool,
}

impl TextLayout for PlanText {
    fn head(&self, plan: &mut Plan) -> String {
        escape_plan(plan);
        let mut o = String::new();
        head(&mut o, &Styles::new(self.color), plan);
        o
    }

    fn phase(&self, index: usize, total: usize, phase: &mut PlanPhase) -> String {
        escape_phase(phase);
        let mut o = String::new();
        phase_text(&mut o, &Styles::new(self.color), index, total, phase);
        o
    }

    fn tail(&self, plan: &Plan, total: usize, steps: usize) -> String {
        let mut o = String::new();
        tail(&mut o, &Styles::new(self.color), plan, total, steps);
        o
    }

    fn signed_lines(
        &self,
        title: &str,
        steps: Vec<Result<PlanStep, (String, String)>>,
    ) -> Vec<String> {
        signed_lines(title, steps)
    }
}

fn head(o: &mut String, st: &Styles, plan: &Plan) {
    let rb = &plan.runbook;
    let mut title = format!("Plan for runbook `{}`", rb.name);
    if let Some(v) = &rb.version {
        let _ = write!(title, " v{v}");
    }
    let _ = writeln!(o, "{}", st.heading.apply_to(title));
    let mut facts = Vec::new();
    if let Some(r) = rb.risk {
        facts.push(format!("risk: {r}"));
    }
    if let Some(owner) = &rb.owner {
        facts.push(format!("owner: {owner}"));
    }
    facts.push(format!("file: {}", rb.path));
    let _ = writeln!(o, "  {}", st.dim.apply_to(facts.join("  ·  ")));
    let _ = writeln!(o, "  {}", st.dim.apply_to(&rb.digest));
    if let Some(d) = &rb.description {
        let _ = writeln!(o, "  {}", d.trim());
    }
    if !plan.variables.is_empty() {
        let _ = writeln!(o, "\n{}", st.heading.apply_to("Variables"));
        let width = plan
            .variables
            .iter()
            .map(|v| v.name.len())
            .max()
            .unwrap_or(0);
        for v in &plan.variables {
            let value = v
                .value
                .as_ref()
                .map_or_else(|| crate::redact::MASK.to_string(), ToString::to_string);
            let _ = writeln!(
                o,
                "  {:width$} = {}  {}",
                v.name,
                value,
                st.dim.apply_to(format!("({})", v.origin))
            );
        }
    }
    if let Some(w) = &plan.window {
        let _ = writeln!(
            o,
            "\n{} {}  {}",
            st.heading.apply_to("Change window:"),
            w.text,
            st.dim
                .apply_to("(run and resume refuse outside it; rollback never does)")
        );
    }
    if !plan.notify.is_empty() {
        let _ = writeln!(o, "\n{}", st.heading.apply_to("Notifications"));
        for n in &plan.notify {
            let on = if n.on.len() == NotifyOn::ALL.len() {
                "every event".to_string()
            } else {
                n.on.iter().map(|e| e.name()).collect::<Vec<_>>().join(", ")
            };
            let format = match n.format {
                NotifyFormat::Json => "json",
                NotifyFormat::Slack => "slack",
            };
            let from = if n.from == NotifyFrom::Config {
                ", from your user config"
            } else {
                ""
            };
            match &n.skipped {
                None => {
                    let _ = writeln!(
                        o,
                        "  POST {}  {}",
                        n.url,
                        st.dim.apply_to(format!("({format} on {on}{from})"))
                    );
                }
                Some(why) => {
                    let _ = writeln!(
                        o,
                        "  {} {why}",
                        st.warn
                            .apply_to("skipped by a run, its URL cannot be rendered:")
                    );
                }
            }
        }
    }
}

fn phase_text(o: &mut String, st: &Styles, i: usize, total: usize, phase: &PlanPhase) {
    let _ = writeln!(
        o,
        "\n{}",
        st.heading.apply_to(format!(
            "Phase {}/{total}: {} ({})",
            i + 1,
            phase.title,
            phase.id
        ))
    );
    if let Some(d) = &phase.description {
        let _ = writeln!(o, "  {}", st.dim.apply_to(d.trim()));
    }
    if let Some(b) = &phase.max_duration {
        let _ = writeln!(
            o,
            "  {} {}, then {}",
            st.warn.apply_to("time budget:"),
            b.after,
            b.then.name()
        );
    }
    for a in &phase.abort_when {
        let _ = writeln!(
            o,
            "  {} {}: {} for {} (every {}) -> {}{}",
            st.warn.apply_to("abort when"),
            a.name,
            a.probe.describe(),
            a.sustained,
            a.every,
            a.action.name(),
            if a.scope == "runbook" {
                st.dim.apply_to(" [runbook-wide]").to_string()
            } else {
                String::new()
            }
        );
        let window = match (&a.from, &a.until) {
            (None, None) => None,
            (Some(f), None) => Some(format!("from step `{f}` to the end of the phase")),
            (None, Some(u)) => Some(format!("from the start of the phase until step `{u}`")),
            (Some(f), Some(u)) => Some(format!("from step `{f}` until step `{u}`")),
        };
        if let Some(w) = window {
            let _ = writeln!(o, "    {}", st.dim.apply_to(format!("watched {w}")));
        }
        match &a.probe {
            crate::plan::ProbeView::Metric {
                prometheus: Some(p),
                ..
            } => {
                let _ = writeln!(o, "    {}", st.dim.apply_to(format!("prometheus: {p}")));
            }
            crate::plan::ProbeView::Http { request, timeout } => {
                let mut lines = String::new();
                action(&mut lines, st, request, "  ");
                for line in lines.lines().skip(1) {
                    let line = line.split("; retried every").next().unwrap_or(line);
                    let _ = writeln!(o, "{line}");
                }
                let _ = writeln!(
                    o,
                    "    {}",
                    st.dim.apply_to(format!("each request within {timeout}"))
                );
            }
            crate::plan::ProbeView::Command {
                argv,
                workdir,
                timeout,
                ..
            } => {
                let _ = writeln!(
                    o,
                    "    {}",
                    st.dim.apply_to(format!(
                        "run with `{}` in {}, within {timeout}",
                        argv[..argv.len().saturating_sub(1)].join(" "),
                        workdir.display()
                    ))
                );
            }
            crate::plan::ProbeView::Metric { .. } => {}
        }
        if let (Some(live), crate::plan::ProbeView::Metric { condition, .. }) = (&a.live, &a.probe)
        {
            live_line(o, st, live, &condition.to_string(), "    ");
        }
    }
    for n in &phase.abort_not_watched {
        let _ = writeln!(
            o,
            "  {}",
            st.dim
                .apply_to(format!("not watched in this phase: {} ({})", n.name, n.why))
        );
    }
    steps(o, st, &phase.steps, "  ");
    if !phase.gate.is_empty() {
        let _ = writeln!(
            o,
            "  {}",
            st.heading.apply_to("go/no-go before the next phase:")
        );
        steps(o, st, &phase.gate, "    ");
    }
    if !phase.rollback.is_empty() {
        let _ = writeln!(o, "  {}", st.heading.apply_to("rollback of this phase:"));
        if !phase.rollback_covers.is_empty() {
            let _ = writeln!(
                o,
                "    {}",
                st.dim.apply_to(if phase.rollback_covers.len() == 1 {
                    format!(
                        "also undoes phase {}: its own rollback steps do not run after it",
                        ticked(&phase.rollback_covers, "and")
                    )
                } else {
                    format!(
                        "also undoes phases {}: their own rollback steps do not run after it",
                        ticked(&phase.rollback_covers, "and")
                    )
                })
            );
        }
        if !phase.rollback_covered_by.is_empty() {
            let _ = writeln!(
                o,
                "    {}",
                st.dim.apply_to(format!(
                    "not run after the rollback of {}, which covers this phase",
                    ticked(&phase.rollback_covered_by, "or")
                ))
            );
        }
        steps(o, st, &phase.rollback, "    ");
    }
}

/// `` `a`, `b` and `c` `` (with `last` as the last joining word).
fn ticked(ids: &[String], last: &str) -> String {
    let quoted: Vec<String> = ids.iter().map(|i| format!("`{i}`")).collect();
    match quoted.split_last() {
        Some((end, rest)) if !rest.is_empty() => format!("{} {last} {end}", rest.join(", ")),
        _ => quoted.join(""),
    }
}

fn tail(o: &mut String, st: &Styles, plan: &Plan, total: usize, count: usize) {
    if !plan.rollback.is_empty() {
        let _ = writeln!(
            o,
            "\n{}",
            st.heading
                .apply_to("Runbook rollback (for incidents, `rollout rollback`)")
        );
        steps(o, st, &plan.rollback, "  ");
    }
    let _ = writeln!(
        o,
        "\n{}",
        st.dim.apply_to(format!(
            "{total} phase{}, {count} step{}. This is a preview: nothing was executed and nothing was written.",
            if total == 1 { "" } else { "s" },
            if count == 1 { "" } else { "s" }
        ))
    );
}

fn steps(o: &mut String, st: &Styles, steps: &[PlanStep], indent: &str) {
    for (i, s) in steps.iter().enumerate() {
        step(o, st, i + 1, s, indent);
    }
}

/// What signers read before they sign `phase`, and what the digest binding their signatures is
/// taken of: the phase's title, then each of its steps numbered and laid out as `rollout plan`
/// shows it, without colour (or, for a step that can only be rendered when it runs, why),
/// control characters escaped. When some were, a last line says how they are shown: a
/// backslash that a value wrote then reads differently from one that stands for a control
/// character, and the digest differs too.
fn signed_lines(title: &str, steps: Vec<Result<PlanStep, (String, String)>>) -> Vec<String> {
    let st = Styles::new(false);
    let mut o = String::new();
    let mut escaped = crate::escape::needed(title);
    let _ = writeln!(o, "  phase: {}", crate::escape::text(title));
    for (i, s) in steps.into_iter().enumerate() {
        match s {
            Ok(mut s) => {
                s.texts_mut(&mut |t| {
                    escaped |= crate::escape::in_place(t);
                });
                step(&mut o, &st, i + 1, &s, "  ");
            }
            Err((id, why)) => {
                escaped |= crate::escape::needed(&why);
                let _ = writeln!(
                    o,
                    "  {}. {id}  (rendered when it runs: {})",
                    i + 1,
                    crate::escape::text(&why)
                );
            }
        }
    }
    if escaped {
        o.push_str("  (control characters are shown escaped: \\e is ESC, \\r a carriage return, \\xNN and \\u{NN} other control characters)\n");
    }
    o.lines().map(String::from).collect()
}

/// Step number `n` of a list, laid out at `indent`.
fn step(o: &mut String, st: &Styles, n: usize, s: &PlanStep, indent: &str) {
    let inner = format!("{indent}   ");
    {
        let mut notes = Vec::new();
        if let Some(t) = s.timeout {
            notes.push(format!("timeout {t}"));
        }
        if let Some(r) = s.retry {
            notes.push(format!("retry {}x, delay {}", r.attempts, r.delay));
        }
        if s.continue_on_error {
            notes.push("continue on error".into());
        }
        if s.idempotent {
            notes.push("idempotent".into());
        }
        if let Some(d) = &s.deadline {
            notes.push(format!(
                "deadline {} then {}",
                d.after,
                serde_json::to_value(d.then)
                    .ok()
                    .and_then(|v| v.as_str().map(String::from))
                    .unwrap_or_default()
            ));
        }
        // `{indent}{n}. {id} {name}  line {line}, {notes}`
        let _ = write!(o, "{indent}{n}. ");
        st.put(o, &st.heading, &s.id);
        if let Some(name) = &s.name {
            o.push(' ');
            o.push_str(name);
        }
        o.push_str("  ");
        st.styled(o, &st.dim, |o| {
            let _ = write!(o, "line {}", s.line);
            for note in &notes {
                o.push_str(", ");
                o.push_str(note);
            }
        });
        o.push('\n');
        let inner = inner.as_str();
        if let Some(w) = &s.when {
            let _ = writeln!(
                o,
                "{inner}{} {} ({})",
                st.warn.apply_to("when"),
                w.expression,
                w.verdict()
            );
        }
        action(o, st, &s.action, inner);
        if let (Some(live), Action::Metric { condition, .. }) = (&s.live, &s.action) {
            live_line(o, st, live, &condition.to_string(), &format!("{inner}  "));
        }
        if let Some(c) = &s.capture {
            let _ = writeln!(
                o,
                "{inner}{}",
                st.dim.apply_to(format!("output captured as `{c}`"))
            );
        }
    }
}

/// `now: 0.002 (pass, want < 0.01)`, from `plan --live-checks`.
fn live_line(o: &mut String, st: &Styles, live: &LiveValue, condition: &str, indent: &str) {
    let values = if live.values.is_empty() {
        live.detail.clone().unwrap_or_default()
    } else {
        live.values
            .iter()
            .map(|(series, x)| {
                if series.is_empty() {
                    format!("{x}")
                } else {
                    format!("{series}={x}")
                }
            })
            .collect::<Vec<_>>()
            .join(", ")
    };
    let verdict = match live.verdict {
        "pass" | "ok" => st.dim.apply_to(live.verdict).to_string(),
        other => st.warn.apply_to(other).to_string(),
    };
    let _ = writeln!(
        o,
        "{indent}now: {values} ({verdict}, condition {condition})"
    );
}

fn action(o: &mut String, st: &Styles, a: &Action, indent: &str) {
    match a {
        Action::Run {
            argv,
            command,
            workdir,
            env,
        } => {
            // `run with `bash -c` in /dir`, `$ command` for each line of it, then the env
            o.push_str(indent);
            st.styled(o, &st.dim, |o| {
                o.push_str("run with `");
                for (k, a) in argv[..argv.len() - 1].iter().enumerate() {
                    if k > 0 {
                        o.push(' ');
                    }
                    shell_quote_into(o, a);
                }
                let _ = write!(o, "` in {}", workdir.display());
            });
            o.push('\n');
            for line in command.trim_end().lines() {
                o.push_str(indent);
                st.put(o, &st.dim, "$");
                o.push(' ');
                st.put(o, &st.command, line);
                o.push('\n');
            }
            env_lines(o, st, env, indent);
        }
        Action::Kubectl { argv, env } => {
            o.push_str(indent);
            st.put(o, &st.dim, "$");
            o.push(' ');
            st.styled(o, &st.command, |o| {
                for (k, a) in argv.iter().enumerate() {
                    if k > 0 {
                        o.push(' ');
                    }
                    shell_quote_into(o, a);
                }
            });
            o.push('\n');
            env_lines(o, st, env, indent);
        }
        Action::Confirm {
            question,
            type_to_confirm,
        } => {
            let _ = writeln!(o, "{indent}confirm: {question} [y/N]");
            if let Some(w) = type_to_confirm {
                let _ = writeln!(
                    o,
                    "{indent}{}",
                    st.warn
                        .apply_to(format!("severe: the operator must type `{w}`"))
                );
            }
        }
        Action::Checklist { items } => {
            let _ = writeln!(o, "{indent}checklist, every item must be ticked:");
            for item in items {
                let _ = writeln!(o, "{indent}  [ ] {item}");
            }
        }
        Action::Signoff {
            title,
            roles,
            required,
            exclude_operator,
            ..
        } => {
            let _ = writeln!(
                o,
                "{indent}sign-off: {title} ({required} of {} roles must sign)",
                roles.len()
            );
            for r in roles {
                let who = r
                    .approvers
                    .as_ref()
                    .map_or_else(|| "anyone".to_string(), |a| a.join(", "));
                let _ = writeln!(o, "{indent}  - {}: {who}", r.role);
            }
            if *exclude_operator {
                let _ = writeln!(o, "{indent}  the operator who started the run cannot sign");
            }
        }
        Action::Metric {
            query,
            condition,
            sampling,
            failure_limit,
            successes,
            no_data,
            on_error,
            faults,
            prometheus,
        } => {
            let _ = writeln!(o, "{indent}metric check: {}", st.command.apply_to(query));
            let how = match sampling {
                Sampling::Once => "one measurement".to_string(),
                Sampling::Count { samples, every } => {
                    format!("{samples} measurements, every {every}")
                }
                Sampling::Window { window, every } => format!("for {window}, every {every}"),
            };
            let _ = writeln!(
                o,
                "{indent}  pass when value {condition}; {how}; failure limit {failure_limit}; {successes} consecutive success(es) required; no data: {}",
                serde_json::to_value(no_data)
                    .ok()
                    .and_then(|v| v.as_str().map(String::from))
                    .unwrap_or_default()
            );
            if *on_error == crate::runbook::model::ErrorPolicy::Fail {
                let _ = writeln!(o, "{indent}  query errors count as failed measurements");
            }
            if !faults.is_default() {
                if let Ok(serde_json::Value::Object(map)) = serde_json::to_value(faults) {
                    let shown: Vec<String> = map
                        .iter()
                        .map(|(k, v)| format!("{k} = {}", v.as_str().unwrap_or("")))
                        .collect();
                    let _ = writeln!(o, "{indent}  {}", shown.join(", "));
                }
            }
            let _ = writeln!(
                o,
                "{indent}  {}",
                st.dim.apply_to(format!(
                    "prometheus: {}",
                    prometheus.as_deref().unwrap_or("(not set)")
                ))
            );
        }
        Action::Http {
            method,
            url,
            headers,
            body,
            expect_status,
            expect_body,
            expect_body_regex,
            expect_json,
            expect_headers,
            max_latency,
            every,
        } => {
            let _ = writeln!(
                o,
                "{indent}http check: {method} {}",
                st.command.apply_to(url)
            );
            for (k, v) in headers {
                let _ = writeln!(o, "{indent}  header {k}: {v}");
            }
            if let Some(b) = body {
                let _ = writeln!(o, "{indent}  body: {b}");
            }
            let mut expect = vec![format!(
                "status {}",
                expect_status
                    .iter()
                    .map(ToString::to_string)
                    .collect::<Vec<_>>()
                    .join(" or ")
            )];
            if let Some(b) = expect_body {
                expect.push(format!("body contains {b:?}"));
            }
            if let Some(r) = expect_body_regex {
                expect.push(format!("body matches /{r}/"));
            }
            if let Some(j) = expect_json {
                match (&j.equals, &j.condition) {
                    (Some(v), _) => expect.push(format!("json {} == {v}", j.pointer)),
                    (_, Some(c)) => expect.push(format!("json {} {c}", j.pointer)),
                    _ => {}
                }
            }
            for h in expect_headers {
                expect.push(match (&h.present, &h.equals, &h.regex) {
                    (Some(false), _, _) => format!("no header {}", h.name),
                    (_, Some(v), _) => format!("header {}: {v}", h.name),
                    (_, _, Some(r)) => format!("header {} matches /{r}/", h.name),
                    _ => format!("header {}", h.name),
                });
            }
            if let Some(l) = max_latency {
                expect.push(format!("latency under {l}"));
            }
            let _ = writeln!(
                o,
                "{indent}  expect {}; retried every {every}",
                expect.join(", ")
            );
        }
        Action::Wait { duration } => {
            let _ = writeln!(o, "{indent}wait {duration}");
        }
        Action::Pause { message } => {
            let _ = writeln!(o, "{indent}pause: {message}");
            let _ = writeln!(
                o,
                "{indent}  {}",
                st.dim.apply_to("the run stops here until `rollout resume`")
            );
        }
        Action::Repeat { target, steps } => {
            let _ = writeln!(
                o,
                "{indent}repeat `{target}`: evaluates again {}",
                steps
                    .iter()
                    .map(|s| format!("`{s}`"))
                    .collect::<Vec<_>>()
                    .join(", ")
            );
        }
    }
}

fn env_lines(
    o: &mut String,
    st: &Styles,
    env: &std::collections::BTreeMap<String, String>,
    indent: &str,
) {
    for (k, v) in env {
        o.push_str(indent);
        st.styled(o, &st.dim, |o| {
            o.push_str("env ");
            o.push_str(k);
            o.push('=');
            shell_quote_into(o, v);
        });
        o.push('\n');
    }
}

/// `rollout rollback --dry-run`: the rollback steps of `phases`, in order, rendered by the
/// same renderer a run uses (secrets masked), as the rollback will show them when it starts.
pub fn rollback_text(
    loaded: &crate::runbook::Loaded,
    renderer: &mut crate::plan::Renderer<'_>,
    phases: &[String],
    done: &[String],
    of: &str,
    color: bool,
) -> String {
    let st = Styles::new(color);
    let mut o = String::new();
    let _ = writeln!(
        o,
        "{}",
        st.heading.apply_to(format!(
            "Rollback plan for runbook `{}`",
            loaded.runbook.meta.name
        ))
    );
    let _ = writeln!(o, "  undoes {of}");
    if phases.is_empty() {
        let _ = writeln!(o, "  nothing to roll back: no phase of the run started");
    }
    if !done.is_empty() {
        let _ = writeln!(
            o,
            "  {}",
            st.dim.apply_to(format!(
                "a rollback under way: already rolled back {}",
                ticked(done, "and")
            ))
        );
    }
    let mut errors = Vec::new();
    for (i, view) in crate::plan::rollback::view(renderer, phases, done)
        .into_iter()
        .enumerate()
    {
        let id = &view.id;
        if view.gone {
            let _ = writeln!(o, "\n{}. {id}: no longer in the runbook", i + 1);
            continue;
        }
        let title = crate::escape::text(&view.title);
        let _ = writeln!(
            o,
            "\n{}",
            st.heading
                .apply_to(format!("{}. roll back {id}: {title}", i + 1))
        );
        if let Some(by) = &view.covered_by {
            let _ = writeln!(
                o,
                "   {}",
                st.dim.apply_to(format!(
                    "covered by the rollback of `{by}`: its own rollback steps do not run"
                ))
            );
            continue;
        }
        if view.steps.is_empty() {
            let _ = writeln!(o, "   {}", st.dim.apply_to("no rollback steps"));
            continue;
        }
        let shown: Vec<PlanStep> = view
            .steps
            .into_iter()
            .filter_map(|s| match s {
                Ok(mut step) => {
                    step.texts_mut(&mut |s| {
                        crate::escape::in_place(s);
                    });
                    Some(step)
                }
                Err(e) => {
                    errors.push(format!("`{}`: {}", e.step, e.error.message));
                    None
                }
            })
            .collect();
        steps(&mut o, &st, &shown, "   ");
    }
    for e in errors {
        let _ = writeln!(o, "{}", st.warn.apply_to(format!("cannot render {e}")));
    }
    let confirm = if loaded.runbook.meta.confirm_rollback {
        "It asks for confirmation before it starts (`--yes` gives it)."
    } else {
        "It starts without asking (`confirm_rollback = false`)."
    };
    let _ = writeln!(
        o,
        "\n{}",
        st.dim.apply_to(format!(
            "{confirm} This is a preview: nothing was executed and nothing was written."
        ))
    );
    o
}

#[cfg(test)]
mod tests {
    use std::fmt::Write as _;
    use std::path::Path;

    use super::*;
    use crate::plan::{Layout, RunInfo, StepRenderError, build, write};

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
                    (None, VarType::Float) => "1.5".into(),
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
        let settings = crate::config::Settings::default();
        let mut built = build(&loaded, &resolved, &run, &settings);
        for (color, name) in [
            (None, "json"),
            (Some(false), "text"),
            (Some(true), "color text"),
        ] {
            let text = PlanText {
                color: color == Some(true),
            };
            let layout = match color {
                None => Layout::Json,
                Some(_) => Layout::Text(&text),
            };
            let mut out = Vec::new();
            let written = write(&mut out, &loaded, &resolved, &run, &settings, &layout);
            match (&mut built, written) {
                (Ok(plan), Ok(Ok(()))) => {
                    let expected = match color {
                        None => {
                            let mut json = serde_json::to_vec_pretty(&*plan).expect("json");
                            json.push(b'\n');
                            json
                        }
                        Some(color) => render(plan, color).into_bytes(),
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
            let path = entry.expect("entry").path();
            // `NAME.rehearsal.toml` is a vars file, not a runbook.
            if path.to_string_lossy().ends_with(".rehearsal.toml") {
                continue;
            }
            written_as_built(&path);
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
