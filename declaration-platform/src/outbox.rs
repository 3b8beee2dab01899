//! The declaration platform's hand-offs, kept in its transactional outbox (table
//! `outbox`; see `customs_common::outbox`).

use customs_common::{db::Database, outbox::OutboxJob};
use serde::{Deserialize, Serialize};

pub use customs_common::outbox::now_millis;

/// A hand-off.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum Job {
    /// Electronic review by the risk platform, then, for YELLOW and RED lanes, the
    /// hand-off to the review sub-centre: of the declaration as submitted (revision 0)
    /// or of its content after its n-th approved modification (revision n).
    ScreenDeclaration {
        declaration_number: String,
        #[serde(default)]
        revision: u32,
    },
    /// Summary tax payment eligibility at the field platform: `discredited` when the
    /// holder's credit class may not use it (its scheme says so; DISCREDITED in 2018's).
    HolderRestriction { holder: String, discredited: bool },
    /// A modification or cancellation request, to the sub-centre that holds the
    /// declaration.
    ForwardChangeRequest { change_request_id: String },
    /// What a declaration drew of the licences it cites, given back (it was cancelled,
    /// or its content replaced by an approved modification).
    ReturnLicenceDraws {
        declaration_number: String,
        ruling_ids: Vec<String>,
    },
    /// What a declaration holds of licences brought back to what its content cites: the
    /// sub-centre's approval of a modification that asks for more reserved the
    /// difference, and the modification was not applied (rejected, or approved too
    /// late). `held`: each licence's quantity as the content cites it; `returned`:
    /// licences only the modification cited. Drawn at `house_code`.
    RestoreLicenceDraws {
        declaration_number: String,
        house_code: String,
        held: Vec<(String, String)>,
        returned: Vec<String>,
    },
}

impl OutboxJob for Job {
    fn kind(&self) -> &'static str {
        match self {
            Self::ScreenDeclaration { .. } => "screen_declaration",
            Self::HolderRestriction { .. } => "holder_restriction",
            Self::ForwardChangeRequest { .. } => "forward_change_request",
            Self::ReturnLicenceDraws { .. } => "return_licence_draws",
            Self::RestoreLicenceDraws { .. } => "restore_licence_draws",
        }
    }

    fn key(&self) -> &str {
        match self {
            Self::ScreenDeclaration {
                declaration_number, ..
            } => declaration_number,
            Self::HolderRestriction { holder, .. } => holder,
            Self::ForwardChangeRequest { change_request_id } => change_request_id,
            Self::ReturnLicenceDraws {
                declaration_number, ..
            }
            | Self::RestoreLicenceDraws {
                declaration_number, ..
            } => declaration_number,
        }
    }
}

pub type Outbox = customs_common::outbox::Outbox<Job>;

/// Enqueues a job inside a repository's own transaction; binds kind, key, payload,
/// created_at, next_attempt_at (see `customs_common::insert_jobs!`).
pub const ENQUEUE: &str = "INSERT INTO outbox (kind, job_key, payload, created_at, next_attempt_at) VALUES ($1, $2, $3, $4, $5)";

pub fn outbox(database: Database) -> Outbox {
    Outbox::new(database, "outbox")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn jobs_round_trip_as_json() {
        let job = Job::ScreenDeclaration {
            declaration_number: "530120261000000001".into(),
            revision: 2,
        };
        let back: Job = serde_json::from_str(&job.payload().unwrap()).unwrap();
        assert_eq!(back, job);
        // Jobs written before revisions were named screen the declaration as submitted.
        let earlier: Job = serde_json::from_str(
            r#"{"kind":"screen_declaration","declaration_number":"530120261000000001"}"#,
        )
        .unwrap();
        assert_eq!(
            earlier,
            Job::ScreenDeclaration {
                declaration_number: "530120261000000001".into(),
                revision: 0
            }
        );
    }
}
