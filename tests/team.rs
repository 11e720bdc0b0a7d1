//! Team mode against a real PostgreSQL (tests/pg.rs starts one per test): the run, its journal
//! and its lock in the database; every reader reading it; the lease; the database going away
//! mid-run; a killed holder taken over after its lease; watch; rollback from elsewhere; export
//! and import; the connection's failures. The two-host tests are in `team_hosts`.

use std::path::Path;
use std::process::{Child, Stdio};
use std::time::{Duration, Instant};

use crate::harness::{Test, wait_bounded};
use crate::pg::Postgres;

/// A runbook whose steps write when they start and end (`effects`), with the host's name.
pub fn effects_runbook(name: &str, steps: &[(&str, &str)]) -> String {
    let mut text =
        format!("[runbook]\nname = \"{name}\"\n\n[[phases]]\nid = \"p1\"\ntitle = \"Phase one\"\n");
    for (id, secs) in steps {
        text.push_str(&format!(
            "\n[[phases.steps]]\nid = \"{id}\"\nrun = 'echo \"$(hostname) {id} start $(date +%s.%N)\" >> effects; sleep {secs}; echo \"$(hostname) {id} end $(date +%s.%N)\" >> effects'\n"
        ));
    }
    text
}

pub fn effects(dir: &Path) -> Vec<String> {
    std::fs::read_to_string(dir.join("effects"))
        .unwrap_or_default()
        .lines()
        .map(str::to_string)
        .collect()
}

/// Waits (bounded) until `effects` has a line containing `needle`.
pub fn wait_for_effect(dir: &Path, needle: &str, limit: Duration) {
    let deadline = Instant::now() + limit;
    while !effects(dir).iter().any(|l| l.contains(needle)) {
        assert!(
            Instant::now() < deadline,
            "no `{needle}` in effects within {limit:?}: {:?}",
            effects(dir)
        );
        std::thread::sleep(Duration::from_millis(50));
    }
}

/// Starts rollout in the background in `dir` with `env`.
pub fn spawn(dir: &Path, env: &[(&str, &str)], args: &[&str]) -> Child {
    let mut t = Test::in_dir(dir).args(args.iter().copied());
    for (k, v) in env {
        t = t.env(k, v);
    }
    t.command()
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("spawn rollout")
}

/// The newest run id in the database (waiting, bounded, for one to exist).
pub fn newest_run(dir: &Path, url: &str) -> String {
    let deadline = Instant::now() + Duration::from_secs(20);
    loop {
        let out = Test::in_dir(dir)
            .env("ROLLOUT_STATE", url)
            .args(["runs", "--format", "json"])
            .run();
        if let Ok(serde_json::Value::Array(runs)) = serde_json::from_str(&out.stdout) {
            if let Some(id) = runs.last().and_then(|r| r["run_id"].as_str()) {
                return id.to_string();
            }
        }
        assert!(Instant::now() < deadline, "no run appeared: {}", out.stderr);
        std::thread::sleep(Duration::from_millis(100));
    }
}

fn journal_types(pg: &Postgres, run: &str) -> Vec<String> {
    pg.sql(&format!(
        "SELECT line::jsonb->>'type' FROM rollout_records WHERE run_id = '{run}' ORDER BY seq"
    ))
    .lines()
    .map(str::to_string)
    .collect()
}

#[test]
fn team_mode_keeps_the_run_in_the_database_and_every_reader_reads_it() {
    let pg = Postgres::start();
    let url = pg.url();
    let out = Test::new()
        .runbook(&effects_runbook("shop", &[("a", "0"), ("b", "0")]))
        .env("ROLLOUT_STATE", &url)
        .args(["run", "runbook.toml"])
        .status(0);
    // Nothing in files: the run is the database's.
    assert!(!out.dir.join(".rollout").exists());
    let dir = out.dir.clone();
    let digest = out
        .stderr
        .lines()
        .find_map(|l| l.strip_prefix("audit digest: "))
        .expect("a digest")
        .to_string();
    let run = newest_run(&dir, &url);
    // One row per run, one row per record, the lock released.
    assert_eq!(pg.sql("SELECT count(*) FROM rollout_runs"), "1");
    let types = journal_types(&pg, &run);
    assert_eq!(types.first().map(String::as_str), Some("run_started"));
    assert_eq!(types.last().map(String::as_str), Some("sealed"));
    assert_eq!(
        pg.sql("SELECT value FROM rollout_meta WHERE key = 'schema_version'"),
        "1"
    );
    let with = |args: &[&str]| {
        Test::in_dir(&dir)
            .env("ROLLOUT_STATE", &url)
            .args(args.iter().copied())
    };
    with(&["runs"])
        .status(0)
        .stdout_has(&run)
        .stdout_has("succeeded");
    with(&["status", &run])
        .status(0)
        .stdout_has("succeeded")
        .stdout_has("2 step(s)");
    with(&["log", &run]).status(0).stdout_has("step b ok");
    with(&["audit", "verify", &run])
        .status(0)
        .stdout_has("OK")
        .stdout_has(&digest);
    with(&["report", &run, "--format", "json"])
        .status(0)
        .stdout_has("\"audit\"");
    // The exported journal is the file file mode writes: verified offline, same digest.
    with(&["state", "export", &run, "-o", "exported.ndjson"]).status(0);
    Test::in_dir(&dir)
        .args(["audit", "verify", "exported.ndjson"])
        .status(0)
        .stdout_has(&digest);
    // A record edited in the database is caught by the same verifier.
    pg.sql(&format!(
        "UPDATE rollout_records SET line = replace(line, '\"step\":\"a\"', '\"step\":\"x\"') WHERE run_id = '{run}' AND seq = 5"
    ));
    let tampered = with(&["audit", "verify", &run]).run();
    assert_eq!(tampered.status, 13, "{}", tampered.stdout);
}

#[test]
fn the_database_stopped_mid_run_pauses_the_run_and_resume_continues_after_restart() {
    let mut pg = Postgres::start();
    let url = pg.url();
    let t = Test::new().runbook(&effects_runbook(
        "pay",
        &[("a", "0"), ("b", "1"), ("c", "0")],
    ));
    let dir = t.path().to_path_buf();
    let env = [("ROLLOUT_STATE", url.as_str()), ("ROLLOUT_LEASE", "3s")];
    let child = spawn(&dir, &env, &["run", "runbook.toml", "--grace", "200ms"]);
    wait_for_effect(&dir, "b start", Duration::from_secs(20));
    pg.stop();
    let stopped = Instant::now();
    let out = wait_bounded(child, Duration::from_secs(30));
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(8), "{stderr}");
    // It gave up within its lease (3 s), and said what to do.
    assert!(stopped.elapsed() < Duration::from_secs(6), "{stderr}");
    assert!(stderr.contains("stops as paused"), "{stderr}");
    assert!(stderr.contains("rollout resume"), "{stderr}");
    assert!(!effects(&dir).iter().any(|l| l.contains("c start")));
    pg.restart();
    let run = newest_run(&dir, &url);
    // Step b's result never reached the database: it is in doubt.
    Test::in_dir(&dir)
        .env("ROLLOUT_STATE", &url)
        .args(["status", &run])
        .status(0)
        .stdout_has("in doubt");
    std::thread::sleep(Duration::from_secs(3));
    Test::in_dir(&dir)
        .env("ROLLOUT_STATE", &url)
        .env("ROLLOUT_LEASE", "3s")
        .args(["resume", &run, "--skip-in-doubt", "--grace", "200ms"])
        .status(0);
    assert!(effects(&dir).iter().any(|l| l.contains("c end")));
    Test::in_dir(&dir)
        .env("ROLLOUT_STATE", &url)
        .args(["audit", "verify", &run])
        .status(0)
        .stdout_has("OK");
}

#[test]
fn a_killed_holder_is_taken_over_only_after_its_lease_and_its_step_is_in_doubt() {
    let pg = Postgres::start();
    let url = pg.url();
    let t = Test::new().runbook(&effects_runbook(
        "cart",
        &[("a", "0"), ("b", "1"), ("c", "0")],
    ));
    let dir = t.path().to_path_buf();
    let env = [
        ("ROLLOUT_STATE", url.as_str()),
        ("ROLLOUT_LEASE", "4s"),
        ("ROLLOUT_OPERATOR", "alice"),
    ];
    let mut child = spawn(&dir, &env, &["run", "runbook.toml", "--grace", "200ms"]);
    wait_for_effect(&dir, "b start", Duration::from_secs(20));
    child.kill().unwrap();
    let killed = Instant::now();
    let _ = child.wait();
    let run = newest_run(&dir, &url);
    // Within the lease, the lock is still alice's.
    let refused = Test::in_dir(&dir)
        .env("ROLLOUT_STATE", &url)
        .env("ROLLOUT_OPERATOR", "bob")
        .args(["resume", &run, "--rerun-in-doubt", "--grace", "200ms"])
        .status(12);
    refused
        .stderr_has("is locked by alice")
        .stderr_has("on host");
    assert!(
        killed.elapsed() < Duration::from_secs(4),
        "the test was too slow to see the lease"
    );
    // After it, bob takes the run over: the step in flight is in doubt, and rerun.
    let deadline = killed + Duration::from_secs(4);
    std::thread::sleep(
        deadline.saturating_duration_since(Instant::now()) + Duration::from_millis(200),
    );
    let resumed = Test::in_dir(&dir)
        .env("ROLLOUT_STATE", &url)
        .env("ROLLOUT_OPERATOR", "bob")
        .args(["resume", &run, "--rerun-in-doubt", "--grace", "200ms"])
        .status(0);
    resumed
        .stderr_has("ran out at")
        .stderr_has("taken over (epoch 2)");
    assert!(effects(&dir).iter().any(|l| l.contains("c end")));
    let taken = pg.sql(&format!(
        "SELECT line::jsonb->'who'->>'operator' FROM rollout_records WHERE run_id = '{run}' AND line::jsonb->>'type' = 'lock_acquired' ORDER BY seq"
    ));
    assert_eq!(taken.lines().collect::<Vec<_>>(), ["alice", "bob"]);
    let types = journal_types(&pg, &run);
    assert!(
        types.contains(&"in_doubt_resolved".to_string()),
        "{types:?}"
    );
    Test::in_dir(&dir)
        .env("ROLLOUT_STATE", &url)
        .args(["audit", "verify", &run])
        .status(0);
}

#[test]
fn watch_follows_a_live_run_and_ends_with_it() {
    let pg = Postgres::start();
    let url = pg.url();
    let t = Test::new().runbook(&effects_runbook(
        "feed",
        &[("a", "0.3"), ("b", "0.3"), ("c", "0.3")],
    ));
    let dir = t.path().to_path_buf();
    let env = [("ROLLOUT_STATE", url.as_str())];
    let child = spawn(&dir, &env, &["run", "runbook.toml"]);
    let run = newest_run(&dir, &url);
    let watch = Test::in_dir(&dir)
        .env("ROLLOUT_STATE", &url)
        .args(["watch", &run])
        .within(Duration::from_secs(30))
        .status(0);
    let out = wait_bounded(child, Duration::from_secs(30));
    assert_eq!(out.status.code(), Some(0));
    watch
        .stdout_has("held by")
        .stdout_has("step a ok")
        .stdout_has("step c ok")
        .stdout_has("log sealed");
    // Every record, once each, in order.
    let n: usize = pg
        .sql(&format!(
            "SELECT count(*) FROM rollout_records WHERE run_id = '{run}'"
        ))
        .parse()
        .unwrap();
    assert!(n > 8);
}

#[test]
fn rollback_of_a_run_started_elsewhere_and_locks_and_unlock() {
    let pg = Postgres::start();
    let url = pg.url();
    let rb = "[runbook]\nname = \"inv\"\n\n[[phases]]\nid = \"p1\"\ntitle = \"One\"\n\n[[phases.steps]]\nid = \"deploy\"\nrun = \"echo deployed >> trace\"\n\n[[phases.rollback]]\nid = \"undo\"\nrun = \"echo undone >> trace\"\n";
    let first = Test::new()
        .runbook(rb)
        .env("ROLLOUT_STATE", &url)
        .args(["run", "runbook.toml"])
        .status(0);
    let run = newest_run(&first.dir, &url);
    // Another operator, another directory (the runbook's own copy).
    let other = Test::new()
        .runbook(rb)
        .env("ROLLOUT_STATE", &url)
        .env("ROLLOUT_OPERATOR", "bob")
        .args(["rollback", "runbook.toml", "--run", &run, "--yes"])
        .status(10);
    other.stderr_has("rolling back run");
    assert_eq!(
        std::fs::read_to_string(first.dir.join("trace")).unwrap(),
        "deployed\nundone\n"
    );
    Test::in_dir(&first.dir)
        .env("ROLLOUT_STATE", &url)
        .args(["status", &run])
        .status(0)
        .stdout_has("rolled back");
    Test::in_dir(&first.dir)
        .env("ROLLOUT_STATE", &url)
        .args(["locks"])
        .status(0)
        .stdout_has("free")
        .stdout_has("inv");
    let lock_id = pg.sql("SELECT lock_id FROM rollout_locks");
    Test::in_dir(&first.dir)
        .env("ROLLOUT_STATE", &url)
        .args(["unlock", &lock_id, "--yes"])
        .status(0)
        .stderr_has("ended lock");
    assert_eq!(pg.sql("SELECT count(*) FROM rollout_unlocks"), "1");
}

#[test]
fn import_moves_local_runs_into_the_database_with_their_hashes() {
    let pg = Postgres::start();
    let url = pg.url();
    let local = Test::new()
        .runbook(&effects_runbook("old", &[("a", "0")]))
        .args(["run", "runbook.toml"])
        .status(0);
    let dir = local.dir.clone();
    let digest = local
        .stderr
        .lines()
        .find_map(|l| l.strip_prefix("audit digest: "))
        .unwrap()
        .to_string();
    Test::in_dir(&dir)
        .env("ROLLOUT_STATE", &url)
        .args(["state", "import", ".rollout"])
        .status(0)
        .stderr_has("imported run");
    let run = newest_run(&dir, &url);
    Test::in_dir(&dir)
        .env("ROLLOUT_STATE", &url)
        .args(["audit", "verify", &run])
        .status(0)
        .stdout_has(&digest);
    Test::in_dir(&dir)
        .env("ROLLOUT_STATE", &url)
        .args(["runs"])
        .status(0)
        .stdout_has("succeeded");
    // Twice is refused: the id is taken.
    Test::in_dir(&dir)
        .env("ROLLOUT_STATE", &url)
        .args(["state", "import", ".rollout"])
        .status(2)
        .stderr_has("already");
}

#[test]
fn connection_failures_are_one_line_and_exit_2_without_the_password() {
    let pg = Postgres::start();
    let t = Test::new().runbook(&effects_runbook("x", &[("a", "0")]));
    let dir = t.path().to_path_buf();
    let one_line = |out: &crate::harness::Outcome| {
        assert_eq!(out.stderr.trim_end().lines().count(), 1, "{}", out.stderr);
        assert!(!out.stderr.contains("hunter2") && !out.stderr.contains("wrongpw"));
        assert!(!effects(&dir).iter().any(|l| l.contains("start")));
    };
    let refused = Test::in_dir(&dir)
        .env(
            "ROLLOUT_STATE",
            &format!(
                "postgres://postgres@127.0.0.1:{}/rollout?sslmode=disable",
                pg.port + 1
            ),
        )
        .args(["run", "runbook.toml"])
        .status(2);
    one_line(&refused);
    refused.stderr_has("cannot use the state database");
    let bad_password = Test::in_dir(&dir)
        .env(
            "ROLLOUT_STATE",
            &format!(
                "postgres://secret:wrongpw@127.0.0.1:{}/rollout?sslmode=disable",
                pg.port
            ),
        )
        .args(["run", "runbook.toml"])
        .status(2);
    one_line(&bad_password);
    bad_password.stderr_has("password authentication failed");
    let no_db = Test::in_dir(&dir)
        .env(
            "ROLLOUT_STATE",
            &format!(
                "postgres://postgres@127.0.0.1:{}/nodb?sslmode=disable",
                pg.port
            ),
        )
        .args(["runs"])
        .status(2);
    one_line(&no_db);
    no_db.stderr_has("database \"nodb\" does not exist");
    let not_url = Test::in_dir(&dir)
        .args(["runs", "--state", "somewhere"])
        .status(2);
    not_url.stderr_has("--state-dir somewhere");
    // The server wants TLS it does not have: refused, one line.
    let tls = Test::in_dir(&dir)
        .env(
            "ROLLOUT_STATE",
            &format!(
                "postgres://postgres@127.0.0.1:{}/rollout?sslmode=require",
                pg.port
            ),
        )
        .args(["runs"])
        .status(2);
    one_line(&tls);
    // The password from PGPASSWORD, then from ~/.pgpass (HOME is the test dir).
    let url = format!(
        "postgres://secret@127.0.0.1:{}/rollout?sslmode=disable",
        pg.port
    );
    Test::in_dir(&dir)
        .env("ROLLOUT_STATE", &url)
        .env("PGPASSWORD", "hunter2")
        .args(["runs"])
        .status(0);
    std::fs::write(
        dir.join(".pgpass"),
        format!("127.0.0.1:{}:rollout:secret:hunter2\n", pg.port),
    )
    .unwrap();
    {
        use std::os::unix::fs::PermissionsExt;
        std::fs::set_permissions(dir.join(".pgpass"), std::fs::Permissions::from_mode(0o600))
            .unwrap();
    }
    Test::in_dir(&dir)
        .env("ROLLOUT_STATE", &url)
        .args(["run", "runbook.toml"])
        .status(0);
    // A schema newer than this rollout knows is refused, naming both versions.
    pg.sql("UPDATE rollout_meta SET value = '99' WHERE key = 'schema_version'");
    let newer = Test::in_dir(&dir)
        .env("ROLLOUT_STATE", &pg.url())
        .args(["runs"])
        .status(2);
    newer
        .stderr_has("schema version 99")
        .stderr_has("(version 1)");
}
