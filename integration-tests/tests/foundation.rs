//! The foundation, as a client sees it: health, reflection, authentication and the
//! role policy.

use std::time::Duration;

use customs_common::{
    auth::{Claims, Role, mint_token, sign_hs256},
    config::Settings,
};
use customs_proto::{SERVICE_NAMES, declaration, field, risk};
use integration_tests::{BACKENDS, Backend, TestApp, authorized};
use secrecy::SecretString;
use tokio_stream::StreamExt;
use tonic::{Code, Request};
use tonic_health::pb::{
    HealthCheckRequest, health_check_response::ServingStatus, health_client::HealthClient,
};
use tonic_types::StatusExt;

#[tokio::test]
async fn every_platform_service_reports_serving() {
    for backend in BACKENDS {
        let app = TestApp::spawn(backend).await.unwrap();
        let mut health = HealthClient::new(app.channel.clone());
        for service in SERVICE_NAMES.iter().copied().chain([""]) {
            let response = health
                .check(HealthCheckRequest {
                    service: service.to_owned(),
                })
                .await
                .unwrap_or_else(|status| panic!("{backend:?} health of {service:?}: {status}"));
            assert_eq!(
                response.into_inner().status(),
                ServingStatus::Serving,
                "{service}"
            );
        }
    }
}

async fn reflected_services_v1(app: &TestApp) -> Vec<String> {
    use tonic_reflection::pb::v1::{
        ServerReflectionRequest, server_reflection_client::ServerReflectionClient,
        server_reflection_request::MessageRequest, server_reflection_response::MessageResponse,
    };
    let mut client = ServerReflectionClient::new(app.channel.clone());
    let request = ServerReflectionRequest {
        host: String::new(),
        message_request: Some(MessageRequest::ListServices(String::new())),
    };
    let mut responses = client
        .server_reflection_info(tokio_stream::iter([request]))
        .await
        .unwrap()
        .into_inner();
    let response = responses.next().await.unwrap().unwrap();
    match response.message_response {
        Some(MessageResponse::ListServicesResponse(list)) => {
            list.service.into_iter().map(|s| s.name).collect()
        }
        other => panic!("unexpected reflection answer {other:?}"),
    }
}

async fn reflected_services_v1alpha(app: &TestApp) -> Vec<String> {
    use tonic_reflection::pb::v1alpha::{
        ServerReflectionRequest, server_reflection_client::ServerReflectionClient,
        server_reflection_request::MessageRequest, server_reflection_response::MessageResponse,
    };
    let mut client = ServerReflectionClient::new(app.channel.clone());
    let request = ServerReflectionRequest {
        host: String::new(),
        message_request: Some(MessageRequest::ListServices(String::new())),
    };
    let mut responses = client
        .server_reflection_info(tokio_stream::iter([request]))
        .await
        .unwrap()
        .into_inner();
    let response = responses.next().await.unwrap().unwrap();
    match response.message_response {
        Some(MessageResponse::ListServicesResponse(list)) => {
            list.service.into_iter().map(|s| s.name).collect()
        }
        other => panic!("unexpected reflection answer {other:?}"),
    }
}

#[tokio::test]
async fn reflection_lists_every_platform_service_in_v1_and_v1alpha() {
    let app = TestApp::spawn(Backend::Embedded).await.unwrap();
    for listed in [
        reflected_services_v1(&app).await,
        reflected_services_v1alpha(&app).await,
    ] {
        for service in SERVICE_NAMES {
            assert!(
                listed.iter().any(|name| name == service),
                "{service} missing from {listed:?}"
            );
        }
        assert!(listed.iter().any(|name| name == "grpc.health.v1.Health"));
    }
}

#[tokio::test]
async fn reflection_can_be_switched_off() {
    let mut settings = Settings::defaults().unwrap();
    settings.server.listen = "127.0.0.1:0".parse().unwrap();
    settings.server.reflection = false;
    let database = customs_common::testing::TestDatabase::sqlite()
        .await
        .unwrap();
    settings.database.url = SecretString::from(database.url());
    let app = TestApp::spawn_with(settings, database, None).await.unwrap();
    use tonic_reflection::pb::v1::{
        ServerReflectionRequest, server_reflection_client::ServerReflectionClient,
        server_reflection_request::MessageRequest,
    };
    let mut client = ServerReflectionClient::new(app.channel.clone());
    let request = ServerReflectionRequest {
        host: String::new(),
        message_request: Some(MessageRequest::ListServices(String::new())),
    };
    let outcome = client
        .server_reflection_info(tokio_stream::iter([request]))
        .await;
    let code = match outcome {
        Err(status) => status.code(),
        Ok(response) => match response.into_inner().next().await {
            Some(Err(status)) => status.code(),
            other => panic!("reflection still answers: {other:?}"),
        },
    };
    assert_eq!(code, Code::Unimplemented);
}

fn status_request() -> declaration::GetStatusRequest {
    declaration::GetStatusRequest {
        declaration_number: "530120261000000001".into(),
    }
}

fn reason(status: &tonic::Status) -> String {
    status
        .get_error_details()
        .error_info()
        .map(|info| info.reason.clone())
        .unwrap_or_default()
}

#[tokio::test]
async fn calls_without_a_valid_token_are_unauthenticated() {
    let app = TestApp::spawn(Backend::Embedded).await.unwrap();
    let mut client =
        declaration::declaration_service_client::DeclarationServiceClient::new(app.channel.clone());

    let status = client
        .get_status(Request::new(status_request()))
        .await
        .unwrap_err();
    assert_eq!(status.code(), Code::Unauthenticated);
    assert_eq!(reason(&status), "TOKEN_MISSING");

    // The server allows 30 s of clock skew: a token that expired an hour ago is refused.
    let mut claims = Claims::new(
        &app.settings.auth,
        "x",
        Role::Hotline,
        "5300",
        None,
        Duration::ZERO,
    )
    .unwrap();
    claims.exp -= 3600;
    let claims_expired_long_ago = sign_hs256(&app.settings.auth, &claims).unwrap();
    let status = client
        .get_status(authorized(status_request(), &claims_expired_long_ago))
        .await
        .unwrap_err();
    assert_eq!(status.code(), Code::Unauthenticated);
    assert_eq!(reason(&status), "TOKEN_EXPIRED");

    let mut forged_settings = app.settings.auth.clone();
    forged_settings.hs256_secret = SecretString::from("not the server's secret");
    let forged = mint_token(
        &forged_settings,
        "x",
        Role::Hotline,
        "5300",
        None,
        Duration::from_secs(60),
    )
    .unwrap();
    let status = client
        .get_status(authorized(status_request(), &forged))
        .await
        .unwrap_err();
    assert_eq!(status.code(), Code::Unauthenticated);
    assert_eq!(reason(&status), "TOKEN_BAD_SIGNATURE");

    let mut other_audience = app.settings.auth.clone();
    other_audience.audience = "another-system".into();
    let wrong_audience = mint_token(
        &other_audience,
        "x",
        Role::Hotline,
        "5300",
        None,
        Duration::from_secs(60),
    )
    .unwrap();
    let status = client
        .get_status(authorized(status_request(), &wrong_audience))
        .await
        .unwrap_err();
    assert_eq!(status.code(), Code::Unauthenticated);
    assert_eq!(reason(&status), "TOKEN_WRONG_AUDIENCE");

    let status = client
        .get_status(authorized(status_request(), "not-a-jwt"))
        .await
        .unwrap_err();
    assert_eq!(status.code(), Code::Unauthenticated);
}

#[tokio::test]
async fn a_valid_token_with_the_wrong_role_is_permission_denied() {
    let app = TestApp::spawn(Backend::Embedded).await.unwrap();
    let hotline = app.token(Role::Hotline, "5300", None);
    let mut gates = field::gate_service_client::GateServiceClient::new(app.channel.clone());
    let status = gates
        .check_gate(authorized(field::CheckGateRequest::default(), &hotline))
        .await
        .unwrap_err();
    assert_eq!(status.code(), Code::PermissionDenied);
    assert_eq!(reason(&status), "ROLE_NOT_PERMITTED");

    let enterprise = app.token(Role::Enterprise, "5300", Some("4403960001"));
    let mut parameters =
        risk::risk_parameter_service_client::RiskParameterServiceClient::new(app.channel.clone());
    let status = parameters
        .update_risk_parameters(authorized(
            risk::UpdateRiskParametersRequest::default(),
            &enterprise,
        ))
        .await
        .unwrap_err();
    assert_eq!(status.code(), Code::PermissionDenied);
}
