//! Transits 转关 and their steps. A step moves the transit only from the state it
//! needs, and is written with its record (and the hold unsealing raises) in one
//! transaction, so two officers taking the same step at once move it once.

use customs_common::{Result, db::Database, on_pool, on_reader, outbox::Encoded};
use time::OffsetDateTime;

use super::operations::{HoldRecord, insert_hold, insert_jobs};
use crate::outbox::Job;

#[derive(Debug, Clone, PartialEq, Eq, sqlx::FromRow)]
pub struct TransitRecord {
    pub declaration_number: String,
    pub state: String,
    pub departure_house: String,
    pub destination_house: String,
    pub vehicle_plate: String,
    /// JSON array of the seals put on at departure.
    pub seal_numbers: String,
    /// The smart lock and tracker fitted with the seals ('' for none).
    pub lock_id: String,
    pub tracker_id: String,
}

const TRANSIT_COLUMNS: &str = "declaration_number, state, departure_house, destination_house, vehicle_plate, \
     seal_numbers, lock_id, tracker_id";

#[derive(Debug, Clone, PartialEq, Eq, sqlx::FromRow)]
pub struct TransitStepRecord {
    pub state: String,
    pub actor: String,
    pub house_code: String,
    pub at: OffsetDateTime,
    pub note: String,
    /// The client's request id ('' for none).
    pub request_id: String,
}

/// A step to take: from which state, to which, and what it records.
#[derive(Debug)]
pub struct Advance<'a> {
    pub from: &'a str,
    pub step: &'a TransitStepRecord,
    /// The seals put on (JSON array), when the step puts them on.
    pub seal_numbers: Option<&'a str>,
    /// The lock and tracker fitted with them, when the step puts seals on.
    pub devices: Option<(&'a str, &'a str)>,
    /// The hold the step raises.
    pub hold: Option<&'a HoldRecord>,
    /// The step noted on the declaration's timeline (a hand-off, written with it).
    pub note: &'a Job,
}

#[derive(Debug, Clone)]
pub struct TransitRepository {
    database: Database,
}

/// Appends a step after the transit's last one, in the transaction `$tx`.
macro_rules! insert_step {
    ($tx:expr, $number:expr, $step:expr) => {
        sqlx::query(
            "INSERT INTO transit_steps (declaration_number, seq, state, actor, house_code, at, note, request_id)
             SELECT $1, COALESCE(MAX(seq), 0) + 1, $2, $3, $4, $5, $6, $7 FROM transit_steps WHERE declaration_number = $1",
        )
        .bind($number)
        .bind(&$step.state)
        .bind(&$step.actor)
        .bind(&$step.house_code)
        .bind($step.at)
        .bind(&$step.note)
        .bind(&$step.request_id)
        .execute(&mut *$tx)
        .await?
    };
}

impl TransitRepository {
    pub fn new(database: Database) -> Self {
        Self { database }
    }

    /// The transit of a declaration and its steps, oldest first.
    pub async fn get(
        &self,
        number: &str,
    ) -> Result<Option<(TransitRecord, Vec<TransitStepRecord>)>> {
        Ok(on_reader!(&self.database, pool => {
            let transit: Option<TransitRecord> = sqlx::query_as(sqlx::AssertSqlSafe(format!(
                "SELECT {TRANSIT_COLUMNS} FROM transits WHERE declaration_number = $1"
            )))
            .bind(number)
            .fetch_optional(pool)
            .await?;
            match transit {
                None => None,
                Some(transit) => {
                    let steps = sqlx::query_as(
                        "SELECT state, actor, house_code, at, note, request_id FROM transit_steps
                         WHERE declaration_number = $1 ORDER BY seq",
                    )
                    .bind(number)
                    .fetch_all(pool)
                    .await?;
                    Some((transit, steps))
                }
            }
        }))
    }

    /// The sealed transit of a declaration that the lock or tracker `device` monitors.
    pub async fn sealed_with_device(
        &self,
        number: &str,
        device: &str,
    ) -> Result<Option<TransitRecord>> {
        let sql = sqlx::AssertSqlSafe(format!(
            "SELECT {TRANSIT_COLUMNS} FROM transits
             WHERE declaration_number = $1 AND state = 'SEALED' AND (lock_id = $2 OR tracker_id = $2) AND $2 <> ''"
        ));
        Ok(on_reader!(&self.database, pool => {
            sqlx::query_as(sql).bind(number).bind(device).fetch_optional(pool).await?
        }))
    }

    /// The transit's state alone.
    pub async fn state(&self, number: &str) -> Result<Option<String>> {
        Ok(on_reader!(&self.database, pool => {
            sqlx::query_scalar("SELECT state FROM transits WHERE declaration_number = $1")
                .bind(number)
                .fetch_optional(pool)
                .await?
        }))
    }

    /// Declares a transit, or declares a refused one again; `false` when the
    /// declaration has a transit that is not refused.
    /// `note` is the step noted on the declaration's timeline (a hand-off, written with
    /// it).
    pub async fn declare(
        &self,
        transit: &TransitRecord,
        step: &TransitStepRecord,
        note: &Job,
    ) -> Result<bool> {
        let note = Encoded::of(note)?;
        Ok(on_pool!(&self.database, pool => {
            let mut tx = pool.begin().await?;
            let declared = sqlx::query(
                "INSERT INTO transits (declaration_number, state, departure_house, destination_house, vehicle_plate, seal_numbers)
                 VALUES ($1, $2, $3, $4, $5, '[]')
                 ON CONFLICT (declaration_number) DO UPDATE SET state = excluded.state,
                     departure_house = excluded.departure_house, destination_house = excluded.destination_house,
                     vehicle_plate = excluded.vehicle_plate, seal_numbers = '[]', lock_id = '', tracker_id = ''
                 WHERE transits.state = 'REFUSED'",
            )
            .bind(&transit.declaration_number)
            .bind(&transit.state)
            .bind(&transit.departure_house)
            .bind(&transit.destination_house)
            .bind(&transit.vehicle_plate)
            .execute(&mut *tx)
            .await?
            .rows_affected()
                == 1;
            if declared {
                insert_step!(tx, &transit.declaration_number, step);
                insert_jobs!(tx, [&note]);
                tx.commit().await?;
            } else {
                tx.rollback().await?;
            }
            declared
        }))
    }

    /// Takes a step; `false` when the transit is not (or no longer) in `advance.from`.
    pub async fn advance(&self, number: &str, advance: &Advance<'_>) -> Result<bool> {
        let note = Encoded::of(advance.note)?;
        let postgres = self.database.is_postgres();
        Ok(on_pool!(&self.database, pool => {
            let mut tx = pool.begin().await?;
            let moved = sqlx::query(
                "UPDATE transits SET state = $1, seal_numbers = COALESCE($2, seal_numbers),
                     lock_id = COALESCE($5, lock_id), tracker_id = COALESCE($6, tracker_id)
                 WHERE declaration_number = $3 AND state = $4",
            )
            .bind(&advance.step.state)
            .bind(advance.seal_numbers)
            .bind(number)
            .bind(advance.from)
            .bind(advance.devices.map(|(lock, _)| lock))
            .bind(advance.devices.map(|(_, tracker)| tracker))
            .execute(&mut *tx)
            .await?
            .rows_affected()
                == 1;
            if !moved {
                tx.rollback().await?;
                return Ok(false);
            }
            insert_step!(tx, number, advance.step);
            if let Some(hold) = advance.hold {
                insert_hold!(tx, postgres, hold);
            }
            insert_jobs!(tx, [&note]);
            tx.commit().await?;
            true
        }))
    }
}
