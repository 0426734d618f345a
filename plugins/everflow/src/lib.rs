//! # Everflow connector (Network API)
//!
//! Pulls a network's **raw conversions** (the affiliates' claims) and
//! produces canonical [`plugin_api::Conversion`] records keyed by Everflow's
//! `conversion_id`.
//!
//! ## The API (`/v1`, network family)
//! - Base `https://api.eflow.team`; auth header `X-Eflow-API-Key` (the host
//!   injects it, manifest [`AuthSpec::Header`]). A network key is required:
//!   affiliate or advertiser keys get 403 on `/v1/networks/*`.
//! - `GET /v1/meta/timezones` → `{timezones: [{timezone_id, timezone}]}`: the
//!   report's `timezone_id` is resolved from the configured name (default:
//!   the connector's `timezone`, so the window's days are the connector's;
//!   UTC from a host that sends none) every session, never hard-coded.
//! - Check: the time zones, then one row (`page_size=1`) of today's
//!   conversions: any key family reads `/v1/meta/timezones`, only a network
//!   key the network's reports, so an affiliate or advertiser key fails the
//!   check (HTTP 403, an auth error saying so) instead of the first sync.
//! - `POST /v1/networks/reporting/conversions?page=N&page_size=M` with body
//!   `{from, to, timezone_id, show_conversions, show_events}` →
//!   `{conversions: [...], paging: {page, page_size, total_count}}`. Pages
//!   are 1-based; more follow while `page × page_size < total_count`, with
//!   `page` the page requested. An answer echoing another `paging.page`, an
//!   empty page while more are said to remain, a page with fewer rows than
//!   `total_count` and `page_size` put on it, or an answer without the
//!   `conversions` array is a bad response (the pages before stay
//!   committed; the window is not marked complete).
//!   Only the prior 365 days can be queried: Everflow's 400 for a window
//!   reaching further back becomes an error naming the earliest day (see
//!   [`earliest_day`]); the plugin does not clamp a window (which would
//!   silently leave the older days unread) nor refuse one before Everflow
//!   answers. The manifest declares the limit (`max_history_days`), so the
//!   host starts a scheduled run's re-pull of days already read no earlier
//!   than [`earliest_day`] (C-M1: with `lookback_days` near 365 a one-day
//!   outage failed every scheduled run); unread days older than that, or
//!   a backfill reaching further back, still get the error.
//! - Money is a JSON number in the offer's currency (`currency_id`), not
//!   converted; timestamps are epoch seconds.
//! - Rate limits: per-customer 30-second windows with `X-RateLimit-Remaining`
//!   on every answer and 429s until the window resets; see [`client`].
//!
//! ## Stream `conversions`
//! Conversions whose time falls in the session window (read in the
//! `timezone` setting's zone, by default the connector's). `payout` is the commission, `sale_amount` the sale
//! amount, `transaction_id` (Everflow's click id) the click id, `order_id`
//! and `coupon_code` as sent; UTM fields come from the click's
//! `query_parameters`. Statuses: see [`row`]. Everflow has no lock date and
//! edits status and amounts at any time, so the default lookback re-pulls 90
//! days; a changed row is an upsert of the same key (a new revision).
//!
//! A malformed row fails its page: nothing of that page is committed, and
//! the error names the page, the `conversion_id` and the field. A row
//! without its `payout` or `sale_amount` (null, `""`) is malformed: the
//! reference gives every raw conversion both, and reading one as unknown
//! would erase an amount already stored. Ids are read the same whether sent
//! as `11`, `"11"` or `11.0` (see [`row`]).

pub mod client;
mod config;
pub mod row;

use config::Settings;
use plugin_api::chrono::{DateTime, Duration, NaiveDate, Utc};
use plugin_api::chrono_tz::Tz;
use plugin_api::protocol::{AuthSpec, Checkpoint, PluginKind, RecordKind, StreamSpec, Window};
use plugin_api::sdk::day_start;
use plugin_api::serde_json::{json, Value};
use plugin_api::{Connector, Cx, Manifest, PluginError, Request};

pub use row::parse_page;

/// The connector type. It has no fields: all state lives in the session.
#[derive(Debug)]
pub struct Everflow;

/// The one stream.
pub const CONVERSIONS: &str = "conversions";

impl Connector for Everflow {
    fn manifest() -> Manifest {
        Manifest {
            id: "everflow".into(),
            name: "Everflow (Network API)".into(),
            version: env!("CARGO_PKG_VERSION").into(),
            kind: PluginKind::Affiliate,
            description: "Everflow network connector: raw conversions with status \
                          (approved/pending/rejected/invalid), payout, sale amount, \
                          transaction (click) id and order id. X-Eflow-API-Key auth."
                .into(),
            config_schema: json!({
                "type": "object",
                "additionalProperties": false,
                "required": ["api_key"],
                "properties": {
                    "api_key": { "type": "string", "x-secret": true,
                        "description": "Network API key (Everflow → Control Center → Security → API Keys)." },
                    "page_size": { "type": "integer", "minimum": 1, "maximum": 2000, "default": 2000,
                        "description": "Rows per page." },
                    "timezone": { "type": "string",
                        "description": "Everflow time zone name the window is read in (resolved via /v1/meta/timezones). Default: the connector's timezone, so the window's days are the connector's." },
                    "rate_limit_window_secs": { "type": "integer", "minimum": 1, "maximum": 900, "default": 30,
                        "description": "Length of Everflow's rate-limit window (at most 900 s: a run waits no longer for a rate limit)." },
                    "min_remaining_requests": { "type": "integer", "minimum": 0, "default": 1,
                        "description": "Pause one window when fewer requests than this remain." },
                    "base_url": { "type": "string", "description": "Override the API base URL (tests, proxies)." }
                }
            }),
            streams: vec![StreamSpec {
                name: CONVERSIONS.into(),
                record: RecordKind::Conversion,
                primary_key: vec!["external_id".into()],
                cursor: Some("occurred_at".into()),
                default_lookback_days: 90,
            }],
            allowed_hosts: vec!["api.eflow.team".into()],
            default_base_url: Some("https://api.eflow.team".into()),
            auth: Some(AuthSpec::Header {
                name: "X-Eflow-API-Key".into(),
                value: "api_key".into(),
            }),
            max_window_days: Some(365),
            max_history_days: Some(MAX_AGE_DAYS),
            file_capability: None,
        }
    }

    async fn check(cx: Cx) -> Result<(), PluginError> {
        let settings: Settings = cx.settings()?;
        let mut client = client::client(&cx, 0, settings.rate_limit_window_secs);
        let zone = settings.zone_name(&cx)?;
        let tz = timezone_id(&cx, &mut client, &settings, &zone).await?;
        // Any key family reads `/v1/meta/timezones`; only a network key
        // reads the network's reports (QA20 F8: an affiliate key passed the
        // check and failed the first sync). One row of today's conversions.
        let today = cx.now().date_naive();
        let body = json!({
            "from": format!("{today} 00:00:00"),
            "to": format!("{today} 23:59:59"),
            "timezone_id": tz,
            "show_conversions": true,
            "show_events": false,
        });
        let req = conversions_request(&cx, &body, 1, 1).label("check network key");
        send_network(
            &cx,
            &mut client,
            req,
            "check: network conversions (page_size 1)",
        )
        .await?;
        Ok(())
    }

    async fn read(cx: Cx) -> Result<(), PluginError> {
        let settings: Settings = cx.settings()?;
        if !(1..=2000).contains(&settings.page_size) {
            return Err(PluginError::config(format!(
                "connector `{}`: settings.page_size: Everflow accepts 1..=2000 rows per page",
                cx.connector_id()
            )));
        }
        if !cx.wants(CONVERSIONS) {
            return Ok(());
        }
        let mut client = client::client(
            &cx,
            settings.min_remaining_requests,
            settings.rate_limit_window_secs,
        );
        let zone = settings.zone_name(&cx)?;
        let tz = timezone_id(&cx, &mut client, &settings, &zone).await?;
        // The window's days begin and end in that zone (for the watermark;
        // Everflow itself reads `from`/`to` in it): the connector's zone when
        // Everflow's name is not an IANA one.
        let days_tz = zone.parse().or_else(|_| cx.timezone())?;
        warn_other_days(&cx, days_tz)?;
        read_conversions(&cx, &mut client, &settings, tz, days_tz).await
    }
}

/// An explicit `settings.timezone` naming another zone than the connector's
/// `timezone` (sent by the host) makes the window's days that zone's:
/// says so once per session, as CAKE does for its instance's zone (QA32-C
/// L1: a connector moved to New York kept reading UTC days, silently).
fn warn_other_days(cx: &Cx, days_tz: Tz) -> Result<(), PluginError> {
    if cx.session().timezone.is_none() {
        return Ok(());
    }
    let connector = cx.timezone()?;
    if days_tz != connector {
        cx.warn(
            "Everflow reads the window's days in settings.timezone, not the connector's: a backfill's first and last days are that zone's; remove settings.timezone (the connector's zone is then used) or set the connector's `timezone` to it",
            &[
                ("settings_timezone", &days_tz.name()),
                ("connector_timezone", &connector.name()),
            ],
        );
    }
    Ok(())
}

/// `POST /v1/networks/reporting/conversions?page=&page_size=` with `body`.
fn conversions_request(cx: &Cx, body: &Value, page: u64, page_size: u32) -> Request {
    Request::post(format!(
        "{}/v1/networks/reporting/conversions",
        cx.base_url()
    ))
    .query("page", page)
    .query("page_size", page_size)
    .json_body(body)
    .idempotent()
}

/// Sends a request to a `/v1/networks/*` route: a 403 there is a key of
/// another family (affiliate, advertiser), which the error says.
async fn send_network(
    cx: &Cx,
    client: &mut client::Client,
    req: Request,
    what: &str,
) -> Result<plugin_api::Response, PluginError> {
    let resp = client.send_allowing(req, what, |r| r.status == 403).await?;
    if resp.status == 403 {
        return Err(PluginError::new(
            plugin_api::ErrorKind::Auth,
            format!(
                "connector `{}`: {what}: Everflow refused the key on /v1/networks/* (HTTP 403): \
                 settings.api_key is not a network API key (affiliate and advertiser keys \
                 cannot read the network's conversions); create one under Control Center → \
                 Security → API Keys{}",
                cx.connector_id(),
                plugin_api::sdk::body_suffix(&resp.body, 200)
            ),
        ));
    }
    Ok(resp)
}

/// Resolves the time zone name `zone` ([`Settings::zone_name`]) to
/// Everflow's `timezone_id`.
async fn timezone_id(
    cx: &Cx,
    client: &mut client::Client,
    settings: &Settings,
    zone: &str,
) -> Result<i64, PluginError> {
    let what = "time zones (/v1/meta/timezones)";
    let resp = client
        .send(
            Request::get(format!("{}/v1/meta/timezones", cx.base_url())).label("timezones"),
            what,
        )
        .await?;
    let body: Value = resp.json(what)?;
    let zones = body
        .get("timezones")
        .and_then(Value::as_array)
        .ok_or_else(|| {
            PluginError::bad_response(format!("{what}: field `timezones` is missing"))
        })?;
    zones
        .iter()
        .find(|z| z.get("timezone").and_then(Value::as_str) == Some(zone))
        .and_then(|z| z.get("timezone_id").and_then(Value::as_i64))
        .ok_or_else(|| {
            let whose = if settings.timezone.is_some() {
                "settings.timezone"
            } else {
                "the connector's timezone (settings.timezone unset)"
            };
            PluginError::config(format!(
                "connector `{}`: {whose}: Everflow knows no time zone named {zone:?}; set \
                 settings.timezone to a name /v1/meta/timezones lists",
                cx.connector_id(),
            ))
        })
}

/// How far back Everflow's raw conversions can be queried ("only the prior
/// 365 days"); the manifest's `max_history_days`.
pub const MAX_AGE_DAYS: u32 = 365;

/// The first day a window may start on at `now`: the UTC date 364 days
/// before today, so the window reaches back at most 365 days counting
/// today. Everflow counts in the report's time zone, which may be a day
/// ahead of or behind UTC; starting one day later than the bare UTC limit
/// keeps an allowed window allowed in every zone. The host's rule for
/// `max_history_days` ([`plugin_api::protocol::first_served_day`]), on
/// the UTC date.
pub fn earliest_day(now: DateTime<Utc>) -> NaiveDate {
    plugin_api::protocol::first_served_day(MAX_AGE_DAYS, now.date_naive())
}

/// Explains Everflow's refusal of a window that starts before
/// [`earliest_day`]: its bare 400 becomes a config error saying why and from
/// which day to sync. The platform decides (its clock, its time zone): a
/// window is never refused here before it is asked for, so tests and demos
/// on fixed dates keep working as the years pass.
fn explain_age(cx: &Cx, window: Window, e: PluginError) -> PluginError {
    let earliest = earliest_day(cx.now());
    if window.from >= earliest || e.retryable || e.kind != plugin_api::ErrorKind::Upstream {
        return e;
    }
    PluginError::config(format!(
        "connector `{}`: window {}..{} starts before {earliest}: Everflow keeps raw \
         conversions for only the prior {MAX_AGE_DAYS} days, so days before {earliest} \
         cannot be read; sync from {earliest} or later (Everflow said: {})",
        cx.connector_id(),
        window.from,
        window.to,
        e.message
    ))
}

async fn read_conversions(
    cx: &Cx,
    client: &mut client::Client,
    settings: &Settings,
    tz: i64,
    days_tz: Tz,
) -> Result<(), PluginError> {
    let window = cx.window()?;
    let window_key = format!("{}..{}", window.from, window.to);
    let start = day_start(window.from, days_tz);
    let cp = cx.checkpoint(CONVERSIONS);
    let mut watermark = cp.map(|c| c.watermark.max(start)).unwrap_or(start);
    // Resume after the last committed page of this window (a completed
    // window is pulled again from page 1: that re-pull is the lookback).
    let mut page = cp
        .filter(|c| {
            c.state.get("window").and_then(Value::as_str) == Some(window_key.as_str())
                && c.state.get("complete").and_then(Value::as_bool) != Some(true)
        })
        .and_then(|c| c.state.get("page_done").and_then(Value::as_u64))
        .unwrap_or(0)
        + 1;
    let body = json!({
        "from": format!("{} 00:00:00", window.from),
        "to": format!("{} 23:59:59", window.to),
        "timezone_id": tz,
        // Events (a purchase after a lead, an upsell) are conversions with
        // their own id and payout; without them their commissions are lost.
        "show_conversions": true,
        "show_events": true,
    });
    let mut rows = 0u64;
    loop {
        let what = format!("stream `{CONVERSIONS}` page {page}");
        let req = conversions_request(cx, &body, page, settings.page_size)
            .label(format!("conversions page {page}"));
        let resp = send_network(cx, client, req, &what)
            .await
            .map_err(|e| explain_age(cx, window, e))?;
        let (paging, records) = row::parse_page(&resp.body)
            .map_err(|e| PluginError::bad_response(format!("{what}: {e}")))?;
        // An answer for another page (a proxy or cache ignoring the query
        // string echoes page 1 every time) would be paged without end
        // (QA25 N4).
        if paging.page != page {
            return Err(PluginError::bad_response(format!(
                "{what}: paging.page is {}, not the page requested ({page}): the answer is for another page",
                paging.page
            )));
        }
        // A page size of 0 echoed beside rows still to come cannot be paged
        // by; taking it as "done" would mark the window complete without
        // them (a QA finding).
        if paging.page_size == 0 && paging.total_count > 0 {
            return Err(PluginError::bad_response(format!(
                "{what}: paging.page_size is 0 while paging.total_count is {}: cannot tell which rows are left",
                paging.total_count
            )));
        }
        let more = paging.has_more_after(page);
        // No rows while more are said to remain: the next pages would be as
        // empty, up to the host's request limit (QA25 N4).
        if more && records.is_empty() {
            return Err(PluginError::bad_response(format!(
                "{what}: no rows, yet paging.total_count is {} with paging.page_size {}: more pages said to remain after an empty one",
                paging.total_count, paging.page_size
            )));
        }
        // Fewer rows than `paging` puts on this page: rows were left out of
        // the answer (a truncated page, a changed API), and taking it as it
        // is would mark the window complete without them (QA35d M4: 3 rows
        // stored of a `total_count` of 5, the run `ok`). The pages before
        // stay committed.
        let (got, expected) = (records.len() as u64, paging.rows_on(page));
        if got < expected {
            let first = (page - 1)
                .saturating_mul(paging.page_size)
                .saturating_add(1);
            return Err(PluginError::bad_response(format!(
                "{what}: {got} rows, but paging.total_count {} with paging.page_size {} puts \
                 {expected} on page {page} (rows {first}..={}): rows are missing from the answer",
                paging.total_count,
                paging.page_size,
                first.saturating_add(expected - 1)
            )));
        }
        rows += got;
        for r in records {
            cx.emit(r);
        }
        if !more {
            watermark = watermark.max(day_start(window.to + Duration::days(1), days_tz));
        }
        cx.commit(Checkpoint {
            stream: CONVERSIONS.into(),
            watermark,
            state: json!({ "window": window_key, "page_done": page, "complete": !more }),
            covers: None,
        });
        if !more {
            break;
        }
        page += 1;
    }
    cx.debug(
        "stream done",
        &[("stream", &CONVERSIONS), ("pages", &page), ("rows", &rows)],
    );
    Ok(())
}

// Generates the C ABI exports. `id` must equal the manifest id.
plugin_api::export_plugin!(id = "everflow", connector = Everflow);

#[cfg(test)]
mod tests;
