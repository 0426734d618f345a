//! Loopback fake of the Meta Marketing API (ad account insights).
//!
//! Faithful to the reference (connector-apis.md section 6): the token is the
//! `access_token` query parameter (or form field, or a Bearer header); a wrong
//! one is HTTP 401 with an `OAuthException` code 190. Insights are read
//! directly (`GET /{v}/act_{id}/insights`, cursor paging with
//! `paging.cursors.after` and an absolute `paging.next` that carries the
//! token) or through async report runs (`POST` → `report_run_id`, a status
//! that moves through `Job Not Started` → `Job Started` → `Job Running` →
//! `Job Completed` over several polls, then `/{run_id}/insights`). Every
//! metric is a string; `actions` / `action_values` list the overlapping
//! purchase types. Purchases follow each ad set's attribution setting only
//! with `use_unified_attribution_setting=true`; without it the fake reports
//! one more purchase worth 1.00 per row with purchases in `value`, its
//! stand-in for "wrong windows" (reference §10, airbyte #29894). With
//! `action_attribution_windows`, each action also carries one key per
//! requested window (reference §6): a view window holds the view-through
//! share (half a purchase worth 1.00 on a row with at least one purchase),
//! a click window the rest, so one click and one view window add up to the
//! truth while `value` stays the account default. Every
//! response carries the usage headers; throttling is an error body with code
//! 80000, 17, 613 or 4 (in turn), HTTP 400 unless [`Config::throttle_status`]
//! says otherwise; [`Config::regain_minutes_at`] makes the business use
//! case header say when access is regained.
//!
//! Data come from a seeded [`Universe`]; [`MetaFake::truth`] is the ground
//! truth (conversions are `omni_purchase`).

use super::google_ads::wire::{self, json_str, FakeRequest, FakeResponse, Handle, Level, Universe};
use base64::Engine;
use chrono::NaiveDate;
use std::collections::{BTreeMap, BTreeSet};
use std::fmt::Write;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};

/// How the fake behaves.
#[derive(Debug, Clone)]
pub struct Config {
    /// Ad account id (digits).
    pub account_id: String,
    /// The accepted access token.
    pub access_token: String,
    /// Account currency.
    pub currency: String,
    /// `timezone_name` (non-UTC by default).
    pub timezone: String,
    /// Largest `limit` honoured.
    pub max_page_size: usize,
    /// Polls a report run takes to finish.
    pub async_polls: u32,
    /// Report runs (1-based, in creation order) that end `Job Failed`.
    pub fail_jobs: BTreeSet<u64>,
    /// API requests (1-based, all counted) answered with a throttling error
    /// (code 80000 for odd ordinals, 17 for even ones).
    pub throttle_errors_at: BTreeSet<u64>,
    /// HTTP status of those throttling answers (400 by default; the
    /// reference warns they are not reliably 4xx, so a test may use 200).
    pub throttle_status: u16,
    /// API requests whose usage headers report 90 %.
    pub high_usage_at: BTreeSet<u64>,
    /// API requests whose business-use-case header says access is regained
    /// in this many minutes (`estimated_time_to_regain_access`).
    pub regain_minutes_at: BTreeMap<u64, u32>,
    /// Real-time limit of requests per second (code 17 beyond).
    pub max_requests_per_sec: Option<u32>,
    /// A day whose first row has a malformed `spend`.
    pub corrupt_day: Option<NaiveDate>,
}

impl Default for Config {
    fn default() -> Self {
        Config {
            account_id: "4242".into(),
            access_token: "EAAB-fake-meta-token".into(),
            currency: "USD".into(),
            timezone: "America/Los_Angeles".into(),
            max_page_size: 5000,
            async_polls: 3,
            fail_jobs: BTreeSet::new(),
            throttle_errors_at: BTreeSet::new(),
            throttle_status: 400,
            high_usage_at: BTreeSet::new(),
            regain_minutes_at: BTreeMap::new(),
            max_requests_per_sec: None,
            corrupt_day: None,
        }
    }
}

/// Which attribution a report was asked for.
#[derive(Debug, Clone, PartialEq)]
enum Attribution {
    /// Neither parameter: the account default (`value` off by one).
    AccountDefault,
    /// `use_unified_attribution_setting=true`: the truth in `value`.
    Unified,
    /// `action_attribution_windows`: `value` the account default, plus one
    /// key per window.
    Windows(Vec<String>),
}

#[derive(Debug, Clone)]
struct Job {
    level: Level,
    attribution: Attribution,
    from: NaiveDate,
    to: NaiveDate,
    polls: u32,
    fails: bool,
}

/// The fake.
#[derive(Debug)]
pub struct MetaFake {
    /// Behaviour.
    pub config: Config,
    /// The data.
    pub universe: Universe,
    requests: AtomicU64,
    jobs: Mutex<BTreeMap<String, Job>>,
    job_counter: AtomicU64,
    /// Throttling errors sent so far.
    pub throttle_errors_sent: AtomicU64,
    limiter: Option<wire::PerSecond>,
    /// API requests to answer with a throttling error, set at run time.
    pub throttle: wire::Countdown,
}

fn b64(n: usize) -> String {
    base64::engine::general_purpose::STANDARD.encode(format!("offset:{n}"))
}

fn unb64(s: &str) -> Option<usize> {
    let bytes = base64::engine::general_purpose::STANDARD.decode(s).ok()?;
    String::from_utf8(bytes)
        .ok()?
        .strip_prefix("offset:")?
        .parse()
        .ok()
}

impl MetaFake {
    /// A fake over `universe` (cents, whole conversions).
    pub fn new(config: Config, mut universe: Universe) -> Arc<MetaFake> {
        universe.cents = true;
        universe.whole_conversions = true;
        Arc::new(MetaFake {
            limiter: config.max_requests_per_sec.map(wire::PerSecond::new),
            config,
            universe,
            requests: AtomicU64::new(0),
            jobs: Mutex::new(BTreeMap::new()),
            job_counter: AtomicU64::new(0),
            throttle_errors_sent: AtomicU64::new(0),
            throttle: wire::Countdown::default(),
        })
    }

    /// The rows a sync of `level` over `from..=to` must store.
    pub fn truth(&self, level: Level, from: NaiveDate, to: NaiveDate) -> Arc<Vec<wire::Row>> {
        self.universe.rows(level, from, to)
    }

    /// Restates a day.
    pub fn restate(&self, day: NaiveDate) {
        self.universe.restate(day);
    }

    /// Report runs created so far.
    pub fn jobs_created(&self) -> u64 {
        self.job_counter.load(Ordering::SeqCst)
    }

    /// API requests served so far.
    pub fn requests(&self) -> u64 {
        self.requests.load(Ordering::SeqCst)
    }

    fn error(status: u16, code: i64, subcode: Option<i64>, message: &str) -> FakeResponse {
        let sub = subcode
            .map(|s| format!(r#","error_subcode":{s}"#))
            .unwrap_or_default();
        FakeResponse::json(
            status,
            format!(
                r#"{{"error":{{"message":{},"type":"OAuthException","code":{code}{sub},"is_transient":{},"fbtrace_id":"AbCdEfFake"}}}}"#,
                json_str(message),
                matches!(code, 4 | 17 | 613 | 80000..=80014)
            ),
        )
    }

    fn usage_headers(&self, resp: FakeResponse, n: u64) -> FakeResponse {
        let pct = if self.config.high_usage_at.contains(&n) {
            90
        } else {
            n % 10
        };
        let id = &self.config.account_id;
        let regain = self.config.regain_minutes_at.get(&n).copied().unwrap_or(0);
        resp.with_header(
            "x-app-usage",
            format!(r#"{{"call_count":{pct},"total_cputime":{},"total_time":{}}}"#, pct / 2, pct / 2),
        )
        .with_header(
            "x-business-use-case-usage",
            format!(
                r#"{{"1000000001":[{{"type":"ads_insights","call_count":{pct},"total_cputime":1,"total_time":1,"estimated_time_to_regain_access":{regain}}}]}}"#
            ),
        )
        .with_header("x-ad-account-usage", format!(r#"{{"acc_id_util_pct":{pct},"reset_time_duration":0,"ads_api_access_tier":"standard_access"}}"#))
        .with_header(
            "x-fb-ads-insights-throttle",
            format!(r#"{{"app_id_util_pct":{pct},"acc_id_util_pct":{},"ads_api_access_tier":"standard_access"}}"#, pct / 3),
        )
        .with_header("x-fb-trace-id", format!("fake{id}{n}"))
    }

    fn params(req: &FakeRequest) -> Vec<(String, String)> {
        let mut p = req.query.clone();
        if req.method == "POST" {
            p.extend(req.form());
        }
        p
    }

    fn report_args(
        params: &[(String, String)],
    ) -> Result<(Level, NaiveDate, NaiveDate), FakeResponse> {
        let get = |k: &str| params.iter().find(|(a, _)| a == k).map(|(_, v)| v.as_str());
        let level = match get("level") {
            Some("campaign") => Level::Campaign,
            Some("adset") => Level::AdGroup,
            Some("ad") => Level::Ad,
            other => {
                return Err(Self::error(
                    400,
                    100,
                    None,
                    &format!("(#100) The fake supports level campaign, adset or ad, not {other:?}"),
                ))
            }
        };
        if get("time_increment") != Some("1") {
            return Err(Self::error(
                400,
                100,
                None,
                "(#100) The fake serves daily rows only: time_increment=1",
            ));
        }
        let range: Option<serde_json::Value> =
            get("time_range").and_then(|t| serde_json::from_str(t).ok());
        let since = range
            .as_ref()
            .and_then(|r| r["since"].as_str())
            .and_then(wire::date);
        let until = range
            .as_ref()
            .and_then(|r| r["until"].as_str())
            .and_then(wire::date);
        match (since, until) {
            (Some(a), Some(b)) if a <= b => Ok((level, a, b)),
            _ => Err(Self::error(
                400,
                100,
                None,
                "(#100) Param time_range must be a JSON object {since, until}",
            )),
        }
    }

    /// The attribution a report asks for.
    fn attribution(params: &[(String, String)]) -> Attribution {
        let get = |name: &str| params.iter().find(|(k, _)| k == name).map(|(_, v)| v);
        if let Some(w) = get("action_attribution_windows") {
            Attribution::Windows(serde_json::from_str(w).unwrap_or_default())
        } else if get("use_unified_attribution_setting").is_some_and(|v| v == "true") {
            Attribution::Unified
        } else {
            Attribution::AccountDefault
        }
    }

    fn page(
        &self,
        req: &FakeRequest,
        rows: &[wire::Row],
        level: Level,
        attribution: &Attribution,
    ) -> FakeResponse {
        let limit = req
            .q("limit")
            .and_then(|l| l.parse::<usize>().ok())
            .unwrap_or(25)
            .clamp(1, self.config.max_page_size);
        let offset = match req.q("after") {
            None => 0,
            Some(a) => match unb64(a) {
                Some(o) => o,
                None => return Self::error(400, 100, None, "(#100) Invalid cursor: after"),
            },
        };
        let end = (offset + limit).min(rows.len());
        let slice = rows.get(offset..end).unwrap_or(&[]);
        let mut s = String::with_capacity(slice.len() * 700 + 256);
        s.push_str(r#"{"data":["#);
        let c = &self.config;
        for (i, r) in slice.iter().enumerate() {
            if i > 0 {
                s.push(',');
            }
            let cid = r.campaign;
            let _ = write!(
                s,
                r#"{{"account_id":"{}","account_currency":"{}","campaign_id":"{}","campaign_name":{}"#,
                c.account_id,
                c.currency,
                r.campaign_id(),
                json_str(&wire::campaign_name(cid))
            );
            if let (Some(g), true) = (r.ad_group, level != Level::Campaign) {
                let _ = write!(
                    s,
                    r#","adset_id":"{}","adset_name":{}"#,
                    wire::ad_group_id(cid, g),
                    json_str(&wire::ad_group_name(cid, g))
                );
            }
            if let (Some(g), Some(a), Level::Ad) = (r.ad_group, r.ad, level) {
                let _ = write!(
                    s,
                    r#","ad_id":"{}","ad_name":{}"#,
                    wire::ad_id(cid, g, a),
                    json_str(&wire::ad_name(cid, g, a))
                );
            }
            let m = &r.m;
            let spend = if Some(r.day) == c.corrupt_day && offset + i == first_of_day(rows, r.day) {
                "12,34".to_owned()
            } else {
                m.cost().to_string()
            };
            let _ = write!(
                s,
                r#","impressions":"{}","clicks":"{}","spend":"{spend}""#,
                m.impressions, m.clicks
            );
            // Without the ad sets' own (unified) attribution settings Meta
            // counts purchases under other windows: the fake's stand-in is one
            // more purchase worth 1.00 wherever there were purchases.
            let legacy = *attribution != Attribution::Unified && m.conversion_halves > 0;
            let conv = if legacy {
                m.conversions() + rust_decimal::Decimal::ONE
            } else {
                m.conversions()
            };
            // The window keys of one action: its view-through share in view
            // windows, the rest in click windows.
            let windows = |truth: rust_decimal::Decimal, view: rust_decimal::Decimal| -> String {
                let Attribution::Windows(ws) = attribution else {
                    return String::new();
                };
                ws.iter()
                    .map(|w| {
                        let share = if w.ends_with("_view") {
                            view
                        } else if w.ends_with("_click") {
                            truth - view
                        } else {
                            truth
                        };
                        format!(r#","{w}":"{share}""#)
                    })
                    .collect()
            };
            let half = rust_decimal::Decimal::new(5, 1);
            let view_conv = if m.conversion_halves >= 2 {
                half
            } else {
                rust_decimal::Decimal::ZERO
            };
            let view_value = if m.conversion_halves >= 2 && m.value_cents >= 100 {
                rust_decimal::Decimal::ONE
            } else {
                rust_decimal::Decimal::ZERO
            };
            if m.clicks > 0 {
                let _ = write!(
                    s,
                    r#","actions":[{{"action_type":"link_click","value":"{}"}}"#,
                    m.clicks
                );
                if m.conversion_halves > 0 {
                    for t in [
                        "offsite_conversion.fb_pixel_purchase",
                        "purchase",
                        "omni_purchase",
                    ] {
                        let w = windows(m.conversions(), view_conv);
                        let _ = write!(s, r#",{{"action_type":"{t}","value":"{conv}"{w}}}"#);
                    }
                }
                s.push(']');
                if m.value_cents > 0 {
                    let v = if legacy {
                        m.value() + rust_decimal::Decimal::ONE
                    } else {
                        m.value()
                    };
                    s.push_str(r#","action_values":["#);
                    for (k, t) in [
                        "offsite_conversion.fb_pixel_purchase",
                        "purchase",
                        "omni_purchase",
                    ]
                    .iter()
                    .enumerate()
                    {
                        if k > 0 {
                            s.push(',');
                        }
                        let w = windows(m.value(), view_value);
                        let _ = write!(s, r#"{{"action_type":"{t}","value":"{v}"{w}}}"#);
                    }
                    s.push(']');
                }
            }
            let _ = write!(s, r#","date_start":"{d}","date_stop":"{d}"}}"#, d = r.day);
        }
        s.push(']');
        if !slice.is_empty() {
            let _ = write!(
                s,
                r#","paging":{{"cursors":{{"before":"{}","after":"{}"}}"#,
                b64(offset),
                b64(end)
            );
            if end < rows.len() {
                let mut next = url::form_urlencoded::Serializer::new(String::new());
                for (k, v) in &req.query {
                    if k != "after" && k != "access_token" {
                        next.append_pair(k, v);
                    }
                }
                next.append_pair("access_token", &self.config.access_token);
                next.append_pair("after", &b64(end));
                let _ = write!(
                    s,
                    r#","next":{}"#,
                    json_str(&format!("{}{}?{}", req.origin, req.path, next.finish()))
                );
            }
            s.push('}');
        }
        s.push('}');
        FakeResponse::json(200, s)
    }

    fn route(&self, req: &FakeRequest, n: u64) -> FakeResponse {
        let token = req
            .q("access_token")
            .map(str::to_owned)
            .or_else(|| {
                req.form()
                    .into_iter()
                    .find(|(k, _)| k == "access_token")
                    .map(|(_, v)| v)
            })
            .or_else(|| {
                req.header("authorization")
                    .and_then(|a| a.strip_prefix("Bearer "))
                    .map(str::to_owned)
            });
        if token.as_deref() != Some(self.config.access_token.as_str()) {
            return Self::error(
                401,
                190,
                None,
                "Invalid OAuth access token - Cannot parse access token",
            );
        }
        if self.config.throttle_errors_at.contains(&n)
            || self.limiter.as_ref().is_some_and(|l| !l.admit())
            || self.throttle.take()
        {
            self.throttle_errors_sent.fetch_add(1, Ordering::SeqCst);
            let status = self.config.throttle_status;
            // The four throttling errors of the reference (§6), in turn.
            return match n % 4 {
                1 => Self::error(status, 80000, Some(2446079), "(#80000) There have been too many calls from this ad-account. Wait a bit and try again."),
                2 => Self::error(status, 17, Some(2446079), "(#17) User request limit reached"),
                3 => Self::error(status, 613, Some(1487742), "(#613) Calls to this api have exceeded the rate limit."),
                _ => Self::error(status, 4, Some(1504022), "(#4) Application request limit reached"),
            };
        }
        let parts: Vec<&str> = req.path.trim_start_matches('/').split('/').collect();
        let act = format!("act_{}", self.config.account_id);
        match (req.method.as_str(), parts.as_slice()) {
            ("GET", [_v, a]) if *a == act => FakeResponse::json(
                200,
                format!(
                    r#"{{"account_id":"{id}","name":"Fake shop","currency":"{}","timezone_name":"{}","id":"{act}"}}"#,
                    self.config.currency,
                    self.config.timezone,
                    id = self.config.account_id
                ),
            ),
            (_, [_v, a, ..]) if a.starts_with("act_") && *a != act => Self::error(
                400,
                100,
                Some(33),
                &format!("Unsupported get request. Object with ID '{a}' does not exist, cannot be loaded due to missing permissions, or does not support this operation."),
            ),
            ("GET", [_v, a, "insights"]) if a.starts_with("act_") => match Self::report_args(&Self::params(req)) {
                Ok((level, from, to)) => {
                    let rows = self.universe.rows(level, from, to);
                    self.page(req, &rows, level, &Self::attribution(&Self::params(req)))
                }
                Err(e) => e,
            },
            ("POST", [_v, a, "insights"]) if a.starts_with("act_") => match Self::report_args(&Self::params(req)) {
                Ok((level, from, to)) => {
                    let k = self.job_counter.fetch_add(1, Ordering::SeqCst) + 1;
                    let id = format!("{}", 6_000_000_000_000u64 + k);
                    self.jobs.lock().unwrap().insert(
                        id.clone(),
                        Job {
                            level,
                            attribution: Self::attribution(&Self::params(req)),
                            from,
                            to,
                            polls: 0,
                            fails: self.config.fail_jobs.contains(&k),
                        },
                    );
                    FakeResponse::json(200, format!(r#"{{"report_run_id":"{id}"}}"#))
                }
                Err(e) => e,
            },
            ("GET", [_v, run]) => {
                let mut jobs = self.jobs.lock().unwrap();
                let Some(job) = jobs.get_mut(*run) else {
                    return Self::error(400, 100, Some(33), &format!("Unsupported get request. Object with ID '{run}' does not exist."));
                };
                job.polls += 1;
                let total = self.config.async_polls.max(1);
                let (status, pct) = if job.polls >= total {
                    (if job.fails { "Job Failed" } else { "Job Completed" }, 100)
                } else {
                    match job.polls {
                        1 => ("Job Not Started", 0),
                        2 => ("Job Started", 10),
                        p => ("Job Running", 100 * p / total),
                    }
                };
                FakeResponse::json(
                    200,
                    format!(
                        r#"{{"id":"{run}","account_id":"{}","async_status":"{status}","async_percent_completion":{pct},"date_start":"{}","date_stop":"{}"}}"#,
                        self.config.account_id, job.from, job.to
                    ),
                )
            }
            ("GET", [_v, run, "insights"]) => {
                let job = self.jobs.lock().unwrap().get(*run).cloned();
                match job {
                    Some(j) if j.polls >= self.config.async_polls.max(1) && !j.fails => {
                        let rows = self.universe.rows(j.level, j.from, j.to);
                        self.page(req, &rows, j.level, &j.attribution)
                    }
                    Some(_) => Self::error(400, 100, None, "(#100) The report run is not complete"),
                    None => Self::error(400, 100, Some(33), &format!("Unsupported get request. Object with ID '{run}' does not exist.")),
                }
            }
            _ => Self::error(400, 100, None, &format!("Unknown path components: {}", req.path)),
        }
    }
}

fn first_of_day(rows: &[wire::Row], day: NaiveDate) -> usize {
    rows.partition_point(|r| r.day < day)
}

impl Handle for MetaFake {
    fn handle(&self, req: &FakeRequest) -> FakeResponse {
        let n = self.requests.fetch_add(1, Ordering::SeqCst) + 1;
        let resp = self.route(req, n);
        self.usage_headers(resp, n)
    }
}

/// The axum router of the fake.
pub fn router(fake: Arc<MetaFake>) -> axum::Router {
    wire::router(fake)
}

/// An in-process bridge for `FakeHost::handler`: adds the access token as
/// the host does (query parameter) and answers from the fake.
pub fn bridge(
    fake: Arc<MetaFake>,
    access_token: &str,
) -> impl FnMut(&plugin_api::protocol::HttpRequest) -> plugin_api::testing::Reply {
    let token = access_token.to_owned();
    move |req| {
        let mut r = FakeRequest::from_plugin(req);
        r.query.push(("access_token".into(), token.clone()));
        fake.handle(&r).into_reply()
    }
}

/// Totals of the fake's truth.
pub fn truth_totals(fake: &MetaFake, level: Level, from: NaiveDate, to: NaiveDate) -> wire::Totals {
    wire::truth_totals(&fake.truth(level, from, to))
}
