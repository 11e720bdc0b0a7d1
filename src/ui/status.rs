//! Where runs stand, for `rollout status` and `rollout runs`: built from the state folded out
//! of each run's journal.

use std::fmt::Write;
use std::path::Path;

use serde::Serialize;

use crate::state::record::{AnsweredGate, Standing};
use crate::state::{Recovery, RunState};

#[derive(Debug, Serialize)]
pub struct GateView {
    pub step: String,
    /// `confirm`, `severe_confirm`, `checklist` or `signoff`.
    pub kind: crate::state::record::GateKind,
    pub message: String,
    /// The flags that satisfy it, shell-quoted.
    pub satisfy_with: Vec<String>,
    /// The whole command that resumes the run with them (`NAME` to be filled in for sign-offs).
    pub resume_with: String,
}

#[derive(Debug, Serialize)]
pub struct RunView {
    pub run_id: String,
    pub runbook: String,
    pub name: String,
    pub operator: String,
    pub started_at: String,
    /// `running`, `stopped`, `paused`, `waiting_for_approval`, `succeeded`, `failed`, `aborted`,
    /// `rolled_back`, `rollback_incomplete`; `never_started` (a run directory without a journal
    /// record) or `starting` (one being created right now).
    pub state: String,
    pub since: String,
    pub reason: Option<String>,
    pub phase: Option<String>,
    pub step: Option<String>,
    pub in_doubt: Option<String>,
    pub steps_done: usize,
    /// While the run waits at a gate: which one, and what satisfies it.
    pub gate: Option<GateView>,
    /// Every gate answered so far, oldest first.
    pub answers: Vec<AnsweredGate>,
    pub state_dir: String,
    pub journal_damaged: Option<String>,
    /// Whether the audit log is closed as it should be: it ends with a seal, or a process is
    /// writing it right now.
    pub sealed: bool,
    /// Signed approvals delivered to the run (`rollout approve`, files in its `approvals/`),
    /// one line each: the gate and role, who (when the allowed-signers file is at hand) and the
    /// key. The gate checks them in full when the run reaches or resumes it.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub approvals_delivered: Vec<String>,
}

impl RunView {
    pub fn new(s: &RunState, locked: bool, dir: &Path, recovery: Option<&Recovery>) -> Self {
        let (state, since, reason) = match &s.standing {
            Some(Standing::Running) if locked => ("running".to_string(), s.last_at.clone(), None),
            Some(Standing::Running) | None => (
                "stopped".to_string(),
                s.last_at.clone(),
                Some("rollout stopped without finishing the run (killed or crashed); `rollout resume` continues it".to_string()),
            ),
            Some(Standing::Paused { reason, since, waiting_for_approval }) => (
                if *waiting_for_approval { "waiting_for_approval" } else { "paused" }.to_string(),
                since.clone(),
                Some(reason.clone()),
            ),
            Some(Standing::Finished { status, reason, at }) => (
                serde_json::to_value(status).ok().and_then(|v| v.as_str().map(String::from)).unwrap_or_default(),
                at.clone(),
                reason.clone(),
            ),
        };
        let gate = s
            .waiting_gate
            .as_ref()
            .filter(|_| state == "waiting_for_approval")
            .map(|g| GateView {
                step: g.step.clone(),
                kind: g.kind,
                message: g.message.clone(),
                satisfy_with: g.satisfy_with.clone(),
                resume_with: format!(
                    "rollout resume {} {} {}",
                    s.run_id,
                    if crate::state::pg::is_url(&dir.display().to_string()) {
                        store_flags(&dir.display().to_string())
                    } else {
                        store_flags(&crate::runbook::template::shell_quote(
                            &dir.display().to_string(),
                        ))
                    },
                    g.satisfy_with.join(" ")
                ),
            });
        RunView {
            run_id: s.run_id.clone(),
            runbook: s.runbook.clone(),
            name: s.runbook_name.clone(),
            operator: s.operator.clone(),
            started_at: s.started_at.clone(),
            state,
            since,
            reason,
            phase: s.current.as_ref().map(|(p, _)| p.clone()),
            step: s.current.as_ref().map(|(_, st)| st.clone()),
            in_doubt: s.in_doubt.as_ref().map(|(_, st)| st.clone()),
            steps_done: s.done.len(),
            gate,
            answers: s.gate_answers.clone(),
            state_dir: dir.display().to_string(),
            journal_damaged: recovery
                .map(|r| format!("{} ({} good records)", r.detail, r.good_records)),
            sealed: s.sealed || locked,
            approvals_delivered: Vec::new(),
        }
    }

    /// A run whose directory exists but whose journal has no complete record. `starting` when
    /// a process holds the run right now (it is writing its first record).
    pub fn never_started(run_id: &str, dir: &Path, since: String, starting: bool) -> Self {
        let (state, reason) = if starting {
            (
                "starting",
                "a rollout process is creating this run right now".to_string(),
            )
        } else {
            (
                "never_started",
                format!(
                    "rollout stopped (killed) before the run's first journal record, so no step ran (or the journal was removed); nothing to resume: start a new run with `rollout run RUNBOOK`, and `rm -r {}` removes this one",
                    dir.join("runs").join(run_id).display()
                ),
            )
        };
        RunView {
            run_id: run_id.to_string(),
            runbook: String::new(),
            name: String::new(),
            operator: String::new(),
            started_at: String::new(),
            state: state.to_string(),
            since,
            reason: Some(reason),
            phase: None,
            step: None,
            in_doubt: None,
            steps_done: 0,
            gate: None,
            answers: Vec::new(),
            state_dir: dir.display().to_string(),
            journal_damaged: None,
            sealed: false,
            approvals_delivered: Vec::new(),
        }
    }
}

/// The flags that point at where a run is kept: `--state-dir DIR`, or `--state URL` for a
/// database (team mode).
fn store_flags(where_: &str) -> String {
    if crate::state::pg::is_url(where_) {
        format!("--state {where_}")
    } else {
        format!("--state-dir {where_}")
    }
}

pub fn render(v: &RunView) -> String {
    let mut o = String::new();
    let _ = writeln!(o, "run       {}", v.run_id);
    if matches!(v.state.as_str(), "never_started" | "starting") {
        let _ = writeln!(
            o,
            "state     {} since {}",
            v.state.replace('_', " "),
            v.since
        );
        if let Some(r) = &v.reason {
            let _ = writeln!(o, "why       {r}");
        }
        return o;
    }
    let _ = writeln!(o, "runbook   {} ({})", v.name, v.runbook);
    let _ = writeln!(o, "operator  {}", v.operator);
    let _ = writeln!(o, "started   {}", v.started_at);
    let _ = writeln!(
        o,
        "state     {} since {}",
        v.state.replace('_', " "),
        v.since
    );
    if let Some(r) = v
        .reason
        .as_ref()
        .filter(|r| v.gate.as_ref().is_none_or(|g| g.message != **r))
    {
        let _ = writeln!(o, "why       {r}");
    }
    if let (Some(p), Some(s)) = (&v.phase, &v.step) {
        let _ = writeln!(o, "at        phase `{p}`, step `{s}`");
    }
    if let Some(s) = &v.in_doubt {
        let _ = writeln!(
            o,
            "in doubt  step `{s}` was running when rollout stopped; resume asks whether to run it again"
        );
    }
    if let Some(g) = &v.gate {
        let _ = writeln!(
            o,
            "gate      {} `{}` waits: {}",
            g.kind.label(),
            g.step,
            g.message
        );
        let _ = writeln!(o, "approve   {}", g.resume_with);
    }
    for (i, a) in v.approvals_delivered.iter().enumerate() {
        let label = if i == 0 { "signed" } else { "" };
        let _ = writeln!(o, "{label:9} {a}");
    }
    let _ = writeln!(o, "done      {} step(s)", v.steps_done);
    for (i, a) in v.answers.iter().enumerate() {
        let label = if i == 0 { "answers" } else { "" };
        let outcome = serde_json::to_value(a.outcome)
            .ok()
            .and_then(|x| x.as_str().map(|s| s.replace('_', " ")))
            .unwrap_or_default();
        let _ = writeln!(
            o,
            "{label:9} {} `{}` {outcome} at {}: {}",
            a.kind.label(),
            a.step,
            a.at,
            a.summary
        );
    }
    if let Some(d) = &v.journal_damaged {
        let _ = writeln!(o, "journal   damaged: {d}; `rollout resume` recovers it");
    }
    let finished = !matches!(
        v.state.as_str(),
        "running" | "paused" | "waiting_for_approval" | "stopped"
    );
    if finished && !v.sealed {
        let _ = writeln!(
            o,
            "audit     the log is not sealed: rollout stopped after the run finished, before it sealed the log; `rollout resume {} {}` seals it",
            v.run_id,
            store_flags(&v.state_dir)
        );
    }
    if v.gate.is_none()
        && matches!(
            v.state.as_str(),
            "paused" | "waiting_for_approval" | "stopped"
        )
    {
        let _ = writeln!(
            o,
            "resume    rollout resume {} {}",
            v.run_id,
            store_flags(&v.state_dir)
        );
    }
    crate::escape::owned(o)
}

pub fn render_list(views: &[RunView]) -> String {
    if views.is_empty() {
        return "no runs\n".into();
    }
    let finished = [
        "succeeded",
        "failed",
        "rolled_back",
        "rollback_incomplete",
        "aborted",
    ];
    let rows: Vec<[String; 5]> = views
        .iter()
        .map(|v| {
            let at = match (&v.gate, &v.phase, &v.step) {
                (Some(g), Some(p), _) => format!("gate `{}` of phase `{p}`", g.step),
                (Some(g), None, _) => format!("gate `{}`", g.step),
                _ if finished.contains(&v.state.as_str()) => "-".into(),
                (None, Some(p), Some(s)) => format!("{p}/{s}"),
                (None, Some(p), None) => p.clone(),
                _ => "-".into(),
            };
            [
                v.run_id.clone(),
                v.name.clone(),
                v.state.replace('_', " "),
                v.since.clone(),
                at,
            ]
        })
        .collect();
    let head = ["run", "runbook", "state", "since", "where"];
    let mut widths = head.map(str::len);
    for row in &rows {
        for (w, cell) in widths.iter_mut().zip(row) {
            *w = (*w).max(cell.chars().count());
        }
    }
    let mut o = String::new();
    for row in std::iter::once(head.map(String::from)).chain(rows) {
        let mut line = String::new();
        for (k, cell) in row.iter().enumerate() {
            if k + 1 == row.len() {
                line.push_str(cell);
            } else {
                let _ = write!(line, "{cell:width$}  ", width = widths[k]);
            }
        }
        let _ = writeln!(o, "{}", line.trim_end());
    }
    crate::escape::owned(o)
}
