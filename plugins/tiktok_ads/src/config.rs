//! The connector's settings, as validated by the manifest's schema.
//!
//! The secret `access_token` never reaches the plugin: the host sends it as
//! the `Access-Token` header.

use serde::Deserialize;

/// Report `data_level`: how fine the spend rows are.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Level {
    /// `AUCTION_CAMPAIGN`: one row per campaign and day.
    Campaign,
    /// `AUCTION_ADGROUP`: one row per ad group and day.
    AdGroup,
    /// `AUCTION_AD`: one row per ad and day.
    Ad,
}

impl Level {
    /// The API's `data_level`.
    pub fn data_level(self) -> &'static str {
        match self {
            Level::Campaign => "AUCTION_CAMPAIGN",
            Level::AdGroup => "AUCTION_ADGROUP",
            Level::Ad => "AUCTION_AD",
        }
    }
    /// The id dimension of the level.
    pub fn id_dimension(self) -> &'static str {
        match self {
            Level::Campaign => "campaign_id",
            Level::AdGroup => "adgroup_id",
            Level::Ad => "ad_id",
        }
    }
}

/// `[connectors.settings]` for TikTok Ads.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Settings {
    /// The advertiser (ad account) id, digits.
    pub advertiser_id: String,
    /// Row granularity: `campaign`, `ad_group` (default) or `ad`.
    #[serde(default = "default_level")]
    pub level: Level,
    /// Days per report request (1..=30: TikTok's cap for daily reports).
    #[serde(default = "default_days_per_request")]
    pub days_per_request: u32,
    /// Rows per page (1..=1000).
    #[serde(default = "default_page_size")]
    pub page_size: u32,
    /// The metric counted as platform conversions (`conversion` by default);
    /// empty for none.
    #[serde(default = "default_conversion_metric")]
    pub conversion_metric: String,
    /// The metric counted as conversion value, e.g.
    /// `total_complete_payment_rate` (TikTok's "total complete payment
    /// value"); empty (default) for none.
    #[serde(default)]
    pub conversion_value_metric: String,
    /// First wait after a rate-limit answer (`code` 40100) or a temporary
    /// server error (5xxxx, 60001); doubled on each further one.
    #[serde(default = "default_rate_limit_backoff_secs")]
    pub rate_limit_backoff_secs: u32,
    /// Rate-limit answers waited out per request before failing (retryable).
    #[serde(default = "default_max_rate_limit_retries")]
    pub max_rate_limit_retries: u32,
    /// Override of the API base URL (tests, proxies). Used by the host.
    #[serde(default)]
    pub base_url: Option<String>,
}

fn default_level() -> Level {
    Level::AdGroup
}
fn default_days_per_request() -> u32 {
    30
}
fn default_page_size() -> u32 {
    1000
}
fn default_conversion_metric() -> String {
    "conversion".into()
}
fn default_rate_limit_backoff_secs() -> u32 {
    2
}
fn default_max_rate_limit_retries() -> u32 {
    5
}

impl Settings {
    /// The advertiser id, or an error naming the setting.
    pub fn advertiser(&self) -> Result<String, String> {
        let d = self.advertiser_id.trim();
        if d.is_empty() || !d.bytes().all(|b| b.is_ascii_digit()) {
            return Err(format!(
                "setting `advertiser_id` = {:?} is not a TikTok advertiser id (digits)",
                self.advertiser_id
            ));
        }
        Ok(d.to_owned())
    }
}
