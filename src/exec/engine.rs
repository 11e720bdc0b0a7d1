//! The run loop: walks phases and steps in order, skips what the journal says is done, renders
//! each step with the same renderer as `plan`, records "starting" durably before any side effect
//! and the result after, applies failure actions, and stops cleanly on pause or interrupt.
//! It emits events and never prints.

mod check_step;
mod command_step;
mod display;
mod failure;
mod gate_step;
mod in_doubt;
mod repeat_step;
mod rollback;
mod signed_step;
mod step;
mod wait_step;
mod watching;

pub use display::display_lines;
pub use rollback::{RUNBOOK_ROLLBACK, phases_to_roll_back};
use step::Attempt;

use std::sync::Arc;
use std::time::{Duration, Instant};

use crate::exec::abort::Watch;
use crate::exec::event::{Event, Level, Listener, PhaseSummary};
use crate::exec::gates::{Approvals, Prompter};
use crate::exec::interrupts::Interrupts;
use crate::exec::process::Cancel;
use crate::plan::Renderer;
use crate::runbook::Loaded;
use crate::runbook::model::Phase;
use crate::state::record::{PhaseStatus, RunStatus};
use crate::state::{Entry, Journal, Record, RunState, StoreError};

/// Why a run stopped.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum RunEnd {
    Succeeded,
    /// A step failed and the failure action was abort. `check` when it was a metric/HTTP check.
    Failed {
        step: String,
        reason: String,
        check: bool,
    },
    /// A failure asked for a rollback: inside the engine only, which then performs it.
    RollbackRequested {
        step: String,
        reason: String,
    },
    /// A rollback is owed and was not performed: nobody here could confirm it, or the
    /// operator declined (`finished`: the run is closed as failed).
    RollbackNotDone {
        reason: String,
        finished: bool,
    },
    /// The rollback ran: `complete` when every rollback step succeeded.
    RolledBack {
        complete: bool,
    },
    /// Stopped on purpose: a pause step, or a failure whose action is pause.
    Paused {
        reason: String,
    },
    /// A gate or decision needs someone who is not here.
    WaitingForApproval {
        reason: String,
    },
    /// SIGINT (2) or SIGTERM (15).
    Interrupted {
        signal: i32,
    },
}

impl RunEnd {
    pub fn word(&self) -> &'static str {
        match self {
            RunEnd::Succeeded => "succeeded",
            RunEnd::Failed { .. } => "failed",
            RunEnd::RollbackRequested { .. } => "rollback_requested",
            RunEnd::RollbackNotDone { .. } => "rollback_not_done",
            RunEnd::RolledBack { complete: true } => "rolled_back",
            RunEnd::RolledBack { complete: false } => "rollback_incomplete",
            RunEnd::Paused { .. } => "paused",
            RunEnd::WaitingForApproval { .. } => "waiting_for_approval",
            RunEnd::Interrupted { .. } => "interrupted",
        }
    }
}

/// What a session does once its journal is open.
#[derive(Debug, Clone)]
pub enum Mode {
    /// Run the phases not yet done (or go on with a rollback already under way).
    Forward,
    /// Roll back what the run did (`rollout rollback`): these phases, in this order (see
    /// [`phases_to_roll_back`]), unless a rollback is already under way.
    Rollback { phases: Vec<String>, reason: String },
}

/// How to treat the step that was in flight when rollout last stopped.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum InDoubt {
    Ask,
    Rerun,
    Skip,
}

pub struct Options {
    pub grace: Duration,
    pub in_doubt: InDoubt,
    pub approvals: Approvals,
    pub operator: String,
    /// The OS account rollout runs as, recorded with every gate answer.
    pub os_user: String,
    /// How sign-offs take signed approvals.
    pub signatures: crate::exec::signatures::Policy,
    /// The operator's own SSH keys: approvals made with them do not count where a sign-off
    /// excludes the operator.
    pub operator_keys: Vec<crate::exec::signatures::OperatorKey>,
    /// Where nobody can answer, how long a sign-off that takes signed approvals waits for them
    /// to be delivered before the run stops waiting for approval (`--wait-for-approvals`).
    pub wait_for_approvals: Option<Duration>,
}

pub struct Engine<'a> {
    pub loaded: &'a Loaded,
    /// Renders with secrets masked: what people and the journal see.
    pub shown: Renderer<'a>,
    /// Renders with real secret values: what processes receive.
    pub real: Renderer<'a>,
    /// Masks every form of the secrets' values in what people and the journal see.
    pub redactor: Arc<crate::redact::Redactor>,
    pub exported_env: Vec<(String, String)>,
    pub journal: Box<dyn Journal>,
    pub state: RunState,
    pub listener: &'a mut dyn Listener,
    /// How plan steps read as text: what signers of a sign-off are shown.
    pub layout: &'a dyn crate::plan::TextLayout,
    /// Asks the person at the terminal, if there is one. Owned, so that a question can be asked
    /// on a blocking thread (see [`Engine::ask`]).
    pub prompter: Option<Box<dyn Prompter + Send>>,
    pub interrupts: Interrupts,
    pub options: Options,
    pub run_id: String,
    /// The abort criteria in force, watched in the background.
    pub abort_watch: Option<crate::exec::abort::Watch>,
    /// The criteria of the running phase (real values, and as shown), with their windows.
    pub phase_criteria: Vec<(crate::plan::PlanAbort, crate::plan::PlanAbort)>,
    /// The Prometheus client of metric criteria, made when first needed.
    pub abort_prom: Option<Result<crate::exec::checks::Prom, String>>,
    /// The running phase's time budget: when it runs out, and (for `warn`) whether that was
    /// said. The other actions are timers of the abort watch.
    pub budget: Option<watching::PhaseBudget>,
    /// Running rollback steps: a failure stops (or continues) the rollback instead of
    /// asking for another one.
    pub rolling_back: bool,
    /// Notifications that failed and are not in the journal yet.
    pub notify_failures: Vec<String>,
    /// Stops the steps' processes if rollout dies outright (team mode; see
    /// [`crate::exec::warden`]).
    pub warden: Option<Arc<crate::exec::warden::Warden>>,
}

type StepOutcome = Result<Flow, StoreError>;

/// What the run loop does after a step.
#[derive(Debug)]
enum Flow {
    Next,
    Stop(RunEnd),
    /// The operator asked to run the failed step again now.
    Retry,
}

impl Engine<'_> {
    fn emit(&mut self, e: &Event) {
        self.listener.on(e);
        let failed = self.listener.take_failures();
        self.notify_failures.extend(failed);
    }

    /// Writes `entry` to the journal, unless the store no longer lets this process write the
    /// run (a lease lost): then nothing is written, ever again, and the error says so.
    pub async fn append(&mut self, entry: Entry) -> Result<Record, StoreError> {
        self.may_write()?;
        self.journal.append(entry).await
    }

    /// Seals this session's stretch of the journal (see [`Engine::append`]).
    pub async fn seal(&mut self) -> Result<Record, StoreError> {
        self.may_write()?;
        self.journal.seal().await
    }

    fn may_write(&self) -> Result<(), StoreError> {
        match self.interrupts.lease_lost() {
            Some(why) => Err(StoreError::LeaseLost {
                run: self.run_id.clone(),
                why,
            }),
            None => Ok(()),
        }
    }

    /// Records (and shows) the notifications that failed so far. They never stop the run.
    pub async fn record_notify_failures(&mut self, more: Vec<String>) -> Result<(), StoreError> {
        let mut failed = std::mem::take(&mut self.notify_failures);
        failed.extend(more);
        for message in failed {
            let message = self.redact(&message);
            self.append(Entry::NotificationFailed {
                message: message.clone(),
            })
            .await?;
            self.listener.on(&Event::NotificationFailed { message });
        }
        Ok(())
    }

    async fn record(&mut self, entry: Entry) -> Result<(), StoreError> {
        if !self.notify_failures.is_empty() {
            self.record_notify_failures(Vec::new()).await?;
        }
        self.append(entry.clone()).await?;
        self.state.apply(&Record::bare(entry));
        Ok(())
    }

    /// Asks through the prompter on a blocking thread of the runtime: a question waits on a
    /// process of its own, and the run loop's thread stays free for signals, abort criteria and
    /// notifications meanwhile. `None` when nobody can answer here.
    async fn ask<T: Send + 'static>(
        &mut self,
        question: impl FnOnce(&mut dyn Prompter) -> T + Send + 'static,
    ) -> Option<T> {
        let mut prompter = self.prompter.take()?;
        let asked = tokio::task::spawn_blocking(move || {
            let answer = question(prompter.as_mut());
            (prompter, answer)
        })
        .await;
        // A prompter that panicked is gone: from then on nobody can answer here.
        let (prompter, answer) = asked.ok()?;
        self.prompter = Some(prompter);
        Some(answer)
    }

    fn redact(&self, text: &str) -> String {
        self.redactor.text(text).into_owned()
    }

    /// Gives the renderers the values earlier sessions captured.
    pub fn restore_captures(&mut self) {
        for (name, value) in self.state.captures.clone() {
            self.shown.set_capture(&name, &value);
            // A capture that held a secret was recorded masked: its value is gone, and steps
            // using it fail to render rather than run with the mask.
            if crate::redact::was_masked(&value) {
                self.emit(&Event::Notice {
                    level: Level::Warning,
                    message: format!(
                        "capture `{name}` contained a secret and was recorded masked: steps that use it cannot run in this session"
                    ),
                });
                continue;
            }
            self.real.set_capture(&name, &value);
        }
    }

    /// Records that this session goes ahead outside the runbook's change window, and why.
    pub async fn record_outside_window(
        &mut self,
        o: &crate::exec::session::OutsideWindow,
    ) -> Result<(), StoreError> {
        self.record(Entry::OutsideWindow {
            reason: o.reason.clone(),
            window: o.window.clone(),
            local_time: o.local_time.clone(),
        })
        .await
    }

    /// Records the keys of this session's operator, when sign-offs exclude the operator: later
    /// sessions (another operator resuming) refuse approvals made with them too.
    pub async fn record_operator_keys(&mut self) -> Result<(), StoreError> {
        let keys: Vec<_> = self
            .options
            .operator_keys
            .iter()
            .filter(|k| !self.state.operator_keys.contains(k))
            .cloned()
            .collect();
        if keys.is_empty() {
            return Ok(());
        }
        self.record(Entry::OperatorKeys { keys }).await
    }

    /// Records that this session holds the run's target lock (and whose lock it broke).
    pub async fn record_lock(
        &mut self,
        lock: &crate::state::lock::TargetLock,
    ) -> Result<(), StoreError> {
        if let Some(broken) = &lock.broken {
            self.emit(&Event::Notice {
                level: Level::Warning,
                message: broken.clone(),
            });
        }
        self.record(Entry::LockAcquired {
            lock_id: lock.holder.lock_id.clone(),
            target: lock.holder.target.clone(),
            broken: lock.broken.clone(),
        })
        .await?;
        let Some(stopped) = &lock.stopped else {
            return Ok(());
        };
        let duration_ms = u64::try_from(stopped.duration.as_millis()).unwrap_or(u64::MAX);
        let names: Vec<String> = stopped
            .processes
            .iter()
            .map(|p| format!("pid {} ({}, {})", p.pid, p.name, p.signal))
            .collect();
        self.emit(&Event::Notice {
            level: Level::Warning,
            message: format!(
                "stopped {} process{} left by run {} (rollout pid {} died without stopping them) in {duration_ms} ms: {}; recorded in the journal",
                names.len(),
                if names.len() == 1 { "" } else { "es" },
                stopped.holder.run,
                stopped.holder.pid,
                names.join(", ")
            ),
        });
        self.record(Entry::LeftoversStopped {
            holder_lock_id: stopped.holder.lock_id.clone(),
            holder_run: stopped.holder.run.clone(),
            holder_pid: stopped.holder.pid,
            processes: stopped.processes.clone(),
            duration_ms,
        })
        .await
    }

    /// Runs the session's part of the run to where it stops, rollback included: a rollback
    /// under way (or owed) goes on, whatever the command; a `rollout rollback` rolls back
    /// `phases`; otherwise the phases not yet done run, and a failure whose action is a
    /// rollback is carried through to that rollback here. Never returns
    /// [`RunEnd::RollbackRequested`]. The phases' summary is of the forward run.
    pub async fn conduct(&mut self, mode: Mode) -> Result<(RunEnd, Vec<PhaseSummary>), StoreError> {
        let owed = self
            .state
            .rollback
            .as_ref()
            .filter(|rb| rb.finished.is_none())
            .map(|rb| rb.reason.clone());
        match (mode, owed) {
            (_, Some(reason)) => Ok((self.roll_back(&reason, Vec::new()).await?, Vec::new())),
            (Mode::Rollback { phases, reason }, None) => {
                Ok((self.roll_back(&reason, phases).await?, Vec::new()))
            }
            (Mode::Forward, None) => {
                let (end, phases) = self.run().await?;
                let RunEnd::RollbackRequested { step, reason } = end else {
                    return Ok((end, phases));
                };
                let why = format!("step `{step}` failed: {reason}");
                let undo = self.rollback_phases();
                Ok((self.roll_back(&why, undo).await?, phases))
            }
        }
    }

    /// Runs every phase not yet done. Returns why the run stopped; no criterion is watched
    /// after.
    async fn run(&mut self) -> Result<(RunEnd, Vec<PhaseSummary>), StoreError> {
        let ran = self.run_phases().await;
        self.abort_watch = None;
        ran
    }

    async fn run_phases(&mut self) -> Result<(RunEnd, Vec<PhaseSummary>), StoreError> {
        let phases = &self.loaded.runbook.phases;
        let total = phases.len();
        let mut summaries: Vec<PhaseSummary> = phases
            .iter()
            .map(|p| PhaseSummary {
                phase: p.id.get_ref().clone(),
                title: p.title.clone(),
                status: "not_started",
                duration_ms: 0,
            })
            .collect();
        for (index, phase) in phases.iter().enumerate() {
            let id = phase.id.get_ref().clone();
            if self.state.phases_done.contains(&id) {
                summaries[index].status = "succeeded";
                continue;
            }
            let started = Instant::now();
            self.emit(&Event::PhaseStarted {
                index: index + 1,
                total,
                phase: id.clone(),
                title: phase.title.clone(),
            });
            self.record(Entry::PhaseStarted { phase: id.clone() })
                .await?;
            self.begin_phase_criteria(index, phase);
            let mut end = None;
            for (at, step) in phase.steps.iter().chain(&phase.gate).enumerate() {
                self.budget_warning().await?;
                self.watch_criteria_at(phase, at);
                let stopped = self.step(phase, step).await?;
                self.budget_warning().await?;
                if let Some(trip) = self.abort_watch.as_ref().and_then(Watch::tripped) {
                    end = Some(self.apply_trip(phase, step, trip).await?);
                    break;
                }
                if let Some(e) = stopped {
                    end = Some(e);
                    break;
                }
            }
            self.end_budget(phase);
            let ms = millis(started.elapsed());
            summaries[index].duration_ms = ms;
            match end {
                None => {
                    self.record(Entry::PhaseFinished {
                        phase: id.clone(),
                        status: PhaseStatus::Succeeded,
                    })
                    .await?;
                    summaries[index].status = "succeeded";
                    self.emit(&Event::PhaseFinished {
                        phase: id,
                        succeeded: true,
                        duration_ms: ms,
                        stopped: false,
                    });
                }
                Some(e) => {
                    let failed =
                        matches!(e, RunEnd::Failed { .. } | RunEnd::RollbackRequested { .. });
                    summaries[index].status = if failed { "failed" } else { "stopped" };
                    if failed {
                        self.record(Entry::PhaseFinished {
                            phase: id.clone(),
                            status: PhaseStatus::Failed,
                        })
                        .await?;
                    }
                    self.emit(&Event::PhaseFinished {
                        phase: id,
                        succeeded: false,
                        duration_ms: ms,
                        stopped: !failed,
                    });
                    return Ok((e, summaries));
                }
            }
        }
        Ok((RunEnd::Succeeded, summaries))
    }

    /// Publishes a cancel for the step about to start, so signals and abort criteria reach it.
    fn fresh_step_cancel(&self) -> Cancel {
        let cancel = self.interrupts.step_cancel();
        // A criterion that tripped before the fresh cancel was published stops it here.
        if self.abort_watch.as_ref().and_then(Watch::tripped).is_some() {
            cancel.interrupt();
        }
        cancel
    }
}

fn millis(d: Duration) -> u64 {
    u64::try_from(d.as_millis()).unwrap_or(u64::MAX)
}

pub fn final_status(end: &RunEnd) -> Option<RunStatus> {
    match end {
        RunEnd::Succeeded => Some(RunStatus::Succeeded),
        RunEnd::Failed { .. }
        | RunEnd::RollbackRequested { .. }
        | RunEnd::RollbackNotDone { finished: true, .. } => Some(RunStatus::Failed),
        RunEnd::RolledBack { complete: true } => Some(RunStatus::RolledBack),
        RunEnd::RolledBack { complete: false } => Some(RunStatus::RollbackIncomplete),
        _ => None,
    }
}

/// The phase a step renders in: none for the runbook's own rollback section.
fn owner(phase: &Phase) -> Option<&Phase> {
    (phase.id.get_ref() != RUNBOOK_ROLLBACK).then_some(phase)
}
