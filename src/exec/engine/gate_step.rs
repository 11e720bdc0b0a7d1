//! A human-gate step inside the run loop: asks it through `gates`, writes what was answered to
//! the journal, stops the run where nobody can answer, and applies the gate's deadline. For
//! sign-offs it also renders the phase the signers are shown and the digest that binds them.

use std::time::{Duration, Instant};

use super::{Attempt, Engine, RunEnd};
use crate::exec::event::{Event, Level};
use crate::exec::gates::{self, Answered, Gate, GateOutcome, Needed, Prompter, SignedIntake, Who};
use crate::plan::{Action, PlanStep};
use crate::runbook::model::{DeadlineAction, Phase, Step};
use crate::state::record::GateKind;
use crate::state::record::{GateVerdict, StepStatus};
use crate::state::{Entry, StoreError};

impl Engine<'_> {
    /// The lines that show signers the phase's steps as rendered for this run (secrets masked,
    /// control characters escaped), and the digest that binds a sign-off to them: the SHA-256
    /// of exactly those lines, so what is signed is what the screen showed. They are laid out
    /// as `rollout plan` shows the phase (see [`crate::plan::TextLayout::signed_lines`]).
    pub(super) fn phase_content(&self, phase: &Phase) -> PhaseContent {
        let steps = phase
            .steps
            .iter()
            .chain(&phase.gate)
            .map(|s| {
                self.shown
                    .step(Some(phase), s)
                    .map_err(|e| (e.step, e.error.message))
            })
            .collect();
        let mut lines = self.layout.signed_lines(&phase.title, steps);
        let mut shown = lines.join("\n");
        shown.push('\n');
        let digest = crate::runbook::source::digest_of(shown.as_bytes());
        lines.insert(
            0,
            format!(
                "signing phase `{}` as rendered for this run ({digest}):",
                phase.id.get_ref()
            ),
        );
        PhaseContent { digest, lines }
    }

    /// Asks a human gate, records the answer, and applies its deadline's outcome.
    pub(super) async fn gate(
        &mut self,
        phase: &Phase,
        step: &Step,
        shown: &PlanStep,
        digest: Option<&str>,
        started: Instant,
    ) -> Result<Attempt, StoreError> {
        let id = step.id.get_ref().clone();
        let phase_id = phase.id.get_ref().clone();
        let who = Who {
            operator: self.options.operator.clone(),
            os_user: self.options.os_user.clone(),
            started_by: self.state.operator.clone(),
        };
        // A deadline counts from when the gate first stopped the run to wait, not from each
        // resume: a late approval cannot beat an `abort` or `rollback` deadline.
        let written = shown.deadline.as_ref().map(|d| (d.after, d.then));
        let mut deadline = written.map(|(d, _)| d.0);
        if let (Some((d, then)), Some(first)) = (written, self.state.gate_first_waiting.get(&id)) {
            let waited = humantime::parse_rfc3339(first)
                .ok()
                .and_then(|at| std::time::SystemTime::now().duration_since(at).ok())
                .unwrap_or_default();
            if waited >= d.0 && then != DeadlineAction::Hold {
                let why = format!(
                    "nobody answered `{id}` within its deadline of {d}; it has waited since {first}"
                );
                let answered = Answered {
                    kind: kind_of(&shown.action),
                    answers: Vec::new(),
                    summary: why.clone(),
                };
                self.record_answer(
                    &phase_id,
                    &id,
                    GateVerdict::DeadlinePassed,
                    &answered,
                    digest,
                )
                .await?;
                let (reason, end) = deadline_end(id, &why, then);
                return Ok(Attempt {
                    status: StepStatus::Failed,
                    reason: Some(reason),
                    end: Some(end),
                    duration: started.elapsed(),
                    ..Attempt::default()
                });
            }
            deadline = Some(d.0.saturating_sub(waited));
        }
        let outcome = if let (Action::Signoff { .. }, Some(digest), true) =
            (&shown.action, digest, self.options.signatures.in_play())
        {
            self.signed_signoff(phase, &id, &shown.action, digest, deadline, who)
                .await?
        } else {
            self.evaluate_gate(&id, &shown.action, deadline, digest, None, who)
                .await
        };
        let duration = started.elapsed();
        let mut a = Attempt {
            duration,
            ..Attempt::default()
        };
        match outcome {
            GateOutcome::Passed(answered) => {
                self.record_answer(&phase_id, &id, GateVerdict::Passed, &answered, digest)
                    .await?;
                a.reason = Some(answered.summary);
            }
            GateOutcome::Refused(answered) => {
                self.record_answer(&phase_id, &id, GateVerdict::Refused, &answered, digest)
                    .await?;
                a.status = StepStatus::Failed;
                a.reason = Some(answered.summary);
            }
            GateOutcome::Waiting(needed) => {
                let reason = needed.message.clone();
                self.wait_at_gate(&phase_id, &id, needed, &reason).await?;
                a.end = Some(RunEnd::WaitingForApproval { reason });
            }
            GateOutcome::Stopped => {
                // The phase loop records the tripped criterion and applies its action.
                a.status = StepStatus::Failed;
                a.reason = Some("stopped: an abort criterion tripped".into());
                a.end = Some(RunEnd::Failed {
                    step: id.clone(),
                    reason: "an abort criterion tripped".into(),
                    check: true,
                });
            }
            GateOutcome::Interrupted(signal) => {
                a.status = StepStatus::Interrupted;
                a.end = Some(RunEnd::Interrupted { signal });
            }
            GateOutcome::DeadlinePassed(answered, needed) => {
                self.record_answer(
                    &phase_id,
                    &id,
                    GateVerdict::DeadlinePassed,
                    &answered,
                    digest,
                )
                .await?;
                let (after, then) = written
                    .map_or((String::new(), DeadlineAction::Hold), |(d, t)| {
                        (d.to_string(), t)
                    });
                let why = format!("nobody answered `{id}` within its deadline of {after}");
                match then {
                    DeadlineAction::Abort | DeadlineAction::Rollback => {
                        let (reason, end) = deadline_end(id, &why, then);
                        a.status = StepStatus::Failed;
                        a.reason = Some(reason);
                        a.end = Some(end);
                    }
                    DeadlineAction::Hold => {
                        let reason = format!(
                            "{why}; the gate holds (on_deadline = \"hold\"): {}",
                            needed.message
                        );
                        self.wait_at_gate(&phase_id, &id, needed, &reason).await?;
                        a.end = Some(RunEnd::WaitingForApproval { reason });
                    }
                }
            }
        }
        Ok(a)
    }

    /// A sign-off that takes signed approvals: shows (records) the phase its signers sign,
    /// then evaluates it with the approvals at hand. Where signatures are required and a
    /// person is at the terminal, nobody is asked for a name: the run waits, looking for new
    /// approvals (`rollout approve` delivers them to the run) until enough count, the deadline
    /// passes, an abort criterion trips or the operator interrupts.
    async fn signed_signoff(
        &mut self,
        phase: &Phase,
        id: &str,
        action: &Action,
        digest: &str,
        deadline: Option<Duration>,
        who: Who,
    ) -> Result<GateOutcome, StoreError> {
        let content = self.phase_content(phase);
        let roles = match action {
            Action::Signoff { roles, .. } => roles.iter().map(|r| r.role.clone()).collect(),
            _ => Vec::new(),
        };
        self.record(Entry::SignoffShown {
            phase: phase.id.get_ref().clone(),
            step: id.to_string(),
            digest: digest.to_string(),
            lines: content.lines[1..].to_vec(),
            roles,
        })
        .await?;
        let began = Instant::now();
        let mut told: Vec<String> = Vec::new();
        loop {
            let intake = self.signed_intake(phase, id, action, digest).await;
            let waits_here = intake.required && self.prompter.is_some();
            let outcome = self
                .evaluate_gate(
                    id,
                    action,
                    deadline,
                    Some(digest),
                    Some(intake.clone()),
                    who.clone(),
                )
                .await;
            let GateOutcome::Waiting(needed) = outcome else {
                return Ok(outcome);
            };
            if !waits_here {
                return Ok(GateOutcome::Waiting(needed));
            }
            if told.is_empty() {
                self.emit(&Event::Notice {
                    level: Level::Info,
                    message: format!(
                        "{} Waiting for them here (Ctrl-C pauses the run).",
                        needed.message
                    ),
                });
                told.push(String::new());
            }
            for why in &intake.refused {
                if !told.contains(why) {
                    self.emit(&Event::Notice {
                        level: Level::Warning,
                        message: format!("a signed approval does not count: {why}"),
                    });
                    told.push(why.clone());
                }
            }
            if deadline.is_some_and(|d| began.elapsed() >= d) {
                let answered = Answered {
                    kind: GateKind::Signoff,
                    answers: Vec::new(),
                    summary: format!(
                        "sign-off `{id}`: not enough signed approvals before the deadline"
                    ),
                };
                return Ok(GateOutcome::DeadlinePassed(answered, needed));
            }
            tokio::time::sleep(Duration::from_millis(200)).await;
        }
    }

    /// The signed approvals at hand for sign-off `id`: delivered to the run, or given with
    /// `--signoff-file`, each judged (see [`crate::exec::signatures`]).
    async fn signed_intake(
        &mut self,
        phase: &Phase,
        id: &str,
        action: &Action,
        digest: &str,
    ) -> SignedIntake {
        use crate::exec::signatures::{AtGate, Judged, judge};
        let policy = self.options.signatures.clone();
        let mut intake = SignedIntake {
            required: policy.required,
            how_to_sign: format!("rollout approve {} --gate {id}", self.run_id),
            ..SignedIntake::default()
        };
        let mut delivered = self.journal.approvals().await.unwrap_or_default();
        delivered.extend(self.options.approvals.signoff_files.iter().filter_map(|f| {
            crate::state::approval::read_file(f)
                .transpose()
                .or_else(|| {
                    Some(Err(format!(
                        "`{}` is a request that nobody has signed yet",
                        f.display()
                    )))
                })
        }));
        let Some(allowed) = policy.allowed_signers.as_deref() else {
            if !delivered.is_empty() {
                intake.refused.push(
                    "no allowed-signers file is named (`allowed_signers` under `[runbook]`, or in the user config), so no signature can be checked".into(),
                );
            }
            return intake;
        };
        let Action::Signoff {
            roles,
            exclude_operator,
            valid_for,
            ..
        } = action
        else {
            return intake;
        };
        // The runbook this session executes (a resume with `--allow-changed` runs a changed one).
        let runbook_digest = self.loaded.source.digest();
        let at = AtGate {
            run_id: &self.run_id,
            runbook_digest,
            gate: id,
            phase: phase.id.get_ref(),
            phase_digest: digest,
            roles,
            valid_for: valid_for
                .as_deref()
                .and_then(|v| humantime::parse_duration(v).ok()),
            now: std::time::SystemTime::now(),
            allowed_signers: allowed,
            exclude_operator: *exclude_operator,
            operator_keys: &self.options.operator_keys,
        };
        // Each check is a run or two of `ssh-keygen`, a few milliseconds.
        let judged: Vec<Judged> = delivered
            .iter()
            .map(|d| match d {
                Ok(d) => judge(&at, d),
                Err(e) => Judged::Refused(e.clone()),
            })
            .collect();
        for j in judged {
            match j {
                Judged::Counts(v) => intake.verified.push(v),
                Judged::OtherGate => {}
                Judged::Refused(why) => intake.refused.push(why),
            }
        }
        intake
    }

    /// Evaluates the gate: with the approvals given, and where a person can answer, with the
    /// questions asked on a blocking thread (see [`Engine::ask`]).
    async fn evaluate_gate(
        &mut self,
        id: &str,
        action: &Action,
        deadline: Option<Duration>,
        digest: Option<&str>,
        signed: Option<SignedIntake>,
        who: Who,
    ) -> GateOutcome {
        let approvals = self.options.approvals.clone();
        let interrupts = self.interrupts.clone();
        let evaluate = {
            let (id, action) = (id.to_string(), action.clone());
            let digest = digest.map(String::from);
            let signed = signed.clone();
            let (approvals, who, interrupts) = (approvals.clone(), who.clone(), interrupts.clone());
            move |prompter: Option<&mut dyn Prompter>| {
                let gate = Gate {
                    id: &id,
                    action: &action,
                    deadline,
                    digest: digest.as_deref(),
                    signed: signed.as_ref(),
                };
                gates::evaluate(&gate, &approvals, &who, prompter, &interrupts)
            }
        };
        if self.prompter.is_none() {
            return evaluate(None);
        }
        let asked = self.ask(move |p| evaluate(Some(p))).await;
        asked.unwrap_or_else(|| {
            // The prompter is gone (it failed): as where nobody can answer.
            let gate = Gate {
                id,
                action,
                deadline,
                digest,
                signed: signed.as_ref(),
            };
            gates::evaluate(&gate, &approvals, &who, None, &interrupts)
        })
    }

    async fn record_answer(
        &mut self,
        phase: &str,
        step: &str,
        outcome: GateVerdict,
        answered: &Answered,
        digest: Option<&str>,
    ) -> Result<(), StoreError> {
        self.record(Entry::GateAnswered {
            phase: phase.to_string(),
            step: step.to_string(),
            kind: answered.kind,
            outcome,
            how: answered.how(),
            operator: self.options.operator.clone(),
            os_user: self.options.os_user.clone(),
            answers: answered.answers.clone(),
            digest: digest.map(String::from),
            summary: self.redact(&answered.summary),
        })
        .await
    }

    /// Records that the run stops at a gate, what would satisfy it, and that it waits.
    async fn wait_at_gate(
        &mut self,
        phase: &str,
        step: &str,
        needed: Needed,
        reason: &str,
    ) -> Result<(), StoreError> {
        self.record(Entry::GateWaiting {
            phase: phase.to_string(),
            step: step.to_string(),
            kind: needed.kind,
            message: self.redact(&needed.message),
            satisfy_with: needed.satisfy_with,
        })
        .await?;
        self.record(Entry::Paused {
            phase: Some(phase.to_string()),
            step: Some(step.to_string()),
            reason: self.redact(reason),
            waiting_for_approval: true,
        })
        .await
    }
}

pub(super) struct PhaseContent {
    pub(super) digest: String,
    pub(super) lines: Vec<String>,
}

/// What an expired `abort` or `rollback` deadline does to the run.
fn deadline_end(step: String, why: &str, then: DeadlineAction) -> (String, RunEnd) {
    match then {
        DeadlineAction::Rollback => {
            let reason = format!("{why} (on_deadline = \"rollback\")");
            (reason.clone(), RunEnd::RollbackRequested { step, reason })
        }
        _ => {
            let reason = format!("{why} (on_deadline = \"abort\")");
            (
                reason.clone(),
                RunEnd::Failed {
                    step,
                    reason,
                    check: false,
                },
            )
        }
    }
}

fn kind_of(action: &crate::plan::Action) -> crate::state::record::GateKind {
    use crate::plan::Action;
    use crate::state::record::GateKind;
    match action {
        Action::Confirm {
            type_to_confirm: Some(_),
            ..
        } => GateKind::SevereConfirm,
        Action::Checklist { .. } => GateKind::Checklist,
        Action::Signoff { .. } => GateKind::Signoff,
        _ => GateKind::Confirm,
    }
}
