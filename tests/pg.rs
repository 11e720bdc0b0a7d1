//! A real `PostgreSQL` for the team-mode tests: Debian's server binaries (found under
//! /usr/lib/postgresql/*/bin, or on PATH), a cluster made with `initdb` in a temp dir owned by
//! the `postgres` user (the server refuses to run as root), started on a free port, stopped in
//! `Drop`. Optionally inside a network namespace (see `Net`), to give two "hosts" a database
//! they reach over a link the test can cut.

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicU32, Ordering};
use std::time::{Duration, Instant};

/// The directory of the server binaries.
pub fn bin_dir() -> PathBuf {
    let mut found: Vec<PathBuf> = std::fs::read_dir("/usr/lib/postgresql")
        .into_iter()
        .flatten()
        .filter_map(Result::ok)
        .map(|e| e.path().join("bin"))
        .filter(|p| p.join("postgres").is_file() && p.join("initdb").is_file())
        .collect();
    found.sort();
    if let Some(dir) = found.pop() {
        return dir;
    }
    for dir in std::env::var("PATH").unwrap_or_default().split(':') {
        let dir = PathBuf::from(dir);
        if dir.join("initdb").is_file() && dir.join("postgres").is_file() {
            return dir;
        }
    }
    panic!(
        "PostgreSQL's server binaries (initdb, postgres) are missing: install Debian's `postgresql` package (.ci/test does)"
    );
}

fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .map(|a| a.port())
        .expect("a free port")
}

/// Makes `path` the `postgres` user's, for the server (which refuses to run as root) to use.
pub fn give_to_postgres(path: &Path) {
    let status = Command::new("chown")
        .arg("postgres")
        .arg(path)
        .status()
        .expect("chown");
    assert!(
        status.success(),
        "cannot chown {} to `postgres`",
        path.display()
    );
}

fn as_postgres(bin: &Path, program: &str) -> Command {
    let mut cmd = Command::new("runuser");
    cmd.args(["-u", "postgres", "--"]).arg(bin.join(program));
    cmd
}

/// A `PostgreSQL` server of a test's own.
pub struct Postgres {
    dir: Option<tempfile::TempDir>,
    bin: PathBuf,
    pub port: u16,
    /// Where it listens (an address of its namespace, or 127.0.0.1).
    pub addr: String,
    netns: Option<String>,
    child: Option<Child>,
    /// More `-c name=value` settings for the server.
    extra: Vec<String>,
}

impl Postgres {
    /// A server on 127.0.0.1.
    pub fn start() -> Self {
        Self::start_in(None, "127.0.0.1")
    }

    /// A server listening on `addr`, inside network namespace `netns` if given.
    pub fn start_in(netns: Option<&str>, addr: &str) -> Self {
        Self::start_with(netns, addr, |_| Vec::new())
    }

    /// A server whose extra settings `extra` makes from its directory (owned by `postgres`).
    pub fn start_with(
        netns: Option<&str>,
        addr: &str,
        extra: impl FnOnce(&Path) -> Vec<String>,
    ) -> Self {
        let bin = bin_dir();
        let dir = tempfile::Builder::new()
            .prefix("rollout-pg-")
            .tempdir()
            .expect("temp dir");
        give_to_postgres(dir.path());
        let out = as_postgres(&bin, "initdb")
            .args(["-A", "trust", "-U", "postgres", "--no-sync", "-D"])
            .arg(dir.path().join("data"))
            .output()
            .expect("initdb");
        assert!(
            out.status.success(),
            "initdb failed: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        // Passwords for the test that needs one.
        std::fs::write(
            dir.path().join("data/pg_hba.conf"),
            "local all all trust\nhost all secret 0.0.0.0/0 scram-sha-256\nhost all all 0.0.0.0/0 trust\n",
        )
        .unwrap();
        let extra = extra(dir.path());
        let mut pg = Postgres {
            extra,
            dir: Some(dir),
            bin,
            port: free_port(),
            addr: addr.to_string(),
            netns: netns.map(str::to_string),
            child: None,
        };
        pg.spawn();
        pg.sql_in("postgres", "CREATE ROLE secret LOGIN PASSWORD 'hunter2'");
        pg.sql_in("postgres", "CREATE DATABASE rollout");
        pg.sql_in("rollout", "GRANT ALL ON SCHEMA public TO secret");
        pg
    }

    fn data(&self) -> PathBuf {
        self.dir.as_ref().unwrap().path().join("data")
    }

    fn spawn(&mut self) {
        let mut cmd = match &self.netns {
            Some(ns) => {
                let mut c = Command::new("ip");
                c.args(["netns", "exec", ns, "runuser", "-u", "postgres", "--"])
                    .arg(self.bin.join("postgres"));
                c
            }
            None => as_postgres(&self.bin, "postgres"),
        };
        let dir = self.dir.as_ref().unwrap().path().to_path_buf();
        let log = std::fs::File::create(dir.join("log")).unwrap();
        cmd.arg("-D")
            .arg(self.data())
            .arg("-p")
            .arg(self.port.to_string())
            .arg("-k")
            .arg(&dir)
            .args(["-c", &format!("listen_addresses={}", self.addr)])
            .args(["-c", "fsync=off", "-c", "max_connections=100"])
            .args(self.extra.iter().flat_map(|e| ["-c", e.as_str()]))
            .stdin(Stdio::null())
            .stdout(log.try_clone().unwrap())
            .stderr(log);
        self.child = Some(cmd.spawn().expect("start postgres"));
        // Ready once it answers on its socket (bounded).
        let deadline = Instant::now() + Duration::from_secs(30);
        loop {
            let ok = as_postgres(&self.bin, "pg_isready")
                .arg("-h")
                .arg(&dir)
                .arg("-p")
                .arg(self.port.to_string())
                .stdout(Stdio::null())
                .status()
                .is_ok_and(|s| s.success());
            if ok {
                return;
            }
            assert!(
                Instant::now() < deadline,
                "postgres did not start: {}",
                std::fs::read_to_string(dir.join("log")).unwrap_or_default()
            );
            std::thread::sleep(Duration::from_millis(100));
        }
    }

    /// The URL of database `rollout` as user `postgres`, no TLS.
    pub fn url(&self) -> String {
        format!(
            "postgres://postgres@{}:{}/rollout?sslmode=disable",
            self.addr, self.port
        )
    }

    /// Runs SQL in database `rollout`; returns what psql printed (unaligned, tuples only).
    pub fn sql(&self, sql: &str) -> String {
        self.sql_in("rollout", sql)
    }

    /// Runs SQL in database `db`.
    pub fn sql_in(&self, db: &str, sql: &str) -> String {
        let out = as_postgres(&self.bin, "psql")
            .arg("-h")
            .arg(self.dir.as_ref().unwrap().path())
            .arg("-p")
            .arg(self.port.to_string())
            .args([
                "-U",
                "postgres",
                "-d",
                db,
                "-v",
                "ON_ERROR_STOP=1",
                "-At",
                "-c",
                sql,
            ])
            .output()
            .expect("psql");
        assert!(
            out.status.success(),
            "psql failed: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        String::from_utf8_lossy(&out.stdout).trim().to_string()
    }

    /// Stops the server at once, as a crash would (`pg_ctl stop -m immediate`).
    pub fn stop(&mut self) {
        let _ = as_postgres(&self.bin, "pg_ctl")
            .args(["stop", "-m", "immediate", "-D"])
            .arg(self.data())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .status();
        if let Some(mut child) = self.child.take() {
            let deadline = Instant::now() + Duration::from_secs(10);
            while child.try_wait().ok().flatten().is_none() && Instant::now() < deadline {
                std::thread::sleep(Duration::from_millis(50));
            }
            let _ = child.kill();
            let _ = child.wait();
        }
    }

    /// Starts it again on the same port.
    pub fn restart(&mut self) {
        self.spawn();
    }
}

impl Drop for Postgres {
    fn drop(&mut self) {
        self.stop();
    }
}

static NEXT: AtomicU32 = AtomicU32::new(0);

/// Two "hosts" and a database host: network namespaces `<tag>-db`, `<tag>-h1`, `<tag>-h2`,
/// the database's joined to each host's by a veth pair (10.231.N.1 <-> 10.231.N.2 for host 1,
/// 10.232.N.1 <-> 10.232.N.2 for host 2). Removed in `Drop`.
pub struct Net {
    pub tag: String,
    pub n: u32,
}

fn ip(args: &[&str]) {
    let out = Command::new("ip").args(args).output().expect("ip");
    assert!(
        out.status.success(),
        "ip {}: {}",
        args.join(" "),
        String::from_utf8_lossy(&out.stderr)
    );
}

impl Net {
    pub fn new() -> Self {
        // A subnet and names per test process and test: pid and counter.
        let k = NEXT.fetch_add(1, Ordering::SeqCst);
        let n = (std::process::id() * 7 + k) % 250 + 1;
        let tag = format!("ro{}x{k}", std::process::id() % 100_000);
        let net = Net { tag, n };
        for ns in [net.db(), net.host(1), net.host(2)] {
            let _ = Command::new("ip").args(["netns", "del", &ns]).output();
            ip(&["netns", "add", &ns]);
            ip(&["-n", &ns, "link", "set", "lo", "up"]);
        }
        for h in [1, 2] {
            let (a, b) = (net.veth_db(h), net.veth_host(h));
            ip(&["link", "add", &a, "type", "veth", "peer", "name", &b]);
            ip(&["link", "set", &a, "netns", &net.db()]);
            ip(&["link", "set", &b, "netns", &net.host(h)]);
            ip(&[
                "-n",
                &net.db(),
                "addr",
                "add",
                &format!("{}/24", net.db_addr(h)),
                "dev",
                &a,
            ]);
            ip(&[
                "-n",
                &net.host(h),
                "addr",
                "add",
                &format!("{}/24", net.host_addr(h)),
                "dev",
                &b,
            ]);
            ip(&["-n", &net.db(), "link", "set", &a, "up"]);
            ip(&["-n", &net.host(h), "link", "set", &b, "up"]);
        }
        net
    }
    pub fn db(&self) -> String {
        format!("{}-db", self.tag)
    }
    pub fn host(&self, h: u32) -> String {
        format!("{}-h{h}", self.tag)
    }
    fn veth_db(&self, h: u32) -> String {
        format!("{}d{h}", self.tag)
    }
    fn veth_host(&self, h: u32) -> String {
        format!("{}h{h}", self.tag)
    }
    /// The database's address as host `h` reaches it.
    pub fn db_addr(&self, h: u32) -> String {
        format!("10.{}.{}.1", 230 + h, self.n)
    }
    pub fn host_addr(&self, h: u32) -> String {
        format!("10.{}.{}.2", 230 + h, self.n)
    }
    /// Cuts host `h` off (its end of the link goes down).
    pub fn cut(&self, h: u32) {
        ip(&[
            "-n",
            &self.host(h),
            "link",
            "set",
            &self.veth_host(h),
            "down",
        ]);
    }
    /// The command line prefix that runs a program on host `h`, with its own host name.
    pub fn on_host(&self, h: u32, script: &str) -> Command {
        let mut c = Command::new("ip");
        c.args([
            "netns",
            "exec",
            &self.host(h),
            "unshare",
            "--uts",
            "sh",
            "-c",
        ])
        .arg(format!("hostname host{h} && {script}"));
        c
    }
}

impl Drop for Net {
    fn drop(&mut self) {
        for ns in [self.db(), self.host(1), self.host(2)] {
            let _ = Command::new("ip").args(["netns", "del", &ns]).output();
        }
    }
}
