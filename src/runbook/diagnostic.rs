//! A located problem in a runbook and how it is drawn: `file:line:col`, the source line, a caret
//! under the fault and a hint. Rendering goes through annotate-snippets (rustc's renderer).

use std::ops::Range;

use annotate_snippets::renderer::DecorStyle;
use annotate_snippets::{AnnotationKind, Level, Renderer, Snippet};

use super::source::Source;

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Diagnostic {
    pub message: String,
    pub span: Range<usize>,
    pub label: String,
    pub help: Option<String>,
}

impl Diagnostic {
    pub fn new(span: Range<usize>, message: impl Into<String>) -> Self {
        Diagnostic {
            message: message.into(),
            span,
            label: String::new(),
            help: None,
        }
    }

    #[must_use]
    pub fn label(mut self, label: impl Into<String>) -> Self {
        self.label = label.into();
        self
    }

    #[must_use]
    pub fn help(mut self, help: impl Into<String>) -> Self {
        self.help = Some(help.into());
        self
    }

    #[must_use]
    pub fn maybe_help(mut self, help: Option<String>) -> Self {
        self.help = help;
        self
    }

    /// Draws the diagnostic against its source. Only the lines the span touches are shown.
    pub fn render(&self, source: &Source, color: bool) -> String {
        let text = &source.text;
        let start = self.span.start.min(text.len());
        let end = self.span.end.clamp(start, text.len());
        let line_start = text[..start].rfind('\n').map_or(0, |i| i + 1);
        let mut line_end = text[end..].find('\n').map_or(text.len(), |i| end + i);
        // A multi-line span (a whole table) is shown by its first line only.
        if let Some(first_nl) = text[start..line_end].find('\n') {
            line_end = start + first_nl;
        }
        let excerpt = &text[line_start..line_end];
        let local = (start - line_start)..(end.min(line_end) - line_start);
        let local = if local.is_empty() && !excerpt.is_empty() {
            let at = local.start.min(excerpt.len() - 1);
            let next = excerpt[at..].chars().next().map_or(1, char::len_utf8);
            at..at + next
        } else {
            local
        };
        let line_no = text[..line_start].matches('\n').count() + 1;
        let mut group = Level::ERROR.primary_title(&self.message).element(
            Snippet::source(excerpt)
                .line_start(line_no)
                .path(&source.name)
                .annotation(AnnotationKind::Primary.span(local).label(&self.label)),
        );
        if let Some(help) = &self.help {
            group = group.element(Level::HELP.message(help));
        }
        let renderer = if color {
            Renderer::styled()
        } else {
            Renderer::plain()
        };
        renderer.decor_style(DecorStyle::Ascii).render(&[group])
    }
}

/// The closest candidate to `word`, for "did you mean" hints.
pub fn suggest<'c>(word: &str, candidates: impl IntoIterator<Item = &'c str>) -> Option<&'c str> {
    candidates
        .into_iter()
        .map(|c| (strsim::damerau_levenshtein(word, c), c))
        .filter(|&(distance, c)| {
            distance > 0
                && distance <= (c.len().max(word.len()) / 3).max(1) + usize::from(word.len() > 5)
        })
        .min_by_key(|&(distance, _)| distance)
        .map(|(_, c)| c)
}

pub fn did_you_mean(word: &str, candidates: &[&str]) -> Option<String> {
    suggest(word, candidates.iter().copied()).map(|c| format!("did you mean `{c}`?"))
}
