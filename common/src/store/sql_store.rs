//! The shared store in the embedded SQLite database. Each decision runs in one
//! `BEGIN IMMEDIATE` transaction, which takes SQLite's write lock up front, so
//! decisions are serialised exactly as the Redis scripts are.

use sqlx::{Row, sqlite::SqliteRow};

use super::{
    Balance, DrawOutcome, EarlierDraw, GuaranteeLimits, Refusal, ReleaseOutcome, ReserveOutcome,
    ReserveRequest, StoredDraw, StoredReservation,
};
use crate::{
    db::Connections,
    error::{Error, Result},
    rulings::RulingRecord,
};

#[derive(Debug, Clone)]
pub struct SqlStore {
    pool: Connections,
}

impl SqlStore {
    /// Opens the store on `pool`, running its migrations.
    pub async fn new(pool: Connections) -> anyhow::Result<Self> {
        let mut migrator = sqlx::migrate!("./migrations/sqlite");
        migrator.dangerous_set_table_name("_sqlx_migrations_shared_store");
        migrator.run(&mut *pool.acquire().await?).await?;
        Ok(Self { pool })
    }

    pub(super) async fn load_ruling(
        &self,
        ruling: &RulingRecord,
        draws: &[StoredDraw],
    ) -> Result<bool> {
        let mut tx = self.pool.begin_with("BEGIN IMMEDIATE").await?;
        let remaining = ruling
            .quantity_granted_milli
            .map(|granted| granted - draws.iter().map(|d| d.quantity_milli).sum::<i64>());
        let inserted = sqlx::query(
            "INSERT INTO shared_ruling (id, record, revoked, remaining_milli) VALUES (?, ?, ?, ?)
             ON CONFLICT (id) DO NOTHING",
        )
        .bind(&ruling.id)
        .bind(record_json(ruling)?)
        .bind(ruling.revoked)
        .bind(remaining)
        .execute(&mut *tx)
        .await?
        .rows_affected();
        if inserted == 0 {
            return Ok(false);
        }
        for draw in draws {
            sqlx::query("INSERT INTO shared_ruling_draw (id, declaration_number, quantity_milli) VALUES (?, ?, ?)")
                .bind(&ruling.id)
                .bind(&draw.declaration_number)
                .bind(draw.quantity_milli)
                .execute(&mut *tx)
                .await?;
        }
        tx.commit().await?;
        Ok(true)
    }

    pub(super) async fn update_ruling(&self, ruling: &RulingRecord) -> Result<bool> {
        let updated = sqlx::query("UPDATE shared_ruling SET record = ?, revoked = ? WHERE id = ?")
            .bind(record_json(ruling)?)
            .bind(ruling.revoked)
            .bind(&ruling.id)
            .execute(&self.pool)
            .await?
            .rows_affected();
        Ok(updated == 1)
    }

    pub(super) async fn ruling(&self, id: &str) -> Result<Option<(RulingRecord, Option<i64>)>> {
        let row: Option<(String, Option<i64>)> =
            sqlx::query_as("SELECT record, remaining_milli FROM shared_ruling WHERE id = ?")
                .bind(id)
                .fetch_optional(&self.pool)
                .await?;
        row.map(|(record, remaining)| {
            let record: RulingRecord = serde_json::from_str(&record).map_err(|error| {
                Error::internal(anyhow::anyhow!(
                    "ruling {id} in the shared store is corrupt: {error}"
                ))
            })?;
            Ok((record, remaining))
        })
        .transpose()
    }

    pub(super) async fn draw_down(
        &self,
        id: &str,
        declaration_number: &str,
        quantity_milli: i64,
        earlier: EarlierDraw,
    ) -> Result<DrawOutcome> {
        let mut tx = self.pool.begin_with("BEGIN IMMEDIATE").await?;
        let state: Option<(bool, Option<i64>)> =
            sqlx::query_as("SELECT revoked, remaining_milli FROM shared_ruling WHERE id = ?")
                .bind(id)
                .fetch_optional(&mut *tx)
                .await?;
        let Some((revoked, remaining)) = state else {
            return Ok(DrawOutcome::NotLoaded);
        };
        let remaining = remaining.unwrap_or(0);
        let existing: Option<i64> = sqlx::query_scalar(
            "SELECT quantity_milli FROM shared_ruling_draw WHERE id = ? AND declaration_number = ?",
        )
        .bind(id)
        .bind(declaration_number)
        .fetch_optional(&mut *tx)
        .await?;
        if let Some(drawn) = existing
            && (earlier == EarlierDraw::Keep || drawn == quantity_milli)
        {
            return Ok(DrawOutcome::AlreadyDrawn {
                quantity_milli: drawn,
                remaining_milli: remaining,
            });
        }
        if revoked {
            return Ok(DrawOutcome::Revoked);
        }
        let available = remaining + existing.unwrap_or(0);
        if quantity_milli > available {
            return Ok(DrawOutcome::Insufficient {
                remaining_milli: available,
            });
        }
        sqlx::query("UPDATE shared_ruling SET remaining_milli = ? WHERE id = ?")
            .bind(available - quantity_milli)
            .bind(id)
            .execute(&mut *tx)
            .await?;
        sqlx::query(
            "INSERT INTO shared_ruling_draw (id, declaration_number, quantity_milli) VALUES (?, ?, ?)
             ON CONFLICT (id, declaration_number) DO UPDATE SET quantity_milli = excluded.quantity_milli",
        )
        .bind(id)
        .bind(declaration_number)
        .bind(quantity_milli)
        .execute(&mut *tx)
        .await?;
        tx.commit().await?;
        let remaining_milli = available - quantity_milli;
        Ok(match existing {
            Some(earlier_milli) => DrawOutcome::Replaced {
                earlier_milli,
                remaining_milli,
            },
            None => DrawOutcome::Drawn { remaining_milli },
        })
    }

    pub(super) async fn cancel_draw(
        &self,
        id: &str,
        declaration_number: &str,
        quantity_milli: i64,
    ) -> Result<bool> {
        let mut tx = self.pool.begin_with("BEGIN IMMEDIATE").await?;
        let deleted = sqlx::query(
            "DELETE FROM shared_ruling_draw WHERE id = ? AND declaration_number = ? AND quantity_milli = ?",
        )
        .bind(id)
        .bind(declaration_number)
        .bind(quantity_milli)
        .execute(&mut *tx)
        .await?
        .rows_affected();
        if deleted == 1 {
            sqlx::query(
                "UPDATE shared_ruling SET remaining_milli = remaining_milli + ? WHERE id = ?",
            )
            .bind(quantity_milli)
            .bind(id)
            .execute(&mut *tx)
            .await?;
        }
        tx.commit().await?;
        Ok(deleted == 1)
    }

    pub(super) async fn forget_ruling(&self, id: &str) -> Result<()> {
        sqlx::query("DELETE FROM shared_ruling WHERE id = ?")
            .bind(id)
            .execute(&self.pool)
            .await?;
        Ok(())
    }

    pub(super) async fn load_guarantee(
        &self,
        limits: &GuaranteeLimits,
        reservations: &[StoredReservation],
    ) -> Result<bool> {
        let mut tx = self.pool.begin_with("BEGIN IMMEDIATE").await?;
        let reserved: i64 = reservations
            .iter()
            .filter(|r| !r.released)
            .map(|r| r.amount_fen)
            .sum();
        let inserted = sqlx::query(
            "INSERT INTO shared_guarantee_state
                 (reference, holder, access_hash, amount_fen, reserved_fen, valid_from, valid_until, suspended)
             VALUES (?, ?, ?, ?, ?, ?, ?, ?)
             ON CONFLICT (reference) DO NOTHING",
        )
        .bind(&limits.reference)
        .bind(&limits.holder)
        .bind(&limits.access_code_hash)
        .bind(limits.amount_fen)
        .bind(reserved)
        .bind(limits.valid_from)
        .bind(limits.valid_until)
        .bind(limits.suspended)
        .execute(&mut *tx)
        .await?
        .rows_affected();
        if inserted == 0 {
            return Ok(false);
        }
        for reservation in reservations {
            sqlx::query(
                "INSERT INTO shared_guarantee_reservation (reference, declaration_number, amount_fen, released)
                 VALUES (?, ?, ?, ?)",
            )
            .bind(&limits.reference)
            .bind(&reservation.declaration_number)
            .bind(reservation.amount_fen)
            .bind(reservation.released)
            .execute(&mut *tx)
            .await?;
        }
        tx.commit().await?;
        Ok(true)
    }

    pub(super) async fn forget_guarantee(&self, reference: &str) -> Result<()> {
        sqlx::query("DELETE FROM shared_guarantee_state WHERE reference = ?")
            .bind(reference)
            .execute(&self.pool)
            .await?;
        Ok(())
    }

    pub(super) async fn reserve(&self, request: &ReserveRequest<'_>) -> Result<ReserveOutcome> {
        let mut tx = self.pool.begin_with("BEGIN IMMEDIATE").await?;
        let Some(state) = fetch_state(&mut tx, request.reference).await? else {
            return Ok(ReserveOutcome::NotLoaded);
        };
        if let Some((amount_fen, released)) =
            fetch_reservation(&mut tx, request.reference, request.declaration_number).await?
        {
            return Ok(if released {
                ReserveOutcome::AlreadyReleased { amount_fen }
            } else {
                ReserveOutcome::AlreadyReserved {
                    amount_fen,
                    available_fen: state.balance.available_fen(),
                }
            });
        }
        let refusal = if state.holder != request.holder {
            Some(Refusal::WrongHolder)
        } else if state.access_hash != request.access_code_hash {
            Some(Refusal::WrongAccessCode)
        } else if state.balance.suspended {
            Some(Refusal::Suspended)
        } else if request.today < state.valid_from {
            Some(Refusal::NotYetValid)
        } else if request.today > state.valid_until {
            Some(Refusal::Expired)
        } else if request.amount_fen > state.balance.available_fen() {
            Some(Refusal::InsufficientHeadroom {
                available_fen: state.balance.available_fen(),
            })
        } else {
            None
        };
        if let Some(refusal) = refusal {
            return Ok(ReserveOutcome::Refused(refusal));
        }
        sqlx::query(
            "UPDATE shared_guarantee_state SET reserved_fen = reserved_fen + ? WHERE reference = ?",
        )
        .bind(request.amount_fen)
        .bind(request.reference)
        .execute(&mut *tx)
        .await?;
        sqlx::query(
            "INSERT INTO shared_guarantee_reservation (reference, declaration_number, amount_fen) VALUES (?, ?, ?)",
        )
        .bind(request.reference)
        .bind(request.declaration_number)
        .bind(request.amount_fen)
        .execute(&mut *tx)
        .await?;
        tx.commit().await?;
        Ok(ReserveOutcome::Reserved {
            available_fen: state.balance.available_fen() - request.amount_fen,
        })
    }

    pub(super) async fn release(
        &self,
        reference: &str,
        declaration_number: &str,
    ) -> Result<ReleaseOutcome> {
        let mut tx = self.pool.begin_with("BEGIN IMMEDIATE").await?;
        let Some(state) = fetch_state(&mut tx, reference).await? else {
            return Ok(ReleaseOutcome::NotLoaded);
        };
        let Some((amount_fen, released)) =
            fetch_reservation(&mut tx, reference, declaration_number).await?
        else {
            return Ok(ReleaseOutcome::NotReserved);
        };
        if released {
            return Ok(ReleaseOutcome::AlreadyReleased {
                amount_fen,
                available_fen: state.balance.available_fen(),
            });
        }
        sqlx::query(
            "UPDATE shared_guarantee_state SET reserved_fen = reserved_fen - ? WHERE reference = ?",
        )
        .bind(amount_fen)
        .bind(reference)
        .execute(&mut *tx)
        .await?;
        sqlx::query(
            "UPDATE shared_guarantee_reservation SET released = 1 WHERE reference = ? AND declaration_number = ?",
        )
        .bind(reference)
        .bind(declaration_number)
        .execute(&mut *tx)
        .await?;
        tx.commit().await?;
        Ok(ReleaseOutcome::Released {
            amount_fen,
            available_fen: state.balance.available_fen() + amount_fen,
        })
    }

    pub(super) async fn cancel_reservation(
        &self,
        reference: &str,
        declaration_number: &str,
        amount_fen: i64,
    ) -> Result<bool> {
        let mut tx = self.pool.begin_with("BEGIN IMMEDIATE").await?;
        let deleted = sqlx::query(
            "DELETE FROM shared_guarantee_reservation
             WHERE reference = ? AND declaration_number = ? AND amount_fen = ? AND released = 0",
        )
        .bind(reference)
        .bind(declaration_number)
        .bind(amount_fen)
        .execute(&mut *tx)
        .await?
        .rows_affected();
        if deleted == 1 {
            sqlx::query("UPDATE shared_guarantee_state SET reserved_fen = reserved_fen - ? WHERE reference = ?")
                .bind(amount_fen)
                .bind(reference)
                .execute(&mut *tx)
                .await?;
        }
        tx.commit().await?;
        Ok(deleted == 1)
    }

    pub(super) async fn set_suspended(&self, reference: &str, suspended: bool) -> Result<bool> {
        let updated =
            sqlx::query("UPDATE shared_guarantee_state SET suspended = ? WHERE reference = ?")
                .bind(suspended)
                .bind(reference)
                .execute(&self.pool)
                .await?
                .rows_affected();
        Ok(updated == 1)
    }

    pub(super) async fn balance(&self, reference: &str) -> Result<Option<Balance>> {
        let mut connection = self.pool.acquire().await?;
        Ok(fetch_state(&mut connection, reference)
            .await?
            .map(|state| state.balance))
    }
}

fn record_json(ruling: &RulingRecord) -> Result<String> {
    serde_json::to_string(ruling).map_err(|error| {
        Error::internal(anyhow::anyhow!("serialising ruling {}: {error}", ruling.id))
    })
}

struct State {
    holder: String,
    access_hash: String,
    valid_from: i32,
    valid_until: i32,
    balance: Balance,
}

async fn fetch_state(
    connection: &mut sqlx::SqliteConnection,
    reference: &str,
) -> Result<Option<State>> {
    let row: Option<SqliteRow> = sqlx::query(
        "SELECT holder, access_hash, amount_fen, reserved_fen, valid_from, valid_until, suspended
         FROM shared_guarantee_state WHERE reference = ?",
    )
    .bind(reference)
    .fetch_optional(connection)
    .await?;
    let Some(row) = row else { return Ok(None) };
    Ok(Some(State {
        holder: row.try_get("holder")?,
        access_hash: row.try_get("access_hash")?,
        valid_from: row.try_get("valid_from")?,
        valid_until: row.try_get("valid_until")?,
        balance: Balance {
            amount_fen: row.try_get("amount_fen")?,
            reserved_fen: row.try_get("reserved_fen")?,
            suspended: row.try_get("suspended")?,
        },
    }))
}

async fn fetch_reservation(
    connection: &mut sqlx::SqliteConnection,
    reference: &str,
    declaration_number: &str,
) -> Result<Option<(i64, bool)>> {
    let row: Option<SqliteRow> = sqlx::query(
        "SELECT amount_fen, released FROM shared_guarantee_reservation
         WHERE reference = ? AND declaration_number = ?",
    )
    .bind(reference)
    .bind(declaration_number)
    .fetch_optional(connection)
    .await?;
    row.map(|row| Ok((row.try_get("amount_fen")?, row.try_get("released")?)))
        .transpose()
}
