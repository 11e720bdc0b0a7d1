//! Every runbook shipped in `runbooks/` validates and plans (its `NAME.rehearsal.toml` vars file,
//! if any, is rehearsed in `rehearsal.rs`). The directory is listed, not hard-coded, so a new
//! runbook is covered as soon as it is added. Variables a runbook requires
//! are given a value read from its own declaration: the first allowed value, or a value of the
//! declared type.

use std::path::{Path, PathBuf};

use crate::harness::{Test, repo};

pub(crate) fn shipped_runbooks() -> Vec<PathBuf> {
    let dir = repo().join("runbooks");
    let mut found: Vec<PathBuf> = std::fs::read_dir(&dir)
        .unwrap_or_else(|e| panic!("cannot list {}: {e}", dir.display()))
        .map(|e| e.unwrap().path())
        .filter(|p| p.extension().is_some_and(|x| x == "toml"))
        // `NAME.rehearsal.toml` is the vars file that rehearses `NAME.toml`, not a runbook.
        .filter(|p| !p.to_string_lossy().ends_with(".rehearsal.toml"))
        .collect();
    found.sort();
    assert!(!found.is_empty(), "no runbooks in {}", dir.display());
    found
}

/// `--var name=value` for every variable that must be set: required, without a default and not
/// a secret (plans never read secrets).
pub(crate) fn required_vars(path: &Path) -> Vec<String> {
    let text = std::fs::read_to_string(path).unwrap();
    let doc: toml::Table =
        toml::from_str(&text).unwrap_or_else(|e| panic!("{} is not TOML: {e}", path.display()));
    let Some(vars) = doc.get("vars").and_then(toml::Value::as_table) else {
        return Vec::new();
    };
    let mut out = Vec::new();
    for (name, decl) in vars {
        let Some(decl) = decl.as_table() else {
            continue; // shorthand: a default value
        };
        if decl.contains_key("default") || decl.contains_key("secret") {
            continue;
        }
        let value = match decl.get("allowed").and_then(|a| a.as_array()?.first()) {
            Some(toml::Value::String(s)) => s.clone(),
            Some(other) => other.to_string(),
            None => match decl.get("type").and_then(toml::Value::as_str) {
                Some("integer") => "1".into(),
                Some("float") => "1.5".into(),
                Some("boolean") => "true".into(),
                Some("duration") => "1m".into(),
                _ => "test".into(),
            },
        };
        out.push("--var".into());
        out.push(format!("{name}={value}"));
    }
    out
}

/// Runs `rollout ARGS` from a temp dir, with `RUNBOOK` replaced by the runbook's absolute path.
fn rollout(path: &Path, args: &[&str]) -> crate::harness::Outcome {
    let path = path.display().to_string();
    let args: Vec<String> = args
        .iter()
        .map(|a| {
            if *a == "RUNBOOK" {
                path.clone()
            } else {
                (*a).to_string()
            }
        })
        .chain(required_vars(Path::new(&path)))
        .collect();
    Test::new().args(args).run()
}

/// The problems found with one runbook.
fn check(path: &Path) -> Vec<String> {
    let name = path.file_name().unwrap().to_string_lossy().into_owned();
    let checks: [(&str, &[&str]); 3] = [
        ("validate", &["validate", "RUNBOOK"]),
        ("plan", &["plan", "RUNBOOK"]),
        (
            "plan --format json",
            &["plan", "RUNBOOK", "--format", "json"],
        ),
    ];
    let mut failures = Vec::new();
    for (what, args) in checks {
        let out = rollout(path, args);
        if out.status != 0 {
            failures.push(format!(
                "{name}: `{what}` exited {}\n{}",
                out.status, out.stderr
            ));
            continue;
        }
        if what.ends_with("json") {
            match serde_json::from_str::<serde_json::Value>(&out.stdout) {
                Ok(plan) if plan["format_version"] == 1 => {}
                Ok(_) => failures.push(format!("{name}: the JSON plan has no format_version 1")),
                Err(e) => failures.push(format!("{name}: the JSON plan is not JSON: {e}")),
            }
        }
    }
    failures
}

#[test]
fn every_shipped_runbook_validates_and_plans() {
    let runbooks = shipped_runbooks();
    let failures: Vec<String> = std::thread::scope(|s| {
        let checks: Vec<_> = runbooks.iter().map(|p| s.spawn(|| check(p))).collect();
        checks
            .into_iter()
            .flat_map(|c| c.join().expect("check thread"))
            .collect()
    });
    assert!(failures.is_empty(), "\n{}", failures.join("\n\n"));
}
