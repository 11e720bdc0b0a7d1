//! The three runbooks converted from real deployment plans (`runbooks/`, seeds in
//! shared/seeds): their `validate` and text `plan` as snapshots, so a change to what they say
//! shows up in review; and every soak, hold and deadline of an hour or more comes from a
//! variable, so the reviewed runbook is the one rehearsed with a vars file of minutes.

use crate::harness::{Test, repo};
use crate::runbooks::required_vars;

const SEEDS: [&str; 3] = [
    "payments-connectrpc.toml",
    "batch-patches.toml",
    "platform-deploy.toml",
];

/// `rollout ARGS` on a copy of the runbook in a temp dir, the dir's path shown as `[DIR]`.
fn on_copy(name: &str, args: &[&str]) -> String {
    let path = repo().join("runbooks").join(name);
    let text = std::fs::read_to_string(&path).unwrap();
    let t = Test::new().file(name, &text);
    let dir = t.path().canonicalize().unwrap().display().to_string();
    let out = t
        .args(args.iter().copied())
        .args(required_vars(&path))
        .status(0);
    out.stdout.replace(&dir, "[DIR]")
}

#[test]
fn seed_runbooks_validate_and_plan_as_reviewed() {
    for name in SEEDS {
        let validated = on_copy(name, &["validate", name]);
        insta::assert_snapshot!(format!("validate_{name}"), validated);
        let planned = on_copy(name, &["plan", name]);
        insta::assert_snapshot!(format!("plan_{name}"), planned);
    }
}

#[test]
fn every_long_soak_hold_and_deadline_of_the_seed_runbooks_comes_from_a_variable() {
    for name in SEEDS {
        let text = std::fs::read_to_string(repo().join("runbooks").join(name)).unwrap();
        for (n, line) in text.lines().enumerate() {
            let Some((key, value)) = line.split_once(" = ") else {
                continue;
            };
            if !matches!(key.trim(), "for" | "wait" | "deadline" | "max_duration") {
                continue;
            }
            let value = value.trim().trim_matches('"');
            let long = value.ends_with('h') || value.ends_with('d');
            assert!(
                value.contains("{{") || !long,
                "{name}:{}: `{line}` is a literal of an hour or more: take it from a variable",
                n + 1
            );
        }
    }
}
