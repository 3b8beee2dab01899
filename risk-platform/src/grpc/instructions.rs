//! `customs.risk.v1.ControlInstructionService`.

use std::str::FromStr;

use customs_common::{
    Error, Violations,
    auth::Caller,
    codes::{
        directly_under_house, parse_country, parse_enterprise_code, parse_house_code,
        parse_hs_prefix,
    },
    credit::CreditSchemes,
    paging::{next_page_token, page_limit},
};
use customs_proto::{
    common::CreditClass,
    convert::{credit_class_enum, instant, timestamp},
    risk::{
        self as pb,
        control_instruction_service_server::ControlInstructionService as ControlInstructionServiceApi,
    },
};
use rust_decimal::Decimal;
use time::OffsetDateTime;
use tonic::{Request, Response, Status};

use super::{lane_from_proto, lane_to_proto};
use crate::{
    domain::screening::{Conditions, Instruction},
    risk::Risk,
    storage::risk::InstructionRecord,
};

/// "No end": 9999-12-31.
const FOREVER: i64 = 253_402_214_400;

#[derive(Debug, Clone)]
pub struct ControlInstructionService {
    risk: Risk,
}

impl ControlInstructionService {
    pub fn new(risk: Risk) -> Self {
        Self { risk }
    }
}

fn instruction_message(record: InstructionRecord) -> pb::ControlInstruction {
    let i = record.instruction;
    let c = i.conditions;
    let at = |seconds: i64| {
        OffsetDateTime::from_unix_timestamp(seconds)
            .ok()
            .map(timestamp)
    };
    pb::ControlInstruction {
        instruction_id: i.id,
        conditions: Some(pb::InstructionConditions {
            hs_prefixes: c.hs_prefixes,
            origin_countries: c.origin_countries,
            trade_modes: c.trade_modes,
            enterprise_codes: c.enterprise_codes,
            port_codes: c.port_codes,
            clearance_modes: c
                .clearance_modes
                .iter()
                .filter_map(|m| {
                    customs_proto::common::ClearanceMode::from_str_name(&format!(
                        "CLEARANCE_MODE_{m}"
                    ))
                })
                .map(|m| m as i32)
                .collect(),
            credit_classes: c
                .credit_classes
                .iter()
                .map(|code| credit_class_enum(code))
                .filter(|class| *class != CreditClass::Unspecified)
                .map(|class| class as i32)
                .collect(),
            credit_class_codes: c.credit_classes,
            min_unit_value_cny: c
                .min_unit_value_cny
                .map(|v| v.to_string())
                .unwrap_or_default(),
            max_unit_value_cny: c
                .max_unit_value_cny
                .map(|v| v.to_string())
                .unwrap_or_default(),
        }),
        lane: lane_to_proto(i.lane) as i32,
        order_inspection: i.order_inspection,
        valid_from: at(i.valid_from),
        valid_until: at(i.valid_until),
        issuing_house: i.issuing_house,
        reason: i.reason,
        state: if record.revoked {
            pb::InstructionState::Revoked
        } else {
            pb::InstructionState::Active
        } as i32,
        created_at: Some(timestamp(record.created_at)),
        revoked_at: record.revoked_at.map(timestamp),
        revocation_reason: record.revocation_reason,
    }
}

fn conditions(
    message: &pb::InstructionConditions,
    schemes: &CreditSchemes,
    violations: &mut Violations,
) -> Conditions {
    let mut list =
        |field: &str,
         values: &[String],
         parse: fn(&str, &str) -> Result<String, customs_common::error::FieldViolation>| {
            values
                .iter()
                .enumerate()
                .filter_map(|(i, value)| {
                    violations.keep(parse(
                        &format!("instruction.conditions.{field}[{i}]"),
                        value,
                    ))
                })
                .collect::<Vec<_>>()
        };
    let hs_prefixes = list("hs_prefixes", &message.hs_prefixes, parse_hs_prefix);
    let origin_countries = list("origin_countries", &message.origin_countries, parse_country);
    let enterprise_codes = list(
        "enterprise_codes",
        &message.enterprise_codes,
        parse_enterprise_code,
    );
    let port_codes = list("port_codes", &message.port_codes, parse_house_code);
    let mut bound = |field: &str, value: &str| {
        if value.trim().is_empty() {
            return None;
        }
        match Decimal::from_str(value.trim()) {
            Ok(number) if number >= Decimal::ZERO => Some(number),
            _ => {
                violations.push(
                    format!("instruction.conditions.{field}"),
                    "AMOUNT_INVALID",
                    "a non-negative decimal",
                );
                None
            }
        }
    };
    let min_unit_value_cny = bound("min_unit_value_cny", &message.min_unit_value_cny);
    let max_unit_value_cny = bound("max_unit_value_cny", &message.max_unit_value_cny);
    // By the 2018 enum or by code; each a class of some configured scheme.
    let named = message
        .credit_classes()
        .filter(|c| *c != CreditClass::Unspecified)
        .map(|c| {
            c.as_str_name()
                .trim_start_matches("CREDIT_CLASS_")
                .to_owned()
        })
        .enumerate()
        .map(|(i, code)| (format!("credit_classes[{i}]"), code));
    let coded = message
        .credit_class_codes
        .iter()
        .enumerate()
        .map(|(i, code)| {
            (
                format!("credit_class_codes[{i}]"),
                code.trim().to_ascii_uppercase(),
            )
        });
    let mut credit_classes = Vec::new();
    for (field, code) in named.chain(coded) {
        if schemes.knows(&code) {
            credit_classes.push(code);
        } else {
            violations.push(
                format!("instruction.conditions.{field}"),
                "CREDIT_CLASS_UNKNOWN",
                format!("no configured credit scheme has the class {code}"),
            );
        }
    }
    credit_classes.sort_unstable();
    credit_classes.dedup();
    Conditions {
        hs_prefixes,
        origin_countries,
        trade_modes: message
            .trade_modes
            .iter()
            .map(|m| m.trim().to_owned())
            .collect(),
        enterprise_codes,
        port_codes,
        clearance_modes: message
            .clearance_modes()
            .map(|m| {
                m.as_str_name()
                    .trim_start_matches("CLEARANCE_MODE_")
                    .to_owned()
            })
            .collect(),
        credit_classes,
        min_unit_value_cny,
        max_unit_value_cny,
    }
}

#[tonic::async_trait]
impl ControlInstructionServiceApi for ControlInstructionService {
    async fn create_control_instruction(
        &self,
        request: Request<pb::CreateControlInstructionRequest>,
    ) -> Result<Response<pb::ControlInstruction>, Status> {
        let caller = Caller::of(&request)?.clone();
        let message = request.into_inner();
        let given = message.instruction.unwrap_or_default();
        let mut violations = Violations::new();
        if message.request_id.trim().is_empty() {
            violations.push("request_id", "REQUIRED", "a client request id is required");
        }
        let conditions = conditions(
            &given.conditions.clone().unwrap_or_default(),
            self.risk.schemes(),
            &mut violations,
        );
        let lane = lane_from_proto(given.lane());
        if lane.is_none() {
            violations.push(
                "instruction.lane",
                "REQUIRED",
                "the lane the instruction forces",
            );
        }
        if given.reason.trim().is_empty() {
            violations.push(
                "instruction.reason",
                "REQUIRED",
                "why the instruction is issued",
            );
        }
        let now = OffsetDateTime::now_utc().unix_timestamp();
        let valid_from = given
            .valid_from
            .as_ref()
            .and_then(instant)
            .map_or(now, |t| t.unix_timestamp());
        let valid_until = given
            .valid_until
            .as_ref()
            .and_then(instant)
            .map_or(FOREVER, |t| t.unix_timestamp());
        if valid_until <= valid_from {
            violations.push(
                "instruction.valid_until",
                "VALIDITY_WINDOW",
                "must be after valid_from",
            );
        }
        violations.into_result()?;
        let Some(lane) = lane else {
            return Err(Error::internal(anyhow::anyhow!("lane missing")).into());
        };
        let instruction = Instruction {
            id: format!("CI{}", &uuid::Uuid::new_v4().simple().to_string()[..14])
                .to_ascii_uppercase(),
            conditions,
            lane,
            order_inspection: given.order_inspection,
            valid_from,
            valid_until,
            issuing_house: directly_under_house(&caller.house),
            reason: given.reason.trim().to_owned(),
        };
        let record = self
            .risk
            .create_instruction(message.request_id.trim(), instruction)
            .await?;
        Ok(Response::new(instruction_message(record)))
    }

    async fn get_control_instruction(
        &self,
        request: Request<pb::GetControlInstructionRequest>,
    ) -> Result<Response<pb::ControlInstruction>, Status> {
        let record = self
            .risk
            .instruction(request.get_ref().instruction_id.trim())
            .await?;
        Ok(Response::new(instruction_message(record)))
    }

    async fn list_control_instructions(
        &self,
        request: Request<pb::ListControlInstructionsRequest>,
    ) -> Result<Response<pb::ListControlInstructionsResponse>, Status> {
        let message = request.into_inner();
        if message.page_size < 0 {
            return Err(
                Error::invalid("page_size", "PAGE_SIZE_NEGATIVE", "must not be negative").into(),
            );
        }
        let limit = page_limit(message.page_size)?;
        let revoked = match message.state() {
            pb::InstructionState::Unspecified => None,
            pb::InstructionState::Active => Some(false),
            pb::InstructionState::Revoked => Some(true),
        };
        let house = (!message.issuing_house.is_empty()).then_some(message.issuing_house.as_str());
        let after = (!message.page_token.is_empty()).then_some(message.page_token.as_str());
        let mut found = self
            .risk
            .instructions(revoked, house, after, limit + 1)
            .await?;
        let next_page_token = next_page_token(&mut found, limit, |r| r.instruction.id.clone());
        Ok(Response::new(pb::ListControlInstructionsResponse {
            instructions: found.into_iter().map(instruction_message).collect(),
            next_page_token,
        }))
    }

    async fn revoke_control_instruction(
        &self,
        request: Request<pb::RevokeControlInstructionRequest>,
    ) -> Result<Response<pb::ControlInstruction>, Status> {
        let message = request.into_inner();
        if message.reason.trim().is_empty() {
            return Err(Error::invalid("reason", "REQUIRED", "a revocation needs a reason").into());
        }
        let record = self
            .risk
            .revoke_instruction(message.instruction_id.trim(), message.reason.trim())
            .await?;
        Ok(Response::new(instruction_message(record)))
    }
}
