//! Enterprises and customs brokers (DOMAIN.md 8).

use customs_common::{
    Error, Violations,
    codes::{house, parse_enterprise_code},
    credit::{ClassRefusal, CreditSchemes},
};
use time::Date;

/// A credit class as a request names it, to take effect on `day`.
#[derive(Debug, Clone)]
pub struct RequestedClass<'a> {
    /// The request field that named it (`credit_class` or `credit_class_code`).
    pub field: &'a str,
    /// As `customs_proto::convert::requested_credit_class` reads it.
    pub named: Result<Option<String>, String>,
    pub day: Date,
    pub schemes: &'a CreditSchemes,
}

impl RequestedClass<'_> {
    /// The class's code, when it is one of the credit scheme in force on its day
    /// (DOMAIN.md 8); else its violations are pushed.
    pub fn check(self, violations: &mut Violations) -> Option<String> {
        let Self {
            field,
            named,
            day,
            schemes,
        } = self;
        let code = match named {
            Ok(Some(code)) => code,
            Ok(None) => {
                violations.push(
                    "credit_class",
                    "REQUIRED",
                    "the credit class is required (credit_class, or credit_class_code)",
                );
                return None;
            }
            Err(conflict) => {
                violations.push("credit_class_code", "CREDIT_CLASS_CONFLICT", conflict);
                return None;
            }
        };
        match schemes.class_on(day, &code) {
            Ok(_) => Some(code),
            Err(ClassRefusal::NoScheme) => {
                violations.push(
                    field,
                    "NO_CREDIT_SCHEME",
                    format!("no credit scheme is in force on {day}"),
                );
                None
            }
            Err(ClassRefusal::NotInScheme { scheme, codes }) => {
                violations.push(
                    field,
                    "CREDIT_CLASS_NOT_IN_SCHEME",
                    format!(
                        "{code} is not a class of the {scheme} credit scheme, in force on {day}: {codes}"
                    ),
                );
                None
            }
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum EnterpriseKind {
    /// Consignee or consignor of goods.
    Trader,
    /// Customs broker: declares for traders, at all seven houses once registered at one.
    Broker,
}

impl EnterpriseKind {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Trader => "TRADER",
            Self::Broker => "BROKER",
        }
    }

    pub fn parse(value: &str) -> Option<Self> {
        match value {
            "TRADER" => Some(Self::Trader),
            "BROKER" => Some(Self::Broker),
            _ => None,
        }
    }
}

/// A validated registration.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NewEnterprise {
    pub code: String,
    pub name: String,
    pub kind: EnterpriseKind,
    /// Its code in the credit scheme in force on the day of registration.
    pub credit_class: String,
    pub home_house: String,
}

impl NewEnterprise {
    pub fn parse(
        code: &str,
        name: &str,
        kind: Option<EnterpriseKind>,
        credit_class: RequestedClass<'_>,
        home_house: &str,
    ) -> Result<Self, Error> {
        let mut violations = Violations::new();
        let code = violations.keep(parse_enterprise_code("code", code));
        if name.trim().is_empty() {
            violations.push(
                "name",
                "REQUIRED",
                "the enterprise's registered name is required",
            );
        }
        if kind.is_none() {
            violations.push("kind", "REQUIRED", "TRADER or BROKER");
        }
        let credit_class = credit_class.check(&mut violations);
        let home = house(home_house).filter(|(code, _, _)| *code == home_house.trim());
        if home.is_none() {
            violations.push(
                "home_house",
                "HOUSE_UNKNOWN",
                "the home house is one of 5100, 5200, 5300, 5700, 6000, 6700, 6800",
            );
        }
        violations.into_result()?;
        match (code, kind, credit_class, home) {
            (Some(code), Some(kind), Some(credit_class), Some((home_house, _, _))) => Ok(Self {
                code,
                name: name.trim().to_owned(),
                kind,
                credit_class,
                home_house: home_house.to_owned(),
            }),
            _ => Err(Error::internal(anyhow::anyhow!(
                "validation passed with a field missing"
            ))),
        }
    }
}

#[cfg(test)]
mod tests {
    use customs_common::config::Settings;
    use time::macros::date;

    use super::*;

    fn schemes() -> CreditSchemes {
        CreditSchemes::new(&Settings::defaults().unwrap().credit).unwrap()
    }

    fn requested(
        schemes: &CreditSchemes,
        named: Result<Option<String>, String>,
        day: Date,
    ) -> RequestedClass<'_> {
        RequestedClass {
            field: "credit_class_code",
            named,
            day,
            schemes,
        }
    }

    fn parse(code: &str, class: Result<Option<String>, String>) -> Result<NewEnterprise, Error> {
        NewEnterprise::parse(
            code,
            "Shenzhen Trading Co.",
            Some(EnterpriseKind::Trader),
            requested(&schemes(), class, date!(2026 - 11 - 27)),
            "5300",
        )
    }

    fn reasons(result: Result<NewEnterprise, Error>) -> Vec<(String, String)> {
        let Err(Error::InvalidArgument(violations)) = result else {
            panic!("expected violations");
        };
        violations
            .iter()
            .map(|v| (v.field.clone(), v.reason.to_string()))
            .collect()
    }

    #[test]
    fn a_registration_needs_every_field_and_a_real_home_house() {
        let ok = parse("4403960001", Ok(Some("GENERAL_CREDIT".into()))).unwrap();
        assert_eq!(ok.home_house, "5300");
        assert_eq!(ok.credit_class, "GENERAL_CREDIT");
        let Err(Error::InvalidArgument(violations)) = NewEnterprise::parse(
            "x",
            " ",
            None,
            requested(&schemes(), Ok(None), date!(2026 - 11 - 27)),
            "5301",
        ) else {
            panic!("expected violations");
        };
        let fields: Vec<_> = violations.iter().map(|v| v.field.as_str()).collect();
        assert_eq!(
            fields,
            ["code", "name", "kind", "credit_class", "home_house"]
        );
    }

    #[test]
    fn a_credit_class_must_be_of_the_scheme_in_force() {
        assert_eq!(
            reasons(parse("4403960001", Ok(Some("TRUSTED".into())))),
            [(
                "credit_class_code".to_owned(),
                "CREDIT_CLASS_NOT_IN_SCHEME".to_owned()
            )]
        );
        assert_eq!(
            reasons(parse("4403960001", Err("both".into()))),
            [(
                "credit_class_code".to_owned(),
                "CREDIT_CLASS_CONFLICT".to_owned()
            )]
        );
        let before_any = NewEnterprise::parse(
            "4403960001",
            "Shenzhen Trading Co.",
            Some(EnterpriseKind::Trader),
            requested(
                &schemes(),
                Ok(Some("GENERAL_CREDIT".into())),
                date!(2017 - 01 - 01),
            ),
            "5300",
        );
        assert_eq!(
            reasons(before_any),
            [(
                "credit_class_code".to_owned(),
                "NO_CREDIT_SCHEME".to_owned()
            )]
        );
    }
}
