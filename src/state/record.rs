//! The records of a run's journal, and the run state derived from them. The journal is the
//! only truth, and [`RunState::apply`] is the one place that reads it: status and resume read
//! the state it folds, reports its [`Timeline`], so there is no second copy of the state to fall
//! out of step with it, and no second reading of the records to keep in step.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

use crate::runbook::Location;

pub mod timeline;

pub use timeline::Timeline;
use timeline::{
    AbortTrip, Approval, GateWait, Measurement, OutsideWindow, OverBudget, Pause, Rollback,
    Session, between, name,
};

/// One line of the journal, which is also the run's audit log: every record says when, who,
/// where, which run and which runbook text, and is chained to the one before it by SHA-256
/// (see [`super::audit`]).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Record {
    pub seq: u64,
    /// RFC 3339 UTC timestamp.
    pub at: String,
    #[serde(flatten)]
    pub event: Entry,
    /// The run this record belongs to.
    #[serde(default)]
    pub run: String,
    /// Who wrote it, from where.
    #[serde(default)]
    pub who: Who,
    /// `sha256:<hex>` of the runbook text the session runs.
    #[serde(default)]
    pub runbook_digest: String,
    /// The previous record's `hash` (all zeros for the first record).
    #[serde(default)]
    pub prev: String,
    /// `sha256:<hex>` of this line up to (not including) `,"hash":`. Always written last.
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub hash: String,
}

/// The person and machine behind a record.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Who {
    /// The name given for the session (`ROLLOUT_OPERATOR`, else the OS user).
    pub operator: String,
    /// The OS account rollout ran as.
    pub os_user: String,
    pub host: String,
    pub pid: u32,
}

/// What every record of a session carries besides its event.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Envelope {
    pub run: String,
    pub who: Who,
    pub runbook_digest: String,
}

/// How a record that begins a session after the first names the seal before it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Opening<'a> {
    /// The hash of the last seal before it, or `None` when no session sealed the log before.
    Names(Option<&'a str>),
    /// A `run_resumed` written before sessions named their seal: it names none, and is
    /// accepted as the older format (a reader given a digest still sees what follows it).
    Unnamed,
}

impl Entry {
    /// The record of a journal read back up to its last good record.
    pub fn recovered(r: super::Recovery) -> Entry {
        Entry::JournalRecovered {
            good_records: r.good_records,
            dropped_bytes: r.dropped_bytes,
            detail: r.detail,
            saved_as: r.saved_as,
        }
    }

    /// For a record that begins a session after the first (`run_resumed`, `seal_recovered`):
    /// the seal it names.
    pub fn opens_session(&self) -> Option<Opening<'_>> {
        match self {
            Entry::RunResumed {
                previous_seal: Some(named),
                ..
            } => Some(Opening::Names(named.as_deref())),
            Entry::RunResumed {
                previous_seal: None,
                ..
            } => Some(Opening::Unnamed),
            Entry::SealRecovered { previous_seal, .. } => {
                Some(Opening::Names(previous_seal.as_deref()))
            }
            _ => None,
        }
    }
}

/// Reads a member that may be `null` as `Some(None)`, so that an absent member (`None`, by
/// `#[serde(default)]`) can be told from it.
#[allow(clippy::option_option)]
fn present<'de, D: serde::Deserializer<'de>>(d: D) -> Result<Option<Option<String>>, D::Error> {
    <Option<String> as serde::Deserialize>::deserialize(d).map(Some)
}

impl Record {
    /// A record as the engine applies it to its in-memory state (no chain fields).
    pub fn bare(event: Entry) -> Record {
        Record {
            seq: 0,
            at: super::now(),
            event,
            run: String::new(),
            who: Who::default(),
            runbook_digest: String::new(),
            prev: String::new(),
            hash: String::new(),
        }
    }

    /// Record `seq` of a session with `envelope`, stamped now and chained to `prev`: what a
    /// journal appends (its hash is [`super::audit::encode`]'s to make). The same for files and
    /// the database.
    pub fn chained(envelope: &Envelope, seq: u64, prev: &str, event: Entry) -> Record {
        Record {
            seq,
            at: super::now(),
            event,
            run: envelope.run.clone(),
            who: envelope.who.clone(),
            runbook_digest: envelope.runbook_digest.clone(),
            prev: prev.to_string(),
            hash: String::new(),
        }
    }
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "type", rename_all = "snake_case")]
pub enum Entry {
    RunStarted {
        run_id: String,
        runbook: String,
        runbook_name: String,
        digest: String,
        operator: String,
        /// Variable values as resolved when the run started; secrets as `******`.
        vars: BTreeMap<String, serde_json::Value>,
        /// The rollout version that wrote the run.
        #[serde(default)]
        version: String,
    },
    /// Begins every session after the first. Names the seal that closed the log before it, so
    /// that a later session is linked to the digest a reader may have been given.
    RunResumed {
        operator: String,
        digest: String,
        /// The hash of the last `sealed` record before this one (`null` when there is none:
        /// every earlier session was cut short before it sealed the log). Absent (`None`) in
        /// logs written before sessions named their seal.
        #[serde(
            default,
            deserialize_with = "present",
            skip_serializing_if = "Option::is_none"
        )]
        previous_seal: Option<Option<String>>,
    },
    /// A session whose only work is to seal a log that a finished run left unsealed (rollout
    /// was killed between `run_finished` and `sealed`). Like `run_resumed`, it begins a session
    /// and names the last seal before it.
    SealRecovered {
        operator: String,
        #[serde(default)]
        previous_seal: Option<String>,
        /// The first record the seal that follows covers, left unsealed by the session that died.
        unsealed_from: u64,
    },
    PhaseStarted {
        phase: String,
    },
    /// Written before the step's side effect.
    StepStarted {
        phase: String,
        step: String,
        attempt: u32,
        /// What runs, as a person reads it (secrets masked): the command, or the kubectl argv.
        #[serde(default, skip_serializing_if = "Vec::is_empty")]
        command: Vec<String>,
    },
    /// Written after it, with what happened.
    StepFinished {
        phase: String,
        step: String,
        attempt: u32,
        status: StepStatus,
        exit_code: Option<i32>,
        duration_ms: u64,
        reason: Option<String>,
        output_tail: Option<String>,
        capture: Option<(String, String)>,
        /// Where the step is in the runbook, when it failed for good (absent in journals
        /// written before rollout recorded it).
        #[serde(default, skip_serializing_if = "Option::is_none")]
        location: Option<Location>,
    },
    /// One measurement of a metric check, as it was taken.
    Measurement {
        step: String,
        /// `pass`, `fail` or `inconclusive`.
        verdict: String,
        /// Each series' value (series name, value).
        values: Vec<(String, f64)>,
        detail: Option<String>,
        /// The check's threshold as written (`< 0.01`), so reports can plot values against it.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        condition: Option<String>,
    },
    /// An abort criterion tripped while its phase ran: the bad values that tripped it.
    AbortTripped {
        phase: String,
        /// The step that was stopped, or had just finished.
        step: String,
        criterion: String,
        /// `abort`, `rollback` or `pause`.
        action: String,
        values: Vec<(String, f64)>,
    },
    StepSkipped {
        phase: String,
        step: String,
        reason: String,
    },
    /// The operator decided what to do with a step that was in flight when rollout died.
    InDoubtResolved {
        step: String,
        decision: String,
    },
    PhaseFinished {
        phase: String,
        status: PhaseStatus,
    },
    Paused {
        phase: Option<String>,
        step: Option<String>,
        reason: String,
        waiting_for_approval: bool,
    },
    RunFinished {
        status: RunStatus,
        reason: Option<String>,
    },
    /// A human gate was answered (or its deadline passed): who, how and what, per question.
    /// The record's `at` is when the gate was settled; each answer has its own time.
    GateAnswered {
        phase: String,
        step: String,
        kind: GateKind,
        outcome: GateVerdict,
        /// `interactive` when anyone answered at the terminal, else `pre-approved`.
        how: How,
        /// The name given for this session (`ROLLOUT_OPERATOR`, else `operator` in the user
        /// config, else the OS user).
        operator: String,
        /// The OS account rollout ran as.
        os_user: String,
        answers: Vec<GateAnswer>,
        /// Sign-offs: `sha256:<hex>` of the phase's rendered steps as shown to the signers.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        digest: Option<String>,
        /// One sentence for people.
        summary: String,
    },
    /// This process holds the run's target lock (see [`super::lock`]).
    LockAcquired {
        lock_id: String,
        target: String,
        /// Set when the previous holder's lock was removed with `rollout unlock`.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        broken: Option<String>,
    },
    LockReleased {
        lock_id: String,
        target: String,
    },
    /// The previous holder of the lock had died (killed, crashed) while processes of its steps
    /// ran on; this session stopped them before anything else.
    LeftoversStopped {
        /// The dead holder's lock id, run and pid, as its lock file named them.
        holder_lock_id: String,
        holder_run: String,
        holder_pid: u32,
        /// Each process found, and the last signal it needed.
        processes: Vec<LeftoverProcess>,
        /// From the first signal to the last process gone.
        duration_ms: u64,
    },
    /// A damaged tail (a record cut short by a crash) was set aside on resume.
    JournalRecovered {
        good_records: usize,
        dropped_bytes: u64,
        detail: String,
        saved_as: String,
    },
    /// A notification could not be delivered (the run went on).
    NotificationFailed {
        message: String,
    },
    /// The session started outside the runbook's change window, with `--outside-window`.
    OutsideWindow {
        /// The operator's `--reason`.
        reason: String,
        /// The window, as the plan shows it.
        window: String,
        /// The moment it was checked, in the window's time zone.
        local_time: String,
    },
    /// A phase ran past its `max_duration`; `action` says what followed.
    PhaseOverBudget {
        phase: String,
        max_duration: String,
        action: String,
    },
    /// Closes a session's stretch of the log: this record's hash is the digest to publish.
    Sealed {
        records: u64,
    },
    /// A rollback is needed: these phases, in this order, roll back (`[rollback]` is the
    /// runbook's own rollback section).
    RollbackRequested {
        reason: String,
        phases: Vec<String>,
    },
    /// The rollback was confirmed (or needs no confirmation) and starts now.
    RollbackStarted {
        phases: Vec<String>,
    },
    /// One phase's rollback steps are over: `complete` when every one of them succeeded.
    PhaseRolledBack {
        phase: String,
        complete: bool,
    },
    /// The rollback is over: what was undone and what was not (`phase/step: why`).
    RollbackFinished {
        complete: bool,
        undone: Vec<String>,
        not_undone: Vec<String>,
    },
    /// The run stops at a gate nobody here can answer; says what would satisfy it.
    GateWaiting {
        phase: String,
        step: String,
        kind: GateKind,
        message: String,
        /// Command-line flags that satisfy the gate on `rollout resume`, shell-quoted.
        satisfy_with: Vec<String>,
    },
    /// A sign-off that takes signed approvals was reached: the phase as its signers are shown
    /// it, with its digest, so that `rollout approve` shows and signs exactly that.
    SignoffShown {
        phase: String,
        step: String,
        /// `sha256:` of `lines`, each followed by a line feed.
        digest: String,
        /// The phase as shown (secrets masked, control characters escaped).
        lines: Vec<String>,
        /// The roles that may sign, as the runbook names them.
        roles: Vec<String>,
    },
    /// The SSH keys of the operator of this session (their ssh-agent's and `signing_key`) and
    /// the principals the allowed-signers file lists for them: where a sign-off excludes the
    /// operator, approvals made with the keys of anyone who operated the run do not count.
    OperatorKeys {
        keys: Vec<OperatorKey>,
    },
}

/// A key of an operator of the run (see [`Entry::OperatorKeys`]).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct OperatorKey {
    /// `SHA256:...` of the public key.
    pub fingerprint: String,
    /// The principals the allowed-signers file lists for it.
    pub principals: Vec<String>,
}

/// The phase a sign-off showed its signers (see [`Entry::SignoffShown`]).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ShownSignoff {
    pub phase: String,
    pub digest: String,
    pub lines: Vec<String>,
    pub roles: Vec<String>,
}

/// A process a dead lock holder left running.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct LeftoverProcess {
    pub pid: i32,
    /// Its program name as the kernel knows it (`/proc/<pid>/comm`; never its arguments, which
    /// may hold a secret).
    pub name: String,
    /// The last signal sent to it: `SIGINT`, `SIGTERM` or `SIGKILL`.
    pub signal: String,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum GateKind {
    Confirm,
    /// A confirm that needs a word typed (`type_to_confirm`).
    SevereConfirm,
    Checklist,
    Signoff,
}

impl GateKind {
    pub fn label(self) -> &'static str {
        match self {
            GateKind::Confirm => "confirm",
            GateKind::SevereConfirm => "severe confirm",
            GateKind::Checklist => "checklist",
            GateKind::Signoff => "sign-off",
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum GateVerdict {
    Passed,
    Refused,
    DeadlinePassed,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum How {
    /// Answered at the terminal.
    Interactive,
    /// Given in advance on the command line (`--yes`, `--approve`, `--check`, `--signoff`).
    PreApproved,
    /// Signed with the signer's SSH key (`rollout approve`, `--signoff-file`).
    Signed,
}

/// One answer to one question of a gate.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct GateAnswer {
    /// What was asked: the question, the checklist item, or the role signing.
    pub subject: String,
    /// `yes`, `no`, the word typed, `ticked`, `open`, `signed`, `refused: <why>`, or
    /// `dismissed` / `no answer` when nobody answered.
    pub answer: String,
    /// The name given: the signer's for a sign-off, the operator's otherwise; for a signed
    /// approval, the principal its key belongs to.
    pub name: String,
    pub how: How,
    /// RFC 3339, UTC.
    pub at: String,
    /// A signed approval: its signature, its key and whose it is.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub signed: Option<super::approval::Signed>,
}

#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum StepStatus {
    #[default]
    Ok,
    Failed,
    TimedOut,
    Interrupted,
    /// Failed, but `continue_on_error` let the run go on.
    FailedIgnored,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum PhaseStatus {
    Succeeded,
    Failed,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum RunStatus {
    Succeeded,
    Failed,
    Aborted,
    /// Failed, and every rollback step succeeded.
    RolledBack,
    /// Failed, and the rollback did not undo everything.
    RollbackIncomplete,
}

/// Where a run stands, folded from its journal.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case", tag = "state")]
pub enum Standing {
    Running,
    Paused {
        reason: String,
        since: String,
        waiting_for_approval: bool,
    },
    Finished {
        status: RunStatus,
        reason: Option<String>,
        at: String,
    },
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct WaitingGate {
    pub step: String,
    pub kind: GateKind,
    pub message: String,
    pub satisfy_with: Vec<String>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct AnsweredGate {
    pub step: String,
    pub kind: GateKind,
    pub outcome: GateVerdict,
    pub how: How,
    pub summary: String,
    pub at: String,
}

#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct RollbackState {
    pub reason: String,
    pub phases: Vec<String>,
    pub started: bool,
    /// Phases whose rollback steps are over.
    pub phases_done: Vec<String>,
    /// `Some(complete)` once the rollback is over.
    pub finished: Option<bool>,
}

#[derive(Debug, Clone, Default)]
pub struct RunState {
    pub run_id: String,
    pub runbook: String,
    pub runbook_name: String,
    pub digest: String,
    pub operator: String,
    /// The rollout version that started the run.
    pub version: String,
    pub started_at: String,
    pub vars: BTreeMap<String, serde_json::Value>,
    /// Steps that finished (ok, or failed with `continue_on_error`) or were skipped: never rerun.
    pub done: BTreeMap<String, StepStatus>,
    pub skipped: Vec<String>,
    /// Last failed attempt per step (not done: a resume runs it again).
    pub failed: BTreeMap<String, String>,
    pub captures: BTreeMap<String, String>,
    pub phases_done: Vec<String>,
    /// Phases that started, in order: what a rollback undoes.
    pub phases_started: Vec<String>,
    /// The rollback this run is in (or owes), if any.
    pub rollback: Option<RollbackState>,
    /// A step that started and has no result: it was in flight when rollout stopped.
    pub in_doubt: Option<(String, String)>,
    pub resolved_in_doubt: BTreeMap<String, String>,
    pub current: Option<(String, String)>,
    pub standing: Option<Standing>,
    /// The gate the run stopped at, while it waits for an approval.
    pub waiting_gate: Option<WaitingGate>,
    /// When each gate first stopped the run to wait: a deadline counts from then, across
    /// resumes.
    pub gate_first_waiting: BTreeMap<String, String>,
    /// Every gate answered so far, oldest first.
    pub gate_answers: Vec<AnsweredGate>,
    /// What each sign-off that takes signed approvals last showed its signers, by step id.
    pub signoffs_shown: BTreeMap<String, ShownSignoff>,
    /// The keys of everyone who operated the run so far (see [`Entry::OperatorKeys`]).
    pub operator_keys: Vec<OperatorKey>,
    pub last_at: String,
    /// The hash of the last `sealed` record, if any.
    pub last_seal: Option<String>,
    /// Whether the log ends with a seal.
    pub sealed: bool,
    /// The first record after the last seal (1 when there is none).
    pub unsealed_from: u64,
    /// What happened when, for reports: kept only by [`RunState::fold_with_timeline`] (boxed:
    /// the run state travels by value through the session's futures). The run loop and the
    /// commands that only need where a run stands leave it out, so that a long run's state
    /// does not grow with every step's output.
    pub timeline: Option<Box<Timeline>>,
}

impl RunState {
    /// Where a run stands after `records`.
    pub fn fold(records: &[Record]) -> RunState {
        let mut s = RunState::default();
        for r in records {
            s.apply(r);
        }
        s
    }

    /// [`RunState::fold`], keeping the run's [`Timeline`] too (what reports show).
    pub fn fold_with_timeline(records: &[Record]) -> RunState {
        let mut s = RunState {
            timeline: Some(Box::default()),
            ..RunState::default()
        };
        for r in records {
            s.apply(r);
        }
        s
    }

    /// Reads one record: the one place that says what each type of record means, both for
    /// where the run stands (what `status` and a resume read) and for its [`Timeline`] (what
    /// reports show). The match names every type and has no `_` arm (denied below), so a new
    /// type of record does not build until it is given its meaning here.
    #[deny(clippy::wildcard_enum_match_arm)]
    pub fn apply(&mut self, r: &Record) {
        // Without a timeline to keep, its part of each arm writes to one thrown away.
        let mut scratch;
        let t = match self.timeline.as_deref_mut() {
            Some(t) => t,
            None => {
                scratch = Timeline::default();
                &mut scratch
            }
        };
        if t.opened.is_none() {
            let envelope = Envelope {
                run: r.run.clone(),
                who: r.who.clone(),
                runbook_digest: r.runbook_digest.clone(),
            };
            t.opened = Some((r.at.clone(), envelope));
        }
        self.last_at.clone_from(&r.at);
        self.sealed = matches!(r.event, Entry::Sealed { .. });
        if self.sealed {
            self.last_seal = Some(r.hash.clone());
            self.unsealed_from = r.seq + 1;
        } else if self.unsealed_from == 0 {
            self.unsealed_from = 1;
        }
        let at = &r.at;
        match &r.event {
            Entry::RunStarted {
                run_id,
                runbook,
                runbook_name,
                digest,
                operator,
                vars,
                version,
            } => {
                self.run_id.clone_from(run_id);
                self.runbook.clone_from(runbook);
                self.runbook_name.clone_from(runbook_name);
                self.digest.clone_from(digest);
                self.operator.clone_from(operator);
                self.vars.clone_from(vars);
                self.version.clone_from(version);
                self.started_at.clone_from(&r.at);
                self.standing = Some(Standing::Running);
                t.sessions.push(Session::of("started", operator, r));
            }
            Entry::RunResumed {
                operator, digest, ..
            } => {
                self.digest.clone_from(digest);
                self.standing = Some(Standing::Running);
                self.waiting_gate = None;
                t.sessions.push(Session::of("resumed", operator, r));
                t.resume(at, operator);
            }
            Entry::PhaseStarted { phase } => {
                if !self.phases_started.contains(phase) {
                    self.phases_started.push(phase.clone());
                }
                t.start_phase(phase, at);
            }
            Entry::RollbackRequested { reason, phases } => {
                self.rollback = Some(RollbackState {
                    reason: reason.clone(),
                    phases: phases.clone(),
                    ..RollbackState::default()
                });
                self.standing = Some(Standing::Running);
                t.rollback = Some(Rollback::requested(at, reason, phases));
            }
            Entry::RollbackStarted { phases } => {
                let rb = self.rollback.get_or_insert_with(RollbackState::default);
                rb.phases.clone_from(phases);
                rb.started = true;
                let rb = t
                    .rollback
                    .get_or_insert_with(|| Rollback::requested(at, "", &[]));
                rb.phases.clone_from(phases);
                rb.started_at = Some(at.clone());
                t.in_rollback = true;
            }
            Entry::PhaseRolledBack { phase, complete } => {
                if let Some(rb) = &mut self.rollback {
                    rb.phases_done.push(phase.clone());
                }
                if let Some(rb) = &mut t.rollback {
                    rb.phases_rolled_back.push((phase.clone(), *complete));
                }
                let status = if *complete {
                    "rolled_back"
                } else {
                    "not_rolled_back"
                };
                t.close_phase(phase, at, status);
            }
            Entry::RollbackFinished {
                complete,
                undone,
                not_undone,
            } => {
                if let Some(rb) = &mut self.rollback {
                    rb.finished = Some(*complete);
                }
                if let Some(rb) = &mut t.rollback {
                    rb.finished_at = Some(at.clone());
                    rb.complete = Some(*complete);
                    rb.undone.clone_from(undone);
                    rb.not_undone.clone_from(not_undone);
                }
                t.in_rollback = false;
            }
            Entry::Measurement {
                step,
                verdict,
                values,
                detail,
                condition,
            } => {
                let started = if self.started_at.is_empty() {
                    t.opened.as_ref().map_or("", |(at, _)| at.as_str())
                } else {
                    &self.started_at
                };
                let offset_ms = between(started, at);
                let c = t.check(step);
                if c.condition.is_none() {
                    c.condition.clone_from(condition);
                }
                for (series, _) in values {
                    if !c.series.contains(series) {
                        c.series.push(series.clone());
                    }
                }
                c.measurements.push(Measurement {
                    at: at.clone(),
                    offset_ms,
                    verdict: verdict.clone(),
                    values: values.clone(),
                    detail: detail.clone(),
                });
            }
            Entry::AbortTripped {
                phase,
                step,
                criterion,
                action,
                values,
            } => t.aborts.push(AbortTrip {
                at: at.clone(),
                phase: phase.clone(),
                step: step.clone(),
                criterion: criterion.clone(),
                action: action.clone(),
                values: values.clone(),
            }),
            Entry::SealRecovered { operator, .. } => {
                t.sessions.push(Session::of("sealed", operator, r));
            }
            Entry::OutsideWindow {
                reason,
                window,
                local_time,
            } => t.outside_window.push(OutsideWindow {
                at: r.at.clone(),
                local_time: local_time.clone(),
                window: window.clone(),
                reason: reason.clone(),
                operator: r.who.operator.clone(),
            }),
            Entry::PhaseOverBudget {
                phase,
                max_duration,
                action,
            } => t.over_budget.push(OverBudget {
                at: r.at.clone(),
                phase: phase.clone(),
                max_duration: max_duration.clone(),
                action: action.clone(),
            }),
            // In the log for the audit (`rollout log` shows them); neither the state nor the
            // timeline depends on them.
            Entry::LockAcquired { .. }
            | Entry::LockReleased { .. }
            | Entry::LeftoversStopped { .. }
            | Entry::JournalRecovered { .. }
            | Entry::NotificationFailed { .. }
            | Entry::Sealed { .. } => {}
            Entry::StepStarted {
                phase,
                step,
                attempt,
                command,
            } => {
                self.in_doubt = Some((phase.clone(), step.clone()));
                self.current = Some((phase.clone(), step.clone()));
                let s = t.start_step(phase, step, *attempt, at);
                s.status = "in_flight".into();
                s.command.clone_from(command);
            }
            Entry::StepFinished {
                phase,
                step,
                attempt,
                status,
                exit_code,
                duration_ms,
                reason,
                output_tail,
                capture,
                location,
            } => {
                self.in_doubt = None;
                match status {
                    StepStatus::Ok | StepStatus::FailedIgnored => {
                        self.done.insert(step.clone(), *status);
                        self.failed.remove(step);
                        if let Some((name, value)) = capture {
                            self.captures.insert(name.clone(), value.clone());
                        }
                    }
                    StepStatus::Failed | StepStatus::TimedOut | StepStatus::Interrupted => {
                        self.failed
                            .insert(step.clone(), reason.clone().unwrap_or_default());
                    }
                }
                let s = t.finish_step(phase, step, *attempt, at, *duration_ms);
                s.status = name(status);
                s.exit_code = *exit_code;
                s.reason.clone_from(reason);
                s.output_tail.clone_from(output_tail);
                s.location.clone_from(location);
                if let Some(c) = t.checks.iter_mut().find(|c| c.step == *step) {
                    c.status = name(status);
                }
            }
            Entry::StepSkipped {
                phase,
                step,
                reason,
            } => {
                self.done.insert(step.clone(), StepStatus::Ok);
                self.skipped.push(step.clone());
                self.current = Some((phase.clone(), step.clone()));
                let s = t.start_step(phase, step, 0, at);
                s.ended_at = Some(at.clone());
                s.duration_ms = Some(0);
                s.status = "skipped".into();
                s.reason = Some(reason.clone());
            }
            Entry::InDoubtResolved { step, decision } => {
                self.in_doubt = None;
                self.resolved_in_doubt
                    .insert(step.clone(), decision.clone());
                if decision == "skip" {
                    self.done.insert(step.clone(), StepStatus::Ok);
                    self.skipped.push(step.clone());
                }
                t.resolve_in_doubt(step, decision, at);
            }
            Entry::PhaseFinished { phase, status } => {
                if *status == PhaseStatus::Succeeded {
                    self.phases_done.push(phase.clone());
                }
                t.close_phase(phase, at, &name(status));
            }
            Entry::Paused {
                reason,
                waiting_for_approval,
                phase,
                step,
            } => {
                if let (Some(p), Some(s)) = (phase, step) {
                    self.current = Some((p.clone(), s.clone()));
                }
                self.standing = Some(Standing::Paused {
                    reason: reason.clone(),
                    since: r.at.clone(),
                    waiting_for_approval: *waiting_for_approval,
                });
                t.pauses.push(Pause {
                    at: at.clone(),
                    phase: phase.clone(),
                    step: step.clone(),
                    reason: reason.clone(),
                    waiting_for_approval: *waiting_for_approval,
                    resumed_at: None,
                    resumed_by: None,
                });
                t.pause_phases(at);
            }
            Entry::RunFinished { status, reason } => {
                self.waiting_gate = None;
                self.standing = Some(Standing::Finished {
                    status: *status,
                    reason: reason.clone(),
                    at: r.at.clone(),
                });
                t.finished_at = Some(at.clone());
            }
            Entry::GateAnswered {
                phase,
                step,
                kind,
                outcome,
                how,
                operator,
                os_user: _,
                answers,
                digest,
                summary,
            } => {
                self.waiting_gate = None;
                self.gate_answers.push(AnsweredGate {
                    step: step.clone(),
                    kind: *kind,
                    outcome: *outcome,
                    how: *how,
                    summary: summary.clone(),
                    at: r.at.clone(),
                });
                t.approvals.push(Approval {
                    at: at.clone(),
                    phase: phase.clone(),
                    step: step.clone(),
                    kind: *kind,
                    outcome: *outcome,
                    how: *how,
                    operator: operator.clone(),
                    summary: summary.clone(),
                    answers: answers.clone(),
                    digest: digest.clone(),
                });
            }
            Entry::GateWaiting {
                phase,
                step,
                kind,
                message,
                satisfy_with,
            } => {
                self.current = Some((phase.clone(), step.clone()));
                self.gate_first_waiting
                    .entry(step.clone())
                    .or_insert_with(|| r.at.clone());
                self.waiting_gate = Some(WaitingGate {
                    step: step.clone(),
                    kind: *kind,
                    message: message.clone(),
                    satisfy_with: satisfy_with.clone(),
                });
                t.waits.push(GateWait {
                    at: at.clone(),
                    phase: phase.clone(),
                    step: step.clone(),
                    kind: *kind,
                    message: message.clone(),
                    satisfy_with: satisfy_with.clone(),
                });
            }
            Entry::OperatorKeys { keys } => {
                for k in keys {
                    if !self.operator_keys.contains(k) {
                        self.operator_keys.push(k.clone());
                    }
                }
            }
            Entry::SignoffShown {
                phase,
                step,
                digest,
                lines,
                roles,
            } => {
                self.current = Some((phase.clone(), step.clone()));
                self.signoffs_shown.insert(
                    step.clone(),
                    ShownSignoff {
                        phase: phase.clone(),
                        digest: digest.clone(),
                        lines: lines.clone(),
                        roles: roles.clone(),
                    },
                );
            }
        }
    }

    pub fn is_finished(&self) -> bool {
        matches!(self.standing, Some(Standing::Finished { .. }))
    }
}

/// How a report of a rollback labels one of its `undone` items: `skipped` for a step whose
/// `when` was false (it undid nothing), `nothing to undo` for a phase without rollback steps,
/// `covered` for a phase another phase's rollback undid (`rollback_covers`), else `undone`.
pub fn undone_label(item: &str) -> &'static str {
    if item.ends_with(": skipped") {
        "skipped"
    } else if item.ends_with("nothing to undo (no rollback steps)") {
        "nothing to undo"
    } else if item.contains(": covered by the rollback of `") {
        "covered"
    } else {
        "undone"
    }
}
