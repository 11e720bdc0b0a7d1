//! A builder that reads like a spec:
//! `Test::new().runbook(TOML).args(["validate", "runbook.toml"]).status(3).stderr_has("...")`.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};

pub const RUNBOOK: &str = "runbook.toml";

pub fn bin() -> PathBuf {
    PathBuf::from(env!("CARGO_BIN_EXE_rollout"))
}

pub fn repo() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

pub struct Test {
    /// The temp dir this test owns, or `None` when it runs in another test's directory.
    owned: Option<tempfile::TempDir>,
    root: PathBuf,
    args: Vec<String>,
    env: BTreeMap<String, String>,
    stdin: Option<Vec<u8>>,
    limit: std::time::Duration,
}

/// How long a command may take before the test kills it and fails.
const LIMIT: std::time::Duration = std::time::Duration::from_secs(60);

pub struct Outcome {
    pub status: i32,
    pub stdout: String,
    pub stderr: String,
    pub dir: PathBuf,
    /// Keeps the directory alive as long as the outcome, for follow-up commands in it.
    _owned: Option<tempfile::TempDir>,
}

impl Default for Test {
    fn default() -> Self {
        Self::new()
    }
}

impl Test {
    pub fn new() -> Self {
        let owned = tempfile::tempdir().expect("temp dir");
        Test {
            root: owned.path().to_path_buf(),
            owned: Some(owned),
            args: Vec::new(),
            env: BTreeMap::new(),
            stdin: None,
            limit: LIMIT,
        }
    }

    /// A test that runs in the directory of an earlier one (resume, status).
    pub fn in_dir(dir: &Path) -> Self {
        Test {
            owned: None,
            root: dir.to_path_buf(),
            args: Vec::new(),
            env: BTreeMap::new(),
            stdin: None,
            limit: LIMIT,
        }
    }

    /// Fails the test (killing rollout) when the command takes longer than `limit`: for
    /// commands that must not hang.
    #[must_use]
    pub fn within(mut self, limit: std::time::Duration) -> Self {
        self.limit = limit;
        self
    }

    pub fn path(&self) -> &Path {
        &self.root
    }

    /// Writes `runbook.toml` in the test directory.
    #[must_use]
    pub fn runbook(self, text: &str) -> Self {
        self.file(RUNBOOK, text)
    }

    #[must_use]
    pub fn file(self, name: &str, contents: impl AsRef<[u8]>) -> Self {
        let path = self.root.join(name);
        if let Some(parent) = path.parent() {
            std::fs::create_dir_all(parent).unwrap();
        }
        std::fs::write(path, contents).unwrap();
        self
    }

    #[must_use]
    pub fn args<I, S>(mut self, args: I) -> Self
    where
        I: IntoIterator<Item = S>,
        S: Into<String>,
    {
        self.args.extend(args.into_iter().map(Into::into));
        self
    }

    #[must_use]
    pub fn env(mut self, key: &str, value: &str) -> Self {
        self.env.insert(key.into(), value.into());
        self
    }

    #[must_use]
    pub fn stdin(mut self, input: impl Into<Vec<u8>>) -> Self {
        self.stdin = Some(input.into());
        self
    }

    pub fn command(&self) -> Command {
        let mut cmd = Command::new(bin());
        cmd.current_dir(&self.root);
        for (k, _) in std::env::vars() {
            if k.starts_with("ROLLOUT_") || k == "CI" || k == "NO_COLOR" || k == "KUBECTL" {
                cmd.env_remove(k);
            }
        }
        // The user config is found through these; a developer's own must not leak in.
        cmd.env_remove("XDG_CONFIG_HOME");
        cmd.env("HOME", &self.root);
        cmd.env("USER", "tester");
        cmd.envs(&self.env);
        cmd.args(&self.args);
        cmd
    }

    /// A shell running `script` in the test directory, with the same environment as rollout.
    pub fn command_for_shell(&self, shell: &str, script: &str) -> Command {
        let cmd = self.command();
        let mut shell_cmd = Command::new(shell);
        shell_cmd.current_dir(&self.root).arg("-c").arg(script);
        for (k, v) in cmd.get_envs() {
            match v {
                Some(v) => shell_cmd.env(k, v),
                None => shell_cmd.env_remove(k),
            };
        }
        shell_cmd
    }

    /// Keeps the test's directory without running anything: for a test that runs rollout
    /// there itself, more than once.
    pub fn keep(self) -> Outcome {
        Outcome {
            status: 0,
            stdout: String::new(),
            stderr: String::new(),
            dir: self.root.clone(),
            _owned: self.owned,
        }
    }

    pub fn run(self) -> Outcome {
        let mut cmd = self.command();
        cmd.stdin(if self.stdin.is_some() {
            Stdio::piped()
        } else {
            Stdio::null()
        });
        cmd.stdout(Stdio::piped()).stderr(Stdio::piped());
        let mut child = cmd.spawn().expect("spawn rollout");
        if let Some(input) = self.stdin.clone() {
            use std::io::Write;
            let mut pipe = child.stdin.take().unwrap();
            // Written from a thread, so a child that prints before it reads cannot deadlock.
            std::thread::spawn(move || {
                let _ = pipe.write_all(&input);
            });
        }
        let output: Output = wait_bounded(child, self.limit);
        Outcome {
            status: output.status.code().unwrap_or(-1),
            stdout: String::from_utf8_lossy(&output.stdout).into_owned(),
            stderr: String::from_utf8_lossy(&output.stderr).into_owned(),
            dir: self.root.clone(),
            _owned: self.owned,
        }
    }

    /// Runs and checks the exit status, printing the output when it differs.
    pub fn status(self, expected: i32) -> Outcome {
        let out = self.run();
        assert_eq!(
            out.status, expected,
            "unexpected exit status\n--- stdout\n{}\n--- stderr\n{}",
            out.stdout, out.stderr
        );
        out
    }
}

/// Waits for a child, killing it if it outlives `limit` so no test can hang CI. Its stdout and
/// stderr (when piped) are read while it runs, so a child printing more than a pipe buffer holds
/// cannot block forever.
pub fn wait_bounded(mut child: std::process::Child, limit: std::time::Duration) -> Output {
    use std::io::Read;
    use std::sync::{Arc, Mutex};
    fn drain(pipe: Option<impl Read + Send + 'static>) -> Arc<Mutex<Vec<u8>>> {
        let buf = Arc::new(Mutex::new(Vec::new()));
        if let Some(mut pipe) = pipe {
            let sink = Arc::clone(&buf);
            std::thread::spawn(move || {
                let mut chunk = vec![0u8; 64 * 1024];
                while let Ok(n) = pipe.read(&mut chunk) {
                    if n == 0 {
                        break;
                    }
                    sink.lock().unwrap().extend_from_slice(&chunk[..n]);
                }
                drop(sink);
            });
        }
        buf
    }
    let taken = |buf: &Arc<Mutex<Vec<u8>>>| std::mem::take(&mut *buf.lock().unwrap());
    let stdout = drain(child.stdout.take());
    let stderr = drain(child.stderr.take());
    let start = std::time::Instant::now();
    loop {
        if let Some(status) = child.try_wait().expect("wait") {
            // The readers finish when every writer (the child, and anything it left running
            // with the pipes) has closed them; wait for that, within what is left of `limit`.
            while (Arc::strong_count(&stdout) > 1 || Arc::strong_count(&stderr) > 1)
                && start.elapsed() <= limit
            {
                std::thread::sleep(std::time::Duration::from_millis(1));
            }
            return Output {
                status,
                stdout: taken(&stdout),
                stderr: taken(&stderr),
            };
        }
        if start.elapsed() > limit {
            let _ = child.kill();
            let _ = child.wait();
            panic!(
                "rollout did not finish within {limit:?}\n--- stdout\n{}\n--- stderr\n{}",
                String::from_utf8_lossy(&taken(&stdout)),
                String::from_utf8_lossy(&taken(&stderr))
            );
        }
        std::thread::sleep(std::time::Duration::from_millis(2));
    }
}

impl Outcome {
    pub fn stderr_has(&self, needle: &str) -> &Self {
        assert!(
            self.stderr.contains(needle),
            "stderr lacks {needle:?}:\n{}",
            self.stderr
        );
        self
    }

    pub fn stdout_has(&self, needle: &str) -> &Self {
        assert!(
            self.stdout.contains(needle),
            "stdout lacks {needle:?}:\n{}",
            self.stdout
        );
        self
    }

    pub fn json(&self) -> serde_json::Value {
        serde_json::from_str(&self.stdout)
            .unwrap_or_else(|e| panic!("stdout is not JSON ({e}):\n{}", self.stdout))
    }

    /// Standard output as JSON lines, one event each (`--output json`).
    pub fn events(&self) -> Vec<serde_json::Value> {
        self.stdout
            .lines()
            .map(|l| {
                serde_json::from_str(l)
                    .unwrap_or_else(|e| panic!("not a JSON line ({e}): {l}\n{}", self.stdout))
            })
            .collect()
    }
}

/// A small valid runbook to start tests from.
pub const MINIMAL: &str = r#"[runbook]
name = "minimal"

[[phases]]
id = "only"
title = "Only phase"

[[phases.steps]]
id = "hello"
run = "echo hello"
"#;

/// The lines of file `name` in a test directory (none when there is no such file).
pub fn lines_of(dir: &Path, name: &str) -> Vec<String> {
    std::fs::read_to_string(dir.join(name))
        .unwrap_or_default()
        .lines()
        .map(String::from)
        .collect()
}

/// The lines of `trace` in a test directory: what the steps of a test runbook did, in order.
pub fn trace(dir: &Path) -> Vec<String> {
    lines_of(dir, "trace")
}

/// The run directories under `dir/.rollout/runs`, oldest first.
pub fn run_dirs(dir: &Path) -> Vec<PathBuf> {
    let mut runs: Vec<PathBuf> = std::fs::read_dir(dir.join(".rollout/runs"))
        .map(|d| d.filter_map(Result::ok).map(|e| e.path()).collect())
        .unwrap_or_default();
    runs.sort();
    runs
}

/// The id of the latest run in `dir`.
pub fn run_id(dir: &Path) -> String {
    run_dirs(dir)
        .last()
        .and_then(|d| d.file_name())
        .map(|n| n.to_string_lossy().into_owned())
        .expect("a run")
}

/// The journal of the latest run in `dir`.
pub fn journal_file(dir: &Path) -> PathBuf {
    run_dirs(dir).last().expect("a run").join("journal.ndjson")
}

/// The records of the latest run's journal in `dir`.
pub fn journal(dir: &Path) -> Vec<serde_json::Value> {
    std::fs::read_to_string(journal_file(dir))
        .expect("a journal")
        .lines()
        .map(|l| serde_json::from_str(l).expect("a JSON record"))
        .collect()
}

/// The records of type `ty` in the latest run's journal in `dir`.
pub fn of_type(dir: &Path, ty: &str) -> Vec<serde_json::Value> {
    journal(dir)
        .into_iter()
        .filter(|r| r["type"] == ty)
        .collect()
}

/// Waits (at most 10 s) for a file a step creates.
pub fn wait_for_path(path: &Path) {
    let start = std::time::Instant::now();
    while !path.exists() {
        assert!(
            start.elapsed() < std::time::Duration::from_secs(10),
            "{} never appeared",
            path.display()
        );
        std::thread::sleep(std::time::Duration::from_millis(10));
    }
}
