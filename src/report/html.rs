//! The report as one self-contained HTML page: inline CSS and SVG, no scripts, no network
//! assets, laid out by `templates/report/report.html.tera`, which escapes every value it
//! inserts (tera's HTML escaping: the log holds command output). This file only works out the
//! geometry of the charts, a Gantt-like timeline and one plot per metric check, as numbers
//! already written the way the page shows them.

use serde::Serialize;
use tera::{Kwargs, State};

use super::{
    MetricCheck, PhaseRun, RenderError, Report, StepRun, between, duration, millis, value,
};

const TEMPLATE: (&str, &str) = (
    "report.html",
    include_str!("../../templates/report/report.html.tera"),
);

pub fn render(r: &Report) -> Result<String, RenderError> {
    let timeline = Timeline::of(r);
    let plots: Vec<Plot> = r.checks.iter().map(Plot::of).collect();
    super::render(TEMPLATE, tera::escape_html, r, |tera, context| {
        tera.register_filter("since", |at: &str, kwargs: Kwargs, _: &State| {
            let start = kwargs.must_get::<&str>("start")?;
            Ok::<_, tera::Error>(between(start, at))
        });
        tera.register_filter("line_count", |text: &str, _: Kwargs, _: &State| {
            text.lines().count()
        });
        context.insert("timeline", &timeline);
        context.insert("plots", &plots);
        context.insert("frame", &Frame::new());
    })
}

/// A coordinate as the page writes it: one decimal.
fn at(v: f64) -> String {
    format!("{v:.1}")
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

fn time(at: &str) -> f64 {
    millis(at) as f64
}

fn bar_colour(status: &str) -> &'static str {
    match status {
        "ok" | "succeeded" => "var(--ok)",
        "failed" | "timed_out" | "interrupted" | "not_rolled_back" => "var(--fail)",
        "skipped" => "var(--skip)",
        "rolled_back" => "var(--rb)",
        _ => "var(--warn)",
    }
}

/// Where a bar's label goes: after the bar, or before it when the bar ends near the right edge.
fn label_at(x0: f64, x1: f64) -> (String, &'static str) {
    let end = x1.max(x0 + 3.0);
    if end + 110.0 > 1020.0 {
        (at(x0 - 6.0), "end")
    } else {
        (at(end + 6.0), "start")
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

/// The timeline: a row per phase entry and per step, on a time axis, with markers for the
/// moments that are not steps (an abort criterion tripping, a pause, a resume).
#[derive(Serialize)]
struct Timeline<'r> {
    height: String,
    /// Where grid lines and markers start and end, and where a marker's tip goes.
    grid_top: String,
    mark_top: String,
    mark_tip: String,
    bottom: String,
    row: String,
    ticks: Vec<Tick>,
    phases: Vec<PhaseBar<'r>>,
    marks: Vec<Mark>,
}

#[derive(Serialize)]
struct Tick {
    at: String,
    label: String,
}

/// A level on the value axis: a tick (labelled below its line) or a threshold (above it).
#[derive(Serialize)]
struct Level {
    at: String,
    text_y: String,
    label: String,
}

/// A bar: where its row starts, where the bar and its label go.
#[derive(Serialize)]
struct Bar {
    y: String,
    text_y: String,
    bar_y: String,
    x0: String,
    width: String,
    height: String,
    label_x: String,
    anchor: &'static str,
    fill: &'static str,
}

#[derive(Serialize)]
struct PhaseBar<'r> {
    run: &'r PhaseRun,
    bar: Bar,
    steps: Vec<StepBar<'r>>,
}

#[derive(Serialize)]
struct StepBar<'r> {
    run: &'r StepRun,
    bar: Bar,
    /// The step id, cut to fit the label column.
    short: String,
}

#[derive(Serialize)]
struct Mark {
    class: &'static str,
    colour: &'static str,
    title: String,
    x: String,
}

const ROW: f64 = 22.0;
const TOP: f64 = 28.0;

impl<'r> Timeline<'r> {
    fn of(r: &'r Report) -> Timeline<'r> {
        let t0 = time(&r.started_at);
        let t1 = time(&r.ended_at).max(t0 + 1.0);
        let span = t1 - t0;
        let (label_w, plot_w) = (250.0, 1040.0 - 250.0 - 20.0);
        let x = |t: f64| label_w + (t - t0).clamp(0.0, span) / span * plot_w;
        let rows: usize = r.phases.iter().map(|p| 1 + p.steps.len()).sum();
        let height = TOP + rows as f64 * ROW + 10.0;
        // Round ticks in seconds, with a grid line each.
        let mut ticks = Vec::new();
        let step = tick_step(span / 1000.0, 8.0);
        let mut tick = 0.0;
        while tick <= span / 1000.0 + 1e-9 {
            ticks.push(Tick {
                at: at(x(t0 + tick * 1000.0)),
                label: axis_time(whole_ms(tick * 1000.0)),
            });
            tick += step;
        }
        let bar = |y: f64, start: &str, end: Option<&str>, inset: f64, fill: &'static str| {
            let (x0, x1) = (x(time(start)), x(end.map_or(t1, time)));
            let (label_x, anchor) = label_at(x0, x1);
            Bar {
                y: at(y),
                text_y: at(y + 15.0),
                bar_y: at(y + inset),
                x0: at(x0),
                width: at((x1 - x0).max(3.0)),
                height: at(ROW - 2.0 * inset),
                label_x,
                anchor,
                fill,
            }
        };
        let mut y = TOP;
        let mut phases = Vec::new();
        for p in &r.phases {
            let fill = if p.rollback {
                "url(#hatch)"
            } else {
                bar_colour(&p.status)
            };
            let phase_bar = bar(y, &p.started_at, p.ended_at.as_deref(), 4.0, fill);
            y += ROW;
            let mut steps = Vec::new();
            for s in &p.steps {
                let colour = if p.rollback && s.status == "ok" {
                    "var(--rb)"
                } else {
                    bar_colour(&s.status)
                };
                steps.push(StepBar {
                    run: s,
                    bar: bar(y, &s.started_at, s.ended_at.as_deref(), 6.0, colour),
                    short: truncate(&s.step, 28),
                });
                y += ROW;
            }
            phases.push(PhaseBar {
                run: p,
                bar: phase_bar,
                steps,
            });
        }
        let aborts = r.aborts.iter().map(|a| {
            let title = format!("abort criterion `{}` tripped: {}", a.criterion, a.action);
            ("abort", "#d64545", &a.at, title)
        });
        let pauses =
            (r.pauses.iter()).map(|p| ("pause", "#de911d", &p.at, format!("paused: {}", p.reason)));
        let resumes = (r.sessions.iter().filter(|s| s.kind == "resumed")).map(|s| {
            (
                "resume",
                "#2680c2",
                &s.at,
                format!("resumed by {}", s.operator),
            )
        });
        let marks = aborts
            .chain(pauses)
            .chain(resumes)
            .map(|(class, colour, when, title)| Mark {
                class,
                colour,
                title,
                x: at(x(time(when))),
            })
            .collect();
        Timeline {
            height: height.to_string(),
            grid_top: at(TOP - 6.0),
            mark_top: at(TOP - 4.0),
            mark_tip: at(TOP - 2.0),
            bottom: at(height - 6.0),
            row: ROW.to_string(),
            ticks,
            phases,
            marks,
        }
    }
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

/// One metric check's measurements over time, against its threshold.
#[derive(Serialize)]
struct Plot {
    /// Value ticks, with a grid line each.
    values: Vec<Level>,
    /// Time ticks.
    times: Vec<Tick>,
    /// Where each threshold line goes.
    thresholds: Vec<Level>,
    series: Vec<Series>,
    /// Measurements without a value (no data, errors), marked along the time axis.
    gaps: Vec<Gap>,
}

#[derive(Serialize)]
struct Series {
    name: String,
    colour: &'static str,
    points: String,
    dots: Vec<Dot>,
}

#[derive(Serialize)]
struct Dot {
    x: String,
    y: String,
    fill: &'static str,
    title: String,
}

#[derive(Serialize)]
struct Gap {
    x: String,
    offset_ms: u64,
    detail: Option<String>,
}

/// The plot's frame: the SVG is 1040 by 280, the plotting area inside these margins.
const LEFT: f64 = 70.0;
const RIGHT: f64 = 1040.0 - 20.0;
const PLOT_TOP: f64 = 16.0;
const PLOT_BOTTOM: f64 = 280.0 - 46.0;

/// Where the frame of every plot and its axes' labels go.
#[derive(Serialize)]
struct Frame {
    left: String,
    top: String,
    width: String,
    height: String,
    right: String,
    bottom: String,
    /// The value labels' right edge, the time labels' baseline, a time tick's end.
    value_x: String,
    time_y: String,
    tick_end: String,
    /// The middle of each axis, for its caption; the caption of the time axis's baseline.
    middle_x: String,
    middle_y: String,
    caption_y: String,
    /// The threshold labels' right edge; where a gap's marker stands.
    threshold_x: String,
    gap_y: String,
}

impl Frame {
    fn new() -> Frame {
        Frame {
            left: LEFT.to_string(),
            top: PLOT_TOP.to_string(),
            width: (RIGHT - LEFT).to_string(),
            height: (PLOT_BOTTOM - PLOT_TOP).to_string(),
            right: at(RIGHT),
            bottom: at(PLOT_BOTTOM),
            value_x: at(LEFT - 6.0),
            time_y: at(PLOT_BOTTOM + 16.0),
            tick_end: at(PLOT_BOTTOM + 4.0),
            middle_x: at(f64::midpoint(LEFT, RIGHT)),
            middle_y: at(f64::midpoint(PLOT_TOP, PLOT_BOTTOM)),
            caption_y: at(280.0 - 8.0),
            threshold_x: at(RIGHT - 4.0),
            gap_y: at(PLOT_BOTTOM - 2.0),
        }
    }
}

impl Plot {
    fn of(c: &MetricCheck) -> Plot {
        let lines = thresholds(c.condition.as_deref());
        let (lo, hi, ystep) = value_range(c, &lines);
        let t_lo = c.measurements.first().map_or(0.0, |m| m.offset_ms as f64);
        let t_hi = c
            .measurements
            .last()
            .map_or(1.0, |m| m.offset_ms as f64)
            .max(t_lo + 1.0);
        let px = |t: f64| LEFT + (t - t_lo) / (t_hi - t_lo) * (RIGHT - LEFT);
        let py = |v: f64| PLOT_TOP + (hi - v) / (hi - lo) * (PLOT_BOTTOM - PLOT_TOP);
        let mut values = Vec::new();
        let mut tick_v = lo;
        while tick_v <= hi + ystep * 1e-6 {
            let y = py(tick_v);
            values.push(Level {
                at: at(y),
                text_y: at(y + 4.0),
                label: value((tick_v / ystep).round() * ystep),
            });
            tick_v += ystep;
        }
        // Time since the run started; one measurement (no span of time) has one label.
        let mut times = Vec::new();
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
            times.push(Tick {
                at: at(px(tick_t)),
                label: axis_time(whole_ms(tick_t)),
            });
            tick_t += xstep;
        }
        let series = c
            .series
            .iter()
            .enumerate()
            .map(|(i, series)| {
                let dots: Vec<Dot> = c
                    .measurements
                    .iter()
                    .filter_map(|m| {
                        let (_, v) = m.values.iter().find(|(s, _)| s == series)?;
                        Some(Dot {
                            x: at(px(m.offset_ms as f64)),
                            y: at(py(*v)),
                            fill: verdict_colour(&m.verdict),
                            title: format!(
                                "+{} {series}: {} ({})",
                                duration(m.offset_ms),
                                value(*v),
                                m.verdict
                            ),
                        })
                    })
                    .collect();
                let points: Vec<String> = dots.iter().map(|d| format!("{},{}", d.x, d.y)).collect();
                Series {
                    name: series.clone(),
                    colour: SERIES[i % SERIES.len()],
                    points: points.join(" "),
                    dots,
                }
            })
            .collect();
        let gaps = c
            .measurements
            .iter()
            .filter(|m| m.values.is_empty())
            .map(|m| Gap {
                x: at(px(m.offset_ms as f64) - 5.0),
                offset_ms: m.offset_ms,
                detail: m.detail.clone(),
            })
            .collect();
        Plot {
            values,
            times,
            thresholds: (lines.iter().map(|th| py(*th)))
                .map(|y| Level {
                    at: at(y),
                    text_y: at(y - 5.0),
                    label: String::new(),
                })
                .collect(),
            series,
            gaps,
        }
    }
}

/// The value axis: from `lo` to `hi` in round steps of `ystep`, taking in every value and
/// threshold with a margin, so that no point sits on the frame (and no axis below zero for
/// values that are not).
fn value_range(c: &MetricCheck, lines: &[f64]) -> (f64, f64, f64) {
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
    (lo, hi, ystep)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn escapes_everything_markup_can_hide_in() {
        let mut out = Vec::new();
        tera::escape_html("<a href='x'>\"&\"</a>", &mut out).unwrap();
        assert_eq!(
            String::from_utf8(out).unwrap(),
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
