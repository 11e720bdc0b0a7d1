//! Everything about the runbook file: reading, parsing, the model, templates and validation.
//! No side effects beyond reading the file. Every subcommand loads runbooks through [`load`].

pub mod condition;
pub mod diagnostic;
pub mod duration;
pub mod model;
pub mod parse;
pub mod reader;
pub mod schema;
pub mod source;
pub mod template;
pub mod validate;

use std::path::Path;

use toml::de::DeTable;

pub use diagnostic::Diagnostic;
pub use model::Runbook;
pub use source::{Source, SourceError};
pub use template::Templates;

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
pub fn load(path: &Path) -> Result<Loaded, LoadError> {
    let source = Source::read(path).map_err(LoadError::Unreadable)?;
    load_source(source)
}

pub fn load_source(source: Source) -> Result<Loaded, LoadError> {
    let (runbook, templates, mut problems) = {
        let (root, errors) = DeTable::parse_recoverable(&source.text);
        if !errors.is_empty() {
            // After a syntax error the parser resynchronises at the next line; further errors
            // on the same line are echoes of the first, so only the first is shown.
            let mut lines_seen = Vec::new();
            let mut list = Vec::new();
            for e in errors {
                let span = e.span().unwrap_or(0..0);
                let line = source.line_col(span.start).0;
                if lines_seen.contains(&line) {
                    continue;
                }
                lines_seen.push(line);
                let mut message = toml_message(e.message());
                if message == "duplicate key" {
                    if let Some(key) = source.text.get(span.clone()) {
                        message = format!("duplicate key `{key}`");
                    }
                }
                list.push(Diagnostic::new(span, format!("invalid TOML: {message}")).label("here"));
            }
            list.sort_by_key(|d| d.span.start);
            return Err(LoadError::Invalid(Box::new(source), list));
        }
        let mut parser = parse::Parser::new(&source.text);
        let runbook = parser.runbook(&root);
        parser.templates.compile(&mut parser.p);
        validate::validate(&runbook, &parser.templates, &mut parser.p);
        (runbook, parser.templates, parser.p.list)
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

fn toml_message(m: &str) -> String {
    let first = m.trim().lines().next().unwrap_or("").trim();
    let mut c = first.chars();
    match c.next() {
        Some(f) => f.to_lowercase().chain(c).collect(),
        None => "syntax error".into(),
    }
}
