//! Asking a person, in a terminal, with dialoguer. Only built when stdin and stderr are
//! terminals, stdin is the controlling terminal of a foreground process group, `CI` is unset
//! and `--no-input` was not given; everywhere else there is no prompter and gates wait for
//! approvals given on the command line.
//!
//! Each question runs on its own thread while the caller watches the clock and the signals, so
//! a deadline or a SIGTERM stops the waiting even though dialoguer blocks on the keyboard. A
//! question given up that way leaves its reader blocked on the terminal: the terminal settings
//! are put back and no further question is asked in this process.
//!
//! Questions, choices and items come from the runbook and its values: their control characters
//! are shown escaped (see [`crate::escape`]), like everything else rollout shows.

use std::io::IsTerminal;
use std::sync::mpsc::{self, RecvTimeoutError};
use std::time::{Duration, Instant};

use console::Term;
use dialoguer::theme::ColorfulTheme;
use dialoguer::{Confirm, Input, MultiSelect, Select};
use nix::sys::termios::{self, SetArg, Termios};

use crate::exec::engine::Interrupts;
use crate::exec::gates::{NoAnswer, Prompter, Reply};

pub struct TerminalPrompter {
    interrupts: Interrupts,
    deadline: Option<Instant>,
    /// A question was given up while its reader still holds the terminal.
    abandoned: bool,
}

/// Whether a person can answer questions here.
pub fn can_prompt(no_input: bool) -> bool {
    let ci = std::env::var_os("CI").is_some_and(|v| !v.is_empty() && v != "false" && v != "0");
    if no_input || ci || !std::io::stdin().is_terminal() || !std::io::stderr().is_terminal() {
        return false;
    }
    // A terminal that is not ours to read (no controlling terminal after `setsid`, or a
    // background job) would block or stop the process instead of asking anyone.
    nix::unistd::tcgetpgrp(std::io::stdin()).is_ok_and(|fg| fg == nix::unistd::getpgrp())
}

impl TerminalPrompter {
    /// A prompter, if a person can answer here.
    pub fn if_interactive(no_input: bool, interrupts: &Interrupts) -> Option<Self> {
        can_prompt(no_input).then(|| TerminalPrompter {
            interrupts: interrupts.clone(),
            deadline: None,
            abandoned: false,
        })
    }

    /// Asks on a thread; stops waiting on a signal or at the deadline.
    fn ask<T: Send + 'static>(
        &mut self,
        question: impl FnOnce(&ColorfulTheme) -> dialoguer::Result<Option<T>> + Send + 'static,
    ) -> Reply<T> {
        if self.abandoned {
            return Err(NoAnswer::Closed(
                "an earlier question was given up and still holds the terminal".into(),
            ));
        }
        if let Some(signal) = self.interrupts.pending() {
            return Err(NoAnswer::Interrupted(signal));
        }
        if self.interrupts.step_stopped() {
            return Err(NoAnswer::Stopped);
        }
        if self.deadline.is_some_and(|d| Instant::now() >= d) {
            return Err(NoAnswer::TimedOut);
        }
        let saved = termios::tcgetattr(std::io::stdin()).ok();
        let (tx, rx) = mpsc::channel();
        let spawned = std::thread::Builder::new()
            .name("prompt".into())
            .spawn(move || {
                let _ = tx.send(question(&ColorfulTheme::default()));
            });
        if let Err(e) = spawned {
            return Err(NoAnswer::Closed(format!("cannot start the prompt: {e}")));
        }
        loop {
            match rx.recv_timeout(Duration::from_millis(25)) {
                Ok(Ok(Some(answer))) => return Ok(answer),
                Ok(Ok(None)) => return Err(NoAnswer::Dismissed),
                Ok(Err(dialoguer::Error::IO(e))) => {
                    // dialoguer hides the cursor and does not show it again on an error.
                    let _ = Term::stderr().show_cursor();
                    eprintln!();
                    return Err(if e.kind() == std::io::ErrorKind::Interrupted {
                        NoAnswer::Interrupted(self.interrupts.pending().unwrap_or(2))
                    } else {
                        NoAnswer::Closed(e.to_string())
                    });
                }
                Err(RecvTimeoutError::Disconnected) => {
                    self.give_up(saved.as_ref());
                    return Err(NoAnswer::Closed("the prompt stopped".into()));
                }
                Err(RecvTimeoutError::Timeout) => {
                    if let Some(signal) = self.interrupts.pending() {
                        self.give_up(saved.as_ref());
                        return Err(NoAnswer::Interrupted(signal));
                    }
                    // A tripped abort criterion ends the question like a signal does.
                    if self.interrupts.step_stopped() {
                        self.give_up(saved.as_ref());
                        return Err(NoAnswer::Stopped);
                    }
                    if self.deadline.is_some_and(|d| Instant::now() >= d) {
                        self.give_up(saved.as_ref());
                        return Err(NoAnswer::TimedOut);
                    }
                }
            }
        }
    }

    /// Leaves the terminal as it was before the question, with its reader still blocked.
    fn give_up(&mut self, saved: Option<&Termios>) {
        self.abandoned = true;
        if let Some(t) = saved {
            let _ = termios::tcsetattr(std::io::stdin(), SetArg::TCSANOW, t);
        }
        let _ = Term::stderr().show_cursor();
        eprintln!();
    }
}

/// A question's text as the terminal gets it: control characters escaped.
fn shown(text: &str) -> String {
    crate::escape::text(text).into_owned()
}

impl Prompter for TerminalPrompter {
    fn choose(&mut self, prompt: &str, options: &[&str]) -> Reply<usize> {
        let prompt = shown(prompt);
        let options: Vec<String> = options.iter().map(|o| shown(o)).collect();
        self.ask(move |theme| {
            Select::with_theme(theme)
                .with_prompt(prompt)
                .items(&options)
                .default(0)
                .interact_opt()
        })
    }

    fn confirm(&mut self, prompt: &str) -> Reply<bool> {
        let prompt = shown(prompt);
        self.ask(move |theme| {
            Confirm::with_theme(theme)
                .with_prompt(prompt)
                .default(false)
                .interact_opt()
        })
    }

    fn input(&mut self, prompt: &str) -> Reply<String> {
        let prompt = shown(prompt);
        self.ask(move |theme| {
            Input::<String>::with_theme(theme)
                .with_prompt(prompt)
                .allow_empty(true)
                .interact_text()
                .map(Some)
        })
    }

    fn checklist(&mut self, prompt: &str, items: &[String], ticked: &[bool]) -> Reply<Vec<bool>> {
        let prompt = format!("{} (space to tick, enter when done)", shown(prompt));
        let items: Vec<String> = items.iter().map(|i| shown(i)).collect();
        let ticked = ticked.to_vec();
        let count = items.len();
        let picked = self.ask(move |theme| {
            MultiSelect::with_theme(theme)
                .with_prompt(prompt)
                .items(&items)
                .defaults(&ticked)
                .interact_opt()
        })?;
        Ok((0..count).map(|i| picked.contains(&i)).collect())
    }

    fn tell(&mut self, message: &str) {
        let _ = Term::stderr().write_line(&format!("  {}", shown(message)));
    }

    fn set_deadline(&mut self, deadline: Option<Instant>) {
        self.deadline = deadline;
    }
}
