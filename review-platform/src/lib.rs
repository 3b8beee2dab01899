//! The specialised review platform: routing by HS chapter to the review sub-centres,
//! review queues, post-clearance batch re-review, and mutual-recognition rulings.
//!
//! `RulingService` is built. Routing, review queues and post-clearance re-review are
//! not yet (issue: review platform): their methods answer `UNIMPLEMENTED`, so that what
//! is missing is visible to any client.

pub mod domain;
pub mod grpc;
pub mod rulings;
pub mod storage;

use customs_common::{
    auth::{AccessPolicy, Role},
    config::PlatformName,
    server::{MountedPlatform, PlatformContext, PlatformModule},
};
use customs_proto::review::{
    post_review_service_server::{PostReviewService, PostReviewServiceServer},
    review_service_server::{ReviewService, ReviewServiceServer},
    routing_service_server::{RoutingService, RoutingServiceServer},
    ruling_service_server::RulingServiceServer,
};
use tonic::service::RoutesBuilder;

pub const SERVICES: &[&str] = &[
    "customs.review.v1.RoutingService",
    "customs.review.v1.ReviewService",
    "customs.review.v1.PostReviewService",
    "customs.review.v1.RulingService",
];

pub const MODULE: PlatformModule = PlatformModule {
    name: PlatformName::Review,
    migrations: storage::migrations,
    mount,
};

/// Who may call which method of this platform.
pub fn access_policy() -> AccessPolicy {
    use Role::*;
    let mut policy = AccessPolicy::new();
    policy
        .allow(
            SERVICES[0],
            &["RouteDeclaration", "GetRoutingTable"],
            &[Officer, Reviewer, Admin],
        )
        .allow(SERVICES[0], &["PublishRoutingTable"], &[Admin])
        .allow(SERVICES[1], &["EnqueueDeclaration"], &[Officer, Admin])
        .allow(
            SERVICES[1],
            &[
                "ClaimTask",
                "ConcludeTask",
                "TransferTask",
                "ReturnTask",
                "SuspendTask",
                "ResumeTask",
                "OrderImmediateControl",
                "DecideChangeRequest",
            ],
            &[Reviewer],
        )
        .allow(SERVICES[1], &["ListTasks"], &[Reviewer, Officer, Admin])
        .allow(
            SERVICES[2],
            &["DrawBatch", "RecordFinding"],
            &[Reviewer, Officer],
        )
        .allow(
            SERVICES[2],
            &["GetQualityReport"],
            &[Reviewer, Officer, Admin],
        )
        .allow(
            SERVICES[3],
            &["IssueRuling", "RevokeRuling", "DrawDownLicence"],
            &[Officer, Admin],
        )
        .allow(
            SERVICES[3],
            &["GetRuling", "FindRulings"],
            &[Enterprise, Broker, Officer, Reviewer, Admin],
        );
    policy
}

fn mount(context: &PlatformContext, routes: &mut RoutesBuilder) -> anyhow::Result<MountedPlatform> {
    let rulings = rulings::Rulings::new(
        storage::rulings::RulingRepository::new(context.database.clone()),
        context.store.clone(),
    );
    routes
        .add_service(RoutingServiceServer::new(Pending))
        .add_service(ReviewServiceServer::new(Pending))
        .add_service(PostReviewServiceServer::new(Pending))
        .add_service(RulingServiceServer::new(grpc::ruling::RulingService::new(
            rulings,
        )));
    Ok(MountedPlatform {
        services: SERVICES,
        policy: access_policy(),
    })
}

/// Services whose methods are not implemented yet: each answers `UNIMPLEMENTED`.
struct Pending;

impl RoutingService for Pending {}
impl ReviewService for Pending {}
impl PostReviewService for Pending {}
