//! Declare at any house, electronic review, channel decision: the story through the
//! public API, as the gateway, the houses and the hotline would call it.

use std::{collections::HashSet, sync::Arc, time::Duration};

use customs_common::{auth::Role, config::PlatformName};
use customs_proto::{
    common::{DeclarationStage, Lane, RulingCitation, RulingKind, TimelineNote},
    declaration::{
        self as pb, declaration_service_client::DeclarationServiceClient as Declarations,
        manifest_service_client::ManifestServiceClient,
    },
    review::{self as review_pb, ruling_service_client::RulingServiceClient},
    risk::{
        self as risk_pb, control_instruction_service_client::ControlInstructionServiceClient,
        risk_service_client::RiskServiceClient,
    },
};
use integration_tests::{
    BACKENDS, Backend, TestApp, authorized,
    story::{self, BROKER, TRADER},
};
use secrecy::SecretString;
use tonic::{Code, transport::Channel};
use tonic_types::StatusExt;

fn broker_token(app: &TestApp) -> String {
    app.token(Role::Broker, "5300", Some(BROKER))
}

async fn submit(
    channel: &Channel,
    token: &str,
    request_id: &str,
    content: customs_proto::common::DeclarationContent,
) -> Result<pb::Declaration, tonic::Status> {
    Declarations::new(channel.clone())
        .submit_declaration(authorized(
            pb::SubmitDeclarationRequest {
                request_id: request_id.into(),
                content: Some(content),
            },
            token,
        ))
        .await
        .map(tonic::Response::into_inner)
}

/// The stable reason of an error.
fn reason(status: &tonic::Status) -> String {
    status
        .get_details_error_info()
        .map(|info| info.reason)
        .unwrap_or_default()
}

/// The field violations of an `INVALID_ARGUMENT`: (field, description).
fn violations(status: &tonic::Status) -> Vec<(String, String)> {
    status
        .get_error_details()
        .bad_request()
        .expect("field violations")
        .field_violations
        .iter()
        .map(|v| (v.field.clone(), v.description.clone()))
        .collect()
}

/// Polls the hotline's view until the declaration leaves SUBMITTED.
async fn settled(channel: &Channel, token: &str, number: &str) -> pb::DeclarationStatus {
    for _ in 0..200 {
        let status = story::status(channel, token, number).await;
        if status.stage() != DeclarationStage::Submitted
            && status.stage() != DeclarationStage::Accepted
        {
            return status;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    panic!("declaration {number} was never screened");
}

#[tokio::test]
async fn a_declaration_is_numbered_screened_and_shown_to_the_hotline_without_detail() {
    for backend in BACKENDS {
        let app = TestApp::spawn(backend).await.unwrap();
        let officer = app.token(Role::Officer, "5300", None);
        story::parties(&app.channel, &officer, "BL-STORY-1")
            .await
            .unwrap();
        // The manifest filed at Yantian, read at Guangzhou: one for the province.
        let manifest = ManifestServiceClient::new(app.channel.clone())
            .get_manifest(authorized(
                pb::GetManifestRequest {
                    bill_of_lading: "BL-STORY-1".into(),
                },
                &app.token(Role::Officer, "5100", None),
            ))
            .await
            .unwrap()
            .into_inner();
        assert_eq!(
            (
                manifest.port_code.as_str(),
                manifest.containers[0].container_number.as_str()
            ),
            (story::PORT, story::CONTAINER)
        );
        let broker = broker_token(&app);

        let declared = submit(
            &app.channel,
            &broker,
            "gateway-1",
            story::declaration("BL-STORY-1", 2),
        )
        .await
        .unwrap();
        let number = declared.declaration_number.clone();
        assert_eq!(number.len(), 18);
        assert!(
            number.starts_with(&format!("5301{}1", customs_common::day::today().year())),
            "{number}"
        );
        assert_eq!(declared.stage(), DeclarationStage::Submitted);

        // A resubmission returns the first result.
        let again = submit(
            &app.channel,
            &broker,
            "gateway-1",
            story::declaration("BL-STORY-1", 2),
        )
        .await
        .unwrap();
        assert_eq!(again.declaration_number, number);

        let hotline = app.token(Role::Hotline, "5300", None);
        let status = settled(&app.channel, &hotline, &number).await;
        assert_eq!(
            status.stage(),
            DeclarationStage::LaneDecided,
            "{backend:?}: {status:?}"
        );
        assert_eq!(
            (
                status.handling_house.as_str(),
                status.handling_house_name_en.as_str()
            ),
            ("5300", "Shenzhen Customs")
        );
        assert_eq!(status.handling_house_name_zh, "深圳海关");
        assert!(!status.stage_text_zh.is_empty() && !status.stage_text_en.is_empty());
        let stages: Vec<_> = status.timeline.iter().map(|e| e.stage()).collect();
        assert_eq!(
            stages,
            [
                DeclarationStage::Submitted,
                DeclarationStage::Accepted,
                DeclarationStage::LaneDecided
            ]
        );
        // Nothing of the risk decision reaches the public view.
        let shown = format!("{status:?}");
        for secret in [
            "LANE_",
            "decision",
            "instruction",
            "risk-platform",
            "D0",
            "sampling",
        ] {
            assert!(!shown.contains(secret), "{secret} leaked into {shown}");
        }

        // The officer sees the lane and every event with who, where and why.
        let full = Declarations::new(app.channel.clone())
            .get_declaration(authorized(
                pb::GetDeclarationRequest {
                    declaration_number: number.clone(),
                },
                &officer,
            ))
            .await
            .unwrap()
            .into_inner();
        assert_ne!(full.lane(), Lane::Unspecified);
        assert_eq!(full.events.len(), 3);
        assert!(
            full.events
                .iter()
                .all(|e| !e.actor.is_empty() && !e.house_code.is_empty())
        );

        // The decision can be replayed by an auditor.
        let decision_id = full.events[2]
            .reason
            .trim_start_matches("decision ")
            .to_owned();
        let decision = RiskServiceClient::new(app.channel.clone())
            .get_decision(authorized(
                risk_pb::GetDecisionRequest { decision_id },
                &officer,
            ))
            .await
            .unwrap()
            .into_inner();
        assert_eq!(decision.lane, full.lane);
        assert_eq!(decision.declaration_number, number);
        assert!(!decision.sampling.unwrap().draw.is_empty());
    }
}

#[tokio::test]
async fn an_enterprise_cannot_read_another_enterprises_declarations() {
    let app = TestApp::spawn(Backend::Embedded).await.unwrap();
    let officer = app.token(Role::Officer, "5300", None);
    story::parties(&app.channel, &officer, "BL-ISO-1")
        .await
        .unwrap();
    let broker = broker_token(&app);
    let declare = || {
        submit(
            &app.channel,
            &broker,
            "iso-1",
            story::declaration("BL-ISO-1", 1),
        )
    };
    let declared = declare().await.unwrap();
    let stranger = app.token(Role::Enterprise, "5300", Some("4403960999"));
    let client = Declarations::new(app.channel.clone());
    let hidden = client
        .clone()
        .get_declaration(authorized(
            pb::GetDeclarationRequest {
                declaration_number: declared.declaration_number.clone(),
            },
            &stranger,
        ))
        .await
        .unwrap_err();
    assert_eq!(hidden.code(), Code::NotFound);
    let listed = client
        .clone()
        .list_declarations(authorized(
            pb::ListDeclarationsRequest::default(),
            &stranger,
        ))
        .await
        .unwrap()
        .into_inner();
    assert!(listed.declarations.is_empty());
    let owner = app.token(Role::Enterprise, "5300", Some(TRADER));
    let mine = client
        .clone()
        .list_declarations(authorized(pb::ListDeclarationsRequest::default(), &owner))
        .await
        .unwrap()
        .into_inner();
    assert_eq!(mine.declarations.len(), 1);
    // Listed with its timeline, which starts where it was declared.
    let listed = &mine.declarations[0];
    assert_eq!(listed.declaration_number, declared.declaration_number);
    assert_eq!(
        listed.events.first().map(|event| event.to_stage()),
        Some(DeclarationStage::Submitted),
        "{:?}",
        listed.events
    );
    // Declaring another enterprise's goods is refused.
    let forged = submit(
        &app.channel,
        &stranger,
        "forged",
        story::declaration("BL-ISO-1", 1),
    )
    .await
    .unwrap_err();
    assert_eq!(forged.code(), Code::PermissionDenied);
    // Nor does another enterprise's request id answer with its declaration or its
    // change request: the id is taken, and that is all the stranger learns.
    let mut own_goods = story::declaration("BL-ISO-1", 1);
    own_goods.enterprise_code = "4403960999".into();
    own_goods.broker_code = String::new();
    let in_use = |taken: &tonic::Status| {
        assert_eq!(
            (taken.code(), reason(taken).as_str()),
            (Code::AlreadyExists, "REQUEST_ID_IN_USE"),
            "{taken:?}"
        );
    };
    let taken = submit(&app.channel, &stranger, "iso-1", own_goods)
        .await
        .unwrap_err();
    in_use(&taken);
    assert!(!taken.message().contains(&declared.declaration_number));
    story::request_cancellation(
        &app.channel,
        &owner,
        "iso-cancel",
        &declared.declaration_number,
    )
    .await;
    let taken = client
        .clone()
        .request_cancellation(authorized(
            pb::RequestCancellationRequest {
                request_id: "iso-cancel".into(),
                declaration_number: declared.declaration_number.clone(),
                reason: "curious".into(),
            },
            &stranger,
        ))
        .await
        .unwrap_err();
    in_use(&taken);
    // The owner's own repeats still answer with the first result.
    let again = declare().await.unwrap();
    assert_eq!(again.declaration_number, declared.declaration_number);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn numbers_are_unique_and_gap_free_under_concurrency_and_duplicates_collapse() {
    for backend in BACKENDS {
        let app = Arc::new(TestApp::spawn(backend).await.unwrap());
        let officer = app.token(Role::Officer, "5300", None);
        story::parties(&app.channel, &officer, "BL-SEQ-1")
            .await
            .unwrap();
        let broker = broker_token(&app);
        let mut tasks = Vec::new();
        // 40 distinct submissions, each sent twice at once.
        for n in 0..40 {
            for _ in 0..2 {
                let (app, broker) = (app.clone(), broker.clone());
                tasks.push(tokio::spawn(async move {
                    let declared = submit(
                        &app.channel,
                        &broker,
                        &format!("seq-{n}"),
                        story::declaration("BL-SEQ-1", 1),
                    )
                    .await
                    .unwrap();
                    (n, declared.declaration_number)
                }));
            }
        }
        let mut by_request = std::collections::HashMap::new();
        for task in tasks {
            let (n, number) = task.await.unwrap();
            let first = by_request.entry(n).or_insert_with(|| number.clone());
            assert_eq!(*first, number, "{backend:?}: request {n} got two numbers");
        }
        let sequences: HashSet<u64> = by_request
            .values()
            .map(|n| n[9..].parse().unwrap())
            .collect();
        assert_eq!(sequences.len(), 40);
        assert_eq!(
            sequences,
            (1..=40).collect::<HashSet<u64>>(),
            "{backend:?}: numbers skip or repeat"
        );
    }
}

/// Two replicas of the platforms over one PostgreSQL database and one Redis, as
/// production runs them: forty declarations, each sent to both replicas at once, get one
/// number each, whichever replica answers, and the site's numbers for the year and
/// direction run from 1 to 40 without a gap.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn two_replicas_number_without_gaps_and_answer_a_request_sent_to_both_alike() {
    let first = TestApp::spawn(Backend::Production).await.unwrap();
    let mut settings = first.settings.clone();
    settings.server.listen = "127.0.0.1:0".parse().unwrap();
    let second = gd_customs::start(settings).await.unwrap();
    let address = format!("http://{}", second.local_addr());
    let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
    let server = tokio::spawn(second.run_until(async {
        let _ = stopped.await;
    }));
    let replicas = [
        first.channel.clone(),
        Channel::from_shared(address)
            .unwrap()
            .connect()
            .await
            .unwrap(),
    ];
    let officer = first.token(Role::Officer, "5300", None);
    story::parties(&replicas[1], &officer, "BL-REPLICAS-1")
        .await
        .unwrap();
    let broker = broker_token(&first);
    let mut tasks = Vec::new();
    for n in 0..40 {
        for (replica, channel) in replicas.iter().enumerate() {
            let (channel, broker) = (channel.clone(), broker.clone());
            tasks.push(tokio::spawn(async move {
                let declared = submit(
                    &channel,
                    &broker,
                    &format!("replicas-{n}"),
                    story::declaration("BL-REPLICAS-1", 1),
                )
                .await
                .unwrap_or_else(|status| panic!("replica {replica}, request {n}: {status:?}"));
                (n, declared.declaration_number)
            }));
        }
    }
    let mut by_request = std::collections::HashMap::new();
    for task in tasks {
        let (n, number) = task.await.unwrap();
        let first = by_request.entry(n).or_insert_with(|| number.clone());
        assert_eq!(*first, number, "request {n} got two numbers");
    }
    let sequences: HashSet<u64> = by_request
        .values()
        .map(|n| n[9..].parse().unwrap())
        .collect();
    assert_eq!(
        sequences,
        (1..=40).collect::<HashSet<u64>>(),
        "numbers skip or repeat"
    );
    drop(stop);
    server.await.unwrap().unwrap();
}

#[tokio::test]
async fn a_declaration_failing_its_checks_is_refused_with_every_reason() {
    let app = TestApp::spawn(Backend::Embedded).await.unwrap();
    let officer = app.token(Role::Officer, "5300", None);
    story::parties(&app.channel, &officer, "BL-BAD-1")
        .await
        .unwrap();
    let mut content = story::declaration("BL-BAD-1", 2);
    content.items[0].hs_code = "7701000000".into();
    content.container_numbers.push("CSQU3054383".into());
    content.total_value = Some(customs_proto::common::Money {
        currency_code: "USD".into(),
        amount: "1.00".into(),
    });
    // Port clearance for Yantian (Shenzhen), declared at Guangzhou.
    content.clearance_mode = customs_proto::common::ClearanceMode::PortClearance as i32;
    content.declaring_office = "5101".into();

    // The pre-check gives every violation, field by field.
    let checked = RiskServiceClient::new(app.channel.clone())
        .check_declaration(authorized(
            risk_pb::CheckDeclarationRequest {
                content: Some(content.clone()),
                ..Default::default()
            },
            &broker_token(&app),
        ))
        .await
        .unwrap_err();
    assert_eq!(checked.code(), Code::InvalidArgument, "{checked:?}");
    let fields: Vec<_> = violations(&checked)
        .into_iter()
        .map(|(field, _)| field)
        .collect();
    for expected in [
        "container_numbers[1]",
        "declaring_office",
        "items[0].hs_code",
        "total_value.amount",
    ] {
        assert!(
            fields.iter().any(|f| f == expected),
            "{expected} missing from {fields:?}"
        );
    }

    let declared = submit(&app.channel, &broker_token(&app), "bad-1", content)
        .await
        .unwrap();
    let hotline = app.token(Role::Hotline, "5300", None);
    let status = settled(&app.channel, &hotline, &declared.declaration_number).await;
    assert_eq!(status.stage(), DeclarationStage::Refused);
    let full = Declarations::new(app.channel.clone())
        .get_declaration(authorized(
            pb::GetDeclarationRequest {
                declaration_number: declared.declaration_number,
            },
            &officer,
        ))
        .await
        .unwrap()
        .into_inner();
    let refusal = &full.events.last().unwrap().reason;
    assert!(
        refusal.contains("HS_CODE_RESERVED_CHAPTER")
            && refusal.contains("CONTAINER_NOT_ON_MANIFEST")
            && refusal.contains("OFFICE_NOT_FOR_MODE"),
        "{refusal}"
    );
}

#[tokio::test]
async fn a_control_instruction_forces_its_lane_and_a_cited_ruling_is_checked_at_acceptance() {
    let app = TestApp::spawn(Backend::Production).await.unwrap();
    let officer = app.token(Role::Officer, "5300", None);
    story::parties(&app.channel, &officer, "BL-RED-1")
        .await
        .unwrap();
    ControlInstructionServiceClient::new(app.channel.clone())
        .create_control_instruction(authorized(
            risk_pb::CreateControlInstructionRequest {
                request_id: "beef-from-au".into(),
                instruction: Some(risk_pb::ControlInstruction {
                    conditions: Some(risk_pb::InstructionConditions {
                        hs_prefixes: vec!["0202".into()],
                        origin_countries: vec!["AU".into()],
                        ..Default::default()
                    }),
                    lane: Lane::Red as i32,
                    order_inspection: true,
                    reason: "frozen beef: residue alert".into(),
                    ..Default::default()
                }),
            },
            &officer,
        ))
        .await
        .unwrap();
    // A licence issued at Guangzhou, cited in Shenzhen.
    let licence = beef_licence(&app, "beef-licence", "500").await;

    // 1,000 kg against a 500 kg licence: refused at acceptance.
    let mut over = story::declaration("BL-RED-1", 2);
    over.items[1].rulings.push(RulingCitation {
        ruling_id: licence.clone(),
        kind: RulingKind::Licence as i32,
        quantity: "1000".into(),
    });
    let hotline = app.token(Role::Hotline, "5300", None);
    let refused = submit(&app.channel, &broker_token(&app), "over-licence", over)
        .await
        .unwrap();
    assert_eq!(
        settled(&app.channel, &hotline, &refused.declaration_number)
            .await
            .stage(),
        DeclarationStage::Refused
    );

    // Within the licence: accepted, and the instruction sends it down the red lane.
    let mut within = story::declaration("BL-RED-1", 2);
    within.items[1].quantity = "400".into();
    within.items[1].rulings.push(RulingCitation {
        ruling_id: licence.clone(),
        kind: RulingKind::Licence as i32,
        quantity: "400".into(),
    });
    let declared = submit(&app.channel, &broker_token(&app), "within-licence", within)
        .await
        .unwrap();
    // RED goes on to the review sub-centre at once.
    let stage = settled(&app.channel, &hotline, &declared.declaration_number)
        .await
        .stage();
    assert!(
        matches!(
            stage,
            DeclarationStage::LaneDecided | DeclarationStage::UnderReview
        ),
        "{stage:?}"
    );
    let full = Declarations::new(app.channel.clone())
        .get_declaration(authorized(
            pb::GetDeclarationRequest {
                declaration_number: declared.declaration_number.clone(),
            },
            &officer,
        ))
        .await
        .unwrap()
        .into_inner();
    assert_eq!(full.lane(), Lane::Red);
}

#[tokio::test]
async fn submissions_are_committed_while_the_risk_platform_is_down_and_screened_once_it_is_back() {
    // The risk platform's future address: reserved, then left empty.
    let reserved = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let risk_address = reserved.local_addr().unwrap();
    drop(reserved);

    let database = customs_common::testing::TestDatabase::sqlite()
        .await
        .unwrap();
    let mut settings = customs_common::config::Settings::defaults().unwrap();
    settings.server.listen = "127.0.0.1:0".parse().unwrap();
    settings.database.url = SecretString::from(database.url());
    settings.server.platforms = vec![
        PlatformName::Declaration,
        PlatformName::Review,
        PlatformName::Field,
    ];
    settings.clients.risk_url = format!("http://{risk_address}");
    let app = TestApp::spawn_with(settings.clone(), database, None)
        .await
        .unwrap();
    let officer = app.token(Role::Officer, "5300", None);
    story::parties(&app.channel, &officer, "BL-DOWN-1")
        .await
        .unwrap();
    let declared = submit(
        &app.channel,
        &broker_token(&app),
        "while-down",
        story::declaration("BL-DOWN-1", 1),
    )
    .await
    .unwrap();
    assert_eq!(
        declared.stage(),
        DeclarationStage::Submitted,
        "accepted and committed without the risk platform"
    );
    tokio::time::sleep(Duration::from_millis(1500)).await;
    let hotline = app.token(Role::Hotline, "5300", None);
    let waiting = story::status(&app.channel, &hotline, &declared.declaration_number).await;
    assert_eq!(waiting.stage(), DeclarationStage::Submitted);

    // The risk platform comes up at its address, reading the others at the first process.
    let mut risk_settings = settings;
    risk_settings.server.listen = risk_address;
    risk_settings.server.platforms = vec![PlatformName::Risk];
    risk_settings.clients.declaration_url = app.address.clone();
    risk_settings.clients.review_url = app.address.clone();
    let risk_database = customs_common::testing::TestDatabase::sqlite()
        .await
        .unwrap();
    risk_settings.database.url = SecretString::from(risk_database.url());
    let _risk = TestApp::spawn_with(risk_settings, risk_database, None)
        .await
        .unwrap();
    let status = settled(&app.channel, &hotline, &declared.declaration_number).await;
    assert_eq!(status.stage(), DeclarationStage::LaneDecided);
}

/// The declaration as an officer reads it, once it has left SUBMITTED and ACCEPTED.
async fn screened(app: &TestApp, officer: &str, number: &str) -> pb::Declaration {
    let hotline = app.token(Role::Hotline, "5300", None);
    settled(&app.channel, &hotline, number).await;
    Declarations::new(app.channel.clone())
        .get_declaration(authorized(
            pb::GetDeclarationRequest {
                declaration_number: number.into(),
            },
            officer,
        ))
        .await
        .unwrap()
        .into_inner()
}

/// A frozen-beef import licence of `kg` for the story's trader, issued at Guangzhou;
/// returns its id.
async fn beef_licence(app: &TestApp, request_id: &str, kg: &str) -> String {
    let guangzhou = app.token(Role::Officer, "5100", None);
    story::beef_licence(&app.channel, &guangzhou, request_id, kg).await
}

/// The risk platform's decision on a screened declaration, named by its lane event.
async fn decision_of(
    app: &TestApp,
    officer: &str,
    declaration: &pb::Declaration,
) -> risk_pb::ScreeningDecision {
    let decision_id = declaration
        .events
        .iter()
        .find(|e| e.to_stage() == DeclarationStage::LaneDecided)
        .and_then(|e| e.reason.strip_prefix("decision "))
        .expect("a lane decision")
        .to_owned();
    RiskServiceClient::new(app.channel.clone())
        .get_decision(authorized(
            risk_pb::GetDecisionRequest { decision_id },
            officer,
        ))
        .await
        .unwrap()
        .into_inner()
}

/// An officer reads, lists, suspends and reinstates enterprises; the logic checks
/// refuse a suspended broker's declaration and accept it again once reinstated.
#[tokio::test]
async fn enterprises_are_listed_suspended_and_reinstated() {
    use customs_proto::{
        common::CreditClass, declaration::enterprise_service_client::EnterpriseServiceClient,
    };
    for backend in BACKENDS {
        let app = TestApp::spawn(backend).await.unwrap();
        let channel = &app.channel;
        let officer = app.token(Role::Officer, "5300", None);
        let broker = broker_token(&app);
        story::parties(channel, &officer, "BL-SUSPEND-1")
            .await
            .unwrap();
        for code in ["4403960003", "4403960002"] {
            story::register(
                channel,
                &officer,
                code,
                pb::EnterpriseKind::Trader,
                CreditClass::GeneralCredit,
            )
            .await
            .unwrap();
        }
        let mut enterprises = EnterpriseServiceClient::new(channel.clone());

        // Traders of Shenzhen, two a page, in code order; none is homed in Guangzhou.
        let mut list = async |house: &str, page_token: String| {
            enterprises
                .list_enterprises(authorized(
                    pb::ListEnterprisesRequest {
                        page_size: 2,
                        page_token,
                        kind: pb::EnterpriseKind::Trader as i32,
                        home_house: house.into(),
                    },
                    &officer,
                ))
                .await
                .unwrap()
                .into_inner()
        };
        let codes = |page: &pb::ListEnterprisesResponse| -> Vec<String> {
            page.enterprises.iter().map(|e| e.code.clone()).collect()
        };
        let first = list("5300", String::new()).await;
        assert_eq!(codes(&first), [TRADER, "4403960002"], "{backend:?}");
        let second = list("5300", first.next_page_token.clone()).await;
        assert_eq!(codes(&second), ["4403960003"]);
        assert!(second.next_page_token.is_empty());
        assert!(list("5100", String::new()).await.enterprises.is_empty());

        // A broker reads itself, not another enterprise, and lists nothing.
        let mut enterprises = EnterpriseServiceClient::new(channel.clone());
        let get = |code: &str| pb::GetEnterpriseRequest { code: code.into() };
        let itself = enterprises
            .get_enterprise(authorized(get(BROKER), &broker))
            .await
            .unwrap()
            .into_inner();
        assert_eq!(
            (itself.kind(), itself.credit_class(), itself.suspended),
            (
                pb::EnterpriseKind::Broker,
                CreditClass::GeneralCredit,
                false
            )
        );
        let trader_token = app.token(Role::Enterprise, "5300", Some(TRADER));
        let not_yours = enterprises
            .get_enterprise(authorized(get(BROKER), &trader_token))
            .await
            .unwrap_err();
        assert_eq!(not_yours.code(), Code::PermissionDenied);
        let listing = enterprises
            .list_enterprises(authorized(pb::ListEnterprisesRequest::default(), &broker))
            .await
            .unwrap_err();
        assert_eq!(listing.code(), Code::PermissionDenied);

        // Suspension needs a reason and a registered enterprise.
        let suspend = |code: &str, reason: &str| {
            authorized(
                pb::SuspendEnterpriseRequest {
                    code: code.into(),
                    reason: reason.into(),
                },
                &officer,
            )
        };
        let no_reason = enterprises
            .suspend_enterprise(suspend(BROKER, " "))
            .await
            .unwrap_err();
        assert_eq!(no_reason.code(), Code::InvalidArgument);
        assert_eq!(
            no_reason
                .get_error_details()
                .bad_request()
                .unwrap()
                .field_violations[0]
                .field,
            "reason"
        );
        let unknown = enterprises
            .suspend_enterprise(suspend("4403989999", "licence under investigation"))
            .await
            .unwrap_err();
        assert_eq!(unknown.code(), Code::NotFound);
        let suspended = enterprises
            .suspend_enterprise(suspend(BROKER, "licence under investigation"))
            .await
            .unwrap()
            .into_inner();
        assert!(suspended.suspended);

        // The suspended broker's declaration is committed, then refused at acceptance.
        let declare = async |request_id: &str| {
            let content = story::declaration("BL-SUSPEND-1", 1);
            let declared = submit(channel, &broker, request_id, content).await.unwrap();
            screened(&app, &officer, &declared.declaration_number).await
        };
        let refused = declare("by-suspended-broker").await;
        assert_eq!(refused.stage(), DeclarationStage::Refused);
        let reason = &refused.events.last().unwrap().reason;
        assert!(reason.contains("BROKER_SUSPENDED"), "{reason}");

        // Reinstated, it declares again.
        let reinstated = enterprises
            .reinstate_enterprise(authorized(
                pb::ReinstateEnterpriseRequest {
                    code: BROKER.into(),
                    reason: "investigation closed".into(),
                },
                &officer,
            ))
            .await
            .unwrap()
            .into_inner();
        assert!(!reinstated.suspended);
        let accepted = declare("by-reinstated-broker").await;
        assert_ne!(accepted.stage(), DeclarationStage::Refused, "{backend:?}");
    }
}

/// A control instruction is read and listed while it is in force; once revoked
/// (with a reason, once) it is listed as revoked and no longer hits.
#[tokio::test]
async fn a_revoked_control_instruction_no_longer_hits() {
    use risk_pb::InstructionState;
    for backend in BACKENDS {
        let app = TestApp::spawn(backend).await.unwrap();
        let channel = &app.channel;
        let officer = app.token(Role::Officer, "5300", None);
        let broker = broker_token(&app);
        story::parties(channel, &officer, "BL-REVOKE-1")
            .await
            .unwrap();
        let mut instructions = ControlInstructionServiceClient::new(channel.clone());
        let issued = instructions
            .create_control_instruction(authorized(
                risk_pb::CreateControlInstructionRequest {
                    request_id: "computers-red".into(),
                    instruction: Some(risk_pb::ControlInstruction {
                        conditions: Some(risk_pb::InstructionConditions {
                            hs_prefixes: vec!["8471".into()],
                            ..Default::default()
                        }),
                        lane: Lane::Red as i32,
                        reason: "notebook computers: undervaluation alert".into(),
                        ..Default::default()
                    }),
                },
                &officer,
            ))
            .await
            .unwrap()
            .into_inner();
        let id = issued.instruction_id.clone();
        let mut ids = async |state: InstructionState, house: &str| -> Vec<String> {
            instructions
                .list_control_instructions(authorized(
                    risk_pb::ListControlInstructionsRequest {
                        state: state as i32,
                        issuing_house: house.into(),
                        ..Default::default()
                    },
                    &officer,
                ))
                .await
                .unwrap()
                .into_inner()
                .instructions
                .into_iter()
                .map(|i| i.instruction_id)
                .collect()
        };
        assert_eq!(ids(InstructionState::Active, "5300").await, [id.as_str()]);
        assert!(ids(InstructionState::Active, "5100").await.is_empty());
        assert!(ids(InstructionState::Revoked, "").await.is_empty());

        let hit_by = async |request_id: &str| -> Vec<String> {
            let declared = submit(
                channel,
                &broker,
                request_id,
                story::declaration("BL-REVOKE-1", 1),
            )
            .await
            .unwrap();
            let full = screened(&app, &officer, &declared.declaration_number).await;
            decision_of(&app, &officer, &full)
                .await
                .hits
                .into_iter()
                .map(|hit| hit.instruction_id)
                .collect()
        };
        assert_eq!(hit_by("while-in-force").await, [id.as_str()], "{backend:?}");

        let mut instructions = ControlInstructionServiceClient::new(channel.clone());
        let revoke = |reason: &str| {
            authorized(
                risk_pb::RevokeControlInstructionRequest {
                    instruction_id: id.clone(),
                    reason: reason.into(),
                },
                &officer,
            )
        };
        let no_reason = instructions
            .revoke_control_instruction(revoke(""))
            .await
            .unwrap_err();
        assert_eq!(no_reason.code(), Code::InvalidArgument);
        let revoked = instructions
            .revoke_control_instruction(revoke("alert withdrawn"))
            .await
            .unwrap()
            .into_inner();
        assert_eq!(
            (revoked.state(), revoked.revocation_reason.as_str()),
            (InstructionState::Revoked, "alert withdrawn")
        );
        assert!(revoked.revoked_at.is_some());
        let again = instructions
            .revoke_control_instruction(revoke("a second thought"))
            .await
            .unwrap()
            .into_inner();
        assert_eq!(
            again.revocation_reason, "alert withdrawn",
            "revoked once, the first reason stands"
        );
        let read = instructions
            .get_control_instruction(authorized(
                risk_pb::GetControlInstructionRequest {
                    instruction_id: id.clone(),
                },
                &officer,
            ))
            .await
            .unwrap()
            .into_inner();
        assert_eq!(read, again);
        let unknown = instructions
            .get_control_instruction(authorized(
                risk_pb::GetControlInstructionRequest {
                    instruction_id: "no-such-instruction".into(),
                },
                &officer,
            ))
            .await
            .unwrap_err();
        assert_eq!(unknown.code(), Code::NotFound);

        let mut ids = async |state: InstructionState| -> usize {
            instructions
                .list_control_instructions(authorized(
                    risk_pb::ListControlInstructionsRequest {
                        state: state as i32,
                        ..Default::default()
                    },
                    &officer,
                ))
                .await
                .unwrap()
                .into_inner()
                .instructions
                .len()
        };
        assert_eq!(
            (
                ids(InstructionState::Active).await,
                ids(InstructionState::Revoked).await
            ),
            (0, 1)
        );
        assert!(hit_by("after-revocation").await.is_empty(), "{backend:?}");
    }
}

/// The sampling rates are read, and updated by an administrator against the version
/// read (a stale version, bad rates and a class given twice are refused); the next
/// decision samples by the new rates and records their version.
#[tokio::test]
async fn risk_parameters_are_updated_by_version_and_steer_the_sampling() {
    use customs_proto::common::CreditClass;
    use risk_pb::{LaneRate, risk_parameter_service_client::RiskParameterServiceClient};
    for backend in BACKENDS {
        let app = TestApp::spawn(backend).await.unwrap();
        let channel = &app.channel;
        let officer = app.token(Role::Officer, "5300", None);
        let admin = app.token(Role::Admin, "5300", None);
        story::parties(channel, &officer, "BL-SAMPLE-1")
            .await
            .unwrap();
        let mut parameters = RiskParameterServiceClient::new(channel.clone());
        let current = parameters
            .get_risk_parameters(authorized(risk_pb::GetRiskParametersRequest {}, &officer))
            .await
            .unwrap()
            .into_inner();
        assert_eq!(current.sampling.len(), 4, "{current:?}");
        assert!(!current.sampling_seed.is_empty());

        // Every advanced-certified declaration (the story's trader) sampled RED.
        let rate = |lane: Lane, rate: &str| LaneRate {
            lane: lane as i32,
            rate: rate.into(),
        };
        let with_advanced = |rates: Vec<LaneRate>| {
            let mut wanted = current.clone();
            for class in &mut wanted.sampling {
                if class.credit_class() == CreditClass::AdvancedCertified {
                    class.rates = rates.clone();
                }
            }
            wanted
        };
        let update = |expected_version: i64, wanted: risk_pb::RiskParameters| {
            authorized(
                risk_pb::UpdateRiskParametersRequest {
                    expected_version,
                    parameters: Some(wanted),
                },
                &admin,
            )
        };
        let all_red = with_advanced(vec![rate(Lane::Red, "1")]);
        let stale = parameters
            .update_risk_parameters(update(current.version - 1, all_red.clone()))
            .await
            .unwrap_err();
        assert_eq!(
            (stale.code(), stale.get_details_error_info().unwrap().reason),
            (
                Code::FailedPrecondition,
                "PARAMETERS_VERSION_CONFLICT".into()
            )
        );
        let mut bad = with_advanced(vec![
            rate(Lane::Red, "1.5"),
            rate(Lane::Green, "0"),
            rate(Lane::Green, "0"),
        ]);
        bad.sampling.push(bad.sampling[0].clone());
        let refused = parameters
            .update_risk_parameters(update(current.version, bad))
            .await
            .unwrap_err();
        assert_eq!(refused.code(), Code::InvalidArgument);
        let reasons: HashSet<String> = violations(&refused)
            .into_iter()
            .map(|(_, description)| description)
            .collect();
        for expected in [
            "RATE_INVALID",
            "LANE_NOT_SAMPLED",
            "LANE_REPEATED",
            "CREDIT_CLASS_REPEATED",
        ] {
            assert!(
                reasons.iter().any(|r| r.contains(expected)),
                "{expected} missing from {reasons:?}"
            );
        }
        let updated = parameters
            .update_risk_parameters(update(current.version, all_red))
            .await
            .unwrap()
            .into_inner();
        assert_eq!(updated.version, current.version + 1);
        assert!(!updated.updated_by.is_empty());

        let declared = submit(
            channel,
            &broker_token(&app),
            "sampled-red",
            story::declaration("BL-SAMPLE-1", 1),
        )
        .await
        .unwrap();
        let full = screened(&app, &officer, &declared.declaration_number).await;
        assert_eq!(full.lane(), Lane::Red, "{backend:?}");
        let decision = decision_of(&app, &officer, &full).await;
        let sampling = decision.sampling.unwrap();
        assert_eq!(
            (
                decision.hits.len(),
                sampling.credit_class(),
                sampling.lane(),
                decision.parameters_version
            ),
            (
                0,
                CreditClass::AdvancedCertified,
                Lane::Red,
                updated.version
            )
        );
    }
}

/// A licence cited at acceptance is drawn down then, once per declaration: of two
/// declarations sent at once that each fit the balance but not together, one is
/// accepted; a declaration refused because one of its licences has too little left
/// gives back what it drew of the other, and so does a declaration cancelled.
#[tokio::test]
async fn a_cited_licence_is_drawn_down_at_acceptance_and_serves_one_declaration() {
    for backend in BACKENDS {
        let app = TestApp::spawn(backend).await.unwrap();
        let channel = &app.channel;
        let officer = app.token(Role::Officer, "5300", None);
        let broker = broker_token(&app);
        story::parties(channel, &officer, "BL-LICENCE-1")
            .await
            .unwrap();
        let big = beef_licence(&app, "licence-500", "500").await;
        let small = beef_licence(&app, "licence-100", "100").await;
        // Beef on lines 2 and 4, each citing (licence, kg).
        let citing = |lines: [Option<(&str, &str)>; 2]| {
            let mut content = story::declaration("BL-LICENCE-1", 4);
            for (item, cited) in [1, 3].into_iter().zip(lines) {
                if let Some((licence, kg)) = cited {
                    content.items[item].quantity = kg.into();
                    content.items[item].rulings.push(RulingCitation {
                        ruling_id: licence.into(),
                        kind: RulingKind::Licence as i32,
                        quantity: kg.into(),
                    });
                }
            }
            content
        };
        let declare = async |request_id: &str, content| {
            let declared = submit(channel, &broker, request_id, content).await.unwrap();
            screened(&app, &officer, &declared.declaration_number).await
        };
        let refusal = |declaration: &pb::Declaration| {
            (declaration.stage() == DeclarationStage::Refused)
                .then(|| declaration.events.last().unwrap().reason.clone())
        };
        let remaining = async |id: &str| {
            RulingServiceClient::new(channel.clone())
                .get_ruling(authorized(
                    review_pb::GetRulingRequest {
                        ruling_id: id.into(),
                    },
                    &officer,
                ))
                .await
                .unwrap()
                .into_inner()
                .quantity_remaining
        };

        // 300 kg twice, at once, against 500: one is accepted.
        let (first, second) = tokio::join!(
            declare("beef-300-a", citing([Some((&big, "300")), None])),
            declare("beef-300-b", citing([Some((&big, "300")), None])),
        );
        let refusals: Vec<String> = [&first, &second].into_iter().filter_map(refusal).collect();
        assert_eq!(refusals.len(), 1, "{backend:?}: {refusals:?}");
        assert!(
            refusals[0].contains("LICENCE_QUANTITY_EXCEEDED"),
            "{}",
            refusals[0]
        );
        assert_eq!(remaining(&big).await, "200");

        // 150 of the big one and 150 of the small one: refused, and the big one's 150
        // given back.
        let both = declare(
            "beef-150-150",
            citing([Some((&big, "150")), Some((&small, "150"))]),
        )
        .await;
        let reason = refusal(&both).expect("refused");
        assert!(
            reason.contains("items[3].rulings[0].quantity"),
            "the small licence's citation is named: {reason}"
        );
        assert_eq!(
            (remaining(&big).await, remaining(&small).await),
            ("200".into(), "100".into())
        );

        // What is left serves the next declaration.
        let rest = declare(
            "beef-200-100",
            citing([Some((&big, "200")), Some((&small, "100"))]),
        )
        .await;
        assert_eq!(refusal(&rest), None, "{backend:?}");
        assert_eq!(
            (remaining(&big).await, remaining(&small).await),
            ("0".into(), "0".into())
        );

        // Cancelled, its goods are not cleared: its draws come back.
        let reviewer = app.token(Role::Reviewer, "5300", None);
        let mut reviews =
            review_pb::review_service_client::ReviewServiceClient::new(channel.clone());
        story::request_cancellation(
            channel,
            &broker,
            "cancel-beef-200-100",
            &rest.declaration_number,
        )
        .await;
        let mut cancellation = None;
        for _ in 0..100 {
            match reviews
                .claim_task(authorized(
                    review_pb::ClaimTaskRequest::default(),
                    &reviewer,
                ))
                .await
            {
                Ok(task) if task.get_ref().kind() == review_pb::TaskKind::Cancellation => {
                    cancellation = Some(task.into_inner());
                    break;
                }
                Ok(_) => {}
                Err(_) => tokio::time::sleep(Duration::from_millis(50)).await,
            }
        }
        let cancellation = cancellation.expect("the cancellation reaches the sub-centre");
        assert_eq!(cancellation.declaration_number, rest.declaration_number);
        story::approve_change(channel, &cancellation.task_id, &reviewer)
            .await
            .unwrap();
        story::reach(
            channel,
            &officer,
            &rest.declaration_number,
            DeclarationStage::Cancelled,
        )
        .await;
        let mut given_back = (String::new(), String::new());
        for _ in 0..100 {
            given_back = (remaining(&big).await, remaining(&small).await);
            if given_back == ("200".into(), "100".into()) {
                break;
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        assert_eq!(given_back, ("200".into(), "100".into()), "{backend:?}");
    }
}

/// `RecordTransition` and `RecordChangeDecision` are the other platforms' reports, and
/// `ScreenDeclaration` the declaration platform's hand-off: an officer or a reviewer may
/// not move a declaration, decide a change request or record a screening through them
/// (that would bypass the deciding sub-centre, the field platform's rules, or the
/// declaration's own screening), and a platform's report the lifecycle does not allow
/// is refused. One it allows answers the declaration whole, or in the BASIC view (what
/// the platforms' relays ask for) without its content and its events.
#[tokio::test]
async fn only_the_platforms_report_transitions_and_change_decisions() {
    let app = TestApp::spawn(Backend::Embedded).await.unwrap();
    let officer = app.token(Role::Officer, "5300", None);
    story::parties(&app.channel, &officer, "BL-REPORTS-1")
        .await
        .unwrap();
    let declared = submit(
        &app.channel,
        &broker_token(&app),
        "reports-1",
        story::declaration("BL-REPORTS-1", 1),
    )
    .await
    .unwrap();
    let number = declared.declaration_number;
    let lane_decided = screened(&app, &officer, &number).await;
    assert_eq!(lane_decided.stage(), DeclarationStage::LaneDecided);
    let client = Declarations::new(app.channel.clone());
    let report = |to: DeclarationStage, token: &str| {
        let request = authorized(
            pb::RecordTransitionRequest {
                request_id: format!("report-{to:?}"),
                declaration_number: number.clone(),
                to_stage: to as i32,
                house_code: "5300".into(),
                reason: "by hand".into(),
                ..Default::default()
            },
            token,
        );
        let mut client = client.clone();
        async move { client.record_transition(request).await }
    };
    for token in [&officer, &app.token(Role::Reviewer, "5300", None)] {
        let refused = report(DeclarationStage::Released, token).await.unwrap_err();
        assert_eq!(refused.code(), Code::PermissionDenied, "{refused:?}");
        let refused = client
            .clone()
            .record_change_decision(authorized(
                pb::RecordChangeDecisionRequest {
                    change_request_id: "CR0".into(),
                    approve: true,
                    reason: "by hand".into(),
                    house_code: "5300".into(),
                },
                token,
            ))
            .await
            .unwrap_err();
        assert_eq!(refused.code(), Code::PermissionDenied, "{refused:?}");
        let refused = client
            .clone()
            .check_change_request(authorized(
                pb::CheckChangeRequestRequest {
                    change_request_id: "CR0".into(),
                },
                token,
            ))
            .await
            .unwrap_err();
        assert_eq!(refused.code(), Code::PermissionDenied, "{refused:?}");
    }
    // Nor may an officer screen a declaration: the decision would stand for it.
    let refused = RiskServiceClient::new(app.channel.clone())
        .screen_declaration(authorized(
            risk_pb::ScreenDeclarationRequest {
                request_id: "screen-by-hand".into(),
                declaration_number: number.clone(),
                content: Some(story::declaration("BL-REPORTS-1", 1)),
                revision: 1,
                ..Default::default()
            },
            &officer,
        ))
        .await
        .unwrap_err();
    assert_eq!(refused.code(), Code::PermissionDenied, "{refused:?}");
    // A platform's report the lifecycle does not allow: a declaration not yet released
    // cannot have exited.
    let admin = app.token(Role::Admin, "5300", None);
    let refused = report(DeclarationStage::Exited, &admin).await.unwrap_err();
    assert_eq!(
        (refused.code(), reason(&refused).as_str()),
        (Code::FailedPrecondition, "TRANSITION_NOT_ALLOWED")
    );
    let unchanged = screened(&app, &officer, &number).await;
    assert_eq!(
        (unchanged.stage(), unchanged.events.len()),
        (DeclarationStage::LaneDecided, lane_decided.events.len())
    );
    let reported = |to: DeclarationStage, view: pb::DeclarationView| {
        let request = authorized(
            pb::RecordTransitionRequest {
                declaration_number: number.clone(),
                to_stage: to as i32,
                house_code: "5300".into(),
                reason: "by the field platform".into(),
                view: view as i32,
                ..Default::default()
            },
            &admin,
        );
        let mut client = client.clone();
        async move {
            client
                .record_transition(request)
                .await
                .unwrap()
                .into_inner()
        }
    };
    let basic = reported(DeclarationStage::TaxSecured, pb::DeclarationView::Basic).await;
    assert_eq!(
        (
            basic.declaration_number.as_str(),
            basic.stage(),
            basic.version,
            basic.content.is_none(),
            basic.events.len()
        ),
        (
            number.as_str(),
            DeclarationStage::TaxSecured,
            lane_decided.version + 1,
            true,
            0
        )
    );
    let full = reported(DeclarationStage::Released, pb::DeclarationView::Unspecified).await;
    assert_eq!(
        (
            full.stage(),
            full.content,
            full.events.len(),
            full.events.last().map(|event| event.to_stage())
        ),
        (
            DeclarationStage::Released,
            lane_decided.content,
            lane_decided.events.len() + 2,
            Some(DeclarationStage::Released)
        )
    );
    // A timeline note answers in the view asked for likewise.
    let noted = |request_id: &str, view: pb::DeclarationView| {
        let request = authorized(
            pb::RecordTimelineNoteRequest {
                request_id: request_id.into(),
                declaration_number: number.clone(),
                note: TimelineNote::TransitDeclared as i32,
                house_code: "5300".into(),
                reason: "by the field platform".into(),
                view: view as i32,
            },
            &admin,
        );
        let mut client = client.clone();
        async move {
            client
                .record_timeline_note(request)
                .await
                .unwrap()
                .into_inner()
        }
    };
    let basic = noted("note-1", pb::DeclarationView::Basic).await;
    assert_eq!(
        (basic.stage(), basic.content.is_none(), basic.events.len()),
        (DeclarationStage::Released, true, 0)
    );
    let full = noted("note-2", pb::DeclarationView::Full).await;
    assert_eq!(
        (
            full.content.is_some(),
            full.events.len(),
            full.events.last().map(|event| event.note())
        ),
        (
            true,
            lane_decided.events.len() + 4,
            Some(TimelineNote::TransitDeclared)
        )
    );
}

/// The 2018 default, then a 2021 scheme that drops GENERAL_CERTIFIED (its enterprises
/// hold GENERAL_CREDIT from its first day) and a 2026 scheme that adds a class the
/// API's 2018 enum does not name, CREDIT_WATCH, with its sampling rates (always RED)
/// and inland policy (refused).
fn later_schemes(settings: &mut customs_common::config::Settings, with_sampling: bool) {
    use customs_common::{
        config::{InlandPolicySetting, LaneRates},
        credit::CreditSchemeSetting,
        testing::{credit_class as class, credit_scheme_2021},
    };
    settings.credit.schemes.push(credit_scheme_2021());
    settings.credit.schemes.push(CreditSchemeSetting {
        name: "2026".into(),
        effective_from: "2026-01-01".into(),
        classes: vec![
            class("ADVANCED_CERTIFIED", true),
            class("GENERAL_CREDIT", true),
            class("CREDIT_WATCH", true),
            class("DISCREDITED", false),
        ],
        carried_over: Default::default(),
    });
    if with_sampling {
        settings.risk.sampling.insert(
            "CREDIT_WATCH".into(),
            LaneRates {
                red: rust_decimal::Decimal::ONE,
                yellow: rust_decimal::Decimal::ZERO,
                blue: rust_decimal::Decimal::ZERO,
            },
        );
    }
    settings.field.inland_policy.insert(
        "CREDIT_WATCH".into(),
        InlandPolicySetting {
            inland_allowed: false,
            smart_lock: true,
            vehicle_tracking: true,
        },
    );
}

/// DOMAIN.md 8: credit classes are effective-dated configuration. Enterprises
/// registered under the 2018 scheme keep their class until a scheme that drops it
/// comes into force (here, by a restart with the later schemes configured); a class is
/// given only from the scheme in force on its day; a class of a later scheme, which
/// the 2018 enum cannot name, is named by its code and reaches screening.
#[tokio::test]
async fn credit_classes_follow_the_scheme_in_force() {
    use customs_proto::{
        common::CreditClass, declaration::enterprise_service_client::EnterpriseServiceClient,
    };
    const CERTIFIED: &str = "4403960005";
    let reasons = |status: &tonic::Status| -> Vec<(String, String)> {
        customs_common::error::violations_of(status)
            .expect("field violations")
            .into_iter()
            .map(|v| (v.field, v.reason.into_owned()))
            .collect()
    };
    let register =
        |code: &str, class: CreditClass, class_code: &str| pb::RegisterEnterpriseRequest {
            request_id: format!("register-{code}"),
            code: code.into(),
            name: format!("Enterprise {code}"),
            kind: pb::EnterpriseKind::Trader as i32,
            credit_class: class as i32,
            home_house: "5300".into(),
            credit_class_code: class_code.into(),
        };
    for backend in BACKENDS {
        let app = TestApp::spawn(backend).await.unwrap();
        let officer = app.token(Role::Officer, "5300", None);
        story::parties(&app.channel, &officer, "BL-SCHEME-1")
            .await
            .unwrap();
        let mut enterprises = EnterpriseServiceClient::new(app.channel.clone());
        let certified = enterprises
            .register_enterprise(authorized(
                register(CERTIFIED, CreditClass::GeneralCertified, ""),
                &officer,
            ))
            .await
            .unwrap()
            .into_inner();
        assert_eq!(
            (
                certified.credit_class(),
                certified.credit_class_code.as_str()
            ),
            (CreditClass::GeneralCertified, "GENERAL_CERTIFIED"),
            "{backend:?}"
        );
        let conflict = enterprises
            .register_enterprise(authorized(
                register("4403960006", CreditClass::GeneralCredit, "DISCREDITED"),
                &officer,
            ))
            .await
            .unwrap_err();
        assert_eq!(conflict.code(), Code::InvalidArgument);
        assert_eq!(
            reasons(&conflict),
            [(
                "credit_class_code".to_owned(),
                "CREDIT_CLASS_CONFLICT".to_owned()
            )]
        );

        // The gateway reads which classes it may name.
        let listed = enterprises
            .list_credit_schemes(authorized(
                pb::ListCreditSchemesRequest {},
                &broker_token(&app),
            ))
            .await
            .unwrap()
            .into_inner();
        assert_eq!(listed.in_force, "2018");
        let classes: Vec<(&str, bool)> = listed.schemes[0]
            .classes
            .iter()
            .map(|c| (c.code.as_str(), c.summary_tax_payment))
            .collect();
        assert_eq!(
            classes,
            [
                ("ADVANCED_CERTIFIED", true),
                ("GENERAL_CERTIFIED", true),
                ("GENERAL_CREDIT", true),
                ("DISCREDITED", false)
            ]
        );
        assert_eq!(listed.schemes[0].classes[3].name_zh, "失信企业");

        // A class the scheme in force lacks gets no rates, no inland policy: the
        // platforms refuse to start rather than leave it out.
        let (mut settings, database, redis) = app.stop().await.unwrap();
        let mut unsampled = settings.clone();
        later_schemes(&mut unsampled, false);
        let refused = TestApp::spawn_configured(backend, |s| *s = unsampled.clone())
            .await
            .unwrap_err();
        assert!(
            format!("{refused:#}")
                .contains("risk.sampling has nothing for the credit class CREDIT_WATCH"),
            "{refused:#}"
        );

        // Restarted with the later schemes: the 2021 scheme has carried the certified
        // enterprise over (at start-up, as every minute).
        later_schemes(&mut settings, true);
        let app = TestApp::spawn_with(settings, database, redis)
            .await
            .unwrap();
        let mut enterprises = EnterpriseServiceClient::new(app.channel.clone());
        let mut carried = None;
        for _ in 0..100 {
            let found = enterprises
                .get_enterprise(authorized(
                    pb::GetEnterpriseRequest {
                        code: CERTIFIED.into(),
                    },
                    &officer,
                ))
                .await
                .unwrap()
                .into_inner();
            if found.credit_class_code != "GENERAL_CERTIFIED" {
                carried = Some(found);
                break;
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        let carried = carried.expect("carried over to the 2021 scheme");
        assert_eq!(
            (carried.credit_class(), carried.credit_class_code.as_str()),
            (CreditClass::GeneralCredit, "GENERAL_CREDIT")
        );

        let listed = enterprises
            .list_credit_schemes(authorized(pb::ListCreditSchemesRequest {}, &officer))
            .await
            .unwrap()
            .into_inner();
        let names: Vec<&str> = listed.schemes.iter().map(|s| s.name.as_str()).collect();
        assert_eq!(
            (names, listed.in_force.as_str()),
            (vec!["2018", "2021", "2026"], "2026")
        );
        assert_eq!(
            listed.schemes[1]
                .carried_over
                .get("GENERAL_CERTIFIED")
                .map(String::as_str),
            Some("GENERAL_CREDIT")
        );

        // GENERAL_CERTIFIED is no longer given; CREDIT_WATCH is, by its code.
        let dropped = enterprises
            .register_enterprise(authorized(
                register("4403960007", CreditClass::GeneralCertified, ""),
                &officer,
            ))
            .await
            .unwrap_err();
        assert_eq!(
            reasons(&dropped),
            [(
                "credit_class".to_owned(),
                "CREDIT_CLASS_NOT_IN_SCHEME".to_owned()
            )],
            "named where the request named it"
        );
        let watched = enterprises
            .register_enterprise(authorized(
                register("4403960007", CreditClass::Unspecified, "CREDIT_WATCH"),
                &officer,
            ))
            .await
            .unwrap()
            .into_inner();
        assert_eq!(
            (watched.credit_class(), watched.credit_class_code.as_str()),
            (CreditClass::Unspecified, "CREDIT_WATCH")
        );

        // The story's trader placed under watch: its declaration is sampled by the
        // new class's rates, and the decision names the class.
        let updated = enterprises
            .update_credit_class(authorized(
                pb::UpdateCreditClassRequest {
                    code: TRADER.into(),
                    credit_class_code: "credit_watch".into(),
                    reason: "irregularities under investigation".into(),
                    ..Default::default()
                },
                &officer,
            ))
            .await
            .unwrap()
            .into_inner();
        assert_eq!(updated.credit_class_code, "CREDIT_WATCH");
        let declared = submit(
            &app.channel,
            &broker_token(&app),
            "scheme-1",
            story::declaration("BL-SCHEME-1", 1),
        )
        .await
        .unwrap();
        let full = screened(&app, &officer, &declared.declaration_number).await;
        let decision = decision_of(&app, &officer, &full).await;
        let sampling = decision.sampling.clone().unwrap();
        assert_eq!(
            (
                decision.lane(),
                sampling.lane(),
                sampling.credit_class(),
                sampling.credit_class_code.as_str()
            ),
            (
                Lane::Red,
                Lane::Red,
                CreditClass::Unspecified,
                "CREDIT_WATCH"
            ),
            "{decision:?}"
        );

        // Control instructions name such a class by code; an unknown code is refused.
        let mut instructions = ControlInstructionServiceClient::new(app.channel.clone());
        let instruction = |request_id: &str, code: &str| {
            authorized(
                risk_pb::CreateControlInstructionRequest {
                    request_id: request_id.into(),
                    instruction: Some(risk_pb::ControlInstruction {
                        conditions: Some(risk_pb::InstructionConditions {
                            hs_prefixes: vec!["0202".into()],
                            credit_classes: vec![CreditClass::Discredited as i32],
                            credit_class_codes: vec![code.into()],
                            ..Default::default()
                        }),
                        lane: Lane::Yellow as i32,
                        reason: "frozen beef from traders under watch".into(),
                        ..Default::default()
                    }),
                },
                &officer,
            )
        };
        let issued = instructions
            .create_control_instruction(instruction("watch-beef", "CREDIT_WATCH"))
            .await
            .unwrap()
            .into_inner();
        let conditions = issued.conditions.unwrap();
        assert_eq!(
            conditions.credit_class_codes,
            ["CREDIT_WATCH", "DISCREDITED"]
        );
        assert_eq!(
            conditions.credit_classes,
            [CreditClass::Discredited as i32],
            "the enum names the 2018 classes among them"
        );
        let unknown = instructions
            .create_control_instruction(instruction("watch-nope", "NOPE"))
            .await
            .unwrap_err();
        assert_eq!(
            reasons(&unknown),
            [(
                "instruction.conditions.credit_class_codes[0]".to_owned(),
                "CREDIT_CLASS_UNKNOWN".to_owned()
            )]
        );
    }
}
