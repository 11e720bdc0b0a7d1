//! The subcommands that serve the operator's tools rather than a run: `new` (scaffolding),
//! `completions`, `man` and `schema`. Each turns its input into output and an exit code; the
//! work itself lives in `scaffold`, `completion` and `runbook::schema`.

use std::io::Write;

use crate::cli::{NewArgs, Shell, Template};
use crate::config::Settings;
use crate::exit::ExitCode;
use crate::scaffold::{self, Field, Values};

fn print(text: &str) -> ExitCode {
    let mut out = std::io::stdout().lock();
    match out.write_all(text.as_bytes()).and_then(|()| out.flush()) {
        Ok(()) => ExitCode::Ok,
        // A closed pipe (`rollout man | head`) is the reader's choice, not an error.
        Err(e) if e.kind() == std::io::ErrorKind::BrokenPipe => ExitCode::Ok,
        Err(e) => {
            eprintln!("error: cannot write to stdout: {e}");
            ExitCode::Internal
        }
    }
}

pub fn completions(shell: Shell) -> ExitCode {
    print(&crate::completion::script(shell))
}

pub fn man() -> ExitCode {
    print(&crate::completion::man())
}

pub fn schema() -> ExitCode {
    print(&crate::runbook::schema::json())
}

pub fn new(settings: &Settings, args: &NewArgs) -> ExitCode {
    let file = &args.file;
    if file.exists() && !args.force {
        eprintln!(
            "error: `{}` already exists; give `--force` to overwrite it",
            file.display()
        );
        return ExitCode::Usage;
    }
    let mut values = Values {
        service: args.service.clone(),
        namespace: args.namespace.clone(),
        image: args.image.clone(),
        context: args.context.clone(),
        prometheus: args.prometheus.clone(),
        owner: args.owner.clone(),
    };
    let problems = values.problems();
    if !problems.is_empty() {
        for (field, why) in problems {
            eprintln!("error: invalid value for `{}`: {why}", field.flag());
        }
        return ExitCode::Usage;
    }
    if crate::ui::prompt::can_prompt(args.no_input || settings.ci) {
        if let Err(e) = ask(&mut values, args.template) {
            eprintln!("error: {e}");
            return ExitCode::Usage;
        }
    }
    if values.prometheus.is_none() && args.template == Template::Canary {
        values.prometheus.clone_from(&settings.prometheus_url);
    }
    let missing = values.missing();
    if !missing.is_empty() {
        let flags: Vec<String> = missing.iter().map(|f| format!("`{}`", f.flag())).collect();
        eprintln!(
            "error: `rollout new --template {}` needs {} (no terminal to ask in)",
            args.template.name(),
            flags.join(", ")
        );
        return ExitCode::Usage;
    }
    let text = match scaffold::render(args.template, &values) {
        Ok(t) => t,
        Err(e) => {
            eprintln!("error: {e}");
            return ExitCode::Internal;
        }
    };
    if let Err(e) = write(file, &text, args.force) {
        eprintln!("error: cannot write `{}`: {e}", file.display());
        return ExitCode::Internal;
    }
    eprintln!(
        "wrote `{}` ({} template); check it with `rollout plan {}`",
        file.display(),
        args.template.name(),
        file.display()
    );
    ExitCode::Ok
}

/// Writes the file; without `force`, only if it still does not exist (no race with another
/// writer between the check above and here).
fn write(file: &std::path::Path, text: &str, force: bool) -> std::io::Result<()> {
    let mut options = std::fs::OpenOptions::new();
    options.write(true);
    if force {
        options.create(true).truncate(true);
    } else {
        options.create_new(true);
    }
    options.open(file)?.write_all(text.as_bytes())
}

/// Asks for every value not given on the command line that the template uses.
fn ask(values: &mut Values, template: Template) -> Result<(), String> {
    let theme = dialoguer::theme::SimpleTheme;
    for field in Field::ALL {
        // Only the canary measures anything; the others would just carry the URL along.
        let unused = field == Field::Prometheus && template != Template::Canary;
        if values.get(field).is_some() || unused {
            continue;
        }
        let answer: String = dialoguer::Input::with_theme(&theme)
            .with_prompt(field.prompt())
            .allow_empty(!field.required())
            .validate_with(|v: &String| -> Result<(), String> {
                if v.is_empty() && !field.required() {
                    Ok(())
                } else {
                    field.check(v)
                }
            })
            .interact_text()
            .map_err(|e| format!("no answer for `{}`: {e}", field.flag()))?;
        let answer = answer.trim().to_string();
        values.set(field, (!answer.is_empty()).then_some(answer));
    }
    Ok(())
}
