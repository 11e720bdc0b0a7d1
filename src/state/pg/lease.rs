//! Target locks as leases with an epoch, in `rollout_locks`.
//!
//! Taking a lock is one statement: insert the target's row, or take over a row whose lease ran
//! out (by the database's clock) or was released, with the next epoch; otherwise the lock is
//! held and the refusal names the holder. A heartbeat task renews the lease, conditional on the
//! epoch, every third of its length, or more often when the stop rule leaves less (see
//! [`renewal_interval`]). Every append (see [`super::journal`]) is conditional on the
//! lease too, so a holder whose lease ran out can never add a record.
//!
//! The stop rule: a holder that cannot confirm its lease stops its step processes (SIGINT,
//! SIGTERM, SIGKILL, `--grace` apart) before the lease can run out in the database's view. The
//! lease ends no earlier than `last confirmed + lease` on the holder's monotonic clock (the
//! renewal was sent at "last confirmed", and the database set the end from its own `now()`,
//! which is later), so the holder starts stopping at `last confirmed + lease - 2 × grace -
//! 1 s`, which leaves the two waits and a second's margin.

use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use tokio::sync::watch;

use super::PgStore;
use crate::state::lock::Holder;

/// Frees a lock at the end of its holder's session, and tells `watch`ers (who wait for a
/// notification to look again at who holds the run).
pub const RELEASE: &str = "WITH freed AS (
    UPDATE rollout_locks SET released_at = now(), lease_until = now()
     WHERE target = $1 AND lock_id = $2 AND epoch = $3 RETURNING run_id
) SELECT pg_notify('rollout', run_id || ':released') FROM freed WHERE run_id IS NOT NULL";

/// The margin the stop rule keeps beyond the two `--grace` waits.
pub const MARGIN: Duration = Duration::from_secs(1);

/// Why a holder lost its lease.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Loss {
    /// The database said the lease is no longer this holder's (it ran out, was taken over or
    /// removed with `rollout unlock`).
    Lost(String),
    /// The database could not be reached in time to keep the lease.
    Unreachable(String),
}

impl Loss {
    pub fn why(&self) -> &str {
        match self {
            Loss::Lost(w) | Loss::Unreachable(w) => w,
        }
    }
}

/// A lease this process holds.
pub struct Lease {
    pub target: String,
    pub lock_id: String,
    pub epoch: i64,
    pub holder: Holder,
    length: Duration,
    /// When the stop rule makes the holder stop, on the monotonic clock.
    stop_at: Mutex<Instant>,
    grace: Duration,
    fence: watch::Sender<Option<String>>,
    loss: Mutex<Option<Loss>>,
    heartbeat: Mutex<Option<tokio::task::JoinHandle<()>>>,
    released: Mutex<bool>,
    /// Whether a journal wrote under this lease (then a step may have run).
    used: std::sync::atomic::AtomicBool,
}

impl Lease {
    pub fn fence(&self) -> crate::state::Fence {
        self.fence.subscribe()
    }

    pub fn loss(&self) -> Option<Loss> {
        self.loss
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .clone()
    }

    /// When this holder must have stopped its steps if it confirms nothing more.
    pub fn stop_at(&self) -> Instant {
        *self
            .stop_at
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    fn confirmed(&self, sent: Instant) {
        let at = sent + self.length.saturating_sub(self.grace * 2 + MARGIN);
        let mut stop_at = self
            .stop_at
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        if at > *stop_at {
            *stop_at = at;
        }
    }

    /// Records the loss (the first one counts) and tells the session through the fence.
    pub fn lose(&self, loss: Loss) {
        let why = {
            let mut held = self
                .loss
                .lock()
                .unwrap_or_else(std::sync::PoisonError::into_inner);
            held.get_or_insert(loss).why().to_string()
        };
        self.fence.send_replace(Some(why));
        self.stop_heartbeat();
    }

    pub fn stop_heartbeat(&self) {
        if let Some(task) = self
            .heartbeat
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .take()
        {
            task.abort();
        }
    }

    /// The session is over (sealed): the heartbeat stops and the stop rule no longer applies.
    pub fn mark_released(&self) {
        *self
            .released
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner) = true;
        self.stop_heartbeat();
    }

    /// A journal wrote under this lease.
    pub fn mark_used(&self) {
        self.used.store(true, std::sync::atomic::Ordering::SeqCst);
    }

    fn is_released(&self) -> bool {
        *self
            .released
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }
}

/// The lock is held by someone else.
#[derive(Debug)]
pub struct Held {
    pub holder: Holder,
    pub epoch: i64,
    pub lease_until: String,
}

/// What taking a lock can end in.
#[derive(Debug)]
pub enum AcquireError {
    Held(Box<Held>),
    Db(String),
}

const UTC: &str = "'YYYY-MM-DD\"T\"HH24:MI:SS.MS\"Z\"'";

fn ts(column: &str) -> String {
    format!("to_char({column} AT TIME ZONE 'UTC', {UTC})")
}

fn millis(d: Duration) -> f64 {
    d.as_secs_f64() * 1000.0
}

/// What taking a lock over from an expired holder says, for the journal's `lock_acquired`.
pub struct Acquired {
    pub lease: Arc<Lease>,
    /// The holder whose lease ran out, when this one took it over.
    pub previous: Option<Holder>,
    /// The holder whose lease ran out and was taken over, with when it ran out.
    pub took_over: Option<String>,
}

impl PgStore {
    /// Takes the lock of `target` for `holder` (whose lock id, target and since are filled in),
    /// and starts its heartbeat. `grace` is the time between the signals that stop a step.
    pub async fn acquire(
        &self,
        target: &str,
        mut holder: Holder,
        grace: Duration,
    ) -> Result<Acquired, AcquireError> {
        let length = self.lease_length;
        if length <= grace * 2 + MARGIN {
            return Err(AcquireError::Db(format!(
                "a lease of {} is too short for a --grace of {}: it must be longer than twice the grace plus {} s (the time a holder that loses the database needs to stop its step)",
                humantime::format_duration(length),
                humantime::format_duration(grace),
                MARGIN.as_secs()
            )));
        }
        let client = self.client().await.map_err(AcquireError::Db)?;
        holder.lock_id = crate::state::lock::new_lock_id();
        holder.target = target.to_string();
        holder.since = crate::state::now();
        holder.released = None;
        let holder_json = serde_json::to_value(&holder).unwrap_or_default();
        let sent = Instant::now();
        let sql = format!(
            "WITH old AS (SELECT holder, epoch, released_at IS NULL AS live, {lu} AS lease_until FROM rollout_locks WHERE target = $1)
             INSERT INTO rollout_locks AS l (target, lock_id, epoch, holder, run_id, acquired_at, lease_until)
             VALUES ($1, $2, 1, $3, $4, now(), now() + $5 * interval '1 millisecond')
             ON CONFLICT (target) DO UPDATE SET lock_id = EXCLUDED.lock_id, epoch = l.epoch + 1,
                 holder = EXCLUDED.holder, run_id = EXCLUDED.run_id, acquired_at = now(),
                 lease_until = EXCLUDED.lease_until, released_at = NULL
             WHERE l.lease_until <= now() OR l.released_at IS NOT NULL
             RETURNING epoch, (SELECT holder FROM old), (SELECT live FROM old), (SELECT lease_until FROM old)",
            lu = ts("lease_until")
        );
        let row = client
            .query_opt(
                &sql,
                &[
                    &target,
                    &holder.lock_id,
                    &holder_json,
                    &holder.run,
                    &millis(length),
                ],
            )
            .await
            .map_err(|e| AcquireError::Db(super::conn::describe(&self.target, &e)))?;
        let Some(row) = row else {
            return Err(self.refusal(&client, target).await);
        };
        let epoch: i64 = row.get(0);
        let old: Option<serde_json::Value> = row.get(1);
        let live: Option<bool> = row.get(2);
        let old_until: Option<String> = row.get(3);
        let previous: Option<Holder> = match (old, live) {
            (Some(old), Some(true)) => Some(serde_json::from_value(old).unwrap_or_default()),
            _ => None,
        };
        let took_over = previous.as_ref().map(|old| {
            format!(
                "the lease of lock {} held by {} ran out at {} and was taken over (epoch {epoch})",
                old.lock_id,
                old,
                old_until.clone().unwrap_or_default()
            )
        });
        let (fence, _) = watch::channel(None);
        let lease = Arc::new(Lease {
            target: target.to_string(),
            lock_id: holder.lock_id.clone(),
            epoch,
            holder,
            length,
            stop_at: Mutex::new(sent + length.saturating_sub(grace * 2 + MARGIN)),
            grace,
            fence,
            loss: Mutex::new(None),
            heartbeat: Mutex::new(None),
            released: Mutex::new(false),
            used: std::sync::atomic::AtomicBool::new(false),
        });
        self.set_held(lease.clone());
        let task = tokio::spawn(heartbeat(
            self.target.clone(),
            client,
            Arc::downgrade(&lease),
        ));
        *lease
            .heartbeat
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner) = Some(task);
        Ok(Acquired {
            lease,
            previous,
            took_over,
        })
    }

    async fn refusal(&self, client: &tokio_postgres::Client, target: &str) -> AcquireError {
        let sql = format!(
            "SELECT holder, epoch, {} FROM rollout_locks WHERE target = $1",
            ts("lease_until")
        );
        match client.query_opt(&sql, &[&target]).await {
            Ok(Some(row)) => AcquireError::Held(Box::new(Held {
                holder: serde_json::from_value(row.get(0)).unwrap_or_default(),
                epoch: row.get(1),
                lease_until: row.get(2),
            })),
            Ok(None) => AcquireError::Db(format!(
                "the lock of `{target}` was released while rollout tried to take it; try again"
            )),
            Err(e) => AcquireError::Db(super::conn::describe(&self.target, &e)),
        }
    }

    /// Releases this process's lease (at the end of its session, after its seal).
    pub async fn release(&self) {
        let Some(lease) = self.held() else {
            return;
        };
        // Sealed (released then), lost, or unreachable: nothing to give back.
        if lease.is_released() || lease.loss().is_some() {
            lease.stop_heartbeat();
            return;
        }
        lease.mark_released();
        if let Ok(client) = self.client().await {
            let _ = tokio::time::timeout(
                super::STATEMENT_WAIT,
                client.query(
                    super::lease::RELEASE,
                    &[&lease.target, &lease.lock_id, &lease.epoch],
                ),
            )
            .await;
        }
    }

    /// Releases this process's lease if nothing was written under it (the session never
    /// started: a refusal after the lock was taken). A session that wrote released it with its
    /// seal, or, ended by an error, leaves it to run out, so that nothing it may have left
    /// running overlaps the next holder's steps.
    pub async fn release_unused(&self) {
        if self
            .held()
            .is_some_and(|l| !l.used.load(std::sync::atomic::Ordering::SeqCst))
        {
            self.release().await;
        }
    }

    /// Every lock in the database: holder, epoch, lease end, and whether it is held now.
    pub async fn locks(&self) -> Result<Vec<Listed>, String> {
        let client = self.client().await?;
        let sql = format!(
            "SELECT holder, epoch, {}, released_at IS NULL AND lease_until > now() FROM rollout_locks ORDER BY acquired_at",
            ts("lease_until")
        );
        let rows = client
            .query(&sql, &[])
            .await
            .map_err(|e| super::conn::describe(&self.target, &e))?;
        Ok(rows.into_iter().map(|r| Listed::of(&r)).collect())
    }

    /// Ends lock `lock_id` whoever holds it: its epoch moves on, so its holder can write
    /// nothing more; recorded in `rollout_unlocks`.
    pub async fn unlock(&self, lock_id: &str, by: &str) -> Result<Option<Listed>, String> {
        let client = self.client().await?;
        let sql = format!(
            "WITH old AS (SELECT target, epoch, holder, released_at IS NULL AND lease_until > now() AS held, {} AS lease_until FROM rollout_locks WHERE lock_id = $1),
                  upd AS (UPDATE rollout_locks SET epoch = epoch + 1, released_at = now(), lease_until = now() WHERE lock_id = $1 RETURNING target),
                  log AS (INSERT INTO rollout_unlocks (by_operator, target, lock_id, epoch, holder, was_held) SELECT $2, target, $1, epoch, holder, held FROM old),
                  note AS (SELECT pg_notify('rollout', run_id || ':unlocked') FROM rollout_locks WHERE lock_id = $1 AND run_id IS NOT NULL)
             SELECT holder, epoch, lease_until, held, (SELECT count(*) FROM note) FROM old",
            ts("lease_until")
        );
        let row = client
            .query_opt(&sql, &[&lock_id, &by])
            .await
            .map_err(|e| super::conn::describe(&self.target, &e))?;
        Ok(row.map(|r| Listed::of(&r)))
    }

    /// Who holds run `run_id`'s lock now, if anyone.
    pub async fn holder_of(&self, run_id: &str) -> Result<Option<Listed>, String> {
        let client = self.client().await?;
        let sql = format!(
            "SELECT holder, epoch, {}, true FROM rollout_locks WHERE run_id = $1 AND released_at IS NULL AND lease_until > now()",
            ts("lease_until")
        );
        let row = client
            .query_opt(&sql, &[&run_id])
            .await
            .map_err(|e| super::conn::describe(&self.target, &e))?;
        Ok(row.map(|r| Listed::of(&r)))
    }
}

/// A lock as `rollout locks` lists it.
#[derive(Debug, Clone)]
pub struct Listed {
    pub holder: Holder,
    pub epoch: i64,
    pub lease_until: String,
    pub held: bool,
}

impl Listed {
    /// From a row of holder, epoch, lease end (text) and whether it is held, in that order.
    fn of(row: &tokio_postgres::Row) -> Listed {
        Listed {
            holder: serde_json::from_value(row.get(0)).unwrap_or_default(),
            epoch: row.get(1),
            lease_until: row.get(2),
            held: row.get(3),
        }
    }
}

/// How often a lease of `length` is renewed for steps stopped `grace` apart: every third of it,
/// and at least twice in the time the stop rule leaves after a renewal (`length - 2 × grace -
/// 1 s`), so that a healthy holder is never stopped by its own rule and one late renewal is not
/// fatal.
fn renewal_interval(length: Duration, grace: Duration) -> Duration {
    (length / 3).min(length.saturating_sub(grace * 2 + MARGIN) / 2)
}

/// Renews the lease every [`renewal_interval`] until it is released or lost; applies the stop
/// rule when the database cannot confirm it. It starts on the store's connection and opens a
/// fresh one whenever that breaks.
async fn heartbeat(
    target: super::Target,
    first: Arc<tokio_postgres::Client>,
    lease: std::sync::Weak<Lease>,
) {
    let Some(strong) = lease.upgrade() else {
        return;
    };
    let every = renewal_interval(strong.length, strong.grace);
    let length_ms = millis(strong.length);
    drop(strong);
    let mut client = Some(first);
    let mut next = Instant::now() + every;
    loop {
        let Some(l) = lease.upgrade() else {
            return;
        };
        let stop_at = l.stop_at();
        drop(l);
        // Whichever comes first: the next renewal, or the moment the stop rule says stop.
        tokio::select! {
            () = tokio::time::sleep_until(next.into()) => {}
            () = tokio::time::sleep_until(stop_at.into()) => {
                let Some(l) = lease.upgrade() else { return };
                if l.is_released() { return; }
                if Instant::now() >= l.stop_at() {
                    l.lose(Loss::Unreachable(format!(
                        "the state database could not confirm the lease of lock {} for {} s, so its steps were stopped before the lease could run out",
                        l.lock_id,
                        l.length.as_secs()
                    )));
                    return;
                }
                continue;
            }
        }
        next = Instant::now() + every;
        let Some(l) = lease.upgrade() else {
            return;
        };
        if l.is_released() {
            return;
        }
        if client.as_ref().is_none_or(|c| c.is_closed()) {
            client = match tokio::time::timeout(every, super::conn::connect(&target)).await {
                Ok(Ok(c)) => Some(Arc::new(c)),
                _ => None,
            };
        }
        let Some(c) = client.clone() else {
            continue;
        };
        let sent = Instant::now();
        let renewed = tokio::time::timeout(
            every,
            c.execute(
                "UPDATE rollout_locks SET lease_until = now() + $4 * interval '1 millisecond' WHERE target = $1 AND lock_id = $2 AND epoch = $3 AND released_at IS NULL AND lease_until > now()",
                &[&l.target, &l.lock_id, &l.epoch, &length_ms],
            ),
        )
        .await;
        match renewed {
            Ok(Ok(1)) => l.confirmed(sent),
            Ok(Ok(_)) => {
                l.lose(Loss::Lost(format!(
                    "its lease of lock {} (epoch {}) is no longer current in the state database: it ran out, or `rollout unlock` ended it",
                    l.lock_id, l.epoch
                )));
                return;
            }
            Ok(Err(e)) if !super::is_connection_error(&e) => {}
            // No answer in time, or the connection broke: a new one next time.
            _ => client = None,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_lease_is_renewed_twice_within_what_the_stop_rule_leaves() {
        let s = Duration::from_secs;
        // The default: every 9.5 s rather than 10, as the rule leaves 19 s.
        assert_eq!(renewal_interval(s(30), s(5)), Duration::from_millis(9500));
        assert_eq!(renewal_interval(s(30), s(1)), s(10));
        // A long grace: the rule leaves 9 s, and a renewal every 10 s would always be late.
        assert_eq!(renewal_interval(s(30), s(10)), Duration::from_millis(4500));
        assert_eq!(renewal_interval(s(10), s(3)), Duration::from_millis(1500));
    }
}
