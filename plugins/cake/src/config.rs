//! The connector's settings, as validated by the manifest's schema.
//!
//! The API key is secret and never reaches the plugin: the host adds it as
//! the `api_key` query parameter. CAKE runs on each customer's own admin
//! domain, so `base_url` is required (the host allows its host name).

use serde::Deserialize;

/// `[connectors.settings]` for CAKE.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Settings {
    /// The admin domain, e.g. `https://admin.mynetwork.com`; read by the host.
    #[allow(dead_code)]
    pub base_url: String,
    /// The `reports.asmx` API version in the path (`/api/{version}/...`).
    #[serde(default = "default_api_version")]
    pub api_version: u32,
    /// Rows per request (`row_limit`).
    #[serde(default = "default_row_limit")]
    pub row_limit: u32,
    /// Canonical status of a conversion that has no disposition yet
    /// (`approved`: CAKE bills undispositioned conversions; or `pending`).
    #[serde(default = "default_no_disposition")]
    pub no_disposition_status: String,
}

fn default_api_version() -> u32 {
    18
}
fn default_row_limit() -> u32 {
    5000
}
fn default_no_disposition() -> String {
    "approved".into()
}
