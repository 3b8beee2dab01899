//! The unified risk-control platform: logic checks, screening against control
//! instructions, and the channel (lane) decision.
//!
//! Every method is built: the logic checks over facts looked up from the declaration
//! and review platforms, screening through the instruction index, and the lane decision.

pub mod domain;
pub mod grpc;
pub mod risk;
pub mod storage;

use customs_common::{
    auth::{AccessPolicy, Role},
    config::PlatformName,
    server::{MountedPlatform, PlatformContext, PlatformModule},
};
use customs_proto::risk::{
    control_instruction_service_server::ControlInstructionServiceServer,
    risk_parameter_service_server::RiskParameterServiceServer,
    risk_service_server::RiskServiceServer,
};
use tonic::service::RoutesBuilder;

pub const SERVICES: &[&str] = &[
    "customs.risk.v1.RiskService",
    "customs.risk.v1.ControlInstructionService",
    "customs.risk.v1.RiskParameterService",
];

pub const MODULE: PlatformModule = PlatformModule {
    name: PlatformName::Risk,
    migrations: storage::migrations,
    mount,
};

/// Who may call which method of this platform. Decisions and instructions are for
/// officers and auditors, never for the enterprise.
pub fn access_policy() -> AccessPolicy {
    use Role::*;
    let mut policy = AccessPolicy::new();
    policy
        .allow(
            SERVICES[0],
            &["CheckDeclaration"],
            &[Enterprise, Broker, Officer, Admin],
        )
        // Screening is the declaration platform's hand-off (its service identity): a
        // decision recorded by anyone else would stand for the declaration's revision
        // when its own screening came.
        .allow(SERVICES[0], &["ScreenDeclaration"], &[Admin])
        .allow(SERVICES[0], &["GetDecision"], &[Officer, Admin])
        .allow(
            SERVICES[1],
            &["CreateControlInstruction", "RevokeControlInstruction"],
            &[Officer, Admin],
        )
        .allow(
            SERVICES[1],
            &["GetControlInstruction", "ListControlInstructions"],
            &[Officer, Reviewer, Admin],
        )
        .allow(SERVICES[2], &["GetRiskParameters"], &[Officer, Admin])
        .allow(SERVICES[2], &["UpdateRiskParameters"], &[Admin]);
    policy
}

fn mount(context: &PlatformContext, routes: &mut RoutesBuilder) -> anyhow::Result<MountedPlatform> {
    let clients = &context.settings.clients;
    let peers = risk::Peers {
        declaration: context.peer(&clients.declaration_url)?,
        review: context.peer(&clients.review_url)?,
        credentials: customs_common::clients::ServiceCredentials::new(
            "risk-platform",
            &context.settings.auth,
            &clients.service_token,
        )?,
    };
    let schemes = customs_common::credit::CreditSchemes::new(&context.settings.credit)?;
    // A declarant of a class without rates would never be sampled.
    schemes.check_covered("risk.sampling", context.settings.risk.sampling.keys())?;
    let risk = risk::Risk::new(
        storage::risk::RiskRepository::new(context.database.clone()),
        context.settings.clone(),
        std::sync::Arc::new(schemes),
        peers,
    );
    risk.spawn_index_refresh(&context.background);
    let service = grpc::risk::RiskService::new(risk.clone());
    routes
        .add_service(RiskServiceServer::new(service.clone()))
        .add_service(ControlInstructionServiceServer::new(
            grpc::instructions::ControlInstructionService::new(risk),
        ))
        .add_service(RiskParameterServiceServer::new(service));
    Ok(MountedPlatform {
        services: SERVICES,
        policy: access_policy(),
    })
}
