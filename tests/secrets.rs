//! Secrets never leak: a canary secret, a multi-line PEM-like secret, an 80-byte token and a
//! URL token, printed by commands in every way a command can print them (plain, split across
//! writes, on stderr, base64 at every offset, base64 wrapped at 76 and 64 columns with `\n` and
//! `\r\n`, JSON, URL-encoded, in a failing command's error) and sent in an `http` check's URL
//! (path, query and password), through a pause and resume, a `kill -9` and resume, a capture,
//! and in plans and dry runs. Neither they nor any of their encodings (computed here by Python,
//! independently of rollout) appear in anything rollout prints, in any file under the test
//! directory, in a notification, in `status`, `log` or a report of the run.

use std::fmt::Write as _;
use std::path::Path;
use std::process::Stdio;
use std::time::Duration;

use crate::harness::{Outcome, Test, journal, wait_bounded};

const CANARY: &str = "s3cr3t-CANARY-5d1f/+= \"q\"\\é&x";

/// 80 bytes: its base64 (108 characters) always spans a line break when wrapped.
const TOKEN: &str =
    "tok_9F3kQ2zX7pWv1LmN8bR4sT6yU0cE5hJ2gA7dK3fP9qW1xZ8vB4nM6rT2yH5uJ0iO3pL7kS1dF9gQ";

/// A token that goes into a URL's path and query: the URL library escapes some of its
/// characters and not others, and turns `\` into `/` in a path.
const URL_TOKEN: &str = "ab\\cd%20ef gh\"é<k>'z^|";

/// A password in a URL's userinfo.
const PASSWORD: &str = "pa ss\"é<w0rd>^|{}";

fn pem() -> String {
    let mut s = String::from("-----BEGIN PRIVATE KEY-----\n");
    for i in 0..5 {
        let _ = writeln!(
            s,
            "MIIEv{i}IBADANBgkqhkiG9w0BAQEFAASCBKcwggSjAgEAAoIBAQDc7{i}k+Zp/q"
        );
    }
    s.push_str("Zz=\n-----END PRIVATE KEY-----");
    s
}

const MASK: &str = "******";

/// Every form of the two secrets that must never appear, computed by Python: the values, each
/// PEM line of at least 4 characters, and of each of these the base64 characters that depend
/// only on it at each of the three byte offsets (both alphabets), the JSON string contents and
/// the percent-encodings that `urllib.parse` produces.
fn needles(dir: &Path) -> Vec<String> {
    const SCRIPT: &str = r"
import base64, json, os, re, sys, urllib.parse
out = set()
for name in ('CANARY', 'PEM', 'TOKEN', 'URL_TOKEN', 'PASSWORD'):
    value = os.environb[name.encode()].decode('utf-8')
    units = [value] + [l for l in value.splitlines() if len(l.strip()) >= 4]
    for u in units:
        out.add(u)
        raw = u.encode()
        for k in range(3):
            start, end = -(-8 * k // 6), 8 * (k + len(raw)) // 6
            for enc in (base64.b64encode, base64.urlsafe_b64encode):
                out.add(enc(b'\0' * k + raw).decode()[start:end])
        out.add(json.dumps(u)[1:-1])
        out.add(json.dumps(u, ensure_ascii=False)[1:-1])
        for q in (urllib.parse.quote(u, safe=''), urllib.parse.quote(u), urllib.parse.quote_plus(u)):
            out.add(q)
            out.add(re.sub('%[0-9A-F]{2}', lambda m: m.group(0).lower(), q))
for n in sorted(out):
    if len(n) >= 4:
        print(json.dumps(n))
";
    let out = std::process::Command::new("python3")
        .args(["-c", SCRIPT])
        .env("CANARY", CANARY)
        .env("PEM", pem())
        .env("TOKEN", TOKEN)
        .env("URL_TOKEN", URL_TOKEN)
        .env("PASSWORD", PASSWORD)
        .current_dir(dir)
        .output()
        .expect("python3 is needed for this test");
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let mut needles: Vec<String> = String::from_utf8(out.stdout)
        .unwrap()
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    // `URL_TOKEN` as the URL library writes it in a path (`\` becomes `/`) and in a query:
    // neither is a form Python's encoders produce, and both leaked through the library's errors.
    needles.push("ab/cd%20ef%20gh%22%C3%A9%3Ck%3E'z^|".into());
    needles.push("ab\\cd%20ef%20gh%22%C3%A9%3Ck%3E%27z^|".into());
    assert!(needles.len() > 40, "{needles:?}");
    needles
}

/// Fails if any needle appears in `text`, or a base64 needle of 8 characters or more in
/// `text` with its line breaks taken out (base64 wrapped at any column).
fn assert_clean(what: &str, text: &str, needles: &[String]) {
    for n in needles {
        assert!(
            !text.contains(n.as_str()),
            "{what} contains a form of a secret: {n:?}\n--- {what}\n{text}"
        );
    }
    let joined = text.replace(['\r', '\n'], "");
    let base64 = |n: &&String| {
        n.len() >= 8
            && n.bytes()
                .all(|b| b.is_ascii_alphanumeric() || b"+/-_=".contains(&b))
    };
    for n in needles.iter().filter(base64) {
        assert!(
            !joined.contains(n.as_str()),
            "{what} contains a wrapped form of a secret: {n:?}\n--- {what}\n{text}"
        );
    }
}

/// Fails if any needle appears in an outcome's output or in any file under `dir`.
fn assert_nothing_leaked(dir: &Path, outcomes: &[&Outcome], needles: &[String]) {
    for (i, out) in outcomes.iter().enumerate() {
        assert_clean(&format!("stdout of command {i}"), &out.stdout, needles);
        assert_clean(&format!("stderr of command {i}"), &out.stderr, needles);
    }
    let mut files = 0;
    let mut stack = vec![dir.to_path_buf()];
    while let Some(d) = stack.pop() {
        for entry in std::fs::read_dir(&d).unwrap() {
            let path = entry.unwrap().path();
            if path.is_dir() {
                stack.push(path);
            } else {
                files += 1;
                let text = String::from_utf8_lossy(&std::fs::read(&path).unwrap()).into_owned();
                assert_clean(&path.display().to_string(), &text, needles);
            }
        }
    }
    assert!(files > 0);
}

/// The `wrapped` step prints 27 encodings (3 secrets, 3 offsets, 3 wrappings), each masked
/// line by line: at least one mask each. That nothing of them is left is checked by the needles.
const WRAPPED_MASKS: usize = 27;

/// `(step id, command, masks its output must show)`: every way of printing the secrets.
fn printing_steps() -> Vec<(&'static str, &'static str, usize)> {
    vec![
        (
            "plain",
            r#"printf '%s\n' "$ROLLOUT_VAR_CANARY"; printf 'key:\n%s\n' "$ROLLOUT_VAR_PEM""#,
            2,
        ),
        (
            "stderr",
            r#"printf 'to stderr: %s\n' "$ROLLOUT_VAR_CANARY" >&2"#,
            1,
        ),
        (
            "split-writes",
            r#"python3 -c '
import os, sys, time
for name in (b"ROLLOUT_VAR_CANARY", b"ROLLOUT_VAR_PEM"):
    v = os.environb[name]
    for i in range(0, len(v), 5):
        sys.stdout.buffer.write(v[i:i + 5]); sys.stdout.flush(); time.sleep(0.002)
    sys.stdout.buffer.write(b"\n"); sys.stdout.flush()
'"#,
            2,
        ),
        (
            "base64",
            r#"for v in "$ROLLOUT_VAR_CANARY" "$ROLLOUT_VAR_PEM"; do for p in '' x xy; do
  printf '%s%s!' "$p" "$v" | base64 -w0; echo
  printf '%s%s' "$p" "$v" | base64 -w0 | tr '+/' '-_' | tr -d '='; echo
done; done"#,
            12,
        ),
        (
            "wrapped",
            r#"for v in "$ROLLOUT_VAR_TOKEN" "$ROLLOUT_VAR_CANARY" "$ROLLOUT_VAR_PEM"; do for p in '' x xy; do
  printf '%s%s' "$p" "$v" | base64
  printf '%s%s' "$p" "$v" | base64 -w 64 | sed 's/$/\r/'
  printf '%s%s' "$p" "$v" | base64 -w 76 | tr '+/' '-_' | sed 's/$/\r/'
done; done"#,
            WRAPPED_MASKS,
        ),
        (
            "json",
            r#"python3 -c '
import json, os
for name in (b"ROLLOUT_VAR_CANARY", b"ROLLOUT_VAR_PEM"):
    v = os.environb[name].decode()
    print(json.dumps({"token": v}))
    print(json.dumps(v, ensure_ascii=False))
'"#,
            4,
        ),
        (
            "url",
            r#"python3 -c '
import os, re, urllib.parse as p
for name in (b"ROLLOUT_VAR_CANARY", b"ROLLOUT_VAR_PEM"):
    v = os.environb[name].decode()
    print(p.quote(v, safe=""))
    print(p.quote(v))
    print(p.quote_plus(v))
    print(re.sub("%[0-9A-F]{2}", lambda m: m.group(0).lower(), p.quote(v, safe="")))
'"#,
            8,
        ),
        (
            "fails",
            r#"printf 'auth failed for %s\n' "$ROLLOUT_VAR_CANARY" >&2; exit 3"#,
            1,
        ),
        ("captures", r#"printf 'token=%s' "$ROLLOUT_VAR_CANARY""#, 1),
        (
            "uses-capture",
            r#"test {{ tok }} = "token=$ROLLOUT_VAR_CANARY" && echo capture-is-live"#,
            0,
        ),
    ]
}

fn runbook() -> String {
    let mut rb = String::from(
        r#"[runbook]
name = "secrets"

[vars.canary]
secret = { env = "CANARY" }

[vars.pem]
secret = { env = "PEM" }

[vars.token]
secret = { env = "TOKEN" }

[vars.url_token]
secret = { env = "URL_TOKEN" }

[vars.password]
secret = { env = "PASSWORD" }

[[notify]]
url = "http://127.0.0.1:NOTIFY_PORT/hook"

[[phases]]
id = "leak"
title = "Print secrets every way"
on_failure = "abort"

[[phases.steps]]
id = "http"
http = "http://admin:{{ password }}@127.0.0.1:REFUSED_PORT/health/{{ url_token }}?token={{ url_token }}"
timeout = "1s"
every = "1s"
continue_on_error = true
"#,
    );
    for (id, command, _) in printing_steps() {
        let _ = write!(
            rb,
            "\n[[phases.steps]]\nid = \"{id}\"\nrun = '''\n{command}'''\n"
        );
        if id == "fails" {
            rb.push_str("continue_on_error = true\n");
        }
        if id == "captures" {
            rb.push_str("capture = \"tok\"\n");
        }
    }
    rb.push_str(
        r#"
[[phases.steps]]
id = "halfway"
pause = "Resume to print the secrets again."

[[phases.steps]]
id = "after-resume"
run = '''test -n "$ROLLOUT_VAR_CANARY" && printf '%s\n' "$ROLLOUT_VAR_CANARY" "$ROLLOUT_VAR_PEM"'''
"#,
    );
    rb
}

fn with_secrets(t: Test) -> Test {
    t.env("CANARY", CANARY)
        .env("PEM", &pem())
        .env("TOKEN", TOKEN)
        .env("URL_TOKEN", URL_TOKEN)
        .env("PASSWORD", PASSWORD)
}

/// The sweep's runbook, posting to `notify` and checking a port nobody listens on.
fn sweep_runbook(notify: u16) -> String {
    let refused = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    runbook()
        .replace("NOTIFY_PORT", &notify.to_string())
        .replace("REFUSED_PORT", &refused.to_string())
}

/// What people can read about a finished run in `dir`: `status`, `log` and the three reports.
fn readers(dir: &Path) -> Vec<Outcome> {
    let mut out = vec![
        with_secrets(Test::in_dir(dir)).args(["status"]).status(0),
        with_secrets(Test::in_dir(dir)).args(["log"]).status(0),
    ];
    for format in ["md", "html", "json"] {
        out.push(
            with_secrets(Test::in_dir(dir))
                .args(["report", "--format", format])
                .status(0),
        );
    }
    out
}

/// The output a step printed, from `--output json` events.
fn step_output(events: &[serde_json::Value], step: &str) -> String {
    events
        .iter()
        .filter(|e| e["event"] == "output" && e["step"] == step)
        .map(|e| e["data"].as_str().unwrap())
        .collect()
}

#[test]
fn secrets_and_their_encodings_never_leak_in_output_journal_plans_or_resume() {
    let (port, seen) = webhook();
    let t = with_secrets(Test::new().runbook(&sweep_runbook(port)));
    let dir = t.path().to_path_buf();
    let needles = needles(&dir);

    let plan = with_secrets(Test::in_dir(&dir))
        .args(["plan", "runbook.toml"])
        .status(0);
    let plan_json = with_secrets(Test::in_dir(&dir))
        .args(["plan", "runbook.toml", "--format", "json"])
        .status(0);
    let dry = with_secrets(Test::in_dir(&dir))
        .args(["run", "--dry-run", "runbook.toml"])
        .status(0);

    let run = t
        .args(["run", "runbook.toml", "--output", "json"])
        .status(8);
    let events = run.events();
    for (id, _, masks) in printing_steps() {
        let output = step_output(&events, id);
        let shown = output.matches(MASK).count();
        if id == "wrapped" {
            assert!(shown >= masks, "masks in the output of `{id}`:\n{output}");
        } else {
            assert_eq!(shown, masks, "masks in the output of `{id}`:\n{output}");
        }
    }
    assert_eq!(step_output(&events, "uses-capture"), "capture-is-live\n");
    let finished = |step: &str| {
        events
            .iter()
            .find(|e| e["event"] == "step_finished" && e["step"] == step)
            .unwrap_or_else(|| panic!("no step_finished for `{step}`"))
            .clone()
    };
    assert_eq!(finished("fails")["status"], "failed_ignored");
    // The check's error names the URL as the plan shows it, never as the library wrote it.
    let http = finished("http");
    assert_eq!(http["status"], "failed_ignored");
    let reason = http["reason"].as_str().unwrap();
    assert!(
        reason.contains(&format!("for http://admin:{MASK}@127.0.0.1:"))
            && reason.contains(&format!("/health/{MASK}?token={MASK}: ")),
        "{reason}"
    );
    // The held-back end of the output is flushed before the step finishes.
    let last_output = events
        .iter()
        .rposition(|e| e["event"] == "output" && e["step"] == "captures")
        .unwrap();
    let step_finished = events
        .iter()
        .position(|e| e["event"] == "step_finished" && e["step"] == "captures")
        .unwrap();
    assert!(last_output < step_finished);

    let journal = journal(&dir);
    let fails = journal_step(&journal, "fails");
    assert_eq!(
        fails["output_tail"].as_str().unwrap(),
        format!("auth failed for {MASK}\n")
    );
    let captures = journal_step(&journal, "captures");
    assert_eq!(
        captures["capture"],
        serde_json::json!(["tok", format!("token={MASK}")])
    );
    let base64 = journal_step(&journal, "base64");
    assert_eq!(
        base64["output_tail"]
            .as_str()
            .unwrap()
            .matches(MASK)
            .count(),
        12
    );

    let resumed = with_secrets(Test::in_dir(&dir)).args(["resume"]).status(0);
    resumed.stdout_has(&format!("{MASK}\n{MASK}"));

    // The same run in the plain text view.
    let text = with_secrets(Test::new().runbook(&sweep_runbook(port)))
        .args(["run", "runbook.toml"])
        .status(8);
    text.stdout_has(MASK);
    let text_resumed = with_secrets(Test::in_dir(&text.dir))
        .args(["resume"])
        .status(0);

    let mut outcomes = vec![&plan, &plan_json, &dry, &run, &resumed];
    let read = readers(&dir);
    outcomes.extend(&read);
    assert!(read[3].stdout.contains("<html") || read[3].stdout.contains("<!DOCTYPE"));
    assert_nothing_leaked(&dir, &outcomes, &needles);
    let read_text = readers(&text.dir);
    let mut outcomes = vec![&text, &text_resumed];
    outcomes.extend(&read_text);
    assert_nothing_leaked(&text.dir, &outcomes, &needles);

    let requests = seen.lock().unwrap().clone();
    // Run start, phase end, pause and finish, for each of the two runs and their resumes.
    assert!(requests.len() >= 4, "{requests:?}");
    for r in &requests {
        assert_clean("a notification", r, &needles);
    }
}

fn journal_step(journal: &[serde_json::Value], step: &str) -> serde_json::Value {
    journal
        .iter()
        .find(|r| r["type"] == "step_finished" && r["step"] == step)
        .unwrap_or_else(|| panic!("no step_finished record for `{step}`"))
        .clone()
}

#[test]
fn a_capture_holding_a_secret_is_recorded_masked_and_not_reused_after_resume() {
    let rb = r#"[runbook]
name = "capture"

[vars.canary]
secret = { env = "CANARY" }

[[phases]]
id = "p"
title = "P"
on_failure = "abort"

[[phases.steps]]
id = "read"
run = '''printf 'token=%s' "$ROLLOUT_VAR_CANARY"'''
capture = "tok"

[[phases.steps]]
id = "now"
run = '''test {{ tok }} = "token=$ROLLOUT_VAR_CANARY" && echo same-session-ok'''

[[phases.steps]]
id = "halfway"
pause = "later"

[[phases.steps]]
id = "later"
run = "echo never {{ tok }} > ran-with-the-mask"
"#;
    let t = with_secrets(Test::new().runbook(rb));
    let needles = needles(t.path());
    let first = t.args(["run", "runbook.toml"]).status(8);
    first.stdout_has("same-session-ok");
    let resumed = with_secrets(Test::in_dir(&first.dir))
        .args(["resume"])
        .status(5);
    resumed.stderr_has("capture `tok` contained a secret and was recorded masked");
    assert!(!first.dir.join("ran-with-the-mask").exists());
    assert_nothing_leaked(&first.dir, &[&first, &resumed], &needles);
}

#[test]
fn secrets_never_leak_through_a_kill_9_and_resume() {
    let rb = r#"[runbook]
name = "crash"

[vars.canary]
secret = { env = "CANARY" }

[vars.pem]
secret = { env = "PEM" }

[[phases]]
id = "p"
title = "P"

[[phases.steps]]
id = "hangs"
run = '''printf '%s\n' "$ROLLOUT_VAR_CANARY" "$ROLLOUT_VAR_PEM"; printf '%s' "$ROLLOUT_VAR_CANARY" | base64 -w0; echo $$ > pid; exec sleep 30'''

[[phases.steps]]
id = "after"
run = '''printf '%s\n' "$ROLLOUT_VAR_PEM" >&2'''
"#;
    let t = with_secrets(Test::new().runbook(rb));
    let dir = t.path().to_path_buf();
    let needles = needles(&dir);
    let mut cmd = t.command();
    cmd.args(["run", "runbook.toml", "--output", "json"])
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped());
    let mut child = cmd.spawn().unwrap();
    let pid_file = dir.join("pid");
    let started = std::time::Instant::now();
    while std::fs::read_to_string(&pid_file).map_or(true, |p| !p.ends_with('\n')) {
        assert!(
            started.elapsed() < Duration::from_secs(20),
            "the step never started"
        );
        std::thread::sleep(Duration::from_millis(20));
    }
    child.kill().unwrap();
    let crashed = wait_bounded(child, Duration::from_secs(20));
    let step: i32 = std::fs::read_to_string(&pid_file)
        .unwrap()
        .trim()
        .parse()
        .unwrap();
    let _ = nix::sys::signal::kill(
        nix::unistd::Pid::from_raw(step),
        nix::sys::signal::Signal::SIGKILL,
    );
    let crashed_stdout = String::from_utf8_lossy(&crashed.stdout).into_owned();
    let crashed_stderr = String::from_utf8_lossy(&crashed.stderr).into_owned();
    assert_clean("stdout before the crash", &crashed_stdout, &needles);
    assert_clean("stderr before the crash", &crashed_stderr, &needles);
    let resumed = with_secrets(Test::in_dir(&dir))
        .args(["resume", "--skip-in-doubt"])
        .status(0);
    resumed.stderr_has(MASK);
    assert_nothing_leaked(&dir, &[&resumed], &needles);
}

/// Records the raw body of every request to 127.0.0.1:<port> (answers 200).
fn webhook() -> (u16, std::sync::Arc<std::sync::Mutex<Vec<String>>>) {
    use std::io::{BufRead, BufReader, Read, Write};
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let port = listener.local_addr().unwrap().port();
    let seen = std::sync::Arc::new(std::sync::Mutex::new(Vec::new()));
    let record = seen.clone();
    std::thread::spawn(move || {
        for stream in listener.incoming() {
            let Ok(mut stream) = stream else { continue };
            let _ = stream.set_read_timeout(Some(Duration::from_secs(5)));
            let mut reader = BufReader::new(stream.try_clone().unwrap());
            let (mut request, mut length) = (String::new(), 0);
            loop {
                let mut line = String::new();
                if reader.read_line(&mut line).unwrap_or(0) == 0 || line == "\r\n" {
                    break;
                }
                if let Some(v) = line.to_ascii_lowercase().strip_prefix("content-length:") {
                    length = v.trim().parse().unwrap_or(0);
                }
                request.push_str(&line);
            }
            let mut body = vec![0; length];
            let _ = reader.read_exact(&mut body);
            request.push_str(&String::from_utf8_lossy(&body));
            record.lock().unwrap().push(request);
            let _ = write!(
                stream,
                "HTTP/1.1 200 OK\r\ncontent-length: 0\r\nconnection: close\r\n\r\n"
            );
        }
    });
    (port, seen)
}

#[test]
fn a_secret_in_a_failing_check_reaches_neither_notifications_nor_the_journal() {
    const TOKEN: &str = "tok-9F3kQ2zX7pW";
    let (port, seen) = webhook();
    let refused = {
        let l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        l.local_addr().unwrap().port()
    };
    let rb = format!(
        r#"[runbook]
name = "check"

[vars.tok]
secret = {{ env = "TOK" }}

[[notify]]
url = "http://127.0.0.1:{port}/hook"

[[phases]]
id = "p"
title = "P"
on_failure = "abort"

[[phases.steps]]
id = "check"
http = "http://127.0.0.1:{refused}/api/{{{{ tok }}}}?key={{{{ tok }}}}"
timeout = "1s"
every = "1s"
"#
    );
    let out = Test::new()
        .runbook(&rb)
        .env("TOK", TOKEN)
        .args(["run", "runbook.toml", "--output", "json"])
        .status(6);
    let finished = out
        .stdout
        .lines()
        .map(|l| serde_json::from_str::<serde_json::Value>(l).unwrap())
        .find(|e| e["event"] == "step_finished")
        .unwrap();
    let reason = finished["reason"].as_str().unwrap();
    assert!(
        reason.contains(&format!("/api/{MASK}?key={MASK}")),
        "{reason}"
    );
    let requests = seen.lock().unwrap().clone();
    assert!(!requests.is_empty());
    for r in &requests {
        assert_clean("a notification", r, &[TOKEN.to_string()]);
    }
    assert_nothing_leaked(&out.dir, &[&out], &[TOKEN.to_string()]);
}
