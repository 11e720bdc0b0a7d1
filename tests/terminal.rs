//! Control characters in values, commands, gate texts and output never reach a terminal or a
//! text report raw: a value such as `ESC[2J ESC]0;pwn BEL` cannot clear the screen, retitle the
//! window or rewrite what a signer reads. rollout shows them escaped (`\e`, `\x07`) in `plan`,
//! the run view, prompts, the sign-off screen, `status`, `log` and the Markdown and HTML
//! reports, while its own colours still work, commands get the exact bytes, and JSON stays
//! faithful. The sign-off digest is the SHA-256 of exactly the lines the signers were shown.

use crate::gates::Tty;
use crate::harness::{Test, journal};

/// Clears the screen, sets the window title, rings the bell; a C1 CSI too.
const HOSTILE: &str = "a\x1b[2J\x1b]0;pwn\x07b\u{9b}31mc";
/// How rollout shows it.
const SHOWN: &str = "a\\e[2J\\e]0;pwn\\x07b\\u{9b}31mc";

/// The raw sequences the hostile value holds: none may reach a terminal or a text report.
fn assert_no_raw_control(what: &str, text: &str) {
    for raw in ["\x1b[2J", "\x1b]0;", "\x07", "\u{9b}"] {
        assert!(
            !text.contains(raw),
            "{what} holds the raw sequence {raw:?}:\n{text}"
        );
    }
}

const RUNBOOK: &str = r#"[runbook]
name = "ctl"

[vars.v]
default = "plain"

[[phases]]
id = "p"
title = "Deploy"

[[phases.steps]]
id = "show"
name = "Show the value"
run = '''printf '%s' {{ v }} > got; printf 'value: %s\n' {{ v }}; printf 'bell\007 clear\033[2J\n' >&2'''

[[phases.steps]]
id = "ask"
confirm = "Go on with {{ v }}?"
"#;

fn test() -> Test {
    Test::new().runbook(RUNBOOK)
}

#[test]
fn plan_in_a_terminal_shows_a_hostile_value_escaped_and_keeps_its_own_colours() {
    let t = test().args(["plan", "runbook.toml", "--color", "always", "--var"]);
    let t = t.args([format!("v={HOSTILE}")]);
    let mut tty = Tty::run(&t);
    tty.shows("This is a preview").finishes_with(0);
    assert_no_raw_control("the plan on the terminal", &tty.screen);
    assert!(
        tty.screen.contains(&format!("v = {SHOWN}")),
        "{}",
        tty.screen
    );
    assert!(tty.screen.contains(&format!("Go on with {SHOWN}?")));
    // rollout's own styling is still sent: bold headings.
    assert!(
        tty.screen.contains("\x1b[1mPhase 1/1: Deploy (p)"),
        "{}",
        tty.screen
    );

    // The JSON plan is faithful: the value is there, escaped by JSON itself.
    let json = test()
        .args(["plan", "runbook.toml", "--format", "json", "--var"])
        .args([format!("v={HOSTILE}")])
        .status(0)
        .json();
    let value = json["variables"][0]["value"].as_str().unwrap();
    assert_eq!(value, HOSTILE);
}

#[test]
fn a_run_in_a_terminal_escapes_values_commands_prompts_and_output_but_commands_get_the_bytes() {
    let t = test().args(["run", "runbook.toml", "--var"]);
    let t = t.args([format!("v={HOSTILE}")]);
    let dir = t.path().to_path_buf();
    let mut tty = Tty::run(&t);
    tty.shows("Go on with").shows("?");
    tty.keys("y");
    tty.finishes_with(0);
    assert_no_raw_control("the run on the terminal", &tty.screen);
    for shown in [
        format!("value: {SHOWN}"),
        "bell\\x07 clear\\e[2J".to_string(),
        format!("Go on with {SHOWN}?"),
    ] {
        assert!(
            tty.screen.contains(&shown),
            "{shown:?} not shown:\n{}",
            tty.screen
        );
    }
    // The command received the value byte for byte.
    assert_eq!(std::fs::read(dir.join("got")).unwrap(), HOSTILE.as_bytes());

    // Everything that reads the run back shows it escaped; JSON keeps it exact.
    for args in [
        vec!["status"],
        vec!["log"],
        vec!["report", "--format", "md"],
        vec!["report", "--format", "html"],
    ] {
        let out = Test::in_dir(&dir).args(args.clone()).status(0);
        assert_no_raw_control(&args.join(" "), &out.stdout);
        assert!(
            out.stdout.contains("bell\\x07 clear\\e[2J") || args == ["status"],
            "{args:?}:\n{}",
            out.stdout
        );
    }
    let report = Test::in_dir(&dir)
        .args(["report", "--format", "json"])
        .status(0)
        .stdout;
    assert!(report.contains("bell\\u0007 clear\\u001b[2J"), "{report}");
    let started = journal(&dir)
        .into_iter()
        .find(|r| r["type"] == "step_started")
        .unwrap();
    assert!(started["command"][0].as_str().unwrap().contains(HOSTILE));
}

const SIGNOFF: &str = r#"[runbook]
name = "signed"

[vars.v]
default = "plain"

[[phases]]
id = "p"
title = "Release {{ v }}"

[[phases.steps]]
id = "deploy"
run = "printf '%s' {{ v }} > got"
env = { TARGET = "{{ v }}" }

[[phases.steps]]
id = "leads"
signoff = "Leads sign {{ v }}"
roles = ["QA Lead"]
required = 1
"#;

fn sha256(text: &str) -> String {
    let out = std::process::Command::new("sha256sum")
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::piped())
        .spawn()
        .and_then(|mut c| {
            use std::io::Write;
            c.stdin.take().unwrap().write_all(text.as_bytes())?;
            c.wait_with_output()
        })
        .expect("sha256sum");
    let hex = String::from_utf8(out.stdout).unwrap();
    format!("sha256:{}", &hex[..64])
}

#[test]
fn the_signoff_digest_is_of_exactly_the_lines_the_signers_were_shown() {
    let out = Test::new()
        .runbook(SIGNOFF)
        .args(["run", "runbook.toml", "--output", "json", "--var"])
        .args([format!("v={HOSTILE}")])
        .args(["--signoff", "leads=quinn:QA Lead"])
        .status(0);
    let started: serde_json::Value = out
        .stdout
        .lines()
        .map(|l| serde_json::from_str::<serde_json::Value>(l).unwrap())
        .find(|e| e["event"] == "step_started" && e["step"] == "leads")
        .unwrap();
    let display: Vec<&str> = started["display"]
        .as_array()
        .unwrap()
        .iter()
        .map(|l| l.as_str().unwrap())
        .collect();
    let head = display
        .iter()
        .position(|l| l.starts_with("signing phase `p` as rendered for this run (sha256:"))
        .expect("the sign-off screen's heading");
    let shown = &display[head + 1..];
    let mut text = shown.join("\n");
    text.push('\n');
    let record = journal(&out.dir)
        .into_iter()
        .find(|r| r["type"] == "gate_answered")
        .unwrap();
    assert_eq!(record["digest"].as_str().unwrap(), sha256(&text), "{text}");
    assert!(display[head].contains(record["digest"].as_str().unwrap()));
    // The whole phase is there, every line escaped, its environment included.
    for expected in [
        "  phase: Release {{ v }}".to_string(),
        format!("     $ printf '%s' '{SHOWN}' > got"),
        format!("     env TARGET='{SHOWN}'"),
        format!("     sign-off: Leads sign {SHOWN} (1 of 1 roles must sign)"),
    ] {
        assert!(
            shown.contains(&expected.as_str()),
            "{expected:?} not in {shown:#?}"
        );
    }
    assert!(
        shown
            .last()
            .unwrap()
            .contains("control characters are shown escaped")
    );
    for l in shown {
        assert_no_raw_control("the sign-off screen", l);
    }

    // The digest tells a value from one that only looks like it on the screen: the note
    // about escaping is part of what is signed.
    let lookalike = Test::new()
        .runbook(SIGNOFF)
        .args(["run", "runbook.toml", "--var"])
        .args([format!("v={SHOWN}")])
        .args(["--signoff", "leads=quinn:QA Lead"])
        .status(0);
    let other = journal(&lookalike.dir)
        .into_iter()
        .find(|r| r["type"] == "gate_answered")
        .unwrap();
    assert_ne!(other["digest"], record["digest"]);
}

#[test]
fn the_signoff_screen_in_a_terminal_shows_the_phase_escaped() {
    let t = Test::new()
        .runbook(SIGNOFF)
        .args(["run", "runbook.toml", "--var"])
        .args([format!("v={HOSTILE}")]);
    let mut tty = Tty::run(&t);
    tty.shows("signing phase `p` as rendered for this run (")
        .shows(&format!("env TARGET='{SHOWN}'"))
        .shows("Role of the next signer");
    tty.keys("\r").shows("signing").line("quinn");
    tty.finishes_with(0);
    assert_no_raw_control("the sign-off screen", &tty.screen);
    assert!(
        tty.screen.contains(&format!("Leads sign {SHOWN}")),
        "{}",
        tty.screen
    );
}
