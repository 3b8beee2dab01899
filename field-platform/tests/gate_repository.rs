//! Recording gate exits on PostgreSQL and SQLite: a PASS exits every declaration of the
//! check and queues one report per declaration, all or nothing; containers leave one
//! truck at a time, and a declaration with its last.

use customs_common::testing::TestDatabase;
use customs_proto::common::DeclarationStage;
use field_platform::{
    domain::gate::Exit,
    outbox::{Job, Outbox, outbox, report},
    storage::{
        migrations,
        operations::{OperationsRepository, ReleaseRecord},
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

customs_common::database_suite!(
    setup;
    a_pass_exits_all_or_nothing_with_its_reports,
    containers_leave_one_truck_at_a_time_and_the_declaration_with_its_last,
);
