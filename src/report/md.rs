//! The report as Markdown, to paste into a ticket or a post-mortem: headings and tables only,
//! laid out by `templates/report/report.md.tera`. Every value the template inserts becomes one
//! table cell's text (`cell`: one line, `|` escaped); `code` quotes it as inline code instead.

use std::io::Write;

use tera::{Kwargs, State, Value};

use super::{RenderError, Report};

const TEMPLATE: (&str, &str) = (
    "report.md",
    include_str!("../../templates/report/report.md.tera"),
);

pub fn render(r: &Report) -> Result<String, RenderError> {
    // Each variable as `name=value`, the value as JSON (strings quoted).
    let vars: Vec<String> = r.vars.iter().map(|(k, v)| format!("{k}={v}")).collect();
    super::render(TEMPLATE, escape, r, |tera, context| {
        tera.register_filter("code", |text: &str, _: Kwargs, _: &State| {
            Value::safe_string(&code(text))
        });
        tera.register_filter("codes", |items: Vec<String>, kwargs: Kwargs, _: &State| {
            let sep = kwargs.get::<&str>("sep")?.unwrap_or(" ");
            let codes: Vec<String> = items.iter().map(|i| code(i)).collect();
            Ok::<_, tera::Error>(Value::safe_string(&codes.join(sep)))
        });
        tera.register_filter("fence", |text: &str, _: Kwargs, _: &State| {
            Value::safe_string(&fence(text))
        });
        context.insert("vars", &vars);
    })
}

/// How the template escapes what it inserts: as the text of one table cell.
fn escape(text: &str, out: &mut dyn Write) -> std::io::Result<()> {
    out.write_all(cell(text).as_bytes())
}

/// Text for one table cell: one line, `|` escaped.
fn cell(text: &str) -> String {
    text.split_whitespace()
        .collect::<Vec<_>>()
        .join(" ")
        .replace('|', "\\|")
}

/// Inline code that survives backticks in the text.
fn code(text: &str) -> String {
    let text = cell(text);
    if text.is_empty() {
        String::new()
    } else if text.contains('`') {
        format!("`` {text} ``")
    } else {
        format!("`{text}`")
    }
}

/// A fence longer than any run of backticks in `text`.
fn fence(text: &str) -> String {
    let longest = text.split(|c| c != '`').map(str::len).max().unwrap_or(0);
    "`".repeat(longest.max(2) + 1)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cells_stay_on_one_line_and_in_their_column() {
        assert_eq!(cell("a | b\nc"), "a \\| b c");
        assert_eq!(code("x`y"), "`` x`y ``");
    }

    #[test]
    fn fences_outlast_backticks_in_the_output() {
        assert_eq!(fence("plain"), "```");
        assert_eq!(fence("a ```` b"), "`````");
    }
}
