//! Mutual recognition: rulings issued by any house, honoured by every house.
//!
//! The database holds the durable record; lookups by id are served from the shared
//! store (Redis), which is loaded from the database on a miss and can be rebuilt from
//! it at any time. A licence is drawn down in the shared store first (atomic across all
//! houses, never below zero, once per declaration), then recorded durably; if that
//! write fails the draw is cancelled.

use customs_common::{
    Error, Result,
    day::{day_number, today},
    rulings::{RulingKind, RulingRecord},
    store::{DrawOutcome, EarlierDraw, SharedStore, StoredDraw},
};
use time::OffsetDateTime;

use crate::{
    domain::ruling::{NewRuling, milli_to_string, ruling_id},
    storage::rulings::{RulingFilter, RulingRepository, StoredRuling},
};

/// A ruling with a licence's live remaining quantity.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RulingView {
    pub record: RulingRecord,
    pub remaining_milli: Option<i64>,
    pub issued_at: Option<OffsetDateTime>,
}

#[derive(Debug, Clone)]
pub struct Rulings {
    repository: RulingRepository,
    store: SharedStore,
}

fn unknown(id: &str) -> Error {
    Error::not_found(
        "RULING_NOT_FOUND",
        format!("no ruling {id} is registered in any house"),
    )
}

impl Rulings {
    pub fn new(repository: RulingRepository, store: SharedStore) -> Self {
        Self { repository, store }
    }

    /// Issues a ruling once per `request_id`. A replacement revokes the ruling it
    /// replaces (same holder and kind) and links the two.
    pub async fn issue(
        &self,
        request_id: &str,
        ruling: NewRuling,
        house: &str,
        replaces: Option<&str>,
    ) -> Result<RulingView> {
        if let Some(replaced) = replaces {
            let old = self
                .repository
                .get(replaced)
                .await?
                .ok_or_else(|| unknown(replaced))?;
            if old.record.holder != ruling.holder || old.record.kind != ruling.kind {
                return Err(Error::failed_precondition(
                    "RULING_REPLACEMENT_MISMATCH",
                    format!("ruling {replaced} has another holder or kind"),
                ));
            }
        }
        let now = OffsetDateTime::now_utc();
        let serial = uuid::Uuid::new_v4().simple().to_string()[..8].to_ascii_uppercase();
        let id = ruling_id(
            house,
            ruling.kind,
            customs_common::day::beijing_day(now).year(),
            &serial,
        );
        let stored = StoredRuling {
            record: ruling.into_record(id, house),
            request_id: request_id.to_owned(),
            issued_at: now,
        };
        let (stored, created) = self.repository.insert(&stored, replaces).await?;
        if created {
            tracing::info!(ruling = %stored.record.id, kind = stored.record.kind.as_str(), holder = %stored.record.holder, house, "ruling issued");
            if let Some(replaced) = replaces {
                self.refresh(replaced).await?;
            }
        }
        self.get(&stored.record.id).await
    }

    /// A ruling as every house sees it, from the shared store.
    pub async fn get(&self, id: &str) -> Result<RulingView> {
        let (record, remaining_milli) = match self.store.ruling(id).await? {
            Some(found) => found,
            None => {
                self.load(id).await?;
                self.store.ruling(id).await?.ok_or_else(|| unknown(id))?
            }
        };
        Ok(RulingView {
            record,
            remaining_milli,
            issued_at: None,
        })
    }

    /// Loads a ruling and its draws from the database into the shared store.
    async fn load(&self, id: &str) -> Result<StoredRuling> {
        let stored = self.repository.get(id).await?.ok_or_else(|| unknown(id))?;
        let draws = self.repository.draws(id).await?;
        if self.store.load_ruling(&stored.record, &draws).await? {
            tracing::info!(
                ruling = id,
                draws = draws.len(),
                "ruling loaded into the shared store"
            );
        }
        Ok(stored)
    }

    /// Brings the shared store's copy of a ruling in line with the database.
    async fn refresh(&self, id: &str) -> Result<()> {
        let stored = self.repository.get(id).await?.ok_or_else(|| unknown(id))?;
        if !self.store.update_ruling(&stored.record).await? {
            self.load(id).await?;
        }
        Ok(())
    }

    pub async fn find(&self, filter: &RulingFilter) -> Result<Vec<RulingView>> {
        Ok(self
            .repository
            .find(filter)
            .await?
            .into_iter()
            .map(|stored| RulingView {
                remaining_milli: None,
                issued_at: Some(stored.issued_at),
                record: stored.record,
            })
            .collect())
    }

    pub async fn revoke(&self, id: &str, reason: &str) -> Result<RulingView> {
        if !self.repository.revoke(id, reason).await? {
            return Err(unknown(id));
        }
        self.refresh(id).await?;
        tracing::info!(ruling = id, reason, "ruling revoked");
        self.get(id).await
    }

    /// Gives back what `declaration_number` drew of licence `id`: the shared store's
    /// balance first, then the durable record, so that a retry after a failure in
    /// between still finds the quantity to give back (the store gives it back once).
    pub async fn return_draw(&self, id: &str, declaration_number: &str) -> Result<RulingView> {
        let ruling = self.get(id).await?;
        if let Some(quantity_milli) = self.repository.draw_of(id, declaration_number).await? {
            let in_store = self
                .store
                .cancel_draw(id, declaration_number, quantity_milli)
                .await?;
            self.repository.delete_draw(id, declaration_number).await?;
            tracing::info!(
                ruling = id,
                declaration = declaration_number,
                quantity_milli,
                in_store,
                "licence draw given back"
            );
            return self.get(id).await;
        }
        Ok(ruling)
    }

    /// What a declaration holds of a licence (0 when it drew nothing); the licence must
    /// exist.
    pub async fn draw_of(&self, id: &str, declaration_number: &str) -> Result<i64> {
        self.get(id).await?;
        Ok(self
            .repository
            .draw_of(id, declaration_number)
            .await?
            .unwrap_or(0))
    }

    /// Draws `quantity_milli` of a licence for a declaration; a retry for the same
    /// declaration answers as the first time. With `EarlierDraw::Replace` (a modified
    /// declaration's new revision), the draw takes the place of the declaration's
    /// earlier one in the same step.
    pub async fn draw_down(
        &self,
        id: &str,
        declaration_number: &str,
        quantity_milli: i64,
        house: &str,
        earlier: EarlierDraw,
    ) -> Result<RulingView> {
        let ruling = self.get(id).await?;
        if ruling.record.kind != RulingKind::Licence {
            return Err(Error::failed_precondition(
                "RULING_NOT_A_LICENCE",
                format!("ruling {id} is not a licence"),
            ));
        }
        let today = day_number(today());
        if today < ruling.record.valid_from || today > ruling.record.valid_until {
            return Err(Error::failed_precondition(
                "RULING_NOT_IN_FORCE",
                format!("licence {id} is not in force today"),
            ));
        }
        let outcome = self
            .store
            .draw_down(id, declaration_number, quantity_milli, earlier)
            .await?;
        let draw = StoredDraw {
            declaration_number: declaration_number.to_owned(),
            quantity_milli,
        };
        let at = OffsetDateTime::now_utc();
        let remaining_milli = match outcome {
            DrawOutcome::Drawn { remaining_milli } => {
                if let Err(error) = self
                    .repository
                    .record_draw(id, &draw, house, at, earlier)
                    .await
                {
                    let cancelled = self
                        .store
                        .cancel_draw(id, declaration_number, quantity_milli)
                        .await;
                    tracing::error!(
                        ruling = id,
                        declaration = declaration_number,
                        ?cancelled,
                        "draw-down record failed; draw cancelled"
                    );
                    return Err(error);
                }
                tracing::info!(
                    ruling = id,
                    declaration = declaration_number,
                    quantity_milli,
                    remaining_milli,
                    house,
                    "licence drawn down"
                );
                remaining_milli
            }
            DrawOutcome::Replaced {
                earlier_milli,
                remaining_milli,
            } => {
                if let Err(error) = self
                    .repository
                    .record_draw(id, &draw, house, at, earlier)
                    .await
                {
                    // Put the earlier draw back; it fails only when another declaration
                    // took what this one gave up meanwhile (the store then keeps the new
                    // quantity, which a retry records).
                    let restored = self
                        .store
                        .draw_down(id, declaration_number, earlier_milli, EarlierDraw::Replace)
                        .await;
                    tracing::error!(
                        ruling = id,
                        declaration = declaration_number,
                        ?restored,
                        "draw-down record failed; earlier draw put back"
                    );
                    return Err(error);
                }
                tracing::info!(
                    ruling = id,
                    declaration = declaration_number,
                    earlier_milli,
                    quantity_milli,
                    remaining_milli,
                    house,
                    "licence draw replaced by the declaration's new revision"
                );
                remaining_milli
            }
            DrawOutcome::AlreadyDrawn {
                quantity_milli: drawn,
                remaining_milli,
            } => {
                if drawn != quantity_milli {
                    return Err(Error::failed_precondition(
                        "LICENCE_ALREADY_DRAWN",
                        format!(
                            "declaration {declaration_number} already drew {} on licence {id}",
                            milli_to_string(drawn)
                        ),
                    ));
                }
                // A retry: the first attempt may have died before its durable write.
                self.repository
                    .record_draw(id, &draw, house, at, earlier)
                    .await?;
                remaining_milli
            }
            DrawOutcome::Insufficient { remaining_milli } => {
                return Err(Error::failed_precondition(
                    "LICENCE_QUANTITY_EXCEEDED",
                    format!(
                        "licence {id} has only {} left",
                        milli_to_string(remaining_milli)
                    ),
                ));
            }
            DrawOutcome::Revoked => {
                return Err(Error::failed_precondition(
                    "RULING_REVOKED",
                    format!("licence {id} was revoked"),
                ));
            }
            DrawOutcome::NotLoaded => {
                return Err(Error::unavailable(
                    "SHARED_STORE_UNAVAILABLE",
                    "the shared store lost the licence; retry",
                ));
            }
        };
        Ok(RulingView {
            record: ruling.record,
            remaining_milli: Some(remaining_milli),
            issued_at: None,
        })
    }
}
