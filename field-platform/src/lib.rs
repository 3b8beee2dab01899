//! The field-operation platform: tax bills, the province-wide general guarantee,
//! inspection, transport monitoring, release and gate checks.
//!
//! The platform decides the release itself (duties secured, inspection passed when
//! ordered) and reports every step to the declaration's lifecycle through its outbox.

pub mod domain;
pub mod grpc;
pub mod guarantees;
pub mod operations;
pub mod outbox;
pub mod render;
pub mod storage;
pub mod transits;

use anyhow::Context as _;
use customs_common::{
    auth::{AccessPolicy, Role},
    config::PlatformName,
    server::{MountedPlatform, PlatformContext, PlatformModule},
};
use customs_proto::field::{
    gate_service_server::GateServiceServer, guarantee_service_server::GuaranteeServiceServer,
    inspection_service_server::InspectionServiceServer, tax_service_server::TaxServiceServer,
    transit_service_server::TransitServiceServer, transport_service_server::TransportServiceServer,
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
    "customs.field.v1.TransitService",
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
            &["AssessDuties"],
            &[Enterprise, Broker, Officer, Admin],
        )
        .allow(SERVICES[0], &["RecordPayment"], &[Officer, Admin])
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
            &["OrderInspection"],
            &[Reviewer, Officer, Admin],
        )
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
            &[Officer, Gate, Admin],
        )
        .allow(SERVICES[3], &["LiftHold"], &[Officer])
        .allow(SERVICES[4], &["CheckGate"], &[Gate])
        .allow(SERVICES[5], &["DeclareTransit"], &[Enterprise, Broker])
        .allow(
            SERVICES[5],
            &[
                "ReviewTransit",
                "SealTransit",
                "UnsealTransit",
                "WriteOffTransit",
            ],
            &[Officer],
        )
        .allow(
            SERVICES[5],
            &["GetTransit"],
            &[Enterprise, Broker, Officer, Admin],
        )
        .allow(
            SERVICES[4],
            &["GetRelease"],
            &[Gate, Officer, Enterprise, Broker],
        );
    policy
}

fn mount(context: &PlatformContext, routes: &mut RoutesBuilder) -> anyhow::Result<MountedPlatform> {
    let settings = &context.settings;
    let database = &context.database;
    let guarantees = Guarantees::new(
        GuaranteeRepository::new(database.clone()),
        context.store.clone(),
    );
    let field_settings = &settings.field;
    let tariff = domain::tax::Tariff::new(
        field_settings.tariff_version,
        field_settings
            .tariff
            .iter()
            .map(|line| domain::tax::TariffLine {
                prefix: line.prefix.clone(),
                duty_rate: line.duty_rate,
                vat_rate: line.vat_rate,
            })
            .collect(),
    );
    let calendar = domain::calendar::WorkingCalendar::from_settings(&field_settings.calendar)
        .map_err(|why| anyhow::anyhow!("field.calendar: {why}"))?;
    let land_port_integrated_from =
        customs_common::day::parse_iso_day(&settings.risk.land_port_integrated_from)
            .context("risk.land_port_integrated_from is not a day (YYYY-MM-DD)")?;
    let clients = &settings.clients;
    let credentials = customs_common::clients::ServiceCredentials::new(
        "field-platform",
        &settings.auth,
        &clients.service_token,
    )?;
    let field = operations::Field {
        repository: storage::operations::OperationsRepository::new(database.clone()),
        transits: storage::transits::TransitRepository::new(database.clone()),
        guarantees: guarantees.clone(),
        outbox: outbox::outbox(database.clone()),
        peer: operations::DeclarationPeer {
            channel: context.peer(&clients.declaration_url)?,
            credentials,
        },
        config: operations::FieldConfig {
            inland_policy: {
                // Every class's inland inspection is decided by configuration.
                customs_common::credit::CreditSchemes::new(&settings.credit)?
                    .check_covered("field.inland_policy", field_settings.inland_policy.keys())?;
                std::sync::Arc::new(field_settings.inland_policy.clone())
            },
            tariff: std::sync::Arc::new(tariff),
            rates: std::sync::Arc::new(settings.exchange_rates.clone()),
            waiver_below: field_settings.tax_waiver_below,
            inland_sites: std::sync::Arc::new(field_settings.inland_sites.clone()),
            corridor_metres: field_settings.corridor_metres,
            calendar: std::sync::Arc::new(calendar),
            ports: std::sync::Arc::new(
                settings
                    .ports
                    .iter()
                    .map(|port| {
                        (
                            port.code.clone(),
                            port.kind == customs_common::config::PortKindSetting::Land,
                        )
                    })
                    .collect(),
            ),
            land_port_integrated_from,
        },
    };
    field.spawn_relay(&context.background, context.peer(&clients.review_url)?);
    field.spawn_arrears_watch(&context.background);
    let service = grpc::operations::FieldService::new(field);
    routes
        .add_service(TaxServiceServer::new(service.clone()))
        .add_service(GuaranteeServiceServer::new(
            grpc::guarantee::GuaranteeService::new(guarantees),
        ))
        .add_service(InspectionServiceServer::new(service.clone()))
        .add_service(TransportServiceServer::new(service.clone()))
        .add_service(GateServiceServer::new(service.clone()))
        .add_service(TransitServiceServer::new(service));
    Ok(MountedPlatform {
        services: SERVICES,
        policy: access_policy(),
    })
}
