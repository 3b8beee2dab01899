//! The transactional outbox: a hand-off to another platform is a row committed with
//! the change that causes it; a relay delivers it, retrying with back-off until the
//! receiver (idempotent) accepts it. Several replicas share an outbox: a row is
//! claimed for a while (`FOR UPDATE SKIP LOCKED` on PostgreSQL).
//!
//! Each platform has its own table (the four may share one database) and its own job
//! type; the table's shape is the same everywhere:
//!
//! ```sql
//! CREATE TABLE <table> (id BIGSERIAL PRIMARY KEY, kind TEXT NOT NULL, payload TEXT NOT NULL,
//!     attempts INTEGER NOT NULL DEFAULT 0, last_error TEXT NOT NULL DEFAULT '',
//!     created_at TIMESTAMPTZ NOT NULL, next_attempt_at BIGINT NOT NULL,
//!     locked_until BIGINT, done_at TIMESTAMPTZ, job_key TEXT);
//! CREATE INDEX <table>_pending ON <table> (id) WHERE done_at IS NULL;
//! CREATE INDEX <table>_pending_by_key ON <table> (job_key, id) WHERE done_at IS NULL;
//! ```
//!
//! Done jobs stay for the record; the partial indexes keep claiming as cheap as the
//! backlog is short, however long the table grows.
//!
//! Jobs with the same key (`OutboxJob::key`, kept in `job_key`) are delivered in the
//! order they were written: only the oldest pending job of a key can be claimed, so a
//! later hand-off never overtakes an earlier one that is waiting out a back-off (a
//! declaration's review concluded before the receiver heard it went to review; a
//! holder's restriction lifted before it heard of the restriction). The migration that
//! added the column gave the jobs then pending their keys; a row without one is not
//! held back by any other.

use std::{future::Future, marker::PhantomData, sync::Arc, time::Duration};

use serde::{Serialize, de::DeserializeOwned};
use time::OffsetDateTime;
use tokio::sync::Notify;

use crate::{
    Error, Result,
    background::Background,
    db::{Database, OneStep, placeholders, rusqlite},
    on_pool,
};

/// A kind of hand-off a platform's outbox carries.
pub trait OutboxJob: Serialize + DeserializeOwned + Send + Sync + 'static {
    /// A short name kept beside the payload, for operators.
    fn kind(&self) -> &'static str;

    /// What the job is about (a declaration number, an enterprise code). The relay
    /// delivers jobs with the same key one after the other, in the order they were
    /// written, and jobs with different keys concurrently.
    fn key(&self) -> &str;

    fn payload(&self) -> Result<String> {
        serde_json::to_string(self).map_err(|e| Error::internal(anyhow::anyhow!(e)))
    }
}

/// A job as it is written: kind, key and JSON payload, the values that `insert_jobs!`
/// binds beside the two times.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Encoded {
    pub kind: &'static str,
    pub key: String,
    pub payload: String,
}

impl Encoded {
    pub fn of(job: &impl OutboxJob) -> Result<Self> {
        Ok(Self {
            kind: job.kind(),
            key: job.key().to_owned(),
            payload: job.payload()?,
        })
    }

    pub fn all<J: OutboxJob>(jobs: &[J]) -> Result<Vec<Self>> {
        jobs.iter().map(Self::of).collect()
    }
}

/// Writes encoded jobs inside a repository's open transaction, one statement each:
/// `insert_jobs!(tx, SQL, &jobs, created_at)`, where `SQL` is the platform's
/// `INSERT INTO <table> (kind, job_key, payload, created_at, next_attempt_at)
/// VALUES ($1, $2, $3, $4, $5)` and `jobs` a `&[Encoded]`. A macro, as the transaction
/// is PostgreSQL's or SQLite's.
#[macro_export]
macro_rules! insert_jobs {
    ($tx:expr, $sql:expr, $jobs:expr, $created_at:expr) => {{
        let due = $crate::outbox::now_millis();
        for job in $jobs {
            let job: &$crate::outbox::Encoded = job;
            sqlx::query($sql)
                .bind(job.kind)
                .bind(job.key.as_str())
                .bind(job.payload.as_str())
                .bind($created_at)
                .bind(due)
                .execute(&mut *$tx)
                .await?;
        }
    }};
}

pub fn now_millis() -> i64 {
    (OffsetDateTime::now_utc().unix_timestamp_nanos() / 1_000_000) as i64
}

/// A claimed job.
#[derive(Debug, Clone)]
pub struct Claimed<J> {
    pub id: i64,
    pub job: J,
    pub attempts: i32,
}

/// What became of one delivery.
#[derive(Debug)]
pub enum Delivery {
    Done,
    /// The receiver could not take it now (unreachable, busy): try again later.
    Retry(String),
}

#[derive(Debug)]
pub struct Outbox<J> {
    database: Database,
    table: &'static str,
    wake: Arc<Notify>,
    job: PhantomData<fn() -> J>,
}

impl<J> Clone for Outbox<J> {
    fn clone(&self) -> Self {
        Self {
            database: self.database.clone(),
            table: self.table,
            wake: self.wake.clone(),
            job: PhantomData,
        }
    }
}

/// Keys delivered at once by one relay: enough to keep up with submissions, few
/// enough that background hand-offs do not starve the calls being answered.
const RELAY_CONCURRENCY: usize = 8;

/// How long a claimed job is left to its claimer before another replica may take it.
const CLAIM_MILLIS: i64 = 30_000;

impl<J: OutboxJob> Outbox<J> {
    /// An outbox kept in `table` (a platform's own table of the shape above).
    pub fn new(database: Database, table: &'static str) -> Self {
        Self {
            database,
            table,
            wake: Arc::new(Notify::new()),
            job: PhantomData,
        }
    }

    /// Enqueues a job on its own, for tests: platforms write theirs in the transaction
    /// of the change that causes them (`insert_jobs!`).
    #[cfg(test)]
    pub async fn enqueue(&self, job: &J) -> Result<()> {
        let sql = sqlx::AssertSqlSafe(format!(
            "INSERT INTO {} (kind, job_key, payload, created_at, next_attempt_at) VALUES ($1, $2, $3, $4, $5)",
            self.table
        ));
        on_pool!(&self.database, pool => {
            sqlx::query(sql)
                .bind(job.kind())
                .bind(job.key())
                .bind(job.payload()?)
                .bind(OffsetDateTime::now_utc())
                .bind(now_millis())
                .execute(pool)
                .await?;
        });
        self.wake();
        Ok(())
    }

    /// Tells the relay that work may be waiting.
    pub fn wake(&self) {
        self.wake.notify_one();
    }

    /// Claims due jobs, each the oldest pending job of its key: of the first `limit`
    /// due jobs in id order, those with no earlier pending job of their key. A job
    /// held back so (its key's earlier job is waiting out a back-off, or is being
    /// delivered by another replica) keeps its place, so it is claimed right after the
    /// earlier one is done. A claim looks up the keys of at most `limit` jobs, however
    /// long the backlog (an outage's) grows; as a job that fails takes its key's later
    /// jobs' next attempt along (`retry_later`), held-back jobs seldom fill a batch.
    /// Were a batch's worth of them written while earlier ones wait, the jobs behind them
    /// would wait as long.
    pub async fn claim(&self, limit: i64) -> Result<Vec<Claimed<J>>> {
        self.done_and_claim(&[], limit).await
    }

    /// Marks `delivered` jobs done ([`Outbox::done`]), then claims ([`Outbox::claim`]):
    /// a relay's round. On a database file the two are one one-step transaction, one
    /// commit rather than two, and if it fails neither is kept (the jobs stay claimed
    /// until they are marked done).
    async fn done_and_claim(&self, delivered: &[i64], limit: i64) -> Result<Vec<Claimed<J>>> {
        let now = now_millis();
        // SQLite has one writer at a time: the UPDATE itself is the lock.
        let lock = match &self.database {
            Database::Postgres(_) => "FOR UPDATE SKIP LOCKED",
            Database::Sqlite(_) => "",
        };
        let sql = format!(
            "UPDATE {table} SET locked_until = $1 + $2, attempts = attempts + 1
             WHERE id IN (SELECT id FROM {table}
                          WHERE done_at IS NULL AND next_attempt_at <= $1
                            AND (locked_until IS NULL OR locked_until < $1)
                          ORDER BY id LIMIT $3 {lock})
               AND NOT EXISTS (SELECT 1 FROM {table} earlier
                               WHERE earlier.job_key = {table}.job_key AND earlier.done_at IS NULL
                                 AND earlier.id < {table}.id)
             RETURNING id, payload, attempts",
            table = self.table
        );
        let mut rows: Vec<(i64, String, i32)> =
            match (&self.database, self.database.direct_reader()) {
                // On a database file, a one-step transaction grouped with the other writes
                // (through the writer's sqlx connection, its commit left the one-step
                // connection's page cache stale), answering with the ids; the jobs are then
                // read at once on this thread.
                (Database::Sqlite(sqlite), Some(direct)) => {
                    let mut step = OneStep::default();
                    if !delivered.is_empty() {
                        self.push_done(&mut step, delivered);
                        step.push(";\n");
                    }
                    let params = [step.bind(now), step.bind(CLAIM_MILLIS), step.bind(limit)];
                    step.push_numbered(&sql, &params);
                    let ids = sqlite.one_step_rows(step).await?;
                    if ids.is_empty() {
                        return Ok(Vec::new());
                    }
                    let read = format!(
                        "SELECT id, payload, attempts FROM {} WHERE id IN ({})",
                        self.table,
                        placeholders(1, ids.len())
                    );
                    let params: Vec<&dyn rusqlite::ToSql> =
                        ids.iter().map(|id| id as &dyn rusqlite::ToSql).collect();
                    direct.query(&read, &params, |row| row.try_into())?
                }
                _ => on_pool!(&self.database, pool => {
                    self.done(delivered).await?;
                    sqlx::query_as(sqlx::AssertSqlSafe(sql))
                        .bind(now)
                        .bind(CLAIM_MILLIS)
                        .bind(limit)
                        .fetch_all(pool)
                        .await?
                }),
            };
        rows.sort_unstable_by_key(|(id, _, _)| *id);
        let mut claimed = Vec::with_capacity(rows.len());
        for (id, payload, attempts) in rows {
            match serde_json::from_str(&payload) {
                Ok(job) => claimed.push(Claimed { id, job, attempts }),
                Err(error) => {
                    tracing::error!(table = self.table, outbox_id = id, %error, "outbox job cannot be read; parked");
                    self.retry_later(
                        id,
                        attempts,
                        &format!("unreadable: {error}"),
                        Duration::from_secs(86_400),
                    )
                    .await?;
                }
            }
        }
        Ok(claimed)
    }

    /// Marks delivered jobs done, in one statement.
    pub async fn done(&self, ids: &[i64]) -> Result<()> {
        if ids.is_empty() {
            return Ok(());
        }
        match &self.database {
            Database::Postgres(pool) => {
                let mut query = sqlx::query(sqlx::AssertSqlSafe(self.done_sql(ids.len())))
                    .bind(OffsetDateTime::now_utc());
                for id in ids {
                    query = query.bind(*id);
                }
                query.execute(pool).await?;
            }
            // A one-step transaction, grouped with the other writes waiting for the
            // writer: through sqlx it was a commit of the writer's sqlx connection,
            // after which the one-step connection's next transaction found its page
            // cache stale and emptied it.
            Database::Sqlite(sqlite) => {
                let mut step = OneStep::default();
                self.push_done(&mut step, ids);
                step.push("; SELECT changes()");
                sqlite.one_step(step).await?;
            }
        }
        Ok(())
    }

    /// Marks `count` jobs done: `$1` the time, then their ids.
    fn done_sql(&self, count: usize) -> String {
        format!(
            "UPDATE {} SET done_at = $1, locked_until = NULL WHERE id IN ({})",
            self.table,
            placeholders(2, count)
        )
    }

    /// [`Outbox::done`]'s statement, into a one-step transaction.
    fn push_done(&self, step: &mut OneStep, ids: &[i64]) {
        let mut params = vec![step.bind(OffsetDateTime::now_utc())];
        params.extend(ids.iter().map(|id| step.bind(*id)));
        step.push_numbered(&self.done_sql(ids.len()), &params);
    }

    pub async fn retry_later(
        &self,
        id: i64,
        attempts: i32,
        error: &str,
        delay: Duration,
    ) -> Result<()> {
        let next = now_millis() + i64::try_from(delay.as_millis()).unwrap_or(i64::MAX / 2);
        let sql = sqlx::AssertSqlSafe(format!(
            "UPDATE {} SET next_attempt_at = $1, locked_until = NULL, last_error = $2 WHERE id = $3",
            self.table
        ));
        // The key's later jobs wait as long: due meanwhile, they would only be held back
        // at every claim, and enough of them would fill a claim's batch while other
        // keys' jobs (another receiver's, perhaps up) waited behind.
        let later = sqlx::AssertSqlSafe(format!(
            "UPDATE {table} SET next_attempt_at = $1
             WHERE job_key = (SELECT job_key FROM {table} WHERE id = $2)
               AND done_at IS NULL AND id > $2 AND next_attempt_at < $1",
            table = self.table
        ));
        on_pool!(&self.database, pool => {
            sqlx::query(sql)
                .bind(next)
                .bind(error)
                .bind(id)
                .execute(pool)
                .await?;
            sqlx::query(later).bind(next).bind(id).execute(pool).await?;
        });
        tracing::warn!(
            table = self.table,
            outbox_id = id,
            attempts,
            error,
            retry_in_ms = delay.as_millis() as u64,
            "hand-off failed; will retry"
        );
        Ok(())
    }

    /// Jobs not yet delivered (for tests and operators).
    pub async fn pending(&self) -> Result<i64> {
        let sql = sqlx::AssertSqlSafe(format!(
            "SELECT COUNT(*) FROM {} WHERE done_at IS NULL",
            self.table
        ));
        Ok(on_pool!(&self.database, pool => {
            sqlx::query_scalar(sql).fetch_one(pool).await?
        }))
    }

    /// Delivers jobs until the process stops: claims due jobs (each the oldest pending
    /// one of its key, so jobs of one key go one after the other, in order), hands
    /// them to `deliver` side by side, and records the outcome (done, or retried with
    /// back-off, which holds the key's later jobs back with it). At shutdown it
    /// finishes the batch in hand, records it, and stops.
    pub fn spawn_relay<F, Fut>(self, background: &Background, deliver: F)
    where
        F: Fn(J) -> Fut + Send + Sync + 'static,
        Fut: Future<Output = Result<Delivery>> + Send,
    {
        let deliver = std::sync::Arc::new(deliver);
        let stop = background.clone();
        background.spawn(async move {
            // Jobs delivered in the last round, marked done with the next claim.
            let mut delivered: Vec<i64> = Vec::new();
            while !stop.is_stopping() {
                let jobs = match self.done_and_claim(&delivered, 64).await {
                    Ok(jobs) => jobs,
                    Err(error) => {
                        tracing::error!(table = self.table, jobs = delivered.len(), error = %error, "outbox unavailable; delivered hand-offs not yet recorded as done");
                        stop.pause(Duration::from_secs(1)).await;
                        continue;
                    }
                };
                // Recorded as done with that claim.
                delivered.clear();
                if jobs.is_empty() {
                    tokio::select! {
                        () = self.wake.notified() => {}
                        () = stop.pause(Duration::from_millis(500)) => {}
                    }
                    continue;
                }
                use futures::StreamExt as _;
                let outcomes: Vec<Option<i64>> = futures::stream::iter(jobs.into_iter().map(|claimed| {
                    let (outbox, deliver) = (self.clone(), deliver.clone());
                    async move {
                        let (id, attempts) = (claimed.id, claimed.attempts);
                        let why = match deliver(claimed.job).await {
                            Ok(Delivery::Done) => return Some(id),
                            Ok(Delivery::Retry(why)) => why,
                            Err(error) => error.to_string(),
                        };
                        if let Err(error) = outbox.retry(id, attempts, &why).await {
                            tracing::error!(table = outbox.table, outbox_id = id, error = %error, "cannot record the hand-off's outcome");
                        }
                        None
                    }
                }))
                .buffer_unordered(RELAY_CONCURRENCY)
                .collect()
                .await;
                // Until this is recorded (with the next claim) the jobs stay claimed;
                // were the process to stop first, they would be delivered again
                // (receivers are idempotent).
                delivered.extend(outcomes.into_iter().flatten());
            }
            if let Err(error) = self.done(&delivered).await {
                tracing::error!(table = self.table, jobs = delivered.len(), error = %error, "cannot record delivered hand-offs; they will be delivered again");
            }
            tracing::debug!(table = self.table, "relay stopped");
        });
    }

    async fn retry(&self, id: i64, attempts: i32, why: &str) -> Result<()> {
        self.retry_later(id, attempts, why, backoff(attempts)).await
    }
}

/// What a receiver's answer makes of a delivery: accepted is done; refused for good
/// (the receiver's state or the request rules it out) is logged and done, the
/// sender's audit record stays; anything else (unreachable, busy) is retried.
pub fn settle(
    receiver: &str,
    job: &impl std::fmt::Debug,
    outcome: std::result::Result<(), tonic::Status>,
) -> Delivery {
    use tonic::Code;
    match outcome {
        Ok(()) => Delivery::Done,
        Err(status)
            if matches!(
                status.code(),
                Code::FailedPrecondition | Code::InvalidArgument | Code::NotFound
            ) =>
        {
            tracing::error!(?job, code = ?status.code(), message = status.message(), "the {receiver} refused a hand-off");
            Delivery::Done
        }
        Err(status) => Delivery::Retry(format!(
            "{receiver}: {:?} {}",
            status.code(),
            status.message()
        )),
    }
}

/// Back-off after `attempts` failures: 0.5 s doubling to at most a minute.
pub fn backoff(attempts: i32) -> Duration {
    let exponent = u32::try_from(attempts.clamp(1, 8) - 1).unwrap_or(0);
    Duration::from_millis(500 * 2u64.pow(exponent)).min(Duration::from_secs(60))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[derive(Debug, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
    struct Ping {
        key: String,
        #[serde(default)]
        n: u32,
    }

    fn ping(key: &str, n: u32) -> Ping {
        Ping { key: key.into(), n }
    }

    impl OutboxJob for Ping {
        fn kind(&self) -> &'static str {
            "ping"
        }

        fn key(&self) -> &str {
            &self.key
        }
    }

    /// Shutdown waits for the batch the relay is delivering, which is then recorded as
    /// delivered (not left claimed, to be delivered again after the restart), and the
    /// relay claims nothing after it.
    #[tokio::test]
    async fn at_shutdown_the_relay_finishes_and_records_its_batch_then_stops() {
        let database = Database::connect_url("sqlite::memory:", 1).await.unwrap();
        let Database::Sqlite(sqlite) = &database else {
            unreachable!("an SQLite URL")
        };
        sqlx::raw_sql(SQLITE_PINGS)
            .execute(&sqlite.writer)
            .await
            .unwrap();
        let outbox = Outbox::<Ping>::new(database.clone(), "pings");
        let background = Background::default();
        let (started, mut delivering) = tokio::sync::mpsc::unbounded_channel();
        let release = Arc::new(Notify::new());
        let gate = release.clone();
        outbox.clone().spawn_relay(&background, move |ping: Ping| {
            let (started, gate) = (started.clone(), gate.clone());
            async move {
                started.send(ping.key).unwrap();
                gate.notified().await;
                Ok(Delivery::Done)
            }
        });
        outbox.enqueue(&ping("first", 0)).await.unwrap();
        assert_eq!(delivering.recv().await.unwrap(), "first");

        let shutdown = tokio::spawn({
            let background = background.clone();
            async move { background.shutdown(Duration::from_secs(10)).await }
        });
        tokio::time::sleep(Duration::from_millis(100)).await;
        assert!(!shutdown.is_finished(), "waits for the delivery in hand");
        release.notify_one();
        assert!(shutdown.await.unwrap(), "the relay stopped in time");
        assert_eq!(outbox.pending().await.unwrap(), 0, "recorded as delivered");

        outbox.enqueue(&ping("later", 0)).await.unwrap();
        tokio::time::sleep(Duration::from_millis(700)).await;
        assert!(
            delivering.try_recv().is_err(),
            "nothing claimed after it stopped"
        );
        assert_eq!(outbox.pending().await.unwrap(), 1);
    }

    const SQLITE_PINGS: &str = "CREATE TABLE pings (id INTEGER PRIMARY KEY,
             kind TEXT NOT NULL, payload TEXT NOT NULL, attempts INTEGER NOT NULL DEFAULT 0,
             last_error TEXT NOT NULL DEFAULT '', created_at TEXT NOT NULL,
             next_attempt_at INTEGER NOT NULL, locked_until INTEGER, done_at TEXT, job_key TEXT);
         CREATE INDEX pings_pending ON pings (id) WHERE done_at IS NULL;
         CREATE INDEX pings_pending_by_key ON pings (job_key, id) WHERE done_at IS NULL;";

    const POSTGRES_PINGS: &str = "CREATE TABLE pings (id BIGSERIAL PRIMARY KEY,
             kind TEXT NOT NULL, payload TEXT NOT NULL, attempts INTEGER NOT NULL DEFAULT 0,
             last_error TEXT NOT NULL DEFAULT '', created_at TIMESTAMPTZ NOT NULL,
             next_attempt_at BIGINT NOT NULL, locked_until BIGINT, done_at TIMESTAMPTZ, job_key TEXT);
         CREATE INDEX pings_pending ON pings (id) WHERE done_at IS NULL;
         CREATE INDEX pings_pending_by_key ON pings (job_key, id) WHERE done_at IS NULL;";

    async fn pings(database: &crate::testing::TestDatabase) -> Outbox<Ping> {
        let database = database.database.clone();
        match &database {
            Database::Sqlite(sqlite) => {
                sqlx::raw_sql(SQLITE_PINGS)
                    .execute(&sqlite.writer)
                    .await
                    .unwrap();
            }
            Database::Postgres(pool) => {
                sqlx::raw_sql(POSTGRES_PINGS).execute(pool).await.unwrap();
            }
        }
        Outbox::new(database, "pings")
    }

    fn claimed(jobs: &[Claimed<Ping>]) -> Vec<(&str, u32)> {
        jobs.iter().map(|c| (c.job.key.as_str(), c.job.n)).collect()
    }

    /// Only the oldest pending job of a key is claimed: the next one waits while it is
    /// being delivered and while it waits out a back-off, and is claimed once it is done.
    async fn jobs_of_one_key_are_claimed_one_after_the_other_in_order(outbox: Outbox<Ping>) {
        outbox.enqueue(&ping("k", 1)).await.unwrap();
        outbox.enqueue(&ping("k", 2)).await.unwrap();
        outbox.enqueue(&ping("other", 1)).await.unwrap();
        let first = outbox.claim(64).await.unwrap();
        assert_eq!(claimed(&first), [("k", 1), ("other", 1)]);
        assert!(
            outbox.claim(64).await.unwrap().is_empty(),
            "k 2 waits while k 1 is being delivered"
        );

        // k 1 fails: it waits out its back-off, and k 2 with it.
        outbox
            .retry_later(first[0].id, 1, "receiver down", Duration::from_millis(300))
            .await
            .unwrap();
        outbox.done(&[first[1].id]).await.unwrap();
        outbox.enqueue(&ping("other", 2)).await.unwrap();
        assert_eq!(
            claimed(&outbox.claim(64).await.unwrap()),
            [("other", 2)],
            "another key goes on"
        );
        tokio::time::sleep(Duration::from_millis(350)).await;
        let again = outbox.claim(64).await.unwrap();
        assert_eq!(claimed(&again), [("k", 1)], "k 1 again, still before k 2");
        assert_eq!(
            (first[0].attempts, again[0].attempts),
            (1, 2),
            "each claim counts an attempt"
        );
        outbox.done(&[again[0].id]).await.unwrap();
        assert_eq!(claimed(&outbox.claim(64).await.unwrap()), [("k", 2)]);
    }

    /// While a job waits out its back-off, its key's later jobs wait as long, so a batch
    /// is not filled with jobs that would only be held back: here a batch of two.
    async fn a_key_s_later_jobs_wait_out_its_back_off_with_it(outbox: Outbox<Ping>) {
        for n in 1..=3 {
            outbox.enqueue(&ping("k", n)).await.unwrap();
        }
        let first = outbox.claim(2).await.unwrap();
        assert_eq!(claimed(&first), [("k", 1)]);
        outbox
            .retry_later(first[0].id, 1, "receiver down", Duration::from_secs(60))
            .await
            .unwrap();
        outbox.enqueue(&ping("other", 1)).await.unwrap();
        assert_eq!(
            claimed(&outbox.claim(2).await.unwrap()),
            [("other", 1)],
            "k 2 and k 3 do not take the batch's places"
        );
    }

    /// A relay whose receiver refuses the first delivery of k 1: k 2, written while
    /// k 1 waits, is still delivered after it.
    async fn the_relay_never_lets_a_later_job_overtake_one_in_back_off(outbox: Outbox<Ping>) {
        let background = Background::default();
        let (delivered, mut deliveries) = tokio::sync::mpsc::unbounded_channel();
        let refused_once = Arc::new(std::sync::atomic::AtomicBool::new(false));
        outbox.clone().spawn_relay(&background, move |ping: Ping| {
            let (delivered, refused_once) = (delivered.clone(), refused_once.clone());
            async move {
                if ping.n == 1 && !refused_once.swap(true, std::sync::atomic::Ordering::SeqCst) {
                    delivered.send((ping.n, false)).unwrap();
                    return Ok(Delivery::Retry("receiver down".into()));
                }
                delivered.send((ping.n, true)).unwrap();
                Ok(Delivery::Done)
            }
        });
        outbox.enqueue(&ping("k", 1)).await.unwrap();
        assert_eq!(deliveries.recv().await.unwrap(), (1, false));
        outbox.enqueue(&ping("k", 2)).await.unwrap();
        assert_eq!(deliveries.recv().await.unwrap(), (1, true));
        assert_eq!(deliveries.recv().await.unwrap(), (2, true));
        // Recorded as delivered with the relay's next claim, while it runs.
        let mut pending = outbox.pending().await.unwrap();
        for _ in 0..200 {
            if pending == 0 {
                break;
            }
            tokio::time::sleep(Duration::from_millis(10)).await;
            pending = outbox.pending().await.unwrap();
        }
        assert_eq!(pending, 0, "marked done before the relay stops");
        assert!(background.shutdown(Duration::from_secs(10)).await);
        assert_eq!(outbox.pending().await.unwrap(), 0);
    }

    crate::database_suite!(
        pings;
        jobs_of_one_key_are_claimed_one_after_the_other_in_order,
        a_key_s_later_jobs_wait_out_its_back_off_with_it,
        the_relay_never_lets_a_later_job_overtake_one_in_back_off,
    );

    #[test]
    fn backoff_doubles_to_a_minute() {
        assert_eq!(backoff(1), Duration::from_millis(500));
        assert_eq!(backoff(2), Duration::from_secs(1));
        assert_eq!(backoff(8), Duration::from_secs(60));
        assert_eq!(backoff(100), Duration::from_secs(60));
    }
}
