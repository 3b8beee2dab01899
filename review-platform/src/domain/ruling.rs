//! Issuing a mutual-recognition ruling: what each kind must state.

use customs_common::{
    Error, Violations,
    codes::{parse_country, parse_enterprise_code, parse_hs_code, parse_hs_prefix},
    error::FieldViolation,
    money::{parse_amount, parse_currency},
    rulings::{RulingKind, RulingRecord},
};
use rust_decimal::Decimal;
use time::Date;

pub use customs_common::day::{date_of_day, day_number};

/// What an issuing officer states; validated by [`NewRuling::parse`].
#[derive(Debug, Clone, Default)]
pub struct RulingDraft<'a> {
    pub kind: Option<RulingKind>,
    pub holder: &'a str,
    pub subject: &'a str,
    pub hs_code: &'a str,
    /// Currency and amount of a unit price; empty when not stated.
    pub unit_price: Option<(&'a str, &'a str)>,
    pub origin_country: &'a str,
    pub quantity_granted: &'a str,
    pub unit: &'a str,
    pub valid_from: Option<Date>,
    pub valid_until: Option<Date>,
}

/// A validated ruling, not yet numbered.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NewRuling {
    pub kind: RulingKind,
    pub holder: String,
    pub subject: String,
    pub hs_code: Option<String>,
    pub unit_price: Option<(String, Decimal)>,
    pub origin_country: Option<String>,
    pub quantity_granted_milli: Option<i64>,
    pub unit: Option<String>,
    pub valid_from: Date,
    pub valid_until: Date,
}

/// A quantity in thousandths of its unit, exactly.
pub fn parse_quantity_milli(field: &str, quantity: &str) -> Result<i64, FieldViolation> {
    let value = parse_amount(field, quantity)?;
    let milli = value * Decimal::ONE_THOUSAND;
    if milli.fract() != Decimal::ZERO {
        return Err(FieldViolation::new(
            field,
            "QUANTITY_PRECISION",
            "quantities have at most 3 decimal places",
        ));
    }
    match i64::try_from(milli) {
        Ok(milli) if milli > 0 => Ok(milli),
        Ok(_) => Err(FieldViolation::new(
            field,
            "QUANTITY_NOT_POSITIVE",
            "must be greater than zero",
        )),
        Err(_) => Err(FieldViolation::new(
            field,
            "QUANTITY_TOO_LARGE",
            "quantity is too large",
        )),
    }
}

/// A positive unit price in a valid currency.
fn parse_unit_price((currency, amount): (&str, &str)) -> Result<(String, Decimal), FieldViolation> {
    let currency = parse_currency("ruling.unit_price.currency_code", currency)?;
    let amount = parse_amount("ruling.unit_price.amount", amount)?;
    if amount <= Decimal::ZERO {
        return Err(FieldViolation::new(
            "ruling.unit_price.amount",
            "AMOUNT_NOT_POSITIVE",
            "must be greater than zero",
        ));
    }
    Ok((currency, amount.normalize()))
}

/// Thousandths as a decimal string: `2500` → `"2.5"`.
pub fn milli_to_string(milli: i64) -> String {
    Decimal::new(milli, 3).normalize().to_string()
}

impl NewRuling {
    /// Validates every field at once, by the ruling's kind.
    pub fn parse(draft: &RulingDraft<'_>) -> Result<Self, Error> {
        let mut violations = Violations::new();
        let holder = violations.keep(parse_enterprise_code("ruling.holder", draft.holder));
        if draft.subject.trim().is_empty() {
            violations.push(
                "ruling.subject",
                "REQUIRED",
                "describe the goods the ruling is about",
            );
        }
        let stated_hs = !draft.hs_code.trim().is_empty();
        let (mut hs_code, mut unit_price, mut origin_country) = (None, None, None);
        let (mut quantity_granted_milli, mut unit) = (None, None);
        match draft.kind {
            None => violations.push("ruling.kind", "REQUIRED", "the kind of ruling is required"),
            Some(RulingKind::PreClassification) => {
                hs_code = violations.keep(parse_hs_code("ruling.hs_code", draft.hs_code));
            }
            Some(RulingKind::PricePreReview) => match draft.unit_price {
                Some(price) => unit_price = violations.keep(parse_unit_price(price)),
                None => violations.push(
                    "ruling.unit_price",
                    "REQUIRED",
                    "a price pre-review states the unit price",
                ),
            },
            Some(RulingKind::OriginPreDetermination) => {
                origin_country =
                    violations.keep(parse_country("ruling.origin_country", draft.origin_country));
            }
            Some(RulingKind::Licence) => {
                if stated_hs {
                    hs_code = violations.keep(parse_hs_prefix("ruling.hs_code", draft.hs_code));
                }
                quantity_granted_milli = violations.keep(parse_quantity_milli(
                    "ruling.quantity_granted",
                    draft.quantity_granted,
                ));
                if draft.unit.trim().is_empty() {
                    violations.push(
                        "ruling.unit",
                        "REQUIRED",
                        "a licence states the unit of its quantity",
                    );
                } else {
                    unit = Some(draft.unit.trim().to_owned());
                }
            }
            Some(RulingKind::ProfessionalDetermination) => {
                if stated_hs {
                    hs_code = violations.keep(parse_hs_code("ruling.hs_code", draft.hs_code));
                }
                if let Some(price) = draft.unit_price {
                    unit_price = violations.keep(parse_unit_price(price));
                }
                if !stated_hs && draft.unit_price.is_none() {
                    violations.push(
                        "ruling.hs_code",
                        "REQUIRED",
                        "a professional determination states a classification or a value",
                    );
                }
            }
            Some(RulingKind::TemporaryAdmission) => {}
        }
        if draft.valid_from.is_none() {
            violations.push("ruling.valid_from", "REQUIRED", "a valid date is required");
        }
        if draft.valid_until.is_none() {
            violations.push("ruling.valid_until", "REQUIRED", "a valid date is required");
        }
        if let (Some(from), Some(until)) = (draft.valid_from, draft.valid_until)
            && until < from
        {
            violations.push(
                "ruling.valid_until",
                "VALIDITY_WINDOW",
                "must not be before valid_from",
            );
        }
        violations.into_result()?;
        let (Some(kind), Some(holder), Some(valid_from), Some(valid_until)) =
            (draft.kind, holder, draft.valid_from, draft.valid_until)
        else {
            return Err(Error::internal(anyhow::anyhow!(
                "validation passed with a field missing"
            )));
        };
        Ok(Self {
            kind,
            holder,
            subject: draft.subject.trim().to_owned(),
            hs_code,
            unit_price,
            origin_country,
            quantity_granted_milli,
            unit,
            valid_from,
            valid_until,
        })
    }

    /// The record every house will see, under `id`, issued by `house`.
    pub fn into_record(self, id: String, house: &str) -> RulingRecord {
        RulingRecord {
            id,
            kind: self.kind,
            issuing_house: house.to_owned(),
            holder: self.holder,
            subject: self.subject,
            hs_code: self.hs_code,
            unit_price: self.unit_price,
            origin_country: self.origin_country,
            quantity_granted_milli: self.quantity_granted_milli,
            unit: self.unit,
            valid_from: day_number(self.valid_from),
            valid_until: day_number(self.valid_until),
            revoked: false,
            replaced_by: None,
            revocation_reason: None,
        }
    }
}

/// A ruling number: issuing house, kind, two-digit year and eight serial characters,
/// `5300PC26A1B2C3D4`.
pub fn ruling_id(house: &str, kind: RulingKind, year: i32, serial: &str) -> String {
    let code = match kind {
        RulingKind::PreClassification => "PC",
        RulingKind::PricePreReview => "PR",
        RulingKind::OriginPreDetermination => "OD",
        RulingKind::Licence => "LC",
        RulingKind::ProfessionalDetermination => "PD",
        RulingKind::TemporaryAdmission => "TA",
    };
    format!("{house}{code}{:02}{serial}", year.rem_euclid(100))
}

/// A ruling id as a caller sends it: 1 to 32 upper-case letters or digits.
pub fn parse_ruling_id(field: &str, id: &str) -> Result<String, FieldViolation> {
    let id = id.trim();
    if (1..=32).contains(&id.len())
        && id
            .bytes()
            .all(|b| b.is_ascii_digit() || b.is_ascii_uppercase())
    {
        Ok(id.to_owned())
    } else {
        Err(FieldViolation::new(
            field,
            "RULING_ID_FORMAT",
            "a ruling id is 1 to 32 upper-case letters or digits",
        ))
    }
}

#[cfg(test)]
mod tests {
    use time::macros::date;

    use super::*;

    fn draft(kind: RulingKind) -> RulingDraft<'static> {
        RulingDraft {
            kind: Some(kind),
            holder: "4403960001",
            subject: "notebook computers",
            hs_code: "8471300000",
            unit_price: Some(("USD", "500.00")),
            origin_country: "JP",
            quantity_granted: "1000.5",
            unit: "PCE",
            valid_from: Some(date!(2026 - 01 - 01)),
            valid_until: Some(date!(2026 - 12 - 31)),
        }
    }

    #[test]
    fn every_kind_parses_with_what_it_must_state() {
        let pre = NewRuling::parse(&draft(RulingKind::PreClassification)).unwrap();
        assert_eq!(
            (pre.hs_code.as_deref(), pre.unit_price),
            (Some("8471300000"), None)
        );
        let price = NewRuling::parse(&draft(RulingKind::PricePreReview)).unwrap();
        assert_eq!(price.unit_price, Some(("USD".into(), Decimal::new(500, 0))));
        let origin = NewRuling::parse(&draft(RulingKind::OriginPreDetermination)).unwrap();
        assert_eq!(origin.origin_country.as_deref(), Some("JP"));
        let mut licence = draft(RulingKind::Licence);
        licence.hs_code = "8471";
        let licence = NewRuling::parse(&licence).unwrap();
        assert_eq!(
            (licence.quantity_granted_milli, licence.hs_code.as_deref()),
            (Some(1_000_500), Some("8471"))
        );
        assert!(NewRuling::parse(&draft(RulingKind::ProfessionalDetermination)).is_ok());
        assert!(NewRuling::parse(&draft(RulingKind::TemporaryAdmission)).is_ok());
    }

    #[test]
    fn missing_or_malformed_fields_are_all_reported() {
        let mut bad = draft(RulingKind::Licence);
        bad.holder = "x";
        bad.subject = " ";
        bad.hs_code = "77";
        bad.quantity_granted = "1.0005";
        bad.unit = "";
        bad.valid_from = Some(date!(2027 - 01 - 01));
        let Err(Error::InvalidArgument(violations)) = NewRuling::parse(&bad) else {
            panic!("expected violations")
        };
        let reasons: Vec<_> = violations.iter().map(|v| &*v.reason).collect();
        assert_eq!(
            reasons,
            [
                "ENTERPRISE_CODE_FORMAT",
                "REQUIRED",
                "HS_CODE_RESERVED_CHAPTER",
                "QUANTITY_PRECISION",
                "REQUIRED",
                "VALIDITY_WINDOW"
            ]
        );
        let mut price = draft(RulingKind::PricePreReview);
        price.unit_price = None;
        assert!(
            NewRuling::parse(&price)
                .unwrap_err()
                .to_string()
                .contains("ruling.unit_price")
        );
        let mut nothing = draft(RulingKind::ProfessionalDetermination);
        nothing.hs_code = "";
        nothing.unit_price = None;
        assert!(NewRuling::parse(&nothing).is_err());
        assert!(NewRuling::parse(&RulingDraft::default()).is_err());
    }

    #[test]
    fn ids_and_quantities() {
        assert_eq!(
            ruling_id("5300", RulingKind::Licence, 2026, "A1B2C3D4"),
            "5300LC26A1B2C3D4"
        );
        assert!(parse_ruling_id("id", "5300LC26A1B2C3D4").is_ok());
        assert!(parse_ruling_id("id", "bad id").is_err());
        assert_eq!(parse_quantity_milli("q", "2.5").unwrap(), 2_500);
        assert_eq!(
            parse_quantity_milli("q", "0").unwrap_err().reason,
            "QUANTITY_NOT_POSITIVE"
        );
        assert_eq!(milli_to_string(2_500), "2.5");
        assert_eq!(milli_to_string(1_000_000), "1000");
    }
}
