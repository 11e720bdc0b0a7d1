//! Files generated from the code and committed (the runbook schema) must match what the binary
//! generates now. On a difference the test fails with the command that rewrites them:
//! `ROLLOUT_BLESS=1 cargo test --test integration generated`.

use crate::harness::{Test, repo};

/// Compares `generated` with the committed file `relative` (to the repository), or rewrites
/// the file when `ROLLOUT_BLESS` is set.
pub(crate) fn matches_committed(relative: &str, generated: &str) {
    let path = repo().join(relative);
    if std::env::var_os("ROLLOUT_BLESS").is_some_and(|v| !v.is_empty()) {
        if let Some(dir) = path.parent() {
            std::fs::create_dir_all(dir).unwrap();
        }
        std::fs::write(&path, generated).unwrap();
        return;
    }
    let committed = std::fs::read_to_string(&path).unwrap_or_default();
    if committed != generated {
        let diff = similar::TextDiff::from_lines(&committed, generated)
            .unified_diff()
            .header(relative, "generated")
            .to_string();
        panic!(
            "`{relative}` is stale; regenerate it with\n    ROLLOUT_BLESS=1 cargo test --test integration generated\n{diff}"
        );
    }
}

fn stdout_of(args: &[&str]) -> String {
    Test::new()
        .args(args.iter().copied())
        .status(0)
        .stdout
        .clone()
}

#[test]
fn schema_is_current() {
    let schema = stdout_of(&["schema"]);
    let parsed: serde_json::Value = serde_json::from_str(&schema).expect("the schema is JSON");
    assert_eq!(parsed["title"], "rollout runbook");
    matches_committed("docs/runbook.schema.json", &schema);
}
