//! # The example connector: the template for plugin authors
//!
//! Copy this crate to start a new connector. It talks to "ExampleNet", a small
//! affiliate API invented for this template (its loopback fake lives in
//! `tests/src/fakes/example.rs`), and shows every piece a real connector has:
//!
//! - a manifest with a config schema, a secret setting and two streams;
//! - auth done by the host (the plugin only names the secret setting);
//! - cursor paging, one checkpoint per page, resuming mid-window after a crash;
//! - a lookback window (the host subtracts `lookback_days` from the last
//!   checkpoint, so late changes are re-pulled and upserted);
//! - lenient number parsing and errors that name the stream, page, record and field.
//!
//! ## The ExampleNet API (v1)
//! - `GET /v1/me` → `{"account": "..."}`: cheap credential check.
//! - `GET /v1/conversions?start=YYYY-MM-DD&end=YYYY-MM-DD&limit=N[&cursor=C]` →
//!   `{"data": [Row, ...], "next": "C" | null}`; conversions created in the days
//!   `start..=end` (UTC).
//! - `GET /v1/reversals?start=...&end=...&limit=N[&cursor=C]`: the same shape,
//!   listing conversions whose state changed in those days.
//! - Auth: `Authorization: Bearer <api_key>`; 401 on a wrong key; 429 with
//!   `Retry-After` when throttled (the host waits and retries for us).
//!
//! A `Row` is `{"id", "order_ref", "click", "clicked_at", "partner": {"id", "name"},
//! "type", "created", "amount", "commission", "currency", "state", "updated"}`;
//! amounts are decimal strings or numbers.

// Layout every connector follows: config (settings struct), one module per
// stream-specific piece, and the `Connector` impl here.
mod config;
mod rows;

use config::Settings;
use plugin_api::chrono::{Duration, NaiveTime};
use plugin_api::protocol::{AuthSpec, Checkpoint, PluginKind, RecordKind, StreamSpec};
use plugin_api::serde_json::{json, Value};
use plugin_api::{Connector, Cx, Manifest, PluginError, Request};

/// The connector type. It has no fields: all state lives in the session.
#[derive(Debug)]
pub struct Example;

/// Stream names. The host passes them back in checkpoints.
pub const CONVERSIONS: &str = "conversions";
/// Status changes of earlier conversions.
pub const REVERSALS: &str = "reversals";

impl Connector for Example {
    fn manifest() -> Manifest {
        Manifest {
            id: "example".into(),
            name: "ExampleNet (template)".into(),
            version: env!("CARGO_PKG_VERSION").into(),
            kind: PluginKind::Affiliate,
            description:
                "Template connector for ExampleNet, a small affiliate API: conversions and their \
                          status changes, bearer-token auth, cursor paging."
                    .into(),
            // The schema is what `reckon config check` validates settings
            // against. `x-secret` marks fields that must be secret references
            // (`{ secret = "env:NAME" }`); the plugin never receives them.
            config_schema: json!({
                "type": "object",
                "additionalProperties": false,
                "required": ["api_key"],
                "properties": {
                    "api_key": { "type": "string", "x-secret": true,
                                 "description": "ExampleNet API key (Settings → API)." },
                    "page_size": { "type": "integer", "minimum": 1, "maximum": 1000, "default": 100,
                                   "description": "Rows per page." },
                    "base_url": { "type": "string", "description": "Override the API base URL (tests, proxies)." }
                }
            }),
            streams: vec![
                StreamSpec {
                    name: CONVERSIONS.into(),
                    record: RecordKind::Conversion,
                    primary_key: vec!["external_id".into()],
                    cursor: Some("occurred_at".into()),
                    default_lookback_days: 7,
                },
                StreamSpec {
                    name: REVERSALS.into(),
                    record: RecordKind::Conversion,
                    primary_key: vec!["external_id".into()],
                    cursor: Some("status_changed_at".into()),
                    default_lookback_days: 7,
                },
            ],
            allowed_hosts: vec!["api.example.net".into()],
            default_base_url: Some("https://api.example.net".into()),
            // The host adds `Authorization: Bearer <value of api_key>`.
            auth: Some(AuthSpec::Bearer {
                token: "api_key".into(),
            }),
            max_window_days: Some(31),
            max_history_days: None,
            file_capability: None,
        }
    }

    async fn check(cx: Cx) -> Result<(), PluginError> {
        // One cheap request: `ok()` maps 401/403 to an auth error.
        cx.http(Request::get(format!("{}/v1/me", cx.base_url())).label("check"))
            .await?
            .ok()?;
        Ok(())
    }

    async fn read(cx: Cx) -> Result<(), PluginError> {
        let settings: Settings = cx.settings()?;
        for stream in [CONVERSIONS, REVERSALS] {
            if cx.wants(stream) {
                read_stream(&cx, &settings, stream).await?;
            }
        }
        Ok(())
    }
}

/// Pulls one stream over the session window, page by page.
async fn read_stream(cx: &Cx, settings: &Settings, stream: &str) -> Result<(), PluginError> {
    let window = cx.window()?;
    let window_key = format!("{}..{}", window.from, window.to);
    let window_start = window.from.and_time(NaiveTime::MIN).and_utc();

    // Resume mid-window if the last session of this stream crashed after
    // committing some pages of the same window: at its cursor, counting
    // pages on from where it stopped (errors name the server's page).
    let resumed = cx
        .checkpoint(stream)
        .filter(|cp| cp.state.get("window").and_then(Value::as_str) == Some(window_key.as_str()));
    let mut cursor: Option<String> = resumed.and_then(|cp| {
        cp.state
            .get("cursor")
            .and_then(Value::as_str)
            .map(str::to_owned)
    });
    // A watermark never moves backwards: keep the committed one when resuming.
    let mut watermark = cx
        .checkpoint(stream)
        .map(|cp| cp.watermark.max(window_start))
        .unwrap_or(window_start);

    let mut page: u32 = match (&cursor, resumed) {
        (Some(_), Some(cp)) => cp
            .state
            .get("page")
            .and_then(Value::as_u64)
            .map_or(1, |p| p as u32 + 1),
        _ => 1,
    };
    loop {
        let mut req = Request::get(format!("{}/v1/{stream}", cx.base_url()))
            .query("start", window.from)
            .query("end", window.to)
            .query("limit", settings.page_size)
            .label(format!("{stream} page {page}"));
        if let Some(c) = &cursor {
            req = req.query("cursor", c);
        }
        let what = format!("stream `{stream}` page {page}");
        let resp = cx.http(req).await?.ok().map_err(|e| PluginError {
            message: format!("{what}: {}", e.message),
            ..e
        })?;
        let body: rows::Page = resp.json(&what)?;
        for (i, row) in body.data.iter().map(|r| &r.0).enumerate() {
            let record = rows::to_conversion(row).map_err(|field_err| {
                PluginError::bad_response(format!(
                    "{what}, record {} (id {}): {field_err}",
                    i + 1,
                    row_id(row)
                ))
            })?;
            cx.emit(record);
        }
        cursor = body.next.filter(|c| !c.is_empty());
        // Commit the page: the host stores the records above and this
        // checkpoint in one transaction. On the last page the watermark moves
        // to the end of the window, or to now if the window reaches today
        // (a watermark says how far the data was read, never the future).
        if cursor.is_none() {
            let end = (window.to + Duration::days(1))
                .and_time(NaiveTime::MIN)
                .and_utc();
            watermark = watermark.max(end.min(cx.now()));
        }
        cx.commit(Checkpoint {
            stream: stream.into(),
            watermark,
            state: json!({ "window": window_key, "cursor": cursor, "page": page }),
            covers: None,
        });
        if cursor.is_none() {
            break;
        }
        page += 1;
    }
    cx.debug("stream done", &[("stream", &stream), ("pages", &page)]);
    Ok(())
}

fn row_id(row: &Value) -> String {
    row.get("id")
        .map(|v| v.to_string())
        .unwrap_or_else(|| "?".into())
}

// Generates the C ABI exports. `id` must equal the manifest id.
plugin_api::export_plugin!(id = "example", connector = Example);

#[cfg(test)]
mod tests;
