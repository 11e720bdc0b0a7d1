//! Why the running step should stop, shared by everything that may have to stop it or wait on
//! it: the signal watcher (Ctrl-C, SIGTERM), the abort criteria's watches, checks and gates
//! that poll while they wait, and the prompter. A small module of its own, low in `exec`, so
//! that none of those needs the run loop to know about an interrupt.

use std::sync::Arc;
use std::sync::atomic::{AtomicU8, Ordering};

use crate::exec::process::Cancel;

/// Shared with the signal task: how many interrupts arrived, and which signal was last.
#[derive(Clone, Default)]
pub struct Interrupts {
    count: Arc<AtomicU8>,
    signal: Arc<AtomicU8>,
    pub cancel: Cancel,
    /// The running step's own cancel: signals stop it, and so does a tripped abort criterion
    /// without looking like Ctrl-C.
    step: Arc<std::sync::Mutex<Cancel>>,
    /// Why the store no longer lets this process write the run (a lease lost), once it said so.
    lost: Arc<std::sync::Mutex<Option<String>>>,
}

impl Interrupts {
    pub fn record(&self, signal: i32) -> u8 {
        self.signal
            .store(u8::try_from(signal).unwrap_or(2), Ordering::SeqCst);
        self.count.fetch_add(1, Ordering::SeqCst) + 1
    }
    /// A signal asks every step to stop gracefully; see [`Cancel::interrupt`].
    pub fn interrupt(&self) {
        self.cancel.interrupt();
        self.current_step().interrupt();
    }
    /// A second signal kills what is still running.
    pub fn kill(&self) {
        self.cancel.kill();
        self.current_step().kill();
    }
    /// Stops the running step only, leaving the run free to act on why.
    pub fn stop_step(&self) {
        self.current_step().interrupt();
    }
    /// Whether the running step was asked to stop (by a signal or a tripped abort criterion).
    pub fn step_stopped(&self) -> bool {
        self.current_step().is_requested()
    }
    /// A fresh cancel for the step about to start, already requested if a signal came first.
    pub fn step_cancel(&self) -> Cancel {
        let fresh = Cancel::new();
        *self
            .step
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner) = fresh.clone();
        // After publishing it: a signal arriving in between reaches one or the other.
        if self.cancel.is_requested() {
            fresh.interrupt();
        }
        fresh
    }
    fn current_step(&self) -> Cancel {
        self.step
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .clone()
    }
    /// The store no longer lets this process write the run: everything running stops, as on
    /// Ctrl-C (SIGINT, then SIGTERM and SIGKILL `--grace` apart), and nothing more is written.
    pub fn lose_lease(&self, why: String) {
        self.lost
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .get_or_insert(why);
        self.cancel.interrupt();
        self.current_step().interrupt();
    }
    /// Why the store no longer lets this process write the run, if it said so.
    pub fn lease_lost(&self) -> Option<String> {
        self.lost
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .clone()
    }
    pub fn pending(&self) -> Option<i32> {
        (self.count.load(Ordering::SeqCst) > 0)
            .then(|| i32::from(self.signal.load(Ordering::SeqCst)))
    }
}
