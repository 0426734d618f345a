//! The KPI engine: turns inputs into facts per view, attributes orders, and
//! groups the facts by the requested dimensions into a [`Report`].
//!
//! A *fact* is one input row's contribution (a spend row, a claim, an order)
//! with its dimension values and additive [`Totals`]; facts are never stored,
//! only summed. Both views go through the same grouping, so a reported and a
//! reconciled row with the same key describe the same thing.
//!
//! Money is converted to the reporting currency with the FX rate of the
//! row's day. An amount without a rate is unknown: its fact still counts
//! (impressions, clicks, conversions), the amount is marked unknown in
//! [`Totals`] (so the money columns and ratios built on it are empty on
//! every row holding it, never a partial sum), and the report's notes
//! count such amounts and name their sources. Ratios are computed after
//! summing.
use std::collections::BTreeMap;
use std::hash::{BuildHasherDefault, Hasher};

use chrono::{DateTime, NaiveDate, Utc};
use plugin_api::{Channel, Conversion, ConversionStatus, Money, Order, OrderStatus, Spend};
use rust_decimal::Decimal;
use serde::Serialize;

use super::config::{AttributionRule, CampaignMatch, KpiConfig};
use super::metrics::Totals;
use super::period::{Period, ReportingZone};
use super::{Dim, KpiError, KpiInputs, Query};
use crate::fx::{FoundRate, FxTable};
use crate::reconcile::config::ProgramConfig;
use crate::reconcile::model::Decision;

/// A small, fast, non-cryptographic hasher (the rustc "Fx" word step plus a
/// final avalanche) for the engine's in-memory maps: keys are our own data,
/// not attacker-chosen, and SipHash was a large share of grouping time.
#[derive(Debug, Default, Clone, Copy)]
struct FxHasher(u64);

impl Hasher for FxHasher {
    fn write(&mut self, bytes: &[u8]) {
        let mut chunks = bytes.chunks_exact(8);
        for c in &mut chunks {
            let mut w = [0u8; 8];
            w.copy_from_slice(c);
            self.add(u64::from_le_bytes(w));
        }
        for b in chunks.remainder() {
            self.add(u64::from(*b));
        }
    }
    fn write_u8(&mut self, i: u8) {
        self.add(u64::from(i));
    }
    fn write_u32(&mut self, i: u32) {
        self.add(u64::from(i));
    }
    fn write_u64(&mut self, i: u64) {
        self.add(i);
    }
    fn write_usize(&mut self, i: usize) {
        self.add(i as u64);
    }
    /// A final avalanche (murmur3's fmix64): the multiply-rotate steps move
    /// entropy only upwards, and hashbrown picks buckets by the low bits.
    fn finish(&self) -> u64 {
        let mut h = self.0;
        h ^= h >> 33;
        h = h.wrapping_mul(0xff51_afd7_ed55_8ccd);
        h ^= h >> 33;
        h = h.wrapping_mul(0xc4ce_b9fe_1a85_ec53);
        h ^ (h >> 33)
    }
}

impl FxHasher {
    #[inline]
    fn add(&mut self, w: u64) {
        self.0 = (self.0.rotate_left(5) ^ w).wrapping_mul(0x51_7c_c1_b7_27_22_0a_95);
    }
}

type HashMap<K, V> = std::collections::HashMap<K, V, BuildHasherDefault<FxHasher>>;

/// Computes the commission cost of an earning decision from its basis and
/// the program's commission rules; `None` falls back to the network's own
/// commission figure (`Decision::network_commission`).
pub type CommissionFn<'a> = &'a (dyn Fn(&Decision) -> Option<Money> + Sync);

/// Channel label of orders no rule attributes.
pub const UNATTRIBUTED: &str = "unattributed";

/// Everything besides the data that a summary depends on.
#[derive(Clone, Copy)]
pub struct KpiContext<'a> {
    /// The reporting timezone (`[daemon] timezone`).
    pub zone: ReportingZone,
    /// `[kpi]`.
    pub config: &'a KpiConfig,
    /// Exchange rates.
    pub fx: &'a FxTable,
    /// Commission rules (from payout); `None`: network commission throughout.
    pub commission: Option<CommissionFn<'a>>,
    /// The programs: a reconciled order and its commission are converted
    /// at the rate of their day in the program's calendar, as
    /// reconciliation and statements convert them (`&[]`: the reporting
    /// timezone's day).
    pub programs: &'a [ProgramConfig],
}

impl std::fmt::Debug for KpiContext<'_> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("KpiContext")
            .field("zone", &self.zone)
            .field("config", &self.config)
            .field("commission_rules", &self.commission.is_some())
            .finish()
    }
}

/// The values of a row's dimensions; a field is `None` when its dimension
/// was not asked for.
#[derive(Debug, Clone, Default, PartialEq, Eq, PartialOrd, Ord, Serialize)]
pub struct RowKey {
    /// Local day.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub day: Option<NaiveDate>,
    /// Channel.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub channel: Option<String>,
    /// Connector id (or `unattributed`); also set (without `source` in
    /// `--by`) on campaign and partner rows, whose keys include it (rows
    /// without a campaign or partner too: one per source).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub source: Option<String>,
    /// Campaign id (empty when unknown).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub campaign_id: Option<String>,
    /// Campaign name.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub campaign: Option<String>,
    /// The partner as `network:partner id` (empty for ad spend and
    /// non-affiliate orders).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub partner_id: Option<String>,
    /// Partner name.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub partner: Option<String>,
}

/// One output row.
#[derive(Debug, Clone, PartialEq)]
pub struct ReportRow {
    /// Dimension values.
    pub key: RowKey,
    /// Reported totals (`None` when the view has no reported side).
    pub reported: Option<Totals>,
    /// Reconciled totals (`None` when the view has no reconciled side).
    pub reconciled: Option<Totals>,
    /// Labels of spend rows in this row whose days are in another timezone,
    /// e.g. `google_ads: America/New_York`.
    pub foreign_days: Vec<String>,
    /// The connector a campaign or partner row belongs to when `source` is
    /// not a dimension (ids are unique per connector only); used to order
    /// rows whose visible keys are equal. Empty otherwise.
    pub owner: String,
}

/// A finished summary.
#[derive(Debug, Clone, PartialEq)]
pub struct Report {
    /// What was asked.
    pub query: Query,
    /// Reporting timezone name.
    pub timezone: String,
    /// Reporting currency.
    pub currency: String,
    /// The day boundaries used, as a sentence.
    pub day_boundaries: String,
    /// One sentence per (connector, zone) whose spend days are in another
    /// timezone and are labelled.
    pub zone_labels: Vec<String>,
    /// Everything else a reader must know: rows left out, fallbacks used.
    pub notes: Vec<String>,
    /// Rows, sorted by key.
    pub rows: Vec<ReportRow>,
    /// All rows added up.
    pub total: ReportRow,
    /// When and from what it was computed, and the `[fx]` rows it used.
    pub provenance: Provenance,
}

/// When a report was computed and from what, so a file can be told from
/// another version of itself (QA34a A-M2): every format states it.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Provenance {
    /// When the inputs were read ([`KpiInputs::generated_at`]); `None`
    /// for inputs built by hand.
    pub generated_at: Option<DateTime<Utc>>,
    /// The store's change sequence number read before the inputs
    /// ([`KpiInputs::store_seq`]): records stored up to it at least.
    pub store_seq: Option<u64>,
    /// Per program, when its decisions were judged (the `now` of its last
    /// `reckon reconcile` run; `None`: never, or not recorded). Empty for
    /// a view without the reconciled side.
    pub judged_at: Vec<(String, Option<DateTime<Utc>>)>,
    /// The `[fx]` rows that priced the report's amounts, by pair and day.
    pub fx_rates: Vec<FxUsed>,
    /// Set by the daemon for its summary files ([`super::summary`]).
    pub revision: Option<Revision>,
}

/// One conversion rate a report used: 1 `base` in `quote` on `day`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct FxUsed {
    /// The amounts' currency.
    pub base: String,
    /// The reporting currency.
    pub quote: String,
    /// The day the amounts were priced at.
    pub day: NaiveDate,
    /// The rate used.
    pub rate: Decimal,
    /// The date of the `[fx]` row (the day, or up to `max_age_days`
    /// before it).
    pub rate_date: NaiveDate,
    /// For a rate taken from the inverse pair (quote→base), that row's
    /// own rate (the rate is 1/x rounded to 12 decimals).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub inverse_of: Option<Decimal>,
}

/// Which version of a daemon summary file this is.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Revision {
    /// 1 for the file's first version, then 2, 3, ... for each rewrite.
    pub number: u64,
    /// When the version it replaces was generated (`None` for the first).
    pub supersedes: Option<DateTime<Utc>>,
}

/// Which side a fact belongs to.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Side {
    Reported,
    Reconciled,
}

/// One input row's contribution.
#[derive(Debug, Clone, Copy)]
struct Fact<'a> {
    day: NaiveDate,
    /// 0: reporting zone; n: bit n-1 of the zone labels.
    zone: u8,
    channel: &'a str,
    source: &'a str,
    campaign_id: &'a str,
    campaign_name: &'a str,
    partner_id: &'a str,
    partner_name: &'a str,
    totals: Totals,
}

/// The grouping key of a fact under the chosen dimensions.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
struct GroupKey<'a> {
    day: Option<NaiveDate>,
    channel: Option<&'a str>,
    source: Option<&'a str>,
    /// (source, id, name): a campaign id is unique within its source.
    campaign: Option<(&'a str, &'a str, &'a str)>,
    /// (source, id).
    partner: Option<(&'a str, &'a str)>,
}

#[derive(Debug, Default)]
struct Acc<'a> {
    rep: Totals,
    rec: Totals,
    zones: u64,
    partner_name: &'a str,
}

/// What a spend campaign looks like, for attribution.
#[derive(Debug, Clone, Copy)]
struct CampaignInfo<'a> {
    id: &'a str,
    /// The name of its latest spend row: the one name its rows show.
    name: &'a str,
    channel: Channel,
    /// The day of that row.
    day: NaiveDate,
}

/// Indexes built once over the inputs, reused by every grouping.
#[derive(Debug)]
pub struct Engine<'a> {
    ctx: KpiContext<'a>,
    inputs: &'a KpiInputs,
    currency: String,
    campaigns_by_id: HashMap<(&'a str, &'a str), CampaignInfo<'a>>,
    campaigns_by_name: HashMap<(&'a str, String), CampaignInfo<'a>>,
    connector_channel: HashMap<&'a str, Channel>,
    /// Earning decisions by the order they stand on: (order source, order id).
    earning: HashMap<(&'a str, &'a str), Vec<&'a Decision>>,
    claims: HashMap<(&'a str, &'a str), &'a Conversion>,
    /// Each partner's name by (network, partner id): the last name in
    /// claim key order, whatever the period, as statements name payees
    /// (QA40b B-L1: a row took the first claim's, or the id).
    partner_names: HashMap<(&'a str, &'a str), &'a str>,
    /// Each program's calendar ([`ProgramConfig::calendar`]).
    calendars: HashMap<&'a str, chrono_tz::Tz>,
}

/// An amount left unknown for want of an FX rate: what it was.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
enum Unconverted {
    /// A spend row's spend.
    Spend,
    /// A spend row's platform conversion value (reported).
    ConversionValue,
    /// A claim's sale amount (reported).
    ClaimSale,
    /// A claim's commission (reported).
    ClaimCommission,
    /// An order's amount (reconciled).
    Order,
    /// A reconciled affiliate commission.
    Commission,
}

impl Unconverted {
    /// `singular/plural` for [`count`].
    fn noun(self) -> &'static str {
        match self {
            Unconverted::Spend => "spend row/spend rows",
            Unconverted::ConversionValue => "platform conversion value/platform conversion values",
            Unconverted::ClaimSale => "claim's sale amount/claims' sale amounts",
            Unconverted::ClaimCommission => "claim's commission/claims' commissions",
            Unconverted::Order => "order/orders",
            Unconverted::Commission => {
                "reconciled affiliate commission/reconciled affiliate commissions"
            }
        }
    }

    /// The columns left empty, and what still counts.
    fn effect(self) -> (&'static str, &'static str) {
        match self {
            Unconverted::Spend => (
                "spend, cost, CPC, CPA, ROAS and ROI",
                "; their impressions, clicks and platform conversions still count",
            ),
            Unconverted::ConversionValue => ("reported revenue, ROAS, ROI and AOV", ""),
            Unconverted::ClaimSale => (
                "reported revenue, ROAS, ROI and AOV",
                "; the claims still count as conversions",
            ),
            Unconverted::ClaimCommission => {
                ("reported commission, cost, CPA, ROAS, ROI and EPC", "")
            }
            Unconverted::Order => (
                "reconciled revenue, ROAS, ROI and AOV",
                "; the orders still count as conversions",
            ),
            Unconverted::Commission => ("reconciled commission, cost, CPA, ROAS, ROI and EPC", ""),
        }
    }
}

/// Amounts of one kind and currency without an FX rate.
#[derive(Debug, Default)]
struct MissingRates {
    amounts: u64,
    days: std::collections::BTreeSet<NaiveDate>,
    /// The sources of the rows holding them (connector ids, `unattributed`).
    sources: std::collections::BTreeSet<String>,
}

/// Per-pass bookkeeping for the notes.
#[derive(Debug, Default)]
struct Tally {
    /// (what, currency) → amounts without a rate.
    fx_missing: BTreeMap<(Unconverted, String), MissingRates>,
    zone_labels: Vec<(String, String)>,
    refunded_orders: u64,
    cancelled_orders: u64,
    unattributed_orders: u64,
    network_commission_fallback: u64,
    no_commission: u64,
    /// Reported claims without a sale amount.
    claims_without_amount: u64,
    /// Reported claims whose network sent no commission.
    claims_without_commission: u64,
    /// Reported spend rows with conversions but no conversion value.
    spend_without_value: MissingRates,
    /// Reported spend rows with clicks or impressions but no conversion
    /// figure (conversions, and so their value, unknown).
    spend_without_conversions: MissingRates,
}

impl MissingRates {
    /// Counts one more fact of `day` from `source`.
    fn add(&mut self, day: NaiveDate, source: &str) {
        self.amounts += 1;
        self.days.insert(day);
        if !self.sources.contains(source) {
            self.sources.insert(source.to_owned());
        }
    }

    /// `on 2026-10-25` / `on 3 days from … to …`.
    fn days(&self) -> String {
        match (self.days.first(), self.days.last()) {
            (Some(a), Some(b)) if a == b => format!("on {a}"),
            (Some(a), Some(b)) => format!("on {} days from {a} to {b}", self.days.len()),
            _ => String::new(),
        }
    }

    /// The sources, comma-separated.
    fn sources(&self) -> String {
        self.sources
            .iter()
            .map(String::as_str)
            .collect::<Vec<_>>()
            .join(", ")
    }
}

impl Tally {
    fn fx_missing(&mut self, what: Unconverted, currency: &str, day: NaiveDate, source: &str) {
        self.fx_missing
            .entry((what, currency.to_owned()))
            .or_default()
            .add(day, source);
    }

    /// The bit index (1-based) of a foreign (source, zone) pair.
    fn zone(&mut self, source: &str, tz: &str) -> u8 {
        if let Some(i) = self
            .zone_labels
            .iter()
            .position(|(s, z)| s == source && z == tz)
        {
            return (i.min(63) + 1) as u8;
        }
        self.zone_labels.push((source.to_owned(), tz.to_owned()));
        (self.zone_labels.len().min(64)) as u8
    }
}

/// Money → the reporting currency, with cached FX lookups. The cache is
/// also the record of the `[fx]` rows a report used ([`Converter::used`]).
struct Converter<'a> {
    to: &'a str,
    fx: &'a FxTable,
    cache: HashMap<String, HashMap<NaiveDate, Option<FoundRate>>>,
}

impl<'a> Converter<'a> {
    fn new(to: &'a str, fx: &'a FxTable) -> Self {
        Converter {
            to,
            fx,
            cache: HashMap::default(),
        }
    }

    /// `m` in the reporting currency at `day`'s rate; `None` (unknown)
    /// when there is no rate. Zero is zero in any currency: it needs no
    /// rate (a restated row kept at 0.00 leaves nothing unknown).
    fn convert(&mut self, m: &Money, day: NaiveDate) -> Option<Decimal> {
        if m.currency == self.to || m.amount.is_zero() {
            return Some(m.amount);
        }
        let found = match self
            .cache
            .get(m.currency.as_str())
            .and_then(|c| c.get(&day))
        {
            Some(r) => *r,
            None => {
                let r = self.fx.found_rate(&m.currency, self.to, day);
                self.cache
                    .entry(m.currency.clone())
                    .or_default()
                    .insert(day, r);
                r
            }
        };
        found.and_then(|f| m.amount.checked_mul(f.rate))
    }

    /// The `[fx]` rows the conversions so far used, by pair and day.
    fn used(&self) -> Vec<FxUsed> {
        let mut out: Vec<FxUsed> = self
            .cache
            .iter()
            .flat_map(|(cur, days)| {
                days.iter().filter_map(move |(day, found)| {
                    let found = (*found)?;
                    let row = found.row?;
                    Some(FxUsed {
                        base: cur.clone(),
                        quote: self.to.to_owned(),
                        day: *day,
                        rate: found.rate,
                        rate_date: row.date,
                        inverse_of: row.inverse_of,
                    })
                })
            })
            .collect();
        out.sort_by(|a, b| (&a.base, a.day).cmp(&(&b.base, b.day)));
        out
    }
}

impl<'a> Engine<'a> {
    /// Indexes the inputs. Fails when amounts are in several currencies and
    /// no reporting currency is configured.
    pub fn new(ctx: KpiContext<'a>, inputs: &'a KpiInputs) -> Result<Engine<'a>, KpiError> {
        let currency = match &ctx.config.currency {
            Some(c) => c.clone(),
            None => single_currency(inputs)?,
        };
        // Campaigns of every stored spend row (the index), then those of
        // the inputs' own rows (the same ones when loaded from the store;
        // the only ones for callers that build inputs by hand).
        let mut campaigns_by_id: HashMap<(&str, &str), CampaignInfo> = HashMap::default();
        // A set: every row of a renamed campaign carries a former name.
        let mut former_names: HashMap<(&str, &str, &str), ()> = HashMap::default();
        let mut former_names_of_index: Vec<(&str, &str, &str)> = Vec::new();
        let mut note =
            |src: &'a str, id: &'a str, name: &'a str, channel: Channel, day: NaiveDate| {
                use std::collections::hash_map::Entry;
                match campaigns_by_id.entry((src, id)) {
                    Entry::Vacant(e) => {
                        e.insert(CampaignInfo {
                            id,
                            name,
                            channel,
                            day,
                        });
                    }
                    Entry::Occupied(mut e) => {
                        let c = e.get_mut();
                        if c.name == name {
                            if day > c.day {
                                c.day = day;
                                c.channel = channel;
                            }
                        } else if (day, name) > (c.day, c.name) {
                            former_names.insert((src, id, c.name), ());
                            *c = CampaignInfo {
                                id,
                                name,
                                channel,
                                day,
                            };
                        } else {
                            former_names.insert((src, id, name), ());
                        }
                    }
                }
            };
        for (src, id, meta) in inputs.campaigns.iter() {
            note(src, id, &meta.name, meta.channel, meta.last_day);
            for n in &meta.former_names {
                former_names_of_index.push((src, id, n.as_str()));
            }
        }
        for s in &inputs.spend {
            note(
                &s.source,
                &s.campaign_id,
                &s.campaign_name,
                s.channel,
                s.day,
            );
        }
        former_names.extend(former_names_of_index.into_iter().map(|k| (k, ())));
        // A connector's channel (for orders whose campaign is not found and
        // whose rule names none): that of its campaign with the latest
        // spend day (on one day, the lowest campaign id).
        let mut connector_channel: HashMap<&str, Channel> = HashMap::default();
        let mut latest: HashMap<&str, (NaiveDate, std::cmp::Reverse<&str>)> = HashMap::default();
        for ((src, id), info) in &campaigns_by_id {
            let rank = (info.day, std::cmp::Reverse(*id));
            if latest.get(src).is_none_or(|r| rank > *r) {
                latest.insert(src, rank);
                connector_channel.insert(src, info.channel);
            }
        }
        let mut campaigns_by_name = HashMap::default();
        // Deterministic: a campaign's latest name first, the lowest
        // campaign id winning a name shared by several; then the names
        // campaigns had before a rename.
        let mut by_id: Vec<_> = campaigns_by_id.iter().collect();
        by_id.sort_by_key(|(k, _)| **k);
        for ((src, _), info) in by_id {
            campaigns_by_name
                .entry((*src, info.name.to_ascii_lowercase()))
                .or_insert(*info);
        }
        let mut former_names: Vec<_> = former_names.into_keys().collect();
        former_names.sort_unstable();
        for (src, id, name) in former_names {
            if let Some(info) = campaigns_by_id.get(&(src, id)) {
                campaigns_by_name
                    .entry((src, name.to_ascii_lowercase()))
                    .or_insert(*info);
            }
        }
        let mut earning: HashMap<(&str, &str), Vec<&Decision>> = HashMap::default();
        for d in &inputs.decisions {
            if let (true, Some(o)) = (d.outcome.earns(), &d.order) {
                earning
                    .entry((o.source.as_str(), o.id.as_str()))
                    .or_default()
                    .push(d);
            }
        }
        for ds in earning.values_mut() {
            ds.sort_by(|a, b| (&a.program, &a.claim).cmp(&(&b.program, &b.claim)));
        }
        let claims = inputs
            .claims
            .iter()
            .map(|c| ((c.source.as_str(), c.external_id.as_str()), c))
            .collect();
        let mut named: Vec<&Conversion> = (inputs.claims.iter())
            .filter(|c| c.partner_name.is_some())
            .collect();
        named
            .sort_unstable_by(|a, b| (&a.source, &a.external_id).cmp(&(&b.source, &b.external_id)));
        let partner_names = (named.into_iter())
            .filter_map(|c| {
                Some((
                    (c.source.as_str(), c.partner_id.as_str()),
                    c.partner_name.as_deref()?,
                ))
            })
            .collect();
        let calendars = ctx
            .programs
            .iter()
            .map(|p| (p.id.as_str(), p.calendar()))
            .collect();
        Ok(Engine {
            ctx,
            inputs,
            currency,
            campaigns_by_id,
            campaigns_by_name,
            connector_channel,
            earning,
            claims,
            partner_names,
            calendars,
        })
    }

    /// The reporting currency.
    pub fn currency(&self) -> &str {
        &self.currency
    }

    /// Computes one summary.
    pub fn report(&self, query: &Query) -> Result<Report, KpiError> {
        let mut groups: HashMap<GroupKey<'a>, Acc<'a>> = HashMap::default();
        let mut tally = Tally::default();
        let by = &query.by;
        let has = |d: Dim| by.contains(&d);
        let (kd, kc, ks, kcamp, kp) = (
            has(Dim::Day),
            has(Dim::Channel),
            has(Dim::Source),
            has(Dim::Campaign),
            has(Dim::Partner),
        );
        let mut sink = |side: Side, f: Fact<'a>| {
            let key = GroupKey {
                day: kd.then_some(f.day),
                channel: kc.then_some(f.channel),
                source: ks.then_some(f.source),
                // Rows without a campaign (or partner) are per source too,
                // and show it (QA18: one row of every source's spend and
                // the unattributed orders blended their ROAS).
                campaign: kcamp.then_some((f.source, f.campaign_id, f.campaign_name)),
                partner: kp.then_some((f.source, f.partner_id)),
            };
            let acc = groups.entry(key).or_default();
            match side {
                Side::Reported => acc.rep.add(&f.totals),
                Side::Reconciled => acc.rec.add(&f.totals),
            }
            if f.zone > 0 {
                acc.zones |= 1u64 << (f.zone - 1);
            }
            if acc.partner_name.is_empty() {
                acc.partner_name = f.partner_name;
            }
        };
        let mut conv = Converter::new(&self.currency, self.ctx.fx);
        if query.view.has_reported() {
            self.reported_facts(&query.period, &mut conv, &mut tally, &mut sink);
        }
        if query.view.has_reconciled() {
            let counted = query.view.has_reported();
            self.reconciled_facts(&query.period, &mut conv, &mut tally, counted, &mut sink);
        }
        let report = self.finish(query, groups, tally, conv.used());
        let overflowed = |t: &Option<Totals>| t.is_some_and(|t| t.overflowed > 0);
        if overflowed(&report.total.reported) || overflowed(&report.total.reconciled) {
            return Err(KpiError::TooLarge {
                currency: report.currency,
            });
        }
        Ok(report)
    }

    /// The fact of a spend row. An amount without a rate is unknown
    /// (counted in the tally when `count_missing`: both views read each
    /// spend row, and the second pass does not count its spend again).
    fn spend_fact(
        &self,
        s: &'a Spend,
        conv: &mut Converter,
        tally: &mut Tally,
        with_platform_conversions: bool,
        count_missing: bool,
    ) -> Fact<'a> {
        let mut totals = Totals {
            impressions: s.impressions,
            clicks: s.clicks,
            spend_facts: 1,
            ..Totals::default()
        };
        match conv.convert(&s.spend, s.day) {
            Some(spend) => totals.spend = spend,
            None => {
                totals.spend_unknown = 1;
                if count_missing {
                    tally.fx_missing(Unconverted::Spend, &s.spend.currency, s.day, &s.source);
                }
            }
        }
        if with_platform_conversions {
            totals.conversions = s.platform_conversions.unwrap_or_default();
            // Served (clicks or impressions) but no conversion figure: not
            // 0 conversions, unknown (QA28-D F1).
            if s.platform_conversions.is_none() && (s.impressions > 0 || s.clicks > 0) {
                totals.conversions_unknown = 1;
                tally.spend_without_conversions.add(s.day, &s.source);
            }
            match &s.platform_conversion_value {
                Some(v) => match conv.convert(v, s.day) {
                    Some(value) => totals.revenue = value,
                    None => {
                        totals.revenue_unknown = 1;
                        tally.fx_missing(
                            Unconverted::ConversionValue,
                            &v.currency,
                            s.day,
                            &s.source,
                        );
                    }
                },
                // No conversions (or nothing served that could convert):
                // nothing to value. Otherwise the platform did not say what
                // they were worth (e.g. TikTok without a
                // `conversion_value_metric`): unknown, not 0.00.
                None if s.platform_conversions.is_some_and(|c| c.is_zero())
                    || (s.impressions == 0
                        && s.clicks == 0
                        && s.platform_conversions.is_none()) => {}
                None => {
                    totals.revenue_unknown = 1;
                    if s.platform_conversions.is_some() {
                        tally.spend_without_value.add(s.day, &s.source);
                    }
                }
            }
        }
        let zone = if s.timezone == self.ctx.zone.name() {
            0
        } else {
            tally.zone(&s.source, &s.timezone)
        };
        Fact {
            day: s.day,
            zone,
            channel: s.channel.as_str(),
            source: &s.source,
            campaign_id: &s.campaign_id,
            // One name per campaign: its latest (a renamed campaign is one row).
            campaign_name: self
                .campaigns_by_id
                .get(&(s.source.as_str(), s.campaign_id.as_str()))
                .map_or(s.campaign_name.as_str(), |c| c.name),
            partner_id: "",
            partner_name: "",
            totals,
        }
    }

    fn reported_facts(
        &self,
        period: &Period,
        conv: &mut Converter,
        tally: &mut Tally,
        sink: &mut impl FnMut(Side, Fact<'a>),
    ) {
        for s in &self.inputs.spend {
            if !period.contains(s.day) {
                continue;
            }
            let f = self.spend_fact(s, conv, tally, true, true);
            sink(Side::Reported, f);
        }
        for c in &self.inputs.claims {
            if !matches!(
                c.status,
                ConversionStatus::Pending | ConversionStatus::Approved
            ) {
                continue;
            }
            let day = self.ctx.zone.day_of(c.occurred_at);
            if !period.contains(day) {
                continue;
            }
            let mut totals = Totals {
                conversions: Decimal::ONE,
                affiliate_facts: 1,
                ..Totals::default()
            };
            match &c.sale_amount {
                Some(m) => match conv.convert(m, day) {
                    Some(v) => totals.revenue = v,
                    None => {
                        totals.revenue_unknown = 1;
                        tally.fx_missing(Unconverted::ClaimSale, &m.currency, day, &c.source);
                    }
                },
                // The network reported no sale amount (CAKE): unknown.
                None => totals.revenue_unknown = 1,
            }
            match &c.commission {
                Some(m) => match conv.convert(m, day) {
                    Some(v) => totals.commission = v,
                    None => {
                        totals.commission_unknown = 1;
                        tally.fx_missing(Unconverted::ClaimCommission, &m.currency, day, &c.source);
                    }
                },
                // The network reported no commission: unknown, not free.
                None => {
                    totals.commission_unknown = 1;
                    tally.claims_without_commission += 1;
                }
            }
            if c.sale_amount.is_none() {
                tally.claims_without_amount += 1;
            }
            let campaign = c.campaign_id.as_deref().unwrap_or("");
            sink(
                Side::Reported,
                Fact {
                    day,
                    zone: 0,
                    channel: Channel::Affiliate.as_str(),
                    source: &c.source,
                    campaign_id: campaign,
                    campaign_name: campaign,
                    partner_id: &c.partner_id,
                    partner_name: c.partner_name.as_deref().unwrap_or(&c.partner_id),
                    totals,
                },
            );
        }
    }

    /// The reconciled side's facts; `count_spend_once`: the reported pass
    /// ran and already counted the spend rows left out for a missing rate.
    fn reconciled_facts(
        &self,
        period: &Period,
        conv: &mut Converter,
        tally: &mut Tally,
        count_spend_once: bool,
        sink: &mut impl FnMut(Side, Fact<'a>),
    ) {
        for s in &self.inputs.spend {
            if !period.contains(s.day) {
                continue;
            }
            // A row whose spend has no rate was counted by the reported
            // pass when there was one (its spend is the same).
            let f = self.spend_fact(s, conv, tally, false, !count_spend_once);
            sink(Side::Reconciled, f);
        }
        for o in &self.inputs.orders {
            let day = self.ctx.zone.day_of(o.created_at);
            if !period.contains(day) {
                continue;
            }
            if o.status == OrderStatus::Cancelled {
                tally.cancelled_orders += 1;
                continue;
            }
            // Reconciliation's rule: refunded in full (a refund of at least
            // the amount) or marked refunded. A 0.00 order without refunds
            // (a lead) is a conversion with no revenue, not a refund.
            let refunded = o.refunded();
            if o.status == OrderStatus::Refunded
                || (refunded > Decimal::ZERO && refunded >= o.amount.amount)
            {
                tally.refunded_orders += 1;
                continue;
            }
            let net = o.amount.amount - refunded;
            let earning = self.earning.get(&(o.source.as_str(), o.order_id.as_str()));
            // The rate of the order's day in the program that judged it (as
            // its statements convert it), else of the row's day.
            let fx_day = earning.map_or(day, |ds| self.program_day(ds[0], o.created_at, day));
            // No rate: the order counts, its revenue is unknown (the
            // source it lands on is noted below).
            let revenue = conv.convert(&Money::new(net, o.amount.currency.as_str()), fx_day);
            let totals = Totals {
                conversions: Decimal::ONE,
                revenue: revenue.unwrap_or_default(),
                revenue_unknown: u64::from(revenue.is_none()),
                ..Totals::default()
            };
            let unconverted = |tally: &mut Tally, source: &str| {
                if revenue.is_none() {
                    tally.fx_missing(Unconverted::Order, &o.amount.currency, fx_day, source);
                }
            };
            if let Some(ds) = earning {
                unconverted(tally, &ds[0].claim.source);
                // The first decision takes the order; further earning
                // decisions (other programs) add their commission only.
                for (i, d) in ds.iter().enumerate() {
                    let mut t = if i == 0 { totals } else { Totals::default() };
                    t.affiliate_facts = 1;
                    let commission_day = self.program_day(d, d.occurred_at, day);
                    match self.commission(d, commission_day, conv, tally) {
                        Some(c) => t.commission = c,
                        // No commission figure, or no rate for it:
                        // unknown (and noted); the order itself still
                        // counts.
                        None => t.commission_unknown = 1,
                    }
                    let campaign = match self
                        .claims
                        .get(&(d.claim.source.as_str(), d.claim.id.as_str()))
                    {
                        Some(c) => c.campaign_id.as_deref(),
                        // A claim outside the period (few: near its edges).
                        None => self
                            .inputs
                            .claim_campaigns
                            .get(&(d.claim.source.clone(), d.claim.id.clone()))
                            .map(String::as_str),
                    }
                    .unwrap_or("");
                    sink(
                        Side::Reconciled,
                        Fact {
                            day,
                            zone: 0,
                            channel: Channel::Affiliate.as_str(),
                            source: &d.claim.source,
                            campaign_id: campaign,
                            campaign_name: campaign,
                            partner_id: &d.partner_id,
                            partner_name: d.partner_name.as_deref().unwrap_or(&d.partner_id),
                            totals: t,
                        },
                    );
                }
                continue;
            }
            let attributed = self
                .ctx
                .config
                .attribution
                .iter()
                .find(|r| rule_matches(r, o));
            unconverted(
                tally,
                attributed.map_or(UNATTRIBUTED, |r| r.connector.as_str()),
            );
            let fact = match attributed {
                Some(rule) => {
                    let utm = o.utm.campaign.as_deref().unwrap_or("");
                    let found = self.find_campaign(rule, utm);
                    let channel = found
                        .map(|c| c.channel)
                        .or(rule.channel)
                        .or_else(|| self.connector_channel.get(rule.connector.as_str()).copied())
                        .unwrap_or(Channel::Other);
                    Fact {
                        day,
                        zone: 0,
                        channel: channel.as_str(),
                        source: &rule.connector,
                        campaign_id: found.map(|c| c.id).unwrap_or(""),
                        campaign_name: found.map(|c| c.name).unwrap_or(utm),
                        partner_id: "",
                        partner_name: "",
                        totals,
                    }
                }
                None => {
                    tally.unattributed_orders += 1;
                    let totals = Totals {
                        unattributed_facts: 1,
                        ..totals
                    };
                    Fact {
                        day,
                        zone: 0,
                        channel: UNATTRIBUTED,
                        source: UNATTRIBUTED,
                        campaign_id: "",
                        campaign_name: "",
                        partner_id: "",
                        partner_name: "",
                        totals,
                    }
                }
            };
            sink(Side::Reconciled, fact);
        }
    }

    /// `t`'s day in the calendar of `d`'s program; `row_day` when the
    /// program is not configured.
    fn program_day(&self, d: &Decision, t: DateTime<Utc>, row_day: NaiveDate) -> NaiveDate {
        self.calendars
            .get(d.program.as_str())
            .map_or(row_day, |tz| t.with_timezone(tz).date_naive())
    }

    /// Commission of an earning decision in the reporting currency: the
    /// rules' figure, else the network's, else zero (each fallback
    /// counted); `None` (counted) when it has no rate.
    fn commission(
        &self,
        d: &Decision,
        day: NaiveDate,
        conv: &mut Converter,
        tally: &mut Tally,
    ) -> Option<Decimal> {
        let from_rules = self.ctx.commission.and_then(|f| f(d));
        let money = match from_rules {
            Some(m) => m,
            None => match &d.network_commission {
                Some(m) => {
                    tally.network_commission_fallback += 1;
                    m.clone()
                }
                // No figure at all (a tiered rule, or none, and the
                // network reported none): unknown, not free (finance QA29
                // F2: counted as 0.00, a partner paid 40.00 showed CPA 0).
                None => {
                    tally.no_commission += 1;
                    return None;
                }
            },
        };
        let converted = conv.convert(&money, day);
        if converted.is_none() {
            tally.fx_missing(
                Unconverted::Commission,
                &money.currency,
                day,
                &d.claim.source,
            );
        }
        converted
    }

    fn find_campaign(&self, rule: &AttributionRule, utm: &str) -> Option<CampaignInfo<'a>> {
        if utm.is_empty() {
            return None;
        }
        let src = rule.connector.as_str();
        let by_id = || self.campaigns_by_id.get(&(src, utm)).copied();
        let by_name = || {
            self.campaigns_by_name
                .get(&(src, utm.to_ascii_lowercase()))
                .copied()
        };
        match rule.campaign_by {
            CampaignMatch::Id => by_id(),
            CampaignMatch::Name => by_name(),
            CampaignMatch::IdOrName => by_id().or_else(by_name),
        }
    }

    fn finish(
        &self,
        query: &Query,
        groups: HashMap<GroupKey<'a>, Acc<'a>>,
        tally: Tally,
        fx_rates: Vec<FxUsed>,
    ) -> Report {
        let view = query.view;
        let by_source = query.by.contains(&Dim::Source);
        let zone_label = |bits: u64| -> Vec<String> {
            tally
                .zone_labels
                .iter()
                .enumerate()
                .filter(|(i, _)| bits & (1u64 << (*i).min(63)) != 0)
                .map(|(_, (s, z))| format!("{s}: {z}"))
                .collect()
        };
        let side = |on: bool, t: Totals| on.then_some(t);
        let mut total_rep = Totals::default();
        let mut total_rec = Totals::default();
        let mut total_zones = 0u64;
        let mut rows: Vec<ReportRow> = groups
            .into_iter()
            .map(|(k, acc)| {
                total_rep.add(&acc.rep);
                total_rec.add(&acc.rec);
                total_zones |= acc.zones;
                // A campaign or partner key includes its source: it is
                // shown even when `source` was not asked for.
                let owner = k.campaign.map(|c| c.0).or(k.partner.map(|p| p.0));
                let key = RowKey {
                    day: k.day,
                    channel: k.channel.map(str::to_owned),
                    source: k.source.or(owner).map(str::to_owned),
                    campaign_id: k.campaign.map(|(_, id, _)| id.to_owned()),
                    campaign: k.campaign.map(|(_, _, name)| name.to_owned()),
                    // The payee key (`network:partner`), as statements
                    // name partners: ids are per network.
                    partner_id: k.partner.map(|(src, id)| {
                        if id.is_empty() {
                            String::new()
                        } else {
                            crate::payout::model::payee_key(src, id)
                        }
                    }),
                    partner: k.partner.map(|p| {
                        let name = self.partner_names.get(&p).copied();
                        name.unwrap_or(acc.partner_name).to_owned()
                    }),
                };
                ReportRow {
                    key,
                    reported: side(view.has_reported(), acc.rep),
                    reconciled: side(view.has_reconciled(), acc.rec),
                    foreign_days: zone_label(acc.zones),
                    owner: if by_source {
                        String::new()
                    } else {
                        owner.unwrap_or("").to_owned()
                    },
                }
            })
            .collect();
        // In `--by` order: the first dimension asked for sorts first.
        rows.sort_by(|a, b| {
            compare_keys(&query.by, &a.key, &b.key).then_with(|| a.owner.cmp(&b.owner))
        });
        let total = ReportRow {
            key: RowKey::default(),
            reported: side(view.has_reported(), total_rep),
            reconciled: side(view.has_reconciled(), total_rec),
            foreign_days: zone_label(total_zones),
            owner: String::new(),
        };
        let zone_labels = tally
            .zone_labels
            .iter()
            .map(|(s, z)| {
                format!(
                    "{s} rows are in {z} days (the platform's account timezone), not {}, and are labelled.",
                    self.ctx.zone.name()
                )
            })
            .collect();
        let mut notes = Vec::new();
        let period = &query.period;
        let inputs = self.inputs;
        let any = inputs.spend.iter().any(|s| period.contains(s.day))
            || inputs
                .claims
                .iter()
                .any(|c| period.contains(self.ctx.zone.day_of(c.occurred_at)))
            || inputs
                .orders
                .iter()
                .any(|o| period.contains(self.ctx.zone.day_of(o.created_at)));
        if !any {
            notes.push(format!(
                "No records in the period: no spend rows, claims or orders from {} to {}.",
                period.from, period.to
            ));
        }
        for ((what, cur), missing) in &tally.fx_missing {
            notes.push(missing_rate_note(*what, cur, &self.currency, missing));
        }
        if tally.claims_without_amount > 0 {
            notes.push(format!(
                "{} no sale amount (e.g. CAKE): reported revenue, ROAS, ROI and AOV are empty on the rows holding them (unknown, not 0.00).",
                count(tally.claims_without_amount, "claim reported/claims reported")
            ));
        }
        if tally.claims_without_commission > 0 {
            notes.push(format!(
                "{} no commission: reported commission, cost, CPA, ROAS, ROI and EPC are empty on the rows holding them (unknown, not 0.00).",
                count(tally.claims_without_commission, "claim reported/claims reported")
            ));
        }
        let m = &tally.spend_without_conversions;
        if m.amounts > 0 {
            notes.push(format!(
                "{} no conversion figure {} (sources: {}; the platform sent none, e.g. TikTok's `-`, or the connector's settings turn conversion counting off: Meta `conversion_action_type = \"\"`, TikTok `conversion_metric = \"\"`): reported conversions, CVR, CPA and AOV are empty on the rows holding them and on the total (unknown, not 0), and so are revenue, ROAS and ROI where the platform sent no conversion value either.",
                count(m.amounts, "spend row with clicks or impressions has/spend rows with clicks or impressions have"),
                m.days(),
                m.sources()
            ));
        }
        let m = &tally.spend_without_value;
        if m.amounts > 0 {
            notes.push(format!(
                "{} no platform conversion value {} (sources: {}; no value metric configured, or the platform sent none): reported revenue, ROAS, ROI and AOV are empty on the rows holding them and on the total (unknown, not 0.00).",
                count(m.amounts, "spend row with conversions has/spend rows with conversions have"),
                m.days(),
                m.sources()
            ));
        }
        if view.has_reconciled() {
            notes.extend(inputs.reconcile_notes.iter().cloned());
            if tally.cancelled_orders > 0 {
                notes.push(format!(
                    "{} not counted.",
                    count(tally.cancelled_orders, "cancelled order")
                ));
            }
            if tally.refunded_orders > 0 {
                notes.push(format!(
                    "{} not counted; partly refunded orders count net of refunds.",
                    count(tally.refunded_orders, "fully refunded order")
                ));
            }
            if tally.unattributed_orders > 0 {
                notes.push(format!(
                    "{} no affiliate claim and no [[kpi.attribution]] rule; shown as `{UNATTRIBUTED}`.",
                    count(tally.unattributed_orders, "order matches/orders match")
                ));
            }
            if tally.network_commission_fallback > 0 {
                notes.push(format!(
                    "Commission of {} is the network's reported commission (no commission rule figure available).",
                    count(tally.network_commission_fallback, "reconciled affiliate conversion")
                ));
            }
            if tally.no_commission > 0 {
                notes.push(format!(
                    "{} no commission figure (a tiered rule, whose rate depends on the period's volume, or no rule, and the network reported no commission): commission, cost and the ratios built on them are unknown and left empty.",
                    count(
                        tally.no_commission,
                        "reconciled affiliate conversion has/reconciled affiliate conversions have"
                    )
                ));
            }
        }
        Report {
            query: query.clone(),
            timezone: self.ctx.zone.name().to_owned(),
            currency: self.currency.clone(),
            day_boundaries: self.ctx.zone.describe(&query.period),
            zone_labels,
            notes,
            rows,
            total,
            provenance: Provenance {
                generated_at: inputs.generated_at,
                store_seq: inputs.store_seq,
                judged_at: if view.has_reconciled() {
                    inputs.judged_at.clone()
                } else {
                    Vec::new()
                },
                fx_rates,
                revision: None,
            },
        }
    }
}

/// Orders row keys by the dimensions in `by` order (the order of the
/// columns; `source`, shown before `campaign` or `partner` when not asked
/// for, sorts where it is shown), then by the whole key so that the order
/// never depends on hashing.
fn compare_keys(by: &[Dim], a: &RowKey, b: &RowKey) -> std::cmp::Ordering {
    let mut ord = std::cmp::Ordering::Equal;
    for d in super::render::shown_dims(by) {
        ord = ord.then_with(|| match d {
            Dim::Day => a.day.cmp(&b.day),
            Dim::Channel => a.channel.cmp(&b.channel),
            Dim::Source => a.source.cmp(&b.source),
            Dim::Campaign => (&a.campaign_id, &a.campaign).cmp(&(&b.campaign_id, &b.campaign)),
            Dim::Partner => (&a.partner_id, &a.partner).cmp(&(&b.partner_id, &b.partner)),
        });
    }
    ord.then_with(|| a.cmp(b))
}

/// The note on amounts without an FX rate: how many, which days, the
/// columns left empty and the sources of the rows holding them (QA16 F1:
/// one note for the whole report did not say which rows were wrong).
fn missing_rate_note(what: Unconverted, cur: &str, to: &str, m: &MissingRates) -> String {
    let (columns, tail) = what.effect();
    format!(
        "{} in {cur} {} no {cur}→{to} rate in [fx] {}: {columns} are empty (unknown, not a partial sum) on the rows holding them (sources: {}) and on the total{tail}.",
        count(m.amounts, what.noun()),
        if m.amounts == 1 { "has" } else { "have" },
        m.days(),
        m.sources()
    )
}

/// `1 thing` / `2 things`; a `singular/plural` pair for irregular phrases.
fn count(n: u64, noun: &str) -> String {
    match noun.split_once('/') {
        Some((one, _)) if n == 1 => format!("1 {one}"),
        Some((_, many)) => format!("{n} {many}"),
        None if n == 1 => format!("1 {noun}"),
        None => format!("{n} {noun}s"),
    }
}

/// Whether an attribution rule claims an order: a click id with the rule's
/// prefix, or the rule's `utm_source` (and `utm_medium`, when set).
fn rule_matches(rule: &AttributionRule, o: &Order) -> bool {
    if let Some(p) = &rule.click_id_prefix {
        if o.click_ids.iter().any(|c| c.starts_with(p.as_str())) {
            return true;
        }
    }
    let Some(src) = &rule.utm_source else {
        return false;
    };
    let eq = |a: &Option<String>, b: &str| a.as_deref().is_some_and(|a| a.eq_ignore_ascii_case(b));
    eq(&o.utm.source, src)
        && rule
            .utm_medium
            .as_ref()
            .is_none_or(|m| eq(&o.utm.medium, m))
}

/// The one currency all amounts share, for when `[kpi] currency` is unset.
fn single_currency(inputs: &KpiInputs) -> Result<String, KpiError> {
    let mut seen: Vec<String> = Vec::new();
    let mut note = |m: &Money| {
        if !seen.contains(&m.currency) {
            seen.push(m.currency.clone());
        }
    };
    for s in &inputs.spend {
        note(&s.spend);
        if let Some(v) = &s.platform_conversion_value {
            note(v);
        }
    }
    for o in &inputs.orders {
        note(&o.amount);
    }
    for c in &inputs.claims {
        c.sale_amount
            .iter()
            .chain(c.commission.iter())
            .for_each(&mut note);
    }
    for d in &inputs.decisions {
        d.network_commission.iter().for_each(&mut note);
    }
    match seen.as_slice() {
        [] => Ok("XXX".into()),
        [one] => Ok(one.clone()),
        many => {
            let mut many = many.to_vec();
            many.sort_unstable();
            Err(KpiError::MixedCurrencies(many.join(", ")))
        }
    }
}

/// One summary from inputs: indexes them and groups once.
pub fn summarize(
    ctx: KpiContext<'_>,
    inputs: &KpiInputs,
    query: &Query,
) -> Result<Report, KpiError> {
    Engine::new(ctx, inputs)?.report(query)
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::hash::BuildHasher;

    /// Zero needs no rate; any other amount without one is unknown.
    #[test]
    fn a_zero_amount_needs_no_rate() {
        let fx = FxTable::empty();
        let mut c = Converter::new("USD", &fx);
        let day = NaiveDate::from_ymd_opt(2026, 10, 6).unwrap_or_default();
        assert_eq!(
            c.convert(&Money::new(Decimal::ZERO, "EUR"), day),
            Some(Decimal::ZERO)
        );
        assert_eq!(c.convert(&Money::new(Decimal::ONE, "EUR"), day), None);
        assert_eq!(
            c.convert(&Money::new(Decimal::ZERO, "USD"), day),
            Some(Decimal::ZERO)
        );
    }

    /// Keys that differ only in a few digits must spread over the low bits
    /// (bucket index), or a million orders collide into a few buckets.
    #[test]
    fn hasher_spreads_similar_keys_over_low_bits() {
        let build = BuildHasherDefault::<FxHasher>::default();
        let mut buckets = std::collections::HashSet::new();
        for i in 0..10_000 {
            let id = format!("O-{i}");
            let h = build.hash_one(("shop", id.as_str()));
            buckets.insert(h & 0xfff);
        }
        // 10 000 keys into 4096 buckets: a good hash fills nearly all.
        assert!(
            buckets.len() > 3_500,
            "only {} of 4096 buckets used",
            buckets.len()
        );
    }
}
