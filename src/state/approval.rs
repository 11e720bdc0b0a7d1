//! Signed approvals: the text an approver signs (a [`Request`]: canonical, naming the run, the
//! gate, the role, the digest of the phase as shown, the runbook's digest and the time, then
//! the phase's lines themselves so a person signing it with plain `ssh-keygen` sees what they
//! sign), and an approval as it is handed in: that text followed by its SSH signature, or a
//! signature beside the request it signs (`req` and `req.sig`, as `ssh-keygen -Y sign` writes).
//!
//! What is signed is only what the text says: whether it counts at a gate (the run, the gate,
//! the digests, the signer's key and role, its age) is decided where the gate is evaluated.

use serde::{Deserialize, Serialize};

/// The first line of every request.
pub const HEADER: &str = "rollout approval v1";

/// What an approver signs.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Request {
    pub run: String,
    pub gate: String,
    pub phase: String,
    pub role: String,
    /// `sha256:` of the phase's lines as shown (the body of the request).
    pub phase_digest: String,
    /// `sha256:` of the runbook file the run executes.
    pub runbook_digest: String,
    /// RFC 3339, UTC: when the request was written (`rollout approve`: when it was signed).
    pub time: String,
    /// The phase as the operator sees it at the gate, one line each.
    pub shown: Vec<String>,
}

impl Request {
    /// The canonical text: the header, one `key: value` line each, a blank line, the phase.
    pub fn text(&self) -> String {
        let mut t = format!(
            "{HEADER}\nrun: {}\ngate: {}\nphase: {}\nrole: {}\nphase-digest: {}\nrunbook-digest: {}\ntime: {}\n\n",
            one_line(&self.run),
            one_line(&self.gate),
            one_line(&self.phase),
            one_line(&self.role),
            self.phase_digest,
            self.runbook_digest,
            self.time
        );
        for line in &self.shown {
            t.push_str(line);
            t.push('\n');
        }
        t
    }

    /// Reads a request's text. Its body must be the phase its digest names: a request whose
    /// lines were edited says so here.
    pub fn parse(text: &str) -> Result<Request, String> {
        let mut lines = text.split('\n');
        if lines.next().map(str::trim_end) != Some(HEADER) {
            return Err(format!(
                "it does not begin with `{HEADER}` (write one with `rollout approve --request`)"
            ));
        }
        let mut field = |key: &str| -> Result<String, String> {
            let line = lines
                .next()
                .ok_or_else(|| format!("it is cut short before `{key}:`"))?;
            line.strip_prefix(&format!("{key}: "))
                .map(str::to_string)
                .ok_or_else(|| format!("its line `{}` should be `{key}: ...`", line.escape_debug()))
        };
        let request = Request {
            run: field("run")?,
            gate: field("gate")?,
            phase: field("phase")?,
            role: field("role")?,
            phase_digest: field("phase-digest")?,
            runbook_digest: field("runbook-digest")?,
            time: field("time")?,
            shown: Vec::new(),
        };
        if lines.next() != Some("") {
            return Err("it has no blank line after its `time:` line".into());
        }
        let rest: Vec<&str> = lines.collect();
        let Some((last, body)) = rest.split_last() else {
            return Err("it is cut short: the phase's lines are missing".into());
        };
        if !last.is_empty() {
            return Err("it is cut short: its last line has no line feed".into());
        }
        let shown: Vec<String> = body.iter().map(|l| (*l).to_string()).collect();
        let digest = digest_of_lines(&shown);
        if digest != request.phase_digest {
            return Err(format!(
                "its phase text does not match its `phase-digest` (the text is {digest}): it was edited"
            ));
        }
        Ok(Request { shown, ..request })
    }
}

/// The digest of the lines shown to signers: SHA-256 of each line followed by a line feed.
pub fn digest_of_lines(lines: &[String]) -> String {
    let mut text = lines.join("\n");
    text.push('\n');
    crate::runbook::source::digest_of(text.as_bytes())
}

/// Values on a line of their own: a line break would make the text ambiguous.
fn one_line(value: &str) -> String {
    crate::escape::text(value).replace('\n', "\\n")
}

/// An approval as handed in: the signed text and its armoured signature.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Delivered {
    /// Where it came from, for messages: a file's path.
    pub from: String,
    /// The exact bytes signed.
    pub message: String,
    pub signature: String,
}

const BEGIN: &str = "-----BEGIN SSH SIGNATURE-----";

/// Reads an approval file: the request followed by its signature (what `rollout approve`
/// writes), or a bare signature (`req.sig`) whose request is the file beside it without the
/// `.sig` (`req`), as `ssh-keygen -Y sign -n rollout req` leaves them. `Ok(None)` for a
/// request that has no signature yet.
pub fn read_file(path: &std::path::Path) -> Result<Option<Delivered>, String> {
    let shown = path.display().to_string();
    let text = read_text(path)?;
    let Some(at) = text.find(BEGIN) else {
        if text.starts_with(HEADER) {
            return Ok(None);
        }
        return Err(format!(
            "`{shown}` is not an approval: it holds neither a request nor an SSH signature"
        ));
    };
    let (message, signature) = text.split_at(at);
    if !message.trim().is_empty() {
        return Ok(Some(Delivered {
            from: shown,
            message: message.to_string(),
            signature: signature.to_string(),
        }));
    }
    let request = path
        .to_str()
        .and_then(|p| p.strip_suffix(".sig"))
        .map(std::path::PathBuf::from)
        .ok_or_else(|| {
            format!(
                "`{shown}` is a bare signature: name it `REQUEST.sig` beside its request `REQUEST`, or append it to the request"
            )
        })?;
    let message = read_text(&request).map_err(|e| {
        format!(
            "`{shown}` is a bare signature and its request `{}` cannot be read: {e}",
            request.display()
        )
    })?;
    Ok(Some(Delivered {
        from: shown,
        message,
        signature: signature.to_string(),
    }))
}

fn read_text(path: &std::path::Path) -> Result<String, String> {
    const MAX: u64 = 1 << 20;
    let meta =
        std::fs::metadata(path).map_err(|e| format!("cannot read `{}`: {e}", path.display()))?;
    if !meta.is_file() {
        return Err(format!("`{}` is not a regular file", path.display()));
    }
    if meta.len() > MAX {
        return Err(format!(
            "`{}` is larger than {MAX} bytes: not an approval",
            path.display()
        ));
    }
    let bytes =
        std::fs::read(path).map_err(|e| format!("cannot read `{}`: {e}", path.display()))?;
    String::from_utf8(bytes).map_err(|_| format!("`{}` is not UTF-8 text", path.display()))
}

/// What the journal keeps of a signed approval (in its `gate_answered` record): enough for
/// `rollout audit verify` to check the signature again, years later.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Signed {
    /// The allowed-signers principal the signature was verified for.
    pub principal: String,
    /// `SHA256:...` of the signer's public key.
    pub fingerprint: String,
    /// The signer's public key, `ssh-ed25519 AAAA...`.
    pub key: String,
    /// The signed text ([`Request::text`]).
    pub message: String,
    /// The armoured SSH signature.
    pub signature: String,
    /// The allowed-signers file it was verified against, as rollout found it.
    pub allowed_signers: String,
}

#[cfg(test)]
mod tests {
    use super::*;

    fn request() -> Request {
        let shown = vec!["phase `p`".to_string(), "  run: echo hi".to_string()];
        Request {
            run: "r1".into(),
            gate: "g".into(),
            phase: "p".into(),
            role: "QA Lead".into(),
            phase_digest: digest_of_lines(&shown),
            runbook_digest: "sha256:00".into(),
            time: "2026-12-03T12:00:00Z".into(),
            shown,
        }
    }

    #[test]
    fn a_request_reads_back_as_written_and_every_cut_is_refused() {
        let text = request().text();
        assert_eq!(Request::parse(&text).unwrap(), request());
        for cut in 0..text.len() {
            assert!(Request::parse(&text[..cut]).is_err(), "cut at {cut} parsed");
        }
        let edited = text.replace("echo hi", "echo HI");
        assert!(Request::parse(&edited).unwrap_err().contains("edited"));
    }
}
