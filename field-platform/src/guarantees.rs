//! The province-wide general guarantee: registration, reservations and releases
//! from any house, and the rebuild of the shared store from the ledger.
//!
//! Who is authoritative: the **ledger** in the database is the record of what was
//! reserved and released; the **shared store** (Redis, or the embedded SQL store)
//! decides admissions atomically across all houses and holds the live balance. A
//! reservation is decided in the store first (so concurrent houses never overdraw),
//! then written to the ledger; if that write fails the store's reservation is
//! cancelled and the caller gets an error. A guarantee the store does not hold
//! (new, or lost in a Redis restart) is reloaded from the ledger before deciding.

use customs_common::day::{day_number, today};
use customs_common::{
    Error, Result,
    store::{
        Balance, GuaranteeLimits, ReleaseOutcome, ReserveOutcome, ReserveRequest, SharedStore,
    },
};
use time::OffsetDateTime;

use crate::{
    domain::guarantee::{
        GuaranteeReference, HolderRestriction, NewGuarantee, hash_access_code, refusal_error,
    },
    storage::{
        guarantees::{EntryKind, GuaranteeRecord, GuaranteeRepository, LedgerEntry},
        ledger_writer::LedgerWriter,
    },
};

/// A registered guarantee with its live balance.
#[derive(Debug, Clone)]
pub struct GuaranteeView {
    pub record: GuaranteeRecord,
    pub balance: Balance,
    /// Only on the registration that created it.
    pub access_code: Option<String>,
}

/// A reservation, reserved or released.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ReservationView {
    pub reference: String,
    pub declaration_number: String,
    pub amount_fen: i64,
    pub house_code: String,
    pub available_after_fen: i64,
    pub reserved_at: Option<OffsetDateTime>,
    pub released_at: Option<OffsetDateTime>,
}

/// What a house asks to reserve.
#[derive(Debug, Clone)]
pub struct Reserve {
    pub reference: GuaranteeReference,
    pub access_code: String,
    pub holder: String,
    pub declaration_number: String,
    pub amount_fen: i64,
    pub house_code: String,
}

#[derive(Debug, Clone)]
pub struct Guarantees {
    repository: GuaranteeRepository,
    ledger: LedgerWriter,
    store: SharedStore,
}

fn limits(record: &GuaranteeRecord) -> GuaranteeLimits {
    GuaranteeLimits {
        reference: record.reference.clone(),
        holder: record.holder.clone(),
        access_code_hash: record.access_hash.clone(),
        amount_fen: record.amount_fen,
        valid_from: day_number(record.valid_from),
        valid_until: day_number(record.valid_until),
        suspended: record.suspended,
    }
}

fn unknown(reference: &GuaranteeReference) -> Error {
    Error::not_found(
        "GUARANTEE_UNKNOWN",
        format!("no guarantee {reference} is registered"),
    )
}

impl Guarantees {
    /// Must run inside the runtime: it starts the ledger's group-commit writer.
    pub fn new(repository: GuaranteeRepository, store: SharedStore) -> Self {
        let ledger = LedgerWriter::spawn(repository.clone());
        Self {
            repository,
            ledger,
            store,
        }
    }

    /// Registers a guarantee once per `request_id`; a repeat returns the first one
    /// (without its access code, which is shown only once).
    pub async fn register(
        &self,
        request_id: &str,
        guarantee: NewGuarantee,
        house: &str,
    ) -> Result<GuaranteeView> {
        let now = OffsetDateTime::now_utc();
        let serial: String = uuid::Uuid::new_v4().simple().to_string()[..8].to_ascii_uppercase();
        let directly_under_house = customs_common::codes::directly_under_house(house);
        let reference = GuaranteeReference::new(
            customs_common::day::beijing_day(now).year(),
            &directly_under_house,
            &serial,
        );
        let access_code = uuid::Uuid::new_v4().simple().to_string()[..8].to_ascii_uppercase();
        let record = GuaranteeRecord {
            reference: reference.to_string(),
            request_id: request_id.to_owned(),
            bank: guarantee.bank,
            holder: guarantee.holder,
            amount_fen: guarantee.amount_fen,
            valid_from: guarantee.valid_from,
            valid_until: guarantee.valid_until,
            access_hash: hash_access_code(&reference, &access_code),
            suspended: false,
            suspension_reason: String::new(),
            registered_by_house: house.to_owned(),
            registered_at: now,
        };
        let (stored, created) = self.repository.insert(&record).await?;
        if created {
            tracing::info!(guarantee = %stored.reference, holder = %stored.holder, amount_fen = stored.amount_fen, house, "guarantee registered");
        }
        let balance = self.balance(&stored).await?;
        Ok(GuaranteeView {
            record: stored,
            balance,
            access_code: created.then_some(access_code),
        })
    }

    pub async fn get(&self, reference: &GuaranteeReference) -> Result<GuaranteeView> {
        let record = self.record(reference).await?;
        let balance = self.balance(&record).await?;
        Ok(GuaranteeView {
            record,
            balance,
            access_code: None,
        })
    }

    /// The live balance from the shared store, loading the guarantee there if needed.
    async fn balance(&self, record: &GuaranteeRecord) -> Result<Balance> {
        if let Some(balance) = self.store.balance(&record.reference).await? {
            return Ok(balance);
        }
        self.load(record).await?;
        self.store.balance(&record.reference).await?.ok_or_else(|| {
            Error::internal(anyhow::anyhow!(
                "guarantee {} missing from the store after loading",
                record.reference
            ))
        })
    }

    async fn record(&self, reference: &GuaranteeReference) -> Result<GuaranteeRecord> {
        self.repository
            .get(reference.as_str())
            .await?
            .ok_or_else(|| unknown(reference))
    }

    /// Loads a guarantee and its ledger into the store, unless it is there already.
    async fn load(&self, record: &GuaranteeRecord) -> Result<bool> {
        let reservations = self.repository.reservations(&record.reference).await?;
        let loaded = self
            .store
            .load_guarantee(&limits(record), &reservations)
            .await?;
        if loaded {
            tracing::info!(guarantee = %record.reference, reservations = reservations.len(), "guarantee loaded into the shared store from the ledger");
        }
        Ok(loaded)
    }

    pub async fn suspend(
        &self,
        reference: &GuaranteeReference,
        reason: &str,
    ) -> Result<GuaranteeView> {
        if !self
            .repository
            .set_suspended(reference.as_str(), true, reason)
            .await?
        {
            return Err(unknown(reference));
        }
        // The store follows the ledger: suspended there too, or loaded suspended.
        if !self.store.set_suspended(reference.as_str(), true).await? {
            let record = self.record(reference).await?;
            self.load(&record).await?;
            self.store.set_suspended(reference.as_str(), true).await?;
        }
        tracing::info!(guarantee = %reference, reason, "guarantee suspended");
        self.get(reference).await
    }

    pub async fn reserve(&self, request: &Reserve) -> Result<ReservationView> {
        if let Some(restriction) = self.repository.restrictions(&request.holder).await?.first() {
            return Err(restriction.into_error(&request.holder));
        }
        let access_code_hash = hash_access_code(&request.reference, &request.access_code);
        let store_request = ReserveRequest {
            reference: request.reference.as_str(),
            declaration_number: &request.declaration_number,
            amount_fen: request.amount_fen,
            holder: &request.holder,
            access_code_hash: &access_code_hash,
            today: day_number(today()),
        };
        let mut outcome = self.store.reserve(&store_request).await?;
        if outcome == ReserveOutcome::NotLoaded {
            let record = self.record(&request.reference).await?;
            self.load(&record).await?;
            outcome = self.store.reserve(&store_request).await?;
        }
        let entry = LedgerEntry {
            declaration_number: request.declaration_number.clone(),
            amount_fen: request.amount_fen,
            house_code: request.house_code.clone(),
            recorded_at: OffsetDateTime::now_utc(),
        };
        let reference = request.reference.as_str();
        match outcome {
            ReserveOutcome::Reserved { available_fen } => {
                if let Err(error) = self
                    .ledger
                    .record(reference, EntryKind::Reserve, entry.clone())
                    .await
                {
                    // Never leave a reservation the ledger does not know of.
                    let cancelled = self
                        .store
                        .cancel_reservation(
                            reference,
                            &request.declaration_number,
                            request.amount_fen,
                        )
                        .await;
                    tracing::error!(guarantee = reference, declaration = %request.declaration_number, ?cancelled, "ledger write failed; reservation cancelled");
                    return Err(error);
                }
                tracing::info!(guarantee = reference, declaration = %request.declaration_number, amount_fen = request.amount_fen, house = %request.house_code, available_fen, "duties reserved");
                Ok(self.view(request, available_fen, entry.recorded_at, None))
            }
            ReserveOutcome::AlreadyReserved {
                amount_fen,
                available_fen,
            } => {
                if amount_fen != request.amount_fen {
                    return Err(Error::failed_precondition(
                        "GUARANTEE_DECLARATION_ALREADY_RESERVED",
                        format!(
                            "declaration {} already reserved {} CNY against {reference}",
                            request.declaration_number,
                            customs_common::money::fen_to_string(amount_fen)
                        ),
                    ));
                }
                // A retry: make sure the ledger has it (the first attempt may have died
                // between the store and the ledger), then answer as the first time.
                self.ledger
                    .record(reference, EntryKind::Reserve, entry.clone())
                    .await?;
                let first = self
                    .repository
                    .entry(reference, &request.declaration_number, EntryKind::Reserve)
                    .await?
                    .unwrap_or(entry);
                let mut view = self.view(request, available_fen, first.recorded_at, None);
                view.house_code = first.house_code;
                Ok(view)
            }
            ReserveOutcome::AlreadyReleased { .. } => Err(Error::failed_precondition(
                "GUARANTEE_RESERVATION_RELEASED",
                format!(
                    "the duties of declaration {} were already paid and released",
                    request.declaration_number
                ),
            )),
            ReserveOutcome::Refused(refusal) => Err(refusal_error(&request.reference, refusal)),
            ReserveOutcome::NotLoaded => Err(Error::unavailable(
                "SHARED_STORE_UNAVAILABLE",
                "the shared store could not load the guarantee; retry",
            )),
        }
    }

    fn view(
        &self,
        request: &Reserve,
        available_fen: i64,
        reserved_at: OffsetDateTime,
        released_at: Option<OffsetDateTime>,
    ) -> ReservationView {
        ReservationView {
            reference: request.reference.to_string(),
            declaration_number: request.declaration_number.clone(),
            amount_fen: request.amount_fen,
            house_code: request.house_code.clone(),
            available_after_fen: available_fen,
            reserved_at: Some(reserved_at),
            released_at,
        }
    }

    /// Releases a declaration's reservation once its tax is paid. Idempotent.
    pub async fn release(
        &self,
        reference: &GuaranteeReference,
        declaration_number: &str,
        house_code: &str,
    ) -> Result<ReservationView> {
        let mut outcome = self
            .store
            .release(reference.as_str(), declaration_number)
            .await?;
        if outcome == ReleaseOutcome::NotLoaded {
            let record = self.record(reference).await?;
            self.load(&record).await?;
            outcome = self
                .store
                .release(reference.as_str(), declaration_number)
                .await?;
        }
        let (amount_fen, available_fen) = match outcome {
            ReleaseOutcome::Released {
                amount_fen,
                available_fen,
            }
            | ReleaseOutcome::AlreadyReleased {
                amount_fen,
                available_fen,
            } => (amount_fen, available_fen),
            ReleaseOutcome::NotReserved => {
                return Err(Error::not_found(
                    "GUARANTEE_RESERVATION_NOT_FOUND",
                    format!(
                        "declaration {declaration_number} holds no reservation against {reference}"
                    ),
                ));
            }
            ReleaseOutcome::NotLoaded => {
                return Err(Error::unavailable(
                    "SHARED_STORE_UNAVAILABLE",
                    "the shared store could not load the guarantee; retry",
                ));
            }
        };
        let release = LedgerEntry {
            declaration_number: declaration_number.to_owned(),
            amount_fen,
            house_code: house_code.to_owned(),
            recorded_at: OffsetDateTime::now_utc(),
        };
        if self
            .ledger
            .record(reference.as_str(), EntryKind::Release, release)
            .await?
        {
            tracing::info!(guarantee = %reference, declaration = declaration_number, amount_fen, available_fen, "reservation released");
        }
        let reserved = self
            .repository
            .entry(reference.as_str(), declaration_number, EntryKind::Reserve)
            .await?;
        let released = self
            .repository
            .entry(reference.as_str(), declaration_number, EntryKind::Release)
            .await?;
        Ok(ReservationView {
            reference: reference.to_string(),
            declaration_number: declaration_number.to_owned(),
            amount_fen,
            house_code: reserved.map(|entry| entry.house_code).unwrap_or_default(),
            available_after_fen: available_fen,
            reserved_at: None,
            released_at: released.map(|entry| entry.recorded_at),
        })
    }

    /// Rebuilds the store's state for the given guarantees (all when empty) from the
    /// ledger. Returns the guarantees rebuilt and the open reservations restored.
    pub async fn rebuild(&self, references: &[GuaranteeReference]) -> Result<(usize, usize)> {
        let references: Vec<String> = if references.is_empty() {
            self.repository.references().await?
        } else {
            // Each once, in the order given: one named twice is rebuilt and counted once.
            let mut named: Vec<String> = Vec::with_capacity(references.len());
            for reference in references.iter().map(ToString::to_string) {
                if !named.contains(&reference) {
                    named.push(reference);
                }
            }
            named
        };
        let mut open = 0;
        for reference in &references {
            let parsed = GuaranteeReference::parse("references", reference).map_err(Error::from)?;
            let record = self.record(&parsed).await?;
            self.store.forget_guarantee(reference).await?;
            self.load(&record).await?;
            open += self
                .repository
                .reservations(reference)
                .await?
                .iter()
                .filter(|r| !r.released)
                .count();
        }
        tracing::warn!(
            guarantees = references.len(),
            open_reservations = open,
            "shared store rebuilt from the ledger"
        );
        Ok((references.len(), open))
    }

    pub async fn set_restriction(
        &self,
        holder: &str,
        restriction: HolderRestriction,
        active: bool,
        note: &str,
    ) -> Result<Vec<HolderRestriction>> {
        self.repository
            .set_restriction(holder, restriction, active, note)
            .await?;
        tracing::info!(
            holder,
            restriction = restriction.as_str(),
            active,
            note,
            "summary tax payment restriction changed"
        );
        self.repository.restrictions(holder).await
    }
}
