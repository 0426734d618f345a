//! `[[programs]]` config.
use serde::Deserialize;

/// One reconciliation program.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ProgramConfig {
    /// Program id.
    pub id: String,
    /// Commission rules and payout settings of the program.
    #[serde(default)]
    pub commission: Option<crate::payout::config::CommissionConfig>,
}
