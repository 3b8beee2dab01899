//! Tax bills, inspections, transport events, holds, release records and gate
//! decisions. Every write that moves a declaration commits its hand-offs with it.

use std::collections::HashMap;

use customs_common::{
    Error, Result,
    db::{Database, OneStep, Param, placeholders, rusqlite::ToSql},
    on_pool, on_reader,
    outbox::Encoded,
};
use time::{Date, OffsetDateTime};

use crate::{
    domain::{gate::Exit, guarantee::HolderRestriction, transport::HoldReason},
    outbox::Job,
};

/// Writes a hand-off in a repository's transaction (see `customs_common::insert_jobs!`).
pub(crate) const INSERT_JOB: &str = "INSERT INTO field_outbox (kind, job_key, payload, created_at, next_attempt_at) VALUES ($1, $2, $3, $4, $5)";

macro_rules! insert_jobs {
    ($tx:expr, $jobs:expr) => {
        customs_common::insert_jobs!(
            $tx,
            $crate::storage::operations::INSERT_JOB,
            $jobs,
            time::OffsetDateTime::now_utc()
        )
    };
}
pub(crate) use insert_jobs;

/// Raising a hold on a declaration and recording its exit wait for each other, on
/// PostgreSQL, through a transaction-scoped advisory lock keyed by the declaration
/// number (`declaration_lock`). A gate's PASS checks that no hold is open inside its
/// transaction, and under read committed a hold whose transaction commits after that
/// check's statement began would not be seen: with the lock taken first, each sees the
/// other committed. On SQLite the one writer connection runs one transaction at a time
/// already.
///
/// The lock's key: FNV-1a of the declaration number, the same in every replica.
pub(crate) fn declaration_lock(number: &str) -> i64 {
    let hash = number
        .bytes()
        .fold(0xcbf2_9ce4_8422_2325_u64, |hash, byte| {
            (hash ^ u64::from(byte)).wrapping_mul(0x0100_0000_01b3)
        });
    i64::from_ne_bytes(hash.to_ne_bytes())
}

/// PostgreSQL's `BEGIN` and the locks of the declarations `numbers` (in one order, so
/// that two transactions cannot wait for each other) in one round trip; `None` without
/// a declaration. (SQLite has one writer, and takes no such locks.)
fn begin_locking<'a>(numbers: impl IntoIterator<Item = &'a str>) -> Option<String> {
    let mut keys: Vec<i64> = numbers.into_iter().map(declaration_lock).collect();
    keys.sort_unstable();
    keys.dedup();
    (!keys.is_empty()).then(|| {
        let locks: String = keys
            .iter()
            .map(|key| format!("; SELECT pg_advisory_xact_lock({key})"))
            .collect();
        format!("BEGIN{locks}")
    })
}

/// Raises `$hold` in the transaction `$tx`, unless one of its reason is open already
/// for the declaration; on PostgreSQL, under the declaration's lock (see
/// `declaration_lock`).
macro_rules! insert_hold {
    ($tx:expr, $postgres:expr, $hold:expr) => {{
        if $postgres {
            sqlx::query("SELECT pg_advisory_xact_lock($1)")
                .bind($crate::storage::operations::declaration_lock(
                    &$hold.declaration_number,
                ))
                .execute(&mut *$tx)
                .await?;
        }
        sqlx::query(
            "INSERT INTO holds (id, declaration_number, reason, details, raised_at, open)
             VALUES ($1, $2, $3, $4, $5, TRUE)
             ON CONFLICT (declaration_number, reason) WHERE open DO NOTHING",
        )
        .bind(&$hold.id)
        .bind(&$hold.declaration_number)
        .bind(&$hold.reason)
        .bind(&$hold.details)
        .bind($hold.raised_at)
        .execute(&mut *$tx)
        .await?
    }};
}
pub(crate) use insert_hold;

/// The condition, on a row of `$table` with a `declaration_number`, that no hold is
/// open on its declaration.
macro_rules! no_open_hold {
    ($table:literal) => {
        concat!(
            " AND NOT EXISTS (SELECT 1 FROM holds h WHERE h.open AND h.declaration_number = ",
            $table,
            ".declaration_number)"
        )
    };
}

#[derive(Debug, Clone, PartialEq, Eq, sqlx::FromRow)]
pub struct TaxBillRecord {
    pub declaration_number: String,
    pub id: String,
    pub enterprise_code: String,
    pub broker_code: String,
    pub house_code: String,
    pub tariff_version: i64,
    pub payment_method: String,
    pub state: String,
    pub guarantee_reference: String,
    /// JSON of the lines.
    pub lines: String,
    pub total_duty_fen: i64,
    pub total_vat_fen: i64,
    pub total_fen: i64,
    pub rounding: String,
    pub due_date: Option<Date>,
    pub assessed_at: OffsetDateTime,
    pub paid_at: Option<OffsetDateTime>,
    pub payment_reference: String,
}

const BILL_COLUMNS: &str = "declaration_number, id, enterprise_code, broker_code, house_code, tariff_version, payment_method, state, \
     guarantee_reference, lines, total_duty_fen, total_vat_fen, total_fen, rounding, due_date, assessed_at, paid_at, \
     payment_reference";

#[derive(Debug, Clone, PartialEq, sqlx::FromRow)]
pub struct InspectionRecord {
    pub declaration_number: String,
    pub id: String,
    pub round: i32,
    pub state: String,
    pub reason: String,
    pub ordered_by_house: String,
    pub site_kind: String,
    pub site_code: String,
    pub smart_lock: bool,
    pub vehicle_tracking: bool,
    /// JSON of the route's points.
    pub route: String,
    pub corridor_metres: f64,
    pub vehicle_plate: String,
    pub lock_id: String,
    pub tracker_id: String,
    pub discrepancy: bool,
    pub result_details: String,
    pub ordered_at: OffsetDateTime,
    pub completed_at: Option<OffsetDateTime>,
}

const INSPECTION_COLUMNS: &str = "declaration_number, id, round, state, reason, ordered_by_house, site_kind, site_code, \
     smart_lock, vehicle_tracking, route, corridor_metres, vehicle_plate, lock_id, tracker_id, discrepancy, \
     result_details, ordered_at, completed_at";

#[derive(Debug, Clone, PartialEq, sqlx::FromRow)]
pub struct EventRecord {
    pub declaration_number: String,
    pub device_id: String,
    pub kind: String,
    pub latitude: Option<f64>,
    pub longitude: Option<f64>,
    pub at_site: String,
    pub occurred_at: OffsetDateTime,
}

/// What recording a transport event did.
#[derive(Debug, Clone, PartialEq)]
pub enum RecordedEvent {
    /// Stored, with the hold it raised, if any.
    New { raised: Option<HoldRecord> },
    /// Stored already: a device resending.
    Repeat,
}

#[derive(Debug, Clone, PartialEq, Eq, sqlx::FromRow)]
pub struct HoldRecord {
    pub id: String,
    pub declaration_number: String,
    pub reason: String,
    pub details: String,
    pub raised_at: OffsetDateTime,
    pub open: bool,
    pub lifted_at: Option<OffsetDateTime>,
    pub lifted_by: String,
    pub lift_reason: String,
}

#[derive(Debug, Clone, PartialEq, Eq, sqlx::FromRow)]
pub struct ReleaseRecord {
    pub declaration_number: String,
    pub port_code: String,
    pub integrated_mode: bool,
    pub released_at: OffsetDateTime,
    pub exited_at: Option<OffsetDateTime>,
    pub exit_gate: String,
    /// The vehicle the goods left on (its last container's).
    pub exit_vehicle: String,
}

/// A release record with its containers and open holds, as the gate needs it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct GateFacts {
    pub release: ReleaseRecord,
    pub containers: Vec<String>,
    /// Those of its containers that have left.
    pub exited_containers: Vec<String>,
    /// The reasons of the holds open on it (a hold stored with a reason this build
    /// does not know is left out).
    pub open_holds: Vec<HoldReason>,
}

#[derive(Debug, Clone)]
pub struct OperationsRepository {
    database: Database,
}

impl OperationsRepository {
    pub fn new(database: Database) -> Self {
        Self { database }
    }

    // Tax bills.

    /// Stores a bill unless the declaration has one; returns the stored bill.
    pub async fn insert_bill(
        &self,
        bill: &TaxBillRecord,
        jobs: &[Job],
    ) -> Result<(TaxBillRecord, bool)> {
        let jobs = Encoded::all(jobs)?;
        let inserted = on_pool!(&self.database, pool => {
            let mut tx = pool.begin().await?;
            let inserted = sqlx::query(
                "INSERT INTO tax_bills (declaration_number, id, enterprise_code, house_code, tariff_version,
                     payment_method, state, guarantee_reference, lines, total_duty_fen, total_vat_fen, total_fen,
                     rounding, due_date, assessed_at, paid_at, payment_reference, broker_code)
                 VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14, $15, $16, $17, $18)
                 ON CONFLICT (declaration_number) DO NOTHING",
            )
            .bind(&bill.declaration_number)
            .bind(&bill.id)
            .bind(&bill.enterprise_code)
            .bind(&bill.house_code)
            .bind(bill.tariff_version)
            .bind(&bill.payment_method)
            .bind(&bill.state)
            .bind(&bill.guarantee_reference)
            .bind(&bill.lines)
            .bind(bill.total_duty_fen)
            .bind(bill.total_vat_fen)
            .bind(bill.total_fen)
            .bind(&bill.rounding)
            .bind(bill.due_date)
            .bind(bill.assessed_at)
            .bind(bill.paid_at)
            .bind(&bill.payment_reference)
            .bind(&bill.broker_code)
            .execute(&mut *tx)
            .await?
            .rows_affected()
                == 1;
            if inserted {
                insert_jobs!(tx, &jobs);
            }
            tx.commit().await?;
            inserted
        });
        let stored = self.bill(&bill.declaration_number).await?.ok_or_else(|| {
            Error::internal(anyhow::anyhow!(
                "tax bill of {} vanished",
                bill.declaration_number
            ))
        })?;
        Ok((stored, inserted))
    }

    pub async fn bill(&self, number: &str) -> Result<Option<TaxBillRecord>> {
        let sql = sqlx::AssertSqlSafe(format!(
            "SELECT {BILL_COLUMNS} FROM tax_bills WHERE declaration_number = $1"
        ));
        Ok(on_reader!(&self.database, pool => {
            sqlx::query_as(sql).bind(number).fetch_optional(pool).await?
        }))
    }

    /// Marks a bill paid; `false` when it was not in `from` (paid already, say).
    pub async fn pay(
        &self,
        number: &str,
        from: &str,
        reference: &str,
        jobs: &[Job],
    ) -> Result<bool> {
        let jobs = Encoded::all(jobs)?;
        Ok(on_pool!(&self.database, pool => {
            let mut tx = pool.begin().await?;
            let paid = sqlx::query(
                "UPDATE tax_bills SET state = 'PAID', paid_at = $1, payment_reference = $2
                 WHERE declaration_number = $3 AND state = $4",
            )
            .bind(OffsetDateTime::now_utc())
            .bind(reference)
            .bind(number)
            .bind(from)
            .execute(&mut *tx)
            .await?
            .rows_affected()
                == 1;
            if paid {
                insert_jobs!(tx, &jobs);
            }
            tx.commit().await?;
            paid
        }))
    }

    /// Holders with a summary-payment bill unpaid after its due date.
    pub async fn holders_in_arrears(&self, today: Date) -> Result<Vec<String>> {
        Ok(on_reader!(&self.database, pool => {
            sqlx::query_scalar(
                "SELECT DISTINCT enterprise_code FROM tax_bills WHERE state = 'SECURED' AND due_date < $1",
            )
            .bind(today)
            .fetch_all(pool)
            .await?
        }))
    }

    /// Bars `holder` from summary payment for arrears if, as this runs, a bill of
    /// theirs is still unpaid past its due date (before `today`); `true` when this
    /// barred them (they were not barred for arrears already, with this note).
    /// A watch that listed the holder before the bill was paid sets nothing: on
    /// PostgreSQL the check waits for a payment under way (the bill's row lock) and
    /// sees its outcome, and SQLite runs one write at a time.
    pub async fn bar_for_arrears(&self, holder: &str, today: Date, note: &str) -> Result<bool> {
        let lock = match &self.database {
            Database::Postgres(_) => "FOR UPDATE",
            Database::Sqlite(_) => "",
        };
        let sql = sqlx::AssertSqlSafe(format!(
            "INSERT INTO holder_restrictions (holder, reason, note, since)
             SELECT $1, $2, $3, $4
             WHERE EXISTS (SELECT 1 FROM tax_bills
                           WHERE enterprise_code = $1 AND state = 'SECURED' AND due_date < $5 {lock})
             ON CONFLICT (holder, reason) DO UPDATE SET note = excluded.note
                 WHERE holder_restrictions.note <> excluded.note"
        ));
        Ok(on_pool!(&self.database, pool => {
            sqlx::query(sql)
                .bind(holder)
                .bind(HolderRestriction::Arrears.as_str())
                .bind(note)
                .bind(OffsetDateTime::now_utc())
                .bind(today)
                .execute(pool)
                .await?
                .rows_affected()
                > 0
        }))
    }

    /// Lifts `holder`'s arrears bar unless a bill of theirs is still overdue; `true`
    /// when one was lifted.
    pub async fn lift_arrears(&self, holder: &str, today: Date) -> Result<bool> {
        Ok(on_pool!(&self.database, pool => {
            sqlx::query(
                "DELETE FROM holder_restrictions WHERE holder = $1 AND reason = $2
                   AND NOT EXISTS (SELECT 1 FROM tax_bills
                                   WHERE enterprise_code = $1 AND state = 'SECURED' AND due_date < $3)",
            )
            .bind(holder)
            .bind(HolderRestriction::Arrears.as_str())
            .bind(today)
            .execute(pool)
            .await?
            .rows_affected()
                > 0
        }))
    }

    // Inspections.

    pub async fn inspection(&self, number: &str) -> Result<Option<InspectionRecord>> {
        let sql = sqlx::AssertSqlSafe(format!(
            "SELECT {INSPECTION_COLUMNS} FROM inspections WHERE declaration_number = $1"
        ));
        Ok(on_reader!(&self.database, pool => {
            sqlx::query_as(sql).bind(number).fetch_optional(pool).await?
        }))
    }

    /// Orders an inspection, or a new round after one that found a discrepancy;
    /// `false` when one is already ordered or under way.
    pub async fn order_inspection(&self, record: &InspectionRecord, jobs: &[Job]) -> Result<bool> {
        let jobs = Encoded::all(jobs)?;
        Ok(on_pool!(&self.database, pool => {
            let mut tx = pool.begin().await?;
            let ordered = sqlx::query(
                "INSERT INTO inspections (declaration_number, id, round, state, reason, ordered_by_house, ordered_at)
                 VALUES ($1, $2, 1, 'ORDERED', $3, $4, $5)
                 ON CONFLICT (declaration_number) DO UPDATE SET
                     round = inspections.round + 1, state = 'ORDERED', reason = excluded.reason,
                     ordered_by_house = excluded.ordered_by_house, ordered_at = excluded.ordered_at,
                     site_kind = '', site_code = '', route = '[]', discrepancy = FALSE, result_details = '',
                     completed_at = NULL
                 WHERE inspections.state = 'COMPLETED' AND inspections.discrepancy",
            )
            .bind(&record.declaration_number)
            .bind(&record.id)
            .bind(&record.reason)
            .bind(&record.ordered_by_house)
            .bind(record.ordered_at)
            .execute(&mut *tx)
            .await?
            .rows_affected()
                == 1;
            if ordered {
                insert_jobs!(tx, &jobs);
            }
            tx.commit().await?;
            ordered
        }))
    }

    /// Records the chosen site and monitoring; `false` unless the inspection was ORDERED.
    pub async fn choose_site(&self, record: &InspectionRecord) -> Result<bool> {
        Ok(on_pool!(&self.database, pool => {
            sqlx::query(
                "UPDATE inspections SET state = $1, site_kind = $2, site_code = $3, smart_lock = $4,
                     vehicle_tracking = $5, route = $6, corridor_metres = $7, vehicle_plate = $8, lock_id = $9,
                     tracker_id = $10
                 WHERE declaration_number = $11 AND state = 'ORDERED'",
            )
            .bind(&record.state)
            .bind(&record.site_kind)
            .bind(&record.site_code)
            .bind(record.smart_lock)
            .bind(record.vehicle_tracking)
            .bind(&record.route)
            .bind(record.corridor_metres)
            .bind(&record.vehicle_plate)
            .bind(&record.lock_id)
            .bind(&record.tracker_id)
            .bind(&record.declaration_number)
            .execute(pool)
            .await?
            .rows_affected()
                == 1
        }))
    }

    /// Records the result; `false` unless a site was chosen and it is not completed.
    pub async fn complete_inspection(
        &self,
        number: &str,
        discrepancy: bool,
        details: &str,
        jobs: &[Job],
    ) -> Result<bool> {
        let jobs = Encoded::all(jobs)?;
        Ok(on_pool!(&self.database, pool => {
            let mut tx = pool.begin().await?;
            let done = sqlx::query(
                "UPDATE inspections SET state = 'COMPLETED', discrepancy = $1, result_details = $2, completed_at = $3
                 WHERE declaration_number = $4 AND state IN ('SITE_CHOSEN', 'IN_TRANSIT')",
            )
            .bind(discrepancy)
            .bind(details)
            .bind(OffsetDateTime::now_utc())
            .bind(number)
            .execute(&mut *tx)
            .await?
            .rows_affected()
                == 1;
            if done {
                insert_jobs!(tx, &jobs);
            }
            tx.commit().await?;
            done
        }))
    }

    /// The inspection a device monitors (as its lock or its tracker).
    pub async fn inspection_of_device(
        &self,
        number: &str,
        device: &str,
    ) -> Result<Option<InspectionRecord>> {
        let sql = sqlx::AssertSqlSafe(format!(
            "SELECT {INSPECTION_COLUMNS} FROM inspections
             WHERE declaration_number = $1 AND (lock_id = $2 OR tracker_id = $2) AND $2 <> ''"
        ));
        Ok(on_reader!(&self.database, pool => {
            sqlx::query_as(sql).bind(number).bind(device).fetch_optional(pool).await?
        }))
    }

    // Transport events and holds.

    /// Stores an event and, in the same transaction, the hold it raises (unless one
    /// for that reason is open already). An event stored already (the same device,
    /// declaration, kind and time: a device resending) is not stored again and raises
    /// nothing, so a resend cannot raise again a hold an officer has lifted.
    pub async fn record_event(
        &self,
        event: &EventRecord,
        hold: Option<&HoldRecord>,
    ) -> Result<RecordedEvent> {
        let postgres = self.database.is_postgres();
        Ok(on_pool!(&self.database, pool => {
            let mut tx = pool.begin().await?;
            let stored = sqlx::query(
                "INSERT INTO transport_events (declaration_number, device_id, kind, latitude, longitude, at_site, occurred_at)
                 VALUES ($1, $2, $3, $4, $5, $6, $7)
                 ON CONFLICT (declaration_number, device_id, kind, occurred_at) DO NOTHING",
            )
            .bind(&event.declaration_number)
            .bind(&event.device_id)
            .bind(&event.kind)
            .bind(event.latitude)
            .bind(event.longitude)
            .bind(&event.at_site)
            .bind(event.occurred_at)
            .execute(&mut *tx)
            .await?
            .rows_affected()
                == 1;
            if !stored {
                tx.rollback().await?;
                return Ok(RecordedEvent::Repeat);
            }
            let mut raised = None;
            if let Some(hold) = hold {
                let inserted = insert_hold!(tx, postgres, hold).rows_affected();
                if inserted == 1 {
                    raised = Some(hold.clone());
                }
            }
            tx.commit().await?;
            RecordedEvent::New { raised }
        }))
    }

    pub async fn events(&self, number: &str) -> Result<Vec<EventRecord>> {
        Ok(on_reader!(&self.database, pool => {
            sqlx::query_as(
                "SELECT declaration_number, device_id, kind, latitude, longitude, at_site, occurred_at
                 FROM transport_events WHERE declaration_number = $1 ORDER BY id",
            )
            .bind(number)
            .fetch_all(pool)
            .await?
        }))
    }

    pub async fn holds(&self, number: &str) -> Result<Vec<HoldRecord>> {
        Ok(on_reader!(&self.database, pool => {
            sqlx::query_as(
                "SELECT id, declaration_number, reason, details, raised_at, open, lifted_at, lifted_by, lift_reason
                 FROM holds WHERE declaration_number = $1 ORDER BY raised_at, id",
            )
            .bind(number)
            .fetch_all(pool)
            .await?
        }))
    }

    /// Lifts an open hold; `None` when there is no such hold, the hold as it is now
    /// otherwise (already lifted: unchanged).
    pub async fn lift_hold(&self, id: &str, by: &str, reason: &str) -> Result<Option<HoldRecord>> {
        Ok(on_pool!(&self.database, pool => {
            sqlx::query(
                "UPDATE holds SET open = FALSE, lifted_at = $1, lifted_by = $2, lift_reason = $3 WHERE id = $4 AND open",
            )
            .bind(OffsetDateTime::now_utc())
            .bind(by)
            .bind(reason)
            .bind(id)
            .execute(pool)
            .await?;
            sqlx::query_as(
                "SELECT id, declaration_number, reason, details, raised_at, open, lifted_at, lifted_by, lift_reason
                 FROM holds WHERE id = $1",
            )
            .bind(id)
            .fetch_optional(pool)
            .await?
        }))
    }

    // Releases and the gate.

    /// Writes the release record unless it exists; `true` when new.
    pub async fn release(
        &self,
        release: &ReleaseRecord,
        containers: &[String],
        jobs: &[Job],
    ) -> Result<bool> {
        let jobs = Encoded::all(jobs)?;
        Ok(on_pool!(&self.database, pool => {
            let mut tx = pool.begin().await?;
            let inserted = sqlx::query(
                "INSERT INTO releases (declaration_number, port_code, integrated_mode, released_at)
                 VALUES ($1, $2, $3, $4) ON CONFLICT (declaration_number) DO NOTHING",
            )
            .bind(&release.declaration_number)
            .bind(&release.port_code)
            .bind(release.integrated_mode)
            .bind(release.released_at)
            .execute(&mut *tx)
            .await?
            .rows_affected()
                == 1;
            if inserted {
                for container in containers {
                    sqlx::query(
                        "INSERT INTO release_containers (declaration_number, container_number) VALUES ($1, $2)
                         ON CONFLICT DO NOTHING",
                    )
                    .bind(&release.declaration_number)
                    .bind(container)
                    .execute(&mut *tx)
                    .await?;
                }
                insert_jobs!(tx, &jobs);
            }
            tx.commit().await?;
            inserted
        }))
    }

    pub async fn release_of(&self, number: &str) -> Result<Option<GateFacts>> {
        Ok(self.gate_facts(&[number.to_owned()]).await?.remove(number))
    }

    /// Release records of the declarations with their containers and open holds, in
    /// one query: the release rows joined with their containers, then with their open
    /// holds (a hold on goods not released has no release row to join, and the gate
    /// holds those for want of a release anyway).
    pub async fn gate_facts(&self, numbers: &[String]) -> Result<HashMap<String, GateFacts>> {
        type Row = (
            String,
            String,
            bool,
            OffsetDateTime,
            Option<OffsetDateTime>,
            String,
            String,
            Option<String>,
            Option<bool>,
            Option<String>,
        );
        let list = placeholders(1, numbers.len());
        let sql = format!(
            "SELECT r.declaration_number, r.port_code, r.integrated_mode, r.released_at, r.exited_at, r.exit_gate,
                 r.exit_vehicle, c.container_number, c.exited_at IS NOT NULL, CAST(NULL AS TEXT)
             FROM releases r LEFT JOIN release_containers c ON c.declaration_number = r.declaration_number
             WHERE r.declaration_number IN ({list})
             UNION ALL
             SELECT r.declaration_number, r.port_code, r.integrated_mode, r.released_at, r.exited_at, r.exit_gate,
                 r.exit_vehicle, CAST(NULL AS TEXT), NULL, h.reason
             FROM releases r JOIN holds h ON h.declaration_number = r.declaration_number AND h.open
             WHERE r.declaration_number IN ({list})
             ORDER BY 1, 8"
        );
        // The gate's read: at once on this thread where the database allows.
        let rows: Vec<Row> = match self.database.direct_reader() {
            Some(direct) => {
                let params: Vec<&dyn ToSql> = numbers.iter().map(|n| n as &dyn ToSql).collect();
                direct.query(&sql, &params, |row| Row::try_from(row))?
            }
            None => on_reader!(&self.database, pool => {
                let mut query = sqlx::query_as(sqlx::AssertSqlSafe(sql));
                for number in numbers {
                    query = query.bind(number);
                }
                query.fetch_all(pool).await?
            }),
        };
        let mut facts: HashMap<String, GateFacts> = HashMap::with_capacity(numbers.len());
        for (
            number,
            port_code,
            integrated_mode,
            released_at,
            exited_at,
            exit_gate,
            exit_vehicle,
            container,
            container_exited,
            hold,
        ) in rows
        {
            let fact = facts.entry(number.clone()).or_insert_with(|| GateFacts {
                release: ReleaseRecord {
                    declaration_number: number,
                    port_code,
                    integrated_mode,
                    released_at,
                    exited_at,
                    exit_gate,
                    exit_vehicle,
                },
                containers: Vec::new(),
                exited_containers: Vec::new(),
                open_holds: Vec::new(),
            });
            if let Some(container) = container {
                if container_exited == Some(true) {
                    fact.exited_containers.push(container.clone());
                }
                fact.containers.push(container);
            }
            if let Some(reason) = hold.as_deref().and_then(HoldReason::parse) {
                fact.open_holds.push(reason);
            }
        }
        Ok(facts)
    }

    pub async fn gate_decision(&self, request_id: &str) -> Result<Option<String>> {
        Ok(on_reader!(&self.database, pool => {
            sqlx::query_scalar("SELECT decision FROM gate_checks WHERE request_id = $1")
                .bind(request_id)
                .fetch_optional(pool)
                .await?
        }))
    }

    /// Records a gate's decision, with the gate and the vehicle presented. For a PASS,
    /// records `exits` (through that gate, on that vehicle) in the same transaction,
    /// and only if none of those goods has left meanwhile (two gates racing: one wins,
    /// the other's transaction changes nothing and it gets `false`) and no hold is open
    /// on them (one raised since the gate read the records: likewise): each container
    /// presented, or all a declaration has left when none is, and the declaration
    /// itself once none of its containers remains, queuing its report from `reports`
    /// (the `EXITED` report of each declaration presented, by key). Returns the
    /// decision stored for the request id (the first, on a retry: then nothing of this
    /// attempt is kept) and whether the exit was recorded.
    pub async fn record_gate(
        &self,
        request_id: &str,
        gate_id: &str,
        vehicle_plate: &str,
        decision: &str,
        exits: Option<&[Exit]>,
        reports: &[Job],
    ) -> Result<(String, bool)> {
        let reports = Encoded::all(reports)?;
        let now = OffsetDateTime::now_utc();
        let pool = match &self.database {
            Database::Postgres(pool) => pool,
            // The same in one hand-off to the one-step thread.
            Database::Sqlite(sqlite) => {
                let step = gate_in_one_step(
                    request_id,
                    gate_id,
                    vehicle_plate,
                    decision,
                    exits,
                    &reports,
                    now,
                );
                if sqlite.one_step(step).await? > 0 {
                    return Ok((decision.to_owned(), true));
                }
                let stored = self.gate_decision(request_id).await?;
                return Ok((stored.unwrap_or_else(|| decision.to_owned()), false));
            }
        };
        // Each exit below is only of goods on which no hold is open, read after the
        // declarations' locks are taken.
        let locking = begin_locking(
            exits
                .into_iter()
                .flatten()
                .map(|exit| exit.declaration_number.as_str()),
        );
        // `UPDATE` of `table`'s rows still in the port, setting their exit; which
        // rows, the condition pushed next says.
        let set_exit = |table: &str| {
            let mut query = sqlx::QueryBuilder::new(format!("UPDATE {table} SET exited_at = "));
            query
                .push_bind(now)
                .push(", exit_gate = ")
                .push_bind(gate_id);
            query.push(", exit_vehicle = ").push_bind(vehicle_plate);
            query.push(" WHERE exited_at IS NULL AND ");
            query
        };
        let exited = {
            let mut tx = match &locking {
                // Integers that Rust formatted: nothing a caller sent.
                Some(statement) => {
                    pool.begin_with(sqlx::AssertSqlSafe(statement.clone()))
                        .await?
                }
                None => pool.begin().await?,
            };
            let mut exited = true;
            let mut left: Vec<String> = Vec::new();
            if let Some(exits) = exits {
                let (named, whole) = split(exits);
                // The containers on the vehicle: each leaves once.
                if !named.is_empty() {
                    let mut query = set_exit("release_containers");
                    query.push("(declaration_number, container_number) IN (VALUES ");
                    for (i, (number, container)) in named.iter().enumerate() {
                        query.push(if i == 0 { "(" } else { ", (" });
                        query
                            .push_bind(*number)
                            .push(", ")
                            .push_bind(*container)
                            .push(")");
                    }
                    query.push(")").push(no_open_hold!("release_containers"));
                    let updated = query.build().execute(&mut *tx).await?.rows_affected();
                    exited = updated == named.len() as u64;
                }
                // Declarations presented without their containers: all they have left.
                if exited && !whole.is_empty() {
                    let mut query = set_exit("release_containers");
                    query.push("declaration_number IN (");
                    let mut list = query.separated(", ");
                    for number in &whole {
                        list.push_bind(*number);
                    }
                    query.push(")").push(no_open_hold!("release_containers"));
                    query.build().execute(&mut *tx).await?;
                }
                if exited {
                    // A declaration leaves with its last container.
                    let mut query = set_exit("releases");
                    query.push(
                        "NOT EXISTS (SELECT 1 FROM release_containers c
                             WHERE c.declaration_number = releases.declaration_number AND c.exited_at IS NULL)
                           AND declaration_number IN (",
                    );
                    let mut list = query.separated(", ");
                    for exit in exits {
                        list.push_bind(exit.declaration_number.as_str());
                    }
                    query
                        .push(")")
                        .push(no_open_hold!("releases"))
                        .push(" RETURNING declaration_number");
                    left = query.build_query_scalar().fetch_all(&mut *tx).await?;
                    exited = whole.iter().all(|number| left.iter().any(|l| l == number));
                }
            }
            if exited {
                let inserted = sqlx::query(
                    "INSERT INTO gate_checks (request_id, gate_id, vehicle_plate, decision, decided_at)
                     VALUES ($1, $2, $3, $4, $5)
                     ON CONFLICT (request_id) DO NOTHING",
                )
                .bind(request_id)
                .bind(gate_id)
                .bind(vehicle_plate)
                .bind(decision)
                .bind(now)
                .execute(&mut *tx)
                .await?
                .rows_affected();
                if inserted == 1 {
                    let jobs = reports.iter().filter(|job| left.contains(&job.key));
                    insert_jobs!(tx, jobs);
                    tx.commit().await?;
                    return Ok((decision.to_owned(), exited));
                } else {
                    // A retry raced with its first attempt: keep the first.
                    tx.rollback().await?;
                    exited = false;
                }
            } else {
                tx.rollback().await?;
            }
            exited
        };
        let stored = self.gate_decision(request_id).await?;
        Ok((stored.unwrap_or_else(|| decision.to_owned()), exited))
    }
}

/// The containers named on the vehicle, by declaration, and the declarations presented
/// without any (which take all they have left).
fn split(exits: &[Exit]) -> (Vec<(&str, &str)>, Vec<&str>) {
    let named = exits
        .iter()
        .flat_map(|exit| {
            exit.containers
                .iter()
                .map(|c| (exit.declaration_number.as_str(), c.as_str()))
        })
        .collect();
    let whole = exits
        .iter()
        .filter(|exit| exit.containers.is_empty())
        .map(|exit| exit.declaration_number.as_str())
        .collect();
    (named, whole)
}

/// [`OperationsRepository::record_gate`] on SQLite, as statements for one hand-off to
/// the one-step thread (`Sqlite::one_step`); for a HOLD (no `exits`), only the
/// decision, unless one is stored for the request id. They cannot look at each other's
/// results from Rust, so the conditions under which the transaction there rolls back
/// are checked first instead, by the statement that stores the decision: no decision
/// yet for the request id, every container named still in the port, every
/// declaration presented whole still released and not gone, no hold open on any of
/// them. Each statement after it writes only if that statement stored this attempt's
/// decision (its request id at this attempt's time, to the nanosecond); the last one
/// answers whether it did, and so whether the exit was recorded. Run in a group with
/// other gates' checks, each sees what the checks before it in the group did: of two
/// trucks with the same container, the second finds it gone.
fn gate_in_one_step(
    request_id: &str,
    gate_id: &str,
    vehicle_plate: &str,
    decision: &str,
    exits: Option<&[Exit]>,
    reports: &[Encoded],
    now: OffsetDateTime,
) -> OneStep {
    let mut step = OneStep::new(
        "INSERT INTO gate_checks (request_id, gate_id, vehicle_plate, decision, decided_at) SELECT ",
    );
    let request = step.bind(request_id);
    let gate = step.bind(gate_id);
    let vehicle = step.bind(vehicle_plate);
    let at = step.bind(now);
    step.push_param(request).push(", ").push_param(gate);
    step.push(", ")
        .push_param(vehicle)
        .push(", ")
        .push_bind(decision);
    step.push(", ").push_param(at);
    step.push(" WHERE NOT EXISTS (SELECT 1 FROM gate_checks WHERE request_id = ");
    step.push_param(request).push(")");
    // Whether this attempt stored its decision: the guard of every later statement,
    // and the answer of the last.
    let stored_this_attempt = |step: &mut OneStep| {
        step.push("EXISTS (SELECT 1 FROM gate_checks WHERE request_id = ");
        step.push_param(request)
            .push(" AND decided_at = ")
            .push_param(at)
            .push(")");
    };
    if let Some(exits) = exits {
        exit_statements(
            &mut step,
            exits,
            reports,
            [gate, vehicle, at],
            stored_this_attempt,
        );
    }
    // The answer: whether this attempt's decision (and a PASS's exit) was recorded.
    step.push(";\nSELECT ");
    stored_this_attempt(&mut step);
    step
}

/// `gate_in_one_step`'s conditions of a PASS, and its writes: of each container, of
/// each declaration that leaves, of their reports.
fn exit_statements(
    step: &mut OneStep,
    exits: &[Exit],
    reports: &[Encoded],
    [gate, vehicle, at]: [Param; 3],
    stored_this_attempt: impl Fn(&mut OneStep),
) {
    let (named, whole) = split(exits);
    let named: Vec<(Param, Param)> = named
        .iter()
        .map(|(number, container)| (step.bind(*number), step.bind(*container)))
        .collect();
    let push_named = |step: &mut OneStep| {
        step.push("(declaration_number, container_number) IN (VALUES ");
        for (i, (number, container)) in named.iter().enumerate() {
            step.push(if i == 0 { "(" } else { ", (" });
            step.push_param(*number)
                .push(", ")
                .push_param(*container)
                .push(")");
        }
        step.push(")");
    };
    let presented: Vec<&str> = exits
        .iter()
        .map(|exit| exit.declaration_number.as_str())
        .collect();
    if !named.is_empty() {
        step.push(" AND (SELECT count(*) FROM release_containers WHERE exited_at IS NULL AND ");
        push_named(step);
        step.push(no_open_hold!("release_containers")).push(") = ");
        step.push_bind(named.len() as i64);
    }
    if !whole.is_empty() {
        step.push(" AND NOT EXISTS (SELECT 1 FROM (VALUES ");
        for (i, number) in whole.iter().enumerate() {
            step.push(if i == 0 { "(" } else { ", (" })
                .push_bind(*number)
                .push(")");
        }
        step.push(
            ") w WHERE NOT EXISTS (SELECT 1 FROM releases
                 WHERE releases.declaration_number = w.column1 AND exited_at IS NULL",
        );
        step.push(no_open_hold!("releases")).push("))");
    }
    let this_attempt = |step: &mut OneStep| {
        step.push(" AND ");
        stored_this_attempt(step);
    };
    let set_exit = |step: &mut OneStep, table: &str| {
        step.push(format_args!(";\nUPDATE {table} SET exited_at = "));
        step.push_param(at).push(", exit_gate = ").push_param(gate);
        step.push(", exit_vehicle = ").push_param(vehicle);
        step.push(" WHERE exited_at IS NULL AND ");
    };
    // The containers on the vehicle, then all that those presented whole have left.
    if !named.is_empty() {
        set_exit(step, "release_containers");
        push_named(step);
        this_attempt(step);
    }
    if !whole.is_empty() {
        set_exit(step, "release_containers");
        step.push("declaration_number IN (")
            .push_binds(whole.iter().copied())
            .push(")");
        this_attempt(step);
    }
    // A declaration leaves with its last container.
    set_exit(step, "releases");
    step.push(
        "NOT EXISTS (SELECT 1 FROM release_containers c
             WHERE c.declaration_number = releases.declaration_number AND c.exited_at IS NULL)
           AND declaration_number IN (",
    );
    step.push_binds(presented.iter().copied()).push(")");
    this_attempt(step);
    // The `EXITED` report of each declaration that left.
    if !reports.is_empty() {
        step.push(
            ";\nINSERT INTO field_outbox (kind, job_key, payload, created_at, next_attempt_at) SELECT * FROM (VALUES ",
        );
        let due = customs_common::outbox::now_millis();
        for (i, job) in reports.iter().enumerate() {
            step.push(if i == 0 { "(" } else { ", (" });
            step.push_bind(job.kind)
                .push(", ")
                .push_bind(job.key.as_str());
            step.push(", ")
                .push_bind(job.payload.as_str())
                .push(", ")
                .push_param(at);
            step.push(", ").push_bind(due).push(")");
        }
        step.push(") WHERE column2 IN (SELECT declaration_number FROM releases WHERE exited_at = ");
        step.push_param(at).push(" AND declaration_number IN (");
        step.push_binds(presented.iter().copied()).push("))");
        this_attempt(step);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Every replica, of every version, must key a declaration's lock alike: FNV-1a's
    /// published values.
    #[test]
    fn a_declarations_lock_key_is_fnv_1a_of_its_number() {
        assert_eq!(declaration_lock(""), 0xcbf2_9ce4_8422_2325_u64 as i64);
        assert_eq!(declaration_lock("a"), 0xaf63_dc4c_8601_ec8c_u64 as i64);
        assert_eq!(
            begin_locking(["b", "a", "a"]),
            Some(format!(
                "BEGIN; SELECT pg_advisory_xact_lock({}); SELECT pg_advisory_xact_lock({})",
                declaration_lock("a").min(declaration_lock("b")),
                declaration_lock("a").max(declaration_lock("b"))
            ))
        );
        assert_eq!(begin_locking([]), None);
    }
}
