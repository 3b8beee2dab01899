//! Transport monitoring (DOMAIN.md 5.4): what raises a hold on goods moving to an
//! inland inspection site. A broken seal, a lock opened outside a supervised site, or
//! a position farther from the declared route than its corridor.

use serde::{Deserialize, Serialize};

#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct Point {
    pub latitude: f64,
    pub longitude: f64,
}

const EARTH_RADIUS_M: f64 = 6_371_000.0;

/// Metres between two points (haversine).
pub fn distance_m(a: Point, b: Point) -> f64 {
    let (la1, la2) = (a.latitude.to_radians(), b.latitude.to_radians());
    let dla = la2 - la1;
    let dlo = (b.longitude - a.longitude).to_radians();
    let h = (dla / 2.0).sin().powi(2) + la1.cos() * la2.cos() * (dlo / 2.0).sin().powi(2);
    2.0 * EARTH_RADIUS_M * h.sqrt().asin()
}

/// Metres from a point to the nearest point of a route (a polyline). Each segment is
/// projected onto a plane tangent at the point, which is exact enough for the few
/// kilometres a corridor spans.
pub fn distance_to_route_m(point: Point, route: &[Point]) -> f64 {
    match route {
        [] => f64::INFINITY,
        [only] => distance_m(point, *only),
        _ => {
            let scale_x = EARTH_RADIUS_M * point.latitude.to_radians().cos();
            let project = |p: Point| {
                (
                    (p.longitude - point.longitude).to_radians() * scale_x,
                    (p.latitude - point.latitude).to_radians() * EARTH_RADIUS_M,
                )
            };
            route
                .windows(2)
                .map(|segment| {
                    let (ax, ay) = project(segment[0]);
                    let (bx, by) = project(segment[1]);
                    let (dx, dy) = (bx - ax, by - ay);
                    let length2 = dx * dx + dy * dy;
                    let t = if length2 == 0.0 {
                        0.0
                    } else {
                        (-(ax * dx + ay * dy) / length2).clamp(0.0, 1.0)
                    };
                    let (cx, cy) = (ax + t * dx, ay + t * dy);
                    (cx * cx + cy * cy).sqrt()
                })
                .fold(f64::INFINITY, f64::min)
        }
    }
}

/// Why goods are held (the wire names of `HoldReason` without the prefix).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum HoldReason {
    NoRelease,
    OpenHold,
    SealBroken,
    ContainerNotOnManifest,
    AlreadyExited,
    RouteDeviation,
    LockOpenedOutsideSite,
    LandPortModeNotYetOpen,
}

impl HoldReason {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::NoRelease => "NO_RELEASE",
            Self::OpenHold => "OPEN_HOLD",
            Self::SealBroken => "SEAL_BROKEN",
            Self::ContainerNotOnManifest => "CONTAINER_NOT_ON_MANIFEST",
            Self::AlreadyExited => "ALREADY_EXITED",
            Self::RouteDeviation => "ROUTE_DEVIATION",
            Self::LockOpenedOutsideSite => "LOCK_OPENED_OUTSIDE_SITE",
            Self::LandPortModeNotYetOpen => "LAND_PORT_MODE_NOT_YET_OPEN",
        }
    }

    pub fn parse(value: &str) -> Option<Self> {
        [
            Self::NoRelease,
            Self::OpenHold,
            Self::SealBroken,
            Self::ContainerNotOnManifest,
            Self::AlreadyExited,
            Self::RouteDeviation,
            Self::LockOpenedOutsideSite,
            Self::LandPortModeNotYetOpen,
        ]
        .into_iter()
        .find(|reason| reason.as_str() == value)
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum EventKind {
    Position,
    SealIntact,
    SealBroken,
    LockOpened,
    LockClosed,
}

/// A reported event, as the hold rules see it.
#[derive(Debug, Clone)]
pub struct Observation<'a> {
    pub kind: EventKind,
    pub position: Option<Point>,
    /// The supervised site the event happened in, if any.
    pub at_site: &'a str,
}

/// The move being monitored: its destination site, route and corridor.
#[derive(Debug, Clone)]
pub struct Move<'a> {
    pub destination: &'a str,
    pub route: &'a [Point],
    pub corridor_m: f64,
}

/// The hold an event raises, with its details.
pub fn hold_for(
    observation: &Observation<'_>,
    monitored: &Move<'_>,
) -> Option<(HoldReason, String)> {
    match observation.kind {
        EventKind::SealBroken => Some((
            HoldReason::SealBroken,
            "the seal was reported broken".to_owned(),
        )),
        EventKind::LockOpened
            if observation.at_site.is_empty() || observation.at_site != monitored.destination =>
        {
            Some((
                HoldReason::LockOpenedOutsideSite,
                if observation.at_site.is_empty() {
                    "the smart lock was opened outside any supervised site".to_owned()
                } else {
                    format!(
                        "the smart lock was opened at {}, not at {}",
                        observation.at_site, monitored.destination
                    )
                },
            ))
        }
        EventKind::Position => {
            let point = observation.position?;
            if monitored.route.is_empty() {
                return None;
            }
            let off = distance_to_route_m(point, monitored.route);
            (off > monitored.corridor_m).then(|| {
                (
                    HoldReason::RouteDeviation,
                    format!(
                        "{off:.0} m from the declared route (corridor {:.0} m)",
                        monitored.corridor_m
                    ),
                )
            })
        }
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn p(latitude: f64, longitude: f64) -> Point {
        Point {
            latitude,
            longitude,
        }
    }

    /// Yantian port to the Pinghu inland site, roughly along the highway.
    fn route() -> Vec<Point> {
        vec![
            p(22.5760, 114.2690),
            p(22.6300, 114.1900),
            p(22.6880, 114.1290),
        ]
    }

    fn monitored(route: &[Point]) -> Move<'_> {
        Move {
            destination: "5349",
            route,
            corridor_m: 2_000.0,
        }
    }

    #[test]
    fn distances_match_known_figures() {
        // One degree of latitude is about 111.2 km.
        let d = distance_m(p(22.0, 114.0), p(23.0, 114.0));
        assert!((d - 111_195.0).abs() < 50.0, "{d}");
        // A point on a segment's line is on the route; one 0.01 degree north of a
        // west-east segment is about 1.1 km off.
        let segment = [p(22.6, 114.0), p(22.6, 114.2)];
        assert!(distance_to_route_m(p(22.6, 114.1), &segment) < 1.0);
        let off = distance_to_route_m(p(22.61, 114.1), &segment);
        assert!((off - 1_112.0).abs() < 5.0, "{off}");
        // Beyond the segment's end the distance is to the end point.
        let past = distance_to_route_m(p(22.6, 114.3), &segment);
        assert!((past - distance_m(p(22.6, 114.3), p(22.6, 114.2))).abs() < 5.0);
    }

    #[test]
    fn a_position_inside_the_corridor_raises_nothing_and_one_outside_a_deviation() {
        let route = route();
        let on_route = Observation {
            kind: EventKind::Position,
            position: Some(p(22.6030, 114.2300)),
            at_site: "",
        };
        assert_eq!(hold_for(&on_route, &monitored(&route)), None);
        // Dongguan, about 30 km off the route.
        let off = Observation {
            kind: EventKind::Position,
            position: Some(p(22.8200, 113.9000)),
            at_site: "",
        };
        let (reason, details) = hold_for(&off, &monitored(&route)).unwrap();
        assert_eq!(reason, HoldReason::RouteDeviation);
        assert!(details.contains("m from the declared route"), "{details}");
    }

    #[test]
    fn seals_and_locks() {
        let route = route();
        let at = |kind, at_site| Observation {
            kind,
            position: None,
            at_site,
        };
        assert_eq!(
            hold_for(&at(EventKind::SealBroken, "5349"), &monitored(&route))
                .unwrap()
                .0,
            HoldReason::SealBroken
        );
        assert_eq!(
            hold_for(&at(EventKind::LockOpened, "5349"), &monitored(&route)),
            None
        );
        assert_eq!(
            hold_for(&at(EventKind::LockOpened, ""), &monitored(&route))
                .unwrap()
                .0,
            HoldReason::LockOpenedOutsideSite
        );
        assert_eq!(
            hold_for(&at(EventKind::LockOpened, "5149"), &monitored(&route))
                .unwrap()
                .0,
            HoldReason::LockOpenedOutsideSite
        );
        assert_eq!(
            hold_for(&at(EventKind::SealIntact, ""), &monitored(&route)),
            None
        );
        assert_eq!(
            hold_for(&at(EventKind::LockClosed, ""), &monitored(&route)),
            None
        );
        for reason in [
            HoldReason::NoRelease,
            HoldReason::LandPortModeNotYetOpen,
            HoldReason::AlreadyExited,
        ] {
            assert_eq!(HoldReason::parse(reason.as_str()), Some(reason));
        }
    }
}
