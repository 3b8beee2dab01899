//! Risk screening and the channel decision 通道判别 (DOMAIN.md 5.2): control
//! instructions matched through an index, a deterministic sampling draw, and the
//! strongest lane hit wins.

use std::collections::HashMap;

use rustc_hash::FxHashMap;

use rust_decimal::Decimal;
use serde::{Deserialize, Serialize};

/// The lanes, weakest first: the strongest hit wins.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(rename_all = "SCREAMING_SNAKE_CASE")]
pub enum Lane {
    /// Released once duties are secured.
    Green,
    /// Released, and sampled for post-clearance re-review.
    Blue,
    /// Document review.
    Yellow,
    /// Document review and physical inspection.
    Red,
}

impl Lane {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Green => "GREEN",
            Self::Blue => "BLUE",
            Self::Yellow => "YELLOW",
            Self::Red => "RED",
        }
    }

    pub fn parse(value: &str) -> Option<Self> {
        [Self::Green, Self::Blue, Self::Yellow, Self::Red]
            .into_iter()
            .find(|lane| lane.as_str() == value)
    }
}

/// Conditions of a control instruction 布控指令; every condition given must hold
/// (an empty list means "any").
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Conditions {
    pub hs_prefixes: Vec<String>,
    pub origin_countries: Vec<String>,
    pub trade_modes: Vec<String>,
    pub enterprise_codes: Vec<String>,
    pub port_codes: Vec<String>,
    pub clearance_modes: Vec<String>,
    pub credit_classes: Vec<String>,
    pub min_unit_value_cny: Option<Decimal>,
    pub max_unit_value_cny: Option<Decimal>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Instruction {
    pub id: String,
    pub conditions: Conditions,
    pub lane: Lane,
    pub order_inspection: bool,
    /// Unix seconds, inclusive start and exclusive end.
    pub valid_from: i64,
    pub valid_until: i64,
    pub issuing_house: String,
    pub reason: String,
}

/// One item as screening sees it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ScreenItem {
    pub line_no: i32,
    pub hs_code: String,
    pub origin_country: String,
    /// Declared value per unit, in CNY; `None` when it cannot be computed.
    pub unit_value_cny: Option<Decimal>,
}

/// A declaration as screening sees it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ScreenInput {
    pub declaration_number: String,
    pub enterprise_code: String,
    pub port_code: String,
    pub trade_mode: String,
    pub clearance_mode: String,
    pub credit_class: String,
    pub items: Vec<ScreenItem>,
    /// When the screening happens, unix seconds (instructions must be in force).
    pub at: i64,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Hit {
    pub instruction_id: String,
    pub lane: Lane,
    pub order_inspection: bool,
    /// Item lines that matched; empty when the instruction has no item condition.
    pub line_nos: Vec<i32>,
    pub reason: String,
}

fn any_or(list: &[String], value: &str) -> bool {
    list.is_empty() || list.iter().any(|v| v == value)
}

impl Instruction {
    /// Whether the instruction is in force and its declaration-level conditions hold.
    fn applies_to(&self, input: &ScreenInput) -> bool {
        let c = &self.conditions;
        input.at >= self.valid_from
            && input.at < self.valid_until
            && any_or(&c.trade_modes, &input.trade_mode)
            && any_or(&c.enterprise_codes, &input.enterprise_code)
            && any_or(&c.port_codes, &input.port_code)
            && any_or(&c.clearance_modes, &input.clearance_mode)
            && any_or(&c.credit_classes, &input.credit_class)
    }

    /// Whether an item meets the item conditions other than the HS prefix.
    fn item_fits(&self, item: &ScreenItem) -> bool {
        let c = &self.conditions;
        any_or(&c.origin_countries, &item.origin_country)
            && c.min_unit_value_cny
                .is_none_or(|min| item.unit_value_cny.is_some_and(|v| v >= min))
            && c.max_unit_value_cny
                .is_none_or(|max| item.unit_value_cny.is_some_and(|v| v <= max))
    }

    /// The lines hit among `items`, which already have one of the instruction's HS
    /// prefixes (in line order); `None` when it does not hit.
    fn hits_items<'a>(
        &self,
        input: &ScreenInput,
        items: impl Iterator<Item = &'a ScreenItem>,
    ) -> Option<Vec<i32>> {
        if !self.applies_to(input) {
            return None;
        }
        let lines: Vec<i32> = items
            .filter(|item| self.item_fits(item))
            .map(|item| item.line_no)
            .collect();
        (!lines.is_empty()).then_some(lines)
    }

    /// The item lines this instruction hits, or `None` when it does not hit.
    pub fn hits(&self, input: &ScreenInput) -> Option<Vec<i32>> {
        let c = &self.conditions;
        if !self.applies_to(input) {
            return None;
        }
        let item_conditions = !c.hs_prefixes.is_empty()
            || !c.origin_countries.is_empty()
            || c.min_unit_value_cny.is_some()
            || c.max_unit_value_cny.is_some();
        if !item_conditions {
            return Some(Vec::new());
        }
        let lines: Vec<i32> = input
            .items
            .iter()
            .filter(|item| {
                (c.hs_prefixes.is_empty()
                    || c.hs_prefixes
                        .iter()
                        .any(|p| item.hs_code.starts_with(p.as_str())))
                    && self.item_fits(item)
            })
            .map(|item| item.line_no)
            .collect();
        (!lines.is_empty()).then_some(lines)
    }
}

/// An HS prefix as an index key: its digits as a number, and its length.
fn prefix_key(digits: &str) -> Option<u64> {
    let value: u64 = digits.parse().ok()?;
    Some(value << 4 | digits.len() as u64)
}

/// Active instructions, indexed by their most selective condition so that screening
/// evaluates only candidates: an HS prefix (looked up for each prefix length in use, for
/// each item), else an enterprise, else an origin, else a port; the rest are always tried.
#[derive(Debug, Default)]
pub struct InstructionIndex {
    instructions: Vec<Instruction>,
    by_hs_prefix: FxHashMap<u64, Vec<usize>>,
    /// The prefix lengths some instruction uses, ascending.
    prefix_lengths: Vec<usize>,
    by_enterprise: HashMap<String, Vec<usize>>,
    by_origin: HashMap<String, Vec<usize>>,
    by_port: HashMap<String, Vec<usize>>,
    unindexed: Vec<usize>,
}

impl InstructionIndex {
    pub fn new(instructions: Vec<Instruction>) -> Self {
        let mut index = Self::default();
        for (position, instruction) in instructions.iter().enumerate() {
            let c = &instruction.conditions;
            let keys: Option<Vec<u64>> = c.hs_prefixes.iter().map(|p| prefix_key(p)).collect();
            if let (false, Some(keys)) = (c.hs_prefixes.is_empty(), keys) {
                for (key, prefix) in keys.into_iter().zip(&c.hs_prefixes) {
                    index.by_hs_prefix.entry(key).or_default().push(position);
                    if !index.prefix_lengths.contains(&prefix.len()) {
                        index.prefix_lengths.push(prefix.len());
                    }
                }
                continue;
            }
            let (map, keys) = if !c.enterprise_codes.is_empty() {
                (&mut index.by_enterprise, &c.enterprise_codes)
            } else if !c.origin_countries.is_empty() {
                (&mut index.by_origin, &c.origin_countries)
            } else if !c.port_codes.is_empty() {
                (&mut index.by_port, &c.port_codes)
            } else {
                index.unindexed.push(position);
                continue;
            };
            for key in keys {
                map.entry(key.clone()).or_default().push(position);
            }
        }
        index.prefix_lengths.sort_unstable();
        index.instructions = instructions;
        index
    }

    pub fn len(&self) -> usize {
        self.instructions.len()
    }

    pub fn is_empty(&self) -> bool {
        self.instructions.is_empty()
    }

    /// Every instruction that hits, strongest lane first.
    pub fn screen(&self, input: &ScreenInput) -> Vec<Hit> {
        let mut hits = Vec::new();
        // Instructions indexed by HS prefix, with the items whose code has the prefix:
        // only those items are then checked for the instruction's other item conditions.
        let mut by_item: Vec<(usize, usize)> = Vec::new();
        for (index, item) in input.items.iter().enumerate() {
            for &length in self
                .prefix_lengths
                .iter()
                .take_while(|&&length| length <= item.hs_code.len())
            {
                if let Some(found) =
                    prefix_key(&item.hs_code[..length]).and_then(|key| self.by_hs_prefix.get(&key))
                {
                    by_item.extend(found.iter().map(|&position| (position, index)));
                }
            }
        }
        by_item.sort_unstable();
        by_item.dedup();
        for group in by_item.chunk_by(|a, b| a.0 == b.0) {
            let instruction = &self.instructions[group[0].0];
            if let Some(line_nos) =
                instruction.hits_items(input, group.iter().map(|&(_, index)| &input.items[index]))
            {
                hits.push(Hit {
                    instruction_id: instruction.id.clone(),
                    lane: instruction.lane,
                    order_inspection: instruction.order_inspection,
                    line_nos,
                    reason: instruction.reason.clone(),
                });
            }
        }
        // The others (each instruction is in exactly one index), checked in full.
        let mut candidates: Vec<usize> = self.unindexed.clone();
        let mut extend = |map: &HashMap<String, Vec<usize>>, key: &str| {
            if let Some(found) = map.get(key) {
                candidates.extend_from_slice(found);
            }
        };
        extend(&self.by_enterprise, &input.enterprise_code);
        extend(&self.by_port, &input.port_code);
        for item in &input.items {
            extend(&self.by_origin, &item.origin_country);
        }
        candidates.sort_unstable();
        candidates.dedup();
        hits.extend(candidates.into_iter().filter_map(|position| {
            let instruction = &self.instructions[position];
            instruction.hits(input).map(|line_nos| Hit {
                instruction_id: instruction.id.clone(),
                lane: instruction.lane,
                order_inspection: instruction.order_inspection,
                line_nos,
                reason: instruction.reason.clone(),
            })
        }));
        hits.sort_by(|a, b| {
            b.lane
                .cmp(&a.lane)
                .then_with(|| a.instruction_id.cmp(&b.instruction_id))
        });
        hits
    }
}

/// Sampling rates of one credit class, per lane, each in [0, 1].
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct SamplingRates {
    pub red: Decimal,
    pub yellow: Decimal,
    pub blue: Decimal,
}

/// The draw in [0, 1) for a declaration: SHA-256 of the seed and the number, so any
/// decision can be replayed.
pub fn sampling_draw(seed: &str, declaration_number: &str) -> Decimal {
    customs_common::sampling::draw(seed, declaration_number)
}

/// The lane the draw selects: RED below the red rate, then YELLOW, then BLUE.
pub fn sampled_lane(draw: Decimal, rates: &SamplingRates) -> Option<Lane> {
    let red = rates.red;
    let yellow = red + rates.yellow;
    let blue = yellow + rates.blue;
    if draw < red {
        Some(Lane::Red)
    } else if draw < yellow {
        Some(Lane::Yellow)
    } else if draw < blue {
        Some(Lane::Blue)
    } else {
        None
    }
}

/// The decision: the strongest of the instructions' lanes and the sampled lane;
/// GREEN when nothing hit.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Decision {
    pub lane: Lane,
    pub hits: Vec<Hit>,
    pub draw: Decimal,
    pub sampled: Option<Lane>,
    pub inspection_ordered: bool,
}

pub fn decide(
    index: &InstructionIndex,
    input: &ScreenInput,
    seed: &str,
    rates: &SamplingRates,
) -> Decision {
    let hits = index.screen(input);
    let draw = sampling_draw(seed, &input.declaration_number);
    let sampled = sampled_lane(draw, rates);
    let lane = hits
        .iter()
        .map(|hit| hit.lane)
        .chain(sampled)
        .max()
        .unwrap_or(Lane::Green);
    let inspection_ordered = lane == Lane::Red || hits.iter().any(|hit| hit.order_inspection);
    Decision {
        lane,
        hits,
        draw,
        sampled,
        inspection_ordered,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn instruction(id: &str, lane: Lane, conditions: Conditions) -> Instruction {
        Instruction {
            id: id.into(),
            conditions,
            lane,
            order_inspection: false,
            valid_from: 0,
            valid_until: i64::MAX,
            issuing_house: "5300".into(),
            reason: format!("rule {id}"),
        }
    }

    fn input() -> ScreenInput {
        ScreenInput {
            declaration_number: "530120261000000001".into(),
            enterprise_code: "4403960001".into(),
            port_code: "5316".into(),
            trade_mode: "0110".into(),
            clearance_mode: "REGIONAL_INTEGRATED".into(),
            credit_class: "GENERAL_CREDIT".into(),
            items: vec![
                ScreenItem {
                    line_no: 1,
                    hs_code: "8471300000".into(),
                    origin_country: "US".into(),
                    unit_value_cny: Some(Decimal::new(3550, 0)),
                },
                ScreenItem {
                    line_no: 2,
                    hs_code: "0202300090".into(),
                    origin_country: "AU".into(),
                    unit_value_cny: Some(Decimal::new(40, 0)),
                },
            ],
            at: 1_800_000_000,
        }
    }

    const NONE: SamplingRates = SamplingRates {
        red: Decimal::ZERO,
        yellow: Decimal::ZERO,
        blue: Decimal::ZERO,
    };

    #[test]
    fn no_hit_and_no_sample_is_green() {
        let decision = decide(&InstructionIndex::new(vec![]), &input(), "seed", &NONE);
        assert_eq!(
            (
                decision.lane,
                decision.hits.len(),
                decision.inspection_ordered
            ),
            (Lane::Green, 0, false)
        );
    }

    #[test]
    fn each_lane_comes_from_its_instruction_and_the_strongest_wins() {
        for lane in [Lane::Blue, Lane::Yellow, Lane::Red] {
            let index = InstructionIndex::new(vec![instruction(
                "I1",
                lane,
                Conditions {
                    hs_prefixes: vec!["8471".into()],
                    ..Default::default()
                },
            )]);
            let decision = decide(&index, &input(), "seed", &NONE);
            assert_eq!(decision.lane, lane);
            assert_eq!(decision.hits[0].line_nos, [1]);
            assert_eq!(decision.inspection_ordered, lane == Lane::Red);
        }
        let index = InstructionIndex::new(vec![
            instruction(
                "Y",
                Lane::Yellow,
                Conditions {
                    origin_countries: vec!["AU".into()],
                    ..Default::default()
                },
            ),
            instruction(
                "R",
                Lane::Red,
                Conditions {
                    enterprise_codes: vec!["4403960001".into()],
                    ..Default::default()
                },
            ),
            instruction("B", Lane::Blue, Conditions::default()),
        ]);
        let decision = decide(&index, &input(), "seed", &NONE);
        assert_eq!(decision.lane, Lane::Red);
        assert_eq!(
            decision
                .hits
                .iter()
                .map(|h| h.instruction_id.as_str())
                .collect::<Vec<_>>(),
            ["R", "Y", "B"]
        );
    }

    #[test]
    fn every_condition_must_hold() {
        let conditions = |f: fn(&mut Conditions)| {
            let mut c = Conditions {
                hs_prefixes: vec!["84".into()],
                ..Default::default()
            };
            f(&mut c);
            c
        };
        let misses = [
            conditions(|c| c.origin_countries = vec!["JP".into()]),
            conditions(|c| c.trade_modes = vec!["0615".into()]),
            conditions(|c| c.enterprise_codes = vec!["4403960002".into()]),
            conditions(|c| c.port_codes = vec!["5301".into()]),
            conditions(|c| c.clearance_modes = vec!["TRANSIT".into()]),
            conditions(|c| c.credit_classes = vec!["DISCREDITED".into()]),
            conditions(|c| c.min_unit_value_cny = Some(Decimal::new(5000, 0))),
            conditions(|c| c.max_unit_value_cny = Some(Decimal::new(100, 0))),
        ];
        for (i, conditions) in misses.into_iter().enumerate() {
            let index = InstructionIndex::new(vec![instruction("X", Lane::Red, conditions)]);
            assert!(
                index.screen(&input()).is_empty(),
                "condition {i} should miss"
            );
        }
        let within = conditions(|c| {
            c.min_unit_value_cny = Some(Decimal::new(3000, 0));
            c.max_unit_value_cny = Some(Decimal::new(4000, 0));
            c.credit_classes = vec!["GENERAL_CREDIT".into()];
        });
        assert_eq!(
            InstructionIndex::new(vec![instruction("X", Lane::Red, within)])
                .screen(&input())
                .len(),
            1
        );
    }

    #[test]
    fn instructions_out_of_their_window_do_not_hit() {
        let mut expired = instruction("E", Lane::Red, Conditions::default());
        expired.valid_until = 1_700_000_000;
        let mut future = instruction("F", Lane::Red, Conditions::default());
        future.valid_from = 1_900_000_000;
        assert!(
            InstructionIndex::new(vec![expired, future])
                .screen(&input())
                .is_empty()
        );
    }

    #[test]
    fn sampling_is_deterministic_and_replayable() {
        let a = sampling_draw("seed-2026", "530120261000000001");
        assert_eq!(a, sampling_draw("seed-2026", "530120261000000001"));
        assert_ne!(a, sampling_draw("seed-2026", "530120261000000002"));
        assert_ne!(a, sampling_draw("other-seed", "530120261000000001"));
        assert!(a >= Decimal::ZERO && a < Decimal::ONE);
        let rates = SamplingRates {
            red: Decimal::new(1, 1),
            yellow: Decimal::new(2, 1),
            blue: Decimal::new(3, 1),
        };
        assert_eq!(sampled_lane(Decimal::new(5, 2), &rates), Some(Lane::Red));
        assert_eq!(
            sampled_lane(Decimal::new(25, 2), &rates),
            Some(Lane::Yellow)
        );
        assert_eq!(sampled_lane(Decimal::new(55, 2), &rates), Some(Lane::Blue));
        assert_eq!(sampled_lane(Decimal::new(65, 2), &rates), None);
        let always_yellow = SamplingRates {
            red: Decimal::ZERO,
            yellow: Decimal::ONE,
            blue: Decimal::ZERO,
        };
        let decision = decide(
            &InstructionIndex::new(vec![]),
            &input(),
            "s",
            &always_yellow,
        );
        assert_eq!(
            (decision.lane, decision.sampled),
            (Lane::Yellow, Some(Lane::Yellow))
        );
    }

    #[test]
    fn sampling_rates_hold_over_many_declarations() {
        let rates = SamplingRates {
            red: Decimal::new(5, 2),
            yellow: Decimal::ZERO,
            blue: Decimal::ZERO,
        };
        let red = (0..10_000)
            .filter(|n| {
                sampled_lane(sampling_draw("seed", &format!("5301202610{n:08}")), &rates)
                    == Some(Lane::Red)
            })
            .count();
        assert!((400..600).contains(&red), "5% of 10,000 drew {red}");
    }
}
