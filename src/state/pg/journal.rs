//! A run's journal in the database: each append is ONE statement that inserts the records only
//! while this holder's lease is current (compared with the database's `now()`), updates the
//! run's summary (what `rollout runs` reads, one row per run) and notifies `watch`ers, all in
//! the same transaction. Records that no side effect follows directly are held back and sent
//! with the next record that one does follow, in the same statement, as the file journal leaves
//! them to the next fsync: a step costs one round trip and one synchronous commit.
//!
//! When the database cannot be reached, the append is retried (a fresh connection each time)
//! until the stop rule's moment (see [`super::lease`]); a retry first looks whether the earlier
//! attempt committed after all. Then the run stops as paused ([`StoreError::Unreachable`]).

use std::sync::Arc;
use std::time::{Duration, Instant};

use tokio_postgres::types::Type;

use super::{Lease, Loss, PgStore};
use crate::state::audit;
use crate::state::record::Envelope;
use crate::state::{Entry, Fence, Journal, Record, RunState, StoreError, StoreFuture};

pub struct PgJournal {
    target: super::Target,
    client: Arc<tokio_postgres::Client>,
    lease: Arc<Lease>,
    run_id: String,
    next_seq: u64,
    head: String,
    envelope: Envelope,
    /// Where the run stands, folded record by record: the summary kept with the run.
    state: RunState,
    sealed_once: bool,
    /// The append statement, prepared once per connection.
    prepared: Option<tokio_postgres::Statement>,
    /// Records that no side effect follows directly, not sent yet: they go with the next record
    /// that one does follow (as the file journal leaves them to the next fsync), in the same
    /// statement, so a step costs one round trip and one synchronous commit.
    pending: Vec<(i64, String, String)>,
}

const APPEND: &str = "WITH ok AS (
    SELECT 1 FROM rollout_locks
     WHERE target = $1 AND lock_id = $2 AND epoch = $3 AND released_at IS NULL AND lease_until > now()
     FOR SHARE
), ins AS (
    INSERT INTO rollout_records (run_id, seq, line, hash)
    SELECT $4, b.seq, b.line, b.hash FROM ok, unnest($5::int8[], $6::text[], $7::text[]) AS b (seq, line, hash)
    RETURNING seq
), upd AS (
    UPDATE rollout_runs SET summary = $8, updated_at = now(), runbook_name = $10, runbook_path = $11, digest = $12
     WHERE run_id = $4 AND EXISTS (SELECT 1 FROM ins) RETURNING 1
), note AS (
    SELECT pg_notify('rollout', $4 || ':' || m::text) FROM (SELECT max(seq) AS m FROM ins) AS last WHERE m IS NOT NULL
)
SELECT (SELECT count(*) FROM ins), (SELECT count(*) FROM upd), (SELECT count(*) FROM note), set_config('synchronous_commit', $9, true)";

const TYPES: &[Type] = &[
    Type::TEXT,
    Type::TEXT,
    Type::INT8,
    Type::TEXT,
    Type::INT8_ARRAY,
    Type::TEXT_ARRAY,
    Type::TEXT_ARRAY,
    Type::JSONB,
    Type::TEXT,
    Type::TEXT,
    Type::TEXT,
    Type::TEXT,
];

/// What `rollout runs` and `status` need of a run, kept in `rollout_runs.summary`.
pub fn summary(s: &RunState) -> serde_json::Value {
    serde_json::json!({
        "run_id": s.run_id,
        "runbook": s.runbook,
        "runbook_name": s.runbook_name,
        "digest": s.digest,
        "operator": s.operator,
        "started_at": s.started_at,
        "standing": s.standing,
        "current": s.current,
        "in_doubt": s.in_doubt,
        "steps_done": s.done.len(),
        "waiting_gate": s.waiting_gate,
        "gate_answers": s.gate_answers,
        "last_at": s.last_at,
        "sealed": s.sealed,
    })
}

/// A summary as read back: typed, so that 10,000 of them parse without an intermediate tree.
#[derive(serde::Deserialize, Default)]
#[serde(default)]
struct Summary {
    run_id: String,
    runbook: String,
    runbook_name: String,
    digest: String,
    operator: String,
    started_at: String,
    standing: Option<crate::state::record::Standing>,
    current: Option<(String, String)>,
    in_doubt: Option<(String, String)>,
    steps_done: usize,
    waiting_gate: Option<crate::state::record::WaitingGate>,
    gate_answers: Vec<crate::state::record::AnsweredGate>,
    last_at: String,
    sealed: bool,
}

/// A run state with what a summary (its JSON text) holds, the rest left empty, and its count
/// of steps done.
pub fn state_of(summary: &str) -> (RunState, usize) {
    let s: Summary = serde_json::from_str(summary).unwrap_or_default();
    let state = RunState {
        run_id: s.run_id,
        runbook: s.runbook,
        runbook_name: s.runbook_name,
        digest: s.digest,
        operator: s.operator,
        started_at: s.started_at,
        standing: s.standing,
        current: s.current,
        in_doubt: s.in_doubt,
        waiting_gate: s.waiting_gate,
        gate_answers: s.gate_answers,
        last_at: s.last_at,
        sealed: s.sealed,
        ..RunState::default()
    };
    (state, s.steps_done)
}

/// Whether a record must be durable before rollout goes on: the file journal's rule.
fn needs_sync(entry: &Entry) -> bool {
    crate::state::file::needs_sync(entry)
}

impl PgJournal {
    pub fn new(
        store: &PgStore,
        lease: Arc<Lease>,
        run_id: &str,
        next_seq: u64,
        head: &str,
        state: Option<RunState>,
    ) -> Self {
        let client = store
            .client
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .clone();
        PgJournal {
            target: store.target.clone(),
            client,
            lease,
            run_id: run_id.to_string(),
            next_seq,
            head: head.to_string(),
            envelope: Envelope::default(),
            state: state.unwrap_or_default(),
            sealed_once: false,
            prepared: None,
            pending: Vec::new(),
        }
    }

    fn refused(&self) -> Option<StoreError> {
        match self.lease.loss()? {
            Loss::Lost(why) => Some(StoreError::LeaseLost {
                run: self.run_id.clone(),
                why,
            }),
            Loss::Unreachable(why) => Some(StoreError::Unreachable {
                run: self.run_id.clone(),
                why,
            }),
        }
    }

    async fn write(&mut self, entry: Entry) -> Result<Record, StoreError> {
        if let Some(e) = self.refused() {
            return Err(e);
        }
        let sync = needs_sync(&entry);
        let mut record = Record::chained(&self.envelope, self.next_seq, &self.head, entry);
        let (line, hash) = audit::encode(&record)
            .map_err(|e| StoreError::Io(format!("cannot encode a record: {e}")))?;
        let line = String::from_utf8(line)
            .map_err(|e| StoreError::Io(format!("cannot encode a record: {e}")))?;
        record.hash.clone_from(&hash);
        let mut next = self.state.clone();
        next.apply(&record);
        let seq = i64::try_from(record.seq).unwrap_or(i64::MAX);
        self.pending.push((seq, line, hash.clone()));
        if sync {
            let summary = summary(&next);
            let batch = std::mem::take(&mut self.pending);
            self.insert(&batch, &summary).await?;
        }
        self.state = next;
        self.next_seq += 1;
        self.head = hash;
        Ok(record)
    }

    /// Inserts one record under the lease, retrying on a broken connection until the stop
    /// rule's moment.
    async fn insert(
        &mut self,
        batch: &[(i64, String, String)],
        summary: &serde_json::Value,
    ) -> Result<(), StoreError> {
        let Some((seq, _, hash)) = batch.last() else {
            return Ok(());
        };
        let (seq, hash) = (*seq, hash.as_str());
        let seqs: Vec<i64> = batch.iter().map(|(s, ..)| *s).collect();
        let lines: Vec<&str> = batch.iter().map(|(_, l, _)| l.as_str()).collect();
        let hashes: Vec<&str> = batch.iter().map(|(.., h)| h.as_str()).collect();
        let mut last_error = String::new();
        let mut retried = false;
        loop {
            let deadline = self.lease.stop_at();
            let now = Instant::now();
            if now >= deadline || self.lease.loss().is_some() {
                if let Some(e) = self.refused() {
                    return Err(e);
                }
                let why = format!(
                    "the state database `{}` could not be reached to write record {} ({last_error}); rollout retried until its lease could no longer be counted on",
                    self.target.shown, seq
                );
                self.lease.lose(Loss::Unreachable(why.clone()));
                return Err(StoreError::Unreachable {
                    run: self.run_id.clone(),
                    why,
                });
            }
            let wait = (deadline - now).min(super::STATEMENT_WAIT);
            let attempt = tokio::time::timeout(wait, async {
                if self.client.is_closed() {
                    self.client = Arc::new(super::conn::connect(&self.target).await.map_err(Err)?);
                    self.prepared = None;
                }
                if retried {
                    // The earlier attempt may have committed before the connection broke.
                    let row = self
                        .client
                        .query_opt(
                            "SELECT hash FROM rollout_records WHERE run_id = $1 AND seq = $2",
                            &[&self.run_id, &seq],
                        )
                        .await
                        .map_err(Ok)?;
                    if let Some(row) = row {
                        let found: String = row.get(0);
                        return Ok(found == hash);
                    }
                }
                let stmt = match &self.prepared {
                    Some(stmt) => stmt.clone(),
                    None => {
                        let stmt = self.client.prepare_typed(APPEND, TYPES).await.map_err(Ok)?;
                        self.prepared = Some(stmt.clone());
                        stmt
                    }
                };
                let row = self
                    .client
                    .query_one(
                        &stmt,
                        &[
                            &self.lease.target,
                            &self.lease.lock_id,
                            &self.lease.epoch,
                            &self.run_id,
                            &seqs,
                            &lines,
                            &hashes,
                            summary,
                            &"on",
                            &Self::state_field(summary, "runbook_name"),
                            &Self::state_field(summary, "runbook"),
                            &Self::state_field(summary, "digest"),
                        ],
                    )
                    .await
                    .map_err(Ok)?;
                Ok(row.get::<_, i64>(0) == i64::try_from(batch.len()).unwrap_or(0))
            })
            .await;
            match attempt {
                Ok(Ok(true)) => {
                    self.lease.mark_used();
                    return Ok(());
                }
                Ok(Ok(false)) => {
                    let why = format!(
                        "its lease of lock {} (epoch {}) is no longer current in the state database (it ran out, another rollout took the run over, or `rollout unlock` ended it)",
                        self.lease.lock_id, self.lease.epoch
                    );
                    self.lease.lose(Loss::Lost(why.clone()));
                    return Err(StoreError::LeaseLost {
                        run: self.run_id.clone(),
                        why,
                    });
                }
                // An attempt given up on (no answer in time) committed after all, while this
                // one waited for its rows: the look at the record on the next round decides.
                Ok(Err(Ok(e)))
                    if retried
                        && e.code() == Some(&tokio_postgres::error::SqlState::UNIQUE_VIOLATION) =>
                {
                    last_error = super::conn::describe(&self.target, &e);
                }
                // The statement's own error: not a matter of the connection.
                Ok(Err(Ok(e))) if !super::is_connection_error(&e) => {
                    return Err(StoreError::Io(format!(
                        "the state database refused record {} of run `{}`: {}",
                        seq,
                        self.run_id,
                        super::conn::describe(&self.target, &e)
                    )));
                }
                Ok(Err(Ok(e))) => last_error = super::conn::describe(&self.target, &e),
                Ok(Err(Err(why))) => last_error = why,
                Err(_) => last_error = format!("no answer within {} ms", wait.as_millis()),
            }
            retried = true;
            // A broken connection is replaced on the next attempt.
            if !self.client.is_closed() && last_error.starts_with("no answer") {
                if let Ok(Ok(c)) =
                    tokio::time::timeout(wait, super::conn::connect(&self.target)).await
                {
                    self.client = Arc::new(c);
                    self.prepared = None;
                }
            }
            tokio::time::sleep(Duration::from_millis(200)).await;
        }
    }

    fn state_field(summary: &serde_json::Value, key: &str) -> String {
        summary
            .get(key)
            .and_then(serde_json::Value::as_str)
            .unwrap_or_default()
            .to_string()
    }
}

impl Journal for PgJournal {
    fn append(&mut self, entry: Entry) -> StoreFuture<'_, Record> {
        Box::pin(self.write(entry))
    }

    fn seal(&mut self) -> StoreFuture<'_, Record> {
        Box::pin(async move {
            let records = self.next_seq;
            let seal = self.write(Entry::Sealed { records }).await?;
            self.sealed_once = true;
            // The session is over: the lock is free for the next holder.
            self.lease.mark_released();
            let _ = tokio::time::timeout(
                super::STATEMENT_WAIT,
                self.client.query(
                    super::lease::RELEASE,
                    &[&self.lease.target, &self.lease.lock_id, &self.lease.epoch],
                ),
            )
            .await;
            Ok(seal)
        })
    }

    fn set_envelope(&mut self, envelope: Envelope) {
        self.envelope = envelope;
    }

    fn location(&self) -> String {
        format!("{} (run {})", self.target.shown, self.run_id)
    }

    fn fence(&self) -> Option<Fence> {
        Some(self.lease.fence())
    }

    fn approvals(&self) -> StoreFuture<'_, Vec<Result<crate::state::approval::Delivered, String>>> {
        Box::pin(super::approvals_of(
            &self.client,
            &self.target.shown,
            &self.run_id,
        ))
    }
}
