//! The command line (clap derive): one subcommand per verb, each flag documented. Turned into
//! work by `main.rs`; nothing here does any.

use std::path::PathBuf;

use clap::{Args, Parser, Subcommand, ValueEnum, ValueHint};
use clap_complete::engine::{ArgValueCandidates, CompletionCandidate};

use crate::state::FileStore;

#[derive(Debug, Parser)]
#[command(
    name = "rollout",
    version,
    about = "Walk a production change through its runbook: validate it, preview it, run it",
    long_about = None,
    propagate_version = true
)]
pub struct Cli {
    /// When to use colours [default: `color` in the user config, else auto]. `NO_COLOR` (any
    /// value) turns them off unless this flag or `ROLLOUT_COLOR` asks for them
    #[arg(long, global = true, value_enum, env = "ROLLOUT_COLOR")]
    pub color: Option<ColorChoice>,

    /// Prometheus to ask when the runbook names none (neither on the step nor in `[defaults]`)
    /// [default: `prometheus_url` in the user config]
    #[arg(long, global = true, value_name = "URL", value_hint = ValueHint::Url, env = "ROLLOUT_PROMETHEUS_URL")]
    pub prometheus_url: Option<String>,

    /// Keep runs, journals and locks in a shared `PostgreSQL` database (team mode):
    /// `postgres://user@host:port/db?sslmode=verify-full` (libpq's PGPASSWORD, ~/.pgpass,
    /// PGSSLROOTCERT apply), or `file:DIR` for a state directory [default: `state` in the user
    /// config, else files]
    #[arg(long, global = true, value_name = "URL", env = "ROLLOUT_STATE")]
    pub state: Option<String>,

    /// Team mode: how long a target lock's lease lasts without a heartbeat (renewed every third
    /// of it, more often for a long `--grace`); a holder that cannot renew it stops its step
    /// before it runs out [default: `lease` in the user config, else 30s]
    #[arg(long, global = true, value_name = "DURATION", env = "ROLLOUT_LEASE")]
    pub lease: Option<String>,

    #[command(subcommand)]
    pub command: Command,
}

pub use crate::config::ColorChoice;

impl Cli {
    /// What of the command line the settings are resolved from (see [`crate::config::resolve`]).
    pub fn flags(&self) -> crate::config::Flags {
        crate::config::Flags {
            color: self.color,
            prometheus_url: self.prometheus_url.clone(),
            state_dir: self.command.state_dir().cloned(),
            state: self.state.clone(),
            lease: self.lease.clone(),
        }
    }
}

impl Command {
    /// The subcommand's `--state-dir` (or `ROLLOUT_STATE_DIR`), if it has one.
    fn state_dir(&self) -> Option<&PathBuf> {
        match self {
            Command::Run { run, .. }
            | Command::Resume { run, .. }
            | Command::Rollback { run, .. } => run.state_dir.as_ref(),
            Command::Status { state_dir, .. }
            | Command::Runs { state_dir, .. }
            | Command::Log { state_dir, .. }
            | Command::Locks { state_dir }
            | Command::Unlock { state_dir, .. }
            | Command::Report { state_dir, .. }
            | Command::Approve { state_dir, .. }
            | Command::Audit {
                command: AuditCommand::Verify { state_dir, .. },
            } => state_dir.as_ref(),
            Command::Validate { .. }
            | Command::Plan { .. }
            | Command::New(_)
            | Command::Completions { .. }
            | Command::Man
            | Command::Schema
            | Command::Watch { .. }
            | Command::State { .. } => None,
        }
    }
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
        #[arg(value_hint = ValueHint::FilePath)]
        runbook: PathBuf,
        #[command(flatten)]
        vars: VarArgs,
    },
    /// Show exactly what a run would do, fully rendered, without executing anything
    Plan {
        /// The runbook file (TOML)
        #[arg(value_hint = ValueHint::FilePath)]
        runbook: PathBuf,
        #[command(flatten)]
        vars: VarArgs,
        /// Output format
        #[arg(long, value_enum, default_value_t = Format::Text, env = "ROLLOUT_FORMAT")]
        format: Format,
        /// Also run each metric query once (read-only) and show its current value against the
        /// threshold
        #[arg(long)]
        live_checks: bool,
    },
    /// Run a runbook: execute its steps in order, stop at gates, record every step
    Run {
        /// The runbook file (TOML)
        #[arg(value_hint = ValueHint::FilePath)]
        runbook: PathBuf,
        #[command(flatten)]
        vars: VarArgs,
        /// Show the plan instead of running (exactly `rollout plan`)
        #[arg(long)]
        dry_run: bool,
        /// Plan format, with --dry-run
        #[arg(long, value_enum, default_value_t = Format::Text, requires = "dry_run")]
        format: Format,
        #[command(flatten)]
        run: RunArgs,
    },
    /// Continue a paused, waiting or interrupted run from its first unfinished step
    Resume {
        /// The run to resume [default: the newest run that has not finished]
        #[arg(add = ArgValueCandidates::new(run_ids))]
        run_id: Option<String>,
        /// Resume even though the runbook file changed since the run started (shows the change)
        #[arg(long)]
        allow_changed: bool,
        /// Run again the step that was in flight when rollout stopped
        #[arg(long, conflicts_with = "skip_in_doubt")]
        rerun_in_doubt: bool,
        /// Treat the step that was in flight when rollout stopped as done
        #[arg(long)]
        skip_in_doubt: bool,
        /// Team mode: the runbook to resume with when the run's own file is not on this machine
        /// [default: the copy stored with the run]
        #[arg(long, value_name = "FILE", value_hint = ValueHint::FilePath)]
        runbook: Option<PathBuf>,
        #[command(flatten)]
        run: RunArgs,
    },
    /// Show where a run stands
    Status {
        /// The run [default: the latest run]
        #[arg(add = ArgValueCandidates::new(run_ids))]
        run_id: Option<String>,
        /// Where runs are recorded [default: ./.rollout and ./*/.rollout]
        #[arg(long, value_name = "DIR", value_hint = ValueHint::DirPath, env = "ROLLOUT_STATE_DIR")]
        state_dir: Option<PathBuf>,
        /// Output format
        #[arg(long, value_enum, default_value_t = Format::Text)]
        format: Format,
    },
    /// List runs, newest last
    Runs {
        /// Where runs are recorded [default: ./.rollout and ./*/.rollout]
        #[arg(long, value_name = "DIR", value_hint = ValueHint::DirPath, env = "ROLLOUT_STATE_DIR")]
        state_dir: Option<PathBuf>,
        /// Output format
        #[arg(long, value_enum, default_value_t = Format::Text)]
        format: Format,
    },
    /// Undo a run: the phases it ran, last first, through their rollback steps (or, with no run
    /// of this runbook, the runbook's own [[rollback]] section). Shows the plan and asks first.
    Rollback {
        /// The runbook file (TOML)
        #[arg(value_hint = ValueHint::FilePath)]
        runbook: PathBuf,
        /// The run to undo [default: the latest run of this runbook not rolled back yet]
        #[arg(long = "run", value_name = "RUN_ID", add = ArgValueCandidates::new(run_ids))]
        run_id: Option<String>,
        /// Roll back down to this phase (included), leaving earlier phases in place
        #[arg(long, value_name = "PHASE")]
        to: Option<String>,
        /// Ignore saved runs: run the runbook's own [[rollback]] section
        #[arg(long, conflicts_with_all = ["run_id", "to"])]
        no_run: bool,
        /// Show the rollback plan, rendered, and do nothing
        #[arg(long)]
        dry_run: bool,
        /// Roll back even though the runbook changed since the run started (e.g. a fixed
        /// rollback step; the change is shown)
        #[arg(long)]
        allow_changed: bool,
        /// Variable values, for the runbook's own rollback section (a run uses its own values)
        #[command(flatten)]
        vars: VarArgs,
        #[command(flatten)]
        run: RunArgs,
    },
    /// Approve a sign-off of a run with your SSH key: shows the phase as the operator sees it
    /// at the gate, asks, signs (`ssh-keygen -Y sign -n rollout`, with your ssh-agent or
    /// `--key`) and delivers the approval to the run
    Approve {
        /// The run waiting for the approval
        #[arg(add = ArgValueCandidates::new(run_ids))]
        run_id: String,
        /// The sign-off step's id
        #[arg(long, value_name = "GATE")]
        gate: String,
        /// The role you sign as [default: the sign-off's only role; asked in a terminal]
        #[arg(long, value_name = "ROLE")]
        role: Option<String>,
        /// Your SSH key: a private key file, or a public key file whose private key your
        /// ssh-agent holds [default: `signing_key` in the user config, else the agent's first key]
        #[arg(long, value_name = "FILE", value_hint = ValueHint::FilePath)]
        key: Option<PathBuf>,
        /// Write the text to sign instead of signing it (for `ssh-keygen -Y sign -n rollout`
        /// elsewhere; the operator then gives `--signoff-file REQUEST.sig`)
        #[arg(long)]
        request: bool,
        /// Write the signed approval (or the request) to this file (`-`: stdout) instead of
        /// delivering it to the run
        #[arg(long, short = 'o', value_name = "FILE", value_hint = ValueHint::FilePath)]
        output: Option<PathBuf>,
        /// Sign without asking (what is signed is still shown)
        #[arg(long)]
        yes: bool,
        /// Never prompt, even in a terminal
        #[arg(long, env = "ROLLOUT_NO_INPUT")]
        no_input: bool,
        /// Where runs are recorded [default: ./.rollout and ./*/.rollout]
        #[arg(long, value_name = "DIR", value_hint = ValueHint::DirPath, env = "ROLLOUT_STATE_DIR")]
        state_dir: Option<PathBuf>,
    },
    /// Check a run's audit log (its journal): hash chain, order, seal
    Audit {
        #[command(subcommand)]
        command: AuditCommand,
    },
    /// Show a run's audit log as readable text, phase by phase
    Log {
        /// The run [default: the latest run]
        #[arg(add = ArgValueCandidates::new(run_ids))]
        run_id: Option<String>,
        /// Where runs are recorded [default: ./.rollout and ./*/.rollout]
        #[arg(long, value_name = "DIR", value_hint = ValueHint::DirPath, env = "ROLLOUT_STATE_DIR")]
        state_dir: Option<PathBuf>,
    },
    /// List target locks, who holds them, and what a killed holder left running
    Locks {
        /// Where runs are recorded [default: ./.rollout and ./*/.rollout]
        #[arg(long, value_name = "DIR", value_hint = ValueHint::DirPath, env = "ROLLOUT_STATE_DIR")]
        state_dir: Option<PathBuf>,
    },
    /// Remove a target lock whose holder is stuck (recorded; a killed holder's lock needs none:
    /// the next run stops what it left running)
    Unlock {
        /// The lock id, as named by the refusal message or `rollout locks`
        lock_id: String,
        /// Where runs are recorded [default: ./.rollout and ./*/.rollout]
        #[arg(long, value_name = "DIR", value_hint = ValueHint::DirPath, env = "ROLLOUT_STATE_DIR")]
        state_dir: Option<PathBuf>,
        /// Do not ask for confirmation
        #[arg(long)]
        yes: bool,
    },
    /// Team mode: follow a run as its records are committed to the database (from any
    /// machine), with who holds it and where; ends when the run's session is over
    Watch {
        /// The run to follow
        run_id: String,
    },
    /// Team mode: move runs between a state directory and the database
    State {
        #[command(subcommand)]
        command: StateCommand,
    },
    /// Write a new runbook from a template, asking for what is missing when in a terminal
    New(NewArgs),
    /// Print the completion script for a shell (see README, "Shell completions")
    Completions {
        /// The shell to complete for
        #[arg(value_enum)]
        shell: Shell,
    },
    /// Print the man page (roff)
    Man,
    /// Print the JSON Schema of the runbook format, for editors (see docs/runbook-format.md)
    Schema,
    /// Write a run's report (timeline, approvals, commands, checks, rollback, audit) from its
    /// audit log
    Report {
        /// The run [default: the latest run]
        #[arg(add = ArgValueCandidates::new(run_ids))]
        run_id: Option<String>,
        /// Where runs are recorded [default: ./.rollout and ./*/.rollout]
        #[arg(long, value_name = "DIR", value_hint = ValueHint::DirPath, env = "ROLLOUT_STATE_DIR")]
        state_dir: Option<PathBuf>,
        /// Report format
        #[arg(long, value_enum, default_value_t = ReportFormat::Md)]
        format: ReportFormat,
        /// Write the report to this file instead of stdout
        #[arg(long, short = 'o', value_name = "FILE", value_hint = ValueHint::FilePath)]
        output: Option<PathBuf>,
    },
}

#[derive(Debug, Subcommand)]
pub enum AuditCommand {
    /// Verify a run's audit log: every record's hash, the chain, the order, and the final seal
    Verify {
        /// A run id, or the path of a journal file
        #[arg(add = ArgValueCandidates::new(run_ids))]
        target: String,
        /// A published digest (`sha256:...`, printed at the end of a session) that a seal of the
        /// log must carry; what was written after it is listed, session by session
        #[arg(long, value_name = "DIGEST")]
        digest: Option<String>,
        /// With --digest: fail when anything follows the published digest
        #[arg(long, requires = "digest")]
        strict: bool,
        /// Where runs are recorded [default: ./.rollout and ./*/.rollout]
        #[arg(long, value_name = "DIR", value_hint = ValueHint::DirPath, env = "ROLLOUT_STATE_DIR")]
        state_dir: Option<PathBuf>,
        /// Output format
        #[arg(long, value_enum, default_value_t = Format::Text)]
        format: Format,
    },
}

#[derive(Debug, Subcommand)]
pub enum StateCommand {
    /// Write a run's journal as file mode writes it (`audit verify FILE` checks it offline)
    Export {
        /// The run
        run_id: String,
        /// Write it to this file instead of stdout
        #[arg(long, short = 'o', value_name = "FILE", value_hint = ValueHint::FilePath)]
        output: Option<PathBuf>,
    },
    /// Copy the runs of a state directory into the database, hashes intact (a run id the
    /// database has already is refused)
    Import {
        /// The state directory (the one holding `runs/`)
        #[arg(value_hint = ValueHint::DirPath)]
        dir: PathBuf,
    },
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum Shell {
    Bash,
    Zsh,
    Fish,
    #[value(name = "powershell")]
    PowerShell,
    Elvish,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum Template {
    /// Shift traffic in weighted steps, each held behind metric gates, with abort criteria
    Canary,
    /// Deploy beside the live version, then switch the Service selector over
    BlueGreen,
    /// Rolling update of a Deployment, watched with `kubectl rollout status`
    Rolling,
    /// The smallest useful runbook: deploy, verify, roll back
    Basic,
}

#[derive(Debug, Args, Clone)]
pub struct NewArgs {
    /// Where to write the runbook (refused if it exists, unless --force)
    #[arg(value_hint = ValueHint::FilePath)]
    pub file: PathBuf,
    /// The kind of rollout the runbook walks through
    #[arg(long, value_enum, default_value_t = Template::Basic)]
    pub template: Template,
    /// The service (Deployment) name, e.g. `payments`
    #[arg(long)]
    pub service: Option<String>,
    /// The Kubernetes namespace
    #[arg(long)]
    pub namespace: Option<String>,
    /// The image to roll out, e.g. `registry.example.com/payments:1.4.2`
    #[arg(long)]
    pub image: Option<String>,
    /// The kubectl context of the target cluster
    #[arg(long)]
    pub context: Option<String>,
    /// The Prometheus to query in checks [default: `--prometheus-url`, then the user config]
    #[arg(long, value_name = "URL", value_hint = ValueHint::Url)]
    pub prometheus: Option<String>,
    /// Who owns the runbook (team or person)
    #[arg(long)]
    pub owner: Option<String>,
    /// Overwrite FILE if it exists
    #[arg(long)]
    pub force: bool,
    /// Never prompt, even in a terminal (prompts are also off when CI is set or stdin is not a terminal)
    #[arg(long, env = "ROLLOUT_NO_INPUT")]
    pub no_input: bool,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum Output {
    /// Live terminal view (plain lines when not a terminal).
    Text,
    /// One JSON event per line (NDJSON) on stdout; see docs/events.md.
    Json,
}

#[derive(Debug, Args, Clone, Default)]
pub struct GateArgs {
    /// Answer "yes" to plain confirms. Never satisfies a sign-off or a severe confirm
    #[arg(long)]
    pub yes: bool,
    /// Approve a confirm in advance: `--approve GATE`, or `--approve GATE=WORD` for a severe one
    #[arg(long, value_name = "GATE[=WORD]")]
    pub approve: Vec<String>,
    /// Tick checklist items in advance: `--check GATE` (all), `--check GATE:N`, or the item's text
    #[arg(long, value_name = "ITEM")]
    pub check: Vec<String>,
    /// Sign a sign-off in advance: `--signoff GATE=NAME:ROLE` (repeat for each signer)
    #[arg(long, value_name = "GATE=NAME:ROLE")]
    pub signoff: Vec<String>,
    /// A signed approval (`rollout approve --output FILE`, or a request signed with `ssh-keygen
    /// -Y sign -n rollout`, given as `REQUEST.sig` beside `REQUEST`); repeat for each signer
    #[arg(long, value_name = "FILE", value_hint = ValueHint::FilePath)]
    pub signoff_file: Vec<PathBuf>,
    /// Never prompt, even in a terminal (prompts are also off when CI is set or stdin is not a terminal)
    #[arg(long, env = "ROLLOUT_NO_INPUT")]
    pub no_input: bool,
    /// Where nobody can answer, wait this long at a sign-off for signed approvals to be
    /// delivered (`rollout approve` from elsewhere) before stopping to wait for approval
    #[arg(long, value_name = "DURATION", env = "ROLLOUT_WAIT_FOR_APPROVALS")]
    pub wait_for_approvals: Option<String>,
}

#[derive(Debug, Args, Clone)]
pub struct RunArgs {
    /// Where runs are recorded [default: .rollout/ beside the runbook]
    #[arg(long, value_name = "DIR", value_hint = ValueHint::DirPath, env = "ROLLOUT_STATE_DIR")]
    pub state_dir: Option<PathBuf>,
    /// How to report progress
    #[arg(long, value_enum, default_value_t = Output::Text, env = "ROLLOUT_OUTPUT")]
    pub output: Output,
    /// Time between interrupt, terminate and kill when stopping a step (or processes a killed
    /// earlier run of the target left running)
    #[arg(
        long,
        value_name = "DURATION",
        default_value = "5s",
        env = "ROLLOUT_GRACE"
    )]
    pub grace: String,
    /// Start even though it is outside the runbook's change window (`[runbook.window]`); needs `--reason`, recorded in the audit log
    #[arg(long, requires = "reason")]
    pub outside_window: bool,
    /// Why the run goes ahead outside its change window (recorded in the audit log)
    #[arg(long, value_name = "TEXT", requires = "outside_window")]
    pub reason: Option<String>,
    #[command(flatten)]
    pub gates: GateArgs,
}

#[derive(Debug, Args, Clone, Default)]
pub struct VarArgs {
    /// Set a variable: `--var name=value` (repeatable; wins over `--vars-file` and `ROLLOUT_VAR_*`)
    #[arg(long = "var", value_name = "NAME=VALUE")]
    pub vars: Vec<String>,
    /// Read variables from a TOML file of `name = value` lines (repeatable; later files win)
    #[arg(long = "vars-file", value_name = "FILE", value_hint = ValueHint::FilePath)]
    pub files: Vec<PathBuf>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum ReportFormat {
    /// Markdown: headings and tables, to paste into a ticket or post-mortem.
    Md,
    /// One self-contained HTML page (inline CSS and SVG, no scripts or network assets).
    Html,
    /// The report model as JSON (see docs/report-json.md).
    Json,
}

/// Run ids for `resume` and `status`, newest first, from the same state directories those
/// commands search when `--state-dir` is not given: `$ROLLOUT_STATE_DIR`, else `./.rollout`
/// and `./*/.rollout`.
fn run_ids() -> Vec<CompletionCandidate> {
    let mut ids: Vec<String> = state_dirs()
        .into_iter()
        .filter_map(|dir| FileStore::new(dir).run_ids().ok())
        .flatten()
        .collect();
    ids.sort_unstable_by(|a, b| b.cmp(a));
    ids.dedup();
    ids.into_iter().map(CompletionCandidate::new).collect()
}

fn state_dirs() -> Vec<PathBuf> {
    if let Some(dir) = std::env::var_os("ROLLOUT_STATE_DIR").filter(|d| !d.is_empty()) {
        return vec![PathBuf::from(dir)];
    }
    let mut dirs = vec![PathBuf::from(".rollout")];
    if let Ok(entries) = std::fs::read_dir(".") {
        dirs.extend(
            entries
                .filter_map(Result::ok)
                .map(|e| e.path().join(".rollout")),
        );
    }
    dirs.retain(|d| d.is_dir());
    dirs
}
