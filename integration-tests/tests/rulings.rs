//! Mutual recognition through the public API: a ruling issued at one house is honoured
//! at every other, licences are drawn down province-wide without going below zero, and
//! lookups survive the shared store losing its data.

use std::sync::Arc;

use customs_common::auth::Role;
use customs_proto::{
    common::{Date, Money, RulingKind},
    review::{self as pb, ruling_service_client::RulingServiceClient as Client},
};
use integration_tests::{BACKENDS, Backend, TestApp, authorized};
use tonic::{Code, Status, transport::Channel};
use tonic_types::StatusExt;

const HOLDER: &str = "4403960001";
const HOUSES: [&str; 7] = ["5100", "5200", "5300", "5700", "6000", "6700", "6800"];

fn reason(status: &Status) -> String {
    status
        .get_error_details()
        .error_info()
        .map(|info| info.reason.clone())
        .unwrap_or_default()
}

struct Fixture {
    app: TestApp,
}

impl Fixture {
    async fn new(backend: Backend) -> Self {
        Self {
            app: TestApp::spawn(backend).await.unwrap(),
        }
    }

    fn client(&self) -> Client<Channel> {
        Client::new(self.app.channel.clone())
    }

    fn officer(&self, house: &str) -> String {
        self.app.token(Role::Officer, house, None)
    }

    async fn issue(
        &self,
        house: &str,
        request_id: &str,
        ruling: pb::Ruling,
        replaces: &str,
    ) -> Result<pb::Ruling, Status> {
        self.client()
            .issue_ruling(authorized(
                pb::IssueRulingRequest {
                    request_id: request_id.into(),
                    ruling: Some(ruling),
                    replaces: replaces.into(),
                },
                &self.officer(house),
            ))
            .await
            .map(tonic::Response::into_inner)
    }

    async fn get_as(&self, token: &str, id: &str) -> Result<pb::Ruling, Status> {
        self.client()
            .get_ruling(authorized(
                pb::GetRulingRequest {
                    ruling_id: id.into(),
                },
                token,
            ))
            .await
            .map(tonic::Response::into_inner)
    }

    async fn draw(
        &self,
        house: &str,
        id: &str,
        declaration: &str,
        quantity: &str,
    ) -> Result<pb::Ruling, Status> {
        self.client()
            .draw_down_licence(authorized(
                pb::DrawDownLicenceRequest {
                    request_id: format!("draw-{declaration}"),
                    ruling_id: id.into(),
                    quantity: quantity.into(),
                    declaration_number: declaration.into(),
                    house_code: String::new(),
                    replaces_earlier_draw: false,
                },
                &self.officer(house),
            ))
            .await
            .map(tonic::Response::into_inner)
    }
}

fn base(kind: RulingKind) -> pb::Ruling {
    pb::Ruling {
        kind: kind as i32,
        holder: HOLDER.into(),
        subject: "frozen boneless beef".into(),
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
        ..Default::default()
    }
}

fn licence(quantity: &str) -> pb::Ruling {
    pb::Ruling {
        hs_code: "0202".into(),
        quantity_granted: quantity.into(),
        unit: "KGM".into(),
        ..base(RulingKind::Licence)
    }
}

fn declaration(house: &str, n: u32) -> String {
    format!("{}0120261{n:09}", &house[..2])
}

#[tokio::test]
async fn a_ruling_issued_at_one_house_is_honoured_at_every_house() {
    for backend in BACKENDS {
        let fixture = Fixture::new(backend).await;
        let rulings = [
            pb::Ruling {
                hs_code: "0202300090".into(),
                ..base(RulingKind::PreClassification)
            },
            pb::Ruling {
                unit_price: Some(Money {
                    currency_code: "USD".into(),
                    amount: "5.25".into(),
                }),
                ..base(RulingKind::PricePreReview)
            },
            pb::Ruling {
                origin_country: "AU".into(),
                ..base(RulingKind::OriginPreDetermination)
            },
            licence("20000"),
            pb::Ruling {
                hs_code: "0202300090".into(),
                ..base(RulingKind::ProfessionalDetermination)
            },
            base(RulingKind::TemporaryAdmission),
        ];
        for (i, ruling) in rulings.into_iter().enumerate() {
            let issued = fixture
                .issue("5100", &format!("issue-{i}"), ruling.clone(), "")
                .await
                .unwrap();
            assert!(issued.ruling_id.starts_with("5100"), "{}", issued.ruling_id);
            assert_eq!(issued.status(), pb::RulingStatus::Valid);
            assert_eq!(issued.issuing_house, "5100");
            // Any other house reads the same ruling.
            for house in HOUSES {
                let read = fixture
                    .get_as(&fixture.officer(house), &issued.ruling_id)
                    .await
                    .unwrap();
                assert_eq!(read.kind, ruling.kind);
                assert_eq!(read.holder, HOLDER);
            }
            let retried = fixture
                .issue("5100", &format!("issue-{i}"), ruling, "")
                .await
                .unwrap();
            assert_eq!(
                retried.ruling_id, issued.ruling_id,
                "a retried issue returns the first ruling"
            );
        }

        // The holder finds its rulings; another enterprise sees none of them.
        let holder = fixture.app.token(Role::Enterprise, "5300", Some(HOLDER));
        let mine = fixture
            .client()
            .find_rulings(authorized(
                pb::FindRulingsRequest {
                    page_size: 4,
                    ..Default::default()
                },
                &holder,
            ))
            .await
            .unwrap()
            .into_inner();
        assert_eq!(mine.rulings.len(), 4);
        assert!(!mine.next_page_token.is_empty());
        let rest = fixture
            .client()
            .find_rulings(authorized(
                pb::FindRulingsRequest {
                    page_size: 4,
                    page_token: mine.next_page_token.clone(),
                    ..Default::default()
                },
                &holder,
            ))
            .await
            .unwrap()
            .into_inner();
        assert_eq!(rest.rulings.len(), 2);
        assert!(rest.next_page_token.is_empty());
        let stranger = fixture
            .app
            .token(Role::Enterprise, "5300", Some("4403960999"));
        let hidden = fixture
            .get_as(&stranger, &mine.rulings[0].ruling_id)
            .await
            .unwrap_err();
        assert_eq!(hidden.code(), Code::NotFound);
        let theirs = fixture
            .client()
            .find_rulings(authorized(pb::FindRulingsRequest::default(), &stranger))
            .await
            .unwrap()
            .into_inner();
        assert!(theirs.rulings.is_empty());
    }
}

#[tokio::test]
async fn revocation_and_replacement_reach_every_house() {
    let fixture = Fixture::new(Backend::Production).await;
    let old = fixture
        .issue(
            "5300",
            "origin-1",
            pb::Ruling {
                origin_country: "AU".into(),
                ..base(RulingKind::OriginPreDetermination)
            },
            "",
        )
        .await
        .unwrap();
    // Cached in the shared store by a read at another house.
    fixture
        .get_as(&fixture.officer("5700"), &old.ruling_id)
        .await
        .unwrap();
    let new = fixture
        .issue(
            "5300",
            "origin-2",
            pb::Ruling {
                origin_country: "NZ".into(),
                ..base(RulingKind::OriginPreDetermination)
            },
            &old.ruling_id,
        )
        .await
        .unwrap();
    let old_seen = fixture
        .get_as(&fixture.officer("5700"), &old.ruling_id)
        .await
        .unwrap();
    assert_eq!(old_seen.status(), pb::RulingStatus::Revoked);
    assert_eq!(old_seen.replaced_by, new.ruling_id);

    let mismatch = fixture
        .issue(
            "5300",
            "origin-3",
            pb::Ruling {
                hs_code: "0202300090".into(),
                ..base(RulingKind::PreClassification)
            },
            &new.ruling_id,
        )
        .await
        .unwrap_err();
    assert_eq!(reason(&mismatch), "RULING_REPLACEMENT_MISMATCH");

    let revoked = fixture
        .client()
        .revoke_ruling(authorized(
            pb::RevokeRulingRequest {
                ruling_id: new.ruling_id.clone(),
                reason: "fraudulent application".into(),
            },
            &fixture.officer("5100"),
        ))
        .await
        .unwrap()
        .into_inner();
    assert_eq!(revoked.status(), pb::RulingStatus::Revoked);
    assert_eq!(
        fixture
            .get_as(&fixture.officer("6800"), &new.ruling_id)
            .await
            .unwrap()
            .revocation_reason,
        "fraudulent application"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_licence_is_drawn_down_across_houses_and_never_below_zero() {
    for backend in BACKENDS {
        let fixture = Arc::new(Fixture::new(backend).await);
        let issued = fixture
            .issue("5200", "licence", licence("1000"), "")
            .await
            .unwrap();
        let mut tasks = Vec::new();
        // 7 houses x 10 declarations of 15 kg (1,050 kg) against 1,000 kg, each sent twice.
        for _attempt in 0..2 {
            for house in HOUSES {
                for n in 0..10 {
                    let (fixture, id) = (fixture.clone(), issued.ruling_id.clone());
                    tasks.push(tokio::spawn(async move {
                        (
                            declaration(house, n),
                            fixture.draw(house, &id, &declaration(house, n), "15").await,
                        )
                    }));
                }
            }
        }
        let mut drawn = std::collections::HashSet::new();
        for task in tasks {
            let (number, outcome) = task.await.unwrap();
            match outcome {
                Ok(ruling) => {
                    drawn.insert(number);
                    assert!(!ruling.quantity_remaining.starts_with('-'));
                }
                Err(status) => {
                    assert_eq!(reason(&status), "LICENCE_QUANTITY_EXCEEDED", "{status:?}")
                }
            }
        }
        assert_eq!(
            drawn.len(),
            66,
            "{backend:?}: 1,000 kg holds 66 draws of 15 kg"
        );
        let read = fixture
            .get_as(&fixture.officer("6000"), &issued.ruling_id)
            .await
            .unwrap();
        assert_eq!(read.quantity_remaining, "10", "{backend:?}");

        let over = fixture
            .draw(
                "5100",
                &issued.ruling_id,
                &declaration("5100", 99),
                "10.001",
            )
            .await
            .unwrap_err();
        assert_eq!(reason(&over), "LICENCE_QUANTITY_EXCEEDED");
        let other_amount = fixture
            .draw("5100", &issued.ruling_id, &declaration("5100", 0), "5")
            .await;
        if drawn.contains(&declaration("5100", 0)) {
            assert_eq!(reason(&other_amount.unwrap_err()), "LICENCE_ALREADY_DRAWN");
        }
        let not_licence = fixture
            .issue(
                "5200",
                "origin",
                pb::Ruling {
                    origin_country: "AU".into(),
                    ..base(RulingKind::OriginPreDetermination)
                },
                "",
            )
            .await
            .unwrap();
        let refused = fixture
            .draw("5100", &not_licence.ruling_id, &declaration("5100", 1), "1")
            .await
            .unwrap_err();
        assert_eq!(reason(&refused), "RULING_NOT_A_LICENCE");

        // An officer draws for the own house only.
        let elsewhere = fixture
            .client()
            .draw_down_licence(authorized(
                pb::DrawDownLicenceRequest {
                    request_id: "draw-for-another-house".into(),
                    ruling_id: issued.ruling_id.clone(),
                    quantity: "1".into(),
                    declaration_number: declaration("5100", 98),
                    house_code: "5300".into(),
                    replaces_earlier_draw: false,
                },
                &fixture.officer("5100"),
            ))
            .await
            .unwrap_err();
        assert_eq!(
            (elsewhere.code(), reason(&elsewhere)),
            (Code::PermissionDenied, "HOUSE_NOT_YOURS".into())
        );
        // Only the platforms replace a declaration's earlier draw (a modified
        // declaration's revision, screened).
        let replacing = fixture
            .client()
            .draw_down_licence(authorized(
                pb::DrawDownLicenceRequest {
                    request_id: "draw-in-place".into(),
                    ruling_id: issued.ruling_id.clone(),
                    quantity: "1".into(),
                    declaration_number: declaration("5100", 98),
                    house_code: String::new(),
                    replaces_earlier_draw: true,
                },
                &fixture.officer("5100"),
            ))
            .await
            .unwrap_err();
        assert_eq!(
            (replacing.code(), reason(&replacing)),
            (
                Code::PermissionDenied,
                "REPLACING_A_DRAW_NOT_ALLOWED".into()
            )
        );

        // What one declaration holds of the licence: an officer reads it, an
        // enterprise may not.
        let held = |number: String, token: String| {
            let request = authorized(
                pb::GetLicenceDrawRequest {
                    ruling_id: issued.ruling_id.clone(),
                    declaration_number: number,
                },
                &token,
            );
            let mut client = fixture.client();
            async move { client.get_licence_draw(request).await }
        };
        let holder = drawn.iter().next().unwrap().clone();
        let officer = fixture.officer("5300");
        let draw = held(holder, officer.clone()).await.unwrap().into_inner();
        assert_eq!(draw.quantity, "15");
        let none = held(declaration("5100", 97), officer).await.unwrap();
        assert_eq!(none.into_inner().quantity, "0");
        let trader = fixture.app.token(Role::Enterprise, "5300", Some(HOLDER));
        let denied = held(declaration("5100", 97), trader).await.unwrap_err();
        assert_eq!(denied.code(), Code::PermissionDenied);
    }
}

#[tokio::test]
async fn lookups_and_remaining_quantities_survive_a_redis_flush() {
    let fixture = Fixture::new(Backend::Production).await;
    let issued = fixture
        .issue("5300", "licence", licence("100.5"), "")
        .await
        .unwrap();
    fixture
        .draw("5300", &issued.ruling_id, &declaration("5300", 1), "40.25")
        .await
        .unwrap();
    fixture
        .draw("5700", &issued.ruling_id, &declaration("5700", 2), "10")
        .await
        .unwrap();
    fixture
        .app
        .redis
        .as_ref()
        .unwrap()
        .flush_prefix()
        .await
        .unwrap();

    let read = fixture
        .get_as(&fixture.officer("5100"), &issued.ruling_id)
        .await
        .unwrap();
    assert_eq!(
        (
            read.quantity_granted.as_str(),
            read.quantity_remaining.as_str()
        ),
        ("100.5", "50.25")
    );
    // A retried draw after the flush is still answered as the first.
    let retried = fixture
        .draw("5300", &issued.ruling_id, &declaration("5300", 1), "40.25")
        .await
        .unwrap();
    assert_eq!(retried.quantity_remaining, "50.25");
}

#[tokio::test]
async fn malformed_rulings_and_unknown_ids_are_refused_clearly() {
    let fixture = Fixture::new(Backend::Embedded).await;
    let status = fixture
        .issue(
            "5300",
            "",
            pb::Ruling {
                kind: RulingKind::Licence as i32,
                hs_code: "77".into(),
                ..Default::default()
            },
            "",
        )
        .await
        .unwrap_err();
    assert_eq!(status.code(), Code::InvalidArgument);
    let fields: Vec<_> = status
        .get_error_details()
        .bad_request()
        .unwrap()
        .field_violations
        .iter()
        .map(|v| v.field.clone())
        .collect();
    assert_eq!(
        fields,
        [
            "request_id",
            "ruling.holder",
            "ruling.subject",
            "ruling.hs_code",
            "ruling.quantity_granted",
            "ruling.unit",
            "ruling.valid_from",
            "ruling.valid_until"
        ]
    );
    let missing = fixture
        .get_as(&fixture.officer("5300"), "5300PC26NOTTHERE")
        .await
        .unwrap_err();
    assert_eq!(
        (missing.code(), reason(&missing).as_str()),
        (Code::NotFound, "RULING_NOT_FOUND")
    );
    let enterprise = fixture.app.token(Role::Enterprise, "5300", Some(HOLDER));
    let denied = fixture
        .client()
        .issue_ruling(authorized(pb::IssueRulingRequest::default(), &enterprise))
        .await
        .unwrap_err();
    assert_eq!(denied.code(), Code::PermissionDenied);
}
