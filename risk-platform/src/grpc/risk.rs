//! `customs.risk.v1.RiskService` and `RiskParameterService`.

use std::{collections::BTreeMap, str::FromStr};

use customs_common::{
    Error,
    auth::{Caller, Role},
    codes::parse_declaration_number,
    credit::CreditSchemes,
    day::today,
};
use customs_proto::{
    convert::{credit_class_enum, credit_class_field, requested_credit_class, timestamp},
    risk::{
        self as pb, risk_parameter_service_server::RiskParameterService as RiskParameterServiceApi,
        risk_service_server::RiskService as RiskServiceApi,
    },
};
use rust_decimal::Decimal;
use tonic::{Request, Response, Status};

use super::lane_to_proto;
use crate::{
    domain::screening::{Lane, SamplingRates},
    risk::{Risk, rates_in_force},
    storage::risk::{DecisionRecord, Parameters, VersionedParameters},
};

#[derive(Debug, Clone)]
pub struct RiskService {
    risk: Risk,
}

impl RiskService {
    pub fn new(risk: Risk) -> Self {
        Self { risk }
    }
}

fn declaration_date(date: Option<&customs_proto::common::Date>) -> Result<time::Date, Error> {
    match date {
        None => Ok(today()),
        Some(date) => time::Date::try_from(date)
            .map_err(|_| Error::invalid("declaration_date", "DATE_INVALID", "not a calendar day")),
    }
}

fn rate_list(rates: &SamplingRates) -> Vec<pb::LaneRate> {
    [
        (Lane::Red, rates.red),
        (Lane::Yellow, rates.yellow),
        (Lane::Blue, rates.blue),
    ]
    .into_iter()
    .map(|(lane, rate)| pb::LaneRate {
        lane: lane_to_proto(lane) as i32,
        rate: rate.to_string(),
    })
    .collect()
}

fn decision_message(
    record: DecisionRecord,
    rates: Option<&SamplingRates>,
) -> pb::ScreeningDecision {
    let decision = record.decision;
    pb::ScreeningDecision {
        decision_id: record.decision_id,
        declaration_number: record.declaration_number,
        lane: lane_to_proto(decision.lane) as i32,
        hits: decision
            .hits
            .iter()
            .map(|hit| pb::InstructionHit {
                instruction_id: hit.instruction_id.to_owned(),
                lane: lane_to_proto(hit.lane) as i32,
                reason: hit.reason.to_owned(),
                line_nos: hit.line_nos.to_vec(),
            })
            .collect(),
        sampling: Some(pb::SamplingDraw {
            credit_class: credit_class_enum(&record.credit_class) as i32,
            credit_class_code: record.credit_class,
            draw: decision.draw.to_string(),
            rates: rates.map(rate_list).unwrap_or_default(),
            lane: decision
                .sampled
                .map_or(0, |lane| lane_to_proto(lane) as i32),
        }),
        inspection_ordered: decision.inspection_ordered,
        parameters_version: record.parameters_version,
        decided_at: Some(timestamp(record.decided_at)),
    }
}

#[tonic::async_trait]
impl RiskServiceApi for RiskService {
    async fn check_declaration(
        &self,
        request: Request<pb::CheckDeclarationRequest>,
    ) -> Result<Response<pb::CheckDeclarationResponse>, Status> {
        let caller = Caller::of(&request)?.clone();
        let message = request.into_inner();
        let content = message.content.unwrap_or_default();
        if !caller.may_see(&[&content.enterprise_code, &content.broker_code]) {
            return Err(Error::permission_denied(
                "DECLARANT_MISMATCH",
                "an enterprise checks its own declarations",
            )
            .into());
        }
        let date = declaration_date(message.declaration_date.as_ref())?;
        // A platform checking a made declaration's new content (a modification) counts
        // what that declaration holds of its licences as left for it; an enterprise's
        // pre-check does not reach into the draws.
        let drawn_by = match caller.role {
            Role::Admin | Role::Officer if !message.declaration_number.trim().is_empty() => Some(
                parse_declaration_number("declaration_number", &message.declaration_number)
                    .map_err(Error::from)?,
            ),
            _ => None,
        };
        let violations = self.risk.check(&content, date, drawn_by.as_deref()).await?;
        if !violations.is_empty() {
            return Err(Error::InvalidArgument(violations).into());
        }
        Ok(Response::new(pb::CheckDeclarationResponse {
            violations: Vec::new(),
        }))
    }

    async fn screen_declaration(
        &self,
        request: Request<pb::ScreenDeclarationRequest>,
    ) -> Result<Response<pb::ScreeningDecision>, Status> {
        let message = request.into_inner();
        let number = parse_declaration_number("declaration_number", &message.declaration_number)
            .map_err(Error::from)?;
        let Some(content) = message.content else {
            return Err(Error::invalid(
                "content",
                "REQUIRED",
                "the declaration's content is required",
            )
            .into());
        };
        let date = declaration_date(message.declaration_date.as_ref())?;
        let revision = i32::try_from(message.revision).map_err(|_| {
            Error::invalid(
                "revision",
                "REVISION_INVALID",
                "not a revision of a declaration",
            )
        })?;
        let (record, rates) = self.risk.screen(&number, revision, &content, date).await?;
        Ok(Response::new(decision_message(record, rates.as_ref())))
    }

    async fn get_decision(
        &self,
        request: Request<pb::GetDecisionRequest>,
    ) -> Result<Response<pb::ScreeningDecision>, Status> {
        let record = self
            .risk
            .decision(request.get_ref().decision_id.trim())
            .await?;
        let rates = rates_in_force(&record, &self.risk.parameters().await?);
        Ok(Response::new(decision_message(record, rates.as_ref())))
    }
}

fn parameters_message(versioned: VersionedParameters) -> pb::RiskParameters {
    let date =
        customs_common::day::parse_iso_day(&versioned.parameters.land_port_integrated_from).ok();
    pb::RiskParameters {
        version: versioned.version,
        sampling: versioned
            .parameters
            .sampling
            .iter()
            .map(|(class, rates)| pb::CreditClassRates {
                credit_class: credit_class_enum(class) as i32,
                credit_class_code: class.clone(),
                rates: rate_list(rates),
            })
            .collect(),
        sampling_seed: versioned.parameters.sampling_seed,
        land_port_integrated_from: date.map(Into::into),
        updated_at: Some(timestamp(versioned.updated_at)),
        updated_by: versioned.updated_by,
    }
}

/// Rates for classes of the configured credit schemes (DOMAIN.md 8).
fn parse_parameters(
    message: &pb::RiskParameters,
    schemes: &CreditSchemes,
) -> Result<Parameters, Error> {
    let mut violations = customs_common::Violations::new();
    let mut sampling = BTreeMap::new();
    for (i, class) in message.sampling.iter().enumerate() {
        let name = match requested_credit_class(class.credit_class, &class.credit_class_code) {
            Ok(Some(name)) if schemes.knows(&name) => name,
            Ok(Some(name)) => {
                violations.push(
                    format!(
                        "parameters.sampling[{i}].{}",
                        credit_class_field(&class.credit_class_code)
                    ),
                    "CREDIT_CLASS_UNKNOWN",
                    format!("no configured credit scheme has the class {name}"),
                );
                name
            }
            Ok(None) => {
                violations.push(
                    format!("parameters.sampling[{i}].credit_class"),
                    "REQUIRED",
                    "the credit class (credit_class, or credit_class_code)",
                );
                String::new()
            }
            Err(conflict) => {
                violations.push(
                    format!("parameters.sampling[{i}].credit_class_code"),
                    "CREDIT_CLASS_CONFLICT",
                    conflict,
                );
                String::new()
            }
        };
        let mut rates = SamplingRates {
            red: Decimal::ZERO,
            yellow: Decimal::ZERO,
            blue: Decimal::ZERO,
        };
        let mut lanes = Vec::with_capacity(3);
        for (j, rate) in class.rates.iter().enumerate() {
            let field = format!("parameters.sampling[{i}].rates[{j}].rate");
            let value = match Decimal::from_str(rate.rate.trim()) {
                Ok(value) if value >= Decimal::ZERO && value <= Decimal::ONE => value,
                _ => {
                    violations.push(field, "RATE_INVALID", "a rate is a decimal from 0 to 1");
                    continue;
                }
            };
            if lanes.contains(&rate.lane()) {
                violations.push(
                    format!("parameters.sampling[{i}].rates[{j}].lane"),
                    "LANE_REPEATED",
                    "each lane's rate is given once",
                );
            }
            lanes.push(rate.lane());
            match rate.lane() {
                customs_proto::common::Lane::Red => rates.red = value,
                customs_proto::common::Lane::Yellow => rates.yellow = value,
                customs_proto::common::Lane::Blue => rates.blue = value,
                _ => violations.push(
                    field,
                    "LANE_NOT_SAMPLED",
                    "only RED, YELLOW and BLUE are sampled",
                ),
            }
        }
        if rates.red + rates.yellow + rates.blue > Decimal::ONE {
            violations.push(
                format!("parameters.sampling[{i}].rates"),
                "RATES_EXCEED_ONE",
                "the rates add up to more than 1",
            );
        }
        if sampling.insert(name, rates).is_some() {
            violations.push(
                format!("parameters.sampling[{i}].credit_class"),
                "CREDIT_CLASS_REPEATED",
                "each credit class's rates are given once",
            );
        }
    }
    if message.sampling_seed.trim().is_empty() {
        violations.push("parameters.sampling_seed", "REQUIRED", "the sampling seed");
    }
    let land = message
        .land_port_integrated_from
        .as_ref()
        .and_then(|d| time::Date::try_from(d).ok());
    if land.is_none() {
        violations.push(
            "parameters.land_port_integrated_from",
            "REQUIRED",
            "a calendar day",
        );
    }
    violations.into_result()?;
    Ok(Parameters {
        sampling,
        sampling_seed: message.sampling_seed.trim().to_owned(),
        land_port_integrated_from: land.map(|d| d.to_string()).unwrap_or_default(),
    })
}

#[tonic::async_trait]
impl RiskParameterServiceApi for RiskService {
    async fn get_risk_parameters(
        &self,
        _request: Request<pb::GetRiskParametersRequest>,
    ) -> Result<Response<pb::RiskParameters>, Status> {
        Ok(Response::new(parameters_message(
            self.risk.parameters().await?,
        )))
    }

    async fn update_risk_parameters(
        &self,
        request: Request<pb::UpdateRiskParametersRequest>,
    ) -> Result<Response<pb::RiskParameters>, Status> {
        let caller = Caller::of(&request)?.clone();
        let message = request.into_inner();
        let parameters =
            parse_parameters(&message.parameters.unwrap_or_default(), self.risk.schemes())?;
        let updated = self
            .risk
            .update_parameters(message.expected_version, parameters, &caller.subject)
            .await?;
        Ok(Response::new(parameters_message(updated)))
    }
}
