//! The declaration's lifecycle: its stages, the transitions allowed between them, and
//! the words the public sees for each (DOMAIN.md 5, 9).

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Stage {
    Submitted,
    Refused,
    Accepted,
    LaneDecided,
    UnderReview,
    Returned,
    Suspended,
    Concluded,
    TaxSecured,
    Inspection,
    Released,
    Exited,
    Modified,
    Cancelled,
}

use Stage::*;

pub const ALL: [Stage; 14] = [
    Submitted,
    Refused,
    Accepted,
    LaneDecided,
    UnderReview,
    Returned,
    Suspended,
    Concluded,
    TaxSecured,
    Inspection,
    Released,
    Exited,
    Modified,
    Cancelled,
];

impl Stage {
    pub fn as_str(self) -> &'static str {
        match self {
            Submitted => "SUBMITTED",
            Refused => "REFUSED",
            Accepted => "ACCEPTED",
            LaneDecided => "LANE_DECIDED",
            UnderReview => "UNDER_REVIEW",
            Returned => "RETURNED",
            Suspended => "SUSPENDED",
            Concluded => "CONCLUDED",
            TaxSecured => "TAX_SECURED",
            Inspection => "INSPECTION",
            Released => "RELEASED",
            Exited => "EXITED",
            Modified => "MODIFIED",
            Cancelled => "CANCELLED",
        }
    }

    pub fn parse(value: &str) -> Option<Self> {
        ALL.into_iter().find(|stage| stage.as_str() == value)
    }

    /// Whether the declaration's life is over.
    pub fn is_final(self) -> bool {
        matches!(self, Refused | Exited | Cancelled)
    }

    /// The stages a declaration may move to from this one.
    pub fn next(self) -> &'static [Stage] {
        match self {
            Submitted => &[Accepted, Refused, Cancelled],
            Accepted => &[LaneDecided, Cancelled],
            // GREEN and BLUE go to duties and release, YELLOW and RED to review.
            LaneDecided => &[UnderReview, TaxSecured, Released, Inspection, Cancelled],
            // Under review again: transferred to another sub-centre (转岗).
            UnderReview => &[
                Concluded,
                Returned,
                Suspended,
                Inspection,
                Modified,
                Cancelled,
                UnderReview,
            ],
            Returned => &[Modified, Cancelled],
            Suspended => &[UnderReview, Cancelled],
            Modified => &[UnderReview, Submitted],
            Concluded => &[TaxSecured, Inspection, Released],
            TaxSecured => &[Inspection, Released],
            Inspection => &[Released, UnderReview, TaxSecured],
            Released => &[Exited],
            Refused | Exited | Cancelled => &[],
        }
    }

    pub fn may_move_to(self, to: Stage) -> bool {
        self.next().contains(&to)
    }

    /// What the public (12360 hotline, online service hall) is told, in Chinese and
    /// English. No risk or review detail.
    pub fn public_text(self) -> (&'static str, &'static str) {
        match self {
            Submitted => ("已申报，待电子审单", "Declared, awaiting electronic review"),
            Refused => (
                "电子审单不通过，已退回",
                "Not accepted by electronic review",
            ),
            Accepted => ("电子审单通过", "Accepted by electronic review"),
            LaneDecided => (
                "已接受申报，办理通关手续中",
                "Accepted, clearance in progress",
            ),
            UnderReview => ("专业审单中", "Under document review"),
            Returned => (
                "已退单，待企业修改",
                "Returned to the declarant for correction",
            ),
            Suspended => ("审单挂起", "Review on hold"),
            Concluded => ("审单完成", "Review concluded"),
            TaxSecured => ("税款已担保或缴纳", "Duties secured"),
            Inspection => ("查验中", "Under inspection"),
            Released => ("已放行", "Released"),
            Exited => ("已核放出卡口", "Left the customs area"),
            Modified => ("已修改", "Modified"),
            Cancelled => ("已撤销", "Cancelled"),
        }
    }
}

/// A step recorded on the timeline that leaves the stage as it is: the transit 转关
/// steps of a TRANSIT declaration (DOMAIN.md 3), which the field platform takes.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Note {
    TransitDeclared,
    TransitApproved,
    TransitRefused,
    TransitSealed,
    TransitUnsealed,
    TransitWrittenOff,
}

impl Note {
    pub const ALL: [Note; 6] = [
        Note::TransitDeclared,
        Note::TransitApproved,
        Note::TransitRefused,
        Note::TransitSealed,
        Note::TransitUnsealed,
        Note::TransitWrittenOff,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            Self::TransitDeclared => "TRANSIT_DECLARED",
            Self::TransitApproved => "TRANSIT_APPROVED",
            Self::TransitRefused => "TRANSIT_REFUSED",
            Self::TransitSealed => "TRANSIT_SEALED",
            Self::TransitUnsealed => "TRANSIT_UNSEALED",
            Self::TransitWrittenOff => "TRANSIT_WRITTEN_OFF",
        }
    }

    pub fn parse(value: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|note| note.as_str() == value)
    }

    /// What the public is told, in Chinese and English (a refusal's reason is not).
    pub fn public_text(self) -> (&'static str, &'static str) {
        match self {
            Self::TransitDeclared => ("已申报转关", "Transit declared"),
            Self::TransitApproved => ("转关申报审核通过", "Transit approved"),
            Self::TransitRefused => (
                "转关申报未通过，待重新申报",
                "Transit not approved; to be declared again",
            ),
            Self::TransitSealed => ("已施加关锁，转关运输途中", "Sealed by customs; in transit"),
            Self::TransitUnsealed => ("已运抵指运地，已启封", "Arrived and unsealed"),
            Self::TransitWrittenOff => ("转关已核销", "Transit written off"),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_happy_paths_are_allowed() {
        let green = [
            Submitted,
            Accepted,
            LaneDecided,
            TaxSecured,
            Released,
            Exited,
        ];
        let red = [
            Submitted,
            Accepted,
            LaneDecided,
            UnderReview,
            Concluded,
            Inspection,
            Released,
            Exited,
        ];
        for path in [&green[..], &red[..]] {
            for pair in path.windows(2) {
                assert!(
                    pair[0].may_move_to(pair[1]),
                    "{:?} -> {:?}",
                    pair[0],
                    pair[1]
                );
            }
        }
    }

    #[test]
    fn final_stages_go_nowhere_and_nothing_skips_review() {
        for stage in [Refused, Exited, Cancelled] {
            assert!(stage.is_final());
            assert!(stage.next().is_empty());
        }
        assert!(!Submitted.may_move_to(Released));
        assert!(!Released.may_move_to(Cancelled));
        assert!(!Exited.may_move_to(Released));
        let to_itself: Vec<Stage> = ALL.into_iter().filter(|s| s.may_move_to(*s)).collect();
        assert_eq!(
            to_itself,
            [UnderReview],
            "only a transfer stays where it is"
        );
        for stage in ALL {
            assert_eq!(Stage::parse(stage.as_str()), Some(stage));
            let (zh, en) = stage.public_text();
            assert!(!zh.is_empty() && !en.is_empty());
        }
        for note in Note::ALL {
            assert_eq!(Note::parse(note.as_str()), Some(note));
            let (zh, en) = note.public_text();
            assert!(!zh.is_empty() && !en.is_empty());
        }
    }
}
