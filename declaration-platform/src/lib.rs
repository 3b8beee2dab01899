//! The unified declaration platform: enterprises and brokers, manifests,
//! declarations, and their public status.
//!
//! The declaration owns its lifecycle; the other platforms report the transitions
//! they decide. Hand-offs (screening, review, change requests, summary-payment
//! restrictions) leave through the transactional outbox.

pub mod changes;
pub mod declarations;
pub mod domain;
pub mod enterprises;
pub mod grpc;
pub mod handoff;
pub mod outbox;
pub mod storage;

use customs_common::{
    auth::{AccessPolicy, Role},
    config::PlatformName,
    server::{MountedPlatform, PlatformContext, PlatformModule},
};
use customs_proto::declaration::{
    declaration_service_server::DeclarationServiceServer,
    enterprise_service_server::EnterpriseServiceServer,
    manifest_service_server::ManifestServiceServer,
};
use tonic::service::RoutesBuilder;

pub const SERVICES: &[&str] = &[
    "customs.declaration.v1.EnterpriseService",
    "customs.declaration.v1.ManifestService",
    "customs.declaration.v1.DeclarationService",
];

pub const MODULE: PlatformModule = PlatformModule {
    name: PlatformName::Declaration,
    migrations: storage::migrations,
    mount,
};

/// Who may call which method of this platform.
pub fn access_policy() -> AccessPolicy {
    use Role::*;
    let mut policy = AccessPolicy::new();
    let enterprises = SERVICES[0];
    policy
        .allow(
            enterprises,
            &[
                "RegisterEnterprise",
                "UpdateCreditClass",
                "SuspendEnterprise",
                "ReinstateEnterprise",
            ],
            &[Officer, Admin],
        )
        .allow(
            enterprises,
            &["GetEnterprise"],
            &[Enterprise, Broker, Officer, Reviewer, Admin],
        )
        .allow(
            enterprises,
            &["ListEnterprises"],
            &[Officer, Reviewer, Admin],
        )
        .allow(
            enterprises,
            // Configuration the gateway and the houses need to name a class.
            &["ListCreditSchemes"],
            &[Enterprise, Broker, Officer, Reviewer, Hotline, Admin],
        );
    let manifests = SERVICES[1];
    policy
        .allow(
            manifests,
            &["SubmitManifest"],
            &[Enterprise, Broker, Officer],
        )
        .allow(
            manifests,
            &["GetManifest"],
            &[Enterprise, Broker, Officer, Reviewer, Gate, Admin],
        );
    let declarations = SERVICES[2];
    policy
        .allow(
            declarations,
            &[
                "SubmitDeclaration",
                "RequestModification",
                "RequestCancellation",
            ],
            &[Enterprise, Broker],
        )
        .allow(
            declarations,
            &["GetDeclaration", "ListDeclarations"],
            &[Enterprise, Broker, Officer, Reviewer, Admin],
        )
        .allow(
            declarations,
            &["GetStatus", "WatchStatus"],
            &[Hotline, Enterprise, Broker, Officer, Admin],
        )
        .allow(
            declarations,
            // The other platforms' reports (their service identity): people move a
            // declaration through those platforms, whose rules (the deciding sub-centre,
            // duties secured before release) they would otherwise bypass.
            &[
                "RecordTransition",
                "RecordTimelineNote",
                "RecordChangeDecision",
                "CheckChangeRequest",
            ],
            &[Admin],
        );
    policy
}

fn mount(context: &PlatformContext, routes: &mut RoutesBuilder) -> anyhow::Result<MountedPlatform> {
    let database = &context.database;
    let outbox = outbox::outbox(database.clone());
    let schemes = std::sync::Arc::new(customs_common::credit::CreditSchemes::new(
        &context.settings.credit,
    )?);
    let enterprises = enterprises::Enterprises::new(
        storage::enterprises::EnterpriseRepository::new(database.clone(), schemes.clone()),
        outbox.clone(),
        schemes,
    );
    enterprises.spawn_credit_class_watch(&context.background);
    let declarations = declarations::Declarations::new(
        storage::declarations::DeclarationRepository::new(database.clone()),
        outbox.clone(),
    );
    let clients = &context.settings.clients;
    let credentials = customs_common::clients::ServiceCredentials::new(
        "declaration-platform",
        &context.settings.auth,
        &clients.service_token,
    )?;
    let (risk, review) = (
        context.peer(&clients.risk_url)?,
        context.peer(&clients.review_url)?,
    );
    let changes = changes::ChangeRequests::new(
        storage::changes::ChangeRepository::new(database.clone()),
        declarations.clone(),
        outbox.clone(),
        changes::LogicChecks {
            risk: risk.clone(),
            review: review.clone(),
            credentials: credentials.clone(),
        },
    );
    handoff::Relay {
        outbox,
        declarations: declarations.clone(),
        changes: changes.clone(),
        risk,
        review,
        field: context.peer(&clients.field_url)?,
        credentials,
    }
    .spawn(&context.background);
    routes
        .add_service(EnterpriseServiceServer::new(
            grpc::enterprise::EnterpriseService::new(enterprises),
        ))
        .add_service(ManifestServiceServer::new(
            grpc::manifest::ManifestService::new(storage::manifests::ManifestRepository::new(
                database.clone(),
            )),
        ))
        .add_service(DeclarationServiceServer::new(
            grpc::declaration::DeclarationService::new(declarations, changes),
        ));
    Ok(MountedPlatform {
        services: SERVICES,
        policy: access_policy(),
    })
}
