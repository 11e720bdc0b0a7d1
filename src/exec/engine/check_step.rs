//! Metric and HTTP check steps: the measurement through `exec::checks`, each metric
//! measurement recorded as it is taken, an inconclusive check paused (or, at the terminal,
//! counted as failed), and a response body captured.

use std::future::Future;
use std::pin::Pin;
use std::time::{Duration, Instant};

use super::command_step::capture_text;
use super::{Attempt, Engine, RunEnd};
use crate::exec::checks::{Measured, MeasurementSink};
use crate::plan::{Action, PlanStep};
use crate::runbook::model::{Phase, Step};
use crate::state::record::StepStatus;
use crate::state::{Entry, Journal, StoreError};

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
        let mut sink = Measurements {
            journal: &mut self.journal,
            lost: &self.interrupts,
            run: &self.run_id,
            step: &id,
            condition: &condition,
            error: None,
        };
        let outcome = crate::exec::checks::metric(
            &real.action,
            timeout,
            &conn,
            &self.interrupts,
            self.listener,
            &id,
            &mut sink,
        )
        .await;
        if let Some(e) = sink.error {
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
                })
                .await?;
                a.end = Some(RunEnd::Paused { reason });
            }
        }
        Ok(a)
    }
}

/// A metric check's measurements, written to the journal as they are taken: the first write
/// that fails is kept, and ends the step once the check is over.
struct Measurements<'e> {
    journal: &'e mut Box<dyn Journal>,
    lost: &'e crate::exec::interrupts::Interrupts,
    run: &'e str,
    step: &'e str,
    condition: &'e str,
    error: Option<StoreError>,
}

impl MeasurementSink for Measurements<'_> {
    fn measured<'a>(&'a mut self, m: &'a Measured) -> Pin<Box<dyn Future<Output = ()> + 'a>> {
        Box::pin(async move {
            if self.error.is_some() {
                return;
            }
            if let Some(why) = self.lost.lease_lost() {
                self.error = Some(StoreError::LeaseLost {
                    run: self.run.to_string(),
                    why,
                });
                return;
            }
            let (verdict, values, detail) = match m {
                Measured::Pass(v) => ("pass", v.clone(), None),
                Measured::Fail(v) => ("fail", v.clone(), None),
                Measured::Inconclusive(why) => ("inconclusive", Vec::new(), Some(why.clone())),
            };
            let entry = Entry::Measurement {
                step: self.step.to_string(),
                verdict: verdict.into(),
                values,
                detail,
                condition: Some(self.condition.to_string()),
            };
            if let Err(e) = self.journal.append(entry).await {
                self.error = Some(e);
            }
        })
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
