//! SSH signatures ("sshsig", the format of `ssh-keygen -Y sign` that git signs commits with),
//! made and checked by OpenSSH's own `ssh-keygen`, as git does: no cryptography here. What this
//! module does itself is read the armoured signature's fields (key type, namespace, the public
//! key) so that a garbled, truncated, wrong-namespace or unknown-key signature gets a clear
//! sentence instead of ssh-keygen's "Could not verify signature", and the key's fingerprint
//! (`SHA256:...`, as `ssh-keygen -l` prints it) can be recorded.
//!
//! Imports nothing of rollout: `state` (audit verify) and `exec` (the gate) both use it.

use std::io::Write;
use std::path::Path;
use std::process::{Command, Stdio};

use base64::Engine;
use base64::engine::general_purpose::{STANDARD, STANDARD_NO_PAD};

/// The namespace rollout signs approvals in (`ssh-keygen -Y sign -n rollout`).
pub const NAMESPACE: &str = "rollout";

const BEGIN: &str = "-----BEGIN SSH SIGNATURE-----";
const END: &str = "-----END SSH SIGNATURE-----";

/// Key types OpenSSH signs with (`-Y sign`); anything else is refused before ssh-keygen runs.
const KEY_TYPES: &[&str] = &[
    "ssh-ed25519",
    "ecdsa-sha2-nistp256",
    "ecdsa-sha2-nistp384",
    "ecdsa-sha2-nistp521",
    "ssh-rsa",
    "sk-ssh-ed25519@openssh.com",
    "sk-ecdsa-sha2-nistp256@openssh.com",
];

/// An armoured SSH signature, read but not yet verified.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Signature {
    /// The armoured text, `-----BEGIN SSH SIGNATURE-----` to `-----END SSH SIGNATURE-----`.
    pub armored: String,
    /// The signer's public key as an `authorized_keys` line: `ssh-ed25519 AAAA...`.
    pub public_key: String,
    /// `SHA256:...` of the public key, as `ssh-keygen -l` and `-Y verify` print it.
    pub fingerprint: String,
    pub key_type: String,
    pub namespace: String,
}

/// Reads the armoured signature in `text` (the first `BEGIN SSH SIGNATURE` block).
pub fn parse(text: &str) -> Result<Signature, String> {
    let Some(start) = text.find(BEGIN) else {
        return Err("it holds no SSH signature (no `-----BEGIN SSH SIGNATURE-----` line)".into());
    };
    let Some(len) = text[start..].find(END) else {
        return Err(
            "its SSH signature is cut short (no `-----END SSH SIGNATURE-----` line)".into(),
        );
    };
    let block = &text[start..start + len + END.len()];
    let body: String = block[BEGIN.len()..block.len() - END.len()]
        .chars()
        .filter(|c| !c.is_ascii_whitespace())
        .collect();
    let blob = STANDARD
        .decode(body.as_bytes())
        .map_err(|e| format!("its SSH signature is garbled (not base64: {e})"))?;
    let mut r = Reader(&blob);
    let garbled = |what: &str| format!("its SSH signature is garbled or cut short ({what})");
    if r.take(6).ok_or_else(|| garbled("no `SSHSIG` header"))? != b"SSHSIG" {
        return Err(garbled("no `SSHSIG` header"));
    }
    let version = r.u32().ok_or_else(|| garbled("no version"))?;
    if version != 1 {
        return Err(format!(
            "its SSH signature has version {version}; only version 1 is known"
        ));
    }
    let key = r.string().ok_or_else(|| garbled("no public key"))?;
    let namespace = r.string().ok_or_else(|| garbled("no namespace"))?;
    let _reserved = r.string().ok_or_else(|| garbled("no reserved field"))?;
    let _hash = r.string().ok_or_else(|| garbled("no hash algorithm"))?;
    let sig = r.string().ok_or_else(|| garbled("no signature"))?;
    if sig.is_empty() || !r.0.is_empty() {
        return Err(garbled("bad length"));
    }
    let key_type = Reader(key)
        .string()
        .map(|t| String::from_utf8_lossy(t).into_owned())
        .ok_or_else(|| garbled("no key type"))?;
    if !KEY_TYPES.contains(&key_type.as_str()) {
        return Err(format!(
            "it is signed with a key of unknown type `{}`; use an ed25519, ecdsa or rsa key",
            key_type.escape_default()
        ));
    }
    let namespace = String::from_utf8_lossy(namespace).into_owned();
    Ok(Signature {
        armored: block.to_string(),
        public_key: format!("{key_type} {}", STANDARD.encode(key)),
        fingerprint: fingerprint(key),
        key_type,
        namespace,
    })
}

/// `SHA256:` and the unpadded base64 of the key blob's SHA-256, as OpenSSH prints it.
fn fingerprint(key_blob: &[u8]) -> String {
    let digest = aws_lc_rs::digest::digest(&aws_lc_rs::digest::SHA256, key_blob);
    format!("SHA256:{}", STANDARD_NO_PAD.encode(digest.as_ref()))
}

/// The fingerprint of a public key line (`ssh-ed25519 AAAA... comment`).
pub fn fingerprint_of_line(line: &str) -> Option<String> {
    let blob = line.split_whitespace().nth(1)?;
    STANDARD.decode(blob).ok().map(|b| fingerprint(&b))
}

/// The SSH wire format's fields, read one after the other.
struct Reader<'a>(&'a [u8]);

impl<'a> Reader<'a> {
    fn take(&mut self, n: usize) -> Option<&'a [u8]> {
        if self.0.len() < n {
            return None;
        }
        let (head, rest) = self.0.split_at(n);
        self.0 = rest;
        Some(head)
    }
    fn u32(&mut self) -> Option<u32> {
        self.take(4)
            .map(|b| u32::from_be_bytes([b[0], b[1], b[2], b[3]]))
    }
    fn string(&mut self) -> Option<&'a [u8]> {
        let n = usize::try_from(self.u32()?).ok()?;
        self.take(n)
    }
}

/// Where the key that signs is.
#[derive(Debug, Clone)]
pub enum Key<'a> {
    /// A private key file (ssh-keygen asks for its passphrase at the terminal), or a public
    /// key file whose private key the agent holds.
    File(&'a Path),
    /// A public key line (`ssh-ed25519 AAAA...`) whose private key the ssh-agent holds.
    Agent(&'a str),
}

fn keygen() -> Command {
    let mut c = Command::new("ssh-keygen");
    c.stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped());
    c
}

fn missing(e: &std::io::Error) -> String {
    if e.kind() == std::io::ErrorKind::NotFound {
        "`ssh-keygen` is not installed; signed approvals need OpenSSH 8.2 or later (Debian: `apt-get install openssh-client`)".into()
    } else {
        format!("cannot run `ssh-keygen`: {e}")
    }
}

/// Runs `cmd` with `input` on stdin; its stdout, or its stderr's last line as the error.
fn run(mut cmd: Command, input: &[u8]) -> Result<String, String> {
    let mut child = cmd.spawn().map_err(|e| missing(&e))?;
    if let Some(mut stdin) = child.stdin.take() {
        let _ = stdin.write_all(input);
    }
    // Waiting below closes stdin: ssh-keygen reads the message to its end.
    let out = child
        .wait_with_output()
        .map_err(|e| format!("`ssh-keygen` failed: {e}"))?;
    if out.status.success() {
        Ok(String::from_utf8_lossy(&out.stdout).into_owned())
    } else {
        let err = String::from_utf8_lossy(&out.stderr);
        let last = err
            .lines()
            .map(str::trim)
            .rfind(|l| !l.is_empty() && !l.starts_with("Signing "))
            .unwrap_or("no message");
        Err(last.to_string())
    }
}

/// Signs `message` in `namespace`: `ssh-keygen -Y sign`. Returns the armoured signature. The
/// message goes through a file so that ssh-keygen can ask for a key's passphrase at the
/// terminal.
pub fn sign(key: &Key<'_>, namespace: &str, message: &[u8]) -> Result<String, String> {
    let dir = tempfile::tempdir().map_err(|e| format!("cannot make a temporary file: {e}"))?;
    let text = dir.path().join("approval");
    std::fs::write(&text, message).map_err(|e| format!("cannot write a temporary file: {e}"))?;
    let mut cmd = keygen();
    cmd.stdin(Stdio::inherit());
    cmd.args(["-Y", "sign", "-n", namespace, "-f"]);
    match key {
        Key::File(path) => {
            if !path.is_file() {
                return Err(format!(
                    "the key file `{}` does not exist or is not a file",
                    path.display()
                ));
            }
            cmd.arg(path);
        }
        Key::Agent(line) => {
            let public = dir.path().join("key.pub");
            std::fs::write(&public, format!("{line}\n"))
                .map_err(|e| format!("cannot write a temporary file: {e}"))?;
            cmd.arg(&public).arg("-U");
        }
    }
    cmd.arg(&text);
    run(cmd, b"").map_err(|e| format!("`ssh-keygen -Y sign` failed: {e}"))?;
    let mut sig_path = text.into_os_string();
    sig_path.push(".sig");
    let out = std::fs::read_to_string(&sig_path)
        .map_err(|e| format!("`ssh-keygen -Y sign` wrote no signature: {e}"))?;
    parse(&out)
        .map(|s| s.armored)
        .map_err(|e| format!("`ssh-keygen -Y sign` gave no signature: {e}"))
}

/// The public keys the ssh-agent holds (`ssh-add -L`), as `authorized_keys` lines.
pub fn agent_keys() -> Result<Vec<String>, String> {
    let out = Command::new("ssh-add")
        .arg("-L")
        .stdin(Stdio::null())
        .output()
        .map_err(|e| {
            if e.kind() == std::io::ErrorKind::NotFound {
                "`ssh-add` is not installed (OpenSSH's client)".to_string()
            } else {
                format!("cannot run `ssh-add`: {e}")
            }
        })?;
    match out.status.code() {
        Some(0) => Ok(String::from_utf8_lossy(&out.stdout)
            .lines()
            .filter(|l| !l.trim().is_empty())
            .map(str::to_string)
            .collect()),
        Some(1) => Err("the ssh-agent holds no keys; `ssh-add` yours, or give `--key FILE`".into()),
        _ => Err(
            "no ssh-agent answers (is `SSH_AUTH_SOCK` set?); start one and `ssh-add` your key, or give `--key FILE`"
                .into(),
        ),
    }
}

fn signature_file(dir: &Path, armored: &str) -> Result<std::path::PathBuf, String> {
    let path = dir.join("approval.sig");
    std::fs::write(&path, format!("{armored}\n"))
        .map_err(|e| format!("cannot write a temporary file: {e}"))?;
    Ok(path)
}

/// The principals of `allowed_signers` whose key made `armored` (`ssh-keygen -Y
/// find-principals`, which also applies the file's `namespaces=` and validity options).
pub fn principals(allowed_signers: &Path, armored: &str) -> Result<Vec<String>, String> {
    let dir = tempfile::tempdir().map_err(|e| format!("cannot make a temporary file: {e}"))?;
    let sig = signature_file(dir.path(), armored)?;
    let mut cmd = keygen();
    cmd.args(["-Y", "find-principals", "-f"])
        .arg(allowed_signers)
        .arg("-s")
        .arg(&sig);
    // Exit 1 with nothing on stdout: no principal has this key.
    Ok(run(cmd, b"")
        .unwrap_or_default()
        .lines()
        .map(str::trim)
        .filter(|l| !l.is_empty())
        .map(str::to_string)
        .collect())
}

/// Whether `armored` is `principal`'s signature of `message` in `namespace`, by a key that
/// `allowed_signers` lists for `principal`: `ssh-keygen -Y verify`.
pub fn verify(
    allowed_signers: &Path,
    principal: &str,
    namespace: &str,
    message: &[u8],
    armored: &str,
) -> Result<(), String> {
    let dir = tempfile::tempdir().map_err(|e| format!("cannot make a temporary file: {e}"))?;
    let sig = signature_file(dir.path(), armored)?;
    let mut cmd = keygen();
    cmd.args(["-Y", "verify", "-f"])
        .arg(allowed_signers)
        .args(["-I", principal, "-n", namespace, "-s"])
        .arg(&sig);
    run(cmd, message).map(|_| ())
}

/// Whether `armored` is a valid signature of `message` in `namespace` by the key it carries,
/// whoever that is: `ssh-keygen -Y check-novalidate` (no allowed-signers file at hand).
pub fn check_novalidate(namespace: &str, message: &[u8], armored: &str) -> Result<(), String> {
    let dir = tempfile::tempdir().map_err(|e| format!("cannot make a temporary file: {e}"))?;
    let sig = signature_file(dir.path(), armored)?;
    let mut cmd = keygen();
    cmd.args(["-Y", "check-novalidate", "-n", namespace, "-s"])
        .arg(&sig);
    run(cmd, message).map(|_| ())
}

/// The principals an allowed-signers file lists for the key of `public_key` (a line
/// `ssh-ed25519 AAAA...`): read from the file's plain key lines (certificate authorities are
/// not matched). For telling who the operator is from the operator's own keys.
pub fn principals_of_key(allowed_signers_text: &str, public_key: &str) -> Vec<String> {
    let Some(blob) = public_key.split_whitespace().nth(1) else {
        return Vec::new();
    };
    let mut out = Vec::new();
    for line in allowed_signers_text.lines() {
        let line = line.trim();
        if line.is_empty() || line.starts_with('#') {
            continue;
        }
        let words: Vec<&str> = line.split_whitespace().collect();
        if line.contains("cert-authority") {
            continue;
        }
        if words
            .windows(2)
            .any(|w| KEY_TYPES.contains(&w[0]) && w[1] == blob)
        {
            out.extend(
                words[0]
                    .trim_matches('"')
                    .split(',')
                    .filter(|p| !p.is_empty())
                    .map(str::to_string),
            );
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn garbage_and_cut_signatures_are_named_not_panicked_on() {
        let good = "-----BEGIN SSH SIGNATURE-----\nU1NIU0lHAAAAAQAAADMAAAALc3NoLWVkMjU1MTkAAAAgb4aAJ6hETTkQfXZqrp4VEr6ZH1\niZOF3gQF3icUeK2ucAAAAHcm9sbG91dAAAAAAAAAAGc2hhNTEyAAAAUwAAAAtzc2gtZWQy\nNTUxOQAAAED7BW2uDIgVL486vY+KuAT3b8fywsuX2aj8YtcOY88vWOmjIlVoKKkUCCp62e\nLqX258ZsDV6J7St554uJNI3toB\n-----END SSH SIGNATURE-----\n";
        let sig = parse(good).unwrap();
        assert_eq!(sig.key_type, "ssh-ed25519");
        assert_eq!(sig.namespace, "rollout");
        assert_eq!(
            sig.fingerprint,
            "SHA256:ftmdZxaC1+sG8mcDelEVgKHm6CAX9xrP3L9Rw5Juf20"
        );
        // Every cut of the body is an error, never a panic.
        let body_start = good.find('\n').unwrap() + 1;
        let body_end = good.find(END).unwrap();
        for cut in (body_start..body_end).filter(|c| !good[*c..body_end].trim().is_empty()) {
            let text = format!("{}\n{END}\n", &good[..cut]);
            assert!(parse(&text).is_err(), "cut at {cut} parsed");
        }
        assert!(parse("hello").unwrap_err().contains("no SSH signature"));
        assert!(parse(BEGIN).unwrap_err().contains("cut short"));
    }
}
