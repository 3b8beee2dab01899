//! Test support for the end-to-end tests: a whole gd-customs server on port 0 over
//! a fresh database (and a Redis key prefix of its own), and clients that call it
//! as the gateway, a house or the hotline would.

use std::time::Duration;

use customs_common::{
    auth::{Role, mint_token},
    config::{Settings, SharedStoreBackend},
    testing::{TestDatabase, TestRedis},
};
use secrecy::SecretString;
use tokio::{sync::oneshot, task::JoinHandle};
use tonic::{Request, metadata::MetadataValue, transport::Channel};

/// Where the server under test keeps its data.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Backend {
    /// The one-command default: SQLite, shared store in the same database.
    Embedded,
    /// PostgreSQL and Redis, as in production.
    Production,
}

/// A running server and what it was started with.
pub struct TestApp {
    pub address: String,
    pub channel: Channel,
    pub settings: Settings,
    shutdown: Option<oneshot::Sender<()>>,
    server: Option<JoinHandle<anyhow::Result<()>>>,
    pub redis: Option<TestRedis>,
    pub database: TestDatabase,
}

impl std::fmt::Debug for TestApp {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("TestApp")
            .field("address", &self.address)
            .finish()
    }
}

impl TestApp {
    pub async fn spawn(backend: Backend) -> anyhow::Result<Self> {
        Self::spawn_configured(backend, |_| {}).await
    }

    /// Like [`TestApp::spawn`], with settings changed by `configure` first.
    pub async fn spawn_configured(
        backend: Backend,
        configure: impl FnOnce(&mut Settings),
    ) -> anyhow::Result<Self> {
        let mut settings = Settings::defaults()?;
        configure(&mut settings);
        settings.server.listen = "127.0.0.1:0".parse()?;
        let (database, redis) = match backend {
            Backend::Embedded => (TestDatabase::sqlite().await?, None),
            Backend::Production => (
                TestDatabase::postgres().await?,
                Some(TestRedis::start().await?),
            ),
        };
        settings.database.url = SecretString::from(database.url());
        if let Some(redis) = &redis {
            settings.shared_store.backend = SharedStoreBackend::Redis;
            settings.shared_store.redis_url = redis.url.clone();
            settings.shared_store.key_prefix = redis.prefix.clone();
        }
        Self::spawn_with(settings, database, redis).await
    }

    /// Starts a server on `settings` over an existing database (a restart).
    pub async fn spawn_with(
        settings: Settings,
        database: TestDatabase,
        redis: Option<TestRedis>,
    ) -> anyhow::Result<Self> {
        let application = gd_customs::start(settings.clone()).await?;
        let address = format!("http://{}", application.local_addr());
        let (shutdown, stopped) = oneshot::channel();
        // Dropping the sender (dropping the TestApp) also stops the server.
        let server = tokio::spawn(application.run_until(async {
            let _ = stopped.await;
        }));
        let channel = Channel::from_shared(address.clone())?
            .connect_timeout(Duration::from_secs(5))
            .connect()
            .await?;
        Ok(Self {
            address,
            channel,
            settings,
            shutdown: Some(shutdown),
            server: Some(server),
            redis,
            database,
        })
    }

    /// Stops the server gracefully and hands back its database and Redis, for a restart.
    pub async fn stop(mut self) -> anyhow::Result<(Settings, TestDatabase, Option<TestRedis>)> {
        if let Some(shutdown) = self.shutdown.take() {
            let _ = shutdown.send(());
        }
        if let Some(server) = self.server.take() {
            server.await??;
        }
        Ok((self.settings, self.database, self.redis))
    }

    /// A development token for `role` at `house`.
    pub fn token(&self, role: Role, house: &str, enterprise: Option<&str>) -> String {
        mint_token(
            &self.settings.auth,
            &format!("{role}@{house}"),
            role,
            house,
            enterprise,
            Duration::from_secs(600),
        )
        .unwrap_or_else(|error| panic!("minting a test token: {error}"))
    }
}

/// A request carrying `authorization: Bearer <token>`.
pub fn authorized<T>(message: T, token: &str) -> Request<T> {
    let mut request = Request::new(message);
    let value = MetadataValue::try_from(format!("Bearer {token}"))
        .unwrap_or_else(|error| panic!("token is not a header value: {error}"));
    request.metadata_mut().insert("authorization", value);
    request
}

pub mod scenarios;
pub mod story;

/// Every backend the end-to-end tests run against.
pub const BACKENDS: [Backend; 2] = [Backend::Embedded, Backend::Production];
