//! Loopback fake of the TikTok Business API v1.3 (integrated reports and
//! advertiser info).
//!
//! Faithful to the reference (connector-apis.md section 7): the token is the
//! `Access-Token` header; every answer is HTTP 200 with a JSON envelope
//! `{code, message, request_id, data}` whose non-zero `code` is the error
//! (40105 for a wrong token, 40100 when rate limited, 40067 for a range over
//! 30 days, 40002, "no access", for another advertiser; a malformed request
//! parameter gets [`PARAM_ERROR`], a code the reference does not give).
//! Reports page with `page` /
//! `page_size` (≤ 1000) and `page_info.total_page`; `dimensions` and
//! `metrics` are JSON arrays in the query; every metric is a string and
//! missing ones are `"-"`. [`TiktokFake::set_drift`] serves a changed API
//! instead ([`Drift`]: `data.list` renamed or emptied under the same
//! `page_info`, `spend` as `""` or left out).
//!
//! Data come from a seeded [`Universe`]; [`TiktokFake::truth`] is the ground
//! truth (conversions are `conversion`, value `total_complete_payment_rate`).

use super::google_ads::wire::{self, json_str, FakeRequest, FakeResponse, Handle, Level, Universe};
use chrono::NaiveDate;
use std::collections::BTreeSet;
use std::fmt::Write;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;

/// The code the fake answers a malformed request parameter with (a bad
/// `data_level`, `dimensions`, `metrics`, dates or `page_size`).
///
/// Not from the reference: connector-apis.md section 7 documents no code for
/// parameter errors, and gives 40002 as "no access (skip)", which the plugin
/// reads as an auth problem. A request-building bug must not look like
/// wrong credentials, so the fake uses a code the plugin has no meaning for
/// (it becomes a plain upstream error quoting TikTok's message).
pub const PARAM_ERROR: i64 = 40000;

/// How the fake behaves.
#[derive(Debug, Clone)]
pub struct Config {
    /// Advertiser id.
    pub advertiser_id: String,
    /// The accepted `Access-Token`.
    pub access_token: String,
    /// Advertiser currency.
    pub currency: String,
    /// Advertiser timezone (non-UTC by default).
    pub timezone: String,
    /// Report requests (1-based) answered with code 40100.
    pub rate_limit_at: BTreeSet<u64>,
    /// Real-time limit of report requests per second (code 40100 beyond).
    pub max_requests_per_sec: Option<u32>,
    /// A day whose first row has a malformed `spend`.
    pub corrupt_day: Option<NaiveDate>,
    /// Longest span of days answered; longer ones get 40067 "query too
    /// large", as TikTok answers a query over too much data (the 30-day
    /// cap applies in any case).
    pub max_days_per_query: Option<u32>,
}

impl Default for Config {
    fn default() -> Self {
        Config {
            advertiser_id: "7012345678901234567".into(),
            access_token: "fake-tiktok-access-token".into(),
            currency: "USD".into(),
            timezone: "America/New_York".into(),
            rate_limit_at: BTreeSet::new(),
            max_requests_per_sec: None,
            corrupt_day: None,
            max_days_per_query: None,
        }
    }
}

/// An API drift the fake serves instead of the reference's answer (QA35d),
/// set while it runs ([`TiktokFake::set_drift`]).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub enum Drift {
    /// The reference's answers.
    #[default]
    None,
    /// Report pages carry their rows under `data.rows` instead of
    /// `data.list` (`page_info` unchanged).
    ListRenamed,
    /// Report pages have an empty `data.list` while `page_info` still
    /// counts the rows (`total_number`, `total_page`).
    ListEmptied,
    /// `spend` is `""` on every row.
    SpendEmpty,
    /// `spend` is left out of every row.
    SpendMissing,
}

/// The fake.
#[derive(Debug)]
pub struct TiktokFake {
    /// Behaviour.
    pub config: Config,
    /// The data.
    pub universe: Universe,
    reports: AtomicU64,
    /// 40100 answers sent so far.
    pub rate_limits_sent: AtomicU64,
    limiter: Option<wire::PerSecond>,
    request_ids: AtomicU64,
    /// Report requests to answer with 40100, set at run time.
    pub throttle: wire::Countdown,
    drift: std::sync::Mutex<Drift>,
}

impl TiktokFake {
    /// A fake over `universe` (cents, whole conversions).
    pub fn new(config: Config, mut universe: Universe) -> Arc<TiktokFake> {
        universe.cents = true;
        universe.whole_conversions = true;
        Arc::new(TiktokFake {
            limiter: config.max_requests_per_sec.map(wire::PerSecond::new),
            config,
            universe,
            reports: AtomicU64::new(0),
            rate_limits_sent: AtomicU64::new(0),
            request_ids: AtomicU64::new(0),
            throttle: wire::Countdown::default(),
            drift: std::sync::Mutex::new(Drift::None),
        })
    }

    /// Serves `drift` from the next report request on.
    pub fn set_drift(&self, drift: Drift) {
        *self.drift.lock().unwrap() = drift;
    }

    /// The rows a sync of `level` over `from..=to` must store.
    pub fn truth(&self, level: Level, from: NaiveDate, to: NaiveDate) -> Arc<Vec<wire::Row>> {
        self.universe.rows(level, from, to)
    }

    /// Restates a day.
    pub fn restate(&self, day: NaiveDate) {
        self.universe.restate(day);
    }

    /// Report requests served (rate-limited ones included).
    pub fn report_requests(&self) -> u64 {
        self.reports.load(Ordering::SeqCst)
    }

    fn envelope(&self, code: i64, message: &str, data: &str) -> FakeResponse {
        let n = self.request_ids.fetch_add(1, Ordering::SeqCst);
        FakeResponse::json(
            200,
            format!(
                r#"{{"code":{code},"message":{},"request_id":"2026112812000{n:08}","data":{data}}}"#,
                json_str(message)
            ),
        )
    }

    fn json_list(req: &FakeRequest, key: &str) -> Option<Vec<String>> {
        serde_json::from_str(req.q(key)?).ok()
    }

    fn report(&self, req: &FakeRequest) -> FakeResponse {
        let n = self.reports.fetch_add(1, Ordering::SeqCst) + 1;
        if self.config.rate_limit_at.contains(&n)
            || self.limiter.as_ref().is_some_and(|l| !l.admit())
            || self.throttle.take()
        {
            self.rate_limits_sent.fetch_add(1, Ordering::SeqCst);
            return self.envelope(40100, "Too many requests. Please retry in some time.", "{}");
        }
        if req.q("advertiser_id") != Some(self.config.advertiser_id.as_str()) {
            return self.envelope(40002, "No permission to operate advertiser.", "{}");
        }
        if req.q("service_type").unwrap_or("AUCTION") != "AUCTION"
            || req.q("report_type") != Some("BASIC")
        {
            return self.envelope(
                PARAM_ERROR,
                "The fake serves report_type=BASIC, service_type=AUCTION.",
                "{}",
            );
        }
        let level = match req.q("data_level") {
            Some("AUCTION_CAMPAIGN") => Level::Campaign,
            Some("AUCTION_ADGROUP") => Level::AdGroup,
            Some("AUCTION_AD") => Level::Ad,
            other => {
                return self.envelope(
                    PARAM_ERROR,
                    &format!("data_level: invalid value {other:?}"),
                    "{}",
                )
            }
        };
        let id_dim = match level {
            Level::Campaign => "campaign_id",
            Level::AdGroup => "adgroup_id",
            Level::Ad => "ad_id",
        };
        let Some(dims) = Self::json_list(req, "dimensions") else {
            return self.envelope(
                PARAM_ERROR,
                "dimensions: must be a JSON array of strings",
                "{}",
            );
        };
        if dims != [id_dim, "stat_time_day"] {
            return self.envelope(
                PARAM_ERROR,
                &format!("dimensions: the fake serves [\"{id_dim}\", \"stat_time_day\"]"),
                "{}",
            );
        }
        let Some(metrics) = Self::json_list(req, "metrics") else {
            return self.envelope(
                PARAM_ERROR,
                "metrics: must be a JSON array of strings",
                "{}",
            );
        };
        let (Some(from), Some(to)) = (
            req.q("start_date").and_then(wire::date),
            req.q("end_date").and_then(wire::date),
        ) else {
            return self.envelope(
                PARAM_ERROR,
                "start_date/end_date: expected YYYY-MM-DD",
                "{}",
            );
        };
        if to < from || (to - from).num_days() >= 30 {
            return self.envelope(
                40067,
                "The time span between start_date and end_date must be within 30 days.",
                "{}",
            );
        }
        let span = (to - from).num_days() + 1;
        if self
            .config
            .max_days_per_query
            .is_some_and(|max| span > i64::from(max))
        {
            return self.envelope(
                40067,
                "The query is too large. Please narrow down the time range or reduce the dimensions.",
                "{}",
            );
        }
        let page: usize = req
            .q("page")
            .and_then(|p| p.parse().ok())
            .unwrap_or(1)
            .max(1);
        let page_size: usize = req
            .q("page_size")
            .and_then(|p| p.parse().ok())
            .unwrap_or(10);
        if !(1..=1000).contains(&page_size) {
            return self.envelope(PARAM_ERROR, "page_size: must be between 1 and 1000", "{}");
        }
        let rows = self.universe.rows(level, from, to);
        let total_page = rows.len().div_ceil(page_size);
        let start = (page - 1) * page_size;
        let slice = rows
            .get(start..(start + page_size).min(rows.len()))
            .unwrap_or(&[]);
        let first_corrupt = self
            .config
            .corrupt_day
            .map(|d| rows.partition_point(|r| r.day < d));
        let drift = *self.drift.lock().unwrap();
        let slice = if drift == Drift::ListEmptied {
            &[]
        } else {
            slice
        };
        let list_key = if drift == Drift::ListRenamed {
            "rows"
        } else {
            "list"
        };
        let mut s = String::with_capacity(slice.len() * 420 + 200);
        let _ = write!(
            s,
            r#"{{"page_info":{{"page":{page},"page_size":{page_size},"total_number":{},"total_page":{total_page}}},"{list_key}":["#,
            rows.len()
        );
        for (i, r) in slice.iter().enumerate() {
            if i > 0 {
                s.push(',');
            }
            let c = r.campaign;
            let id = match level {
                Level::Campaign => r.campaign_id(),
                Level::AdGroup => r.ad_group_id().unwrap_or_default(),
                Level::Ad => r.ad_id().unwrap_or_default(),
            };
            let _ = write!(
                s,
                r#"{{"dimensions":{{"{id_dim}":"{id}","stat_time_day":"{} 00:00:00"}},"metrics":{{"#,
                r.day
            );
            let corrupt =
                first_corrupt == Some(start + i) && self.config.corrupt_day == Some(r.day);
            let mut first = true;
            for name in &metrics {
                if name == "spend" && drift == Drift::SpendMissing {
                    continue;
                }
                if !first {
                    s.push(',');
                }
                first = false;
                let m = &r.m;
                let value = match name.as_str() {
                    "campaign_id" => json_str(&r.campaign_id()),
                    "campaign_name" => json_str(&wire::campaign_name(c)),
                    "adgroup_id" => json_str(&r.ad_group_id().unwrap_or_default()),
                    "adgroup_name" => json_str(
                        &r.ad_group
                            .map(|g| wire::ad_group_name(c, g))
                            .unwrap_or_default(),
                    ),
                    "ad_name" => json_str(&match (r.ad_group, r.ad) {
                        (Some(g), Some(a)) => wire::ad_name(c, g, a),
                        _ => String::new(),
                    }),
                    "spend" if corrupt => "\"12.3.4\"".to_owned(),
                    "spend" if drift == Drift::SpendEmpty => "\"\"".to_owned(),
                    "spend" => format!("\"{}\"", m.cost()),
                    "impressions" => format!("\"{}\"", m.impressions),
                    "clicks" => format!("\"{}\"", m.clicks),
                    "conversion" => format!("\"{}\"", m.conversions()),
                    "total_complete_payment_rate" if m.value_cents == 0 => "\"-\"".to_owned(),
                    "total_complete_payment_rate" => format!("\"{}\"", m.value()),
                    "cpc" if m.clicks == 0 => "\"-\"".to_owned(),
                    _ => "\"-\"".to_owned(),
                };
                let _ = write!(s, "{}:{value}", json_str(name));
            }
            s.push_str("}}");
        }
        s.push_str("]}");
        self.envelope(0, "OK", &s)
    }

    fn advertiser_info(&self, req: &FakeRequest) -> FakeResponse {
        let Some(ids) = Self::json_list(req, "advertiser_ids") else {
            return self.envelope(
                PARAM_ERROR,
                "advertiser_ids: must be a JSON array of strings",
                "{}",
            );
        };
        if ids.iter().any(|i| *i != self.config.advertiser_id) {
            return self.envelope(40002, "No permission to operate advertiser.", "{}");
        }
        let c = &self.config;
        self.envelope(
            0,
            "OK",
            &format!(
                r#"{{"list":[{{"advertiser_id":"{}","name":"Fake shop","currency":"{}","timezone":"{}","display_timezone":"{}","status":"STATUS_ENABLE"}}]}}"#,
                c.advertiser_id, c.currency, c.timezone, c.timezone
            ),
        )
    }
}

impl Handle for TiktokFake {
    fn handle(&self, req: &FakeRequest) -> FakeResponse {
        if req.header("access-token") != Some(self.config.access_token.as_str()) {
            return self.envelope(
                40105,
                "Access token is incorrect or has been revoked.",
                "{}",
            );
        }
        match (req.method.as_str(), req.path.as_str()) {
            ("GET", "/open_api/v1.3/report/integrated/get/") => self.report(req),
            ("GET", "/open_api/v1.3/advertiser/info/") => self.advertiser_info(req),
            _ => FakeResponse::json(404, r#"{"code":40400,"message":"Not Found"}"#),
        }
    }
}

/// The axum router of the fake.
pub fn router(fake: Arc<TiktokFake>) -> axum::Router {
    wire::router(fake)
}

/// An in-process bridge for `FakeHost::handler`: adds the `Access-Token`
/// header as the host does and answers from the fake.
pub fn bridge(
    fake: Arc<TiktokFake>,
    access_token: &str,
) -> impl FnMut(&plugin_api::protocol::HttpRequest) -> plugin_api::testing::Reply {
    let token = access_token.to_owned();
    move |req| {
        let mut r = FakeRequest::from_plugin(req);
        r.headers.insert("access-token".into(), token.clone());
        fake.handle(&r).into_reply()
    }
}

/// Totals of the fake's truth.
pub fn truth_totals(
    fake: &TiktokFake,
    level: Level,
    from: NaiveDate,
    to: NaiveDate,
) -> wire::Totals {
    wire::truth_totals(&fake.truth(level, from, to))
}
