//! The specialised review platform: routing by HS chapter to the review sub-centres,
//! review queues, post-clearance batch re-review, and mutual-recognition rulings.
//!
//! Review tasks reach the platform through `ReviewService.EnqueueDeclaration` (the
//! declaration platform's hand-off for YELLOW and RED lanes, and its forwarded change
//! requests); every action goes back to the declaration's lifecycle, and inspections
//! are ordered at the field platform, through this platform's outbox.

pub mod domain;
pub mod grpc;
pub mod outbox;
pub mod post_review;
pub mod reviews;
pub mod rulings;
pub mod storage;

use anyhow::Context as _;
use customs_common::{
    auth::{AccessPolicy, Role},
    config::PlatformName,
    server::{MountedPlatform, PlatformContext, PlatformModule},
};
use customs_proto::review::{
    post_review_service_server::PostReviewServiceServer,
    review_service_server::ReviewServiceServer, routing_service_server::RoutingServiceServer,
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
            &[
                "IssueRuling",
                "RevokeRuling",
                "DrawDownLicence",
                "ReturnLicenceDraw",
                "GetLicenceDraw",
            ],
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
    let settings = &context.settings;
    let database = &context.database;
    let rulings = rulings::Rulings::new(
        storage::rulings::RulingRepository::new(database.clone()),
        context.store.clone(),
    );
    let review = &settings.review;
    let effective_from = customs_common::day::parse_iso_day(&review.routing_effective_from)
        .context("review.routing_effective_from is not a day (YYYY-MM-DD)")?;
    let ranges: Vec<domain::routing::ChapterRange> = review
        .routing
        .iter()
        .map(|range| domain::routing::ChapterRange {
            first: range.first,
            last: range.last,
            sub_centre: range.sub_centre.clone(),
        })
        .collect();
    domain::routing::RoutingTable::new(1, effective_from, ranges.clone())
        .map_err(|error| anyhow::anyhow!("review.routing is not a valid table: {error:?}"))?;
    let clients = &settings.clients;
    let declaration = context.peer(&clients.declaration_url)?;
    let field = context.peer(&clients.field_url)?;
    let credentials = customs_common::clients::ServiceCredentials::new(
        "review-platform",
        &settings.auth,
        &clients.service_token,
    )?;
    let reviews = reviews::Reviews::new(
        storage::tasks::TaskRepository::new(database.clone()),
        storage::routing::RoutingRepository::new(database.clone()),
        outbox::outbox(database.clone()),
        reviews::DeclarationPeer {
            channel: declaration.clone(),
            credentials: credentials.clone(),
        },
        std::time::Duration::from_secs(review.claim_secs),
        (effective_from, ranges),
    );
    reviews.spawn_relay(
        &context.background,
        declaration.clone(),
        field,
        credentials.clone(),
    );
    let rates = std::sync::Arc::new(settings.exchange_rates.clone());
    let post_review = post_review::PostReview {
        repository: storage::post_review::PostReviewRepository::new(database.clone()),
        tasks: storage::tasks::TaskRepository::new(database.clone()),
        reviews: reviews.clone(),
        declaration,
        credentials,
        seed: review.post_review_seed.clone(),
        share: review.post_review_share,
        rates: rates.clone(),
    };
    routes
        .add_service(RoutingServiceServer::new(
            grpc::routing::RoutingService::new(reviews.clone(), rates.clone()),
        ))
        .add_service(ReviewServiceServer::new(grpc::review::ReviewService::new(
            reviews, rates,
        )))
        .add_service(PostReviewServiceServer::new(
            grpc::post_review::PostReviewService::new(post_review),
        ))
        .add_service(RulingServiceServer::new(grpc::ruling::RulingService::new(
            rulings,
        )));
    Ok(MountedPlatform {
        services: SERVICES,
        policy: access_policy(),
    })
}
