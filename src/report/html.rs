//! The report as one self-contained HTML page: inline CSS and SVG, no scripts, no network
//! assets. Every piece of text from the journal goes through [`esc`]: it holds command output.

use std::fmt::Write;

use super::{MetricCheck, PhaseRun, Report, clock, duration, name, outcome_label, value};

/// Escapes text for HTML element content and attribute values.
pub fn esc(text: &str) -> String {
    let mut o = String::with_capacity(text.len());
    for c in text.chars() {
        match c {
            '&' => o.push_str("&amp;"),
            '<' => o.push_str("&lt;"),
            '>' => o.push_str("&gt;"),
            '"' => o.push_str("&quot;"),
            '\'' => o.push_str("&#39;"),
            c => o.push(c),
        }
    }
    o
}

const CSS: &str = r"
:root{--ink:#1f2933;--muted:#616e7c;--line:#e4e7eb;--bg:#f5f7fa;--ok:#2f9e5b;--fail:#d64545;
--warn:#de911d;--rb:#7b5ea7;--info:#2680c2;--skip:#9aa5b1}
*{box-sizing:border-box}
body{margin:0;font:14px/1.45 system-ui,-apple-system,'Segoe UI',Roboto,sans-serif;color:var(--ink);background:var(--bg)}
main{max-width:1120px;margin:0 auto;padding:24px}
header.top{background:#102a43;color:#f0f4f8;padding:22px 24px;border-radius:10px;margin-bottom:20px}
header.top h1{margin:0 0 6px;font-size:22px;font-weight:600}
header.top .sub{color:#bcccdc;font-size:13px}
header.top code{background:rgba(255,255,255,.12);color:#f0f4f8}
header.top .facts{display:flex;flex-wrap:wrap;gap:8px 28px;margin-top:14px}
header.top .facts div{font-size:13px}
header.top .facts b{display:block;color:#9fb3c8;font-weight:500;font-size:11px;text-transform:uppercase;letter-spacing:.04em}
.badge{display:inline-block;padding:2px 10px;border-radius:999px;font-size:12px;font-weight:600;color:#fff;vertical-align:middle}
.b-succeeded,.b-ok,.b-pass,.b-passed,.b-verified{background:var(--ok)}
.b-failed,.b-fail,.b-aborted,.b-refused,.b-rollback_incomplete,.b-timed_out,.b-interrupted,.b-not_rolled_back,.b-broken{background:var(--fail)}
.b-paused,.b-waiting_for_approval,.b-running,.b-inconclusive,.b-deadline_passed,.b-in_flight,.b-unfinished,.b-failed_ignored{background:var(--warn)}
.b-skipped{background:var(--skip)}
.b-rollback,.b-rolled_back{background:var(--rb)}
section{background:#fff;border:1px solid var(--line);border-radius:10px;padding:18px 20px;margin-bottom:18px}
section h2{margin:0 0 12px;font-size:17px}
section h3{margin:16px 0 8px;font-size:15px}
table{border-collapse:collapse;width:100%;font-size:13px}
th,td{text-align:left;padding:6px 8px;border-bottom:1px solid var(--line);vertical-align:top}
th{color:var(--muted);font-weight:600;font-size:12px}
code,pre{font:12px/1.4 ui-monospace,SFMono-Regular,Menlo,Consolas,monospace}
code{background:#f0f4f8;padding:1px 4px;border-radius:4px;overflow-wrap:anywhere}
td.id{white-space:nowrap}
td.id code{overflow-wrap:normal}
pre{background:#0b1720;color:#d9e2ec;padding:10px 12px;border-radius:6px;overflow-x:auto;margin:6px 0 0;white-space:pre-wrap;word-break:break-all}
details summary{cursor:pointer;color:var(--info);font-size:12px}
tr.failed td{background:#fff5f5}
.muted{color:var(--muted)}
.legend{display:flex;flex-wrap:wrap;gap:6px 16px;font-size:12px;color:var(--muted);margin:4px 0 8px}
.legend span{display:inline-flex;align-items:center}
.legend i{flex:none;display:inline-block;width:12px;height:12px;border-radius:3px;margin-right:5px}
svg text{font-family:system-ui,-apple-system,'Segoe UI',Roboto,sans-serif}
.chart{margin:6px 0 14px}
ul.plain{margin:0;padding-left:18px}
.alert{border-left:4px solid var(--fail);background:#fff5f5;padding:8px 12px;border-radius:4px}
.good{border-left:4px solid var(--ok);background:#f0fbf4;padding:8px 12px;border-radius:4px}
";

fn badge(status: &str) -> String {
    format!(
        "<span class=\"badge b-{}\">{}</span>",
        esc(status),
        esc(&outcome_label(status))
    )
}

pub fn render(r: &Report) -> String {
    let mut o = String::new();
    let _ = writeln!(
        o,
        "<!DOCTYPE html>\n<html lang=\"en\">\n<head>\n<meta charset=\"utf-8\">\n\
         <meta name=\"viewport\" content=\"width=device-width, initial-scale=1\">\n\
         <title>Run report: {} {}</title>\n<style>{CSS}</style>\n</head>\n<body>\n<main>",
        esc(&r.runbook_name),
        esc(&r.run_id)
    );
    header(&mut o, r);
    timeline(&mut o, r);
    commands(&mut o, r);
    approvals(&mut o, r);
    checks(&mut o, r);
    incidents(&mut o, r);
    rollback(&mut o, r);
    audit(&mut o, r);
    let _ = writeln!(
        o,
        "<p class=\"muted\">Built by rollout {} from the run's audit log alone.</p>\n</main>\n</body>\n</html>",
        esc(&r.rollout_version)
    );
    crate::escape::owned(o)
}

fn header(o: &mut String, r: &Report) {
    let _ = writeln!(
        o,
        "<header class=\"top\">\n<h1>{} {}</h1>\n<div class=\"sub\">run <code>{}</code> &middot; {}</div>",
        esc(&r.runbook_name),
        badge(&r.outcome),
        esc(&r.run_id),
        esc(&r.runbook)
    );
    if let Some(why) = &r.outcome_reason {
        let _ = writeln!(
            o,
            "<div class=\"sub\" style=\"margin-top:6px\">{}</div>",
            esc(why)
        );
    }
    let _ = write!(o, "<div class=\"facts\">");
    let mut fact = |k: &str, v: String| {
        let _ = write!(o, "<div><b>{k}</b>{v}</div>");
    };
    fact(
        "Operator",
        format!(
            "{} <span style=\"color:#9fb3c8\">({}@{})</span>",
            esc(&r.operator),
            esc(&r.os_user),
            esc(&r.host)
        ),
    );
    fact("Started", format!("{} UTC", esc(&clock(&r.started_at))));
    fact("Duration", esc(&duration(r.duration_ms)));
    fact(
        "Steps",
        r.phases
            .iter()
            .map(|p| p.steps.len())
            .sum::<usize>()
            .to_string(),
    );
    fact("Approvals", r.approvals.len().to_string());
    fact(
        "Audit chain",
        if r.audit.ok {
            badge("verified")
        } else {
            "<span class=\"badge b-broken\">not verified</span>".into()
        },
    );
    let _ = writeln!(o, "</div>\n</header>");
}

/// Round tick spacing for `span` split in about `n` parts: 1, 2 or 5 times a power of ten.
fn tick_step(span: f64, n: f64) -> f64 {
    if span <= 0.0 || !span.is_finite() {
        return 1.0;
    }
    let raw = span / n;
    let mag = 10f64.powf(raw.log10().floor());
    let unit = raw / mag;
    let nice = if unit <= 1.0 {
        1.0
    } else if unit <= 2.0 {
        2.0
    } else if unit <= 5.0 {
        5.0
    } else {
        10.0
    };
    nice * mag
}

/// A time axis label: seconds under a minute (`0.5s`, `12s`), else as [`duration`].
fn axis_time(ms: u64) -> String {
    if ms >= 60_000 {
        duration(ms)
    } else if ms % 1000 == 0 {
        format!("{}s", ms / 1000)
    } else {
        format!("{:.1}s", ms as f64 / 1000.0)
    }
}

/// Milliseconds as a whole, non-negative number, for labels.
#[allow(clippy::cast_possible_truncation, clippy::cast_sign_loss)]
fn whole_ms(ms: f64) -> u64 {
    ms.max(0.0).round() as u64
}

fn millis(at: &str) -> f64 {
    super::millis(at) as f64
}

fn bar_class(status: &str) -> &'static str {
    match status {
        "ok" | "succeeded" => "var(--ok)",
        "failed" | "timed_out" | "interrupted" | "not_rolled_back" => "var(--fail)",
        "skipped" => "var(--skip)",
        "rolled_back" => "var(--rb)",
        _ => "var(--warn)",
    }
}

fn timeline(o: &mut String, r: &Report) {
    let _ = writeln!(o, "<section id=\"timeline\">\n<h2>Timeline</h2>");
    if r.phases.is_empty() {
        let _ = writeln!(o, "<p class=\"muted\">No phase started.</p>\n</section>");
        return;
    }
    let _ = writeln!(
        o,
        "<div class=\"legend\"><span><i style=\"background:var(--ok)\"></i>ok</span>\
         <span><i style=\"background:var(--fail)\"></i>failed</span>\
         <span><i style=\"background:var(--warn)\"></i>unfinished / ignored</span>\
         <span><i style=\"background:var(--skip)\"></i>skipped</span>\
         <span><i style=\"background:var(--rb)\"></i>rollback</span>\
         <span><i style=\"background:#d64545;width:3px\"></i>abort tripped</span>\
         <span><i style=\"background:#de911d;width:3px\"></i>paused</span>\
         <span><i style=\"background:#2680c2;width:3px\"></i>resumed</span></div>"
    );
    let t0 = millis(&r.started_at);
    let t1 = millis(&r.ended_at).max(t0 + 1.0);
    let span = t1 - t0;
    let (width, label_w, right) = (1040.0, 250.0, 20.0);
    let plot_w = width - label_w - right;
    let x = |t: f64| label_w + (t - t0).clamp(0.0, span) / span * plot_w;
    let rows: usize = r.phases.iter().map(|p| 1 + p.steps.len()).sum();
    let (row_h, top) = (22.0, 28.0);
    let height = top + rows as f64 * row_h + 10.0;
    let _ = writeln!(
        o,
        "<svg class=\"timeline\" role=\"img\" aria-label=\"timeline of phases and steps\" \
         width=\"100%\" viewBox=\"0 0 {width} {height}\">"
    );
    let _ = writeln!(
        o,
        "<defs><pattern id=\"hatch\" width=\"6\" height=\"6\" patternUnits=\"userSpaceOnUse\" \
         patternTransform=\"rotate(45)\"><rect width=\"6\" height=\"6\" fill=\"#7b5ea7\"/>\
         <line x1=\"0\" y1=\"0\" x2=\"0\" y2=\"6\" stroke=\"#a58fd0\" stroke-width=\"3\"/></pattern></defs>"
    );
    // The time axis: round ticks in seconds, with a grid line each.
    let step = tick_step(span / 1000.0, 8.0);
    let mut tick = 0.0;
    while tick <= span / 1000.0 + 1e-9 {
        let tx = x(t0 + tick * 1000.0);
        let _ = writeln!(
            o,
            "<line x1=\"{tx:.1}\" y1=\"{:.1}\" x2=\"{tx:.1}\" y2=\"{:.1}\" stroke=\"#e4e7eb\"/>\
             <text x=\"{tx:.1}\" y=\"16\" font-size=\"11\" fill=\"#616e7c\" text-anchor=\"middle\">+{}</text>",
            top - 6.0,
            height - 6.0,
            esc(&axis_time(whole_ms(tick * 1000.0)))
        );
        tick += step;
    }
    let mut y = top;
    for p in &r.phases {
        phase_row(o, p, &x, &mut y, row_h, t1);
    }
    // Moments that are not steps: an abort criterion tripping, a pause, a resume.
    let marks = r
        .aborts
        .iter()
        .map(|a| {
            (
                "abort",
                "#d64545",
                &a.at,
                format!("abort criterion `{}` tripped: {}", a.criterion, a.action),
            )
        })
        .chain(
            r.pauses
                .iter()
                .map(|p| ("pause", "#de911d", &p.at, format!("paused: {}", p.reason))),
        )
        .chain(r.sessions.iter().filter(|s| s.kind == "resumed").map(|s| {
            (
                "resume",
                "#2680c2",
                &s.at,
                format!("resumed by {}", s.operator),
            )
        }));
    for (class, colour, at, title) in marks {
        let mx = x(millis(at));
        let _ = writeln!(
            o,
            "<g class=\"marker {class}\"><title>{}</title><line x1=\"{mx:.1}\" y1=\"{:.1}\" x2=\"{mx:.1}\" \
             y2=\"{:.1}\" stroke=\"{colour}\" stroke-width=\"1.5\" stroke-dasharray=\"4 3\"/>\
             <path d=\"M{:.1} {:.1} l5 -7 l-10 0 z\" fill=\"{colour}\"/></g>",
            esc(&title),
            top - 4.0,
            height - 6.0,
            mx,
            top - 2.0,
        );
    }
    let _ = writeln!(o, "</svg>");
    // Abort criteria and pauses, as notes under the chart.
    for a in &r.aborts {
        let _ = writeln!(
            o,
            "<p class=\"alert\">+{} abort criterion <code>{}</code> tripped during <code>{}/{}</code> &rarr; {}</p>",
            esc(&duration(whole_ms(millis(&a.at) - t0))),
            esc(&a.criterion),
            esc(&a.phase),
            esc(&a.step),
            esc(&a.action)
        );
    }
    let _ = writeln!(o, "</section>");
}

fn phase_row(
    o: &mut String,
    p: &PhaseRun,
    x: &dyn Fn(f64) -> f64,
    row_y: &mut f64,
    row_h: f64,
    end: f64,
) {
    let start = millis(&p.started_at);
    let stop = p.ended_at.as_deref().map_or(end, millis);
    let (x0, x1) = (x(start), x(stop));
    let (lx, anchor) = label_at(x0, x1);
    let label = if p.rollback {
        format!("\u{21b6} roll back {}", p.phase)
    } else {
        p.phase.clone()
    };
    let fill = if p.rollback {
        "url(#hatch)".to_string()
    } else {
        bar_class(&p.status).to_string()
    };
    let _ = writeln!(
        o,
        "<g class=\"phase{}\"><title>{} {}: {}</title>\
         <rect x=\"0\" y=\"{:.1}\" width=\"1040\" height=\"{row_h}\" fill=\"{}\"/>\
         <text x=\"8\" y=\"{:.1}\" font-size=\"13\" font-weight=\"600\" fill=\"{}\">{}</text>\
         <rect x=\"{x0:.1}\" y=\"{:.1}\" width=\"{:.1}\" height=\"{:.1}\" rx=\"3\" fill=\"{fill}\" opacity=\"0.9\"/>\
         <text x=\"{:.1}\" y=\"{:.1}\" font-size=\"11\" fill=\"#616e7c\" text-anchor=\"{anchor}\">{}</text></g>",
        if p.rollback { " rollback" } else { "" },
        if p.rollback { "rollback of" } else { "phase" },
        esc(&p.phase),
        esc(&outcome_label(&p.status)),
        *row_y,
        if p.rollback { "#f6f2fb" } else { "#f8fafc" },
        *row_y + 15.0,
        if p.rollback { "#5b3f8a" } else { "#1f2933" },
        esc(&label),
        *row_y + 4.0,
        (x1 - x0).max(3.0),
        row_h - 8.0,
        lx,
        *row_y + 15.0,
        esc(&format!(
            "{} {}",
            p.duration_ms.map(duration).unwrap_or_default(),
            outcome_label(&p.status)
        ))
    );
    *row_y += row_h;
    for s in &p.steps {
        let start = millis(&s.started_at);
        let stop = s.ended_at.as_deref().map_or(end, millis);
        let (x0, x1) = (x(start), x(stop));
        let (lx, anchor) = label_at(x0, x1);
        let colour = if p.rollback && (s.status == "ok") {
            "var(--rb)"
        } else {
            bar_class(&s.status)
        };
        let attempt = if s.attempt > 1 {
            format!(" #{}", s.attempt)
        } else {
            String::new()
        };
        let _ = writeln!(
            o,
            "<g class=\"step {}\"><title>{}{attempt}: {} in {}{}</title>\
             <text x=\"24\" y=\"{:.1}\" font-size=\"12\" fill=\"#323f4b\">{}{attempt}</text>\
             <rect x=\"{x0:.1}\" y=\"{:.1}\" width=\"{:.1}\" height=\"{:.1}\" rx=\"2\" fill=\"{colour}\"/>\
             <text x=\"{:.1}\" y=\"{:.1}\" font-size=\"11\" fill=\"#616e7c\" text-anchor=\"{anchor}\">{}</text></g>",
            esc(&s.status),
            esc(&s.step),
            esc(&outcome_label(&s.status)),
            esc(&s.duration_ms.map(duration).unwrap_or_default()),
            s.exit_code
                .map(|c| format!(", exit code {c}"))
                .unwrap_or_default(),
            *row_y + 15.0,
            esc(&truncate(&s.step, 28)),
            *row_y + 6.0,
            (x1 - x0).max(3.0),
            row_h - 12.0,
            lx,
            *row_y + 15.0,
            esc(&match s.exit_code {
                Some(c) => format!(
                    "{} · exit {c}",
                    s.duration_ms.map(duration).unwrap_or_default()
                ),
                None => s.duration_ms.map(duration).unwrap_or_default(),
            })
        );
        *row_y += row_h;
    }
}

/// Where a bar's label goes: after the bar, or before it when the bar ends near the right edge.
fn label_at(x0: f64, x1: f64) -> (f64, &'static str) {
    let end = x1.max(x0 + 3.0);
    if end + 110.0 > 1020.0 {
        (x0 - 6.0, "end")
    } else {
        (end + 6.0, "start")
    }
}

fn truncate(text: &str, max: usize) -> String {
    if text.chars().count() <= max {
        text.to_string()
    } else {
        let mut t: String = text.chars().take(max - 1).collect();
        t.push('\u{2026}');
        t
    }
}

fn commands(o: &mut String, r: &Report) {
    let steps: Vec<_> = r
        .phases
        .iter()
        .flat_map(|p| p.steps.iter().map(move |s| (p, s)))
        .collect();
    if steps.is_empty() {
        return;
    }
    let _ = writeln!(
        o,
        "<section id=\"steps\">\n<h2>Steps and commands</h2>\n<table>\n<thead><tr><th>Step</th>\
         <th>Started (UTC)</th><th>Duration</th><th>Status</th><th>Exit code</th><th>Command and output</th></tr></thead>\n<tbody>"
    );
    for (p, s) in steps {
        let failed = matches!(s.status.as_str(), "failed" | "timed_out" | "interrupted");
        let _ = write!(
            o,
            "<tr{}><td class=\"id\"><code>{}/{}</code>{}{}</td><td>{}</td><td>{}</td><td>{}</td><td>{}</td><td>",
            if failed { " class=\"failed\"" } else { "" },
            esc(&p.phase),
            esc(&s.step),
            if p.rollback {
                " <span class=\"badge b-rollback\">rollback</span>"
            } else {
                ""
            },
            if s.attempt > 1 {
                format!(" <span class=\"muted\">attempt {}</span>", s.attempt)
            } else {
                String::new()
            },
            esc(&clock(&s.started_at)),
            esc(&s.duration_ms.map(duration).unwrap_or_default()),
            badge(&s.status),
            s.exit_code.map(|c| c.to_string()).unwrap_or_default()
        );
        for c in &s.command {
            let _ = write!(o, "<pre>$ {}</pre>", esc(c));
        }
        if let Some(why) = &s.reason {
            let _ = write!(o, "<div class=\"muted\">{}</div>", esc(why));
        }
        if let Some(tail) = s.output_tail.as_deref().filter(|t| !t.trim().is_empty()) {
            let _ = write!(
                o,
                "<details{}><summary>output (last {})</summary><pre>{}</pre></details>",
                if failed { " open" } else { "" },
                match tail.trim_end().lines().count() {
                    1 => "line".to_string(),
                    n => format!("{n} lines"),
                },
                esc(tail.trim_end())
            );
        }
        let _ = writeln!(o, "</td></tr>");
    }
    let _ = writeln!(o, "</tbody>\n</table>\n</section>");
}

fn approvals(o: &mut String, r: &Report) {
    if r.approvals.is_empty() && r.waiting_gates.is_empty() {
        return;
    }
    let _ = writeln!(o, "<section id=\"approvals\">\n<h2>Approvals</h2>");
    if !r.approvals.is_empty() {
        let _ = writeln!(
            o,
            "<table>\n<thead><tr><th>Gate</th><th>Kind</th><th>Outcome</th><th>Asked</th><th>Answer</th>\
             <th>By</th><th>How</th><th>At (UTC)</th></tr></thead>\n<tbody>"
        );
        for a in &r.approvals {
            for ans in &a.answers {
                let _ = writeln!(
                    o,
                    "<tr><td><code>{}/{}</code></td><td>{}</td><td>{}</td><td>{}</td><td>{}</td>\
                     <td>{}</td><td>{}</td><td>{}</td></tr>",
                    esc(&a.phase),
                    esc(&a.step),
                    esc(a.kind.label()),
                    badge(&name(&a.outcome)),
                    esc(&ans.subject),
                    esc(&ans.answer),
                    esc(&ans.name),
                    esc(&name(&ans.how)),
                    esc(&clock(&ans.at))
                );
            }
        }
        let _ = writeln!(o, "</tbody>\n</table>");
    }
    for w in &r.waiting_gates {
        let _ = writeln!(
            o,
            "<p class=\"muted\">{} UTC: {} <code>{}</code> waited: {} (satisfied by <code>{}</code>)</p>",
            esc(&clock(&w.at)),
            esc(w.kind.label()),
            esc(&w.step),
            esc(&w.message),
            esc(&w.satisfy_with.join(" "))
        );
    }
    let _ = writeln!(o, "</section>");
}

const SERIES: [&str; 6] = [
    "#2680c2", "#7b5ea7", "#0f7b6c", "#cb6e17", "#486581", "#b44c7c",
];

fn verdict_colour(verdict: &str) -> &'static str {
    match verdict {
        "pass" => "#2f9e5b",
        "fail" => "#d64545",
        _ => "#de911d",
    }
}

fn checks(o: &mut String, r: &Report) {
    if r.checks.is_empty() {
        return;
    }
    let _ = writeln!(o, "<section id=\"checks\">\n<h2>Metric checks</h2>");
    for c in &r.checks {
        let _ = writeln!(
            o,
            "<h3><code>{}</code> {} <span class=\"muted\">threshold {}</span></h3>",
            esc(&c.step),
            badge(&c.status),
            c.condition.as_deref().map_or_else(
                || "not recorded".into(),
                |t| format!("<code>{}</code>", esc(t))
            )
        );
        plot(o, c);
    }
    let _ = writeln!(o, "</section>");
}

/// The threshold lines of a condition: one value, or both ends of a range.
fn thresholds(condition: Option<&str>) -> Vec<f64> {
    use crate::runbook::condition::{Condition, parse_condition};
    match condition.map(parse_condition) {
        Some(Ok(
            Condition::Lt { value }
            | Condition::Le { value }
            | Condition::Gt { value }
            | Condition::Ge { value }
            | Condition::Eq { value }
            | Condition::Ne { value },
        )) => vec![value],
        Some(Ok(Condition::Between { low, high })) => vec![low, high],
        _ => Vec::new(),
    }
}

fn plot(o: &mut String, c: &MetricCheck) {
    let lines = thresholds(c.condition.as_deref());
    let values: Vec<f64> = c
        .measurements
        .iter()
        .flat_map(|m| m.values.iter().map(|(_, v)| *v))
        .filter(|v| v.is_finite())
        .chain(lines.iter().copied())
        .collect();
    let (mut lo, mut hi) = values
        .iter()
        .fold((f64::INFINITY, f64::NEG_INFINITY), |(l, h), v| {
            (l.min(*v), h.max(*v))
        });
    if !lo.is_finite() {
        (lo, hi) = (0.0, 1.0);
    }
    if (hi - lo).abs() < f64::EPSILON {
        let pad = if hi == 0.0 { 1.0 } else { hi.abs() * 0.5 };
        lo -= pad;
        hi += pad;
    }
    // A margin, so no point sits on the frame (and no axis below zero for values that are not).
    let margin = (hi - lo) * 0.08;
    lo = if lo >= 0.0 {
        (lo - margin).max(0.0)
    } else {
        lo - margin
    };
    hi += margin;
    let ystep = tick_step(hi - lo, 4.0);
    lo = (lo / ystep).floor() * ystep;
    hi = (hi / ystep).ceil() * ystep;
    let t_lo = c.measurements.first().map_or(0.0, |m| m.offset_ms as f64);
    let t_hi = c
        .measurements
        .last()
        .map_or(1.0, |m| m.offset_ms as f64)
        .max(t_lo + 1.0);
    let (width, height, left, right, top, bottom) = (1040.0, 280.0, 70.0, 20.0, 16.0, 46.0);
    let px = |t: f64| left + (t - t_lo) / (t_hi - t_lo) * (width - left - right);
    let py = |v: f64| top + (hi - v) / (hi - lo) * (height - top - bottom);
    let _ = writeln!(
        o,
        "<svg class=\"plot\" role=\"img\" aria-label=\"measurements of {} against the threshold\" \
         width=\"100%\" viewBox=\"0 0 {width} {height}\">\n\
         <rect x=\"{left}\" y=\"{top}\" width=\"{}\" height=\"{}\" fill=\"#fbfcfd\" stroke=\"#e4e7eb\"/>",
        esc(&c.step),
        width - left - right,
        height - top - bottom
    );
    // Y axis: ticks and grid.
    let mut tick_v = lo;
    while tick_v <= hi + ystep * 1e-6 {
        let y = py(tick_v);
        let _ = writeln!(
            o,
            "<line x1=\"{left}\" y1=\"{y:.1}\" x2=\"{:.1}\" y2=\"{y:.1}\" stroke=\"#eef1f4\"/>\
             <text x=\"{:.1}\" y=\"{:.1}\" font-size=\"11\" fill=\"#616e7c\" text-anchor=\"end\">{}</text>",
            width - right,
            left - 6.0,
            y + 4.0,
            esc(&value((tick_v / ystep).round() * ystep))
        );
        tick_v += ystep;
    }
    // X axis: time since the run started; one measurement (no span of time) has one label.
    let single = c.measurements.len() <= 1;
    let xstep = if single {
        f64::INFINITY
    } else {
        tick_step((t_hi - t_lo) / 1000.0, 6.0) * 1000.0
    };
    let mut tick_t = if single {
        t_lo
    } else {
        (t_lo / xstep).ceil() * xstep
    };
    while tick_t <= t_hi + 1e-6 {
        let x = px(tick_t);
        let _ = writeln!(
            o,
            "<line x1=\"{x:.1}\" y1=\"{:.1}\" x2=\"{x:.1}\" y2=\"{:.1}\" stroke=\"#9aa5b1\"/>\
             <text x=\"{x:.1}\" y=\"{:.1}\" font-size=\"11\" fill=\"#616e7c\" text-anchor=\"middle\">+{}</text>",
            height - bottom,
            height - bottom + 4.0,
            height - bottom + 16.0,
            esc(&axis_time(whole_ms(tick_t)))
        );
        tick_t += xstep;
    }
    let _ = writeln!(
        o,
        "<text x=\"{:.1}\" y=\"{:.1}\" font-size=\"11\" fill=\"#616e7c\" text-anchor=\"middle\">time since the run started</text>\
         <text x=\"14\" y=\"{:.1}\" font-size=\"11\" fill=\"#616e7c\" text-anchor=\"middle\" transform=\"rotate(-90 14 {:.1})\">value</text>",
        left + (width - left - right) / 2.0,
        height - 8.0,
        top + (height - top - bottom) / 2.0,
        top + (height - top - bottom) / 2.0
    );
    for th in &lines {
        let y = py(*th);
        let _ = writeln!(
            o,
            "<line class=\"threshold\" x1=\"{left}\" y1=\"{y:.1}\" x2=\"{:.1}\" y2=\"{y:.1}\" stroke=\"#d64545\" \
             stroke-width=\"1.5\" stroke-dasharray=\"6 4\"/>\
             <text x=\"{:.1}\" y=\"{:.1}\" font-size=\"11\" fill=\"#d64545\" text-anchor=\"end\">threshold {}</text>",
            width - right,
            width - right - 4.0,
            y - 5.0,
            esc(c.condition.as_deref().unwrap_or_default())
        );
    }
    for (i, series) in c.series.iter().enumerate() {
        let colour = SERIES[i % SERIES.len()];
        let points: Vec<(f64, f64, &str, String)> = c
            .measurements
            .iter()
            .filter_map(|m| {
                m.values.iter().find(|(s, _)| s == series).map(|(_, v)| {
                    (
                        px(m.offset_ms as f64),
                        py(*v),
                        m.verdict.as_str(),
                        format!(
                            "+{} {}: {} ({})",
                            duration(m.offset_ms),
                            series,
                            value(*v),
                            m.verdict
                        ),
                    )
                })
            })
            .collect();
        let path: Vec<String> = points
            .iter()
            .map(|(x, y, ..)| format!("{x:.1},{y:.1}"))
            .collect();
        let _ = writeln!(
            o,
            "<polyline points=\"{}\" fill=\"none\" stroke=\"{colour}\" stroke-width=\"2\"/>",
            path.join(" ")
        );
        for (x, y, verdict, title) in &points {
            let _ = writeln!(
                o,
                "<circle cx=\"{x:.1}\" cy=\"{y:.1}\" r=\"4.5\" fill=\"{}\" stroke=\"#fff\" stroke-width=\"1.5\"><title>{}</title></circle>",
                verdict_colour(verdict),
                esc(title)
            );
        }
    }
    // Measurements without a value (no data, errors): marked along the time axis.
    for m in c.measurements.iter().filter(|m| m.values.is_empty()) {
        let x = px(m.offset_ms as f64);
        let _ = writeln!(
            o,
            "<path d=\"M{:.1} {:.1} l5 -9 l5 9 z\" fill=\"#de911d\"><title>+{} inconclusive: {}</title></path>",
            x - 5.0,
            height - bottom - 2.0,
            esc(&duration(m.offset_ms)),
            esc(m.detail.as_deref().unwrap_or_default())
        );
    }
    let _ = write!(o, "</svg>\n<div class=\"legend\">");
    for (i, series) in c.series.iter().enumerate() {
        let _ = write!(
            o,
            "<span><i style=\"background:{}\"></i>{}</span>",
            SERIES[i % SERIES.len()],
            esc(series)
        );
    }
    let _ = writeln!(
        o,
        "<span><i style=\"background:#2f9e5b;border-radius:50%\"></i>pass</span>\
         <span><i style=\"background:#d64545;border-radius:50%\"></i>fail</span>\
         <span><i style=\"background:#de911d;border-radius:50%\"></i>inconclusive</span></div>"
    );
    let _ = write!(
        o,
        "<details><summary>{} measurement{}</summary><table><thead><tr><th>#</th><th>At (UTC)</th>\
         <th>Verdict</th><th>Values</th></tr></thead><tbody>",
        c.measurements.len(),
        if c.measurements.len() == 1 { "" } else { "s" }
    );
    for (i, m) in c.measurements.iter().enumerate() {
        let vals: Vec<String> = m
            .values
            .iter()
            .map(|(s, v)| format!("<code>{}</code>={}", esc(s), esc(&value(*v))))
            .collect();
        let _ = write!(
            o,
            "<tr><td>{}</td><td>{}</td><td>{}</td><td>{}{}</td></tr>",
            i + 1,
            esc(&clock(&m.at)),
            badge(&m.verdict),
            vals.join(", "),
            m.detail
                .as_deref()
                .map(|d| format!(" <span class=\"muted\">{}</span>", esc(d)))
                .unwrap_or_default()
        );
    }
    let _ = writeln!(o, "</tbody></table></details>");
}

fn incidents(o: &mut String, r: &Report) {
    if !r.outside_window.is_empty() || !r.over_budget.is_empty() {
        let _ = writeln!(
            o,
            "<section id=\"time\">\n<h2>Change window and time budgets</h2>\n<ul>"
        );
        for w in &r.outside_window {
            let _ = writeln!(
                o,
                "<li><b>Started outside the change window</b> (<code>{}</code>) at {} ({} UTC) by {}; reason: {}</li>",
                esc(&w.window),
                esc(&w.local_time),
                esc(&clock(&w.at)),
                esc(&w.operator),
                esc(&w.reason)
            );
        }
        for b in &r.over_budget {
            let _ = writeln!(
                o,
                "<li>Phase <code>{}</code> ran past its <code>max_duration</code> of {} at {} UTC ({})</li>",
                esc(&b.phase),
                esc(&b.max_duration),
                esc(&clock(&b.at)),
                esc(&b.action)
            );
        }
        let _ = writeln!(o, "</ul>\n</section>");
    }
    if !r.aborts.is_empty() {
        let _ = writeln!(
            o,
            "<section id=\"aborts\">\n<h2>Abort criteria tripped</h2>\n<table><thead><tr><th>At (UTC)</th>\
             <th>Criterion</th><th>Action</th><th>During</th><th>Values</th></tr></thead><tbody>"
        );
        for a in &r.aborts {
            let vals: Vec<String> = a
                .values
                .iter()
                .map(|(s, v)| format!("<code>{}</code>={}", esc(s), esc(&value(*v))))
                .collect();
            let _ = writeln!(
                o,
                "<tr class=\"failed\"><td>{}</td><td><code>{}</code></td><td>{}</td><td><code>{}/{}</code></td><td>{}</td></tr>",
                esc(&clock(&a.at)),
                esc(&a.criterion),
                esc(&a.action),
                esc(&a.phase),
                esc(&a.step),
                vals.join(", ")
            );
        }
        let _ = writeln!(o, "</tbody></table>\n</section>");
    }
    if !r.pauses.is_empty() {
        let _ = writeln!(
            o,
            "<section id=\"pauses\">\n<h2>Pauses and resumes</h2>\n<table><thead><tr><th>Paused (UTC)</th>\
             <th>At</th><th>Reason</th><th>Resumed (UTC)</th><th>By</th></tr></thead><tbody>"
        );
        for p in &r.pauses {
            let _ = writeln!(
                o,
                "<tr><td>{}</td><td class=\"id\"><code>{}</code></td><td>{}{}</td><td>{}</td><td>{}</td></tr>",
                esc(&clock(&p.at)),
                esc(&match (&p.phase, &p.step) {
                    (Some(ph), Some(st)) => format!("{ph}/{st}"),
                    _ => String::new(),
                }),
                esc(&p.reason),
                if p.waiting_for_approval {
                    " <span class=\"badge b-waiting_for_approval\">waiting for approval</span>"
                } else {
                    ""
                },
                esc(&p.resumed_at.as_deref().map(clock).unwrap_or_default()),
                esc(p.resumed_by.as_deref().unwrap_or_default())
            );
        }
        let _ = writeln!(o, "</tbody></table>\n</section>");
    }
}

fn rollback(o: &mut String, r: &Report) {
    let Some(rb) = &r.rollback else { return };
    let state = match rb.complete {
        Some(true) => badge("rolled_back"),
        Some(false) => badge("rollback_incomplete"),
        None if rb.started_at.is_some() => badge("unfinished"),
        None => "<span class=\"badge b-unfinished\">requested, not started</span>".into(),
    };
    let _ = writeln!(
        o,
        "<section id=\"rollback\">\n<h2>Rollback {state}</h2>\n<p>Requested {} UTC: {}</p>\n\
         <p>Phases, in the order they roll back: {}</p>\n<ul class=\"plain\">",
        esc(&clock(&rb.requested_at)),
        esc(&rb.reason),
        rb.phases
            .iter()
            .map(|p| format!("<code>{}</code>", esc(p)))
            .collect::<Vec<_>>()
            .join(" &rarr; ")
    );
    for u in &rb.undone {
        let _ = writeln!(
            o,
            "<li>{} <code>{}</code></li>",
            crate::state::record::undone_label(u),
            esc(u)
        );
    }
    for n in &rb.not_undone {
        let _ = writeln!(
            o,
            "<li style=\"color:var(--fail)\"><b>NOT undone</b> {}</li>",
            esc(n)
        );
    }
    let _ = writeln!(o, "</ul>\n</section>");
}

fn audit(o: &mut String, r: &Report) {
    let _ = writeln!(
        o,
        "<section id=\"audit\">\n<h2>Audit log</h2>\n<p class=\"{}\">{}</p>\n\
         <p>{} records &middot; final digest <code>{}</code></p>\n</section>",
        if r.audit.ok { "good" } else { "alert" },
        esc(&r.audit.message),
        r.audit.records,
        esc(&r.audit.final_digest)
    );
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn escapes_everything_markup_can_hide_in() {
        assert_eq!(
            esc("<a href='x'>\"&\"</a>"),
            "&lt;a href=&#39;x&#39;&gt;&quot;&amp;&quot;&lt;/a&gt;"
        );
    }

    #[test]
    fn ticks_are_round() {
        assert!((tick_step(3.7, 8.0) - 0.5).abs() < 1e-9);
        assert!((tick_step(100.0, 4.0) - 50.0).abs() < 1e-9);
        assert!((tick_step(0.009, 4.0) - 0.005).abs() < 1e-12);
    }
}
