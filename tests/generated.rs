//! Files generated from the code and committed (completion scripts, the man page, the runbook
//! schema) must match what the binary generates now. On a difference the test fails with the
//! command that rewrites them: `ROLLOUT_BLESS=1 cargo test --test integration generated`.
//! Also: dynamic completion offers the run ids found in the state directory.

use std::path::Path;

use crate::harness::{MINIMAL, Test, repo};

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
fn completion_scripts_are_current() {
    for (shell, file) in [
        ("bash", "completions/rollout.bash"),
        ("zsh", "completions/_rollout"),
        ("fish", "completions/rollout.fish"),
        ("powershell", "completions/_rollout.ps1"),
        ("elvish", "completions/rollout.elv"),
    ] {
        matches_committed(file, &stdout_of(&["completions", shell]));
    }
}

#[test]
fn completion_scripts_complete_runbook_files() {
    // zsh and fish say what kind of value an argument takes; RUNBOOK is a file.
    let zsh = stdout_of(&["completions", "zsh"]);
    assert!(
        zsh.contains("':runbook -- The runbook file (TOML):_files'"),
        "{zsh}"
    );
    let fish = stdout_of(&["completions", "fish"]);
    assert!(
        fish.contains("-l state-dir") && fish.contains("-f -a \"(__fish_complete_directories)\""),
        "{fish}"
    );
}

#[test]
fn man_page_is_current() {
    let page = stdout_of(&["man"]);
    assert!(page.starts_with(".ie \\n(.g .ds Aq"), "{page}");
    assert!(
        page.contains(".SH \"rollout new\""),
        "every subcommand has a section"
    );
    assert!(
        page.contains(".SH \"EXIT STATUS\""),
        "exit codes are listed"
    );
    matches_committed("docs/rollout.1", &page);
}

#[test]
fn schema_is_current() {
    let schema = stdout_of(&["schema"]);
    let parsed: serde_json::Value = serde_json::from_str(&schema).expect("the schema is JSON");
    assert_eq!(parsed["title"], "rollout runbook");
    matches_committed("docs/runbook.schema.json", &schema);
}

/// `ROLLOUT_COMPLETE=fish rollout -- rollout WORDS...`: what the shell's dynamic completion asks.
fn dynamic(dir: &Path, words: &[&str], env: &[(&str, &str)]) -> String {
    let mut t = Test::in_dir(dir)
        .env("ROLLOUT_COMPLETE", "fish")
        .args(["--", "rollout"])
        .args(words.iter().copied());
    for (k, v) in env {
        t = t.env(k, v);
    }
    t.status(0).stdout
}

#[test]
fn dynamic_completion_offers_run_ids() {
    let first = Test::new()
        .runbook(MINIMAL)
        .args(["run", "runbook.toml"])
        .status(0);
    let runs = std::fs::read_dir(first.dir.join(".rollout/runs"))
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .collect::<Vec<_>>();
    assert_eq!(runs.len(), 1);
    let offered = dynamic(&first.dir, &["resume", ""], &[]);
    assert!(offered.contains(&runs[0]), "{offered}");
    let offered = dynamic(&first.dir, &["status", ""], &[]);
    assert!(offered.contains(&runs[0]), "{offered}");

    // ROLLOUT_STATE_DIR is where `resume` looks, so completion looks there too.
    let elsewhere = Test::new();
    let offered = dynamic(
        elsewhere.path(),
        &["resume", ""],
        &[(
            "ROLLOUT_STATE_DIR",
            first.dir.join(".rollout").to_str().unwrap(),
        )],
    );
    assert!(offered.contains(&runs[0]), "{offered}");
    let nothing = dynamic(elsewhere.path(), &["resume", ""], &[]);
    assert!(!nothing.contains(&runs[0]), "{nothing}");

    // Subcommands and RUNBOOK files complete as well.
    let verbs = dynamic(&first.dir, &["re"], &[]);
    assert!(verbs.contains("resume"), "{verbs}");
    let files = dynamic(&first.dir, &["validate", "run"], &[]);
    assert!(files.contains("runbook.toml"), "{files}");
}

#[test]
fn committed_bash_script_completes_in_bash() {
    let script = r#"source "$1" && COMP_WORDS=(rollout res) && COMP_CWORD=1 && _rollout rollout res rollout && echo "${COMPREPLY[@]}""#;
    let out = shell_with_script("bash", &["-c", script, "bash"], "completions/rollout.bash");
    assert_eq!(out.trim(), "resume");
}

/// Runs `shell` with `args`, the committed completion script's path last; its stdout.
fn shell_with_script(shell: &str, args: &[&str], script: &str) -> String {
    let script = crate::harness::repo().join(script);
    let out = std::process::Command::new(shell)
        .args(args)
        .arg(&script)
        .output()
        .unwrap_or_else(|e| panic!("{shell} (.ci/test installs it): {e}"));
    assert!(
        out.status.success(),
        "{shell}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout).into_owned()
}

#[test]
fn committed_fish_script_completes_in_fish() {
    // fish's own completion engine, asked as if the user pressed Tab.
    let script = r#"source $argv[1]; and complete -C "rollout res"; and echo ---; and complete -C "rollout validate --v""#;
    let out = shell_with_script(
        "fish",
        &["--no-config", "-c", script],
        "completions/rollout.fish",
    );
    let (verbs, flags) = out.split_once("---\n").expect(&out);
    assert_eq!(
        verbs
            .lines()
            .map(|l| l.split('\t').next().unwrap())
            .collect::<Vec<_>>(),
        ["resume"],
        "{out}"
    );
    let flags: Vec<&str> = flags
        .lines()
        .map(|l| l.split('\t').next().unwrap())
        .collect();
    assert_eq!(flags, ["--var", "--vars-file", "--version"], "{out}");
}

#[test]
fn committed_zsh_script_loads_under_compinit_and_lists_the_commands() {
    // The script parses, registers itself for `rollout` under compinit, and hands zsh's
    // `_describe` every subcommand (`_describe` is replaced by a printer: the full completion
    // widget needs a terminal).
    let script = r#"autoload -U compinit && compinit -u -D && source "$1" && print -r -- "registered: $_comps[rollout]" && _describe() { print -rl -- ${(P)4} } && _rollout_commands"#;
    let out = shell_with_script("zsh", &["-f", "-c", script, "zsh"], "completions/_rollout");
    assert!(out.starts_with("registered: _rollout\n"), "{out}");
    let names: Vec<&str> = out
        .lines()
        .skip(1)
        .map(|l| l.split(':').next().unwrap())
        .collect();
    for verb in [
        "validate",
        "plan",
        "run",
        "resume",
        "rollback",
        "report",
        "completions",
    ] {
        assert!(names.contains(&verb), "{verb} missing from {names:?}");
    }
}

#[test]
fn clap_default_complete_variable_does_not_hijack_commands() {
    // Only ROLLOUT_COMPLETE asks for completions; a stray COMPLETE must not turn
    // `validate` into a script printer that exits 0.
    Test::new()
        .runbook("[runbook]\nname = \"x\"\n")
        .env("COMPLETE", "bash")
        .args(["validate", "runbook.toml"])
        .status(3);
}

#[test]
fn dynamic_bash_completion_offers_run_ids_in_bash() {
    let first = Test::new()
        .runbook(MINIMAL)
        .args(["run", "runbook.toml"])
        .status(0);
    let run_id = crate::harness::run_id(&first.dir);
    let bin_dir = crate::harness::bin().parent().unwrap().to_path_buf();
    let path = format!(
        "{}:{}",
        bin_dir.display(),
        std::env::var("PATH").unwrap_or_default()
    );
    // What `source <(ROLLOUT_COMPLETE=bash rollout)` in ~/.bashrc sets up, then Tab after
    // `rollout resume `.
    let out = Test::in_dir(&first.dir)
        .command_for_shell(
            "bash",
            r#"source <(ROLLOUT_COMPLETE=bash rollout) && COMP_WORDS=(rollout resume "") && COMP_CWORD=2 && COMP_TYPE=9 && _clap_complete_rollout rollout "" resume && printf '%s\n' "${COMPREPLY[@]}""#,
        )
        .env("PATH", path)
        .output()
        .expect("bash");
    let offered = String::from_utf8_lossy(&out.stdout);
    assert!(
        offered.lines().any(|l| l.trim() == run_id),
        "{offered}\n{}",
        String::from_utf8_lossy(&out.stderr)
    );
}
