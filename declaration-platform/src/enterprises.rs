//! Enterprises and brokers: registered once, known to all seven houses.

use std::time::Duration;

use std::sync::Arc;

use customs_common::{Error, Result, background::Background, credit::CreditSchemes, day::today};
use time::Date;

use crate::{
    domain::enterprise::NewEnterprise,
    outbox::Outbox,
    storage::enterprises::{EnterpriseFilter, EnterpriseRecord, EnterpriseRepository},
};

/// How often credit-class changes dated in the future are looked for: a change takes
/// effect within this of midnight (Beijing) on its day.
const CREDIT_CLASS_CHECK_EVERY: Duration = Duration::from_secs(60);

#[derive(Debug, Clone)]
pub struct Enterprises {
    repository: EnterpriseRepository,
    outbox: Outbox,
    schemes: Arc<CreditSchemes>,
}

fn unknown(code: &str) -> Error {
    Error::not_found(
        "ENTERPRISE_NOT_FOUND",
        format!("no enterprise {code} is registered"),
    )
}

impl Enterprises {
    pub fn new(
        repository: EnterpriseRepository,
        outbox: Outbox,
        schemes: Arc<CreditSchemes>,
    ) -> Self {
        Self {
            repository,
            outbox,
            schemes,
        }
    }

    /// The credit schemes classes are checked against.
    pub fn schemes(&self) -> &CreditSchemes {
        &self.schemes
    }

    pub async fn register(
        &self,
        request_id: &str,
        enterprise: NewEnterprise,
    ) -> Result<EnterpriseRecord> {
        let code = enterprise.code.clone();
        let barred = !self.schemes.summary_tax_payment(&enterprise.credit_class);
        match self.repository.insert(request_id, &enterprise).await? {
            Some((record, created)) => {
                if created {
                    tracing::info!(enterprise = %record.code, kind = record.kind.as_str(), house = %record.home_house, "enterprise registered");
                    if barred {
                        self.outbox.wake();
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

    /// Changes the credit class from `effective_from` (today's Beijing date or later
    /// takes effect on that day); `class` is one of the scheme in force on that day.
    /// Gaining or losing summary tax payment (DISCREDITED) is handed to the field
    /// platform when it takes effect.
    pub async fn change_credit_class(
        &self,
        code: &str,
        class: &str,
        effective_from: Date,
        reason: &str,
    ) -> Result<EnterpriseRecord> {
        let today = today();
        let Some(changed) = self
            .repository
            .change_credit_class(code, class, effective_from, reason, today)
            .await?
        else {
            return Err(unknown(code));
        };
        tracing::info!(enterprise = code, to = class, %effective_from, reason, in_force_now = effective_from <= today, "credit class change recorded");
        if changed {
            self.outbox.wake();
        }
        self.get(code).await
    }

    /// Applies, every minute (the first time at start-up), the credit-class changes
    /// that came into force since they were recorded (dated in the future then), and a
    /// credit scheme that came into force: its dropped classes carried over.
    pub fn spawn_credit_class_watch(&self, background: &Background) {
        let enterprises = self.clone();
        let stop = background.clone();
        background.spawn(async move {
            while !stop.is_stopping() {
                match enterprises
                    .repository
                    .apply_due_credit_classes(today())
                    .await
                {
                    Ok(changed) if !changed.is_empty() => enterprises.outbox.wake(),
                    Ok(_) => {}
                    Err(error) => {
                        tracing::error!(%error, "cannot apply credit-class changes now in force")
                    }
                }
                stop.pause(CREDIT_CLASS_CHECK_EVERY).await;
            }
        });
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
