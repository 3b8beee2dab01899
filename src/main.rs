//! `gd-customs`: serves all four platforms (the default), or prints a development token.

use std::time::Duration;

use anyhow::Context as _;
use clap::{Parser, Subcommand};
use customs_common::{
    auth::{Role, mint_token},
    config::Settings,
};

#[derive(Debug, Parser)]
#[command(
    version,
    about = "Guangdong regional customs clearance: seven houses as one"
)]
struct Cli {
    #[command(subcommand)]
    command: Option<Command>,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// Serve the configured platforms (all four by default). The default command.
    Serve,
    /// Print a bearer token signed with the development secret (refused otherwise).
    Token {
        /// enterprise, broker, officer, reviewer, gate, hotline or admin.
        #[arg(long)]
        role: Role,
        /// The customs house (or office) the caller acts for, such as 5300.
        #[arg(long)]
        house: String,
        /// The enterprise the caller acts for (enterprise and broker roles).
        #[arg(long)]
        enterprise: Option<String>,
        /// Subject of the token; defaults to "<role>@<house>".
        #[arg(long)]
        subject: Option<String>,
        /// Lifetime in seconds.
        #[arg(long, default_value_t = 8 * 3600)]
        ttl_secs: u64,
    },
}

/// mimalloc rather than the system allocator: request handling makes many small,
/// short-lived allocations (messages, rows, hits), which it serves from per-thread pages
/// without the system allocator's consolidation passes.
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let cli = Cli::parse();
    let settings = Settings::load().context("loading configuration")?;
    match cli.command.unwrap_or(Command::Serve) {
        Command::Serve => {
            customs_common::telemetry::init(&settings.telemetry);
            let application = gd_customs::start(settings).await?;
            application.run_until_stopped().await
        }
        Command::Token {
            role,
            house,
            enterprise,
            subject,
            ttl_secs,
        } => {
            anyhow::ensure!(
                settings.auth.uses_development_secret(),
                "tokens can be minted only while the development secret is in use; \
                 production tokens come from the identity provider"
            );
            let subject = subject.unwrap_or_else(|| format!("{role}@{house}"));
            let token = mint_token(
                &settings.auth,
                &subject,
                role,
                &house,
                enterprise.as_deref(),
                Duration::from_secs(ttl_secs),
            )?;
            println!("{token}");
            Ok(())
        }
    }
}
