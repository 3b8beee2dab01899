//! The shared store that all seven houses see: general-guarantee balances and the
//! reservations against them (DOMAIN.md 7), and the mutual-recognition rulings with
//! licences' remaining quantities (DOMAIN.md 6).
//!
//! Two implementations behind one enum: [`RedisStore`] for production (atomic Lua
//! scripts on keys that share a hash tag, so it runs on Redis Cluster too), and
//! [`SqlStore`], the embedded default kept in the SQLite database. The store holds the
//! *fast, shared* state; the durable ledger lives in the field platform's database,
//! and a guarantee missing from the store is reloaded from that ledger
//! ([`ReserveOutcome::NotLoaded`] tells the caller to do so).

mod redis_store;
mod sql_store;

pub use redis_store::RedisStore;
pub use sql_store::SqlStore;

use crate::{error::Result, rulings::RulingRecord};

/// What the store needs to know of a guarantee to decide a reservation on its own.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct GuaranteeLimits {
    pub reference: String,
    pub holder: String,
    /// Hex SHA-256 of the access code; the code itself is never stored.
    pub access_code_hash: String,
    /// Amount in fen (CNY minor units).
    pub amount_fen: i64,
    /// Validity as `yyyymmdd` day numbers, inclusive.
    pub valid_from: i32,
    pub valid_until: i32,
    pub suspended: bool,
}

/// One reservation as the ledger knows it, for reloading.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StoredReservation {
    pub declaration_number: String,
    pub amount_fen: i64,
    pub released: bool,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Balance {
    pub amount_fen: i64,
    pub reserved_fen: i64,
    pub suspended: bool,
}

impl Balance {
    pub fn available_fen(&self) -> i64 {
        self.amount_fen - self.reserved_fen
    }
}

/// A reservation request, checked atomically against the limits and the balance.
#[derive(Debug, Clone)]
pub struct ReserveRequest<'a> {
    pub reference: &'a str,
    pub declaration_number: &'a str,
    pub amount_fen: i64,
    pub holder: &'a str,
    pub access_code_hash: &'a str,
    /// Today as `yyyymmdd`.
    pub today: i32,
}

/// Why the store refused a reservation.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Refusal {
    WrongHolder,
    WrongAccessCode,
    Suspended,
    NotYetValid,
    Expired,
    InsufficientHeadroom { available_fen: i64 },
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ReserveOutcome {
    Reserved {
        available_fen: i64,
    },
    /// The declaration already holds a reservation: a retry, answered with the first result.
    AlreadyReserved {
        amount_fen: i64,
        available_fen: i64,
    },
    /// The declaration's reservation was already released (its tax was paid).
    AlreadyReleased {
        amount_fen: i64,
    },
    Refused(Refusal),
    /// The store does not hold this guarantee: load it from the ledger and retry.
    NotLoaded,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ReleaseOutcome {
    Released { amount_fen: i64, available_fen: i64 },
    AlreadyReleased { amount_fen: i64, available_fen: i64 },
    NotReserved,
    NotLoaded,
}

/// A licence draw-down as the ledger knows it, for reloading.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StoredDraw {
    pub declaration_number: String,
    pub quantity_milli: i64,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum DrawOutcome {
    Drawn {
        remaining_milli: i64,
    },
    /// The declaration's earlier draw replaced (`EarlierDraw::Replace`).
    Replaced {
        earlier_milli: i64,
        remaining_milli: i64,
    },
    /// The declaration already drew on this licence: a retry, answered as the first time
    /// (with `EarlierDraw::Replace`, a draw of the same quantity).
    AlreadyDrawn {
        quantity_milli: i64,
        remaining_milli: i64,
    },
    Insufficient {
        remaining_milli: i64,
    },
    Revoked,
    /// The store does not hold this ruling: load it from the database and retry.
    NotLoaded,
}

/// What a draw does with one the declaration made earlier on the same licence.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum EarlierDraw {
    /// Keeps it: a declaration draws once, and a second draw answers as the first (a
    /// retry).
    Keep,
    /// Replaces it in the same step, its quantity counted as left for the declaration:
    /// a modified declaration's new revision draws what its new content cites, and no
    /// other declaration can take what the earlier content held in between.
    Replace,
}

/// The shared store, on Redis or on the embedded SQL database.
#[derive(Debug, Clone)]
pub enum SharedStore {
    Redis(Box<RedisStore>),
    Sql(SqlStore),
}

impl SharedStore {
    /// Loads a guarantee and its reservations unless the store already holds it.
    /// Returns whether it was loaded now.
    pub async fn load_guarantee(
        &self,
        limits: &GuaranteeLimits,
        reservations: &[StoredReservation],
    ) -> Result<bool> {
        match self {
            Self::Redis(store) => store.load_guarantee(limits, reservations).await,
            Self::Sql(store) => store.load_guarantee(limits, reservations).await,
        }
    }

    /// Drops a guarantee from the store, so that the next load rebuilds it.
    pub async fn forget_guarantee(&self, reference: &str) -> Result<()> {
        match self {
            Self::Redis(store) => store.forget_guarantee(reference).await,
            Self::Sql(store) => store.forget_guarantee(reference).await,
        }
    }

    pub async fn reserve(&self, request: &ReserveRequest<'_>) -> Result<ReserveOutcome> {
        match self {
            Self::Redis(store) => store.reserve(request).await,
            Self::Sql(store) => store.reserve(request).await,
        }
    }

    pub async fn release(
        &self,
        reference: &str,
        declaration_number: &str,
    ) -> Result<ReleaseOutcome> {
        match self {
            Self::Redis(store) => store.release(reference, declaration_number).await,
            Self::Sql(store) => store.release(reference, declaration_number).await,
        }
    }

    /// Undoes a reservation whose durable ledger write failed. Only an unreleased
    /// reservation of exactly `amount_fen` is removed.
    pub async fn cancel_reservation(
        &self,
        reference: &str,
        declaration_number: &str,
        amount_fen: i64,
    ) -> Result<bool> {
        match self {
            Self::Redis(store) => {
                store
                    .cancel_reservation(reference, declaration_number, amount_fen)
                    .await
            }
            Self::Sql(store) => {
                store
                    .cancel_reservation(reference, declaration_number, amount_fen)
                    .await
            }
        }
    }

    /// Suspends or reinstates; `false` when the store does not hold the guarantee.
    pub async fn set_suspended(&self, reference: &str, suspended: bool) -> Result<bool> {
        match self {
            Self::Redis(store) => store.set_suspended(reference, suspended).await,
            Self::Sql(store) => store.set_suspended(reference, suspended).await,
        }
    }

    /// Loads a ruling (with a licence's draws) unless the store holds it already.
    pub async fn load_ruling(&self, ruling: &RulingRecord, draws: &[StoredDraw]) -> Result<bool> {
        match self {
            Self::Redis(store) => store.load_ruling(ruling, draws).await,
            Self::Sql(store) => store.load_ruling(ruling, draws).await,
        }
    }

    /// Replaces the record of a ruling the store holds (after a revocation);
    /// `false` when it does not hold it.
    pub async fn update_ruling(&self, ruling: &RulingRecord) -> Result<bool> {
        match self {
            Self::Redis(store) => store.update_ruling(ruling).await,
            Self::Sql(store) => store.update_ruling(ruling).await,
        }
    }

    /// A ruling and, for licences, the quantity left (in thousandths).
    pub async fn ruling(&self, id: &str) -> Result<Option<(RulingRecord, Option<i64>)>> {
        match self {
            Self::Redis(store) => store.ruling(id).await,
            Self::Sql(store) => store.ruling(id).await,
        }
    }

    /// Draws a licence down atomically across all houses, once per declaration (or in
    /// place of its earlier draw); the quantity left never goes below zero.
    pub async fn draw_down(
        &self,
        id: &str,
        declaration_number: &str,
        quantity_milli: i64,
        earlier: EarlierDraw,
    ) -> Result<DrawOutcome> {
        match self {
            Self::Redis(store) => {
                store
                    .draw_down(id, declaration_number, quantity_milli, earlier)
                    .await
            }
            Self::Sql(store) => {
                store
                    .draw_down(id, declaration_number, quantity_milli, earlier)
                    .await
            }
        }
    }

    /// Undoes a draw whose durable write failed.
    pub async fn cancel_draw(
        &self,
        id: &str,
        declaration_number: &str,
        quantity_milli: i64,
    ) -> Result<bool> {
        match self {
            Self::Redis(store) => {
                store
                    .cancel_draw(id, declaration_number, quantity_milli)
                    .await
            }
            Self::Sql(store) => {
                store
                    .cancel_draw(id, declaration_number, quantity_milli)
                    .await
            }
        }
    }

    pub async fn forget_ruling(&self, id: &str) -> Result<()> {
        match self {
            Self::Redis(store) => store.forget_ruling(id).await,
            Self::Sql(store) => store.forget_ruling(id).await,
        }
    }

    /// The exact balance, read from the store itself (no cache).
    pub async fn balance(&self, reference: &str) -> Result<Option<Balance>> {
        match self {
            Self::Redis(store) => store.balance(reference).await,
            Self::Sql(store) => store.balance(reference).await,
        }
    }
}

#[cfg(test)]
pub(crate) mod suite;
