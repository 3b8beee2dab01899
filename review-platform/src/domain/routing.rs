//! Routing a declaration to one of the four review sub-centres by HS chapter
//! (DOMAIN.md 5.3): one sub-centre when all items fall there; otherwise the largest
//! sum of declared values in CNY; a tie goes to the tied sub-centre that owns the
//! lowest-numbered line.

use std::collections::BTreeMap;

use customs_common::{Error, Violations, error::FieldViolation};
use rust_decimal::Decimal;
use serde::{Deserialize, Serialize};
use time::Date;

/// The four review sub-centres.
pub const SUB_CENTRES: [&str; 4] = ["5100", "5200", "5300", "5700"];

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ChapterRange {
    pub first: u8,
    pub last: u8,
    pub sub_centre: String,
}

/// A version of the chapter table.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RoutingTable {
    pub version: i64,
    pub effective_from: Date,
    pub ranges: Vec<ChapterRange>,
    /// Sub-centre per chapter, index = chapter (0 unused).
    by_chapter: [Option<usize>; 98],
}

impl RoutingTable {
    /// Checks that the ranges name review sub-centres and cover every chapter 01..97
    /// exactly once.
    pub fn new(
        version: i64,
        effective_from: Date,
        ranges: Vec<ChapterRange>,
    ) -> Result<Self, Error> {
        let mut violations = Violations::new();
        let mut by_chapter = [None; 98];
        if ranges.is_empty() {
            violations.push(
                "ranges",
                "REQUIRED",
                "a routing table needs its chapter ranges",
            );
        }
        for (index, range) in ranges.iter().enumerate() {
            let field = format!("ranges[{index}]");
            if !SUB_CENTRES.contains(&range.sub_centre.as_str()) {
                violations.push(
                    format!("{field}.sub_centre"),
                    "NOT_A_SUB_CENTRE",
                    format!(
                        "{:?} is not a review sub-centre ({})",
                        range.sub_centre,
                        SUB_CENTRES.join(", ")
                    ),
                );
            }
            if range.first < 1 || range.last > 97 || range.first > range.last {
                violations.push(
                    field,
                    "BAD_CHAPTER_RANGE",
                    format!(
                        "chapters {}..{} are not a range within 01..97",
                        range.first, range.last
                    ),
                );
                continue;
            }
            for chapter in range.first..=range.last {
                let slot = &mut by_chapter[usize::from(chapter)];
                if slot.is_some() {
                    violations.push(
                        field.clone(),
                        "CHAPTER_TWICE",
                        format!("chapter {chapter:02} is routed by two ranges"),
                    );
                }
                *slot = Some(index);
            }
        }
        if !ranges.is_empty() {
            let missing: Vec<String> = (1..=97)
                .filter(|&chapter| by_chapter[chapter].is_none())
                .map(|chapter| format!("{chapter:02}"))
                .collect();
            if !missing.is_empty() {
                violations.push(
                    "ranges",
                    "CHAPTERS_NOT_ROUTED",
                    format!("no sub-centre for chapters {}", missing.join(", ")),
                );
            }
        }
        violations.into_result()?;
        Ok(Self {
            version,
            effective_from,
            ranges,
            by_chapter,
        })
    }

    /// The sub-centre for an HS code's chapter (its first two digits).
    pub fn sub_centre_of(&self, hs_code: &str) -> Option<&str> {
        let chapter: usize = hs_code.get(..2)?.parse().ok()?;
        let index = (*self.by_chapter.get(chapter)?)?;
        Some(self.ranges[index].sub_centre.as_str())
    }
}

/// An item to route: its line, HS code and declared value in CNY.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RoutedItem {
    pub line_no: i32,
    pub hs_code: String,
    pub value_cny: Decimal,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct SubCentreSum {
    pub sub_centre: String,
    pub total_cny: Decimal,
    pub line_nos: Vec<i32>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum Basis {
    SingleSubCentre,
    LargestValue,
    TieLowestLine,
}

impl Basis {
    pub fn explanation(self) -> &'static str {
        match self {
            Self::SingleSubCentre => "single sub-centre",
            Self::LargestValue => "largest value",
            Self::TieLowestLine => "tie: lowest line",
        }
    }
}

/// Where a declaration goes, and why.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Routing {
    pub sub_centre: String,
    pub sums: Vec<SubCentreSum>,
    pub table_version: i64,
    pub basis: Basis,
}

/// Routes items by the table. Items must have been validated (ten-digit HS codes).
pub fn route(table: &RoutingTable, items: &[RoutedItem]) -> Result<Routing, Error> {
    if items.is_empty() {
        return Err(Error::invalid(
            "items",
            "REQUIRED",
            "a declaration to route needs its items",
        ));
    }
    let mut sums: BTreeMap<&str, SubCentreSum> = BTreeMap::new();
    for (index, item) in items.iter().enumerate() {
        let sub_centre = table.sub_centre_of(&item.hs_code).ok_or_else(|| {
            Error::invalid(
                format!("items[{index}].hs_code"),
                "CHAPTER_NOT_ROUTED",
                format!(
                    "no sub-centre reviews chapter {}",
                    &item.hs_code[..2.min(item.hs_code.len())]
                ),
            )
        })?;
        let sum = sums.entry(sub_centre).or_insert_with(|| SubCentreSum {
            sub_centre: sub_centre.to_owned(),
            total_cny: Decimal::ZERO,
            line_nos: Vec::new(),
        });
        sum.total_cny += item.value_cny;
        sum.line_nos.push(item.line_no);
    }
    let mut sums: Vec<SubCentreSum> = sums.into_values().collect();
    for sum in &mut sums {
        sum.line_nos.sort_unstable();
    }
    let largest = sums
        .iter()
        .map(|sum| sum.total_cny)
        .max()
        .unwrap_or_default();
    let tied: Vec<&SubCentreSum> = sums.iter().filter(|sum| sum.total_cny == largest).collect();
    let (winner, basis) = match (sums.len(), tied.as_slice()) {
        (1, _) => (&sums[0], Basis::SingleSubCentre),
        (_, [only]) => (*only, Basis::LargestValue),
        (_, tied) => (
            *tied
                .iter()
                .min_by_key(|sum| sum.line_nos.first().copied().unwrap_or(i32::MAX))
                .unwrap_or(&tied[0]),
            Basis::TieLowestLine,
        ),
    };
    Ok(Routing {
        sub_centre: winner.sub_centre.clone(),
        table_version: table.version,
        basis,
        sums: sums.clone(),
    })
}

/// A declared value in CNY at the configured rate (CNY per unit of the currency).
pub fn to_cny(
    field: &str,
    currency: &str,
    amount: Decimal,
    rates: &BTreeMap<String, Decimal>,
) -> Result<Decimal, FieldViolation> {
    rates
        .get(currency)
        .map(|rate| amount * rate)
        .ok_or_else(|| {
            FieldViolation::new(
                field,
                "NO_EXCHANGE_RATE",
                format!("no exchange rate is configured for {currency}"),
            )
        })
}

#[cfg(test)]
mod tests {
    use super::*;
    use time::macros::date;

    /// The table of DOMAIN.md 5.3.
    fn source_table() -> RoutingTable {
        let ranges = [
            (1, 24, "5300"),
            (25, 27, "5700"),
            (28, 43, "5100"),
            (44, 49, "5200"),
            (50, 83, "5100"),
            (84, 85, "5300"),
            (86, 87, "5200"),
            (88, 88, "5100"),
            (89, 90, "5200"),
            (91, 97, "5700"),
        ]
        .into_iter()
        .map(|(first, last, sub_centre)| ChapterRange {
            first,
            last,
            sub_centre: sub_centre.into(),
        })
        .collect();
        RoutingTable::new(1, date!(2014 - 01 - 01), ranges).unwrap()
    }

    fn item(line_no: i32, chapter: u8, value: i64) -> RoutedItem {
        RoutedItem {
            line_no,
            hs_code: format!("{chapter:02}01000000"),
            value_cny: Decimal::from(value),
        }
    }

    #[test]
    fn every_chapter_boundary_of_the_source_table() {
        let table = source_table();
        let expected = [
            (1, "5300"),
            (24, "5300"),
            (25, "5700"),
            (27, "5700"),
            (28, "5100"),
            (43, "5100"),
            (44, "5200"),
            (49, "5200"),
            (50, "5100"),
            (83, "5100"),
            (84, "5300"),
            (85, "5300"),
            (86, "5200"),
            (87, "5200"),
            (88, "5100"),
            (89, "5200"),
            (90, "5200"),
            (91, "5700"),
            (97, "5700"),
        ];
        for (chapter, sub_centre) in expected {
            let routing = route(&table, &[item(1, chapter, 100)]).unwrap();
            assert_eq!(routing.sub_centre, sub_centre, "chapter {chapter:02}");
            assert_eq!(routing.basis, Basis::SingleSubCentre);
        }
    }

    #[test]
    fn items_in_one_sub_centre_go_there_whatever_their_values() {
        let routing = route(&source_table(), &[item(1, 84, 5), item(2, 1, 1_000_000)]).unwrap();
        assert_eq!(routing.sub_centre, "5300");
        assert_eq!(routing.basis, Basis::SingleSubCentre);
        assert_eq!(routing.sums[0].line_nos, vec![1, 2]);
    }

    #[test]
    fn several_sub_centres_go_to_the_largest_value_sum() {
        // 5100: 300 + 400 = 700 beats 5300: 600, though 5300 has the largest item.
        let items = [item(1, 84, 600), item(2, 30, 300), item(3, 61, 400)];
        let routing = route(&source_table(), &items).unwrap();
        assert_eq!(routing.sub_centre, "5100");
        assert_eq!(routing.basis, Basis::LargestValue);
        let sums: Vec<(&str, Decimal)> = routing
            .sums
            .iter()
            .map(|s| (s.sub_centre.as_str(), s.total_cny))
            .collect();
        assert_eq!(
            sums,
            vec![("5100", Decimal::from(700)), ("5300", Decimal::from(600))]
        );
    }

    #[test]
    fn a_tie_goes_to_the_sub_centre_of_the_lowest_line() {
        let items = [item(3, 84, 500), item(1, 95, 250), item(2, 92, 250)];
        let routing = route(&source_table(), &items).unwrap();
        assert_eq!(routing.sub_centre, "5700");
        assert_eq!(routing.basis, Basis::TieLowestLine);
        let items = [item(1, 84, 500), item(2, 95, 500)];
        assert_eq!(route(&source_table(), &items).unwrap().sub_centre, "5300");
    }

    #[test]
    fn values_are_compared_in_cny() {
        let rates: BTreeMap<String, Decimal> = [
            ("CNY".to_owned(), Decimal::ONE),
            ("USD".to_owned(), Decimal::new(71, 1)),
        ]
        .into();
        // 100 USD = 710 CNY beats 700 CNY.
        let usd = to_cny("v", "USD", Decimal::from(100), &rates).unwrap();
        let items = [
            item(1, 30, 700),
            RoutedItem {
                value_cny: usd,
                ..item(2, 84, 0)
            },
        ];
        assert_eq!(route(&source_table(), &items).unwrap().sub_centre, "5300");
        assert_eq!(
            to_cny("v", "XXX", Decimal::ONE, &rates).unwrap_err().reason,
            "NO_EXCHANGE_RATE"
        );
    }

    #[test]
    fn a_table_must_cover_every_chapter_once_and_name_sub_centres() {
        let mut ranges = source_table().ranges;
        ranges.pop();
        let error = RoutingTable::new(2, date!(2027 - 01 - 01), ranges.clone()).unwrap_err();
        assert!(format!("{error:?}").contains("CHAPTERS_NOT_ROUTED"));
        ranges.push(ChapterRange {
            first: 90,
            last: 97,
            sub_centre: "5700".into(),
        });
        let error = RoutingTable::new(2, date!(2027 - 01 - 01), ranges.clone()).unwrap_err();
        assert!(format!("{error:?}").contains("CHAPTER_TWICE"));
        ranges.pop();
        ranges.push(ChapterRange {
            first: 91,
            last: 97,
            sub_centre: "6000".into(),
        });
        let error = RoutingTable::new(2, date!(2027 - 01 - 01), ranges).unwrap_err();
        assert!(format!("{error:?}").contains("NOT_A_SUB_CENTRE"));
    }
}
