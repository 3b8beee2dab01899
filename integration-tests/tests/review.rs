//! Specialised review: routing by HS chapter, the sub-centres' queues and their
//! operations, change requests, and the quality report, through the public API.

use std::{collections::HashSet, time::Duration};

use customs_common::auth::Role;
use customs_proto::{
    common::{Date, DeclarationStage, Lane, Money, RulingCitation, RulingKind},
    declaration::{
        self as pb, declaration_service_client::DeclarationServiceClient as Declarations,
    },
    review::{
        self as review_pb, post_review_service_client::PostReviewServiceClient as PostReview,
        review_service_client::ReviewServiceClient as Reviews,
        routing_service_client::RoutingServiceClient as Routing,
        ruling_service_client::RulingServiceClient,
    },
    risk::{self as risk_pb, risk_service_client::RiskServiceClient},
};
use integration_tests::{BACKENDS, Backend, TestApp, authorized, story};
use time::OffsetDateTime;
use tonic::{Code, transport::Channel};
use tonic_types::StatusExt;

fn item(line_no: i32, hs_code: &str, currency: &str, amount: &str) -> review_pb::ItemValue {
    review_pb::ItemValue {
        line_no,
        hs_code: hs_code.into(),
        declared_value: Some(Money {
            currency_code: currency.into(),
            amount: amount.into(),
        }),
    }
}

fn day(date: time::Date) -> Date {
    date.into()
}

fn reason(status: &tonic::Status) -> String {
    status
        .get_details_error_info()
        .map(|info| info.reason)
        .unwrap_or_default()
}

/// The field violations, as (field, description), of a routing request refused as
/// `INVALID_ARGUMENT`.
async fn route_refused(
    routing: &mut Routing<Channel>,
    officer: &str,
    items: Vec<review_pb::ItemValue>,
) -> Vec<(String, String)> {
    let status = routing
        .route_declaration(authorized(
            review_pb::RouteDeclarationRequest {
                items,
                ..Default::default()
            },
            officer,
        ))
        .await
        .unwrap_err();
    assert_eq!(status.code(), Code::InvalidArgument);
    status
        .get_details_bad_request()
        .unwrap()
        .field_violations
        .into_iter()
        .map(|v| (v.field, v.description))
        .collect()
}

fn number(n: u32) -> String {
    format!("530120261{n:09}")
}

async fn enqueue(
    channel: &Channel,
    officer: &str,
    request_id: &str,
    number: &str,
    items: Vec<review_pb::ItemValue>,
) -> review_pb::ReviewTask {
    Reviews::new(channel.clone())
        .enqueue_declaration(authorized(
            review_pb::EnqueueDeclarationRequest {
                request_id: request_id.into(),
                declaration_number: number.into(),
                lane: Lane::Yellow as i32,
                items,
                kind: review_pb::TaskKind::DeclarationReview as i32,
                change_request_id: String::new(),
            },
            officer,
        ))
        .await
        .unwrap()
        .into_inner()
}

async fn conclude(
    channel: &Channel,
    reviewer: &str,
    task_id: &str,
    remarks: &str,
) -> Result<review_pb::ReviewTask, tonic::Status> {
    Reviews::new(channel.clone())
        .conclude_task(authorized(
            review_pb::ConcludeTaskRequest {
                task_id: task_id.into(),
                remarks: remarks.into(),
            },
            reviewer,
        ))
        .await
        .map(tonic::Response::into_inner)
}

async fn claim(
    channel: &Channel,
    reviewer: &str,
    post: &str,
) -> Result<review_pb::ReviewTask, tonic::Status> {
    Reviews::new(channel.clone())
        .claim_task(authorized(
            review_pb::ClaimTaskRequest {
                sub_centre: String::new(),
                post: post.into(),
            },
            reviewer,
        ))
        .await
        .map(tonic::Response::into_inner)
}

/// Claims from the caller's queue, waiting for a hand-off still on its way.
async fn claim_eventually(channel: &Channel, reviewer: &str) -> review_pb::ReviewTask {
    for _ in 0..100 {
        if let Ok(task) = claim(channel, reviewer, "").await {
            return task;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    panic!("nothing reached the queue");
}

/// Claims from the caller's queue until it gets the task of change request `id` (the
/// declaration's own review task may come first).
async fn claim_change_request(
    channel: &Channel,
    reviewer: &str,
    id: &str,
) -> review_pb::ReviewTask {
    loop {
        let task = claim_eventually(channel, reviewer).await;
        if task.change_request_id == id {
            return task;
        }
    }
}

#[tokio::test]
async fn routing_follows_the_chapter_table_by_value_in_cny_and_a_published_version_from_its_date() {
    let app = TestApp::spawn(Backend::Embedded).await.unwrap();
    let officer = app.token(Role::Officer, "5300", None);
    let admin = app.token(Role::Admin, "5300", None);
    let mut routing = Routing::new(app.channel.clone());

    // 1,000 USD of computers (84, Shenzhen) = 7,100 CNY against 7,000 CNY of plastics
    // (39, Guangzhou) plus 50 EUR of steel (72, Guangzhou) = 7,387.50 CNY: Guangzhou.
    let items = vec![
        item(1, "8471300000", "USD", "1000"),
        item(2, "3901100000", "CNY", "7000"),
        item(3, "7208100000", "EUR", "50"),
    ];
    let decision = routing
        .route_declaration(authorized(
            review_pb::RouteDeclarationRequest {
                items: items.clone(),
                ..Default::default()
            },
            &officer,
        ))
        .await
        .unwrap()
        .into_inner();
    assert_eq!(decision.sub_centre, "5100");
    assert_eq!(decision.table_version, 1);
    assert_eq!(decision.explanation, "largest value");
    let sums: Vec<(String, String, Vec<i32>)> = decision
        .sums
        .iter()
        .map(|s| {
            (
                s.sub_centre.clone(),
                s.total_cny.clone().unwrap().amount,
                s.line_nos.clone(),
            )
        })
        .collect();
    assert_eq!(
        sums,
        [
            ("5100".into(), "7387.50".into(), vec![2, 3]),
            ("5300".into(), "7100.00".into(), vec![1])
        ]
    );

    // A currency without a configured rate is a field violation.
    let refused = route_refused(
        &mut routing,
        &officer,
        vec![item(1, "8471300000", "XAU", "1")],
    )
    .await;
    assert_eq!(refused[0].0, "items[0].declared_value.currency_code");

    // So is a line number given twice, or not positive.
    let refused = route_refused(
        &mut routing,
        &officer,
        vec![
            item(1, "8471300000", "CNY", "1"),
            item(1, "0202300090", "CNY", "1"),
            item(0, "0202300090", "CNY", "1"),
        ],
    )
    .await;
    let unique = "line numbers are positive and unique (LINE_NO_INVALID)";
    assert_eq!(
        refused,
        [
            ("items[1].line_no".to_owned(), unique.to_owned()),
            ("items[2].line_no".to_owned(), unique.to_owned())
        ]
    );

    // A new table moving chapters 84-85 to Huangpu from a future day.
    let today = OffsetDateTime::now_utc().date();
    let from = today + time::Duration::days(10);
    let mut ranges = routing
        .get_routing_table(authorized(
            review_pb::GetRoutingTableRequest::default(),
            &officer,
        ))
        .await
        .unwrap()
        .into_inner()
        .ranges;
    for range in &mut ranges {
        if range.first_chapter == 84 {
            range.sub_centre = "5200".into();
        }
    }
    let denied = routing
        .publish_routing_table(authorized(
            review_pb::PublishRoutingTableRequest {
                effective_from: Some(day(from)),
                ranges: ranges.clone(),
            },
            &officer,
        ))
        .await
        .unwrap_err();
    assert_eq!(denied.code(), Code::PermissionDenied);
    let mut gap = ranges.clone();
    gap.retain(|range| range.first_chapter != 84);
    let invalid = routing
        .publish_routing_table(authorized(
            review_pb::PublishRoutingTableRequest {
                effective_from: Some(day(from)),
                ranges: gap,
            },
            &admin,
        ))
        .await
        .unwrap_err();
    assert_eq!(invalid.code(), Code::InvalidArgument);
    assert!(
        invalid.message().contains("")
            && format!("{:?}", invalid.get_details_bad_request()).contains("CHAPTERS_NOT_ROUTED")
    );
    let published = routing
        .publish_routing_table(authorized(
            review_pb::PublishRoutingTableRequest {
                effective_from: Some(day(from)),
                ranges,
            },
            &admin,
        ))
        .await
        .unwrap()
        .into_inner();
    assert_eq!(published.version, 2);

    let computers = vec![item(1, "8471300000", "USD", "1000")];
    let route_on = |as_of: Option<Date>| {
        let mut routing = routing.clone();
        let officer = officer.clone();
        let items = computers.clone();
        async move {
            routing
                .route_declaration(authorized(
                    review_pb::RouteDeclarationRequest {
                        items,
                        as_of,
                        ..Default::default()
                    },
                    &officer,
                ))
                .await
                .unwrap()
                .into_inner()
        }
    };
    let before = route_on(None).await;
    assert_eq!(
        (before.sub_centre.as_str(), before.table_version),
        ("5300", 1)
    );
    let after = route_on(Some(day(from))).await;
    assert_eq!(
        (after.sub_centre.as_str(), after.table_version),
        ("5200", 2)
    );
}

#[tokio::test]
async fn every_review_operation_and_its_permission_rule() {
    for backend in BACKENDS {
        let app = TestApp::spawn(backend).await.unwrap();
        let channel = &app.channel;
        let officer = app.token(Role::Officer, "5300", None);
        let li = app.token(Role::Reviewer, "5300", None);
        let zhao = mint(&app, "zhao", "5301");
        let wang = app.token(Role::Reviewer, "5100", None);
        let computers = || vec![item(1, "8471300000", "CNY", "1000")];
        let mut reviews = Reviews::new(channel.clone());

        let task = enqueue(channel, &officer, "enqueue-1", &number(1), computers()).await;
        assert_eq!(
            (task.sub_centre.as_str(), task.state()),
            ("5300", review_pb::TaskState::Queued)
        );
        assert_eq!(
            task.routing.as_ref().unwrap().explanation,
            "single sub-centre"
        );
        // Idempotent per request id, and one open review per declaration.
        assert_eq!(
            enqueue(channel, &officer, "enqueue-1", &number(1), computers())
                .await
                .task_id,
            task.task_id
        );
        assert_eq!(
            enqueue(channel, &officer, "enqueue-1b", &number(1), computers())
                .await
                .task_id,
            task.task_id
        );

        // Guangzhou may not claim from Shenzhen's queue, and its own is empty.
        let denied = Reviews::new(channel.clone())
            .claim_task(authorized(
                review_pb::ClaimTaskRequest {
                    sub_centre: "5300".into(),
                    post: String::new(),
                },
                &wang,
            ))
            .await
            .unwrap_err();
        assert_eq!(denied.code(), Code::PermissionDenied);
        assert_eq!(
            reason(&claim(channel, &wang, "").await.unwrap_err()),
            "QUEUE_EMPTY"
        );

        let claimed = claim(channel, &li, "").await.unwrap();
        assert_eq!(claimed.task_id, task.task_id);
        assert_eq!(claimed.claimed_by, "reviewer@5300");
        let id = || task.task_id.clone();

        // Only the claimer acts; another sub-centre never does.
        let status = conclude(channel, &zhao, &id(), "ok").await.unwrap_err();
        assert_eq!(
            (status.code(), reason(&status).as_str()),
            (Code::FailedPrecondition, "TASK_NOT_CLAIMED_BY_YOU")
        );
        let status = conclude(channel, &wang, &id(), "ok").await.unwrap_err();
        assert_eq!(
            (status.code(), reason(&status).as_str()),
            (Code::PermissionDenied, "TASK_OF_ANOTHER_SUB_CENTRE")
        );
        let status = conclude(channel, &officer, &id(), "").await.unwrap_err();
        assert_eq!(
            status.code(),
            Code::PermissionDenied,
            "officers do not review"
        );

        // Suspend needs a reason; anyone of the sub-centre resumes.
        let status = reviews
            .suspend_task(authorized(
                review_pb::SuspendTaskRequest {
                    task_id: id(),
                    reason: " ".into(),
                },
                &li,
            ))
            .await
            .unwrap_err();
        assert_eq!(status.code(), Code::InvalidArgument);
        let suspended = reviews
            .suspend_task(authorized(
                review_pb::SuspendTaskRequest {
                    task_id: id(),
                    reason: "awaiting lab report".into(),
                },
                &li,
            ))
            .await
            .unwrap()
            .into_inner();
        assert_eq!(
            (suspended.state(), suspended.claimed_by.as_str()),
            (review_pb::TaskState::Suspended, "")
        );
        let status = reviews
            .resume_task(authorized(
                review_pb::ResumeTaskRequest { task_id: id() },
                &wang,
            ))
            .await
            .unwrap_err();
        assert_eq!(status.code(), Code::PermissionDenied);
        let resumed = reviews
            .resume_task(authorized(
                review_pb::ResumeTaskRequest { task_id: id() },
                &zhao,
            ))
            .await
            .unwrap()
            .into_inner();
        assert_eq!(
            (resumed.state(), resumed.claimed_by.as_str()),
            (review_pb::TaskState::Claimed, "zhao")
        );

        // Transfer to another post: a new queued task there; the old one is closed.
        let transfer =
            |to_post: &str, to_sub_centre: &str, reason: &str, task_id: String, token: String| {
                let mut reviews = reviews.clone();
                let request = review_pb::TransferTaskRequest {
                    task_id,
                    to_post: to_post.into(),
                    to_sub_centre: to_sub_centre.into(),
                    reason: reason.into(),
                };
                async move {
                    reviews
                        .transfer_task(authorized(request, &token))
                        .await
                        .map(tonic::Response::into_inner)
                }
            };
        let status = transfer("valuation", "5100", "x", id(), zhao.clone())
            .await
            .unwrap_err();
        assert_eq!(status.code(), Code::InvalidArgument, "one destination only");
        let moved = transfer("valuation", "", "", id(), zhao.clone())
            .await
            .unwrap();
        assert_eq!(moved.state(), review_pb::TaskState::Transferred);
        assert_eq!(
            reason(&claim(channel, &li, "classification").await.unwrap_err()),
            "QUEUE_EMPTY"
        );
        let at_post = claim(channel, &li, "valuation").await.unwrap();
        assert_ne!(at_post.task_id, task.task_id);
        assert_eq!(
            (at_post.post.as_str(), at_post.declaration_number.as_str()),
            ("valuation", number(1).as_str())
        );

        // Transfer to another sub-centre needs a reason; there Guangzhou returns it.
        let status = transfer("", "5100", "", at_post.task_id.clone(), li.clone())
            .await
            .unwrap_err();
        assert_eq!(status.code(), Code::InvalidArgument);
        transfer(
            "",
            "5100",
            "mostly plastics on inspection",
            at_post.task_id.clone(),
            li.clone(),
        )
        .await
        .unwrap();
        let in_guangzhou = claim(channel, &wang, "").await.unwrap();
        assert_eq!(in_guangzhou.sub_centre, "5100");
        let returned = reviews
            .return_task(authorized(
                review_pb::ReturnTaskRequest {
                    task_id: in_guangzhou.task_id.clone(),
                    reason: "invoice missing".into(),
                },
                &wang,
            ))
            .await
            .unwrap()
            .into_inner();
        assert_eq!(returned.state(), review_pb::TaskState::Returned);

        // Immediate control closes the review with an inspection order; conclude closes it.
        enqueue(channel, &officer, "enqueue-2", &number(2), computers()).await;
        enqueue(channel, &officer, "enqueue-3", &number(3), computers()).await;
        let second = claim(channel, &li, "").await.unwrap();
        let controlled = reviews
            .order_immediate_control(authorized(
                review_pb::OrderImmediateControlRequest {
                    task_id: second.task_id.clone(),
                    reason: "seal tampered".into(),
                },
                &li,
            ))
            .await
            .unwrap()
            .into_inner();
        assert_eq!(controlled.state(), review_pb::TaskState::Concluded);
        let third = claim(channel, &li, "").await.unwrap();
        let concluded = conclude(channel, &li, &third.task_id, "").await.unwrap();
        assert_eq!(concluded.state(), review_pb::TaskState::Concluded);
        let status = conclude(channel, &li, &third.task_id, "")
            .await
            .unwrap_err();
        assert_eq!(reason(&status), "TASK_STATE");

        // A change request goes where the declaration was reviewed and is decided there.
        let change = reviews
            .enqueue_declaration(authorized(
                review_pb::EnqueueDeclarationRequest {
                    request_id: "change-1".into(),
                    declaration_number: number(1),
                    lane: Lane::Yellow as i32,
                    items: vec![item(1, "0101210000", "CNY", "1")],
                    kind: review_pb::TaskKind::Cancellation as i32,
                    change_request_id: "CR1".into(),
                },
                &officer,
            ))
            .await
            .unwrap()
            .into_inner();
        assert_eq!(
            change.sub_centre, "5100",
            "the sub-centre that last held the review"
        );
        let change = claim(channel, &wang, "").await.unwrap();
        let status = conclude(channel, &wang, &change.task_id, "")
            .await
            .unwrap_err();
        assert_eq!(reason(&status), "ACTION_NOT_FOR_THIS_KIND");
        let decided = reject_change(channel, &change.task_id, &wang, "goods already loaded").await;
        assert_eq!(decided.state(), review_pb::TaskState::Decided);

        let listed = reviews
            .list_tasks(authorized(
                review_pb::ListTasksRequest {
                    sub_centre: "5300".into(),
                    state: review_pb::TaskState::Concluded as i32,
                    ..Default::default()
                },
                &officer,
            ))
            .await
            .unwrap()
            .into_inner();
        assert_eq!(listed.tasks.len(), 2, "{backend:?}");
    }
}

fn mint(app: &TestApp, subject: &str, house: &str) -> String {
    let claims = customs_common::auth::Claims::new(
        &app.settings.auth,
        subject,
        Role::Reviewer,
        house,
        None,
        Duration::from_secs(600),
    )
    .unwrap();
    customs_common::auth::sign_hs256(&app.settings.auth, &claims).unwrap()
}

#[tokio::test]
async fn an_abandoned_claim_returns_to_the_queue() {
    let app =
        TestApp::spawn_configured(Backend::Embedded, |settings| settings.review.claim_secs = 1)
            .await
            .unwrap();
    let officer = app.token(Role::Officer, "5300", None);
    let li = mint(&app, "li", "5300");
    let zhao = mint(&app, "zhao", "5300");
    let task = enqueue(
        &app.channel,
        &officer,
        "abandoned",
        &number(7),
        vec![item(1, "8471300000", "CNY", "1")],
    )
    .await;
    assert_eq!(
        claim(&app.channel, &li, "").await.unwrap().task_id,
        task.task_id
    );
    assert_eq!(
        reason(&claim(&app.channel, &zhao, "").await.unwrap_err()),
        "QUEUE_EMPTY"
    );
    tokio::time::sleep(Duration::from_millis(1_200)).await;
    let taken = claim(&app.channel, &zhao, "").await.unwrap();
    assert_eq!(
        (taken.task_id.as_str(), taken.claimed_by.as_str()),
        (task.task_id.as_str(), "zhao")
    );
    let status = conclude(&app.channel, &li, &task.task_id, "")
        .await
        .unwrap_err();
    assert_eq!(reason(&status), "TASK_NOT_CLAIMED_BY_YOU");
}

#[tokio::test]
async fn two_reviewers_claiming_from_one_queue_never_get_the_same_task() {
    for backend in BACKENDS {
        let app = TestApp::spawn(backend).await.unwrap();
        let officer = app.token(Role::Officer, "5300", None);
        for n in 0..40 {
            enqueue(
                &app.channel,
                &officer,
                &format!("race-{n}"),
                &number(100 + n),
                vec![item(1, "8471300000", "CNY", "1")],
            )
            .await;
        }
        let mut claimers = Vec::new();
        for reviewer in ["li", "zhao", "chen", "liu"] {
            let token = mint(&app, reviewer, "5300");
            let channel = app.channel.clone();
            claimers.push(tokio::spawn(async move {
                let mut mine = Vec::new();
                while let Ok(task) = claim(&channel, &token, "").await {
                    mine.push(task.task_id);
                }
                mine
            }));
        }
        let mut all = Vec::new();
        for claimer in claimers {
            all.extend(claimer.await.unwrap());
        }
        let distinct: HashSet<&String> = all.iter().collect();
        assert_eq!((all.len(), distinct.len()), (40, 40), "{backend:?}");
    }
}

/// The story: a YELLOW declaration reaches Shenzhen's queue, is returned, modified at
/// the enterprise's request (decided by the sub-centre), reviewed again and
/// concluded; another is cancelled; the period's report shows it.
#[tokio::test]
async fn a_yellow_declaration_is_reviewed_returned_modified_and_concluded_and_the_report_shows_it()
{
    for backend in BACKENDS {
        let started = OffsetDateTime::now_utc();
        let app = TestApp::spawn(backend).await.unwrap();
        let channel = &app.channel;
        let officer = app.token(Role::Officer, "5300", None);
        let broker = app.token(Role::Broker, "5300", Some(story::BROKER));
        let li = app.token(Role::Reviewer, "5300", None);
        story::parties(channel, &officer, "BL-REVIEW-1")
            .await
            .unwrap();
        story::instruct(channel, &officer, "computers-yellow", "8471", Lane::Yellow).await;
        let mut declarations = Declarations::new(channel.clone());
        let submit = |request_id: &str| {
            let mut declarations = declarations.clone();
            let broker = broker.clone();
            let request = pb::SubmitDeclarationRequest {
                request_id: request_id.into(),
                content: Some(story::declaration("BL-REVIEW-1", 1)),
            };
            async move {
                declarations
                    .submit_declaration(authorized(request, &broker))
                    .await
                    .unwrap()
                    .into_inner()
            }
        };
        let first = submit("review-story-1").await.declaration_number;
        let second = submit("review-story-2").await.declaration_number;

        let under_review =
            story::reach(channel, &officer, &first, DeclarationStage::UnderReview).await;
        assert_eq!(
            (
                under_review.review_sub_centre.as_str(),
                under_review.handling_house.as_str()
            ),
            ("5300", "5300")
        );
        story::reach(channel, &officer, &second, DeclarationStage::UnderReview).await;

        // Returned for correction.
        let mut reviews = Reviews::new(channel.clone());
        // The two are screened concurrently, so either may be queued first: the one
        // claimed first is the one returned and modified ("first" from here on).
        let task = claim(channel, &li, "").await.unwrap();
        let (first, second) = if task.declaration_number == first {
            (first, second)
        } else {
            (second, first)
        };
        assert_eq!(task.declaration_number, first);
        reviews
            .return_task(authorized(
                review_pb::ReturnTaskRequest {
                    task_id: task.task_id.clone(),
                    reason: "invoice missing".into(),
                },
                &li,
            ))
            .await
            .unwrap();
        story::reach(channel, &officer, &first, DeclarationStage::Returned).await;

        // The broker asks to modify; Shenzhen decides; the declaration is reviewed again.
        let mut corrected = story::declaration("BL-REVIEW-1", 1);
        corrected.items[0].description = "notebook computers, 14 inch, with invoice".into();
        let other_broker = app.token(Role::Broker, "5300", Some("4403980099"));
        let modify = async |token: &str| {
            story::request_modification(
                channel,
                token,
                "modify-1",
                &first,
                corrected.clone(),
                "invoice attached",
            )
            .await
        };
        let status = modify(&other_broker).await.unwrap_err();
        assert_eq!(
            status.code(),
            Code::NotFound,
            "another enterprise's declaration"
        );
        let change = modify(&broker).await.unwrap();
        assert_eq!(change.state(), pb::ChangeRequestState::Pending);
        let status = declarations
            .request_cancellation(authorized(
                pb::RequestCancellationRequest {
                    request_id: "cancel-while-pending".into(),
                    declaration_number: first.clone(),
                    reason: "x".into(),
                },
                &broker,
            ))
            .await
            .unwrap_err();
        assert_eq!(reason(&status), "CHANGE_ALREADY_PENDING");
        let decision_task = claim_eventually(channel, &li).await;
        // The second declaration's review was queued before the modification.
        let (second_task, modification) =
            if decision_task.kind() == review_pb::TaskKind::Modification {
                (claim_eventually(channel, &li).await, decision_task)
            } else {
                // The modification is forwarded asynchronously: it may come later.
                let modification = claim_eventually(channel, &li).await;
                (decision_task, modification)
            };
        assert_eq!(
            (modification.kind(), modification.change_request_id.as_str()),
            (
                review_pb::TaskKind::Modification,
                change.change_request_id.as_str()
            )
        );
        reviews
            .decide_change_request(authorized(
                review_pb::DecideChangeRequestRequest {
                    task_id: modification.task_id.clone(),
                    approve: true,
                    reason: "invoice now complete".into(),
                },
                &li,
            ))
            .await
            .unwrap();
        let modified = story::reach(channel, &officer, &first, DeclarationStage::UnderReview).await;
        assert_eq!(
            modified.content.unwrap().items[0].description,
            "notebook computers, 14 inch, with invoice"
        );
        let stages: Vec<_> = modified.events.iter().map(|e| e.to_stage()).collect();
        assert!(
            // The modified content went through electronic review again.
            stages.ends_with(&[
                DeclarationStage::Returned,
                DeclarationStage::Modified,
                DeclarationStage::Submitted,
                DeclarationStage::Accepted,
                DeclarationStage::LaneDecided,
                DeclarationStage::UnderReview
            ]),
            "{stages:?}"
        );
        let again = claim(channel, &li, "").await.unwrap();
        assert_eq!(
            (again.declaration_number.as_str(), again.kind()),
            (first.as_str(), review_pb::TaskKind::DeclarationReview)
        );
        conclude(channel, &li, &again.task_id, "valuation accepted")
            .await
            .unwrap();
        story::reach(channel, &officer, &first, DeclarationStage::Concluded).await;

        // The second is cancelled at the broker's request, approved by Shenzhen.
        assert_eq!(second_task.declaration_number, second);
        story::request_cancellation(channel, &broker, "cancel-2", &second).await;
        let cancellation = claim_eventually(channel, &li).await;
        story::approve_change(channel, &cancellation.task_id, &li)
            .await
            .unwrap();
        story::reach(channel, &officer, &second, DeclarationStage::Cancelled).await;
        // Its open review was closed with it.
        let status = conclude(channel, &li, &second_task.task_id, "")
            .await
            .unwrap_err();
        assert_eq!(reason(&status), "TASK_STATE");

        // The period: Shenzhen concluded one review and returned one.
        let report = PostReview::new(channel.clone())
            .get_quality_report(authorized(
                review_pb::GetQualityReportRequest {
                    period_start: Some(customs_proto::convert::timestamp(started)),
                    period_end: Some(customs_proto::convert::timestamp(
                        OffsetDateTime::now_utc() + time::Duration::minutes(1),
                    )),
                },
                &officer,
            ))
            .await
            .unwrap()
            .into_inner();
        let shenzhen = report
            .sub_centres
            .iter()
            .find(|s| s.sub_centre == "5300")
            .unwrap();
        assert_eq!(
            (shenzhen.tasks_concluded, shenzhen.return_rate.as_str()),
            (1, "0.5"),
            "{backend:?}"
        );
        assert!(shenzhen.conclude_seconds_p50 >= 0.0);
    }
}

/// A one-item declaration of computers (YELLOW by an instruction) under review in
/// Shenzhen, its bill of lading `bill`; returns its number.
async fn computers_under_review_in_shenzhen(app: &TestApp, bill: &str) -> String {
    let channel = &app.channel;
    let officer = app.token(Role::Officer, "5300", None);
    let broker = app.token(Role::Broker, "5300", Some(story::BROKER));
    story::parties(channel, &officer, bill).await.unwrap();
    story::instruct(channel, &officer, "computers-yellow", "8471", Lane::Yellow).await;
    let number = story::submit(
        channel,
        &broker,
        &format!("{bill}-submission"),
        story::declaration(bill, 1),
    )
    .await
    .declaration_number;
    let routed = story::reach(channel, &officer, &number, DeclarationStage::UnderReview).await;
    assert_eq!(routed.review_sub_centre, "5300", "computers: Shenzhen");
    number
}

async fn transfer_to_guangzhou(channel: &Channel, task_id: &str, reviewer: &str) {
    Reviews::new(channel.clone())
        .transfer_task(authorized(
            review_pb::TransferTaskRequest {
                task_id: task_id.into(),
                to_post: String::new(),
                to_sub_centre: "5100".into(),
                reason: "parts and accessories: Guangzhou's valuation team".into(),
            },
            reviewer,
        ))
        .await
        .unwrap();
}

/// A transfer to another sub-centre (转岗) moves the declaration there: its lifecycle
/// records the move, the hotline names the new handling house (and a gateway watching
/// the status is told, though the stage stays the same), and a change request is
/// decided by that house.
#[tokio::test]
async fn a_declaration_transferred_to_another_sub_centre_is_handled_there() {
    for backend in BACKENDS {
        let app = TestApp::spawn(backend).await.unwrap();
        let channel = &app.channel;
        let officer = app.token(Role::Officer, "5300", None);
        let broker = app.token(Role::Broker, "5300", Some(story::BROKER));
        let hotline = app.token(Role::Hotline, "5300", None);
        let li = app.token(Role::Reviewer, "5300", None);
        let wang = app.token(Role::Reviewer, "5100", None);
        let number = computers_under_review_in_shenzhen(&app, "BL-TRANSFER-1").await;
        // A gateway watching the declaration's public status.
        let mut watch = Declarations::new(channel.clone())
            .watch_status(authorized(
                pb::WatchStatusRequest {
                    declaration_number: number.clone(),
                },
                &hotline,
            ))
            .await
            .unwrap()
            .into_inner();
        let mut next_status = async || {
            tokio::time::timeout(Duration::from_secs(10), watch.message())
                .await
                .expect("a status within 10 s")
                .unwrap()
        };
        let watched = next_status().await.unwrap();
        assert_eq!(
            (watched.stage(), watched.handling_house.as_str()),
            (DeclarationStage::UnderReview, "5300")
        );

        let task = claim(channel, &li, "").await.unwrap();
        transfer_to_guangzhou(channel, &task.task_id, &li).await;
        let moved = story::reach_where(channel, &officer, &number, "review in 5100", |d| {
            d.review_sub_centre == "5100"
        })
        .await;
        assert_eq!(
            (moved.stage(), moved.handling_house.as_str()),
            (DeclarationStage::UnderReview, "5100"),
            "{backend:?}"
        );
        let last = moved.events.last().unwrap();
        assert_eq!(
            (
                last.from_stage(),
                last.to_stage(),
                last.house_code.as_str(),
                last.reason.as_str()
            ),
            (
                DeclarationStage::UnderReview,
                DeclarationStage::UnderReview,
                "5100",
                "transferred to another sub-centre"
            )
        );
        assert_eq!(
            moved
                .events
                .iter()
                .filter(|e| e.to_stage() == DeclarationStage::UnderReview)
                .count(),
            2,
            "routed once, transferred once"
        );

        // The watch is told of the move, though the stage is the same.
        let moved_status = next_status().await.unwrap();
        assert_eq!(
            (
                moved_status.stage(),
                moved_status.handling_house.as_str(),
                moved_status.timeline.len()
            ),
            (
                DeclarationStage::UnderReview,
                "5100",
                watched.timeline.len() + 1
            ),
            "{backend:?}"
        );

        // The hotline is told Guangzhou handles it now.
        let status = story::status(channel, &hotline, &number).await;
        assert_eq!(
            (
                status.handling_house.as_str(),
                status.handling_house_name_en.as_str(),
                status.timeline.last().map(|e| e.house_code.as_str())
            ),
            ("5100", "Guangzhou Customs", Some("5100"))
        );

        // The broker's cancellation is decided in Guangzhou, not Shenzhen.
        let change =
            story::request_cancellation(channel, &broker, "cancel-transferred", &number).await;
        assert_eq!(change.deciding_house, "5100");
        let review = claim_eventually(channel, &wang).await;
        assert_eq!(
            (review.kind(), review.declaration_number.as_str()),
            (review_pb::TaskKind::DeclarationReview, number.as_str())
        );
        let cancellation = claim_eventually(channel, &wang).await;
        assert_eq!(cancellation.kind(), review_pb::TaskKind::Cancellation);
        assert_eq!(
            reason(&claim(channel, &li, "").await.unwrap_err()),
            "QUEUE_EMPTY",
            "nothing of it is left in Shenzhen"
        );
        story::approve_change(channel, &cancellation.task_id, &wang)
            .await
            .unwrap();
        let cancelled = story::reach(channel, &officer, &number, DeclarationStage::Cancelled).await;
        assert_eq!(cancelled.handling_house, "5100");
        let last = next_status().await.unwrap();
        assert_eq!(
            (last.stage(), last.handling_house.as_str()),
            (DeclarationStage::Cancelled, "5100")
        );
        assert!(
            next_status().await.is_none(),
            "the watch ends at a final stage"
        );
    }
}

/// A cancellation waiting at Shenzhen when the declaration's review moves to Guangzhou
/// goes with it: Guangzhou, which now reviews the declaration, decides it. The Shenzhen
/// reviewer who had claimed it can no longer act on it.
#[tokio::test]
async fn a_change_request_goes_with_its_declaration_s_transfer() {
    for backend in BACKENDS {
        let app = TestApp::spawn(backend).await.unwrap();
        let channel = &app.channel;
        let officer = app.token(Role::Officer, "5300", None);
        let broker = app.token(Role::Broker, "5300", Some(story::BROKER));
        let li = app.token(Role::Reviewer, "5300", None);
        let wang = app.token(Role::Reviewer, "5100", None);
        let number = computers_under_review_in_shenzhen(&app, "BL-TRANSFER-2").await;
        let review = claim(channel, &li, "").await.unwrap();

        let change =
            story::request_cancellation(channel, &broker, "cancel-before-transfer", &number).await;
        assert_eq!(change.deciding_house, "5300");
        let cancellation = claim_eventually(channel, &li).await;
        assert_eq!(
            (cancellation.kind(), cancellation.sub_centre.as_str()),
            (review_pb::TaskKind::Cancellation, "5300")
        );

        transfer_to_guangzhou(channel, &review.task_id, &li).await;

        let refused = story::approve_change(channel, &cancellation.task_id, &li)
            .await
            .unwrap_err();
        assert_eq!(
            (refused.code(), reason(&refused)),
            (
                tonic::Code::PermissionDenied,
                "TASK_OF_ANOTHER_SUB_CENTRE".into()
            ),
            "{backend:?}"
        );
        assert_eq!(
            reason(&claim(channel, &li, "").await.unwrap_err()),
            "QUEUE_EMPTY",
            "nothing of it is left in Shenzhen"
        );
        let mut in_guangzhou = [
            claim_eventually(channel, &wang).await,
            claim_eventually(channel, &wang).await,
        ];
        in_guangzhou.sort_by_key(|task| task.kind);
        assert_eq!(
            in_guangzhou
                .iter()
                .map(|t| (
                    t.kind(),
                    t.declaration_number.as_str(),
                    t.sub_centre.as_str()
                ))
                .collect::<Vec<_>>(),
            [
                (
                    review_pb::TaskKind::DeclarationReview,
                    number.as_str(),
                    "5100"
                ),
                (review_pb::TaskKind::Cancellation, number.as_str(), "5100"),
            ]
        );
        assert_eq!(
            in_guangzhou[1].task_id, cancellation.task_id,
            "the same task, moved"
        );
        story::approve_change(channel, &cancellation.task_id, &wang)
            .await
            .unwrap();
        let cancelled = story::reach(channel, &officer, &number, DeclarationStage::Cancelled).await;
        assert_eq!(cancelled.handling_house, "5100");
    }
}

/// One change request at a time: of several sent at once for one declaration, one is
/// recorded and forwarded, the others are refused as a request is pending.
#[tokio::test]
async fn change_requests_sent_at_once_leave_one_pending() {
    for backend in BACKENDS {
        let app = TestApp::spawn(backend).await.unwrap();
        let channel = &app.channel;
        let broker = app.token(Role::Broker, "5300", Some(story::BROKER));
        let li = app.token(Role::Reviewer, "5300", None);
        let number = computers_under_review_in_shenzhen(&app, "BL-CHANGES-1").await;
        let answers = futures::future::join_all((0..8).map(|i| {
            let request = authorized(
                pb::RequestCancellationRequest {
                    request_id: format!("cancel-at-once-{i}"),
                    declaration_number: number.clone(),
                    reason: "order withdrawn".into(),
                },
                &broker,
            );
            let mut declarations = Declarations::new(channel.clone());
            async move { declarations.request_cancellation(request).await }
        }))
        .await;
        let (recorded, refused): (Vec<_>, Vec<_>) = answers.into_iter().partition(Result::is_ok);
        assert_eq!(recorded.len(), 1, "{backend:?}: {refused:?}");
        for status in refused.into_iter().map(Result::unwrap_err) {
            assert_eq!(
                (status.code(), reason(&status)),
                (Code::FailedPrecondition, "CHANGE_ALREADY_PENDING".into())
            );
        }
        // The review task and the one cancellation reach Shenzhen's queue, nothing more.
        let kinds: Vec<_> = [
            claim_eventually(channel, &li).await,
            claim_eventually(channel, &li).await,
        ]
        .iter()
        .map(|task| task.kind())
        .collect();
        assert!(
            kinds.contains(&review_pb::TaskKind::Cancellation),
            "{kinds:?}"
        );
        tokio::time::sleep(Duration::from_millis(300)).await;
        assert_eq!(
            reason(&claim(channel, &li, "").await.unwrap_err()),
            "QUEUE_EMPTY"
        );
    }
}

/// A modification's proposed content passes the logic checks (DOMAIN.md 5.2) before it
/// is filed, as the declaration passed them: a bill of lading with no manifest is named
/// field by field and nothing is forwarded; corrected, the request is filed.
#[tokio::test]
async fn a_modification_that_fails_the_logic_checks_is_refused_before_it_is_filed() {
    for backend in BACKENDS {
        let app = TestApp::spawn(backend).await.unwrap();
        let channel = &app.channel;
        let broker = app.token(Role::Broker, "5300", Some(story::BROKER));
        let li = app.token(Role::Reviewer, "5300", None);
        let number = computers_under_review_in_shenzhen(&app, "BL-MODIFY-CHECKED").await;
        let modify = async |request_id: &str, content| {
            story::request_modification(
                channel,
                &broker,
                request_id,
                &number,
                content,
                "bill of lading corrected",
            )
            .await
        };
        let status = modify("modify-unchecked", story::declaration("BL-NOWHERE", 1))
            .await
            .unwrap_err();
        assert_eq!(
            status.code(),
            Code::InvalidArgument,
            "{backend:?}: {status:?}"
        );
        let fields: Vec<_> = status
            .get_details_bad_request()
            .unwrap()
            .field_violations
            .into_iter()
            .map(|v| (v.field, v.description))
            .collect();
        assert!(
            fields.iter().any(
                |(field, description)| field == "proposed_content.bill_of_lading"
                    && description.ends_with("(MANIFEST_NOT_FOUND)")
            ),
            "{fields:?}"
        );
        // The content's own format is named the same way.
        let mut bad_office = story::declaration("BL-MODIFY-CHECKED", 1);
        bad_office.declaring_office = "9901".into();
        let status = modify("modify-bad-office", bad_office).await.unwrap_err();
        let fields: Vec<_> = status
            .get_details_bad_request()
            .unwrap()
            .field_violations
            .into_iter()
            .map(|v| v.field)
            .collect();
        assert_eq!(fields, ["proposed_content.declaring_office"], "{status:?}");
        // Nothing was filed: only the review task is queued, and a corrected request is.
        let task = claim_eventually(channel, &li).await;
        assert_eq!(task.kind(), review_pb::TaskKind::DeclarationReview);
        let mut corrected = story::declaration("BL-MODIFY-CHECKED", 1);
        corrected.items[0].description = "notebook computers, with invoice".into();
        let change = modify("modify-checked", corrected).await.unwrap();
        assert_eq!(change.state(), pb::ChangeRequestState::Pending);
        let forwarded = claim_eventually(channel, &li).await;
        assert_eq!(
            (forwarded.kind(), forwarded.change_request_id.as_str()),
            (
                review_pb::TaskKind::Modification,
                change.change_request_id.as_str()
            )
        );
    }
}

/// The story's parties on a bill, computers sent to review in Shenzhen (YELLOW), and a
/// 500 kg frozen-beef licence issued at Guangzhou for the story's trader.
struct LicenceCase {
    bill: String,
    officer: String,
    broker: String,
    /// A reviewer at Shenzhen.
    li: String,
    licence: String,
}

impl LicenceCase {
    async fn new(app: &TestApp, bill: &str) -> Self {
        let channel = &app.channel;
        let officer = app.token(Role::Officer, "5300", None);
        story::parties(channel, &officer, bill).await.unwrap();
        story::instruct(channel, &officer, "computers-yellow", "8471", Lane::Yellow).await;
        let guangzhou = app.token(Role::Officer, "5100", None);
        let licence = story::beef_licence(channel, &guangzhou, "licence-500", "500").await;
        Self {
            bill: bill.to_owned(),
            officer,
            broker: app.token(Role::Broker, "5300", Some(story::BROKER)),
            li: app.token(Role::Reviewer, "5300", None),
            licence,
        }
    }

    /// The story's declaration on the case's bill, citing `kg` of its licence (see
    /// `citing_licence`).
    fn citing(&self, hs_code: &str, kg: &str) -> customs_proto::common::DeclarationContent {
        citing_licence(&self.bill, &self.licence, hs_code, kg)
    }

    /// What is left of the case's licence, as its officer reads it.
    async fn remaining(&self, channel: &Channel) -> String {
        licence_remaining(channel, &self.officer, &self.licence).await
    }
}

/// Submits `content` as the broker (of `(broker, officer)`) and waits, as the officer,
/// until it is under review.
async fn under_review(
    channel: &Channel,
    (broker, officer): (&str, &str),
    request_id: &str,
    content: customs_proto::common::DeclarationContent,
) -> pb::Declaration {
    let number = story::submit(channel, broker, request_id, content)
        .await
        .declaration_number;
    story::reach(channel, officer, &number, DeclarationStage::UnderReview).await
}

/// What is left of licence `id`, as an officer (`token`) reads it.
async fn licence_remaining(channel: &Channel, token: &str, id: &str) -> String {
    RulingServiceClient::new(channel.clone())
        .get_ruling(authorized(
            review_pb::GetRulingRequest {
                ruling_id: id.into(),
            },
            token,
        ))
        .await
        .unwrap()
        .into_inner()
        .quantity_remaining
}

/// What is left of licence `id` once it reads `want`, the hand-offs that change it being
/// on their way (or what it reads after 5 s).
async fn licence_remaining_becomes(channel: &Channel, token: &str, id: &str, want: &str) -> String {
    let mut left = licence_remaining(channel, token, id).await;
    for _ in 0..100 {
        if left == want {
            break;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
        left = licence_remaining(channel, token, id).await;
    }
    left
}

/// A reviewer (`token`) rejects the change request of review task `task_id`.
async fn reject_change(
    channel: &Channel,
    task_id: &str,
    token: &str,
    reason: &str,
) -> review_pb::ReviewTask {
    Reviews::new(channel.clone())
        .decide_change_request(authorized(
            review_pb::DecideChangeRequestRequest {
                task_id: task_id.into(),
                approve: false,
                reason: reason.into(),
            },
            token,
        ))
        .await
        .unwrap()
        .into_inner()
}

/// The story's declaration on `bill`: computers (`hs_code`) on line 1, and on line 2
/// `kg` of beef citing `licence` for them.
fn citing_licence(
    bill: &str,
    licence: &str,
    hs_code: &str,
    kg: &str,
) -> customs_proto::common::DeclarationContent {
    let mut content = story::declaration(bill, 2);
    content.items[0].hs_code = hs_code.into();
    content.items[1].quantity = kg.into();
    content.items[1].rulings.push(RulingCitation {
        ruling_id: licence.into(),
        kind: RulingKind::Licence as i32,
        quantity: kg.into(),
    });
    content
}

/// An approved modification sends the new content through electronic review again, as
/// the declaration's next revision: its lane is decided anew (a RED instruction on the
/// new HS code now hits), and its licence is drawn anew (in place of what the first
/// content drew); a cancellation then gives back what the new content drew.
#[tokio::test]
async fn an_approved_modification_is_screened_again_and_draws_its_licence_anew() {
    for backend in BACKENDS {
        let app = TestApp::spawn(backend).await.unwrap();
        let channel = &app.channel;
        let case = LicenceCase::new(&app, "BL-REVISION-1").await;
        let LicenceCase {
            officer,
            broker,
            li,
            licence,
            ..
        } = &case;
        story::instruct(channel, officer, "parts-red", "8473", Lane::Red).await;
        // Computers on line 1, beef citing the licence on line 2.
        let first = under_review(
            channel,
            (broker, officer),
            "revision-0",
            case.citing("8471300000", "300"),
        )
        .await;
        let number = first.declaration_number.clone();
        assert_eq!(first.lane(), Lane::Yellow);
        assert_eq!(case.remaining(channel).await, "200", "{backend:?}");

        let modify = async |request_id: &str, kg: &str| {
            story::request_modification(
                channel,
                broker,
                request_id,
                &number,
                case.citing("8473300000", kg),
                &format!("parts, not computers; {kg} kg of beef"),
            )
            .await
        };
        // What the declaration holds counts as left for it: 200 + 300, not 600.
        let status = modify("revision-too-much", "600").await.unwrap_err();
        let fields: Vec<_> = status
            .get_details_bad_request()
            .unwrap()
            .field_violations
            .into_iter()
            .map(|v| (v.field, v.description))
            .collect();
        assert!(
            fields.iter().any(|(field, description)| field
                == "proposed_content.items[1].rulings[0].quantity"
                && description.ends_with("(LICENCE_QUANTITY_EXCEEDED)")),
            "{backend:?}: {fields:?}"
        );
        let change = modify("revision-1", "450").await.unwrap();
        let modification = claim_change_request(channel, li, &change.change_request_id).await;
        story::approve_change(channel, &modification.task_id, li)
            .await
            .unwrap();
        let modified = story::reach_where(channel, officer, &number, "screened again", |d| {
            d.stage() == DeclarationStage::UnderReview && d.lane() == Lane::Red
        })
        .await;
        let decisions: Vec<&str> = modified
            .events
            .iter()
            .filter(|e| e.to_stage() == DeclarationStage::LaneDecided)
            .map(|e| e.reason.as_str())
            .collect();
        assert_eq!(decisions.len(), 2, "{decisions:?}");
        assert_ne!(decisions[0], decisions[1], "a decision of its own");
        assert_eq!(
            case.remaining(channel).await,
            "50",
            "{backend:?}: 450 drawn in place of 300"
        );
        // Reviewed again at Shenzhen: a task of its own, the first one closed.
        let again = claim_eventually(channel, li).await;
        assert_eq!(
            (again.declaration_number.as_str(), again.kind()),
            (number.as_str(), review_pb::TaskKind::DeclarationReview)
        );

        // Cancelled: what the new content drew comes back.
        story::request_cancellation(channel, broker, "revision-cancel", &number).await;
        let cancellation = claim_eventually(channel, li).await;
        story::approve_change(channel, &cancellation.task_id, li)
            .await
            .unwrap();
        story::reach(channel, officer, &number, DeclarationStage::Cancelled).await;
        assert_eq!(
            licence_remaining_becomes(channel, officer, licence, "500").await,
            "500",
            "{backend:?}"
        );
    }
}

/// An approved modification's revision draws its licence in place of what the first
/// content drew, in one step: the 300 kg it holds are never free in between, so the
/// declarations submitted meanwhile that want them are refused, and the revision is
/// not.
#[tokio::test]
async fn a_modification_keeps_its_licence_draw_through_its_revision() {
    for backend in BACKENDS {
        let app = TestApp::spawn(backend).await.unwrap();
        let channel = &app.channel;
        let case = LicenceCase::new(&app, "BL-KEEP-1").await;
        let LicenceCase {
            officer,
            broker,
            li,
            ..
        } = &case;
        story::instruct(channel, officer, "parts-red", "8473", Lane::Red).await;
        let parties = (broker.as_str(), officer.as_str());
        let number = under_review(channel, parties, "keep-0", case.citing("8471300000", "300"))
            .await
            .declaration_number;
        under_review(
            channel,
            parties,
            "keep-other",
            case.citing("8471300000", "200"),
        )
        .await;
        assert_eq!(case.remaining(channel).await, "0", "{backend:?}");

        let change = story::request_modification(
            channel,
            broker,
            "keep-1",
            &number,
            case.citing("8473300000", "300"),
            "parts, not computers",
        )
        .await
        .unwrap();
        let task = claim_change_request(channel, li, &change.change_request_id).await;
        story::approve_change(channel, &task.task_id, li)
            .await
            .unwrap();
        // Declarations wanting the 300 kg while the revision goes through electronic
        // review: each is refused there, as none is ever free.
        let mut grabs = Vec::new();
        for n in 0..3 {
            let grab = case.citing("8471300000", "300");
            grabs.push(
                story::submit(channel, broker, &format!("keep-grab-{n}"), grab)
                    .await
                    .declaration_number,
            );
        }
        let revised = story::reach_where(channel, officer, &number, "screened again", |d| {
            d.stage() == DeclarationStage::Refused
                || d.stage() == DeclarationStage::UnderReview
                    && d.events
                        .iter()
                        .filter(|e| e.to_stage() == DeclarationStage::LaneDecided)
                        .count()
                        == 2
        })
        .await;
        assert_eq!(
            revised.stage(),
            DeclarationStage::UnderReview,
            "{backend:?}: the revision was refused"
        );
        for grab in &grabs {
            let refused = story::reach_where(channel, officer, grab, "electronic review", |d| {
                d.stage() != DeclarationStage::Submitted
            })
            .await;
            assert_eq!(refused.stage(), DeclarationStage::Refused, "{backend:?}");
            assert!(
                refused
                    .events
                    .iter()
                    .any(|e| e.reason.contains("LICENCE_QUANTITY_EXCEEDED")),
                "{backend:?}: {:?}",
                refused.events
            );
        }
        assert_eq!(
            revised.lane(),
            Lane::Red,
            "{backend:?}: the new HS code hits"
        );
        assert_eq!(revised.content.unwrap().items[0].hs_code, "8473300000");
        assert_eq!(
            case.remaining(channel).await,
            "0",
            "{backend:?}: still its 300 and the other's 200"
        );
    }
}

/// A modified declaration's revision refused at electronic review for another reason
/// than its licences (here a bill of lading no manifest carries, as the risk platform
/// is asked by the declaration platform's hand-off) gives back what it still held of
/// the licences it cites: it draws in place of its earlier content, so nothing was
/// given back before.
#[tokio::test]
async fn a_refused_revision_gives_back_the_licence_it_held() {
    for backend in BACKENDS {
        let app = TestApp::spawn(backend).await.unwrap();
        let channel = &app.channel;
        let case = LicenceCase::new(&app, "BL-GIVE-1").await;
        let LicenceCase {
            officer,
            broker,
            licence,
            ..
        } = &case;
        let number = under_review(
            channel,
            (broker, officer),
            "give-0",
            case.citing("8471300000", "300"),
        )
        .await
        .declaration_number;
        assert_eq!(case.remaining(channel).await, "200", "{backend:?}");

        let refused = RiskServiceClient::new(channel.clone())
            .screen_declaration(authorized(
                risk_pb::ScreenDeclarationRequest {
                    request_id: format!("{number}:r1"),
                    declaration_number: number.clone(),
                    content: Some(citing_licence("BL-NOWHERE", licence, "8471300000", "300")),
                    revision: 1,
                    ..Default::default()
                },
                &app.token(Role::Admin, "5300", None),
            ))
            .await
            .unwrap_err();
        assert_eq!(refused.code(), Code::InvalidArgument, "{backend:?}");
        assert!(
            format!("{:?}", refused.get_details_bad_request()).contains("MANIFEST_NOT_FOUND"),
            "{backend:?}: {refused:?}"
        );
        assert_eq!(
            case.remaining(channel).await,
            "500",
            "{backend:?}: its 300 kg given back"
        );
    }
}

/// A modification is checked when it is asked for and again when the sub-centre
/// approves it: here its licence was drawn down by another declaration meanwhile, so
/// the approval is refused (`FAILED_PRECONDITION`, saying why) and the sub-centre
/// rejects the request; the declaration keeps its content, its lane, its draw and its
/// review, instead of going back through electronic review to be refused.
#[tokio::test]
async fn a_modification_that_no_longer_passes_its_checks_cannot_be_approved() {
    for backend in BACKENDS {
        let app = TestApp::spawn(backend).await.unwrap();
        let channel = &app.channel;
        let case = LicenceCase::new(&app, "BL-STALE-1").await;
        let LicenceCase {
            officer,
            broker,
            li,
            ..
        } = &case;
        let number = under_review(
            channel,
            (broker, officer),
            "stale-0",
            case.citing("8471300000", "300"),
        )
        .await
        .declaration_number;
        assert_eq!(case.remaining(channel).await, "200", "{backend:?}");

        // 450 kg passes when asked for (200 left plus the 300 held)...
        let modify = async || {
            story::request_modification(
                channel,
                broker,
                "stale-450",
                &number,
                case.citing("8471300000", "450"),
                "450 kg of beef",
            )
            .await
            .unwrap()
        };
        let change = modify().await;
        assert_eq!(change.state(), pb::ChangeRequestState::Pending);
        // ...but another declaration draws the 200 before the sub-centre decides.
        under_review(
            channel,
            (broker, officer),
            "stale-other",
            case.citing("8471300000", "200"),
        )
        .await;
        assert_eq!(case.remaining(channel).await, "0");

        let task = claim_change_request(channel, li, &change.change_request_id).await;
        let refused = story::approve_change(channel, &task.task_id, li)
            .await
            .unwrap_err();
        assert_eq!(
            (refused.code(), reason(&refused).as_str()),
            (Code::FailedPrecondition, "MODIFICATION_NO_LONGER_PASSES"),
            "{backend:?}: {refused:?}"
        );
        assert!(
            refused.message().contains("LICENCE_QUANTITY_EXCEEDED"),
            "{}",
            refused.message()
        );
        assert_eq!(modify().await.state(), pb::ChangeRequestState::Pending);

        // The sub-centre rejects it instead.
        reject_change(
            channel,
            &task.task_id,
            li,
            "the licence no longer covers 450 kg",
        )
        .await;
        let mut decided = modify().await;
        for _ in 0..100 {
            if decided.state() != pb::ChangeRequestState::Pending {
                break;
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
            decided = modify().await;
        }
        assert_eq!(decided.state(), pb::ChangeRequestState::Rejected);
        let kept = story::reach(channel, officer, &number, DeclarationStage::UnderReview).await;
        assert_eq!(kept.content.unwrap().items[1].quantity, "300");
        assert_eq!(
            kept.events
                .iter()
                .filter(|e| e.to_stage() == DeclarationStage::LaneDecided)
                .count(),
            1,
            "not screened again"
        );
        assert_eq!(case.remaining(channel).await, "0", "its 300 kg still held");
        // Its review goes on at Shenzhen (Li claimed it while looking for the change
        // request).
        let open: Vec<_> = Reviews::new(channel.clone())
            .list_tasks(authorized(
                review_pb::ListTasksRequest {
                    page_size: 100,
                    sub_centre: "5300".into(),
                    state: review_pb::TaskState::Claimed as i32,
                    ..Default::default()
                },
                li,
            ))
            .await
            .unwrap()
            .into_inner()
            .tasks
            .into_iter()
            .filter(|task| {
                task.declaration_number == number
                    && task.kind() == review_pb::TaskKind::DeclarationReview
            })
            .collect();
        assert_eq!(open.len(), 1, "{backend:?}: {open:?}");
    }
}

/// The sub-centre's approval of a modification that asks for more of a licence than the
/// declaration holds reserves the difference there and then (its check, which the
/// approval makes first, draws the new quantity in place of the old), so that no other
/// declaration can take it before the approved revision is screened and draws it. A
/// modification that is then not applied (here rejected) gives the difference back.
#[tokio::test]
async fn approving_a_modification_reserves_the_licence_quantity_it_adds() {
    for backend in BACKENDS {
        let app = TestApp::spawn(backend).await.unwrap();
        let channel = &app.channel;
        let case = LicenceCase::new(&app, "BL-RESERVE-1").await;
        let LicenceCase {
            officer,
            broker,
            li,
            licence,
            ..
        } = &case;
        let number = under_review(
            channel,
            (broker, officer),
            "reserve-0",
            case.citing("8471300000", "300"),
        )
        .await
        .declaration_number;
        assert_eq!(case.remaining(channel).await, "200", "{backend:?}");
        let change = story::request_modification(
            channel,
            broker,
            "reserve-450",
            &number,
            case.citing("8471300000", "450"),
            "450 kg of beef",
        )
        .await
        .unwrap();
        assert_eq!(
            case.remaining(channel).await,
            "200",
            "asking reserves nothing"
        );

        // The check the sub-centre's approval makes first (as the review platform calls
        // it), twice: the 150 kg more are reserved once.
        let platforms = app.token(Role::Admin, "5300", None);
        for _ in 0..2 {
            Declarations::new(channel.clone())
                .check_change_request(authorized(
                    pb::CheckChangeRequestRequest {
                        change_request_id: change.change_request_id.clone(),
                    },
                    &platforms,
                ))
                .await
                .unwrap();
            assert_eq!(
                case.remaining(channel).await,
                "50",
                "{backend:?}: 450 held in place of 300"
            );
        }
        // The declaration itself is as it was until the approval is recorded.
        let before = story::reach(channel, officer, &number, DeclarationStage::UnderReview).await;
        assert_eq!(before.content.unwrap().items[1].quantity, "300");

        // Rejected instead: the 150 kg come back, the 300 stay held.
        let task = claim_change_request(channel, li, &change.change_request_id).await;
        reject_change(channel, &task.task_id, li, "300 kg it is").await;
        assert_eq!(
            licence_remaining_becomes(channel, officer, licence, "200").await,
            "200",
            "{backend:?}: the reservation given back"
        );
        let kept = story::reach(channel, officer, &number, DeclarationStage::UnderReview).await;
        assert_eq!(kept.content.unwrap().items[1].quantity, "300");
    }
}
