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
    field::{self as pb, guarantee_service_client::GuaranteeServiceClient},
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
        if matches!(kind, ScenarioKind::Submit | ScenarioKind::Status) {
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
        let count = match kind {
            ScenarioKind::Health | ScenarioKind::Submit | ScenarioKind::Status => 0,
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
