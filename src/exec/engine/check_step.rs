//! Metric and HTTP check steps: the measurement through `exec::checks`, each metric
//! measurement recorded as it is taken, an inconclusive check paused (or, at the terminal,
//! counted as failed), and a response body captured.

use std::time::{Duration, Instant};

use super::command_step::capture_text;
use super::{Attempt, Engine, RunEnd};
use crate::plan::{Action, PlanStep};
use crate::runbook::model::{Phase, Step};
use crate::state::record::StepStatus;
use crate::state::{Entry, StoreError};

impl Engine<'_> {
    pub(super) async fn http_check(
        &mut self,
        step: &Step,
        shown: &PlanStep,
        real: &PlanStep,
        started: Instant,
    ) -> Result<Attempt, StoreError> {
        let id = step.id.get_ref().clone();
        self.fresh_step_cancel();
        let mut body = None;
        let shown_url = match &shown.action {
            Action::Http { url, .. } => url.as_str(),
            _ => "",
        };
        let outcome = crate::exec::checks::http(
            &real.action,
            shown_url,
            real.timeout.map_or(Duration::from_secs(60), |t| t.0),
            &self.interrupts,
            self.listener,
            &id,
            &mut body,
        )
        .await;
        let mut a = check_attempt(outcome, started.elapsed());
        if let (Some(name), Some(body), StepStatus::Ok) = (&step.capture, body, a.status) {
            match capture_text(body.into_bytes()) {
                Ok(v) => a.capture = Some((name.get_ref().clone(), v)),
                Err(why) => {
                    a.status = StepStatus::Failed;
                    a.reason = Some(format!("cannot capture the response: {why}"));
                }
            }
        }
        Ok(a)
    }

    /// Measures `real`, a metric check whose condition is `condition`.
    pub(super) async fn metric_check(
        &mut self,
        phase: &Phase,
        step: &Step,
        real: &PlanStep,
        condition: String,
        started: Instant,
    ) -> Result<Attempt, StoreError> {
        let phase_id = phase.id.get_ref().clone();
        let id = step.id.get_ref().clone();
        self.fresh_step_cancel();
        let timeout = real.timeout.map_or(Duration::from_secs(60), |t| t.0);
        let conn = match self.real.prometheus_conn() {
            Ok(c) => c,
            Err(e) => {
                return Ok(check_attempt(
                    crate::exec::checks::CheckOutcome::Failed(format!(
                        "cannot render [defaults.prometheus_client]: {}",
                        e.message
                    )),
                    started.elapsed(),
                ));
            }
        };
        let journal = &mut self.journal;
        let mut write_error = None;
        let mut on_measure = |m: &crate::exec::checks::Measured| {
            use crate::exec::checks::Measured;
            let (verdict, values, detail) = match m {
                Measured::Pass(v) => ("pass", v.clone(), None),
                Measured::Fail(v) => ("fail", v.clone(), None),
                Measured::Inconclusive(why) => ("inconclusive", Vec::new(), Some(why.clone())),
            };
            let entry = Entry::Measurement {
                step: id.clone(),
                verdict: verdict.into(),
                values,
                detail,
                condition: Some(condition.clone()),
            };
            if let Err(e) = journal.append(entry) {
                write_error.get_or_insert(e);
            }
        };
        let outcome = crate::exec::checks::metric(
            &real.action,
            timeout,
            &conn,
            &self.interrupts,
            self.listener,
            &id,
            &mut on_measure,
        )
        .await;
        if let Some(e) = write_error {
            return Err(e);
        }
        let mut a = check_attempt(outcome, started.elapsed());
        if a.unfinished {
            let why = self.redact(&a.reason.clone().unwrap_or_default());
            let question = format!("check `{id}` is inconclusive: {why}. What now?");
            let choice = self
                .ask(move |p| {
                    p.choose(&question, &["pause the run", "count it as failed"])
                        .ok()
                })
                .await;
            if choice == Some(Some(1)) {
                a.unfinished = false;
                a.end = None;
                a.status = StepStatus::Failed;
            } else {
                let reason = format!("check `{id}` is inconclusive: {why}");
                self.record(Entry::Paused {
                    phase: Some(phase_id.clone()),
                    step: Some(id.clone()),
                    reason: reason.clone(),
                    waiting_for_approval: false,
                })?;
                a.end = Some(RunEnd::Paused { reason });
            }
        }
        Ok(a)
    }
}

fn check_attempt(outcome: crate::exec::checks::CheckOutcome, duration: Duration) -> Attempt {
    use crate::exec::checks::CheckOutcome;
    match outcome {
        CheckOutcome::Passed(detail) => Attempt {
            reason: Some(detail),
            duration,
            ..Attempt::default()
        },
        CheckOutcome::Failed(why) => Attempt {
            status: StepStatus::Failed,
            reason: Some(why),
            duration,
            ..Attempt::default()
        },
        CheckOutcome::Inconclusive(why) => Attempt {
            status: StepStatus::Failed,
            reason: Some(why),
            duration,
            unfinished: true,
            ..Attempt::default()
        },
        // The phase loop records the tripped criterion and applies its action.
        CheckOutcome::Stopped => Attempt {
            status: StepStatus::Failed,
            reason: Some("stopped: an abort criterion tripped".into()),
            end: Some(RunEnd::Failed {
                step: String::new(),
                reason: "an abort criterion tripped".into(),
                check: true,
            }),
            duration,
            ..Attempt::default()
        },
        CheckOutcome::Interrupted(signal) => Attempt {
            status: StepStatus::Interrupted,
            end: Some(RunEnd::Interrupted { signal }),
            duration,
            ..Attempt::default()
        },
    }
}
