//! Run reports (`rollout report`): one [`Report`] made from a run's journal (its audit log)
//! and nothing else, rendered as Markdown ([`md`]), self-contained HTML ([`html`]) or JSON (the
//! model serialized; docs/report-json.md describes it).
//!
//! The journal is read once, by the fold that also gives `status` and resume their state:
//! [`RunState`] and its [`Timeline`](crate::state::record::Timeline). [`build`] only arranges
//! what that fold found. Markdown and HTML are laid out by the tera templates in
//! `templates/report/` (embedded in the binary), which escape every value they insert: HTML
//! with tera's own escaping, Markdown as one table cell. Nothing here reads files:
//! `app::report` reads the journal and verifies its chain, then hands both in here.

pub mod html;
pub mod md;

use std::collections::BTreeMap;

use serde::Serialize;
use tera::{Context, Kwargs, State, Tera};

pub use crate::state::record::timeline::{
    AbortTrip, Approval, GateWait, Measurement, MetricCheck, OutsideWindow, OverBudget, Pause,
    PhaseRun, Rollback, Session, StepRun,
};
use crate::state::record::timeline::{between, millis};
use crate::state::record::{GateKind, Record, RunState, Standing, timeline::name};
use crate::state::verify::VerifyReport;

/// Bumped when a field changes meaning or goes away (adding fields does not bump it).
pub const SCHEMA_VERSION: u32 = 1;

#[derive(Debug, Clone, Serialize)]
pub struct Report {
    pub schema_version: u32,
    pub run_id: String,
    /// The runbook's `name`, and the path it was run from.
    pub runbook_name: String,
    pub runbook: String,
    /// `sha256:` of the runbook text (of the last session, when it changed on resume).
    pub runbook_digest: String,
    pub rollout_version: String,
    /// Who started the run, and from where.
    pub operator: String,
    pub os_user: String,
    pub host: String,
    pub started_at: String,
    /// When the run finished, or the last record's time when it has not.
    pub ended_at: String,
    pub duration_ms: u64,
    /// `succeeded`, `failed`, `aborted`, `rolled_back`, `rollback_incomplete`, `paused`,
    /// `waiting_for_approval` or `running` (the log ends without a result).
    pub outcome: String,
    pub outcome_reason: Option<String>,
    /// Variable values as the run started (secrets as `******`).
    pub vars: BTreeMap<String, serde_json::Value>,
    /// Every session that wrote to the log: the start, then each resume.
    pub sessions: Vec<Session>,
    /// Phases in the order they ran, each with its steps; rollback phases are separate
    /// entries with `rollback: true`.
    pub phases: Vec<PhaseRun>,
    /// Every human gate answered (approvals, checklists, sign-offs, rollback confirmations).
    pub approvals: Vec<Approval>,
    /// Gates the run stopped at because nobody could answer them.
    pub waiting_gates: Vec<GateWait>,
    /// Every signed approval: who signed (the allowed-signers principal), with which key, and
    /// whether its signature verifies now (checked again, as `rollout audit verify` does).
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub signatures: Vec<crate::state::verify::SignatureCheck>,
    /// Every metric check, with each measurement.
    pub checks: Vec<MetricCheck>,
    pub aborts: Vec<AbortTrip>,
    /// Sessions started outside the runbook's change window (`--outside-window --reason`).
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub outside_window: Vec<OutsideWindow>,
    /// Phases that ran past their `max_duration` and went on (`on_max_duration = "warn"`).
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub over_budget: Vec<OverBudget>,
    pub pauses: Vec<Pause>,
    pub rollback: Option<Rollback>,
    /// Whether the journal's hash chain verifies (`rollout audit verify`).
    pub audit: Audit,
}

#[derive(Debug, Clone, Serialize)]
pub struct Audit {
    pub ok: bool,
    pub sealed: bool,
    pub records: usize,
    /// The hash of the last record: the digest to publish.
    pub final_digest: String,
    /// What `rollout audit verify` says.
    pub message: String,
}

impl From<&VerifyReport> for Audit {
    fn from(v: &VerifyReport) -> Audit {
        Audit {
            ok: v.ok,
            sealed: v.sealed,
            records: v.records,
            final_digest: v.final_digest.clone(),
            message: v.message.clone(),
        }
    }
}

/// Folds a run's records into its report. `audit` is what verifying the journal found.
pub fn build(records: &[Record], audit: &VerifyReport) -> Report {
    of_state(RunState::fold_with_timeline(records), audit)
}

/// The report of a run whose journal folded into `state`.
fn of_state(state: RunState, audit: &VerifyReport) -> Report {
    let t = state.timeline.map(|t| *t).unwrap_or_default();
    // A log that lacks its `run_started` (cut short, or tampered with) still names its run.
    let (opened_at, opened) = t.opened.unwrap_or_default();
    let own = |value: String, first: &str| {
        if value.is_empty() {
            first.to_string()
        } else {
            value
        }
    };
    let (outcome, outcome_reason) = match state.standing {
        None | Some(Standing::Running) => ("running".to_string(), None),
        Some(Standing::Paused {
            reason,
            waiting_for_approval,
            ..
        }) => {
            let paused = if waiting_for_approval {
                "waiting_for_approval"
            } else {
                "paused"
            };
            (paused.to_string(), Some(reason))
        }
        Some(Standing::Finished { status, reason, .. }) => (name(&status), reason),
    };
    let started_at = own(state.started_at, &opened_at);
    // A run that is over ends at its result, not at the lock release and seal after it.
    let ended_at = t.finished_at.unwrap_or(state.last_at);
    Report {
        schema_version: SCHEMA_VERSION,
        run_id: own(state.run_id, &opened.run),
        runbook_name: state.runbook_name,
        runbook: state.runbook,
        runbook_digest: own(state.digest, &opened.runbook_digest),
        rollout_version: state.version,
        operator: own(state.operator, &opened.who.operator),
        os_user: opened.who.os_user,
        host: opened.who.host,
        duration_ms: between(&started_at, &ended_at),
        started_at,
        ended_at,
        outcome,
        outcome_reason,
        vars: state.vars,
        sessions: t.sessions,
        phases: t.phases,
        approvals: t.approvals,
        waiting_gates: t.waits,
        signatures: audit.signatures.clone(),
        checks: t.checks,
        aborts: t.aborts,
        outside_window: t.outside_window,
        over_budget: t.over_budget,
        pauses: t.pauses,
        rollback: t.rollback,
        audit: Audit::from(audit),
    }
}

/// Renders `report` with one of the templates in `templates/report/`, escaping every value the
/// template inserts with `escape`; `more` adds what only that template needs. Control
/// characters in what the log quotes are escaped last, over the whole text (see
/// [`crate::escape`]).
fn render(
    template: (&'static str, &str),
    escape: tera::EscapeFn,
    report: &Report,
    more: impl FnOnce(&mut Tera, &mut Context),
) -> Result<String, RenderError> {
    let (name, text) = template;
    let mut tera = Tera::new();
    tera.set_escape_fn(escape);
    tera.autoescape_on([name]);
    tera.register_filter("clock", |at: &str, _: Kwargs, _: &State| clock(at));
    tera.register_filter("duration", |ms: u64, _: Kwargs, _: &State| duration(ms));
    tera.register_filter("label", |outcome: &str, _: Kwargs, _: &State| {
        outcome_label(outcome)
    });
    tera.register_filter("value", |v: f64, _: Kwargs, _: &State| value(v));
    tera.register_filter("gate", |kind: &str, _: Kwargs, _: &State| gate_label(kind));
    tera.register_filter("undone", |item: &str, _: Kwargs, _: &State| {
        crate::state::record::undone_label(item)
    });
    let mut context = Context::new();
    context.insert("r", report);
    let steps: Vec<PhaseStep> = (report.phases.iter())
        .flat_map(|p| p.steps.iter().map(move |step| PhaseStep::of(p, step)))
        .collect();
    context.insert("steps", &steps);
    more(&mut tera, &mut context);
    tera.add_raw_template(name, text)
        .and_then(|()| tera.render(name, &context))
        .map(crate::escape::owned)
        .map_err(|e| RenderError(name.to_string(), e.to_string()))
}

/// A step with the phase entry it ran in, for the sections that list steps across phases.
#[derive(Serialize)]
struct PhaseStep<'r> {
    phase: &'r str,
    rollback: bool,
    /// `file:line:column` of a step that failed for good, else none.
    at: Option<String>,
    #[serde(flatten)]
    step: &'r StepRun,
}

impl<'r> PhaseStep<'r> {
    fn of(p: &'r PhaseRun, step: &'r StepRun) -> PhaseStep<'r> {
        PhaseStep {
            phase: &p.phase,
            rollback: p.rollback,
            at: step.location.as_ref().map(ToString::to_string),
            step,
        }
    }
}

/// A report template that could not render: a bug in rollout, not in the run.
#[derive(Debug, thiserror::Error)]
#[error(
    "cannot render the report's `{0}` template: {1}; this is a bug in rollout, please report it (`--format json` still works)"
)]
pub struct RenderError(String, String);

/// `confirm`, `severe confirm`, `checklist` or `sign-off`, from the kind's name in the model.
fn gate_label(kind: &str) -> String {
    serde_json::from_value::<GateKind>(serde_json::Value::from(kind))
        .map_or_else(|_| kind.to_string(), |k| k.label().to_string())
}

/// `12ms`, `1.2s`, `3m 04s`, `1h 02m`.
pub fn duration(ms: u64) -> String {
    let s = ms / 1000;
    if ms < 1000 {
        format!("{ms}ms")
    } else if ms < 60_000 {
        format!("{:.1}s", ms as f64 / 1000.0)
    } else if s < 3600 {
        format!("{}m {:02}s", s / 60, s % 60)
    } else {
        format!("{}h {:02}m", s / 3600, (s % 3600) / 60)
    }
}

/// `2026-11-22 02:43:41` from an RFC 3339 time (UTC), for people.
pub fn clock(at: &str) -> String {
    at.get(..19)
        .map_or_else(|| at.to_string(), |t| t.replace('T', " "))
}

/// The outcome as people say it.
pub fn outcome_label(outcome: &str) -> String {
    outcome.replace('_', " ")
}

/// A measured value, short.
pub fn value(v: f64) -> String {
    crate::runbook::condition::number(v)
}

#[cfg(test)]
mod tests {
    use std::time::SystemTime;

    use super::*;
    use crate::state::record::{Entry, PhaseStatus, StepStatus};

    fn at(ms: u64, event: Entry) -> Record {
        let mut r = Record::bare(event);
        r.at = humantime::format_rfc3339_millis(
            SystemTime::UNIX_EPOCH + std::time::Duration::from_millis(1_800_000_000_000 + ms),
        )
        .to_string();
        r
    }

    fn audit() -> VerifyReport {
        crate::state::verify::verify_report(
            "journal.ndjson",
            &crate::state::audit::verify(b""),
            false,
            None,
        )
    }

    fn finished(phase: &str, step: &str, status: StepStatus, ms: u64) -> Entry {
        Entry::StepFinished {
            phase: phase.into(),
            step: step.into(),
            attempt: 1,
            status,
            exit_code: None,
            duration_ms: ms,
            reason: None,
            output_tail: None,
            capture: None,
            location: None,
        }
    }

    #[test]
    fn a_gate_without_step_started_begins_its_duration_before_it_finished() {
        let records = [
            at(0, Entry::PhaseStarted { phase: "p".into() }),
            at(5000, finished("p", "gate", StepStatus::Ok, 4000)),
        ];
        let r = build(&records, &audit());
        let s = &r.phases[0].steps[0];
        assert_eq!(
            millis(&s.started_at) + 4000,
            millis(s.ended_at.as_deref().unwrap())
        );
        assert_eq!(s.status, "ok");
    }

    #[test]
    fn a_step_with_no_result_is_in_flight_and_the_run_is_running() {
        let records = [
            at(0, Entry::PhaseStarted { phase: "p".into() }),
            at(
                10,
                Entry::StepStarted {
                    phase: "p".into(),
                    step: "s".into(),
                    attempt: 1,
                    command: vec!["sleep 9".into()],
                },
            ),
        ];
        let r = build(&records, &audit());
        assert_eq!(r.outcome, "running");
        assert_eq!(r.phases[0].status, "unfinished");
        assert_eq!(r.phases[0].steps[0].status, "in_flight");
        assert!(!r.audit.ok);
    }

    #[test]
    fn rollback_steps_go_to_a_rollback_entry_of_their_phase() {
        let records = [
            at(0, Entry::PhaseStarted { phase: "p".into() }),
            at(10, finished("p", "s", StepStatus::Failed, 10)),
            at(
                11,
                Entry::PhaseFinished {
                    phase: "p".into(),
                    status: PhaseStatus::Failed,
                },
            ),
            at(
                12,
                Entry::RollbackStarted {
                    phases: vec!["p".into()],
                },
            ),
            at(20, finished("p", "undo", StepStatus::Ok, 8)),
            at(
                21,
                Entry::PhaseRolledBack {
                    phase: "p".into(),
                    complete: true,
                },
            ),
        ];
        let r = build(&records, &audit());
        let phases: Vec<(bool, &str, usize)> = r
            .phases
            .iter()
            .map(|p| (p.rollback, p.status.as_str(), p.steps.len()))
            .collect();
        assert_eq!(phases, [(false, "failed", 1), (true, "rolled_back", 1)]);
    }

    #[test]
    fn a_template_that_cannot_render_is_named_in_the_error() {
        let report = build(&[], &audit());
        let broken = ("broken.md", "{% for x in r.nothing %}{{ x }}{% endfor %}");
        let err = render(broken, tera::escape_html, &report, |_, _| {}).unwrap_err();
        let message = err.to_string();
        assert!(
            message.starts_with("cannot render the report's `broken.md` template: "),
            "{message}"
        );
        assert!(message.contains("this is a bug in rollout"), "{message}");
    }

    #[test]
    fn durations_read_well() {
        assert_eq!(duration(12), "12ms");
        assert_eq!(duration(1234), "1.2s");
        assert_eq!(duration(184_000), "3m 04s");
        assert_eq!(duration(3_720_000), "1h 02m");
    }
}
