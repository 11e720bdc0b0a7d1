//! One function per subcommand: turns validated command-line input into calls on the pipeline
//! and an exit code. The only place, with `ui`, that writes to the terminal.

use std::io::{IsTerminal, Write};
use std::path::{Path, PathBuf};

use crate::cli::{Format, GateArgs, Output, RunArgs, VarArgs};
use crate::config::Settings;
use crate::exec::engine::{InDoubt, Mode, Options, RunEnd};
use crate::exec::event::Listener;
use crate::exec::gates::{Approvals, Prompter};
use crate::exec::interrupts::Interrupts;
use crate::exec::session;
use crate::exit::ExitCode;
use crate::inputs::{self, VarInputs};
use crate::runbook::{self, LoadError, Loaded};
use crate::state::{FileStore, RunState, Store};
use crate::{plan, ui};

mod team;

/// What every subcommand is given: the invocation's settings, resolved once near `main`, and
/// the one async runtime of the process (current-thread: the run loop, its steps' processes,
/// abort criteria, checks, notifications and signals are its tasks; questions at the terminal
/// go to its blocking threads).
pub struct Ctx {
    pub settings: Settings,
    pub runtime: tokio::runtime::Runtime,
    /// This binary serves `rollout __warden` (see [`crate::exec::warden`]).
    pub wardens: bool,
}

impl Ctx {
    fn color_err(&self) -> bool {
        ui::use_color(self.settings.color, std::io::stderr().is_terminal())
    }
    fn color_out(&self) -> bool {
        ui::use_color(self.settings.color, std::io::stdout().is_terminal())
    }
    fn operator(&self) -> String {
        self.settings.operator.clone()
    }
    fn state_dir(&self) -> Option<&PathBuf> {
        self.settings.state_dir.as_ref()
    }
    /// Waits for `work` on the runtime: the store's methods, from the subcommands' own code.
    fn wait<F: std::future::Future>(&self, work: F) -> F::Output {
        self.runtime.block_on(work)
    }
}

/// A variable of the environment: the one lookup the layers below are given, for values that
/// come from it by name (`--var` defaults from `ROLLOUT_VAR_*`, secrets from `env:`).
fn env_var(name: &str) -> Option<String> {
    std::env::var(name).ok()
}

fn load(path: &Path, color: bool) -> Result<Loaded, ExitCode> {
    report_load(runbook::load(path), color)
}

fn report_load(loaded: Result<Loaded, LoadError>, color: bool) -> Result<Loaded, ExitCode> {
    loaded.map_err(|e| match e {
        LoadError::Unreadable(err) => {
            eprintln!("error: {err}");
            ExitCode::UnreadableRunbook
        }
        LoadError::Invalid(source, diagnostics) => {
            eprint!(
                "{}",
                ui::diagnostics::render_all(&source, &diagnostics, color)
            );
            ExitCode::InvalidRunbook
        }
    })
}

fn resolve_vars(loaded: &Loaded, args: &VarArgs) -> Result<Vec<inputs::Resolved>, ExitCode> {
    let given = VarInputs {
        assignments: args.vars.clone(),
        files: args.files.clone(),
    };
    inputs::resolve(&loaded.runbook, &given, &env_var).map_err(|errors| {
        for e in errors {
            // The message quotes what was typed, which may hold control characters.
            eprintln!("error: {}", crate::escape::text(&e));
        }
        ExitCode::Usage
    })
}

pub fn validate(ctx: &Ctx, path: &Path, vars: &VarArgs) -> ExitCode {
    let loaded = match report_load(runbook::load_to_validate(path), ctx.color_err()) {
        Ok(l) => l,
        Err(code) => return code,
    };
    if !vars.vars.is_empty() || !vars.files.is_empty() {
        if let Err(code) = resolve_vars(&loaded, vars) {
            return code;
        }
    }
    let rb = &loaded.runbook;
    let steps: usize = rb.phases.iter().map(|p| p.steps.len() + p.gate.len()).sum();
    println!(
        "`{}` is valid: runbook `{}`, {} phase{}, {steps} step{}",
        loaded.source.name,
        rb.meta.name,
        rb.phases.len(),
        if rb.phases.len() == 1 { "" } else { "s" },
        if steps == 1 { "" } else { "s" }
    );
    // The process ends here: freeing a large runbook's model piece by piece costs more than
    // validating it did, and the OS takes the memory back at once.
    std::mem::forget(loaded);
    ExitCode::Ok
}

pub fn plan(ctx: &Ctx, path: &Path, vars: &VarArgs, format: Format, live: bool) -> ExitCode {
    let loaded = match load(path, ctx.color_err()) {
        Ok(l) => l,
        Err(code) => return code,
    };
    let resolved = match resolve_vars(&loaded, vars) {
        Ok(v) => v,
        Err(code) => return code,
    };
    let run = plan::RunInfo::preview(ctx.operator());
    let report = |errors| render_errors(ctx, &loaded, errors);
    if !live {
        // Written a phase at a time: a large plan is never in memory whole.
        let mut out = std::io::BufWriter::with_capacity(64 * 1024, std::io::stdout().lock());
        let text = ui::plan_view::PlanText {
            color: ctx.color_out(),
        };
        let layout = match format {
            Format::Json => plan::Layout::Json,
            Format::Text => plan::Layout::Text(&text),
        };
        return match plan::write(&mut out, &loaded, &resolved, &run, &ctx.settings, &layout) {
            Ok(written) => {
                if written.and_then(|()| out.flush()).is_err() {
                    return ExitCode::Internal;
                }
                // As in `validate`: the process ends here, leave the memory to the OS.
                std::mem::forget(loaded);
                ExitCode::Ok
            }
            Err(errors) => report(errors),
        };
    }
    let mut built = match plan::build(&loaded, &resolved, &run, &ctx.settings) {
        Ok(p) => p,
        Err(errors) => return report(errors),
    };
    // Live checks read the credentials' secrets: whatever they print is masked.
    let mut masker = crate::redact::Redactor::default();
    if live {
        // Credentials need the real values of the secrets they name, and only of those.
        let pc = &loaded.runbook.defaults.prometheus_client;
        let needed: Vec<String> = pc
            .bearer_token
            .into_iter()
            .chain(pc.basic_auth.iter().flat_map(|b| [b.username, b.password]))
            .chain(pc.headers.iter().map(|(_, t)| *t))
            .flat_map(|t| loaded.templates.reads(t))
            .map(str::to_string)
            .collect();
        let wanted: Vec<inputs::Resolved> = resolved
            .iter()
            .filter(|v| needed.contains(&v.name))
            .cloned()
            .collect();
        let mut real = plan::Renderer::new(&loaded, &resolved, &run, &ctx.settings);
        match crate::exec::session::secrets(&loaded, &wanted, &env_var) {
            Ok(values) => {
                let secrets: Vec<&str> = values.iter().map(|(_, v)| v.as_str()).collect();
                masker = match crate::redact::Redactor::new(&secrets) {
                    Ok(m) => m,
                    Err(e) => {
                        eprintln!("error: {e}");
                        return ExitCode::Internal;
                    }
                };
                for (name, value) in values {
                    real.reveal(&name, &value);
                }
            }
            Err(e) => {
                eprintln!("error: {e}");
                return ExitCode::Usage;
            }
        }
        let conn = match real.prometheus_conn() {
            Ok(c) => c,
            Err(e) => {
                eprintln!(
                    "error: cannot render [defaults.prometheus_client]: {}",
                    e.message
                );
                return ExitCode::Usage;
            }
        };
        ctx.runtime.block_on(crate::exec::checks::live_checks(
            &mut built,
            &conn,
            std::time::Duration::from_secs(10),
        ));
    }
    let mut out = crate::redact::MaskedWriter::new(
        std::io::BufWriter::with_capacity(64 * 1024, std::io::stdout().lock()),
        &masker,
    );
    let written = match format {
        Format::Text => {
            out.write_all(ui::plan_view::render(&mut built, ctx.color_out()).as_bytes())
        }
        Format::Json => serde_json::to_writer_pretty(&mut out, &built)
            .map_err(std::io::Error::from)
            .and_then(|()| out.write_all(b"\n")),
    };
    if written.and_then(|()| out.flush()).is_err() {
        return ExitCode::Internal;
    }
    // As in `validate`: the process ends here, leave the memory to the OS.
    std::mem::forget(built);
    std::mem::forget(loaded);
    ExitCode::Ok
}

/// Steps that cannot be rendered with the values given, located in the runbook (exit 2).
fn render_errors(ctx: &Ctx, loaded: &Loaded, errors: Vec<plan::StepRenderError>) -> ExitCode {
    let diagnostics: Vec<runbook::Diagnostic> = errors
        .into_iter()
        .map(|e| {
            runbook::Diagnostic::new(
                e.error.span,
                if e.step.contains(' ') || e.step.starts_with('`') {
                    // Not a step: an abort criterion, a phase's budget, the change window.
                    format!("cannot render {}: {}", e.step, e.error.message)
                } else {
                    format!("cannot render step `{}`: {}", e.step, e.error.message)
                },
            )
            .label("while rendering this")
        })
        .collect();
    eprint!(
        "{}",
        ui::diagnostics::render_all(&loaded.source, &diagnostics, ctx.color_err())
    );
    ExitCode::Usage
}

/// Refuses approval flags that name no gate of the runbook: a typo during an incident must not
/// silently leave a gate unapproved.
/// Refuses, before anything runs, approval flags the gates would refuse: a gate that does not
/// exist or is of another kind, a role the sign-off does not have, an item number or text no
/// checklist has, a severe confirm's wrong word (see `exec::preapproval`).
fn check_approvals(
    ctx: &Ctx,
    loaded: &Loaded,
    g: &GateArgs,
    vars: &[inputs::Resolved],
    who: &crate::exec::gates::Who,
    run_id: Option<&str>,
) -> Result<(), ExitCode> {
    let given = approvals(g);
    if given.approve.is_empty()
        && given.checks.is_empty()
        && given.signoffs.is_empty()
        && given.signoff_files.is_empty()
    {
        return Ok(());
    }
    // Item texts and words are compared as the run renders them.
    let preview = plan::build(
        loaded,
        vars,
        &plan::RunInfo::preview(who.operator.clone()),
        &ctx.settings,
    )
    .ok();
    let problems = crate::exec::preapproval::check(loaded, preview.as_ref(), &given, who, run_id);
    if problems.is_empty() {
        return Ok(());
    }
    // They quote flags and rendered texts: shown with control characters escaped.
    for p in problems {
        eprintln!("error: {}", crate::escape::text(&p));
    }
    eprintln!("error: nothing was run; correct the flags and try again");
    Err(ExitCode::Usage)
}

fn approvals(g: &GateArgs) -> Approvals {
    Approvals {
        yes: g.yes,
        approve: g.approve.clone(),
        checks: g.check.clone(),
        signoffs: g.signoff.clone(),
        signoff_files: g.signoff_file.clone(),
    }
}

fn grace(run: &RunArgs) -> Result<std::time::Duration, ExitCode> {
    runbook::duration::parse_duration(&run.grace)
        .map(|d| d.0)
        .map_err(|why| {
            eprintln!("error: bad `--grace {}`: {why}", run.grace);
            ExitCode::Usage
        })
}

fn listener(ctx: &Ctx, output: Output, runbook: &runbook::Source) -> Box<dyn Listener> {
    match output {
        Output::Json => Box::new(ui::terminal::JsonLines),
        Output::Text => Box::new(
            ui::terminal::TerminalView::new(std::io::stderr().is_terminal(), ctx.color_err())
                .with_runbook(runbook.clone(), ctx.color_err()),
        ),
    }
}

/// Ctrl-C once: stop the step gracefully and pause. Twice: kill it now. SIGTERM: stop and pause.
/// A task of the runtime, seen even while a question waits at the terminal (questions are asked
/// on a blocking thread); the handlers are in place when this returns. Called on the runtime.
/// Turns SIGINT and SIGTERM into the run's interrupts. Holding a lease (team mode), rollout is
/// not suspended by Ctrl-Z (SIGTSTP): its lease would run out while its step runs on, and a holder
/// elsewhere could take the run over and run steps at the same time.
fn watch_signals(interrupts: &Interrupts, leased: bool) {
    use tokio::signal::unix::{SignalKind, signal};
    if leased {
        if let Ok(mut tstp) = signal(SignalKind::from_raw(
            nix::sys::signal::Signal::SIGTSTP as i32,
        )) {
            tokio::spawn(async move {
                while tstp.recv().await.is_some() {
                    eprintln!(
                        "\nrollout: not suspended: in team mode its lease would run out while the step runs on, and another holder could take the run over; Ctrl-C stops the run"
                    );
                }
            });
        }
    }
    let (Ok(mut int), Ok(mut term)) = (
        signal(SignalKind::interrupt()),
        signal(SignalKind::terminate()),
    ) else {
        return;
    };
    let ints = interrupts.clone();
    tokio::spawn(async move {
        loop {
            let sig = tokio::select! {
                _ = int.recv() => 2,
                _ = term.recv() => 15,
            };
            if ints.record(sig) == 1 {
                ints.interrupt();
            } else {
                ints.kill();
            }
        }
    });
}

fn exit_for(end: &RunEnd) -> ExitCode {
    match end {
        RunEnd::Succeeded => ExitCode::Ok,
        RunEnd::Failed { check: true, .. } => ExitCode::CheckFailed,
        RunEnd::Failed { .. } => ExitCode::StepFailed,
        RunEnd::RollbackRequested { .. } | RunEnd::RollbackNotDone { .. } => {
            ExitCode::RollbackRequested
        }
        RunEnd::RolledBack { complete: true } => ExitCode::RolledBack,
        RunEnd::RolledBack { complete: false } => ExitCode::RollbackIncomplete,
        RunEnd::Paused { .. } => ExitCode::Paused,
        RunEnd::WaitingForApproval { .. } => ExitCode::WaitingForApproval,
        RunEnd::Interrupted { signal: 15 } => ExitCode::Terminated,
        RunEnd::Interrupted { .. } => ExitCode::Interrupted,
    }
}

fn report(result: Result<session::Ended, session::SessionError>, store: &dyn Store) -> ExitCode {
    match result {
        Err(session::SessionError::Store(e @ crate::state::StoreError::Unreachable { .. })) => {
            let run = match &e {
                crate::state::StoreError::Unreachable { run, .. } => run.clone(),
                _ => String::new(),
            };
            eprintln!(
                "error: {e}\n  once the database is back, `rollout resume {run} {}` continues the run (after the lease has run out; the step that was running is in doubt)",
                store.flags()
            );
            ExitCode::Paused
        }
        Ok(r) => exit_for(&r.end),
        Err(session::SessionError::Secret(msg)) => {
            eprintln!("error: {msg}");
            ExitCode::Usage
        }
        Err(session::SessionError::Store(e @ crate::state::StoreError::Io(_))) => {
            eprintln!(
                "error: {e}\n  the run's journal (its audit log) could not be written, so no further step runs; fix the cause (disk space, permissions), then `rollout resume` continues the run"
            );
            ExitCode::Internal
        }
        Err(session::SessionError::Store(e @ crate::state::StoreError::LeaseLost { .. })) => {
            // Another rollout may hold the run now (a store with leases); see `state::Fence`.
            eprintln!("error: {e}");
            ExitCode::Locked
        }
        Err(session::SessionError::Store(e)) => {
            eprintln!("error: {e}");
            ExitCode::Internal
        }
    }
}

pub fn run(ctx: &Ctx, path: &Path, vars: &VarArgs, run: &RunArgs) -> ExitCode {
    let loaded = match load(path, ctx.color_err()) {
        Ok(l) => l,
        Err(code) => return code,
    };
    let resolved = match resolve_vars(&loaded, vars) {
        Ok(v) => v,
        Err(code) => return code,
    };
    // Refuse before any side effect if any step cannot be rendered with these values.
    if let Err(errors) = plan::check(
        &loaded,
        &resolved,
        &plan::RunInfo::preview(ctx.operator()),
        &ctx.settings,
    ) {
        return render_errors(ctx, &loaded, errors);
    }
    let outside = match check_window(ctx, &loaded, &resolved, run, "run") {
        Ok(o) => o,
        Err(code) => return code,
    };
    if ctx.settings.state.is_some() {
        return team::run(ctx, &loaded, resolved, run, outside);
    }
    let store = FileStore::new(session::state_dir_for(
        &loaded.source.path,
        ctx.state_dir().cloned(),
    ));
    let run_id = crate::state::new_run_id();
    let lock = match take_lock(ctx, &store, &loaded, &resolved, "run", &run_id, run) {
        Ok(l) => l,
        Err(code) => return code,
    };
    run_session(
        ctx,
        &loaded,
        &store,
        run,
        InDoubt::Ask,
        lock,
        Session::Start(run_id, resolved, Mode::Forward),
        outside,
    )
}

/// "Now", for change windows: `ROLLOUT_NOW` (an RFC 3339 time; for tests only, undocumented
/// in `--help`), else the system clock.
fn now(ctx: &Ctx) -> Result<jiff::Timestamp, ExitCode> {
    match &ctx.settings.now {
        Some(text) if !text.trim().is_empty() => text.trim().parse().map_err(|e| {
            eprintln!("error: `ROLLOUT_NOW={text}` is not an RFC 3339 time: {e}");
            ExitCode::Usage
        }),
        _ => Ok(jiff::Timestamp::now()),
    }
}

/// Refuses to `run` or `resume` outside the runbook's change window, before any side effect,
/// naming the next opening; with `--outside-window --reason`, goes ahead and says what to
/// record. A rollback is never held back by a window.
fn check_window(
    ctx: &Ctx,
    loaded: &Loaded,
    vars: &[inputs::Resolved],
    run: &RunArgs,
    command: &str,
) -> Result<Option<session::OutsideWindow>, ExitCode> {
    let renderer = plan::Renderer::new(
        loaded,
        vars,
        &plan::RunInfo::preview(ctx.operator()),
        &ctx.settings,
    );
    let window = match renderer.window() {
        Ok(Some(w)) => w,
        Ok(None) => return Ok(None),
        Err(error) => {
            return Err(render_errors(
                ctx,
                loaded,
                vec![plan::StepRenderError {
                    step: "`[runbook.window]`".into(),
                    error,
                }],
            ));
        }
    };
    let now = now(ctx)?;
    let Some(why) = window.refusal(now) else {
        if run.outside_window {
            eprintln!(
                "note: it is {} in {}, inside the change window ({window}): `--outside-window` is not needed and is not recorded",
                window.local(now),
                window.zone_name
            );
        }
        return Ok(None);
    };
    let runbook = &loaded.runbook.meta.name;
    match (&run.outside_window, &run.reason) {
        (true, Some(reason)) if !reason.trim().is_empty() => {
            eprintln!(
                "warning: {command} of `{runbook}` goes ahead outside its change window: {why}; reason (recorded): {reason}"
            );
            Ok(Some(session::OutsideWindow {
                reason: reason.clone(),
                window: window.to_string(),
                local_time: format!("{} {}", window.local(now), window.zone_name),
            }))
        }
        (true, _) => {
            eprintln!(
                "error: `--outside-window` needs a `--reason` saying why (it is recorded in the audit log)"
            );
            Err(ExitCode::Usage)
        }
        (false, _) => {
            eprintln!(
                "error: `{runbook}` may not {command} now: {why}\n  nothing was run; wait for the window, or to go ahead anyway give `--outside-window --reason \"...\"` (recorded in the run's audit log). A rollback is never held back by the window."
            );
            Err(ExitCode::OutsideWindow)
        }
    }
}

/// How a session begins: a new run, or an existing one from its journal.
enum Session {
    Start(String, Vec<inputs::Resolved>, Mode),
    Resume(Resumed, Mode),
}

/// An existing run, opened for appending.
struct Resumed {
    journal: Box<dyn crate::state::Journal>,
    state: Box<RunState>,
    recovery: Option<crate::state::Recovery>,
    vars: Vec<inputs::Resolved>,
    /// Team mode: where the runbook copy stored with the run was written, when its file is not
    /// on this machine; kept as long as the session.
    _snapshot: Option<tempfile::NamedTempFile>,
}

/// Takes the run's target lock, or says who holds it (exit 12). Processes that a dead holder
/// left running are stopped first (`grace` between signals), and the operator is told.
fn take_lock(
    ctx: &Ctx,
    store: &FileStore,
    loaded: &Loaded,
    vars: &[inputs::Resolved],
    command: &str,
    run_id: &str,
    run: &RunArgs,
) -> Result<crate::state::lock::TargetLock, ExitCode> {
    use crate::exec::leftovers::{self, TakeError};
    use crate::state::lock::LockError;
    let grace = grace(run)?;
    let target = session::lock_target(loaded, vars, &ctx.settings).map_err(|why| {
        eprintln!("error: {why}");
        ExitCode::Usage
    })?;
    let holder = lock_holder(ctx, command, run_id);
    let mut tell = |message: String| eprintln!("{message}");
    leftovers::take_lock(&store.root(), &target, &holder, grace, &mut tell).map_err(|e| match e {
        TakeError::Lock(LockError::Held { holder, .. }) => {
            eprintln!(
                "error: `{}` is locked by {holder}\n  another rollout is working on this target; wait for it, or if its holder is stuck, `rollout unlock {} --state-dir {}`",
                holder.target,
                holder.lock_id,
                store.root().display()
            );
            ExitCode::Locked
        }
        TakeError::Stuck { holder, left } => {
            let pids: Vec<String> = left
                .iter()
                .map(|p| format!("pid {} ({}, sent {})", p.pid, p.name, p.signal))
                .collect();
            eprintln!(
                "error: `{target}` is still locked: processes left by run {} (rollout pid {}, dead) survived SIGKILL: {}\n  they are stuck in the kernel or belong to another user; once they are gone (`ps -o pid,stat,user,cmd -p {}`), try again",
                holder.run,
                holder.pid,
                pids.join(", "),
                left.iter()
                    .map(|p| p.pid.to_string())
                    .collect::<Vec<_>>()
                    .join(",")
            );
            ExitCode::Locked
        }
        TakeError::Lock(other) => {
            eprintln!("error: {other}");
            ExitCode::Internal
        }
    })
}

/// Who takes a target lock for `command` of run `run_id`: the operator, and this process as a
/// holder that takes over after it died can find what it left running (its start and the tag
/// its steps' processes carry). The same for a lock file and a lease in the database.
pub(crate) fn lock_holder(ctx: &Ctx, command: &str, run_id: &str) -> crate::state::lock::Holder {
    let who = crate::state::who(&ctx.settings.operator, &ctx.settings.os_user);
    let (started, pid_scope) = crate::exec::leftovers::own_identity();
    crate::state::lock::Holder {
        operator: who.operator,
        os_user: who.os_user,
        host: who.host,
        pid: who.pid,
        command: command.into(),
        run: run_id.into(),
        started,
        pid_scope,
        tree_tag: crate::exec::process::tree_tag().to_string(),
        ..Default::default()
    }
}

/// The part `run`, `resume` and `rollback` share: approvals, options, signals, the view, the
/// notifier and the prompter, then the session itself on the runtime.
#[allow(clippy::too_many_arguments)]
fn run_session(
    ctx: &Ctx,
    loaded: &Loaded,
    store: &dyn Store,
    run: &RunArgs,
    in_doubt: InDoubt,
    lock: crate::state::lock::TargetLock,
    begin: Session,
    outside_window: Option<session::OutsideWindow>,
) -> ExitCode {
    let (vars, started_by, run_id) = match &begin {
        Session::Start(_, vars, _) => (vars.as_slice(), ctx.operator(), None),
        Session::Resume(r, _) => (
            r.vars.as_slice(),
            r.state.operator.clone(),
            Some(r.state.run_id.clone()),
        ),
    };
    let who = crate::exec::gates::Who {
        operator: ctx.operator(),
        os_user: ctx.settings.os_user.clone(),
        started_by,
    };
    if let Err(code) = check_approvals(ctx, loaded, &run.gates, vars, &who, run_id.as_deref()) {
        return code;
    }
    let signatures = match crate::exec::signatures::policy(loaded, &ctx.settings) {
        Ok(p) => p,
        Err(why) => {
            eprintln!("error: {why}\n  nothing was run");
            return ExitCode::Usage;
        }
    };
    let operator_keys = match &signatures.allowed_signers {
        Some(file) if excludes_operator(loaded) => {
            crate::exec::signatures::operator_keys(&ctx.settings, file)
        }
        _ => Vec::new(),
    };
    let grace = match grace(run) {
        Ok(g) => g,
        Err(code) => return code,
    };
    let wait_for_approvals = match run.gates.wait_for_approvals.as_deref().map(|w| {
        runbook::duration::parse_duration(w)
            .map(|d| d.0)
            .map_err(|why| format!("bad `--wait-for-approvals {w}`: {why}"))
    }) {
        Some(Err(why)) => {
            eprintln!("error: {why}");
            return ExitCode::Usage;
        }
        Some(Ok(d)) => Some(d),
        None => None,
    };
    let options = Options {
        grace,
        in_doubt,
        approvals: approvals(&run.gates),
        operator: ctx.operator(),
        os_user: ctx.settings.os_user.clone(),
        signatures,
        operator_keys,
        wait_for_approvals,
    };
    let layout = ui::plan_view::PlanText { color: false };
    let handle = ctx.runtime.handle().clone();
    let notifier = move |targets| -> Box<dyn Listener> {
        Box::new(ui::notify::Notifier::new(targets, &handle))
    };
    let setup = session::Setup {
        settings: &ctx.settings,
        env: &env_var,
        layout: &layout,
        notifier: &notifier,
        wardens: ctx.wardens,
    };
    crate::exec::process::become_subreaper();
    let mut view = listener(ctx, run.output, &loaded.source);
    let interrupts = Interrupts::default();
    let prompter = ui::prompt::TerminalPrompter::if_interactive(
        run.gates.no_input || ctx.settings.ci,
        &interrupts,
    )
    .map(|p| Box::new(p) as Box<dyn Prompter + Send>);
    let leased = lock.is_lease();
    let result = ctx.runtime.block_on(async {
        watch_signals(&interrupts, leased);
        match begin {
            Session::Start(run_id, vars, mode) => {
                let begin = session::Begin {
                    store,
                    lock,
                    options,
                    outside_window,
                    mode,
                    setup,
                };
                Box::pin(session::start(
                    loaded,
                    run_id,
                    vars,
                    begin,
                    view.as_mut(),
                    prompter,
                    interrupts.clone(),
                ))
                .await
            }
            Session::Resume(r, mode) => {
                let begin = session::Begin {
                    store,
                    lock,
                    options,
                    outside_window,
                    mode,
                    setup,
                };
                Box::pin(session::resume(
                    loaded,
                    r.journal,
                    *r.state,
                    r.recovery,
                    r.vars,
                    begin,
                    view.as_mut(),
                    prompter,
                    interrupts.clone(),
                ))
                .await
            }
        }
    });
    // A store that could not be reached in time took the run away to keep the lease's
    // promise: the run stops as paused, to be resumed once the store is back.
    let result = match (result, store.lost_contact()) {
        (
            Err(session::SessionError::Store(crate::state::StoreError::LeaseLost { run, .. })),
            Some(why),
        ) => Err(session::SessionError::Store(
            crate::state::StoreError::Unreachable { run, why },
        )),
        (result, _) => result,
    };
    report(result, store)
}

/// Whether a sign-off of the runbook excludes the operator (then the operator's own keys are
/// looked up, to refuse approvals made with them).
fn excludes_operator(loaded: &Loaded) -> bool {
    loaded.runbook.phases.iter().any(|p| {
        p.steps.iter().chain(&p.gate).any(
            |s| matches!(&s.kind, runbook::model::StepKind::Signoff(so) if so.exclude_operator),
        )
    })
}

/// State directories to look in when none is given: `./.rollout` and `./*/.rollout`.
fn state_dirs(flag: Option<&PathBuf>) -> Vec<PathBuf> {
    if let Some(dir) = flag {
        return vec![dir.clone()];
    }
    let mut dirs = vec![PathBuf::from(".rollout")];
    if let Ok(entries) = std::fs::read_dir(".") {
        let mut subs: Vec<PathBuf> = entries
            .filter_map(Result::ok)
            .map(|e| e.path().join(".rollout"))
            .filter(|p| p.is_dir())
            .collect();
        subs.sort();
        dirs.extend(subs);
    }
    dirs.retain(|d| d.is_dir());
    dirs
}

/// Finds a run (or the latest) in the state directories and reads its journal.
fn read_run(
    ctx: &Ctx,
    run_id: Option<&str>,
) -> Result<(FileStore, String, crate::state::RunLog), ExitCode> {
    let (store, id) = find_run(ctx, run_id)?;
    match ctx.wait(store.read(&id)) {
        Ok(log) => Ok((store, id, log)),
        Err(e) => {
            eprintln!("error: {e}");
            Err(ExitCode::Usage)
        }
    }
}

/// Finds a run (or the latest) in the state directories.
fn find_run(ctx: &Ctx, run_id: Option<&str>) -> Result<(FileStore, String), ExitCode> {
    let dirs = state_dirs(ctx.state_dir());
    let mut latest: Option<(PathBuf, String)> = None;
    for dir in &dirs {
        let store = FileStore::new(dir.clone());
        let Ok(ids) = ctx.wait(store.list()) else {
            continue;
        };
        match run_id {
            Some(id) if ids.iter().any(|i| i == id) => return Ok((store, id.to_string())),
            Some(_) => {}
            None => {
                if let Some(last) = ids.last() {
                    if latest.as_ref().is_none_or(|(_, l)| last > l) {
                        latest = Some((dir.clone(), last.clone()));
                    }
                }
            }
        }
    }
    if let Some((dir, id)) = latest {
        return Ok((FileStore::new(dir), id));
    }
    let looked: Vec<String> = if dirs.is_empty() {
        vec!["./.rollout".into()]
    } else {
        dirs.iter().map(|d| d.display().to_string()).collect()
    };
    match run_id {
        Some(id) => eprintln!(
            "error: no run `{id}` in {}; give `--state-dir DIR` if the runs are elsewhere",
            looked.join(", ")
        ),
        None => eprintln!(
            "error: no runs in {}; give `--state-dir DIR` if the runs are elsewhere",
            looked.join(", ")
        ),
    }
    Err(ExitCode::Usage)
}

/// The newest run that has not finished, for `rollout resume` without a run id: a run that
/// finished later must not hide an older one still waiting (for an approval, or its rollback).
/// Says which it picked when others are unfinished too.
fn find_unfinished(ctx: &Ctx) -> Result<(FileStore, String), ExitCode> {
    let mut unfinished: Vec<(String, PathBuf, String)> = Vec::new();
    let mut newest_finished: Option<String> = None;
    let dirs = state_dirs(ctx.state_dir());
    for dir in &dirs {
        let store = FileStore::new(dir.clone());
        for id in ctx.wait(store.list()).unwrap_or_default() {
            let Ok(log) = ctx.wait(store.read(&id)) else {
                continue;
            };
            let state = RunState::fold(&log.records);
            if state.is_finished() {
                if newest_finished.as_ref().is_none_or(|n| &id > n) {
                    newest_finished = Some(id);
                }
            } else {
                let label = format!("{id} (`{}`)", state.runbook_name);
                unfinished.push((id, dir.clone(), label));
            }
        }
    }
    unfinished.sort_by(|a, b| a.0.cmp(&b.0));
    let Some((id, dir, _)) = unfinished.last().cloned() else {
        if dirs.is_empty() || newest_finished.is_none() {
            return find_run(ctx, None);
        }
        eprintln!(
            "error: every run in {} has finished (the newest is `{}`); nothing to resume",
            dirs.iter()
                .map(|d| d.display().to_string())
                .collect::<Vec<_>>()
                .join(", "),
            newest_finished.unwrap_or_default()
        );
        return Err(ExitCode::Usage);
    };
    if unfinished.len() > 1 {
        let others: Vec<&str> = unfinished[..unfinished.len() - 1]
            .iter()
            .rev()
            .map(|(_, _, label)| label.as_str())
            .collect();
        eprintln!(
            "resuming `{id}`, the newest unfinished run; also unfinished: {} (`rollout resume RUN_ID` picks one)",
            others.join(", ")
        );
    } else if newest_finished.as_ref().is_some_and(|n| n > &id) {
        eprintln!(
            "resuming `{id}`, the newest unfinished run (`{}` is newer but has finished)",
            newest_finished.unwrap_or_default()
        );
    }
    Ok((FileStore::new(dir), id))
}

/// How `rollout resume` goes on.
#[derive(Clone, Copy)]
pub struct ResumeArgs<'a> {
    pub allow_changed: bool,
    pub in_doubt: InDoubt,
    /// Team mode: the runbook to use when the run's own file is not on this machine.
    pub runbook: Option<&'a Path>,
}

pub fn resume(ctx: &Ctx, run_id: Option<&str>, how: &ResumeArgs<'_>, run: &RunArgs) -> ExitCode {
    let ResumeArgs {
        allow_changed,
        in_doubt,
        runbook,
    } = *how;
    if ctx.settings.state.is_some() {
        return team::resume(ctx, run_id, how, run);
    }
    if runbook.is_some() {
        eprintln!(
            "error: `--runbook` is for team mode (`--state postgres://...`), where a run may have started on another machine; here the run resumes with its own runbook file"
        );
        return ExitCode::Usage;
    }
    let found = match run_id {
        Some(_) => find_run(ctx, run_id),
        None => find_unfinished(ctx),
    };
    let (store, id) = match found {
        Ok(found) => found,
        Err(code) => return code,
    };
    // A run that finished but whose log was never sealed needs only the seal: no runbook, no
    // target lock.
    if ctx
        .wait(store.read(&id))
        .is_ok_and(|log| RunState::fold(&log.records).is_finished())
    {
        return seal_finished(ctx, &store, &id);
    }
    let (loaded, opened) = match open_run(ctx, &store, &id, allow_changed, "resume", run) {
        Ok(x) => x,
        Err(code) => return code,
    };
    let (lock, resumed) = opened;
    if resumed.state.is_finished() {
        eprintln!(
            "error: run `{id}` has already finished; nothing to resume (see `rollout status {id}`)"
        );
        return ExitCode::Usage;
    }
    // A run that owes a rollback is not held back by the window: what resumes is the rollback.
    let outside = if resumed.state.rollback.is_some() {
        None
    } else {
        match check_window(ctx, &loaded, &resumed.vars, run, "resume") {
            Ok(o) => o,
            Err(code) => return code,
        }
    };
    run_session(
        ctx,
        &loaded,
        &store,
        run,
        in_doubt,
        lock,
        Session::Resume(resumed, Mode::Forward),
        outside,
    )
}

/// `rollout resume` of a finished run: seals its log if a crash left it unsealed, and says so;
/// otherwise there is nothing to resume.
fn seal_finished(ctx: &Ctx, store: &FileStore, id: &str) -> ExitCode {
    match ctx.wait(session::seal_finished(store, id, &ctx.settings)) {
        Ok(Some((seal, state))) => {
            let status = match &state.standing {
                Some(crate::state::record::Standing::Finished { status, at, .. }) => format!(
                    "{} at {at}",
                    serde_json::to_value(status)
                        .ok()
                        .and_then(|v| v.as_str().map(|s| s.replace('_', " ")))
                        .unwrap_or_default()
                ),
                _ => String::new(),
            };
            eprintln!(
                "run `{id}` had finished ({status}), but rollout stopped before it sealed the run's audit log; sealed it now, recorded as a recovery (`seal_recovered`, records {} on)",
                state.unsealed_from
            );
            eprintln!("audit digest: {}", seal.hash);
            ExitCode::Ok
        }
        Ok(None) => {
            eprintln!(
                "error: run `{id}` has already finished and its log is sealed; nothing to resume (see `rollout status {id}`, `rollout audit verify {id}`)"
            );
            ExitCode::Usage
        }
        Err(e @ crate::state::StoreError::Locked(..)) => {
            eprintln!("error: {e}");
            ExitCode::Locked
        }
        Err(e) => {
            eprintln!("error: {e}");
            ExitCode::Usage
        }
    }
}

/// Run `id` as its journal has it, to go on with it; refused when the run has no start record.
/// The same for files and the database.
pub(crate) fn started_state(ctx: &Ctx, store: &dyn Store, id: &str) -> Result<RunState, ExitCode> {
    let peek = ctx.wait(store.read(id)).map_err(|e| {
        eprintln!("error: {e}");
        ExitCode::Usage
    })?;
    let state = RunState::fold(&peek.records);
    if state.run_id.is_empty() {
        eprintln!("error: run `{id}` has no start record; it cannot be resumed");
        return Err(ExitCode::Usage);
    }
    Ok(state)
}

/// Opens an existing run for appending: reads its state, loads its runbook (refusing a changed
/// one unless allowed), takes the target lock, then the run's own lock.
fn open_run(
    ctx: &Ctx,
    store: &FileStore,
    id: &str,
    allow_changed: bool,
    command: &str,
    run: &RunArgs,
) -> Result<(Loaded, (crate::state::lock::TargetLock, Resumed)), ExitCode> {
    let state = started_state(ctx, store, id)?;
    let path = PathBuf::from(&state.runbook);
    let loaded = load(&path, ctx.color_err())?;
    refuse_changed(
        ctx,
        store,
        id,
        &loaded,
        &state.digest,
        command,
        allow_changed,
    )?;
    let vars = session::vars_from_state(&loaded, &state).map_err(|why| {
        eprintln!("error: {why}");
        ExitCode::Usage
    })?;
    let lock = take_lock(ctx, store, &loaded, &vars, command, id, run)?;
    let (journal, loaded_log) = ctx.wait(store.open(id)).map_err(|e| {
        eprintln!("error: {e}");
        match e {
            crate::state::StoreError::Locked(..) => ExitCode::Locked,
            _ => ExitCode::Usage,
        }
    })?;
    if let Some(r) = &loaded_log.recovery {
        eprintln!(
            "warning: the journal of run `{id}` was cut short: {}; recovered its first {} records and set {} bytes aside in {}",
            r.detail, r.good_records, r.dropped_bytes, r.saved_as
        );
    }
    let state = RunState::fold(&loaded_log.records);
    Ok((
        loaded,
        (
            lock,
            Resumed {
                journal,
                state: Box::new(state),
                recovery: loaded_log.recovery,
                vars,
                _snapshot: None,
            },
        ),
    ))
}

/// What `rollout rollback` was asked for.
#[derive(Clone, Copy)]
pub struct RollbackArgs<'a> {
    pub run_id: Option<&'a str>,
    pub to: Option<&'a str>,
    pub no_run: bool,
    pub dry_run: bool,
    pub allow_changed: bool,
}

/// `rollout rollback`: undoes what a run did (its saved state), or runs the runbook's own
/// rollback section when there is no run to go by.
pub fn rollback(
    ctx: &Ctx,
    path: &Path,
    vars: &VarArgs,
    args: &RollbackArgs<'_>,
    run: &RunArgs,
) -> ExitCode {
    let RollbackArgs {
        run_id,
        to,
        no_run,
        dry_run,
        allow_changed,
    } = *args;
    if ctx.settings.state.is_some() {
        return team::rollback(ctx, path, vars, args, run);
    }
    let loaded = match load(path, ctx.color_err()) {
        Ok(l) => l,
        Err(code) => return code,
    };
    let store = FileStore::new(session::state_dir_for(
        &loaded.source.path,
        ctx.state_dir().cloned(),
    ));
    let found = if no_run {
        None
    } else {
        match run_id {
            Some(id) => {
                if !ctx
                    .wait(store.list())
                    .unwrap_or_default()
                    .iter()
                    .any(|r| r == id)
                {
                    eprintln!(
                        "error: no run `{id}` in {}; give `--state-dir DIR` if the runs are elsewhere",
                        store.root().display()
                    );
                    return ExitCode::Usage;
                }
                Some(id.to_string())
            }
            None => latest_run_of(ctx, &store, &loaded),
        }
    };
    if found.is_none() && to.is_some() {
        eprintln!(
            "error: `--to` needs a run to go by (there is none of this runbook in {}); the runbook's own rollback section has no phases",
            store.root().display()
        );
        return ExitCode::Usage;
    }
    let reason = format!("rollback requested by {}", ctx.operator());
    let Some(id) = found else {
        // No run state: the runbook's own `[[rollback]]` section, recorded as a run of its own.
        if loaded.runbook.rollback.is_empty() {
            eprintln!(
                "error: there is no run of `{}` in {} and the runbook has no `[[rollback]]` section: nothing to roll back",
                loaded.source.name,
                store.root().display()
            );
            return ExitCode::Usage;
        }
        let resolved = match resolve_vars(&loaded, vars) {
            Ok(v) => v,
            Err(code) => return code,
        };
        if dry_run {
            return rollback_preview(ctx, &loaded, &resolved, None);
        }
        eprintln!(
            "no run of `{}` in {}: running the runbook's own rollback section",
            loaded.source.name,
            store.root().display()
        );
        let run_id = crate::state::new_run_id();
        let lock = match take_lock(ctx, &store, &loaded, &resolved, "rollback", &run_id, run) {
            Ok(l) => l,
            Err(code) => return code,
        };
        return run_session(
            ctx,
            &loaded,
            &store,
            run,
            InDoubt::Ask,
            lock,
            Session::Start(
                run_id,
                resolved,
                Mode::Rollback {
                    phases: vec![crate::exec::engine::RUNBOOK_ROLLBACK.to_string()],
                    reason,
                },
            ),
            None,
        );
    };
    if !vars.vars.is_empty() || !vars.files.is_empty() {
        eprintln!(
            "warning: `--var`/`--vars-file` are ignored: run `{id}` rolls back with the values it ran with"
        );
    }
    if dry_run {
        return run_rollback_preview(ctx, &store, &loaded, &id, to);
    }
    let (loaded, (lock, resumed)) = match open_run(ctx, &store, &id, allow_changed, "rollback", run)
    {
        Ok(x) => x,
        Err(code) => return code,
    };
    let phases = match phases_to_undo(&id, &resumed.state, &loaded.runbook, to) {
        Ok(phases) => phases,
        Err(why) => {
            eprintln!("error: {why}");
            return ExitCode::Usage;
        }
    };
    eprintln!("rolling back run `{id}`");
    run_session(
        ctx,
        &loaded,
        &store,
        run,
        InDoubt::Ask,
        lock,
        Session::Resume(resumed, Mode::Rollback { phases, reason }),
        None,
    )
}

/// `rollout rollback --dry-run` of run `id`: what would be undone, rendered with the values the
/// run ran with. The same for files and the database.
pub(crate) fn run_rollback_preview(
    ctx: &Ctx,
    store: &dyn Store,
    loaded: &Loaded,
    id: &str,
    to: Option<&str>,
) -> ExitCode {
    let Ok(log) = ctx.wait(store.read(id)) else {
        eprintln!("error: cannot read run `{id}`");
        return ExitCode::Internal;
    };
    let state = RunState::fold(&log.records);
    let resolved = match session::vars_from_state(loaded, &state) {
        Ok(v) => v,
        Err(why) => {
            eprintln!("error: {why}");
            return ExitCode::Usage;
        }
    };
    rollback_preview(ctx, loaded, &resolved, Some((&state, to)))
}

/// The phases a rollback of run `id` undoes: a rollback under way goes on as it was planned
/// (none given); a new one undoes the phases that ran, down to `--to`, which must be one of
/// them. Refused, with why, for a run rolled back completely already. The same for files and
/// the database.
pub(crate) fn phases_to_undo(
    id: &str,
    state: &RunState,
    runbook: &runbook::model::Runbook,
    to: Option<&str>,
) -> Result<Vec<String>, String> {
    match &state.rollback {
        Some(rb) if rb.finished == Some(true) => {
            Err(format!("run `{id}` was already rolled back completely"))
        }
        Some(rb) if rb.finished.is_none() => Ok(Vec::new()),
        _ => crate::exec::engine::phases_to_roll_back(state, runbook, to),
    }
}

/// The latest run of this runbook (same file) in the store that has not been rolled back.
fn latest_run_of(ctx: &Ctx, store: &FileStore, loaded: &Loaded) -> Option<String> {
    let path = std::fs::canonicalize(&loaded.source.path).ok()?;
    let path = path.display().to_string();
    ctx.wait(store.list()).ok()?.into_iter().rev().find(|id| {
        ctx.wait(store.read(id)).is_ok_and(|log| {
            let state = RunState::fold(&log.records);
            state.runbook == path
                && state
                    .rollback
                    .as_ref()
                    .is_none_or(|rb| rb.finished != Some(true))
        })
    })
}

/// `rollout rollback --dry-run`: the rollback plan, rendered as it would run; nothing written.
fn rollback_preview(
    ctx: &Ctx,
    loaded: &Loaded,
    vars: &[inputs::Resolved],
    run: Option<(&RunState, Option<&str>)>,
) -> ExitCode {
    let (phases, done): (Vec<String>, Vec<String>) = match run {
        None => (
            vec![crate::exec::engine::RUNBOOK_ROLLBACK.to_string()],
            Vec::new(),
        ),
        Some((state, to)) => match state.rollback.as_ref().filter(|rb| rb.finished.is_none()) {
            // A rollback under way: what is left of it (the phases done still cover theirs).
            Some(rb) => (rb.phases.clone(), rb.phases_done.clone()),
            None => match crate::exec::engine::phases_to_roll_back(state, &loaded.runbook, to) {
                Ok(p) => (p, Vec::new()),
                Err(why) => {
                    eprintln!("error: {why}");
                    return ExitCode::Usage;
                }
            },
        },
    };
    let info = match run {
        Some((state, _)) => plan::RunInfo {
            id: state.run_id.clone(),
            operator: ctx.operator(),
            started_at: state.started_at.clone(),
        },
        None => plan::RunInfo::preview(ctx.operator()),
    };
    let mut renderer = plan::Renderer::new(loaded, vars, &info, &ctx.settings);
    if let Some((state, _)) = run {
        for (name, value) in &state.captures {
            renderer.set_capture(name, value);
        }
    }
    let of = match run {
        Some((state, _)) => format!(
            "run `{}`, started {} by {}",
            state.run_id, state.started_at, state.operator
        ),
        None => "no run: the runbook's own `[[rollback]]` section".to_string(),
    };
    let view =
        ui::plan_view::rollback_text(loaded, &mut renderer, &phases, &done, &of, ctx.color_out());
    print!("{view}");
    ExitCode::Ok
}

pub fn status(ctx: &Ctx, run_id: Option<&str>, format: Format) -> ExitCode {
    if ctx.settings.state.is_some() {
        return team::status(ctx, run_id, format);
    }
    let (store, id) = match find_run(ctx, run_id) {
        Ok(found) => found,
        Err(code) => return code,
    };
    let mut view = match run_view(ctx, &store, &id) {
        Ok(view) => view,
        Err(e) => {
            eprintln!("error: {e}");
            return ExitCode::Usage;
        }
    };
    view.approvals_delivered = approvals_delivered(ctx, &store, &id);
    match format {
        Format::Json => println!(
            "{}",
            serde_json::to_string_pretty(&view).unwrap_or_default()
        ),
        Format::Text => print!("{}", ui::status::render(&view)),
    }
    ExitCode::Ok
}

pub fn runs(ctx: &Ctx, format: Format) -> ExitCode {
    if ctx.settings.state.is_some() {
        return team::runs(ctx, format);
    }
    let mut views = Vec::new();
    for dir in state_dirs(ctx.state_dir()) {
        let store = FileStore::new(dir.clone());
        for id in ctx.wait(store.list()).unwrap_or_default() {
            if let Ok(view) = run_view(ctx, &store, &id) {
                views.push(view);
            }
        }
    }
    views.sort_by(|a, b| a.run_id.cmp(&b.run_id));
    match format {
        Format::Json => println!(
            "{}",
            serde_json::to_string_pretty(&views).unwrap_or_default()
        ),
        Format::Text => print!("{}", ui::status::render_list(&views)),
    }
    ExitCode::Ok
}

/// What `rollout audit verify` checks a log against, besides its own chain.
#[derive(Clone, Copy)]
pub struct VerifyArgs<'a> {
    pub digest: Option<&'a str>,
    pub strict: bool,
}

/// Where run `id` stands, for `status` and `runs`: from its journal, or, when it has none, as a
/// run that never started.
fn run_view(
    ctx: &Ctx,
    store: &FileStore,
    id: &str,
) -> Result<ui::status::RunView, crate::state::StoreError> {
    let locked = ctx.wait(store.is_locked(id)).unwrap_or(false);
    match ctx.wait(store.read(id)) {
        Ok(log) => Ok(ui::status::RunView::new(
            &RunState::fold(&log.records),
            locked,
            &store.root(),
            log.recovery.as_ref(),
        )),
        Err(crate::state::StoreError::NeverStarted { .. }) => {
            Ok(ui::status::RunView::never_started(
                id,
                &store.root(),
                store.touched(id).unwrap_or_default(),
                locked,
            ))
        }
        Err(e) => Err(e),
    }
}

/// `rollout audit verify`: checks a run's journal (by run id, or a file) and says what it found.
pub fn audit_verify(ctx: &Ctx, target: &str, args: &VerifyArgs<'_>, format: Format) -> ExitCode {
    let as_file = Path::new(target);
    if ctx.settings.state.is_some() && !as_file.is_file() {
        return team::audit_verify(ctx, target, args, format);
    }
    let (path, in_progress) = if as_file.is_file() {
        (as_file.to_path_buf(), false)
    } else {
        let (store, id) = match find_run(ctx, Some(target)) {
            Ok(found) => found,
            Err(code) => return code,
        };
        if let Err(e @ crate::state::StoreError::NeverStarted { .. }) = ctx.wait(store.read(&id)) {
            eprintln!("error: {e}");
            return ExitCode::AuditFailed;
        }
        let locked = ctx.wait(store.is_locked(&id)).unwrap_or(false);
        (store.journal_path(&id), locked)
    };
    let bytes = match std::fs::read(&path) {
        Ok(b) => b,
        Err(e) => {
            eprintln!("error: cannot read {}: {e}", path.display());
            return ExitCode::Usage;
        }
    };
    let verified = crate::state::audit::verify(&bytes);
    let check = crate::state::verify::Check {
        in_progress,
        published: args.digest,
        strict: args.strict,
        resume_with: resume_command(&path, &verified.records),
    };
    let report = crate::state::verify::check(&path.display().to_string(), &verified, &check);
    show_verification(&report, format)
}

/// What `rollout audit verify` concluded, in `format`, and its exit code. The same for a file
/// and a run in the database.
pub(crate) fn show_verification(
    report: &crate::state::verify::VerifyReport,
    format: Format,
) -> ExitCode {
    match format {
        Format::Json => println!(
            "{}",
            serde_json::to_string_pretty(report).unwrap_or_default()
        ),
        Format::Text => println!("{}: {}", report.file, report.message),
    }
    if report.ok {
        ExitCode::Ok
    } else {
        ExitCode::AuditFailed
    }
}

/// `rollout resume RUN --state-dir DIR` for the run whose journal is `journal`, when the file is
/// where a state directory keeps it (`DIR/runs/RUN/journal.ndjson`).
fn resume_command(journal: &Path, records: &[crate::state::Record]) -> Option<String> {
    let run = &records.first()?.run;
    let run_dir = journal.parent()?;
    if run.is_empty() || run_dir.file_name()? != std::ffi::OsStr::new(run) {
        return None;
    }
    let root = run_dir.parent()?.parent()?;
    let root = std::fs::canonicalize(root).unwrap_or_else(|_| root.to_path_buf());
    Some(format!(
        "rollout resume {run} --state-dir {}",
        crate::runbook::template::shell_quote(&root.display().to_string())
    ))
}

/// `rollout log`: a run's audit log as readable text.
pub fn log(ctx: &Ctx, run_id: Option<&str>) -> ExitCode {
    if ctx.settings.state.is_some() {
        return team::log(ctx, run_id);
    }
    let (_, id, loaded) = match read_run(ctx, run_id) {
        Ok(found) => found,
        Err(code) => return code,
    };
    print!("{}", ui::audit_view::render_log(&loaded.records));
    if let Some(r) = &loaded.recovery {
        println!(
            "\n(the log stops here: {}; `rollout audit verify {id}` checks it)",
            r.detail
        );
    }
    ExitCode::Ok
}

/// `rollout locks`: every target lock in the state directories, who holds it, and what a
/// holder that died left running.
pub fn locks(ctx: &Ctx) -> ExitCode {
    if ctx.settings.state.is_some() {
        return team::locks(ctx);
    }
    let mut any = false;
    for dir in state_dirs(ctx.state_dir()) {
        for listed in crate::state::lock::list(&dir) {
            any = true;
            let left = crate::exec::leftovers::left_behind(&listed);
            let state = match (listed.held, left.is_empty()) {
                (true, true) => "HELD",
                (true, false) => "HELD by leftovers",
                (false, true) => "free",
                (false, false) => "free, leftovers run",
            };
            println!("{}  {state}  {}", listed.holder.lock_id, listed.holder);
            if !left.is_empty() {
                let procs: Vec<String> = left
                    .iter()
                    .map(|(pid, name)| format!("pid {pid} ({name})"))
                    .collect();
                println!(
                    "    its rollout (pid {}) is dead; processes of its steps still run: {}; the next run, resume or rollback of `{}` stops them first",
                    listed.holder.pid,
                    procs.join(", "),
                    listed.holder.target
                );
            }
        }
    }
    if !any {
        println!("no locks");
    }
    ExitCode::Ok
}

/// `rollout unlock`: removes a lock whose holder is stuck, after saying whose it is.
pub fn unlock(ctx: &Ctx, lock_id: &str, yes: bool) -> ExitCode {
    if ctx.settings.state.is_some() {
        return team::unlock(ctx, lock_id, yes);
    }
    let Some((dir, listed)) = state_dirs(ctx.state_dir()).into_iter().find_map(|d| {
        crate::state::lock::list(&d)
            .into_iter()
            .find(|l| l.holder.lock_id == lock_id)
            .map(|l| (d, l))
    }) else {
        eprintln!("error: no lock `{lock_id}` (see `rollout locks`)");
        return ExitCode::Usage;
    };
    let left = crate::exec::leftovers::left_behind(&listed);
    let (holder, held) = (listed.holder, listed.held);
    if held && !left.is_empty() {
        let procs: Vec<String> = left
            .iter()
            .map(|(pid, name)| format!("pid {pid} ({name})"))
            .collect();
        eprintln!(
            "lock {lock_id} is held by processes left by {holder}, whose rollout is dead: {}",
            procs.join(", ")
        );
        eprintln!(
            "no unlock is needed: the next run, resume or rollback of `{}` stops them first; removing the lock would let a run start beside them",
            holder.target
        );
    } else if held {
        eprintln!("lock {lock_id} is held by {holder}");
        eprintln!(
            "removing it lets another run start while that process may still be working on `{}`",
            holder.target
        );
    }
    if held {
        if let Err(code) = confirm_unlock(ctx, yes, "Remove this lock?", "remove") {
            return code;
        }
    } else {
        eprintln!("lock {lock_id} is not held by anyone (its holder is gone): it is free already");
    }
    match crate::state::lock::unlock(&dir, lock_id, &ctx.operator()) {
        Ok(note) => {
            eprintln!(
                "removed lock {lock_id} on `{}`; recorded in {}",
                note.holder.target,
                dir.join("locks").join("unlock.log").display()
            );
            ExitCode::Ok
        }
        Err(e) => {
            eprintln!("error: {e}");
            ExitCode::Internal
        }
    }
}

/// Asks before a held lock goes (`question`; `verb` is what the refusal calls it): `--yes`
/// asks nothing, a no keeps the lock, and where nobody can answer (no terminal, `CI`) only
/// `--yes` will do. The same for a lock file and a lease in the database.
pub(crate) fn confirm_unlock(
    ctx: &Ctx,
    yes: bool,
    question: &str,
    verb: &str,
) -> Result<(), ExitCode> {
    if yes {
        return Ok(());
    }
    let mut prompter =
        ui::prompt::TerminalPrompter::if_interactive(ctx.settings.ci, &Interrupts::default());
    match prompter.as_mut().map(|p| p.confirm(question)) {
        Some(Ok(true)) => Ok(()),
        Some(_) => {
            eprintln!("not removed");
            Err(ExitCode::Usage)
        }
        None => {
            eprintln!("error: pass `--yes` to {verb} a held lock without a terminal");
            Err(ExitCode::Usage)
        }
    }
}

/// `rollout report`: a run's report, built from its journal alone, in Markdown, HTML or JSON.
pub fn run_report(
    ctx: &Ctx,
    run_id: Option<&str>,
    format: crate::cli::ReportFormat,
    output: Option<&Path>,
) -> ExitCode {
    if ctx.settings.state.is_some() {
        return team::report(ctx, run_id, format, output);
    }
    let (store, id, loaded) = match read_run(ctx, run_id) {
        Ok(found) => found,
        Err(code) => return code,
    };
    let path = store.journal_path(&id);
    let verified = match std::fs::read(&path) {
        Ok(bytes) => crate::state::audit::verify(&bytes),
        Err(e) => {
            eprintln!("error: cannot read {}: {e}", path.display());
            return ExitCode::Usage;
        }
    };
    let audit = crate::state::verify::check(
        &path.display().to_string(),
        &verified,
        &crate::state::verify::Check {
            in_progress: ctx.wait(store.is_locked(&id)).unwrap_or(false),
            resume_with: resume_command(&path, &verified.records),
            ..crate::state::verify::Check::default()
        },
    );
    write_report(&loaded.records, &audit, format, output, &id)
}

/// What `rollout approve` was asked for.
pub struct ApproveArgs<'a> {
    pub run_id: &'a str,
    pub gate: &'a str,
    pub role: Option<&'a str>,
    pub key: Option<&'a Path>,
    /// Write the request to sign instead of signing it.
    pub request: bool,
    pub output: Option<&'a Path>,
    pub yes: bool,
    pub no_input: bool,
}

/// One line for each signed approval delivered to run `id` and not yet counted by a gate: its
/// gate and role, who signed it (the principals of the allowed-signers file the runbook names,
/// when it is at hand) and the key; an approval that cannot be read, why.
fn approvals_delivered(ctx: &Ctx, store: &dyn Store, id: &str) -> Vec<String> {
    use crate::state::approval::Request;
    let delivered = ctx.wait(store.approvals(id)).unwrap_or_default();
    if delivered.is_empty() {
        return Vec::new();
    }
    let state = ctx
        .wait(store.read(id))
        .ok()
        .map(|log| RunState::fold(&log.records));
    let operator_keys: Vec<String> = state.as_ref().map_or_else(Vec::new, |s| {
        s.operator_keys
            .iter()
            .map(|k| k.fingerprint.clone())
            .collect()
    });
    let loaded = state.and_then(|state| runbook::load(Path::new(&state.runbook)).ok());
    // The sign-offs that exclude the operator, whose gate refuses an operator's own key.
    let excluding: Vec<String> = loaded.as_ref().map_or_else(Vec::new, |l| {
        l.runbook
            .phases
            .iter()
            .flat_map(|p| p.steps.iter().chain(&p.gate))
            .filter(
                |s| matches!(&s.kind, runbook::model::StepKind::Signoff(o) if o.exclude_operator),
            )
            .map(|s| s.id.get_ref().clone())
            .collect()
    });
    let allowed = loaded
        .and_then(|loaded| crate::exec::signatures::policy(&loaded, &ctx.settings).ok())
        .and_then(|p| p.allowed_signers);
    delivered
        .into_iter()
        .map(|d| {
            let d = d?;
            let request = Request::parse(&d.message).map_err(|e| format!("`{}`: {e}", d.from))?;
            let sig =
                crate::sshsig::parse(&d.signature).map_err(|e| format!("`{}`: {e}", d.from))?;
            let who = allowed
                .as_deref()
                .and_then(|a| crate::sshsig::principals(a, &sig.armored).ok())
                .filter(|p| !p.is_empty())
                .map_or_else(
                    || "a key".to_string(),
                    |p| format!("{} with key", p.join(", ")),
                );
            // Say so of one the gate will refuse rather than list it like one that may count.
            let verdict =
                if excluding.contains(&request.gate) && operator_keys.contains(&sig.fingerprint) {
                    "does not count: the key of an operator of this run"
                } else {
                    "counts once the gate has checked it in full"
                };
            Ok(format!(
                "`{}` as {}: by {who} {} at {} ({}; {verdict})",
                request.gate, request.role, sig.fingerprint, request.time, d.from
            ))
        })
        .map(|line: Result<String, String>| line.unwrap_or_else(|e| format!("cannot be used: {e}")))
        .collect()
}

/// `rollout approve`: shows the phase of a sign-off as the run shows it at the gate (from the
/// run's own record of it, so with the same digest), asks, signs it with the approver's SSH key
/// (`ssh-keygen -Y sign -n rollout`) and delivers the approval to the run (or writes it to
/// `--output`). `--request` writes the text to sign instead, for signing elsewhere.
pub fn approve(ctx: &Ctx, args: &ApproveArgs<'_>) -> ExitCode {
    use crate::state::approval::Request;
    // Team mode: the run and its approvals are the database's.
    let team_store;
    let file_store;
    let (store, id, log): (&dyn Store, String, crate::state::RunLog) =
        if ctx.settings.state.is_some() {
            team_store = match team::store(ctx) {
                Ok(pg) => pg,
                Err(code) => return code,
            };
            match ctx.wait(team_store.read(args.run_id)) {
                Ok(log) => (&team_store, args.run_id.to_string(), log),
                Err(e) => {
                    eprintln!("error: {e}");
                    return ExitCode::Usage;
                }
            }
        } else {
            match read_run(ctx, Some(args.run_id)) {
                Ok((s, id, log)) => {
                    file_store = s;
                    (&file_store, id, log)
                }
                Err(code) => return code,
            }
        };
    let state = RunState::fold(&log.records);
    let gate = args.gate;
    if state.is_finished() {
        eprintln!("error: run `{id}` has finished; there is nothing left to approve");
        return ExitCode::Usage;
    }
    let Some(shown) = state.signoffs_shown.get(gate) else {
        let known: Vec<&str> = state.signoffs_shown.keys().map(String::as_str).collect();
        eprintln!(
            "error: run `{id}` has not reached a sign-off `{gate}` that takes signed approvals{}; approve it once the run waits there (`rollout status {id}`)",
            if known.is_empty() {
                String::new()
            } else {
                format!(" (it has reached: {})", known.join(", "))
            }
        );
        return ExitCode::Usage;
    };
    if crate::state::approval::digest_of_lines(&shown.lines) != shown.digest {
        eprintln!(
            "error: the phase of sign-off `{gate}` shows the value of a secret, and the run's journal keeps it masked, so what its signers were shown cannot be signed as recorded; change the runbook so the phase does not print the secret's value (a literal equal to it, or a captured value holding it), or have `{gate}` signed with typed names (`signatures = \"optional\"`)"
        );
        return ExitCode::Usage;
    }
    let passed = state.gate_answers.iter().rfind(|g| g.step == gate);
    if let Some(g) = passed.filter(|g| g.outcome == crate::state::record::GateVerdict::Passed) {
        eprintln!(
            "error: sign-off `{gate}` of run `{id}` has passed already ({}); there is nothing to approve",
            g.summary
        );
        return ExitCode::Usage;
    }
    let interrupts = Interrupts::default();
    let mut prompter =
        ui::prompt::TerminalPrompter::if_interactive(args.no_input || ctx.settings.ci, &interrupts);
    let listed = shown
        .roles
        .iter()
        .map(|x| format!("`{x}`"))
        .collect::<Vec<_>>()
        .join(", ");
    let role = match (args.role, shown.roles.as_slice()) {
        (Some(r), roles) if roles.iter().any(|x| x == r) => r.to_string(),
        (Some(r), _) => {
            eprintln!("error: `{r}` is not a role of sign-off `{gate}`; its roles: {listed}");
            return ExitCode::Usage;
        }
        (None, [only]) => only.clone(),
        (None, roles) => {
            let options: Vec<&str> = roles.iter().map(String::as_str).collect();
            match prompter
                .as_mut()
                .filter(|_| !args.request)
                .map(|p| p.choose(&format!("Sign `{gate}` as which role?"), &options))
            {
                Some(Ok(i)) => roles[i].clone(),
                _ => {
                    eprintln!(
                        "error: sign-off `{gate}` has several roles: give `--role ROLE`, one of: {listed}"
                    );
                    return ExitCode::Usage;
                }
            }
        }
    };
    let request = Request {
        run: id.clone(),
        gate: gate.to_string(),
        phase: shown.phase.clone(),
        role,
        phase_digest: shown.digest.clone(),
        runbook_digest: state.digest.clone(),
        time: jiff::Timestamp::now()
            .round(jiff::Unit::Second)
            .unwrap_or_else(|_| jiff::Timestamp::now())
            .to_string(),
        shown: shown.lines.clone(),
    };
    if args.request {
        return write_out(args.output, &request.text());
    }
    eprintln!(
        "signing sign-off `{gate}` of run `{id}` as `{}`: phase `{}` as the run shows it ({}):",
        request.role, request.phase, request.phase_digest
    );
    for line in &request.shown {
        eprintln!("  {line}");
    }
    if !args.yes {
        let question = format!(
            "Sign `{gate}` as {} for run {id} with your SSH key?",
            request.role
        );
        match prompter.as_mut().map(|p| p.confirm(&question)) {
            Some(Ok(true)) => {}
            Some(_) => {
                eprintln!("not signed: nothing was written");
                return ExitCode::Usage;
            }
            None => {
                eprintln!(
                    "error: nobody can confirm here (no terminal, `CI` or `--no-input`); read what is shown above and give `--yes` to sign it"
                );
                return ExitCode::Usage;
            }
        }
    }
    let agent_key;
    let key = match args.key.or(ctx.settings.signing_key.as_deref()) {
        Some(file) => crate::sshsig::Key::File(file),
        None => match crate::sshsig::agent_keys() {
            Ok(keys) if !keys.is_empty() => {
                agent_key = keys[0].clone();
                crate::sshsig::Key::Agent(&agent_key)
            }
            Ok(_) => {
                eprintln!(
                    "error: the ssh-agent holds no keys; `ssh-add` yours, or give `--key FILE`"
                );
                return ExitCode::Usage;
            }
            Err(why) => {
                eprintln!("error: {why}");
                return ExitCode::Usage;
            }
        },
    };
    let text = request.text();
    let signature = match crate::sshsig::sign(&key, crate::sshsig::NAMESPACE, text.as_bytes()) {
        Ok(s) => s,
        Err(why) => {
            eprintln!("error: {why}");
            return ExitCode::Usage;
        }
    };
    let fingerprint = crate::sshsig::parse(&signature)
        .map(|s| s.fingerprint)
        .unwrap_or_default();
    let approval = format!("{text}{signature}\n");
    if let Some(out) = args.output {
        let code = write_out(Some(out), &approval);
        if code == ExitCode::Ok {
            eprintln!(
                "signed with key {fingerprint}; give it to the operator: `rollout resume {id} --signoff-file {}`",
                out.display()
            );
        }
        return code;
    }
    let name = format!(
        "{}.{}.{}.approval",
        slug(gate),
        slug(&request.role),
        slug(fingerprint.trim_start_matches("SHA256:"))
    );
    match ctx.wait(store.deliver_approval(&id, &name, &approval)) {
        Ok(at) => {
            eprintln!(
                "signed with key {fingerprint} and delivered to run `{id}` ({at}); a run waiting at `{gate}` counts it now, a stopped one when it resumes"
            );
            ExitCode::Ok
        }
        Err(e) => {
            eprintln!(
                "error: {e}\n  the approval could not be delivered to the run; `--output FILE` writes it to a file for the operator's `--signoff-file`"
            );
            ExitCode::Internal
        }
    }
}

/// A file name part: letters, digits, `-` and `_`; anything else is `_`.
fn slug(text: &str) -> String {
    text.chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() || c == '-' || c == '_' {
                c
            } else {
                '_'
            }
        })
        .collect()
}

/// Writes `text` to `out` (stdout for none or `-`).
fn write_out(out: Option<&Path>, text: &str) -> ExitCode {
    match out.filter(|p| p.as_os_str() != "-") {
        None => {
            print!("{text}");
            ExitCode::Ok
        }
        Some(path) => match std::fs::write(path, text) {
            Ok(()) => ExitCode::Ok,
            Err(e) => {
                eprintln!("error: cannot write `{}`: {e}", path.display());
                ExitCode::Internal
            }
        },
    }
}

/// `rollout watch RUN` (team mode only).
pub fn watch(ctx: &Ctx, run_id: &str) -> ExitCode {
    if ctx.settings.state.is_none() {
        eprintln!(
            "error: `rollout watch` follows runs kept in a database: give `--state postgres://...` (or set `ROLLOUT_STATE`); for a run in files, `rollout status {run_id}` shows where it stands"
        );
        return ExitCode::Usage;
    }
    team::watch(ctx, run_id)
}

/// `rollout state export|import` (team mode only).
pub fn state(ctx: &Ctx, command: &crate::cli::StateCommand) -> ExitCode {
    if ctx.settings.state.is_none() {
        eprintln!(
            "error: `rollout state` moves runs to and from a database: give `--state postgres://...` (or set `ROLLOUT_STATE`)"
        );
        return ExitCode::Usage;
    }
    match command {
        crate::cli::StateCommand::Export { run_id, output } => {
            team::export(ctx, run_id, output.as_deref())
        }
        crate::cli::StateCommand::Import { dir } => team::import(ctx, dir),
    }
}

/// A run resumed (or rolled back) with a runbook other than the one it started with: shows the
/// difference from the copy stored with the run, and refuses unless `--allow-changed`.
pub(crate) fn refuse_changed(
    ctx: &Ctx,
    store: &dyn Store,
    id: &str,
    loaded: &Loaded,
    started_with: &str,
    command: &str,
    allow_changed: bool,
) -> Result<(), ExitCode> {
    if loaded.source.digest() != started_with {
        let before = ctx
            .wait(store.runbook_snapshot(id))
            .ok()
            .flatten()
            .unwrap_or_default();
        let diff = similar::TextDiff::from_lines(&before, &loaded.source.text)
            .unified_diff()
            .context_radius(2)
            .header("runbook when the run started", "runbook now")
            .to_string();
        eprintln!(
            "the runbook `{}` changed since run `{id}` started:\n{diff}",
            loaded.source.name
        );
        if !allow_changed {
            eprintln!(
                "error: refusing to {command} a run whose runbook changed; pass `--allow-changed` to {command} with the new runbook"
            );
            return Err(ExitCode::Usage);
        }
        eprintln!("warning: going on with the changed runbook (--allow-changed)");
    }
    Ok(())
}

/// Writes run `id`'s report (from its records and what `audit verify` concluded) in `format`,
/// to `output` or standard output, warning when the audit log does not verify.
pub(crate) fn write_report(
    records: &[crate::state::Record],
    audit: &crate::state::verify::VerifyReport,
    format: crate::cli::ReportFormat,
    output: Option<&Path>,
    id: &str,
) -> ExitCode {
    use crate::cli::ReportFormat;
    let report = crate::report::build(records, audit);
    let text = match format {
        ReportFormat::Md => crate::report::md::render(&report),
        ReportFormat::Html => crate::report::html::render(&report),
        ReportFormat::Json => Ok(serde_json::to_string_pretty(&report).unwrap_or_default() + "\n"),
    };
    let text = match text {
        Ok(text) => text,
        Err(e) => {
            eprintln!("error: {e}");
            return ExitCode::Internal;
        }
    };
    match output {
        Some(file) => {
            if let Err(e) = std::fs::write(file, text) {
                eprintln!("error: cannot write the report to {}: {e}", file.display());
                return ExitCode::Usage;
            }
            eprintln!("report of run {id} written to {}", file.display());
        }
        None => print!("{text}"),
    }
    if !audit.ok {
        eprintln!(
            "warning: the run's audit log does not verify: {}",
            audit.message
        );
    }
    ExitCode::Ok
}
