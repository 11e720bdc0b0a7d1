//! Cuts a runbook's text at its `[[phases]]` headers, so that each phase can be parsed, read
//! into the model and dropped in turn: the TOML tree (and the parser's token and event lists)
//! of a 10,000-step file never exist all at once.
//!
//! Only the layout every runbook uses is cut: top-level tables, then the phases (each a
//! `[[phases]]` header followed by its own `[phases.*]` / `[[phases.*]]` tables), then
//! optionally more top-level tables. Anything else, and any piece that does not parse cleanly
//! on its own, makes the caller parse the whole file as one document instead, so diagnostics
//! never depend on the cutting. No model building here.

use std::ops::Range;

use toml::Spanned;
use toml::de::{DeTable, DeValue};

/// The pieces of a runbook's text.
#[derive(Debug, PartialEq, Eq)]
pub struct Layout {
    /// Top-level tables before the first `[[phases]]`.
    pub prelude: Range<usize>,
    /// One range a phase, each starting at its `[[phases]]` header.
    pub phases: Vec<Range<usize>>,
    /// Top-level tables after the phases.
    pub epilogue: Range<usize>,
}

/// What a table header names.
enum Header {
    /// `[[phases]]`: a new phase.
    NewPhase,
    /// `[phases.x]` or `[[phases.x]]`: part of the current phase.
    InPhase,
    /// A table whose first key is a bare key other than `phases`.
    Other,
    /// `[phases]`: for a whole-file parse to judge.
    Unusual,
}

/// Finds the layout of `text`, or `None` when it is not the usual one (or has no phases).
///
/// Headers are found line by line, without lexing: a line that only looks like a header
/// (inside a multi-line string or array) cuts the text inside that construct, which leaves
/// the piece before it unterminated, so that piece fails to parse and the caller falls back.
pub fn layout(text: &str) -> Option<Layout> {
    let mut phases: Vec<Range<usize>> = Vec::new();
    let mut epilogue_start: Option<usize> = None;
    let mut prelude_end = None;
    let bytes = text.as_bytes();
    // A header is a line whose first byte after blanks is `[`: look at each `[` that is.
    for start in memchr::memchr_iter(b'[', bytes) {
        let line_start = bytes[..start]
            .iter()
            .rposition(|&b| b != b' ' && b != b'\t')
            .map_or(0, |before| before + 1);
        if line_start > 0 && bytes[line_start - 1] != b'\n' {
            continue;
        }
        let line_end = memchr::memchr(b'\n', &bytes[start..]).map_or(text.len(), |n| start + n + 1);
        let trimmed = &text[start..line_end];
        let Some(header) = header(trimmed) else {
            continue;
        };
        match (header, epilogue_start) {
            (Header::NewPhase, None) => {
                if let Some(last) = phases.last_mut() {
                    last.end = start;
                } else {
                    prelude_end = Some(start);
                }
                phases.push(start..text.len());
            }
            (Header::InPhase, None) if !phases.is_empty() => {}
            (Header::Other, None) if !phases.is_empty() => {
                if let Some(last) = phases.last_mut() {
                    last.end = start;
                }
                epilogue_start = Some(start);
            }
            (Header::Other, _) => {}
            _ => return None,
        }
    }
    let prelude_end = prelude_end?;
    let epilogue_start = epilogue_start.unwrap_or(text.len());
    Some(Layout {
        prelude: 0..prelude_end,
        phases,
        epilogue: epilogue_start..text.len(),
    })
}

/// What the line `line` (starting with `[`) names when it is a table header of bare keys.
/// `None` for anything else, such as `[ -n "$x" ]` in a shell script or a header with quoted
/// keys: such a line cuts nothing, so a real header of that kind stays inside a piece, where
/// the checks of [`parse_top`] and [`parse_phase`] find it.
fn header(line: &str) -> Option<Header> {
    let blank = |s: &str| s.trim_start_matches([' ', '\t']).len();
    let (array, mut rest) = match line.strip_prefix("[[") {
        Some(rest) => (true, rest),
        None => (false, &line[1..]),
    };
    let mut keys = Vec::new();
    loop {
        rest = &rest[rest.len() - blank(rest)..];
        let len = rest
            .find(|c: char| !(c.is_ascii_alphanumeric() || c == '_' || c == '-'))
            .unwrap_or(rest.len());
        if len == 0 {
            return None;
        }
        keys.push(&rest[..len]);
        rest = &rest[len..];
        rest = &rest[rest.len() - blank(rest)..];
        match rest.strip_prefix('.') {
            Some(after) => rest = after,
            None => break,
        }
    }
    rest = rest.strip_prefix(if array { "]]" } else { "]" })?;
    let tail = rest.trim_start_matches([' ', '\t']);
    if !(tail.is_empty() || tail.starts_with(['#', '\n', '\r'])) {
        return None;
    }
    Some(match (keys.as_slice(), array) {
        (["phases"], true) => Header::NewPhase,
        (["phases", ..], _) if keys.len() > 1 => Header::InPhase,
        (["phases"], false) => Header::Unusual,
        _ => Header::Other,
    })
}

/// Parses the piece `range` of `text` as a document of its own, with spans into `text`;
/// `None` when the piece has errors.
pub fn parse_piece(text: &str, range: Range<usize>) -> Option<DeTable<'_>> {
    let (root, errors) = DeTable::parse_recoverable(&text[range.clone()]);
    if !errors.is_empty() {
        return None;
    }
    Some(shift_table(root.into_inner(), range.start))
}

/// The top-level tables of the prelude and the epilogue as one table, as a whole-file parse
/// would give them; `None` when either has errors or when they share or define `phases` (a
/// whole-file parse decides what that means).
pub fn parse_top<'a>(text: &'a str, layout: &Layout) -> Option<Spanned<DeTable<'a>>> {
    let mut top = parse_piece(text, layout.prelude.clone())?;
    let epilogue = parse_piece(text, layout.epilogue.clone())?;
    if top.contains_key("phases") || epilogue.contains_key("phases") {
        return None;
    }
    for (key, value) in epilogue {
        if top.contains_key(key.get_ref().as_ref()) {
            return None;
        }
        top.insert(key, value);
    }
    Some(Spanned::new(0..text.len(), top))
}

/// The one phase table of a phase piece, and where the piece starts; `None` when the piece has
/// errors or holds anything but one `[[phases]]` table. The spans of values are placed in the
/// file; those of keys are left relative to the piece (moving them would mean building every
/// table again), so they must be read through a [`Table`] shifted by the piece's start.
///
/// [`Table`]: super::reader::Table
pub fn parse_phase(text: &str, range: Range<usize>) -> Option<(Spanned<DeValue<'_>>, usize)> {
    let (root, errors) = DeTable::parse_recoverable(&text[range.clone()]);
    if !errors.is_empty() {
        return None;
    }
    let mut root = root.into_inner();
    if root.len() != 1 {
        return None;
    }
    let phases = root.remove("phases")?.into_inner();
    let DeValue::Array(mut items) = phases else {
        return None;
    };
    if items.len() != 1 || !matches!(items[0].get_ref(), DeValue::Table(_)) {
        return None;
    }
    let mut phase = items.iter_mut().next().map(take)?;
    shift_values(&mut phase, range.start);
    Some((phase, range.start))
}

/// Moves the spans of `node` and of every value in it by `by`, in place.
fn shift_values(node: &mut Spanned<DeValue<'_>>, by: usize) {
    let span = shifted(node.span(), by);
    let mut value = take(node).into_inner();
    match &mut value {
        DeValue::Table(table) => {
            for (_, v) in table.iter_mut() {
                shift_values(v, by);
            }
        }
        DeValue::Array(items) => {
            for item in items.iter_mut() {
                shift_values(item, by);
            }
        }
        _ => {}
    }
    *node = Spanned::new(span, value);
}

fn take<'a>(node: &mut Spanned<DeValue<'a>>) -> Spanned<DeValue<'a>> {
    std::mem::replace(node, Spanned::new(0..0, DeValue::Boolean(false)))
}

fn shifted(span: Range<usize>, by: usize) -> Range<usize> {
    span.start + by..span.end + by
}

fn shift_table(table: DeTable<'_>, by: usize) -> DeTable<'_> {
    let mut out = DeTable::with_capacity(table.len());
    for (key, value) in table {
        let key = Spanned::new(shifted(key.span(), by), key.into_inner());
        out.insert(key, shift_value(value, by));
    }
    out
}

fn shift_value(node: Spanned<DeValue<'_>>, by: usize) -> Spanned<DeValue<'_>> {
    let span = shifted(node.span(), by);
    let value = match node.into_inner() {
        DeValue::Table(t) => DeValue::Table(shift_table(t, by)),
        DeValue::Array(mut items) => {
            for item in items.iter_mut() {
                *item = shift_value(take(item), by);
            }
            DeValue::Array(items)
        }
        other => other,
    };
    Spanned::new(span, value)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cuts_at_phase_headers() {
        let text = "[runbook]\nname = \"x\"\n\n[[phases]]\nid = \"a\"\n[[phases.steps]]\nrun = \"y\"\n  [[ phases ]] # b\nid = \"b\"\n[phases.x]\n[[rollback]]\nrun = \"y\"\n[defaults]\n";
        let l = layout(text).expect("usual layout");
        let pieces: Vec<&str> = l.phases.iter().map(|r| &text[r.clone()]).collect();
        assert_eq!(&text[l.prelude.clone()], "[runbook]\nname = \"x\"\n\n");
        assert_eq!(
            pieces,
            [
                "[[phases]]\nid = \"a\"\n[[phases.steps]]\nrun = \"y\"\n  ",
                "[[ phases ]] # b\nid = \"b\"\n[phases.x]\n"
            ]
        );
        assert_eq!(&text[l.epilogue], "[[rollback]]\nrun = \"y\"\n[defaults]\n");
    }

    #[test]
    fn lines_that_only_look_like_headers_make_a_piece_fail() {
        let text =
            "[runbook]\nname = \"x\"\n[[phases]]\nid = \"a\"\nrun = \"\"\"\n[[phases]]\n\"\"\"\n";
        let l = layout(text).expect("looks usual");
        assert_eq!(l.phases.len(), 2);
        assert!(parse_phase(text, l.phases[0].clone()).is_none());
    }

    #[test]
    fn unusual_layouts_are_not_cut() {
        for text in [
            "[runbook]\nname = \"x\"\n",
            "[phases.x]\n[[phases]]\n",
            "[[phases]]\n[[rollback]]\n[[phases]]\n",
            "[[phases]]\n[[phases.x]]\n[[rollback]]\n[phases.steps]\n",
            "[[phases]]\n[phases]\n",
        ] {
            assert_eq!(layout(text), None, "{text}");
        }
    }
}
