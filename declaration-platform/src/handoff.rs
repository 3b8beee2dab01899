//! The relay that delivers the outbox's hand-offs: screening by the risk platform and,
//! for YELLOW and RED lanes, the review sub-centre's queue; change requests to the
//! sub-centre that decides them; summary-tax-payment restrictions at the field
//! platform. Receivers are idempotent, so a delivery may be repeated safely.

use customs_common::{
    Error, Result,
    background::Background,
    clients::{Peer, ServiceCredentials},
    day::{beijing_day, today},
    outbox::Delivery,
};
use customs_proto::{
    common::{DeclarationContent, Lane},
    field::{
        HolderRestriction, SetHolderRestrictionRequest,
        guarantee_service_client::GuaranteeServiceClient,
    },
    review::{
        DrawDownLicenceRequest, EnqueueDeclarationRequest, ItemValue, ReturnLicenceDrawRequest,
        TaskKind, review_service_client::ReviewServiceClient,
        ruling_service_client::RulingServiceClient,
    },
    risk::{ScreenDeclarationRequest, risk_service_client::RiskServiceClient},
};
use tonic::{Code, Status};

use crate::{
    changes::ChangeRequests,
    declarations::{Declarations, transition},
    domain::lifecycle::Stage,
    outbox::{Job, Outbox},
};

const ACTOR: &str = "risk-platform";

#[derive(Debug, Clone)]
pub struct Relay {
    pub outbox: Outbox,
    pub declarations: Declarations,
    pub changes: ChangeRequests,
    pub risk: Peer,
    pub review: Peer,
    pub field: Peer,
    pub credentials: ServiceCredentials,
}

fn retry(platform: &str, status: &Status) -> Delivery {
    Delivery::Retry(format!(
        "{platform}: {:?} {}",
        status.code(),
        status.message()
    ))
}

fn items(content: &DeclarationContent) -> Vec<ItemValue> {
    content
        .items
        .iter()
        .map(|item| ItemValue {
            line_no: item.line_no,
            hs_code: item.hs_code.clone(),
            declared_value: item.declared_value.clone(),
        })
        .collect()
}

impl Relay {
    /// Runs until the process stops.
    pub fn spawn(self, background: &Background) {
        let outbox = self.outbox.clone();
        outbox.spawn_relay(background, move |job| {
            let relay = self.clone();
            async move { relay.deliver(job).await }
        });
    }

    async fn deliver(&self, job: Job) -> Result<Delivery> {
        match job {
            Job::ScreenDeclaration {
                declaration_number,
                revision,
            } => self.screen(&declaration_number, revision).await,
            Job::HolderRestriction {
                holder,
                discredited,
            } => self.restrict(&holder, discredited).await,
            Job::ForwardChangeRequest { change_request_id } => {
                self.forward(&change_request_id).await
            }
            Job::ReturnLicenceDraws {
                declaration_number,
                ruling_ids,
            } => self.return_draws(&declaration_number, &ruling_ids).await,
            Job::RestoreLicenceDraws {
                declaration_number,
                house_code,
                held,
                returned,
            } => {
                self.restore_draws(&declaration_number, &house_code, &held, &returned)
                    .await
            }
        }
    }

    /// Brings what a declaration holds of each licence in `held` back to the quantity
    /// given (drawn in place of what it holds, which is at least that: only a reduction),
    /// and gives back what it holds of those `returned`.
    async fn restore_draws(
        &self,
        number: &str,
        house: &str,
        held: &[(String, String)],
        returned: &[String],
    ) -> Result<Delivery> {
        for (id, quantity) in held {
            let request = DrawDownLicenceRequest {
                request_id: format!("{number}:restore:{id}"),
                ruling_id: id.clone(),
                quantity: quantity.clone(),
                declaration_number: number.to_owned(),
                house_code: house.to_owned(),
                replaces_earlier_draw: true,
            };
            match RulingServiceClient::new(self.review.clone())
                .draw_down_licence(self.credentials.request(request)?)
                .await
            {
                Ok(_) => {}
                // Revoked, out of force or no longer registered: nothing to draw on.
                Err(status)
                    if matches!(status.code(), Code::NotFound | Code::FailedPrecondition) =>
                {
                    tracing::warn!(declaration = number, ruling = %id, reason = status.message(), "licence draw not brought back to the declaration's content; left as reserved");
                }
                Err(status) => return Ok(retry("review platform", &status)),
            }
        }
        if !held.is_empty() {
            tracing::info!(declaration = number, licences = ?held, "licence draws brought back to the declaration's content");
        }
        if returned.is_empty() {
            return Ok(Delivery::Done);
        }
        self.return_draws(number, returned).await
    }

    /// Gives back what a declaration drew of each licence, when it is cancelled or its
    /// content replaced by a modification (the review platform gives a draw back once,
    /// and nothing when there was none).
    async fn return_draws(&self, number: &str, ruling_ids: &[String]) -> Result<Delivery> {
        for id in ruling_ids {
            let request = ReturnLicenceDrawRequest {
                ruling_id: id.clone(),
                declaration_number: number.to_owned(),
            };
            match RulingServiceClient::new(self.review.clone())
                .return_licence_draw(self.credentials.request(request)?)
                .await
            {
                Ok(_) => {}
                Err(status) if status.code() == Code::NotFound => {
                    tracing::warn!(declaration = number, ruling = %id, "cited licence unknown; nothing to give back");
                }
                Err(status) => return Ok(retry("review platform", &status)),
            }
        }
        tracing::info!(declaration = number, licences = ?ruling_ids, "licence draws given back");
        Ok(Delivery::Done)
    }

    /// Screens revision `revision` of a declaration (0 as submitted, n after its n-th
    /// approved modification) and hands a YELLOW or RED one to review.
    async fn screen(&self, number: &str, revision: u32) -> Result<Delivery> {
        // A revision's own request ids, so that the receivers take it as new.
        let id = |what: &str| match revision {
            0 => format!("{what}-{number}"),
            n => format!("{what}-{number}-r{n}"),
        };
        let mut record = self.declarations.get(number).await?;
        if record.stage == Stage::Submitted {
            let content = Declarations::content(&record)?;
            let request = ScreenDeclarationRequest {
                request_id: id("screen"),
                declaration_number: number.to_owned(),
                content: Some(content),
                // The day it counts as made is Beijing's.
                declaration_date: Some(beijing_day(record.submitted_at).into()),
                revision,
            };
            let house = record.handling_house.clone();
            match RiskServiceClient::new(self.risk.clone())
                .screen_declaration(self.credentials.request(request)?)
                .await
            {
                Ok(response) => {
                    let decision = response.into_inner();
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
                    // Accepted and its lane in one transaction.
                    let accepted =
                        transition(Stage::Accepted, ACTOR, &house, "logic checks passed");
                    record = self
                        .declarations
                        .advance(record, vec![accepted, lane_decided])
                        .await?;
                }
                Err(status) if status.code() == Code::InvalidArgument => {
                    self.declarations
                        .advance(
                            record,
                            vec![transition(Stage::Refused, ACTOR, &house, status.message())],
                        )
                        .await?;
                    return Ok(Delivery::Done);
                }
                Err(status) => return Ok(retry("risk platform", &status)),
            }
        }
        // YELLOW and RED go to the review sub-centre (also when a crash came between
        // the lane decision and this hand-off).
        if record.stage != Stage::LaneDecided || !matches!(record.lane.as_str(), "YELLOW" | "RED") {
            return Ok(Delivery::Done);
        }
        let content = Declarations::content(&record)?;
        let request = EnqueueDeclarationRequest {
            request_id: id("review"),
            declaration_number: number.to_owned(),
            lane: Lane::from_str_name(&format!("LANE_{}", record.lane)).unwrap_or_default() as i32,
            items: items(&content),
            kind: TaskKind::DeclarationReview as i32,
            change_request_id: String::new(),
        };
        match ReviewServiceClient::new(self.review.clone())
            .enqueue_declaration(self.credentials.request(request)?)
            .await
        {
            Ok(_) => Ok(Delivery::Done),
            Err(status) if status.code() == Code::InvalidArgument => {
                Err(Error::internal(anyhow::anyhow!(
                    "the review platform refused declaration {number}: {}",
                    status.message()
                )))
            }
            Err(status) => Ok(retry("review platform", &status)),
        }
    }

    async fn forward(&self, id: &str) -> Result<Delivery> {
        let change = self.changes.get(id).await?;
        let record = self.declarations.get(&change.declaration_number).await?;
        let content = Declarations::content(&record)?;
        let kind = if change.kind == "MODIFICATION" {
            TaskKind::Modification
        } else {
            TaskKind::Cancellation
        };
        let request = EnqueueDeclarationRequest {
            request_id: format!("change-{id}"),
            declaration_number: record.declaration_number.clone(),
            lane: Lane::from_str_name(&format!("LANE_{}", record.lane)).unwrap_or_default() as i32,
            items: items(&content),
            kind: kind as i32,
            change_request_id: id.to_owned(),
        };
        match ReviewServiceClient::new(self.review.clone())
            .enqueue_declaration(self.credentials.request(request)?)
            .await
        {
            Ok(_) => Ok(Delivery::Done),
            Err(status) if status.code() == Code::InvalidArgument => {
                Err(Error::internal(anyhow::anyhow!(
                    "the review platform refused change request {id}: {}",
                    status.message()
                )))
            }
            Err(status) => Ok(retry("review platform", &status)),
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
            Err(status) => Ok(retry("field platform", &status)),
        }
    }
}
