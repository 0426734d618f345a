//! Building statements from reconciled decisions: which claims belong to a
//! period, pricing each line, adjustments, bonuses, caps, carry-forward.
//!
//! Pure: the inputs are the program's decisions, its config, an FX source and
//! the program's payout history (what finalised statements already paid);
//! the output is one [`Statement`] per partner. Writing files and recording
//! history is [`super::lifecycle`].
//!
//! Which claims a period pays (the "exactly once" rule): a statement for
//! period P contains every claim that is payable now, whose conversion date
//! (in the program timezone) is before the end of P, and that no finalised
//! statement has paid yet. A claim not yet payable when P is generated rolls
//! into the first later period generated after it becomes payable. Once a
//! claim is on a finalised statement it is in the history and is never a new
//! line again; later changes to it become adjustment lines.
//!
//! One change is not an adjustment of the partner paid: the network crediting
//! a paid claim to another partner (a *moved* claim, same claim id). The
//! partner paid gets an adjustment taking back everything it was paid for
//! the claim, and the new partner is paid the claim as a new line (priced by
//! its rules, dated as converted); finalising that line makes it the claim's
//! entry in the ledger, so later refunds and reversals are taken from the
//! new partner. See [`payees_of`]. The first partner's statement that paid
//! the claim keeps it in its volume for good (its line is *released*, not
//! forgotten: [`History::released`]), so the tier its other lines lost with
//! the take-back is never paid back.
//!
//! Bonuses follow a paid statement's volume like its tiers: when repricing
//! a finalised statement changes its volume, the bonuses it reaches are
//! judged again and the difference from what it was credited for them is a
//! bonus adjustment (see [`bonus_adjustments`]).

use super::config::{CommissionConfig, TierMode};
use super::model::*;
use super::period::Period;
use super::rules::{self, Pricing};
use crate::reconcile::model::{Decision, Outcome};
use chrono::NaiveDate;
use plugin_api::currency::at_minor_scale;
use plugin_api::Money;
use rust_decimal::Decimal;
use std::collections::{BTreeMap, BTreeSet, HashMap, HashSet};

/// A source of exchange rates (the daemon's [`crate::fx::FxTable`]; tests
/// use a map).
pub trait FxRates {
    /// The rate converting 1 `base` into `quote` on `date`.
    fn rate(&self, base: &str, quote: &str, date: NaiveDate) -> Option<Decimal>;
    /// How many days before `date` a rate may be dated (`[fx]
    /// max_age_days`); 0 when only the day's own rate counts.
    fn max_age_days(&self) -> u32 {
        0
    }
    /// [`FxRates::rate`] with the date of the row it came from (none for
    /// one currency): by default the date asked for.
    fn rate_with_date(
        &self,
        base: &str,
        quote: &str,
        date: NaiveDate,
    ) -> Option<(Decimal, Option<NaiveDate>)> {
        self.rate(base, quote, date)
            .map(|r| (r, (base != quote).then_some(date)))
    }
}

/// The date of the `[fx]` row that gives `shown`, the rate a statement
/// prints for `base` → `quote` on `date` (format 14, QA34c M2): none when
/// no rate is shown, the currencies are one, or the table gives another
/// rate for that date now (a bonus keeps the rate it was paid at).
fn rate_date(
    fx: &dyn FxRates,
    base: &str,
    quote: &str,
    date: NaiveDate,
    shown: Option<Decimal>,
) -> Option<NaiveDate> {
    let shown = shown?;
    match fx.rate_with_date(base, quote, date)? {
        (r, row) if r == shown => row,
        _ => None,
    }
}

impl FxRates for crate::fx::FxTable {
    fn rate(&self, base: &str, quote: &str, date: NaiveDate) -> Option<Decimal> {
        crate::fx::FxTable::rate(self, base, quote, date)
    }
    fn rate_with_date(
        &self,
        base: &str,
        quote: &str,
        date: NaiveDate,
    ) -> Option<(Decimal, Option<NaiveDate>)> {
        self.found_rate(base, quote, date)
            .map(|f| (f.rate, f.row.map(|r| r.date)))
    }
    fn max_age_days(&self) -> u32 {
        crate::fx::FxTable::max_age_days(self)
    }
}

/// Whether a percentage (or tiers) of `amount` in `from` asks `[fx]` for
/// a rate into the payout currency `to`: not when the amount is 0.00 in
/// another currency, as it is 0.00 at any rate. Such a line or bonus shows
/// no rate and no rate date, is never held back for want of one, and a
/// rate added to `[fx]` later changes nothing of it (a percent bonus on a
/// volume of 0.00, QA39b B-L1; a percent line on a basis of 0.00, QA41
/// A-L1). A flat amount asks no rate anyway (it is in the payout
/// currency); one currency keeps its rate 1.
fn asks_rate(amount: Decimal, from: &str, to: &str) -> bool {
    !amount.is_zero() || from == to
}

/// What statements say of a missing exchange rate, in reconciliation's
/// words (QA33b L2: statements said "no FX rate JPY→USD for 2026-10-20;
/// add it to the rates table", reconciliation "no USD→JPY rate for
/// 2026-10-21 or the 3 days before; add it to [fx]"): `no EUR→USD rate for
/// 2026-10-20 or the 3 days before; add it to [fx]`.
pub fn missing_rate(fx: &dyn FxRates, base: &str, quote: &str, date: NaiveDate) -> String {
    crate::fx::missing_rate(base, quote, date, fx.max_age_days())
}

/// Rates from a map `(base, quote, date) → rate`; same currency is 1.
impl FxRates for BTreeMap<(String, String, NaiveDate), Decimal> {
    fn rate(&self, base: &str, quote: &str, date: NaiveDate) -> Option<Decimal> {
        if base == quote {
            return Some(Decimal::ONE);
        }
        self.get(&(base.to_string(), quote.to_string(), date))
            .copied()
    }
}

/// What earlier finalised statements of the program paid.
#[derive(Debug, Clone, Default)]
pub struct History {
    /// Claims paid, by (network, claim id).
    pub paid: HashMap<(String, String), PaidClaim>,
    /// Balance carried out of each payee's latest finalised statement, by
    /// payee key ([`payee_key`]).
    pub balances: HashMap<String, Decimal>,
    /// Payees whose balance is stored under a format-1 key (the bare
    /// partner id): payee key → that stored id. Finalising replaces it.
    pub legacy_balances: HashMap<String, String>,
    /// Things the operator should know about the history.
    pub warnings: Vec<String>,
    /// Bonuses of finalised statements (the bonus ledger), by statement id,
    /// then bonus id.
    pub bonuses: HashMap<String, BTreeMap<String, PaidBonus>>,
    /// The store had no bonus ledger (its periods were finalised before
    /// there was one): `bonuses` was derived from the finalised statements,
    /// and the next run records it.
    pub bonus_ledger_derived: bool,
    /// Lines of finalised statements that the ledger of paid claims no
    /// longer holds for them (the released-lines ledger), by statement id,
    /// then (network, claim id): claims the network moved to another
    /// partner, whose entry left `paid` when the payment was taken back or
    /// was replaced by the new partner's line. Each stays part of the
    /// volume its statement's other lines were paid on, so repricing that
    /// statement does not change with the ledger (see [`reprice`]).
    pub released: HashMap<String, BTreeMap<(String, String), PaidClaim>>,
    /// The store had no released-lines ledger (its periods were finalised
    /// before there was one): `released` was derived from the finalised
    /// statements, and the next run records it.
    pub released_ledger_derived: bool,
    /// How many finalised periods the ledgers above were derived from (0
    /// for a program with none yet: its ledgers just start).
    pub ledgers_derived_from: usize,
    /// The settled ledger, by statement id: the inputs of a finalised
    /// statement's lines when a later finalised statement last repriced it
    /// and applied every target of its lines in full (see [`reprice`]).
    /// Stores finalised before it existed have none; nothing is derived.
    pub settled: HashMap<String, SettledStatement>,
    /// Bonuses a finalised statement reached but left out (no FX rate for
    /// its last day: its period's `held_back.csv`), by
    /// [`held_back_key`], then bonus id. A later run pays them once it can
    /// ([`bonus_adjustments`]), the volume changed or not.
    pub held_back_bonuses: HashMap<String, BTreeSet<String>>,
    /// When each finalised period closed early (`--early`) was closed, by
    /// period name: its percent bonuses are priced at the FX rate of that
    /// day ([`bonus_rate_day`]), and judged again at it.
    pub closed_early: HashMap<String, chrono::DateTime<chrono::Utc>>,
}

/// A finalised statement as [`reprice`] priced it again: the inputs of its
/// lines now, and whether every line could be priced. Finalising records
/// it in the settled ledger when every target was applied in full
/// ([`build_partner`] checks the increases that wait).
#[derive(Debug, Clone, PartialEq)]
pub struct Settlement {
    /// The statement repriced.
    pub statement_id: String,
    /// Every line could be priced (no adjustment waits for a rule or a
    /// rate).
    pub complete: bool,
    /// Its lines' inputs now.
    pub record: SettledStatement,
}

/// Everything a statement computation needs besides the decisions.
#[derive(Debug, Clone, Copy)]
pub struct Context<'a> {
    /// Program id.
    pub program: &'a str,
    /// Its commission config (validated).
    pub config: &'a CommissionConfig,
    /// The period.
    pub period: Period,
    /// Draft or finalised.
    pub status: Status,
    /// The version to stamp on the statements.
    pub version: u32,
    /// When the decisions were judged (the run's now: statements reconcile
    /// first), to tell a claim waiting for its lock date from one waiting
    /// for the network's approval; none: each decision's `decided_at`
    /// tells what it can.
    pub judged_at: Option<chrono::DateTime<chrono::Utc>>,
    /// When a period finalised early (`--early`) was closed: claims
    /// converted after it are the next statement's, as the statement says
    /// (QA39b B-M1: they were lines of the statement closed before them).
    pub closed_early_at: Option<chrono::DateTime<chrono::Utc>>,
}

/// A claim left out of a statement, and why (it stays unpaid and is taken
/// up by a later period once the cause is fixed).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Skipped {
    /// Partner.
    pub partner_id: String,
    /// `network/claim id`.
    pub claim: String,
    /// The cause and what to do.
    pub reason: String,
    /// Not a claim held back but an adjustment that waits: a line or bonus
    /// already paid stays as credited until it can be priced again (no
    /// rule in force, no FX rate). Listed in `held_back.csv` with kind
    /// `adjustment_waits` (format 13 on).
    pub waits: bool,
}

/// The program-wide facts every partner's statement shares.
#[derive(Debug, Clone, Default)]
pub struct ProgramFacts {
    /// The program currency (of the commission bases), if any basis exists.
    pub volume_currency: Option<String>,
    /// Claims of the program with no exchange rate into the program
    /// currency (`fx_missing`): on no statement until `[fx]` has the rate.
    pub fx_missing: u64,
    /// The earliest of them: its claim and the decision's reason.
    pub fx_missing_first: Option<String>,
}

impl ProgramFacts {
    /// Derives the program currency: the most common currency of the
    /// decisions' bases (ties: the alphabetically first code).
    pub fn of(decisions: &[Decision]) -> ProgramFacts {
        let mut count = FactsCount::default();
        decisions.iter().for_each(|d| count.add(d));
        count.facts()
    }
}

/// [`ProgramFacts::of`] over decisions seen one at a time.
#[derive(Debug, Default)]
pub struct FactsCount {
    bases: BTreeMap<String, usize>,
    fx_missing: u64,
    fx_missing_first: Option<(chrono::DateTime<chrono::Utc>, String)>,
}

impl FactsCount {
    /// Counts one decision.
    pub fn add(&mut self, d: &Decision) {
        if d.outcome == Outcome::FxMissing {
            self.fx_missing += 1;
            if self
                .fx_missing_first
                .as_ref()
                .is_none_or(|(at, _)| d.occurred_at < *at)
            {
                let what = format!("{}/{}: {}", d.claim.source, d.claim.id, d.reason);
                self.fx_missing_first = Some((d.occurred_at, what));
            }
        }
        if let Some(b) = &d.basis {
            match self.bases.get_mut(b.currency.as_str()) {
                Some(n) => *n += 1,
                None => {
                    self.bases.insert(b.currency.clone(), 1);
                }
            }
        }
    }
    /// The facts of the decisions counted.
    pub fn facts(&self) -> ProgramFacts {
        let mut best: Option<(&str, usize)> = None;
        for (c, &n) in &self.bases {
            if best.is_none_or(|(_, m)| n > m) {
                best = Some((c, n));
            }
        }
        ProgramFacts {
            volume_currency: best.map(|(c, _)| c.to_string()),
            fx_missing: self.fx_missing,
            fx_missing_first: self.fx_missing_first.as_ref().map(|(_, w)| w.clone()),
        }
    }
}

/// Sort key of a decision within a statement: date, time, network, claim id.
fn order_key(d: &Decision, tz: chrono_tz::Tz) -> (NaiveDate, i64, &str, &str) {
    (
        local_date(d, tz),
        d.occurred_at.timestamp_micros(),
        d.claim.source.as_str(),
        d.claim.id.as_str(),
    )
}

/// Whether claim `d` was converted after its period was closed early
/// ([`Context::closed_early_at`]): the next statement's.
fn after_close(cx: &Context<'_>, d: &Decision) -> bool {
    cx.closed_early_at.is_some_and(|at| d.occurred_at > at)
}

fn local_date(d: &Decision, tz: chrono_tz::Tz) -> NaiveDate {
    d.occurred_at.with_timezone(&tz).date_naive()
}

/// Sorts one partner's decisions into line order: local date, time,
/// network, claim id.
pub fn sort_for_statement(v: &mut [&Decision], tz: chrono_tz::Tz) {
    v.sort_by(|a, b| order_key(a, tz).cmp(&order_key(b, tz)));
}

/// Groups decisions by the payees whose statements read them
/// ([`payees_of`]): payees in key order, decisions in line order. A claim
/// the network moved to another partner after it was paid is in two
/// groups: the partner that was paid (which takes the payment back) and
/// the partner it belongs to now (which is paid it as a new line).
///
/// `standing` are payees with a statement whatever their decisions
/// ([`standing_payees`]): an empty group each when they have none.
pub fn group_by_partner<'d>(
    decisions: &'d [Decision],
    history: &History,
    tz: chrono_tz::Tz,
    standing: BTreeSet<String>,
) -> BTreeMap<String, Vec<&'d Decision>> {
    let mut by: BTreeMap<String, Vec<&Decision>> = BTreeMap::new();
    for d in decisions {
        let (paid_to, moved_to) = payees_of(d, history);
        by.entry(paid_to).or_default().push(d);
        if let Some(now) = moved_to {
            by.entry(now).or_default().push(d);
        }
    }
    for v in by.values_mut() {
        sort_for_statement(v, tz);
    }
    for partner in standing {
        by.entry(partner).or_default();
    }
    by
}

/// The payees a statement of `period` is built for whatever their
/// decisions: those with a balance carried in, and those a manual
/// adjustment of the period pays (QA34c M4: a payee with nothing else in
/// the period is still paid it). [`build_partner`] returns none for a
/// payee with nothing to state.
pub fn standing_payees(
    history: &History,
    config: &CommissionConfig,
    period: &Period,
) -> BTreeSet<String> {
    (history.balances.keys().cloned())
        .chain(
            config
                .manual_adjustments_of(period)
                .map(|m| m.partner.clone()),
        )
        .collect()
}

/// The claim's entry in the ledger of paid claims, if a finalised
/// statement paid it.
pub fn paid_entry<'h>(d: &Decision, history: &'h History) -> Option<&'h PaidClaim> {
    if history.paid.is_empty() {
        None
    } else {
        history
            .paid
            .get(&(d.claim.source.clone(), d.claim.id.clone()))
    }
}

/// The payees ([`payee_key`]) whose statements read a decision: first the
/// partner a finalised statement paid (claims in the history), else the
/// decision's partner; second, for a paid claim the network has since
/// credited to another partner (a *moved* claim), that partner when the
/// claim is payable. The first takes back what it was paid
/// ([`build_partner`] writes an adjustment); the second is paid the claim
/// as a new line, priced by its own rules.
pub fn payees_of(d: &Decision, history: &History) -> (String, Option<String>) {
    match paid_entry(d, history) {
        Some(p) if p.partner_id != d.partner_id => (
            payee_key(&d.claim.source, &p.partner_id),
            d.payable.then(|| payee_key(&d.claim.source, &d.partner_id)),
        ),
        Some(p) => (payee_key(&d.claim.source, &p.partner_id), None),
        None => (payee_key(&d.claim.source, &d.partner_id), None),
    }
}

/// Whether a statement of `period` reads the decision at all: a claim
/// already paid (it may need an adjustment), one payable now and dated
/// before the period's end, (format 14) one dated in the period, which
/// the statement lists as not paid when it does not pay it, or one dated
/// before it and not decided yet ([`undecided`]), which it lists too. [`build_partner`]
/// passes over every other decision, so leaving them out changes nothing.
pub fn concerns(d: &Decision, history: &History, period: &Period, tz: chrono_tz::Tz) -> bool {
    let date = local_date(d, tz);
    (date < period.end && (d.payable || date >= period.start || undecided(d)))
        || (!history.paid.is_empty()
            && history
                .paid
                .contains_key(&(d.claim.source.clone(), d.claim.id.clone())))
}

struct Candidate<'d> {
    d: &'d Decision,
    date: NaiveDate,
    resolved: rules::Resolved<'d>,
    fx: Option<Decimal>,
    /// The date of the `[fx]` row behind `fx`.
    fx_date: Option<NaiveDate>,
}

/// Builds the statement of one payee (a [`payee_key`]) from its decisions
/// (sorted as by [`group_by_partner`]). Returns `None` when there is
/// nothing to state (no line, no adjustment, no manual adjustment, no
/// balance).
///
/// A claim in the ledger is adjusted here only if the ledger says this payee
/// was paid it; if the decision now names another partner, the adjustment
/// takes back everything paid. A claim the ledger says another partner was
/// paid is here because the network moved it to this payee: it is priced
/// as a new line.
///
/// `settlements` gets each earlier statement repriced whose every line
/// could be priced and whose increases none wait (finalising records them
/// in the settled ledger).
// `skipped` and `settlements` are the two outputs besides the statement.
#[allow(clippy::too_many_arguments)]
pub fn build_partner<'d>(
    cx: &Context<'d>,
    facts: &ProgramFacts,
    payee: &str,
    decisions: &[&'d Decision],
    history: &History,
    fx: &dyn FxRates,
    skipped: &mut Vec<Skipped>,
    settlements: &mut Vec<Settlement>,
) -> Option<Statement> {
    let config = cx.config;
    let tz = config.tz();
    let cur = config.payout_currency.as_str();
    let statement_id = format!("{}/{}/{}", cx.program, cx.period, payee);
    let (network, partner) = split_payee(payee);
    // What this payee's statement holds back is what it adds to `skipped`.
    let skipped_from = skipped.len();
    let mut skip = |d: &Decision, reason: String| {
        skipped.push(Skipped {
            partner_id: payee.to_string(),
            claim: format!("{}/{}", d.claim.source, d.claim.id),
            reason,
            waits: false,
        })
    };

    // Whether this payee is the one the ledger says was paid for a claim.
    let paid_here = |p: &PaidClaim, d: &Decision| {
        network == Some(d.claim.source.as_str()) && p.partner_id == partner
    };

    // 1. Split into new payable claims and claims already paid.
    let mut candidates = Vec::new();
    let mut already_paid = Vec::new();
    for &d in decisions {
        // A claim paid to this payee may need an adjustment; a claim paid
        // to another partner is here because the network moved it to this
        // one: the other takes its payment back, this one is paid it new.
        if let Some(paid) = paid_entry(d, history).filter(|p| paid_here(p, d)) {
            already_paid.push((d, paid));
            continue;
        }
        let date = local_date(d, tz);
        if !d.payable || date >= cx.period.end || after_close(cx, d) {
            continue;
        }
        let Some(resolved) =
            rules::resolve(config, &d.claim.source, &d.partner_id, d.event_type, date)
        else {
            skip(
                d,
                format!(
                    "no commission rule in force on {date} matches event `{}` and partner `{}:{}`; add or widen a rule",
                    d.event_type.as_str(),
                    d.claim.source,
                    d.partner_id
                ),
            );
            continue;
        };
        let needs_basis = !matches!(resolved.pricing, Pricing::Flat(_));
        let mut rate = None;
        if needs_basis {
            let Some(basis) = &d.basis else {
                skip(
                    d,
                    format!(
                        "rule `{}` is a percentage but the claim has no commission basis",
                        resolved.rule_id()
                    ),
                );
                continue;
            };
            if facts.volume_currency.as_deref() != Some(basis.currency.as_str()) {
                skip(
                    d,
                    format!(
                        "basis currency {} differs from the program currency {}",
                        basis.currency,
                        facts.volume_currency.as_deref().unwrap_or("?")
                    ),
                );
                continue;
            }
            if asks_rate(basis.amount, &basis.currency, cur) {
                let Some((r, row)) = fx.rate_with_date(&basis.currency, cur, date) else {
                    skip(d, missing_rate(fx, &basis.currency, cur, date));
                    continue;
                };
                if let Err(why) = rules::priceable(basis.amount, &basis.currency, cur, Some(r)) {
                    skip(d, why);
                    continue;
                }
                rate = Some((r, row));
            }
        }
        candidates.push(Candidate {
            d,
            date,
            resolved,
            fx: rate.map(|(r, _)| r),
            fx_date: rate.and_then(|(_, row)| row),
        });
    }

    // 2. Period volume: bases of the new lines in the program currency.
    // Amounts as stated: at least the currency's minor-unit digits (a
    // network's "200" reads 200.00), never rounded.
    let pad = |d: Decimal| {
        facts
            .volume_currency
            .as_deref()
            .map_or(d, |c| at_minor_scale(d, c))
    };
    let volume: Decimal = pad(candidates
        .iter()
        .filter_map(|c| in_volume(facts, c.d))
        .sum());

    // 3. Price each line, then apply caps in line order.
    let priced = price_lines(
        &candidates
            .iter()
            .map(|c| PriceIn {
                basis: in_volume(facts, c.d),
                resolved: Some(&c.resolved),
                fx: c.fx,
            })
            .collect::<Vec<_>>(),
        cur,
        facts.volume_currency.as_deref(),
    );
    let mut line_no = 0u32;
    let mut lines = Vec::with_capacity(candidates.len());
    for (c, p) in candidates.iter().zip(priced) {
        line_no += 1;
        lines.push(Line {
            line_no,
            network: c.d.claim.source.clone(),
            claim_id: c.d.claim.id.clone(),
            order_id: c.d.order.as_ref().map(|o| o.id.clone()),
            date: c.date,
            occurred_at: c.d.occurred_at,
            event: c.d.event_type,
            basis: c
                .d
                .basis
                .as_ref()
                .map(|m| Money::new(at_minor_scale(m.amount, &m.currency), m.currency.clone())),
            rule_id: c.resolved.rule_id().to_owned(),
            override_id: c.resolved.override_id().map(str::to_owned),
            rate_percent: p.rate_percent,
            flat_amount: p.flat_amount,
            rate_detail: p.rate_detail,
            fx_rate: c.fx,
            fx_rate_date: c.fx_date,
            commission: p.commission,
            note: p.note,
            trace: Some(Trace::of(c.d).tolerance_in(facts.volume_currency.as_deref())),
            outcome: Some(c.d.outcome),
            network_commission: c.d.network_commission.as_ref().map(minor_scale),
        });
    }

    // 4. Adjustments of claims paid on finalised statements: each earlier
    // statement that paid one is priced again (see [`reprice`]).
    let (targets, volumes, repriced) = reprice(cx, facts, &already_paid, history, fx, skipped);
    let mut adjustments = Vec::new();
    // Statements with an increase that waits: not settled.
    let mut waiting = std::collections::HashSet::new();
    for (d, paid) in already_paid {
        let current_basis = d.basis.as_ref().map(|b| b.amount);
        let Some(target) = targets.get(&(d.claim.source.as_str(), d.claim.id.as_str())) else {
            continue;
        };
        let delta = target.amount - paid.paid_total;
        // Increases wait until the claim is payable again; decreases apply now.
        if delta > Decimal::ZERO && !d.payable {
            waiting.insert(paid.statement_id.as_str());
        }
        // A paid claim that still earns but is no longer payable (the
        // network has it pending again under `require_network_approval`)
        // keeps its payment, and says so (QA53 M1: nothing in any file or
        // in `trace` told that money was out on a claim the program says
        // must not be paid).
        if !d.payable
            && delta >= Decimal::ZERO
            && d.outcome.earns()
            && d.partner_id == paid.partner_id
        {
            skipped.push(Skipped {
                partner_id: payee.to_string(),
                claim: format!("{}/{}", d.claim.source, d.claim.id),
                reason: paid_not_payable(d, paid, delta, cx.judged_at, cur),
                waits: true,
            });
        }
        if delta.is_zero() || (delta > Decimal::ZERO && !d.payable) {
            continue;
        }
        line_no += 1;
        let reason = adjustment_reason(d, paid, target);
        adjustments.push(Adjustment {
            line_no,
            network: d.claim.source.clone(),
            claim_id: d.claim.id.clone(),
            // The order the trace below names (QA32d F3: a restated order
            // reference left the line's order beside the new order's
            // revision and amount, and `records history` of it found
            // another order); the reason names the line's order when it
            // differs ([`order_change`]). A claim that matches no order now
            // keeps the order its line was paid for: the trace names none,
            // so nothing contradicts it, and it is the sale the corrected
            // commission was for (the outcome's reason says which order id
            // the claim quotes now).
            order_id: d
                .order
                .as_ref()
                .map(|o| o.id.clone())
                .or_else(|| paid.order_id.clone()),
            outcome: d.outcome,
            reason,
            original_statement_id: paid.statement_id.clone(),
            original_line_no: paid.line_no,
            original_commission: paid.original_commission,
            previously_paid: paid.paid_total,
            // Format 13 (QA33d L7): a flat line's basis too, as printed.
            original_basis: paid.original_basis.or(paid.basis).map(pad),
            current_basis: current_basis.map(pad),
            amount: delta,
            trace: Some(Trace::of(d).tolerance_in(facts.volume_currency.as_deref())),
            volume_now: Some(pad(target.volume_now)),
            rule_id: target.priced.as_ref().map(|p| p.rule_id.clone()),
            override_id: target.priced.as_ref().and_then(|p| p.override_id.clone()),
            rate_percent: target.priced.as_ref().and_then(|p| p.rate_percent),
            flat_amount: target.priced.as_ref().and_then(|p| p.flat_amount),
            rate_detail: target.priced.as_ref().and_then(|p| p.rate_detail.clone()),
            fx_rate: target.priced.as_ref().and_then(|p| p.fx_rate),
            // Format 14: priced now at the rate of the claim's date.
            fx_rate_date: d.basis.as_ref().and_then(|b| {
                let shown = target.priced.as_ref().and_then(|p| p.fx_rate);
                rate_date(fx, &b.currency, cur, local_date(d, tz), shown)
            }),
            network_commission: d.network_commission.as_ref().map(minor_scale),
        });
    }

    // Finalising this statement settles each statement repriced whose
    // every target it applies in full.
    settlements.extend(
        repriced
            .into_iter()
            .filter(|r| r.complete && !waiting.contains(r.statement_id.as_str())),
    );

    // 4b. The bonuses of each statement repriced in step 4 follow its
    // volume (see [`bonus_adjustments`]).
    let mut bonus_adjustments = Vec::new();
    for v in &volumes {
        for mut a in self::bonus_adjustments(cx, facts, payee, v, history, fx, skipped) {
            line_no += 1;
            a.line_no = line_no;
            bonus_adjustments.push(a);
        }
    }

    // 5. Bonuses in force on the period's last day; a percent bonus at
    // the FX rate of the statement's last day (the day it closed, when it
    // closed early: [`bonus_rate_day`]).
    let last_day = cx.period.last_day();
    let rate_day = bonus_rate_day(&cx.period, cx.closed_early_at, tz);
    let vc = facts.volume_currency.as_deref().unwrap_or(cur);
    let mut bonuses = Vec::new();
    for b in &config.bonuses {
        if !rules::bonus_applies(config, b, network, partner, last_day)
            || volume < b.threshold_volume
        {
            continue;
        }
        if candidates.is_empty() {
            continue;
        }
        let (amount, fx_rate) = match (b.amount, b.percent) {
            (Some(a), _) => (rules::round_to_minor(a, cur), None),
            // A percentage of a volume of 0.00 is nothing at any rate: no
            // line, and nothing held back for want of one (QA39b B-L1).
            (None, Some(_)) if !asks_rate(volume, vc, cur) => continue,
            (None, Some(p)) => {
                let Some(r) = fx.rate(vc, cur, rate_day) else {
                    skipped.push(Skipped {
                        partner_id: payee.to_string(),
                        claim: format!("bonus {}", b.id),
                        reason: format!(
                            "{}, and the next period generated pays the bonus",
                            missing_rate(fx, vc, cur, rate_day)
                        ),
                        waits: false,
                    });
                    continue;
                };
                let Some(amount) = percent_of(volume, p, r) else {
                    skipped.push(Skipped {
                        partner_id: payee.to_string(),
                        claim: format!("bonus {}", b.id),
                        reason: format!(
                            "{p} % of the volume {volume} at the FX rate {r} is beyond the amounts Reckon handles: an amount or an FX rate must be misread: once it is corrected, the next period generated pays the bonus"
                        ),
                        waits: false,
                    });
                    continue;
                };
                (rules::round_to_minor(amount, cur), Some(r))
            }
            (None, None) => continue,
        };
        // A bonus that comes to nothing (a percentage of a volume of 0.00,
        // flat lead lines only, over a threshold of 0) is no line (QA39b
        // B-L1): the statement did not reach it, as a later bonus
        // adjustment judges it ([`bonus_adjustments`]).
        if amount.is_zero() {
            continue;
        }
        let fx_rate_date = rate_date(fx, vc, cur, rate_day, fx_rate);
        line_no += 1;
        bonuses.push(BonusLine {
            line_no,
            bonus_id: b.id.clone(),
            // Amounts as stated, at their currency's minor digits ("25"
            // in the config reads 25.00).
            threshold_volume: pad(b.threshold_volume),
            volume,
            percent: b.percent,
            fixed_amount: b.amount.map(|a| at_minor_scale(a, cur)),
            fx_rate,
            fx_rate_date,
            amount,
        });
    }

    // 6. Manual adjustments of the period for this payee (format 14,
    // QA34c M4): paid on this period's statement only, as configured.
    let mut manual_adjustments = Vec::new();
    for m in config.manual_adjustments_of(&cx.period) {
        if m.partner != payee {
            continue;
        }
        line_no += 1;
        manual_adjustments.push(ManualAdjustment {
            line_no,
            id: m.id.clone(),
            amount: at_minor_scale(m.amount, cur),
            reason: m.reason.clone(),
            refers_to: m.refers_to.clone(),
        });
    }

    let carried_in = history
        .balances
        .get(payee)
        .copied()
        .unwrap_or(Decimal::ZERO);
    if lines.is_empty()
        && adjustments.is_empty()
        && bonus_adjustments.is_empty()
        && bonuses.is_empty()
        && manual_adjustments.is_empty()
        && carried_in.is_zero()
    {
        return None;
    }
    let not_paid = not_paid(
        cx,
        payee,
        decisions,
        history,
        &lines,
        &skipped[skipped_from..],
    );
    let r = |x: Decimal| rules::round_to_minor(x, cur);
    let lines_total = r(lines.iter().map(|l| l.commission).sum());
    let adjustments_total = r(adjustments
        .iter()
        .map(|a| a.amount)
        .chain(bonus_adjustments.iter().map(|a| a.amount))
        .chain(manual_adjustments.iter().map(|a| a.amount))
        .sum());
    let bonuses_total = r(bonuses.iter().map(|b| b.amount).sum());
    let subtotal = r(lines_total + adjustments_total + bonuses_total + carried_in);
    let minimum = r(config.minimum());
    let (total_payable, carried_out) = if subtotal > Decimal::ZERO && subtotal >= minimum {
        (subtotal, r(Decimal::ZERO))
    } else {
        (r(Decimal::ZERO), subtotal)
    };
    // Format 13 (QA33d M2): what the network reported for these lines,
    // per currency, beside what they pay.
    let mut reported: BTreeMap<&str, Decimal> = BTreeMap::new();
    for m in lines.iter().filter_map(|l| l.network_commission.as_ref()) {
        *reported.entry(m.currency.as_str()).or_default() += m.amount;
    }
    let network_reported = reported
        .into_iter()
        .map(|(c, a)| Money::new(at_minor_scale(a, c), c.to_string()))
        .collect();
    // The name the network gives this partner: a claim moved away from it
    // carries its new partner's name.
    let partner_name = decisions
        .iter()
        .rev()
        .filter(|d| d.partner_id == partner)
        .find_map(|d| d.partner_name.clone());
    Some(Statement {
        format_version: FORMAT_VERSION,
        statement_id,
        version: cx.version,
        status: cx.status,
        program: cx.program.to_string(),
        network: network.map(str::to_string),
        partner_id: partner.to_string(),
        partner_name,
        period: cx.period.to_string(),
        period_start: cx.period.start,
        period_end: last_day,
        // Set by the finalise that closes the period early.
        closed_early_at: None,
        timezone: config.timezone_name().to_string(),
        currency: cur.to_string(),
        volume: facts
            .volume_currency
            .as_ref()
            .map(|c| Money::new(volume, c.clone())),
        lines,
        adjustments,
        bonus_adjustments,
        bonuses,
        manual_adjustments,
        totals: Totals {
            lines: lines_total,
            adjustments: adjustments_total,
            bonuses: bonuses_total,
            carried_in: r(carried_in),
            subtotal,
            minimum_payout: minimum,
            total_payable,
            carried_out,
            network_reported,
        },
        not_paid,
    })
}

/// The payee's claims a statement does not pay, and why (format 14,
/// QA34c M1: a partner's files were silent about a claim held back for
/// want of an FX rate, and about its duplicates, refunds and rejections):
/// first what it holds back (`held`, its rows of `held_back.csv`, in that
/// order), then the payee's claims dated in the period that it neither
/// pays nor holds back, in line order: earning but not payable yet
/// (`pending`), not decided yet (`undecided`: also those dated before the
/// period), or earning nothing (`not_earning`). A claim a finalised
/// statement paid is not listed: its adjustments tell its story.
fn not_paid(
    cx: &Context<'_>,
    payee: &str,
    decisions: &[&Decision],
    history: &History,
    lines: &[Line],
    held: &[Skipped],
) -> Vec<NotPaid> {
    let tz = cx.config.tz();
    let (network, partner) = split_payee(payee);
    let entry = |status, d: Option<&Decision>, reason: String| NotPaid {
        status,
        network: d.map(|d| d.claim.source.clone()),
        claim_id: d.map(|d| d.claim.id.clone()),
        bonus_id: None,
        order_id: d.and_then(|d| d.order.as_ref().map(|o| o.id.clone())),
        date: d.map(|d| local_date(d, tz)),
        outcome: d.map(|d| d.outcome),
        // Where it tells when the claim is paid.
        lock_at: d
            .filter(|_| status == NotPaidStatus::Pending)
            .and_then(|d| d.lock_at),
        claimed_amount: d.and_then(|d| d.claimed_amount.as_ref().map(minor_scale)),
        reason,
    };
    let claim_of = |d: &Decision| format!("{}/{}", d.claim.source, d.claim.id);
    // The payee's decisions by `network/claim`, for the claims held back
    // (built only when some are: a lookup each, not a scan each).
    let mut by_claim: HashMap<String, &Decision> = HashMap::new();
    if !held.is_empty() {
        for &d in decisions {
            by_claim.entry(claim_of(d)).or_insert(d);
        }
    }
    let mut out = Vec::new();
    let mut listed: HashSet<String> = lines
        .iter()
        .map(|l| format!("{}/{}", l.network, l.claim_id))
        .collect();
    for s in held {
        let status = if s.waits {
            NotPaidStatus::AdjustmentWaits
        } else {
            NotPaidStatus::HeldBack
        };
        if let Some(bonus) = s.claim.strip_prefix("bonus ") {
            // `bonus <id>`, or `bonus <id> of <statement>` for one that
            // waits.
            let id = bonus.split_once(" of ").map_or(bonus, |(id, _)| id);
            out.push(NotPaid {
                bonus_id: Some(id.to_string()),
                ..entry(status, None, s.reason.clone())
            });
            continue;
        }
        let d = by_claim.get(&s.claim).copied();
        let mut e = entry(status, d, s.reason.clone());
        if d.is_none() {
            // Not expected: every claim held back is one of the payee's.
            let (n, c) = s.claim.split_once('/').unwrap_or(("", s.claim.as_str()));
            e.network = Some(n.to_string());
            e.claim_id = Some(c.to_string());
        }
        listed.insert(s.claim.clone());
        out.push(e);
    }
    for &d in decisions {
        let date = local_date(d, tz);
        if network != Some(d.claim.source.as_str())
            || d.partner_id != partner
            || (date < cx.period.start && !undecided(d))
            || date >= cx.period.end
            || after_close(cx, d)
            || d.payable
            || paid_entry(d, history).is_some()
            || listed.contains(&claim_of(d))
        {
            continue;
        }
        if d.outcome.earns() {
            out.push(entry(
                NotPaidStatus::Pending,
                Some(d),
                pending_reason(d, cx.judged_at),
            ));
        } else if undecided(d) {
            // What the operator is told to do is not the partner's to do:
            // not in the statement's JSON or CSV either (QA37 R-L3).
            let reason = d.reason.replace("; add it to [fx]", "");
            out.push(entry(NotPaidStatus::Undecided, Some(d), reason));
        } else {
            out.push(entry(NotPaidStatus::NotEarning, Some(d), d.reason.clone()));
        }
    }
    out
}

/// Why a paid claim that still earns but is no longer payable keeps its
/// payment (listed as an adjustment that waits).
fn paid_not_payable(
    d: &Decision,
    paid: &PaidClaim,
    increase: Decimal,
    judged_at: Option<chrono::DateTime<chrono::Utc>>,
    cur: &str,
) -> String {
    use crate::reconcile::report::NotPayable;
    let why = match NotPayable::of(d, judged_at.or(Some(d.decided_at))) {
        Some(NotPayable::AwaitingNetworkApproval) => {
            "the program pays only claims the network has approved, and the network has it pending again"
                .to_string()
        }
        _ => format!("its lock date has not passed ({})", d.reason),
    };
    let increase = if increase > Decimal::ZERO {
        format!(
            "; an increase of {} {cur} waits until it is payable again",
            at_minor_scale(increase, cur)
        )
    } else {
        String::new()
    };
    format!(
        "paid {} {cur} (line {} of statement {}), and not payable now: {why}. What was paid stands{increase}; a reversal, rejection or refund is taken back",
        at_minor_scale(paid.paid_total, cur),
        paid.line_no,
        paid.statement_id
    )
}

/// A claim not decided yet: awaiting its order, or an exchange rate into
/// the program currency. Listed as `undecided` by the statements of its
/// period and of every later one until it is decided (QA53: an
/// `fx_missing` claim dated in a finalised period was in no file, though
/// `generate` said its partner's statement listed it).
fn undecided(d: &Decision) -> bool {
    matches!(d.outcome, Outcome::AwaitingOrder | Outcome::FxMissing)
}

/// Why an earning claim is not payable yet, in a sentence, with its lock
/// date as an RFC 3339 instant (the HTML shows it in the statement's zone).
fn pending_reason(d: &Decision, judged_at: Option<chrono::DateTime<chrono::Utc>>) -> String {
    use crate::reconcile::report::NotPayable;
    let lock = d
        .lock_at
        .map(|l| l.to_rfc3339_opts(chrono::SecondsFormat::Secs, true));
    match (NotPayable::of(d, judged_at.or(Some(d.decided_at))), lock) {
        (Some(NotPayable::AwaitingNetworkApproval), Some(lock)) => format!(
            "earns commission, but the program pays only claims the network has approved, and the network has not approved it yet (its lock date {lock} has passed); paid on the first statement generated once it does"
        ),
        (_, Some(lock)) => format!(
            "earns commission once its lock date passes, {lock}: until then the order can still be refunded or the claim reversed; paid on the first statement generated after that"
        ),
        (_, None) => format!("earns commission but is not payable yet ({})", d.reason),
    }
}

/// `m` with at least its currency's minor-unit digits.
fn minor_scale(m: &Money) -> Money {
    Money::new(at_minor_scale(m.amount, &m.currency), m.currency.clone())
}

/// One line to price: its basis in the program currency (`None` without
/// one, or in another currency), its rule (`None`: not priced, its basis
/// still counts in the volume) and FX rate (program → payout currency).
struct PriceIn<'r, 'c> {
    basis: Option<Decimal>,
    resolved: Option<&'r rules::Resolved<'c>>,
    fx: Option<Decimal>,
}

/// A priced line.
#[derive(Debug, Clone, Default)]
struct Priced {
    commission: Decimal,
    rate_percent: Option<Decimal>,
    flat_amount: Option<Decimal>,
    rate_detail: Option<String>,
    /// What a cap did to it (`capped: 41.61 cut to 20.02 (cap 60.00 per
    /// period)`): the line's note, and the end of its adjustment's reason
    /// ([`claim_reason`]).
    note: Option<String>,
}

/// Prices the lines of one statement in line order: all-volume tiers on
/// the total volume, marginal tiers on the volume before each line, each
/// line rounded once to the payout currency, then caps per (rule,
/// override) in line order. `volume_currency` is the program currency of
/// the bases, for the amounts of a marginal split's `rate_detail`.
fn price_lines(items: &[PriceIn<'_, '_>], cur: &str, volume_currency: Option<&str>) -> Vec<Priced> {
    let volume: Decimal = items.iter().filter_map(|i| i.basis).sum();
    let mut running_volume = Decimal::ZERO;
    let mut cap_used: HashMap<(&str, Option<&str>), Decimal> = HashMap::new();
    let mut out = Vec::with_capacity(items.len());
    for c in items {
        let basis_amount = c.basis.unwrap_or_default();
        let Some(resolved) = c.resolved else {
            running_volume += basis_amount;
            out.push(Priced::default());
            continue;
        };
        let fx = c.fx.unwrap_or(Decimal::ONE);
        let mut p = Priced::default();
        let exact = match &resolved.pricing {
            Pricing::Flat(a) => {
                p.flat_amount = Some(*a);
                *a
            }
            Pricing::Percent(r) => {
                p.rate_percent = Some(*r);
                basis_amount * *r / Decimal::ONE_HUNDRED * fx
            }
            Pricing::Tiered(TierMode::AllVolume, tiers) => {
                let r = rules::tier_percent(tiers, volume);
                p.rate_percent = Some(r);
                basis_amount * r / Decimal::ONE_HUNDRED * fx
            }
            Pricing::Tiered(TierMode::Marginal, tiers) => {
                let (amount, parts) = rules::marginal(tiers, running_volume, basis_amount);
                if parts.len() == 1 {
                    p.rate_percent = Some(parts[0].0);
                } else {
                    p.rate_detail = Some(rules::marginal_detail(&parts, volume_currency));
                }
                amount * fx
            }
        };
        running_volume += basis_amount;
        p.commission = rules::round_to_minor(exact, cur);
        if let Some(cap) = resolved.cap {
            let key = (resolved.rule_id(), resolved.override_id());
            let used = cap_used.entry(key).or_default();
            let room = (cap - *used).max(Decimal::ZERO);
            if p.commission > room {
                p.note = Some(format!(
                    "capped: {} cut to {} (cap {} per period)",
                    p.commission,
                    rules::round_to_minor(room, cur),
                    at_minor_scale(cap, cur)
                ));
                p.commission = rules::round_to_minor(room, cur);
            }
            *used += p.commission;
        }
        out.push(p);
    }
    out
}

/// The basis of a decision in the program currency, if it has one in it.
fn in_volume(facts: &ProgramFacts, d: &Decision) -> Option<Decimal> {
    d.basis
        .as_ref()
        .filter(|b| facts.volume_currency.as_deref() == Some(b.currency.as_str()))
        .map(|b| b.amount)
}

/// What a moved claim's reason says of the commission taken back when the
/// statement that credited it paid it out.
const MOVED_PAID: &str = "the commission paid here is taken back";

/// ... and when that statement paid nothing out (the partner's balance was
/// below the minimum payout, so it was carried forward, QA31-A L3).
const MOVED_CREDITED: &str = "the commission credited here is taken back";

/// Rewrites a moved claim's reason ([`adjustment_reason`]) for a claim
/// whose statement carried its commission forward instead of paying it:
/// "credited here", not "paid here". Other reasons are left as they are.
pub fn credited_not_paid(reason: &mut String) {
    if reason.starts_with("claim moved to partner ") {
        if let Some(i) = reason.rfind(MOVED_PAID) {
            reason.replace_range(i..i + MOVED_PAID.len(), MOVED_CREDITED);
        }
    }
}

/// The sentence an adjustment gives for itself: the claim moved to another
/// partner, stopped earning, earns again, or was repriced (its own inputs
/// that changed, else its statement's other lines); led by the change of
/// its matched order when the network restated it ([`order_change`]; after
/// a moved claim's sentence, whose start `credited_not_paid` and the HTML
/// match).
fn adjustment_reason(d: &Decision, paid: &PaidClaim, target: &Target) -> String {
    let reason = claim_reason(d, paid, target);
    match order_change(d, paid) {
        None => reason,
        Some(change) if d.partner_id != paid.partner_id => format!("{reason}; {change}"),
        Some(change) => format!("{change}; {reason}"),
    }
}

/// ``order id `O9` → `O23` ``: the claim's decision matches another order than
/// the one its line was paid for (the network restated its order
/// reference). The adjustment's `order_id` and trace are the new order's,
/// its `refers_to` line shows the old one, and this says both (QA32d F3).
/// Said against the line, as `refers_to` is, so every later adjustment of
/// the claim says it too. None when the decision matches no order: its
/// outcome's reason says what the claim quotes. "order id", not "order":
/// the partner's HTML shortens `order <connector>/<id>` to the id
/// (`render::partner_reason`), which would cut an id such as `web/1001`.
fn order_change(d: &Decision, paid: &PaidClaim) -> Option<String> {
    let now = d.order.as_ref()?;
    if paid.order_id.as_deref() == Some(now.id.as_str()) {
        return None;
    }
    let was = paid
        .order_id
        .as_ref()
        .map_or_else(|| "none".to_string(), |o| format!("`{o}`"));
    Some(format!("order id {was} → `{}`", now.id))
}

/// [`adjustment_reason`] but for the order's change.
fn claim_reason(d: &Decision, paid: &PaidClaim, target: &Target) -> String {
    if d.partner_id != paid.partner_id {
        let to = payee_key(&d.claim.source, &d.partner_id);
        format!(
            "claim moved to partner `{to}` by the network (`{}`: {}); {MOVED_PAID} and {}",
            d.outcome.as_str(),
            d.reason,
            if d.payable {
                "paid to that partner"
            } else {
                "paid to that partner once the claim is payable"
            }
        )
    } else if !d.outcome.earns() {
        format!(
            "claim is now `{}`: {}; the earlier commission is reversed",
            d.outcome.as_str(),
            d.reason
        )
    } else if target.changes.is_empty() && target.own_price_unchanged && paid.paid_total.is_zero() {
        // Earning again after a reversal (a refund or reversal undone,
        // a duplicate contest won back): the reversed amount is repaid.
        format!(
            "claim earns again (`{}`: {}); the commission reversed earlier is paid back{}",
            d.outcome.as_str(),
            d.reason,
            cap_clause(target)
        )
    } else if target.changes.is_empty() && target.own_price_unchanged {
        // Back at its first price after an adjustment that was not a
        // reversal (QA: a tier restored read "earns again").
        format!(
            "line back at its first price, {}: what earlier adjustments changed is undone (`{}`: {}){}",
            target.amount,
            d.outcome.as_str(),
            d.reason,
            cap_clause(target)
        )
    } else if target.changes.is_empty() {
        // Format 13 (QA33d M4, M5): the volume, then and now, and the
        // claims counted in it whose own adjustment waits.
        let volume = target
            .volume_change
            .map(|(then, now)| format!(" ({then} → {now})"))
            .unwrap_or_default();
        format!(
            "repriced with the other lines of statement {}: their volume changed{volume}, so its tiers and caps give this line {} now (`{}`: {}){}{}",
            paid.statement_id,
            target.amount,
            d.outcome.as_str(),
            d.reason,
            cap_clause(target),
            waiting_note(&target.waiting)
        )
    } else {
        format!(
            "{}; repriced to {} (`{}`: {}){}",
            target.changes.join("; "),
            target.amount,
            d.outcome.as_str(),
            d.reason,
            cap_clause(target)
        )
    }
}

/// What a reason adds for a claim a cap cuts now, in its line's words
/// (QA39b B-M2: the printed terms, basis × rate × FX, did not give the
/// amount and nothing said why): `; capped: 41.61 cut to 20.02 (cap 60.00
/// per period)`. Empty when no cap cuts it, or when its amount is not the
/// capped price (the original commission scaled by a rule edited in
/// place since: see [`reprice`]).
fn cap_clause(target: &Target) -> String {
    match &target.capped {
        Some((note, price)) if *price == target.amount => format!("; {note}"),
        _ => String::new(),
    }
}

/// What a claim paid on a finalised statement should have been paid, all
/// told, with today's data ([`reprice`]).
struct Target {
    amount: Decimal,
    /// Its own inputs that changed since it was paid, for the reason.
    changes: Vec<String>,
    /// Its price in the statement is the same then and now.
    own_price_unchanged: bool,
    /// What it counts in its statement's volume now (0: no longer earns
    /// for the payee; QA33d M3).
    volume_now: Decimal,
    /// How it is priced now, when it earns (QA33d M4).
    priced: Option<PricedNow>,
    /// Its statement's volume before and now, when they differ.
    volume_change: Option<(Decimal, Decimal)>,
    /// The claims of its statement whose own adjustment waits (they count
    /// in the volume as they are now), for the reason (QA33d M5).
    waiting: Vec<String>,
    /// A cap cuts its price now: the cap's note (as its line's) and that
    /// price, for the reason ([`cap_clause`]).
    capped: Option<(String, Decimal)>,
}

impl Target {
    /// A target of `amount` with nothing else to say.
    fn plain(amount: Decimal, own_price_unchanged: bool, volume_now: Decimal) -> Target {
        Target {
            amount,
            changes: Vec::new(),
            own_price_unchanged,
            volume_now,
            priced: None,
            volume_change: None,
            waiting: Vec::new(),
            capped: None,
        }
    }
}

/// The terms an adjusted claim is priced on now, as a line shows them.
#[derive(Debug, Clone)]
struct PricedNow {
    rule_id: String,
    override_id: Option<String>,
    rate_percent: Option<Decimal>,
    flat_amount: Option<Decimal>,
    rate_detail: Option<String>,
    fx_rate: Option<Decimal>,
}

/// What a reason adds for the claims counted in a statement's volume whose
/// own adjustment waits (QA33d M5: a refund's effect on the other lines was
/// taken back, the refunded line's own take-back was in no file): empty
/// when there are none.
fn waiting_note(waiting: &[String]) -> String {
    if waiting.is_empty() {
        String::new()
    } else {
        format!(
            "; the volume counts {} as it is now, though its own adjustment waits (listed in held_back.csv)",
            waiting.join(", ")
        )
    }
}

/// What [`reprice`] gives: each claim's target, each statement's volume
/// then and now, and each statement's [`Settlement`].
type Repriced<'d> = (
    HashMap<(&'d str, &'d str), Target>,
    Vec<RepricedVolume>,
    Vec<Settlement>,
);

/// Prices again every earlier statement that paid one of `already_paid`
/// (its lines this payee still holds, in line order), twice: with the
/// inputs its lines were priced from (the ledger's: basis, event, date, FX
/// rate) and with today's (each claim's current decision, the rule in force
/// on its current date for its current event, the FX rate of that date).
/// A claim's target is its original commission plus the difference of the
/// two prices. So a changed basis, event, date, rule or rate reprices the
/// claim; a changed volume reprices every line of the statement through its
/// tiers and caps (a refund that drops a partner below a tier, a restated
/// amount that the cap still holds); and rules edited since, with the data
/// unchanged, change nothing. A claim that no longer earns, or that the
/// network moved to another partner, targets 0. A claim that cannot be
/// priced today (no rule, no FX rate) keeps its inputs of then, with a
/// warning, until it can.
///
/// *Then* is the statement as it was finalised: every line it paid, also
/// those whose claim left the payee since (`history.released`: a claim the
/// network moved to another partner, its payment taken back), which count
/// with the inputs they were paid on then and as nothing now, as they did
/// before their entry left the ledger. So a claim's target depends only on
/// that finalised statement and today's data, never on what the ledger
/// holds: once the statement carrying an adjustment is finalised, the
/// claim's `paid_total` is its target and no later run, with the same
/// data, adjusts it again, nor undoes it.
///
/// A statement a finalised statement settled since (`history.settled`:
/// repriced with every target applied, finance QA13 F1) is priced from
/// that settlement instead: with its lines' inputs as recorded, each line
/// targets what was paid for it. So a rule edited since changes nothing
/// while the inputs stay as recorded (every target is `paid_total`), and a
/// line whose data changes again is owed `paid_total` × (price now ÷
/// price at the settlement), its reason listing the changes since the
/// settlement (F2). A line that did not earn at the settlement is priced
/// from its line as paid, as is every line of a statement never settled
/// or whose lines differ from the record.
///
/// Also returns each statement's volume as priced then and now (the sums of
/// the bases priced), for its bonuses ([`bonus_adjustments`]), and its
/// [`Settlement`]: its lines' inputs now.
fn reprice<'d, 'h>(
    cx: &Context<'_>,
    facts: &ProgramFacts,
    already_paid: &[(&'d Decision, &'h PaidClaim)],
    history: &'h History,
    fx: &dyn FxRates,
    skipped: &mut Vec<Skipped>,
) -> Repriced<'d> {
    let config = cx.config;
    let tz = config.tz();
    let cur = config.payout_currency.as_str();
    let pad = |d: Decimal| {
        facts
            .volume_currency
            .as_deref()
            .map_or(d, |c| at_minor_scale(d, c))
    };
    let show = |d: Option<Decimal>| d.map_or("none".to_string(), |d| pad(d).to_string());
    // Rates as the trace and the line print them (`1.30`, not `1.3`), so
    // an auditor can match the reason with the trace (finance QA F9).
    let show_rate = |r: Option<Decimal>| r.map_or("none".to_string(), |r| r.to_string());
    // Each statement's lines: (the claim's decision, none for a released
    // line; its network; its claim id; its ledger entry).
    type Paid<'a, 'd> = (Option<&'d Decision>, &'a str, &'a str, &'a PaidClaim);
    let mut by_statement: BTreeMap<&str, Vec<Paid<'_, 'd>>> = BTreeMap::new();
    for &(d, p) in already_paid {
        by_statement
            .entry(p.statement_id.as_str())
            .or_default()
            .push((Some(d), d.claim.source.as_str(), d.claim.id.as_str(), p));
    }
    for (statement_id, claims) in by_statement.iter_mut() {
        if let Some(released) = history.released.get(*statement_id) {
            claims.extend(
                released
                    .iter()
                    .map(|((network, claim), p)| (None, network.as_str(), claim.as_str(), p)),
            );
        }
    }
    let mut out = HashMap::new();
    let mut volumes = Vec::with_capacity(by_statement.len());
    let mut settlements = Vec::with_capacity(by_statement.len());
    for (statement_id, mut claims) in by_statement {
        claims.sort_by_key(|(_, _, _, p)| p.line_no);
        #[derive(Clone)]
        struct Side<'c> {
            basis: Option<Decimal>,
            date: NaiveDate,
            event: plugin_api::EventType,
            resolved: Option<rules::Resolved<'c>>,
            fx: Option<Decimal>,
        }
        // Each line's inputs now, the rules aside: compared with the
        // settled ledger's record of the statement.
        let mut current: Vec<SettledLine> = claims
            .iter()
            .map(|&(d, network, claim, p)| SettledLine {
                network: network.to_string(),
                claim_id: claim.to_string(),
                inputs: d
                    .filter(|d| d.partner_id == p.partner_id && d.outcome.earns())
                    .map(|d| {
                        let date = local_date(d, tz);
                        let basis = in_volume(facts, d);
                        let trace = super::model::Trace::of(d);
                        LineInputs {
                            basis,
                            date,
                            event: d.event_type,
                            fx_rate: d
                                .basis
                                .as_ref()
                                .filter(|b| {
                                    basis.is_some() && asks_rate(b.amount, &b.currency, cur)
                                })
                                .and_then(|b| fx.rate(&b.currency, cur, date)),
                            claim_fx_rate: trace.claim_fx_rate,
                            order_fx_rate: trace.order_fx_rate,
                        }
                    }),
            })
            .collect();
        current.sort_by(|a, b| (&a.network, &a.claim_id).cmp(&(&b.network, &b.claim_id)));
        let record = history.settled.get(statement_id);
        // The same inputs as when a finalised statement last settled it:
        // every line stays as paid, whatever the rules say now.
        let unchanged = record.is_some_and(|r| r.lines == current);
        // Otherwise, the same lines: each line that earned then is
        // repriced from its inputs then and what was paid for it.
        let settled: HashMap<(&str, &str), &LineInputs> = record
            .filter(|r| {
                !unchanged
                    && r.lines
                        .iter()
                        .map(|l| (&l.network, &l.claim_id))
                        .eq(current.iter().map(|l| (&l.network, &l.claim_id)))
            })
            .map(|r| {
                r.lines
                    .iter()
                    .filter_map(|l| {
                        l.inputs
                            .as_ref()
                            .map(|i| ((l.network.as_str(), l.claim_id.as_str()), i))
                    })
                    .collect()
            })
            .unwrap_or_default();
        let settled_sides: Vec<Option<Side>> = claims
            .iter()
            .map(|&(d, network, claim, p)| {
                let i = settled.get(&(network, claim)).filter(|_| d.is_some())?;
                Some(Side {
                    basis: i.basis,
                    date: i.date,
                    event: i.event,
                    resolved: resolve_paid(config, network, p, i.event, i.date),
                    fx: i.fx_rate,
                })
            })
            .collect();
        let mut skipped_here = Vec::new();
        // The claims whose own adjustment waits, for the other lines'
        // reasons (QA33d M5).
        let mut waiting: Vec<String> = Vec::new();
        // Lines that cannot be priced today: left as paid until they can.
        let mut left_as_paid: HashSet<(&str, &str)> = HashSet::new();
        let mut sides: Vec<(Side, Option<Side>)> = Vec::with_capacity(claims.len());
        for (&(d, network, _, p), settled_side) in claims.iter().zip(&settled_sides) {
            let partner = p.partner_id.as_str();
            let needs_fx = |r: &rules::Resolved| !matches!(r.pricing, Pricing::Flat(_));
            let Some(d) = d else {
                // A released line: as it was paid (its entry was written
                // from the finalised line, so it has every input), and
                // nothing now.
                let resolved = p
                    .date
                    .zip(p.event)
                    .and_then(|(date, event)| resolve_paid(config, network, p, event, date));
                let then = Side {
                    basis: p.basis.or(p.original_basis),
                    date: p.date.unwrap_or_default(),
                    event: p.event.unwrap_or(plugin_api::EventType::Other),
                    resolved,
                    fx: p.fx_rate,
                };
                sides.push((then, None));
                continue;
            };
            let date = local_date(d, tz);
            let (then_date, then_event) = (p.date.unwrap_or(date), p.event.unwrap_or(d.event_type));
            let then_resolved = resolve_paid(config, network, p, then_event, then_date);
            let then = Side {
                basis: p.basis.or(p.original_basis).or_else(|| in_volume(facts, d)),
                date: then_date,
                event: then_event,
                // Ledger entries from before 2026-11-29 kept no rate.
                fx: if p.date.is_some() {
                    p.fx_rate
                } else {
                    then_resolved
                        .as_ref()
                        .filter(|r| needs_fx(r))
                        .and(d.basis.as_ref())
                        .and_then(|b| fx.rate(&b.currency, cur, then_date))
                },
                resolved: then_resolved,
            };
            // A claim no rate prices today (`fx_missing`: its rate removed
            // from `[fx]`, or past `max_age_days`) is the rate table's
            // doing, not the sale's: left as paid, as a line whose payout
            // rate is missing is, until the rate exists (QA30-B M1: the
            // whole commission was reversed).
            if d.partner_id == p.partner_id && d.outcome == Outcome::FxMissing {
                skipped_here.push(Skipped {
                    partner_id: payee_key(network, partner),
                    claim: format!("{network}/{}", d.claim.id),
                    reason: format!(
                        "the claim is now `fx_missing` ({}); left as paid, its adjustment waits until the rate exists (line {} of statement {})",
                        d.reason, p.line_no, p.statement_id
                    ),
                    waits: true,
                });
                waiting.push(format!("`{network}/{}` ({})", d.claim.id, d.reason));
                left_as_paid.insert((d.claim.source.as_str(), d.claim.id.as_str()));
                let same = match settled_side {
                    Some(s) => s.clone(),
                    None => Side {
                        resolved: resolve_paid(config, network, p, then.event, then.date),
                        ..then.clone()
                    },
                };
                sides.push((then, Some(same)));
                continue;
            }
            let earns = d.partner_id == p.partner_id && d.outcome.earns();
            if !earns {
                sides.push((then, None));
                continue;
            }
            let resolved = resolve_paid(config, network, p, d.event_type, date);
            let basis = in_volume(facts, d);
            let mut why_not = None;
            let mut out_of_range = false;
            let rate = match &resolved {
                None => {
                    why_not = Some(format!(
                        "no commission rule in force on {date} matches event `{}`",
                        d.event_type.as_str()
                    ));
                    None
                }
                Some(r) if needs_fx(r) => match (&d.basis, basis) {
                    (Some(b), Some(amount)) if !asks_rate(amount, &b.currency, cur) => None,
                    (Some(b), Some(amount)) => {
                        let rate = fx.rate(&b.currency, cur, date);
                        match rate.map(|r| rules::priceable(amount, &b.currency, cur, Some(r))) {
                            None => {
                                why_not = Some(missing_rate(fx, &b.currency, cur, date));
                                rate
                            }
                            Some(Err(why)) => {
                                why_not = Some(why);
                                out_of_range = true;
                                None
                            }
                            Some(Ok(())) => rate,
                        }
                    }
                    _ => {
                        why_not = Some("no commission basis in the program currency".into());
                        None
                    }
                },
                Some(_) => None,
            };
            if let Some(why) = why_not {
                // Said only when its own data changed since it was paid (or
                // settled): else nothing waits (QA14 M1).
                let was = settled_side.as_ref().unwrap_or(&then);
                if (was.basis, was.event, was.date) != (basis, d.event_type, date) {
                    skipped_here.push(Skipped {
                        partner_id: payee_key(network, partner),
                        claim: format!("{network}/{}", d.claim.id),
                        reason: format!(
                            "{why}; left as paid, its adjustment waits until it can be priced (line {} of statement {})",
                            p.line_no, p.statement_id
                        ),
                        waits: true,
                    });
                    waiting.push(format!("`{network}/{}` ({why})", d.claim.id));
                }
                left_as_paid.insert((d.claim.source.as_str(), d.claim.id.as_str()));
                // A basis out of range cannot count in the volume either:
                // the one it was paid on stands for it.
                let basis = if out_of_range { then.basis } else { basis };
                // Priced as it was last settled, else as it was paid (its
                // own target is what was paid: `left_as_paid`), but its
                // basis is today's: the statement's volume, for the other
                // lines' tiers and for its bonuses, is data, whatever the
                // rules say (QA14 N1: a rule replaced by one starting
                // later judged the bonuses at the volume before a refund).
                let same = match settled_side {
                    Some(s) => s.clone(),
                    None => Side {
                        resolved: resolve_paid(config, network, p, then.event, then.date),
                        ..then.clone()
                    },
                };
                sides.push((then, Some(Side { basis, ..same })));
                continue;
            }
            let now = Side {
                basis,
                date,
                event: d.event_type,
                resolved,
                fx: rate,
            };
            sides.push((then, Some(now)));
        }
        fn item<'r, 'c>(side: Option<&'r Side<'c>>) -> PriceIn<'r, 'c> {
            PriceIn {
                basis: side.and_then(|s| s.basis),
                resolved: side.and_then(|s| s.resolved.as_ref()),
                fx: side.and_then(|s| s.fx),
            }
        }
        let then_items: Vec<PriceIn> = sides.iter().map(|s| item(Some(&s.0))).collect();
        let now_items: Vec<PriceIn> = sides.iter().map(|s| item(s.1.as_ref())).collect();
        let settled_items: Vec<PriceIn> = settled_sides.iter().map(|s| item(s.as_ref())).collect();
        let (then_prices, now_prices, settled_prices) = (
            price_lines(&then_items, cur, facts.volume_currency.as_deref()),
            price_lines(&now_items, cur, facts.volume_currency.as_deref()),
            price_lines(&settled_items, cur, facts.volume_currency.as_deref()),
        );
        let volume = |items: &[PriceIn]| pad(items.iter().filter_map(|i| i.basis).sum());
        let (volume_then, volume_now) = (
            if settled.is_empty() {
                volume(&then_items)
            } else {
                volume(&settled_items)
            },
            volume(&now_items),
        );
        let volume_change = (volume_then != volume_now).then_some((volume_then, volume_now));
        volumes.push(RepricedVolume {
            statement_id: statement_id.to_string(),
            then: volume(&then_items),
            now: volume(&now_items),
            settled: (!settled.is_empty()).then(|| volume(&settled_items)),
            waiting: waiting.clone(),
            pending: claims
                .iter()
                .zip(&sides)
                .any(|((d, _, _, _), (_, now))| now.is_some() && d.is_some_and(|d| !d.payable)),
        });
        settlements.push(Settlement {
            statement_id: statement_id.to_string(),
            complete: skipped_here.is_empty(),
            record: SettledStatement { lines: current },
        });
        if unchanged {
            // Nothing to adjust, nothing waits.
            for (&(d, _, _, p), (_, now)) in claims.iter().zip(&sides) {
                if let Some(d) = d {
                    out.insert(
                        (d.claim.source.as_str(), d.claim.id.as_str()),
                        Target::plain(
                            p.paid_total,
                            true,
                            now.as_ref().and_then(|n| n.basis).unwrap_or_default(),
                        ),
                    );
                }
            }
            continue;
        }
        skipped.append(&mut skipped_here);
        for ((((d, _, _, p), (then, now)), (pt, pn)), (settled_side, ps)) in claims
            .iter()
            .zip(&sides)
            .zip(then_prices.iter().zip(&now_prices))
            .zip(settled_sides.iter().zip(&settled_prices))
        {
            // A released line is no longer the payee's to adjust.
            let Some(d) = d else {
                continue;
            };
            let Some(now) = now else {
                out.insert(
                    (d.claim.source.as_str(), d.claim.id.as_str()),
                    Target {
                        volume_change,
                        waiting: waiting.clone(),
                        ..Target::plain(Decimal::ZERO, false, Decimal::ZERO)
                    },
                );
                continue;
            };
            // Not priced today (no rule in force for its date and event,
            // no FX rate): what was paid stands, whatever its inputs of
            // then price at under today's rules (a rule replaced by one
            // starting later priced them at 0 and took everything back).
            let key = (d.claim.source.as_str(), d.claim.id.as_str());
            if left_as_paid.contains(&key) {
                out.insert(
                    key,
                    Target::plain(p.paid_total, true, now.basis.unwrap_or_default()),
                );
                continue;
            }
            // Repriced from the last settlement (its inputs then, what was
            // paid since), else from the line as it was paid.
            let (then, pt, original, (claim_fx_was, order_fx_was)) = match settled_side {
                Some(s) => {
                    let i = settled[&(d.claim.source.as_str(), d.claim.id.as_str())];
                    (s, ps, p.paid_total, (i.claim_fx_rate, i.order_fx_rate))
                }
                None => (
                    then,
                    pt,
                    p.original_commission,
                    (p.claim_fx_rate, p.order_fx_rate),
                ),
            };
            let rule_of = |r: &Option<rules::Resolved>| {
                r.as_ref().map(|r| match r.override_id() {
                    Some(o) => format!("`{}` (override `{o}`)", r.rule_id()),
                    None => format!("`{}`", r.rule_id()),
                })
            };
            let same_rule = rule_of(&then.resolved) == rule_of(&now.resolved);
            // A line no rule prices any more was priced then by rules
            // edited since: its original commission stands for it.
            let was = if then.resolved.is_some() {
                pt.commission
            } else {
                original
            };
            let amount = if !same_rule || then.resolved.is_none() {
                // Another rule prices it now: its price under that rule.
                pn.commission
            } else if was.is_zero() {
                (original + pn.commission - was).max(Decimal::ZERO)
            } else {
                // The same rule: the original commission scaled by the
                // change of price, so a rule edited in place since (10 % →
                // 11 %) still pays the original terms on the new data (QA:
                // original + difference mixed the two, 4.66 for 5.00).
                // Not representable (absurd amounts): today's price.
                crate::reconcile::engine::mul_div(original, pn.commission, was)
                    .map_or(pn.commission, |a| rules::round_to_minor(a, cur))
            };
            let mut changes = Vec::new();
            if then.basis != now.basis {
                changes.push(format!("basis {} → {}", show(then.basis), show(now.basis)));
            }
            if then.event != now.event {
                changes.push(format!(
                    "event {} → {}",
                    then.event.as_str(),
                    now.event.as_str()
                ));
            }
            if then.date != now.date {
                changes.push(format!("date {} → {}", then.date, now.date));
            }
            if !same_rule {
                changes.push(format!(
                    "rule {} → {}",
                    rule_of(&then.resolved).unwrap_or_else(|| "none".into()),
                    rule_of(&now.resolved).unwrap_or_else(|| "none".into())
                ));
            }
            if then.basis != now.basis {
                // A basis converted at a rate `[fx]` restated since says so
                // (ledger entries before 2026-11-30 kept no such rate).
                let trace = super::model::Trace::of(d);
                for (what, was, is) in [
                    ("claim", claim_fx_was, trace.claim_fx_rate),
                    ("order", order_fx_was, trace.order_fx_rate),
                ] {
                    if was.is_some() && was != is {
                        changes.push(format!(
                            "{what} converted at {} → {}",
                            show_rate(was),
                            show_rate(is)
                        ));
                    }
                }
            }
            if then.fx != now.fx && now.fx.is_some() {
                changes.push(format!(
                    "FX rate {} → {}",
                    show_rate(then.fx),
                    show_rate(now.fx)
                ));
            }
            let priced = now.resolved.as_ref().map(|r| PricedNow {
                rule_id: r.rule_id().to_owned(),
                override_id: r.override_id().map(str::to_owned),
                rate_percent: pn.rate_percent,
                flat_amount: pn.flat_amount,
                rate_detail: pn.rate_detail.clone(),
                fx_rate: now.fx.filter(|_| pn.flat_amount.is_none()),
            });
            out.insert(
                (d.claim.source.as_str(), d.claim.id.as_str()),
                Target {
                    amount,
                    changes,
                    own_price_unchanged: was == pn.commission,
                    volume_now: now.basis.unwrap_or_default(),
                    priced,
                    volume_change,
                    waiting: waiting.clone(),
                    capped: pn.note.clone().map(|note| (note, pn.commission)),
                },
            );
        }
    }
    (out, volumes, settlements)
}

/// The rule for `p`'s line with `event` on `date` ([`rules::resolve`]),
/// priced on the terms it was paid on while those are its event and date
/// ([`paid_terms`], [`rules::on_terms`]).
fn resolve_paid<'a>(
    config: &'a CommissionConfig,
    network: &str,
    p: &'a PaidClaim,
    event: plugin_api::EventType,
    date: NaiveDate,
) -> Option<rules::Resolved<'a>> {
    rules::on_terms(
        rules::resolve(config, network, &p.partner_id, event, date),
        paid_terms(p, event, date),
    )
}

/// The terms `p` was paid on, for pricing it with `event` on `date`: while
/// those are the event and date it was paid with, whatever rule, override
/// or figures the config has for them now ([`rules::on_terms`]).
fn paid_terms(p: &PaidClaim, event: plugin_api::EventType, date: NaiveDate) -> Option<&PaidTerms> {
    p.terms
        .as_ref()
        .filter(|_| p.event == Some(event) && p.date == Some(date))
}

/// The volume of an earlier finalised statement as [`reprice`] priced its
/// lines (those the payee still holds): with the inputs they were paid on,
/// and with today's (0 for a claim that no longer earns or moved).
#[derive(Debug, Clone)]
struct RepricedVolume {
    statement_id: String,
    then: Decimal,
    now: Decimal,
    /// As last settled, when repriced from the settlement: what a reason
    /// gives as the volume before (QA14 L2: `1000.00 → 1000.00` for a
    /// change from 900).
    settled: Option<Decimal>,
    /// A claim counted in `now` is not payable (yet): increases wait, as a
    /// line's do.
    pending: bool,
    /// The claims counted in `now` whose own adjustment waits.
    waiting: Vec<String>,
}

/// A bonus adjustment that cannot be computed: its figures are beyond
/// `Decimal`'s range (a misread amount or rate), so it waits.
fn beyond_range(bonus: &str, sid: &str, payee: &str, volume: Decimal) -> Skipped {
    Skipped {
        partner_id: payee.to_string(),
        claim: format!("bonus {bonus} of {sid}"),
        reason: format!(
            "the bonus on the volume {volume} is beyond the amounts Reckon handles: an amount or an FX rate must be misread; the bonus adjustment waits until it is corrected"
        ),
        waits: true,
    }
}

/// `p` % of `volume` converted at `r`; `None` beyond `Decimal`'s range.
fn percent_of(volume: Decimal, p: Decimal, r: Decimal) -> Option<Decimal> {
    volume
        .checked_mul(p)
        .and_then(|x| x.checked_div(Decimal::ONE_HUNDRED))
        .and_then(|x| x.checked_mul(r))
}

/// What a bonus pays at `volume` on the terms it was judged on: nothing
/// below the threshold, else the fixed amount, or the percentage of the
/// volume converted at `fx_rate`, rounded once as a bonus line is; `None`
/// when that is beyond `Decimal`'s range (absurd amounts or rates).
fn bonus_at(
    threshold: Decimal,
    fixed_amount: Option<Decimal>,
    percent: Option<Decimal>,
    fx_rate: Option<Decimal>,
    volume: Decimal,
    cur: &str,
) -> Option<Decimal> {
    let exact = if volume < threshold {
        Decimal::ZERO
    } else {
        match (fixed_amount, percent, fx_rate) {
            (Some(a), _, _) => a,
            (None, Some(p), Some(r)) => percent_of(volume, p, r)?,
            _ => Decimal::ZERO,
        }
    };
    Some(rules::round_to_minor(exact, cur))
}

/// The day whose FX rate prices a statement's percent bonuses: its last
/// day, the period's, or for a statement closed early (`closed_early_at`)
/// the day it was closed, in the program's timezone (QA39b B-L2: the
/// period's last day was still to come, so every percent bonus was held
/// back for a rate that could not exist yet).
pub fn bonus_rate_day(
    period: &Period,
    closed_early_at: Option<chrono::DateTime<chrono::Utc>>,
    tz: chrono_tz::Tz,
) -> NaiveDate {
    let last_day = period.last_day();
    closed_early_at.map_or(last_day, |at| {
        at.with_timezone(&tz).date_naive().min(last_day)
    })
}

/// The period of an earlier statement of the program, from its id
/// (`<program>/<period>/<payee>`), read with the config's period kind or,
/// if that changed since, any kind.
fn period_of(program: &str, config: &CommissionConfig, statement_id: &str) -> Option<Period> {
    use super::config::PeriodKind;
    let name = statement_id
        .strip_prefix(program)?
        .strip_prefix('/')?
        .split_once('/')?
        .0;
    [
        config.period,
        PeriodKind::Monthly,
        PeriodKind::SemiMonthly,
        PeriodKind::Weekly,
    ]
    .into_iter()
    .find_map(|k| Period::parse(k, name).ok())
}

/// The bonus adjustments of one earlier finalised statement of the payee
/// whose lines [`reprice`] priced again (`line_no` still 0).
///
/// Each bonus the statement was credited for (the bonus ledger: its bonus
/// lines, and bonuses later adjustments paid it) is judged again on the
/// terms it was paid on (threshold, fixed amount or percentage, FX rate of
/// the statement's last day) at the statement's volume now; the adjustment
/// is that less what was credited for it. So a bonus no longer reached is
/// taken back, one reached again is paid again, and a percent bonus follows
/// the volume; a volume back where it was pays exactly what the bonus line
/// did. When the volume changed, the config's bonuses the statement was
/// not credited for are judged too, as step 5 of [`build_partner`] judged
/// them (in force on the statement's last day, for this payee): one
/// reached now is paid. With the volume unchanged they are not (bonuses
/// added or edited since change nothing paid). Increases wait while a
/// claim counted in the volume is not payable; decreases apply at once.
fn bonus_adjustments(
    cx: &Context<'_>,
    facts: &ProgramFacts,
    payee: &str,
    v: &RepricedVolume,
    history: &History,
    fx: &dyn FxRates,
    skipped: &mut Vec<Skipped>,
) -> Vec<BonusAdjustment> {
    let config = cx.config;
    let cur = config.payout_currency.as_str();
    let (network, partner) = split_payee(payee);
    let sid = v.statement_id.as_str();
    let paid = history.bonuses.get(sid);
    let mut out = Vec::new();
    // Format 14: the row behind a percent bonus's rate, of that
    // statement's last day (its close day, if it closed early), while the
    // table still gives that rate.
    let vc = facts.volume_currency.as_deref().unwrap_or(cur);
    let its_rate_day = period_of(cx.program, config, sid).map(|p| {
        bonus_rate_day(
            &p,
            history.closed_early.get(&p.to_string()).copied(),
            config.tz(),
        )
    });
    let push = |bonus_id: &str,
                terms: &PaidBonus,
                target: Decimal,
                reason: String,
                out: &mut Vec<BonusAdjustment>| {
        let delta = target - terms.paid_total;
        if delta.is_zero() || (delta > Decimal::ZERO && v.pending) {
            return;
        }
        out.push(BonusAdjustment {
            line_no: 0,
            bonus_id: bonus_id.to_string(),
            reason,
            original_statement_id: sid.to_string(),
            original_line_no: terms.line_no,
            threshold_volume: terms.threshold_volume,
            percent: terms.percent,
            fixed_amount: terms.fixed_amount,
            fx_rate: terms.fx_rate,
            fx_rate_date: its_rate_day.and_then(|day| rate_date(fx, vc, cur, day, terms.fx_rate)),
            original_volume: terms.original_volume,
            current_volume: v.now,
            original_amount: terms.original_amount,
            previously_paid: terms.paid_total,
            amount: delta,
        });
    };

    // Bonuses credited before: on the terms they were paid on, bonus lines
    // first (in line order).
    let mut credited: Vec<(&String, &PaidBonus)> =
        paid.map(|m| m.iter().collect()).unwrap_or_default();
    credited.sort_by_key(|(id, p)| (p.line_no.is_none(), p.line_no, id.as_str()));
    for (id, p) in credited {
        let Some(target) = bonus_at(
            p.threshold_volume,
            p.fixed_amount,
            p.percent,
            p.fx_rate,
            v.now,
            cur,
        ) else {
            skipped.push(beyond_range(id, sid, payee, v.now));
            continue;
        };
        let reason = bonus_reason(id, sid, p, true, v, target);
        push(id, p, target, reason, &mut out);
    }

    // Bonuses never credited: when the volume changed, and those the
    // statement reached but held back (finance QA29 F1: a percent bonus
    // left out for want of an FX rate was never paid once the rate
    // existed, its volume unchanged).
    let Some(period) = period_of(cx.program, config, sid) else {
        return out;
    };
    let held_back = history.held_back_bonuses.get(&held_back_key(
        cx.program,
        &period.to_string(),
        &super::render::text_cell(payee, true),
    ));
    if v.now == v.then && held_back.is_none() {
        return out;
    }
    let last_day = period.last_day();
    let rate_day = its_rate_day.unwrap_or(last_day);
    for b in &config.bonuses {
        let was_held_back = held_back.is_some_and(|h| h.contains(&b.id));
        if (v.now == v.then && !was_held_back)
            || paid.is_some_and(|m| m.contains_key(&b.id))
            || !rules::bonus_applies(config, b, network, partner, last_day)
            || v.now < b.threshold_volume
        {
            continue;
        }
        let fx_rate = match b.percent {
            // A percentage of a volume of 0.00 waits for no rate: it is
            // nothing, as the bonus line would be.
            Some(_) if b.amount.is_none() && asks_rate(v.now, vc, cur) => {
                let Some(r) = fx.rate(vc, cur, rate_day) else {
                    skipped.push(Skipped {
                        partner_id: payee.to_string(),
                        claim: format!("bonus {} of {sid}", b.id),
                        reason: format!(
                            "{}; the bonus adjustment waits until the rate exists",
                            missing_rate(fx, vc, cur, rate_day)
                        ),
                        waits: true,
                    });
                    continue;
                };
                Some(r)
            }
            _ => None,
        };
        let pad = |d: Decimal| {
            facts
                .volume_currency
                .as_deref()
                .map_or(d, |c| at_minor_scale(d, c))
        };
        let terms = PaidBonus {
            line_no: None,
            threshold_volume: pad(b.threshold_volume),
            percent: if b.amount.is_some() { None } else { b.percent },
            fixed_amount: b.amount.map(|a| at_minor_scale(a, cur)),
            fx_rate,
            original_volume: v.then,
            original_amount: rules::round_to_minor(Decimal::ZERO, cur),
            paid_total: rules::round_to_minor(Decimal::ZERO, cur),
        };
        let Some(target) = bonus_at(
            terms.threshold_volume,
            terms.fixed_amount,
            terms.percent,
            terms.fx_rate,
            v.now,
            cur,
        ) else {
            skipped.push(beyond_range(&b.id, sid, payee, v.now));
            continue;
        };
        let reason = if was_held_back {
            format!(
                "bonus `{}` of statement {sid} was reached (volume {} ≥ threshold {}) but held back when the statement was finalised (its period's held_back.csv); the bonus is paid",
                b.id, v.now, terms.threshold_volume
            )
        } else {
            bonus_reason(&b.id, sid, &terms, false, v, target)
        };
        push(&b.id, &terms, target, reason, &mut out);
    }
    out
}

/// The key of [`History::held_back_bonuses`]: the statement id with the
/// payee as `held_back.csv` writes it (formula guard and all), so the
/// file's rows are matched as written.
pub fn held_back_key(program: &str, period: &str, payee_cell: &str) -> String {
    format!("{program}/{period}/{payee_cell}")
}

/// The sentence a bonus adjustment gives for itself; `credited_before`:
/// the bonus ledger has the bonus (paid, maybe taken back since).
fn bonus_reason(
    id: &str,
    sid: &str,
    p: &PaidBonus,
    credited_before: bool,
    v: &RepricedVolume,
    target: Decimal,
) -> String {
    let head = format!("bonus `{id}` of statement {sid}");
    let before = v.settled.unwrap_or(p.original_volume);
    let reason = if v.now < p.threshold_volume {
        format!(
            "{head} no longer reached: volume {} < threshold {}; the bonus credited for it is taken back",
            v.now, p.threshold_volume
        )
    } else if !credited_before && before >= p.threshold_volume {
        // Reached before but never credited: it came to 0.00 (no bonus
        // line, QA39b B-L1), or it is judged since the volume changed.
        format!(
            "{head} credited nothing at volume {before} (no bonus line there); at volume {} ≥ threshold {} it gives {target}: the bonus is paid",
            v.now, p.threshold_volume
        )
    } else if p.paid_total.is_zero() {
        let again = if credited_before {
            "reached again"
        } else {
            "now reached"
        };
        format!(
            "{head} {again}: volume {} ≥ threshold {}; the bonus is paid",
            v.now, p.threshold_volume
        )
    } else if let Some(pct) = p.percent {
        let rate = match p.fx_rate {
            Some(r) if r != Decimal::ONE => format!(" × FX rate {r}"),
            _ => String::new(),
        };
        format!(
            "{head} follows its volume, {} → {}: {pct}% of it{rate} gives {target} now",
            v.settled.unwrap_or(p.original_volume),
            v.now
        )
    } else {
        format!("{head} gives {target} at volume {} now", v.now)
    };
    reason + &waiting_note(&v.waiting)
}

/// All statements of a period, in partner order (convenience over
/// [`group_by_partner`] and [`build_partner`] for tests and small programs;
/// the lifecycle streams partner by partner instead).
pub fn build_all(
    cx: &Context<'_>,
    decisions: &[Decision],
    history: &History,
    fx: &dyn FxRates,
) -> (Vec<Statement>, Vec<Skipped>) {
    let facts = ProgramFacts::of(decisions);
    let tz = cx.config.tz();
    let mut skipped = Vec::new();
    let mut out = Vec::new();
    // Only finalising records them.
    let mut settlements = Vec::new();
    let standing = standing_payees(history, cx.config, &cx.period);
    for (partner, ds) in group_by_partner(decisions, history, tz, standing) {
        if let Some(s) = build_partner(
            cx,
            &facts,
            &partner,
            &ds,
            history,
            fx,
            &mut skipped,
            &mut settlements,
        ) {
            out.push(s);
        }
    }
    (out, skipped)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The draft of program `shop` for `period` (of `config`'s kind).
    fn draft_of_shop<'c>(config: &'c CommissionConfig, period: &str) -> Context<'c> {
        Context {
            program: "shop",
            config,
            period: Period::parse(config.period, period).unwrap(),
            status: Status::Draft,
            version: 1,
            judged_at: None,
            closed_early_at: None,
        }
    }
    use crate::reconcile::model::{MatchedBy, Outcome, RecordRef};
    use std::str::FromStr;

    fn dec(s: &str) -> Decimal {
        Decimal::from_str(s).unwrap()
    }

    /// A payable sale of 100.00 EUR, claim `id` of network g1.
    fn sale(id: &str, partner: &str) -> Decision {
        let at = chrono::DateTime::parse_from_rfc3339("2026-09-30T10:00:00Z")
            .unwrap()
            .with_timezone(&chrono::Utc);
        let eur = Some(Money::new(dec("100.00"), "EUR"));
        Decision {
            program: "shop".into(),
            claim: RecordRef {
                source: "g1".into(),
                id: id.into(),
                revision: 2,
            },
            partner_id: partner.into(),
            partner_name: Some(format!("Partner {partner}")),
            event_type: plugin_api::EventType::Sale,
            occurred_at: at,
            order: Some(RecordRef {
                source: "shop".into(),
                id: format!("O-{id}"),
                revision: 1,
            }),
            matched_by: Some(MatchedBy::OrderId),
            outcome: Outcome::Matched,
            payable: true,
            lock_at: Some(at),
            basis: eur.clone(),
            claimed_amount: eur.clone(),
            order_amount: eur,
            refunded_amount: None,
            network_commission: None,
            fx_rate: None,
            winner: None,
            reason: "order id matches".into(),
            decided_at: at,
            order_fx_rate: None,
            inputs: Default::default(),
        }
    }

    /// k2 paid 10.00 to g1:p1 on W40's line 2.
    fn paid_to_p1() -> History {
        let mut h = History::default();
        h.paid.insert(
            ("g1".into(), "k2".into()),
            PaidClaim {
                partner_id: "p1".into(),
                statement_id: "shop/2026-W40/g1:p1".into(),
                line_no: 2,
                order_id: Some("O-k2".into()),
                original_basis: Some(dec("100.00")),
                original_commission: dec("10.00"),
                paid_total: dec("10.00"),
                date: None,
                event: None,
                basis: None,
                fx_rate: None,
                claim_fx_rate: None,
                order_fx_rate: None,
                terms: None,
            },
        );
        h
    }

    fn build(decisions: &[Decision], history: &History) -> Vec<Statement> {
        let config: CommissionConfig = toml::from_str(
            r#"
payout_currency = "EUR"
period = "weekly"
[[rules]]
id = "cps"
effective_from = "2026-01-01"
kind = "percent"
percent = "10"
"#,
        )
        .unwrap();
        let cx = draft_of_shop(&config, "2026-W42");
        let fx: BTreeMap<(String, String, NaiveDate), Decimal> = BTreeMap::new();
        let (s, skipped) = build_all(&cx, decisions, history, &fx);
        assert!(skipped.is_empty(), "{skipped:?}");
        s
    }

    #[test]
    fn a_paid_claim_moved_to_another_partner_is_taken_back_and_paid_to_it() {
        let history = paid_to_p1();
        let s = build(&[sale("k2", "p9")], &history);
        assert_eq!(
            s.iter().map(Statement::payee).collect::<Vec<_>>(),
            ["g1:p1", "g1:p9"]
        );
        let (p1, p9) = (&s[0], &s[1]);
        // p1: everything paid for k2 comes back; its name is not p9's.
        assert!(p1.lines.is_empty());
        assert_eq!(p1.partner_name.as_deref(), None);
        let a = &p1.adjustments[0];
        assert_eq!((a.amount, a.previously_paid), (dec("-10.00"), dec("10.00")));
        assert_eq!(
            (a.original_statement_id.as_str(), a.original_line_no),
            ("shop/2026-W40/g1:p1", 2)
        );
        assert!(
            a.reason.starts_with("claim moved to partner `g1:p9`"),
            "{}",
            a.reason
        );
        // p9: a new line, priced by its rules: 100.00 × 10 % = 10.00.
        assert!(p9.adjustments.is_empty());
        assert_eq!(p9.lines.len(), 1);
        assert_eq!(
            (p9.lines[0].claim_id.as_str(), p9.lines[0].commission),
            ("k2", dec("10.00"))
        );
        assert_eq!(p9.partner_name.as_deref(), Some("Partner p9"));
    }

    #[test]
    fn a_moved_claim_not_payable_is_taken_back_and_paid_later() {
        let history = paid_to_p1();
        let mut k2 = sale("k2", "p9");
        k2.payable = false;
        k2.outcome = Outcome::AwaitingOrder;
        let s = build(&[k2], &history);
        assert_eq!(s.len(), 1);
        assert_eq!(s[0].payee(), "g1:p1");
        assert_eq!(s[0].adjustments[0].amount, dec("-10.00"));
        assert!(
            s[0].adjustments[0]
                .reason
                .ends_with("paid to that partner once the claim is payable"),
            "{}",
            s[0].adjustments[0].reason
        );
    }

    /// Format 14 (QA34c M1): a statement lists the payee's claims it does
    /// not pay: one of an earlier period it holds back, a paid one whose
    /// adjustment waits, and the period's claims not payable yet, waiting
    /// for their lock date or, that passed, for the network's approval.
    #[test]
    fn a_statement_lists_what_it_holds_back_waits_on_and_does_not_pay_yet() {
        let config: CommissionConfig = toml::from_str(
            "payout_currency = \"EUR\"\nperiod = \"weekly\"\n[[rules]]\nid = \"cps\"\neffective_from = \"2026-01-01\"\nkind = \"percent\"\npercent = \"10\"\n",
        )
        .unwrap();
        let cx = draft_of_shop(&config, "2026-W42");
        let at = |s: &str| {
            chrono::DateTime::parse_from_rfc3339(s)
                .unwrap()
                .with_timezone(&chrono::Utc)
        };
        // Paid on W40, now without a rate into the program currency.
        let mut k2 = sale("k2", "p1");
        (k2.outcome, k2.payable, k2.basis) = (Outcome::FxMissing, false, None);
        k2.reason = "no USD→EUR rate for 2026-09-30; add it to [fx]".into();
        // Of W40, payable, no basis for its percent rule.
        let mut k3 = sale("k3", "p1");
        k3.basis = None;
        let mut k4 = sale("k4", "p1");
        k4.occurred_at = at("2026-10-13T10:00:00Z");
        let mut k5 = sale("k5", "p1");
        (k5.occurred_at, k5.payable) = (at("2026-10-14T10:00:00Z"), false);
        (k5.decided_at, k5.lock_at) =
            (at("2026-10-15T00:00:00Z"), Some(at("2026-11-13T10:00:00Z")));
        let mut k6 = k5.clone();
        (k6.claim.id, k6.lock_at) = ("k6".into(), Some(at("2026-10-14T12:00:00Z")));
        let fx: BTreeMap<(String, String, NaiveDate), Decimal> = BTreeMap::new();
        let (s, skipped) = build_all(&cx, &[k2, k3, k4, k5, k6], &paid_to_p1(), &fx);
        assert_eq!(skipped.len(), 2, "{skipped:?}");
        let s = &s[0];
        assert_eq!(s.lines.len(), 1);
        let listed: Vec<_> = s
            .not_paid
            .iter()
            .map(|n| {
                (
                    n.status,
                    n.claim_id.as_deref().unwrap(),
                    n.lock_at.is_some(),
                )
            })
            .collect();
        assert_eq!(
            listed,
            [
                (NotPaidStatus::HeldBack, "k3", false),
                (NotPaidStatus::AdjustmentWaits, "k2", false),
                (NotPaidStatus::Pending, "k5", true),
                (NotPaidStatus::Pending, "k6", true),
            ]
        );
        assert_eq!(s.not_paid[0].reason, skipped[0].reason);
        assert_eq!(s.not_paid[0].date, NaiveDate::from_ymd_opt(2026, 9, 30));
        assert_eq!(s.not_paid[1].reason, skipped[1].reason);
        assert!(s.not_paid[2]
            .reason
            .starts_with("earns commission once its lock date passes, 2026-11-13T10:00:00Z"));
        assert!(s.not_paid[3].reason.contains(
            "the network has not approved it yet (its lock date 2026-10-14T12:00:00Z has passed)"
        ));
        let html = super::super::render::html_file(s, "h");
        assert!(
            html.contains("<td>Paid earlier; its correction waits</td>"),
            "{html}"
        );
        assert!(
            html.contains("its lock date 2026-10-14 12:00:00 UTC has passed"),
            "{html}"
        );
    }

    /// QA36b M1: a claim awaiting its order or an exchange rate into the
    /// program currency is not decided yet: listed as `undecided`, and the
    /// partner's HTML says so, without Reckon's own "add it to [fx]"; it
    /// read "Earns no commission (fx missing)".
    #[test]
    fn a_claim_awaiting_its_order_or_a_rate_is_undecided_not_earning_nothing() {
        let config: CommissionConfig = toml::from_str(
            "payout_currency = \"EUR\"\nperiod = \"weekly\"\n[[rules]]\nid = \"cps\"\neffective_from = \"2026-01-01\"\nkind = \"percent\"\npercent = \"10\"\n",
        )
        .unwrap();
        let cx = draft_of_shop(&config, "2026-W42");
        let at = |s: &str| {
            chrono::DateTime::parse_from_rfc3339(s)
                .unwrap()
                .with_timezone(&chrono::Utc)
        };
        let mut fx = sale("f1", "p1");
        (fx.occurred_at, fx.outcome, fx.payable, fx.basis) =
            (at("2026-10-13T10:00:00Z"), Outcome::FxMissing, false, None);
        fx.reason = "no USD→EUR rate for 2026-10-13 or the 7 days before; add it to [fx]".into();
        let mut wait = sale("w1", "p1");
        (wait.occurred_at, wait.outcome, wait.payable, wait.basis) = (
            at("2026-10-14T10:00:00Z"),
            Outcome::AwaitingOrder,
            false,
            None,
        );
        wait.reason = "no order yet; the grace period ends 2026-10-21T10:00:00Z".into();
        let mut dup = sale("d1", "p1");
        (dup.occurred_at, dup.outcome, dup.payable) =
            (at("2026-10-15T10:00:00Z"), Outcome::Duplicate, false);
        let paid = sale("k4", "p1");
        let mut paid = paid;
        paid.occurred_at = at("2026-10-13T12:00:00Z");
        // QA53: dated in an earlier period (finalised, say) and not decided
        // yet: listed too, until decided; an earlier duplicate is not.
        let mut early_fx = fx.clone();
        (early_fx.claim.id, early_fx.occurred_at) = ("f0".into(), at("2026-08-11T10:00:00Z"));
        let mut early_dup = dup.clone();
        (early_dup.claim.id, early_dup.occurred_at) = ("d0".into(), at("2026-08-11T10:00:00Z"));
        let rates: BTreeMap<(String, String, NaiveDate), Decimal> = BTreeMap::new();
        let history = History::default();
        let all = [fx, wait, dup, paid, early_fx, early_dup];
        let tz = config.tz();
        let concerned: Vec<Decision> = (all.iter())
            .filter(|d| concerns(d, &history, &cx.period, tz))
            .cloned()
            .collect();
        assert!(!concerned.iter().any(|d| d.claim.id == "d0"));
        let (s, _) = build_all(&cx, &concerned, &history, &rates);
        let s = &s[0];
        let listed: Vec<_> = (s.not_paid.iter())
            .map(|n| (n.status, n.claim_id.as_deref().unwrap()))
            .collect();
        assert_eq!(
            listed,
            [
                (NotPaidStatus::Undecided, "f0"),
                (NotPaidStatus::Undecided, "f1"),
                (NotPaidStatus::Undecided, "w1"),
                (NotPaidStatus::NotEarning, "d1"),
            ]
        );
        assert_eq!(NotPaidStatus::Undecided.as_str(), "undecided");
        let html = super::super::render::html_file(s, "h");
        assert!(
            html.contains("<td>Not decided yet: an exchange rate is missing</td>")
                && html.contains("<td>Not decided yet: its order is awaited</td>")
                && html.contains("Earns no commission (duplicate)"),
            "{html}"
        );
        assert!(!html.contains("add it to [fx]"), "{html}");
        // Nor in the JSON (QA37 R-L3).
        assert!(s.not_paid.iter().all(|n| !n.reason.contains("[fx]")));
        assert!(
            html.contains("one not decided yet is judged again"),
            "{html}"
        );
    }

    #[test]
    fn a_paid_claim_that_stays_with_its_partner_needs_no_adjustment() {
        let s = build(&[sale("k2", "p1")], &paid_to_p1());
        assert!(s.is_empty(), "{s:?}");
    }

    /// QA34c M4: a manual adjustment is on its payee's statement of its
    /// period only, in `totals.adjustments`, after the other rows; a payee
    /// with nothing else in the period gets a statement for it.
    #[test]
    fn a_manual_adjustment_is_on_its_payees_statement_of_its_period_only() {
        let config = r#"
[[rules]]
id = "cps"
effective_from = "2026-01-01"
kind = "percent"
percent = "10"
[[manual_adjustments]]
id = "fix-p1"
partner = "g1:p1"
period = "2026-W40"
amount = "2.5"
reason = "paid at 10 % instead of 12.5 %"
refers_to = ["shop/2026-W39/g1:p1#1"]
[[manual_adjustments]]
id = "back-p9"
partner = "g1:p9"
period = "2026-W40"
amount = "-1.00"
reason = "overpaid"
[[manual_adjustments]]
id = "next-p1"
partner = "g1:p1"
period = "2026-W41"
amount = "1.00"
reason = "later"
"#;
        let s = run(config, "2026-W40", &[sale("k1", "p1")], &History::default());
        let got: Vec<_> = s
            .iter()
            .map(|s| {
                (
                    s.partner_id.as_str(),
                    s.manual_adjustments
                        .iter()
                        .map(|m| (m.line_no, m.id.as_str(), m.amount.to_string()))
                        .collect::<Vec<_>>(),
                    s.totals.adjustments.to_string(),
                    s.totals.subtotal.to_string(),
                )
            })
            .collect();
        assert_eq!(
            got,
            [
                (
                    "p1",
                    vec![(2, "fix-p1", "2.50".into())],
                    "2.50".into(),
                    "12.50".into()
                ),
                (
                    "p9",
                    vec![(1, "back-p9", "-1.00".into())],
                    "-1.00".into(),
                    "-1.00".into()
                ),
            ]
        );
        assert_eq!(
            s[0].manual_adjustments[0].refers_to,
            ["shop/2026-W39/g1:p1#1"]
        );
        assert_eq!(s[1].totals.carried_out, dec("-1.00"));
        let s = run(config, "2026-W41", &[], &History::default());
        assert_eq!(s.len(), 1);
        assert_eq!(s[0].manual_adjustments[0].id, "next-p1");
    }

    /// Statements of `period` under `rules` (TOML of `[[rules]]` tables).
    fn run(rules: &str, period: &str, decisions: &[Decision], history: &History) -> Vec<Statement> {
        let (s, skipped) = run_all(rules, period, decisions, history);
        assert!(skipped.is_empty(), "{skipped:?}");
        s
    }

    /// [`run`], with what the statements leave out.
    fn run_all(
        rules: &str,
        period: &str,
        decisions: &[Decision],
        history: &History,
    ) -> (Vec<Statement>, Vec<Skipped>) {
        let config: CommissionConfig = toml::from_str(&format!(
            "payout_currency = \"EUR\"\nperiod = \"weekly\"\n{rules}"
        ))
        .unwrap();
        let cx = draft_of_shop(&config, period);
        let fx: BTreeMap<(String, String, NaiveDate), Decimal> = BTreeMap::new();
        build_all(&cx, decisions, history, &fx)
    }

    /// The history after finalising `statements` (their lines).
    fn finalise(statements: &[Statement]) -> History {
        let mut h = History::default();
        for s in statements {
            for l in &s.lines {
                h.paid.insert(
                    (l.network.clone(), l.claim_id.clone()),
                    PaidClaim::of_line(s, l),
                );
            }
        }
        h
    }

    fn with_basis(mut d: Decision, amount: &str) -> Decision {
        d.basis = Some(Money::new(dec(amount), "EUR"));
        d
    }

    fn adjustments(s: &[Statement]) -> Vec<(String, Decimal)> {
        s.iter()
            .flat_map(|s| &s.adjustments)
            .map(|a| (a.claim_id.clone(), a.amount))
            .collect()
    }

    #[test]
    fn a_trace_keeps_the_rates_that_converted_the_basis() {
        // Claimed in GBP, order and basis in EUR: only the claim's rate
        // converted anything (the order's 1 says nothing).
        let mut d = sale("k1", "p1");
        d.claimed_amount = Some(Money::new(dec("90.00"), "GBP"));
        (d.fx_rate, d.order_fx_rate) = (Some(dec("1.11")), Some(Decimal::ONE));
        // Format 14: with the dates of their `[fx]` rows.
        d.inputs.fx_rate_date = NaiveDate::from_ymd_opt(2026, 9, 25);
        d.inputs.order_fx_rate_date = NaiveDate::from_ymd_opt(2026, 9, 26);
        let t = Trace::of(&d);
        assert_eq!(
            (t.claim_fx_rate, t.order_fx_rate),
            (Some(dec("1.11")), None)
        );
        assert_eq!(
            (t.claim_fx_rate_date, t.order_fx_rate_date),
            (NaiveDate::from_ymd_opt(2026, 9, 25), None)
        );
        let s = run("[[rules]]\nid = \"cps\"\neffective_from = \"2026-01-01\"\nkind = \"percent\"\npercent = \"10\"\n", "2026-W40", &[d], &History::default());
        let csv = String::from_utf8(super::super::render::csv_file(&s[0]).unwrap()).unwrap();
        // claim_fx_rate, an empty order_fx_rate, then the (format 5)
        // adjustment columns, empty on a line but for its outcome (format
        // 10), then what the decision compared (format 10), then the
        // network's commission, volume now and tolerance currency (13),
        // then the rates' dates (14: no payout rate row for EUR → EUR),
        // then the statement the row is of (17).
        assert!(
            csv.lines().nth(1).unwrap().ends_with(
                ",1.11,,matched,,,,90.00,GBP,100.00,,EUR,,,,,,,2026-09-25,,,,shop/2026-W40/g1:p1,g1:p1,draft,1"
            ),
            "{csv}"
        );
    }

    /// QA38c C-M1: the statement id and payee every row of a format-17
    /// CSV ends with are text cells under the statement's formula guard,
    /// as in `summary.csv`; status and version are codes.
    #[test]
    fn the_csv_names_its_statement_under_the_formula_guard() {
        let rules = "[[rules]]\nid = \"cps\"\neffective_from = \"2026-01-01\"\nkind = \"percent\"\npercent = \"10\"\n";
        let mut s = run(rules, "2026-W40", &[sale("k1", "p1")], &History::default()).remove(0);
        s.statement_id = "=x/2026-W40/g1:p1".into();
        let csv = String::from_utf8(super::super::render::csv_file(&s).unwrap()).unwrap();
        let summary =
            super::super::render::summary_csv(&[super::super::render::SummaryRow::of(&s, "h")])
                .unwrap();
        assert!(
            String::from_utf8(summary)
                .unwrap()
                .contains(",draft,1,'=x/2026-W40/g1:p1,h\n"),
            "summary.csv guards it so"
        );
        for row in csv.lines().skip(1) {
            assert!(row.ends_with(",'=x/2026-W40/g1:p1,g1:p1,draft,1"), "{csv}");
        }
    }

    /// QA18 A1: a line says what its basis came from (format 10): its
    /// outcome and the amounts the decision compared, in the JSON, CSV
    /// and, when the basis is not the claimed amount, the HTML.
    #[test]
    fn a_line_says_what_its_basis_came_from() {
        let mut mismatch = with_basis(sale("k1", "p1"), "240.80");
        mismatch.outcome = Outcome::AmountMismatch;
        mismatch.claimed_amount = Some(Money::new(dec("301.0"), "EUR"));
        mismatch.order_amount = Some(Money::new(dec("240.80"), "EUR"));
        mismatch.inputs.tolerance_applied = Some(dec("2.41"));
        let mut refunded = with_basis(sale("k2", "p1"), "195.76");
        refunded.outcome = Outcome::PartiallyRefunded;
        refunded.order_amount = Some(Money::new(dec("240.80"), "EUR"));
        refunded.refunded_amount = Some(Money::new(dec("45.04"), "EUR"));
        // QA19 NEW-1: within tolerance of a partly refunded order, the
        // basis is the claimed amount less the refunded share:
        // 227.00 × (228.33 − 76.11) / 228.33 = 151.33, not the net 152.22.
        let mut share = with_basis(sale("k3", "p1"), "151.33");
        share.outcome = Outcome::PartiallyRefunded;
        share.claimed_amount = Some(Money::new(dec("227.00"), "EUR"));
        share.order_amount = Some(Money::new(dec("228.33"), "EUR"));
        share.refunded_amount = Some(Money::new(dec("76.11"), "EUR"));
        let rules = "[[rules]]\nid = \"cps\"\neffective_from = \"2026-01-01\"\nkind = \"percent\"\npercent = \"10\"\n";
        let s = &run(
            rules,
            "2026-W40",
            &[mismatch, refunded, share],
            &History::default(),
        )[0];
        assert_eq!(s.lines[0].outcome, Some(Outcome::AmountMismatch));
        let t = s.lines[0].trace.as_ref().unwrap();
        assert_eq!(t.claimed_amount, Some(Money::new(dec("301.0"), "EUR")));
        assert_eq!(t.tolerance_applied, Some(dec("2.41")));
        // The network's `301.0` is written with EUR's two digits, as on
        // every statement amount (QA21).
        let json = serde_json::to_string(t).unwrap();
        assert!(json.contains(r#""amount":"301.00""#), "{json}");
        let csv = String::from_utf8(super::super::render::csv_file(s).unwrap()).unwrap();
        let rows: Vec<&str> = csv.lines().collect();
        assert!(
            rows[1].ends_with(
                ",amount_mismatch,,,,301.00,EUR,240.80,,EUR,2.41,,,,EUR,,,,,,shop/2026-W40/g1:p1,g1:p1,draft,1"
            ),
            "{csv}"
        );
        assert!(
            rows[2].ends_with(
                ",partially_refunded,,,,100.00,EUR,240.80,45.04,EUR,,,,,,,,,,,shop/2026-W40/g1:p1,g1:p1,draft,1"
            ),
            "{csv}"
        );
        let html = super::super::render::html_file(s, "h");
        assert!(
            html.contains("240.80 EUR<br><small>order amount; claimed 301.00 EUR</small>"),
            "{html}"
        );
        assert!(
            html.contains("195.76 EUR<br><small>order 240.80 EUR less 45.04 EUR refunded</small>"),
            "{html}"
        );
        assert!(
            html.contains("151.33 EUR<br><small>claimed 227.00 EUR less the refunded share (76.11 of 228.33 EUR)</small>"),
            "{html}"
        );
    }

    #[test]
    fn an_adjustment_from_a_restated_claim_rate_names_the_rate() {
        // Claimed 100.00 GBP, converted at 0.90 into a 90.00 EUR basis and
        // paid 9.00; `[fx]` then restates the day's rate to 0.95, so the
        // basis is 95.00 and the line is owed 9.50 (QA re-test N3: the
        // reason said only "basis 90.00 → 95.00").
        let gbp = |rate: &str, basis: &str| {
            let mut d = with_basis(sale("k1", "p1"), basis);
            d.claimed_amount = Some(Money::new(dec("100.00"), "GBP"));
            d.fx_rate = Some(dec(rate));
            d
        };
        let rule = "[[rules]]\nid = \"cps\"\neffective_from = \"2026-01-01\"\nkind = \"percent\"\npercent = \"10\"\n";
        let w40 = run(
            rule,
            "2026-W40",
            &[gbp("0.90", "90.00")],
            &History::default(),
        );
        assert_eq!(w40[0].lines[0].commission, dec("9.00"));
        let history = finalise(&w40);
        let w41 = run(rule, "2026-W41", &[gbp("0.95", "95.00")], &history);
        let a = &w41[0].adjustments[0];
        assert_eq!(a.amount, dec("0.50"));
        assert!(
            a.reason.starts_with(
                "basis 90.00 → 95.00; claim converted at 0.90 → 0.95; repriced to 9.50"
            ),
            "the rates as the trace prints them (finance QA F9): {}",
            a.reason
        );
        assert_eq!(a.trace.as_ref().unwrap().claim_fx_rate, Some(dec("0.95")));
        assert!(
            a.reason.contains(&format!(
                "→ {};",
                a.trace.as_ref().unwrap().claim_fx_rate.unwrap()
            )),
            "{}",
            a.reason
        );
        // A ledger entry from before the rates were kept names no rate.
        let mut old = history.clone();
        for p in old.paid.values_mut() {
            p.claim_fx_rate = None;
        }
        let w41 = run(rule, "2026-W41", &[gbp("0.95", "95.00")], &old);
        let reason = &w41[0].adjustments[0].reason;
        assert!(!reason.contains("converted at"), "{reason}");
    }

    /// QA24 F9: repricing a finalised line multiplied two commissions near
    /// 10^15 (`original × now / was`) and `statements generate` panicked.
    #[test]
    fn repricing_commissions_near_the_amount_bound_does_not_overflow() {
        let rule = "[[rules]]\nid = \"all\"\neffective_from = \"2026-01-01\"\nkind = \"percent\"\npercent = \"100\"\n";
        let k1 = with_basis(sale("k1", "p1"), "999999999999999.00");
        let w40 = run(rule, "2026-W40", &[k1], &History::default());
        assert_eq!(w40[0].lines[0].commission, dec("999999999999999.00"));
        let mut refunded = with_basis(sale("k1", "p1"), "999999999999998.00");
        refunded.outcome = Outcome::PartiallyRefunded;
        let w41 = run(rule, "2026-W41", &[refunded], &finalise(&w40));
        assert_eq!(adjustments(&w41), [("k1".to_string(), dec("-1.00"))]);
    }

    /// QA24 F6: a basis within the amount bound, converted into the payout
    /// currency at a rate within the rate bound, went past `Decimal`'s
    /// range while pricing. Such a line is held back, saying why.
    #[test]
    fn a_line_converted_beyond_the_amount_bound_is_held_back_not_a_panic() {
        let config: CommissionConfig = toml::from_str(
            "payout_currency = \"GBP\"\nperiod = \"weekly\"\n[[rules]]\nid = \"cps\"\neffective_from = \"2026-01-01\"\nkind = \"percent\"\npercent = \"10\"\n",
        )
        .unwrap();
        let cx = draft_of_shop(&config, "2026-W40");
        let day = NaiveDate::from_ymd_opt(2026, 9, 30).unwrap();
        let fx: BTreeMap<(String, String, NaiveDate), Decimal> =
            [(("EUR".to_owned(), "GBP".to_owned(), day), dec("999999999"))].into();
        let huge = with_basis(sale("k1", "p1"), "999999999999999.00");
        let (s, skipped) = build_all(&cx, &[huge, sale("k2", "p1")], &History::default(), &fx);
        assert_eq!(skipped.len(), 1, "{skipped:?}");
        assert_eq!(skipped[0].claim, "g1/k1");
        assert!(
            skipped[0].reason.contains(
                "commission basis 999999999999999.00 EUR is 999999998999999000000001.00 GBP at the EUR→GBP rate 999999999, not below 1000000000000000"
            ),
            "{skipped:?}"
        );
        // The other line is priced: 10 % of 100.00 EUR at 999999999.
        assert_eq!(s[0].lines.len(), 1);
        assert_eq!(s[0].lines[0].commission, dec("9999999990.00"));
    }

    #[test]
    fn a_rule_edited_in_place_keeps_the_original_terms_for_a_restated_claim() {
        // Paid 10.00 at 10 %; the rule is then edited to 11 % and the order
        // partly refunded to 60.00: the line is 60 % of what it was, 6.00,
        // the original terms on the new data (QA: original + difference
        // under the new rule gave 10.00 + 6.60 - 11.00 = 5.60).
        let rule = |pct: &str| {
            format!("[[rules]]\nid = \"cps\"\neffective_from = \"2026-01-01\"\nkind = \"percent\"\npercent = \"{pct}\"\n")
        };
        let w40 = run(
            &rule("10"),
            "2026-W40",
            &[sale("k1", "p1")],
            &History::default(),
        );
        let history = finalise(&w40);
        let mut k1 = with_basis(sale("k1", "p1"), "60.00");
        k1.outcome = Outcome::PartiallyRefunded;
        let w41 = run(&rule("11"), "2026-W41", &[k1], &history);
        assert_eq!(adjustments(&w41), [("k1".to_string(), dec("-4.00"))]);
    }

    #[test]
    fn a_capped_line_is_repriced_under_its_cap() {
        // 12 % of 1000.00 = 120.00, cut to the 100.00 cap. Restated to
        // 2000.00 (240.00 before the cap): the cap still holds, nothing is
        // owed (QA: +100.00 was paid). Refunded down to 500.00: 60.00,
        // under the cap, so -40.00 (a rescale of the capped 100.00 gave
        // 50.00).
        let rules = "[[rules]]\nid = \"cps\"\neffective_from = \"2026-01-01\"\nkind = \"percent\"\npercent = \"12\"\ncap_per_period = \"100\"\n";
        let w40 = run(
            rules,
            "2026-W40",
            &[with_basis(sale("k1", "p1"), "1000.00")],
            &History::default(),
        );
        assert_eq!(w40[0].lines[0].commission, dec("100.00"));
        let history = finalise(&w40);
        let up = run(
            rules,
            "2026-W41",
            &[with_basis(sale("k1", "p1"), "2000.00")],
            &history,
        );
        assert!(adjustments(&up).is_empty(), "{up:?}");
        let mut down = with_basis(sale("k1", "p1"), "500.00");
        down.outcome = Outcome::PartiallyRefunded;
        let down = run(rules, "2026-W41", &[down], &history);
        assert_eq!(adjustments(&down), [("k1".to_string(), dec("-40.00"))]);
        assert!(
            down[0].adjustments[0]
                .reason
                .starts_with("basis 1000.00 → 500.00; repriced to 60.00"),
            "{}",
            down[0].adjustments[0].reason
        );
    }

    /// QA39b B-M2: an adjustment of a line a cap cuts says so, in its
    /// line's words, whether the claim changed itself (its basis restated)
    /// or only its statement's other lines did: its printed terms (basis ×
    /// rate) do not give its amount, the cap does.
    #[test]
    fn an_adjustment_of_a_capped_line_says_the_cap_cut_it() {
        // 10 %, cap 35.00: k1 300.00 gives 30.00, k2 200.00 gives 20.00
        // cut to the 5.00 left.
        let rules = "[[rules]]\nid = \"cps\"\neffective_from = \"2026-01-01\"\nkind = \"percent\"\npercent = \"10\"\ncap_per_period = \"35\"\n";
        let w40 = run(
            rules,
            "2026-W40",
            &[
                with_basis(sale("k1", "p1"), "300.00"),
                with_basis(sale("k2", "p1"), "200.00"),
            ],
            &History::default(),
        );
        assert_eq!(
            w40[0].lines[1].note.as_deref(),
            Some("capped: 20.00 cut to 5.00 (cap 35.00 per period)")
        );
        let history = finalise(&w40);
        let mut k1 = with_basis(sale("k1", "p1"), "250.00");
        k1.outcome = Outcome::PartiallyRefunded;
        // k1 refunded down to 250.00 (25.00): k2 gets the 10.00 left.
        let w41 = run(
            rules,
            "2026-W41",
            &[k1.clone(), with_basis(sale("k2", "p1"), "200.00")],
            &history,
        );
        assert_eq!(
            adjustments(&w41),
            [
                ("k1".to_string(), dec("-5.00")),
                ("k2".to_string(), dec("5.00"))
            ]
        );
        let reason = &w41[0].adjustments[1].reason;
        assert!(
            reason.starts_with("repriced with the other lines of statement shop/2026-W40/g1:p1: their volume changed (500.00 → 450.00), so its tiers and caps give this line 10.00 now (")
                && reason.ends_with("); capped: 20.00 cut to 10.00 (cap 35.00 per period)"),
            "{reason}"
        );
        // k2 restated up to 300.00 too: 30.00, cut to the same 10.00.
        let w41 = run(
            rules,
            "2026-W41",
            &[k1, with_basis(sale("k2", "p1"), "300.00")],
            &history,
        );
        assert_eq!(adjustments(&w41)[1], ("k2".to_string(), dec("5.00")));
        let reason = &w41[0].adjustments[1].reason;
        assert_eq!(
            reason,
            "basis 200.00 → 300.00; repriced to 10.00 (`matched`: order id matches); capped: 30.00 cut to 10.00 (cap 35.00 per period)"
        );
        // The printed terms alone do not give 10.00: 10 % of 300.00.
        assert_eq!(w41[0].adjustments[1].rate_percent, Some(dec("10")));
        // Not cut now: nothing about a cap (k1 refunded down to 100.00
        // leaves 25.00 of room for k2's 20.00).
        let mut k1 = with_basis(sale("k1", "p1"), "100.00");
        k1.outcome = Outcome::PartiallyRefunded;
        let w41 = run(
            rules,
            "2026-W41",
            &[k1, with_basis(sale("k2", "p1"), "200.00")],
            &history,
        );
        let reason = &w41[0].adjustments[1].reason;
        assert!(!reason.contains("capped"), "{reason}");
    }

    #[test]
    fn a_refund_below_an_all_volume_tier_reprices_the_other_lines_of_its_statement() {
        // 600 + 600 = 1200 reaches the 8 % tier: 48.00 each. k2 is then
        // refunded: k2 gives back 48.00, and k1, alone at 600 in the 5 %
        // tier, 18.00 (48.00 → 30.00).
        let rules = "[[rules]]\nid = \"tiers\"\neffective_from = \"2026-01-01\"\nkind = \"tiered\"\ntiers = [{ from_volume = \"0\", percent = \"5\" }, { from_volume = \"1000\", percent = \"8\" }]\n";
        let paid = [
            with_basis(sale("k1", "p1"), "600.00"),
            with_basis(sale("k2", "p1"), "600.00"),
        ];
        let w40 = run(rules, "2026-W40", &paid, &History::default());
        assert_eq!(
            w40[0]
                .lines
                .iter()
                .map(|l| l.commission)
                .collect::<Vec<_>>(),
            [dec("48.00"), dec("48.00")]
        );
        let history = finalise(&w40);
        let mut k2 = sale("k2", "p1");
        (k2.outcome, k2.payable, k2.basis) = (Outcome::Refunded, false, None);
        let w41 = run(rules, "2026-W41", &[paid[0].clone(), k2], &history);
        assert_eq!(
            adjustments(&w41),
            [
                ("k1".to_string(), dec("-18.00")),
                ("k2".to_string(), dec("-48.00"))
            ]
        );
        assert!(
            w41[0].adjustments[0].reason.starts_with(
                "repriced with the other lines of statement shop/2026-W40/g1:p1: their volume changed"
            ),
            "{}",
            w41[0].adjustments[0].reason
        );
    }

    /// 5 % from 0, 8 % from 1000, all volume: three claims of 400.00 reach
    /// the 8 % tier (32.00 each); two alone are in the 5 % tier (20.00).
    const TIERS_5_8: &str = "[[rules]]\nid = \"tiers\"\neffective_from = \"2026-01-01\"\nkind = \"tiered\"\ntiers = [{ from_volume = \"0\", percent = \"5\" }, { from_volume = \"1000\", percent = \"8\" }]\n";

    /// What the finalised `statements` credited `payee` over all: lines,
    /// adjustments, bonus adjustments and bonuses.
    fn credited(statements: &[Vec<Statement>], payee: &str) -> Decimal {
        statements
            .iter()
            .flatten()
            .filter(|s| s.payee() == payee)
            .map(|s| s.totals.lines + s.totals.adjustments + s.totals.bonuses)
            .sum()
    }

    /// A paid claim moves to another partner: the take-back lowers the
    /// tier of the first partner's other lines (-12.00 each), and no later
    /// statement pays that back. (Before, finalising the take-back took the
    /// moved claim out of the ledger, so the next repricing no longer
    /// counted it in the volume the other lines were paid on and paid the
    /// -12.00 back, for good.)
    #[test]
    fn a_tier_lowered_by_a_moved_claim_is_not_paid_back_by_later_statements() {
        let paid = [
            with_basis(sale("k1", "p1"), "400.00"),
            with_basis(sale("k2", "p1"), "400.00"),
            with_basis(sale("k3", "p1"), "400.00"),
        ];
        let w40 = run(TIERS_5_8, "2026-W40", &paid, &History::default());
        assert_eq!(w40[0].totals.lines, dec("96.00"));
        let history = finalise_onto(History::default(), &w40);

        // k3 moved to p9: p1 gives back k3's 32.00 and 12.00 on each of the
        // others (800.00 is in the 5 % tier); p9 is paid k3 as a new line.
        let now = [
            paid[0].clone(),
            paid[1].clone(),
            with_basis(sale("k3", "p9"), "400.00"),
        ];
        let w41 = run(TIERS_5_8, "2026-W41", &now, &history);
        assert_eq!(
            adjustments(&w41),
            [
                ("k1".to_string(), dec("-12.00")),
                ("k2".to_string(), dec("-12.00")),
                ("k3".to_string(), dec("-32.00"))
            ]
        );
        assert_eq!(
            (w41[1].payee().as_str(), w41[1].lines[0].commission),
            ("g1:p9", dec("20.00"))
        );
        let mut history = finalise_onto(history, &w41);
        let mut all = vec![w40, w41];
        for period in ["2026-W42", "2026-W43"] {
            let later = run(TIERS_5_8, period, &now, &history);
            assert!(later.is_empty(), "{period}: {later:?}");
            history = finalise_onto(history, &later);
            all.push(later);
        }
        // p1 holds k1 and k2, in the 5 % tier; p9 holds k3.
        assert_eq!(credited(&all, "g1:p1"), dec("40.00"));
        assert_eq!(credited(&all, "g1:p9"), dec("20.00"));

        // A store that finalised the repayment (+12.00 each) before the
        // fix has it taken back by its next statement, once.
        for k in ["k1", "k2"] {
            h_paid(&mut history, k).paid_total += dec("12.00");
        }
        let w44 = run(TIERS_5_8, "2026-W44", &now, &history);
        assert_eq!(
            adjustments(&w44),
            [
                ("k1".to_string(), dec("-12.00")),
                ("k2".to_string(), dec("-12.00"))
            ]
        );
        assert!(
            w44[0].adjustments[0].reason.starts_with(
                "repriced with the other lines of statement shop/2026-W40/g1:p1: their volume changed (1200.00 → 800.00), so its tiers and caps give this line 20.00 now"
            ),
            "{}",
            w44[0].adjustments[0].reason
        );
        let history = finalise_onto(history, &w44);
        assert!(run(TIERS_5_8, "2026-W45", &now, &history).is_empty());
    }

    fn h_paid<'h>(h: &'h mut History, claim: &str) -> &'h mut PaidClaim {
        h.paid
            .get_mut(&("g1".to_string(), claim.to_string()))
            .unwrap()
    }

    /// The other take-backs: a refund lowers the tier once; when the
    /// refunded claim later moves to another partner that is paid it (its
    /// ledger entry replaced, with no take-back of its own), the tier stays
    /// lowered.
    #[test]
    fn a_tier_lowered_by_a_refund_stays_lowered_when_the_claim_later_moves() {
        let paid = [
            with_basis(sale("k1", "p1"), "400.00"),
            with_basis(sale("k2", "p1"), "400.00"),
            with_basis(sale("k3", "p1"), "400.00"),
        ];
        let w40 = run(TIERS_5_8, "2026-W40", &paid, &History::default());
        let history = finalise_onto(History::default(), &w40);
        let mut k3 = sale("k3", "p1");
        (k3.outcome, k3.payable, k3.basis) = (Outcome::Refunded, false, None);
        let refunded = [paid[0].clone(), paid[1].clone(), k3];
        let w41 = run(TIERS_5_8, "2026-W41", &refunded, &history);
        assert_eq!(
            adjustments(&w41),
            [
                ("k1".to_string(), dec("-12.00")),
                ("k2".to_string(), dec("-12.00")),
                ("k3".to_string(), dec("-32.00"))
            ]
        );
        let mut history = finalise_onto(history, &w41);
        let w42 = run(TIERS_5_8, "2026-W42", &refunded, &history);
        assert!(w42.is_empty(), "{w42:?}");

        // The refund undone, but the network now credits k3 to p9: p1 was
        // credited nothing for it (nothing to take back), p9 is paid it.
        let moved = [
            paid[0].clone(),
            paid[1].clone(),
            with_basis(sale("k3", "p9"), "400.00"),
        ];
        let w42 = run(TIERS_5_8, "2026-W42", &moved, &history);
        assert_eq!(adjustments(&w42), []);
        assert_eq!(
            w42.iter().map(Statement::payee).collect::<Vec<_>>(),
            ["g1:p9"]
        );
        history = finalise_onto(history, &w42);
        let mut all = vec![w40, w41, w42];
        for period in ["2026-W43", "2026-W44"] {
            let later = run(TIERS_5_8, period, &moved, &history);
            assert!(later.is_empty(), "{period}: {later:?}");
            history = finalise_onto(history, &later);
            all.push(later);
        }
        assert_eq!(credited(&all, "g1:p1"), dec("40.00"));
        assert_eq!(credited(&all, "g1:p9"), dec("20.00"));
    }

    /// The tiered rule and the bonus of finance QA F3: 5 % from 0, 10 %
    /// from 500; 20.00 from 600 (`bonus`: TOML of the bonus's figures).
    fn tiers_and_bonus(bonus: &str) -> String {
        format!(
            "[[rules]]\nid = \"tier\"\neffective_from = \"2026-01-01\"\nkind = \"tiered\"\ntiers = [{{ from_volume = \"0\", percent = \"5\" }}, {{ from_volume = \"500\", percent = \"10\" }}]\n\
            [[bonuses]]\nid = \"bonus600\"\neffective_from = \"2026-01-01\"\n{bonus}\n"
        )
    }

    /// The history after finalising `statements` on top of `h`: their
    /// lines paid, their adjustments and bonus adjustments applied, their
    /// bonus lines recorded (what `lifecycle` records).
    fn finalise_onto(mut h: History, statements: &[Statement]) -> History {
        // A claim taken back because it moved to another partner leaves
        // the ledger first (its new partner's line, maybe in the same
        // batch, records it anew), as `lifecycle` does; the line it
        // described goes to the released lines of its statement, as does
        // an entry a new line replaces.
        let moved = |a: &Adjustment| a.reason.starts_with("claim moved to partner");
        let release = |h: &mut History, claim: (String, String), p: PaidClaim| {
            h.released
                .entry(p.statement_id.clone())
                .or_default()
                .insert(claim, p);
        };
        for a in statements.iter().flat_map(|s| &s.adjustments) {
            let claim = (a.network.clone(), a.claim_id.clone());
            if !moved(a) {
                continue;
            }
            if let Some(mut p) = h.paid.remove(&claim) {
                p.paid_total += a.amount;
                release(&mut h, claim, p);
            }
        }
        for s in statements {
            for l in &s.lines {
                let claim = (l.network.clone(), l.claim_id.clone());
                if let Some(p) = h.paid.insert(claim.clone(), PaidClaim::of_line(s, l)) {
                    release(&mut h, claim, p);
                }
            }
            for a in s.adjustments.iter().filter(|a| !moved(a)) {
                if let Some(p) = h.paid.get_mut(&(a.network.clone(), a.claim_id.clone())) {
                    p.paid_total += a.amount;
                }
            }
            for b in &s.bonuses {
                h.bonuses
                    .entry(s.statement_id.clone())
                    .or_default()
                    .insert(b.bonus_id.clone(), PaidBonus::of_line(b));
            }
            for a in &s.bonus_adjustments {
                let of = h
                    .bonuses
                    .entry(a.original_statement_id.clone())
                    .or_default();
                let paid = PaidBonus::adjusted(of.get(&a.bonus_id), a);
                of.insert(a.bonus_id.clone(), paid);
            }
        }
        h
    }

    fn bonus_adjustments_of(s: &[Statement]) -> Vec<(String, Decimal)> {
        s.iter()
            .flat_map(|s| &s.bonus_adjustments)
            .map(|a| (a.bonus_id.clone(), a.amount))
            .collect()
    }

    /// Finance QA F3: the refund that reprices a paid statement's tiered
    /// lines takes back the bonus that statement was paid on the same
    /// volume, once.
    #[test]
    fn a_bonus_no_longer_reached_after_a_refund_is_taken_back_once() {
        let rules = tiers_and_bonus("threshold_volume = \"600\"\namount = \"20\"");
        // W40: 200 + 300 + 120 = 620 reaches the 10 % tier and the bonus:
        // 20.00 + 30.00 + 12.00 = 62.00, bonus 20.00, 82.00 in all.
        let paid = [
            with_basis(sale("t1", "p1"), "200.00"),
            with_basis(sale("t2", "p1"), "300.00"),
            with_basis(sale("t3", "p1"), "120.00"),
        ];
        let w40 = run(&rules, "2026-W40", &paid, &History::default());
        assert_eq!(w40[0].totals.lines, dec("62.00"));
        assert_eq!(
            w40[0]
                .bonuses
                .iter()
                .map(|b| (b.bonus_id.as_str(), b.volume, b.amount))
                .collect::<Vec<_>>(),
            [("bonus600", dec("620.00"), dec("20.00"))]
        );
        assert_eq!(w40[0].totals.subtotal, dec("82.00"));
        let history = finalise_onto(History::default(), &w40);

        // t2 refunded: 320 left, in the 5 % tier: t1 20.00 → 10.00, t2
        // 30.00 → 0, t3 12.00 → 6.00, and 320 < 600: the bonus is taken back.
        let mut t2 = sale("t2", "p1");
        (t2.outcome, t2.payable, t2.basis) = (Outcome::Refunded, false, None);
        let now = [paid[0].clone(), t2, paid[2].clone()];
        let w41 = run(&rules, "2026-W41", &now, &history);
        assert_eq!(
            adjustments(&w41),
            [
                ("t1".to_string(), dec("-10.00")),
                ("t2".to_string(), dec("-30.00")),
                ("t3".to_string(), dec("-6.00"))
            ]
        );
        assert!(w41[0].bonuses.is_empty(), "{:?}", w41[0].bonuses);
        let a = &w41[0].bonus_adjustments[0];
        assert_eq!(w41[0].bonus_adjustments.len(), 1);
        assert_eq!(
            (
                a.line_no,
                a.bonus_id.as_str(),
                a.original_statement_id.as_str(),
                a.original_line_no
            ),
            (4, "bonus600", "shop/2026-W40/g1:p1", Some(4))
        );
        assert_eq!(
            (
                a.original_volume,
                a.current_volume,
                a.original_amount,
                a.previously_paid,
                a.amount
            ),
            (
                dec("620.00"),
                dec("320.00"),
                dec("20.00"),
                dec("20.00"),
                dec("-20.00")
            )
        );
        assert_eq!(
            a.reason,
            "bonus `bonus600` of statement shop/2026-W40/g1:p1 no longer reached: volume 320.00 < threshold 600.00; the bonus credited for it is taken back"
        );
        assert_eq!(w41[0].totals.adjustments, dec("-66.00"));
        assert_eq!(w41[0].totals.subtotal, dec("-66.00"));

        // Finalised: the next statement takes nothing back again.
        let history = finalise_onto(history, &w41);
        let w42 = run(&rules, "2026-W42", &now, &history);
        assert!(w42.is_empty(), "{w42:?}");

        // The refund undone: the tier and the bonus come back, once.
        let w42 = run(&rules, "2026-W42", &paid, &history);
        assert_eq!(
            bonus_adjustments_of(&w42),
            [("bonus600".to_string(), dec("20.00"))]
        );
        assert!(
            w42[0].bonus_adjustments[0]
                .reason
                .starts_with("bonus `bonus600` of statement shop/2026-W40/g1:p1 reached again: volume 620.00 ≥ threshold 600.00"),
            "{}",
            w42[0].bonus_adjustments[0].reason
        );
        let history = finalise_onto(history, &w42);
        assert!(run(&rules, "2026-W43", &paid, &history).is_empty());
    }

    #[test]
    fn an_upward_restatement_over_the_threshold_pays_the_bonus_once() {
        let rules = tiers_and_bonus("threshold_volume = \"600\"\namount = \"20\"");
        // W40 paid 200 + 300 = 500 (10 %: 20.00 + 30.00, no bonus); t2
        // restated to 450 lifts the volume to 650: t2 is owed 45.00
        // (+15.00) and the bonus 20.00.
        let paid = [
            with_basis(sale("t1", "p1"), "200.00"),
            with_basis(sale("t2", "p1"), "300.00"),
        ];
        let w40 = run(&rules, "2026-W40", &paid, &History::default());
        assert!(w40[0].bonuses.is_empty());
        let history = finalise_onto(History::default(), &w40);
        let now = [paid[0].clone(), with_basis(sale("t2", "p1"), "450.00")];
        let w41 = run(&rules, "2026-W41", &now, &history);
        assert_eq!(adjustments(&w41), [("t2".to_string(), dec("15.00"))]);
        let a = &w41[0].bonus_adjustments[0];
        assert_eq!(
            (
                a.line_no,
                a.original_line_no,
                a.original_volume,
                a.current_volume,
                a.amount
            ),
            (2, None, dec("500.00"), dec("650.00"), dec("20.00"))
        );
        assert_eq!(
            a.reason,
            "bonus `bonus600` of statement shop/2026-W40/g1:p1 now reached: volume 650.00 ≥ threshold 600.00; the bonus is paid"
        );
        assert_eq!(w41[0].totals.subtotal, dec("35.00"));

        // Not twice; and when the restatement is undone, taken back.
        let history = finalise_onto(history, &w41);
        assert!(run(&rules, "2026-W42", &now, &history).is_empty());
        let w42 = run(&rules, "2026-W42", &paid, &history);
        assert_eq!(
            bonus_adjustments_of(&w42),
            [("bonus600".to_string(), dec("-20.00"))]
        );

        // An increase waits while a claim of the statement is not payable;
        // its payment stands, and the claim is listed as an adjustment
        // that waits, saying so (QA53 M1: nothing said it).
        let mut pending = with_basis(sale("t2", "p1"), "450.00");
        pending.payable = false;
        let (w41, skipped) = run_all(
            &rules,
            "2026-W41",
            &[paid[0].clone(), pending.clone()],
            &finalise_onto(History::default(), &w40),
        );
        assert!(w41.is_empty(), "{w41:?}");
        assert_eq!(skipped.len(), 1, "{skipped:?}");
        let (paid_line, reason) = (&w40[0].lines[1], &skipped[0].reason);
        assert!(skipped[0].waits);
        assert_eq!(skipped[0].claim, "g1/t2");
        assert!(
            reason.starts_with(&format!(
                "paid {} EUR (line 2 of statement shop/2026-W40/g1:p1), and not payable now: ",
                paid_line.commission
            )) && reason.ends_with(
                "What was paid stands; an increase of 15.00 EUR waits until it is payable again; a reversal, rejection or refund is taken back"
            ),
            "{reason}"
        );
        // With nothing to add, the same note without the increase.
        let mut pending = paid[1].clone();
        pending.payable = false;
        let (_, skipped) = run_all(
            &rules,
            "2026-W41",
            &[paid[0].clone(), pending],
            &finalise_onto(History::default(), &w40),
        );
        assert!(
            skipped[0]
                .reason
                .ends_with("What was paid stands; a reversal, rejection or refund is taken back"),
            "{skipped:?}"
        );
    }

    #[test]
    fn a_percent_bonus_follows_the_volume_it_was_paid_on() {
        let rules = tiers_and_bonus("threshold_volume = \"300\"\npercent = \"1\"");
        let paid = [
            with_basis(sale("t1", "p1"), "200.00"),
            with_basis(sale("t2", "p1"), "300.00"),
            with_basis(sale("t3", "p1"), "120.00"),
        ];
        // 1 % of 620.00 = 6.20.
        let w40 = run(&rules, "2026-W40", &paid, &History::default());
        assert_eq!(w40[0].bonuses[0].amount, dec("6.20"));
        let history = finalise_onto(History::default(), &w40);
        // t3 refunded to 20.00: 520.00, still over 300: 5.20, so -1.00.
        let mut t3 = with_basis(sale("t3", "p1"), "20.00");
        t3.outcome = Outcome::PartiallyRefunded;
        let now = [paid[0].clone(), paid[1].clone(), t3];
        let w41 = run(&rules, "2026-W41", &now, &history);
        let a = &w41[0].bonus_adjustments[0];
        assert_eq!(
            (a.percent, a.fx_rate, a.previously_paid, a.amount),
            (
                Some(dec("1")),
                Some(Decimal::ONE),
                dec("6.20"),
                dec("-1.00")
            )
        );
        assert!(
            a.reason.starts_with(
                "bonus `bonus600` of statement shop/2026-W40/g1:p1 follows its volume, 620.00 → 520.00: 1% of it gives 5.20 now"
            ),
            "{}",
            a.reason
        );
        let history = finalise_onto(history, &w41);
        assert!(run(&rules, "2026-W42", &now, &history).is_empty());
    }

    #[test]
    fn bonuses_added_or_edited_since_change_nothing_while_the_volume_stands() {
        // W40 paid 620 under a 20.00 bonus from 600; the bonus is then
        // edited to 25.00 from 700 and another added from 500: the volume
        // did not change, nothing is adjusted.
        let rules = tiers_and_bonus("threshold_volume = \"600\"\namount = \"20\"");
        let paid = [
            with_basis(sale("t1", "p1"), "200.00"),
            with_basis(sale("t2", "p1"), "300.00"),
            with_basis(sale("t3", "p1"), "120.00"),
        ];
        let w40 = run(&rules, "2026-W40", &paid, &History::default());
        let history = finalise_onto(History::default(), &w40);
        let edited = tiers_and_bonus("threshold_volume = \"700\"\namount = \"25\"")
            + "[[bonuses]]\nid = \"new500\"\neffective_from = \"2026-01-01\"\nthreshold_volume = \"500\"\namount = \"5\"\n";
        assert!(run(&edited, "2026-W41", &paid, &history).is_empty());
        // A change of volume judges the paid bonus on its own terms (20.00
        // from 600: still reached at 610) and the new one by the config.
        let mut t3 = with_basis(sale("t3", "p1"), "110.00");
        t3.outcome = Outcome::PartiallyRefunded;
        let w41 = run(
            &edited,
            "2026-W41",
            &[paid[0].clone(), paid[1].clone(), t3],
            &history,
        );
        assert_eq!(
            bonus_adjustments_of(&w41),
            [("new500".to_string(), dec("5.00"))]
        );
    }

    #[test]
    fn a_restated_event_or_date_reprices_the_claim_by_the_rule_now_in_force() {
        let rules = "[[rules]]\nid = \"lead\"\neffective_from = \"2026-01-01\"\nevent_types = [\"lead\"]\nkind = \"flat\"\namount = \"2.50\"\n\
            [[rules]]\nid = \"cps-old\"\neffective_from = \"2026-01-01\"\neffective_to = \"2026-09-29\"\nkind = \"percent\"\npercent = \"10\"\n\
            [[rules]]\nid = \"cps-new\"\neffective_from = \"2026-09-30\"\nkind = \"percent\"\npercent = \"12\"\n";
        // Both paid 12.00 (100.00 × 12 % on 2026-09-30).
        let w40 = run(
            rules,
            "2026-W40",
            &[sale("k1", "p1"), sale("k2", "p1")],
            &History::default(),
        );
        assert_eq!(w40[0].lines[1].commission, dec("12.00"));
        let history = finalise(&w40);
        // k1 restated as a lead (flat 2.50); k2 restated a day earlier,
        // under the 10 % rule (QA: neither was repriced).
        let mut k1 = sale("k1", "p1");
        k1.event_type = plugin_api::EventType::Lead;
        let mut k2 = sale("k2", "p1");
        k2.occurred_at -= chrono::Duration::days(1);
        let w41 = run(rules, "2026-W41", &[k1, k2], &history);
        assert_eq!(
            adjustments(&w41),
            // In date order: k2 is now the earlier.
            [
                ("k2".to_string(), dec("-2.00")),
                ("k1".to_string(), dec("-9.50"))
            ]
        );
        let reasons: Vec<&str> = w41[0]
            .adjustments
            .iter()
            .map(|a| a.reason.as_str())
            .collect();
        assert!(
            reasons[1].starts_with("event sale → lead; rule `cps-new` → `lead`; repriced to 2.50"),
            "{reasons:?}"
        );
        assert!(
            reasons[0].starts_with(
                "date 2026-09-30 → 2026-09-29; rule `cps-new` → `cps-old`; repriced to 10.00"
            ),
            "{reasons:?}"
        );
        // Unchanged data under edited rules: nothing is repriced.
        let edited = rules.replace("percent = \"12\"", "percent = \"15\"");
        let again = run(
            &edited,
            "2026-W41",
            &[sale("k1", "p1"), sale("k2", "p1")],
            &history,
        );
        assert!(adjustments(&again).is_empty(), "{again:?}");
    }

    /// QA39b B-L1: a percent bonus that comes to 0.00 (threshold 0, a
    /// volume of 0.00: flat lead lines) is no line; once the volume grows,
    /// a bonus adjustment pays it, referring to the statement (it had no
    /// bonus line), and says it credited nothing before.
    #[test]
    fn a_bonus_of_nothing_is_no_line_and_is_paid_once_the_volume_gives_it_something() {
        let rules = "[[rules]]\nid = \"lead\"\neffective_from = \"2026-01-01\"\nevent_types = [\"lead\"]\nkind = \"flat\"\namount = \"2.50\"\n\
            [[bonuses]]\nid = \"half\"\neffective_from = \"2026-01-01\"\nthreshold_volume = \"0\"\npercent = \"1\"\n";
        let lead = |basis: &str| {
            let mut d = with_basis(sale("k1", "p1"), basis);
            d.event_type = plugin_api::EventType::Lead;
            d
        };
        let w40 = run(rules, "2026-W40", &[lead("0.00")], &History::default());
        assert_eq!(w40[0].lines[0].commission, dec("2.50"));
        assert_eq!(w40[0].volume.as_ref().map(|v| v.amount), Some(dec("0.00")));
        assert!(w40[0].bonuses.is_empty(), "{:?}", w40[0].bonuses);
        assert_eq!(w40[0].totals.bonuses, dec("0.00"));
        let history = finalise_onto(History::default(), &w40);
        // The lead's basis restated to 200.00: its flat 2.50 stands, the
        // bonus is 1 % of 200.00.
        let w41 = run(rules, "2026-W41", &[lead("200.00")], &history);
        assert!(adjustments(&w41).is_empty(), "{w41:?}");
        let a = &w41[0].bonus_adjustments[0];
        assert_eq!(
            (
                a.bonus_id.as_str(),
                a.original_line_no,
                a.original_amount,
                a.previously_paid,
                a.amount
            ),
            ("half", None, dec("0.00"), dec("0.00"), dec("2.00"))
        );
        assert_eq!(
            a.reason,
            "bonus `half` of statement shop/2026-W40/g1:p1 credited nothing at volume 0.00 (no bonus line there); at volume 200.00 ≥ threshold 0.00 it gives 2.00: the bonus is paid"
        );
        // Paid once.
        let history = finalise_onto(history, &w41);
        assert!(run(rules, "2026-W42", &[lead("200.00")], &history).is_empty());

        // Paid in USD, with no EUR→USD rate at all: a percentage of 0.00
        // is nothing at any rate, so nothing is held back either.
        let config: CommissionConfig = toml::from_str(&format!(
            "payout_currency = \"USD\"\nperiod = \"weekly\"\n{rules}"
        ))
        .unwrap();
        let no_rates: BTreeMap<(String, String, NaiveDate), Decimal> = BTreeMap::new();
        let (s, skipped) = build_all(
            &draft_of_shop(&config, "2026-W40"),
            &[lead("0.00")],
            &History::default(),
            &no_rates,
        );
        assert!(skipped.is_empty(), "{skipped:?}");
        assert!(s[0].bonuses.is_empty(), "{:?}", s[0].bonuses);
    }

    /// QA41 A-L1: a percent line on a basis of 0.00 in another currency is
    /// 0.00 at any rate, so it asks `[fx]` for none, as a percent bonus on
    /// a volume of 0.00 does: neither when it is paid (it was held back),
    /// nor when it is repriced after its date was restated (its adjustment
    /// waited for the rate), nor when a rate exists (it shows none, so a
    /// rate added later changes nothing).
    #[test]
    fn a_percent_line_on_a_basis_of_nothing_asks_no_rate() {
        let config: CommissionConfig = toml::from_str(
            "payout_currency = \"USD\"\nperiod = \"weekly\"\n\
            [[rules]]\nid = \"cps\"\neffective_from = \"2026-01-01\"\nkind = \"percent\"\npercent = \"10\"\n",
        )
        .unwrap();
        let no_rates: BTreeMap<(String, String, NaiveDate), Decimal> = BTreeMap::new();
        let day = NaiveDate::from_ymd_opt(2026, 9, 30).unwrap();
        let rates: BTreeMap<(String, String, NaiveDate), Decimal> =
            [(("EUR".to_owned(), "USD".to_owned(), day), dec("1.10"))].into();
        let zero = with_basis(sale("k1", "p1"), "0.00");
        let w40 = draft_of_shop(&config, "2026-W40");
        let (s, skipped) = build_all(
            &w40,
            std::slice::from_ref(&zero),
            &History::default(),
            &no_rates,
        );
        assert!(skipped.is_empty(), "{skipped:?}");
        let l = &s[0].lines[0];
        assert_eq!(
            (l.commission, l.fx_rate, l.fx_rate_date),
            (dec("0.00"), None, None)
        );
        let (with_rate, _) = build_all(
            &w40,
            std::slice::from_ref(&zero),
            &History::default(),
            &rates,
        );
        assert_eq!(with_rate[0].lines, s[0].lines);
        // A basis that is something still needs its rate.
        let (_, skipped) = build_all(&w40, &[sale("k2", "p1")], &History::default(), &no_rates);
        assert_eq!(skipped.len(), 1, "{skipped:?}");

        // Paid, then restated a day earlier: repriced without a rate, to
        // nothing again.
        let history = finalise_onto(History::default(), &s);
        let mut earlier = zero;
        earlier.occurred_at -= chrono::Duration::days(1);
        for fx in [&no_rates, &rates] {
            let (s, skipped) = build_all(
                &draft_of_shop(&config, "2026-W41"),
                std::slice::from_ref(&earlier),
                &history,
                fx,
            );
            assert!(skipped.is_empty(), "{skipped:?}");
            assert!(adjustments(&s).is_empty(), "{s:?}");
        }
    }

    /// QA39b B-L2: a statement closed early (`--early`) prices its percent
    /// bonuses at the FX rate of the day it was closed, its last day (the
    /// period's was still to come: every percent bonus was held back, for
    /// a rate that could not exist yet); a bonus it held back for want of
    /// that day's rate is paid at that day's rate later.
    #[test]
    fn a_statement_closed_early_prices_its_percent_bonus_at_the_rate_of_its_close_day() {
        let config: CommissionConfig = toml::from_str(
            "payout_currency = \"USD\"\nperiod = \"weekly\"\n\
            [[rules]]\nid = \"cps\"\neffective_from = \"2026-01-01\"\nkind = \"percent\"\npercent = \"10\"\n\
            [[bonuses]]\nid = \"pct\"\neffective_from = \"2026-01-01\"\nthreshold_volume = \"50\"\npercent = \"1\"\n",
        )
        .unwrap();
        let closed = chrono::DateTime::parse_from_rfc3339("2026-09-30T12:00:00Z")
            .unwrap()
            .with_timezone(&chrono::Utc);
        let early = Context {
            status: Status::Finalised,
            closed_early_at: Some(closed),
            ..draft_of_shop(&config, "2026-W40")
        };
        // The sale is of 2026-09-30; W40 runs to 2026-10-04.
        let sept_30 = NaiveDate::from_ymd_opt(2026, 9, 30).unwrap();
        let key = |day| ("EUR".to_string(), "USD".to_string(), day);
        let fx: BTreeMap<(String, String, NaiveDate), Decimal> =
            [(key(sept_30), dec("0.90"))].into();
        let k1 = [sale("k1", "p1")];
        let (w40, skipped) = build_all(&early, &k1, &History::default(), &fx);
        assert!(skipped.is_empty(), "{skipped:?}");
        let b = &w40[0].bonuses[0];
        // 1 % of 100.00 EUR at 0.90.
        assert_eq!(
            (b.fx_rate, b.fx_rate_date, b.amount),
            (Some(dec("0.90")), Some(sept_30), dec("0.90"))
        );
        // Not closed early: the rate of the period's last day, not there.
        let (s, skipped) = build_all(
            &draft_of_shop(&config, "2026-W40"),
            &k1,
            &History::default(),
            &fx,
        );
        assert!(s[0].bonuses.is_empty());
        assert!(
            skipped[0]
                .reason
                .starts_with("no EUR→USD rate for 2026-10-04"),
            "{skipped:?}"
        );

        // Closed early without the close day's rate: held back, then paid
        // at that day's rate once it exists (not at the period's last
        // day's, which the table still lacks).
        let mut history = finalise(&w40);
        history.held_back_bonuses.insert(
            held_back_key("shop", "2026-W40", "g1:p1"),
            BTreeSet::from(["pct".to_string()]),
        );
        history.closed_early.insert("2026-W40".into(), closed);
        let w41 = draft_of_shop(&config, "2026-W41");
        let (s, skipped) = build_all(&w41, &k1, &history, &fx);
        assert!(skipped.is_empty(), "{skipped:?}");
        let a = &s[0].bonus_adjustments[0];
        assert_eq!(
            (a.bonus_id.as_str(), a.fx_rate, a.fx_rate_date, a.amount),
            ("pct", Some(dec("0.90")), Some(sept_30), dec("0.90"))
        );
        // Had it not closed early, the adjustment would wait for the rate
        // of the period's last day.
        history.closed_early.clear();
        let (s, skipped) = build_all(&w41, &k1, &history, &fx);
        assert!(s.iter().all(|s| s.bonus_adjustments.is_empty()));
        assert!(
            skipped[0]
                .reason
                .starts_with("no EUR→USD rate for 2026-10-04"),
            "{skipped:?}"
        );
    }
}
