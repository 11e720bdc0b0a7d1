//! The lines a person sees for a step about to run (secrets masked by the renderer that made
//! the step): the terminal shows them under the step's header, the journal keeps a command's.

use crate::plan::Action;

/// The lines a person sees for a step about to run.
pub fn display_lines(action: &Action) -> Vec<String> {
    use crate::runbook::template::shell_quote;
    match action {
        Action::Run { command, .. } => command.trim_end().lines().map(String::from).collect(),
        Action::Kubectl { argv, .. } => vec![
            argv.iter()
                .map(|a| shell_quote(a))
                .collect::<Vec<_>>()
                .join(" "),
        ],
        Action::Confirm { question, .. } => vec![question.clone()],
        Action::Checklist { items } => items.iter().map(|i| format!("[ ] {i}")).collect(),
        Action::Signoff {
            title,
            roles,
            required,
            exclude_operator,
            ..
        } => {
            let roles: Vec<String> = roles
                .iter()
                .map(|r| match &r.approvers {
                    Some(a) => format!("{} ({})", r.role, a.join(", ")),
                    None => r.role.clone(),
                })
                .collect();
            let mut who = format!("{required} of {} sign: {}", roles.len(), roles.join(", "));
            if *exclude_operator {
                who.push_str("; the operator cannot sign");
            }
            vec![title.clone(), who]
        }
        Action::Metric {
            query, condition, ..
        } => vec![format!("{query} {condition}")],
        Action::Http { method, url, .. } => vec![format!("{method} {url}")],
        Action::Wait { duration } => vec![format!("wait {duration}")],
        Action::Pause { message } => vec![message.clone()],
        Action::Repeat { target, .. } => vec![format!("repeat {target}")],
    }
}
