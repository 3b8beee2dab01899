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
    transits::{StepTaken, TransitView, stored_seals},
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
        lock_id: transit.lock_id,
        tracker_id: transit.tracker_id,
    })
}

/// The client's request id, required so that a retry is not taken for a second step.
fn request_id(value: &str, violations: &mut Violations) -> String {
    let value = value.trim();
    if value.is_empty() {
        violations.push(
            "request_id",
            "REQUIRED",
            "so that a retry returns the first answer",
        );
    } else if value.chars().count() > 128 {
        violations.push("request_id", "TOO_LONG", "at most 128 characters");
    }
    value.to_owned()
}

fn number(value: &str, violations: &mut Violations) -> String {
    violations
        .keep(parse_declaration_number("declaration_number", value))
        .unwrap_or_default()
}

impl FieldService {
    /// Validates and takes an officer's step (`given.seals` as the request gave them).
    async fn step(
        &self,
        caller: &Caller,
        declaration_number: &str,
        step: Step,
        given: StepTaken,
    ) -> Result<Response<pb::Transit>, Status> {
        let mut violations = Violations::new();
        let number = number(declaration_number, &mut violations);
        let request_id = request_id(&given.request_id, &mut violations);
        let seals = match step {
            Step::Seal => transit::parse_seals("seal_numbers", &given.seals, true, &mut violations),
            Step::Unseal => {
                transit::parse_seals("intact_seal_numbers", &given.seals, false, &mut violations)
            }
            _ => Vec::new(),
        };
        if step == Step::Refuse && given.note.trim().is_empty() {
            violations.push("reason", "REQUIRED", "why the transit is refused");
        }
        let (lock_id, tracker_id) = (given.lock_id.trim(), given.tracker_id.trim());
        if !lock_id.is_empty() && lock_id == tracker_id {
            violations.push(
                "tracker_id",
                "SAME_DEVICE",
                "the lock and the tracker are two devices",
            );
        }
        for (field, device) in [("lock_id", lock_id), ("tracker_id", tracker_id)] {
            if device.chars().count() > 64 {
                violations.push(field, "TOO_LONG", "a device id has at most 64 characters");
            }
        }
        violations.into_result()?;
        let taken = StepTaken {
            seals,
            lock_id: lock_id.to_owned(),
            tracker_id: tracker_id.to_owned(),
            note: given.note.trim().to_owned(),
            request_id,
        };
        let view = self
            .field()
            .take_transit_step(caller, &number, step, &taken)
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
        let request_id = request_id(&message.request_id, &mut violations);
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
            .declare_transit(
                &caller,
                &number,
                message.inland_house_code.trim(),
                plate,
                &request_id,
            )
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
        let given = StepTaken {
            note: message.reason,
            request_id: message.request_id,
            ..StepTaken::default()
        };
        self.step(&caller, &message.declaration_number, step, given)
            .await
    }

    async fn seal_transit(
        &self,
        request: Request<pb::SealTransitRequest>,
    ) -> Result<Response<pb::Transit>, Status> {
        let caller = Caller::of(&request)?.clone();
        let message = request.into_inner();
        let given = StepTaken {
            seals: message.seal_numbers,
            lock_id: message.lock_id,
            tracker_id: message.tracker_id,
            note: String::new(),
            request_id: message.request_id,
        };
        self.step(&caller, &message.declaration_number, Step::Seal, given)
            .await
    }

    async fn unseal_transit(
        &self,
        request: Request<pb::UnsealTransitRequest>,
    ) -> Result<Response<pb::Transit>, Status> {
        let caller = Caller::of(&request)?.clone();
        let message = request.into_inner();
        let given = StepTaken {
            seals: message.intact_seal_numbers,
            request_id: message.request_id,
            ..StepTaken::default()
        };
        self.step(&caller, &message.declaration_number, Step::Unseal, given)
            .await
    }

    async fn write_off_transit(
        &self,
        request: Request<pb::WriteOffTransitRequest>,
    ) -> Result<Response<pb::Transit>, Status> {
        let caller = Caller::of(&request)?.clone();
        let message = request.into_inner();
        let given = StepTaken {
            request_id: message.request_id,
            ..StepTaken::default()
        };
        self.step(&caller, &message.declaration_number, Step::WriteOff, given)
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
