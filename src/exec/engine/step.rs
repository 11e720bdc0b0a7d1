//! One step through the run loop: skipped when done, resolved when in doubt, rendered (its
//! `when` decided), started and finished in the journal and as events, retried as its `retry`
//! says, and handed to the failure policy when it fails for good. What an attempt does is the
//! step kind's own file: commands, waits, checks, gates, repeats.

use std::time::{Duration, Instant};

use super::display::display_lines;
use super::{Engine, Flow, RunEnd, StepOutcome, millis, owner};
use crate::exec::event::Event;
use crate::plan::{Action, PlanStep};
use crate::runbook::model::{Phase, Step};
use crate::runbook::{Loaded, Location};
use crate::state::record::StepStatus;
use crate::state::{Entry, StoreError};

impl Engine<'_> {
    /// Runs one step if it is not done yet. `Some(end)` stops the run.
    pub(super) async fn step(
        &mut self,
        phase: &Phase,
        step: &Step,
    ) -> Result<Option<RunEnd>, StoreError> {
        loop {
            match self.step_once(phase, step).await? {
                Flow::Next => return Ok(None),
                Flow::Stop(end) => return Ok(Some(end)),
                Flow::Retry => {}
            }
        }
    }

    async fn step_once(&mut self, phase: &Phase, step: &Step) -> StepOutcome {
        let id = step.id.get_ref().clone();
        let phase_id = phase.id.get_ref().clone();
        if self.state.done.contains_key(&id) {
            return Ok(Flow::Next);
        }
        if let Some(signal) = self.interrupts.pending() {
            return self.pause_for_signal(phase, Some(step), signal).await;
        }
        if self.state.in_doubt.as_ref().is_some_and(|(_, s)| *s == id) {
            if let Flow::Stop(end) = self.resolve_in_doubt(phase, step).await? {
                return Ok(Flow::Stop(end));
            }
            if self.state.done.contains_key(&id) {
                return Ok(Flow::Next);
            }
        }
        let shown = match self.shown.step(owner(phase), step) {
            Ok(s) => s,
            Err(e) => return self.render_failure(phase, step, &e.error).await,
        };
        if let Some(when) = &shown.when {
            let run_it = match self.real.step(owner(phase), step) {
                Ok(real) => real.when.as_ref().is_none_or(|w| w.decision != "skip"),
                Err(e) => return self.render_failure(phase, step, &e.error).await,
            };
            if !run_it {
                let reason = format!("`when` is false: {}", when.expression);
                self.record(Entry::StepSkipped {
                    phase: phase_id.clone(),
                    step: id.clone(),
                    reason: reason.clone(),
                })
                .await?;
                self.emit(&Event::StepSkipped {
                    phase: phase_id,
                    step: id,
                    reason,
                });
                return Ok(Flow::Next);
            }
        }
        let real = match self.real.step(owner(phase), step) {
            Ok(s) => s,
            Err(e) => return self.render_failure(phase, step, &e.error).await,
        };
        let attempts = real.retry.map_or(1, |r| r.attempts);
        // Signers sign the phase as shown to them: its rendered steps, bound by a digest.
        let content =
            matches!(shown.action, Action::Signoff { .. }).then(|| self.phase_content(phase));
        let mut display = display_lines(&shown.action);
        if let Some(c) = &content {
            display.extend(c.lines.iter().cloned());
        }
        let digest = content.as_ref().map(|c| c.digest.as_str());
        let mut attempt = 1;
        loop {
            self.emit(&Event::StepStarted {
                phase: phase_id.clone(),
                step: id.clone(),
                name: step.name.clone(),
                kind: step.kind.name(),
                attempt,
                line: shown.line,
                display: display.clone(),
            });
            let result = self
                .attempt(phase, step, &shown, &real, attempt, digest)
                .await?;
            let Attempt {
                status,
                exit_code,
                reason,
                tail,
                capture,
                end,
                duration,
                unfinished,
            } = result;
            if unfinished
                || matches!(
                    end,
                    Some(RunEnd::Interrupted { .. } | RunEnd::WaitingForApproval { .. })
                )
            {
                // The step has no result: interrupted commands stay in doubt, gates stay open,
                // an inconclusive check is measured again on resume.
                match end {
                    Some(RunEnd::Interrupted { signal }) => {
                        return self.pause_for_signal(phase, Some(step), signal).await;
                    }
                    Some(end) => return Ok(Flow::Stop(end)),
                    None => return Ok(Flow::Next),
                }
            }
            // A gate's deadline decides the outcome itself, whatever `on_failure` says.
            let decided = matches!(
                end,
                Some(RunEnd::Failed { .. } | RunEnd::RollbackRequested { .. })
            );
            let final_attempt = status == StepStatus::Ok || attempt >= attempts || decided;
            let status = if status != StepStatus::Ok
                && final_attempt
                && step.continue_on_error
                && !decided
            {
                StepStatus::FailedIgnored
            } else {
                status
            };
            let capture = if status == StepStatus::Ok {
                capture
            } else {
                None
            };
            if let Some((name, value)) = &capture {
                // The live value stays in memory for later steps; people see it masked.
                let masked = self.redact(value);
                self.shown.set_capture(name, &masked);
                self.real.set_capture(name, value);
            }
            // A step that failed for good points at where it is written.
            let failed = matches!(
                status,
                StepStatus::Failed | StepStatus::TimedOut | StepStatus::FailedIgnored
            );
            let location = (failed && final_attempt).then(|| self.location_of(step));
            self.record(Entry::StepFinished {
                phase: phase_id.clone(),
                step: id.clone(),
                attempt,
                status,
                exit_code,
                duration_ms: millis(duration),
                reason: reason.clone(),
                output_tail: tail,
                capture,
                location: location.clone(),
            })
            .await?;
            self.emit(&Event::StepFinished {
                phase: phase_id.clone(),
                step: id.clone(),
                status,
                exit_code,
                duration_ms: millis(duration),
                reason: reason.clone(),
                location,
            });
            if decided || matches!(status, StepStatus::Ok | StepStatus::FailedIgnored) {
                return Ok(end.map_or(Flow::Next, Flow::Stop));
            }
            if attempt < attempts {
                let retry = real.retry.expect("attempts > 1 only with retry");
                let factor = retry
                    .backoff
                    .powi(i32::try_from(attempt - 1).unwrap_or(i32::MAX));
                let mut delay = retry.delay.0.mul_f64(factor);
                if let Some(max) = retry.max_delay {
                    delay = delay.min(max.0);
                }
                self.emit(&Event::Retrying {
                    step: id.clone(),
                    attempt: attempt + 1,
                    delay_ms: millis(delay),
                });
                if let Some(signal) = self.sleep(delay).await {
                    return self.pause_for_signal(phase, Some(step), signal).await;
                }
                attempt += 1;
                continue;
            }
            let reason = reason.unwrap_or_else(|| "failed".into());
            return self.fail(phase, step, reason).await;
        }
    }

    /// Where `step` is written: what it does (see [`Step::action_span`]).
    fn location_of(&self, step: &Step) -> Location {
        let loaded = self.loaded;
        loaded.source.locate(step.action_span(&loaded.templates))
    }

    pub(super) async fn attempt(
        &mut self,
        phase: &Phase,
        step: &Step,
        shown: &PlanStep,
        real: &PlanStep,
        attempt: u32,
        digest: Option<&str>,
    ) -> Result<Attempt, StoreError> {
        let started = Instant::now();
        match &real.action {
            Action::Run { argv, env, .. } | Action::Kubectl { argv, env, .. } => {
                self.command(phase, step, shown, real, (argv, env), attempt)
                    .await
            }
            Action::Wait { duration } => self.wait(step, *duration, started).await,
            Action::Pause { message } => Ok(Attempt {
                end: Some(RunEnd::Paused {
                    reason: message.clone(),
                }),
                reason: Some(format!("paused: {message}")),
                duration: started.elapsed(),
                ..Attempt::default()
            }),
            Action::Confirm { .. } | Action::Checklist { .. } | Action::Signoff { .. } => {
                self.gate(phase, step, shown, digest, started).await
            }
            Action::Http { .. } => self.http_check(step, shown, real, started).await,
            Action::Metric { condition, .. } => {
                let condition = condition.to_string();
                self.metric_check(phase, step, real, condition, started)
                    .await
            }
            Action::Repeat { steps, .. } => {
                Box::pin(self.repeat(steps, attempt, digest, started)).await
            }
        }
        .map(|mut a: Attempt| {
            if let Some(r) = a.reason.take() {
                a.reason = Some(self.redact(&r));
            }
            a
        })
    }
}

impl<'a> Engine<'a> {
    /// A phase step or gate step of the runbook by id, with its phase.
    pub(super) fn find_step(&self, id: &str) -> Option<(&'a Phase, &'a Step)> {
        let loaded: &'a Loaded = self.loaded;
        loaded.runbook.phases.iter().find_map(|p| {
            p.steps
                .iter()
                .chain(&p.gate)
                .find(|s| s.id.get_ref() == id)
                .map(|s| (p, s))
        })
    }
}

/// What one attempt at a step came to.
#[derive(Debug, Default)]
pub(super) struct Attempt {
    pub(super) status: StepStatus,
    pub(super) exit_code: Option<i32>,
    pub(super) reason: Option<String>,
    pub(super) tail: Option<String>,
    pub(super) capture: Option<(String, String)>,
    pub(super) end: Option<RunEnd>,
    pub(super) duration: Duration,
    /// The step produced no result to record (an inconclusive check).
    pub(super) unfinished: bool,
}
