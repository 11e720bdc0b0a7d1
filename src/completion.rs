//! Shell integration, generated from the clap definition in `cli.rs` so it cannot drift from
//! the flags: static completion scripts (`rollout completions SHELL`, committed in
//! `completions/`), dynamic completion of run ids (`ROLLOUT_COMPLETE=SHELL rollout`), and the man page
//! (`rollout man`, committed as `docs/rollout.1`). Prints nothing itself.

use std::fmt::Write;

use clap::CommandFactory;
use clap_complete::{Generator, shells};

use crate::cli::{Cli, Shell};

const BIN: &str = "rollout";

/// The static completion script for `shell`.
pub fn script(shell: Shell) -> String {
    let mut out = Vec::new();
    let mut cmd = Cli::command();
    match shell {
        Shell::Bash => clap_complete::generate(shells::Bash, &mut cmd, BIN, &mut out),
        Shell::Zsh => clap_complete::generate(shells::Zsh, &mut cmd, BIN, &mut out),
        Shell::Fish => clap_complete::generate(shells::Fish, &mut cmd, BIN, &mut out),
        Shell::PowerShell => clap_complete::generate(shells::PowerShell, &mut cmd, BIN, &mut out),
        Shell::Elvish => clap_complete::generate(shells::Elvish, &mut cmd, BIN, &mut out),
    }
    String::from_utf8_lossy(&out).into_owned()
}

/// Where the script for `shell` is committed, relative to the repository (and what the shell
/// expects the file to be called).
pub fn script_file(shell: Shell) -> String {
    let name = match shell {
        Shell::Bash => shells::Bash.file_name(BIN),
        Shell::Zsh => shells::Zsh.file_name(BIN),
        Shell::Fish => shells::Fish.file_name(BIN),
        Shell::PowerShell => shells::PowerShell.file_name(BIN),
        Shell::Elvish => shells::Elvish.file_name(BIN),
    };
    format!("completions/{name}")
}

/// The man page, in roff: one page, with a section per subcommand (its synopsis and options)
/// where `clap_mangen` would point at separate `rollout-SUBCOMMAND(1)` pages.
pub fn man() -> String {
    let mut cmd = Cli::command();
    cmd.build();
    let man = clap_mangen::Man::new(cmd.clone());
    let mut out = Vec::new();
    // Writing to a Vec cannot fail.
    let _ = man.render_title(&mut out);
    let _ = man.render_name_section(&mut out);
    let _ = man.render_synopsis_section(&mut out);
    let _ = man.render_description_section(&mut out);
    let _ = man.render_options_section(&mut out);
    for sub in cmd.get_subcommands().filter(|s| s.get_name() != "help") {
        let about = sub.get_about().map(ToString::to_string).unwrap_or_default();
        // The global flags and --help/--version are in the page's own OPTIONS already.
        let sub = ["color", "prometheus_url", "help", "version"]
            .into_iter()
            .fold(sub.clone(), |c, id| c.mut_arg(id, |a| a.hide(true)));
        let sub_man = clap_mangen::Man::new(sub.clone());
        let mut section = Vec::new();
        let _ = sub_man.render_synopsis_section(&mut section);
        if sub.get_arguments().any(|a| !a.is_hide_set()) {
            let _ = sub_man.render_options_section(&mut section);
        }
        let section = String::from_utf8_lossy(&section)
            .replace(".SH SYNOPSIS\n", "")
            .replace(".SH OPTIONS\n", ".SS Options\n");
        out.extend_from_slice(
            format!(
                ".SH \"{BIN} {}\"\n{}\n.PP\n{section}",
                sub.get_name(),
                roff_text(&about)
            )
            .as_bytes(),
        );
    }
    out.extend_from_slice(files_and_exit_status().as_bytes());
    let _ = man.render_version_section(&mut out);
    String::from_utf8_lossy(&out).into_owned()
}

fn files_and_exit_status() -> String {
    let mut text = String::from(
        ".SH FILES\n.TP\n\\fI~/.config/rollout/config.toml\\fR\n\
         The user configuration (\\fI$XDG_CONFIG_HOME/rollout/config.toml\\fR when \
         XDG_CONFIG_HOME is set; ROLLOUT_CONFIG names another file): \\fBoperator\\fR, \
         \\fBprometheus_url\\fR, \\fBcolor\\fR.\n.TP\n\\fI.rollout/\\fR\n\
         Runs, beside the runbook (ROLLOUT_STATE_DIR or \\fB\\-\\-state\\-dir\\fR elsewhere).\n\
         .SH \"EXIT STATUS\"\n",
    );
    for code in crate::exit::ExitCode::ALL {
        let _ = write!(
            text,
            ".TP\n\\fB{}\\fR\n{}\n",
            code.code(),
            roff_text(code.meaning())
        );
    }
    text
}

/// Plain text for roff: a leading `.` or `'` would be read as a request, `\` as an escape.
fn roff_text(text: &str) -> String {
    let escaped = text.replace('\\', "\\e").replace('-', "\\-");
    if escaped.starts_with(['.', '\'']) {
        format!("\\&{escaped}")
    } else {
        escaped
    }
}

/// Answers a shell's completion request when `ROLLOUT_COMPLETE=SHELL` is set (and exits); does
/// nothing otherwise. Must run before the command line is parsed. Not clap's default `COMPLETE`:
/// a variable that generic, set for some other tool, would make every rollout command print a
/// script and exit 0 without doing anything.
pub fn answer_shell_request() {
    clap_complete::CompleteEnv::with_factory(Cli::command)
        .var("ROLLOUT_COMPLETE")
        .bin(BIN)
        .completer(BIN)
        .complete();
}
