//! The user config (`$XDG_CONFIG_HOME/rollout/config.toml`, else `~/.config/rollout/config.toml`,
//! or `ROLLOUT_CONFIG`): where it is found, what it sets, what wins over it, and how a broken
//! one is reported. HOME is each test's temp dir.

use crate::harness::Test;

const RUNBOOK: &str = r#"[runbook]
name = "cfg"

[[phases]]
id = "p"
title = "P"

[[phases.steps]]
id = "who"
run = "echo {{ run.operator }}"

[[phases.steps]]
id = "errors"
metric = "up"
condition = "> 0"
"#;

const HOME_CONFIG: &str = ".config/rollout/config.toml";

/// (the operator as rendered into the command, the Prometheus URL of the metric step)
fn planned(test: Test) -> (String, serde_json::Value) {
    let plan = test
        .runbook(RUNBOOK)
        .args(["plan", "runbook.toml", "--format", "json"])
        .status(0)
        .json();
    let steps = &plan["phases"][0]["steps"];
    (
        steps[0]["action"]["command"].as_str().unwrap().to_string(),
        steps[1]["action"]["prometheus"].clone(),
    )
}

#[test]
fn operator_and_prometheus_come_from_the_home_config() {
    let (command, prometheus) = planned(Test::new().file(
        HOME_CONFIG,
        "operator = \"Ada Lovelace\"\nprometheus_url = \"http://prom.home:9090\"\n",
    ));
    assert_eq!(command, "echo 'Ada Lovelace'");
    assert_eq!(prometheus, "http://prom.home:9090");
}

#[test]
fn xdg_config_home_and_rollout_config_choose_the_file() {
    let test = Test::new()
        .file(HOME_CONFIG, "operator = \"home\"\n")
        .file("xdg/rollout/config.toml", "operator = \"xdg\"\n")
        .file("elsewhere.toml", "operator = \"explicit\"\n");
    let root = test.path().to_path_buf();
    let xdg = root.join("xdg");
    let (command, _) = planned(Test::in_dir(&root).env("XDG_CONFIG_HOME", xdg.to_str().unwrap()));
    assert_eq!(command, "echo xdg");
    let (command, _) = planned(
        Test::in_dir(&root)
            .env("XDG_CONFIG_HOME", xdg.to_str().unwrap())
            .env(
                "ROLLOUT_CONFIG",
                root.join("elsewhere.toml").to_str().unwrap(),
            ),
    );
    assert_eq!(command, "echo explicit");
    let (command, _) = planned(Test::in_dir(&root));
    assert_eq!(command, "echo home");
    drop(test);
}

#[test]
fn flags_and_environment_win_over_the_config() {
    let config = "operator = \"from-config\"\nprometheus_url = \"http://config:9090\"\n";
    let (command, prometheus) = planned(
        Test::new()
            .file(HOME_CONFIG, config)
            .env("ROLLOUT_OPERATOR", "from-env")
            .env("ROLLOUT_PROMETHEUS_URL", "http://env:9090"),
    );
    assert_eq!(command, "echo from-env");
    assert_eq!(prometheus, "http://env:9090");
    let (_, prometheus) = planned(
        Test::new()
            .file(HOME_CONFIG, config)
            .env("ROLLOUT_PROMETHEUS_URL", "http://env:9090")
            .args(["--prometheus-url", "http://flag:9090"]),
    );
    assert_eq!(prometheus, "http://flag:9090");
}

#[test]
fn a_prometheus_named_by_the_runbook_wins() {
    let runbook = RUNBOOK.replace(
        "[[phases]]",
        "[defaults]\nprometheus = \"http://runbook:9090\"\n\n[[phases]]",
    );
    let plan = Test::new()
        .file(HOME_CONFIG, "prometheus_url = \"http://config:9090\"\n")
        .runbook(&runbook)
        .args(["plan", "runbook.toml", "--format", "json"])
        .args(["--prometheus-url", "http://flag:9090"])
        .status(0)
        .json();
    assert_eq!(
        plan["phases"][0]["steps"][1]["action"]["prometheus"],
        "http://runbook:9090"
    );
}

#[test]
fn no_config_means_no_fallback() {
    let (_, prometheus) = planned(Test::new());
    assert!(prometheus.is_null(), "{prometheus}");
}

#[test]
fn colour_follows_flag_then_no_color_then_config() {
    let broken = "[runbook]\nname = \"x\"\n";
    let coloured = |t: Test| {
        let out = t
            .runbook(broken)
            .args(["validate", "runbook.toml"])
            .status(3);
        out.stderr.contains('\x1b')
    };
    let always = "color = \"always\"\n";
    assert!(!coloured(Test::new()), "stderr is not a terminal");
    assert!(coloured(Test::new().file(HOME_CONFIG, always)));
    assert!(!coloured(
        Test::new().file(HOME_CONFIG, always).env("NO_COLOR", "1")
    ));
    assert!(!coloured(
        Test::new()
            .file(HOME_CONFIG, always)
            .args(["--color", "never"])
    ));
    assert!(coloured(
        Test::new().env("NO_COLOR", "1").args(["--color", "always"])
    ));
    assert!(coloured(Test::new().env("ROLLOUT_COLOR", "always")));
}

#[test]
fn unknown_keys_and_bad_values_are_located() {
    let out = Test::new()
        .file(
            HOME_CONFIG,
            "operator = \"ada\"\nprometheus = \"http://x\"\ncolor = \"sometimes\"\n",
        )
        .runbook(RUNBOOK)
        .args(["plan", "runbook.toml"])
        .status(2);
    out.stderr_has("unknown key `prometheus` in the user config")
        .stderr_has(".config/rollout/config.toml:2:1")
        .stderr_has("did you mean `prometheus_url`?")
        .stderr_has("`sometimes` is not a valid `color`")
        .stderr_has(":3:9")
        .stderr_has("has 2 problems");
    assert!(out.stdout.is_empty());
    let home = out.dir.display().to_string();
    insta::assert_snapshot!(out.stderr.replace(&home, "~"));
}

#[test]
fn a_config_named_by_rollout_config_must_exist() {
    Test::new()
        .env("ROLLOUT_CONFIG", "/nonexistent/rollout.toml")
        .runbook(RUNBOOK)
        .args(["validate", "runbook.toml"])
        .status(2)
        .stderr_has("cannot read the user config `/nonexistent/rollout.toml`");
}

#[test]
fn an_empty_config_is_fine() {
    Test::new()
        .file(HOME_CONFIG, "\n# nothing yet\n")
        .runbook(RUNBOOK)
        .args(["validate", "runbook.toml"])
        .status(0);
}
