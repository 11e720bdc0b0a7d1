//! Model + variable values -> the ordered, fully rendered steps a run would execute.
//! `rollout plan` prints this; `rollout run` executes steps rendered by the same
//! [`Renderer::step`], so a preview cannot differ from the real run.
//!
//! - `types`: what a plan is made of (plain, serialisable data);
//! - `renderer`: the one [`Renderer`] of templates with a run's (or a preview's) values;
//! - `writer`: the plan written a phase at a time, as JSON or through a text layout;
//! - this file: the plan assembled from the renderer, phase by phase.

mod renderer;
pub mod rollback;
mod types;
mod writer;

pub use renderer::{Renderer, RunInfo, StepRenderError, runbook_dir};
pub use types::*;
pub use writer::{Layout, TextLayout, write};

use crate::config::{Settings, webhook_label};
use crate::inputs::{Resolved, env_name};
use crate::redact::MASK;
use crate::runbook::Loaded;
use crate::runbook::model::{Phase, Risk};

/// Builds the whole plan. Nothing is executed and nothing is written.
pub fn build(
    loaded: &Loaded,
    vars: &[Resolved],
    run: &RunInfo,
    settings: &Settings,
) -> Result<Plan, Vec<StepRenderError>> {
    let mut r = Renderer::new(loaded, vars, run, settings);
    let mut errors = Vec::new();
    let phases = loaded
        .runbook
        .phases
        .iter()
        .enumerate()
        .filter_map(|(k, phase)| plan_phase(&mut r, k, phase, Some(&mut errors)))
        .collect();
    let rollback = incident_rollback(&r, vars, run, &mut errors);
    let plan = head(&r, vars, phases, rollback, &mut errors);
    if !errors.is_empty() {
        return Err(errors);
    }
    Ok(plan)
}

/// Renders every step as [`build`] does and keeps nothing: whether a plan can be built.
pub fn check(
    loaded: &Loaded,
    vars: &[Resolved],
    run: &RunInfo,
    settings: &Settings,
) -> Result<(), Vec<StepRenderError>> {
    let make = || Renderer::new(loaded, vars, run, settings);
    let mut errors = render_phases(loaded, &make, &|_, _| (), |()| {});
    let r = make();
    drop(incident_rollback(&r, vars, run, &mut errors));
    if let Err(error) = r.window() {
        errors.push(StepRenderError {
            step: "`[runbook.window]`".into(),
            error,
        });
    }
    if errors.is_empty() {
        Ok(())
    } else {
        Err(errors)
    }
}

/// Renders every phase exactly as one [`Renderer`] going through them in order would, split
/// between two threads (each renders every other phase, and only follows the captures of the
/// others). `each` turns a phase rendered without error into what `sink` gets, on the thread
/// that rendered it; `sink` gets them in phase order, on this thread, until a phase fails.
/// Returns every step that could not be rendered, in runbook order.
fn render_phases<'l, T: Send>(
    loaded: &'l Loaded,
    make: &(dyn Fn() -> Renderer<'l> + Sync),
    each: &(dyn Fn(usize, PlanPhase) -> T + Sync),
    mut sink: impl FnMut(T),
) -> Vec<StepRenderError> {
    const WORKERS: usize = 2;
    let phases = &loaded.runbook.phases;
    std::thread::scope(|s| {
        let mut results = Vec::new();
        let mut workers = Vec::new();
        for w in 0..WORKERS {
            let (send, receive) = std::sync::mpsc::sync_channel::<Option<T>>(2);
            results.push(receive);
            workers.push(s.spawn(move || {
                let mut r = make();
                let mut errors: Vec<(usize, Vec<StepRenderError>)> = Vec::new();
                for (k, phase) in phases.iter().enumerate() {
                    if k % WORKERS != w {
                        plan_phase(&mut r, k, phase, None);
                        continue;
                    }
                    let mut found = Vec::new();
                    let view = plan_phase(&mut r, k, phase, Some(&mut found));
                    // After a failure the phases are still rendered, to report every step
                    // that cannot be, but nothing is handed on.
                    let kept = match view {
                        Some(view) if found.is_empty() && errors.is_empty() => Some(each(k, view)),
                        _ => None,
                    };
                    if !found.is_empty() {
                        errors.push((k, found));
                    }
                    // This side stops only when the other has gone (a panic).
                    if send.send(kept).is_err() {
                        break;
                    }
                }
                errors
            }));
        }
        let mut failed = false;
        for k in 0..phases.len() {
            match results[k % WORKERS].recv() {
                Ok(Some(item)) if !failed => sink(item),
                Ok(_) => failed = true,
                Err(_) => break,
            }
        }
        drop(results);
        let mut errors: Vec<(usize, Vec<StepRenderError>)> = workers
            .into_iter()
            .flat_map(|w| {
                w.join()
                    .unwrap_or_else(|panic| std::panic::resume_unwind(panic))
            })
            .collect();
        errors.sort_by_key(|(k, _)| *k);
        errors.into_iter().flat_map(|(_, e)| e).collect()
    })
}

/// One phase as the plan shows it. `r` carries the captures of earlier phases, and is given
/// those of this one. Without `errors`, nothing is rendered: `r` only follows the phase.
fn plan_phase(
    r: &mut Renderer<'_>,
    k: usize,
    phase: &Phase,
    mut errors: Option<&mut Vec<StepRenderError>>,
) -> Option<PlanPhase> {
    let (abort_when, abort_not_watched) = match errors.as_deref_mut() {
        Some(errors) => match r.phase_criteria(k) {
            Ok(found) => found,
            Err(e) => {
                errors.push(e);
                (Vec::new(), Vec::new())
            }
        },
        None => (Vec::new(), Vec::new()),
    };
    let max_duration = match errors.as_deref_mut() {
        Some(errors) => r.budget(phase).unwrap_or_else(|error| {
            errors.push(StepRenderError {
                step: format!("the `max_duration` of phase `{}`", phase.id.get_ref()),
                error,
            });
            None
        }),
        None => None,
    };
    let steps = r.steps(Some(phase), &phase.steps, errors.as_deref_mut());
    let gate = r.steps(Some(phase), &phase.gate, errors.as_deref_mut());
    let saved = r.placeholders.len();
    let rollback = r.steps(Some(phase), &phase.rollback, errors.as_deref_mut());
    r.placeholders.truncate(saved);
    errors?;
    Some(PlanPhase {
        id: phase.id.get_ref().clone(),
        title: phase.title.clone(),
        description: phase.description.clone(),
        on_failure: phase.on_failure,
        max_duration,
        steps,
        gate,
        abort_when,
        abort_not_watched,
        rollback,
        rollback_covers: phase
            .rollback_covers
            .iter()
            .map(|c| c.get_ref().clone())
            .collect(),
        rollback_covered_by: rollback::coverers(&r.loaded.runbook, phase.id.get_ref()),
    })
}

/// The runbook-level rollback, rendered as `rollout rollback` would run it: without the
/// captures of any phase.
fn incident_rollback(
    r: &Renderer<'_>,
    vars: &[Resolved],
    run: &RunInfo,
    errors: &mut Vec<StepRenderError>,
) -> Vec<PlanStep> {
    let mut incident = Renderer::new(r.loaded, vars, run, r.settings);
    incident.steps(None, &r.loaded.runbook.rollback, Some(errors))
}

/// The plan around `phases` and the runbook-level `rollback`.
fn head(
    r: &Renderer<'_>,
    vars: &[Resolved],
    phases: Vec<PlanPhase>,
    rollback: Vec<PlanStep>,
    errors: &mut Vec<StepRenderError>,
) -> Plan {
    let window = match r.window() {
        Ok(w) => w.map(|w| WindowView {
            days: ["mon", "tue", "wed", "thu", "fri", "sat", "sun"]
                .into_iter()
                .zip(w.days)
                .filter_map(|(d, on)| on.then_some(d))
                .collect(),
            start: format!("{:02}:{:02}", w.start / 60, w.start % 60),
            end: format!("{:02}:{:02}", w.end / 60, w.end % 60),
            time_zone: w.zone_name.clone(),
            text: w.to_string(),
        }),
        Err(error) => {
            errors.push(StepRenderError {
                step: "`[runbook.window]`".into(),
                error,
            });
            None
        }
    };
    let loaded = r.loaded;
    let rb = &loaded.runbook;
    let exported_env = vars
        .iter()
        .map(|v| {
            (
                env_name(&v.name),
                v.value
                    .as_ref()
                    .map_or_else(|| MASK.to_string(), ToString::to_string),
            )
        })
        .collect();
    let runbook = RunbookInfo {
        name: rb.meta.name.clone(),
        description: rb.meta.description.clone(),
        owner: rb.meta.owner.clone(),
        risk: rb.meta.risk.map(Risk::name),
        version: rb.meta.version.clone(),
        path: loaded.source.name.clone(),
        digest: loaded.source.digest().to_string(),
    };
    let variables = vars
        .iter()
        .map(|v| PlanVar {
            name: v.name.clone(),
            value: v.value.clone(),
            secret: v.value.is_none(),
            origin: v.origin.clone(),
        })
        .collect();
    // As the run makes its targets: the runbook's, rendered, then the user config's.
    let own = rb.notify.iter().map(|t| {
        let (url, skipped) = match r.text(t.url) {
            Ok(url) => (url, None),
            Err(e) => (String::new(), Some(e.message)),
        };
        PlanNotify {
            url,
            format: t.format,
            on: t.on.clone(),
            from: NotifyFrom::Runbook,
            skipped,
        }
    });
    let theirs = r.settings.notify.iter().map(|t| PlanNotify {
        url: webhook_label(&t.url),
        format: t.format,
        on: t.on.clone(),
        from: NotifyFrom::Config,
        skipped: None,
    });
    Plan {
        format_version: FORMAT_VERSION,
        runbook,
        variables,
        exported_env,
        notify: own.chain(theirs).collect(),
        window,
        phases,
        rollback,
    }
}
