//! The province-wide general guarantee, through the public gRPC API: registered once,
//! reserved against from all seven houses, never overdrawn, and rebuilt from the
//! ledger when the shared store loses its data.

use std::collections::HashSet;

use customs_common::auth::Role;
use customs_proto::{
    common::{Date, Money},
    field::{self as pb, guarantee_service_client::GuaranteeServiceClient as Client},
};
use integration_tests::{BACKENDS, Backend, TestApp, authorized};
use tonic::{Code, Status, transport::Channel};
use tonic_types::StatusExt;

const HOUSES: [&str; 7] = ["5100", "5200", "5300", "5700", "6000", "6700", "6800"];
const HOLDER: &str = "4403960001";

fn cny(amount: &str) -> Option<Money> {
    Some(Money {
        currency_code: "CNY".into(),
        amount: amount.into(),
    })
}

fn day(year: i32, month: i32, day: i32) -> Option<Date> {
    Some(Date { year, month, day })
}

struct Fixture {
    app: TestApp,
    officer: String,
}

impl Fixture {
    async fn new(backend: Backend) -> Self {
        let app = TestApp::spawn(backend).await.unwrap();
        let officer = app.token(Role::Officer, "5300", None);
        Self { app, officer }
    }

    fn client(&self) -> Client<Channel> {
        Client::new(self.app.channel.clone())
    }

    fn officer_of(&self, house: &str) -> String {
        self.app.token(Role::Officer, house, None)
    }

    async fn register(
        &self,
        request_id: &str,
        amount: &str,
        from: Option<Date>,
        until: Option<Date>,
    ) -> pb::Guarantee {
        self.client()
            .register_guarantee(authorized(
                pb::RegisterGuaranteeRequest {
                    request_id: request_id.into(),
                    bank: "Bank of China Guangdong Branch".into(),
                    holder: HOLDER.into(),
                    amount: cny(amount),
                    valid_from: from,
                    valid_until: until,
                },
                &self.officer,
            ))
            .await
            .unwrap()
            .into_inner()
    }

    async fn register_current(&self, request_id: &str, amount: &str) -> pb::Guarantee {
        self.register(request_id, amount, day(2020, 1, 1), day(2099, 12, 31))
            .await
    }

    async fn reserve_as(
        &self,
        house: &str,
        guarantee: &pb::Guarantee,
        declaration: &str,
        amount: &str,
    ) -> Result<pb::Reservation, Status> {
        self.client()
            .reserve_duties(authorized(
                pb::ReserveDutiesRequest {
                    reference: guarantee.reference.clone(),
                    access_code: guarantee.access_code.clone(),
                    holder: HOLDER.into(),
                    declaration_number: declaration.into(),
                    amount: cny(amount),
                    house_code: house.into(),
                },
                &self.officer_of(house),
            ))
            .await
            .map(tonic::Response::into_inner)
    }

    async fn get(&self, reference: &str) -> pb::Guarantee {
        self.client()
            .get_guarantee(authorized(
                pb::GetGuaranteeRequest {
                    reference: reference.into(),
                },
                &self.officer,
            ))
            .await
            .unwrap()
            .into_inner()
    }

    async fn release(&self, reference: &str, declaration: &str) -> Result<pb::Reservation, Status> {
        self.client()
            .release_reservation(authorized(
                pb::ReleaseReservationRequest {
                    reference: reference.into(),
                    declaration_number: declaration.into(),
                },
                &self.officer,
            ))
            .await
            .map(tonic::Response::into_inner)
    }
}

/// An import declaration number of the house's first office: `5101` `2026` `1` `000000007`.
fn declaration(house: &str, n: u32) -> String {
    format!("{}01{}1{n:09}", &house[..2], 2026)
}

fn reason(status: &Status) -> String {
    status
        .get_error_details()
        .error_info()
        .map(|info| info.reason.clone())
        .unwrap_or_default()
}

fn amount(money: &Option<Money>) -> &str {
    money
        .as_ref()
        .map(|m| m.amount.as_str())
        .unwrap_or_default()
}

#[tokio::test]
async fn a_guarantee_registered_once_is_read_with_its_exact_balance() {
    for backend in BACKENDS {
        let fixture = Fixture::new(backend).await;
        let guarantee = fixture.register_current("register-1", "50000.00").await;
        assert_eq!(guarantee.reference.len(), 17);
        assert!(
            guarantee.reference.starts_with("26CN5300")
                || guarantee.reference[2..].starts_with("CN5300")
        );
        assert_eq!(
            guarantee.access_code.len(),
            8,
            "the access code is shown on registration"
        );
        assert_eq!(amount(&guarantee.available), "50000.00");

        let again = fixture.register_current("register-1", "50000.00").await;
        assert_eq!(
            again.reference, guarantee.reference,
            "a retried registration returns the first"
        );
        assert!(
            again.access_code.is_empty(),
            "the access code is shown only once"
        );

        let reservation = fixture
            .reserve_as("5100", &guarantee, &declaration("5100", 1), "1234.56")
            .await
            .unwrap();
        assert_eq!(amount(&reservation.available_after), "48765.44");
        let read = fixture.get(&guarantee.reference).await;
        assert_eq!(
            (amount(&read.reserved), amount(&read.available)),
            ("1234.56", "48765.44")
        );
        assert!(read.access_code.is_empty());

        // The holder reads its own guarantee; another enterprise may not.
        let holder = fixture.app.token(Role::Enterprise, "5300", Some(HOLDER));
        let other = fixture
            .app
            .token(Role::Enterprise, "5300", Some("4403960999"));
        let request = || pb::GetGuaranteeRequest {
            reference: guarantee.reference.clone(),
        };
        fixture
            .client()
            .get_guarantee(authorized(request(), &holder))
            .await
            .unwrap();
        let denied = fixture
            .client()
            .get_guarantee(authorized(request(), &other))
            .await
            .unwrap_err();
        assert_eq!(
            (denied.code(), reason(&denied).as_str()),
            (Code::PermissionDenied, "GUARANTEE_NOT_YOURS")
        );
    }
}

#[tokio::test]
async fn every_refusal_has_its_precise_reason() {
    for backend in BACKENDS {
        let fixture = Fixture::new(backend).await;
        let current = fixture.register_current("g-current", "1000.00").await;
        let expired = fixture
            .register("g-expired", "1000.00", day(2020, 1, 1), day(2021, 12, 31))
            .await;
        let future = fixture
            .register("g-future", "1000.00", day(2098, 1, 1), day(2099, 12, 31))
            .await;
        let d = |n| declaration("5300", n);

        let refused = |outcome: Result<pb::Reservation, Status>| {
            let status = outcome.expect_err("expected a refusal");
            (status.code(), reason(&status))
        };

        // A reference with a valid check digit that nobody registered.
        let mut unknown = current.clone();
        let body = "26CN5300ZZZZZZZZ";
        let digit = customs_common::codes::iso6346_check_digit(body).unwrap();
        unknown.reference = format!("{body}{digit}");
        assert_eq!(
            refused(fixture.reserve_as("5300", &unknown, &d(1), "1.00").await),
            (Code::NotFound, "GUARANTEE_UNKNOWN".into())
        );

        let mut wrong_code = current.clone();
        wrong_code.access_code = "WRONG123".into();
        assert_eq!(
            refused(fixture.reserve_as("5300", &wrong_code, &d(1), "1.00").await),
            (Code::PermissionDenied, "GUARANTEE_WRONG_ACCESS_CODE".into())
        );

        let wrong_holder = fixture
            .client()
            .reserve_duties(authorized(
                pb::ReserveDutiesRequest {
                    reference: current.reference.clone(),
                    access_code: current.access_code.clone(),
                    holder: "4403960999".into(),
                    declaration_number: d(1),
                    amount: cny("1.00"),
                    house_code: "5300".into(),
                },
                &fixture.officer,
            ))
            .await;
        assert_eq!(
            refused(wrong_holder.map(tonic::Response::into_inner)),
            (Code::PermissionDenied, "GUARANTEE_WRONG_HOLDER".into())
        );

        assert_eq!(
            refused(fixture.reserve_as("5300", &expired, &d(1), "1.00").await),
            (Code::FailedPrecondition, "GUARANTEE_EXPIRED".into())
        );
        assert_eq!(
            refused(fixture.reserve_as("5300", &future, &d(1), "1.00").await),
            (Code::FailedPrecondition, "GUARANTEE_NOT_YET_VALID".into())
        );
        assert_eq!(
            refused(fixture.reserve_as("5300", &current, &d(1), "1000.01").await),
            (
                Code::FailedPrecondition,
                "GUARANTEE_INSUFFICIENT_HEADROOM".into()
            )
        );

        // Holder barred from summary tax payment: discredited, then in arrears.
        for (restriction, expected) in [
            (
                pb::HolderRestriction::Discredited,
                "GUARANTEE_HOLDER_DISCREDITED",
            ),
            (
                pb::HolderRestriction::Arrears,
                "GUARANTEE_HOLDER_IN_ARREARS",
            ),
        ] {
            let set = |active| pb::SetHolderRestrictionRequest {
                holder: HOLDER.into(),
                restriction: restriction as i32,
                active,
                note: "test".into(),
            };
            fixture
                .client()
                .set_holder_restriction(authorized(set(true), &fixture.officer))
                .await
                .unwrap();
            assert_eq!(
                refused(fixture.reserve_as("5300", &current, &d(1), "1.00").await),
                (Code::FailedPrecondition, expected.into())
            );
            let lifted = fixture
                .client()
                .set_holder_restriction(authorized(set(false), &fixture.officer))
                .await
                .unwrap();
            assert!(lifted.into_inner().restrictions.is_empty());
        }

        fixture
            .client()
            .suspend_guarantee(authorized(
                pb::SuspendGuaranteeRequest {
                    reference: current.reference.clone(),
                    reason: "bank recalled it".into(),
                },
                &fixture.officer,
            ))
            .await
            .unwrap();
        assert_eq!(
            refused(fixture.reserve_as("5300", &current, &d(1), "1.00").await),
            (Code::FailedPrecondition, "GUARANTEE_SUSPENDED".into())
        );
        let suspended = fixture.get(&current.reference).await;
        assert_eq!(suspended.status(), pb::GuaranteeStatus::Suspended);
        assert_eq!(
            amount(&suspended.reserved),
            "0.00",
            "no refusal reserved anything"
        );

        // An officer may reserve only for the house on the token.
        let other = fixture.register_current("g-other", "1000.00").await;
        let foreign = fixture
            .client()
            .reserve_duties(authorized(
                pb::ReserveDutiesRequest {
                    reference: other.reference.clone(),
                    access_code: other.access_code.clone(),
                    holder: HOLDER.into(),
                    declaration_number: d(2),
                    amount: cny("1.00"),
                    house_code: "5100".into(),
                },
                &fixture.officer,
            ))
            .await;
        assert_eq!(
            refused(foreign.map(tonic::Response::into_inner)),
            (Code::PermissionDenied, "HOUSE_MISMATCH".into())
        );
    }
}

#[tokio::test]
async fn malformed_requests_get_every_field_violation() {
    let fixture = Fixture::new(Backend::Embedded).await;
    let status = fixture
        .client()
        .reserve_duties(authorized(
            pb::ReserveDutiesRequest {
                reference: "26CN5300AAAAAAAA0".into(),
                access_code: String::new(),
                holder: "x".into(),
                declaration_number: "123".into(),
                amount: Some(Money {
                    currency_code: "USD".into(),
                    amount: "1.001".into(),
                }),
                house_code: "53".into(),
            },
            &fixture.officer,
        ))
        .await
        .unwrap_err();
    assert_eq!(status.code(), Code::InvalidArgument);
    let details = status.get_error_details();
    let fields: Vec<_> = details
        .bad_request()
        .unwrap()
        .field_violations
        .iter()
        .map(|v| v.field.clone())
        .collect();
    assert_eq!(
        fields,
        [
            "reference",
            "access_code",
            "holder",
            "declaration_number",
            "house_code",
            "amount.currency_code",
            "amount.amount"
        ]
    );

    let status = fixture
        .client()
        .register_guarantee(authorized(
            pb::RegisterGuaranteeRequest {
                request_id: "r".into(),
                ..Default::default()
            },
            &fixture.officer,
        ))
        .await
        .unwrap_err();
    assert_eq!(status.code(), Code::InvalidArgument);
    assert!(
        status
            .get_error_details()
            .bad_request()
            .unwrap()
            .field_violations
            .len()
            >= 4
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn seven_houses_reserving_at_once_never_overdraw_and_retries_are_no_ops() {
    for backend in BACKENDS {
        let fixture = std::sync::Arc::new(Fixture::new(backend).await);
        // 10,000.00 CNY; 7 houses x 30 declarations of 100.00 = 21,000.00 wanted.
        let guarantee = fixture.register_current("hot", "10000.00").await;
        let mut tasks = Vec::new();
        for attempt in 0..2 {
            for house in HOUSES {
                for n in 0..30 {
                    let (fixture, guarantee) = (fixture.clone(), guarantee.clone());
                    tasks.push(tokio::spawn(async move {
                        let number = declaration(house, n);
                        let outcome = fixture
                            .reserve_as(house, &guarantee, &number, "100.00")
                            .await;
                        (attempt, number, outcome)
                    }));
                }
            }
        }
        let mut reserved = HashSet::new();
        for task in tasks {
            let (_, number, outcome) = task.await.unwrap();
            match outcome {
                Ok(reservation) => {
                    assert_eq!(amount(&reservation.amount), "100.00");
                    reserved.insert(number);
                }
                Err(status) => assert_eq!(
                    reason(&status),
                    "GUARANTEE_INSUFFICIENT_HEADROOM",
                    "{status:?}"
                ),
            }
        }
        assert_eq!(
            reserved.len(),
            100,
            "{backend:?}: exactly 10,000.00 / 100.00 reservations fit"
        );

        // Release ten; a second release is a no-op.
        let released: Vec<_> = reserved.iter().take(10).cloned().collect();
        for number in &released {
            let first = fixture.release(&guarantee.reference, number).await.unwrap();
            assert_eq!(first.state(), pb::ReservationState::Released);
            let again = fixture.release(&guarantee.reference, number).await.unwrap();
            assert_eq!(
                again.released_at, first.released_at,
                "the retry answers as the first time"
            );
        }
        let read = fixture.get(&guarantee.reference).await;
        // amount - reserved + released = 10,000 - 10,000 + 1,000.
        assert_eq!(
            (amount(&read.reserved), amount(&read.available)),
            ("9000.00", "1000.00"),
            "{backend:?}"
        );
    }
}

#[tokio::test]
async fn balances_survive_a_redis_flush_and_a_restart() {
    let fixture = Fixture::new(Backend::Production).await;
    let guarantee = fixture.register_current("restart", "5000.00").await;
    for n in 0..5 {
        fixture
            .reserve_as(
                HOUSES[n as usize],
                &guarantee,
                &declaration(HOUSES[n as usize], n),
                "300.00",
            )
            .await
            .unwrap();
    }
    fixture
        .release(&guarantee.reference, &declaration(HOUSES[0], 0))
        .await
        .unwrap();
    let before = fixture.get(&guarantee.reference).await;
    assert_eq!(
        (amount(&before.reserved), amount(&before.available)),
        ("1200.00", "3800.00")
    );

    // Redis loses everything under our prefix: the next read reloads from the ledger.
    fixture
        .app
        .redis
        .as_ref()
        .unwrap()
        .flush_prefix()
        .await
        .unwrap();
    let reloaded = fixture.get(&guarantee.reference).await;
    assert_eq!(
        (amount(&reloaded.reserved), amount(&reloaded.available)),
        ("1200.00", "3800.00")
    );

    // Flushed again, then rebuilt explicitly by an admin who names it twice.
    fixture
        .app
        .redis
        .as_ref()
        .unwrap()
        .flush_prefix()
        .await
        .unwrap();
    let admin = fixture.app.token(Role::Admin, "5300", None);
    let rebuilt = fixture
        .client()
        .rebuild_balances(authorized(
            pb::RebuildBalancesRequest {
                references: vec![guarantee.reference.clone(), guarantee.reference.clone()],
            },
            &admin,
        ))
        .await
        .unwrap()
        .into_inner();
    assert_eq!(
        (rebuilt.guarantees_rebuilt, rebuilt.reservations_restored),
        (1, 4)
    );
    let after = fixture.get(&guarantee.reference).await;
    assert_eq!(
        (amount(&after.reserved), amount(&after.available)),
        ("1200.00", "3800.00")
    );

    // Retries after the rebuild are still no-ops, and released stays released.
    let retry = fixture
        .reserve_as(HOUSES[1], &guarantee, &declaration(HOUSES[1], 1), "300.00")
        .await
        .unwrap();
    assert_eq!(amount(&retry.available_after), "3800.00");
    let paid = fixture
        .reserve_as(HOUSES[0], &guarantee, &declaration(HOUSES[0], 0), "300.00")
        .await
        .unwrap_err();
    assert_eq!(reason(&paid), "GUARANTEE_RESERVATION_RELEASED");

    // A whole restart of the server over the same database and Redis.
    let reference = guarantee.reference.clone();
    let (settings, database, redis) = fixture.app.stop().await.unwrap();
    let app = TestApp::spawn_with(settings, database, redis)
        .await
        .unwrap();
    let officer = app.token(Role::Officer, "5300", None);
    let read = Client::new(app.channel.clone())
        .get_guarantee(authorized(pb::GetGuaranteeRequest { reference }, &officer))
        .await
        .unwrap()
        .into_inner();
    assert_eq!(
        (amount(&read.reserved), amount(&read.available)),
        ("1200.00", "3800.00")
    );
}

#[tokio::test]
async fn the_embedded_default_keeps_guarantees_across_a_restart() {
    let fixture = Fixture::new(Backend::Embedded).await;
    let guarantee = fixture.register_current("embedded", "800.00").await;
    fixture
        .reserve_as("5700", &guarantee, &declaration("5700", 1), "300.00")
        .await
        .unwrap();
    let (settings, database, redis) = fixture.app.stop().await.unwrap();
    let app = TestApp::spawn_with(settings, database, redis)
        .await
        .unwrap();
    let officer = app.token(Role::Officer, "5300", None);
    let read = Client::new(app.channel.clone())
        .get_guarantee(authorized(
            pb::GetGuaranteeRequest {
                reference: guarantee.reference.clone(),
            },
            &officer,
        ))
        .await
        .unwrap()
        .into_inner();
    assert_eq!(
        (amount(&read.reserved), amount(&read.available)),
        ("300.00", "500.00")
    );
}
