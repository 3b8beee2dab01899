//! Field operations through the public API: the tax bill and its payment (at once,
//! or against the general guarantee), inspection with transport monitoring and holds,
//! release and the gate, and post-clearance re-review of what was released.

use std::time::Duration;

use customs_common::auth::Role;
use customs_proto::{
    common::{ClearanceMode, CreditClass, Date, DeclarationStage, Lane, Money, TimelineNote},
    declaration::{self as pb, enterprise_service_client::EnterpriseServiceClient},
    field::{
        self as field_pb, gate_service_client::GateServiceClient as Gates,
        guarantee_service_client::GuaranteeServiceClient as Guarantees,
        inspection_service_client::InspectionServiceClient as Inspections,
        tax_service_client::TaxServiceClient as Taxes,
        transit_service_client::TransitServiceClient as Transits,
        transport_service_client::TransportServiceClient as Transport,
    },
    review::{
        self as review_pb, post_review_service_client::PostReviewServiceClient as PostReview,
        review_service_client::ReviewServiceClient as Reviews,
    },
};
use integration_tests::{
    BACKENDS, Backend, TestApp, authorized,
    story::{self, BROKER, CONTAINER, PORT, TRADER},
};
use tonic::{Code, transport::Channel};
use tonic_types::StatusExt;

fn reason(status: &tonic::Status) -> String {
    status
        .get_details_error_info()
        .map(|info| info.reason)
        .unwrap_or_default()
}

/// A refusal's code and the field of its first violation (empty when it has none).
fn refused_on(status: &tonic::Status) -> (Code, String) {
    let field = status
        .get_details_bad_request()
        .and_then(|details| details.field_violations.into_iter().next())
        .map(|violation| violation.field)
        .unwrap_or_default();
    (status.code(), field)
}

fn cny(amount: &str) -> Option<Money> {
    Some(Money {
        currency_code: "CNY".into(),
        amount: amount.into(),
    })
}

struct Tokens {
    officer: String,
    broker: String,
    reviewer: String,
    gate: String,
}

fn tokens(app: &TestApp) -> Tokens {
    Tokens {
        officer: app.token(Role::Officer, "5300", None),
        broker: app.token(Role::Broker, "5300", Some(BROKER)),
        reviewer: app.token(Role::Reviewer, "5300", None),
        gate: app.token(Role::Gate, "5316", None),
    }
}

async fn assess(
    channel: &Channel,
    token: &str,
    number: &str,
    method: field_pb::PaymentMethod,
    guarantee: Option<(&str, &str)>,
) -> Result<field_pb::TaxBill, tonic::Status> {
    let (reference, access_code) = guarantee.unwrap_or_default();
    Taxes::new(channel.clone())
        .assess_duties(authorized(
            field_pb::AssessDutiesRequest {
                request_id: format!("assess-{number}"),
                declaration_number: number.into(),
                content: None,
                payment_method: method as i32,
                guarantee_reference: reference.into(),
                guarantee_access_code: access_code.into(),
            },
            token,
        ))
        .await
        .map(tonic::Response::into_inner)
}

async fn gate(
    channel: &Channel,
    token: &str,
    request_id: &str,
    containers: &[&str],
    numbers: &[&str],
) -> field_pb::GateDecision {
    Gates::new(channel.clone())
        .check_gate(authorized(
            field_pb::CheckGateRequest {
                gate_id: format!("YT-{request_id}"),
                port_code: PORT.into(),
                vehicle_plate: "粤B12345".into(),
                container_numbers: containers.iter().map(|c| c.to_string()).collect(),
                declaration_numbers: numbers.iter().map(|n| n.to_string()).collect(),
                request_id: request_id.into(),
            },
            token,
        ))
        .await
        .unwrap()
        .into_inner()
}

/// The electronic release record of a declaration, as a gate reads it.
async fn release(
    channel: &Channel,
    token: &str,
    number: &str,
) -> Result<field_pb::ReleaseRecord, tonic::Status> {
    Gates::new(channel.clone())
        .get_release(authorized(
            field_pb::GetReleaseRequest {
                declaration_number: number.into(),
            },
            token,
        ))
        .await
        .map(tonic::Response::into_inner)
}

/// Assesses the duties for immediate payment, as the broker, and records their
/// payment in full, as the officer: the goods are released unless held otherwise.
async fn pay_in_full(channel: &Channel, t: &Tokens, number: &str, reference: &str) {
    let bill = assess(
        channel,
        &t.broker,
        number,
        field_pb::PaymentMethod::Immediate,
        None,
    )
    .await
    .unwrap();
    Taxes::new(channel.clone())
        .record_payment(authorized(
            field_pb::RecordPaymentRequest {
                request_id: format!("pay-{number}"),
                declaration_number: number.into(),
                amount: bill.total,
                payment_reference: reference.into(),
            },
            &t.officer,
        ))
        .await
        .unwrap();
}

fn hold_reasons(decision: &field_pb::GateDecision) -> Vec<field_pb::HoldReason> {
    decision.reasons.iter().map(|r| r.reason()).collect()
}

/// GREEN: duties assessed by hand-checked figures, paid at once, released, out
/// through the gate once, and the hotline sees it leave.
#[tokio::test]
async fn a_green_declaration_is_taxed_paid_released_and_passes_the_gate_once() {
    for backend in BACKENDS {
        let app = TestApp::spawn(backend).await.unwrap();
        let (channel, t) = (&app.channel, tokens(&app));
        story::parties(channel, &t.officer, "BL-FIELD-1")
            .await
            .unwrap();
        let declared = story::submit(
            channel,
            &t.broker,
            "field-1",
            story::declaration("BL-FIELD-1", 2),
        )
        .await;
        let number = declared.declaration_number.clone();
        let decided =
            story::reach(channel, &t.officer, &number, DeclarationStage::LaneDecided).await;
        assert!(
            matches!(decided.lane(), Lane::Green | Lane::Blue),
            "{:?}",
            decided.lane()
        );

        // Declared for regional integrated clearance: no transit to declare.
        let status = Transits::new(channel.clone())
            .declare_transit(authorized(
                field_pb::DeclareTransitRequest {
                    declaration_number: number.clone(),
                    inland_house_code: "5100".into(),
                    vehicle_plate: "粤A54321".into(),
                    request_id: "not-a-transit".into(),
                },
                &t.broker,
            ))
            .await
            .unwrap_err();
        assert_eq!(
            (status.code(), reason(&status)),
            (Code::FailedPrecondition, "NOT_A_TRANSIT_DECLARATION".into())
        );

        // Not before the lane decision; not another enterprise's.
        let stranger = app.token(Role::Broker, "5300", Some("4403980099"));
        let status = assess(
            channel,
            &stranger,
            &number,
            field_pb::PaymentMethod::Immediate,
            None,
        )
        .await
        .unwrap_err();
        assert_eq!(status.code(), Code::NotFound);

        // 5,000.00 USD of computers and 5,250.00 USD of beef at 7.1000: duty 4,473.00,
        // VAT 4,615.00 + 3,757.32 (see field-platform's tax tests).
        let bill = assess(
            channel,
            &t.broker,
            &number,
            field_pb::PaymentMethod::Immediate,
            None,
        )
        .await
        .unwrap();
        assert_eq!(bill.state(), field_pb::TaxBillState::Assessed);
        let amounts: Vec<(String, String, String, String)> = bill
            .lines
            .iter()
            .map(|l| {
                (
                    l.customs_value_cny.clone().unwrap().amount,
                    l.duty_rate.clone(),
                    l.duty.clone().unwrap().amount,
                    l.vat.clone().unwrap().amount,
                )
            })
            .collect();
        assert_eq!(
            amounts,
            [
                (
                    "35500.00".into(),
                    "0".into(),
                    "0.00".into(),
                    "4615.00".into()
                ),
                (
                    "37275.00".into(),
                    "0.12".into(),
                    "4473.00".into(),
                    "3757.32".into()
                )
            ]
        );
        assert_eq!(
            (
                bill.total_duty.clone().unwrap().amount,
                bill.total_vat.clone().unwrap().amount,
                bill.total.clone().unwrap().amount
            ),
            ("4473.00".into(), "8372.32".into(), "12845.32".into())
        );
        assert_eq!(bill.lines[0].exchange_rate, "7.1000");
        assert!(bill.rounding.contains("half-up"));
        // A second assessment returns the same bill.
        let again = assess(
            channel,
            &t.broker,
            &number,
            field_pb::PaymentMethod::Immediate,
            None,
        )
        .await
        .unwrap();
        assert_eq!(again.tax_bill_id, bill.tax_bill_id);
        let printed = Taxes::new(channel.clone())
            .render_tax_bill(authorized(
                field_pb::RenderTaxBillRequest {
                    declaration_number: number.clone(),
                },
                &t.broker,
            ))
            .await
            .unwrap()
            .into_inner();
        let text = String::from_utf8(printed.content).unwrap();
        assert!(
            printed.content_type.starts_with("text/plain")
                && text.contains("12845.32")
                && text.contains(&number),
            "{text}"
        );

        // Not released before payment; a wrong amount is refused.
        let held = gate(channel, &t.gate, "before-payment", &[CONTAINER], &[&number]).await;
        assert_eq!(hold_reasons(&held), [field_pb::HoldReason::NoRelease]);
        let mut taxes = Taxes::new(channel.clone());
        let pay = |amount: &str| field_pb::RecordPaymentRequest {
            request_id: format!("pay-{amount}"),
            declaration_number: number.clone(),
            amount: cny(amount),
            payment_reference: "BOC-20261126-0001".into(),
        };
        let status = taxes
            .record_payment(authorized(pay("12845.00"), &t.officer))
            .await
            .unwrap_err();
        assert_eq!(status.code(), Code::InvalidArgument);
        assert!(
            status.get_details_bad_request().unwrap().field_violations[0]
                .description
                .contains("AMOUNT_NOT_THE_BILL")
        );
        let paid = taxes
            .record_payment(authorized(pay("12845.32"), &t.officer))
            .await
            .unwrap()
            .into_inner();
        assert_eq!(paid.state(), field_pb::TaxBillState::Paid);
        // The bill as the enterprise reads it later: the same, paid.
        let read = taxes
            .get_tax_bill(authorized(
                field_pb::GetTaxBillRequest {
                    declaration_number: number.clone(),
                },
                &t.broker,
            ))
            .await
            .unwrap()
            .into_inner();
        assert_eq!(read, paid);
        assert!(read.paid_at.is_some());
        story::reach(channel, &t.officer, &number, DeclarationStage::Released).await;
        let release = release(channel, &t.gate, &number).await.unwrap();
        assert_eq!(
            (release.container_numbers.clone(), release.exited),
            (vec![CONTAINER.to_owned()], false)
        );

        // A gate of a port nobody configured is a caller's mistake, not a hold.
        let status = Gates::new(channel.clone())
            .check_gate(authorized(
                field_pb::CheckGateRequest {
                    gate_id: "X".into(),
                    port_code: "9999".into(),
                    declaration_numbers: vec![number.clone()],
                    request_id: "unknown-port".into(),
                    ..Default::default()
                },
                &t.gate,
            ))
            .await
            .unwrap_err();
        assert_eq!(status.code(), Code::InvalidArgument);
        // A container not on the manifest holds the truck; then it passes, once.
        let wrong = gate(channel, &t.gate, "wrong-box", &["TGHU0000008"], &[&number]).await;
        assert_eq!(
            hold_reasons(&wrong),
            [field_pb::HoldReason::ContainerNotOnManifest]
        );
        let passed = gate(channel, &t.gate, "exit-1", &[CONTAINER], &[&number]).await;
        assert_eq!(passed.verdict(), field_pb::GateVerdict::Pass, "{passed:?}");
        let retry = gate(channel, &t.gate, "exit-1", &[CONTAINER], &[&number]).await;
        assert_eq!(retry, passed, "a retry gets the first answer");
        let second = gate(channel, &t.gate, "exit-2", &[CONTAINER], &[&number]).await;
        assert_eq!(hold_reasons(&second), [field_pb::HoldReason::AlreadyExited]);
        story::reach(channel, &t.officer, &number, DeclarationStage::Exited).await;
        let hotline = app.token(Role::Hotline, "5300", None);
        let status = story::status(channel, &hotline, &number).await;
        let stages: Vec<_> = status.timeline.iter().map(|e| e.stage()).collect();
        assert!(
            stages.ends_with(&[
                DeclarationStage::TaxSecured,
                DeclarationStage::Released,
                DeclarationStage::Exited
            ]),
            "{backend:?}: {stages:?}"
        );
    }
}

#[tokio::test]
async fn summary_payment_secures_duties_against_the_guarantee_and_payment_gives_them_back() {
    let app = TestApp::spawn(Backend::Production).await.unwrap();
    let (channel, t) = (&app.channel, tokens(&app));
    story::parties(channel, &t.officer, "BL-FIELD-2")
        .await
        .unwrap();
    let guarantee = Guarantees::new(channel.clone())
        .register_guarantee(authorized(
            field_pb::RegisterGuaranteeRequest {
                request_id: "guarantee-field-2".into(),
                bank: "Bank of China Guangdong Branch".into(),
                holder: TRADER.into(),
                amount: cny("100000.00"),
                valid_from: Some(Date {
                    year: 2020,
                    month: 1,
                    day: 1,
                }),
                valid_until: Some(Date {
                    year: 2099,
                    month: 12,
                    day: 31,
                }),
            },
            &t.officer,
        ))
        .await
        .unwrap()
        .into_inner();
    let number = story::submit(
        channel,
        &t.broker,
        "field-2",
        story::declaration("BL-FIELD-2", 2),
    )
    .await
    .declaration_number;
    story::reach(channel, &t.officer, &number, DeclarationStage::LaneDecided).await;
    let wrong_code = assess(
        channel,
        &t.broker,
        &number,
        field_pb::PaymentMethod::Summary,
        Some((&guarantee.reference, "WRONG000")),
    )
    .await
    .unwrap_err();
    assert_eq!(reason(&wrong_code), "GUARANTEE_WRONG_ACCESS_CODE");
    let bill = assess(
        channel,
        &t.broker,
        &number,
        field_pb::PaymentMethod::Summary,
        Some((&guarantee.reference, &guarantee.access_code)),
    )
    .await
    .unwrap();
    assert_eq!(
        (bill.state(), bill.guarantee_reference.as_str()),
        (
            field_pb::TaxBillState::Secured,
            guarantee.reference.as_str()
        )
    );
    assert!(bill.due_date.is_some());
    let balance = || {
        let mut guarantees = Guarantees::new(channel.clone());
        let request = authorized(
            field_pb::GetGuaranteeRequest {
                reference: guarantee.reference.clone(),
            },
            &t.officer,
        );
        async move {
            guarantees
                .get_guarantee(request)
                .await
                .unwrap()
                .into_inner()
                .available
                .unwrap()
                .amount
        }
    };
    assert_eq!(balance().await, "87154.68");
    // Released on the reservation, before payment.
    story::reach(channel, &t.officer, &number, DeclarationStage::Released).await;
    let payment = field_pb::RecordPaymentRequest {
        request_id: "pay-2".into(),
        declaration_number: number.clone(),
        amount: cny("12845.32"),
        payment_reference: "BOC-20261205-0002".into(),
    };
    Taxes::new(channel.clone())
        .record_payment(authorized(payment.clone(), &t.officer))
        .await
        .unwrap();
    assert_eq!(balance().await, "100000.00");
    // The same payment retried changes nothing.
    let again = Taxes::new(channel.clone())
        .record_payment(authorized(payment, &t.officer))
        .await
        .unwrap()
        .into_inner();
    assert_eq!(again.state(), field_pb::TaxBillState::Paid);
    assert_eq!(balance().await, "100000.00");
}

async fn set_credit_class(channel: &Channel, officer: &str, class: CreditClass) {
    EnterpriseServiceClient::new(channel.clone())
        .update_credit_class(authorized(
            pb::UpdateCreditClassRequest {
                code: TRADER.into(),
                credit_class: class as i32,
                effective_from: Some(customs_common::day::today().into()),
                reason: "periodic credit assessment".into(),
                ..Default::default()
            },
            officer,
        ))
        .await
        .unwrap();
}

fn geo(latitude: f64, longitude: f64) -> field_pb::GeoPoint {
    field_pb::GeoPoint {
        latitude,
        longitude,
    }
}

/// Yantian to the Pinghu inland site.
fn route() -> Vec<field_pb::GeoPoint> {
    vec![
        geo(22.5760, 114.2690),
        geo(22.6300, 114.1900),
        geo(22.6880, 114.1290),
    ]
}

/// RED: reviewed at Shenzhen, inspection ordered; the credit class decides inland
/// inspection; the tracker's reports raise holds the gate then honours.
#[tokio::test]
async fn a_red_declaration_is_inspected_inland_under_its_credit_class_policy_and_holds_stop_it_at_the_gate()
 {
    for backend in BACKENDS {
        let app = TestApp::spawn(backend).await.unwrap();
        let (channel, t) = (&app.channel, tokens(&app));
        story::parties(channel, &t.officer, "BL-FIELD-3")
            .await
            .unwrap();
        story::instruct(channel, &t.officer, "beef-red", "0202", Lane::Red).await;
        let number = story::submit(
            channel,
            &t.broker,
            "field-3",
            story::declaration("BL-FIELD-3", 2),
        )
        .await
        .declaration_number;
        story::reach(channel, &t.officer, &number, DeclarationStage::UnderReview).await;
        // Duties wait for the review.
        let status = assess(
            channel,
            &t.broker,
            &number,
            field_pb::PaymentMethod::Immediate,
            None,
        )
        .await
        .unwrap_err();
        assert_eq!(reason(&status), "NOT_READY_FOR_DUTIES");
        let mut reviews = Reviews::new(channel.clone());
        let task = reviews
            .claim_task(authorized(
                review_pb::ClaimTaskRequest::default(),
                &t.reviewer,
            ))
            .await
            .unwrap()
            .into_inner();
        reviews
            .conclude_task(authorized(
                review_pb::ConcludeTaskRequest {
                    task_id: task.task_id,
                    remarks: "documents in order".into(),
                },
                &t.reviewer,
            ))
            .await
            .unwrap();
        story::reach(channel, &t.officer, &number, DeclarationStage::Inspection).await;

        let mut inspections = Inspections::new(channel.clone());
        let choose = |kind: field_pb::InspectionSiteKind, site: &str, lock: &str, tracker: &str| {
            field_pb::ChooseInspectionSiteRequest {
                declaration_number: number.clone(),
                site_kind: kind as i32,
                site_code: site.into(),
                route: route(),
                vehicle_plate: "粤B12345".into(),
                lock_id: lock.into(),
                tracker_id: tracker.into(),
            }
        };
        // Discredited: inland refused.
        set_credit_class(channel, &t.officer, CreditClass::Discredited).await;
        let status = inspections
            .choose_inspection_site(authorized(
                choose(
                    field_pb::InspectionSiteKind::Inland,
                    "5349",
                    "LOCK-1",
                    "GPS-1",
                ),
                &t.broker,
            ))
            .await
            .unwrap_err();
        assert_eq!(
            (status.code(), reason(&status).as_str()),
            (Code::FailedPrecondition, "INLAND_INSPECTION_REFUSED")
        );
        // General credit: a smart lock and tracking.
        set_credit_class(channel, &t.officer, CreditClass::GeneralCredit).await;
        let status = inspections
            .choose_inspection_site(authorized(
                choose(field_pb::InspectionSiteKind::Inland, "5349", "", "GPS-1"),
                &t.broker,
            ))
            .await
            .unwrap_err();
        assert!(
            status.get_details_bad_request().unwrap().field_violations[0]
                .description
                .contains("SMART_LOCK_REQUIRED")
        );
        // Not at another house's site.
        let status = inspections
            .choose_inspection_site(authorized(
                choose(
                    field_pb::InspectionSiteKind::Inland,
                    "5149",
                    "LOCK-1",
                    "GPS-1",
                ),
                &t.broker,
            ))
            .await
            .unwrap_err();
        assert!(
            status.get_details_bad_request().unwrap().field_violations[0]
                .description
                .contains("NOT_AT_HOME_HOUSE")
        );
        // Advanced certified: tracking only.
        set_credit_class(channel, &t.officer, CreditClass::AdvancedCertified).await;
        let chosen = inspections
            .choose_inspection_site(authorized(
                choose(field_pb::InspectionSiteKind::Inland, "5349", "", "GPS-1"),
                &t.broker,
            ))
            .await
            .unwrap()
            .into_inner();
        assert_eq!(chosen.state(), field_pb::InspectionState::InTransit);
        assert_eq!(
            chosen.monitoring,
            Some(field_pb::MonitoringRequirement {
                smart_lock: false,
                vehicle_tracking: true
            })
        );

        // The tracker reports: on the route, then 30 km off it; each event stamped by
        // the device's clock, a second apart.
        let started = time::OffsetDateTime::now_utc().unix_timestamp();
        let sent = std::sync::atomic::AtomicI64::new(0);
        let event = |kind: field_pb::TransportEventKind,
                     position: Option<field_pb::GeoPoint>,
                     at_site: &str| field_pb::TransportEvent {
            device_id: "GPS-1".into(),
            declaration_number: number.clone(),
            kind: kind as i32,
            position,
            occurred_at: Some(prost_types::Timestamp {
                seconds: started + sent.fetch_add(1, std::sync::atomic::Ordering::Relaxed),
                nanos: 0,
            }),
            at_site: at_site.into(),
        };
        let events = vec![
            event(
                field_pb::TransportEventKind::Position,
                Some(geo(22.6030, 114.2300)),
                "",
            ),
            event(
                field_pb::TransportEventKind::Position,
                Some(geo(22.8200, 113.9000)),
                "",
            ),
            event(
                field_pb::TransportEventKind::Position,
                Some(geo(22.8300, 113.8900)),
                "",
            ),
            event(field_pb::TransportEventKind::SealBroken, None, ""),
            event(field_pb::TransportEventKind::LockOpened, None, ""),
        ];
        let reported = Transport::new(channel.clone())
            .report_transport_events(authorized(tokio_stream::iter(events.clone()), &t.officer))
            .await
            .unwrap()
            .into_inner();
        assert_eq!(reported.events_accepted, 5);
        let raised: Vec<_> = reported.holds_raised.iter().map(|h| h.reason()).collect();
        assert_eq!(
            raised,
            [
                field_pb::HoldReason::RouteDeviation,
                field_pb::HoldReason::SealBroken,
                field_pb::HoldReason::LockOpenedOutsideSite
            ],
            "one hold per reason"
        );
        let stranger_device = Transport::new(channel.clone())
            .report_transport_events(authorized(
                tokio_stream::iter(vec![field_pb::TransportEvent {
                    device_id: "GPS-9".into(),
                    ..event(field_pb::TransportEventKind::SealIntact, None, "")
                }]),
                &t.officer,
            ))
            .await
            .unwrap_err();
        assert_eq!(reason(&stranger_device), "DEVICE_NOT_MONITORING");
        let read_track = async || {
            Transport::new(channel.clone())
                .get_track(authorized(
                    field_pb::GetTrackRequest {
                        declaration_number: number.clone(),
                    },
                    &t.officer,
                ))
                .await
                .unwrap()
                .into_inner()
        };
        let track = read_track().await;
        assert_eq!((track.events.len(), track.holds.len()), (5, 3));

        // Inspected without discrepancy, duties paid: released, but the holds stop it.
        let inspected = inspections
            .record_inspection_result(authorized(
                field_pb::RecordInspectionResultRequest {
                    declaration_number: number.clone(),
                    discrepancy: false,
                    details: "as declared".into(),
                },
                &t.officer,
            ))
            .await
            .unwrap()
            .into_inner();
        let read = inspections
            .get_inspection(authorized(
                field_pb::GetInspectionRequest {
                    declaration_number: number.clone(),
                },
                &t.broker,
            ))
            .await
            .unwrap()
            .into_inner();
        assert_eq!(read, inspected);
        assert_eq!(
            (read.state(), read.discrepancy, read.result_details.as_str()),
            (field_pb::InspectionState::Completed, false, "as declared")
        );
        assert!(read.completed_at.is_some());
        pay_in_full(channel, &t, &number, "BOC-3").await;
        story::reach(channel, &t.officer, &number, DeclarationStage::Released).await;
        let held = gate(channel, &t.gate, "held-3", &[CONTAINER], &[&number]).await;
        assert_eq!(held.verdict(), field_pb::GateVerdict::Hold);
        assert_eq!(
            hold_reasons(&held),
            [
                field_pb::HoldReason::SealBroken,
                field_pb::HoldReason::OpenHold,
                field_pb::HoldReason::OpenHold
            ],
            "{backend:?}"
        );
        // An officer deals with each hold and lifts it; then the goods pass.
        let mut transport = Transport::new(channel.clone());
        let status = transport
            .lift_hold(authorized(
                field_pb::LiftHoldRequest {
                    hold_id: track.holds[0].hold_id.clone(),
                    reason: "x".into(),
                },
                &t.broker,
            ))
            .await
            .unwrap_err();
        assert_eq!(status.code(), Code::PermissionDenied);
        for hold in &track.holds {
            let lifted = transport
                .lift_hold(authorized(
                    field_pb::LiftHoldRequest {
                        hold_id: hold.hold_id.clone(),
                        reason: "resealed and escorted".into(),
                    },
                    &t.officer,
                ))
                .await
                .unwrap()
                .into_inner();
            assert!(!lifted.open && lifted.lifted_by == "officer@5300");
        }
        // The tracker, unsure what arrived, sends it all again: taken, recorded once,
        // and the lifted holds stay lifted.
        let resent = Transport::new(channel.clone())
            .report_transport_events(authorized(tokio_stream::iter(events), &t.officer))
            .await
            .unwrap()
            .into_inner();
        assert_eq!((resent.events_accepted, resent.holds_raised.len()), (5, 0));
        let track = read_track().await;
        assert_eq!(
            (
                track.events.len(),
                track.holds.iter().filter(|h| h.open).count()
            ),
            (5, 0),
            "{backend:?}"
        );
        let passed = gate(channel, &t.gate, "after-lift-3", &[CONTAINER], &[&number]).await;
        assert_eq!(passed.verdict(), field_pb::GateVerdict::Pass, "{passed:?}");
    }
}

/// Immediate control sends goods to inspection from review; a discrepancy sends them
/// back to review.
#[tokio::test]
async fn an_inspection_discrepancy_goes_back_to_review() {
    let app = TestApp::spawn(Backend::Embedded).await.unwrap();
    let (channel, t) = (&app.channel, tokens(&app));
    story::parties(channel, &t.officer, "BL-FIELD-4")
        .await
        .unwrap();
    story::instruct(
        channel,
        &t.officer,
        "computers-yellow",
        "8471",
        Lane::Yellow,
    )
    .await;
    let number = story::submit(
        channel,
        &t.broker,
        "field-4",
        story::declaration("BL-FIELD-4", 1),
    )
    .await
    .declaration_number;
    story::reach(channel, &t.officer, &number, DeclarationStage::UnderReview).await;
    let mut reviews = Reviews::new(channel.clone());
    let task = reviews
        .claim_task(authorized(
            review_pb::ClaimTaskRequest::default(),
            &t.reviewer,
        ))
        .await
        .unwrap()
        .into_inner();
    reviews
        .order_immediate_control(authorized(
            review_pb::OrderImmediateControlRequest {
                task_id: task.task_id.clone(),
                reason: "weight does not match the manifest".into(),
            },
            &t.reviewer,
        ))
        .await
        .unwrap();
    story::reach(channel, &t.officer, &number, DeclarationStage::Inspection).await;
    let mut inspections = Inspections::new(channel.clone());
    let status = inspections
        .record_inspection_result(authorized(
            field_pb::RecordInspectionResultRequest {
                declaration_number: number.clone(),
                discrepancy: false,
                details: String::new(),
            },
            &t.officer,
        ))
        .await
        .unwrap_err();
    assert_eq!(
        reason(&status),
        "INSPECTION_NOT_UNDER_WAY",
        "no site chosen yet"
    );
    inspections
        .choose_inspection_site(authorized(
            field_pb::ChooseInspectionSiteRequest {
                declaration_number: number.clone(),
                site_kind: field_pb::InspectionSiteKind::Port as i32,
                ..Default::default()
            },
            &t.broker,
        ))
        .await
        .unwrap();
    let done = inspections
        .record_inspection_result(authorized(
            field_pb::RecordInspectionResultRequest {
                declaration_number: number.clone(),
                discrepancy: true,
                details: "12 units more than declared".into(),
            },
            &t.officer,
        ))
        .await
        .unwrap()
        .into_inner();
    assert!(done.discrepancy);
    story::reach(channel, &t.officer, &number, DeclarationStage::UnderReview).await;
    let mut again = None;
    for _ in 0..100 {
        if let Ok(task) = reviews
            .claim_task(authorized(
                review_pb::ClaimTaskRequest::default(),
                &t.reviewer,
            ))
            .await
        {
            again = Some(task.into_inner());
            break;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    let again = again.expect("the declaration is back in Shenzhen's queue");
    assert_eq!(
        (again.declaration_number.as_str(), again.lane()),
        (number.as_str(), Lane::Red)
    );
}

/// Two gates asking at once about the same goods: exactly one lets them out.
#[tokio::test]
async fn two_gates_racing_on_the_same_container_let_it_out_once() {
    for backend in BACKENDS {
        let app = TestApp::spawn(backend).await.unwrap();
        let (channel, t) = (&app.channel, tokens(&app));
        story::parties(channel, &t.officer, "BL-FIELD-5")
            .await
            .unwrap();
        let mut numbers = Vec::new();
        for n in 0..5 {
            let number = story::submit(
                channel,
                &t.broker,
                &format!("field-5-{n}"),
                story::declaration("BL-FIELD-5", 1),
            )
            .await
            .declaration_number;
            numbers.push(number);
        }
        for number in &numbers {
            story::reach(channel, &t.officer, number, DeclarationStage::LaneDecided).await;
            // One item of computers: no duty, VAT 4,615.00, paid.
            pay_in_full(channel, &t, number, "BOC-5").await;
            story::reach(channel, &t.officer, number, DeclarationStage::Released).await;
        }
        for number in &numbers {
            let mut racers = Vec::new();
            for gate_no in 0..4 {
                let (channel, token, number) = (channel.clone(), t.gate.clone(), number.clone());
                racers.push(tokio::spawn(async move {
                    gate(
                        &channel,
                        &token,
                        &format!("race-{number}-{gate_no}"),
                        &[CONTAINER],
                        &[&number],
                    )
                    .await
                }));
            }
            let mut verdicts = Vec::new();
            for racer in racers {
                verdicts.push(racer.await.unwrap());
            }
            let passed = verdicts
                .iter()
                .filter(|d| d.verdict() == field_pb::GateVerdict::Pass)
                .count();
            assert_eq!(passed, 1, "{backend:?}: {verdicts:?}");
            assert!(
                verdicts
                    .iter()
                    .filter(|d| d.verdict() == field_pb::GateVerdict::Hold)
                    .all(|d| hold_reasons(d) == [field_pb::HoldReason::AlreadyExited])
            );
        }
    }
}

/// Two trucks for one declaration of two containers: each takes its container out,
/// neither can take one twice, and the declaration leaves with the last.
#[tokio::test]
async fn a_declaration_leaves_one_truck_at_a_time_with_its_last_container() {
    const SECOND: &str = "CSQU3054383";
    for backend in BACKENDS {
        let app = TestApp::spawn(backend).await.unwrap();
        let (channel, t) = (&app.channel, tokens(&app));
        story::parties(channel, &t.officer, "BL-FIELD-6")
            .await
            .unwrap();
        story::manifest_with(channel, &t.officer, "BL-FIELD-7", &[CONTAINER, SECOND])
            .await
            .unwrap();
        let mut content = story::declaration("BL-FIELD-7", 1);
        content.container_numbers = vec![CONTAINER.into(), SECOND.into()];
        let number = story::submit(channel, &t.broker, "field-7", content)
            .await
            .declaration_number;
        story::reach(channel, &t.officer, &number, DeclarationStage::LaneDecided).await;
        pay_in_full(channel, &t, &number, "BOC-7").await;
        story::reach(channel, &t.officer, &number, DeclarationStage::Released).await;
        let release = || {
            let mut gates = Gates::new(channel.clone());
            let request = authorized(
                field_pb::GetReleaseRequest {
                    declaration_number: number.clone(),
                },
                &t.gate,
            );
            async move { gates.get_release(request).await.unwrap().into_inner() }
        };

        // A check must say which vehicle it presents: its exit is recorded with it.
        let no_plate = Gates::new(channel.clone())
            .check_gate(authorized(
                field_pb::CheckGateRequest {
                    gate_id: "YT-1".into(),
                    port_code: PORT.into(),
                    vehicle_plate: " ".into(),
                    container_numbers: vec![CONTAINER.into()],
                    declaration_numbers: vec![number.clone()],
                    request_id: "truck-0".into(),
                },
                &t.gate,
            ))
            .await
            .unwrap_err();
        assert_eq!(
            refused_on(&no_plate),
            (Code::InvalidArgument, "vehicle_plate".to_owned())
        );
        // The gate's readers saw the first truck's container twice: one container.
        let first = gate(
            channel,
            &t.gate,
            "truck-1",
            &[CONTAINER, CONTAINER],
            &[&number],
        )
        .await;
        assert_eq!(
            first.verdict(),
            field_pb::GateVerdict::Pass,
            "{backend:?}: {first:?}"
        );
        let after_first = release().await;
        assert_eq!(
            (after_first.exited, after_first.exited_container_numbers),
            (false, vec![CONTAINER.to_owned()]),
            "one container out, the declaration not yet"
        );
        let again = gate(channel, &t.gate, "truck-1-again", &[CONTAINER], &[&number]).await;
        assert_eq!(
            (
                again.verdict(),
                hold_reasons(&again),
                again.reasons[0].container_number.as_str()
            ),
            (
                field_pb::GateVerdict::Hold,
                vec![field_pb::HoldReason::AlreadyExited],
                CONTAINER
            )
        );

        let second = gate(channel, &t.gate, "truck-2", &[SECOND], &[&number]).await;
        assert_eq!(second.verdict(), field_pb::GateVerdict::Pass);
        let after_second = release().await;
        assert!(after_second.exited);
        assert_eq!(
            (
                after_second.exit_gate.as_str(),
                after_second.exit_vehicle_plate.as_str()
            ),
            ("YT-truck-2", "粤B12345"),
            "the gate and the vehicle of the last container's exit"
        );
        assert_eq!(
            after_second.exited_container_numbers,
            [SECOND, CONTAINER],
            "in container-number order"
        );
        story::reach(channel, &t.officer, &number, DeclarationStage::Exited).await;
        let nothing_left = gate(channel, &t.gate, "truck-3", &[], &[&number]).await;
        assert_eq!(
            hold_reasons(&nothing_left),
            [field_pb::HoldReason::AlreadyExited]
        );
    }
}

/// Released declarations are drawn for re-review at Shantou, Zhanjiang and Jiangmen;
/// a finding with extra duty reaches the quality report.
#[tokio::test]
async fn released_declarations_are_drawn_for_post_clearance_re_review_and_findings_are_reported() {
    let started = time::OffsetDateTime::now_utc();
    let app = TestApp::spawn_configured(Backend::Embedded, |settings| {
        settings.review.post_review_share = rust_decimal::Decimal::ONE;
    })
    .await
    .unwrap();
    let (channel, t) = (&app.channel, tokens(&app));
    story::parties(channel, &t.officer, "BL-FIELD-6")
        .await
        .unwrap();
    let mut numbers = Vec::new();
    for n in 0..6 {
        let number = story::submit(
            channel,
            &t.broker,
            &format!("field-6-{n}"),
            story::declaration("BL-FIELD-6", 1),
        )
        .await
        .declaration_number;
        story::reach(channel, &t.officer, &number, DeclarationStage::LaneDecided).await;
        pay_in_full(channel, &t, &number, "BOC-6").await;
        story::reach(channel, &t.officer, &number, DeclarationStage::Released).await;
        numbers.push(number);
    }
    // Shenzhen may not draw Shantou's batch.
    let status = PostReview::new(channel.clone())
        .draw_batch(authorized(
            review_pb::DrawBatchRequest {
                house_code: "6000".into(),
                ..Default::default()
            },
            &t.officer,
        ))
        .await
        .unwrap_err();
    assert_eq!(status.code(), Code::PermissionDenied);
    // A period that ends before it starts is refused, not answered "nothing to draw".
    let now = time::OffsetDateTime::now_utc().unix_timestamp();
    let status = PostReview::new(channel.clone())
        .draw_batch(authorized(
            review_pb::DrawBatchRequest {
                house_code: "6000".into(),
                released_after: Some(prost_types::Timestamp {
                    seconds: now,
                    nanos: 0,
                }),
                released_before: Some(prost_types::Timestamp {
                    seconds: now - 86_400,
                    nanos: 0,
                }),
                ..Default::default()
            },
            &app.token(Role::Officer, "6000", None),
        ))
        .await
        .unwrap_err();
    assert_eq!(
        refused_on(&status),
        (Code::InvalidArgument, "released_before".to_owned())
    );
    let mut drawn = Vec::new();
    let mut a_batch = None;
    for house in ["6000", "6700", "6800"] {
        let officer = app.token(Role::Officer, house, None);
        match PostReview::new(channel.clone())
            .draw_batch(authorized(
                review_pb::DrawBatchRequest {
                    house_code: house.into(),
                    max_size: 50,
                    ..Default::default()
                },
                &officer,
            ))
            .await
        {
            Ok(batch) => {
                let batch = batch.into_inner();
                drawn.extend(batch.declaration_numbers.clone());
                a_batch = Some((officer, batch));
            }
            Err(status) => assert_eq!(reason(&status), "NOTHING_TO_DRAW"),
        }
        // Nothing is drawn twice.
        let again = PostReview::new(channel.clone())
            .draw_batch(authorized(
                review_pb::DrawBatchRequest {
                    house_code: house.into(),
                    ..Default::default()
                },
                &app.token(Role::Officer, house, None),
            ))
            .await
            .unwrap_err();
        assert_eq!(reason(&again), "NOTHING_TO_DRAW");
    }
    drawn.sort();
    assert_eq!(
        drawn, numbers,
        "with a share of 1 every release is drawn, each once"
    );
    let (officer, batch) = a_batch.unwrap();
    let finding = PostReview::new(channel.clone())
        .record_finding(authorized(
            review_pb::RecordFindingRequest {
                request_id: "finding-1".into(),
                finding: Some(review_pb::Finding {
                    batch_id: batch.batch_id.clone(),
                    declaration_number: batch.declaration_numbers[0].clone(),
                    kind: review_pb::FindingKind::Valuation as i32,
                    description: "transfer pricing: royalties not added".into(),
                    extra_duty: cny("1250.50"),
                    ..Default::default()
                }),
            },
            &officer,
        ))
        .await
        .unwrap()
        .into_inner();
    assert_eq!(finding.extra_duty.unwrap().amount, "1250.50");
    let report = PostReview::new(channel.clone())
        .get_quality_report(authorized(
            review_pb::GetQualityReportRequest {
                period_start: Some(customs_proto::convert::timestamp(started)),
                period_end: Some(customs_proto::convert::timestamp(
                    time::OffsetDateTime::now_utc() + time::Duration::minutes(1),
                )),
            },
            &t.officer,
        ))
        .await
        .unwrap()
        .into_inner();
    // Computers route to Shenzhen.
    let shenzhen = report
        .sub_centres
        .iter()
        .find(|s| s.sub_centre == "5300")
        .unwrap();
    assert_eq!(
        (
            shenzhen.findings_rate.as_str(),
            shenzhen.extra_duty.clone().unwrap().amount.as_str()
        ),
        ("1", "1250.50")
    );
    assert_eq!(report.total_extra_duty.unwrap().amount, "1250.50");
}

/// A TRANSIT declaration 转关 (DOMAIN.md 3): paid, but not released until its transit
/// is declared, reviewed and sealed at the departure house, unsealed at the destination
/// and written off; each step in its order and at its house. Then it leaves through
/// the gate. A second transit unsealed with a seal missing is held at the gate.
#[tokio::test]
async fn a_transit_declaration_is_released_once_its_transit_is_written_off() {
    for backend in BACKENDS {
        let app = TestApp::spawn(backend).await.unwrap();
        let (channel, t) = (&app.channel, tokens(&app));
        let destination = app.token(Role::Officer, "5100", None);
        story::parties(channel, &t.officer, "BL-TRANSIT-1")
            .await
            .unwrap();
        let transit = |bill: &str| {
            let mut content = story::declaration(bill, 1);
            content.clearance_mode = ClearanceMode::Transit as i32;
            content
        };
        let number = story::submit(channel, &t.broker, "transit-1", transit("BL-TRANSIT-1"))
            .await
            .declaration_number;
        story::reach(channel, &t.officer, &number, DeclarationStage::LaneDecided).await;
        let transits = Transits::new(channel.clone());
        // Every call a request of its own (a repeated id gets the first answer).
        let ids = std::sync::atomic::AtomicUsize::new(0);
        let fresh_id = || {
            format!(
                "transit-1-{}",
                ids.fetch_add(1, std::sync::atomic::Ordering::Relaxed)
            )
        };
        let declare = |token: &str, inland: &str| {
            let mut transits = transits.clone();
            let request = authorized(
                field_pb::DeclareTransitRequest {
                    declaration_number: number.clone(),
                    inland_house_code: inland.into(),
                    vehicle_plate: "粤A54321".into(),
                    request_id: fresh_id(),
                },
                token,
            );
            async move {
                transits
                    .declare_transit(request)
                    .await
                    .map(tonic::Response::into_inner)
            }
        };
        let step = |token: &str, kind: &str, seals: &[&str], approve: bool, reason: &str| {
            let mut transits = transits.clone();
            let (number, seals) = (
                number.clone(),
                seals.iter().map(|s| s.to_string()).collect::<Vec<_>>(),
            );
            let (token, kind, reason) = (token.to_owned(), kind.to_owned(), reason.to_owned());
            let request_id = fresh_id();
            async move {
                let declaration_number = number;
                match kind.as_str() {
                    "review" => {
                        transits
                            .review_transit(authorized(
                                field_pb::ReviewTransitRequest {
                                    declaration_number,
                                    approve,
                                    reason,
                                    request_id,
                                },
                                &token,
                            ))
                            .await
                    }
                    "seal" => {
                        transits
                            .seal_transit(authorized(
                                field_pb::SealTransitRequest {
                                    declaration_number,
                                    seal_numbers: seals,
                                    request_id,
                                    ..Default::default()
                                },
                                &token,
                            ))
                            .await
                    }
                    "unseal" => {
                        transits
                            .unseal_transit(authorized(
                                field_pb::UnsealTransitRequest {
                                    declaration_number,
                                    intact_seal_numbers: seals,
                                    request_id,
                                },
                                &token,
                            ))
                            .await
                    }
                    _ => {
                        transits
                            .write_off_transit(authorized(
                                field_pb::WriteOffTransitRequest {
                                    declaration_number,
                                    request_id,
                                },
                                &token,
                            ))
                            .await
                    }
                }
                .map(tonic::Response::into_inner)
            }
        };
        let refused = |result: Result<field_pb::Transit, tonic::Status>| {
            let status = result.unwrap_err();
            (status.code(), reason(&status))
        };

        // Paid, but a TRANSIT declaration is not released before its transit.
        pay_in_full(channel, &t, &number, "PAY-TRANSIT-1").await;
        story::reach(channel, &t.officer, &number, DeclarationStage::TaxSecured).await;
        let release = release(channel, &t.gate, &number).await.unwrap_err();
        assert_eq!(release.code(), Code::NotFound);
        let unreleased = gate(channel, &t.gate, "transit-early", &[CONTAINER], &[&number]).await;
        assert_eq!(hold_reasons(&unreleased), [field_pb::HoldReason::NoRelease]);

        let read = |token: &str| {
            let mut transits = transits.clone();
            let request = authorized(
                field_pb::GetTransitRequest {
                    declaration_number: number.clone(),
                },
                token,
            );
            async move {
                transits
                    .get_transit(request)
                    .await
                    .map(tonic::Response::into_inner)
            }
        };
        assert_eq!(
            refused(read(&t.broker).await),
            (Code::NotFound, "TRANSIT_NOT_FOUND".into())
        );

        // Declaring: the declarant only, for another house than the port's.
        let stranger = app.token(Role::Broker, "5300", Some("4403980099"));
        assert_eq!(refused(declare(&stranger, "5100").await).0, Code::NotFound);
        let status = declare(&t.broker, "5316").await.unwrap_err();
        assert_eq!(status.code(), Code::InvalidArgument);
        assert_eq!(
            status.get_details_bad_request().unwrap().field_violations[0].description,
            "the port is under 5300 already: a transit goes between two houses (SAME_HOUSE)"
        );
        let declared = declare(&t.broker, "5101").await.unwrap();
        assert_eq!(declared.state(), field_pb::TransitState::Declared);
        assert_eq!(
            (
                declared.departure_house_code.as_str(),
                declared.destination_house_code.as_str()
            ),
            ("5300", "5100"),
            "an import travels from its port's house inland"
        );
        assert_eq!(
            refused(declare(&t.broker, "5100").await),
            (Code::FailedPrecondition, "TRANSIT_ALREADY_DECLARED".into())
        );
        assert_eq!(read(&t.broker).await.unwrap(), declared);
        assert_eq!(
            refused(read(&stranger).await),
            (Code::NotFound, "TRANSIT_NOT_FOUND".into()),
            "another enterprise's transit is not found"
        );

        // Each step in its order, at its house.
        let unnamed = transits
            .clone()
            .write_off_transit(authorized(
                field_pb::WriteOffTransitRequest {
                    declaration_number: number.clone(),
                    request_id: " ".into(),
                },
                &t.officer,
            ))
            .await
            .unwrap_err();
        assert_eq!(
            unnamed.get_details_bad_request().unwrap().field_violations[0].field,
            "request_id"
        );
        let out_of_order = (Code::FailedPrecondition, "TRANSIT_STEP_OUT_OF_ORDER".into());
        assert_eq!(
            refused(step(&t.officer, "seal", &["GD000001"], false, "").await),
            out_of_order
        );
        let wrong_house = (Code::PermissionDenied, "NOT_THE_TRANSIT_HOUSE".into());
        assert_eq!(
            refused(step(&destination, "review", &[], true, "").await),
            wrong_house
        );
        assert_eq!(
            refused(step(&t.officer, "review", &[], false, " ").await).0,
            Code::InvalidArgument,
            "a refusal says why"
        );
        let again = step(
            &t.officer,
            "review",
            &[],
            false,
            "vehicle not approved for customs transport",
        )
        .await
        .unwrap();
        assert_eq!(again.state(), field_pb::TransitState::Refused);
        declare(&t.broker, "5100").await.unwrap();
        step(&t.officer, "review", &[], true, "").await.unwrap();
        assert_eq!(
            refused(step(&t.officer, "seal", &[], false, "").await).0,
            Code::InvalidArgument,
            "sealing names its seals"
        );
        let sealed = step(&t.officer, "seal", &["gd000001", "GD000002"], false, "")
            .await
            .unwrap();
        assert_eq!(
            (sealed.state(), sealed.seal_numbers.clone()),
            (
                field_pb::TransitState::Sealed,
                vec!["GD000001".to_owned(), "GD000002".to_owned()]
            )
        );
        assert_eq!(
            refused(step(&t.officer, "unseal", &["GD000001", "GD000002"], false, "").await),
            wrong_house
        );
        assert_eq!(
            refused(step(&t.officer, "off", &[], false, "").await),
            out_of_order,
            "written off before it arrived"
        );
        let unsealed = step(&destination, "unseal", &["GD000002", "GD000001"], false, "")
            .await
            .unwrap();
        assert_eq!(unsealed.state(), field_pb::TransitState::Unsealed);
        assert_eq!(unsealed.steps.last().unwrap().note, "every seal intact");
        assert_eq!(
            refused(step(&destination, "off", &[], false, "").await),
            wrong_house
        );
        let written_off = step(&t.officer, "off", &[], false, "").await.unwrap();
        assert_eq!(written_off.state(), field_pb::TransitState::WrittenOff);
        let steps: Vec<(field_pb::TransitState, String)> = written_off
            .steps
            .iter()
            .map(|s| (s.state(), s.house_code.clone()))
            .collect();
        use field_pb::TransitState::*;
        assert_eq!(
            steps,
            [
                (Declared, "5300".into()),
                (Refused, "5300".into()),
                (Declared, "5300".into()),
                (Approved, "5300".into()),
                (Sealed, "5300".into()),
                (Unsealed, "5100".into()),
                (WrittenOff, "5300".into()),
            ]
        );

        // Written off: released, and out through the gate. Writing off again changes
        // nothing (it retries the release).
        let full = story::reach(channel, &t.officer, &number, DeclarationStage::Released).await;
        // The hotline follows the transit on the declaration's timeline: each step a
        // note at the stage it was at, before the release, with no refusal's reason.
        let hotline = app.token(Role::Hotline, "5300", None);
        let status = story::status(channel, &hotline, &number).await;
        let timeline: Vec<_> = status
            .timeline
            .iter()
            .map(|e| {
                (
                    e.stage(),
                    e.note(),
                    e.house_code.as_str(),
                    e.text_en.as_str(),
                )
            })
            .collect();
        use DeclarationStage::{Released as RELEASED, TaxSecured as TAX_SECURED};
        use TimelineNote as N;
        assert_eq!(
            timeline[timeline.len() - 8..],
            [
                (TAX_SECURED, N::TransitDeclared, "5300", "Transit declared"),
                (
                    TAX_SECURED,
                    N::TransitRefused,
                    "5300",
                    "Transit not approved; to be declared again"
                ),
                (TAX_SECURED, N::TransitDeclared, "5300", "Transit declared"),
                (TAX_SECURED, N::TransitApproved, "5300", "Transit approved"),
                (
                    TAX_SECURED,
                    N::TransitSealed,
                    "5300",
                    "Sealed by customs; in transit"
                ),
                (
                    TAX_SECURED,
                    N::TransitUnsealed,
                    "5100",
                    "Arrived and unsealed"
                ),
                (
                    TAX_SECURED,
                    N::TransitWrittenOff,
                    "5300",
                    "Transit written off"
                ),
                (RELEASED, N::Unspecified, "5300", "Released"),
            ]
        );
        assert_eq!(status.stage(), RELEASED);
        // Officers see who noted what, and why.
        let refusal = full
            .events
            .iter()
            .find(|e| e.note() == N::TransitRefused)
            .unwrap();
        assert_eq!(
            (
                refusal.from_stage(),
                refusal.to_stage(),
                refusal.reason.as_str()
            ),
            (
                TAX_SECURED,
                TAX_SECURED,
                "transit refused: vehicle not approved for customs transport"
            )
        );
        let again = step(&t.officer, "off", &[], false, "").await.unwrap();
        assert_eq!(again.steps.len(), 7);
        assert_eq!(
            refused(declare(&t.broker, "5100").await),
            (
                Code::FailedPrecondition,
                "DECLARATION_NOT_OPEN_FOR_TRANSIT".into()
            ),
            "released"
        );
        let passed = gate(channel, &t.gate, "transit-exit", &[CONTAINER], &[&number]).await;
        assert_eq!(passed.verdict(), field_pb::GateVerdict::Pass, "{passed:?}");

        // A second transit whose vehicle arrives with a seal missing: held at the gate.
        story::manifest(channel, &t.officer, "BL-TRANSIT-2")
            .await
            .unwrap();
        let second = story::submit(channel, &t.broker, "transit-2", transit("BL-TRANSIT-2"))
            .await
            .declaration_number;
        story::reach(channel, &t.officer, &second, DeclarationStage::LaneDecided).await;
        let mut client = transits.clone();
        client
            .declare_transit(authorized(
                field_pb::DeclareTransitRequest {
                    declaration_number: second.clone(),
                    inland_house_code: "5100".into(),
                    vehicle_plate: "粤A54322".into(),
                    request_id: "T2-DECLARE".into(),
                },
                &t.broker,
            ))
            .await
            .unwrap();
        client
            .review_transit(authorized(
                field_pb::ReviewTransitRequest {
                    declaration_number: second.clone(),
                    approve: true,
                    reason: String::new(),
                    request_id: "T2-REVIEW".into(),
                },
                &t.officer,
            ))
            .await
            .unwrap();
        let seal = field_pb::SealTransitRequest {
            declaration_number: second.clone(),
            seal_numbers: vec!["GD000011".into(), "GD000012".into()],
            lock_id: "LOCK-T2".into(),
            tracker_id: "GPS-T2".into(),
            request_id: "T2-SEAL".into(),
        };
        let sealed = client
            .seal_transit(authorized(seal.clone(), &t.officer))
            .await
            .unwrap()
            .into_inner();
        assert_eq!(
            (sealed.lock_id.as_str(), sealed.tracker_id.as_str()),
            ("LOCK-T2", "GPS-T2")
        );
        // Under seal, its lock and tracker report: the lock opened on the way is held.
        let report = |device: &str, kind: field_pb::TransportEventKind, seconds: i64| {
            let request = authorized(
                tokio_stream::iter(vec![field_pb::TransportEvent {
                    device_id: device.into(),
                    declaration_number: second.clone(),
                    kind: kind as i32,
                    position: (kind == field_pb::TransportEventKind::Position).then_some(
                        field_pb::GeoPoint {
                            latitude: 22.9,
                            longitude: 113.7,
                        },
                    ),
                    occurred_at: Some(prost_types::Timestamp { seconds, nanos: 0 }),
                    at_site: String::new(),
                }]),
                &t.officer,
            );
            let mut transport = Transport::new(channel.clone());
            async move {
                transport
                    .report_transport_events(request)
                    .await
                    .map(tonic::Response::into_inner)
            }
        };
        let moved = report(
            "GPS-T2",
            field_pb::TransportEventKind::Position,
            1_800_000_000,
        )
        .await
        .unwrap();
        assert_eq!((moved.events_accepted, moved.holds_raised.len()), (1, 0));
        let opened = report(
            "LOCK-T2",
            field_pb::TransportEventKind::LockOpened,
            1_800_000_060,
        )
        .await
        .unwrap();
        assert_eq!(
            opened
                .holds_raised
                .iter()
                .map(|h| h.reason())
                .collect::<Vec<_>>(),
            [field_pb::HoldReason::LockOpenedOutsideSite]
        );
        let stranger_device = report(
            "LOCK-T9",
            field_pb::TransportEventKind::SealIntact,
            1_800_000_070,
        )
        .await
        .unwrap_err();
        assert_eq!(reason(&stranger_device), "DEVICE_NOT_MONITORING");
        let broken = client
            .unseal_transit(authorized(
                field_pb::UnsealTransitRequest {
                    declaration_number: second.clone(),
                    intact_seal_numbers: vec!["GD000011".into()],
                    request_id: "T2-UNSEAL".into(),
                },
                &destination,
            ))
            .await
            .unwrap()
            .into_inner();
        assert_eq!(
            broken.steps.last().unwrap().note,
            "seal(s) GD000012 put on at departure not found intact"
        );
        // Unsealed: its devices no longer monitor it.
        let after = report(
            "LOCK-T2",
            field_pb::TransportEventKind::LockOpened,
            1_800_000_120,
        )
        .await
        .unwrap_err();
        assert_eq!(reason(&after), "DEVICE_NOT_MONITORING");
        // A sealing repeated with its request id gets its first answer, and moves nothing.
        let repeated = client
            .seal_transit(authorized(seal, &t.officer))
            .await
            .unwrap()
            .into_inner();
        assert_eq!(repeated, sealed);
        client
            .write_off_transit(authorized(
                field_pb::WriteOffTransitRequest {
                    declaration_number: second.clone(),
                    request_id: "T2-OFF".into(),
                },
                &t.officer,
            ))
            .await
            .unwrap();
        pay_in_full(channel, &t, &second, "PAY-TRANSIT-2").await;
        story::reach(channel, &t.officer, &second, DeclarationStage::Released).await;
        let held = gate(channel, &t.gate, "transit-broken", &[CONTAINER], &[&second]).await;
        assert_eq!(
            hold_reasons(&held),
            [
                field_pb::HoldReason::SealBroken,
                field_pb::HoldReason::OpenHold
            ],
            "{backend:?}"
        );

        // A third, cancelled at the declarant's request once its transit is declared:
        // the transit takes no further step.
        story::manifest(channel, &t.officer, "BL-TRANSIT-3")
            .await
            .unwrap();
        let third = story::submit(channel, &t.broker, "transit-3", transit("BL-TRANSIT-3"))
            .await
            .declaration_number;
        story::reach(channel, &t.officer, &third, DeclarationStage::LaneDecided).await;
        client
            .declare_transit(authorized(
                field_pb::DeclareTransitRequest {
                    declaration_number: third.clone(),
                    inland_house_code: "5100".into(),
                    vehicle_plate: "粤A54323".into(),
                    request_id: "T3-DECLARE".into(),
                },
                &t.broker,
            ))
            .await
            .unwrap();
        let cancellation =
            story::request_cancellation(channel, &t.broker, "T3-CANCEL", &third).await;
        let mut reviews = Reviews::new(channel.clone());
        let mut task = None;
        for _ in 0..100 {
            let claimed = reviews
                .claim_task(authorized(
                    review_pb::ClaimTaskRequest::default(),
                    &t.reviewer,
                ))
                .await;
            match claimed {
                Ok(claimed)
                    if claimed.get_ref().change_request_id == cancellation.change_request_id =>
                {
                    task = Some(claimed.into_inner());
                    break;
                }
                _ => tokio::time::sleep(Duration::from_millis(50)).await,
            }
        }
        let task = task.expect("the cancellation reaches a reviewer at 5300");
        story::approve_change(channel, &task.task_id, &t.reviewer)
            .await
            .unwrap();
        story::reach(channel, &t.officer, &third, DeclarationStage::Cancelled).await;
        let stopped = client
            .review_transit(authorized(
                field_pb::ReviewTransitRequest {
                    declaration_number: third.clone(),
                    approve: true,
                    reason: String::new(),
                    request_id: "T3-REVIEW".into(),
                },
                &t.officer,
            ))
            .await
            .unwrap_err();
        assert_eq!(
            (stopped.code(), reason(&stopped)),
            (
                Code::FailedPrecondition,
                "DECLARATION_NOT_OPEN_FOR_TRANSIT".into()
            )
        );
    }
}
