//! The general guarantee 总担保 for summary tax payment (DOMAIN.md 7): one bank's
//! letter, registered once, usable at every house.

use std::fmt;

use customs_common::{
    Error, Violations,
    codes::{iso6346_check_digit, parse_enterprise_code},
    error::FieldViolation,
    money::{parse_amount, parse_currency, to_fen},
    store::Refusal,
};
use rust_decimal::Decimal;
use sha2::{Digest, Sha256};
use time::Date;

/// A guarantee reference number, after the EU transit guarantee reference (GRN):
/// `26CN5300A1B2C3D4` + one check character = 17 characters: two-digit year, `CN`,
/// the registering house, eight serial characters, and an ISO 6346 check digit.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct GuaranteeReference(String);

impl GuaranteeReference {
    pub const LEN: usize = 17;

    /// A new reference for `house`, with `serial` of eight upper-case letters or digits.
    pub fn new(year: i32, house: &str, serial: &str) -> Self {
        let body = format!("{:02}CN{house}{serial}", year.rem_euclid(100));
        let check = iso6346_check_digit(&body).unwrap_or(0);
        Self(format!("{body}{check}"))
    }

    pub fn parse(field: &str, value: &str) -> Result<Self, FieldViolation> {
        let value = value.trim().to_ascii_uppercase();
        let well_formed = value.len() == Self::LEN
            && value
                .bytes()
                .all(|b| b.is_ascii_digit() || b.is_ascii_uppercase())
            && value[..2].bytes().all(|b| b.is_ascii_digit())
            && &value[2..4] == "CN";
        if !well_formed {
            return Err(FieldViolation::new(
                field,
                "GUARANTEE_REFERENCE_FORMAT",
                "a guarantee reference is 17 characters: yy, CN, house, 8 serial characters, check digit",
            ));
        }
        let (body, check) = value.split_at(Self::LEN - 1);
        if iso6346_check_digit(body).map(|digit| digit.to_string()) != Some(check.to_owned()) {
            return Err(FieldViolation::new(
                field,
                "GUARANTEE_REFERENCE_CHECK_DIGIT",
                "the check digit does not match: the reference is mistyped",
            ));
        }
        Ok(Self(value))
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl fmt::Display for GuaranteeReference {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

/// Hex SHA-256 of an access code: only the hash is stored, anywhere.
pub fn hash_access_code(reference: &GuaranteeReference, access_code: &str) -> String {
    let digest =
        Sha256::digest(format!("{}:{}", reference.as_str(), access_code.trim()).as_bytes());
    digest.iter().map(|byte| format!("{byte:02x}")).collect()
}

/// A guarantee as registered, before it has a reference.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NewGuarantee {
    pub bank: String,
    pub holder: String,
    pub amount_fen: i64,
    pub valid_from: Date,
    pub valid_until: Date,
}

impl NewGuarantee {
    /// Validates every field at once.
    pub fn parse(
        bank: &str,
        holder: &str,
        currency: &str,
        amount: &str,
        valid_from: Option<Date>,
        valid_until: Option<Date>,
    ) -> Result<Self, Error> {
        let mut violations = Violations::new();
        if bank.trim().is_empty() {
            violations.push("bank", "REQUIRED", "the issuing bank is required");
        }
        if let Err(violation) = parse_enterprise_code("holder", holder) {
            violations.extend([violation]);
        }
        match parse_currency("amount.currency_code", currency) {
            Ok(code) if code != "CNY" => violations.push(
                "amount.currency_code",
                "GUARANTEE_CURRENCY",
                "general guarantees are held in CNY",
            ),
            Ok(_) => {}
            Err(violation) => violations.extend([violation]),
        }
        let amount_fen =
            match parse_amount("amount.amount", amount).and_then(|a| to_fen("amount.amount", a)) {
                Ok(fen) if fen > 0 => fen,
                Ok(_) => {
                    violations.push(
                        "amount.amount",
                        "AMOUNT_NOT_POSITIVE",
                        "must be greater than zero",
                    );
                    0
                }
                Err(violation) => {
                    violations.extend([violation]);
                    0
                }
            };
        if valid_from.is_none() {
            violations.push("valid_from", "REQUIRED", "a valid date is required");
        }
        if valid_until.is_none() {
            violations.push("valid_until", "REQUIRED", "a valid date is required");
        }
        if let (Some(from), Some(until)) = (valid_from, valid_until)
            && until < from
        {
            violations.push(
                "valid_until",
                "VALIDITY_WINDOW",
                "must not be before valid_from",
            );
        }
        violations.into_result()?;
        Ok(Self {
            bank: bank.trim().to_owned(),
            holder: holder.trim().to_owned(),
            amount_fen,
            valid_from: valid_from.unwrap_or(Date::MIN),
            valid_until: valid_until.unwrap_or(Date::MIN),
        })
    }
}

/// Why an enterprise may not use summary tax payment for now.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum HolderRestriction {
    /// Its credit class does not allow summary tax payment (`summary_tax_payment =
    /// false` in the credit scheme in force: DISCREDITED 失信 under the 2018 scheme).
    /// Named for that class, on the wire and in storage, as before schemes were
    /// configuration.
    Discredited,
    /// It has unpaid summary tax past the due date.
    Arrears,
}

impl HolderRestriction {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Discredited => "DISCREDITED",
            Self::Arrears => "ARREARS",
        }
    }

    pub fn parse(value: &str) -> Option<Self> {
        match value {
            "DISCREDITED" => Some(Self::Discredited),
            "ARREARS" => Some(Self::Arrears),
            _ => None,
        }
    }

    pub fn into_error(self, holder: &str) -> Error {
        match self {
            Self::Discredited => Error::failed_precondition(
                "GUARANTEE_HOLDER_DISCREDITED",
                format!(
                    "{holder}'s credit class does not allow summary tax payment \
                     (discredited, or a class the credit scheme in force bars)"
                ),
            ),
            Self::Arrears => Error::failed_precondition(
                "GUARANTEE_HOLDER_IN_ARREARS",
                format!("{holder} has summary tax in arrears; its use of the scheme is suspended"),
            ),
        }
    }
}

/// The precise reason a reservation is refused, as a client sees it.
pub fn refusal_error(reference: &GuaranteeReference, refusal: Refusal) -> Error {
    match refusal {
        Refusal::WrongHolder => Error::permission_denied(
            "GUARANTEE_WRONG_HOLDER",
            format!("guarantee {reference} belongs to another enterprise"),
        ),
        Refusal::WrongAccessCode => Error::permission_denied(
            "GUARANTEE_WRONG_ACCESS_CODE",
            format!("the access code for guarantee {reference} is wrong"),
        ),
        Refusal::Suspended => Error::failed_precondition(
            "GUARANTEE_SUSPENDED",
            format!("guarantee {reference} is suspended"),
        ),
        Refusal::NotYetValid => Error::failed_precondition(
            "GUARANTEE_NOT_YET_VALID",
            format!("guarantee {reference} is not valid yet"),
        ),
        Refusal::Expired => Error::failed_precondition(
            "GUARANTEE_EXPIRED",
            format!("guarantee {reference} has expired"),
        ),
        Refusal::InsufficientHeadroom { available_fen } => Error::failed_precondition(
            "GUARANTEE_INSUFFICIENT_HEADROOM",
            format!(
                "guarantee {reference} has only {} CNY available",
                Decimal::new(available_fen, 2)
            ),
        ),
    }
}

#[cfg(test)]
mod tests {
    use time::macros::date;

    use super::*;

    #[test]
    fn references_round_trip_and_catch_typos() {
        let reference = GuaranteeReference::new(2026, "5300", "A1B2C3D4");
        assert_eq!(reference.as_str().len(), GuaranteeReference::LEN);
        assert!(reference.as_str().starts_with("26CN5300A1B2C3D4"));
        assert_eq!(
            GuaranteeReference::parse("r", reference.as_str()).unwrap(),
            reference
        );
        assert_eq!(
            GuaranteeReference::parse("r", &reference.as_str().to_lowercase()).unwrap(),
            reference,
            "references are case-insensitive"
        );
        let mut typo = reference.as_str().to_owned();
        typo.replace_range(8..9, if &typo[8..9] == "B" { "C" } else { "B" });
        let violation = GuaranteeReference::parse("r", &typo).unwrap_err();
        assert_eq!(violation.reason, "GUARANTEE_REFERENCE_CHECK_DIGIT");
        assert!(GuaranteeReference::parse("r", "26CN5300").is_err());
    }

    #[test]
    fn access_code_hash_depends_on_reference_and_code() {
        let a = GuaranteeReference::new(2026, "5300", "AAAAAAAA");
        let b = GuaranteeReference::new(2026, "5300", "BBBBBBBB");
        assert_eq!(hash_access_code(&a, "1234"), hash_access_code(&a, " 1234 "));
        assert_ne!(hash_access_code(&a, "1234"), hash_access_code(&a, "1235"));
        assert_ne!(hash_access_code(&a, "1234"), hash_access_code(&b, "1234"));
        assert_eq!(hash_access_code(&a, "1234").len(), 64);
    }

    #[test]
    fn new_guarantee_reports_every_violation() {
        let error = NewGuarantee::parse("", "short", "USD", "-5", None, None).unwrap_err();
        let Error::InvalidArgument(violations) = error else {
            panic!("expected INVALID_ARGUMENT")
        };
        let fields: Vec<_> = violations.iter().map(|v| v.field.as_str()).collect();
        assert_eq!(
            fields,
            [
                "bank",
                "holder",
                "amount.currency_code",
                "amount.amount",
                "valid_from",
                "valid_until"
            ]
        );
    }

    #[test]
    fn new_guarantee_refuses_inverted_window_and_sub_fen_amounts() {
        let error = NewGuarantee::parse(
            "Bank of China",
            "4403960001",
            "CNY",
            "100.001",
            Some(date!(2026 - 12 - 31)),
            Some(date!(2026 - 01 - 01)),
        )
        .unwrap_err();
        let text = error.to_string();
        assert!(
            text.contains("AMOUNT_PRECISION") && text.contains("VALIDITY_WINDOW"),
            "{text}"
        );
    }

    #[test]
    fn valid_guarantee_parses_to_fen() {
        let guarantee = NewGuarantee::parse(
            "Bank of China Guangdong",
            "4403960001",
            "CNY",
            "5000000.00",
            Some(date!(2026 - 01 - 01)),
            Some(date!(2026 - 12 - 31)),
        )
        .unwrap();
        assert_eq!(guarantee.amount_fen, 500_000_000);
    }

    #[test]
    fn refusals_carry_precise_reasons() {
        let reference = GuaranteeReference::new(2026, "5300", "AAAAAAAA");
        let reasons: Vec<_> = [
            Refusal::WrongHolder,
            Refusal::WrongAccessCode,
            Refusal::Suspended,
            Refusal::NotYetValid,
            Refusal::Expired,
            Refusal::InsufficientHeadroom {
                available_fen: 1050,
            },
        ]
        .into_iter()
        .map(|refusal| refusal_error(&reference, refusal))
        .collect();
        assert_eq!(
            reasons.iter().map(Error::reason).collect::<Vec<_>>(),
            [
                "GUARANTEE_WRONG_HOLDER",
                "GUARANTEE_WRONG_ACCESS_CODE",
                "GUARANTEE_SUSPENDED",
                "GUARANTEE_NOT_YET_VALID",
                "GUARANTEE_EXPIRED",
                "GUARANTEE_INSUFFICIENT_HEADROOM"
            ]
        );
        assert!(reasons[5].to_string().contains("10.50 CNY"));
    }
}
