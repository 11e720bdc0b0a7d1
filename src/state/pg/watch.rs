//! Following a run as its records are committed: `LISTEN rollout` on a connection of its own
//! (each append notifies `run_id:seq` in its transaction), then the records after the last one
//! seen, a page at a time, so memory stays flat however long the run. No polling: between
//! notifications it only wakes to look whether the holder is still there (once a lease length).

use std::time::Duration;

use super::conn::{self, Target};
use crate::state::Record;

/// What following a run told the caller.
pub enum Seen<'a> {
    Record(&'a Record),
    /// Who holds the run now (`None`: nobody).
    Holder(Option<Box<super::lease::Listed>>),
}

const PAGE: i64 = 1000;

/// Follows run `run_id` from its first record until its session is over (the log sealed and
/// nobody holding it) or nobody holds it any more; `on` is told each record and each change of
/// holder.
pub async fn follow(
    store: &super::PgStore,
    run_id: &str,
    lease: Duration,
    on: &mut dyn FnMut(Seen<'_>),
) -> Result<(), String> {
    let target: &Target = &store.target;
    let (listener, mut notes) = listen(target).await?;
    let mut last: i64 = 0;
    let mut holder_id: Option<(String, i64)> = None;
    let mut first = true;
    loop {
        // Every record committed so far, a page at a time.
        fetch(&listener, target, run_id, &mut last, on).await?;
        let holder = store.holder_of(run_id).await?;
        let id = holder.as_ref().map(|h| (h.holder.lock_id.clone(), h.epoch));
        if first || id != holder_id {
            if holder.is_none() {
                // What the last holder wrote before it let go.
                fetch(&listener, target, run_id, &mut last, on).await?;
            }
            on(Seen::Holder(holder.clone().map(Box::new)));
            holder_id = id;
            first = false;
        }
        if holder.is_none() {
            if last == 0 {
                return Err(format!("run `{run_id}` has no record and nobody holds it"));
            }
            return Ok(());
        }
        // Wait for this run's next record, or a lease length to look at the holder again.
        let deadline = tokio::time::Instant::now() + lease;
        loop {
            match tokio::time::timeout_at(deadline, notes.recv()).await {
                Ok(Some(payload)) if payload.rsplit_once(':').is_some_and(|(r, _)| r == run_id) => {
                    break;
                }
                Ok(Some(_)) => {}
                Ok(None) => return Err(format!("lost the connection to `{}`", target.shown)),
                Err(_) => break,
            }
        }
    }
}

/// Tells `on` every record of the run after `last`, a page at a time.
async fn fetch(
    client: &tokio_postgres::Client,
    target: &Target,
    run_id: &str,
    last: &mut i64,
    on: &mut dyn FnMut(Seen<'_>),
) -> Result<(), String> {
    loop {
        let rows = client
            .query(
                "SELECT seq, line FROM rollout_records WHERE run_id = $1 AND seq > $2 ORDER BY seq LIMIT $3",
                &[&run_id, &*last, &PAGE],
            )
            .await
            .map_err(|e| conn::describe(target, &e))?;
        let n = rows.len();
        for row in rows {
            *last = row.get(0);
            let line: &str = row.get(1);
            if let Ok(record) = serde_json::from_str::<Record>(line) {
                on(Seen::Record(&record));
            }
        }
        if i64::try_from(n).unwrap_or(0) < PAGE {
            return Ok(());
        }
    }
}

/// A connection listening on the `rollout` channel, and the payloads of its notifications.
async fn listen(
    target: &Target,
) -> Result<
    (
        tokio_postgres::Client,
        tokio::sync::mpsc::UnboundedReceiver<String>,
    ),
    String,
> {
    let tls = conn::tls(target)?;
    let (client, mut connection) = target
        .config
        .connect(tls)
        .await
        .map_err(|e| conn::describe(target, &e))?;
    let (tx, rx) = tokio::sync::mpsc::unbounded_channel();
    tokio::spawn(async move {
        loop {
            match std::future::poll_fn(|cx| connection.poll_message(cx)).await {
                Some(Ok(tokio_postgres::AsyncMessage::Notification(n))) => {
                    if tx.send(n.payload().to_string()).is_err() {
                        return;
                    }
                }
                Some(Ok(_)) => {}
                Some(Err(_)) | None => return,
            }
        }
    });
    client
        .batch_execute("LISTEN rollout")
        .await
        .map_err(|e| conn::describe(target, &e))?;
    Ok((client, rx))
}
