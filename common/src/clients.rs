//! Calls from one platform to another: a [`Peer`] (the configured URL, or the platforms
//! this same process serves) and the bearer token the call carries.

use std::{
    convert::Infallible,
    sync::{Arc, Mutex, OnceLock},
    task::{Context, Poll},
    time::{Duration, Instant},
};

use futures::future::BoxFuture;
use secrecy::{ExposeSecret, SecretString};
use tonic::{Request, Status, body::Body, metadata::MetadataValue, transport::Channel};
use tower::{Service, ServiceExt as _, util::BoxCloneSyncService};

use crate::{
    auth::{Role, mint_token},
    config::AuthSettings,
    error::Error,
};

/// How long a call to another platform may take, over the network or in this process.
const CALL_TIMEOUT: Duration = Duration::from_secs(30);

type BoxError = Box<dyn std::error::Error + Send + Sync>;

/// This process's own gRPC routes behind its auth layer, set once the server is built.
type LocalService = BoxCloneSyncService<http::Request<Body>, http::Response<Body>, Infallible>;

/// The platforms this process serves, for calls that need not leave it. Shared by every
/// [`Peer::Local`] and filled in when the server is assembled; it lives as long as the
/// process (the routes it holds hold the platforms that call through it).
#[derive(Clone, Default)]
pub struct LocalRoutes(Arc<OnceLock<LocalService>>);

impl std::fmt::Debug for LocalRoutes {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("LocalRoutes")
            .field("ready", &self.0.get().is_some())
            .finish()
    }
}

impl LocalRoutes {
    /// Installs the routes; a second call is ignored.
    pub fn install(&self, service: LocalService) {
        let _ = self.0.set(service);
    }
}

/// Where a platform's calls to another platform go: a lazily connected channel to the
/// configured URL, or (URL left empty) this process's own routes. A local call is still
/// a gRPC call (encoded, authenticated, authorised and routed as one from outside) but it
/// skips HTTP/2 and the loopback socket.
#[derive(Debug, Clone)]
pub enum Peer {
    Remote(Channel),
    Local(LocalRoutes),
}

impl Peer {
    /// A channel to `url`, or this process's `local` routes when `url` is empty. A
    /// channel connects on first use and reconnects after the receiver comes back.
    pub fn new(url: &str, local: &LocalRoutes) -> anyhow::Result<Self> {
        if url.is_empty() {
            return Ok(Self::Local(local.clone()));
        }
        Ok(Self::Remote(
            Channel::from_shared(url.to_owned())?
                .connect_timeout(Duration::from_secs(5))
                .timeout(CALL_TIMEOUT)
                .connect_lazy(),
        ))
    }
}

impl Service<http::Request<Body>> for Peer {
    type Response = http::Response<Body>;
    type Error = BoxError;
    type Future = BoxFuture<'static, Result<Self::Response, Self::Error>>;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), Self::Error>> {
        match self {
            Self::Remote(channel) => channel.poll_ready(cx).map_err(Into::into),
            // Routes are always ready; each call is given its own clone below.
            Self::Local(_) => Poll::Ready(Ok(())),
        }
    }

    fn call(&mut self, request: http::Request<Body>) -> Self::Future {
        match self {
            Self::Remote(channel) => {
                let call = channel.call(request);
                Box::pin(async move { call.await.map_err(Into::into) })
            }
            Self::Local(local) => {
                let Some(service) = local.0.get().cloned() else {
                    // Only between mounting and serving: the caller retries.
                    return Box::pin(async {
                        Err(Status::unavailable("this process is still starting").into())
                    });
                };
                Box::pin(async move {
                    match tokio::time::timeout(CALL_TIMEOUT, service.oneshot(request)).await {
                        Ok(response) => Ok(response?),
                        Err(_) => Err(Status::deadline_exceeded("the call timed out").into()),
                    }
                })
            }
        }
    }
}

/// How long a minted development token lives, and how long before its end a new one is
/// minted.
const MINTED_TTL: Duration = Duration::from_secs(300);
const MINTED_RENEW_BEFORE: Duration = Duration::from_secs(60);

type Header = MetadataValue<tonic::metadata::Ascii>;

/// The identity a platform calls other platforms with: a configured service token, or
/// (development only) a token minted with the development secret, reused until shortly
/// before it expires.
#[derive(Clone)]
pub struct ServiceCredentials {
    subject: String,
    auth: AuthSettings,
    /// `Bearer <configured token>`, or `None` to mint.
    configured: Option<Header>,
    minted: Arc<Mutex<Option<(Header, Instant)>>>,
}

impl std::fmt::Debug for ServiceCredentials {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ServiceCredentials")
            .field("subject", &self.subject)
            .field("configured", &self.configured.is_some())
            .finish_non_exhaustive()
    }
}

fn bearer(token: &str) -> Result<Header, Error> {
    MetadataValue::try_from(format!("Bearer {token}")).map_err(|error| {
        Error::internal(anyhow::anyhow!(
            "service token is not a header value: {error}"
        ))
    })
}

impl ServiceCredentials {
    pub fn new(subject: &str, auth: &AuthSettings, token: &SecretString) -> anyhow::Result<Self> {
        let token = token.expose_secret();
        anyhow::ensure!(
            !token.is_empty() || auth.uses_development_secret(),
            "clients.service_token must be set when the development secret is not in use"
        );
        let configured = if token.is_empty() {
            None
        } else {
            let mut header = bearer(token).map_err(|_| {
                anyhow::anyhow!("clients.service_token is not a valid header value")
            })?;
            header.set_sensitive(true);
            Some(header)
        };
        Ok(Self {
            subject: subject.to_owned(),
            auth: auth.clone(),
            configured,
            minted: Arc::default(),
        })
    }

    fn header(&self) -> Result<Header, Error> {
        if let Some(configured) = &self.configured {
            return Ok(configured.clone());
        }
        let mut minted = self
            .minted
            .lock()
            .map_err(|_| Error::internal(anyhow::anyhow!("service token lock poisoned")))?;
        if let Some((header, renew_at)) = minted.as_ref()
            && Instant::now() < *renew_at
        {
            return Ok(header.clone());
        }
        let token = mint_token(
            &self.auth,
            &self.subject,
            Role::Admin,
            "0000",
            None,
            MINTED_TTL,
        )?;
        let mut header = bearer(&token)?;
        header.set_sensitive(true);
        *minted = Some((
            header.clone(),
            Instant::now() + MINTED_TTL - MINTED_RENEW_BEFORE,
        ));
        Ok(header)
    }

    /// `message` as a request carrying this platform's bearer token.
    pub fn request<T>(&self, message: T) -> Result<Request<T>, Error> {
        let mut request = Request::new(message);
        request
            .metadata_mut()
            .insert("authorization", self.header()?);
        Ok(request)
    }
}

/// A failed call to another platform as this platform's error: an unreachable or
/// overloaded peer is `UNAVAILABLE` (the caller retries), anything else is internal.
pub fn peer_error(what: &str, status: &tonic::Status) -> Error {
    let message = format!("{what}: {:?} {}", status.code(), status.message());
    match status.code() {
        tonic::Code::Unavailable
        | tonic::Code::DeadlineExceeded
        | tonic::Code::Cancelled
        | tonic::Code::ResourceExhausted
        | tonic::Code::Unknown => Error::unavailable("PEER_UNAVAILABLE", message),
        _ => Error::internal(anyhow::anyhow!(message)),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::{auth::TokenVerifier, config::Settings};

    #[test]
    fn a_minted_service_token_is_reused_and_verifies() {
        let auth = Settings::defaults().unwrap().auth;
        let credentials =
            ServiceCredentials::new("risk-platform", &auth, &SecretString::from("")).unwrap();
        let first = credentials.request(()).unwrap();
        let second = credentials.request(()).unwrap();
        let header = first.metadata().get("authorization").unwrap();
        assert_eq!(Some(header), second.metadata().get("authorization"));
        let token = header.to_str().unwrap().strip_prefix("Bearer ").unwrap();
        let caller = TokenVerifier::from_settings(&auth)
            .unwrap()
            .verify(token)
            .unwrap();
        assert_eq!(caller.subject, "risk-platform");
        assert_eq!(caller.role, Role::Admin);
    }

    #[tokio::test]
    async fn a_local_call_goes_through_the_installed_routes() {
        use tonic_health::pb::{
            HealthCheckRequest, health_check_response::ServingStatus, health_client::HealthClient,
        };
        let local = LocalRoutes::default();
        let mut client = HealthClient::new(Peer::new("", &local).unwrap());
        let early = client
            .check(HealthCheckRequest::default())
            .await
            .unwrap_err();
        assert_eq!(
            early.code(),
            tonic::Code::Unavailable,
            "before the server is built"
        );

        let (_reporter, health) = tonic_health::server::health_reporter();
        local.install(BoxCloneSyncService::new(tonic::service::Routes::new(
            health,
        )));
        let answer = client
            .check(HealthCheckRequest::default())
            .await
            .unwrap()
            .into_inner();
        assert_eq!(answer.status(), ServingStatus::Serving);
        let unknown = client
            .check(HealthCheckRequest {
                service: "customs.nothing.v1.Nothing".into(),
            })
            .await
            .unwrap_err();
        assert_eq!(unknown.code(), tonic::Code::NotFound);
    }

    #[test]
    fn a_configured_service_token_is_sent_as_is() {
        let auth = Settings::defaults().unwrap().auth;
        let credentials =
            ServiceCredentials::new("risk-platform", &auth, &SecretString::from("abc.def.ghi"))
                .unwrap();
        let request = credentials.request(()).unwrap();
        assert_eq!(
            request.metadata().get("authorization").unwrap(),
            "Bearer abc.def.ghi"
        );
    }
}
