//! The tax bill (DOMAIN.md 5.4): import duty and import VAT per item, from the tariff
//! table and the exchange rates (both configuration), in exact decimals.
//!
//! Per line: the declared value is converted to CNY at the configured rate and
//! rounded half-up to 0.01 CNY (the customs value); duty = customs value × duty rate,
//! VAT = (customs value + duty) × VAT rate, each rounded half-up to 0.01 CNY. A tax
//! whose total for the declaration is under the waiver threshold (50 CNY) is waived:
//! its line amounts are shown as zero. Exports carry neither.

use std::collections::BTreeMap;

use customs_common::{Error, Violations};
use rust_decimal::{Decimal, RoundingStrategy};
use serde::{Deserialize, Serialize};
use time::{Date, Month};

use super::calendar::WorkingCalendar;

pub const ROUNDING: &str = "customs value, duty and VAT each rounded half-up to 0.01 CNY per line; \
     VAT on customs value plus duty; a tax under 50.00 CNY per declaration is waived";

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TariffLine {
    pub prefix: String,
    pub duty_rate: Decimal,
    pub vat_rate: Decimal,
}

/// A version of the tariff: the line of an HS code is the longest prefix that matches.
#[derive(Debug, Clone)]
pub struct Tariff {
    pub version: i64,
    lines: Vec<TariffLine>,
}

impl Tariff {
    pub fn new(version: i64, mut lines: Vec<TariffLine>) -> Self {
        lines.sort_by_key(|line| std::cmp::Reverse(line.prefix.len()));
        Self { version, lines }
    }

    pub fn line_for(&self, hs_code: &str) -> Option<&TariffLine> {
        self.lines
            .iter()
            .find(|line| hs_code.starts_with(&line.prefix))
    }
}

/// An item to assess.
#[derive(Debug, Clone)]
pub struct Item {
    pub line_no: i32,
    pub hs_code: String,
    pub currency: String,
    pub amount: Decimal,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct TaxLine {
    pub line_no: i32,
    pub hs_code: String,
    pub currency: String,
    pub declared_amount: Decimal,
    pub exchange_rate: Decimal,
    pub customs_value: Decimal,
    pub duty_rate: Decimal,
    pub duty: Decimal,
    pub vat_rate: Decimal,
    pub vat: Decimal,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Assessment {
    pub lines: Vec<TaxLine>,
    pub total_duty: Decimal,
    pub total_vat: Decimal,
    pub total: Decimal,
    pub duty_waived: bool,
    pub vat_waived: bool,
}

fn cents(amount: Decimal) -> Decimal {
    amount.round_dp_with_strategy(2, RoundingStrategy::MidpointAwayFromZero)
}

/// Assesses a declaration's items.
pub fn assess(
    tariff: &Tariff,
    rates: &BTreeMap<String, Decimal>,
    items: &[Item],
    import: bool,
    waiver_below: Decimal,
) -> Result<Assessment, Error> {
    let mut violations = Violations::new();
    let mut lines = Vec::with_capacity(items.len());
    for (index, item) in items.iter().enumerate() {
        let rate = rates.get(&item.currency);
        let line = tariff.line_for(&item.hs_code);
        if rate.is_none() {
            violations.push(
                format!("items[{index}].declared_value.currency_code"),
                "NO_EXCHANGE_RATE",
                format!("no exchange rate is configured for {}", item.currency),
            );
        }
        if line.is_none() {
            violations.push(
                format!("items[{index}].hs_code"),
                "NO_TARIFF_LINE",
                format!(
                    "tariff version {} has no line for {}",
                    tariff.version, item.hs_code
                ),
            );
        }
        let (Some(&rate), Some(line)) = (rate, line) else {
            continue;
        };
        let customs_value = cents(item.amount * rate);
        let (duty_rate, vat_rate) = if import {
            (line.duty_rate, line.vat_rate)
        } else {
            (Decimal::ZERO, Decimal::ZERO)
        };
        lines.push(TaxLine {
            line_no: item.line_no,
            hs_code: item.hs_code.clone(),
            currency: item.currency.clone(),
            declared_amount: item.amount,
            exchange_rate: rate,
            customs_value,
            duty_rate,
            duty: cents(customs_value * duty_rate),
            vat_rate,
            vat: Decimal::ZERO,
        });
    }
    violations.into_result()?;
    let duty_waived = {
        let total: Decimal = lines.iter().map(|l| l.duty).sum();
        total > Decimal::ZERO && total < waiver_below
    };
    for line in &mut lines {
        if duty_waived {
            line.duty = Decimal::ZERO;
        }
        line.vat = cents((line.customs_value + line.duty) * line.vat_rate);
    }
    let vat_waived = {
        let total: Decimal = lines.iter().map(|l| l.vat).sum();
        total > Decimal::ZERO && total < waiver_below
    };
    if vat_waived {
        for line in &mut lines {
            line.vat = Decimal::ZERO;
        }
    }
    let total_duty: Decimal = lines.iter().map(|l| l.duty).sum();
    let total_vat: Decimal = lines.iter().map(|l| l.vat).sum();
    Ok(Assessment {
        lines,
        total_duty,
        total_vat,
        total: total_duty + total_vat,
        duty_waived,
        vat_waived,
    })
}

/// The due date of summary payment: the 5th working day of the month after
/// `assessed` (public holidays off, weekend days worked in their place on; a year the
/// calendar does not cover counts Monday to Friday).
pub fn summary_due_date(assessed: Date, calendar: &WorkingCalendar) -> Date {
    let (year, month) = match assessed.month() {
        Month::December => (assessed.year() + 1, Month::January),
        month => (assessed.year(), month.next()),
    };
    calendar
        .nth_working_day(year, month, 5)
        .expect("a calendar is refused unless every month has five working days")
}

#[cfg(test)]
mod tests {
    use super::*;
    use time::macros::date;

    fn tariff() -> Tariff {
        let line = |prefix: &str, duty: &str, vat: &str| TariffLine {
            prefix: prefix.into(),
            duty_rate: duty.parse().unwrap(),
            vat_rate: vat.parse().unwrap(),
        };
        Tariff::new(
            1,
            vec![
                line("0202", "0.12", "0.09"),
                line("8471", "0", "0.13"),
                line("2204", "0.14", "0.13"),
                line("220421", "0.05", "0.13"),
                line("3304", "0.01", "0.13"),
                line("9503", "0", "0.13"),
            ],
        )
    }

    fn rates() -> BTreeMap<String, Decimal> {
        [("CNY", "1"), ("USD", "7.1000"), ("EUR", "7.7500")]
            .into_iter()
            .map(|(c, r)| (c.to_owned(), r.parse().unwrap()))
            .collect()
    }

    fn item(line_no: i32, hs: &str, currency: &str, amount: &str) -> Item {
        Item {
            line_no,
            hs_code: hs.into(),
            currency: currency.into(),
            amount: amount.parse().unwrap(),
        }
    }

    fn d(value: &str) -> Decimal {
        value.parse().unwrap()
    }

    /// By hand: 5,000.00 USD of computers = 35,500.00 CNY, duty 0, VAT 13% = 4,615.00;
    /// 5,250.00 USD of beef = 37,275.00 CNY, duty 12% = 4,473.00, VAT 9% of
    /// 41,748.00 = 3,757.32. Duty 4,473.00 + VAT 8,372.32 = 12,845.32.
    #[test]
    fn a_bill_computed_by_hand() {
        let bill = assess(
            &tariff(),
            &rates(),
            &[
                item(1, "8471300000", "USD", "5000.00"),
                item(2, "0202300090", "USD", "5250.00"),
            ],
            true,
            d("50"),
        )
        .unwrap();
        let lines: Vec<_> = bill
            .lines
            .iter()
            .map(|l| (l.customs_value, l.duty, l.vat))
            .collect();
        assert_eq!(
            lines,
            [
                (d("35500.00"), d("0.00"), d("4615.00")),
                (d("37275.00"), d("4473.00"), d("3757.32"))
            ]
        );
        assert_eq!(
            (bill.total_duty, bill.total_vat, bill.total),
            (d("4473.00"), d("8372.32"), d("12845.32"))
        );
    }

    /// By hand: 123.45 EUR × 7.75 = 956.7375 → 956.74; the longest prefix 220421 gives
    /// 5%: 47.837 → 47.84, waived as under 50.00; VAT 13% of 956.74 = 124.3762 →
    /// 124.38. At the 2204 rate (14%) the duty would be 133.9436 → 133.94.
    #[test]
    fn rounding_half_up_the_longest_prefix_and_a_foreign_currency() {
        let bill = assess(
            &tariff(),
            &rates(),
            &[item(1, "2204210000", "EUR", "123.45")],
            true,
            d("50"),
        )
        .unwrap();
        let line = &bill.lines[0];
        assert_eq!(
            (line.exchange_rate, line.customs_value, line.duty_rate),
            (d("7.7500"), d("956.74"), d("0.05"))
        );
        assert!(bill.duty_waived);
        assert_eq!((line.duty, line.vat), (d("0"), d("124.38")));
        let sparkling = assess(
            &tariff(),
            &rates(),
            &[item(1, "2204100000", "EUR", "123.45")],
            true,
            d("50"),
        )
        .unwrap();
        assert_eq!(
            (sparkling.lines[0].duty, sparkling.lines[0].vat),
            (d("133.94"), d("141.79"))
        );
        assert_eq!(cents(d("0.005")), d("0.01"));
        assert_eq!(cents(d("0.0049")), d("0.00"));
    }

    #[test]
    fn small_taxes_are_waived_and_exports_carry_none() {
        // 50 USD of cosmetics: 355.00 CNY, duty 3.55 and VAT 46.15: both waived.
        let bill = assess(
            &tariff(),
            &rates(),
            &[item(1, "3304990000", "USD", "50")],
            true,
            d("50"),
        )
        .unwrap();
        assert!(bill.duty_waived && bill.vat_waived);
        assert_eq!(bill.total, Decimal::ZERO);
        // 100 USD of toys: VAT 92.30 is charged.
        let bill = assess(
            &tariff(),
            &rates(),
            &[item(1, "9503000000", "USD", "100")],
            true,
            d("50"),
        )
        .unwrap();
        assert_eq!((bill.total_vat, bill.vat_waived), (d("92.30"), false));
        let export = assess(
            &tariff(),
            &rates(),
            &[item(1, "0202300090", "USD", "5250")],
            false,
            d("50"),
        )
        .unwrap();
        assert_eq!(export.total, Decimal::ZERO);
    }

    #[test]
    fn every_missing_rate_and_tariff_line_is_reported() {
        let error = assess(
            &tariff(),
            &rates(),
            &[
                item(1, "0101210000", "USD", "1"),
                item(2, "8471300000", "XAU", "1"),
            ],
            true,
            d("50"),
        )
        .unwrap_err();
        let text = format!("{error:?}");
        assert!(
            text.contains("NO_TARIFF_LINE") && text.contains("NO_EXCHANGE_RATE"),
            "{text}"
        );
    }

    /// The working calendar the default configuration ships (the State Council's
    /// schedule for 2026, published 2025-11-04).
    fn shipped_calendar() -> WorkingCalendar {
        let settings = customs_common::config::Settings::defaults().unwrap();
        WorkingCalendar::from_settings(&settings.field.calendar).unwrap()
    }

    #[test]
    fn summary_payment_is_due_on_the_fifth_working_day_of_the_next_month() {
        let calendar = shipped_calendar();
        // December 2026 starts on a Tuesday: 1, 2, 3, 4, 7.
        assert_eq!(
            summary_due_date(date!(2026 - 11 - 26), &calendar),
            date!(2026 - 12 - 07)
        );
        // January 2026: 1 to 3 off, Sunday 4 worked: 4, 5, 6, 7, 8.
        assert_eq!(
            summary_due_date(date!(2025 - 12 - 15), &calendar),
            date!(2026 - 01 - 08)
        );
        // May 2026: 1 to 5 off, Saturday 9 worked: 6, 7, 8, 9, 11.
        assert_eq!(
            summary_due_date(date!(2026 - 04 - 30), &calendar),
            date!(2026 - 05 - 11)
        );
        // October 2026: 1 to 7 off, Saturday 10 worked: 8, 9, 10, 12, 13 (Monday to
        // Friday alone would say the 7th, in the middle of the holiday).
        assert_eq!(
            summary_due_date(date!(2026 - 09 - 01), &calendar),
            date!(2026 - 10 - 13)
        );
        assert_eq!(
            summary_due_date(date!(2026 - 09 - 01), &WorkingCalendar::default()),
            date!(2026 - 10 - 07)
        );
        // February 2026: the Spring Festival (15 to 23) comes after the 5th: 2 to 6.
        assert_eq!(
            summary_due_date(date!(2026 - 01 - 31), &calendar),
            date!(2026 - 02 - 06)
        );
        // January 2027 is not in the calendar: Monday to Friday, 1, 4, 5, 6, 7.
        assert_eq!(
            summary_due_date(date!(2026 - 12 - 31), &calendar),
            date!(2027 - 01 - 07)
        );
    }
}
