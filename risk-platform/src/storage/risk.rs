//! Control instructions, risk parameters and screening decisions.

use customs_common::{
    Error, Result,
    db::{Database, OneStep},
    on_pool, on_reader,
};
use serde::{Deserialize, Serialize};
use time::OffsetDateTime;

use crate::domain::screening::{Conditions, Decision, Instruction, Lane, SamplingRates};

const INSERT_DECISION: &str = "INSERT INTO screening_decisions (decision_id, declaration_number, revision, decision, parameters_version, credit_class, decided_at)
     VALUES ($1, $2, $3, $4, $5, $6, $7) ON CONFLICT (declaration_number, revision) DO NOTHING";

fn json<T: Serialize>(value: &T) -> Result<String> {
    serde_json::to_string(value).map_err(|e| Error::internal(anyhow::anyhow!(e)))
}

fn parse_json<T: for<'de> Deserialize<'de>>(what: &str, text: &str) -> Result<T> {
    serde_json::from_str(text).map_err(|e| Error::internal(anyhow::anyhow!("corrupt {what}: {e}")))
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct InstructionRecord {
    pub instruction: Instruction,
    pub revoked: bool,
    pub revocation_reason: String,
    pub created_at: OffsetDateTime,
    pub revoked_at: Option<OffsetDateTime>,
}

#[derive(sqlx::FromRow)]
struct InstructionRow {
    id: String,
    conditions: String,
    lane: String,
    order_inspection: bool,
    valid_from: i64,
    valid_until: i64,
    issuing_house: String,
    reason: String,
    revoked: bool,
    revocation_reason: String,
    created_at: OffsetDateTime,
    revoked_at: Option<OffsetDateTime>,
}

impl TryFrom<InstructionRow> for InstructionRecord {
    type Error = Error;

    fn try_from(row: InstructionRow) -> Result<Self> {
        Ok(Self {
            instruction: Instruction {
                conditions: parse_json::<Conditions>("instruction conditions", &row.conditions)?,
                lane: Lane::parse(&row.lane)
                    .ok_or_else(|| Error::internal(anyhow::anyhow!("corrupt lane {}", row.lane)))?,
                id: row.id,
                order_inspection: row.order_inspection,
                valid_from: row.valid_from,
                valid_until: row.valid_until,
                issuing_house: row.issuing_house,
                reason: row.reason,
            },
            revoked: row.revoked,
            revocation_reason: row.revocation_reason,
            created_at: row.created_at,
            revoked_at: row.revoked_at,
        })
    }
}

const COLUMNS: &str = "id, conditions, lane, order_inspection, valid_from, valid_until, issuing_house, reason, \
     revoked, revocation_reason, created_at, revoked_at";

/// Instructions ever issued and ever revoked (table `instruction_set`), moved in the
/// transaction of each issue and revocation. Both only grow (instructions are never
/// deleted, and a revocation stays), so a change in either means the active set
/// changed, other than by expiry.
pub type SetCounters = (i64, i64);

const ISSUED: &str =
    "UPDATE instruction_set SET issued = issued + 1 WHERE id = 1 RETURNING issued, revoked";
const REVOKED: &str =
    "UPDATE instruction_set SET revoked = revoked + 1 WHERE id = 1 RETURNING issued, revoked";

/// The risk parameters in force: sampling rates per credit class, the seed, the day
/// the integrated mode opens at land ports.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Parameters {
    pub sampling: std::collections::BTreeMap<String, SamplingRates>,
    pub sampling_seed: String,
    /// ISO date.
    pub land_port_integrated_from: String,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct VersionedParameters {
    pub version: i64,
    pub parameters: Parameters,
    pub updated_at: OffsetDateTime,
    pub updated_by: String,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DecisionRecord {
    pub decision_id: String,
    pub declaration_number: String,
    /// 0 as submitted, n after the declaration's n-th approved modification.
    pub revision: i32,
    pub decision: Decision,
    pub parameters_version: i64,
    pub credit_class: String,
    pub decided_at: OffsetDateTime,
}

#[derive(Debug, Clone)]
pub struct RiskRepository {
    database: Database,
}

impl RiskRepository {
    pub fn new(database: Database) -> Self {
        Self { database }
    }

    /// Stores an instruction once per request id; returns the one stored for it.
    /// Stores an instruction unless its request id was seen; with the instruction set's
    /// counters after it when this call stored it.
    pub async fn insert_instruction(
        &self,
        request_id: &str,
        instruction: &Instruction,
    ) -> Result<(InstructionRecord, Option<SetCounters>)> {
        let counters = on_pool!(&self.database, pool => {
            let mut tx = pool.begin().await?;
            let inserted = sqlx::query(
                "INSERT INTO control_instructions (id, request_id, conditions, lane, order_inspection, valid_from,
                     valid_until, issuing_house, reason, created_at)
                 VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10) ON CONFLICT (request_id) DO NOTHING",
            )
            .bind(&instruction.id)
            .bind(request_id)
            .bind(json(&instruction.conditions)?)
            .bind(instruction.lane.as_str())
            .bind(instruction.order_inspection)
            .bind(instruction.valid_from)
            .bind(instruction.valid_until)
            .bind(&instruction.issuing_house)
            .bind(&instruction.reason)
            .bind(OffsetDateTime::now_utc())
            .execute(&mut *tx)
            .await?
            .rows_affected()
                == 1;
            let counters = if inserted {
                Some(sqlx::query_as(ISSUED).fetch_one(&mut *tx).await?)
            } else {
                None
            };
            tx.commit().await?;
            counters
        });
        let sql = sqlx::AssertSqlSafe(format!(
            "SELECT {COLUMNS} FROM control_instructions WHERE request_id = $1"
        ));
        let row: InstructionRow = on_pool!(&self.database, pool => {
            sqlx::query_as(sql).bind(request_id).fetch_one(pool).await?
        });
        Ok((row.try_into()?, counters))
    }

    pub async fn instruction(&self, id: &str) -> Result<Option<InstructionRecord>> {
        let sql = sqlx::AssertSqlSafe(format!(
            "SELECT {COLUMNS} FROM control_instructions WHERE id = $1"
        ));
        let row: Option<InstructionRow> = on_reader!(&self.database, pool => {
            sqlx::query_as(sql).bind(id).fetch_optional(pool).await?
        });
        row.map(InstructionRecord::try_from).transpose()
    }

    /// Instructions by state and issuing house, after `after`, by id.
    pub async fn instructions(
        &self,
        revoked: Option<bool>,
        issuing_house: Option<&str>,
        after: Option<&str>,
        limit: i64,
    ) -> Result<Vec<InstructionRecord>> {
        let sql = sqlx::AssertSqlSafe(format!(
            "SELECT {COLUMNS} FROM control_instructions
             WHERE ($1 IS NULL OR revoked = $1) AND ($2 IS NULL OR issuing_house = $2) AND ($3 IS NULL OR id > $3)
             ORDER BY id LIMIT $4"
        ));
        let rows: Vec<InstructionRow> = on_reader!(&self.database, pool => {
            sqlx::query_as(sql).bind(revoked).bind(issuing_house).bind(after).bind(limit).fetch_all(pool).await?
        });
        rows.into_iter().map(InstructionRecord::try_from).collect()
    }

    /// Every instruction not revoked and not yet expired at `now` (unix seconds).
    pub async fn active_instructions(&self, now: i64) -> Result<Vec<Instruction>> {
        let sql = sqlx::AssertSqlSafe(format!(
            "SELECT {COLUMNS} FROM control_instructions WHERE revoked = FALSE AND valid_until > $1 ORDER BY id"
        ));
        let rows: Vec<InstructionRow> = on_reader!(&self.database, pool => {
            sqlx::query_as(sql).bind(now).fetch_all(pool).await?
        });
        rows.into_iter()
            .map(|row| InstructionRecord::try_from(row).map(|r| r.instruction))
            .collect()
    }

    /// The instruction set's counters now: one row, however many instructions.
    pub async fn instruction_set_counters(&self) -> Result<SetCounters> {
        Ok(on_reader!(&self.database, pool => {
            sqlx::query_as("SELECT issued, revoked FROM instruction_set WHERE id = 1")
                .fetch_one(pool)
                .await?
        }))
    }

    /// Revokes an instruction, with the instruction set's counters after it; `None`
    /// when there is none by that id, or it was revoked before (the first revocation's
    /// time and reason stand).
    pub async fn revoke_instruction(&self, id: &str, reason: &str) -> Result<Option<SetCounters>> {
        Ok(on_pool!(&self.database, pool => {
            let mut tx = pool.begin().await?;
            let revoked = sqlx::query("UPDATE control_instructions SET revoked = TRUE, revocation_reason = $1, revoked_at = $2 WHERE id = $3 AND revoked = FALSE")
                .bind(reason)
                .bind(OffsetDateTime::now_utc())
                .bind(id)
                .execute(&mut *tx)
                .await?
                .rows_affected()
                == 1;
            let counters = if revoked {
                Some(sqlx::query_as(REVOKED).fetch_one(&mut *tx).await?)
            } else {
                None
            };
            tx.commit().await?;
            counters
        }))
    }

    pub async fn parameters(&self) -> Result<Option<VersionedParameters>> {
        const SQL: &str = "SELECT version, parameters, updated_at, updated_by FROM risk_parameters ORDER BY version DESC LIMIT 1";
        // Read for every screening: at once on this thread where the database allows.
        let row: Option<(i64, String, OffsetDateTime, String)> = match self.database.direct_reader()
        {
            Some(direct) => direct.query_optional(SQL, &[], |row| row.try_into())?,
            None => on_reader!(&self.database, pool => {
                sqlx::query_as(SQL).fetch_optional(pool).await?
            }),
        };
        row.map(|(version, parameters, updated_at, updated_by)| {
            Ok(VersionedParameters {
                version,
                parameters: parse_json("risk parameters", &parameters)?,
                updated_at,
                updated_by,
            })
        })
        .transpose()
    }

    /// Stores `parameters` as version `expected + 1`; `false` when another update won.
    pub async fn put_parameters(
        &self,
        expected_version: i64,
        parameters: &Parameters,
        by: &str,
    ) -> Result<bool> {
        let inserted = on_pool!(&self.database, pool => {
            sqlx::query(
                "INSERT INTO risk_parameters (version, parameters, updated_at, updated_by)
                 SELECT $1, $2, $3, $4
                 WHERE COALESCE((SELECT MAX(version) FROM risk_parameters), 0) = $5
                 ON CONFLICT (version) DO NOTHING",
            )
            .bind(expected_version + 1)
            .bind(json(parameters)?)
            .bind(OffsetDateTime::now_utc())
            .bind(by)
            .bind(expected_version)
            .execute(pool)
            .await?
            .rows_affected()
        });
        Ok(inserted == 1)
    }

    /// Stores the decision for a declaration once; returns the one stored.
    pub async fn insert_decision(&self, record: &DecisionRecord) -> Result<DecisionRecord> {
        let decision = json(&record.decision)?;
        let inserted = match &self.database {
            Database::Postgres(pool) => {
                sqlx::query(INSERT_DECISION)
                    .bind(&record.decision_id)
                    .bind(&record.declaration_number)
                    .bind(record.revision)
                    .bind(&decision)
                    .bind(record.parameters_version)
                    .bind(&record.credit_class)
                    .bind(record.decided_at)
                    .execute(pool)
                    .await?
                    .rows_affected()
                    == 1
            }
            // With the other writes waiting for the writer meanwhile (`OneStep`).
            Database::Sqlite(sqlite) => {
                let mut step = OneStep::default();
                let params = [
                    step.bind(&record.decision_id),
                    step.bind(&record.declaration_number),
                    step.bind(record.revision),
                    step.bind(decision),
                    step.bind(record.parameters_version),
                    step.bind(&record.credit_class),
                    step.bind(record.decided_at),
                ];
                step.push_numbered(INSERT_DECISION, &params)
                    .push(";\nSELECT changes()");
                sqlite.one_step(step).await? == 1
            }
        };
        if inserted {
            return Ok(record.clone());
        }
        // Another screening of the same revision got there first: its decision stands.
        self.decision_for(&record.declaration_number, record.revision)
            .await?
            .ok_or_else(|| {
                Error::internal(anyhow::anyhow!(
                    "decision for {} vanished",
                    record.declaration_number
                ))
            })
    }

    async fn decision_where(
        &self,
        condition: &'static str,
        value: &str,
        revision: Option<i32>,
    ) -> Result<Option<DecisionRecord>> {
        let sql = format!(
            "SELECT decision_id, declaration_number, revision, decision, parameters_version, credit_class, decided_at
             FROM screening_decisions WHERE {condition}"
        );
        type Row = (String, String, i32, String, i64, String, OffsetDateTime);
        // Read for every screening: at once on this thread where the database allows.
        let row: Option<Row> = match self.database.direct_reader() {
            Some(direct) => match revision {
                Some(revision) => {
                    direct.query_optional(&sql, &[&value, &revision], |row| row.try_into())?
                }
                None => direct.query_optional(&sql, &[&value], |row| row.try_into())?,
            },
            None => on_reader!(&self.database, pool => {
                let query = sqlx::query_as(sqlx::AssertSqlSafe(sql)).bind(value);
                match revision {
                    Some(revision) => query.bind(revision),
                    None => query,
                }
                .fetch_optional(pool)
                .await?
            }),
        };
        row.map(
            |(
                decision_id,
                declaration_number,
                revision,
                decision,
                parameters_version,
                credit_class,
                decided_at,
            )| {
                Ok(DecisionRecord {
                    decision_id,
                    declaration_number,
                    revision,
                    decision: parse_json("decision", &decision)?,
                    parameters_version,
                    credit_class,
                    decided_at,
                })
            },
        )
        .transpose()
    }

    pub async fn decision(&self, decision_id: &str) -> Result<Option<DecisionRecord>> {
        self.decision_where("decision_id = $1", decision_id, None)
            .await
    }

    /// The decision on a revision of a declaration.
    pub async fn decision_for(
        &self,
        declaration_number: &str,
        revision: i32,
    ) -> Result<Option<DecisionRecord>> {
        self.decision_where(
            "declaration_number = $1 AND revision = $2",
            declaration_number,
            Some(revision),
        )
        .await
    }
}
