//! The three runbooks converted from real plans, rehearsed end to end: each runbook file as
//! committed (the same digest as the one in `runbooks/`) runs with its committed
//! `NAME.rehearsal.toml` vars file, against a real Prometheus scraping values this test serves,
//! with stubs on PATH in place of kubectl and every other tool the runbook calls (each records
//! its argv and environment), every gate answered with the flags rollout names when it stops
//! there. Then a metric breaches mid-phase, the run rolls back, and its audit log verifies.

use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::io::{BufRead, BufReader, Read, Write};
use std::net::{TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use crate::checks::Prometheus;
use crate::harness::{Outcome, Test, journal, repo, run_dirs};

// ---- the world the runbooks talk to ------------------------------------------------------------

/// What a breach turns bad, each from the moment it is set.
#[derive(Default)]
struct Breach {
    /// Seconds since the start when gRPC servers began failing (payments).
    grpc_since: Mutex<Option<f64>>,
    /// Invariant violations appear (batch patches).
    invariants: AtomicBool,
    /// The backend's scrape target is down (platform).
    backend_down: AtomicBool,
}

/// One loopback HTTP server for everything the runbooks reach: the exporters Prometheus scrapes
/// (`/scrape/...`), the service's endpoints (health checks, `ListTransactions`, `/metrics`,
/// Grafana's health) and the notification webhooks, whose posts it keeps.
struct World {
    port: u16,
    /// When the world started: the exporters' counters count from here.
    start: Instant,
    breach: Arc<Breach>,
    posted: Arc<Mutex<Vec<(String, String)>>>,
}

impl World {
    fn start() -> World {
        let listener = TcpListener::bind("127.0.0.1:0").expect("bind the world");
        let port = listener.local_addr().unwrap().port();
        let breach = Arc::new(Breach::default());
        let posted = Arc::new(Mutex::new(Vec::new()));
        let (b, p) = (Arc::clone(&breach), Arc::clone(&posted));
        let start = Instant::now();
        std::thread::spawn(move || {
            for stream in listener.incoming().flatten() {
                let (b, p) = (Arc::clone(&b), Arc::clone(&p));
                std::thread::spawn(move || serve(stream, start, &b, &p));
            }
        });
        World {
            port,
            start,
            breach,
            posted,
        }
    }

    fn url(&self) -> String {
        format!("http://127.0.0.1:{}", self.port)
    }

    /// The webhook posts received on `path`.
    fn posts(&self, path: &str) -> Vec<String> {
        self.posted
            .lock()
            .unwrap()
            .iter()
            .filter(|(p, _)| p == path)
            .map(|(_, b)| b.clone())
            .collect()
    }

    /// A Prometheus scraping this world's exporters every second, once each has been scraped
    /// a few times (so that every rate has samples to work with).
    fn prometheus(&self) -> Prometheus {
        let target = format!("['127.0.0.1:{}']", self.port);
        let job = |name: &str, path: &str, extra: &str| {
            format!(
                "  - job_name: {name}\n    scrape_interval: 500ms\n    honor_labels: true\n    metrics_path: /scrape/{path}\n    static_configs:\n      - targets: {target}\n{extra}"
            )
        };
        let jobs = [
            job(
                "payment-service",
                "payments",
                "        labels:\n          namespace: production\n",
            ),
            job("batch-patches", "batch", ""),
            job("reconciliation-backend", "backend", ""),
            job("platform-exporter", "platform", ""),
        ]
        .concat();
        let prom = Prometheus::scraping(&jobs);
        prom.wait_for("count(count_over_time(up[1m]) >= 2)", "\"4\"]");
        prom
    }
}

fn serve(
    stream: TcpStream,
    start: Instant,
    breach: &Breach,
    posted: &Mutex<Vec<(String, String)>>,
) {
    let mut reader = BufReader::new(stream);
    let mut head = String::new();
    if reader.read_line(&mut head).is_err() {
        return;
    }
    let mut length = 0;
    let mut line = String::new();
    while reader.read_line(&mut line).is_ok_and(|n| n > 0) {
        if line == "\r\n" || line == "\n" {
            break;
        }
        if let Some((k, v)) = line.split_once(':') {
            if k.eq_ignore_ascii_case("content-length") {
                length = v.trim().parse().unwrap_or(0);
            }
        }
        line.clear();
    }
    let mut body = vec![0u8; length];
    let _ = reader.read_exact(&mut body);
    let mut parts = head.split_whitespace();
    let (method, path) = (parts.next().unwrap_or(""), parts.next().unwrap_or(""));
    let t = start.elapsed().as_secs_f64();
    let (status, kind, text) = match (method, path) {
        (_, "/scrape/payments") => ("200 OK", "text/plain", payments(t, breach)),
        (_, "/scrape/batch") => ("200 OK", "text/plain", batch(t, breach)),
        (_, "/scrape/backend") if breach.backend_down.load(Ordering::SeqCst) => {
            ("503 Service Unavailable", "text/plain", "down\n".into())
        }
        (_, "/scrape/backend") => (
            "200 OK",
            "text/plain",
            "reconciliation_build_info 1\n".into(),
        ),
        (_, "/scrape/platform") => ("200 OK", "text/plain", platform(t)),
        ("POST", "/grpc.health.v1.Health/Check") => (
            "200 OK",
            "application/json",
            r#"{"status":"SERVING"}"#.into(),
        ),
        ("POST", "/payment.v1.PaymentService/ListTransactions") => (
            "200 OK",
            "application/json",
            r#"{"transactions":[]}"#.into(),
        ),
        // The API's own metrics (payments greps them) and the monitoring endpoint the batch
        // rollback reads: batch_patches_total keeps moving, as when disabling the flag fails.
        (_, "/metrics") => (
            "200 OK",
            "text/plain",
            format!(
                "connectrpc_requests_total {}\nerror_rate 0\nbatch_patches_total{{result=\"success\"}} {:.0}\n",
                (t * 100.0).floor(),
                t * 1000.0
            ),
        ),
        (_, "/api/health") => ("200 OK", "application/json", r#"{"database":"ok"}"#.into()),
        (_, "/health" | "/") => ("200 OK", "text/plain", "ok\n".into()),
        ("POST", hook) => {
            posted.lock().unwrap().push((
                hook.to_string(),
                String::from_utf8_lossy(&body).into_owned(),
            ));
            ("200 OK", "text/plain", "ok\n".into())
        }
        _ => ("404 Not Found", "text/plain", "not found\n".into()),
    };
    let mut stream = reader.into_inner();
    let _ = write!(
        stream,
        "HTTP/1.1 {status}\r\nContent-Type: {kind}\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{text}",
        text.len()
    );
}

/// Healthy values for every series payments-connectrpc.toml reads, in both namespaces.
fn payments(t: f64, breach: &Breach) -> String {
    let mut o = String::new();
    let grpc_failing = breach
        .grpc_since
        .lock()
        .unwrap()
        .map_or(0.0, |since| 100_000.0 * (t - since).max(0.0));
    for ns in ["staging", "production"] {
        let l = format!("job=\"payment-service\",namespace=\"{ns}\"");
        // rate() divides by its whole range, most of which is before this world started: a
        // large rate keeps the throughput above the runbook's 1000 req/s over [5m].
        let _ = writeln!(
            o,
            "http_requests_total{{{l},code=\"200\"}} {}",
            200_000.0 * t
        );
        let _ = writeln!(o, "http_requests_total{{{l},code=\"500\"}} {}", 20.0 * t);
        for le in ["0.025", "0.05", "0.1", "0.2", "0.5", "+Inf"] {
            let _ = writeln!(
                o,
                "http_request_duration_seconds_bucket{{{l},le=\"{le}\"}} {}",
                200_020.0 * t
            );
        }
        let _ = writeln!(
            o,
            "grpc_server_handled_total{{{l},grpc_code=\"OK\"}} {}",
            500.0 * t
        );
        let failing = if ns == "production" {
            grpc_failing
        } else {
            0.0
        };
        let _ = writeln!(
            o,
            "grpc_server_handled_total{{{l},grpc_code=\"Unavailable\"}} {}",
            0.01 * t + failing
        );
        let _ = writeln!(o, "process_resident_memory_bytes{{{l}}} 500000000");
        let _ = writeln!(o, "http_server_open_connections{{{l}}} 100");
        let _ = writeln!(o, "go_sql_stats_connections_open{{{l}}} 10");
        let _ = writeln!(
            o,
            "pg_up{{namespace=\"{ns}\",job=\"payments-postgres-exporter\"}} 1"
        );
    }
    let dest = "reporter=\"destination\",destination_service_namespace=\"production\"";
    for (service, share) in [
        ("payment-service-connectrpc", 0.05),
        ("payment-service-grpc", 0.95),
    ] {
        let l = format!("{dest},destination_service_name=\"{service}\"");
        let _ = writeln!(
            o,
            "istio_requests_total{{{l},response_code=\"200\"}} {}",
            1000.0 * share * t
        );
        let _ = writeln!(
            o,
            "istio_requests_total{{{l},response_code=\"503\"}} {}",
            0.01 * share * t
        );
        for le in ["10", "25", "+Inf"] {
            let _ = writeln!(
                o,
                "istio_request_duration_milliseconds_bucket{{{l},le=\"{le}\"}} {}",
                1000.0 * share * t
            );
        }
    }
    let p = "namespace=\"production\"";
    let _ = writeln!(
        o,
        "payment_transactions_total{{{p},status=\"success\"}} {}",
        1000.0 * t
    );
    let _ = writeln!(
        o,
        "payment_transactions_total{{{p},status=\"failed\"}} {}",
        0.1 * t
    );
    let c = format!("{p},container=\"payment-service\"");
    let _ = writeln!(o, "container_cpu_usage_seconds_total{{{c}}} {}", 0.2 * t);
    let _ = writeln!(
        o,
        "kube_pod_container_resource_limits{{{c},resource=\"cpu\"}} 1"
    );
    o
}

/// Healthy values for every series batch-patches.toml reads, at its rehearsal baseline.
fn batch(t: f64, breach: &Breach) -> String {
    let l = "job=\"batch-patches\"";
    let mut o = String::new();
    let _ = writeln!(o, "http_requests_total{{{l},code=\"200\"}} {}", 100.0 * t);
    let _ = writeln!(o, "http_requests_total{{{l},code=\"500\"}} {t}");
    for le in ["0.05", "0.1", "0.25", "+Inf"] {
        let _ = writeln!(
            o,
            "http_request_duration_seconds_bucket{{{l},le=\"{le}\"}} {}",
            101.0 * t
        );
    }
    let _ = writeln!(
        o,
        "batch_patches_total{{{l},result=\"success\"}} {}",
        99.0 * t
    );
    let _ = writeln!(o, "batch_patches_total{{{l},result=\"failure\"}} {t}");
    let _ = writeln!(o, "process_resident_memory_bytes{{{l}}} 131072000");
    let _ = writeln!(o, "process_cpu_seconds_total{{{l}}} {}", 0.5 * t);
    let violations = if breach.invariants.load(Ordering::SeqCst) {
        1000
    } else {
        0
    };
    let _ = writeln!(
        o,
        "batch_patch_invariant_violations_total{{{l}}} {violations}"
    );
    o
}

/// Healthy values for every series platform-deploy.toml reads.
fn platform(t: f64) -> String {
    let l = "job=\"reconciliation-backend\"";
    format!(
        "http_requests_total{{{l},status=\"200\"}} {}\nhttp_requests_total{{{l},status=\"500\"}} {}\npg_up{{job=\"postgres\"}} 1\n",
        100.0 * t,
        0.05 * t
    )
}

// ---- stubs -------------------------------------------------------------------------------------

/// One call of a stub: the program, its arguments and its whole environment.
#[derive(Debug)]
struct Call {
    tool: String,
    args: Vec<String>,
    env: BTreeMap<String, String>,
}

impl Call {
    fn line(&self) -> String {
        std::iter::once(self.tool.as_str())
            .chain(self.args.iter().map(String::as_str))
            .collect::<Vec<_>>()
            .join(" ")
    }
}

/// Writes `path` as an executable bash script that records its call in a file of its own in
/// the directory `log` (argv and environment, NUL-separated, byte for byte; named by the time,
/// so that calls sort in order and two at once, as in a pipeline, never mix) and then runs
/// `body`.
fn stub(path: &Path, log: &Path, body: &str) {
    use std::os::unix::fs::PermissionsExt;
    let script = format!(
        "#!/bin/bash\n{{\n  printf 'C%s\\0' \"${{0##*/}}\"\n  for a in \"$@\"; do printf 'A%s\\0' \"$a\"; done\n  env -0 | sed -z 's/^/E/'\n}} > '{}'/\"$(date +%s%N)-$$\"\n{body}\n",
        log.display()
    );
    std::fs::create_dir_all(path.parent().unwrap()).unwrap();
    std::fs::write(path, script).unwrap();
    std::fs::set_permissions(path, std::fs::Permissions::from_mode(0o755)).unwrap();
}

/// The calls recorded in the directory `log`, in order.
fn calls(log: &Path) -> Vec<Call> {
    let mut files: Vec<PathBuf> = std::fs::read_dir(log)
        .map(|d| d.filter_map(Result::ok).map(|e| e.path()).collect())
        .unwrap_or_default();
    files.sort();
    let mut bytes = Vec::new();
    for f in files {
        bytes.extend(std::fs::read(f).unwrap_or_default());
        bytes.push(0);
    }
    let mut out: Vec<Call> = Vec::new();
    for field in bytes.split(|b| *b == 0) {
        let field = String::from_utf8_lossy(field);
        let Some(kind) = field.chars().next() else {
            continue;
        };
        let rest = field[1..].to_string();
        match kind {
            'C' => out.push(Call {
                tool: rest,
                args: Vec::new(),
                env: BTreeMap::new(),
            }),
            'A' => out.last_mut().unwrap().args.push(rest),
            'E' => {
                let (k, v) = rest.split_once('=').unwrap_or((&rest, ""));
                out.last_mut()
                    .unwrap()
                    .env
                    .insert(k.to_string(), v.to_string());
            }
            _ => {}
        }
    }
    out
}

/// Where a real program is, outside the stubs.
fn real(program: &str) -> PathBuf {
    std::env::split_paths(&std::env::var_os("PATH").unwrap())
        .map(|p| p.join(program))
        .find(|p| p.is_file())
        .unwrap_or_else(|| {
            panic!("`{program}` is not on PATH: the rehearsals need it (`.ci/test` installs it)")
        })
}

// ---- a rehearsal -------------------------------------------------------------------------------

/// One rehearsal of `runbooks/NAME.toml`: a directory holding the runbook exactly as committed,
/// its rehearsal vars file, the stubs, and the log they write.
struct Rehearsal {
    name: &'static str,
    dir: PathBuf,
    log: PathBuf,
    env: Vec<(String, String)>,
    _owned: Outcome,
}

impl Rehearsal {
    /// `stubs`: (path relative to the directory, or a bare name for one on PATH; script body).
    fn new(name: &'static str, stubs: &[(&str, &str)]) -> Rehearsal {
        Rehearsal::new_in(Test::new().keep(), name, stubs)
    }

    /// [`Rehearsal::new`] in the directory of `owned`.
    fn new_in(owned: Outcome, name: &'static str, stubs: &[(&str, &str)]) -> Rehearsal {
        let runbooks = repo().join("runbooks");
        let dir = owned.dir.clone();
        for file in [format!("{name}.toml"), format!("{name}.rehearsal.toml")] {
            std::fs::copy(runbooks.join(&file), dir.join(&file)).unwrap();
        }
        let log = dir.join("calls");
        std::fs::create_dir_all(&log).unwrap();
        let bin = dir.join("bin");
        for (path, body) in stubs {
            let at = if path.contains('/') {
                dir.join(path)
            } else {
                bin.join(path)
            };
            stub(&at, &log, body);
        }
        for tool in ["curl", "jq"] {
            stub(
                &bin.join(tool),
                &log,
                &format!("exec '{}' \"$@\"", real(tool).display()),
            );
        }
        let path = format!("{}:{}", bin.display(), std::env::var("PATH").unwrap());
        Rehearsal {
            name,
            dir,
            log,
            env: vec![("PATH".into(), path)],
            _owned: owned,
        }
    }

    fn env(mut self, key: &str, value: &str) -> Self {
        self.env.push((key.into(), value.into()));
        self
    }

    fn runbook(&self) -> String {
        format!("{}.toml", self.name)
    }

    fn calls(&self) -> Vec<Call> {
        calls(&self.log)
    }

    /// The calls of `tool`, each as one line.
    fn lines_of(&self, tool: &str) -> Vec<String> {
        self.calls()
            .iter()
            .filter(|c| c.tool == tool)
            .map(Call::line)
            .collect()
    }

    fn command(&self, args: &[String]) -> Test {
        let mut t = Test::in_dir(&self.dir).within(Duration::from_secs(120));
        for (k, v) in &self.env {
            t = t.env(k, v);
        }
        t.args(args.iter().cloned())
    }

    /// `rollout run` with the rehearsal vars file and `vars`, then, each time the run stops for
    /// someone (a gate, a pause step, a rollback to confirm), `rollout resume` exactly as the
    /// run says to, with a name for each signer it asks for. Returns the last exit code and the
    /// resume commands it was told, in order.
    fn drive(&self, vars: &[String]) -> (i32, Vec<String>) {
        let mut args: Vec<String> = ["run", &self.runbook(), "--vars-file"]
            .iter()
            .map(ToString::to_string)
            .chain([format!("{}.rehearsal.toml", self.name)])
            .chain(vars.iter().flat_map(|v| ["--var".to_string(), v.clone()]))
            .collect();
        let mut told = Vec::new();
        let mut signer = 0;
        let mut last = String::new();
        for _ in 0..200 {
            args.extend(["--output".into(), "json".into()]);
            let out = self.command(&args).run();
            if !matches!(out.status, 7..=9) {
                return (out.status, told);
            }
            last = format!("exit {}\n--- stderr\n{}", out.status, out.stderr);
            let events: Vec<serde_json::Value> = out
                .stdout
                .lines()
                .filter_map(|l| serde_json::from_str(l).ok())
                .collect();
            // Only a gate, a `pause` step or a rollback to confirm may stop a rehearsal: a
            // check that fails or cannot decide is not resumed past.
            let kind = events
                .iter()
                .rev()
                .find(|e| e["event"] == "step_started")
                .and_then(|e| e["kind"].as_str());
            let expected = match out.status {
                7 => matches!(kind, Some("confirm" | "checklist" | "signoff")),
                8 => kind == Some("pause"),
                _ => true,
            };
            assert!(
                expected,
                "the rehearsal of {} stopped (exit {}) at a `{kind:?}` step:\n{}",
                self.name, out.status, out.stdout
            );
            let resume = events
                .iter()
                .filter(|e| e["event"] == "paused")
                .filter_map(|e| e["resume_with"].as_str().map(String::from))
                .next_back()
                .unwrap_or_else(|| {
                    panic!(
                        "exit {} without a resume command\n--- stdout\n{}\n--- stderr\n{}",
                        out.status, out.stdout, out.stderr
                    )
                });
            told.push(resume.clone());
            args = shell_words(&resume)
                .into_iter()
                .skip(1)
                .map(|a| {
                    if a.contains("=NAME:") {
                        signer += 1;
                        a.replace("=NAME:", &format!("=signer-{signer}:"))
                    } else {
                        a
                    }
                })
                .collect();
        }
        panic!(
            "the rehearsal of {} did not end within 200 sessions; the last ones were told {:#?}, the last one ended with {last}",
            self.name,
            &told[told.len().saturating_sub(3)..]
        );
    }

    /// Sets the breach once `tool` has been called with `needle` among its arguments (watched
    /// from another thread while the run goes on), within a minute.
    fn breach_after(
        &self,
        tool: &'static str,
        needle: &'static str,
        set: impl FnOnce() + Send + 'static,
    ) {
        let log = self.log.clone();
        when(
            move || {
                calls(&log)
                    .iter()
                    .any(|c| c.tool == tool && c.args.iter().any(|a| a.contains(needle)))
            },
            set,
        );
    }

    /// Sets the breach once step `step` is under way (a record of it is in the journal: its
    /// start, or a check's first measurement), within a minute.
    fn breach_at(&self, step: &'static str, set: impl FnOnce() + Send + 'static) {
        let dir = self.dir.clone();
        let step = format!("\"step\":\"{step}\"");
        when(
            move || {
                run_dirs(&dir).iter().any(|run| {
                    std::fs::read_to_string(run.join("journal.ndjson"))
                        .unwrap_or_default()
                        .lines()
                        .any(|l| l.contains(&step))
                })
            },
            set,
        );
    }

    /// The latest run's journal.
    fn journal(&self) -> Vec<serde_json::Value> {
        journal(&self.dir)
    }

    fn verify_audit(&self) {
        let id = run_dirs(&self.dir)
            .last()
            .unwrap()
            .file_name()
            .unwrap()
            .to_string_lossy()
            .into_owned();
        self.command(&["audit".into(), "verify".into(), id])
            .status(0)
            .stdout_has("every hash and link intact; sealed");
    }

    /// Every record of the journal names the digest of the runbook as committed.
    fn assert_ran_the_committed_file(&self, records: &[serde_json::Value]) {
        let committed =
            sha256(&std::fs::read(repo().join("runbooks").join(self.runbook())).unwrap());
        assert!(!records.is_empty());
        for r in records {
            assert_eq!(
                r["runbook_digest"].as_str(),
                Some(committed.as_str()),
                "a record of another runbook text: {r}"
            );
        }
    }

    /// A rehearsal without a breach: every step ok, every measurement a pass, every gate
    /// passed, the run finished.
    fn assert_healthy(records: &[serde_json::Value]) {
        for r in records {
            match r["type"].as_str() {
                Some("step_finished") => assert_eq!(r["status"], "ok", "{r}"),
                Some("measurement") => assert_eq!(r["verdict"], "pass", "{r}"),
                Some("gate_answered") => assert_eq!(r["outcome"], "passed", "{r}"),
                Some("abort_tripped" | "rollback_requested") => panic!("{r}"),
                _ => {}
            }
        }
        assert!(
            records
                .iter()
                .any(|r| r["type"] == "run_finished" && r["status"] == "succeeded")
        );
    }
}

/// Runs `then` on another thread once `seen` holds, polling for at most a minute.
fn when(seen: impl Fn() -> bool + Send + 'static, then: impl FnOnce() + Send + 'static) {
    std::thread::spawn(move || {
        let start = Instant::now();
        while start.elapsed() < Duration::from_secs(60) {
            if seen() {
                then();
                return;
            }
            std::thread::sleep(Duration::from_millis(20));
        }
    });
}

fn of_type<'r>(records: &'r [serde_json::Value], ty: &str) -> Vec<&'r serde_json::Value> {
    records.iter().filter(|r| r["type"] == ty).collect()
}

fn sha256(bytes: &[u8]) -> String {
    let mut child = std::process::Command::new("sha256sum")
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::piped())
        .spawn()
        .expect("sha256sum");
    child.stdin.take().unwrap().write_all(bytes).unwrap();
    let out = crate::harness::wait_bounded(child, Duration::from_secs(10));
    let text = String::from_utf8(out.stdout).unwrap();
    format!("sha256:{}", text.split_whitespace().next().unwrap())
}

/// Splits a command line as a POSIX shell would (words, single and double quotes, backslash).
fn shell_words(line: &str) -> Vec<String> {
    let mut words = Vec::new();
    let mut word = String::new();
    let mut in_word = false;
    let mut chars = line.chars();
    while let Some(c) = chars.next() {
        match c {
            '\'' => {
                in_word = true;
                for q in chars.by_ref() {
                    if q == '\'' {
                        break;
                    }
                    word.push(q);
                }
            }
            '"' => {
                in_word = true;
                while let Some(q) = chars.next() {
                    match q {
                        '"' => break,
                        '\\' => word.extend(chars.next()),
                        _ => word.push(q),
                    }
                }
            }
            '\\' => {
                in_word = true;
                word.extend(chars.next());
            }
            c if c.is_whitespace() => {
                if in_word {
                    words.push(std::mem::take(&mut word));
                    in_word = false;
                }
            }
            c => {
                in_word = true;
                word.push(c);
            }
        }
    }
    if in_word {
        words.push(word);
    }
    words
}

/// The runs a rehearsal stopped at, in order, by what they waited for: `approve go`,
/// `check go-no-go`, `signoff review (2)`, `pause`, `yes` (a rollback to confirm).
fn waits(told: &[String]) -> Vec<String> {
    told.iter()
        .map(|cmd| {
            let words = shell_words(cmd);
            let flags: Vec<String> = words
                .iter()
                .enumerate()
                .filter(|(_, w)| w.starts_with("--") && *w != "--state-dir")
                .map(|(i, w)| match w.as_str() {
                    "--yes" => "yes".to_string(),
                    flag => {
                        let value = words.get(i + 1).cloned().unwrap_or_default();
                        let gate = value.split(['=', ':']).next().unwrap_or("").to_string();
                        format!("{} {gate}", flag.trim_start_matches('-'))
                    }
                })
                .collect();
            if flags.is_empty() {
                "pause".into()
            } else {
                let first = flags[0].clone();
                if flags.len() > 1 && flags.iter().all(|f| *f == first) {
                    format!("{first} ({})", flags.len())
                } else {
                    flags.join(", ")
                }
            }
        })
        .collect()
}

// ---- payments-connectrpc -----------------------------------------------------------------------

fn payments_stubs() -> Vec<(&'static str, &'static str)> {
    vec![
        ("kubectl", "echo 'kubectl: ok'"),
        ("podman", "exit 0"),
        ("go", "exit 0"),
        ("grpcurl", "echo '{ \"status\": \"SERVING\" }'"),
    ]
}

fn payments_vars(world: &World, prom: &Prometheus) -> Vec<String> {
    let url = world.url();
    let addr = url.trim_start_matches("http://").to_string();
    vec![
        format!("staging_api_url={url}"),
        format!("api_url={url}"),
        format!("staging_grpc_addr={addr}"),
        format!("api_grpc_addr={addr}"),
        format!("prometheus_url={}", prom.url),
    ]
}

/// `kubectl` as the stubs record it, with the rehearsal's context.
fn kubectl(namespace: &str, args: &str) -> String {
    format!("kubectl --context rehearsal --namespace {namespace} {args}")
}

fn route(connectrpc: u32) -> String {
    format!(
        r#"patch virtualservice payment-service --type merge -p {{"spec":{{"http":[{{"route":[{{"destination":{{"host":"payment-service-connectrpc","port":{{"number":8080}}}},"weight":{connectrpc}}},{{"destination":{{"host":"payment-service-grpc","port":{{"number":8080}}}},"weight":{}}}]}}]}}}}"#,
        100 - connectrpc
    )
}

#[test]
fn payments_connectrpc_rehearses_end_to_end_then_rolls_back_on_a_breach() {
    let world = World::start();
    let prom = world.prometheus();

    // ---- healthy: every phase, every gate, exit 0.
    let r = Rehearsal::new("payments-connectrpc", &payments_stubs());
    let (status, told) = r.drive(&payments_vars(&world, &prom));
    assert_eq!(status, 0, "the rehearsal did not finish: {told:#?}");
    let records = r.journal();
    r.assert_ran_the_committed_file(&records);
    Rehearsal::assert_healthy(&records);
    assert_eq!(
        waits(&told),
        [
            "check test-results",
            "check staging-smoke-ack",
            "check go-no-go",
            "check monitoring-setup",
            "check risk-factors",
            "signoff pre-deployment-review (4)",
            "approve approve-canary",
            "check canary-validated",
            "approve begin-gradual-rollout",
            "check post-success-criteria",
            "check client-communication",
            "check documentation",
            "signoff post-deployment-review (4)",
            "check complete",
        ]
    );
    let image = "payment-service=127.0.0.1:5000/payment-service:connectrpc-v1";
    assert_eq!(
        r.lines_of("kubectl"),
        [
            kubectl(
                "staging",
                &format!("set image deployment/payment-service {image}")
            ),
            kubectl(
                "staging",
                "rollout status deployment/payment-service --timeout=10m"
            ),
            kubectl("production", "apply -f canary-deployment.yaml"),
            kubectl("production", &route(5)),
            kubectl("production", &route(25)),
            kubectl("production", &route(50)),
            kubectl("production", &route(75)),
            kubectl("production", &route(100)),
            kubectl(
                "production",
                &format!("set image deployment/payment-service {image}")
            ),
            kubectl(
                "production",
                "rollout status deployment/payment-service --timeout=10m"
            ),
            kubectl(
                "production",
                "rollout status deployment/payment-service --timeout=5m"
            ),
            kubectl(
                "production",
                "logs deployment/payment-service --since=15m --tail=200"
            ),
            kubectl("production", "top pods"),
        ]
    );
    assert_eq!(
        r.lines_of("podman"),
        [
            "podman build -t payment-service:connectrpc-v1 .",
            "podman tag payment-service:connectrpc-v1 127.0.0.1:5000/payment-service:connectrpc-v1",
            "podman push 127.0.0.1:5000/payment-service:connectrpc-v1",
        ]
    );
    assert_eq!(r.lines_of("go"), ["go vet ./...", "go build ./cmd/server"]);
    let addr = world.url().trim_start_matches("http://").to_string();
    assert_eq!(
        r.lines_of("grpcurl"),
        [
            format!("grpcurl -plaintext {addr} grpc.health.v1.Health/Check"),
            format!("grpcurl {addr} grpc.health.v1.Health/Check"),
        ]
    );
    // Every tool got the run's values in its environment, and kubectl no KUBECONFIG of ours.
    let run_id = records[0]["run"].as_str().unwrap().to_string();
    for call in r.calls() {
        assert_eq!(
            call.env.get("ROLLOUT_RUN_ID"),
            Some(&run_id),
            "{}",
            call.line()
        );
        assert_eq!(
            call.env
                .get("ROLLOUT_VAR_PREVIOUS_IMAGE_TAG")
                .map(String::as_str),
            Some("grpc-gateway-v1"),
            "{}",
            call.line()
        );
        assert_eq!(
            call.env.get("ROLLOUT_VAR_SOAK").map(String::as_str),
            Some("500ms"),
            "{}",
            call.line()
        );
    }
    r.verify_audit();

    // ---- a breach: gRPC clients start failing while 25% of the traffic is on ConnectRPC. The
    // runbook-wide trigger rolls back at once (no confirmation: `confirm_rollback = false`):
    // the rollout's rollback, which covers the canary's, then staging's.
    let b = Rehearsal::new("payments-connectrpc", &payments_stubs());
    let (breach, start) = (Arc::clone(&world.breach), world.start);
    b.breach_after("kubectl", "\"weight\":25", move || {
        *breach.grpc_since.lock().unwrap() = Some(start.elapsed().as_secs_f64());
    });
    let mut vars = payments_vars(&world, &prom);
    vars.push("step_hold=1m".into());
    let (status, told) = b.drive(&vars);
    assert_eq!(
        status, 10,
        "the breach did not roll the run back: {told:#?}"
    );
    let records = b.journal();
    b.assert_ran_the_committed_file(&records);
    let tripped = of_type(&records, "abort_tripped");
    assert_eq!(tripped.len(), 1, "{tripped:?}");
    assert_eq!(tripped[0]["phase"], "rollout");
    assert_eq!(tripped[0]["step"], "hour-1-hold");
    assert!(
        tripped[0]["criterion"]
            .as_str()
            .unwrap()
            .starts_with("gRPC client issues"),
        "{}",
        tripped[0]
    );
    let previous = "payment-service=127.0.0.1:5000/payment-service:grpc-gateway-v1";
    let kubectl_calls = b.lines_of("kubectl");
    let after_breach = kubectl_calls
        .iter()
        .position(|l| l.contains("\"weight\":25"))
        .unwrap();
    assert_eq!(
        kubectl_calls[after_breach + 1..],
        [
            kubectl(
                "production",
                &format!("set image deployment/payment-service {previous}")
            ),
            kubectl(
                "production",
                "rollout status deployment/payment-service --timeout=2m"
            ),
            kubectl("production", &route(0)),
            kubectl(
                "production",
                "scale deployment/payment-service-connectrpc --replicas=0"
            ),
            kubectl(
                "staging",
                &format!("set image deployment/payment-service {previous}")
            ),
            kubectl(
                "staging",
                "rollout status deployment/payment-service --timeout=10m"
            ),
        ]
    );
    let finished = of_type(&records, "rollback_finished");
    assert_eq!(finished[0]["complete"], true);
    assert!(
        finished[0]["undone"]
            .as_array()
            .unwrap()
            .iter()
            .any(|u| u == "canary: covered by the rollback of `rollout`"),
        "{}",
        finished[0]
    );
    b.verify_audit();
}

// ---- batch-patches -----------------------------------------------------------------------------

fn batch_stubs() -> Vec<(&'static str, &'static str)> {
    vec![
        (
            "deploy_tools/disable-feature-flag.sh",
            "echo \"flag $1 disabled\"",
        ),
        ("deploy_tools/restore-snapshot.sh", "echo \"restored $1\""),
        ("systemctl", "exit 0"),
        ("redis-cli", "echo OK"),
    ]
}

fn batch_rehearsal(world: &World) -> Rehearsal {
    Rehearsal::new("batch-patches", &batch_stubs())
        .env(
            "SLACK_ALERTS_CRITICAL_WEBHOOK",
            &format!("{}/slack", world.url()),
        )
        .env("PAGERDUTY_WEBHOOK", &format!("{}/pagerduty", world.url()))
}

fn batch_vars(world: &World, prom: &Prometheus) -> Vec<String> {
    let url = world.url();
    vec![
        format!("prometheus_url={}", prom.url),
        format!("monitoring_metrics_url={url}/metrics"),
        format!("legacy_health_url={url}/health"),
    ]
}

#[test]
fn batch_patches_rehearses_end_to_end_then_rolls_back_each_wave_once_on_a_breach() {
    let world = World::start();
    let prom = world.prometheus();

    // ---- healthy: four waves and the two weeks after, every gate, exit 0.
    let r = batch_rehearsal(&world);
    let (status, told) = r.drive(&batch_vars(&world, &prom));
    assert_eq!(status, 0, "the rehearsal did not finish: {told:#?}");
    let records = r.journal();
    r.assert_ran_the_committed_file(&records);
    Rehearsal::assert_healthy(&records);
    assert_eq!(
        waits(&told),
        [
            "check code-quality",
            "check infrastructure-readiness",
            "check warning-alerts",
            "check team-preparation",
            "check traffic-splitting",
            "signoff stakeholder-approval (3)",
            "check signoff-items",
            "signoff signoff (4)",
            "check wave1-go-checklist",
            "approve wave1-go",
            "approve wave1-enable-flag",
            "approve wave1-synthetic-tests",
            "check wave1-review",
            "check wave2-go-checklist",
            "approve wave2-go",
            "approve wave2-scale-flag",
            "check wave2-review",
            "check wave3-go-checklist",
            "approve wave3-go",
            "approve wave3-scale-flag",
            "check wave3-review",
            "check wave4-go-checklist",
            "approve wave4-go",
            "check wave4-standby",
            "approve wave4-scale-flag",
            "check wave4-review",
            "check post-wave-actions",
            "check rollout-success",
            "check production-readiness",
            "approve production-grade",
            "check tasks-week-1",
            "check tasks-week-2-4",
            "check tasks-ongoing",
        ]
    );
    let skipped: Vec<&str> = of_type(&records, "step_skipped")
        .iter()
        .map(|r| r["step"].as_str().unwrap())
        .collect();
    assert_eq!(skipped, ["legal-approval", "wave3-customer-comms"]);
    // Nothing was changed by a stub, and the only tools called read the Wave 1 error rate.
    let mut calls = r.calls();
    calls.sort_by(|a, b| a.tool.cmp(&b.tool));
    assert_eq!(
        calls.iter().map(|c| c.tool.as_str()).collect::<Vec<_>>(),
        ["curl", "jq"]
    );
    assert_eq!(calls[0].args[0..2], ["-fsS", "--get"]);
    assert_eq!(calls[0].args[2], format!("{}/api/v1/query", prom.url));
    assert_eq!(calls[1].args, ["-er", ".data.result[0].value[1]"]);
    for call in &calls {
        assert_eq!(
            call.env.get("ROLLOUT_VAR_PROM_JOB").map(String::as_str),
            Some("batch-patches")
        );
    }
    assert!(world.posts("/slack").is_empty() && world.posts("/pagerduty").is_empty());
    r.verify_audit();

    // The rollback of the finished run, previewed: Wave 4's rollback once, covering the
    // earlier waves; the full rollback decided by what the flag check will capture, not guessed.
    let preview = r
        .command(&["rollback".into(), r.runbook(), "--dry-run".into()])
        .status(0);
    let text = &preview.stdout;
    assert_eq!(text.matches("disable-feature-flag.sh").count(), 1, "{text}");
    assert_eq!(text.matches("redis-cli FLUSHDB").count(), 1, "{text}");
    for wave in ["wave-3", "wave-2", "wave-1"] {
        assert!(
            text.contains(&format!("roll back {wave}: Wave {}", &wave[5..])),
            "{text}"
        );
    }
    assert_eq!(
        text.matches("covered by the rollback of `wave-4`: its own rollback steps do not run")
            .count(),
        3,
        "{text}"
    );
    preview
        .stdout_has("when wave4_flag_check != 'unchanged' (decided when the step is reached: runs if `wave4_flag_check` is not `unchanged`; `wave4_flag_check` is captured by step `wave4-verify-flag`)")
        .stdout_has("Disabling the flag did not stop batch patches (check: <output of step wave4-verify-flag>).");
    assert!(
        !text.contains("true: runs") && !text.contains("cannot render"),
        "{text}"
    );

    // ---- a breach: invariant violations during Wave 2's monitoring. The runbook-wide critical
    // trigger rolls back at once: Wave 2's rollback, which covers Wave 1's. The counter keeps
    // moving after the flag is disabled, so the full rollback runs, once.
    let b = batch_rehearsal(&world);
    let breach = Arc::clone(&world.breach);
    b.breach_at("wave2-monitor", move || {
        breach.invariants.store(true, Ordering::SeqCst);
    });
    let mut vars = batch_vars(&world, &prom);
    vars.push("wave_soak=1m".into());
    let (status, told) = b.drive(&vars);
    assert_eq!(
        status, 10,
        "the breach did not roll the run back: {told:#?}"
    );
    let records = b.journal();
    b.assert_ran_the_committed_file(&records);
    let tripped = of_type(&records, "abort_tripped");
    assert_eq!(tripped.len(), 1, "{tripped:?}");
    assert_eq!(tripped[0]["phase"], "wave-2");
    assert_eq!(tripped[0]["step"], "wave2-monitor");
    assert_eq!(
        tripped[0]["criterion"],
        "Invariant violations > 10 (Key Metrics critical, per hour)"
    );
    let rollback_waits: Vec<String> = waits(&told)
        .into_iter()
        .skip_while(|w| w != "check wave2-review" && w != "approve wave2-full-confirm")
        .collect();
    assert_eq!(
        rollback_waits,
        ["approve wave2-full-confirm", "check wave2-communication"]
    );
    let changed: Vec<String> = b
        .calls()
        .iter()
        .filter(|c| c.tool != "curl" && c.tool != "jq")
        .map(Call::line)
        .collect();
    assert_eq!(
        changed,
        [
            "disable-feature-flag.sh batch-patches-v1",
            "systemctl stop batch-patches-v1",
            "redis-cli FLUSHDB",
            "restore-snapshot.sh 2026-01-01T00:00:00Z",
        ]
    );
    let monitoring: Vec<String> = b
        .calls()
        .iter()
        .filter(|c| c.tool == "curl" && c.args.contains(&format!("{}/metrics", world.url())))
        .map(Call::line)
        .collect();
    assert_eq!(monitoring.len(), 2, "{monitoring:?}");
    let finished = of_type(&records, "rollback_finished");
    assert_eq!(finished[0]["complete"], true, "{}", finished[0]);
    assert!(
        finished[0]["undone"]
            .as_array()
            .unwrap()
            .iter()
            .any(|u| u == "wave-1: covered by the rollback of `wave-2`"),
        "{}",
        finished[0]
    );
    // #alerts-critical and PagerDuty heard about the trigger and the rollback.
    let slack = world.posts("/slack").join("\n");
    assert!(slack.contains("Invariant violations > 10"), "{slack}");
    assert!(slack.to_lowercase().contains("rollback"), "{slack}");
    let paged: Vec<serde_json::Value> = world
        .posts("/pagerduty")
        .iter()
        .map(|p| serde_json::from_str(p).unwrap())
        .collect();
    assert!(paged.iter().any(|p| p["event"] == "aborted"), "{paged:?}");
    b.verify_audit();
    // The report says which waves Wave 2's rollback covered.
    b.command(&["report".into(), "--format".into(), "md".into()])
        .status(0)
        .stdout_has("- Covered: `` wave-1: covered by the rollback of `wave-2` ``");
}

// ---- platform-deploy ---------------------------------------------------------------------------

const DATABASE_URL: &str = "postgresql://rehearsal:s3cret@127.0.0.1:5432/reconciliation_app";
const REDIS_PASSWORD: &str = "r3dis-s3cret";

/// The stubs of platform-deploy.toml: every script it names (each just succeeds, except
/// `execute-migrations.sh`, which applies two migrations), and the tools it calls, which answer
/// as the runbook's checks expect. `diesel` keeps the applied migrations in `migrations`.
fn platform_stubs(dir: &Path) -> Vec<(String, String)> {
    let text = std::fs::read_to_string(repo().join("runbooks/platform-deploy.toml")).unwrap();
    let mut scripts: Vec<String> = text
        .split(|c: char| c.is_whitespace() || c == '\'')
        .filter(|w| {
            w.starts_with("./scripts/") && Path::new(w).extension().is_some_and(|x| x == "sh")
        })
        .map(|w| w.trim_start_matches("./").to_string())
        .collect();
    scripts.sort();
    scripts.dedup();
    let state = dir.join("migrations").display().to_string();
    let mut stubs: Vec<(String, String)> = scripts
        .into_iter()
        .map(|s| {
            let body = if s.ends_with("/execute-migrations.sh") {
                format!("echo 2026_01_01_000001_create_matches >> '{state}'\necho 2026_01_01_000002_add_indexes >> '{state}'")
            } else {
                "exit 0".to_string()
            };
            (s, body)
        })
        .collect();
    let diesel = format!(
        r#"case "$1 $2" in
  "migration list") echo Migrations:; [ -f '{state}' ] && sed 's/^/  [X] /' '{state}'; echo '  [ ] 2026_02_01_000001_later'; exit 0 ;;
  "migration revert") [ -s '{state}' ] || exit 1; sed -i '$d' '{state}'; echo reverted ;;
  *) exit 2 ;;
esac"#
    );
    for (tool, body) in [
        ("kubectl", "echo 'kubectl: ok'".to_string()),
        ("docker", "exit 0".into()),
        ("cargo", "exit 0".into()),
        ("npm", "exit 0".into()),
        (
            "psql",
            r#"case "$*" in *server_version_num*) echo 150004 ;; *) echo ' PostgreSQL 15.4' ;; esac"#.into(),
        ),
        ("pg_dump", "echo '-- PostgreSQL database dump'".into()),
        ("diesel", diesel),
        ("redis-cli", "echo PONG".into()),
        ("ab", "echo 'Complete requests:      1000'; echo 'Failed requests:        0'".into()),
    ] {
        stubs.push((tool.to_string(), body));
    }
    stubs
}

fn platform_rehearsal() -> Rehearsal {
    // The directory is made first, so that the stubs can keep their state in it.
    let holder = Test::new().keep();
    let stubs = platform_stubs(&holder.dir);
    let refs: Vec<(&str, &str)> = stubs
        .iter()
        .map(|(a, b)| (a.as_str(), b.as_str()))
        .collect();
    let r = Rehearsal::new_in(holder, "platform-deploy", &refs);
    for sub in ["backend", "frontend"] {
        std::fs::create_dir_all(r.dir.join(sub)).unwrap();
    }
    r.env("DATABASE_URL", DATABASE_URL)
        .env("REDIS_PASSWORD", REDIS_PASSWORD)
}

fn platform_vars(world: &World, prom: &Prometheus) -> Vec<String> {
    let url = world.url();
    vec![
        format!("app_url={url}"),
        format!("api_url={url}"),
        format!("grafana_url={url}"),
        format!("prometheus_url={}", prom.url),
    ]
}

#[test]
fn platform_deploy_rehearses_end_to_end_then_rolls_back_on_a_breach() {
    let world = World::start();
    let prom = world.prometheus();

    // ---- healthy: the Kubernetes path with the individual steps, every gate and pause, exit 0.
    let r = platform_rehearsal();
    let (status, told) = r.drive(&platform_vars(&world, &prom));
    assert_eq!(status, 0, "the rehearsal did not finish: {told:#?}");
    let records = r.journal();
    r.assert_ran_the_committed_file(&records);
    Rehearsal::assert_healthy(&records);
    assert_eq!(
        waits(&told),
        [
            "check environment-variables",
            "check database-setup",
            "check infrastructure-checklist",
            "check security",
            "check backup-strategy",
            "check go-live",
            "approve go-live-confirm",
            "check cloud-infrastructure",
            "check postgres-requirements",
            "check redis-requirements",
            "check database-cache",
            "check monitoring-logging",
            "check backend-requirements",
            "check backend-deployment",
            "check frontend-requirements",
            "check frontend-deployment",
            "check integration",
            "check pre-migration",
            "pause",
            "check migration-execution",
            "check post-migration",
            "check ops-monitoring-setup",
            "pause",
            "check ops-performance-optimization",
            "check ops-maintenance-schedule",
        ]
    );
    let k = |args: &str| format!("kubectl --context rehearsal --namespace reconciliation {args}");
    assert_eq!(
        r.lines_of("kubectl"),
        [
            k("apply -f k8s/optimized/base/postgres/"),
            k("apply -f k8s/optimized/base/redis/"),
            k("apply -f k8s/optimized/base/prometheus/"),
            k("apply -f k8s/optimized/base/grafana/"),
            k("apply -f k8s/optimized/base/"),
            k("apply -f k8s/optimized/base/backend/"),
            k("apply -f k8s/optimized/base/frontend/"),
            k("get pods"),
            k("get services"),
        ]
    );
    // The migrations run once, after the backup.
    let order: Vec<String> = r
        .calls()
        .iter()
        .map(Call::line)
        .filter(|l| l.starts_with("pg_dump") || l.contains("execute-migrations"))
        .collect();
    assert_eq!(
        order,
        [
            format!("pg_dump --clean --if-exists --no-owner {DATABASE_URL}"),
            "execute-migrations.sh".to_string(),
        ]
    );
    // Secrets reach the tools that need them, as the runbook passes them.
    for call in r.calls() {
        assert_eq!(
            call.env.get("ROLLOUT_VAR_DATABASE_URL").map(String::as_str),
            Some(DATABASE_URL),
            "{}",
            call.line()
        );
        match call.tool.as_str() {
            "diesel" => assert_eq!(
                call.env.get("DATABASE_URL").map(String::as_str),
                Some(DATABASE_URL)
            ),
            "redis-cli" => {
                assert_eq!(
                    call.env.get("REDISCLI_AUTH").map(String::as_str),
                    Some(REDIS_PASSWORD)
                );
                assert_eq!(call.args, ["-h", "127.0.0.1", "-p", "6379", "PING"]);
            }
            _ => {}
        }
    }
    r.verify_audit();

    // ---- a breach: the backend's scrape target goes down during Day 3's watch of the error
    // rate. The runbook-wide "application failure" trigger asks for a rollback, which waits for
    // a confirmation (exit 9) and runs on `resume --yes`: the database reverts exactly the two
    // migrations this run applied, then the application is rolled back.
    let b = platform_rehearsal();
    let breach = Arc::clone(&world.breach);
    b.breach_at("post-migration-error-rate", move || {
        breach.backend_down.store(true, Ordering::SeqCst);
    });
    let mut vars = platform_vars(&world, &prom);
    vars.push("post_migration_window=1m".into());
    let (status, told) = b.drive(&vars);
    assert_eq!(
        status, 10,
        "the breach did not roll the run back: {told:#?}"
    );
    assert_eq!(waits(&told).last().map(String::as_str), Some("yes"));
    let records = b.journal();
    b.assert_ran_the_committed_file(&records);
    let tripped = of_type(&records, "abort_tripped");
    assert_eq!(tripped.len(), 1, "{tripped:?}");
    assert_eq!(tripped[0]["phase"], "database-migration");
    assert_eq!(tripped[0]["step"], "post-migration-error-rate");
    assert_eq!(
        tripped[0]["criterion"],
        "Application failure: no backend instance up"
    );
    let lines: Vec<String> = b.calls().iter().map(Call::line).collect();
    let diesel: Vec<&String> = lines.iter().filter(|l| l.starts_with("diesel")).collect();
    assert_eq!(
        diesel,
        [
            "diesel migration list",
            "diesel migration list",
            "diesel migration list",
            "diesel migration revert",
            "diesel migration revert",
        ]
    );
    assert!(
        std::fs::read_to_string(b.dir.join("migrations"))
            .unwrap()
            .trim()
            .is_empty()
    );
    let undo = lines
        .iter()
        .position(|l| l.contains("rollout undo"))
        .expect("the application was rolled back");
    assert!(
        undo > lines
            .iter()
            .rposition(|l| l == "diesel migration revert")
            .unwrap()
    );
    assert_eq!(
        lines[undo..],
        [
            k("rollout undo deployment/reconciliation-platform"),
            k("rollout status deployment/reconciliation-platform --timeout=10m"),
        ]
    );
    let finished = of_type(&records, "rollback_finished");
    assert_eq!(finished[0]["complete"], true, "{}", finished[0]);
    b.verify_audit();
}
