//! Metric checks and abort criteria against a real Prometheus server (the Debian `prometheus`
//! package; `.ci/test` installs it) that scrapes a tiny exporter whose values each test
//! controls, plus an HTTP mock for the faults a real server will not produce on demand.

use std::io::{BufRead, BufReader, Read, Write};
use std::net::{TcpListener, TcpStream};
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use crate::harness::{Test, journal};

/// Serves `/metrics` in the Prometheus text format with whatever the test last set.
pub(crate) struct Exporter {
    port: u16,
    body: Arc<Mutex<String>>,
}

impl Exporter {
    pub(crate) fn new(body: &str) -> Exporter {
        let listener = TcpListener::bind("127.0.0.1:0").expect("bind the exporter");
        let port = listener.local_addr().unwrap().port();
        let body = Arc::new(Mutex::new(body.to_string()));
        let served = Arc::clone(&body);
        std::thread::spawn(move || {
            for stream in listener.incoming().flatten() {
                let text = served.lock().unwrap().clone();
                respond(stream, "200 OK", "text/plain; version=0.0.4", &text);
            }
        });
        Exporter { port, body }
    }

    pub(crate) fn set(&self, body: &str) {
        *self.body.lock().unwrap() = body.to_string();
    }

    /// Serves `body` from `after` on, set by a thread of its own (joined, it is set).
    pub(crate) fn set_after(&self, after: Duration, body: &str) -> std::thread::JoinHandle<()> {
        let served = Arc::clone(&self.body);
        let body = body.to_string();
        std::thread::spawn(move || {
            std::thread::sleep(after);
            *served.lock().unwrap() = body;
        })
    }
}

/// Reads the request head and answers with one complete response.
fn respond(stream: TcpStream, status: &str, content_type: &str, body: &str) {
    let mut reader = BufReader::new(stream);
    let mut line = String::new();
    while reader.read_line(&mut line).is_ok_and(|n| n > 0) {
        if line == "\r\n" || line == "\n" {
            break;
        }
        line.clear();
    }
    let mut stream = reader.into_inner();
    let _ = write!(
        stream,
        "HTTP/1.1 {status}\r\nContent-Type: {content_type}\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{body}",
        body.len()
    );
}

fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

/// A real Prometheus on a free loopback port with a temporary data directory, scraping one
/// exporter every second. Killed when dropped.
pub(crate) struct Prometheus {
    child: Child,
    pub(crate) url: String,
    dir: tempfile::TempDir,
}

impl Prometheus {
    pub(crate) fn start(exporter: &Exporter) -> Prometheus {
        Prometheus::scraping(&format!(
            "  - job_name: app\n    static_configs:\n      - targets: ['127.0.0.1:{}']\n",
            exporter.port
        ))
    }

    /// A Prometheus scraping every second what `jobs` lists: entries of `scrape_configs`, in
    /// YAML indented by two spaces.
    pub(crate) fn scraping(jobs: &str) -> Prometheus {
        let binary = which("prometheus").unwrap_or_else(|| {
            panic!(
                "the `prometheus` binary is not on PATH: these tests need a real Prometheus \
                 server. Install the Debian package (`apt-get install prometheus`) or run \
                 `.ci/test`, which does."
            )
        });
        let dir = tempfile::tempdir().unwrap();
        let config = dir.path().join("prometheus.yml");
        std::fs::write(
            &config,
            format!(
                "global:\n  scrape_interval: 1s\n  evaluation_interval: 1s\nscrape_configs:\n{jobs}"
            ),
        )
        .unwrap();
        let port = free_port();
        let log = std::fs::File::create(dir.path().join("prometheus.log")).unwrap();
        let child = Command::new(binary)
            .arg(format!("--config.file={}", config.display()))
            .arg(format!(
                "--storage.tsdb.path={}",
                dir.path().join("data").display()
            ))
            .arg(format!("--web.listen-address=127.0.0.1:{port}"))
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(log)
            .spawn()
            .expect("start prometheus");
        let prom = Prometheus {
            child,
            url: format!("http://127.0.0.1:{port}"),
            dir,
        };
        prom.wait_for_first_scrape();
        prom
    }

    /// Bounded: ready, and the exporter's target scraped at least once.
    fn wait_for_first_scrape(&self) {
        let start = Instant::now();
        while start.elapsed() < Duration::from_secs(30) {
            if let Some(body) = get(&self.url, "/api/v1/query?query=up") {
                if body.contains("\"value\":[") && body.contains("\"1\"]") {
                    return;
                }
            }
            std::thread::sleep(Duration::from_millis(100));
        }
        let log =
            std::fs::read_to_string(self.dir.path().join("prometheus.log")).unwrap_or_default();
        panic!("prometheus did not become ready and scrape within 30s:\n{log}");
    }

    /// Waits (bounded) until `query` returns `want` in its answer.
    pub(crate) fn wait_for(&self, query: &str, want: &str) {
        let start = Instant::now();
        let path = format!("/api/v1/query?query={}", encode(query));
        while start.elapsed() < Duration::from_secs(15) {
            if get(&self.url, &path).is_some_and(|b| b.contains(want)) {
                return;
            }
            std::thread::sleep(Duration::from_millis(100));
        }
        panic!("prometheus never answered {want} for {query}");
    }
}

impl Drop for Prometheus {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn which(name: &str) -> Option<std::path::PathBuf> {
    std::env::var_os("PATH").and_then(|paths| {
        std::env::split_paths(&paths)
            .map(|p| p.join(name))
            .find(|p| p.is_file())
    })
}

fn encode(s: &str) -> String {
    s.bytes()
        .map(|b| {
            if b.is_ascii_alphanumeric() || b"-_.~".contains(&b) {
                (b as char).to_string()
            } else {
                format!("%{b:02X}")
            }
        })
        .collect()
}

/// A plain HTTP/1.0 GET; `None` on any failure.
fn get(base: &str, path: &str) -> Option<String> {
    let addr = base.strip_prefix("http://")?;
    let mut s = TcpStream::connect(addr).ok()?;
    s.set_read_timeout(Some(Duration::from_secs(2))).ok()?;
    write!(s, "GET {path} HTTP/1.0\r\nHost: {addr}\r\n\r\n").ok()?;
    let mut out = String::new();
    s.read_to_string(&mut out).ok()?;
    out.lines()
        .next()
        .is_some_and(|l| l.contains(" 200 "))
        .then_some(out)
}

fn metric_runbook(url: &str, step: &str) -> String {
    format!(
        r#"[runbook]
name = "checks"

[defaults]
prometheus = "{url}"

[[phases]]
id = "verify"
title = "Verify"
on_failure = "abort"

[[phases.steps]]
id = "check"
{step}
"#
    )
}

fn measurements(dir: &Path) -> Vec<serde_json::Value> {
    let runs = dir.join(".rollout/runs");
    let run = std::fs::read_dir(&runs).unwrap().next().unwrap().unwrap();
    std::fs::read_to_string(run.path().join("journal.ndjson"))
        .unwrap()
        .lines()
        .filter_map(|l| serde_json::from_str::<serde_json::Value>(l).ok())
        .filter(|v| v["type"] == "measurement")
        .collect()
}

#[test]
fn metric_check_passes_against_real_prometheus() {
    let exporter = Exporter::new("app_error_ratio 0.002\n");
    let prom = Prometheus::start(&exporter);
    let out = Test::new()
        .runbook(&metric_runbook(
            &prom.url,
            "metric = 'app_error_ratio'\ncondition = \"< 0.01\"\nsamples = 2\nevery = \"200ms\"",
        ))
        .args(["run", "runbook.toml"])
        .status(0);
    let m = measurements(&out.dir);
    assert_eq!(m.len(), 2, "{m:?}");
    assert!(m.iter().all(|x| x["verdict"] == "pass"), "{m:?}");
    // The live view: each value against the threshold, a trend and the time left.
    out.stderr_has("1/2 pass app_error_ratio{");
    out.stderr_has("=0.002 (want < 0.01) ▁, 0.2s left");
    out.stderr_has("2/2 pass");
}

#[test]
fn metric_measurements_are_events_with_a_trend() {
    let exporter = Exporter::new(
        "app_error_ratio 0.002
",
    );
    let prom = Prometheus::start(&exporter);
    let out = Test::new()
        .runbook(&metric_runbook(
            &prom.url,
            "metric = 'app_error_ratio'\ncondition = \"< 0.01\"\nsamples = 3\nevery = \"200ms\"",
        ))
        .args(["run", "runbook.toml", "--output", "json"])
        .status(0);
    let events: Vec<serde_json::Value> = out
        .events()
        .into_iter()
        .filter(|e| e["event"] == "measurement")
        .collect();
    assert_eq!(events.len(), 3, "{}", out.stdout);
    assert_eq!(events[2]["index"], 3);
    assert_eq!(events[2]["count"], 3);
    assert_eq!(events[2]["condition"], "< 0.01");
    assert_eq!(events[2]["trend"], serde_json::json!([0.002, 0.002, 0.002]));
    assert_eq!(events[0]["left_ms"], 400);
    assert_eq!(events[2]["left_ms"], 0);
}

#[test]
fn metric_check_fails_past_its_failure_limit() {
    let exporter = Exporter::new("app_error_ratio 0.5\n");
    let prom = Prometheus::start(&exporter);
    let out = Test::new()
        .runbook(&metric_runbook(
            &prom.url,
            "metric = 'app_error_ratio'\ncondition = \"< 0.01\"\nsamples = 3\nevery = \"100ms\"\nfailure_limit = 1",
        ))
        .args(["run", "runbook.toml"])
        .status(6);
    out.stderr_has("2 of 2 measurements broke `< 0.01`; failure limit 1");
    assert_eq!(measurements(&out.dir).len(), 2);
}

#[test]
fn metric_window_needs_consecutive_successes_at_the_end() {
    // Good at first, bad from 2.5s on: the last measurements of a 6s window all fail, so
    // although the failure limit tolerates them the check cannot pass.
    let exporter = Exporter::new("app_error_ratio 0.001\n");
    let prom = Prometheus::start(&exporter);
    let flip = exporter.set_after(Duration::from_millis(2500), "app_error_ratio 0.9\n");
    let out = Test::new()
        .runbook(&metric_runbook(
            &prom.url,
            "metric = 'app_error_ratio'\ncondition = \"< 0.01\"\nfor = \"6s\"\nevery = \"1s\"\nfailure_limit = 5\nsuccesses = 2",
        ))
        .args(["run", "runbook.toml"])
        .status(6);
    flip.join().unwrap();
    out.stderr_has("0 consecutive passing measurements at the end; 2 required");
    let m = measurements(&out.dir);
    assert_eq!(m.len(), 6, "{m:?}");
    assert_eq!(m[0]["verdict"], "pass");
    assert_eq!(m[5]["verdict"], "fail");
}

#[test]
fn metric_window_passes_once_values_recover() {
    let exporter = Exporter::new("app_error_ratio 0.9\n");
    let prom = Prometheus::start(&exporter);
    let flip = exporter.set_after(Duration::from_millis(1200), "app_error_ratio 0.001\n");
    let out = Test::new()
        .runbook(&metric_runbook(
            &prom.url,
            "metric = 'app_error_ratio'\ncondition = \"< 0.01\"\nfor = \"6s\"\nevery = \"1s\"\nfailure_limit = 3\nsuccesses = 2",
        ))
        .args(["run", "runbook.toml"])
        .status(0);
    flip.join().unwrap();
    let m = measurements(&out.dir);
    assert_eq!(m[0]["verdict"], "fail", "{m:?}");
    assert_eq!(m[m.len() - 1]["verdict"], "pass", "{m:?}");
}

#[test]
fn metric_vector_names_the_offending_series() {
    let exporter = Exporter::new(
        "app_latency_seconds{route=\"/fast\"} 0.1\napp_latency_seconds{route=\"/slow\"} 0.9\n",
    );
    let prom = Prometheus::start(&exporter);
    let out = Test::new()
        .runbook(&metric_runbook(
            &prom.url,
            "metric = 'app_latency_seconds'\ncondition = \"< 0.5\"",
        ))
        .args(["run", "runbook.toml"])
        .status(6);
    out.stderr_has("route=\"/slow\"");
    let failing = out
        .stderr
        .lines()
        .find(|l| l.contains("broke"))
        .unwrap_or_default();
    assert!(
        failing.contains("/slow=0.9") || failing.contains("\"/slow\"}=0.9"),
        "{failing}"
    );
    assert!(!failing.contains("/fast"), "{failing}");
}

#[test]
fn metric_without_data_is_inconclusive_and_pauses() {
    let exporter = Exporter::new("app_error_ratio 0.002\n");
    let prom = Prometheus::start(&exporter);
    let out = Test::new()
        .runbook(&metric_runbook(
            &prom.url,
            "metric = 'app_metric_that_does_not_exist'\ncondition = \"< 0.01\"",
        ))
        .args(["run", "runbook.toml"])
        .status(8);
    out.stderr_has("inconclusive");
    out.stderr_has("no data");
    assert_eq!(measurements(&out.dir)[0]["verdict"], "inconclusive");
}

#[test]
fn metric_between_condition() {
    let exporter = Exporter::new("app_replicas 3\n");
    let prom = Prometheus::start(&exporter);
    Test::new()
        .runbook(&metric_runbook(
            &prom.url,
            "metric = 'app_replicas'\ncondition = \"between 2 and 4\"",
        ))
        .args(["run", "runbook.toml"])
        .status(0);
    exporter.set("app_replicas 7\n");
    prom.wait_for("app_replicas", "\"7\"]");
    Test::new()
        .runbook(&metric_runbook(
            &prom.url,
            "metric = 'app_replicas'\ncondition = \"between 2 and 4\"",
        ))
        .args(["run", "runbook.toml"])
        .status(6)
        .stderr_has("broke `between 2 and 4`");
}

/// Answers every request with the same canned response, after `delay`.
fn mock(status: &'static str, body: &'static str, delay: Duration) -> String {
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let port = listener.local_addr().unwrap().port();
    std::thread::spawn(move || {
        for stream in listener.incoming().flatten() {
            std::thread::spawn(move || {
                std::thread::sleep(delay);
                respond(stream, status, "application/json", body);
            });
        }
    });
    format!("http://127.0.0.1:{port}")
}

fn fault(url: &str, extra: &str, reason: &str) {
    let out = Test::new()
        .runbook(&metric_runbook(
            url,
            &format!("metric = 'up'\ncondition = \"< 1\"\n{extra}"),
        ))
        .args(["run", "runbook.toml"])
        .status(8);
    out.stderr_has("inconclusive");
    out.stderr_has(reason);
    let m = measurements(&out.dir);
    assert!(m.iter().all(|x| x["verdict"] == "inconclusive"), "{m:?}");
}

#[test]
fn mock_nan_value_is_inconclusive() {
    let url = mock(
        "200 OK",
        r#"{"status":"success","data":{"resultType":"vector","result":[{"metric":{},"value":[1700000000,"NaN"]}]}}"#,
        Duration::ZERO,
    );
    fault(&url, "", "value NaN");
}

#[test]
fn mock_empty_result_is_inconclusive() {
    let url = mock(
        "200 OK",
        r#"{"status":"success","data":{"resultType":"vector","result":[]}}"#,
        Duration::ZERO,
    );
    fault(&url, "", "no data");
}

#[test]
fn mock_http_500_is_inconclusive() {
    let url = mock(
        "500 Internal Server Error",
        r#"{"status":"error","error":"boom"}"#,
        Duration::ZERO,
    );
    fault(&url, "", "HTTP 500");
}

#[test]
fn mock_slow_response_past_the_timeout_is_inconclusive() {
    let url = mock(
        "200 OK",
        r#"{"status":"success","data":{"resultType":"scalar","result":[1700000000,"0"]}}"#,
        Duration::from_secs(5),
    );
    let start = Instant::now();
    fault(&url, "timeout = \"1s\"", "query failed");
    assert!(start.elapsed() < Duration::from_secs(4));
}

#[test]
fn mock_malformed_json_is_inconclusive() {
    let url = mock("200 OK", r#"{"status":"success","data":"#, Duration::ZERO);
    fault(&url, "", "not JSON");
}

pub(crate) fn abort_runbook(url: &str, action: &str) -> String {
    format!(
        r#"[runbook]
name = "abort"

[defaults]
prometheus = "{url}"

[[phases]]
id = "canary"
title = "Canary"

[[phases.abort_when]]
name = "error rate above 50%"
metric = 'app_error_ratio'
condition = "> 0.5"
for = "1s"
every = "250ms"
action = "{action}"

[[phases.steps]]
id = "soak"
run = "sleep 30 & echo $! > sleep.pid; wait"

[[phases.steps]]
id = "after"
run = "touch after-ran"
"#
    )
}

/// Runs the abort runbook with the error ratio turning bad 1.5s in; returns the outcome and
/// how long rollout took.
fn trip(action: &str, status: i32) -> (crate::harness::Outcome, Duration) {
    trip_with(action, status, &[], "")
}

/// [`trip`] with extra command-line arguments and runbook text appended to the phase.
fn trip_with(
    action: &str,
    status: i32,
    args: &[&str],
    extra: &str,
) -> (crate::harness::Outcome, Duration) {
    let exporter = Exporter::new("app_error_ratio 0.01\n");
    let prom = Prometheus::start(&exporter);
    let flip = exporter.set_after(Duration::from_millis(1500), "app_error_ratio 0.9\n");
    let start = Instant::now();
    let out = Test::new()
        .runbook(&(abort_runbook(&prom.url, action) + extra))
        .args(["run", "runbook.toml", "--grace", "1s"])
        .args(args.iter().copied())
        .status(status);
    let took = start.elapsed();
    flip.join().unwrap();
    (out, took)
}

fn assert_step_stopped(out: &crate::harness::Outcome, took: Duration) {
    assert!(took < Duration::from_secs(10), "took {took:?}");
    let pid: i32 = std::fs::read_to_string(out.dir.join("sleep.pid"))
        .expect("the step started")
        .trim()
        .parse()
        .unwrap();
    assert!(
        !Path::new(&format!("/proc/{pid}")).exists()
            || std::fs::read_to_string(format!("/proc/{pid}/stat"))
                .is_ok_and(|s| s.contains(") Z ")),
        "the step's `sleep 30` (pid {pid}) is still running"
    );
    assert!(!out.dir.join("after-ran").exists(), "the next step ran");
    let j = journal(&out.dir);
    let tripped = j
        .iter()
        .find(|e| e["type"] == "abort_tripped")
        .expect("an abort_tripped record");
    assert_eq!(tripped["criterion"], "error rate above 50%");
    assert_eq!(tripped["step"], "soak");
    assert_eq!(tripped["values"][0][1], 0.9, "{tripped}");
    let finished = j
        .iter()
        .find(|e| e["type"] == "step_finished" && e["step"] == "soak")
        .expect("the stopped step is recorded");
    assert_eq!(finished["status"], "failed", "{finished}");
}

#[test]
fn abort_criterion_stops_the_running_step_and_fails_the_run() {
    let (out, took) = trip("abort", 6);
    out.stderr_has("abort criterion `error rate above 50%` tripped");
    out.stderr_has("=0.9");
    assert!(!out.stderr.contains("not watched"), "{}", out.stderr);
    assert_step_stopped(&out, took);
}

#[test]
fn abort_criterion_with_rollback_and_nobody_to_confirm_waits_for_the_rollback() {
    let (out, took) = trip("rollback", 9);
    assert_step_stopped(&out, took);
    out.stderr_has("the rollback needs a confirmation");
}

#[test]
fn abort_criterion_with_rollback_rolls_the_phase_back() {
    let (out, took) = trip_with(
        "rollback",
        10,
        &["--yes"],
        "\n[[phases.rollback]]\nid = \"undo\"\nrun = \"touch undone\"\n",
    );
    assert_step_stopped(&out, took);
    assert!(out.dir.join("undone").exists());
    out.stderr_has("rollback complete");
}

#[test]
fn abort_criterion_with_pause_pauses_the_run() {
    let (out, took) = trip("pause", 8);
    assert_step_stopped(&out, took);
    assert!(journal(&out.dir).iter().any(|e| e["type"] == "paused"));
}

#[test]
fn abort_criterion_that_never_holds_lets_the_phase_finish() {
    let exporter = Exporter::new("app_error_ratio 0.01\n");
    let prom = Prometheus::start(&exporter);
    let rb = abort_runbook(&prom.url, "abort")
        .replace("sleep 30 & echo $! > sleep.pid; wait", "sleep 2");
    let out = Test::new()
        .runbook(&rb)
        .args(["run", "runbook.toml"])
        .status(0);
    assert!(out.dir.join("after-ran").exists());
    assert!(
        !journal(&out.dir)
            .iter()
            .any(|e| e["type"] == "abort_tripped")
    );
}

#[test]
fn plan_live_checks_show_current_values_read_only() {
    let exporter = Exporter::new("app_error_ratio 0.9\n");
    let prom = Prometheus::start(&exporter);
    let rb = abort_runbook(&prom.url, "abort").replace(
        "[[phases.steps]]\nid = \"soak\"",
        "[[phases.steps]]\nid = \"error-rate\"\nmetric = 'app_error_ratio'\ncondition = \"< 0.01\"\n\n[[phases.steps]]\nid = \"soak\"",
    );
    let out = Test::new()
        .runbook(&rb)
        .args(["plan", "runbook.toml", "--live-checks"])
        .status(0);
    out.stdout_has("now: app_error_ratio{");
    out.stdout_has("=0.9 (fail, condition < 0.01)");
    out.stdout_has("=0.9 (bad, condition > 0.5)");
    assert!(!out.dir.join(".rollout").exists(), "plan wrote run state");
    assert!(!out.dir.join("sleep.pid").exists(), "plan ran a step");
    let json = Test::in_dir(&out.dir)
        .args(["plan", "runbook.toml", "--live-checks", "--format", "json"])
        .status(0)
        .json();
    let phase = &json["phases"][0];
    assert_eq!(phase["steps"][0]["live"]["verdict"], "fail");
    assert_eq!(phase["steps"][0]["live"]["values"][0][1], 0.9);
    assert_eq!(phase["abort_when"][0]["live"]["verdict"], "bad");
    assert!(phase["steps"][1].get("live").is_none());
    // Without the flag nothing is queried.
    let plain = Test::in_dir(&out.dir)
        .args(["plan", "runbook.toml"])
        .status(0);
    assert!(!plain.stdout.contains("now:"), "{}", plain.stdout);
}

/// Like [`mock`], and keeps every request head it received.
fn recording_mock(body: &'static str) -> (String, Arc<Mutex<Vec<String>>>) {
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let port = listener.local_addr().unwrap().port();
    let seen = Arc::new(Mutex::new(Vec::new()));
    let sink = Arc::clone(&seen);
    std::thread::spawn(move || {
        for stream in listener.incoming().flatten() {
            let mut reader = BufReader::new(stream);
            let mut head = String::new();
            let mut line = String::new();
            while reader.read_line(&mut line).is_ok_and(|n| n > 0) && line != "\r\n" {
                head.push_str(&line);
                line.clear();
            }
            sink.lock().unwrap().push(head);
            let mut stream = reader.into_inner();
            let _ = write!(
                stream,
                "HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{body}",
                body.len()
            );
        }
    });
    (format!("http://127.0.0.1:{port}"), seen)
}

const SCALAR_ZERO: &str =
    r#"{"status":"success","data":{"resultType":"scalar","result":[1700000000,"0"]}}"#;

fn client_runbook(url: &str, client: &str) -> String {
    metric_runbook(url, "metric = 'up'\ncondition = \"< 1\"").replace(
        "[[phases]]",
        &format!(
            "[vars.prom_token]\nsecret = {{ env = \"PROM_TOKEN\" }}\n\n[defaults.prometheus_client]\n{client}\n\n[[phases]]"
        ),
    )
}

#[test]
fn prometheus_client_sends_bearer_token_from_a_secret_and_extra_headers() {
    let (url, seen) = recording_mock(SCALAR_ZERO);
    let out = Test::new()
        .runbook(&client_runbook(
            &url,
            "bearer_token = \"{{ prom_token }}\"\nheaders = { X-Scope-OrgID = \"tenant-1\" }\ntimeout = \"2s\"",
        ))
        .env("PROM_TOKEN", "s3cr3t-token")
        .args(["run", "runbook.toml"])
        .status(0);
    let heads = seen.lock().unwrap().join("\n").to_lowercase();
    assert!(
        heads.contains("authorization: bearer s3cr3t-token"),
        "{heads}"
    );
    assert!(heads.contains("x-scope-orgid: tenant-1"), "{heads}");
    assert!(!out.stderr.contains("s3cr3t-token"));
}

#[test]
fn prometheus_client_sends_basic_auth() {
    let (url, seen) = recording_mock(SCALAR_ZERO);
    Test::new()
        .runbook(&client_runbook(
            &url,
            "basic_auth = { username = \"ops\", password = \"{{ prom_token }}\" }",
        ))
        .env("PROM_TOKEN", "pw")
        .args(["run", "runbook.toml"])
        .status(0);
    // base64("ops:pw")
    let heads = seen.lock().unwrap().join("\n").to_lowercase();
    assert!(heads.contains("authorization: basic b3bzonb3"), "{heads}");
}

#[test]
fn prometheus_client_timeout_bounds_each_request() {
    let url = mock("200 OK", SCALAR_ZERO, Duration::from_secs(5));
    let start = Instant::now();
    let out = Test::new()
        .runbook(&client_runbook(&url, "timeout = \"500ms\""))
        .env("PROM_TOKEN", "unused")
        .args(["run", "runbook.toml"])
        .status(8);
    out.stderr_has("inconclusive");
    assert!(start.elapsed() < Duration::from_secs(4));
}

#[test]
fn prometheus_client_missing_ca_file_fails_the_check() {
    let (url, _) = recording_mock(SCALAR_ZERO);
    Test::new()
        .runbook(&client_runbook(&url, "ca_file = \"certs/missing.pem\""))
        .env("PROM_TOKEN", "unused")
        .args(["run", "runbook.toml"])
        .status(6)
        .stderr_has("cannot read the CA file");
}

#[test]
fn prometheus_client_is_validated() {
    let out = Test::new()
        .runbook(&client_runbook(
            "http://127.0.0.1:9",
            "bearer_token = \"literal-token\"\nbasic_auth = { username = \"u\", password = \"{{ plain }}\" }\nheaders = { \"bad header\" = \"x\" }\ntimeout = \"0s\"",
        ).replace("[defaults.prometheus_client]", "[vars.plain]\ndefault = \"x\"\n\n[defaults.prometheus_client]"))
        .args(["validate", "runbook.toml"])
        .status(3);
    out.stderr_has("`bearer_token` and `basic_auth` cannot both be set");
    out.stderr_has("`bearer_token` is written in the runbook");
    out.stderr_has("`basic_auth.password` uses non-secret variable(s) `plain`");
    out.stderr_has("`bad header` is not a valid HTTP header name");
    out.stderr_has("`timeout` must be greater than 0");
}

/// An HTTPS Prometheus stand-in (python3's `http.server` behind `ssl`) with a certificate
/// signed by a throwaway CA made with `openssl`. Killed when dropped.
struct TlsMock {
    child: Child,
    url: String,
    ca: std::path::PathBuf,
    _dir: tempfile::TempDir,
}

impl TlsMock {
    fn start() -> TlsMock {
        let dir = tempfile::tempdir().unwrap();
        let d = dir.path();
        crate::tls::authority(d, "ca");
        crate::tls::server_certificate(d, "127.0.0.1", "IP:127.0.0.1");
        let port = free_port();
        let script = format!(
            r#"
import http.server, ssl
class H(http.server.BaseHTTPRequestHandler):
    def do_GET(self):
        body = b'{SCALAR_ZERO}'
        self.send_response(200)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)
    def log_message(self, *a):
        pass
s = http.server.HTTPServer(("127.0.0.1", {port}), H)
c = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
c.load_cert_chain("server.pem", "server.key")
s.socket = c.wrap_socket(s.socket, server_side=True)
s.serve_forever()
"#
        );
        let child = Command::new("python3")
            .args(["-c", &script])
            .current_dir(d)
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .spawn()
            .expect("run python3");
        let start = Instant::now();
        while TcpStream::connect(("127.0.0.1", port)).is_err() {
            assert!(
                start.elapsed() < Duration::from_secs(10),
                "the TLS mock did not start"
            );
            std::thread::sleep(Duration::from_millis(50));
        }
        TlsMock {
            child,
            url: format!("https://127.0.0.1:{port}"),
            ca: d.join("ca.pem"),
            _dir: dir,
        }
    }
}

impl Drop for TlsMock {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

#[test]
fn prometheus_client_trusts_a_custom_ca_file() {
    let server = TlsMock::start();
    let test = Test::new().file("certs/ca.pem", std::fs::read(&server.ca).unwrap());
    test.runbook(&client_runbook(&server.url, "ca_file = \"certs/ca.pem\""))
        .env("PROM_TOKEN", "unused")
        .args(["run", "runbook.toml"])
        .status(0);
    // Without the CA the certificate is not trusted: no usable answer, never a pass.
    Test::new()
        .runbook(&client_runbook(&server.url, "timeout = \"5s\""))
        .env("PROM_TOKEN", "unused")
        .args(["run", "runbook.toml"])
        .status(8)
        .stderr_has("inconclusive");
}

#[test]
fn abort_criterion_stops_a_running_metric_check() {
    let exporter = Exporter::new("app_error_ratio 0.01\napp_up 1\n");
    let prom = Prometheus::start(&exporter);
    let flip = exporter.set_after(
        Duration::from_millis(1500),
        "app_error_ratio 0.9\napp_up 1\n",
    );
    let rb = abort_runbook(&prom.url, "abort").replace(
        "run = \"sleep 30 & echo $! > sleep.pid; wait\"",
        "metric = 'app_up'\ncondition = \">= 1\"\nfor = \"30s\"\nevery = \"500ms\"",
    );
    let start = Instant::now();
    let out = Test::new()
        .runbook(&rb)
        .args(["run", "runbook.toml"])
        .status(6);
    flip.join().unwrap();
    assert!(
        start.elapsed() < Duration::from_secs(10),
        "{:?}",
        start.elapsed()
    );
    out.stderr_has("abort criterion `error rate above 50%` tripped");
    let j = journal(&out.dir);
    let tripped = j.iter().find(|e| e["type"] == "abort_tripped").unwrap();
    assert_eq!(tripped["step"], "soak");
    assert!(!out.dir.join("after-ran").exists());
}

#[test]
fn no_data_and_on_error_policies_are_separate() {
    let broken = mock(
        "500 Internal Server Error",
        r#"{"status":"error","error":"boom"}"#,
        Duration::ZERO,
    );
    let empty = mock(
        "200 OK",
        r#"{"status":"success","data":{"resultType":"vector","result":[]}}"#,
        Duration::ZERO,
    );
    let run = |url: &str, policy: &str, status: i32| {
        Test::new()
            .runbook(&metric_runbook(
                url,
                &format!("metric = 'up'\ncondition = \"< 1\"\n{policy}"),
            ))
            .args(["run", "runbook.toml"])
            .status(status)
    };
    // An HTTP error is not missing data: `no_data` leaves it inconclusive...
    run(&broken, "no_data = \"fail\"", 8).stderr_has("inconclusive");
    // ...`on_error` decides it.
    run(&broken, "on_error = \"fail\"", 6).stderr_has("counted as a failure (on_error = \"fail\")");
    // And the other way round.
    run(&empty, "on_error = \"fail\"", 8).stderr_has("no data");
    run(&empty, "no_data = \"fail\"", 6).stderr_has("counted as a failure (no_data = \"fail\")");
}

/// Each fault has its own policy on the check; it overrides `no_data` or `on_error` for that
/// fault only, and nothing ever passes unless a policy says `pass` for missing data.
#[test]
fn each_fault_has_its_own_policy() {
    let nan = mock(
        "200 OK",
        r#"{"status":"success","data":{"resultType":"vector","result":[{"metric":{},"value":[1700000000,"NaN"]}]}}"#,
        Duration::ZERO,
    );
    let inf = mock(
        "200 OK",
        r#"{"status":"success","data":{"resultType":"vector","result":[{"metric":{},"value":[1700000000,"+Inf"]}]}}"#,
        Duration::ZERO,
    );
    let broken = mock(
        "500 Internal Server Error",
        r#"{"status":"error","error":"boom"}"#,
        Duration::ZERO,
    );
    let slow = mock(
        "200 OK",
        r#"{"status":"success","data":{"resultType":"scalar","result":[1700000000,"0"]}}"#,
        Duration::from_secs(5),
    );
    let malformed = mock("200 OK", r#"{"status":"success","data":"#, Duration::ZERO);
    let run = |url: &str, policy: &str, status: i32| {
        Test::new()
            .runbook(&metric_runbook(
                url,
                &format!("metric = 'up'\ncondition = \"< 1\"\n{policy}"),
            ))
            .args(["run", "runbook.toml"])
            .status(status)
    };
    run(&nan, "on_nan = \"fail\"", 6).stderr_has("counted as a failure (on_nan = \"fail\")");
    run(&nan, "on_nan = \"pass\"", 0);
    run(&nan, "on_inf = \"fail\"", 8);
    run(&inf, "on_inf = \"fail\"", 6).stderr_has("(on_inf = \"fail\")");
    run(&inf, "on_nan = \"fail\"", 8);
    run(&broken, "on_http_error = \"fail\"", 6).stderr_has("(on_http_error = \"fail\")");
    run(&broken, "on_timeout = \"fail\"", 8);
    run(&slow, "timeout = \"1s\"\non_timeout = \"fail\"", 6).stderr_has("(on_timeout = \"fail\")");
    run(&slow, "timeout = \"1s\"\non_http_error = \"fail\"", 8);
    run(&malformed, "on_malformed = \"fail\"", 6).stderr_has("(on_malformed = \"fail\")");
    // A specific policy overrides the general one for its fault only.
    run(
        &broken,
        "on_error = \"fail\"\non_http_error = \"inconclusive\"",
        8,
    );
    // Errors can never pass.
    Test::new()
        .runbook(&metric_runbook(
            &broken,
            "metric = 'up'\ncondition = \"< 1\"\non_http_error = \"pass\"",
        ))
        .args(["validate", "runbook.toml"])
        .status(3)
        .stderr_has("not a valid `on_http_error`");
}

/// An abort criterion that trips while a confirm waits at the terminal ends the question and
/// applies its action, instead of waiting for someone to answer first.
#[test]
fn abort_criterion_ends_an_open_prompt() {
    let exporter = Exporter::new("app_error_ratio 0.01\n");
    let prom = Prometheus::start(&exporter);
    let rb = abort_runbook(&prom.url, "abort").replace(
        "run = \"sleep 30 & echo $! > sleep.pid; wait\"",
        "confirm = \"Promote the canary?\"",
    );
    let test = Test::new().runbook(&rb).args(["run", "runbook.toml"]);
    let mut tty = crate::gates::Tty::run(&test);
    tty.shows("Promote the canary?");
    let start = Instant::now();
    exporter.set("app_error_ratio 0.9\n");
    tty.finishes_with(6);
    assert!(
        start.elapsed() < Duration::from_secs(10),
        "took {:?}",
        start.elapsed()
    );
    let j = journal(test.path());
    assert!(
        j.iter()
            .any(|e| e["type"] == "abort_tripped" && e["step"] == "soak"),
        "{j:?}"
    );
    assert!(!test.path().join("after-ran").exists());
}

/// An abort criterion with `action = "rollback"` that trips while rollout waits for a person
/// (at `step`, a prompt or a countdown) in a real terminal: the person is asked to confirm the
/// rollback, as after a failing step, and can answer.
fn abort_rollback_is_confirmed_at_the_terminal(step: &str, waiting_shows: &str, cut_shows: &str) {
    let exporter = Exporter::new("app_error_ratio 0.01\n");
    let prom = Prometheus::start(&exporter);
    let rb = abort_runbook(&prom.url, "rollback")
        .replace("run = \"sleep 30 & echo $! > sleep.pid; wait\"", step)
        + "\n[[phases.rollback]]\nid = \"undo\"\nrun = \"touch undone\"\n";
    let test = Test::new().runbook(&rb).args(["run", "runbook.toml"]);
    let mut tty = crate::gates::Tty::run(&test);
    tty.shows(waiting_shows);
    exporter.set("app_error_ratio 0.9\n");
    tty.shows(cut_shows)
        .shows("abort criterion `error rate above 50%` tripped")
        .shows("Roll back 1 phase now (canary)?")
        .line("y")
        .shows("rollback complete")
        .finishes_with(10);
    assert!(test.path().join("undone").exists());
    assert!(!test.path().join("after-ran").exists());
    let j = journal(test.path());
    let answered = j
        .iter()
        .find(|e| e["type"] == "gate_answered" && e["step"] == "rollback")
        .expect("the rollback confirmation is recorded");
    assert_eq!(answered["how"], "interactive", "{answered}");
    assert_eq!(answered["outcome"], "passed", "{answered}");
}

#[test]
fn abort_trip_at_a_prompt_asks_to_confirm_the_rollback() {
    abort_rollback_is_confirmed_at_the_terminal(
        "confirm = \"Promote the canary?\"",
        "Promote the canary?",
        "soak failed",
    );
}

#[test]
fn abort_trip_during_a_countdown_asks_to_confirm_the_rollback() {
    abort_rollback_is_confirmed_at_the_terminal("wait = \"60s\"", "left", "soak interrupted");
}

/// A `wait` that an abort criterion cuts short did not wait its time: it is recorded, shown and
/// reported as interrupted, with why, never as `ok`.
#[test]
fn a_wait_cut_short_by_an_abort_criterion_is_recorded_as_interrupted() {
    let exporter = Exporter::new("app_error_ratio 0.01\n");
    let prom = Prometheus::start(&exporter);
    let flip = exporter.set_after(Duration::from_millis(1500), "app_error_ratio 0.9\n");
    let rb = abort_runbook(&prom.url, "pause").replace(
        "run = \"sleep 30 & echo $! > sleep.pid; wait\"",
        "wait = \"60s\"",
    );
    let out = Test::new()
        .runbook(&rb)
        .args(["run", "runbook.toml"])
        .status(8);
    flip.join().unwrap();
    let why = "abort criterion `error rate above 50%` tripped";
    out.stderr_has("<-- step soak interrupted in ")
        .stderr_has("cut short after ")
        .stderr_has(&format!("s of 1m: {why}"));
    assert!(!out.stderr.contains("step soak ok"), "{}", out.stderr);
    let j = journal(&out.dir);
    let finished = j
        .iter()
        .find(|e| e["type"] == "step_finished" && e["step"] == "soak")
        .expect("the wait's result is recorded");
    assert_eq!(finished["status"], "interrupted", "{finished}");
    assert!(
        finished["reason"].as_str().is_some_and(|r| r.contains(why)),
        "{finished}"
    );
    let log = Test::in_dir(&out.dir).args(["log"]).status(0);
    log.stdout_has("interrupted").stdout_has(why);
    let report = Test::in_dir(&out.dir)
        .args(["report", "--format", "json"])
        .status(0)
        .json();
    let soak = report["phases"][0]["steps"]
        .as_array()
        .unwrap()
        .iter()
        .find(|s| s["step"] == "soak")
        .expect("the wait in the report")
        .clone();
    assert_eq!(soak["status"], "interrupted", "{soak}");
    assert!(
        soak["reason"].as_str().is_some_and(|r| r.contains(why)),
        "{soak}"
    );
    Test::in_dir(&out.dir)
        .args(["report", "--format", "md"])
        .status(0)
        .stdout_has("interrupted")
        .stdout_has(why);
    assert!(!out.dir.join("after-ran").exists());
}

/// Ctrl-C abandons an HTTP request in flight at once instead of waiting for its answer.
#[test]
fn ctrl_c_abandons_an_http_request_in_flight() {
    let url = mock("200 OK", "{}", Duration::from_secs(20));
    let rb = format!(
        "[runbook]\nname = \"h\"\n[[phases]]\nid = \"p\"\ntitle = \"P\"\n[[phases.steps]]\nid = \"slow\"\nhttp = \"{url}/\"\ntimeout = \"60s\"\n"
    );
    let test = Test::new().runbook(&rb);
    let mut cmd = test.command();
    cmd.args(["run", "runbook.toml"])
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::piped());
    let child = cmd.spawn().unwrap();
    std::thread::sleep(Duration::from_secs(1));
    let start = Instant::now();
    nix::sys::signal::kill(
        nix::unistd::Pid::from_raw(i32::try_from(child.id()).unwrap()),
        nix::sys::signal::Signal::SIGINT,
    )
    .unwrap();
    let out = crate::harness::wait_bounded(child, Duration::from_secs(15));
    assert_eq!(
        out.status.code(),
        Some(130),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(
        start.elapsed() < Duration::from_secs(3),
        "took {:?}",
        start.elapsed()
    );
}
