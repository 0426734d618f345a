//! The connector's settings, as validated by the manifest's schema.
//!
//! The API key is secret and never reaches the plugin: the host sends it in
//! the `X-Eflow-API-Key` header.

use plugin_api::{Cx, PluginError};
use serde::Deserialize;

/// `[connectors.settings]` for Everflow.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Settings {
    /// Rows per page (Everflow: 1..=2000).
    #[serde(default = "default_page_size")]
    pub page_size: u32,
    /// Everflow time zone *name* the report window is read in; resolved to a
    /// `timezone_id` through `/v1/meta/timezones` at the start of each
    /// session. Unset: the connector's `timezone` (so the window's days are
    /// the connector's), else UTC with a host that does not send one.
    #[serde(default)]
    pub timezone: Option<String>,
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
fn default_window_secs() -> u32 {
    30
}
fn default_min_remaining() -> u32 {
    1
}

impl Settings {
    /// The Everflow zone name the window is read in: `settings.timezone`,
    /// else the connector's `timezone` (UTC when the host sends none).
    pub fn zone_name(&self, cx: &Cx) -> Result<String, PluginError> {
        match &self.timezone {
            Some(name) => Ok(name.trim().to_owned()),
            None => Ok(cx.timezone()?.name().to_owned()),
        }
    }
}
