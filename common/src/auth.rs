//! JWT authentication as a tower layer, with a per-method role policy.
//!
//! Every call but health checks and reflection must carry `authorization: Bearer <jwt>`.
//! The token is checked for signature, `exp`, `iss` and `aud`; its claims become a
//! [`Caller`] in the request's extensions. The method must then be allowed for the
//! caller's role by the [`AccessPolicy`]: a method the policy does not name is denied.

use std::{
    collections::HashMap,
    fmt, fs,
    sync::{Arc, Mutex},
    task::{Context, Poll},
    time::{Duration, SystemTime, UNIX_EPOCH},
};

use anyhow::Context as _;
use futures::future::BoxFuture;
use jsonwebtoken::{Algorithm, DecodingKey, EncodingKey, Header, Validation, errors::ErrorKind};
use secrecy::ExposeSecret;
use serde::{Deserialize, Serialize};
use tonic::Status;
use tower::{Layer, Service};

use crate::{config::AuthSettings, error::Error};

/// Who may call what.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Role {
    /// A trading enterprise, through the electronic-port gateway.
    Enterprise,
    /// A customs broker declaring on behalf of enterprises.
    Broker,
    /// A customs officer at a house or field site.
    Officer,
    /// A specialised-review officer of a review sub-centre.
    Reviewer,
    /// A gate (卡口) system.
    Gate,
    /// The 12360 hotline and the online service hall.
    Hotline,
    /// Platform administration.
    Admin,
}

impl Role {
    pub const ALL: [Role; 7] = [
        Role::Enterprise,
        Role::Broker,
        Role::Officer,
        Role::Reviewer,
        Role::Gate,
        Role::Hotline,
        Role::Admin,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            Role::Enterprise => "enterprise",
            Role::Broker => "broker",
            Role::Officer => "officer",
            Role::Reviewer => "reviewer",
            Role::Gate => "gate",
            Role::Hotline => "hotline",
            Role::Admin => "admin",
        }
    }
}

impl fmt::Display for Role {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl std::str::FromStr for Role {
    type Err = String;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Role::ALL
            .into_iter()
            .find(|role| role.as_str() == s)
            .ok_or_else(|| format!("unknown role {s:?}"))
    }
}

/// The claims of a gd-customs token.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Claims {
    pub sub: String,
    pub role: Role,
    /// The customs house (or office) the caller acts for, "5300".
    pub house: String,
    /// The enterprise the caller acts for (enterprise and broker roles).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub enterprise: Option<String>,
    pub iss: String,
    pub aud: String,
    pub exp: u64,
    pub iat: u64,
}

/// The authenticated caller, found in every authenticated request's extensions.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Caller {
    pub subject: String,
    pub role: Role,
    pub house: String,
    pub enterprise: Option<String>,
}

impl Caller {
    /// Whether the caller acts for one enterprise (the enterprise and broker roles),
    /// and so sees only what concerns that enterprise.
    pub fn acts_for_an_enterprise(&self) -> bool {
        matches!(self.role, Role::Enterprise | Role::Broker)
    }

    /// Whether the caller may see something whose parties are `parties`: customs roles
    /// see everything; an enterprise or broker only what names its own enterprise.
    pub fn may_see(&self, parties: &[&str]) -> bool {
        !self.acts_for_an_enterprise()
            || self
                .enterprise
                .as_deref()
                .is_some_and(|own| parties.contains(&own))
    }

    /// The caller of a request that went through [`AuthLayer`].
    pub fn of<T>(request: &tonic::Request<T>) -> Result<&Caller, Error> {
        request.extensions().get::<Caller>().ok_or_else(|| {
            Error::unauthenticated("UNAUTHENTICATED", "the request carries no verified caller")
        })
    }
}

/// Verifies bearer tokens against the configured keys.
pub struct TokenVerifier {
    keys: Vec<(Algorithm, DecodingKey)>,
    issuer: String,
    audience: String,
    leeway_secs: u64,
    /// Tokens already verified, with their callers and expiry: a client (or a
    /// platform of this process) sends the same token call after call, and checking
    /// its signature and claims again each time is most of what a small call costs.
    verified: Mutex<HashMap<String, (Caller, u64)>>,
}

/// Verified tokens remembered at most; past this the memory starts afresh.
const VERIFIED_TOKENS: usize = 4096;

impl fmt::Debug for TokenVerifier {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("TokenVerifier")
            .field(
                "algorithms",
                &self.keys.iter().map(|(a, _)| a).collect::<Vec<_>>(),
            )
            .field("issuer", &self.issuer)
            .field("audience", &self.audience)
            .finish()
    }
}

impl TokenVerifier {
    pub fn from_settings(settings: &AuthSettings) -> anyhow::Result<Self> {
        let mut keys = Vec::new();
        let secret = settings.hs256_secret.expose_secret();
        if !secret.is_empty() {
            keys.push((
                Algorithm::HS256,
                DecodingKey::from_secret(secret.as_bytes()),
            ));
        }
        for path in &settings.public_key_files {
            let pem =
                fs::read(path).with_context(|| format!("reading public key {}", path.display()))?;
            if let Ok(key) = DecodingKey::from_rsa_pem(&pem) {
                keys.push((Algorithm::RS256, key));
            } else {
                let key = DecodingKey::from_ec_pem(&pem).with_context(|| {
                    format!("{} is neither an RSA nor an EC public key", path.display())
                })?;
                keys.push((Algorithm::ES256, key));
            }
        }
        anyhow::ensure!(
            !keys.is_empty(),
            "auth: configure hs256_secret or at least one public key file"
        );
        Ok(Self {
            keys,
            issuer: settings.issuer.clone(),
            audience: settings.audience.clone(),
            leeway_secs: settings.leeway_secs,
            verified: Mutex::default(),
        })
    }

    /// Checks signature, `exp`, `iss` and `aud`, and returns the caller. A token
    /// verified before is taken from memory until it expires.
    pub fn verify(&self, token: &str) -> Result<Caller, Error> {
        let now = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .map_or(0, |since| since.as_secs());
        if let Ok(verified) = self.verified.lock()
            && let Some((caller, exp)) = verified.get(token)
            && now <= exp.saturating_add(self.leeway_secs)
        {
            return Ok(caller.clone());
        }
        let (caller, exp) = self.verify_signed(token)?;
        if let Ok(mut verified) = self.verified.lock() {
            if verified.len() >= VERIFIED_TOKENS {
                verified.clear();
            }
            verified.insert(token.to_owned(), (caller.clone(), exp));
        }
        Ok(caller)
    }

    fn verify_signed(&self, token: &str) -> Result<(Caller, u64), Error> {
        let header = jsonwebtoken::decode_header(token).map_err(|_| {
            Error::unauthenticated("TOKEN_MALFORMED", "the bearer token is malformed")
        })?;
        let mut last_error = None;
        for (algorithm, key) in self.keys.iter().filter(|(a, _)| *a == header.alg) {
            let mut validation = Validation::new(*algorithm);
            validation.set_issuer(&[&self.issuer]);
            validation.set_audience(&[&self.audience]);
            validation.set_required_spec_claims(&["exp", "iss", "aud", "sub"]);
            validation.leeway = self.leeway_secs;
            match jsonwebtoken::decode::<Claims>(token, key, &validation) {
                Ok(data) => {
                    let claims = data.claims;
                    let caller = Caller {
                        subject: claims.sub,
                        role: claims.role,
                        house: claims.house,
                        enterprise: claims.enterprise,
                    };
                    return Ok((caller, claims.exp));
                }
                Err(error) => last_error = Some(error),
            }
        }
        let (reason, message) = match last_error.as_ref().map(|e| e.kind()) {
            None => (
                "TOKEN_ALGORITHM_NOT_ACCEPTED",
                "the token's algorithm is not accepted",
            ),
            Some(ErrorKind::ExpiredSignature) => ("TOKEN_EXPIRED", "the token has expired"),
            Some(ErrorKind::InvalidSignature) => {
                ("TOKEN_BAD_SIGNATURE", "the token's signature is invalid")
            }
            Some(ErrorKind::InvalidAudience) => (
                "TOKEN_WRONG_AUDIENCE",
                "the token is not meant for gd-customs",
            ),
            Some(ErrorKind::InvalidIssuer) => {
                ("TOKEN_WRONG_ISSUER", "the token's issuer is not trusted")
            }
            Some(ErrorKind::ImmatureSignature) => {
                ("TOKEN_NOT_YET_VALID", "the token is not valid yet")
            }
            Some(_) => ("TOKEN_INVALID", "the token is invalid"),
        };
        Err(Error::unauthenticated(reason, message))
    }
}

impl Claims {
    /// Claims for `role` at `house`, issued now and valid for `lifetime`.
    pub fn new(
        settings: &AuthSettings,
        subject: &str,
        role: Role,
        house: &str,
        enterprise: Option<&str>,
        lifetime: Duration,
    ) -> anyhow::Result<Self> {
        let now = SystemTime::now().duration_since(UNIX_EPOCH)?.as_secs();
        Ok(Self {
            sub: subject.to_owned(),
            role,
            house: house.to_owned(),
            enterprise: enterprise.map(str::to_owned),
            iss: settings.issuer.clone(),
            aud: settings.audience.clone(),
            exp: now + lifetime.as_secs(),
            iat: now,
        })
    }
}

/// Signs `claims` with the configured HS256 secret.
pub fn sign_hs256(settings: &AuthSettings, claims: &Claims) -> anyhow::Result<String> {
    let secret = settings.hs256_secret.expose_secret();
    anyhow::ensure!(!secret.is_empty(), "no HS256 secret is configured");
    Ok(jsonwebtoken::encode(
        &Header::new(Algorithm::HS256),
        claims,
        &EncodingKey::from_secret(secret.as_bytes()),
    )?)
}

/// Signs a development token with the HS256 secret.
pub fn mint_token(
    settings: &AuthSettings,
    subject: &str,
    role: Role,
    house: &str,
    enterprise: Option<&str>,
    lifetime: Duration,
) -> anyhow::Result<String> {
    sign_hs256(
        settings,
        &Claims::new(settings, subject, role, house, enterprise, lifetime)?,
    )
}

/// Which roles may call which method, keyed by the gRPC path
/// (`/customs.field.v1.GuaranteeService/ReserveDuties`).
#[derive(Debug, Clone, Default)]
pub struct AccessPolicy {
    methods: HashMap<String, Vec<Role>>,
}

impl AccessPolicy {
    pub fn new() -> Self {
        Self::default()
    }

    /// Allows `roles` on every listed method of `service` (its full name).
    pub fn allow(&mut self, service: &str, methods: &[&str], roles: &[Role]) -> &mut Self {
        for method in methods {
            self.methods
                .entry(format!("/{service}/{method}"))
                .or_default()
                .extend_from_slice(roles);
        }
        self
    }

    pub fn merge(&mut self, other: AccessPolicy) -> &mut Self {
        for (path, roles) in other.methods {
            self.methods.entry(path).or_default().extend(roles);
        }
        self
    }

    pub fn permits(&self, path: &str, role: Role) -> bool {
        self.methods
            .get(path)
            .is_some_and(|roles| roles.contains(&role))
    }
}

/// Paths served to anyone: health checks and reflection.
fn is_public(path: &str) -> bool {
    path.starts_with("/grpc.health.v1.Health/")
        || path.starts_with("/grpc.reflection.v1.ServerReflection/")
        || path.starts_with("/grpc.reflection.v1alpha.ServerReflection/")
}

#[derive(Clone)]
pub struct AuthLayer {
    verifier: Arc<TokenVerifier>,
    policy: Arc<AccessPolicy>,
}

impl AuthLayer {
    pub fn new(verifier: Arc<TokenVerifier>, policy: Arc<AccessPolicy>) -> Self {
        Self { verifier, policy }
    }

    fn authorize<B>(&self, request: &http::Request<B>) -> Result<Caller, Error> {
        let token = request
            .headers()
            .get(http::header::AUTHORIZATION)
            .and_then(|value| value.to_str().ok())
            .and_then(|value| {
                value
                    .strip_prefix("Bearer ")
                    .or_else(|| value.strip_prefix("bearer "))
            })
            .ok_or_else(|| {
                Error::unauthenticated("TOKEN_MISSING", "authorization: Bearer <token> is required")
            })?;
        let caller = self.verifier.verify(token.trim())?;
        let path = request.uri().path();
        if !self.policy.permits(path, caller.role) {
            return Err(Error::permission_denied(
                "ROLE_NOT_PERMITTED",
                format!("role {} may not call {path}", caller.role),
            ));
        }
        Ok(caller)
    }
}

impl<S> Layer<S> for AuthLayer {
    type Service = AuthService<S>;

    fn layer(&self, inner: S) -> Self::Service {
        AuthService {
            inner,
            layer: self.clone(),
        }
    }
}

#[derive(Clone)]
pub struct AuthService<S> {
    inner: S,
    layer: AuthLayer,
}

impl<S, B, ResBody> Service<http::Request<B>> for AuthService<S>
where
    S: Service<http::Request<B>, Response = http::Response<ResBody>> + Clone + Send + 'static,
    S::Future: Send + 'static,
    B: Send + 'static,
    ResBody: Default + Send + 'static,
{
    type Response = S::Response;
    type Error = S::Error;
    type Future = BoxFuture<'static, Result<Self::Response, Self::Error>>;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), Self::Error>> {
        self.inner.poll_ready(cx)
    }

    fn call(&mut self, mut request: http::Request<B>) -> Self::Future {
        // Take the service that was polled ready; leave a fresh clone in its place.
        let clone = self.inner.clone();
        let mut inner = std::mem::replace(&mut self.inner, clone);
        if is_public(request.uri().path()) {
            return Box::pin(inner.call(request));
        }
        match self.layer.authorize(&request) {
            Ok(caller) => {
                tracing::debug!(subject = %caller.subject, role = %caller.role, house = %caller.house, path = request.uri().path(), "authorized");
                request.extensions_mut().insert(caller);
                Box::pin(inner.call(request))
            }
            Err(error) => {
                tracing::info!(
                    path = request.uri().path(),
                    reason = error.reason(),
                    "call refused"
                );
                let response = Status::from(error).into_http::<ResBody>();
                Box::pin(async move { Ok(response) })
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use secrecy::SecretString;

    use super::*;
    use crate::config::Settings;

    fn settings() -> AuthSettings {
        Settings::defaults().unwrap().auth
    }

    #[test]
    fn a_verified_token_is_remembered_until_it_expires() {
        let settings = AuthSettings {
            leeway_secs: 0,
            ..settings()
        };
        let verifier = TokenVerifier::from_settings(&settings).unwrap();
        let token = mint_token(
            &settings,
            "alice",
            Role::Officer,
            "5300",
            None,
            Duration::from_secs(60),
        )
        .unwrap();
        let first = verifier.verify(&token).unwrap();
        assert_eq!(first.subject, "alice");
        // Marked so that an answer from memory shows.
        let marked = |exp: u64| {
            let mallory = Caller {
                subject: "mallory".into(),
                ..first.clone()
            };
            verifier
                .verified
                .lock()
                .unwrap()
                .insert(token.clone(), (mallory, exp));
        };
        marked(u64::MAX);
        assert_eq!(verifier.verify(&token).unwrap().subject, "mallory");
        // Once the remembered expiry has passed, the token is checked afresh.
        marked(1);
        assert_eq!(verifier.verify(&token).unwrap().subject, "alice");
        // A tampered token is never taken from memory.
        let tampered = format!("{token}x");
        assert!(verifier.verify(&tampered).is_err());
    }

    #[test]
    fn minted_token_verifies_with_its_claims() {
        let settings = settings();
        let token = mint_token(
            &settings,
            "alice",
            Role::Officer,
            "5300",
            None,
            Duration::from_secs(60),
        )
        .unwrap();
        let caller = TokenVerifier::from_settings(&settings)
            .unwrap()
            .verify(&token)
            .unwrap();
        assert_eq!(caller.role, Role::Officer);
        assert_eq!(caller.house, "5300");
        assert_eq!(caller.subject, "alice");
    }

    #[test]
    fn token_signed_with_another_secret_is_refused() {
        let mut other = settings();
        other.hs256_secret = SecretString::from("another secret");
        let token = mint_token(
            &other,
            "mallory",
            Role::Admin,
            "5300",
            None,
            Duration::from_secs(60),
        )
        .unwrap();
        let error = TokenVerifier::from_settings(&settings())
            .unwrap()
            .verify(&token)
            .unwrap_err();
        assert_eq!(error.reason(), "TOKEN_BAD_SIGNATURE");
    }

    #[test]
    fn token_for_another_audience_is_refused() {
        let mut other = settings();
        other.audience = "someone-else".into();
        let token = mint_token(
            &other,
            "bob",
            Role::Admin,
            "5300",
            None,
            Duration::from_secs(60),
        )
        .unwrap();
        let error = TokenVerifier::from_settings(&settings())
            .unwrap()
            .verify(&token)
            .unwrap_err();
        assert_eq!(error.reason(), "TOKEN_WRONG_AUDIENCE");
    }

    #[test]
    fn enterprise_side_callers_see_only_what_names_their_enterprise() {
        let caller = |role, enterprise: Option<&str>| Caller {
            subject: "s".into(),
            role,
            house: "5300".into(),
            enterprise: enterprise.map(str::to_owned),
        };
        assert!(caller(Role::Officer, None).may_see(&["4403960001"]));
        assert!(caller(Role::Hotline, None).may_see(&[]));
        assert!(caller(Role::Broker, Some("4403980001")).may_see(&["4403960001", "4403980001"]));
        assert!(!caller(Role::Enterprise, Some("4403960002")).may_see(&["4403960001"]));
        assert!(!caller(Role::Enterprise, None).may_see(&["4403960001"]));
    }

    #[test]
    fn policy_denies_unlisted_methods_and_other_roles() {
        let mut policy = AccessPolicy::new();
        policy.allow(
            "customs.field.v1.GateService",
            &["CheckGate"],
            &[Role::Gate],
        );
        assert!(policy.permits("/customs.field.v1.GateService/CheckGate", Role::Gate));
        assert!(!policy.permits("/customs.field.v1.GateService/CheckGate", Role::Enterprise));
        assert!(!policy.permits("/customs.field.v1.GateService/GetRelease", Role::Gate));
    }
}
