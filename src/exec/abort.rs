//! Abort criteria, watched in the background while a phase's steps run. A criterion describes
//! the bad state; when it has held for its `for` duration the watch trips: it keeps the
//! tripping values and stops the running step. The engine records the trip and applies the
//! criterion's action; this module never touches the journal or the terminal.

use std::sync::{Arc, Mutex};
use std::time::Instant;

use crate::exec::checks::Prom;
use crate::exec::interrupts::Interrupts;
use crate::exec::probe::{Prober, Reading};
use crate::plan::PlanAbort;
use crate::runbook::model::FailureAction;

/// Why a phase was stopped by one of its abort criteria.
#[derive(Debug, Clone)]
pub struct Trip {
    pub name: String,
    pub action: FailureAction,
    /// The series in the bad state at the tripping measurement.
    pub values: Vec<(String, f64)>,
    pub reason: String,
}

/// The background watches of the criteria in force, each a task of the runtime keyed by the
/// criterion, so a criterion watched across steps and phases keeps how long its bad state has
/// held. They go on while the run loop waits (on a step, a countdown or a question asked on a
/// blocking thread). Every task stops when the watch is dropped.
pub struct Watch {
    /// Each task with the name of what it watches.
    tasks: std::collections::HashMap<String, (tokio::task::JoinHandle<()>, String)>,
    tripped: Arc<Mutex<Option<Trip>>>,
    interrupts: Interrupts,
    /// The environment of command probes.
    env: std::collections::BTreeMap<String, String>,
}

impl Watch {
    pub fn new(interrupts: &Interrupts, env: std::collections::BTreeMap<String, String>) -> Watch {
        Watch {
            tasks: std::collections::HashMap::new(),
            tripped: Arc::new(Mutex::new(None)),
            interrupts: interrupts.clone(),
            env,
        }
    }

    pub fn is_watching(&self, key: &str) -> bool {
        self.tasks.contains_key(key)
    }

    /// Stops watching every criterion not in `keys`; returns the names of those it stopped.
    pub fn keep_only(&mut self, keys: &[String]) -> Vec<String> {
        let gone: Vec<String> = self
            .tasks
            .keys()
            .filter(|k| !keys.contains(k))
            .cloned()
            .collect();
        let mut names = Vec::new();
        for k in &gone {
            if let Some((task, name)) = self.tasks.remove(k) {
                task.abort();
                if !k.starts_with("budget/") {
                    names.push(name);
                }
            }
        }
        names.sort();
        names
    }

    /// Starts watching `criterion` under `key`. `prom` is needed by metric probes only.
    pub fn add(
        &mut self,
        key: String,
        criterion: PlanAbort,
        prom: Option<Prom>,
    ) -> Result<(), String> {
        let prober = Prober::new(criterion.probe.clone(), prom, self.env.clone())?;
        let name = criterion.name.clone();
        let tripped = Arc::clone(&self.tripped);
        let interrupts = self.interrupts.clone();
        let task = tokio::spawn(async move {
            if let Some(trip) = watch(&prober, &criterion).await {
                let mut slot = tripped
                    .lock()
                    .unwrap_or_else(std::sync::PoisonError::into_inner);
                if slot.is_none() {
                    *slot = Some(trip);
                    interrupts.stop_step();
                }
            }
        });
        self.tasks.insert(key, (task, name));
        Ok(())
    }

    /// Stops watching `key`.
    pub fn remove(&mut self, key: &str) {
        if let Some((task, _)) = self.tasks.remove(key) {
            task.abort();
        }
    }

    /// Trips `trip` after `after` unless stopped first: a phase's time budget.
    pub fn add_timer(&mut self, key: String, after: std::time::Duration, trip: Trip) {
        let tripped = Arc::clone(&self.tripped);
        let interrupts = self.interrupts.clone();
        let task = tokio::spawn(async move {
            tokio::time::sleep(after).await;
            let mut slot = tripped
                .lock()
                .unwrap_or_else(std::sync::PoisonError::into_inner);
            if slot.is_none() {
                *slot = Some(trip);
                interrupts.stop_step();
            }
        });
        self.tasks.insert(key, (task, String::new()));
    }

    /// The first criterion that tripped, if any.
    pub fn tripped(&self) -> Option<Trip> {
        self.tripped
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .clone()
    }
}

impl Drop for Watch {
    fn drop(&mut self) {
        for (task, _) in self.tasks.values() {
            task.abort();
        }
    }
}

/// Reads one criterion until it trips. A reading without a usable answer neither trips the
/// criterion nor resets how long it has held: missing data is not evidence either way.
async fn watch(prober: &Prober, c: &PlanAbort) -> Option<Trip> {
    let mut bad_since: Option<Instant> = None;
    loop {
        let measured_at = Instant::now();
        match prober.read().await {
            Reading::Unknown(_) => {}
            Reading::Good => bad_since = None,
            Reading::Bad { values, detail } => {
                let since = *bad_since.get_or_insert(measured_at);
                let held = measured_at.duration_since(since);
                if held >= c.sustained.0 {
                    let reason = format!(
                        "abort criterion `{}` tripped: {detail}{}",
                        c.name,
                        if c.sustained.0.is_zero() {
                            String::new()
                        } else {
                            format!(" for {:.1}s (for = {})", held.as_secs_f64(), c.sustained)
                        }
                    );
                    return Some(Trip {
                        name: c.name.clone(),
                        action: c.action,
                        values,
                        reason,
                    });
                }
            }
        }
        let next = measured_at + c.every.0;
        tokio::time::sleep_until(next.into()).await;
    }
}
