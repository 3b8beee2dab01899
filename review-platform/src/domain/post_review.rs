//! Post-clearance batch re-review at Shantou, Jiangmen and Zhanjiang (DOMAIN.md 5.3):
//! every BLUE-lane release is drawn, and a configured share of the rest,
//! deterministically from a seed; each drawn declaration belongs to one of the three
//! houses, so batches spread across them and never overlap.

use customs_common::{error::FieldViolation, sampling::draw};
use rust_decimal::Decimal;

/// The houses that re-review after release.
pub const POST_REVIEW_HOUSES: [&str; 3] = ["6000", "6700", "6800"];

pub fn parse_post_review_house(field: &str, code: &str) -> Result<String, FieldViolation> {
    if POST_REVIEW_HOUSES.contains(&code) {
        Ok(code.to_owned())
    } else {
        Err(FieldViolation::new(
            field,
            "NOT_A_POST_REVIEW_HOUSE",
            format!(
                "post-clearance re-review is done at Shantou 6000, Zhanjiang 6700 and Jiangmen 6800, not {code:?}"
            ),
        ))
    }
}

/// Whether a released declaration is drawn for re-review.
pub fn is_drawn(seed: &str, share: Decimal, declaration_number: &str, lane: &str) -> bool {
    lane == "BLUE" || draw(seed, &format!("share:{declaration_number}")) < share
}

/// The house that re-reviews a drawn declaration.
pub fn house_of(seed: &str, declaration_number: &str) -> &'static str {
    let d = draw(seed, &format!("house:{declaration_number}")) * Decimal::from(3);
    let index = if d < Decimal::ONE {
        0
    } else if d < Decimal::TWO {
        1
    } else {
        2
    };
    POST_REVIEW_HOUSES[index]
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_blue_release_is_drawn_and_a_share_of_the_rest() {
        let share = Decimal::new(2, 1);
        let numbers: Vec<String> = (0..2_000).map(|n| format!("5301202610{n:08}")).collect();
        assert!(numbers.iter().all(|n| is_drawn("s", share, n, "BLUE")));
        let drawn = numbers
            .iter()
            .filter(|n| is_drawn("s", share, n, "GREEN"))
            .count();
        assert!((300..500).contains(&drawn), "{drawn} of 2000 at 0.2");
        assert!(
            !numbers
                .iter()
                .any(|n| is_drawn("s", Decimal::ZERO, n, "RED"))
        );
        // Deterministic.
        let again = numbers
            .iter()
            .filter(|n| is_drawn("s", share, n, "GREEN"))
            .count();
        assert_eq!(drawn, again);
    }

    #[test]
    fn drawn_declarations_spread_across_the_three_houses() {
        let mut per_house = [0; 3];
        for n in 0..3_000 {
            let house = house_of("s", &format!("5301202610{n:08}"));
            per_house[POST_REVIEW_HOUSES.iter().position(|h| *h == house).unwrap()] += 1;
        }
        assert!(
            per_house.iter().all(|&count| (850..1150).contains(&count)),
            "{per_house:?}"
        );
        assert_eq!(
            parse_post_review_house("h", "5300").unwrap_err().reason,
            "NOT_A_POST_REVIEW_HOUSE"
        );
    }
}
