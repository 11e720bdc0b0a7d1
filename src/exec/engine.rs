//! The run loop: walks phases and steps in order, skips what the journal says is done, renders
//! each step with the same renderer as `plan`, records "starting" durably before any side effect
//! and the result after, applies failure actions, and stops cleanly on pause or interrupt.
//! It emits events and never prints.

mod gate_step;
mod rollback;
mod watching;

pub use rollback::{RUNBOOK_ROLLBACK, phases_to_roll_back};

use std::sync::Arc;
use std::time::{Duration, Instant};

use crate::exec::abort::{Trip, Watch};
use crate::exec::event::{Event, Level, Listener, OutputStream, PhaseSummary};
use crate::exec::gates::{Approvals, Prompter};
use crate::exec::interrupts::Interrupts;
use crate::exec::process::{self, Cancel, Outcome, ProcessSpec, Stream};
use crate::plan::{Action, PlanStep, Renderer};
use crate::runbook::Loaded;
use crate::runbook::model::{FailureAction, Phase, Step};
use crate::state::record::{PhaseStatus, RunStatus, StepStatus};
use crate::state::{Entry, Journal, RunState, StoreError};

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
    /// A failure asked for a rollback (the session then performs it).
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
    pub prompter: Option<&'a mut dyn Prompter>,
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

    /// Records (and shows) the notifications that failed so far. They never stop the run.
    pub fn record_notify_failures(&mut self, more: Vec<String>) -> Result<(), StoreError> {
        let mut failed = std::mem::take(&mut self.notify_failures);
        failed.extend(more);
        for message in failed {
            let message = self.redact(&message);
            self.journal.append(Entry::NotificationFailed {
                message: message.clone(),
            })?;
            self.listener.on(&Event::NotificationFailed { message });
        }
        Ok(())
    }

    fn record(&mut self, entry: Entry) -> Result<(), StoreError> {
        if !self.notify_failures.is_empty() {
            self.record_notify_failures(Vec::new())?;
        }
        self.journal.append(entry.clone())?;
        self.state.apply(&crate::state::Record::bare(entry));
        Ok(())
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
    pub fn record_outside_window(
        &mut self,
        o: &crate::exec::session::OutsideWindow,
    ) -> Result<(), StoreError> {
        self.record(Entry::OutsideWindow {
            reason: o.reason.clone(),
            window: o.window.clone(),
            local_time: o.local_time.clone(),
        })
    }

    /// Records that this session holds the run's target lock (and whose lock it broke).
    pub fn record_lock(&mut self, lock: &crate::state::lock::TargetLock) -> Result<(), StoreError> {
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
        })?;
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
    }

    /// Runs every phase not yet done. Returns why the run stopped; no criterion is watched
    /// after.
    pub async fn run(&mut self) -> Result<(RunEnd, Vec<PhaseSummary>), StoreError> {
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
            self.record(Entry::PhaseStarted { phase: id.clone() })?;
            self.begin_phase_criteria(index, phase);
            let mut end = None;
            for (at, step) in phase.steps.iter().chain(&phase.gate).enumerate() {
                self.budget_warning()?;
                self.watch_criteria_at(phase, at);
                let stopped = self.step(phase, step).await?;
                self.budget_warning()?;
                if let Some(trip) = self.abort_watch.as_ref().and_then(Watch::tripped) {
                    end = Some(self.apply_trip(phase, step, trip)?);
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
                    })?;
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
                        })?;
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

    /// Records a tripped abort criterion and applies its action. `step` is the step that was
    /// running (stopped) or had just finished when it tripped.
    fn apply_trip(&mut self, phase: &Phase, step: &Step, trip: Trip) -> Result<RunEnd, StoreError> {
        // The trip stopped the step (or the question) it cut short; what comes next, such as
        // the rollback's confirmation, starts afresh (a signal still reaches it).
        self.interrupts.step_cancel();
        let phase_id = phase.id.get_ref().clone();
        let id = step.id.get_ref().clone();
        self.record(Entry::AbortTripped {
            phase: phase_id.clone(),
            step: id.clone(),
            criterion: trip.name.clone(),
            action: trip.action.name().into(),
            values: trip.values.clone(),
        })?;
        self.emit(&Event::AbortTripped {
            phase: phase_id.clone(),
            criterion: trip.name.clone(),
            action: trip.action.name(),
            reason: trip.reason.clone(),
        });
        Ok(match trip.action {
            FailureAction::Rollback => RunEnd::RollbackRequested {
                step: id,
                reason: trip.reason,
            },
            FailureAction::Pause | FailureAction::Ask => {
                self.record(Entry::Paused {
                    phase: Some(phase_id),
                    step: Some(id),
                    reason: trip.reason.clone(),
                    waiting_for_approval: false,
                })?;
                RunEnd::Paused {
                    reason: trip.reason,
                }
            }
            FailureAction::Abort => RunEnd::Failed {
                step: id,
                reason: trip.reason,
                check: true,
            },
        })
    }

    fn pause_for_signal(&mut self, phase: &Phase, step: Option<&Step>, signal: i32) -> StepOutcome {
        let reason = format!(
            "interrupted by {}",
            if signal == 15 { "SIGTERM" } else { "Ctrl-C" }
        );
        self.record(Entry::Paused {
            phase: Some(phase.id.get_ref().clone()),
            step: step.map(|s| s.id.get_ref().clone()),
            reason: reason.clone(),
            waiting_for_approval: false,
        })?;
        Ok(Flow::Stop(RunEnd::Interrupted { signal }))
    }

    /// Runs one step if it is not done yet. `Some(end)` stops the run.
    async fn step(&mut self, phase: &Phase, step: &Step) -> Result<Option<RunEnd>, StoreError> {
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
            return self.pause_for_signal(phase, Some(step), signal);
        }
        if self.state.in_doubt.as_ref().is_some_and(|(_, s)| *s == id) {
            if let Flow::Stop(end) = self.resolve_in_doubt(phase, step)? {
                return Ok(Flow::Stop(end));
            }
            if self.state.done.contains_key(&id) {
                return Ok(Flow::Next);
            }
        }
        let shown = match self.shown.step(owner(phase), step) {
            Ok(s) => s,
            Err(e) => return self.render_failure(phase, step, &e.error),
        };
        if let Some(when) = &shown.when {
            let run_it = match self.real.step(owner(phase), step) {
                Ok(real) => real.when.as_ref().is_none_or(|w| w.decision != "skip"),
                Err(e) => return self.render_failure(phase, step, &e.error),
            };
            if !run_it {
                let reason = format!("`when` is false: {}", when.expression);
                self.record(Entry::StepSkipped {
                    phase: phase_id.clone(),
                    step: id.clone(),
                    reason: reason.clone(),
                })?;
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
            Err(e) => return self.render_failure(phase, step, &e.error),
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
                        return self.pause_for_signal(phase, Some(step), signal);
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
            })?;
            self.emit(&Event::StepFinished {
                phase: phase_id.clone(),
                step: id.clone(),
                status,
                exit_code,
                duration_ms: millis(duration),
                reason: reason.clone(),
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
                    return self.pause_for_signal(phase, Some(step), signal);
                }
                attempt += 1;
                continue;
            }
            let reason = reason.unwrap_or_else(|| "failed".into());
            return self.fail(phase, step, reason);
        }
    }

    fn render_failure(
        &mut self,
        phase: &Phase,
        step: &Step,
        error: &crate::runbook::template::RenderError,
    ) -> StepOutcome {
        let source = &self.loaded.source;
        let (line, column) = source.line_col(error.span.start);
        let reason = format!(
            "cannot render the step ({}:{line}:{column}): {}",
            source.name, error.message
        );
        self.emit(&Event::StepFinished {
            phase: phase.id.get_ref().clone(),
            step: step.id.get_ref().clone(),
            status: StepStatus::Failed,
            exit_code: None,
            duration_ms: 0,
            reason: Some(reason.clone()),
        });
        self.fail(phase, step, reason)
    }

    /// Applies the failure action of a step that failed for good.
    fn fail(&mut self, phase: &Phase, step: &Step, reason: String) -> StepOutcome {
        let id = step.id.get_ref().clone();
        let action = if self.rolling_back {
            // A rollback step that fails stops the rollback unless it says otherwise; it
            // never asks for a rollback of the rollback.
            match step.on_failure {
                Some(a @ (FailureAction::Pause | FailureAction::Ask)) => a,
                _ => FailureAction::Abort,
            }
        } else {
            step.on_failure.unwrap_or(phase.on_failure)
        };
        let rollback_choice = !self.rolling_back;
        let action = match action {
            FailureAction::Ask => match self.prompter.as_deref_mut() {
                Some(p) => {
                    let q = format!("step `{id}` failed: {reason}. What now?");
                    let mut options = vec![
                        "pause (fix it, then `rollout resume`)",
                        "retry now",
                        "skip this step",
                        "abort the run",
                    ];
                    if rollback_choice {
                        options.push("roll back");
                    }
                    match p.choose(&q, &options).ok() {
                        Some(1) => return Ok(Flow::Retry),
                        Some(4) => FailureAction::Rollback,
                        Some(2) => {
                            self.record(Entry::StepSkipped {
                                phase: phase.id.get_ref().clone(),
                                step: id.clone(),
                                reason: format!(
                                    "skipped by {} after failure: {reason}",
                                    self.options.operator
                                ),
                            })?;
                            return Ok(Flow::Next);
                        }
                        Some(3) => FailureAction::Abort,
                        _ => FailureAction::Pause,
                    }
                }
                None => FailureAction::Pause,
            },
            other => other,
        };
        match action {
            FailureAction::Abort => Ok(Flow::Stop(RunEnd::Failed {
                step: id,
                reason,
                check: matches!(
                    step.kind,
                    crate::runbook::model::StepKind::Metric(_)
                        | crate::runbook::model::StepKind::Http(_)
                ),
            })),
            FailureAction::Rollback => {
                Ok(Flow::Stop(RunEnd::RollbackRequested { step: id, reason }))
            }
            FailureAction::Pause | FailureAction::Ask => {
                let why = format!("step `{id}` failed: {reason}");
                self.record(Entry::Paused {
                    phase: Some(phase.id.get_ref().clone()),
                    step: Some(id),
                    reason: why.clone(),
                    waiting_for_approval: false,
                })?;
                Ok(Flow::Stop(RunEnd::Paused { reason: why }))
            }
        }
    }

    /// Decides what to do with the step that was in flight when rollout stopped.
    fn resolve_in_doubt(&mut self, phase: &Phase, step: &Step) -> StepOutcome {
        let id = step.id.get_ref().clone();
        let decision = if step.idempotent {
            Some("rerun (the step is marked idempotent)")
        } else {
            match self.options.in_doubt {
                InDoubt::Rerun => Some("rerun (--rerun-in-doubt)"),
                InDoubt::Skip => Some("skip (--skip-in-doubt)"),
                InDoubt::Ask => match self.prompter.as_deref_mut() {
                    Some(p) => {
                        let q = format!(
                            "step `{id}` was running when rollout stopped; it may or may not have finished. What now?"
                        );
                        match p
                            .choose(
                                &q,
                                &["run it again", "treat it as done and skip it", "stop here"],
                            )
                            .ok()
                        {
                            Some(0) => Some("rerun (confirmed by the operator)"),
                            Some(1) => Some("skip (confirmed by the operator)"),
                            _ => None,
                        }
                    }
                    None => None,
                },
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
            })?;
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
        })?;
        Ok(Flow::Next)
    }

    async fn sleep(&self, d: Duration) -> Option<i32> {
        let deadline = Instant::now() + d;
        loop {
            if let Some(signal) = self.interrupts.pending() {
                return Some(signal);
            }
            let now = Instant::now();
            // A tripped abort criterion cuts a wait short; the phase loop then applies it.
            if now >= deadline || self.abort_watch.as_ref().and_then(Watch::tripped).is_some() {
                return None;
            }
            tokio::time::sleep((deadline - now).min(Duration::from_millis(50))).await;
        }
    }

    async fn attempt(
        &mut self,
        phase: &Phase,
        step: &Step,
        shown: &PlanStep,
        real: &PlanStep,
        attempt: u32,
        digest: Option<&str>,
    ) -> Result<Attempt, StoreError> {
        let started = Instant::now();
        let phase_id = phase.id.get_ref().clone();
        let id = step.id.get_ref().clone();
        match &real.action {
            Action::Run { argv, env, .. } | Action::Kubectl { argv, env, .. } => {
                let workdir = workdir_of(&real.action)
                    .unwrap_or_else(|| crate::plan::runbook_dir(&self.loaded.source.path));
                let mut full_env: std::collections::BTreeMap<String, String> =
                    self.exported_env.iter().cloned().collect();
                full_env.insert("ROLLOUT_RUN_ID".into(), self.run_id.clone());
                full_env.insert("ROLLOUT_PHASE".into(), phase_id.clone());
                full_env.insert("ROLLOUT_STEP".into(), id.clone());
                full_env.extend(env.clone());
                let spec = ProcessSpec {
                    argv: argv.clone(),
                    env: full_env,
                    workdir,
                    timeout: real.timeout.map_or(Duration::from_secs(1800), |t| t.0),
                    grace: self.options.grace,
                    capture_stdout: step.capture.is_some(),
                    stdin_null: true,
                };
                let command = display_lines(&shown.action)
                    .iter()
                    .map(|l| self.redact(l))
                    .collect();
                self.record(Entry::StepStarted {
                    phase: phase_id,
                    step: id.clone(),
                    attempt,
                    command,
                })?;
                let cancel = self.fresh_step_cancel();
                let listener = &mut *self.listener;
                // A secret may be split across reads: each stream holds back what could be the
                // start of one until the next read or the end of the stream.
                let (mut out, mut err) = (self.redactor.stream(), self.redactor.stream());
                let mut on_output = |stream: Stream, data: &[u8]| {
                    let (stream, data) = match stream {
                        Stream::Stdout => (OutputStream::Stdout, out.push(data)),
                        Stream::Stderr => (OutputStream::Stderr, err.push(data)),
                    };
                    if !data.is_empty() {
                        listener.on(&Event::Output {
                            step: id.clone(),
                            stream,
                            data,
                        });
                    }
                };
                let finished = process::run(&spec, &cancel, &mut on_output).await;
                for (stream, data) in [
                    (OutputStream::Stdout, out.finish()),
                    (OutputStream::Stderr, err.finish()),
                ] {
                    if !data.is_empty() {
                        self.listener.on(&Event::Output {
                            step: id.clone(),
                            stream,
                            data,
                        });
                    }
                }
                // Each stream's kept tail is masked whole before it is cut to what is recorded.
                let full = |t: &[u8]| t.len() >= process::TAIL_BYTES;
                let tail = self.redact(&tail_text(
                    &self
                        .redactor
                        .tail(&finished.stdout_tail, full(&finished.stdout_tail)),
                    &self
                        .redactor
                        .tail(&finished.stderr_tail, full(&finished.stderr_tail)),
                ));
                let mut a = Attempt {
                    status: StepStatus::Ok,
                    exit_code: None,
                    reason: None,
                    tail: Some(tail),
                    capture: None,
                    end: None,
                    duration: finished.duration,
                    unfinished: false,
                };
                match finished.outcome {
                    Outcome::Exited(0) => {}
                    Outcome::Exited(code) => {
                        a.status = StepStatus::Failed;
                        a.exit_code = Some(code);
                        a.reason = Some(format!("exited with code {code}"));
                    }
                    Outcome::Signaled(sig) => {
                        a.status = StepStatus::Failed;
                        a.exit_code = Some(128 + sig);
                        a.reason = Some(format!("killed by signal {sig}"));
                    }
                    Outcome::TimedOut => {
                        a.status = StepStatus::TimedOut;
                        a.reason = Some(format!(
                            "timed out after {}",
                            real.timeout.map(|t| t.to_string()).unwrap_or_default()
                        ));
                    }
                    Outcome::Interrupted if self.interrupts.pending().is_none() => {
                        // Not a signal: an abort criterion tripped. The phase loop applies it.
                        let why = self
                            .abort_watch
                            .as_ref()
                            .and_then(Watch::tripped)
                            .map_or_else(|| "stopped".to_string(), |t| t.reason);
                        a.status = StepStatus::Failed;
                        a.reason = Some(format!("stopped: {why}"));
                        a.end = Some(RunEnd::Failed {
                            step: id.clone(),
                            reason: why,
                            check: true,
                        });
                    }
                    Outcome::Interrupted => {
                        a.status = StepStatus::Interrupted;
                        a.end = Some(RunEnd::Interrupted {
                            signal: self.interrupts.pending().unwrap_or(2),
                        });
                    }
                    Outcome::FailedToStart(why) => {
                        a.status = StepStatus::Failed;
                        a.reason = Some(why);
                    }
                }
                if a.status == StepStatus::Ok {
                    if let (Some(name), Some(captured)) = (&step.capture, finished.captured) {
                        match captured.and_then(capture_text) {
                            Ok(v) => a.capture = Some((name.get_ref().clone(), v)),
                            Err(why) => {
                                a.status = StepStatus::Failed;
                                a.reason = Some(format!("cannot capture the output: {why}"));
                            }
                        }
                    }
                }
                Ok(a)
            }
            Action::Wait { duration } => {
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
                            self.budget_warning()?;
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
            Action::Pause { message } => Ok(Attempt {
                end: Some(RunEnd::Paused {
                    reason: message.clone(),
                }),
                reason: Some(format!("paused: {message}")),
                duration: started.elapsed(),
                ..Attempt::default()
            }),
            Action::Confirm { .. } | Action::Checklist { .. } | Action::Signoff { .. } => {
                self.gate(phase, step, shown, digest, started)
            }
            Action::Http { .. } => {
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
            Action::Metric { condition, .. } => {
                let condition = condition.to_string();
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
                        Measured::Inconclusive(why) => {
                            ("inconclusive", Vec::new(), Some(why.clone()))
                        }
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
                    let choice = self.prompter.as_deref_mut().map(|p| {
                        p.choose(
                            &format!("check `{id}` is inconclusive: {why}. What now?"),
                            &["pause the run", "count it as failed"],
                        )
                        .ok()
                    });
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
            Action::Repeat { steps, .. } => {
                // Evaluate each target again as it is now; the first that does not pass decides.
                let mut passed = Vec::new();
                for target in steps {
                    let Some((owner, original)) = self.find_step(target) else {
                        return Ok(Attempt {
                            status: StepStatus::Failed,
                            reason: Some(format!("no step `{target}` to repeat")),
                            duration: started.elapsed(),
                            ..Attempt::default()
                        });
                    };
                    let rendered = self
                        .shown
                        .step(Some(owner), original)
                        .and_then(|s| Ok((s, self.real.step(Some(owner), original)?)));
                    let (t_shown, t_real) = match rendered {
                        Ok(pair) => pair,
                        Err(e) => {
                            return Ok(Attempt {
                                status: StepStatus::Failed,
                                reason: Some(format!(
                                    "cannot render `{target}`: {}",
                                    e.error.message
                                )),
                                duration: started.elapsed(),
                                ..Attempt::default()
                            });
                        }
                    };
                    let mut inner =
                        Box::pin(self.attempt(owner, original, &t_shown, &t_real, attempt, digest))
                            .await?;
                    if inner.status != StepStatus::Ok || inner.end.is_some() || inner.unfinished {
                        inner.reason = Some(format!(
                            "repeat of `{target}`: {}",
                            inner.reason.unwrap_or_else(|| "did not pass".into())
                        ));
                        inner.capture = None;
                        inner.duration = started.elapsed();
                        return Ok(inner);
                    }
                    passed.push(format!("`{target}`"));
                }
                Ok(Attempt {
                    reason: Some(format!("passed again: {}", passed.join(", "))),
                    duration: started.elapsed(),
                    ..Attempt::default()
                })
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
    fn find_step(&self, id: &str) -> Option<(&'a Phase, &'a Step)> {
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

#[derive(Debug, Default)]
struct Attempt {
    status: StepStatus,
    exit_code: Option<i32>,
    reason: Option<String>,
    tail: Option<String>,
    capture: Option<(String, String)>,
    end: Option<RunEnd>,
    duration: Duration,
    /// The step produced no result to record (an inconclusive check).
    unfinished: bool,
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

fn workdir_of(action: &Action) -> Option<std::path::PathBuf> {
    match action {
        Action::Run { workdir, .. } => Some(workdir.clone()),
        _ => None,
    }
}

/// The lines a person sees for a step about to run.
pub fn display_lines(action: &Action) -> Vec<String> {
    use crate::runbook::template::shell_quote;
    match action {
        Action::Run { command, .. } => command.trim_end().lines().map(String::from).collect(),
        Action::Kubectl { argv, .. } => vec![
            argv.iter()
                .map(|a| shell_quote(a))
                .collect::<Vec<_>>()
                .join(" "),
        ],
        Action::Confirm { question, .. } => vec![question.clone()],
        Action::Checklist { items } => items.iter().map(|i| format!("[ ] {i}")).collect(),
        Action::Signoff {
            title,
            roles,
            required,
            exclude_operator,
        } => {
            let roles: Vec<String> = roles
                .iter()
                .map(|r| match &r.approvers {
                    Some(a) => format!("{} ({})", r.role, a.join(", ")),
                    None => r.role.clone(),
                })
                .collect();
            let mut who = format!("{required} of {} sign: {}", roles.len(), roles.join(", "));
            if *exclude_operator {
                who.push_str("; the operator cannot sign");
            }
            vec![title.clone(), who]
        }
        Action::Metric {
            query, condition, ..
        } => vec![format!("{query} {condition}")],
        Action::Http { method, url, .. } => vec![format!("{method} {url}")],
        Action::Wait { duration } => vec![format!("wait {duration}")],
        Action::Pause { message } => vec![message.clone()],
        Action::Repeat { target, .. } => vec![format!("repeat {target}")],
    }
}

const RECORD_TAIL: usize = 4096;

fn tail_text(stdout: &[u8], stderr: &[u8]) -> String {
    let cut = |b: &[u8]| {
        String::from_utf8_lossy(&b[b.len().saturating_sub(RECORD_TAIL / 2)..]).into_owned()
    };
    let mut out = String::new();
    if !stdout.is_empty() {
        out.push_str(&cut(stdout));
    }
    if !stderr.is_empty() {
        if !out.is_empty() && !out.ends_with('\n') {
            out.push('\n');
        }
        out.push_str(&cut(stderr));
    }
    out
}

fn capture_text(bytes: Vec<u8>) -> Result<String, String> {
    let text = String::from_utf8(bytes).map_err(|_| "the output is not UTF-8 text".to_string())?;
    if text.contains('\0') {
        return Err("the output contains a NUL byte".into());
    }
    Ok(text.trim_end_matches(['\n', '\r']).to_string())
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
