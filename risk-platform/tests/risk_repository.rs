//! One repository suite for the risk platform, run against PostgreSQL and SQLite.

use std::collections::BTreeMap;

use customs_common::testing::TestDatabase;
use risk_platform::{
    domain::screening::{Conditions, Decision, Hits, Instruction, Lane, SamplingRates},
    storage::{
        migrations,
        risk::{DecisionRecord, Parameters, RiskRepository},
    },
};
use rust_decimal::Decimal;
use time::OffsetDateTime;

async fn repository(database: &TestDatabase) -> RiskRepository {
    for _ in 0..2 {
        let mut migrations = migrations().unwrap();
        database.database.migrate(&mut migrations).await.unwrap();
    }
    RiskRepository::new(database.database.clone())
}

fn instruction(id: &str, valid_until: i64) -> Instruction {
    Instruction {
        id: id.into(),
        conditions: Conditions {
            hs_prefixes: vec!["0202".into()],
            min_unit_value_cny: Some(Decimal::new(125, 1)),
            ..Default::default()
        },
        lane: Lane::Red,
        order_inspection: true,
        valid_from: 0,
        valid_until,
        issuing_house: "5300".into(),
        reason: "residue alert".into(),
    }
}

async fn instructions_are_stored_once_listed_and_revoked(repository: RiskRepository) {
    let (stored, created) = repository
        .insert_instruction("req-1", &instruction("CI1", i64::MAX / 2))
        .await
        .unwrap();
    assert_eq!(created, Some((1, 0)), "one issued, none revoked");
    assert_eq!(
        stored.instruction,
        instruction("CI1", i64::MAX / 2),
        "conditions survive the database"
    );
    let (again, created) = repository
        .insert_instruction("req-1", &instruction("CI9", 1))
        .await
        .unwrap();
    assert_eq!(created, None, "a retry issues nothing");
    assert_eq!(again.instruction.id, "CI1");
    let (_, created) = repository
        .insert_instruction("req-2", &instruction("CI2", 1_000))
        .await
        .unwrap();
    assert_eq!(created, Some((2, 0)));
    assert_eq!(
        repository.active_instructions(2_000).await.unwrap().len(),
        1,
        "expired ones are not active"
    );
    assert_eq!(
        repository
            .revoke_instruction("CI1", "lifted")
            .await
            .unwrap(),
        Some((2, 1))
    );
    let revoked = repository.instruction("CI1").await.unwrap().unwrap();
    assert_eq!(
        repository.revoke_instruction("CI1", "again").await.unwrap(),
        None,
        "revoked once"
    );
    assert_eq!(
        repository
            .revoke_instruction("CI7", "lifted")
            .await
            .unwrap(),
        None
    );
    assert_eq!(
        repository.instruction_set_counters().await.unwrap(),
        (2, 1),
        "counted in the same transactions"
    );
    let again = repository.instruction("CI1").await.unwrap().unwrap();
    assert_eq!(
        (again.revocation_reason.as_str(), again.revoked_at),
        ("lifted", revoked.revoked_at),
        "the first revocation stands"
    );
    assert!(
        repository
            .active_instructions(0)
            .await
            .unwrap()
            .iter()
            .all(|i| i.id != "CI1")
    );
    assert_eq!(
        repository
            .instructions(Some(true), None, None, 10)
            .await
            .unwrap()
            .len(),
        1
    );
    assert_eq!(
        repository
            .instructions(None, Some("5300"), Some("CI1"), 10)
            .await
            .unwrap()
            .len(),
        1
    );
}

async fn parameters_are_versioned_and_updates_do_not_cross(repository: RiskRepository) {
    assert_eq!(repository.parameters().await.unwrap(), None);
    let parameters = Parameters {
        sampling: BTreeMap::from([(
            "GENERAL_CREDIT".to_owned(),
            SamplingRates {
                red: Decimal::new(3, 2),
                yellow: Decimal::new(1, 1),
                blue: Decimal::ZERO,
            },
        )]),
        sampling_seed: "s1".into(),
        land_port_integrated_from: "2014-12-01".into(),
    };
    assert!(
        repository
            .put_parameters(0, &parameters, "admin")
            .await
            .unwrap()
    );
    assert!(
        !repository
            .put_parameters(0, &parameters, "admin")
            .await
            .unwrap(),
        "a stale version loses"
    );
    let stored = repository.parameters().await.unwrap().unwrap();
    assert_eq!((stored.version, stored.parameters), (1, parameters));
}

async fn a_declaration_is_decided_once_per_revision(repository: RiskRepository) {
    let decision = |lane, revision| DecisionRecord {
        decision_id: format!("D-{lane:?}-{revision}"),
        declaration_number: "530120261000000001".into(),
        revision,
        decision: Decision {
            lane,
            hits: Hits::default(),
            draw: Decimal::new(5, 1),
            sampled: None,
            inspection_ordered: false,
        },
        parameters_version: 0,
        credit_class: "GENERAL_CREDIT".into(),
        decided_at: OffsetDateTime::now_utc().replace_nanosecond(0).unwrap(),
    };
    let first = repository
        .insert_decision(&decision(Lane::Green, 0))
        .await
        .unwrap();
    let second = repository
        .insert_decision(&decision(Lane::Red, 0))
        .await
        .unwrap();
    assert_eq!(second, first, "the first decision stands");
    assert_eq!(
        repository.decision("D-Green-0").await.unwrap(),
        Some(first.clone())
    );
    assert_eq!(repository.decision("D-Red-0").await.unwrap(), None);
    // The content after a modification is decided anew, once.
    let modified = repository
        .insert_decision(&decision(Lane::Red, 1))
        .await
        .unwrap();
    assert_eq!((modified.revision, modified.decision.lane), (1, Lane::Red));
    let number = "530120261000000001";
    assert_eq!(
        repository.decision_for(number, 0).await.unwrap(),
        Some(first)
    );
    assert_eq!(
        repository.decision_for(number, 1).await.unwrap(),
        Some(modified)
    );
    assert_eq!(repository.decision_for(number, 2).await.unwrap(), None);
}

customs_common::database_suite!(
    repository;
    instructions_are_stored_once_listed_and_revoked,
    parameters_are_versioned_and_updates_do_not_cross,
    a_declaration_is_decided_once_per_revision,
);
