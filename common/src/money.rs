//! Exact money: decimal strings on the wire, `Decimal` in the domain, integer fen
//! (CNY minor units) in the shared store. Never floating point.

use std::str::FromStr;

use rust_decimal::Decimal;

use crate::error::FieldViolation;

/// Parses an ISO 4217 code: three upper-case letters.
pub fn parse_currency(field: &str, code: &str) -> Result<String, FieldViolation> {
    if code.len() == 3 && code.bytes().all(|b| b.is_ascii_uppercase()) {
        Ok(code.to_owned())
    } else {
        Err(FieldViolation::new(
            field,
            "CURRENCY_CODE_INVALID",
            "must be an ISO 4217 code such as CNY",
        ))
    }
}

/// Parses a non-negative decimal amount such as `"1234.56"`.
pub fn parse_amount(field: &str, amount: &str) -> Result<Decimal, FieldViolation> {
    let value = Decimal::from_str(amount.trim()).map_err(|_| {
        FieldViolation::new(
            field,
            "AMOUNT_INVALID",
            format!("{amount:?} is not a decimal amount"),
        )
    })?;
    if value.is_sign_negative() {
        return Err(FieldViolation::new(
            field,
            "AMOUNT_NEGATIVE",
            "must not be negative",
        ));
    }
    Ok(value)
}

/// CNY in fen, exactly: refuses amounts with more than two decimal places.
pub fn to_fen(field: &str, amount: Decimal) -> Result<i64, FieldViolation> {
    let fen = amount * Decimal::ONE_HUNDRED;
    if fen.fract() != Decimal::ZERO {
        return Err(FieldViolation::new(
            field,
            "AMOUNT_PRECISION",
            "CNY amounts have at most 2 decimal places",
        ));
    }
    i64::try_from(fen)
        .map_err(|_| FieldViolation::new(field, "AMOUNT_TOO_LARGE", "amount is too large"))
}

/// `12345` fen as `"123.45"`.
pub fn fen_to_string(fen: i64) -> String {
    Decimal::new(fen, 2).to_string()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn fen_round_trip_is_exact() {
        let amount = parse_amount("a", "1234.56").unwrap();
        assert_eq!(to_fen("a", amount).unwrap(), 123_456);
        assert_eq!(fen_to_string(123_456), "1234.56");
        assert_eq!(fen_to_string(5), "0.05");
        assert_eq!(fen_to_string(0), "0.00");
    }

    #[test]
    fn sub_fen_precision_negative_and_garbage_are_refused() {
        assert_eq!(
            to_fen("a", parse_amount("a", "0.001").unwrap())
                .unwrap_err()
                .reason,
            "AMOUNT_PRECISION"
        );
        assert_eq!(
            parse_amount("a", "-1").unwrap_err().reason,
            "AMOUNT_NEGATIVE"
        );
        assert_eq!(
            parse_amount("a", "1,5").unwrap_err().reason,
            "AMOUNT_INVALID"
        );
    }

    #[test]
    fn currency_codes_are_three_capitals() {
        assert!(parse_currency("c", "CNY").is_ok());
        assert!(parse_currency("c", "cny").is_err());
        assert!(parse_currency("c", "CN").is_err());
    }
}
