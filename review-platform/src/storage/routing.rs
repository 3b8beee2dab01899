//! Versions of the routing table.

use customs_common::{Error, Result, db::Database, on_pool};
use time::{Date, OffsetDateTime};

use crate::domain::routing::{ChapterRange, RoutingTable};

#[derive(Debug, Clone)]
pub struct PublishedTable {
    pub table: RoutingTable,
    pub published_at: OffsetDateTime,
    pub published_by: String,
}

#[derive(Debug, Clone)]
pub struct RoutingRepository {
    database: Database,
}

type Row = (i64, Date, String, OffsetDateTime, String);

fn published(row: Row) -> Result<PublishedTable> {
    let (version, effective_from, ranges, published_at, published_by) = row;
    let ranges: Vec<ChapterRange> = serde_json::from_str(&ranges)
        .map_err(|e| Error::internal(anyhow::anyhow!("routing table {version} is corrupt: {e}")))?;
    Ok(PublishedTable {
        table: RoutingTable::new(version, effective_from, ranges)?,
        published_at,
        published_by,
    })
}

impl RoutingRepository {
    pub fn new(database: Database) -> Self {
        Self { database }
    }

    /// Stores version 1 (the configured table) unless a table exists.
    pub async fn seed(&self, effective_from: Date, ranges: &[ChapterRange]) -> Result<()> {
        let ranges =
            serde_json::to_string(ranges).map_err(|e| Error::internal(anyhow::anyhow!(e)))?;
        on_pool!(&self.database, pool => {
            sqlx::query(
                "INSERT INTO routing_tables (version, effective_from, ranges, published_at, published_by)
                 VALUES (1, $1, $2, $3, 'configuration') ON CONFLICT (version) DO NOTHING",
            )
            .bind(effective_from)
            .bind(ranges)
            .bind(OffsetDateTime::now_utc())
            .execute(pool)
            .await?;
        });
        Ok(())
    }

    /// Publishes the next version.
    pub async fn publish(
        &self,
        effective_from: Date,
        ranges: &[ChapterRange],
        by: &str,
    ) -> Result<PublishedTable> {
        let json =
            serde_json::to_string(ranges).map_err(|e| Error::internal(anyhow::anyhow!(e)))?;
        for _ in 0..5 {
            let inserted: Option<Row> = on_pool!(&self.database, pool => {
                sqlx::query_as(
                    "INSERT INTO routing_tables (version, effective_from, ranges, published_at, published_by)
                     SELECT COALESCE(MAX(version), 0) + 1, $1, $2, $3, $4 FROM routing_tables WHERE TRUE
                     ON CONFLICT (version) DO NOTHING
                     RETURNING version, effective_from, ranges, published_at, published_by",
                )
                .bind(effective_from)
                .bind(&json)
                .bind(OffsetDateTime::now_utc())
                .bind(by)
                .fetch_optional(pool)
                .await?
            });
            if let Some(row) = inserted {
                return published(row);
            }
        }
        Err(Error::unavailable(
            "ROUTING_TABLE_BUSY",
            "another table is being published; retry",
        ))
    }

    /// The table in force on `day`: the latest version whose effective date has come.
    pub async fn in_force(&self, day: Date) -> Result<Option<PublishedTable>> {
        let row: Option<Row> = on_pool!(&self.database, pool => {
            sqlx::query_as(
                "SELECT version, effective_from, ranges, published_at, published_by FROM routing_tables
                 WHERE effective_from <= $1 ORDER BY effective_from DESC, version DESC LIMIT 1",
            )
            .bind(day)
            .fetch_optional(pool)
            .await?
        });
        row.map(published).transpose()
    }
}
