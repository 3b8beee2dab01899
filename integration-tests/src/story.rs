//! The end-to-end story's building blocks, shared by the tests and the load generator:
//! register the parties, file the manifest, and build a declaration that passes every
//! logic check.

use customs_proto::{
    common::{
        ClearanceMode, CreditClass, DeclarationContent, DeclarationItem, Direction, Lane, Money,
        RulingKind,
    },
    declaration::{
        self as pb, enterprise_service_client::EnterpriseServiceClient,
        manifest_service_client::ManifestServiceClient,
    },
    review::{
        self as review_pb, review_service_client::ReviewServiceClient,
        ruling_service_client::RulingServiceClient,
    },
    risk::{self as risk_pb, control_instruction_service_client::ControlInstructionServiceClient},
};
use tonic::transport::Channel;

use crate::authorized;

pub const TRADER: &str = "4403960001";
pub const BROKER: &str = "4403980001";
pub const PORT: &str = "5316";
pub const CONTAINER: &str = "MSKU1234565";

/// Registers an enterprise (idempotent on `code`).
pub async fn register(
    channel: &Channel,
    officer: &str,
    code: &str,
    kind: pb::EnterpriseKind,
    class: CreditClass,
) -> anyhow::Result<()> {
    EnterpriseServiceClient::new(channel.clone())
        .register_enterprise(authorized(
            pb::RegisterEnterpriseRequest {
                request_id: format!("register-{code}"),
                code: code.into(),
                name: format!("Enterprise {code}"),
                kind: kind as i32,
                credit_class: class as i32,
                home_house: "5300".into(),
                ..Default::default()
            },
            officer,
        ))
        .await?;
    Ok(())
}

/// Files the manifest for `bill` at Yantian with one container.
pub async fn manifest(channel: &Channel, officer: &str, bill: &str) -> anyhow::Result<()> {
    manifest_with(channel, officer, bill, &[CONTAINER]).await
}

/// Files the manifest for `bill` at Yantian with `containers`.
pub async fn manifest_with(
    channel: &Channel,
    officer: &str,
    bill: &str,
    containers: &[&str],
) -> anyhow::Result<()> {
    ManifestServiceClient::new(channel.clone())
        .submit_manifest(authorized(
            pb::SubmitManifestRequest {
                request_id: format!("manifest-{bill}"),
                manifest: Some(pb::Manifest {
                    bill_of_lading: bill.into(),
                    conveyance: "COSCO SHIPPING ARIES 042E".into(),
                    port_code: PORT.into(),
                    direction: Direction::Import as i32,
                    containers: containers
                        .iter()
                        .map(|container| pb::ManifestContainer {
                            container_number: container.to_string(),
                            seal_number: "SL778812".into(),
                            gross_weight_kg: "18250.5".into(),
                        })
                        .collect(),
                    ..Default::default()
                }),
            },
            officer,
        ))
        .await?;
    Ok(())
}

/// The trader, a broker and a manifest: what a declaration needs to pass its checks.
pub async fn parties(channel: &Channel, officer: &str, bill: &str) -> anyhow::Result<()> {
    register(
        channel,
        officer,
        TRADER,
        pb::EnterpriseKind::Trader,
        CreditClass::AdvancedCertified,
    )
    .await?;
    register(
        channel,
        officer,
        BROKER,
        pb::EnterpriseKind::Broker,
        CreditClass::GeneralCredit,
    )
    .await?;
    manifest(channel, officer, bill).await
}

fn usd(amount: &str) -> Option<Money> {
    Some(Money {
        currency_code: "USD".into(),
        amount: amount.into(),
    })
}

/// An import declared at Shenzhen's first office for Yantian, integrated mode, with
/// `items` lines (notebook computers and frozen beef alternately).
pub fn declaration(bill: &str, items: usize) -> DeclarationContent {
    let lines: Vec<DeclarationItem> = (0..items)
        .map(|i| {
            let beef = i % 2 == 1;
            DeclarationItem {
                line_no: i as i32 + 1,
                hs_code: if beef { "0202300090" } else { "8471300000" }.into(),
                description: if beef {
                    "frozen boneless beef"
                } else {
                    "notebook computers"
                }
                .into(),
                origin_country: if beef { "AU" } else { "JP" }.into(),
                quantity: if beef { "1000" } else { "10" }.into(),
                unit: if beef { "KGM" } else { "PCE" }.into(),
                declared_value: usd(if beef { "5250.00" } else { "5000.00" }),
                rulings: Vec::new(),
            }
        })
        .collect();
    let total: rust_decimal::Decimal = lines
        .iter()
        .map(|l| {
            l.declared_value
                .as_ref()
                .map_or(rust_decimal::Decimal::ZERO, |m| {
                    m.amount.parse().unwrap_or_default()
                })
        })
        .sum();
    DeclarationContent {
        direction: Direction::Import as i32,
        clearance_mode: ClearanceMode::RegionalIntegrated as i32,
        declaring_office: "5301".into(),
        port_code: PORT.into(),
        enterprise_code: TRADER.into(),
        broker_code: BROKER.into(),
        trade_mode: "0110".into(),
        bill_of_lading: bill.into(),
        container_numbers: vec![CONTAINER.into()],
        total_value: usd(&format!("{total:.2}")),
        items: lines,
        guarantee_reference: String::new(),
        trading_country: "JP".into(),
    }
}

/// Issues a control instruction on an HS prefix that sends its declarations to `lane`.
pub async fn instruct(
    channel: &Channel,
    officer: &str,
    request_id: &str,
    prefix: &str,
    lane: Lane,
) {
    ControlInstructionServiceClient::new(channel.clone())
        .create_control_instruction(authorized(
            risk_pb::CreateControlInstructionRequest {
                request_id: request_id.into(),
                instruction: Some(risk_pb::ControlInstruction {
                    conditions: Some(risk_pb::InstructionConditions {
                        hs_prefixes: vec![prefix.into()],
                        ..Default::default()
                    }),
                    lane: lane as i32,
                    reason: format!("{request_id} campaign"),
                    ..Default::default()
                }),
            },
            officer,
        ))
        .await
        .unwrap_or_else(|status| panic!("issuing {request_id}: {status:?}"));
}

/// A request (as `token`) to modify declaration `number` to `content`.
pub async fn request_modification(
    channel: &Channel,
    token: &str,
    request_id: &str,
    number: &str,
    content: DeclarationContent,
    reason: &str,
) -> Result<pb::ChangeRequest, tonic::Status> {
    pb::declaration_service_client::DeclarationServiceClient::new(channel.clone())
        .request_modification(authorized(
            pb::RequestModificationRequest {
                request_id: request_id.into(),
                declaration_number: number.into(),
                proposed_content: Some(content),
                reason: reason.into(),
            },
            token,
        ))
        .await
        .map(tonic::Response::into_inner)
}

/// The broker's (`token`) request to cancel declaration `number` ("order withdrawn").
pub async fn request_cancellation(
    channel: &Channel,
    token: &str,
    request_id: &str,
    number: &str,
) -> pb::ChangeRequest {
    pb::declaration_service_client::DeclarationServiceClient::new(channel.clone())
        .request_cancellation(authorized(
            pb::RequestCancellationRequest {
                request_id: request_id.into(),
                declaration_number: number.into(),
                reason: "order withdrawn".into(),
            },
            token,
        ))
        .await
        .unwrap_or_else(|status| panic!("cancelling {number}: {status:?}"))
        .into_inner()
}

/// A reviewer (`token`) approves the change request of review task `task_id` ("not yet
/// released").
pub async fn approve_change(
    channel: &Channel,
    task_id: &str,
    token: &str,
) -> Result<review_pb::ReviewTask, tonic::Status> {
    ReviewServiceClient::new(channel.clone())
        .decide_change_request(authorized(
            review_pb::DecideChangeRequestRequest {
                task_id: task_id.into(),
                approve: true,
                reason: "not yet released".into(),
            },
            token,
        ))
        .await
        .map(tonic::Response::into_inner)
}

/// The declaration's public status, as the hotline (`token`) reads it.
pub async fn status(channel: &Channel, token: &str, number: &str) -> pb::DeclarationStatus {
    pb::declaration_service_client::DeclarationServiceClient::new(channel.clone())
        .get_status(authorized(
            pb::GetStatusRequest {
                declaration_number: number.into(),
            },
            token,
        ))
        .await
        .unwrap_or_else(|status| panic!("status of {number}: {status:?}"))
        .into_inner()
}

/// Submits a declaration as `token` (the gateway, for a broker or an enterprise).
pub async fn submit(
    channel: &Channel,
    token: &str,
    request_id: &str,
    content: DeclarationContent,
) -> pb::Declaration {
    pb::declaration_service_client::DeclarationServiceClient::new(channel.clone())
        .submit_declaration(authorized(
            pb::SubmitDeclarationRequest {
                request_id: request_id.into(),
                content: Some(content),
            },
            token,
        ))
        .await
        .unwrap_or_else(|status| panic!("submitting {request_id}: {status:?}"))
        .into_inner()
}

/// Polls until the declaration reaches `stage` (hand-offs are asynchronous).
pub async fn reach(
    channel: &Channel,
    token: &str,
    number: &str,
    stage: customs_proto::common::DeclarationStage,
) -> pb::Declaration {
    reach_where(
        channel,
        token,
        number,
        &format!("{stage:?}"),
        |declaration| declaration.stage() == stage,
    )
    .await
}

/// Polls until the declaration is as `wanted` says (`what` names it for the panic).
pub async fn reach_where(
    channel: &Channel,
    token: &str,
    number: &str,
    what: &str,
    wanted: impl Fn(&pb::Declaration) -> bool,
) -> pb::Declaration {
    let mut last = None;
    for _ in 0..300 {
        let declaration =
            pb::declaration_service_client::DeclarationServiceClient::new(channel.clone())
                .get_declaration(authorized(
                    pb::GetDeclarationRequest {
                        declaration_number: number.into(),
                    },
                    token,
                ))
                .await
                .unwrap_or_else(|status| panic!("reading {number}: {status:?}"))
                .into_inner();
        if wanted(&declaration) {
            return declaration;
        }
        last = Some((declaration.stage(), declaration.review_sub_centre));
        tokio::time::sleep(std::time::Duration::from_millis(50)).await;
    }
    panic!("declaration {number} never reached {what}; last (stage, sub-centre) {last:?}");
}

/// A frozen-beef import licence of `kg` for the story's trader, issued by `officer`;
/// returns its id.
pub async fn beef_licence(channel: &Channel, officer: &str, request_id: &str, kg: &str) -> String {
    let day = |year, month, day| Some(customs_proto::common::Date { year, month, day });
    RulingServiceClient::new(channel.clone())
        .issue_ruling(authorized(
            review_pb::IssueRulingRequest {
                request_id: request_id.into(),
                ruling: Some(review_pb::Ruling {
                    kind: RulingKind::Licence as i32,
                    holder: TRADER.into(),
                    subject: "frozen beef import licence".into(),
                    hs_code: "0202".into(),
                    quantity_granted: kg.into(),
                    unit: "KGM".into(),
                    valid_from: day(2020, 1, 1),
                    valid_until: day(2099, 12, 31),
                    ..Default::default()
                }),
                replaces: String::new(),
            },
            officer,
        ))
        .await
        .unwrap()
        .into_inner()
        .ruling_id
}
