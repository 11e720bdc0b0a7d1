//! Human gates on the real binary. In a pseudo-terminal, answered the way a person would (keys,
//! Enter, arrows and space), with what the journal records checked; and where nobody can
//! answer (stdin `/dev/null`, a closed pipe, a pipe that never writes, no controlling terminal,
//! `CI=true`), where every gate must stop at once with exit 7 and resume with the approval.
//! Every wait in here is bounded: no test can hang.

use std::io::Read;
use std::path::Path;
use std::process::{Command, Stdio};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use expectrl::process::unix::WaitStatus;
use expectrl::session::OsSession;
use expectrl::{Eof, Expect, Session};
use nix::sys::signal::{Signal, kill};
use nix::unistd::Pid;

use crate::harness::{Test, journal, trace, wait_bounded};

/// The longest any one wait of these tests may take.
const LIMIT: Duration = Duration::from_secs(10);

const DOWN: &str = "\x1b[B";
const ENTER: &str = "\r";
const ESC: &str = "\x1b";
const CTRL_C: &str = "\x03";

/// rollout running in a pseudo-terminal, driven like a person at the keyboard.
pub(crate) struct Tty {
    session: OsSession,
    /// Everything the terminal showed so far.
    pub(crate) screen: String,
}

impl Tty {
    pub(crate) fn spawn(mut cmd: Command) -> Tty {
        cmd.env("TERM", "xterm").env("NO_COLOR", "1");
        let mut session = Session::spawn(cmd).expect("spawn rollout in a pseudo-terminal");
        session.set_expect_timeout(Some(LIMIT));
        Tty {
            session,
            screen: String::new(),
        }
    }

    pub(crate) fn run(test: &Test) -> Tty {
        Tty::spawn(test.command())
    }

    fn pid(&self) -> Pid {
        Pid::from_raw(self.session.get_process().pid().as_raw())
    }

    /// Waits until the terminal shows `text`.
    pub(crate) fn shows(&mut self, text: &str) -> &mut Self {
        match self.session.expect(text) {
            Ok(found) => self
                .screen
                .push_str(&String::from_utf8_lossy(found.as_bytes())),
            Err(e) => panic!(
                "the terminal never showed {text:?} ({e})\n--- terminal so far\n{}",
                self.screen
            ),
        }
        self
    }

    /// Types keys, once the prompt has had a moment to take the keyboard.
    pub(crate) fn keys(&mut self, keys: &str) -> &mut Self {
        std::thread::sleep(Duration::from_millis(150));
        self.session.send(keys).expect("type into the terminal");
        self
    }

    /// Types a line of text and Enter.
    pub(crate) fn line(&mut self, text: &str) -> &mut Self {
        self.keys(&format!("{text}{ENTER}"))
    }

    /// Reads the terminal to its end and returns rollout's exit code.
    pub(crate) fn exit_code(&mut self) -> i32 {
        match self.session.expect(Eof) {
            Ok(rest) => self
                .screen
                .push_str(&String::from_utf8_lossy(rest.as_bytes())),
            Err(e) => panic!(
                "rollout did not finish ({e})\n--- terminal so far\n{}",
                self.screen
            ),
        }
        let start = Instant::now();
        loop {
            match self.session.get_process().status() {
                Ok(WaitStatus::Exited(_, code)) => return code,
                Ok(WaitStatus::Signaled(_, signal, _)) => return 128 + signal as i32,
                _ if start.elapsed() > LIMIT => {
                    panic!("rollout did not exit\n--- terminal\n{}", self.screen)
                }
                _ => std::thread::sleep(Duration::from_millis(10)),
            }
        }
    }

    pub(crate) fn finishes_with(&mut self, expected: i32) -> &mut Self {
        let code = self.exit_code();
        assert_eq!(
            code, expected,
            "unexpected exit code\n--- terminal\n{}",
            self.screen
        );
        self
    }

    /// Whether the terminal is back in line mode, as a shell expects it.
    fn terminal_is_cooked(&self) -> bool {
        use nix::sys::termios::{LocalFlags, tcgetattr};
        let master = self
            .session
            .get_process()
            .get_raw_handle()
            .expect("the terminal's master side");
        let t = tcgetattr(&master).expect("terminal settings");
        t.local_flags.contains(LocalFlags::ICANON) && t.local_flags.contains(LocalFlags::ISIG)
    }
}

impl Drop for Tty {
    fn drop(&mut self) {
        if self.session.get_process().is_alive().unwrap_or(false) {
            let _ = kill(self.pid(), Signal::SIGKILL);
            let _ = self.session.get_process().wait();
        }
    }
}

fn runbook(gate: &str) -> String {
    format!(
        r#"[runbook]
name = "gates"

[[phases]]
id = "p1"
title = "Release"

[[phases.steps]]
id = "before"
run = "echo before >> trace"

[[phases.steps]]
{gate}
on_failure = "abort"

[[phases.steps]]
id = "after"
run = "echo after >> trace"
"#
    )
}

const CONFIRM: &str = r#"id = "go"
confirm = "Deploy to production?""#;

const SEVERE: &str = r#"id = "go"
confirm = "Really deploy?"
type_to_confirm = "production""#;

const CHECKLIST: &str = r#"id = "list"
checklist = ["backups verified", "rollback plan reviewed"]"#;

const SIGNOFF: &str = r#"id = "leads"
signoff = "Release review"
roles = [{ role = "QA Lead", approvers = ["quinn", "quentin"] }, "Dev Lead", "Ops Lead"]
required = 2
exclude_operator = true"#;

fn gate_records(dir: &Path) -> Vec<serde_json::Value> {
    journal(dir)
        .into_iter()
        .filter(|r| r["type"] == "gate_answered")
        .collect()
}

/// The single `gate_answered` record of a run.
fn gate_record(dir: &Path) -> serde_json::Value {
    let mut records = gate_records(dir);
    assert_eq!(records.len(), 1, "{records:#?}");
    records.remove(0)
}

fn answers(record: &serde_json::Value) -> Vec<(String, String, String)> {
    record["answers"]
        .as_array()
        .expect("answers")
        .iter()
        .map(|a| {
            (
                a["subject"].as_str().unwrap_or("").to_string(),
                a["answer"].as_str().unwrap_or("").to_string(),
                a["name"].as_str().unwrap_or("").to_string(),
            )
        })
        .collect()
}

fn test_with(gate: &str) -> Test {
    Test::new()
        .runbook(&runbook(gate))
        .env("ROLLOUT_OPERATOR", "olga")
        .args(["run", "runbook.toml"])
}

// ---- in a terminal --------------------------------------------------------------------------

#[test]
fn a_confirm_answered_yes_passes_and_records_who_when_and_how() {
    let t = test_with(CONFIRM);
    let mut tty = Tty::run(&t);
    tty.shows("Deploy to production?")
        .keys("y")
        .finishes_with(0);
    assert_eq!(trace(t.path()), ["before", "after"]);
    let r = gate_record(t.path());
    assert_eq!(r["step"], "go");
    assert_eq!(r["kind"], "confirm");
    assert_eq!(r["outcome"], "passed");
    assert_eq!(r["how"], "interactive");
    assert_eq!(r["operator"], "olga");
    assert!(!r["os_user"].as_str().unwrap_or("").is_empty(), "{r}");
    assert!(r["at"].as_str().unwrap_or("").ends_with('Z'), "{r}");
    assert_eq!(
        answers(&r),
        [("Deploy to production?".into(), "yes".into(), "olga".into())]
    );
    assert_eq!(r["answers"][0]["how"], "interactive");
    assert!(r["answers"][0]["at"].as_str().unwrap_or("").ends_with('Z'));
}

#[test]
fn a_confirm_is_no_on_plain_enter_and_the_run_stops() {
    let t = test_with(CONFIRM);
    let mut tty = Tty::run(&t);
    tty.shows("Deploy to production?")
        .keys(ENTER)
        .shows("olga answered no")
        .finishes_with(5);
    assert_eq!(trace(t.path()), ["before"]);
    let r = gate_record(t.path());
    assert_eq!(r["outcome"], "refused");
    assert_eq!(answers(&r)[0].1, "no");
}

#[test]
fn a_confirm_answered_n_is_refused() {
    let t = test_with(CONFIRM);
    let mut tty = Tty::run(&t);
    tty.shows("Deploy to production?")
        .keys("n")
        .finishes_with(5);
    assert_eq!(gate_record(t.path())["outcome"], "refused");
}

#[test]
fn escape_dismisses_a_confirm_and_is_never_consent() {
    let t = test_with(CONFIRM);
    let mut tty = Tty::run(&t);
    tty.shows("Deploy to production?")
        .keys(ESC)
        .shows("dismissed")
        .finishes_with(5);
    assert_eq!(trace(t.path()), ["before"]);
    let r = gate_record(t.path());
    assert_eq!(r["outcome"], "refused");
    assert_eq!(answers(&r)[0].1, "dismissed");
}

#[test]
fn a_severe_confirm_passes_when_the_word_is_typed() {
    let t = test_with(SEVERE);
    let mut tty = Tty::run(&t);
    tty.shows("Type `production` to confirm")
        .line("production")
        .finishes_with(0);
    let r = gate_record(t.path());
    assert_eq!(r["kind"], "severe_confirm");
    assert_eq!(r["outcome"], "passed");
    assert_eq!(answers(&r)[0].1, "production");
}

#[test]
fn a_severe_confirm_refuses_a_wrong_word_and_y() {
    for typed in ["prod", "y"] {
        let t = test_with(SEVERE);
        let mut tty = Tty::run(&t);
        tty.shows("Type `production` to confirm")
            .line(typed)
            .shows(&format!("typed `{typed}`, not `production`"))
            .finishes_with(5);
        assert_eq!(trace(t.path()), ["before"]);
        let r = gate_record(t.path());
        assert_eq!(r["outcome"], "refused");
        assert_eq!(answers(&r)[0].1, typed);
    }
}

#[test]
fn a_fully_ticked_checklist_passes_and_records_each_item() {
    let t = test_with(CHECKLIST);
    let mut tty = Tty::run(&t);
    tty.shows("rollback plan reviewed")
        .keys(" ")
        .keys(DOWN)
        .keys(" ")
        .keys(ENTER)
        .shows("all 2 items ticked by olga (interactive)")
        .finishes_with(0);
    let r = gate_record(t.path());
    assert_eq!(r["kind"], "checklist");
    assert_eq!(r["outcome"], "passed");
    assert_eq!(
        answers(&r),
        [
            ("backups verified".into(), "ticked".into(), "olga".into()),
            (
                "rollback plan reviewed".into(),
                "ticked".into(),
                "olga".into()
            ),
        ]
    );
}

#[test]
fn a_partly_ticked_checklist_fails_and_names_the_open_items() {
    let t = test_with(CHECKLIST);
    let mut tty = Tty::run(&t);
    tty.shows("rollback plan reviewed")
        .keys(" ")
        .keys(ENTER)
        .shows("1 of 2 ticked by olga; open: `rollback plan reviewed`")
        .finishes_with(5);
    assert_eq!(trace(t.path()), ["before"]);
    let r = gate_record(t.path());
    assert_eq!(r["outcome"], "refused");
    assert_eq!(answers(&r)[0].1, "ticked");
    assert_eq!(answers(&r)[1].1, "open");
}

#[test]
fn a_checklist_ticked_in_advance_in_part_asks_for_the_rest() {
    let t = test_with(CHECKLIST).args(["--check", "list:1"]);
    let mut tty = Tty::run(&t);
    tty.shows("rollback plan reviewed")
        .keys(DOWN)
        .keys(" ")
        .keys(ENTER)
        .finishes_with(0);
    let r = gate_record(t.path());
    assert_eq!(r["how"], "interactive");
    assert_eq!(r["answers"][0]["how"], "pre-approved");
    assert_eq!(r["answers"][1]["how"], "interactive");
}

/// Signs as the role at `down` arrows from the top of the open roles, with `name`.
fn sign(tty: &mut Tty, down: usize, name: &str) {
    tty.shows("Role of the next signer");
    for _ in 0..down {
        tty.keys(DOWN);
    }
    tty.keys(ENTER).shows("signing").line(name);
}

#[test]
fn a_signoff_of_two_of_three_roles_passes_bound_to_the_phase_shown() {
    let t = test_with(SIGNOFF);
    let mut tty = Tty::run(&t);
    tty.shows("signing phase `p1` as rendered for this run (")
        .shows("):");
    let shown = tty
        .screen
        .rsplit("(sha256:")
        .next()
        .and_then(|s| s.get(..64))
        .expect("the digest on screen")
        .to_string();
    tty.shows("3. after").shows("$ echo after >> trace");
    sign(&mut tty, 0, "quinn");
    sign(&mut tty, 0, "dan");
    tty.shows("signed by quinn (QA Lead), dan (Dev Lead)")
        .finishes_with(0);
    assert_eq!(trace(t.path()), ["before", "after"]);
    let r = gate_record(t.path());
    assert_eq!(r["kind"], "signoff");
    assert_eq!(r["outcome"], "passed");
    assert_eq!(r["digest"], format!("sha256:{shown}"));
    assert_eq!(
        answers(&r),
        [
            ("QA Lead".into(), "signed".into(), "quinn".into()),
            ("Dev Lead".into(), "signed".into(), "dan".into()),
        ]
    );
}

#[test]
fn the_signoff_digest_changes_with_what_the_phase_would_run() {
    let t = Test::new();
    let dir = t.path().to_path_buf();
    let digest_for = |command: &str| {
        let _ = std::fs::remove_dir_all(dir.join(".rollout"));
        let rb = runbook(SIGNOFF).replace("echo after >> trace", command);
        std::fs::write(dir.join("runbook.toml"), rb).unwrap();
        Test::in_dir(&dir)
            .args(["run", "runbook.toml", "--signoff", "leads=quinn:QA Lead"])
            .args(["--signoff", "leads=dan:Dev Lead"])
            .status(0);
        gate_record(&dir)["digest"].as_str().unwrap().to_string()
    };
    let a = digest_for("echo after >> trace");
    assert_eq!(a, digest_for("echo after >> trace"));
    assert_ne!(a, digest_for("echo other >> trace"));
}

#[test]
fn a_signoff_refuses_a_duplicate_signer_and_asks_again() {
    let t = test_with(SIGNOFF);
    let mut tty = Tty::run(&t);
    sign(&mut tty, 0, "quinn");
    sign(&mut tty, 0, "Quinn");
    tty.shows("refused: Quinn has already signed; one person signs once");
    sign(&mut tty, 0, "dan");
    tty.finishes_with(0);
    let r = gate_record(t.path());
    assert_eq!(
        answers(&r),
        [
            ("QA Lead".into(), "signed".into(), "quinn".into()),
            (
                "Dev Lead".into(),
                "refused: Quinn has already signed; one person signs once".into(),
                "Quinn".into()
            ),
            ("Dev Lead".into(), "signed".into(), "dan".into()),
        ]
    );
}

#[test]
fn a_signoff_refuses_a_signer_not_on_the_roles_allowed_list() {
    let t = test_with(SIGNOFF);
    let mut tty = Tty::run(&t);
    sign(&mut tty, 0, "mallory");
    tty.shows("refused: mallory may not sign as QA Lead (allowed: quinn, quentin)");
    sign(&mut tty, 0, "quentin");
    sign(&mut tty, 1, "oscar");
    tty.shows("signed by quentin (QA Lead), oscar (Ops Lead)")
        .finishes_with(0);
    let r = gate_record(t.path());
    assert_eq!(answers(&r).len(), 3);
    assert!(
        answers(&r)[0]
            .1
            .starts_with("refused: mallory may not sign")
    );
}

#[test]
fn the_operator_cannot_sign_when_duties_are_separated() {
    let t = test_with(SIGNOFF);
    let mut tty = Tty::run(&t);
    sign(&mut tty, 1, "olga");
    tty.shows("refused: olga is the operator of this run and cannot sign it")
        .shows("Role of the next signer")
        .keys(ESC)
        .shows("the question was dismissed")
        .finishes_with(5);
    assert_eq!(trace(t.path()), ["before"]);
    let r = gate_record(t.path());
    assert_eq!(r["outcome"], "refused");
    let a = answers(&r);
    assert_eq!(a[0].0, "Dev Lead");
    assert!(a[0].1.contains("separation of duties"), "{a:?}");
    assert_eq!(a[0].2, "olga");
    assert_eq!(a[1].1, "dismissed");
}

#[test]
fn ctrl_c_at_a_prompt_pauses_the_run_restores_the_terminal_and_resume_asks_again() {
    let t = test_with(CONFIRM);
    let dir = t.path().to_path_buf();
    let mut tty = Tty::run(&t);
    tty.shows("Deploy to production?")
        .keys(CTRL_C)
        .shows("interrupted by Ctrl-C")
        .finishes_with(130);
    assert!(tty.terminal_is_cooked(), "the terminal was left raw");
    let after_prompt = tty.screen.rsplit("Deploy to production?").next().unwrap();
    assert!(
        after_prompt.contains("\x1b[?25h"),
        "the cursor was left hidden: {after_prompt:?}"
    );
    assert!(gate_records(&dir).is_empty(), "Ctrl-C is not an answer");
    Test::in_dir(&dir)
        .args(["status"])
        .status(0)
        .stdout_has("paused");
    let mut again = Tty::spawn(Test::in_dir(&dir).args(["resume"]).command());
    again
        .shows("Deploy to production?")
        .keys("y")
        .finishes_with(0);
    assert_eq!(trace(&dir), ["before", "after"]);
}

/// The processes whose parent is `pid` and whose command line contains `word`.
fn children_running(pid: Pid, word: &str) -> Vec<i32> {
    std::fs::read_dir("/proc")
        .unwrap()
        .filter_map(|e| e.ok()?.file_name().to_str()?.parse::<i32>().ok())
        .filter(|child| {
            let stat = std::fs::read_to_string(format!("/proc/{child}/stat")).unwrap_or_default();
            let parent = stat
                .rsplit_once(") ")
                .and_then(|(_, rest)| rest.split(' ').nth(1)?.parse::<i32>().ok());
            let cmdline = std::fs::read(format!("/proc/{child}/cmdline")).unwrap_or_default();
            parent == Some(pid.as_raw()) && String::from_utf8_lossy(&cmdline).contains(word)
        })
        .collect()
}

/// A question is asked by a process of its own; killed outright, rollout leaves nothing
/// reading the terminal, even when the terminal's session lives on (here a shell that started
/// rollout and keeps the terminal).
#[test]
fn a_prompt_does_not_outlive_a_killed_rollout() {
    let t = test_with(CONFIRM);
    let rollout = t.command();
    let mut shell = Command::new("sh");
    shell
        .arg("-c")
        .arg("\"$@\"; sleep 30")
        .arg("sh")
        .arg(rollout.get_program())
        .args(rollout.get_args())
        .current_dir(t.path());
    for (k, v) in rollout.get_envs() {
        match v {
            Some(v) => shell.env(k, v),
            None => shell.env_remove(k),
        };
    }
    let mut tty = Tty::spawn(shell);
    tty.shows("Deploy to production? (y/n)");
    let rollouts = children_running(tty.pid(), "rollout");
    assert_eq!(rollouts.len(), 1, "rollout under the shell: {rollouts:?}");
    let rollout_pid = Pid::from_raw(rollouts[0]);
    let prompts = children_running(rollout_pid, "__prompt");
    assert_eq!(prompts.len(), 1, "the question's process: {prompts:?}");
    kill(rollout_pid, Signal::SIGKILL).unwrap();
    let start = Instant::now();
    while Path::new(&format!("/proc/{}", prompts[0])).exists()
        && !std::fs::read_to_string(format!("/proc/{}/stat", prompts[0]))
            .is_ok_and(|s| s.contains(") Z "))
    {
        assert!(
            start.elapsed() < LIMIT,
            "the question's process {} outlived rollout",
            prompts[0]
        );
        std::thread::sleep(Duration::from_millis(10));
    }
}

#[test]
fn sigterm_while_a_prompt_waits_stops_the_run_at_once() {
    let t = test_with(CHECKLIST);
    let mut tty = Tty::run(&t);
    tty.shows("rollback plan reviewed");
    std::thread::sleep(Duration::from_millis(200));
    let sent = Instant::now();
    kill(tty.pid(), Signal::SIGTERM).unwrap();
    tty.finishes_with(143);
    assert!(sent.elapsed() < Duration::from_secs(2));
    assert!(tty.terminal_is_cooked(), "the terminal was left raw");
    assert!(gate_records(t.path()).is_empty());
}

// ---- deadlines ------------------------------------------------------------------------------

fn with_deadline(then: &str) -> String {
    format!("{CONFIRM}\ndeadline = \"1s\"\non_deadline = \"{then}\"")
}

/// Runs the confirm with a 1 s deadline, answers nothing, and returns the test directory.
fn let_the_deadline_pass(then: &str, code: i32, says: &str) -> Test {
    let t = test_with(&with_deadline(then));
    let started = Instant::now();
    let mut tty = Tty::run(&t);
    tty.shows("Deploy to production?")
        .shows(says)
        .finishes_with(code);
    assert!(started.elapsed() < Duration::from_secs(5));
    assert!(tty.terminal_is_cooked(), "the terminal was left raw");
    assert_eq!(trace(t.path()), ["before"]);
    let r = gate_record(t.path());
    assert_eq!(r["outcome"], "deadline_passed");
    assert_eq!(answers(&r)[0].1, "no answer");
    t
}

#[test]
fn a_deadline_that_passes_aborts_the_run() {
    let_the_deadline_pass(
        "abort",
        5,
        "nobody answered `go` within its deadline of 1s (on_deadline = \"abort\")",
    );
}

#[test]
fn a_deadline_that_passes_rolls_back_once_the_operator_confirms() {
    let rb = runbook(&with_deadline("rollback")).replace(
        "[[phases.steps]]\nid = \"after\"",
        "[[phases.rollback]]\nid = \"undo\"\nrun = \"echo undo >> trace\"\n\n[[phases.steps]]\nid = \"after\"",
    );
    let t = Test::new()
        .runbook(&rb)
        .env("ROLLOUT_OPERATOR", "olga")
        .args(["run", "runbook.toml"]);
    let mut tty = Tty::run(&t);
    // The question given up at the deadline leaves nothing reading the terminal: the person
    // there is asked to confirm the rollback (without the gate's deadline).
    tty.shows("Deploy to production?")
        .shows("(on_deadline = \"rollback\")")
        .shows("Rollback plan")
        .shows("echo undo >> trace")
        .shows("Roll back 1 phase now (p1)?")
        .line("y")
        .shows("rollback complete")
        .finishes_with(10);
    assert!(tty.terminal_is_cooked(), "the terminal was left raw");
    assert_eq!(trace(t.path()), ["before", "undo"]);
    let records = gate_records(t.path());
    assert_eq!(records.len(), 2, "{records:#?}");
    assert_eq!(records[0]["outcome"], "deadline_passed");
    assert_eq!(records[1]["step"], "rollback");
    assert_eq!(records[1]["outcome"], "passed");
    assert_eq!(records[1]["how"], "interactive");
}

/// A failing step whose action is rollback, in a terminal: the plan is shown, then asked.
fn rollback_in_a_terminal(answer: &str) -> (Test, Tty) {
    let rb = r#"[runbook]
name = "rb"

[[phases]]
id = "p1"
title = "Prepare"
[[phases.steps]]
id = "prep"
run = "echo prep >> trace"
[[phases.rollback]]
id = "unprep"
run = "echo unprep >> trace"

[[phases]]
id = "p2"
title = "Switch"
on_failure = "rollback"
[[phases.steps]]
id = "switch"
run = "echo switch >> trace; exit 4"
[[phases.rollback]]
id = "unswitch"
run = "echo unswitch >> trace"
"#;
    let t = Test::new()
        .runbook(rb)
        .env("ROLLOUT_OPERATOR", "olga")
        .args(["run", "runbook.toml"]);
    let mut tty = Tty::run(&t);
    tty.shows("Rollback plan")
        .shows("1. p2 (Switch)")
        .shows("echo unswitch >> trace")
        .shows("2. p1 (Prepare)")
        .shows("Roll back 2 phases now (p2, p1)?")
        .keys(answer);
    (t, tty)
}

#[test]
fn a_rollback_confirmed_at_the_terminal_undoes_the_phases_in_reverse_order() {
    let (t, mut tty) = rollback_in_a_terminal("y");
    tty.shows("rollback complete").finishes_with(10);
    assert_eq!(trace(t.path()), ["prep", "switch", "unswitch", "unprep"]);
    let r = gate_record(t.path());
    assert_eq!(r["step"], "rollback");
    assert_eq!(r["how"], "interactive");
    assert_eq!(
        answers(&r)[0],
        (
            "Roll back 2 phases now (p2, p1)?".into(),
            "yes".into(),
            "olga".into()
        )
    );
}

#[test]
fn a_rollback_declined_at_the_terminal_runs_nothing_and_can_be_done_later() {
    let (t, mut tty) = rollback_in_a_terminal("n");
    tty.shows("declined by olga").finishes_with(9);
    assert_eq!(trace(t.path()), ["prep", "switch"]);
    assert_eq!(gate_record(t.path())["outcome"], "refused");
    Test::in_dir(t.path())
        .args(["rollback", "runbook.toml", "--yes"])
        .status(10);
    assert_eq!(trace(t.path()), ["prep", "switch", "unswitch", "unprep"]);
}

#[test]
fn a_deadline_that_passes_holds_the_gate_until_resumed_with_the_approval() {
    let t = let_the_deadline_pass("hold", 7, "the gate holds");
    let dir = t.path();
    let status = Test::in_dir(dir).args(["status"]).status(0);
    status
        .stdout_has("waiting for approval")
        .stdout_has("gate      confirm `go` waits")
        .stdout_has("--approve go");
    Test::in_dir(dir)
        .args(["resume", "--approve", "go"])
        .status(0);
    assert_eq!(trace(dir), ["before", "after"]);
}

#[test]
fn a_signoff_deadline_is_shared_by_its_signers_and_keeps_who_signed_in_time() {
    let gate = format!("{SIGNOFF}\ndeadline = \"2s\"\non_deadline = \"hold\"");
    let t = test_with(&gate);
    let dir = t.path().to_path_buf();
    let mut tty = Tty::run(&t);
    sign(&mut tty, 0, "quinn");
    tty.shows("1 of 2 signed")
        .shows("the gate holds")
        .finishes_with(7);
    assert!(tty.terminal_is_cooked(), "the terminal was left raw");
    let r = gate_record(&dir);
    assert_eq!(r["outcome"], "deadline_passed");
    let a = answers(&r);
    assert_eq!(a[0], ("QA Lead".into(), "signed".into(), "quinn".into()));
    assert_eq!(a[1].1, "no answer");
    Test::in_dir(&dir)
        .args(["resume", "--signoff", "leads=quinn:QA Lead"])
        .args(["--signoff", "leads=dan:Dev Lead"])
        .status(0);
    assert_eq!(trace(&dir), ["before", "after"]);
}

#[test]
fn an_answer_before_the_deadline_counts() {
    let t = test_with(&with_deadline("abort"));
    let mut tty = Tty::run(&t);
    tty.shows("Deploy to production?")
        .keys("y")
        .finishes_with(0);
    assert_eq!(gate_record(t.path())["outcome"], "passed");
}

// ---- wait steps -----------------------------------------------------------------------------

#[test]
fn a_wait_counts_down_and_ctrl_c_pauses_it() {
    let rb = runbook("id = \"soak\"\nwait = \"3s\"").replace("on_failure = \"abort\"\n", "");
    let t = Test::new().runbook(&rb).args(["run", "runbook.toml"]);
    let dir = t.path().to_path_buf();
    let mut tty = Tty::run(&t);
    tty.shows("soak").shows("s left");
    kill(tty.pid(), Signal::SIGINT).unwrap();
    tty.shows("interrupted by Ctrl-C").finishes_with(130);
    assert_eq!(trace(&dir), ["before"]);
    Test::in_dir(&dir)
        .args(["status"])
        .status(0)
        .stdout_has("paused");
    Test::in_dir(&dir).args(["resume"]).status(0);
    assert_eq!(trace(&dir), ["before", "after"]);
}

// ---- where nobody can answer ----------------------------------------------------------------

/// How rollout is started where nobody can answer.
#[derive(Clone, Copy, Debug)]
enum Nobody {
    DevNull,
    ClosedPipe,
    /// A pipe whose write end stays open and never writes.
    SilentPipe,
    /// stdin and stderr on a terminal that is not the controlling terminal of its session.
    Setsid,
    /// A pseudo-terminal as the controlling terminal, with `CI=true`.
    CiTerminal,
}

struct GateCase {
    gate: &'static str,
    id: &'static str,
    /// What the stop message says to do.
    says: &'static [&'static str],
    approval: &'static [&'static str],
}

const CONFIRM_CASE: GateCase = GateCase {
    gate: CONFIRM,
    id: "go",
    says: &["confirm `go`", "--approve go"],
    approval: &["--approve", "go"],
};

const SEVERE_CASE: GateCase = GateCase {
    gate: SEVERE,
    id: "go",
    says: &["confirm `go`", "--approve go=production"],
    approval: &["--approve", "go=production"],
};

const CHECKLIST_CASE: GateCase = GateCase {
    gate: CHECKLIST,
    id: "list",
    says: &["checklist `list` has 2 open item(s)", "--check list"],
    approval: &["--check", "list"],
};

const SIGNOFF_CASE: GateCase = GateCase {
    gate: SIGNOFF,
    id: "leads",
    says: &[
        "sign-off `leads` needs 2 signer(s)",
        "--signoff leads=NAME:ROLE",
        "--signoff 'leads=NAME:QA Lead'",
    ],
    approval: &[
        "--signoff",
        "leads=quinn:QA Lead",
        "--signoff",
        "leads=dan:Dev Lead",
    ],
};

/// Starts `test` the way `nobody` says; returns the exit code and what it wrote to stderr.
fn run_where_nobody_answers(test: &Test, nobody: Nobody) -> (i32, String) {
    match nobody {
        Nobody::DevNull | Nobody::ClosedPipe | Nobody::SilentPipe => {
            let mut cmd = test.command();
            cmd.stdout(Stdio::null()).stderr(Stdio::piped());
            cmd.stdin(match nobody {
                Nobody::DevNull => Stdio::null(),
                _ => Stdio::piped(),
            });
            let mut child = cmd.spawn().expect("spawn rollout");
            let writer = child.stdin.take();
            let writer = match nobody {
                Nobody::SilentPipe => writer,
                _ => None,
            };
            let out = wait_bounded(child, LIMIT);
            drop(writer);
            (
                out.status.code().unwrap_or(-1),
                String::from_utf8_lossy(&out.stderr).into_owned(),
            )
        }
        Nobody::Setsid => {
            let inner = test.command();
            let mut cmd = Command::new("setsid");
            cmd.arg(inner.get_program()).args(inner.get_args());
            cmd.env("NO_COLOR", "1");
            if let Some(dir) = inner.get_current_dir() {
                cmd.current_dir(dir);
            }
            for (k, v) in inner.get_envs() {
                match v {
                    Some(v) => cmd.env(k, v),
                    None => cmd.env_remove(k),
                };
            }
            let pty = nix::pty::openpty(None, None).expect("a pseudo-terminal");
            let slave = pty.slave;
            cmd.stdin(Stdio::from(slave.try_clone().unwrap()))
                .stderr(Stdio::from(slave))
                .stdout(Stdio::null());
            let child = cmd.spawn().expect("spawn setsid rollout");
            drop(cmd);
            let screen = Arc::new(Mutex::new(Vec::new()));
            let sink = Arc::clone(&screen);
            let mut master = std::fs::File::from(pty.master);
            std::thread::spawn(move || {
                let mut chunk = [0u8; 4096];
                while let Ok(n) = master.read(&mut chunk) {
                    if n == 0 {
                        break;
                    }
                    sink.lock().unwrap().extend_from_slice(&chunk[..n]);
                }
            });
            let out = wait_bounded(child, LIMIT);
            std::thread::sleep(Duration::from_millis(50));
            let shown = String::from_utf8_lossy(&screen.lock().unwrap()).into_owned();
            (out.status.code().unwrap_or(-1), shown)
        }
        Nobody::CiTerminal => {
            let mut cmd = test.command();
            cmd.env("CI", "true");
            let mut tty = Tty::spawn(cmd);
            let code = tty.exit_code();
            (code, std::mem::take(&mut tty.screen))
        }
    }
}

fn stops_at_the_gate_and_resumes_with_the_approval(case: &GateCase, nobody: Nobody) {
    let t = test_with(case.gate);
    let dir = t.path().to_path_buf();
    let started = Instant::now();
    let (code, stderr) = run_where_nobody_answers(&t, nobody);
    let took = started.elapsed();
    assert_eq!(code, 7, "{nobody:?}: unexpected exit code\n{stderr}");
    assert!(
        took < Duration::from_secs(2),
        "{nobody:?}: took {took:?} to stop"
    );
    for needle in case.says {
        assert!(
            stderr.contains(needle),
            "{nobody:?}: the message lacks {needle:?}:\n{stderr}"
        );
    }
    assert!(stderr.contains("resume with: rollout resume"), "{stderr}");
    assert_eq!(trace(&dir), ["before"]);
    assert!(gate_records(&dir).is_empty(), "nobody answered");
    let status = Test::in_dir(&dir)
        .args(["status", "--format", "json"])
        .status(0)
        .json();
    assert_eq!(status["state"], "waiting_for_approval");
    assert_eq!(status["gate"]["step"], case.id);
    let resume_with = status["gate"]["resume_with"].as_str().unwrap_or("");
    assert!(
        resume_with.contains(case.approval[0]) && resume_with.contains(case.id),
        "{status}"
    );
    Test::in_dir(&dir)
        .args(["resume"])
        .args(case.approval.iter().copied())
        .status(0);
    assert_eq!(trace(&dir), ["before", "after"]);
    let r = gate_record(&dir);
    assert_eq!(r["outcome"], "passed");
    assert_eq!(r["how"], "pre-approved");
}

macro_rules! nobody_can_answer {
    ($($name:ident: $case:expr, $nobody:expr;)*) => {
        $(
            #[test]
            fn $name() {
                stops_at_the_gate_and_resumes_with_the_approval(&$case, $nobody);
            }
        )*
    };
}

nobody_can_answer! {
    confirm_with_stdin_dev_null: CONFIRM_CASE, Nobody::DevNull;
    confirm_with_a_closed_pipe: CONFIRM_CASE, Nobody::ClosedPipe;
    confirm_with_a_pipe_that_never_writes: CONFIRM_CASE, Nobody::SilentPipe;
    confirm_without_a_controlling_terminal: CONFIRM_CASE, Nobody::Setsid;
    confirm_in_a_terminal_with_ci_set: CONFIRM_CASE, Nobody::CiTerminal;
    severe_confirm_with_stdin_dev_null: SEVERE_CASE, Nobody::DevNull;
    severe_confirm_with_a_closed_pipe: SEVERE_CASE, Nobody::ClosedPipe;
    severe_confirm_with_a_pipe_that_never_writes: SEVERE_CASE, Nobody::SilentPipe;
    severe_confirm_without_a_controlling_terminal: SEVERE_CASE, Nobody::Setsid;
    severe_confirm_in_a_terminal_with_ci_set: SEVERE_CASE, Nobody::CiTerminal;
    checklist_with_stdin_dev_null: CHECKLIST_CASE, Nobody::DevNull;
    checklist_with_a_closed_pipe: CHECKLIST_CASE, Nobody::ClosedPipe;
    checklist_with_a_pipe_that_never_writes: CHECKLIST_CASE, Nobody::SilentPipe;
    checklist_without_a_controlling_terminal: CHECKLIST_CASE, Nobody::Setsid;
    checklist_in_a_terminal_with_ci_set: CHECKLIST_CASE, Nobody::CiTerminal;
    signoff_with_stdin_dev_null: SIGNOFF_CASE, Nobody::DevNull;
    signoff_with_a_closed_pipe: SIGNOFF_CASE, Nobody::ClosedPipe;
    signoff_with_a_pipe_that_never_writes: SIGNOFF_CASE, Nobody::SilentPipe;
    signoff_without_a_controlling_terminal: SIGNOFF_CASE, Nobody::Setsid;
    signoff_in_a_terminal_with_ci_set: SIGNOFF_CASE, Nobody::CiTerminal;
}

#[test]
fn signers_given_in_advance_are_named_again_in_the_resume_command() {
    let out = test_with(SIGNOFF)
        .args(["--signoff", "leads=dan:Dev Lead"])
        .status(7);
    out.stderr_has("needs 2 signer(s) (1 given)")
        .stderr_has("--signoff 'leads=dan:Dev Lead' --signoff 'leads=NAME:QA Lead'");
    Test::in_dir(&out.dir)
        .args(["resume", "--signoff", "leads=dan:Dev Lead"])
        .args(["--signoff", "leads=quinn:QA Lead"])
        .status(0);
    assert_eq!(trace(&out.dir), ["before", "after"]);
}

#[test]
fn a_wrong_word_given_in_advance_refuses_a_severe_confirm() {
    // A word the run learns only as it goes (here from a capture) cannot be checked before it
    // starts: the gate refuses it.
    let gate = "id = \"go\"\nconfirm = \"Really deploy?\"\ntype_to_confirm = \"{{ target }}\"";
    let rb = runbook(gate).replace(
        "run = \"echo before >> trace\"",
        "run = \"echo before >> trace; echo production\"\ncapture = \"target\"",
    );
    let out = Test::new()
        .runbook(&rb)
        .args(["run", "runbook.toml", "--approve", "go=staging"])
        .status(5);
    out.stderr_has("`--approve go=staging` does not give the word `production`");
    assert_eq!(gate_record(&out.dir)["outcome"], "refused");
    // A word known before the run is checked before anything runs.
    let out = test_with(SEVERE)
        .args(["--approve", "go=staging"])
        .status(2);
    out.stderr_has(
        "`--approve go=staging`: confirm `go` asks for the word `production`, not `staging`",
    );
    assert!(trace(&out.dir).is_empty());
}

#[test]
fn yes_never_satisfies_a_severe_confirm_or_a_signoff() {
    for (gate, says) in [
        (
            SEVERE,
            "`--yes` never satisfies a confirm that asks for a word",
        ),
        (SIGNOFF, "`--yes` never satisfies a sign-off"),
    ] {
        let out = test_with(gate).args(["--yes"]).status(7);
        out.stderr_has(says);
        assert_eq!(trace(&out.dir), ["before"]);
    }
}

#[test]
fn no_input_never_prompts_even_in_a_terminal() {
    let t = test_with(CONFIRM).args(["--no-input"]);
    let mut tty = Tty::run(&t);
    tty.shows("confirm `go` asks: Deploy to production?")
        .finishes_with(7);
}

/// A deadline counts from when the gate first stopped the run, across resumes: an approval
/// given after an `abort` deadline passed is too late; a `hold` gate still takes it.
#[test]
fn a_deadline_keeps_running_while_the_run_waits_for_approval() {
    for (then, late_status) in [("abort", 5), ("rollback", 9), ("hold", 0)] {
        let rb = format!(
            r#"[runbook]
name = "d"
[[phases]]
id = "p"
title = "P"
[[phases.steps]]
id = "go"
confirm = "Go?"
deadline = "1s"
on_deadline = "{then}"
[[phases.steps]]
id = "after"
run = "echo after >> trace"
"#
        );
        let first = Test::new()
            .runbook(&rb)
            .args(["run", "runbook.toml"])
            .status(7);
        std::thread::sleep(std::time::Duration::from_millis(1300));
        let late = Test::in_dir(&first.dir)
            .args(["resume", "--approve", "go"])
            .status(late_status);
        if then == "hold" {
            assert!(first.dir.join("trace").exists());
        } else {
            late.stderr_has("within its deadline of 1s");
            assert!(!first.dir.join("trace").exists());
        }
    }
}

#[test]
fn approval_flags_naming_no_gate_are_refused_before_anything_runs() {
    let rb = r#"[runbook]
name = "a"
[[phases]]
id = "p"
title = "P"
[[phases.steps]]
id = "first"
run = "echo ran >> trace"
[[phases.steps]]
id = "promote"
confirm = "Promote?"
[[phases.steps]]
id = "preflight"
checklist = ["one", "two"]
"#;
    let out = Test::new()
        .runbook(rb)
        .args([
            "run",
            "runbook.toml",
            "--approve",
            "promte",
            "--check",
            "preflight:2",
            "--check",
            "one",
            "--signoff",
            "promote=a:b",
        ])
        .status(2);
    out.stderr_has("the runbook has no confirm gate `promte`; did you mean `promote`?")
        .stderr_has("`promote` is a confirm, not a signoff");
    assert!(!out.dir.join("trace").exists());
}

/// Gates whose pre-approvals are easy to get wrong: a sign-off with an approvers list, a
/// checklist with a templated item, a severe confirm whose word is a variable.
const TYPO_PRONE: &str = r#"[runbook]
name = "typos"

[vars]
target = "production"

[[phases]]
id = "p"
title = "P"
on_failure = "abort"

[[phases.steps]]
id = "first"
run = "echo first >> trace"

[[phases.steps]]
id = "list"
checklist = ["Backups verified", "Deploy to {{ target }} announced"]

[[phases.steps]]
id = "go"
signoff = "Release"
roles = ["Deployment Lead", { role = "QA Lead", approvers = ["quinn"] }]

[[phases.steps]]
id = "promote"
confirm = "Promote?"
type_to_confirm = "{{ target }}"

[[rollback]]
id = "undo-list"
checklist = ["Traffic drained"]
"#;

#[test]
fn pre_approvals_a_gate_would_refuse_are_refused_before_anything_runs() {
    let out = Test::new()
        .runbook(TYPO_PRONE)
        .args(["run", "runbook.toml"])
        .args(["--signoff", "go=Alice:Deployment Owner"])
        .args(["--signoff", "go=bob:QA Lead"])
        .args(["--signoff", "go=Carol:deployment lead"])
        .args(["--signoff", "go=dave"])
        .args(["--check", "list:3", "--check", "list:0"])
        .args(["--check", "Backups verifed"])
        .args(["--approve", "promote=prodution", "--approve", "list"])
        .status(2);
    out.stderr_has("`--signoff go=Alice:Deployment Owner`: sign-off `go` has no role `Deployment Owner`; did you mean `Deployment Lead`? (its roles: `Deployment Lead`, `QA Lead`)")
        .stderr_has("`--signoff go=bob:QA Lead`: bob may not sign as QA Lead (allowed: quinn)")
        .stderr_has("sign-off `go` has no role `deployment lead`; did you mean `Deployment Lead`?")
        .stderr_has("`--signoff go=dave`: give the signer as `--signoff go=NAME:ROLE`, with ROLE one of `Deployment Lead`, `QA Lead`")
        .stderr_has("`--check list:3`: checklist `list` has no item 3; its items are 1 `Backups verified`, 2 `Deploy to production announced` (give `--check list:N` with N from 1 to 2, or `--check list` for all)")
        .stderr_has("`--check list:0`: checklist `list` has no item 0")
        .stderr_has("`--check Backups verifed`: no checklist item reads `Backups verifed`, and no checklist is called so; did you mean `Backups verified`?")
        .stderr_has("`--approve promote=prodution`: confirm `promote` asks for the word `production`, not `prodution`")
        .stderr_has("`--approve list`: `list` is a checklist, not a confirm");
    assert!(trace(&out.dir).is_empty());
    assert!(!out.dir.join(".rollout/runs").exists(), "a run was started");
    // The same flags, right: an item by its rendered text, each signer in a role of the gate.
    let out = Test::new()
        .runbook(TYPO_PRONE)
        .args(["run", "runbook.toml"])
        .args(["--signoff", "go=Alice:Deployment Lead"])
        .args(["--signoff", "go=quinn:QA Lead"])
        .args(["--check", "list:1"])
        .args(["--check", "Deploy to production announced"])
        .args(["--approve", "promote=production"])
        .status(0);
    assert_eq!(trace(&out.dir), ["first"]);
}

#[test]
fn pre_approvals_on_resume_and_rollback_are_checked_before_anything_runs() {
    let first = Test::new()
        .runbook(TYPO_PRONE)
        .args(["run", "runbook.toml", "--check", "list"])
        .status(7);
    first.stderr_has("sign-off `go` needs 2 signer(s)");
    // A typo on resume leaves the run waiting where it was, to be resumed right.
    let out = Test::in_dir(&first.dir)
        .args(["resume", "--signoff", "go=Alice:Deployment Owner"])
        .args(["--signoff", "go=quinn:QA Lead"])
        .status(2);
    out.stderr_has("sign-off `go` has no role `Deployment Owner`");
    let status = Test::in_dir(&first.dir)
        .args(["status", "--format", "json"])
        .status(0)
        .json();
    assert_eq!(status["state"], "waiting_for_approval", "{status:#}");
    Test::in_dir(&first.dir)
        .args(["resume", "--signoff", "go=Alice:Deployment Lead"])
        .args([
            "--signoff",
            "go=quinn:QA Lead",
            "--approve",
            "promote=production",
        ])
        .status(0);
    // The runbook's own rollback: its checklist's items are checked too.
    let out = Test::new()
        .runbook(TYPO_PRONE)
        .args(["rollback", "runbook.toml", "--no-run", "--yes"])
        .args(["--check", "undo-list:2"])
        .status(2);
    out.stderr_has("`--check undo-list:2`: checklist `undo-list` has no item 2; its items are 1 `Traffic drained`");
    assert!(!out.dir.join(".rollout/runs").exists());
}

/// A step whose failure action is `ask`, failing in a terminal: the operator picks an answer.
fn ask_after_failure(choice_downs: usize) -> (Test, Tty) {
    let rb = r#"[runbook]
name = "ask"

[[phases]]
id = "p1"
title = "Release"
[[phases.steps]]
id = "flaky"
run = "echo flaky >> trace; exit 1"
on_failure = "ask"
[[phases.steps]]
id = "after"
run = "echo after >> trace"
[[phases.rollback]]
id = "undo"
run = "echo undo >> trace"
"#;
    let t = Test::new()
        .runbook(rb)
        .env("ROLLOUT_OPERATOR", "olga")
        .args(["run", "runbook.toml"]);
    let mut tty = Tty::run(&t);
    tty.shows("step `flaky` failed")
        .shows("What now?")
        .shows("roll back")
        .keys(&DOWN.repeat(choice_downs))
        .keys(ENTER);
    (t, tty)
}

#[test]
fn an_operator_asked_after_a_failure_can_skip_the_step() {
    let (t, mut tty) = ask_after_failure(2);
    tty.finishes_with(0);
    assert_eq!(trace(t.path()), ["flaky", "after"]);
}

#[test]
fn an_operator_asked_after_a_failure_can_choose_to_roll_back() {
    let (t, mut tty) = ask_after_failure(4);
    tty.shows("Rollback plan")
        .shows("Roll back 1 phase now (p1)?")
        .keys("y")
        .shows("rollback complete")
        .finishes_with(10);
    assert_eq!(trace(t.path()), ["flaky", "undo"]);
}
