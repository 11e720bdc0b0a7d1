//! Human gates: confirm, checklist and sign-off. In a terminal they ask through a [`Prompter`];
//! where nobody can answer they are satisfied only by approvals given on the command line, and
//! otherwise the run stops and waits: a gate never hangs and never passes by default.

use crate::exec::engine::Interrupts;
use crate::plan::{Action, PlanStep};
use crate::runbook::model::Step;

/// Answers given in advance on the command line.
#[derive(Debug, Clone, Default)]
pub struct Approvals {
    /// `--yes`: plain confirms only.
    pub yes: bool,
    /// `--approve GATE` or `--approve GATE=WORD` (severe confirms need the word).
    pub approve: Vec<String>,
    /// `--check GATE` (every item), `--check GATE:N`, or `--check "item text"`.
    pub checks: Vec<String>,
    /// `--signoff GATE=NAME:ROLE`.
    pub signoffs: Vec<String>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum GateOutcome {
    /// Passed, with who and how, for the record.
    Passed(String),
    /// Answered "no".
    Refused(String),
    /// Nobody can answer here and no approval was given.
    Waiting(String),
    Interrupted(i32),
}

/// The seam for asking a person. The terminal implementation uses dialoguer; `None` means
/// nobody can answer (the question was cancelled, or input ended).
pub trait Prompter {
    fn choose(&mut self, prompt: &str, options: &[&str]) -> Option<usize>;
    fn confirm(&mut self, prompt: &str) -> Option<bool>;
    fn input(&mut self, prompt: &str) -> Option<String>;
    fn checklist(&mut self, prompt: &str, items: &[String]) -> Option<Vec<bool>>;
}

pub fn evaluate(
    step: &Step,
    shown: &PlanStep,
    approvals: &Approvals,
    prompter: Option<&mut (dyn Prompter + '_)>,
    operator: &str,
    interrupts: &Interrupts,
) -> GateOutcome {
    if let Some(signal) = interrupts.pending() {
        return GateOutcome::Interrupted(signal);
    }
    let id = step.id.get_ref().as_str();
    match &shown.action {
        Action::Confirm {
            question,
            type_to_confirm,
        } => confirm(
            id,
            question,
            type_to_confirm.as_deref(),
            approvals,
            prompter,
            operator,
        ),
        Action::Checklist { items } => checklist(id, items, approvals, prompter, operator),
        Action::Signoff {
            title,
            roles,
            required,
            exclude_operator,
        } => signoff(
            id,
            title,
            roles,
            *required,
            *exclude_operator,
            approvals,
            prompter,
            operator,
        ),
        _ => GateOutcome::Refused("not a gate".into()),
    }
}

fn confirm(
    id: &str,
    question: &str,
    word: Option<&str>,
    approvals: &Approvals,
    prompter: Option<&mut (dyn Prompter + '_)>,
    operator: &str,
) -> GateOutcome {
    if let Some(word) = word {
        let wanted = format!("{id}={word}");
        if approvals.approve.contains(&wanted) {
            return GateOutcome::Passed(format!(
                "confirmed by {operator} with --approve {id}=<word> (pre-approved)"
            ));
        }
        let Some(p) = prompter else {
            return GateOutcome::Waiting(format!(
                "confirm `{id}` needs the operator to type `{word}`: {question}; give `--approve {id}={word}` to approve it in advance"
            ));
        };
        return match p.input(&format!("{question}\nType `{word}` to continue")) {
            Some(typed) if typed.trim() == word => GateOutcome::Passed(format!(
                "confirmed by {operator} typing `{word}` (interactive)"
            )),
            Some(_) => {
                GateOutcome::Refused(format!("{operator} did not type `{word}`: not confirmed"))
            }
            None => GateOutcome::Refused("no answer: not confirmed".into()),
        };
    }
    if approvals.yes || approvals.approve.iter().any(|a| a == id) {
        let how = if approvals.yes { "--yes" } else { "--approve" };
        return GateOutcome::Passed(format!("confirmed by {operator} with {how} (pre-approved)"));
    }
    let Some(p) = prompter else {
        return GateOutcome::Waiting(format!(
            "confirm `{id}`: {question}; give `--approve {id}` (or `--yes`) to approve it in advance"
        ));
    };
    match p.confirm(question) {
        Some(true) => GateOutcome::Passed(format!("confirmed by {operator} (interactive)")),
        Some(false) => GateOutcome::Refused(format!("{operator} answered no")),
        None => GateOutcome::Refused("no answer: not confirmed".into()),
    }
}

fn checklist(
    id: &str,
    items: &[String],
    approvals: &Approvals,
    prompter: Option<&mut (dyn Prompter + '_)>,
    operator: &str,
) -> GateOutcome {
    let pre: Vec<bool> = items
        .iter()
        .enumerate()
        .map(|(i, item)| {
            approvals
                .checks
                .iter()
                .any(|c| c == id || *c == format!("{id}:{}", i + 1) || c == item)
        })
        .collect();
    let (ticked, how) = if pre.iter().all(|t| *t) {
        (pre, "pre-approved with --check")
    } else if let Some(p) = prompter {
        match p.checklist(
            &format!("checklist `{id}`: tick every item that is done"),
            items,
        ) {
            Some(t) => (t, "interactive"),
            None => return GateOutcome::Refused("no answer: checklist not completed".into()),
        }
    } else {
        let open: Vec<String> = items
            .iter()
            .zip(&pre)
            .filter(|(_, t)| !**t)
            .map(|(i, _)| format!("`{i}`"))
            .collect();
        return GateOutcome::Waiting(format!(
            "checklist `{id}` has {} open item(s): {}; give `--check {id}` (all items) or `--check {id}:N` per item",
            open.len(),
            open.join(", ")
        ));
    };
    let open: Vec<&String> = items
        .iter()
        .zip(&ticked)
        .filter(|(_, t)| !**t)
        .map(|(i, _)| i)
        .collect();
    if open.is_empty() {
        GateOutcome::Passed(format!(
            "all {} items ticked by {operator} ({how})",
            items.len()
        ))
    } else {
        GateOutcome::Refused(format!(
            "checklist not complete: open: {}",
            open.iter()
                .map(|i| format!("`{i}`"))
                .collect::<Vec<_>>()
                .join(", ")
        ))
    }
}

#[allow(clippy::too_many_arguments)]
fn signoff(
    id: &str,
    title: &str,
    roles: &[crate::plan::RoleView],
    required: usize,
    exclude_operator: bool,
    approvals: &Approvals,
    prompter: Option<&mut (dyn Prompter + '_)>,
    operator: &str,
) -> GateOutcome {
    let mut signed: Vec<(String, String)> = Vec::new();
    let mut problems = Vec::new();
    let prefix = format!("{id}=");
    for s in approvals
        .signoffs
        .iter()
        .filter_map(|s| s.strip_prefix(&prefix))
    {
        let Some((name, role)) = s.split_once(':') else {
            problems.push(format!("`--signoff {id}={s}` is not NAME:ROLE"));
            continue;
        };
        match check_signer(
            name.trim(),
            role.trim(),
            roles,
            &signed,
            exclude_operator,
            operator,
        ) {
            Ok(()) => signed.push((name.trim().to_string(), role.trim().to_string())),
            Err(why) => problems.push(why),
        }
    }
    if !problems.is_empty() {
        return GateOutcome::Refused(format!("sign-off `{id}` refused: {}", problems.join("; ")));
    }
    let how = if signed.len() >= required {
        "pre-approved with --signoff"
    } else if let Some(p) = prompter {
        while signed.len() < required {
            let open: Vec<&str> = roles
                .iter()
                .map(|r| r.role.as_str())
                .filter(|r| !signed.iter().any(|(_, s)| s == r))
                .collect();
            let Some(choice) = p.choose(
                &format!(
                    "{title}: {} of {required} signed. Role of the next signer",
                    signed.len()
                ),
                &open,
            ) else {
                return GateOutcome::Refused(format!(
                    "sign-off `{id}` not completed: {} of {required} signed",
                    signed.len()
                ));
            };
            let role = open[choice].to_string();
            let Some(name) = p.input(&format!("Name of the {role} signing")) else {
                return GateOutcome::Refused(format!("sign-off `{id}` not completed"));
            };
            match check_signer(
                name.trim(),
                &role,
                roles,
                &signed,
                exclude_operator,
                operator,
            ) {
                Ok(()) => signed.push((name.trim().to_string(), role)),
                Err(why) => return GateOutcome::Refused(format!("sign-off `{id}` refused: {why}")),
            }
        }
        "interactive"
    } else {
        return GateOutcome::Waiting(format!(
            "sign-off `{id}` needs {required} signer(s) ({} given); give `--signoff {id}=NAME:ROLE` for each (roles: {})",
            signed.len(),
            roles
                .iter()
                .map(|r| r.role.as_str())
                .collect::<Vec<_>>()
                .join(", ")
        ));
    };
    let who: Vec<String> = signed.iter().map(|(n, r)| format!("{n} ({r})")).collect();
    GateOutcome::Passed(format!(
        "signed by {} ({how}; run by {operator})",
        who.join(", ")
    ))
}

fn check_signer(
    name: &str,
    role: &str,
    roles: &[crate::plan::RoleView],
    signed: &[(String, String)],
    exclude_operator: bool,
    operator: &str,
) -> Result<(), String> {
    if name.is_empty() {
        return Err("a signer needs a name".into());
    }
    let Some(r) = roles.iter().find(|r| r.role == role) else {
        return Err(format!("`{role}` is not a role of this sign-off"));
    };
    if let Some(allowed) = &r.approvers {
        if !allowed.iter().any(|a| a == name) {
            return Err(format!(
                "{name} may not sign as {role} (allowed: {})",
                allowed.join(", ")
            ));
        }
    }
    if signed.iter().any(|(n, _)| n == name) {
        return Err(format!("{name} has already signed; one person signs once"));
    }
    if signed.iter().any(|(_, r)| r == role) {
        return Err(format!("the {role} has already signed"));
    }
    if exclude_operator && name == operator {
        return Err(format!(
            "{name} started this run and cannot sign it (separation of duties)"
        ));
    }
    Ok(())
}
