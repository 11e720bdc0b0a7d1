//! The JSON Schema (`rollout schema`, `docs/runbook.schema.json`) tells the truth about the
//! parser: for every table it describes, the keys it allows are exactly the keys the parser
//! accepts (read from the parser's own "unknown key ... expected one of" diagnostic), and every
//! shipped runbook and every `rollout new` template validates against it.

use std::collections::BTreeSet;

use crate::harness::{Test, repo};

fn schema() -> serde_json::Value {
    let out = Test::new().args(["schema"]).status(0);
    serde_json::from_str(&out.stdout).expect("the schema is JSON")
}

fn to_json(toml_text: &str) -> serde_json::Value {
    let value: toml::Value = toml::from_str(toml_text).expect("TOML");
    serde_json::to_value(value).expect("TOML as JSON")
}

fn schema_errors(schema: &serde_json::Value, toml_text: &str) -> Vec<String> {
    let validator = jsonschema::validator_for(schema).expect("a valid JSON Schema");
    validator
        .iter_errors(&to_json(toml_text))
        .map(|e| format!("{} at {}", e, e.instance_path()))
        .collect()
}

/// The keys the parser accepts in the table holding `zzprobe`, as listed by its diagnostic.
fn parser_keys(runbook: &str) -> BTreeSet<String> {
    let out = Test::new()
        .runbook(runbook)
        .args(["validate", "runbook.toml"])
        .run();
    let at = out
        .stderr
        .find("unknown key `zzprobe`")
        .unwrap_or_else(|| panic!("no unknown-key diagnostic:\n{}\n{runbook}", out.stderr));
    let rest = &out.stderr[at..];
    let Some(i) = rest.find("expected one of: ") else {
        panic!("the diagnostic lists no keys:\n{}", out.stderr);
    };
    let list = &rest[i + "expected one of: ".len()..];
    let line = list.lines().next().unwrap();
    line.split(", ")
        .map(|k| k.trim().trim_matches('`').to_string())
        .collect()
}

fn schema_keys(schema: &serde_json::Value, def: &str) -> BTreeSet<String> {
    let node = if def == "root" {
        schema
    } else {
        &schema["definitions"][def]
    };
    let mut keys = BTreeSet::new();
    let mut collect = |obj: &serde_json::Value| {
        if let Some(props) = obj["properties"].as_object() {
            keys.extend(props.keys().cloned());
        }
    };
    collect(node);
    for variant in node["oneOf"].as_array().into_iter().flatten() {
        collect(variant);
    }
    keys
}

/// A runbook with `zzprobe = 1` in one table: (where the probe goes, the extra text). A key the
/// parser reads only when it is present must be present in the probe, or it is not listed.
struct Probe {
    top: &'static str,
    meta: &'static str,
    tables: &'static str,
    phase: &'static str,
    step: &'static str,
}

const NO: Probe = Probe {
    top: "",
    meta: "",
    tables: "",
    phase: "",
    step: "run = \"true\"\n",
};

impl Probe {
    fn text(&self) -> String {
        format!(
            "{}[runbook]\nname = \"probe\"\n{}\n{}\n[[phases]]\nid = \"p\"\ntitle = \"P\"\n{}\n[[phases.steps]]\nid = \"s1\"\n{}",
            self.top, self.meta, self.tables, self.phase, self.step
        )
    }
}

fn probes() -> Vec<(&'static str, Probe)> {
    let step = |text: &'static str| Probe { step: text, ..NO };
    vec![
        (
            "root",
            // The parser reads `notify` only when it is there, so the probe has one.
            Probe {
                top: "zzprobe = 1\n",
                tables: "[[notify]]\nurl = \"http://127.0.0.1:9/\"\n",
                ..NO
            },
        ),
        (
            "Meta",
            Probe {
                meta: "zzprobe = 1\n",
                ..NO
            },
        ),
        (
            "Window",
            Probe {
                tables: "[runbook.window]\nstart = \"09:00\"\nend = \"17:00\"\ntime_zone = \"UTC\"\nzzprobe = 1\n",
                ..NO
            },
        ),
        (
            "Notify",
            Probe {
                tables: "[[notify]]\nurl = \"http://127.0.0.1:9/\"\nzzprobe = 1\n",
                ..NO
            },
        ),
        (
            "Defaults",
            Probe {
                tables: "[defaults]\nzzprobe = 1\n",
                ..NO
            },
        ),
        (
            "KubectlDefaults",
            Probe {
                tables: "[defaults.kubectl]\nzzprobe = 1\n",
                ..NO
            },
        ),
        (
            "PrometheusClient",
            Probe {
                tables: "[defaults.prometheus_client]\nzzprobe = 1\n",
                ..NO
            },
        ),
        (
            "BasicAuth",
            Probe {
                tables: "[defaults.prometheus_client.basic_auth]\nusername = \"u\"\npassword = \"p\"\nzzprobe = 1\n",
                ..NO
            },
        ),
        (
            "VarTable",
            Probe {
                tables: "[vars.v]\ndefault = \"x\"\nzzprobe = 1\n",
                ..NO
            },
        ),
        (
            "Secret",
            Probe {
                tables: "[vars.s]\nsecret = { env = \"X\", zzprobe = 1 }\n",
                ..NO
            },
        ),
        (
            "Phase",
            Probe {
                phase: "zzprobe = 1\n",
                ..NO
            },
        ),
        (
            "HeaderMatch",
            step(
                "http = \"http://127.0.0.1:9/\"\nexpect_headers = { X-A = { regex = \"a\", zzprobe = 1 } }\n",
            ),
        ),
        (
            "HttpCriterion",
            Probe {
                phase: "[[phases.abort_when]]\nhttp = \"http://127.0.0.1:9/\"\nzzprobe = 1\n",
                ..NO
            },
        ),
        (
            "CommandCriterion",
            Probe {
                tables: "[[abort_when]]\ncommand = \"true\"\nzzprobe = 1\n",
                ..NO
            },
        ),
        (
            "MetricCriterion",
            Probe {
                phase: "[[phases.abort_when]]\nmetric = \"up\"\ncondition = \"> 1\"\nzzprobe = 1\n",
                ..NO
            },
        ),
        (
            "Retry",
            step("run = \"true\"\nretry = { attempts = 2, zzprobe = 1 }\n"),
        ),
        (
            "ExpectJson",
            step(
                "http = \"http://127.0.0.1:9/\"\nexpect_json = { pointer = \"/a\", condition = \"> 1\", zzprobe = 1 }\n",
            ),
        ),
        (
            "Role",
            step("signoff = \"s\"\nroles = [{ role = \"r\", zzprobe = 1 }]\n"),
        ),
        ("RunStep", step("run = \"true\"\nzzprobe = 1\n")),
        (
            "KubectlStep",
            step("kubectl = [\"version\"]\nzzprobe = 1\n"),
        ),
        ("ConfirmStep", step("confirm = \"ok?\"\nzzprobe = 1\n")),
        ("ChecklistStep", step("checklist = [\"a\"]\nzzprobe = 1\n")),
        (
            "SignoffStep",
            step("signoff = \"s\"\nroles = [\"r\"]\nzzprobe = 1\n"),
        ),
        (
            "MetricStep",
            step("metric = \"up\"\ncondition = \"> 0\"\nzzprobe = 1\n"),
        ),
        (
            "HttpStep",
            step("http = \"http://127.0.0.1:9/\"\nzzprobe = 1\n"),
        ),
        ("WaitStep", step("wait = \"1s\"\nzzprobe = 1\n")),
        ("PauseStep", step("pause = \"p\"\nzzprobe = 1\n")),
        ("RepeatStep", step("repeat = \"s1\"\nzzprobe = 1\n")),
    ]
}

#[test]
fn schema_keys_are_the_keys_the_parser_accepts() {
    let schema = schema();
    let probes = probes();
    // Every closed table of the schema is probed, so a new one cannot go unchecked.
    let covered: BTreeSet<&str> = probes.iter().map(|(d, _)| *d).collect();
    for (name, def) in schema["definitions"].as_object().unwrap() {
        let closed = def["additionalProperties"] == false
            || def["oneOf"]
                .as_array()
                .is_some_and(|v| v.iter().all(|o| o["additionalProperties"] == false));
        if closed {
            assert!(covered.contains(name.as_str()), "no probe for `{name}`");
        }
    }
    let mismatches: Vec<String> = std::thread::scope(|s| {
        let checks: Vec<_> = probes
            .iter()
            .map(|(def, probe)| {
                let schema = &schema;
                s.spawn(move || {
                    let parser = parser_keys(&probe.text());
                    let described = schema_keys(schema, def);
                    (parser != described).then(|| {
                        format!(
                            "`{def}`: only the parser accepts {:?}; only the schema allows {:?}",
                            parser.difference(&described).collect::<Vec<_>>(),
                            described.difference(&parser).collect::<Vec<_>>()
                        )
                    })
                })
            })
            .collect();
        checks
            .into_iter()
            .filter_map(|c| c.join().expect("probe thread"))
            .collect()
    });
    assert!(mismatches.is_empty(), "\n{}", mismatches.join("\n"));
}

#[test]
fn shipped_runbooks_validate_against_the_schema() {
    let schema = schema();
    let mut failures = Vec::new();
    for path in crate::runbooks::shipped_runbooks() {
        let text = std::fs::read_to_string(&path).unwrap();
        assert!(
            text.starts_with("#:schema ../docs/runbook.schema.json\n"),
            "{} does not start with the `#:schema` directive",
            path.display()
        );
        for e in schema_errors(&schema, &text) {
            failures.push(format!("{}: {e}", path.display()));
        }
    }
    assert!(failures.is_empty(), "\n{}", failures.join("\n"));
    // The directive is a path editors resolve from the runbook's directory.
    assert!(
        repo()
            .join("runbooks/../docs/runbook.schema.json")
            .is_file()
    );
}

#[test]
fn template_output_validates_against_the_schema() {
    let schema = schema();
    for template in ["canary", "blue-green", "rolling", "basic"] {
        let out = Test::new()
            .args(["new", "new.toml", "--template", template])
            .args([
                "--service",
                "web",
                "--namespace",
                "shop",
                "--image",
                "web:2",
            ])
            .args(["--context", "prod", "--prometheus", "http://prom:9090"])
            .status(0);
        let text = std::fs::read_to_string(out.dir.join("new.toml")).unwrap();
        let errors = schema_errors(&schema, &text);
        assert!(errors.is_empty(), "{template}: {errors:#?}\n{text}");
    }
}

#[test]
fn schema_refuses_what_the_parser_refuses() {
    let schema = schema();
    let base =
        "[runbook]\nname = \"x\"\n\n[[phases]]\nid = \"p\"\ntitle = \"P\"\n\n[[phases.steps]]\n";
    assert!(schema_errors(&schema, &format!("{base}run = \"true\"\n")).is_empty());
    for (what, step) in [
        ("a typo", "run = \"true\"\ntmeout = \"1m\"\n"),
        (
            "two kinds",
            "run = \"true\"\nkubectl = [\"get\", \"pods\"]\n",
        ),
        ("no kind", "name = \"nothing\"\n"),
        (
            "a key of another kind",
            "run = \"true\"\ntype_to_confirm = \"yes\"\n",
        ),
        ("a bad duration", "wait = \"1.5h\"\n"),
        ("a bad choice", "run = \"true\"\non_failure = \"explode\"\n"),
    ] {
        assert!(
            !schema_errors(&schema, &format!("{base}{step}")).is_empty(),
            "the schema accepts {what}"
        );
        let out = Test::new()
            .runbook(&format!("{base}{step}"))
            .args(["validate", "runbook.toml"])
            .run();
        assert_eq!(out.status, 3, "the parser accepts {what}");
    }
}
