//! Typed reading of the spanned TOML tree. Each table is read through a [`Table`] that remembers
//! which keys were asked for, so that every key nobody asked for is reported as unknown, with a
//! "did you mean". Problems are collected, never returned early: one pass reports them all.

use std::ops::Range;

use toml::Spanned;
use toml::de::{DeTable, DeValue};

use super::diagnostic::{Diagnostic, did_you_mean};
use super::duration::{Duration, parse_duration};

pub type Node<'a> = Spanned<DeValue<'a>>;

/// Where problems are collected while reading and checking a runbook.
#[derive(Debug, Default)]
pub struct Problems {
    pub list: Vec<Diagnostic>,
}

impl Problems {
    pub fn push(&mut self, d: Diagnostic) {
        self.list.push(d);
    }
}

pub fn type_name(v: &DeValue<'_>) -> &'static str {
    match v {
        DeValue::String(_) => "a string",
        DeValue::Integer(_) => "an integer",
        DeValue::Float(_) => "a number",
        DeValue::Boolean(_) => "a boolean",
        DeValue::Datetime(_) => "a date-time",
        DeValue::Array(_) => "an array",
        DeValue::Table(_) => "a table",
    }
}

pub fn wrong_type(node: &Node<'_>, key: &str, expected: &str) -> Diagnostic {
    Diagnostic::new(
        node.span(),
        format!(
            "`{key}` must be {expected}, found {}",
            type_name(node.get_ref())
        ),
    )
    .label(format!("expected {expected}"))
}

pub struct Table<'d, 'a> {
    table: &'d DeTable<'a>,
    pub span: Range<usize>,
    /// How messages name this table, e.g. "step `build`".
    pub what: String,
    asked: Vec<&'static str>,
    /// What to add to the spans of the keys to place them in the file: the start of the piece
    /// of the file the table was parsed from (see `split::parse_phase`), else 0. Values' spans
    /// are already in place.
    key_shift: usize,
}

impl<'d, 'a> Table<'d, 'a> {
    pub fn new(table: &'d DeTable<'a>, span: Range<usize>, what: impl Into<String>) -> Self {
        Table {
            table,
            span,
            what: what.into(),
            asked: Vec::new(),
            key_shift: 0,
        }
    }

    /// The same table, read from a piece of the file that starts at `key_shift`.
    #[must_use]
    pub fn with_key_shift(mut self, key_shift: usize) -> Self {
        self.key_shift = key_shift;
        self
    }

    fn key_span_of(&self, key: &Spanned<std::borrow::Cow<'a, str>>) -> Range<usize> {
        let span = key.span();
        span.start + self.key_shift..span.end + self.key_shift
    }

    /// Reads `node` as a table, or reports that it is not one.
    pub fn of(
        node: &'d Node<'a>,
        key: &str,
        what: impl Into<String>,
        p: &mut Problems,
    ) -> Option<Self> {
        if let DeValue::Table(t) = node.get_ref() {
            Some(Table::new(t, node.span(), what))
        } else {
            p.push(wrong_type(node, key, "a table"));
            None
        }
    }

    /// The entry of `key`. A step's table has a handful of keys and is asked for dozens that
    /// it does not have: comparing a few short keys is cheaper than hashing each one.
    fn find(&self, key: &str) -> Option<(&'d Spanned<std::borrow::Cow<'a, str>>, &'d Node<'a>)> {
        if self.table.len() <= 16 {
            self.table.iter().find(|(k, _)| k.get_ref() == key)
        } else {
            self.table.get_key_value(key)
        }
    }

    pub fn has(&self, key: &str) -> bool {
        self.find(key).is_some()
    }

    pub fn get(&mut self, key: &'static str) -> Option<&'d Node<'a>> {
        if !self.asked.contains(&key) {
            self.asked.push(key);
        }
        self.find(key).map(|(_, v)| v)
    }

    /// The key's own span (for "unknown key" and "missing" style messages).
    pub fn key_span(&self, key: &str) -> Option<Range<usize>> {
        self.find(key).map(|(k, _)| self.key_span_of(k))
    }

    /// Every key, with where it is in the file, and its value.
    pub fn entries(&self) -> impl Iterator<Item = (Spanned<&'d str>, &'d Node<'a>)> + '_ {
        self.table
            .iter()
            .map(|(k, v)| (Spanned::new(self.key_span_of(k), k.get_ref().as_ref()), v))
    }

    pub fn string(&mut self, key: &'static str, p: &mut Problems) -> Option<Spanned<String>> {
        let node = self.get(key)?;
        as_string(node, key, p)
    }

    pub fn required_string(
        &mut self,
        key: &'static str,
        p: &mut Problems,
    ) -> Option<Spanned<String>> {
        if !self.has(key) {
            p.push(
                Diagnostic::new(
                    self.head_span(),
                    format!("{} is missing `{key}`", self.what),
                )
                .label(format!("`{key}` is required here")),
            );
            return None;
        }
        self.string(key, p)
    }

    pub fn boolean(&mut self, key: &'static str, p: &mut Problems) -> Option<bool> {
        let node = self.get(key)?;
        match node.get_ref() {
            DeValue::Boolean(b) => Some(*b),
            _ => {
                p.push(wrong_type(node, key, "`true` or `false`"));
                None
            }
        }
    }

    pub fn integer(&mut self, key: &'static str, p: &mut Problems) -> Option<Spanned<i64>> {
        let node = self.get(key)?;
        as_integer(node, key, p)
    }

    pub fn number(&mut self, key: &'static str, p: &mut Problems) -> Option<Spanned<f64>> {
        let node = self.get(key)?;
        as_number(node, key, p)
    }

    pub fn duration(&mut self, key: &'static str, p: &mut Problems) -> Option<Spanned<Duration>> {
        let node = self.get(key)?;
        as_duration(node, key, p)
    }

    pub fn array(
        &mut self,
        key: &'static str,
        p: &mut Problems,
    ) -> Option<(Range<usize>, &'d [Node<'a>])> {
        let node = self.get(key)?;
        match node.get_ref() {
            DeValue::Array(a) => Some((node.span(), a.as_ref())),
            _ => {
                p.push(wrong_type(node, key, "an array"));
                None
            }
        }
    }

    pub fn string_list(
        &mut self,
        key: &'static str,
        p: &mut Problems,
    ) -> Option<Vec<Spanned<String>>> {
        let (_, items) = self.array(key, p)?;
        Some(items.iter().filter_map(|n| as_string(n, key, p)).collect())
    }

    pub fn table(
        &mut self,
        key: &'static str,
        what: impl Into<String>,
        p: &mut Problems,
    ) -> Option<Table<'d, 'a>> {
        let node = self.get(key)?;
        Some(Table::of(node, key, what, p)?.with_key_shift(self.key_shift))
    }

    /// An array of tables (`[[phases]]`), each read as a [`Table`].
    pub fn tables(&mut self, key: &'static str, p: &mut Problems) -> Vec<Table<'d, 'a>> {
        let Some((_, items)) = self.array(key, p) else {
            return Vec::new();
        };
        items
            .iter()
            .filter_map(|n| Some(Table::of(n, key, key, p)?.with_key_shift(self.key_shift)))
            .collect()
    }

    /// The span to point at when the table as a whole is at fault: its header (`[[phases]]`) or
    /// opening brace when it has one, else its first key.
    pub fn head_span(&self) -> Range<usize> {
        let first_key = self
            .table
            .iter()
            .map(|(k, _)| self.key_span_of(k))
            .min_by_key(|s| s.start);
        match first_key {
            Some(key) if self.span.is_empty() || self.span.start > key.start => key,
            _ => self.span.clone(),
        }
    }

    pub fn unknown_keys(&self) -> impl Iterator<Item = (&'d str, Range<usize>)> + '_ {
        self.table
            .iter()
            .filter(|(k, _)| !self.asked.contains(&k.get_ref().as_ref()))
            .map(|(k, _)| (k.get_ref().as_ref(), self.key_span_of(k)))
    }

    /// Reports every key that was never asked for.
    pub fn finish(&self, p: &mut Problems) {
        for (key, span) in self.unknown_keys() {
            p.push(unknown_key(key, span, &self.what, &self.asked));
        }
    }
}

pub fn unknown_key(key: &str, span: Range<usize>, what: &str, known: &[&str]) -> Diagnostic {
    Diagnostic::new(span, format!("unknown key `{key}` in {what}"))
        .label("unknown key")
        .maybe_help(did_you_mean(key, known).or_else(|| {
            let mut sorted = known.to_vec();
            sorted.sort_unstable();
            Some(format!(
                "expected one of: {}",
                sorted
                    .iter()
                    .map(|k| format!("`{k}`"))
                    .collect::<Vec<_>>()
                    .join(", ")
            ))
        }))
}

pub fn as_string(node: &Node<'_>, key: &str, p: &mut Problems) -> Option<Spanned<String>> {
    match node.get_ref() {
        DeValue::String(s) => Some(Spanned::new(node.span(), s.to_string())),
        _ => {
            p.push(wrong_type(node, key, "a string"));
            None
        }
    }
}

pub fn as_integer(node: &Node<'_>, key: &str, p: &mut Problems) -> Option<Spanned<i64>> {
    if let DeValue::Integer(i) = node.get_ref() {
        if let Ok(v) = i64::from_str_radix(&i.as_str().replace('_', ""), i.radix()) {
            return Some(Spanned::new(node.span(), v));
        }
        p.push(Diagnostic::new(node.span(), format!("`{key}` is out of range")).label("too large"));
        return None;
    }
    p.push(wrong_type(node, key, "an integer"));
    None
}

pub fn as_number(node: &Node<'_>, key: &str, p: &mut Problems) -> Option<Spanned<f64>> {
    match node.get_ref() {
        DeValue::Integer(_) => {
            as_integer(node, key, p).map(|i| Spanned::new(i.span(), i.into_inner() as f64))
        }
        DeValue::Float(f) => match f.as_str().replace('_', "").parse::<f64>() {
            Ok(v) if v.is_finite() => Some(Spanned::new(node.span(), v)),
            _ => {
                p.push(
                    Diagnostic::new(node.span(), format!("`{key}` must be a finite number"))
                        .label("not a finite number"),
                );
                None
            }
        },
        _ => {
            p.push(wrong_type(node, key, "a number"));
            None
        }
    }
}

pub fn as_duration(node: &Node<'_>, key: &str, p: &mut Problems) -> Option<Spanned<Duration>> {
    if !matches!(node.get_ref(), DeValue::String(_)) {
        p.push(
            wrong_type(node, key, "a duration string")
                .help("write a duration in quotes, like \"30s\", \"10m\", \"1h30m\" or \"500ms\""),
        );
        return None;
    }
    let s = as_string(node, key, p)?;
    if super::param::is_template(s.get_ref()) {
        p.push(
            Diagnostic::new(
                s.span(),
                format!("`{key}` cannot come from a template here"),
            )
            .label("a template is not allowed here")
            .help("write a duration like \"30s\" or \"10m\"; templates naming variables are allowed in step `timeout`, `wait`, `for`, `every`, `deadline`, `max_latency`, retry delays, abort criteria and `[defaults] timeout`"),
        );
        return None;
    }
    match parse_duration(s.get_ref()) {
        Ok(d) => Some(Spanned::new(s.span(), d)),
        Err(why) => {
            p.push(
                Diagnostic::new(
                    s.span(),
                    format!("bad duration `{}` for `{key}`: {why}", s.get_ref()),
                )
                .label("not a duration")
                .help("write a duration like \"30s\", \"10m\", \"1h30m\" or \"500ms\""),
            );
            None
        }
    }
}
