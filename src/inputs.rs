//! Variable values for one invocation: `--var`, `--vars-file`, `ROLLOUT_VAR_*` and defaults,
//! checked against each variable's type and allowed values. Secrets are never read here:
//! `plan` masks them, and `run` reads them from their source at the moment it needs them.

use std::path::PathBuf;

use crate::runbook::diagnostic::suggest;
use crate::runbook::duration::parse_duration;
use crate::runbook::model::{Runbook, SecretSource, VarDecl, VarType, VarValue};
use crate::runbook::source::{MAX_RUNBOOK_BYTES, OpenError, read_regular, special_reason};

/// Where a value came from, shown in plans so an operator can tell why a value is what it is.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "snake_case", tag = "kind", content = "detail")]
pub enum Origin {
    Flag,
    File(PathBuf),
    Env(String),
    Default,
    Secret(SecretSource),
    /// The value the run started with, read back from its journal on resume.
    Journal,
}

impl std::fmt::Display for Origin {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Origin::Flag => f.write_str("--var"),
            Origin::File(p) => write!(f, "--vars-file {}", p.display()),
            Origin::Env(name) => write!(f, "${name}"),
            Origin::Default => f.write_str("default"),
            Origin::Journal => f.write_str("as the run started"),
            Origin::Secret(SecretSource::Env(n)) => write!(f, "secret from ${n}"),
            Origin::Secret(SecretSource::File(p)) => write!(f, "secret from file {p}"),
            Origin::Secret(SecretSource::Command(_)) => f.write_str("secret from a command"),
        }
    }
}

#[derive(Debug, Clone)]
pub struct Resolved {
    pub name: String,
    pub ty: VarType,
    /// `None` for secrets, whose values are never held by a plan.
    pub value: Option<VarValue>,
    pub origin: Origin,
}

#[derive(Debug, Default, Clone)]
pub struct VarInputs {
    /// `--var name=value`, in the order given; a later one wins.
    pub assignments: Vec<String>,
    /// `--vars-file FILE`, in the order given; a later file wins.
    pub files: Vec<PathBuf>,
}

pub fn env_name(var: &str) -> String {
    format!("ROLLOUT_VAR_{}", var.to_ascii_uppercase())
}

/// Resolves every variable. Precedence: `--var` > `--vars-file` > `ROLLOUT_VAR_<NAME>` > default.
pub fn resolve(
    rb: &Runbook,
    inputs: &VarInputs,
    env: &dyn Fn(&str) -> Option<String>,
) -> Result<Vec<Resolved>, Vec<String>> {
    let mut errors = Vec::new();
    let names: Vec<&str> = rb.vars.iter().map(|v| v.name.get_ref().as_str()).collect();
    let mut given: Vec<(String, String, Origin)> = Vec::new();
    for path in &inputs.files {
        match read_vars_file(path) {
            Ok(pairs) => given.extend(
                pairs
                    .into_iter()
                    .map(|(k, v)| (k, v, Origin::File(path.clone()))),
            ),
            Err(e) => errors.push(e),
        }
    }
    for a in &inputs.assignments {
        match a.split_once('=') {
            Some((k, v)) if !k.trim().is_empty() => {
                given.push((k.trim().to_string(), v.to_string(), Origin::Flag));
            }
            _ => errors.push(format!("`--var {a}` is not of the form NAME=VALUE")),
        }
    }
    for (name, _, origin) in &given {
        if !names.contains(&name.as_str()) {
            let hint = suggest(name, names.iter().copied()).map_or_else(
                || {
                    format!(
                        "the runbook declares: {}",
                        if names.is_empty() {
                            "no variables".into()
                        } else {
                            names.join(", ")
                        }
                    )
                },
                |c| format!("did you mean `{c}`?"),
            );
            errors.push(format!("unknown variable `{name}` (from {origin}): {hint}"));
        }
    }
    let mut out = Vec::new();
    for decl in &rb.vars {
        let name = decl.name.get_ref();
        if let Some(source) = &decl.secret {
            if let Some((_, _, origin)) = given.iter().find(|(k, _, _)| k == name) {
                errors.push(format!(
                    "`{name}` is a secret and cannot be set with {origin}: it is read from its source ({})",
                    Origin::Secret(source.clone())
                ));
            }
            out.push(Resolved {
                name: name.clone(),
                ty: decl.ty,
                value: None,
                origin: Origin::Secret(source.clone()),
            });
            continue;
        }
        let picked = given
            .iter()
            .rev()
            .find(|(k, _, o)| k == name && *o == Origin::Flag)
            .or_else(|| given.iter().rev().find(|(k, _, _)| k == name))
            .map(|(_, v, o)| (v.clone(), o.clone()))
            .or_else(|| env(&env_name(name)).map(|v| (v, Origin::Env(env_name(name)))));
        let value = match picked {
            Some((text, origin)) => match typed(decl, &text) {
                Ok(v) => Some((v, origin)),
                Err(why) => {
                    errors.push(format!("bad value for `{name}` (from {origin}): {why}"));
                    None
                }
            },
            None => decl.default.clone().map(|v| (v, Origin::Default)),
        };
        match value {
            Some((v, origin)) => out.push(Resolved { name: name.clone(), ty: decl.ty, value: Some(v), origin }),
            None if errors.iter().any(|e| e.contains(&format!("`{name}`"))) => {}
            None => errors.push(format!(
                "variable `{name}` is required{}: set it with `--var {name}=VALUE`, in a `--vars-file`, or with {}",
                decl.description.as_ref().map(|d| format!(" ({d})")).unwrap_or_default(),
                env_name(name)
            )),
        }
    }
    if errors.is_empty() {
        Ok(out)
    } else {
        Err(errors)
    }
}

fn typed(decl: &VarDecl, text: &str) -> Result<VarValue, String> {
    if text.contains('\0') {
        return Err("the value contains a NUL byte, which no command can receive".into());
    }
    let value = match decl.ty {
        VarType::String => VarValue::String(text.to_string()),
        VarType::Duration => {
            parse_duration(text).map_err(|why| format!("`{text}` is not a duration: {why}"))?;
            VarValue::String(text.to_string())
        }
        VarType::Integer => VarValue::Integer(
            text.trim()
                .parse()
                .map_err(|_| format!("`{text}` is not an integer"))?,
        ),
        VarType::Float => match text.trim().replace('_', "").parse::<f64>() {
            Ok(x) if x.is_finite() => VarValue::Float(x),
            _ => return Err(format!("`{text}` is not a number")),
        },
        VarType::Boolean => match text.trim() {
            "true" => VarValue::Boolean(true),
            "false" => VarValue::Boolean(false),
            _ => return Err(format!("`{text}` is not `true` or `false`")),
        },
    };
    if !decl.allowed.is_empty() && !decl.allowed.contains(&value) {
        let allowed: Vec<String> = decl.allowed.iter().map(|v| format!("`{v}`")).collect();
        let hint = suggest(
            text,
            decl.allowed.iter().filter_map(|v| match v {
                VarValue::String(s) => Some(s.as_str()),
                _ => None,
            }),
        )
        .map(|c| format!("; did you mean `{c}`?"))
        .unwrap_or_default();
        return Err(format!(
            "`{text}` is not allowed (allowed: {}){hint}",
            allowed.join(", ")
        ));
    }
    Ok(value)
}

fn read_vars_file(path: &std::path::Path) -> Result<Vec<(String, String)>, String> {
    let cannot = |reason: String| format!("cannot read vars file `{}`: {reason}", path.display());
    let bytes = match read_regular(path, MAX_RUNBOOK_BYTES) {
        Ok(Some(bytes)) => bytes,
        Ok(None) => {
            return Err(cannot(format!(
                "it is larger than {MAX_RUNBOOK_BYTES} bytes"
            )));
        }
        Err(OpenError::Special(kind)) => {
            return Err(cannot(format!(
                "{}; write the values to a file, or give them with `--var`",
                special_reason(kind, "variable values")
            )));
        }
        Err(OpenError::Io(e)) => return Err(cannot(e.to_string())),
    };
    let text = String::from_utf8(bytes).map_err(|_| cannot("it is not UTF-8 text".into()))?;
    let table: toml::Table = toml::from_str(&text).map_err(|e| {
        format!(
            "vars file `{}` is not valid TOML: {}",
            path.display(),
            e.message()
        )
    })?;
    table
        .into_iter()
        .map(|(k, v)| {
            let text = match v {
                toml::Value::String(s) => s,
                toml::Value::Integer(i) => i.to_string(),
                toml::Value::Float(x) => x.to_string(),
                toml::Value::Boolean(b) => b.to_string(),
                other => {
                    return Err(format!(
                        "vars file `{}`: `{k}` must be a string, number or boolean, found {}",
                        path.display(),
                        other.type_str()
                    ));
                }
            };
            Ok((k, text))
        })
        .collect()
}

/// Reads a secret from its source, for a run (`env` looks up the environment's variables).
/// The value is never printed or stored.
pub fn read_secret(
    name: &str,
    source: &SecretSource,
    base_dir: &std::path::Path,
    env: &dyn Fn(&str) -> Option<String>,
) -> Result<String, String> {
    let value = match source {
        SecretSource::Env(var) => env(var).ok_or_else(|| {
            format!("secret `{name}`: the environment variable `{var}` is not set")
        })?,
        SecretSource::File(path) => {
            let path = base_dir.join(path);
            let bytes = read_secret_file(&path)
                .map_err(|why| format!("secret `{name}`: cannot read {}: {why}", path.display()))?;
            String::from_utf8(bytes)
                .map_err(|_| format!("secret `{name}`: {} is not UTF-8 text", path.display()))?
                .trim_end_matches(['\n', '\r'])
                .to_string()
        }
        SecretSource::Command(cmd) => {
            let out = std::process::Command::new("sh")
                .args(["-c", cmd])
                .current_dir(base_dir)
                .stdin(std::process::Stdio::null())
                .stderr(std::process::Stdio::inherit())
                .output()
                .map_err(|e| format!("secret `{name}`: cannot run its command: {e}"))?;
            if !out.status.success() {
                return Err(format!(
                    "secret `{name}`: its command failed ({})",
                    out.status
                ));
            }
            String::from_utf8(out.stdout)
                .map_err(|_| {
                    format!("secret `{name}`: its command printed something that is not UTF-8")
                })?
                .trim_end_matches(['\n', '\r'])
                .to_string()
        }
    };
    if value.contains('\0') {
        return Err(format!(
            "secret `{name}` contains a NUL byte, which no command can receive"
        ));
    }
    Ok(value)
}

/// How long a secret `file` that is a FIFO (as `sops exec-file` makes) or a pipe may take to be
/// written: rollout waits for a writer that long, never for ever.
pub const SECRET_PIPE_WAIT: std::time::Duration = std::time::Duration::from_secs(10);

/// A secret file's bytes: a regular file, or a FIFO or pipe written within [`SECRET_PIPE_WAIT`].
/// Devices, sockets and directories are refused before they are opened.
fn read_secret_file(path: &std::path::Path) -> Result<Vec<u8>, String> {
    use std::io::Read;
    use std::os::unix::fs::FileTypeExt;
    let too_large = || format!("it is larger than {MAX_RUNBOOK_BYTES} bytes");
    let is_pipe = std::fs::metadata(path).is_ok_and(|m| m.file_type().is_fifo());
    if !is_pipe {
        return match read_regular(path, MAX_RUNBOOK_BYTES) {
            Ok(Some(bytes)) => Ok(bytes),
            Ok(None) => Err(too_large()),
            Err(OpenError::Special(kind)) => Err(special_reason(kind, "a secret").replace(
                "only from a regular file",
                "only from a regular file or a FIFO",
            )),
            Err(OpenError::Io(e)) => Err(e.kind().to_string()),
        };
    }
    // Opening a FIFO waits for its writer, and reading it for the writer to finish: both on a
    // thread of their own, given up on after the wait (the process ends soon after, as a run
    // cannot start without its secrets).
    let (send, receive) = std::sync::mpsc::channel();
    let owned = path.to_path_buf();
    std::thread::spawn(move || {
        let read = std::fs::File::open(&owned).and_then(|file| {
            let mut bytes = Vec::new();
            file.take(MAX_RUNBOOK_BYTES + 1).read_to_end(&mut bytes)?;
            Ok(bytes)
        });
        let _ = send.send(read);
    });
    match receive.recv_timeout(SECRET_PIPE_WAIT) {
        Ok(Ok(bytes)) if bytes.len() as u64 > MAX_RUNBOOK_BYTES => Err(too_large()),
        Ok(Ok(bytes)) => Ok(bytes),
        Ok(Err(e)) => Err(e.kind().to_string()),
        Err(_) => Err(format!(
            "it is a FIFO (named pipe) and nothing wrote it within {}s; start what writes it (e.g. `sops exec-file`) before rollout, or use a regular file",
            SECRET_PIPE_WAIT.as_secs()
        )),
    }
}
