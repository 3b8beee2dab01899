//! `customs.declaration.v1.EnterpriseService`.

use customs_common::{
    Error, Violations,
    auth::{Caller, Role},
    codes::parse_enterprise_code,
    day::today,
    paging::{next_page_token, page_limit},
};
use customs_proto::{
    convert::{credit_class_enum, credit_class_field, requested_credit_class, timestamp},
    declaration::{
        self as pb, enterprise_service_server::EnterpriseService as EnterpriseServiceApi,
    },
};
use tonic::{Request, Response, Status};

use super::missing_field;
use crate::{
    domain::enterprise::{EnterpriseKind, NewEnterprise, RequestedClass},
    enterprises::Enterprises,
    storage::enterprises::{EnterpriseFilter, EnterpriseRecord},
};

#[derive(Debug, Clone)]
pub struct EnterpriseService {
    enterprises: Enterprises,
}

impl EnterpriseService {
    pub fn new(enterprises: Enterprises) -> Self {
        Self { enterprises }
    }
}

fn kind_from_proto(kind: pb::EnterpriseKind) -> Option<EnterpriseKind> {
    match kind {
        pb::EnterpriseKind::Unspecified => None,
        pb::EnterpriseKind::Trader => Some(EnterpriseKind::Trader),
        pb::EnterpriseKind::Broker => Some(EnterpriseKind::Broker),
    }
}

fn enterprise_message(record: EnterpriseRecord) -> pb::Enterprise {
    pb::Enterprise {
        code: record.code,
        name: record.name,
        kind: match record.kind {
            EnterpriseKind::Trader => pb::EnterpriseKind::Trader,
            EnterpriseKind::Broker => pb::EnterpriseKind::Broker,
        } as i32,
        credit_class: credit_class_enum(&record.credit_class) as i32,
        credit_class_code: record.credit_class,
        home_house: record.home_house,
        suspended: record.suspended,
        suspension_reason: record.suspension_reason,
        registered_at: Some(timestamp(record.registered_at)),
        updated_at: Some(timestamp(record.updated_at)),
    }
}

fn code(field: &str, value: &str) -> Result<String, Status> {
    Ok(parse_enterprise_code(field, value).map_err(Error::from)?)
}

fn reason(value: &str) -> Result<&str, Status> {
    let value = value.trim();
    if value.is_empty() {
        return Err(Error::invalid("reason", "REQUIRED", "a reason is required").into());
    }
    Ok(value)
}

#[tonic::async_trait]
impl EnterpriseServiceApi for EnterpriseService {
    async fn register_enterprise(
        &self,
        request: Request<pb::RegisterEnterpriseRequest>,
    ) -> Result<Response<pb::Enterprise>, Status> {
        let message = request.into_inner();
        if message.request_id.trim().is_empty() {
            return Err(Error::invalid(
                "request_id",
                "REQUIRED",
                "a client request id is required",
            )
            .into());
        }
        let enterprise = NewEnterprise::parse(
            &message.code,
            &message.name,
            kind_from_proto(message.kind()),
            RequestedClass {
                field: credit_class_field(&message.credit_class_code),
                named: requested_credit_class(message.credit_class, &message.credit_class_code),
                day: today(),
                schemes: self.enterprises.schemes(),
            },
            &message.home_house,
        )?;
        let record = self
            .enterprises
            .register(message.request_id.trim(), enterprise)
            .await?;
        Ok(Response::new(enterprise_message(record)))
    }

    async fn get_enterprise(
        &self,
        request: Request<pb::GetEnterpriseRequest>,
    ) -> Result<Response<pb::Enterprise>, Status> {
        let caller = Caller::of(&request)?.clone();
        let code = code("code", &request.get_ref().code)?;
        if matches!(caller.role, Role::Enterprise)
            && caller.enterprise.as_deref() != Some(code.as_str())
        {
            return Err(Error::permission_denied(
                "ENTERPRISE_NOT_YOURS",
                "an enterprise may read only itself",
            )
            .into());
        }
        Ok(Response::new(enterprise_message(
            self.enterprises.get(&code).await?,
        )))
    }

    async fn list_enterprises(
        &self,
        request: Request<pb::ListEnterprisesRequest>,
    ) -> Result<Response<pb::ListEnterprisesResponse>, Status> {
        let message = request.into_inner();
        let mut violations = Violations::new();
        let after = (!message.page_token.is_empty())
            .then(|| violations.keep(parse_enterprise_code("page_token", &message.page_token)))
            .flatten();
        violations.into_result()?;
        let limit = page_limit(message.page_size)?;
        let filter = EnterpriseFilter {
            kind: kind_from_proto(message.kind()),
            home_house: (!message.home_house.is_empty()).then(|| message.home_house.clone()),
            after,
            limit: limit + 1,
        };
        let mut found = self.enterprises.list(&filter).await?;
        let next_page_token = next_page_token(&mut found, limit, |e| e.code.clone());
        Ok(Response::new(pb::ListEnterprisesResponse {
            enterprises: found.into_iter().map(enterprise_message).collect(),
            next_page_token,
        }))
    }

    async fn update_credit_class(
        &self,
        request: Request<pb::UpdateCreditClassRequest>,
    ) -> Result<Response<pb::Enterprise>, Status> {
        let message = request.into_inner();
        let mut violations = Violations::new();
        let code = violations.keep(parse_enterprise_code("code", &message.code));
        let effective_from = match &message.effective_from {
            None => Some(today()),
            Some(date) => violations.keep(time::Date::try_from(date).map_err(|_| {
                customs_common::error::FieldViolation::new(
                    "effective_from",
                    "DATE_INVALID",
                    "not a calendar day",
                )
            })),
        };
        // A class of the scheme in force on the day it takes effect.
        let class = effective_from.and_then(|day| {
            RequestedClass {
                field: credit_class_field(&message.credit_class_code),
                named: requested_credit_class(message.credit_class, &message.credit_class_code),
                day,
                schemes: self.enterprises.schemes(),
            }
            .check(&mut violations)
        });
        if message.reason.trim().is_empty() {
            violations.push("reason", "REQUIRED", "a reason is required");
        }
        violations.into_result()?;
        let (Some(code), Some(class), Some(effective_from)) = (code, class, effective_from) else {
            return Err(missing_field().into());
        };
        let record = self
            .enterprises
            .change_credit_class(&code, &class, effective_from, message.reason.trim())
            .await?;
        Ok(Response::new(enterprise_message(record)))
    }

    async fn list_credit_schemes(
        &self,
        _request: Request<pb::ListCreditSchemesRequest>,
    ) -> Result<Response<pb::ListCreditSchemesResponse>, Status> {
        let schemes = self.enterprises.schemes();
        Ok(Response::new(pb::ListCreditSchemesResponse {
            schemes: schemes
                .schemes()
                .iter()
                .map(|scheme| pb::CreditScheme {
                    name: scheme.name.clone(),
                    effective_from: Some(scheme.effective_from.into()),
                    classes: scheme
                        .classes
                        .iter()
                        .map(|class| pb::CreditClassDefinition {
                            code: class.code.clone(),
                            name_zh: class.name_zh.clone(),
                            name_en: class.name_en.clone(),
                            summary_tax_payment: class.summary_tax_payment,
                        })
                        .collect(),
                    carried_over: scheme.carried_over.clone().into_iter().collect(),
                })
                .collect(),
            in_force: schemes
                .in_force(today())
                .map(|scheme| scheme.name.clone())
                .unwrap_or_default(),
        }))
    }

    async fn suspend_enterprise(
        &self,
        request: Request<pb::SuspendEnterpriseRequest>,
    ) -> Result<Response<pb::Enterprise>, Status> {
        let code = code("code", &request.get_ref().code)?;
        let reason = reason(&request.get_ref().reason)?;
        Ok(Response::new(enterprise_message(
            self.enterprises.set_suspended(&code, true, reason).await?,
        )))
    }

    async fn reinstate_enterprise(
        &self,
        request: Request<pb::ReinstateEnterpriseRequest>,
    ) -> Result<Response<pb::Enterprise>, Status> {
        let code = code("code", &request.get_ref().code)?;
        let reason = reason(&request.get_ref().reason)?;
        Ok(Response::new(enterprise_message(
            self.enterprises.set_suspended(&code, false, reason).await?,
        )))
    }
}
