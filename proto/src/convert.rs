//! Conversions between wire types and the `time` types the platforms use.

use prost_types::Timestamp;
use time::{Date, Month, OffsetDateTime};

use crate::common::Date as ProtoDate;

impl From<Date> for ProtoDate {
    fn from(date: Date) -> Self {
        Self {
            year: date.year(),
            month: i32::from(u8::from(date.month())),
            day: i32::from(date.day()),
        }
    }
}

impl TryFrom<&ProtoDate> for Date {
    type Error = time::error::ComponentRange;

    fn try_from(date: &ProtoDate) -> Result<Self, Self::Error> {
        let month = u8::try_from(date.month).unwrap_or(0);
        let day = u8::try_from(date.day).unwrap_or(0);
        Date::from_calendar_date(date.year, Month::try_from(month)?, day)
    }
}

/// An instant as a protobuf `Timestamp`.
pub fn timestamp(instant: OffsetDateTime) -> Timestamp {
    Timestamp {
        seconds: instant.unix_timestamp(),
        nanos: i32::try_from(instant.nanosecond()).unwrap_or(0),
    }
}

/// A protobuf `Timestamp` as an instant, when it is in range.
pub fn instant(timestamp: &Timestamp) -> Option<OffsetDateTime> {
    let nanos = i128::from(timestamp.seconds) * 1_000_000_000 + i128::from(timestamp.nanos);
    OffsetDateTime::from_unix_timestamp_nanos(nanos).ok()
}

#[cfg(test)]
mod tests {
    use time::macros::{date, datetime};

    use super::*;

    #[test]
    fn dates_round_trip_and_invalid_dates_are_refused() {
        let proto = ProtoDate::from(date!(2026 - 02 - 28));
        assert_eq!((proto.year, proto.month, proto.day), (2026, 2, 28));
        assert_eq!(Date::try_from(&proto).unwrap(), date!(2026 - 02 - 28));
        assert!(
            Date::try_from(&ProtoDate {
                year: 2026,
                month: 2,
                day: 30
            })
            .is_err()
        );
        assert!(
            Date::try_from(&ProtoDate {
                year: 2026,
                month: 13,
                day: 1
            })
            .is_err()
        );
        assert!(Date::try_from(&ProtoDate::default()).is_err());
    }

    #[test]
    fn timestamps_round_trip() {
        let at = datetime!(2026-11-26 10:30:00.123456 UTC);
        assert_eq!(instant(&timestamp(at)).unwrap(), at);
    }
}
