//! Asking a person, in a terminal, with dialoguer. Only built when stdin and stderr are
//! terminals, `CI` is unset and `--no-input` was not given; everywhere else there is no prompter
//! and gates wait for approvals given on the command line.

use std::io::IsTerminal;

use dialoguer::theme::ColorfulTheme;
use dialoguer::{Confirm, Input, MultiSelect, Select};

use crate::exec::gates::Prompter;

pub struct TerminalPrompter {
    theme: ColorfulTheme,
}

impl TerminalPrompter {
    /// A prompter, if a person can answer here.
    pub fn if_interactive(no_input: bool) -> Option<Self> {
        let ci = std::env::var_os("CI").is_some_and(|v| !v.is_empty() && v != "false" && v != "0");
        (!no_input && !ci && std::io::stdin().is_terminal() && std::io::stderr().is_terminal())
            .then(|| TerminalPrompter {
                theme: ColorfulTheme::default(),
            })
    }
}

impl Prompter for TerminalPrompter {
    fn choose(&mut self, prompt: &str, options: &[&str]) -> Option<usize> {
        Select::with_theme(&self.theme)
            .with_prompt(prompt)
            .items(options)
            .default(0)
            .interact_opt()
            .ok()
            .flatten()
    }

    fn confirm(&mut self, prompt: &str) -> Option<bool> {
        Confirm::with_theme(&self.theme)
            .with_prompt(prompt)
            .default(false)
            .interact_opt()
            .ok()
            .flatten()
    }

    fn input(&mut self, prompt: &str) -> Option<String> {
        Input::<String>::with_theme(&self.theme)
            .with_prompt(prompt)
            .allow_empty(true)
            .interact_text()
            .ok()
    }

    fn checklist(&mut self, prompt: &str, items: &[String]) -> Option<Vec<bool>> {
        let picked = MultiSelect::with_theme(&self.theme)
            .with_prompt(format!("{prompt} (space to tick, enter when done)"))
            .items(items)
            .interact_opt()
            .ok()
            .flatten()?;
        Some((0..items.len()).map(|i| picked.contains(&i)).collect())
    }
}
