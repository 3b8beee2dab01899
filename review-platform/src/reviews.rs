//! Routing and the review queues: enqueue (the hand-off), claim, and the operations
//! of DOMAIN.md 5.3. Every action is one transaction with its audited event and the
//! hand-offs it causes (reported to the declaration's lifecycle through the outbox).

use std::{sync::Arc, time::Duration};

use customs_common::{
    Error, Result,
    auth::Caller,
    background::Background,
    clients::{Peer, ServiceCredentials},
    codes::directly_under_house,
    day::today,
    error::violations_of,
    outbox::{Delivery, now_millis, settle},
};
use customs_proto::{
    common::DeclarationStage,
    declaration::{
        CheckChangeRequestRequest, DeclarationView, RecordChangeDecisionRequest,
        RecordTransitionRequest, declaration_service_client::DeclarationServiceClient,
    },
    field::{OrderInspectionRequest, inspection_service_client::InspectionServiceClient},
};
use time::{Date, OffsetDateTime};
use tokio::sync::OnceCell;

use crate::{
    domain::{
        routing::{ChapterRange, RoutedItem, Routing, RoutingTable, SUB_CENTRES, route},
        task::{Action, TaskKind, TaskState, TaskView, authorize},
    },
    outbox::{Job, Outbox},
    storage::{
        routing::{PublishedTable, RoutingRepository},
        tasks::{Change, Event, TaskFilter, TaskRecord, TaskRepository},
    },
};

/// What a reviewer does to a claimed (or suspended) task.
#[derive(Debug, Clone)]
pub enum Operation {
    Conclude {
        remarks: String,
    },
    Transfer {
        to_post: String,
        to_sub_centre: String,
        reason: String,
    },
    Return {
        reason: String,
    },
    Suspend {
        reason: String,
    },
    Resume,
    ImmediateControl {
        reason: String,
    },
    Decide {
        approve: bool,
        reason: String,
    },
}

impl Operation {
    fn action(&self) -> Action {
        match self {
            Self::Conclude { .. } => Action::Conclude,
            Self::Transfer { .. } => Action::Transfer,
            Self::Return { .. } => Action::Return,
            Self::Suspend { .. } => Action::Suspend,
            Self::Resume => Action::Resume,
            Self::ImmediateControl { .. } => Action::ImmediateControl,
            Self::Decide { .. } => Action::Decide,
        }
    }
}

/// A hand-off from the declaration platform.
#[derive(Debug, Clone)]
pub struct Enqueue {
    pub request_id: String,
    pub declaration_number: String,
    pub lane: String,
    pub items: Vec<RoutedItem>,
    pub kind: TaskKind,
    pub change_request_id: String,
}

#[derive(Debug, Clone)]
pub struct Reviews {
    tasks: TaskRepository,
    routing: RoutingRepository,
    outbox: Outbox,
    declaration: DeclarationPeer,
    claim_millis: i64,
    /// The configured table, stored as version 1 on first use.
    configured: Arc<(Date, Vec<ChapterRange>)>,
    seeded: Arc<OnceCell<()>>,
}

/// The declaration platform, called as this platform's service identity.
#[derive(Debug, Clone)]
pub struct DeclarationPeer {
    pub channel: Peer,
    pub credentials: ServiceCredentials,
}

fn task_id() -> String {
    // Version 7: ordered by time, so the queue is served oldest first by id.
    format!("RT{}", uuid::Uuid::now_v7().simple()).to_ascii_uppercase()
}

fn stage_job(task: &TaskRecord, stage: DeclarationStage, sub_centre: &str, reason: &str) -> Job {
    Job::ReportTransition {
        declaration_number: task.declaration_number.clone(),
        to_stage: stage.as_str_name().to_owned(),
        house_code: sub_centre.to_owned(),
        reason: reason.to_owned(),
        review_sub_centre: sub_centre.to_owned(),
    }
}

fn required(field: &str, value: &str, what: &str) -> Result<String> {
    let value = value.trim();
    if value.is_empty() {
        Err(Error::invalid(field, "REQUIRED", what))
    } else {
        Ok(value.to_owned())
    }
}

impl Reviews {
    pub fn new(
        tasks: TaskRepository,
        routing: RoutingRepository,
        outbox: Outbox,
        declaration: DeclarationPeer,
        claim: Duration,
        configured: (Date, Vec<ChapterRange>),
    ) -> Self {
        Self {
            tasks,
            routing,
            outbox,
            declaration,
            claim_millis: i64::try_from(claim.as_millis()).unwrap_or(i64::MAX / 4),
            configured: Arc::new(configured),
            seeded: Arc::new(OnceCell::new()),
        }
    }

    pub fn outbox(&self) -> &Outbox {
        &self.outbox
    }

    /// The routing table in force on `day`.
    pub async fn table(&self, day: Date) -> Result<PublishedTable> {
        self.seeded
            .get_or_try_init(|| async {
                let (effective_from, ranges) = &*self.configured;
                self.routing.seed(*effective_from, ranges).await
            })
            .await?;
        self.routing.in_force(day).await?.ok_or_else(|| {
            Error::not_found(
                "NO_ROUTING_TABLE",
                format!("no routing table is in force on {day}"),
            )
        })
    }

    pub async fn publish(
        &self,
        caller: &Caller,
        effective_from: Date,
        ranges: Vec<ChapterRange>,
    ) -> Result<PublishedTable> {
        RoutingTable::new(0, effective_from, ranges.clone())?;
        let published = self
            .routing
            .publish(effective_from, &ranges, &caller.subject)
            .await?;
        tracing::info!(version = published.table.version, %effective_from, by = %caller.subject, "routing table published");
        Ok(published)
    }

    pub async fn route(&self, items: &[RoutedItem], day: Date) -> Result<Routing> {
        route(&self.table(day).await?.table, items)
    }

    /// The hand-off: idempotent per request id, and a declaration has at most one open
    /// review task.
    pub async fn enqueue(&self, caller: &Caller, request: Enqueue) -> Result<TaskRecord> {
        if let Some(task) = self.tasks.by_request(&request.request_id).await? {
            return Ok(task);
        }
        let reviews = self.tasks.reviews_of(&request.declaration_number).await?;
        if request.kind == TaskKind::DeclarationReview
            && let Some(open) = reviews.iter().find(|task| task.state.is_open())
        {
            return Ok(open.clone());
        }
        let mut routing = self.route(&request.items, today()).await?;
        // A change request is decided where the declaration is reviewed.
        if request.kind != TaskKind::DeclarationReview
            && let Some(latest) = reviews.first()
        {
            routing.sub_centre = latest.sub_centre.clone();
        }
        let now = OffsetDateTime::now_utc();
        let task = TaskRecord {
            id: task_id(),
            request_id: request.request_id,
            kind: request.kind,
            state: TaskState::Queued,
            declaration_number: request.declaration_number,
            sub_centre: routing.sub_centre.clone(),
            post: String::new(),
            lane: request.lane,
            claimed_by: None,
            claim_expires_at: None,
            change_request_id: request.change_request_id,
            routing,
            enqueued_at: now,
            updated_at: now,
        };
        let jobs = match task.kind {
            TaskKind::DeclarationReview => vec![stage_job(
                &task,
                DeclarationStage::UnderReview,
                &task.sub_centre,
                "routed to the review sub-centre",
            )],
            _ => Vec::new(),
        };
        let event = Event {
            action: Action::Enqueue,
            actor: caller.subject.clone(),
            reason: task.routing.basis.explanation().to_owned(),
        };
        let (stored, created) = self.tasks.insert(&task, &event, &jobs).await?;
        if created {
            self.outbox.wake();
            tracing::info!(task = %stored.id, declaration = %stored.declaration_number, kind = stored.kind.as_str(), sub_centre = %stored.sub_centre, "review task queued");
        }
        Ok(stored)
    }

    pub async fn get(&self, id: &str) -> Result<TaskRecord> {
        self.tasks
            .get(id)
            .await?
            .ok_or_else(|| Error::not_found("TASK_NOT_FOUND", format!("no review task {id}")))
    }

    pub async fn list(&self, filter: &TaskFilter) -> Result<Vec<TaskRecord>> {
        self.tasks.list(filter).await
    }

    /// Claims the oldest task of the caller's sub-centre (of one post, when given).
    pub async fn claim(&self, caller: &Caller, sub_centre: &str, post: &str) -> Result<TaskRecord> {
        let own = directly_under_house(&caller.house);
        let sub_centre = if sub_centre.is_empty() {
            own.as_str()
        } else {
            sub_centre
        };
        if sub_centre != own {
            return Err(Error::permission_denied(
                "TASK_OF_ANOTHER_SUB_CENTRE",
                format!("you review for {own}; you cannot claim from {sub_centre}'s queue"),
            ));
        }
        let task = self
            .tasks
            .claim(sub_centre, post.trim(), &caller.subject, self.claim_millis)
            .await?
            .ok_or_else(|| {
                Error::not_found(
                    "QUEUE_EMPTY",
                    format!("no task is waiting in {sub_centre}'s queue"),
                )
            })?;
        tracing::info!(task = %task.id, declaration = %task.declaration_number, reviewer = %caller.subject, "review task claimed");
        Ok(task)
    }

    /// Applies an operation, retrying when the task changed under it.
    pub async fn act(&self, caller: &Caller, id: &str, operation: Operation) -> Result<TaskRecord> {
        let action = operation.action();
        for _ in 0..3 {
            let task = self.get(id).await?;
            authorize(
                caller,
                action,
                TaskView {
                    kind: task.kind,
                    state: task.state,
                    sub_centre: &task.sub_centre,
                    claimed_by: task.claimed_by.as_deref(),
                    claim_live: task.claim_expires_at.is_some_and(|at| at > now_millis()),
                },
            )?;
            let change = self.change(caller, &task, &operation).await?;
            if self.tasks.apply(&change).await? {
                self.outbox.wake();
                tracing::info!(task = id, declaration = %task.declaration_number, action = action.as_str(), reviewer = %caller.subject, sub_centre = %task.sub_centre, "review action");
                return self.get(id).await;
            }
        }
        Err(Error::unavailable(
            "TASK_BUSY",
            format!("review task {id} keeps changing; retry"),
        ))
    }

    async fn change(
        &self,
        caller: &Caller,
        task: &TaskRecord,
        operation: &Operation,
    ) -> Result<Change> {
        let (_, to_state) = operation.action().moves();
        let here = task.sub_centre.as_str();
        let mut change = Change {
            task_id: task.id.clone(),
            from_state: task.state,
            from_claimed_by: task.claimed_by.clone(),
            to_state,
            claimed_by: task.claimed_by.clone(),
            claim_expires_at: task.claim_expires_at,
            event: Event {
                action: operation.action(),
                actor: caller.subject.clone(),
                reason: String::new(),
            },
            jobs: Vec::new(),
            follow_up: None,
            close_open_reviews: false,
            carry_change_requests_to: None,
        };
        match operation {
            Operation::Conclude { remarks } => {
                change.event.reason = remarks.trim().to_owned();
                change.jobs.push(stage_job(
                    task,
                    DeclarationStage::Concluded,
                    here,
                    "review concluded",
                ));
                if task.lane == "RED" {
                    change.jobs.push(Job::OrderInspection {
                        declaration_number: task.declaration_number.clone(),
                        reason: "RED lane: inspection after review".into(),
                        house_code: here.to_owned(),
                    });
                }
            }
            Operation::ImmediateControl { reason } => {
                let reason = required("reason", reason, "immediate control needs a reason")?;
                change.jobs.push(Job::OrderInspection {
                    declaration_number: task.declaration_number.clone(),
                    reason: format!("immediate control: {reason}"),
                    house_code: here.to_owned(),
                });
                change.event.reason = reason;
            }
            Operation::Return { reason } => {
                let reason = required(
                    "reason",
                    reason,
                    "a return tells the declarant what to correct",
                )?;
                change.jobs.push(stage_job(
                    task,
                    DeclarationStage::Returned,
                    here,
                    "returned for correction",
                ));
                change.event.reason = reason;
            }
            Operation::Suspend { reason } => {
                let reason = required("reason", reason, "a suspension needs a reason")?;
                change.claimed_by = None;
                change.claim_expires_at = None;
                change.jobs.push(stage_job(
                    task,
                    DeclarationStage::Suspended,
                    here,
                    "review on hold",
                ));
                change.event.reason = reason;
            }
            Operation::Resume => {
                change.claimed_by = Some(caller.subject.clone());
                change.claim_expires_at = Some(now_millis() + self.claim_millis);
                change.jobs.push(stage_job(
                    task,
                    DeclarationStage::UnderReview,
                    here,
                    "review resumed",
                ));
            }
            Operation::Transfer {
                to_post,
                to_sub_centre,
                reason,
            } => {
                let (to_post, to_sub_centre) = (to_post.trim(), to_sub_centre.trim());
                let destination = match (to_post.is_empty(), to_sub_centre.is_empty()) {
                    (false, true) => (here.to_owned(), to_post.to_owned()),
                    (true, false) => {
                        if !SUB_CENTRES.contains(&to_sub_centre) {
                            return Err(Error::invalid(
                                "to_sub_centre",
                                "NOT_A_SUB_CENTRE",
                                format!("{to_sub_centre:?} is not a review sub-centre"),
                            ));
                        }
                        if to_sub_centre == here {
                            return Err(Error::invalid(
                                "to_sub_centre",
                                "SAME_SUB_CENTRE",
                                "the task is already held here",
                            ));
                        }
                        required(
                            "reason",
                            reason,
                            "a transfer to another sub-centre needs a reason",
                        )?;
                        (to_sub_centre.to_owned(), String::new())
                    }
                    _ => {
                        return Err(Error::invalid(
                            "to_post",
                            "ONE_DESTINATION",
                            "name either another post of this sub-centre or another sub-centre",
                        ));
                    }
                };
                change.claimed_by = None;
                change.claim_expires_at = None;
                change.event.reason = format!(
                    "to {}{}: {}",
                    destination.0,
                    if destination.1.is_empty() {
                        String::new()
                    } else {
                        format!("/{}", destination.1)
                    },
                    reason.trim()
                );
                let now = OffsetDateTime::now_utc();
                change.follow_up = Some(TaskRecord {
                    id: task_id(),
                    request_id: format!("{}:transfer", task.id),
                    state: TaskState::Queued,
                    sub_centre: destination.0.clone(),
                    post: destination.1,
                    claimed_by: None,
                    claim_expires_at: None,
                    enqueued_at: now,
                    updated_at: now,
                    ..task.clone()
                });
                if destination.0 != here && task.kind == TaskKind::DeclarationReview {
                    change.carry_change_requests_to = Some(destination.0.clone());
                    change.jobs.push(stage_job(
                        task,
                        DeclarationStage::UnderReview,
                        &destination.0,
                        "transferred to another sub-centre",
                    ));
                }
            }
            Operation::Decide { approve, reason } => {
                let reason = required("reason", reason, "a decision needs a reason")?;
                if *approve && task.kind == TaskKind::Modification {
                    self.check_modification(&task.change_request_id).await?;
                }
                change.jobs.push(Job::RecordChangeDecision {
                    declaration_number: task.declaration_number.clone(),
                    change_request_id: task.change_request_id.clone(),
                    approve: *approve,
                    reason: reason.clone(),
                    house_code: here.to_owned(),
                });
                // An approved cancellation ends the declaration's review here; so does
                // an approved modification, whose content the declaration platform sends
                // through electronic review again: screened anew, it comes back to review
                // (wherever the routing table sends it) only when YELLOW or RED.
                if *approve && matches!(task.kind, TaskKind::Cancellation | TaskKind::Modification)
                {
                    change.close_open_reviews = true;
                }
                change.event.reason = format!(
                    "{}: {reason}",
                    if *approve { "approved" } else { "rejected" }
                );
            }
        }
        Ok(change)
    }

    /// Whether the modification of change request `id` still passes the logic checks
    /// (the declaration platform runs them again now): a sub-centre approves only
    /// content that electronic review would accept, though it was checked when it was
    /// asked for.
    async fn check_modification(&self, id: &str) -> Result<()> {
        let request = self
            .declaration
            .credentials
            .request(CheckChangeRequestRequest {
                change_request_id: id.to_owned(),
            })?;
        let Err(status) = DeclarationServiceClient::new(self.declaration.channel.clone())
            .check_change_request(request)
            .await
        else {
            return Ok(());
        };
        match violations_of(&status) {
            Some(violations) => {
                let listed: Vec<String> = violations.iter().map(ToString::to_string).collect();
                Err(Error::failed_precondition(
                    "MODIFICATION_NO_LONGER_PASSES",
                    format!(
                        "the proposed content no longer passes the logic checks: {}; reject the request (the declarant may ask again)",
                        listed.join("; ")
                    ),
                ))
            }
            None => {
                tracing::warn!(change_request = id, code = ?status.code(), message = status.message(), "cannot check a modification before approving it");
                Err(Error::unavailable(
                    "DECLARATION_PLATFORM_UNAVAILABLE",
                    "the proposed content cannot be checked now; decide again shortly",
                ))
            }
        }
    }

    /// Delivers the outbox's hand-offs until the process stops.
    pub fn spawn_relay(
        &self,
        background: &Background,
        declaration: Peer,
        field: Peer,
        credentials: ServiceCredentials,
    ) {
        self.outbox.clone().spawn_relay(background, move |job| {
            let (declaration, field, credentials) =
                (declaration.clone(), field.clone(), credentials.clone());
            async move { deliver(job, declaration, field, &credentials).await }
        });
    }
}

async fn deliver(
    job: Job,
    declaration: Peer,
    field: Peer,
    credentials: &ServiceCredentials,
) -> Result<Delivery> {
    let (what, outcome) = match &job {
        Job::ReportTransition {
            declaration_number,
            to_stage,
            house_code,
            reason,
            review_sub_centre,
        } => {
            let request = RecordTransitionRequest {
                request_id: String::new(),
                declaration_number: declaration_number.clone(),
                to_stage: DeclarationStage::from_str_name(to_stage).unwrap_or_default() as i32,
                house_code: house_code.clone(),
                reason: reason.clone(),
                lane: 0,
                review_sub_centre: review_sub_centre.clone(),
                // Only whether it was recorded matters here.
                view: DeclarationView::Basic as i32,
            };
            let outcome = DeclarationServiceClient::new(declaration)
                .record_transition(credentials.request(request)?)
                .await
                .map(|_| ());
            ("declaration platform", outcome)
        }
        Job::OrderInspection {
            declaration_number,
            reason,
            house_code,
        } => {
            let request = OrderInspectionRequest {
                declaration_number: declaration_number.clone(),
                reason: reason.clone(),
                ordered_by_house: house_code.clone(),
            };
            let outcome = InspectionServiceClient::new(field)
                .order_inspection(credentials.request(request)?)
                .await
                .map(|_| ());
            ("field platform", outcome)
        }
        Job::RecordChangeDecision {
            change_request_id,
            declaration_number: _,
            approve,
            reason,
            house_code,
        } => {
            let request = RecordChangeDecisionRequest {
                change_request_id: change_request_id.clone(),
                approve: *approve,
                reason: reason.clone(),
                house_code: house_code.clone(),
            };
            let outcome = DeclarationServiceClient::new(declaration)
                .record_change_decision(credentials.request(request)?)
                .await
                .map(|_| ());
            ("declaration platform", outcome)
        }
    };
    Ok(settle(what, &job, outcome))
}
