//! `customs.field.v1` TransitService: transit 转关 steps (DOMAIN.md 3).

use customs_common::{Error, Violations, auth::Caller, codes::parse_declaration_number};
use customs_proto::{
    convert::timestamp,
    field::{self as pb, transit_service_server::TransitService as TransitServiceApi},
};
use tonic::{Request, Response, Status};

use super::operations::FieldService;
use crate::{
    domain::transit::{self, Step, TransitState},
    transits::{TransitView, stored_seals},
};

fn state(value: &str) -> Result<pb::TransitState, Status> {
    use TransitState::*;
    Ok(match TransitState::parse(value) {
        Some(Declared) => pb::TransitState::Declared,
        Some(Approved) => pb::TransitState::Approved,
        Some(Refused) => pb::TransitState::Refused,
        Some(Sealed) => pb::TransitState::Sealed,
        Some(Unsealed) => pb::TransitState::Unsealed,
        Some(WrittenOff) => pb::TransitState::WrittenOff,
        None => {
            return Err(Error::internal(anyhow::anyhow!("unknown transit state {value}")).into());
        }
    })
}

fn transit_message((transit, steps): TransitView) -> Result<pb::Transit, Status> {
    Ok(pb::Transit {
        seal_numbers: stored_seals(&transit)?,
        state: state(&transit.state)? as i32,
        steps: steps
            .into_iter()
            .map(|step| {
                Ok(pb::TransitStep {
                    state: state(&step.state)? as i32,
                    actor: step.actor,
                    house_code: step.house_code,
                    at: Some(timestamp(step.at)),
                    note: step.note,
                })
            })
            .collect::<Result<_, Status>>()?,
        declaration_number: transit.declaration_number,
        departure_house_code: transit.departure_house,
        destination_house_code: transit.destination_house,
        vehicle_plate: transit.vehicle_plate,
    })
}

fn number(value: &str, violations: &mut Violations) -> String {
    violations
        .keep(parse_declaration_number("declaration_number", value))
        .unwrap_or_default()
}

impl FieldService {
    /// Validates and takes an officer's step.
    async fn step(
        &self,
        caller: &Caller,
        declaration_number: &str,
        step: Step,
        seals: &[String],
        note: &str,
    ) -> Result<Response<pb::Transit>, Status> {
        let mut violations = Violations::new();
        let number = number(declaration_number, &mut violations);
        let seals = match step {
            Step::Seal => transit::parse_seals("seal_numbers", seals, true, &mut violations),
            Step::Unseal => {
                transit::parse_seals("intact_seal_numbers", seals, false, &mut violations)
            }
            _ => Vec::new(),
        };
        if step == Step::Refuse && note.trim().is_empty() {
            violations.push("reason", "REQUIRED", "why the transit is refused");
        }
        violations.into_result()?;
        let view = self
            .field()
            .take_transit_step(caller, &number, step, &seals, note.trim())
            .await?;
        Ok(Response::new(transit_message(view)?))
    }
}

#[tonic::async_trait]
impl TransitServiceApi for FieldService {
    async fn declare_transit(
        &self,
        request: Request<pb::DeclareTransitRequest>,
    ) -> Result<Response<pb::Transit>, Status> {
        let caller = Caller::of(&request)?.clone();
        let message = request.into_inner();
        let mut violations = Violations::new();
        let number = number(&message.declaration_number, &mut violations);
        let plate = message.vehicle_plate.trim();
        if plate.is_empty() {
            violations.push(
                "vehicle_plate",
                "REQUIRED",
                "the vehicle that carries the goods",
            );
        } else if plate.chars().count() > 16 {
            violations.push(
                "vehicle_plate",
                "TOO_LONG",
                "a plate has at most 16 characters",
            );
        }
        if message.inland_house_code.trim().is_empty() {
            violations.push(
                "inland_house_code",
                "REQUIRED",
                "the house at the inland end of the transit",
            );
        }
        violations.into_result()?;
        let view = self
            .field()
            .declare_transit(&caller, &number, message.inland_house_code.trim(), plate)
            .await?;
        Ok(Response::new(transit_message(view)?))
    }

    async fn review_transit(
        &self,
        request: Request<pb::ReviewTransitRequest>,
    ) -> Result<Response<pb::Transit>, Status> {
        let caller = Caller::of(&request)?.clone();
        let message = request.into_inner();
        let step = if message.approve {
            Step::Approve
        } else {
            Step::Refuse
        };
        self.step(
            &caller,
            &message.declaration_number,
            step,
            &[],
            &message.reason,
        )
        .await
    }

    async fn seal_transit(
        &self,
        request: Request<pb::SealTransitRequest>,
    ) -> Result<Response<pb::Transit>, Status> {
        let caller = Caller::of(&request)?.clone();
        let message = request.into_inner();
        self.step(
            &caller,
            &message.declaration_number,
            Step::Seal,
            &message.seal_numbers,
            "",
        )
        .await
    }

    async fn unseal_transit(
        &self,
        request: Request<pb::UnsealTransitRequest>,
    ) -> Result<Response<pb::Transit>, Status> {
        let caller = Caller::of(&request)?.clone();
        let message = request.into_inner();
        self.step(
            &caller,
            &message.declaration_number,
            Step::Unseal,
            &message.intact_seal_numbers,
            "",
        )
        .await
    }

    async fn write_off_transit(
        &self,
        request: Request<pb::WriteOffTransitRequest>,
    ) -> Result<Response<pb::Transit>, Status> {
        let caller = Caller::of(&request)?.clone();
        let message = request.into_inner();
        self.step(
            &caller,
            &message.declaration_number,
            Step::WriteOff,
            &[],
            "",
        )
        .await
    }

    async fn get_transit(
        &self,
        request: Request<pb::GetTransitRequest>,
    ) -> Result<Response<pb::Transit>, Status> {
        let caller = Caller::of(&request)?.clone();
        let message = request.into_inner();
        let mut violations = Violations::new();
        let number = number(&message.declaration_number, &mut violations);
        violations.into_result()?;
        let view = self.field().transit(&caller, &number).await?;
        Ok(Response::new(transit_message(view)?))
    }
}
