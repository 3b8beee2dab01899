//! The field platform's hand-offs (table `field_outbox`; see
//! `customs_common::outbox`): lifecycle transitions reported to the declaration
//! platform, transit steps noted on the declaration's timeline, and declarations sent
//! back to review after an inspection discrepancy.

use customs_common::{db::Database, outbox::OutboxJob};
use serde::{Deserialize, Serialize};

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum Job {
    /// `DeclarationService.RecordTransition`; `to_stage` is the wire name.
    ReportTransition {
        declaration_number: String,
        to_stage: String,
        house_code: String,
        reason: String,
    },
    /// `DeclarationService.RecordTimelineNote`: a transit step on the declaration's
    /// timeline. `note` is the wire name without its prefix (`TRANSIT_SEALED`);
    /// `request_id` is the note's own, so a redelivery records it once.
    NoteOnTimeline {
        declaration_number: String,
        note: String,
        house_code: String,
        reason: String,
        request_id: String,
    },
    /// `ReviewService.EnqueueDeclaration` for a declaration whose inspection found a
    /// discrepancy.
    BackToReview {
        declaration_number: String,
        inspection_round: i32,
    },
}

impl OutboxJob for Job {
    fn kind(&self) -> &'static str {
        match self {
            Self::ReportTransition { .. } => "report_transition",
            Self::NoteOnTimeline { .. } => "note_on_timeline",
            Self::BackToReview { .. } => "back_to_review",
        }
    }

    fn key(&self) -> &str {
        match self {
            Self::ReportTransition {
                declaration_number, ..
            }
            | Self::NoteOnTimeline {
                declaration_number, ..
            }
            | Self::BackToReview {
                declaration_number, ..
            } => declaration_number,
        }
    }
}

pub type Outbox = customs_common::outbox::Outbox<Job>;

pub fn outbox(database: Database) -> Outbox {
    Outbox::new(database, "field_outbox")
}

pub fn report(
    declaration_number: &str,
    stage: customs_proto::common::DeclarationStage,
    house: &str,
    reason: &str,
) -> Job {
    Job::ReportTransition {
        declaration_number: declaration_number.to_owned(),
        to_stage: stage.as_str_name().to_owned(),
        house_code: house.to_owned(),
        reason: reason.to_owned(),
    }
}
