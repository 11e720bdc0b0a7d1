//! How much work rendering one template may do. tera bounds a single `range()` but nothing
//! else: two nested loops over 100,000 items each run 10^10 times, and `{% set s = s ~ s %}`
//! written forty times asks for a terabyte. A template here may:
//!
//! - loop over at most [`MAX_LOOP_ITEMS`] items in all: every `range()` counts the numbers it
//!   makes, and every other `{% for %}` the items of its list, each time it starts, so nested
//!   loops multiply;
//! - produce at most [`MAX_RENDERED_BYTES`] of text, and insert at most that many bytes of
//!   values (also into `{% set %}` blocks), and hold at most that much in one `set` variable.
//!
//! tera has no hook inside its loops, so the template given to it is instrumented: each `for`
//! list and each `set` value passes through a filter of this module that counts it against the
//! budget of the render under way (kept per thread: renders run on several threads, each on
//! one). `range` is replaced by a counting one. The author's text is kept for everything else
//! (names, spans, messages); [`Instrumented::local`] maps tera's positions back to it.
//!
//! `validate` also finds, without any value, the loops that would certainly go over the limit:
//! nested `range()` loops with integer bounds written in the template or given by a variable's
//! default ([`certain_overruns`]).

use std::cell::RefCell;
use std::ops::Range;

use tera::{Kwargs, State, Tera, Value};

use super::{Tag, TagKind, find_word, tags};

/// The most items a template may loop over, in all (tera's own limit for one `range()`).
pub const MAX_LOOP_ITEMS: u64 = 100_000;
/// The most text a template may render, and the most a `set` variable may hold.
pub const MAX_RENDERED_BYTES: usize = 1024 * 1024;

const ITEMS_FILTER: &str = "__rollout_items";
const VALUE_FILTER: &str = "__rollout_value";

/// What stopped a render.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Overrun {
    /// The loops went over [`MAX_LOOP_ITEMS`]; where the loop (or `range()`) that went over
    /// starts in the author's text, when known.
    Items { at: Option<usize> },
    /// The output, or the values inserted, went over [`MAX_RENDERED_BYTES`].
    Output,
    /// A `set` variable would hold more than [`MAX_RENDERED_BYTES`].
    Value { at: usize, name: String },
}

impl Overrun {
    pub fn message(&self) -> String {
        match self {
            Overrun::Items { .. } => format!(
                "the loops of this template go over more than {} items in all (nested loops multiply: a loop's items count each time it starts)",
                thousands(u128::from(MAX_LOOP_ITEMS))
            ),
            Overrun::Output => format!(
                "this template renders more than {} of text",
                mib(MAX_RENDERED_BYTES)
            ),
            Overrun::Value { name, .. } => format!(
                "`{name}` would hold more than {} of text",
                mib(MAX_RENDERED_BYTES)
            ),
        }
    }
}

fn mib(bytes: usize) -> String {
    format!("{} MiB", bytes / (1024 * 1024))
}

/// `10000000000` as `10,000,000,000`.
pub fn thousands(n: u128) -> String {
    let digits = n.to_string();
    let mut out = String::with_capacity(digits.len() + digits.len() / 3);
    for (i, c) in digits.chars().enumerate() {
        if i > 0 && (digits.len() - i) % 3 == 0 {
            out.push(',');
        }
        out.push(c);
    }
    out
}

#[derive(Default)]
struct Budget {
    items: u64,
    inserted: usize,
    overrun: Option<Overrun>,
}

thread_local! {
    static BUDGET: RefCell<Budget> = RefCell::new(Budget::default());
}

/// Starts the budget of a render on this thread.
pub fn begin() {
    BUDGET.with(|b| *b.borrow_mut() = Budget::default());
}

/// What stopped the render that just ended on this thread, if the budget did.
pub fn overrun() -> Option<Overrun> {
    BUDGET.with(|b| b.borrow().overrun.clone())
}

fn refuse(overrun: Overrun) -> String {
    let message = overrun.message();
    BUDGET.with(|b| {
        b.borrow_mut().overrun.get_or_insert(overrun);
    });
    message
}

fn count_items(n: u128, at: Option<usize>) -> Result<(), String> {
    BUDGET.with(|b| {
        let mut b = b.borrow_mut();
        let total = u128::from(b.items) + n;
        if total > u128::from(MAX_LOOP_ITEMS) {
            drop(b);
            return Err(refuse(Overrun::Items { at }));
        }
        b.items = u64::try_from(total).unwrap_or(u64::MAX);
        Ok(())
    })
}

/// Counts a value the escape function inserts (into the output or a `set` block).
pub fn count_inserted(bytes: usize) -> std::io::Result<()> {
    let over = BUDGET.with(|b| {
        let mut b = b.borrow_mut();
        b.inserted = b.inserted.saturating_add(bytes);
        b.inserted > MAX_RENDERED_BYTES
    });
    if over {
        return Err(std::io::Error::other(refuse(Overrun::Output)));
    }
    Ok(())
}

/// Where a render writes: refuses to grow past [`MAX_RENDERED_BYTES`].
#[derive(Default)]
pub struct Output(pub Vec<u8>);

impl std::io::Write for Output {
    fn write(&mut self, data: &[u8]) -> std::io::Result<usize> {
        if self.0.len() + data.len() > MAX_RENDERED_BYTES {
            return Err(std::io::Error::other(refuse(Overrun::Output)));
        }
        self.0.extend_from_slice(data);
        Ok(data.len())
    }

    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

/// Registers the counting filters and `range` on an engine.
pub fn register(tera: &mut Tera) {
    tera.register_filter(ITEMS_FILTER, items_filter);
    tera.register_filter(VALUE_FILTER, value_filter);
    tera.register_function("range", range);
}

fn at_of(kwargs: &Kwargs) -> Option<usize> {
    kwargs
        .get::<i64>("at")
        .ok()
        .flatten()
        .and_then(|at| usize::try_from(at).ok())
}

#[allow(clippy::needless_pass_by_value)] // the signature tera calls
fn items_filter(value: Value, kwargs: Kwargs, _: &State) -> tera::TeraResult<Value> {
    let n = value.len().unwrap_or(1);
    count_items(n as u128, at_of(&kwargs)).map_err(tera::Error::message)?;
    Ok(value)
}

#[allow(clippy::needless_pass_by_value)] // the signature tera calls
fn value_filter(value: Value, kwargs: Kwargs, _: &State) -> tera::TeraResult<Value> {
    if size(&value, MAX_RENDERED_BYTES) > MAX_RENDERED_BYTES {
        let name = kwargs
            .get::<&str>("name")
            .ok()
            .flatten()
            .unwrap_or("the variable")
            .to_string();
        let at = at_of(&kwargs).unwrap_or(0);
        return Err(tera::Error::message(refuse(Overrun::Value { at, name })));
    }
    Ok(value)
}

/// The bytes of text a value holds, counted up to a little past `limit`.
fn size(value: &Value, limit: usize) -> usize {
    if let Some(s) = value.as_str() {
        return s.len();
    }
    let mut total = 0usize;
    if let Some(items) = value.as_array() {
        for v in items {
            total = total.saturating_add(1 + size(v, limit - total.min(limit)));
            if total > limit {
                break;
            }
        }
    } else if let Some(map) = value.as_map() {
        for v in map.values() {
            total = total.saturating_add(1 + size(v, limit - total.min(limit)));
            if total > limit {
                break;
            }
        }
    } else if let Some(bytes) = value.as_bytes() {
        total = bytes.len();
    }
    total
}

/// tera's `range`, which also counts the numbers it makes.
#[allow(clippy::needless_pass_by_value)] // the signature tera calls
fn range(kwargs: Kwargs, _: &State) -> tera::TeraResult<Vec<i128>> {
    let start = kwargs.get::<i128>("start")?.unwrap_or_default();
    let end = kwargs.must_get::<i128>("end")?;
    let step_by = kwargs.get::<i128>("step_by")?.unwrap_or(1);
    let len = range_len(start, end, step_by).map_err(tera::Error::message)?;
    count_items(len, None).map_err(tera::Error::message)?;
    let step = |i: u128| -> i128 { start + i128::try_from(i).unwrap_or(0) * step_by };
    Ok((0..len).map(step).collect())
}

/// How many numbers `range(start, end, step_by)` makes, as tera's `range` computes it.
fn range_len(start: i128, end: i128, step_by: i128) -> Result<u128, String> {
    if start > end && step_by > 0 {
        return Err(
            "function `range` was called with a `start` argument greater than the `end` one".into(),
        );
    }
    if step_by == 0 {
        return Err("function `range` was called with a `step_by` argument of 0".into());
    }
    let overflow = || "function `range` was called with arguments that overflow".to_string();
    let len = if step_by > 0 {
        let span = end.checked_sub(start).ok_or_else(overflow)?;
        span.checked_add(step_by - 1).ok_or_else(overflow)? / step_by
    } else if start <= end {
        0
    } else {
        let step = step_by.checked_neg().ok_or_else(overflow)?;
        let span = start.checked_sub(end).ok_or_else(overflow)?;
        span.checked_add(step - 1).ok_or_else(overflow)? / step
    };
    Ok(len.unsigned_abs())
}

/// A template as given to tera, with what was inserted into the author's text.
#[derive(Debug)]
pub struct Instrumented {
    pub text: String,
    /// Where text was inserted (an offset in the author's text) and how many bytes, in order.
    inserted: Vec<(usize, usize)>,
}

impl Instrumented {
    /// The offset in the author's text of an offset in [`Instrumented::text`]; an offset inside
    /// inserted text maps to where it was inserted.
    pub fn local(&self, at: usize) -> usize {
        let mut shift = 0;
        for &(pos, len) in &self.inserted {
            let here = pos + shift;
            if at < here {
                break;
            }
            if at < here + len {
                return pos;
            }
            shift += len;
        }
        at - shift
    }
}

/// A `{% for %}` tag: where its list expression is (in the author's text), and the loop.
struct ForTag<'s> {
    list: Range<usize>,
    /// The list is one call of `range(...)`, which counts itself.
    range_call: Option<&'s str>,
}

pub fn block_word(inner: &str) -> &str {
    let t = inner.trim_start();
    let end = t
        .find(|c: char| !(c.is_ascii_alphanumeric() || c == '_'))
        .unwrap_or(t.len());
    &t[..end]
}

/// Reads a `for` tag: `for x in LIST` or `for k, v in LIST`.
fn for_tag<'s>(src: &'s str, tag: &Tag) -> Option<ForTag<'s>> {
    let inner = &src[tag.inner.clone()];
    if block_word(inner) != "for" {
        return None;
    }
    let after_for = inner.find("for")? + 3;
    let at_in = after_for + find_word(&inner[after_for..], "in")?;
    let list_start = at_in + 2;
    let rest = &inner[list_start..];
    let lead = rest.len() - rest.trim_start().len();
    let list = rest.trim();
    if list.is_empty() {
        return None;
    }
    let start = tag.inner.start + list_start + lead;
    let range_call = list
        .strip_prefix("range")
        .map(str::trim_start)
        .and_then(|r| r.strip_prefix('('))
        .and_then(|r| r.strip_suffix(')'))
        .filter(|args| !args.contains(['(', ')']));
    Some(ForTag {
        list: start..start + list.len(),
        range_call,
    })
}

/// A `set` tag: `set NAME = VALUE` (the value's range) or `set NAME` (a block).
fn set_tag<'s>(src: &'s str, tag: &Tag) -> Option<(&'s str, Option<Range<usize>>)> {
    let inner = &src[tag.inner.clone()];
    if block_word(inner) != "set" {
        return None;
    }
    let after_set = inner.find("set")? + 3;
    let rest = &inner[after_set..];
    let name_start = after_set + (rest.len() - rest.trim_start().len());
    let name_len = inner[name_start..]
        .find(|c: char| !(c.is_ascii_alphanumeric() || c == '_'))
        .unwrap_or(inner.len() - name_start);
    let name = &inner[name_start..name_start + name_len];
    if name.is_empty() {
        return None;
    }
    let after_name = &inner[name_start + name_len..];
    let Some(value) = after_name.trim_start().strip_prefix('=') else {
        return after_name.trim().is_empty().then_some((name, None));
    };
    let lead = value.len() - value.trim_start().len();
    let value_start =
        tag.inner.start + name_start + name_len + (after_name.len() - value.len()) + lead;
    let trimmed = value.trim();
    (!trimmed.is_empty()).then_some((name, Some(value_start..value_start + trimmed.len())))
}

/// The template with every loop list and `set` value counted; `None` when it has neither.
pub fn instrument(src: &str) -> Option<Instrumented> {
    let mut inserts: Vec<(usize, String)> = Vec::new();
    let mut open_sets: Vec<(&str, usize)> = Vec::new();
    for tag in tags(src).iter().filter(|t| t.kind == TagKind::Block) {
        if let Some(f) = for_tag(src, tag) {
            if f.range_call.is_none() {
                inserts.push((f.list.start, "(".into()));
                inserts.push((
                    f.list.end,
                    format!(") | {ITEMS_FILTER}(at={})", tag.outer.start),
                ));
            }
        } else if let Some((name, value)) = set_tag(src, tag) {
            match value {
                Some(v) => {
                    inserts.push((v.start, "(".into()));
                    inserts.push((
                        v.end,
                        format!(
                            ") | {VALUE_FILTER}(at={}, name=\"{name}\")",
                            tag.outer.start
                        ),
                    ));
                }
                None => open_sets.push((name, tag.outer.start)),
            }
        } else if block_word(&src[tag.inner.clone()]) == "endset" {
            if let Some((name, at)) = open_sets.pop() {
                // Right after `{% endset %}`, keeping its whitespace control for what follows.
                let trim = if src[..tag.outer.end].ends_with("-%}") {
                    "-"
                } else {
                    ""
                };
                inserts.push((
                    tag.outer.end,
                    format!(
                        "{{% set {name} = {name} | {VALUE_FILTER}(at={at}, name=\"{name}\") {trim}%}}"
                    ),
                ));
            }
        }
    }
    if inserts.is_empty() {
        return None;
    }
    inserts.sort_by_key(|(at, _)| *at);
    let mut text = String::with_capacity(src.len() + inserts.len() * 32);
    let mut from = 0;
    let mut inserted = Vec::with_capacity(inserts.len());
    for (at, piece) in inserts {
        text.push_str(&src[from..at]);
        text.push_str(&piece);
        inserted.push((at, piece.len()));
        from = at;
    }
    text.push_str(&src[from..]);
    Some(Instrumented { text, inserted })
}

/// A loop that would certainly go over [`MAX_LOOP_ITEMS`]: the `for` tag, the items counted
/// up to and including it, and how that count is made (e.g. `100,000 × 100,000`).
#[derive(Debug)]
pub struct CertainOverrun {
    pub tag: Range<usize>,
    pub total: u128,
    pub how: String,
    /// The variables whose defaults the count used.
    pub defaults: Vec<String>,
}

/// The number of items of `range(ARGS)` written with integer literals, or with names whose
/// integer value `int_of` knows; `None` when it cannot be known without running.
fn static_range_len(
    args: &str,
    int_of: &dyn Fn(&str) -> Option<i64>,
) -> Option<(u128, Vec<String>)> {
    let (mut start, mut end, mut step) = (0i128, None, 1i128);
    let mut used = Vec::new();
    for arg in args.split(',').map(str::trim).filter(|a| !a.is_empty()) {
        let (key, value) = arg.split_once('=')?;
        let value = value.trim();
        let n = if let Ok(n) = value.parse::<i128>() {
            n
        } else if value.chars().all(|c| c.is_ascii_alphanumeric() || c == '_') {
            let n = int_of(value)?;
            used.push(value.to_string());
            i128::from(n)
        } else {
            return None;
        };
        match key.trim() {
            "start" => start = n,
            "end" => end = Some(n),
            "step_by" => step = n,
            _ => return None,
        }
    }
    Some((range_len(start, end?, step).ok()?, used))
}

/// The loops of `src` that go over [`MAX_LOOP_ITEMS`] whatever the values: those that run on
/// every render (not inside an `if`, nor after a `break` or `continue` in their loop), whose
/// lists and enclosing loops' lists are `range()` calls with known bounds.
pub fn certain_overruns(src: &str, int_of: &dyn Fn(&str) -> Option<i64>) -> Vec<CertainOverrun> {
    enum Frame {
        /// A loop: its number of items and how it was counted, when certain.
        For(Option<(u128, String)>),
        If,
    }
    let mut stack: Vec<Frame> = Vec::new();
    let mut total: u128 = 0;
    let mut defaults: Vec<String> = Vec::new();
    let mut found = Vec::new();
    for tag in tags(src).iter().filter(|t| t.kind == TagKind::Block) {
        let word = block_word(&src[tag.inner.clone()]);
        match word {
            "for" => {
                let own = for_tag(src, tag)
                    .and_then(|f| f.range_call)
                    .and_then(|args| static_range_len(args, int_of))
                    .map(|(n, used)| {
                        for u in used {
                            if !defaults.contains(&u) {
                                defaults.push(u);
                            }
                        }
                        (n, thousands(n))
                    });
                let certain_here = stack.iter().all(|f| matches!(f, Frame::For(Some(_))));
                if let (true, Some((n, shown))) = (certain_here, &own) {
                    let mut product = *n;
                    let mut how: Vec<&str> = Vec::new();
                    for f in &stack {
                        if let Frame::For(Some((m, s))) = f {
                            product = product.saturating_mul(*m);
                            how.push(s);
                        }
                    }
                    how.push(shown);
                    total = total.saturating_add(product);
                    if total > u128::from(MAX_LOOP_ITEMS) && found.is_empty() {
                        found.push(CertainOverrun {
                            tag: tag.outer.clone(),
                            total,
                            how: how.join(" × "),
                            defaults: defaults.clone(),
                        });
                    }
                }
                stack.push(Frame::For(own));
            }
            "endfor" => {
                if let Some(i) = stack.iter().rposition(|f| matches!(f, Frame::For(_))) {
                    stack.truncate(i);
                }
            }
            "if" => stack.push(Frame::If),
            "endif" => {
                if let Some(i) = stack.iter().rposition(|f| matches!(f, Frame::If)) {
                    stack.truncate(i);
                }
            }
            "break" | "continue" => {
                // What follows in this loop may not run.
                if let Some(Frame::For(f)) =
                    stack.iter_mut().rev().find(|f| matches!(f, Frame::For(_)))
                {
                    *f = None;
                }
            }
            _ => {}
        }
    }
    found
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn instrumented_offsets_map_back() {
        let src = "a{% for x in xs %}{{ x }}{% endfor %}{% set y = x ~ x %}";
        let i = instrument(src).expect("instrumented");
        assert!(
            i.text.contains("(xs) | __rollout_items(at=1)"),
            "{}",
            i.text
        );
        assert!(i.text.contains("(x ~ x) | __rollout_value"), "{}", i.text);
        // `{{ x }}` is at 18 in the author's text.
        let in_text = i.text.find("{{ x }}").unwrap();
        assert_eq!(i.local(in_text), src.find("{{ x }}").unwrap());
        let filter = i.text.find(ITEMS_FILTER).unwrap();
        assert_eq!(i.local(filter), src.find("xs").unwrap() + 2);
        assert_eq!(i.local(0), 0);
    }

    #[test]
    fn range_loops_are_left_to_range() {
        assert!(instrument("{% for i in range(end=3) %}{{ i }}{% endfor %}").is_none());
        let i = instrument("{% for i in range(end=3) | reverse %}{% endfor %}").unwrap();
        assert!(i.text.contains(ITEMS_FILTER));
    }

    #[test]
    fn set_blocks_are_measured_after_they_close() {
        let i = instrument("{% set b %}x{% endset -%}\n y").unwrap();
        assert_eq!(
            i.text,
            "{% set b %}x{% endset -%}{% set b = b | __rollout_value(at=0, name=\"b\") -%}\n y"
        );
    }

    #[test]
    fn certain_overruns_of_nested_ranges() {
        let none = |_: &str| None;
        let nested = "{% for i in range(end=100000) %}{% for j in range(end=100000) %}x{% endfor %}{% endfor %}";
        let found = certain_overruns(nested, &none);
        assert_eq!(found.len(), 1);
        assert_eq!(found[0].total, 100_000 + 10_000_000_000);
        assert_eq!(found[0].how, "100,000 × 100,000");
        assert_eq!(
            &nested[found[0].tag.clone()],
            "{% for j in range(end=100000) %}"
        );
        // Under an `if`, or inside a loop over something unknown: maybe never.
        assert!(certain_overruns(&format!("{{% if a %}}{nested}{{% endif %}}"), &none).is_empty());
        assert!(
            certain_overruns(
                "{% for x in xs %}{% for j in range(end=100000) %}{% for k in range(end=9) %}{% endfor %}{% endfor %}{% endfor %}",
                &none
            )
            .is_empty()
        );
        // A variable's default counts; an unknown name does not.
        let n = |name: &str| (name == "n").then_some(1000);
        let by_var = "{% for i in range(end=n) %}{% for j in range(start=0, end=n) %}{% endfor %}{% endfor %}";
        let found = certain_overruns(by_var, &n);
        assert_eq!(found[0].defaults, ["n"]);
        assert!(certain_overruns(by_var, &none).is_empty());
        // Within the limit.
        assert!(certain_overruns("{% for i in range(end=100000) %}{% endfor %}", &none).is_empty());
    }

    #[test]
    fn thousands_separators() {
        assert_eq!(thousands(0), "0");
        assert_eq!(thousands(100_000), "100,000");
        assert_eq!(thousands(10_000_000_000), "10,000,000,000");
    }
}
