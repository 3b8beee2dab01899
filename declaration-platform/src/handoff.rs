//! The relay that delivers the outbox's hand-offs: screening by the risk platform and
//! summary-tax-payment restrictions at the field platform.

use std::time::Duration;

use customs_common::{Error, Result, clients::ServiceCredentials, day::today};
use customs_proto::{
    field::{
        HolderRestriction, SetHolderRestrictionRequest,
        guarantee_service_client::GuaranteeServiceClient,
    },
    risk::{ScreenDeclarationRequest, risk_service_client::RiskServiceClient},
};
use tonic::{Code, transport::Channel};

use crate::{
    declarations::{Declarations, transition},
    domain::lifecycle::Stage,
    outbox::{Claimed, Job, Outbox, backoff},
};

const ACTOR: &str = "risk-platform";

#[derive(Debug, Clone)]
pub struct Relay {
    pub outbox: Outbox,
    pub declarations: Declarations,
    pub risk: Channel,
    pub field: Channel,
    pub credentials: ServiceCredentials,
}

/// What became of one delivery.
enum Delivery {
    Done,
    Retry(String),
}

impl Relay {
    /// Runs until the process stops.
    pub fn spawn(self) {
        tokio::spawn(async move {
            loop {
                match self.outbox.claim(16).await {
                    Ok(jobs) if !jobs.is_empty() => {
                        for job in jobs {
                            self.deliver(job).await;
                        }
                    }
                    Ok(_) => {
                        tokio::select! {
                            () = self.outbox.woken() => {}
                            () = tokio::time::sleep(Duration::from_millis(500)) => {}
                        }
                    }
                    Err(error) => {
                        tracing::error!(error = %error, "outbox unavailable");
                        tokio::time::sleep(Duration::from_secs(1)).await;
                    }
                }
            }
        });
    }

    async fn deliver(&self, claimed: Claimed) {
        let outcome = match &claimed.job {
            Job::ScreenDeclaration { declaration_number } => self.screen(declaration_number).await,
            Job::HolderRestriction {
                holder,
                discredited,
            } => self.restrict(holder, *discredited).await,
        };
        let recorded = match outcome {
            Ok(Delivery::Done) => self.outbox.done(claimed.id).await,
            Ok(Delivery::Retry(why)) => {
                self.outbox
                    .retry_later(
                        claimed.id,
                        claimed.attempts,
                        &why,
                        backoff(claimed.attempts),
                    )
                    .await
            }
            Err(error) => {
                let why = error.to_string();
                self.outbox
                    .retry_later(
                        claimed.id,
                        claimed.attempts,
                        &why,
                        backoff(claimed.attempts),
                    )
                    .await
            }
        };
        if let Err(error) = recorded {
            tracing::error!(outbox_id = claimed.id, error = %error, "cannot record the hand-off's outcome");
        }
    }

    async fn screen(&self, number: &str) -> Result<Delivery> {
        let record = self.declarations.get(number).await?;
        if record.stage != Stage::Submitted {
            return Ok(Delivery::Done);
        }
        let content = Declarations::content(&record)?;
        let request = ScreenDeclarationRequest {
            request_id: format!("screen-{number}"),
            declaration_number: number.to_owned(),
            content: Some(content),
            declaration_date: Some(record.submitted_at.date().into()),
        };
        let house = record.handling_house.clone();
        match RiskServiceClient::new(self.risk.clone())
            .screen_declaration(self.credentials.request(request)?)
            .await
        {
            Ok(response) => {
                let decision = response.into_inner();
                self.declarations
                    .transition(
                        number,
                        transition(Stage::Accepted, ACTOR, &house, "logic checks passed"),
                    )
                    .await?;
                let lane = decision
                    .lane()
                    .as_str_name()
                    .trim_start_matches("LANE_")
                    .to_owned();
                let mut lane_decided = transition(
                    Stage::LaneDecided,
                    ACTOR,
                    &house,
                    &format!("decision {}", decision.decision_id),
                );
                lane_decided.lane = Some(lane);
                self.declarations.transition(number, lane_decided).await?;
                Ok(Delivery::Done)
            }
            Err(status) if status.code() == Code::InvalidArgument => {
                self.declarations
                    .transition(
                        number,
                        transition(Stage::Refused, ACTOR, &house, status.message()),
                    )
                    .await?;
                Ok(Delivery::Done)
            }
            Err(status) => Ok(Delivery::Retry(format!(
                "risk platform: {:?} {}",
                status.code(),
                status.message()
            ))),
        }
    }

    async fn restrict(&self, holder: &str, discredited: bool) -> Result<Delivery> {
        let request = SetHolderRestrictionRequest {
            holder: holder.to_owned(),
            restriction: HolderRestriction::Discredited as i32,
            active: discredited,
            note: format!("credit class changed on {}", today()),
        };
        match GuaranteeServiceClient::new(self.field.clone())
            .set_holder_restriction(self.credentials.request(request)?)
            .await
        {
            Ok(_) => Ok(Delivery::Done),
            Err(status) if status.code() == Code::InvalidArgument => {
                Err(Error::internal(anyhow::anyhow!(
                    "the field platform refused the restriction for {holder}: {}",
                    status.message()
                )))
            }
            Err(status) => Ok(Delivery::Retry(format!(
                "field platform: {:?} {}",
                status.code(),
                status.message()
            ))),
        }
    }
}
