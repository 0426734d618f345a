//! The connector's settings, as validated by the manifest's schema.
//!
//! The API key is secret and never reaches the plugin: the host adds it as
//! the `api_key` query parameter. CAKE runs on each customer's own admin
//! domain, so `base_url` is required (the host allows its host name).

use plugin_api::PluginError;
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
    /// The CAKE instance's time zone, an IANA name (e.g.
    /// `America/New_York`): CAKE reports in instance time, and a date-time
    /// it sends without a UTC offset is read in this zone. Unset, such a
    /// date-time fails its page with an error naming this setting (it is
    /// never taken as UTC); `/Date(ms)/` dates and times with an offset need
    /// no zone. It also narrows the changes stream: CAKE reads its
    /// date-only `changes_since` in this zone, so with it the re-read of
    /// restatements starts at the instance's midnight before the last run
    /// (less a few hours), without it a day earlier (any zone's midnight).
    #[serde(default)]
    pub instance_timezone: Option<String>,
}

impl Settings {
    /// The parsed `instance_timezone`; the error names the connector and the
    /// setting.
    pub fn instance_tz(&self, connector: &str) -> Result<Option<chrono_tz::Tz>, PluginError> {
        let Some(name) = self.instance_timezone.as_deref() else {
            return Ok(None);
        };
        name.trim().parse::<chrono_tz::Tz>().map(Some).map_err(|_| {
            PluginError::config(format!(
                "connector `{connector}`: settings.instance_timezone: {name:?} is not an IANA time zone name (e.g. \"America/New_York\", \"UTC\")"
            ))
        })
    }
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
