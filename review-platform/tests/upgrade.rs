//! An embedded database as the build before the fifth migration left it (event and
//! outbox ids counted in `sqlite_sequence`) keeps its review timelines and hand-offs
//! through the upgrade, and ids go on after the largest.

use customs_common::{
    db::Database,
    testing::{TestDatabase, upgrade_without_autoincrement},
};
use review_platform::{outbox::outbox, storage::migrations, storage::tasks::TaskRepository};

/// A task routed to Huangpu, its enqueue event and its report to the declaration
/// platform, as the build before wrote them.
const BEFORE: &str = r#"
INSERT INTO review_tasks (id, request_id, kind, state, declaration_number, sub_centre, lane,
    routing, enqueued_at, updated_at)
VALUES ('RT1', 'review-530120261000000001', 'DECLARATION_REVIEW', 'QUEUED', '530120261000000001',
    '5200', 'YELLOW', '{"sub_centre":"5200","sums":[],"table_version":1,"basis":"SingleSubCentre"}',
    '2026-11-29T09:43:00Z', '2026-11-29T09:43:00Z');
INSERT INTO review_events (task_id, declaration_number, action, actor, sub_centre, reason,
    occurred_ms, occurred_at)
VALUES ('RT1', '530120261000000001', 'enqueue', 'declaration-platform', '5200',
    'single sub-centre', 1795945380150, '2026-11-29T09:43:00Z');
INSERT INTO review_outbox (kind, job_key, payload, created_at, next_attempt_at)
VALUES ('report_transition', '530120261000000001',
    '{"kind":"report_transition","declaration_number":"530120261000000001","to_stage":"DECLARATION_STAGE_UNDER_REVIEW","house_code":"5200","reason":"routed to the review sub-centre","review_sub_centre":"5200"}',
    '2026-11-29T09:43:00Z', 0);
"#;

/// The task claimed after the upgrade: its event and its report.
const AFTER: &str = r#"
INSERT INTO review_events (task_id, declaration_number, action, actor, sub_centre, reason,
    occurred_ms, occurred_at)
VALUES ('RT1', '530120261000000001', 'claim', 'reviewer@5200', '5200', 'claimed',
    1795945390150, '2026-11-29T09:43:10Z');
INSERT INTO review_outbox (kind, job_key, payload, created_at, next_attempt_at)
VALUES ('report_transition', '530120261000000002',
    '{"kind":"report_transition","declaration_number":"530120261000000002","to_stage":"DECLARATION_STAGE_UNDER_REVIEW","house_code":"5200","reason":"routed to the review sub-centre","review_sub_centre":"5200"}',
    '2026-11-29T09:43:10Z', 0);
"#;

async fn run(database: &TestDatabase, sql: &'static str) {
    let Database::Sqlite(sqlite) = &database.database else {
        panic!("an embedded database");
    };
    sqlx::raw_sql(sql).execute(&sqlite.writer).await.unwrap();
}

#[tokio::test]
async fn an_embedded_database_keeps_its_review_events_and_hand_offs_through_the_upgrade() {
    let database = TestDatabase::sqlite().await.unwrap();
    let mut before = migrations().unwrap();
    database.database.migrate_to(&mut before, 4).await.unwrap();
    run(&database, BEFORE).await;
    upgrade_without_autoincrement(
        &database,
        migrations().unwrap(),
        &["review_events", "review_outbox"],
    )
    .await;
    run(&database, AFTER).await;
    let tasks = TaskRepository::new(database.database.clone());
    let actions: Vec<String> = tasks
        .events("RT1")
        .await
        .unwrap()
        .into_iter()
        .map(|(action, ..)| action)
        .collect();
    assert_eq!(actions, ["enqueue", "claim"]);
    let claimed = outbox(database.database.clone()).claim(10).await.unwrap();
    assert_eq!(
        claimed.iter().map(|c| c.id).collect::<Vec<_>>(),
        [1, 2],
        "ids go on after the largest"
    );
}
