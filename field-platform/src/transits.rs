//! Transit 转关 (DOMAIN.md 3) as the field platform runs it: the declarant declares the
//! transit, the departure house reviews it and seals the vehicle, the destination house
//! unseals it, and the departure house writes it off, which lets the declaration be
//! released (see `Field::try_release`).

use customs_common::{Error, Result, Violations, auth::Caller, codes::directly_under_house};
use customs_proto::common::{ClearanceMode, DeclarationStage, Direction};
use time::OffsetDateTime;

use crate::{
    domain::{
        transit::{self, End, Step, TransitState},
        transport::HoldReason,
    },
    operations::Field,
    outbox::Job,
    storage::{
        operations::HoldRecord,
        transits::{Advance, TransitRecord, TransitStepRecord},
    },
};

/// What an officer gives with a step.
#[derive(Debug, Clone, Default)]
pub struct StepTaken {
    /// The seals sealing puts on, or those unsealing finds intact.
    pub seals: Vec<String>,
    /// The smart lock and tracker sealing fits ('' for none).
    pub lock_id: String,
    pub tracker_id: String,
    /// The reason of a refusal.
    pub note: String,
    /// The client's request id.
    pub request_id: String,
}

/// A transit and its steps, oldest first.
pub type TransitView = (TransitRecord, Vec<TransitStepRecord>);

/// Seal numbers as stored.
pub fn stored_seals(transit: &TransitRecord) -> Result<Vec<String>> {
    serde_json::from_str(&transit.seal_numbers).map_err(|e| {
        Error::internal(anyhow::anyhow!(
            "transit {} has corrupt seals: {e}",
            transit.declaration_number
        ))
    })
}

/// The transit as the step taken for `request_id` left it, when one was: the answer a
/// repeated request gets.
fn answered(view: &TransitView, request_id: &str) -> Option<TransitView> {
    let (transit, steps) = view;
    let at = steps
        .iter()
        .position(|step| !request_id.is_empty() && step.request_id == request_id)?;
    let transit = TransitRecord {
        state: steps[at].state.clone(),
        ..transit.clone()
    };
    Some((transit, steps[..=at].to_vec()))
}

/// The hand-off that notes a step on the declaration's timeline, at the house of the
/// transit's end that the step falls to, with a request id of its own.
fn timeline_note(number: &str, step: &TransitStepRecord, house: &str) -> Job {
    let what = format!(
        "transit {}",
        step.state.to_ascii_lowercase().replace('_', " ")
    );
    let reason = match step.note.as_str() {
        "" => what,
        note => format!("{what}: {note}"),
    };
    Job::NoteOnTimeline {
        declaration_number: number.to_owned(),
        note: format!("TRANSIT_{}", step.state),
        house_code: house.to_owned(),
        reason,
        request_id: format!("transit-{}", uuid::Uuid::now_v7().simple()),
    }
}

/// A declaration whose stage rules its transit out; `rule` says what the stage needs.
fn not_open_for_transit(number: &str, stage: DeclarationStage, rule: &str) -> Error {
    Error::failed_precondition(
        "DECLARATION_NOT_OPEN_FOR_TRANSIT",
        format!("declaration {number} is {}; {rule}", stage.as_str_name()),
    )
}

fn not_found(number: &str) -> Error {
    Error::not_found(
        "TRANSIT_NOT_FOUND",
        format!("no transit is declared for declaration {number}"),
    )
}

impl Field {
    /// The transit of a declaration the caller may see.
    pub async fn transit(&self, caller: &Caller, number: &str) -> Result<TransitView> {
        if caller.acts_for_an_enterprise() {
            // Another enterprise's transit is not found, as its declaration is not.
            self.declaration_for(caller, number)
                .await
                .map_err(|error| match error {
                    Error::NotFound { .. } => not_found(number),
                    other => other,
                })?;
        }
        self.transits
            .get(number)
            .await?
            .ok_or_else(|| not_found(number))
    }

    /// The declarant declares the transit of a TRANSIT declaration that is still open;
    /// a refused transit may be declared again.
    pub async fn declare_transit(
        &self,
        caller: &Caller,
        number: &str,
        inland_house: &str,
        vehicle_plate: &str,
        request_id: &str,
    ) -> Result<TransitView> {
        let declaration = self.declaration_for(caller, number).await?;
        if let Some(view) = self.transits.get(number).await?
            && let Some(first) = answered(&view, request_id)
        {
            return Ok(first);
        }
        let content = declaration.content.clone().unwrap_or_default();
        if content.clearance_mode() != ClearanceMode::Transit {
            return Err(Error::failed_precondition(
                "NOT_A_TRANSIT_DECLARATION",
                format!(
                    "declaration {number} is cleared in {} mode, without transit steps",
                    content.clearance_mode().as_str_name()
                ),
            ));
        }
        use DeclarationStage::*;
        let stage = declaration.stage();
        if matches!(stage, Submitted | Refused | Cancelled | Released | Exited) {
            return Err(not_open_for_transit(
                number,
                stage,
                "a transit is declared once it is accepted and before it is released",
            ));
        }
        let port_house = directly_under_house(&content.port_code);
        let mut violations = Violations::new();
        let inland = transit::inland_house(
            "inland_house_code",
            inland_house,
            &port_house,
            &mut violations,
        );
        violations.into_result()?;
        let inland = inland.expect("no violation means a house");
        let (departure, destination) = transit::ends(
            content.direction() != Direction::Export,
            &port_house,
            &inland,
        );
        let record = TransitRecord {
            declaration_number: number.to_owned(),
            state: TransitState::Declared.as_str().to_owned(),
            departure_house: departure,
            destination_house: destination,
            vehicle_plate: vehicle_plate.to_owned(),
            seal_numbers: "[]".into(),
            lock_id: String::new(),
            tracker_id: String::new(),
        };
        let step = TransitStepRecord {
            state: record.state.clone(),
            actor: caller.subject.clone(),
            house_code: caller.house.clone(),
            at: OffsetDateTime::now_utc(),
            note: String::new(),
            request_id: request_id.to_owned(),
        };
        if !self
            .transits
            .declare(
                &record,
                &step,
                &timeline_note(number, &step, &record.departure_house),
            )
            .await?
        {
            let view = self.transits.get(number).await?;
            if let Some(first) = view.as_ref().and_then(|view| answered(view, request_id)) {
                // The same request, declared a moment ago.
                return Ok(first);
            }
            let state = view.map(|(transit, _)| transit.state).unwrap_or_default();
            return Err(Error::failed_precondition(
                "TRANSIT_ALREADY_DECLARED",
                format!(
                    "the transit of declaration {number} is {state}; only a refused one is declared again"
                ),
            ));
        }
        self.outbox.wake();
        tracing::info!(declaration = number, departure = %record.departure_house, destination = %record.destination_house, declarant = %caller.subject, "transit declared");
        self.transit(caller, number).await
    }

    /// An officer of the right house takes a step.
    pub async fn take_transit_step(
        &self,
        caller: &Caller,
        number: &str,
        step: Step,
        taken: &StepTaken,
    ) -> Result<TransitView> {
        let seals = &taken.seals[..];
        let view = self
            .transits
            .get(number)
            .await?
            .ok_or_else(|| not_found(number))?;
        let transit = &view.0;
        let (from, to, end) = step.rule();
        let house = match end {
            End::Departure => &transit.departure_house,
            End::Destination => &transit.destination_house,
        };
        if directly_under_house(&caller.house) != *house {
            return Err(Error::permission_denied(
                "NOT_THE_TRANSIT_HOUSE",
                format!(
                    "{} this transit falls to house {house}, not {}",
                    step.name(),
                    caller.house
                ),
            ));
        }
        if let Some(first) = answered(&view, &taken.request_id) {
            return Ok(first);
        }
        let declaration = self.peer.declaration(number).await?;
        if step == Step::WriteOff && transit.state == to.as_str() {
            // Written off already: a retry after the release failed (the declaration
            // platform out of reach) releases it now.
            self.try_release(&declaration).await?;
            return self.transit(caller, number).await;
        }
        // A cancelled declaration's goods do not travel: its transit stops where it is.
        let stage = declaration.stage();
        if matches!(
            stage,
            DeclarationStage::Cancelled | DeclarationStage::Refused
        ) {
            return Err(not_open_for_transit(
                number,
                stage,
                "its transit takes no further step",
            ));
        }
        if transit.state != from.as_str() {
            return Err(Error::failed_precondition(
                "TRANSIT_STEP_OUT_OF_ORDER",
                format!(
                    "the transit is {}; {} it needs it {}",
                    transit.state,
                    step.name(),
                    from.as_str()
                ),
            ));
        }
        let now = OffsetDateTime::now_utc();
        let (seal_numbers, note, hold) = match step {
            Step::Seal => (
                Some(
                    serde_json::to_string(seals)
                        .map_err(|e| Error::internal(anyhow::anyhow!(e)))?,
                ),
                String::new(),
                None,
            ),
            Step::Unseal => {
                let found = transit::seal_discrepancy(&stored_seals(transit)?, seals);
                let hold = found.as_ref().map(|details| HoldRecord {
                    id: format!("H{}", uuid::Uuid::now_v7().simple()).to_ascii_uppercase(),
                    declaration_number: number.to_owned(),
                    reason: HoldReason::SealBroken.as_str().to_owned(),
                    details: format!("transit unsealed at {}: {details}", caller.house),
                    raised_at: now,
                    open: true,
                    lifted_at: None,
                    lifted_by: String::new(),
                    lift_reason: String::new(),
                });
                (
                    None,
                    found.unwrap_or_else(|| "every seal intact".into()),
                    hold,
                )
            }
            _ => (None, taken.note.clone(), None),
        };
        let record = TransitStepRecord {
            state: to.as_str().to_owned(),
            actor: caller.subject.clone(),
            house_code: caller.house.clone(),
            at: now,
            note,
            request_id: taken.request_id.clone(),
        };
        let advance = Advance {
            from: from.as_str(),
            step: &record,
            seal_numbers: seal_numbers.as_deref(),
            devices: (step == Step::Seal).then_some((&taken.lock_id[..], &taken.tracker_id[..])),
            hold: hold.as_ref(),
            note: &timeline_note(number, &record, house),
        };
        if !self.transits.advance(number, &advance).await? {
            if let Some(view) = self.transits.get(number).await?
                && let Some(first) = answered(&view, &taken.request_id)
            {
                // The same request, taken a moment ago.
                return Ok(first);
            }
            return Err(Error::failed_precondition(
                "TRANSIT_STEP_OUT_OF_ORDER",
                format!("the transit of declaration {number} moved meanwhile"),
            ));
        }
        self.outbox.wake();
        match &hold {
            Some(hold) => {
                tracing::warn!(declaration = number, officer = %caller.subject, details = %hold.details, "transit unsealed with a seal discrepancy: hold raised");
            }
            None => {
                tracing::info!(declaration = number, officer = %caller.subject, house = %caller.house, state = to.as_str(), "transit step taken");
            }
        }
        if step == Step::WriteOff {
            self.try_release(&declaration).await?;
        }
        self.transit(caller, number).await
    }

    /// Whether the declaration may be released as far as transit goes: a TRANSIT
    /// declaration only once its transit is written off.
    pub(crate) async fn transit_cleared(&self, number: &str, mode: ClearanceMode) -> Result<bool> {
        if mode != ClearanceMode::Transit {
            return Ok(true);
        }
        Ok(
            self.transits.state(number).await?.as_deref()
                == Some(TransitState::WrittenOff.as_str()),
        )
    }
}
