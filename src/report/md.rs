//! The report as Markdown, to paste into a ticket or a post-mortem: headings and tables only.

use std::fmt::Write;

use super::{Report, clock, duration, name, outcome_label, value};

/// Text for one table cell: one line, `|` escaped.
fn cell(text: &str) -> String {
    text.split_whitespace()
        .collect::<Vec<_>>()
        .join(" ")
        .replace('|', "\\|")
}

/// Inline code that survives backticks in the text.
fn code(text: &str) -> String {
    let text = cell(text);
    if text.is_empty() {
        String::new()
    } else if text.contains('`') {
        format!("`` {text} ``")
    } else {
        format!("`{text}`")
    }
}

/// A fence longer than any run of backticks in `text`.
fn fence(text: &str) -> String {
    let longest = text.split(|c| c != '`').map(str::len).max().unwrap_or(0);
    "`".repeat(longest.max(2) + 1)
}

pub fn render(r: &Report) -> String {
    let mut o = String::new();
    header(&mut o, r);
    timeline(&mut o, r);
    commands(&mut o, r);
    approvals(&mut o, r);
    checks(&mut o, r);
    incidents(&mut o, r);
    rollback(&mut o, r);
    audit(&mut o, r);
    crate::escape::owned(o)
}

fn header(o: &mut String, r: &Report) {
    let _ = writeln!(
        o,
        "# Run report: {} ({})\n",
        code(&r.runbook_name),
        outcome_label(&r.outcome)
    );
    let _ = writeln!(o, "| | |\n|---|---|");
    let mut row = |k: &str, v: String| {
        let _ = writeln!(o, "| {k} | {v} |");
    };
    row("Run", code(&r.run_id));
    row(
        "Runbook",
        format!("{} ({})", cell(&r.runbook_name), code(&r.runbook)),
    );
    let mut outcome = format!("**{}**", outcome_label(&r.outcome));
    if let Some(why) = &r.outcome_reason {
        let _ = write!(outcome, ": {}", cell(why));
    }
    row("Outcome", outcome);
    row(
        "Operator",
        format!(
            "{} ({}@{})",
            cell(&r.operator),
            cell(&r.os_user),
            cell(&r.host)
        ),
    );
    row("Started", format!("{} UTC", clock(&r.started_at)));
    row("Ended", format!("{} UTC", clock(&r.ended_at)));
    row("Duration", duration(r.duration_ms));
    for s in r.sessions.iter().filter(|s| s.kind == "resumed") {
        row(
            "Resumed",
            format!(
                "{} UTC by {} ({}@{})",
                clock(&s.at),
                cell(&s.operator),
                cell(&s.os_user),
                cell(&s.host)
            ),
        );
    }
    if !r.vars.is_empty() {
        let vars: Vec<String> = r
            .vars
            .iter()
            .map(|(k, v)| code(&format!("{k}={v}")))
            .collect();
        row("Variables", vars.join(", "));
    }
    row("Runbook digest", code(&r.runbook_digest));
    row("rollout", cell(&r.rollout_version));
    o.push('\n');
}

fn timeline(o: &mut String, r: &Report) {
    let _ = writeln!(o, "## Timeline\n");
    if r.phases.is_empty() {
        let _ = writeln!(o, "No phase started.\n");
        return;
    }
    let _ = writeln!(
        o,
        "| Phase | Step | Started (UTC) | Duration | Status | Exit code |\n|---|---|---|---|---|---|"
    );
    for p in &r.phases {
        let label = if p.rollback {
            format!("**{}** (rollback)", cell(&p.phase))
        } else {
            format!("**{}**", cell(&p.phase))
        };
        let _ = writeln!(
            o,
            "| {label} | | {} | {} | {} | |",
            clock(&p.started_at),
            p.duration_ms.map(duration).unwrap_or_default(),
            outcome_label(&p.status)
        );
        for s in &p.steps {
            let attempt = if s.attempt > 1 {
                format!(" (attempt {})", s.attempt)
            } else {
                String::new()
            };
            let _ = writeln!(
                o,
                "| | {}{attempt} | {} | {} | {} | {} |",
                code(&s.step),
                clock(&s.started_at),
                s.duration_ms.map(duration).unwrap_or_default(),
                outcome_label(&s.status),
                s.exit_code.map(|c| c.to_string()).unwrap_or_default()
            );
        }
    }
    o.push('\n');
}

fn commands(o: &mut String, r: &Report) {
    let steps: Vec<_> = r
        .phases
        .iter()
        .flat_map(|p| p.steps.iter().map(move |s| (p, s)))
        .filter(|(_, s)| !s.command.is_empty() || s.output_tail.is_some())
        .collect();
    if steps.is_empty() {
        return;
    }
    let _ = writeln!(
        o,
        "## Commands\n\n| Step | Command | Status | Exit code | Reason |\n|---|---|---|---|---|"
    );
    for (p, s) in &steps {
        let _ = writeln!(
            o,
            "| {} | {} | {} | {} | {} |",
            code(&format!("{}/{}", p.phase, s.step)),
            s.command
                .iter()
                .map(|c| code(c))
                .collect::<Vec<_>>()
                .join(" "),
            outcome_label(&s.status),
            s.exit_code.map(|c| c.to_string()).unwrap_or_default(),
            s.reason.as_deref().map(cell).unwrap_or_default()
        );
    }
    o.push('\n');
    for (p, s) in &steps {
        if let Some(tail) = s.output_tail.as_deref().filter(|t| !t.trim().is_empty()) {
            let f = fence(tail);
            let _ = writeln!(
                o,
                "Output of {} (last lines):\n\n{f}text\n{}\n{f}\n",
                code(&format!("{}/{}", p.phase, s.step)),
                tail.trim_end()
            );
        }
    }
}

fn approvals(o: &mut String, r: &Report) {
    if r.approvals.is_empty() && r.waiting_gates.is_empty() {
        return;
    }
    let _ = writeln!(o, "## Approvals\n");
    if !r.approvals.is_empty() {
        let _ = writeln!(
            o,
            "| Gate | Kind | Outcome | Asked | Answer | By | How | At (UTC) |\n|---|---|---|---|---|---|---|---|"
        );
        for a in &r.approvals {
            let gate = code(&format!("{}/{}", a.phase, a.step));
            for ans in &a.answers {
                let _ = writeln!(
                    o,
                    "| {gate} | {} | {} | {} | {} | {} | {} | {} |",
                    a.kind.label(),
                    outcome_label(&name(&a.outcome)),
                    cell(&ans.subject),
                    cell(&ans.answer),
                    cell(&ans.name),
                    name(&ans.how),
                    clock(&ans.at)
                );
            }
            if a.answers.is_empty() {
                let _ = writeln!(
                    o,
                    "| {gate} | {} | {} | | {} | | {} | {} |",
                    a.kind.label(),
                    outcome_label(&name(&a.outcome)),
                    cell(&a.summary),
                    name(&a.how),
                    clock(&a.at)
                );
            }
        }
        o.push('\n');
    }
    for w in &r.waiting_gates {
        let _ = writeln!(
            o,
            "- {} UTC: {} {} waited: {} (satisfied by {})",
            clock(&w.at),
            w.kind.label(),
            code(&w.step),
            cell(&w.message),
            w.satisfy_with
                .iter()
                .map(|s| code(s))
                .collect::<Vec<_>>()
                .join(" ")
        );
    }
    if !r.waiting_gates.is_empty() {
        o.push('\n');
    }
}

fn checks(o: &mut String, r: &Report) {
    if r.checks.is_empty() {
        return;
    }
    let _ = writeln!(o, "## Metric checks\n");
    for c in &r.checks {
        let _ = writeln!(
            o,
            "### {}: {}\n\nThreshold: {}. {} measurement{}.\n",
            code(&c.step),
            outcome_label(&c.status),
            c.condition
                .as_deref()
                .map_or_else(|| "not recorded".to_string(), code),
            c.measurements.len(),
            if c.measurements.len() == 1 { "" } else { "s" }
        );
        let _ = writeln!(
            o,
            "| # | At (UTC) | +time | Verdict | Series | Value |\n|---|---|---|---|---|---|"
        );
        for (i, m) in c.measurements.iter().enumerate() {
            let n = i + 1;
            let at = clock(&m.at);
            let offset = duration(m.offset_ms);
            if m.values.is_empty() {
                let _ = writeln!(
                    o,
                    "| {n} | {at} | {offset} | {} | | {} |",
                    m.verdict,
                    m.detail.as_deref().map(cell).unwrap_or_default()
                );
            }
            for (series, v) in &m.values {
                let _ = writeln!(
                    o,
                    "| {n} | {at} | {offset} | {} | {} | {} |",
                    m.verdict,
                    code(series),
                    value(*v)
                );
            }
        }
        o.push('\n');
    }
}

fn incidents(o: &mut String, r: &Report) {
    if !r.outside_window.is_empty() || !r.over_budget.is_empty() {
        let _ = writeln!(o, "## Change window and time budgets\n");
        for w in &r.outside_window {
            let _ = writeln!(
                o,
                "- **Started outside the change window** ({}) at {} ({} UTC) by {}; reason: {}",
                code(&w.window),
                cell(&w.local_time),
                clock(&w.at),
                cell(&w.operator),
                cell(&w.reason)
            );
        }
        for b in &r.over_budget {
            let _ = writeln!(
                o,
                "- Phase {} ran past its `max_duration` of {} at {} UTC ({})",
                code(&b.phase),
                cell(&b.max_duration),
                clock(&b.at),
                cell(&b.action)
            );
        }
        o.push('\n');
    }
    if !r.aborts.is_empty() {
        let _ = writeln!(
            o,
            "## Abort criteria tripped\n\n| At (UTC) | Criterion | Action | Phase/step | Values |\n|---|---|---|---|---|"
        );
        for a in &r.aborts {
            let values: Vec<String> = a
                .values
                .iter()
                .map(|(s, v)| format!("{}={}", code(s), value(*v)))
                .collect();
            let _ = writeln!(
                o,
                "| {} | {} | {} | {} | {} |",
                clock(&a.at),
                code(&a.criterion),
                cell(&a.action),
                code(&format!("{}/{}", a.phase, a.step)),
                values.join(", ")
            );
        }
        o.push('\n');
    }
    if !r.pauses.is_empty() {
        let _ = writeln!(
            o,
            "## Pauses and resumes\n\n| Paused (UTC) | At | Reason | Resumed (UTC) | By |\n|---|---|---|---|---|"
        );
        for p in &r.pauses {
            let at = match (&p.phase, &p.step) {
                (Some(ph), Some(st)) => code(&format!("{ph}/{st}")),
                _ => String::new(),
            };
            let _ = writeln!(
                o,
                "| {} | {at} | {}{} | {} | {} |",
                clock(&p.at),
                cell(&p.reason),
                if p.waiting_for_approval {
                    " (waiting for approval)"
                } else {
                    ""
                },
                p.resumed_at.as_deref().map(clock).unwrap_or_default(),
                p.resumed_by.as_deref().map(cell).unwrap_or_default()
            );
        }
        o.push('\n');
    }
}

fn rollback(o: &mut String, r: &Report) {
    let Some(rb) = &r.rollback else { return };
    let _ = writeln!(o, "## Rollback\n");
    let state = match rb.complete {
        Some(true) => "complete",
        Some(false) => "**INCOMPLETE**",
        None if rb.started_at.is_some() => "not finished",
        None => "requested, not started",
    };
    let _ = writeln!(
        o,
        "- Requested {} UTC: {}\n- Phases, in order: {}\n- Started: {}\n- Finished: {} ({state})",
        clock(&rb.requested_at),
        cell(&rb.reason),
        rb.phases
            .iter()
            .map(|p| code(p))
            .collect::<Vec<_>>()
            .join(", "),
        rb.started_at
            .as_deref()
            .map_or_else(|| "no".into(), |t| format!("{} UTC", clock(t))),
        rb.finished_at
            .as_deref()
            .map_or_else(|| "no".into(), |t| format!("{} UTC", clock(t))),
    );
    for (p, complete) in &rb.phases_rolled_back {
        let _ = writeln!(
            o,
            "- Phase {}: {}",
            code(p),
            if *complete {
                "rolled back"
            } else {
                "NOT fully rolled back"
            }
        );
    }
    for u in &rb.undone {
        let label = match crate::state::record::undone_label(u) {
            "skipped" => "Skipped",
            "nothing to undo" => "Nothing to undo",
            _ => "Undone",
        };
        let _ = writeln!(o, "- {label}: {}", code(u));
    }
    for n in &rb.not_undone {
        let _ = writeln!(o, "- **Not undone**: {}", cell(n));
    }
    o.push('\n');
}

fn audit(o: &mut String, r: &Report) {
    let _ = writeln!(
        o,
        "## Audit log\n\n- Chain: **{}** {}\n- Records: {}\n- Final digest: {}",
        if r.audit.ok {
            "verified"
        } else {
            "NOT verified"
        },
        cell(&r.audit.message),
        r.audit.records,
        code(&r.audit.final_digest)
    );
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cells_stay_on_one_line_and_in_their_column() {
        assert_eq!(cell("a | b\nc"), "a \\| b c");
        assert_eq!(code("x`y"), "`` x`y ``");
    }

    #[test]
    fn fences_outlast_backticks_in_the_output() {
        assert_eq!(fence("plain"), "```");
        assert_eq!(fence("a ```` b"), "`````");
    }
}
