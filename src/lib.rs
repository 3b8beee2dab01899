//! gd-customs in one process: the four platforms of "one centre, four platforms"
//! behind one port, for the one-command run and the end-to-end tests.

use customs_common::{
    config::Settings,
    server::{Application, PlatformModule},
};

/// Every platform this binary carries.
pub const MODULES: &[PlatformModule] = &[
    declaration_platform::MODULE,
    risk_platform::MODULE,
    review_platform::MODULE,
    field_platform::MODULE,
];

/// Connects, migrates, mounts the configured platforms and binds.
pub async fn start(settings: Settings) -> anyhow::Result<Application> {
    customs_common::server::start(settings, MODULES, customs_proto::FILE_DESCRIPTOR_SET).await
}
