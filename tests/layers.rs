//! The layers of the crate hold: a module imports only modules of the layers below its own
//! (the rule is written in `src/lib.rs`). Every `.rs` file under `src/` is read as text, and
//! every path into the crate it names is checked: `crate::x`, the items of `crate::{x, y::z}`,
//! and chains of `super::` that climb to the crate root (`super::super::x` from `src/a/b.rs`).
//! Comments count too: a doc link up the stack is the first step of an import up the stack.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

/// Lowest first. A module may import modules of lower layers only (and itself).
const LAYERS: &[&[&str]] = &[
    &["escape", "exit", "sshsig"],
    &["runbook"],
    &["inputs", "redact"],
    &["state"],
    &["config"],
    &["plan"],
    &["exec"],
    &["report"],
    &["cli"],
    &["ui"],
    &["completion", "scaffold"],
    &["app", "tooling"],
];

fn layer_of(module: &str) -> Option<usize> {
    LAYERS.iter().position(|layer| layer.contains(&module))
}

/// The module path of a file under `src/`: `src/exec/engine/rollback.rs` is `exec::engine::
/// rollback`, `src/exec/mod.rs` is `exec`; `lib.rs` and `main.rs` are the root (empty).
fn module_path(relative: &Path) -> Vec<String> {
    let mut parts: Vec<String> = relative
        .iter()
        .map(|p| p.to_string_lossy().into_owned())
        .collect();
    let last = parts.pop().unwrap_or_default();
    let stem = last.trim_end_matches(".rs");
    if !matches!(stem, "mod" | "lib" | "main") {
        parts.push(stem.to_string());
    }
    parts
}

fn is_ident(c: char) -> bool {
    c.is_ascii_alphanumeric() || c == '_'
}

/// Skips spaces and line breaks.
fn skip_space(text: &str, at: usize) -> usize {
    at + text[at..].len() - text[at..].trim_start().len()
}

/// The identifier at `at`, if there is one.
fn ident_at(text: &str, at: usize) -> Option<&str> {
    let end = text[at..]
        .find(|c: char| !is_ident(c))
        .map_or(text.len(), |n| at + n);
    (end > at).then(|| &text[at..end])
}

/// After `::` at `at`: the first identifier of each path the text names from there, whether one
/// (`x::y`) or a group (`{x, y::z, w::{a, b}}`).
fn names_after(text: &str, at: usize, out: &mut Vec<String>) {
    let at = skip_space(text, at);
    if text[at..].starts_with('{') {
        let mut depth = 0;
        let mut expect_name = true;
        for (offset, c) in text[at..].char_indices() {
            match c {
                '{' => {
                    depth += 1;
                    expect_name = depth == 1;
                }
                '}' => {
                    depth -= 1;
                    if depth == 0 {
                        return;
                    }
                }
                ',' if depth == 1 => expect_name = true,
                c if expect_name && is_ident(c) => {
                    expect_name = false;
                    if let Some(name) = ident_at(text, at + offset) {
                        out.push(name.to_string());
                    }
                }
                _ => {}
            }
        }
    } else if let Some(name) = ident_at(text, at) {
        out.push(name.to_string());
    }
}

/// The top-level modules of the crate that `text`, the file of module `path`, names.
fn imported(text: &str, path: &[String]) -> Vec<String> {
    let mut out = Vec::new();
    let bytes = text.as_bytes();
    let starts_word = |at: usize| at == 0 || !is_ident(bytes[at - 1] as char);
    // `crate::...`
    let mut from = 0;
    while let Some(n) = text[from..].find("crate") {
        let at = from + n;
        from = at + 5;
        if !starts_word(at) || text[from..].starts_with(|c: char| is_ident(c)) {
            continue;
        }
        let after = skip_space(text, from);
        if let Some(rest) = text[after..].strip_prefix("::") {
            names_after(text, text.len() - rest.len(), &mut out);
        }
    }
    // `super::super::...`: the crate root is reached after as many as the module is deep.
    let mut from = 0;
    while let Some(n) = text[from..].find("super") {
        let at = from + n;
        from = at + 5;
        if !starts_word(at) || (at >= 2 && &text[at - 2..at] == "::") {
            continue; // the first of a chain only
        }
        let mut climbed = 0;
        let mut cursor = at;
        while let Some(word) = ident_at(text, cursor) {
            if word != "super" {
                break;
            }
            climbed += 1;
            let after = skip_space(text, cursor + word.len());
            let Some(rest) = text[after..].strip_prefix("::") else {
                cursor = text.len();
                break;
            };
            cursor = skip_space(text, text.len() - rest.len());
        }
        if cursor < text.len() && climbed >= path.len() {
            names_after(text, cursor, &mut out);
        }
    }
    out
}

/// `file: names module` for every import that runs up the layers.
fn violations(relative: &Path, text: &str) -> Vec<String> {
    let path = module_path(relative);
    let Some(own) = path.first().and_then(|m| layer_of(m)) else {
        return Vec::new();
    };
    let mut found: Vec<String> = imported(text, &path)
        .into_iter()
        .filter(|m| m != &path[0] && layer_of(m).is_some_and(|l| l >= own))
        .map(|m| format!("src/{}: names `crate::{m}`", relative.display()))
        .collect();
    found.dedup();
    found
}

fn sources(dir: &Path, out: &mut Vec<PathBuf>) {
    for entry in std::fs::read_dir(dir).expect("src/ is readable") {
        let path = entry.expect("entry").path();
        if path.is_dir() {
            sources(&path, out);
        } else if path.extension().is_some_and(|e| e == "rs") {
            out.push(path);
        }
    }
}

#[test]
fn no_module_imports_a_module_above_it() {
    let src = Path::new(env!("CARGO_MANIFEST_DIR")).join("src");
    let mut files = Vec::new();
    sources(&src, &mut files);
    files.sort();
    let mut seen: BTreeMap<String, usize> = BTreeMap::new();
    let mut found = Vec::new();
    for file in &files {
        let relative = file.strip_prefix(&src).expect("under src/");
        let text = std::fs::read_to_string(file).expect("readable");
        if let Some(top) = module_path(relative).first() {
            assert!(
                layer_of(top).is_some(),
                "module `{top}` (src/{}) has no layer: add it to LAYERS here and to the rule in src/lib.rs",
                relative.display()
            );
            *seen.entry(top.clone()).or_default() += 1;
        }
        found.extend(violations(relative, &text));
    }
    assert!(
        found.is_empty(),
        "imports that run up the layers (see src/lib.rs):\n{}",
        found.join("\n")
    );
    // Every layer's modules exist, so that a renamed module cannot leave its rule behind.
    for module in LAYERS.iter().flat_map(|l| l.iter()) {
        assert!(
            seen.contains_key(*module),
            "no module `{module}` under src/"
        );
    }
}

/// The reading itself: each form of import, and each rule of src/lib.rs, is caught.
#[test]
fn the_layer_check_catches_every_form_of_import() {
    let caught = |file: &str, text: &str| !violations(Path::new(file), text).is_empty();
    // The rules the issue names, each in its plainest form.
    assert!(caught("runbook/model.rs", "use crate::plan::PlanStep;"));
    assert!(!caught("runbook/model.rs", "use crate::escape::text;"));
    for upper in ["exec", "ui", "report", "plan", "app"] {
        assert!(caught("state/file.rs", &format!("use crate::{upper}::X;")));
    }
    for upper in ["ui", "report", "app"] {
        assert!(caught("exec/engine.rs", &format!("use crate::{upper}::X;")));
    }
    assert!(caught(
        "plan/mod.rs",
        "fn f() { crate::ui::plan_view::render(); }"
    ));
    assert!(caught("redact.rs", "use crate::exec::event::Event;"));
    assert!(caught(
        "report/mod.rs",
        "use crate::ui::audit_view::VerifyReport;"
    ));
    // Groups, nested groups and line breaks.
    assert!(caught("exec/gates.rs", "use crate::{plan, ui};"));
    assert!(caught(
        "exec/gates.rs",
        "use crate::{\n    plan::{Action, RoleView},\n    ui::prompt,\n};"
    ));
    assert!(caught(
        "state/mod.rs",
        "use crate :: { runbook , exec :: gates };"
    ));
    assert!(!caught(
        "exec/gates.rs",
        "use crate::{plan::{Action, ui}, state};"
    ));
    // Climbing with `super`: from `exec/engine/gate_step.rs` two `super`s reach `exec`, three
    // the crate root.
    assert!(caught(
        "exec/engine/gate_step.rs",
        "use super::super::super::ui::X;"
    ));
    assert!(caught(
        "exec/engine/gate_step.rs",
        "use super::super::super::{plan, app};"
    ));
    assert!(caught("exec/mod.rs", "use super::report;"));
    assert!(caught(
        "state/file.rs",
        "use super::super::exec::gates::os_user;"
    ));
    assert!(!caught(
        "exec/engine/gate_step.rs",
        "use super::super::gates::Gate;"
    ));
    assert!(!caught("state/file.rs", "use super::audit;"));
    // In a doc comment too, as the before-stop hook reads it.
    assert!(caught("exec/engine.rs", "/// see [`crate::ui::plan_view`]"));
    // Names that only look like an import.
    assert!(!caught(
        "exec/engine.rs",
        "let supercrate = 1; mycrate::ui::x();"
    ));
    // Downward and sideways within a module are fine.
    assert!(!caught("ui/terminal.rs", "use crate::exec::event::Event;"));
    assert!(!caught("exec/engine.rs", "use crate::exec::abort::Watch;"));
}
