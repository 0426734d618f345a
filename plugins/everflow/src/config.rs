//! The connector's settings, as validated by the manifest's schema.
//!
//! The API key is secret and never reaches the plugin: the host sends it in
//! the `X-Eflow-API-Key` header.

use serde::Deserialize;

/// `[connectors.settings]` for Everflow.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Settings {
    /// Rows per page (Everflow: 1..=2000).
    #[serde(default = "default_page_size")]
    pub page_size: u32,
    /// Everflow time zone *name* the report window is read in; resolved to a
    /// `timezone_id` through `/v1/meta/timezones` at the start of each session.
    #[serde(default = "default_timezone")]
    pub timezone: String,
    /// Length of Everflow's rate-limit window in seconds (30 on the real API).
    #[serde(default = "default_window_secs")]
    pub rate_limit_window_secs: u32,
    /// Pause one window when fewer requests than this remain in it (0 disables).
    #[serde(default = "default_min_remaining")]
    pub min_remaining_requests: u32,
    /// Base URL override (tests, proxies); read by the host, ignored here.
    #[serde(default)]
    #[allow(dead_code)]
    pub base_url: Option<String>,
}

fn default_page_size() -> u32 {
    2000
}
fn default_timezone() -> String {
    "UTC".into()
}
fn default_window_secs() -> u32 {
    30
}
fn default_min_remaining() -> u32 {
    1
}
