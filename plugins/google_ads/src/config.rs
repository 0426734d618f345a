//! The connector's settings, as validated by the manifest's schema.
//!
//! The secret settings (`developer_token`, `client_id`, `client_secret`,
//! `refresh_token`) never reach the plugin: the host runs the OAuth2
//! refresh-token flow and adds the `developer-token` header itself. What is
//! here is everything else.

use serde::Deserialize;

/// How fine the spend rows are.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Level {
    /// One row per campaign and day (`FROM campaign`; includes Performance Max).
    Campaign,
    /// One row per ad group and day (`FROM ad_group`).
    AdGroup,
    /// One row per ad and day (`FROM ad_group_ad`).
    Ad,
}

impl Level {
    /// The name used in settings and messages.
    pub fn as_str(self) -> &'static str {
        match self {
            Level::Campaign => "campaign",
            Level::AdGroup => "ad_group",
            Level::Ad => "ad",
        }
    }
}

/// `[connectors.settings]` for Google Ads.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Settings {
    /// The client (advertiser) account to report on: ten digits, dashes allowed
    /// (`123-456-7890`).
    pub customer_id: String,
    /// The manager (MCC) account the credentials act through, sent as the
    /// `login-customer-id` header. Omit when the credentials belong to the
    /// client account itself.
    #[serde(default)]
    pub login_customer_id: Option<String>,
    /// Google Ads API version path segment, e.g. `v24`.
    #[serde(default = "default_api_version")]
    pub api_version: String,
    /// Row granularity: `campaign`, `ad_group` (default) or `ad`.
    #[serde(default = "default_level")]
    pub level: Level,
    /// Days per `searchStream` request (1..=31); each request is committed
    /// with its own checkpoint.
    #[serde(default = "default_days_per_request")]
    pub days_per_request: u32,
    /// Times a quota error (`RESOURCE_EXHAUSTED`) is waited out and retried
    /// before the sync fails with a retryable error.
    #[serde(default = "default_max_quota_retries")]
    pub max_quota_retries: u32,
    /// Wait before retrying a quota error that carries no `retryDelay`.
    #[serde(default = "default_quota_backoff_secs")]
    pub quota_backoff_secs: u32,
    /// Override of the API base URL (tests, proxies). Used by the host.
    #[serde(default)]
    pub base_url: Option<String>,
    /// Override of the OAuth2 token endpoint (tests, proxies). Used by the host.
    #[serde(default)]
    pub token_url: Option<String>,
}

fn default_api_version() -> String {
    "v24".into()
}
fn default_level() -> Level {
    Level::AdGroup
}
fn default_days_per_request() -> u32 {
    1
}
fn default_max_quota_retries() -> u32 {
    5
}
fn default_quota_backoff_secs() -> u32 {
    30
}

impl Settings {
    /// The customer id with dashes removed, or a config error naming the setting.
    pub fn customer_digits(&self) -> Result<String, String> {
        digits("customer_id", &self.customer_id)
    }
    /// The login customer id with dashes removed, if set.
    pub fn login_digits(&self) -> Result<Option<String>, String> {
        self.login_customer_id
            .as_deref()
            .map(|s| digits("login_customer_id", s))
            .transpose()
    }
}

fn digits(name: &str, value: &str) -> Result<String, String> {
    let d: String = value.chars().filter(|c| *c != '-').collect();
    if d.is_empty() || !d.bytes().all(|b| b.is_ascii_digit()) {
        return Err(format!(
            "setting `{name}` = {value:?} is not a Google Ads customer id (digits, dashes allowed, e.g. 123-456-7890)"
        ));
    }
    Ok(d)
}
