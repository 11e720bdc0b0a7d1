//! Sign-offs approved with the approvers' own SSH keys (issue 18), on the real binary with keys
//! made here by `ssh-keygen` (ed25519, ecdsa, rsa): `rollout approve` and plain `ssh-keygen -Y
//! sign` signatures verify both ways, the gate counts only valid approvals for the run, the gate,
//! the phase and the runbook, by a principal allowed for the role who is not the operator, and
//! within `valid_for`; `audit verify` checks every signature again. Every wait is bounded.

use std::fmt::Write as _;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Duration;

use base64::Engine as _;

use crate::gates::Tty;
use crate::harness::{Test, journal, journal_file, run_dirs, run_id, trace};

/// A runbook that requires signed sign-offs (`risk = "high"`), with a sign-off `go` of three
/// roles: QA (alice or carol), Dev (bob), Ops (carol).
pub fn runbook(required: usize, extra: &str) -> String {
    format!(
        r#"[runbook]
name = "signed"
risk = "high"
allowed_signers = "allowed_signers"

[[phases]]
id = "p"
title = "Release"
on_failure = "abort"

[[phases.steps]]
id = "before"
run = "echo before >> trace"

[[phases.gate]]
id = "go"
signoff = "Release review"
roles = [{{ role = "QA", approvers = ["alice", "carol"] }}, {{ role = "Dev", approvers = ["bob"] }}, {{ role = "Ops", approvers = ["carol"] }}]
required = {required}
exclude_operator = true
{extra}
[[phases]]
id = "q"
title = "After"

[[phases.steps]]
id = "after"
run = "echo after >> trace"
"#
    )
}

/// Keys of alice (ed25519), bob (ecdsa), carol (rsa) and mallory (ed25519, listed nowhere), and
/// the allowed-signers file naming the first three.
pub fn with_keys(t: Test) -> Test {
    let keys = t.path().join("keys");
    std::fs::create_dir_all(&keys).unwrap();
    let mut allowed = String::new();
    for (who, kind) in [
        ("alice", "ed25519"),
        ("bob", "ecdsa"),
        ("carol", "rsa"),
        ("mallory", "ed25519"),
    ] {
        let status = Command::new("ssh-keygen")
            .args(["-q", "-t", kind, "-N", "", "-C", who, "-f"])
            .arg(keys.join(who))
            .status()
            .expect("ssh-keygen (openssh-client) is needed for these tests");
        assert!(status.success());
        if who != "mallory" {
            let public = std::fs::read_to_string(keys.join(format!("{who}.pub"))).unwrap();
            let _ = write!(allowed, "{who} {public}");
        }
    }
    t.file("allowed_signers", allowed)
}

/// A test directory with everyone's keys and the allowed-signers file (see `with_keys`) and
/// `text` as its runbook; and the directory's path.
fn keyed(text: &str) -> (Test, PathBuf) {
    let t = with_keys(Test::new().runbook(text));
    let dir = t.path().to_path_buf();
    (t, dir)
}

pub fn key(dir: &Path, who: &str) -> String {
    dir.join("keys").join(who).display().to_string()
}

/// `SHA256:...` of a key, as `ssh-keygen -l` prints it.
pub fn fingerprint(dir: &Path, who: &str) -> String {
    let out = Command::new("ssh-keygen")
        .arg("-lf")
        .arg(dir.join("keys").join(format!("{who}.pub")))
        .output()
        .unwrap();
    String::from_utf8_lossy(&out.stdout)
        .split_whitespace()
        .nth(1)
        .unwrap()
        .to_string()
}

/// Starts the run; nobody can answer, so it stops at `go` (exit 7). Returns its id.
fn run_to_gate(t: &Test) -> String {
    Test::in_dir(t.path())
        .args(["run", "runbook.toml"])
        .status(7)
        .stderr_has("needs")
        .stderr_has("--gate go");
    run_id(t.path())
}

/// `rollout approve` of run `id`'s sign-off `go` as `role`, signed with `who`'s key, asking
/// nothing.
pub fn approve_args(dir: &Path, id: &str, who: &str, role: &str) -> Vec<String> {
    [
        "approve",
        id,
        "--gate",
        "go",
        "--role",
        role,
        "--key",
        &key(dir, who),
        "--yes",
    ]
    .map(String::from)
    .to_vec()
}

fn approve(dir: &Path, id: &str, who: &str, role: &str) -> Test {
    Test::in_dir(dir).args(approve_args(dir, id, who, role))
}

/// Writes the request for `role` to `file` (`rollout approve --request`).
fn request(dir: &Path, id: &str, role: &str, file: &str) {
    let out = Test::in_dir(dir)
        .args(["approve", "--request", id, "--gate", "go", "--role", role])
        .status(0);
    std::fs::write(dir.join(file), &out.stdout).unwrap();
}

/// Signs `file` with plain `ssh-keygen -Y sign`, as an approver without rollout would: writes
/// `file.sig`.
fn keygen_sign(dir: &Path, who: &str, namespace: &str, file: &str) {
    let out = Command::new("ssh-keygen")
        .current_dir(dir)
        .args(["-Y", "sign", "-n", namespace, "-f", &key(dir, who), file])
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
}

fn gate_answered(dir: &Path) -> serde_json::Value {
    journal(dir)
        .into_iter()
        .rfind(|r| r["type"] == "gate_answered")
        .expect("a gate_answered record")
}

fn resume(dir: &Path, id: &str) -> Test {
    Test::in_dir(dir).args(["resume", id])
}

/// The bytes of an armored SSH signature.
fn unarmor(armored: &str) -> Vec<u8> {
    let body: String = armored
        .lines()
        .filter(|l| !l.starts_with("-----"))
        .collect();
    base64::engine::general_purpose::STANDARD
        .decode(body)
        .unwrap()
}

/// `blob` armored as an SSH signature (no newline after its last line).
fn armor(blob: &[u8]) -> String {
    format!(
        "-----BEGIN SSH SIGNATURE-----\n{}\n-----END SSH SIGNATURE-----",
        base64::engine::general_purpose::STANDARD.encode(blob)
    )
}

#[test]
fn approvals_by_rollout_and_by_plain_ssh_keygen_with_ed25519_ecdsa_and_rsa_keys_pass_the_gate() {
    let (t, dir) = keyed(&runbook(3, ""));
    let id = run_to_gate(&t);
    // alice (ed25519) with rollout: delivered to the run.
    approve(&dir, &id, "alice", "QA")
        .status(0)
        .stderr_has("delivered to run");
    // `rollout status` shows who has signed so far.
    Test::in_dir(&dir)
        .args(["status", &id])
        .status(0)
        .stdout_has(&format!(
            "signed    `go` as QA: by alice with key {}",
            fingerprint(&dir, "alice")
        ));
    // bob (ecdsa) with plain ssh-keygen on the request: `req.sig` beside `req`.
    request(&dir, &id, "Dev", "req");
    keygen_sign(&dir, "bob", "rollout", "req");
    // carol (rsa) with rollout, into a file the operator passes on.
    approve(&dir, &id, "carol", "Ops")
        .args(["--output", "carol.approval"])
        .status(0);
    resume(&dir, &id)
        .args([
            "--signoff-file",
            "req.sig",
            "--signoff-file",
            "carol.approval",
        ])
        .status(0)
        .stderr_has("signed by alice (QA), bob (Dev), carol (Ops)");
    assert_eq!(trace(&dir), ["before", "after"]);
    approve(&dir, &id, "alice", "QA")
        .status(2)
        .stderr_has("has finished; there is nothing left to approve");
    let r = gate_answered(&dir);
    assert_eq!(r["how"], "signed");
    let answers = r["answers"].as_array().unwrap();
    for (a, (who, role)) in answers
        .iter()
        .zip([("alice", "QA"), ("bob", "Dev"), ("carol", "Ops")])
    {
        assert_eq!(a["name"], who);
        assert_eq!(a["subject"], role);
        assert_eq!(a["how"], "signed");
        assert_eq!(a["signed"]["principal"], who);
        assert_eq!(a["signed"]["fingerprint"], fingerprint(&dir, who));
        assert!(
            a["signed"]["signature"]
                .as_str()
                .unwrap()
                .starts_with("-----BEGIN SSH SIGNATURE-----")
        );
    }
    // OpenSSH itself accepts rollout's approval: its text and its signature, apart.
    let delivered = std::fs::read_dir(run_dirs(&dir).last().unwrap().join("approvals"))
        .unwrap()
        .next()
        .unwrap()
        .unwrap()
        .path();
    let text = std::fs::read_to_string(delivered).unwrap();
    let at = text.find("-----BEGIN SSH SIGNATURE-----").unwrap();
    std::fs::write(dir.join("msg"), &text[..at]).unwrap();
    std::fs::write(dir.join("msg.sig"), &text[at..]).unwrap();
    let verify = Command::new("ssh-keygen")
        .current_dir(&dir)
        .args([
            "-Y",
            "verify",
            "-f",
            "allowed_signers",
            "-I",
            "alice",
            "-n",
            "rollout",
            "-s",
            "msg.sig",
        ])
        .stdin(std::fs::File::open(dir.join("msg")).unwrap())
        .output()
        .unwrap();
    assert!(
        verify.status.success(),
        "ssh-keygen -Y verify refused rollout's approval: {}",
        String::from_utf8_lossy(&verify.stderr)
    );
    // The audit log checks every signature again; the report names signers and keys.
    Test::in_dir(&dir)
        .args(["audit", "verify", &id])
        .status(0)
        .stdout_has("3 signed approvals verified");
    let report = Test::in_dir(&dir).args(["report", &id]).status(0);
    for who in ["alice", "bob", "carol"] {
        report.stdout_has(&format!(
            "| {who} | `{}` | verified (allowed_signers) |",
            fingerprint(&dir, who)
        ));
    }
}

/// Runs to the gate, hands in one approval made by `make`, resumes, and returns what the run
/// said: an approval that does not count leaves the gate waiting (exit 7), never passed.
fn refused(extra: &str, make: impl FnOnce(&Path, &str) -> Vec<String>) -> String {
    let (t, dir) = keyed(&runbook(1, extra));
    let id = run_to_gate(&t);
    let flags = make(&dir, &id);
    let out = resume(&dir, &id).args(flags).status(7);
    assert_eq!(trace(&dir), ["before"], "{}", out.stderr);
    assert!(
        !journal(&dir)
            .iter()
            .any(|r| r["type"] == "gate_answered" && r["outcome"] == "passed"),
        "{}",
        out.stderr
    );
    out.stderr.clone()
}

#[test]
fn an_approval_with_a_key_nobody_is_allowed_to_sign_with_is_refused() {
    let said = refused("", |dir, id| {
        approve(dir, id, "mallory", "QA").status(0);
        Vec::new()
    });
    assert!(
        said.contains("lists for nobody") && said.contains("not counted"),
        "{said}"
    );
}

#[test]
fn an_approval_by_a_principal_not_allowed_for_the_role_is_refused() {
    let said = refused("", |dir, id| {
        approve(dir, id, "bob", "QA").status(0);
        Vec::new()
    });
    assert!(
        said.contains("it is signed by bob") && said.contains("who may not sign as `QA`"),
        "{said}"
    );
}

#[test]
fn the_operator_cannot_approve_with_their_own_key() {
    let (_t, dir) = keyed(&runbook(1, ""));
    let alice_pub = format!("{}.pub", key(&dir, "alice"));
    Test::in_dir(&dir)
        .env("ROLLOUT_SIGNING_KEY", &alice_pub)
        .args(["run", "runbook.toml"])
        .status(7);
    let id = run_id(&dir);
    approve(&dir, &id, "alice", "QA").status(0);
    let out = resume(&dir, &id)
        .env("ROLLOUT_SIGNING_KEY", &alice_pub)
        .status(7);
    out.stderr_has("the operator of this run holds that key")
        .stderr_has("separation of duties");
    assert_eq!(trace(&dir), ["before"]);
    // Another operator resuming it does not make it count: the key is recorded as a key of an
    // operator of the run (and `rollout log` says so).
    resume(&dir, &id)
        .status(7)
        .stderr_has("separation of duties");
    Test::in_dir(&dir)
        .args(["log", &id])
        .status(0)
        .stdout_has(&format!(
            "holds the keys {} (alice)",
            fingerprint(&dir, "alice")
        ));
    // Carol's approval counts.
    approve(&dir, &id, "carol", "QA").status(0);
    resume(&dir, &id)
        .status(0)
        .stderr_has("signed by carol (QA)");
}

#[test]
fn an_approval_cannot_be_replayed_on_another_run() {
    let (t, dir) = keyed(&runbook(1, ""));
    let first = run_to_gate(&t);
    approve(&dir, &first, "alice", "QA")
        .args(["--output", "first.approval"])
        .status(0);
    std::thread::sleep(Duration::from_millis(5));
    let second = run_to_gate(&t);
    assert_ne!(first, second);
    // Given on the command line: refused before anything runs.
    resume(&dir, &second)
        .args(["--signoff-file", "first.approval"])
        .status(2)
        .stderr_has(&format!(
            "it approves run `{first}`, not this run `{second}`"
        ));
    // Dropped into the other run: not counted at the gate.
    let approvals = run_dirs(&dir).last().unwrap().join("approvals");
    std::fs::create_dir_all(&approvals).unwrap();
    std::fs::copy(dir.join("first.approval"), approvals.join("x.approval")).unwrap();
    resume(&dir, &second)
        .status(7)
        .stderr_has("an approval cannot be used for another run");
    // `rollout run` starts a new run: no signed approval can name it yet.
    Test::in_dir(&dir)
        .args(["run", "runbook.toml", "--signoff-file", "first.approval"])
        .status(2)
        .stderr_has("`rollout run` starts a new run");
}

#[test]
fn an_approval_moved_to_another_gate_does_not_verify() {
    let extra = "\n[[phases.gate]]\nid = \"go2\"\nsignoff = \"Second look\"\nroles = [{ role = \"QA\", approvers = [\"alice\"] }]\n";
    let (t, dir) = keyed(&runbook(1, extra));
    let id = run_to_gate(&t);
    approve(&dir, &id, "alice", "QA")
        .args(["--output", "go.approval"])
        .status(0);
    let text = std::fs::read_to_string(dir.join("go.approval")).unwrap();
    std::fs::write(
        dir.join("go2.approval"),
        text.replacen("\ngate: go\n", "\ngate: go2\n", 1),
    )
    .unwrap();
    let out = resume(&dir, &id)
        .args([
            "--signoff-file",
            "go.approval",
            "--signoff-file",
            "go2.approval",
        ])
        .status(7);
    out.stderr_has("`go2.approval`: its signature does not verify for `alice`")
        .stderr_has("the text was altered after it was signed");
    assert_eq!(trace(&dir), ["before"]);
    // `go` passed; the run waits at `go2`.
    approve(&dir, &id, "alice", "QA")
        .status(2)
        .stderr_has("sign-off `go` of run")
        .stderr_has("has passed already");
}

#[test]
fn an_approval_of_a_runbook_changed_since_is_refused() {
    let said = refused("", |dir, id| {
        approve(dir, id, "alice", "QA").status(0);
        let path = dir.join("runbook.toml");
        let text = std::fs::read_to_string(&path).unwrap();
        std::fs::write(&path, text.replace("echo after", "echo AFTER")).unwrap();
        vec!["--allow-changed".into()]
    });
    assert!(
        said.contains("the runbook changed after it was signed; sign again"),
        "{said}"
    );
}

#[test]
fn an_approval_of_the_phase_as_it_rendered_before_is_refused_when_it_would_run_otherwise() {
    // The phase reads who operates the run: a session under another operator would execute
    // other commands than the ones signed.
    let (_t, dir) = keyed(&runbook(1, "").replace(
        "echo before >> trace",
        "echo before {{ run.operator }} >> trace",
    ));
    Test::in_dir(&dir)
        .env("ROLLOUT_OPERATOR", "olga")
        .args(["run", "runbook.toml"])
        .status(7);
    let id = run_id(&dir);
    approve(&dir, &id, "alice", "QA").status(0);
    resume(&dir, &id)
        .env("ROLLOUT_OPERATOR", "peter")
        .status(7)
        .stderr_has("the run would now execute")
        .stderr_has("changed since it was signed; sign again");
    resume(&dir, &id).env("ROLLOUT_OPERATOR", "olga").status(0);
    assert_eq!(trace(&dir), ["before olga", "after"]);
}

#[test]
fn an_expired_approval_is_refused() {
    let said = refused("valid_for = \"1h\"\n", |dir, id| {
        request(dir, id, "QA", "req");
        let text = std::fs::read_to_string(dir.join("req")).unwrap();
        let old = jiff::Timestamp::now() - jiff::SignedDuration::from_hours(2);
        let line = text.lines().find(|l| l.starts_with("time: ")).unwrap();
        let old = format!("time: {}", old.round(jiff::Unit::Second).unwrap());
        std::fs::write(dir.join("req"), text.replace(line, &old)).unwrap();
        keygen_sign(dir, "alice", "rollout", "req");
        vec!["--signoff-file".into(), "req.sig".into()]
    });
    assert!(
        said.contains("has expired: approvals of `go` count for 1h"),
        "{said}"
    );
}

#[test]
fn bad_signature_files_get_one_clear_line_each() {
    let (t, dir) = keyed(&runbook(1, ""));
    let id = run_to_gate(&t);
    approve(&dir, &id, "alice", "QA")
        .args(["--output", "good.approval"])
        .status(0);
    let good = std::fs::read_to_string(dir.join("good.approval")).unwrap();
    let at = good.find("-----BEGIN").unwrap();
    let (message, signature) = good.split_at(at);
    // Garbled: not base64; truncated: cut in the middle; no signature at all.
    let (head, body) = signature.split_once('\n').unwrap();
    let garbled = format!("{message}{head}\n{}", body.replacen('A', "*", 3));
    let truncated = format!("{message}{}", &signature[..signature.len() / 2]);
    // A signature of another namespace (git's), and one with a key type nobody knows.
    request(&dir, &id, "QA", "req");
    keygen_sign(&dir, "alice", "git", "req");
    let mut blob = unarmor(signature);
    let at = blob.windows(11).position(|w| w == b"ssh-ed25519").unwrap();
    blob[at..at + 11].copy_from_slice(b"ssh-ed99999");
    let unknown = format!("{message}{}\n", armor(&blob));
    for (name, text, says) in [
        ("garbled", garbled, "its SSH signature is garbled"),
        ("truncated", truncated, "its SSH signature is cut short"),
        (
            "nothing",
            "hello\n".to_string(),
            "it holds neither a request nor an SSH signature",
        ),
        ("unknown", unknown, "a key of unknown type `ssh-ed99999`"),
    ] {
        std::fs::write(dir.join(name), text).unwrap();
        let out = resume(&dir, &id).args(["--signoff-file", name]).status(2);
        let line = out
            .stderr
            .lines()
            .find(|l| l.contains(says))
            .unwrap_or_else(|| panic!("{name}: no line saying {says:?}:\n{}", out.stderr));
        assert!(
            line.starts_with(&format!("error: `--signoff-file {name}`")),
            "{line}"
        );
        assert!(!out.stderr.contains("panicked"), "{}", out.stderr);
    }
    let said = resume(&dir, &id)
        .args(["--signoff-file", "req.sig"])
        .status(7);
    said.stderr_has("it is signed in the namespace `git`, not `rollout`");
    assert_eq!(trace(&dir), ["before"]);
}

#[test]
fn typed_names_do_not_satisfy_a_runbook_that_requires_signatures() {
    let t = with_keys(Test::new().runbook(&runbook(1, "")));
    Test::in_dir(t.path())
        .args(["run", "runbook.toml", "--signoff", "go=alice:QA"])
        .status(2)
        .stderr_has("requires signed approvals, and a typed name does not count");
    assert!(run_dirs(t.path()).is_empty());
}

#[test]
fn a_high_risk_runbook_with_a_signoff_needs_an_allowed_signers_file() {
    let text = runbook(1, "").replace("allowed_signers = \"allowed_signers\"\n", "");
    Test::new()
        .runbook(&text)
        .args(["run", "runbook.toml"])
        .status(2)
        .stderr_has("requires signed sign-offs (the default for `risk = \"high\"`")
        .stderr_has("nothing was run");
    // A low-risk runbook keeps typed names.
    Test::new()
        .runbook(&text.replace("risk = \"high\"", "risk = \"low\""))
        .args(["run", "runbook.toml", "--signoff", "go=alice:QA"])
        .status(0);
}

#[test]
fn approve_without_an_agent_or_key_says_so() {
    let t = with_keys(Test::new().runbook(&runbook(1, "")));
    let id = run_to_gate(&t);
    let out = Test::in_dir(t.path())
        .env("SSH_AUTH_SOCK", "")
        .args(["approve", &id, "--gate", "go", "--role", "QA", "--yes"])
        .status(2);
    out.stderr_has("error: no ssh-agent answers");
    Test::in_dir(t.path())
        .args(["approve", &id, "--gate", "nope", "--yes"])
        .status(2)
        .stderr_has("has not reached a sign-off `nope`");
}

#[test]
fn a_run_waiting_at_the_terminal_goes_on_once_the_approval_arrives() {
    let (_t, dir) = keyed(&runbook(1, ""));
    let mut tty = Tty::run(&Test::in_dir(&dir).args(["run", "runbook.toml"]));
    tty.shows("Waiting for them here");
    let id = run_id(&dir);
    // The approver, at a terminal of their own, reads the phase and confirms.
    let mut approver = Tty::run(&Test::in_dir(&dir).args([
        "approve",
        &id,
        "--gate",
        "go",
        "--key",
        &key(&dir, "alice"),
        "--role",
        "QA",
    ]));
    approver
        .shows("phase `p` as the run shows it")
        .shows("$ echo before >> trace")
        .shows("with your SSH key?");
    approver.line("y");
    approver.shows("delivered to run").finishes_with(0);
    tty.shows("signed by alice (QA)").finishes_with(0);
    assert_eq!(trace(&dir), ["before", "after"]);
    assert_eq!(gate_answered(&dir)["answers"][0]["how"], "signed");
}

/// An edit of a journal record.
type Edit = Box<dyn Fn(&mut serde_json::Value)>;

/// Rewrites the journal of the latest run in `dir` with `edit` applied to its records, the hash
/// chain made whole again: what someone with write access to the log could do.
fn rewrite_journal(dir: &Path, edit: impl Fn(&mut serde_json::Value)) -> PathBuf {
    use rollout::state::Record;
    let path = journal_file(dir);
    let mut prev = rollout::state::audit::GENESIS.to_string();
    let mut out = Vec::new();
    for line in std::fs::read_to_string(&path).unwrap().lines() {
        let mut value: serde_json::Value = serde_json::from_str(line).unwrap();
        edit(&mut value);
        let mut record: Record = serde_json::from_value(value).unwrap();
        record.prev = prev;
        record.hash = String::new();
        let (bytes, hash) = rollout::state::audit::encode(&record).unwrap();
        out.extend(bytes);
        prev = hash;
    }
    std::fs::write(&path, out).unwrap();
    path
}

#[test]
fn audit_verify_names_a_forged_altered_or_misattributed_approval() {
    let (t, dir) = keyed(&runbook(1, ""));
    let id = run_to_gate(&t);
    approve(&dir, &id, "alice", "QA").status(0);
    resume(&dir, &id).status(0);
    let original = std::fs::read(journal_file(&dir)).unwrap();
    let bob_sig = {
        std::fs::write(dir.join("x"), "anything\n").unwrap();
        keygen_sign(&dir, "bob", "rollout", "x");
        std::fs::read_to_string(dir.join("x.sig")).unwrap()
    };
    let forged_sig = {
        let r = gate_answered(&dir);
        let mut blob = unarmor(r["answers"][0]["signed"]["signature"].as_str().unwrap());
        let last = blob.len() - 1;
        blob[last] ^= 0x55;
        armor(&blob)
    };
    let cases: Vec<(&str, Edit)> = vec![
        (
            "does not verify for `carol`",
            Box::new(|r| {
                if r["type"] == "gate_answered" {
                    r["answers"][0]["signed"]["principal"] = "carol".into();
                    r["answers"][0]["name"] = "carol".into();
                }
            }),
        ),
        (
            "altered or misattributed: the signed text names role `Ops`",
            Box::new(|r| {
                if r["type"] == "gate_answered" {
                    let m = r["answers"][0]["signed"]["message"]
                        .as_str()
                        .unwrap()
                        .to_string();
                    r["answers"][0]["signed"]["message"] =
                        m.replacen("role: QA", "role: Ops", 1).into();
                }
            }),
        ),
        (
            "misattributed: the record names key",
            Box::new(move |r| {
                if r["type"] == "gate_answered" {
                    r["answers"][0]["signed"]["signature"] = bob_sig.clone().into();
                }
            }),
        ),
        (
            "does not verify for `alice`",
            Box::new(move |r| {
                if r["type"] == "gate_answered" {
                    r["answers"][0]["signed"]["signature"] = forged_sig.clone().into();
                }
            }),
        ),
    ];
    for (kind, edit) in cases {
        std::fs::write(journal_file(&dir), &original).unwrap();
        rewrite_journal(&dir, edit);
        let out = Test::in_dir(&dir).args(["audit", "verify", &id]).status(13);
        out.stdout_has("FAILED: 1 signed approval does not verify")
            .stdout_has("the signed approval of `go` by");
        assert!(out.stdout.contains(kind), "{kind}: {}", out.stdout);
        Test::in_dir(&dir)
            .args(["report", &id])
            .status(0)
            .stdout_has("| `go` | QA |")
            .stdout_has("| NOT VERIFIED: ");
    }
    // Without the allowed-signers file, the recorded key is checked, with a warning.
    std::fs::write(journal_file(&dir), &original).unwrap();
    std::fs::rename(dir.join("allowed_signers"), dir.join("elsewhere")).unwrap();
    Test::in_dir(&dir)
        .args(["audit", "verify", &id])
        .status(0)
        .stdout_has("1 signed approval verified")
        .stdout_has("warning: the approval of `go` by `alice` at record")
        .stdout_has("is not at hand");
}

/// An ssh-agent of the test's own (`ssh-agent -D`, killed when dropped) holding `who`'s key.
struct Agent {
    child: std::process::Child,
    socket: PathBuf,
}

impl Agent {
    fn holding(dir: &Path, who: &str) -> Agent {
        let socket = dir.join("agent.sock");
        let child = Command::new("ssh-agent")
            .args(["-D", "-a"])
            .arg(&socket)
            .stdout(std::process::Stdio::null())
            .spawn()
            .expect("ssh-agent (openssh-client)");
        let agent = Agent { child, socket };
        crate::harness::wait_for_path(&agent.socket);
        let added = Command::new("ssh-add")
            .env("SSH_AUTH_SOCK", &agent.socket)
            .arg(key(dir, who))
            .output()
            .unwrap();
        assert!(
            added.status.success(),
            "{}",
            String::from_utf8_lossy(&added.stderr)
        );
        agent
    }

    fn sock(&self) -> String {
        self.socket.display().to_string()
    }
}

impl Drop for Agent {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

#[test]
fn approve_signs_with_the_key_in_the_ssh_agent_and_the_operators_agent_keys_are_the_operators() {
    let (_t, dir) = keyed(&runbook(1, ""));
    let agent = Agent::holding(&dir, "alice");
    // The operator holds alice's key in their agent: alice's approval is the operator's own.
    Test::in_dir(&dir)
        .env("SSH_AUTH_SOCK", &agent.sock())
        .args(["run", "runbook.toml"])
        .status(7);
    let id = run_id(&dir);
    Test::in_dir(&dir)
        .env("SSH_AUTH_SOCK", &agent.sock())
        .args(["approve", &id, "--gate", "go", "--role", "QA", "--yes"])
        .status(0)
        .stderr_has(&format!("signed with key {}", fingerprint(&dir, "alice")));
    resume(&dir, &id)
        .env("SSH_AUTH_SOCK", &agent.sock())
        .status(7)
        .stderr_has("the operator cannot approve their own run");
    // Nor does it count once another operator, without that key, resumes the run.
    resume(&dir, &id)
        .env("SSH_AUTH_SOCK", "")
        .status(7)
        .stderr_has("the operator cannot approve their own run");
}

#[test]
fn where_signatures_are_optional_signed_approvals_and_typed_names_count_together() {
    let text = runbook(2, "").replace("risk = \"high\"", "risk = \"low\"");
    let (_t, dir) = keyed(&text);
    Test::in_dir(&dir).args(["run", "runbook.toml"]).status(7);
    let id = run_id(&dir);
    approve(&dir, &id, "alice", "QA").status(0);
    resume(&dir, &id)
        .args(["--signoff", "go=bob:Dev"])
        .status(0)
        .stderr_has("signed by alice (QA), bob (Dev)");
    let r = gate_answered(&dir);
    assert_eq!(r["answers"][0]["how"], "signed");
    assert_eq!(r["answers"][1]["how"], "pre-approved");
}

#[test]
fn ctrl_c_while_a_terminal_waits_for_signed_approvals_pauses_the_run() {
    let (_t, dir) = keyed(&runbook(1, ""));
    let mut tty = Tty::run(&Test::in_dir(&dir).args(["run", "runbook.toml"]));
    tty.shows("Waiting for them here");
    tty.keys("\x03").finishes_with(130);
    let id = run_id(&dir);
    approve(&dir, &id, "alice", "QA").status(0);
    resume(&dir, &id).status(0);
    assert_eq!(trace(&dir), ["before", "after"]);
}

#[test]
fn a_deadline_ends_the_wait_for_signed_approvals_at_the_terminal() {
    let extra = "deadline = \"1s\"\non_deadline = \"abort\"\n";
    let (_t, dir) = keyed(&runbook(1, extra));
    let mut tty = Tty::run(&Test::in_dir(&dir).args(["run", "runbook.toml"]));
    tty.shows("Waiting for them here")
        .shows("within its deadline of 1s")
        .finishes_with(5);
    assert_eq!(trace(&dir), ["before"]);
    assert_eq!(gate_answered(&dir)["outcome"], "deadline_passed");
}

#[test]
fn the_allowed_signers_file_comes_from_the_runbook_or_the_user_and_must_exist() {
    // Named by the runbook but missing: refused before anything runs.
    let t = Test::new().runbook(&runbook(1, ""));
    t.args(["run", "runbook.toml"])
        .status(2)
        .stderr_has("the allowed-signers file `")
        .stderr_has("allowed_signers` does not exist or is not a file");
    // Named by the user (`ROLLOUT_ALLOWED_SIGNERS`, or `allowed_signers` in the user config)
    // for a runbook that names none.
    let text = runbook(1, "").replace("allowed_signers = \"allowed_signers\"\n", "");
    let (_t, dir) = keyed(&text);
    let file = dir.join("allowed_signers").display().to_string();
    Test::in_dir(&dir)
        .env("ROLLOUT_ALLOWED_SIGNERS", &file)
        .args(["run", "runbook.toml"])
        .status(7);
    let id = run_id(&dir);
    approve(&dir, &id, "alice", "QA").status(0);
    std::fs::write(
        dir.join("config.toml"),
        format!("allowed_signers = \"{file}\"\n"),
    )
    .unwrap();
    resume(&dir, &id)
        .env(
            "ROLLOUT_CONFIG",
            &dir.join("config.toml").display().to_string(),
        )
        .status(0)
        .stderr_has("signed by alice (QA)");
}

#[test]
fn signatures_takes_required_or_optional() {
    Test::new()
        .runbook(&runbook(1, "").replace("risk = \"high\"", "signatures = \"always\""))
        .args(["validate", "runbook.toml"])
        .status(3)
        .stderr_has("`always` is not a valid `signatures`")
        .stderr_has("expected one of: required, optional");
}

#[test]
fn a_request_of_a_sign_off_with_several_roles_needs_the_role() {
    let t = with_keys(Test::new().runbook(&runbook(1, "")));
    let id = run_to_gate(&t);
    Test::in_dir(t.path())
        .args(["approve", "--request", &id, "--gate", "go"])
        .status(2)
        .stderr_has(
            "sign-off `go` has several roles: give `--role ROLE`, one of: `QA`, `Dev`, `Ops`",
        );
    Test::in_dir(t.path())
        .args([
            "approve",
            "--request",
            &id,
            "--gate",
            "go",
            "--role",
            "Boss",
        ])
        .status(2)
        .stderr_has("`Boss` is not a role of sign-off `go`");
}

#[test]
fn approve_at_a_terminal_asks_for_the_role_and_a_no_signs_nothing() {
    let (t, dir) = keyed(&runbook(1, ""));
    let id = run_to_gate(&t);
    let args = |t: Test| t.args(["approve", &id, "--gate", "go", "--key", &key(&dir, "bob")]);
    // Declined: nothing is delivered.
    let mut tty = Tty::run(&args(Test::in_dir(&dir)));
    tty.shows("Sign `go` as which role?")
        .keys("\x1b[B")
        .keys("\r");
    tty.shows("Sign `go` as Dev for run").line("n");
    tty.shows("not signed: nothing was written")
        .finishes_with(2);
    assert!(!run_dirs(&dir).last().unwrap().join("approvals").exists());
    // Dev, the second role, confirmed.
    let mut tty = Tty::run(&args(Test::in_dir(&dir)));
    tty.shows("Sign `go` as which role?")
        .keys("\x1b[B")
        .keys("\r");
    tty.shows("Sign `go` as Dev for run").line("y");
    tty.shows("delivered to run").finishes_with(0);
    resume(&dir, &id)
        .status(0)
        .stderr_has("signed by bob (Dev)");
}

#[test]
fn where_nobody_can_answer_a_run_can_wait_for_approvals_delivered_from_elsewhere() {
    let (_t, dir) = keyed(&runbook(1, ""));
    // Nobody delivers: it stops waiting for approval after the time it was given.
    Test::in_dir(&dir)
        .args(["run", "runbook.toml", "--wait-for-approvals", "1s"])
        .status(7)
        .stderr_has("Waiting up to 1s for them (`--wait-for-approvals`)");
    // An approver delivers while it waits: it goes on by itself.
    let mut cmd = Test::in_dir(&dir)
        .args(["run", "runbook.toml", "--wait-for-approvals", "50s"])
        .command();
    cmd.stdin(std::process::Stdio::null())
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped());
    let child = cmd.spawn().unwrap();
    let start = std::time::Instant::now();
    let id = loop {
        assert!(
            start.elapsed() < Duration::from_secs(20),
            "the run never reached the gate"
        );
        let reached = run_dirs(&dir).len() == 2
            && std::fs::read_to_string(journal_file(&dir))
                .is_ok_and(|j| j.contains("\"type\":\"signoff_shown\""));
        if reached {
            break run_id(&dir);
        }
        std::thread::sleep(Duration::from_millis(50));
    };
    approve(&dir, &id, "alice", "QA").status(0);
    let out = crate::harness::wait_bounded(child, Duration::from_secs(40));
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(0), "{stderr}");
    assert!(stderr.contains("signed by alice (QA)"), "{stderr}");
    assert!(start.elapsed() < Duration::from_secs(40));
}

#[test]
fn one_person_signs_once_and_an_operator_named_like_the_principal_cannot_sign() {
    let (t, dir) = keyed(&runbook(2, ""));
    let id = run_to_gate(&t);
    approve(&dir, &id, "alice", "QA").status(0);
    approve(&dir, &id, "carol", "QA")
        .args(["--output", "carol-qa.approval"])
        .status(0);
    approve(&dir, &id, "alice", "QA")
        .args(["--output", "again.approval"])
        .status(0);
    // alice twice, and QA twice: one of two signers counts.
    resume(&dir, &id)
        .args([
            "--signoff-file",
            "again.approval",
            "--signoff-file",
            "carol-qa.approval",
        ])
        .status(7)
        .stderr_has("(1 given)")
        .stderr_has(
            "the approval of `alice` as QA: alice has already signed; one person signs once",
        )
        .stderr_has("the approval of `carol` as QA: the QA has already signed");
    // The operator's name is alice's principal: her approval is the operator's own.
    let out = resume(&dir, &id).env("ROLLOUT_OPERATOR", "alice").status(7);
    out.stderr_has(
        "the approval of `alice` as QA: alice is the operator of this run and cannot sign it",
    );
    assert_eq!(trace(&dir), ["before"]);
}

#[test]
fn a_phase_that_shows_a_secrets_value_cannot_be_signed_and_says_why() {
    let text = runbook(1, "").replace(
        "[[phases]]\nid = \"p\"",
        "[vars.token]\nsecret = { env = \"TOKEN\" }\n\n[[phases]]\nid = \"p\"",
    );
    let (_t, dir) = keyed(&text);
    // The secret's value is a word the phase shows: the journal masks it there.
    Test::in_dir(&dir)
        .env("TOKEN", "before")
        .args(["run", "runbook.toml"])
        .status(7);
    let id = run_id(&dir);
    approve(&dir, &id, "alice", "QA")
        .status(2)
        .stderr_has("shows the value of a secret, and the run's journal keeps it masked");
}
