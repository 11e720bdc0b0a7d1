//! The command line (clap derive): one subcommand per verb, each flag documented. Turned into
//! work by `main.rs`; nothing here does any.

use std::path::PathBuf;

use clap::{Args, Parser, Subcommand, ValueEnum};

#[derive(Debug, Parser)]
#[command(
    name = "rollout",
    version,
    about = "Walk a production change through its runbook: validate it, preview it, run it",
    long_about = None,
    propagate_version = true
)]
pub struct Cli {
    /// When to use colours. `NO_COLOR` (any value) also turns them off.
    #[arg(long, global = true, value_enum, default_value_t = ColorChoice::Auto, env = "ROLLOUT_COLOR")]
    pub color: ColorChoice,

    #[command(subcommand)]
    pub command: Command,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum ColorChoice {
    Auto,
    Always,
    Never,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum Format {
    /// A readable preview for people.
    Text,
    /// One JSON document (see docs/plan-json.md).
    Json,
}

#[derive(Debug, Subcommand)]
pub enum Command {
    /// Check a runbook and report every problem at once, with its location
    Validate {
        /// The runbook file (TOML)
        runbook: PathBuf,
        #[command(flatten)]
        vars: VarArgs,
    },
    /// Show exactly what a run would do, fully rendered, without executing anything
    Plan {
        /// The runbook file (TOML)
        runbook: PathBuf,
        #[command(flatten)]
        vars: VarArgs,
        /// Output format
        #[arg(long, value_enum, default_value_t = Format::Text, env = "ROLLOUT_FORMAT")]
        format: Format,
    },
}

#[derive(Debug, Args, Clone, Default)]
pub struct VarArgs {
    /// Set a variable: `--var name=value` (repeatable; wins over `--vars-file` and `ROLLOUT_VAR_*`)
    #[arg(long = "var", value_name = "NAME=VALUE")]
    pub vars: Vec<String>,
    /// Read variables from a TOML file of `name = value` lines (repeatable; later files win)
    #[arg(long = "vars-file", value_name = "FILE")]
    pub files: Vec<PathBuf>,
}
