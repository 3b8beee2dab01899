//! Review tasks: what each operation needs of a task and of the reviewer who acts
//! (DOMAIN.md 5.3). Only a reviewer of the sub-centre that holds the task may act on
//! it; working operations need the task claimed by that reviewer.

use customs_common::{Error, auth::Caller, codes::directly_under_house};

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TaskKind {
    DeclarationReview,
    Modification,
    Cancellation,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TaskState {
    Queued,
    Claimed,
    Suspended,
    Concluded,
    Returned,
    Transferred,
    Decided,
}

macro_rules! names {
    ($type:ident { $($variant:ident => $name:literal),+ $(,)? }) => {
        impl $type {
            pub fn as_str(self) -> &'static str {
                match self { $(Self::$variant => $name),+ }
            }

            pub fn parse(value: &str) -> Option<Self> {
                match value { $($name => Some(Self::$variant),)+ _ => None }
            }
        }
    };
}

names!(TaskKind {
    DeclarationReview => "DECLARATION_REVIEW",
    Modification => "MODIFICATION",
    Cancellation => "CANCELLATION",
});

names!(TaskState {
    Queued => "QUEUED",
    Claimed => "CLAIMED",
    Suspended => "SUSPENDED",
    Concluded => "CONCLUDED",
    Returned => "RETURNED",
    Transferred => "TRANSFERRED",
    Decided => "DECIDED",
});

impl TaskState {
    /// Still in a sub-centre's hands.
    pub fn is_open(self) -> bool {
        matches!(self, Self::Queued | Self::Claimed | Self::Suspended)
    }
}

/// The audited actions on a task.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Action {
    Enqueue,
    Claim,
    Conclude,
    Transfer,
    Return,
    Suspend,
    Resume,
    ImmediateControl,
    Decide,
}

names!(Action {
    Enqueue => "enqueue",
    Claim => "claim",
    Conclude => "conclude",
    Transfer => "transfer",
    Return => "return",
    Suspend => "suspend",
    Resume => "resume",
    ImmediateControl => "immediate_control",
    Decide => "decide",
});

impl Action {
    /// The state a task must be in for the action, and the state it leaves it in.
    pub fn moves(self) -> (TaskState, TaskState) {
        use TaskState::*;
        match self {
            Self::Enqueue => (Queued, Queued),
            Self::Claim => (Queued, Claimed),
            Self::Conclude | Self::ImmediateControl => (Claimed, Concluded),
            Self::Transfer => (Claimed, Transferred),
            Self::Return => (Claimed, Returned),
            Self::Suspend => (Claimed, Suspended),
            Self::Resume => (Suspended, Claimed),
            Self::Decide => (Claimed, Decided),
        }
    }

    /// The kinds of task the action applies to.
    pub fn applies_to(self, kind: TaskKind) -> bool {
        match self {
            Self::Conclude | Self::Return | Self::ImmediateControl => {
                kind == TaskKind::DeclarationReview
            }
            Self::Decide => kind != TaskKind::DeclarationReview,
            _ => true,
        }
    }
}

/// A task as an operation sees it.
#[derive(Debug, Clone, Copy)]
pub struct TaskView<'a> {
    pub kind: TaskKind,
    pub state: TaskState,
    pub sub_centre: &'a str,
    pub claimed_by: Option<&'a str>,
    /// Whether a claim, if any, is still live.
    pub claim_live: bool,
}

/// Checks that `caller` may take `action` on the task: a reviewer of the holding
/// sub-centre, the task in the right state (claimed by the caller for working
/// operations) and of a kind the action applies to.
pub fn authorize(caller: &Caller, action: Action, task: TaskView<'_>) -> Result<(), Error> {
    let house = directly_under_house(&caller.house);
    if house != task.sub_centre {
        return Err(Error::permission_denied(
            "TASK_OF_ANOTHER_SUB_CENTRE",
            format!(
                "the task is held by sub-centre {}; you review for {house}",
                task.sub_centre
            ),
        ));
    }
    if !action.applies_to(task.kind) {
        return Err(Error::failed_precondition(
            "ACTION_NOT_FOR_THIS_KIND",
            format!(
                "{} does not apply to a {} task",
                action.as_str(),
                task.kind.as_str()
            ),
        ));
    }
    let (needed, _) = action.moves();
    if task.state != needed {
        return Err(Error::failed_precondition(
            "TASK_STATE",
            format!(
                "{} needs a {} task; this one is {}",
                action.as_str(),
                needed.as_str(),
                task.state.as_str()
            ),
        ));
    }
    if needed == TaskState::Claimed && task.claimed_by != Some(caller.subject.as_str()) {
        return Err(Error::failed_precondition(
            "TASK_NOT_CLAIMED_BY_YOU",
            format!(
                "{} is for the reviewer who claimed the task; claim it first",
                action.as_str()
            ),
        ));
    }
    if needed == TaskState::Claimed && !task.claim_live {
        return Err(Error::failed_precondition(
            "CLAIM_EXPIRED",
            "your claim on the task has expired; claim it again",
        ));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use customs_common::auth::Role;

    fn reviewer(subject: &str, house: &str) -> Caller {
        Caller {
            subject: subject.into(),
            role: Role::Reviewer,
            house: house.into(),
            enterprise: None,
        }
    }

    fn claimed_by(who: &'static str) -> TaskView<'static> {
        TaskView {
            kind: TaskKind::DeclarationReview,
            state: TaskState::Claimed,
            sub_centre: "5300",
            claimed_by: Some(who),
            claim_live: true,
        }
    }

    fn reason(result: Result<(), Error>) -> &'static str {
        result.map(|()| "OK").unwrap_or_else(|error| error.reason())
    }

    #[test]
    fn every_working_operation_needs_the_holding_sub_centre_and_the_claim() {
        let working = [
            Action::Conclude,
            Action::Transfer,
            Action::Return,
            Action::Suspend,
            Action::ImmediateControl,
        ];
        for action in working {
            assert_eq!(
                reason(authorize(&reviewer("li", "5300"), action, claimed_by("li"))),
                "OK"
            );
            // An office of the sub-centre's house counts as the sub-centre.
            assert_eq!(
                reason(authorize(&reviewer("li", "5301"), action, claimed_by("li"))),
                "OK"
            );
            assert_eq!(
                reason(authorize(
                    &reviewer("wang", "5100"),
                    action,
                    claimed_by("li")
                )),
                "TASK_OF_ANOTHER_SUB_CENTRE",
                "{action:?}"
            );
            assert_eq!(
                reason(authorize(
                    &reviewer("zhao", "5300"),
                    action,
                    claimed_by("li")
                )),
                "TASK_NOT_CLAIMED_BY_YOU",
                "{action:?}"
            );
            let expired = TaskView {
                claim_live: false,
                ..claimed_by("li")
            };
            assert_eq!(
                reason(authorize(&reviewer("li", "5300"), action, expired)),
                "CLAIM_EXPIRED"
            );
            let queued = TaskView {
                state: TaskState::Queued,
                claimed_by: None,
                ..claimed_by("li")
            };
            assert_eq!(
                reason(authorize(&reviewer("li", "5300"), action, queued)),
                "TASK_STATE"
            );
        }
    }

    #[test]
    fn resume_is_for_any_reviewer_of_the_sub_centre() {
        let suspended = TaskView {
            state: TaskState::Suspended,
            claimed_by: None,
            ..claimed_by("li")
        };
        assert_eq!(
            reason(authorize(
                &reviewer("zhao", "5300"),
                Action::Resume,
                suspended
            )),
            "OK"
        );
        assert_eq!(
            reason(authorize(
                &reviewer("zhao", "5700"),
                Action::Resume,
                suspended
            )),
            "TASK_OF_ANOTHER_SUB_CENTRE"
        );
        assert_eq!(
            reason(authorize(
                &reviewer("li", "5300"),
                Action::Resume,
                claimed_by("li")
            )),
            "TASK_STATE"
        );
    }

    #[test]
    fn decisions_are_for_change_requests_and_conclusions_for_declarations() {
        let change = TaskView {
            kind: TaskKind::Cancellation,
            ..claimed_by("li")
        };
        assert_eq!(
            reason(authorize(&reviewer("li", "5300"), Action::Decide, change)),
            "OK"
        );
        assert_eq!(
            reason(authorize(&reviewer("li", "5300"), Action::Conclude, change)),
            "ACTION_NOT_FOR_THIS_KIND"
        );
        assert_eq!(
            reason(authorize(
                &reviewer("li", "5300"),
                Action::Decide,
                claimed_by("li")
            )),
            "ACTION_NOT_FOR_THIS_KIND"
        );
    }

    #[test]
    fn names_round_trip() {
        for action in [
            Action::Enqueue,
            Action::Claim,
            Action::Conclude,
            Action::Transfer,
            Action::Return,
            Action::Suspend,
            Action::Resume,
            Action::ImmediateControl,
            Action::Decide,
        ] {
            assert_eq!(Action::parse(action.as_str()), Some(action));
        }
        for state in [
            TaskState::Queued,
            TaskState::Claimed,
            TaskState::Suspended,
            TaskState::Concluded,
            TaskState::Returned,
            TaskState::Transferred,
            TaskState::Decided,
        ] {
            assert_eq!(TaskState::parse(state.as_str()), Some(state));
        }
    }
}
