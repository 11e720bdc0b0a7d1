//! The records of a run's journal, and the run state derived from them. The journal is the
//! only truth: status, resume and reports all fold these records, so there is no second copy
//! of the state to fall out of step with it.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

/// One line of the journal.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Record {
    pub seq: u64,
    /// RFC 3339 UTC timestamp.
    pub at: String,
    #[serde(flatten)]
    pub event: Entry,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "type", rename_all = "snake_case")]
pub enum Entry {
    RunStarted {
        run_id: String,
        runbook: String,
        runbook_name: String,
        digest: String,
        operator: String,
        /// Non-secret variable values as resolved when the run started.
        vars: BTreeMap<String, serde_json::Value>,
    },
    RunResumed {
        operator: String,
        digest: String,
    },
    PhaseStarted {
        phase: String,
    },
    /// Written before the step's side effect.
    StepStarted {
        phase: String,
        step: String,
        attempt: u32,
    },
    /// Written after it, with what happened.
    StepFinished {
        phase: String,
        step: String,
        attempt: u32,
        status: StepStatus,
        exit_code: Option<i32>,
        duration_ms: u64,
        reason: Option<String>,
        output_tail: Option<String>,
        capture: Option<(String, String)>,
    },
    /// One measurement of a metric check, as it was taken.
    Measurement {
        step: String,
        /// `pass`, `fail` or `inconclusive`.
        verdict: String,
        /// Each series' value (series name, value).
        values: Vec<(String, f64)>,
        detail: Option<String>,
    },
    StepSkipped {
        phase: String,
        step: String,
        reason: String,
    },
    /// The operator decided what to do with a step that was in flight when rollout died.
    InDoubtResolved {
        step: String,
        decision: String,
    },
    PhaseFinished {
        phase: String,
        status: PhaseStatus,
    },
    Paused {
        phase: Option<String>,
        step: Option<String>,
        reason: String,
        waiting_for_approval: bool,
    },
    RunFinished {
        status: RunStatus,
        reason: Option<String>,
    },
}

#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum StepStatus {
    #[default]
    Ok,
    Failed,
    TimedOut,
    Interrupted,
    /// Failed, but `continue_on_error` let the run go on.
    FailedIgnored,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum PhaseStatus {
    Succeeded,
    Failed,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum RunStatus {
    Succeeded,
    Failed,
    Aborted,
}

/// Where a run stands, folded from its journal.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case", tag = "state")]
pub enum Standing {
    Running,
    Paused {
        reason: String,
        since: String,
        waiting_for_approval: bool,
    },
    Finished {
        status: RunStatus,
        reason: Option<String>,
        at: String,
    },
}

#[derive(Debug, Clone, Default)]
pub struct RunState {
    pub run_id: String,
    pub runbook: String,
    pub runbook_name: String,
    pub digest: String,
    pub operator: String,
    pub started_at: String,
    pub vars: BTreeMap<String, serde_json::Value>,
    /// Steps that finished (ok, or failed with `continue_on_error`) or were skipped: never rerun.
    pub done: BTreeMap<String, StepStatus>,
    pub skipped: Vec<String>,
    /// Last failed attempt per step (not done: a resume runs it again).
    pub failed: BTreeMap<String, String>,
    pub captures: BTreeMap<String, String>,
    pub phases_done: Vec<String>,
    /// A step that started and has no result: it was in flight when rollout stopped.
    pub in_doubt: Option<(String, String)>,
    pub resolved_in_doubt: BTreeMap<String, String>,
    pub current: Option<(String, String)>,
    pub standing: Option<Standing>,
    pub last_at: String,
    pub records: u64,
}

impl RunState {
    pub fn fold(records: &[Record]) -> RunState {
        let mut s = RunState::default();
        for r in records {
            s.apply(r);
        }
        s
    }

    pub fn apply(&mut self, r: &Record) {
        self.records += 1;
        self.last_at.clone_from(&r.at);
        match &r.event {
            Entry::RunStarted {
                run_id,
                runbook,
                runbook_name,
                digest,
                operator,
                vars,
            } => {
                self.run_id.clone_from(run_id);
                self.runbook.clone_from(runbook);
                self.runbook_name.clone_from(runbook_name);
                self.digest.clone_from(digest);
                self.operator.clone_from(operator);
                self.vars.clone_from(vars);
                self.started_at.clone_from(&r.at);
                self.standing = Some(Standing::Running);
            }
            Entry::RunResumed { digest, .. } => {
                self.digest.clone_from(digest);
                self.standing = Some(Standing::Running);
            }
            Entry::PhaseStarted { .. } | Entry::Measurement { .. } => {}
            Entry::StepStarted { phase, step, .. } => {
                self.in_doubt = Some((phase.clone(), step.clone()));
                self.current = Some((phase.clone(), step.clone()));
            }
            Entry::StepFinished {
                step,
                status,
                capture,
                reason,
                ..
            } => {
                self.in_doubt = None;
                match status {
                    StepStatus::Ok | StepStatus::FailedIgnored => {
                        self.done.insert(step.clone(), *status);
                        self.failed.remove(step);
                        if let Some((name, value)) = capture {
                            self.captures.insert(name.clone(), value.clone());
                        }
                    }
                    _ => {
                        self.failed
                            .insert(step.clone(), reason.clone().unwrap_or_default());
                    }
                }
            }
            Entry::StepSkipped { phase, step, .. } => {
                self.done.insert(step.clone(), StepStatus::Ok);
                self.skipped.push(step.clone());
                self.current = Some((phase.clone(), step.clone()));
            }
            Entry::InDoubtResolved { step, decision } => {
                self.in_doubt = None;
                self.resolved_in_doubt
                    .insert(step.clone(), decision.clone());
                if decision == "skip" {
                    self.done.insert(step.clone(), StepStatus::Ok);
                    self.skipped.push(step.clone());
                }
            }
            Entry::PhaseFinished { phase, status } => {
                if *status == PhaseStatus::Succeeded {
                    self.phases_done.push(phase.clone());
                }
            }
            Entry::Paused {
                reason,
                waiting_for_approval,
                phase,
                step,
            } => {
                if let (Some(p), Some(s)) = (phase, step) {
                    self.current = Some((p.clone(), s.clone()));
                }
                self.standing = Some(Standing::Paused {
                    reason: reason.clone(),
                    since: r.at.clone(),
                    waiting_for_approval: *waiting_for_approval,
                });
            }
            Entry::RunFinished { status, reason } => {
                self.standing = Some(Standing::Finished {
                    status: *status,
                    reason: reason.clone(),
                    at: r.at.clone(),
                });
            }
        }
    }

    pub fn is_finished(&self) -> bool {
        matches!(self.standing, Some(Standing::Finished { .. }))
    }
}
