//! Layered configuration: embedded defaults, then a file, then `CUSTOMS_*` variables.

use std::{net::SocketAddr, path::PathBuf};

use figment::{
    Figment,
    providers::{Env, Format, Toml},
};
use secrecy::{ExposeSecret, SecretString};
use serde::Deserialize;

/// The embedded defaults: the one-command run needs nothing else.
pub const DEFAULTS: &str = include_str!("../config/default.toml");

/// The development HS256 secret. Tokens can be minted only while it is in use.
pub const DEVELOPMENT_SECRET: &str = "gd-customs-development-secret-do-not-use-in-production";

#[derive(Debug, Clone, Deserialize)]
pub struct Settings {
    pub server: ServerSettings,
    pub database: DatabaseSettings,
    pub shared_store: SharedStoreSettings,
    pub auth: AuthSettings,
    pub telemetry: TelemetrySettings,
    pub clients: ClientSettings,
    pub ports: Vec<PortSettings>,
    /// CNY per unit of each currency.
    pub exchange_rates: std::collections::BTreeMap<String, rust_decimal::Decimal>,
    pub risk: RiskSettings,
    pub review: ReviewSettings,
    pub field: FieldSettings,
    /// The national credit schemes (DOMAIN.md 8).
    pub credit: crate::credit::CreditSettings,
}

/// One line of the tariff sample: the HS prefix it covers (longest prefix wins) and
/// its rates as decimals ("0.12").
#[derive(Debug, Clone, Deserialize)]
pub struct TariffLineSetting {
    pub prefix: String,
    pub duty_rate: rust_decimal::Decimal,
    pub vat_rate: rust_decimal::Decimal,
    pub description: String,
}

/// What the credit-class policy asks of an inland move to inspection.
#[derive(Debug, Clone, Deserialize)]
pub struct InlandPolicySetting {
    pub inland_allowed: bool,
    pub smart_lock: bool,
    pub vehicle_tracking: bool,
}

/// An inland supervised site where goods may be inspected, at the enterprise's home house.
#[derive(Debug, Clone, Deserialize)]
pub struct InlandSiteSetting {
    pub code: String,
    pub house: String,
    pub name: String,
    pub latitude: f64,
    pub longitude: f64,
}

/// One year of the working calendar, as the State Council publishes it each November
/// (国务院办公厅关于部分节假日安排的通知): every day off (public holidays and the days
/// taken with them) and every weekend day worked in their place (调休), `YYYY-MM-DD`.
#[derive(Debug, Clone, Deserialize)]
pub struct CalendarYearSetting {
    pub year: i32,
    pub days_off: Vec<String>,
    pub working_weekends: Vec<String>,
}

/// The field platform's configuration.
#[derive(Debug, Clone, Deserialize)]
pub struct FieldSettings {
    pub tariff_version: i64,
    pub tariff: Vec<TariffLineSetting>,
    /// Duty or VAT under this amount (CNY) per declaration is waived.
    pub tax_waiver_below: rust_decimal::Decimal,
    /// Per credit class (`ADVANCED_CERTIFIED`, …).
    pub inland_policy: std::collections::BTreeMap<String, InlandPolicySetting>,
    pub inland_sites: Vec<InlandSiteSetting>,
    /// How far from the declared route a tracked vehicle may be before a hold.
    pub corridor_metres: f64,
    /// Working days, by year (summary payment falls due on the 5th of the next month);
    /// a year not given counts Monday to Friday.
    #[serde(default)]
    pub calendar: Vec<CalendarYearSetting>,
}

/// One line of the routing table: HS chapters `first..=last` go to `sub_centre`.
#[derive(Debug, Clone, Deserialize)]
pub struct ChapterRangeSetting {
    pub first: u8,
    pub last: u8,
    pub sub_centre: String,
}

/// The review platform's defaults.
#[derive(Debug, Clone, Deserialize)]
pub struct ReviewSettings {
    /// Seconds a claimed task stays with its reviewer before it returns to the queue.
    pub claim_secs: u64,
    /// The routing table in force when none has been published (version 1).
    pub routing_effective_from: String,
    pub routing: Vec<ChapterRangeSetting>,
    /// Post-clearance re-review: the seed of the deterministic draw and the share of
    /// non-BLUE released declarations drawn (every BLUE one is).
    pub post_review_seed: String,
    pub post_review_share: rust_decimal::Decimal,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum PortKindSetting {
    Sea,
    Air,
    Land,
    Rail,
}

#[derive(Debug, Clone, Deserialize)]
pub struct PortSettings {
    pub code: String,
    pub house: String,
    pub kind: PortKindSetting,
    pub name_zh: String,
    pub name_en: String,
}

#[derive(Debug, Clone, Deserialize)]
pub struct LaneRates {
    pub red: rust_decimal::Decimal,
    pub yellow: rust_decimal::Decimal,
    pub blue: rust_decimal::Decimal,
}

/// Defaults of the risk parameters, before an operator versions their own.
#[derive(Debug, Clone, Deserialize)]
pub struct RiskSettings {
    pub sampling_seed: String,
    pub land_port_integrated_from: String,
    /// Per credit class (`ADVANCED_CERTIFIED`, …).
    pub sampling: std::collections::BTreeMap<String, LaneRates>,
}

#[derive(Debug, Clone, Deserialize)]
pub struct ServerSettings {
    pub listen: SocketAddr,
    /// Serve gRPC reflection (v1 and v1alpha).
    pub reflection: bool,
    pub request_timeout_secs: u64,
    pub platforms: Vec<PlatformName>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum PlatformName {
    Declaration,
    Risk,
    Review,
    Field,
}

#[derive(Debug, Clone, Deserialize)]
pub struct DatabaseSettings {
    /// `sqlite://…` or `postgres://…`.
    pub url: SecretString,
    pub max_connections: u32,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum SharedStoreBackend {
    /// Kept in the platform's own database: the embedded default.
    Sql,
    Redis,
}

#[derive(Debug, Clone, Deserialize)]
pub struct SharedStoreSettings {
    pub backend: SharedStoreBackend,
    pub redis_url: SecretString,
    /// Prefix of every Redis key, so that several deployments or tests share one Redis.
    pub key_prefix: String,
}

#[derive(Debug, Clone, Deserialize)]
pub struct AuthSettings {
    pub issuer: String,
    pub audience: String,
    /// HS256 secret; empty disables HS256.
    pub hs256_secret: SecretString,
    /// PEM public keys (RSA for RS256, EC P-256 for ES256).
    pub public_key_files: Vec<PathBuf>,
    pub leeway_secs: u64,
}

impl AuthSettings {
    /// Whether the well-known development secret is in use.
    pub fn uses_development_secret(&self) -> bool {
        self.hs256_secret.expose_secret() == DEVELOPMENT_SECRET
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum LogFormat {
    Pretty,
    Json,
}

#[derive(Debug, Clone, Deserialize)]
pub struct TelemetrySettings {
    pub format: LogFormat,
    pub filter: String,
}

/// Where the other platforms are reached; empty means this same process.
#[derive(Debug, Clone, Deserialize)]
pub struct ClientSettings {
    /// Bearer token for calls between platforms; empty mints one with the development
    /// secret (refused at start-up when that secret is not in use).
    pub service_token: SecretString,
    pub declaration_url: String,
    pub risk_url: String,
    pub review_url: String,
    pub field_url: String,
}

impl Settings {
    /// Loads the layers: embedded defaults, `CUSTOMS_CONFIG` (or `./customs.toml` when
    /// present), then `CUSTOMS_*` environment variables.
    pub fn load() -> Result<Self, Box<figment::Error>> {
        let file = std::env::var_os("CUSTOMS_CONFIG")
            .map(PathBuf::from)
            .unwrap_or_else(|| PathBuf::from("customs.toml"));
        Self::figment(Some(file)).extract().map_err(Box::new)
    }

    /// The embedded defaults and the environment, with an optional file between them.
    pub fn figment(file: Option<PathBuf>) -> Figment {
        let mut figment = Figment::from(Toml::string(DEFAULTS));
        if let Some(file) = file {
            figment = figment.merge(Toml::file(file));
        }
        figment.merge(Env::prefixed("CUSTOMS_").split("__"))
    }

    /// The defaults alone, for tests.
    pub fn defaults() -> Result<Self, Box<figment::Error>> {
        Figment::from(Toml::string(DEFAULTS))
            .extract()
            .map_err(Box::new)
    }
}

#[cfg(test)]
#[allow(clippy::result_large_err)] // figment's Jail closures return figment::Error
mod tests {
    use super::*;

    #[test]
    fn embedded_defaults_parse_and_listen_on_50051() {
        let settings = Settings::defaults().unwrap();
        assert_eq!(settings.server.listen.port(), 50051);
        assert_eq!(settings.shared_store.backend, SharedStoreBackend::Sql);
        assert!(settings.auth.uses_development_secret());
        assert_eq!(settings.server.platforms.len(), 4);
        assert!(
            settings
                .ports
                .iter()
                .any(|p| p.kind == PortKindSetting::Land)
        );
        assert_eq!(
            settings.exchange_rates["USD"],
            rust_decimal::Decimal::new(71, 1)
        );
        assert_eq!(settings.risk.sampling.len(), 4);
        assert!(
            settings
                .risk
                .land_port_integrated_from
                .parse::<String>()
                .is_ok()
        );
    }

    #[test]
    fn environment_overrides_defaults() {
        figment::Jail::expect_with(|jail| {
            jail.set_env("CUSTOMS_SERVER__LISTEN", "0.0.0.0:6000");
            jail.set_env("CUSTOMS_SHARED_STORE__BACKEND", "redis");
            jail.set_env("CUSTOMS_SERVER__PLATFORMS", r#"["field"]"#);
            let settings: Settings = Settings::figment(None).extract()?;
            assert_eq!(settings.server.listen.port(), 6000);
            assert_eq!(settings.shared_store.backend, SharedStoreBackend::Redis);
            assert_eq!(settings.server.platforms, [PlatformName::Field]);
            Ok(())
        });
    }

    #[test]
    fn file_overrides_defaults_and_environment_overrides_file() {
        figment::Jail::expect_with(|jail| {
            jail.create_file(
                "customs.toml",
                "[telemetry]\nformat = \"json\"\n[server]\nreflection = false\n",
            )?;
            jail.set_env("CUSTOMS_SERVER__REFLECTION", "true");
            let settings: Settings = Settings::figment(Some("customs.toml".into())).extract()?;
            assert_eq!(settings.telemetry.format, LogFormat::Json);
            assert!(settings.server.reflection);
            Ok(())
        });
    }
}
