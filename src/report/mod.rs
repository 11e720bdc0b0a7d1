//! Run reports (`rollout report`): one [`Report`] built from a run's journal (its audit log)
//! and nothing else, rendered as Markdown ([`md`]), self-contained HTML ([`html`]) or JSON (the
//! model serialized; docs/report-json.md describes it).
//!
//! The builder folds records into a model; renderers turn the model into text. Neither reads
//! files: `app::report` reads the journal and verifies its chain, then hands both in here.

pub mod html;
pub mod md;

use std::collections::BTreeMap;
use std::time::SystemTime;

use serde::Serialize;

use crate::state::record::{Entry, GateKind, GateVerdict, How, PhaseStatus, Record};
use crate::ui::audit_view::VerifyReport;

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
    pub waiting_gates: Vec<WaitingGate>,
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
pub struct Session {
    /// `started` or `resumed`.
    pub kind: String,
    pub at: String,
    pub operator: String,
    pub os_user: String,
    pub host: String,
}

#[derive(Debug, Clone, Serialize)]
pub struct PhaseRun {
    pub phase: String,
    /// The phase's rollback steps, rather than the phase itself.
    pub rollback: bool,
    pub started_at: String,
    pub ended_at: Option<String>,
    pub duration_ms: Option<u64>,
    /// `succeeded`, `failed`, `rolled_back`, `not_rolled_back` (some rollback step failed),
    /// `paused` (the run paused in it; a resume opens a new entry) or `unfinished`.
    pub status: String,
    pub steps: Vec<StepRun>,
}

#[derive(Debug, Clone, Serialize)]
pub struct StepRun {
    pub step: String,
    pub attempt: u32,
    pub started_at: String,
    pub ended_at: Option<String>,
    pub duration_ms: Option<u64>,
    /// `ok`, `failed`, `timed_out`, `interrupted`, `failed_ignored`, `skipped` or `in_flight`
    /// (started, no result: rollout stopped while it ran).
    pub status: String,
    /// What ran, as people read it (secrets masked); empty for gates and checks.
    pub command: Vec<String>,
    pub exit_code: Option<i32>,
    pub reason: Option<String>,
    /// The last 4 KiB of output.
    pub output_tail: Option<String>,
}

#[derive(Debug, Clone, Serialize)]
pub struct Approval {
    pub at: String,
    pub phase: String,
    pub step: String,
    pub kind: GateKind,
    pub outcome: GateVerdict,
    pub how: How,
    pub operator: String,
    pub summary: String,
    pub answers: Vec<crate::state::record::GateAnswer>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub digest: Option<String>,
}

#[derive(Debug, Clone, Serialize)]
pub struct WaitingGate {
    pub at: String,
    pub phase: String,
    pub step: String,
    pub kind: GateKind,
    pub message: String,
    pub satisfy_with: Vec<String>,
}

#[derive(Debug, Clone, Serialize)]
pub struct MetricCheck {
    pub step: String,
    /// The threshold as written (`< 0.01`); `None` in logs written before it was recorded.
    pub condition: Option<String>,
    /// The step's result (`ok`, `failed`, ...) or `unfinished`.
    pub status: String,
    /// Every series seen, in the order first seen.
    pub series: Vec<String>,
    pub measurements: Vec<Measurement>,
}

#[derive(Debug, Clone, Serialize)]
pub struct Measurement {
    pub at: String,
    /// Milliseconds since the run started (the x axis of the plot).
    pub offset_ms: u64,
    /// `pass`, `fail` or `inconclusive`.
    pub verdict: String,
    pub values: Vec<(String, f64)>,
    pub detail: Option<String>,
}

#[derive(Debug, Clone, Serialize)]
pub struct AbortTrip {
    pub at: String,
    pub phase: String,
    pub step: String,
    pub criterion: String,
    pub action: String,
    pub values: Vec<(String, f64)>,
}

#[derive(Debug, Clone, Serialize)]
pub struct OutsideWindow {
    pub at: String,
    /// The time in the window's zone.
    pub local_time: String,
    pub window: String,
    pub reason: String,
    pub operator: String,
}

#[derive(Debug, Clone, Serialize)]
pub struct OverBudget {
    pub at: String,
    pub phase: String,
    pub max_duration: String,
    pub action: String,
}

#[derive(Debug, Clone, Serialize)]
pub struct Pause {
    pub at: String,
    pub phase: Option<String>,
    pub step: Option<String>,
    pub reason: String,
    pub waiting_for_approval: bool,
    /// When and by whom the run was resumed, if it was.
    pub resumed_at: Option<String>,
    pub resumed_by: Option<String>,
}

#[derive(Debug, Clone, Serialize)]
pub struct Rollback {
    pub requested_at: String,
    pub reason: String,
    /// The phases to roll back, in the order they roll back.
    pub phases: Vec<String>,
    pub started_at: Option<String>,
    /// Each phase whose rollback steps are over, and whether all of them succeeded.
    pub phases_rolled_back: Vec<(String, bool)>,
    pub finished_at: Option<String>,
    /// `None` while the rollback has not finished.
    pub complete: Option<bool>,
    pub undone: Vec<String>,
    pub not_undone: Vec<String>,
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

/// Milliseconds since the Unix epoch of an RFC 3339 time; 0 when it does not parse.
fn millis(at: &str) -> u64 {
    humantime::parse_rfc3339_weak(at)
        .ok()
        .and_then(|t| t.duration_since(SystemTime::UNIX_EPOCH).ok())
        .map_or(0, |d| u64::try_from(d.as_millis()).unwrap_or(u64::MAX))
}

fn between(from: &str, to: &str) -> u64 {
    millis(to).saturating_sub(millis(from))
}

/// The snake-case name serde gives a unit variant.
fn name<T: Serialize>(value: &T) -> String {
    serde_json::to_value(value)
        .ok()
        .and_then(|v| v.as_str().map(String::from))
        .unwrap_or_default()
}

/// Folds a run's records into its report. `audit` is what verifying the journal found.
pub fn build(records: &[Record], audit: &VerifyReport) -> Report {
    let mut b = Builder::default();
    for r in records {
        b.apply(r);
    }
    b.finish(records, audit)
}

#[derive(Default)]
struct Builder {
    report: Option<Report>,
    in_rollback: bool,
}

impl Builder {
    fn report(&mut self, r: &Record) -> &mut Report {
        self.report.get_or_insert_with(|| Report {
            schema_version: SCHEMA_VERSION,
            run_id: r.run.clone(),
            runbook_name: String::new(),
            runbook: String::new(),
            runbook_digest: r.runbook_digest.clone(),
            rollout_version: String::new(),
            operator: r.who.operator.clone(),
            os_user: r.who.os_user.clone(),
            host: r.who.host.clone(),
            started_at: r.at.clone(),
            ended_at: r.at.clone(),
            duration_ms: 0,
            outcome: "running".into(),
            outcome_reason: None,
            vars: BTreeMap::new(),
            sessions: Vec::new(),
            phases: Vec::new(),
            approvals: Vec::new(),
            waiting_gates: Vec::new(),
            checks: Vec::new(),
            aborts: Vec::new(),
            outside_window: Vec::new(),
            over_budget: Vec::new(),
            pauses: Vec::new(),
            rollback: None,
            audit: Audit {
                ok: false,
                sealed: false,
                records: 0,
                final_digest: String::new(),
                message: String::new(),
            },
        })
    }

    /// The open phase entry for `phase` (of the rollback, or not), opened when missing.
    fn phase(&mut self, r: &Record, phase: &str) -> &mut PhaseRun {
        let rollback = self.in_rollback;
        let report = self.report(r);
        let open = report
            .phases
            .iter()
            .rposition(|p| p.phase == phase && p.rollback == rollback && p.ended_at.is_none());
        let at = match open {
            Some(i) => i,
            None => {
                report.phases.push(PhaseRun {
                    phase: phase.to_string(),
                    rollback,
                    started_at: r.at.clone(),
                    ended_at: None,
                    duration_ms: None,
                    status: "unfinished".into(),
                    steps: Vec::new(),
                });
                report.phases.len() - 1
            }
        };
        &mut report.phases[at]
    }

    fn close_phase(&mut self, r: &Record, phase: &str, status: &str) {
        let p = self.phase(r, phase);
        p.ended_at = Some(r.at.clone());
        p.duration_ms = Some(between(&p.started_at, &r.at));
        p.status = status.to_string();
    }

    fn check(&mut self, r: &Record, step: &str) -> &mut MetricCheck {
        let report = self.report(r);
        let at = match report.checks.iter().position(|c| c.step == step) {
            Some(i) => i,
            None => {
                report.checks.push(MetricCheck {
                    step: step.to_string(),
                    condition: None,
                    status: "unfinished".into(),
                    series: Vec::new(),
                    measurements: Vec::new(),
                });
                report.checks.len() - 1
            }
        };
        &mut report.checks[at]
    }

    fn apply(&mut self, r: &Record) {
        let report = self.report(r);
        report.ended_at.clone_from(&r.at);
        match &r.event {
            Entry::RunStarted {
                run_id,
                runbook,
                runbook_name,
                digest,
                operator,
                vars,
                version,
            } => {
                report.run_id.clone_from(run_id);
                report.runbook.clone_from(runbook);
                report.runbook_name.clone_from(runbook_name);
                report.runbook_digest.clone_from(digest);
                report.rollout_version.clone_from(version);
                report.operator.clone_from(operator);
                report.vars.clone_from(vars);
                report.started_at.clone_from(&r.at);
                report.sessions.push(session("started", operator, r));
            }
            Entry::SealRecovered { operator, .. } => {
                report.sessions.push(session("sealed", operator, r));
            }
            Entry::RunResumed {
                operator, digest, ..
            } => {
                report.runbook_digest.clone_from(digest);
                report.sessions.push(session("resumed", operator, r));
                report.outcome = "running".into();
                report.outcome_reason = None;
                if let Some(p) = report
                    .pauses
                    .iter_mut()
                    .rev()
                    .find(|p| p.resumed_at.is_none())
                {
                    p.resumed_at = Some(r.at.clone());
                    p.resumed_by = Some(operator.clone());
                }
            }
            Entry::PhaseStarted { phase } => {
                // A phase started again (on resume) gets a new bar, true to the timeline.
                let rollback = self.in_rollback;
                let report = self.report(r);
                if let Some(open) =
                    report.phases.iter_mut().rev().find(|p| {
                        p.phase == *phase && p.rollback == rollback && p.ended_at.is_none()
                    })
                {
                    open.ended_at = Some(r.at.clone());
                    open.duration_ms = Some(between(&open.started_at, &r.at));
                }
                self.phase(r, phase);
            }
            Entry::StepStarted {
                phase,
                step,
                attempt,
                command,
            } => {
                let p = self.phase(r, phase);
                p.steps.push(StepRun {
                    step: step.clone(),
                    attempt: *attempt,
                    started_at: r.at.clone(),
                    ended_at: None,
                    duration_ms: None,
                    status: "in_flight".into(),
                    command: command.clone(),
                    exit_code: None,
                    reason: None,
                    output_tail: None,
                });
            }
            Entry::StepFinished {
                phase,
                step,
                attempt,
                status,
                exit_code,
                duration_ms,
                reason,
                output_tail,
                ..
            } => {
                let p = self.phase(r, phase);
                let open = p.steps.iter().rposition(|s| {
                    s.step == *step && s.attempt == *attempt && s.ended_at.is_none()
                });
                let s = if let Some(i) = open {
                    &mut p.steps[i]
                } else {
                    // Gates and checks without a `step_started`: it began `duration_ms` ago.
                    let start = SystemTime::UNIX_EPOCH
                        + std::time::Duration::from_millis(
                            millis(&r.at).saturating_sub(*duration_ms),
                        );
                    p.steps.push(StepRun {
                        step: step.clone(),
                        attempt: *attempt,
                        started_at: humantime::format_rfc3339_millis(start).to_string(),
                        ended_at: None,
                        duration_ms: None,
                        status: String::new(),
                        command: Vec::new(),
                        exit_code: None,
                        reason: None,
                        output_tail: None,
                    });
                    p.steps.last_mut().expect("just pushed")
                };
                s.ended_at = Some(r.at.clone());
                s.duration_ms = Some(*duration_ms);
                s.status = name(status);
                s.exit_code = *exit_code;
                s.reason.clone_from(reason);
                s.output_tail.clone_from(output_tail);
                let status = *status;
                if let Some(c) = self.report(r).checks.iter_mut().find(|c| c.step == *step) {
                    c.status = name(&status);
                }
            }
            Entry::StepSkipped {
                phase,
                step,
                reason,
            } => {
                let p = self.phase(r, phase);
                p.steps.push(StepRun {
                    step: step.clone(),
                    attempt: 0,
                    started_at: r.at.clone(),
                    ended_at: Some(r.at.clone()),
                    duration_ms: Some(0),
                    status: "skipped".into(),
                    command: Vec::new(),
                    exit_code: None,
                    reason: Some(reason.clone()),
                    output_tail: None,
                });
            }
            Entry::InDoubtResolved { step, decision } => {
                for p in &mut self.report(r).phases {
                    for s in &mut p.steps {
                        if s.step == *step && s.status == "in_flight" {
                            s.ended_at = Some(r.at.clone());
                            s.reason = Some(format!("in doubt after a crash: {decision}"));
                            s.status = "interrupted".into();
                        }
                    }
                }
            }
            Entry::PhaseFinished { phase, status } => {
                let status = match status {
                    PhaseStatus::Succeeded => "succeeded",
                    PhaseStatus::Failed => "failed",
                };
                self.close_phase(r, phase, status);
            }
            Entry::Measurement {
                step,
                verdict,
                values,
                detail,
                condition,
            } => {
                let offset_ms = between(&report.started_at, &r.at);
                let c = self.check(r, step);
                if c.condition.is_none() {
                    c.condition.clone_from(condition);
                }
                for (series, _) in values {
                    if !c.series.contains(series) {
                        c.series.push(series.clone());
                    }
                }
                c.measurements.push(Measurement {
                    at: r.at.clone(),
                    offset_ms,
                    verdict: verdict.clone(),
                    values: values.clone(),
                    detail: detail.clone(),
                });
            }
            Entry::AbortTripped {
                phase,
                step,
                criterion,
                action,
                values,
            } => report.aborts.push(AbortTrip {
                at: r.at.clone(),
                phase: phase.clone(),
                step: step.clone(),
                criterion: criterion.clone(),
                action: action.clone(),
                values: values.clone(),
            }),
            Entry::Paused {
                phase,
                step,
                reason,
                waiting_for_approval,
            } => {
                report.pauses.push(Pause {
                    at: r.at.clone(),
                    phase: phase.clone(),
                    step: step.clone(),
                    reason: reason.clone(),
                    waiting_for_approval: *waiting_for_approval,
                    resumed_at: None,
                    resumed_by: None,
                });
                // The phase stops here; a resume starts it again as a new timeline entry.
                for open in report.phases.iter_mut().filter(|p| p.ended_at.is_none()) {
                    open.ended_at = Some(r.at.clone());
                    open.duration_ms = Some(between(&open.started_at, &r.at));
                    open.status = "paused".into();
                }
                report.outcome = if *waiting_for_approval {
                    "waiting_for_approval".into()
                } else {
                    "paused".into()
                };
                report.outcome_reason = Some(reason.clone());
            }
            Entry::RunFinished { status, reason } => {
                report.outcome = name(status);
                report.outcome_reason.clone_from(reason);
            }
            Entry::GateAnswered {
                phase,
                step,
                kind,
                outcome,
                how,
                operator,
                answers,
                digest,
                summary,
                ..
            } => report.approvals.push(Approval {
                at: r.at.clone(),
                phase: phase.clone(),
                step: step.clone(),
                kind: *kind,
                outcome: *outcome,
                how: *how,
                operator: operator.clone(),
                summary: summary.clone(),
                answers: answers.clone(),
                digest: digest.clone(),
            }),
            Entry::GateWaiting {
                phase,
                step,
                kind,
                message,
                satisfy_with,
            } => report.waiting_gates.push(WaitingGate {
                at: r.at.clone(),
                phase: phase.clone(),
                step: step.clone(),
                kind: *kind,
                message: message.clone(),
                satisfy_with: satisfy_with.clone(),
            }),
            Entry::RollbackRequested { reason, phases } => {
                report.rollback = Some(Rollback {
                    requested_at: r.at.clone(),
                    reason: reason.clone(),
                    phases: phases.clone(),
                    started_at: None,
                    phases_rolled_back: Vec::new(),
                    finished_at: None,
                    complete: None,
                    undone: Vec::new(),
                    not_undone: Vec::new(),
                });
            }
            Entry::RollbackStarted { phases } => {
                let rb = report.rollback.get_or_insert_with(|| Rollback {
                    requested_at: r.at.clone(),
                    reason: String::new(),
                    phases: Vec::new(),
                    started_at: None,
                    phases_rolled_back: Vec::new(),
                    finished_at: None,
                    complete: None,
                    undone: Vec::new(),
                    not_undone: Vec::new(),
                });
                rb.phases.clone_from(phases);
                rb.started_at = Some(r.at.clone());
                self.in_rollback = true;
            }
            Entry::PhaseRolledBack { phase, complete } => {
                if let Some(rb) = &mut report.rollback {
                    rb.phases_rolled_back.push((phase.clone(), *complete));
                }
                let status = if *complete {
                    "rolled_back"
                } else {
                    "not_rolled_back"
                };
                self.close_phase(r, phase, status);
            }
            Entry::RollbackFinished {
                complete,
                undone,
                not_undone,
            } => {
                if let Some(rb) = &mut report.rollback {
                    rb.finished_at = Some(r.at.clone());
                    rb.complete = Some(*complete);
                    rb.undone.clone_from(undone);
                    rb.not_undone.clone_from(not_undone);
                }
                self.in_rollback = false;
            }
            Entry::LockAcquired { .. }
            | Entry::LockReleased { .. }
            | Entry::LeftoversStopped { .. }
            | Entry::JournalRecovered { .. }
            | Entry::NotificationFailed { .. }
            | Entry::Sealed { .. } => {}
            Entry::OutsideWindow {
                reason,
                window,
                local_time,
            } => report.outside_window.push(OutsideWindow {
                at: r.at.clone(),
                local_time: local_time.clone(),
                window: window.clone(),
                reason: reason.clone(),
                operator: r.who.operator.clone(),
            }),
            Entry::PhaseOverBudget {
                phase,
                max_duration,
                action,
            } => report.over_budget.push(OverBudget {
                at: r.at.clone(),
                phase: phase.clone(),
                max_duration: max_duration.clone(),
                action: action.clone(),
            }),
        }
    }

    fn finish(self, records: &[Record], audit: &VerifyReport) -> Report {
        let mut report = self.report.unwrap_or_else(|| {
            let mut b = Builder::default();
            let empty = Record::bare(Entry::Sealed { records: 0 });
            b.report(&empty);
            let mut r = b.report.expect("made");
            r.started_at.clear();
            r.ended_at.clear();
            r
        });
        // A run that is over ends at its result, not at the lock release and seal after it.
        if let Some(end) = records
            .iter()
            .rev()
            .find(|r| matches!(r.event, Entry::RunFinished { .. }))
        {
            report.ended_at.clone_from(&end.at);
        }
        report.duration_ms = between(&report.started_at, &report.ended_at);
        report.audit = Audit::from(audit);
        report
    }
}

fn session(kind: &str, operator: &str, r: &Record) -> Session {
    Session {
        kind: kind.into(),
        at: r.at.clone(),
        operator: operator.to_string(),
        os_user: r.who.os_user.clone(),
        host: r.who.host.clone(),
    }
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
    use super::*;
    use crate::state::record::StepStatus;

    fn at(ms: u64, event: Entry) -> Record {
        let mut r = Record::bare(event);
        r.at = humantime::format_rfc3339_millis(
            SystemTime::UNIX_EPOCH + std::time::Duration::from_millis(1_800_000_000_000 + ms),
        )
        .to_string();
        r
    }

    fn audit() -> VerifyReport {
        crate::ui::audit_view::verify_report(
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
    fn durations_read_well() {
        assert_eq!(duration(12), "12ms");
        assert_eq!(duration(1234), "1.2s");
        assert_eq!(duration(184_000), "3m 04s");
        assert_eq!(duration(3_720_000), "1h 02m");
    }
}
