//! What `rollout audit verify` (and the report's audit section) concludes about a run's log: its
//! [`audit`](super::audit) check, the seal a published digest names, what came after it session
//! by session, and one sentence saying so. Plain data, for the text and JSON views above.

use std::fmt::Write;

use serde::Serialize;

use super::audit::Verified;
use super::record::{Entry, Record};

/// What `rollout audit verify` found, for text and JSON.
#[derive(Debug, Serialize)]
pub struct VerifyReport {
    pub file: String,
    pub ok: bool,
    pub records: usize,
    /// The first bad record: line, kind (`edited`, `deleted`, `inserted`, `duplicated`,
    /// `reordered`, `damaged`, `appended`, `misnamed`) and what is wrong.
    pub fault: Option<FaultView>,
    /// Bytes of a record cut short after the last complete one.
    pub truncated_bytes: Option<usize>,
    pub sealed: bool,
    /// Some process is writing the log right now (the run is in progress).
    pub in_progress: bool,
    /// The hash of the last record: the digest to publish when the log is sealed.
    pub final_digest: String,
    /// With `--digest`: whether a seal of the log carries it.
    pub digest_matches: Option<bool>,
    /// With `--digest`: what follows the published seal, session by session.
    pub after_digest: Option<AfterDigest>,
    /// Every signed approval of the log, its signature checked again.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub signatures: Vec<SignatureCheck>,
    pub message: String,
}

/// A signed approval of the log, checked again: its signature (`ssh-keygen -Y verify` against
/// the allowed-signers file it was verified with, or, when that file is not at hand, against
/// the key it carries, with a warning), its key against the one recorded, and its text
/// against the record (run, gate, role, digest).
#[derive(Debug, Clone, Serialize)]
pub struct SignatureCheck {
    /// The record number of the `gate_answered` record.
    pub record: u64,
    pub step: String,
    pub role: String,
    pub principal: String,
    pub fingerprint: String,
    /// The signature verifies and matches the record.
    pub verified: bool,
    /// `allowed_signers` (the principal's key in the file) or `recorded key` (only that the
    /// key it carries signed the text).
    pub against: &'static str,
    /// What is wrong, or the warning about the recorded key.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub problem: Option<String>,
}

/// Checks every signed approval of `records` again.
pub fn signatures(records: &[Record]) -> Vec<SignatureCheck> {
    let mut out = Vec::new();
    for r in records {
        let Entry::GateAnswered {
            step,
            answers,
            digest,
            ..
        } = &r.event
        else {
            continue;
        };
        for a in answers {
            let Some(signed) = &a.signed else {
                continue;
            };
            let (against, problem) = match signature_problem(r, step, &a.subject, digest.as_deref(), signed) {
                Ok(against) => (
                    against,
                    (against == "recorded key").then(|| format!(
                        "the allowed-signers file `{}` is not at hand: only checked that the recorded key signed the text, not that it is `{}`'s",
                        signed.allowed_signers, signed.principal
                    )),
                ),
                Err((against, why)) => (against, Some(why)),
            };
            out.push(SignatureCheck {
                record: r.seq,
                step: step.clone(),
                role: a.subject.clone(),
                principal: signed.principal.clone(),
                fingerprint: signed.fingerprint.clone(),
                verified: problem
                    .as_deref()
                    .is_none_or(|p| p.starts_with("the allowed-signers file")),
                against,
                problem,
            });
        }
    }
    out
}

type Against = &'static str;

fn signature_problem(
    r: &Record,
    step: &str,
    role: &str,
    digest: Option<&str>,
    signed: &super::approval::Signed,
) -> Result<Against, (Against, String)> {
    use crate::sshsig;
    let allowed = std::path::Path::new(&signed.allowed_signers);
    let against = if allowed.is_file() {
        "allowed_signers"
    } else {
        "recorded key"
    };
    let fail = |why: String| (against, why);
    let sig =
        sshsig::parse(&signed.signature).map_err(|e| fail(format!("forged or damaged: {e}")))?;
    if sig.fingerprint != signed.fingerprint || sig.public_key != signed.key {
        return Err(fail(format!(
            "misattributed: the record names key {}, and the signature was made with {}",
            signed.fingerprint, sig.fingerprint
        )));
    }
    let request = super::approval::Request::parse(&signed.message)
        .map_err(|e| fail(format!("altered: the signed text {e}")))?;
    let mut differs = Vec::new();
    if request.run != r.run {
        differs.push(format!("run `{}` (the record: `{}`)", request.run, r.run));
    }
    if request.gate != step {
        differs.push(format!("gate `{}` (the record: `{step}`)", request.gate));
    }
    if request.role != role {
        differs.push(format!("role `{}` (the record: `{role}`)", request.role));
    }
    if Some(request.phase_digest.as_str()) != digest {
        differs.push(format!(
            "phase {} (the record: {})",
            request.phase_digest,
            digest.unwrap_or("none")
        ));
    }
    if !differs.is_empty() {
        return Err(fail(format!(
            "altered or misattributed: the signed text names {}",
            differs.join(", ")
        )));
    }
    let checked = if allowed.is_file() {
        sshsig::verify(
            allowed,
            &signed.principal,
            sshsig::NAMESPACE,
            signed.message.as_bytes(),
            &sig.armored,
        )
    } else {
        sshsig::check_novalidate(sshsig::NAMESPACE, signed.message.as_bytes(), &sig.armored)
    };
    checked.map_err(|e| {
        fail(format!(
            "the signature does not verify for `{}` (key {}): forged, altered or misattributed ({e})",
            signed.principal, signed.fingerprint
        ))
    })?;
    Ok(against)
}

#[derive(Debug, Serialize)]
pub struct FaultView {
    pub line: usize,
    pub kind: &'static str,
    pub message: String,
}

/// The records after a published digest.
#[derive(Debug, Serialize)]
pub struct AfterDigest {
    /// The record number of the seal that carries the published digest.
    pub seal_record: u64,
    /// How many records follow it.
    pub records: usize,
    pub sessions: Vec<SessionView>,
}

/// One session of a log: from the record that began it to the one before the next session.
#[derive(Debug, Serialize)]
pub struct SessionView {
    pub first_record: u64,
    pub last_record: u64,
    /// The type of the record that began it: `run_resumed` or `seal_recovered`.
    pub began_with: String,
    pub operator: String,
    pub os_user: String,
    pub host: String,
    pub pid: u32,
    /// When it began and when its last record was written.
    pub at: String,
    pub until: String,
    /// The hash of the seal that closed it; `null` when it ended without one.
    pub sealed: Option<String>,
}

/// How to check a log, besides its bytes.
#[derive(Debug, Default)]
pub struct Check<'a> {
    /// Some process is writing the log right now.
    pub in_progress: bool,
    /// `--digest`: a digest published earlier, which a seal of the log must carry.
    pub published: Option<&'a str>,
    /// `--strict`: nothing may follow the published digest.
    pub strict: bool,
    /// The command that resumes the run (and so seals its log), for the advice on a log that
    /// ends unsealed; `None` when the run is not known.
    pub resume_with: Option<String>,
}

pub fn verify_report(
    file: &str,
    v: &Verified,
    in_progress: bool,
    published: Option<&str>,
) -> VerifyReport {
    check(
        file,
        v,
        &Check {
            in_progress,
            published,
            ..Check::default()
        },
    )
}

/// The sessions of the records after `seal` (its record number).
fn sessions_after(records: &[Record], seal: u64) -> Vec<SessionView> {
    let mut out: Vec<SessionView> = Vec::new();
    for r in records.iter().filter(|r| r.seq > seal) {
        let begins = r.event.opens_session().is_some();
        if begins || out.is_empty() {
            let began_with = serde_json::to_value(&r.event)
                .ok()
                .and_then(|v| v.get("type").and_then(|t| t.as_str()).map(String::from))
                .unwrap_or_default();
            out.push(SessionView {
                first_record: r.seq,
                last_record: r.seq,
                began_with,
                operator: r.who.operator.clone(),
                os_user: r.who.os_user.clone(),
                host: r.who.host.clone(),
                pid: r.who.pid,
                at: r.at.clone(),
                until: r.at.clone(),
                sealed: None,
            });
        }
        if let Some(last) = out.last_mut() {
            last.last_record = r.seq;
            last.until.clone_from(&r.at);
            last.sealed = matches!(r.event, Entry::Sealed { .. }).then(|| r.hash.clone());
        }
    }
    out
}

fn describe(s: &SessionView) -> String {
    let what = if s.began_with == "seal_recovered" {
        "sealed a finished run's log"
    } else {
        "resumed"
    };
    let end = match &s.sealed {
        Some(hash) => format!("sealed at record {} with {hash}", s.last_record),
        None => "not sealed".to_string(),
    };
    format!(
        "  records {}-{}: {what} by {} ({}@{}, pid {}) at {}, last record at {}; {end}",
        s.first_record, s.last_record, s.operator, s.os_user, s.host, s.pid, s.at, s.until
    )
}

pub fn check(file: &str, v: &Verified, c: &Check<'_>) -> VerifyReport {
    let (in_progress, published) = (c.in_progress, c.published);
    let seals: Vec<(u64, &str)> = v
        .records
        .iter()
        .filter(|r| matches!(r.event, Entry::Sealed { .. }))
        .map(|r| (r.seq, r.hash.as_str()))
        .collect();
    let digest_matches = published.map(|d| seals.iter().any(|(_, h)| *h == d));
    let sealed = v.sealed();
    let n = v.records.len();
    let after_digest = published
        .and_then(|d| seals.iter().find(|(_, h)| *h == d))
        .filter(|_| v.fault.is_none())
        .map(|(seq, _)| AfterDigest {
            seal_record: *seq,
            records: v.records.iter().filter(|r| r.seq > *seq).count(),
            sessions: sessions_after(&v.records, *seq),
        });
    let resume = c.resume_with.as_deref().map_or_else(
        || "`rollout resume` with the run's id, in its state directory,".to_string(),
        |cmd| format!("`{cmd}`"),
    );
    let (ok, message) = if let Some(f) = &v.fault {
        (false, format!("FAILED: {f}"))
    } else if let Some(bytes) = v.truncated {
        (
            false,
            format!(
                "FAILED: the log is cut short after record {n}: {bytes} bytes of an incomplete record follow (rollout stopped while writing, or the file was cut); records 1 to {n} are intact"
            ),
        )
    } else if n == 0 {
        (false, "FAILED: the log is empty".into())
    } else if digest_matches == Some(false) {
        (
            false,
            format!(
                "FAILED: no seal of the log carries the published digest {}: the log was rewritten, or the digest belongs to another run",
                published.unwrap_or_default()
            ),
        )
    } else if !sealed && !in_progress {
        let finished = crate::state::RunState::fold(&v.records).is_finished();
        let why = if finished {
            format!(
                "the run finished, but rollout stopped before it sealed the log (killed after the `run_finished` record), or records after it were removed; {resume} seals it and records that it did"
            )
        } else {
            format!(
                "records after it may have been removed, or rollout stopped without closing the log (a crash; {resume} continues the run and seals the log)"
            )
        };
        (
            false,
            format!("FAILED: the log ends at record {n} without a seal: {why}"),
        )
    } else if let Some(after) = after_digest.as_ref().filter(|a| a.records > 0 && c.strict) {
        let mut m = format!(
            "FAILED (--strict): {} records follow the published digest (the seal at record {}), written by {} later session{}:",
            after.records,
            after.seal_record,
            after.sessions.len(),
            if after.sessions.len() == 1 { "" } else { "s" }
        );
        for s in &after.sessions {
            let _ = write!(m, "\n{}", describe(s));
        }
        (false, m)
    } else {
        let mut m = format!("OK: {n} records, every hash and link intact");
        if in_progress && !sealed {
            m.push_str("; the run is in progress (not sealed yet)");
        } else {
            let _ = write!(m, "; sealed, final digest {}", v.head);
        }
        if let Some(after) = &after_digest {
            if after.records == 0 {
                m.push_str("; matches the published digest");
            } else {
                let _ = write!(
                    m,
                    "; the published digest is the seal at record {}, and {} records follow it, written by {} later session{} (`--strict` fails on them):",
                    after.seal_record,
                    after.records,
                    after.sessions.len(),
                    if after.sessions.len() == 1 { "" } else { "s" }
                );
                for s in &after.sessions {
                    let _ = write!(m, "\n{}", describe(s));
                }
            }
        }
        (true, m)
    };
    let signatures = signatures(&v.records);
    let bad: Vec<String> = signatures
        .iter()
        .filter(|s| !s.verified)
        .map(|s| {
            format!(
                "the signed approval of `{}` by `{}` ({}) at record {}: {}",
                s.step,
                s.principal,
                s.role,
                s.record,
                s.problem.as_deref().unwrap_or_default()
            )
        })
        .collect();
    let warned: Vec<String> = signatures
        .iter()
        .filter(|s| s.verified && s.problem.is_some())
        .map(|s| {
            format!(
                "the approval of `{}` by `{}` at record {}: {}",
                s.step,
                s.principal,
                s.record,
                s.problem.as_deref().unwrap_or_default()
            )
        })
        .collect();
    let (ok, mut message) = if ok && !bad.is_empty() {
        (
            false,
            format!(
                "FAILED: {} signed approval{} do{} not verify: {}",
                bad.len(),
                if bad.len() == 1 { "" } else { "s" },
                if bad.len() == 1 { "es" } else { "" },
                bad.join("; ")
            ),
        )
    } else {
        (ok, message)
    };
    if ok && !signatures.is_empty() {
        let _ = write!(
            message,
            "; {} signed approval{} verified",
            signatures.len(),
            if signatures.len() == 1 { "" } else { "s" }
        );
    }
    for w in &warned {
        let _ = write!(message, "\nwarning: {w}");
    }
    VerifyReport {
        file: file.to_string(),
        ok,
        records: n,
        fault: v.fault.as_ref().map(|f| FaultView {
            line: f.line(),
            kind: f.kind(),
            message: f.to_string(),
        }),
        truncated_bytes: v.truncated,
        sealed,
        in_progress,
        final_digest: v.head.clone(),
        digest_matches,
        after_digest,
        signatures,
        message,
    }
}
