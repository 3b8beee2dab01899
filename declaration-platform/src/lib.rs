//! The unified declaration platform: enterprises and brokers, manifests,
//! declarations, and their public status.
//!
//! Not implemented yet (issue: declaration and risk platforms): every method answers
//! `UNIMPLEMENTED`, so that what is missing is visible to any client.

use customs_common::{
    auth::{AccessPolicy, Role},
    config::PlatformName,
    server::{MountedPlatform, PlatformContext, PlatformModule},
};
use customs_proto::declaration::{
    declaration_service_server::{DeclarationService, DeclarationServiceServer},
    enterprise_service_server::{EnterpriseService, EnterpriseServiceServer},
    manifest_service_server::{ManifestService, ManifestServiceServer},
};
use tonic::service::RoutesBuilder;

pub const SERVICES: &[&str] = &[
    "customs.declaration.v1.EnterpriseService",
    "customs.declaration.v1.ManifestService",
    "customs.declaration.v1.DeclarationService",
];

pub const MODULE: PlatformModule = PlatformModule {
    name: PlatformName::Declaration,
    migrations: || None,
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
            &[Enterprise, Broker, Officer, Reviewer, Gate],
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
            &["RecordTransition"],
            &[Officer, Reviewer, Admin],
        );
    policy
}

fn mount(
    _context: &PlatformContext,
    routes: &mut RoutesBuilder,
) -> anyhow::Result<MountedPlatform> {
    routes
        .add_service(EnterpriseServiceServer::new(Pending))
        .add_service(ManifestServiceServer::new(Pending))
        .add_service(DeclarationServiceServer::new(Pending));
    Ok(MountedPlatform {
        services: SERVICES,
        policy: access_policy(),
    })
}

/// Services whose methods are not implemented yet: each answers `UNIMPLEMENTED`.
struct Pending;

impl EnterpriseService for Pending {}
impl ManifestService for Pending {}
impl DeclarationService for Pending {}
