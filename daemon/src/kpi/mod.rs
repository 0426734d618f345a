//! KPI summaries: spend, conversions, revenue and cost per period and per
//! dimension, in two views side by side. Owned by issue 8.
//!
//! - **reported**: each platform's own numbers: spend rows with the platform's
//!   conversions and conversion value; affiliate claims (pending or approved)
//!   as the networks report them, with the networks' commission.
//! - **reconciled**: the advertiser's orders, each counted once: an order won
//!   by an affiliate claim in reconciliation (payable or pending, not a
//!   duplicate) goes to that partner; other orders go to an ad connector and
//!   campaign through the `[[kpi.attribution]]` rules (click ids, UTM); the
//!   rest are `unattributed`. Ad spend is the same in both views.
//!
//! This module is pure functions over in-memory inputs ([`KpiInputs`]);
//! [`load`] reads them from the store and [`summary`] writes the scheduled
//! files. It never changes stored data and never reads raw claims to decide
//! anything reconciliation already decided.
//!
//! | module | job |
//! |---|---|
//! | [`config`] | `[kpi]`: currency, attribution rules, summary schedule |
//! | [`period`] | periods and the reporting timezone's day boundaries |
//! | [`metrics`] | additive totals and the formulas; display rounding |
//! | [`engine`] | facts per view, attribution, grouping into a [`Report`] |
//! | [`render`] | table, CSV, JSON and HTML output |
//! | [`chart`] | the HTML report's inline SVG charts (plotters) |
//! | [`load`] | reading inputs from the store |
//! | [`summary`] | the daemon's daily and monthly summary files |
//! | [`cli`] | `reckon kpi` |
pub mod chart;
pub mod cli;
pub mod commission;
pub mod config;
pub mod engine;
pub mod hook;
pub mod load;
pub mod metrics;
pub mod period;
pub mod render;
pub mod summary;

pub use engine::{
    summarize, CommissionFn, FxUsed, KpiContext, Provenance, Report, ReportRow, Revision, RowKey,
};
pub use metrics::{Metric, Totals};
pub use period::{Period, ReportingZone};

use plugin_api::{Conversion, Order, Spend};
use serde::{Deserialize, Serialize};

use crate::reconcile::model::Decision;

/// Everything a summary is computed from.
#[derive(Debug, Clone, Default)]
pub struct KpiInputs {
    /// Ad spend rows (`RecordKind::Spend`).
    pub spend: Vec<Spend>,
    /// Affiliate claims as the networks report them (`RecordKind::Conversion`);
    /// only the reported view counts them.
    pub claims: Vec<Conversion>,
    /// The advertiser's orders (`RecordKind::Order`).
    pub orders: Vec<Order>,
    /// Reconciliation decisions of every program. Only the earning ones
    /// matched to `orders` are read ([`load::load_inputs`] keeps just those).
    pub decisions: Vec<Decision>,
    /// Sentences on how current those decisions are (a program never
    /// reconciled, records stored after its last run, deadlines passed
    /// since): the reconciled view's notes repeat them.
    pub reconcile_notes: Vec<String>,
    /// Every campaign of every stored spend row, whatever its day
    /// ([`load::load_inputs`] fills it): attribution finds an order's
    /// campaign and channel here, so they never depend on the period
    /// asked. The engine adds the campaigns of `spend` to it.
    pub campaigns: CampaignIndex,
    /// The campaign ids of the claims behind `decisions` that fall outside
    /// the period (a claim on 31 October for an order of 1 November), by
    /// (connector, claim id): the reconciled view credits the order's
    /// campaign from them (QA: an `everflow` row with no campaign on every
    /// month boundary).
    pub claim_campaigns: std::collections::HashMap<(String, String), String>,
    /// When the inputs were read (the `now` given to
    /// [`load::load_inputs`]): every output states it (QA34a A-M2).
    pub generated_at: Option<chrono::DateTime<chrono::Utc>>,
    /// The store's change sequence number, read before the records: the
    /// inputs hold every record stored up to it (and perhaps later ones).
    pub store_seq: Option<u64>,
    /// Per program (in config order), the instant its stored decisions
    /// were judged at: the `now` of its last `reckon reconcile` run
    /// (`None`: never reconciled, or not recorded).
    pub judged_at: Vec<(String, Option<chrono::DateTime<chrono::Utc>>)>,
    /// The programs never reconciled (or whose last full run did not
    /// finish): `reckon kpi` writes its report and exits 1, as `reckon
    /// reconcile report` does, so a scheduled export notices (QA35a L6).
    pub not_reconciled: Vec<String>,
}

/// What the stored spend rows say about each campaign, over all days: its
/// latest name and channel (those of its spend row with the latest day;
/// on one day, the greatest name), and the names it had before. Small: one
/// entry per campaign, not per row.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct CampaignIndex {
    /// connector id → campaign id → campaign.
    by_source: std::collections::BTreeMap<String, std::collections::BTreeMap<String, CampaignMeta>>,
}

/// One campaign in a [`CampaignIndex`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CampaignMeta {
    /// The name on its latest spend row.
    pub name: String,
    /// The channel of that row.
    pub channel: plugin_api::Channel,
    /// The day of that row.
    pub last_day: chrono::NaiveDate,
    /// Other names its spend rows carried (a renamed campaign).
    pub former_names: std::collections::BTreeSet<String>,
}

impl CampaignIndex {
    /// Notes one spend row. Allocates only for a new campaign or name.
    pub fn add(&mut self, s: &Spend) {
        let campaigns = match self.by_source.get_mut(s.source.as_str()) {
            Some(c) => c,
            None => self.by_source.entry(s.source.clone()).or_default(),
        };
        let Some(meta) = campaigns.get_mut(s.campaign_id.as_str()) else {
            campaigns.insert(
                s.campaign_id.clone(),
                CampaignMeta {
                    name: s.campaign_name.clone(),
                    channel: s.channel,
                    last_day: s.day,
                    former_names: Default::default(),
                },
            );
            return;
        };
        if (s.day, s.campaign_name.as_str()) > (meta.last_day, meta.name.as_str()) {
            // A newer row: its name and channel are the campaign's now.
            meta.last_day = s.day;
            meta.channel = s.channel;
            if s.campaign_name != meta.name {
                let old = std::mem::replace(&mut meta.name, s.campaign_name.clone());
                meta.former_names.remove(meta.name.as_str());
                meta.former_names.insert(old);
            }
        } else if s.campaign_name != meta.name
            && !meta.former_names.contains(s.campaign_name.as_str())
        {
            meta.former_names.insert(s.campaign_name.clone());
        }
    }

    /// Every campaign: (connector id, campaign id, campaign), in key order.
    pub fn iter(&self) -> impl Iterator<Item = (&str, &str, &CampaignMeta)> {
        self.by_source
            .iter()
            .flat_map(|(src, cs)| cs.iter().map(move |(id, m)| (src.as_str(), id.as_str(), m)))
    }

    /// Number of campaigns.
    pub fn len(&self) -> usize {
        self.by_source.values().map(|c| c.len()).sum()
    }

    /// Whether it holds no campaign.
    pub fn is_empty(&self) -> bool {
        self.by_source.is_empty()
    }
}

/// A dimension to group by.
#[derive(
    Debug,
    Clone,
    Copy,
    PartialEq,
    Eq,
    Hash,
    PartialOrd,
    Ord,
    Serialize,
    Deserialize,
    clap::ValueEnum,
)]
#[serde(rename_all = "snake_case")]
pub enum Dim {
    /// The local day (reporting timezone; spend rows: their own zone, labelled).
    Day,
    /// The marketing channel (`search`, `social`, `affiliate`, ...).
    Channel,
    /// The connector id.
    Source,
    /// The campaign (ad campaign; for affiliates the network's program id).
    Campaign,
    /// The affiliate partner.
    Partner,
}

impl Dim {
    /// Lower-case name.
    pub fn as_str(self) -> &'static str {
        match self {
            Dim::Day => "day",
            Dim::Channel => "channel",
            Dim::Source => "source",
            Dim::Campaign => "campaign",
            Dim::Partner => "partner",
        }
    }
}

/// Which numbers to show.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, clap::ValueEnum)]
#[serde(rename_all = "snake_case")]
pub enum View {
    /// Each platform's own numbers.
    Reported,
    /// Order-backed and deduplicated.
    Reconciled,
    /// Both side by side, with the difference (reconciled − reported).
    Both,
}

impl View {
    /// Lower-case name.
    pub fn as_str(self) -> &'static str {
        match self {
            View::Reported => "reported",
            View::Reconciled => "reconciled",
            View::Both => "both",
        }
    }
    /// Whether the reported side is computed.
    pub fn has_reported(self) -> bool {
        matches!(self, View::Reported | View::Both)
    }
    /// Whether the reconciled side is computed.
    pub fn has_reconciled(self) -> bool {
        matches!(self, View::Reconciled | View::Both)
    }
}

/// Output format.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, clap::ValueEnum)]
#[serde(rename_all = "snake_case")]
pub enum Format {
    /// Aligned text for a terminal.
    Table,
    /// CSV with a header row.
    Csv,
    /// JSON.
    Json,
    /// A self-contained HTML page with inline SVG charts.
    Html,
}

impl Format {
    /// File extension.
    pub fn extension(self) -> &'static str {
        match self {
            Format::Table => "txt",
            Format::Csv => "csv",
            Format::Json => "json",
            Format::Html => "html",
        }
    }
}

/// What a KPI request asks for.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Query {
    /// The days covered.
    pub period: Period,
    /// Dimensions, in column order (empty: one total row).
    pub by: Vec<Dim>,
    /// The view.
    pub view: View,
}

/// Errors of KPI summaries.
#[derive(Debug, thiserror::Error)]
pub enum KpiError {
    /// Bad `[kpi]` / timezone configuration.
    #[error("kpi config: {0}")]
    Config(String),
    /// A period that cannot be parsed.
    #[error("period {0}")]
    Period(String),
    /// Amounts in several currencies without `[kpi] currency`.
    #[error(
        "amounts are in several currencies ({0}); set `[kpi] currency` (e.g. \"EUR\") and provide `[fx]` rates"
    )]
    MixedCurrencies(String),
    /// A sum left `Decimal`'s range ([`metrics::Totals::overflowed`]).
    #[error(
        "the period's amounts in {currency} (or its clicks or impressions) add up beyond the largest number Reckon computes with (about 7.9 × 10^28; 1.8 × 10^19 for counts): an amount, a count or an [fx] rate must be misread; look for the largest figures stored in the period (`reckon records export`) and the rates converting them"
    )]
    TooLarge {
        /// The reporting currency.
        currency: String,
    },
    /// Reading the store failed.
    #[error(transparent)]
    Store(#[from] crate::store::StoreError),
    /// Writing output failed.
    #[error("writing {path}: {error}")]
    Write {
        /// The file.
        path: String,
        /// The cause: in the message, deliberately not also a `source`
        /// (an error chain printed with its causes would repeat it).
        error: std::io::Error,
    },
    /// Rendering failed (a chart could not be drawn).
    #[error("rendering the {what}: {message}")]
    Render {
        /// What was being drawn.
        what: String,
        /// The cause.
        message: String,
    },
}

#[cfg(test)]
mod tests {
    use super::*;
    use plugin_api::{Channel, Money};
    use rust_decimal::Decimal;

    fn row(day: u32, id: &str, name: &str, channel: Channel) -> Spend {
        Spend {
            source: "tiktok".into(),
            account_id: "a".into(),
            day: chrono::NaiveDate::from_ymd_opt(2026, 10, day).unwrap_or_default(),
            timezone: "UTC".into(),
            campaign_id: id.into(),
            campaign_name: name.into(),
            ad_group_id: None,
            ad_group_name: None,
            ad_id: None,
            channel,
            impressions: 1,
            clicks: 1,
            spend: Money::new(Decimal::ONE, "EUR"),
            platform_conversions: None,
            platform_conversion_value: None,
        }
    }

    /// The index keeps one entry per campaign with the latest row's name
    /// and channel, whatever order the rows come in, and the older names.
    #[test]
    fn campaign_index_keeps_the_latest_name_and_former_ones() {
        let rows = [
            row(2, "c1", "Camp One", Channel::Social),
            row(9, "c1", "Camp One RENAMED", Channel::Video),
            row(5, "c1", "Camp One", Channel::Social),
            row(3, "c2", "Two", Channel::Social),
        ];
        for order in [[0, 1, 2, 3], [3, 2, 1, 0], [1, 0, 3, 2]] {
            let mut index = CampaignIndex::default();
            for i in order {
                index.add(&rows[i]);
            }
            assert_eq!(index.len(), 2);
            let (_, _, c1) = index.iter().next().expect("c1");
            assert_eq!(c1.name, "Camp One RENAMED");
            assert_eq!(c1.channel, Channel::Video);
            assert_eq!(c1.last_day.to_string(), "2026-10-09");
            assert_eq!(c1.former_names.iter().collect::<Vec<_>>(), vec!["Camp One"]);
        }
    }
}
