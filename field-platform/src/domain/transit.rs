//! Transit 转关 (DOMAIN.md 3): a TRANSIT declaration's goods travel under customs seal
//! between the house over its port and an inland house. The steps are the ones the
//! integrated mode does without: the transit declaration, its review, sealing the
//! vehicle at departure, unsealing it at the destination and writing the transit off.
//! The declaration is released only once its transit is written off.

use customs_common::{Violations, codes};

use super::transport::{EventKind, HoldReason};

/// Where a transit is.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TransitState {
    Declared,
    Approved,
    Refused,
    Sealed,
    Unsealed,
    WrittenOff,
}

impl TransitState {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Declared => "DECLARED",
            Self::Approved => "APPROVED",
            Self::Refused => "REFUSED",
            Self::Sealed => "SEALED",
            Self::Unsealed => "UNSEALED",
            Self::WrittenOff => "WRITTEN_OFF",
        }
    }

    pub fn parse(value: &str) -> Option<Self> {
        [
            Self::Declared,
            Self::Approved,
            Self::Refused,
            Self::Sealed,
            Self::Unsealed,
            Self::WrittenOff,
        ]
        .into_iter()
        .find(|state| state.as_str() == value)
    }
}

/// Which end of the transit takes a step.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum End {
    Departure,
    Destination,
}

/// A step an officer takes; declaring is the declarant's and has rules of its own.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Step {
    Approve,
    Refuse,
    Seal,
    Unseal,
    WriteOff,
}

impl Step {
    /// The state the transit must be in, the state it reaches, and the end whose house
    /// takes the step.
    pub fn rule(self) -> (TransitState, TransitState, End) {
        use TransitState::*;
        match self {
            Self::Approve => (Declared, Approved, End::Departure),
            Self::Refuse => (Declared, Refused, End::Departure),
            Self::Seal => (Approved, Sealed, End::Departure),
            Self::Unseal => (Sealed, Unsealed, End::Destination),
            Self::WriteOff => (Unsealed, WrittenOff, End::Departure),
        }
    }

    pub fn name(self) -> &'static str {
        match self {
            Self::Approve => "approving",
            Self::Refuse => "refusing",
            Self::Seal => "sealing",
            Self::Unseal => "unsealing",
            Self::WriteOff => "writing off",
        }
    }
}

/// (departure, destination) houses: an import travels from its port's house inland, an
/// export from inland to its port's house.
pub fn ends(import: bool, port_house: &str, inland_house: &str) -> (String, String) {
    if import {
        (port_house.to_owned(), inland_house.to_owned())
    } else {
        (inland_house.to_owned(), port_house.to_owned())
    }
}

const MAX_SEALS: usize = 20;

/// Seal numbers as given: each 4 to 20 letters or digits (upper-cased), none twice; at
/// least one when `required`, at most 20.
pub fn parse_seals(
    field: &str,
    given: &[String],
    required: bool,
    violations: &mut Violations,
) -> Vec<String> {
    if required && given.is_empty() {
        violations.push(field, "REQUIRED", "at least one seal number");
    }
    if given.len() > MAX_SEALS {
        violations.push(
            field,
            "TOO_MANY_SEALS",
            format!("at most {MAX_SEALS} seals a vehicle"),
        );
    }
    let mut seals: Vec<String> = Vec::with_capacity(given.len());
    for (i, seal) in given.iter().enumerate() {
        let seal = seal.trim().to_ascii_uppercase();
        if !(4..=20).contains(&seal.len()) || !seal.bytes().all(|b| b.is_ascii_alphanumeric()) {
            violations.push(
                format!("{field}[{i}]"),
                "SEAL_NUMBER_FORMAT",
                "a seal number is 4 to 20 letters or digits",
            );
        } else if seals.contains(&seal) {
            violations.push(
                format!("{field}[{i}]"),
                "DUPLICATE_SEAL",
                format!("seal {seal} is listed twice"),
            );
        } else {
            seals.push(seal);
        }
    }
    seals
}

/// What unsealing found wrong, or `None` when every seal put on was found intact and
/// nothing else was.
pub fn seal_discrepancy(put_on: &[String], found_intact: &[String]) -> Option<String> {
    let missing: Vec<&str> = put_on
        .iter()
        .filter(|seal| !found_intact.contains(seal))
        .map(String::as_str)
        .collect();
    let foreign: Vec<&str> = found_intact
        .iter()
        .filter(|seal| !put_on.contains(seal))
        .map(String::as_str)
        .collect();
    let mut found = Vec::new();
    if !missing.is_empty() {
        found.push(format!(
            "seal(s) {} put on at departure not found intact",
            missing.join(", ")
        ));
    }
    if !foreign.is_empty() {
        found.push(format!(
            "seal(s) {} not put on at departure",
            foreign.join(", ")
        ));
    }
    (!found.is_empty()).then(|| found.join("; "))
}

/// The inland house of a transit: one of the seven (an office code names its house),
/// not the house over the port.
pub fn inland_house(
    field: &str,
    code: &str,
    port_house: &str,
    violations: &mut Violations,
) -> Option<String> {
    let code = violations.keep(codes::parse_house_code(field, code))?;
    let Some((house, _, _)) = codes::house(&code) else {
        violations.push(
            field,
            "UNKNOWN_HOUSE",
            format!("{code} is not one of the seven Guangdong houses"),
        );
        return None;
    };
    if house == port_house {
        violations.push(
            field,
            "SAME_HOUSE",
            format!("the port is under {house} already: a transit goes between two houses"),
        );
        return None;
    }
    Some(house.to_owned())
}

/// The hold a report of a sealed transit's lock or tracker raises: a broken seal, or
/// the lock opened before the destination house unsealed the vehicle. A transit
/// declares no route, so a position raises nothing.
pub fn hold_for(kind: EventKind, at_site: &str) -> Option<(HoldReason, String)> {
    match kind {
        EventKind::SealBroken => Some((
            HoldReason::SealBroken,
            "the transit's seal was reported broken".to_owned(),
        )),
        EventKind::LockOpened => Some((
            HoldReason::LockOpenedOutsideSite,
            if at_site.is_empty() {
                "the transit's smart lock was opened before the destination unsealed the vehicle"
                    .to_owned()
            } else {
                format!(
                    "the transit's smart lock was opened at {at_site} before the destination unsealed the vehicle"
                )
            },
        )),
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn seals(list: &[&str]) -> Vec<String> {
        list.iter().map(|s| s.to_string()).collect()
    }

    #[test]
    fn the_steps_go_in_order_and_each_end_takes_its_own() {
        use TransitState::*;
        let mut state = Declared;
        for (step, end) in [
            (Step::Approve, End::Departure),
            (Step::Seal, End::Departure),
            (Step::Unseal, End::Destination),
            (Step::WriteOff, End::Departure),
        ] {
            let (from, to, at) = step.rule();
            assert_eq!((from, at), (state, end), "{step:?}");
            state = to;
        }
        assert_eq!(state, WrittenOff);
        assert_eq!(Step::Refuse.rule(), (Declared, Refused, End::Departure));
        for state in [Declared, Approved, Refused, Sealed, Unsealed, WrittenOff] {
            assert_eq!(TransitState::parse(state.as_str()), Some(state));
        }
    }

    #[test]
    fn an_import_leaves_from_its_port_and_an_export_arrives_at_it() {
        assert_eq!(ends(true, "5300", "5100"), ("5300".into(), "5100".into()));
        assert_eq!(ends(false, "5300", "5100"), ("5100".into(), "5300".into()));
    }

    #[test]
    fn seals_are_checked_and_normalised() {
        let mut violations = Violations::new();
        let parsed = parse_seals(
            "s",
            &seals(&["gd000123", " GD000124 "]),
            true,
            &mut violations,
        );
        assert!(violations.is_empty());
        assert_eq!(parsed, ["GD000123", "GD000124"]);

        let mut violations = Violations::new();
        parse_seals("s", &[], true, &mut violations);
        parse_seals(
            "s",
            &seals(&["12", "GD-1", "AB1234", "ab1234"]),
            false,
            &mut violations,
        );
        let reasons: Vec<(String, String)> = violations
            .into_vec()
            .into_iter()
            .map(|v| (v.field, v.reason.to_string()))
            .collect();
        assert_eq!(
            reasons,
            [
                ("s".into(), "REQUIRED".into()),
                ("s[0]".into(), "SEAL_NUMBER_FORMAT".into()),
                ("s[1]".into(), "SEAL_NUMBER_FORMAT".into()),
                ("s[3]".into(), "DUPLICATE_SEAL".into()),
            ]
        );
        let mut violations = Violations::new();
        parse_seals("s", &vec!["AB1234".to_string(); 21], true, &mut violations);
        assert!(
            violations
                .into_vec()
                .iter()
                .any(|v| v.reason == "TOO_MANY_SEALS")
        );
    }

    #[test]
    fn unsealing_finds_seals_missing_broken_or_foreign() {
        let put_on = seals(&["S0001", "S0002"]);
        assert_eq!(seal_discrepancy(&put_on, &seals(&["S0002", "S0001"])), None);
        assert_eq!(
            seal_discrepancy(&put_on, &seals(&["S0001"])).unwrap(),
            "seal(s) S0002 put on at departure not found intact"
        );
        assert_eq!(
            seal_discrepancy(&put_on, &seals(&["S0001", "S0002", "X0009"])).unwrap(),
            "seal(s) X0009 not put on at departure"
        );
        assert!(seal_discrepancy(&put_on, &[]).is_some());
    }

    #[test]
    fn a_sealed_transit_is_held_for_a_broken_seal_or_an_opened_lock() {
        assert_eq!(
            hold_for(EventKind::SealBroken, "").map(|(reason, _)| reason),
            Some(HoldReason::SealBroken)
        );
        let (reason, details) = hold_for(EventKind::LockOpened, "SZ-DEPOT-1").unwrap();
        assert_eq!(reason, HoldReason::LockOpenedOutsideSite);
        assert!(details.contains("SZ-DEPOT-1"), "{details}");
        for kind in [EventKind::Position, EventKind::SealIntact] {
            assert_eq!(hold_for(kind, ""), None, "{kind:?}");
        }
    }

    #[test]
    fn the_inland_house_is_another_of_the_seven() {
        let mut violations = Violations::new();
        assert_eq!(
            inland_house("h", "5101", "5300", &mut violations).as_deref(),
            Some("5100")
        );
        assert!(violations.is_empty());
        for (code, reason) in [
            ("51", "HOUSE_CODE_FORMAT"),
            ("9900", "UNKNOWN_HOUSE"),
            ("5316", "SAME_HOUSE"),
        ] {
            let mut violations = Violations::new();
            assert_eq!(inland_house("h", code, "5300", &mut violations), None);
            assert_eq!(violations.into_vec()[0].reason, reason, "{code}");
        }
    }
}
