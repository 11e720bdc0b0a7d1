//! One run's life: start or resume it, read secrets, lock and open its journal, drive the
//! engine, handle signals, and write the final record. Shared by `run` and `resume`.

use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use crate::exec::engine::{Engine, InDoubt, Interrupts, Options, RunEnd, final_status};
use crate::exec::event::{Event, Level, Listener};
use crate::exec::gates::{Approvals, Prompter};
use crate::exec::process;
use crate::inputs::{Origin, Resolved, env_name, read_secret};
use crate::plan::{Renderer, RunInfo, runbook_dir};
use crate::runbook::Loaded;
use crate::runbook::model::VarValue;
use crate::state::record::Standing;
use crate::state::{Entry, FileStore, Journal, RunState, Store, StoreError, new_run_id};

pub struct Settings {
    pub grace: Duration,
    pub in_doubt: InDoubt,
    pub approvals: Approvals,
    pub operator: String,
}

#[derive(Debug)]
pub struct Report {
    pub run_id: String,
    pub end: RunEnd,
}

#[derive(Debug, thiserror::Error)]
pub enum SessionError {
    #[error("{0}")]
    Store(#[from] StoreError),
    #[error("{0}")]
    Secret(String),
}

/// The state directory of a runbook: `--state-dir`, `ROLLOUT_STATE_DIR`, or `.rollout/` beside it.
pub fn state_dir_for(runbook: &Path, flag: Option<PathBuf>) -> PathBuf {
    flag.unwrap_or_else(|| runbook_dir(runbook).join(".rollout"))
}

pub(crate) fn secrets(
    loaded: &Loaded,
    vars: &[Resolved],
) -> Result<Vec<(String, String)>, SessionError> {
    let base = runbook_dir(&loaded.source.path);
    let mut out = Vec::new();
    for v in vars {
        if let Origin::Secret(source) = &v.origin {
            out.push((
                v.name.clone(),
                read_secret(&v.name, source, &base).map_err(SessionError::Secret)?,
            ));
        }
    }
    Ok(out)
}

fn var_json(v: &VarValue) -> serde_json::Value {
    serde_json::to_value(v).unwrap_or(serde_json::Value::Null)
}

/// Starts a new run of `loaded`.
#[allow(clippy::too_many_arguments)]
pub async fn start<'a>(
    loaded: &'a Loaded,
    vars: Vec<Resolved>,
    store: &FileStore,
    settings: Settings,
    listener: &'a mut dyn Listener,
    prompter: Option<&'a mut dyn Prompter>,
    interrupts: Interrupts,
) -> Result<Report, SessionError> {
    let secret_values = secrets(loaded, &vars)?;
    let run_id = new_run_id();
    let mut journal = store.create(&run_id, &loaded.source.text)?;
    let runbook_path =
        std::fs::canonicalize(&loaded.source.path).unwrap_or_else(|_| loaded.source.path.clone());
    journal.append(Entry::RunStarted {
        run_id: run_id.clone(),
        runbook: runbook_path.display().to_string(),
        runbook_name: loaded.runbook.meta.name.clone(),
        digest: loaded.source.digest().to_string(),
        operator: settings.operator.clone(),
        vars: vars
            .iter()
            .filter_map(|v| v.value.as_ref().map(|val| (v.name.clone(), var_json(val))))
            .collect(),
    })?;
    let state = RunState {
        run_id: run_id.clone(),
        ..RunState::default()
    };
    drive(
        loaded,
        vars,
        secret_values,
        journal,
        state,
        false,
        settings,
        listener,
        prompter,
        interrupts,
        store,
    )
    .await
}

/// Continues an existing run from its first unfinished step.
#[allow(clippy::too_many_arguments)]
pub async fn resume<'a>(
    loaded: &'a Loaded,
    journal: Box<dyn Journal>,
    state: RunState,
    store: &FileStore,
    settings: Settings,
    listener: &'a mut dyn Listener,
    prompter: Option<&'a mut dyn Prompter>,
    interrupts: Interrupts,
) -> Result<Report, SessionError> {
    let mut vars = Vec::new();
    for decl in &loaded.runbook.vars {
        let name = decl.name.get_ref();
        if let Some(source) = &decl.secret {
            vars.push(Resolved {
                name: name.clone(),
                ty: decl.ty,
                value: None,
                origin: Origin::Secret(source.clone()),
            });
            continue;
        }
        let value = match state.vars.get(name) {
            Some(serde_json::Value::String(s)) => Some(VarValue::String(s.clone())),
            Some(serde_json::Value::Bool(b)) => Some(VarValue::Boolean(*b)),
            Some(serde_json::Value::Number(n)) => n.as_i64().map(VarValue::Integer),
            _ => None,
        };
        let (value, origin) = match value {
            Some(v) => (v, Origin::Journal),
            None => match &decl.default {
                Some(d) => (d.clone(), Origin::Default),
                None => {
                    return Err(SessionError::Secret(format!(
                        "variable `{name}` has no value in the run and no default"
                    )));
                }
            },
        };
        vars.push(Resolved {
            name: name.clone(),
            ty: decl.ty,
            value: Some(value),
            origin,
        });
    }
    let secret_values = secrets(loaded, &vars)?;
    let mut journal = journal;
    journal.append(Entry::RunResumed {
        operator: settings.operator.clone(),
        digest: loaded.source.digest().to_string(),
    })?;
    drive(
        loaded,
        vars,
        secret_values,
        journal,
        state,
        true,
        settings,
        listener,
        prompter,
        interrupts,
        store,
    )
    .await
}

#[allow(clippy::too_many_arguments)]
async fn drive<'a>(
    loaded: &'a Loaded,
    vars: Vec<Resolved>,
    secret_values: Vec<(String, String)>,
    journal: Box<dyn Journal>,
    state: RunState,
    resumed: bool,
    settings: Settings,
    listener: &'a mut dyn Listener,
    prompter: Option<&'a mut dyn Prompter>,
    interrupts: Interrupts,
    store: &FileStore,
) -> Result<Report, SessionError> {
    let started = Instant::now();
    let run_id = state.run_id.clone();
    let started_at = if state.started_at.is_empty() {
        crate::state::now()
    } else {
        state.started_at.clone()
    };
    let info = RunInfo {
        id: run_id.clone(),
        operator: settings.operator.clone(),
        started_at,
    };
    let kubectl = std::env::var("KUBECTL").ok();
    let shown = Renderer::for_run(loaded, &vars, &info, kubectl.clone());
    let mut real = Renderer::for_run(loaded, &vars, &info, kubectl);
    for (name, value) in &secret_values {
        real.reveal(name, value);
    }
    let mut exported_env: Vec<(String, String)> = vars
        .iter()
        .filter_map(|v| {
            v.value
                .as_ref()
                .map(|val| (env_name(&v.name), val.to_string()))
        })
        .collect();
    exported_env.extend(secret_values.iter().map(|(n, v)| (env_name(n), v.clone())));
    let redactor = std::sync::Arc::new(
        crate::redact::Redactor::new(&secret_values.iter().map(|(_, v)| v).collect::<Vec<_>>())
            .map_err(SessionError::Secret)?,
    );
    let journal: Box<dyn Journal> =
        Box::new(crate::redact::MaskedJournal::new(journal, redactor.clone()));
    let mut listener = crate::redact::MaskedListener::new(listener, redactor.clone());
    let location = journal.location();
    listener.on(&Event::RunStarted {
        run_id: run_id.clone(),
        runbook: loaded.source.name.clone(),
        name: loaded.runbook.meta.name.clone(),
        resumed,
        journal: location.clone(),
    });
    let mut engine = Engine {
        loaded,
        shown,
        real,
        secrets: secret_values.into_iter().map(|(_, v)| v).collect(),
        redactor,
        exported_env,
        journal,
        state,
        listener: &mut listener,
        // Reborrowed: the engine lives no longer than the masked listener.
        prompter: prompter.map(|p| -> &mut dyn Prompter { p }),
        interrupts,
        options: Options {
            grace: settings.grace,
            in_doubt: settings.in_doubt,
            approvals: settings.approvals,
            operator: settings.operator,
            os_user: crate::exec::gates::os_user(),
        },
        run_id: run_id.clone(),
        abort_watch: None,
    };
    let (end, phases) = engine.run().await?;
    match final_status(&end) {
        Some(status) => {
            let reason = match &end {
                RunEnd::Failed { step, reason, .. } => {
                    Some(format!("step `{step}` failed: {reason}"))
                }
                RunEnd::RollbackRequested { step, reason } => Some(format!(
                    "step `{step}` failed ({reason}) and asks for a rollback, which this version of rollout cannot perform yet: roll back by hand with the phase's rollback steps shown by `rollout plan`"
                )),
                _ => None,
            };
            engine.journal.append(Entry::RunFinished {
                status,
                reason: reason.clone(),
            })?;
            if let Some(r) = reason {
                engine.listener.on(&Event::Notice {
                    level: Level::Warning,
                    message: r,
                });
            }
        }
        None => {
            let (reason, waiting) = match &end {
                RunEnd::Paused { reason } => (reason.clone(), false),
                RunEnd::WaitingForApproval { reason } => (reason.clone(), true),
                RunEnd::Interrupted { signal } => (
                    format!(
                        "interrupted by {}",
                        if *signal == 15 { "SIGTERM" } else { "Ctrl-C" }
                    ),
                    false,
                ),
                _ => (String::new(), false),
            };
            let already = matches!(engine.state.standing, Some(Standing::Paused { .. }));
            if !already {
                engine.journal.append(Entry::Paused {
                    phase: None,
                    step: None,
                    reason: reason.clone(),
                    waiting_for_approval: waiting,
                })?;
            }
            let mut flags = String::new();
            for f in engine
                .state
                .waiting_gate
                .iter()
                .flat_map(|g| &g.satisfy_with)
            {
                flags.push(' ');
                flags.push_str(f);
            }
            engine.listener.on(&Event::Paused {
                reason,
                resume_with: format!(
                    "rollout resume {run_id} --state-dir {}{flags}",
                    store.root().display()
                ),
                waiting_for_approval: waiting,
            });
        }
    }
    engine.listener.on(&Event::RunFinished {
        run_id: run_id.clone(),
        outcome: end.word(),
        duration_ms: u64::try_from(started.elapsed().as_millis()).unwrap_or(u64::MAX),
        journal: location,
        phases,
    });
    process::sweep_descendants(Duration::from_secs(2));
    Ok(Report { run_id, end })
}
