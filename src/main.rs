//! Thin entry point: parse the command line, run the subcommand, map the outcome to an exit code.

use std::io::IsTerminal;

use clap::Parser;

use rollout::app::{self, Ctx};
use rollout::cli::{AuditCommand, Cli, Command};
use rollout::exec::engine::InDoubt;
use rollout::tooling;

/// jemalloc instead of the system allocator: loading and planning a large runbook makes hundreds
/// of thousands of small allocations on three threads, and with glibc's allocator a quarter of
/// `plan`'s CPU time went to `malloc` and `free` (see `benches/plan.sh` and README, Performance).
#[cfg(unix)]
#[global_allocator]
static GLOBAL: tikv_jemallocator::Jemalloc = tikv_jemallocator::Jemalloc;

fn main() -> std::process::ExitCode {
    rollout::ui::prompt::serve_if_asked();
    rollout::exec::warden::serve_if_asked();
    rollout::completion::answer_shell_request();
    let cli = Cli::parse();
    let settings = match rollout::config::resolve(&cli.flags()) {
        Ok(settings) => settings,
        Err(e) => {
            let color = rollout::config::pick_color(cli.color, None);
            let color = rollout::ui::use_color(color, std::io::stderr().is_terminal());
            eprint!("{}", e.render(color));
            return rollout::exit::ExitCode::Usage.into();
        }
    };
    // The one async runtime of the process (see `app::Ctx`).
    let runtime = match tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
    {
        Ok(runtime) => runtime,
        Err(e) => {
            eprintln!("error: cannot start the async runtime: {e}");
            return rollout::exit::ExitCode::Internal.into();
        }
    };
    let ctx = Ctx {
        settings,
        runtime,
        wardens: true,
    };
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
            runbook,
            run,
        } => {
            let in_doubt = match (rerun_in_doubt, skip_in_doubt) {
                (true, _) => InDoubt::Rerun,
                (_, true) => InDoubt::Skip,
                _ => InDoubt::Ask,
            };
            let how = app::ResumeArgs {
                allow_changed: *allow_changed,
                in_doubt,
                runbook: runbook.as_deref(),
            };
            app::resume(&ctx, run_id.as_deref(), &how, run)
        }
        Command::Status { run_id, format, .. } => app::status(&ctx, run_id.as_deref(), *format),
        Command::Runs { format, .. } => app::runs(&ctx, *format),
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
                    strict,
                    format,
                    ..
                },
        } => app::audit_verify(
            &ctx,
            target,
            &app::VerifyArgs {
                digest: digest.as_deref(),
                strict: *strict,
            },
            *format,
        ),
        Command::Log { run_id, .. } => app::log(&ctx, run_id.as_deref()),
        Command::Approve {
            run_id,
            gate,
            role,
            key,
            request,
            output,
            yes,
            no_input,
            ..
        } => app::approve(
            &ctx,
            &app::ApproveArgs {
                run_id,
                gate,
                role: role.as_deref(),
                key: key.as_deref(),
                request: *request,
                output: output.as_deref(),
                yes: *yes,
                no_input: *no_input,
            },
        ),
        Command::Locks { .. } => app::locks(&ctx),
        Command::Unlock { lock_id, yes, .. } => app::unlock(&ctx, lock_id, *yes),
        Command::Watch { run_id } => app::watch(&ctx, run_id),
        Command::State { command } => app::state(&ctx, command),
        Command::New(args) => tooling::new(&ctx.settings, args),
        Command::Completions { shell } => tooling::completions(*shell),
        Command::Man => tooling::man(),
        Command::Schema => tooling::schema(),
        Command::Report {
            run_id,
            format,
            output,
            ..
        } => app::run_report(&ctx, run_id.as_deref(), *format, output.as_deref()),
    };
    code.into()
}
