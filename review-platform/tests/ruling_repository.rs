//! One repository suite, run against PostgreSQL and SQLite.

use customs_common::{
    rulings::{RulingKind, RulingRecord},
    store::{EarlierDraw, StoredDraw},
    testing::TestDatabase,
};
use review_platform::storage::{
    migrations,
    rulings::{RulingFilter, RulingRepository, StoredRuling},
};
use rust_decimal::Decimal;
use time::OffsetDateTime;

async fn repository(database: &TestDatabase) -> RulingRepository {
    for _ in 0..2 {
        let mut migrations = migrations().unwrap();
        database.database.migrate(&mut migrations).await.unwrap();
    }
    RulingRepository::new(database.database.clone())
}

fn ruling(id: &str, request_id: &str, kind: RulingKind, holder: &str) -> StoredRuling {
    StoredRuling {
        record: RulingRecord {
            id: id.to_owned(),
            kind,
            issuing_house: "5100".to_owned(),
            holder: holder.to_owned(),
            subject: "notebook computers".to_owned(),
            hs_code: Some("8471300000".to_owned()),
            unit_price: Some(("USD".to_owned(), Decimal::new(49999, 2))),
            origin_country: Some("JP".to_owned()),
            quantity_granted_milli: Some(1_000_000),
            unit: Some("PCE".to_owned()),
            valid_from: 20260101,
            valid_until: 20261231,
            revoked: false,
            replaced_by: None,
            revocation_reason: None,
        },
        request_id: request_id.to_owned(),
        issued_at: OffsetDateTime::now_utc().replace_nanosecond(0).unwrap(),
    }
}

async fn rulings_round_trip_and_issue_once_per_request(repository: RulingRepository) {
    let first = ruling(
        "5100PC26AAAAAAAA",
        "req-1",
        RulingKind::PreClassification,
        "4403960001",
    );
    let (stored, created) = repository.insert(&first, None).await.unwrap();
    assert!(created);
    assert_eq!(stored, first, "every field survives the database");
    let (again, created) = repository
        .insert(
            &ruling(
                "5100PC26BBBBBBBB",
                "req-1",
                RulingKind::PreClassification,
                "4403960001",
            ),
            None,
        )
        .await
        .unwrap();
    assert!(!created);
    assert_eq!(again.record.id, "5100PC26AAAAAAAA");
    assert_eq!(repository.get("5100PC26BBBBBBBB").await.unwrap(), None);
}

async fn a_replacement_revokes_and_links_the_old_ruling(repository: RulingRepository) {
    repository
        .insert(
            &ruling(
                "OLD",
                "req-1",
                RulingKind::OriginPreDetermination,
                "4403960001",
            ),
            None,
        )
        .await
        .unwrap();
    repository
        .insert(
            &ruling(
                "NEW",
                "req-2",
                RulingKind::OriginPreDetermination,
                "4403960001",
            ),
            Some("OLD"),
        )
        .await
        .unwrap();
    let old = repository.get("OLD").await.unwrap().unwrap().record;
    assert!(old.revoked);
    assert_eq!(old.replaced_by.as_deref(), Some("NEW"));
    assert_eq!(old.revocation_reason.as_deref(), Some("replaced by NEW"));
    assert!(repository.revoke("NEW", "withdrawn").await.unwrap());
    assert!(!repository.revoke("NONE", "withdrawn").await.unwrap());
    assert_eq!(
        repository
            .get("NEW")
            .await
            .unwrap()
            .unwrap()
            .record
            .revocation_reason
            .as_deref(),
        Some("withdrawn")
    );
}

async fn rulings_are_found_by_holder_kind_and_page(repository: RulingRepository) {
    for (i, kind) in [
        RulingKind::Licence,
        RulingKind::PreClassification,
        RulingKind::Licence,
    ]
    .into_iter()
    .enumerate()
    {
        repository
            .insert(
                &ruling(&format!("R{i}"), &format!("req-{i}"), kind, "4403960001"),
                None,
            )
            .await
            .unwrap();
    }
    repository
        .insert(
            &ruling("R9", "req-9", RulingKind::Licence, "4403960002"),
            None,
        )
        .await
        .unwrap();
    let ids = |found: Vec<StoredRuling>| found.into_iter().map(|r| r.record.id).collect::<Vec<_>>();
    let mut filter = RulingFilter {
        holder: Some("4403960001".into()),
        limit: 10,
        ..Default::default()
    };
    assert_eq!(
        ids(repository.find(&filter).await.unwrap()),
        ["R0", "R1", "R2"]
    );
    filter.kind = Some(RulingKind::Licence);
    assert_eq!(ids(repository.find(&filter).await.unwrap()), ["R0", "R2"]);
    filter.after = Some("R0".into());
    filter.limit = 1;
    assert_eq!(ids(repository.find(&filter).await.unwrap()), ["R2"]);
    let everyone = RulingFilter {
        limit: 10,
        hs_code: Some("8471300000".into()),
        ..Default::default()
    };
    assert_eq!(repository.find(&everyone).await.unwrap().len(), 4);
}

async fn draws_are_recorded_once_or_replaced(repository: RulingRepository) {
    repository
        .insert(
            &ruling("L1", "req-1", RulingKind::Licence, "4403960001"),
            None,
        )
        .await
        .unwrap();
    let at = OffsetDateTime::now_utc();
    let draw = |n: &str, q| StoredDraw {
        declaration_number: n.into(),
        quantity_milli: q,
    };
    assert!(
        repository
            .record_draw("L1", &draw("D1", 500), "5300", at, EarlierDraw::Keep)
            .await
            .unwrap()
    );
    assert!(
        !repository
            .record_draw("L1", &draw("D1", 500), "5300", at, EarlierDraw::Keep)
            .await
            .unwrap()
    );
    assert!(
        repository
            .record_draw("L1", &draw("D2", 700), "5700", at, EarlierDraw::Keep)
            .await
            .unwrap()
    );
    let mut draws = repository.draws("L1").await.unwrap();
    draws.sort_by(|a, b| a.declaration_number.cmp(&b.declaration_number));
    assert_eq!(draws, [draw("D1", 500), draw("D2", 700)]);

    // A revision's draw takes the place of the earlier one; again, it changes nothing.
    for (quantity, written) in [(450, true), (450, false)] {
        assert_eq!(
            repository
                .record_draw(
                    "L1",
                    &draw("D1", quantity),
                    "5300",
                    at,
                    EarlierDraw::Replace
                )
                .await
                .unwrap(),
            written
        );
    }
    assert!(
        repository
            .record_draw("L1", &draw("D3", 100), "5100", at, EarlierDraw::Replace)
            .await
            .unwrap(),
        "or is the first"
    );
    assert_eq!(repository.draw_of("L1", "D1").await.unwrap(), Some(450));
    assert_eq!(repository.draw_of("L1", "D3").await.unwrap(), Some(100));
}

customs_common::database_suite!(
    repository;
    rulings_round_trip_and_issue_once_per_request,
    a_replacement_revokes_and_links_the_old_ruling,
    rulings_are_found_by_holder_kind_and_page,
    draws_are_recorded_once_or_replaced,
);
