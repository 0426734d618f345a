//! Commission rules applied to one claim: which rule is in force, which
//! override applies, and the arithmetic of each kind (flat, percent, tiers)
//! plus the rounding rule.
//!
//! Pure functions over config values; no statements, no I/O.

use super::config::{
    BonusConfig, CommissionConfig, OverrideConfig, RuleConfig, RuleKind, TierConfig, TierMode,
};
use chrono::NaiveDate;
use plugin_api::EventType;
use rust_decimal::{Decimal, RoundingStrategy};

/// Rounds `amount` to `currency`'s minor unit, half away from zero, and fixes
/// the scale to exactly that many digits (`1.5` EUR → `1.50`).
pub fn round_to_minor(amount: Decimal, currency: &str) -> Decimal {
    let dp = plugin_api::currency::minor_unit_digits(currency).unwrap_or(2);
    let mut r = amount.round_dp_with_strategy(dp, RoundingStrategy::MidpointAwayFromZero);
    r.rescale(dp);
    r
}

/// Whether a commission basis (`from`, the program currency), converted
/// at `fx` into the payout currency `to`, is an amount Reckon prices: both
/// below `MAX_AMOUNT` (10^15). Each amount and FX rate passes its own
/// bound, but a basis converted twice (claim → program → payout currency)
/// could reach 10^33 and the pricing overflowed `Decimal` (QA24 F6). `Err`:
/// the reason the line is held back, with the figure that failed.
pub fn priceable(basis: Decimal, from: &str, to: &str, fx: Option<Decimal>) -> Result<(), String> {
    let max = plugin_api::validate::MAX_AMOUNT;
    if basis.abs() >= max {
        return Err(format!(
            "commission basis {basis} {from} is not below {max}, the bound on amounts Reckon prices: an amount or an FX rate must be misread; correct the record or the rate"
        ));
    }
    let Some(r) = fx else {
        return Ok(());
    };
    match basis.checked_mul(r) {
        Some(c) if c.abs() < max => Ok(()),
        // QA25 N3: the message showed the basis before conversion.
        converted => Err(format!(
            "commission basis {basis} {from} is {} {to} at the {from}→{to} rate {r}, not below {max}, the bound on amounts Reckon prices: an amount or an FX rate must be misread; correct the record or the rate",
            converted.map_or_else(|| "beyond 7.9e28".to_owned(), |c| c.round_dp(2).to_string())
        )),
    }
}

/// How a resolved rule prices a claim.
#[derive(Debug, Clone)]
pub enum Pricing<'a> {
    /// Fixed amount per event (payout currency).
    Flat(Decimal),
    /// Percentage of the basis.
    Percent(Decimal),
    /// Tiers by period volume.
    Tiered(TierMode, &'a [TierConfig]),
}

/// The rule (and override) in force for one claim.
#[derive(Debug, Clone)]
pub struct Resolved<'a> {
    /// The matching rule.
    pub rule: &'a RuleConfig,
    /// The override applied, if any.
    pub overridden_by: Option<&'a OverrideConfig>,
    /// The figures to price with (rule's, or override's where it sets them).
    pub pricing: Pricing<'a>,
    /// Cap per partner per period, payout currency.
    pub cap: Option<Decimal>,
    /// The terms a line was paid on, when it is priced on them
    /// ([`on_terms`]): they, not the config's rule and override of today,
    /// name what prices it ([`Resolved::rule_id`]).
    pub paid: Option<&'a super::model::PaidTerms>,
}

impl Resolved<'_> {
    /// The id of the rule that prices: the paid terms' rule when priced on
    /// them (QA53: a reason said "rule `cps-11` → `cps-12`" of a line
    /// `cps-10` paid, after `cps-10` was narrowed and `cps-11` added).
    pub fn rule_id(&self) -> &str {
        self.paid
            .map_or(self.rule.id.as_str(), |t| t.rule_id.as_str())
    }

    /// The id of the override that prices, as [`Resolved::rule_id`] (QA53:
    /// an adjustment priced on the terms paid, without an override, named
    /// an override added since, with the paid rate).
    pub fn override_id(&self) -> Option<&str> {
        match self.paid {
            Some(t) => t.override_id.as_deref(),
            None => self.overridden_by.map(|o| o.id.as_str()),
        }
    }
}

fn in_force(from: Option<NaiveDate>, to: Option<NaiveDate>, date: NaiveDate) -> bool {
    from.is_none_or(|f| f <= date) && to.is_none_or(|t| date <= t)
}

/// Whether a partner entry of the config names this network's partner:
/// `network:id` names one network's partner; a bare `id` names that id on
/// every network of the program.
pub fn names_partner(entry: &str, network: Option<&str>, partner: &str) -> bool {
    entry == partner
        || network.is_some_and(|n| {
            entry
                .strip_prefix(n)
                .and_then(|r| r.strip_prefix(':'))
                .is_some_and(|id| id == partner)
        })
}

fn matches_partner(
    config: &CommissionConfig,
    partners: &[String],
    groups: &[String],
    network: Option<&str>,
    partner: &str,
) -> bool {
    if partners.is_empty() && groups.is_empty() {
        return true;
    }
    let named = |e: &String| names_partner(e, network, partner);
    partners.iter().any(named)
        || groups.iter().any(|g| {
            config
                .partner_groups
                .get(g)
                .is_some_and(|members| members.iter().any(named))
        })
}

/// The first rule in force on `date` matching the event type and the
/// network's partner, with the partner's override for it, if any.
pub fn resolve<'a>(
    config: &'a CommissionConfig,
    network: &str,
    partner: &str,
    event: EventType,
    date: NaiveDate,
) -> Option<Resolved<'a>> {
    let network = Some(network);
    let rule = config.rules.iter().find(|r| {
        in_force(Some(r.effective_from), r.effective_to, date)
            && (r.event_types.is_empty() || r.event_types.contains(&event))
            && matches_partner(config, &r.partners, &r.groups, network, partner)
    })?;
    let overridden_by = config.overrides.iter().find(|o| {
        o.rule == rule.id
            && names_partner(&o.partner, network, partner)
            && in_force(o.effective_from, o.effective_to, date)
    });
    let pricing = match rule.kind {
        RuleKind::Flat => Pricing::Flat(
            overridden_by
                .and_then(|o| o.amount)
                .or(rule.amount)
                .unwrap_or_default(),
        ),
        RuleKind::Percent => Pricing::Percent(
            overridden_by
                .and_then(|o| o.percent)
                .or(rule.percent)
                .unwrap_or_default(),
        ),
        RuleKind::Tiered => Pricing::Tiered(
            rule.tier_mode,
            overridden_by
                .and_then(|o| o.tiers.as_deref())
                .unwrap_or(&rule.tiers),
        ),
    };
    let cap = overridden_by
        .and_then(|o| o.cap_per_period)
        .or(rule.cap_per_period);
    Some(Resolved {
        rule,
        overridden_by,
        pricing,
        cap,
        paid: None,
    })
}

/// Rules that can never price a claim, as `(earlier, later)` indexes into
/// `config.rules`: `earlier` comes first and matches every claim `later`
/// would, so [`resolve`] (first match wins) never reaches `later`. Each
/// such later rule is listed once, with the first earlier rule that hides
/// it. "Every claim" by what [`resolve`] looks at:
/// - days: `earlier` is in force from `later`'s `effective_from` or before,
///   and to its `effective_to` or after (open-ended: always);
/// - event types: `earlier` has none (all), or all of `later`'s (which has
///   some);
/// - partners: `earlier` names none (all), or names each partner `later`
///   names and each of its groups (the group itself, or each of its
///   members).
///
/// A later rule hidden only by several earlier rules together is not found
/// (QA20 R20-8 asked for the plain case: two rules with the same scope).
pub fn unreachable_rules(config: &CommissionConfig) -> Vec<(usize, usize)> {
    let mut out = Vec::new();
    for (j, later) in config.rules.iter().enumerate() {
        if let Some(i) = config.rules[..j]
            .iter()
            .position(|earlier| covers(config, earlier, later))
        {
            out.push((i, j));
        }
    }
    out
}

/// Whether rule `a` matches every claim rule `b` matches.
fn covers(config: &CommissionConfig, a: &RuleConfig, b: &RuleConfig) -> bool {
    let days = a.effective_from <= b.effective_from
        && match (a.effective_to, b.effective_to) {
            (None, _) => true,
            (Some(a_to), Some(b_to)) => b_to <= a_to,
            (Some(_), None) => false,
        };
    let events = a.event_types.is_empty()
        || (!b.event_types.is_empty() && b.event_types.iter().all(|e| a.event_types.contains(e)));
    let members = |g: &String| group_members(config, g);
    let a_names =
        |p: &String| a.partners.contains(p) || a.groups.iter().any(|g| members(g).contains(p));
    let a_all = a.partners.is_empty() && a.groups.is_empty();
    let b_all = b.partners.is_empty() && b.groups.is_empty();
    let partners = a_all
        || (!b_all
            && b.partners.iter().all(a_names)
            && b.groups.iter().all(|g| {
                a.groups.contains(g) || (!members(g).is_empty() && members(g).iter().all(a_names))
            }));
    days && events && partners
}

/// Why an override can never apply ([`unreachable_overrides`]).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum NeverApplies {
    /// An earlier override (index into `config.overrides`) for the same
    /// rule names every partner this one names and is in force on each
    /// day this one and its rule are: [`resolve`] takes the first
    /// override that matches.
    Shadowed(usize),
    /// Its rule is not in force on any of its days.
    OutOfDates,
    /// Its rule names partners or groups, none of which is its partner.
    NotPriced,
    /// An earlier rule (index into `config.rules`) matches every claim of
    /// its partner that its rule would match on its days, so its rule
    /// never prices that partner then.
    RuleHidden(usize),
}

impl NeverApplies {
    /// The sentence `config check` warns with for `config.overrides[j]`.
    pub fn describe(&self, config: &CommissionConfig, j: usize) -> String {
        let o = &config.overrides[j];
        let (id, rule, partner) = (&o.id, &o.rule, &o.partner);
        let head = format!("commission override `{id}` (overrides[{j}]) never applies");
        match *self {
            NeverApplies::Shadowed(i) => {
                let a = &config.overrides[i].id;
                format!(
                    "{head}: override `{a}` (overrides[{i}]) comes before it, for the same rule `{rule}` and partner `{partner}`, and is in force on each of its days; the first override that matches applies. Move `{id}` above `{a}` (it then applies on its days and `{a}` on the others), end `{a}` the day before `{id}` starts (effective_to), or delete one of them"
                )
            }
            NeverApplies::OutOfDates => format!(
                "{head}: rule `{rule}` is not in force on any of its days; correct its effective_from/effective_to or the rule's"
            ),
            NeverApplies::NotPriced => format!(
                "{head}: rule `{rule}` does not price partner `{partner}` (its partners and groups do not name it); name the rule that prices `{partner}` in `rule`, or delete the override"
            ),
            NeverApplies::RuleHidden(i) => {
                let a = &config.rules[i].id;
                format!(
                    "{head}: rule `{a}` (rules[{i}]) comes before rule `{rule}` and matches every claim of partner `{partner}` that `{rule}` would on the override's days, so `{rule}` never prices `{partner}` then (the first rule that matches prices the claim); set `rule = \"{a}\"` in the override if it is meant for `{a}`, or delete it"
                )
            }
        }
    }
}

/// Overrides that can never apply, as `(index into config.overrides,
/// why)`, the first reason found for each (QA31-A M2: a later-dated
/// override behind an open-ended one for the same partner and rule, and an
/// override of a rule an earlier rule hides for its partner, were silently
/// dead). Like [`unreachable_rules`], only what one entry decides alone is
/// found: an override hidden by several together is not.
pub fn unreachable_overrides(config: &CommissionConfig) -> Vec<(usize, NeverApplies)> {
    let mut out = Vec::new();
    for (j, o) in config.overrides.iter().enumerate() {
        let Some(k) = config.rules.iter().position(|r| r.id == o.rule) else {
            continue;
        };
        let rule = &config.rules[k];
        // The days the override can apply: its own, within its rule's.
        let from = o
            .effective_from
            .map_or(rule.effective_from, |f| f.max(rule.effective_from));
        let to = match (o.effective_to, rule.effective_to) {
            (Some(a), Some(b)) => Some(a.min(b)),
            (a, b) => a.or(b),
        };
        if to.is_some_and(|t| t < from) {
            out.push((j, NeverApplies::OutOfDates));
            continue;
        }
        let days = |a_from: Option<NaiveDate>, a_to: Option<NaiveDate>| {
            a_from.is_none_or(|f| f <= from)
                && match (a_to, to) {
                    (None, _) => true,
                    (Some(a), Some(b)) => b <= a,
                    (Some(_), None) => false,
                }
        };
        let shadowed = config.overrides[..j].iter().position(|e| {
            e.rule == o.rule
                && covers_partner(&e.partner, &o.partner)
                && days(e.effective_from, e.effective_to)
        });
        if let Some(i) = shadowed {
            out.push((j, NeverApplies::Shadowed(i)));
            continue;
        }
        let members = |g: &String| group_members(config, g);
        let names = |r: &RuleConfig, named: &dyn Fn(&String) -> bool| {
            r.partners.iter().any(named) || r.groups.iter().any(|g| members(g).iter().any(named))
        };
        let all = |r: &RuleConfig| r.partners.is_empty() && r.groups.is_empty();
        if !all(rule) && !names(rule, &|e| may_name(e, &o.partner)) {
            out.push((j, NeverApplies::NotPriced));
            continue;
        }
        let hidden = config.rules[..k].iter().position(|e| {
            let events = e.event_types.is_empty()
                || (!rule.event_types.is_empty()
                    && rule.event_types.iter().all(|t| e.event_types.contains(t)));
            events
                && days(Some(e.effective_from), e.effective_to)
                && (all(e) || names(e, &|x| covers_partner(x, &o.partner)))
        });
        if let Some(i) = hidden {
            out.push((j, NeverApplies::RuleHidden(i)));
        }
    }
    out
}

/// Whether the partner entry `a` names every partner the entry `b` names
/// ([`names_partner`]): the same entry, or `b` is `<network>:<id>` and `a`
/// the bare `<id>` (every network's).
fn covers_partner(a: &str, b: &str) -> bool {
    a == b || b.split_once(':').is_some_and(|(_, id)| a == id)
}

/// Whether the partner entry `a` names a partner the entry `b` names on
/// some network: one covers the other.
fn may_name(a: &str, b: &str) -> bool {
    covers_partner(a, b) || covers_partner(b, a)
}

/// The terms `r` prices with, to keep with a line paid on them.
pub fn terms_of(r: &Resolved<'_>) -> super::model::PaidTerms {
    let (kind, amount, percent, tier_mode, tiers) = match r.pricing {
        Pricing::Flat(a) => (
            RuleKind::Flat,
            Some(a),
            None,
            TierMode::default(),
            Vec::new(),
        ),
        Pricing::Percent(p) => (
            RuleKind::Percent,
            None,
            Some(p),
            TierMode::default(),
            Vec::new(),
        ),
        Pricing::Tiered(mode, tiers) => (RuleKind::Tiered, None, None, mode, tiers.to_vec()),
    };
    super::model::PaidTerms {
        rule_id: r.rule_id().to_owned(),
        override_id: r.override_id().map(str::to_owned),
        kind,
        amount,
        percent,
        tier_mode,
        tiers,
        cap: r.cap,
    }
}

/// `r` priced on `terms`, the terms a line was paid on, when given: the
/// caller gives them while the line's event and date are those it was
/// paid on, so that a rule edited, replaced or overridden since does not
/// reprice it (QA14 N2: an edited tier, scaled, priced a line crossing
/// into an unedited tier at a rate no version of the rule had; QA15 P1:
/// the same through an override added later). A new event or date is
/// priced by the rule in force for it now. No rule now: `None` (the line
/// is left as paid).
pub fn on_terms<'a>(
    r: Option<Resolved<'a>>,
    terms: Option<&'a super::model::PaidTerms>,
) -> Option<Resolved<'a>> {
    let (Some(r), Some(t)) = (r.as_ref(), terms) else {
        return r;
    };
    let pricing = match t.kind {
        RuleKind::Flat => Pricing::Flat(t.amount.unwrap_or_default()),
        RuleKind::Percent => Pricing::Percent(t.percent.unwrap_or_default()),
        RuleKind::Tiered => Pricing::Tiered(t.tier_mode, &t.tiers),
    };
    Some(Resolved {
        pricing,
        cap: t.cap,
        paid: Some(t),
        ..r.clone()
    })
}

/// True when `bonus` is in force on `date` and applies to the network's
/// partner (`network` is `None` only for format-1 payees).
pub fn bonus_applies(
    config: &CommissionConfig,
    bonus: &BonusConfig,
    network: Option<&str>,
    partner: &str,
    date: NaiveDate,
) -> bool {
    in_force(Some(bonus.effective_from), bonus.effective_to, date)
        && matches_partner(config, &bonus.partners, &bonus.groups, network, partner)
}

/// The percentage of the tier reached by `volume` (all-volume tiers).
pub fn tier_percent(tiers: &[TierConfig], volume: Decimal) -> Decimal {
    tiers
        .iter()
        .rev()
        .find(|t| t.from_volume <= volume)
        .map(|t| t.percent)
        .unwrap_or_default()
}

/// Marginal tiers: the exact commission (program currency) of a basis whose
/// volume slice is `[before, before + basis)`, and a description of the split
/// when it spans more than one tier.
pub fn marginal(
    tiers: &[TierConfig],
    before: Decimal,
    basis: Decimal,
) -> (Decimal, Vec<(Decimal, Decimal)>) {
    let mut parts = Vec::new();
    let mut total = Decimal::ZERO;
    let end = before + basis;
    for (i, t) in tiers.iter().enumerate() {
        let band_lo = t.from_volume;
        let band_hi = tiers.get(i + 1).map(|n| n.from_volume);
        let lo = band_lo.max(before);
        let hi = band_hi.map_or(end, |h| h.min(end));
        if hi > lo {
            let slice = hi - lo;
            total += slice * t.percent / Decimal::ONE_HUNDRED;
            parts.push((t.percent, slice));
        }
    }
    (total, parts)
}

/// How a marginal-tier line was split (a line's `rate_detail`), from
/// [`marginal`]'s parts: `5% × 500.00 + 10% × 200.00`. A slice is an
/// amount of `currency` (the program currency of the bases), so it is
/// written as statements write amounts, with at least that currency's
/// minor-unit digits (README, Money and rounding): a slice that ends at a
/// tier boundary is the config's `from_volume` less the volume before, and
/// read `500` with the config's `"500"` (QA32d F6). Never rounded; without
/// a currency (no basis has one) as computed.
pub fn marginal_detail(parts: &[(Decimal, Decimal)], currency: Option<&str>) -> String {
    parts
        .iter()
        .map(|(rate, slice)| {
            let slice =
                currency.map_or(*slice, |c| plugin_api::currency::at_minor_scale(*slice, c));
            format!("{rate}% × {slice}")
        })
        .collect::<Vec<_>>()
        .join(" + ")
}

/// The partners of group `g` (none for an unknown group).
fn group_members<'a>(config: &'a CommissionConfig, g: &str) -> &'a [String] {
    config
        .partner_groups
        .get(g)
        .map(Vec::as_slice)
        .unwrap_or(&[])
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::str::FromStr;

    fn dec(s: &str) -> Decimal {
        Decimal::from_str(s).unwrap()
    }

    fn tiers() -> Vec<TierConfig> {
        vec![
            TierConfig {
                from_volume: dec("0"),
                percent: dec("5"),
            },
            TierConfig {
                from_volume: dec("1000"),
                percent: dec("7"),
            },
            TierConfig {
                from_volume: dec("5000"),
                percent: dec("10"),
            },
        ]
    }

    fn commission(rules: &str) -> CommissionConfig {
        let text = format!(
            "payout_currency = \"EUR\"\n[partner_groups]\nvip = [\"p-1\", \"p-2\"]\nnone = []\n{rules}"
        );
        toml::from_str(&text).unwrap()
    }

    fn rule(id: &str, from: &str, extra: &str) -> String {
        format!(
            "[[rules]]\nid = \"{id}\"\neffective_from = \"{from}\"\nkind = \"percent\"\npercent = \"5\"\n{extra}\n"
        )
    }

    // QA20 R20-8: `cps-10` then `cps-5`, same scope, both from 2020-01-01:
    // `cps-5` never applies, and nothing said so.
    #[test]
    fn a_rule_hidden_by_an_earlier_one_of_the_same_scope_is_found() {
        let hidden = |rules: &[String]| unreachable_rules(&commission(&rules.concat()));
        // The report's case, and the earlier rule starting before.
        for from in ["2020-01-01", "2019-06-01"] {
            let r = [rule("cps-10", from, ""), rule("cps-5", "2020-01-01", "")];
            assert_eq!(hidden(&r), [(0, 1)], "{from}");
        }
        // Starting later, the earlier rule leaves days to the later one.
        assert!(hidden(&[rule("a", "2021-01-01", ""), rule("b", "2020-01-01", "")]).is_empty());
        // An end date: hidden only when it ends no sooner than the later.
        let to = |d: &str| format!("effective_to = \"{d}\"");
        assert!(hidden(&[
            rule("a", "2020-01-01", &to("2020-12-31")),
            rule("b", "2020-01-01", "")
        ])
        .is_empty());
        assert_eq!(
            hidden(&[
                rule("a", "2020-01-01", &to("2020-12-31")),
                rule("b", "2020-02-01", &to("2020-12-31"))
            ]),
            [(0, 1)]
        );
        assert!(hidden(&[
            rule("a", "2020-01-01", &to("2020-12-31")),
            rule("b", "2020-02-01", &to("2021-01-31"))
        ])
        .is_empty());
        // Event types: all covers some; some covers the same or fewer.
        let ev = |e: &str| format!("event_types = [{e}]");
        assert_eq!(
            hidden(&[
                rule("a", "2020-01-01", ""),
                rule("b", "2020-01-01", &ev("\"sale\""))
            ]),
            [(0, 1)]
        );
        assert_eq!(
            hidden(&[
                rule("a", "2020-01-01", &ev("\"sale\", \"lead\"")),
                rule("b", "2020-01-01", &ev("\"lead\""))
            ]),
            [(0, 1)]
        );
        assert!(hidden(&[
            rule("a", "2020-01-01", &ev("\"sale\"")),
            rule("b", "2020-01-01", &ev("\"lead\""))
        ])
        .is_empty());
        assert!(hidden(&[
            rule("a", "2020-01-01", &ev("\"sale\"")),
            rule("b", "2020-01-01", "")
        ])
        .is_empty());
        // Partners: all covers some; a list or a group covers its own.
        let partners = |p: &str| format!("partners = [{p}]");
        let groups = |g: &str| format!("groups = [{g}]");
        assert_eq!(
            hidden(&[
                rule("a", "2020-01-01", ""),
                rule("b", "2020-01-01", &partners("\"p-9\""))
            ]),
            [(0, 1)]
        );
        assert!(hidden(&[
            rule("a", "2020-01-01", &partners("\"p-9\"")),
            rule("b", "2020-01-01", "")
        ])
        .is_empty());
        assert!(hidden(&[
            rule("a", "2020-01-01", &partners("\"p-9\"")),
            rule("b", "2020-01-01", &partners("\"p-8\""))
        ])
        .is_empty());
        assert_eq!(
            hidden(&[
                rule("a", "2020-01-01", &partners("\"p-8\", \"p-9\"")),
                rule("b", "2020-01-01", &partners("\"p-9\""))
            ]),
            [(0, 1)]
        );
        assert_eq!(
            hidden(&[
                rule("a", "2020-01-01", &groups("\"vip\"")),
                rule("b", "2020-01-01", &partners("\"p-2\""))
            ]),
            [(0, 1)]
        );
        assert_eq!(
            hidden(&[
                rule("a", "2020-01-01", &partners("\"p-1\", \"p-2\"")),
                rule("b", "2020-01-01", &groups("\"vip\""))
            ]),
            [(0, 1)]
        );
        assert!(hidden(&[
            rule("a", "2020-01-01", &partners("\"p-1\"")),
            rule("b", "2020-01-01", &groups("\"vip\""))
        ])
        .is_empty());
        assert!(hidden(&[
            rule("a", "2020-01-01", &partners("\"p-1\"")),
            rule("b", "2020-01-01", &groups("\"none\""))
        ])
        .is_empty());
        // A specific rule first, then the general one: the usual order, fine.
        assert!(hidden(&[
            rule("vip", "2020-01-01", &groups("\"vip\"")),
            rule("all", "2020-01-01", "")
        ])
        .is_empty());
        // Each hidden rule once, with the first rule hiding it.
        let r = [
            rule("a", "2020-01-01", ""),
            rule("b", "2020-01-01", ""),
            rule("c", "2021-01-01", ""),
        ];
        assert_eq!(hidden(&r), [(0, 1), (0, 2)]);
        // And as `resolve` sees it: the hidden rule never prices a claim.
        let c = commission(
            &[
                rule("cps-10", "2020-01-01", ""),
                rule("cps-5", "2020-01-01", ""),
            ]
            .concat(),
        );
        let day = chrono::NaiveDate::from_ymd_opt(2026, 10, 1).unwrap();
        assert_eq!(
            resolve(&c, "net", "p-1", EventType::Sale, day)
                .unwrap()
                .rule
                .id,
            "cps-10"
        );
    }

    #[test]
    fn rounds_half_away_from_zero_to_the_minor_unit() {
        assert_eq!(round_to_minor(dec("1.005"), "EUR").to_string(), "1.01");
        assert_eq!(round_to_minor(dec("-1.005"), "EUR").to_string(), "-1.01");
        assert_eq!(round_to_minor(dec("1.004999"), "EUR").to_string(), "1.00");
        assert_eq!(round_to_minor(dec("2.5"), "JPY").to_string(), "3");
        assert_eq!(round_to_minor(dec("1.0005"), "KWD").to_string(), "1.001");
        assert_eq!(round_to_minor(dec("7"), "USD").to_string(), "7.00");
    }

    #[test]
    fn all_volume_tier_is_the_last_reached() {
        assert_eq!(tier_percent(&tiers(), dec("999.99")), dec("5"));
        assert_eq!(tier_percent(&tiers(), dec("1000")), dec("7"));
        assert_eq!(tier_percent(&tiers(), dec("9000")), dec("10"));
    }

    #[test]
    fn marginal_tiers_split_a_crossing_line() {
        let (c, parts) = marginal(&tiers(), dec("800"), dec("300"));
        // 200 at 5% + 100 at 7%
        assert_eq!(c, dec("17"));
        assert_eq!(parts, vec![(dec("5"), dec("200")), (dec("7"), dec("100"))]);
        let (c, parts) = marginal(&tiers(), dec("0"), dec("100"));
        assert_eq!(c, dec("5"));
        assert_eq!(parts.len(), 1);
    }
}
