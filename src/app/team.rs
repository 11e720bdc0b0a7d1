//! Team mode: the subcommands when runs are kept in a shared `PostgreSQL` database
//! (`--state postgres://...`, `ROLLOUT_STATE`, or `state` in the user config). The runs, their
//! journals and the target locks are the database's; the session itself is the same as in file
//! mode (see `app::run_session`).

use std::io::Write;
use std::path::Path;

use super::{Ctx, Format, Loaded, Resumed, RunArgs, Session, env_var, grace};
use crate::exec::engine::{InDoubt, Mode};
use crate::exec::session;
use crate::exit::ExitCode;
use crate::inputs;
use crate::state::lock::{Holder, TargetLock};
use crate::state::pg::lease::AcquireError;
use crate::state::pg::{PgStore, journal};
use crate::state::{RunState, Store};
use crate::ui;

/// Connects to the database the settings name; one line and exit 2 when it cannot.
pub fn store(ctx: &Ctx) -> Result<PgStore, ExitCode> {
    let url = ctx.settings.state.as_deref().unwrap_or_default();
    let target = crate::state::pg::conn::parse(url, &env_var).map_err(|e| {
        eprintln!("error: {e}");
        ExitCode::Usage
    })?;
    ctx.wait(PgStore::connect(target, ctx.settings.lease))
        .map_err(|e| {
            eprintln!("error: {e}");
            ExitCode::Usage
        })
}

/// Takes the run's target lock as a lease in the database, or says who holds it (exit 12).
pub fn take_lock(
    ctx: &Ctx,
    pg: &PgStore,
    loaded: &Loaded,
    vars: &[inputs::Resolved],
    command: &str,
    run_id: &str,
    run: &RunArgs,
) -> Result<TargetLock, ExitCode> {
    let grace = grace(run)?;
    let target = session::lock_target(loaded, vars, &ctx.settings).map_err(|why| {
        eprintln!("error: {why}");
        ExitCode::Usage
    })?;
    let holder = super::lock_holder(ctx, command, run_id);
    match ctx.wait(pg.acquire(&target, holder, grace)) {
        Ok(acquired) => {
            let mut lock = TargetLock::leased(acquired.lease.holder.clone(), acquired.took_over);
            if let Some(previous) = acquired.previous.clone() {
                // On a blocking thread: the heartbeat goes on while the stopping waits.
                let (prev, name) = (previous.clone(), target.clone());
                let swept = ctx.wait(ctx.runtime.spawn_blocking(move || {
                    let mut tell = |message: String| eprintln!("{message}");
                    crate::exec::leftovers::sweep_dead(&prev, &name, grace, &mut tell)
                }));
                match swept {
                    Ok(Ok(stopped)) => lock.stopped = stopped,
                    Ok(Err(crate::exec::leftovers::TakeError::Stuck { left, .. })) => {
                        let pids: Vec<String> = left
                            .iter()
                            .map(|p| format!("pid {} ({}, sent {})", p.pid, p.name, p.signal))
                            .collect();
                        eprintln!(
                            "error: `{target}`: processes left by run {} (rollout pid {}, dead) survived SIGKILL: {}\n  they are stuck in the kernel or belong to another user; once they are gone, try again",
                            previous.run,
                            previous.pid,
                            pids.join(", ")
                        );
                        return Err(ExitCode::Locked);
                    }
                    Ok(Err(crate::exec::leftovers::TakeError::Lock(e))) => {
                        eprintln!("error: {e}");
                        return Err(ExitCode::Internal);
                    }
                    Err(e) => {
                        eprintln!(
                            "error: cannot stop what run {} left running: {e}",
                            previous.run
                        );
                        return Err(ExitCode::Internal);
                    }
                }
            }
            Ok(lock)
        }
        Err(AcquireError::Held(held)) => {
            eprintln!(
                "error: `{target}` is locked by {} on host `{}` (epoch {}, lease until {})\n  another rollout is working on this target; wait for it (`rollout watch {}` follows it), or if its holder is stuck, `rollout unlock {} {}`",
                held.holder,
                held.holder.host,
                held.epoch,
                held.lease_until,
                held.holder.run,
                held.holder.lock_id,
                pg.flags()
            );
            Err(ExitCode::Locked)
        }
        Err(AcquireError::Db(why)) => {
            eprintln!("error: {why}");
            Err(ExitCode::Usage)
        }
    }
}

/// `rollout run` in team mode, from the point where the runbook and values are checked.
pub fn run(
    ctx: &Ctx,
    loaded: &Loaded,
    resolved: Vec<inputs::Resolved>,
    run: &RunArgs,
    outside: Option<session::OutsideWindow>,
) -> ExitCode {
    let pg = match store(ctx) {
        Ok(pg) => pg,
        Err(code) => return code,
    };
    let run_id = crate::state::new_run_id();
    let lock = match take_lock(ctx, &pg, loaded, &resolved, "run", &run_id, run) {
        Ok(l) => l,
        Err(code) => return code,
    };
    let code = super::run_session(
        ctx,
        loaded,
        &pg,
        run,
        InDoubt::Ask,
        lock,
        Session::Start(run_id, resolved, Mode::Forward),
        outside,
    );
    // A session that ended normally released the lock with its seal; one that ended on an
    // error leaves it to run out, so that nothing it may have left running overlaps the next;
    // one refused before it began (bad approval flags) gives it back.
    ctx.wait(pg.release_unused());
    code
}

/// Connects to the database and finds `run_id` (or the newest run, or the newest unfinished
/// one) in it.
fn find_run(
    ctx: &Ctx,
    run_id: Option<&str>,
    unfinished: bool,
) -> Result<(PgStore, String), ExitCode> {
    let pg = store(ctx)?;
    let id = find(ctx, &pg, run_id, unfinished)?;
    Ok((pg, id))
}

/// Finds `run_id` (or the newest run, or the newest unfinished one) in the database.
fn find(
    ctx: &Ctx,
    pg: &PgStore,
    run_id: Option<&str>,
    unfinished: bool,
) -> Result<String, ExitCode> {
    let ids = ctx.wait(pg.list()).map_err(|e| {
        eprintln!("error: {e}");
        ExitCode::Usage
    })?;
    if let Some(id) = run_id {
        if ids.iter().any(|i| i == id) {
            return Ok(id.to_string());
        }
        eprintln!(
            "error: no run `{id}` in {}; `rollout runs {}` lists them",
            pg.target.shown,
            pg.flags()
        );
        return Err(ExitCode::Usage);
    }
    let pick = if unfinished {
        let summaries = ctx.wait(pg.summaries()).unwrap_or_default();
        summaries
            .into_iter()
            .rev()
            .find(|(_, s, _)| {
                let (state, _) = journal::state_of(s);
                !state.run_id.is_empty() && !state.is_finished()
            })
            .map(|(id, _, _)| id)
    } else {
        ids.last().cloned()
    };
    pick.ok_or_else(|| {
        eprintln!(
            "error: no {}runs in {}",
            if unfinished { "unfinished " } else { "" },
            pg.target.shown
        );
        ExitCode::Usage
    })
}

/// Opens run `id` to continue it here: takes the target's lease (from a holder whose lease ran
/// out, if need be), loads the runbook (`--runbook FILE` when given, else the recorded file when
/// it is on this machine, else the copy stored with the run; a changed one needs
/// `--allow-changed`), and opens the journal.
fn open(
    ctx: &Ctx,
    pg: &PgStore,
    id: &str,
    allow_changed: bool,
    runbook: Option<&Path>,
    command: &str,
    run: &RunArgs,
) -> Result<(Loaded, TargetLock, Resumed), ExitCode> {
    let state = super::started_state(ctx, pg, id)?;
    let path = std::path::PathBuf::from(&state.runbook);
    let mut snapshot_dir = None;
    let loaded = if let Some(given) = runbook {
        super::load(given, ctx.color_err())?
    } else if path.is_file() {
        super::load(&path, ctx.color_err())?
    } else {
        let text = ctx
            .wait(pg.runbook_snapshot(id))
            .ok()
            .flatten()
            .unwrap_or_default();
        // In the current directory, where its steps then run (the run's own directory is on
        // another machine); removed when the session ends.
        let mut copy = tempfile::Builder::new()
            .prefix(".rollout-runbook-")
            .suffix(".toml")
            .tempfile_in(".")
            .map_err(|e| {
                eprintln!(
                    "error: cannot write the run's runbook copy in the current directory: {e}"
                );
                ExitCode::Internal
            })?;
        copy.write_all(text.as_bytes()).map_err(|e| {
            eprintln!("error: cannot write the run's runbook copy: {e}");
            ExitCode::Internal
        })?;
        eprintln!(
            "note: the runbook `{}` is not on this machine; using the copy stored with run `{id}` when it started (its steps run in the current directory)",
            path.display()
        );
        let loaded = super::load(copy.path(), ctx.color_err())?;
        snapshot_dir = Some(copy);
        loaded
    };
    super::refuse_changed(ctx, pg, id, &loaded, &state.digest, command, allow_changed)?;
    let vars = session::vars_from_state(&loaded, &state).map_err(|why| {
        eprintln!("error: {why}");
        ExitCode::Usage
    })?;
    let lock = take_lock(ctx, pg, &loaded, &vars, command, id, run)?;
    let (journal, log) = ctx.wait(pg.open(id)).map_err(|e| {
        eprintln!("error: {e}");
        ExitCode::Usage
    })?;
    let state = RunState::fold(&log.records);
    Ok((
        loaded,
        lock,
        Resumed {
            journal,
            state: Box::new(state),
            recovery: None,
            vars,
            _snapshot: snapshot_dir,
        },
    ))
}

/// `rollout resume` in team mode: from any machine, also taking over a run whose holder is gone
/// (its lease ran out); the step that was in flight is in doubt, as always.
pub fn resume(
    ctx: &Ctx,
    run_id: Option<&str>,
    how: &super::ResumeArgs<'_>,
    run: &RunArgs,
) -> ExitCode {
    let super::ResumeArgs {
        allow_changed,
        in_doubt,
        runbook,
    } = *how;
    let (pg, id) = match find_run(ctx, run_id, run_id.is_none()) {
        Ok(found) => found,
        Err(code) => return code,
    };
    if let Ok(log) = ctx.wait(pg.read(&id)) {
        let state = RunState::fold(&log.records);
        if state.is_finished() {
            return seal_finished(ctx, &pg, &id, &state, run);
        }
    }
    let (loaded, lock, resumed) = match open(ctx, &pg, &id, allow_changed, runbook, "resume", run) {
        Ok(x) => x,
        Err(code) => return code,
    };
    if resumed.state.is_finished() {
        eprintln!(
            "error: run `{id}` has already finished; nothing to resume (see `rollout status {id} {}`)",
            pg.flags()
        );
        ctx.wait(pg.release());
        return ExitCode::Usage;
    }
    let outside = if resumed.state.rollback.is_some() {
        None
    } else {
        match super::check_window(ctx, &loaded, &resumed.vars, run, "resume") {
            Ok(o) => o,
            Err(code) => {
                ctx.wait(pg.release());
                return code;
            }
        }
    };
    let code = super::run_session(
        ctx,
        &loaded,
        &pg,
        run,
        in_doubt,
        lock,
        Session::Resume(resumed, Mode::Forward),
        outside,
    );
    // A session that ended normally released the lock with its seal; one that ended on an
    // error leaves it to run out, so that nothing it may have left running overlaps the next;
    // one refused before it began (bad approval flags) gives it back.
    ctx.wait(pg.release_unused());
    code
}

/// `rollout resume` of a finished run: seals its log when its last session died between the
/// run's last record and the seal, under the run's lock; else there is nothing to resume.
fn seal_finished(ctx: &Ctx, pg: &PgStore, id: &str, state: &RunState, run: &RunArgs) -> ExitCode {
    if state.sealed {
        eprintln!(
            "error: run `{id}` has already finished and its log is sealed; nothing to resume (see `rollout status {id} {}`)",
            pg.flags()
        );
        return ExitCode::Usage;
    }
    let target = match ctx.wait(pg.run_target(id)) {
        Ok(Some(t)) => t,
        _ => state.runbook_name.clone(),
    };
    let grace = match grace(run) {
        Ok(g) => g,
        Err(code) => return code,
    };
    let who = crate::state::who(&ctx.settings.operator, &ctx.settings.os_user);
    let holder = Holder {
        operator: who.operator,
        os_user: who.os_user,
        host: who.host,
        pid: who.pid,
        command: "resume".into(),
        run: id.into(),
        ..Holder::default()
    };
    if let Err(e) = ctx.wait(pg.acquire(&target, holder, grace)) {
        match e {
            AcquireError::Held(h) => eprintln!(
                "error: `{target}` is locked by {} on host `{}`; try again when it is free",
                h.holder, h.holder.host
            ),
            AcquireError::Db(why) => eprintln!("error: {why}"),
        }
        return ExitCode::Locked;
    }
    let code = match ctx.wait(session::seal_finished(pg, id, &ctx.settings)) {
        Ok(Some((seal, _))) => {
            eprintln!(
                "run `{id}` had finished, but rollout stopped before it sealed the run's audit log; sealed it now, recorded as a recovery (`seal_recovered`)"
            );
            eprintln!("audit digest: {}", seal.hash);
            ExitCode::Ok
        }
        Ok(None) => {
            eprintln!(
                "error: run `{id}` has already finished and its log is sealed; nothing to resume"
            );
            ExitCode::Usage
        }
        Err(e) => {
            eprintln!("error: {e}");
            ExitCode::Usage
        }
    };
    ctx.wait(pg.release());
    code
}

/// `rollout rollback RUNBOOK --run RUN` in team mode: rolls back a run started anywhere;
/// `--no-run` runs the runbook's own rollback section as a run of its own, in the database.
pub fn rollback(
    ctx: &Ctx,
    path: &Path,
    vars: &crate::cli::VarArgs,
    args: &super::RollbackArgs<'_>,
    run: &RunArgs,
) -> ExitCode {
    let super::RollbackArgs {
        run_id,
        to,
        no_run,
        dry_run,
        allow_changed,
    } = *args;
    let pg = match store(ctx) {
        Ok(pg) => pg,
        Err(code) => return code,
    };
    if no_run {
        let loaded = match super::load(path, ctx.color_err()) {
            Ok(l) => l,
            Err(code) => return code,
        };
        if loaded.runbook.rollback.is_empty() {
            eprintln!(
                "error: the runbook `{}` has no `[[rollback]]` section: nothing to roll back",
                loaded.source.name
            );
            return ExitCode::Usage;
        }
        let resolved = match super::resolve_vars(&loaded, vars) {
            Ok(v) => v,
            Err(code) => return code,
        };
        if dry_run {
            return super::rollback_preview(ctx, &loaded, &resolved, None);
        }
        let run_id = crate::state::new_run_id();
        let lock = match take_lock(ctx, &pg, &loaded, &resolved, "rollback", &run_id, run) {
            Ok(l) => l,
            Err(code) => return code,
        };
        let code = super::run_session(
            ctx,
            &loaded,
            &pg,
            run,
            InDoubt::Ask,
            lock,
            Session::Start(
                run_id,
                resolved,
                Mode::Rollback {
                    phases: vec![crate::exec::engine::RUNBOOK_ROLLBACK.to_string()],
                    reason: format!("rollback requested by {}", ctx.operator()),
                },
            ),
            None,
        );
        // See `run`.
        ctx.wait(pg.release_unused());
        return code;
    }
    let Some(id) = run_id else {
        eprintln!(
            "error: in team mode, `rollout rollback` needs `--run RUN_ID` (`rollout runs {}` lists them), or `--no-run` for the runbook's own rollback section",
            pg.flags()
        );
        return ExitCode::Usage;
    };
    let id = match find(ctx, &pg, Some(id), false) {
        Ok(id) => id,
        Err(code) => return code,
    };
    if dry_run {
        return match super::load(path, ctx.color_err()) {
            Ok(loaded) => super::run_rollback_preview(ctx, &pg, &loaded, &id, to),
            Err(code) => code,
        };
    }
    let (loaded, lock, resumed) = match open(ctx, &pg, &id, allow_changed, None, "rollback", run) {
        Ok(x) => x,
        Err(code) => return code,
    };
    let phases = match super::phases_to_undo(&id, &resumed.state, &loaded.runbook, to) {
        Ok(phases) => phases,
        Err(why) => {
            eprintln!("error: {why}");
            ctx.wait(pg.release());
            return ExitCode::Usage;
        }
    };
    let reason = format!("rollback requested by {}", ctx.operator());
    eprintln!("rolling back run `{id}`");
    let code = super::run_session(
        ctx,
        &loaded,
        &pg,
        run,
        InDoubt::Ask,
        lock,
        Session::Resume(resumed, Mode::Rollback { phases, reason }),
        None,
    );
    // A session that ended normally released the lock with its seal; one that ended on an
    // error leaves it to run out, so that nothing it may have left running overlaps the next;
    // one refused before it began (bad approval flags) gives it back.
    ctx.wait(pg.release_unused());
    code
}

fn view(
    pg: &PgStore,
    state: &RunState,
    locked: bool,
    steps_done: Option<usize>,
) -> ui::status::RunView {
    let mut v = ui::status::RunView::new(state, locked, Path::new(&pg.target.shown), None);
    if let Some(n) = steps_done {
        v.steps_done = n;
    }
    if let Some(gate) = v.gate.as_mut() {
        gate.resume_with = format!(
            "rollout resume {} {} {}",
            state.run_id,
            pg.flags(),
            gate.satisfy_with.join(" ")
        );
    }
    v
}

/// `rollout runs`: one row per run, from the summaries the journals keep.
pub fn runs(ctx: &Ctx, format: Format) -> ExitCode {
    let pg = match store(ctx) {
        Ok(pg) => pg,
        Err(code) => return code,
    };
    let rows = match ctx.wait(pg.summaries()) {
        Ok(rows) => rows,
        Err(e) => {
            eprintln!("error: {e}");
            return ExitCode::Usage;
        }
    };
    let views: Vec<ui::status::RunView> = rows
        .iter()
        .map(|(id, summary, locked)| {
            let (state, done) = journal::state_of(summary);
            if state.run_id.is_empty() {
                let mut v = ui::status::RunView::never_started(
                    id,
                    Path::new(&pg.target.shown),
                    String::new(),
                    *locked,
                );
                if !*locked {
                    v.reason = Some(
                        "rollout stopped before the run's first record, so no step ran; there is nothing to resume: start a new run with `rollout run RUNBOOK`".into(),
                    );
                }
                v
            } else {
                view(&pg, &state, *locked, Some(done))
            }
        })
        .collect();
    let mut out = std::io::stdout().lock();
    let _ = match format {
        Format::Json => writeln!(
            out,
            "{}",
            serde_json::to_string_pretty(&views).unwrap_or_default()
        ),
        Format::Text => write!(out, "{}", ui::status::render_list(&views)),
    };
    ExitCode::Ok
}

/// `rollout status RUN`: where it stands, and who holds it (host, pid, lease end).
pub fn status(ctx: &Ctx, run_id: Option<&str>, format: Format) -> ExitCode {
    let (pg, id) = match find_run(ctx, run_id, false) {
        Ok(found) => found,
        Err(code) => return code,
    };
    let log = match ctx.wait(pg.read(&id)) {
        Ok(log) => log,
        Err(e) => {
            eprintln!("error: {e}");
            return ExitCode::Usage;
        }
    };
    let holder = ctx.wait(pg.holder_of(&id)).ok().flatten();
    let mut v = view(&pg, &RunState::fold(&log.records), holder.is_some(), None);
    v.approvals_delivered = super::approvals_delivered(ctx, &pg, &id);
    match format {
        Format::Json => {
            let mut json = serde_json::to_value(&v).unwrap_or_default();
            if let (Some(h), Some(obj)) = (&holder, json.as_object_mut()) {
                obj.insert(
                    "holder".into(),
                    serde_json::json!({
                        "operator": h.holder.operator, "os_user": h.holder.os_user,
                        "host": h.holder.host, "pid": h.holder.pid, "since": h.holder.since,
                        "lock_id": h.holder.lock_id, "epoch": h.epoch, "lease_until": h.lease_until,
                    }),
                );
            }
            println!(
                "{}",
                serde_json::to_string_pretty(&json).unwrap_or_default()
            );
        }
        Format::Text => {
            print!("{}", ui::status::render(&v));
            if let Some(h) = holder {
                println!(
                    "held by   {} (epoch {}, lease until {})",
                    h.holder, h.epoch, h.lease_until
                );
            }
        }
    }
    ExitCode::Ok
}

/// `rollout log RUN` from the database.
pub fn log(ctx: &Ctx, run_id: Option<&str>) -> ExitCode {
    let (pg, id) = match find_run(ctx, run_id, false) {
        Ok(found) => found,
        Err(code) => return code,
    };
    match ctx.wait(pg.read(&id)) {
        Ok(log) => {
            print!("{}", ui::audit_view::render_log(&log.records));
            if let Some(r) = &log.recovery {
                println!(
                    "\n(the log stops here: {}; `rollout audit verify {id} {}` checks it)",
                    r.detail,
                    pg.flags()
                );
            }
            ExitCode::Ok
        }
        Err(e) => {
            eprintln!("error: {e}");
            ExitCode::Usage
        }
    }
}

/// The verification of run `id`'s journal, as `audit verify` and reports show it.
fn verified(
    ctx: &Ctx,
    pg: &PgStore,
    id: &str,
    published: Option<&str>,
    strict: bool,
) -> Result<
    (
        crate::state::audit::Verified,
        crate::state::verify::VerifyReport,
    ),
    ExitCode,
> {
    let bytes = ctx.wait(pg.journal_bytes(id)).map_err(|e| {
        eprintln!("error: {e}");
        ExitCode::Usage
    })?;
    let v = crate::state::audit::verify(&bytes);
    let in_progress = ctx.wait(pg.is_locked(id)).unwrap_or(false);
    let report = crate::state::verify::check(
        &format!("{} run {id}", pg.target.shown),
        &v,
        &crate::state::verify::Check {
            in_progress,
            published,
            strict,
            resume_with: Some(format!("rollout resume {id} {}", pg.flags())),
        },
    );
    Ok((v, report))
}

/// `rollout audit verify RUN` against the database (a file is checked as in file mode).
pub fn audit_verify(ctx: &Ctx, id: &str, args: &super::VerifyArgs<'_>, format: Format) -> ExitCode {
    let (pg, id) = match find_run(ctx, Some(id), false) {
        Ok(found) => found,
        Err(code) => return code,
    };
    match verified(ctx, &pg, &id, args.digest, args.strict) {
        Ok((_, report)) => super::show_verification(&report, format),
        Err(code) => code,
    }
}

/// `rollout report RUN` from the database.
pub fn report(
    ctx: &Ctx,
    run_id: Option<&str>,
    format: crate::cli::ReportFormat,
    output: Option<&Path>,
) -> ExitCode {
    let (pg, id) = match find_run(ctx, run_id, false) {
        Ok(found) => found,
        Err(code) => return code,
    };
    let (v, audit) = match verified(ctx, &pg, &id, None, false) {
        Ok(x) => x,
        Err(code) => return code,
    };
    super::write_report(&v.records, &audit, format, output, &id)
}

/// `rollout locks` in team mode: every lock in the database.
pub fn locks(ctx: &Ctx) -> ExitCode {
    let pg = match store(ctx) {
        Ok(pg) => pg,
        Err(code) => return code,
    };
    let list = match ctx.wait(pg.locks()) {
        Ok(l) => l,
        Err(e) => {
            eprintln!("error: {e}");
            return ExitCode::Usage;
        }
    };
    if list.is_empty() {
        println!("no locks");
    }
    for l in list {
        println!(
            "{}  {}  `{}`  {} (epoch {}, lease until {})",
            l.holder.lock_id,
            if l.held { "HELD" } else { "free" },
            l.holder.target,
            l.holder,
            l.epoch,
            l.lease_until
        );
    }
    ExitCode::Ok
}

/// `rollout unlock LOCK` in team mode: ends the lease (its epoch moves on, so its holder can
/// write nothing more), recorded in the database.
pub fn unlock(ctx: &Ctx, lock_id: &str, yes: bool) -> ExitCode {
    let pg = match store(ctx) {
        Ok(pg) => pg,
        Err(code) => return code,
    };
    let list = ctx.wait(pg.locks()).unwrap_or_default();
    let Some(found) = list.iter().find(|l| l.holder.lock_id == lock_id) else {
        eprintln!(
            "error: no lock `{lock_id}` in {} (see `rollout locks {}`)",
            pg.target.shown,
            pg.flags()
        );
        return ExitCode::Usage;
    };
    if found.held {
        eprintln!(
            "lock {lock_id} is held by {} (lease until {})",
            found.holder, found.lease_until
        );
        eprintln!(
            "ending it stops that rollout from writing anything more (it stops its step when it notices), and lets another run start on `{}`",
            found.holder.target
        );
        if let Err(code) = super::confirm_unlock(ctx, yes, "End this lock?", "end") {
            return code;
        }
    } else {
        eprintln!("lock {lock_id} is not held by anyone (its holder is gone): it is free already");
    }
    match ctx.wait(pg.unlock(lock_id, &ctx.operator())) {
        Ok(Some(l)) => {
            eprintln!(
                "ended lock {lock_id} on `{}` (epoch {} -> {}); recorded in rollout_unlocks",
                l.holder.target,
                l.epoch,
                l.epoch + 1
            );
            ExitCode::Ok
        }
        Ok(None) => {
            eprintln!("error: no lock `{lock_id}`");
            ExitCode::Usage
        }
        Err(e) => {
            eprintln!("error: {e}");
            ExitCode::Internal
        }
    }
}

/// `rollout state export RUN`: the journal file file mode would have written.
pub fn export(ctx: &Ctx, run_id: &str, output: Option<&Path>) -> ExitCode {
    let pg = match store(ctx) {
        Ok(pg) => pg,
        Err(code) => return code,
    };
    let bytes = match ctx.wait(pg.journal_bytes(run_id)) {
        Ok(b) => b,
        Err(e) => {
            eprintln!("error: {e}");
            return ExitCode::Usage;
        }
    };
    match output {
        Some(file) => {
            if let Err(e) = std::fs::write(file, &bytes) {
                eprintln!("error: cannot write {}: {e}", file.display());
                return ExitCode::Usage;
            }
            eprintln!(
                "journal of run {run_id} written to {} (`rollout audit verify {}` checks it)",
                file.display(),
                file.display()
            );
        }
        None => {
            let mut out = std::io::stdout().lock();
            if out.write_all(&bytes).and_then(|()| out.flush()).is_err() {
                return ExitCode::Internal;
            }
        }
    }
    ExitCode::Ok
}

/// `rollout state import DIR`: every run of a state directory into the database, hashes
/// intact. A run whose journal does not verify, or whose id is taken, is refused (the others
/// are imported).
pub fn import(ctx: &Ctx, dir: &Path) -> ExitCode {
    let pg = match store(ctx) {
        Ok(pg) => pg,
        Err(code) => return code,
    };
    let files = crate::state::FileStore::new(dir.to_path_buf());
    let ids = match files.run_ids() {
        Ok(ids) if !ids.is_empty() => ids,
        Ok(_) => {
            eprintln!(
                "error: no runs in {} (give the directory that holds `runs/`)",
                dir.display()
            );
            return ExitCode::Usage;
        }
        Err(e) => {
            eprintln!("error: {e}");
            return ExitCode::Usage;
        }
    };
    let mut failed = false;
    for id in ids {
        let path = files.journal_path(&id);
        let Ok(bytes) = std::fs::read(&path) else {
            eprintln!("skipped run `{id}`: it has no journal");
            continue;
        };
        let v = crate::state::audit::verify(&bytes);
        if let Some(fault) = &v.fault {
            eprintln!(
                "error: run `{id}` was not imported: its journal fails its audit check: {fault}"
            );
            failed = true;
            continue;
        }
        if files.run_locked(&id) {
            eprintln!("error: run `{id}` was not imported: a rollout process is running it now");
            failed = true;
            continue;
        }
        let lines: Vec<(u64, String, String)> = bytes[..v.good_end]
            .split_inclusive(|&b| b == b'\n')
            .zip(&v.records)
            .map(|(line, r)| {
                (
                    r.seq,
                    String::from_utf8_lossy(line).into_owned(),
                    r.hash.clone(),
                )
            })
            .collect();
        let snapshot = ctx
            .wait(files.runbook_snapshot(&id))
            .ok()
            .flatten()
            .unwrap_or_default();
        let summary = journal::summary(&RunState::fold(&v.records));
        match ctx.wait(pg.import(&id, &snapshot, &lines, &summary)) {
            Ok(()) => eprintln!("imported run `{id}` ({} records)", lines.len()),
            Err(e) => {
                eprintln!("error: {e}");
                failed = true;
            }
        }
    }
    if failed {
        ExitCode::Usage
    } else {
        ExitCode::Ok
    }
}

/// `rollout watch RUN`: the run's records as they are committed, and who holds it where.
pub fn watch(ctx: &Ctx, run_id: &str) -> ExitCode {
    use crate::state::pg::watch::{Seen, follow};
    let (pg, id) = match find_run(ctx, Some(run_id), false) {
        Ok(found) => found,
        Err(code) => return code,
    };
    let mut out = std::io::stdout();
    let mut on = |seen: Seen<'_>| {
        let text = match seen {
            Seen::Record(r) => ui::audit_view::render_log(std::slice::from_ref(r)),
            Seen::Holder(Some(h)) => format!(
                "-- held by {} (epoch {}, lease until {})\n",
                h.holder, h.epoch, h.lease_until
            ),
            Seen::Holder(None) => "-- nobody holds the run now\n".to_string(),
        };
        let _ = out.write_all(text.as_bytes()).and_then(|()| out.flush());
    };
    match ctx.wait(follow(&pg, &id, ctx.settings.lease, &mut on)) {
        Ok(()) => ExitCode::Ok,
        Err(e) => {
            eprintln!("error: {e}");
            ExitCode::Usage
        }
    }
}
