//! The risk platform's gRPC services: validate, convert, call the domain, convert back.

pub mod instructions;
pub mod risk;

use customs_proto::common::Lane as ProtoLane;

use crate::domain::screening::Lane;

pub(crate) fn lane_to_proto(lane: Lane) -> ProtoLane {
    match lane {
        Lane::Green => ProtoLane::Green,
        Lane::Blue => ProtoLane::Blue,
        Lane::Yellow => ProtoLane::Yellow,
        Lane::Red => ProtoLane::Red,
    }
}

pub(crate) fn lane_from_proto(lane: ProtoLane) -> Option<Lane> {
    match lane {
        ProtoLane::Unspecified => None,
        ProtoLane::Green => Some(Lane::Green),
        ProtoLane::Blue => Some(Lane::Blue),
        ProtoLane::Yellow => Some(Lane::Yellow),
        ProtoLane::Red => Some(Lane::Red),
    }
}
