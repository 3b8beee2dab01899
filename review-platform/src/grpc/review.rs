//! `customs.review.v1.ReviewService`.

use std::{collections::BTreeMap, sync::Arc};

use customs_common::{
    Error, Violations,
    auth::Caller,
    codes::parse_declaration_number,
    paging::{next_page_token, page_limit},
};
use customs_proto::{
    common::Lane,
    convert::timestamp,
    review::{self as pb, review_service_server::ReviewService as ReviewServiceApi},
};
use rust_decimal::Decimal;
use time::OffsetDateTime;
use tonic::{Request, Response, Status};

use super::routing::{decision_message, routed_items};
use crate::{
    domain::task::{TaskKind, TaskState},
    reviews::{Enqueue, Operation, Reviews},
    storage::tasks::{TaskFilter, TaskRecord},
};

#[derive(Debug, Clone)]
pub struct ReviewService {
    reviews: Reviews,
    rates: Arc<BTreeMap<String, Decimal>>,
}

impl ReviewService {
    pub fn new(reviews: Reviews, rates: Arc<BTreeMap<String, Decimal>>) -> Self {
        Self { reviews, rates }
    }

    async fn act(
        &self,
        caller: &Caller,
        task_id: &str,
        operation: Operation,
    ) -> Result<Response<pb::ReviewTask>, Status> {
        if task_id.trim().is_empty() {
            return Err(Error::invalid("task_id", "REQUIRED", "the task to act on").into());
        }
        let task = self.reviews.act(caller, task_id.trim(), operation).await?;
        Ok(Response::new(task_message(task)))
    }
}

fn kind_to_proto(kind: TaskKind) -> pb::TaskKind {
    match kind {
        TaskKind::DeclarationReview => pb::TaskKind::DeclarationReview,
        TaskKind::Modification => pb::TaskKind::Modification,
        TaskKind::Cancellation => pb::TaskKind::Cancellation,
    }
}

fn state_to_proto(state: TaskState) -> pb::TaskState {
    match state {
        TaskState::Queued => pb::TaskState::Queued,
        TaskState::Claimed => pb::TaskState::Claimed,
        TaskState::Suspended => pb::TaskState::Suspended,
        TaskState::Concluded => pb::TaskState::Concluded,
        TaskState::Returned => pb::TaskState::Returned,
        TaskState::Transferred => pb::TaskState::Transferred,
        TaskState::Decided => pb::TaskState::Decided,
    }
}

fn state_from_proto(state: pb::TaskState) -> Option<TaskState> {
    TaskState::parse(state.as_str_name().trim_start_matches("TASK_STATE_"))
}

fn task_message(task: TaskRecord) -> pb::ReviewTask {
    pb::ReviewTask {
        routing: Some(decision_message(&task.declaration_number, &task.routing)),
        task_id: task.id,
        kind: kind_to_proto(task.kind) as i32,
        state: state_to_proto(task.state) as i32,
        declaration_number: task.declaration_number,
        sub_centre: task.sub_centre,
        post: task.post,
        lane: Lane::from_str_name(&format!("LANE_{}", task.lane)).unwrap_or_default() as i32,
        claimed_by: task.claimed_by.unwrap_or_default(),
        claim_expires_at: task
            .claim_expires_at
            .and_then(|ms| {
                OffsetDateTime::from_unix_timestamp_nanos(i128::from(ms) * 1_000_000).ok()
            })
            .map(timestamp),
        change_request_id: task.change_request_id,
        enqueued_at: Some(timestamp(task.enqueued_at)),
        updated_at: Some(timestamp(task.updated_at)),
    }
}

#[tonic::async_trait]
impl ReviewServiceApi for ReviewService {
    async fn enqueue_declaration(
        &self,
        request: Request<pb::EnqueueDeclarationRequest>,
    ) -> Result<Response<pb::ReviewTask>, Status> {
        let caller = Caller::of(&request)?.clone();
        let message = request.into_inner();
        let mut violations = Violations::new();
        if message.request_id.trim().is_empty() {
            violations.push("request_id", "REQUIRED", "a client request id is required");
        }
        let number = violations.keep(parse_declaration_number(
            "declaration_number",
            &message.declaration_number,
        ));
        let kind = match message.kind() {
            pb::TaskKind::Unspecified | pb::TaskKind::DeclarationReview => {
                TaskKind::DeclarationReview
            }
            pb::TaskKind::Modification => TaskKind::Modification,
            pb::TaskKind::Cancellation => TaskKind::Cancellation,
        };
        let lane = message.lane();
        if kind == TaskKind::DeclarationReview && !matches!(lane, Lane::Yellow | Lane::Red) {
            violations.push(
                "lane",
                "LANE_NOT_REVIEWED",
                "only YELLOW and RED lanes are reviewed before release",
            );
        }
        if kind != TaskKind::DeclarationReview && message.change_request_id.trim().is_empty() {
            violations.push(
                "change_request_id",
                "REQUIRED",
                "a modification or cancellation names its change request",
            );
        }
        let items = routed_items(&mut violations, &message.items, &self.rates);
        violations.into_result()?;
        let Some(declaration_number) = number else {
            return Err(
                Error::internal(anyhow::anyhow!("validation passed with a field missing")).into(),
            );
        };
        let task = self
            .reviews
            .enqueue(
                &caller,
                Enqueue {
                    request_id: message.request_id.trim().to_owned(),
                    declaration_number,
                    lane: lane.as_str_name().trim_start_matches("LANE_").to_owned(),
                    items,
                    kind,
                    change_request_id: message.change_request_id.trim().to_owned(),
                },
            )
            .await?;
        Ok(Response::new(task_message(task)))
    }

    async fn claim_task(
        &self,
        request: Request<pb::ClaimTaskRequest>,
    ) -> Result<Response<pb::ReviewTask>, Status> {
        let caller = Caller::of(&request)?.clone();
        let message = request.into_inner();
        let task = self
            .reviews
            .claim(&caller, message.sub_centre.trim(), &message.post)
            .await?;
        Ok(Response::new(task_message(task)))
    }

    async fn list_tasks(
        &self,
        request: Request<pb::ListTasksRequest>,
    ) -> Result<Response<pb::ListTasksResponse>, Status> {
        let message = request.into_inner();
        let limit = page_limit(message.page_size)?;
        let filter = TaskFilter {
            sub_centre: (!message.sub_centre.is_empty()).then(|| message.sub_centre.clone()),
            state: state_from_proto(message.state()),
            after: (!message.page_token.is_empty()).then(|| message.page_token.clone()),
            limit: limit + 1,
        };
        let mut tasks = self.reviews.list(&filter).await?;
        let next_page_token = next_page_token(&mut tasks, limit, |task| task.id.clone());
        Ok(Response::new(pb::ListTasksResponse {
            tasks: tasks.into_iter().map(task_message).collect(),
            next_page_token,
        }))
    }

    async fn conclude_task(
        &self,
        request: Request<pb::ConcludeTaskRequest>,
    ) -> Result<Response<pb::ReviewTask>, Status> {
        let caller = Caller::of(&request)?.clone();
        let message = request.into_inner();
        self.act(
            &caller,
            &message.task_id,
            Operation::Conclude {
                remarks: message.remarks,
            },
        )
        .await
    }

    async fn transfer_task(
        &self,
        request: Request<pb::TransferTaskRequest>,
    ) -> Result<Response<pb::ReviewTask>, Status> {
        let caller = Caller::of(&request)?.clone();
        let message = request.into_inner();
        let operation = Operation::Transfer {
            to_post: message.to_post,
            to_sub_centre: message.to_sub_centre,
            reason: message.reason,
        };
        self.act(&caller, &message.task_id, operation).await
    }

    async fn return_task(
        &self,
        request: Request<pb::ReturnTaskRequest>,
    ) -> Result<Response<pb::ReviewTask>, Status> {
        let caller = Caller::of(&request)?.clone();
        let message = request.into_inner();
        self.act(
            &caller,
            &message.task_id,
            Operation::Return {
                reason: message.reason,
            },
        )
        .await
    }

    async fn suspend_task(
        &self,
        request: Request<pb::SuspendTaskRequest>,
    ) -> Result<Response<pb::ReviewTask>, Status> {
        let caller = Caller::of(&request)?.clone();
        let message = request.into_inner();
        self.act(
            &caller,
            &message.task_id,
            Operation::Suspend {
                reason: message.reason,
            },
        )
        .await
    }

    async fn resume_task(
        &self,
        request: Request<pb::ResumeTaskRequest>,
    ) -> Result<Response<pb::ReviewTask>, Status> {
        let caller = Caller::of(&request)?.clone();
        let message = request.into_inner();
        self.act(&caller, &message.task_id, Operation::Resume).await
    }

    async fn order_immediate_control(
        &self,
        request: Request<pb::OrderImmediateControlRequest>,
    ) -> Result<Response<pb::ReviewTask>, Status> {
        let caller = Caller::of(&request)?.clone();
        let message = request.into_inner();
        self.act(
            &caller,
            &message.task_id,
            Operation::ImmediateControl {
                reason: message.reason,
            },
        )
        .await
    }

    async fn decide_change_request(
        &self,
        request: Request<pb::DecideChangeRequestRequest>,
    ) -> Result<Response<pb::ReviewTask>, Status> {
        let caller = Caller::of(&request)?.clone();
        let message = request.into_inner();
        let operation = Operation::Decide {
            approve: message.approve,
            reason: message.reason,
        };
        self.act(&caller, &message.task_id, operation).await
    }
}
