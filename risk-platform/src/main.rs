//! Runs the risk platform as its own process.

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    customs_common::server::run_standalone(
        risk_platform::MODULE,
        customs_proto::FILE_DESCRIPTOR_SET,
    )
    .await
}
