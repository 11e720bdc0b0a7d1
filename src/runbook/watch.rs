//! Which abort criteria are watched at which step: the runbook's own `[[abort_when]]` in every
//! phase (unless the phase skips one or has its own of the same id), a phase's own in that
//! phase, each within its `from`/`until` window. One answer for `plan`, which shows each
//! criterion's window, and `run`, which starts and stops the watches at step boundaries.

use std::collections::HashMap;

use super::model::{AbortCriterion, Phase, Runbook};

/// Whose criterion it is.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Owner {
    /// The runbook's `[[abort_when]]`, by index.
    Runbook(usize),
    /// A phase's own, by phase index and index.
    Phase(usize, usize),
}

/// A step's place in the forward run: phase index, then index in its steps and gate.
pub type Position = (usize, usize);

/// Where every step of the forward run is, for the windows.
pub struct Scopes<'r> {
    runbook: &'r Runbook,
    positions: HashMap<&'r str, Position>,
}

/// How a criterion is watched in one phase.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum InPhase {
    /// From the step `from` (else the start of the phase) until the step `until` (else the end).
    Watched {
        from: Option<String>,
        until: Option<String>,
    },
    /// Not at all, and why.
    NotWatched(String),
}

impl<'r> Scopes<'r> {
    pub fn new(runbook: &'r Runbook) -> Self {
        let mut positions = HashMap::new();
        for (p, phase) in runbook.phases.iter().enumerate() {
            for (s, step) in phase.steps.iter().chain(&phase.gate).enumerate() {
                positions
                    .entry(step.id.get_ref().as_str())
                    .or_insert((p, s));
            }
        }
        Scopes { runbook, positions }
    }

    /// Where the step `id` is, if it is a step or gate step of a phase.
    pub fn position(&self, id: &str) -> Option<Position> {
        self.positions.get(id).copied()
    }

    pub fn criterion(&self, owner: Owner) -> &'r AbortCriterion {
        match owner {
            Owner::Runbook(i) => &self.runbook.abort_when[i],
            Owner::Phase(p, i) => &self.runbook.phases[p].abort_when[i],
        }
    }

    /// Every criterion that may apply in phase `p`, in the order a plan lists them: the
    /// runbook's (those the phase neither skips nor overrides), then the phase's own.
    pub fn candidates(&self, p: usize) -> Vec<Owner> {
        let phase = &self.runbook.phases[p];
        self.runbook
            .abort_when
            .iter()
            .enumerate()
            .filter(|(_, c)| !skipped(phase, c) && !overridden(phase, c))
            .map(|(i, _)| Owner::Runbook(i))
            .chain((0..phase.abort_when.len()).map(|i| Owner::Phase(p, i)))
            .collect()
    }

    /// The criteria watched while the step at `at` runs.
    pub fn watched_at(&self, at: Position) -> Vec<Owner> {
        self.candidates(at.0)
            .into_iter()
            .filter(|o| self.in_window(*o, at))
            .collect()
    }

    fn in_window(&self, owner: Owner, at: Position) -> bool {
        let c = self.criterion(owner);
        let bound = |id: &Option<toml::Spanned<String>>| {
            id.as_ref().and_then(|s| self.position(s.get_ref()))
        };
        bound(&c.from).is_none_or(|from| at >= from)
            && bound(&c.until).is_none_or(|until| at <= until)
    }

    /// How `owner` is watched in phase `p`, for the plan.
    pub fn in_phase(&self, owner: Owner, p: usize) -> InPhase {
        let phase = &self.runbook.phases[p];
        let ids = phase.step_ids();
        let on: Vec<usize> = (0..ids.len())
            .filter(|s| self.in_window(owner, (p, *s)))
            .collect();
        let (Some(first), Some(last)) = (on.first(), on.last()) else {
            let c = self.criterion(owner);
            let why = match (&c.from, &c.until) {
                (Some(from), _) if self.position(from.get_ref()).is_some_and(|at| at.0 > p) => {
                    format!("it starts at step `{}`, in a later phase", from.get_ref())
                }
                (_, Some(until)) => {
                    format!(
                        "it stopped after step `{}`, in an earlier phase",
                        until.get_ref()
                    )
                }
                _ => "outside its window".to_string(),
            };
            return InPhase::NotWatched(why);
        };
        InPhase::Watched {
            from: (*first > 0).then(|| ids[*first].to_string()),
            until: (*last + 1 < ids.len()).then(|| ids[*last].to_string()),
        }
    }

    /// Why a runbook criterion is not a candidate in phase `p`, if it is not.
    pub fn left_out(&self, i: usize, p: usize) -> Option<String> {
        let phase = &self.runbook.phases[p];
        let c = &self.runbook.abort_when[i];
        if skipped(phase, c) {
            return Some("skipped in this phase (`skip_abort_when`)".into());
        }
        overridden(phase, c).then(|| "replaced by this phase's own criterion of the same id".into())
    }
}

fn skipped(phase: &Phase, c: &AbortCriterion) -> bool {
    phase
        .skip_abort_when
        .iter()
        .any(|s| s.get_ref() == c.id.get_ref())
}

fn overridden(phase: &Phase, c: &AbortCriterion) -> bool {
    phase
        .abort_when
        .iter()
        .any(|own| own.id.get_ref() == c.id.get_ref())
}
