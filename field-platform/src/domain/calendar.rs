//! Working days, as the State Council publishes them each November for the next year
//! (国务院办公厅关于部分节假日安排的通知): Monday to Friday, less the public holidays
//! and the weekdays taken with them, plus the weekend days worked in their place
//! (调休). Summary payment falls due on such a day (DOMAIN.md 7).

use std::collections::{BTreeMap, BTreeSet};

use customs_common::{config::CalendarYearSetting, day::parse_iso_day};
use time::{Date, Duration, Month, Weekday};

/// One published year.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct CalendarYear {
    pub days_off: BTreeSet<Date>,
    pub working_weekends: BTreeSet<Date>,
}

/// The working calendar of the years it has been given. A year it was not given is
/// counted Monday to Friday (`covers` tells).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct WorkingCalendar {
    years: BTreeMap<i32, CalendarYear>,
}

fn is_weekend(day: Date) -> bool {
    matches!(day.weekday(), Weekday::Saturday | Weekday::Sunday)
}

impl WorkingCalendar {
    /// Checks each year as published: its days in that year, each given once, and a
    /// worked weekend day on a Saturday or a Sunday.
    pub fn new(years: impl IntoIterator<Item = (i32, CalendarYear)>) -> Result<Self, String> {
        let mut calendar = BTreeMap::new();
        for (year, days) in years {
            let listed = days.days_off.iter().chain(&days.working_weekends);
            if let Some(stray) = listed.clone().find(|day| day.year() != year) {
                return Err(format!("{stray} is listed under the year {year}"));
            }
            if let Some(both) = days.days_off.intersection(&days.working_weekends).next() {
                return Err(format!("{both} is listed both as a day off and as worked"));
            }
            if let Some(weekday) = days.working_weekends.iter().find(|day| !is_weekend(**day)) {
                return Err(format!(
                    "{weekday} is a {}: only a Saturday or a Sunday is worked in place of a holiday",
                    weekday.weekday()
                ));
            }
            if calendar.insert(year, days).is_some() {
                return Err(format!("the year {year} is given twice"));
            }
        }
        let calendar = Self { years: calendar };
        // A payment falls due on a month's 5th working day: every month has one.
        for &year in calendar.years.keys() {
            let mut month = Month::January;
            for _ in 0..12 {
                if calendar.nth_working_day(year, month, 5).is_none() {
                    return Err(format!("{month} {year} has fewer than five working days"));
                }
                month = month.next();
            }
        }
        Ok(calendar)
    }

    /// From the configuration's `[[field.calendar]]` years.
    pub fn from_settings(years: &[CalendarYearSetting]) -> Result<Self, String> {
        let days = |list: &[String]| -> Result<BTreeSet<Date>, String> {
            list.iter()
                .map(|day| {
                    parse_iso_day(day).map_err(|_| format!("{day:?} is not a day (YYYY-MM-DD)"))
                })
                .collect()
        };
        let years = years
            .iter()
            .map(|year| {
                Ok((
                    year.year,
                    CalendarYear {
                        days_off: days(&year.days_off)?,
                        working_weekends: days(&year.working_weekends)?,
                    },
                ))
            })
            .collect::<Result<Vec<_>, String>>()?;
        Self::new(years)
    }

    /// Whether the holidays of `year` are known.
    pub fn covers(&self, year: i32) -> bool {
        self.years.contains_key(&year)
    }

    pub fn is_working_day(&self, day: Date) -> bool {
        match self.years.get(&day.year()) {
            Some(year) if is_weekend(day) => year.working_weekends.contains(&day),
            Some(year) => !year.days_off.contains(&day),
            None => !is_weekend(day),
        }
    }

    /// The `n`th working day (from 1) of a month.
    pub fn nth_working_day(&self, year: i32, month: Month, n: u32) -> Option<Date> {
        let mut day = Date::from_calendar_date(year, month, 1).ok()?;
        let mut seen = 0;
        while day.month() == month {
            if self.is_working_day(day) {
                seen += 1;
                if seen == n {
                    return Some(day);
                }
            }
            day += Duration::days(1);
        }
        None
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use time::macros::date;

    fn year(days_off: &[Date], working_weekends: &[Date]) -> CalendarYear {
        CalendarYear {
            days_off: days_off.iter().copied().collect(),
            working_weekends: working_weekends.iter().copied().collect(),
        }
    }

    #[test]
    fn holidays_are_off_and_weekends_worked_in_their_place_are_on() {
        let calendar = WorkingCalendar::new([(
            2026,
            year(
                &[date!(2026 - 10 - 01), date!(2026 - 10 - 02)],
                &[date!(2026 - 10 - 10)],
            ),
        )])
        .unwrap();
        assert!(!calendar.is_working_day(date!(2026 - 10 - 01)), "a holiday");
        assert!(calendar.is_working_day(date!(2026 - 10 - 08)), "a Thursday");
        assert!(
            calendar.is_working_day(date!(2026 - 10 - 10)),
            "a Saturday worked"
        );
        assert!(!calendar.is_working_day(date!(2026 - 10 - 11)), "a Sunday");
        assert!(!calendar.covers(2027));
        assert!(
            calendar.is_working_day(date!(2027 - 01 - 01)),
            "a Friday of a year not given"
        );
    }

    #[test]
    fn a_calendar_that_cannot_be_right_is_refused() {
        let refused = |days: CalendarYear| WorkingCalendar::new([(2026, days)]).unwrap_err();
        assert!(refused(year(&[date!(2027 - 01 - 01)], &[])).contains("under the year 2026"));
        assert!(refused(year(&[], &[date!(2026 - 10 - 09)])).contains("Friday"));
        assert!(refused(year(&[date!(2026 - 10 - 10)], &[date!(2026 - 10 - 10)])).contains("both"));
        let twice = WorkingCalendar::new([(2026, year(&[], &[])), (2026, year(&[], &[]))]);
        assert!(twice.unwrap_err().contains("twice"));
        let february: Vec<Date> = (1..=28)
            .map(|d| Date::from_calendar_date(2026, Month::February, d).unwrap())
            .collect();
        assert!(refused(year(&february, &[])).contains("February 2026 has fewer than five"));
    }
}
