//! Enterprises and brokers: registered once, known to all seven houses.

use customs_common::{Error, Result, day::today};
use time::Date;

use crate::{
    domain::enterprise::{CreditClass, NewEnterprise},
    outbox::{Job, Outbox},
    storage::enterprises::{EnterpriseFilter, EnterpriseRecord, EnterpriseRepository},
};

#[derive(Debug, Clone)]
pub struct Enterprises {
    repository: EnterpriseRepository,
    outbox: Outbox,
}

fn unknown(code: &str) -> Error {
    Error::not_found(
        "ENTERPRISE_NOT_FOUND",
        format!("no enterprise {code} is registered"),
    )
}

impl Enterprises {
    pub fn new(repository: EnterpriseRepository, outbox: Outbox) -> Self {
        Self { repository, outbox }
    }

    pub async fn register(
        &self,
        request_id: &str,
        enterprise: NewEnterprise,
    ) -> Result<EnterpriseRecord> {
        let code = enterprise.code.clone();
        let discredited = enterprise.credit_class == CreditClass::Discredited;
        match self.repository.insert(request_id, &enterprise).await? {
            Some((record, created)) => {
                if created {
                    tracing::info!(enterprise = %record.code, kind = record.kind.as_str(), house = %record.home_house, "enterprise registered");
                    if discredited {
                        self.outbox
                            .enqueue(&Job::HolderRestriction {
                                holder: code,
                                discredited: true,
                            })
                            .await?;
                    }
                }
                Ok(record)
            }
            None => Err(Error::already_exists(
                "ENTERPRISE_ALREADY_REGISTERED",
                format!("enterprise {code} is already registered"),
            )),
        }
    }

    pub async fn get(&self, code: &str) -> Result<EnterpriseRecord> {
        self.repository
            .get(code)
            .await?
            .ok_or_else(|| unknown(code))
    }

    pub async fn list(&self, filter: &EnterpriseFilter) -> Result<Vec<EnterpriseRecord>> {
        self.repository.list(filter).await
    }

    /// Changes the credit class from `effective_from`; becoming or ceasing to be
    /// DISCREDITED is handed to the field platform (summary tax payment eligibility).
    pub async fn change_credit_class(
        &self,
        code: &str,
        class: CreditClass,
        effective_from: Date,
        reason: &str,
    ) -> Result<EnterpriseRecord> {
        let before = self.get(code).await?;
        if !self
            .repository
            .change_credit_class(code, class, effective_from, reason)
            .await?
        {
            return Err(unknown(code));
        }
        let after = self.get(code).await?;
        tracing::info!(enterprise = code, from = before.credit_class.as_str(), to = class.as_str(), %effective_from, reason, "credit class changed");
        let was = before.credit_class == CreditClass::Discredited;
        let is = after.credit_class == CreditClass::Discredited;
        if was != is && effective_from <= today() {
            self.outbox
                .enqueue(&Job::HolderRestriction {
                    holder: code.to_owned(),
                    discredited: is,
                })
                .await?;
        }
        Ok(after)
    }

    pub async fn set_suspended(
        &self,
        code: &str,
        suspended: bool,
        reason: &str,
    ) -> Result<EnterpriseRecord> {
        if !self
            .repository
            .set_suspended(code, suspended, reason)
            .await?
        {
            return Err(unknown(code));
        }
        tracing::info!(
            enterprise = code,
            suspended,
            reason,
            "enterprise suspension changed"
        );
        self.get(code).await
    }
}
