//! The step that was in flight when rollout last stopped: it may or may not have run. An
//! idempotent step runs again; otherwise `--rerun-in-doubt`, `--skip-in-doubt` or the operator
//! at the terminal decide, and where nobody can, the run waits for one of them.

use super::{Engine, Flow, InDoubt, RunEnd, StepOutcome};
use crate::exec::event::{Event, Level};
use crate::runbook::model::{Phase, Step};
use crate::state::Entry;

impl Engine<'_> {
    /// Decides what to do with the step that was in flight when rollout stopped.
    pub(super) async fn resolve_in_doubt(&mut self, phase: &Phase, step: &Step) -> StepOutcome {
        let id = step.id.get_ref().clone();
        let decision = if step.idempotent {
            Some("rerun (the step is marked idempotent)")
        } else {
            match self.options.in_doubt {
                InDoubt::Rerun => Some("rerun (--rerun-in-doubt)"),
                InDoubt::Skip => Some("skip (--skip-in-doubt)"),
                InDoubt::Ask => {
                    let q = format!(
                        "step `{id}` was running when rollout stopped; it may or may not have finished. What now?"
                    );
                    let options = ["run it again", "treat it as done and skip it", "stop here"];
                    match self
                        .ask(move |p| p.choose(&q, &options).ok())
                        .await
                        .flatten()
                    {
                        Some(0) => Some("rerun (confirmed by the operator)"),
                        Some(1) => Some("skip (confirmed by the operator)"),
                        _ => None,
                    }
                }
            }
        };
        let Some(decision) = decision else {
            let reason = format!(
                "step `{id}` was in flight when rollout stopped and may have run: resume with `--rerun-in-doubt` to run it again or `--skip-in-doubt` if it completed"
            );
            self.record(Entry::Paused {
                phase: Some(phase.id.get_ref().clone()),
                step: Some(id),
                reason: reason.clone(),
                waiting_for_approval: true,
            })
            .await?;
            return Ok(Flow::Stop(RunEnd::WaitingForApproval { reason }));
        };
        let short = if decision.starts_with("skip") {
            "skip"
        } else {
            "rerun"
        };
        self.emit(&Event::Notice {
            level: Level::Warning,
            message: format!("in-doubt step `{id}`: {decision}"),
        });
        self.record(Entry::InDoubtResolved {
            step: id,
            decision: short.into(),
        })
        .await?;
        Ok(Flow::Next)
    }
}
