//! One repository suite, run against PostgreSQL and SQLite.

use customs_common::{store::StoredReservation, testing::TestDatabase};
use field_platform::{
    domain::guarantee::HolderRestriction,
    storage::{
        guarantees::{EntryKind, GuaranteeRecord, GuaranteeRepository, LedgerEntry},
        migrations,
    },
};
use time::{OffsetDateTime, macros::date};

async fn repository(database: &TestDatabase) -> GuaranteeRepository {
    let mut migrations = migrations().unwrap();
    database.database.migrate(&mut migrations).await.unwrap();
    // Migrating twice is a no-op (a restart).
    let mut again = field_platform::storage::migrations().unwrap();
    database.database.migrate(&mut again).await.unwrap();
    GuaranteeRepository::new(database.database.clone())
}

fn record(reference: &str, request_id: &str) -> GuaranteeRecord {
    GuaranteeRecord {
        reference: reference.to_owned(),
        request_id: request_id.to_owned(),
        bank: "Bank of China Guangdong Branch".to_owned(),
        holder: "4403960001".to_owned(),
        amount_fen: 10_000_000,
        valid_from: date!(2026 - 01 - 01),
        valid_until: date!(2026 - 12 - 31),
        access_hash: "hash".to_owned(),
        suspended: false,
        suspension_reason: String::new(),
        registered_by_house: "5300".to_owned(),
        registered_at: OffsetDateTime::now_utc().replace_nanosecond(0).unwrap(),
    }
}

fn entry(declaration: &str, amount_fen: i64) -> LedgerEntry {
    LedgerEntry {
        declaration_number: declaration.to_owned(),
        amount_fen,
        house_code: "5100".to_owned(),
        recorded_at: OffsetDateTime::now_utc().replace_nanosecond(0).unwrap(),
    }
}

async fn registration_is_idempotent_per_request_id(repository: GuaranteeRepository) {
    let first = record("26CN5300AAAAAAAA1", "req-1");
    let (stored, created) = repository.insert(&first).await.unwrap();
    assert!(created);
    assert_eq!(stored, first);
    let (again, created) = repository
        .insert(&record("26CN5300BBBBBBBB2", "req-1"))
        .await
        .unwrap();
    assert!(!created);
    assert_eq!(
        again.reference, "26CN5300AAAAAAAA1",
        "a repeat returns the first guarantee"
    );
    assert_eq!(
        repository.get("26CN5300AAAAAAAA1").await.unwrap(),
        Some(first)
    );
    assert_eq!(repository.get("26CN5300BBBBBBBB2").await.unwrap(), None);
    assert_eq!(
        repository.references().await.unwrap(),
        ["26CN5300AAAAAAAA1"]
    );
}

async fn ledger_lines_are_recorded_once_and_rebuild_reservations(repository: GuaranteeRepository) {
    repository
        .insert(&record("26CN5300AAAAAAAA1", "req-1"))
        .await
        .unwrap();
    let reference = "26CN5300AAAAAAAA1";
    assert!(
        repository
            .record(
                reference,
                EntryKind::Reserve,
                &entry("530120261000000001", 500)
            )
            .await
            .unwrap()
    );
    assert!(
        !repository
            .record(
                reference,
                EntryKind::Reserve,
                &entry("530120261000000001", 500)
            )
            .await
            .unwrap()
    );
    assert!(
        repository
            .record(
                reference,
                EntryKind::Reserve,
                &entry("530120261000000002", 700)
            )
            .await
            .unwrap()
    );
    assert!(
        repository
            .record(
                reference,
                EntryKind::Release,
                &entry("530120261000000001", 500)
            )
            .await
            .unwrap()
    );
    assert_eq!(
        repository.reservations(reference).await.unwrap(),
        [
            StoredReservation {
                declaration_number: "530120261000000001".into(),
                amount_fen: 500,
                released: true
            },
            StoredReservation {
                declaration_number: "530120261000000002".into(),
                amount_fen: 700,
                released: false
            },
        ]
    );
    let line = repository
        .entry(reference, "530120261000000002", EntryKind::Reserve)
        .await
        .unwrap()
        .unwrap();
    assert_eq!((line.amount_fen, line.house_code.as_str()), (700, "5100"));
    assert!(
        repository
            .entry(reference, "530120261000000002", EntryKind::Release)
            .await
            .unwrap()
            .is_none()
    );
}

async fn suspension_and_restrictions_persist(repository: GuaranteeRepository) {
    repository
        .insert(&record("26CN5300AAAAAAAA1", "req-1"))
        .await
        .unwrap();
    assert!(
        repository
            .set_suspended("26CN5300AAAAAAAA1", true, "bank recalled the letter")
            .await
            .unwrap()
    );
    assert!(
        !repository
            .set_suspended("26CN5300ZZZZZZZZ9", true, "x")
            .await
            .unwrap()
    );
    let stored = repository.get("26CN5300AAAAAAAA1").await.unwrap().unwrap();
    assert!(stored.suspended);
    assert_eq!(stored.suspension_reason, "bank recalled the letter");

    let holder = "4403960001";
    assert!(repository.restrictions(holder).await.unwrap().is_empty());
    repository
        .set_restriction(holder, HolderRestriction::Arrears, true, "May tax unpaid")
        .await
        .unwrap();
    repository
        .set_restriction(holder, HolderRestriction::Discredited, true, "")
        .await
        .unwrap();
    repository
        .set_restriction(holder, HolderRestriction::Arrears, true, "again")
        .await
        .unwrap();
    assert_eq!(
        repository.restrictions(holder).await.unwrap(),
        [HolderRestriction::Discredited, HolderRestriction::Arrears]
    );
    repository
        .set_restriction(holder, HolderRestriction::Discredited, false, "")
        .await
        .unwrap();
    assert_eq!(
        repository.restrictions(holder).await.unwrap(),
        [HolderRestriction::Arrears]
    );
}

customs_common::database_suite!(
    repository;
    registration_is_idempotent_per_request_id,
    ledger_lines_are_recorded_once_and_rebuild_reservations,
    suspension_and_restrictions_persist,
);
