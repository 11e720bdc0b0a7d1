//! Asking a person, in a terminal, with dialoguer. Only built when stdin and stderr are
//! terminals, stdin is the controlling terminal of a foreground process group, `CI` is unset
//! and `--no-input` was not given; everywhere else there is no prompter and gates wait for
//! approvals given on the command line.
//!
//! Each question is asked by a process of its own (this binary, started as `rollout __prompt`
//! with the question), while this one watches the clock and the signals: a deadline, a SIGTERM
//! or a tripped abort criterion ends the question by ending that process, and puts the terminal
//! back as it was. Nothing is left reading the terminal, so the next question (the rollback's
//! confirmation after an abort criterion cut a gate short, say) is asked like any other. A
//! thread could not be stopped that way: blocked on the keyboard, it would take the next keys.
//!
//! Questions, choices and items come from the runbook and its values: their control characters
//! are shown escaped (see [`crate::escape`]), like everything else rollout shows.

use std::io::{IsTerminal, Read};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use console::Term;
use dialoguer::theme::ColorfulTheme;
use dialoguer::{Confirm, Input, MultiSelect, Select};
use nix::sys::termios::{self, SetArg, Termios};
use serde::{Deserialize, Serialize};

use crate::exec::gates::{NoAnswer, Prompter, Reply};
use crate::exec::interrupts::Interrupts;

/// The first argument that makes this binary ask one question (see [`serve_if_asked`]).
const PROMPT_ARG: &str = "__prompt";

pub struct TerminalPrompter {
    interrupts: Interrupts,
    deadline: Option<Instant>,
}

/// Whether a person can answer questions here: `no_input` says nobody may (`--no-input`, or
/// `CI` set, as the settings have it), else stdin and stderr must be our terminal.
pub fn can_prompt(no_input: bool) -> bool {
    if no_input || !std::io::stdin().is_terminal() || !std::io::stderr().is_terminal() {
        return false;
    }
    // A terminal that is not ours to read (no controlling terminal after `setsid`, or a
    // background job) would block or stop the process instead of asking anyone.
    nix::unistd::tcgetpgrp(std::io::stdin()).is_ok_and(|fg| fg == nix::unistd::getpgrp())
}

/// One question, as the asking process receives it.
#[derive(Debug, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
enum Question {
    Choose {
        prompt: String,
        options: Vec<String>,
    },
    Confirm {
        prompt: String,
    },
    Input {
        prompt: String,
    },
    Checklist {
        prompt: String,
        items: Vec<String>,
        ticked: Vec<bool>,
    },
}

#[derive(Debug, Serialize, Deserialize)]
struct Request {
    question: Question,
    /// The run's process: the question ends with it, even if it is killed outright.
    parent: i32,
    /// Whether the question may use colours (the asking process has not read the settings).
    colors: bool,
}

/// What the asking process prints on its stdout.
#[derive(Debug, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
enum Answer {
    Choice(usize),
    Yes(bool),
    Text(String),
    Ticked(Vec<usize>),
    Dismissed,
    Failed(String),
}

/// When this process was started to ask one question, asks it, prints the answer and exits.
/// Called first thing in `main`.
pub fn serve_if_asked() {
    let mut args = std::env::args_os().skip(1);
    if args.next().is_none_or(|a| a != PROMPT_ARG) {
        return;
    }
    let answer = match args
        .next()
        .and_then(|a| a.into_string().ok())
        .and_then(|a| serde_json::from_str::<Request>(&a).ok())
    {
        Some(request) => {
            // Nothing may be left reading the terminal once the run is gone, however it went.
            let _ = nix::sys::prctl::set_pdeathsig(nix::sys::signal::Signal::SIGKILL);
            if nix::unistd::getppid().as_raw() != request.parent {
                std::process::exit(1);
            }
            console::set_colors_enabled_stderr(request.colors);
            ask_here(request.question)
        }
        None => Answer::Failed("the prompt was started without a question".into()),
    };
    println!("{}", serde_json::to_string(&answer).unwrap_or_default());
    std::process::exit(0);
}

/// Asks `question` in this process, at the terminal.
fn ask_here(question: Question) -> Answer {
    let theme = ColorfulTheme::default();
    let answer = match question {
        Question::Choose { prompt, options } => Select::with_theme(&theme)
            .with_prompt(prompt)
            .items(&options)
            .default(0)
            .interact_opt()
            .map(|a| a.map(Answer::Choice)),
        Question::Confirm { prompt } => Confirm::with_theme(&theme)
            .with_prompt(prompt)
            .default(false)
            .interact_opt()
            .map(|a| a.map(Answer::Yes)),
        Question::Input { prompt } => Input::<String>::with_theme(&theme)
            .with_prompt(prompt)
            .allow_empty(true)
            .interact_text()
            .map(|a| Some(Answer::Text(a))),
        Question::Checklist {
            prompt,
            items,
            ticked,
        } => MultiSelect::with_theme(&theme)
            .with_prompt(prompt)
            .items(&items)
            .defaults(&ticked)
            .interact_opt()
            .map(|a| a.map(Answer::Ticked)),
    };
    match answer {
        Ok(Some(answer)) => answer,
        Ok(None) => Answer::Dismissed,
        Err(dialoguer::Error::IO(e)) => {
            // dialoguer hides the cursor and does not show it again on an error.
            let _ = Term::stderr().show_cursor();
            Answer::Failed(e.to_string())
        }
    }
}

impl TerminalPrompter {
    /// A prompter, if a person can answer here.
    pub fn if_interactive(no_input: bool, interrupts: &Interrupts) -> Option<Self> {
        can_prompt(no_input).then(|| TerminalPrompter {
            interrupts: interrupts.clone(),
            deadline: None,
        })
    }

    /// Asks `question` through a process of its own; stops it on a signal, a tripped abort
    /// criterion or the deadline.
    fn ask<T>(&mut self, question: Question, take: impl FnOnce(Answer) -> Option<T>) -> Reply<T> {
        if let Some(signal) = self.interrupts.pending() {
            return Err(NoAnswer::Interrupted(signal));
        }
        if self.interrupts.step_stopped() {
            return Err(NoAnswer::Stopped);
        }
        if self.deadline.is_some_and(|d| Instant::now() >= d) {
            return Err(NoAnswer::TimedOut);
        }
        let request = Request {
            question,
            parent: nix::unistd::getpid().as_raw(),
            colors: console::colors_enabled_stderr(),
        };
        let saved = termios::tcgetattr(std::io::stdin()).ok();
        // `/proc/self/exe` is this very binary, even if its file was replaced meanwhile.
        let spawned = Command::new("/proc/self/exe")
            .arg(PROMPT_ARG)
            .arg(serde_json::to_string(&request).unwrap_or_default())
            .stdin(Stdio::inherit())
            .stdout(Stdio::piped())
            .stderr(Stdio::inherit())
            .spawn();
        let mut child = match spawned {
            Ok(child) => child,
            Err(e) => return Err(NoAnswer::Closed(format!("cannot start the prompt: {e}"))),
        };
        let status = loop {
            match child.try_wait() {
                Ok(Some(status)) => break status,
                Ok(None) => {}
                Err(e) => {
                    stop(&mut child, saved.as_ref());
                    return Err(NoAnswer::Closed(format!("the prompt was lost: {e}")));
                }
            }
            let ended = if let Some(signal) = self.interrupts.pending() {
                Some(NoAnswer::Interrupted(signal))
            } else if self.interrupts.step_stopped() {
                // A tripped abort criterion ends the question like a signal does.
                Some(NoAnswer::Stopped)
            } else if self.deadline.is_some_and(|d| Instant::now() >= d) {
                Some(NoAnswer::TimedOut)
            } else {
                None
            };
            if let Some(no) = ended {
                stop(&mut child, saved.as_ref());
                return Err(no);
            }
            std::thread::sleep(Duration::from_millis(25));
        };
        let mut out = String::new();
        if let Some(mut pipe) = child.stdout.take() {
            let _ = pipe.read_to_string(&mut out);
        }
        if let Some(signal) = std::os::unix::process::ExitStatusExt::signal(&status) {
            restore(saved.as_ref());
            return Err(self.ended_by_signal(signal));
        }
        match serde_json::from_str::<Answer>(out.trim()) {
            Ok(Answer::Dismissed) => Err(NoAnswer::Dismissed),
            Ok(Answer::Failed(why)) => {
                restore(saved.as_ref());
                eprintln!();
                Err(NoAnswer::Closed(why))
            }
            Ok(answer) => take(answer).ok_or_else(|| {
                NoAnswer::Closed("the prompt gave an answer of another kind".into())
            }),
            Err(_) => {
                restore(saved.as_ref());
                Err(NoAnswer::Closed(format!("the prompt ended ({status})")))
            }
        }
    }

    /// Ctrl-C at the prompt (the terminal was in raw mode, so the asking process read it as a
    /// key and stopped itself with SIGINT): the same as a Ctrl-C anywhere else in the run.
    fn ended_by_signal(&self, signal: i32) -> NoAnswer {
        if signal != nix::sys::signal::Signal::SIGINT as i32 {
            return NoAnswer::Closed(format!("the prompt was stopped by signal {signal}"));
        }
        // A Ctrl-C typed while the terminal was in line mode reached this process too.
        let wait_for = |limit: Duration| {
            let start = Instant::now();
            while start.elapsed() < limit {
                if let Some(s) = self.interrupts.pending() {
                    return Some(s);
                }
                std::thread::sleep(Duration::from_millis(5));
            }
            None
        };
        if let Some(s) = wait_for(Duration::from_millis(100)) {
            return NoAnswer::Interrupted(s);
        }
        let _ = nix::sys::signal::raise(nix::sys::signal::Signal::SIGINT);
        NoAnswer::Interrupted(wait_for(Duration::from_secs(2)).unwrap_or(2))
    }
}

/// Ends the asking process and puts the terminal back as it was before the question.
fn stop(child: &mut std::process::Child, saved: Option<&Termios>) {
    let _ = child.kill();
    let _ = child.wait();
    restore(saved);
    eprintln!();
}

fn restore(saved: Option<&Termios>) {
    if let Some(t) = saved {
        let _ = termios::tcsetattr(std::io::stdin(), SetArg::TCSANOW, t);
    }
    let _ = Term::stderr().show_cursor();
}

/// A question's text as the terminal gets it: control characters escaped.
fn shown(text: &str) -> String {
    crate::escape::text(text).into_owned()
}

impl Prompter for TerminalPrompter {
    fn choose(&mut self, prompt: &str, options: &[&str]) -> Reply<usize> {
        let question = Question::Choose {
            prompt: shown(prompt),
            options: options.iter().map(|o| shown(o)).collect(),
        };
        self.ask(question, |a| match a {
            Answer::Choice(i) if i < options.len() => Some(i),
            _ => None,
        })
    }

    fn confirm(&mut self, prompt: &str) -> Reply<bool> {
        let question = Question::Confirm {
            prompt: shown(prompt),
        };
        self.ask(question, |a| match a {
            Answer::Yes(yes) => Some(yes),
            _ => None,
        })
    }

    fn input(&mut self, prompt: &str) -> Reply<String> {
        let question = Question::Input {
            prompt: shown(prompt),
        };
        self.ask(question, |a| match a {
            Answer::Text(text) => Some(text),
            _ => None,
        })
    }

    fn checklist(&mut self, prompt: &str, items: &[String], ticked: &[bool]) -> Reply<Vec<bool>> {
        let count = items.len();
        let question = Question::Checklist {
            prompt: format!("{} (space to tick, enter when done)", shown(prompt)),
            items: items.iter().map(|i| shown(i)).collect(),
            ticked: ticked.to_vec(),
        };
        self.ask(question, |a| match a {
            Answer::Ticked(picked) => Some((0..count).map(|i| picked.contains(&i)).collect()),
            _ => None,
        })
    }

    fn tell(&mut self, message: &str) {
        let _ = Term::stderr().write_line(&format!("  {}", shown(message)));
    }

    fn set_deadline(&mut self, deadline: Option<Instant>) {
        self.deadline = deadline;
    }
}
