//! The instruction index of one replica follows instructions issued and revoked through
//! another (both on one database), and is not rebuilt when nothing changed.

use std::sync::Arc;

use customs_common::{
    clients::{LocalRoutes, Peer, ServiceCredentials},
    config::Settings,
    db::Database,
    testing::TestDatabase,
};
use risk_platform::{
    domain::screening::{Conditions, Instruction, Lane},
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
    Risk::new(
        RiskRepository::new(database.clone()),
        Arc::new(settings),
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
    // The issuing replica rebuilt its own index when it issued and revoked.
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

customs_common::database_suite!(
    database;
    a_replica_rebuilds_its_index_only_when_instructions_change,
    a_replica_screens_with_the_instructions_even_before_its_first_refresh,
);
