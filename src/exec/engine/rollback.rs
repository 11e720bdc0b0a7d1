//! Rolling a run back: the phases that ran, last first, each through its own rollback steps,
//! after showing the plan and getting a confirmation. Rollback steps run like any step (journal,
//! in-doubt handling, gates, retries), so an interrupted rollback resumes where it stopped.
//! A failing rollback step stops the rollback unless it has `continue_on_error`; the report
//! then says exactly what was and was not undone.

use super::{Engine, RunEnd};
use crate::exec::event::{Event, Level, RollbackPhase};
use crate::exec::gates::NoAnswer;
use crate::runbook::model::Runbook;
use crate::runbook::model::{FailureAction, Phase, Step};
use crate::state::StoreError;
use crate::state::record::RunState;
use crate::state::record::{Entry, GateAnswer, GateKind, GateVerdict, How, StepStatus};

pub use crate::plan::rollback::RUNBOOK_ROLLBACK;

/// A stand-in phase for the runbook's own rollback section.
fn runbook_phase() -> Phase {
    Phase {
        id: toml::Spanned::new(0..0, RUNBOOK_ROLLBACK.to_string()),
        title: "runbook rollback".into(),
        description: None,
        on_failure: FailureAction::Abort,
        steps: Vec::new(),
        gate: Vec::new(),
        abort_when: Vec::new(),
        skip_abort_when: Vec::new(),
        max_duration: None,
        rollback: Vec::new(),
        rollback_covers: Vec::new(),
        span: 0..0,
    }
}

impl<'a> Engine<'a> {
    /// The phases a rollback after a failure undoes: every phase that started, the last first
    /// (see [`phases_to_roll_back`]).
    pub(super) fn rollback_phases(&self) -> Vec<String> {
        phases_to_roll_back(&self.state, &self.loaded.runbook, None).unwrap_or_default()
    }

    fn rollback_steps(&self, phase: &str) -> Option<(Option<&'a Phase>, &'a [Step])> {
        let loaded: &'a crate::runbook::Loaded = self.loaded;
        if phase == RUNBOOK_ROLLBACK {
            return Some((None, &loaded.runbook.rollback));
        }
        loaded
            .runbook
            .phases
            .iter()
            .find(|p| p.id.get_ref() == phase)
            .map(|p| (Some(p), p.rollback.as_slice()))
    }

    /// The rollback as people see it before it starts: each phase's steps, rendered as
    /// `rollout rollback --dry-run` shows them.
    fn rollback_plan(&mut self, phases: &[String]) -> Vec<RollbackPhase> {
        crate::plan::rollback::view(&mut self.shown, phases, &[])
            .into_iter()
            .map(|v| RollbackPhase {
                phase: v.id,
                title: v.title,
                covered_by: v.covered_by,
                steps: v
                    .steps
                    .into_iter()
                    .map(|s| match s {
                        Ok(shown) => {
                            let mut lines = super::display_lines(&shown.action);
                            if let Some(w) = &shown.when {
                                lines.insert(0, format!("when {} ({})", w.expression, w.verdict()));
                            }
                            (shown.id, lines)
                        }
                        Err(e) => (
                            e.step,
                            vec![format!("(cannot render: {})", e.error.message)],
                        ),
                    })
                    .collect(),
            })
            .collect()
    }

    /// The phase whose rollback covers `id` in this rollback of `phases`, if any.
    fn covering<'p>(&self, phases: &'p [String], id: &str) -> Option<&'p str> {
        let k = phases.iter().position(|p| p == id)?;
        crate::plan::rollback::covered_by(&self.loaded.runbook, phases)[k]
    }

    /// Rolls back `phases` (or goes on with the rollback this run is already in).
    pub(super) async fn roll_back(
        &mut self,
        reason: &str,
        phases: Vec<String>,
    ) -> Result<RunEnd, StoreError> {
        let owed = self
            .state
            .rollback
            .as_ref()
            .is_some_and(|rb| rb.finished.is_none());
        if !owed {
            self.record(Entry::RollbackRequested {
                reason: self.redact(reason),
                phases,
            })
            .await?;
        }
        let rb = self.state.rollback.clone().unwrap_or_default();
        let plan = self.rollback_plan(&rb.phases);
        self.emit(&Event::RollbackPlanned {
            reason: rb.reason.clone(),
            phases: plan,
            resumed: rb.started,
        });
        if !rb.started {
            if let Some(end) = self.confirm_rollback(&rb.phases).await? {
                return Ok(end);
            }
            self.record(Entry::RollbackStarted {
                phases: rb.phases.clone(),
            })
            .await?;
        }
        self.rolling_back = true;
        let result = self.roll_back_phases(&rb.phases, &rb.phases_done).await;
        self.rolling_back = false;
        if let Some(end) = result? {
            return Ok(end);
        }
        let (undone, not_undone) = self.rollback_report(&rb.phases);
        let complete = not_undone.is_empty();
        self.record(Entry::RollbackFinished {
            complete,
            undone: undone.clone(),
            not_undone: not_undone.clone(),
        })
        .await?;
        self.emit(&Event::RollbackFinished {
            complete,
            undone,
            not_undone,
        });
        Ok(RunEnd::RolledBack { complete })
    }

    /// Runs the rollback steps of each phase not rolled back yet. `Some(end)` when the run
    /// stops before the rollback is over (pause, interrupt, a gate waiting).
    async fn roll_back_phases(
        &mut self,
        phases: &[String],
        done: &[String],
    ) -> Result<Option<RunEnd>, StoreError> {
        let stand_in = runbook_phase();
        let total = phases.len();
        for (index, id) in phases.iter().enumerate() {
            if done.contains(id) {
                continue;
            }
            if let Some(by) = self.covering(phases, id) {
                self.emit(&Event::Notice {
                    level: Level::Info,
                    message: format!(
                        "phase `{id}` is covered by the rollback of `{by}`: its own rollback steps do not run"
                    ),
                });
                continue;
            }
            let Some((phase, steps)) = self.rollback_steps(id) else {
                self.emit(&Event::Notice {
                    level: Level::Warning,
                    message: format!("phase `{id}` is no longer in the runbook: not rolled back"),
                });
                continue;
            };
            let title = phase.map_or("runbook rollback", |p| p.title.as_str());
            let started = std::time::Instant::now();
            self.emit(&Event::PhaseStarted {
                index: index + 1,
                total,
                phase: id.clone(),
                title: format!("roll back: {title}"),
            });
            let owner = phase.unwrap_or(&stand_in);
            let mut stopped = None;
            for step in steps {
                if let Some(end) = self.step(owner, step).await? {
                    stopped = Some(end);
                    break;
                }
            }
            let complete = steps
                .iter()
                .all(|s| self.state.done.get(s.id.get_ref()) == Some(&StepStatus::Ok));
            let duration_ms = u64::try_from(started.elapsed().as_millis()).unwrap_or(u64::MAX);
            match stopped {
                None | Some(RunEnd::Failed { .. }) => {
                    self.record(Entry::PhaseRolledBack {
                        phase: id.clone(),
                        complete,
                    })
                    .await?;
                    self.emit(&Event::PhaseFinished {
                        phase: id.clone(),
                        succeeded: complete,
                        duration_ms,
                        stopped: false,
                    });
                    if stopped.is_some() {
                        // A rollback step failed for good: the rollback stops here.
                        return Ok(None);
                    }
                }
                Some(end) => {
                    self.emit(&Event::PhaseFinished {
                        phase: id.clone(),
                        succeeded: false,
                        duration_ms,
                        stopped: !matches!(end, RunEnd::Failed { .. }),
                    });
                    return Ok(Some(end));
                }
            }
        }
        Ok(None)
    }

    /// What the rollback undid and what it did not, step by step (`phase/step`).
    fn rollback_report(&self, phases: &[String]) -> (Vec<String>, Vec<String>) {
        let mut undone = Vec::new();
        let mut not_undone = Vec::new();
        for id in phases {
            if let Some(by) = self.covering(phases, id) {
                let whole = self.rollback_steps(by).is_some_and(|(_, steps)| {
                    steps
                        .iter()
                        .all(|s| self.state.done.get(s.id.get_ref()) == Some(&StepStatus::Ok))
                });
                if whole {
                    undone.push(format!("{id}: covered by the rollback of `{by}`"));
                } else {
                    not_undone.push(format!(
                        "{id}: covered by the rollback of `{by}`, which did not complete"
                    ));
                }
                continue;
            }
            let Some((_, steps)) = self.rollback_steps(id) else {
                not_undone.push(format!("{id}: the phase is no longer in the runbook"));
                continue;
            };
            if steps.is_empty() {
                undone.push(format!("{id}: nothing to undo (no rollback steps)"));
                continue;
            }
            for s in steps {
                let sid = s.id.get_ref();
                let name = format!("{id}/{sid}");
                match self.state.done.get(sid) {
                    Some(StepStatus::Ok) if self.state.skipped.contains(sid) => {
                        undone.push(format!("{name}: skipped"));
                    }
                    Some(StepStatus::Ok) => undone.push(name),
                    Some(_) => not_undone.push(format!(
                        "{name}: failed; the rollback went on (continue_on_error)"
                    )),
                    None => match self.state.failed.get(sid) {
                        Some(why) => not_undone.push(format!("{name}: failed: {why}")),
                        None => not_undone.push(format!("{name}: not run")),
                    },
                }
            }
        }
        (undone, not_undone)
    }

    /// Asks before the rollback starts, unless the runbook or `--yes` says not to. `Some(end)`
    /// when it does not start.
    async fn confirm_rollback(&mut self, phases: &[String]) -> Result<Option<RunEnd>, StoreError> {
        if !self.loaded.runbook.meta.confirm_rollback {
            return Ok(None);
        }
        let question = format!(
            "Roll back {} now ({})?",
            if phases.len() == 1 {
                "1 phase".to_string()
            } else {
                format!("{} phases", phases.len())
            },
            phases.join(", ")
        );
        let answer = if self.options.approvals.yes {
            Some((true, "yes (--yes)".to_string(), How::PreApproved))
        } else {
            // Not bound by the deadline of a gate that may have led here.
            let asked = question.clone();
            let reply = self
                .ask(move |p| {
                    p.set_deadline(None);
                    p.confirm(&asked)
                })
                .await;
            match reply {
                Some(Ok(yes)) => {
                    Some((yes, if yes { "yes" } else { "no" }.into(), How::Interactive))
                }
                Some(Err(NoAnswer::Interrupted(signal))) => {
                    return Ok(Some(RunEnd::Interrupted { signal }));
                }
                Some(Err(NoAnswer::Dismissed)) => {
                    Some((false, "dismissed".into(), How::Interactive))
                }
                // The terminal cannot take an answer any more: like having no terminal.
                Some(Err(_)) | None => None,
            }
        };
        let Some((yes, said, how)) = answer else {
            let reason = "the rollback needs a confirmation and nobody here can give it: resume with `--yes` to roll back".to_string();
            self.record(Entry::Paused {
                phase: None,
                step: None,
                reason: reason.clone(),
                waiting_for_approval: true,
            })
            .await?;
            return Ok(Some(RunEnd::RollbackNotDone {
                reason,
                finished: false,
            }));
        };
        let operator = self.options.operator.clone();
        self.record(Entry::GateAnswered {
            phase: RUNBOOK_ROLLBACK.into(),
            step: "rollback".into(),
            kind: GateKind::Confirm,
            outcome: if yes {
                GateVerdict::Passed
            } else {
                GateVerdict::Refused
            },
            how,
            operator: operator.clone(),
            os_user: self.options.os_user.clone(),
            answers: vec![GateAnswer {
                subject: question,
                answer: said.clone(),
                name: operator.clone(),
                how,
                at: crate::state::now(),
                signed: None,
            }],
            digest: None,
            summary: format!("rollback of {}: {said} by {operator}", phases.join(", ")),
        })
        .await?;
        if yes {
            return Ok(None);
        }
        Ok(Some(RunEnd::RollbackNotDone {
            reason: format!(
                "the rollback was declined by {operator}; `rollout rollback --run {}` performs it later",
                self.run_id
            ),
            finished: true,
        }))
    }
}

/// What a rollback of a run undoes, in order: every phase that started, the last first, down
/// to and including `to`. A run in which no phase started (a rollback-only run) undoes nothing
/// of its own, so it runs the runbook's `[[rollback]]` section. A rollback already under way
/// goes by its own record instead (see [`RollbackState`]).
///
/// [`RollbackState`]: crate::state::record::RollbackState
pub fn phases_to_roll_back(
    state: &RunState,
    runbook: &Runbook,
    to: Option<&str>,
) -> Result<Vec<String>, String> {
    if state.phases_started.is_empty() && to.is_none() {
        return Ok(vec![RUNBOOK_ROLLBACK.to_string()]);
    }
    let mut phases: Vec<String> = state.phases_started.iter().rev().cloned().collect();
    if let Some(to) = to {
        let Some(i) = phases.iter().position(|p| p == to) else {
            let known = runbook.phases.iter().any(|p| p.id.get_ref() == to);
            return Err(if known {
                format!(
                    "phase `{to}` did not run in run `{}`, so there is nothing of it to roll back (phases that ran: {})",
                    state.run_id,
                    list_or_none(&state.phases_started)
                )
            } else {
                format!("the runbook has no phase `{to}`")
            });
        };
        phases.truncate(i + 1);
    }
    Ok(phases)
}

fn list_or_none(items: &[String]) -> String {
    if items.is_empty() {
        "none".into()
    } else {
        items.join(", ")
    }
}
