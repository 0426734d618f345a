//! The matching engine: a pure function from one program's claims and orders
//! (plus FX rates and `now`) to one [`Decision`] per claim.
//!
//! It does no I/O and keeps no state; [`super::run`] feeds it from the store
//! (everything on a full run, the affected closure on an incremental run).
//! The output never depends on the order of its inputs: inputs are sorted by
//! their keys first ([`decide`] sorts; a [`Plan`] is given them in key
//! order), ties are broken by keys, and hash maps are only used for lookups,
//! never iterated into the output.
//!
//! ## Matching (first rule that finds an order wins)
//! 1. **order id**: the claim's order id, trimmed and case-folded, equals an
//!    order's id or one of its `alt_ids` (normalised the same way). Among
//!    several such orders ([`pick_by_id`]): an order's own id wins over an
//!    alt id; among those still tied, the one whose id is written as the
//!    claim writes it (trimmed, same case); then the best fit, as among
//!    orders sharing a click id ([`closest_by_click`]). See ARCHITECTURE.md
//!    "Orders sharing an order id". [`Plan`] applies this rule to all claims
//!    at once with [`super::join`]; [`match_claim`] (incremental runs) looks
//!    up [`OrderIndex`]; both pick with [`pick_by_id`].
//! 2. **click id**: the claim's click id (trimmed, case-sensitive) is one of
//!    the order's `click_ids`. One click can lead to several purchases, so
//!    among several such orders the best fit wins: amount within tolerance
//!    first, then the closest in time to the conversion, the closest amount,
//!    the earliest created, the smallest (source, order id)
//!    ([`closest_by_click`]).
//! 3. **coupon** (only with `match.coupon_matching`): same coupon (trimmed,
//!    case-folded), amount within tolerance, created within
//!    `fuzzy_window_hours` of the conversion; the closest in time wins, then
//!    the closest amount, then the smallest (source, order id).
//!
//! ## Outcome precedence (first that applies)
//! 1. `network_rejected` / `network_reversed`: the network's own status.
//!    Such claims still show their order but never compete for it.
//! 2. No order: `awaiting_order` while `now < occurred_at + grace`, then
//!    `no_order` (the boundary instant itself is `no_order`).
//! 3. `network_reversed` / `network_rejected` / `duplicate` of a mirrored
//!    copy ([`ProgramConfig::mirrors`]: a postback endpoint's copy of a
//!    connector's conversion, matched to the same order as a claim of that
//!    connector): the copy never competes; it takes that claim's network
//!    status when reversed or rejected, else it is a `duplicate` naming the
//!    order's winner ([`link_copies`]).
//! 4. `duplicate`: the order is claimed by other non-rejected claims and
//!    another one wins: a claim matched by order id or click id beats one
//!    matched only by coupon (the network names the sale; a coupon is a
//!    guess), then the attribution rule decides ([`contest_order`]).
//! 5. `fx_missing`: the claim's or order's currency differs from the
//!    program's and [`FxTable::rate`] has no rate for that day.
//! 6. `refunded`: refunds ≥ order amount, or the order is cancelled/refunded.
//! 7. `partially_refunded`: some refunds; basis = order amount − refunds,
//!    or, for a claim whose own amount would be its basis (within
//!    tolerance), that amount × (order net ÷ order amount): never more than
//!    the basis without refunds.
//! 8. `amount_mismatch`: |claimed − order| > max(abs, pct % × order), or
//!    the claimed amount is negative; basis = order amount.
//! 9. `matched`: basis = claimed amount (the order amount when the claim
//!    has none). A claimed amount in the order's currency is converted at
//!    the order's day rate, any other at the claim's ([`claim_fx_day`]).
//!
//! Bases are in the program currency; a converted basis is rounded to the
//! currency's minor unit (half away from zero). A decision is payable when
//! its outcome earns and `now >= lock_at` (network lock, else order time +
//! return window).

use super::config::{AttributionRule, ProgramConfig};

/// The version of the judging rules. Bump it with any change to how a
/// claim is judged: it is part of [`ProgramConfig::fingerprint`], so the
/// first run after an upgrade re-judges every claim (a full run) instead of
/// keeping decisions the old rules made. 2: a negative claimed amount is
/// `amount_mismatch`. 3: the best-fitting order among those sharing a click
/// id; an exact match beats a coupon match in a contest; a 0.00 order is
/// not "fully refunded" (QA findings of 2026-11-29). 4: a partly refunded
/// claim matched within tolerance keeps its claimed amount less the
/// refunded share (it was the order's net, which could exceed the claim).
/// 5: an order marked refunded with less than its amount given as refunds
/// says so instead of "fully refunded (0.00 USD)" (QA of 2026-11-29).
/// 6: reasons give a percentage tolerance at the currency's minor unit
/// ("beyond tolerance 1.68", was "1.6882" for 1 % of 168.82; QA, new
/// user, 2026-11-30): only the reason text changed, no outcome or basis.
/// 7: a partly refunded claim records the tolerance its amount was
/// compared with (`inputs.tolerance_applied`; QA19 NEW-1): no outcome or
/// basis changed.
/// 8 (QA20): reasons only: a contest's winner names what beat the
/// runner-up (it named the program's rule), a conversion time standing in
/// for a missing click time says so, a partial refund or a reversal after
/// the lock date says so, a converted amount names its currency and rate,
/// a no-order claim whose coupon was not tried says coupon matching is off.
/// 9 (QA20 F7): reasons only: a no-order claim names its nearest coupon
/// miss (an order with its coupon, within the window, outside the
/// tolerance).
/// 10 (QA21 B-F6): reasons only: a conversion rate is written as the rate
/// table and the statement trace write it (`at 1.10`, was `at 1.1`).
/// 11 (QA25 N2, QA26 F1): a claim in its order's currency is converted at
/// the order's rate ([`claimed_against`]) and compared in that currency,
/// unrounded ([`difference`]): 150.00 EUR claimed for a 150.00 EUR order a
/// few hours earlier was `amount_mismatch` ("0.75 over") when the EUR rate
/// moved between the two days, and one at a 1 % edge was rounded beyond it.
/// 12 (QA28-C F1): reasons only: under `source_priority` the claim-id
/// tie-break names the times it compared as last click times (it said
/// "source priority times").
/// 13 (QA30-D F1): orders sharing a normalised order id are told apart
/// ([`pick_by_id`]: own id, then the id as the claim writes it, then the
/// best fit) instead of the first by position, and the reason says so.
/// Also (QA30-B L2) a partly refunded claim of the converted order amount
/// takes its share (claimed × net ÷ order), not the converted net, which
/// rounding could put a minor unit lower; and reasons give amounts with
/// their currency's digits (QA30-B L3), tolerances with the compared
/// amounts' digits (QA30-D F4) and instants with their fractions (F3).
/// Mirrored copies (QA28-E F12) are not a bump: they change nothing in a
/// program without them, and `mirrors` is part of the fingerprint when set.
/// 14 (QA33-B L1): a converted amount's reason names the date of the
/// `[fx]` row that priced it (and the row an inverse inverts), and the
/// decision records the dates (`inputs.fx_rate_date`,
/// `inputs.order_fx_rate_date`): no outcome or basis changed, so every
/// `decided_at` stays.
/// 15 (QA38a H1/H3): in an attribution contest, a claim whose time cannot
/// be right (its click after its own conversion, or its click time, else
/// conversion time, more than `fuzzy_window_hours` after its order was
/// created) ranks after every claim whose time can be; before, a click
/// sent in the future, or a postback dated when it arrived months after
/// the order, won last click.
/// 16 (QA38a H2): an order found by order id or click id more than
/// `[programs.match] order_window_days` (default 30) from the claim's
/// conversion, either way, is not its sale: the claim is `no_order` with a
/// reason naming the order and the gap (it may still match by click id or
/// coupon). Before, a conversion months before the order existed, or an
/// old order's id guessed, was matched and paid.
/// 17 (QA38a A-M2): an earning claim whose network event type and order
/// disagree (a lead or signup on an order with an amount, a sale on an
/// order of 0.00) says so in its reason ([`event_conflict`]); nothing
/// else changed, so every `decided_at` stays.
/// 18 (QA39a A-H1): orders too far in time ([`too_far`]) are left out
/// before rule 1 or 2 chooses among the orders sharing the claim's id or
/// click id ([`pick_in_window`], [`match_after_order_id`]), and a click id
/// naming only such orders falls through to the coupon rule. Before, the
/// window was applied to the order the tie-breaks had chosen: a claim
/// whose id also named a recent order was `no_order`. Also (QA39a A-L2) a
/// one-hour coupon window reads "within 1 hour" in reasons.
/// 19 (QA41 A-M1): a cancelled order of 0.00, or one marked refunded with
/// no refund amount, says so in its claim's reason; it read "was fully
/// refunded (0.00 USD)". Reasons only: every `decided_at` stays.
/// 20 (QA39a A-L4): a decision's `inputs` also record the program's
/// `order_window_days`, `source_priority` and `require_network_approval`,
/// which decide outcomes too. Inputs only: every `decided_at` stays.
pub const JUDGE_VERSION: u32 = 20;
use super::model::{Decision, DecisionInputs, MatchedBy, Outcome, RecordRef};
use crate::fx::{FoundRate, FxTable, RateRow};
use chrono::{DateTime, Duration, NaiveDate, Utc};
use plugin_api::{Conversion, ConversionStatus, EventType, Money, Order, OrderStatus};
use rust_decimal::{Decimal, RoundingStrategy};
use rustc_hash::FxHashMap;
use std::borrow::Cow;
use std::cmp::Ordering;
use std::collections::BTreeMap;
use std::fmt::Write as _;

/// A claim as stored, with its revision.
#[derive(Debug, Clone, PartialEq)]
pub struct ClaimInput {
    /// The network's conversion.
    pub claim: Conversion,
    /// Store revision (1 = first version).
    pub revision: u32,
}

/// An order as stored, with its revision.
#[derive(Debug, Clone, PartialEq)]
pub struct OrderInput {
    /// The advertiser's order.
    pub order: Order,
    /// Store revision (1 = first version).
    pub revision: u32,
}

/// Trims and case-folds an order id; `None` when nothing is left.
pub fn normalize_order_id(id: &str) -> Option<String> {
    let mut s = String::new();
    normalize_into(id, &mut s);
    (!s.is_empty()).then_some(s)
}

/// Trims and case-folds `id` into `out` (cleared first). ASCII ids take a
/// fast path with no allocation beyond `out`'s buffer.
pub fn normalize_into(id: &str, out: &mut String) {
    out.clear();
    let t = id.trim();
    if t.is_ascii() {
        out.push_str(t);
        out.make_ascii_lowercase();
    } else {
        out.extend(t.chars().flat_map(char::to_lowercase));
    }
}

/// Trims a click id (click ids are case-sensitive); `None` when empty.
pub fn normalize_click_id(id: &str) -> Option<&str> {
    let t = id.trim();
    (!t.is_empty()).then_some(t)
}

/// `t` plus `days` days of 24 hours, at the end of time at most: a stored
/// time near chrono's limits must not panic a run (config bounds the days,
/// the host bounds record times; this is the last guard).
pub fn days_after(t: DateTime<Utc>, days: u32) -> DateTime<Utc> {
    t.checked_add_signed(Duration::days(i64::from(days)))
        .unwrap_or(DateTime::<Utc>::MAX_UTC)
}

/// Trims and case-folds a coupon code; `None` when empty.
pub fn normalize_coupon(code: &str) -> Option<String> {
    normalize_order_id(code)
}

/// Normalised order ids → order handle, without an allocation per id: the
/// ids live in one arena string and a raw hash table (FxHash) holds
/// (hash, span, handle). This is the hot path of matching.
#[derive(Default)]
struct IdTable {
    arena: String,
    table: hashbrown::HashTable<IdSlot>,
}

#[derive(Clone, Copy)]
struct IdSlot {
    hash: u64,
    start: u32,
    len: u32,
    order: u32,
    primary: bool,
}

impl std::fmt::Debug for IdTable {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("IdTable")
            .field("ids", &self.table.len())
            .finish()
    }
}

#[inline]
fn fx_hash(bytes: &[u8]) -> u64 {
    use std::hash::Hasher as _;
    let mut h = rustc_hash::FxHasher::default();
    h.write(bytes);
    h.finish()
}

impl IdTable {
    #[inline]
    fn key(&self, s: &IdSlot) -> &str {
        &self.arena[s.start as usize..(s.start + s.len) as usize]
    }
    /// Inserts `id → order` unless `id` is already present (first wins).
    #[inline]
    fn insert_first(&mut self, id: &str, order: u32, primary: bool) {
        let hash = fx_hash(id.as_bytes());
        if self.find_slot(hash, id).is_some() {
            return;
        }
        let start = self.arena.len() as u32;
        self.arena.push_str(id);
        let slot = IdSlot {
            hash,
            start,
            len: id.len() as u32,
            order,
            primary,
        };
        self.table.insert_unique(hash, slot, |s| s.hash);
    }
    #[inline]
    fn find_slot(&self, hash: u64, id: &str) -> Option<&IdSlot> {
        self.table
            .find(hash, |s| s.hash == hash && self.key(s) == id)
    }
    #[inline]
    fn get(&self, id: &str) -> Option<(u32, bool)> {
        self.find_slot(fx_hash(id.as_bytes()), id)
            .map(|s| (s.order, s.primary))
    }
}

/// Lookup of orders by normalised id, click id and coupon. Orders must be
/// given sorted by (source, id); id ties are resolved when the index is
/// built, click ids and coupons list their orders earliest created first,
/// so a lookup never depends on hash order.
#[derive(Debug, Default)]
pub struct OrderIndex {
    by_id: IdTable,
    ties: IdTies,
    by_click: FxHashMap<Box<str>, Vec<u32>>,
    by_coupon: FxHashMap<Box<str>, Vec<u32>>,
}

impl OrderIndex {
    /// Indexes `orders` (already sorted by (source, order id)): position `i`
    /// is the order's handle.
    pub fn build(orders: &[&Order], with_coupons: bool) -> OrderIndex {
        let mut facts = OrderFacts::with_capacity(orders.len(), with_coupons);
        for o in orders {
            facts.push(o);
        }
        let mut ix = OrderIndex::default();
        ix.index_ids(&facts.ids);
        ix.ties = facts.ids.ties();
        ix.index_clicks(&facts);
        ix
    }

    /// Click ids (and coupons): each lists its orders earliest created
    /// first, then by position.
    fn index_clicks(&mut self, facts: &OrderFacts) {
        let mut by_time: Vec<(DateTime<Utc>, u32)> = (facts.created.iter())
            .enumerate()
            .map(|(i, t)| (*t, i as u32))
            .collect();
        by_time.sort_unstable();
        for &(_, i) in &by_time {
            for c in facts.clicks_of(i as usize) {
                let orders = self.by_click.entry(c.into()).or_default();
                // An order listing one click id twice is one candidate.
                if orders.last() != Some(&i) {
                    orders.push(i);
                }
            }
            if let Some(k) = facts.coupons.get(i as usize) {
                self.by_coupon.entry(k.into()).or_default().push(i);
            }
        }
    }

    fn index_ids(&mut self, ids: &OrderIds) {
        let mut buf = String::new();
        // Primary ids first so they win over any alt id.
        for i in 0..ids.ids.spans.len() {
            normalize_into(ids.ids.get(i).unwrap_or_default(), &mut buf);
            if !buf.is_empty() {
                self.by_id.insert_first(&buf, i as u32, true);
            }
        }
        for (a, &i) in ids.alt_of.iter().enumerate() {
            normalize_into(ids.alts.get(a).unwrap_or_default(), &mut buf);
            if !buf.is_empty() {
                self.by_id.insert_first(&buf, i, false);
            }
        }
    }

    /// The first order whose id or alt id normalises to `normalized`
    /// (own ids first, then by position); [`match_claim`] picks among
    /// orders sharing it with [`pick_by_id`].
    #[inline]
    pub fn by_order_id(&self, normalized: &str) -> Option<u32> {
        self.by_id.get(normalized).map(|(i, _)| i)
    }

    /// The orders carrying click id `click` (trimmed), earliest created
    /// first.
    #[inline]
    pub fn by_click_id(&self, click: &str) -> &[u32] {
        self.by_click.get(click).map_or(&[], Vec::as_slice)
    }

    /// Orders with coupon `coupon` (normalised), earliest created first.
    pub fn by_coupon(&self, coupon: &str) -> &[u32] {
        self.by_coupon.get(coupon).map_or(&[], Vec::as_slice)
    }
}

/// For a claim that matched nothing: the order under its coupon, created
/// within the fuzzy window, whose amount is nearest the claimed amount
/// (so outside the tolerance: within it, the order would have matched),
/// then nearest in time. Its reason names it (QA20 F7). Only orders within
/// the window: an incremental run loads those for the claim, and no more,
/// so it gives the reason a full run does.
fn coupon_near_miss<'o>(
    program: &ProgramConfig,
    fx: &FxTable,
    claim: &Conversion,
    order: impl Fn(usize) -> Cow<'o, Order>,
    index: &OrderIndex,
) -> Option<u32> {
    if !program.matching.coupon_matching {
        return None;
    }
    let candidates = coupon_candidates(program, fx, claim, order, index)?;
    candidates
        .map(|(i, dt, diff, _)| (diff, dt, i))
        .min()
        .map(|(_, _, i)| i)
}

/// A claim's coupon candidates: each order under its coupon created within
/// the fuzzy window, as (order, time apart, |claimed − order| and the
/// tolerance it is held to, in the program currency: [`difference`]).
/// `None` when the claim has no coupon or amount; an order whose amount or
/// the claimed amount against it no rate converts is left out.
fn coupon_candidates<'a, 'o>(
    program: &'a ProgramConfig,
    fx: &'a FxTable,
    claim: &'a Conversion,
    order: impl Fn(usize) -> Cow<'o, Order> + 'a,
    index: &'a OrderIndex,
) -> Option<impl Iterator<Item = (u32, Duration, Decimal, Decimal)> + 'a> {
    let coupon = claim.coupon.as_deref().and_then(normalize_coupon)?;
    let sale = claim.sale_amount.as_ref()?;
    let window = Duration::hours(i64::from(program.matching.fuzzy_window_hours));
    let candidates = index.by_coupon(&coupon).iter().filter_map(move |&i| {
        let o = order(i as usize);
        let dt = (o.created_at - claim.occurred_at).abs();
        if dt > window {
            return None;
        }
        let amount = convert(fx, &o.amount, &program.currency, program.day(o.created_at))?;
        let claimed = claimed_against(program, fx, sale, claim, &o)?;
        let (diff, tol) = difference(program, sale, &claimed, &o, &amount);
        Some((i, dt, diff.abs(), tol))
    });
    Some(candidates)
}

/// max(abs, pct % × order amount): the amount tolerance for one order amount
/// (both in the program currency).
#[inline]
pub fn tolerance(program: &ProgramConfig, order_amount: Decimal) -> Decimal {
    let pct = order_amount.abs() * program.matching.amount_tolerance_pct / Decimal::ONE_HUNDRED;
    program.matching.amount_tolerance_abs.max(pct)
}

fn record_ref(source: &str, id: &str, revision: u32) -> RecordRef {
    RecordRef {
        source: source.to_owned(),
        id: id.to_owned(),
        revision,
    }
}

/// Money converted into the program currency, or `None` without a rate.
struct Converted {
    amount: Decimal,
    rate: Decimal,
    /// The `[fx]` row of the rate; `None` in one currency.
    row: Option<RateRow>,
}

/// `money` in `to` at the rate of `day` (the program's day of the claim
/// or order, [`ProgramConfig::day`]).
fn convert(fx: &FxTable, money: &Money, to: &str, day: NaiveDate) -> Option<Converted> {
    let FoundRate { rate, row } = fx.found_rate(&money.currency, to, day)?;
    let amount = if rate == Decimal::ONE {
        money.amount
    } else {
        round_money(money.amount * rate, to)
    };
    Some(Converted { amount, rate, row })
}

/// The day whose rate converts a claimed amount compared with `order`: the
/// order's day when the claim is in the order's currency (the two are
/// compared in their own currency, so a rate move between the order and
/// the conversion is no difference), else the claim's own day.
fn claim_fx_day(
    program: &ProgramConfig,
    sale: &Money,
    claim: &Conversion,
    order: &Order,
) -> NaiveDate {
    if sale.currency == order.amount.currency {
        program.day(order.created_at)
    } else {
        program.day(claim.occurred_at)
    }
}

/// A claimed amount in the program currency, to compare with `order`'s
/// ([`claim_fx_day`]).
fn claimed_against(
    program: &ProgramConfig,
    fx: &FxTable,
    sale: &Money,
    claim: &Conversion,
    order: &Order,
) -> Option<Converted> {
    convert(
        fx,
        sale,
        &program.currency,
        claim_fx_day(program, sale, claim, order),
    )
}

/// The difference claimed − order and the tolerance it is held to, in the
/// program currency. A claim in its order's currency is compared in that
/// currency, converted exactly (unrounded) at the order's rate: rounding
/// each side to the cent first put a claim exactly at a 1 % edge beyond it
/// in EUR but not in USD (QA26 F1). Otherwise the converted amounts.
fn difference(
    program: &ProgramConfig,
    sale: &Money,
    claimed: &Converted,
    order: &Order,
    order_conv: &Converted,
) -> (Decimal, Decimal) {
    if sale.currency == order.amount.currency {
        let r = order_conv.rate;
        (
            (sale.amount - order.amount.amount) * r,
            tolerance(program, order.amount.amount * r),
        )
    } else {
        (
            claimed.amount - order_conv.amount,
            tolerance(program, order_conv.amount),
        )
    }
}

/// `a × b / c`, multiplied first for exact cents; when the product leaves
/// `Decimal`'s range (two amounts near 10^15, or a converted one: QA24 F8,
/// a refunded share that panicked every run of its program; F9, two
/// commissions repriced by statements) `a × (b / c)`, exact to 28
/// significant digits, which only absurd amounts reach; `None` when the
/// result itself is out of range (or `c` is zero).
pub fn mul_div(a: Decimal, b: Decimal, c: Decimal) -> Option<Decimal> {
    if c.is_zero() {
        return None;
    }
    match a.checked_mul(b) {
        Some(p) => p.checked_div(c),
        None => b.checked_div(c).and_then(|q| a.checked_mul(q)),
    }
}

fn round_money(amount: Decimal, currency: &str) -> Decimal {
    let dp = plugin_api::currency::minor_unit_digits(currency).unwrap_or(2);
    amount.round_dp_with_strategy(dp, RoundingStrategy::MidpointAwayFromZero)
}

/// Whether a conversion at `occurred` is too far in time from an order
/// created at `created` to be its sale: more than the program's
/// `order_window_days` apart, either way (QA38a H2: a conversion 131 days
/// before its order existed, or an old order's id guessed, was paid).
fn too_far(program: &ProgramConfig, occurred: DateTime<Utc>, created: DateTime<Utc>) -> bool {
    (occurred - created).abs() > Duration::days(i64::from(program.matching.order_window_days))
}

/// What an unmatched claim came closest to, for its reason.
#[derive(Clone, Copy, Default)]
struct Miss<'a> {
    /// Its coupon's nearest order beyond tolerance ([`coupon_near_miss`]).
    near: Option<&'a OrderInput>,
    /// The order its order id or click id names, too far in time
    /// ([`too_far`]).
    far: Option<(&'a OrderInput, MatchedBy)>,
}

/// The time a claim competes with under the click rules.
fn attribution_time(c: &Conversion) -> DateTime<Utc> {
    c.clicked_at.unwrap_or(c.occurred_at)
}

/// Why claim `c`'s time in an attribution contest on an order created at
/// `created` cannot be right, if it cannot: its click is after its own
/// conversion, or its time (click, else conversion) is more than the
/// program's `fuzzy_window_hours` after the order was created (a click
/// sent in the future, or a postback dated when it arrived, months after
/// the sale: QA38a H1, H3). `None` when it can be.
fn implausible_time(
    program: &ProgramConfig,
    c: &Conversion,
    created: DateTime<Utc>,
) -> Option<String> {
    if !is_implausible(program, attribution_time(c), c.occurred_at, created) {
        return None;
    }
    if let Some(click) = c.clicked_at.filter(|t| *t > c.occurred_at) {
        return Some(format!(
            "click time ({}) is after its conversion ({})",
            fmt_time(click),
            fmt_time(c.occurred_at)
        ));
    }
    let hours = program.matching.fuzzy_window_hours;
    Some(format!(
        "time {} is more than {hours} h (`fuzzy_window_hours`) after the order was created ({})",
        contest_time(c),
        fmt_time(created)
    ))
}

/// [`implausible_time`] from a claim's attribution time `at` (its click
/// time, else its conversion time) and conversion time alone, so a full
/// run decides its contests without decoding a record: a click time is
/// after the conversion exactly when `at` is.
fn is_implausible(
    program: &ProgramConfig,
    at: DateTime<Utc>,
    occurred: DateTime<Utc>,
    created: DateTime<Utc>,
) -> bool {
    let hours = i64::from(program.matching.fuzzy_window_hours);
    at > occurred || at > created + chrono::Duration::hours(hours)
}

/// What an attribution contest compares of a claim. Claims are numbered in
/// (source, external id) order, so comparing numbers compares keys.
#[derive(Clone, Copy)]
struct Rival {
    at: DateTime<Utc>,
    rank: u32,
    competes: bool,
    /// Matched only by coupon: loses to a claim that names the order.
    fuzzy: bool,
    /// Its time cannot be right ([`implausible_time`]): loses to a claim
    /// whose time can be.
    implausible: bool,
    /// Its part in mirrored copies.
    mirror: Mirror,
}

impl Rival {
    fn of(program: &ProgramConfig, c: &Conversion) -> Rival {
        Rival {
            at: attribution_time(c),
            rank: program.source_rank(&c.source) as u32,
            competes: competes(c),
            fuzzy: false,
            implausible: false,
            mirror: Mirror::of(program, &c.source),
        }
    }
}

/// A claim's part in mirrored copies ([`ProgramConfig::mirrors`]): the
/// number is the connector's position in the program's `claims`.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Mirror {
    /// Neither.
    No,
    /// From an endpoint that copies this connector's conversions.
    Copy(u16),
    /// From this connector, which an endpoint copies.
    Original(u16),
}

impl Mirror {
    fn of(program: &ProgramConfig, source: &str) -> Mirror {
        if program.mirrors.is_empty() {
            return Mirror::No;
        }
        let position = |s: &str| program.claims.iter().position(|c| c == s);
        if let Some(n) = program.mirrors.get(source).and_then(|c| position(c)) {
            return Mirror::Copy(n as u16);
        }
        match position(source) {
            Some(n) if program.mirrors.values().any(|c| c == source) => Mirror::Original(n as u16),
            _ => Mirror::No,
        }
    }
}

/// Orders claims `a` and `b` (by number) for an attribution contest: the
/// winner sorts first.
fn contest_order(program: &ProgramConfig, rivals: &[Rival], a: u32, b: u32) -> Ordering {
    let (ra, rb) = (&rivals[a as usize], &rivals[b as usize]);
    ra.fuzzy
        .cmp(&rb.fuzzy)
        .then(ra.implausible.cmp(&rb.implausible))
        .then_with(|| deciding(program, ra, rb).0)
        .then_with(|| a.cmp(&b))
}

/// What decides a contest between two claims that match their order alike
/// (both exactly, or both by coupon), by the attribution rule and its
/// tie-breaks: the order (the winner sorts first) and which criterion told
/// them apart (`None`: only their keys do).
fn deciding(program: &ProgramConfig, ra: &Rival, rb: &Rival) -> (Ordering, Option<Criterion>) {
    let rank = (ra.rank.cmp(&rb.rank), Criterion::SourcePriority);
    let last = (rb.at.cmp(&ra.at), Criterion::LastClick);
    let first = (ra.at.cmp(&rb.at), Criterion::FirstClick);
    let steps = match program.attribution {
        AttributionRule::LastClick => [last, rank],
        AttributionRule::FirstClick => [first, rank],
        AttributionRule::SourcePriority => [rank, last],
    };
    steps
        .into_iter()
        .find(|(o, _)| o.is_ne())
        .map_or((Ordering::Equal, None), |(o, c)| (o, Some(c)))
}

/// A criterion that decided an attribution contest.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Criterion {
    LastClick,
    FirstClick,
    SourcePriority,
}

/// The outcome of a claim the network reversed or rejected, and the word
/// for it; `None` for any other status.
fn network_verdict(status: ConversionStatus) -> Option<(Outcome, &'static str)> {
    match status {
        ConversionStatus::Rejected => Some((Outcome::NetworkRejected, "rejected")),
        ConversionStatus::Reversed => Some((Outcome::NetworkReversed, "reversed")),
        ConversionStatus::Pending | ConversionStatus::Approved => None,
    }
}

/// The reason of a network's reversal or rejection: what it `said`, when
/// (if the network dates it), and whether after the lock date, as a refund
/// after the lock date says (QA20 F6): the claim may have been paid, so
/// the payer must claw it back.
fn network_reason(
    said: String,
    changed: Option<DateTime<Utc>>,
    lock_at: Option<DateTime<Utc>>,
) -> String {
    let mut reason = match changed {
        Some(t) => format!("{said} ({})", fmt_time(t)),
        None => said,
    };
    if changed.zip(lock_at).is_some_and(|(t, l)| t > l) {
        reason.push_str(" after the lock date");
    }
    reason
}

/// Links each mirrored copy to a claim of the connector it copies matched
/// to the same order (one that competes, else the first in key order) and
/// takes it out of the contests. Copies of a conversion the connector has
/// not delivered (or not matched to that order) compete as any claim.
fn link_copies(matches: &[Option<(u32, MatchedBy)>], rivals: &mut [Rival]) -> FxHashMap<u32, u32> {
    let mut copies = FxHashMap::default();
    if rivals.iter().all(|r| r.mirror == Mirror::No) {
        return copies;
    }
    let mut originals: FxHashMap<(u32, u16), u32> = FxHashMap::default();
    for (j, m) in matches.iter().enumerate() {
        if let (Some((oi, _)), Mirror::Original(n)) = (m, rivals[j].mirror) {
            let k = originals.entry((*oi, n)).or_insert(j as u32);
            if rivals[j].competes && !rivals[*k as usize].competes {
                *k = j as u32;
            }
        }
    }
    for (j, m) in matches.iter().enumerate() {
        if let (Some((oi, _)), Mirror::Copy(n)) = (m, rivals[j].mirror) {
            if let Some(&k) = originals.get(&(*oi, n)) {
                copies.insert(j as u32, k);
                rivals[j].competes = false;
            }
        }
    }
    copies
}

fn competes(c: &Conversion) -> bool {
    !matches!(
        c.status,
        ConversionStatus::Reversed | ConversionStatus::Rejected
    )
}

/// Finds the order a claim matches, by the rules in the module docs.
/// `orders` and `index` are the sorted orders and their index.
pub fn match_claim(
    program: &ProgramConfig,
    fx: &FxTable,
    claim: &Conversion,
    orders: &[&Order],
    index: &OrderIndex,
    buf: &mut String,
) -> Option<(u32, MatchedBy)> {
    let order = |i: usize| Cow::Borrowed(orders[i]);
    let created = |i: u32| orders[i as usize].created_at;
    if let Some(oid) = &claim.order_id {
        normalize_into(oid, buf);
        if !buf.is_empty() {
            if let Some(i) = index.by_order_id(buf) {
                // Orders too far in time are not its sale ([`too_far`]), as
                // in `Plan::with_facts`.
                let group = index.ties.group(buf).unwrap_or(&[]);
                let group = if group.is_empty() {
                    &[(i, true)][..]
                } else {
                    group
                };
                if let Ok((i, _)) = pick_in_window(program, fx, claim, group, &created, &order) {
                    return Some((i, MatchedBy::OrderId));
                }
            }
        }
    }
    match_after_order_id(program, fx, claim, order, &created, index).0
}

/// Rules 2 and 3 of [`match_claim`] (click id, then coupon), for a claim
/// whose order id matched nothing. The orders sharing its click id that
/// are too far in time from the conversion ([`too_far`]) are left out;
/// when that leaves none, the second value is the one the click id would
/// have matched had time not counted, and the coupon rule is tried.
fn match_after_order_id<'o>(
    program: &ProgramConfig,
    fx: &FxTable,
    claim: &Conversion,
    order: impl Fn(usize) -> Cow<'o, Order>,
    created: &impl Fn(u32) -> DateTime<Utc>,
    index: &OrderIndex,
) -> (Option<(u32, MatchedBy)>, Option<u32>) {
    let mut far = None;
    if let Some(click) = claim.click_id.as_deref().and_then(normalize_click_id) {
        let all = index.by_click_id(click);
        let near = |&i: &u32| !too_far(program, claim.occurred_at, created(i));
        let picked = if all.iter().all(near) {
            closest_by_click(program, fx, claim, all, &order)
        } else {
            let within: Vec<u32> = all.iter().copied().filter(near).collect();
            let picked = closest_by_click(program, fx, claim, &within, &order);
            if picked.is_none() {
                far = closest_by_click(program, fx, claim, all, &order);
            }
            picked
        };
        if let Some(i) = picked {
            return (Some((i, MatchedBy::ClickId)), None);
        }
    }
    if program.matching.coupon_matching {
        let coupon = coupon_candidates(program, fx, claim, &order, index).and_then(|candidates| {
            candidates
                .filter_map(|(i, dt, diff, tol)| (diff <= tol).then_some((dt, diff, i)))
                .min()
                .map(|(_, _, i)| (i, MatchedBy::Coupon))
        });
        return (coupon, far);
    }
    (None, far)
}

/// Of the orders sharing the claim's click id (`orders`, earliest created
/// first), the one the claim fits best. One click can lead to several
/// purchases, and each claim is the network's report of one of them: an
/// order whose amount is within tolerance of the claim's first, then the
/// closest in time to the conversion, then the closest amount, then the
/// earliest created. The choice depends only on the claim and these orders,
/// so incremental runs (which re-judge the claims of every order sharing a
/// click id with a changed one) agree with full runs.
fn closest_by_click<'o>(
    program: &ProgramConfig,
    fx: &FxTable,
    claim: &Conversion,
    orders: &[u32],
    order: &impl Fn(usize) -> Cow<'o, Order>,
) -> Option<u32> {
    if orders.len() <= 1 {
        return orders.first().copied();
    }
    orders
        .iter()
        .enumerate()
        .min_by_key(|&(pos, &i)| {
            let o = order(i as usize);
            let claimed = (claim.sale_amount.as_ref())
                .and_then(|m| Some((m, claimed_against(program, fx, m, claim, &o)?)));
            let diff = claimed.as_ref().and_then(|(sale, c)| {
                let amount = convert(fx, &o.amount, &program.currency, program.day(o.created_at))?;
                let (diff, tol) = difference(program, sale, c, &o, &amount);
                Some(diff.abs()).filter(|d| *d <= tol)
            });
            // Within tolerance (or nothing to compare) first; an amount that
            // cannot be compared counts as beyond it.
            let beyond = claimed.is_some() && diff.is_none();
            (
                beyond,
                (o.created_at - claim.occurred_at).abs(),
                diff.unwrap_or_default(),
                pos,
            )
        })
        .map(|(_, &i)| i)
}

/// Random access to one program's claims or orders in key order:
/// (source, external id) for claims, (source, order id) for orders, each
/// key once. A slice of references is the plain case; the full run keeps
/// its inputs encoded and decodes one when asked (`super::packed`), which
/// holds a million claims in a fraction of the memory.
pub trait Inputs<T: Clone>: Sync {
    /// How many.
    fn len(&self) -> usize;
    /// Whether there are none.
    fn is_empty(&self) -> bool {
        self.len() == 0
    }
    /// Item `i`.
    fn get(&self, i: usize) -> Cow<'_, T>;
}

impl<T: Clone + Sync> Inputs<T> for [&T] {
    fn len(&self) -> usize {
        <[&T]>::len(self)
    }
    fn get(&self, i: usize) -> Cow<'_, T> {
        Cow::Borrowed(self[i])
    }
}

/// Strings by position in one buffer (`None` for an absent one): ids for
/// the join without an allocation each.
#[derive(Default)]
struct Texts {
    buf: String,
    spans: Vec<(usize, u32)>,
}

impl Texts {
    fn push(&mut self, s: Option<&str>) {
        match s {
            Some(s) => {
                self.spans.push((self.buf.len(), s.len() as u32));
                self.buf.push_str(s);
            }
            None => self.spans.push((0, u32::MAX)),
        }
    }
    fn get(&self, i: usize) -> Option<&str> {
        let (start, len) = self.spans[i];
        (len != u32::MAX).then(|| &self.buf[start..start + len as usize])
    }
}

/// Every order's ids for rule 1, in bulk.
#[derive(Default)]
struct OrderIds {
    ids: Texts,
    alts: Texts,
    /// The order of each alt id.
    alt_of: Vec<u32>,
}

impl OrderIds {
    /// Appends the ids of the next order.
    fn push(&mut self, o: &Order) {
        let i = self.ids.spans.len() as u32;
        self.ids.push(Some(&o.order_id));
        for a in &o.alt_ids {
            self.alts.push(Some(a));
            self.alt_of.push(i);
        }
    }

    /// The orders sharing a normalised id ([`IdTies`]).
    fn ties(&self) -> IdTies {
        let n = self.ids.spans.len();
        let id_of = |row: usize| match row.checked_sub(n) {
            None => (self.ids.get(row), row as u32, true),
            Some(a) => (self.alts.get(a), self.alt_of[a], false),
        };
        let mut buf = String::new();
        let mut hashed: Vec<(u64, u32)> = Vec::with_capacity(n + self.alt_of.len());
        for row in 0..n + self.alt_of.len() {
            normalize_into(id_of(row).0.unwrap_or_default(), &mut buf);
            if !buf.is_empty() {
                hashed.push((fx_hash(buf.as_bytes()), row as u32));
            }
        }
        hashed.sort_unstable();
        let mut ties = IdTies::default();
        for run in hashed.chunk_by(|a, b| a.0 == b.0).filter(|r| r.len() > 1) {
            // Equal hashes: group the rows by their normalised id.
            let mut by_id: BTreeMap<String, Vec<(u32, bool)>> = BTreeMap::new();
            for &(_, row) in run {
                let (id, order, primary) = id_of(row as usize);
                normalize_into(id.unwrap_or_default(), &mut buf);
                by_id.entry(buf.clone()).or_default().push((order, primary));
            }
            for (id, mut orders) in by_id {
                // One order listing the id twice is one candidate, its own
                // id first.
                orders.sort_unstable_by_key(|&(o, primary)| (o, !primary));
                orders.dedup_by_key(|(o, _)| *o);
                if orders.len() > 1 {
                    ties.tied.extend(orders.iter().map(|&(o, _)| o));
                    ties.by_id.insert(id.into(), orders);
                }
            }
        }
        ties
    }

    /// Rule 1 for every claim at once: the order each claim's (`quoted`)
    /// order id matches, with [`OrderIndex`]'s tie-breaking. The join's
    /// build rows are all primary ids in order position, then all alt ids,
    /// so its first-occurrence rule gives primary ids precedence, then
    /// position.
    fn join(&self, quoted: &Texts, threads: usize) -> Vec<Option<u32>> {
        let n = self.ids.spans.len();
        let per_thread = super::join::join_first(
            threads,
            n + self.alt_of.len(),
            |i| match i.checked_sub(n) {
                None => Some((self.ids.get(i)?, i as u32)),
                Some(a) => Some((self.alts.get(a)?, self.alt_of[a])),
            },
            quoted.spans.len(),
            |j| Some((quoted.get(j)?, j as u32)),
            |acc: &mut Vec<(u32, u32)>, claim: u32, order: u32| acc.push((claim, order)),
        );
        let mut out = vec![None; quoted.spans.len()];
        for (claim, order) in per_thread.into_iter().flatten() {
            out[claim as usize] = Some(order);
        }
        out
    }
}

/// Orders sharing a normalised order id (QA30-D F1): two files of one
/// file-drop connector, or two orders connectors of one program, can each
/// hold `DUP-1` / `dup-1` (the orders connector refuses such a pair within
/// one file). Rule 1 then picks among them with [`pick_by_id`], in full
/// and incremental runs alike. Empty for nearly every program: built from
/// sorted 64-bit hashes of the ids, a string compared only where two
/// hashes are equal.
#[derive(Debug, Default)]
struct IdTies {
    /// Each shared normalised id → its orders, each once, with whether
    /// the id is the order's own (not an alternative id), in position
    /// order.
    by_id: FxHashMap<Box<str>, Vec<(u32, bool)>>,
    /// Every order of a group, so a match is tested with one lookup.
    tied: rustc_hash::FxHashSet<u32>,
}

impl IdTies {
    fn is_empty(&self) -> bool {
        self.by_id.is_empty()
    }

    /// The orders sharing normalised id `normalized` with another, if any.
    fn group(&self, normalized: &str) -> Option<&[(u32, bool)]> {
        self.by_id.get(normalized).map(Vec::as_slice)
    }
}

/// Why [`pick_by_id`] took an order among several sharing the claim's id.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum IdWhy {
    /// The id is its own; the others have it as an alternative id.
    OwnId,
    /// Its id is written as the claim writes it; the others' only once
    /// trimmed and case-folded.
    Exact,
    /// It fits the claim best, as among orders sharing a click id.
    Fit,
    /// It is the only one created within `order_window_days` of the
    /// conversion ([`too_far`]).
    InWindow,
}

/// How claim's order was told apart from the other orders sharing its
/// normalised order id, for its reason.
#[derive(Debug, Clone, Copy)]
struct IdTie {
    /// Orders carrying the id.
    orders: u32,
    /// Of those, the ones created within `order_window_days` of the
    /// conversion: the only ones rule 1 chooses among.
    within: u32,
    /// Why this one, of those.
    why: IdWhy,
}

/// Rule 1 for a claim whose normalised order id is shared by `group`:
/// the orders too far in time from the conversion ([`too_far`]) are left
/// out, then [`pick_by_id`] chooses among the rest. `Err` holds the order
/// rule 1 would have named had time not counted, when every order of the
/// group is too far.
fn pick_in_window<'o>(
    program: &ProgramConfig,
    fx: &FxTable,
    claim: &Conversion,
    group: &[(u32, bool)],
    created: &impl Fn(u32) -> DateTime<Utc>,
    order: &impl Fn(usize) -> Cow<'o, Order>,
) -> Result<(u32, IdTie), u32> {
    let within: Vec<(u32, bool)> = (group.iter().copied())
        .filter(|&(i, _)| !too_far(program, claim.occurred_at, created(i)))
        .collect();
    let tie = |i: u32, why: IdWhy| {
        let (orders, within) = (group.len() as u32, within.len() as u32);
        let why = if within == 1 && orders > 1 {
            IdWhy::InWindow
        } else {
            why
        };
        (
            i,
            IdTie {
                orders,
                within,
                why,
            },
        )
    };
    match pick_by_id(program, fx, claim, &within, order) {
        Some((i, why)) => Ok(tie(i, why)),
        None => Err(pick_by_id(program, fx, claim, group, order).map_or(group[0].0, |p| p.0)),
    }
}

/// Of the orders sharing the claim's normalised order id (`group`), the
/// one rule 1 matches: an order's own id before an alternative id, then an
/// id written as the claim writes it (trimmed, same case), then the best
/// fit as among orders sharing a click id ([`closest_by_click`]: amount
/// within tolerance, closest in time, closest amount, earliest created).
/// Depends only on the claim and these orders, as incremental runs need.
fn pick_by_id<'o>(
    program: &ProgramConfig,
    fx: &FxTable,
    claim: &Conversion,
    group: &[(u32, bool)],
    order: &impl Fn(usize) -> Cow<'o, Order>,
) -> Option<(u32, IdWhy)> {
    let quoted = claim.order_id.as_deref().unwrap_or_default().trim();
    let own: Vec<(u32, bool)> = if group.iter().any(|&(_, primary)| primary) {
        group.iter().copied().filter(|&(_, p)| p).collect()
    } else {
        group.to_vec()
    };
    if let [(only, _)] = own[..] {
        return Some((only, IdWhy::OwnId));
    }
    let exact: Vec<u32> = (own.iter())
        .filter(|&&(i, primary)| {
            let o = order(i as usize);
            if primary {
                o.order_id.trim() == quoted
            } else {
                o.alt_ids.iter().any(|a| a.trim() == quoted)
            }
        })
        .map(|&(i, _)| i)
        .collect();
    if let [only] = exact[..] {
        return Some((only, IdWhy::Exact));
    }
    let mut fit: Vec<u32> = if exact.is_empty() {
        own.iter().map(|&(i, _)| i).collect()
    } else {
        exact
    };
    // Earliest created first, then position: what `closest_by_click`'s
    // last tie-break expects.
    fit.sort_by_key(|&i| (order(i as usize).created_at, i));
    closest_by_click(program, fx, claim, &fit, order).map(|i| (i, IdWhy::Fit))
}

/// What matching needs of every order, gathered in one pass over them
/// (position `i` is the order's handle): its ids for the order-id join,
/// and its creation time, click ids and coupon for the click and coupon
/// indexes. A full run gathers them while it reads the orders from the
/// store, so no packed order is decoded for them again.
#[derive(Default)]
pub struct OrderFacts {
    ids: OrderIds,
    created: Vec<DateTime<Utc>>,
    /// Trimmed click ids, non-empty: order `i`'s are
    /// `clicks[click_end[i - 1]..click_end[i]]`.
    clicks: Texts,
    click_end: Vec<u32>,
    /// Each order's normalised coupon (all `None` without coupon matching).
    coupons: Texts,
    with_coupons: bool,
}

impl OrderFacts {
    /// Empty, with room for `n` orders; coupons are gathered only with
    /// coupon matching.
    pub fn with_capacity(n: usize, with_coupons: bool) -> OrderFacts {
        OrderFacts {
            created: Vec::with_capacity(n),
            click_end: Vec::with_capacity(n),
            with_coupons,
            ..OrderFacts::default()
        }
    }

    /// Appends the next order's facts.
    pub fn push(&mut self, o: &Order) {
        self.ids.push(o);
        self.created.push(o.created_at);
        for c in o.click_ids.iter().filter_map(|c| normalize_click_id(c)) {
            self.clicks.push(Some(c));
        }
        self.click_end.push(self.clicks.spans.len() as u32);
        let coupon = (self.with_coupons)
            .then(|| o.coupon.as_deref().and_then(normalize_coupon))
            .flatten();
        self.coupons.push(coupon.as_deref());
    }

    fn clicks_of(&self, i: usize) -> impl Iterator<Item = &str> {
        let start = i.checked_sub(1).map_or(0, |p| self.click_end[p] as usize);
        (start..self.click_end[i] as usize).filter_map(|k| self.clicks.get(k))
    }

    /// What the plan takes: the ids for the join, and the click and
    /// coupon index (no ids: the join matches them).
    pub fn finish(self) -> OrderPrep {
        let mut index = OrderIndex::default();
        index.index_clicks(&self);
        index.ties = self.ids.ties();
        OrderPrep {
            ids: self.ids,
            index,
            created: self.created,
        }
    }
}

/// [`OrderFacts`] made ready for [`Plan::with_facts`].
#[derive(Debug)]
pub struct OrderPrep {
    ids: OrderIds,
    index: OrderIndex,
    /// Each order's creation ([`too_far`]).
    created: Vec<DateTime<Utc>>,
}

impl std::fmt::Debug for OrderFacts {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("OrderFacts")
            .field("orders", &self.created.len())
            .field("clicks", &self.clicks.spans.len())
            .finish()
    }
}

impl std::fmt::Debug for OrderIds {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("OrderIds")
            .field("ids", &self.ids.spans.len())
            .field("alts", &self.alt_of.len())
            .finish()
    }
}

impl std::fmt::Debug for ClaimFacts {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ClaimFacts")
            .field("claims", &self.rivals.len())
            .finish()
    }
}

/// What contests need of every claim, gathered in one pass over them, in
/// key order: the order id it quotes, and its [`Rival`] part. A full run
/// gathers them while it reads the claims from the store.
#[derive(Default)]
pub struct ClaimFacts {
    quoted: Texts,
    rivals: Vec<Rival>,
    /// Each claim's conversion time ([`too_far`]).
    occurred: Vec<DateTime<Utc>>,
    /// The last key pushed (debug builds): contests compare claim numbers
    /// as keys ([`contest_order`]), so claims must come in key order.
    previous: Option<(String, String)>,
}

impl ClaimFacts {
    /// Empty, with room for `n` claims.
    pub fn with_capacity(n: usize) -> ClaimFacts {
        ClaimFacts {
            rivals: Vec::with_capacity(n),
            occurred: Vec::with_capacity(n),
            ..ClaimFacts::default()
        }
    }

    /// Appends the next claim's facts.
    pub fn push(&mut self, program: &ProgramConfig, c: &Conversion) {
        self.quoted.push(c.order_id.as_deref());
        self.rivals.push(Rival::of(program, c));
        self.occurred.push(c.occurred_at);
        if cfg!(debug_assertions) {
            let key = (c.source.clone(), c.external_id.clone());
            debug_assert!(
                self.previous < Some(key.clone()),
                "claims not in key order at {key:?}"
            );
            self.previous = Some(key);
        }
    }
}

/// One program's claims matched to orders, with every attribution contest
/// decided: what [`Plan::judge`] needs to judge any claim on its own, in any
/// order (the full run judges in the order its store buckets are written).
pub struct Plan<'a, C: Inputs<ClaimInput> + ?Sized, O: Inputs<OrderInput> + ?Sized> {
    program: &'a ProgramConfig,
    fx: &'a FxTable,
    claims: &'a C,
    orders: &'a O,
    matches: Vec<Option<(u32, MatchedBy)>>,
    /// What each claim competes with (by claim number).
    rivals: Vec<Rival>,
    /// Order → the claims competing for it, winner first.
    contests: FxHashMap<u32, Vec<u32>>,
    /// Unmatched claim → its coupon near miss ([`coupon_near_miss`]).
    near: FxHashMap<u32, u32>,
    /// Unmatched claim → the order its order id or click id names, too far
    /// in time from its conversion ([`too_far`]).
    far: FxHashMap<u32, (u32, MatchedBy)>,
    /// Mirrored copy → the claim it copies (matched to the same order).
    copies: FxHashMap<u32, u32>,
    /// Claim matched by an order id several orders share → how many
    /// share it and why its order was taken ([`pick_by_id`]).
    id_ties: FxHashMap<u32, IdTie>,
}

impl<C: Inputs<ClaimInput> + ?Sized, O: Inputs<OrderInput> + ?Sized> std::fmt::Debug
    for Plan<'_, C, O>
{
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Plan")
            .field("program", &self.program.id)
            .field("claims", &self.matches.len())
            .field("contests", &self.contests.len())
            .finish()
    }
}

/// A scoped thread's result; its panic, the caller's.
fn joined<T>(h: std::thread::ScopedJoinHandle<'_, T>) -> T {
    h.join().unwrap_or_else(|e| std::panic::resume_unwind(e))
}

/// Claims and orders from which a plan hands the join's freed memory back
/// to the system.
const RELEASE_AFTER_JOIN: usize = 200_000;

impl<'a, C: Inputs<ClaimInput> + ?Sized, O: Inputs<OrderInput> + ?Sized> Plan<'a, C, O> {
    /// Matches every claim (rule 1 in bulk with [`super::join`], rules 2-3
    /// by [`OrderIndex`]) and decides the contests. `claims` and `orders`
    /// must be in key order (see [`Inputs`]).
    pub fn new(program: &'a ProgramConfig, fx: &'a FxTable, claims: &'a C, orders: &'a O) -> Self {
        // One pass over the orders, one over the claims, at once.
        let (order_facts, claim_facts) = std::thread::scope(|s| {
            let orders = s.spawn(|| {
                let mut f =
                    OrderFacts::with_capacity(orders.len(), program.matching.coupon_matching);
                for i in 0..orders.len() {
                    f.push(&orders.get(i).order);
                }
                f.finish()
            });
            let mut f = ClaimFacts::with_capacity(claims.len());
            for j in 0..claims.len() {
                f.push(program, &claims.get(j).claim);
            }
            (joined(orders), f)
        });
        Plan::with_facts(program, fx, claims, orders, claim_facts, order_facts)
    }

    /// [`Plan::new`] with the claims' and orders' facts gathered already
    /// (a full run gathers them as it reads its inputs).
    pub fn with_facts(
        program: &'a ProgramConfig,
        fx: &'a FxTable,
        claims: &'a C,
        orders: &'a O,
        claim_facts: ClaimFacts,
        order_prep: OrderPrep,
    ) -> Self {
        debug_assert_eq!(claim_facts.rivals.len(), claims.len());
        debug_assert_eq!(order_prep.ids.ids.spans.len(), orders.len());
        let order = |i: usize| -> Cow<'a, Order> {
            match orders.get(i) {
                Cow::Borrowed(o) => Cow::Borrowed(&o.order),
                Cow::Owned(o) => Cow::Owned(o.order),
            }
        };
        let ClaimFacts {
            quoted,
            mut rivals,
            occurred,
            ..
        } = claim_facts;
        let OrderPrep {
            ids: order_ids,
            index,
            created,
        } = order_prep;
        let threads = super::join::default_threads(orders.len() + claims.len());
        let by_id = order_ids.join(&quoted, threads);
        drop((order_ids, quoted));
        // The join's partitions, freed by now, sit in the allocator's free
        // pages; handing those back keeps them from adding to the memory the
        // rest of the plan takes (full run at 1M claims: peak 937–983 →
        // 863–878 MiB, bench (b)). Not for a small plan (an incremental
        // run's): its partitions are small, and the pages handed back are
        // faulted in again by the rest of the run (bench (c'): ~20k page
        // faults, ARCHITECTURE.md "Goal (c)").
        if orders.len() + claims.len() >= RELEASE_AFTER_JOIN {
            crate::release_free_memory();
        }
        let mut matches: Vec<Option<(u32, MatchedBy)>> = by_id
            .into_iter()
            .map(|m| m.map(|o| (o, MatchedBy::OrderId)))
            .collect();
        // The join takes the first order of an id; where several share it
        // (rare), rule 1 picks among those not too far in time from the
        // conversion ([`too_far`]). An order found by id too far in time is
        // not the claim's sale: the claim may still match by click id or
        // coupon.
        let mut id_ties: FxHashMap<u32, IdTie> = FxHashMap::default();
        let mut far: FxHashMap<u32, (u32, MatchedBy)> = FxHashMap::default();
        let ties = &index.ties;
        let at = |i: u32| created[i as usize];
        let mut buf = String::new();
        for (j, m) in matches.iter_mut().enumerate() {
            let Some((o, _)) = *m else {
                continue;
            };
            let tied = (!ties.is_empty() && ties.tied.contains(&o)).then(|| claims.get(j));
            if let Some(c) = &tied {
                normalize_into(c.claim.order_id.as_deref().unwrap_or_default(), &mut buf);
            }
            let group = tied
                .as_ref()
                .and_then(|c| Some((&c.claim, ties.group(&buf)?)));
            let picked = match group {
                Some((claim, group)) => {
                    pick_in_window(program, fx, claim, group, &at, &order).map(|(picked, tie)| {
                        id_ties.insert(j as u32, tie);
                        picked
                    })
                }
                None if too_far(program, occurred[j], at(o)) => Err(o),
                None => Ok(o),
            };
            match picked {
                Ok(picked) => *m = Some((picked, MatchedBy::OrderId)),
                Err(named) => {
                    far.insert(j as u32, (named, MatchedBy::OrderId));
                    *m = None;
                }
            }
        }
        let mut near: FxHashMap<u32, u32> = FxHashMap::default();
        for (j, m) in matches.iter_mut().enumerate() {
            if m.is_none() {
                let claim = &claims.get(j).claim;
                let (found, click_far) =
                    match_after_order_id(program, fx, claim, order, &at, &index);
                *m = found;
                if let Some(o) = click_far {
                    far.entry(j as u32).or_insert((o, MatchedBy::ClickId));
                }
                if m.is_none() {
                    if let Some(o) = coupon_near_miss(program, fx, claim, order, &index) {
                        near.insert(j as u32, o);
                    }
                }
            }
            rivals[j].fuzzy = matches!(m, Some((_, MatchedBy::Coupon)));
        }
        let copies = link_copies(&matches, &mut rivals);

        // Attribution contests: order → competing claims, winner first.
        let mut contests: FxHashMap<u32, Vec<u32>> = FxHashMap::default();
        for (j, m) in matches.iter().enumerate() {
            if let Some((oi, _)) = m {
                if rivals[j].competes {
                    contests.entry(*oi).or_default().push(j as u32);
                }
            }
        }
        // An uncontested order needs no list.
        contests.retain(|_, v| v.len() > 1);
        for (&oi, v) in &mut contests {
            let order_created = created[oi as usize];
            for &j in v.iter() {
                let r = &mut rivals[j as usize];
                r.implausible = is_implausible(program, r.at, occurred[j as usize], order_created);
            }
            v.sort_by(|&a, &b| contest_order(program, &rivals, a, b));
        }
        Plan {
            program,
            fx,
            claims,
            orders,
            matches,
            rivals,
            contests,
            near,
            far,
            copies,
            id_ties,
        }
    }

    /// Why the winner `w` beat the loser `l` of a contest.
    fn why_won(&self, w: &Rival, l: &Rival) -> Won {
        if w.fuzzy != l.fuzzy {
            Won::Exact
        } else if w.implausible != l.implausible {
            Won::Plausible
        } else {
            match deciding(self.program, w, l).1 {
                Some(c) => Won::By(c),
                None => Won::ByKey,
            }
        }
    }

    /// Number of claims.
    pub fn len(&self) -> usize {
        self.matches.len()
    }

    /// Whether there are no claims.
    pub fn is_empty(&self) -> bool {
        self.matches.is_empty()
    }

    /// The order claim `j` matched (its position in the orders), if any.
    pub fn matched_order(&self, j: usize) -> Option<u32> {
        self.matches[j].map(|(o, _)| o)
    }

    /// Judges claim `j`.
    pub fn judge(&self, j: usize, now: DateTime<Utc>) -> Decision {
        self.judge_claim(j, &self.claims.get(j), now)
    }

    /// [`Plan::judge`] for a caller that already holds claim `j` (`c`), so
    /// packed inputs are not decoded twice.
    pub fn judge_claim(&self, j: usize, c: &ClaimInput, now: DateTime<Utc>) -> Decision {
        let Some((oi, by)) = self.matches[j] else {
            let near = self
                .near
                .get(&(j as u32))
                .map(|&o| self.orders.get(o as usize));
            let far = self
                .far
                .get(&(j as u32))
                .map(|&(o, by)| (self.orders.get(o as usize), by));
            let miss = Miss {
                near: near.as_deref(),
                far: far.as_ref().map(|(o, by)| (o.as_ref(), *by)),
            };
            return judge(self.program, self.fx, now, c, Err(miss));
        };
        let order = self.orders.get(oi as usize);
        let contest = self.contests.get(&oi).map_or(&[][..], Vec::as_slice);
        if let Some(&k) = self.copies.get(&(j as u32)) {
            // A copy is out of the contest; it names the contest's winner
            // when that is not the claim it copies.
            let original = self.claims.get(k as usize);
            let winner = (contest.first())
                .filter(|&&w| w != k)
                .map(|&w| self.claims.get(w as usize));
            let m = Matched {
                order: &order,
                by,
                contest: 0,
                winner: None,
                runner_up: None,
                copy_of: Some((&original, winner.as_deref())),
                id_tie: self.id_ties.get(&(j as u32)).copied(),
            };
            return judge(self.program, self.fx, now, c, Ok(m));
        }
        // The winner's rival is the runner-up: what set them apart is
        // what the winner's reason names (QA20 F1: it named the rule).
        let (rival, lost) = match *contest {
            [w, ..] if w as usize != j => (w as usize, true),
            [_, r, ..] => (r as usize, false),
            _ => (0, false),
        };
        let other = (contest.len() > 1).then(|| {
            let (w, l) = if lost { (rival, j) } else { (j, rival) };
            (
                self.claims.get(rival),
                self.why_won(&self.rivals[w], &self.rivals[l]),
            )
        });
        let rival = other.as_ref().map(|(c, why)| (c.as_ref(), *why));
        let m = Matched {
            order: &order,
            by,
            contest: contest.len(),
            winner: rival.filter(|_| lost),
            runner_up: rival.filter(|_| !lost),
            copy_of: None,
            id_tie: self.id_ties.get(&(j as u32)).copied(),
        };
        judge(self.program, self.fx, now, c, Ok(m))
    }
}

/// Judges every claim of one program. The result is sorted by claim
/// (source, external id) and independent of input order. `claims` must have
/// unique (source, external id) and `orders` unique (source, order id).
pub fn decide(
    program: &ProgramConfig,
    claims: &[ClaimInput],
    orders: &[OrderInput],
    fx: &FxTable,
    now: DateTime<Utc>,
) -> Vec<Decision> {
    decide_each(program, claims, orders, fx, now, 1, |_, d| d)
}

/// [`decide`], each decision handed to `f` with the claim it judges, on up
/// to `threads` threads (each judging a contiguous run of the claims once
/// the plan is made); `f`'s results in [`decide`]'s order.
pub fn decide_each<R: Send>(
    program: &ProgramConfig,
    claims: &[ClaimInput],
    orders: &[OrderInput],
    fx: &FxTable,
    now: DateTime<Utc>,
    threads: usize,
    f: impl Fn(&ClaimInput, Decision) -> R + Sync,
) -> Vec<R> {
    let mut order_refs: Vec<&OrderInput> = orders.iter().collect();
    order_refs.sort_by(|a, b| {
        (&a.order.source, &a.order.order_id).cmp(&(&b.order.source, &b.order.order_id))
    });
    let mut claim_refs: Vec<&ClaimInput> = claims.iter().collect();
    claim_refs.sort_by(|a, b| {
        (&a.claim.source, &a.claim.external_id).cmp(&(&b.claim.source, &b.claim.external_id))
    });
    let plan = Plan::new(program, fx, &claim_refs[..], &order_refs[..]);
    let judge = |js: std::ops::Range<usize>| -> Vec<R> {
        js.map(|j| f(claim_refs[j], plan.judge_claim(j, claim_refs[j], now)))
            .collect()
    };
    let n = plan.len();
    let chunk = n.div_ceil(threads.max(1)).max(1);
    if chunk >= n {
        return judge(0..n);
    }
    let judge = &judge;
    std::thread::scope(|scope| {
        let parts: Vec<_> = (0..n)
            .step_by(chunk)
            .map(|lo| scope.spawn(move || judge(lo..(lo + chunk).min(n))))
            .collect();
        parts.into_iter().flat_map(joined).collect()
    })
}

/// A claim's matched order, as [`judge`] sees it.
struct Matched<'m> {
    order: &'m OrderInput,
    by: MatchedBy,
    /// Claims competing for the order (0 when uncontested).
    contest: usize,
    /// The contest's winner, when it is another claim, and why it won.
    winner: Option<(&'m ClaimInput, Won)>,
    /// When this claim won a contest: the runner-up, and why this claim
    /// beat it.
    runner_up: Option<(&'m ClaimInput, Won)>,
    /// When this claim is a mirrored copy: the claim it copies, and the
    /// order's winner when that is another claim.
    copy_of: Option<(&'m ClaimInput, Option<&'m ClaimInput>)>,
    /// When several orders share the order id it matched by: how many,
    /// and why this one ([`pick_by_id`]).
    id_tie: Option<IdTie>,
}

/// Why a contest's winner beat a claim.
#[derive(Clone, Copy)]
enum Won {
    /// It names the order (order id or click id); the loser matched only
    /// by coupon.
    Exact,
    /// Its time can be right; the loser's cannot ([`implausible_time`]).
    Plausible,
    /// By this criterion of the attribution rule.
    By(Criterion),
    /// Everything else equal: the smaller (source, claim id).
    ByKey,
}

/// Whose reason a contest's sentence is in.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Side {
    /// The claim that won (its rival is the runner-up).
    Winner,
    /// A claim that lost (its rival is the winner).
    Loser,
}

/// What decided the contest between the winner `w` and the loser `l`, as
/// the end of "wins on …" in the reason of the claim on `side`.
fn won_on(
    program: &ProgramConfig,
    (w, l): (&Conversion, &Conversion),
    created: DateTime<Utc>,
    won: Won,
    side: Side,
) -> String {
    let times = || format!("({} vs {})", contest_time(w), contest_time(l));
    // The click times the rule compares: `source_priority` breaks a tie of
    // ranks on the last click.
    let rule = match program.attribution {
        AttributionRule::FirstClick => "first click",
        AttributionRule::LastClick | AttributionRule::SourcePriority => "last click",
    };
    match won {
        Won::Exact => match side {
            Side::Loser => "naming the order, while this claim matched it only by coupon".to_owned(),
            Side::Winner => "naming the order, while the other matched it only by coupon".to_owned(),
        },
        Won::Plausible => {
            let why = implausible_time(program, l, created).unwrap_or_default();
            match side {
                Side::Loser => format!("a time that can be right, while this claim's {why}"),
                Side::Winner => format!("a time that can be right, while the other's {why}"),
            }
        }
        Won::By(Criterion::LastClick) => format!("last click {}", times()),
        Won::By(Criterion::FirstClick) => format!("first click {}", times()),
        Won::By(Criterion::SourcePriority) => {
            let rank = |s: &str| match program.source_priority.iter().position(|p| p == s) {
                Some(r) => format!("ranks {}", r + 1),
                None => "is not listed".to_owned(),
            };
            let tie = if program.attribution == AttributionRule::SourcePriority {
                String::new()
            } else {
                format!(", the tie-break after equal {rule} times {}", times())
            };
            format!(
                "source priority ({} {} vs {} {}){tie}",
                w.source,
                rank(&w.source),
                l.source,
                rank(&l.source),
            )
        }
        Won::ByKey => format!(
            "claim id, the last tie-break ({rule} times {} and source priority equal; {} network and claim id sort first, as text)",
            times(),
            match side {
                Side::Loser => "its",
                Side::Winner => "this claim's",
            }
        ),
    }
}

/// A claim's time in an attribution contest, as a reason shows it: its
/// click time, or its conversion time said to be one (QA20 F4: it read as
/// a click time).
fn contest_time(c: &Conversion) -> String {
    match c.clicked_at {
        Some(t) => fmt_time(t),
        None => format!(
            "{} (conversion time, no click time)",
            fmt_time(c.occurred_at)
        ),
    }
}

fn inputs(program: &ProgramConfig, tolerance_applied: Option<Decimal>) -> DecisionInputs {
    DecisionInputs {
        attribution: program.attribution.as_str().to_owned(),
        amount_tolerance_abs: program.matching.amount_tolerance_abs,
        amount_tolerance_pct: program.matching.amount_tolerance_pct,
        tolerance_applied,
        return_window_days: program.return_window_days,
        no_order_grace_days: program.no_order_grace_days,
        fuzzy_window_hours: program.matching.fuzzy_window_hours,
        coupon_matching: program.matching.coupon_matching,
        fx_rate_date: None,
        order_fx_rate_date: None,
        order_window_days: Some(program.matching.order_window_days),
        source_priority: Some(program.source_priority.clone()),
        require_network_approval: Some(program.require_network_approval),
    }
}

/// The digits of currency `cur`'s minor unit (2 for a code without one).
fn minor_digits(cur: &str) -> u32 {
    plugin_api::currency::minor_unit_digits(cur).unwrap_or(2)
}

/// An amount of currency `cur` for a sentence: at least the currency's
/// minor-unit digits, and no trailing zeros beyond them (`12345 JPY`,
/// `1.500 KWD`, `60.00 USD`, `170.5082 USD` as a network sent it; QA30-B
/// L3: every amount had two decimals, `2345.00 JPY`, `1.50 KWD`).
fn fmt_amount(d: Decimal, cur: &str) -> String {
    fmt_amount_at(d, minor_digits(cur))
}

/// An amount with at least `digits` decimals, no trailing zeros beyond.
fn fmt_amount_at(d: Decimal, digits: u32) -> String {
    let mut n = d.normalize();
    if n.scale() < digits {
        n.rescale(digits);
    }
    n.to_string()
}

/// A tolerance in a reason: cut (toward zero) to the digits of the amounts
/// it was compared with: the currency's minor unit, or more where an
/// amount has more (a network may send `170.5082`: QA30-D F4 read "within
/// tolerance 1.68" for a difference of 1.6882). A difference is beyond the
/// tolerance exactly when it is beyond the cut figure, and the sentence
/// reads true ("difference 1.69, beyond tolerance 1.68" for 1 % of
/// 168.82; rounding would print 1.69 for both). The comparison itself
/// uses the exact tolerance.
fn fmt_tolerance(tol: Decimal, cur: &str, compared: &[Decimal]) -> String {
    let digits = (compared.iter())
        .map(|a| a.normalize().scale())
        .fold(minor_digits(cur), u32::max);
    fmt_amount_at(
        tol.round_dp_with_strategy(digits, rust_decimal::RoundingStrategy::ToZero),
        digits,
    )
}

/// An amount in the program currency `cur`, converted from `from` at
/// `conv`'s rate: a converted amount names what it was converted from and
/// the `[fx]` row's date ("100.00 USD (92.00 EUR at 1.087 of
/// 2026-10-09)"; QA33-B L1: a Saturday's claim priced with Friday's rate
/// did not say so), and for an inverse the row it inverts ("at
/// 0.920217171252 of 2026-10-09, 1/1.0867 EUR→USD"). The rate keeps its
/// digits as given (`1.10`), as the decision's `fx_rate` and the statement
/// trace do.
fn fmt_shown(amount: Decimal, from: &Money, conv: &Converted, cur: &str) -> String {
    if from.currency == cur {
        return format!("{} {cur}", fmt_amount(amount, cur));
    }
    let mut s = format!(
        "{} {cur} ({} {} at {}",
        fmt_amount(amount, cur),
        fmt_amount(from.amount, &from.currency),
        from.currency,
        conv.rate
    );
    if let Some(row) = conv.row {
        let _ = write!(s, " of {}", row.date);
        if let Some(r) = row.inverse_of {
            let _ = write!(s, ", 1/{r} {cur}→{}", from.currency);
        }
    }
    s.push(')');
    s
}

/// A time in a reason: to the second, with its fractions when it has any
/// (QA30-D F3: a grace period ending 12:00:00.5 read "ends 12:00:00Z",
/// false at 12:00:00.4).
fn fmt_time(t: DateTime<Utc>) -> String {
    t.to_rfc3339_opts(chrono::SecondsFormat::AutoSi, true)
}

/// Judges one claim given its matched order and that order's contest
/// (competing claims, winner first), or, for a claim that matched no
/// order, its coupon near miss if any.
fn judge(
    program: &ProgramConfig,
    fx: &FxTable,
    now: DateTime<Utc>,
    c: &ClaimInput,
    matched: Result<Matched<'_>, Miss<'_>>,
) -> Decision {
    let claim = &c.claim;
    let cur = program.currency.as_str();
    let mut d = Decision {
        program: program.id.clone(),
        claim: record_ref(&claim.source, &claim.external_id, c.revision),
        partner_id: claim.partner_id.clone(),
        partner_name: claim.partner_name.clone(),
        event_type: claim.event_type,
        occurred_at: claim.occurred_at,
        order: None,
        matched_by: None,
        outcome: Outcome::NoOrder,
        payable: false,
        lock_at: claim.locked_at,
        basis: None,
        claimed_amount: claim.sale_amount.clone(),
        order_amount: None,
        refunded_amount: None,
        network_commission: claim.commission.clone(),
        fx_rate: None,
        winner: None,
        reason: String::new(),
        decided_at: now,
        order_fx_rate: None,
        inputs: inputs(program, None),
    };
    if let Ok(Matched { order: o, by, .. }) = &matched {
        let order = &o.order;
        d.order = Some(record_ref(&order.source, &order.order_id, o.revision));
        d.matched_by = Some(*by);
        d.order_amount = Some(order.amount.clone());
        let refunded = order.refunded();
        if refunded != Decimal::ZERO {
            d.refunded_amount = Some(Money::new(refunded, order.amount.currency.clone()));
        }
        if d.lock_at.is_none() {
            d.lock_at = Some(days_after(order.created_at, program.return_window_days));
        }
    }
    let order_name = |o: &OrderInput| format!("{}/{}", o.order.source, o.order.order_id);

    // 1. The network's own status.
    if let Some((outcome, word)) = network_verdict(claim.status) {
        d.outcome = outcome;
        let said = format!("the network {word} the claim");
        d.reason = network_reason(said, claim.status_changed_at, d.lock_at);
        return d;
    }

    // 2. No order.
    let miss = matched.as_ref().err().copied().unwrap_or_default();
    let near = miss.near;
    let Ok(Matched {
        order: o,
        by,
        contest,
        winner,
        runner_up,
        copy_of,
        id_tie,
    }) = matched
    else {
        // An order its id names, too far in time to be its sale: no order,
        // whatever the grace period (waiting will not bring it closer).
        if let Some((fo, by)) = miss.far {
            let created = fo.order.created_at;
            let gap = (claim.occurred_at - created).abs();
            let gap = match gap.num_days() {
                0 | 1 => format!("{} hours", gap.num_hours()),
                days => format!("{days} days"),
            };
            let quoted = match by {
                MatchedBy::ClickId => "click id",
                _ => "order id",
            };
            d.outcome = Outcome::NoOrder;
            d.reason = format!(
                "order {} carries its {quoted} but was created {} ({gap} {} the conversion at {}), more than `order_window_days` ({}) apart: it is not this claim's sale",
                order_name(fo),
                fmt_time(created),
                if created > claim.occurred_at { "after" } else { "before" },
                fmt_time(claim.occurred_at),
                match program.matching.order_window_days {
                    1 => "1 day".to_owned(),
                    n => format!("{n} days"),
                },
            );
            return d;
        }
        let deadline = days_after(claim.occurred_at, program.no_order_grace_days);
        let mut quoted: Vec<String> = Vec::new();
        if let Some(id) = &claim.order_id {
            quoted.push(format!("order id `{}`", id.trim()));
        }
        if let Some(click) = &claim.click_id {
            quoted.push(format!("click id `{}`", click.trim()));
        }
        if program.matching.coupon_matching {
            if let Some(coupon) = &claim.coupon {
                let h = program.matching.fuzzy_window_hours;
                quoted.push(format!(
                    "coupon `{}` (amount within tolerance, created within {h} {})",
                    coupon.trim(),
                    if h == 1 { "hour" } else { "hours" }
                ));
            }
        }
        let (days, at) = (program.no_order_grace_days, fmt_time(deadline));
        let pending = now < deadline;
        d.outcome = if pending {
            Outcome::AwaitingOrder
        } else {
            Outcome::NoOrder
        };
        d.reason = match (quoted.is_empty(), pending) {
            (true, true) => format!(
                "the claim carries no order id or click id to match; the {days}-day grace period ends {at}"
            ),
            (true, false) => format!(
                "the claim carries no order id or click id to match; the {days}-day grace period ended {at}"
            ),
            (false, true) => format!(
                "no order matches {} yet; the {days}-day grace period ends {at}",
                quoted.join(" or ")
            ),
            (false, false) => format!(
                "no order matches {} after the {days}-day grace period (ended {at})",
                quoted.join(" or ")
            ),
        };
        // What was not tried, so nobody looks for a coupon match (QA20 F7).
        if let Some(coupon) = claim.coupon.as_deref().map(str::trim) {
            if !program.matching.coupon_matching && !coupon.is_empty() {
                let _ = write!(
                    d.reason,
                    "; its coupon `{coupon}` was not tried: coupon matching is off in this program"
                );
            }
        }
        // The nearest miss, so it can be checked (QA20 F7).
        if let Some(n) = near {
            let claimed = (claim.sale_amount.as_ref())
                .and_then(|m| Some((m, claimed_against(program, fx, m, claim, &n.order)?)));
            let order_conv = convert(fx, &n.order.amount, cur, program.day(n.order.created_at));
            if let (Some((sale, cc)), Some(oc)) = (claimed, order_conv) {
                let _ = write!(
                    d.reason,
                    "; nearest: order {}/{} with that coupon at {} against the claimed {}, beyond tolerance {}",
                    n.order.source,
                    n.order.order_id,
                    fmt_shown(oc.amount, &n.order.amount, &oc, cur),
                    fmt_shown(cc.amount, sale, &cc, cur),
                    fmt_tolerance(tolerance(program, oc.amount), cur, &[oc.amount, cc.amount])
                );
            }
        }
        return d;
    };
    let order = &o.order;
    // Orders sharing the id: said in every reason of a matched claim.
    let id_note = id_tie.map_or_else(String::new, |tie| {
        let quoted = claim.order_id.as_deref().unwrap_or_default().trim();
        let days = program.matching.order_window_days;
        let why = match tie.why {
            IdWhy::OwnId => "has it as its own id, the others as an alternative id",
            IdWhy::Exact => "has it written as the claim writes it",
            IdWhy::Fit => "fits the claim best, as among orders sharing a click id (amount within tolerance, then closest in time, then closest amount, then earliest created)",
            IdWhy::InWindow => "is the only one created within `order_window_days`",
        };
        let n = tie.orders;
        let mut note =
            format!("; {n} orders carry order id `{quoted}` once trimmed and case-folded: this one {why}");
        if tie.why == IdWhy::InWindow {
            let _ = write!(note, " ({days} days) of the conversion");
        } else if tie.within < n {
            let _ = write!(
                note,
                ", of the {} created within `order_window_days` ({days} days) of the conversion",
                tie.within
            );
        }
        note
    });

    // 3. A mirrored copy: the claim it copies is judged in its place.
    if let Some((original, order_winner)) = copy_of {
        let oc = &original.claim;
        let copy = format!(
            "this postback is a copy of {}/{} (`{}` mirrors `{}`)",
            oc.source, oc.external_id, claim.source, oc.source
        );
        if let Some((outcome, word)) = network_verdict(oc.status) {
            d.outcome = outcome;
            let said = format!("{copy}, which the network {word}");
            d.reason = network_reason(said, oc.status_changed_at, d.lock_at);
            return d;
        }
        let w = order_winner.unwrap_or(original);
        d.outcome = Outcome::Duplicate;
        d.winner = Some(record_ref(
            &w.claim.source,
            &w.claim.external_id,
            w.revision,
        ));
        d.reason = format!("{copy}, which is judged in its place");
        if let Some(w) = order_winner {
            let _ = write!(
                d.reason,
                "; order {} is won by {}/{}",
                order_name(o),
                w.claim.source,
                w.claim.external_id
            );
        }
        return d;
    }

    // 4. Attribution contest.
    if let Some((wi, won)) = winner {
        let w = &wi.claim;
        d.outcome = Outcome::Duplicate;
        d.winner = Some(record_ref(&w.source, &w.external_id, wi.revision));
        d.reason = format!(
            "order {} is also claimed by {}/{}, which wins on {}{id_note}",
            order_name(o),
            w.source,
            w.external_id,
            won_on(program, (w, claim), order.created_at, won, Side::Loser)
        );
        return d;
    }
    let contest_note = match runner_up.filter(|_| contest > 1) {
        None => id_note,
        Some((r, won)) => {
            let on = won_on(
                program,
                (claim, &r.claim),
                order.created_at,
                won,
                Side::Winner,
            );
            match contest - 1 {
                1 => format!("{id_note}; won over 1 other claim on {on}"),
                n => format!("{id_note}; won over {n} other claims, the closest on {on}"),
            }
        }
    };

    // 5. FX.
    let order_day = program.day(order.created_at);
    let order_conv = convert(fx, &order.amount, cur, order_day);
    let claim_conv = match &claim.sale_amount {
        Some(m) => claimed_against(program, fx, m, claim, order).map(Some),
        None => Some(None),
    };
    let (Some(order_conv), Some(claim_conv)) = (order_conv, claim_conv) else {
        let (money, day) = match &claim.sale_amount {
            Some(m)
                if fx
                    .rate(&m.currency, cur, claim_fx_day(program, m, claim, order))
                    .is_none() =>
            {
                (m, claim_fx_day(program, m, claim, order))
            }
            _ => (&order.amount, order_day),
        };
        d.outcome = Outcome::FxMissing;
        d.reason = crate::fx::missing_rate(&money.currency, cur, day, fx.max_age_days());
        return d;
    };
    d.order_fx_rate = Some(order_conv.rate);
    d.fx_rate = claim_conv.as_ref().map(|c| c.rate);
    d.inputs.order_fx_rate_date = order_conv.row.map(|r| r.date);
    d.inputs.fx_rate_date = claim_conv.as_ref().and_then(|c| c.row).map(|r| r.date);

    // 6./7. Refunds.
    let refunded = order.refunded();
    // A 0.00 order with no refund is not "fully refunded".
    let fully = (refunded > Decimal::ZERO && refunded >= order.amount.amount)
        || matches!(order.status, OrderStatus::Refunded | OrderStatus::Cancelled);
    if fully {
        d.outcome = Outcome::Refunded;
        d.reason = if refunded > Decimal::ZERO && refunded >= order.amount.amount {
            format!(
                "order {} was fully refunded ({} {})",
                order_name(o),
                fmt_amount(refunded, &order.amount.currency),
                order.amount.currency
            )
        } else if order.status == OrderStatus::Cancelled {
            format!("order {} was cancelled", order_name(o))
        } else if refunded.is_zero() {
            // QA: "fully refunded (0.00 USD)" for a shop that marks an order
            // refunded without an amount.
            format!(
                "order {} is marked refunded (no refund amount given), so refunded in full",
                order_name(o)
            )
        } else {
            format!(
                "order {} is marked refunded ({} {} of {} {} given as refunds), so refunded in full",
                order_name(o),
                fmt_amount(refunded, &order.amount.currency),
                order.amount.currency,
                fmt_amount(order.amount.amount, &order.amount.currency),
                order.amount.currency
            )
        };
        if d.lock_at.is_some_and(|l| last_refund_at(order) > Some(l)) {
            d.reason.push_str(" after the lock date");
        }
        d.reason.push_str(&contest_note);
        return d;
    }
    let order_p = order_conv.amount;
    if refunded > Decimal::ZERO {
        let net = Money::new(
            order.amount.amount - refunded,
            order.amount.currency.clone(),
        );
        let net_p = convert_with(&net, &order_conv, cur);
        // The basis the claim would have without refunds (its own amount
        // within tolerance, else the order's), less the refunded share:
        // a refund never raises a commission (QA 2026-11-29: a 90.00 claim
        // on a 100.00 order was rescaled up to 95.00 by a 5.00 refund).
        // The tolerance the claimed amount was compared with is recorded,
        // as for an unrefunded order (QA19 NEW-1: it decides the formula).
        let compared = (claim_conv.as_ref())
            .zip(claim.sale_amount.as_ref())
            .map(|(c, sale)| (c, difference(program, sale, c, order, &order_conv)));
        d.inputs.tolerance_applied = compared.map(|(_, (_, tol))| tol);
        let claimed = compared
            .filter(|(c, (diff, tol))| c.amount >= Decimal::ZERO && diff.abs() <= *tol)
            .map(|(c, _)| c.amount);
        let basis = match claimed {
            None => net_p,
            // The share of the claimed amount the refunds left (≤ it),
            // also for a claim of the order's amount: converted, the
            // rounded net can differ from it by a minor unit (QA30-B L2:
            // 55.22 for 110.44 USD × 46.02 ÷ 92.03 EUR = 55.23).
            Some(a) => mul_div(a, net.amount, order.amount.amount)
                .map_or(net_p, |share| round_money(share, cur)),
        };
        // A claim of the order's amount whose share is the net says so.
        let claimed = claimed.filter(|a| *a != order_p || basis != net_p);
        d.outcome = Outcome::PartiallyRefunded;
        let after_lock = if d.lock_at.is_some_and(|l| last_refund_at(order) > Some(l)) {
            " after the lock date"
        } else {
            ""
        };
        d.reason = match claimed {
            None => format!(
                "order {} was partly refunded ({} of {}){after_lock}; basis is the net {} {cur}{contest_note}",
                order_name(o),
                fmt_amount(refunded, &order.amount.currency),
                order.amount,
                fmt_amount(basis, cur)
            ),
            Some(a) => format!(
                "order {} was partly refunded ({} of {}){after_lock}; basis is the claimed {} {cur} less the refunded share, {} {cur}{contest_note}",
                order_name(o),
                fmt_amount(refunded, &order.amount.currency),
                order.amount,
                fmt_amount(a, cur),
                fmt_amount(basis, cur)
            ),
        };
        d.basis = Some(Money::new(basis, cur));
        settle(program, claim, now, &mut d);
        return d;
    }

    // 8./9. Amounts. A converted amount names what it was converted from
    // (QA20 F7: "claimed 100.00 USD" for a 92.00 EUR claim).
    let shown =
        |amount: Decimal, from: &Money, conv: &Converted| fmt_shown(amount, from, conv, cur);
    let order_shown = shown(order_p, &order.amount, &order_conv);
    match (claim_conv, &claim.sale_amount) {
        (Some(claimed), Some(sale)) => {
            let (diff, tol) = difference(program, sale, &claimed, order, &order_conv);
            d.inputs.tolerance_applied = Some(tol);
            let claimed_shown = shown(claimed.amount, sale, &claimed);
            if claimed.amount < Decimal::ZERO {
                // A network's price adjustment (CAKE's negative `received`)
                // never becomes a negative basis.
                d.outcome = Outcome::AmountMismatch;
                d.basis = Some(Money::new(order_p, cur));
                d.reason = format!(
                    "claimed a negative amount {claimed_shown} against order {} of {order_shown}; basis is the order amount{contest_note}",
                    order_name(o)
                );
            } else if diff.abs() > tol {
                d.outcome = Outcome::AmountMismatch;
                d.basis = Some(Money::new(order_p, cur));
                let side = if diff > Decimal::ZERO {
                    "over"
                } else {
                    "under"
                };
                // Compared in the claim's and order's own currency: said in it.
                let apart = if sale.currency == order.amount.currency && sale.currency != cur {
                    let c = &sale.currency;
                    format!(
                        "difference {} {c} {side}, beyond tolerance {} {c}",
                        fmt_amount((sale.amount - order.amount.amount).abs(), c),
                        fmt_tolerance(
                            tol / order_conv.rate,
                            c,
                            &[sale.amount, order.amount.amount]
                        )
                    )
                } else {
                    format!(
                        "difference {} {side}, beyond tolerance {}",
                        fmt_amount(diff.abs(), cur),
                        fmt_tolerance(tol, cur, &[claimed.amount, order_p])
                    )
                };
                d.reason = format!(
                    "claimed {claimed_shown} but order {} is {order_shown} ({apart}); basis is the order amount{contest_note}",
                    order_name(o)
                );
            } else {
                d.outcome = Outcome::Matched;
                d.basis = Some(Money::new(claimed.amount, cur));
                // Compared in the shared currency: its tolerance in it
                // (QA27 N2: "within tolerance 1.65" for 1.66 apart once
                // each side was rounded to cents).
                let within = if sale.currency == order.amount.currency && sale.currency != cur {
                    let c = &sale.currency;
                    format!(
                        "{} {c}",
                        fmt_tolerance(
                            tol / order_conv.rate,
                            c,
                            &[sale.amount, order.amount.amount]
                        )
                    )
                } else {
                    fmt_tolerance(tol, cur, &[claimed.amount, order_p])
                };
                d.reason = format!(
                    "matched order {} by {}; claimed {claimed_shown} vs order {order_shown} within tolerance {within}{contest_note}",
                    order_name(o),
                    by.as_str().replace('_', " "),
                );
            }
        }
        _ => {
            d.outcome = Outcome::Matched;
            d.basis = Some(Money::new(order_p, cur));
            d.reason = format!(
                "matched order {} by {}; the claim has no amount, basis is the order amount {order_shown}{contest_note}",
                order_name(o),
                by.as_str().replace('_', " "),
            );
        }
    }
    settle(program, claim, now, &mut d);
    d
}

/// An earning decision is payable once its lock date has passed, and, when
/// the program requires it, the network has approved the claim. Its reason
/// says when the network's event type and the order disagree
/// ([`event_conflict`]).
fn settle(program: &ProgramConfig, claim: &Conversion, now: DateTime<Utc>, d: &mut Decision) {
    if let (true, Some(o), Some(m)) = (event_conflict(d), &d.order, &d.order_amount) {
        let word = d.event_type.as_str();
        let order_is = match d.event_type {
            EventType::Sale => "as a lead or signup has",
            _ => "as a sale has",
        };
        let note = format!(
            "; the network reports a {word}, but order {}/{} has an amount of {} {}, {order_is}: \
             the {word} commission rules price it; check the event with the network",
            o.source,
            o.id,
            fmt_amount(m.amount, &m.currency),
            m.currency
        );
        d.reason.push_str(&note);
    }
    let locked = d.lock_at.is_some_and(|l| now >= l);
    d.payable = locked && !awaits_network_approval(program, claim);
    if locked && !d.payable {
        d.reason.push_str(
            "; not payable while the network has the claim pending (require_network_approval)",
        );
    }
}

/// True when an earning decision's order disagrees with the network's event
/// type (QA38a A-M2). Leads and signups are recorded as orders of amount
/// 0.00 (README, "Leads and signups are judged like sales"), so a lead or
/// signup matched to an order with an amount is a sale the network calls a
/// lead, and a sale matched to an order of 0.00 is a lead it calls a sale.
/// The commission rule is still chosen by the network's event type; the
/// reason says so and the report lists the claim.
pub fn event_conflict(d: &Decision) -> bool {
    let earning = matches!(
        d.outcome,
        Outcome::Matched | Outcome::AmountMismatch | Outcome::PartiallyRefunded
    );
    let Some(order) = d.order_amount.as_ref().filter(|_| earning) else {
        return false;
    };
    match d.event_type {
        EventType::Lead | EventType::Signup => order.amount > Decimal::ZERO,
        EventType::Sale => order.amount.is_zero(),
        EventType::Install | EventType::Other => false,
    }
}

/// True when the program pays only network-approved claims and this one
/// is still pending at its network.
pub fn awaits_network_approval(program: &ProgramConfig, claim: &Conversion) -> bool {
    program.require_network_approval && claim.status == ConversionStatus::Pending
}

fn convert_with(m: &Money, conv: &Converted, to: &str) -> Decimal {
    if conv.rate == Decimal::ONE {
        m.amount
    } else {
        round_money(m.amount * conv.rate, to)
    }
}

fn last_refund_at(o: &Order) -> Option<DateTime<Utc>> {
    o.refunds.iter().map(|r| r.at).max()
}

/// When a decision may change with time alone (no new data): the end of the
/// grace period for `awaiting_order`, the lock date for an earning decision
/// not yet payable (unless only the network's approval holds it: that
/// comes with a sync). Incremental runs re-judge such claims once it passes.
pub fn next_change_at(
    program: &ProgramConfig,
    d: &Decision,
    claim: &Conversion,
) -> Option<DateTime<Utc>> {
    match d.outcome {
        Outcome::AwaitingOrder => Some(days_after(d.occurred_at, program.no_order_grace_days)),
        o if o.earns() && !d.payable => d
            .lock_at
            .filter(|l| *l > d.decided_at || !awaits_network_approval(program, claim)),
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::reconcile::synth::{self, SplitMix64, SynthSpec};

    /// QA24 F8: a claim of 999,999,999,999,990 on a partly refunded order
    /// of 999,999,999,999,999 multiplied two amounts past `Decimal`'s range.
    #[test]
    fn a_refunded_share_of_huge_amounts_does_not_overflow() {
        let d = |s: &str| s.parse::<Decimal>().expect("decimal");
        let got = round_money(
            mul_div(
                d("999999999999990.00"),
                d("999999999999998.00"),
                d("999999999999999.00"),
            )
            .expect("in range"),
            "USD",
        );
        assert_eq!(got, d("999999999999989.00"));
        // Ordinary amounts take the exact path: 90.00 × 95 / 100.
        assert_eq!(
            mul_div(d("90.00"), d("95.00"), d("100.00")),
            Some(d("85.5"))
        );
    }

    /// `decide_each` hands each claim its own decision, in `decide`'s
    /// order, whatever the thread count (the incremental run judges on
    /// several) and the input order.
    #[test]
    fn decide_each_judges_the_same_on_any_number_of_threads() {
        let data = synth::generate(&SynthSpec::benchmark(2_000, 3));
        let program: ProgramConfig = toml::from_str(
            "id = \"p\"\ncurrency = \"USD\"\nclaims = [\"impact\", \"everflow\", \"awin\"]\norders = [\"shop\"]\n",
        )
        .unwrap();
        let (fx, now) = (
            FxTable::empty(),
            SynthSpec::benchmark(2_000, 3).settled_now(),
        );
        let mut claims: Vec<ClaimInput> = (data.claims.iter())
            .map(|c| ClaimInput {
                claim: c.clone(),
                revision: 1,
            })
            .collect();
        let orders: Vec<OrderInput> = (data.orders.iter())
            .map(|o| OrderInput {
                order: o.clone(),
                revision: 1,
            })
            .collect();
        let want = decide(&program, &claims, &orders, &fx, now);
        assert!(want.iter().filter(|d| d.payable).count() > 100);
        claims.reverse();
        for threads in [1, 2, 3, 7] {
            let got = decide_each(&program, &claims, &orders, &fx, now, threads, |c, d| {
                assert_eq!(c.claim.external_id, d.claim.id);
                d
            });
            assert_eq!(got, want, "{threads} threads");
        }
    }

    /// `decide`'s bulk order-id rule (the join) and `match_claim`'s
    /// (`OrderIndex`) pick the same order for every claim, whatever the
    /// thread count: alt ids that repeat other orders' primary ids (primary
    /// wins), alt ids shared by several orders (position wins), ids differing
    /// in case and spaces, non-ASCII, long, empty and missing ids.
    #[test]
    fn bulk_order_id_matching_agrees_with_the_order_index() {
        let data = synth::generate(&SynthSpec::benchmark(3_000, 11));
        let mut rng = SplitMix64(5);
        let mut orders = data.orders.clone();
        let n = orders.len();
        for (i, o) in orders.iter_mut().enumerate() {
            match rng.below(10) {
                0 => o.alt_ids.push(synth::order_id((i + 1) % n).to_lowercase()),
                1 => o.alt_ids.push(format!(" ALT-{} ", i % 50)),
                2 => o
                    .alt_ids
                    .push(format!("Ålt-Ünïcode-{}-and-a-long-tail", i % 70)),
                3 => o.alt_ids.extend(["".to_owned(), "  ".to_owned()]),
                4 => o.order_id = format!("Ördér-{i}"),
                _ => {}
            }
        }
        let mut claims: Vec<ClaimInput> = data
            .claims
            .iter()
            .map(|c| ClaimInput {
                claim: c.clone(),
                revision: 1,
            })
            .collect();
        for c in claims.iter_mut() {
            let i = rng.below(n as u64) as usize;
            c.claim.order_id = match rng.below(10) {
                0 => None,
                1 => Some(" ".to_owned()),
                2 => Some(format!("alt-{}", i % 60)),
                3 => Some(format!("ÅLT-ÜNÏCODE-{}-AND-A-LONG-TAIL", i % 80)),
                4 => Some(format!(" ördér-{i}")),
                5 => Some(synth::quoted_order_id(i, rng.next_u64())),
                _ => c.claim.order_id.take(),
            };
        }
        let order_refs: Vec<&Order> = orders.iter().collect();
        let claim_refs: Vec<&ClaimInput> = claims.iter().collect();
        let index = OrderIndex::build(&order_refs, false);
        let mut buf = String::new();
        let want: Vec<Option<u32>> = claim_refs
            .iter()
            .map(|c| {
                normalize_into(c.claim.order_id.as_deref()?, &mut buf);
                index.by_order_id(&buf)
            })
            .collect();
        assert!(want.iter().flatten().count() > claims.len() / 2);
        let mut ids = OrderIds::default();
        for o in &order_refs {
            ids.push(o);
        }
        let mut quoted = Texts::default();
        for c in &claim_refs {
            quoted.push(c.claim.order_id.as_deref());
        }
        for threads in [1, 2, 3] {
            assert_eq!(ids.join(&quoted, threads), want, "{threads} threads");
        }
        // Where orders share an id, rule 1 picks among them (QA30-D F1)
        // the same way in bulk (`Plan`, a full run) and per claim
        // (`match_claim`, the incremental run's contest orders).
        let program: ProgramConfig =
            toml::from_str("id = \"p\"\ncurrency = \"USD\"\nclaims = [\"x\"]\norders = [\"y\"]\n")
                .unwrap();
        let fx = FxTable::empty();
        let mut sorted: Vec<&Order> = order_refs.clone();
        sorted.sort_by(|a, b| (&a.source, &a.order_id).cmp(&(&b.source, &b.order_id)));
        let order_inputs: Vec<OrderInput> = (sorted.iter())
            .map(|o| OrderInput {
                order: (*o).clone(),
                revision: 1,
            })
            .collect();
        let order_in: Vec<&OrderInput> = order_inputs.iter().collect();
        let mut claim_refs = claim_refs;
        claim_refs.sort_by(|a, b| {
            (&a.claim.source, &a.claim.external_id).cmp(&(&b.claim.source, &b.claim.external_id))
        });
        let plan = Plan::new(&program, &fx, &claim_refs[..], &order_in[..]);
        let index = OrderIndex::build(&sorted, false);
        let mut tied = 0;
        for (j, c) in claim_refs.iter().enumerate() {
            let one = match_claim(&program, &fx, &c.claim, &sorted, &index, &mut buf);
            assert_eq!(plan.matches[j], one, "claim {j}: {:?}", c.claim.order_id);
            tied += usize::from(plan.id_ties.contains_key(&(j as u32)));
        }
        assert!(
            tied > 100,
            "{tied} claims matched among orders sharing an id"
        );
    }

    /// QA33-B L1: a converted amount names the date of its `[fx]` row; an
    /// inverse names the row it inverts; the decision records both dates.
    #[test]
    fn a_converted_amount_names_its_rate_row_and_an_inverse_the_row_inverted() {
        let t = |s: &str| s.parse::<DateTime<Utc>>().unwrap();
        let usd = |a: &str| Money::new(a.parse::<Decimal>().unwrap(), "USD");
        let program: ProgramConfig = toml::from_str(
            "id = \"p\"\ncurrency = \"EUR\"\nclaims = [\"net\"]\norders = [\"shop\"]\n",
        )
        .unwrap();
        // Friday's EUR→USD row only; the claim is on Saturday.
        let fx = FxTable::from_rates(
            vec![(
                "2026-10-09".parse().unwrap(),
                "EUR".to_owned(),
                "USD".to_owned(),
                "1.0867".parse().unwrap(),
            )],
            3,
        );
        let claim = Conversion {
            source: "net".into(),
            external_id: "c1".into(),
            order_id: Some("O-1".into()),
            click_id: None,
            clicked_at: None,
            partner_id: "p1".into(),
            partner_name: None,
            campaign_id: None,
            event_type: plugin_api::EventType::Sale,
            occurred_at: t("2026-10-10T12:00:00Z"),
            sale_amount: Some(usd("100.00")),
            commission: None,
            status: ConversionStatus::Approved,
            status_changed_at: None,
            locked_at: None,
            coupon: None,
            utm: plugin_api::Utm::default(),
        };
        let order = Order {
            source: "shop".into(),
            order_id: "O-1".into(),
            alt_ids: vec![],
            created_at: t("2026-10-10T11:00:00Z"),
            amount: usd("100.00"),
            customer_id: None,
            new_customer: None,
            coupon: None,
            click_ids: vec![],
            utm: plugin_api::Utm::default(),
            refunds: vec![],
            status: OrderStatus::Paid,
        };
        let d = decide(
            &program,
            &[ClaimInput { claim, revision: 1 }],
            &[OrderInput { order, revision: 1 }],
            &fx,
            t("2026-12-01T00:00:00Z"),
        )
        .remove(0);
        assert_eq!(d.outcome, Outcome::Matched, "{}", d.reason);
        let shown = "92.02 EUR (100.00 USD at 0.920217171252 of 2026-10-09, 1/1.0867 EUR→USD)";
        assert!(
            d.reason
                .contains(&format!("claimed {shown} vs order {shown}")),
            "{}",
            d.reason
        );
        let friday = Some("2026-10-09".parse().unwrap());
        assert_eq!(d.inputs.fx_rate_date, friday);
        assert_eq!(d.inputs.order_fx_rate_date, friday);
    }
}
