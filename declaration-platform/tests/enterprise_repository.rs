//! Credit-class changes on PostgreSQL and SQLite: one dated in the future takes effect
//! on its day, once, with its hand-off to the field platform in the same transaction;
//! a credit scheme that drops a class carries its enterprises over.

use std::sync::Arc;

use customs_common::{
    config::Settings, credit::CreditSchemes, day::today, db::Database, on_reader,
    testing::TestDatabase,
};
use declaration_platform::{
    domain::enterprise::{EnterpriseKind, NewEnterprise},
    outbox::{Job, Outbox},
    storage::{enterprises::EnterpriseRepository, migrations},
};
use time::Duration;

const CODE: &str = "4403960001";

/// The 2018 default, and the 2021 scheme, which drops GENERAL_CERTIFIED.
fn schemes() -> Arc<CreditSchemes> {
    let mut settings = Settings::defaults().unwrap().credit;
    settings
        .schemes
        .push(customs_common::testing::credit_scheme_2021());
    Arc::new(CreditSchemes::new(&settings).unwrap())
}

async fn setup(database: &TestDatabase) -> (EnterpriseRepository, Outbox, Database) {
    let mut migrations = migrations().unwrap();
    database.database.migrate(&mut migrations).await.unwrap();
    let repository = EnterpriseRepository::new(database.database.clone(), schemes());
    repository
        .insert(
            "register-1",
            &NewEnterprise {
                code: CODE.into(),
                name: "Shenzhen Huaqiang Trading Co.".into(),
                kind: EnterpriseKind::Trader,
                credit_class: "GENERAL_CREDIT".into(),
                home_house: "5300".into(),
            },
        )
        .await
        .unwrap()
        .unwrap();
    (
        repository,
        declaration_platform::outbox::outbox(database.database.clone()),
        database.database.clone(),
    )
}

async fn class(repository: &EnterpriseRepository) -> String {
    class_of(repository, CODE).await
}

async fn class_of(repository: &EnterpriseRepository, code: &str) -> String {
    repository.get(code).await.unwrap().unwrap().credit_class
}

async fn handed_off(outbox: &Outbox) -> Vec<Job> {
    let claimed = outbox.claim(10).await.unwrap();
    let ids: Vec<i64> = claimed.iter().map(|c| c.id).collect();
    outbox.done(&ids).await.unwrap();
    claimed.into_iter().map(|c| c.job).collect()
}

fn restriction(discredited: bool) -> Job {
    Job::HolderRestriction {
        holder: CODE.into(),
        discredited,
    }
}

async fn a_change_dated_tomorrow_takes_effect_tomorrow_once(
    (repository, outbox, _): (EnterpriseRepository, Outbox, Database),
) {
    let (today, tomorrow) = (today(), today() + Duration::days(1));
    let recorded = repository
        .change_credit_class(CODE, "DISCREDITED", tomorrow, "court ruling", today)
        .await
        .unwrap();
    assert_eq!(recorded, Some(false), "recorded, not in force yet");
    assert_eq!(class(&repository).await, "GENERAL_CREDIT");
    assert!(
        repository
            .apply_due_credit_classes(today)
            .await
            .unwrap()
            .is_empty()
    );
    assert!(handed_off(&outbox).await.is_empty());

    // Tomorrow: it applies, with the field platform told, once.
    assert_eq!(
        repository.apply_due_credit_classes(tomorrow).await.unwrap(),
        [CODE]
    );
    assert_eq!(class(&repository).await, "DISCREDITED");
    assert_eq!(handed_off(&outbox).await, [restriction(true)]);
    assert!(
        repository
            .apply_due_credit_classes(tomorrow)
            .await
            .unwrap()
            .is_empty()
    );

    // A change recorded later but dated earlier does not displace it.
    let backdated = repository
        .change_credit_class(
            CODE,
            "GENERAL_CREDIT",
            today - Duration::days(10),
            "late entry",
            tomorrow,
        )
        .await
        .unwrap();
    assert_eq!(backdated, Some(false));
    assert_eq!(class(&repository).await, "DISCREDITED");

    // One due at once applies at once, and lifting DISCREDITED is handed off too.
    let restored = repository
        .change_credit_class(
            CODE,
            "ADVANCED_CERTIFIED",
            tomorrow,
            "appeal upheld",
            tomorrow,
        )
        .await
        .unwrap();
    assert_eq!(restored, Some(true));
    assert_eq!(class(&repository).await, "ADVANCED_CERTIFIED");
    assert_eq!(handed_off(&outbox).await, [restriction(false)]);

    assert_eq!(
        repository
            .change_credit_class("4403960999", "DISCREDITED", today, "x", today)
            .await
            .unwrap(),
        None,
        "no such enterprise"
    );
}

async fn registering_a_discredited_enterprise_bars_it_once(
    (repository, outbox, _): (EnterpriseRepository, Outbox, Database),
) {
    let discredited = NewEnterprise {
        code: "4403960002".into(),
        name: "Shenzhen Lianhe Import Co.".into(),
        kind: EnterpriseKind::Trader,
        credit_class: "DISCREDITED".into(),
        home_house: "5300".into(),
    };
    for _ in 0..2 {
        repository
            .insert("register-2", &discredited)
            .await
            .unwrap()
            .unwrap();
    }
    assert_eq!(
        handed_off(&outbox).await,
        [Job::HolderRestriction {
            holder: "4403960002".into(),
            discredited: true,
        }],
        "written with the registration, once"
    );
}

async fn a_scheme_that_drops_a_class_carries_its_enterprises_over_once(
    (repository, outbox, _): (EnterpriseRepository, Outbox, Database),
) {
    // Registered under the 2018 scheme (the repository takes what it is given; the
    // scheme is checked when a request names a class).
    let certified = NewEnterprise {
        code: "4403960003".into(),
        name: "Dongguan Precision Parts Co.".into(),
        kind: EnterpriseKind::Trader,
        credit_class: "GENERAL_CERTIFIED".into(),
        home_house: "5200".into(),
    };
    repository.insert("register-3", &certified).await.unwrap();
    assert_eq!(
        repository.apply_due_credit_classes(today()).await.unwrap(),
        ["4403960003"],
        "the 2021 scheme is in force"
    );
    assert_eq!(class_of(&repository, "4403960003").await, "GENERAL_CREDIT");
    assert_eq!(
        class(&repository).await,
        "GENERAL_CREDIT",
        "kept, untouched"
    );
    assert!(
        handed_off(&outbox).await.is_empty(),
        "both classes may pay by summary tax payment"
    );
    assert!(
        repository
            .apply_due_credit_classes(today())
            .await
            .unwrap()
            .is_empty(),
        "once"
    );
    // The move is in the history, as of the scheme's first day: a change recorded
    // later, dated before it, does not displace it.
    let backdated = repository
        .change_credit_class(
            "4403960003",
            "GENERAL_CERTIFIED",
            time::macros::date!(2021 - 10 - 01),
            "late entry",
            today(),
        )
        .await
        .unwrap();
    assert_eq!(backdated, Some(false));
    assert_eq!(class_of(&repository, "4403960003").await, "GENERAL_CREDIT");
}

/// Two replicas carrying the same enterprises over at once: each enterprise moves once,
/// with one history entry, whichever replica moves it.
async fn two_replicas_carry_an_enterprise_over_once(
    (repository, _, database): (EnterpriseRepository, Outbox, Database),
) {
    let codes: Vec<String> = (10..30).map(|n| format!("44039600{n}")).collect();
    for code in &codes {
        let certified = NewEnterprise {
            code: code.clone(),
            name: format!("Certified Trader {code}"),
            kind: EnterpriseKind::Trader,
            credit_class: "GENERAL_CERTIFIED".into(),
            home_house: "5200".into(),
        };
        repository
            .insert(&format!("register-{code}"), &certified)
            .await
            .unwrap();
    }
    let other = EnterpriseRepository::new(database.clone(), schemes());
    let (first, second) = tokio::join!(
        repository.apply_due_credit_classes(today()),
        other.apply_due_credit_classes(today())
    );
    let mut moved = [first.unwrap(), second.unwrap()].concat();
    moved.sort();
    assert_eq!(moved, codes, "each moved by one replica");
    let entries: Vec<(String, i64)> = on_reader!(&database, pool => {
        sqlx::query_as(
            "SELECT code, COUNT(*) FROM credit_class_history
             WHERE reason LIKE 'credit scheme%' GROUP BY code ORDER BY code",
        )
        .fetch_all(pool)
        .await
        .unwrap()
    });
    assert_eq!(
        entries,
        codes
            .iter()
            .map(|code| (code.clone(), 1))
            .collect::<Vec<_>>(),
        "one history entry each"
    );
    for code in &codes {
        assert_eq!(class_of(&repository, code).await, "GENERAL_CREDIT");
    }
}

customs_common::database_suite!(
    setup;
    a_change_dated_tomorrow_takes_effect_tomorrow_once,
    registering_a_discredited_enterprise_bars_it_once,
    a_scheme_that_drops_a_class_carries_its_enterprises_over_once,
    two_replicas_carry_an_enterprise_over_once,
);
