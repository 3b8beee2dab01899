//! `customs.field.v1.GuaranteeService`.

use customs_common::{
    Error, Violations,
    auth::{Caller, Role},
    codes::{parse_declaration_number, parse_enterprise_code, parse_house_code},
    money::{parse_amount, parse_currency, to_fen},
};
use customs_proto::{
    convert::timestamp,
    field::{self as pb, guarantee_service_server::GuaranteeService as GuaranteeServiceApi},
};
use tonic::{Request, Response, Status};

use super::cny;
use crate::{
    domain::guarantee::{GuaranteeReference, HolderRestriction, NewGuarantee},
    guarantees::{GuaranteeView, Guarantees, ReservationView, Reserve},
};

#[derive(Debug, Clone)]
pub struct GuaranteeService {
    guarantees: Guarantees,
}

impl GuaranteeService {
    pub fn new(guarantees: Guarantees) -> Self {
        Self { guarantees }
    }
}

fn guarantee_message(view: GuaranteeView) -> pb::Guarantee {
    let record = view.record;
    pb::Guarantee {
        reference: record.reference,
        bank: record.bank,
        holder: record.holder,
        amount: cny(view.balance.amount_fen),
        available: cny(view.balance.available_fen()),
        reserved: cny(view.balance.reserved_fen),
        valid_from: Some(record.valid_from.into()),
        valid_until: Some(record.valid_until.into()),
        status: if record.suspended {
            pb::GuaranteeStatus::Suspended
        } else {
            pb::GuaranteeStatus::Active
        } as i32,
        suspension_reason: record.suspension_reason,
        access_code: view.access_code.unwrap_or_default(),
        registered_by_house: record.registered_by_house,
        registered_at: Some(timestamp(record.registered_at)),
    }
}

fn reservation_message(view: ReservationView) -> pb::Reservation {
    pb::Reservation {
        reference: view.reference,
        declaration_number: view.declaration_number,
        amount: cny(view.amount_fen),
        state: if view.released_at.is_some() {
            pb::ReservationState::Released
        } else {
            pb::ReservationState::Reserved
        } as i32,
        house_code: view.house_code,
        available_after: cny(view.available_after_fen),
        reserved_at: view.reserved_at.map(timestamp),
        released_at: view.released_at.map(timestamp),
    }
}

/// Enterprises and brokers see only guarantees they hold.
fn ensure_may_read(caller: &Caller, holder: &str) -> Result<(), Error> {
    if caller.may_see(&[holder]) {
        return Ok(());
    }
    Err(Error::permission_denied(
        "GUARANTEE_NOT_YOURS",
        "an enterprise may read only its own guarantees",
    ))
}

/// Officers act for their own house; admins for any.
fn ensure_acts_for_house(caller: &Caller, house: &str) -> Result<(), Error> {
    if caller.role == Role::Admin || caller.house == house {
        Ok(())
    } else {
        Err(Error::permission_denied(
            "HOUSE_MISMATCH",
            format!(
                "a token of house {} may not act for house {house}",
                caller.house
            ),
        ))
    }
}

/// A wire date, or `None` when it is absent or not a calendar day.
fn date(date: Option<&customs_proto::common::Date>) -> Option<time::Date> {
    date.and_then(|date| time::Date::try_from(date).ok())
}

fn parse_reserve(request: &pb::ReserveDutiesRequest) -> Result<Reserve, Error> {
    let mut violations = Violations::new();
    let reference = violations.keep(GuaranteeReference::parse("reference", &request.reference));
    if request.access_code.trim().is_empty() {
        violations.push(
            "access_code",
            "REQUIRED",
            "the guarantee's access code is required",
        );
    }
    let holder = violations.keep(parse_enterprise_code("holder", &request.holder));
    let declaration_number = violations.keep(parse_declaration_number(
        "declaration_number",
        &request.declaration_number,
    ));
    let house_code = violations.keep(parse_house_code("house_code", &request.house_code));
    let amount_fen = match &request.amount {
        None => {
            violations.push("amount", "REQUIRED", "the duties to reserve are required");
            None
        }
        Some(money) => {
            let currency = parse_currency("amount.currency_code", &money.currency_code);
            match currency {
                Ok(code) if code == "CNY" => {}
                Ok(_) => violations.push(
                    "amount.currency_code",
                    "GUARANTEE_CURRENCY",
                    "duties are reserved in CNY",
                ),
                Err(violation) => violations.extend([violation]),
            }
            match parse_amount("amount.amount", &money.amount)
                .and_then(|a| to_fen("amount.amount", a))
            {
                Ok(fen) if fen > 0 => Some(fen),
                Ok(_) => {
                    violations.push(
                        "amount.amount",
                        "AMOUNT_NOT_POSITIVE",
                        "must be greater than zero",
                    );
                    None
                }
                Err(violation) => {
                    violations.extend([violation]);
                    None
                }
            }
        }
    };
    violations.into_result()?;
    match (
        reference,
        holder,
        declaration_number,
        house_code,
        amount_fen,
    ) {
        (
            Some(reference),
            Some(holder),
            Some(declaration_number),
            Some(house_code),
            Some(amount_fen),
        ) => Ok(Reserve {
            reference,
            access_code: request.access_code.trim().to_owned(),
            holder,
            declaration_number,
            amount_fen,
            house_code,
        }),
        _ => Err(Error::internal(anyhow::anyhow!(
            "validation passed with a field missing"
        ))),
    }
}

#[tonic::async_trait]
impl GuaranteeServiceApi for GuaranteeService {
    async fn register_guarantee(
        &self,
        request: Request<pb::RegisterGuaranteeRequest>,
    ) -> Result<Response<pb::Guarantee>, Status> {
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
        let amount = message.amount.unwrap_or_default();
        let guarantee = NewGuarantee::parse(
            &message.bank,
            &message.holder,
            &amount.currency_code,
            &amount.amount,
            date(message.valid_from.as_ref()),
            date(message.valid_until.as_ref()),
        )?;
        let house = parse_house_code("house", &caller.house).map_err(Error::from)?;
        let view = self
            .guarantees
            .register(message.request_id.trim(), guarantee, &house)
            .await?;
        Ok(Response::new(guarantee_message(view)))
    }

    async fn get_guarantee(
        &self,
        request: Request<pb::GetGuaranteeRequest>,
    ) -> Result<Response<pb::Guarantee>, Status> {
        let caller = Caller::of(&request)?.clone();
        let reference = GuaranteeReference::parse("reference", &request.get_ref().reference)
            .map_err(Error::from)?;
        let view = self.guarantees.get(&reference).await?;
        ensure_may_read(&caller, &view.record.holder)?;
        Ok(Response::new(guarantee_message(view)))
    }

    async fn suspend_guarantee(
        &self,
        request: Request<pb::SuspendGuaranteeRequest>,
    ) -> Result<Response<pb::Guarantee>, Status> {
        let message = request.into_inner();
        let reference =
            GuaranteeReference::parse("reference", &message.reference).map_err(Error::from)?;
        if message.reason.trim().is_empty() {
            return Err(Error::invalid("reason", "REQUIRED", "a suspension needs a reason").into());
        }
        let view = self
            .guarantees
            .suspend(&reference, message.reason.trim())
            .await?;
        Ok(Response::new(guarantee_message(view)))
    }

    async fn reserve_duties(
        &self,
        request: Request<pb::ReserveDutiesRequest>,
    ) -> Result<Response<pb::Reservation>, Status> {
        let caller = Caller::of(&request)?.clone();
        let reserve = parse_reserve(request.get_ref())?;
        ensure_acts_for_house(&caller, &reserve.house_code)?;
        let view = self.guarantees.reserve(&reserve).await?;
        Ok(Response::new(reservation_message(view)))
    }

    async fn release_reservation(
        &self,
        request: Request<pb::ReleaseReservationRequest>,
    ) -> Result<Response<pb::Reservation>, Status> {
        let caller = Caller::of(&request)?.clone();
        let message = request.into_inner();
        let mut violations = Violations::new();
        let reference = violations.keep(GuaranteeReference::parse("reference", &message.reference));
        let declaration_number = violations.keep(parse_declaration_number(
            "declaration_number",
            &message.declaration_number,
        ));
        violations.into_result()?;
        let (Some(reference), Some(declaration_number)) = (reference, declaration_number) else {
            return Err(
                Error::internal(anyhow::anyhow!("validation passed with a field missing")).into(),
            );
        };
        let view = self
            .guarantees
            .release(&reference, &declaration_number, &caller.house)
            .await?;
        Ok(Response::new(reservation_message(view)))
    }

    async fn rebuild_balances(
        &self,
        request: Request<pb::RebuildBalancesRequest>,
    ) -> Result<Response<pb::RebuildBalancesResponse>, Status> {
        let references = request
            .into_inner()
            .references
            .iter()
            .enumerate()
            .map(|(i, reference)| GuaranteeReference::parse(&format!("references[{i}]"), reference))
            .collect::<Result<Vec<_>, _>>()
            .map_err(Error::from)?;
        let (guarantees, reservations) = self.guarantees.rebuild(&references).await?;
        Ok(Response::new(pb::RebuildBalancesResponse {
            guarantees_rebuilt: i32::try_from(guarantees).unwrap_or(i32::MAX),
            reservations_restored: i32::try_from(reservations).unwrap_or(i32::MAX),
        }))
    }

    async fn set_holder_restriction(
        &self,
        request: Request<pb::SetHolderRestrictionRequest>,
    ) -> Result<Response<pb::HolderRestrictions>, Status> {
        let message = request.into_inner();
        let mut violations = Violations::new();
        let holder = violations.keep(parse_enterprise_code("holder", &message.holder));
        let restriction = match message.restriction() {
            pb::HolderRestriction::Discredited => Some(HolderRestriction::Discredited),
            pb::HolderRestriction::Arrears => Some(HolderRestriction::Arrears),
            pb::HolderRestriction::Unspecified => {
                violations.push("restriction", "REQUIRED", "DISCREDITED or ARREARS");
                None
            }
        };
        violations.into_result()?;
        let (Some(holder), Some(restriction)) = (holder, restriction) else {
            return Err(
                Error::internal(anyhow::anyhow!("validation passed with a field missing")).into(),
            );
        };
        let restrictions = self
            .guarantees
            .set_restriction(&holder, restriction, message.active, message.note.trim())
            .await?;
        Ok(Response::new(pb::HolderRestrictions {
            holder,
            restrictions: restrictions
                .into_iter()
                .map(|r| match r {
                    HolderRestriction::Discredited => pb::HolderRestriction::Discredited as i32,
                    HolderRestriction::Arrears => pb::HolderRestriction::Arrears as i32,
                })
                .collect(),
        }))
    }
}
