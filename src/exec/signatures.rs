//! Whether a signed approval counts at a sign-off: its signature verifies (OpenSSH's
//! `ssh-keygen -Y`, see [`crate::sshsig`]) for a principal of the allowed-signers file who may
//! sign for the role, it names this run, this gate and the phase and runbook this run would
//! execute now, it is within the sign-off's `valid_for`, and it is not the operator's own key.
//! Each refusal is one sentence naming the file it came from.
//!
//! Where approvals come from is the store's business ([`crate::state::Journal::approvals`]:
//! files in the run's directory today, a shared database later) plus `--signoff-file`.

use std::path::{Path, PathBuf};
use std::time::{Duration, SystemTime};

use crate::config::Settings;
use crate::exec::gates::Verified;
use crate::plan::RoleView;
use crate::runbook::Loaded;
use crate::sshsig;
use crate::state::approval::{Delivered, Request, Signed};

/// How a runbook takes signed approvals.
#[derive(Debug, Clone, Default)]
pub struct Policy {
    /// Typed names are not enough.
    pub required: bool,
    /// The allowed-signers file, when the runbook or the user config names one.
    pub allowed_signers: Option<PathBuf>,
}

impl Policy {
    /// Whether sign-offs of this runbook take signed approvals at all.
    pub fn in_play(&self) -> bool {
        self.required || self.allowed_signers.is_some()
    }
}

/// The runbook's policy: `[runbook] allowed_signers` (relative to the runbook) or the user's
/// `allowed_signers`, and whether signatures are required. A runbook that requires signatures
/// and has a sign-off needs a readable allowed-signers file: otherwise the reason, to refuse
/// the run before it starts.
pub fn policy(loaded: &Loaded, settings: &Settings) -> Result<Policy, String> {
    let meta = &loaded.runbook.meta;
    let allowed_signers = match &meta.allowed_signers {
        Some(file) => Some(crate::plan::runbook_dir(&loaded.source.path).join(file.get_ref())),
        None => settings.allowed_signers.clone(),
    };
    let policy = Policy {
        required: meta.signatures_required(),
        allowed_signers,
    };
    let has_signoff = loaded.runbook.phases.iter().any(|p| {
        p.steps
            .iter()
            .chain(&p.gate)
            .any(|s| matches!(s.kind, crate::runbook::model::StepKind::Signoff(_)))
    });
    if !has_signoff {
        return Ok(policy);
    }
    match &policy.allowed_signers {
        Some(path) if !path.is_file() => Err(format!(
            "the allowed-signers file `{}` does not exist or is not a file; sign-offs of `{}` are verified against it",
            path.display(),
            loaded.source.name
        )),
        None if policy.required => Err(format!(
            "`{}` requires signed sign-offs ({}) but names no allowed-signers file: add `allowed_signers = \"FILE\"` under `[runbook]` (OpenSSH's format, as git's `gpg.ssh.allowedSignersFile`), or `allowed_signers` to your user config",
            loaded.source.name,
            if meta.signatures.is_some() {
                "`signatures = \"required\"`"
            } else {
                "the default for `risk = \"high\"`; `signatures = \"optional\"` allows typed names"
            }
        )),
        _ => Ok(policy),
    }
}

pub use crate::state::record::OperatorKey;

/// The operator's keys, from the key file of the settings and the keys the operator's ssh-agent
/// holds: a sign-off that excludes the operator refuses approvals made with any of them, and
/// the principals they belong to.
pub fn operator_keys(settings: &Settings, allowed_signers: &Path) -> Vec<OperatorKey> {
    let mut lines: Vec<String> = sshsig::agent_keys().unwrap_or_default();
    if let Some(file) = &settings.signing_key {
        let public = if file.extension().is_some_and(|e| e == "pub") {
            file.clone()
        } else {
            let mut p = file.clone().into_os_string();
            p.push(".pub");
            PathBuf::from(p)
        };
        if let Ok(text) = std::fs::read_to_string(&public) {
            lines.extend(text.lines().map(str::to_string));
        }
    }
    let allowed = std::fs::read_to_string(allowed_signers).unwrap_or_default();
    lines
        .iter()
        .filter_map(|line| {
            Some(OperatorKey {
                fingerprint: sshsig::fingerprint_of_line(line)?,
                principals: sshsig::principals_of_key(&allowed, line),
            })
        })
        .collect()
}

/// What an approval is checked against at the gate.
pub struct AtGate<'a> {
    pub run_id: &'a str,
    pub runbook_digest: &'a str,
    pub gate: &'a str,
    pub phase: &'a str,
    pub phase_digest: &'a str,
    pub roles: &'a [RoleView],
    pub valid_for: Option<Duration>,
    pub now: SystemTime,
    pub allowed_signers: &'a Path,
    pub exclude_operator: bool,
    pub operator_keys: &'a [OperatorKey],
}

/// An approval, judged.
#[derive(Debug)]
pub enum Judged {
    Counts(Verified),
    /// For another gate of this run: it counts there.
    OtherGate,
    Refused(String),
}

/// Judges one approval at a gate.
pub fn judge(at: &AtGate<'_>, d: &Delivered) -> Judged {
    match check(at, d) {
        Ok(Some(v)) => Judged::Counts(v),
        Ok(None) => Judged::OtherGate,
        Err(why) => Judged::Refused(format!("`{}`: {why}", d.from)),
    }
}

fn check(at: &AtGate<'_>, d: &Delivered) -> Result<Option<Verified>, String> {
    let request = Request::parse(&d.message).map_err(|e| format!("not an approval: {e}"))?;
    let sig = sshsig::parse(&d.signature)?;
    if sig.namespace != sshsig::NAMESPACE {
        return Err(format!(
            "it is signed in the namespace `{}`, not `{}`: a signature made for something else (sign with `-n {}`)",
            sig.namespace.escape_default(),
            sshsig::NAMESPACE,
            sshsig::NAMESPACE
        ));
    }
    if request.run != at.run_id {
        return Err(format!(
            "it approves run `{}`, not this run `{}`: an approval cannot be used for another run",
            request.run, at.run_id
        ));
    }
    if request.gate != at.gate {
        return Ok(None);
    }
    if request.runbook_digest != at.runbook_digest {
        return Err(format!(
            "it was signed for the runbook {}, and this run executes {}: the runbook changed after it was signed; sign again",
            request.runbook_digest, at.runbook_digest
        ));
    }
    if request.phase != at.phase || request.phase_digest != at.phase_digest {
        return Err(format!(
            "it was signed for phase `{}` as {}, and the run would now execute {}: the runbook, the variables or a captured value changed since it was signed; sign again",
            request.phase, request.phase_digest, at.phase_digest
        ));
    }
    let signed_at = humantime::parse_rfc3339(&request.time)
        .map_err(|_| format!("its time `{}` is not an RFC 3339 time", request.time))?;
    if let Some(valid_for) = at.valid_for {
        let age = at.now.duration_since(signed_at).unwrap_or_default();
        if age > valid_for {
            return Err(format!(
                "it was signed at {} and has expired: approvals of `{}` count for {} (`valid_for`); sign again",
                request.time,
                at.gate,
                humantime::format_duration(valid_for)
            ));
        }
    }
    if signed_at
        .duration_since(at.now)
        .is_ok_and(|ahead| ahead > Duration::from_secs(300))
    {
        return Err(format!(
            "it is dated {}, in the future: the signer's clock is wrong, or the text was altered",
            request.time
        ));
    }
    let Some(role) = at.roles.iter().find(|r| r.role == request.role) else {
        let roles: Vec<String> = at.roles.iter().map(|r| format!("`{}`", r.role)).collect();
        return Err(format!(
            "it signs as `{}`, which is not a role of sign-off `{}` (roles: {})",
            request.role,
            at.gate,
            roles.join(", ")
        ));
    };
    let allowed = at.allowed_signers.display().to_string();
    let principals = sshsig::principals(at.allowed_signers, &sig.armored)?;
    if principals.is_empty() {
        return Err(format!(
            "it is signed with the key {} ({}), which the allowed-signers file `{allowed}` lists for nobody",
            sig.fingerprint, sig.key_type
        ));
    }
    let same = |a: &str, b: &str| a.eq_ignore_ascii_case(b);
    let principal = match &role.approvers {
        Some(list) => principals
            .iter()
            .find(|p| list.iter().any(|a| same(a, p)))
            .ok_or_else(|| {
                format!(
                    "it is signed by {} (key {}), who may not sign as `{}` (allowed: {})",
                    principals.join(", "),
                    sig.fingerprint,
                    role.role,
                    list.join(", ")
                )
            })?,
        None => &principals[0],
    };
    sshsig::verify(
        at.allowed_signers,
        principal,
        sshsig::NAMESPACE,
        d.message.as_bytes(),
        &sig.armored,
    )
    .map_err(|e| {
        format!(
            "its signature does not verify for `{principal}` (key {}): the text was altered after it was signed, or another key signed it ({e})",
            sig.fingerprint
        )
    })?;
    if at.exclude_operator {
        if let Some(k) = at.operator_keys.iter().find(|k| {
            k.fingerprint == sig.fingerprint || k.principals.iter().any(|p| same(p, principal))
        }) {
            return Err(format!(
                "it is signed by `{principal}` with key {}, and the operator of this run holds {} (key {}): the operator cannot approve their own run (separation of duties)",
                sig.fingerprint,
                if k.fingerprint == sig.fingerprint {
                    "that key".to_string()
                } else {
                    format!("a key of `{principal}`")
                },
                k.fingerprint
            ));
        }
    }
    Ok(Some(Verified {
        principal: principal.clone(),
        role: request.role.clone(),
        signed: Signed {
            principal: principal.clone(),
            fingerprint: sig.fingerprint,
            key: sig.public_key,
            message: d.message.clone(),
            signature: sig.armored,
            allowed_signers: allowed,
        },
    }))
}
