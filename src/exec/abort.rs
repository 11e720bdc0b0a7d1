//! Abort criteria, watched in the background while a phase's steps run. A criterion describes
//! the bad state; when it has held for its `for` duration the watch trips: it keeps the
//! tripping values and stops the running step. The engine records the trip and applies the
//! criterion's action; this module never touches the journal or the terminal.

use std::sync::{Arc, Mutex};
use std::time::Instant;

use crate::exec::checks::{Prom, sample};
use crate::exec::engine::Interrupts;
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

/// The watches' own runtime, on its own thread: it keeps polling while the run loop's thread
/// blocks in a prompt, and the run loop keeps its single-threaded runtime (no cross-thread
/// wake-ups on each step). Started the first time a phase has abort criteria.
fn background() -> &'static tokio::runtime::Handle {
    static RUNTIME: std::sync::OnceLock<Option<tokio::runtime::Runtime>> =
        std::sync::OnceLock::new();
    static FALLBACK: std::sync::OnceLock<tokio::runtime::Handle> = std::sync::OnceLock::new();
    let built = RUNTIME.get_or_init(|| {
        tokio::runtime::Builder::new_multi_thread()
            .worker_threads(1)
            .thread_name("abort-watch")
            .enable_all()
            .build()
            .ok()
    });
    match built {
        Some(rt) => rt.handle(),
        None => FALLBACK.get_or_init(tokio::runtime::Handle::current),
    }
}

/// The background watch of one phase; stops watching when dropped.
pub struct Watch {
    tasks: Vec<tokio::task::JoinHandle<()>>,
    tripped: Arc<Mutex<Option<Trip>>>,
}

impl Watch {
    /// Starts one polling task per criterion. Each request gives up after `timeout`.
    pub fn start(criteria: Vec<PlanAbort>, interrupts: &Interrupts, client: &Prom) -> Watch {
        let tripped = Arc::new(Mutex::new(None));
        let tasks = criteria
            .into_iter()
            .map(|criterion| {
                let client = client.clone();
                let tripped = Arc::clone(&tripped);
                let interrupts = interrupts.clone();
                background().spawn(async move {
                    if let Some(trip) = watch(&client, &criterion).await {
                        let mut slot = tripped
                            .lock()
                            .unwrap_or_else(std::sync::PoisonError::into_inner);
                        if slot.is_none() {
                            *slot = Some(trip);
                            interrupts.stop_step();
                        }
                    }
                })
            })
            .collect();
        Watch { tasks, tripped }
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
        for task in &self.tasks {
            task.abort();
        }
    }
}

/// Polls one criterion until it trips. A measurement without a usable value neither trips
/// the criterion nor resets how long it has held: missing data is not evidence either way.
async fn watch(client: &Prom, c: &PlanAbort) -> Option<Trip> {
    let base = c.prometheus.as_deref()?;
    let url = format!("{}/api/v1/query", base.trim_end_matches('/'));
    let mut bad_since: Option<Instant> = None;
    loop {
        let measured_at = Instant::now();
        if let Ok(seen) = sample(client, &url, &c.query).await {
            let bad: Vec<(String, f64)> = seen
                .into_iter()
                .filter(|(_, x)| c.condition.holds(*x))
                .collect();
            if bad.is_empty() {
                bad_since = None;
            } else {
                let since = *bad_since.get_or_insert(measured_at);
                let held = measured_at.duration_since(since);
                if held >= c.sustained.0 {
                    let reason = format!(
                        "abort criterion `{}` tripped: {} (bad state `{}`){}",
                        c.name,
                        crate::exec::checks::values(&bad),
                        c.condition,
                        if c.sustained.0.is_zero() {
                            String::new()
                        } else {
                            format!(" for {:.1}s (for = {})", held.as_secs_f64(), c.sustained)
                        }
                    );
                    return Some(Trip {
                        name: c.name.clone(),
                        action: c.action,
                        values: bad,
                        reason,
                    });
                }
            }
        }
        let next = measured_at + c.every.0;
        tokio::time::sleep_until(next.into()).await;
    }
}
