//! The load generator's named scenarios. Each prepares what it needs once, then
//! makes realistic, distinct requests: call `n` never repeats a request that
//! must be fresh (a declaration number, a client request id).

use tonic::{Code, transport::Channel};
use tonic_health::pb::{HealthCheckRequest, health_client::HealthClient};

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ScenarioKind {
    /// `grpc.health.v1.Health/Check`: the bare-gRPC baseline.
    Health,
}

/// A prepared scenario.
#[derive(Debug)]
pub struct Scenario {
    kind: ScenarioKind,
    #[allow(dead_code)]
    token: String,
}

impl Scenario {
    pub async fn prepare(
        kind: ScenarioKind,
        _channel: Channel,
        token: String,
    ) -> anyhow::Result<Self> {
        Ok(Self { kind, token })
    }

    pub fn name(&self) -> &'static str {
        match self.kind {
            ScenarioKind::Health => "health",
        }
    }

    /// Makes call number `n`; an error is reported by its gRPC code.
    pub async fn call(&self, channel: Channel, _n: u64) -> Result<(), Code> {
        match self.kind {
            ScenarioKind::Health => {
                HealthClient::new(channel)
                    .check(HealthCheckRequest {
                        service: String::new(),
                    })
                    .await
                    .map_err(|status| status.code())?;
                Ok(())
            }
        }
    }
}
