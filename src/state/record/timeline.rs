//! What happened when in a run, as `rollout report` shows it: each session, each phase and step
//! as it ran (a phase's rollback steps in an entry of their own), every gate answered or waited
//! at, each measurement of a metric check, the abort criteria that tripped, pauses and who
//! resumed, and the rollback. [`super::RunState::apply`] fills it in, in the same pass and the
//! same `match` as the state a resume needs; the methods here only keep the books (which entry a
//! step belongs to, when a phase entry ends) and never read a record themselves.

use std::time::SystemTime;

use serde::Serialize;

use super::{Envelope, GateAnswer, GateKind, GateVerdict, How, Record};
use crate::runbook::Location;

#[derive(Debug, Clone, Default)]
pub struct Timeline {
    /// The first record's envelope and time: who opened the log, from where (a report's
    /// `os_user` and `host`), and the run's identity when the log lacks its `run_started`.
    pub opened: Option<(String, Envelope)>,
    /// Every session that wrote to the log: the start, then each resume.
    pub sessions: Vec<Session>,
    /// Phases in the order they ran, each with its steps; rollback phases are entries apart.
    pub phases: Vec<PhaseRun>,
    /// Every gate answered, oldest first.
    pub approvals: Vec<Approval>,
    /// Every gate the run stopped at because nobody could answer it.
    pub waits: Vec<GateWait>,
    /// Every metric check, in the order each first measured.
    pub checks: Vec<MetricCheck>,
    pub aborts: Vec<AbortTrip>,
    /// Sessions started outside the runbook's change window (`--outside-window --reason`).
    pub outside_window: Vec<OutsideWindow>,
    /// Phases that ran past their `max_duration`.
    pub over_budget: Vec<OverBudget>,
    pub pauses: Vec<Pause>,
    pub rollback: Option<Rollback>,
    /// When the run last recorded its result.
    pub finished_at: Option<String>,
    /// Whether the steps recorded now are rollback steps (from `rollback_started` until
    /// `rollback_finished`).
    pub in_rollback: bool,
}

#[derive(Debug, Clone, Serialize)]
pub struct Session {
    /// `started`, `resumed`, or `sealed` (a session that only sealed a finished run's log).
    pub kind: String,
    pub at: String,
    pub operator: String,
    pub os_user: String,
    pub host: String,
}

impl Session {
    pub fn of(kind: &str, operator: &str, r: &Record) -> Session {
        Session {
            kind: kind.into(),
            at: r.at.clone(),
            operator: operator.to_string(),
            os_user: r.who.os_user.clone(),
            host: r.who.host.clone(),
        }
    }
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

impl PhaseRun {
    fn end(&mut self, at: &str) {
        self.ended_at = Some(at.to_string());
        self.duration_ms = Some(between(&self.started_at, at));
    }
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
    /// Where the step is in the runbook, when it failed for good.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub location: Option<Location>,
}

impl StepRun {
    fn new(step: &str, attempt: u32, started_at: String) -> StepRun {
        StepRun {
            step: step.to_string(),
            attempt,
            started_at,
            ended_at: None,
            duration_ms: None,
            status: String::new(),
            command: Vec::new(),
            exit_code: None,
            reason: None,
            output_tail: None,
            location: None,
        }
    }
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
    pub answers: Vec<GateAnswer>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub digest: Option<String>,
}

#[derive(Debug, Clone, Serialize)]
pub struct GateWait {
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

impl Rollback {
    pub fn requested(at: &str, reason: &str, phases: &[String]) -> Rollback {
        Rollback {
            requested_at: at.to_string(),
            reason: reason.to_string(),
            phases: phases.to_vec(),
            started_at: None,
            phases_rolled_back: Vec::new(),
            finished_at: None,
            complete: None,
            undone: Vec::new(),
            not_undone: Vec::new(),
        }
    }
}

/// Milliseconds since the Unix epoch of an RFC 3339 time; 0 when it does not parse.
pub fn millis(at: &str) -> u64 {
    humantime::parse_rfc3339_weak(at)
        .ok()
        .and_then(|t| t.duration_since(SystemTime::UNIX_EPOCH).ok())
        .map_or(0, |d| u64::try_from(d.as_millis()).unwrap_or(u64::MAX))
}

/// Milliseconds from one RFC 3339 time to a later one (0 when it is not later).
pub fn between(from: &str, to: &str) -> u64 {
    millis(to).saturating_sub(millis(from))
}

/// The snake-case name serde gives a unit variant (`timed_out`, `rolled_back`).
pub fn name<T: Serialize>(value: &T) -> String {
    serde_json::to_value(value)
        .ok()
        .and_then(|v| v.as_str().map(String::from))
        .unwrap_or_default()
}

impl Timeline {
    /// The open entry for `phase` (of the rollback, or not), opened at `at` when there is none.
    pub fn phase(&mut self, phase: &str, at: &str) -> &mut PhaseRun {
        let rollback = self.in_rollback;
        let open = self
            .phases
            .iter()
            .rposition(|p| p.phase == phase && p.rollback == rollback && p.ended_at.is_none());
        let i = open.unwrap_or_else(|| {
            self.phases.push(PhaseRun {
                phase: phase.to_string(),
                rollback,
                started_at: at.to_string(),
                ended_at: None,
                duration_ms: None,
                status: "unfinished".into(),
                steps: Vec::new(),
            });
            self.phases.len() - 1
        });
        &mut self.phases[i]
    }

    /// A phase starts: one that starts again (on resume) gets a new entry, true to the
    /// timeline, and the entry still open for it ends here.
    pub fn start_phase(&mut self, phase: &str, at: &str) {
        let rollback = self.in_rollback;
        if let Some(open) = self
            .phases
            .iter_mut()
            .rev()
            .find(|p| p.phase == phase && p.rollback == rollback && p.ended_at.is_none())
        {
            open.end(at);
        }
        self.phase(phase, at);
    }

    pub fn close_phase(&mut self, phase: &str, at: &str, status: &str) {
        let p = self.phase(phase, at);
        p.end(at);
        p.status = status.to_string();
    }

    /// Every phase entry still open ends at `at` as `paused`: a resume starts it again as a new
    /// entry.
    pub fn pause_phases(&mut self, at: &str) {
        for open in self.phases.iter_mut().filter(|p| p.ended_at.is_none()) {
            open.end(at);
            open.status = "paused".into();
        }
    }

    pub fn start_step(&mut self, phase: &str, step: &str, attempt: u32, at: &str) -> &mut StepRun {
        let p = self.phase(phase, at);
        p.steps.push(StepRun::new(step, attempt, at.to_string()));
        p.steps.last_mut().expect("just pushed")
    }

    /// The attempt of `step` that ends at `at` after `duration_ms`: the one its `step_started`
    /// opened or, for gates and checks (which record no start), one that began `duration_ms`
    /// before.
    pub fn finish_step(
        &mut self,
        phase: &str,
        step: &str,
        attempt: u32,
        at: &str,
        duration_ms: u64,
    ) -> &mut StepRun {
        let p = self.phase(phase, at);
        let open = p
            .steps
            .iter()
            .rposition(|s| s.step == step && s.attempt == attempt && s.ended_at.is_none());
        let i = open.unwrap_or_else(|| {
            let start = SystemTime::UNIX_EPOCH
                + std::time::Duration::from_millis(millis(at).saturating_sub(duration_ms));
            let start = humantime::format_rfc3339_millis(start).to_string();
            p.steps.push(StepRun::new(step, attempt, start));
            p.steps.len() - 1
        });
        let s = &mut p.steps[i];
        s.ended_at = Some(at.to_string());
        s.duration_ms = Some(duration_ms);
        s
    }

    /// Steps in flight when rollout stopped, now decided: interrupted, with the decision.
    pub fn resolve_in_doubt(&mut self, step: &str, decision: &str, at: &str) {
        for s in self.phases.iter_mut().flat_map(|p| &mut p.steps) {
            if s.step == step && s.status == "in_flight" {
                s.ended_at = Some(at.to_string());
                s.reason = Some(format!("in doubt after a crash: {decision}"));
                s.status = "interrupted".into();
            }
        }
    }

    /// The metric check of `step`, opened when it first measures.
    pub fn check(&mut self, step: &str) -> &mut MetricCheck {
        let i = self
            .checks
            .iter()
            .position(|c| c.step == step)
            .unwrap_or_else(|| {
                self.checks.push(MetricCheck {
                    step: step.to_string(),
                    condition: None,
                    status: "unfinished".into(),
                    series: Vec::new(),
                    measurements: Vec::new(),
                });
                self.checks.len() - 1
            });
        &mut self.checks[i]
    }

    /// The last pause nobody resumed from is over.
    pub fn resume(&mut self, at: &str, operator: &str) {
        if let Some(p) = self
            .pauses
            .iter_mut()
            .rev()
            .find(|p| p.resumed_at.is_none())
        {
            p.resumed_at = Some(at.to_string());
            p.resumed_by = Some(operator.to_string());
        }
    }
}
