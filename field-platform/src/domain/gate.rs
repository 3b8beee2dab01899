//! The gate check (DOMAIN.md 5.4): one standard at every gate, decided from the
//! electronic release record alone. No release, an open hold, a broken seal, a
//! container not on the manifest, a second exit, or the integrated mode at a land
//! port before its opening day: hold.

use std::collections::HashMap;

use time::Date;

use super::transport::HoldReason;

/// What the release record says of one declaration.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ReleaseFacts {
    pub port_code: String,
    pub integrated_mode: bool,
    /// The containers released, as matched against the manifest at acceptance.
    pub containers: Vec<String>,
    pub exited: bool,
    pub open_holds: Vec<HoldReason>,
}

/// The gate presenting a vehicle.
#[derive(Debug, Clone)]
pub struct Presented<'a> {
    pub port_code: &'a str,
    pub port_is_land: bool,
    pub containers: &'a [String],
    pub declarations: &'a [String],
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct GateHold {
    pub reason: HoldReason,
    pub declaration_number: String,
    pub container_number: String,
    pub details: String,
}

/// Every reason to hold the vehicle; empty means PASS.
pub fn check(
    presented: &Presented<'_>,
    releases: &HashMap<String, ReleaseFacts>,
    today: Date,
    land_port_integrated_from: Date,
) -> Vec<GateHold> {
    let mut holds = Vec::new();
    let mut hold = |reason, declaration: &str, container: &str, details: String| {
        holds.push(GateHold {
            reason,
            declaration_number: declaration.to_owned(),
            container_number: container.to_owned(),
            details,
        });
    };
    for number in presented.declarations {
        let Some(release) = releases.get(number) else {
            hold(
                HoldReason::NoRelease,
                number,
                "",
                "no electronic release record".to_owned(),
            );
            continue;
        };
        if release.port_code != presented.port_code {
            hold(
                HoldReason::NoRelease,
                number,
                "",
                format!(
                    "released for exit at {}, not {}",
                    release.port_code, presented.port_code
                ),
            );
        }
        if release.exited {
            hold(
                HoldReason::AlreadyExited,
                number,
                "",
                "the goods have already left the customs area".to_owned(),
            );
        }
        let mut open_holds = release.open_holds.clone();
        open_holds.sort_unstable();
        for reason in open_holds {
            match reason {
                HoldReason::SealBroken => hold(
                    reason,
                    number,
                    "",
                    "the seal was reported broken".to_owned(),
                ),
                other => hold(
                    HoldReason::OpenHold,
                    number,
                    "",
                    format!("open hold: {}", other.as_str()),
                ),
            }
        }
        if presented.port_is_land && release.integrated_mode && today < land_port_integrated_from {
            hold(
                HoldReason::LandPortModeNotYetOpen,
                number,
                "",
                format!("the integrated mode opens at land ports on {land_port_integrated_from}"),
            );
        }
    }
    // Containers are checked against the release records found; with none, the
    // vehicle is held for that already.
    let found_any = presented
        .declarations
        .iter()
        .any(|number| releases.contains_key(number));
    for container in presented.containers.iter().filter(|_| found_any) {
        let released = presented
            .declarations
            .iter()
            .filter_map(|number| releases.get(number))
            .any(|release| release.containers.iter().any(|c| c == container));
        if !released {
            hold(
                HoldReason::ContainerNotOnManifest,
                "",
                container,
                "not on the manifest of any declaration presented".to_owned(),
            );
        }
    }
    holds
}

#[cfg(test)]
mod tests {
    use super::*;
    use time::macros::date;

    fn released(containers: &[&str]) -> ReleaseFacts {
        ReleaseFacts {
            port_code: "5316".into(),
            integrated_mode: true,
            containers: containers.iter().map(|c| c.to_string()).collect(),
            exited: false,
            open_holds: Vec::new(),
        }
    }

    fn reasons(
        releases: &HashMap<String, ReleaseFacts>,
        port: &str,
        land: bool,
        containers: &[&str],
        numbers: &[&str],
        today: Date,
    ) -> Vec<HoldReason> {
        let containers: Vec<String> = containers.iter().map(|c| c.to_string()).collect();
        let numbers: Vec<String> = numbers.iter().map(|c| c.to_string()).collect();
        let presented = Presented {
            port_code: port,
            port_is_land: land,
            containers: &containers,
            declarations: &numbers,
        };
        check(&presented, releases, today, date!(2014 - 12 - 01))
            .into_iter()
            .map(|h| h.reason)
            .collect()
    }

    #[test]
    fn each_hold_reason() {
        let today = date!(2026 - 11 - 26);
        let mut releases = HashMap::from([("A".to_owned(), released(&["MSKU1234565"]))]);
        assert_eq!(
            reasons(&releases, "5316", false, &["MSKU1234565"], &["A"], today),
            []
        );
        assert_eq!(
            reasons(&releases, "5316", false, &[], &["B"], today),
            [HoldReason::NoRelease]
        );
        assert_eq!(
            reasons(&releases, "5201", false, &[], &["A"], today),
            [HoldReason::NoRelease]
        );
        assert_eq!(
            reasons(&releases, "5316", false, &["TGHU0000001"], &["A"], today),
            [HoldReason::ContainerNotOnManifest]
        );
        releases.get_mut("A").unwrap().open_holds =
            vec![HoldReason::SealBroken, HoldReason::RouteDeviation];
        assert_eq!(
            reasons(&releases, "5316", false, &[], &["A"], today),
            [HoldReason::SealBroken, HoldReason::OpenHold]
        );
        releases.get_mut("A").unwrap().open_holds.clear();
        releases.get_mut("A").unwrap().exited = true;
        assert_eq!(
            reasons(&releases, "5316", false, &[], &["A"], today),
            [HoldReason::AlreadyExited]
        );
    }

    #[test]
    fn the_land_port_opening_day_applies_at_the_gate() {
        let mut release = released(&[]);
        release.port_code = "5320".into();
        let releases = HashMap::from([("A".to_owned(), release)]);
        assert_eq!(
            reasons(&releases, "5320", true, &[], &["A"], date!(2014 - 11 - 30)),
            [HoldReason::LandPortModeNotYetOpen]
        );
        assert_eq!(
            reasons(&releases, "5320", true, &[], &["A"], date!(2014 - 12 - 01)),
            []
        );
        // A sea port, or another mode, is not concerned.
        assert_eq!(
            reasons(&releases, "5320", false, &[], &["A"], date!(2014 - 11 - 30)),
            []
        );
    }
}
