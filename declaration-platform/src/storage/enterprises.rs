//! Enterprises, brokers and their credit-class history.

use std::sync::Arc;

use customs_common::{
    Error, Result, credit::CreditSchemes, db::Database, on_pool, on_reader, outbox::Encoded,
};
use time::{Date, OffsetDateTime};

use crate::{
    domain::enterprise::{EnterpriseKind, NewEnterprise},
    outbox::{ENQUEUE, Job},
};

/// Takes the enterprise's row for the rest of the transaction and gives its credit
/// class as it stands once taken (`None` when there is no such enterprise): an update
/// that changes nothing, because PostgreSQL has no `FOR UPDATE` that SQLite accepts.
/// Another replica settling the same enterprise waits here, then reads what it wrote.
macro_rules! lock_enterprise {
    ($tx:expr, $code:expr) => {{
        let held: Option<String> = sqlx::query_scalar(
            "UPDATE enterprises SET credit_class = credit_class WHERE code = $1 RETURNING credit_class",
        )
        .bind($code)
        .fetch_optional(&mut *$tx)
        .await?;
        held
    }};
}

/// Brings an enterprise's class to the one in force on `$today` inside the open
/// transaction `$tx` (either backend), once its due changes are marked applied: the
/// latest change effective by then (by effective date, then by when it was recorded),
/// as the credit scheme in force carries it over. Gaining or losing summary tax payment
/// (a DISCREDITED class) is handed to the field platform in the same transaction.
/// The enterprise's row is taken first. Evaluates to whether the class changed.
macro_rules! settle_credit_class {
    ($tx:expr, $schemes:expr, $code:expr, $today:expr, $now:expr) => {{
        let (schemes, code, today, now): (&CreditSchemes, &str, Date, OffsetDateTime) =
            ($schemes, $code, $today, $now);
        // Taken before the history is read, so that a change another replica
        // recorded and settled meanwhile is read too.
        let before = lock_enterprise!($tx, code);
        let in_force: Option<String> = sqlx::query_scalar(
            "SELECT credit_class FROM credit_class_history WHERE code = $1 AND effective_from <= $2
             ORDER BY effective_from DESC, recorded_at DESC LIMIT 1",
        )
        .bind(code)
        .bind(today)
        .fetch_optional(&mut *$tx)
        .await?
        .map(|class: String| match schemes.carried_to(&class, today) {
            Some(held) => held.to_owned(),
            None => {
                tracing::error!(enterprise = code, class = %class, "a credit class no configured scheme has");
                class
            }
        });
        match (before, in_force) {
            (Some(before), Some(in_force)) if before != in_force => {
                sqlx::query("UPDATE enterprises SET credit_class = $1, updated_at = $2 WHERE code = $3")
                    .bind(&in_force)
                    .bind(now)
                    .bind(code)
                    .execute(&mut *$tx)
                    .await?;
                let barred = |class: &str| !schemes.summary_tax_payment(class);
                if barred(&before) != barred(&in_force) {
                    let jobs = [Encoded::of(&Job::HolderRestriction {
                        holder: code.to_owned(),
                        discredited: barred(&in_force),
                    })?];
                    customs_common::insert_jobs!($tx, ENQUEUE, &jobs, now);
                }
                tracing::info!(enterprise = code, from = %before, to = %in_force, %today, "credit class in force");
                true
            }
            _ => false,
        }
    }};
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct EnterpriseRecord {
    pub code: String,
    pub name: String,
    pub kind: EnterpriseKind,
    /// Its code in the credit scheme in force.
    pub credit_class: String,
    pub home_house: String,
    pub suspended: bool,
    pub suspension_reason: String,
    pub registered_at: OffsetDateTime,
    pub updated_at: OffsetDateTime,
}

#[derive(sqlx::FromRow)]
struct EnterpriseRow {
    code: String,
    name: String,
    kind: String,
    credit_class: String,
    home_house: String,
    suspended: bool,
    suspension_reason: String,
    registered_at: OffsetDateTime,
    updated_at: OffsetDateTime,
}

impl TryFrom<EnterpriseRow> for EnterpriseRecord {
    type Error = Error;

    fn try_from(row: EnterpriseRow) -> Result<Self> {
        let corrupt = |what: &str| {
            Error::internal(anyhow::anyhow!(
                "enterprise {} has a corrupt {what}",
                row.code
            ))
        };
        Ok(Self {
            kind: EnterpriseKind::parse(&row.kind).ok_or_else(|| corrupt("kind"))?,
            credit_class: row.credit_class,
            code: row.code,
            name: row.name,
            home_house: row.home_house,
            suspended: row.suspended,
            suspension_reason: row.suspension_reason,
            registered_at: row.registered_at,
            updated_at: row.updated_at,
        })
    }
}

const COLUMNS: &str = "code, name, kind, credit_class, home_house, suspended, suspension_reason, registered_at, updated_at";

#[derive(Debug, Clone, Default)]
pub struct EnterpriseFilter {
    pub kind: Option<EnterpriseKind>,
    pub home_house: Option<String>,
    pub after: Option<String>,
    pub limit: i64,
}

#[derive(Debug, Clone)]
pub struct EnterpriseRepository {
    database: Database,
    schemes: Arc<CreditSchemes>,
}

impl EnterpriseRepository {
    pub fn new(database: Database, schemes: Arc<CreditSchemes>) -> Self {
        Self { database, schemes }
    }

    /// Registers once per request id and once per code; an enterprise whose class may
    /// not use summary tax payment (DISCREDITED) is handed to the field platform, to be
    /// barred, in the same transaction. Returns the enterprise this request registered (now, or the first
    /// time) and whether it was created now; `None` when the code was already
    /// registered by another request.
    pub async fn insert(
        &self,
        request_id: &str,
        enterprise: &NewEnterprise,
    ) -> Result<Option<(EnterpriseRecord, bool)>> {
        let now = OffsetDateTime::now_utc();
        let jobs = if !self.schemes.summary_tax_payment(&enterprise.credit_class) {
            vec![Encoded::of(&Job::HolderRestriction {
                holder: enterprise.code.clone(),
                discredited: true,
            })?]
        } else {
            Vec::new()
        };
        let inserted = on_pool!(&self.database, pool => {
            let mut tx = pool.begin().await?;
            let inserted = sqlx::query(
                "INSERT INTO enterprises (code, request_id, name, kind, credit_class, home_house, registered_at, updated_at)
                 VALUES ($1, $2, $3, $4, $5, $6, $7, $7) ON CONFLICT DO NOTHING",
            )
            .bind(&enterprise.code)
            .bind(request_id)
            .bind(&enterprise.name)
            .bind(enterprise.kind.as_str())
            .bind(&enterprise.credit_class)
            .bind(&enterprise.home_house)
            .bind(now)
            .execute(&mut *tx)
            .await?
            .rows_affected()
                == 1;
            if inserted {
                sqlx::query(
                    "INSERT INTO credit_class_history (code, credit_class, effective_from, reason, recorded_at, applied_at)
                     VALUES ($1, $2, $3, 'registration', $4, $4)",
                )
                .bind(&enterprise.code)
                .bind(&enterprise.credit_class)
                .bind(customs_common::day::beijing_day(now))
                .bind(now)
                .execute(&mut *tx)
                .await?;
                customs_common::insert_jobs!(tx, ENQUEUE, &jobs, now);
            }
            tx.commit().await?;
            inserted
        });
        let first_for_request: Option<String> = on_pool!(&self.database, pool => {
            sqlx::query_scalar("SELECT code FROM enterprises WHERE request_id = $1")
                .bind(request_id)
                .fetch_optional(pool)
                .await?
        });
        // The code was taken by another registration: not this request's to return.
        let Some(code) = first_for_request else {
            return Ok(None);
        };
        let record = self
            .get(&code)
            .await?
            .ok_or_else(|| Error::internal(anyhow::anyhow!("enterprise {code} vanished")))?;
        Ok(Some((record, inserted)))
    }

    pub async fn get(&self, code: &str) -> Result<Option<EnterpriseRecord>> {
        let sql = sqlx::AssertSqlSafe(format!("SELECT {COLUMNS} FROM enterprises WHERE code = $1"));
        let row: Option<EnterpriseRow> = on_reader!(&self.database, pool => {
            sqlx::query_as(sql).bind(code).fetch_optional(pool).await?
        });
        row.map(EnterpriseRecord::try_from).transpose()
    }

    pub async fn list(&self, filter: &EnterpriseFilter) -> Result<Vec<EnterpriseRecord>> {
        let sql = sqlx::AssertSqlSafe(format!(
            "SELECT {COLUMNS} FROM enterprises
             WHERE ($1 IS NULL OR kind = $1) AND ($2 IS NULL OR home_house = $2) AND ($3 IS NULL OR code > $3)
             ORDER BY code LIMIT $4"
        ));
        let rows: Vec<EnterpriseRow> = on_reader!(&self.database, pool => {
            sqlx::query_as(sql)
                .bind(filter.kind.map(EnterpriseKind::as_str))
                .bind(&filter.home_house)
                .bind(&filter.after)
                .bind(filter.limit)
                .fetch_all(pool)
                .await?
        });
        rows.into_iter().map(EnterpriseRecord::try_from).collect()
    }

    /// Records a credit-class change effective from `effective_from`. One due by
    /// `today` applies at once; a later one on its day (`apply_due_credit_classes`).
    /// Returns whether the enterprise is registered and whether its class changed now.
    pub async fn change_credit_class(
        &self,
        code: &str,
        class: &str,
        effective_from: Date,
        reason: &str,
        today: Date,
    ) -> Result<Option<bool>> {
        let now = OffsetDateTime::now_utc();
        Ok(on_pool!(&self.database, pool => {
            let mut tx = pool.begin().await?;
            let exists = sqlx::query("INSERT INTO credit_class_history (code, credit_class, effective_from, reason, recorded_at, applied_at)
                     SELECT code, $2, $3, $4, $5, $6 FROM enterprises WHERE code = $1")
                .bind(code)
                .bind(class)
                .bind(effective_from)
                .bind(reason)
                .bind(now)
                .bind((effective_from <= today).then_some(now))
                .execute(&mut *tx)
                .await?
                .rows_affected()
                == 1;
            let changed = exists && settle_credit_class!(tx, &self.schemes, code, today, now);
            tx.commit().await?;
            exists.then_some(changed)
        }))
    }

    /// Applies the credit-class changes that have come into force by `today` and were
    /// not applied yet (dated in the future when recorded), then the credit scheme in
    /// force (`carry_over_credit_classes`); each enterprise's in its own transaction,
    /// once even with several replicas. Returns the enterprises whose class changed.
    pub async fn apply_due_credit_classes(&self, today: Date) -> Result<Vec<String>> {
        let mut changed = self.apply_recorded_credit_classes(today).await?;
        changed.extend(self.carry_over_credit_classes(today).await?);
        Ok(changed)
    }

    /// Moves every enterprise whose class the credit scheme in force on `today` no
    /// longer has to the class the scheme carries it over to, recorded in its history
    /// as of the scheme's first day. Returns the enterprises moved.
    pub async fn carry_over_credit_classes(&self, today: Date) -> Result<Vec<String>> {
        let Some(scheme) = self.schemes.in_force(today) else {
            return Ok(Vec::new());
        };
        let in_use: Vec<String> = on_reader!(&self.database, pool => {
            sqlx::query_scalar("SELECT DISTINCT credit_class FROM enterprises")
                .fetch_all(pool)
                .await?
        });
        let mut moved = Vec::new();
        for dropped in in_use.iter().filter(|class| scheme.class(class).is_none()) {
            let Some(held) = self.schemes.carried_to(dropped, today) else {
                tracing::error!(class = %dropped, scheme = %scheme.name, "enterprises hold a credit class no configured scheme has; left as it is");
                continue;
            };
            let codes: Vec<String> = on_reader!(&self.database, pool => {
                sqlx::query_scalar("SELECT code FROM enterprises WHERE credit_class = $1 ORDER BY code")
                    .bind(dropped)
                    .fetch_all(pool)
                    .await?
            });
            let reason = format!(
                "credit scheme {} in force: {dropped} becomes {held}",
                scheme.name
            );
            for code in codes {
                let now = OffsetDateTime::now_utc();
                let changed = on_pool!(&self.database, pool => {
                    let mut tx = pool.begin().await?;
                    // Only while it still holds the dropped class once its row is taken:
                    // another replica, or a change recorded meanwhile, may have moved it.
                    let holds_dropped = lock_enterprise!(tx, &code).as_deref() == Some(dropped.as_str());
                    if holds_dropped {
                        sqlx::query(
                            "INSERT INTO credit_class_history (code, credit_class, effective_from, reason, recorded_at, applied_at)
                             VALUES ($1, $2, $3, $4, $5, $5)",
                        )
                        .bind(&code)
                        .bind(held)
                        .bind(scheme.effective_from)
                        .bind(&reason)
                        .bind(now)
                        .execute(&mut *tx)
                        .await?;
                    }
                    let changed = holds_dropped && settle_credit_class!(tx, &self.schemes, &code, today, now);
                    tx.commit().await?;
                    changed
                });
                if changed {
                    moved.push(code);
                }
            }
        }
        Ok(moved)
    }

    /// The recorded changes that have come into force by `today`, as
    /// `apply_due_credit_classes`.
    async fn apply_recorded_credit_classes(&self, today: Date) -> Result<Vec<String>> {
        let codes: Vec<String> = on_reader!(&self.database, pool => {
            sqlx::query_scalar(
                "SELECT DISTINCT code FROM credit_class_history WHERE applied_at IS NULL AND effective_from <= $1 ORDER BY code",
            )
            .bind(today)
            .fetch_all(pool)
            .await?
        });
        let mut changed = Vec::new();
        for code in codes {
            let now = OffsetDateTime::now_utc();
            let moved = on_pool!(&self.database, pool => {
                let mut tx = pool.begin().await?;
                // Marking them is the claim: another replica's transaction finds none.
                let due = sqlx::query(
                    "UPDATE credit_class_history SET applied_at = $1
                     WHERE code = $2 AND applied_at IS NULL AND effective_from <= $3",
                )
                .bind(now)
                .bind(&code)
                .bind(today)
                .execute(&mut *tx)
                .await?
                .rows_affected();
                let moved = due > 0 && settle_credit_class!(tx, &self.schemes, &code, today, now);
                tx.commit().await?;
                moved
            });
            if moved {
                changed.push(code);
            }
        }
        Ok(changed)
    }

    pub async fn set_suspended(&self, code: &str, suspended: bool, reason: &str) -> Result<bool> {
        let updated = on_pool!(&self.database, pool => {
            sqlx::query("UPDATE enterprises SET suspended = $1, suspension_reason = $2, updated_at = $3 WHERE code = $4")
                .bind(suspended)
                .bind(reason)
                .bind(OffsetDateTime::now_utc())
                .bind(code)
                .execute(pool)
                .await?
                .rows_affected()
        });
        Ok(updated == 1)
    }
}
