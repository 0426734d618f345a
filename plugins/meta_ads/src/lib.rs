//! # Meta Ads spend connector
//!
//! Pulls daily ad spend from the Meta Marketing API (ad account insights) and
//! maps each row to a canonical [`Spend`](plugin_api::Spend).
//!
//! - **API**: Graph API `{base}/{api_version}/act_{ad_account_id}/insights`
//!   with `level`, `fields`, `time_range={"since","until"}`,
//!   `time_increment=1` and `use_unified_attribution_setting=true` (actions
//!   counted under each ad set's own attribution setting, as Ads Manager
//!   does) unless `action_attribution_windows` are configured. Default version `v22.0` (setting `api_version`).
//! - **Auth** (done by the host, from the manifest's [`AuthSpec`]): the secret
//!   `access_token` (system-user or long-lived user token) as the
//!   `access_token` query parameter.
//! - **Stream** `spend`: one row per day and campaign, ad set (default) or ad
//!   (setting `level`). Every request filters on all documented
//!   `<level>.effective_status` values: Meta leaves archived and deleted
//!   objects out otherwise, and their stored spend would be zeroed on the
//!   next re-pull. `clicks` is Meta's all-clicks field unless
//!   `clicks_metric = "inline_link_clicks"`. Days are in the ad account's
//!   timezone (`timezone_name`), read first with the currency from
//!   `act_{id}`.
//! - **Reports**: short windows are read directly (`GET .../insights`); longer
//!   ones through async report runs: `POST .../insights` → `report_run_id`,
//!   poll `async_status` / `async_percent_completion` with `cx.sleep_for`
//!   between polls, then read `/{report_run_id}/insights`. A failed run of
//!   several days is split in halves and retried. One run (or request) per
//!   `days_per_request` days, committed when fully read.
//! - **Paging**: cursor paging; `paging.next` says whether there is another
//!   page, `paging.cursors.after` is sent back as `after`. The `next` URL
//!   itself is never followed: it carries the access token, which a plugin
//!   must never see. A page of rows without `paging`, or without `next` but
//!   with keys Graph does not send, is a bad response; a full page without
//!   `next` is followed once more with its `cursors.after` (a real last page
//!   then answers no rows), never taken for the end of the pull (the host
//!   zeroes the stored rows a complete pass did not deliver; QA36 A-H1). A
//!   key given again on a later page with other figures is a WARN. A report
//!   run is read only once it says `Job Completed` at 100 %.
//! - **Units**: every metric is a string in the account's currency (major
//!   units). `actions` / `action_values` give conversions and value for the
//!   one configured `conversion_action_type` (never a sum of overlapping
//!   purchase types). A metric left out is 0; one sent as null, `""`, `"-"`
//!   or not a plain number fails the page naming row and field (see
//!   [`rows`]).
//! - **Throttling**: error codes 4, 17, 32, 613 and 80000-80014 (by code, not
//!   HTTP status: an `error` object in a 2xx answer counts too) are waited
//!   out with a doubling back-off; the usage headers
//!   (`x-business-use-case-usage`, `x-app-usage`, `x-ad-account-usage`,
//!   `x-fb-ads-insights-throttle`) slow the connector down before the limit.
//! - **Lookback**: 28 days by default (Meta freezes insights after 28 days).

mod config;
pub mod graph;
pub mod rows;

pub use config::{ClicksMetric, Level, ReportMode, Settings};
use plugin_api::chrono::Duration;
use plugin_api::progress::{chunks, Progress};
use plugin_api::protocol::{AuthSpec, PluginKind, RecordKind, StreamSpec, Window};
use plugin_api::rust_decimal::Decimal;
use plugin_api::serde_json::{json, Value};
use plugin_api::Spend;
use plugin_api::{Connector, Cx, ErrorKind, Manifest, PluginError, Record, Request, Response};
use rows::Account;
use std::collections::{HashMap, VecDeque};

/// The connector type.
#[derive(Debug)]
pub struct MetaAds;

/// The one stream.
pub const SPEND: &str = "spend";
/// How far back Meta serves insights (the manifest's `max_history_days`):
/// 37 months, else a 400; 1123 days, as Airbyte's connector counts them.
pub const MAX_HISTORY_DAYS: u32 = 1123;
/// Least seconds between two "waiting for report run" lines.
const WAIT_LOG_EVERY_SECS: i64 = 10;

impl Connector for MetaAds {
    fn manifest() -> Manifest {
        Manifest {
            id: "meta_ads".into(),
            name: "Meta Ads".into(),
            version: env!("CARGO_PKG_VERSION").into(),
            kind: PluginKind::AdNetwork,
            description: "Daily spend from Meta (Facebook, Instagram) ad account insights by campaign, \
                          ad set or ad, with async report runs for long windows and throttling by usage headers."
                .into(),
            config_schema: json!({
                "type": "object",
                "additionalProperties": false,
                "required": ["ad_account_id", "access_token"],
                "properties": {
                    "ad_account_id": { "type": "string", "pattern": "^(act_)?[0-9]+$",
                        "description": "Ad account id, e.g. act_1234567890." },
                    "access_token": { "type": "string", "x-secret": true,
                        "description": "System-user or long-lived user access token with ads_read." },
                    "api_version": { "type": "string", "pattern": "^v[0-9]+\\.[0-9]+$", "default": "v22.0",
                        "description": "Graph API version." },
                    "level": { "enum": ["campaign", "adset", "ad"], "default": "adset",
                        "description": "Row granularity." },
                    "conversion_action_type": { "type": "string", "default": "omni_purchase",
                        "description": "The one action_type counted as conversions and value; empty for none." },
                    "clicks_metric": { "enum": ["clicks", "inline_link_clicks"], "default": "clicks",
                        "description": "Insights field stored as clicks: clicks (all clicks: links, likes, expands, profile...) or inline_link_clicks (link clicks, like Google's and TikTok's clicks)." },
                    "action_attribution_windows": { "type": "array", "items": { "enum": config::WINDOWS },
                        "maxItems": 2,
                        "description": "Attribution windows to request and add up, e.g. [\"7d_click\", \"1d_view\"]: at most one click and one view window, or dda / default alone. Empty: each ad set's own setting." },
                    "report_mode": { "enum": ["auto", "sync", "async"], "default": "auto",
                        "description": "Direct reads, async report runs, or async only for windows longer than sync_max_days." },
                    "sync_max_days": { "type": "integer", "minimum": 1, "maximum": 90, "default": 7,
                        "description": "In auto mode, windows of at most this many days are read directly." },
                    "days_per_request": { "type": "integer", "minimum": 1, "maximum": 90, "default": 7,
                        "description": "Days per request or report run; each is committed when read." },
                    "page_size": { "type": "integer", "minimum": 1, "maximum": 5000, "default": 500,
                        "description": "Rows per page (limit)." },
                    "poll_interval_secs": { "type": "integer", "minimum": 0, "maximum": 600, "default": 10,
                        "description": "Wait between polls of an async report run." },
                    "job_timeout_secs": { "type": "integer", "minimum": 1, "maximum": 86400, "default": 3600,
                        "description": "Give up on a report run (retryable) after this long." },
                    "slow_down_at_pct": { "type": "integer", "minimum": 1, "maximum": 100, "default": 75,
                        "description": "Usage percentage at which the connector starts pausing." },
                    "max_pause_secs": { "type": "integer", "minimum": 0, "maximum": 3600, "default": 300,
                        "description": "Pause at 100 % usage (scaled down linearly from slow_down_at_pct)." },
                    "throttle_backoff_secs": { "type": "integer", "minimum": 0, "maximum": 3600, "default": 60,
                        "description": "First wait after a throttling error; doubled on each further one." },
                    "max_throttle_retries": { "type": "integer", "minimum": 0, "maximum": 20, "default": 5,
                        "description": "Throttling errors waited out per request before the sync fails (retryable)." },
                    "base_url": { "type": "string", "description": "Override the API base URL (tests, proxies)." }
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
                default_lookback_days: 28,
            }],
            allowed_hosts: vec!["graph.facebook.com".into()],
            default_base_url: Some("https://graph.facebook.com".into()),
            auth: Some(AuthSpec::Query {
                name: "access_token".into(),
                value: "access_token".into(),
            }),
            max_window_days: Some(90),
            max_history_days: Some(MAX_HISTORY_DAYS),
            file_capability: None,
        }
    }

    async fn check(cx: Cx) -> Result<(), PluginError> {
        let settings = settings(&cx)?;
        fetch_account(&cx, &settings).await?;
        Ok(())
    }

    async fn read(cx: Cx) -> Result<(), PluginError> {
        let settings = settings(&cx)?;
        if cx.wants(SPEND) {
            read_spend(&cx, &settings).await?;
        }
        Ok(())
    }
}

/// The settings, with the attribution windows checked.
fn settings(cx: &Cx) -> Result<Settings, PluginError> {
    let settings: Settings = cx.settings()?;
    settings
        .check_windows()
        .map_err(|e| PluginError::config(format!("connector `{}`: {e}", cx.connector_id())))?;
    Ok(settings)
}

fn account_digits(cx: &Cx, settings: &Settings) -> Result<String, PluginError> {
    settings
        .account_digits()
        .map_err(|e| PluginError::config(format!("connector `{}`: {e}", cx.connector_id())))
}

fn api(cx: &Cx, settings: &Settings) -> String {
    format!("{}/{}", cx.base_url(), settings.api_version)
}

fn with_what(e: PluginError, what: &str) -> PluginError {
    PluginError {
        message: format!("{} (stream `{SPEND}` {what})", e.message),
        ..e
    }
}

/// Waits `secs` seconds of the host's clock (capped at a day).
async fn sleep_secs(cx: &Cx, secs: u64) -> Result<(), PluginError> {
    let secs = i64::try_from(secs.min(86_400)).unwrap_or(86_400);
    cx.sleep_for(Duration::seconds(secs)).await
}

/// Sends a request, pausing when usage headers run high and waiting out
/// throttling errors; returns the first successful response.
async fn send(
    cx: &Cx,
    settings: &Settings,
    req: Request,
    what: &str,
) -> Result<Response, PluginError> {
    let mut attempt = 0u32;
    loop {
        let throttled = match cx.http(req.clone()).await {
            Ok(resp) => {
                let usage = graph::usage(&resp);
                let pause =
                    graph::pause_secs(usage, settings.slow_down_at_pct, settings.max_pause_secs);
                if pause > 0 {
                    cx.info(
                        "usage high, slowing down",
                        &[
                            ("request", &what),
                            ("usage_pct", &usage.max_pct),
                            ("pause_secs", &pause),
                        ],
                    );
                    sleep_secs(cx, pause).await?;
                }
                if (200..300).contains(&resp.status) && !graph::carries_error(&resp.body) {
                    return Ok(resp);
                }
                match graph::classify(cx.connector_id(), &resp) {
                    graph::Classified::Throttled(m) => m,
                    graph::Classified::Fatal(e) => return Err(with_what(e, what)),
                }
            }
            Err(e) if e.kind == ErrorKind::RateLimited => e.message,
            Err(e) => return Err(with_what(e, what)),
        };
        if attempt >= settings.max_throttle_retries {
            return Err(PluginError::retryable(
                ErrorKind::RateLimited,
                format!(
                    "connector `{}`: stream `{SPEND}` {what}: still throttled after {attempt} retries ({throttled})",
                    cx.connector_id()
                ),
            ));
        }
        let backoff = u64::from(settings.throttle_backoff_secs) << attempt.min(16);
        attempt += 1;
        cx.warn(
            "throttled, backing off",
            &[
                ("request", &what),
                ("wait_secs", &backoff),
                ("attempt", &attempt),
                ("error", &throttled),
            ],
        );
        sleep_secs(cx, backoff.max(1)).await?;
    }
}

/// Reads the account's currency and timezone.
async fn fetch_account(cx: &Cx, settings: &Settings) -> Result<Account, PluginError> {
    let id = account_digits(cx, settings)?;
    let req = Request::get(format!("{}/act_{id}", api(cx, settings)))
        .query("fields", "account_id,name,currency,timezone_name")
        .label("ad account");
    let resp = send(cx, settings, req, "ad account").await?;
    rows::parse_account(&resp.body, &id).map_err(|e| {
        PluginError::bad_response(format!(
            "connector `{}`: ad account act_{id}: {e}",
            cx.connector_id()
        ))
    })
}

/// The insights fields asked for: ids and names of the level, the metrics
/// read (the one `clicks_metric` field), and the day.
fn fields(level: Level, clicks: ClicksMetric) -> String {
    let ids = match level {
        Level::Campaign => "campaign_id,campaign_name",
        Level::Adset => "campaign_id,campaign_name,adset_id,adset_name",
        Level::Ad => "campaign_id,campaign_name,adset_id,adset_name,ad_id,ad_name",
    };
    format!(
        "account_id,account_currency,{ids},impressions,{},spend,actions,action_values,date_start,date_stop",
        clicks.field()
    )
}

/// `filtering` on every documented effective status of the level's object:
/// without it Meta leaves archived and deleted campaigns, ad sets and ads
/// out of the insights, and the host would zero their stored spend on the
/// next complete re-pull of their days.
fn all_statuses_filter(level: Level) -> String {
    json!([{
        "field": format!("{}.effective_status", level.as_str()),
        "operator": "IN",
        "value": level.effective_statuses(),
    }])
    .to_string()
}

/// The report parameters shared by direct reads and report runs.
fn report_params(settings: &Settings, from: &str, to: &str) -> Vec<(&'static str, String)> {
    let mut p = vec![
        ("level", settings.level.as_str().to_owned()),
        ("fields", fields(settings.level, settings.clicks_metric)),
        ("filtering", all_statuses_filter(settings.level)),
        (
            "time_range",
            json!({ "since": from, "until": to }).to_string(),
        ),
        ("time_increment", "1".to_owned()),
    ];
    if settings.action_attribution_windows.is_empty() {
        // Without it Meta counts actions under other windows than the ad
        // sets' own attribution settings (what Ads Manager shows).
        p.push(("use_unified_attribution_setting", "true".to_owned()));
    } else {
        p.push((
            "action_attribution_windows",
            json!(settings.action_attribution_windows).to_string(),
        ));
    }
    p
}

/// How reading one chunk of days ended.
enum ChunkEnd {
    /// All pages read (the caller commits the days).
    Done,
    /// The report run failed before any row was read.
    JobFailed(String),
}

/// A row's figures, to tell a key given again with other figures from a
/// harmless repeat (a page boundary shifted by a new row).
#[derive(Debug, PartialEq, Eq)]
struct Figures {
    impressions: u64,
    clicks: u64,
    spend: Decimal,
    conversions: Option<Decimal>,
    value: Option<Decimal>,
}

impl Figures {
    fn of(s: &Spend) -> Figures {
        Figures {
            impressions: s.impressions,
            clicks: s.clicks,
            spend: s.spend.amount,
            conversions: s.platform_conversions,
            value: s.platform_conversion_value.as_ref().map(|v| v.amount),
        }
    }
}

struct Chunk<'a> {
    cx: &'a Cx,
    settings: &'a Settings,
    account: &'a Account,
    progress: &'a mut Progress,
    from: plugin_api::chrono::NaiveDate,
    to: plugin_api::chrono::NaiveDate,
    label: String,
}

impl Chunk<'_> {
    /// Reads every page from `base` (a URL with its fixed query), following
    /// `after` cursors, committing after each page.
    async fn read_pages(&mut self, base: Request) -> Result<(), PluginError> {
        let cx = self.cx;
        let mut after: Option<String> = None;
        let mut page = 1u32;
        // The figures of every key of the pull's earlier pages.
        let mut seen: HashMap<String, Figures> = HashMap::new();
        loop {
            let what = format!("{} page {page}", self.label);
            let mut req = base.clone().label(what.clone());
            if let Some(a) = &after {
                req = req.query("after", a);
            }
            let resp = send(cx, self.settings, req, &what).await?;
            let parsed = rows::parse_page(
                &resp.body,
                self.account,
                self.settings.level,
                rows::Counted {
                    clicks: self.settings.clicks_metric,
                    action_type: &self.settings.conversion_action_type,
                    windows: &self.settings.action_attribution_windows,
                },
            )
            .map_err(|m| {
                PluginError::bad_response(format!(
                    "connector `{}`: stream `{SPEND}` {what}: {m}",
                    cx.connector_id()
                ))
            })?;
            if let Some(first) = parsed.window_gaps.first() {
                cx.warn(
                    "the counted action has none of the requested attribution windows: its conversions and value are counted 0 (Meta leaves out a window without a figure; if the action had conversions under them, its answer changed)",
                    &[
                        ("stream", &SPEND as &dyn std::fmt::Display),
                        ("page", &what),
                        ("rows", &parsed.window_gaps.len()),
                        ("first", first),
                    ],
                );
            }
            let rows = parsed.spend.len();
            let mut this_page = Vec::with_capacity(rows);
            for s in parsed.spend {
                if s.day < self.from || s.day > self.to {
                    return Err(PluginError::bad_response(format!(
                        "connector `{}`: stream `{SPEND}` {what}: row for campaign {} has day {} outside the requested days",
                        cx.connector_id(),
                        s.campaign_id,
                        s.day
                    )));
                }
                let key = s.key();
                let figures = Figures::of(&s);
                if seen.get(&key).is_some_and(|f| *f != figures) {
                    // Which figure is true is unknown; the later one is
                    // stored, as the host does within one page (QA36 A-M6).
                    cx.warn(
                        "the pull holds this key twice with different figures (on an earlier page and on this one); the later one is stored",
                        &[("stream", &SPEND as &dyn std::fmt::Display), ("page", &what), ("key", &key)],
                    );
                }
                this_page.push((key, figures));
                cx.emit(Record::Spend(s));
            }
            // Keys within one page are the host's to check.
            seen.extend(this_page);
            // A page without `next` is the last one, unless it is full: Graph
            // leaves `next` out of the last page, and a full last page cannot
            // be told from one whose `next` was dropped. Asked once more, a
            // real last page answers no rows (QA36 A-H1: the rest of the
            // pull was never asked for and the host zeroed it).
            let next = match (parsed.after, parsed.last_cursor) {
                (Some(a), _) => Some(a),
                (None, last) if rows >= self.settings.page_size as usize => match last {
                    Some(a) => {
                        cx.debug(
                            "a full page without `paging.next`: asking once more with its cursor",
                            &[("stream", &SPEND as &dyn std::fmt::Display), ("page", &what)],
                        );
                        Some(a)
                    }
                    None => {
                        return Err(PluginError::bad_response(format!(
                            "connector `{}`: stream `{SPEND}` {what}: a full page ({rows} rows, `limit` {}) without `paging.next` or `paging.cursors.after`: Graph sends `next` while more pages follow, and the cursors with every page of rows; this page cannot be told from the last (the answer's shape changed; the pages before it stay stored)",
                            cx.connector_id(),
                            self.settings.page_size
                        )))
                    }
                },
                _ => None,
            };
            match next {
                Some(a) if after.as_deref() == Some(a.as_str()) => {
                    return Err(PluginError::bad_response(format!(
                        "connector `{}`: stream `{SPEND}` {what}: field `paging.cursors.after` repeats the previous cursor {a:?}; stopping instead of looping",
                        cx.connector_id()
                    )))
                }
                Some(a) => {
                    // Records so far are safe; the days finish with the last page.
                    self.progress.commit(cx);
                    after = Some(a);
                    page += 1;
                }
                None => return Ok(()),
            }
        }
    }

    async fn read_sync(&mut self, account_id: &str) -> Result<ChunkEnd, PluginError> {
        let (from, to) = (self.from.to_string(), self.to.to_string());
        let mut req = Request::get(format!(
            "{}/act_{account_id}/insights",
            api(self.cx, self.settings)
        ));
        for (k, v) in report_params(self.settings, &from, &to) {
            req = req.query(k, v);
        }
        req = req.query("limit", self.settings.page_size);
        self.read_pages(req).await?;
        Ok(ChunkEnd::Done)
    }

    async fn read_async(&mut self, account_id: &str) -> Result<ChunkEnd, PluginError> {
        let cx = self.cx;
        let settings = self.settings;
        let (from, to) = (self.from.to_string(), self.to.to_string());
        let params = report_params(settings, &from, &to);
        let pairs: Vec<(&str, &str)> = params.iter().map(|(k, v)| (*k, v.as_str())).collect();
        let what = format!("{} report run", self.label);
        let create = Request::post(format!("{}/act_{account_id}/insights", api(cx, settings)))
            .form_body(&pairs)
            // Creating a report run only reads; a duplicate run is harmless.
            .idempotent()
            .label(what.clone());
        let resp = send(cx, settings, create, &what).await?;
        let created: Value = resp.json(&format!(
            "connector `{}`: stream `{SPEND}` {what}",
            cx.connector_id()
        ))?;
        let run_id = created
            .get("report_run_id")
            .and_then(|v| {
                v.as_str()
                    .map(str::to_owned)
                    .or_else(|| v.as_u64().map(|n| n.to_string()))
            })
            .ok_or_else(|| {
                PluginError::bad_response(format!(
                    "connector `{}`: stream `{SPEND}` {what}: field `report_run_id` is missing",
                    cx.connector_id()
                ))
            })?;
        // Fresh clock for the deadline (see `sleep_secs`).
        cx.sleep_until(cx.now()).await?;
        let deadline = cx.now() + Duration::seconds(i64::from(settings.job_timeout_secs));
        let mut polls = 0u32;
        let mut last_wait_log = None;
        let mut warned_short = false;
        loop {
            polls += 1;
            let poll_what = format!("{what} {run_id} poll {polls}");
            let req = Request::get(format!("{}/{run_id}", api(cx, settings)))
                .query("fields", "async_status,async_percent_completion")
                .label(poll_what.clone());
            let resp = send(cx, settings, req, &poll_what)
                .await
                .map_err(|e| run_vanished(e, &run_id))?;
            let status: Value = resp.json(&format!(
                "connector `{}`: stream `{SPEND}` {poll_what}",
                cx.connector_id()
            ))?;
            let state = status
                .get("async_status")
                .and_then(Value::as_str)
                .unwrap_or("")
                .to_owned();
            let percent = status.get("async_percent_completion");
            let pct = percent.map(|v| v.to_string()).unwrap_or_default();
            match state.as_str() {
                // Meta reports 100 with a completed run: below it, the run's
                // rows may be short, and read as complete the host would
                // zero the rest (QA36 A-M1). Polled again until it says 100
                // or the run times out.
                "Job Completed" => match percent.and_then(percent_value) {
                    Some(p) if p >= Decimal::ONE_HUNDRED => break,
                    Some(_) => {
                        if !warned_short {
                            warned_short = true;
                            cx.warn(
                                "report run says `Job Completed` below 100 %: not read as complete, polling again",
                                &[("stream", &SPEND as &dyn std::fmt::Display), ("report_run", &run_id), ("percent_complete", &pct)],
                            );
                        }
                    }
                    None => {
                        return Err(PluginError::bad_response(format!(
                            "connector `{}`: stream `{SPEND}` {poll_what}: `Job Completed` without a number in `async_percent_completion` (got {}): it was asked for, and Meta reports 100 when a run is complete; the run's rows are not read",
                            cx.connector_id(),
                            if pct.is_empty() { "nothing" } else { pct.as_str() }
                        )))
                    }
                },
                "Job Failed" | "Job Skipped" => {
                    return Ok(ChunkEnd::JobFailed(format!(
                        "report run {run_id} ended with `{state}`"
                    )))
                }
                "Job Not Started" | "Job Started" | "Job Running" => {}
                other => {
                    return Err(PluginError::bad_response(format!(
                        "connector `{}`: stream `{SPEND}` {poll_what}: field `async_status` has unknown value {other:?}",
                        cx.connector_id()
                    )))
                }
            }
            if cx.now() >= deadline {
                let short = if state == "Job Completed" {
                    " (a completed run says 100 %: not read as complete)"
                } else {
                    ""
                };
                return Err(PluginError::retryable(
                    ErrorKind::Upstream,
                    format!(
                        "connector `{}`: stream `{SPEND}` {what}: report run {run_id} not done after {} s ({state}, {pct} %){short}",
                        cx.connector_id(),
                        settings.job_timeout_secs
                    ),
                ));
            }
            // One line per wait, at most every WAIT_LOG_EVERY_SECS, so a
            // run that takes minutes is not silent (QA: ~20 s without a
            // line at poll_interval_secs = 10) and a tight poll loop does
            // not flood the log.
            if last_wait_log.is_none_or(|t| cx.now() - t >= Duration::seconds(WAIT_LOG_EVERY_SECS))
            {
                last_wait_log = Some(cx.now());
                let days = format!("{from}..{to}");
                let mut fields: Vec<(&str, &dyn std::fmt::Display)> = vec![
                    ("stream", &SPEND),
                    ("report_run", &run_id),
                    ("days", &days),
                    ("status", &state),
                ];
                // Sent by Meta with every status; absent only from fakes.
                if !pct.is_empty() {
                    fields.push(("percent_complete", &pct));
                }
                fields.push(("polls", &polls));
                cx.info("waiting for report run", &fields);
            }
            sleep_secs(cx, u64::from(settings.poll_interval_secs)).await?;
        }
        let req = Request::get(format!("{}/{run_id}/insights", api(cx, settings)))
            .query("limit", settings.page_size);
        self.read_pages(req)
            .await
            .map_err(|e| run_vanished(e, &run_id))?;
        Ok(ChunkEnd::Done)
    }
}

/// `async_percent_completion`: a JSON number (Meta's) or a numeric string.
fn percent_value(v: &Value) -> Option<Decimal> {
    match v {
        Value::Number(n) => plugin_api::lenient::number_decimal(&n.to_string()).ok(),
        Value::String(s) => plugin_api::parse::plain_decimal_str(s).ok().flatten(),
        _ => None,
    }
}

/// A report run's poll or read answered "object does not exist" (code 100,
/// subcode 33): the run expired or Meta purged it, which [`graph::classify`]
/// (not knowing the object) calls an unknown ad account, a config error
/// not retried. On `/{report_run_id}` that is the only config error there
/// is (a refused token is an auth error), so it is said as what it is and
/// retried: the next run starts a new report run for the days not yet
/// committed (soak QA31-D M1: a day without Meta spend, and an alert
/// pointing at a correct `ad_account_id`).
fn run_vanished(e: PluginError, run_id: &str) -> PluginError {
    if e.kind != ErrorKind::Config {
        return e;
    }
    PluginError::retryable(
        ErrorKind::Upstream,
        format!(
            "report run {run_id} no longer exists at Meta (expired, or purged): {}; the next run starts a new one",
            e.message
        ),
    )
}

async fn read_spend(cx: &Cx, settings: &Settings) -> Result<(), PluginError> {
    let window: Window = cx.window()?;
    let account_id = account_digits(cx, settings)?;
    let account = fetch_account(cx, settings).await?;
    let mut progress = Progress::resume(cx, SPEND, window).covering(&account.account_id);
    let use_async = match settings.report_mode {
        ReportMode::Sync => false,
        ReportMode::Async => true,
        ReportMode::Auto => window.days() > i64::from(settings.sync_max_days),
    };
    let start = progress.next_day(window);
    let mut queue: VecDeque<_> = chunks(start, window.to, settings.days_per_request).into();
    let mut n = 0u32;
    while let Some((from, to)) = queue.pop_front() {
        n += 1;
        let mut chunk = Chunk {
            cx,
            settings,
            account: &account,
            progress: &mut progress,
            from,
            to,
            label: format!("days {from}..{to}"),
        };
        let end = if use_async {
            chunk.read_async(&account_id).await?
        } else {
            chunk.read_sync(&account_id).await?
        };
        match end {
            ChunkEnd::Done => progress.finish_through(cx, to),
            ChunkEnd::JobFailed(why) if from < to => {
                // Smaller runs succeed where a big one fails: split in halves.
                let half = (to - from).num_days() / 2;
                let mid = from + Duration::days(half);
                cx.warn(
                    "report run failed, splitting",
                    &[("days", &format!("{from}..{to}")), ("error", &why)],
                );
                queue.push_front((mid + Duration::days(1), to));
                queue.push_front((from, mid));
            }
            ChunkEnd::JobFailed(why) => {
                return Err(PluginError::retryable(
                    ErrorKind::Upstream,
                    format!(
                        "connector `{}`: stream `{SPEND}` days {from}..{to}: {why}",
                        cx.connector_id()
                    ),
                ))
            }
        }
    }
    cx.debug(
        "stream done",
        &[
            ("stream", &SPEND),
            ("chunks", &n),
            ("async", &use_async),
            ("currency", &account.currency),
            ("timezone", &account.timezone),
        ],
    );
    Ok(())
}

plugin_api::export_plugin!(id = "meta_ads", connector = MetaAds);

#[cfg(test)]
mod tests;
