//! Prints located runbook problems, followed by a one-line summary.

use std::fmt::Write;

use crate::runbook::{Diagnostic, Source};

pub fn render_all(source: &Source, diagnostics: &[Diagnostic], color: bool) -> String {
    let mut out = String::new();
    for d in diagnostics {
        out.push_str(&d.render(source, color));
        out.push_str("\n\n");
    }
    let n = diagnostics.len();
    let _ = writeln!(
        out,
        "error: `{}` has {n} problem{}; nothing was run",
        source.name,
        if n == 1 { "" } else { "s" }
    );
    out
}
