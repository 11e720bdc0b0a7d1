//! A sign-off that takes approvals signed with the approvers' SSH keys: records the phase as
//! its signers are shown it (what `rollout approve` signs), gathers the approvals delivered to
//! the run and given with `--signoff-file`, has each judged (see
//! [`crate::exec::signatures`]), and where a person is at the terminal and typed names do not
//! count, waits for more until enough count.

use std::time::{Duration, Instant};

use super::Engine;
use crate::exec::event::{Event, Level};
use crate::exec::gates::{Answered, GateOutcome, SignedIntake, Who};
use crate::plan::Action;
use crate::runbook::model::Phase;
use crate::state::record::GateKind;
use crate::state::{Entry, StoreError};

impl Engine<'_> {
    /// A sign-off that takes signed approvals: shows (records) the phase its signers sign,
    /// then evaluates it with the approvals at hand. Where signatures are required and a
    /// person is at the terminal, nobody is asked for a name: the run waits, looking for new
    /// approvals (`rollout approve` delivers them to the run) until enough count, the deadline
    /// passes, an abort criterion trips or the operator interrupts. Where nobody can answer it
    /// waits so only with `--wait-for-approvals`, and stops waiting for approval after that long.
    pub(super) async fn signed_signoff(
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
            // At a terminal where typed names do not count; or where nobody can answer, for as
            // long as `--wait-for-approvals` says.
            let waits_here = intake.required && self.prompter.is_some();
            let unattended = self
                .options
                .wait_for_approvals
                .filter(|_| self.prompter.is_none());
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
            if !waits_here && unattended.is_none_or(|w| began.elapsed() >= w) {
                return Ok(GateOutcome::Waiting(needed));
            }
            if told.is_empty() {
                let how = match unattended {
                    Some(w) => format!(
                        "Waiting up to {} for them (`--wait-for-approvals`).",
                        humantime::format_duration(w)
                    ),
                    None => "Waiting for them here (Ctrl-C pauses the run).".into(),
                };
                self.emit(&Event::Notice {
                    level: Level::Info,
                    message: format!("{} {how}", needed.message),
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
        // This session's operator's keys, and those of everyone who operated the run before.
        let mut operator_keys = self.state.operator_keys.clone();
        operator_keys.extend(self.options.operator_keys.iter().cloned());
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
            operator_keys: &operator_keys,
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
}
