//! A human-gate step inside the run loop: asks it through `gates`, writes what was answered to
//! the journal, stops the run where nobody can answer, and applies the gate's deadline. For
//! sign-offs it also renders the phase the signers are shown and the digest that binds them.

use std::time::{Duration, Instant};

use super::{Attempt, Engine, RunEnd};
use crate::exec::gates::{self, Answered, Gate, GateOutcome, Needed, Prompter, SignedIntake, Who};
use crate::plan::{Action, PlanStep};
use crate::runbook::model::{DeadlineAction, Phase, Step};
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

    /// Evaluates the gate: with the approvals given, and where a person can answer, with the
    /// questions asked on a blocking thread (see [`Engine::ask`]).
    pub(super) async fn evaluate_gate(
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
