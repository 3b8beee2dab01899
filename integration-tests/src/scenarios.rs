//! The load generator's named scenarios. Each prepares what it needs once, then
//! makes realistic, distinct requests: call `n` never repeats a request that must be
//! fresh (a declaration number, a client request id).

use std::time::Duration;

use anyhow::Context as _;
use customs_common::{
    auth::{Role, mint_token},
    config::AuthSettings,
};
use customs_proto::{
    common::{Date, Money},
    declaration::{
        GetStatusRequest, SubmitDeclarationRequest,
        declaration_service_client::DeclarationServiceClient,
    },
    field::{
        self as pb, gate_service_client::GateServiceClient,
        guarantee_service_client::GuaranteeServiceClient, tax_service_client::TaxServiceClient,
    },
};
use tonic::{Code, transport::Channel};
use tonic_health::pb::{HealthCheckRequest, health_client::HealthClient};

use crate::{authorized, story};

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ScenarioKind {
    /// `grpc.health.v1.Health/Check`: the bare-gRPC baseline.
    Health,
    /// `GuaranteeService/ReserveDuties`, every house against one hot guarantee.
    ReserveHot,
    /// `GuaranteeService/ReserveDuties` spread over 100 guarantees.
    ReserveSpread,
    /// `DeclarationService/SubmitDeclaration` by a broker: a fresh request id and a
    /// 3-item declaration every call (each is then screened in the background).
    Submit,
    /// `DeclarationService/GetStatus` by the hotline, over 200 declarations submitted
    /// during preparation.
    Status,
    /// `GateService/CheckGate` at Yantian over declarations taken through the whole
    /// story during preparation (declared, screened, taxed, paid, released):
    /// `LOADGEN_GATE_RELEASES` of them (default 5,000). The first check of each is a
    /// PASS that records the exit; later ones answer HOLD (already exited). Every
    /// check has its own request id, so every one is recorded.
    Gate,
}

const HOUSES: [&str; 7] = ["5100", "5200", "5300", "5700", "6000", "6700", "6800"];
const SPREAD: usize = 100;

/// A prepared scenario.
#[derive(Debug)]
pub struct Scenario {
    kind: ScenarioKind,
    token: String,
    /// The broker's token, for submissions.
    broker_token: String,
    /// The bill of lading the submissions travel under.
    bill: String,
    /// The hotline's token and the declarations it looks up.
    hotline_token: String,
    declarations: Vec<String>,
    /// A gate's token at Yantian.
    gate_token: String,
    /// (reference, access code) of the guarantees reserved against.
    guarantees: Vec<(String, String)>,
}

impl Scenario {
    pub async fn prepare(
        kind: ScenarioKind,
        channel: Channel,
        auth: &AuthSettings,
    ) -> anyhow::Result<Self> {
        let mint = |role, enterprise| {
            mint_token(
                auth,
                &format!("loadgen-{role}"),
                role,
                "5300",
                enterprise,
                Duration::from_secs(3600),
            )
        };
        let token = mint(Role::Admin, None)?;
        let broker_token = mint(Role::Broker, Some(story::BROKER))?;
        let bill = format!(
            "LOADGEN-{}",
            &uuid::Uuid::new_v4().simple().to_string()[..12]
        )
        .to_ascii_uppercase();
        let hotline_token = mint(Role::Hotline, None)?;
        let mut declarations = Vec::new();
        if matches!(
            kind,
            ScenarioKind::Submit | ScenarioKind::Status | ScenarioKind::Gate
        ) {
            story::parties(&channel, &mint(Role::Officer, None)?, &bill).await?;
        }
        if kind == ScenarioKind::Status {
            let mut client = DeclarationServiceClient::new(channel.clone());
            for _ in 0..200 {
                let declared = client
                    .submit_declaration(authorized(
                        SubmitDeclarationRequest {
                            request_id: uuid::Uuid::new_v4().to_string(),
                            content: Some(story::declaration(&bill, 3)),
                        },
                        &broker_token,
                    ))
                    .await
                    .context("submitting the declarations to look up")?;
                declarations.push(declared.into_inner().declaration_number);
            }
        }
        if kind == ScenarioKind::Gate {
            let releases = std::env::var("LOADGEN_GATE_RELEASES")
                .ok()
                .and_then(|v| v.parse().ok())
                .unwrap_or(5_000);
            declarations = released(
                &channel,
                &broker_token,
                &mint(Role::Officer, None)?,
                &bill,
                releases,
            )
            .await?;
        }
        let count = match kind {
            ScenarioKind::Health
            | ScenarioKind::Submit
            | ScenarioKind::Status
            | ScenarioKind::Gate => 0,
            ScenarioKind::ReserveHot => 1,
            ScenarioKind::ReserveSpread => SPREAD,
        };
        let mut client = GuaranteeServiceClient::new(channel);
        let mut guarantees = Vec::with_capacity(count);
        for i in 0..count {
            let guarantee = client
                .register_guarantee(authorized(
                    pb::RegisterGuaranteeRequest {
                        request_id: format!("loadgen-{}-{i}", uuid::Uuid::new_v4()),
                        bank: "Load Test Bank".into(),
                        holder: format!("44039{i:05}"),
                        amount: Some(Money {
                            currency_code: "CNY".into(),
                            amount: "1000000000000.00".into(),
                        }),
                        valid_from: Some(Date {
                            year: 2020,
                            month: 1,
                            day: 1,
                        }),
                        valid_until: Some(Date {
                            year: 2099,
                            month: 12,
                            day: 31,
                        }),
                    },
                    &token,
                ))
                .await
                .context("registering the scenario's guarantee")?
                .into_inner();
            guarantees.push((guarantee.reference, guarantee.access_code));
        }
        Ok(Self {
            kind,
            token,
            broker_token,
            bill,
            hotline_token,
            declarations,
            gate_token: mint_token(
                auth,
                "loadgen-gate",
                Role::Gate,
                "5316",
                None,
                Duration::from_secs(3600),
            )?,
            guarantees,
        })
    }

    pub fn name(&self) -> &'static str {
        match self.kind {
            ScenarioKind::Health => "health",
            ScenarioKind::ReserveHot => "reserve-hot",
            ScenarioKind::ReserveSpread => "reserve-spread",
            ScenarioKind::Submit => "submit",
            ScenarioKind::Status => "status",
            ScenarioKind::Gate => "gate",
        }
    }

    /// Makes call number `n`; an error is reported by its gRPC code.
    pub async fn call(&self, channel: Channel, n: u64) -> Result<(), Code> {
        match self.kind {
            ScenarioKind::Health => {
                HealthClient::new(channel)
                    .check(HealthCheckRequest {
                        service: String::new(),
                    })
                    .await
                    .map_err(|status| status.code())?;
            }
            ScenarioKind::Submit => {
                DeclarationServiceClient::new(channel)
                    .submit_declaration(authorized(
                        SubmitDeclarationRequest {
                            request_id: uuid::Uuid::new_v4().to_string(),
                            content: Some(story::declaration(&self.bill, 3)),
                        },
                        &self.broker_token,
                    ))
                    .await
                    .map_err(|status| status.code())?;
            }
            ScenarioKind::Status => {
                let number = &self.declarations[(n as usize) % self.declarations.len()];
                DeclarationServiceClient::new(channel)
                    .get_status(authorized(
                        GetStatusRequest {
                            declaration_number: number.clone(),
                        },
                        &self.hotline_token,
                    ))
                    .await
                    .map_err(|status| status.code())?;
            }
            ScenarioKind::Gate => {
                let number = &self.declarations[(n as usize) % self.declarations.len()];
                GateServiceClient::new(channel)
                    .check_gate(authorized(
                        pb::CheckGateRequest {
                            gate_id: format!("YT-{:02}", n % 16),
                            port_code: story::PORT.into(),
                            vehicle_plate: "粤B12345".into(),
                            container_numbers: vec![story::CONTAINER.into()],
                            declaration_numbers: vec![number.clone()],
                            request_id: format!("{}-{n}", self.bill),
                        },
                        &self.gate_token,
                    ))
                    .await
                    .map_err(|status| status.code())?;
            }
            ScenarioKind::ReserveHot | ScenarioKind::ReserveSpread => {
                let index = (n as usize) % self.guarantees.len();
                let (reference, access_code) = &self.guarantees[index];
                let house = HOUSES[(n as usize) % HOUSES.len()];
                // A fresh import declaration of the house's first office every call; the
                // guarantees are new each run, so numbers need not differ across runs.
                let declaration_number = format!("{}0120261{:09}", &house[..2], n % 1_000_000_000);
                GuaranteeServiceClient::new(channel)
                    .reserve_duties(authorized(
                        pb::ReserveDutiesRequest {
                            reference: reference.clone(),
                            access_code: access_code.clone(),
                            holder: format!("44039{index:05}"),
                            declaration_number,
                            amount: Some(Money {
                                currency_code: "CNY".into(),
                                amount: "1.00".into(),
                            }),
                            house_code: house.into(),
                        },
                        &self.token,
                    ))
                    .await
                    .map_err(|status| status.code())?;
            }
        }
        Ok(())
    }
}

/// Takes `count` declarations through the story to release: submitted, screened
/// (GREEN or BLUE ones kept), duties assessed and paid. Returns their numbers.
async fn released(
    channel: &Channel,
    broker: &str,
    officer: &str,
    bill: &str,
    count: usize,
) -> anyhow::Result<Vec<String>> {
    use customs_proto::{common::DeclarationStage, declaration::GetDeclarationRequest};
    use futures::{StreamExt as _, TryStreamExt as _};

    let one = |i: usize| {
        let (channel, broker, officer, bill) = (
            channel.clone(),
            broker.to_owned(),
            officer.to_owned(),
            bill.to_owned(),
        );
        async move {
            let mut declarations = DeclarationServiceClient::new(channel.clone());
            let number = declarations
                .submit_declaration(authorized(
                    SubmitDeclarationRequest {
                        request_id: format!("{bill}-release-{i}"),
                        content: Some(story::declaration(&bill, 1)),
                    },
                    &broker,
                ))
                .await
                .context("submitting")?
                .into_inner()
                .declaration_number;
            let decided = loop {
                let declaration = declarations
                    .get_declaration(authorized(
                        GetDeclarationRequest {
                            declaration_number: number.clone(),
                        },
                        &officer,
                    ))
                    .await
                    .context("reading")?
                    .into_inner();
                if !matches!(
                    declaration.stage(),
                    DeclarationStage::Submitted | DeclarationStage::Accepted
                ) {
                    break declaration;
                }
                tokio::time::sleep(Duration::from_millis(100)).await;
            };
            if decided.stage() != DeclarationStage::LaneDecided
                || !matches!(
                    decided.lane(),
                    customs_proto::common::Lane::Green | customs_proto::common::Lane::Blue
                )
            {
                return Ok::<_, anyhow::Error>(None);
            }
            let mut taxes = TaxServiceClient::new(channel);
            let bill = taxes
                .assess_duties(authorized(
                    pb::AssessDutiesRequest {
                        request_id: format!("assess-{number}"),
                        declaration_number: number.clone(),
                        payment_method: pb::PaymentMethod::Immediate as i32,
                        ..Default::default()
                    },
                    &broker,
                ))
                .await
                .context("assessing")?
                .into_inner();
            taxes
                .record_payment(authorized(
                    pb::RecordPaymentRequest {
                        request_id: format!("pay-{number}"),
                        declaration_number: number.clone(),
                        amount: bill.total,
                        payment_reference: "LOADGEN".into(),
                    },
                    &officer,
                ))
                .await
                .context("paying")?;
            Ok(Some(number))
        }
    };
    // Each declaration waits for its screening, read every 100 ms: with 32 at a time
    // the setup took some 230 releases a second, eight minutes before a run at 10,000
    // checks a second; with 256, some 650 a second (docs/benchmarks.md, twenty-fifth
    // session).
    let numbers: Vec<Option<String>> = futures::stream::iter(0..count)
        .map(one)
        .buffer_unordered(256)
        .try_collect()
        .await?;
    let numbers: Vec<String> = numbers.into_iter().flatten().collect();
    anyhow::ensure!(!numbers.is_empty(), "no declaration reached release");
    // The field platform reports releases through its outbox, in order: once the last
    // is RELEASED the backlog is delivered and the measurement starts quiet.
    let last = numbers.last().cloned().unwrap_or_default();
    let mut declarations = DeclarationServiceClient::new(channel.clone());
    for _ in 0..1200 {
        let declaration = declarations
            .get_declaration(authorized(
                GetDeclarationRequest {
                    declaration_number: last.clone(),
                },
                officer,
            ))
            .await
            .context("reading the last release")?
            .into_inner();
        if declaration.stage() == DeclarationStage::Released {
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    eprintln!(
        "prepared {} released declarations of {count} submitted",
        numbers.len()
    );
    Ok(numbers)
}
