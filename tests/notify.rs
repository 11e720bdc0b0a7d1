//! Notifications against local HTTP servers on 127.0.0.1: what is sent, in both formats, when;
//! secrets in webhook URLs stay out of every output; a failing endpoint never stops the run.

use std::io::{BufRead, BufReader, Read, Write};
use std::net::TcpListener;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use crate::harness::{Test, journal_file, run_id};

/// A webhook endpoint that records each request (path, body) and answers `status`.
struct Hook {
    port: u16,
    seen: Arc<Mutex<Vec<(String, serde_json::Value)>>>,
}

impl Hook {
    fn start(status: u16) -> Hook {
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let port = listener.local_addr().unwrap().port();
        let seen = Arc::new(Mutex::new(Vec::new()));
        let record = seen.clone();
        std::thread::spawn(move || {
            for stream in listener.incoming() {
                let Ok(mut stream) = stream else { continue };
                let _ = stream.set_read_timeout(Some(Duration::from_secs(5)));
                let mut reader = BufReader::new(stream.try_clone().unwrap());
                let mut request_line = String::new();
                if reader.read_line(&mut request_line).is_err() {
                    continue;
                }
                let path = request_line
                    .split_whitespace()
                    .nth(1)
                    .unwrap_or("")
                    .to_string();
                let mut length = 0;
                loop {
                    let mut header = String::new();
                    if reader.read_line(&mut header).unwrap_or(0) == 0 || header == "\r\n" {
                        break;
                    }
                    if let Some(v) = header.to_ascii_lowercase().strip_prefix("content-length:") {
                        length = v.trim().parse().unwrap_or(0);
                    }
                }
                let mut body = vec![0; length];
                let _ = reader.read_exact(&mut body);
                let json = serde_json::from_slice(&body).unwrap_or(serde_json::Value::Null);
                record.lock().unwrap().push((path, json));
                let _ = write!(
                    stream,
                    "HTTP/1.1 {status} X\r\ncontent-length: 0\r\nconnection: close\r\n\r\n"
                );
            }
        });
        Hook { port, seen }
    }

    fn seen(&self) -> Vec<(String, serde_json::Value)> {
        self.seen.lock().unwrap().clone()
    }
}

/// A port on 127.0.0.1 where nothing listens.
fn refused_port() -> u16 {
    let l = TcpListener::bind("127.0.0.1:0").unwrap();
    l.local_addr().unwrap().port()
}

const TOKEN: &str = "T0KEN-5ecret-h00k";

fn runbook(targets: &str, steps: &str) -> String {
    format!(
        r#"[runbook]
name = "notified"

[vars.token]
secret = {{ env = "HOOK_TOKEN" }}

{targets}

[[phases]]
id = "p1"
title = "One"
on_failure = "rollback"
[[phases.steps]]
id = "first"
run = "echo first"
{steps}
[[phases.rollback]]
id = "undo"
run = "echo undo"
"#
    )
}

/// A JSON webhook told everything, with the secret `token` in its path, and a Slack one told
/// about rollbacks and the end of the run.
fn json_and_slack(port: u16) -> String {
    format!(
        r#"[[notify]]
url = "http://127.0.0.1:{port}/json/{{{{ token }}}}"

[[notify]]
url = "http://127.0.0.1:{port}/slack"
format = "slack"
on = ["rollback", "run_finished"]"#
    )
}

fn files_contain(dir: &std::path::Path, needle: &str) -> Vec<String> {
    let mut hits = Vec::new();
    let mut stack = vec![dir.to_path_buf()];
    while let Some(d) = stack.pop() {
        for e in std::fs::read_dir(&d).unwrap().filter_map(Result::ok) {
            let p = e.path();
            if p.is_dir() {
                stack.push(p);
            } else if std::fs::read(&p)
                .unwrap_or_default()
                .windows(needle.len())
                .any(|w| w == needle.as_bytes())
            {
                hits.push(p.display().to_string());
            }
        }
    }
    hits
}

#[test]
fn run_start_phase_end_rollback_and_finish_are_sent_in_both_formats() {
    let hook = Hook::start(200);
    let targets = json_and_slack(hook.port);
    let steps = "[[phases.steps]]\nid = \"breaks\"\nrun = \"exit 3\"";
    let out = Test::new()
        .runbook(&runbook(&targets, steps))
        .env("HOOK_TOKEN", TOKEN)
        .args(["run", "runbook.toml", "--yes"])
        .status(10);
    let seen = hook.seen();
    let json: Vec<&serde_json::Value> = seen
        .iter()
        .filter(|(p, _)| p.starts_with("/json/"))
        .map(|(_, b)| b)
        .collect();
    // The secret reaches the endpoint it is meant for, and nothing else.
    assert!(seen.iter().any(|(p, _)| p == &format!("/json/{TOKEN}")));
    let events: Vec<&str> = json.iter().map(|b| b["event"].as_str().unwrap()).collect();
    assert_eq!(
        events,
        [
            "run_started",
            "phase_finished",
            "rollback",
            "phase_finished",
            "rollback",
            "run_finished"
        ],
        "{json:#?}"
    );
    for b in &json {
        assert_eq!(b["runbook"], "notified");
        assert!(b["run_id"].as_str().unwrap().len() > 10);
        assert!(b["text"].as_str().unwrap().contains("run "));
        assert!(b["details"]["event"].is_string());
    }
    assert!(json[2]["text"].as_str().unwrap().contains("rolls back p1"));
    assert!(json[5]["text"].as_str().unwrap().contains("rolled back"));
    let slack: Vec<&str> = seen
        .iter()
        .filter(|(p, _)| p == "/slack")
        .map(|(_, b)| b["text"].as_str().unwrap())
        .collect();
    assert_eq!(slack.len(), 3, "{slack:?}");
    assert!(slack.iter().all(|t| t.starts_with("*rollout*")));
    assert!(slack[1].contains("rollback complete"));
    assert!(!out.stdout.contains(TOKEN) && !out.stderr.contains(TOKEN));
    assert!(files_contain(&out.dir, TOKEN).is_empty());
}

#[test]
fn a_failing_endpoint_never_stops_the_run_and_is_recorded_and_shown() {
    let broken = Hook::start(500);
    let refused = refused_port();
    let targets = format!(
        r#"[[notify]]
url = "http://127.0.0.1:{refused}/hook/{{{{ token }}}}"

[[notify]]
url = "http://127.0.0.1:{}/hook/{{{{ token }}}}"
on = ["run_started"]"#,
        broken.port
    );
    let started = Instant::now();
    let out = Test::new()
        .runbook(&runbook(&targets, ""))
        .env("HOOK_TOKEN", TOKEN)
        .args(["run", "runbook.toml"])
        .status(0);
    assert!(started.elapsed() < Duration::from_secs(20));
    out.stderr_has(&format!(
        "notification to http://127.0.0.1:{refused} failed"
    ))
    .stderr_has(&format!(
        "notification to http://127.0.0.1:{} failed: the endpoint answered 500",
        broken.port
    ));
    let text = std::fs::read_to_string(journal_file(&out.dir)).unwrap();
    let failed = text
        .lines()
        .filter(|l| l.contains("\"type\":\"notification_failed\""))
        .count();
    // Refused: start, phase end, finish; the 500 one: start only.
    assert_eq!(failed, 4, "{text}");
    assert!(text.lines().last().unwrap().contains("\"type\":\"sealed\""));
    assert!(!out.stderr.contains(TOKEN));
    assert!(files_contain(&out.dir, TOKEN).is_empty());
    Test::in_dir(&out.dir)
        .args(["audit", "verify", "--format", "json"])
        .args([run_id(&out.dir)])
        .status(0);
}

#[test]
fn a_gate_waiting_for_someone_is_announced_with_what_would_satisfy_it() {
    let hook = Hook::start(200);
    let targets = format!(
        "[[notify]]\nurl = \"http://127.0.0.1:{}/gates\"\nformat = \"slack\"\non = [\"gate_waiting\", \"phase_finished\"]",
        hook.port
    );
    let steps = "[[phases.steps]]\nid = \"go\"\nconfirm = \"Ship it?\"";
    Test::new()
        .runbook(&runbook(&targets, steps))
        .env("HOOK_TOKEN", TOKEN)
        .args(["run", "runbook.toml"])
        .status(7);
    let seen = hook.seen();
    // One message, about the wait: the phase has not finished, so no "did not succeed".
    assert_eq!(seen.len(), 1, "{seen:?}");
    let text = seen[0].1["text"].as_str().unwrap();
    assert!(
        text.contains("is waiting for someone: confirm `go` asks: Ship it?"),
        "{text}"
    );
    assert!(text.contains("To go on, run: `rollout resume "), "{text}");
    assert!(text.contains("--approve go`"), "{text}");
}

#[test]
fn validate_checks_notify_targets_and_the_lock_key_like_any_template() {
    let rb = r#"[runbook]
name = "n"
lock = "deploy/{{ stge }}"

[vars]
stage = "prod"

[[notify]]
url = "http://127.0.0.1:1/{{ tokn }}"
on = ["run_strated"]
format = "teams"

[[phases]]
id = "p"
title = "P"
[[phases.steps]]
id = "a"
run = "true"
"#;
    let out = Test::new()
        .runbook(rb)
        .args(["validate", "runbook.toml"])
        .status(3);
    out.stderr_has("runbook.toml:3:")
        .stderr_has("undefined variable `stge`")
        .stderr_has("did you mean `stage`?")
        .stderr_has("runbook.toml:9:")
        .stderr_has("undefined variable `tokn`")
        .stderr_has("`run_strated` is not something to notify about")
        .stderr_has("did you mean `run_started`?")
        .stderr_has("`teams` is not a valid `format`")
        .stderr_has("has 4 problems");
}

#[test]
fn webhooks_in_the_user_config_are_told_about_every_run_too() {
    let hook = Hook::start(200);
    let config = "[[notify]]\nurl_env = \"MY_HOOK\"\nformat = \"slack\"\non = [\"run_finished\"]\n";
    let rb = "[runbook]\nname = \"plain\"\n\n[[phases]]\nid = \"p\"\ntitle = \"P\"\n[[phases.steps]]\nid = \"a\"\nrun = \"true\"\n";
    let out = Test::new()
        .file(".config/rollout/config.toml", config)
        .runbook(rb)
        .env("MY_HOOK", &format!("http://127.0.0.1:{}/mine", hook.port))
        .args(["run", "runbook.toml"])
        .status(0);
    let seen = hook.seen();
    assert_eq!(seen.len(), 1, "{seen:?}");
    assert_eq!(seen[0].0, "/mine");
    assert!(seen[0].1["text"].as_str().unwrap().contains("succeeded"));
    // A mistake in the config is located, like a runbook error.
    Test::in_dir(&out.dir)
        .file(
            ".config/rollout/config.toml",
            "[[notify]]\nurl = \"http://x\"\non = [\"finished\"]\n",
        )
        .args(["run", "runbook.toml"])
        .status(2)
        .stderr_has("config.toml:3:")
        .stderr_has("`finished` is not something to notify about");
}

#[test]
fn plan_lists_the_webhooks_a_run_would_post_to_and_posts_nothing() {
    let hook = Hook::start(200);
    let targets = json_and_slack(hook.port);
    let config = "[[notify]]\nurl_env = \"MY_HOOK\"\non = [\"aborted\"]\n";
    let mine = format!("http://127.0.0.1:{}/mine/{TOKEN}", hook.port);
    let out = Test::new()
        .file(".config/rollout/config.toml", config)
        .runbook(&runbook(&targets, ""))
        .env("HOOK_TOKEN", TOKEN)
        .env("MY_HOOK", &mine)
        .args(["plan", "runbook.toml"])
        .status(0);
    out.stdout_has("Notifications")
        .stdout_has(&format!(
            "POST http://127.0.0.1:{}/json/******  (json on every event)",
            hook.port
        ))
        .stdout_has(&format!(
            "POST http://127.0.0.1:{}/slack  (slack on rollback, run_finished)",
            hook.port
        ))
        // The operator's own webhook: its host, never its path.
        .stdout_has(&format!(
            "POST http://127.0.0.1:{}  (json on aborted, from your user config)",
            hook.port
        ));
    assert!(!out.stdout.contains("/mine") && !out.stdout.contains(TOKEN));
    let json = Test::in_dir(&out.dir)
        .env("HOOK_TOKEN", TOKEN)
        .env("MY_HOOK", &mine)
        .args(["plan", "runbook.toml", "--format", "json"])
        .status(0)
        .json();
    let notify = json["notify"].as_array().unwrap();
    assert_eq!(notify.len(), 3, "{notify:#?}");
    assert_eq!(
        notify[0]["url"],
        format!("http://127.0.0.1:{}/json/******", hook.port)
    );
    assert_eq!(notify[0]["format"], "json");
    assert_eq!(notify[0]["on"].as_array().unwrap().len(), 6);
    assert_eq!(notify[0]["from"], "runbook");
    assert_eq!(
        notify[1]["on"],
        serde_json::json!(["rollback", "run_finished"])
    );
    assert_eq!(notify[2]["url"], format!("http://127.0.0.1:{}", hook.port));
    assert_eq!(notify[2]["from"], "config");
    assert!(notify.iter().all(|n| n.get("skipped").is_none()));
    // A preview tells no one.
    std::thread::sleep(Duration::from_millis(300));
    assert!(hook.seen().is_empty(), "{:?}", hook.seen());
}
