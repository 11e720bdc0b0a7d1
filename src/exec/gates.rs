//! Human gates: confirm, checklist and sign-off. In a terminal they ask through a [`Prompter`];
//! where nobody can answer they are satisfied only by approvals given on the command line, and
//! otherwise the run stops and waits: a gate never hangs and never passes by default. A
//! question that was dismissed, interrupted or cut off by a deadline is never taken as consent.
//! Every answer comes back with who gave it, when and how, for the journal.

use std::fmt::Write as _;
use std::time::{Duration, Instant};

use crate::exec::interrupts::Interrupts;
use crate::plan::{Action, RoleView};
use crate::state::now;
use crate::state::record::{GateAnswer, GateKind, How};

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
    /// `--signoff-file FILE`: signed approvals, read where the gate they name is reached.
    pub signoff_files: Vec<std::path::PathBuf>,
}

/// The signed approvals a sign-off has to hand, checked by the run (see `exec::signatures`).
#[derive(Debug, Clone, Default)]
pub struct SignedIntake {
    /// Typed names are not enough (`signatures = "required"`): only signed approvals count,
    /// and nobody is asked for a name.
    pub required: bool,
    /// Approvals whose signature verified for this run, this gate and this phase as shown.
    pub verified: Vec<Verified>,
    /// One line each: approvals that do not count, and why.
    pub refused: Vec<String>,
    /// How an approver signs this gate: `rollout approve RUN --gate GATE`.
    pub how_to_sign: String,
}

/// A signed approval whose signature verified: who signed (the allowed-signers principal of
/// their key) and as which role.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Verified {
    pub principal: String,
    pub role: String,
    pub signed: crate::state::approval::Signed,
}

/// Who is answering: for the record and for separation of duties.
#[derive(Debug, Clone, Default)]
pub struct Who {
    /// The name given for this session: `ROLLOUT_OPERATOR`, else `operator` in the user
    /// config, else the OS user.
    pub operator: String,
    /// The OS account rollout runs as.
    pub os_user: String,
    /// The operator who started the run (another person may resume it).
    pub started_by: String,
}

/// How a gate was answered, for the journal and the step's result.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Answered {
    pub kind: GateKind,
    pub answers: Vec<GateAnswer>,
    /// One sentence for people.
    pub summary: String,
}

impl Answered {
    fn new(kind: GateKind) -> Self {
        Answered {
            kind,
            answers: Vec::new(),
            summary: String::new(),
        }
    }

    fn add(&mut self, subject: &str, answer: &str, name: &str, how: How) {
        self.answers.push(GateAnswer {
            subject: subject.to_string(),
            answer: answer.to_string(),
            name: name.to_string(),
            how,
            at: now(),
            signed: None,
        });
    }

    fn add_signed(&mut self, v: &Verified) {
        self.answers.push(GateAnswer {
            subject: v.role.clone(),
            answer: "signed".into(),
            name: v.principal.clone(),
            how: How::Signed,
            at: now(),
            signed: Some(v.signed.clone()),
        });
    }

    fn said(mut self, summary: String) -> Self {
        self.summary = summary;
        self
    }

    /// `interactive` when anyone answered at the terminal; `signed` when every signer signed
    /// with their key.
    pub fn how(&self) -> How {
        if self.answers.iter().any(|a| a.how == How::Interactive) {
            How::Interactive
        } else if !self.answers.is_empty() && self.answers.iter().all(|a| a.how == How::Signed) {
            How::Signed
        } else {
            How::PreApproved
        }
    }
}

/// A gate nobody here can answer, and what would satisfy it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Needed {
    pub kind: GateKind,
    /// Names the gate, what it asks and how to satisfy it.
    pub message: String,
    /// Flags that satisfy it on `rollout resume`, shell-quoted.
    pub satisfy_with: Vec<String>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum GateOutcome {
    Passed(Answered),
    /// Answered, and the answer does not let the run go on.
    Refused(Answered),
    /// Nobody can answer here and no approval was given.
    Waiting(Needed),
    /// The gate's deadline passed before it was answered: the answers given so far, and what
    /// would still satisfy it.
    DeadlinePassed(Answered, Needed),
    Interrupted(i32),
    /// An abort criterion tripped while the gate waited: the phase applies its action.
    Stopped,
}

/// Why a question got no answer.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum NoAnswer {
    /// The person dismissed the question (Esc or `q`): not an answer, never consent.
    Dismissed,
    /// Ctrl-C or SIGTERM while asking.
    Interrupted(i32),
    /// Nobody can answer any more: the terminal closed or failed.
    Closed(String),
    /// The deadline set with [`Prompter::set_deadline`] passed.
    TimedOut,
    /// An abort criterion tripped while the question waited.
    Stopped,
}

/// What came back from one question.
pub type Reply<T> = Result<T, NoAnswer>;

/// The seam for asking a person. The terminal implementation uses dialoguer.
pub trait Prompter {
    fn choose(&mut self, prompt: &str, options: &[&str]) -> Reply<usize>;
    /// A yes/no question whose default (plain Enter) is no.
    fn confirm(&mut self, prompt: &str) -> Reply<bool>;
    fn input(&mut self, prompt: &str) -> Reply<String>;
    /// Items to tick; `ticked` are ticked already. Returns each item's state.
    fn checklist(&mut self, prompt: &str, items: &[String], ticked: &[bool]) -> Reply<Vec<bool>>;
    /// Tells the person something without asking (a refused signer).
    fn tell(&mut self, message: &str);
    /// Questions asked from now on stop waiting at `deadline` (`None`: no limit).
    fn set_deadline(&mut self, deadline: Option<Instant>);
}

/// One gate step, rendered as people see it.
pub struct Gate<'a> {
    pub id: &'a str,
    pub action: &'a Action,
    /// How long a person has to answer it at the terminal.
    pub deadline: Option<Duration>,
    /// Sign-offs: the digest of the phase content shown to the signers.
    pub digest: Option<&'a str>,
    /// Sign-offs: the signed approvals at hand, when the runbook takes them.
    pub signed: Option<&'a SignedIntake>,
}

pub fn evaluate(
    gate: &Gate,
    approvals: &Approvals,
    who: &Who,
    mut prompter: Option<&mut (dyn Prompter + '_)>,
    interrupts: &Interrupts,
) -> GateOutcome {
    if let Some(signal) = interrupts.pending() {
        return GateOutcome::Interrupted(signal);
    }
    if interrupts.step_stopped() {
        return GateOutcome::Stopped;
    }
    if let (Some(p), Some(d)) = (prompter.as_deref_mut(), gate.deadline) {
        p.set_deadline(Some(Instant::now() + d));
    }
    let id = gate.id;
    let outcome = match gate.action {
        Action::Confirm {
            question,
            type_to_confirm: Some(word),
        } => severe_confirm(id, question, word, approvals, who, prompter.as_deref_mut()),
        Action::Confirm { question, .. } => {
            confirm(id, question, approvals, who, prompter.as_deref_mut())
        }
        Action::Checklist { items } => {
            checklist(id, items, approvals, who, prompter.as_deref_mut())
        }
        Action::Signoff {
            title,
            roles,
            required,
            exclude_operator,
            ..
        } => signoff(
            &Signoff {
                id,
                title,
                roles,
                required: *required,
                exclude_operator: *exclude_operator,
                digest: gate.digest,
                signed: gate.signed,
            },
            approvals,
            who,
            prompter.as_deref_mut(),
        ),
        _ => GateOutcome::Refused(
            Answered::new(GateKind::Confirm).said(format!("step `{id}` is not a gate")),
        ),
    };
    if let Some(p) = prompter {
        p.set_deadline(None);
    }
    outcome
}

/// A value for a command-line flag, quoted for a shell when it needs it.
fn flag(value: &str) -> String {
    if !value.is_empty()
        && value
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b"_./:@%+,=-".contains(&b))
    {
        value.to_string()
    } else {
        crate::runbook::template::shell_quote(value)
    }
}

/// The outcome when a question of gate `id` got no answer.
fn unanswered(
    no: NoAnswer,
    mut so_far: Answered,
    subject: &str,
    who: &Who,
    id: &str,
    needed: Needed,
) -> GateOutcome {
    let kind = so_far.kind.label();
    match no {
        NoAnswer::Interrupted(signal) => GateOutcome::Interrupted(signal),
        NoAnswer::Stopped => GateOutcome::Stopped,
        NoAnswer::Closed(why) => GateOutcome::Waiting(Needed {
            message: format!("{} (the terminal stopped answering: {why})", needed.message),
            ..needed
        }),
        NoAnswer::Dismissed => {
            so_far.add(subject, "dismissed", &who.operator, How::Interactive);
            let summary = format!("{kind} `{id}`: the question was dismissed; not approved");
            GateOutcome::Refused(so_far.said(summary))
        }
        NoAnswer::TimedOut => {
            so_far.add(subject, "no answer", &who.operator, How::Interactive);
            let summary = format!("{kind} `{id}`: no answer before the deadline");
            GateOutcome::DeadlinePassed(so_far.said(summary), needed)
        }
    }
}

fn confirm(
    id: &str,
    question: &str,
    approvals: &Approvals,
    who: &Who,
    prompter: Option<&mut (dyn Prompter + '_)>,
) -> GateOutcome {
    let mut answered = Answered::new(GateKind::Confirm);
    let op = &who.operator;
    if approvals.yes || approvals.approve.iter().any(|a| a == id) {
        let how = if approvals.yes { "--yes" } else { "--approve" };
        answered.add(question, "yes", op, How::PreApproved);
        return GateOutcome::Passed(
            answered.said(format!("confirmed by {op} with `{how}` (pre-approved)")),
        );
    }
    let needed = Needed {
        kind: GateKind::Confirm,
        message: format!(
            "confirm `{id}` asks: {question} Give `--approve {id}` (or `--yes`) to approve it"
        ),
        satisfy_with: vec![format!("--approve {}", flag(id))],
    };
    let Some(p) = prompter else {
        return GateOutcome::Waiting(needed);
    };
    match p.confirm(question) {
        Ok(true) => {
            answered.add(question, "yes", op, How::Interactive);
            GateOutcome::Passed(answered.said(format!("confirmed by {op} (interactive)")))
        }
        Ok(false) => {
            answered.add(question, "no", op, How::Interactive);
            GateOutcome::Refused(answered.said(format!("{op} answered no: not confirmed")))
        }
        Err(no) => unanswered(no, answered, question, who, id, needed),
    }
}

fn severe_confirm(
    id: &str,
    question: &str,
    word: &str,
    approvals: &Approvals,
    who: &Who,
    prompter: Option<&mut (dyn Prompter + '_)>,
) -> GateOutcome {
    let mut answered = Answered::new(GateKind::SevereConfirm);
    let op = &who.operator;
    let prefix = format!("{id}=");
    if let Some(given) = approvals
        .approve
        .iter()
        .rev()
        .find_map(|a| a.strip_prefix(&prefix))
    {
        answered.add(question, given, op, How::PreApproved);
        return if given == word {
            GateOutcome::Passed(answered.said(format!(
                "confirmed by {op} with `--approve {id}=<word>` (pre-approved)"
            )))
        } else {
            GateOutcome::Refused(answered.said(format!(
                "`--approve {id}={given}` does not give the word `{word}`: not confirmed"
            )))
        };
    }
    let yes_note = if approvals.yes {
        " (`--yes` never satisfies a confirm that asks for a word)"
    } else {
        ""
    };
    let needed = Needed {
        kind: GateKind::SevereConfirm,
        message: format!(
            "confirm `{id}` asks: {question} It needs the word `{word}` typed: give `--approve {id}={word}` to approve it{yes_note}"
        ),
        satisfy_with: vec![format!("--approve {}", flag(&format!("{id}={word}")))],
    };
    let Some(p) = prompter else {
        return GateOutcome::Waiting(needed);
    };
    match p.input(&format!("{question} Type `{word}` to confirm")) {
        Ok(typed) => {
            let typed = typed.trim();
            answered.add(question, typed, op, How::Interactive);
            if typed == word {
                GateOutcome::Passed(
                    answered.said(format!("confirmed by {op} typing `{word}` (interactive)")),
                )
            } else {
                GateOutcome::Refused(
                    answered.said(format!("{op} typed `{typed}`, not `{word}`: not confirmed")),
                )
            }
        }
        Err(no) => unanswered(no, answered, question, who, id, needed),
    }
}

fn checklist(
    id: &str,
    items: &[String],
    approvals: &Approvals,
    who: &Who,
    prompter: Option<&mut (dyn Prompter + '_)>,
) -> GateOutcome {
    let mut answered = Answered::new(GateKind::Checklist);
    let op = &who.operator;
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
    let open_of = |ticked: &[bool]| -> Vec<String> {
        items
            .iter()
            .zip(ticked)
            .filter(|(_, t)| !**t)
            .map(|(i, _)| format!("`{i}`"))
            .collect()
    };
    let (ticked, interactive) = if pre.iter().all(|t| *t) {
        (pre.clone(), false)
    } else {
        let open = open_of(&pre);
        let needed = Needed {
            kind: GateKind::Checklist,
            message: format!(
                "checklist `{id}` has {} open item(s): {}; give `--check {id}` (all items) or `--check {id}:N` per item",
                open.len(),
                open.join(", ")
            ),
            satisfy_with: vec![format!("--check {}", flag(id))],
        };
        let Some(p) = prompter else {
            return GateOutcome::Waiting(needed);
        };
        match p.checklist(
            &format!("checklist `{id}`: tick every item that is done"),
            items,
            &pre,
        ) {
            Ok(t) => (t, true),
            Err(no) => {
                return unanswered(no, answered, &format!("checklist `{id}`"), who, id, needed);
            }
        }
    };
    for ((item, t), was) in items.iter().zip(&ticked).zip(&pre) {
        let how = if interactive && !(*was && *t) {
            How::Interactive
        } else {
            How::PreApproved
        };
        answered.add(item, if *t { "ticked" } else { "open" }, op, how);
    }
    let open = open_of(&ticked);
    let how = if interactive {
        "interactive"
    } else {
        "pre-approved with `--check`"
    };
    if open.is_empty() {
        GateOutcome::Passed(
            answered.said(format!("all {} items ticked by {op} ({how})", items.len())),
        )
    } else {
        GateOutcome::Refused(answered.said(format!(
            "checklist `{id}` is not complete: {} of {} ticked by {op}; open: {}",
            items.len() - open.len(),
            items.len(),
            open.join(", ")
        )))
    }
}

pub(crate) struct Signoff<'a> {
    pub(crate) id: &'a str,
    pub(crate) title: &'a str,
    pub(crate) roles: &'a [RoleView],
    pub(crate) required: usize,
    pub(crate) exclude_operator: bool,
    pub(crate) digest: Option<&'a str>,
    pub(crate) signed: Option<&'a SignedIntake>,
}

impl Signoff<'_> {
    fn needed(&self, signed: &[(String, String)], approvals: &Approvals) -> Needed {
        let id = self.id;
        let open: Vec<&RoleView> = self
            .roles
            .iter()
            .filter(|r| !signed.iter().any(|(_, s)| *s == r.role))
            .collect();
        let roles: Vec<String> = open
            .iter()
            .map(|r| match &r.approvers {
                Some(a) => format!("`{}` (one of: {})", r.role, a.join(", ")),
                None => format!("`{}`", r.role),
            })
            .collect();
        let yes_note = if approvals.yes {
            " (`--yes` never satisfies a sign-off)"
        } else {
            ""
        };
        if let Some(intake) = self.signed.filter(|i| i.required) {
            let refused = if intake.refused.is_empty() {
                String::new()
            } else {
                format!("; not counted: {}", intake.refused.join("; "))
            };
            return Needed {
                kind: GateKind::Signoff,
                message: format!(
                    "sign-off `{id}` needs {} signed approval(s) ({} given) for: {}; roles open: {}. The runbook requires signatures: each approver signs with their SSH key, `{}` (or signs the request of `rollout approve --request` with `ssh-keygen -Y sign -n rollout`, and the operator gives it with `--signoff-file FILE`){refused}{yes_note}",
                    self.required,
                    signed.len(),
                    self.title,
                    roles.join(", "),
                    intake.how_to_sign
                ),
                satisfy_with: vec!["--signoff-file FILE".into()],
            };
        }
        Needed {
            kind: GateKind::Signoff,
            message: format!(
                "sign-off `{id}` needs {} signer(s) ({} given) for: {}. Give `--signoff {id}=NAME:ROLE` for each; roles open: {}{yes_note}",
                self.required,
                signed.len(),
                self.title,
                roles.join(", ")
            ),
            // The signers given so far must be given again: a resume starts from its own flags.
            satisfy_with: signed
                .iter()
                .map(|(name, role)| format!("{id}={name}:{role}"))
                .chain(
                    open.iter()
                        .take(self.required.saturating_sub(signed.len()))
                        .map(|r| format!("{id}=NAME:{}", r.role)),
                )
                .map(|v| format!("--signoff {}", flag(&v)))
                .collect(),
        }
    }

    /// Whether `name` may sign as `role`, after `signed`: also how approvals given on the
    /// command line are checked before the run (see `preapproval`).
    pub(crate) fn check(
        &self,
        name: &str,
        role: &str,
        signed: &[(String, String)],
        who: &Who,
    ) -> Result<(), String> {
        let same = |a: &str, b: &str| a.to_lowercase() == b.to_lowercase();
        if name.is_empty() {
            return Err("a signer needs a name".into());
        }
        let Some(r) = self.roles.iter().find(|r| r.role == role) else {
            return Err(format!("`{role}` is not a role of this sign-off"));
        };
        if let Some(allowed) = &r.approvers {
            if !allowed.iter().any(|a| same(a, name)) {
                return Err(format!(
                    "{name} may not sign as {role} (allowed: {})",
                    allowed.join(", ")
                ));
            }
        }
        if signed.iter().any(|(n, _)| same(n, name)) {
            return Err(format!("{name} has already signed; one person signs once"));
        }
        if signed.iter().any(|(_, r)| r == role) {
            return Err(format!("the {role} has already signed"));
        }
        if self.exclude_operator && (same(name, &who.operator) || same(name, &who.started_by)) {
            return Err(format!(
                "{name} is the operator of this run and cannot sign it (separation of duties)"
            ));
        }
        Ok(())
    }
}

fn signoff(
    s: &Signoff,
    approvals: &Approvals,
    who: &Who,
    prompter: Option<&mut (dyn Prompter + '_)>,
) -> GateOutcome {
    let id = s.id;
    let mut answered = Answered::new(GateKind::Signoff);
    let mut signed: Vec<(String, String)> = Vec::new();
    let mut problems = Vec::new();
    let mut by_key = 0;
    let mut not_counted: Vec<String> = Vec::new();
    if let Some(intake) = s.signed {
        for v in &intake.verified {
            match s.check(&v.principal, &v.role, &signed, who) {
                Ok(()) => {
                    answered.add_signed(v);
                    signed.push((v.principal.clone(), v.role.clone()));
                    by_key += 1;
                }
                Err(why) => {
                    answered.add(
                        &v.role,
                        &format!("refused: {why}"),
                        &v.principal,
                        How::Signed,
                    );
                    not_counted.push(format!(
                        "the approval of `{}` as {}: {why}",
                        v.principal, v.role
                    ));
                }
            }
        }
    }
    let typed_refused = s.signed.is_some_and(|i| i.required);
    let prefix = format!("{id}=");
    for given in approvals
        .signoffs
        .iter()
        .filter_map(|g| g.strip_prefix(&prefix))
    {
        if typed_refused {
            let why = format!(
                "`--signoff {id}={given}` is a typed name, and this runbook requires signed approvals"
            );
            answered.add(given, &format!("refused: {why}"), given, How::PreApproved);
            problems.push(why);
            continue;
        }
        let Some((name, role)) = given.split_once(':') else {
            problems.push(format!("`--signoff {id}={given}` is not NAME:ROLE"));
            answered.add(given, "refused: not NAME:ROLE", given, How::PreApproved);
            continue;
        };
        let (name, role) = (name.trim(), role.trim());
        match s.check(name, role, &signed, who) {
            Ok(()) => {
                answered.add(role, "signed", name, How::PreApproved);
                signed.push((name.to_string(), role.to_string()));
            }
            Err(why) => {
                answered.add(role, &format!("refused: {why}"), name, How::PreApproved);
                problems.push(why);
            }
        }
    }
    if !problems.is_empty() {
        let summary = format!("sign-off `{id}` refused: {}", problems.join("; "));
        return GateOutcome::Refused(answered.said(summary));
    }
    let mut interactive = false;
    if signed.len() < s.required {
        // Where signatures are required nobody is asked for a name: the run waits for them.
        let Some(p) = prompter.filter(|_| !typed_refused) else {
            let mut needed = s.needed(&signed, approvals);
            if !not_counted.is_empty() {
                let _ = write!(needed.message, "; not counted: {}", not_counted.join("; "));
            }
            return GateOutcome::Waiting(needed);
        };
        interactive = true;
        let shown = s
            .digest
            .map(|d| format!(" [content {}]", &d[..d.len().min(19)]))
            .unwrap_or_default();
        while signed.len() < s.required {
            let open: Vec<&str> = s
                .roles
                .iter()
                .map(|r| r.role.as_str())
                .filter(|r| !signed.iter().any(|(_, done)| done == r))
                .collect();
            let prompt = format!(
                "{}{shown}: {} of {} signed. Role of the next signer",
                s.title,
                signed.len(),
                s.required
            );
            let role = match p.choose(&prompt, &open) {
                Ok(i) => open[i].to_string(),
                Err(no) => {
                    let needed = s.needed(&signed, approvals);
                    return unanswered(no, answered, s.title, who, id, needed);
                }
            };
            let name = match p.input(&format!("Name of the {role} signing")) {
                Ok(name) => name.trim().to_string(),
                Err(no) => {
                    let needed = s.needed(&signed, approvals);
                    return unanswered(no, answered, &role, who, id, needed);
                }
            };
            match s.check(&name, &role, &signed, who) {
                Ok(()) => {
                    answered.add(&role, "signed", &name, How::Interactive);
                    signed.push((name, role));
                }
                Err(why) => {
                    p.tell(&format!("refused: {why}"));
                    answered.add(&role, &format!("refused: {why}"), &name, How::Interactive);
                }
            }
        }
    }
    let names: Vec<String> = signed.iter().map(|(n, r)| format!("{n} ({r})")).collect();
    let how = if interactive {
        "interactive"
    } else if by_key == signed.len() {
        "signed with their SSH keys, verified"
    } else {
        "pre-approved with `--signoff`"
    };
    GateOutcome::Passed(answered.said(format!(
        "signed by {} ({how}; run by {})",
        names.join(", "),
        who.operator
    )))
}

#[cfg(test)]
mod tests {
    use std::collections::VecDeque;

    use super::*;

    /// Answers from a script, one per question, in order.
    #[derive(Default)]
    struct Scripted {
        replies: VecDeque<Reply<String>>,
        told: Vec<String>,
    }

    impl Scripted {
        fn new(replies: impl IntoIterator<Item = Reply<&'static str>>) -> Self {
            Scripted {
                replies: replies.into_iter().map(|r| r.map(String::from)).collect(),
                told: Vec::new(),
            }
        }

        fn next(&mut self) -> Reply<String> {
            self.replies
                .pop_front()
                .unwrap_or_else(|| Err(NoAnswer::Closed("script ended".into())))
        }
    }

    impl Prompter for Scripted {
        fn choose(&mut self, _: &str, options: &[&str]) -> Reply<usize> {
            let pick = self.next()?;
            options
                .iter()
                .position(|o| *o == pick)
                .ok_or_else(|| NoAnswer::Closed(format!("no option {pick}")))
        }
        fn confirm(&mut self, _: &str) -> Reply<bool> {
            Ok(self.next()? == "y")
        }
        fn input(&mut self, _: &str) -> Reply<String> {
            self.next()
        }
        fn checklist(&mut self, _: &str, items: &[String], _: &[bool]) -> Reply<Vec<bool>> {
            let ticked = self.next()?;
            Ok(items.iter().map(|i| ticked.contains(i.as_str())).collect())
        }
        fn tell(&mut self, message: &str) {
            self.told.push(message.to_string());
        }
        fn set_deadline(&mut self, _: Option<Instant>) {}
    }

    fn who() -> Who {
        Who {
            operator: "bob".into(),
            os_user: "deploy".into(),
            started_by: "olga".into(),
        }
    }

    fn ask(action: &Action, approvals: &Approvals, p: &mut Scripted) -> GateOutcome {
        let gate = Gate {
            id: "g",
            action,
            deadline: None,
            digest: Some("sha256:0123456789abcdef"),
            signed: None,
        };
        evaluate(&gate, approvals, &who(), Some(p), &Interrupts::default())
    }

    fn signoff_action(exclude_operator: bool) -> Action {
        Action::Signoff {
            title: "Release".into(),
            roles: vec![
                RoleView {
                    role: "QA".into(),
                    approvers: None,
                },
                RoleView {
                    role: "Dev".into(),
                    approvers: None,
                },
            ],
            required: 2,
            exclude_operator,
            valid_for: None,
        }
    }

    #[test]
    fn no_kind_of_non_answer_is_consent() {
        let confirm = Action::Confirm {
            question: "Go?".into(),
            type_to_confirm: None,
        };
        let severe = Action::Confirm {
            question: "Go?".into(),
            type_to_confirm: Some("prod".into()),
        };
        let list = Action::Checklist {
            items: vec!["a".into()],
        };
        for action in [&confirm, &severe, &list, &signoff_action(false)] {
            for no in [
                NoAnswer::Dismissed,
                NoAnswer::Interrupted(2),
                NoAnswer::Closed("gone".into()),
                NoAnswer::TimedOut,
            ] {
                let mut p = Scripted::new([Err(no.clone())]);
                let outcome = ask(action, &Approvals::default(), &mut p);
                assert!(
                    !matches!(outcome, GateOutcome::Passed(_)),
                    "{no:?} passed {action:?}"
                );
            }
        }
    }

    #[test]
    fn a_terminal_that_stops_answering_leaves_the_gate_waiting_for_approval() {
        let mut p = Scripted::new([Ok("QA"), Ok("quinn")]);
        let GateOutcome::Waiting(needed) =
            ask(&signoff_action(false), &Approvals::default(), &mut p)
        else {
            panic!("not waiting");
        };
        assert!(
            needed.message.contains("(1 given)")
                && needed.message.contains("terminal stopped answering"),
            "{}",
            needed.message
        );
        assert_eq!(
            needed.satisfy_with,
            ["--signoff g=quinn:QA", "--signoff g=NAME:Dev"]
        );
    }

    #[test]
    fn whoever_started_or_resumes_the_run_cannot_sign_when_duties_are_separated() {
        for operator in ["olga", "BOB"] {
            let mut p = Scripted::new([Ok("QA"), Ok(operator), Err(NoAnswer::Dismissed)]);
            let GateOutcome::Refused(a) = ask(&signoff_action(true), &Approvals::default(), &mut p)
            else {
                panic!("{operator} could sign");
            };
            assert!(
                a.answers[0].answer.contains("separation of duties"),
                "{a:?}"
            );
            assert!(p.told[0].starts_with("refused:"), "{:?}", p.told);
        }
    }

    #[test]
    fn pre_approved_signers_and_people_at_the_terminal_sign_together() {
        let approvals = Approvals {
            signoffs: vec!["g=quinn:QA".into()],
            ..Approvals::default()
        };
        let mut p = Scripted::new([Ok("Dev"), Ok("dan")]);
        let GateOutcome::Passed(a) = ask(&signoff_action(true), &approvals, &mut p) else {
            panic!("not passed");
        };
        assert_eq!(a.how(), How::Interactive);
        assert_eq!(a.answers[0].how, How::PreApproved);
        assert_eq!(a.answers[1].how, How::Interactive);
    }
}
