//! One run's life: start or resume it, read secrets, lock and open its journal, drive the
//! engine, handle signals, and write the final record. Shared by `run` and `resume`.

use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use crate::config::{NotifyTarget, Settings};
use crate::exec::engine::{Engine, Mode, Options, RunEnd, final_status};
use crate::exec::event::{Event, Level, Listener, PhaseSummary};
use crate::exec::gates::Prompter;
use crate::exec::interrupts::Interrupts;
use crate::exec::process;
use crate::inputs::{Origin, Resolved, env_name, read_secret};
use crate::plan::{Renderer, RunInfo, TextLayout, runbook_dir};
use crate::runbook::Loaded;
use crate::runbook::model::{VarType, VarValue};
use crate::state::lock::TargetLock;
use crate::state::record::Envelope;
use crate::state::record::Standing;
use crate::state::{Entry, Fence, Journal, Recovery, RunState, Store, StoreError};

/// Why and when a session started outside its change window (`--outside-window --reason`).
#[derive(Debug, Clone)]
pub struct OutsideWindow {
    pub reason: String,
    pub window: String,
    /// When it was checked, in the window's time zone.
    pub local_time: String,
}

/// How a session ended.
#[derive(Debug)]
pub struct Ended {
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

/// The values of the secret variables among `vars`, read from their sources (`env` looks up
/// the environment's).
pub fn secrets(
    loaded: &Loaded,
    vars: &[Resolved],
    env: &dyn Fn(&str) -> Option<String>,
) -> Result<Vec<(String, String)>, SessionError> {
    let base = runbook_dir(&loaded.source.path);
    let mut out = Vec::new();
    for v in vars {
        if let Origin::Secret(source) = &v.origin {
            out.push((
                v.name.clone(),
                read_secret(&v.name, source, &base, env).map_err(SessionError::Secret)?,
            ));
        }
    }
    Ok(out)
}

fn var_json(v: &VarValue) -> serde_json::Value {
    serde_json::to_value(v).unwrap_or(serde_json::Value::Null)
}

/// What the app hands every session: the invocation's settings, and the pieces of the layers
/// above that the app wires in (exec knows none of them by name).
#[derive(Clone, Copy)]
pub struct Setup<'s> {
    pub settings: &'s Settings,
    /// Looks up a variable of the environment: secrets read `from = "env:..."` with it.
    pub env: &'s dyn Fn(&str) -> Option<String>,
    /// How plan steps read as text (the terminal UI's layout): what signers are shown.
    pub layout: &'s dyn TextLayout,
    /// Makes the listener that posts to these webhooks (called only when there are some).
    pub notifier: &'s dyn Fn(Vec<NotifyTarget>) -> Box<dyn Listener>,
    /// Whether this binary can be a session's warden (`rollout __warden`, see
    /// [`crate::exec::warden`]); a store that can take the run away (team mode) then has one.
    pub wardens: bool,
}

/// Everything a session needs besides the runbook: where it records, and how it was started.
pub struct Begin<'s> {
    pub store: &'s dyn Store,
    pub lock: TargetLock,
    pub options: Options,
    /// The session goes ahead outside the runbook's change window: recorded.
    pub outside_window: Option<OutsideWindow>,
    pub mode: Mode,
    pub setup: Setup<'s>,
}

/// The target a run of `loaded` with `vars` locks: its rendered `lock`, else its name.
pub fn lock_target(
    loaded: &Loaded,
    vars: &[Resolved],
    settings: &Settings,
) -> Result<String, String> {
    match loaded.runbook.meta.lock {
        Some(t) => Renderer::new(
            loaded,
            vars,
            &RunInfo::preview(settings.operator.clone()),
            settings,
        )
        .text(t)
        .map_err(|e| format!("cannot render `lock`: {}", e.message)),
        None => Ok(loaded.runbook.meta.name.clone()),
    }
}

/// The variables of a run as it recorded them, secrets to be read again.
pub fn vars_from_state(loaded: &Loaded, state: &RunState) -> Result<Vec<Resolved>, String> {
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
            Some(serde_json::Value::Number(n)) if decl.ty == VarType::Float => {
                n.as_f64().map(VarValue::Float)
            }
            Some(serde_json::Value::Number(n)) => n.as_i64().map(VarValue::Integer),
            _ => None,
        };
        let (value, origin) = match value {
            Some(v) => (v, Origin::Journal),
            None => match &decl.default {
                Some(d) => (d.clone(), Origin::Default),
                None => {
                    return Err(format!(
                        "variable `{name}` has no value in the run and no default"
                    ));
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
    Ok(vars)
}

fn envelope(run_id: &str, loaded: &Loaded, settings: &Settings) -> Envelope {
    Envelope {
        run: run_id.to_string(),
        who: crate::state::who(&settings.operator, &settings.os_user),
        runbook_digest: loaded.source.digest().to_string(),
    }
}

/// Starts a new run of `loaded`.
pub async fn start<'a>(
    loaded: &'a Loaded,
    run_id: String,
    vars: Vec<Resolved>,
    begin: Begin<'_>,
    listener: &'a mut dyn Listener,
    prompter: Option<Box<dyn Prompter + Send>>,
    interrupts: Interrupts,
) -> Result<Ended, SessionError> {
    let secret_values = secrets(loaded, &vars, begin.setup.env)?;
    let mut journal = begin.store.create(&run_id, &loaded.source.text).await?;
    journal.set_envelope(envelope(&run_id, loaded, begin.setup.settings));
    let runbook_path =
        std::fs::canonicalize(&loaded.source.path).unwrap_or_else(|_| loaded.source.path.clone());
    journal
        .append(Entry::RunStarted {
            run_id: run_id.clone(),
            runbook: runbook_path.display().to_string(),
            runbook_name: loaded.runbook.meta.name.clone(),
            digest: loaded.source.digest().to_string(),
            operator: begin.options.operator.clone(),
            vars: vars
                .iter()
                .map(|v| {
                    let value = v
                        .value
                        .as_ref()
                        .map_or_else(|| serde_json::Value::from(crate::redact::MASK), var_json);
                    (v.name.clone(), value)
                })
                .collect(),
            version: env!("CARGO_PKG_VERSION").to_string(),
        })
        .await?;
    let state = RunState {
        run_id: run_id.clone(),
        ..RunState::default()
    };
    run_engine(
        loaded,
        vars,
        secret_values,
        journal,
        state,
        false,
        begin,
        listener,
        prompter,
        interrupts,
    )
    .await
}

/// Seals the log of run `run_id`, which finished but whose last session died before sealing
/// it, as a session of its own (`seal_recovered`, then `sealed`). Touches nothing but the
/// journal: no runbook, no target lock. Returns the seal and the run's state; `Ok(None)` when
/// the run is not finished or its log is sealed after all (another process got there first).
pub async fn seal_finished(
    store: &dyn Store,
    run_id: &str,
    settings: &Settings,
) -> Result<Option<(crate::state::Record, RunState)>, StoreError> {
    let operator = settings.operator.as_str();
    let (mut journal, loaded) = store.open(run_id).await?;
    let state = RunState::fold(&loaded.records);
    if !state.is_finished() || state.sealed {
        return Ok(None);
    }
    journal.set_envelope(Envelope {
        run: run_id.to_string(),
        who: crate::state::who(operator, &settings.os_user),
        runbook_digest: state.digest.clone(),
    });
    journal
        .append(Entry::SealRecovered {
            operator: operator.to_string(),
            previous_seal: state.last_seal.clone(),
            unsealed_from: state.unsealed_from,
        })
        .await?;
    if let Some(r) = loaded.recovery {
        journal.append(Entry::recovered(r)).await?;
    }
    let seal = journal.seal().await?;
    Ok(Some((seal, state)))
}

/// Continues an existing run from its first unfinished step (or rolls it back).
#[allow(clippy::too_many_arguments)]
pub async fn resume<'a>(
    loaded: &'a Loaded,
    mut journal: Box<dyn Journal>,
    state: RunState,
    recovery: Option<Recovery>,
    vars: Vec<Resolved>,
    begin: Begin<'_>,
    listener: &'a mut dyn Listener,
    prompter: Option<Box<dyn Prompter + Send>>,
    interrupts: Interrupts,
) -> Result<Ended, SessionError> {
    let secret_values = secrets(loaded, &vars, begin.setup.env)?;
    journal.set_envelope(envelope(&state.run_id, loaded, begin.setup.settings));
    // First, so that the session is linked to the seal before it (see `state::audit`).
    journal
        .append(Entry::RunResumed {
            operator: begin.options.operator.clone(),
            digest: loaded.source.digest().to_string(),
            previous_seal: Some(state.last_seal.clone()),
        })
        .await?;
    if let Some(r) = recovery {
        journal.append(Entry::recovered(r)).await?;
    }
    run_engine(
        loaded,
        vars,
        secret_values,
        journal,
        state,
        true,
        begin,
        listener,
        prompter,
        interrupts,
    )
    .await
}

/// Sets the run up (renderers, masking, notifications, the engine), lets the engine run to
/// where it stops, rollback included, and closes the session.
#[allow(clippy::too_many_arguments)]
async fn run_engine<'a>(
    loaded: &'a Loaded,
    vars: Vec<Resolved>,
    secret_values: Vec<(String, String)>,
    journal: Box<dyn Journal>,
    state: RunState,
    resumed: bool,
    begin: Begin<'_>,
    listener: &'a mut dyn Listener,
    prompter: Option<Box<dyn Prompter + Send>>,
    interrupts: Interrupts,
) -> Result<Ended, SessionError> {
    let Begin {
        store,
        lock,
        options,
        outside_window,
        mode,
        setup,
    } = begin;
    let started = Instant::now();
    let run_id = state.run_id.clone();
    let started_at = if state.started_at.is_empty() {
        crate::state::now()
    } else {
        state.started_at.clone()
    };
    let info = RunInfo {
        id: run_id.clone(),
        operator: options.operator.clone(),
        started_at,
    };
    let shown = Renderer::for_run(loaded, &vars, &info, setup.settings);
    let mut real = Renderer::for_run(loaded, &vars, &info, setup.settings);
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
    let journal: Box<dyn Journal> = Box::new(crate::exec::masking::MaskedJournal::new(
        journal,
        redactor.clone(),
    ));
    // Webhooks get their URLs from the real renderer: a Slack URL is usually a secret.
    let mut targets = Vec::new();
    for t in &loaded.runbook.notify {
        match real.text(t.url) {
            Ok(url) => targets.push(NotifyTarget {
                url,
                format: t.format,
                on: t.on.clone(),
            }),
            Err(e) => listener.on(&Event::Notice {
                level: Level::Warning,
                message: redactor
                    .text(&format!("a `[[notify]]` target is skipped: {}", e.message))
                    .into_owned(),
            }),
        }
    }
    // The operator's own webhooks (user config) are told too.
    targets.extend(setup.settings.notify.iter().cloned());
    let mut tee;
    let listener: &mut dyn Listener = if targets.is_empty() {
        listener
    } else {
        tee = crate::exec::event::Tee {
            first: listener,
            second: (setup.notifier)(targets),
        };
        &mut tee
    };
    // The view and the notifications see every event masked.
    let mut masked = crate::exec::masking::MaskedListener::new(listener, redactor.clone());
    let listener: &mut dyn Listener = &mut masked;
    // A holder elsewhere takes the run over when the lease runs out: the steps must end with
    // this process however it ends (see `warden`).
    let warden = if setup.wardens && journal.fence().is_some() {
        match crate::exec::warden::Warden::start(options.grace) {
            Ok(warden) => Some(std::sync::Arc::new(warden)),
            Err(e) => {
                listener.on(&Event::Notice {
                    level: Level::Warning,
                    message: format!(
                        "cannot start the warden that stops this run's steps if rollout is killed outright: {e}; a holder that takes the run over on another machine could then find a step of this one still running"
                    ),
                });
                None
            }
        }
    } else {
        None
    };
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
        redactor,
        exported_env,
        journal,
        state,
        listener,
        layout: setup.layout,
        prompter,
        interrupts,
        options,
        run_id: run_id.clone(),
        abort_watch: None,
        phase_criteria: Vec::new(),
        abort_prom: None,
        budget: None,
        rolling_back: false,
        notify_failures: Vec::new(),
        warden,
    };
    // A store that can take the run away (a lease) stops everything the moment it does.
    let _fence = engine
        .journal
        .fence()
        .map(|fence| FenceWatch::start(fence, engine.interrupts.clone()));
    let closing = Closing {
        run_id,
        started,
        location,
        store_flags: store.flags(),
        lock,
    };
    let ended = conduct(&mut engine, outside_window.as_ref(), mode, closing).await;
    if let Err(SessionError::Store(StoreError::LeaseLost { .. })) = &ended {
        // Nothing more may be written, and nothing of this run may go on: what the step
        // started and left is stopped before rollout says so and exits.
        let _ = tokio::task::spawn_blocking(|| process::sweep_descendants(Duration::from_secs(2)))
            .await;
    }
    ended
}

/// The engine's part, from the session's first records to its seal.
async fn conduct(
    engine: &mut Engine<'_>,
    outside_window: Option<&OutsideWindow>,
    mode: Mode,
    closing: Closing,
) -> Result<Ended, SessionError> {
    engine.record_lock(&closing.lock).await?;
    engine.record_operator_keys().await?;
    if let Some(o) = outside_window {
        engine.record_outside_window(o).await?;
    }
    engine.restore_captures();
    let (end, phases) = engine.conduct(mode).await?;
    finish(engine, end, phases, closing).await
}

/// Watches a journal's [`Fence`] while the session runs: once the store says the run is no
/// longer this process's to write, the interrupts stop the running step (and every write
/// after is refused). Stops watching when dropped.
struct FenceWatch(tokio::task::JoinHandle<()>);

impl FenceWatch {
    fn start(mut fence: Fence, interrupts: Interrupts) -> Self {
        FenceWatch(tokio::spawn(async move {
            loop {
                let lost = fence.borrow_and_update().clone();
                if let Some(why) = lost {
                    interrupts.lose_lease(why);
                    return;
                }
                // The store dropped its side: it will say nothing more.
                if fence.changed().await.is_err() {
                    return;
                }
            }
        }))
    }
}

impl Drop for FenceWatch {
    fn drop(&mut self) {
        self.0.abort();
    }
}

/// What a session closes once the engine has stopped.
struct Closing {
    run_id: String,
    started: Instant,
    /// Where the journal is, for the last event.
    location: String,
    /// The flags that point at the store, for the command that resumes the run.
    store_flags: String,
    lock: TargetLock,
}

/// Closes the session: the run's final record (or its pause), the last events and
/// notifications, the processes its steps left, the lock, and the seal.
async fn finish(
    engine: &mut Engine<'_>,
    end: RunEnd,
    phases: Vec<PhaseSummary>,
    closing: Closing,
) -> Result<Ended, SessionError> {
    let Closing {
        run_id,
        started,
        location,
        store_flags,
        lock,
    } = closing;
    match final_status(&end) {
        Some(status) => {
            let reason = match &end {
                RunEnd::Failed { step, reason, .. } => {
                    Some(format!("step `{step}` failed: {reason}"))
                }
                RunEnd::RollbackNotDone { reason, .. } => Some(reason.clone()),
                RunEnd::RolledBack { .. } => engine
                    .state
                    .rollback
                    .as_ref()
                    .map(|rb| format!("rolled back after: {}", rb.reason)),
                _ => None,
            };
            engine
                .append(Entry::RunFinished {
                    status,
                    reason: reason.clone(),
                })
                .await?;
            if let (Some(r), RunEnd::Failed { .. } | RunEnd::RollbackNotDone { .. }) =
                (reason, &end)
            {
                engine.listener.on(&Event::Notice {
                    level: Level::Warning,
                    message: r,
                });
            }
        }
        None => {
            let (reason, waiting) = match &end {
                RunEnd::Paused { reason } => (reason.clone(), false),
                RunEnd::WaitingForApproval { reason } | RunEnd::RollbackNotDone { reason, .. } => {
                    (reason.clone(), true)
                }
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
                engine
                    .append(Entry::Paused {
                        phase: None,
                        step: None,
                        reason: reason.clone(),
                        waiting_for_approval: waiting,
                    })
                    .await?;
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
            if matches!(end, RunEnd::RollbackNotDone { .. }) {
                flags.push_str(" --yes");
            }
            engine.listener.on(&Event::Paused {
                reason,
                resume_with: format!("rollout resume {run_id} {store_flags}{flags}"),
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
    // The last notifications go out (bounded) before the log is sealed, so that any that
    // failed are in it.
    let unsent = engine.listener.flush(Duration::from_secs(5)).await;
    engine.record_notify_failures(unsent).await?;
    // What steps left running is stopped while the lock is still held: every process shares
    // the lock, and a free lock must mean nothing of this run still runs. It waits for them
    // on a blocking thread.
    let _ =
        tokio::task::spawn_blocking(|| process::sweep_descendants(Duration::from_secs(2))).await;
    engine
        .append(Entry::LockReleased {
            lock_id: lock.holder.lock_id.clone(),
            target: lock.holder.target.clone(),
        })
        .await?;
    let seal = engine.seal().await?;
    lock.release();
    engine.listener.on(&Event::AuditSealed {
        audit_digest: seal.hash,
    });
    Ok(Ended { run_id, end })
}

#[cfg(test)]
mod tests {
    use std::sync::{Arc, Mutex};

    use super::*;
    use crate::exec::gates::Approvals;
    use crate::plan::{Plan, PlanPhase, PlanStep};
    use crate::state::{RunLog, StoreFuture, ready};

    /// What the store saw: each record, and whether it came after the run was taken away.
    #[derive(Default)]
    struct Seen {
        entries: Vec<Entry>,
        after_loss: Vec<Entry>,
    }

    /// A store that holds runs by a lease, and loses it when told to.
    struct LeasedStore {
        seen: Arc<Mutex<Seen>>,
        lease: tokio::sync::watch::Sender<Option<String>>,
    }

    struct LeasedJournal {
        seen: Arc<Mutex<Seen>>,
        fence: Fence,
    }

    impl Journal for LeasedJournal {
        fn append(&mut self, entry: Entry) -> StoreFuture<'_, crate::state::Record> {
            let mut seen = self.seen.lock().unwrap();
            if self.fence.borrow().is_some() {
                seen.after_loss.push(entry.clone());
            }
            seen.entries.push(entry.clone());
            ready(Ok(crate::state::Record::bare(entry)))
        }
        fn seal(&mut self) -> StoreFuture<'_, crate::state::Record> {
            self.append(Entry::Sealed { records: 0 })
        }
        fn set_envelope(&mut self, _: crate::state::record::Envelope) {}
        fn location(&self) -> String {
            "the leased store".into()
        }
        fn fence(&self) -> Option<Fence> {
            Some(self.fence.clone())
        }
    }

    impl Store for LeasedStore {
        fn create<'a>(&'a self, _: &'a str, _: &'a str) -> StoreFuture<'a, Box<dyn Journal>> {
            ready(Ok(Box::new(LeasedJournal {
                seen: self.seen.clone(),
                fence: self.lease.subscribe(),
            })))
        }
        fn open<'a>(&'a self, _: &'a str) -> StoreFuture<'a, (Box<dyn Journal>, RunLog)> {
            ready(Err(StoreError::Io("not used".into())))
        }
        fn read<'a>(&'a self, _: &'a str) -> StoreFuture<'a, RunLog> {
            ready(Err(StoreError::Io("not used".into())))
        }
        fn runbook_snapshot<'a>(&'a self, _: &'a str) -> StoreFuture<'a, Option<String>> {
            ready(Ok(None))
        }
        fn list(&self) -> StoreFuture<'_, Vec<String>> {
            ready(Ok(Vec::new()))
        }
        fn is_locked<'a>(&'a self, _: &'a str) -> StoreFuture<'a, bool> {
            ready(Ok(true))
        }
        fn flags(&self) -> String {
            "--state leased".into()
        }
        fn approvals<'a>(
            &'a self,
            _: &'a str,
        ) -> StoreFuture<'a, Vec<Result<crate::state::approval::Delivered, String>>> {
            ready(Ok(Vec::new()))
        }
        fn deliver_approval<'a>(
            &'a self,
            _: &'a str,
            _: &'a str,
            _: &'a str,
        ) -> StoreFuture<'a, String> {
            ready(Err(StoreError::Io("not used".into())))
        }
    }

    /// No text layout is needed: the runbook has no sign-off.
    struct NoLayout;

    impl TextLayout for NoLayout {
        fn head(&self, _: &mut Plan) -> String {
            String::new()
        }
        fn phase(&self, _: usize, _: usize, _: &mut PlanPhase) -> String {
            String::new()
        }
        fn tail(&self, _: &Plan, _: usize, _: usize) -> String {
            String::new()
        }
        fn signed_lines(&self, _: &str, _: Vec<Result<PlanStep, (String, String)>>) -> Vec<String> {
            Vec::new()
        }
    }

    struct Events(Vec<Event>);

    impl Listener for Events {
        fn on(&mut self, event: &Event) {
            self.0.push(event.clone());
        }
    }

    /// The session stops what its steps left running when it ends, which in a test process
    /// would reach the processes of other tests: it runs in a process of its own.
    #[test]
    fn a_run_whose_store_takes_it_away_stops_its_step_and_writes_nothing_more() {
        let out = std::process::Command::new(std::env::current_exe().unwrap())
            .args([
                "--exact",
                "exec::session::tests::lease_lost_in_a_process_of_its_own",
                "--ignored",
                "--nocapture",
                "--test-threads=1",
            ])
            .env("ROLLOUT_TEST_LEASE_CHILD", "1")
            .output()
            .unwrap();
        let stdout = String::from_utf8_lossy(&out.stdout);
        assert!(
            out.status.success() && stdout.contains("1 passed"),
            "{stdout}{}",
            String::from_utf8_lossy(&out.stderr)
        );
    }

    #[test]
    #[ignore = "run by a_run_whose_store_takes_it_away_stops_its_step_and_writes_nothing_more"]
    fn lease_lost_in_a_process_of_its_own() {
        if std::env::var_os("ROLLOUT_TEST_LEASE_CHILD").is_none() {
            return;
        }
        let dir = tempfile::tempdir().unwrap();
        let at = |name: &str| dir.path().join(name);
        let runbook = at("runbook.toml");
        std::fs::write(
            &runbook,
            r#"[runbook]
name = "leased"

[[phases]]
id = "p"
title = "P"

[[phases.steps]]
id = "long"
run = "trap 'echo stopped > stopped; exit 3' INT TERM; echo started > started; while true; do sleep 0.1; done"

[[phases.steps]]
id = "after"
run = "touch after"
"#,
        )
        .unwrap();
        let loaded = crate::runbook::load(&runbook).unwrap();
        let (lease, _) = tokio::sync::watch::channel(None);
        let store = LeasedStore {
            seen: Arc::default(),
            lease,
        };
        let lock = crate::state::lock::try_acquire(
            &at("state"),
            "leased",
            crate::state::lock::Holder::default(),
        )
        .unwrap();
        let settings = Settings {
            operator: "ops".into(),
            os_user: "ops".into(),
            ..Settings::default()
        };
        let no_notifier =
            |_: Vec<NotifyTarget>| -> Box<dyn Listener> { Box::new(Events(Vec::new())) };
        let begin = Begin {
            store: &store,
            lock,
            options: Options {
                grace: Duration::from_secs(1),
                in_doubt: crate::exec::engine::InDoubt::Ask,
                approvals: Approvals::default(),
                operator: "ops".into(),
                os_user: "ops".into(),
                signatures: crate::exec::signatures::Policy::default(),
                operator_keys: Vec::new(),
                wait_for_approvals: None,
            },
            outside_window: None,
            mode: Mode::Forward,
            setup: Setup {
                settings: &settings,
                env: &|_| None,
                layout: &NoLayout,
                notifier: &no_notifier,
                wardens: false,
            },
        };
        let mut events = Events(Vec::new());
        let runtime = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .unwrap();
        let started = at("started");
        let ended = runtime.block_on(async {
            // The store takes the run away once the step is under way.
            let lease = store.lease.clone();
            tokio::spawn(async move {
                for _ in 0..400 {
                    if started.exists() {
                        break;
                    }
                    tokio::time::sleep(Duration::from_millis(50)).await;
                }
                let _ = lease.send(Some("the lease ran out".into()));
            });
            let session = Box::pin(start(
                &loaded,
                "run-1".into(),
                Vec::new(),
                begin,
                &mut events,
                None,
                Interrupts::default(),
            ));
            tokio::time::timeout(Duration::from_secs(60), session).await
        });
        let ended = ended.expect("the session ends without waiting for its step");
        assert!(
            matches!(
                &ended,
                Err(SessionError::Store(StoreError::LeaseLost { why, .. })) if why == "the lease ran out"
            ),
            "{ended:?}"
        );
        assert!(at("stopped").exists(), "the running step was stopped");
        assert!(!at("after").exists(), "no step ran after");
        let seen = store.seen.lock().unwrap();
        assert!(
            seen.after_loss.is_empty(),
            "written after the loss: {:?}",
            seen.after_loss
        );
        assert!(
            seen.entries
                .iter()
                .any(|e| matches!(e, Entry::StepStarted { step, .. } if step == "long"))
        );
        assert!(!seen.entries.iter().any(|e| matches!(
            e,
            Entry::StepFinished { .. } | Entry::RunFinished { .. } | Entry::Sealed { .. }
        )));
    }
}
