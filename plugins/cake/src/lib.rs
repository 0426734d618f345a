//! # CAKE connector (classic `.asmx` API, v15–v18)
//!
//! Pulls a CAKE network's **event conversions** (the affiliates' claims) and
//! their **changes** (restatements: dispositions, price changes), producing
//! canonical [`plugin_api::Conversion`] records keyed by
//! `event_conversion_id`.
//!
//! ## The API
//! - Base: the customer's own admin domain (`settings.base_url`, required);
//!   paths `/api/{version}/reports.asmx/{Method}` and
//!   `/api/1/get.asmx/Currencies`.
//! - Auth: the `api_key` parameter, added by the host to the query string
//!   (manifest [`AuthSpec::Query`]). A refused key is HTTP 200 with
//!   `{"d": {"success": false, "message": "..."}}`.
//! - Format: POST with a JSON body answers JSON wrapped as `{"d": {...}}`
//!   (GET answers XML, which we never ask for). Every parameter of a method
//!   must be present, optional ones as `0`/`all`, or ASP.NET answers 500.
//! - `EventConversions`: `start_date`..`end_date` (`YYYY-mm-dd`; the end day
//!   is excluded), offset paging with `start_at_row` (1-based) and
//!   `row_limit`, total in `row_count`.
//! - `EventConversionChanges`: the same rows, changed since `changes_since`,
//!   a *date* (`YYYY-mm-dd`) read in the instance's time zone.
//! - Currencies: `paid`/`received` carry numeric `currency_id`s, resolved once
//!   per session through `Currencies`.
//!
//! ## Streams
//! - `event_conversions`: conversions of the session window (lookback 30
//!   days).
//! - `event_conversion_changes`: conversions changed since the day before
//!   this stream's last watermark (or the window start on a first run), so
//!   restatements of older conversions arrive as new revisions of the same
//!   key whatever the instance's time zone (see [`changes_since`]).
//!
//! Row mapping and dispositions: see [`row`]. A malformed row fails its page:
//! nothing of that page is committed, and the error names the stream, the
//! page's first row, the `event_conversion_id` and the field.

mod config;
pub mod row;

use config::Settings;
use plugin_api::chrono::{DateTime, Duration, NaiveTime, Utc};
use plugin_api::protocol::{AuthSpec, Checkpoint, ErrorKind, PluginKind, RecordKind, StreamSpec};
use plugin_api::serde_json::{json, Value};
use plugin_api::throttle::{RetryAfter, Throttled};
use plugin_api::{Connector, ConversionStatus, Cx, Manifest, PluginError, Request};

/// A session's request sender. CAKE documents no rate limits, but instances
/// sit behind proxies that do answer 429 (usually with `Retry-After`); one
/// that reaches the plugin (the host gave up) is waited out. CAKE also
/// reports failures as HTTP 200 with `"success": false`; the callers read
/// that.
pub type Client = Throttled<RetryAfter>;

pub use row::{parse_currencies, parse_page, Currencies};

/// The connector type. It has no fields: all state lives in the session.
#[derive(Debug)]
pub struct Cake;

/// Conversions by conversion date.
pub const EVENT_CONVERSIONS: &str = "event_conversions";
/// Conversions changed since the last run.
pub const EVENT_CONVERSION_CHANGES: &str = "event_conversion_changes";

impl Connector for Cake {
    fn manifest() -> Manifest {
        Manifest {
            id: "cake".into(),
            name: "CAKE (getcake)".into(),
            version: env!("CARGO_PKG_VERSION").into(),
            kind: PluginKind::Affiliate,
            description: "CAKE network connector: EventConversions with dispositions \
                          (approved/pending/rejected/returned), paid (payout) amounts, and \
                          EventConversionChanges for restatements. api_key auth."
                .into(),
            config_schema: json!({
                "type": "object",
                "additionalProperties": false,
                "required": ["api_key", "base_url"],
                "properties": {
                    "api_key": { "type": "string", "x-secret": true,
                        "description": "CAKE API key (Setup → Permissions / API keys)." },
                    "base_url": { "type": "string",
                        "description": "Your CAKE admin domain, e.g. https://admin.mynetwork.com." },
                    "api_version": { "type": "integer", "minimum": 15, "maximum": 18, "default": 18,
                        "description": "reports.asmx API version in the path." },
                    "row_limit": { "type": "integer", "minimum": 1, "maximum": 100000, "default": 5000,
                        "description": "Rows per request." },
                    "no_disposition_status": { "type": "string", "enum": ["approved", "pending"], "default": "approved",
                        "description": "Status of a conversion without a disposition." }
                }
            }),
            streams: vec![
                StreamSpec {
                    name: EVENT_CONVERSIONS.into(),
                    record: RecordKind::Conversion,
                    primary_key: vec!["external_id".into()],
                    cursor: Some("occurred_at".into()),
                    default_lookback_days: 30,
                },
                StreamSpec {
                    name: EVENT_CONVERSION_CHANGES.into(),
                    record: RecordKind::Conversion,
                    primary_key: vec!["external_id".into()],
                    cursor: Some("status_changed_at".into()),
                    default_lookback_days: 30,
                },
            ],
            allowed_hosts: Vec::new(),
            default_base_url: None,
            auth: Some(AuthSpec::Query {
                name: "api_key".into(),
                value: "api_key".into(),
            }),
            max_window_days: Some(31),
            file_capability: None,
        }
    }

    async fn check(cx: Cx) -> Result<(), PluginError> {
        let mut client = Client::new(&cx, RetryAfter);
        currencies(&cx, &mut client).await?;
        Ok(())
    }

    async fn read(cx: Cx) -> Result<(), PluginError> {
        let settings: Settings = cx.settings()?;
        let undispositioned = match settings.no_disposition_status.as_str() {
            "approved" => ConversionStatus::Approved,
            "pending" => ConversionStatus::Pending,
            other => {
                return Err(PluginError::config(format!(
                    "connector `{}`: settings.no_disposition_status: {other:?} is neither \"approved\" nor \"pending\"",
                    cx.connector_id()
                )))
            }
        };
        let mut client = Client::new(&cx, RetryAfter);
        let currencies = currencies(&cx, &mut client).await?;
        let window = cx.window()?;
        let session_start = cx.now();
        if cx.wants(EVENT_CONVERSIONS) {
            let start = window.from.and_time(NaiveTime::MIN).and_utc();
            let end = (window.to + Duration::days(1))
                .and_time(NaiveTime::MIN)
                .and_utc();
            let mut params = base_params();
            params["start_date"] = json!(window.from.to_string());
            params["end_date"] = json!((window.to + Duration::days(1)).to_string());
            params["event_type"] = json!("all");
            params["event_id"] = json!(0);
            params["channel_id"] = json!(0);
            params["site_offer_contract_id"] = json!(0);
            params["creative_id"] = json!(0);
            params["source_affiliate_tag_id"] = json!(0);
            params["brand_advertiser_tag_id"] = json!(0);
            params["site_offer_tag_id"] = json!(0);
            params["price_format_id"] = json!(0);
            params["source_type"] = json!("all");
            params["payment_percentage_filter"] = json!("both");
            params["disposition_type"] = json!("all");
            params["disposition_id"] = json!(0);
            params["source_affiliate_billing_status"] = json!("all");
            params["brand_advertiser_billing_status"] = json!("all");
            params["test_filter"] = json!("non_tests");
            params["sort_field"] = json!("event_conversion_id");
            params["sort_descending"] = json!("FALSE");
            let key = format!("{}..{}", window.from, window.to);
            read_rows(
                &cx,
                &mut client,
                &settings,
                &currencies,
                undispositioned,
                Stream {
                    name: EVENT_CONVERSIONS,
                    method: "EventConversions",
                    key,
                    start,
                    end,
                },
                params,
            )
            .await?;
        }
        if cx.wants(EVENT_CONVERSION_CHANGES) {
            let since = changes_since(
                cx.checkpoint(EVENT_CONVERSION_CHANGES).map(|c| c.watermark),
                window.from,
            );
            let mut params = base_params();
            params["changes_since"] = json!(since.format("%Y-%m-%d").to_string());
            params["include_new_event_conversions"] = json!("FALSE");
            let key = since.to_string();
            let since = since.and_time(NaiveTime::MIN).and_utc();
            read_rows(
                &cx,
                &mut client,
                &settings,
                &currencies,
                undispositioned,
                Stream {
                    name: EVENT_CONVERSION_CHANGES,
                    method: "EventConversionChanges",
                    key,
                    start: since,
                    end: session_start,
                },
                params,
            )
            .await?;
        }
        Ok(())
    }
}

/// The `changes_since` date of the changes stream: the day before the UTC
/// day of the last run's watermark, else the window's first day.
///
/// CAKE takes a *date* here (`YYYY-mm-dd`) and reads it as midnight in the
/// instance's own time zone, which the plugin does not know. Going back one
/// whole day from the UTC date makes that midnight fall before the watermark
/// for every zone from UTC−12 to UTC+14, so no change is missed; the cost is
/// re-reading up to two days of changes, which are upserts of the same keys.
pub fn changes_since(
    watermark: Option<DateTime<Utc>>,
    window_from: plugin_api::chrono::NaiveDate,
) -> plugin_api::chrono::NaiveDate {
    match watermark {
        Some(w) => (w - Duration::days(1)).date_naive(),
        None => window_from,
    }
}

/// The parameters every reports method takes (ids 0 = all).
fn base_params() -> Value {
    json!({
        "source_affiliate_id": 0,
        "brand_advertiser_id": 0,
        "site_offer_id": 0,
        "campaign_id": 0,
    })
}

/// Maps CAKE's `success: false` answers: a key problem is an auth error.
fn cake_error(what: &str, e: String) -> PluginError {
    let lower = e.to_ascii_lowercase();
    if lower.contains("success=false") && (lower.contains("api key") || lower.contains("api_key")) {
        PluginError::new(ErrorKind::Auth, format!("{what}: {e}"))
    } else if lower.contains("success=false") {
        PluginError::new(ErrorKind::Upstream, format!("{what}: {e}"))
    } else {
        PluginError::bad_response(format!("{what}: {e}"))
    }
}

async fn currencies(cx: &Cx, client: &mut Client) -> Result<Currencies, PluginError> {
    let what = "currencies lookup (get.asmx/Currencies)";
    let resp = client
        .send(
            Request::post(format!("{}/api/1/get.asmx/Currencies", cx.base_url()))
                .json_body(&json!({}))
                .idempotent()
                .label("currencies"),
            what,
        )
        .await?;
    row::parse_currencies(&resp.body).map_err(|e| cake_error(what, e))
}

struct Stream {
    name: &'static str,
    method: &'static str,
    /// What the checkpoint state belongs to (window or changes_since).
    key: String,
    start: DateTime<Utc>,
    /// Watermark once the stream is complete.
    end: DateTime<Utc>,
}

#[allow(clippy::too_many_arguments)]
async fn read_rows(
    cx: &Cx,
    client: &mut Client,
    settings: &Settings,
    currencies: &Currencies,
    undispositioned: ConversionStatus,
    stream: Stream,
    mut params: Value,
) -> Result<(), PluginError> {
    let cp = cx.checkpoint(stream.name);
    let mut watermark = cp
        .map(|c| c.watermark.max(stream.start))
        .unwrap_or(stream.start);
    // Resume at the row after the last committed page of the same run
    // (a completed run is pulled again from its first row).
    let mut next_row = cp
        .filter(|c| {
            c.state.get("key").and_then(Value::as_str) == Some(stream.key.as_str())
                && c.state.get("complete").and_then(Value::as_bool) != Some(true)
        })
        .and_then(|c| c.state.get("next_row").and_then(Value::as_u64))
        .unwrap_or(1);
    let url = format!(
        "{}/api/{}/reports.asmx/{}",
        cx.base_url(),
        settings.api_version,
        stream.method
    );
    loop {
        params["start_at_row"] = json!(next_row);
        params["row_limit"] = json!(settings.row_limit);
        let what = format!("stream `{}` rows from {next_row}", stream.name);
        let resp = client
            .send(
                Request::post(&url)
                    .json_body(&params)
                    .idempotent()
                    .label(format!("{} from row {next_row}", stream.method)),
                &what,
            )
            .await?;
        let (total, records) = row::parse_page(&resp.body, currencies, undispositioned)
            .map_err(|e| cake_error(&what, e))?;
        let n = records.len() as u64;
        for r in records {
            cx.emit(r);
        }
        next_row += n;
        let done = n == 0 || next_row > total;
        if done {
            watermark = watermark.max(stream.end);
        }
        cx.commit(Checkpoint {
            stream: stream.name.into(),
            watermark,
            state: json!({ "key": stream.key, "next_row": next_row, "complete": done }),
        });
        if done {
            break;
        }
    }
    cx.info(
        "stream done",
        &[("stream", &stream.name), ("rows", &(next_row - 1))],
    );
    Ok(())
}

// Generates the C ABI exports. `id` must equal the manifest id.
plugin_api::export_plugin!(id = "cake", connector = Cake);

#[cfg(test)]
mod tests;
