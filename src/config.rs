//! The operator's own settings, from `config.toml` in their config directory, merged with flags
//! and environment variables into the [`Settings`] every command uses. Resolved once, before any
//! work, so that a broken config file stops rollout with a located error instead of being half
//! applied.
//!
//! Precedence, for each setting: command-line flag > environment variable > user config >
//! built-in default. The Prometheus URL is a fallback only: a URL the runbook names (on the
//! step, the abort criterion or in `[defaults]`) always wins, because the runbook's author knows
//! which Prometheus measures the service.
//!
//! Adding a key: a field on [`UserConfig`], one line in [`read`], a line in the docs.

use std::fmt::Write;
use std::path::PathBuf;
use std::sync::OnceLock;

use toml::Spanned;
use toml::de::DeTable;

use crate::cli::{Cli, ColorChoice};
use crate::runbook::reader::{Problems, Table};
use crate::runbook::source::{MAX_RUNBOOK_BYTES, OpenError, read_regular, special_reason};
use crate::runbook::{Diagnostic, Source};

/// What the user config file says; every key optional.
#[derive(Debug, Default, Clone)]
pub struct UserConfig {
    /// The name recorded as the operator of runs and shown at gates.
    pub operator: Option<String>,
    /// Prometheus to ask when the runbook names none.
    pub prometheus_url: Option<String>,
    pub color: Option<ColorChoice>,
    /// Webhooks told about every run, in addition to the runbook's own `[[notify]]`.
    pub notify: Vec<crate::ui::notify::Target>,
}

/// The settings in force for this process.
#[derive(Debug, Clone)]
pub struct Settings {
    pub color: ColorChoice,
    /// From the user config (`ROLLOUT_OPERATOR` is read where the operator is needed).
    pub operator: Option<String>,
    pub prometheus_url: Option<String>,
    pub notify: Vec<crate::ui::notify::Target>,
}

static DEFAULT: Settings = Settings {
    color: ColorChoice::Auto,
    operator: None,
    prometheus_url: None,
    notify: Vec::new(),
};

static ACTIVE: OnceLock<Settings> = OnceLock::new();

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

impl Settings {
    /// Reads the user config and merges it with the command line.
    pub fn resolve(cli: &Cli) -> Result<Settings, ConfigError> {
        let user = load()?;
        let no_color = std::env::var_os("NO_COLOR").is_some_and(|v| !v.is_empty());
        let color = match (cli.color, no_color) {
            (Some(flag), _) => flag,
            (None, true) => ColorChoice::Never,
            (None, false) => user.color.unwrap_or(ColorChoice::Auto),
        };
        Ok(Settings {
            color,
            operator: user.operator,
            prometheus_url: cli.prometheus_url.clone().or(user.prometheus_url),
            notify: user.notify,
        })
    }

    /// Makes these the settings [`active`] returns. The first call wins.
    pub fn install(self) {
        let _ = ACTIVE.set(self);
    }
}

/// The settings in force: those installed by `main`, else built-in defaults.
pub fn active() -> &'static Settings {
    ACTIVE.get().unwrap_or(&DEFAULT)
}

/// The Prometheus URL to use when the runbook names none.
pub fn fallback_prometheus() -> Option<String> {
    active().prometheus_url.clone()
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
        notify: if t.has("notify") {
            t.tables("notify", p)
                .into_iter()
                .filter_map(|n| notify_target(n, p))
                .collect()
        } else {
            Vec::new()
        },
    };
    t.finish(p);
    config
}

/// One `[[notify]]` of the user config: `url` (or `url_env`, the environment variable holding
/// it, for a URL that is a secret), `format`, `on`, as in a runbook.
fn notify_target(mut t: Table<'_, '_>, p: &mut Problems) -> Option<crate::ui::notify::Target> {
    use crate::runbook::model::{NotifyFormat, NotifyOn};
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
    Some(crate::ui::notify::Target {
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
