//! Post-clearance batch re-review (DOMAIN.md 5.3): draw released declarations from
//! the declaration platform, record findings, and evaluate each sub-centre.

use std::{collections::BTreeMap, sync::Arc};

use customs_common::{
    Error, Result,
    auth::{Caller, Role},
    clients::{Peer, ServiceCredentials},
    codes::directly_under_house,
    day::today,
};
use customs_proto::{
    common::{DeclarationStage, Lane, TimelineNote},
    convert::instant,
    declaration::{
        Declaration, ListDeclarationsRequest, declaration_service_client::DeclarationServiceClient,
    },
};
use rust_decimal::Decimal;
use time::OffsetDateTime;

use crate::{
    domain::{
        post_review::{house_of, is_drawn},
        quality::{Evaluation, FindingFact, Outcome, evaluate},
        routing::{RoutedItem, to_cny},
    },
    reviews::Reviews,
    storage::{
        post_review::{Batch, DrawnItem, FindingRecord, PostReviewRepository},
        tasks::TaskRepository,
    },
};

#[derive(Debug, Clone)]
pub struct PostReview {
    pub repository: PostReviewRepository,
    pub tasks: TaskRepository,
    pub reviews: Reviews,
    pub declaration: Peer,
    pub credentials: ServiceCredentials,
    pub seed: String,
    pub share: Decimal,
    pub rates: Arc<BTreeMap<String, Decimal>>,
}

/// A released declaration as the draw sees it.
struct Released {
    declaration: Declaration,
    released_at: OffsetDateTime,
}

fn may_act_for(caller: &Caller, house: &str) -> Result<()> {
    if caller.role == Role::Admin || directly_under_house(&caller.house) == house {
        Ok(())
    } else {
        Err(Error::permission_denied(
            "BATCH_OF_ANOTHER_HOUSE",
            format!("re-review for {house} is done by {house}'s officers"),
        ))
    }
}

impl PostReview {
    /// Released (and exited) declarations, with the time of release.
    async fn released(&self) -> Result<Vec<Released>> {
        let mut found = Vec::new();
        for stage in [DeclarationStage::Released, DeclarationStage::Exited] {
            let mut page_token = String::new();
            loop {
                let request = ListDeclarationsRequest {
                    page_size: 500,
                    page_token: page_token.clone(),
                    stage: stage as i32,
                    ..Default::default()
                };
                let page = DeclarationServiceClient::new(self.declaration.clone())
                    .list_declarations(self.credentials.request(request)?)
                    .await
                    .map_err(|status| {
                        Error::unavailable(
                            "DECLARATION_PLATFORM_UNAVAILABLE",
                            format!("cannot list released declarations: {}", status.message()),
                        )
                    })?
                    .into_inner();
                for declaration in page.declarations {
                    let released_at = declaration
                        .events
                        .iter()
                        .rev()
                        // The release itself, not a note made at that stage.
                        .find(|event| {
                            event.to_stage() == DeclarationStage::Released
                                && event.note() == TimelineNote::Unspecified
                        })
                        .and_then(|event| event.occurred_at.as_ref())
                        .and_then(instant);
                    if let Some(released_at) = released_at {
                        found.push(Released {
                            declaration,
                            released_at,
                        });
                    }
                }
                if page.next_page_token.is_empty() {
                    break;
                }
                page_token = page.next_page_token;
            }
        }
        Ok(found)
    }

    /// The sub-centre a declaration's review belongs to: the one that reviewed it, or
    /// the one its items route to.
    async fn sub_centre(&self, declaration: &Declaration) -> Result<String> {
        if !declaration.review_sub_centre.is_empty() {
            return Ok(declaration.review_sub_centre.clone());
        }
        let content = declaration.content.clone().unwrap_or_default();
        let mut items = Vec::with_capacity(content.items.len());
        for (index, item) in content.items.iter().enumerate() {
            let value = item.declared_value.clone().unwrap_or_default();
            let amount: Decimal = value.amount.parse().unwrap_or_default();
            let value_cny = to_cny(
                &format!("items[{index}]"),
                &value.currency_code,
                amount,
                &self.rates,
            )
            .map_err(|violation| Error::internal(anyhow::anyhow!("{}", violation.description)))?;
            items.push(RoutedItem {
                line_no: item.line_no,
                hs_code: item.hs_code.clone(),
                value_cny,
            });
        }
        Ok(self.reviews.route(&items, today()).await?.sub_centre)
    }

    pub async fn draw_batch(
        &self,
        caller: &Caller,
        house: &str,
        max_size: usize,
        after: Option<OffsetDateTime>,
        before: Option<OffsetDateTime>,
    ) -> Result<Batch> {
        may_act_for(caller, house)?;
        let mut candidates: Vec<Released> = self
            .released()
            .await?
            .into_iter()
            .filter(|r| after.is_none_or(|after| r.released_at >= after))
            .filter(|r| before.is_none_or(|before| r.released_at < before))
            .filter(|r| {
                let number = &r.declaration.declaration_number;
                let lane = r
                    .declaration
                    .lane()
                    .as_str_name()
                    .trim_start_matches("LANE_");
                house_of(&self.seed, number) == house
                    && is_drawn(&self.seed, self.share, number, lane)
            })
            .collect();
        let numbers: Vec<String> = candidates
            .iter()
            .map(|r| r.declaration.declaration_number.clone())
            .collect();
        let drawn = self.repository.already_drawn(&numbers).await?;
        candidates.retain(|r| !drawn.contains(&r.declaration.declaration_number));
        candidates.sort_by_key(|r| r.released_at);
        candidates.truncate(max_size);
        if candidates.is_empty() {
            return Err(Error::failed_precondition(
                "NOTHING_TO_DRAW",
                format!(
                    "no released declaration of the period is waiting for re-review at {house}"
                ),
            ));
        }
        let mut items = Vec::with_capacity(candidates.len());
        for r in &candidates {
            items.push(DrawnItem {
                declaration_number: r.declaration.declaration_number.clone(),
                sub_centre: self.sub_centre(&r.declaration).await?,
                lane: r
                    .declaration
                    .lane()
                    .as_str_name()
                    .trim_start_matches("LANE_")
                    .to_owned(),
            });
        }
        let id = format!("PB{}", uuid::Uuid::now_v7().simple()).to_ascii_uppercase();
        let batch = self
            .repository
            .insert_batch(&id, house, &caller.subject, &items)
            .await?;
        tracing::info!(batch = %batch.id, house, drawn = batch.declaration_numbers.len(), blue = items.iter().filter(|i| i.lane == Lane::Blue.as_str_name().trim_start_matches("LANE_")).count(), "post-clearance batch drawn");
        Ok(batch)
    }

    pub async fn record_finding(
        &self,
        caller: &Caller,
        mut finding: FindingRecord,
    ) -> Result<FindingRecord> {
        let (house, item) = self
            .repository
            .item(&finding.batch_id, &finding.declaration_number)
            .await?
            .ok_or_else(|| {
                Error::not_found(
                    "NOT_IN_BATCH",
                    format!(
                        "declaration {} is not in batch {}",
                        finding.declaration_number, finding.batch_id
                    ),
                )
            })?;
        may_act_for(caller, &house)?;
        finding.sub_centre = item.sub_centre;
        let stored = self.repository.insert_finding(&finding).await?;
        tracing::info!(finding = %stored.id, declaration = %stored.declaration_number, kind = %stored.kind, extra_duty_fen = stored.extra_duty_fen, "post-clearance finding recorded");
        Ok(stored)
    }

    pub async fn quality_report(
        &self,
        start: OffsetDateTime,
        end: OffsetDateTime,
    ) -> Result<Vec<Evaluation>> {
        let outcomes: Vec<Outcome> = self
            .tasks
            .outcomes(start, end)
            .await?
            .into_iter()
            .map(|row| Outcome {
                returned: row.action == "return",
                seconds: (row.occurred_at - row.enqueued_at).whole_seconds(),
                sub_centre: row.sub_centre,
            })
            .collect();
        let findings: Vec<FindingFact> = self
            .repository
            .findings(start, end)
            .await?
            .into_iter()
            .map(|f| FindingFact {
                found: f.kind != "NONE",
                sub_centre: f.sub_centre,
                declaration_number: f.declaration_number,
                extra_duty_fen: f.extra_duty_fen,
            })
            .collect();
        Ok(evaluate(&outcomes, &findings))
    }
}
