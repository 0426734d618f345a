//! The TOML configuration. Owned by the daemon-core work (issue 3).
//!
//! Sections owned by other modules are typed there and only referenced here:
//! `[[programs]]` (reconcile, with commission rules from payout), `[fx]`
//! (payout), `[kpi]` (kpi), `[[postbacks]]` (server).
pub mod cli;

use serde::Deserialize;

/// The whole config file.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Config {
    /// `[daemon]`.
    #[serde(default)]
    pub daemon: toml::Table,
    /// `[[connectors]]`.
    #[serde(default)]
    pub connectors: Vec<toml::Table>,
    /// `[[programs]]`: reconciliation programs and their commission rules.
    #[serde(default)]
    pub programs: Vec<crate::reconcile::config::ProgramConfig>,
    /// `[fx]`: exchange rates for payouts and reconciliation.
    #[serde(default)]
    pub fx: Option<crate::fx::FxConfig>,
    /// `[kpi]`: KPI summaries.
    #[serde(default)]
    pub kpi: Option<crate::kpi::config::KpiConfig>,
    /// `[[postbacks]]`: server-to-server conversion endpoints.
    #[serde(default)]
    pub postbacks: Vec<crate::server::postback::PostbackConfig>,
}
