//! The run as people see it. In a terminal: a header per phase, a spinner with elapsed time for
//! the running step, its live output indented under it, and a summary table at the end. When
//! not a terminal: the same facts as plain lines, and step output passed through untouched.
//! rollout's own lines go to stderr; step output keeps its stream (stdout or stderr).
//!
//! Every text from a value, the runbook or a command (names, commands, reasons, output) reaches
//! a terminal with its control characters escaped (see [`crate::escape`]): a step's output or a
//! variable cannot clear the screen, move the cursor or retitle the window, and only rollout's
//! own styling is sent as escape sequences. Output going to a file or a pipe is passed on as
//! the command wrote it, byte for byte.

use std::io::{IsTerminal, Write};
use std::time::Duration;

use console::Style;
use indicatif::{ProgressBar, ProgressStyle};

use crate::exec::event::{Event, Level, Listener, OutputStream};
use crate::runbook::{Diagnostic, Location, Source};
use crate::state::record::StepStatus;

pub struct TerminalView {
    fancy: bool,
    bold: Style,
    dim: Style,
    green: Style,
    red: Style,
    yellow: Style,
    spinner: Option<ProgressBar>,
    /// A partial output line waiting for its end (fancy mode indents whole lines).
    pending: Vec<u8>,
    /// Whether stdout and stderr are terminals: output passed through to one is escaped.
    out_tty: bool,
    err_tty: bool,
    /// Per stream, a byte held back while output passes through escaped (see
    /// [`crate::escape::bytes`]).
    held: [Option<u8>; 2],
    /// The runbook, to show where a failing step is written, as validation shows a problem,
    /// and whether in colour.
    runbook: Option<(Source, bool)>,
}

impl TerminalView {
    /// `fancy` when stderr is a terminal; `color` when colours are wanted.
    pub fn new(fancy: bool, color: bool) -> Self {
        let s = |st: Style| st.force_styling(color);
        TerminalView {
            fancy,
            bold: s(Style::new().bold()),
            dim: s(Style::new().dim()),
            green: s(Style::new().green()),
            red: s(Style::new().red()),
            yellow: s(Style::new().yellow()),
            spinner: None,
            pending: Vec::new(),
            out_tty: std::io::stdout().is_terminal(),
            err_tty: std::io::stderr().is_terminal(),
            held: [None, None],
            runbook: None,
        }
    }

    /// Shows a step that fails for good with its place in `runbook`: `file:line:column`, the
    /// line, and a caret under what the step does.
    #[must_use]
    pub fn with_runbook(mut self, runbook: Source, color: bool) -> Self {
        self.runbook = Some((runbook, color));
        self
    }

    /// Where a step that failed for good is written, drawn as validation draws a problem.
    fn locate(&self, step: &str, status: StepStatus, reason: Option<&str>, at: &Location) {
        let Some((source, color)) = &self.runbook else {
            return;
        };
        let what = match status {
            StepStatus::Failed => "failed",
            StepStatus::TimedOut => "timed out",
            StepStatus::Ok | StepStatus::FailedIgnored | StepStatus::Interrupted => return,
        };
        let drawn = Diagnostic::new(at.span.clone(), format!("step `{step}` {what}"))
            .label(reason.unwrap_or(what))
            .render(source, *color);
        for l in drawn.lines() {
            self.line(l);
        }
    }

    fn line(&self, text: &str) {
        match &self.spinner {
            Some(pb) => pb.suspend(|| eprintln!("{text}")),
            None => eprintln!("{text}"),
        }
    }

    fn stop_spinner(&mut self) {
        if let Some(pb) = self.spinner.take() {
            pb.finish_and_clear();
        }
    }

    fn flush_pending(&mut self) {
        if !self.pending.is_empty() {
            let text = String::from_utf8_lossy(&self.pending).into_owned();
            self.pending.clear();
            self.line(&format!(
                "  {} {}",
                self.dim.apply_to("│"),
                crate::escape::text(&text)
            ));
        }
        // What plain output held back (half a character) goes out as it was.
        for (i, held) in self.held.iter_mut().enumerate() {
            if let Some(b) = crate::escape::finish(held) {
                let _ = if i == 0 {
                    std::io::stdout().lock().write_all(&[b])
                } else {
                    std::io::stderr().lock().write_all(&[b])
                };
            }
        }
    }

    fn output(&mut self, stream: OutputStream, data: &[u8]) {
        if !self.fancy {
            let _ = match stream {
                OutputStream::Stdout if self.out_tty => std::io::stdout()
                    .lock()
                    .write_all(&crate::escape::bytes(data, &mut self.held[0])),
                OutputStream::Stderr if self.err_tty => std::io::stderr()
                    .lock()
                    .write_all(&crate::escape::bytes(data, &mut self.held[1])),
                OutputStream::Stdout => std::io::stdout().lock().write_all(data),
                OutputStream::Stderr => std::io::stderr().lock().write_all(data),
            };
            return;
        }
        self.pending.extend_from_slice(data);
        while let Some(nl) = self.pending.iter().position(|&b| b == b'\n') {
            let line: Vec<u8> = self.pending.drain(..=nl).collect();
            let text = String::from_utf8_lossy(&line[..line.len() - 1]).into_owned();
            self.line(&format!(
                "  {} {}",
                self.dim.apply_to("│"),
                crate::escape::text(text.trim_end_matches('\r'))
            ));
        }
    }
}

/// A spinner whose message is followed by the time left: `⠋ soak 1m05s left`.
fn countdown(total: Duration) -> ProgressStyle {
    ProgressStyle::with_template("  {spinner} {msg} {left} left")
        .unwrap_or_else(|_| ProgressStyle::default_spinner())
        .with_key(
            "left",
            move |state: &indicatif::ProgressState, w: &mut dyn std::fmt::Write| {
                // Rounded up, so the count ends at 1s rather than sitting at 0s.
                let left = total.saturating_sub(state.elapsed());
                let secs = left.as_secs() + u64::from(left.subsec_nanos() > 0);
                let _ = w.write_str(&clock(Duration::from_secs(secs)));
            },
        )
}

/// A measured trend in eight levels, lowest to highest value seen: `▁▂▅█`.
/// Values that differ only by floating-point noise (`0.1 + 0.2` against `0.3`, a ratio that is
/// `-2e-19` then `0`) draw a flat line.
fn sparkline(values: &[f64]) -> String {
    const BARS: [char; 8] = ['▁', '▂', '▃', '▄', '▅', '▆', '▇', '█'];
    let low = values.iter().copied().fold(f64::INFINITY, f64::min);
    let high = values.iter().copied().fold(f64::NEG_INFINITY, f64::max);
    let scale = low.abs().max(high.abs());
    let (low, high) = if high - low <= scale * 1e-9 || high - low < 1e-12 {
        (low, low)
    } else {
        (low, high)
    };
    values
        .iter()
        .map(|x| {
            let level = if high > low {
                ((x - low) / (high - low) * 7.0).round()
            } else {
                0.0
            };
            // Bounded to 0..=7 above; the cast cannot truncate.
            #[allow(clippy::cast_possible_truncation, clippy::cast_sign_loss)]
            BARS[(level as usize).min(7)]
        })
        .collect()
}

/// `45s`, `1m05s`, `2h03m07s`.
fn clock(d: Duration) -> String {
    let s = d.as_secs();
    if s >= 3600 {
        format!("{}h{:02}m{:02}s", s / 3600, s % 3600 / 60, s % 60)
    } else if s >= 60 {
        format!("{}m{:02}s", s / 60, s % 60)
    } else {
        format!("{s}s")
    }
}

fn secs(ms: u64) -> String {
    let d = Duration::from_millis(ms);
    if d.as_secs() >= 60 {
        format!("{}m{:02}s", d.as_secs() / 60, d.as_secs() % 60)
    } else {
        format!("{:.1}s", d.as_secs_f64())
    }
}

impl Listener for TerminalView {
    fn on(&mut self, event: &Event) {
        if let Event::Output { stream, data, .. } = event {
            self.output(*stream, data);
            return;
        }
        let mut escaped = event.clone();
        escaped.texts_mut(&mut |s| {
            crate::escape::in_place(s);
        });
        self.show(&escaped);
    }
}

impl TerminalView {
    /// Shows an event whose texts are escaped already.
    fn show(&mut self, event: &Event) {
        match event {
            Event::RunStarted {
                run_id,
                name,
                resumed,
                ..
            } => {
                let verb = if *resumed { "resuming" } else { "starting" };
                self.line(&format!(
                    "{} run {} of `{name}`",
                    self.bold.apply_to(verb),
                    self.bold.apply_to(run_id)
                ));
            }
            Event::Notice { level, message } => {
                let tag = match level {
                    Level::Warning => self.yellow.apply_to("warning:").to_string(),
                    Level::Info => self.dim.apply_to("note:").to_string(),
                };
                self.line(&format!("{tag} {message}"));
            }
            Event::PhaseStarted {
                index,
                total,
                title,
                phase,
            } => {
                self.line(&format!(
                    "\n{}",
                    self.bold
                        .apply_to(format!("phase {index}/{total}: {title} ({phase})"))
                ));
            }
            Event::StepStarted {
                step,
                name,
                attempt,
                display,
                kind,
                ..
            } => {
                let label = name
                    .as_deref()
                    .map_or_else(|| step.clone(), |n| format!("{step}: {n}"));
                let again = if *attempt > 1 {
                    format!(" (attempt {attempt})")
                } else {
                    String::new()
                };
                let mut header = format!("{} {label}{again}", self.bold.apply_to("▸"));
                if !self.fancy {
                    header = format!("--> step {label}{again} [{kind}]");
                }
                self.line(&header);
                // A value of several lines (a sign-off's title, a question) keeps its indentation.
                for l in display.iter().flat_map(|l| l.lines()) {
                    let prefix = if matches!(*kind, "run" | "kubectl") {
                        "$ "
                    } else {
                        ""
                    };
                    self.line(&format!("  {}", self.dim.apply_to(format!("{prefix}{l}"))));
                }
                // A gate's prompt owns the terminal: a spinner redrawing its line would erase it.
                let asks = matches!(*kind, "confirm" | "checklist" | "signoff");
                if self.fancy && !asks {
                    let pb = ProgressBar::new_spinner();
                    pb.set_style(
                        ProgressStyle::with_template("  {spinner} {msg} {elapsed}")
                            .unwrap_or_else(|_| ProgressStyle::default_spinner()),
                    );
                    pb.set_message(label);
                    pb.enable_steady_tick(Duration::from_millis(120));
                    self.spinner = Some(pb);
                }
            }
            Event::StepFinished {
                step,
                status,
                duration_ms,
                reason,
                location,
                ..
            } => {
                self.flush_pending();
                self.stop_spinner();
                let (mark, word) = match status {
                    StepStatus::Ok => (self.green.apply_to("✓"), "ok"),
                    StepStatus::FailedIgnored => (self.yellow.apply_to("!"), "failed, continuing"),
                    StepStatus::TimedOut => (self.red.apply_to("✗"), "timed out"),
                    StepStatus::Interrupted => (self.yellow.apply_to("■"), "interrupted"),
                    StepStatus::Failed => (self.red.apply_to("✗"), "failed"),
                };
                let why = reason
                    .as_deref()
                    .map(|r| format!(": {r}"))
                    .unwrap_or_default();
                let text = if self.fancy {
                    format!("  {mark} {step} {word} in {}{why}", secs(*duration_ms))
                } else {
                    format!("<-- step {step} {word} in {}{why}", secs(*duration_ms))
                };
                self.line(&text);
                if let Some(at) = location {
                    self.locate(step, *status, reason.as_deref(), at);
                }
            }
            Event::StepSkipped { step, reason, .. } => {
                self.line(&format!(
                    "  {} {step} skipped: {reason}",
                    self.dim.apply_to("-")
                ));
            }
            Event::Measurement {
                index,
                count,
                verdict,
                values,
                detail,
                condition,
                trend,
                left_ms,
                ..
            } => {
                let shown = match (values.is_empty(), detail) {
                    (false, _) => values
                        .iter()
                        .map(|(series, x)| {
                            let x = crate::runbook::condition::number(*x);
                            if series.is_empty() {
                                x
                            } else {
                                format!("{series}={x}")
                            }
                        })
                        .collect::<Vec<_>>()
                        .join(", "),
                    (true, Some(why)) => why.clone(),
                    (true, None) => String::new(),
                };
                let mark = match *verdict {
                    "pass" => self.dim.apply_to("pass").to_string(),
                    other => self.yellow.apply_to(other).to_string(),
                };
                let left = if *left_ms > 0 {
                    format!(", {} left", secs(*left_ms))
                } else {
                    String::new()
                };
                self.line(&format!(
                    "    {index}/{count} {mark} {shown} (want {condition}) {}{left}",
                    sparkline(trend)
                ));
            }
            Event::Waiting { step, duration_ms } => {
                let total = Duration::from_millis(*duration_ms);
                match &self.spinner {
                    Some(pb) => pb.set_style(countdown(total)),
                    None => self.line(&format!("    waiting {} for {step}", clock(total))),
                }
            }
            Event::Retrying {
                step,
                attempt,
                delay_ms,
            } => {
                self.line(&format!(
                    "  {} retrying {step} (attempt {attempt}) in {}",
                    self.yellow.apply_to("↻"),
                    secs(*delay_ms)
                ));
            }
            // Output went to `output` before the texts were escaped.
            Event::PhaseFinished { .. } | Event::Output { .. } => {}
            Event::Paused {
                reason,
                resume_with,
                waiting_for_approval,
            } => {
                self.stop_spinner();
                let what = if *waiting_for_approval {
                    "waiting for approval"
                } else {
                    "paused"
                };
                self.line(&format!(
                    "\n{} {reason}",
                    self.yellow.apply_to(format!("{what}:"))
                ));
                self.line(&format!("resume with: {}", self.bold.apply_to(resume_with)));
            }
            Event::RunFinished {
                run_id,
                outcome,
                duration_ms,
                journal,
                phases,
            } => {
                self.stop_spinner();
                let outcome = outcome.replace('_', " ");
                self.line(&format!(
                    "\n{}",
                    self.bold.apply_to(format!(
                        "run {run_id}: {outcome} after {}",
                        secs(*duration_ms)
                    ))
                ));
                let width = phases
                    .iter()
                    .map(|p| p.phase.len())
                    .max()
                    .unwrap_or(5)
                    .max(5);
                self.line(&format!(
                    "  {:width$}  {:11}  {}",
                    "phase", "status", "duration"
                ));
                for p in phases {
                    let status = match p.status {
                        "succeeded" => self.green.apply_to(p.status),
                        "failed" => self.red.apply_to(p.status),
                        _ => self.dim.apply_to(p.status),
                    };
                    self.line(&format!(
                        "  {:width$}  {:11}  {}",
                        p.phase,
                        status,
                        if p.duration_ms > 0 {
                            secs(p.duration_ms)
                        } else {
                            "-".into()
                        }
                    ));
                }
                self.line(&format!("record: {journal}"));
            }
            Event::AuditSealed { audit_digest } => {
                self.line(&format!("audit digest: {audit_digest}"));
            }
            Event::AbortTripped { reason, .. } => {
                self.stop_spinner();
                self.line(&format!("{} {reason}", self.yellow.apply_to("warning:")));
            }
            Event::NotificationFailed { message } => {
                self.line(&format!("{} {message}", self.yellow.apply_to("warning:")));
            }
            Event::RollbackPlanned {
                reason,
                phases,
                resumed,
            } => {
                self.stop_spinner();
                let head = if *resumed {
                    "Going on with the rollback"
                } else {
                    "Rollback plan"
                };
                self.line(&format!(
                    "\n{} {}",
                    self.bold.apply_to(head),
                    self.dim.apply_to(format!("({reason})"))
                ));
                for (i, p) in phases.iter().enumerate() {
                    self.line(&format!("  {}. {} ({})", i + 1, p.phase, p.title));
                    if let Some(by) = &p.covered_by {
                        self.line(&format!(
                            "       {}",
                            self.dim.apply_to(format!(
                                "covered by the rollback of `{by}`: its own rollback steps do not run"
                            ))
                        ));
                        continue;
                    }
                    if p.steps.is_empty() {
                        self.line(&format!(
                            "       {}",
                            self.dim.apply_to("no rollback steps")
                        ));
                    }
                    for (id, lines) in &p.steps {
                        self.line(&format!("     - {id}"));
                        for l in lines {
                            self.line(&format!("         {}", self.dim.apply_to(l)));
                        }
                    }
                }
            }
            Event::RollbackFinished {
                complete,
                undone,
                not_undone,
            } => {
                self.stop_spinner();
                if *complete {
                    self.line(&format!(
                        "\n{}",
                        self.green
                            .apply_to("rollback complete: everything it covers was undone")
                    ));
                } else {
                    self.line(&format!(
                        "\n{}",
                        self.red
                            .apply_to("rollback INCOMPLETE: some steps were not undone")
                    ));
                }
                for u in undone {
                    let label = crate::state::record::undone_label(u);
                    let shown = u
                        .strip_suffix(": skipped")
                        .map_or_else(|| u.clone(), |n| format!("{n} (`when` was false)"));
                    let label = if label == "undone" {
                        self.green.apply_to(label).to_string()
                    } else {
                        self.dim.apply_to(label).to_string()
                    };
                    self.line(&format!("  {label} {shown}"));
                }
                for n in not_undone {
                    self.line(&format!("  {} {n}", self.red.apply_to("NOT undone")));
                }
            }
        }
    }
}

/// `--output json`: one JSON object per event, one per line, on stdout.
pub struct JsonLines;

impl Listener for JsonLines {
    fn on(&mut self, event: &Event) {
        if let Ok(line) = serde_json::to_string(event) {
            let mut out = std::io::stdout().lock();
            let _ = writeln!(out, "{line}");
            let _ = out.flush();
        }
    }
}
