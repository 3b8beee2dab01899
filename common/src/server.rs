//! Start-up shared by every process: connect, mount the platforms, bind, serve health
//! and reflection, authenticate, and shut down gracefully.

use std::{net::SocketAddr, sync::Arc, time::Duration};

use anyhow::Context as _;
use tokio::net::TcpListener;
use tokio_stream::{StreamExt as _, wrappers::TcpListenerStream};
use tonic::service::{Routes, RoutesBuilder};
use tonic_health::{ServingStatus, server::HealthReporter};
use tower::{Layer as _, util::BoxCloneSyncService};

use crate::{
    auth::{AccessPolicy, AuthLayer, TokenVerifier},
    background::Background,
    clients::{LocalRoutes, Peer},
    config::{PlatformName, Settings, SharedStoreBackend},
    db::{Database, Migrations},
    store::{RedisStore, SharedStore, SqlStore},
};

/// How long shutdown waits for background work (a relay's batch in delivery) before it
/// closes the database anyway.
const BACKGROUND_GRACE: Duration = Duration::from_secs(10);

/// What every platform is built from.
#[derive(Debug, Clone)]
pub struct PlatformContext {
    pub settings: Arc<Settings>,
    pub database: Database,
    pub store: SharedStore,
    /// The address this process serves on (bound before the platforms are mounted).
    pub local_addr: SocketAddr,
    /// This process's own routes, for calls to a platform it serves itself.
    pub local: LocalRoutes,
    /// Work beside the calls (relays, refreshes), stopped before the database closes.
    pub background: Background,
}

impl PlatformContext {
    /// Connects the database and the shared store the settings name.
    pub async fn connect(settings: Settings, local_addr: SocketAddr) -> anyhow::Result<Self> {
        let database = Database::connect(&settings.database).await?;
        let store = match (settings.shared_store.backend, &database) {
            (SharedStoreBackend::Redis, _) => {
                let store = RedisStore::connect(
                    &settings.shared_store.redis_url,
                    &settings.shared_store.key_prefix,
                )
                .await
                .context("connecting to the shared Redis store")?;
                SharedStore::Redis(Box::new(store))
            }
            (SharedStoreBackend::Sql, Database::Sqlite(sqlite)) => {
                SharedStore::Sql(SqlStore::new(sqlite.writer.clone()).await?)
            }
            (SharedStoreBackend::Sql, Database::Postgres(_)) => anyhow::bail!(
                "shared_store.backend = \"sql\" is the embedded default and needs the SQLite \
                 database; with PostgreSQL set shared_store.backend = \"redis\""
            ),
        };
        Ok(Self {
            settings: Arc::new(settings),
            database,
            store,
            local_addr,
            local: LocalRoutes::default(),
            background: Background::default(),
        })
    }

    /// Where calls to the platform at `url` go: that URL, or (`url` empty) the platforms
    /// this process serves, called in-process.
    pub fn peer(&self, url: &str) -> anyhow::Result<Peer> {
        Peer::new(url, &self.local)
    }
}

/// What a platform contributes once its services are added to the routes.
#[derive(Debug)]
pub struct MountedPlatform {
    /// Full names of its gRPC services, for health.
    pub services: &'static [&'static str],
    pub policy: AccessPolicy,
}

/// A platform as the start-up code sees it: its migrations and how to mount it.
#[derive(Debug, Clone, Copy)]
pub struct PlatformModule {
    pub name: PlatformName,
    /// Its migrations, when it keeps tables of its own.
    pub migrations: fn() -> Option<Migrations>,
    /// Adds its services to the routes. Runs inside the runtime: it may spawn workers.
    pub mount: fn(&PlatformContext, &mut RoutesBuilder) -> anyhow::Result<MountedPlatform>,
}

/// Connects, migrates and mounts the platforms that `settings.server.platforms` names
/// (out of `modules`), and binds the server.
pub async fn start(
    settings: Settings,
    modules: &[PlatformModule],
    descriptor_set: &'static [u8],
) -> anyhow::Result<Application> {
    let listener = TcpListener::bind(settings.server.listen)
        .await
        .with_context(|| format!("binding {}", settings.server.listen))?;
    let context = PlatformContext::connect(settings, listener.local_addr()?).await?;
    let mut routes = RoutesBuilder::default();
    let mut mounted = Vec::new();
    for name in &context.settings.server.platforms {
        let module = modules
            .iter()
            .find(|module| module.name == *name)
            .with_context(|| format!("this binary does not carry the {name:?} platform"))?;
        if let Some(mut migrations) = (module.migrations)() {
            context.database.migrate(&mut migrations).await?;
        }
        tracing::info!(platform = ?module.name, database = context.database.backend_name(), "platform ready");
        mounted.push((module.mount)(&context, &mut routes)?);
    }
    Application::build(listener, context, routes, mounted, descriptor_set)
}

/// Runs one platform as its own process: settings from the usual layers, with
/// `server.platforms` narrowed to this one.
pub async fn run_standalone(
    module: PlatformModule,
    descriptor_set: &'static [u8],
) -> anyhow::Result<()> {
    let mut settings = Settings::load()?;
    settings.server.platforms = vec![module.name];
    crate::telemetry::init(&settings.telemetry);
    let application = start(settings, &[module], descriptor_set).await?;
    application.run_until_stopped().await
}

/// A bound, not yet running server.
pub struct Application {
    listener: TcpListener,
    local_addr: SocketAddr,
    routes: Routes,
    health: HealthReporter,
    services: Vec<&'static str>,
    auth: AuthLayer,
    request_timeout: Duration,
    context: PlatformContext,
}

impl std::fmt::Debug for Application {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Application")
            .field("local_addr", &self.local_addr)
            .finish()
    }
}

impl Application {
    /// Assembles health, reflection and the platforms' routes behind the auth layer, on
    /// a listener bound beforehand (so the port is known; port 0 picks a free one).
    pub fn build(
        listener: TcpListener,
        context: PlatformContext,
        routes: RoutesBuilder,
        platforms: Vec<MountedPlatform>,
        descriptor_set: &'static [u8],
    ) -> anyhow::Result<Self> {
        let settings = context.settings.clone();
        let local_addr = listener.local_addr()?;

        let mut routes = routes;
        let (health, health_service) = tonic_health::server::health_reporter();
        routes.add_service(health_service);
        if settings.server.reflection {
            routes.add_service(
                tonic_reflection::server::Builder::configure()
                    .register_encoded_file_descriptor_set(descriptor_set)
                    .register_encoded_file_descriptor_set(tonic_health::pb::FILE_DESCRIPTOR_SET)
                    .build_v1()?,
            );
            routes.add_service(
                tonic_reflection::server::Builder::configure()
                    .register_encoded_file_descriptor_set(descriptor_set)
                    .register_encoded_file_descriptor_set(tonic_health::pb::FILE_DESCRIPTOR_SET)
                    .build_v1alpha()?,
            );
        }

        let mut policy = AccessPolicy::new();
        let mut services = Vec::new();
        for platform in platforms {
            policy.merge(platform.policy);
            services.extend_from_slice(platform.services);
        }
        let verifier = TokenVerifier::from_settings(&settings.auth)?;
        if settings.auth.uses_development_secret() {
            tracing::warn!("auth uses the development secret: do not run this in production");
        }
        let auth = AuthLayer::new(Arc::new(verifier), Arc::new(policy));
        let routes = routes.routes().prepare();
        // Calls between platforms of this process take the same auth and routes as
        // calls from outside, without the loopback socket.
        context
            .local
            .install(BoxCloneSyncService::new(auth.layer(routes.clone())));
        Ok(Self {
            listener,
            local_addr,
            routes,
            health,
            services,
            auth,
            request_timeout: Duration::from_secs(settings.server.request_timeout_secs),
            context,
        })
    }

    pub fn local_addr(&self) -> SocketAddr {
        self.local_addr
    }

    pub fn port(&self) -> u16 {
        self.local_addr.port()
    }

    /// Serves until SIGINT or SIGTERM.
    pub async fn run_until_stopped(self) -> anyhow::Result<()> {
        self.run_until(shutdown_signal()).await
    }

    /// Serves until `shutdown` resolves, then reports NOT_SERVING and drains.
    pub async fn run_until(
        self,
        shutdown: impl Future<Output = ()> + Send + 'static,
    ) -> anyhow::Result<()> {
        for service in &self.services {
            self.health
                .set_service_status(service, ServingStatus::Serving)
                .await;
        }
        self.health
            .set_service_status("", ServingStatus::Serving)
            .await;
        tracing::info!(address = %self.local_addr, "serving");

        let health = self.health.clone();
        let services = self.services.clone();
        let draining = async move {
            shutdown.await;
            tracing::info!("shutting down: reporting NOT_SERVING and draining calls in flight");
            for service in &services {
                health
                    .set_service_status(service, ServingStatus::NotServing)
                    .await;
            }
            health
                .set_service_status("", ServingStatus::NotServing)
                .await;
        };
        // Served from our own listener, so tonic's `tcp_nodelay` does not apply: each
        // accepted connection turns Nagle's algorithm off itself (with it, small
        // responses wait for the client's delayed ACK, 40 ms on Linux).
        let incoming = TcpListenerStream::new(self.listener).map(|accepted| {
            let stream = accepted?;
            stream.set_nodelay(true)?;
            Ok::<_, std::io::Error>(stream)
        });
        tonic::transport::Server::builder()
            .timeout(self.request_timeout)
            .layer(self.auth)
            .add_routes(self.routes)
            .serve_with_incoming_shutdown(incoming, draining)
            .await
            .context("serving gRPC")?;
        // Calls have drained; relays finish the batch they are delivering (through this
        // process's own routes, which still answer) before the database closes.
        if !self.context.background.shutdown(BACKGROUND_GRACE).await {
            tracing::warn!(
                grace_secs = BACKGROUND_GRACE.as_secs(),
                "background work still running at shutdown; what it had not recorded is done again after the restart"
            );
        }
        self.context.database.close().await;
        tracing::info!("stopped");
        Ok(())
    }
}

async fn shutdown_signal() {
    let interrupt = async {
        if let Err(error) = tokio::signal::ctrl_c().await {
            tracing::error!(%error, "cannot listen for SIGINT");
            std::future::pending::<()>().await;
        }
    };
    #[cfg(unix)]
    let terminate = async {
        match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
            Ok(mut signal) => {
                signal.recv().await;
            }
            Err(error) => {
                tracing::error!(%error, "cannot listen for SIGTERM");
                std::future::pending::<()>().await;
            }
        }
    };
    #[cfg(not(unix))]
    let terminate = std::future::pending::<()>();
    tokio::select! {
        () = interrupt => {},
        () = terminate => {},
    }
}
