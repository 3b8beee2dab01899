//! Change requests (modification, cancellation), each committed with its hand-off.

use customs_common::{Result, db::Database, on_pool, outbox::Encoded};
use time::OffsetDateTime;

use crate::{
    outbox::Job,
    storage::declarations::{ChangeDecision, decide_change},
};

#[derive(Debug, Clone, PartialEq, Eq, sqlx::FromRow)]
pub struct ChangeRecord {
    pub id: String,
    pub request_id: String,
    pub declaration_number: String,
    /// MODIFICATION or CANCELLATION.
    pub kind: String,
    /// PENDING, APPROVED or REJECTED.
    pub state: String,
    pub reason: String,
    pub proposed_content: Option<Vec<u8>>,
    pub deciding_house: String,
    pub requested_by: String,
    pub requested_at: OffsetDateTime,
    pub decided_at: Option<OffsetDateTime>,
    pub decision_reason: String,
}

const COLUMNS: &str = "id, request_id, declaration_number, kind, state, reason, proposed_content, deciding_house, \
     requested_by, requested_at, decided_at, decision_reason";

#[derive(Debug, Clone)]
pub struct ChangeRepository {
    database: Database,
}

impl ChangeRepository {
    pub fn new(database: Database) -> Self {
        Self { database }
    }

    /// Inserts a request with its forwarding job unless the request id was seen or
    /// another request of the declaration is pending (one at a time, also when several
    /// arrive at once); `false` when nothing was inserted.
    pub async fn insert(&self, change: &ChangeRecord) -> Result<bool> {
        let jobs = [Encoded::of(&Job::ForwardChangeRequest {
            change_request_id: change.id.clone(),
        })?];
        Ok(on_pool!(&self.database, pool => {
            let mut tx = pool.begin().await?;
            // Requests of one declaration are inserted one after the other: on
            // PostgreSQL by the declaration's row lock, on SQLite by its one writer.
            if matches!(self.database, Database::Postgres(_)) {
                sqlx::query("SELECT 1 FROM declarations WHERE declaration_number = $1 FOR UPDATE")
                    .bind(&change.declaration_number)
                    .execute(&mut *tx)
                    .await?;
            }
            let inserted = sqlx::query(
                "INSERT INTO change_requests (id, request_id, declaration_number, kind, state, reason, proposed_content,
                     deciding_house, requested_by, requested_at)
                 SELECT $1, $2, $3, $4, $5, $6, $7, $8, $9, $10
                 WHERE NOT EXISTS (SELECT 1 FROM change_requests WHERE declaration_number = $3 AND state = 'PENDING')
                 ON CONFLICT (request_id) DO NOTHING",
            )
            .bind(&change.id)
            .bind(&change.request_id)
            .bind(&change.declaration_number)
            .bind(&change.kind)
            .bind(&change.state)
            .bind(&change.reason)
            .bind(&change.proposed_content)
            .bind(&change.deciding_house)
            .bind(&change.requested_by)
            .bind(change.requested_at)
            .execute(&mut *tx)
            .await?
            .rows_affected()
                == 1;
            if inserted {
                customs_common::insert_jobs!(tx, crate::outbox::ENQUEUE, &jobs, change.requested_at);
            }
            tx.commit().await?;
            inserted
        }))
    }

    async fn one(&self, condition: &str, value: &str) -> Result<Option<ChangeRecord>> {
        let sql = sqlx::AssertSqlSafe(format!(
            "SELECT {COLUMNS} FROM change_requests WHERE {condition}"
        ));
        Ok(on_pool!(&self.database, pool => {
            sqlx::query_as(sql).bind(value).fetch_optional(pool).await?
        }))
    }

    pub async fn get(&self, id: &str) -> Result<Option<ChangeRecord>> {
        self.one("id = $1", id).await
    }

    pub async fn by_request(&self, request_id: &str) -> Result<Option<ChangeRecord>> {
        self.one("request_id = $1", request_id).await
    }

    pub async fn pending_for(&self, declaration_number: &str) -> Result<Option<ChangeRecord>> {
        self.one(
            "declaration_number = $1 AND state = 'PENDING'",
            declaration_number,
        )
        .await
    }

    /// Records a decision on a pending request; `false` when it was decided already.
    /// (An approval that moves the declaration is recorded with the declaration's
    /// transition instead, with what it causes: see `Transition::decides`.)
    /// `jobs` are the decision's hand-offs, written with it (and only with it).
    pub async fn decide(&self, decision: &ChangeDecision, jobs: &[Job]) -> Result<bool> {
        let jobs = jobs.iter().map(Encoded::of).collect::<Result<Vec<_>>>()?;
        let now = customs_common::db::now();
        Ok(on_pool!(&self.database, pool => {
            let mut tx = pool.begin().await?;
            let decided = decide_change!(&mut *tx, decision, now) == 1;
            if decided {
                customs_common::insert_jobs!(tx, crate::outbox::ENQUEUE, &jobs, now);
            }
            tx.commit().await?;
            decided
        }))
    }
}
