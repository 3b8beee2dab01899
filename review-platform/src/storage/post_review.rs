//! Post-clearance re-review: batches, the declarations drawn into them, findings.

use customs_common::{Error, Result, db::Database, on_pool};
use time::OffsetDateTime;

use crate::storage::tasks::millis;

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DrawnItem {
    pub declaration_number: String,
    pub sub_centre: String,
    pub lane: String,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Batch {
    pub id: String,
    pub house_code: String,
    pub drawn_at: OffsetDateTime,
    pub declaration_numbers: Vec<String>,
}

#[derive(Debug, Clone, PartialEq, Eq, sqlx::FromRow)]
pub struct FindingRecord {
    pub id: String,
    pub request_id: String,
    pub batch_id: String,
    pub declaration_number: String,
    pub kind: String,
    pub description: String,
    pub extra_duty_fen: i64,
    pub sub_centre: String,
    pub recorded_at: OffsetDateTime,
    pub recorded_by: String,
}

#[derive(Debug, Clone)]
pub struct PostReviewRepository {
    database: Database,
}

impl PostReviewRepository {
    pub fn new(database: Database) -> Self {
        Self { database }
    }

    /// Which of these declarations were drawn already.
    pub async fn already_drawn(&self, numbers: &[String]) -> Result<Vec<String>> {
        let mut drawn = Vec::new();
        for chunk in numbers.chunks(500) {
            let found: Vec<String> = on_pool!(&self.database, pool => {
                let mut query = sqlx::QueryBuilder::new(
                    "SELECT declaration_number FROM post_review_items WHERE declaration_number IN (",
                );
                let mut list = query.separated(", ");
                for number in chunk {
                    list.push_bind(number.as_str());
                }
                query.push(")");
                query.build_query_scalar().fetch_all(pool).await?
            });
            drawn.extend(found);
        }
        Ok(drawn)
    }

    /// Records a batch with the items not drawn meanwhile by another caller.
    pub async fn insert_batch(
        &self,
        id: &str,
        house_code: &str,
        by: &str,
        items: &[DrawnItem],
    ) -> Result<Batch> {
        let now = OffsetDateTime::now_utc();
        let numbers = on_pool!(&self.database, pool => {
            let mut tx = pool.begin().await?;
            sqlx::query("INSERT INTO post_review_batches (id, house_code, drawn_at, drawn_by) VALUES ($1, $2, $3, $4)")
                .bind(id)
                .bind(house_code)
                .bind(now)
                .bind(by)
                .execute(&mut *tx)
                .await?;
            let mut numbers = Vec::with_capacity(items.len());
            for item in items {
                let inserted = sqlx::query(
                    "INSERT INTO post_review_items (declaration_number, batch_id, sub_centre, lane)
                     VALUES ($1, $2, $3, $4) ON CONFLICT (declaration_number) DO NOTHING",
                )
                .bind(&item.declaration_number)
                .bind(id)
                .bind(&item.sub_centre)
                .bind(&item.lane)
                .execute(&mut *tx)
                .await?
                .rows_affected();
                if inserted == 1 {
                    numbers.push(item.declaration_number.clone());
                }
            }
            tx.commit().await?;
            numbers
        });
        Ok(Batch {
            id: id.to_owned(),
            house_code: house_code.to_owned(),
            drawn_at: now,
            declaration_numbers: numbers,
        })
    }

    /// The batch's house and the drawn item, when the declaration is in the batch.
    pub async fn item(&self, batch_id: &str, number: &str) -> Result<Option<(String, DrawnItem)>> {
        let row: Option<(String, String, String)> = on_pool!(&self.database, pool => {
            sqlx::query_as(
                "SELECT b.house_code, i.sub_centre, i.lane FROM post_review_items i
                 JOIN post_review_batches b ON b.id = i.batch_id
                 WHERE i.batch_id = $1 AND i.declaration_number = $2",
            )
            .bind(batch_id)
            .bind(number)
            .fetch_optional(pool)
            .await?
        });
        Ok(row.map(|(house, sub_centre, lane)| {
            (
                house,
                DrawnItem {
                    declaration_number: number.to_owned(),
                    sub_centre,
                    lane,
                },
            )
        }))
    }

    /// Records a finding unless its request id was seen; returns the stored one.
    pub async fn insert_finding(&self, finding: &FindingRecord) -> Result<FindingRecord> {
        on_pool!(&self.database, pool => {
            sqlx::query(
                "INSERT INTO post_review_findings (id, request_id, batch_id, declaration_number, kind, description,
                     extra_duty_fen, sub_centre, recorded_ms, recorded_at, recorded_by)
                 VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11) ON CONFLICT (request_id) DO NOTHING",
            )
            .bind(&finding.id)
            .bind(&finding.request_id)
            .bind(&finding.batch_id)
            .bind(&finding.declaration_number)
            .bind(&finding.kind)
            .bind(&finding.description)
            .bind(finding.extra_duty_fen)
            .bind(&finding.sub_centre)
            .bind(millis(finding.recorded_at))
            .bind(finding.recorded_at)
            .bind(&finding.recorded_by)
            .execute(pool)
            .await?;
        });
        let stored: Option<FindingRecord> = on_pool!(&self.database, pool => {
            sqlx::query_as(
                "SELECT id, request_id, batch_id, declaration_number, kind, description, extra_duty_fen, sub_centre,
                     recorded_at, recorded_by
                 FROM post_review_findings WHERE request_id = $1",
            )
            .bind(&finding.request_id)
            .fetch_optional(pool)
            .await?
        });
        stored.ok_or_else(|| {
            Error::internal(anyhow::anyhow!("finding {} vanished", finding.request_id))
        })
    }

    /// Findings recorded in `[start, end)`.
    pub async fn findings(
        &self,
        start: OffsetDateTime,
        end: OffsetDateTime,
    ) -> Result<Vec<FindingRecord>> {
        Ok(on_pool!(&self.database, pool => {
            sqlx::query_as(
                "SELECT id, request_id, batch_id, declaration_number, kind, description, extra_duty_fen, sub_centre,
                     recorded_at, recorded_by
                 FROM post_review_findings WHERE recorded_ms >= $1 AND recorded_ms < $2",
            )
            .bind(millis(start))
            .bind(millis(end))
            .fetch_all(pool)
            .await?
        }))
    }
}
