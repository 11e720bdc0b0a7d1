//! Templates in a runbook (tera), compiled once and checked statically, and the one function
//! that renders them for both `plan` and `run`.
//!
//! Injection safety is designed in here, not bolted on:
//! - in shell commands every interpolated value is shell-quoted by tera's escape hook, and the
//!   template text around an interpolation must leave it outside quotes, comments and heredocs,
//!   where a quoted word means exactly one literal word;
//! - kubectl arguments are rendered one argv element each and never pass through a shell;
//! - `safe` (which would skip quoting) and template-loading tags are refused;
//! - a value that would begin a word with `-` is refused, so it cannot become an option;
//! - NUL bytes, which no process can receive, are refused in values and templates.
//!
//! Every escaped value is wrapped in NUL sentinels while rendering, so the renderer knows where
//! each value landed in the output; the sentinels are removed before anyone sees the text.

mod bounds;

use std::io::Write;
use std::ops::Range;

use tera::{Context, Tera};
use toml::Spanned;

use super::diagnostic::Diagnostic;
use super::reader::Problems;

pub use bounds::{MAX_LOOP_ITEMS, MAX_RENDERED_BYTES};

/// Where a template's output goes, which decides how values are escaped.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Flavor {
    /// A shell command: values are shell-quoted.
    Shell,
    /// One argv element (kubectl): values are inserted as they are.
    Arg,
    /// Text shown to people or sent to a server (messages, URLs, queries): values as they are.
    Text,
    /// A `when` condition: a tera expression.
    Expr,
}

/// A handle to a template in [`Templates`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Tpl(usize);

/// One template. Kept small (offsets, not strings): a 10,000-step runbook has ~40,000.
#[derive(Debug)]
struct Entry {
    /// The template's text in [`Templates::text`].
    source: Range<u32>,
    flavor: Flavor,
    /// The TOML string the template came from.
    span: Range<u32>,
    /// File offset of the template's first byte, when the TOML string has no escapes.
    origin: Option<u32>,
    literal: bool,
    /// Only text and `{{ name }}` / `{{ name.attr }}` tags: rendered without tera (the bulk of
    /// a runbook's templates; keeps 10,000-step runbooks fast and small).
    simple: bool,
    broken: bool,
}

impl Entry {
    /// Bytes added in front of the author's text (for `when` expressions).
    fn prefix(&self) -> usize {
        if self.flavor == Flavor::Expr {
            EXPR_PREFIX.len()
        } else {
            0
        }
    }

    fn span(&self) -> Range<usize> {
        self.span.start as usize..self.span.end as usize
    }
}

/// A piece of a simple template.
#[derive(Debug)]
enum Piece<'s> {
    Text(Range<usize>),
    /// A dotted path (segments checked to be identifiers) and where it starts, and the byte
    /// range of the tag.
    Value(&'s str, usize, Range<usize>),
}

/// The run's values, by top-level name: variables, captures and built-ins. Kept as tera values,
/// for the templates tera renders, and for each one also as the text `{{ name }}` inserts,
/// plain and shell-quoted, because most templates are simple (see [`walk_simple`]) and are
/// rendered by looking names up here, thousands of times in a large plan.
#[derive(Debug, Default, Clone)]
pub struct Values {
    context: Context,
    texts: std::collections::HashMap<String, ValueText>,
}

#[derive(Debug, Clone)]
struct ValueText {
    /// What `{{ name }}` inserts before escaping (a NUL byte, which the escaping removes, is
    /// removed here).
    plain: String,
    /// `plain` as [`shell_quote`] quotes it.
    quoted: String,
}

impl Values {
    /// Sets `name`, as tera's `Context::insert` does.
    pub fn insert<T: serde::Serialize + ?Sized>(&mut self, name: &str, value: &T) {
        self.context.insert(name.to_string(), value);
        let Some(v) = self.context.get(name) else {
            self.texts.remove(name);
            return;
        };
        let plain = v.as_str().map_or_else(|| v.to_string(), str::to_string);
        let plain = if plain.contains('\0') {
            plain.replace('\0', "")
        } else {
            plain
        };
        let quoted = shell_quote(&plain);
        self.texts
            .insert(name.to_string(), ValueText { plain, quoted });
    }

    fn get(&self, name: &str) -> Option<&tera::Value> {
        self.context.get(name)
    }

    /// Whether `name` is set.
    pub fn contains(&self, name: &str) -> bool {
        self.context.contains_key(name)
    }

    /// Unsets `name`.
    pub fn remove(&mut self, name: &str) {
        self.context.remove(name);
        self.texts.remove(name);
    }
}

/// Values a template can read: the run's (`base`), and those of the phase and step being
/// rendered, which are read first. Nothing is copied to build one: a step's values are turned
/// into tera values only for a template rendered by tera that reads them.
#[derive(Clone, Copy)]
pub struct Scope<'a> {
    pub base: &'a Values,
    /// `phase.id` and `phase.title`.
    pub phase: Option<[&'a str; 2]>,
    /// `step.id` and `step.name`.
    pub step: Option<[&'a str; 2]>,
    /// `env`: the environment declared for the step.
    pub env: Option<&'a std::collections::BTreeMap<String, String>>,
}

impl<'a> Scope<'a> {
    pub fn of(base: &'a Values) -> Self {
        Scope {
            base,
            phase: None,
            step: None,
            env: None,
        }
    }

    /// The value of a top-level name, as tera sees it.
    fn get(&self, name: &str) -> Option<std::borrow::Cow<'a, tera::Value>> {
        use std::borrow::Cow;
        let object = |[a, b]: [&str; 2], keys: [&str; 2]| {
            let m = std::collections::BTreeMap::from([(keys[0], a), (keys[1], b)]);
            Cow::Owned(tera::Value::from_serializable(&m))
        };
        match (name, self.phase, self.step, self.env) {
            ("phase", Some(p), _, _) => Some(object(p, ["id", "title"])),
            ("step", _, Some(s), _) => Some(object(s, ["id", "name"])),
            ("env", _, _, Some(env)) => Some(Cow::Owned(tera::Value::from_serializable(env))),
            _ => self.base.get(name).map(Cow::Borrowed),
        }
    }

    /// The text `{{ path }}` inserts, quoted for the shell when `shell`; `None` when the path
    /// is not defined.
    fn inserted<'s>(&'s self, path: &'s str, shell: bool) -> Option<std::borrow::Cow<'s, str>> {
        use std::borrow::Cow;
        let of_base = match path {
            "phase" | "step" | "env" => None,
            _ if path.contains('.') => None,
            _ => self.base.texts.get(path),
        };
        if let Some(t) = of_base {
            return Some(Cow::Borrowed(if shell { &t.quoted } else { &t.plain }));
        }
        let text = self.text(path)?;
        // What the sentinels around a value would have removed.
        let text = if text.contains('\0') {
            Cow::Owned(text.replace('\0', ""))
        } else {
            text
        };
        Some(if shell {
            Cow::Owned(shell_quote(&text))
        } else {
            text
        })
    }

    /// The text `{{ path }}` inserts (before escaping); `None` when the path is not defined.
    fn text<'s>(&'s self, path: &'s str) -> Option<std::borrow::Cow<'s, str>> {
        use std::borrow::Cow;
        let mut segments = path.split('.');
        let first = segments.next().unwrap_or(path);
        // The step's own values, read directly: `{{ step.id }}`, `{{ env.REGION }}`.
        let (second, third) = (segments.next(), segments.clone().next());
        if third.is_none() {
            let direct = match (first, second, self.phase, self.step, self.env) {
                ("phase", Some("id"), Some(p), _, _) | ("step", Some("id"), _, Some(p), _) => {
                    Some(Some(p[0]))
                }
                ("phase", Some("title"), Some(p), _, _) | ("step", Some("name"), _, Some(p), _) => {
                    Some(Some(p[1]))
                }
                ("env", Some(key), _, _, Some(env)) => Some(env.get(key).map(String::as_str)),
                _ => None,
            };
            if let Some(found) = direct {
                return found.map(Cow::Borrowed);
            }
        }
        let mut value = self.get(first)?;
        for attr in path.split('.').skip(1) {
            value = match value {
                Cow::Borrowed(v) => Cow::Borrowed(v.get_from_path(attr)?),
                Cow::Owned(v) => Cow::Owned(v.get_from_path(attr)?.clone()),
            };
            if value.is_undefined() {
                return None;
            }
        }
        Some(match value {
            Cow::Borrowed(v) => match v.as_str() {
                Some(s) => Cow::Borrowed(s),
                None => Cow::Owned(v.to_string()),
            },
            Cow::Owned(v) => Cow::Owned(v.as_str().map_or_else(|| v.to_string(), str::to_string)),
        })
    }
}

/// Walks a template made only of text and `{{ path }}` tags, giving each part to `piece` in
/// order. Returns false, having stopped part-way, when the template needs tera. Called for every
/// use of a template (nothing is stored), so it only scans bytes and allocates nothing.
fn walk_simple<'s>(src: &'s str, mut piece: impl FnMut(Piece<'s>)) -> bool {
    let mut at = 0;
    let mut from = 0;
    let mut tagged = false;
    // One scan for `{`: a `{%` or `{#` anywhere outside a tag means tera; inside a tag it fails
    // the path check below.
    while let Some(rel) = memchr::memchr(b'{', &src.as_bytes()[from..]) {
        let open = from + rel;
        match src.as_bytes().get(open + 1) {
            Some(b'%' | b'#') => return false,
            Some(b'{') => {}
            _ => {
                from = open + 1;
                continue;
            }
        }
        let Some(rel_close) = find_pair(&src[open + 2..], *b"}}") else {
            return false;
        };
        let close = open + 2 + rel_close;
        let untrimmed = &src[open + 2..close];
        let inner = untrimmed.trim();
        let path_start = open + 2 + (untrimmed.len() - untrimmed.trim_start().len());
        // Identifiers joined by single dots: `a . b` is not a path tera reads the same way.
        let mut start_of_segment = true;
        for &b in inner.as_bytes() {
            let ok = if start_of_segment {
                b.is_ascii_alphabetic() || b == b'_'
            } else {
                b.is_ascii_alphanumeric() || b == b'_' || b == b'.'
            };
            if !ok {
                return false;
            }
            start_of_segment = b == b'.';
        }
        let first = first_segment(inner);
        if start_of_segment || matches!(first, "true" | "false" | "none" | "loop") {
            return false;
        }
        if open > at {
            piece(Piece::Text(at..open));
        }
        piece(Piece::Value(inner, path_start, open..close + 2));
        tagged = true;
        at = close + 2;
        from = at;
    }
    if !tagged && find_pair(src, *b"}}").is_some() && find_pair(src, *b"{{").is_none() {
        return false;
    }
    if at < src.len() {
        piece(Piece::Text(at..src.len()));
    }
    true
}

/// Each `{{ path }}` of a simple template (see [`walk_simple`]): the path, where it starts,
/// and the tag's range.
fn for_each_value<'s>(src: &'s str, mut value: impl FnMut(&'s str, usize, Range<usize>)) {
    walk_simple(src, |p| {
        if let Piece::Value(path, at, tag) = p {
            value(path, at, tag);
        }
    });
}

/// The first segment of a dotted path: `run` of `run.id`.
fn first_segment(path: &str) -> &str {
    memchr::memchr(b'.', path.as_bytes()).map_or(path, |dot| &path[..dot])
}

/// Whether `text` has a tera delimiter (`{{`, `{%` or `{#`): if not, it is used as it is.
fn has_delimiter(text: &str) -> bool {
    let bytes = text.as_bytes();
    memchr::memchr_iter(b'{', bytes).any(|at| matches!(bytes.get(at + 1), Some(b'{' | b'%' | b'#')))
}

/// Where the two bytes `pair` first occur in `s` (what `s.find("..")` gives, without building
/// a substring searcher each time).
fn find_pair(s: &str, pair: [u8; 2]) -> Option<usize> {
    let bytes = s.as_bytes();
    let mut from = 0;
    while let Some(rel) = memchr::memchr(pair[0], &bytes[from..]) {
        let at = from + rel;
        if bytes.get(at + 1) == Some(&pair[1]) {
            return Some(at);
        }
        from = at + 1;
    }
    None
}

const EXPR_PREFIX: &str = "{% if ";
const EXPR_SUFFIX: &str = " %}true{% endif %}";
const ALLOWED_TAGS: [&str; 12] = [
    "if", "elif", "else", "endif", "for", "endfor", "set", "endset", "raw", "endraw", "break",
    "continue",
];

pub struct Templates {
    entries: Vec<Entry>,
    /// Every template's text, one after the other.
    arena: String,
    /// The top-level names each tera-rendered template reads, filled in by `compile`.
    reads: std::collections::HashMap<usize, Vec<String>>,
    /// The templates given to tera with their loops and `set` values counted (see `bounds`).
    instrumented: std::collections::HashMap<usize, bounds::Instrumented>,
    shell: Tera,
    text: Tera,
}

impl std::fmt::Debug for Templates {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "Templates({})", self.entries.len())
    }
}

/// A template that could not be rendered with the values given.
#[derive(Debug, Clone)]
pub struct RenderError {
    pub message: String,
    pub span: Range<usize>,
}

fn sentinel_shell(value: &str, out: &mut dyn Write) -> std::io::Result<()> {
    bounds::count_inserted(value.len())?;
    out.write_all(b"\0")?;
    out.write_all(shell_quote(value).as_bytes())?;
    out.write_all(b"\0")
}

fn sentinel_plain(value: &str, out: &mut dyn Write) -> std::io::Result<()> {
    bounds::count_inserted(value.len())?;
    out.write_all(b"\0")?;
    out.write_all(value.as_bytes())?;
    out.write_all(b"\0")
}

/// Quotes `value` as one POSIX shell word. Plain words are left readable.
pub fn shell_quote(value: &str) -> String {
    let mut quoted = String::with_capacity(value.len() + 2);
    shell_quote_into(&mut quoted, value);
    quoted
}

/// [`shell_quote`], appended to `out`.
pub fn shell_quote_into(out: &mut String, value: &str) {
    let plain = !value.is_empty()
        && value
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b"_./:@%+,-".contains(&b));
    if plain {
        out.push_str(value);
        return;
    }
    out.push('\'');
    for (i, part) in value.split('\'').enumerate() {
        if i > 0 {
            out.push_str(r"'\''");
        }
        out.push_str(part);
    }
    out.push('\'');
}

fn new_tera(escape: tera::EscapeFn, suffix: &'static str) -> Tera {
    let mut tera = Tera::new();
    tera.set_escape_fn(escape);
    tera.autoescape_on([suffix]);
    bounds::register(&mut tera);
    tera
}

impl Default for Templates {
    fn default() -> Self {
        Templates {
            entries: Vec::new(),
            arena: String::new(),
            reads: std::collections::HashMap::new(),
            instrumented: std::collections::HashMap::new(),
            shell: new_tera(sentinel_shell, ".sh"),
            text: new_tera(sentinel_plain, ".txt"),
        }
    }
}

/// Where the decoded text of a TOML string starts in the file, if it maps byte for byte.
fn origin_of(file: &str, span: &Range<usize>, decoded: &str) -> Option<usize> {
    let raw = file.get(span.clone())?;
    for delim in ["\"\"\"", "'''", "\"", "'"] {
        if raw.len() >= 2 * delim.len() && raw.starts_with(delim) && raw.ends_with(delim) {
            let inner = &raw[delim.len()..raw.len() - delim.len()];
            let start = span.start + delim.len();
            if inner == decoded {
                return Some(start);
            }
            for nl in ["\n", "\r\n"] {
                if inner.strip_prefix(nl) == Some(decoded) {
                    return Some(start + nl.len());
                }
            }
            return None;
        }
    }
    None
}

impl Templates {
    /// Registers the TOML string `s` as a template of the given flavor.
    pub fn add(&mut self, s: &Spanned<String>, flavor: Flavor, file: &str) -> Tpl {
        let text = s.get_ref();
        let start = self.arena.len();
        if flavor == Flavor::Expr {
            self.arena.push_str(EXPR_PREFIX);
            self.arena.push_str(text);
            self.arena.push_str(EXPR_SUFFIX);
        } else {
            self.arena.push_str(text);
        }
        let literal = flavor != Flavor::Expr && !has_delimiter(text);
        let simple = !literal && flavor != Flavor::Expr && walk_simple(text, |_| {});
        // A runbook is at most 8 MiB, and its templates' text about as long.
        let offset = |n: usize| u32::try_from(n).expect("runbooks are far smaller than 4 GiB");
        let span = s.span();
        self.entries.push(Entry {
            source: offset(start)..offset(self.arena.len()),
            flavor,
            span: offset(span.start)..offset(span.end),
            origin: origin_of(file, &span, text).map(offset),
            literal,
            simple,
            broken: false,
        });
        Tpl(self.entries.len() - 1)
    }

    /// The text of entry `e`, as given to tera (a `when` wrapped in `{% if %}`).
    fn src(&self, e: &Entry) -> &str {
        &self.arena[e.source.start as usize..e.source.end as usize]
    }

    pub fn source(&self, t: Tpl) -> &str {
        let e = &self.entries[t.0];
        let src = self.src(e);
        &src[e.prefix()
            ..src.len()
                - if e.flavor == Flavor::Expr {
                    EXPR_SUFFIX.len()
                } else {
                    0
                }]
    }

    pub fn span(&self, t: Tpl) -> Range<usize> {
        self.entries[t.0].span()
    }

    pub fn flavor(&self, t: Tpl) -> Flavor {
        self.entries[t.0].flavor
    }

    /// Maps a byte range inside a template's source to the file, or falls back to the string.
    fn file_span(&self, t: Tpl, local: Range<usize>) -> Range<usize> {
        let e = &self.entries[t.0];
        match e.origin {
            Some(origin) if local.start >= e.prefix() => {
                let origin = origin as usize;
                let len = self.source(t).len();
                let start = (local.start - e.prefix()).min(len);
                let end = (local.end.saturating_sub(e.prefix())).clamp(start, len);
                origin + start..origin + end
            }
            _ => e.span(),
        }
    }

    fn name(t: usize, flavor: Flavor) -> String {
        match flavor {
            Flavor::Shell => format!("t{t}.sh"),
            _ => format!("t{t}.txt"),
        }
    }

    /// Checks every template statically and compiles them in one batch per engine. A template
    /// with a problem is set aside (marked broken) so that every other one is still compiled and
    /// checked: one bad template must not hide the problems of the rest.
    pub fn compile(&mut self, p: &mut Problems) {
        self.lint_all(p);
        self.compile_tera(p);
    }

    /// The static checks of [`Templates::lint`] on every template, the second half of them on
    /// another thread; the problems come out in template order, as if checked one by one.
    pub fn lint_all(&mut self, p: &mut Problems) {
        let half = self.entries.len() / 2;
        let (first, second) = std::thread::scope(|s| {
            let this = &*self;
            let lint = move |range: Range<usize>| {
                let mut found = Problems::default();
                let refused: Vec<usize> =
                    range.filter(|&i| this.lint(Tpl(i), &mut found)).collect();
                (found, refused)
            };
            let second = s.spawn(move || lint(half..this.entries.len()));
            let first = lint(0..half);
            (
                first,
                second
                    .join()
                    .unwrap_or_else(|panic| std::panic::resume_unwind(panic)),
            )
        });
        for (found, refused) in [first, second] {
            p.list.extend(found.list);
            for i in refused {
                self.entries[i].broken = true;
            }
        }
        // The arena has grown by doubling while the runbook was read; nothing is added now.
        self.arena.shrink_to_fit();
    }

    /// Compiles the templates that need tera (those with blocks, filters or expressions), in
    /// one batch per engine, and records the names each reads. Runs after [`Templates::lint_all`].
    pub fn compile_tera(&mut self, p: &mut Problems) {
        for flavor_shell in [true, false] {
            loop {
                let batch: Vec<(String, String)> = self
                    .entries
                    .iter()
                    .enumerate()
                    .filter(|(_, e)| {
                        !e.literal
                            && !e.simple
                            && !e.broken
                            && (e.flavor == Flavor::Shell) == flavor_shell
                    })
                    .map(|(i, e)| (Self::name(i, e.flavor), self.src(e).to_string()))
                    .collect();
                let engine = if flavor_shell {
                    &mut self.shell
                } else {
                    &mut self.text
                };
                let Err(err) = engine.add_raw_templates(batch) else {
                    break;
                };
                let found: Vec<TemplateError> = self
                    .template_errors(&err)
                    .into_iter()
                    .filter(|f| !self.entries[f.index].broken)
                    .collect();
                if found.is_empty() {
                    let first = err.to_string();
                    let first = first.lines().next().unwrap_or_default();
                    p.push(
                        Diagnostic::new(
                            0..0,
                            format!(
                                "template error: {}",
                                lower_first(first.trim_start_matches("error: "))
                            ),
                        )
                        .label("in a template of this runbook"),
                    );
                    break;
                }
                for mut f in found {
                    if self.entries[f.index].flavor == Flavor::Expr {
                        // `when` is wrapped in `{% if ... %}`: the end of the author's text is
                        // what tera calls `%}`.
                        f.message = f.message.replace("`%}`", "the end of the expression");
                    }
                    self.entries[f.index].broken = true;
                    let span = self.file_span(Tpl(f.index), f.local.clone());
                    p.push(f.diagnostic(span));
                }
            }
        }
        self.instrument(p);
        for i in 0..self.entries.len() {
            let e = &self.entries[i];
            if e.literal || e.simple || e.broken {
                continue;
            }
            let engine = if e.flavor == Flavor::Shell {
                &self.shell
            } else {
                &self.text
            };
            let reads: Vec<String> = engine
                .get_template_variables(&Self::name(i, e.flavor))
                .map(|vars| vars.into_iter().map(str::to_string).collect())
                .unwrap_or_default();
            self.reads.insert(i, reads);
        }
    }

    /// Gives tera, in place of each compiled template that loops or sets, the same template
    /// with its loops and `set` values counted (see `bounds`). The author's text was compiled
    /// first, so that its errors are reported as written.
    fn instrument(&mut self, p: &mut Problems) {
        for flavor_shell in [true, false] {
            let mut batch = Vec::new();
            for (i, e) in self.entries.iter().enumerate() {
                if e.literal || e.simple || e.broken || (e.flavor == Flavor::Shell) != flavor_shell
                {
                    continue;
                }
                if let Some(inst) = bounds::instrument(self.src(e)) {
                    batch.push((Self::name(i, e.flavor), inst.text.clone()));
                    self.instrumented.insert(i, inst);
                }
            }
            if batch.is_empty() {
                continue;
            }
            let engine = if flavor_shell {
                &mut self.shell
            } else {
                &mut self.text
            };
            if let Err(err) = engine.add_raw_templates(batch) {
                // Only a fault of the instrumentation itself could get here: refuse rather than
                // render without bounds.
                for f in self.template_errors(&err) {
                    self.entries[f.index].broken = true;
                    p.push(
                        Diagnostic::new(
                            self.entries[f.index].span(),
                            format!(
                                "template error: rollout cannot bound the loops of this template: {}",
                                lower_first(&f.message)
                            ),
                        )
                        .label("in this template"),
                    );
                }
            }
        }
    }

    /// Reports the loops that would go over [`MAX_LOOP_ITEMS`] on every render, counting
    /// integer variables by `int_of` (their defaults).
    pub fn check_loop_bounds(&self, int_of: &dyn Fn(&str) -> Option<i64>, p: &mut Problems) {
        for (i, e) in self.entries.iter().enumerate() {
            if e.literal || e.simple || e.broken {
                continue;
            }
            for found in bounds::certain_overruns(self.src(e), int_of) {
                let defaults = if found.defaults.is_empty() {
                    String::new()
                } else {
                    format!(
                        " (counted with the default of {})",
                        found
                            .defaults
                            .iter()
                            .map(|d| format!("`{d}`"))
                            .collect::<Vec<_>>()
                            .join(", ")
                    )
                };
                p.push(
                    Diagnostic::new(
                        self.file_span(Tpl(i), found.tag),
                        format!(
                            "the loops of this template go over {} items{defaults}, more than the {} a template may loop over in all",
                            bounds::thousands(found.total),
                            bounds::thousands(u128::from(MAX_LOOP_ITEMS)),
                        ),
                    )
                    .label(format!("this loop runs {} times", found.how))
                    .help("nested loops multiply; loop over fewer items, or let the command do the looping (e.g. a shell `for` over `seq`)"),
                );
            }
        }
    }

    /// The located errors in a failed batch: one syntax error, or every unknown filter, test and
    /// function (which tera reports together, as text).
    fn template_errors(&self, err: &tera::Error) -> Vec<TemplateError> {
        let index_of = |filename: &str| -> Option<usize> {
            let index: usize = filename
                .strip_prefix('t')?
                .split('.')
                .next()?
                .parse()
                .ok()?;
            (index < self.entries.len()).then_some(index)
        };
        if let tera::ErrorKind::SyntaxError(report) | tera::ErrorKind::RenderingError(report) =
            err.kind()
        {
            return index_of(report.filename())
                .map(|index| TemplateError {
                    index,
                    syntax: true,
                    message: report.message().to_string(),
                    local: report.span().range.clone(),
                })
                .into_iter()
                .collect();
        }
        let text = err.to_string();
        let lines: Vec<&str> = text.lines().collect();
        let mut out = Vec::new();
        for (i, line) in lines.iter().enumerate() {
            let Some(message) = line.strip_prefix("error: ") else {
                continue;
            };
            let Some(locus) = lines
                .get(i + 1)
                .and_then(|l| l.trim_start().strip_prefix("--> "))
            else {
                continue;
            };
            let mut parts = locus.rsplitn(3, ':');
            let (Some(col), Some(row), Some(filename)) = (parts.next(), parts.next(), parts.next())
            else {
                continue;
            };
            let (Ok(col), Ok(row), Some(index)) = (
                col.parse::<usize>(),
                row.parse::<usize>(),
                index_of(filename),
            ) else {
                continue;
            };
            let width = lines
                .get(i + 4)
                .map_or(1, |l| l.matches('^').count().max(1));
            let source = self.src(&self.entries[index]);
            let line_start: usize = source
                .split_inclusive('\n')
                .take(row.saturating_sub(1))
                .map(str::len)
                .sum();
            let line_text = source[line_start..].split('\n').next().unwrap_or_default();
            let byte_at = |chars: usize| {
                line_text
                    .char_indices()
                    .nth(chars)
                    .map_or(line_text.len(), |(b, _)| b)
            };
            let start = line_start + byte_at(col.saturating_sub(1));
            let end = line_start + byte_at(col.saturating_sub(1) + width);
            out.push(TemplateError {
                index,
                syntax: false,
                message: message.to_string(),
                local: start..end,
            });
        }
        out
    }

    /// Made only of text and `{{ path }}` tags (see `walk_simple`).
    pub fn is_simple(&self, t: Tpl) -> bool {
        self.entries[t.0].simple
    }

    pub fn is_broken(&self, t: Tpl) -> bool {
        self.entries[t.0].broken
    }

    /// Checks what tera's parser does not: forbidden tags and filters, NUL bytes, and for shell
    /// commands, that every interpolation stands outside quotes, comments and heredocs.
    /// Returns whether the template uses a tag that must not reach tera at all.
    fn lint(&self, t: Tpl, p: &mut Problems) -> bool {
        let e = &self.entries[t.0];
        let source = self.src(e);
        let mut refused = false;
        if let Some(at) = source.find('\0') {
            p.push(
                Diagnostic::new(
                    self.file_span(t, at..at + 1),
                    "a NUL byte cannot be part of a command or message",
                )
                .label("NUL byte"),
            );
        }
        if e.literal {
            return false;
        }
        // A simple template has only `{{ path }}` tags: no blocks or filters to refuse.
        let tag_list = if e.simple { Vec::new() } else { tags(source) };
        for tag in tag_list {
            let inner = &source[tag.inner.clone()];
            if tag.kind == TagKind::Block {
                let word: String = inner
                    .trim_start()
                    .chars()
                    .take_while(|c| c.is_ascii_alphanumeric() || *c == '_')
                    .collect();
                if !ALLOWED_TAGS.contains(&word.as_str()) {
                    refused = true;
                    p.push(
                        Diagnostic::new(self.file_span(t, tag.outer.clone()), format!("`{{% {word} %}}` is not allowed in a runbook template"))
                            .label("not allowed here")
                            .help("runbook templates may use `if`, `for`, `set` and `raw`; they cannot load other templates"),
                    );
                }
            }
            if tag.kind != TagKind::Comment {
                let head = if tag.kind == TagKind::Block && bounds::block_word(inner) == "for" {
                    inner.find("for").map_or(0, |at| at + 3)
                } else {
                    0
                };
                if let Some(at) = find_word(&inner[head..], "for") {
                    refused = true;
                    let at = tag.inner.start + head + at;
                    p.push(
                        Diagnostic::new(
                            self.file_span(t, at..at + 3),
                            "list comprehensions (`[x for x in list]`) are not allowed in runbook templates",
                        )
                        .label("a comprehension")
                        .help("use a `{% for %}` loop: rollout bounds the items a template loops over, and counts only loops"),
                    );
                }
                if let Some(at) = find_filter(inner, "safe") {
                    let at = tag.inner.start + at;
                    p.push(
                        Diagnostic::new(self.file_span(t, at..at + 4), "the `safe` filter is not allowed in runbook templates")
                            .label("would insert the value unquoted")
                            .help("rollout quotes every value for the shell; to build a command from parts, write the parts in the runbook"),
                    );
                }
            }
        }
        if e.flavor == Flavor::Shell {
            for (at, context) in shell_contexts(source) {
                let name = tags(source)
                    .iter()
                    .find(|tag| tag.outer.start == at)
                    .map(|tag| source[tag.inner.clone()].trim())
                    .filter(|name| {
                        !name.is_empty()
                            && name
                                .chars()
                                .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '_')
                    });
                let env = name.map_or_else(
                    || "$ROLLOUT_VAR_<NAME>".to_string(),
                    |n| format!("$ROLLOUT_VAR_{}", n.to_ascii_uppercase()),
                );
                let tag = format!("{{{{ {} }}}}", name.unwrap_or("name"));
                let help = match context {
                    ShellContext::Arithmetic => format!(
                        "the shell evaluates arithmetic after removing quotes, so a value here could run commands; declare the variable with `type = \"integer\"` and write {env} in the arithmetic instead"
                    ),
                    ShellContext::AfterBackslash => {
                        "the backslash would escape the quote rollout puts around the value; remove it"
                            .to_string()
                    }
                    ShellContext::AfterDollar => format!(
                        "rollout templates are `{tag}`, without `$`; to follow a shell variable, close its name with braces: `${{NAME}}{tag}`"
                    ),
                    ShellContext::Comment => {
                        "remove the value from the comment, or move the comment out of the command"
                            .to_string()
                    }
                    ShellContext::Heredoc { .. } => format!(
                        "a heredoc body is not split into words, so a quoted value would keep its quotes; write \"{env}\" in the heredoc instead (with an unquoted delimiter)"
                    ),
                    _ => format!(
                        "write `{tag}` outside the quotes (rollout quotes the value itself), or use \"{env}\" in a double-quoted string"
                    ),
                };
                p.push(
                    Diagnostic::new(self.file_span(t, at..at + 2), context.message())
                        .label("the value would not be quoted correctly here")
                        .help(help),
                );
            }
        }
        refused
    }

    /// The top-level names a template reads, each with where it is first used in the file.
    pub fn names(&self, t: Tpl) -> Vec<(&str, Range<usize>)> {
        let e = &self.entries[t.0];
        if e.literal || e.broken {
            return Vec::new();
        }
        let source = self.src(e);
        if e.simple {
            let mut names: Vec<(&str, Range<usize>)> = Vec::new();
            for_each_value(source, |path, start, _| {
                let first = first_segment(path);
                if names.iter().all(|(n, _)| *n != first) {
                    names.push((first, self.file_span(t, start..start + first.len())));
                }
            });
            return names;
        }
        let engine = if e.flavor == Flavor::Shell {
            &self.shell
        } else {
            &self.text
        };
        let Ok(vars) = engine.get_template_variables(&Self::name(t.0, e.flavor)) else {
            return Vec::new();
        };
        let tag_list = tags(source);
        let mut names: Vec<(&str, Range<usize>)> = vars
            .into_iter()
            .map(|name| {
                let local = tag_list
                    .iter()
                    .filter(|tag| tag.kind != TagKind::Comment)
                    .find_map(|tag| {
                        find_word(&source[tag.inner.clone()], name).map(|at| tag.inner.start + at)
                    })
                    .map_or(e.prefix()..source.len(), |at| at..at + name.len());
                (name, self.file_span(t, local))
            })
            .collect();
        names.sort_by_key(|(_, span)| span.start);
        names
    }

    /// The top-level names a template reads, without where: what rendering it needs.
    pub fn reads(&self, t: Tpl) -> Vec<&str> {
        let e = &self.entries[t.0];
        if e.literal || e.broken {
            return Vec::new();
        }
        if e.simple {
            let mut names: Vec<&str> = Vec::new();
            for_each_value(self.src(e), |path, _, _| {
                let first = first_segment(path);
                if !names.contains(&first) {
                    names.push(first);
                }
            });
            return names;
        }
        self.reads
            .get(&t.0)
            .map(|r| r.iter().map(String::as_str).collect())
            .unwrap_or_default()
    }

    /// Attribute reads on a built-in object, e.g. `run.id`, with where each is.
    pub fn attributes(&self, t: Tpl, object: &str) -> Vec<(String, Range<usize>)> {
        let e = &self.entries[t.0];
        if e.literal || e.broken {
            return Vec::new();
        }
        let source = self.src(e);
        if e.simple {
            let mut found = Vec::new();
            for_each_value(source, |path, at, _| {
                let mut segments = path.split('.');
                if segments.next() != Some(object) {
                    return;
                }
                let Some(attr) = segments.next() else {
                    return;
                };
                let start = at + object.len() + 1;
                found.push((
                    attr.to_string(),
                    self.file_span(t, start..start + attr.len()),
                ));
            });
            return found;
        }
        let mut found = Vec::new();
        for tag in tags(source)
            .iter()
            .filter(|tag| tag.kind != TagKind::Comment)
        {
            let inner = &source[tag.inner.clone()];
            let mut from = 0;
            while let Some(at) = find_word(&inner[from..], object) {
                let after = from + at + object.len();
                if let Some(rest) = inner[after..].strip_prefix('.') {
                    let attr: String = rest
                        .chars()
                        .take_while(|c| c.is_ascii_alphanumeric() || *c == '_')
                        .collect();
                    let start = tag.inner.start + after + 1;
                    found.push((attr.clone(), self.file_span(t, start..start + attr.len())));
                }
                from = after;
            }
        }
        found
    }

    /// Renders a template in `scope`: the single rendering path of `plan` and `run`.
    pub fn render(&self, t: Tpl, scope: &Scope<'_>) -> Result<String, RenderError> {
        let e = &self.entries[t.0];
        let source = self.src(e);
        if e.literal {
            return Ok(source.to_string());
        }
        if e.simple {
            return self.render_simple(t, scope);
        }
        let engine = if e.flavor == Flavor::Shell {
            &self.shell
        } else {
            &self.text
        };
        // Only the names the template reads go into its context: copying every variable and
        // capture for each of 10,000 steps would dominate a plan.
        let mut context = Context::new();
        for name in self.reads.get(&t.0).into_iter().flatten() {
            if let Some(v) = scope.get(name) {
                context.insert_value(name.clone(), v.into_owned());
            }
        }
        let name = Self::name(t.0, e.flavor);
        let bounded = |context: &Context| {
            bounds::begin();
            let mut out = bounds::Output::default();
            engine.render_to(&name, context, &mut out).map(|()| out.0)
        };
        let rendered = bounded(&context).or_else(|err| {
            if bounds::overrun().is_some() {
                return Err(err);
            }
            // tera's list of names read is best effort: on any failure render once more with
            // everything in scope, so the result never depends on that list.
            let mut full = scope.base.context.clone();
            for local in ["phase", "step", "env"] {
                if let Some(v) = scope.get(local) {
                    full.insert_value(local, v.into_owned());
                }
            }
            bounded(&full)
        });
        let raw = rendered.map_err(|err| self.render_error(t, &err))?;
        // The escape functions write only whole strings and the text is the template's own.
        let raw = String::from_utf8(raw).map_err(|_| RenderError {
            message: "the template rendered text that is not UTF-8".into(),
            span: e.span(),
        })?;
        self.strip_sentinels(t, &raw)
    }

    /// A failed render, located in the author's text.
    fn render_error(&self, t: Tpl, err: &tera::Error) -> RenderError {
        let e = &self.entries[t.0];
        let source = self.src(e);
        let inst = self.instrumented.get(&t.0);
        let local = |range: Range<usize>| match inst {
            Some(inst) => inst.local(range.start)..inst.local(range.end),
            None => range,
        };
        let tag_at = |at: usize| {
            let end = source[at..].find("%}").map_or(source.len(), |i| at + i + 2);
            self.file_span(t, at..end)
        };
        let reported = match err.kind() {
            tera::ErrorKind::RenderingError(report) | tera::ErrorKind::SyntaxError(report) => {
                Some((
                    report.message().to_string(),
                    local(report.span().range.clone()),
                ))
            }
            _ => None,
        };
        if let Some(overrun) = bounds::overrun() {
            let span = match &overrun {
                bounds::Overrun::Items { at: Some(at) } | bounds::Overrun::Value { at, .. } => {
                    tag_at(*at)
                }
                bounds::Overrun::Items { at: None } => reported
                    .as_ref()
                    .map_or_else(|| e.span(), |(_, r)| self.file_span(t, r.clone())),
                bounds::Overrun::Output => e.span(),
            };
            return RenderError {
                message: overrun.message(),
                span,
            };
        }
        let (message, local) =
            reported.unwrap_or_else(|| (err.to_string(), e.prefix()..source.len()));
        RenderError {
            message: lower_first(&message),
            span: self.file_span(t, local),
        }
    }

    /// Evaluates a `when` expression.
    pub fn truthy(&self, t: Tpl, scope: &Scope<'_>) -> Result<bool, RenderError> {
        Ok(self.render(t, scope)?.trim() == "true")
    }

    /// Renders a simple template exactly as tera would with this crate's escape functions
    /// followed by [`Self::strip_sentinels`]: strings through the flavor's escape, other values
    /// formatted first, then escaped; a value beginning a word must not begin with `-`.
    fn render_simple(&self, t: Tpl, scope: &Scope<'_>) -> Result<String, RenderError> {
        let e = &self.entries[t.0];
        let source = self.src(e);
        let mut out = String::with_capacity(source.len() + 16);
        let mut failed = None;
        walk_simple(source, |p| {
            if failed.is_some() {
                return;
            }
            match p {
                Piece::Text(r) => out.push_str(&source[r]),
                Piece::Value(path, _, tag) => {
                    let Some(quoted) = scope.inserted(path, e.flavor == Flavor::Shell) else {
                        let first = first_segment(path);
                        let message = if scope.get(first).is_none() {
                            format!("variable `{first}` is not defined")
                        } else {
                            format!("`{path}` is not defined")
                        };
                        failed = Some(RenderError {
                            message,
                            span: self.file_span(t, tag),
                        });
                        return;
                    };
                    if matches!(e.flavor, Flavor::Shell | Flavor::Arg)
                        && begins_word(&out, e.flavor)
                        && starts_option(&quoted)
                    {
                        // Here the very tag is known: point at it.
                        failed = Some(RenderError {
                            span: self.file_span(t, tag),
                            ..option_error(e)
                        });
                        return;
                    }
                    if out.len() + quoted.len() > MAX_RENDERED_BYTES {
                        failed = Some(RenderError {
                            message: bounds::Overrun::Output.message(),
                            span: e.span(),
                        });
                        return;
                    }
                    out.push_str(&quoted);
                }
            }
        });
        match failed {
            Some(err) => Err(err),
            None => Ok(out),
        }
    }

    fn strip_sentinels(&self, t: Tpl, raw: &str) -> Result<String, RenderError> {
        let e = &self.entries[t.0];
        let mut out = String::with_capacity(raw.len());
        for (i, part) in raw.split('\0').enumerate() {
            let is_value = i % 2 == 1;
            if is_value
                && matches!(e.flavor, Flavor::Shell | Flavor::Arg)
                && begins_word(&out, e.flavor)
                && starts_option(part)
            {
                return Err(option_error(e));
            }
            out.push_str(part);
        }
        Ok(out)
    }
}

/// Whether a value, as inserted (shell-quoted or not), would be read as an option.
fn starts_option(inserted: &str) -> bool {
    let unquoted = inserted.strip_prefix('\'').unwrap_or(inserted);
    unquoted.starts_with('-') && !is_negative_number(unquoted.trim_end_matches('\''))
}

fn option_error(e: &Entry) -> RenderError {
    RenderError {
        message: "a value inserted here starts with `-`, so the command would read it as an option"
            .into(),
        span: e.span(),
    }
}

fn begins_word(before: &str, flavor: Flavor) -> bool {
    match flavor {
        Flavor::Arg => before.is_empty(),
        _ => {
            // Empty quotes (an empty value renders as `''`) add nothing to a word: `''-rf` is `-rf`.
            let mut before = before;
            while let Some(rest) = before
                .strip_suffix("''")
                .or_else(|| before.strip_suffix("\"\""))
            {
                before = rest.strip_suffix('$').unwrap_or(rest);
            }
            before
                .chars()
                .next_back()
                .is_none_or(|c| c.is_whitespace() || ";|&()<>".contains(c))
        }
    }
}

/// A negative decimal number such as `-1` or `-2.5`: the one kind of value allowed to begin a
/// word with `-`. (Not `-nan`, `-inf` or `-1e5`, which commands read as options.)
fn is_negative_number(s: &str) -> bool {
    s.strip_prefix('-').is_some_and(|digits| {
        let (int, frac) = digits.split_once('.').unwrap_or((digits, ""));
        !(int.is_empty() && frac.is_empty())
            && int.bytes().all(|b| b.is_ascii_digit())
            && frac.bytes().all(|b| b.is_ascii_digit())
    })
}

fn lower_first(s: &str) -> String {
    let mut c = s.chars();
    match c.next() {
        Some(f) => f.to_lowercase().chain(c).collect(),
        None => String::new(),
    }
}

/// A template problem found by tera, located inside the template's source.
struct TemplateError {
    index: usize,
    syntax: bool,
    message: String,
    local: Range<usize>,
}

/// Tera's built-in filters, tests and functions, for "did you mean" (`safe` is refused).
const FILTERS: &str = "default upper lower wordcount escape escape_html escape_xml newlines_to_br \
    pluralize trim trim_start trim_end replace capitalize title truncate indent str int float \
    length reverse split abs round first last nth join sort unique get values keys pairs group_by";
const TESTS: &str = "string number map bool array integer float none iterable defined undefined \
    odd even divisible_by starting_with ending_with containing";
const FUNCTIONS: &str = "range throw";

impl TemplateError {
    fn diagnostic(&self, span: Range<usize>) -> Diagnostic {
        if self.syntax {
            return Diagnostic::new(
                span,
                format!("template syntax error: {}", lower_first(&self.message)),
            )
            .label("here")
            .help("templates use tera syntax: `{{ name }}`, `{% if cond %}...{% endif %}`");
        }
        let unknown = |kind: &str| {
            self.message
                .strip_prefix(&format!("Unknown {kind} `"))
                .and_then(|r| r.strip_suffix('`'))
        };
        let suggest = |name: &str, known: &str| {
            let known: Vec<&str> = known.split_whitespace().collect();
            super::diagnostic::did_you_mean(name, &known)
                .unwrap_or_else(|| format!("expected one of: {}", known.join(", ")))
        };
        let (label, help) = if let Some(name) = unknown("filter") {
            ("unknown filter", suggest(name, FILTERS))
        } else if let Some(name) = unknown("test") {
            ("unknown test", suggest(name, TESTS))
        } else if let Some(name) = unknown("function") {
            ("unknown function", suggest(name, FUNCTIONS))
        } else {
            (
                "here",
                "templates use tera syntax: `{{ name }}`, `{% if cond %}...{% endif %}`"
                    .to_string(),
            )
        };
        Diagnostic::new(
            span,
            format!("template error: {}", lower_first(&self.message)),
        )
        .label(label)
        .help(help)
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum TagKind {
    Var,
    Block,
    Comment,
}

#[derive(Debug)]
struct Tag {
    kind: TagKind,
    outer: Range<usize>,
    inner: Range<usize>,
}

/// The `{{ }}`, `{% %}` and `{# #}` tags of a template, skipping `{% raw %}` bodies.
fn tags(src: &str) -> Vec<Tag> {
    let mut out = Vec::new();
    let mut i = 0;
    let b = src.as_bytes();
    let mut in_raw = false;
    while let Some(rel) = src[i..].find('{') {
        let start = i + rel;
        let (kind, close) = match b.get(start + 1) {
            Some(b'{') => (TagKind::Var, "}}"),
            Some(b'%') => (TagKind::Block, "%}"),
            Some(b'#') => (TagKind::Comment, "#}"),
            _ => {
                i = start + 1;
                continue;
            }
        };
        let body = start + 2;
        let end = src[body..].find(close).map_or(src.len(), |r| body + r);
        let inner_start = if b.get(body) == Some(&b'-') {
            body + 1
        } else {
            body
        };
        let inner_end = if end > inner_start && b.get(end - 1) == Some(&b'-') {
            end - 1
        } else {
            end
        };
        let inner = inner_start..inner_end.max(inner_start);
        let word = src[inner.clone()].trim();
        if in_raw {
            if kind == TagKind::Block && word == "endraw" {
                in_raw = false;
            }
        } else {
            if kind == TagKind::Block && word == "raw" {
                in_raw = true;
            }
            out.push(Tag {
                kind,
                outer: start..(end + 2).min(src.len()),
                inner,
            });
        }
        i = (end + 2).min(src.len());
        if i >= src.len() {
            break;
        }
    }
    out
}

/// Finds `word` as a whole identifier outside string literals.
fn find_word(text: &str, word: &str) -> Option<usize> {
    let b = text.as_bytes();
    let mut quote: Option<u8> = None;
    let is_ident = |c: u8| c.is_ascii_alphanumeric() || c == b'_';
    let mut i = 0;
    while i < b.len() {
        let c = b[i];
        if let Some(q) = quote {
            if c == q {
                quote = None;
            }
        } else if c == b'"' || c == b'\'' || c == b'`' {
            quote = Some(c);
        } else if text[i..].starts_with(word)
            && (i == 0 || (!is_ident(b[i - 1]) && b[i - 1] != b'.'))
            && b.get(i + word.len()).is_none_or(|&n| !is_ident(n))
        {
            return Some(i);
        }
        i += 1;
    }
    None
}

/// Finds `| name` (a filter application) in a tag's text.
fn find_filter(text: &str, name: &str) -> Option<usize> {
    let mut from = 0;
    while let Some(at) = find_word(&text[from..], name) {
        let abs = from + at;
        if text[..abs].trim_end().ends_with('|') {
            return Some(abs);
        }
        from = abs + name.len();
    }
    None
}

#[derive(Debug, Clone, PartialEq, Eq)]
enum ShellContext {
    Normal,
    Single,
    Double,
    AnsiC,
    Backtick,
    Comment,
    Heredoc {
        delimiter: String,
        strip_tabs: bool,
    },
    /// `$(( ))`, `(( ))`, `$[ ]`, or `[[ ]]` comparing numbers: the shell evaluates the text as
    /// arithmetic after removing quotes, and `a[$(cmd)]` there runs `cmd`.
    Arithmetic,
    /// Right after a backslash, which would escape the quote rollout puts around the value.
    AfterBackslash,
    /// Right after `$` or `$NAME`, which would read the value as (part of) an expansion.
    AfterDollar,
}

#[derive(Debug, Clone, Copy)]
enum Arith {
    /// `$((` or `((`, with the depth of parentheses opened inside.
    Parens(usize),
    /// `$[`, with the depth of parentheses opened inside.
    Brackets(usize),
}

/// A `[[ ]]` being read: where the interpolations inside it are, and its text.
struct TestBracket {
    vars: Vec<usize>,
    text: String,
}

impl ShellContext {
    fn describe(&self) -> &'static str {
        match self {
            ShellContext::Normal => "plain text",
            ShellContext::Single | ShellContext::AnsiC => "single quotes",
            ShellContext::Double => "double quotes",
            ShellContext::Backtick => "backticks",
            ShellContext::Comment => "a comment",
            ShellContext::Heredoc { .. } => "a heredoc",
            ShellContext::Arithmetic => "arithmetic",
            ShellContext::AfterBackslash => "a backslash escape",
            ShellContext::AfterDollar => "a `$` expansion",
        }
    }

    fn message(&self) -> String {
        match self {
            ShellContext::AfterBackslash => {
                "interpolation right after a backslash in a shell command".into()
            }
            ShellContext::AfterDollar => "interpolation right after `$` in a shell command".into(),
            _ => format!(
                "interpolation inside {} in a shell command",
                self.describe()
            ),
        }
    }
}

/// Tracks `$(( ))`, `(( ))` and `$[ ]` in plain shell text. When `chars[i]` opens, closes or
/// nests in one, returns how many characters after it were consumed too.
fn arithmetic(chars: &[char], i: usize, stack: &mut Vec<Arith>) -> Option<usize> {
    let next = chars.get(i + 1).copied();
    let next2 = chars.get(i + 2).copied();
    match (chars[i], stack.last_mut()) {
        ('$', _) if next == Some('(') && next2 == Some('(') => {
            stack.push(Arith::Parens(0));
            Some(2)
        }
        ('$', _) if next == Some('[') => {
            stack.push(Arith::Brackets(0));
            Some(1)
        }
        ('(', None) if next == Some('(') => {
            stack.push(Arith::Parens(0));
            Some(1)
        }
        ('(', Some(Arith::Parens(d) | Arith::Brackets(d))) => {
            *d += 1;
            Some(0)
        }
        (')', Some(Arith::Parens(0))) if next == Some(')') => {
            stack.pop();
            Some(1)
        }
        (')', Some(Arith::Parens(d) | Arith::Brackets(d))) if *d > 0 => {
            *d -= 1;
            Some(0)
        }
        (']', Some(Arith::Brackets(0))) => {
            stack.pop();
            Some(0)
        }
        _ => None,
    }
}

/// What a value inserted right after the plain shell text `before` would be glued to: a
/// backslash escaping its opening quote, or a `$` expansion it would become part of
/// (`${{ x }}` is `$'...'`, and `$HOME{{ x }}` with `x = "_dir"` reads `$HOME_dir`).
fn glued_context(before: &str) -> Option<ShellContext> {
    let odd_backslashes = |s: &str| (s.len() - s.trim_end_matches('\\').len()) % 2 == 1;
    if odd_backslashes(before) {
        return Some(ShellContext::AfterBackslash);
    }
    let head = before.trim_end_matches(|c: char| c.is_ascii_alphanumeric() || c == '_');
    let name = &before[head.len()..];
    let dollar = head.strip_suffix('$')?;
    let literal = odd_backslashes(dollar) || dollar.ends_with('$');
    let positional = name.starts_with(|c: char| c.is_ascii_digit());
    (!literal && !positional).then_some(ShellContext::AfterDollar)
}

/// Walks a shell command template and returns each `{{` that is not in plain shell context.
fn shell_contexts(src: &str) -> Vec<(usize, ShellContext)> {
    // Without any of these bytes the walk below never leaves plain text, never enters
    // arithmetic or `[[ ]]`, and nothing is glued to a value: skip it (most commands).
    if !src.bytes().any(|b| {
        matches!(
            b,
            b'\\' | b'\'' | b'"' | b'`' | b'$' | b'#' | b'<' | b'(' | b'['
        )
    }) {
        return Vec::new();
    }
    walk_shell_contexts(src)
}

fn walk_shell_contexts(src: &str) -> Vec<(usize, ShellContext)> {
    let mut bad = Vec::new();
    let tag_list = tags(src);
    let mut state = ShellContext::Normal;
    let mut pending_heredoc: Option<(String, bool)> = None;
    let mut line_start = true;
    let mut pos = 0;
    let mut segments: Vec<(Range<usize>, Option<&Tag>)> = Vec::new();
    for tag in &tag_list {
        segments.push((pos..tag.outer.start, None));
        segments.push((tag.outer.clone(), Some(tag)));
        pos = tag.outer.end;
    }
    segments.push((pos..src.len(), None));
    let mut heredoc_line = String::new();
    let mut arith: Vec<Arith> = Vec::new();
    let mut bracket: Option<TestBracket> = None;
    let mut previous_text = 0..0;
    for (range, tag) in segments {
        if let Some(tag) = tag {
            if tag.kind == TagKind::Var {
                let glued = (previous_text.end == tag.outer.start)
                    .then(|| glued_context(&src[previous_text.clone()]))
                    .flatten();
                if state != ShellContext::Normal {
                    bad.push((tag.outer.start, state.clone()));
                } else if let Some(glued) = glued {
                    bad.push((tag.outer.start, glued));
                } else if !arith.is_empty() {
                    bad.push((tag.outer.start, ShellContext::Arithmetic));
                } else if let Some(bracket) = &mut bracket {
                    bracket.vars.push(tag.outer.start);
                    bracket.text.push_str(" value ");
                }
                line_start = false;
            }
            continue;
        }
        previous_text = range.clone();
        let text = &src[range];
        let chars: Vec<char> = text.chars().collect();
        let mut i = 0;
        while i < chars.len() {
            let c = chars[i];
            if let Some(bracket) = &mut bracket {
                bracket.text.push(c);
            }
            if state == ShellContext::Normal {
                if let Some(consumed) = arithmetic(&chars, i, &mut arith) {
                    line_start = false;
                    i += consumed + 1;
                    continue;
                }
            }
            match &state {
                ShellContext::Heredoc {
                    delimiter,
                    strip_tabs,
                } => {
                    if c == '\n' {
                        let line = if *strip_tabs {
                            heredoc_line.trim_start_matches('\t')
                        } else {
                            heredoc_line.as_str()
                        };
                        if line == delimiter {
                            state = ShellContext::Normal;
                        }
                        heredoc_line.clear();
                    } else {
                        heredoc_line.push(c);
                    }
                }
                ShellContext::Single => {
                    if c == '\'' {
                        state = ShellContext::Normal;
                    }
                }
                ShellContext::AnsiC => {
                    if c == '\\' {
                        i += 1;
                    } else if c == '\'' {
                        state = ShellContext::Normal;
                    }
                }
                ShellContext::Double => {
                    if c == '\\' {
                        i += 1;
                    } else if c == '"' {
                        state = ShellContext::Normal;
                    }
                }
                ShellContext::Backtick => {
                    if c == '\\' {
                        i += 1;
                    } else if c == '`' {
                        state = ShellContext::Normal;
                    }
                }
                ShellContext::Comment => {
                    if c == '\n' {
                        state = ShellContext::Normal;
                    }
                }
                // Only ever reported, never the state of the walk.
                ShellContext::Arithmetic
                | ShellContext::AfterBackslash
                | ShellContext::AfterDollar => state = ShellContext::Normal,
                ShellContext::Normal
                    if c == '['
                        && chars.get(i + 1) == Some(&'[')
                        && bracket.is_none()
                        && (line_start
                            || i.checked_sub(1)
                                .and_then(|j| chars.get(j))
                                .is_some_and(|p| p.is_whitespace() || ";|&(!".contains(*p))) =>
                {
                    bracket = Some(TestBracket {
                        vars: Vec::new(),
                        text: String::new(),
                    });
                    i += 1;
                }
                ShellContext::Normal
                    if c == ']' && chars.get(i + 1) == Some(&']') && bracket.is_some() =>
                {
                    let closed = bracket.take().expect("checked above");
                    let numeric = closed
                        .text
                        .split_whitespace()
                        .any(|w| ["-eq", "-ne", "-lt", "-le", "-gt", "-ge"].contains(&w));
                    if numeric {
                        bad.extend(
                            closed
                                .vars
                                .into_iter()
                                .map(|at| (at, ShellContext::Arithmetic)),
                        );
                    }
                    i += 1;
                }
                ShellContext::Normal => match c {
                    '\\' => i += 1,
                    '\'' => state = ShellContext::Single,
                    '"' => state = ShellContext::Double,
                    '`' => state = ShellContext::Backtick,
                    '$' if chars.get(i + 1) == Some(&'\'') => {
                        state = ShellContext::AnsiC;
                        i += 1;
                    }
                    '#' if line_start
                        || i.checked_sub(1)
                            .and_then(|j| chars.get(j))
                            .is_some_and(|p| p.is_whitespace() || ";|&(".contains(*p)) =>
                    {
                        state = ShellContext::Comment;
                    }
                    '<' if chars.get(i + 1) == Some(&'<') && chars.get(i + 2) != Some(&'<') => {
                        let mut j = i + 2;
                        let strip_tabs = chars.get(j) == Some(&'-');
                        if strip_tabs {
                            j += 1;
                        }
                        while chars.get(j).is_some_and(|c| *c == ' ' || *c == '\t') {
                            j += 1;
                        }
                        let word: String = chars[j..]
                            .iter()
                            .take_while(|c| !c.is_whitespace() && !";|&<>()".contains(**c))
                            .filter(|c| !"'\"\\".contains(**c))
                            .collect();
                        if !word.is_empty() {
                            pending_heredoc = Some((word, strip_tabs));
                        }
                        i = j.saturating_sub(1);
                    }
                    '\n' => {
                        if let Some((delimiter, strip_tabs)) = pending_heredoc.take() {
                            state = ShellContext::Heredoc {
                                delimiter,
                                strip_tabs,
                            };
                            heredoc_line.clear();
                        }
                    }
                    _ => {}
                },
            }
            line_start = chars.get(i) == Some(&'\n');
            i += 1;
        }
    }
    bad
}

#[cfg(test)]
mod tests {
    use super::*;

    fn contexts(src: &str) -> Vec<ShellContext> {
        shell_contexts(src).into_iter().map(|(_, c)| c).collect()
    }

    /// The shortcut of `shell_contexts` is exact: without its trigger bytes, the walk finds
    /// nothing either.
    #[test]
    fn shell_contexts_shortcut_is_exact() {
        let alphabet = [
            "{{ x }}",
            "{{x}}",
            " ",
            "\n",
            "\t",
            ";",
            "|",
            "&",
            ">",
            ")",
            "]",
            "}",
            "{",
            "-",
            "=",
            "a",
            "b/c",
            "%",
            "!",
            "*",
            "?",
            "~",
            "{% if x %}",
            "{% endif %}",
            "{# c #}",
            "é",
            "\u{a0}",
        ];
        let mut seed: u64 = 0x9e37_79b9_7f4a_7c15;
        for _ in 0..5000 {
            let mut src = String::new();
            seed ^= seed << 13;
            seed ^= seed >> 7;
            seed ^= seed << 17;
            let len = (seed % 24) as usize;
            let mut r = seed;
            for _ in 0..len {
                r = r.wrapping_mul(6_364_136_223_846_793_005).wrapping_add(1);
                src.push_str(alphabet[(r >> 33) as usize % alphabet.len()]);
            }
            assert!(walk_shell_contexts(&src).is_empty(), "{src:?}");
            assert!(shell_contexts(&src).is_empty(), "{src:?}");
        }
        // and the walk does find something once a trigger is there
        assert!(!shell_contexts("echo '{{ x }}'").is_empty());
    }

    #[test]
    fn shell_context_detection() {
        assert!(contexts("echo {{ a }} x={{ b }} | grep {{ c }}").is_empty());
        assert_eq!(contexts("echo '{{ a }}'"), [ShellContext::Single]);
        assert_eq!(contexts("echo \"x {{ a }}\""), [ShellContext::Double]);
        assert_eq!(contexts("echo `{{ a }}`"), [ShellContext::Backtick]);
        assert_eq!(
            contexts("echo hi # {{ a }}\necho {{ b }}"),
            [ShellContext::Comment]
        );
        assert!(contexts("echo a#{{ b }}").is_empty());
        assert_eq!(
            contexts("echo 'it''s' \"q\\\"\" {{ a }} $'x\\'y' {{ b }}"),
            []
        );
        let heredoc = contexts("cat <<EOF\n{{ a }}\nEOF\necho {{ b }}");
        assert_eq!(heredoc.len(), 1);
        assert!(matches!(heredoc[0], ShellContext::Heredoc { .. }));
        assert!(contexts("echo {% raw %}'{% endraw %} {{ a }}").len() == 1);
    }

    #[test]
    fn arithmetic_and_glued_contexts() {
        use ShellContext::{AfterBackslash, AfterDollar, Arithmetic};
        assert_eq!(contexts("sleep $(( {{ n }} * 60 ))"), [Arithmetic]);
        assert_eq!(contexts("echo $(( $(echo {{ n }}) + 1 ))"), [Arithmetic]);
        assert_eq!(contexts("(( {{ n }} > 1 )) && echo {{ m }}"), [Arithmetic]);
        assert_eq!(contexts("echo $[ {{ n }} ]"), [Arithmetic]);
        assert_eq!(
            contexts("[[ {{ n }} -gt 3 ]] && [[ {{ m }} == x ]]"),
            [Arithmetic]
        );
        assert!(contexts("echo $(( 1 + 2 )) {{ n }} $(echo {{ m }})").is_empty());
        assert!(contexts("if [[ -n {{ n }} ]]; then echo {{ n }}; fi").is_empty());
        assert_eq!(contexts("echo ${{ x }}"), [AfterDollar]);
        assert_eq!(contexts("echo $HOME{{ x }}"), [AfterDollar]);
        assert_eq!(contexts("echo \\{{ x }}"), [AfterBackslash]);
        assert!(
            contexts("echo ${HOME}{{ x }} $1{{ x }} \\$HOME{{ x }} \\\\{{ x }} $${{ x }}")
                .is_empty()
        );
    }

    #[test]
    fn options_hidden_behind_empty_quotes_or_numbers() {
        assert!(begins_word("rm ''", Flavor::Shell));
        assert!(begins_word("rm ''\"\"$''", Flavor::Shell));
        assert!(!begins_word("rm 'a'''", Flavor::Shell));
        assert!(!begins_word("rm x''", Flavor::Shell));
        for n in ["-1", "-0.5", "-.5", "-5.", "-10"] {
            assert!(is_negative_number(n), "{n}");
        }
        for n in [
            "-",
            "-.",
            "-nan",
            "-inf",
            "-Infinity",
            "-1e5",
            "-1.2.3",
            "--1",
            "-1 ",
        ] {
            assert!(!is_negative_number(n), "{n}");
        }
    }

    #[test]
    fn quoting() {
        assert_eq!(shell_quote("abc-1.2/x:y"), "abc-1.2/x:y");
        assert_eq!(shell_quote(""), "''");
        assert_eq!(shell_quote("a b"), "'a b'");
        assert_eq!(shell_quote("it's"), r"'it'\''s'");
        assert_eq!(shell_quote("$(x)"), "'$(x)'");
    }
}
