//! What the executor tells the world. The engine emits these and never prints; the terminal
//! view, the plain line view and `--output json` are listeners that render them.

use serde::Serialize;

use crate::runbook::Location;
use crate::state::record::StepStatus;

#[derive(Debug, Clone, Serialize)]
#[serde(tag = "event", rename_all = "snake_case")]
pub enum Event {
    RunStarted {
        run_id: String,
        runbook: String,
        name: String,
        resumed: bool,
        journal: String,
    },
    /// Something the operator should know that is not a step's result (a recovered journal,
    /// a step already done, an in-doubt decision).
    Notice { level: Level, message: String },
    PhaseStarted {
        index: usize,
        total: usize,
        phase: String,
        title: String,
    },
    StepStarted {
        phase: String,
        step: String,
        name: Option<String>,
        kind: &'static str,
        attempt: u32,
        line: usize,
        /// The rendered action as shown to people (secrets masked).
        display: Vec<String>,
    },
    Output {
        step: String,
        stream: OutputStream,
        #[serde(serialize_with = "lossy")]
        data: Vec<u8>,
    },
    StepFinished {
        phase: String,
        step: String,
        status: StepStatus,
        exit_code: Option<i32>,
        duration_ms: u64,
        reason: Option<String>,
        /// Where the step is in the runbook, when it failed for good (its last attempt): what
        /// it does (its command, query, URL, question), or the template that cannot render.
        #[serde(skip_serializing_if = "Option::is_none")]
        location: Option<Location>,
    },
    StepSkipped {
        phase: String,
        step: String,
        reason: String,
    },
    /// A `wait` step started waiting: the terminal view counts down.
    Waiting { step: String, duration_ms: u64 },
    /// One measurement of a metric check, with what a live view needs to show its progress.
    Measurement {
        step: String,
        /// 1-based, out of `count`.
        index: u32,
        count: u32,
        /// `pass`, `fail` or `inconclusive`.
        verdict: &'static str,
        values: Vec<(String, f64)>,
        /// Why there is no usable value, for `inconclusive`.
        detail: Option<String>,
        /// The condition every series must meet, e.g. `< 0.01`.
        condition: String,
        /// The worst value of each usable measurement so far, oldest first (at most 20).
        trend: Vec<f64>,
        /// Time until the last measurement is due.
        left_ms: u64,
    },
    Retrying {
        step: String,
        attempt: u32,
        delay_ms: u64,
    },
    PhaseFinished {
        phase: String,
        succeeded: bool,
        duration_ms: u64,
        /// The phase did not finish: it stopped to wait (a pause, an approval, an interrupt)
        /// and goes on when the run is resumed.
        #[serde(skip_serializing_if = "std::ops::Not::not")]
        stopped: bool,
    },
    Paused {
        reason: String,
        resume_with: String,
        waiting_for_approval: bool,
    },
    /// An abort criterion tripped while its phase ran.
    AbortTripped {
        phase: String,
        criterion: String,
        /// `abort`, `rollback` or `pause`.
        action: &'static str,
        reason: String,
    },
    /// A notification could not be delivered; the run goes on.
    NotificationFailed { message: String },
    /// The journal was sealed for this session: always the last event.
    AuditSealed {
        /// The hash of the `sealed` record: publish it to make a later rewriting of the audit
        /// log detectable (`rollout audit verify --digest`).
        audit_digest: String,
    },
    /// A rollback is about to start (or go on): what it will run, phase by phase.
    RollbackPlanned {
        reason: String,
        phases: Vec<RollbackPhase>,
        /// The rollback was already under way (a resumed rollback).
        resumed: bool,
    },
    /// The rollback is over: what was undone, and what was not and why.
    RollbackFinished {
        complete: bool,
        undone: Vec<String>,
        not_undone: Vec<String>,
    },
    /// The run stopped: finished, or paused, waiting or interrupted (see `outcome`).
    RunFinished {
        run_id: String,
        /// `succeeded`, `failed`, `rolled_back`, `rollback_incomplete`, `rollback_not_done`,
        /// `paused`, `waiting_for_approval`, `interrupted`.
        outcome: &'static str,
        duration_ms: u64,
        journal: String,
        phases: Vec<PhaseSummary>,
    },
}

impl Event {
    /// Calls `t` on each text of the event that holds what people wrote or values gave: names,
    /// titles, messages, reasons, rendered commands. Not on identifiers (ids, statuses), which
    /// the runbook's rules keep plain, nor on the bytes of `Output`, which a stream handles.
    pub fn texts_mut(&mut self, t: &mut dyn FnMut(&mut String)) {
        match self {
            Event::RunStarted {
                runbook,
                name,
                journal,
                ..
            } => {
                t(runbook);
                t(name);
                t(journal);
            }
            Event::Notice { message, .. } | Event::NotificationFailed { message } => t(message),
            Event::PhaseStarted { title, .. } => t(title),
            Event::StepStarted { name, display, .. } => {
                name.iter_mut().for_each(&mut *t);
                display.iter_mut().for_each(&mut *t);
            }
            Event::StepFinished { reason, .. } => reason.iter_mut().for_each(&mut *t),
            Event::StepSkipped { reason, .. } | Event::AbortTripped { reason, .. } => t(reason),
            Event::Measurement {
                values,
                detail,
                condition,
                ..
            } => {
                for (series, _) in values.iter_mut() {
                    t(series);
                }
                detail.iter_mut().for_each(&mut *t);
                t(condition);
            }
            Event::Paused {
                reason,
                resume_with,
                ..
            } => {
                t(reason);
                t(resume_with);
            }
            Event::RunFinished {
                journal, phases, ..
            } => {
                t(journal);
                for p in phases.iter_mut() {
                    t(&mut p.title);
                }
            }
            Event::RollbackPlanned { reason, phases, .. } => {
                t(reason);
                for p in phases.iter_mut() {
                    t(&mut p.title);
                    for (_, lines) in &mut p.steps {
                        lines.iter_mut().for_each(&mut *t);
                    }
                }
            }
            Event::RollbackFinished {
                undone, not_undone, ..
            } => {
                undone.iter_mut().for_each(&mut *t);
                not_undone.iter_mut().for_each(&mut *t);
            }
            // Output is a stream: the engine masks it and a view escapes it as it comes, as
            // only they can see a secret or a character split across reads.
            Event::Output { .. }
            | Event::Waiting { .. }
            | Event::Retrying { .. }
            | Event::PhaseFinished { .. }
            | Event::AuditSealed { .. } => {}
        }
    }
}

/// One phase of a rollback plan: its rollback steps as they will run (secrets masked).
#[derive(Debug, Clone, Serialize)]
pub struct RollbackPhase {
    pub phase: String,
    pub title: String,
    /// The phase whose rollback covers this one (`rollback_covers`): its own steps do not run.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub covered_by: Option<String>,
    /// (step id, the lines a person reads).
    pub steps: Vec<(String, Vec<String>)>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Level {
    Info,
    Warning,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum OutputStream {
    Stdout,
    Stderr,
}

#[derive(Debug, Clone, Serialize)]
pub struct PhaseSummary {
    pub phase: String,
    pub title: String,
    /// `succeeded`, `failed`, `skipped`, `not_started`, `stopped`.
    pub status: &'static str,
    pub duration_ms: u64,
}

fn lossy<S: serde::Serializer>(data: &[u8], s: S) -> Result<S::Ok, S::Error> {
    s.serialize_str(&String::from_utf8_lossy(data))
}

/// Anything that renders or records events.
pub trait Listener {
    fn on(&mut self, event: &Event);
    /// Deliveries that failed since the last call (notifications), for the journal.
    fn take_failures(&mut self) -> Vec<String> {
        Vec::new()
    }
    /// Waits up to `limit` for deliveries still under way (tasks of the runtime, which go on
    /// while this waits); returns what failed or did not go.
    fn flush(&mut self, _limit: std::time::Duration) -> Flushing<'_> {
        Box::pin(std::future::ready(Vec::new()))
    }
}

/// What [`Listener::flush`] gives: the deliveries that failed, once those under way are done.
pub type Flushing<'a> = std::pin::Pin<Box<dyn std::future::Future<Output = Vec<String>> + 'a>>;

/// Two listeners as one: the view, and the notifications.
pub struct Tee<'a> {
    pub first: &'a mut dyn Listener,
    pub second: Box<dyn Listener>,
}

impl Listener for Tee<'_> {
    fn on(&mut self, event: &Event) {
        self.first.on(event);
        self.second.on(event);
    }
    fn take_failures(&mut self) -> Vec<String> {
        let mut f = self.first.take_failures();
        f.extend(self.second.take_failures());
        f
    }
    fn flush(&mut self, limit: std::time::Duration) -> Flushing<'_> {
        Box::pin(async move {
            let mut f = self.first.flush(limit).await;
            f.extend(self.second.flush(limit).await);
            f
        })
    }
}
