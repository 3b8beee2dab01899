//! The field-operation platform: tax bills, the province-wide general guarantee,
//! inspection, transport monitoring, release and gate checks.
//!
//! `GuaranteeService` is built. Tax bills, inspection, transport monitoring and gate
//! checks are not yet (issue: field platform): their methods answer `UNIMPLEMENTED`.

pub mod domain;
pub mod grpc;
pub mod guarantees;
pub mod storage;

use customs_common::{
    auth::{AccessPolicy, Role},
    config::PlatformName,
    server::{MountedPlatform, PlatformContext, PlatformModule},
};
use customs_proto::field::{
    gate_service_server::{GateService, GateServiceServer},
    guarantee_service_server::GuaranteeServiceServer,
    inspection_service_server::{InspectionService, InspectionServiceServer},
    tax_service_server::{TaxService, TaxServiceServer},
    transport_service_server::{TransportService, TransportServiceServer},
};
use guarantees::Guarantees;
use storage::guarantees::GuaranteeRepository;
use tonic::service::RoutesBuilder;

pub const SERVICES: &[&str] = &[
    "customs.field.v1.TaxService",
    "customs.field.v1.GuaranteeService",
    "customs.field.v1.InspectionService",
    "customs.field.v1.TransportService",
    "customs.field.v1.GateService",
];

pub const MODULE: PlatformModule = PlatformModule {
    name: PlatformName::Field,
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
            &["AssessDuties", "RecordPayment"],
            &[Officer, Admin],
        )
        .allow(
            SERVICES[0],
            &["GetTaxBill", "RenderTaxBill"],
            &[Enterprise, Broker, Officer, Admin],
        )
        .allow(
            SERVICES[1],
            &[
                "RegisterGuarantee",
                "SuspendGuarantee",
                "ReserveDuties",
                "ReleaseReservation",
            ],
            &[Officer, Admin],
        )
        .allow(
            SERVICES[1],
            &["GetGuarantee"],
            &[Enterprise, Broker, Officer, Admin],
        )
        .allow(SERVICES[1], &["SetHolderRestriction"], &[Officer, Admin])
        .allow(SERVICES[1], &["RebuildBalances"], &[Admin])
        .allow(
            SERVICES[2],
            &["ChooseInspectionSite"],
            &[Enterprise, Broker],
        )
        .allow(
            SERVICES[2],
            &["GetInspection"],
            &[Enterprise, Broker, Officer],
        )
        .allow(SERVICES[2], &["RecordInspectionResult"], &[Officer])
        .allow(
            SERVICES[3],
            &["ReportTransportEvents", "GetTrack"],
            &[Officer, Admin],
        )
        .allow(SERVICES[4], &["CheckGate"], &[Gate])
        .allow(
            SERVICES[4],
            &["GetRelease"],
            &[Gate, Officer, Enterprise, Broker],
        );
    policy
}

fn mount(context: &PlatformContext, routes: &mut RoutesBuilder) -> anyhow::Result<MountedPlatform> {
    let guarantees = Guarantees::new(
        GuaranteeRepository::new(context.database.clone()),
        context.store.clone(),
    );
    routes
        .add_service(TaxServiceServer::new(Pending))
        .add_service(GuaranteeServiceServer::new(
            grpc::guarantee::GuaranteeService::new(guarantees),
        ))
        .add_service(InspectionServiceServer::new(Pending))
        .add_service(TransportServiceServer::new(Pending))
        .add_service(GateServiceServer::new(Pending));
    Ok(MountedPlatform {
        services: SERVICES,
        policy: access_policy(),
    })
}

/// Services whose methods are not implemented yet: each answers `UNIMPLEMENTED`.
struct Pending;

impl TaxService for Pending {}
impl InspectionService for Pending {}
impl TransportService for Pending {}
impl GateService for Pending {}
