//! The connector's settings, as validated by the manifest's schema.
//!
//! The Shopify access token is a secret setting (`access_token`): it never
//! reaches the plugin, so it is not a field here; the host injects it as the
//! `X-Shopify-Access-Token` header.

use serde::Deserialize;

/// Where orders come from.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Mode {
    /// Shopify Admin REST API (`/admin/api/2024-10/orders.json`).
    Shopify,
    /// CSV / JSONL files dropped in `directory` (read by the host).
    Files,
}

/// `[connectors.settings]` for the orders connector.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Settings {
    /// `"shopify"` or `"files"`.
    pub mode: Mode,
    /// Shopify: the shop's base URL, `https://<shop>.myshopify.com` (required in
    /// shopify mode; the host sends requests there).
    #[serde(default)]
    pub base_url: Option<String>,
    /// Shopify: orders per page (1..=250).
    #[serde(default = "default_page_size")]
    pub page_size: u32,
    /// Shopify: give up after this many consecutive HTTP 429 answers for one page.
    #[serde(default = "default_max_throttle_retries")]
    pub max_throttle_retries: u32,
    /// Extra landing-page / note-attribute parameter names that carry click
    /// ids (added to the built-in list: gclid, fbclid, ttclid, irclickid, ...).
    #[serde(default)]
    pub click_id_params: Vec<String>,
    /// Files: the directory the host reads (`.csv` and `.jsonl` files).
    #[serde(default)]
    pub directory: Option<String>,
    /// Files: ISO-4217 code used when a row has no `currency`.
    #[serde(default)]
    pub default_currency: Option<String>,
}

fn default_page_size() -> u32 {
    250
}

fn default_max_throttle_retries() -> u32 {
    1
}

/// Click-id parameter names recognised in `landing_site` query strings,
/// Shopify `note_attributes` and file rows (compared case-insensitively).
pub const CLICK_ID_PARAMS: &[&str] = &[
    "gclid",
    "gbraid",
    "wbraid",
    "fbclid",
    "ttclid",
    "msclkid",
    "irclickid",
    "transaction_id",
    "_ef_transaction_id",
    "clickid",
    "click_id",
    "cjevent",
    "awc",
    "sscid",
];

impl Settings {
    /// True if `name` is a click-id parameter (built-in or configured).
    pub fn is_click_param(&self, name: &str) -> bool {
        CLICK_ID_PARAMS.iter().any(|p| p.eq_ignore_ascii_case(name))
            || self
                .click_id_params
                .iter()
                .any(|p| p.eq_ignore_ascii_case(name))
    }
}
