//! One repository suite for declarations, run against PostgreSQL and SQLite.

use customs_common::testing::{TestDatabase, upgrade_without_autoincrement};
use declaration_platform::{
    domain::lifecycle::{Note, Stage},
    outbox::{Job, Outbox},
    storage::{
        changes::{ChangeRecord, ChangeRepository},
        declarations::{
            ChangeDecision, DeclarationFilter, DeclarationRepository, NewDeclaration, NewNote,
            Transition,
        },
        migrations,
    },
};

struct Fixture {
    declarations: DeclarationRepository,
    changes: ChangeRepository,
    outbox: Outbox,
}

async fn fixture(database: &TestDatabase) -> Fixture {
    for _ in 0..2 {
        let mut migrations = migrations().unwrap();
        database.database.migrate(&mut migrations).await.unwrap();
    }
    Fixture {
        declarations: DeclarationRepository::new(database.database.clone()),
        changes: ChangeRepository::new(database.database.clone()),
        outbox: declaration_platform::outbox::outbox(database.database.clone()),
    }
}

fn new(request_id: &str, office: &str, flag: char) -> NewDeclaration {
    NewDeclaration {
        request_id: request_id.into(),
        enterprise_code: "4403960001".into(),
        broker_code: "4403980001".into(),
        declaring_office: office.into(),
        handling_house: format!("{}00", &office[..2]),
        direction_flag: flag,
        year: 2026,
        content: vec![1, 2, 3],
        actor: "broker@5300".into(),
    }
}

/// Screening's step: the declaration passed the logic checks, making `jobs`.
fn accepted(jobs: Vec<Job>) -> Transition {
    Transition {
        to: Stage::Accepted,
        actor: "risk-platform".into(),
        house_code: "5300".into(),
        reason: "checks passed".into(),
        lane: None,
        review_sub_centre: None,
        content: None,
        jobs,
        decides: None,
    }
}

async fn numbers_follow_site_year_and_direction_without_gaps(f: Fixture) {
    let (first, created) = f.declarations.submit(&new("a", "5301", '1')).await.unwrap();
    assert!(created);
    assert_eq!(first.declaration_number, "530120261000000001");
    let (again, created) = f.declarations.submit(&new("a", "5301", '1')).await.unwrap();
    assert!(!created);
    assert_eq!(again.declaration_number, first.declaration_number);
    // A batch: two sites, both directions, and a request repeated inside the batch.
    let batch = [
        new("b", "5301", '1'),
        new("c", "5301", '0'),
        new("b", "5301", '1'),
        new("d", "5101", '1'),
        new("e", "5301", '1'),
    ];
    let answers = f.declarations.submit_batch(&batch).await.unwrap();
    let numbers: Vec<_> = answers
        .iter()
        .map(|(record, _)| record.declaration_number.as_str())
        .collect();
    assert_eq!(
        numbers,
        [
            "530120261000000002",
            "530120260000000001",
            "530120261000000002",
            "510120261000000001",
            "530120261000000003"
        ]
    );
    assert_eq!(
        answers
            .iter()
            .map(|(_, created)| *created)
            .collect::<Vec<_>>(),
        [true, true, false, true, true]
    );
    // Every new declaration carries its first event and its screening hand-off.
    assert_eq!(f.outbox.pending().await.unwrap(), 5);
    let claimed = f.outbox.claim(10).await.unwrap();
    let handed: Vec<&str> = claimed
        .iter()
        .map(|c| match &c.job {
            Job::ScreenDeclaration {
                declaration_number,
                revision: 0,
            } => declaration_number.as_str(),
            other => panic!("unexpected hand-off {other:?}"),
        })
        .collect();
    for (record, created) in &answers {
        assert!(
            !created || handed.contains(&record.declaration_number.as_str()),
            "{} is handed to screening",
            record.declaration_number
        );
    }
    assert!(
        f.outbox.claim(10).await.unwrap().is_empty(),
        "claimed jobs are not handed out twice"
    );
    let events = f.declarations.events("530120261000000001").await.unwrap();
    assert_eq!(
        (events.len(), events[0].to_stage.as_str()),
        (1, "SUBMITTED")
    );
    // A batch holding a request stored before: the first write fails on it and leaves
    // nothing, the second answers it with the first and numbers the rest without a gap.
    let again = f
        .declarations
        .submit_batch(&[
            new("f", "5301", '1'),
            new("c", "5301", '0'),
            new("g", "5301", '1'),
        ])
        .await
        .unwrap();
    assert_eq!(
        again
            .iter()
            .map(|(record, created)| (record.declaration_number.as_str(), *created))
            .collect::<Vec<_>>(),
        [
            ("530120261000000004", true),
            ("530120260000000001", false),
            ("530120261000000005", true)
        ]
    );
    let mut handed: Vec<String> = f
        .outbox
        .claim(10)
        .await
        .unwrap()
        .into_iter()
        .map(|claimed| match claimed.job {
            Job::ScreenDeclaration {
                declaration_number,
                revision: 0,
            } => declaration_number,
            other => panic!("unexpected hand-off {other:?}"),
        })
        .collect();
    handed.sort();
    assert_eq!(
        handed,
        ["530120261000000004", "530120261000000005"],
        "one hand-off for each new declaration, none for the one stored before"
    );
}

async fn transitions_append_events_and_refuse_a_stale_version(f: Fixture) {
    let (record, _) = f.declarations.submit(&new("a", "5301", '1')).await.unwrap();
    let number = record.declaration_number.clone();
    // A hand-off the step makes is written with it, and only with it.
    let accepted = accepted(vec![Job::ScreenDeclaration {
        declaration_number: number.clone(),
        revision: 1,
    }]);
    assert_eq!(f.outbox.pending().await.unwrap(), 1, "the submission's");
    let at = f
        .declarations
        .transition(
            &number,
            Stage::Submitted,
            record.version,
            std::slice::from_ref(&accepted),
        )
        .await
        .unwrap()
        .expect("moved");
    assert_eq!(
        f.declarations.get(&number).await.unwrap().unwrap(),
        record.clone().moved(accepted.clone(), at),
        "the record as moved in memory is the record as stored"
    );
    assert!(
        f.declarations
            .transition(
                &number,
                Stage::Submitted,
                record.version,
                std::slice::from_ref(&accepted)
            )
            .await
            .unwrap()
            .is_none(),
        "a transition read at an old version loses"
    );
    assert_eq!(
        f.outbox.pending().await.unwrap(),
        2,
        "the step's hand-off, once: the stale attempt wrote none"
    );
    let lane = Transition {
        to: Stage::LaneDecided,
        lane: Some("RED".into()),
        jobs: Vec::new(),
        ..accepted.clone()
    };
    let decide_lane = || {
        f.declarations.transition(
            &number,
            Stage::Accepted,
            record.version + 1,
            std::slice::from_ref(&lane),
        )
    };
    assert!(decide_lane().await.unwrap().is_some());
    // A step without hand-offs takes SQLite's one-step transaction: it loses alike.
    assert!(
        decide_lane().await.unwrap().is_none(),
        "a transition without hand-offs read at an old version loses too"
    );
    let stored = f.declarations.get(&number).await.unwrap().unwrap();
    assert_eq!(
        (stored.stage, stored.lane.as_str(), stored.version),
        (Stage::LaneDecided, "RED", 3)
    );
    let events = f.declarations.events(&number).await.unwrap();
    assert_eq!(
        events
            .iter()
            .map(|e| e.to_stage.as_str())
            .collect::<Vec<_>>(),
        ["SUBMITTED", "ACCEPTED", "LANE_DECIDED"]
    );
    assert_eq!(events[1].from_stage, "SUBMITTED");
    let (first_number, first_events) = (number.clone(), events);

    // Two steps in one transaction (as screening records them, without hand-offs):
    // one update, an event for each.
    let (record, _) = f.declarations.submit(&new("b", "5301", '1')).await.unwrap();
    let number = record.declaration_number.clone();
    let accepted = Transition {
        jobs: Vec::new(),
        ..accepted
    };
    let steps = [
        accepted.clone(),
        Transition {
            to: Stage::LaneDecided,
            lane: Some("YELLOW".into()),
            ..accepted.clone()
        },
    ];
    let at = f
        .declarations
        .transition(&number, Stage::Submitted, record.version, &steps)
        .await
        .unwrap()
        .expect("moved");
    let stored = f.declarations.get(&number).await.unwrap().unwrap();
    let [first, second] = steps;
    assert_eq!(
        stored,
        record.moved(first, at).moved(second, at),
        "both steps as moved in memory are the record as stored"
    );
    assert_eq!(
        (stored.stage, stored.lane.as_str(), stored.version),
        (Stage::LaneDecided, "YELLOW", 3)
    );
    let events = f.declarations.events(&number).await.unwrap();
    assert_eq!(
        events
            .iter()
            .map(|e| (e.from_stage.as_str(), e.to_stage.as_str()))
            .collect::<Vec<_>>(),
        [
            ("", "SUBMITTED"),
            ("SUBMITTED", "ACCEPTED"),
            ("ACCEPTED", "LANE_DECIDED")
        ]
    );

    // Both timelines in one read (a list's page), each in its order; a number with
    // no declaration has none.
    let mut timelines = f
        .declarations
        .events_of(&[
            number.clone(),
            "530120269999999999".into(),
            first_number.clone(),
        ])
        .await
        .unwrap();
    assert_eq!(timelines.len(), 2);
    assert_eq!(timelines.remove(&first_number), Some(first_events));
    assert_eq!(timelines.remove(&number), Some(events));
    assert!(f.declarations.events_of(&[]).await.unwrap().is_empty());
}

async fn lists_filter_by_party_office_and_stage_and_page(f: Fixture) {
    for (id, office) in [("a", "5301"), ("b", "5301"), ("c", "5101")] {
        f.declarations.submit(&new(id, office, '1')).await.unwrap();
    }
    let mut other = new("d", "5301", '1');
    other.enterprise_code = "4403960002".into();
    other.broker_code = String::new();
    f.declarations.submit(&other).await.unwrap();
    let count = |filter: DeclarationFilter| {
        let declarations = f.declarations.clone();
        async move { declarations.list(&filter).await.unwrap().len() }
    };
    let base = DeclarationFilter {
        limit: 10,
        ..Default::default()
    };
    assert_eq!(count(base.clone()).await, 4);
    assert_eq!(
        count(DeclarationFilter {
            party: Some("4403980001".into()),
            ..base.clone()
        })
        .await,
        3,
        "the broker's"
    );
    assert_eq!(
        count(DeclarationFilter {
            party: Some("4403960002".into()),
            ..base.clone()
        })
        .await,
        1
    );
    assert_eq!(
        count(DeclarationFilter {
            declaring_office: Some("5101".into()),
            ..base.clone()
        })
        .await,
        1
    );
    assert_eq!(
        count(DeclarationFilter {
            stage: Some(Stage::Accepted),
            ..base.clone()
        })
        .await,
        0
    );
    let first_page = f
        .declarations
        .list(&DeclarationFilter {
            limit: 2,
            ..base.clone()
        })
        .await
        .unwrap();
    let after = first_page.last().unwrap().declaration_number.clone();
    assert_eq!(
        count(DeclarationFilter {
            after: Some(after),
            ..base
        })
        .await,
        2
    );
}

/// A note is recorded at the stage the declaration is at, leaves the declaration as it
/// is, and is recorded once per key (also two at once).
async fn notes_sit_on_the_timeline_once_per_key(f: Fixture) {
    let (record, _) = f.declarations.submit(&new("n", "5301", '1')).await.unwrap();
    let number = record.declaration_number.clone();
    let note = |note: Note, key: &str| NewNote {
        note,
        key: key.into(),
        actor: "field-platform".into(),
        house_code: "5300".into(),
        reason: "transit sealed".into(),
    };
    let sealed = note(Note::TransitSealed, "transit-1");
    let (first, second) = tokio::join!(
        f.declarations.note(&number, &sealed),
        f.declarations.note(&number, &sealed)
    );
    let mut answers = [first.unwrap(), second.unwrap()];
    answers.sort();
    assert_eq!(answers, [Some(false), Some(true)]);
    assert_eq!(
        f.declarations
            .note(&number, &note(Note::TransitUnsealed, "transit-2"))
            .await
            .unwrap(),
        Some(true)
    );
    // The same key on another declaration is a note of its own; none without one.
    let (other, _) = f.declarations.submit(&new("o", "5301", '1')).await.unwrap();
    assert_eq!(
        f.declarations
            .note(&other.declaration_number, &sealed)
            .await
            .unwrap(),
        Some(true)
    );
    assert_eq!(
        f.declarations
            .note("530120261999999999", &sealed)
            .await
            .unwrap(),
        None
    );

    let events = f.declarations.events(&number).await.unwrap();
    assert_eq!(
        events
            .iter()
            .map(|e| (e.from_stage.as_str(), e.to_stage.as_str(), e.note.as_str()))
            .collect::<Vec<_>>(),
        [
            ("", "SUBMITTED", ""),
            ("SUBMITTED", "SUBMITTED", "TRANSIT_SEALED"),
            ("SUBMITTED", "SUBMITTED", "TRANSIT_UNSEALED"),
        ]
    );
    assert_eq!(
        (events[1].house_code.as_str(), events[1].reason.as_str()),
        ("5300", "transit sealed")
    );
    let after = f.declarations.get(&number).await.unwrap().unwrap();
    assert_eq!(
        (after.stage, after.version, after.updated_at),
        (record.stage, record.version, record.updated_at)
    );
}

/// A step that applies a change request records its decision in the step's own
/// transaction: a step that loses to a newer version leaves the request pending (to be
/// decided when the decision is delivered again), and one that commits leaves it
/// decided, so that a decision delivered again does not apply the change twice.
async fn a_change_is_decided_with_the_step_that_applies_it(f: Fixture) {
    let (record, _) = f.declarations.submit(&new("c", "5301", '1')).await.unwrap();
    let number = record.declaration_number.clone();
    let at = record.submitted_at;
    let change = ChangeRecord {
        id: "CR1".into(),
        request_id: "cancel-c".into(),
        declaration_number: number.clone(),
        kind: "CANCELLATION".into(),
        state: "PENDING".into(),
        reason: "order withdrawn".into(),
        proposed_content: None,
        deciding_house: String::new(),
        requested_by: "broker@5300".into(),
        requested_at: at,
        decided_at: None,
        decision_reason: String::new(),
    };
    assert!(f.changes.insert(&change).await.unwrap());
    let approval = ChangeDecision {
        change_request_id: "CR1".into(),
        state: "APPROVED",
        house_code: "5300".into(),
        reason: "the order was withdrawn".into(),
    };
    let cancelled = Transition {
        to: Stage::Cancelled,
        actor: "reviewer@5300".into(),
        house_code: "5300".into(),
        reason: "cancellation approved".into(),
        lane: None,
        review_sub_centre: None,
        content: None,
        jobs: Vec::new(),
        decides: Some(approval),
    };
    let stale = f
        .declarations
        .transition(
            &number,
            Stage::Submitted,
            record.version - 1,
            std::slice::from_ref(&cancelled),
        )
        .await
        .unwrap();
    assert_eq!(stale, None);
    let pending = f.changes.get("CR1").await.unwrap().unwrap();
    assert_eq!(
        (pending.state.as_str(), pending.decided_at),
        ("PENDING", None),
        "a step that lost decides nothing"
    );

    let at = f
        .declarations
        .transition(
            &number,
            Stage::Submitted,
            record.version,
            std::slice::from_ref(&cancelled),
        )
        .await
        .unwrap()
        .expect("moved");
    let decided = f.changes.get("CR1").await.unwrap().unwrap();
    assert_eq!(
        (
            decided.state.as_str(),
            decided.deciding_house.as_str(),
            decided.decision_reason.as_str(),
            decided.decided_at
        ),
        ("APPROVED", "5300", "the order was withdrawn", Some(at))
    );
    assert_eq!(
        f.declarations.get(&number).await.unwrap().unwrap().stage,
        Stage::Cancelled
    );
    // Decided already: a later decision changes nothing, and its hand-offs are not
    // written.
    let rejection = ChangeDecision {
        state: "REJECTED",
        ..cancelled.decides.clone().unwrap()
    };
    let give_back = Job::ReturnLicenceDraws {
        declaration_number: number.clone(),
        ruling_ids: vec!["LIC1".into()],
    };
    let pending = f.outbox.pending().await.unwrap();
    assert!(
        !f.changes
            .decide(&rejection, std::slice::from_ref(&give_back))
            .await
            .unwrap()
    );
    assert_eq!(
        f.changes.get("CR1").await.unwrap().unwrap().state,
        "APPROVED"
    );
    assert_eq!(f.outbox.pending().await.unwrap(), pending);
    // A pending one is decided with its hand-offs.
    let other = ChangeRecord {
        id: "CR2".into(),
        request_id: "cancel-c-2".into(),
        ..change
    };
    assert!(f.changes.insert(&other).await.unwrap());
    let pending = f.outbox.pending().await.unwrap();
    let rejection = ChangeDecision {
        change_request_id: "CR2".into(),
        ..rejection
    };
    assert!(f.changes.decide(&rejection, &[give_back]).await.unwrap());
    assert_eq!(
        f.changes.get("CR2").await.unwrap().unwrap().state,
        "REJECTED"
    );
    assert_eq!(f.outbox.pending().await.unwrap(), pending + 1);
}

customs_common::database_suite!(
    fixture;
    a_change_is_decided_with_the_step_that_applies_it,
    notes_sit_on_the_timeline_once_per_key,
    numbers_follow_site_year_and_direction_without_gaps,
    transitions_append_events_and_refuse_a_stale_version,
    lists_filter_by_party_office_and_stage_and_page,
);

/// An embedded database as the build before the eighth migration left it (event and
/// outbox ids counted in `sqlite_sequence`) keeps every row through the upgrade: a
/// timeline goes on in order after it, and hand-offs queued after it are claimed after
/// those queued before.
#[tokio::test]
async fn an_embedded_database_keeps_its_timelines_and_hand_offs_through_the_upgrade() {
    let database = TestDatabase::sqlite().await.unwrap();
    let mut before = migrations().unwrap();
    database.database.migrate_to(&mut before, 7).await.unwrap();
    let declarations = DeclarationRepository::new(database.database.clone());
    let outbox = declaration_platform::outbox::outbox(database.database.clone());
    let (a, _) = declarations.submit(&new("a", "5301", '1')).await.unwrap();
    let number = a.declaration_number.clone();
    let timeline = declarations.events(&number).await.unwrap();
    assert_eq!(timeline.len(), 1, "SUBMITTED");
    upgrade_without_autoincrement(
        &database,
        migrations().unwrap(),
        &["declaration_events", "outbox"],
    )
    .await;
    assert_eq!(declarations.events(&number).await.unwrap(), timeline);
    declarations
        .transition(
            &number,
            Stage::Submitted,
            a.version,
            &[accepted(Vec::new())],
        )
        .await
        .unwrap()
        .expect("moved");
    let events = declarations.events(&number).await.unwrap();
    assert_eq!(events.len(), 2);
    assert_eq!(events[..1], timeline[..]);
    assert_eq!(
        (events[1].from_stage.as_str(), events[1].to_stage.as_str()),
        ("SUBMITTED", "ACCEPTED")
    );
    let (b, _) = declarations.submit(&new("b", "5301", '1')).await.unwrap();
    let claimed = outbox.claim(100).await.unwrap();
    let screened: Vec<&str> = claimed
        .iter()
        .map(|c| match &c.job {
            Job::ScreenDeclaration {
                declaration_number, ..
            } => declaration_number.as_str(),
            other => panic!("unexpected hand-off {other:?}"),
        })
        .collect();
    assert_eq!(screened, [number.as_str(), b.declaration_number.as_str()]);
    assert!(claimed[0].id < claimed[1].id, "ids go on after the largest");
}
