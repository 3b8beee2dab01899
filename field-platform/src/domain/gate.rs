//! The gate check (DOMAIN.md 5.4): one standard at every gate, decided from the
//! electronic release record alone. No release, an open hold, a broken seal, a
//! container not on the manifest, a second exit, or the integrated mode at a land
//! port before its opening day: hold.
//!
//! Goods leave by the container: a truck takes out the containers it presents, and a
//! declaration leaves in full with its last container. A declaration presented without
//! any of its containers (or that has none) leaves in full at once.

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
    /// Those of them that have left.
    pub exited_containers: Vec<String>,
    /// Whether the goods have left in full.
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

/// What a PASS lets out of one declaration.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Exit {
    pub declaration_number: String,
    /// Its containers on the vehicle; empty: all it has left.
    pub containers: Vec<String>,
}

/// The exits a PASS records: per declaration presented, its containers on the vehicle.
pub fn exits(presented: &Presented<'_>, releases: &HashMap<String, ReleaseFacts>) -> Vec<Exit> {
    presented
        .declarations
        .iter()
        .map(|number| Exit {
            declaration_number: number.clone(),
            containers: releases.get(number).map_or_else(Vec::new, |release| {
                presented
                    .containers
                    .iter()
                    .filter(|c| release.containers.contains(c))
                    .cloned()
                    .collect()
            }),
        })
        .collect()
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
        } else {
            for container in presented
                .containers
                .iter()
                .filter(|c| release.exited_containers.contains(c))
            {
                hold(
                    HoldReason::AlreadyExited,
                    number,
                    container,
                    "this container has already left the customs area".to_owned(),
                );
            }
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
            exited_containers: Vec::new(),
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

    fn at_sea_port<'a>(containers: &'a [String], numbers: &'a [String]) -> Presented<'a> {
        Presented {
            port_code: "5316",
            port_is_land: false,
            containers,
            declarations: numbers,
        }
    }

    #[test]
    fn containers_leave_one_truck_at_a_time() {
        let today = date!(2026 - 11 - 26);
        let mut releases =
            HashMap::from([("A".to_owned(), released(&["MSKU1234565", "TGHU7654321"]))]);
        let (numbers, first) = (["A".to_owned()], ["MSKU1234565".to_owned()]);
        assert_eq!(
            exits(&at_sea_port(&first, &numbers), &releases),
            [Exit {
                declaration_number: "A".into(),
                containers: first.to_vec()
            }]
        );
        assert_eq!(
            exits(&at_sea_port(&[], &numbers), &releases)[0].containers,
            Vec::<String>::new(),
            "none presented: all it has left"
        );
        releases.get_mut("A").unwrap().exited_containers = first.to_vec();
        assert_eq!(
            reasons(&releases, "5316", false, &["MSKU1234565"], &["A"], today),
            [HoldReason::AlreadyExited],
            "the first container again"
        );
        assert_eq!(
            reasons(&releases, "5316", false, &["TGHU7654321"], &["A"], today),
            [],
            "the second goes"
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
