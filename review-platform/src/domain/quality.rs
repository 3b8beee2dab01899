//! Tax quality and enforcement evaluation per sub-centre over a period (DOMAIN.md 5.3),
//! computed from recorded events: review outcomes and post-clearance findings.

use std::collections::BTreeMap;

use rust_decimal::Decimal;

use super::routing::SUB_CENTRES;

/// A review task that ended in the period: concluded (also by immediate control) or
/// returned to the declarant.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Outcome {
    pub sub_centre: String,
    pub returned: bool,
    /// Seconds from enqueue to the outcome.
    pub seconds: i64,
}

/// A post-clearance finding recorded in the period, attributed to the sub-centre that
/// reviewed (or would have reviewed) the declaration.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FindingFact {
    pub sub_centre: String,
    pub declaration_number: String,
    /// `false` for a re-review that found nothing.
    pub found: bool,
    pub extra_duty_fen: i64,
}

#[derive(Debug, Clone, PartialEq)]
pub struct Evaluation {
    pub sub_centre: String,
    pub tasks_concluded: i64,
    pub conclude_seconds_p50: f64,
    pub conclude_seconds_p90: f64,
    /// Returned / (concluded + returned).
    pub return_rate: Decimal,
    /// Re-reviewed declarations with a finding / re-reviewed declarations.
    pub findings_rate: Decimal,
    pub extra_duty_fen: i64,
}

/// The nearest-rank percentile of sorted values (0 when there are none).
pub fn percentile(sorted: &[i64], p: u32) -> f64 {
    if sorted.is_empty() {
        return 0.0;
    }
    let rank = (u64::from(p) * sorted.len() as u64).div_ceil(100).max(1);
    sorted[usize::try_from(rank)
        .unwrap_or(usize::MAX)
        .min(sorted.len())
        - 1] as f64
}

fn rate(part: i64, whole: i64) -> Decimal {
    if whole == 0 {
        Decimal::ZERO
    } else {
        (Decimal::from(part) / Decimal::from(whole))
            .round_dp(4)
            .normalize()
    }
}

/// One evaluation per review sub-centre, in code order.
pub fn evaluate(outcomes: &[Outcome], findings: &[FindingFact]) -> Vec<Evaluation> {
    SUB_CENTRES
        .iter()
        .map(|&sub_centre| {
            let mut concluded: Vec<i64> = outcomes
                .iter()
                .filter(|o| o.sub_centre == sub_centre && !o.returned)
                .map(|o| o.seconds)
                .collect();
            concluded.sort_unstable();
            let returned = outcomes
                .iter()
                .filter(|o| o.sub_centre == sub_centre && o.returned)
                .count() as i64;
            // Per declaration: re-reviewed, and whether anything was found.
            let mut reviewed: BTreeMap<&str, bool> = BTreeMap::new();
            let mut extra_duty_fen = 0;
            for finding in findings.iter().filter(|f| f.sub_centre == sub_centre) {
                *reviewed.entry(&finding.declaration_number).or_default() |= finding.found;
                extra_duty_fen += finding.extra_duty_fen;
            }
            let with_findings = reviewed.values().filter(|&&found| found).count() as i64;
            let tasks_concluded = concluded.len() as i64;
            Evaluation {
                sub_centre: sub_centre.to_owned(),
                tasks_concluded,
                conclude_seconds_p50: percentile(&concluded, 50),
                conclude_seconds_p90: percentile(&concluded, 90),
                return_rate: rate(returned, tasks_concluded + returned),
                findings_rate: rate(with_findings, reviewed.len() as i64),
                extra_duty_fen,
            }
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn outcome(sub_centre: &str, returned: bool, seconds: i64) -> Outcome {
        Outcome {
            sub_centre: sub_centre.into(),
            returned,
            seconds,
        }
    }

    fn finding(sub_centre: &str, number: &str, found: bool, fen: i64) -> FindingFact {
        FindingFact {
            sub_centre: sub_centre.into(),
            declaration_number: number.into(),
            found,
            extra_duty_fen: fen,
        }
    }

    #[test]
    fn nearest_rank_percentiles() {
        let values: Vec<i64> = (1..=10).map(|v| v * 60).collect();
        assert_eq!(percentile(&values, 50), 300.0);
        assert_eq!(percentile(&values, 90), 540.0);
        assert_eq!(percentile(&[42], 90), 42.0);
        assert_eq!(percentile(&[], 50), 0.0);
    }

    /// A period worked out by hand:
    /// Shenzhen 5300 concluded five tasks in 60, 120, 180, 600 and 3,600 s and
    /// returned one: p50 = 180 s (3rd of 5), p90 = 3,600 s (5th of 5), return rate
    /// 1/6 = 0.1667. Its re-reviews: three declarations, one with two findings
    /// (classification 150.00 and valuation 50.25), one with nothing found, one with
    /// an origin finding of 0: findings rate 2/3 = 0.6667, extra duty 200.25.
    /// Guangzhou 5100 returned its only task: rate 1, nothing concluded.
    #[test]
    fn a_hand_built_period() {
        let outcomes = [
            outcome("5300", false, 600),
            outcome("5300", false, 60),
            outcome("5300", true, 30),
            outcome("5300", false, 3_600),
            outcome("5300", false, 120),
            outcome("5300", false, 180),
            outcome("5100", true, 10),
        ];
        let findings = [
            finding("5300", "A", true, 15_000),
            finding("5300", "A", true, 5_025),
            finding("5300", "B", false, 0),
            finding("5300", "C", true, 0),
        ];
        let report = evaluate(&outcomes, &findings);
        assert_eq!(
            report
                .iter()
                .map(|e| e.sub_centre.as_str())
                .collect::<Vec<_>>(),
            ["5100", "5200", "5300", "5700"]
        );
        let shenzhen = &report[2];
        assert_eq!(shenzhen.tasks_concluded, 5);
        assert_eq!(shenzhen.conclude_seconds_p50, 180.0);
        assert_eq!(shenzhen.conclude_seconds_p90, 3_600.0);
        assert_eq!(shenzhen.return_rate.to_string(), "0.1667");
        assert_eq!(shenzhen.findings_rate.to_string(), "0.6667");
        assert_eq!(shenzhen.extra_duty_fen, 20_025);
        let guangzhou = &report[0];
        assert_eq!(
            (guangzhou.tasks_concluded, guangzhou.return_rate),
            (0, Decimal::ONE)
        );
        let huangpu = &report[1];
        assert_eq!(
            (
                huangpu.tasks_concluded,
                huangpu.return_rate,
                huangpu.findings_rate,
                huangpu.extra_duty_fen
            ),
            (0, Decimal::ZERO, Decimal::ZERO, 0)
        );
    }
}
