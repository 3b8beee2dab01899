//! The instruction index of one replica follows instructions issued and revoked through
//! another (both on one database), and is not rebuilt when nothing changed; what a
//! replica issues or revokes itself it applies without a full build.

use std::sync::Arc;

use customs_common::{
    clients::{LocalRoutes, Peer, ServiceCredentials},
    config::Settings,
    db::Database,
    testing::TestDatabase,
};
use risk_platform::{
    domain::screening::{Conditions, Instruction, Lane, ScreenInput, ScreenItem},
    risk::{Peers, Risk},
    storage::{migrations, risk::RiskRepository},
};

async fn database(database: &TestDatabase) -> Database {
    let mut migrations = migrations().unwrap();
    database.database.migrate(&mut migrations).await.unwrap();
    database.database.clone()
}

fn replica(database: &Database) -> Risk {
    let settings: Settings = Settings::figment(None).extract().unwrap();
    let local = LocalRoutes::default();
    // Screening is not exercised here: the peers are never called.
    let peers = Peers {
        declaration: Peer::new("", &local).unwrap(),
        review: Peer::new("", &local).unwrap(),
        credentials: ServiceCredentials::new(
            "risk",
            &settings.auth,
            &settings.clients.service_token,
        )
        .unwrap(),
    };
    let schemes = customs_common::credit::CreditSchemes::new(&settings.credit).unwrap();
    Risk::new(
        RiskRepository::new(database.clone()),
        Arc::new(settings),
        Arc::new(schemes),
        peers,
    )
}

fn instruction(id: &str) -> Instruction {
    Instruction {
        id: id.into(),
        conditions: Conditions {
            hs_prefixes: vec!["0202".into()],
            ..Default::default()
        },
        lane: Lane::Red,
        order_inspection: false,
        valid_from: 0,
        valid_until: i64::MAX / 2,
        issuing_house: "5300".into(),
        reason: "residue alert".into(),
    }
}

async fn a_replica_rebuilds_its_index_only_when_instructions_change(database: Database) {
    let (issuing, other) = (replica(&database), replica(&database));
    assert!(
        other.refresh_index_if_changed().await.unwrap(),
        "built at start"
    );
    assert!(
        !other.refresh_index_if_changed().await.unwrap(),
        "nothing changed"
    );
    issuing
        .create_instruction("req-1", instruction("CI1"))
        .await
        .unwrap();
    assert!(
        other.refresh_index_if_changed().await.unwrap(),
        "an instruction was issued elsewhere"
    );
    assert!(!other.refresh_index_if_changed().await.unwrap());
    // The same request again issues nothing.
    issuing
        .create_instruction("req-1", instruction("CI1"))
        .await
        .unwrap();
    assert!(!other.refresh_index_if_changed().await.unwrap());
    issuing.revoke_instruction("CI1", "lifted").await.unwrap();
    assert!(
        other.refresh_index_if_changed().await.unwrap(),
        "an instruction was revoked elsewhere"
    );
    assert!(!other.refresh_index_if_changed().await.unwrap());
    // The issuing replica applied what it issued and revoked to its own index.
    assert!(!issuing.refresh_index_if_changed().await.unwrap());
}

async fn a_replica_screens_with_the_instructions_even_before_its_first_refresh(database: Database) {
    replica(&database)
        .create_instruction("req-1", instruction("CI1"))
        .await
        .unwrap();
    // Just started: no refresh has run yet, and the first screening must not see an
    // empty index.
    let started = replica(&database);
    assert_eq!(started.current_index().await.unwrap().len(), 1);
    assert!(!started.refresh_index_if_changed().await.unwrap());
}

/// A frozen-beef declaration: what `instruction` hits.
fn beef() -> ScreenInput {
    ScreenInput {
        declaration_number: "530120261000000001".into(),
        enterprise_code: "4403960001".into(),
        port_code: "5316".into(),
        trade_mode: "0110".into(),
        clearance_mode: "REGIONAL_INTEGRATED".into(),
        credit_class: "GENERAL_CREDIT".into(),
        items: vec![ScreenItem {
            line_no: 1,
            hs_code: "0202300090".into(),
            origin_country: "AU".into(),
            unit_value_cny: None,
        }],
        at: 1_800_000_000,
    }
}

async fn hits(replica: &Risk) -> Vec<String> {
    let index = replica.current_index().await.unwrap();
    index
        .screen(&beef())
        .iter()
        .map(|hit| hit.instruction_id.to_owned())
        .collect()
}

async fn a_replica_applies_what_it_issues_and_revokes_without_a_full_build(database: Database) {
    let (issuing, other) = (replica(&database), replica(&database));
    assert!(hits(&issuing).await.is_empty());
    let built = issuing.full_index_builds();
    assert_eq!(built, 1, "built once, for the first screening");
    issuing
        .create_instruction("req-1", instruction("CI1"))
        .await
        .unwrap();
    assert_eq!(hits(&issuing).await, ["CI1"], "applied at once");
    let revoked = issuing.revoke_instruction("CI1", "lifted").await.unwrap();
    assert!(revoked.revoked);
    assert!(hits(&issuing).await.is_empty(), "revoked at once");
    assert_eq!(issuing.full_index_builds(), built, "without a full build");
    assert!(!issuing.refresh_index_if_changed().await.unwrap());
    // A retried revocation changes nothing: the first one's reason stands.
    let again = issuing.revoke_instruction("CI1", "retry").await.unwrap();
    assert_eq!(
        (again.revocation_reason.as_str(), again.revoked_at),
        ("lifted", revoked.revoked_at)
    );
    // Issued elsewhere meanwhile: the next change here is not the only one since the
    // index was built, so it is built in full and finds both.
    other
        .create_instruction("req-2", instruction("CI2"))
        .await
        .unwrap();
    issuing
        .create_instruction("req-3", instruction("CI3"))
        .await
        .unwrap();
    assert_eq!(hits(&issuing).await, ["CI2", "CI3"]);
    assert_eq!(issuing.full_index_builds(), built + 1);
    assert!(!issuing.refresh_index_if_changed().await.unwrap());
    // Unknown ones are still not found.
    let unknown = issuing
        .revoke_instruction("CI9", "lifted")
        .await
        .unwrap_err();
    assert_eq!(unknown.reason(), "INSTRUCTION_NOT_FOUND");
}

customs_common::database_suite!(
    database;
    a_replica_applies_what_it_issues_and_revokes_without_a_full_build,
    a_replica_rebuilds_its_index_only_when_instructions_change,
    a_replica_screens_with_the_instructions_even_before_its_first_refresh,
);
