//! Approvals given on the command line (`--approve`, `--check`, `--signoff`), checked against
//! the gates they name before anything runs. A typo found only when the run reaches its gate
//! refuses the gate there, and with `on_failure = "abort"` ends a run that cannot be resumed;
//! here it is a usage error with the valid choices and a "did you mean". The rules are the
//! gates' own (see [`super::gates`]): what passes here is what the gate would take.
//!
//! Names, kinds, roles and item numbers come from the runbook; item texts and the word a severe
//! confirm asks for are compared as the run will render them, when that is known before the run
//! (they read no capture and no secret).

use std::collections::HashMap;

use super::gates::{Approvals, Signoff, Who};
use crate::plan::{Action, Plan, RoleView};
use crate::runbook::Loaded;
use crate::runbook::diagnostic::suggest;
use crate::runbook::model::StepKind;
use crate::runbook::template::Tpl;

/// A gate of the runbook, as approvals see it.
struct Gate<'a> {
    id: &'a str,
    kind: Kind<'a>,
}

/// The word a confirm asks for.
#[derive(Clone, Copy)]
enum Word<'a> {
    /// A plain confirm asks for none.
    None,
    Known(&'a str),
    /// It reads a capture or a secret: known only during the run.
    DuringRun,
}

enum Kind<'a> {
    Confirm {
        word: Word<'a>,
    },
    /// Each item's text, `None` when it is known only during the run.
    Checklist {
        items: Vec<Option<&'a str>>,
    },
    Signoff {
        roles: Vec<RoleView>,
        required: usize,
        exclude_operator: bool,
    },
}

impl Kind<'_> {
    fn name(&self) -> &'static str {
        match self {
            Kind::Confirm { .. } => "confirm",
            Kind::Checklist { .. } => "checklist",
            Kind::Signoff { .. } => "signoff",
        }
    }
}

/// Every problem with the approvals given, one sentence each; empty when they all name
/// something the gates would take. `plan` is the run's plan as previewed (secrets masked,
/// captures as placeholders), when it could be built.
pub fn check(
    loaded: &Loaded,
    plan: Option<&Plan>,
    approvals: &Approvals,
    who: &Who,
    run_id: Option<&str>,
) -> Vec<String> {
    let gates = gates(loaded, plan);
    let mut problems = Vec::new();
    for a in &approvals.approve {
        let (id, word) = match a.split_once('=') {
            Some((id, word)) => (id, Some(word)),
            None => (a.as_str(), None),
        };
        if let Some(Kind::Confirm { word: asked }) =
            find(&gates, "--approve", a, id, "confirm", &mut problems)
        {
            if let Some(p) = confirm_problem(a, id, word, *asked) {
                problems.push(p);
            }
        }
    }
    for c in &approvals.checks {
        if let Some(p) = check_problem(&gates, c) {
            problems.push(p);
        }
    }
    for f in &approvals.signoff_files {
        if let Some(p) = signoff_file_problem(&gates, f, run_id) {
            problems.push(p);
        }
    }
    let mut signers: HashMap<&str, Vec<(String, String)>> = HashMap::new();
    for s in &approvals.signoffs {
        let id = s.split_once('=').map_or(s.as_str(), |(id, _)| id);
        let Some(Kind::Signoff {
            roles,
            required,
            exclude_operator,
        }) = find(&gates, "--signoff", s, id, "signoff", &mut problems)
        else {
            continue;
        };
        if loaded.runbook.meta.signatures_required() {
            problems.push(format!(
                "`--signoff {s}`: `{}` requires signed approvals, and a typed name does not count; each signer signs with their SSH key (`rollout approve RUN --gate {id}`), or the operator gives their signed file with `--signoff-file FILE`",
                loaded.source.name
            ));
            continue;
        }
        let gate = Signoff {
            id,
            title: "",
            roles,
            required: *required,
            exclude_operator: *exclude_operator,
            digest: None,
            signed: None,
        };
        let so_far = signers.entry(id).or_default();
        match signoff_problem(&gate, s, so_far, who) {
            Ok(signer) => so_far.push(signer),
            Err(p) => problems.push(p),
        }
    }
    problems
}

/// What is wrong with `--signoff-file FILE` before the run: a file that is no approval, names
/// another run, or a gate that is no sign-off. The rest (its signature, its signer, the phase
/// it signed) is checked by the gate.
fn signoff_file_problem(
    gates: &[Gate<'_>],
    file: &std::path::Path,
    run_id: Option<&str>,
) -> Option<String> {
    use crate::state::approval::{Request, read_file};
    let shown = file.display();
    let delivered = match read_file(file) {
        Ok(Some(d)) => d,
        Ok(None) => {
            return Some(format!(
                "`--signoff-file {shown}`: it is a request that nobody has signed yet; the approver signs it (`ssh-keygen -Y sign -n rollout -f KEY {shown}` writes `{shown}.sig`)"
            ));
        }
        Err(e) => return Some(format!("`--signoff-file {shown}`: {e}")),
    };
    let request = match Request::parse(&delivered.message) {
        Ok(r) => r,
        Err(e) => return Some(format!("`--signoff-file {shown}`: not an approval: {e}")),
    };
    if let Err(e) = crate::sshsig::parse(&delivered.signature) {
        return Some(format!("`--signoff-file {shown}`: {e}"));
    }
    match run_id {
        None => {
            return Some(format!(
                "`--signoff-file {shown}`: it approves run `{}`, and `rollout run` starts a new run; signed approvals are given to the run they name: `rollout resume {} --signoff-file {shown}`",
                request.run, request.run
            ));
        }
        Some(id) if id != request.run => {
            return Some(format!(
                "`--signoff-file {shown}`: it approves run `{}`, not this run `{id}`: an approval cannot be used for another run",
                request.run
            ));
        }
        Some(_) => {}
    }
    let mut problems = Vec::new();
    let flag = format!("--signoff-file {shown}");
    find(
        gates,
        &flag,
        &request.gate,
        &request.gate,
        "signoff",
        &mut problems,
    );
    problems.pop()
}

/// The gate `id` when it is of kind `want`; otherwise the problem is added.
fn find<'g>(
    gates: &'g [Gate<'_>],
    flag: &str,
    value: &str,
    id: &str,
    want: &str,
    problems: &mut Vec<String>,
) -> Option<&'g Kind<'g>> {
    match gates.iter().find(|g| g.id == id) {
        Some(g) if g.kind.name() == want => Some(&g.kind),
        Some(g) => {
            problems.push(format!(
                "`{flag} {value}`: `{id}` is a {}, not a {want}",
                g.kind.name()
            ));
            None
        }
        None => {
            let hint = suggest(
                id,
                gates.iter().filter(|g| g.kind.name() == want).map(|g| g.id),
            )
            .map(|c| format!("; did you mean `{c}`?"))
            .unwrap_or_default();
            problems.push(format!(
                "`{flag} {value}`: the runbook has no {want} gate `{id}`{hint}"
            ));
            None
        }
    }
}

fn confirm_problem(given: &str, id: &str, word: Option<&str>, asked: Word<'_>) -> Option<String> {
    match (word, asked) {
        (Some(_), Word::None) => Some(format!(
            "`--approve {given}`: confirm `{id}` asks for no word; give `--approve {id}`"
        )),
        (None, Word::Known(asked)) => Some(format!(
            "`--approve {given}`: confirm `{id}` asks for a word to be typed; give `--approve {id}={asked}`"
        )),
        (None, Word::DuringRun) => Some(format!(
            "`--approve {given}`: confirm `{id}` asks for a word to be typed; give `--approve {id}=WORD`"
        )),
        (Some(word), Word::Known(asked)) if word != asked => Some(format!(
            "`--approve {given}`: confirm `{id}` asks for the word `{asked}`, not `{word}`"
        )),
        _ => None,
    }
}

/// What is wrong with `--check c`: it must name a checklist, an item of one by number (from 1),
/// or an item by its text, as the gate matches them.
fn check_problem(gates: &[Gate<'_>], c: &str) -> Option<String> {
    let checklists: Vec<(&str, &[Option<&str>])> = gates
        .iter()
        .filter_map(|g| match &g.kind {
            Kind::Checklist { items } => Some((g.id, items.as_slice())),
            _ => None,
        })
        .collect();
    let takes = |(id, items): &(&str, &[Option<&str>])| {
        c == *id
            || items
                .iter()
                .enumerate()
                .any(|(i, item)| c == format!("{id}:{}", i + 1) || *item == Some(c))
    };
    if checklists.iter().any(takes) {
        return None;
    }
    let listed = |items: &[Option<&str>]| {
        items
            .iter()
            .enumerate()
            .map(|(i, item)| match item {
                Some(text) => format!("{} `{text}`", i + 1),
                None => format!("{} (known during the run)", i + 1),
            })
            .collect::<Vec<_>>()
            .join(", ")
    };
    // `GATE:N`
    if let Some((id, n)) = c
        .rsplit_once(':')
        .and_then(|(id, n)| Some((id, n.parse::<usize>().ok()?)))
    {
        if let Some((_, items)) = checklists.iter().find(|(cid, _)| *cid == id) {
            return Some(format!(
                "`--check {c}`: checklist `{id}` has no item {n}; its items are {} (give `--check {id}:N` with N from 1 to {}, or `--check {id}` for all)",
                listed(items),
                items.len()
            ));
        }
        if let Some(g) = gates.iter().find(|g| g.id == id) {
            return Some(format!(
                "`--check {c}`: `{id}` is a {}, not a checklist",
                g.kind.name()
            ));
        }
    }
    if let Some(g) = gates.iter().find(|g| g.id == c) {
        return Some(format!(
            "`--check {c}`: `{c}` is a {}, not a checklist",
            g.kind.name()
        ));
    }
    // An item whose text is known only during the run might be this one.
    if checklists
        .iter()
        .any(|(_, items)| items.iter().any(Option::is_none))
    {
        return None;
    }
    let candidates = checklists
        .iter()
        .flat_map(|(id, items)| std::iter::once(*id).chain(items.iter().flatten().copied()));
    let hint = suggest(c, candidates)
        .map(|s| format!("; did you mean `{s}`?"))
        .unwrap_or_default();
    let all = if checklists.is_empty() {
        "the runbook has no checklist".to_string()
    } else {
        checklists
            .iter()
            .map(|(id, items)| format!("checklist `{id}`: {}", listed(items)))
            .collect::<Vec<_>>()
            .join("; ")
    };
    Some(format!(
        "`--check {c}`: no checklist item reads `{c}`, and no checklist is called so{hint} ({all})"
    ))
}

/// The signer `--signoff s` gives, or what the sign-off would refuse.
fn signoff_problem(
    gate: &Signoff<'_>,
    s: &str,
    signed: &[(String, String)],
    who: &Who,
) -> Result<(String, String), String> {
    let id = gate.id;
    let given = s.split_once('=').map_or("", |(_, g)| g);
    let roles: Vec<&str> = gate.roles.iter().map(|r| r.role.as_str()).collect();
    let listed = roles
        .iter()
        .map(|r| format!("`{r}`"))
        .collect::<Vec<_>>()
        .join(", ");
    let Some((name, role)) = given.split_once(':') else {
        return Err(format!(
            "`--signoff {s}`: give the signer as `--signoff {id}=NAME:ROLE`, with ROLE one of {listed}"
        ));
    };
    let (name, role) = (name.trim(), role.trim());
    if !roles.contains(&role) {
        let hint = roles
            .iter()
            .find(|r| r.eq_ignore_ascii_case(role))
            .copied()
            .or_else(|| suggest(role, roles.iter().copied()))
            .map(|r| format!("; did you mean `{r}`?"))
            .unwrap_or_default();
        return Err(format!(
            "`--signoff {s}`: sign-off `{id}` has no role `{role}`{hint} (its roles: {listed})"
        ));
    }
    gate.check(name, role, signed, who)
        .map(|()| (name.to_string(), role.to_string()))
        .map_err(|why| format!("`--signoff {s}`: {why}"))
}

/// Every gate of the runbook (forward, gate and rollback steps), with what the plan renders.
fn gates<'a>(loaded: &'a Loaded, plan: Option<&'a Plan>) -> Vec<Gate<'a>> {
    let rendered: HashMap<&str, &Action> = plan
        .map(|plan| {
            plan.phases
                .iter()
                .flat_map(|ph| ph.steps.iter().chain(&ph.gate).chain(&ph.rollback))
                .chain(&plan.rollback)
                .map(|s| (s.id.as_str(), &s.action))
                .collect()
        })
        .unwrap_or_default();
    let rb = &loaded.runbook;
    // Names whose values a preview does not have: captures, secrets and the run's own.
    let unknown: Vec<&str> = std::iter::once("run")
        .chain(
            rb.all_steps()
                .filter_map(|(_, s)| s.capture.as_ref().map(|c| c.get_ref().as_str()))
                .chain(
                    rb.vars
                        .iter()
                        .filter(|v| v.secret.is_some())
                        .map(|v| v.name.get_ref().as_str()),
                ),
        )
        .collect();
    let known = |t: Tpl| {
        !loaded
            .templates
            .reads(t)
            .iter()
            .any(|n| unknown.contains(n))
    };
    let mut out = Vec::new();
    for (_, step) in rb.all_steps() {
        let id = step.id.get_ref().as_str();
        let action = rendered.get(id).copied();
        let kind = match &step.kind {
            StepKind::Confirm {
                type_to_confirm, ..
            } => Kind::Confirm {
                word: match (type_to_confirm, action) {
                    (None, _) => Word::None,
                    (
                        Some(t),
                        Some(Action::Confirm {
                            type_to_confirm: Some(w),
                            ..
                        }),
                    ) if known(*t) => Word::Known(w.as_str()),
                    (Some(_), _) => Word::DuringRun,
                },
            },
            StepKind::Checklist { items } => Kind::Checklist {
                items: items
                    .iter()
                    .enumerate()
                    .map(|(i, t)| match action {
                        Some(Action::Checklist { items: shown }) if known(*t) => {
                            shown.get(i).map(String::as_str)
                        }
                        _ => None,
                    })
                    .collect(),
            },
            StepKind::Signoff(s) => Kind::Signoff {
                roles: RoleView::all(&s.roles),
                required: *s.required.get_ref(),
                exclude_operator: s.exclude_operator,
            },
            _ => continue,
        };
        out.push(Gate { id, kind });
    }
    out
}
