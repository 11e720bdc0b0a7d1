//! Hostile variable values must reach commands as exactly the bytes given, one word or one
//! argument each, and must never run anything.
//!
//! Every value of `tests/data/hostile-values.json` (with `CANARY` replaced by an absolute path
//! in the case's temp dir) goes, once through `--var` and once through `--vars-file`, into a
//! runbook with a shell step that writes the value to a file and a kubectl step whose binary is
//! a stub recording its argv. The rendered steps are then executed by [`EXECUTE`] and the bytes
//! received are compared with the value. Values that would begin a word with `-` and values
//! with a NUL byte must be refused before anything runs.

use std::collections::BTreeSet;
use std::fmt::Write as _;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::Duration;

use serde_json::Value;

use crate::harness::{Outcome, RUNBOOK, Test, repo, wait_bounded};

/// How rendered steps reach a shell and kubectl. When `rollout run` exists, point this at an
/// executor that runs `rollout run` instead: the corpus and every expectation stay the same.
const EXECUTE: Executor = plan_then_execute;

/// Runs the runbook of `test` with the variable arguments `vars`; `step_env` is what the executed
/// steps must see in their environment (the kubectl stub reads `ARGV_FILE` from it).
type Executor = fn(test: Test, vars: &[String], step_env: &[(String, String)]) -> Executed;

/// What an executor did: rollout's own outcome (which keeps the case directory alive) and the
/// steps that did not exit 0.
struct Executed {
    outcome: Outcome,
    failed_steps: Vec<String>,
}

const HOSTILE_RUNBOOK: &str = r#"[runbook]
name = "hostile"

[vars]
v = "placeholder"
out = "out"
glued = "glued"
empty = ""

[[phases]]
id = "only"
title = "Only phase"

[[phases.steps]]
id = "shell"
run = "printf '%s' {{ v }} > {{ out }}"

[[phases.steps]]
id = "glued"
run = "printf '%s\\0' pre{{ v }} {{ v }}post {{ empty }}{{ v }} \"$ROLLOUT_VAR_V\" > {{ glued }}"

[[phases.steps]]
id = "kube"
kubectl = ["annotate", "pod/x", "note={{ v }}", "{{ v }}"]
"#;

/// Records its arguments, each followed by a NUL byte, in `$ARGV_FILE`.
const KUBECTL_STUB: &str =
    "#!/bin/sh\nfor a in \"$@\"; do printf '%s\\0' \"$a\"; done > \"$ARGV_FILE\"\n";

const STUB: &str = "kubectl-stub";
const OUT: &str = "out";
const GLUED: &str = "glued";
const ARGV: &str = "argv";
const VARS_FILE: &str = "vars.toml";
const CANARY: &str = "CANARY";

// ---------------------------------------------------------------------------------------------
// The executor used until `rollout run` exists.

/// `rollout plan --format json`, then [`execute_rendered`] on the plan.
fn plan_then_execute(test: Test, vars: &[String], step_env: &[(String, String)]) -> Executed {
    let dir = test.path().to_path_buf();
    let outcome = test
        .args(["plan", RUNBOOK, "--format", "json"])
        .args(vars.iter().cloned())
        .run();
    let failed_steps = if outcome.status == 0 {
        execute_rendered(&outcome.json(), &dir, step_env)
    } else {
        Vec::new()
    };
    Executed {
        outcome,
        failed_steps,
    }
}

/// Executes the `run` and `kubectl` steps of a JSON plan the way `rollout run` will: spawns
/// `action.argv` directly (no extra shell around kubectl) with `exported_env`, `action.env` and
/// `step_env` added to the environment, in `action.workdir` (kubectl steps: `dir`). Returns a
/// description of each step that did not exit 0.
pub fn execute_rendered(plan: &Value, dir: &Path, step_env: &[(String, String)]) -> Vec<String> {
    let strings = |v: &Value| -> Vec<(String, String)> {
        v.as_object()
            .map(|m| {
                m.iter()
                    .map(|(k, v)| {
                        (
                            k.clone(),
                            v.as_str().expect("env values are strings").into(),
                        )
                    })
                    .collect()
            })
            .unwrap_or_default()
    };
    let exported = strings(&plan["exported_env"]);
    let mut failed = Vec::new();
    let phases = plan["phases"].as_array().expect("phases");
    for step in phases
        .iter()
        .flat_map(|p| p["steps"].as_array().expect("steps"))
    {
        let action = &step["action"];
        if !matches!(action["kind"].as_str(), Some("run" | "kubectl")) {
            continue;
        }
        let argv: Vec<&str> = action["argv"]
            .as_array()
            .expect("argv")
            .iter()
            .map(|a| a.as_str().expect("argv elements are strings"))
            .collect();
        let mut cmd = Command::new(argv[0]);
        cmd.args(&argv[1..]);
        for (k, _) in std::env::vars() {
            if k.starts_with("ROLLOUT_") {
                cmd.env_remove(k);
            }
        }
        cmd.envs(exported.iter().cloned())
            .envs(strings(&action["env"]))
            .envs(step_env.iter().cloned());
        cmd.current_dir(
            action["workdir"]
                .as_str()
                .map_or(dir.to_path_buf(), PathBuf::from),
        );
        cmd.stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped());
        let child = cmd
            .spawn()
            .unwrap_or_else(|e| panic!("cannot spawn {argv:?}: {e}"));
        let output = wait_bounded(child, Duration::from_secs(20));
        if !output.status.success() {
            failed.push(format!(
                "step `{}` exited with {:?}: {}",
                step["id"].as_str().unwrap_or("?"),
                output.status.code(),
                String::from_utf8_lossy(&output.stderr).trim_end()
            ));
        }
    }
    failed
}

// ---------------------------------------------------------------------------------------------
// The corpus and what each value must lead to.

fn corpus() -> Vec<String> {
    let path = repo().join("tests/data/hostile-values.json");
    let text = std::fs::read_to_string(&path).expect("read the hostile value corpus");
    serde_json::from_str(&text).expect("the corpus is a JSON array of strings")
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Expect {
    /// Both steps run and receive exactly the value's bytes.
    Exact,
    /// Refused: it would begin a word (and an argv element) with `-`.
    RefusedDash,
    /// Refused: a NUL byte cannot be passed to any process.
    RefusedNul,
}

/// A negative decimal number, the one `-` value allowed to begin a word.
fn is_negative_number(v: &str) -> bool {
    v.strip_prefix('-').is_some_and(|rest| {
        rest.bytes().any(|b| b.is_ascii_digit())
            && rest.bytes().all(|b| b.is_ascii_digit() || b == b'.')
            && rest.bytes().filter(|&b| b == b'.').count() <= 1
    })
}

fn expectation(value: &str) -> Expect {
    if value.contains('\0') {
        Expect::RefusedNul
    } else if value.starts_with('-') && !is_negative_number(value) {
        Expect::RefusedDash
    } else {
        Expect::Exact
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Via {
    Flag,
    File,
}

/// A TOML basic string holding exactly `s` (control characters as `\uXXXX`).
fn toml_string(s: &str) -> String {
    let mut out = String::from("\"");
    for c in s.chars() {
        match c {
            '"' => out.push_str("\\\""),
            '\\' => out.push_str("\\\\"),
            c if c.is_control() => {
                let _ = write!(out, "\\u{:04X}", c as u32);
            }
            c => out.push(c),
        }
    }
    out.push('"');
    out
}

fn show(value: &str) -> String {
    let shown = format!("{value:?}");
    if shown.len() > 80 {
        let cut = (0..=70)
            .rev()
            .find(|&i| shown.is_char_boundary(i))
            .unwrap_or(0);
        format!("{}...\" ({} bytes)", &shown[..cut], value.len())
    } else {
        shown
    }
}

/// The files a case directory may hold afterwards; anything else was created by an injection.
fn expected_files(via: Via, expect: Expect) -> BTreeSet<String> {
    let mut files: BTreeSet<String> = [RUNBOOK, STUB].iter().map(ToString::to_string).collect();
    if via == Via::File {
        files.insert(VARS_FILE.into());
    }
    if expect == Expect::Exact {
        files.insert(OUT.into());
        files.insert(GLUED.into());
        files.insert(ARGV.into());
    }
    files
}

/// Runs one corpus value through one input route; returns what went wrong, if anything.
fn check_value(template_value: &str, via: Via) -> Vec<String> {
    let test = Test::new()
        .runbook(HOSTILE_RUNBOOK)
        .file(STUB, KUBECTL_STUB);
    let dir = test.path().to_path_buf();
    let stub = dir.join(STUB);
    make_executable(&stub);
    let canary = dir.join(CANARY);
    let value = template_value.replace(CANARY, &canary.to_string_lossy());
    let expect = expectation(&value);
    let path = |name: &str| dir.join(name).to_string_lossy().into_owned();
    let assignments = [
        ("v", value.clone()),
        ("out", path(OUT)),
        ("glued", path(GLUED)),
    ];
    let (test, vars) = match via {
        Via::Flag => (
            test,
            assignments
                .iter()
                .flat_map(|(k, v)| ["--var".to_string(), format!("{k}={v}")])
                .collect(),
        ),
        Via::File => {
            let mut toml = String::new();
            for (k, v) in &assignments {
                let _ = writeln!(toml, "{k} = {}", toml_string(v));
            }
            (
                test.file(VARS_FILE, toml),
                vec!["--vars-file".to_string(), VARS_FILE.into()],
            )
        }
    };
    let test = test.env("KUBECTL", &stub.to_string_lossy());
    let step_env = [(
        "ARGV_FILE".to_string(),
        dir.join(ARGV).to_string_lossy().into_owned(),
    )];

    let run = EXECUTE(test, &vars, &step_env);
    let out = &run.outcome;
    let mut problems = Vec::new();
    match expect {
        Expect::Exact => {
            if out.status != 0 {
                problems.push(format!(
                    "refused (exit {}): {}",
                    out.status,
                    out.stderr.trim_end()
                ));
            }
            problems.extend(run.failed_steps.iter().cloned());
            match std::fs::read(dir.join(OUT)) {
                Ok(bytes) if bytes == value.as_bytes() => {}
                Ok(bytes) => problems.push(format!(
                    "the shell step wrote {} instead of the value",
                    show(&String::from_utf8_lossy(&bytes))
                )),
                Err(e) => problems.push(format!("the shell step wrote nothing: {e}")),
            }
            let glued: Vec<u8> = [
                format!("pre{value}"),
                format!("{value}post"),
                value.clone(),
                value.clone(),
            ]
            .iter()
            .flat_map(|w| w.bytes().chain([0]))
            .collect();
            match std::fs::read(dir.join(GLUED)) {
                Ok(bytes) if bytes == glued => {}
                Ok(bytes) => problems.push(format!(
                    "the glued shell step wrote {}",
                    show(&String::from_utf8_lossy(&bytes))
                )),
                Err(e) => problems.push(format!("the glued shell step wrote nothing: {e}")),
            }
            let expected: Vec<Vec<u8>> = ["annotate", "pod/x", &format!("note={value}"), &value]
                .iter()
                .map(|a| a.as_bytes().to_vec())
                .collect();
            match std::fs::read(dir.join(ARGV)) {
                Ok(bytes) => {
                    let received: Vec<Vec<u8>> = bytes
                        .split(|&b| b == 0)
                        .map(<[u8]>::to_vec)
                        .collect::<Vec<_>>()
                        .split_last()
                        .map(|(_, args)| args.to_vec())
                        .unwrap_or_default();
                    if received != expected || bytes.last() != Some(&0) {
                        let shown: Vec<String> = received
                            .iter()
                            .map(|a| show(&String::from_utf8_lossy(a)))
                            .collect();
                        problems.push(format!("kubectl received argv [{}]", shown.join(", ")));
                    }
                }
                Err(e) => problems.push(format!("kubectl was not run: {e}")),
            }
        }
        Expect::RefusedDash | Expect::RefusedNul => {
            let needle = if expect == Expect::RefusedDash {
                "starts with `-`"
            } else {
                "NUL byte"
            };
            if out.status != 2 {
                problems.push(format!("exit {} instead of 2 (refusal)", out.status));
            }
            if !out.stderr.contains(needle) {
                problems.push(format!(
                    "stderr lacks {needle:?}: {}",
                    out.stderr.trim_end()
                ));
            }
            if !out.stdout.is_empty() {
                problems.push("printed a plan although the value is refused".into());
            }
        }
    }
    if canary.exists() {
        problems.push("INJECTION: the canary file was created".into());
    }
    let present: BTreeSet<String> = std::fs::read_dir(&dir)
        .expect("read case dir")
        .map(|e| {
            e.expect("dir entry")
                .file_name()
                .to_string_lossy()
                .into_owned()
        })
        .collect();
    let allowed = expected_files(via, expect);
    let unexpected: Vec<&String> = present.difference(&allowed).collect();
    if !unexpected.is_empty() {
        problems.push(format!("unexpected files appeared: {unexpected:?}"));
    }
    problems
        .into_iter()
        .map(|p| format!("{} via {via:?} ({expect:?}): {p}", show(template_value)))
        .collect()
}

#[cfg(unix)]
fn make_executable(path: &Path) {
    use std::os::unix::fs::PermissionsExt;
    std::fs::set_permissions(path, std::fs::Permissions::from_mode(0o755)).unwrap();
}

// ---------------------------------------------------------------------------------------------
// Tests.

#[test]
fn corpus_is_broad_enough() {
    let values = corpus();
    assert!(values.len() >= 60, "only {} hostile values", values.len());
    let unique: BTreeSet<&String> = values.iter().collect();
    assert_eq!(unique.len(), values.len(), "the corpus has duplicates");
    for (what, pred) in [
        (
            "a NUL value",
            &(|v: &String| v.contains('\0')) as &dyn Fn(&String) -> bool,
        ),
        ("a leading `-` value", &|v: &String| {
            expectation(v) == Expect::RefusedDash
        }),
        ("a negative number", &|v: &String| is_negative_number(v)),
        ("the empty string", &|v: &String| v.is_empty()),
        ("a 10 KB value", &|v: &String| v.len() >= 10 * 1024),
        ("a CANARY command", &|v: &String| v.contains("touch CANARY")),
        ("a newline", &|v: &String| v.contains('\n')),
        ("a CRLF", &|v: &String| v.contains("\r\n")),
        ("an ANSI escape", &|v: &String| v.contains('\u{1b}')),
        ("tera syntax", &|v: &String| {
            v.contains("{{") && v.contains("{%")
        }),
    ] {
        assert!(values.iter().any(pred), "the corpus lacks {what}");
    }
}

#[test]
fn hostile_values_reach_commands_as_exact_bytes_or_are_refused() {
    let mut cases: Vec<(String, Via)> = Vec::new();
    for v in corpus() {
        if !v.contains('\0') {
            cases.push((v.clone(), Via::Flag));
        }
        cases.push((v, Via::File));
    }
    let workers = std::thread::available_parallelism().map_or(2, |n| n.get() * 2);
    let next = std::sync::atomic::AtomicUsize::new(0);
    let problems: Vec<String> = std::thread::scope(|s| {
        let handles: Vec<_> = (0..workers)
            .map(|_| {
                s.spawn(|| {
                    let mut found = Vec::new();
                    loop {
                        let i = next.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
                        let Some((value, via)) = cases.get(i) else {
                            return found;
                        };
                        found.extend(check_value(value, *via));
                    }
                })
            })
            .collect();
        handles
            .into_iter()
            .flat_map(|h| h.join().expect("a case panicked"))
            .collect()
    });
    assert!(
        problems.is_empty(),
        "{} problem(s) with hostile values:\n{}",
        problems.len(),
        problems.join("\n")
    );
}

/// The same value through both routes renders identically (only the origin differs).
#[test]
fn flag_and_vars_file_render_the_same_steps() {
    let value = "it's $(touch x) \"q\" \\ *\n\tend";
    let plan = |via: Via| {
        let t = Test::new()
            .runbook(HOSTILE_RUNBOOK)
            .env("KUBECTL", "/bin/true");
        let t = match via {
            Via::Flag => t
                .args(["plan", RUNBOOK, "--format", "json", "--var"])
                .args([format!("v={value}")]),
            Via::File => t
                .file(VARS_FILE, format!("v = {}\n", toml_string(value)))
                .args([
                    "plan",
                    RUNBOOK,
                    "--format",
                    "json",
                    "--vars-file",
                    VARS_FILE,
                ]),
        };
        let json = t.status(0).json();
        (json["phases"].clone(), json["exported_env"].clone())
    };
    let (flag_phases, flag_env) = plan(Via::Flag);
    let (file_phases, file_env) = plan(Via::File);
    assert_eq!(flag_env["ROLLOUT_VAR_V"], value);
    assert_eq!(flag_env, file_env);
    // The workdir is the (different) temp dir of each test.
    let strip = |mut p: Value| {
        for step in p[0]["steps"].as_array_mut().expect("steps") {
            step["action"]["workdir"] = Value::Null;
        }
        p
    };
    assert_eq!(strip(flag_phases), strip(file_phases));
}

fn one_step(run: &str) -> String {
    format!(
        "[runbook]\nname = \"t\"\n\n[vars]\nv = \"x\"\nn = 1\n\n[[phases]]\nid = \"p\"\ntitle = \"P\"\n\n[[phases.steps]]\nrun = {}\n",
        toml_string(run)
    )
}

#[test]
fn validate_refuses_interpolation_inside_quotes() {
    Test::new()
        .runbook(&one_step("echo '{{ v }}'"))
        .args(["validate", RUNBOOK])
        .status(3)
        .stderr_has("interpolation inside single quotes");
    for (run, context) in [
        ("echo \"{{ v }}\"", "double quotes"),
        ("echo `{{ v }}`", "backticks"),
        ("echo $'{{ v }}'", "single quotes"),
        ("echo hi # {{ v }}", "a comment"),
        ("cat <<EOF\n{{ v }}\nEOF", "a heredoc"),
    ] {
        Test::new()
            .runbook(&one_step(run))
            .args(["validate", RUNBOOK])
            .status(3)
            .stderr_has(&format!("interpolation inside {context}"));
    }
}

#[test]
fn validate_refuses_the_safe_filter() {
    Test::new()
        .runbook(&one_step("echo {{ v | safe }}"))
        .args(["validate", RUNBOOK])
        .status(3)
        .stderr_has("`safe` filter is not allowed");
}

/// Template text that would let a value out of its quotes, or make the shell evaluate it, is
/// refused by `validate`: each of these runs the payload when rendered naively.
#[test]
fn validate_refuses_templates_that_defeat_quoting() {
    for (run, message) in [
        // `$'...'` (ANSI-C quoting) turns a value's `\'` into a quote character and ends it.
        ("echo ${{ v }}", "right after `$`"),
        // `$HOME{{ v }}` with v = "_x" reads the variable `$HOME_x`.
        ("echo $HOME{{ v }}", "right after `$`"),
        // `\'...'` escapes rollout's opening quote, so the value is parsed as shell code.
        ("echo \\{{ v }}", "right after a backslash"),
        // Arithmetic removes quotes and evaluates `a[$(cmd)]`, running `cmd`.
        ("sleep $(( {{ v }} * 60 ))", "inside arithmetic"),
        ("(( {{ v }} > 3 )) && echo big", "inside arithmetic"),
        ("echo $[ {{ v }} + 1 ]", "inside arithmetic"),
        ("[[ {{ v }} -gt 3 ]] && echo big", "inside arithmetic"),
    ] {
        Test::new()
            .runbook(&one_step(run))
            .args(["validate", RUNBOOK])
            .status(3)
            .stderr_has(&format!("interpolation {message} in a shell command"));
    }
    for fine in [
        "echo ${HOME}{{ v }} $1{{ v }} \\\\{{ v }}",
        "[[ {{ v }} == x* ]] && echo $(( 1 + 2 )) {{ v }}",
        "sleep $(( ROLLOUT_VAR_N * 60 ))",
    ] {
        Test::new()
            .runbook(&one_step(fine))
            .args(["validate", RUNBOOK])
            .status(0);
    }
}

/// An empty value renders as `''`, which adds nothing to the word after it.
#[test]
fn empty_quotes_do_not_hide_a_leading_dash() {
    let runbook = one_step("rm {{ e }}{{ v }} ''{{ v }}").replace("n = 1", "n = 1\ne = \"\"");
    Test::new()
        .runbook(&runbook)
        .args(["plan", RUNBOOK, "--var", "v=-rf"])
        .status(2)
        .stderr_has("starts with `-`");
}
