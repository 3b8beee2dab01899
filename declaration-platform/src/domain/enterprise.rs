//! Enterprises and customs brokers (DOMAIN.md 8).

use customs_common::{
    Error, Violations,
    codes::{house, parse_enterprise_code},
};

/// The 2018 credit scheme, the default table.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CreditClass {
    AdvancedCertified,
    GeneralCertified,
    GeneralCredit,
    Discredited,
}

impl CreditClass {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::AdvancedCertified => "ADVANCED_CERTIFIED",
            Self::GeneralCertified => "GENERAL_CERTIFIED",
            Self::GeneralCredit => "GENERAL_CREDIT",
            Self::Discredited => "DISCREDITED",
        }
    }

    pub fn parse(value: &str) -> Option<Self> {
        [
            Self::AdvancedCertified,
            Self::GeneralCertified,
            Self::GeneralCredit,
            Self::Discredited,
        ]
        .into_iter()
        .find(|class| class.as_str() == value)
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
    pub credit_class: CreditClass,
    pub home_house: String,
}

impl NewEnterprise {
    pub fn parse(
        code: &str,
        name: &str,
        kind: Option<EnterpriseKind>,
        credit_class: Option<CreditClass>,
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
        if credit_class.is_none() {
            violations.push(
                "credit_class",
                "REQUIRED",
                "the enterprise's credit class is required",
            );
        }
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
    use super::*;

    #[test]
    fn a_registration_needs_every_field_and_a_real_home_house() {
        let ok = NewEnterprise::parse(
            "4403960001",
            "Shenzhen Trading Co.",
            Some(EnterpriseKind::Trader),
            Some(CreditClass::GeneralCredit),
            "5300",
        )
        .unwrap();
        assert_eq!(ok.home_house, "5300");
        let Err(Error::InvalidArgument(violations)) =
            NewEnterprise::parse("x", " ", None, None, "5301")
        else {
            panic!("expected violations");
        };
        let fields: Vec<_> = violations.iter().map(|v| v.field.as_str()).collect();
        assert_eq!(
            fields,
            ["code", "name", "kind", "credit_class", "home_house"]
        );
    }

    #[test]
    fn credit_classes_round_trip() {
        for class in [
            CreditClass::AdvancedCertified,
            CreditClass::GeneralCertified,
            CreditClass::GeneralCredit,
            CreditClass::Discredited,
        ] {
            assert_eq!(CreditClass::parse(class.as_str()), Some(class));
        }
        assert_eq!(CreditClass::parse("AAA"), None);
    }
}
