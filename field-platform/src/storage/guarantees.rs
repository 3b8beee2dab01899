//! Guarantees, their ledger of reservations and releases, and holder restrictions.

use customs_common::{Result, db::Database, store::StoredReservation};
use time::{Date, OffsetDateTime};

use crate::domain::guarantee::HolderRestriction;
use customs_common::on_pool;

#[derive(Debug, Clone, PartialEq, Eq, sqlx::FromRow)]
pub struct GuaranteeRecord {
    pub reference: String,
    pub request_id: String,
    pub bank: String,
    pub holder: String,
    pub amount_fen: i64,
    pub valid_from: Date,
    pub valid_until: Date,
    pub access_hash: String,
    pub suspended: bool,
    pub suspension_reason: String,
    pub registered_by_house: String,
    pub registered_at: OffsetDateTime,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum EntryKind {
    Reserve,
    Release,
}

impl EntryKind {
    fn as_str(self) -> &'static str {
        match self {
            Self::Reserve => "RESERVE",
            Self::Release => "RELEASE",
        }
    }
}

/// One ledger line.
#[derive(Debug, Clone, PartialEq, Eq, sqlx::FromRow)]
pub struct LedgerEntry {
    pub declaration_number: String,
    pub amount_fen: i64,
    pub house_code: String,
    pub recorded_at: OffsetDateTime,
}

#[derive(Debug, Clone)]
pub struct GuaranteeRepository {
    database: Database,
}

const GUARANTEE_COLUMNS: &str = "reference, request_id, bank, holder, amount_fen, valid_from, valid_until, \
     access_hash, suspended, suspension_reason, registered_by_house, registered_at";

impl GuaranteeRepository {
    pub fn new(database: Database) -> Self {
        Self { database }
    }

    /// Inserts a guarantee unless its request id was seen; returns the stored one
    /// and whether it was created now.
    pub async fn insert(&self, record: &GuaranteeRecord) -> Result<(GuaranteeRecord, bool)> {
        let inserted = on_pool!(&self.database, pool => {
            sqlx::query(
                "INSERT INTO guarantees (reference, request_id, bank, holder, amount_fen, valid_from, valid_until,
                     access_hash, suspended, suspension_reason, registered_by_house, registered_at)
                 VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12)
                 ON CONFLICT (request_id) DO NOTHING",
            )
            .bind(&record.reference)
            .bind(&record.request_id)
            .bind(&record.bank)
            .bind(&record.holder)
            .bind(record.amount_fen)
            .bind(record.valid_from)
            .bind(record.valid_until)
            .bind(&record.access_hash)
            .bind(record.suspended)
            .bind(&record.suspension_reason)
            .bind(&record.registered_by_house)
            .bind(record.registered_at)
            .execute(pool)
            .await?
            .rows_affected()
        });
        let stored = self
            .find_by_request_id(&record.request_id)
            .await?
            .ok_or_else(|| {
                anyhow::anyhow!("guarantee for request {} vanished", record.request_id)
            })?;
        Ok((stored, inserted == 1))
    }

    async fn find_by_request_id(&self, request_id: &str) -> Result<Option<GuaranteeRecord>> {
        let sql = sqlx::AssertSqlSafe(format!(
            "SELECT {GUARANTEE_COLUMNS} FROM guarantees WHERE request_id = $1"
        ));
        Ok(on_pool!(&self.database, pool => {
            sqlx::query_as(sql).bind(request_id).fetch_optional(pool).await?
        }))
    }

    pub async fn get(&self, reference: &str) -> Result<Option<GuaranteeRecord>> {
        let sql = sqlx::AssertSqlSafe(format!(
            "SELECT {GUARANTEE_COLUMNS} FROM guarantees WHERE reference = $1"
        ));
        Ok(on_pool!(&self.database, pool => {
            sqlx::query_as(sql).bind(reference).fetch_optional(pool).await?
        }))
    }

    /// Every guarantee's reference, for a full rebuild.
    pub async fn references(&self) -> Result<Vec<String>> {
        Ok(on_pool!(&self.database, pool => {
            sqlx::query_scalar("SELECT reference FROM guarantees ORDER BY reference").fetch_all(pool).await?
        }))
    }

    pub async fn set_suspended(
        &self,
        reference: &str,
        suspended: bool,
        reason: &str,
    ) -> Result<bool> {
        let updated = on_pool!(&self.database, pool => {
            sqlx::query("UPDATE guarantees SET suspended = $1, suspension_reason = $2 WHERE reference = $3")
                .bind(suspended)
                .bind(reason)
                .bind(reference)
                .execute(pool)
                .await?
                .rows_affected()
        });
        Ok(updated == 1)
    }

    /// Appends a ledger line; `false` when the same line was already recorded (a retry).
    pub async fn record(
        &self,
        reference: &str,
        kind: EntryKind,
        entry: &LedgerEntry,
    ) -> Result<bool> {
        let inserted = self
            .record_all(&[(reference.to_owned(), kind, entry.clone())])
            .await?;
        Ok(inserted.first().copied().unwrap_or(false))
    }

    /// Appends several ledger lines in one transaction (one commit); for each, whether
    /// it was new. Either all are written or none is.
    pub async fn record_all(
        &self,
        lines: &[(String, EntryKind, LedgerEntry)],
    ) -> Result<Vec<bool>> {
        let mut inserted = Vec::with_capacity(lines.len());
        on_pool!(&self.database, pool => {
            let mut tx = pool.begin().await?;
            for (reference, kind, entry) in lines {
                let rows = sqlx::query(
                    "INSERT INTO guarantee_ledger (reference, declaration_number, kind, amount_fen, house_code, recorded_at)
                     VALUES ($1, $2, $3, $4, $5, $6)
                     ON CONFLICT (reference, declaration_number, kind) DO NOTHING",
                )
                .bind(reference)
                .bind(&entry.declaration_number)
                .bind(kind.as_str())
                .bind(entry.amount_fen)
                .bind(&entry.house_code)
                .bind(entry.recorded_at)
                .execute(&mut *tx)
                .await?
                .rows_affected();
                inserted.push(rows == 1);
            }
            tx.commit().await?;
        });
        Ok(inserted)
    }

    pub async fn entry(
        &self,
        reference: &str,
        declaration_number: &str,
        kind: EntryKind,
    ) -> Result<Option<LedgerEntry>> {
        Ok(on_pool!(&self.database, pool => {
            sqlx::query_as(
                "SELECT declaration_number, amount_fen, house_code, recorded_at FROM guarantee_ledger
                 WHERE reference = $1 AND declaration_number = $2 AND kind = $3",
            )
            .bind(reference)
            .bind(declaration_number)
            .bind(kind.as_str())
            .fetch_optional(pool)
            .await?
        }))
    }

    /// Every reservation of a guarantee, and whether it was released: what the shared
    /// store is rebuilt from.
    pub async fn reservations(&self, reference: &str) -> Result<Vec<StoredReservation>> {
        let rows: Vec<(String, i64, bool)> = on_pool!(&self.database, pool => {
            sqlx::query_as(
                "SELECT r.declaration_number, r.amount_fen,
                        EXISTS (SELECT 1 FROM guarantee_ledger x
                                WHERE x.reference = r.reference AND x.declaration_number = r.declaration_number
                                  AND x.kind = 'RELEASE') AS released
                 FROM guarantee_ledger r
                 WHERE r.reference = $1 AND r.kind = 'RESERVE'
                 ORDER BY r.id",
            )
            .bind(reference)
            .fetch_all(pool)
            .await?
        });
        Ok(rows
            .into_iter()
            .map(
                |(declaration_number, amount_fen, released)| StoredReservation {
                    declaration_number,
                    amount_fen,
                    released,
                },
            )
            .collect())
    }

    /// The restrictions in force on a holder.
    pub async fn restrictions(&self, holder: &str) -> Result<Vec<HolderRestriction>> {
        let reasons: Vec<String> = on_pool!(&self.database, pool => {
            sqlx::query_scalar("SELECT reason FROM holder_restrictions WHERE holder = $1 ORDER BY reason DESC")
                .bind(holder)
                .fetch_all(pool)
                .await?
        });
        Ok(reasons
            .iter()
            .filter_map(|r| HolderRestriction::parse(r))
            .collect())
    }

    /// Puts a restriction in force (`active`) or lifts it.
    pub async fn set_restriction(
        &self,
        holder: &str,
        restriction: HolderRestriction,
        active: bool,
        note: &str,
    ) -> Result<()> {
        on_pool!(&self.database, pool => {
            if active {
                sqlx::query(
                    "INSERT INTO holder_restrictions (holder, reason, note, since) VALUES ($1, $2, $3, $4)
                     ON CONFLICT (holder, reason) DO UPDATE SET note = excluded.note",
                )
                .bind(holder)
                .bind(restriction.as_str())
                .bind(note)
                .bind(OffsetDateTime::now_utc())
                .execute(pool)
                .await?;
            } else {
                sqlx::query("DELETE FROM holder_restrictions WHERE holder = $1 AND reason = $2")
                    .bind(holder)
                    .bind(restriction.as_str())
                    .execute(pool)
                    .await?;
            }
        });
        Ok(())
    }
}
