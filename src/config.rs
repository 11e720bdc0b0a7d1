//! The settings of one invocation, resolved once near `main` from the command line, the
//! environment and the operator's own `config.toml`, into the one [`Settings`] value that is
//! handed down to everything that needs it: the renderer (so `plan` and `run` provably render
//! with the same inputs), the session and the views. Nothing else reads these from the
//! environment, and there is no global copy.
//!
//! Precedence, for each setting: command-line flag > environment variable > user config >
//! built-in default. The Prometheus URL is a fallback only: a URL the runbook names (on the
//! step, the abort criterion or in `[defaults]`) always wins, because the runbook's author knows
//! which Prometheus measures the service. A broken config file stops rollout with a located
//! error instead of being half applied.
//!
//! Adding a key: a field on [`UserConfig`], one line in [`read`], a line in the docs.

use std::fmt::Write;
use std::path::PathBuf;

use toml::Spanned;
use toml::de::DeTable;

use crate::runbook::model::{NotifyFormat, NotifyOn};
use crate::runbook::reader::{Problems, Table};
use crate::runbook::source::{MAX_RUNBOOK_BYTES, OpenError, read_regular, special_reason};
use crate::runbook::{Diagnostic, Source};

/// When to use colours.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum ColorChoice {
    Auto,
    Always,
    Never,
}

/// A webhook to notify, rendered: plain data, for the plan (which lists it) and the run (whose
/// notifier posts to it).
#[derive(Debug, Clone)]
pub struct NotifyTarget {
    pub url: String,
    pub format: NotifyFormat,
    pub on: Vec<NotifyOn>,
}

/// `https://hooks.example.com` of a webhook URL: enough to say which one it is, without the
/// token in its path.
pub fn webhook_label(url: &str) -> String {
    match url::Url::parse(url) {
        Ok(u) => format!(
            "{}://{}{}",
            u.scheme(),
            u.host_str().unwrap_or("?"),
            u.port().map(|p| format!(":{p}")).unwrap_or_default()
        ),
        Err(_) => "a webhook with an invalid URL".into(),
    }
}

/// What the user config file says; every key optional.
#[derive(Debug, Default, Clone)]
pub struct UserConfig {
    /// The name recorded as the operator of runs and shown at gates.
    pub operator: Option<String>,
    /// Prometheus to ask when the runbook names none.
    pub prometheus_url: Option<String>,
    pub color: Option<ColorChoice>,
    /// Webhooks told about every run, in addition to the runbook's own `[[notify]]`.
    pub notify: Vec<NotifyTarget>,
    /// The allowed-signers file (OpenSSH's format) for runbooks that name none.
    pub allowed_signers: Option<PathBuf>,
    /// The operator's own SSH key (public or private key file): who the operator is when a
    /// sign-off excludes the operator, and the key `rollout approve` signs with.
    pub signing_key: Option<PathBuf>,
    /// Where runs are kept: a `postgres://` URL (team mode).
    pub state: Option<String>,
    /// How long a lock's lease lasts in team mode.
    pub lease: Option<String>,
}

/// The settings of the command line that the resolution needs (see `cli::Cli::flags`).
#[derive(Debug, Clone, Default)]
pub struct Flags {
    pub color: Option<ColorChoice>,
    pub prometheus_url: Option<String>,
    /// `--state-dir` (or `ROLLOUT_STATE_DIR`) of the subcommand, if it has one.
    pub state_dir: Option<PathBuf>,
    /// `--state` (or `ROLLOUT_STATE`).
    pub state: Option<String>,
    /// `--lease` (or `ROLLOUT_LEASE`).
    pub lease: Option<String>,
}

/// The settings in force for this invocation, resolved once.
#[derive(Debug, Clone)]
pub struct Settings {
    pub color: ColorChoice,
    /// The operator's name: `ROLLOUT_OPERATOR`, else `operator` in the user config, else the OS
    /// user.
    pub operator: String,
    /// The OS account rollout runs as.
    pub os_user: String,
    /// Prometheus to ask when the runbook names none: `--prometheus-url`
    /// (`ROLLOUT_PROMETHEUS_URL`), else `prometheus_url` in the user config.
    pub prometheus_url: Option<String>,
    /// The operator's own webhooks (user config), told about every run.
    pub notify: Vec<NotifyTarget>,
    /// The kubectl program: `KUBECTL`, else the runbook's `[defaults.kubectl] binary`, else
    /// `kubectl` (the renderer decides between the last two).
    pub kubectl: Option<String>,
    /// `--state-dir` (or `ROLLOUT_STATE_DIR`).
    pub state_dir: Option<PathBuf>,
    /// Team mode: the `PostgreSQL` URL runs are kept in (`--state`, `ROLLOUT_STATE`, `state` in
    /// the user config); `None` keeps them in files.
    pub state: Option<String>,
    /// How long a lock's lease lasts in team mode (`--lease`, `ROLLOUT_LEASE`, `lease` in the
    /// user config; 30 s by default).
    pub lease: std::time::Duration,
    /// `CI` is set (and not `false` or `0`): nobody is at the terminal.
    pub ci: bool,
    /// `ROLLOUT_NOW`: the time change windows are checked against (tests only; undocumented in
    /// `--help`), as given.
    pub now: Option<String>,
    /// The allowed-signers file for runbooks that name none: `ROLLOUT_ALLOWED_SIGNERS`, else
    /// `allowed_signers` in the user config.
    pub allowed_signers: Option<PathBuf>,
    /// The operator's own SSH key file: `ROLLOUT_SIGNING_KEY`, else `signing_key` in the user
    /// config. With the keys of the operator's ssh-agent, it tells who the operator is.
    pub signing_key: Option<PathBuf>,
}

impl Default for Settings {
    /// Built-in defaults, as if no flag, variable or config file said anything.
    fn default() -> Self {
        Settings {
            color: ColorChoice::Auto,
            operator: String::new(),
            os_user: String::new(),
            prometheus_url: None,
            notify: Vec::new(),
            kubectl: None,
            state_dir: None,
            state: None,
            lease: DEFAULT_LEASE,
            ci: false,
            now: None,
            allowed_signers: None,
            signing_key: None,
        }
    }
}

#[derive(Debug)]
pub enum ConfigError {
    Unreadable(String),
    Invalid(Box<Source>, Vec<Diagnostic>),
}

impl ConfigError {
    /// The message for the operator, ready to print.
    pub fn render(&self, color: bool) -> String {
        match self {
            ConfigError::Unreadable(why) => format!("error: {why}\n"),
            ConfigError::Invalid(source, list) => {
                let mut out = String::new();
                for d in list {
                    out.push_str(&d.render(source, color));
                    out.push_str("\n\n");
                }
                let _ = writeln!(
                    out,
                    "error: the user config `{}` has {} problem{}; fix it, or point `ROLLOUT_CONFIG` at another file",
                    source.name,
                    list.len(),
                    if list.len() == 1 { "" } else { "s" }
                );
                out
            }
        }
    }
}

/// A variable of the environment, when it is set to something.
fn env(name: &str) -> Option<String> {
    std::env::var(name).ok().filter(|v| !v.is_empty())
}

/// The colour choice: the flag (or `ROLLOUT_COLOR`), else none when `NO_COLOR` is set, else
/// the user config's, else auto. `NO_COLOR` also turns `auto` off.
pub fn pick_color(flag: Option<ColorChoice>, user: Option<ColorChoice>) -> ColorChoice {
    let no_color = std::env::var_os("NO_COLOR").is_some_and(|v| !v.is_empty());
    let choice = match (flag, no_color) {
        (Some(flag), _) => flag,
        (None, true) => ColorChoice::Never,
        (None, false) => user.unwrap_or(ColorChoice::Auto),
    };
    if choice == ColorChoice::Auto && no_color {
        ColorChoice::Never
    } else {
        choice
    }
}

/// How long a lease lasts when nothing says otherwise.
pub const DEFAULT_LEASE: std::time::Duration = std::time::Duration::from_secs(30);

/// Where runs are kept: `--state` (a `PostgreSQL` URL, or `file:DIR`) wins over `--state-dir`'s
/// absence, then the user config's `state`. A `--state` that is neither is refused.
fn pick_state(
    flags: &Flags,
    user: Option<String>,
) -> Result<(Option<String>, Option<PathBuf>), ConfigError> {
    let given = flags.state.clone().filter(|s| !s.trim().is_empty());
    if let Some(text) = &given {
        if let Some(dir) = text.strip_prefix("file:") {
            return Ok((None, Some(PathBuf::from(dir))));
        }
        if !crate::state::pg::is_url(text) {
            return Err(ConfigError::Unreadable(format!(
                "`--state {}` is not a PostgreSQL URL (postgres://user@host:port/db): for a directory, use `--state-dir {}` or `--state file:{}`",
                crate::state::pg::redact(text),
                text,
                text
            )));
        }
        if flags.state_dir.is_some() {
            return Err(ConfigError::Unreadable(
                "give `--state` or `--state-dir`, not both (also check `ROLLOUT_STATE` and `ROLLOUT_STATE_DIR`)".into(),
            ));
        }
        return Ok((given, None));
    }
    if flags.state_dir.is_some() {
        return Ok((None, flags.state_dir.clone()));
    }
    Ok((user, None))
}

fn pick_lease(
    flag: Option<&String>,
    user: Option<String>,
) -> Result<std::time::Duration, ConfigError> {
    let Some(text) = flag.cloned().or(user) else {
        return Ok(DEFAULT_LEASE);
    };
    crate::runbook::duration::parse_duration(&text)
        .map(|d| d.0)
        .map_err(|why| ConfigError::Unreadable(format!("bad lease `{text}` (`--lease`, `ROLLOUT_LEASE` or `lease` in the user config): {why}")))
}

/// Reads the user config and the environment, and merges them with the command line.
pub fn resolve(flags: &Flags) -> Result<Settings, ConfigError> {
    let user = load()?;
    let os_user = crate::state::identity::os_user();
    let operator = env("ROLLOUT_OPERATOR")
        .filter(|name| !name.trim().is_empty())
        .or(user.operator)
        .unwrap_or_else(|| os_user.clone());
    let (state, state_dir) = pick_state(flags, user.state.clone())?;
    let lease = pick_lease(flags.lease.as_ref(), user.lease.clone())?;
    Ok(Settings {
        color: pick_color(flags.color, user.color),
        operator,
        os_user,
        prometheus_url: flags.prometheus_url.clone().or(user.prometheus_url),
        notify: user.notify,
        kubectl: std::env::var("KUBECTL").ok(),
        state_dir,
        state,
        lease,
        ci: std::env::var_os("CI").is_some_and(|v| !v.is_empty() && v != "false" && v != "0"),
        now: std::env::var("ROLLOUT_NOW").ok(),
        allowed_signers: env("ROLLOUT_ALLOWED_SIGNERS")
            .filter(|p| !p.trim().is_empty())
            .map(PathBuf::from)
            .or(user.allowed_signers),
        signing_key: env("ROLLOUT_SIGNING_KEY")
            .filter(|p| !p.trim().is_empty())
            .map(PathBuf::from)
            .or(user.signing_key),
    })
}

/// Where the user config lives: `$ROLLOUT_CONFIG`, else `$XDG_CONFIG_HOME/rollout/config.toml`,
/// else `~/.config/rollout/config.toml`. The flag says whether it was named explicitly (then it
/// must exist).
pub fn path() -> Option<(PathBuf, bool)> {
    let var = |name: &str| std::env::var_os(name).filter(|v| !v.is_empty());
    if let Some(p) = var("ROLLOUT_CONFIG") {
        return Some((PathBuf::from(p), true));
    }
    let base = var("XDG_CONFIG_HOME")
        .map(PathBuf::from)
        .filter(|p| p.is_absolute())
        .or_else(|| var("HOME").map(|h| PathBuf::from(h).join(".config")))?;
    Some((base.join("rollout").join("config.toml"), false))
}

/// Reads the user config; a missing file (not named by `ROLLOUT_CONFIG`) is an empty config.
pub fn load() -> Result<UserConfig, ConfigError> {
    let Some((path, explicit)) = path() else {
        return Ok(UserConfig::default());
    };
    let bytes = match read_regular(&path, MAX_RUNBOOK_BYTES) {
        Ok(Some(b)) => b,
        Ok(None) => {
            return Err(ConfigError::Unreadable(format!(
                "the user config `{}` is larger than {MAX_RUNBOOK_BYTES} bytes",
                path.display()
            )));
        }
        Err(OpenError::Io(e)) if e.kind() == std::io::ErrorKind::NotFound && !explicit => {
            return Ok(UserConfig::default());
        }
        Err(e) => {
            let reason = match e {
                OpenError::Special(kind) => special_reason(kind, "its configuration"),
                OpenError::Io(e) => e.to_string(),
            };
            return Err(ConfigError::Unreadable(format!(
                "cannot read the user config `{}`: {reason}",
                path.display()
            )));
        }
    };
    if bytes.iter().all(u8::is_ascii_whitespace) {
        return Ok(UserConfig::default());
    }
    let source = Source::from_bytes(&path, path.display().to_string(), bytes)
        .map_err(|e| ConfigError::Unreadable(format!("user config: {e}")))?;
    let (config, problems) = parse(&source.text);
    if problems.is_empty() {
        Ok(config)
    } else {
        Err(ConfigError::Invalid(Box::new(source), problems))
    }
}

/// Parses config text, collecting every problem.
pub fn parse(text: &str) -> (UserConfig, Vec<Diagnostic>) {
    let (root, errors) = DeTable::parse_recoverable(text);
    if !errors.is_empty() {
        let list = errors
            .iter()
            .take(1)
            .map(|e| {
                let first = e.message().lines().next().unwrap_or("syntax error").trim();
                Diagnostic::new(e.span().unwrap_or(0..0), format!("invalid TOML: {first}"))
                    .label("here")
            })
            .collect();
        return (UserConfig::default(), list);
    }
    let mut p = Problems::default();
    let config = read(&root, &mut p);
    let mut list = p.list;
    list.sort_by_key(|d| d.span.start);
    (config, list)
}

fn read(root: &Spanned<DeTable<'_>>, p: &mut Problems) -> UserConfig {
    let mut t = Table::new(root.get_ref(), root.span(), "the user config");
    let config = UserConfig {
        operator: non_empty(t.string("operator", p), "operator", p),
        prometheus_url: url(t.string("prometheus_url", p), p),
        color: color(t.string("color", p), p),
        state: state_url(t.string("state", p), p),
        lease: t.string("lease", p).map(Spanned::into_inner),
        notify: if t.has("notify") {
            t.tables("notify", p)
                .into_iter()
                .filter_map(|n| notify_target(n, p))
                .collect()
        } else {
            Vec::new()
        },
        allowed_signers: non_empty(t.string("allowed_signers", p), "allowed_signers", p)
            .map(|f| expand_home(&f)),
        signing_key: non_empty(t.string("signing_key", p), "signing_key", p)
            .map(|f| expand_home(&f)),
    };
    t.finish(p);
    config
}

/// A path of the user config: `~/` is the home directory.
fn expand_home(path: &str) -> PathBuf {
    match (path.strip_prefix("~/"), std::env::var_os("HOME")) {
        (Some(rest), Some(home)) => PathBuf::from(home).join(rest),
        _ => PathBuf::from(path),
    }
}

/// One `[[notify]]` of the user config: `url` (or `url_env`, the environment variable holding
/// it, for a URL that is a secret), `format`, `on`, as in a runbook.
fn notify_target(mut t: Table<'_, '_>, p: &mut Problems) -> Option<NotifyTarget> {
    let url = match (t.string("url", p), t.string("url_env", p)) {
        (Some(u), None) => Some(u.into_inner()),
        (None, Some(var)) => match std::env::var(var.get_ref()) {
            Ok(u) if !u.is_empty() => Some(u),
            _ => {
                p.push(
                    Diagnostic::new(
                        var.span(),
                        format!("the environment variable `{}` is not set", var.get_ref()),
                    )
                    .label("holds the webhook URL"),
                );
                None
            }
        },
        (Some(u), Some(_)) => {
            p.push(Diagnostic::new(u.span(), "give `url` or `url_env`, not both").label("here"));
            None
        }
        (None, None) => {
            p.push(
                Diagnostic::new(t.head_span(), "a `[[notify]]` needs `url` or `url_env`")
                    .label("no URL"),
            );
            None
        }
    };
    let format = match t.string("format", p) {
        None => NotifyFormat::Json,
        Some(f) => match f.get_ref().as_str() {
            "json" => NotifyFormat::Json,
            "slack" => NotifyFormat::Slack,
            other => {
                p.push(
                    Diagnostic::new(f.span(), format!("`{other}` is not a valid `format`"))
                        .label("expected one of: json, slack"),
                );
                NotifyFormat::Json
            }
        },
    };
    let on = match t.string_list("on", p) {
        None => NotifyOn::ALL.to_vec(),
        Some(list) => list
            .iter()
            .filter_map(|n| {
                let parsed = NotifyOn::parse(n.get_ref());
                if parsed.is_none() {
                    p.push(
                        Diagnostic::new(
                            n.span(),
                            format!("`{}` is not something to notify about", n.get_ref()),
                        )
                        .label(format!("expected one of: {}", NotifyOn::NAMES.join(", "))),
                    );
                }
                parsed
            })
            .collect(),
    };
    t.finish(p);
    Some(NotifyTarget {
        url: url?,
        format,
        on,
    })
}

fn non_empty(s: Option<Spanned<String>>, key: &str, p: &mut Problems) -> Option<String> {
    let s = s?;
    if s.get_ref().trim().is_empty() {
        p.push(Diagnostic::new(s.span(), format!("`{key}` is empty")).label("empty"));
        return None;
    }
    Some(s.into_inner())
}

fn url(s: Option<Spanned<String>>, p: &mut Problems) -> Option<String> {
    let s = s?;
    let v = s.get_ref().trim();
    if v.starts_with("http://") || v.starts_with("https://") {
        return Some(v.to_string());
    }
    p.push(
        Diagnostic::new(
            s.span(),
            "`prometheus_url` must start with http:// or https://",
        )
        .label("not an HTTP URL"),
    );
    None
}

fn state_url(s: Option<Spanned<String>>, p: &mut Problems) -> Option<String> {
    let s = s?;
    if crate::state::pg::is_url(s.get_ref()) {
        return Some(s.into_inner());
    }
    p.push(
        Diagnostic::new(
            s.span(),
            "`state` must be a PostgreSQL URL (postgres://user@host:port/db)",
        )
        .label("not a postgres:// URL"),
    );
    None
}

fn color(s: Option<Spanned<String>>, p: &mut Problems) -> Option<ColorChoice> {
    let s = s?;
    match s.get_ref().as_str() {
        "auto" => Some(ColorChoice::Auto),
        "always" => Some(ColorChoice::Always),
        "never" => Some(ColorChoice::Never),
        other => {
            p.push(
                Diagnostic::new(s.span(), format!("`{other}` is not a valid `color`"))
                    .label("expected one of: auto, always, never"),
            );
            None
        }
    }
}
