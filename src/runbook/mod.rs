//! Everything about the runbook file: reading, parsing, the model, templates and validation.
//! No side effects beyond reading the file. Every subcommand loads runbooks through [`load`].

pub mod condition;
pub mod diagnostic;
pub mod duration;
pub mod model;
pub mod param;
pub mod parse;
pub mod reader;
pub mod schema;
pub mod source;
pub mod split;
pub mod template;
pub mod validate;
pub mod watch;
pub mod window;

use std::path::Path;

use toml::de::DeTable;

pub use diagnostic::Diagnostic;
pub use model::Runbook;
pub use source::{Location, Source, SourceError};
pub use template::Templates;

use parse::PhaseTables;

/// A runbook that has passed every check, with its source and compiled templates.
#[derive(Debug)]
pub struct Loaded {
    pub source: Source,
    pub runbook: Runbook,
    pub templates: Templates,
}

#[derive(Debug)]
pub enum LoadError {
    /// The file could not be read as text.
    Unreadable(SourceError),
    /// The file was read; these are all of its problems, in file order.
    Invalid(Box<Source>, Vec<Diagnostic>),
}

/// Reads, parses and validates the runbook at `path`, reporting every problem at once.
/// Its digest (see [`Source::digest`]), which plan, run and resume need, is computed meanwhile.
pub fn load(path: &Path) -> Result<Loaded, LoadError> {
    let source = Source::read(path).map_err(LoadError::Unreadable)?;
    load_source(source, true)
}

/// [`load`] for `validate`, which does not need the digest: it is computed only if asked for.
pub fn load_to_validate(path: &Path) -> Result<Loaded, LoadError> {
    let source = Source::read(path).map_err(LoadError::Unreadable)?;
    load_source(source, false)
}

fn load_source(source: Source, digest: bool) -> Result<Loaded, LoadError> {
    // The digest is computed on a thread of its own, which has a core to itself until the
    // phases are parsed, and takes its share of both after.
    let read = std::thread::scope(|s| {
        if digest {
            s.spawn(|| source.digest().len());
        }
        read(&source.text)
    });
    let (runbook, templates, mut problems) = match read {
        Ok(read) => read,
        Err(list) => return Err(LoadError::Invalid(Box::new(source), list)),
    };
    if problems.is_empty() {
        return Ok(Loaded {
            source,
            runbook,
            templates,
        });
    }
    problems.sort_by_key(|d| d.span.start);
    problems.dedup();
    Err(LoadError::Invalid(Box::new(source), problems))
}

/// Parses and checks `text`: the model, its templates and every problem found, or the TOML
/// syntax errors that stop reading.
fn read(text: &str) -> Result<(Runbook, Templates, Vec<Diagnostic>), Vec<Diagnostic>> {
    // A runbook in the usual layout is read one phase at a time (see `split`), which keeps the
    // memory of a large one to its model; any doubt, and the whole file is parsed at once.
    match read_in_pieces(text) {
        Some(read) => Ok(read),
        None => read_whole(text),
    }
}

fn read_in_pieces(text: &str) -> Option<(Runbook, Templates, Vec<Diagnostic>)> {
    let layout = split::layout(text)?;
    let root = split::parse_top(text, &layout)?;
    let mut parser = parse::Parser::new(text);
    // The pieces are parsed on another core, a couple ahead of the phase being read.
    let runbook = std::thread::scope(|s| {
        let (parsed, tables) = std::sync::mpsc::sync_channel(2);
        let pieces = &layout.phases;
        s.spawn(move || {
            for piece in pieces {
                let table = split::parse_phase(text, piece.clone());
                let failed = table.is_none();
                if parsed.send(table).is_err() || failed {
                    break;
                }
            }
        });
        let mut tables = tables.into_iter();
        parser.runbook(
            &root,
            PhaseTables::Pieces {
                count: pieces.len(),
                tables: &mut tables,
            },
        )
    })?;
    drop(root);
    Some(check(runbook, parser))
}

fn read_whole(text: &str) -> Result<(Runbook, Templates, Vec<Diagnostic>), Vec<Diagnostic>> {
    let (root, errors) = DeTable::parse_recoverable(text);
    if !errors.is_empty() {
        return Err(syntax_errors(text, errors));
    }
    let mut parser = parse::Parser::new(text);
    let runbook = parser
        .runbook(&root, PhaseTables::InRoot)
        .expect("a whole-file parse has no pieces to fail");
    drop(root);
    Ok(check(runbook, parser))
}

/// Compiles the templates and validates the runbook, on two cores: the static template checks
/// and the references are each checked in two halves, and the ids and captures are checked
/// while the templates that need tera are compiled. The problems come out in the order of
/// doing it all on one thread.
fn check(runbook: Runbook, parser: parse::Parser<'_>) -> (Runbook, Templates, Vec<Diagnostic>) {
    let parse::Parser {
        mut templates,
        mut p,
        ..
    } = parser;
    templates.lint_all(&mut p);
    let (mut found, all_captures) = std::thread::scope(|s| {
        let runbook = &runbook;
        let side = s.spawn(move || {
            let mut found = reader::Problems::default();
            let all_captures = validate::ids_and_captures(runbook, &mut found);
            (found, all_captures)
        });
        templates.compile_tera(&mut p);
        side.join()
            .unwrap_or_else(|panic| std::panic::resume_unwind(panic))
    });
    p.list.append(&mut found.list);
    validate::references(&runbook, &templates, &all_captures, &mut p);
    drop(all_captures);
    templates.check_loop_bounds(&|name| validate::integer_default(&runbook, name), &mut p);
    (runbook, templates, p.list)
}

fn syntax_errors(text: &str, errors: Vec<toml::de::Error>) -> Vec<Diagnostic> {
    // After a syntax error the parser resynchronises at the next line; further errors on the
    // same line are echoes of the first, so only the first is shown.
    let mut lines_seen = Vec::new();
    let mut list = Vec::new();
    for e in errors {
        let span = e.span().unwrap_or(0..0);
        let line = source::line_col(text, span.start).0;
        if lines_seen.contains(&line) {
            continue;
        }
        lines_seen.push(line);
        let mut message = toml_message(e.message());
        if message == "duplicate key" {
            if let Some(key) = text.get(span.clone()) {
                message = format!("duplicate key `{key}`");
            }
        }
        list.push(Diagnostic::new(span, format!("invalid TOML: {message}")).label("here"));
    }
    list.sort_by_key(|d| d.span.start);
    list
}

fn toml_message(m: &str) -> String {
    let first = m.trim().lines().next().unwrap_or("").trim();
    let mut c = first.chars();
    match c.next() {
        Some(f) => f.to_lowercase().chain(c).collect(),
        None => "syntax error".into(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Reading in pieces must give exactly what reading the whole file gives: the same model
    /// (spans included), the same templates and the same problems.
    fn same_in_pieces(text: &str) {
        let whole = read_whole(text).expect("parses");
        let pieces = read_in_pieces(text).expect("read in pieces");
        assert_eq!(
            format!("{:?}", pieces.0),
            format!("{:?}", whole.0),
            "model of:\n{text}"
        );
        assert_eq!(format!("{:?}", pieces.1), format!("{:?}", whole.1));
        let problems = |mut list: Vec<Diagnostic>| {
            list.sort_by_key(|d| d.span.start);
            format!("{list:?}")
        };
        assert_eq!(
            problems(pieces.2),
            problems(whole.2),
            "problems of:\n{text}"
        );
    }

    #[test]
    fn pieces_read_like_the_whole_file() {
        let dir = concat!(env!("CARGO_MANIFEST_DIR"), "/runbooks");
        let mut seen = 0;
        for entry in std::fs::read_dir(dir).expect("runbooks/") {
            let path = entry.expect("entry").path();
            // `NAME.rehearsal.toml` is a vars file, not a runbook.
            if path.to_string_lossy().ends_with(".rehearsal.toml") {
                continue;
            }
            let text = std::fs::read_to_string(path).expect("text");
            same_in_pieces(&text);
            seen += 1;
        }
        assert!(seen > 0);
        same_in_pieces(concat!(
            "nme = 1\n[runbook]\nname = \"x\"\n[vars]\nb = 1\n\n",
            "[[phases]]\nid = \"Bad id\"\ntitle = \"T\"\nnope = 1\n",
            "[[phases.steps]]\nrun = \"echo {{ a }} '{{ b }}'\"\nwhen = \"b > \"\n",
            "[[phases.steps]]\nkubectl = [\"get\", 3]\nfrob = true\n",
            "[[phases.steps]]\nmetric = \"up\"\ncondition = \"<\"\n",
            "[[phases.steps]]\nrepeat = \"nowhere\"\n[phases.steps.env]\nA = \"{{ c }}\"\n",
            "[[phases.abort_when]]\nmetric = \"x\"\n",
            "[[phases.gate]]\nconfirm = \"ok?\"\ndeadline = \"1m\"\n",
            "[[phases.gate]]\nsignoff = \"go\"\nroles = [{ name = \"a\", nmae = 1 }]\n",
            "[[phases.steps]]\nrun = \"x\"\nretry = { attempts = 2, dealy = \"1s\" }\n",
            "[[phases.steps]]\nrun = \"x\"\n[phases.steps.env]\n\"bad name\" = \"v\"\n",
            "[[phases.steps]]\nhttp = \"http://x\"\nheaders = { \"bad header\" = \"v\" }\n",
            "[[phases.steps]]\nnothing = 1\n",
            "[[phases.steps]]\nrun = \"x\"\n[phases.steps.retry]\nattempts = 2\nbackof = 1\n",
            "  [[phases]] # second\nid = \"b\"\n",
            "[[rollback]]\nrun = \"undo {{ b }}\"\n",
            "[defaults]\ntimeout = \"1h\"\nwrong = 1\n",
        ));
    }
}
