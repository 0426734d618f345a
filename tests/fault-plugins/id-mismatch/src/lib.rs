//! Test-only library: a well-formed plugin whose header says `header_id` but
//! whose manifest says `manifest_id`. The loader must refuse it, naming both.

use plugin_api::protocol::{PluginKind, RecordKind, StreamSpec};
use plugin_api::serde_json::json;
use plugin_api::{Connector, Cx, Manifest, PluginError};

/// The plugin type.
#[derive(Debug)]
pub struct Mismatch;

impl Connector for Mismatch {
    fn manifest() -> Manifest {
        Manifest {
            id: "manifest_id".into(),
            name: "Mismatch (test plugin)".into(),
            version: env!("CARGO_PKG_VERSION").into(),
            kind: PluginKind::Orders,
            description: "Header and manifest disagree on the id.".into(),
            config_schema: json!({ "type": "object" }),
            streams: vec![StreamSpec {
                name: "orders".into(),
                record: RecordKind::Order,
                primary_key: vec!["order_id".into()],
                cursor: None,
                default_lookback_days: 0,
            }],
            allowed_hosts: vec![],
            default_base_url: None,
            auth: None,
            max_window_days: None,
            max_history_days: None,
            file_capability: None,
        }
    }

    async fn check(_cx: Cx) -> Result<(), PluginError> {
        Ok(())
    }

    async fn read(_cx: Cx) -> Result<(), PluginError> {
        Ok(())
    }
}

plugin_api::export_plugin!(id = "header_id", connector = Mismatch);
