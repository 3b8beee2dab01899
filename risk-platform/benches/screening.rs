//! Screening a 20-item declaration against 1,000, 10,000 and 100,000 active control
//! instructions (issue target: p99 under 100 µs at 100,000, and the 100,000 case under
//! 3x the 1,000 case), for two ways the rule set can grow (see `Growth`).
//! `cargo bench -p risk-platform --bench screening`.

use std::hint::black_box;

#[global_allocator]
static GLOBAL: mimalloc::MiMalloc = mimalloc::MiMalloc;

use criterion::{BenchmarkId, Criterion, criterion_group};
use risk_platform::domain::screening::{
    ActiveInstructions, Conditions, Instruction, InstructionIndex, Lane, SamplingRates,
    ScreenInput, ScreenItem, decide,
};
use rust_decimal::Decimal;

/// A deterministic generator, so every run screens the same rule set.
struct Lcg(u64);

impl Lcg {
    fn next(&mut self) -> u64 {
        self.0 = self
            .0
            .wrapping_mul(6_364_136_223_846_793_005)
            .wrapping_add(1_442_695_040_888_963_407);
        self.0 >> 33
    }

    fn below(&mut self, n: u64) -> u64 {
        self.next() % n
    }
}

const COUNTRIES: [&str; 12] = [
    "US", "JP", "DE", "AU", "BR", "KR", "VN", "TH", "FR", "IT", "GB", "NZ",
];

fn chapter(rng: &mut Lcg) -> u64 {
    loop {
        let chapter = rng.below(97) + 1;
        if chapter != 77 {
            return chapter;
        }
    }
}

/// How specific the instructions that make the rule set grow are.
#[derive(Clone, Copy)]
enum Growth {
    /// HS prefixes of 4, 6 or 8 digits: at 100,000 every heading carries about three
    /// instructions, so a declaration hits 47 of them (every declaration goes RED).
    Dense,
    /// HS prefixes of 6, 8 or 10 digits (subheadings and tariff lines), the way a rule
    /// set usually grows: a declaration hits about as many instructions at 100,000 as at
    /// 1,000, so the figures show what the index costs rather than the hits.
    Selective,
}

/// Instructions: the rule set grows in specific instructions (an HS prefix, some also
/// on origin or unit value; or an enterprise), while broad ones (an origin or a port
/// alone, which hit most declarations) stay a fixed 20.
fn instructions(count: usize, growth: Growth) -> Vec<Instruction> {
    let mut rng = Lcg(42);
    (0..count)
        .map(|i| {
            let mut conditions = Conditions::default();
            if i < 20 {
                if i % 2 == 0 {
                    conditions
                        .origin_countries
                        .push(COUNTRIES[i % 12].to_owned());
                } else {
                    conditions.port_codes.push(format!("53{:02}", i));
                }
            } else {
                match rng.below(100) {
                    0..=84 => {
                        let digits = match growth {
                            Growth::Dense => [4, 6, 8],
                            Growth::Selective => [6, 8, 10],
                        }[rng.below(3) as usize];
                        let prefix =
                            format!("{:02}{:08}", chapter(&mut rng), rng.below(100_000_000));
                        conditions.hs_prefixes.push(prefix[..digits].to_owned());
                        if rng.below(3) == 0 {
                            conditions
                                .origin_countries
                                .push(COUNTRIES[rng.below(12) as usize].to_owned());
                        }
                        if rng.below(5) == 0 {
                            conditions.min_unit_value_cny = Some(Decimal::from(rng.below(10_000)));
                        }
                    }
                    _ => conditions
                        .enterprise_codes
                        .push(format!("44039{:05}", rng.below(100_000))),
                }
            }
            Instruction {
                id: format!("CI{i:08}"),
                conditions,
                lane: [Lane::Blue, Lane::Yellow, Lane::Red][rng.below(3) as usize],
                order_inspection: rng.below(10) == 0,
                valid_from: 0,
                valid_until: i64::MAX,
                issuing_house: "5300".into(),
                reason: "bench".into(),
            }
        })
        .collect()
}

fn declaration(rng: &mut Lcg) -> ScreenInput {
    ScreenInput {
        declaration_number: format!("530120261{:09}", rng.below(1_000_000_000)),
        enterprise_code: format!("44039{:05}", rng.below(100_000)),
        port_code: "5316".into(),
        trade_mode: "0110".into(),
        clearance_mode: "REGIONAL_INTEGRATED".into(),
        credit_class: "GENERAL_CREDIT".into(),
        items: (0..20)
            .map(|line| ScreenItem {
                line_no: line + 1,
                hs_code: format!("{:02}{:08}", chapter(rng), rng.below(100_000_000)),
                origin_country: COUNTRIES[rng.below(12) as usize].into(),
                unit_value_cny: Some(Decimal::from(rng.below(20_000))),
            })
            .collect(),
        at: 1_800_000_000,
    }
}

fn rates() -> SamplingRates {
    SamplingRates {
        red: Decimal::new(3, 2),
        yellow: Decimal::new(10, 2),
        blue: Decimal::new(5, 2),
    }
}

const GROWTHS: [(&str, Growth); 2] = [
    ("screen_20_items", Growth::Dense),
    ("screen_20_items_selective", Growth::Selective),
];

fn screening(c: &mut Criterion) {
    let rates = rates();
    for (name, growth) in GROWTHS {
        let mut group = c.benchmark_group(name);
        for count in [1_000, 10_000, 100_000] {
            let index =
                ActiveInstructions::from(InstructionIndex::new(instructions(count, growth)));
            let mut rng = Lcg(7);
            let declarations: Vec<ScreenInput> = (0..256).map(|_| declaration(&mut rng)).collect();
            let mut next = 0;
            group.bench_with_input(BenchmarkId::from_parameter(count), &index, |b, index| {
                b.iter(|| {
                    next = (next + 1) % declarations.len();
                    black_box(decide(index, &declarations[next], "seed", &rates))
                })
            });
        }
        group.finish();
    }
}

/// Criterion reports means; the target is a p99, so each size is also timed call by
/// call (20,000 calls after 2,000 warm-up) into an HDR histogram.
fn percentiles() {
    let rates = rates();
    let mut rng = Lcg(11);
    let declarations: Vec<ScreenInput> = (0..1024).map(|_| declaration(&mut rng)).collect();
    for (name, growth) in GROWTHS {
        for count in [1_000, 10_000, 100_000] {
            let rules = instructions(count, growth);
            let started = std::time::Instant::now();
            let index = ActiveInstructions::from(InstructionIndex::new(rules));
            let built = started.elapsed();
            let mut histogram =
                hdrhistogram::Histogram::<u64>::new_with_bounds(1, 10_000_000, 3).expect("bounds");
            let mut hits = 0usize;
            for n in 0..22_000 {
                let input = &declarations[n % declarations.len()];
                let started = std::time::Instant::now();
                let decision = black_box(decide(&index, input, "seed", &rates));
                let nanos = started.elapsed().as_nanos() as u64;
                if n >= 2_000 {
                    histogram.record(nanos.max(1)).expect("in range");
                    hits += decision.hits.len();
                }
            }
            println!(
                "{name}/{count}: p50 {:.1} µs, p99 {:.1} µs, p99.9 {:.1} µs, {:.1} hits per declaration; index built in {:.1} ms",
                histogram.value_at_quantile(0.5) as f64 / 1000.0,
                histogram.value_at_quantile(0.99) as f64 / 1000.0,
                histogram.value_at_quantile(0.999) as f64 / 1000.0,
                hits as f64 / 20_000.0,
                built.as_secs_f64() * 1000.0
            );
        }
    }
}

criterion_group!(benches, screening);

fn main() {
    benches();
    percentiles();
    Criterion::default().configure_from_args().final_summary();
}
