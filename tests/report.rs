//! `rollout report`: real runs (an approved confirm, a failure rolled back, a metric check
//! against a real Prometheus), then the report of each in Markdown, JSON and HTML, and the HTML
//! page loaded in a headless Chromium (the Debian `chromium` package; `.ci/test` installs it).

use std::path::Path;
use std::process::{Command, Stdio};
use std::time::Duration;

use crate::checks::{Exporter, Prometheus, abort_runbook};
use crate::harness::{Outcome, Test, journal_file, repo, wait_bounded};

/// A confirm, a command whose output needs escaping, and a phase that fails when `fail` is
/// set; every phase rolls back on failure.
fn deploy(fail: bool) -> String {
    let push = if fail {
        "echo pushing; echo oops >&2; exit 3"
    } else {
        "echo pushed"
    };
    format!(
        r#"[runbook]
name = "deploy-api"

[[phases]]
id = "prepare"
title = "Prepare"
on_failure = "rollback"
[[phases.steps]]
id = "build"
run = "echo building; echo '<b>built</b> & <script>x</script>'"
[[phases.steps]]
id = "go"
confirm = "Deploy to production?"
[[phases.rollback]]
id = "undo-prepare"
run = "echo undo prepare"

[[phases]]
id = "deploy"
title = "Deploy"
on_failure = "rollback"
[[phases.steps]]
id = "push"
run = "{push}"
[[phases.rollback]]
id = "undo-deploy"
run = "echo undo deploy"
"#
    )
}

fn report(dir: &Path, format: &str) -> Outcome {
    Test::in_dir(dir)
        .args(["report", "--format", format])
        .status(0)
}

fn digest(run: &Outcome) -> String {
    run.stderr
        .lines()
        .find_map(|l| l.strip_prefix("audit digest: "))
        .expect("the run prints its audit digest")
        .trim()
        .to_string()
}

/// The checks every HTML report passes: one document, self-contained, text escaped.
fn assert_self_contained(html: &str) {
    assert!(html.starts_with("<!DOCTYPE html>"), "{html}");
    assert!(html.trim_end().ends_with("</html>"));
    for forbidden in ["http://", "https://", "<script", "<link", "<img", "@import"] {
        assert!(!html.contains(forbidden), "the page holds {forbidden:?}");
    }
    assert_eq!(html.matches("<svg").count(), html.matches("</svg>").count());
    assert_eq!(
        html.matches("<table").count(),
        html.matches("</table>").count()
    );
    assert_eq!(
        html.matches("<section").count(),
        html.matches("</section>").count()
    );
}

#[test]
fn report_of_an_approved_run_names_who_approved_what_and_when() {
    let run = Test::new()
        .runbook(&deploy(false))
        .env("ROLLOUT_OPERATOR", "olga")
        .args(["run", "runbook.toml", "--approve", "go"])
        .status(0);
    let published = digest(&run);

    let md = report(&run.dir, "md").stdout;
    for want in [
        "# Run report: `deploy-api` (succeeded)",
        "| Outcome | **succeeded** |",
        "| Operator | olga (",
        "## Timeline",
        "| **prepare** | |",
        "| | `build` |",
        "## Commands",
        "## Approvals",
        "| `prepare/go` | confirm | passed | Deploy to production? | yes | olga | pre-approved |",
        "## Audit log",
        "- Chain: **verified** OK:",
    ] {
        assert!(md.contains(want), "markdown lacks {want:?}:\n{md}");
    }
    assert!(
        md.contains(&format!("- Final digest: `{published}`")),
        "{md}"
    );
    assert!(!md.contains("## Rollback"), "{md}");

    let json: serde_json::Value = serde_json::from_str(&report(&run.dir, "json").stdout).unwrap();
    assert_eq!(json["schema_version"], 1);
    assert_eq!(json["runbook_name"], "deploy-api");
    assert_eq!(json["outcome"], "succeeded");
    assert_eq!(json["operator"], "olga");
    assert_eq!(json["phases"].as_array().unwrap().len(), 2);
    assert_eq!(json["phases"][0]["steps"][0]["step"], "build");
    assert_eq!(json["phases"][0]["steps"][0]["status"], "ok");
    let approval = &json["approvals"][0];
    assert_eq!(approval["step"], "go");
    assert_eq!(approval["kind"], "confirm");
    assert_eq!(approval["outcome"], "passed");
    assert_eq!(approval["answers"][0]["answer"], "yes");
    assert_eq!(approval["answers"][0]["name"], "olga");
    assert_eq!(approval["answers"][0]["how"], "pre-approved");
    assert!(
        approval["answers"][0]["at"]
            .as_str()
            .unwrap()
            .ends_with('Z')
    );
    assert_eq!(json["audit"]["ok"], true);
    assert_eq!(json["audit"]["final_digest"], published.as_str());
    assert!(json["rollback"].is_null());

    let html = report(&run.dir, "html").stdout;
    assert_self_contained(&html);
    assert!(html.contains("<svg class=\"timeline\""), "{html}");
    assert!(html.contains("&lt;b&gt;built&lt;/b&gt; &amp; &lt;script&gt;x&lt;/script&gt;"));
    assert!(html.contains("Deploy to production?"));
    assert!(html.contains("<span class=\"badge b-succeeded\">succeeded</span>"));
}

#[test]
fn report_of_a_failed_run_shows_the_failing_command_and_the_rollback() {
    let run = Test::new()
        .runbook(&deploy(true))
        .args(["run", "runbook.toml", "--approve", "go", "--yes"])
        .status(10);

    let md = report(&run.dir, "md").stdout;
    for want in [
        "# Run report: `deploy-api` (rolled back)",
        "| **deploy** | |",
        "| | `push` |",
        "| failed | 3 |",
        "| **deploy** (rollback) |",
        "| | `undo-deploy` |",
        "| `deploy/push` | `echo pushing; echo oops >&2; exit 3` | failed | 3 | exited with code 3 |",
        "```text\npushing\noops\n```",
        "## Rollback",
        "- Phases, in order: `deploy`, `prepare`",
        "(complete)",
        "- Undone: `deploy/undo-deploy`",
        "- Undone: `prepare/undo-prepare`",
    ] {
        assert!(md.contains(want), "markdown lacks {want:?}:\n{md}");
    }

    let json: serde_json::Value = serde_json::from_str(&report(&run.dir, "json").stdout).unwrap();
    assert_eq!(json["outcome"], "rolled_back");
    let phases = json["phases"].as_array().unwrap();
    let labels: Vec<(String, bool, String)> = phases
        .iter()
        .map(|p| {
            (
                p["phase"].as_str().unwrap().to_string(),
                p["rollback"].as_bool().unwrap(),
                p["status"].as_str().unwrap().to_string(),
            )
        })
        .collect();
    assert_eq!(
        labels,
        [
            ("prepare".into(), false, "succeeded".into()),
            ("deploy".into(), false, "failed".into()),
            ("deploy".into(), true, "rolled_back".into()),
            ("prepare".into(), true, "rolled_back".into()),
        ]
    );
    let push = &phases[1]["steps"][0];
    assert_eq!(push["status"], "failed");
    assert_eq!(push["exit_code"], 3);
    assert_eq!(push["command"][0], "echo pushing; echo oops >&2; exit 3");
    assert_eq!(push["output_tail"], "pushing\noops\n");
    let rb = &json["rollback"];
    assert_eq!(rb["complete"], true);
    assert_eq!(rb["phases"], serde_json::json!(["deploy", "prepare"]));
    assert_eq!(
        rb["undone"],
        serde_json::json!(["deploy/undo-deploy", "prepare/undo-prepare"])
    );
    // The rollback's own confirmation is an approval like any other.
    assert_eq!(json["approvals"][1]["step"], "rollback");

    let html = report(&run.dir, "html").stdout;
    assert_self_contained(&html);
    assert!(html.contains("<g class=\"phase rollback\">"), "{html}");
    assert!(html.contains("<g class=\"step failed\">"));
    assert!(html.contains("<tr class=\"failed\">"));
    assert!(html.contains(
        "<details open><summary>output (last 2 lines)</summary><pre>pushing\noops</pre></details>"
    ));
    assert!(html.contains("<section id=\"rollback\">"));
}

/// A journal written for this test, its chain intact (`tests/data/report-journal.ndjson`: two
/// sessions, the second outside the change window; a retried step, gates that record no start,
/// a skipped step; a metric check with a measurement that has no value, one with a single tiny
/// value; a phase past its time budget; an abort criterion that paused the run at a sign-off,
/// and the resume that signed it; an incomplete rollback; HTML, `|`, backticks and a control
/// character in what it quotes). Its reports in every format are snapshots, so that any change to what a
/// report says or how it is laid out shows in review.
#[test]
fn reports_of_a_fixed_journal_stay_as_they_are() {
    let run = "20261122-024340771-1d63";
    let journal = std::fs::read(repo().join("tests/data/report-journal.ndjson")).unwrap();
    let out = Test::new()
        .file(&format!(".rollout/runs/{run}/journal.ndjson"), journal)
        .args(["report", "--format", "md"])
        .status(0);
    assert!(out.stderr.is_empty(), "{}", out.stderr);
    insta::assert_snapshot!("fixed_journal_md", out.stdout);
    let html = report(&out.dir, "html").stdout;
    assert_self_contained(&html);
    insta::assert_snapshot!("fixed_journal_html", html);
    insta::assert_snapshot!("fixed_journal_json", report(&out.dir, "json").stdout);
}

/// A run that stopped (killed) after its first record: the report has its identity, no phase
/// and no step, and says the log ends unsealed.
#[test]
fn report_of_a_run_stopped_before_its_first_phase() {
    let run = "20261122-024340771-1d63";
    let journal = std::fs::read_to_string(repo().join("tests/data/report-journal.ndjson")).unwrap();
    let first = journal.lines().next().unwrap();
    let out = Test::new()
        .file(
            &format!(".rollout/runs/{run}/journal.ndjson"),
            format!("{first}\n"),
        )
        .args(["report", "--format", "md"])
        .status(0);
    out.stderr_has("without a seal");
    for want in [
        "# Run report: `deploy-api` (running)",
        "| Operator | olga (olga@ops-1) |",
        "| Duration | 0ms |",
        "## Timeline\n\nNo phase started.\n\n## Audit log\n\n- Chain: **NOT verified** FAILED: the log ends at record 1 without a seal",
    ] {
        out.stdout_has(want);
    }
    let html = report(&out.dir, "html").stdout;
    assert_self_contained(&html);
    assert!(
        html.contains(
            "<h2>Timeline</h2>\n<p class=\"muted\">No phase started.</p>\n</section>\n<section id=\"audit\">"
        ),
        "{html}"
    );
    assert!(html.contains("<div><b>Steps</b>0</div><div><b>Approvals</b>0</div>"));
}

/// Error ratio bad (0.9) for the first 1.2 s, then good: the check fails early, passes at the end.
fn metric_run(extra: &str) -> (Outcome, Prometheus) {
    let exporter =
        Exporter::new("app_error_ratio{route=\"/a\"} 0.9\napp_error_ratio{route=\"/b\"} 0.5\n");
    let prom = Prometheus::start(&exporter);
    let flip = exporter.set_after(
        Duration::from_millis(1200),
        "app_error_ratio{route=\"/a\"} 0.001\napp_error_ratio{route=\"/b\"} 0.004\n",
    );
    let runbook = format!(
        r#"[runbook]
name = "canary"

[defaults]
prometheus = "{}"

[[phases]]
id = "verify"
title = "Verify"
on_failure = "rollback"
[[phases.steps]]
id = "errors"
metric = 'app_error_ratio'
condition = "< 0.01"
for = "4s"
every = "500ms"
failure_limit = 4
successes = 2
[[phases.rollback]]
id = "undo-verify"
run = "echo undo verify"
{extra}"#,
        prom.url
    );
    let status = if extra.is_empty() { 0 } else { 10 };
    let out = Test::new()
        .runbook(&runbook)
        .args(["run", "runbook.toml", "--yes"])
        .status(status);
    flip.join().unwrap();
    (out, prom)
}

#[test]
fn report_plots_each_metric_check_against_its_threshold() {
    let (run, _prom) = metric_run("");
    let json: serde_json::Value = serde_json::from_str(&report(&run.dir, "json").stdout).unwrap();
    let check = &json["checks"][0];
    assert_eq!(check["step"], "errors");
    assert_eq!(check["condition"], "< 0.01");
    assert_eq!(check["status"], "ok");
    assert_eq!(check["series"].as_array().unwrap().len(), 2, "{check}");
    let m = check["measurements"].as_array().unwrap();
    assert!(m.len() >= 6, "{check}");
    assert_eq!(m[0]["verdict"], "fail", "{check}");
    assert_eq!(m[m.len() - 1]["verdict"], "pass", "{check}");
    assert_eq!(m[0]["values"].as_array().unwrap().len(), 2);
    assert!(m[1]["offset_ms"].as_u64() > m[0]["offset_ms"].as_u64());

    let md = report(&run.dir, "md").stdout;
    for want in [
        "## Metric checks",
        "### `errors`: ok",
        "Threshold: `< 0.01`.",
        "| # | At (UTC) | +time | Verdict | Series | Value |",
        "| fail | `app_error_ratio{",
        "| 0.9 |",
        "| pass | `app_error_ratio{",
        "| 0.001 |",
    ] {
        assert!(md.contains(want), "markdown lacks {want:?}:\n{md}");
    }

    let html = report(&run.dir, "html").stdout;
    assert_self_contained(&html);
    assert!(html.contains("<svg class=\"plot\""), "{html}");
    assert!(html.contains("<line class=\"threshold\""));
    assert!(html.contains("stroke-dasharray=\"6 4\""));
    assert!(html.contains("threshold &lt; 0.01"));
    assert!(html.contains("time since the run started"));
    // Points coloured by verdict: failing ones red, passing ones green.
    assert!(html.contains("<circle") && html.contains("fill=\"#d64545\" stroke=\"#fff\""));
    assert!(html.contains("fill=\"#2f9e5b\" stroke=\"#fff\""));
}

#[test]
fn report_picks_the_latest_run_or_the_one_named_and_writes_a_file() {
    let first = Test::new()
        .runbook(&deploy(false))
        .args(["run", "runbook.toml", "--approve", "go"])
        .status(0);
    let runs = first.dir.join(".rollout/runs");
    let id_of = |n: usize| {
        let mut ids: Vec<String> = std::fs::read_dir(&runs)
            .unwrap()
            .map(|e| e.unwrap().file_name().into_string().unwrap())
            .collect();
        ids.sort();
        ids[n].clone()
    };
    let first_id = id_of(0);
    Test::in_dir(&first.dir)
        .file("runbook.toml", deploy(true))
        .args(["run", "runbook.toml", "--approve", "go", "--yes"])
        .status(10);
    let latest = Test::in_dir(&first.dir)
        .args(["report", "--format", "json"])
        .status(0)
        .json();
    assert_eq!(latest["outcome"], "rolled_back");
    assert_eq!(latest["run_id"], id_of(1).as_str());
    let named = Test::in_dir(&first.dir)
        .args(["report", &first_id, "--format", "json"])
        .status(0)
        .json();
    assert_eq!(named["outcome"], "succeeded");

    // Elsewhere, with --state-dir (or ROLLOUT_STATE_DIR) and --output.
    let elsewhere = Test::new()
        .args([
            "report", &first_id, "--format", "html", "--output", "r.html",
        ])
        .env(
            "ROLLOUT_STATE_DIR",
            first.dir.join(".rollout").to_str().unwrap(),
        )
        .status(0);
    elsewhere.stderr_has("written to r.html");
    assert!(elsewhere.stdout.is_empty());
    let html = std::fs::read_to_string(elsewhere.dir.join("r.html")).unwrap();
    assert_self_contained(&html);
    Test::new()
        .args([
            "report",
            "--state-dir",
            first.dir.join(".rollout").to_str().unwrap(),
        ])
        .status(0)
        .stdout_has("# Run report: `deploy-api` (rolled back)");

    Test::in_dir(&first.dir)
        .args(["report", "nope"])
        .status(2)
        .stderr_has("error: no run `nope`");
}

#[test]
fn report_of_a_tampered_log_says_the_chain_does_not_verify() {
    let run = Test::new()
        .runbook(&deploy(false))
        .args(["run", "runbook.toml", "--approve", "go"])
        .status(0);
    let journal = journal_file(&run.dir);
    let text = std::fs::read_to_string(&journal).unwrap();
    std::fs::write(
        &journal,
        text.replace("\"answer\":\"yes\"", "\"answer\":\"YES\""),
    )
    .unwrap();
    let out = Test::in_dir(&run.dir).args(["report"]).status(0);
    out.stderr_has("warning: the run's audit log does not verify");
    out.stdout_has("- Chain: **NOT verified** FAILED:");
    let html = Test::in_dir(&run.dir)
        .args(["report", "--format", "html"])
        .status(0)
        .stdout;
    assert!(html.contains("<p class=\"alert\">FAILED:"), "{html}");
}

/// Width, height and size of a PNG file, after checking its signature.
fn png_facts(bytes: &[u8]) -> (u32, u32) {
    assert_eq!(&bytes[..8], b"\x89PNG\r\n\x1a\n", "not a PNG");
    assert_eq!(&bytes[12..16], b"IHDR");
    let be = |at: usize| u32::from_be_bytes(bytes[at..at + 4].try_into().unwrap());
    (be(16), be(20))
}

/// Shannon entropy of the bytes, in bits per byte.
fn entropy(bytes: &[u8]) -> f64 {
    let mut counts = [0usize; 256];
    for b in bytes {
        counts[usize::from(*b)] += 1;
    }
    let n = bytes.len() as f64;
    counts
        .iter()
        .filter(|c| **c > 0)
        .map(|c| {
            let p = *c as f64 / n;
            -p * p.log2()
        })
        .sum()
}

fn chromium(dir: &Path, args: &[String]) -> std::process::Output {
    let child = Command::new("chromium")
        .args([
            "--headless=new",
            "--no-sandbox",
            "--disable-gpu",
            "--no-first-run",
            "--disable-extensions",
            "--enable-logging=stderr",
            "--v=0",
        ])
        .arg(format!(
            "--user-data-dir={}",
            dir.join("chromium-profile").display()
        ))
        .args(args)
        .env("HOME", dir)
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap_or_else(|e| {
            panic!(
                "cannot start `chromium` ({e}): this test needs a headless browser. Install the \
                 Debian package (`apt-get install chromium`) or run `.ci/test`, which does."
            )
        });
    wait_bounded(child, Duration::from_secs(60))
}

#[test]
fn html_report_renders_in_headless_chromium() {
    let failing = "\n[[phases]]\nid = \"deploy\"\ntitle = \"Deploy\"\non_failure = \"rollback\"\n\
                   [[phases.steps]]\nid = \"push\"\nrun = \"echo '<i>pushing</i>'; exit 3\"\n\
                   [[phases.rollback]]\nid = \"undo-deploy\"\nrun = \"echo undo deploy\"\n";
    let (run, _prom) = metric_run(failing);
    let page = run.dir.join("report.html");
    Test::in_dir(&run.dir)
        .args(["report", "--format", "html", "--output", "report.html"])
        .status(0);
    let url = format!("file://{}", page.display());

    let dom = chromium(&run.dir, &["--dump-dom".into(), url.clone()]);
    let dom_text = String::from_utf8_lossy(&dom.stdout);
    let log = String::from_utf8_lossy(&dom.stderr);
    assert!(dom.status.success(), "chromium failed:\n{log}");
    assert!(dom_text.contains("<svg class=\"timeline\""), "{dom_text}");
    assert!(dom_text.contains("<svg class=\"plot\""), "{dom_text}");
    assert!(
        dom_text.contains("&lt;i&gt;pushing&lt;/i&gt;"),
        "{dom_text}"
    );
    for bad in ["Uncaught", "ERROR:CONSOLE", ":CONSOLE("] {
        assert!(!log.contains(bad), "console message {bad:?}:\n{log}");
    }

    let shot = run.dir.join("report.png");
    let out = chromium(
        &run.dir,
        &[
            format!("--screenshot={}", shot.display()),
            "--window-size=1200,2000".into(),
            "--hide-scrollbars".into(),
            url,
        ],
    );
    let bytes = std::fs::read(&shot).unwrap_or_else(|e| {
        panic!(
            "no screenshot ({e}):\n{}",
            String::from_utf8_lossy(&out.stderr)
        )
    });
    assert_eq!(png_facts(&bytes), (1200, 2000));
    // A blank or single-colour page of this size compresses to a few KiB.
    assert!(
        bytes.len() > 40_000,
        "screenshot only {} bytes",
        bytes.len()
    );
    assert!(entropy(&bytes) > 6.0, "entropy {}", entropy(&bytes));
    if let Some(keep) = std::env::var_os("ROLLOUT_TEST_KEEP_SCREENSHOT") {
        std::fs::copy(&shot, keep).unwrap();
    }
}

#[test]
fn report_lists_tripped_abort_criteria_and_pauses_with_who_resumed() {
    let exporter = Exporter::new("app_error_ratio 0.01\n");
    let prom = Prometheus::start(&exporter);
    let flip = exporter.set_after(Duration::from_secs(1), "app_error_ratio 0.9\n");
    // The soak step stopped by the criterion reruns on resume: short, so the test is.
    let runbook = abort_runbook(&prom.url, "pause")
        .replace("sleep 30 & echo $! > sleep.pid; wait", "sleep 5");
    let run = Test::new()
        .runbook(&runbook)
        .args(["run", "runbook.toml", "--grace", "1s"])
        .status(8);
    flip.join().unwrap();
    exporter.set("app_error_ratio 0.01\n");
    std::thread::sleep(Duration::from_secs(3));
    Test::in_dir(&run.dir)
        .env("ROLLOUT_OPERATOR", "rita")
        .args(["resume", "--rerun-in-doubt"])
        .status(0);

    let json: serde_json::Value = serde_json::from_str(&report(&run.dir, "json").stdout).unwrap();
    assert_eq!(json["outcome"], "succeeded", "{json}");
    let abort = &json["aborts"][0];
    assert_eq!(abort["criterion"], "error rate above 50%");
    assert_eq!(abort["action"], "pause");
    assert_eq!(abort["phase"], "canary");
    assert!(abort["values"][0][1].as_f64().unwrap() > 0.5, "{abort}");
    let pause = &json["pauses"][0];
    assert_eq!(pause["resumed_by"], "rita", "{pause}");
    assert!(pause["resumed_at"].as_str().unwrap() > pause["at"].as_str().unwrap());
    assert_eq!(json["sessions"][1]["kind"], "resumed");
    // The soak step ran twice: stopped by the criterion, then again after the resume.
    let soak: Vec<&str> = json["phases"]
        .as_array()
        .unwrap()
        .iter()
        .flat_map(|p| p["steps"].as_array().unwrap())
        .map(|s| s["status"].as_str().unwrap())
        .collect();
    assert_eq!(soak.last(), Some(&"ok"), "{soak:?}");
    assert!(soak.len() >= 2, "{soak:?}");

    let md = report(&run.dir, "md").stdout;
    for want in [
        "## Abort criteria tripped",
        "| `error rate above 50%` | pause | `canary/",
        "## Pauses and resumes",
        "| rita |",
        "| Resumed |",
    ] {
        assert!(md.contains(want), "markdown lacks {want:?}:\n{md}");
    }
    let html = report(&run.dir, "html").stdout;
    assert_self_contained(&html);
    assert!(html.contains("<section id=\"aborts\">"));
    assert!(html.contains("<section id=\"pauses\">"));
    assert!(html.contains("abort criterion <code>error rate above 50%</code> tripped"));
    for marker in ["abort", "pause", "resume"] {
        assert!(
            html.contains(&format!("<g class=\"marker {marker}\">")),
            "{marker}"
        );
    }
}
