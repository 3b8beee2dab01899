//! One suite, run against every shared-store backend: SQLite and Redis.

use std::sync::Arc;

use super::*;
use crate::testing::{TestDatabase, TestRedis, sql_store};

fn limits(reference: &str, amount_fen: i64) -> GuaranteeLimits {
    GuaranteeLimits {
        reference: reference.to_owned(),
        holder: "4403960001".to_owned(),
        access_code_hash: "hash-of-1234".to_owned(),
        amount_fen,
        valid_from: 20260101,
        valid_until: 20261231,
        suspended: false,
    }
}

fn request<'a>(reference: &'a str, declaration: &'a str, amount_fen: i64) -> ReserveRequest<'a> {
    ReserveRequest {
        reference,
        declaration_number: declaration,
        amount_fen,
        holder: "4403960001",
        access_code_hash: "hash-of-1234",
        today: 20260601,
    }
}

async fn reserves_releases_and_answers_retries(store: SharedStore) {
    assert_eq!(
        store.reserve(&request("G1", "D1", 100)).await.unwrap(),
        ReserveOutcome::NotLoaded
    );
    assert!(
        store
            .load_guarantee(&limits("G1", 1_000), &[])
            .await
            .unwrap()
    );
    assert!(
        !store
            .load_guarantee(&limits("G1", 9_999), &[])
            .await
            .unwrap(),
        "a second load is a no-op"
    );

    assert_eq!(
        store.reserve(&request("G1", "D1", 300)).await.unwrap(),
        ReserveOutcome::Reserved { available_fen: 700 }
    );
    assert_eq!(
        store.reserve(&request("G1", "D1", 300)).await.unwrap(),
        ReserveOutcome::AlreadyReserved {
            amount_fen: 300,
            available_fen: 700
        }
    );
    assert_eq!(
        store.reserve(&request("G1", "D2", 701)).await.unwrap(),
        ReserveOutcome::Refused(Refusal::InsufficientHeadroom { available_fen: 700 })
    );
    assert_eq!(
        store.release("G1", "D1").await.unwrap(),
        ReleaseOutcome::Released {
            amount_fen: 300,
            available_fen: 1_000
        }
    );
    assert_eq!(
        store.release("G1", "D1").await.unwrap(),
        ReleaseOutcome::AlreadyReleased {
            amount_fen: 300,
            available_fen: 1_000
        }
    );
    assert_eq!(
        store.reserve(&request("G1", "D1", 300)).await.unwrap(),
        ReserveOutcome::AlreadyReleased { amount_fen: 300 }
    );
    assert_eq!(
        store.release("G1", "D9").await.unwrap(),
        ReleaseOutcome::NotReserved
    );
    let balance = store.balance("G1").await.unwrap().unwrap();
    assert_eq!((balance.amount_fen, balance.reserved_fen), (1_000, 0));
}

async fn refuses_with_the_precise_reason(store: SharedStore) {
    store
        .load_guarantee(&limits("G2", 1_000), &[])
        .await
        .unwrap();
    let refused = |outcome| match outcome {
        ReserveOutcome::Refused(refusal) => refusal,
        other => panic!("expected a refusal, got {other:?}"),
    };
    let mut wrong_holder = request("G2", "D1", 1);
    wrong_holder.holder = "4403960002";
    assert_eq!(
        refused(store.reserve(&wrong_holder).await.unwrap()),
        Refusal::WrongHolder
    );
    let mut wrong_code = request("G2", "D1", 1);
    wrong_code.access_code_hash = "other";
    assert_eq!(
        refused(store.reserve(&wrong_code).await.unwrap()),
        Refusal::WrongAccessCode
    );
    let mut early = request("G2", "D1", 1);
    early.today = 20251231;
    assert_eq!(
        refused(store.reserve(&early).await.unwrap()),
        Refusal::NotYetValid
    );
    let mut late = request("G2", "D1", 1);
    late.today = 20270101;
    assert_eq!(
        refused(store.reserve(&late).await.unwrap()),
        Refusal::Expired
    );
    assert!(store.set_suspended("G2", true).await.unwrap());
    assert_eq!(
        refused(store.reserve(&request("G2", "D1", 1)).await.unwrap()),
        Refusal::Suspended
    );
    assert!(store.balance("G2").await.unwrap().unwrap().suspended);
    assert!(!store.set_suspended("unknown", true).await.unwrap());
}

async fn concurrent_reservations_never_overdraw(store: SharedStore) {
    store
        .load_guarantee(&limits("G3", 10_000), &[])
        .await
        .unwrap();
    let store = Arc::new(store);
    let mut tasks = Vec::new();
    // 70 declarations of 300 fen (21,000 wanted against 10,000), each sent twice.
    for attempt in 0..2 {
        for n in 0..70 {
            let store = store.clone();
            tasks.push(tokio::spawn(async move {
                let declaration = format!("D{n}");
                let outcome = store
                    .reserve(&request("G3", &declaration, 300))
                    .await
                    .unwrap();
                (attempt, n, outcome)
            }));
        }
    }
    let mut reserved = std::collections::HashSet::new();
    for task in tasks {
        let (_, n, outcome) = task.await.unwrap();
        if let ReserveOutcome::Reserved { .. } = outcome {
            assert!(reserved.insert(n), "declaration {n} reserved twice");
        }
    }
    assert_eq!(
        reserved.len(),
        33,
        "10,000 fen holds exactly 33 reservations of 300"
    );
    let balance = store.balance("G3").await.unwrap().unwrap();
    assert_eq!(balance.reserved_fen, 33 * 300);
}

async fn reload_restores_the_same_numbers(store: SharedStore) {
    let reservations = [
        StoredReservation {
            declaration_number: "D1".into(),
            amount_fen: 250,
            released: false,
        },
        StoredReservation {
            declaration_number: "D2".into(),
            amount_fen: 100,
            released: true,
        },
    ];
    store
        .load_guarantee(&limits("G4", 1_000), &reservations)
        .await
        .unwrap();
    assert_eq!(
        store.balance("G4").await.unwrap().unwrap().reserved_fen,
        250
    );
    assert_eq!(
        store.reserve(&request("G4", "D2", 100)).await.unwrap(),
        ReserveOutcome::AlreadyReleased { amount_fen: 100 }
    );
    assert!(store.cancel_reservation("G4", "D1", 250).await.unwrap());
    assert!(!store.cancel_reservation("G4", "D1", 250).await.unwrap());
    assert_eq!(store.balance("G4").await.unwrap().unwrap().reserved_fen, 0);
    store.forget_guarantee("G4").await.unwrap();
    assert_eq!(store.balance("G4").await.unwrap(), None);
}

fn licence(id: &str, granted_milli: i64) -> crate::rulings::RulingRecord {
    crate::rulings::RulingRecord {
        id: id.to_owned(),
        kind: crate::rulings::RulingKind::Licence,
        issuing_house: "5100".into(),
        holder: "4403960001".into(),
        subject: "frozen beef".into(),
        hs_code: Some("0202".into()),
        unit_price: None,
        origin_country: None,
        quantity_granted_milli: Some(granted_milli),
        unit: Some("KGM".into()),
        valid_from: 20260101,
        valid_until: 20261231,
        revoked: false,
        replaced_by: None,
        revocation_reason: None,
    }
}

async fn rulings_are_served_and_licences_drawn_down_once(store: SharedStore) {
    assert_eq!(store.ruling("L1").await.unwrap(), None);
    assert_eq!(
        store
            .draw_down("L1", "D1", 1, EarlierDraw::Keep)
            .await
            .unwrap(),
        DrawOutcome::NotLoaded
    );
    let record = licence("L1", 10_000);
    assert!(store.load_ruling(&record, &[]).await.unwrap());
    assert!(!store.load_ruling(&record, &[]).await.unwrap());
    assert_eq!(
        store.ruling("L1").await.unwrap(),
        Some((record.clone(), Some(10_000)))
    );

    assert_eq!(
        store
            .draw_down("L1", "D1", 4_000, EarlierDraw::Keep)
            .await
            .unwrap(),
        DrawOutcome::Drawn {
            remaining_milli: 6_000
        }
    );
    assert_eq!(
        store
            .draw_down("L1", "D1", 4_000, EarlierDraw::Keep)
            .await
            .unwrap(),
        DrawOutcome::AlreadyDrawn {
            quantity_milli: 4_000,
            remaining_milli: 6_000
        }
    );
    assert_eq!(
        store
            .draw_down("L1", "D2", 6_001, EarlierDraw::Keep)
            .await
            .unwrap(),
        DrawOutcome::Insufficient {
            remaining_milli: 6_000
        }
    );
    assert!(store.cancel_draw("L1", "D1", 4_000).await.unwrap());
    assert!(!store.cancel_draw("L1", "D1", 4_000).await.unwrap());
    assert_eq!(store.ruling("L1").await.unwrap().unwrap().1, Some(10_000));

    let mut revoked = record.clone();
    revoked.revoked = true;
    revoked.revocation_reason = Some("quota withdrawn".into());
    assert!(store.update_ruling(&revoked).await.unwrap());
    assert!(!store.update_ruling(&licence("unknown", 1)).await.unwrap());
    assert_eq!(
        store
            .draw_down("L1", "D3", 1, EarlierDraw::Keep)
            .await
            .unwrap(),
        DrawOutcome::Revoked
    );
    assert!(store.ruling("L1").await.unwrap().unwrap().0.revoked);

    // Reloaded with its draws after the store lost it.
    store.forget_ruling("L1").await.unwrap();
    let draws = [StoredDraw {
        declaration_number: "D9".into(),
        quantity_milli: 2_500,
    }];
    assert!(store.load_ruling(&record, &draws).await.unwrap());
    assert_eq!(store.ruling("L1").await.unwrap().unwrap().1, Some(7_500));
    assert_eq!(
        store
            .draw_down("L1", "D9", 2_500, EarlierDraw::Keep)
            .await
            .unwrap(),
        DrawOutcome::AlreadyDrawn {
            quantity_milli: 2_500,
            remaining_milli: 7_500
        }
    );
}

async fn concurrent_draw_downs_never_go_below_zero(store: SharedStore) {
    store
        .load_ruling(&licence("L2", 50_000), &[])
        .await
        .unwrap();
    let store = Arc::new(store);
    let mut tasks = Vec::new();
    for n in 0..40 {
        let store = store.clone();
        tasks.push(tokio::spawn(async move {
            store
                .draw_down("L2", &format!("D{n}"), 3_000, EarlierDraw::Keep)
                .await
                .unwrap()
        }));
    }
    let mut drawn = 0;
    for task in tasks {
        if let DrawOutcome::Drawn { .. } = task.await.unwrap() {
            drawn += 1;
        }
    }
    assert_eq!(drawn, 16, "50,000 holds 16 draws of 3,000");
    assert_eq!(store.ruling("L2").await.unwrap().unwrap().1, Some(2_000));
}

/// A new revision's draw replaces the declaration's earlier one in one step: its
/// earlier quantity counts as left for it (and for no other declaration in between).
async fn a_draw_replaces_the_declaration_s_earlier_one_in_one_step(store: SharedStore) {
    let mut record = licence("L3", 10_000);
    store.load_ruling(&record, &[]).await.unwrap();
    let replace = |declaration: &'static str, quantity_milli: i64| {
        let store = store.clone();
        async move {
            store
                .draw_down("L3", declaration, quantity_milli, EarlierDraw::Replace)
                .await
                .unwrap()
        }
    };
    assert_eq!(
        replace("D1", 6_000).await,
        DrawOutcome::Drawn {
            remaining_milli: 4_000
        },
        "with nothing earlier, a plain draw"
    );
    assert_eq!(
        store
            .draw_down("L3", "D2", 4_000, EarlierDraw::Keep)
            .await
            .unwrap(),
        DrawOutcome::Drawn { remaining_milli: 0 }
    );
    assert_eq!(
        replace("D1", 6_000).await,
        DrawOutcome::AlreadyDrawn {
            quantity_milli: 6_000,
            remaining_milli: 0
        },
        "the same quantity again: nothing changes"
    );
    assert_eq!(
        replace("D1", 5_000).await,
        DrawOutcome::Replaced {
            earlier_milli: 6_000,
            remaining_milli: 1_000
        }
    );
    assert_eq!(
        replace("D1", 6_001).await,
        DrawOutcome::Insufficient {
            remaining_milli: 6_000
        },
        "what is left for D1: its own 5,000 and the 1,000 free"
    );
    assert_eq!(
        replace("D1", 6_000).await,
        DrawOutcome::Replaced {
            earlier_milli: 5_000,
            remaining_milli: 0
        }
    );
    assert!(store.cancel_draw("L3", "D1", 6_000).await.unwrap());
    assert_eq!(store.ruling("L3").await.unwrap().unwrap().1, Some(6_000));

    record.revoked = true;
    store.update_ruling(&record).await.unwrap();
    assert_eq!(
        replace("D2", 3_000).await,
        DrawOutcome::Revoked,
        "a revoked licence is not drawn again"
    );
    assert_eq!(
        replace("D2", 4_000).await,
        DrawOutcome::AlreadyDrawn {
            quantity_milli: 4_000,
            remaining_milli: 6_000
        },
        "a retry still answers"
    );
}

macro_rules! store_suite {
    ($($name:ident),* $(,)?) => {
        mod sqlite {
            use super::*;
            $(
                #[tokio::test(flavor = "multi_thread", worker_threads = 4)]
                async fn $name() {
                    let database = TestDatabase::sqlite().await.unwrap();
                    super::$name(sql_store(&database).await.unwrap()).await;
                }
            )*
        }
        mod redis {
            use super::*;
            $(
                #[tokio::test(flavor = "multi_thread", worker_threads = 4)]
                async fn $name() {
                    let redis = TestRedis::start().await.unwrap();
                    super::$name(SharedStore::Redis(Box::new(redis.store().await.unwrap()))).await;
                    redis.flush_prefix().await.unwrap();
                }
            )*
        }
    };
}

store_suite!(
    reserves_releases_and_answers_retries,
    refuses_with_the_precise_reason,
    concurrent_reservations_never_overdraw,
    reload_restores_the_same_numbers,
    rulings_are_served_and_licences_drawn_down_once,
    concurrent_draw_downs_never_go_below_zero,
    a_draw_replaces_the_declaration_s_earlier_one_in_one_step,
);
