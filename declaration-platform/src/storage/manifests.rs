//! Manifests, shared by all houses.

use customs_common::{Error, Result, db::Database, on_pool, on_reader};
use time::OffsetDateTime;

use crate::domain::manifest::Container;

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ManifestRecord {
    pub bill_of_lading: String,
    pub conveyance: String,
    pub port_code: String,
    /// `IMPORT` or `EXPORT`.
    pub direction: String,
    pub containers: Vec<Container>,
    pub arrival_time: Option<OffsetDateTime>,
    pub received_by_house: String,
    pub received_at: OffsetDateTime,
}

#[derive(sqlx::FromRow)]
struct ManifestRow {
    bill_of_lading: String,
    conveyance: String,
    port_code: String,
    direction: String,
    containers: String,
    arrival_time: Option<OffsetDateTime>,
    received_by_house: String,
    received_at: OffsetDateTime,
}

#[derive(Debug, Clone)]
pub struct ManifestRepository {
    database: Database,
}

impl ManifestRepository {
    pub fn new(database: Database) -> Self {
        Self { database }
    }

    /// Stores a manifest once: a repeat of the request returns the first; `None` when
    /// the bill of lading was already submitted by another request.
    pub async fn insert(
        &self,
        request_id: &str,
        manifest: &ManifestRecord,
    ) -> Result<Option<(ManifestRecord, bool)>> {
        let containers = serde_json::to_string(&manifest.containers)
            .map_err(|e| Error::internal(anyhow::anyhow!(e)))?;
        let inserted = on_pool!(&self.database, pool => {
            sqlx::query(
                "INSERT INTO manifests (bill_of_lading, request_id, conveyance, port_code, direction, containers,
                     arrival_time, received_by_house, received_at)
                 VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9) ON CONFLICT DO NOTHING",
            )
            .bind(&manifest.bill_of_lading)
            .bind(request_id)
            .bind(&manifest.conveyance)
            .bind(&manifest.port_code)
            .bind(&manifest.direction)
            .bind(containers)
            .bind(manifest.arrival_time)
            .bind(&manifest.received_by_house)
            .bind(manifest.received_at)
            .execute(pool)
            .await?
            .rows_affected()
                == 1
        });
        let first: Option<String> = on_pool!(&self.database, pool => {
            sqlx::query_scalar("SELECT bill_of_lading FROM manifests WHERE request_id = $1")
                .bind(request_id)
                .fetch_optional(pool)
                .await?
        });
        let Some(bill) = first else { return Ok(None) };
        let record = self
            .get(&bill)
            .await?
            .ok_or_else(|| Error::internal(anyhow::anyhow!("manifest {bill} vanished")))?;
        Ok(Some((record, inserted)))
    }

    pub async fn get(&self, bill_of_lading: &str) -> Result<Option<ManifestRecord>> {
        let row: Option<ManifestRow> = on_reader!(&self.database, pool => {
            sqlx::query_as(
                "SELECT bill_of_lading, conveyance, port_code, direction, containers, arrival_time,
                        received_by_house, received_at
                 FROM manifests WHERE bill_of_lading = $1",
            )
            .bind(bill_of_lading)
            .fetch_optional(pool)
            .await?
        });
        row.map(|row| {
            let containers = serde_json::from_str(&row.containers).map_err(|e| {
                Error::internal(anyhow::anyhow!(
                    "manifest {} has corrupt containers: {e}",
                    row.bill_of_lading
                ))
            })?;
            Ok(ManifestRecord {
                bill_of_lading: row.bill_of_lading,
                conveyance: row.conveyance,
                port_code: row.port_code,
                direction: row.direction,
                containers,
                arrival_time: row.arrival_time,
                received_by_house: row.received_by_house,
                received_at: row.received_at,
            })
        })
        .transpose()
    }
}
