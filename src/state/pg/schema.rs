//! The tables, created on first use and migrated by version (`rollout_meta.schema_version`),
//! inside one transaction that holds an advisory lock, so that two rollouts starting at once
//! do not both migrate. A database whose schema is newer than this binary knows is refused.

use super::conn::Target;

/// The schema this binary writes.
pub const VERSION: i64 = 2;

/// Migration `n` brings the schema from version `n` to `n + 1`.
const MIGRATIONS: &[&str] = &[
    // 0 -> 1
    "CREATE TABLE rollout_runs (
        run_id text PRIMARY KEY,
        target text,
        runbook_name text NOT NULL DEFAULT '',
        runbook_path text NOT NULL DEFAULT '',
        digest text NOT NULL DEFAULT '',
        snapshot text NOT NULL,
        created_at timestamptz NOT NULL DEFAULT now(),
        updated_at timestamptz NOT NULL DEFAULT now(),
        summary jsonb NOT NULL DEFAULT '{}'
    );
    CREATE TABLE rollout_records (
        run_id text NOT NULL REFERENCES rollout_runs (run_id),
        seq bigint NOT NULL,
        line text NOT NULL,
        hash text NOT NULL,
        PRIMARY KEY (run_id, seq)
    );
    CREATE TABLE rollout_locks (
        target text PRIMARY KEY,
        lock_id text NOT NULL,
        epoch bigint NOT NULL,
        holder jsonb NOT NULL,
        run_id text,
        acquired_at timestamptz NOT NULL,
        lease_until timestamptz NOT NULL,
        released_at timestamptz
    );
    CREATE TABLE rollout_unlocks (
        at timestamptz NOT NULL DEFAULT now(),
        by_operator text NOT NULL,
        target text NOT NULL,
        lock_id text NOT NULL,
        epoch bigint NOT NULL,
        holder jsonb NOT NULL,
        was_held boolean NOT NULL
    );",
    // 1 -> 2: signed approvals delivered to runs (`rollout approve`), one row each.
    "CREATE TABLE rollout_approvals (
        run_id text NOT NULL REFERENCES rollout_runs (run_id),
        name text NOT NULL,
        text text NOT NULL,
        delivered_at timestamptz NOT NULL DEFAULT now(),
        PRIMARY KEY (run_id, name)
    );",
];

async fn version(client: &tokio_postgres::Client) -> Result<i64, tokio_postgres::Error> {
    let exists: bool = client
        .query_one("SELECT to_regclass('rollout_meta') IS NOT NULL", &[])
        .await?
        .get(0);
    if !exists {
        return Ok(0);
    }
    let row = client
        .query_opt(
            "SELECT value FROM rollout_meta WHERE key = 'schema_version'",
            &[],
        )
        .await?;
    Ok(row
        .and_then(|r| r.get::<_, String>(0).parse().ok())
        .unwrap_or(0))
}

/// Brings the schema to [`VERSION`], or refuses a newer one.
pub async fn migrate(client: &tokio_postgres::Client, target: &Target) -> Result<(), String> {
    let fail = |e: tokio_postgres::Error| super::conn::describe(target, &e);
    let found = version(client).await.map_err(fail)?;
    if found == VERSION {
        return Ok(());
    }
    if found > VERSION {
        return Err(too_new(target, found));
    }
    client
        .batch_execute(
            "BEGIN; SELECT pg_advisory_xact_lock(7419823); CREATE TABLE IF NOT EXISTS rollout_meta (key text PRIMARY KEY, value text NOT NULL);",
        )
        .await
        .map_err(fail)?;
    let result = async {
        // Another rollout may have migrated while this one waited for the lock.
        let mut at = version(client).await?;
        if at > VERSION {
            return Ok(Some(at));
        }
        while at < VERSION {
            let step = usize::try_from(at).unwrap_or(usize::MAX);
            client.batch_execute(MIGRATIONS[step]).await?;
            at += 1;
        }
        client
            .execute(
                "INSERT INTO rollout_meta (key, value) VALUES ('schema_version', $1) ON CONFLICT (key) DO UPDATE SET value = EXCLUDED.value",
                &[&at.to_string()],
            )
            .await?;
        Ok(None)
    }
    .await;
    match result {
        Ok(None) => client.batch_execute("COMMIT").await.map_err(fail),
        Ok(Some(newer)) => {
            let _ = client.batch_execute("ROLLBACK").await;
            Err(too_new(target, newer))
        }
        Err(e) => {
            let _ = client.batch_execute("ROLLBACK").await;
            Err(fail(e))
        }
    }
}

fn too_new(target: &Target, found: i64) -> String {
    format!(
        "the state database `{}` has rollout schema version {found}, newer than this rollout knows (version {VERSION}): upgrade rollout (rollout {}) to use it",
        target.shown,
        env!("CARGO_PKG_VERSION")
    )
}
