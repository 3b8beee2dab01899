//! Calls from one platform to another: a lazily connected channel (to the configured
//! URL, or to this same process) and the bearer token the call carries.

use std::{net::SocketAddr, time::Duration};

use secrecy::{ExposeSecret, SecretString};
use tonic::{Request, metadata::MetadataValue, transport::Channel};

use crate::{
    auth::{Role, mint_token},
    config::AuthSettings,
    error::Error,
};

/// A channel to `url`, or to `local_addr` when `url` is empty; it connects on first use
/// and reconnects after the receiver comes back.
pub fn channel(url: &str, local_addr: SocketAddr) -> anyhow::Result<Channel> {
    let url = if url.is_empty() {
        let host = if local_addr.ip().is_unspecified() {
            "127.0.0.1".to_owned()
        } else {
            local_addr.ip().to_string()
        };
        format!("http://{host}:{}", local_addr.port())
    } else {
        url.to_owned()
    };
    Ok(Channel::from_shared(url)?
        .connect_timeout(Duration::from_secs(5))
        .timeout(Duration::from_secs(30))
        .connect_lazy())
}

/// The identity a platform calls other platforms with: a configured service token, or
/// (development only) a token minted with the development secret.
#[derive(Debug, Clone)]
pub struct ServiceCredentials {
    subject: String,
    auth: AuthSettings,
    token: SecretString,
}

impl ServiceCredentials {
    pub fn new(subject: &str, auth: &AuthSettings, token: &SecretString) -> anyhow::Result<Self> {
        anyhow::ensure!(
            !token.expose_secret().is_empty() || auth.uses_development_secret(),
            "clients.service_token must be set when the development secret is not in use"
        );
        Ok(Self {
            subject: subject.to_owned(),
            auth: auth.clone(),
            token: token.clone(),
        })
    }

    /// `message` as a request carrying this platform's bearer token.
    pub fn request<T>(&self, message: T) -> Result<Request<T>, Error> {
        let token = if self.token.expose_secret().is_empty() {
            mint_token(
                &self.auth,
                &self.subject,
                Role::Admin,
                "0000",
                None,
                Duration::from_secs(300),
            )?
        } else {
            self.token.expose_secret().to_owned()
        };
        let mut request = Request::new(message);
        let value = MetadataValue::try_from(format!("Bearer {token}")).map_err(|error| {
            Error::internal(anyhow::anyhow!(
                "service token is not a header value: {error}"
            ))
        })?;
        request.metadata_mut().insert("authorization", value);
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
