//! Transits on PostgreSQL and SQLite: a step moves a transit only from the state it
//! needs, once when two officers take it at once; only a refused transit is declared
//! again; steps are kept in order, and unsealing's hold and each step's timeline note
//! (a hand-off) are written with it.

use customs_common::testing::TestDatabase;
use field_platform::{
    outbox::{Job, Outbox, outbox},
    storage::{
        migrations,
        operations::{HoldRecord, OperationsRepository},
        transits::{Advance, TransitRecord, TransitRepository, TransitStepRecord},
    },
};
use time::OffsetDateTime;

async fn setup(database: &TestDatabase) -> (TransitRepository, OperationsRepository, Outbox) {
    let mut migrations = migrations().unwrap();
    database.database.migrate(&mut migrations).await.unwrap();
    (
        TransitRepository::new(database.database.clone()),
        OperationsRepository::new(database.database.clone()),
        outbox(database.database.clone()),
    )
}

/// The timeline note a step hands off (its content is the service's concern).
static NOTE: std::sync::LazyLock<Job> = std::sync::LazyLock::new(|| Job::NoteOnTimeline {
    declaration_number: "530120261000000007".into(),
    note: "TRANSIT_DECLARED".into(),
    house_code: "5300".into(),
    reason: "transit declared".into(),
    request_id: "transit-1".into(),
});

fn transit(number: &str) -> TransitRecord {
    TransitRecord {
        declaration_number: number.into(),
        state: "DECLARED".into(),
        departure_house: "5300".into(),
        destination_house: "5100".into(),
        vehicle_plate: "粤A54321".into(),
        seal_numbers: "[]".into(),
        lock_id: String::new(),
        tracker_id: String::new(),
    }
}

static STEPS: std::sync::atomic::AtomicUsize = std::sync::atomic::AtomicUsize::new(0);

fn step(state: &str, actor: &str) -> TransitStepRecord {
    TransitStepRecord {
        state: state.into(),
        actor: actor.into(),
        house_code: "5300".into(),
        // Whole seconds: both backends give back what they stored.
        at: OffsetDateTime::from_unix_timestamp(OffsetDateTime::now_utc().unix_timestamp())
            .unwrap(),
        note: String::new(),
        // Each step a request of its own.
        request_id: format!(
            "{state}-{actor}-{}",
            STEPS.fetch_add(1, std::sync::atomic::Ordering::Relaxed)
        ),
    }
}

fn advance<'a>(from: &'a str, step: &'a TransitStepRecord) -> Advance<'a> {
    Advance {
        from,
        step,
        seal_numbers: None,
        devices: None,
        hold: None,
        note: &NOTE,
    }
}

async fn steps_move_a_transit_once_and_in_order(
    (transits, operations, outbox): (TransitRepository, OperationsRepository, Outbox),
) {
    let number = "530120261000000007";
    assert!(
        transits
            .declare(&transit(number), &step("DECLARED", "broker"), &NOTE)
            .await
            .unwrap()
    );
    // Declared and not refused: not declared again.
    assert!(
        !transits
            .declare(&transit(number), &step("DECLARED", "broker"), &NOTE)
            .await
            .unwrap()
    );
    // Not from a state it is not in.
    let sealed = step("SEALED", "officer-a");
    assert!(
        !transits
            .advance(number, &advance("APPROVED", &sealed))
            .await
            .unwrap()
    );

    // Refused, then declared again.
    let refused = TransitStepRecord {
        note: "no customs-approved vehicle".into(),
        ..step("REFUSED", "officer-a")
    };
    assert!(
        transits
            .advance(number, &advance("DECLARED", &refused))
            .await
            .unwrap()
    );
    assert!(
        transits
            .declare(&transit(number), &step("DECLARED", "broker"), &NOTE)
            .await
            .unwrap()
    );
    let approved = step("APPROVED", "officer-a");
    assert!(
        transits
            .advance(number, &advance("DECLARED", &approved))
            .await
            .unwrap()
    );

    // Two officers seal at once: one moves it.
    let (a, b) = (step("SEALED", "officer-a"), step("SEALED", "officer-b"));
    let seals = r#"["GD000001"]"#;
    let seal_a = Advance {
        seal_numbers: Some(seals),
        devices: Some(("LOCK-1", "GPS-1")),
        ..advance("APPROVED", &a)
    };
    let seal_b = Advance {
        seal_numbers: Some(r#"["GD000002"]"#),
        devices: Some(("LOCK-1", "GPS-1")),
        ..advance("APPROVED", &b)
    };
    let (first, second) = tokio::join!(
        transits.advance(number, &seal_a),
        transits.advance(number, &seal_b)
    );
    assert_eq!(
        [first.unwrap(), second.unwrap()]
            .iter()
            .filter(|m| **m)
            .count(),
        1
    );

    // Sealed: its lock and tracker monitor it, nothing else does.
    for device in ["LOCK-1", "GPS-1"] {
        let sealed = transits.sealed_with_device(number, device).await.unwrap();
        assert_eq!(sealed.map(|t| t.state).as_deref(), Some("SEALED"));
    }
    for (number, device) in [
        (number, "GPS-2"),
        (number, ""),
        ("530120261000000008", "LOCK-1"),
    ] {
        assert_eq!(
            transits.sealed_with_device(number, device).await.unwrap(),
            None
        );
    }

    // Unsealing with its hold, in one step.
    let hold = HoldRecord {
        id: "HTRANSIT1".into(),
        declaration_number: number.into(),
        reason: "SEAL_BROKEN".into(),
        details: "seal(s) GD000001 put on at departure not found intact".into(),
        raised_at: OffsetDateTime::now_utc(),
        open: true,
        lifted_at: None,
        lifted_by: String::new(),
        lift_reason: String::new(),
    };
    let unsealed = step("UNSEALED", "officer-c");
    assert!(
        transits
            .advance(
                number,
                &Advance {
                    hold: Some(&hold),
                    ..advance("SEALED", &unsealed)
                }
            )
            .await
            .unwrap()
    );
    let holds = operations.holds(number).await.unwrap();
    assert_eq!(
        holds.iter().map(|h| h.reason.as_str()).collect::<Vec<_>>(),
        ["SEAL_BROKEN"]
    );

    assert_eq!(
        transits.sealed_with_device(number, "LOCK-1").await.unwrap(),
        None,
        "unsealed"
    );
    let (record, steps) = transits.get(number).await.unwrap().unwrap();
    assert_eq!(record.state, "UNSEALED");
    assert_eq!(
        (record.lock_id.as_str(), record.tracker_id.as_str()),
        ("LOCK-1", "GPS-1")
    );
    assert!(record.seal_numbers == seals || record.seal_numbers == r#"["GD000002"]"#);
    assert_eq!(
        steps.iter().map(|s| s.state.as_str()).collect::<Vec<_>>(),
        [
            "DECLARED", "REFUSED", "DECLARED", "APPROVED", "SEALED", "UNSEALED"
        ]
    );
    assert_eq!(steps[1], refused);
    // One note handed off per step taken; none for those refused.
    assert_eq!(outbox.pending().await.unwrap(), steps.len() as i64);
    assert_eq!(
        transits.state(number).await.unwrap().as_deref(),
        Some("UNSEALED")
    );
    assert_eq!(transits.get("530120261000000008").await.unwrap(), None);
}

customs_common::database_suite!(
    setup;
    steps_move_a_transit_once_and_in_order,
);
