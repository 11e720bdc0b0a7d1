//! Thin entry point: parse the command line, run the subcommand, map the outcome to an exit code.

use clap::Parser;

use rollout::app::{self, Ctx};
use rollout::cli::{AuditCommand, Cli, Command};
use rollout::exec::engine::InDoubt;

fn main() -> std::process::ExitCode {
    let cli = Cli::parse();
    let ctx = Ctx { color: cli.color };
    let code = match &cli.command {
        Command::Validate { runbook, vars } => app::validate(&ctx, runbook, vars),
        // `run --dry-run` is `plan`: one rendering path, so the preview cannot differ from a run.
        Command::Plan {
            runbook,
            vars,
            format,
            live_checks,
        } => app::plan(&ctx, runbook, vars, *format, *live_checks),
        Command::Run {
            runbook,
            vars,
            dry_run: true,
            format,
            ..
        } => app::plan(&ctx, runbook, vars, *format, false),
        Command::Run {
            runbook, vars, run, ..
        } => app::run(&ctx, runbook, vars, run),
        Command::Resume {
            run_id,
            allow_changed,
            rerun_in_doubt,
            skip_in_doubt,
            run,
        } => {
            let in_doubt = match (rerun_in_doubt, skip_in_doubt) {
                (true, _) => InDoubt::Rerun,
                (_, true) => InDoubt::Skip,
                _ => InDoubt::Ask,
            };
            app::resume(&ctx, run_id.as_deref(), *allow_changed, in_doubt, run)
        }
        Command::Status {
            run_id,
            state_dir,
            format,
        } => app::status(&ctx, run_id.as_deref(), state_dir.as_ref(), *format),
        Command::Runs { state_dir, format } => app::runs(&ctx, state_dir.as_ref(), *format),
        Command::Rollback {
            runbook,
            run_id,
            to,
            no_run,
            dry_run,
            allow_changed,
            vars,
            run,
        } => app::rollback(
            &ctx,
            runbook,
            vars,
            &app::RollbackArgs {
                run_id: run_id.as_deref(),
                to: to.as_deref(),
                no_run: *no_run,
                dry_run: *dry_run,
                allow_changed: *allow_changed,
            },
            run,
        ),
        Command::Audit {
            command:
                AuditCommand::Verify {
                    target,
                    digest,
                    state_dir,
                    format,
                },
        } => app::audit_verify(target, digest.as_deref(), state_dir.as_ref(), *format),
        Command::Log { run_id, state_dir } => app::log(run_id.as_deref(), state_dir.as_ref()),
        Command::Locks { state_dir } => app::locks(state_dir.as_ref()),
        Command::Unlock {
            lock_id,
            state_dir,
            yes,
        } => app::unlock(lock_id, state_dir.as_ref(), *yes),
    };
    code.into()
}
