//! The KPI formulas (DESIGN §9) over additive totals, in exact decimals.
//!
//! [`Totals`] holds only sums, so any grouping can be added up and the ratios
//! computed last. A ratio whose denominator is zero is `None` (an empty cell),
//! never 0 and never infinity. Nothing here rounds: rounding is display-only
//! and happens in the renderers.
use rust_decimal::{Decimal, RoundingStrategy};
use serde::Serialize;

/// Additive sums for one group of rows, money in the reporting currency.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Totals {
    /// Ad impressions.
    pub impressions: u64,
    /// Ad clicks.
    pub clicks: u64,
    /// Ad spend.
    pub spend: Decimal,
    /// Conversions (platform-reported ones may be fractional).
    pub conversions: Decimal,
    /// Revenue of those conversions.
    pub revenue: Decimal,
    /// Affiliate commission.
    pub commission: Decimal,
    /// How many affiliate facts (claims, winning decisions) are in these
    /// sums. Affiliate networks report no clicks, so CVR and EPC are left
    /// empty where affiliate conversions meet ad clicks.
    pub affiliate_facts: u64,
    /// How many ad spend rows are in these sums (a cost fact, whatever
    /// its amount).
    pub spend_facts: u64,
    /// How many orders no rule attributes (`unattributed`) are in these
    /// sums. They came without an ad click and without a cost, so CVR and
    /// CPA are left empty where they meet ad clicks or cost.
    pub unattributed_facts: u64,
    /// How many facts in these sums have no known revenue (a claim
    /// without a sale amount, a spend row with platform conversions but
    /// no conversion value). Unknown is not zero: revenue, ROAS, ROI and
    /// AOV are empty while this is above zero. An amount without an FX
    /// rate to the reporting currency (an order, a claim's sale amount, a
    /// platform conversion value) counts here too.
    pub revenue_unknown: u64,
    /// How many facts in these sums have no known conversion count (a
    /// spend row with clicks or impressions whose platform sent no
    /// conversion figure, TikTok's `"-"`; QA28-D F1: counted as 0, it made
    /// a CVR of 0 %): conversions and the ratios built on them are empty
    /// while this is above zero.
    pub conversions_unknown: u64,
    /// How many facts in these sums have a spend amount without an FX rate
    /// (unknown, counted as 0 in `spend`): spend, cost and the ratios
    /// built on them are empty while this is above zero (QA16 F1).
    pub spend_unknown: u64,
    /// How many facts in these sums have a commission without an FX rate
    /// (unknown, counted as 0 in `commission`): commission, cost and the
    /// ratios built on them are empty while this is above zero.
    pub commission_unknown: u64,
    /// How many additions into these sums would have left their range:
    /// `Decimal`'s (about 7.9 × 10^28: amounts below 10^15 each, but
    /// converted at FX rates up to 10^9 and summed over many rows; QA24 F7)
    /// or `u64`'s for clicks and impressions; and how many left the sums
    /// with a cost (spend + commission) or ROI numerator (revenue − cost)
    /// out of `Decimal`'s range (QA33-C M5). A report with any is refused
    /// ([`super::KpiError::TooLarge`]), never printed wrong.
    pub overflowed: u64,
}

impl Totals {
    /// Adds another group's sums.
    pub fn add(&mut self, o: &Totals) {
        let mut overflowed = self.overflowed.saturating_add(o.overflowed);
        let mut sum = |a: &mut Decimal, b: Decimal| match a.checked_add(b) {
            Some(v) => *a = v,
            None => overflowed = overflowed.saturating_add(1),
        };
        sum(&mut self.spend, o.spend);
        sum(&mut self.conversions, o.conversions);
        sum(&mut self.revenue, o.revenue);
        sum(&mut self.commission, o.commission);
        // Counts below 10^15 a row (the host's bound) could still pass
        // u64 over 18,000 rows at the bound.
        for (a, b) in [
            (&mut self.impressions, o.impressions),
            (&mut self.clicks, o.clicks),
        ] {
            match a.checked_add(b) {
                Some(v) => *a = v,
                None => overflowed = overflowed.saturating_add(1),
            }
        }
        // Two sums each in range can still add up beyond it.
        if self.margin().is_none() {
            overflowed = overflowed.saturating_add(1);
        }
        self.overflowed = overflowed;
        self.affiliate_facts = self.affiliate_facts.saturating_add(o.affiliate_facts);
        self.spend_facts = self.spend_facts.saturating_add(o.spend_facts);
        self.unattributed_facts = self.unattributed_facts.saturating_add(o.unattributed_facts);
        self.revenue_unknown = self.revenue_unknown.saturating_add(o.revenue_unknown);
        self.conversions_unknown = self
            .conversions_unknown
            .saturating_add(o.conversions_unknown);
        self.spend_unknown = self.spend_unknown.saturating_add(o.spend_unknown);
        self.commission_unknown = self.commission_unknown.saturating_add(o.commission_unknown);
    }

    /// Whether affiliate facts (no clicks of their own) are summed with ad
    /// clicks: a ratio over clicks would divide one channel's conversions
    /// or commission by another's clicks.
    fn mixes_clicks(&self) -> bool {
        self.affiliate_facts > 0 && self.clicks > 0
    }

    /// Whether orders that came without an ad click (`unattributed`) are
    /// summed with ad clicks: CVR would count them as the ads' conversions.
    fn mixes_direct_with_clicks(&self) -> bool {
        self.unattributed_facts > 0 && self.clicks > 0
    }

    /// Whether the sums hold a cost fact: ad spend (impressions, clicks
    /// or spend of a row) or an affiliate commission.
    fn has_cost_facts(&self) -> bool {
        self.spend_facts > 0 || self.affiliate_facts > 0
    }

    /// Whether the revenue is known: no fact in the sums lacks it.
    pub fn revenue_known(&self) -> bool {
        self.revenue_unknown == 0
    }

    /// Whether the spend is known: no fact in the sums lacks an FX rate
    /// for it.
    pub fn spend_known(&self) -> bool {
        self.spend_unknown == 0
    }

    /// Whether the commission is known: no fact in the sums lacks an FX
    /// rate for it.
    pub fn commission_known(&self) -> bool {
        self.commission_unknown == 0
    }

    /// Cost = ad spend + affiliate commission; `None` when it leaves
    /// `Decimal`'s range (counted in [`Totals::overflowed`] by
    /// [`Totals::add`], so such a report is refused).
    pub fn cost(&self) -> Option<Decimal> {
        self.spend.checked_add(self.commission)
    }

    /// Revenue − cost, ROI's numerator; `None` when either leaves
    /// `Decimal`'s range (as [`Totals::cost`]).
    fn margin(&self) -> Option<Decimal> {
        self.revenue.checked_sub(self.cost()?)
    }

    /// The value of one metric; `None` is an empty cell.
    pub fn metric(&self, m: Metric) -> Option<Decimal> {
        // Unknown is not zero: a partial sum, or a ratio built on one, is
        // not shown (a missing FX rate, a network without a sale amount).
        if (!self.revenue_known() && m.needs_revenue())
            || (self.conversions_unknown > 0 && m.needs_conversions())
            || (!self.spend_known() && m.needs_spend())
            || (!self.commission_known() && m.needs_commission())
        {
            return None;
        }
        let clicks = Decimal::from(self.clicks);
        let cost = self.cost();
        match m {
            Metric::Impressions => Some(Decimal::from(self.impressions)),
            Metric::Clicks => Some(clicks),
            Metric::Spend => Some(self.spend),
            Metric::Conversions => Some(self.conversions),
            Metric::Revenue => Some(self.revenue),
            Metric::Commission => Some(self.commission),
            Metric::Cost => cost,
            Metric::Ctr => ratio(clicks, Decimal::from(self.impressions)),
            Metric::Cpc => ratio(self.spend, clicks),
            Metric::Cvr if self.mixes_clicks() || self.mixes_direct_with_clicks() => None,
            Metric::Cvr => ratio(self.conversions, clicks),
            // No cost fact in the row (e.g. `unattributed` orders alone):
            // empty, as ROAS is, not 0.00. A row with ad spend or
            // commission facts that sum to 0.00 has a cost: 0.00 per
            // conversion (QA28-D F3: view-through conversions of a day
            // without spend had an empty CPA beside a CPC of 0.00).
            Metric::Cpa if cost.is_some_and(|c| c.is_zero()) && !self.has_cost_facts() => None,
            // Orders without an ad click or a cost of their own (direct
            // traffic) would lower the cost per acquisition of the
            // marketing that has a cost: empty, as CVR.
            Metric::Cpa if self.unattributed_facts > 0 => None,
            Metric::Cpa => ratio(cost?, self.conversions),
            Metric::Roas => ratio(self.revenue, cost?),
            Metric::Roi => ratio(self.margin()?, cost?),
            Metric::Epc if self.mixes_clicks() => None,
            Metric::Epc => ratio(self.commission, clicks),
            Metric::Aov => ratio(self.revenue, self.conversions),
        }
    }
}

/// Rounds half away from zero (3.125 → 3.13), as people expect of reports.
fn round(v: Decimal, dp: u32) -> Decimal {
    v.round_dp_with_strategy(dp, RoundingStrategy::MidpointAwayFromZero)
}

/// `num / den`, or `None` when `den` is zero (or the quotient overflows).
pub fn ratio(num: Decimal, den: Decimal) -> Option<Decimal> {
    if den.is_zero() {
        None
    } else {
        num.checked_div(den)
    }
}

/// How a metric is shown.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    /// A whole count (impressions, clicks).
    Count,
    /// A possibly fractional count (conversions).
    Number,
    /// Money in the reporting currency.
    Money,
    /// A fraction shown as a percentage in tables (CTR, CVR, ROI).
    Percent,
    /// A plain ratio (ROAS).
    Ratio,
}

/// Every metric, in report column order.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Metric {
    Impressions,
    Clicks,
    Spend,
    Conversions,
    Revenue,
    Commission,
    Cost,
    Ctr,
    Cpc,
    Cvr,
    Cpa,
    Roas,
    Roi,
    Epc,
    Aov,
}

impl Metric {
    /// All metrics in column order.
    pub const ALL: [Metric; 15] = [
        Metric::Impressions,
        Metric::Clicks,
        Metric::Spend,
        Metric::Conversions,
        Metric::Revenue,
        Metric::Commission,
        Metric::Cost,
        Metric::Ctr,
        Metric::Cpc,
        Metric::Cvr,
        Metric::Cpa,
        Metric::Roas,
        Metric::Roi,
        Metric::Epc,
        Metric::Aov,
    ];

    /// Column name.
    pub fn name(self) -> &'static str {
        match self {
            Metric::Impressions => "impressions",
            Metric::Clicks => "clicks",
            Metric::Spend => "spend",
            Metric::Conversions => "conversions",
            Metric::Revenue => "revenue",
            Metric::Commission => "commission",
            Metric::Cost => "cost",
            Metric::Ctr => "ctr",
            Metric::Cpc => "cpc",
            Metric::Cvr => "cvr",
            Metric::Cpa => "cpa",
            Metric::Roas => "roas",
            Metric::Roi => "roi",
            Metric::Epc => "epc",
            Metric::Aov => "aov",
        }
    }

    /// How it is displayed.
    pub fn kind(self) -> Kind {
        match self {
            Metric::Impressions | Metric::Clicks => Kind::Count,
            Metric::Conversions => Kind::Number,
            Metric::Spend
            | Metric::Revenue
            | Metric::Commission
            | Metric::Cost
            | Metric::Cpc
            | Metric::Cpa
            | Metric::Epc
            | Metric::Aov => Kind::Money,
            Metric::Ctr | Metric::Cvr | Metric::Roi => Kind::Percent,
            Metric::Roas => Kind::Ratio,
        }
    }

    /// Whether it is computed from revenue (empty when revenue is unknown).
    pub fn needs_revenue(self) -> bool {
        matches!(
            self,
            Metric::Revenue | Metric::Roas | Metric::Roi | Metric::Aov
        )
    }

    /// Whether it is computed from the conversion count (empty when that
    /// is unknown).
    pub fn needs_conversions(self) -> bool {
        matches!(
            self,
            Metric::Conversions | Metric::Cvr | Metric::Cpa | Metric::Aov
        )
    }

    /// Whether it is computed from spend (empty when spend is unknown).
    pub fn needs_spend(self) -> bool {
        matches!(
            self,
            Metric::Spend | Metric::Cost | Metric::Cpc | Metric::Cpa | Metric::Roas | Metric::Roi
        )
    }

    /// Whether it is computed from commission (empty when commission is
    /// unknown).
    pub fn needs_commission(self) -> bool {
        matches!(
            self,
            Metric::Commission
                | Metric::Cost
                | Metric::Cpa
                | Metric::Roas
                | Metric::Roi
                | Metric::Epc
        )
    }

    /// Whether it is a ratio (has a denominator that may be zero).
    pub fn is_ratio(self) -> bool {
        matches!(
            self,
            Metric::Ctr
                | Metric::Cpc
                | Metric::Cvr
                | Metric::Cpa
                | Metric::Roas
                | Metric::Roi
                | Metric::Epc
                | Metric::Aov
        )
    }
}

/// Places machine formats (CSV, JSON) round ratios to; sums stay exact.
pub const MACHINE_RATIO_DP: u32 = 6;

/// A value as the machine formats (CSV, JSON) show it: money sums rounded
/// to `currency`'s minor unit (half away from zero; 2 places for an
/// unknown code) and written with exactly that many places, ratios (money
/// ratios too: CPC, CPA, EPC, AOV) rounded and written to exactly
/// [`MACHINE_RATIO_DP`] places, counts as they are. Sums stay exact until
/// here. So every value of a column has the same places (QA, new user:
/// `cpc` had `1.262485` and `0.00`, `roas` `10`).
pub fn machine_round(m: Metric, v: Decimal, currency: &str) -> Decimal {
    if m.is_ratio() {
        let mut r = round(v, MACHINE_RATIO_DP);
        r.rescale(MACHINE_RATIO_DP);
        r
    } else if m.kind() == Kind::Money {
        let dp = plugin_api::currency::minor_unit_digits(currency).unwrap_or(2);
        let mut r = round(v, dp);
        r.rescale(dp);
        r
    } else {
        v.normalize()
    }
}

/// The machine (CSV/JSON) text of a value ([`machine_round`]); `None` is
/// the empty string. Money sums have exactly the currency's minor-unit
/// places (`12.50`, never `12.5` or `12.495`; `1235` in JPY), ratios
/// exactly six (`10.000000`, `0.000000`, `1.262485`).
pub fn machine_text(m: Metric, v: Option<Decimal>, currency: &str) -> String {
    match v {
        Some(v) => machine_round(m, v, currency).to_string(),
        None => String::new(),
    }
}

/// The human text of a difference of two percentages: percentage points,
/// 2 places (`1.69 pp`); `None` is empty.
pub fn display_points(v: Option<Decimal>) -> String {
    match v {
        Some(v) => percent_text(v, 2, " pp"),
        None => String::new(),
    }
}

/// Places the table and HTML show a value with: money sums (spend,
/// revenue, commission, cost) the currency's minor unit (2 for EUR or an
/// unknown code, 0 for JPY: QA16 F4, `267739.81` yen), money ratios (CPC,
/// CPA, EPC, AOV), ROAS and conversions 2, counts 0. Percentages: 2 places
/// of the percentage.
fn display_dp(m: Metric, currency: &str) -> u32 {
    match m.kind() {
        Kind::Count => 0,
        Kind::Money if !m.is_ratio() => {
            plugin_api::currency::minor_unit_digits(currency).unwrap_or(2)
        }
        Kind::Number | Kind::Money | Kind::Ratio | Kind::Percent => 2,
    }
}

/// A value as the table and HTML show it, in the metric's own units
/// (a percentage stays a fraction): what [`display_text`] prints.
pub fn display_round(m: Metric, v: Decimal, currency: &str) -> Decimal {
    let dp = display_dp(m, currency);
    match m.kind() {
        // Beyond `Decimal` as a percentage (QA25 N1): no rounding to do.
        Kind::Percent => v
            .checked_mul(Decimal::ONE_HUNDRED)
            .map_or(v, |p| round(p, dp) / Decimal::ONE_HUNDRED),
        _ => round(v, dp),
    }
}

/// The human (table/HTML) text of a value: money sums to the currency's
/// minor unit, money ratios and ROAS to 2 places, percentages to 2 places
/// with `%`, counts whole; `None` is empty.
pub fn display_text(m: Metric, v: Option<Decimal>, currency: &str) -> String {
    let Some(v) = v else {
        return String::new();
    };
    let dp = display_dp(m, currency) as usize;
    match m.kind() {
        Kind::Count => round(v, 0).to_string(),
        Kind::Number => round(v, 2).normalize().to_string(),
        Kind::Money | Kind::Ratio => format!("{:.dp$}", round(v, dp as u32)),
        Kind::Percent => percent_text(v, dp, "%"),
    }
}

/// `v` (a fraction) as a percentage with `dp` places and `suffix`
/// (`12.35%`). A ratio whose percentage is beyond `Decimal`'s range (ROI
/// near 10^27, only from absurd figures; QA25 N1: `reckon kpi` panicked)
/// is written in scientific notation, its exponent raised by two
/// (`7.99999999e28%`).
fn percent_text(v: Decimal, dp: usize, suffix: &str) -> String {
    match v.checked_mul(Decimal::ONE_HUNDRED) {
        Some(p) => format!("{:.dp$}{suffix}", round(p, dp as u32)),
        None => {
            let e = format!("{v:e}");
            match e
                .split_once('e')
                .and_then(|(m, x)| Some((m, x.parse::<i64>().ok()?)))
            {
                Some((mantissa, exp)) => format!("{mantissa}e{}{suffix}", exp + 2),
                None => format!("{e}×100{suffix}"),
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use rust_decimal_macros::dec;

    /// QA25 N1: a ROI of 8 × 10^26 (8 orders of 10^15 at a rate of 10^9
    /// against 0.01 of spend) panicked the table and HTML formats.
    #[test]
    fn a_percentage_beyond_the_decimal_range_is_written_not_a_panic() {
        let roi = dec!(799999999199999200000000799);
        assert_eq!(
            display_text(Metric::Roi, Some(roi), "EUR"),
            "7.99999999199999200000000799e28%"
        );
        assert_eq!(display_round(Metric::Roi, roi, "EUR"), roi);
        assert_eq!(
            display_points(Some(roi)),
            "7.99999999199999200000000799e28 pp"
        );
        assert_eq!(
            display_text(Metric::Roi, Some(dec!(0.123456)), "EUR"),
            "12.35%"
        );
    }

    #[test]
    fn zero_denominators_are_empty() {
        let t = Totals::default();
        for m in Metric::ALL {
            assert_eq!(t.metric(m).is_none(), m.is_ratio(), "{m:?}");
        }
    }

    #[test]
    fn display_rounding() {
        assert_eq!(
            display_text(Metric::Ctr, Some(dec!(0.03125)), "EUR"),
            "3.13%"
        );
        assert_eq!(display_text(Metric::Cpa, Some(dec!(10)), "EUR"), "10.00");
        assert_eq!(display_text(Metric::Cpa, None, "EUR"), "");
        assert_eq!(
            machine_text(Metric::Roas, Some(dec!(2) / dec!(3)), "EUR"),
            "0.666667"
        );
        assert_eq!(
            machine_text(Metric::Spend, Some(dec!(12.3400)), "EUR"),
            "12.34"
        );
        assert_eq!(
            machine_text(Metric::Spend, Some(dec!(12.5)), "EUR"),
            "12.50"
        );
        assert_eq!(
            machine_text(Metric::Cpa, Some(dec!(1) / dec!(3)), "EUR"),
            "0.333333"
        );
        assert_eq!(machine_text(Metric::Clicks, Some(dec!(7)), "EUR"), "7");
    }

    /// Money sums in CSV/JSON: the currency's minor unit, half away from
    /// zero (an inverse FX rate gave `13.09090909091`, a percent rule
    /// `9032.365`).
    #[test]
    fn machine_money_is_rounded_to_the_minor_unit() {
        let inv = dec!(144) / dec!(11);
        assert_eq!(machine_text(Metric::Spend, Some(inv), "USD"), "13.09");
        assert_eq!(
            machine_text(Metric::Commission, Some(dec!(9032.365)), "EUR"),
            "9032.37"
        );
        assert_eq!(
            machine_text(Metric::Commission, Some(dec!(-0.005)), "EUR"),
            "-0.01"
        );
        assert_eq!(
            machine_text(Metric::Revenue, Some(dec!(1234.5)), "JPY"),
            "1235"
        );
    }

    /// Ratios over clicks are empty where affiliate facts (no clicks) meet
    /// ad clicks; CPA is empty without cost.
    #[test]
    fn mixed_click_ratios_and_costless_cpa_are_empty() {
        let ads = Totals {
            clicks: 100,
            spend: dec!(50),
            conversions: dec!(2),
            ..Totals::default()
        };
        assert_eq!(ads.metric(Metric::Cvr), Some(dec!(0.02)));
        let mut mixed = ads;
        mixed.add(&Totals {
            conversions: dec!(3),
            commission: dec!(7),
            affiliate_facts: 3,
            ..Totals::default()
        });
        assert_eq!(mixed.metric(Metric::Cvr), None);
        assert_eq!(mixed.metric(Metric::Epc), None);
        assert_eq!(mixed.metric(Metric::Cpc), Some(dec!(0.5)));
        let unattributed = Totals {
            conversions: dec!(3),
            revenue: dec!(90),
            ..Totals::default()
        };
        assert_eq!(unattributed.metric(Metric::Cpa), None);
        assert_eq!(unattributed.metric(Metric::Aov), Some(dec!(30)));
    }

    /// QA6 F5: unknown revenue is empty, not 0.00, with everything
    /// computed from it; the rest of the row stays.
    #[test]
    fn unknown_revenue_is_empty_with_its_ratios() {
        let mut t = Totals {
            conversions: dec!(2),
            revenue: dec!(100),
            commission: dec!(10),
            affiliate_facts: 2,
            ..Totals::default()
        };
        assert_eq!(t.metric(Metric::Roas), Some(dec!(10)));
        t.add(&Totals {
            conversions: dec!(1),
            commission: dec!(5),
            affiliate_facts: 1,
            revenue_unknown: 1,
            ..Totals::default()
        });
        for m in [Metric::Revenue, Metric::Roas, Metric::Roi, Metric::Aov] {
            assert_eq!(t.metric(m), None, "{m:?}");
        }
        assert_eq!(t.metric(Metric::Cpa), Some(dec!(5)));
        assert_eq!(t.metric(Metric::Commission), Some(dec!(15)));
    }

    /// QA16 F1: an amount without an FX rate is unknown, not zero: the
    /// money column it belongs to and every ratio built on it are empty;
    /// the counts and the other amounts stay.
    #[test]
    fn unknown_spend_or_commission_is_empty_with_what_is_built_on_it() {
        let ads = Totals {
            impressions: 1000,
            clicks: 40,
            spend: dec!(120),
            conversions: dec!(3),
            revenue: dec!(240),
            ..Totals::default()
        };
        let mut t = ads;
        t.add(&Totals {
            impressions: 500,
            clicks: 10,
            conversions: dec!(1),
            revenue: dec!(60),
            spend_unknown: 1,
            ..Totals::default()
        });
        for m in [
            Metric::Spend,
            Metric::Cost,
            Metric::Cpc,
            Metric::Cpa,
            Metric::Roas,
            Metric::Roi,
        ] {
            assert_eq!(t.metric(m), None, "{m:?}");
        }
        assert_eq!(t.metric(Metric::Impressions), Some(dec!(1500)));
        assert_eq!(t.metric(Metric::Cvr), Some(dec!(0.08)));
        assert_eq!(t.metric(Metric::Revenue), Some(dec!(300)));
        assert_eq!(t.metric(Metric::Aov), Some(dec!(75)));
        assert_eq!(t.metric(Metric::Commission), Some(dec!(0)));
        assert_eq!(t.metric(Metric::Epc), Some(dec!(0)));

        let mut t = Totals {
            conversions: dec!(2),
            revenue: dec!(100),
            commission: dec!(10),
            affiliate_facts: 2,
            ..Totals::default()
        };
        t.add(&Totals {
            conversions: dec!(1),
            revenue: dec!(50),
            affiliate_facts: 1,
            commission_unknown: 1,
            ..Totals::default()
        });
        for m in [
            Metric::Commission,
            Metric::Cost,
            Metric::Cpa,
            Metric::Roas,
            Metric::Roi,
            Metric::Epc,
        ] {
            assert_eq!(t.metric(m), None, "{m:?}");
        }
        assert_eq!(t.metric(Metric::Spend), Some(dec!(0)));
        assert_eq!(t.metric(Metric::Conversions), Some(dec!(3)));
        assert_eq!(t.metric(Metric::Aov), Some(dec!(50)));
    }

    /// QA16 F4: the table and HTML round money sums to the currency's
    /// minor unit (`267739.81` yen read as a bug), as CSV and JSON do;
    /// money ratios, ROAS and percentages keep 2 places.
    #[test]
    fn human_money_sums_have_the_currency_places() {
        for (m, v, cur, text) in [
            (Metric::Spend, dec!(267739.81), "JPY", "267740"),
            (Metric::Cost, dec!(0.5), "JPY", "1"),
            (Metric::Spend, dec!(267739.815), "EUR", "267739.82"),
            (Metric::Revenue, dec!(1.2345), "BHD", "1.235"),
            (Metric::Commission, dec!(3), "XYZ", "3.00"),
            (Metric::Cpc, dec!(1.8349), "JPY", "1.83"),
            (Metric::Aov, dec!(16555), "JPY", "16555.00"),
            (Metric::Roas, dec!(0.316670), "JPY", "0.32"),
            (Metric::Ctr, dec!(0.026678), "JPY", "2.67%"),
        ] {
            assert_eq!(display_text(m, Some(v), cur), text, "{m:?} {v} {cur}");
        }
        assert_eq!(
            display_round(Metric::Spend, dec!(267739.81), "JPY"),
            dec!(267740)
        );
        assert_eq!(display_round(Metric::Cpc, dec!(1.8349), "JPY"), dec!(1.83));
    }

    /// QA33-C M5: spend and commission each within `Decimal`'s range but
    /// not their sum, or revenue − cost beyond it, panicked in `metric`
    /// ("Addition overflowed"); now the sums count it as an overflow (the
    /// report is refused, `KpiError::TooLarge`) and no metric panics.
    #[test]
    fn a_cost_or_roi_beyond_the_range_counts_as_an_overflow_and_never_panics() {
        let half = Decimal::MAX / dec!(2) + Decimal::ONE;
        for (spend, commission, revenue) in [
            (half, half, Decimal::ZERO),
            (Decimal::ZERO, half, Decimal::MIN + Decimal::ONE),
            (Decimal::ZERO, -half, half),
        ] {
            let mut t = Totals::default();
            t.add(&Totals {
                spend,
                commission,
                revenue,
                spend_facts: 1,
                affiliate_facts: 1,
                ..Totals::default()
            });
            assert_eq!(t.overflowed, 1, "{spend} {commission} {revenue}");
            for m in Metric::ALL {
                let _ = t.metric(m);
            }
            assert_eq!(t.metric(Metric::Roi), None);
            // A total over rows keeps the count.
            let mut total = Totals::default();
            total.add(&t);
            assert!(total.overflowed >= 1);
        }
        let mut fine = Totals::default();
        fine.add(&Totals {
            spend: half,
            commission: -half,
            revenue: half,
            spend_facts: 1,
            ..Totals::default()
        });
        assert_eq!(fine.overflowed, 0);
        assert_eq!(fine.metric(Metric::Cost), Some(Decimal::ZERO));
    }

    /// QA6 F2: direct (unattributed) orders with ad clicks and cost: CVR
    /// and CPA empty.
    #[test]
    fn direct_orders_with_ad_clicks_leave_cvr_and_cpa_empty() {
        let mut t = Totals {
            clicks: 100,
            spend: dec!(50),
            conversions: dec!(2),
            ..Totals::default()
        };
        t.add(&Totals {
            conversions: dec!(1),
            revenue: dec!(30),
            unattributed_facts: 1,
            ..Totals::default()
        });
        assert_eq!(t.metric(Metric::Cvr), None);
        assert_eq!(t.metric(Metric::Cpa), None);
        assert_eq!(t.metric(Metric::Roas), Some(dec!(0.6)));
    }

    /// QA (new user, 2026-11-30): every ratio, money ratios too, has six
    /// places in CSV/JSON whatever its value (`cpc` had `1.262485` and
    /// `0.00`, `roas` `10`), money sums the currency's minor unit; a
    /// difference of percentages is in points in the table.
    #[test]
    fn every_ratio_has_six_places_and_points_have_no_percent_sign() {
        for (m, v, cur, text) in [
            (Metric::Cpa, dec!(8277.5), "JPY", "8277.500000"),
            (Metric::Aov, dec!(16555), "JPY", "16555.000000"),
            (Metric::Aov, dec!(16555), "EUR", "16555.000000"),
            (Metric::Cpc, dec!(1.2624851), "EUR", "1.262485"),
            (Metric::Cpc, dec!(0), "EUR", "0.000000"),
            (Metric::Epc, dec!(0.00), "EUR", "0.000000"),
            (Metric::Roas, dec!(10), "EUR", "10.000000"),
            (Metric::Roi, dec!(9.0), "EUR", "9.000000"),
            (Metric::Ctr, dec!(0.0123456789), "EUR", "0.012346"),
            (Metric::Spend, dec!(0), "EUR", "0.00"),
            (Metric::Spend, dec!(10), "JPY", "10"),
            (Metric::Clicks, dec!(40), "EUR", "40"),
        ] {
            assert_eq!(machine_text(m, Some(v), cur), text, "{m:?} {v} {cur}");
        }
        // A difference column (of values as written) keeps the places.
        let a = machine_round(Metric::Cpc, dec!(1.25), "EUR");
        let b = machine_round(Metric::Cpc, dec!(1.25), "EUR");
        assert_eq!(machine_text(Metric::Cpc, Some(a - b), "EUR"), "0.000000");
        assert_eq!(display_points(Some(dec!(0.016922))), "1.69 pp");
        assert_eq!(display_points(None), "");
    }
}
