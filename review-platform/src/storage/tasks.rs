//! Review tasks, their audited events and the hand-offs they cause, written together.

use customs_common::{
    Error, Result,
    db::Database,
    on_pool,
    outbox::{Encoded, now_millis},
};
use time::OffsetDateTime;

use crate::{
    domain::{
        routing::Routing,
        task::{Action, TaskKind, TaskState},
    },
    outbox::Job,
};

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TaskRecord {
    pub id: String,
    pub request_id: String,
    pub kind: TaskKind,
    pub state: TaskState,
    pub declaration_number: String,
    pub sub_centre: String,
    pub post: String,
    pub lane: String,
    pub claimed_by: Option<String>,
    /// Unix milliseconds.
    pub claim_expires_at: Option<i64>,
    pub change_request_id: String,
    pub routing: Routing,
    pub enqueued_at: OffsetDateTime,
    pub updated_at: OffsetDateTime,
}

#[derive(Debug, Clone, sqlx::FromRow)]
struct TaskRow {
    id: String,
    request_id: String,
    kind: String,
    state: String,
    declaration_number: String,
    sub_centre: String,
    post: String,
    lane: String,
    claimed_by: Option<String>,
    claim_expires_at: Option<i64>,
    change_request_id: String,
    routing: String,
    enqueued_at: OffsetDateTime,
    updated_at: OffsetDateTime,
}

impl TryFrom<TaskRow> for TaskRecord {
    type Error = Error;

    fn try_from(row: TaskRow) -> Result<Self> {
        let corrupt = |what: &str| {
            Error::internal(anyhow::anyhow!(
                "review task {} has a corrupt {what}",
                row.id
            ))
        };
        Ok(Self {
            kind: TaskKind::parse(&row.kind).ok_or_else(|| corrupt("kind"))?,
            state: TaskState::parse(&row.state).ok_or_else(|| corrupt("state"))?,
            routing: serde_json::from_str(&row.routing).map_err(|_| corrupt("routing"))?,
            id: row.id,
            request_id: row.request_id,
            declaration_number: row.declaration_number,
            sub_centre: row.sub_centre,
            post: row.post,
            lane: row.lane,
            claimed_by: row.claimed_by,
            claim_expires_at: row.claim_expires_at,
            change_request_id: row.change_request_id,
            enqueued_at: row.enqueued_at,
            updated_at: row.updated_at,
        })
    }
}

const COLUMNS: &str = "id, request_id, kind, state, declaration_number, sub_centre, post, lane, claimed_by, \
     claim_expires_at, change_request_id, routing, enqueued_at, updated_at";

/// An audited action.
#[derive(Debug, Clone)]
pub struct Event {
    pub action: Action,
    pub actor: String,
    pub reason: String,
}

/// One operation on a task, applied in one transaction: the task moves from the state
/// (and claimer) it was read in, its event is appended, its hand-offs are queued, and
/// a follow-up task (a transfer's) is created.
#[derive(Debug, Clone)]
pub struct Change {
    pub task_id: String,
    pub from_state: TaskState,
    pub from_claimed_by: Option<String>,
    pub to_state: TaskState,
    pub claimed_by: Option<String>,
    pub claim_expires_at: Option<i64>,
    pub event: Event,
    pub jobs: Vec<Job>,
    pub follow_up: Option<TaskRecord>,
    /// Closes the declaration's other open review tasks (an approved cancellation or
    /// modification).
    pub close_open_reviews: bool,
    /// The sub-centre a declaration's review is transferred to: its change requests
    /// still open where the review leaves go with it, since the sub-centre that reviews
    /// a declaration decides them (DOMAIN.md 5.5).
    pub carry_change_requests_to: Option<String>,
}

/// A recorded event with its task's enqueue time, for the quality report.
#[derive(Debug, Clone, sqlx::FromRow)]
pub struct OutcomeRow {
    pub sub_centre: String,
    pub action: String,
    pub occurred_at: OffsetDateTime,
    pub enqueued_at: OffsetDateTime,
}

#[derive(Debug, Clone, Default)]
pub struct TaskFilter {
    pub sub_centre: Option<String>,
    pub state: Option<TaskState>,
    pub after: Option<String>,
    pub limit: i64,
}

#[derive(Debug, Clone)]
pub struct TaskRepository {
    database: Database,
}

const INSERT_TASK: &str =
    "INSERT INTO review_tasks (id, request_id, kind, state, declaration_number, sub_centre, post,
         lane, claimed_by, claim_expires_at, change_request_id, routing, enqueued_at, updated_at)
     VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14)
     ON CONFLICT (request_id) DO NOTHING";

const INSERT_EVENT: &str =
    "INSERT INTO review_events (task_id, declaration_number, action, actor, sub_centre, reason,
         occurred_at, occurred_ms)
     VALUES ($1, $2, $3, $4, $5, $6, $7, $8)";

/// Unix milliseconds of an instant.
pub fn millis(at: OffsetDateTime) -> i64 {
    (at.unix_timestamp_nanos() / 1_000_000) as i64
}

/// Writes a hand-off in a repository's transaction (see `customs_common::insert_jobs!`).
const INSERT_JOB: &str = "INSERT INTO review_outbox (kind, job_key, payload, created_at, next_attempt_at) VALUES ($1, $2, $3, $4, $5)";

/// Binds and runs the statements that insert a task with its enqueue event; the
/// transaction `$tx` is of either backend.
macro_rules! insert_task {
    ($tx:expr, $task:expr, $routing:expr, $event:expr) => {{
        let task = $task;
        let inserted = sqlx::query(INSERT_TASK)
            .bind(&task.id)
            .bind(&task.request_id)
            .bind(task.kind.as_str())
            .bind(task.state.as_str())
            .bind(&task.declaration_number)
            .bind(&task.sub_centre)
            .bind(&task.post)
            .bind(&task.lane)
            .bind(&task.claimed_by)
            .bind(task.claim_expires_at)
            .bind(&task.change_request_id)
            .bind($routing)
            .bind(task.enqueued_at)
            .bind(task.updated_at)
            .execute(&mut *$tx)
            .await?
            .rows_affected()
            == 1;
        if inserted {
            let event: &Event = $event;
            sqlx::query(INSERT_EVENT)
                .bind(&task.id)
                .bind(&task.declaration_number)
                .bind(event.action.as_str())
                .bind(&event.actor)
                .bind(&task.sub_centre)
                .bind(&event.reason)
                .bind(task.enqueued_at)
                .bind(millis(task.enqueued_at))
                .execute(&mut *$tx)
                .await?;
        }
        inserted
    }};
}

macro_rules! insert_jobs {
    ($tx:expr, $jobs:expr, $now:expr) => {
        customs_common::insert_jobs!($tx, INSERT_JOB, $jobs, $now)
    };
}

impl TaskRepository {
    pub fn new(database: Database) -> Self {
        Self { database }
    }

    /// Creates a task with its enqueue event and hand-offs unless its request id was
    /// seen; returns the stored task and whether it is new.
    pub async fn insert(
        &self,
        task: &TaskRecord,
        event: &Event,
        jobs: &[Job],
    ) -> Result<(TaskRecord, bool)> {
        let routing = serde_json::to_string(&task.routing)
            .map_err(|e| Error::internal(anyhow::anyhow!(e)))?;
        let jobs = Encoded::all(jobs)?;
        let now = OffsetDateTime::now_utc();
        let inserted = on_pool!(&self.database, pool => {
            let mut tx = pool.begin().await?;
            let inserted = insert_task!(tx, task, &routing, event);
            if inserted {
                insert_jobs!(tx, &jobs, now);
            }
            tx.commit().await?;
            inserted
        });
        let stored = self.by_request(&task.request_id).await?.ok_or_else(|| {
            Error::internal(anyhow::anyhow!(
                "review task for request {} vanished",
                task.request_id
            ))
        })?;
        Ok((stored, inserted))
    }

    pub async fn get(&self, id: &str) -> Result<Option<TaskRecord>> {
        self.one("id = $1", id).await
    }

    pub async fn by_request(&self, request_id: &str) -> Result<Option<TaskRecord>> {
        self.one("request_id = $1", request_id).await
    }

    async fn one(&self, condition: &str, value: &str) -> Result<Option<TaskRecord>> {
        let sql = sqlx::AssertSqlSafe(format!(
            "SELECT {COLUMNS} FROM review_tasks WHERE {condition}"
        ));
        let row: Option<TaskRow> = on_pool!(&self.database, pool => {
            sqlx::query_as(sql).bind(value).fetch_optional(pool).await?
        });
        row.map(TaskRecord::try_from).transpose()
    }

    /// The declaration's review tasks (not change requests), latest first.
    pub async fn reviews_of(&self, declaration_number: &str) -> Result<Vec<TaskRecord>> {
        let sql = sqlx::AssertSqlSafe(format!(
            "SELECT {COLUMNS} FROM review_tasks WHERE declaration_number = $1 AND kind = 'DECLARATION_REVIEW'
             ORDER BY id DESC"
        ));
        let rows: Vec<TaskRow> = on_pool!(&self.database, pool => {
            sqlx::query_as(sql).bind(declaration_number).fetch_all(pool).await?
        });
        rows.into_iter().map(TaskRecord::try_from).collect()
    }

    pub async fn list(&self, filter: &TaskFilter) -> Result<Vec<TaskRecord>> {
        let sql = sqlx::AssertSqlSafe(format!(
            "SELECT {COLUMNS} FROM review_tasks
             WHERE ($1 IS NULL OR sub_centre = $1) AND ($2 IS NULL OR state = $2) AND ($3 IS NULL OR id > $3)
             ORDER BY id LIMIT $4"
        ));
        let rows: Vec<TaskRow> = on_pool!(&self.database, pool => {
            sqlx::query_as(sql)
                .bind(&filter.sub_centre)
                .bind(filter.state.map(TaskState::as_str))
                .bind(&filter.after)
                .bind(filter.limit)
                .fetch_all(pool)
                .await?
        });
        rows.into_iter().map(TaskRecord::try_from).collect()
    }

    /// Claims the oldest task of a sub-centre's queue (of one post, when given) that is
    /// queued or whose claim has expired. Concurrent claimers never get the same task:
    /// `FOR UPDATE SKIP LOCKED` on PostgreSQL; SQLite has one writer at a time.
    pub async fn claim(
        &self,
        sub_centre: &str,
        post: &str,
        reviewer: &str,
        claim_millis: i64,
    ) -> Result<Option<TaskRecord>> {
        let now_ms = now_millis();
        let now = OffsetDateTime::now_utc();
        let lock = match &self.database {
            Database::Postgres(_) => "FOR UPDATE SKIP LOCKED",
            Database::Sqlite(_) => "",
        };
        let sql = sqlx::AssertSqlSafe(format!(
            "UPDATE review_tasks SET state = 'CLAIMED', claimed_by = $1, claim_expires_at = $2, updated_at = $3
             WHERE id = (SELECT id FROM review_tasks
                         WHERE sub_centre = $4 AND ($5 = '' OR post = $5)
                           AND (state = 'QUEUED' OR (state = 'CLAIMED' AND claim_expires_at < $6))
                         ORDER BY id LIMIT 1 {lock})
             RETURNING {COLUMNS}"
        ));
        let row: Option<TaskRow> = on_pool!(&self.database, pool => {
            let mut tx = pool.begin().await?;
            let row: Option<TaskRow> = sqlx::query_as(sql)
                .bind(reviewer)
                .bind(now_ms + claim_millis)
                .bind(now)
                .bind(sub_centre)
                .bind(post)
                .bind(now_ms)
                .fetch_optional(&mut *tx)
                .await?;
            if let Some(task) = &row {
                sqlx::query(INSERT_EVENT)
                    .bind(&task.id)
                    .bind(&task.declaration_number)
                    .bind(Action::Claim.as_str())
                    .bind(reviewer)
                    .bind(sub_centre)
                    .bind("")
                    .bind(now)
                    .bind(millis(now))
                    .execute(&mut *tx)
                    .await?;
            }
            tx.commit().await?;
            row
        });
        row.map(TaskRecord::try_from).transpose()
    }

    /// Applies a change; `false` when the task is no longer as it was read.
    pub async fn apply(&self, change: &Change) -> Result<bool> {
        let jobs = Encoded::all(&change.jobs)?;
        let follow_up = match &change.follow_up {
            Some(task) => Some((
                task,
                serde_json::to_string(&task.routing)
                    .map_err(|e| Error::internal(anyhow::anyhow!(e)))?,
            )),
            None => None,
        };
        let now = OffsetDateTime::now_utc();
        let applied = on_pool!(&self.database, pool => {
            let mut tx = pool.begin().await?;
            let updated: Option<(String, String)> = sqlx::query_as(
                "UPDATE review_tasks SET state = $1, claimed_by = $2, claim_expires_at = $3, updated_at = $4
                 WHERE id = $5 AND state = $6 AND claimed_by IS NOT DISTINCT FROM $7
                 RETURNING declaration_number, sub_centre",
            )
            .bind(change.to_state.as_str())
            .bind(&change.claimed_by)
            .bind(change.claim_expires_at)
            .bind(now)
            .bind(&change.task_id)
            .bind(change.from_state.as_str())
            .bind(&change.from_claimed_by)
            .fetch_optional(&mut *tx)
            .await?;
            match updated {
                None => false,
                Some((declaration_number, sub_centre)) => {
                    let event = &change.event;
                    sqlx::query(INSERT_EVENT)
                        .bind(&change.task_id)
                        .bind(&declaration_number)
                        .bind(event.action.as_str())
                        .bind(&event.actor)
                        .bind(&sub_centre)
                        .bind(&event.reason)
                        .bind(now)
                        .bind(millis(now))
                        .execute(&mut *tx)
                        .await?;
                    if change.close_open_reviews {
                        sqlx::query(
                            "UPDATE review_tasks SET state = 'DECIDED', claimed_by = NULL, claim_expires_at = NULL,
                                 updated_at = $1
                             WHERE declaration_number = $2 AND kind = 'DECLARATION_REVIEW'
                               AND state IN ('QUEUED', 'CLAIMED', 'SUSPENDED')",
                        )
                        .bind(now)
                        .bind(&declaration_number)
                        .execute(&mut *tx)
                        .await?;
                    }
                    if let Some(to) = &change.carry_change_requests_to {
                        // Each keeps its id (the declaration platform names it by its
                        // change request); a claim by a reviewer of the old sub-centre
                        // ends, and the move is in its history.
                        let carried: Vec<String> = sqlx::query_scalar(
                            "UPDATE review_tasks SET sub_centre = $1, post = '', claimed_by = NULL, claim_expires_at = NULL,
                                 state = CASE WHEN state = 'CLAIMED' THEN 'QUEUED' ELSE state END, updated_at = $2
                             WHERE declaration_number = $3 AND sub_centre = $4 AND kind <> 'DECLARATION_REVIEW'
                               AND state IN ('QUEUED', 'CLAIMED', 'SUSPENDED')
                             RETURNING id",
                        )
                        .bind(to)
                        .bind(now)
                        .bind(&declaration_number)
                        .bind(&sub_centre)
                        .fetch_all(&mut *tx)
                        .await?;
                        for id in &carried {
                            sqlx::query(INSERT_EVENT)
                                .bind(id)
                                .bind(&declaration_number)
                                .bind(Action::Transfer.as_str())
                                .bind(&event.actor)
                                .bind(&sub_centre)
                                .bind(format!("to {to} with the declaration's review"))
                                .bind(now)
                                .bind(millis(now))
                                .execute(&mut *tx)
                                .await?;
                        }
                    }
                    if let Some((task, routing)) = &follow_up {
                        let enqueue = Event {
                            action: Action::Enqueue,
                            actor: event.actor.clone(),
                            reason: event.reason.clone(),
                        };
                        insert_task!(tx, *task, routing, &enqueue);
                    }
                    insert_jobs!(tx, &jobs, now);
                    tx.commit().await?;
                    true
                }
            }
        });
        Ok(applied)
    }

    /// Conclusions and returns of declaration reviews recorded in `[start, end)`.
    pub async fn outcomes(
        &self,
        start: OffsetDateTime,
        end: OffsetDateTime,
    ) -> Result<Vec<OutcomeRow>> {
        Ok(on_pool!(&self.database, pool => {
            sqlx::query_as(
                "SELECT e.sub_centre, e.action, e.occurred_at, t.enqueued_at
                 FROM review_events e JOIN review_tasks t ON t.id = e.task_id
                 WHERE t.kind = 'DECLARATION_REVIEW' AND e.action IN ('conclude', 'immediate_control', 'return')
                   AND e.occurred_ms >= $1 AND e.occurred_ms < $2",
            )
            .bind(millis(start))
            .bind(millis(end))
            .fetch_all(pool)
            .await?
        }))
    }

    /// A task's events, oldest first: (action, actor, sub-centre, reason).
    pub async fn events(&self, task_id: &str) -> Result<Vec<(String, String, String, String)>> {
        Ok(on_pool!(&self.database, pool => {
            sqlx::query_as(
                "SELECT action, actor, sub_centre, reason FROM review_events WHERE task_id = $1 ORDER BY id",
            )
            .bind(task_id)
            .fetch_all(pool)
            .await?
        }))
    }
}
