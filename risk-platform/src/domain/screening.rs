//! Risk screening and the channel decision 通道判别 (DOMAIN.md 5.2): control
//! instructions matched through an index, a deterministic sampling draw, and the
//! strongest lane hit wins.

use std::sync::Arc;

use rustc_hash::{FxHashMap, FxHashSet};
use smallvec::SmallVec;

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

/// What names an instruction in a hit: its id, and its reason for the auditor.
#[derive(Debug, PartialEq, Eq)]
struct InstructionName {
    id: Box<str>,
    reason: Box<str>,
}

/// The names of an index's instructions, in its order: a hit names its instruction by
/// its place in them.
type Names = Arc<[InstructionName]>;

/// The instructions that hit one declaration, strongest lane first (then by id). Each
/// names its instruction by its place in a table of names that the hits share (their
/// index's), and the item lines of all of them are kept in one list: a screening of
/// fifty hits takes one reference to the table and makes two allocations, where hits of
/// their own took fifty references (each an atomic update) and an allocation for each
/// hit's lines beyond four. Reading a hit's name is a read from the table, in a large
/// rule set a read from memory, so what screening itself asks of its hits (their lanes,
/// their inspection orders) is read from the entries alone.
/// Stored (as JSON) as a list of hits, each with its id and reason as fields of their
/// own.
#[derive(Clone, Default)]
pub struct Hits {
    /// The tables of names the hits refer to: one per index screened.
    tables: SmallVec<[Names; 2]>,
    entries: Vec<HitEntry>,
    /// Every hit's item lines, one hit's after the other.
    line_nos: Vec<i32>,
}

/// A hit in `Hits`.
#[derive(Debug, Clone, Copy)]
struct HitEntry {
    /// Its instruction's place in its table of names.
    at: u32,
    /// Its item lines in `Hits::line_nos`.
    lines: Span,
    table: u8,
    lane: Lane,
    order_inspection: bool,
}

/// One hit, as `Hits` hands it out.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
pub struct Hit<'a> {
    pub instruction_id: &'a str,
    pub lane: Lane,
    pub order_inspection: bool,
    /// Item lines that matched; empty when the instruction has no item condition.
    pub line_nos: &'a [i32],
    pub reason: &'a str,
}

impl Hits {
    /// No hits yet, room for `capacity` (and as many item lines), naming instructions
    /// from `names`.
    fn naming(names: &Names, capacity: usize) -> Self {
        Self {
            tables: smallvec::smallvec![names.clone()],
            entries: Vec::with_capacity(capacity),
            line_nos: Vec::with_capacity(capacity),
        }
    }

    pub fn len(&self) -> usize {
        self.entries.len()
    }

    pub fn is_empty(&self) -> bool {
        self.entries.is_empty()
    }

    pub fn get(&self, index: usize) -> Option<Hit<'_>> {
        self.entries.get(index).map(|entry| self.hit(entry))
    }

    pub fn iter(&self) -> impl ExactSizeIterator<Item = Hit<'_>> + '_ {
        self.entries.iter().map(|entry| self.hit(entry))
    }

    /// The strongest lane any hit gives (read without the hits' names, which in a
    /// large rule set are each a read from memory).
    pub fn strongest_lane(&self) -> Option<Lane> {
        self.entries.iter().map(|entry| entry.lane).max()
    }

    /// Whether any hit orders an inspection.
    pub fn order_inspection(&self) -> bool {
        self.entries.iter().any(|entry| entry.order_inspection)
    }

    fn hit(&self, entry: &HitEntry) -> Hit<'_> {
        let name = self.name(entry);
        Hit {
            instruction_id: &name.id,
            lane: entry.lane,
            order_inspection: entry.order_inspection,
            line_nos: entry.lines.of(&self.line_nos),
            reason: &name.reason,
        }
    }

    fn name(&self, entry: &HitEntry) -> &InstructionName {
        &self.tables[usize::from(entry.table)][entry.at as usize]
    }

    /// Adds a hit on the instruction at `at` in the first table of names.
    fn push(
        &mut self,
        at: u32,
        lane: Lane,
        order_inspection: bool,
        line_nos: impl IntoIterator<Item = i32>,
    ) {
        let start = self.line_nos.len();
        self.line_nos.extend(line_nos);
        self.entries.push(HitEntry {
            at,
            lines: Span {
                start: start as u32,
                len: (self.line_nos.len() - start) as u32,
            },
            table: 0,
            lane,
            order_inspection,
        });
    }

    /// With `other`'s hits too, all in order again.
    fn merge(mut self, other: Hits) -> Self {
        let tables = self.tables.len() as u8;
        let lines = self.line_nos.len() as u32;
        self.tables.extend(other.tables);
        self.line_nos.extend(other.line_nos);
        self.entries
            .extend(other.entries.into_iter().map(|entry| HitEntry {
                table: entry.table + tables,
                lines: Span {
                    start: entry.lines.start + lines,
                    ..entry.lines
                },
                ..entry
            }));
        let Self {
            tables, entries, ..
        } = &mut self;
        let id = |entry: &HitEntry| &tables[usize::from(entry.table)][entry.at as usize].id;
        entries.sort_by(|a, b| (b.lane, id(a)).cmp(&(a.lane, id(b))));
        self
    }

    /// Keeps the hits for which `keep` holds (their item lines stay in the list).
    fn retain(&mut self, mut keep: impl FnMut(Hit<'_>) -> bool) {
        let mut entries = std::mem::take(&mut self.entries);
        entries.retain(|entry| keep(self.hit(entry)));
        self.entries = entries;
    }
}

/// Hits named by a table of their own: as read back from storage, or built by hand.
impl<'a> FromIterator<Hit<'a>> for Hits {
    fn from_iter<I: IntoIterator<Item = Hit<'a>>>(hits: I) -> Self {
        let mut names = Vec::new();
        let mut built = Self::default();
        for hit in hits {
            built.push(
                names.len() as u32,
                hit.lane,
                hit.order_inspection,
                hit.line_nos.iter().copied(),
            );
            names.push(InstructionName {
                id: hit.instruction_id.into(),
                reason: hit.reason.into(),
            });
        }
        built.tables.push(names.into());
        built
    }
}

impl PartialEq for Hits {
    fn eq(&self, other: &Self) -> bool {
        self.iter().eq(other.iter())
    }
}

impl Eq for Hits {}

impl std::fmt::Debug for Hits {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_list().entries(self.iter()).finish()
    }
}

impl Serialize for Hits {
    fn serialize<S: serde::Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.collect_seq(self.iter())
    }
}

/// A hit as decisions store it.
#[derive(Deserialize)]
struct StoredHit {
    instruction_id: String,
    lane: Lane,
    order_inspection: bool,
    line_nos: Vec<i32>,
    reason: String,
}

impl<'de> Deserialize<'de> for Hits {
    fn deserialize<D: serde::Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        let stored = Vec::<StoredHit>::deserialize(deserializer)?;
        Ok(stored
            .iter()
            .map(|hit| Hit {
                instruction_id: &hit.instruction_id,
                lane: hit.lane,
                order_inspection: hit.order_inspection,
                line_nos: &hit.line_nos,
                reason: &hit.reason,
            })
            .collect())
    }
}

fn any_or(list: &[String], value: &str) -> bool {
    list.is_empty() || list.iter().any(|v| v == value)
}

impl Instruction {
    /// Whether the declaration-level conditions hold.
    fn applies_to_declaration(&self, input: &ScreenInput) -> bool {
        let c = &self.conditions;
        any_or(&c.trade_modes, &input.trade_mode)
            && any_or(&c.enterprise_codes, &input.enterprise_code)
            && any_or(&c.port_codes, &input.port_code)
            && any_or(&c.clearance_modes, &input.clearance_mode)
            && any_or(&c.credit_classes, &input.credit_class)
    }

    fn has_prefix_of(&self, hs_code: &str) -> bool {
        let prefixes = &self.conditions.hs_prefixes;
        prefixes.is_empty() || prefixes.iter().any(|p| hs_code.starts_with(p.as_str()))
    }
}

/// An HS prefix as an index key: its digits as a number, and its length; `None` when
/// it is not 1 to 15 digits (such a prefix is then checked instruction by instruction).
fn prefix_key(prefix: &str) -> Option<(u64, usize)> {
    let (value, digits) = leading_digits(prefix);
    (digits == prefix.len() && (1..=15).contains(&digits)).then_some((value, digits))
}

/// Digits of a heading 品目 (HS positions 1 to 4).
const HEADING: usize = 4;

/// Instructions by HS prefix. Prefixes of a heading or longer sit together under their
/// heading (a direct table of 10,000), ordered by length then value, so that matching an
/// item's code reads one table slot and searches one short run of memory, however large
/// the rule set; the few shorter prefixes (chapters) are kept in a map. Each prefix
/// carries a copy of its instruction's `Rule`, next to those of its heading, so that
/// checking a candidate reads memory already at hand rather than a rule of its own
/// somewhere in the rule set.
#[derive(Debug, Default)]
struct PrefixIndex {
    /// Per heading: its run of `keys` (and of `rules`).
    headings: Vec<Span>,
    /// `length << 56 | value`, by heading, then length and value.
    keys: Vec<u64>,
    /// The rule of each key's instruction.
    rules: Vec<Rule>,
    /// The lengths in `keys`, ascending.
    lengths: Vec<usize>,
    /// Prefixes shorter than a heading, by `(value, length)`.
    short: FxHashMap<(u64, usize), Vec<Rule>>,
    short_lengths: Vec<usize>,
}

impl PrefixIndex {
    fn new(prefixes: Vec<((u64, usize), Rule)>) -> Self {
        let mut index = Self::default();
        let mut long = Vec::new();
        for ((value, length), rule) in prefixes {
            if length < HEADING {
                index.short.entry((value, length)).or_default().push(rule);
                index.short_lengths.push(length);
            } else {
                let heading = value / POWERS_OF_TEN[length - HEADING];
                long.push((heading, (length as u64) << 56 | value, rule));
                index.lengths.push(length);
            }
        }
        for lengths in [&mut index.lengths, &mut index.short_lengths] {
            lengths.sort_unstable();
            lengths.dedup();
        }
        // An instruction that lists one prefix twice is found once.
        long.sort_unstable_by_key(|(heading, key, rule)| (*heading, *key, rule.position));
        long.dedup_by_key(|(heading, key, rule)| (*heading, *key, rule.position));
        if !long.is_empty() {
            index.headings = vec![Span::default(); POWERS_OF_TEN[HEADING] as usize];
        }
        for run in long.chunk_by(|a, b| a.0 == b.0) {
            index.headings[run[0].0 as usize] = Span {
                start: index.keys.len() as u32,
                len: run.len() as u32,
            };
            index.keys.extend(run.iter().map(|&(_, key, _)| key));
            index
                .rules
                .extend(run.iter().map(|(_, _, rule)| rule.clone()));
        }
        index
    }

    /// The run of `keys` and `rules` under a code's heading (digits as `leading_digits`
    /// gives them).
    fn heading_run(&self, (value, digits): (u64, usize)) -> (&[u64], &[Rule]) {
        if digits < HEADING || self.headings.is_empty() {
            return (&[], &[]);
        }
        let run = self.headings[(value / POWERS_OF_TEN[digits - HEADING]) as usize];
        (run.of(&self.keys), run.of(&self.rules))
    }

    /// Reads each code's heading run of keys, so that the processor fetches them all
    /// from memory at once rather than one after the other as `find` searches each: in a
    /// large rule set each run is likely not in its cache.
    fn prefetch(runs: &[(&[u64], &[Rule])]) {
        let mut read = 0;
        for (keys, _) in runs {
            if let (Some(first), Some(last)) = (keys.first(), keys.last()) {
                read ^= first ^ last;
            }
        }
        std::hint::black_box(read);
    }

    /// Calls `found` with the rule of every instruction that has a prefix of the code
    /// whose leading digits are `code` (as `leading_digits` gives them) and whose heading
    /// run is `run`.
    fn find<'a>(
        &'a self,
        code: (u64, usize),
        (keys, rules): (&'a [u64], &'a [Rule]),
        mut found: impl FnMut(&'a Rule),
    ) {
        let (value, digits) = code;
        let prefix = |length: usize| value / POWERS_OF_TEN[digits - length];
        for &length in self.short_lengths.iter().take_while(|&&l| l <= digits) {
            if let Some(rules) = self.short.get(&(prefix(length), length)) {
                rules.iter().for_each(&mut found);
            }
        }
        if keys.is_empty() {
            return;
        }
        for &length in self.lengths.iter().take_while(|&&l| l <= digits) {
            let key = (length as u64) << 56 | prefix(length);
            let from = keys.partition_point(|&k| k < key);
            keys[from..]
                .iter()
                .zip(&rules[from..])
                .take_while(|&(&k, _)| k == key)
                .for_each(|(_, rule)| found(rule));
        }
    }
}

/// A range of one of the index's flat arrays.
#[derive(Debug, Clone, Copy, Default)]
struct Span {
    start: u32,
    len: u32,
}

impl Span {
    fn of<T>(self, all: &[T]) -> &[T] {
        &all[self.start as usize..][..self.len as usize]
    }
}

/// Appends each list to `flat` and keeps only its range.
fn flatten<K: std::hash::Hash + Eq>(
    lists: FxHashMap<K, Vec<u32>>,
    flat: &mut Vec<u32>,
) -> FxHashMap<K, Span> {
    lists
        .into_iter()
        .map(|(key, list)| {
            let span = Span {
                start: flat.len() as u32,
                len: list.len() as u32,
            };
            flat.extend(list);
            (key, span)
        })
        .collect()
}

/// What screening checks of one instruction, in 32 bytes so that a large rule set stays
/// cache-friendly; the full instruction is read only for the
/// rarer declaration-level conditions.
#[derive(Debug, Clone)]
struct Rule {
    valid_from: i64,
    valid_until: i64,
    /// Its place in `InstructionIndex::instructions` (and `names`).
    position: u32,
    /// Its origin condition: `ANY_ORIGIN`, one interned country, or `ORIGIN_LIST | i`
    /// for the countries at `InstructionIndex::origin_lists[i]`.
    origins: u32,
    /// Its unit-value range in `InstructionIndex::bounds`, or `NO_BOUNDS`.
    bounds: u32,
    lane: Lane,
    order_inspection: bool,
    /// A condition on trade mode, enterprise, port, clearance mode or credit class.
    declaration_conditions: bool,
    /// An HS prefix that is not in the prefix index (so checked here).
    unindexed_prefixes: bool,
}

const NO_BOUNDS: u32 = u32::MAX;
const ANY_ORIGIN: u32 = u32::MAX;
const ORIGIN_LIST: u32 = 1 << 31;

const _: () = assert!(std::mem::size_of::<Rule>() == 32);

impl Rule {
    fn in_force(&self, at: i64) -> bool {
        at >= self.valid_from && at < self.valid_until
    }

    /// Whether it has conditions on items, other than indexed HS prefixes.
    fn item_conditions(&self) -> bool {
        self.unindexed_prefixes || self.origins != ANY_ORIGIN || self.bounds != NO_BOUNDS
    }
}

/// A unit-value range in CNY, either end open.
type Bounds = (Option<Decimal>, Option<Decimal>);

/// Interned values never match an unknown one.
const UNKNOWN: u32 = u32::MAX;

/// Active instructions, compiled for screening. Each is indexed by its most selective
/// condition, so that screening evaluates only candidates: an HS prefix (found through
/// each item's heading, see `PrefixIndex`), else an enterprise, else an origin (found
/// through each item's origin), else a port; the rest are always tried.
#[derive(Debug, Default)]
pub struct InstructionIndex {
    /// In id order, so that ordering positions orders ids.
    instructions: Vec<Instruction>,
    names: Names,
    rules: Vec<Rule>,
    bounds: Vec<Bounds>,
    /// Where the instructions with more than one origin have them in `flat`.
    origin_lists: Vec<Span>,
    /// Every posting list and origin list, one after the other.
    flat: Vec<u32>,
    countries: FxHashMap<Box<str>, u32>,
    by_hs_prefix: PrefixIndex,
    by_enterprise: FxHashMap<Box<str>, Span>,
    by_origin: FxHashMap<u32, Span>,
    by_port: FxHashMap<Box<str>, Span>,
    unindexed: Vec<u32>,
}

impl InstructionIndex {
    pub fn new(mut instructions: Vec<Instruction>) -> Self {
        instructions.sort_unstable_by(|a, b| a.id.cmp(&b.id));
        let mut countries = FxHashMap::<Box<str>, u32>::default();
        let mut intern = |country: &str| {
            let next = countries.len() as u32;
            *countries.entry(country.into()).or_insert(next)
        };
        let mut flat = Vec::new();
        let mut origin_lists = Vec::new();
        let mut prefixes = Vec::new();
        let mut by_enterprise = FxHashMap::<Box<str>, Vec<u32>>::default();
        let mut by_origin = FxHashMap::<u32, Vec<u32>>::default();
        let mut by_port = FxHashMap::<Box<str>, Vec<u32>>::default();
        let mut unindexed = Vec::new();
        let mut rules = Vec::with_capacity(instructions.len());
        let mut bounds = Vec::new();
        for (position, instruction) in instructions.iter().enumerate() {
            let position = position as u32;
            let c = &instruction.conditions;
            let mut interned: Vec<u32> = c.origin_countries.iter().map(|o| intern(o)).collect();
            interned.sort_unstable();
            interned.dedup();
            let origins = match interned[..] {
                [] => ANY_ORIGIN,
                [origin] => origin,
                _ => {
                    origin_lists.push(Span {
                        start: flat.len() as u32,
                        len: interned.len() as u32,
                    });
                    flat.extend(&interned);
                    ORIGIN_LIST | (origin_lists.len() as u32 - 1)
                }
            };
            let keys: Option<Vec<(u64, usize)>> =
                c.hs_prefixes.iter().map(|p| prefix_key(p)).collect();
            let prefix_indexed = matches!(&keys, Some(keys) if !keys.is_empty());
            let range = (c.min_unit_value_cny, c.max_unit_value_cny);
            let rule = Rule {
                valid_from: instruction.valid_from,
                valid_until: instruction.valid_until,
                position,
                origins,
                bounds: if range == (None, None) {
                    NO_BOUNDS
                } else {
                    bounds.push(range);
                    bounds.len() as u32 - 1
                },
                lane: instruction.lane,
                order_inspection: instruction.order_inspection,
                declaration_conditions: !(c.trade_modes.is_empty()
                    && c.enterprise_codes.is_empty()
                    && c.port_codes.is_empty()
                    && c.clearance_modes.is_empty()
                    && c.credit_classes.is_empty()),
                unindexed_prefixes: !prefix_indexed && !c.hs_prefixes.is_empty(),
            };
            if let (true, Some(keys)) = (prefix_indexed, keys) {
                prefixes.extend(keys.into_iter().map(|key| (key, rule.clone())));
            } else if !c.enterprise_codes.is_empty() {
                for code in &c.enterprise_codes {
                    by_enterprise
                        .entry(code.as_str().into())
                        .or_default()
                        .push(position);
                }
            } else if !interned.is_empty() {
                for &origin in &interned {
                    by_origin.entry(origin).or_default().push(position);
                }
            } else if !c.port_codes.is_empty() {
                for code in &c.port_codes {
                    by_port
                        .entry(code.as_str().into())
                        .or_default()
                        .push(position);
                }
            } else {
                unindexed.push(position);
            }
            rules.push(rule);
        }
        Self {
            by_hs_prefix: PrefixIndex::new(prefixes),
            names: instructions
                .iter()
                .map(|instruction| InstructionName {
                    id: instruction.id.as_str().into(),
                    reason: instruction.reason.as_str().into(),
                })
                .collect(),
            by_enterprise: flatten(by_enterprise, &mut flat),
            by_origin: flatten(by_origin, &mut flat),
            by_port: flatten(by_port, &mut flat),
            instructions,
            rules,
            bounds,
            origin_lists,
            flat,
            countries,
            unindexed,
        }
    }

    pub fn len(&self) -> usize {
        self.instructions.len()
    }

    pub fn is_empty(&self) -> bool {
        self.instructions.is_empty()
    }

    /// Whether it holds the instruction `id`.
    pub fn contains(&self, id: &str) -> bool {
        self.instructions
            .binary_search_by(|i| i.id.as_str().cmp(id))
            .is_ok()
    }

    /// Whether an item meets the rule's item conditions other than an indexed HS prefix;
    /// `origin` is the item's interned origin country.
    fn item_fits(&self, rule: &Rule, item: &ScreenItem, origin: u32) -> bool {
        let origin_fits = match rule.origins {
            ANY_ORIGIN => true,
            list if list & ORIGIN_LIST != 0 => self.origin_lists[(list & !ORIGIN_LIST) as usize]
                .of(&self.flat)
                .contains(&origin),
            single => single == origin,
        };
        let (min, max) = match rule.bounds {
            NO_BOUNDS => (None, None),
            bounds => self.bounds[bounds as usize],
        };
        origin_fits
            && min.is_none_or(|min| item.unit_value_cny.is_some_and(|v| v >= min))
            && max.is_none_or(|max| item.unit_value_cny.is_some_and(|v| v <= max))
            && (!rule.unindexed_prefixes
                || self.instructions[rule.position as usize].has_prefix_of(&item.hs_code))
    }

    /// Every instruction that hits, strongest lane first (then by id).
    pub fn screen<'a>(&'a self, input: &ScreenInput) -> Hits {
        let items = &input.items;
        let origins: Vec<u32> = items
            .iter()
            .map(|item| {
                self.countries
                    .get(item.origin_country.as_str())
                    .copied()
                    .unwrap_or(UNKNOWN)
            })
            .collect();
        let codes: Vec<(u64, usize)> = items
            .iter()
            .map(|item| leading_digits(&item.hs_code))
            .collect();
        let runs: Vec<(&[u64], &[Rule])> = codes
            .iter()
            .map(|&code| self.by_hs_prefix.heading_run(code))
            .collect();
        PrefixIndex::prefetch(&runs);
        // Instructions indexed by an item condition (HS prefix, origin), as (item, rule),
        // found for every item before any is checked.
        let mut found: Vec<(usize, &'a Rule)> = Vec::with_capacity(4 * items.len());
        for (index, (code, origin)) in codes.iter().zip(&origins).enumerate() {
            self.by_hs_prefix
                .find(*code, runs[index], |rule| found.push((index, rule)));
            if let Some(span) = self.by_origin.get(origin) {
                found.extend(
                    span.of(&self.flat)
                        .iter()
                        .map(|&position| (index, &self.rules[position as usize])),
                );
            }
        }
        // In a large rule set, each of their rules (and value ranges) is likely a read
        // from memory: made all at once, before any is needed, they overlap rather than
        // wait one after the other.
        let read = found
            .iter()
            .fold(0, |read, (_, rule)| read ^ rule.valid_from);
        std::hint::black_box(found.iter().fold(read, |read, (_, rule)| {
            match self.bounds.get(rule.bounds as usize) {
                Some((min, _)) => read ^ i64::from(min.is_some()),
                None => read,
            }
        }));
        // Every (instruction, item) that fits, as one integer (see `Fit`) that carries
        // what a hit needs of its rule, so that one sort of integers orders the hits and
        // brings each one's items together.
        let mut fits: Vec<Fit> = Vec::with_capacity(found.len() + self.unindexed.len());
        for (index, rule) in found {
            if rule.in_force(input.at) && self.item_fits(rule, &items[index], origins[index]) {
                fits.push(Fit::new(rule, index as u32));
            }
        }
        // Instructions indexed by a declaration condition, or not at all: every item is
        // checked (each instruction is in exactly one index; one that lists an
        // enterprise or a port twice is found twice, and its fits merge below).
        let candidates = [
            self.by_enterprise.get(input.enterprise_code.as_str()),
            self.by_port.get(input.port_code.as_str()),
        ]
        .into_iter()
        .flatten()
        .flat_map(|span| span.of(&self.flat))
        .chain(&self.unindexed);
        for &position in candidates {
            let rule = &self.rules[position as usize];
            if !rule.in_force(input.at) {
                continue;
            }
            if !rule.item_conditions() {
                fits.push(Fit::new(rule, Fit::NO_ITEM));
                continue;
            }
            fits.extend(
                items
                    .iter()
                    .zip(&origins)
                    .enumerate()
                    .filter(|&(_, (item, &origin))| self.item_fits(rule, item, origin))
                    .map(|(index, _)| Fit::new(rule, index as u32)),
            );
        }
        fits.sort_unstable();
        // Each instruction's fits, now together and its items in order, make one hit
        // when its declaration-level conditions hold.
        let mut hits = Hits::naming(&self.names, fits.len());
        for fits in fits.chunk_by(|a, b| a.instruction() == b.instruction()) {
            let first = fits[0];
            if first.declaration_conditions()
                && !self.instructions[first.position() as usize].applies_to_declaration(input)
            {
                continue;
            }
            let mut last = Fit::NO_ITEM;
            let line_nos = fits.iter().filter_map(|fit| {
                let index = fit.item();
                let new = index != Fit::NO_ITEM && index != last;
                last = index;
                new.then(|| items[index as usize].line_no)
            });
            hits.push(
                first.position(),
                first.lane(),
                first.order_inspection(),
                line_nos,
            );
        }
        hits
    }
}

/// An instruction's fit to an item, as one integer: `weaker lanes << 62 | position << 32
/// | order_inspection << 31 | declaration_conditions << 30 | item`. In integer order:
/// strongest lane first, then by id (positions are in id order), then by item. Positions
/// fit in 30 bits (the rules of 2^30 instructions alone would take 32 GiB), and so do
/// items (no request a server takes could carry 2^30).
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
struct Fit(u64);

impl Fit {
    /// The item of a fit that names none: the instruction has no item condition.
    const NO_ITEM: u32 = (1 << 30) - 1;
    const POSITION: u64 = (1 << 30) - 1;
    const ORDER_INSPECTION: u64 = 1 << 31;
    const DECLARATION_CONDITIONS: u64 = 1 << 30;

    fn new(rule: &Rule, item: u32) -> Self {
        debug_assert!(u64::from(rule.position) <= Self::POSITION);
        debug_assert!(item <= Self::NO_ITEM);
        let weaker = Lane::Red as u64 - rule.lane as u64;
        let mut fit = weaker << 62 | u64::from(rule.position) << 32 | u64::from(item);
        if rule.order_inspection {
            fit |= Self::ORDER_INSPECTION;
        }
        if rule.declaration_conditions {
            fit |= Self::DECLARATION_CONDITIONS;
        }
        Self(fit)
    }

    /// Its instruction: the same for every fit of one instruction.
    fn instruction(self) -> u64 {
        self.0 >> 32
    }

    fn position(self) -> u32 {
        (self.instruction() & Self::POSITION) as u32
    }

    fn lane(self) -> Lane {
        match self.0 >> 62 {
            0 => Lane::Red,
            1 => Lane::Yellow,
            2 => Lane::Blue,
            _ => Lane::Green,
        }
    }

    fn order_inspection(self) -> bool {
        self.0 & Self::ORDER_INSPECTION != 0
    }

    fn declaration_conditions(self) -> bool {
        self.0 & Self::DECLARATION_CONDITIONS != 0
    }

    fn item(self) -> u32 {
        (self.0 as u32) & Self::NO_ITEM
    }
}

/// The instructions screening applies: an index built from the database, plus what this
/// replica issued and revoked since, so that issuing or revoking one instruction does not
/// rebuild an index of 100,000 (a read of every instruction and a 20 ms build). The next
/// full build takes the changes in.
#[derive(Debug, Clone, Default)]
pub struct ActiveInstructions {
    base: Arc<InstructionIndex>,
    /// Issued since `base` was built, in their own (small) index.
    issued: Arc<InstructionIndex>,
    /// Revoked since `base` was built: their hits are dropped.
    revoked: Arc<FxHashSet<Box<str>>>,
}

impl From<InstructionIndex> for ActiveInstructions {
    fn from(base: InstructionIndex) -> Self {
        Self {
            base: Arc::new(base),
            ..Self::default()
        }
    }
}

impl ActiveInstructions {
    /// Instructions held, revoked ones included until the next full build.
    pub fn len(&self) -> usize {
        self.base.len() + self.issued.len()
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// Changes applied since the full build.
    pub fn changes(&self) -> usize {
        self.issued.len() + self.revoked.len()
    }

    /// With `instruction` added (nothing changes when it is already held: a full build
    /// may have read it already).
    pub fn issue(&self, instruction: Instruction) -> Self {
        if self.base.contains(&instruction.id) || self.issued.contains(&instruction.id) {
            return self.clone();
        }
        let mut issued = self.issued.instructions.clone();
        issued.push(instruction);
        Self {
            issued: Arc::new(InstructionIndex::new(issued)),
            ..self.clone()
        }
    }

    /// With the instruction `id` revoked.
    pub fn revoke(&self, id: &str) -> Self {
        let mut revoked = FxHashSet::clone(&self.revoked);
        revoked.insert(id.into());
        Self {
            revoked: Arc::new(revoked),
            ..self.clone()
        }
    }

    /// Every instruction that hits, strongest lane first (then by id), as
    /// `InstructionIndex::screen`.
    pub fn screen(&self, input: &ScreenInput) -> Hits {
        let mut hits = self.base.screen(input);
        if !self.issued.is_empty() {
            hits = hits.merge(self.issued.screen(input));
        }
        if !self.revoked.is_empty() {
            hits.retain(|hit| !self.revoked.contains(hit.instruction_id));
        }
        hits
    }
}

const POWERS_OF_TEN: [u64; 20] = {
    let mut powers = [1u64; 20];
    let mut i = 1;
    while i < 20 {
        powers[i] = powers[i - 1] * 10;
        i += 1;
    }
    powers
};

/// The value of a code's leading digits (at most 19) and how many there are: every
/// prefix key of the code derives from it, as no key has anything but digits.
fn leading_digits(code: &str) -> (u64, usize) {
    code.bytes()
        .take(19)
        .take_while(u8::is_ascii_digit)
        .fold((0, 0), |(value, digits), b| {
            (value * 10 + u64::from(b - b'0'), digits + 1)
        })
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
    pub hits: Hits,
    pub draw: Decimal,
    pub sampled: Option<Lane>,
    pub inspection_ordered: bool,
}

pub fn decide(
    index: &ActiveInstructions,
    input: &ScreenInput,
    seed: &str,
    rates: &SamplingRates,
) -> Decision {
    let hits = index.screen(input);
    let draw = sampling_draw(seed, &input.declaration_number);
    let sampled = sampled_lane(draw, rates);
    let lane = hits
        .strongest_lane()
        .into_iter()
        .chain(sampled)
        .max()
        .unwrap_or(Lane::Green);
    let inspection_ordered = lane == Lane::Red || hits.order_inspection();
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
        let decision = decide(
            &InstructionIndex::new(vec![]).into(),
            &input(),
            "seed",
            &NONE,
        );
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
            let decision = decide(&index.into(), &input(), "seed", &NONE);
            assert_eq!(decision.lane, lane);
            assert_eq!(decision.hits.get(0).map(|hit| hit.line_nos), Some(&[1][..]));
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
        let decision = decide(&index.into(), &input(), "seed", &NONE);
        assert_eq!(decision.lane, Lane::Red);
        assert_eq!(
            decision
                .hits
                .iter()
                .map(|h| h.instruction_id)
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
    fn a_hit_is_stored_with_its_id_and_reason_as_fields_of_their_own() {
        // Decisions already stored read back, and new ones are stored the same way.
        let stored = r#"{"instruction_id":"CI1","lane":"RED","order_inspection":true,"line_nos":[1,3],"reason":"绕关"}"#;
        let list = format!("[{stored}]");
        let hits: Hits = serde_json::from_str(&list).unwrap();
        assert_eq!(
            hits.iter().collect::<Vec<_>>(),
            [Hit {
                instruction_id: "CI1",
                lane: Lane::Red,
                order_inspection: true,
                line_nos: &[1, 3],
                reason: "绕关",
            }]
        );
        assert_eq!(serde_json::to_string(&hits).unwrap(), list);
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
            &InstructionIndex::new(vec![]).into(),
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

    /// Every instruction checked in full against every item: what the index must
    /// agree with.
    fn screen_by_scanning(instructions: &[Instruction], input: &ScreenInput) -> Hits {
        let mut hits: Vec<(&Instruction, Vec<i32>)> = instructions
            .iter()
            .filter(|i| input.at >= i.valid_from && input.at < i.valid_until)
            .filter(|i| i.applies_to_declaration(input))
            .filter_map(|i| {
                let c = &i.conditions;
                let item_conditions = !c.hs_prefixes.is_empty()
                    || !c.origin_countries.is_empty()
                    || c.min_unit_value_cny.is_some()
                    || c.max_unit_value_cny.is_some();
                let line_nos: Vec<i32> = input
                    .items
                    .iter()
                    .filter(|item| {
                        i.has_prefix_of(&item.hs_code)
                            && any_or(&c.origin_countries, &item.origin_country)
                            && c.min_unit_value_cny
                                .is_none_or(|min| item.unit_value_cny.is_some_and(|v| v >= min))
                            && c.max_unit_value_cny
                                .is_none_or(|max| item.unit_value_cny.is_some_and(|v| v <= max))
                    })
                    .map(|item| item.line_no)
                    .collect();
                match item_conditions {
                    true => (!line_nos.is_empty()).then_some((i, line_nos)),
                    false => Some((i, Vec::new())),
                }
            })
            .collect();
        hits.sort_by(|(a, _), (b, _)| b.lane.cmp(&a.lane).then_with(|| a.id.cmp(&b.id)));
        hits.iter()
            .map(|(i, line_nos)| Hit {
                instruction_id: &i.id,
                lane: i.lane,
                order_inspection: i.order_inspection,
                line_nos,
                reason: &i.reason,
            })
            .collect()
    }

    /// A deterministic generator for the randomised tests.
    fn generator(mut state: u64) -> impl FnMut(u64) -> u64 {
        move |n: u64| {
            state = state
                .wrapping_mul(6_364_136_223_846_793_005)
                .wrapping_add(1_442_695_040_888_963_407);
            (state >> 33) % n
        }
    }

    const HS: [&str; 6] = [
        "8471300000",
        "8471410000",
        "0202300090",
        "0303190000",
        "9503001000",
        "8517130000",
    ];

    /// Instructions with every kind of condition: 1- to 10-digit and non-digit HS
    /// prefixes, origins, enterprises, ports, trade modes, value bounds, expired windows.
    fn random_instructions(count: usize, below: &mut dyn FnMut(u64) -> u64) -> Vec<Instruction> {
        const ORIGINS: [&str; 4] = ["US", "AU", "JP", "VN"];
        let pick = |list: &[&str], below: &mut dyn FnMut(u64) -> u64| {
            (0..below(3))
                .map(|_| list[below(list.len() as u64) as usize].to_owned())
                .collect::<Vec<_>>()
        };
        (0..count)
            .map(|n| {
                let mut conditions = Conditions {
                    hs_prefixes: pick(&HS, below)
                        .into_iter()
                        .map(|code| {
                            let length = [1, 2, 4, 6, 8, 10][below(6) as usize];
                            code[..length].to_owned()
                        })
                        .collect(),
                    origin_countries: pick(&ORIGINS, below),
                    enterprise_codes: pick(&["4403960001", "4403960002"], below),
                    port_codes: pick(&["5316", "5301"], below),
                    trade_modes: pick(&["0110", "9610"], below),
                    ..Default::default()
                };
                if below(8) == 0 {
                    // Not digits: never in the prefix index, still matched.
                    conditions.hs_prefixes.push("84A".into());
                }
                if below(4) == 0 {
                    conditions.min_unit_value_cny = Some(Decimal::from(below(4000)));
                }
                if below(4) == 0 {
                    conditions.max_unit_value_cny = Some(Decimal::from(below(4000)));
                }
                let mut i = instruction(
                    &format!("I{:04}", count - n),
                    [Lane::Blue, Lane::Yellow, Lane::Red][below(3) as usize],
                    conditions,
                );
                if below(10) == 0 {
                    i.valid_until = 1_700_000_000;
                }
                i.order_inspection = below(5) == 0;
                i
            })
            .collect()
    }

    fn random_declaration(n: usize, below: &mut dyn FnMut(u64) -> u64) -> ScreenInput {
        let mut declaration = input();
        declaration.enterprise_code = ["4403960001", "4403960002"][n % 2].into();
        declaration.port_code = ["5316", "5301", "5317"][n % 3].into();
        declaration.items = (0..1 + below(6))
            .map(|line| ScreenItem {
                line_no: line as i32 + 1,
                hs_code: if below(12) == 0 {
                    "84A1".to_owned()
                } else {
                    HS[below(HS.len() as u64) as usize].to_owned()
                },
                origin_country: ["US", "AU", "JP", "VN", "FR"][below(5) as usize].into(),
                unit_value_cny: (below(10) > 0).then(|| Decimal::from(below(5000))),
            })
            .collect();
        declaration
    }

    /// Screens 300 random declarations with `screen` and checks each against a full
    /// scan of `instructions`; how many hits there were in all.
    fn hits_as_a_full_scan_finds(
        instructions: &[Instruction],
        below: &mut dyn FnMut(u64) -> u64,
        screen: impl Fn(&ScreenInput) -> Hits,
    ) -> usize {
        let mut hit = 0;
        for n in 0..300 {
            let declaration = random_declaration(n, below);
            let expected = screen_by_scanning(instructions, &declaration);
            hit += expected.len();
            assert_eq!(screen(&declaration), expected, "declaration {n}");
        }
        hit
    }

    #[test]
    fn the_index_finds_exactly_what_a_full_scan_finds() {
        let mut below = generator(0x9e37_79b9_7f4a_7c15);
        let instructions = random_instructions(400, &mut below);
        let index = InstructionIndex::new(instructions.clone());
        let hit = hits_as_a_full_scan_finds(&instructions, &mut below, |d| index.screen(d));
        assert!(hit > 3_000, "the case should hit often, hit {hit} times");
    }

    /// Issuing and revoking on top of a built index finds what an index built from the
    /// resulting set finds.
    #[test]
    fn issuing_and_revoking_on_top_of_an_index_is_the_same_as_building_it_again() {
        let mut below = generator(0x2545_f491_4f6c_dd1d);
        let instructions = random_instructions(400, &mut below);
        let (base, issued) = instructions.split_at(300);
        let mut active = ActiveInstructions::from(InstructionIndex::new(base.to_vec()));
        // Issued one by one, some already in the base (a full build read them first).
        for instruction in issued.iter().chain(&base[..20]) {
            active = active.issue(instruction.clone());
        }
        // Revoked: some of the base, some just issued.
        let revoked: Vec<&str> = instructions
            .iter()
            .step_by(7)
            .map(|i| i.id.as_str())
            .collect();
        for id in &revoked {
            active = active.revoke(id);
        }
        assert_eq!((active.len(), active.changes()), (400, 100 + revoked.len()));
        let remaining: Vec<Instruction> = instructions
            .iter()
            .filter(|i| !revoked.contains(&i.id.as_str()))
            .cloned()
            .collect();
        let hit = hits_as_a_full_scan_finds(&remaining, &mut below, |d| active.screen(d));
        assert!(hit > 2_000, "the case should hit often, hit {hit} times");
    }
}
