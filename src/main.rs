//! Thin entry point: parse the command line, run the subcommand, map the outcome to an exit code.

use std::io::{IsTerminal, Write};

use clap::Parser;

use rollout::cli::{Cli, Command, Format, VarArgs};
use rollout::exit::ExitCode;
use rollout::inputs::{self, VarInputs};
use rollout::runbook::{self, LoadError, Loaded};
use rollout::{plan, ui};

fn main() -> std::process::ExitCode {
    let cli = Cli::parse();
    let color_err = ui::use_color(cli.color, std::io::stderr().is_terminal());
    let color_out = ui::use_color(cli.color, std::io::stdout().is_terminal());
    let code = match cli.command {
        Command::Validate { runbook, vars } => validate(&runbook, &vars, color_err),
        Command::Plan {
            runbook,
            vars,
            format,
        } => plan(&runbook, &vars, format, color_out, color_err),
    };
    code.into()
}

fn load(path: &std::path::Path, color: bool) -> Result<Loaded, ExitCode> {
    runbook::load(path).map_err(|e| match e {
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
    inputs::resolve(&loaded.runbook, &given, &|name| std::env::var(name).ok()).map_err(|errors| {
        for e in errors {
            eprintln!("error: {e}");
        }
        ExitCode::Usage
    })
}

fn validate(path: &std::path::Path, vars: &VarArgs, color: bool) -> ExitCode {
    let loaded = match load(path, color) {
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
    ExitCode::Ok
}

fn plan(
    path: &std::path::Path,
    vars: &VarArgs,
    format: Format,
    color_out: bool,
    color_err: bool,
) -> ExitCode {
    let loaded = match load(path, color_err) {
        Ok(l) => l,
        Err(code) => return code,
    };
    let resolved = match resolve_vars(&loaded, vars) {
        Ok(v) => v,
        Err(code) => return code,
    };
    let run = plan::RunInfo::preview(operator());
    let built = match plan::build(&loaded, &resolved, &run, std::env::var("KUBECTL").ok()) {
        Ok(p) => p,
        Err(errors) => {
            let diagnostics: Vec<runbook::Diagnostic> = errors
                .into_iter()
                .map(|e| {
                    runbook::Diagnostic::new(
                        e.error.span,
                        format!("cannot render step `{}`: {}", e.step, e.error.message),
                    )
                    .label("while rendering this")
                })
                .collect();
            eprint!(
                "{}",
                ui::diagnostics::render_all(&loaded.source, &diagnostics, color_err)
            );
            return ExitCode::Usage;
        }
    };
    let text = match format {
        Format::Text => ui::plan_view::render(&built, color_out),
        Format::Json => match serde_json::to_string_pretty(&built) {
            Ok(s) => s + "\n",
            Err(e) => {
                eprintln!("error: cannot encode the plan as JSON: {e}");
                return ExitCode::Internal;
            }
        },
    };
    let mut out = std::io::stdout().lock();
    if out
        .write_all(text.as_bytes())
        .and_then(|()| out.flush())
        .is_err()
    {
        return ExitCode::Internal;
    }
    ExitCode::Ok
}

/// The operator: `ROLLOUT_OPERATOR`, else the OS user.
fn operator() -> String {
    std::env::var("ROLLOUT_OPERATOR")
        .or_else(|_| std::env::var("USER"))
        .or_else(|_| std::env::var("LOGNAME"))
        .unwrap_or_else(|_| "unknown".into())
}
