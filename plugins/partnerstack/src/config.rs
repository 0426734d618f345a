//! The connector's settings, as validated by the manifest's schema and,
//! again, by [`Settings::validate`] (the plugin trusts no host).
//!
//! The public and private keys are both secret settings: the host sends them
//! as HTTP Basic user name and password; the plugin never sees them.

use plugin_api::PluginError;
use serde::Deserialize;

/// Most days a review may reach back before the window (two years).
pub const MAX_REVIEW_DAYS: u32 = 730;
/// Longest interval between two reviews (a year).
pub const MAX_REVIEW_EVERY_DAYS: u32 = 365;

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
    /// Days of rewards created before the session window that the
    /// `rewards_review` stream re-reads (0..=730; 0 turns the review off).
    #[serde(default = "default_review_days")]
    pub review_days: u32,
    /// Least number of days between two reviews (1..=365), measured with the
    /// host's clock (`cx.now()`) from the start of the last completed one.
    #[serde(default = "default_review_every_days")]
    pub review_every_days: u32,
    /// Base URL override (tests, proxies); read by the host, ignored here.
    #[serde(default)]
    #[allow(dead_code)]
    pub base_url: Option<String>,
}

impl Settings {
    /// Checks every bound; the error names the connector and the field.
    /// Returns the settings with `default_currency` in upper case.
    pub fn validate(mut self, connector: &str) -> Result<Settings, PluginError> {
        let bad = |field: &str, why: String| {
            PluginError::config(format!("connector `{connector}`: settings.{field}: {why}"))
        };
        if !(1..=250).contains(&self.page_size) {
            return Err(bad(
                "page_size",
                "PartnerStack accepts 1..=250 items per page".into(),
            ));
        }
        self.default_currency = self.default_currency.to_ascii_uppercase();
        if !plugin_api::currency::is_known(&self.default_currency) {
            return Err(bad(
                "default_currency",
                format!("{:?} is not an ISO-4217 code", self.default_currency),
            ));
        }
        if self.review_days > MAX_REVIEW_DAYS {
            return Err(bad(
                "review_days",
                format!(
                    "{} is more than {MAX_REVIEW_DAYS} days (0 turns the review off)",
                    self.review_days
                ),
            ));
        }
        if !(1..=MAX_REVIEW_EVERY_DAYS).contains(&self.review_every_days) {
            return Err(bad(
                "review_every_days",
                format!(
                    "{} is not in 1..={MAX_REVIEW_EVERY_DAYS} (to turn the review off, set review_days = 0)",
                    self.review_every_days
                ),
            ));
        }
        Ok(self)
    }
}

fn default_page_size() -> u32 {
    250
}
fn default_currency() -> String {
    "USD".into()
}
fn default_review_days() -> u32 {
    180
}
fn default_review_every_days() -> u32 {
    7
}
