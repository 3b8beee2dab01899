//! Conversions between wire types and the `time` types the platforms use, and what the
//! platforms read alike off a wire message.

use std::collections::BTreeMap;

use prost_types::Timestamp;
use rust_decimal::Decimal;
use time::{Date, Month, OffsetDateTime};

use crate::common::{CreditClass, Date as ProtoDate, DeclarationContent, RulingKind};

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

/// The credit-class code a request names: its `credit_class_code`, else the 2018
/// scheme's enum value (its name without the prefix). `Err` when both are given and
/// differ; `Ok(None)` when neither is.
pub fn requested_credit_class(class: i32, code: &str) -> Result<Option<String>, String> {
    let code = code.trim().to_ascii_uppercase();
    let named = CreditClass::try_from(class)
        .ok()
        .filter(|class| *class != CreditClass::Unspecified)
        .map(|class| {
            class
                .as_str_name()
                .trim_start_matches("CREDIT_CLASS_")
                .to_owned()
        });
    match (named, code.is_empty()) {
        (None, true) => Ok(None),
        (None, false) => Ok(Some(code)),
        (Some(named), true) => Ok(Some(named)),
        (Some(named), false) if named == code => Ok(Some(code)),
        (Some(named), false) => Err(format!(
            "credit_class names {named} and credit_class_code {code}; give one, or both alike"
        )),
    }
}

/// The request field that named a class, for its violations: `credit_class_code` when
/// given, else `credit_class`.
pub fn credit_class_field(code: &str) -> &'static str {
    if code.trim().is_empty() {
        "credit_class"
    } else {
        "credit_class_code"
    }
}

/// The 2018 scheme's enum value of a class code, or unspecified for another scheme's.
pub fn credit_class_enum(code: &str) -> CreditClass {
    CreditClass::from_str_name(&format!("CREDIT_CLASS_{code}")).unwrap_or_default()
}

impl crate::declaration::Enterprise {
    /// Its credit class by code: `credit_class_code`, or the name of the 2018 enum's
    /// value when a declaration platform of an earlier release left the code out.
    pub fn class_code(&self) -> String {
        if self.credit_class_code.is_empty() {
            self.credit_class()
                .as_str_name()
                .trim_start_matches("CREDIT_CLASS_")
                .to_owned()
        } else {
            self.credit_class_code.clone()
        }
    }
}

impl DeclarationContent {
    /// What the items cite of each licence, summed per licence (as electronic review
    /// draws it), with the fields that cite it (`items[i].rulings[j].quantity`). A
    /// quantity that is not a decimal is left out (the logic checks refuse it).
    pub fn licence_quantities(&self) -> BTreeMap<String, (Decimal, Vec<String>)> {
        let mut quantities = BTreeMap::<String, (Decimal, Vec<String>)>::new();
        for (i, item) in self.items.iter().enumerate() {
            for (j, citation) in item.rulings.iter().enumerate() {
                if citation.kind() != RulingKind::Licence {
                    continue;
                }
                let Ok(quantity) = citation.quantity.trim().parse::<Decimal>() else {
                    continue;
                };
                let entry = quantities
                    .entry(citation.ruling_id.trim().to_owned())
                    .or_default();
                entry.0 += quantity;
                entry.1.push(format!("items[{i}].rulings[{j}].quantity"));
            }
        }
        quantities
    }
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

    #[test]
    fn a_credit_class_is_named_by_code_or_by_the_2018_enum() {
        let general = CreditClass::GeneralCredit as i32;
        assert_eq!(requested_credit_class(0, ""), Ok(None));
        assert_eq!(
            requested_credit_class(general, ""),
            Ok(Some("GENERAL_CREDIT".into()))
        );
        assert_eq!(
            requested_credit_class(0, " trusted "),
            Ok(Some("TRUSTED".into()))
        );
        assert_eq!(
            requested_credit_class(general, "GENERAL_CREDIT"),
            Ok(Some("GENERAL_CREDIT".into()))
        );
        assert!(requested_credit_class(general, "DISCREDITED").is_err());
        assert_eq!(credit_class_enum("DISCREDITED"), CreditClass::Discredited);
        assert_eq!(credit_class_enum("TRUSTED"), CreditClass::Unspecified);
        assert_eq!(credit_class_field(" "), "credit_class");
        assert_eq!(credit_class_field("TRUSTED"), "credit_class_code");
    }
}
