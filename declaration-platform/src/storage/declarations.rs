//! Declarations, their numbering, their lifecycle events, and their hand-offs.

use std::{collections::HashMap, fmt::Write as _};

use customs_common::{
    Error, Result,
    db::{Database, OneStep, placeholders},
    on_pool, on_reader,
    outbox::Encoded,
};
use time::OffsetDateTime;

use crate::{
    domain::lifecycle::{Note, Stage},
    outbox::{ENQUEUE, Job, now_millis},
};

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DeclarationRecord {
    pub declaration_number: String,
    pub request_id: String,
    pub enterprise_code: String,
    pub broker_code: String,
    pub declaring_office: String,
    pub stage: Stage,
    pub handling_house: String,
    pub lane: String,
    pub review_sub_centre: String,
    /// The encoded `customs.common.v1.DeclarationContent`.
    pub content: Vec<u8>,
    pub submitted_at: OffsetDateTime,
    pub updated_at: OffsetDateTime,
    pub version: i64,
}

impl DeclarationRecord {
    /// The record as `transition`, committed at `at` over this version, left it.
    pub fn moved(self, transition: Transition, at: OffsetDateTime) -> Self {
        Self {
            stage: transition.to,
            handling_house: transition.house_code,
            lane: transition.lane.unwrap_or(self.lane),
            review_sub_centre: transition
                .review_sub_centre
                .unwrap_or(self.review_sub_centre),
            content: transition.content.unwrap_or(self.content),
            updated_at: at,
            version: self.version + 1,
            ..self
        }
    }
}

customs_common::columns! {
    struct DeclarationRow {
        declaration_number: String,
        request_id: String,
        enterprise_code: String,
        broker_code: String,
        declaring_office: String,
        stage: String,
        handling_house: String,
        lane: String,
        review_sub_centre: String,
        content: Vec<u8>,
        submitted_at: OffsetDateTime,
        updated_at: OffsetDateTime,
        version: i64,
    }
}

impl TryFrom<DeclarationRow> for DeclarationRecord {
    type Error = Error;

    fn try_from(row: DeclarationRow) -> Result<Self> {
        let stage = Stage::parse(&row.stage).ok_or_else(|| {
            Error::internal(anyhow::anyhow!(
                "declaration {} has a corrupt stage",
                row.declaration_number
            ))
        })?;
        Ok(Self {
            declaration_number: row.declaration_number,
            request_id: row.request_id,
            enterprise_code: row.enterprise_code,
            broker_code: row.broker_code,
            declaring_office: row.declaring_office,
            stage,
            handling_house: row.handling_house,
            lane: row.lane,
            review_sub_centre: row.review_sub_centre,
            content: row.content,
            submitted_at: row.submitted_at,
            updated_at: row.updated_at,
            version: row.version,
        })
    }
}

#[derive(Debug, Clone, PartialEq, Eq, sqlx::FromRow)]
pub struct EventRecord {
    pub from_stage: String,
    pub to_stage: String,
    pub actor: String,
    pub house_code: String,
    pub reason: String,
    pub occurred_at: OffsetDateTime,
    /// '' for a stage change; else the `Note` it records.
    pub note: String,
}

/// A note to record on a declaration's timeline.
#[derive(Debug, Clone)]
pub struct NewNote {
    pub note: Note,
    /// The reporter's request id: a repeat records nothing more.
    pub key: String,
    pub actor: String,
    pub house_code: String,
    pub reason: String,
}

/// A new declaration, before its number.
#[derive(Debug, Clone)]
pub struct NewDeclaration {
    pub request_id: String,
    pub enterprise_code: String,
    pub broker_code: String,
    pub declaring_office: String,
    pub handling_house: String,
    /// `1` import, `0` export.
    pub direction_flag: char,
    pub year: i32,
    pub content: Vec<u8>,
    pub actor: String,
}

/// A transition to record.
#[derive(Debug, Clone)]
pub struct Transition {
    pub to: Stage,
    pub actor: String,
    pub house_code: String,
    pub reason: String,
    pub lane: Option<String>,
    pub review_sub_centre: Option<String>,
    /// Replaces the content (an approved modification).
    pub content: Option<Vec<u8>>,
    /// Hand-offs the step makes, written in its transaction (and so never twice: a
    /// step already taken is skipped with them).
    pub jobs: Vec<Job>,
    /// The change request the step decides, recorded in its transaction: an approved
    /// change is never applied without its approval being recorded, which a repeated
    /// decision would otherwise apply a second time.
    pub decides: Option<ChangeDecision>,
}

/// A pending change request's decision (`APPROVED` or `REJECTED`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ChangeDecision {
    pub change_request_id: String,
    pub state: &'static str,
    pub house_code: String,
    pub reason: String,
}

/// Records a pending change request's decision at `$at` on `$executor`; a request
/// decided already is left as it is. Evaluates to the rows it changed (0 or 1).
macro_rules! decide_change {
    ($executor:expr, $decision:expr, $at:expr) => {{
        let decision: &$crate::storage::declarations::ChangeDecision = $decision;
        sqlx::query(
            "UPDATE change_requests
             SET state = $1, deciding_house = $2, decision_reason = $3, decided_at = $4
             WHERE id = $5 AND state = 'PENDING'",
        )
        .bind(decision.state)
        .bind(decision.house_code.as_str())
        .bind(decision.reason.as_str())
        .bind($at)
        .bind(decision.change_request_id.as_str())
        .execute($executor)
        .await?
        .rows_affected()
    }};
}
pub(crate) use decide_change;

#[derive(Debug, Clone, Default)]
pub struct DeclarationFilter {
    /// Declarations where this enterprise is the owner or the broker.
    pub party: Option<String>,
    pub enterprise_code: Option<String>,
    pub declaring_office: Option<String>,
    pub stage: Option<Stage>,
    pub submitted_after: Option<OffsetDateTime>,
    pub submitted_before: Option<OffsetDateTime>,
    pub after: Option<String>,
    pub limit: i64,
}

/// A transition's update: the declaration as the last step leaves it ($1 stage, $2
/// time, $3 lane, $4 review sub-centre, $5 handling house, $8 content, $9 steps taken),
/// if it is still at the version the steps were decided on ($6 number, $7 version).
const TRANSITION_UPDATE: &str =
    "UPDATE declarations SET stage = $1, updated_at = $2, version = version + $9,
         lane = COALESCE($3, lane), review_sub_centre = COALESCE($4, review_sub_centre),
         handling_house = $5, content = COALESCE($8, content)
     WHERE declaration_number = $6 AND version = $7";

const COLUMNS: &str = "declaration_number, request_id, enterprise_code, broker_code, declaring_office, stage, \
     handling_house, lane, review_sub_centre, content, submitted_at, updated_at, version";

#[derive(Debug, Clone)]
pub struct DeclarationRepository {
    database: Database,
}

impl DeclarationRepository {
    pub fn new(database: Database) -> Self {
        Self { database }
    }

    /// Numbers and stores one declaration with its first event and its screening
    /// hand-off, in one transaction; a repeated request id returns the first declaration
    /// (also when both arrive at once). Returns it and whether it is new.
    pub async fn submit(&self, new: &NewDeclaration) -> Result<(DeclarationRecord, bool)> {
        if let Some(existing) = self.find_by_request_id(&new.request_id).await? {
            return Ok((existing, false));
        }
        match self.submit_batch(std::slice::from_ref(new)).await {
            Ok(mut answers) => answers
                .pop()
                .ok_or_else(|| Error::internal(anyhow::anyhow!("a submission got no answer"))),
            // The same request arrived twice at once and the other one won.
            Err(error) => match self.find_by_request_id(&new.request_id).await? {
                Some(first) => Ok((first, false)),
                None => Err(error),
            },
        }
    }

    /// Numbers and stores several declarations in one transaction (group commit):
    /// each site, year and direction's sequence moves once by the batch's count, so
    /// numbers stay gap-free. Request ids already stored answer with the first
    /// declaration. On any failure nothing of the batch is written.
    pub async fn submit_batch(
        &self,
        batch: &[NewDeclaration],
    ) -> Result<Vec<(DeclarationRecord, bool)>> {
        let now = customs_common::db::now();
        // Most submissions are new, so the batch is written first without looking for
        // earlier submissions of its request ids: one stored before fails the write on
        // its unique key (and nothing of the batch is kept), and the batch is written
        // again around the earlier declarations, looked up then (one query).
        match self.write_batch(batch, HashMap::new(), now).await {
            Err(sqlx::Error::Database(error)) if error.is_unique_violation() => {
                let ids: Vec<&str> = batch.iter().map(|new| new.request_id.as_str()).collect();
                let earlier = self.find_by_request_ids(&ids).await?;
                Ok(self.write_batch(batch, earlier, now).await?)
            }
            written => Ok(written?),
        }
    }

    /// Numbers and stores the declarations of `batch` not in `earlier` (earlier
    /// submissions by request id, which answer for themselves), answering each
    /// declaration of the batch in order; a request repeated in the batch answers with
    /// its first.
    async fn write_batch(
        &self,
        batch: &[NewDeclaration],
        mut earlier: HashMap<String, DeclarationRecord>,
        now: OffsetDateTime,
    ) -> std::result::Result<Vec<(DeclarationRecord, bool)>, sqlx::Error> {
        let mut answers: Vec<Option<(DeclarationRecord, bool)>> = Vec::with_capacity(batch.len());
        let mut first_in_batch = HashMap::new();
        for (i, new) in batch.iter().enumerate() {
            let found = earlier.get(new.request_id.as_str()).cloned();
            if found.is_none() {
                first_in_batch.entry(new.request_id.as_str()).or_insert(i);
            }
            answers.push(found.map(|record| (record, false)));
        }
        earlier.clear();
        let fresh: Vec<usize> = (0..batch.len())
            .filter(|i| first_in_batch.get(batch[*i].request_id.as_str()) == Some(i))
            .collect();
        let mut groups: std::collections::BTreeMap<(String, i32, char), Vec<usize>> =
            std::collections::BTreeMap::new();
        for &i in &fresh {
            let new = &batch[i];
            groups
                .entry((new.declaring_office.clone(), new.year, new.direction_flag))
                .or_default()
                .push(i);
        }
        let numbers = match &self.database {
            Database::Postgres(pool) => submit_groups_postgres(pool, batch, &groups, now).await,
            Database::Sqlite(sqlite) => submit_groups_sqlite(sqlite, batch, &groups, now).await,
        };
        for (i, number) in numbers? {
            let new = &batch[i];
            answers[i] = Some((
                DeclarationRecord {
                    declaration_number: number,
                    request_id: new.request_id.clone(),
                    enterprise_code: new.enterprise_code.clone(),
                    broker_code: new.broker_code.clone(),
                    declaring_office: new.declaring_office.clone(),
                    stage: Stage::Submitted,
                    handling_house: new.handling_house.clone(),
                    lane: String::new(),
                    review_sub_centre: String::new(),
                    content: new.content.clone(),
                    submitted_at: now,
                    updated_at: now,
                    version: 1,
                },
                true,
            ));
        }
        // A request repeated inside the batch answers with its first submission.
        for i in 0..batch.len() {
            if answers[i].is_none() {
                let first = first_in_batch[batch[i].request_id.as_str()];
                answers[i] = answers[first]
                    .as_ref()
                    .map(|(record, _)| (record.clone(), false));
            }
        }
        answers
            .into_iter()
            .map(|answer| {
                answer.ok_or_else(|| {
                    sqlx::Error::Protocol("a batched submission got no answer".into())
                })
            })
            .collect()
    }

    /// The declarations already submitted under these request ids, by request id.
    pub async fn find_by_request_ids(
        &self,
        request_ids: &[&str],
    ) -> Result<HashMap<String, DeclarationRecord>> {
        let mut found = HashMap::new();
        for chunk in request_ids.chunks(500) {
            let rows: Vec<DeclarationRow> = on_reader!(&self.database, pool => {
                let mut query = sqlx::QueryBuilder::new(format!(
                    "SELECT {COLUMNS} FROM declarations WHERE request_id IN ("
                ));
                let mut list = query.separated(", ");
                for id in chunk {
                    list.push_bind(*id);
                }
                query.push(")");
                query.build_query_as().fetch_all(pool).await?
            });
            for row in rows {
                let record = DeclarationRecord::try_from(row)?;
                found.insert(record.request_id.clone(), record);
            }
        }
        Ok(found)
    }

    pub async fn find_by_request_id(&self, request_id: &str) -> Result<Option<DeclarationRecord>> {
        let sql = sqlx::AssertSqlSafe(format!(
            "SELECT {COLUMNS} FROM declarations WHERE request_id = $1"
        ));
        let row: Option<DeclarationRow> = on_reader!(&self.database, pool => {
            sqlx::query_as(sql).bind(request_id).fetch_optional(pool).await?
        });
        row.map(DeclarationRecord::try_from).transpose()
    }

    pub async fn get(&self, number: &str) -> Result<Option<DeclarationRecord>> {
        let sql = format!("SELECT {COLUMNS} FROM declarations WHERE declaration_number = $1");
        // A hand-off's read of the declaration it moves: at once on this thread where
        // the database allows.
        let row: Option<DeclarationRow> = match self.database.direct_reader() {
            Some(direct) => {
                direct.query_optional(&sql, &[&number], |row| DeclarationRow::try_from(row))?
            }
            None => on_reader!(&self.database, pool => {
                sqlx::query_as(sqlx::AssertSqlSafe(sql)).bind(number).fetch_optional(pool).await?
            }),
        };
        row.map(DeclarationRecord::try_from).transpose()
    }

    pub async fn events(&self, number: &str) -> Result<Vec<EventRecord>> {
        Ok(self
            .events_of(&[number.to_owned()])
            .await?
            .remove(number)
            .unwrap_or_default())
    }

    /// The timelines of several declarations (a page of a list) in one query, each in
    /// its order; a declaration without events is not in the map.
    pub async fn events_of(&self, numbers: &[String]) -> Result<HashMap<String, Vec<EventRecord>>> {
        if numbers.is_empty() {
            return Ok(HashMap::new());
        }
        #[derive(sqlx::FromRow)]
        struct NumberedEvent {
            declaration_number: String,
            #[sqlx(flatten)]
            event: EventRecord,
        }
        let sql = format!(
            "SELECT declaration_number, from_stage, to_stage, actor, house_code, reason, occurred_at, note
             FROM declaration_events WHERE declaration_number IN ({}) ORDER BY id",
            placeholders(1, numbers.len())
        );
        let rows: Vec<NumberedEvent> = on_reader!(&self.database, pool => {
            let mut query = sqlx::query_as(sqlx::AssertSqlSafe(sql));
            for number in numbers {
                query = query.bind(number);
            }
            query.fetch_all(pool).await?
        });
        let mut timelines: HashMap<String, Vec<EventRecord>> =
            HashMap::with_capacity(numbers.len());
        for row in rows {
            timelines
                .entry(row.declaration_number)
                .or_default()
                .push(row.event);
        }
        Ok(timelines)
    }

    /// Records a note at the stage the declaration is at (read in the same statement):
    /// `Some(true)` when recorded, `Some(false)` when its key recorded it already, `None`
    /// when there is no such declaration.
    pub async fn note(&self, number: &str, note: &NewNote) -> Result<Option<bool>> {
        let now = customs_common::db::now();
        let recorded = on_pool!(&self.database, pool => {
            sqlx::query(
                "INSERT INTO declaration_events
                     (declaration_number, from_stage, to_stage, actor, house_code, reason, occurred_at, note, note_key)
                 SELECT declaration_number, stage, stage, $2, $3, $4, $5, $6, $7
                 FROM declarations WHERE declaration_number = $1
                 ON CONFLICT DO NOTHING",
            )
            .bind(number)
            .bind(&note.actor)
            .bind(&note.house_code)
            .bind(&note.reason)
            .bind(now)
            .bind(note.note.as_str())
            .bind(&note.key)
            .execute(pool)
            .await?
            .rows_affected()
                == 1
        });
        if recorded {
            return Ok(Some(true));
        }
        let exists: Option<String> = on_reader!(&self.database, pool => {
            sqlx::query_scalar("SELECT declaration_number FROM declarations WHERE declaration_number = $1")
                .bind(number)
                .fetch_optional(pool)
                .await?
        });
        Ok(exists.map(|_| false))
    }

    pub async fn list(&self, filter: &DeclarationFilter) -> Result<Vec<DeclarationRecord>> {
        let sql = sqlx::AssertSqlSafe(format!(
            "SELECT {COLUMNS} FROM declarations
             WHERE ($1 IS NULL OR enterprise_code = $1 OR broker_code = $1)
               AND ($2 IS NULL OR enterprise_code = $2)
               AND ($3 IS NULL OR declaring_office = $3)
               AND ($4 IS NULL OR stage = $4)
               AND ($5 IS NULL OR submitted_at >= $5)
               AND ($6 IS NULL OR submitted_at < $6)
               AND ($7 IS NULL OR declaration_number > $7)
             ORDER BY declaration_number LIMIT $8"
        ));
        let rows: Vec<DeclarationRow> = on_reader!(&self.database, pool => {
            sqlx::query_as(sql)
                .bind(&filter.party)
                .bind(&filter.enterprise_code)
                .bind(&filter.declaring_office)
                .bind(filter.stage.map(Stage::as_str))
                .bind(filter.submitted_after)
                .bind(filter.submitted_before)
                .bind(&filter.after)
                .bind(filter.limit)
                .fetch_all(pool)
                .await?
        });
        rows.into_iter().map(DeclarationRecord::try_from).collect()
    }

    /// Records `steps` (each from the stage the one before reached) over `version` of a
    /// declaration at stage `from`, in one transaction: one update to where the last
    /// step leaves it, one event per step. `None` when the declaration has moved on
    /// since `version` (nothing is written).
    pub async fn transition(
        &self,
        number: &str,
        from: Stage,
        version: i64,
        steps: &[Transition],
    ) -> Result<Option<OffsetDateTime>> {
        let Some(last) = steps.last() else {
            return Err(Error::internal(anyhow::anyhow!(
                "a transition of declaration {number} without steps"
            )));
        };
        // Where the last step leaves what a step may set.
        let lane = steps.iter().rev().find_map(|step| step.lane.as_deref());
        let review_sub_centre = steps
            .iter()
            .rev()
            .find_map(|step| step.review_sub_centre.as_deref());
        let content = steps.iter().rev().find_map(|step| step.content.as_deref());
        let now = customs_common::db::now();
        let jobs = steps
            .iter()
            .flat_map(|step| &step.jobs)
            .map(Encoded::of)
            .collect::<Result<Vec<_>>>()?;
        let decisions: Vec<&ChangeDecision> = steps
            .iter()
            .filter_map(|step| step.decides.as_ref())
            .collect();
        let froms = std::iter::once(from).chain(steps.iter().map(|step| step.to));
        // The update's parameters, $1 to $9, on either backend.
        macro_rules! bind_update {
            ($query:expr) => {
                $query
                    .bind(last.to.as_str())
                    .bind(now)
                    .bind(lane)
                    .bind(review_sub_centre)
                    .bind(last.house_code.as_str())
                    .bind(number)
                    .bind(version)
                    .bind(content)
                    .bind(steps.len() as i64)
            };
        }
        let updated = match &self.database {
            // One statement, so one round trip: the update and its events commit
            // together, and no event is written when the version has moved on. Jobs and
            // change decisions, when a step makes any, join them in a transaction.
            Database::Postgres(pool) => {
                let sql = sqlx::AssertSqlSafe(format!(
                    "WITH moved AS ({TRANSITION_UPDATE} RETURNING declaration_number)
                     INSERT INTO declaration_events (declaration_number, from_stage, to_stage, actor, house_code, reason, occurred_at)
                     SELECT moved.declaration_number, e.from_stage, e.to_stage, e.actor, e.house_code, e.reason, $2
                     FROM moved CROSS JOIN UNNEST($10::text[], $11::text[], $12::text[], $13::text[], $14::text[])
                         WITH ORDINALITY AS e (from_stage, to_stage, actor, house_code, reason, ord)
                     ORDER BY e.ord"
                ));
                let column = |pick: fn(&Transition) -> &str| -> Vec<&str> {
                    steps.iter().map(pick).collect()
                };
                let statement = bind_update!(sqlx::query(sql))
                    .bind(
                        froms
                            .take(steps.len())
                            .map(Stage::as_str)
                            .collect::<Vec<_>>(),
                    )
                    .bind(column(|step| step.to.as_str()))
                    .bind(column(|step| &step.actor))
                    .bind(column(|step| &step.house_code))
                    .bind(column(|step| &step.reason));
                if jobs.is_empty() && decisions.is_empty() {
                    statement.execute(pool).await?.rows_affected() > 0
                } else {
                    let mut tx = pool.begin().await?;
                    let updated = statement.execute(&mut *tx).await?.rows_affected() > 0;
                    if updated {
                        customs_common::insert_jobs!(tx, ENQUEUE, &jobs, now);
                        for decision in &decisions {
                            decide_change!(&mut *tx, decision, now);
                        }
                        tx.commit().await?;
                    }
                    updated
                }
            }
            // Likewise one hand-off to the one-step thread: the update, then its events
            // only if it moved the row (`changes()` is the update's count), then how
            // many events were written.
            Database::Sqlite(sqlite) if jobs.is_empty() && decisions.is_empty() => {
                let mut one = OneStep::default();
                let update = [
                    one.bind(last.to.as_str()),
                    one.bind(now),
                    one.bind(lane),
                    one.bind(review_sub_centre),
                    one.bind(last.house_code.as_str()),
                    one.bind(number),
                    one.bind(version),
                    one.bind(content),
                    one.bind(steps.len() as i64),
                ];
                let (number, now) = (update[5], update[1]);
                one.push_numbered(TRANSITION_UPDATE, &update);
                one.push(
                    ";\nINSERT INTO declaration_events (declaration_number, from_stage, to_stage, actor, house_code, reason, occurred_at)
                     SELECT * FROM (VALUES ",
                );
                for (i, (step, from)) in steps.iter().zip(froms).enumerate() {
                    one.push(if i == 0 { "(" } else { ", (" })
                        .push_param(number);
                    one.push(", ").push_bind(from.as_str());
                    one.push(", ").push_bind(step.to.as_str());
                    one.push(", ").push_bind(step.actor.as_str());
                    one.push(", ").push_bind(step.house_code.as_str());
                    one.push(", ").push_bind(step.reason.as_str());
                    one.push(", ").push_param(now).push(")");
                }
                // The events written: none when the update found the row moved on.
                one.push(") WHERE changes() = 1;\nSELECT changes()");
                sqlite.one_step(one).await? > 0
            }
            Database::Sqlite(sqlite) => {
                let mut tx = sqlite.writer.begin().await?;
                let updated = bind_update!(sqlx::query(TRANSITION_UPDATE))
                    .execute(&mut *tx)
                    .await?
                    .rows_affected()
                    == 1;
                if updated {
                    let mut events = sqlx::QueryBuilder::new(
                        "INSERT INTO declaration_events (declaration_number, from_stage, to_stage, actor, house_code, reason, occurred_at) ",
                    );
                    events.push_values(steps.iter().zip(froms), |mut row, (step, from)| {
                        row.push_bind(number)
                            .push_bind(from.as_str())
                            .push_bind(step.to.as_str())
                            .push_bind(step.actor.as_str())
                            .push_bind(step.house_code.as_str())
                            .push_bind(step.reason.as_str())
                            .push_bind(now);
                    });
                    events.build().execute(&mut *tx).await?;
                    customs_common::insert_jobs!(tx, ENQUEUE, &jobs, now);
                    for decision in &decisions {
                        decide_change!(&mut *tx, decision, now);
                    }
                    tx.commit().await?;
                }
                updated
            }
        };
        Ok(updated.then_some(now))
    }
}

/// Numbers and stores the groups of a batch on PostgreSQL: for each site, year and
/// direction one statement moves the sequence, inserts the declarations (numbered from
/// it, in batch order), their first events and their screening hand-offs. Several
/// groups share a transaction; the usual one group is a single round trip. The
/// hand-off's payload is built in SQL the way `Job::ScreenDeclaration` serialises
/// (`{"kind": "screen_declaration", "declaration_number": …}`, without `revision`, which
/// reads as 0: the declaration as submitted); the repository suite claims and decodes
/// it as such.
async fn submit_groups_postgres(
    pool: &sqlx::PgPool,
    batch: &[NewDeclaration],
    groups: &std::collections::BTreeMap<(String, i32, char), Vec<usize>>,
    now: OffsetDateTime,
) -> std::result::Result<Vec<(usize, String)>, sqlx::Error> {
    const SUBMIT: &str = "WITH seq AS (
            INSERT INTO declaration_sequences (site, year, direction, last_value) VALUES ($1, $2, $3, $4)
            ON CONFLICT (site, year, direction) DO UPDATE SET last_value = declaration_sequences.last_value + $4
            RETURNING last_value
        ), fresh AS (
            SELECT * FROM UNNEST($5::text[], $6::text[], $7::text[], $8::text[], $9::text[], $10::bytea[])
                WITH ORDINALITY AS f (request_id, enterprise_code, broker_code, handling_house, actor, content, ord)
        ), numbered AS (
            INSERT INTO declarations (declaration_number, request_id, enterprise_code, broker_code,
                declaring_office, stage, handling_house, content, submitted_at, updated_at)
            SELECT $11 || lpad((seq.last_value - $4 + f.ord)::text, 9, '0'), f.request_id, f.enterprise_code,
                f.broker_code, $1, 'SUBMITTED', f.handling_house, f.content, $12, $12
            FROM fresh f CROSS JOIN seq
            RETURNING declaration_number, request_id
        ), events AS (
            INSERT INTO declaration_events (declaration_number, from_stage, to_stage, actor, house_code, reason, occurred_at)
            SELECT n.declaration_number, '', 'SUBMITTED', f.actor, f.handling_house, 'declared', $12
            FROM numbered n JOIN fresh f ON f.request_id = n.request_id
        ), jobs AS (
            INSERT INTO outbox (kind, job_key, payload, created_at, next_attempt_at)
            SELECT 'screen_declaration', n.declaration_number,
                json_build_object('kind', 'screen_declaration', 'declaration_number', n.declaration_number)::text,
                $12, $13
            FROM numbered n ORDER BY n.declaration_number
        )
        SELECT declaration_number, request_id FROM numbered";
    let mut tx = if groups.len() > 1 {
        Some(pool.begin().await?)
    } else {
        None
    };
    let due = now_millis();
    let mut numbered = Vec::new();
    for ((site, year, direction), members) in groups {
        let column = |pick: fn(&NewDeclaration) -> &str| -> Vec<&str> {
            members.iter().map(|&i| pick(&batch[i])).collect()
        };
        let query = sqlx::query_as::<_, (String, String)>(SUBMIT)
            .bind(site)
            .bind(year)
            .bind(direction.to_string())
            .bind(members.len() as i64)
            .bind(column(|new| &new.request_id))
            .bind(column(|new| &new.enterprise_code))
            .bind(column(|new| &new.broker_code))
            .bind(column(|new| &new.handling_house))
            .bind(column(|new| &new.actor))
            .bind(
                members
                    .iter()
                    .map(|&i| batch[i].content.as_slice())
                    .collect::<Vec<_>>(),
            )
            .bind(format!("{site}{year:04}{direction}"))
            .bind(now)
            .bind(due);
        let rows = match tx.as_mut() {
            Some(tx) => query.fetch_all(&mut **tx).await?,
            None => query.fetch_all(pool).await?,
        };
        let by_request: HashMap<String, String> = rows
            .into_iter()
            .map(|(number, request_id)| (request_id, number))
            .collect();
        for &i in members {
            let number = by_request
                .get(&batch[i].request_id)
                .cloned()
                .ok_or_else(|| {
                    sqlx::Error::Protocol(format!(
                        "declaration {} was not numbered",
                        batch[i].request_id
                    ))
                })?;
            numbered.push((i, number));
        }
    }
    if let Some(tx) = tx {
        tx.commit().await?;
    }
    Ok(numbered)
}

/// Numbers and stores the groups of a batch on SQLite, as one one-step transaction
/// (`Sqlite::one_step_rows`, grouped with the other writes waiting meanwhile): for each
/// site, year and direction, the sequence moves by the group's count (its `RETURNING`
/// row is the group's answer), then the declarations, their first events and their
/// screening hand-offs are inserted, numbered in SQL from that row the way Rust numbers
/// them below (`printf('%09d')` of the position in the group). The hand-off's payload
/// is built in SQL as on PostgreSQL.
async fn submit_groups_sqlite(
    sqlite: &customs_common::db::Sqlite,
    batch: &[NewDeclaration],
    groups: &std::collections::BTreeMap<(String, i32, char), Vec<usize>>,
    now: OffsetDateTime,
) -> std::result::Result<Vec<(usize, String)>, sqlx::Error> {
    if groups.is_empty() {
        return Ok(Vec::new());
    }
    // $1 and $2 are shared (the time, and when the hand-offs fall due); each group then
    // has five parameters and each of its declarations six, numbered in this order.
    let mut sql = String::new();
    let mut next = 3;
    for members in groups.values() {
        let [site, year, direction, count, prefix] = std::array::from_fn(|i| next + i);
        next += 5;
        let number = format!("${prefix} || printf('%09d', s.last_value - ${count} + v.column1)");
        let sequence = format!(
            "declaration_sequences s WHERE s.site = ${site} AND s.year = ${year} AND s.direction = ${direction}"
        );
        let (mut declarations, mut events, mut ordinals) =
            (String::new(), String::new(), String::new());
        for (position, _) in members.iter().enumerate() {
            let [request_id, enterprise, broker, house, actor, content] =
                std::array::from_fn(|i| next + i);
            next += 6;
            let comma = if position == 0 { "" } else { ", " };
            let ord = position + 1;
            let _ = write!(
                declarations,
                "{comma}({ord}, ${request_id}, ${enterprise}, ${broker}, ${house}, ${content})"
            );
            let _ = write!(events, "{comma}({ord}, ${actor}, ${house})");
            let _ = write!(ordinals, "{comma}({ord})");
        }
        let _ = write!(
            sql,
            "INSERT INTO declaration_sequences (site, year, direction, last_value) VALUES (${site}, ${year}, ${direction}, ${count})
             ON CONFLICT (site, year, direction) DO UPDATE SET last_value = declaration_sequences.last_value + ${count}
             RETURNING last_value;
             INSERT INTO declarations (declaration_number, request_id, enterprise_code, broker_code,
                 declaring_office, stage, handling_house, content, submitted_at, updated_at)
             SELECT {number}, v.column2, v.column3, v.column4, ${site}, 'SUBMITTED', v.column5, v.column6, $1, $1
             FROM (VALUES {declarations}) v, {sequence};
             INSERT INTO declaration_events (declaration_number, from_stage, to_stage, actor, house_code, reason, occurred_at)
             SELECT {number}, '', 'SUBMITTED', v.column2, v.column3, 'declared', $1
             FROM (VALUES {events}) v, {sequence};
             INSERT INTO outbox (kind, job_key, payload, created_at, next_attempt_at)
             SELECT 'screen_declaration', n, json_object('kind', 'screen_declaration', 'declaration_number', n), $1, $2
             FROM (SELECT {number} AS n FROM (VALUES {ordinals}) v, {sequence} ORDER BY v.column1);\n"
        );
    }
    // Placeholders that Rust numbered (nothing a caller sent), bound in their order.
    let mut step = OneStep::new(sql);
    step.bind(now);
    step.bind(now_millis());
    for ((site, year, direction), members) in groups {
        step.bind(site);
        step.bind(*year);
        step.bind(direction.to_string());
        step.bind(members.len() as i64);
        step.bind(format!("{site}{year:04}{direction}"));
        for &i in members {
            let new = &batch[i];
            step.bind(&new.request_id);
            step.bind(&new.enterprise_code);
            step.bind(&new.broker_code);
            step.bind(&new.handling_house);
            step.bind(&new.actor);
            step.bind(new.content.as_slice());
        }
    }
    let lasts = sqlite.one_step_rows(step).await?;
    if lasts.len() != groups.len() {
        return Err(sqlx::Error::Protocol(format!(
            "a batch of {} sequences moved {}",
            groups.len(),
            lasts.len()
        )));
    }
    let mut numbered = Vec::new();
    for (((site, year, direction), members), last) in groups.iter().zip(lasts) {
        let count = members.len() as i64;
        for (offset, &i) in members.iter().enumerate() {
            let sequence = last - count + 1 + offset as i64;
            numbered.push((i, format!("{site}{year:04}{direction}{sequence:09}")));
        }
    }
    Ok(numbered)
}
