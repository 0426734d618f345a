//! The connector's settings, as validated by the manifest's schema.
//!
//! The secret `access_token` never reaches the plugin: the host adds it as
//! the `access_token` query parameter of every request.

use serde::Deserialize;

/// Insights `level`: how fine the spend rows are.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Level {
    /// One row per campaign and day.
    Campaign,
    /// One row per ad set and day.
    Adset,
    /// One row per ad and day.
    Ad,
}

impl Level {
    /// The API's value for `level`.
    pub fn as_str(self) -> &'static str {
        match self {
            Level::Campaign => "campaign",
            Level::Adset => "adset",
            Level::Ad => "ad",
        }
    }

    /// Every documented `effective_status` of the level's object (Meta's
    /// public SDK enums). Insights leave out ARCHIVED and DELETED objects
    /// unless the request filters on their status, and fail the request
    /// (code 100) on a value the level does not know.
    pub fn effective_statuses(self) -> &'static [&'static str] {
        match self {
            Level::Campaign => &[
                "ACTIVE",
                "PAUSED",
                "DELETED",
                "ARCHIVED",
                "IN_PROCESS",
                "WITH_ISSUES",
            ],
            Level::Adset => &[
                "ACTIVE",
                "PAUSED",
                "DELETED",
                "CAMPAIGN_PAUSED",
                "ARCHIVED",
                "IN_PROCESS",
                "WITH_ISSUES",
            ],
            Level::Ad => &[
                "ACTIVE",
                "PAUSED",
                "DELETED",
                "PENDING_REVIEW",
                "DISAPPROVED",
                "PREAPPROVED",
                "PENDING_BILLING_INFO",
                "CAMPAIGN_PAUSED",
                "ARCHIVED",
                "ADSET_PAUSED",
                "IN_PROCESS",
                "WITH_ISSUES",
            ],
        }
    }
}

/// Which insights field is stored as `clicks`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ClicksMetric {
    /// `clicks`: all clicks (link clicks plus likes, comments, shares,
    /// expands, profile clicks...). The default, as before the setting.
    #[default]
    Clicks,
    /// `inline_link_clicks`: clicks on links to the advertiser's
    /// destinations, like Google's and TikTok's `clicks`.
    InlineLinkClicks,
}

impl ClicksMetric {
    /// The insights field.
    pub fn field(self) -> &'static str {
        match self {
            ClicksMetric::Clicks => "clicks",
            ClicksMetric::InlineLinkClicks => "inline_link_clicks",
        }
    }
}

/// Whether insights are read directly or through async report runs.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ReportMode {
    /// Async when the session window is longer than `sync_max_days`.
    Auto,
    /// Always `GET /act_{id}/insights`.
    Sync,
    /// Always an async report run (`POST`, poll, read).
    Async,
}

/// The attribution windows Meta accepts (reference §6); composite ones like
/// `7d_view_1d_click` are rejected by the API.
pub const WINDOWS: [&str; 8] = [
    "1d_view",
    "7d_view",
    "28d_view",
    "1d_click",
    "7d_click",
    "28d_click",
    "dda",
    "default",
];

/// `[connectors.settings]` for Meta Ads.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Settings {
    /// The ad account, digits with or without the `act_` prefix.
    pub ad_account_id: String,
    /// Graph API version path segment, e.g. `v22.0`.
    #[serde(default = "default_api_version")]
    pub api_version: String,
    /// Row granularity: `campaign`, `adset` (default) or `ad`.
    #[serde(default = "default_level")]
    pub level: Level,
    /// The one `action_type` counted as conversions and value (e.g.
    /// `omni_purchase`, `offsite_conversion.fb_pixel_purchase`). Purchase
    /// types overlap, so exactly one is used, never a sum. Empty: none.
    #[serde(default = "default_action_type")]
    pub conversion_action_type: String,
    /// The insights field stored as `clicks`: `clicks` (all clicks, the
    /// default) or `inline_link_clicks` (link clicks, comparable with
    /// Google's and TikTok's clicks).
    #[serde(default)]
    pub clicks_metric: ClicksMetric,
    /// `action_attribution_windows` to request (e.g. `["7d_click", "1d_view"]`);
    /// empty asks for each ad set's own setting and reads each action's
    /// `value`. With windows, each action's figures under them (one key per
    /// window) are added up; at most one click and one view window, which
    /// do not overlap (see [`Settings::check_windows`]).
    #[serde(default)]
    pub action_attribution_windows: Vec<String>,
    /// `auto` (default), `sync` or `async`.
    #[serde(default = "default_report_mode")]
    pub report_mode: ReportMode,
    /// In `auto` mode, windows of at most this many days are read directly.
    #[serde(default = "default_sync_max_days")]
    pub sync_max_days: u32,
    /// Days per request or report run (1..=90); each is committed when read.
    #[serde(default = "default_days_per_request")]
    pub days_per_request: u32,
    /// Rows per page (`limit`).
    #[serde(default = "default_page_size")]
    pub page_size: u32,
    /// Wait between two polls of an async report run.
    #[serde(default = "default_poll_interval_secs")]
    pub poll_interval_secs: u32,
    /// Give up on a report run (retryable) after this long.
    #[serde(default = "default_job_timeout_secs")]
    pub job_timeout_secs: u32,
    /// Start slowing down when a usage header reaches this percentage.
    #[serde(default = "default_slow_down_at_pct")]
    pub slow_down_at_pct: u32,
    /// The pause at 100 % usage; pauses scale linearly from `slow_down_at_pct`.
    #[serde(default = "default_max_pause_secs")]
    pub max_pause_secs: u32,
    /// First wait after a throttling error (codes 4, 17, 32, 613, 80000-80014);
    /// doubled on each further one.
    #[serde(default = "default_throttle_backoff_secs")]
    pub throttle_backoff_secs: u32,
    /// Throttling errors waited out per request before failing (retryable).
    #[serde(default = "default_max_throttle_retries")]
    pub max_throttle_retries: u32,
    /// Override of the API base URL (tests, proxies). Used by the host.
    #[serde(default)]
    pub base_url: Option<String>,
}

fn default_api_version() -> String {
    "v22.0".into()
}
fn default_level() -> Level {
    Level::Adset
}
fn default_action_type() -> String {
    "omni_purchase".into()
}
fn default_report_mode() -> ReportMode {
    ReportMode::Auto
}
fn default_sync_max_days() -> u32 {
    7
}
fn default_days_per_request() -> u32 {
    7
}
fn default_page_size() -> u32 {
    500
}
fn default_poll_interval_secs() -> u32 {
    10
}
fn default_job_timeout_secs() -> u32 {
    3600
}
fn default_slow_down_at_pct() -> u32 {
    75
}
fn default_max_pause_secs() -> u32 {
    300
}
fn default_throttle_backoff_secs() -> u32 {
    60
}
fn default_max_throttle_retries() -> u32 {
    5
}

impl Settings {
    /// The account id's digits, or an error naming the setting.
    /// Refuses windows whose figures would overlap when added up: two
    /// click windows (a 1-day click is also a 7-day click), two view
    /// windows, or `dda` / `default` beside another. Composite names
    /// (`7d_view_1d_click`), which Meta rejects, are refused by the
    /// manifest's schema ([`WINDOWS`]).
    pub fn check_windows(&self) -> Result<(), String> {
        let w = &self.action_attribution_windows;
        let count = |suffix: &str| w.iter().filter(|x| x.ends_with(suffix)).count();
        let whole = w.iter().any(|x| x == "dda" || x == "default");
        if count("_click") > 1 || count("_view") > 1 || (whole && w.len() > 1) {
            return Err(format!(
                "setting `action_attribution_windows` = {w:?} would count a purchase twice: \
                 give at most one click window and one view window (e.g. [\"7d_click\", \"1d_view\"]), or `dda` / `default` alone"
            ));
        }
        Ok(())
    }

    pub fn account_digits(&self) -> Result<String, String> {
        let d = self
            .ad_account_id
            .trim()
            .strip_prefix("act_")
            .unwrap_or(self.ad_account_id.trim());
        if d.is_empty() || !d.bytes().all(|b| b.is_ascii_digit()) {
            return Err(format!(
                "setting `ad_account_id` = {:?} is not an ad account id (digits, optionally prefixed `act_`)",
                self.ad_account_id
            ));
        }
        Ok(d.to_owned())
    }
}
