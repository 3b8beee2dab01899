//! The formats of the codes every platform exchanges (API.md conventions).

use crate::error::FieldViolation;

/// The seven directly-under customs houses of Guangdong: code, Chinese and English name.
pub const HOUSES: [(&str, &str, &str); 7] = [
    ("5100", "广州海关", "Guangzhou Customs"),
    ("5200", "黄埔海关", "Huangpu Customs"),
    ("5300", "深圳海关", "Shenzhen Customs"),
    ("5700", "拱北海关", "Gongbei Customs"),
    ("6000", "汕头海关", "Shantou Customs"),
    ("6700", "湛江海关", "Zhanjiang Customs"),
    ("6800", "江门海关", "Jiangmen Customs"),
];

/// The line numbers of a request's items: each positive and unique among them.
#[derive(Debug, Default)]
pub struct LineNumbers(std::collections::HashSet<i32>);

impl LineNumbers {
    /// Takes the next item's `line_no`, given at `field`: refused when it is not
    /// positive or an earlier item has it.
    pub fn take(&mut self, field: &str, line_no: i32) -> Result<(), FieldViolation> {
        if line_no > 0 && self.0.insert(line_no) {
            Ok(())
        } else {
            Err(FieldViolation::new(
                field,
                "LINE_NO_INVALID",
                "line numbers are positive and unique",
            ))
        }
    }
}

/// One of the seven houses, by its code or any of its offices' codes.
pub fn house(code: &str) -> Option<(&'static str, &'static str, &'static str)> {
    let house = directly_under_house(code);
    HOUSES.into_iter().find(|(c, _, _)| *c == house)
}

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

/// The ISO 6346 check digit (container numbers, EU MRNs and guarantee references):
/// letters take the values 10..38 skipping multiples of 11, each position is weighted by
/// 2^i, and the sum modulo 11 (10 counting as 0) is the digit. `None` for other bytes.
pub fn iso6346_check_digit(body: &str) -> Option<u32> {
    let mut sum: u64 = 0;
    for (position, byte) in body.bytes().enumerate() {
        let value = match byte {
            b'0'..=b'9' => u64::from(byte - b'0'),
            b'A'..=b'Z' => {
                let steps = u64::from(byte - b'A');
                // A=10; every value that would be a multiple of 11 is skipped.
                let mut value = 10;
                for _ in 0..steps {
                    value += 1;
                    if value % 11 == 0 {
                        value += 1;
                    }
                }
                value
            }
            _ => return None,
        };
        sum += value << position;
    }
    Some((sum % 11 % 10) as u32)
}

/// An ISO 6346 container number: owner code (3 letters), category (U, J or Z), six
/// digits, and the check digit.
pub fn is_container_number(number: &str) -> bool {
    let bytes = number.as_bytes();
    bytes.len() == 11
        && bytes[..3].iter().all(u8::is_ascii_uppercase)
        && matches!(bytes[3], b'U' | b'J' | b'Z')
        && bytes[4..].iter().all(u8::is_ascii_digit)
        && iso6346_check_digit(&number[..10]) == Some(u32::from(bytes[10] - b'0'))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn iso6346_check_digits_and_container_numbers() {
        // The standard's own example, CSQU305438 3.
        assert_eq!(iso6346_check_digit("CSQU305438"), Some(3));
        assert_eq!(iso6346_check_digit("abc"), None);
        assert!(is_container_number("CSQU3054383"));
        assert!(is_container_number("MSKU1234565"));
        assert!(!is_container_number("MSKU1234566"));
        assert!(!is_container_number("MSKX1234565"));
        assert!(!is_container_number("msku1234565"));
    }

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
