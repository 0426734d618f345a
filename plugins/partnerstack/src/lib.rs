//! # PartnerStack connector (vendor API v2)
//!
//! Pulls a vendor's partner **rewards** (commissions) and the
//! **transactions** they pay on, producing one canonical
//! [`plugin_api::Conversion`] per reward, keyed by the reward `key`.
//!
//! ## The API (`/api/v2`)
//! - Base `https://api.partnerstack.com/api/v2`; auth HTTP Basic with the
//!   public key as user name and the private key as password (both secret,
//!   injected by the host: manifest [`AuthSpec::Basic`]). Test and
//!   production keys are separate pairs.
//! - `GET /transactions` and `GET /rewards` with `min_created`/`max_created`
//!   (epoch **milliseconds**), `limit` 1..=250 and cursor paging by
//!   `starting_after=<last item key>`; answers
//!   `{"data": {"items": [...], "has_more": bool}, "message", "status"}`,
//!   errors `{"message", "status"}` with the same HTTP status.
//! - Amounts are integer **cents**; timestamps epoch milliseconds.
//! - No rate limits are documented; 429s are waited out (see [`client`]).
//!
//! ## Stream `rewards`
//! Every reward created in the session window. First the window's
//! transactions are read into a lookup (sale amount, currency, order id) for
//! rewards whose embedded transaction carries only a key; then rewards are
//! read page by page, each page committed with the cursor. Vendors review
//! rewards (approve, decline, hold) during the month before the invoice, and
//! the API filters rewards only by creation date, so the default lookback
//! (62 days) re-pulls the current and the previous month; a changed reward is
//! an upsert of the same key. Status mapping: see [`row`].
//!
//! A malformed reward fails its page: nothing of that page is committed, and
//! the error names the page, the reward key and the field.

mod config;
#[allow(dead_code)] // the same file in every affiliate connector; not all read every shape
pub mod row;

use config::Settings;
use plugin_api::chrono::{Duration, NaiveTime};
use plugin_api::protocol::{AuthSpec, Checkpoint, PluginKind, RecordKind, StreamSpec};
use plugin_api::serde_json::{json, Value};
use plugin_api::throttle::{RetryAfter, Throttled};
use plugin_api::{Connector, Cx, Manifest, PluginError, Request};

/// A session's request sender. PartnerStack documents no rate limits, but
/// its API does answer 429 (usually with `Retry-After`); one that reaches
/// the plugin (the host gave up) is waited out. Errors are
/// `{"message", "status"}` bodies with a matching HTTP status.
pub type Client = Throttled<RetryAfter>;

pub use row::{parse_rewards_page, Transactions};

/// The connector type. It has no fields: all state lives in the session.
#[derive(Debug)]
pub struct PartnerStack;

/// The one stream of records.
pub const REWARDS: &str = "rewards";

impl Connector for PartnerStack {
    fn manifest() -> Manifest {
        Manifest {
            id: "partnerstack".into(),
            name: "PartnerStack (vendor API v2)".into(),
            version: env!("CARGO_PKG_VERSION").into(),
            kind: PluginKind::Affiliate,
            description: "PartnerStack vendor connector: partner rewards (commissions, integer \
                          cents) with their review status, sale amounts and order ids from \
                          transactions; starting_after cursor paging; Basic auth."
                .into(),
            config_schema: json!({
                "type": "object",
                "additionalProperties": false,
                "required": ["public_key", "private_key"],
                "properties": {
                    "public_key": { "type": "string", "x-secret": true,
                        "description": "Vendor public key (Basic-auth user name)." },
                    "private_key": { "type": "string", "x-secret": true,
                        "description": "Vendor private key (Basic-auth password)." },
                    "page_size": { "type": "integer", "minimum": 1, "maximum": 250, "default": 250,
                        "description": "Items per page." },
                    "default_currency": { "type": "string", "minLength": 3, "maxLength": 3, "default": "USD",
                        "description": "Currency of a reward that names none." },
                    "base_url": { "type": "string", "description": "Override the API base URL (tests, proxies)." }
                }
            }),
            streams: vec![StreamSpec {
                name: REWARDS.into(),
                record: RecordKind::Conversion,
                primary_key: vec!["external_id".into()],
                cursor: Some("occurred_at".into()),
                default_lookback_days: 62,
            }],
            allowed_hosts: vec!["api.partnerstack.com".into()],
            default_base_url: Some("https://api.partnerstack.com/api/v2".into()),
            auth: Some(AuthSpec::Basic {
                username: "public_key".into(),
                password: "private_key".into(),
            }),
            max_window_days: Some(92),
            file_capability: None,
        }
    }

    async fn check(cx: Cx) -> Result<(), PluginError> {
        let mut client = Client::new(&cx, RetryAfter);
        client
            .send(
                Request::get(format!("{}/rewards", cx.base_url()))
                    .query("limit", 1)
                    .label("check"),
                "check",
            )
            .await?;
        Ok(())
    }

    async fn read(cx: Cx) -> Result<(), PluginError> {
        let settings: Settings = cx.settings()?;
        if !(1..=250).contains(&settings.page_size) {
            return Err(PluginError::config(format!(
                "connector `{}`: settings.page_size: PartnerStack accepts 1..=250 items per page",
                cx.connector_id()
            )));
        }
        let default_currency = settings.default_currency.to_ascii_uppercase();
        if !plugin_api::currency::is_known(&default_currency) {
            return Err(PluginError::config(format!(
                "connector `{}`: settings.default_currency: {default_currency:?} is not an ISO-4217 code",
                cx.connector_id()
            )));
        }
        if !cx.wants(REWARDS) {
            return Ok(());
        }
        let window = cx.window()?;
        let start = window.from.and_time(NaiveTime::MIN).and_utc();
        let end = (window.to + Duration::days(1))
            .and_time(NaiveTime::MIN)
            .and_utc();
        let (min_ms, max_ms) = (start.timestamp_millis(), end.timestamp_millis() - 1);
        let mut client = Client::new(&cx, RetryAfter);

        // 1. The window's transactions, for rewards that only name theirs.
        let mut transactions = Transactions::new();
        let mut after: Option<String> = None;
        let mut page = 1u32;
        loop {
            let what = format!("transactions page {page}");
            let resp = client
                .send(
                    list(
                        &cx,
                        "transactions",
                        min_ms,
                        max_ms,
                        settings.page_size,
                        &after,
                    )
                    .label(what.clone()),
                    &what,
                )
                .await?;
            let body: Value = resp.json(&what)?;
            let (items, has_more) =
                row::page(&body).map_err(|e| PluginError::bad_response(format!("{what}: {e}")))?;
            for (i, t) in items.iter().enumerate() {
                row::add_transaction(t, &mut transactions, &default_currency).map_err(|e| {
                    PluginError::bad_response(format!(
                        "{what}: record {i} (key {}): {e}",
                        row::row_key(t)
                    ))
                })?;
            }
            after = items.last().and_then(|t| row::opt_text(t, "key"));
            if !has_more || after.is_none() {
                break;
            }
            page += 1;
        }

        // 2. Rewards, resuming after the last committed page of this window (a
        // completed window is pulled again from the start).
        let window_key = format!("{}..{}", window.from, window.to);
        let cp = cx.checkpoint(REWARDS);
        let mut watermark = cp.map(|c| c.watermark.max(start)).unwrap_or(start);
        let mut after: Option<String> = cp
            .filter(|c| {
                c.state.get("window").and_then(Value::as_str) == Some(window_key.as_str())
                    && c.state.get("complete").and_then(Value::as_bool) != Some(true)
            })
            .and_then(|c| {
                c.state
                    .get("after")
                    .and_then(Value::as_str)
                    .map(str::to_owned)
            });
        let mut page = 1u32;
        let mut rows = 0usize;
        loop {
            let what = format!("stream `{REWARDS}` page {page}");
            let resp = client
                .send(
                    list(&cx, "rewards", min_ms, max_ms, settings.page_size, &after)
                        .label(what.clone()),
                    &what,
                )
                .await?;
            let (records, has_more, last) =
                row::parse_rewards_page(&resp.body, &transactions, &default_currency)
                    .map_err(|e| PluginError::bad_response(format!("{what}: {e}")))?;
            rows += records.len();
            for r in records {
                cx.emit(r);
            }
            let more = has_more && last.is_some();
            if last.is_some() {
                after = last;
            }
            if !more {
                watermark = watermark.max(end);
            }
            cx.commit(Checkpoint {
                stream: REWARDS.into(),
                watermark,
                state: json!({ "window": window_key, "after": after, "complete": !more }),
            });
            if !more {
                break;
            }
            page += 1;
        }
        cx.info(
            "stream done",
            &[
                ("stream", &REWARDS),
                ("rows", &rows),
                ("transactions", &transactions.len()),
            ],
        );
        Ok(())
    }
}

/// `GET /{resource}?min_created=&max_created=&limit=[&starting_after=]`.
fn list(
    cx: &Cx,
    resource: &str,
    min_ms: i64,
    max_ms: i64,
    limit: u32,
    after: &Option<String>,
) -> Request {
    let mut req = Request::get(format!("{}/{resource}", cx.base_url()))
        .query("min_created", min_ms)
        .query("max_created", max_ms)
        .query("limit", limit);
    if let Some(a) = after {
        req = req.query("starting_after", a);
    }
    req
}

// Generates the C ABI exports. `id` must equal the manifest id.
plugin_api::export_plugin!(id = "partnerstack", connector = PartnerStack);

#[cfg(test)]
mod tests;
