//! The connector's settings, as validated by the manifest's schema.
//!
//! Secret settings (here `api_key`) never reach the plugin, so they are not
//! fields of this struct: the host injects them into requests.

use serde::Deserialize;

/// `[connectors.settings]` for ExampleNet.
#[derive(Debug, Deserialize)]
pub struct Settings {
    /// Rows per page (1..=1000).
    #[serde(default = "default_page_size")]
    pub page_size: u32,
}

fn default_page_size() -> u32 {
    100
}
