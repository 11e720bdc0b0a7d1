//! Team mode against a real `PostgreSQL` (tests/pg.rs starts one per test): the run, its journal
//! and its lock in the database; every reader reading it; the lease; the database going away
//! mid-run; a killed holder taken over after its lease; watch; rollback from elsewhere; export
//! and import; the connection's failures. The two-host tests are in `team_hosts`.

use std::fmt::Write;
use std::os::unix::fs::PermissionsExt;
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
        let _ = write!(
            text,
            "\n[[phases.steps]]\nid = \"{id}\"\nrun = 'echo \"$(hostname) {id} start $(date +%s.%N)\" >> effects; sleep {secs}; echo \"$(hostname) {id} end $(date +%s.%N)\" >> effects'\n"
        );
    }
    text
}

/// The lines of `effects`: what the steps of an `effects_runbook` did, on which host, when.
pub fn effects(dir: &Path) -> Vec<String> {
    crate::harness::lines_of(dir, "effects")
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

/// Tries `attempt` (its exit code, stderr, and what it gives) again and again, 300 ms apart
/// and for at most 40 s, while a lock refuses it (exit 12), showing each refusal's stderr to
/// `refused`; returns what the first attempt that got through gave. Another exit fails.
pub fn until_taken_over<T>(
    mut attempt: impl FnMut() -> (i32, String, T),
    mut refused: impl FnMut(&str),
) -> T {
    let deadline = Instant::now() + Duration::from_secs(40);
    loop {
        let (code, stderr, got) = attempt();
        match code {
            0 => return got,
            12 => {
                refused(&stderr);
                assert!(Instant::now() < deadline, "never taken over: {stderr}");
            }
            other => panic!("resume ended with {other}: {stderr}"),
        }
        std::thread::sleep(Duration::from_millis(300));
    }
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
        "2"
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
    assert!(stopped.elapsed() < Duration::from_secs(20), "{stderr}");
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
        ("ROLLOUT_LEASE", "8s"),
        ("ROLLOUT_OPERATOR", "alice"),
    ];
    let mut child = spawn(&dir, &env, &["run", "runbook.toml", "--grace", "200ms"]);
    wait_for_effect(&dir, "b start", Duration::from_secs(20));
    child.kill().unwrap();
    let _ = child.wait();
    let run = newest_run(&dir, &url);
    let lease_end: f64 = pg
        .sql("SELECT extract(epoch FROM lease_until) FROM rollout_locks")
        .parse()
        .unwrap();
    // Within the lease, the lock is still alice's.
    let refused = Test::in_dir(&dir)
        .env("ROLLOUT_STATE", &url)
        .env("ROLLOUT_OPERATOR", "bob")
        .args(["resume", &run, "--rerun-in-doubt", "--grace", "200ms"])
        .status(12);
    refused
        .stderr_has("is locked by alice")
        .stderr_has("on host");
    // Once it ran out, bob takes the run over (tried again and again, bounded): the step in
    // flight is in doubt, and rerun.
    let resumed = until_taken_over(
        || {
            let out = Test::in_dir(&dir)
                .env("ROLLOUT_STATE", &url)
                .env("ROLLOUT_OPERATOR", "bob")
                .args(["resume", &run, "--rerun-in-doubt", "--grace", "200ms"])
                .run();
            (out.status, out.stderr.clone(), out)
        },
        |_| {},
    );
    // Not before the lease ran out, by the database's clock.
    let taken_at: f64 = pg
        .sql("SELECT extract(epoch FROM acquired_at) FROM rollout_locks")
        .parse()
        .unwrap();
    assert!(
        taken_at >= lease_end,
        "taken at {taken_at}, the lease ended at {lease_end}"
    );
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
    // A long lease: watch must end when the run's session does (its release is notified),
    // not when it next looks at the holder, a lease later.
    let env = [("ROLLOUT_STATE", url.as_str()), ("ROLLOUT_LEASE", "10m")];
    let child = spawn(&dir, &env, &["run", "runbook.toml"]);
    let run = newest_run(&dir, &url);
    let watch = Test::in_dir(&dir)
        .env("ROLLOUT_STATE", &url)
        .env("ROLLOUT_LEASE", "10m")
        .args(["watch", &run])
        .within(Duration::from_secs(60))
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

/// One step and its rollback, each writing to `trace`.
const DEPLOY_AND_UNDO: &str = "[runbook]\nname = \"inv\"\n\n[[phases]]\nid = \"p1\"\ntitle = \"One\"\n\n[[phases.steps]]\nid = \"deploy\"\nrun = \"echo deployed >> trace\"\n\n[[phases.rollback]]\nid = \"undo\"\nrun = \"echo undone >> trace\"\n";

#[test]
fn rollback_of_a_run_started_elsewhere_and_locks_and_unlock() {
    let pg = Postgres::start();
    let url = pg.url();
    let first = Test::new()
        .runbook(DEPLOY_AND_UNDO)
        .env("ROLLOUT_STATE", &url)
        .args(["run", "runbook.toml"])
        .status(0);
    let run = newest_run(&first.dir, &url);
    // Another operator, another directory (the runbook's own copy).
    let other = Test::new()
        .runbook(DEPLOY_AND_UNDO)
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
fn unlock_of_a_held_lease_asks_at_a_terminal_and_needs_yes_without_one() {
    use crate::gates::Tty;
    let pg = Postgres::start();
    let url = pg.url();
    let t = Test::new().runbook(&effects_runbook("held", &[("a", "20")]));
    let dir = t.path().to_path_buf();
    let env = [("ROLLOUT_STATE", url.as_str()), ("ROLLOUT_LEASE", "3s")];
    let holder = spawn(&dir, &env, &["run", "runbook.toml", "--grace", "200ms"]);
    wait_for_effect(&dir, "a start", Duration::from_secs(20));
    let lock_id = pg.sql("SELECT lock_id FROM rollout_locks");
    let unlock = || {
        Test::in_dir(&dir)
            .env("ROLLOUT_STATE", &url)
            .args(["unlock", &lock_id])
    };
    unlock()
        .status(2)
        .stderr_has("error: pass `--yes` to end a held lock without a terminal");
    // At a terminal: a no keeps the lease, a yes ends it.
    let mut tty = Tty::run(&unlock());
    tty.shows("End this lock?").line("n");
    tty.shows("not removed").finishes_with(2);
    assert_eq!(pg.sql("SELECT count(*) FROM rollout_unlocks"), "0");
    let mut tty = Tty::run(&unlock());
    tty.shows("End this lock?").line("y");
    tty.shows(&format!("ended lock {lock_id}")).finishes_with(0);
    assert_eq!(pg.sql("SELECT count(*) FROM rollout_unlocks"), "1");
    // The holder notices it lost the lease and stops (bounded).
    let _ = wait_bounded(holder, Duration::from_secs(30));
}

#[test]
fn rollback_of_a_run_in_the_database_previews_checks_its_to_and_runs_once() {
    let pg = Postgres::start();
    let url = pg.url();
    let first = Test::new()
        .runbook(DEPLOY_AND_UNDO)
        .env("ROLLOUT_STATE", &url)
        .args(["run", "runbook.toml"])
        .status(0);
    let dir = first.dir.clone();
    let run = newest_run(&dir, &url);
    let rollback = |extra: &[&str]| {
        Test::in_dir(&dir)
            .env("ROLLOUT_STATE", &url)
            .args(["rollback", "runbook.toml", "--run", &run])
            .args(extra.iter().copied())
    };
    rollback(&["--dry-run"])
        .status(0)
        .stdout_has("1. roll back p1")
        .stdout_has("echo undone >> trace")
        .stdout_has("nothing was executed");
    rollback(&["--to", "p2", "--yes"])
        .status(2)
        .stderr_has("the runbook has no phase `p2`");
    assert_eq!(crate::harness::trace(&dir), ["deployed"]);
    rollback(&["--yes"]).status(10);
    // Refused at once, its lease given back: nothing runs, the next command is not locked out.
    rollback(&["--yes"]).status(2).stderr_has(&format!(
        "error: run `{run}` was already rolled back completely"
    ));
    rollback(&["--yes"]).status(2);
    assert_eq!(crate::harness::trace(&dir), ["deployed", "undone"]);
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
        std::fs::set_permissions(dir.join(".pgpass"), std::fs::Permissions::from_mode(0o600))
            .unwrap();
    }
    Test::in_dir(&dir)
        .env("ROLLOUT_STATE", &url)
        .args(["run", "runbook.toml"])
        .status(0);
    // A password in the URL is never shown nor recorded.
    let with_password = format!(
        "postgres://secret:hunter2@127.0.0.1:{}/rollout?sslmode=disable",
        pg.port
    );
    let ran = Test::in_dir(&dir)
        .env("ROLLOUT_STATE", &with_password)
        .args(["run", "runbook.toml", "--output", "json"])
        .status(0);
    assert!(
        ran.stdout.contains("postgres://secret:********@127.0.0.1"),
        "{}",
        ran.stdout
    );
    assert!(!ran.stdout.contains("hunter2") && !ran.stderr.contains("hunter2"));
    let status = Test::in_dir(&dir)
        .env("ROLLOUT_STATE", &with_password)
        .args(["status"])
        .status(0);
    assert!(!status.stdout.contains("hunter2"), "{}", status.stdout);
    assert_eq!(
        pg.sql("SELECT count(*) FROM rollout_records WHERE line LIKE '%hunter2%'"),
        "0"
    );
    // A schema newer than this rollout knows is refused, naming both versions.
    pg.sql("UPDATE rollout_meta SET value = '99' WHERE key = 'schema_version'");
    let newer = Test::in_dir(&dir)
        .env("ROLLOUT_STATE", &pg.url())
        .args(["runs"])
        .status(2);
    newer
        .stderr_has("schema version 99")
        .stderr_has("(version 2)");
}

/// Two operators on two hosts (network namespaces, see `pg::Net`), one database.
mod hosts {
    use super::*;
    use crate::pg::Net;

    /// The database in the `db` namespace, listening on both links; the URL each host uses.
    fn setup() -> (Net, Postgres, [String; 2]) {
        let net = Net::new();
        let pg = Postgres::start_in(
            Some(&net.db()),
            &format!("{},{}", net.db_addr(1), net.db_addr(2)),
        );
        let urls = [1, 2].map(|h| {
            format!(
                "postgres://postgres@{}:{}/rollout?sslmode=disable",
                net.db_addr(h),
                pg.port
            )
        });
        (net, pg, urls)
    }

    /// rollout on host `h` (its own host name), in `dir`, with the test environment and `env`.
    fn on_host(
        net: &Net,
        h: u32,
        dir: &Path,
        env: &[(&str, &str)],
        args: &[&str],
    ) -> std::process::Command {
        let mut t = Test::in_dir(dir);
        for (k, v) in env {
            t = t.env(k, v);
        }
        let base = t.command();
        let quoted: Vec<String> = std::iter::once(crate::harness::bin().display().to_string())
            .chain(args.iter().map(|a| (*a).to_string()))
            .map(|a| format!("'{}'", a.replace('\'', "'\\''")))
            .collect();
        let mut cmd = net.on_host(h, &format!("exec {}", quoted.join(" ")));
        cmd.current_dir(dir);
        for (k, v) in base.get_envs() {
            match v {
                Some(v) => cmd.env(k, v),
                None => cmd.env_remove(k),
            };
        }
        cmd.stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped());
        cmd
    }

    fn run_on(
        net: &Net,
        h: u32,
        dir: &Path,
        env: &[(&str, &str)],
        args: &[&str],
    ) -> (i32, String, String) {
        let child = on_host(net, h, dir, env, args).spawn().expect("spawn");
        let out = wait_bounded(child, Duration::from_secs(60));
        (
            out.status.code().unwrap_or(-1),
            String::from_utf8_lossy(&out.stdout).into_owned(),
            String::from_utf8_lossy(&out.stderr).into_owned(),
        )
    }

    /// Each step's (host, step, start, end) from `effects`; a step without an end ends at
    /// `default_end` (when its rollout had exited).
    fn intervals(dir: &Path, default_end: f64) -> Vec<(String, String, f64, f64)> {
        let mut out: Vec<(String, String, f64, f64)> = Vec::new();
        for line in effects(dir) {
            let parts: Vec<&str> = line.split_whitespace().collect();
            let [host, step, what, at] = parts[..] else {
                continue;
            };
            let at: f64 = at.parse().unwrap();
            if what == "start" {
                out.push((host.into(), step.into(), at, default_end));
            } else if let Some(i) = out.iter().rposition(|(h, s, ..)| h == host && s == step) {
                out[i].3 = at;
            }
        }
        out
    }

    fn wall() -> f64 {
        std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .unwrap()
            .as_secs_f64()
    }

    fn assert_no_overlap(list: &[(String, String, f64, f64)]) {
        let mut sorted = list.to_vec();
        sorted.sort_by(|a, b| a.2.total_cmp(&b.2));
        for pair in sorted.windows(2) {
            assert!(
                pair[0].3 <= pair[1].2,
                "steps overlap: {:?} and {:?} (all: {sorted:?})",
                pair[0],
                pair[1]
            );
        }
    }

    #[test]
    fn one_host_runs_the_other_sees_it_is_refused_naming_the_host_and_rolls_it_back() {
        let (net, pg, urls) = setup();
        let rb = effects_runbook("orders", &[("a", "1"), ("b", "1"), ("c", "1")])
            + "\n[[phases.rollback]]\nid = \"undo\"\nrun = 'echo \"$(hostname) undo start $(date +%s.%N)\" >> effects'\n";
        let t = Test::new().runbook(&rb);
        let dir = t.path().to_path_buf();
        let env1 = [
            ("ROLLOUT_STATE", urls[0].as_str()),
            ("ROLLOUT_OPERATOR", "alice"),
        ];
        let env2 = [
            ("ROLLOUT_STATE", urls[1].as_str()),
            ("ROLLOUT_OPERATOR", "bob"),
        ];
        let first = on_host(&net, 1, &dir, &env1, &["run", "runbook.toml"])
            .spawn()
            .unwrap();
        wait_for_effect(&dir, "host1 a start", Duration::from_secs(20));
        let run = pg.sql("SELECT run_id FROM rollout_runs");
        // Host 2 sees it running, held from host 1.
        let (code, runs, _) = run_on(&net, 2, &dir, &env2, &["runs"]);
        assert_eq!(code, 0);
        assert!(runs.contains(&run) && runs.contains("running"), "{runs}");
        let (code, status, _) = run_on(&net, 2, &dir, &env2, &["status", &run]);
        assert_eq!(code, 0);
        assert!(status.contains("alice (root@host1"), "{status}");
        // Its own run of the target is refused, naming the holder's host.
        let (code, _, err) = run_on(&net, 2, &dir, &env2, &["run", "runbook.toml"]);
        assert_eq!(code, 12, "{err}");
        assert!(
            err.contains("locked by alice") && err.contains("on host `host1`"),
            "{err}"
        );
        // watch follows it to its end from host 2.
        let (code, watched, err) = run_on(&net, 2, &dir, &env2, &["watch", &run]);
        assert_eq!(code, 0, "{err}");
        assert!(
            watched.contains("host1") && watched.contains("step c ok"),
            "{watched}"
        );
        assert!(watched.contains("log sealed"), "{watched}");
        let out = wait_bounded(first, Duration::from_secs(30));
        assert_eq!(out.status.code(), Some(0));
        // Host 2 rolls back the run host 1 started.
        let (code, _, err) = run_on(
            &net,
            2,
            &dir,
            &env2,
            &["rollback", "runbook.toml", "--run", &run, "--yes"],
        );
        assert_eq!(code, 10, "{err}");
        assert!(
            effects(&dir)
                .iter()
                .any(|l| l.starts_with("host2 undo start"))
        );
        let hosts = pg.sql(&format!(
            "SELECT line::jsonb->'who'->>'host' FROM rollout_records WHERE run_id = '{run}' AND line::jsonb->>'type' = 'lock_acquired' ORDER BY seq"
        ));
        assert_eq!(hosts.lines().collect::<Vec<_>>(), ["host1", "host2"]);
        let (code, verified, _) = run_on(&net, 2, &dir, &env2, &["audit", "verify", &run]);
        assert_eq!(code, 0, "{verified}");
    }

    #[test]
    fn a_host_cut_off_runs_no_further_step_and_the_other_takes_over_only_after_the_lease() {
        let (net, pg, urls) = setup();
        let steps: Vec<(String, &str)> = (1..=6).map(|i| (format!("s{i}"), "1")).collect();
        let steps: Vec<(&str, &str)> = steps.iter().map(|(s, d)| (s.as_str(), *d)).collect();
        let t = Test::new().runbook(&effects_runbook("ledger", &steps));
        let dir = t.path().to_path_buf();
        let env1 = [("ROLLOUT_STATE", urls[0].as_str()), ("ROLLOUT_LEASE", "5s")];
        let env2 = [("ROLLOUT_STATE", urls[1].as_str()), ("ROLLOUT_LEASE", "5s")];
        let first = on_host(
            &net,
            1,
            &dir,
            &env1,
            &["run", "runbook.toml", "--grace", "200ms"],
        )
        .spawn()
        .unwrap();
        wait_for_effect(&dir, "host1 s2 start", Duration::from_secs(20));
        let run = pg.sql("SELECT run_id FROM rollout_runs");
        let lease_end_at_cut: f64 = pg
            .sql("SELECT extract(epoch FROM lease_until) FROM rollout_locks")
            .parse()
            .unwrap();
        net.cut(1);
        let cut = wall();
        // Host 2 tries again and again (bounded): refused while host 1's lease lasts.
        let mut refusals = 0;
        let took_over = until_taken_over(
            || {
                let at = wall();
                let (code, _, err) = run_on(
                    &net,
                    2,
                    &dir,
                    &env2,
                    &["resume", &run, "--rerun-in-doubt", "--grace", "200ms"],
                );
                (code, err, at)
            },
            |err| {
                assert!(err.contains("on host `host1`"), "{err}");
                refusals += 1;
            },
        );
        let out = wait_bounded(first, Duration::from_secs(30));
        let first_end = wall();
        let err1 = String::from_utf8_lossy(&out.stderr);
        assert_eq!(out.status.code(), Some(8), "{err1}");
        assert!(refusals > 0, "host 2 was never refused");
        // Not before the lease ran out, by the database's clock (a renewal can only have
        // moved its end later).
        let taken_at: f64 = pg
            .sql("SELECT extract(epoch FROM acquired_at) FROM rollout_locks WHERE epoch = 2")
            .parse()
            .unwrap();
        assert!(
            taken_at >= lease_end_at_cut,
            "taken over at {taken_at} (started {took_over}), the lease ended at {lease_end_at_cut}"
        );
        let list = intervals(&dir, first_end);
        // Host 1 started no step after it was cut off.
        assert!(
            !list
                .iter()
                .any(|(h, _, start, _)| h == "host1" && *start > cut),
            "{list:?}"
        );
        assert!(
            list.iter().any(|(h, s, ..)| h == "host2" && s == "s6"),
            "{list:?}"
        );
        assert_no_overlap(&list);
        let (code, verified, _) = run_on(&net, 2, &dir, &env2, &["audit", "verify", &run]);
        assert_eq!(code, 0, "{verified}");
    }

    #[test]
    fn a_holder_killed_on_one_host_is_taken_over_from_the_other_after_its_lease() {
        let (net, pg, urls) = setup();
        // On host 1, step b would run far longer than the lease: only its warden stops it.
        let t = Test::new().runbook(&effects_runbook(
            "stock",
            &[
                ("a", "0"),
                ("b", r#"$(test "$(hostname)" = host1 && echo 60 || echo 1)"#),
                ("c", "0"),
            ],
        ));
        let dir = t.path().to_path_buf();
        let env1 = [("ROLLOUT_STATE", urls[0].as_str()), ("ROLLOUT_LEASE", "6s")];
        let env2 = [("ROLLOUT_STATE", urls[1].as_str()), ("ROLLOUT_LEASE", "6s")];
        let mut first = on_host(
            &net,
            1,
            &dir,
            &env1,
            &["run", "runbook.toml", "--grace", "200ms"],
        )
        .spawn()
        .unwrap();
        wait_for_effect(&dir, "host1 b start", Duration::from_secs(20));
        // `ip netns exec`, `unshare` and `sh -c '... && exec'` all exec: this is rollout.
        first.kill().unwrap();
        let _ = first.wait();
        let run = pg.sql("SELECT run_id FROM rollout_runs");
        // Its warden stops the step, far within the lease: a step without an end line ended by
        // then.
        let deadline = Instant::now() + Duration::from_secs(10);
        while !processes_of_run(&run).is_empty() {
            assert!(
                Instant::now() < deadline,
                "host1's step outlived its rollout: {:?}",
                processes_of_run(&run)
            );
            std::thread::sleep(Duration::from_millis(50));
        }
        let host1_gone = wall();
        let lease_end: f64 = pg
            .sql("SELECT extract(epoch FROM lease_until) FROM rollout_locks")
            .parse()
            .unwrap();
        let args = [
            "resume",
            run.as_str(),
            "--rerun-in-doubt",
            "--grace",
            "200ms",
        ];
        let (code, _, err) = run_on(&net, 2, &dir, &env2, &args);
        assert_eq!(code, 12, "{err}");
        assert!(err.contains("on host `host1`"), "{err}");
        let deadline = Instant::now() + Duration::from_secs(40);
        loop {
            let (code, _, err) = run_on(&net, 2, &dir, &env2, &args);
            match code {
                0 => break,
                12 => assert!(Instant::now() < deadline, "never taken over: {err}"),
                other => panic!("resume on host 2 ended with {other}: {err}"),
            }
            std::thread::sleep(Duration::from_millis(300));
        }
        let taken_at: f64 = pg
            .sql("SELECT extract(epoch FROM acquired_at) FROM rollout_locks")
            .parse()
            .unwrap();
        assert!(
            taken_at >= lease_end,
            "taken at {taken_at}, the lease ended at {lease_end}"
        );
        let list = intervals(&dir, host1_gone);
        assert!(
            list.iter().any(|(h, s, ..)| h == "host2" && s == "b"),
            "{list:?}"
        );
        assert!(
            list.iter().any(|(h, s, ..)| h == "host2" && s == "c"),
            "{list:?}"
        );
        assert_no_overlap(&list);
        let hosts = pg.sql(&format!(
            "SELECT line::jsonb->'who'->>'host' FROM rollout_records WHERE run_id = '{run}' AND line::jsonb->>'type' IN ('lock_acquired', 'in_doubt_resolved') ORDER BY seq"
        ));
        assert_eq!(
            hosts.lines().collect::<Vec<_>>(),
            ["host1", "host2", "host2"]
        );
        let (code, verified, _) = run_on(&net, 2, &dir, &env2, &["audit", "verify", &run]);
        assert_eq!(code, 0, "{verified}");
    }

    #[test]
    fn a_run_waiting_on_one_host_goes_on_when_another_host_delivers_a_signed_approval() {
        use crate::signatures::{approve_args, fingerprint, key, runbook, with_keys};
        use std::io::Read;
        use std::sync::{Arc, Mutex};
        let (net, pg, urls) = setup();
        let t = with_keys(Test::new().runbook(&runbook(1, "")));
        let dir = t.path().to_path_buf();
        // The operator on host 1 holds alice's key; bob approves from host 2 with others' keys.
        let alice_pub = format!("{}.pub", key(&dir, "alice"));
        let env1 = [
            ("ROLLOUT_STATE", urls[0].as_str()),
            ("ROLLOUT_OPERATOR", "ops"),
            ("ROLLOUT_SIGNING_KEY", alice_pub.as_str()),
        ];
        let env2 = [("ROLLOUT_STATE", urls[1].as_str())];
        let mut first = on_host(
            &net,
            1,
            &dir,
            &env1,
            &["run", "runbook.toml", "--wait-for-approvals", "90s"],
        )
        .spawn()
        .unwrap();
        // Its stderr, read as it comes: what the waiting run says about each approval.
        let said = Arc::new(Mutex::new(String::new()));
        let mut pipe = first.stderr.take().unwrap();
        let sink = Arc::clone(&said);
        let reader = std::thread::spawn(move || {
            let mut chunk = [0u8; 4096];
            while let Ok(n) = pipe.read(&mut chunk) {
                if n == 0 {
                    break;
                }
                sink.lock()
                    .unwrap()
                    .push_str(&String::from_utf8_lossy(&chunk[..n]));
            }
        });
        let wait_for_said = |needle: &str| {
            let deadline = Instant::now() + Duration::from_secs(30);
            while !said.lock().unwrap().contains(needle) {
                assert!(
                    Instant::now() < deadline,
                    "host 1 never said `{needle}`: {}",
                    said.lock().unwrap()
                );
                std::thread::sleep(Duration::from_millis(50));
            }
        };
        wait_for_said("(`--wait-for-approvals`)");
        let run = pg.sql("SELECT run_id FROM rollout_runs");
        let approve = |who: &str| {
            let args = approve_args(&dir, &run, who, "QA");
            let args: Vec<&str> = args.iter().map(String::as_str).collect();
            run_on(&net, 2, &dir, &env2, &args)
        };
        // Signed from host 2 with the operator's own key: delivered, and refused at the gate.
        let (code, _, err) = approve("alice");
        assert_eq!(code, 0, "{err}");
        assert!(err.contains("delivered to run"), "{err}");
        wait_for_said("the operator of this run holds that key");
        assert!(
            first.try_wait().unwrap().is_none(),
            "{}",
            said.lock().unwrap()
        );
        assert_eq!(crate::harness::trace(&dir), ["before"]);
        // Signed from host 2 by carol: the run on host 1 goes on by itself.
        let (code, _, err) = approve("carol");
        assert_eq!(code, 0, "{err}");
        let out = wait_bounded(first, Duration::from_secs(60));
        let deadline = Instant::now() + Duration::from_secs(10);
        while !reader.is_finished() && Instant::now() < deadline {
            std::thread::sleep(Duration::from_millis(20));
        }
        let said = said.lock().unwrap().clone();
        assert_eq!(out.status.code(), Some(0), "{said}");
        assert!(said.contains("signed by carol (QA)"), "{said}");
        assert_eq!(crate::harness::trace(&dir), ["before", "after"]);
        // Host 2 sees who signed, with the key.
        let (code, status, err) = run_on(&net, 2, &dir, &env2, &["status", &run]);
        assert_eq!(code, 0, "{err}");
        assert!(
            status.contains(&format!(
                "`go` as QA: by carol with key {}",
                fingerprint(&dir, "carol")
            )) && status.contains("passed at")
                && status.contains("signed by carol (QA) (signed with their SSH keys, verified"),
            "{status}"
        );
        // The operator's own approval is listed as one that does not count, not like carol's.
        let alice_line = status
            .lines()
            .find(|l| l.contains(&format!("by alice with key {}", fingerprint(&dir, "alice"))))
            .unwrap_or_else(|| panic!("no line for alice's approval: {status}"));
        assert!(
            alice_line.contains("does not count: the key of an operator of this run"),
            "{status}"
        );
        let carol_line = status
            .lines()
            .find(|l| l.contains("by carol with key"))
            .unwrap();
        assert!(
            carol_line.contains("counts once the gate has checked it in full"),
            "{status}"
        );
        // The journal names carol's principal and key; the audit re-verifies it.
        let answered: serde_json::Value = serde_json::from_str(&pg.sql(&format!(
            "SELECT line FROM rollout_records WHERE run_id = '{run}' AND line::jsonb->>'type' = 'gate_answered' ORDER BY seq DESC LIMIT 1"
        )))
        .unwrap();
        let answers = answered["answers"].as_array().unwrap();
        assert_eq!(answers.len(), 1, "{answered}");
        assert_eq!(answers[0]["how"], "signed");
        assert_eq!(answers[0]["signed"]["principal"], "carol");
        assert_eq!(
            answers[0]["signed"]["fingerprint"],
            fingerprint(&dir, "carol").as_str()
        );
        let (code, verified, err) = run_on(&net, 2, &dir, &env2, &["audit", "verify", &run]);
        assert_eq!(code, 0, "{verified}{err}");
    }

    #[test]
    fn eight_concurrent_runs_over_both_hosts_exactly_one_proceeds() {
        let (net, _pg, urls) = setup();
        let t = Test::new().runbook(&effects_runbook("race", &[("only", "5")]));
        let dir = t.path().to_path_buf();
        let children: Vec<Child> = (0..8)
            .map(|i| {
                let h = 1 + (i % 2);
                let env = [("ROLLOUT_STATE", urls[(h - 1) as usize].as_str())];
                on_host(&net, h, &dir, &env, &["run", "runbook.toml"])
                    .spawn()
                    .unwrap()
            })
            .collect();
        let results: Vec<(Option<i32>, String)> = children
            .into_iter()
            .map(|c| {
                let out = wait_bounded(c, Duration::from_secs(60));
                (
                    out.status.code(),
                    String::from_utf8_lossy(&out.stderr).into_owned(),
                )
            })
            .collect();
        let ok = results.iter().filter(|(c, _)| *c == Some(0)).count();
        let refused: Vec<&String> = results
            .iter()
            .filter(|(c, _)| *c == Some(12))
            .map(|(_, e)| e)
            .collect();
        assert_eq!(ok, 1, "{results:?}");
        assert_eq!(refused.len(), 7, "{results:?}");
        assert!(
            refused.iter().all(|e| e.contains("on host `host")),
            "{refused:?}"
        );
        assert_eq!(
            effects(&dir).iter().filter(|l| l.contains("start")).count(),
            1
        );
    }
}

#[test]
fn resume_seals_a_finished_run_whose_holder_died_before_its_seal() {
    let pg = Postgres::start();
    let url = pg.url();
    let out = Test::new()
        .runbook(&effects_runbook("seal", &[("a", "0")]))
        .env("ROLLOUT_STATE", &url)
        .args(["run", "runbook.toml"])
        .status(0);
    let run = newest_run(&out.dir, &url);
    // As if rollout died right after the run's last record: what followed never committed.
    pg.sql(&format!(
        "DELETE FROM rollout_records WHERE run_id = '{run}' AND seq > (SELECT seq FROM rollout_records WHERE run_id = '{run}' AND line::jsonb->>'type' = 'run_finished')"
    ));
    Test::in_dir(&out.dir)
        .env("ROLLOUT_STATE", &url)
        .args(["resume", &run])
        .status(0)
        .stderr_has("sealed it now");
    Test::in_dir(&out.dir)
        .env("ROLLOUT_STATE", &url)
        .args(["audit", "verify", &run])
        .status(0)
        .stdout_has("OK");
}

/// Makes a throwaway CA and a server certificate for `db.test` (not for 127.0.0.1) in `dir`,
/// owned by `postgres`; returns the server's TLS settings. A second CA (`other-ca.pem`) signs
/// nothing of the server's.
fn tls_files(dir: &Path) -> Vec<String> {
    for ca in ["ca", "other-ca"] {
        crate::tls::authority(dir, ca);
    }
    crate::tls::server_certificate(dir, "db.test", "DNS:db.test");
    for f in ["server.key", "server.pem"] {
        crate::pg::give_to_postgres(&dir.join(f));
        std::fs::set_permissions(dir.join(f), std::fs::Permissions::from_mode(0o600)).unwrap();
    }
    vec![
        "ssl=on".into(),
        format!("ssl_cert_file={}", dir.join("server.pem").display()),
        format!("ssl_key_file={}", dir.join("server.key").display()),
    ]
}

#[test]
fn tls_modes_check_the_server_as_libpq_does() {
    let mut ca_dir = std::path::PathBuf::new();
    let pg = Postgres::start_with(None, "127.0.0.1", |dir| {
        ca_dir = dir.to_path_buf();
        tls_files(dir)
    });
    let t = Test::new();
    let dir = t.path().to_path_buf();
    let url = |mode: &str, root: &str| {
        format!(
            "postgres://postgres@127.0.0.1:{}/rollout?sslmode={mode}{root}",
            pg.port
        )
    };
    let ca = format!("&sslrootcert={}", ca_dir.join("ca.pem").display());
    let other = format!("&sslrootcert={}", ca_dir.join("other-ca.pem").display());
    let runs = |url: String| {
        Test::in_dir(&dir)
            .env("ROLLOUT_STATE", &url)
            .args(["runs"])
            .run()
    };
    // Encrypted without checking the certificate, as libpq's `require` without a root.
    assert_eq!(runs(url("require", "")).status, 0);
    // The chain checked, the name not: the certificate is for db.test.
    assert_eq!(runs(url("verify-ca", &ca)).status, 0);
    // The name checked too: 127.0.0.1 is not db.test.
    let name = runs(url("verify-full", &ca));
    assert_eq!(name.status, 2, "{}", name.stderr);
    assert_eq!(name.stderr.trim_end().lines().count(), 1, "{}", name.stderr);
    assert!(name.stderr.contains("certificate"), "{}", name.stderr);
    // Another authority: refused even without the name check.
    let wrong = runs(url("verify-ca", &other));
    assert_eq!(wrong.status, 2, "{}", wrong.stderr);
    assert!(wrong.stderr.contains("certificate"), "{}", wrong.stderr);
    // PGSSLROOTCERT names the root when the URL does not.
    let via_env = Test::in_dir(&dir)
        .env("ROLLOUT_STATE", &url("verify-ca", ""))
        .env(
            "PGSSLROOTCERT",
            &ca_dir.join("ca.pem").display().to_string(),
        )
        .args(["runs"])
        .run();
    assert_eq!(via_env.status, 0, "{}", via_env.stderr);
    // verify-full without any root certificate says what to give.
    Test::in_dir(&dir)
        .env("ROLLOUT_STATE", &url("verify-full", ""))
        .args(["runs"])
        .status(2)
        .stderr_has("PGSSLROOTCERT");
}

#[test]
fn a_run_refused_before_it_began_gives_the_lock_back() {
    let pg = Postgres::start();
    let url = pg.url();
    let t = Test::new().runbook(&effects_runbook("flags", &[("a", "0")]));
    let dir = t.path().to_path_buf();
    Test::in_dir(&dir)
        .env("ROLLOUT_STATE", &url)
        .args(["run", "runbook.toml", "--approve", "no-such-gate"])
        .status(2)
        .stderr_has("no-such-gate");
    // At once, not a lease (30 s) later.
    Test::in_dir(&dir)
        .env("ROLLOUT_STATE", &url)
        .args(["run", "runbook.toml"])
        .status(0);
    assert_eq!(
        pg.sql("SELECT count(*) FROM rollout_locks WHERE released_at IS NULL"),
        "0"
    );
}

#[test]
fn resume_where_the_runbook_is_not_uses_the_stored_copy_or_the_one_given() {
    let pg = Postgres::start();
    let url = pg.url();
    let rb = "[runbook]\nname = \"away\"\n\n[[phases]]\nid = \"p1\"\ntitle = \"One\"\n\n[[phases.steps]]\nid = \"a\"\nrun = \"echo a >> trace\"\n\n[[phases.steps]]\nid = \"hold\"\npause = \"look at the dashboards\"\n\n[[phases.steps]]\nid = \"b\"\nrun = \"echo b >> trace\"\n";
    let first = Test::new()
        .runbook(rb)
        .env("ROLLOUT_STATE", &url)
        .args(["run", "runbook.toml"])
        .status(8);
    let run = newest_run(&first.dir, &url);
    // Another machine: the run's file is not there.
    let elsewhere = Test::new();
    let dir = elsewhere.path().to_path_buf();
    std::fs::remove_file(first.dir.join("runbook.toml")).unwrap();
    // A different runbook given is refused as changed.
    std::fs::write(dir.join("mine.toml"), rb.replace("echo b", "echo c")).unwrap();
    Test::in_dir(&dir)
        .env("ROLLOUT_STATE", &url)
        .args(["resume", &run, "--runbook", "mine.toml"])
        .status(2)
        .stderr_has("changed since run");
    // Without one, the copy stored with the run; its steps run here.
    Test::in_dir(&dir)
        .env("ROLLOUT_STATE", &url)
        .args(["resume", &run])
        .status(0)
        .stderr_has("using the copy stored with run");
    assert_eq!(std::fs::read_to_string(dir.join("trace")).unwrap(), "b\n");
    // The copy is gone afterwards.
    let left: Vec<_> = std::fs::read_dir(&dir)
        .unwrap()
        .filter_map(Result::ok)
        .filter(|e| {
            e.file_name()
                .to_string_lossy()
                .starts_with(".rollout-runbook-")
        })
        .collect();
    assert!(left.is_empty());
    // In file mode, --runbook is refused.
    Test::in_dir(&dir)
        .args(["resume", "--runbook", "mine.toml"])
        .status(2)
        .stderr_has("team mode");
}

#[test]
fn the_user_config_names_the_database_and_the_flag_wins() {
    let pg = Postgres::start();
    let t = Test::new()
        .runbook(&effects_runbook("conf", &[("a", "0")]))
        .file(
            ".config/rollout/config.toml",
            format!("state = \"{}\"\nlease = \"20s\"\n", pg.url()),
        );
    let dir = t.path().to_path_buf();
    // HOME is the test directory: the config puts the run in the database.
    Test::in_dir(&dir).args(["run", "runbook.toml"]).status(0);
    assert!(!dir.join(".rollout").exists());
    assert_eq!(pg.sql("SELECT count(*) FROM rollout_runs"), "1");
    // `--state file:DIR` keeps a run in files instead.
    Test::in_dir(&dir)
        .args(["run", "runbook.toml", "--state", "file:local"])
        .status(0);
    assert!(dir.join("local/runs").is_dir());
    assert_eq!(pg.sql("SELECT count(*) FROM rollout_runs"), "1");
    // A `state` that is not a PostgreSQL URL is located in the config.
    std::fs::write(
        dir.join(".config/rollout/config.toml"),
        "state = \"/srv/runs\"\n",
    )
    .unwrap();
    Test::in_dir(&dir)
        .args(["runs"])
        .status(2)
        .stderr_has("config.toml:1:9");
}

#[test]
fn taking_over_on_the_same_machine_stops_what_the_killed_holder_left_running() {
    let pg = Postgres::start();
    let url = pg.url();
    let t = Test::new().runbook(&effects_runbook(
        "long",
        &[("a", "0"), ("b", "60"), ("c", "0")],
    ));
    let dir = t.path().to_path_buf();
    let env = [("ROLLOUT_STATE", url.as_str()), ("ROLLOUT_LEASE", "4s")];
    let mut child = spawn(&dir, &env, &["run", "runbook.toml", "--grace", "200ms"]);
    wait_for_effect(&dir, "b start", Duration::from_secs(20));
    // Its warden is killed with it (`pkill -9 rollout`), so that nothing stops step b but the
    // next holder.
    let warden = wardens_of(child.id())[0];
    child.kill().unwrap();
    kill_9(warden);
    let _ = child.wait();
    let run = newest_run(&dir, &url);
    // Step b's `sleep 60` runs on without its rollout.
    let deadline = Instant::now() + Duration::from_secs(40);
    let resumed = loop {
        let out = Test::in_dir(&dir)
            .env("ROLLOUT_STATE", &url)
            .env("ROLLOUT_LEASE", "4s")
            .args(["resume", &run, "--skip-in-doubt", "--grace", "200ms"])
            .run();
        match out.status {
            0 => break out,
            12 => assert!(
                Instant::now() < deadline,
                "never taken over: {}",
                out.stderr
            ),
            other => panic!("resume ended with {other}: {}", out.stderr),
        }
        std::thread::sleep(Duration::from_millis(300));
    };
    resumed.stderr_has("died while processes of its steps ran");
    let types = journal_types(&pg, &run);
    assert!(
        types.contains(&"leftovers_stopped".to_string()),
        "{types:?}"
    );
    // The old step was stopped before the new holder's first step: c starts after b's
    // processes are gone, and b never ended on its own.
    assert!(effects(&dir).iter().any(|l| l.contains("c end")));
    assert!(
        !effects(&dir).iter().any(|l| l.contains("b end")),
        "{:?}",
        effects(&dir)
    );
}

#[test]
fn signed_approvals_are_delivered_to_a_run_in_the_database() {
    use crate::signatures::{approve_args, runbook, with_keys};
    let pg = Postgres::start();
    let url = pg.url();
    let t = with_keys(Test::new().runbook(&runbook(1, "")));
    let dir = t.path().to_path_buf();
    Test::in_dir(&dir)
        .env("ROLLOUT_STATE", &url)
        .args(["run", "runbook.toml"])
        .status(7)
        .stderr_has("--gate go");
    let run = newest_run(&dir, &url);
    // Approved from anywhere with the same --state: into the database, not a run directory.
    Test::in_dir(&dir)
        .env("ROLLOUT_STATE", &url)
        .args(approve_args(&dir, &run, "alice", "QA"))
        .status(0)
        .stderr_has("delivered to run");
    assert_eq!(pg.sql("SELECT count(*) FROM rollout_approvals"), "1");
    assert!(!dir.join(".rollout").exists());
    Test::in_dir(&dir)
        .env("ROLLOUT_STATE", &url)
        .args(["status", &run])
        .status(0)
        .stdout_has("signed    `go` as QA: by alice");
    // The gate counts it.
    Test::in_dir(&dir)
        .env("ROLLOUT_STATE", &url)
        .args(["resume", &run])
        .status(0);
    assert_eq!(
        std::fs::read_to_string(dir.join("trace")).unwrap(),
        "before\nafter\n"
    );
    Test::in_dir(&dir)
        .env("ROLLOUT_STATE", &url)
        .args(["audit", "verify", &run])
        .status(0);
}

/// `/proc/<pid>/stat` as (name, state, parent, process group); `None` once it is gone.
fn stat_of(pid: i32) -> Option<(String, String, i32, i32)> {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    // The name is in parentheses, and may hold anything.
    let name = stat[stat.find('(')? + 1..stat.rfind(')')?].to_string();
    let fields: Vec<&str> = stat[stat.rfind(')')? + 2..].split_whitespace().collect();
    Some((
        name,
        (*fields.first()?).to_string(),
        fields.get(1)?.parse().ok()?,
        fields.get(2)?.parse().ok()?,
    ))
}

fn all_pids() -> Vec<i32> {
    std::fs::read_dir("/proc")
        .into_iter()
        .flatten()
        .flatten()
        .filter_map(|e| e.file_name().to_str()?.parse::<i32>().ok())
        .collect()
}

/// Whether process `pid` runs (is neither gone nor a zombie).
fn alive(pid: i32) -> bool {
    stat_of(pid).is_some_and(|(_, state, ..)| state != "Z")
}

/// The live processes of process group `group`.
fn members_of(group: i32) -> Vec<i32> {
    all_pids()
        .into_iter()
        .filter(|&pid| alive(pid) && stat_of(pid).is_some_and(|s| s.3 == group))
        .collect()
}

/// The wardens rollout process `pid` started (its children named `rollout-warden`).
fn wardens_of(pid: u32) -> Vec<i32> {
    let pid = i32::try_from(pid).unwrap();
    all_pids()
        .into_iter()
        .filter(|&p| {
            stat_of(p).is_some_and(|(name, _, parent, _)| parent == pid && name == "rollout-warden")
        })
        .collect()
}

fn kill_9(pid: i32) {
    let _ = std::process::Command::new("kill")
        .args(["-9", &pid.to_string()])
        .status();
}

/// Reads a pid a step wrote to `file` in `dir`, waiting for it (bounded).
fn pid_in(dir: &Path, file: &str) -> i32 {
    let deadline = Instant::now() + Duration::from_secs(20);
    loop {
        if let Some(pid) = std::fs::read_to_string(dir.join(file))
            .ok()
            .and_then(|p| p.trim().parse().ok())
        {
            return pid;
        }
        assert!(Instant::now() < deadline, "no pid in `{file}`");
        std::thread::sleep(Duration::from_millis(50));
    }
}

/// The live processes whose environment names run `run` (a step's, under any holder).
fn processes_of_run(run: &str) -> Vec<i32> {
    let needle = format!("ROLLOUT_RUN_ID={run}\0");
    all_pids()
        .into_iter()
        .filter(|&pid| {
            alive(pid)
                && std::fs::read(format!("/proc/{pid}/environ"))
                    .is_ok_and(|env| env.windows(needle.len()).any(|w| w == needle.as_bytes()))
        })
        .collect()
}

/// A step that leaves, besides its shell's `sleep`, a process in its group that cleared its
/// environment (found by its group), and one moved out of its group (found by its tag).
const SCATTERED_STEP: &str = "[runbook]\nname = \"long\"\n\n[[phases]]\nid = \"p1\"\ntitle = \"One\"\n\n\
     [[phases.steps]]\nid = \"long\"\nrun = 'env -i sleep 300 & echo $! > bare.pid; setsid sleep 300 & echo $! > escaped.pid; echo $$ > step.pid; sleep 300; echo done > ended'\n";

#[test]
fn a_holder_killed_with_sigkill_has_its_steps_stopped_by_its_warden() {
    let pg = Postgres::start();
    let url = pg.url();
    let t = Test::new().runbook(SCATTERED_STEP);
    let dir = t.path().to_path_buf();
    let env = [("ROLLOUT_STATE", url.as_str()), ("ROLLOUT_LEASE", "30s")];
    let mut child = spawn(&dir, &env, &["run", "runbook.toml", "--grace", "200ms"]);
    let shell = pid_in(&dir, "step.pid");
    let (bare, escaped) = (pid_in(&dir, "bare.pid"), pid_in(&dir, "escaped.pid"));
    let group = stat_of(shell).unwrap().3;
    // The shell's own `sleep` is started: the group holds the shell, it and the bare sleep.
    let deadline = Instant::now() + Duration::from_secs(20);
    while members_of(group).len() < 3 {
        assert!(
            Instant::now() < deadline,
            "the step never started its sleep"
        );
        std::thread::sleep(Duration::from_millis(50));
    }
    assert_ne!(stat_of(escaped).unwrap().3, group);
    let wardens = wardens_of(child.id());
    assert_eq!(wardens.len(), 1, "one warden per session: {wardens:?}");
    child.kill().unwrap();
    let _ = child.wait();
    // Far within the lease (30s), nothing of the step is left, and the warden is gone too.
    let left = || {
        let mut left = members_of(group);
        left.extend(
            [bare, escaped, wardens[0]]
                .into_iter()
                .filter(|&p| alive(p)),
        );
        left
    };
    let deadline = Instant::now() + Duration::from_secs(10);
    while !left().is_empty() {
        assert!(
            Instant::now() < deadline,
            "the step (group {group}) outlived its killed rollout: {:?}",
            left()
        );
        std::thread::sleep(Duration::from_millis(50));
    }
    assert!(!dir.join("ended").exists());
}

#[test]
fn a_session_has_a_warden_in_team_mode_only_and_it_ends_with_the_session() {
    let pg = Postgres::start();
    let url = pg.url();
    let runbook = "[runbook]\nname = \"short\"\n\n[[phases]]\nid = \"p1\"\ntitle = \"One\"\n\n\
         [[phases.steps]]\nid = \"short\"\nrun = 'sleep 300 & echo $! > left.pid; echo $$ > step.pid; while ! test -e go; do sleep 0.05; done'\n";
    for team in [false, true] {
        let t = Test::new().runbook(runbook);
        let dir = t.path().to_path_buf();
        let env: &[(&str, &str)] = if team {
            &[("ROLLOUT_STATE", url.as_str())]
        } else {
            &[]
        };
        let child = spawn(&dir, env, &["run", "runbook.toml"]);
        pid_in(&dir, "step.pid");
        let wardens = wardens_of(child.id());
        assert_eq!(
            wardens.len(),
            usize::from(team),
            "team mode {team}: {wardens:?}"
        );
        std::fs::write(dir.join("go"), "").unwrap();
        let out = crate::harness::wait_bounded(child, Duration::from_secs(30));
        assert_eq!(
            out.status.code(),
            Some(0),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
        // What the step left running was stopped at the end of the session, as ever.
        let left = pid_in(&dir, "left.pid");
        assert!(
            !alive(left),
            "team mode {team}: the step's `sleep` {left} outlived the run"
        );
        // Told the session ended, it goes without stopping anything.
        let deadline = Instant::now() + Duration::from_secs(10);
        for warden in wardens {
            while stat_of(warden)
                .is_some_and(|(name, state, ..)| name == "rollout-warden" && state != "Z")
            {
                assert!(
                    Instant::now() < deadline,
                    "the warden {warden} outlived its session"
                );
                std::thread::sleep(Duration::from_millis(20));
            }
        }
    }
}

#[test]
fn a_holder_with_a_long_grace_keeps_its_lease_while_the_database_answers() {
    let pg = Postgres::start();
    let url = pg.url();
    let t = Test::new().runbook(&effects_runbook("graceful", &[("a", "5")]));
    // The stop rule leaves 3 s after each renewal (10 s - 2 × 3 s - 1 s): a renewal every third
    // of the lease (3.3 s) would come too late, and the holder would stop its own step.
    Test::in_dir(t.path())
        .env("ROLLOUT_STATE", &url)
        .env("ROLLOUT_LEASE", "10s")
        .args(["run", "runbook.toml", "--grace", "3s"])
        .status(0);
    assert!(
        effects(t.path()).iter().any(|l| l.contains("a end")),
        "{:?}",
        effects(t.path())
    );
}

#[test]
fn ctrl_z_does_not_suspend_a_holder_whose_lease_would_run_out() {
    use crate::gates::Tty;
    let pg = Postgres::start();
    let url = pg.url();
    let t = Test::new().runbook(&effects_runbook("held", &[("a", "3")]));
    let dir = t.path().to_path_buf();
    // An operator's interactive shell, with job control: Ctrl-Z would stop its foreground job.
    let rollout = Test::in_dir(&dir).env("ROLLOUT_STATE", &url).command();
    let mut shell = std::process::Command::new("bash");
    shell
        .args(["--norc", "--noprofile", "-i"])
        .current_dir(&dir)
        .env("PS1", "ready$ ");
    for (name, value) in rollout.get_envs() {
        match value {
            Some(value) => shell.env(name, value),
            None => shell.env_remove(name),
        };
    }
    let mut tty = Tty::spawn(shell);
    tty.shows("ready$ ");
    tty.line(&format!(
        "{} run runbook.toml --grace 200ms; echo exit=$?",
        rollout.get_program().to_string_lossy()
    ));
    wait_for_effect(&dir, "a start", Duration::from_secs(20));
    tty.keys("\x1a");
    tty.shows("not suspended").shows("exit=0");
    assert!(!tty.screen.contains("Stopped"), "{}", tty.screen);
    assert!(effects(&dir).iter().any(|l| l.contains("a end")));
    tty.line("exit");
}
