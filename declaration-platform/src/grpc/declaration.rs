//! `customs.declaration.v1.DeclarationService`.

use std::{pin::Pin, time::Duration};

use customs_common::{
    Error, Violations,
    auth::Caller,
    codes::{house, parse_declaration_number, parse_enterprise_code, parse_house_code},
    paging::{next_page_token, page_limit},
};
use customs_proto::{
    common::{DeclarationStage as ProtoStage, Lane, StatusEvent, TimelineNote},
    convert::{instant, timestamp},
    declaration::{
        self as pb, declaration_service_server::DeclarationService as DeclarationServiceApi,
    },
};
use futures::Stream;
use tokio_stream::wrappers::ReceiverStream;
use tonic::{Request, Response, Status};

use super::missing_field;
use prost::Message as _;

use crate::{
    changes::{ChangeKind, ChangeRequests},
    declarations::{Declarations, may_see},
    domain::lifecycle::{Note, Stage},
    storage::changes::ChangeRecord,
    storage::declarations::{
        DeclarationFilter, DeclarationRecord, EventRecord, NewNote, Transition,
    },
};

#[derive(Debug, Clone)]
pub struct DeclarationService {
    declarations: Declarations,
    changes: ChangeRequests,
}

impl DeclarationService {
    pub fn new(declarations: Declarations, changes: ChangeRequests) -> Self {
        Self {
            declarations,
            changes,
        }
    }

    async fn request_change(
        &self,
        caller: &Caller,
        request_id: &str,
        number: &str,
        kind: ChangeKind,
        reason: &str,
        proposed: Option<&customs_proto::common::DeclarationContent>,
    ) -> Result<Response<pb::ChangeRequest>, Status> {
        let mut violations = Violations::new();
        if request_id.trim().is_empty() {
            violations.push("request_id", "REQUIRED", "a client request id is required");
        }
        let number = violations.keep(parse_declaration_number("declaration_number", number));
        if reason.trim().is_empty() {
            violations.push("reason", "REQUIRED", "why the change is asked for");
        }
        if kind == ChangeKind::Modification && proposed.is_none() {
            violations.push(
                "proposed_content",
                "REQUIRED",
                "the declaration as it should read",
            );
        }
        violations.into_result()?;
        let Some(number) = number else {
            return Err(missing_field().into());
        };
        let change = self
            .changes
            .request(
                caller,
                request_id.trim(),
                &number,
                kind,
                reason.trim(),
                proposed,
            )
            .await?;
        Ok(Response::new(change_message(change)?))
    }
}

fn change_message(change: ChangeRecord) -> Result<pb::ChangeRequest, Error> {
    let proposed_content = change
        .proposed_content
        .as_deref()
        .map(customs_proto::common::DeclarationContent::decode)
        .transpose()
        .map_err(|e| {
            Error::internal(anyhow::anyhow!(
                "change request {} is corrupt: {e}",
                change.id
            ))
        })?;
    Ok(pb::ChangeRequest {
        change_request_id: change.id,
        declaration_number: change.declaration_number,
        kind: pb::ChangeKind::from_str_name(&format!("CHANGE_KIND_{}", change.kind))
            .unwrap_or_default() as i32,
        state: pb::ChangeRequestState::from_str_name(&format!(
            "CHANGE_REQUEST_STATE_{}",
            change.state
        ))
        .unwrap_or_default() as i32,
        reason: change.reason,
        proposed_content,
        deciding_house: change.deciding_house,
        requested_at: Some(timestamp(change.requested_at)),
        decided_at: change.decided_at.map(timestamp),
        decision_reason: change.decision_reason,
    })
}

fn stage_to_proto(stage: Stage) -> ProtoStage {
    ProtoStage::from_str_name(&format!("DECLARATION_STAGE_{}", stage.as_str()))
        .unwrap_or(ProtoStage::Unspecified)
}

fn stage_from_proto(stage: ProtoStage) -> Option<Stage> {
    Stage::parse(stage.as_str_name().trim_start_matches("DECLARATION_STAGE_"))
}

/// The house a platform reports for: the one it names, else its own (checked either
/// way).
fn reporting_house(caller: &Caller, given: &str, violations: &mut Violations) -> String {
    let house = if given.is_empty() {
        caller.house.clone()
    } else {
        given.to_owned()
    };
    violations.keep(parse_house_code("house_code", &house));
    house
}

/// A note's wire value; unspecified for a stage change.
fn note_to_proto(note: Option<Note>) -> TimelineNote {
    note.and_then(|note| TimelineNote::from_str_name(&format!("TIMELINE_NOTE_{}", note.as_str())))
        .unwrap_or(TimelineNote::Unspecified)
}

fn note_from_proto(note: TimelineNote) -> Option<Note> {
    Note::parse(note.as_str_name().trim_start_matches("TIMELINE_NOTE_"))
}

fn lane_to_proto(lane: &str) -> Lane {
    Lane::from_str_name(&format!("LANE_{lane}")).unwrap_or(Lane::Unspecified)
}

async fn declaration_message(
    declarations: &Declarations,
    record: DeclarationRecord,
) -> Result<pb::Declaration, Error> {
    let events = declarations.events(&record.declaration_number).await?;
    declaration_with_events(record, events)
}

/// The declaration as a request's `view` asks for it: a BASIC one without its content
/// and its events (neither read nor decoded), else the whole of it.
async fn declaration_in_view(
    declarations: &Declarations,
    record: DeclarationRecord,
    view: pb::DeclarationView,
) -> Result<pb::Declaration, Error> {
    match view {
        pb::DeclarationView::Basic => Ok(declaration_basic(record)),
        pb::DeclarationView::Unspecified | pb::DeclarationView::Full => {
            declaration_message(declarations, record).await
        }
    }
}

fn declaration_with_events(
    record: DeclarationRecord,
    events: Vec<EventRecord>,
) -> Result<pb::Declaration, Error> {
    let content = Declarations::content(&record)?;
    Ok(pb::Declaration {
        content: Some(content),
        events: events
            .into_iter()
            .map(|event| pb::LifecycleEvent {
                from_stage: Stage::parse(&event.from_stage)
                    .map_or(ProtoStage::Unspecified, stage_to_proto)
                    as i32,
                to_stage: Stage::parse(&event.to_stage)
                    .map_or(ProtoStage::Unspecified, stage_to_proto)
                    as i32,
                actor: event.actor,
                house_code: event.house_code,
                occurred_at: Some(timestamp(event.occurred_at)),
                reason: event.reason,
                note: note_to_proto(Note::parse(&event.note)) as i32,
            })
            .collect(),
        ..declaration_basic(record)
    })
}

/// The declaration without its content and its events.
fn declaration_basic(record: DeclarationRecord) -> pb::Declaration {
    pb::Declaration {
        declaration_number: record.declaration_number,
        content: None,
        stage: stage_to_proto(record.stage) as i32,
        handling_house: record.handling_house,
        lane: lane_to_proto(&record.lane) as i32,
        review_sub_centre: record.review_sub_centre,
        submitted_at: Some(timestamp(record.submitted_at)),
        updated_at: Some(timestamp(record.updated_at)),
        events: Vec::new(),
        version: record.version,
    }
}

/// Until `number` changes in this process, or changes may have been missed (the
/// watcher fell behind). Once the process stops announcing changes, never.
async fn changed(changes: &mut tokio::sync::broadcast::Receiver<String>, number: &str) {
    use tokio::sync::broadcast::error::RecvError;
    loop {
        match changes.recv().await {
            Ok(changed) if changed == number => return,
            Ok(_) => {}
            Err(RecvError::Lagged(_)) => return,
            Err(RecvError::Closed) => std::future::pending().await,
        }
    }
}

/// The public view: stage, handling house and timeline, bilingual, with no actor,
/// reason, lane or review detail.
async fn public_status(
    declarations: &Declarations,
    number: &str,
) -> Result<pb::DeclarationStatus, Error> {
    let record = declarations.get(number).await?;
    let events = declarations.events(number).await?;
    let (house_zh, house_en) =
        house(&record.handling_house).map_or(("", ""), |(_, zh, en)| (zh, en));
    let (stage_zh, stage_en) = record.stage.public_text();
    Ok(pb::DeclarationStatus {
        declaration_number: record.declaration_number,
        stage: stage_to_proto(record.stage) as i32,
        handling_house: record.handling_house,
        handling_house_name_zh: house_zh.to_owned(),
        handling_house_name_en: house_en.to_owned(),
        stage_text_zh: stage_zh.to_owned(),
        stage_text_en: stage_en.to_owned(),
        timeline: events
            .into_iter()
            .filter_map(|event| {
                let stage = Stage::parse(&event.to_stage)?;
                let note = Note::parse(&event.note);
                let (zh, en) = note.map_or_else(|| stage.public_text(), Note::public_text);
                Some(StatusEvent {
                    stage: stage_to_proto(stage) as i32,
                    house_code: event.house_code,
                    occurred_at: Some(timestamp(event.occurred_at)),
                    text_zh: zh.to_owned(),
                    text_en: en.to_owned(),
                    note: note_to_proto(note) as i32,
                })
            })
            .collect(),
    })
}

fn number(field: &str, value: &str) -> Result<String, Status> {
    Ok(parse_declaration_number(field, value).map_err(Error::from)?)
}

type StatusStream =
    Pin<Box<dyn Stream<Item = Result<pb::DeclarationStatus, Status>> + Send + 'static>>;

#[tonic::async_trait]
impl DeclarationServiceApi for DeclarationService {
    async fn submit_declaration(
        &self,
        request: Request<pb::SubmitDeclarationRequest>,
    ) -> Result<Response<pb::Declaration>, Status> {
        let caller = Caller::of(&request)?.clone();
        let message = request.into_inner();
        let Some(content) = message.content else {
            return Err(Error::invalid(
                "content",
                "REQUIRED",
                "the declaration's content is required",
            )
            .into());
        };
        let (record, created) = self
            .declarations
            .submit(&caller, &message.request_id, &content)
            .await?;
        let message = if created {
            // Its one event is the one just written: no need to read it back.
            let declared = EventRecord {
                from_stage: String::new(),
                to_stage: Stage::Submitted.as_str().to_owned(),
                actor: caller.subject.clone(),
                house_code: record.handling_house.clone(),
                reason: "declared".to_owned(),
                occurred_at: record.submitted_at,
                note: String::new(),
            };
            declaration_with_events(record, vec![declared])?
        } else {
            declaration_message(&self.declarations, record).await?
        };
        Ok(Response::new(message))
    }

    async fn get_declaration(
        &self,
        request: Request<pb::GetDeclarationRequest>,
    ) -> Result<Response<pb::Declaration>, Status> {
        let caller = Caller::of(&request)?.clone();
        let number = number("declaration_number", &request.get_ref().declaration_number)?;
        let record = self.declarations.get_for(&caller, &number).await?;
        Ok(Response::new(
            declaration_message(&self.declarations, record).await?,
        ))
    }

    async fn list_declarations(
        &self,
        request: Request<pb::ListDeclarationsRequest>,
    ) -> Result<Response<pb::ListDeclarationsResponse>, Status> {
        let caller = Caller::of(&request)?.clone();
        let message = request.into_inner();
        let mut violations = Violations::new();
        let enterprise_code = (!message.enterprise_code.is_empty())
            .then(|| {
                violations.keep(parse_enterprise_code(
                    "enterprise_code",
                    &message.enterprise_code,
                ))
            })
            .flatten();
        let declaring_office = (!message.declaring_office.is_empty())
            .then(|| {
                violations.keep(parse_house_code(
                    "declaring_office",
                    &message.declaring_office,
                ))
            })
            .flatten();
        let after = (!message.page_token.is_empty())
            .then(|| violations.keep(parse_declaration_number("page_token", &message.page_token)))
            .flatten();
        violations.into_result()?;
        let party = if caller.acts_for_an_enterprise() {
            Some(caller.enterprise.clone().ok_or_else(|| {
                Error::permission_denied("ENTERPRISE_UNKNOWN", "the token names no enterprise")
            })?)
        } else {
            None
        };
        let limit = page_limit(message.page_size)?;
        let filter = DeclarationFilter {
            party,
            enterprise_code,
            declaring_office,
            stage: stage_from_proto(message.stage()),
            submitted_after: message.submitted_after.as_ref().and_then(instant),
            submitted_before: message.submitted_before.as_ref().and_then(instant),
            after,
            limit: limit + 1,
        };
        let mut found = self.declarations.list(&filter).await?;
        let next_page_token = next_page_token(&mut found, limit, |d| d.declaration_number.clone());
        // The page's timelines in one read, not one per declaration.
        let numbers: Vec<String> = found
            .iter()
            .map(|record| record.declaration_number.clone())
            .collect();
        let mut timelines = self.declarations.events_of(&numbers).await?;
        let declarations = found
            .into_iter()
            .map(|record| {
                let events = timelines
                    .remove(&record.declaration_number)
                    .unwrap_or_default();
                declaration_with_events(record, events)
            })
            .collect::<Result<Vec<_>, _>>()?;
        Ok(Response::new(pb::ListDeclarationsResponse {
            declarations,
            next_page_token,
        }))
    }

    async fn get_status(
        &self,
        request: Request<pb::GetStatusRequest>,
    ) -> Result<Response<pb::DeclarationStatus>, Status> {
        let number = number("declaration_number", &request.get_ref().declaration_number)?;
        let caller = Caller::of(&request)?.clone();
        // Enterprises see only their own; the hotline and officers any declaration.
        self.declarations.get_for(&caller, &number).await?;
        Ok(Response::new(
            public_status(&self.declarations, &number).await?,
        ))
    }

    async fn watch_status(
        &self,
        request: Request<pb::WatchStatusRequest>,
    ) -> Result<Response<StatusStream>, Status> {
        let number = number("declaration_number", &request.get_ref().declaration_number)?;
        let caller = Caller::of(&request)?.clone();
        self.declarations.get_for(&caller, &number).await?;
        let (sender, receiver) = tokio::sync::mpsc::channel(8);
        let declarations = self.declarations.clone();
        let mut changes = declarations.subscribe();
        tokio::spawn(async move {
            // Whatever the hotline sees may change: the stage, the handling house (a
            // transfer to another sub-centre keeps the stage), the timeline.
            let mut last: Option<pb::DeclarationStatus> = None;
            loop {
                let status = match public_status(&declarations, &number).await {
                    Ok(status) => status,
                    Err(error) => {
                        // The stream ends with the error; the caller may watch again.
                        let _ = sender.send(Err(error.into())).await;
                        return;
                    }
                };
                if last.as_ref() != Some(&status) {
                    let finished = stage_from_proto(status.stage()).is_some_and(Stage::is_final);
                    if sender.send(Ok(status.clone())).await.is_err() || finished {
                        return;
                    }
                    last = Some(status);
                }
                // Woken by a change in this process, or every 2 s for other replicas.
                tokio::select! {
                    () = changed(&mut changes, &number) => {}
                    () = tokio::time::sleep(Duration::from_secs(2)) => {}
                    () = sender.closed() => return,
                }
            }
        });
        Ok(Response::new(Box::pin(ReceiverStream::new(receiver))))
    }

    async fn request_modification(
        &self,
        request: Request<pb::RequestModificationRequest>,
    ) -> Result<Response<pb::ChangeRequest>, Status> {
        let caller = Caller::of(&request)?.clone();
        let message = request.into_inner();
        self.request_change(
            &caller,
            &message.request_id,
            &message.declaration_number,
            ChangeKind::Modification,
            &message.reason,
            message.proposed_content.as_ref(),
        )
        .await
    }

    async fn request_cancellation(
        &self,
        request: Request<pb::RequestCancellationRequest>,
    ) -> Result<Response<pb::ChangeRequest>, Status> {
        let caller = Caller::of(&request)?.clone();
        let message = request.into_inner();
        self.request_change(
            &caller,
            &message.request_id,
            &message.declaration_number,
            ChangeKind::Cancellation,
            &message.reason,
            None,
        )
        .await
    }

    async fn check_change_request(
        &self,
        request: Request<pb::CheckChangeRequestRequest>,
    ) -> Result<Response<pb::ChangeRequest>, Status> {
        let id = request.get_ref().change_request_id.trim();
        if id.is_empty() {
            return Err(Error::invalid(
                "change_request_id",
                "REQUIRED",
                "the change request to check",
            )
            .into());
        }
        let change = self.changes.check_again(id).await?;
        Ok(Response::new(change_message(change)?))
    }

    async fn record_change_decision(
        &self,
        request: Request<pb::RecordChangeDecisionRequest>,
    ) -> Result<Response<pb::ChangeRequest>, Status> {
        let caller = Caller::of(&request)?.clone();
        let message = request.into_inner();
        if message.change_request_id.trim().is_empty() {
            return Err(Error::invalid(
                "change_request_id",
                "REQUIRED",
                "the change request decided",
            )
            .into());
        }
        let house_code = if message.house_code.is_empty() {
            caller.house.clone()
        } else {
            message.house_code.clone()
        };
        parse_house_code("house_code", &house_code).map_err(Error::from)?;
        let change = self
            .changes
            .decide(
                message.change_request_id.trim(),
                message.approve,
                message.reason.trim(),
                &house_code,
                &caller.subject,
            )
            .await?;
        Ok(Response::new(change_message(change)?))
    }

    async fn record_transition(
        &self,
        request: Request<pb::RecordTransitionRequest>,
    ) -> Result<Response<pb::Declaration>, Status> {
        let caller = Caller::of(&request)?.clone();
        let message = request.into_inner();
        let mut violations = Violations::new();
        let number = violations.keep(parse_declaration_number(
            "declaration_number",
            &message.declaration_number,
        ));
        let to = stage_from_proto(message.to_stage());
        if to.is_none() {
            violations.push("to_stage", "REQUIRED", "the stage to move to");
        }
        let house_code = reporting_house(&caller, &message.house_code, &mut violations);
        violations.into_result()?;
        let (Some(number), Some(to)) = (number, to) else {
            return Err(missing_field().into());
        };
        let lane = match message.lane() {
            Lane::Unspecified => None,
            lane => Some(lane.as_str_name().trim_start_matches("LANE_").to_owned()),
        };
        let transition = Transition {
            to,
            actor: caller.subject.clone(),
            house_code,
            reason: message.reason.trim().to_owned(),
            lane,
            review_sub_centre: (!message.review_sub_centre.is_empty())
                .then(|| message.review_sub_centre.clone()),
            content: None,
            jobs: Vec::new(),
            decides: None,
        };
        let record = self.declarations.transition(&number, transition).await?;
        if !may_see(&caller, &record) {
            return Err(Error::permission_denied("DECLARATION_NOT_YOURS", "not yours").into());
        }
        Ok(Response::new(
            declaration_in_view(&self.declarations, record, message.view()).await?,
        ))
    }

    async fn record_timeline_note(
        &self,
        request: Request<pb::RecordTimelineNoteRequest>,
    ) -> Result<Response<pb::Declaration>, Status> {
        let caller = Caller::of(&request)?.clone();
        let message = request.into_inner();
        let mut violations = Violations::new();
        if message.request_id.trim().is_empty() {
            violations.push("request_id", "REQUIRED", "a request id is required");
        }
        let number = violations.keep(parse_declaration_number(
            "declaration_number",
            &message.declaration_number,
        ));
        let note = note_from_proto(message.note());
        if note.is_none() {
            violations.push("note", "REQUIRED", "the note to record");
        }
        let house_code = reporting_house(&caller, &message.house_code, &mut violations);
        violations.into_result()?;
        let (Some(number), Some(note)) = (number, note) else {
            return Err(missing_field().into());
        };
        let note = NewNote {
            note,
            key: message.request_id.trim().to_owned(),
            actor: caller.subject.clone(),
            house_code,
            reason: message.reason.trim().to_owned(),
        };
        let record = self.declarations.note(&number, note).await?;
        Ok(Response::new(
            declaration_in_view(&self.declarations, record, message.view()).await?,
        ))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::domain::lifecycle;

    #[test]
    fn every_stage_and_note_has_its_wire_value() {
        for stage in lifecycle::ALL {
            let wire = stage_to_proto(stage);
            assert_ne!(wire, ProtoStage::Unspecified, "{stage:?}");
            assert_eq!(stage_from_proto(wire), Some(stage));
        }
        for note in Note::ALL {
            let wire = note_to_proto(Some(note));
            assert_ne!(wire, TimelineNote::Unspecified, "{note:?}");
            assert_eq!(note_from_proto(wire), Some(note));
        }
        assert_eq!(
            note_to_proto(Note::parse("")),
            TimelineNote::Unspecified,
            "a stage change"
        );
        assert_eq!(note_from_proto(TimelineNote::Unspecified), None);
    }
}
