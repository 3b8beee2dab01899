//! `customs.declaration.v1.ManifestService`.

use customs_common::{Error, auth::Caller, codes::directly_under_house};
use customs_proto::{
    convert::{instant, timestamp},
    declaration::{self as pb, manifest_service_server::ManifestService as ManifestServiceApi},
};
use time::OffsetDateTime;
use tonic::{Request, Response, Status};

use crate::{
    domain::manifest::{Container, validate_manifest},
    storage::manifests::{ManifestRecord, ManifestRepository},
};

#[derive(Debug, Clone)]
pub struct ManifestService {
    manifests: ManifestRepository,
}

impl ManifestService {
    pub fn new(manifests: ManifestRepository) -> Self {
        Self { manifests }
    }
}

fn manifest_message(record: ManifestRecord) -> pb::Manifest {
    pb::Manifest {
        bill_of_lading: record.bill_of_lading,
        conveyance: record.conveyance,
        port_code: record.port_code,
        direction: match record.direction.as_str() {
            "IMPORT" => customs_proto::common::Direction::Import,
            _ => customs_proto::common::Direction::Export,
        } as i32,
        containers: record
            .containers
            .into_iter()
            .map(|c| pb::ManifestContainer {
                container_number: c.number,
                seal_number: c.seal_number,
                gross_weight_kg: c.gross_weight_kg,
            })
            .collect(),
        arrival_time: record.arrival_time.map(timestamp),
        received_by_house: record.received_by_house,
        received_at: Some(timestamp(record.received_at)),
    }
}

#[tonic::async_trait]
impl ManifestServiceApi for ManifestService {
    async fn submit_manifest(
        &self,
        request: Request<pb::SubmitManifestRequest>,
    ) -> Result<Response<pb::Manifest>, Status> {
        let caller = Caller::of(&request)?.clone();
        let message = request.into_inner();
        if message.request_id.trim().is_empty() {
            return Err(Error::invalid(
                "request_id",
                "REQUIRED",
                "a client request id is required",
            )
            .into());
        }
        let manifest = message.manifest.unwrap_or_default();
        let containers: Vec<Container> = manifest
            .containers
            .iter()
            .map(|c| Container {
                number: c.container_number.trim().to_owned(),
                seal_number: c.seal_number.trim().to_owned(),
                gross_weight_kg: c.gross_weight_kg.trim().to_owned(),
            })
            .collect();
        let direction = manifest.direction();
        validate_manifest(
            &manifest.bill_of_lading,
            &manifest.conveyance,
            &manifest.port_code,
            direction != customs_proto::common::Direction::Unspecified,
            &containers,
        )?;
        let record = ManifestRecord {
            bill_of_lading: manifest.bill_of_lading.trim().to_owned(),
            conveyance: manifest.conveyance.trim().to_owned(),
            port_code: manifest.port_code.trim().to_owned(),
            direction: if direction == customs_proto::common::Direction::Import {
                "IMPORT"
            } else {
                "EXPORT"
            }
            .to_owned(),
            containers,
            arrival_time: manifest.arrival_time.as_ref().and_then(instant),
            received_by_house: directly_under_house(&caller.house),
            received_at: OffsetDateTime::now_utc(),
        };
        match self
            .manifests
            .insert(message.request_id.trim(), &record)
            .await?
        {
            Some((stored, created)) => {
                if created {
                    tracing::info!(bill_of_lading = %stored.bill_of_lading, house = %stored.received_by_house, containers = stored.containers.len(), "manifest received");
                }
                Ok(Response::new(manifest_message(stored)))
            }
            None => Err(Error::already_exists(
                "MANIFEST_ALREADY_SUBMITTED",
                format!(
                    "bill of lading {} was already submitted",
                    record.bill_of_lading
                ),
            )
            .into()),
        }
    }

    async fn get_manifest(
        &self,
        request: Request<pb::GetManifestRequest>,
    ) -> Result<Response<pb::Manifest>, Status> {
        let bill = request.get_ref().bill_of_lading.trim().to_owned();
        let record = self.manifests.get(&bill).await?.ok_or_else(|| {
            Error::not_found(
                "MANIFEST_NOT_FOUND",
                format!("no manifest for bill of lading {bill}"),
            )
        })?;
        Ok(Response::new(manifest_message(record)))
    }
}
