//! Durations, counts and thresholds that a runbook may write as they are (`"10m"`, `20`,
//! `"< 0.01"`) or as a template naming variables (`"{{ soak }}"`, `"< {{ max_error_ratio }}"`),
//! so that the runbook reviewed for production is the one rehearsed in staging with other values.
//!
//! A templated value is resolved when the variables are known (plan, run), by the one renderer
//! both use; the checks that depend on the value (an interval longer than zero, a window no
//! shorter than its interval, ...) are the same functions whether the value was written or
//! templated. Nothing here reads files or runs anything.

use std::ops::Range;

use super::condition::{Condition, parse_condition};
use super::duration::{Duration, parse_duration};
use super::model::{Sampling, VarDecl, VarType};
use super::template::Tpl;

/// A value written as it is, or a template naming variables.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum Param<T> {
    Fixed(T),
    Template(Tpl),
}

impl<T: Copy> Param<T> {
    /// The value when it is written as it is.
    pub fn fixed(self) -> Option<T> {
        match self {
            Param::Fixed(v) => Some(v),
            Param::Template(_) => None,
        }
    }
}

/// What a templated value must render to.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ParamKind {
    /// A duration such as `"10m"`.
    Duration,
    /// A whole number (`samples`).
    Count,
    /// A threshold such as `"< 0.01"`.
    Condition,
}

impl ParamKind {
    pub fn what(self) -> &'static str {
        match self {
            ParamKind::Duration => "a duration",
            ParamKind::Count => "a whole number",
            ParamKind::Condition => "a threshold",
        }
    }

    /// How a template of this kind is written.
    pub fn example(self) -> &'static str {
        match self {
            ParamKind::Duration => "{{ soak }}",
            ParamKind::Count => "{{ samples }}",
            ParamKind::Condition => "< {{ max_error_ratio }}",
        }
    }

    /// The variable types whose values this kind of slot takes.
    fn fits(self, ty: VarType) -> bool {
        match self {
            ParamKind::Duration => matches!(ty, VarType::Duration | VarType::Integer),
            ParamKind::Count => ty == VarType::Integer,
            ParamKind::Condition => matches!(ty, VarType::Integer | VarType::Float),
        }
    }

    fn wanted_type(self) -> &'static str {
        match self {
            ParamKind::Duration => "type = \"duration\"",
            ParamKind::Count => "type = \"integer\"",
            ParamKind::Condition => "type = \"float\" (or \"integer\")",
        }
    }
}

/// One templated value of the runbook, for `validate` to check what it names.
#[derive(Debug, Clone)]
pub struct ParamUse {
    pub tpl: Tpl,
    pub kind: ParamKind,
    /// The key it is written under, e.g. `for`.
    pub key: &'static str,
}

/// Whether a written value is a template (and so resolved later) rather than a literal.
pub fn is_template(text: &str) -> bool {
    text.contains("{{") || text.contains("{%")
}

/// Parses `text` as `kind`; for counts, a whole number of at least `min`.
pub fn parse_duration_value(text: &str) -> Result<Duration, String> {
    parse_duration(text)
}

pub fn parse_count(text: &str, min: u32) -> Result<u32, String> {
    let n: u32 = text
        .trim()
        .replace('_', "")
        .parse()
        .map_err(|_| format!("`{}` is not a whole number", text.trim()))?;
    if n < min {
        return Err(format!("it must be at least {min}"));
    }
    Ok(n)
}

pub fn parse_threshold(text: &str) -> Result<Condition, String> {
    parse_condition(text)
}

/// What `validate` says about a template written where `kind` goes, given the variables it
/// names (each with its declaration, or `None` when it is not a variable): `Err` with the
/// message and the span to point at.
///
/// The shape is checked too: each variable is replaced by a sample value of its type and the
/// result parsed, so `for = "{{ minutes }}"` with an integer `minutes` is refused at once (no
/// unit) while `"{{ minutes }}m"` is accepted.
pub fn check_names(
    kind: ParamKind,
    key: &str,
    source: &str,
    names: &[(&str, Range<usize>, Option<&VarDecl>)],
    capture_of: &dyn Fn(&str) -> Option<String>,
    suggest: &dyn Fn(&str) -> Option<String>,
) -> Result<(), (String, Range<usize>, String)> {
    if names.is_empty() {
        return Err((
            format!("`{key}` is a template that names no variable"),
            0..0,
            format!(
                "write {} as it is, or name a variable: `{{{{ name }}}}`",
                kind.what()
            ),
        ));
    }
    let mut sample = source.to_string();
    for (name, span, decl) in names {
        let Some(decl) = decl else {
            let why = match capture_of(name) {
                Some(step) => format!(
                    "`{name}` is captured by step `{step}` while the run goes; `{key}` is needed before that"
                ),
                None => format!("`{name}` is not a variable"),
            };
            let help = match suggest(name) {
                Some(other) => format!("did you mean `{other}`?"),
                None => format!(
                    "{} here comes from `[vars]`, whose values are known when the plan is made; declare `{name}` under [vars] with {}",
                    kind.what(),
                    kind.wanted_type()
                ),
            };
            return Err((
                format!("`{key}` can only name variables: {why}"),
                span.clone(),
                help,
            ));
        };
        if decl.secret.is_some() {
            return Err((
                format!("`{key}` names secret variable `{name}`"),
                span.clone(),
                "a plan shows the value of every duration, count and threshold: use a variable that is not secret".into(),
            ));
        }
        if !kind.fits(decl.ty) {
            return Err((
                format!(
                    "`{key}` takes {}, but `{name}` is {} variable",
                    kind.what(),
                    article(decl.ty)
                ),
                span.clone(),
                format!("declare it as `[vars.{name}]` with {}", kind.wanted_type()),
            ));
        }
        let example = match decl.ty {
            VarType::Duration => "1s",
            VarType::Float => "0.5",
            _ => "1",
        };
        sample = replace_tag(&sample, name, example);
    }
    let parsed = match kind {
        ParamKind::Duration => parse_duration(&sample).map(|_| ()),
        ParamKind::Count => parse_count(&sample, 0).map(|_| ()),
        ParamKind::Condition => parse_condition(&sample).map(|_| ()),
    };
    parsed.map_err(|why| {
        let vars: Vec<String> = names
            .iter()
            .filter_map(|(n, _, d)| d.map(|d| format!("{} `{n}`", d.ty.name())))
            .collect();
        (
            format!(
                "`{key}` = `{source}` does not make {} from {}: with a sample value, {why}",
                kind.what(),
                vars.join(" and ")
            ),
            0..0,
            match kind {
                ParamKind::Duration => {
                    "a duration variable goes in whole (`{{ soak }}`); an integer needs a unit after it (`{{ minutes }}m`)".into()
                }
                ParamKind::Count => "write the variable alone: `{{ samples }}`".into(),
                ParamKind::Condition => {
                    "write the operator, then the variable: `< {{ max_error_ratio }}`".into()
                }
            },
        )
    })
}

/// `source` with every `{{ name }}` tag (any spacing) replaced by `value`.
fn replace_tag(source: &str, name: &str, value: &str) -> String {
    let mut out = String::with_capacity(source.len());
    let mut rest = source;
    while let Some(open) = rest.find("{{") {
        let Some(close) = rest[open..].find("}}") else {
            break;
        };
        let inner = rest[open + 2..open + close].trim();
        out.push_str(&rest[..open]);
        if inner == name {
            out.push_str(value);
        } else {
            out.push_str(&rest[open..open + close + 2]);
        }
        rest = &rest[open + close + 2..];
    }
    out.push_str(rest);
    out
}

fn article(ty: VarType) -> &'static str {
    match ty {
        VarType::String => "a string",
        VarType::Integer => "an integer",
        VarType::Float => "a float",
        VarType::Boolean => "a boolean",
        VarType::Duration => "a duration",
    }
}

/// `every` and other intervals: longer than zero.
pub fn interval_problem(key: &str, d: Duration) -> Option<String> {
    d.is_zero()
        .then(|| format!("`{key}` must be longer than zero"))
}

/// Why values that depend on each other do not fit: the key at fault, and what to say.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Misfit {
    pub key: &'static str,
    pub message: String,
    pub label: &'static str,
    pub help: Option<String>,
}

impl Misfit {
    /// The whole of it on one line, for errors found while rendering.
    pub fn sentence(&self) -> String {
        let mut s = format!("{}: {}", self.message, self.label);
        if let Some(h) = &self.help {
            s.push_str("; ");
            s.push_str(h);
        }
        s
    }
}

/// How a check samples, from its `for`, `samples` and `every`, or why they do not fit together.
pub fn sampling(
    window: Option<Duration>,
    samples: Option<u32>,
    every: Option<Duration>,
) -> Result<Sampling, Misfit> {
    if let Some(e) = every {
        if let Some(message) = interval_problem("every", e) {
            return Err(Misfit {
                key: "every",
                message,
                label: "zero interval",
                help: None,
            });
        }
    }
    let every = every.unwrap_or(Duration(std::time::Duration::from_secs(30)));
    match (window, samples) {
        (Some(w), Some(s)) => Err(Misfit {
            key: "samples",
            message: "a check takes either `for` (a window) or `samples` (a count), not both"
                .into(),
            label: "remove one",
            help: Some(format!(
                "keep `for = \"{w}\"` to measure for a window, or `samples = {s}` to take a fixed number of measurements"
            )),
        }),
        (Some(w), None) if w < every => Err(Misfit {
            key: "for",
            message: format!("the window `{w}` is shorter than the interval `{every}`"),
            label: "no room for a second measurement",
            help: None,
        }),
        (Some(window), None) => Ok(Sampling::Window { window, every }),
        (None, Some(samples)) => Ok(Sampling::Count { samples, every }),
        (None, None) => Ok(Sampling::Once),
    }
}

/// How many measurements a sampling takes.
pub fn measurements(s: Sampling) -> u64 {
    match s {
        Sampling::Once => 1,
        Sampling::Count { samples, .. } => u64::from(samples),
        Sampling::Window { window, every } => {
            u64::try_from(window.0.as_millis() / every.0.as_millis().max(1))
                .unwrap_or(u64::MAX)
                .max(1)
        }
    }
}

/// `failure_limit` and `successes` against the number of measurements.
pub fn limits_problem(
    s: Sampling,
    failure_limit: Option<u32>,
    successes: Option<u32>,
) -> Option<Misfit> {
    let total = measurements(s);
    if let Some(limit) = failure_limit {
        if u64::from(limit) >= total {
            return Some(Misfit {
                key: "failure_limit",
                message: format!(
                    "`failure_limit` of {limit} tolerates every one of the {total} measurements"
                ),
                label: "the check could never fail",
                help: Some("lower `failure_limit` or take more measurements".into()),
            });
        }
    }
    if let Some(n) = successes {
        if u64::from(n) > total {
            return Some(Misfit {
                key: "successes",
                message: format!("`successes` of {n} is more than the {total} measurements taken"),
                label: "can never be met",
                help: None,
            });
        }
    }
    None
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tags_are_replaced_whatever_their_spacing() {
        assert_eq!(
            replace_tag("< {{x}} and {{ y }}", "x", "1"),
            "< 1 and {{ y }}"
        );
        assert_eq!(replace_tag("{{  soak  }}", "soak", "1s"), "1s");
    }
}
