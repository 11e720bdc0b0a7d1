//! When a step fails for good: its failure action (abort, pause, roll back, or at the terminal
//! the operator's choice: pause, retry, skip, abort, roll back), a step that cannot be rendered,
//! a tripped abort criterion's action, and a pause for a signal. A rollback step that fails
//! never asks for a rollback of the rollback.

use super::{Engine, Flow, RunEnd, StepOutcome};
use crate::exec::abort::Trip;
use crate::exec::event::Event;
use crate::runbook::model::{FailureAction, Phase, Step};
use crate::state::record::StepStatus;
use crate::state::{Entry, StoreError};

impl Engine<'_> {
    /// Records a tripped abort criterion and applies its action. `step` is the step that was
    /// running (stopped) or had just finished when it tripped.
    pub(super) async fn apply_trip(
        &mut self,
        phase: &Phase,
        step: &Step,
        trip: Trip,
    ) -> Result<RunEnd, StoreError> {
        // The trip stopped the step (or the question) it cut short; what comes next, such as
        // the rollback's confirmation, starts afresh (a signal still reaches it).
        self.interrupts.step_cancel();
        let phase_id = phase.id.get_ref().clone();
        let id = step.id.get_ref().clone();
        self.record(Entry::AbortTripped {
            phase: phase_id.clone(),
            step: id.clone(),
            criterion: trip.name.clone(),
            action: trip.action.name().into(),
            values: trip.values.clone(),
        })
        .await?;
        self.emit(&Event::AbortTripped {
            phase: phase_id.clone(),
            criterion: trip.name.clone(),
            action: trip.action.name(),
            reason: trip.reason.clone(),
        });
        Ok(match trip.action {
            FailureAction::Rollback => RunEnd::RollbackRequested {
                step: id,
                reason: trip.reason,
            },
            FailureAction::Pause | FailureAction::Ask => {
                self.record(Entry::Paused {
                    phase: Some(phase_id),
                    step: Some(id),
                    reason: trip.reason.clone(),
                    waiting_for_approval: false,
                })
                .await?;
                RunEnd::Paused {
                    reason: trip.reason,
                }
            }
            FailureAction::Abort => RunEnd::Failed {
                step: id,
                reason: trip.reason,
                check: true,
            },
        })
    }

    pub(super) async fn pause_for_signal(
        &mut self,
        phase: &Phase,
        step: Option<&Step>,
        signal: i32,
    ) -> StepOutcome {
        let reason = format!(
            "interrupted by {}",
            if signal == 15 { "SIGTERM" } else { "Ctrl-C" }
        );
        self.record(Entry::Paused {
            phase: Some(phase.id.get_ref().clone()),
            step: step.map(|s| s.id.get_ref().clone()),
            reason: reason.clone(),
            waiting_for_approval: false,
        })
        .await?;
        Ok(Flow::Stop(RunEnd::Interrupted { signal }))
    }

    pub(super) async fn render_failure(
        &mut self,
        phase: &Phase,
        step: &Step,
        error: &crate::runbook::template::RenderError,
    ) -> StepOutcome {
        let source = &self.loaded.source;
        let (line, column) = source.line_col(error.span.start);
        let reason = format!(
            "cannot render the step ({}:{line}:{column}): {}",
            source.name, error.message
        );
        self.emit(&Event::StepFinished {
            phase: phase.id.get_ref().clone(),
            step: step.id.get_ref().clone(),
            status: StepStatus::Failed,
            exit_code: None,
            duration_ms: 0,
            reason: Some(reason.clone()),
            location: Some(source.locate(error.span.clone())),
        });
        self.fail(phase, step, reason).await
    }

    /// Applies the failure action of a step that failed for good.
    pub(super) async fn fail(&mut self, phase: &Phase, step: &Step, reason: String) -> StepOutcome {
        let id = step.id.get_ref().clone();
        let action = if self.rolling_back {
            // A rollback step that fails stops the rollback unless it says otherwise; it
            // never asks for a rollback of the rollback.
            match step.on_failure {
                Some(a @ (FailureAction::Pause | FailureAction::Ask)) => a,
                _ => FailureAction::Abort,
            }
        } else {
            step.on_failure.unwrap_or(phase.on_failure)
        };
        let rollback_choice = !self.rolling_back;
        let action = match action {
            FailureAction::Ask => {
                let q = format!("step `{id}` failed: {reason}. What now?");
                let mut options = vec![
                    "pause (fix it, then `rollout resume`)",
                    "retry now",
                    "skip this step",
                    "abort the run",
                ];
                if rollback_choice {
                    options.push("roll back");
                }
                // Nobody to ask, or no answer: the run pauses.
                match self
                    .ask(move |p| p.choose(&q, &options).ok())
                    .await
                    .flatten()
                {
                    Some(1) => return Ok(Flow::Retry),
                    Some(4) => FailureAction::Rollback,
                    Some(2) => {
                        self.record(Entry::StepSkipped {
                            phase: phase.id.get_ref().clone(),
                            step: id.clone(),
                            reason: format!(
                                "skipped by {} after failure: {reason}",
                                self.options.operator
                            ),
                        })
                        .await?;
                        return Ok(Flow::Next);
                    }
                    Some(3) => FailureAction::Abort,
                    _ => FailureAction::Pause,
                }
            }
            other => other,
        };
        match action {
            FailureAction::Abort => Ok(Flow::Stop(RunEnd::Failed {
                step: id,
                reason,
                check: matches!(
                    step.kind,
                    crate::runbook::model::StepKind::Metric(_)
                        | crate::runbook::model::StepKind::Http(_)
                ),
            })),
            FailureAction::Rollback => {
                Ok(Flow::Stop(RunEnd::RollbackRequested { step: id, reason }))
            }
            FailureAction::Pause | FailureAction::Ask => {
                let why = format!("step `{id}` failed: {reason}");
                self.record(Entry::Paused {
                    phase: Some(phase.id.get_ref().clone()),
                    step: Some(id),
                    reason: why.clone(),
                    waiting_for_approval: false,
                })
                .await?;
                Ok(Flow::Stop(RunEnd::Paused { reason: why }))
            }
        }
    }
}
