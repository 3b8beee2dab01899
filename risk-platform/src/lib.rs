//! The unified risk-control platform: logic checks, screening against control
//! instructions, and the channel (lane) decision.
//!
//! Not implemented yet (issue: declaration and risk platforms): every method answers
//! `UNIMPLEMENTED`, so that what is missing is visible to any client.

pub mod domain;

use customs_common::{
    auth::{AccessPolicy, Role},
    config::PlatformName,
    server::{MountedPlatform, PlatformContext, PlatformModule},
};
use customs_proto::risk::{
    control_instruction_service_server::{
        ControlInstructionService, ControlInstructionServiceServer,
    },
    risk_parameter_service_server::{RiskParameterService, RiskParameterServiceServer},
    risk_service_server::{RiskService, RiskServiceServer},
};
use tonic::service::RoutesBuilder;

pub const SERVICES: &[&str] = &[
    "customs.risk.v1.RiskService",
    "customs.risk.v1.ControlInstructionService",
    "customs.risk.v1.RiskParameterService",
];

pub const MODULE: PlatformModule = PlatformModule {
    name: PlatformName::Risk,
    migrations: || None,
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
        .allow(
            SERVICES[0],
            &["ScreenDeclaration", "GetDecision"],
            &[Officer, Admin],
        )
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

fn mount(
    _context: &PlatformContext,
    routes: &mut RoutesBuilder,
) -> anyhow::Result<MountedPlatform> {
    routes
        .add_service(RiskServiceServer::new(Pending))
        .add_service(ControlInstructionServiceServer::new(Pending))
        .add_service(RiskParameterServiceServer::new(Pending));
    Ok(MountedPlatform {
        services: SERVICES,
        policy: access_policy(),
    })
}

/// Services whose methods are not implemented yet: each answers `UNIMPLEMENTED`.
struct Pending;

impl RiskService for Pending {}
impl ControlInstructionService for Pending {}
impl RiskParameterService for Pending {}
