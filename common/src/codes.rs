//! The formats of the codes every platform exchanges (API.md conventions).

use crate::error::FieldViolation;

/// A house or office code: 4 digits; the first two name the directly-under house
/// (`5301` belongs to `5300`).
pub fn parse_house_code(field: &str, code: &str) -> Result<String, FieldViolation> {
    let code = code.trim();
    if code.len() == 4 && code.bytes().all(|b| b.is_ascii_digit()) {
        Ok(code.to_owned())
    } else {
        Err(FieldViolation::new(
            field,
            "HOUSE_CODE_FORMAT",
            "a house or office code is 4 digits",
        ))
    }
}

/// The directly-under house an office belongs to: `5301` → `5300`.
pub fn directly_under_house(office: &str) -> String {
    format!("{}00", office.get(..2).unwrap_or("00"))
}

/// An enterprise code: 10 upper-case letters or digits.
pub fn parse_enterprise_code(field: &str, code: &str) -> Result<String, FieldViolation> {
    let code = code.trim();
    if code.len() == 10
        && code
            .bytes()
            .all(|b| b.is_ascii_digit() || b.is_ascii_uppercase())
    {
        Ok(code.to_owned())
    } else {
        Err(FieldViolation::new(
            field,
            "ENTERPRISE_CODE_FORMAT",
            "an enterprise code is 10 upper-case letters or digits",
        ))
    }
}

/// A declaration number: 18 digits (DOMAIN.md 4).
pub fn parse_declaration_number(field: &str, number: &str) -> Result<String, FieldViolation> {
    let number = number.trim();
    if number.len() == 18 && number.bytes().all(|b| b.is_ascii_digit()) {
        Ok(number.to_owned())
    } else {
        Err(FieldViolation::new(
            field,
            "DECLARATION_NUMBER_FORMAT",
            "a declaration number is 18 digits",
        ))
    }
}

/// An HS code: 10 digits, chapter 01 to 97, chapter 77 reserved (DOMAIN.md 5.2).
pub fn parse_hs_code(field: &str, code: &str) -> Result<String, FieldViolation> {
    let code = code.trim();
    if code.len() != 10 || !code.bytes().all(|b| b.is_ascii_digit()) {
        return Err(FieldViolation::new(
            field,
            "HS_CODE_FORMAT",
            "an HS code is 10 digits",
        ));
    }
    check_chapter(field, code)?;
    Ok(code.to_owned())
}

/// An HS prefix of 2 to 10 digits (licences, control instructions).
pub fn parse_hs_prefix(field: &str, prefix: &str) -> Result<String, FieldViolation> {
    let prefix = prefix.trim();
    if !(2..=10).contains(&prefix.len()) || !prefix.bytes().all(|b| b.is_ascii_digit()) {
        return Err(FieldViolation::new(
            field,
            "HS_PREFIX_FORMAT",
            "an HS prefix is 2 to 10 digits",
        ));
    }
    check_chapter(field, prefix)?;
    Ok(prefix.to_owned())
}

fn check_chapter(field: &str, code: &str) -> Result<(), FieldViolation> {
    match code[..2].parse::<u8>() {
        Ok(77) => Err(FieldViolation::new(
            field,
            "HS_CODE_RESERVED_CHAPTER",
            "chapter 77 is reserved",
        )),
        Ok(1..=97) => Ok(()),
        _ => Err(FieldViolation::new(
            field,
            "HS_CODE_CHAPTER",
            "the chapter must be 01 to 97",
        )),
    }
}

/// An ISO 3166 alpha-2 country code (two upper-case letters).
pub fn parse_country(field: &str, code: &str) -> Result<String, FieldViolation> {
    let code = code.trim();
    if code.len() == 2 && code.bytes().all(|b| b.is_ascii_uppercase()) {
        Ok(code.to_owned())
    } else {
        Err(FieldViolation::new(
            field,
            "COUNTRY_CODE_FORMAT",
            "a country is an ISO 3166 alpha-2 code such as CN",
        ))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn hs_codes_need_ten_digits_and_a_real_chapter() {
        assert!(parse_hs_code("h", "8471300000").is_ok());
        assert!(parse_hs_code("h", "0101210000").is_ok());
        assert!(parse_hs_code("h", "9701100000").is_ok());
        assert_eq!(
            parse_hs_code("h", "847130").unwrap_err().reason,
            "HS_CODE_FORMAT"
        );
        assert_eq!(
            parse_hs_code("h", "7701000000").unwrap_err().reason,
            "HS_CODE_RESERVED_CHAPTER"
        );
        assert_eq!(
            parse_hs_code("h", "0001000000").unwrap_err().reason,
            "HS_CODE_CHAPTER"
        );
        assert_eq!(
            parse_hs_code("h", "9801000000").unwrap_err().reason,
            "HS_CODE_CHAPTER"
        );
        assert!(parse_hs_prefix("h", "0202").is_ok());
        assert_eq!(
            parse_hs_prefix("h", "7").unwrap_err().reason,
            "HS_PREFIX_FORMAT"
        );
    }

    #[test]
    fn other_codes() {
        assert_eq!(directly_under_house("5301"), "5300");
        assert!(parse_house_code("c", "5301").is_ok());
        assert!(parse_house_code("c", "530").is_err());
        assert!(parse_enterprise_code("c", "4403960001").is_ok());
        assert!(parse_enterprise_code("c", "440396000a").is_err());
        assert!(parse_declaration_number("c", "530120261000000001").is_ok());
        assert!(parse_declaration_number("c", "53012026100000000").is_err());
        assert!(parse_country("c", "CN").is_ok());
        assert!(parse_country("c", "cn").is_err());
    }
}
