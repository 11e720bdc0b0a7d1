//! A `wait` step: it counts down, says a `warn` time budget that runs out meanwhile, and is
//! cut short by a signal or a tripped abort criterion. Also the run loop's interruptible sleep
//! (between retries).

use std::time::{Duration, Instant};

use super::{Attempt, Engine, RunEnd, millis, watching};
use crate::exec::abort::Watch;
use crate::exec::event::Event;
use crate::runbook::model::Step;
use crate::state::StoreError;
use crate::state::record::StepStatus;

impl Engine<'_> {
    pub(super) async fn wait(
        &mut self,
        step: &Step,
        duration: crate::runbook::duration::Duration,
        started: Instant,
    ) -> Result<Attempt, StoreError> {
        let id = step.id.get_ref().clone();
        self.emit(&Event::Waiting {
            step: id.clone(),
            duration_ms: millis(duration.0),
        });
        // A time budget that runs out during the wait is said when it does.
        let until = Instant::now() + duration.0;
        let mut signal = None;
        if let Some(at) = self
            .budget
            .as_ref()
            .and_then(watching::PhaseBudget::pending)
        {
            if at < until {
                signal = self
                    .sleep(at.saturating_duration_since(Instant::now()))
                    .await;
                if signal.is_none() {
                    self.budget_warning().await?;
                }
            }
        }
        if signal.is_none() {
            signal = self
                .sleep(until.saturating_duration_since(Instant::now()))
                .await;
        }
        let waited = started.elapsed();
        let tripped = self.abort_watch.as_ref().and_then(Watch::tripped);
        if let (None, Some(trip), true) = (signal, tripped, waited < duration.0) {
            // Cut short: not done, and not a failure of its own. The phase loop records
            // the tripped criterion (or the spent time budget) and applies its action.
            return Ok(Attempt {
                status: StepStatus::Interrupted,
                reason: Some(format!(
                    "cut short after {:.1}s of {duration}: {} tripped",
                    waited.as_secs_f64(),
                    if trip.name.starts_with("max_duration") {
                        trip.name.clone()
                    } else {
                        format!("abort criterion `{}`", trip.name)
                    }
                )),
                end: Some(RunEnd::Failed {
                    step: String::new(),
                    reason: "an abort criterion tripped".into(),
                    check: true,
                }),
                duration: waited,
                ..Attempt::default()
            });
        }
        Ok(Attempt {
            status: if signal.is_some() {
                StepStatus::Interrupted
            } else {
                StepStatus::Ok
            },
            end: signal.map(|signal| RunEnd::Interrupted { signal }),
            duration: waited,
            ..Attempt::default()
        })
    }

    /// Sleeps `d`, or less: `Some(signal)` when a signal came, `None` when the time is up, an
    /// abort criterion tripped or the store took the run away.
    pub(super) async fn sleep(&self, d: Duration) -> Option<i32> {
        let deadline = Instant::now() + d;
        loop {
            if let Some(signal) = self.interrupts.pending() {
                return Some(signal);
            }
            let now = Instant::now();
            // A tripped abort criterion cuts a wait short; the phase loop then applies it. A run
            // the store took away ends at its next record, which is refused.
            if now >= deadline
                || self.abort_watch.as_ref().and_then(Watch::tripped).is_some()
                || self.interrupts.lease_lost().is_some()
            {
                return None;
            }
            tokio::time::sleep((deadline - now).min(Duration::from_millis(50))).await;
        }
    }
}
