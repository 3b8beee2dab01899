//! `customs.review.v1.RulingService`.

use customs_common::{
    Error, Violations,
    auth::{Caller, Role},
    codes::{
        directly_under_house, parse_declaration_number, parse_enterprise_code, parse_house_code,
        parse_hs_code,
    },
    day::date_of_day,
    paging::{next_page_token, page_limit},
    rulings::RulingKind,
    store::EarlierDraw,
};
use customs_proto::{
    common::{Money, RulingKind as ProtoKind},
    convert::timestamp,
    review::{self as pb, ruling_service_server::RulingService as RulingServiceApi},
};
use tonic::{Request, Response, Status};

use crate::{
    domain::ruling::{
        NewRuling, RulingDraft, milli_to_string, parse_quantity_milli, parse_ruling_id,
    },
    rulings::{RulingView, Rulings},
    storage::rulings::RulingFilter,
};

#[derive(Debug, Clone)]
pub struct RulingService {
    rulings: Rulings,
}

impl RulingService {
    pub fn new(rulings: Rulings) -> Self {
        Self { rulings }
    }
}

fn kind_from_proto(kind: ProtoKind) -> Option<RulingKind> {
    match kind {
        ProtoKind::Unspecified => None,
        ProtoKind::PreClassification => Some(RulingKind::PreClassification),
        ProtoKind::PricePreReview => Some(RulingKind::PricePreReview),
        ProtoKind::OriginPreDetermination => Some(RulingKind::OriginPreDetermination),
        ProtoKind::Licence => Some(RulingKind::Licence),
        ProtoKind::ProfessionalDetermination => Some(RulingKind::ProfessionalDetermination),
        ProtoKind::TemporaryAdmission => Some(RulingKind::TemporaryAdmission),
    }
}

fn kind_to_proto(kind: RulingKind) -> ProtoKind {
    match kind {
        RulingKind::PreClassification => ProtoKind::PreClassification,
        RulingKind::PricePreReview => ProtoKind::PricePreReview,
        RulingKind::OriginPreDetermination => ProtoKind::OriginPreDetermination,
        RulingKind::Licence => ProtoKind::Licence,
        RulingKind::ProfessionalDetermination => ProtoKind::ProfessionalDetermination,
        RulingKind::TemporaryAdmission => ProtoKind::TemporaryAdmission,
    }
}

fn ruling_message(view: RulingView) -> pb::Ruling {
    let record = view.record;
    let date = |day| date_of_day(day).ok().map(Into::into);
    pb::Ruling {
        ruling_id: record.id,
        kind: kind_to_proto(record.kind) as i32,
        issuing_house: record.issuing_house,
        holder: record.holder,
        subject: record.subject,
        hs_code: record.hs_code.unwrap_or_default(),
        unit_price: record.unit_price.map(|(currency_code, amount)| Money {
            currency_code,
            amount: amount.to_string(),
        }),
        origin_country: record.origin_country.unwrap_or_default(),
        quantity_granted: record
            .quantity_granted_milli
            .map(milli_to_string)
            .unwrap_or_default(),
        quantity_remaining: view
            .remaining_milli
            .map(milli_to_string)
            .unwrap_or_default(),
        unit: record.unit.unwrap_or_default(),
        valid_from: date(record.valid_from),
        valid_until: date(record.valid_until),
        status: if record.revoked {
            pb::RulingStatus::Revoked
        } else {
            pb::RulingStatus::Valid
        } as i32,
        replaced_by: record.replaced_by.unwrap_or_default(),
        issued_at: view.issued_at.map(timestamp),
        revocation_reason: record.revocation_reason.unwrap_or_default(),
    }
}

fn ruling_id(field: &str, id: &str) -> Result<String, Status> {
    Ok(parse_ruling_id(field, id).map_err(Error::from)?)
}

#[tonic::async_trait]
impl RulingServiceApi for RulingService {
    async fn issue_ruling(
        &self,
        request: Request<pb::IssueRulingRequest>,
    ) -> Result<Response<pb::Ruling>, Status> {
        let caller = Caller::of(&request)?.clone();
        let message = request.into_inner();
        let ruling = message.ruling.unwrap_or_default();
        let mut violations = Violations::new();
        if message.request_id.trim().is_empty() {
            violations.push("request_id", "REQUIRED", "a client request id is required");
        }
        let replaces = (!message.replaces.trim().is_empty())
            .then(|| violations.keep(parse_ruling_id("replaces", &message.replaces)))
            .flatten();
        let price = ruling.unit_price.as_ref();
        let draft = RulingDraft {
            kind: kind_from_proto(ruling.kind()),
            holder: &ruling.holder,
            subject: &ruling.subject,
            hs_code: &ruling.hs_code,
            unit_price: price.map(|money| (money.currency_code.as_str(), money.amount.as_str())),
            origin_country: &ruling.origin_country,
            quantity_granted: &ruling.quantity_granted,
            unit: &ruling.unit,
            valid_from: ruling
                .valid_from
                .as_ref()
                .and_then(|d| time::Date::try_from(d).ok()),
            valid_until: ruling
                .valid_until
                .as_ref()
                .and_then(|d| time::Date::try_from(d).ok()),
        };
        let parsed = NewRuling::parse(&draft);
        if let Err(Error::InvalidArgument(found)) = &parsed {
            violations.extend(found.iter().cloned());
        }
        violations.into_result()?;
        let house = directly_under_house(&caller.house);
        let view = self
            .rulings
            .issue(
                message.request_id.trim(),
                parsed?,
                &house,
                replaces.as_deref(),
            )
            .await?;
        Ok(Response::new(ruling_message(view)))
    }

    async fn get_ruling(
        &self,
        request: Request<pb::GetRulingRequest>,
    ) -> Result<Response<pb::Ruling>, Status> {
        let caller = Caller::of(&request)?.clone();
        let id = ruling_id("ruling_id", &request.get_ref().ruling_id)?;
        let view = self.rulings.get(&id).await?;
        if !caller.may_see(&[&view.record.holder]) {
            // Not revealing that another enterprise's ruling exists.
            return Err(Error::not_found(
                "RULING_NOT_FOUND",
                format!("no ruling {id} is registered in any house"),
            )
            .into());
        }
        Ok(Response::new(ruling_message(view)))
    }

    async fn find_rulings(
        &self,
        request: Request<pb::FindRulingsRequest>,
    ) -> Result<Response<pb::FindRulingsResponse>, Status> {
        let caller = Caller::of(&request)?.clone();
        let message = request.into_inner();
        let mut violations = Violations::new();
        let mut holder = (!message.holder.is_empty())
            .then(|| violations.keep(parse_enterprise_code("holder", &message.holder)))
            .flatten();
        let hs_code = (!message.hs_code.is_empty())
            .then(|| violations.keep(parse_hs_code("hs_code", &message.hs_code)))
            .flatten();
        let after = (!message.page_token.is_empty())
            .then(|| violations.keep(parse_ruling_id("page_token", &message.page_token)))
            .flatten();
        violations.into_result()?;
        if caller.acts_for_an_enterprise() {
            match (&holder, &caller.enterprise) {
                (Some(asked), Some(own)) if asked != own => {
                    return Err(Error::permission_denied(
                        "RULING_NOT_YOURS",
                        "an enterprise may look up only its own rulings",
                    )
                    .into());
                }
                _ => holder = caller.enterprise.clone(),
            }
        }
        let limit = page_limit(message.page_size)?;
        let filter = RulingFilter {
            holder,
            kind: kind_from_proto(message.kind()),
            hs_code,
            after,
            limit: limit + 1,
        };
        let mut found = self.rulings.find(&filter).await?;
        let next_page_token = next_page_token(&mut found, limit, |view| view.record.id.clone());
        Ok(Response::new(pb::FindRulingsResponse {
            rulings: found.into_iter().map(ruling_message).collect(),
            next_page_token,
        }))
    }

    async fn revoke_ruling(
        &self,
        request: Request<pb::RevokeRulingRequest>,
    ) -> Result<Response<pb::Ruling>, Status> {
        let message = request.into_inner();
        let id = ruling_id("ruling_id", &message.ruling_id)?;
        if message.reason.trim().is_empty() {
            return Err(Error::invalid("reason", "REQUIRED", "a revocation needs a reason").into());
        }
        let view = self.rulings.revoke(&id, message.reason.trim()).await?;
        Ok(Response::new(ruling_message(view)))
    }

    async fn draw_down_licence(
        &self,
        request: Request<pb::DrawDownLicenceRequest>,
    ) -> Result<Response<pb::Ruling>, Status> {
        let caller = Caller::of(&request)?.clone();
        let message = request.into_inner();
        let mut violations = Violations::new();
        let (id, declaration) = licence_and_declaration(
            &mut violations,
            &message.ruling_id,
            &message.declaration_number,
        );
        let quantity = violations.keep(parse_quantity_milli("quantity", &message.quantity));
        let house = match message.house_code.trim() {
            "" => Some(caller.house.clone()),
            named => violations.keep(parse_house_code("house_code", named)),
        };
        violations.into_result()?;
        let (Some(id), Some(declaration), Some(quantity), Some(house)) =
            (id, declaration, quantity, house)
        else {
            return Err(field_missing().into());
        };
        if house != caller.house && caller.role != Role::Admin {
            return Err(Error::permission_denied(
                "HOUSE_NOT_YOURS",
                format!("you draw for house {}, not {house}", caller.house),
            )
            .into());
        }
        let earlier = if message.replaces_earlier_draw {
            if caller.role != Role::Admin {
                return Err(Error::permission_denied(
                    "REPLACING_A_DRAW_NOT_ALLOWED",
                    "only the platforms replace a declaration's earlier draw",
                )
                .into());
            }
            EarlierDraw::Replace
        } else {
            EarlierDraw::Keep
        };
        let view = self
            .rulings
            .draw_down(&id, &declaration, quantity, &house, earlier)
            .await?;
        Ok(Response::new(ruling_message(view)))
    }

    async fn get_licence_draw(
        &self,
        request: Request<pb::GetLicenceDrawRequest>,
    ) -> Result<Response<pb::LicenceDraw>, Status> {
        let message = request.into_inner();
        let (id, declaration) = draw_named(&message.ruling_id, &message.declaration_number)?;
        let quantity_milli = self.rulings.draw_of(&id, &declaration).await?;
        Ok(Response::new(pb::LicenceDraw {
            ruling_id: id,
            declaration_number: declaration,
            quantity: milli_to_string(quantity_milli),
        }))
    }

    async fn return_licence_draw(
        &self,
        request: Request<pb::ReturnLicenceDrawRequest>,
    ) -> Result<Response<pb::Ruling>, Status> {
        let message = request.into_inner();
        let (id, declaration) = draw_named(&message.ruling_id, &message.declaration_number)?;
        let view = self.rulings.return_draw(&id, &declaration).await?;
        Ok(Response::new(ruling_message(view)))
    }
}

/// The licence and the declaration a draw names, both valid.
fn draw_named(ruling_id: &str, declaration_number: &str) -> Result<(String, String), Error> {
    let mut violations = Violations::new();
    let (id, declaration) = licence_and_declaration(&mut violations, ruling_id, declaration_number);
    violations.into_result()?;
    id.zip(declaration).ok_or_else(field_missing)
}

/// The licence and the declaration a draw names, each checked (violations kept).
fn licence_and_declaration(
    violations: &mut Violations,
    ruling_id: &str,
    declaration_number: &str,
) -> (Option<String>, Option<String>) {
    (
        violations.keep(parse_ruling_id("ruling_id", ruling_id)),
        violations.keep(parse_declaration_number(
            "declaration_number",
            declaration_number,
        )),
    )
}

fn field_missing() -> Error {
    Error::internal(anyhow::anyhow!("validation passed with a field missing"))
}
