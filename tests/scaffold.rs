//! `rollout new`: every template writes a runbook that validates and plans; values are checked
//! and quoted so they cannot break the file; nothing is overwritten without `--force`; without
//! a terminal, missing values are a usage error naming the flag; in a terminal, it asks.

use crate::gates::Tty;
use crate::harness::Test;

const TEMPLATES: [&str; 4] = ["canary", "blue-green", "rolling", "basic"];

fn new_args(template: &str) -> Vec<String> {
    [
        "new",
        "runbook.toml",
        "--template",
        template,
        "--service",
        "payments",
        "--namespace",
        "prod",
        "--image",
        "registry.example.com/payments:1.4.2",
    ]
    .map(String::from)
    .to_vec()
}

#[test]
fn every_template_writes_a_runbook_that_validates_and_plans() {
    for template in TEMPLATES {
        for extra in [
            &[][..],
            &["--context", "prod-eu", "--prometheus", "http://prom:9090"][..],
        ] {
            let out = Test::new()
                .args(new_args(template))
                .args(extra.iter().copied())
                .status(0);
            out.stderr_has("wrote `runbook.toml`");
            let text = std::fs::read_to_string(out.dir.join("runbook.toml")).unwrap();
            assert!(text.contains("service = \"payments\""), "{text}");
            for verb in ["validate", "plan"] {
                let check = Test::in_dir(&out.dir).args([verb, "runbook.toml"]).run();
                assert_eq!(
                    check.status, 0,
                    "`{verb}` of the {template} template ({extra:?}):\n{}\n{text}",
                    check.stderr
                );
            }
            let plan = Test::in_dir(&out.dir)
                .args(["plan", "runbook.toml"])
                .status(0);
            assert!(plan.stdout.contains("registry.example.com/payments:1.4.2"));
            // Every placeholder is somewhere the runbook renders (not a phase title or a name).
            assert!(!plan.stdout.contains("{{"), "{template}:\n{}", plan.stdout);
            if !extra.is_empty() {
                assert!(plan.stdout.contains("prod-eu"), "{}", plan.stdout);
            }
        }
    }
}

#[test]
fn templates_follow_their_rollout_strategy() {
    let text = |template| {
        let out = Test::new().args(new_args(template)).status(0);
        std::fs::read_to_string(out.dir.join("runbook.toml")).unwrap()
    };
    let canary = text("canary");
    for needle in [
        "virtualservice/",
        "\"value\": 25 }",
        "[[abort_when]]",
        "from = \"weight-5\"",
        "condition = \"< {{ max_error_ratio }}\"",
        "[[rollback]]",
    ] {
        assert!(canary.contains(needle), "canary lacks {needle}");
    }
    let blue_green = text("blue-green");
    assert!(
        blue_green
            .contains("\"selector\": { \"app\": \"{{ service }}\", \"slot\": \"{{ new_slot }}\"")
    );
    let rolling = text("rolling");
    assert!(rolling.contains("kubectl = [\"rollout\", \"status\""));
    for (name, t) in [
        ("canary", &canary),
        ("blue-green", &blue_green),
        ("rolling", &rolling),
        ("basic", &text("basic")),
    ] {
        assert!(
            t.contains("[[phases.rollback]]"),
            "{name} has no rollback steps"
        );
    }
}

#[test]
fn existing_files_are_kept_unless_forced() {
    let out = Test::new()
        .file("runbook.toml", "keep me")
        .args(new_args("basic"))
        .status(2);
    out.stderr_has("`runbook.toml` already exists; give `--force` to overwrite it");
    assert_eq!(
        std::fs::read_to_string(out.dir.join("runbook.toml")).unwrap(),
        "keep me"
    );
    Test::in_dir(&out.dir)
        .args(new_args("basic"))
        .args(["--force"])
        .status(0);
    Test::in_dir(&out.dir)
        .args(["validate", "runbook.toml"])
        .status(0);
}

#[test]
fn missing_values_without_a_terminal_name_the_flags() {
    let out = Test::new()
        .args([
            "new",
            "runbook.toml",
            "--template",
            "canary",
            "--service",
            "web",
        ])
        .status(2);
    out.stderr_has("needs `--namespace`, `--image`");
    assert!(!out.dir.join("runbook.toml").exists());
    // CI and --no-input never prompt either, even with a terminal (covered by `can_prompt`).
    let out = Test::new()
        .env("CI", "true")
        .args(["new", "runbook.toml", "--no-input"])
        .status(2);
    out.stderr_has("needs `--service`, `--namespace`, `--image`");
}

#[test]
fn values_cannot_break_the_runbook() {
    let out = Test::new()
        .args([
            "new",
            "runbook.toml",
            "--service",
            "pay\"ments",
            "--namespace",
            "prod",
            "--image",
            "x",
        ])
        .status(2);
    out.stderr_has("invalid value for `--service`");
    let out = Test::new()
        .args([
            "new",
            "runbook.toml",
            "--service",
            "web",
            "--namespace",
            "prod",
        ])
        .args(["--image", "web:1 {{ run.id }}"])
        .status(2);
    out.stderr_has("invalid value for `--image`");
    let out = Test::new()
        .args([
            "new",
            "runbook.toml",
            "--service",
            "web",
            "--namespace",
            "prod",
            "--image",
            "web:1",
        ])
        .args(["--prometheus", "prom:9090"])
        .status(2);
    out.stderr_has("invalid value for `--prometheus`: it must start with http:// or https://");

    // Free text is quoted exactly: quotes, backslashes, template braces and TOML syntax.
    let owner = "Team \"Payments\" \\ {{ x }} ''' ] # [[phases]]";
    let out = Test::new()
        .args(new_args("basic"))
        .args(["--owner", owner])
        .status(0);
    let text = std::fs::read_to_string(out.dir.join("runbook.toml")).unwrap();
    let doc: toml::Table = toml::from_str(&text).unwrap();
    assert_eq!(doc["runbook"]["owner"].as_str(), Some(owner));
    Test::in_dir(&out.dir)
        .args(["validate", "runbook.toml"])
        .status(0);
}

#[test]
fn prometheus_comes_from_the_user_config_when_not_given() {
    let out = Test::new()
        .file(
            ".config/rollout/config.toml",
            "prometheus_url = \"http://from-config:9090\"\n",
        )
        .args(new_args("canary"))
        .status(0);
    let text = std::fs::read_to_string(out.dir.join("runbook.toml")).unwrap();
    assert!(
        text.contains("prometheus_url = \"http://from-config:9090\""),
        "{text}"
    );
}

#[test]
fn asks_in_a_terminal() {
    let test = Test::new().args([
        "new",
        "runbook.toml",
        "--template",
        "rolling",
        "--service",
        "web",
    ]);
    let dir = test.path().to_path_buf();
    let mut tty = Tty::run(&test);
    tty.shows("Kubernetes namespace").line("Bad_Namespace");
    tty.shows("Kubernetes name").line("shop");
    tty.shows("Image to roll out")
        .line("registry.example.com/web:3");
    tty.shows("kubectl context").line("");
    // Only the canary template measures metrics, so only it asks for a Prometheus.
    tty.shows("Owner").line("Team Web");
    tty.shows("wrote `runbook.toml`").finishes_with(0);
    let written = std::fs::read_to_string(dir.join("runbook.toml")).unwrap();
    assert!(written.contains("namespace = \"shop\""), "{written}");
    assert!(written.contains("owner = \"Team Web\""), "{written}");
    assert!(!written.contains("kube_context"), "{written}");
    Test::in_dir(&dir).args(["plan", "runbook.toml"]).status(0);
}

/// What each template writes, so that a change to a template shows up in review.
#[test]
fn template_output() {
    for template in TEMPLATES {
        let out = Test::new()
            .args(new_args(template))
            .args(["--context", "prod-eu", "--owner", "payments-team"])
            .status(0);
        let text = std::fs::read_to_string(out.dir.join("runbook.toml")).unwrap();
        insta::assert_snapshot!(format!("template_output_{template}"), text);
    }
}
