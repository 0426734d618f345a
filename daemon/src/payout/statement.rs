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

use super::config::{CommissionConfig, TierMode};
use super::model::*;
use super::period::Period;
use super::rules::{self, Pricing};
use crate::reconcile::model::Decision;
use chrono::NaiveDate;
use plugin_api::currency::at_minor_scale;
use plugin_api::Money;
use rust_decimal::Decimal;
use std::collections::{BTreeMap, HashMap};

/// A source of exchange rates (the daemon's [`crate::fx::FxTable`]; tests
/// use a map).
pub trait FxRates {
    /// The rate converting 1 `base` into `quote` on `date`.
    fn rate(&self, base: &str, quote: &str, date: NaiveDate) -> Option<Decimal>;
}

impl FxRates for crate::fx::FxTable {
    fn rate(&self, base: &str, quote: &str, date: NaiveDate) -> Option<Decimal> {
        crate::fx::FxTable::rate(self, base, quote, date)
    }
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
}

/// The program-wide facts every partner's statement shares.
#[derive(Debug, Clone)]
pub struct ProgramFacts {
    /// The program currency (of the commission bases), if any basis exists.
    pub volume_currency: Option<String>,
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
}

impl FactsCount {
    /// Counts one decision.
    pub fn add(&mut self, d: &Decision) {
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

fn local_date(d: &Decision, tz: chrono_tz::Tz) -> NaiveDate {
    d.occurred_at.with_timezone(&tz).date_naive()
}

/// Sorts one partner's decisions into line order: local date, time,
/// network, claim id.
pub fn sort_for_statement(v: &mut [&Decision], tz: chrono_tz::Tz) {
    v.sort_by(|a, b| order_key(a, tz).cmp(&order_key(b, tz)));
}

/// Groups decisions by the payee whose statement they belong to (payee key,
/// [`payee_key`]: the claim's network and partner): the partner a finalised
/// statement paid (for claims in the history), else the decision's partner.
/// Payees in key order, decisions in line order.
pub fn group_by_partner<'d>(
    decisions: &'d [Decision],
    history: &History,
    tz: chrono_tz::Tz,
) -> BTreeMap<String, Vec<&'d Decision>> {
    let mut by: BTreeMap<String, Vec<&Decision>> = BTreeMap::new();
    for d in decisions {
        by.entry(payee_of(d, history)).or_default().push(d);
    }
    for v in by.values_mut() {
        sort_for_statement(v, tz);
    }
    for partner in history.balances.keys() {
        by.entry(partner.clone()).or_default();
    }
    by
}

/// The payee ([`payee_key`]) whose statement a decision belongs to: the
/// partner a finalised statement paid (claims in the history), else the
/// decision's partner.
pub fn payee_of(d: &Decision, history: &History) -> String {
    let paid_to = if history.paid.is_empty() {
        None
    } else {
        history
            .paid
            .get(&(d.claim.source.clone(), d.claim.id.clone()))
    };
    let partner = paid_to.map_or(d.partner_id.as_str(), |p| p.partner_id.as_str());
    payee_key(&d.claim.source, partner)
}

/// Whether a statement of the period ending `end` (first local date after
/// it) reads the decision at all: a claim already paid (it may need an
/// adjustment), or one payable now and dated before `end`. [`build_partner`]
/// passes over every other decision, so leaving them out changes nothing.
pub fn concerns(d: &Decision, history: &History, end: NaiveDate, tz: chrono_tz::Tz) -> bool {
    (d.payable && local_date(d, tz) < end)
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
}

/// Builds the statement of one payee (a [`payee_key`]) from its decisions
/// (sorted as by [`group_by_partner`]). Returns `None` when there is
/// nothing to state (no line, no adjustment, no balance).
pub fn build_partner<'d>(
    cx: &Context<'d>,
    facts: &ProgramFacts,
    payee: &str,
    decisions: &[&'d Decision],
    history: &History,
    fx: &dyn FxRates,
    skipped: &mut Vec<Skipped>,
) -> Option<Statement> {
    let config = cx.config;
    let tz = config.tz();
    let cur = config.payout_currency.as_str();
    let statement_id = format!("{}/{}/{}", cx.program, cx.period, payee);
    let (network, partner) = split_payee(payee);
    let mut skip = |d: &Decision, reason: String| {
        skipped.push(Skipped {
            partner_id: payee.to_string(),
            claim: format!("{}/{}", d.claim.source, d.claim.id),
            reason,
        })
    };

    // 1. Split into new payable claims and claims already paid.
    let mut candidates = Vec::new();
    let mut already_paid = Vec::new();
    for &d in decisions {
        let paid = if history.paid.is_empty() {
            None
        } else {
            history
                .paid
                .get(&(d.claim.source.clone(), d.claim.id.clone()))
        };
        if let Some(paid) = paid {
            already_paid.push((d, paid));
            continue;
        }
        let date = local_date(d, tz);
        if !d.payable || date >= cx.period.end {
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
                        resolved.rule.id
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
            let Some(r) = fx.rate(&basis.currency, cur, date) else {
                skip(
                    d,
                    format!(
                        "no FX rate {}→{cur} for {date}; add it to the rates table",
                        basis.currency
                    ),
                );
                continue;
            };
            rate = Some(r);
        }
        candidates.push(Candidate {
            d,
            date,
            resolved,
            fx: rate,
        });
    }

    // 2. Period volume: bases of the new lines in the program currency.
    let in_volume = |d: &Decision| {
        d.basis
            .as_ref()
            .filter(|b| facts.volume_currency.as_deref() == Some(b.currency.as_str()))
            .map(|b| b.amount)
    };
    // Amounts as stated: at least the currency's minor-unit digits (a
    // network's "200" reads 200.00), never rounded.
    let pad = |d: Decimal| {
        facts
            .volume_currency
            .as_deref()
            .map_or(d, |c| at_minor_scale(d, c))
    };
    let volume: Decimal = pad(candidates.iter().filter_map(|c| in_volume(c.d)).sum());

    // 3. Price each line, then apply caps in line order.
    let mut line_no = 0u32;
    let mut lines = Vec::with_capacity(candidates.len());
    let mut running_volume = Decimal::ZERO;
    let mut cap_used: HashMap<(&str, Option<&str>), Decimal> = HashMap::new();
    for c in &candidates {
        let basis_amount = in_volume(c.d);
        let (mut rate_percent, mut flat_amount, mut rate_detail) = (None, None, None);
        let exact = match &c.resolved.pricing {
            Pricing::Flat(a) => {
                flat_amount = Some(*a);
                *a
            }
            Pricing::Percent(p) => {
                rate_percent = Some(*p);
                basis_amount.unwrap_or_default() * *p / Decimal::ONE_HUNDRED
                    * c.fx.unwrap_or(Decimal::ONE)
            }
            Pricing::Tiered(TierMode::AllVolume, tiers) => {
                let p = rules::tier_percent(tiers, volume);
                rate_percent = Some(p);
                basis_amount.unwrap_or_default() * p / Decimal::ONE_HUNDRED
                    * c.fx.unwrap_or(Decimal::ONE)
            }
            Pricing::Tiered(TierMode::Marginal, tiers) => {
                let b = basis_amount.unwrap_or_default();
                let (amount, parts) = rules::marginal(tiers, running_volume, b);
                if parts.len() == 1 {
                    rate_percent = Some(parts[0].0);
                } else {
                    rate_detail = Some(
                        parts
                            .iter()
                            .map(|(p, s)| format!("{p}% × {s}"))
                            .collect::<Vec<_>>()
                            .join(" + "),
                    );
                }
                amount * c.fx.unwrap_or(Decimal::ONE)
            }
        };
        running_volume += basis_amount.unwrap_or_default();
        let mut commission = rules::round_to_minor(exact, cur);
        let mut note = None;
        if let Some(cap) = c.resolved.cap {
            let key = (
                c.resolved.rule.id.as_str(),
                c.resolved.overridden_by.map(|o| o.id.as_str()),
            );
            let used = cap_used.entry(key).or_default();
            let room = (cap - *used).max(Decimal::ZERO);
            if commission > room {
                note = Some(format!(
                    "capped: {commission} cut to {} (cap {} per period)",
                    rules::round_to_minor(room, cur),
                    at_minor_scale(cap, cur)
                ));
                commission = rules::round_to_minor(room, cur);
            }
            *used += commission;
        }
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
            rule_id: c.resolved.rule.id.clone(),
            override_id: c.resolved.overridden_by.map(|o| o.id.clone()),
            rate_percent,
            flat_amount,
            rate_detail,
            fx_rate: c.fx,
            commission,
            note,
            trace: Some(Trace::of(c.d)),
        });
    }

    // 4. Adjustments of claims paid on finalised statements.
    let mut adjustments = Vec::new();
    for (d, paid) in already_paid {
        let current_basis = d.basis.as_ref().map(|b| b.amount);
        let target = if !d.outcome.earns() {
            Decimal::ZERO
        } else {
            match (paid.original_basis, current_basis) {
                (Some(orig), Some(now)) if !orig.is_zero() && orig != now => {
                    rules::round_to_minor(paid.original_commission * now / orig, cur)
                }
                _ => paid.original_commission,
            }
        };
        let delta = target - paid.paid_total;
        // Increases wait until the claim is payable again; decreases apply now.
        if delta.is_zero() || (delta > Decimal::ZERO && !d.payable) {
            continue;
        }
        line_no += 1;
        let basis_unchanged = paid.original_basis == current_basis;
        let reason = if !d.outcome.earns() {
            format!(
                "claim is now `{}`: {}; the earlier commission is reversed",
                d.outcome.as_str(),
                d.reason
            )
        } else if delta > Decimal::ZERO && basis_unchanged {
            // Earning again after a reversal (a refund or reversal undone,
            // a duplicate contest won back): the reversed amount is repaid.
            format!(
                "claim earns again (`{}`: {}); the commission reversed earlier is paid back",
                d.outcome.as_str(),
                d.reason
            )
        } else {
            format!(
                "basis changed from {} to {} (`{}`: {}); commission rescaled",
                paid.original_basis
                    .map(|b| b.to_string())
                    .unwrap_or_default(),
                current_basis.map(|b| b.to_string()).unwrap_or_default(),
                d.outcome.as_str(),
                d.reason
            )
        };
        adjustments.push(Adjustment {
            line_no,
            network: d.claim.source.clone(),
            claim_id: d.claim.id.clone(),
            order_id: paid.order_id.clone(),
            outcome: d.outcome,
            reason,
            original_statement_id: paid.statement_id.clone(),
            original_line_no: paid.line_no,
            original_commission: paid.original_commission,
            previously_paid: paid.paid_total,
            original_basis: paid.original_basis.map(pad),
            current_basis: current_basis.map(pad),
            amount: delta,
            trace: Some(Trace::of(d)),
        });
    }

    // 5. Bonuses in force on the period's last day.
    let last_day = cx.period.last_day();
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
            (None, Some(p)) => {
                let vc = facts.volume_currency.as_deref().unwrap_or(cur);
                let Some(r) = fx.rate(vc, cur, last_day) else {
                    skipped.push(Skipped {
                        partner_id: payee.to_string(),
                        claim: format!("bonus {}", b.id),
                        reason: format!("no FX rate {vc}→{cur} for {last_day}; bonus left out"),
                    });
                    continue;
                };
                (
                    rules::round_to_minor(volume * p / Decimal::ONE_HUNDRED * r, cur),
                    Some(r),
                )
            }
            (None, None) => continue,
        };
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
            amount,
        });
    }

    let carried_in = history
        .balances
        .get(payee)
        .copied()
        .unwrap_or(Decimal::ZERO);
    if lines.is_empty() && adjustments.is_empty() && bonuses.is_empty() && carried_in.is_zero() {
        return None;
    }
    let r = |x: Decimal| rules::round_to_minor(x, cur);
    let lines_total = r(lines.iter().map(|l| l.commission).sum());
    let adjustments_total = r(adjustments.iter().map(|a| a.amount).sum());
    let bonuses_total = r(bonuses.iter().map(|b| b.amount).sum());
    let subtotal = r(lines_total + adjustments_total + bonuses_total + carried_in);
    let minimum = r(config.minimum());
    let (total_payable, carried_out) = if subtotal > Decimal::ZERO && subtotal >= minimum {
        (subtotal, r(Decimal::ZERO))
    } else {
        (r(Decimal::ZERO), subtotal)
    };
    let partner_name = decisions.iter().rev().find_map(|d| d.partner_name.clone());
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
        timezone: config.timezone_name().to_string(),
        currency: cur.to_string(),
        volume: facts
            .volume_currency
            .as_ref()
            .map(|c| Money::new(volume, c.clone())),
        lines,
        adjustments,
        bonuses,
        totals: Totals {
            lines: lines_total,
            adjustments: adjustments_total,
            bonuses: bonuses_total,
            carried_in: r(carried_in),
            subtotal,
            minimum_payout: minimum,
            total_payable,
            carried_out,
        },
    })
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
    for (partner, ds) in group_by_partner(decisions, history, tz) {
        if let Some(s) = build_partner(cx, &facts, &partner, &ds, history, fx, &mut skipped) {
            out.push(s);
        }
    }
    (out, skipped)
}
