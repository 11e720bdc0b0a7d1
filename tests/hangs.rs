//! Nothing a runbook, a file it names or a value can hold makes rollout hang or work without
//! end: files that are not regular files are refused before they are opened (a FIFO would wait
//! for a writer forever), and rendering a template is bounded in loop items and text.

use std::path::Path;
use std::process::Command;
use std::time::Duration;

use crate::harness::{MINIMAL, RUNBOOK, Test, trace};

/// Longer than any refusal takes on a loaded machine, far shorter than a hang.
const PROMPTLY: Duration = Duration::from_secs(20);

fn mkfifo(path: &Path) {
    let status = Command::new("mkfifo").arg(path).status().expect("mkfifo");
    assert!(status.success(), "mkfifo {}", path.display());
}

#[test]
fn a_fifo_as_the_runbook_is_refused_before_it_is_opened() {
    for command in ["validate", "plan", "run"] {
        let test = Test::new();
        mkfifo(&test.path().join("f.toml"));
        let out = test.args([command, "f.toml"]).within(PROMPTLY).status(4);
        out.stderr_has("cannot read `f.toml`: it is a FIFO (named pipe), not a regular file");
        assert!(out.stdout.is_empty(), "{}", out.stdout);
    }
}

#[test]
fn a_device_or_socket_as_the_runbook_is_refused() {
    let out = Test::new()
        .args(["validate", "/dev/zero"])
        .within(PROMPTLY)
        .status(4);
    out.stderr_has("it is a character device, not a regular file");
    let test = Test::new();
    let socket = std::os::unix::net::UnixListener::bind(test.path().join("s.toml")).unwrap();
    let out = test.args(["plan", "s.toml"]).within(PROMPTLY).status(4);
    out.stderr_has("it is a socket, not a regular file");
    drop(socket);
}

#[test]
fn a_fifo_as_a_vars_file_or_the_user_config_is_refused() {
    let test = Test::new().runbook(MINIMAL);
    mkfifo(&test.path().join("vars.toml"));
    let out = test
        .args(["plan", RUNBOOK, "--vars-file", "vars.toml"])
        .within(PROMPTLY)
        .status(2);
    out.stderr_has(
        "cannot read vars file `vars.toml`: it is a FIFO (named pipe), not a regular file",
    )
    .stderr_has("give them with `--var`");

    let test = Test::new().runbook(MINIMAL);
    mkfifo(&test.path().join("config.toml"));
    let config = test.path().join("config.toml").display().to_string();
    let out = test
        .env("ROLLOUT_CONFIG", &config)
        .args(["plan", RUNBOOK])
        .within(PROMPTLY)
        .status(2);
    out.stderr_has("cannot read the user config")
        .stderr_has("it is a FIFO (named pipe), not a regular file");
}

#[test]
fn a_fifo_as_the_ca_file_fails_the_check_instead_of_hanging() {
    let test = Test::new().runbook(
        r#"[runbook]
name = "ca"

[defaults]
prometheus = "http://127.0.0.1:9"

[defaults.prometheus_client]
ca_file = "ca.pem"

[[phases]]
id = "p"
title = "P"
on_failure = "abort"

[[phases.steps]]
id = "m"
metric = "up"
condition = "> 0"
"#,
    );
    mkfifo(&test.path().join("ca.pem"));
    let out = test.args(["run", RUNBOOK]).within(PROMPTLY).status(6);
    out.stderr_has("cannot read the CA file")
        .stderr_has("it is a FIFO (named pipe), not a regular file");
}

const SECRET_FROM_FILE: &str = r#"[runbook]
name = "secret-file"

[vars.token]
secret = { file = "token" }

[[phases]]
id = "p"
title = "P"

[[phases.steps]]
id = "use"
run = "echo token={{ token }} >> trace"
"#;

#[test]
fn a_secret_fifo_nobody_writes_is_given_up_on() {
    let test = Test::new().runbook(SECRET_FROM_FILE);
    mkfifo(&test.path().join("token"));
    let started = std::time::Instant::now();
    let out = test
        .args(["run", RUNBOOK])
        .within(Duration::from_secs(45))
        .run();
    assert_ne!(out.status, 0, "{}", out.stderr);
    out.stderr_has("nothing wrote it within 10s");
    assert!(started.elapsed() >= Duration::from_secs(10));
    assert!(
        trace(&out.dir).is_empty(),
        "a step ran: {:?}",
        trace(&out.dir)
    );
}

#[test]
fn a_secret_fifo_that_is_written_is_read() {
    let test = Test::new().runbook(SECRET_FROM_FILE);
    let fifo = test.path().join("token");
    mkfifo(&fifo);
    // As `sops exec-file` does: the writer waits for rollout to open the FIFO.
    let mut writer = Command::new("sh")
        .arg("-c")
        .arg("printf 'fifo-s3cret\\n' > token")
        .current_dir(test.path())
        .spawn()
        .unwrap();
    let out = test.args(["run", RUNBOOK]).within(PROMPTLY).run();
    let _ = writer.kill();
    let _ = writer.wait();
    assert_eq!(out.status, 0, "{}", out.stderr);
    assert_eq!(trace(&out.dir), ["token=fifo-s3cret"]);
    assert!(!out.stderr.contains("fifo-s3cret"));
}

#[test]
fn a_secret_file_that_is_a_device_is_refused() {
    let out = Test::new()
        .runbook(&SECRET_FROM_FILE.replace("file = \"token\"", "file = \"/dev/zero\""))
        .args(["run", RUNBOOK])
        .within(PROMPTLY)
        .run();
    assert_ne!(out.status, 0, "{}", out.stderr);
    out.stderr_has("it is a character device, not a regular file");
    assert!(trace(&out.dir).is_empty());
}

/// A runbook whose second step nests two loops over `range(end=n)`.
fn nested_loops(n_decl: &str) -> String {
    format!(
        r#"[runbook]
name = "loops"

{n_decl}

[[phases]]
id = "p"
title = "P"

[[phases.steps]]
id = "first"
run = "echo first >> trace"

[[phases.steps]]
id = "grid"
run = 'echo {{% for i in range(end=n) %}}{{% for j in range(end=n) %}}x{{% endfor %}}{{% endfor %}}'
"#
    )
}

#[test]
fn validate_rejects_nested_loops_that_multiply_past_the_limit() {
    let written = nested_loops("[vars]\nm = 1").replace("range(end=n)", "range(end=100000)");
    let out = Test::new()
        .runbook(&written)
        .args(["validate", RUNBOOK])
        .within(PROMPTLY)
        .status(3);
    out.stderr_has("the loops of this template go over 10,000,100,000 items, more than the 100,000 a template may loop over in all")
        .stderr_has("--> runbook.toml:17:45")
        .stderr_has("this loop runs 100,000 × 100,000 times");
    // An integer variable's default counts too.
    let out = Test::new()
        .runbook(&nested_loops("[vars]\nn = 100000"))
        .args(["validate", RUNBOOK])
        .within(PROMPTLY)
        .status(3);
    out.stderr_has("(counted with the default of `n`)");
    // Within the limit, both render as before.
    let out = Test::new()
        .runbook(&nested_loops("[vars]\nn = 3"))
        .args(["plan", RUNBOOK])
        .within(PROMPTLY)
        .status(0);
    out.stdout_has("echo xxxxxxxxx");
}

#[test]
fn plan_and_run_refuse_loops_a_value_multiplies_past_the_limit() {
    let runbook = nested_loops("[vars.n]\ntype = \"integer\"\nrequired = true");
    Test::new()
        .runbook(&runbook)
        .args(["validate", RUNBOOK])
        .status(0);
    for command in ["plan", "run"] {
        let out = Test::new()
            .runbook(&runbook)
            .args([command, RUNBOOK, "--var", "n=100000"])
            .within(PROMPTLY)
            .status(2);
        out.stderr_has("cannot render step `grid`: the loops of this template go over more than 100,000 items in all")
            .stderr_has("--> runbook.toml:18:52");
        assert!(trace(&out.dir).is_empty(), "{command} ran a step");
    }
}

#[test]
fn a_capture_that_multiplies_loops_fails_its_step_not_the_machine() {
    let out = Test::new()
        .runbook(
            r#"[runbook]
name = "captured"

[[phases]]
id = "p"
title = "P"
on_failure = "abort"

[[phases.steps]]
id = "count"
run = "seq 1000 | tr '\\n' ' '"
capture = "words"

[[phases.steps]]
id = "grid"
run = 'echo {% for a in words | split(pat=" ") %}{% for b in words | split(pat=" ") %}x{% endfor %}{% endfor %}'

[[phases.steps]]
id = "after"
run = "echo after >> trace"
"#,
        )
        .args(["run", RUNBOOK])
        .within(PROMPTLY)
        .status(5);
    out.stderr_has("step `grid` failed: cannot render the step (runbook.toml:16:50): the loops of this template go over more than 100,000 items in all");
    assert!(trace(&out.dir).is_empty());
}

#[test]
fn rendering_is_bounded_in_text_and_in_what_a_set_holds() {
    let doubling = format!(
        "{{% set s = \"xxxxxxxxxxxxxxxx\" %}}{}{{{{ s | length }}}}",
        "{% set s = s ~ s %}".repeat(40)
    );
    let runbook = format!(
        r#"[runbook]
name = "big"

[[phases]]
id = "p"
title = "P"

[[phases.steps]]
id = "doubling"
run = 'echo {doubling}'

[[phases.steps]]
id = "wide"
run = 'echo {{% for i in range(end=90000) %}}xxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxx{{% endfor %}}'

[[phases.steps]]
id = "block"
run = 'echo {{% set b %}}{{% for i in range(end=90000) %}}{{{{ "y" ~ i ~ "yyyyyyyyyyyyyyyy" }}}}{{% endfor %}}{{% endset %}}{{{{ b | length }}}}'
"#
    );
    let out = Test::new()
        .runbook(&runbook)
        .args(["plan", RUNBOOK])
        .within(PROMPTLY)
        .status(2);
    out.stderr_has("cannot render step `doubling`: `s` would hold more than 1 MiB of text")
        .stderr_has("cannot render step `wide`: this template renders more than 1 MiB of text")
        .stderr_has("cannot render step `block`: this template renders more than 1 MiB of text");
}

#[test]
fn list_comprehensions_are_refused() {
    let out = Test::new()
        .runbook(&MINIMAL.replace(
            "run = \"echo hello\"",
            "run = 'echo {{ [x for x in range(end=3)] | length }}'",
        ))
        .args(["validate", RUNBOOK])
        .status(3);
    out.stderr_has(
        "list comprehensions (`[x for x in list]`) are not allowed in runbook templates",
    )
    .stderr_has("use a `{% for %}` loop");
}

#[test]
fn loops_over_values_and_set_blocks_render_as_before() {
    let out = Test::new()
        .runbook(&MINIMAL.replace(
            "run = \"echo hello\"",
            "run = 'echo {% set csv %}a,b{% endset -%} {% for x in csv | split(pat=\",\") %}{{ x }}-{% for y in [1, 2] %}{{ y }}{% endfor %} {% endfor %}'",
        ))
        .args(["plan", RUNBOOK])
        .status(0);
    out.stdout_has("echo a-12 b-12");
}
