//! Hostile variable values must reach commands as exactly the bytes given, one word or one
//! argument each, and must never run anything.
//!
//! Every value of `tests/data/hostile-values.json` (with `CANARY` replaced by an absolute path
//! in the case's temp dir) goes, once through `--var` and once through `--vars-file`, through a
//! real `rollout run` (`--output json`, `CI=true`, its state in the case's temp dir) of a
//! runbook with, for each value, a shell step that writes the value to a file, a shell step that
//! glues it to other words, and a kubectl step whose binary is a stub recording its argv. The
//! bytes received are compared with the value. Values that would begin a word with `-` and
//! values with a NUL byte must be refused before anything runs.
//!
//! Values that must pass are run many to one runbook (one slot of three steps each, every step
//! `continue_on_error` so one failure hides nothing); each refused value gets a run of its own,
//! since a refusal stops the whole run.

use std::collections::BTreeSet;
use std::fmt::Write as _;
use std::path::Path;

use serde_json::Value;

use crate::harness::{Outcome, RUNBOOK, Test, repo};

/// Records its arguments, each followed by a NUL byte, in `$ARGV_FILE`.
const KUBECTL_STUB: &str =
    "#!/bin/sh\nfor a in \"$@\"; do printf '%s\\0' \"$a\"; done > \"$ARGV_FILE\"\n";

const STUB: &str = "kubectl-stub";
const VARS_FILE: &str = "vars.toml";
const STATE_DIR: &str = "state";
const CANARY: &str = "CANARY";
/// Values that must pass, per `rollout run`.
const BATCH: usize = 25;

/// A runbook with one slot of three steps for each of `slots` values: slot `i` reads the
/// variables `v_i` (the value), `out_i` and `glued_i` (where its shell steps write), and its
/// kubectl step writes its argv to `argv_file(i)`.
fn hostile_runbook(slots: usize, argv_file: impl Fn(usize) -> String) -> String {
    let mut rb = String::from("[runbook]\nname = \"hostile\"\n\n[vars]\nempty = \"\"\n");
    for i in 0..slots {
        let _ = writeln!(
            rb,
            "v_{i} = \"placeholder\"\nout_{i} = \"out\"\nglued_{i} = \"glued\""
        );
    }
    rb.push_str("\n[[phases]]\nid = \"only\"\ntitle = \"Only phase\"\n");
    for i in 0..slots {
        let _ = write!(
            rb,
            r#"
[[phases.steps]]
id = "shell-{i}"
run = "printf '%s' {{{{ v_{i} }}}} > {{{{ out_{i} }}}}"
continue_on_error = true

[[phases.steps]]
id = "glued-{i}"
run = "printf '%s\\0' pre{{{{ v_{i} }}}} {{{{ v_{i} }}}}post {{{{ empty }}}}{{{{ v_{i} }}}} \"$ROLLOUT_VAR_V_{i}\" > {{{{ glued_{i} }}}}"
continue_on_error = true

[[phases.steps]]
id = "kube-{i}"
kubectl = ["annotate", "pod/x", "note={{{{ v_{i} }}}}", "{{{{ v_{i} }}}}"]
env = {{ ARGV_FILE = {} }}
continue_on_error = true
"#,
            toml_string(&argv_file(i))
        );
    }
    rb
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

/// One corpus value in a run: slot `slot` of the run's runbook.
struct Case<'c> {
    /// The value as in the corpus (with `CANARY`), for messages.
    template: &'c str,
    /// The value given to rollout.
    value: String,
    expect: Expect,
    canary: std::path::PathBuf,
}

/// Runs `values` through one `rollout run` by one input route; returns what went wrong with
/// each, if anything. All of `values` must pass, or there must be just one.
fn check_run(values: &[&str], via: Via) -> Vec<String> {
    let test = Test::new().file(STUB, KUBECTL_STUB);
    let dir = test.path().to_path_buf();
    let stub = dir.join(STUB);
    make_executable(&stub);
    let path = |name: String| dir.join(name).to_string_lossy().into_owned();
    let cases: Vec<Case<'_>> = values
        .iter()
        .enumerate()
        .map(|(slot, template)| {
            let canary = dir.join(format!("canary-{slot}"));
            let value = template.replace(CANARY, &canary.to_string_lossy());
            Case {
                template,
                expect: expectation(&value),
                value,
                canary,
            }
        })
        .collect();
    assert!(
        cases.len() == 1 || cases.iter().all(|c| c.expect == Expect::Exact),
        "a refused value stops the whole run: it needs a run of its own"
    );
    let test = test.runbook(&hostile_runbook(cases.len(), |slot| {
        path(format!("argv-{slot}"))
    }));
    let mut assignments = vec![];
    for (slot, case) in cases.iter().enumerate() {
        assignments.push((format!("v_{slot}"), case.value.clone()));
        assignments.push((format!("out_{slot}"), path(format!("out-{slot}"))));
        assignments.push((format!("glued_{slot}"), path(format!("glued-{slot}"))));
    }
    let (test, vars): (Test, Vec<String>) = match via {
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
    let out = test
        .env("KUBECTL", &stub.to_string_lossy())
        .env("CI", "true")
        .args(["run", RUNBOOK, "--output", "json", "--state-dir", STATE_DIR])
        .args(vars)
        .run();

    let mut problems: Vec<Vec<String>> = cases.iter().map(|_| Vec::new()).collect();
    for event in out
        .stdout
        .lines()
        .filter_map(|l| serde_json::from_str::<Value>(l).ok())
    {
        if event["event"] != "step_finished" || event["status"] == "ok" {
            continue;
        }
        let id = event["step"].as_str().unwrap_or("?");
        let Some((kind, slot)) = id.rsplit_once('-') else {
            continue;
        };
        if let Some(list) = slot.parse::<usize>().ok().and_then(|s| problems.get_mut(s)) {
            list.push(format!(
                "step `{kind}` ended `{}` (exit {}): {}",
                event["status"].as_str().unwrap_or("?"),
                event["exit_code"],
                event["reason"].as_str().unwrap_or("")
            ));
        }
    }
    let mut allowed: BTreeSet<String> = [RUNBOOK, STUB].iter().map(ToString::to_string).collect();
    if via == Via::File {
        allowed.insert(VARS_FILE.into());
    }
    for (slot, case) in cases.iter().enumerate() {
        let problems = &mut problems[slot];
        match case.expect {
            Expect::Exact => {
                allowed.extend([
                    STATE_DIR.to_string(),
                    format!("out-{slot}"),
                    format!("glued-{slot}"),
                    format!("argv-{slot}"),
                ]);
                check_received(&out, &dir, slot, &case.value, problems);
            }
            Expect::RefusedDash | Expect::RefusedNul => {
                let needle = if case.expect == Expect::RefusedDash {
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
                    problems.push("started a run although the value is refused".into());
                }
            }
        }
        if case.canary.exists() {
            problems.push("INJECTION: the canary file was created".into());
        }
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
    let unexpected: Vec<&String> = present.difference(&allowed).collect();
    if !unexpected.is_empty() {
        // Not one value's doing for sure: every value of the run is named.
        for list in &mut problems {
            list.push(format!("unexpected files appeared: {unexpected:?}"));
        }
    }
    cases
        .iter()
        .zip(problems)
        .flat_map(|(case, list)| {
            list.into_iter().map(move |p| {
                format!(
                    "{} via {via:?} ({:?}): {p}",
                    show(case.template),
                    case.expect
                )
            })
        })
        .collect()
}

/// What the steps of `slot` received, compared with `value`.
fn check_received(out: &Outcome, dir: &Path, slot: usize, value: &str, problems: &mut Vec<String>) {
    if out.status != 0 {
        problems.push(format!(
            "refused (exit {}): {}",
            out.status,
            out.stderr.trim_end()
        ));
    }
    match std::fs::read(dir.join(format!("out-{slot}"))) {
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
        value.to_string(),
        value.to_string(),
    ]
    .iter()
    .flat_map(|w| w.bytes().chain([0]))
    .collect();
    match std::fs::read(dir.join(format!("glued-{slot}"))) {
        Ok(bytes) if bytes == glued => {}
        Ok(bytes) => problems.push(format!(
            "the glued shell step wrote {}",
            show(&String::from_utf8_lossy(&bytes))
        )),
        Err(e) => problems.push(format!("the glued shell step wrote nothing: {e}")),
    }
    let expected: Vec<Vec<u8>> = ["annotate", "pod/x", &format!("note={value}"), value]
        .iter()
        .map(|a| a.as_bytes().to_vec())
        .collect();
    match std::fs::read(dir.join(format!("argv-{slot}"))) {
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
    let values = corpus();
    let mut runs: Vec<(Vec<&str>, Via)> = Vec::new();
    for via in [Via::Flag, Via::File] {
        // A NUL byte cannot even be put in a command-line argument.
        let usable = values
            .iter()
            .filter(|v| via == Via::File || !v.contains('\0'));
        let (pass, refused): (Vec<&String>, Vec<&String>) =
            usable.partition(|v| expectation(v) == Expect::Exact);
        for batch in pass.chunks(BATCH) {
            runs.push((batch.iter().map(|v| v.as_str()).collect(), via));
        }
        runs.extend(refused.into_iter().map(|v| (vec![v.as_str()], via)));
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
                        let Some((values, via)) = runs.get(i) else {
                            return found;
                        };
                        found.extend(check_run(values, *via));
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
            .runbook(&hostile_runbook(1, |_| "argv".into()))
            .env("KUBECTL", "/bin/true");
        let t = match via {
            Via::Flag => t
                .args(["plan", RUNBOOK, "--format", "json", "--var"])
                .args([format!("v_0={value}")]),
            Via::File => t
                .file(VARS_FILE, format!("v_0 = {}\n", toml_string(value)))
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
    assert_eq!(flag_env["ROLLOUT_VAR_V_0"], value);
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
        .stderr_has("starts with `-`")
        // the caret is under the value's own tag, the first one to begin a word
        .stderr_has(":14:18\n")
        .stderr_has("\n   |                  ^^^^^^^ while rendering this");
}
