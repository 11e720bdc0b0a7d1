//! Starting and stopping the watches of abort criteria as the run moves from step to step: the
//! runbook's `[[abort_when]]` and the phase's own, each within the window the plan shows for it.
//! A criterion watched across steps and phases keeps one task, so its `for` keeps counting.

use std::time::{Duration, Instant};

use super::Engine;
use crate::exec::abort::{Trip, Watch};
use crate::exec::event::{Event, Level};
use crate::plan::PlanAbort;
use crate::runbook::model::Phase;
use crate::runbook::model::{BudgetAction, FailureAction};
use crate::state::{Entry, StoreError};

/// A phase's `max_duration` with `warn`: said once, when it runs out.
pub struct PhaseBudget {
    phase: String,
    after: crate::runbook::duration::Duration,
    at: Instant,
    said: bool,
}

impl PhaseBudget {
    /// When the budget runs out, if that has not been said yet.
    pub fn pending(&self) -> Option<Instant> {
        (!self.said).then_some(self.at)
    }
}

impl Engine<'_> {
    /// Renders the criteria of phase `index` (as they will be watched, and as shown), and
    /// starts the clock of its time budget.
    pub(super) fn begin_phase_criteria(&mut self, index: usize, phase: &Phase) {
        self.start_budget(phase);
        self.phase_criteria.clear();
        let real = self.real.phase_criteria(index);
        let shown = self.shown.phase_criteria(index);
        match (real, shown) {
            (Ok((real, _)), Ok((shown, _))) => {
                self.phase_criteria = real.into_iter().zip(shown).collect();
            }
            (Err(e), _) | (_, Err(e)) => self.emit(&Event::Notice {
                level: Level::Warning,
                message: format!(
                    "the abort criteria of phase `{}` are not watched: criterion `{}` cannot be rendered: {}",
                    phase.id.get_ref(),
                    e.step,
                    e.error.message
                ),
            }),
        }
    }

    /// Watches exactly the criteria whose window holds step `at` (of steps and gate) of
    /// `phase`: starts those that begin here, stops those that ended.
    pub(super) fn watch_criteria_at(&mut self, phase: &Phase, at: usize) {
        let ids = phase.step_ids();
        let index_of =
            |id: &Option<String>| id.as_ref().and_then(|id| ids.iter().position(|s| s == id));
        let phase_id = phase.id.get_ref().clone();
        let active: Vec<(String, PlanAbort, PlanAbort)> = self
            .phase_criteria
            .iter()
            .filter(|(c, _)| {
                index_of(&c.from).is_none_or(|from| at >= from)
                    && index_of(&c.until).is_none_or(|until| at <= until)
            })
            .map(|(real, shown)| {
                let key = if real.scope == "runbook" {
                    format!("runbook/{}/{}", real.id, real.action.name())
                } else {
                    format!("phase/{phase_id}/{}", real.id)
                };
                (key, real.clone(), shown.clone())
            })
            .collect();
        let mut keys: Vec<String> = active.iter().map(|(k, _, _)| k.clone()).collect();
        // The phase's own budget timer stays until the phase ends.
        keys.push(budget_key(&phase_id));
        if self.abort_watch.is_none() && active.is_empty() {
            return;
        }
        let env = self.probe_env();
        let watch = self
            .abort_watch
            .get_or_insert_with(|| Watch::new(&self.interrupts, env));
        let stopped = watch.keep_only(&keys);
        let mut notices = Vec::new();
        for name in stopped {
            notices.push((Level::Info, format!("no longer watching `{name}`")));
        }
        let mut to_start = Vec::new();
        for (key, real, shown) in active {
            if !watch.is_watching(&key) {
                to_start.push((key, real, shown));
            }
        }
        for (key, real, shown) in to_start {
            let prom = if matches!(real.probe, crate::plan::ProbeView::Metric { .. }) {
                match self.prom_client() {
                    Ok(p) => Some(p),
                    Err(why) => {
                        notices.push((
                            Level::Warning,
                            format!("abort criterion `{}` is not watched: {why}", shown.name),
                        ));
                        continue;
                    }
                }
            } else {
                None
            };
            let watch = self.abort_watch.as_mut().expect("made above");
            match watch.add(key, real, prom) {
                Ok(()) => notices.push((Level::Info, watching(&shown))),
                Err(why) => notices.push((
                    Level::Warning,
                    format!("abort criterion `{}` is not watched: {why}", shown.name),
                )),
            }
        }
        for (level, message) in notices {
            self.emit(&Event::Notice { level, message });
        }
    }

    /// Starts `phase`'s time budget, counted from now (the phase's start or its resume).
    fn start_budget(&mut self, phase: &Phase) {
        self.budget = None;
        let id = phase.id.get_ref().clone();
        let budget = match self.real.budget(phase) {
            Ok(Some(b)) => b,
            Ok(None) => return,
            Err(e) => {
                self.emit(&Event::Notice {
                    level: Level::Warning,
                    message: format!(
                        "the `max_duration` of phase `{id}` is not kept: {}",
                        e.message
                    ),
                });
                return;
            }
        };
        let action = match budget.then {
            BudgetAction::Warn => {
                self.budget = Some(PhaseBudget {
                    phase: id,
                    after: budget.after,
                    at: Instant::now() + budget.after.0,
                    said: false,
                });
                return;
            }
            BudgetAction::Pause => FailureAction::Pause,
            BudgetAction::Abort => FailureAction::Abort,
            BudgetAction::Rollback => FailureAction::Rollback,
        };
        let trip = Trip {
            name: format!("max_duration of phase `{id}`"),
            action,
            values: Vec::new(),
            reason: format!(
                "phase `{id}` ran past its max_duration of {} (on_max_duration = \"{}\")",
                budget.after,
                budget.then.name()
            ),
        };
        let env = self.probe_env();
        self.abort_watch
            .get_or_insert_with(|| Watch::new(&self.interrupts, env))
            .add_timer(budget_key(&id), budget.after.0, trip);
    }

    /// The phase is over: its budget no longer runs.
    pub(super) fn end_budget(&mut self, phase: &Phase) {
        self.budget = None;
        if let Some(w) = self.abort_watch.as_mut() {
            w.remove(&budget_key(phase.id.get_ref()));
        }
    }

    /// Says (and records) that the phase ran past a `warn` budget, once.
    pub(super) async fn budget_warning(&mut self) -> Result<(), StoreError> {
        let Some(b) = self.budget.as_mut() else {
            return Ok(());
        };
        if b.said || Instant::now() < b.at {
            return Ok(());
        }
        b.said = true;
        let (phase, after) = (b.phase.clone(), b.after);
        self.record(Entry::PhaseOverBudget {
            phase: phase.clone(),
            max_duration: after.to_string(),
            action: "warn".into(),
        })
        .await?;
        self.emit(&Event::Notice {
            level: Level::Warning,
            message: format!(
                "phase `{phase}` has run past its max_duration of {after}; it goes on (on_max_duration = \"warn\")"
            ),
        });
        Ok(())
    }

    /// What a command probe runs with: the run's exported variables and ids.
    fn probe_env(&self) -> std::collections::BTreeMap<String, String> {
        let mut env: std::collections::BTreeMap<String, String> =
            self.exported_env.iter().cloned().collect();
        env.insert("ROLLOUT_RUN_ID".into(), self.run_id.clone());
        env
    }

    fn prom_client(&mut self) -> Result<crate::exec::checks::Prom, String> {
        if self.abort_prom.is_none() {
            let made = self
                .real
                .prometheus_conn()
                .map_err(|e| format!("cannot render [defaults.prometheus_client]: {}", e.message))
                .and_then(|conn| crate::exec::checks::Prom::new(&conn, Duration::from_secs(10)));
            self.abort_prom = Some(made);
        }
        self.abort_prom.clone().expect("made above")
    }
}

fn budget_key(phase: &str) -> String {
    format!("budget/{phase}")
}

/// The notice shown when a criterion starts being watched.
fn watching(c: &PlanAbort) -> String {
    let window = match (&c.from, &c.until) {
        (None, None) => String::new(),
        (Some(f), None) => format!(" (from step `{f}`)"),
        (None, Some(u)) => format!(" (until step `{u}`)"),
        (Some(f), Some(u)) => format!(" (from step `{f}` until step `{u}`)"),
    };
    let held = if c.sustained.0.is_zero() {
        String::new()
    } else {
        format!(" for {}", c.sustained)
    };
    format!(
        "watching `{}`: {}{held} every {} -> {}{window}",
        c.name,
        c.probe.describe(),
        c.every,
        c.action.name()
    )
}
