//! # The orders connector: the advertiser's truth
//!
//! Produces canonical [`plugin_api::Order`] records (orders and their refunds)
//! that affiliate claims are reconciled against. Two modes, set by
//! `settings.mode`:
//!
//! - **`shopify`**: Shopify Admin REST API, version 2024-10.
//!   `GET /admin/api/2024-10/orders.json?status=any&updated_at_min=..&updated_at_max=..&limit=250`,
//!   paged by the `Link` header (`rel="next"`, `page_info` cursor). Auth: the
//!   host sends `X-Shopify-Access-Token: <access_token>` (a secret setting).
//!   One stream, `orders`, keyed by the order's numeric id, with its `name`
//!   (`#1001`) and `order_number` as alternative ids; cursor `updated_at`, so
//!   a refund or a status change re-pulls the order and the store keeps the
//!   previous value as a revision. Throttling (429 + `Retry-After`, the
//!   `X-Shopify-Shop-Api-Call-Limit` bucket) is handled in [`shopify`].
//! - **`files`**: a CSV / JSONL file drop for any other shop system. The
//!   manifest declares a read-only file capability on the `directory`
//!   setting; the host lists and reads the files, the plugin only parses.
//!   One stream, `order_files`, whose checkpoint remembers each file's name,
//!   size and SHA-256 (see [`files`] for the columns).
//!
//! Amounts are net of tax and shipping (see [`shopify::to_order`]); refunds
//! are net the same way, so reconciliation compares like with like.
//! A malformed order fails the session with an error naming the page or file
//! line, the order id and the field; nothing of that page / file is stored.

mod attribution;
pub mod config;
pub mod files;
pub mod shopify;

use config::{Mode, Settings};
use plugin_api::protocol::{AuthSpec, FileCapability, PluginKind, RecordKind, StreamSpec};
use plugin_api::serde_json::json;
use plugin_api::{Connector, Cx, Manifest, PluginError};

/// The connector type. It has no fields: all state lives in the session.
#[derive(Debug)]
pub struct Orders;

impl Connector for Orders {
    fn manifest() -> Manifest {
        Manifest {
            id: "orders".into(),
            name: "Orders (Shopify or file drop)".into(),
            version: env!("CARGO_PKG_VERSION").into(),
            kind: PluginKind::Orders,
            description: "The advertiser's orders and refunds, the truth affiliate claims are \
                          checked against: from Shopify's Admin REST API (2024-10, orders with \
                          refunds, click ids and UTM from the landing page and note attributes) \
                          or from CSV / JSONL files dropped in a directory."
                .into(),
            config_schema: json!({
                "type": "object",
                "additionalProperties": false,
                "required": ["mode"],
                "properties": {
                    "mode": { "type": "string", "enum": ["shopify", "files"],
                              "description": "Where orders come from." },
                    "access_token": { "type": "string", "x-secret": true,
                                      "description": "Shopify: Admin API access token of a custom app with read_orders (required in shopify mode)." },
                    "base_url": { "type": "string",
                                  "description": "Shopify: the shop's URL, https://<shop>.myshopify.com (required in shopify mode)." },
                    "page_size": { "type": "integer", "minimum": 1, "maximum": 250, "default": 250,
                                   "description": "Shopify: orders per page." },
                    "max_throttle_retries": { "type": "integer", "minimum": 0, "default": 1,
                                              "description": "Shopify: times a page is asked for again after the host gave up on its 429s (the host already retries each request up to 5 times, waiting Retry-After; each ask is up to 6 requests)." },
                    "click_id_params": { "type": "array", "items": { "type": "string" },
                                         "description": "Extra parameter names carrying click ids (landing page, note attributes)." },
                    "directory": { "type": "string",
                                   "description": "Files: the directory holding .csv and .jsonl order files (files mode)." },
                    "default_currency": { "type": "string", "format": "currency",
                                          "description": "Files: ISO-4217 code for rows without a currency." }
                },
                // Each mode's own required settings, so the host refuses a
                // connector missing them at `config check` and start, not at
                // the first run: files mode needs the directory, shopify
                // mode the shop's URL and its access token.
                "allOf": [{
                    "if": { "properties": { "mode": { "const": "files" } }, "required": ["mode"] },
                    "then": { "required": ["directory"] }
                }, {
                    "if": { "properties": { "mode": { "const": "shopify" } }, "required": ["mode"] },
                    "then": { "required": ["base_url", "access_token"] }
                }]
            }),
            streams: vec![
                StreamSpec {
                    name: shopify::STREAM.into(),
                    record: RecordKind::Order,
                    primary_key: vec!["order_id".into()],
                    cursor: Some("updated_at".into()),
                    default_lookback_days: 60,
                },
                StreamSpec {
                    name: files::STREAM.into(),
                    record: RecordKind::Order,
                    primary_key: vec!["order_id".into()],
                    cursor: None,
                    default_lookback_days: 0,
                },
            ],
            // Shops live on <shop>.myshopify.com: the host allows the
            // configured base_url's host.
            allowed_hosts: Vec::new(),
            default_base_url: None,
            auth: Some(AuthSpec::Header {
                name: "X-Shopify-Access-Token".into(),
                value: "access_token".into(),
            }),
            max_window_days: Some(31),
            max_history_days: None,
            file_capability: Some(FileCapability {
                directory_setting: "directory".into(),
                suffixes: files::SUFFIXES.iter().map(|s| (*s).to_owned()).collect(),
            }),
        }
    }

    async fn check(cx: Cx) -> Result<(), PluginError> {
        let settings: Settings = cx.settings()?;
        match settings.mode {
            Mode::Shopify => {
                require_base_url(&cx, &settings)?;
                shopify::check(&cx).await
            }
            Mode::Files => {
                require_directory(&cx, &settings)?;
                cx.list_files().await?;
                Ok(())
            }
        }
    }

    async fn read(cx: Cx) -> Result<(), PluginError> {
        let settings: Settings = cx.settings()?;
        match settings.mode {
            Mode::Shopify => {
                require_base_url(&cx, &settings)?;
                if cx.wants(shopify::STREAM) {
                    shopify::read(&cx, &settings).await?;
                }
            }
            Mode::Files => {
                require_directory(&cx, &settings)?;
                if cx.wants(files::STREAM) {
                    files::read(&cx, &settings).await?;
                }
            }
        }
        Ok(())
    }
}

fn require_base_url(cx: &Cx, settings: &Settings) -> Result<(), PluginError> {
    if settings.base_url.is_none() && cx.base_url().is_empty() {
        return Err(PluginError::config(format!(
            "connector `{}`: settings.base_url is required in shopify mode \
             (https://<shop>.myshopify.com)",
            cx.connector_id()
        )));
    }
    Ok(())
}

fn require_directory(cx: &Cx, settings: &Settings) -> Result<(), PluginError> {
    if settings.directory.as_deref().is_none_or(str::is_empty) {
        return Err(PluginError::config(format!(
            "connector `{}`: settings.directory is required in files mode",
            cx.connector_id()
        )));
    }
    Ok(())
}

// Generates the C ABI exports. `id` must equal the manifest id.
plugin_api::export_plugin!(id = "orders", connector = Orders);

#[cfg(test)]
mod tests;
