//! The logic checks that decide acceptance (DOMAIN.md 5.2). Every check runs and every
//! violation is returned, field by field. The checks are pure: what they need from
//! other platforms (enterprises, the manifest, rulings) is looked up first and passed
//! in as [`Facts`].

use std::{collections::HashMap, str::FromStr};

use customs_common::{
    codes::{
        LineNumbers, directly_under_house, parse_country, parse_enterprise_code, parse_hs_code,
    },
    day::day_number,
    error::FieldViolation,
    money::parse_currency,
    rulings::{CitingItem, RulingKind, RulingRecord, check_citation},
};
use customs_proto::common::{
    ClearanceMode, DeclarationContent, Direction, RulingKind as ProtoRulingKind,
};
use rust_decimal::Decimal;
use time::Date;

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct EnterpriseFact {
    pub is_broker: bool,
    pub suspended: bool,
    pub credit_class: String,
    /// The house it is registered at, "5300".
    pub home_house: String,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PortFact {
    pub is_land: bool,
    /// The house the port belongs to, "5300".
    pub house: String,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ManifestFact {
    pub port_code: String,
    pub import: bool,
    pub containers: Vec<String>,
}

/// What the checks need to know beyond the declaration itself.
#[derive(Debug, Clone)]
pub struct Facts {
    /// `None`: not registered.
    pub declarant: Option<EnterpriseFact>,
    /// `None`: no broker named, or not registered (see `broker_named`).
    pub broker: Option<EnterpriseFact>,
    pub port: Option<PortFact>,
    pub manifest: Option<ManifestFact>,
    /// Cited rulings found, by id, with a licence's remaining quantity (thousandths).
    pub rulings: HashMap<String, (RulingRecord, Option<i64>)>,
    /// The integrated mode opens at land ports on this day.
    pub land_port_integrated_from: Date,
    /// The day the declaration counts as made.
    pub date: Date,
}

fn push(
    violations: &mut Vec<FieldViolation>,
    field: impl Into<String>,
    reason: &'static str,
    description: impl Into<String>,
) {
    violations.push(FieldViolation::new(field, reason, description));
}

fn positive_decimal(
    field: &str,
    value: &str,
    violations: &mut Vec<FieldViolation>,
) -> Option<Decimal> {
    match Decimal::from_str(value.trim()) {
        Ok(number) if number > Decimal::ZERO => Some(number),
        Ok(_) => {
            push(
                violations,
                field,
                "NOT_POSITIVE",
                "must be greater than zero",
            );
            None
        }
        Err(_) => {
            push(
                violations,
                field,
                "DECIMAL_INVALID",
                format!("{value:?} is not a decimal number"),
            );
            None
        }
    }
}

fn kind_of(kind: i32) -> Option<RulingKind> {
    match ProtoRulingKind::try_from(kind).unwrap_or_default() {
        ProtoRulingKind::Unspecified => None,
        ProtoRulingKind::PreClassification => Some(RulingKind::PreClassification),
        ProtoRulingKind::PricePreReview => Some(RulingKind::PricePreReview),
        ProtoRulingKind::OriginPreDetermination => Some(RulingKind::OriginPreDetermination),
        ProtoRulingKind::Licence => Some(RulingKind::Licence),
        ProtoRulingKind::ProfessionalDetermination => Some(RulingKind::ProfessionalDetermination),
        ProtoRulingKind::TemporaryAdmission => Some(RulingKind::TemporaryAdmission),
    }
}

/// Every cited ruling id, for looking them up before the checks.
pub fn cited_rulings(content: &DeclarationContent) -> Vec<String> {
    let mut ids: Vec<String> = content
        .items
        .iter()
        .flat_map(|item| item.rulings.iter().map(|r| r.ruling_id.trim().to_owned()))
        .filter(|id| !id.is_empty())
        .collect();
    ids.sort();
    ids.dedup();
    ids
}

/// Runs every logic check; an empty result means the declaration is accepted.
pub fn logic_checks(content: &DeclarationContent, facts: &Facts) -> Vec<FieldViolation> {
    let mut v = Vec::new();

    // Required fields and code formats.
    if content.direction() == Direction::Unspecified {
        push(&mut v, "direction", "REQUIRED", "import or export");
    }
    if content.clearance_mode() == ClearanceMode::Unspecified {
        push(
            &mut v,
            "clearance_mode",
            "REQUIRED",
            "one of the five clearance modes",
        );
    }
    if content.trade_mode.len() != 4 || !content.trade_mode.bytes().all(|b| b.is_ascii_digit()) {
        push(
            &mut v,
            "trade_mode",
            "TRADE_MODE_FORMAT",
            "a 4-digit trade mode code such as 0110",
        );
    }
    if content.bill_of_lading.trim().is_empty() {
        push(
            &mut v,
            "bill_of_lading",
            "REQUIRED",
            "the bill of lading the goods travel under",
        );
    }
    if let Err(violation) = parse_country("trading_country", &content.trading_country) {
        v.push(violation);
    }
    if let Err(violation) = parse_enterprise_code("enterprise_code", &content.enterprise_code) {
        v.push(violation);
    }

    // Declarant and broker: registered and not suspended; a broker must be one.
    match &facts.declarant {
        None => push(
            &mut v,
            "enterprise_code",
            "ENTERPRISE_NOT_REGISTERED",
            "the enterprise is not registered",
        ),
        Some(declarant) if declarant.suspended => push(
            &mut v,
            "enterprise_code",
            "ENTERPRISE_SUSPENDED",
            "the enterprise is suspended",
        ),
        Some(_) => {}
    }
    if !content.broker_code.is_empty() {
        match &facts.broker {
            None => push(
                &mut v,
                "broker_code",
                "BROKER_NOT_REGISTERED",
                "the customs broker is not registered",
            ),
            Some(broker) if !broker.is_broker => push(
                &mut v,
                "broker_code",
                "NOT_A_BROKER",
                "the enterprise named is not a customs broker",
            ),
            Some(broker) if broker.suspended => push(
                &mut v,
                "broker_code",
                "BROKER_SUSPENDED",
                "the broker is suspended",
            ),
            Some(_) => {}
        }
    }

    // The port, and the integrated mode at land ports before its opening day.
    match &facts.port {
        None => push(
            &mut v,
            "port_code",
            "PORT_UNKNOWN",
            "no such port in Guangdong",
        ),
        Some(port)
            if port.is_land
                && content.clearance_mode() == ClearanceMode::RegionalIntegrated
                && facts.date < facts.land_port_integrated_from =>
        {
            push(
                &mut v,
                "clearance_mode",
                "LAND_PORT_MODE_NOT_YET_OPEN",
                format!(
                    "regional integrated clearance opens at land ports on {}",
                    facts.land_port_integrated_from
                ),
            );
        }
        Some(_) => {}
    }

    // Where the mode is declared (DOMAIN.md 3): port clearance at the port's house,
    // a local declaration at the declarant's home house; the integrated mode and
    // transit anywhere.
    let declaring_house = directly_under_house(content.declaring_office.trim());
    match content.clearance_mode() {
        ClearanceMode::PortClearance => {
            if let Some(port) = facts.port.as_ref().filter(|p| p.house != declaring_house) {
                push(
                    &mut v,
                    "declaring_office",
                    "OFFICE_NOT_FOR_MODE",
                    format!(
                        "port clearance is declared at the port's house, {}",
                        port.house
                    ),
                );
            }
        }
        ClearanceMode::LocalDeclarePortRelease | ClearanceMode::LocalDeclareLocalRelease => {
            if let Some(declarant) = facts
                .declarant
                .as_ref()
                .filter(|d| d.home_house != declaring_house)
            {
                push(
                    &mut v,
                    "declaring_office",
                    "OFFICE_NOT_FOR_MODE",
                    format!(
                        "a local declaration is made at the enterprise's home house, {}",
                        declarant.home_house
                    ),
                );
            }
        }
        _ => {}
    }

    // Each container once, as on the manifest.
    let mut containers = std::collections::HashSet::new();
    for (i, container) in content.container_numbers.iter().enumerate() {
        if !containers.insert(container.as_str()) {
            push(
                &mut v,
                format!("container_numbers[{i}]"),
                "CONTAINER_DUPLICATE",
                format!("{container} is listed twice"),
            );
        }
    }

    // The manifest: the bill of lading exists and fits.
    if !content.bill_of_lading.trim().is_empty() {
        match &facts.manifest {
            None => push(
                &mut v,
                "bill_of_lading",
                "MANIFEST_NOT_FOUND",
                "no manifest carries this bill of lading",
            ),
            Some(manifest) => {
                if manifest.port_code != content.port_code {
                    push(
                        &mut v,
                        "port_code",
                        "MANIFEST_PORT_MISMATCH",
                        format!("the manifest is for port {}", manifest.port_code),
                    );
                }
                if content.direction() != Direction::Unspecified
                    && manifest.import != (content.direction() == Direction::Import)
                {
                    push(
                        &mut v,
                        "direction",
                        "MANIFEST_DIRECTION_MISMATCH",
                        "the manifest is for the other direction",
                    );
                }
                for (i, container) in content.container_numbers.iter().enumerate() {
                    if !manifest.containers.iter().any(|c| c == container) {
                        push(
                            &mut v,
                            format!("container_numbers[{i}]"),
                            "CONTAINER_NOT_ON_MANIFEST",
                            format!("{container} is not on the manifest"),
                        );
                    }
                }
            }
        }
    }

    // Items: HS codes, quantities, values, origin, rulings; totals.
    if content.items.is_empty() {
        push(
            &mut v,
            "items",
            "REQUIRED",
            "a declaration has at least one item",
        );
    }
    let total = content.total_value.clone().unwrap_or_default();
    let total_currency = parse_currency("total_value.currency_code", &total.currency_code)
        .map_err(|e| v.push(e))
        .ok();
    let total_amount = positive_decimal("total_value.amount", &total.amount, &mut v);
    let mut sum = Decimal::ZERO;
    let mut sum_complete = true;
    let mut line_nos = LineNumbers::default();
    let declarant = content.enterprise_code.as_str();
    for (i, item) in content.items.iter().enumerate() {
        let field = |name: &str| format!("items[{i}].{name}");
        if let Err(violation) = line_nos.take(&field("line_no"), item.line_no) {
            v.push(violation);
        }
        let hs_ok = parse_hs_code(&field("hs_code"), &item.hs_code)
            .map_err(|e| v.push(e))
            .is_ok();
        let origin_ok = parse_country(&field("origin_country"), &item.origin_country)
            .map_err(|e| v.push(e))
            .is_ok();
        let quantity = positive_decimal(&field("quantity"), &item.quantity, &mut v);
        if item.unit.trim().is_empty() {
            push(&mut v, field("unit"), "REQUIRED", "the unit of measure");
        }
        let value = item.declared_value.clone().unwrap_or_default();
        let currency = parse_currency(&field("declared_value.currency_code"), &value.currency_code)
            .map_err(|e| v.push(e))
            .ok();
        let amount = positive_decimal(&field("declared_value.amount"), &value.amount, &mut v);
        match (&currency, &total_currency, amount) {
            (Some(currency), Some(total), Some(amount)) if currency == total => sum += amount,
            (Some(_), Some(_), Some(_)) => {
                sum_complete = false;
                push(
                    &mut v,
                    field("declared_value.currency_code"),
                    "CURRENCY_MISMATCH",
                    "items are declared in the total's currency",
                );
            }
            _ => sum_complete = false,
        }
        for (j, citation) in item.rulings.iter().enumerate() {
            let citation_field = format!("items[{i}].rulings[{j}]");
            let requested = (!citation.quantity.is_empty())
                .then(|| Decimal::from_str(citation.quantity.trim()).ok())
                .flatten()
                .and_then(|q| i64::try_from(q * Decimal::ONE_THOUSAND).ok());
            let found = facts.rulings.get(citation.ruling_id.trim());
            let (Some(quantity), Some(amount), true, true) = (quantity, amount, hs_ok, origin_ok)
            else {
                // The item itself is malformed: the ruling cannot be fitted to it, but it
                // must still exist.
                if found.is_none() {
                    push(
                        &mut v,
                        format!("{citation_field}.ruling_id"),
                        "RULING_NOT_FOUND",
                        "no such ruling is registered in any house",
                    );
                }
                continue;
            };
            let citing = CitingItem {
                field: citation_field,
                declarant,
                date: day_number(facts.date),
                hs_code: &item.hs_code,
                origin_country: &item.origin_country,
                quantity,
                unit: item.unit.trim(),
                currency: currency.as_deref().unwrap_or_default(),
                value: amount,
            };
            v.extend(check_citation(
                &citing,
                kind_of(citation.kind),
                found.map(|(record, _)| record),
                found.and_then(|(_, remaining)| *remaining),
                requested,
            ));
        }
    }
    if let (true, Some(total)) = (sum_complete && !content.items.is_empty(), total_amount)
        && sum != total
    {
        push(
            &mut v,
            "total_value.amount",
            "TOTAL_MISMATCH",
            format!("the items add up to {sum}, not {total}"),
        );
    }
    v
}

#[cfg(test)]
mod tests {
    use customs_proto::common::{DeclarationItem, Money, RulingCitation};
    use time::macros::date;

    use super::*;

    fn money(currency: &str, amount: &str) -> Option<Money> {
        Some(Money {
            currency_code: currency.into(),
            amount: amount.into(),
        })
    }

    fn content() -> DeclarationContent {
        DeclarationContent {
            direction: Direction::Import as i32,
            clearance_mode: ClearanceMode::RegionalIntegrated as i32,
            declaring_office: "5301".into(),
            port_code: "5316".into(),
            enterprise_code: "4403960001".into(),
            broker_code: "4403980001".into(),
            trade_mode: "0110".into(),
            bill_of_lading: "MSKU-BL-001".into(),
            container_numbers: vec!["MSKU1234565".into()],
            total_value: money("USD", "3000.00"),
            items: vec![
                DeclarationItem {
                    line_no: 1,
                    hs_code: "8471300000".into(),
                    description: "notebook computers".into(),
                    origin_country: "JP".into(),
                    quantity: "4".into(),
                    unit: "PCE".into(),
                    declared_value: money("USD", "2000.00"),
                    rulings: vec![RulingCitation {
                        ruling_id: "PC1".into(),
                        kind: ProtoRulingKind::PreClassification as i32,
                        quantity: String::new(),
                    }],
                },
                DeclarationItem {
                    line_no: 2,
                    hs_code: "0202300090".into(),
                    description: "frozen beef".into(),
                    origin_country: "AU".into(),
                    quantity: "100".into(),
                    unit: "KGM".into(),
                    declared_value: money("USD", "1000.00"),
                    rulings: vec![RulingCitation {
                        ruling_id: "LC1".into(),
                        kind: ProtoRulingKind::Licence as i32,
                        quantity: "100".into(),
                    }],
                },
            ],
            guarantee_reference: String::new(),
            trading_country: "JP".into(),
        }
    }

    fn ruling(id: &str, kind: RulingKind) -> RulingRecord {
        RulingRecord {
            id: id.into(),
            kind,
            issuing_house: "5100".into(),
            holder: "4403960001".into(),
            subject: "goods".into(),
            hs_code: Some(if kind == RulingKind::Licence {
                "0202".into()
            } else {
                "8471300000".into()
            }),
            unit_price: None,
            origin_country: None,
            quantity_granted_milli: (kind == RulingKind::Licence).then_some(500_000),
            unit: (kind == RulingKind::Licence).then(|| "KGM".into()),
            valid_from: 20260101,
            valid_until: 20261231,
            revoked: false,
            replaced_by: None,
            revocation_reason: None,
        }
    }

    fn facts() -> Facts {
        let enterprise = EnterpriseFact {
            is_broker: false,
            suspended: false,
            credit_class: "GENERAL_CREDIT".into(),
            home_house: "5300".into(),
        };
        Facts {
            declarant: Some(enterprise.clone()),
            broker: Some(EnterpriseFact {
                is_broker: true,
                ..enterprise
            }),
            port: Some(PortFact {
                is_land: false,
                house: "5300".into(),
            }),
            manifest: Some(ManifestFact {
                port_code: "5316".into(),
                import: true,
                containers: vec!["MSKU1234565".into()],
            }),
            rulings: HashMap::from([
                (
                    "PC1".into(),
                    (ruling("PC1", RulingKind::PreClassification), None),
                ),
                (
                    "LC1".into(),
                    (ruling("LC1", RulingKind::Licence), Some(500_000)),
                ),
            ]),
            land_port_integrated_from: date!(2014 - 12 - 01),
            date: date!(2026 - 06 - 01),
        }
    }

    fn reasons(content: &DeclarationContent, facts: &Facts) -> Vec<String> {
        logic_checks(content, facts)
            .into_iter()
            .map(|v| v.reason.into_owned())
            .collect()
    }

    #[test]
    fn a_correct_declaration_passes_every_check() {
        assert_eq!(logic_checks(&content(), &facts()), []);
        assert_eq!(cited_rulings(&content()), ["LC1", "PC1"]);
    }

    #[test]
    fn each_mode_is_accepted_where_it_is_declared() {
        for mode in [
            ClearanceMode::PortClearance,
            ClearanceMode::LocalDeclarePortRelease,
            ClearanceMode::LocalDeclareLocalRelease,
        ] {
            let mut declared = content();
            declared.clearance_mode = mode as i32;
            assert_eq!(logic_checks(&declared, &facts()), [], "{mode:?} at 5301");
        }
        // Integrated and transit: at any house, for a port and a declarant elsewhere.
        let mut elsewhere = facts();
        elsewhere.port.as_mut().unwrap().house = "5200".into();
        elsewhere.declarant.as_mut().unwrap().home_house = "5100".into();
        for mode in [ClearanceMode::RegionalIntegrated, ClearanceMode::Transit] {
            let mut declared = content();
            declared.clearance_mode = mode as i32;
            assert_eq!(logic_checks(&declared, &elsewhere), [], "{mode:?}");
        }
    }

    #[test]
    fn each_rule_refuses_its_own_fault() {
        type Mutation = (fn(&mut DeclarationContent, &mut Facts), &'static str);
        let cases: Vec<Mutation> = vec![
            (|c, _| c.direction = 0, "REQUIRED"),
            (|c, _| c.clearance_mode = 0, "REQUIRED"),
            (|c, _| c.trade_mode = "11".into(), "TRADE_MODE_FORMAT"),
            (
                |c, f| {
                    c.bill_of_lading = String::new();
                    f.manifest = None;
                },
                "REQUIRED",
            ),
            (
                |c, _| c.trading_country = "Japan".into(),
                "COUNTRY_CODE_FORMAT",
            ),
            (|_, f| f.declarant = None, "ENTERPRISE_NOT_REGISTERED"),
            (
                |_, f| f.declarant.as_mut().unwrap().suspended = true,
                "ENTERPRISE_SUSPENDED",
            ),
            (|_, f| f.broker = None, "BROKER_NOT_REGISTERED"),
            (
                |_, f| f.broker.as_mut().unwrap().is_broker = false,
                "NOT_A_BROKER",
            ),
            (
                |_, f| f.broker.as_mut().unwrap().suspended = true,
                "BROKER_SUSPENDED",
            ),
            (|_, f| f.port = None, "PORT_UNKNOWN"),
            (
                |_, f| {
                    f.port.as_mut().unwrap().is_land = true;
                    f.land_port_integrated_from = date!(2027 - 01 - 01);
                },
                "LAND_PORT_MODE_NOT_YET_OPEN",
            ),
            (
                |c, f| {
                    c.clearance_mode = ClearanceMode::PortClearance as i32;
                    f.port.as_mut().unwrap().house = "5200".into();
                },
                "OFFICE_NOT_FOR_MODE",
            ),
            (
                |c, f| {
                    c.clearance_mode = ClearanceMode::LocalDeclarePortRelease as i32;
                    f.declarant.as_mut().unwrap().home_house = "5100".into();
                },
                "OFFICE_NOT_FOR_MODE",
            ),
            (
                |c, f| {
                    c.clearance_mode = ClearanceMode::LocalDeclareLocalRelease as i32;
                    f.declarant.as_mut().unwrap().home_house = "5100".into();
                },
                "OFFICE_NOT_FOR_MODE",
            ),
            (|_, f| f.manifest = None, "MANIFEST_NOT_FOUND"),
            (
                |_, f| f.manifest.as_mut().unwrap().port_code = "5320".into(),
                "MANIFEST_PORT_MISMATCH",
            ),
            (
                |_, f| f.manifest.as_mut().unwrap().import = false,
                "MANIFEST_DIRECTION_MISMATCH",
            ),
            (
                |c, _| c.container_numbers.push("CSQU3054383".into()),
                "CONTAINER_NOT_ON_MANIFEST",
            ),
            (
                |c, _| c.container_numbers.push("MSKU1234565".into()),
                "CONTAINER_DUPLICATE",
            ),
            (|c, _| c.items.clear(), "REQUIRED"),
            (|c, _| c.items[1].line_no = 1, "LINE_NO_INVALID"),
            (
                |c, _| {
                    c.items[0].hs_code = "84713000".into();
                    c.items[0].rulings.clear();
                },
                "HS_CODE_FORMAT",
            ),
            (
                |c, _| {
                    c.items[0].hs_code = "7701000000".into();
                    c.items[0].rulings.clear();
                },
                "HS_CODE_RESERVED_CHAPTER",
            ),
            (
                |c, _| {
                    c.items[0].hs_code = "9901000000".into();
                    c.items[0].rulings.clear();
                },
                "HS_CODE_CHAPTER",
            ),
            (
                |c, _| c.items[0].origin_country = "jp".into(),
                "COUNTRY_CODE_FORMAT",
            ),
            (|c, _| c.items[0].quantity = "0".into(), "NOT_POSITIVE"),
            (
                |c, _| c.items[0].quantity = "four".into(),
                "DECIMAL_INVALID",
            ),
            (|c, _| c.items[0].unit = String::new(), "REQUIRED"),
            (
                |c, _| c.items[0].declared_value = money("usd", "2000.00"),
                "CURRENCY_CODE_INVALID",
            ),
            (
                |c, _| c.items[0].declared_value = money("EUR", "2000.00"),
                "CURRENCY_MISMATCH",
            ),
            (
                |c, _| c.total_value = money("USD", "3000.01"),
                "TOTAL_MISMATCH",
            ),
            (
                |_, f| {
                    f.rulings.remove("PC1");
                },
                "RULING_NOT_FOUND",
            ),
            (
                |_, f| f.rulings.get_mut("PC1").unwrap().0.revoked = true,
                "RULING_REVOKED",
            ),
            (|_, f| f.date = date!(2027 - 02 - 01), "RULING_NOT_IN_FORCE"),
            (
                |_, f| f.rulings.get_mut("PC1").unwrap().0.holder = "4403960009".into(),
                "RULING_HOLDER_MISMATCH",
            ),
            (
                |c, _| c.items[0].rulings[0].kind = ProtoRulingKind::OriginPreDetermination as i32,
                "RULING_KIND_MISMATCH",
            ),
            (
                |_, f| f.rulings.get_mut("PC1").unwrap().0.hs_code = Some("8471410000".into()),
                "RULING_HS_CODE_MISMATCH",
            ),
            (
                |_, f| f.rulings.get_mut("LC1").unwrap().1 = Some(99_999),
                "LICENCE_QUANTITY_EXCEEDED",
            ),
        ];
        for (i, (mutate, expected)) in cases.into_iter().enumerate() {
            let (mut c, mut f) = (content(), facts());
            mutate(&mut c, &mut f);
            let found = reasons(&c, &f);
            assert!(
                found.iter().any(|r| r == expected),
                "case {i}: expected {expected}, found {found:?}"
            );
        }
    }

    #[test]
    fn a_bad_declaration_gets_every_violation_at_once() {
        let mut c = content();
        c.trade_mode = String::new();
        c.trading_country = String::new();
        c.items[0].hs_code = "77".into();
        c.items[1].quantity = "-1".into();
        c.total_value = money("USD", "1.00");
        let mut f = facts();
        f.declarant = None;
        f.port = None;
        f.manifest = None;
        let found = reasons(&c, &f);
        for expected in [
            "TRADE_MODE_FORMAT",
            "COUNTRY_CODE_FORMAT",
            "ENTERPRISE_NOT_REGISTERED",
            "PORT_UNKNOWN",
            "MANIFEST_NOT_FOUND",
            "HS_CODE_FORMAT",
            "NOT_POSITIVE",
        ] {
            assert!(
                found.iter().any(|r| r == expected),
                "{expected} missing from {found:?}"
            );
        }
        assert!(found.len() >= 7);
    }
}
