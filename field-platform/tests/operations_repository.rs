//! The field operations repository on PostgreSQL and SQLite: tax bills and arrears,
//! inspection rounds, holds, and the exit recorded once.

use customs_common::testing::TestDatabase;
use field_platform::{
    domain::gate::Exit,
    storage::{
        migrations,
        operations::{
            EventRecord, HoldRecord, InspectionRecord, OperationsRepository, RecordedEvent,
            ReleaseRecord, TaxBillRecord,
        },
    },
};
use time::{Duration, OffsetDateTime, macros::date};

async fn repository(database: &TestDatabase) -> OperationsRepository {
    let mut migrations = migrations().unwrap();
    database.database.migrate(&mut migrations).await.unwrap();
    OperationsRepository::new(database.database.clone())
}

fn bill(number: &str, holder: &str, state: &str, due: Option<time::Date>) -> TaxBillRecord {
    TaxBillRecord {
        declaration_number: number.into(),
        id: format!("TB-{number}"),
        enterprise_code: holder.into(),
        broker_code: String::new(),
        house_code: "5300".into(),
        tariff_version: 1,
        payment_method: "SUMMARY".into(),
        state: state.into(),
        guarantee_reference: "26CN5300D5E589B82".into(),
        lines: "[]".into(),
        total_duty_fen: 100,
        total_vat_fen: 200,
        total_fen: 300,
        rounding: "half-up".into(),
        due_date: due,
        assessed_at: OffsetDateTime::now_utc(),
        paid_at: None,
        payment_reference: String::new(),
    }
}

async fn bills_are_kept_once_and_overdue_summary_bills_put_their_holder_in_arrears(
    repository: OperationsRepository,
) {
    let today = date!(2026 - 12 - 08);
    let (first, created) = repository
        .insert_bill(&bill("1", "A", "SECURED", Some(date!(2026 - 12 - 07))), &[])
        .await
        .unwrap();
    assert!(created);
    let (again, created) = repository
        .insert_bill(&bill("1", "B", "ASSESSED", None), &[])
        .await
        .unwrap();
    assert!(!created);
    assert_eq!(again, first);
    repository
        .insert_bill(&bill("2", "B", "SECURED", Some(date!(2026 - 12 - 08))), &[])
        .await
        .unwrap();
    repository
        .insert_bill(&bill("3", "C", "ASSESSED", None), &[])
        .await
        .unwrap();
    assert_eq!(repository.holders_in_arrears(today).await.unwrap(), ["A"]);
    let overdue = "summary-payment duties overdue";
    assert!(
        repository
            .bar_for_arrears("A", today, overdue)
            .await
            .unwrap()
    );
    assert!(
        !repository
            .bar_for_arrears("A", today, overdue)
            .await
            .unwrap(),
        "barred already"
    );
    assert!(
        !repository
            .bar_for_arrears("B", today, overdue)
            .await
            .unwrap(),
        "B's bill is due today, not overdue"
    );
    assert!(
        !repository.lift_arrears("A", today).await.unwrap(),
        "still overdue"
    );
    assert!(repository.pay("1", "SECURED", "BOC-1", &[]).await.unwrap());
    assert!(
        !repository.pay("1", "SECURED", "BOC-1", &[]).await.unwrap(),
        "paid once"
    );
    assert!(
        repository
            .holders_in_arrears(today)
            .await
            .unwrap()
            .is_empty()
    );
    // A watch that listed A before the payment bars nothing now; the bar is lifted.
    assert!(
        !repository
            .bar_for_arrears("A", today, overdue)
            .await
            .unwrap()
    );
    assert!(repository.lift_arrears("A", today).await.unwrap());
    assert!(!repository.lift_arrears("A", today).await.unwrap());
}

fn inspection(number: &str) -> InspectionRecord {
    InspectionRecord {
        declaration_number: number.into(),
        id: format!("IN-{number}"),
        round: 1,
        state: "ORDERED".into(),
        reason: "RED lane".into(),
        ordered_by_house: "5300".into(),
        site_kind: String::new(),
        site_code: String::new(),
        smart_lock: false,
        vehicle_tracking: false,
        route: "[]".into(),
        corridor_metres: 0.0,
        vehicle_plate: String::new(),
        lock_id: String::new(),
        tracker_id: String::new(),
        discrepancy: false,
        result_details: String::new(),
        ordered_at: OffsetDateTime::now_utc(),
        completed_at: None,
    }
}

async fn an_inspection_is_ordered_once_and_again_only_after_a_discrepancy(
    repository: OperationsRepository,
) {
    assert!(
        repository
            .order_inspection(&inspection("1"), &[])
            .await
            .unwrap()
    );
    assert!(
        !repository
            .order_inspection(&inspection("1"), &[])
            .await
            .unwrap()
    );
    let mut chosen = repository.inspection("1").await.unwrap().unwrap();
    chosen.state = "SITE_CHOSEN".into();
    chosen.site_kind = "PORT".into();
    assert!(repository.choose_site(&chosen).await.unwrap());
    assert!(
        !repository.choose_site(&chosen).await.unwrap(),
        "only from ORDERED"
    );
    assert!(
        repository
            .complete_inspection("1", true, "12 units more", &[])
            .await
            .unwrap()
    );
    assert!(
        repository
            .order_inspection(&inspection("1"), &[])
            .await
            .unwrap(),
        "a new round"
    );
    let second = repository.inspection("1").await.unwrap().unwrap();
    assert_eq!(
        (second.round, second.state.as_str(), second.discrepancy),
        (2, "ORDERED", false)
    );
}

async fn one_open_hold_per_reason(repository: OperationsRepository) {
    let event = EventRecord {
        declaration_number: "1".into(),
        device_id: "GPS-1".into(),
        kind: "POSITION".into(),
        latitude: Some(22.8),
        longitude: Some(113.9),
        at_site: String::new(),
        occurred_at: OffsetDateTime::now_utc(),
    };
    let hold = |id: &str| HoldRecord {
        id: id.into(),
        declaration_number: "1".into(),
        reason: "ROUTE_DEVIATION".into(),
        details: "off".into(),
        raised_at: OffsetDateTime::now_utc(),
        open: true,
        lifted_at: None,
        lifted_by: String::new(),
        lift_reason: String::new(),
    };
    let later = |event: &EventRecord, seconds: i64| EventRecord {
        occurred_at: event.occurred_at + Duration::seconds(seconds),
        ..event.clone()
    };
    let raised = |recorded: RecordedEvent| match recorded {
        RecordedEvent::New { raised } => raised.map(|hold| hold.id),
        RecordedEvent::Repeat => panic!("a new event taken for a repeat"),
    };
    assert_eq!(
        raised(
            repository
                .record_event(&event, Some(&hold("H1")))
                .await
                .unwrap()
        ),
        Some("H1".into())
    );
    assert_eq!(
        raised(
            repository
                .record_event(&later(&event, 10), Some(&hold("H2")))
                .await
                .unwrap()
        ),
        None,
        "H1 is open"
    );
    assert_eq!(repository.events("1").await.unwrap().len(), 2);
    assert_eq!(repository.holds("1").await.unwrap().len(), 1);
    let lifted = repository
        .lift_hold(
            "H1",
            "officer@5300",
            "route explained: detour for road works",
        )
        .await
        .unwrap()
        .unwrap();
    assert!(!lifted.open && lifted.lifted_at.is_some());
    assert_eq!(
        repository
            .lift_hold("H9", "officer@5300", "x")
            .await
            .unwrap(),
        None
    );
    // The device resends what it buffered: stored once, and a lifted hold stays lifted.
    assert_eq!(
        repository
            .record_event(&event, Some(&hold("H3")))
            .await
            .unwrap(),
        RecordedEvent::Repeat
    );
    assert_eq!(repository.events("1").await.unwrap().len(), 2);
    assert!(repository.holds("1").await.unwrap().iter().all(|h| !h.open));
    // A new deviation raises a new hold.
    assert_eq!(
        raised(
            repository
                .record_event(&later(&event, 20), Some(&hold("H4")))
                .await
                .unwrap()
        ),
        Some("H4".into())
    );
}

async fn goods_exit_once(repository: OperationsRepository) {
    let release = ReleaseRecord {
        declaration_number: "1".into(),
        port_code: "5316".into(),
        integrated_mode: true,
        released_at: OffsetDateTime::now_utc() - Duration::minutes(5),
        exited_at: None,
        exit_gate: String::new(),
        exit_vehicle: String::new(),
    };
    assert!(
        repository
            .release(&release, &["MSKU1234565".into()], &[])
            .await
            .unwrap()
    );
    assert!(
        !repository
            .release(&release, &["MSKU1234565".into()], &[])
            .await
            .unwrap()
    );
    let numbers = [Exit {
        declaration_number: "1".into(),
        containers: Vec::new(),
    }];
    let (first, exited) = repository
        .record_gate("r1", "G1", "粤B12345", "pass-1", Some(&numbers), &[])
        .await
        .unwrap();
    assert_eq!((first.as_str(), exited), ("pass-1", true));
    let (second, exited) = repository
        .record_gate("r2", "G2", "粤B12345", "pass-2", Some(&numbers), &[])
        .await
        .unwrap();
    assert!(!exited, "the second gate's exit changes nothing");
    assert_eq!(
        second, "pass-2",
        "nothing stored for r2: the caller decides HOLD"
    );
    assert_eq!(repository.gate_decision("r2").await.unwrap(), None);
    let (retry, _) = repository
        .record_gate("r1", "G1", "粤B12345", "pass-again", None, &[])
        .await
        .unwrap();
    assert_eq!(retry, "pass-1", "a retry keeps the first answer");
    let facts = repository.release_of("1").await.unwrap().unwrap();
    assert_eq!(
        (
            facts.containers,
            facts.exited_containers,
            facts.release.exit_gate.as_str()
        ),
        (
            vec!["MSKU1234565".to_owned()],
            vec!["MSKU1234565".to_owned()],
            "G1"
        ),
        "presented without its container, it left in full"
    );
}

customs_common::database_suite!(
    repository;
    bills_are_kept_once_and_overdue_summary_bills_put_their_holder_in_arrears,
    an_inspection_is_ordered_once_and_again_only_after_a_discrepancy,
    one_open_hold_per_reason,
    goods_exit_once,
);
