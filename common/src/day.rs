//! Calendar days as customs counts them: Beijing days, compared as `yyyymmdd` numbers
//! in the shared store.

use time::{Date, Month, OffsetDateTime, macros::offset};

use crate::error::Error;

/// Today in Beijing (UTC+8): the day a declaration, a guarantee or a ruling is judged on.
pub fn today() -> Date {
    beijing_day(OffsetDateTime::now_utc())
}

/// The Beijing day of an instant: from 16:00 UTC it is already the next day there.
pub fn beijing_day(at: OffsetDateTime) -> Date {
    at.to_offset(offset!(+8)).date()
}

/// A configured or stored ISO day, `YYYY-MM-DD`.
pub fn parse_iso_day(value: &str) -> Result<Date, time::error::Parse> {
    Date::parse(
        value,
        time::macros::format_description!("[year]-[month]-[day]"),
    )
}

/// A day as the shared store compares it: `yyyymmdd`.
pub fn day_number(date: Date) -> i32 {
    date.year() * 10_000 + i32::from(u8::from(date.month())) * 100 + i32::from(date.day())
}

/// The date of a `yyyymmdd` day number.
pub fn date_of_day(day: i32) -> Result<Date, Error> {
    let month = u8::try_from(day / 100 % 100)
        .ok()
        .and_then(|m| Month::try_from(m).ok());
    let day_of_month = u8::try_from(day % 100).ok();
    match (month, day_of_month) {
        (Some(month), Some(dom)) => Date::from_calendar_date(day / 10_000, month, dom).ok(),
        _ => None,
    }
    .ok_or_else(|| Error::internal(anyhow::anyhow!("{day} is not a yyyymmdd day")))
}

#[cfg(test)]
mod tests {
    use time::macros::date;

    use super::*;

    #[test]
    fn day_numbers_round_trip_and_order_like_dates() {
        assert_eq!(day_number(date!(2026 - 06 - 01)), 20260601);
        assert_eq!(date_of_day(20260601).unwrap(), date!(2026 - 06 - 01));
        assert!(day_number(date!(2026 - 12 - 31)) < day_number(date!(2027 - 01 - 01)));
        assert!(date_of_day(20260230).is_err());
    }

    #[test]
    fn a_beijing_day_starts_at_16_00_utc_the_day_before() {
        use time::macros::datetime;
        assert_eq!(
            beijing_day(datetime!(2026-03-01 15:59:59 UTC)),
            date!(2026 - 03 - 01)
        );
        assert_eq!(
            beijing_day(datetime!(2026-03-01 16:00 UTC)),
            date!(2026 - 03 - 02)
        );
        assert_eq!(
            beijing_day(datetime!(2026-03-02 01:00 +8)),
            date!(2026 - 03 - 02)
        );
    }
}
