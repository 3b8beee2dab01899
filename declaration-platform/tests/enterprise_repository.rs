//! Credit-class changes on PostgreSQL and SQLite: one dated in the future takes effect
//! on its day, once, with its hand-off to the field platform in the same transaction.

use customs_common::{day::today, testing::TestDatabase};
use declaration_platform::{
    domain::enterprise::{CreditClass, EnterpriseKind, NewEnterprise},
    outbox::{Job, Outbox},
    storage::{enterprises::EnterpriseRepository, migrations},
};
use time::Duration;

const CODE: &str = "4403960001";

async fn setup(database: &TestDatabase) -> (EnterpriseRepository, Outbox) {
    let mut migrations = migrations().unwrap();
    database.database.migrate(&mut migrations).await.unwrap();
    let repository = EnterpriseRepository::new(database.database.clone());
    repository
        .insert(
            "register-1",
            &NewEnterprise {
                code: CODE.into(),
                name: "Shenzhen Huaqiang Trading Co.".into(),
                kind: EnterpriseKind::Trader,
                credit_class: CreditClass::GeneralCredit,
                home_house: "5300".into(),
            },
        )
        .await
        .unwrap()
        .unwrap();
    (
        repository,
        declaration_platform::outbox::outbox(database.database.clone()),
    )
}

async fn class(repository: &EnterpriseRepository) -> CreditClass {
    repository.get(CODE).await.unwrap().unwrap().credit_class
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
    (repository, outbox): (EnterpriseRepository, Outbox),
) {
    let (today, tomorrow) = (today(), today() + Duration::days(1));
    let recorded = repository
        .change_credit_class(
            CODE,
            CreditClass::Discredited,
            tomorrow,
            "court ruling",
            today,
        )
        .await
        .unwrap();
    assert_eq!(recorded, Some(false), "recorded, not in force yet");
    assert_eq!(class(&repository).await, CreditClass::GeneralCredit);
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
    assert_eq!(class(&repository).await, CreditClass::Discredited);
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
            CreditClass::GeneralCredit,
            today - Duration::days(10),
            "late entry",
            tomorrow,
        )
        .await
        .unwrap();
    assert_eq!(backdated, Some(false));
    assert_eq!(class(&repository).await, CreditClass::Discredited);

    // One due at once applies at once, and lifting DISCREDITED is handed off too.
    let restored = repository
        .change_credit_class(
            CODE,
            CreditClass::AdvancedCertified,
            tomorrow,
            "appeal upheld",
            tomorrow,
        )
        .await
        .unwrap();
    assert_eq!(restored, Some(true));
    assert_eq!(class(&repository).await, CreditClass::AdvancedCertified);
    assert_eq!(handed_off(&outbox).await, [restriction(false)]);

    assert_eq!(
        repository
            .change_credit_class("4403960999", CreditClass::Discredited, today, "x", today)
            .await
            .unwrap(),
        None,
        "no such enterprise"
    );
}

async fn registering_a_discredited_enterprise_bars_it_once(
    (repository, outbox): (EnterpriseRepository, Outbox),
) {
    let discredited = NewEnterprise {
        code: "4403960002".into(),
        name: "Shenzhen Lianhe Import Co.".into(),
        kind: EnterpriseKind::Trader,
        credit_class: CreditClass::Discredited,
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

customs_common::database_suite!(
    setup;
    a_change_dated_tomorrow_takes_effect_tomorrow_once,
    registering_a_discredited_enterprise_bars_it_once,
);
