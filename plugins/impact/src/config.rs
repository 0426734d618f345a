//! The connector's settings, as validated by the manifest's schema.
//!
//! The auth token is secret and never reaches the plugin (the host sends it
//! as the Basic-auth password). The account SID is not secret: it is the
//! Basic-auth user name *and* a path segment of every URL, so it is a plain
//! setting the plugin reads.

use serde::Deserialize;

/// `[connectors.settings]` for Impact.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Settings {
    /// The brand account SID (Settings → API in the Impact app), e.g. `IRabc123`.
    pub account_sid: String,
    /// Campaign (program) ids to pull; Impact's brand `/Actions` requires one per request.
    pub campaign_ids: Vec<u64>,
    /// Rows per page (Impact: 2000..=20000, default 20000).
    #[serde(default = "default_page_size")]
    pub page_size: u32,
    /// The `IR-Version` header sent with every request (pins the record shape).
    #[serde(default = "default_api_version")]
    pub api_version: u32,
    /// Pause until the rate-limit window resets when fewer than this many
    /// requests remain in it (0 disables the proactive slow-down).
    #[serde(default = "default_min_remaining")]
    pub min_remaining_requests: u32,
    /// Base URL override (tests, proxies); read by the host, ignored here.
    #[serde(default)]
    #[allow(dead_code)]
    pub base_url: Option<String>,
}

fn default_page_size() -> u32 {
    20_000
}

fn default_api_version() -> u32 {
    14
}

fn default_min_remaining() -> u32 {
    1
}
