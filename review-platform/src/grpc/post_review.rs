//! `customs.review.v1.PostReviewService`.

use customs_common::{
    Error, Violations,
    auth::Caller,
    codes::parse_declaration_number,
    money::{fen_to_string, parse_amount, to_fen},
};
use customs_proto::{
    common::Money,
    convert::{instant, timestamp},
    review::{self as pb, post_review_service_server::PostReviewService as PostReviewServiceApi},
};
use time::OffsetDateTime;
use tonic::{Request, Response, Status};

use crate::{
    domain::post_review::parse_post_review_house, post_review::PostReview,
    storage::post_review::FindingRecord,
};

#[derive(Debug, Clone)]
pub struct PostReviewService {
    post_review: PostReview,
}

impl PostReviewService {
    pub fn new(post_review: PostReview) -> Self {
        Self { post_review }
    }
}

fn cny(fen: i64) -> Option<Money> {
    Some(Money {
        currency_code: "CNY".into(),
        amount: fen_to_string(fen),
    })
}

fn finding_kind(kind: pb::FindingKind) -> Option<&'static str> {
    match kind {
        pb::FindingKind::Unspecified => None,
        pb::FindingKind::None => Some("NONE"),
        pb::FindingKind::Classification => Some("CLASSIFICATION"),
        pb::FindingKind::Valuation => Some("VALUATION"),
        pb::FindingKind::Origin => Some("ORIGIN"),
        pb::FindingKind::Quantity => Some("QUANTITY"),
    }
}

fn finding_message(finding: FindingRecord) -> pb::Finding {
    pb::Finding {
        finding_id: finding.id,
        batch_id: finding.batch_id,
        declaration_number: finding.declaration_number,
        kind: pb::FindingKind::from_str_name(&format!("FINDING_KIND_{}", finding.kind))
            .unwrap_or_default() as i32,
        description: finding.description,
        extra_duty: cny(finding.extra_duty_fen),
        recorded_at: Some(timestamp(finding.recorded_at)),
        recorded_by: finding.recorded_by,
    }
}

fn instant_of(
    field: &str,
    value: Option<&prost_types::Timestamp>,
) -> Result<Option<OffsetDateTime>, Error> {
    value
        .map(|t| {
            instant(t)
                .ok_or_else(|| Error::invalid(field, "TIMESTAMP_INVALID", "not a valid instant"))
        })
        .transpose()
}

#[tonic::async_trait]
impl PostReviewServiceApi for PostReviewService {
    async fn draw_batch(
        &self,
        request: Request<pb::DrawBatchRequest>,
    ) -> Result<Response<pb::PostReviewBatch>, Status> {
        let caller = Caller::of(&request)?.clone();
        let message = request.into_inner();
        let house =
            parse_post_review_house("house_code", &message.house_code).map_err(Error::from)?;
        let max_size = match message.max_size {
            0 => 50,
            n @ 1..=500 => n as usize,
            _ => {
                return Err(Error::invalid(
                    "max_size",
                    "OUT_OF_RANGE",
                    "a batch holds 1 to 500 declarations",
                )
                .into());
            }
        };
        let after = instant_of("released_after", message.released_after.as_ref())?;
        let before = instant_of("released_before", message.released_before.as_ref())?;
        if let (Some(after), Some(before)) = (after, before)
            && after >= before
        {
            return Err(Error::invalid(
                "released_before",
                "PERIOD_INVALID",
                "the period's end must be later than its start (released_after)",
            )
            .into());
        }
        let batch = self
            .post_review
            .draw_batch(&caller, &house, max_size, after, before)
            .await?;
        Ok(Response::new(pb::PostReviewBatch {
            batch_id: batch.id,
            house_code: batch.house_code,
            declaration_numbers: batch.declaration_numbers,
            drawn_at: Some(timestamp(batch.drawn_at)),
        }))
    }

    async fn record_finding(
        &self,
        request: Request<pb::RecordFindingRequest>,
    ) -> Result<Response<pb::Finding>, Status> {
        let caller = Caller::of(&request)?.clone();
        let message = request.into_inner();
        let finding = message.finding.unwrap_or_default();
        let mut violations = Violations::new();
        if message.request_id.trim().is_empty() {
            violations.push("request_id", "REQUIRED", "a client request id is required");
        }
        if finding.batch_id.trim().is_empty() {
            violations.push(
                "finding.batch_id",
                "REQUIRED",
                "the batch the declaration was drawn in",
            );
        }
        let number = violations.keep(parse_declaration_number(
            "finding.declaration_number",
            &finding.declaration_number,
        ));
        let kind = finding_kind(finding.kind());
        if kind.is_none() {
            violations.push(
                "finding.kind",
                "REQUIRED",
                "NONE, CLASSIFICATION, VALUATION, ORIGIN or QUANTITY",
            );
        }
        let duty = finding.extra_duty.clone().unwrap_or_else(|| Money {
            currency_code: "CNY".into(),
            amount: "0".into(),
        });
        if duty.currency_code != "CNY" {
            violations.push(
                "finding.extra_duty.currency_code",
                "CURRENCY_NOT_CNY",
                "extra duty is stated in CNY",
            );
        }
        let fen = violations
            .keep(parse_amount("finding.extra_duty.amount", &duty.amount))
            .and_then(|amount| violations.keep(to_fen("finding.extra_duty.amount", amount)));
        if kind == Some("NONE") && fen.is_some_and(|fen| fen > 0) {
            violations.push(
                "finding.extra_duty.amount",
                "NO_FINDING_NO_DUTY",
                "a re-review that found nothing finds no extra duty",
            );
        }
        violations.into_result()?;
        let (Some(number), Some(kind), Some(fen)) = (number, kind, fen) else {
            return Err(
                Error::internal(anyhow::anyhow!("validation passed with a field missing")).into(),
            );
        };
        let record = FindingRecord {
            id: format!("F{}", uuid::Uuid::now_v7().simple()).to_ascii_uppercase(),
            request_id: message.request_id.trim().to_owned(),
            batch_id: finding.batch_id.trim().to_owned(),
            declaration_number: number,
            kind: kind.to_owned(),
            description: finding.description.trim().to_owned(),
            extra_duty_fen: fen,
            sub_centre: String::new(),
            recorded_at: OffsetDateTime::now_utc(),
            recorded_by: caller.subject.clone(),
        };
        let stored = self.post_review.record_finding(&caller, record).await?;
        Ok(Response::new(finding_message(stored)))
    }

    async fn get_quality_report(
        &self,
        request: Request<pb::GetQualityReportRequest>,
    ) -> Result<Response<pb::QualityReport>, Status> {
        let message = request.into_inner();
        let start = instant_of("period_start", message.period_start.as_ref())?;
        let end = instant_of("period_end", message.period_end.as_ref())?;
        let (Some(start), Some(end)) = (start, end) else {
            return Err(Error::invalid(
                "period_start",
                "REQUIRED",
                "a period has a start and an end",
            )
            .into());
        };
        if end <= start {
            return Err(Error::invalid(
                "period_end",
                "PERIOD_EMPTY",
                "the period ends after it starts",
            )
            .into());
        }
        let evaluations = self.post_review.quality_report(start, end).await?;
        let total: i64 = evaluations.iter().map(|e| e.extra_duty_fen).sum();
        Ok(Response::new(pb::QualityReport {
            period_start: Some(timestamp(start)),
            period_end: Some(timestamp(end)),
            sub_centres: evaluations
                .into_iter()
                .map(|e| pb::SubCentreEvaluation {
                    sub_centre: e.sub_centre,
                    tasks_concluded: e.tasks_concluded,
                    conclude_seconds_p50: e.conclude_seconds_p50,
                    conclude_seconds_p90: e.conclude_seconds_p90,
                    return_rate: e.return_rate.to_string(),
                    findings_rate: e.findings_rate.to_string(),
                    extra_duty: cny(e.extra_duty_fen),
                })
                .collect(),
            total_extra_duty: cny(total),
        }))
    }
}
