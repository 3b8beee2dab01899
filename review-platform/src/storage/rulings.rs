//! Rulings and licence draw-downs.

use std::str::FromStr;

use customs_common::{
    Error, Result, on_pool,
    rulings::{RulingKind, RulingRecord},
    store::{EarlierDraw, StoredDraw},
};
use rust_decimal::Decimal;
use time::{Date, OffsetDateTime};

use crate::domain::ruling::{date_of_day, day_number};

/// A ruling as stored, with its registration details.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StoredRuling {
    pub record: RulingRecord,
    pub request_id: String,
    pub issued_at: OffsetDateTime,
}

#[derive(Debug, Clone, sqlx::FromRow)]
struct RulingRow {
    id: String,
    request_id: String,
    kind: String,
    issuing_house: String,
    holder: String,
    subject: String,
    hs_code: Option<String>,
    price_currency: Option<String>,
    price_amount: Option<String>,
    origin_country: Option<String>,
    quantity_granted_milli: Option<i64>,
    unit: Option<String>,
    valid_from: Date,
    valid_until: Date,
    revoked: bool,
    replaced_by: Option<String>,
    revocation_reason: Option<String>,
    issued_at: OffsetDateTime,
}

impl TryFrom<RulingRow> for StoredRuling {
    type Error = Error;

    fn try_from(row: RulingRow) -> Result<Self> {
        let corrupt =
            |what: &str| Error::internal(anyhow::anyhow!("ruling {} has a corrupt {what}", row.id));
        let kind = RulingKind::parse(&row.kind).ok_or_else(|| corrupt("kind"))?;
        let unit_price = match (&row.price_currency, &row.price_amount) {
            (Some(currency), Some(amount)) => Some((
                currency.clone(),
                Decimal::from_str(amount).map_err(|_| corrupt("price"))?,
            )),
            _ => None,
        };
        Ok(Self {
            record: RulingRecord {
                id: row.id.clone(),
                kind,
                issuing_house: row.issuing_house,
                holder: row.holder,
                subject: row.subject,
                hs_code: row.hs_code,
                unit_price,
                origin_country: row.origin_country,
                quantity_granted_milli: row.quantity_granted_milli,
                unit: row.unit,
                valid_from: day_number(row.valid_from),
                valid_until: day_number(row.valid_until),
                revoked: row.revoked,
                replaced_by: row.replaced_by,
                revocation_reason: row.revocation_reason,
            },
            request_id: row.request_id,
            issued_at: row.issued_at,
        })
    }
}

const COLUMNS: &str = "id, request_id, kind, issuing_house, holder, subject, hs_code, price_currency, price_amount, \
     origin_country, quantity_granted_milli, unit, valid_from, valid_until, revoked, replaced_by, revocation_reason, issued_at";

/// What to look rulings up by.
#[derive(Debug, Clone, Default)]
pub struct RulingFilter {
    pub holder: Option<String>,
    pub kind: Option<RulingKind>,
    pub hs_code: Option<String>,
    /// Rulings with an id after this one (page token).
    pub after: Option<String>,
    pub limit: i64,
}

#[derive(Debug, Clone)]
pub struct RulingRepository {
    database: customs_common::db::Database,
}

impl RulingRepository {
    pub fn new(database: customs_common::db::Database) -> Self {
        Self { database }
    }

    /// Inserts a ruling unless its request id was seen, revoking and linking the ruling
    /// it replaces in the same transaction. Returns the stored one and whether it is new.
    pub async fn insert(
        &self,
        ruling: &StoredRuling,
        replaces: Option<&str>,
    ) -> Result<(StoredRuling, bool)> {
        let record = &ruling.record;
        let (valid_from, valid_until) = (
            date_of_day(record.valid_from)?,
            date_of_day(record.valid_until)?,
        );
        let inserted = on_pool!(&self.database, pool => {
            let mut tx = pool.begin().await?;
            let inserted = sqlx::query(
                "INSERT INTO rulings (id, request_id, kind, issuing_house, holder, subject, hs_code, price_currency,
                     price_amount, origin_country, quantity_granted_milli, unit, valid_from, valid_until, revoked,
                     replaced_by, revocation_reason, issued_at)
                 VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14, $15, $16, $17, $18)
                 ON CONFLICT (request_id) DO NOTHING",
            )
            .bind(&record.id)
            .bind(&ruling.request_id)
            .bind(record.kind.as_str())
            .bind(&record.issuing_house)
            .bind(&record.holder)
            .bind(&record.subject)
            .bind(&record.hs_code)
            .bind(record.unit_price.as_ref().map(|(currency, _)| currency.clone()))
            .bind(record.unit_price.as_ref().map(|(_, amount)| amount.to_string()))
            .bind(&record.origin_country)
            .bind(record.quantity_granted_milli)
            .bind(&record.unit)
            .bind(valid_from)
            .bind(valid_until)
            .bind(record.revoked)
            .bind(&record.replaced_by)
            .bind(&record.revocation_reason)
            .bind(ruling.issued_at)
            .execute(&mut *tx)
            .await?
            .rows_affected()
                == 1;
            if inserted && let Some(replaced) = replaces {
                sqlx::query(
                    "UPDATE rulings SET revoked = TRUE, replaced_by = $1,
                         revocation_reason = COALESCE(revocation_reason, 'replaced by ' || $1)
                     WHERE id = $2",
                )
                .bind(&record.id)
                .bind(replaced)
                .execute(&mut *tx)
                .await?;
            }
            tx.commit().await?;
            inserted
        });
        let stored = self
            .find_by_request_id(&ruling.request_id)
            .await?
            .ok_or_else(|| {
                Error::internal(anyhow::anyhow!(
                    "ruling for request {} vanished",
                    ruling.request_id
                ))
            })?;
        Ok((stored, inserted))
    }

    async fn find_by_request_id(&self, request_id: &str) -> Result<Option<StoredRuling>> {
        let sql = sqlx::AssertSqlSafe(format!(
            "SELECT {COLUMNS} FROM rulings WHERE request_id = $1"
        ));
        let row: Option<RulingRow> = on_pool!(&self.database, pool => {
            sqlx::query_as(sql).bind(request_id).fetch_optional(pool).await?
        });
        row.map(StoredRuling::try_from).transpose()
    }

    pub async fn get(&self, id: &str) -> Result<Option<StoredRuling>> {
        let sql = sqlx::AssertSqlSafe(format!("SELECT {COLUMNS} FROM rulings WHERE id = $1"));
        let row: Option<RulingRow> = on_pool!(&self.database, pool => {
            sqlx::query_as(sql).bind(id).fetch_optional(pool).await?
        });
        row.map(StoredRuling::try_from).transpose()
    }

    pub async fn find(&self, filter: &RulingFilter) -> Result<Vec<StoredRuling>> {
        let sql = sqlx::AssertSqlSafe(format!(
            "SELECT {COLUMNS} FROM rulings
             WHERE ($1 IS NULL OR holder = $1) AND ($2 IS NULL OR kind = $2)
               AND ($3 IS NULL OR hs_code = $3) AND ($4 IS NULL OR id > $4)
             ORDER BY id LIMIT $5"
        ));
        let rows: Vec<RulingRow> = on_pool!(&self.database, pool => {
            sqlx::query_as(sql)
                .bind(&filter.holder)
                .bind(filter.kind.map(RulingKind::as_str))
                .bind(&filter.hs_code)
                .bind(&filter.after)
                .bind(filter.limit)
                .fetch_all(pool)
                .await?
        });
        rows.into_iter().map(StoredRuling::try_from).collect()
    }

    /// Revokes a ruling; `false` when it does not exist.
    pub async fn revoke(&self, id: &str, reason: &str) -> Result<bool> {
        let updated = on_pool!(&self.database, pool => {
            sqlx::query("UPDATE rulings SET revoked = TRUE, revocation_reason = $1 WHERE id = $2")
                .bind(reason)
                .bind(id)
                .execute(pool)
                .await?
                .rows_affected()
        });
        Ok(updated == 1)
    }

    /// Records a draw-down, as the shared store made it: once per declaration
    /// (`EarlierDraw::Keep`), or in place of the declaration's earlier draw
    /// (`EarlierDraw::Replace`, or as its first). `false` when it was recorded so
    /// already (a retry).
    pub async fn record_draw(
        &self,
        id: &str,
        draw: &StoredDraw,
        house_code: &str,
        at: OffsetDateTime,
        earlier: EarlierDraw,
    ) -> Result<bool> {
        let on_conflict = match earlier {
            EarlierDraw::Keep => "DO NOTHING",
            EarlierDraw::Replace => {
                "DO UPDATE SET quantity_milli = excluded.quantity_milli,
                     house_code = excluded.house_code, recorded_at = excluded.recorded_at
                 WHERE licence_draws.quantity_milli <> excluded.quantity_milli"
            }
        };
        let sql = sqlx::AssertSqlSafe(format!(
            "INSERT INTO licence_draws (ruling_id, declaration_number, quantity_milli, house_code, recorded_at)
             VALUES ($1, $2, $3, $4, $5) ON CONFLICT (ruling_id, declaration_number) {on_conflict}"
        ));
        let written = on_pool!(&self.database, pool => {
            sqlx::query(sql)
                .bind(id)
                .bind(&draw.declaration_number)
                .bind(draw.quantity_milli)
                .bind(house_code)
                .bind(at)
                .execute(pool)
                .await?
                .rows_affected()
        });
        Ok(written == 1)
    }

    /// What `declaration_number` drew of licence `id`, in thousandths; `None` when
    /// it drew nothing.
    pub async fn draw_of(&self, id: &str, declaration_number: &str) -> Result<Option<i64>> {
        Ok(on_pool!(&self.database, pool => {
            sqlx::query_scalar(
                "SELECT quantity_milli FROM licence_draws WHERE ruling_id = $1 AND declaration_number = $2",
            )
            .bind(id)
            .bind(declaration_number)
            .fetch_optional(pool)
            .await?
        }))
    }

    /// Forgets a draw given back; `false` when there was none.
    pub async fn delete_draw(&self, id: &str, declaration_number: &str) -> Result<bool> {
        let deleted = on_pool!(&self.database, pool => {
            sqlx::query("DELETE FROM licence_draws WHERE ruling_id = $1 AND declaration_number = $2")
                .bind(id)
                .bind(declaration_number)
                .execute(pool)
                .await?
                .rows_affected()
        });
        Ok(deleted == 1)
    }

    pub async fn draws(&self, id: &str) -> Result<Vec<StoredDraw>> {
        let rows: Vec<(String, i64)> = on_pool!(&self.database, pool => {
            sqlx::query_as(
                "SELECT declaration_number, quantity_milli FROM licence_draws WHERE ruling_id = $1
                 ORDER BY recorded_at, declaration_number",
            )
            .bind(id)
            .fetch_all(pool)
            .await?
        });
        Ok(rows
            .into_iter()
            .map(|(declaration_number, quantity_milli)| StoredDraw {
                declaration_number,
                quantity_milli,
            })
            .collect())
    }
}
