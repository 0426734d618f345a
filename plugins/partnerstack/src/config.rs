//! The connector's settings, as validated by the manifest's schema.
//!
//! The public and private keys are both secret settings: the host sends them
//! as HTTP Basic user name and password; the plugin never sees them.

use serde::Deserialize;

/// `[connectors.settings]` for PartnerStack.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Settings {
    /// Items per page (`limit`, PartnerStack: 1..=250).
    #[serde(default = "default_page_size")]
    pub page_size: u32,
    /// Currency of a reward that names none (neither itself nor its transaction).
    #[serde(default = "default_currency")]
    pub default_currency: String,
    /// Base URL override (tests, proxies); read by the host, ignored here.
    #[serde(default)]
    #[allow(dead_code)]
    pub base_url: Option<String>,
}

fn default_page_size() -> u32 {
    250
}
fn default_currency() -> String {
    "USD".into()
}
