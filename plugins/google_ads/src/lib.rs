//! # Google Ads spend connector
//!
//! Pulls daily ad spend from the Google Ads API with GAQL over
//! `GoogleAdsService.SearchStream` (REST), and maps each row to a canonical
//! [`Spend`](plugin_api::Spend).
//!
//! - **API**: `POST {base}/{api_version}/customers/{customer_id}/googleAds:searchStream`
//!   with `{"query": "<GAQL>"}`; the response is a JSON array of batches
//!   `{results, fieldMask, requestId}`. Default version `v24` (setting `api_version`).
//! - **Auth** (done by the host, from the manifest's [`AuthSpec`]): the OAuth2
//!   refresh-token flow (`client_id`, `client_secret`, `refresh_token`,
//!   token endpoint `https://oauth2.googleapis.com/token`) plus the
//!   `developer-token` header. The plugin adds the non-secret
//!   `login-customer-id` header when a manager account is configured.
//! - **Stream** `spend`: one row per day and campaign, ad group (default) or ad
//!   (setting `level`), `FROM campaign | ad_group | ad_group_ad` by
//!   `segments.date`, one request per `days_per_request` days, one checkpoint
//!   per request. Performance Max campaigns have no ad groups, so at the
//!   `ad_group` and `ad` levels a second query per request adds their cost by
//!   campaign (rows without ad group or ad). Days are in the account's
//!   timezone (Google has no override): currency and timezone are read first
//!   from the `customer` resource.
//! - **Units**: int64 fields arrive as strings (`impressions`, `clicks`,
//!   `costMicros`), doubles as JSON numbers (`conversions`,
//!   `conversionsValue`); fields at their default are left out and read as 0.
//!   An answer the reference does not describe is a bad response, never
//!   "no rows" or "no cost" (the host zeroes stored rows a complete pass no
//!   longer has): a batch without `results` but with another key, a row
//!   without `metrics` or with a metric not selected (a renamed field), and
//!   a request whose two or more rows with clicks all lack `costMicros` (a
//!   lone one is stored at cost 0 with a WARN). See [`rows`].
//!   Cost is converted exactly with [`Money::from_micros`](plugin_api::Money::from_micros).
//! - **Quota**: `RESOURCE_EXHAUSTED` (HTTP 429, or an error element inside the
//!   stream) is waited out with `cx.sleep_for` for Google's `retryDelay`
//!   (or `quota_backoff_secs`) and retried up to `max_quota_retries` times,
//!   then fails as a retryable rate-limit error.
//! - **Lookback**: 30 days by default: Google restates conversions for the
//!   length of the conversion window (30 days by default, up to 90); the
//!   reference recommends max(conversion window, 14), 30 recommended.

mod config;
pub mod errors;
pub mod gaql;
pub mod rows;

pub use config::{Level, Settings};
use plugin_api::chrono::Duration;
use plugin_api::progress::{chunks, Progress};
use plugin_api::protocol::{AuthSpec, PluginKind, RecordKind, StreamSpec};
use plugin_api::serde_json::json;
use plugin_api::{Connector, Cx, ErrorKind, Manifest, PluginError, Record, Request, Response};
use rows::{Account, StreamError};

/// The connector type.
#[derive(Debug)]
pub struct GoogleAds;

/// The one stream.
pub const SPEND: &str = "spend";

impl Connector for GoogleAds {
    fn manifest() -> Manifest {
        Manifest {
            id: "google_ads".into(),
            name: "Google Ads".into(),
            version: env!("CARGO_PKG_VERSION").into(),
            kind: PluginKind::AdNetwork,
            description:
                "Daily spend from the Google Ads API (GAQL over googleAds:searchStream) by \
                          campaign, ad group or ad, in the account's currency and timezone."
                    .into(),
            config_schema: json!({
                "type": "object",
                "additionalProperties": false,
                "required": ["customer_id", "developer_token", "client_id", "client_secret", "refresh_token"],
                "properties": {
                    "customer_id": { "type": "string", "pattern": "^[0-9-]+$",
                        "description": "Client account to report on, e.g. 123-456-7890." },
                    "login_customer_id": { "type": "string", "pattern": "^[0-9-]+$",
                        "description": "Manager (MCC) account the credentials act through; sent as the login-customer-id header." },
                    "developer_token": { "type": "string", "x-secret": true,
                        "description": "Google Ads API developer token (API Center of the manager account)." },
                    "client_id": { "type": "string", "x-secret": true,
                        "description": "OAuth2 client id (treated as a secret so the host injects it)." },
                    "client_secret": { "type": "string", "x-secret": true,
                        "description": "OAuth2 client secret." },
                    "refresh_token": { "type": "string", "x-secret": true,
                        "description": "OAuth2 refresh token with the https://www.googleapis.com/auth/adwords scope." },
                    "api_version": { "type": "string", "pattern": "^v[0-9]+$", "default": "v24",
                        "description": "Google Ads API version." },
                    "level": { "enum": ["campaign", "ad_group", "ad"], "default": "ad_group",
                        "description": "Row granularity." },
                    "days_per_request": { "type": "integer", "minimum": 1, "maximum": 31, "default": 1,
                        "description": "Days per searchStream request; each request is one checkpoint." },
                    "max_quota_retries": { "type": "integer", "minimum": 0, "maximum": 20, "default": 5,
                        "description": "Quota errors waited out and retried before the sync fails (retryable)." },
                    "quota_backoff_secs": { "type": "integer", "minimum": 0, "maximum": 3600, "default": 30,
                        "description": "Wait after a quota error without retryDelay." },
                    "base_url": { "type": "string", "description": "Override the API base URL (tests, proxies)." },
                    "token_url": { "type": "string", "format": "http-url", "description": "Override the OAuth2 token endpoint (tests, proxies)." }
                }
            }),
            streams: vec![StreamSpec {
                name: SPEND.into(),
                record: RecordKind::Spend,
                primary_key: vec![
                    "account_id".into(),
                    "day".into(),
                    "campaign_id".into(),
                    "ad_group_id".into(),
                    "ad_id".into(),
                ],
                cursor: Some("day".into()),
                default_lookback_days: 30,
            }],
            allowed_hosts: vec![
                "googleads.googleapis.com".into(),
                "oauth2.googleapis.com".into(),
            ],
            default_base_url: Some("https://googleads.googleapis.com".into()),
            auth: Some(AuthSpec::All {
                schemes: vec![
                    AuthSpec::Oauth2RefreshToken {
                        token_url: "https://oauth2.googleapis.com/token".into(),
                        client_id: "client_id".into(),
                        client_secret: "client_secret".into(),
                        refresh_token: "refresh_token".into(),
                    },
                    AuthSpec::Header {
                        name: "developer-token".into(),
                        value: "developer_token".into(),
                    },
                ],
            }),
            max_window_days: Some(90),
            max_history_days: None,
            file_capability: None,
        }
    }

    async fn check(cx: Cx) -> Result<(), PluginError> {
        let settings: Settings = cx.settings()?;
        fetch_account(&cx, &settings).await?;
        Ok(())
    }

    async fn read(cx: Cx) -> Result<(), PluginError> {
        let settings: Settings = cx.settings()?;
        if cx.wants(SPEND) {
            read_spend(&cx, &settings).await?;
        }
        Ok(())
    }
}

fn config_err(cx: &Cx, msg: String) -> PluginError {
    PluginError::config(format!("connector `{}`: {msg}", cx.connector_id()))
}

fn stream_url(cx: &Cx, settings: &Settings, customer: &str) -> String {
    format!(
        "{}/{}/customers/{customer}/googleAds:searchStream",
        cx.base_url(),
        settings.api_version
    )
}

/// Sends one GAQL query and returns the successful response, waiting out
/// quota errors (HTTP 429 or an error element inside the stream is checked
/// by the caller through `parse`).
async fn search_stream<T>(
    cx: &Cx,
    settings: &Settings,
    query: &str,
    what: &str,
    mut parse: impl FnMut(&Response) -> Result<T, StreamError>,
) -> Result<T, PluginError> {
    let customer = settings.customer_digits().map_err(|e| config_err(cx, e))?;
    let login = settings.login_digits().map_err(|e| config_err(cx, e))?;
    let mut attempt = 0u32;
    loop {
        let mut req = Request::post(stream_url(cx, settings, &customer))
            .json_body(&json!({ "query": query }))
            .idempotent()
            .label(what.to_owned());
        if let Some(l) = &login {
            req = req.header("login-customer-id", l.clone());
        }
        let quota = match cx.http(req).await {
            Ok(resp) if (200..300).contains(&resp.status) => match parse(&resp) {
                Ok(v) => return Ok(v),
                Err(StreamError::Malformed(m)) => {
                    return Err(PluginError::bad_response(format!(
                        "connector `{}`: stream `{SPEND}` {what}: {m}",
                        cx.connector_id()
                    )))
                }
                Err(StreamError::Upstream(e)) => {
                    match errors::classify_error(cx.connector_id(), resp.status, &e) {
                        errors::Classified::Quota {
                            retry_delay_secs,
                            message,
                        } => (retry_delay_secs, message),
                        errors::Classified::Fatal(e) => return Err(with_what(e, what)),
                    }
                }
            },
            Ok(resp) => match errors::classify(cx.connector_id(), resp.status, &resp.body) {
                errors::Classified::Quota {
                    retry_delay_secs,
                    message,
                } => (retry_delay_secs, message),
                errors::Classified::Fatal(e) => return Err(with_what(e, what)),
            },
            // The host gave up on its own 429 retries: wait as well.
            Err(e) if e.kind == ErrorKind::RateLimited => (None, e.message),
            Err(e) => return Err(with_what(e, what)),
        };
        let (delay, message) = quota;
        if attempt >= settings.max_quota_retries {
            return Err(PluginError::retryable(
                ErrorKind::RateLimited,
                format!(
                    "connector `{}`: stream `{SPEND}` {what}: Google Ads quota still exhausted after {attempt} retries ({message})",
                    cx.connector_id()
                ),
            ));
        }
        attempt += 1;
        let secs = delay.unwrap_or(u64::from(settings.quota_backoff_secs));
        // A wait over the host's timer cap is slept in turns (`sleep_for`):
        // the log says so, beside the total (QA25 N5).
        cx.warn(
            "quota exhausted, waiting in turns of at most 15 min (the host's timer cap)",
            &[
                ("request", &what),
                ("wait_secs", &secs),
                ("attempt", &attempt),
            ],
        );
        wait_secs(cx, secs).await?;
    }
}

/// Waits `secs` seconds of the host's clock (capped at a day).
async fn wait_secs(cx: &Cx, secs: u64) -> Result<(), PluginError> {
    let secs = i64::try_from(secs.min(86_400)).unwrap_or(86_400);
    cx.sleep_for(Duration::seconds(secs)).await
}

fn with_what(e: PluginError, what: &str) -> PluginError {
    PluginError {
        message: format!("{} (stream `{SPEND}` {what})", e.message),
        ..e
    }
}

/// Reads currency and timezone from the customer resource.
async fn fetch_account(cx: &Cx, settings: &Settings) -> Result<Account, PluginError> {
    let customer = settings.customer_digits().map_err(|e| config_err(cx, e))?;
    search_stream(cx, settings, gaql::CUSTOMER, "customer query", |resp| {
        rows::parse_customer(&resp.body, &customer)
    })
    .await
}

async fn read_spend(cx: &Cx, settings: &Settings) -> Result<(), PluginError> {
    let window = cx.window()?;
    let account = fetch_account(cx, settings).await?;
    let mut progress = Progress::resume(cx, SPEND, window).covering(&account.customer_id);
    let start = progress.next_day(window);
    let mut requests = 0u32;
    let mut rows = 0usize;
    for (from, to) in chunks(start, window.to, settings.days_per_request) {
        requests += 1;
        let what = format!("request {requests} (days {from}..{to})");
        let query = gaql::spend(settings.level, from, to);
        let (mut spend, mut cost) = search_stream(cx, settings, &query, &what, |resp| {
            let mut out = Vec::new();
            let cost = rows::parse_stream(&resp.body, &account, settings.level, &mut out)?;
            Ok((out, cost))
        })
        .await?;
        if settings.level != Level::Campaign {
            // Performance Max has no ad groups: its cost is only reported by
            // campaign, so it is read separately (same days, same checkpoint).
            let what = format!("request {requests} (Performance Max, days {from}..{to})");
            let (pmax, pmax_cost) = search_stream(
                cx,
                settings,
                &gaql::performance_max(from, to),
                &what,
                |resp| {
                    let mut out = Vec::new();
                    let cost = rows::parse_stream(&resp.body, &account, Level::Campaign, &mut out)?;
                    Ok((out, cost))
                },
            )
            .await?;
            spend.extend(pmax);
            cost.add(pmax_cost);
        }
        check_cost(cx, &what, &cost)?;
        rows += spend.len();
        for s in spend {
            if s.day < from || s.day > to {
                return Err(PluginError::bad_response(format!(
                    "connector `{}`: stream `{SPEND}` {what}: row for campaign {} has day {} outside the requested days",
                    cx.connector_id(),
                    s.campaign_id,
                    s.day
                )));
            }
            cx.emit(Record::Spend(s));
        }
        progress.finish_through(cx, to);
    }
    cx.debug(
        "stream done",
        &[
            ("stream", &SPEND),
            ("requests", &requests),
            ("rows", &rows),
            ("currency", &account.currency),
            ("timezone", &account.timezone),
        ],
    );
    Ok(())
}

/// Refuses a request's answers whose rows with clicks all lack
/// `metrics.costMicros` (two or more: QA35d M4, a renamed or dropped field
/// read as spend 0), and warns about a lone one (a real zero cost is left
/// out by proto3 too, so it cannot be told apart).
fn check_cost(cx: &Cx, what: &str, cost: &rows::CostCheck) -> Result<(), PluginError> {
    let example = cost.example.as_deref().unwrap_or("");
    if cost.no_cost_anywhere() {
        return Err(PluginError::bad_response(format!(
            "connector `{}`: stream `{SPEND}` {what}: none of the {} rows with clicks has `metrics.costMicros` (first: {example}): Google leaves out a zero cost, but not on every row with clicks, so the answer's shape changed; nothing of these days is stored",
            cx.connector_id(),
            cost.clicked
        )));
    }
    if cost.lone_row_without_cost() {
        cx.warn(
            "the only row with clicks has no `metrics.costMicros`: stored with spend 0 (Google leaves out a zero cost; if the account had spend that day, the API's answer changed)",
            &[("request", &what), ("row", &example)],
        );
    }
    Ok(())
}

plugin_api::export_plugin!(id = "google_ads", connector = GoogleAds);

#[cfg(test)]
mod tests;
