//! Mutual-recognition rulings (DOMAIN.md 6): what every house honours, as the shared
//! store holds them, and the check a cited ruling must pass at acceptance.

use rust_decimal::Decimal;
use serde::{Deserialize, Serialize};

use crate::error::FieldViolation;

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "SCREAMING_SNAKE_CASE")]
pub enum RulingKind {
    /// 商品预归类: goods to an HS code.
    PreClassification,
    /// 价格预审核: goods to a unit price.
    PricePreReview,
    /// 原产地预确定: goods to a country of origin.
    OriginPreDetermination,
    /// A licence or permit, drawn down as it is used.
    Licence,
    ProfessionalDetermination,
    TemporaryAdmission,
}

impl RulingKind {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::PreClassification => "PRE_CLASSIFICATION",
            Self::PricePreReview => "PRICE_PRE_REVIEW",
            Self::OriginPreDetermination => "ORIGIN_PRE_DETERMINATION",
            Self::Licence => "LICENCE",
            Self::ProfessionalDetermination => "PROFESSIONAL_DETERMINATION",
            Self::TemporaryAdmission => "TEMPORARY_ADMISSION",
        }
    }

    pub fn parse(value: &str) -> Option<Self> {
        [
            Self::PreClassification,
            Self::PricePreReview,
            Self::OriginPreDetermination,
            Self::Licence,
            Self::ProfessionalDetermination,
            Self::TemporaryAdmission,
        ]
        .into_iter()
        .find(|kind| kind.as_str() == value)
    }
}

/// A ruling as every house sees it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct RulingRecord {
    pub id: String,
    pub kind: RulingKind,
    pub issuing_house: String,
    /// Enterprise code of the holder.
    pub holder: String,
    pub subject: String,
    /// Pre-classification (and optionally licences): the HS code, or a prefix for licences.
    pub hs_code: Option<String>,
    /// Price pre-review: currency and unit price.
    pub unit_price: Option<(String, Decimal)>,
    /// Origin pre-determination: ISO 3166 alpha-2.
    pub origin_country: Option<String>,
    /// Licences: quantity granted, in thousandths of `unit`.
    pub quantity_granted_milli: Option<i64>,
    pub unit: Option<String>,
    /// Validity as `yyyymmdd`, inclusive.
    pub valid_from: i32,
    pub valid_until: i32,
    pub revoked: bool,
    pub replaced_by: Option<String>,
    pub revocation_reason: Option<String>,
}

/// A declaration item as a ruling check sees it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CitingItem<'a> {
    /// The field path of the citation, `items[2].rulings[0]`, for violations.
    pub field: String,
    pub declarant: &'a str,
    /// The declaration date as `yyyymmdd`.
    pub date: i32,
    pub hs_code: &'a str,
    pub origin_country: &'a str,
    pub quantity: Decimal,
    pub unit: &'a str,
    pub currency: &'a str,
    /// Declared value of the whole line.
    pub value: Decimal,
}

/// Checks that a cited ruling exists, is valid on the declaration date, belongs to the
/// declarant and fits the item. `remaining_milli` is a licence's live balance.
/// Returns every violation found.
pub fn check_citation(
    item: &CitingItem<'_>,
    cited_kind: Option<RulingKind>,
    ruling: Option<&RulingRecord>,
    remaining_milli: Option<i64>,
    requested_milli: Option<i64>,
) -> Vec<FieldViolation> {
    let field = |suffix: &str| format!("{}.{suffix}", item.field);
    let Some(ruling) = ruling else {
        return vec![FieldViolation::new(
            field("ruling_id"),
            "RULING_NOT_FOUND",
            "no such ruling is registered in any house",
        )];
    };
    let mut violations = Vec::new();
    if let Some(kind) = cited_kind
        && kind != ruling.kind
    {
        violations.push(FieldViolation::new(
            field("kind"),
            "RULING_KIND_MISMATCH",
            format!(
                "ruling {} is a {}, not a {}",
                ruling.id,
                ruling.kind.as_str(),
                kind.as_str()
            ),
        ));
    }
    if ruling.revoked {
        violations.push(FieldViolation::new(
            field("ruling_id"),
            "RULING_REVOKED",
            format!("ruling {} was revoked", ruling.id),
        ));
    }
    if item.date < ruling.valid_from || item.date > ruling.valid_until {
        violations.push(FieldViolation::new(
            field("ruling_id"),
            "RULING_NOT_IN_FORCE",
            format!(
                "ruling {} is not in force on the declaration date",
                ruling.id
            ),
        ));
    }
    if ruling.holder != item.declarant {
        violations.push(FieldViolation::new(
            field("ruling_id"),
            "RULING_HOLDER_MISMATCH",
            format!("ruling {} belongs to another enterprise", ruling.id),
        ));
    }
    match ruling.kind {
        RulingKind::PreClassification | RulingKind::ProfessionalDetermination => {
            if let Some(hs_code) = &ruling.hs_code
                && hs_code != item.hs_code
            {
                violations.push(FieldViolation::new(
                    field("hs_code"),
                    "RULING_HS_CODE_MISMATCH",
                    format!("ruling {} classifies the goods under {hs_code}", ruling.id),
                ));
            }
        }
        RulingKind::PricePreReview => {
            let fits = ruling.unit_price.as_ref().is_some_and(|(currency, price)| {
                currency == item.currency
                    && !item.quantity.is_zero()
                    && item.value / item.quantity == *price
            });
            if !fits {
                violations.push(FieldViolation::new(
                    field("declared_value"),
                    "RULING_PRICE_MISMATCH",
                    format!("the declared unit price differs from ruling {}", ruling.id),
                ));
            }
        }
        RulingKind::OriginPreDetermination => {
            if ruling.origin_country.as_deref() != Some(item.origin_country) {
                violations.push(FieldViolation::new(
                    field("origin_country"),
                    "RULING_ORIGIN_MISMATCH",
                    format!("ruling {} determines another origin", ruling.id),
                ));
            }
        }
        RulingKind::Licence => {
            if let Some(prefix) = &ruling.hs_code
                && !item.hs_code.starts_with(prefix.as_str())
            {
                violations.push(FieldViolation::new(
                    field("hs_code"),
                    "LICENCE_GOODS_MISMATCH",
                    format!("licence {} does not cover HS {}", ruling.id, item.hs_code),
                ));
            }
            if ruling.unit.as_deref().is_some_and(|unit| unit != item.unit) {
                violations.push(FieldViolation::new(
                    field("quantity"),
                    "LICENCE_UNIT_MISMATCH",
                    format!("licence {} is granted in another unit", ruling.id),
                ));
            }
            match (requested_milli, remaining_milli) {
                (Some(requested), Some(remaining)) if requested > remaining => {
                    violations.push(FieldViolation::new(
                        field("quantity"),
                        "LICENCE_QUANTITY_EXCEEDED",
                        format!(
                            "licence {} has {} left",
                            ruling.id,
                            Decimal::new(remaining, 3).normalize()
                        ),
                    ));
                }
                (None, _) => violations.push(FieldViolation::new(
                    field("quantity"),
                    "LICENCE_QUANTITY_REQUIRED",
                    "a licence citation states the quantity to draw down",
                )),
                _ => {}
            }
        }
        RulingKind::TemporaryAdmission => {}
    }
    violations
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ruling(kind: RulingKind) -> RulingRecord {
        RulingRecord {
            id: "R1".into(),
            kind,
            issuing_house: "5100".into(),
            holder: "4403960001".into(),
            subject: "laptop computers".into(),
            hs_code: Some("8471300000".into()),
            unit_price: Some(("USD".into(), Decimal::new(50000, 2))),
            origin_country: Some("JP".into()),
            quantity_granted_milli: Some(100_000),
            unit: Some("PCE".into()),
            valid_from: 20260101,
            valid_until: 20261231,
            revoked: false,
            replaced_by: None,
            revocation_reason: None,
        }
    }

    fn item() -> CitingItem<'static> {
        CitingItem {
            field: "items[0].rulings[0]".into(),
            declarant: "4403960001",
            date: 20260601,
            hs_code: "8471300000",
            origin_country: "JP",
            quantity: Decimal::new(10, 0),
            unit: "PCE",
            currency: "USD",
            value: Decimal::new(500000, 2),
        }
    }

    fn reasons(violations: Vec<FieldViolation>) -> Vec<String> {
        violations
            .into_iter()
            .map(|v| v.reason.into_owned())
            .collect()
    }

    #[test]
    fn a_fitting_ruling_of_each_kind_passes() {
        for kind in [
            RulingKind::PreClassification,
            RulingKind::PricePreReview,
            RulingKind::OriginPreDetermination,
            RulingKind::ProfessionalDetermination,
            RulingKind::TemporaryAdmission,
        ] {
            assert_eq!(
                check_citation(&item(), Some(kind), Some(&ruling(kind)), None, None),
                [],
                "{kind:?}"
            );
        }
        let licence = ruling(RulingKind::Licence);
        assert_eq!(
            check_citation(
                &item(),
                Some(RulingKind::Licence),
                Some(&licence),
                Some(10_000),
                Some(10_000)
            ),
            []
        );
    }

    #[test]
    fn missing_revoked_expired_and_foreign_rulings_are_refused() {
        assert_eq!(
            reasons(check_citation(&item(), None, None, None, None)),
            ["RULING_NOT_FOUND"]
        );
        let mut revoked = ruling(RulingKind::PreClassification);
        revoked.revoked = true;
        assert_eq!(
            reasons(check_citation(&item(), None, Some(&revoked), None, None)),
            ["RULING_REVOKED"]
        );
        let mut early = item();
        early.date = 20251231;
        let mut late = item();
        late.date = 20270101;
        for dated in [early, late] {
            let found = check_citation(
                &dated,
                None,
                Some(&ruling(RulingKind::PreClassification)),
                None,
                None,
            );
            assert_eq!(reasons(found), ["RULING_NOT_IN_FORCE"]);
        }
        let mut other = item();
        other.declarant = "4403960002";
        let found = check_citation(
            &other,
            None,
            Some(&ruling(RulingKind::OriginPreDetermination)),
            None,
            None,
        );
        assert_eq!(reasons(found), ["RULING_HOLDER_MISMATCH"]);
        let found = check_citation(
            &item(),
            Some(RulingKind::OriginPreDetermination),
            Some(&ruling(RulingKind::PreClassification)),
            None,
            None,
        );
        assert_eq!(reasons(found), ["RULING_KIND_MISMATCH"]);
    }

    #[test]
    fn each_kind_must_fit_the_item() {
        let mut other = item();
        other.hs_code = "8471410000";
        other.origin_country = "KR";
        other.value = Decimal::new(510000, 2);
        let check = |kind| {
            reasons(check_citation(
                &other,
                Some(kind),
                Some(&ruling(kind)),
                Some(1_000_000),
                Some(1),
            ))
        };
        assert_eq!(
            check(RulingKind::PreClassification),
            ["RULING_HS_CODE_MISMATCH"]
        );
        assert_eq!(check(RulingKind::PricePreReview), ["RULING_PRICE_MISMATCH"]);
        assert_eq!(
            check(RulingKind::OriginPreDetermination),
            ["RULING_ORIGIN_MISMATCH"]
        );
        assert_eq!(check(RulingKind::Licence), ["LICENCE_GOODS_MISMATCH"]);
    }

    #[test]
    fn a_licence_needs_enough_quantity_left_in_its_unit() {
        let licence = ruling(RulingKind::Licence);
        let found = check_citation(&item(), None, Some(&licence), Some(9_999), Some(10_000));
        assert_eq!(reasons(found), ["LICENCE_QUANTITY_EXCEEDED"]);
        let mut kilos = item();
        kilos.unit = "KGM";
        assert_eq!(
            reasons(check_citation(
                &kilos,
                None,
                Some(&licence),
                Some(10_000),
                Some(10_000)
            )),
            ["LICENCE_UNIT_MISMATCH"]
        );
        assert_eq!(
            reasons(check_citation(
                &item(),
                None,
                Some(&licence),
                Some(10_000),
                None
            )),
            ["LICENCE_QUANTITY_REQUIRED"]
        );
    }
}
