//! The `PostgreSQL` backend (team mode): runs, their journals, runbook snapshots and target locks
//! in one database that operators on different machines share (`--state postgres://...`).
//!
//! Each journal record is one row holding the exact line the file backend would write (same
//! encoder, same SHA-256 chain), so one verifier serves both and `state export` writes the file
//! file mode would have written. A target lock is a lease with an epoch: every append is one
//! statement that inserts the record only while this holder's lease is current in the
//! database's own clock, so a holder that lost its lease can never add a record. See
//! [`lease`] for the heartbeat and the rule by which a holder that cannot reach the database
//! stops its steps before its lease can run out.

pub mod conn;
pub mod journal;
pub mod lease;
pub mod schema;
pub mod watch;

use std::sync::{Arc, Mutex};
use std::time::Duration;

pub use conn::{Target, is_url, redact};
pub use lease::{Lease, Loss};

use super::{Journal, RunLog, Store, StoreError, StoreFuture};

/// How long a statement may wait for the database before rollout counts it as unreachable.
pub const STATEMENT_WAIT: Duration = Duration::from_secs(5);

/// The store: one connection (re-opened when it breaks), and the lease this process holds.
pub struct PgStore {
    pub target: Target,
    client: Mutex<Arc<tokio_postgres::Client>>,
    /// How long a lease lasts without a heartbeat.
    pub lease_length: Duration,
    held: Mutex<Option<Arc<Lease>>>,
}

fn db(e: &tokio_postgres::Error) -> StoreError {
    StoreError::Io(format!("the state database said: {}", one_line(e)))
}

fn one_line(e: &tokio_postgres::Error) -> String {
    match e.as_db_error() {
        Some(d) => d.message().replace('\n', " "),
        None => e.to_string().replace('\n', " "),
    }
}

/// Whether an error is the connection's (worth a retry) rather than the statement's.
pub fn is_connection_error(e: &tokio_postgres::Error) -> bool {
    e.as_db_error().is_none() || e.is_closed()
}

impl PgStore {
    /// Connects and brings the schema up to date; one line on failure.
    pub async fn connect(target: Target, lease_length: Duration) -> Result<PgStore, String> {
        let client = conn::connect(&target).await?;
        schema::migrate(&client, &target).await?;
        Ok(PgStore {
            target,
            client: Mutex::new(Arc::new(client)),
            lease_length,
            held: Mutex::new(None),
        })
    }

    /// The connection, opened again if it broke.
    pub async fn client(&self) -> Result<Arc<tokio_postgres::Client>, String> {
        let current = self
            .client
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .clone();
        if !current.is_closed() {
            return Ok(current);
        }
        let fresh = Arc::new(conn::connect(&self.target).await?);
        *self
            .client
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner) = fresh.clone();
        Ok(fresh)
    }

    async fn client_or_io(&self) -> Result<Arc<tokio_postgres::Client>, StoreError> {
        self.client().await.map_err(StoreError::Io)
    }

    /// The lease this process holds, if any.
    pub fn held(&self) -> Option<Arc<Lease>> {
        self.held
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .clone()
    }

    fn set_held(&self, lease: Arc<Lease>) {
        *self
            .held
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner) = Some(lease);
    }

    /// Why this process lost its lease, if it did.
    pub fn loss(&self) -> Option<Loss> {
        self.held().and_then(|l| l.loss())
    }

    /// A run's journal lines, oldest first, concatenated: what the file backend's journal
    /// holds.
    pub async fn journal_bytes(&self, run_id: &str) -> Result<Vec<u8>, StoreError> {
        let client = self.client_or_io().await?;
        let exists = client
            .query_opt("SELECT 1 FROM rollout_runs WHERE run_id = $1", &[&run_id])
            .await
            .map_err(|e| db(&e))?;
        if exists.is_none() {
            return Err(StoreError::NotFound(
                run_id.to_string(),
                self.target.shown.clone(),
            ));
        }
        let rows = client
            .query(
                "SELECT line FROM rollout_records WHERE run_id = $1 ORDER BY seq",
                &[&run_id],
            )
            .await
            .map_err(|e| db(&e))?;
        let mut bytes = Vec::new();
        for row in rows {
            let line: &str = row.get(0);
            bytes.extend_from_slice(line.as_bytes());
        }
        Ok(bytes)
    }

    async fn read_run(&self, run_id: &str) -> Result<RunLog, StoreError> {
        let bytes = self.journal_bytes(run_id).await?;
        let v = super::audit::verify(&bytes);
        if v.records.is_empty() && v.fault.is_none() {
            return Err(StoreError::NotFound(
                run_id.to_string(),
                format!("{} (it was created but has no record)", self.target.shown),
            ));
        }
        let recovery = v.fault.map(|f| super::Recovery {
            good_records: v.records.len(),
            dropped_bytes: (bytes.len() - v.good_end) as u64,
            detail: f.to_string(),
            saved_as: String::new(),
        });
        Ok(RunLog {
            records: v.records,
            recovery,
        })
    }

    /// The target a run locks, as recorded when it was created.
    pub async fn run_target(&self, run_id: &str) -> Result<Option<String>, StoreError> {
        let client = self.client_or_io().await?;
        let row = client
            .query_opt(
                "SELECT target FROM rollout_runs WHERE run_id = $1",
                &[&run_id],
            )
            .await
            .map_err(|e| db(&e))?;
        Ok(row.and_then(|r| r.get(0)))
    }

    /// One row per run: its id and the summary its journal keeps (see [`journal::summary`]).
    pub async fn summaries(&self) -> Result<Vec<(String, String, bool)>, StoreError> {
        let client = self.client_or_io().await?;
        let rows = client
            .query(
                "SELECT r.run_id, r.summary::text, l.run_id IS NOT NULL FROM rollout_runs r LEFT JOIN (SELECT DISTINCT run_id FROM rollout_locks WHERE released_at IS NULL AND lease_until > now()) l ON l.run_id = r.run_id ORDER BY r.run_id",
                &[],
            )
            .await
            .map_err(|e| db(&e))?;
        Ok(rows
            .into_iter()
            .map(|r| (r.get(0), r.get(1), r.get(2)))
            .collect())
    }

    /// Imports a run read from a state directory: its runbook snapshot and journal lines, as
    /// they are (hashes intact). Refuses a run id the database has already.
    pub async fn import(
        &self,
        run_id: &str,
        snapshot: &str,
        lines: &[(u64, String, String)],
        summary: &serde_json::Value,
    ) -> Result<(), StoreError> {
        self.import_shared(run_id, snapshot, lines, summary).await
    }

    async fn import_shared(
        &self,
        run_id: &str,
        snapshot: &str,
        lines: &[(u64, String, String)],
        summary: &serde_json::Value,
    ) -> Result<(), StoreError> {
        let client = self.client_or_io().await?;
        client.batch_execute("BEGIN").await.map_err(|e| db(&e))?;
        let result = async {
            let inserted = client
                .execute(
                    "INSERT INTO rollout_runs (run_id, snapshot, summary, runbook_name, runbook_path, digest) VALUES ($1, $2, $3::jsonb, coalesce($3::jsonb->>'runbook_name', ''), coalesce($3::jsonb->>'runbook', ''), coalesce($3::jsonb->>'digest', '')) ON CONFLICT (run_id) DO NOTHING",
                    &[&run_id, &snapshot, summary],
                )
                .await
                .map_err(|e| db(&e))?;
            if inserted == 0 {
                return Err(StoreError::Io(format!(
                    "run `{run_id}` is in {} already; nothing of it was imported",
                    self.target.shown
                )));
            }
            let stmt = client
                .prepare(
                    "INSERT INTO rollout_records (run_id, seq, line, hash) VALUES ($1, $2, $3, $4)",
                )
                .await
                .map_err(|e| db(&e))?;
            for (seq, line, hash) in lines {
                let seq = i64::try_from(*seq).unwrap_or(i64::MAX);
                client
                    .execute(&stmt, &[&run_id, &seq, line, hash])
                    .await
                    .map_err(|e| db(&e))?;
            }
            Ok(())
        }
        .await;
        let end = if result.is_ok() { "COMMIT" } else { "ROLLBACK" };
        client.batch_execute(end).await.map_err(|e| db(&e))?;
        result
    }
}

/// The approvals delivered to a run, by name: each the request followed by its signature (what
/// `rollout approve` writes); a request still waiting for its signature is left out.
async fn approvals_of(
    client: &tokio_postgres::Client,
    shown: &str,
    run_id: &str,
) -> Result<Vec<Result<super::approval::Delivered, String>>, StoreError> {
    const BEGIN: &str = "-----BEGIN SSH SIGNATURE-----";
    let rows = client
        .query(
            "SELECT name, text FROM rollout_approvals WHERE run_id = $1 ORDER BY name",
            &[&run_id],
        )
        .await
        .map_err(|e| db(&e))?;
    Ok(rows
        .into_iter()
        .filter_map(|row| {
            let name: String = row.get(0);
            let text: String = row.get(1);
            let from = format!("{shown} (run {run_id}, approval {name})");
            match text.find(BEGIN) {
                Some(at) if !text[..at].trim().is_empty() => {
                    Some(Ok(super::approval::Delivered {
                        from,
                        message: text[..at].to_string(),
                        signature: text[at..].to_string(),
                    }))
                }
                Some(_) => Some(Err(format!(
                    "`{from}` is a bare signature: in the database an approval is its request followed by its signature, as `rollout approve` delivers it"
                ))),
                None => None,
            }
        })
        .collect())
}

impl Store for PgStore {
    fn approvals<'a>(
        &'a self,
        run_id: &'a str,
    ) -> StoreFuture<'a, Vec<Result<super::approval::Delivered, String>>> {
        Box::pin(async move {
            let client = self.client_or_io().await?;
            approvals_of(&client, &self.target.shown, run_id).await
        })
    }

    fn deliver_approval<'a>(
        &'a self,
        run_id: &'a str,
        name: &'a str,
        text: &'a str,
    ) -> StoreFuture<'a, String> {
        Box::pin(async move {
            let client = self.client_or_io().await?;
            client
                .execute(
                    "INSERT INTO rollout_approvals (run_id, name, text) VALUES ($1, $2, $3) ON CONFLICT (run_id, name) DO UPDATE SET text = EXCLUDED.text, delivered_at = now()",
                    &[&run_id, &name, &text],
                )
                .await
                .map_err(|e| db(&e))?;
            // Tell watchers (and a run waiting at the gate may look sooner).
            let _ = client
                .execute("SELECT pg_notify('rollout', $1 || ':approval')", &[&run_id])
                .await;
            Ok(format!(
                "{} (run {run_id}, approval {name})",
                self.target.shown
            ))
        })
    }

    fn create<'a>(
        &'a self,
        run_id: &'a str,
        runbook_text: &'a str,
    ) -> StoreFuture<'a, Box<dyn Journal>> {
        Box::pin(async move {
            let lease = self.held().ok_or_else(|| {
                StoreError::Io(format!(
                    "run `{run_id}` cannot be created without holding its target's lock"
                ))
            })?;
            let client = self.client_or_io().await?;
            client
                .execute(
                    "INSERT INTO rollout_runs (run_id, target, snapshot) VALUES ($1, $2, $3)",
                    &[&run_id, &lease.target, &runbook_text],
                )
                .await
                .map_err(|e| db(&e))?;
            let j = journal::PgJournal::new(self, lease, run_id, 1, super::audit::GENESIS, None);
            Ok(Box::new(j) as Box<dyn Journal>)
        })
    }

    fn open<'a>(&'a self, run_id: &'a str) -> StoreFuture<'a, (Box<dyn Journal>, RunLog)> {
        Box::pin(async move {
            let lease = self.held().ok_or_else(|| {
                StoreError::Io(format!(
                    "run `{run_id}` cannot be written without holding its target's lock"
                ))
            })?;
            let bytes = self.journal_bytes(run_id).await?;
            let v = super::audit::verify(&bytes);
            if let Some(fault) = v.fault {
                return Err(StoreError::Tampered(
                    run_id.to_string(),
                    format!("{fault} (`rollout audit verify {run_id}` shows the whole check)"),
                ));
            }
            let state = super::RunState::fold(&v.records);
            let j = journal::PgJournal::new(
                self,
                lease,
                run_id,
                v.records.len() as u64 + 1,
                &v.head,
                Some(state),
            );
            Ok((
                Box::new(j) as Box<dyn Journal>,
                RunLog {
                    records: v.records,
                    recovery: None,
                },
            ))
        })
    }

    fn read<'a>(&'a self, run_id: &'a str) -> StoreFuture<'a, RunLog> {
        Box::pin(self.read_run(run_id))
    }

    fn runbook_snapshot<'a>(&'a self, run_id: &'a str) -> StoreFuture<'a, Option<String>> {
        Box::pin(async move {
            let client = self.client_or_io().await?;
            let row = client
                .query_opt(
                    "SELECT snapshot FROM rollout_runs WHERE run_id = $1",
                    &[&run_id],
                )
                .await
                .map_err(|e| db(&e))?;
            Ok(row.map(|r| r.get(0)))
        })
    }

    fn list(&self) -> StoreFuture<'_, Vec<String>> {
        Box::pin(async move {
            let client = self.client_or_io().await?;
            let rows = client
                .query("SELECT run_id FROM rollout_runs ORDER BY run_id", &[])
                .await
                .map_err(|e| db(&e))?;
            Ok(rows.into_iter().map(|r| r.get(0)).collect())
        })
    }

    fn is_locked<'a>(&'a self, run_id: &'a str) -> StoreFuture<'a, bool> {
        Box::pin(async move {
            let client = self.client_or_io().await?;
            let row = client
                .query_opt(
                    "SELECT 1 FROM rollout_locks WHERE run_id = $1 AND released_at IS NULL AND lease_until > now()",
                    &[&run_id],
                )
                .await
                .map_err(|e| db(&e))?;
            Ok(row.is_some())
        })
    }

    fn flags(&self) -> String {
        format!("--state {}", self.target.shown)
    }

    fn lost_contact(&self) -> Option<String> {
        match self.loss()? {
            Loss::Unreachable(why) => Some(why),
            Loss::Lost(_) => None,
        }
    }
}

impl Drop for PgStore {
    fn drop(&mut self) {
        if let Some(lease) = self.held() {
            lease.stop_heartbeat();
        }
    }
}
