//! Modification and cancellation (DOMAIN.md 5, step 5): the enterprise asks at the
//! declaring house; the request is forwarded to the sub-centre that reviews the
//! declaration, which decides; an approved change is applied here.

use customs_common::{
    Error, Result,
    auth::Caller,
    clients::{Peer, ServiceCredentials},
    day::beijing_day,
    error::{FieldViolation, violations_of},
};
use customs_proto::{
    common::{DeclarationContent, RulingKind},
    review::{DrawDownLicenceRequest, ruling_service_client::RulingServiceClient},
    risk::{CheckDeclarationRequest, risk_service_client::RiskServiceClient},
};
use prost::Message as _;
use rust_decimal::Decimal;
use time::{Date, OffsetDateTime};
use tonic::Code;
use tonic_types::StatusExt as _;

use crate::{
    declarations::{Declarations, request_id_in_use, transition},
    domain::lifecycle::Stage,
    outbox::{Job, Outbox},
    storage::{
        changes::{ChangeRecord, ChangeRepository},
        declarations::{ChangeDecision, DeclarationRecord, Transition},
    },
};

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ChangeKind {
    Modification,
    Cancellation,
}

impl ChangeKind {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Modification => "MODIFICATION",
            Self::Cancellation => "CANCELLATION",
        }
    }

    fn stage(self) -> Stage {
        match self {
            Self::Modification => Stage::Modified,
            Self::Cancellation => Stage::Cancelled,
        }
    }
}

#[derive(Debug, Clone)]
pub struct ChangeRequests {
    repository: ChangeRepository,
    declarations: Declarations,
    outbox: Outbox,
    checks: LogicChecks,
}

/// The risk platform's logic checks (DOMAIN.md 5.2), which a modification's proposed
/// content passes before it is filed, as the declaration passed them when it was
/// accepted: a sub-centre approves only content that electronic review would accept.
#[derive(Debug, Clone)]
pub struct LogicChecks {
    pub risk: Peer,
    /// The review platform's ruling service, where a modification's approval reserves
    /// the licence quantities it asks for beyond what the declaration holds.
    pub review: Peer,
    pub credentials: ServiceCredentials,
}

impl LogicChecks {
    /// Every violation of `content` as made on `day`, each named under
    /// `proposed_content`. A licence's balance counts what the declaration holds of it
    /// as left for it: that draw is given back before the new content draws.
    async fn proposed(
        &self,
        number: &str,
        content: &DeclarationContent,
        day: Date,
    ) -> Result<Vec<FieldViolation>> {
        let request = self.credentials.request(CheckDeclarationRequest {
            declaration_number: number.to_owned(),
            content: Some(content.clone()),
            declaration_date: Some(day.into()),
        })?;
        match RiskServiceClient::new(self.risk.clone())
            .check_declaration(request)
            .await
        {
            Ok(_) => Ok(Vec::new()),
            Err(status) => match violations_of(&status) {
                Some(violations) => Ok(proposed_content(violations)),
                None => {
                    tracing::warn!(declaration = number, code = ?status.code(), message = status.message(), "logic checks of a proposed modification not made");
                    Err(Error::unavailable(
                        "RISK_PLATFORM_UNAVAILABLE",
                        "the logic checks cannot be made now; the request may be sent again",
                    ))
                }
            },
        }
    }

    /// Reserves, for a modification about to be approved, what its proposed content
    /// cites of each licence beyond what the declaration's content drew (each draw in
    /// place of the declaration's, so that it holds the larger of the two until its
    /// revision is screened and draws exactly what the new content cites). Without the
    /// reservation another declaration could take the difference in the moment between
    /// the approval and that screening, and the approved revision would be refused.
    /// Violations (named under `proposed_content`) when a licence has not enough left;
    /// what was reserved is then brought back by `restore`, as after a rejection.
    async fn reserve(
        &self,
        number: &str,
        drawn: &DeclarationContent,
        proposed: &DeclarationContent,
    ) -> Result<Vec<FieldViolation>> {
        let house = customs_common::codes::directly_under_house(&drawn.declaring_office);
        let mut violations = Vec::new();
        for Increase {
            id, wanted, fields, ..
        } in increases(drawn, proposed)
        {
            let request = self.credentials.request(DrawDownLicenceRequest {
                request_id: format!("{number}:reserve:{id}"),
                ruling_id: id.clone(),
                quantity: wanted.normalize().to_string(),
                declaration_number: number.to_owned(),
                house_code: house.clone(),
                replaces_earlier_draw: true,
            })?;
            match RulingServiceClient::new(self.review.clone())
                .draw_down_licence(request)
                .await
            {
                Ok(_) => {}
                Err(status) if status.code() == Code::NotFound => {
                    violations.extend(fields.into_iter().map(|field| {
                        FieldViolation::new(field, "RULING_NOT_FOUND", status.message().to_owned())
                    }));
                }
                Err(status) if status.code() == Code::FailedPrecondition => {
                    let reason = match status.get_details_error_info().map(|info| info.reason) {
                        Some(reason) if reason == "RULING_REVOKED" => "RULING_REVOKED",
                        Some(reason) if reason == "RULING_NOT_IN_FORCE" => "RULING_NOT_IN_FORCE",
                        _ => "LICENCE_QUANTITY_EXCEEDED",
                    };
                    violations.extend(fields.into_iter().map(|field| {
                        FieldViolation::new(field, reason, status.message().to_owned())
                    }));
                }
                Err(status) => {
                    tracing::warn!(declaration = number, ruling = %id, code = ?status.code(), message = status.message(), "licence quantity of a modification not reserved");
                    return Err(Error::unavailable(
                        "REVIEW_PLATFORM_UNAVAILABLE",
                        "the modification's licence quantities cannot be reserved now; the approval may be sent again",
                    ));
                }
            }
        }
        Ok(violations)
    }
}

/// A licence that a modification's proposed content cites more of than the
/// declaration's content (summed over their items).
#[derive(Debug, PartialEq, Eq)]
struct Increase {
    id: String,
    /// What the proposed content cites.
    wanted: Decimal,
    /// What the declaration's content cites (and so holds); `None` when it cites none.
    held: Option<Decimal>,
    /// The proposed content's fields that cite it.
    fields: Vec<String>,
}

/// The licences `proposed` cites more of than `drawn`.
fn increases(drawn: &DeclarationContent, proposed: &DeclarationContent) -> Vec<Increase> {
    let drawn = drawn.licence_quantities();
    proposed
        .licence_quantities()
        .into_iter()
        .map(|(id, (wanted, fields))| Increase {
            held: drawn.get(&id).map(|(held, _)| *held),
            id,
            wanted,
            fields: fields
                .into_iter()
                .map(|field| format!("proposed_content.{field}"))
                .collect(),
        })
        .filter(|increase| increase.held.is_none_or(|held| increase.wanted > held))
        .collect()
}

/// The hand-off that brings a declaration's licence draws back to what its content
/// (`drawn`) cites, after a modification asking for more (`proposed`) was reserved at
/// approval and not applied; none when the modification asks for no more.
fn restore(number: &str, drawn: &DeclarationContent, proposed: &DeclarationContent) -> Option<Job> {
    let mut kept = Vec::new();
    let mut returned = Vec::new();
    for Increase { id, held, .. } in increases(drawn, proposed) {
        match held {
            Some(quantity) => kept.push((id, quantity.normalize().to_string())),
            None => returned.push(id),
        }
    }
    (!kept.is_empty() || !returned.is_empty()).then(|| Job::RestoreLicenceDraws {
        declaration_number: number.to_owned(),
        house_code: customs_common::codes::directly_under_house(&drawn.declaring_office),
        held: kept,
        returned,
    })
}

/// Violations of a proposed content, named as the request names it: `content.x` (the
/// declaration platform's own checks) and `x` (the risk platform's) both become
/// `proposed_content.x`.
fn proposed_content(violations: Vec<FieldViolation>) -> Vec<FieldViolation> {
    violations
        .into_iter()
        .map(|violation| {
            let field = violation
                .field
                .strip_prefix("content.")
                .unwrap_or(&violation.field);
            FieldViolation {
                field: format!("proposed_content.{field}"),
                ..violation
            }
        })
        .collect()
}

fn unknown(id: &str) -> Error {
    Error::not_found(
        "CHANGE_REQUEST_NOT_FOUND",
        format!("no change request {id}"),
    )
}

impl ChangeRequests {
    pub fn new(
        repository: ChangeRepository,
        declarations: Declarations,
        outbox: Outbox,
        checks: LogicChecks,
    ) -> Self {
        Self {
            repository,
            declarations,
            outbox,
            checks,
        }
    }

    pub async fn get(&self, id: &str) -> Result<ChangeRecord> {
        self.repository.get(id).await?.ok_or_else(|| unknown(id))
    }

    /// Files a request; a repeated request id returns the first.
    pub async fn request(
        &self,
        caller: &Caller,
        request_id: &str,
        number: &str,
        kind: ChangeKind,
        reason: &str,
        proposed: Option<&DeclarationContent>,
    ) -> Result<ChangeRecord> {
        if let Some(first) = self.repository.by_request(request_id).await? {
            return self.first_answer(caller, request_id, first).await;
        }
        let record = self.declarations.get_for(caller, number).await?;
        if let Some(proposed) = proposed {
            Declarations::validate(caller, proposed).map_err(|error| match error {
                Error::InvalidArgument(violations) => {
                    Error::InvalidArgument(proposed_content(violations))
                }
                other => other,
            })?;
            let current = Declarations::content(&record)?;
            if proposed.enterprise_code != current.enterprise_code
                || proposed.declaring_office != current.declaring_office
                || proposed.direction != current.direction
            {
                return Err(Error::invalid(
                    "proposed_content",
                    "UNCHANGEABLE_FIELDS",
                    "a modification keeps the enterprise, the declaring office and the direction",
                ));
            }
        }
        if !record.stage.may_move_to(kind.stage()) {
            return Err(Error::failed_precondition(
                "CHANGE_NOT_ALLOWED",
                format!(
                    "a {} cannot be asked for while the declaration is {}",
                    kind.as_str().to_lowercase(),
                    record.stage.as_str()
                ),
            ));
        }
        if let Some(proposed) = proposed {
            let day = beijing_day(record.submitted_at);
            let violations = self.checks.proposed(number, proposed, day).await?;
            if !violations.is_empty() {
                tracing::info!(
                    declaration = number,
                    violations = violations.len(),
                    "proposed modification refused by the logic checks"
                );
                return Err(Error::InvalidArgument(violations));
            }
        }
        let change = ChangeRecord {
            id: format!("CR{}", uuid::Uuid::new_v4().simple()).to_ascii_uppercase(),
            request_id: request_id.to_owned(),
            declaration_number: number.to_owned(),
            kind: kind.as_str().to_owned(),
            state: "PENDING".to_owned(),
            reason: reason.to_owned(),
            proposed_content: proposed.map(|content| content.encode_to_vec()),
            deciding_house: record.review_sub_centre.clone(),
            requested_by: caller.subject.clone(),
            requested_at: OffsetDateTime::now_utc(),
            decided_at: None,
            decision_reason: String::new(),
        };
        if self.repository.insert(&change).await? {
            self.outbox.wake();
            tracing::info!(change_request = %change.id, declaration = number, kind = kind.as_str(), "change requested");
        }
        match self.repository.by_request(request_id).await? {
            Some(stored) => self.first_answer(caller, request_id, stored).await,
            // Another request of the declaration is pending (the insert checks it).
            None => Err(Error::failed_precondition(
                "CHANGE_ALREADY_PENDING",
                match self.repository.pending_for(number).await? {
                    Some(pending) => format!(
                        "change request {} for this declaration is still being decided",
                        pending.id
                    ),
                    None => "another change request for this declaration is being decided".into(),
                },
            )),
        }
    }

    /// A repeated request's first result, for a caller who may see its declaration;
    /// another enterprise's request id is refused without a word about it.
    async fn first_answer(
        &self,
        caller: &Caller,
        request_id: &str,
        first: ChangeRecord,
    ) -> Result<ChangeRecord> {
        match self
            .declarations
            .get_for(caller, &first.declaration_number)
            .await
        {
            Ok(_) => Ok(first),
            Err(error) if error.reason() == "DECLARATION_NOT_FOUND" => {
                Err(request_id_in_use(request_id))
            }
            Err(error) => Err(error),
        }
    }

    /// The step that sends a declaration's modified content through electronic review
    /// again, as its next revision (DOMAIN.md 5.2): what the content it replaces drew of
    /// licences the new content no longer cites is given back, then the new content is
    /// checked, draws (each draw taking the place of the earlier content's on the same
    /// licence) and is screened, and its lane decided anew (so routed to review again
    /// when YELLOW or RED). The hand-offs are written with the step.
    async fn resubmission(
        &self,
        before: &DeclarationRecord,
        proposed: &DeclarationContent,
        actor: &str,
        house: &str,
    ) -> Result<Transition> {
        let number = &before.declaration_number;
        let modified_before = self
            .declarations
            .events(number)
            .await?
            .iter()
            // Stage changes only: a note (a transit step) leaves the stage it names.
            .filter(|event| event.note.is_empty() && event.to_stage == Stage::Modified.as_str())
            .count();
        let mut step = transition(
            Stage::Submitted,
            actor,
            house,
            "modified content resubmitted for electronic review",
        );
        step.jobs
            .extend(give_back(before, &cited_licences(proposed))?);
        step.jobs.push(Job::ScreenDeclaration {
            declaration_number: number.clone(),
            revision: u32::try_from(modified_before + 1).unwrap_or(u32::MAX),
        });
        Ok(step)
    }

    /// A pending modification's proposed content through the logic checks again, as
    /// they stand now: `InvalidArgument` (named under `proposed_content`) when it no
    /// longer passes. The deciding sub-centre's approval asks first, so that content
    /// electronic review would now refuse is not approved. Anything else passes as it
    /// is.
    pub async fn check_again(&self, id: &str) -> Result<ChangeRecord> {
        let change = self.get(id).await?;
        if change.proposed_content.is_none() || change.state != "PENDING" {
            return Ok(change);
        }
        let proposed = proposal(&change)?;
        let number = &change.declaration_number;
        let record = self.declarations.get(number).await?;
        let violations = self
            .checks
            .proposed(number, &proposed, beijing_day(record.submitted_at))
            .await?;
        if !violations.is_empty() {
            tracing::info!(change_request = id, declaration = %number, violations = violations.len(), "pending modification no longer passes the logic checks");
            return Err(Error::InvalidArgument(violations));
        }
        let drawn = Declarations::content(&record)?;
        let violations = self.checks.reserve(number, &drawn, &proposed).await?;
        if !violations.is_empty() {
            // What was reserved of the other licences is held until the request is
            // decided (the sub-centre rejects it, as it no longer passes), then brought
            // back with the rejection.
            tracing::info!(change_request = id, declaration = %number, violations = violations.len(), "pending modification's licence quantities cannot be reserved");
            return Err(Error::InvalidArgument(violations));
        }
        Ok(change)
    }

    /// Applies the deciding sub-centre's decision; idempotent.
    pub async fn decide(
        &self,
        id: &str,
        approve: bool,
        reason: &str,
        house: &str,
        actor: &str,
    ) -> Result<ChangeRecord> {
        let change = self.get(id).await?;
        if change.state != "PENDING" {
            return Ok(change);
        }
        let decision = |state: &'static str, reason: String| ChangeDecision {
            change_request_id: id.to_owned(),
            state,
            house_code: house.to_owned(),
            reason,
        };
        let state = if approve { "APPROVED" } else { "REJECTED" };
        if approve {
            let kind = if change.kind == "MODIFICATION" {
                ChangeKind::Modification
            } else {
                ChangeKind::Cancellation
            };
            let number = &change.declaration_number;
            let mut moved = transition(
                kind.stage(),
                actor,
                house,
                &format!("{} approved: {reason}", kind.as_str().to_lowercase()),
            );
            // Recorded with the step that applies it: a decision delivered again finds
            // it decided, rather than applying it again.
            moved.decides = Some(decision(state, reason.to_owned()));
            let record = self.declarations.get(number).await?;
            // Should the modification not be applied after all, what its approval
            // reserved is brought back with the rejection.
            let restore = self.restore(&change, &record)?;
            // The hand-offs ride on the declaration's steps, written in their
            // transaction (and skipped with them on a retry).
            let steps = match kind {
                ChangeKind::Cancellation => {
                    // The goods will not be cleared: what they drew of their licences
                    // is given back.
                    moved.jobs.extend(give_back(&record, &[])?);
                    vec![moved]
                }
                ChangeKind::Modification => {
                    let proposed = proposal(&change)?;
                    moved.content = change.proposed_content.clone();
                    vec![
                        moved,
                        self.resubmission(&record, &proposed, actor, house).await?,
                    ]
                }
            };
            match self.declarations.advance(record, steps).await {
                Ok(_) => self.outbox.wake(),
                Err(error) if error.reason() == "TRANSITION_NOT_ALLOWED" => {
                    // The declaration moved on (released, say) before the decision.
                    self.repository
                        .decide(
                            &decision("REJECTED", format!("approved too late: {error}")),
                            &Vec::from_iter(restore),
                        )
                        .await?;
                    return self.get(id).await;
                }
                Err(error) => return Err(error),
            }
        }
        // A rejection, with what an approval attempted before may have reserved brought
        // back. An approval was recorded with its step, unless the declaration had
        // taken the steps already (nothing was written then): recorded here.
        let jobs = if approve || change.proposed_content.is_none() {
            Vec::new()
        } else {
            let record = self.declarations.get(&change.declaration_number).await?;
            Vec::from_iter(self.restore(&change, &record)?)
        };
        self.repository
            .decide(&decision(state, reason.to_owned()), &jobs)
            .await?;
        tracing::info!(change_request = id, declaration = %change.declaration_number, state, house, "change request decided");
        self.get(id).await
    }

    /// For a modification, the hand-off that brings back what its approval may have
    /// reserved of licences (see `LogicChecks::reserve`), should it not be applied.
    fn restore(&self, change: &ChangeRecord, record: &DeclarationRecord) -> Result<Option<Job>> {
        if change.proposed_content.is_none() {
            return Ok(None);
        }
        Ok(restore(
            &record.declaration_number,
            &Declarations::content(record)?,
            &proposal(change)?,
        ))
    }
}

/// A modification's proposed content.
fn proposal(change: &ChangeRecord) -> Result<DeclarationContent> {
    let bytes = change.proposed_content.as_deref().ok_or_else(|| {
        Error::internal(anyhow::anyhow!(
            "change request {} is a modification without content",
            change.id
        ))
    })?;
    DeclarationContent::decode(bytes).map_err(|e| {
        Error::internal(anyhow::anyhow!(
            "change request {} has corrupt content: {e}",
            change.id
        ))
    })
}

/// The hand-off that gives back what a declaration's content drew of the licences it
/// cites, but for those in `kept`; none when that leaves none.
fn give_back(record: &DeclarationRecord, kept: &[String]) -> Result<Option<Job>> {
    let mut ruling_ids = cited_licences(&Declarations::content(record)?);
    ruling_ids.retain(|id| !kept.contains(id));
    Ok((!ruling_ids.is_empty()).then(|| Job::ReturnLicenceDraws {
        declaration_number: record.declaration_number.clone(),
        ruling_ids,
    }))
}

/// The licences a declaration's items cite, each once.
fn cited_licences(content: &DeclarationContent) -> Vec<String> {
    let mut ids: Vec<String> = content
        .items
        .iter()
        .flat_map(|item| &item.rulings)
        .filter(|citation| citation.kind() == RulingKind::Licence)
        .map(|citation| citation.ruling_id.trim().to_owned())
        .filter(|id| !id.is_empty())
        .collect();
    ids.sort();
    ids.dedup();
    ids
}

#[cfg(test)]
mod tests {
    use customs_proto::common::{DeclarationItem, RulingCitation};

    use super::*;

    fn citing(licences: &[(&str, &str)]) -> DeclarationContent {
        DeclarationContent {
            declaring_office: "5301".into(),
            items: licences
                .iter()
                .map(|(id, quantity)| DeclarationItem {
                    rulings: vec![RulingCitation {
                        ruling_id: (*id).into(),
                        kind: RulingKind::Licence as i32,
                        quantity: (*quantity).into(),
                    }],
                    ..Default::default()
                })
                .collect(),
            ..Default::default()
        }
    }

    #[test]
    fn only_what_a_modification_adds_is_reserved_and_brought_back() {
        // L1 cited twice (300 in all) and now 450; L2 cited for less; L3 new.
        let drawn = citing(&[("L1", "100"), ("L1", "200"), ("L2", "10")]);
        let proposed = citing(&[("L1", "450.000"), ("L2", "5"), ("L3", "7")]);
        assert_eq!(
            increases(&drawn, &proposed),
            [
                Increase {
                    id: "L1".to_owned(),
                    wanted: Decimal::new(450, 0),
                    held: Some(Decimal::new(300, 0)),
                    fields: vec!["proposed_content.items[0].rulings[0].quantity".to_owned()]
                },
                Increase {
                    id: "L3".to_owned(),
                    wanted: Decimal::new(7, 0),
                    held: None,
                    fields: vec!["proposed_content.items[2].rulings[0].quantity".to_owned()]
                },
            ]
        );
        assert_eq!(
            restore("530120261000000001", &drawn, &proposed),
            Some(Job::RestoreLicenceDraws {
                declaration_number: "530120261000000001".into(),
                house_code: "5300".into(),
                held: vec![("L1".into(), "300".into())],
                returned: vec!["L3".into()],
            })
        );
        assert_eq!(restore("530120261000000001", &drawn, &drawn), None);
    }
}
