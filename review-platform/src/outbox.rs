//! The review platform's hand-offs (table `review_outbox`; see
//! `customs_common::outbox`): every review action that moves the declaration is
//! reported to its lifecycle, inspections are ordered at the field platform, and
//! change-request decisions go back to the declaration platform.

use customs_common::{db::Database, outbox::OutboxJob};
use serde::{Deserialize, Serialize};

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum Job {
    /// `DeclarationService.RecordTransition`; `to_stage` is the wire name
    /// (`DECLARATION_STAGE_CONCLUDED`).
    ReportTransition {
        declaration_number: String,
        to_stage: String,
        house_code: String,
        reason: String,
        review_sub_centre: String,
    },
    /// `InspectionService.OrderInspection`.
    OrderInspection {
        declaration_number: String,
        reason: String,
        house_code: String,
    },
    /// `DeclarationService.RecordChangeDecision`.
    RecordChangeDecision {
        declaration_number: String,
        change_request_id: String,
        approve: bool,
        reason: String,
        house_code: String,
    },
}

impl OutboxJob for Job {
    fn kind(&self) -> &'static str {
        match self {
            Self::ReportTransition { .. } => "report_transition",
            Self::OrderInspection { .. } => "order_inspection",
            Self::RecordChangeDecision { .. } => "record_change_decision",
        }
    }

    fn key(&self) -> &str {
        // One declaration's reports arrive in the order they were made.
        match self {
            Self::ReportTransition {
                declaration_number, ..
            }
            | Self::OrderInspection {
                declaration_number, ..
            }
            | Self::RecordChangeDecision {
                declaration_number, ..
            } => declaration_number,
        }
    }
}

pub type Outbox = customs_common::outbox::Outbox<Job>;

pub fn outbox(database: Database) -> Outbox {
    Outbox::new(database, "review_outbox")
}
