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
//!     locked_until BIGINT, done_at TIMESTAMPTZ);
//! CREATE INDEX <table>_pending ON <table> (id) WHERE done_at IS NULL;
//! ```
//!
//! Done jobs stay for the record; the partial index keeps claiming as cheap as the
//! backlog is short, however long the table grows.

use std::{future::Future, marker::PhantomData, sync::Arc, time::Duration};

use serde::{Serialize, de::DeserializeOwned};
use time::OffsetDateTime;
use tokio::sync::Notify;

use crate::{Error, Result, background::Background, db::Database, on_pool};

/// A kind of hand-off a platform's outbox carries.
pub trait OutboxJob: Serialize + DeserializeOwned + Send + Sync + 'static {
    /// A short name kept beside the payload, for operators.
    fn kind(&self) -> &'static str;

    /// What the job is about (a declaration number, an enterprise code). The relay
    /// delivers jobs with the same key one after the other, in order, and jobs with
    /// different keys concurrently.
    fn key(&self) -> &str;

    fn payload(&self) -> Result<String> {
        serde_json::to_string(self).map_err(|e| Error::internal(anyhow::anyhow!(e)))
    }
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

    /// The statement that enqueues a job inside a repository's own transaction; bind
    /// kind, payload, created_at, next_attempt_at.
    pub fn enqueue_sql(&self) -> String {
        format!(
            "INSERT INTO {} (kind, payload, created_at, next_attempt_at) VALUES ($1, $2, $3, $4)",
            self.table
        )
    }

    /// Enqueues a job on its own (when there is no other write to join).
    pub async fn enqueue(&self, job: &J) -> Result<()> {
        let payload = job.payload()?;
        let sql = sqlx::AssertSqlSafe(self.enqueue_sql());
        on_pool!(&self.database, pool => {
            sqlx::query(sql)
                .bind(job.kind())
                .bind(payload)
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

    /// Claims up to `limit` due jobs.
    pub async fn claim(&self, limit: i64) -> Result<Vec<Claimed<J>>> {
        let now = now_millis();
        // SQLite has one writer at a time: the UPDATE itself is the lock.
        let lock = match &self.database {
            Database::Postgres(_) => "FOR UPDATE SKIP LOCKED",
            Database::Sqlite(_) => "",
        };
        let sql = sqlx::AssertSqlSafe(format!(
            "UPDATE {table} SET locked_until = $1 + $2, attempts = attempts + 1
             WHERE id IN (SELECT id FROM {table}
                          WHERE done_at IS NULL AND next_attempt_at <= $1
                            AND (locked_until IS NULL OR locked_until < $1)
                          ORDER BY id LIMIT $3 {lock})
             RETURNING id, payload, attempts",
            table = self.table
        ));
        let mut rows: Vec<(i64, String, i32)> = on_pool!(&self.database, pool => {
            sqlx::query_as(sql)
                .bind(now)
                .bind(CLAIM_MILLIS)
                .bind(limit)
                .fetch_all(pool)
                .await?
        });
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
        let now = OffsetDateTime::now_utc();
        on_pool!(&self.database, pool => {
            let mut query =
                sqlx::QueryBuilder::new(format!("UPDATE {} SET done_at = ", self.table));
            query.push_bind(now).push(", locked_until = NULL WHERE id IN (");
            let mut list = query.separated(", ");
            for id in ids {
                list.push_bind(*id);
            }
            query.push(")");
            query.build().execute(pool).await?;
        });
        Ok(())
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
        on_pool!(&self.database, pool => {
            sqlx::query(sql)
                .bind(next)
                .bind(error)
                .bind(id)
                .execute(pool)
                .await?;
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

    /// Delivers jobs until the process stops: claims due jobs in order, hands each to
    /// `deliver` (jobs of one key in order, different keys concurrently), and records
    /// the outcome (done, or retried with back-off). When a job fails, the key's later
    /// jobs of the batch wait with it, so one declaration's hand-offs keep their order.
    /// At shutdown it finishes the batch in hand, records it, and stops.
    pub fn spawn_relay<F, Fut>(self, background: &Background, deliver: F)
    where
        F: Fn(J) -> Fut + Send + Sync + 'static,
        Fut: Future<Output = Result<Delivery>> + Send,
    {
        let deliver = std::sync::Arc::new(deliver);
        let stop = background.clone();
        background.spawn(async move {
            while !stop.is_stopping() {
                match self.claim(64).await {
                    Ok(jobs) if !jobs.is_empty() => {
                        // In claim (id) order per key; keys side by side.
                        let mut groups: Vec<Vec<Claimed<J>>> = Vec::new();
                        for claimed in jobs {
                            match groups
                                .iter_mut()
                                .find(|group| group[0].job.key() == claimed.job.key())
                            {
                                Some(group) => group.push(claimed),
                                None => groups.push(vec![claimed]),
                            }
                        }
                        use futures::StreamExt as _;
                        let delivered: Vec<Vec<i64>> = futures::stream::iter(groups.into_iter().map(|group| {
                            let (outbox, deliver) = (self.clone(), deliver.clone());
                            async move {
                                // After a failure, the key's later jobs wait for it.
                                let mut blocked: Option<Duration> = None;
                                let mut delivered = Vec::with_capacity(group.len());
                                for claimed in group {
                                    let (id, attempts) = (claimed.id, claimed.attempts);
                                    let outcome = if let Some(delay) = blocked {
                                        outbox.retry_later(id, attempts, "waits for an earlier hand-off", delay).await
                                    } else {
                                        let failed = match deliver(claimed.job).await {
                                            Ok(Delivery::Done) => None,
                                            Ok(Delivery::Retry(why)) => Some(why),
                                            Err(error) => Some(error.to_string()),
                                        };
                                        match failed {
                                            None => {
                                                delivered.push(id);
                                                Ok(())
                                            }
                                            Some(why) => {
                                                blocked = Some(backoff(attempts));
                                                outbox.retry(id, attempts, &why).await
                                            }
                                        }
                                    };
                                    if let Err(error) = outcome {
                                        tracing::error!(table = outbox.table, outbox_id = id, error = %error, "cannot record the hand-off's outcome");
                                    }
                                }
                                delivered
                            }
                        }))
                        .buffer_unordered(RELAY_CONCURRENCY)
                        .collect()
                        .await;
                        // Until this is recorded the jobs stay claimed; were the process
                        // to stop first, they would be delivered again (receivers are
                        // idempotent).
                        let delivered: Vec<i64> = delivered.into_iter().flatten().collect();
                        if let Err(error) = self.done(&delivered).await {
                            tracing::error!(table = self.table, jobs = delivered.len(), error = %error, "cannot record delivered hand-offs; they will be delivered again");
                        }
                    }
                    Ok(_) => {
                        tokio::select! {
                            () = self.wake.notified() => {}
                            () = stop.pause(Duration::from_millis(500)) => {}
                        }
                    }
                    Err(error) => {
                        tracing::error!(table = self.table, error = %error, "outbox unavailable");
                        stop.pause(Duration::from_secs(1)).await;
                    }
                }
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

    #[derive(Debug, serde::Serialize, serde::Deserialize)]
    struct Ping {
        key: String,
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
        sqlx::raw_sql(
            "CREATE TABLE pings (id INTEGER PRIMARY KEY AUTOINCREMENT, kind TEXT NOT NULL,
                 payload TEXT NOT NULL, attempts INTEGER NOT NULL DEFAULT 0,
                 last_error TEXT NOT NULL DEFAULT '', created_at TEXT NOT NULL,
                 next_attempt_at INTEGER NOT NULL, locked_until INTEGER, done_at TEXT);
             CREATE INDEX pings_pending ON pings (id) WHERE done_at IS NULL;",
        )
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
        outbox
            .enqueue(&Ping {
                key: "first".into(),
            })
            .await
            .unwrap();
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

        outbox
            .enqueue(&Ping {
                key: "later".into(),
            })
            .await
            .unwrap();
        tokio::time::sleep(Duration::from_millis(700)).await;
        assert!(
            delivering.try_recv().is_err(),
            "nothing claimed after it stopped"
        );
        assert_eq!(outbox.pending().await.unwrap(), 1);
    }

    #[test]
    fn backoff_doubles_to_a_minute() {
        assert_eq!(backoff(1), Duration::from_millis(500));
        assert_eq!(backoff(2), Duration::from_secs(1));
        assert_eq!(backoff(8), Duration::from_secs(60));
        assert_eq!(backoff(100), Duration::from_secs(60));
    }
}
