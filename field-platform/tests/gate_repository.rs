//! Recording gate exits on PostgreSQL and SQLite: a PASS exits every declaration of the
//! check and queues one report per declaration, all or nothing; containers leave one
//! truck at a time, and a declaration with its last; nothing leaves while a hold is open
//! on it, even one raised after the gate read the records.

use customs_common::testing::{TestDatabase, upgrade_without_autoincrement};
use customs_proto::common::DeclarationStage;
use field_platform::{
    domain::{gate::Exit, transport::HoldReason},
    outbox::{Job, Outbox, outbox, report},
    storage::{
        migrations,
        operations::{EventRecord, HoldRecord, OperationsRepository, ReleaseRecord},
    },
};
use time::{Duration, OffsetDateTime};

async fn setup(database: &TestDatabase) -> (OperationsRepository, Outbox) {
    let mut migrations = migrations().unwrap();
    database.database.migrate(&mut migrations).await.unwrap();
    (
        OperationsRepository::new(database.database.clone()),
        outbox(database.database.clone()),
    )
}

async fn released(repository: &OperationsRepository, number: &str, containers: &[&str]) {
    let release = ReleaseRecord {
        declaration_number: number.into(),
        port_code: "5316".into(),
        integrated_mode: true,
        released_at: OffsetDateTime::now_utc() - Duration::minutes(5),
        exited_at: None,
        exit_gate: String::new(),
        exit_vehicle: String::new(),
    };
    assert!(
        repository
            .release(
                &release,
                &containers.iter().map(|c| c.to_string()).collect::<Vec<_>>(),
                &[]
            )
            .await
            .unwrap()
    );
}

/// Declarations leaving with all they have left.
fn whole(numbers: &[&str]) -> Vec<Exit> {
    numbers
        .iter()
        .map(|number| Exit {
            declaration_number: number.to_string(),
            containers: Vec::new(),
        })
        .collect()
}

fn exited(number: &str) -> Job {
    report(
        number,
        DeclarationStage::Exited,
        "5316",
        "exit through gate G1",
    )
}

async fn queued(outbox: &Outbox) -> Vec<Job> {
    let mut jobs: Vec<Job> = outbox
        .claim(100)
        .await
        .unwrap()
        .into_iter()
        .map(|claimed| claimed.job)
        .collect();
    jobs.sort_by_key(|job| format!("{job:?}"));
    jobs
}

async fn a_pass_exits_all_or_nothing_with_its_reports(
    (repository, outbox): (OperationsRepository, Outbox),
) {
    for (number, container) in [
        ("A", "MSKU1234565"),
        ("B", "TGHU7654321"),
        ("C", "CSQU3054383"),
    ] {
        released(&repository, number, &[container]).await;
    }
    // B leaves alone first.
    let (_, exited_b) = repository
        .record_gate(
            "r-b",
            "G2",
            "粤B12345",
            "pass-b",
            Some(&whole(&["B"])),
            &[exited("B")],
        )
        .await
        .unwrap();
    assert!(exited_b);
    // A and B together: B is gone, so neither exits and nothing is queued or stored.
    let both = whole(&["A", "B"]);
    let (answer, exited_ab) = repository
        .record_gate(
            "r-ab",
            "G1",
            "粤B12345",
            "pass-ab",
            Some(&both),
            &[exited("A"), exited("B")],
        )
        .await
        .unwrap();
    assert!(!exited_ab);
    assert_eq!(answer, "pass-ab", "nothing stored: the caller answers HOLD");
    assert_eq!(repository.gate_decision("r-ab").await.unwrap(), None);
    assert_eq!(
        repository
            .release_of("A")
            .await
            .unwrap()
            .unwrap()
            .release
            .exited_at,
        None
    );
    // A and C together: both exit, with one report each.
    let both = whole(&["A", "C"]);
    let (answer, exited_ac) = repository
        .record_gate(
            "r-ac",
            "G1",
            "粤B12345",
            "pass-ac",
            Some(&both),
            &[exited("A"), exited("C")],
        )
        .await
        .unwrap();
    assert_eq!((answer.as_str(), exited_ac), ("pass-ac", true));
    for number in ["A", "C"] {
        let facts = repository.release_of(number).await.unwrap().unwrap();
        assert_eq!(
            (
                facts.release.exit_gate.as_str(),
                facts.release.exit_vehicle.as_str()
            ),
            ("G1", "粤B12345")
        );
        assert!(facts.release.exited_at.is_some());
    }
    assert_eq!(
        queued(&outbox).await,
        vec![exited("A"), exited("B"), exited("C")]
    );
    // The same request again: the first answer, and no second report.
    let (again, exited_again) = repository
        .record_gate(
            "r-ac",
            "G1",
            "粤B12345",
            "pass-ac-2",
            Some(&both),
            &[exited("A"), exited("C")],
        )
        .await
        .unwrap();
    assert_eq!((again.as_str(), exited_again), ("pass-ac", false));
    assert_eq!(
        outbox.pending().await.unwrap(),
        3,
        "still the three reports"
    );
}

async fn containers_leave_one_truck_at_a_time_and_the_declaration_with_its_last(
    (repository, outbox): (OperationsRepository, Outbox),
) {
    released(&repository, "D", &["MSKU1234565", "TGHU7654321"]).await;
    let truck = |container: &str| {
        vec![Exit {
            declaration_number: "D".into(),
            containers: vec![container.into()],
        }]
    };
    let first = repository
        .record_gate(
            "r1",
            "G1",
            "粤B12345",
            "pass-1",
            Some(&truck("MSKU1234565")),
            &[exited("D")],
        )
        .await
        .unwrap();
    assert_eq!(first, ("pass-1".to_owned(), true));
    let facts = repository.release_of("D").await.unwrap().unwrap();
    assert_eq!(
        (facts.exited_containers, facts.release.exited_at),
        (vec!["MSKU1234565".to_owned()], None),
        "one container out, the declaration not yet"
    );
    assert_eq!(outbox.pending().await.unwrap(), 0, "no report yet");

    // Another gate with the same container: it has left.
    let (_, again) = repository
        .record_gate(
            "r2",
            "G2",
            "粤B12345",
            "pass-2",
            Some(&truck("MSKU1234565")),
            &[exited("D")],
        )
        .await
        .unwrap();
    assert!(!again);

    // The last container: the declaration leaves, reported once.
    let (_, last) = repository
        .record_gate(
            "r3",
            "G2",
            "粤B12345",
            "pass-3",
            Some(&truck("TGHU7654321")),
            &[exited("D")],
        )
        .await
        .unwrap();
    assert!(last);
    let facts = repository.release_of("D").await.unwrap().unwrap();
    assert_eq!(facts.exited_containers.len(), 2);
    assert_eq!(facts.release.exit_gate, "G2");
    assert!(facts.release.exited_at.is_some());
    assert_eq!(queued(&outbox).await, vec![exited("D")]);

    // Nothing is left to take out.
    let (_, nothing) = repository
        .record_gate(
            "r4",
            "G1",
            "粤B12345",
            "pass-4",
            Some(&whole(&["D"])),
            &[exited("D")],
        )
        .await
        .unwrap();
    assert!(!nothing);
}

/// A seal reported broken on `number`'s smart lock, raising its hold.
async fn seal_broken(repository: &OperationsRepository, number: &str) -> String {
    let event = EventRecord {
        declaration_number: number.into(),
        device_id: "LOCK-1".into(),
        kind: "SEAL_BROKEN".into(),
        latitude: Some(22.5),
        longitude: Some(113.9),
        at_site: String::new(),
        occurred_at: OffsetDateTime::now_utc(),
    };
    let hold = HoldRecord {
        id: format!("H-{number}"),
        declaration_number: number.into(),
        reason: "SEAL_BROKEN".into(),
        details: "the lock reported its seal broken".into(),
        raised_at: OffsetDateTime::now_utc(),
        open: true,
        lifted_at: None,
        lifted_by: String::new(),
        lift_reason: String::new(),
    };
    repository.record_event(&event, Some(&hold)).await.unwrap();
    hold.id
}

/// The gate read the records before the hold was raised and answers PASS: recording
/// it lets nothing out, whether the truck carries the containers or the declaration
/// leaves whole, and once the hold is lifted the goods leave.
async fn nothing_leaves_while_a_hold_is_open_on_it(
    (repository, outbox): (OperationsRepository, Outbox),
) {
    released(&repository, "E", &["MSKU1234565", "TGHU7654321"]).await;
    released(&repository, "F", &[]).await;
    let hold_e = seal_broken(&repository, "E").await;
    let hold_f = seal_broken(&repository, "F").await;
    let container = |containers: &[&str]| {
        vec![Exit {
            declaration_number: "E".into(),
            containers: containers.iter().map(|c| c.to_string()).collect(),
        }]
    };
    let attempts = [
        ("r-e1", container(&["MSKU1234565"]), vec![exited("E")]),
        ("r-e", whole(&["E"]), vec![exited("E")]),
        ("r-f", whole(&["F"]), vec![exited("F")]),
        ("r-ef", whole(&["E", "F"]), vec![exited("E"), exited("F")]),
    ];
    for (request, exits, reports) in &attempts {
        let (_, exited) = repository
            .record_gate(request, "G1", "粤B12345", "pass", Some(exits), reports)
            .await
            .unwrap();
        assert!(!exited, "{request} let goods out under an open hold");
        assert_eq!(repository.gate_decision(request).await.unwrap(), None);
    }
    for (number, containers) in [("E", 2), ("F", 0)] {
        let facts = repository.release_of(number).await.unwrap().unwrap();
        assert_eq!(
            (facts.release.exited_at, facts.exited_containers.len()),
            (None, 0),
            "{number}"
        );
        // The gate reads the holds with the release record, in one query that keeps
        // each container once.
        assert_eq!(
            (facts.open_holds, facts.containers.len()),
            (vec![HoldReason::SealBroken], containers),
            "{number}"
        );
    }
    assert_eq!(outbox.pending().await.unwrap(), 0, "no report queued");
    // Lifted, the holds no longer stop the goods: the first truck takes its container,
    // then F leaves whole.
    for hold in [hold_e, hold_f] {
        repository
            .lift_hold(&hold, "officer@5316", "lock replaced, goods checked")
            .await
            .unwrap()
            .expect("the hold is open");
    }
    for (request, exits, reports) in [&attempts[0], &attempts[2]] {
        let (_, exited) = repository
            .record_gate(request, "G1", "粤B12345", "pass", Some(exits), reports)
            .await
            .unwrap();
        assert!(exited, "{request}");
    }
    let facts = repository.release_of("E").await.unwrap().unwrap();
    assert_eq!(
        (facts.release.exited_at, facts.exited_containers),
        (None, vec!["MSKU1234565".to_owned()])
    );
    assert_eq!(facts.open_holds, vec![], "lifted holds are not open");
    assert_eq!(queued(&outbox).await, vec![exited("F")]);
}

customs_common::database_suite!(
    setup;
    a_pass_exits_all_or_nothing_with_its_reports,
    containers_leave_one_truck_at_a_time_and_the_declaration_with_its_last,
    nothing_leaves_while_a_hold_is_open_on_it,
);

/// An embedded database as the build before the ninth migration left it (gate checks
/// in a table of rowids with an index of request ids beside it, ids counted in
/// `sqlite_sequence`) keeps every row through the upgrade: a request id recorded before
/// it is still answered with its first decision and records nothing more, and a report
/// queued before it is delivered before one queued after.
#[tokio::test]
async fn an_embedded_database_keeps_its_gate_checks_and_reports_through_the_upgrade() {
    let database = TestDatabase::sqlite().await.unwrap();
    let mut before = migrations().unwrap();
    database.database.migrate_to(&mut before, 8).await.unwrap();
    let repository = OperationsRepository::new(database.database.clone());
    let outbox = outbox(database.database.clone());
    released(&repository, "A", &["MSKU1234565"]).await;
    released(&repository, "B", &["TGHU7654321"]).await;
    let pass_a = repository
        .record_gate(
            "r-a",
            "G1",
            "粤B12345",
            "pass-a",
            Some(&whole(&["A"])),
            &[exited("A")],
        )
        .await
        .unwrap();
    assert_eq!(pass_a, ("pass-a".to_owned(), true));
    repository
        .record_gate("r-hold", "G2", "粤B12345", "hold", None, &[])
        .await
        .unwrap();
    upgrade_without_autoincrement(&database, migrations().unwrap(), &["field_outbox"]).await;
    for (request, decision) in [("r-a", "pass-a"), ("r-hold", "hold")] {
        assert_eq!(
            repository.gate_decision(request).await.unwrap().as_deref(),
            Some(decision)
        );
    }
    let again = repository
        .record_gate(
            "r-a",
            "G3",
            "粤B12345",
            "pass-again",
            Some(&whole(&["B"])),
            &[exited("B")],
        )
        .await
        .unwrap();
    assert_eq!(
        again,
        ("pass-a".to_owned(), false),
        "answered as the first time"
    );
    assert_eq!(
        repository
            .release_of("B")
            .await
            .unwrap()
            .unwrap()
            .release
            .exited_at,
        None
    );
    let pass_b = repository
        .record_gate(
            "r-b",
            "G1",
            "粤B12345",
            "pass-b",
            Some(&whole(&["B"])),
            &[exited("B")],
        )
        .await
        .unwrap();
    assert_eq!(pass_b, ("pass-b".to_owned(), true));
    let claimed = outbox.claim(100).await.unwrap();
    assert_eq!(
        claimed.iter().map(|c| c.job.clone()).collect::<Vec<_>>(),
        vec![exited("A"), exited("B")]
    );
    assert!(claimed[0].id < claimed[1].id, "ids go on after the largest");
}
