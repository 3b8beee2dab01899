//! Production tokens: RS256 and ES256, verified with public keys only. The key pairs
//! under `tests/keys/` exist for this test alone.

use std::{path::PathBuf, time::Duration};

use customs_common::{
    auth::{Claims, Role, TokenVerifier},
    config::Settings,
};
use jsonwebtoken::{Algorithm, EncodingKey, Header};
use secrecy::SecretString;

fn key(name: &str) -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("tests/keys")
        .join(name)
}

fn production_settings() -> customs_common::config::AuthSettings {
    let mut auth = Settings::defaults().unwrap().auth;
    auth.hs256_secret = SecretString::from("");
    auth.public_key_files = vec![key("rs256-public.pem"), key("es256-public.pem")];
    auth
}

fn sign(algorithm: Algorithm, private_key: &str) -> String {
    let auth = production_settings();
    let claims = Claims::new(
        &auth,
        "idp-user",
        Role::Reviewer,
        "5100",
        None,
        Duration::from_secs(60),
    )
    .unwrap();
    let pem = std::fs::read(key(private_key)).unwrap();
    let key = match algorithm {
        Algorithm::RS256 => EncodingKey::from_rsa_pem(&pem).unwrap(),
        _ => EncodingKey::from_ec_pem(&pem).unwrap(),
    };
    jsonwebtoken::encode(&Header::new(algorithm), &claims, &key).unwrap()
}

#[test]
fn rs256_and_es256_tokens_verify_against_public_keys() {
    let verifier = TokenVerifier::from_settings(&production_settings()).unwrap();
    for (algorithm, private_key) in [
        (Algorithm::RS256, "rs256-private.pem"),
        (Algorithm::ES256, "es256-private.pem"),
    ] {
        let caller = verifier.verify(&sign(algorithm, private_key)).unwrap();
        assert_eq!(
            (caller.role, caller.house.as_str()),
            (Role::Reviewer, "5100")
        );
    }
}

#[test]
fn hs256_tokens_are_refused_once_the_secret_is_cleared() {
    let verifier = TokenVerifier::from_settings(&production_settings()).unwrap();
    let development = Settings::defaults().unwrap().auth;
    let token = customs_common::auth::mint_token(
        &development,
        "x",
        Role::Admin,
        "5300",
        None,
        Duration::from_secs(60),
    )
    .unwrap();
    assert_eq!(
        verifier.verify(&token).unwrap_err().reason(),
        "TOKEN_ALGORITHM_NOT_ACCEPTED"
    );
}

#[test]
fn no_key_at_all_is_a_configuration_error() {
    let mut auth = production_settings();
    auth.public_key_files.clear();
    assert!(TokenVerifier::from_settings(&auth).is_err());
}
