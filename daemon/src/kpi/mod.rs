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

pub use engine::{summarize, CommissionFn, KpiContext, Report, ReportRow, RowKey};
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
