//! The transactional outbox: a hand-off to another platform is a row committed with
//! the change that causes it; a relay delivers it, retrying with back-off until the
//! receiver (idempotent) accepts it. Several replicas share the outbox: a row is
//! claimed for a while (`FOR UPDATE SKIP LOCKED` on PostgreSQL).

use std::{sync::Arc, time::Duration};

use customs_common::{Error, Result, db::Database, on_pool};
use serde::{Deserialize, Serialize};
use time::OffsetDateTime;
use tokio::sync::Notify;

/// A hand-off.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum Job {
    /// Electronic review by the risk platform.
    ScreenDeclaration { declaration_number: String },
    /// Summary tax payment eligibility at the field platform.
    HolderRestriction { holder: String, discredited: bool },
}

impl Job {
    pub fn kind(&self) -> &'static str {
        match self {
            Self::ScreenDeclaration { .. } => "screen_declaration",
            Self::HolderRestriction { .. } => "holder_restriction",
        }
    }

    pub fn payload(&self) -> Result<String> {
        serde_json::to_string(self).map_err(|e| Error::internal(anyhow::anyhow!(e)))
    }
}

/// The statement that enqueues a job; repositories run it inside their own transaction.
pub const ENQUEUE: &str =
    "INSERT INTO outbox (kind, payload, created_at, next_attempt_at) VALUES ($1, $2, $3, $4)";

pub fn now_millis() -> i64 {
    (OffsetDateTime::now_utc().unix_timestamp_nanos() / 1_000_000) as i64
}

/// A claimed job.
#[derive(Debug, Clone)]
pub struct Claimed {
    pub id: i64,
    pub job: Job,
    pub attempts: i32,
}

#[derive(Debug, Clone)]
pub struct Outbox {
    database: Database,
    wake: Arc<Notify>,
}

/// How long a claimed job is left to its claimer before another replica may take it.
const CLAIM_MILLIS: i64 = 30_000;

impl Outbox {
    pub fn new(database: Database) -> Self {
        Self {
            database,
            wake: Arc::new(Notify::new()),
        }
    }

    /// Enqueues a job on its own (when there is no other write to join).
    pub async fn enqueue(&self, job: Job) -> Result<()> {
        let payload = job.payload()?;
        on_pool!(&self.database, pool => {
            sqlx::query(ENQUEUE)
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

    pub async fn woken(&self) {
        self.wake.notified().await;
    }

    /// Claims up to `limit` due jobs.
    pub async fn claim(&self, limit: i64) -> Result<Vec<Claimed>> {
        let now = now_millis();
        let rows: Vec<(i64, String, i32)> = match &self.database {
            Database::Postgres(pool) => {
                sqlx::query_as(
                    "UPDATE outbox SET locked_until = $1 + $2, attempts = attempts + 1
                     WHERE id IN (SELECT id FROM outbox
                                  WHERE done_at IS NULL AND next_attempt_at <= $1
                                    AND (locked_until IS NULL OR locked_until < $1)
                                  ORDER BY id LIMIT $3 FOR UPDATE SKIP LOCKED)
                     RETURNING id, payload, attempts",
                )
                .bind(now)
                .bind(CLAIM_MILLIS)
                .bind(limit)
                .fetch_all(pool)
                .await?
            }
            Database::Sqlite(pool) => {
                // SQLite has one writer at a time: the UPDATE itself is the lock.
                sqlx::query_as(
                    "UPDATE outbox SET locked_until = $1 + $2, attempts = attempts + 1
                     WHERE id IN (SELECT id FROM outbox
                                  WHERE done_at IS NULL AND next_attempt_at <= $1
                                    AND (locked_until IS NULL OR locked_until < $1)
                                  ORDER BY id LIMIT $3)
                     RETURNING id, payload, attempts",
                )
                .bind(now)
                .bind(CLAIM_MILLIS)
                .bind(limit)
                .fetch_all(pool)
                .await?
            }
        };
        let mut claimed = Vec::with_capacity(rows.len());
        for (id, payload, attempts) in rows {
            match serde_json::from_str(&payload) {
                Ok(job) => claimed.push(Claimed { id, job, attempts }),
                Err(error) => {
                    tracing::error!(outbox_id = id, %error, "outbox job cannot be read; parked");
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

    pub async fn done(&self, id: i64) -> Result<()> {
        on_pool!(&self.database, pool => {
            sqlx::query("UPDATE outbox SET done_at = $1, locked_until = NULL WHERE id = $2")
                .bind(OffsetDateTime::now_utc())
                .bind(id)
                .execute(pool)
                .await?;
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
        on_pool!(&self.database, pool => {
            sqlx::query("UPDATE outbox SET next_attempt_at = $1, locked_until = NULL, last_error = $2 WHERE id = $3")
                .bind(next)
                .bind(error)
                .bind(id)
                .execute(pool)
                .await?;
        });
        tracing::warn!(
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
        Ok(on_pool!(&self.database, pool => {
            sqlx::query_scalar("SELECT COUNT(*) FROM outbox WHERE done_at IS NULL").fetch_one(pool).await?
        }))
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

    #[test]
    fn backoff_doubles_to_a_minute() {
        assert_eq!(backoff(1), Duration::from_millis(500));
        assert_eq!(backoff(2), Duration::from_secs(1));
        assert_eq!(backoff(8), Duration::from_secs(60));
        assert_eq!(backoff(100), Duration::from_secs(60));
    }

    #[test]
    fn jobs_round_trip_as_json() {
        let job = Job::ScreenDeclaration {
            declaration_number: "530120261000000001".into(),
        };
        let back: Job = serde_json::from_str(&job.payload().unwrap()).unwrap();
        assert_eq!(back, job);
    }
}
