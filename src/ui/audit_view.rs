//! The audit log for people: `rollout log`, the records as readable text, phase by phase. What
//! `rollout audit verify` concludes is `state::verify`'s.

use std::fmt::Write;

use crate::state::record::{Entry, Record};

fn secs(ms: u64) -> String {
    format!("{:.1}s", Duration::from_millis(ms).as_secs_f64())
}

use std::time::Duration;

/// `rollout log`: the journal as a story, one block per phase.
pub fn render_log(records: &[Record]) -> String {
    let mut o = String::new();
    let time = |r: &Record| r.at.get(11..19).unwrap_or(&r.at).to_string();
    for r in records {
        let t = time(r);
        let who = &r.who.operator;
        let line = match &r.event {
            Entry::RunStarted {
                run_id,
                runbook_name,
                runbook,
                vars,
                version,
                ..
            } => {
                let vars: Vec<String> = vars.iter().map(|(k, v)| format!("{k}={v}")).collect();
                format!(
                    "run {run_id} of `{runbook_name}` ({runbook}) started by {who} ({}@{}), rollout {version}\n           variables: {}",
                    r.who.os_user,
                    r.who.host,
                    if vars.is_empty() {
                        "none".into()
                    } else {
                        vars.join(", ")
                    }
                )
            }
            Entry::RunResumed {
                operator,
                previous_seal,
                ..
            } => format!(
                "resumed by {operator} ({}@{}, pid {}), after {}",
                r.who.os_user,
                r.who.host,
                r.who.pid,
                match previous_seal {
                    Some(Some(h)) => format!("the seal {h}"),
                    Some(None) => "no seal".to_string(),
                    None => "a seal it does not name (an older rollout wrote it)".to_string(),
                }
            ),
            Entry::SealRecovered {
                operator,
                unsealed_from,
                ..
            } => format!(
                "log sealed late by {operator} ({}@{}, pid {}): the run had finished, but rollout stopped before it sealed records {unsealed_from} on",
                r.who.os_user, r.who.host, r.who.pid
            ),
            Entry::PhaseStarted { phase } => format!("\n== phase {phase}"),
            Entry::StepStarted {
                step,
                attempt,
                command,
                ..
            } => {
                let mut s = format!("  step {step} started (attempt {attempt})");
                for c in command {
                    let _ = write!(s, "\n           $ {c}");
                }
                s
            }
            Entry::StepFinished {
                step,
                status,
                exit_code,
                duration_ms,
                reason,
                output_tail,
                ..
            } => {
                let status = serde_json::to_value(status)
                    .ok()
                    .and_then(|v| v.as_str().map(String::from))
                    .unwrap_or_default();
                let mut s = format!("  step {step} {status} in {}", secs(*duration_ms));
                if let Some(c) = exit_code {
                    let _ = write!(s, ", exit code {c}");
                }
                if let Some(why) = reason {
                    let _ = write!(s, ": {why}");
                }
                if let Some(tail) = output_tail.as_ref().filter(|t| !t.trim().is_empty()) {
                    for l in tail
                        .trim_end()
                        .lines()
                        .rev()
                        .take(5)
                        .collect::<Vec<_>>()
                        .iter()
                        .rev()
                    {
                        let _ = write!(s, "\n           | {l}");
                    }
                }
                s
            }
            Entry::StepSkipped { step, reason, .. } => format!("  step {step} skipped: {reason}"),
            Entry::Measurement {
                step,
                verdict,
                values,
                detail,
                ..
            } => {
                let vals: Vec<String> = values.iter().map(|(k, v)| format!("{k}={v}")).collect();
                format!(
                    "  measurement of {step}: {verdict} {}{}",
                    vals.join(", "),
                    detail
                        .as_deref()
                        .map(|d| format!(" ({d})"))
                        .unwrap_or_default()
                )
            }
            Entry::AbortTripped {
                criterion, action, ..
            } => format!("  ABORT criterion `{criterion}` tripped -> {action}"),
            Entry::InDoubtResolved { step, decision } => {
                format!("  in-doubt step {step}: {decision}")
            }
            Entry::PhaseFinished { phase, status } => format!(
                "== phase {phase} {}",
                serde_json::to_value(status)
                    .ok()
                    .and_then(|v| v.as_str().map(String::from))
                    .unwrap_or_default()
            ),
            Entry::Paused { reason, .. } => format!("paused: {reason}"),
            Entry::RunFinished { status, reason } => format!(
                "run finished: {}{}",
                serde_json::to_value(status)
                    .ok()
                    .and_then(|v| v.as_str().map(|s| s.replace('_', " ")))
                    .unwrap_or_default(),
                reason
                    .as_deref()
                    .map(|r| format!(" ({r})"))
                    .unwrap_or_default()
            ),
            Entry::GateAnswered {
                step,
                kind,
                answers,
                summary,
                ..
            } => {
                let mut s = format!("  {} {step}: {summary}", kind.label());
                for a in answers {
                    let how = serde_json::to_value(a.how)
                        .ok()
                        .and_then(|v| v.as_str().map(String::from))
                        .unwrap_or_default();
                    let _ = write!(
                        s,
                        "\n           {}: {} by {} ({how}) at {}",
                        a.subject, a.answer, a.name, a.at
                    );
                    if let Some(signed) = &a.signed {
                        let _ = write!(s, ", key {}", signed.fingerprint);
                    }
                }
                s
            }
            Entry::GateWaiting { step, message, .. } => {
                format!("  gate {step} waits: {message}")
            }
            Entry::OperatorKeys { keys } => {
                let keys: Vec<String> = keys
                    .iter()
                    .map(|k| match k.principals.as_slice() {
                        [] => k.fingerprint.clone(),
                        p => format!("{} ({})", k.fingerprint, p.join(", ")),
                    })
                    .collect();
                format!("operator {who} holds the keys {}", keys.join(", "))
            }
            Entry::SignoffShown { step, digest, .. } => {
                format!("  sign-off {step} takes signed approvals of the phase as shown ({digest})")
            }
            Entry::LockAcquired {
                lock_id,
                target,
                broken,
            } => {
                let mut s = format!(
                    "lock {lock_id} on `{target}` taken by {who} (pid {})",
                    r.who.pid
                );
                if let Some(b) = broken {
                    let _ = write!(s, "\n           {b}");
                }
                s
            }
            Entry::LockReleased { lock_id, .. } => format!("lock {lock_id} released"),
            Entry::LeftoversStopped {
                holder_lock_id,
                holder_run,
                holder_pid,
                processes,
                duration_ms,
            } => {
                let mut s = format!(
                    "stopped {} process{} left by run {holder_run} (rollout pid {holder_pid}, lock {holder_lock_id}, died while they ran) in {duration_ms} ms",
                    processes.len(),
                    if processes.len() == 1 { "" } else { "es" },
                );
                for p in processes {
                    let _ = write!(s, "\n           pid {} ({}): {}", p.pid, p.name, p.signal);
                }
                s
            }
            Entry::JournalRecovered {
                dropped_bytes,
                saved_as,
                ..
            } => format!(
                "journal recovered: {dropped_bytes} bytes of a record cut short were set aside in {saved_as}"
            ),
            Entry::NotificationFailed { message } => format!("notification failed: {message}"),
            Entry::OutsideWindow {
                reason,
                window,
                local_time,
            } => format!(
                "started OUTSIDE the change window ({window}) at {local_time}; reason: {reason}"
            ),
            Entry::PhaseOverBudget {
                phase,
                max_duration,
                action,
            } => format!("phase {phase} ran past its max_duration of {max_duration} -> {action}"),
            Entry::Sealed { records } => format!("log sealed at record {records}: {}", r.hash),
            Entry::RollbackRequested { reason, phases } => {
                format!("\nROLLBACK needed ({reason}): {}", phases.join(", "))
            }
            Entry::RollbackStarted { phases } => {
                format!("rollback started: {}", phases.join(" -> "))
            }
            Entry::PhaseRolledBack { phase, complete } => format!(
                "== phase {phase} {}",
                if *complete {
                    "rolled back"
                } else {
                    "NOT fully rolled back"
                }
            ),
            Entry::RollbackFinished {
                complete,
                undone,
                not_undone,
            } => {
                let mut s = format!(
                    "rollback {}",
                    if *complete { "complete" } else { "INCOMPLETE" }
                );
                for u in undone {
                    let _ = write!(s, "\n           undone: {u}");
                }
                for n in not_undone {
                    let _ = write!(s, "\n           NOT undone: {n}");
                }
                s
            }
        };
        let (lead, body) = match line.strip_prefix('\n') {
            Some(rest) => ("\n", rest),
            None => ("", line.as_str()),
        };
        let _ = writeln!(o, "{lead}{t}  {body}");
    }
    crate::escape::owned(o)
}
