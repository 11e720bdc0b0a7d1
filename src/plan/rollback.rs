//! A rollback before it starts: the phases it undoes, in order, which of them are covered by
//! another phase's rollback (`rollback_covers`), and each rollback step rendered as it will
//! run. Shared by `rollout rollback --dry-run` and the plan a rollback shows when it starts, so
//! the two cannot differ. A value the rollback itself captures does not exist yet: the steps
//! after it show `<output of step ID>` and a `when` reading it says so; none is guessed.

use super::{PlanStep, Renderer, StepRenderError};
use crate::runbook::model::{Phase, Runbook, Step};

/// The id under which the runbook's own `[[rollback]]` section is recorded: not a valid phase
/// id, so it cannot clash with one.
pub const RUNBOOK_ROLLBACK: &str = "[rollback]";

/// For each phase of a rollback, in the order it is undone: the phase whose rollback covers it,
/// if any. A covered phase's own rollback steps do not run. A phase is covered by one that is
/// undone before it, names it in `rollback_covers`, and is not covered itself (a rollback that
/// does not run covers nothing).
pub fn covered_by<'p>(runbook: &Runbook, phases: &'p [String]) -> Vec<Option<&'p str>> {
    let mut runs: Vec<&'p str> = Vec::new();
    phases
        .iter()
        .map(|id| {
            let by = runs.iter().copied().find(|r| {
                runbook
                    .phases
                    .iter()
                    .find(|p| p.id.get_ref() == r)
                    .is_some_and(|p| p.rollback_covers.iter().any(|c| c.get_ref() == id))
            });
            if by.is_none() {
                runs.push(id.as_str());
            }
            by
        })
        .collect()
}

/// The later phases whose rollback covers phase `id`, in runbook order.
pub fn coverers(runbook: &Runbook, id: &str) -> Vec<String> {
    runbook
        .phases
        .iter()
        .filter(|p| p.rollback_covers.iter().any(|c| c.get_ref() == id))
        .map(|p| p.id.get_ref().clone())
        .collect()
}

/// One phase of a rollback, as shown before it starts.
pub struct PhaseView<'l> {
    pub id: String,
    pub title: String,
    /// `None` for the runbook's own `[[rollback]]` section, or a phase no longer in the runbook.
    pub phase: Option<&'l Phase>,
    /// The phase no longer exists in the runbook.
    pub gone: bool,
    /// The phase whose rollback covers this one: its own steps do not run.
    pub covered_by: Option<String>,
    /// Each rollback step, rendered (empty for a covered phase).
    pub steps: Vec<Result<PlanStep, StepRenderError>>,
}

/// The rollback of `phases` (phase ids, or [`RUNBOOK_ROLLBACK`]) as it will run, leaving out
/// the phases in `done` (a rollback under way rolled them back already; they still cover what
/// they cover). Values the run captured are used as they are; a value a rollback step captures
/// is stood in for, as in `plan`, and the renderer is given back as it was.
pub fn view<'l>(r: &mut Renderer<'l>, phases: &[String], done: &[String]) -> Vec<PhaseView<'l>> {
    let loaded = r.loaded;
    let rb = &loaded.runbook;
    let covered = covered_by(rb, phases);
    let mut pended: Vec<String> = Vec::new();
    let mut out = Vec::with_capacity(phases.len());
    for (id, by) in phases.iter().zip(covered) {
        if done.contains(id) {
            continue;
        }
        let (phase, steps, gone): (Option<&'l Phase>, &'l [Step], bool) = if id == RUNBOOK_ROLLBACK
        {
            (None, &rb.rollback, false)
        } else {
            match rb.phases.iter().find(|p| p.id.get_ref() == id) {
                Some(p) => (Some(p), &p.rollback, false),
                None => (None, &[], true),
            }
        };
        let mut view = PhaseView {
            id: id.clone(),
            title: phase.map_or_else(|| "runbook rollback".into(), |p| p.title.clone()),
            phase,
            gone,
            covered_by: by.map(str::to_string),
            steps: Vec::new(),
        };
        if view.covered_by.is_none() {
            for step in steps {
                view.steps.push(r.step(phase, step));
                if let Some(c) = &step.capture {
                    let name = c.get_ref();
                    if !r.has(name) {
                        r.pend_capture(name, step.id.get_ref());
                        pended.push(name.clone());
                    }
                }
            }
        }
        out.push(view);
    }
    for name in pended {
        r.forget(&name);
    }
    out
}
