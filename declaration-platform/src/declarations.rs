//! Declarations: submitted once at any house, numbered, and moved through their
//! lifecycle by the platforms that decide each step.

use std::collections::HashMap;

use customs_common::{
    Error, Result, Violations,
    auth::{Caller, Role},
    codes::{house, parse_enterprise_code, parse_house_code},
    day::today,
};
use customs_proto::common::{DeclarationContent, Direction};
use prost::Message;
use tokio::sync::broadcast;

use crate::{
    domain::lifecycle::Stage,
    outbox::Outbox,
    storage::declarations::{
        DeclarationFilter, DeclarationRecord, DeclarationRepository, EventRecord, NewDeclaration,
        NewNote, Transition,
    },
    storage::submission_writer::SubmissionWriter,
};

#[derive(Debug, Clone)]
pub struct Declarations {
    repository: DeclarationRepository,
    writer: SubmissionWriter,
    outbox: Outbox,
    /// Declaration numbers whose stage changed in this process, for status watchers.
    changes: broadcast::Sender<String>,
}

fn unknown(number: &str) -> Error {
    Error::not_found("DECLARATION_NOT_FOUND", format!("no declaration {number}"))
}

/// A client request id already taken by another enterprise's declaration or change
/// request: a repeat answers with the first result only to whoever may see it.
pub fn request_id_in_use(request_id: &str) -> Error {
    Error::already_exists(
        "REQUEST_ID_IN_USE",
        format!("request id {request_id} is already in use; choose another"),
    )
}

/// Whether `caller` may see `record`: an enterprise or broker only its own.
pub fn may_see(caller: &Caller, record: &DeclarationRecord) -> bool {
    caller.may_see(&[&record.enterprise_code, &record.broker_code])
}

impl Declarations {
    /// Must run inside the runtime: it starts the submissions' group-commit writer.
    pub fn new(repository: DeclarationRepository, outbox: Outbox) -> Self {
        let (changes, _) = broadcast::channel(1024);
        let writer = SubmissionWriter::spawn(repository.clone());
        Self {
            repository,
            writer,
            outbox,
            changes,
        }
    }

    pub fn subscribe(&self) -> broadcast::Receiver<String> {
        self.changes.subscribe()
    }

    /// Checks what numbering and ownership need; the full logic checks are the risk
    /// platform's electronic review, which decides acceptance.
    pub(crate) fn validate(caller: &Caller, content: &DeclarationContent) -> Result<()> {
        let mut violations = Violations::new();
        if content.direction() == Direction::Unspecified {
            violations.push("content.direction", "REQUIRED", "import or export");
        }
        match parse_house_code("content.declaring_office", &content.declaring_office) {
            Ok(office) if house(&office).is_none() => violations.push(
                "content.declaring_office",
                "OFFICE_UNKNOWN",
                "the office must belong to one of the seven Guangdong houses",
            ),
            Ok(_) => {}
            Err(violation) => violations.extend([violation]),
        }
        if let Err(violation) =
            parse_enterprise_code("content.enterprise_code", &content.enterprise_code)
        {
            violations.extend([violation]);
        }
        if !content.broker_code.is_empty()
            && let Err(violation) =
                parse_enterprise_code("content.broker_code", &content.broker_code)
        {
            violations.extend([violation]);
        }
        violations.into_result()?;
        let own = caller.enterprise.as_deref();
        let allowed = match caller.role {
            Role::Enterprise => own == Some(content.enterprise_code.as_str()),
            Role::Broker => own == Some(content.broker_code.as_str()),
            _ => true,
        };
        if !allowed {
            return Err(Error::permission_denied(
                "DECLARANT_MISMATCH",
                "an enterprise declares its own goods; a broker declares as the broker named",
            ));
        }
        Ok(())
    }

    /// Submits at any house. A repeated request id returns the first result; the flag
    /// says whether this call created it.
    pub async fn submit(
        &self,
        caller: &Caller,
        request_id: &str,
        content: &DeclarationContent,
    ) -> Result<(DeclarationRecord, bool)> {
        if request_id.trim().is_empty() {
            return Err(Error::invalid(
                "request_id",
                "REQUIRED",
                "a client request id is required",
            ));
        }
        Self::validate(caller, content)?;
        let office = content.declaring_office.trim().to_owned();
        let handling_house = customs_common::codes::directly_under_house(&office);
        let new = NewDeclaration {
            request_id: request_id.trim().to_owned(),
            enterprise_code: content.enterprise_code.clone(),
            broker_code: content.broker_code.clone(),
            declaring_office: office,
            handling_house,
            direction_flag: if content.direction() == Direction::Import {
                '1'
            } else {
                '0'
            },
            year: today().year(),
            content: content.encode_to_vec(),
            actor: caller.subject.clone(),
        };
        // The writer's batch answers a repeated request id with the first declaration.
        let (record, created) = self.writer.submit(new).await?;
        if !created && !may_see(caller, &record) {
            // Another enterprise's id: its declaration is not the answer.
            return Err(request_id_in_use(request_id));
        }
        if created {
            tracing::info!(declaration = %record.declaration_number, enterprise = %record.enterprise_code, house = %record.handling_house, "declaration submitted");
            self.outbox.wake();
            let _ = self.changes.send(record.declaration_number.clone());
        }
        Ok((record, created))
    }

    pub async fn get(&self, number: &str) -> Result<DeclarationRecord> {
        self.repository
            .get(number)
            .await?
            .ok_or_else(|| unknown(number))
    }

    /// A declaration `caller` may see; another enterprise's is "not found".
    pub async fn get_for(&self, caller: &Caller, number: &str) -> Result<DeclarationRecord> {
        let record = self.get(number).await?;
        if !may_see(caller, &record) {
            return Err(unknown(number));
        }
        Ok(record)
    }

    pub async fn events(&self, number: &str) -> Result<Vec<EventRecord>> {
        self.repository.events(number).await
    }

    /// The timelines of several declarations, by number, in one read.
    pub async fn events_of(&self, numbers: &[String]) -> Result<HashMap<String, Vec<EventRecord>>> {
        self.repository.events_of(numbers).await
    }

    pub async fn list(&self, filter: &DeclarationFilter) -> Result<Vec<DeclarationRecord>> {
        self.repository.list(filter).await
    }

    /// Records a note on the declaration's timeline (a repeated key records nothing
    /// more), and gives the declaration as it is.
    pub async fn note(&self, number: &str, note: NewNote) -> Result<DeclarationRecord> {
        match self.repository.note(number, &note).await? {
            None => Err(unknown(number)),
            Some(recorded) => {
                if recorded {
                    tracing::info!(declaration = %number, note = note.note.as_str(), actor = %note.actor, house = %note.house_code, "timeline note recorded");
                    let _ = self.changes.send(number.to_owned());
                }
                self.get(number).await
            }
        }
    }

    /// Moves a declaration one step (a step it has already taken is not repeated).
    pub async fn transition(
        &self,
        number: &str,
        transition: Transition,
    ) -> Result<DeclarationRecord> {
        let record = self.get(number).await?;
        self.advance(record, vec![transition]).await
    }

    /// Moves a declaration through `steps` in one transaction, starting from `record` as
    /// the caller read it. Steps it has already taken are skipped (a repeated hand-off);
    /// when someone else moved it in between, it is read again and the rest retried.
    pub async fn advance(
        &self,
        mut record: DeclarationRecord,
        steps: Vec<Transition>,
    ) -> Result<DeclarationRecord> {
        let number = record.declaration_number.clone();
        for attempt in 0..3 {
            if attempt > 0 {
                record = self.get(&number).await?;
            }
            let remaining = match steps.iter().rposition(|step| reached(&record, step)) {
                Some(reached) => &steps[reached + 1..],
                None => &steps[..],
            };
            if remaining.is_empty() {
                return Ok(record);
            }
            let mut stage = record.stage;
            for step in remaining {
                if !stage.may_move_to(step.to) {
                    return Err(Error::failed_precondition(
                        "TRANSITION_NOT_ALLOWED",
                        format!(
                            "declaration {number} cannot move from {} to {}",
                            stage.as_str(),
                            step.to.as_str()
                        ),
                    ));
                }
                stage = step.to;
            }
            if let Some(at) = self
                .repository
                .transition(&number, record.stage, record.version, remaining)
                .await?
            {
                let mut moved = record;
                for step in remaining {
                    tracing::info!(declaration = %number, from = moved.stage.as_str(), to = step.to.as_str(), actor = %step.actor, house = %step.house_code, "declaration moved");
                    moved = moved.moved(step.clone(), at);
                }
                let _ = self.changes.send(number);
                return Ok(moved);
            }
        }
        Err(Error::unavailable(
            "DECLARATION_BUSY",
            format!("declaration {number} keeps changing; retry"),
        ))
    }

    pub fn content(record: &DeclarationRecord) -> Result<DeclarationContent> {
        DeclarationContent::decode(record.content.as_slice()).map_err(|e| {
            Error::internal(anyhow::anyhow!(
                "declaration {} content is corrupt: {e}",
                record.declaration_number
            ))
        })
    }
}

/// Whether `record` is already where `step` leads (a hand-off repeated). Review at
/// another sub-centre than the one reviewing it is not: that is a transfer (转岗),
/// which moves the declaration's handling house and review there.
fn reached(record: &DeclarationRecord, step: &Transition) -> bool {
    step.to == record.stage
        && !(step.to == Stage::UnderReview
            && step
                .review_sub_centre
                .as_deref()
                .is_some_and(|to| to != record.review_sub_centre))
}

/// The stage of a `Stage` for use in a transition.
pub fn transition(to: Stage, actor: &str, house_code: &str, reason: &str) -> Transition {
    Transition {
        to,
        actor: actor.to_owned(),
        house_code: house_code.to_owned(),
        reason: reason.to_owned(),
        lane: None,
        review_sub_centre: None,
        content: None,
        jobs: Vec::new(),
        decides: None,
    }
}
