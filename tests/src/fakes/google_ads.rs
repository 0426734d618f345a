//! Loopback fake of the Google Ads API (REST `googleAds:searchStream`) and of
//! Google's OAuth2 token endpoint.
//!
//! Faithful to the reference (connector-apis.md section 5): the host must
//! exchange the refresh token at `POST /token` (form body) for an access
//! token, then call `POST /{version}/customers/{id}/googleAds:searchStream`
//! with `Authorization: Bearer`, `developer-token` and (when configured)
//! `login-customer-id`; a wrong credential is a 401 / 403 in Google's error
//! model. The answer is a JSON array of batches (`batch_rows` rows each),
//! int64 fields are strings, doubles are numbers, zero metrics are left out.
//! One campaign in five is Performance Max: like the real API, `FROM
//! ad_group` / `FROM ad_group_ad` leave it out (it has asset groups, not ad
//! groups) and only `FROM campaign` reports its cost, also under a `WHERE
//! campaign.advertising_channel_type = 'PERFORMANCE_MAX'` filter.
//! Quota errors are HTTP 429 `RESOURCE_EXHAUSTED` with a `GoogleAdsFailure`
//! carrying `quotaErrorDetails.retryDelay`. An empty answer is one batch
//! without `results` (proto3 JSON leaves an empty list out).
//! [`GoogleFake::set_drift`] serves a changed API instead ([`Drift`]:
//! `results` or `costMicros` renamed, cost or `metrics` left out).
//!
//! The data come from a seeded [`wire::Universe`]; [`GoogleFake::truth`] is the
//! ground truth a sync must reproduce. [`GoogleFake::restate`] changes one
//! day's figures for later pulls (a restatement).
//!
//! [`wire`] holds what the three ad-network fakes share (request/response
//! types, the generator, the in-process bridge, per-day-and-campaign totals).

use chrono::NaiveDate;
use rust_decimal::Decimal;
use std::collections::BTreeSet;
use std::fmt::Write;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use wire::{json_str, FakeRequest, FakeResponse, Level, Universe};

pub mod wire {
    //! Shared plumbing of the ad-network fakes: a transport-neutral request
    //! and response (so one handler serves axum and the in-process bridge),
    //! the seeded spend generator, and ground-truth totals.

    use chrono::{Duration, NaiveDate};
    use plugin_api::protocol::HttpRequest;
    use plugin_api::testing::Reply;
    use rust_decimal::Decimal;
    use std::collections::{BTreeMap, HashMap};
    use std::sync::{Arc, Mutex};
    use std::time::Instant;

    /// A request as a fake sees it.
    #[derive(Debug, Clone, Default)]
    pub struct FakeRequest {
        /// `GET`, `POST`, ...
        pub method: String,
        /// The path, e.g. `/v24/customers/1/googleAds:searchStream`.
        pub path: String,
        /// Decoded query pairs in order.
        pub query: Vec<(String, String)>,
        /// Headers, lower-case names.
        pub headers: BTreeMap<String, String>,
        /// The body.
        pub body: Vec<u8>,
        /// `scheme://host[:port]` the client used (for absolute `next` URLs).
        pub origin: String,
    }

    impl FakeRequest {
        /// A query parameter.
        pub fn q(&self, key: &str) -> Option<&str> {
            self.query
                .iter()
                .find(|(k, _)| k == key)
                .map(|(_, v)| v.as_str())
        }
        /// A header (lower-case name).
        pub fn header(&self, name: &str) -> Option<&str> {
            self.headers.get(name).map(String::as_str)
        }
        /// Form-encoded body pairs.
        pub fn form(&self) -> Vec<(String, String)> {
            url::form_urlencoded::parse(&self.body)
                .map(|(k, v)| (k.into_owned(), v.into_owned()))
                .collect()
        }
        /// Builds one from a plugin's request (the in-process bridge).
        pub fn from_plugin(req: &HttpRequest) -> FakeRequest {
            let parsed = url::Url::parse(&req.url).expect("plugin sent an absolute URL");
            let origin = parsed.origin().ascii_serialization();
            FakeRequest {
                method: req.method.clone(),
                path: parsed.path().to_owned(),
                query: parsed
                    .query_pairs()
                    .map(|(k, v)| (k.into_owned(), v.into_owned()))
                    .collect(),
                headers: req
                    .headers
                    .iter()
                    .map(|(k, v)| (k.to_ascii_lowercase(), v.clone()))
                    .collect(),
                body: req.body.clone().unwrap_or_default().into_bytes(),
                origin,
            }
        }
    }

    /// A response from a fake.
    #[derive(Debug, Clone)]
    pub struct FakeResponse {
        /// HTTP status.
        pub status: u16,
        /// Headers.
        pub headers: Vec<(String, String)>,
        /// Body bytes.
        pub body: Vec<u8>,
    }

    impl FakeResponse {
        /// A JSON response from text.
        pub fn json(status: u16, body: impl Into<Vec<u8>>) -> FakeResponse {
            FakeResponse {
                status,
                headers: vec![("content-type".into(), "application/json".into())],
                body: body.into(),
            }
        }
        /// Adds a header.
        pub fn with_header(mut self, k: &str, v: impl Into<String>) -> Self {
            self.headers.push((k.to_owned(), v.into()));
            self
        }
        /// As the fake host's reply.
        pub fn into_reply(self) -> Reply {
            Reply {
                status: self.status,
                headers: self
                    .headers
                    .into_iter()
                    .map(|(k, v)| (k.to_ascii_lowercase(), v))
                    .collect(),
                body: self.body,
            }
        }
    }

    /// Something that answers requests.
    pub trait Handle: Send + Sync + 'static {
        /// Answers one request.
        fn handle(&self, req: &FakeRequest) -> FakeResponse;
    }

    /// An axum router sending every request to `fake` (on a blocking thread:
    /// big pages take a while to render).
    pub fn router<F: Handle>(fake: Arc<F>) -> axum::Router {
        use axum::body::Bytes;
        use axum::extract::State;
        use axum::http::{HeaderMap, Method, StatusCode, Uri};
        use axum::response::{IntoResponse, Response};
        async fn any<F: Handle>(
            State(fake): State<Arc<F>>,
            method: Method,
            uri: Uri,
            headers: HeaderMap,
            body: Bytes,
        ) -> Response {
            let host = headers
                .get("host")
                .and_then(|h| h.to_str().ok())
                .unwrap_or("127.0.0.1")
                .to_owned();
            let req = FakeRequest {
                method: method.as_str().to_owned(),
                path: uri.path().to_owned(),
                query: uri
                    .query()
                    .map(|q| {
                        url::form_urlencoded::parse(q.as_bytes())
                            .map(|(k, v)| (k.into_owned(), v.into_owned()))
                            .collect()
                    })
                    .unwrap_or_default(),
                headers: headers
                    .iter()
                    .filter_map(|(k, v)| {
                        Some((k.as_str().to_ascii_lowercase(), v.to_str().ok()?.to_owned()))
                    })
                    .collect(),
                body: body.to_vec(),
                origin: format!("http://{host}"),
            };
            let answer = tokio::task::spawn_blocking(move || fake.handle(&req)).await;
            match answer {
                Ok(r) => {
                    let mut resp = (
                        StatusCode::from_u16(r.status).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR),
                        r.body,
                    )
                        .into_response();
                    for (k, v) in r.headers {
                        if let (Ok(k), Ok(v)) = (
                            axum::http::HeaderName::from_bytes(k.as_bytes()),
                            axum::http::HeaderValue::from_str(&v),
                        ) {
                            resp.headers_mut().insert(k, v);
                        }
                    }
                    resp
                }
                Err(e) => (
                    StatusCode::INTERNAL_SERVER_ERROR,
                    format!("fake panicked: {e}"),
                )
                    .into_response(),
            }
        }
        axum::Router::new().fallback(any::<F>).with_state(fake)
    }

    /// Row granularity of a report.
    #[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
    pub enum Level {
        /// Per campaign.
        Campaign,
        /// Per ad group / ad set.
        AdGroup,
        /// Per ad.
        Ad,
    }

    /// The metrics of one generated row, in platform-neutral units.
    #[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
    pub struct Metrics {
        /// Impressions.
        pub impressions: u64,
        /// Clicks.
        pub clicks: u64,
        /// Cost in micros of the account currency (a multiple of 10 000 when
        /// the universe is in cents).
        pub cost_micros: i64,
        /// Conversions in halves (Google reports fractional conversions).
        pub conversion_halves: u64,
        /// Conversion value in cents.
        pub value_cents: u64,
    }

    impl Metrics {
        fn add(&mut self, o: &Metrics) {
            self.impressions += o.impressions;
            self.clicks += o.clicks;
            self.cost_micros += o.cost_micros;
            self.conversion_halves += o.conversion_halves;
            self.value_cents += o.value_cents;
        }
        /// Cost as an exact decimal.
        pub fn cost(&self) -> Decimal {
            Decimal::new(self.cost_micros, 6).normalize()
        }
        /// Conversions as an exact decimal.
        pub fn conversions(&self) -> Decimal {
            Decimal::new(
                i64::try_from(self.conversion_halves).unwrap_or(i64::MAX) * 5,
                1,
            )
            .normalize()
        }
        /// Value as an exact decimal.
        pub fn value(&self) -> Decimal {
            Decimal::new(i64::try_from(self.value_cents).unwrap_or(i64::MAX), 2).normalize()
        }
    }

    /// One generated row.
    #[derive(Debug, Clone, PartialEq, Eq)]
    pub struct Row {
        /// The day, in the account's timezone.
        pub day: NaiveDate,
        /// Campaign index (0-based).
        pub campaign: u32,
        /// Ad group index within the campaign (`None` at campaign level).
        pub ad_group: Option<u32>,
        /// Ad index within the ad group (`Some` at ad level).
        pub ad: Option<u32>,
        /// The figures.
        pub m: Metrics,
    }

    impl Row {
        /// The campaign's platform id.
        pub fn campaign_id(&self) -> String {
            campaign_id(self.campaign)
        }
        /// The ad group's platform id.
        pub fn ad_group_id(&self) -> Option<String> {
            self.ad_group.map(|g| ad_group_id(self.campaign, g))
        }
        /// The ad's platform id.
        pub fn ad_id(&self) -> Option<String> {
            Some(ad_id(self.campaign, self.ad_group?, self.ad?))
        }
    }

    /// Platform id of campaign `c`.
    pub fn campaign_id(c: u32) -> String {
        (20_000_000_000u64 + u64::from(c)).to_string()
    }
    /// Platform id of ad group `g` of campaign `c`.
    pub fn ad_group_id(c: u32, g: u32) -> String {
        (30_000_000_000u64 + u64::from(c) * 1000 + u64::from(g)).to_string()
    }
    /// Platform id of ad `a`.
    pub fn ad_id(c: u32, g: u32, a: u32) -> String {
        (40_000_000_000u64 + (u64::from(c) * 1000 + u64::from(g)) * 100 + u64::from(a)).to_string()
    }
    /// Name of campaign `c` (some with quotes and non-ASCII to test escaping).
    pub fn campaign_name(c: u32) -> String {
        match c % 7 {
            0 => format!("Brand \"Été\" {c}"),
            3 => format!("Prospecting / Lookalike {c}"),
            _ => format!("Campaign {c}"),
        }
    }
    /// Name of ad group `g` of campaign `c`.
    pub fn ad_group_name(c: u32, g: u32) -> String {
        format!("Ad group {c}-{g}")
    }
    /// Name of an ad.
    pub fn ad_name(c: u32, g: u32, a: u32) -> String {
        format!("Ad {c}-{g}-{a}")
    }

    fn mix(mut x: u64) -> u64 {
        // splitmix64
        x = x.wrapping_add(0x9E37_79B9_7F4A_7C15);
        x = (x ^ (x >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        x = (x ^ (x >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        x ^ (x >> 31)
    }

    /// A seeded spend generator: campaigns × ad groups × ads, one row per
    /// entity and day unless the entity was idle that day. Figures of a day
    /// change when the day is restated, and some of its rows disappear.
    #[derive(Debug)]
    pub struct Universe {
        /// Seed.
        pub seed: u64,
        /// Campaigns.
        pub campaigns: u32,
        /// Ad groups per campaign.
        pub ad_groups_per_campaign: u32,
        /// Ads per ad group.
        pub ads_per_ad_group: u32,
        /// Percent of (ad, day) pairs with activity.
        pub active_pct: u64,
        /// Cost granularity: true rounds cost to cents (Meta, TikTok), false
        /// keeps micros (Google).
        pub cents: bool,
        /// Whole conversions only (Meta, TikTok), else halves (Google).
        pub whole_conversions: bool,
        revisions: Mutex<HashMap<NaiveDate, u64>>,
        generation: std::sync::atomic::AtomicU64,
        cache: Mutex<Option<(CacheKey, Arc<Vec<Row>>)>>,
    }

    type CacheKey = (Level, NaiveDate, NaiveDate, u64);

    impl Universe {
        /// A universe of `campaigns` × `ad_groups_per_campaign` (one ad each).
        pub fn new(seed: u64, campaigns: u32, ad_groups_per_campaign: u32) -> Universe {
            Universe {
                seed,
                campaigns,
                ad_groups_per_campaign,
                ads_per_ad_group: 1,
                active_pct: 90,
                cents: true,
                whole_conversions: true,
                revisions: Mutex::new(HashMap::new()),
                generation: std::sync::atomic::AtomicU64::new(0),
                cache: Mutex::new(None),
            }
        }

        /// Restates `day`: later pulls see different figures for it.
        pub fn restate(&self, day: NaiveDate) {
            *self.revisions.lock().unwrap().entry(day).or_insert(0) += 1;
            self.generation
                .fetch_add(1, std::sync::atomic::Ordering::SeqCst);
        }

        fn revision(&self, day: NaiveDate) -> u64 {
            self.revisions
                .lock()
                .unwrap()
                .get(&day)
                .copied()
                .unwrap_or(0)
        }

        /// The figures of one ad on one day (`None` when idle).
        pub fn ad_metrics(
            &self,
            day: NaiveDate,
            c: u32,
            g: u32,
            a: u32,
            rev: u64,
        ) -> Option<Metrics> {
            let days = u64::try_from((day - NaiveDate::MIN).num_days()).unwrap_or(0);
            let base = mix(self.seed
                ^ mix(days.wrapping_mul(0x100_0000_01B3))
                ^ mix(u64::from(c) << 32 | u64::from(g) << 8 | u64::from(a)));
            if base % 100 >= self.active_pct {
                return None;
            }
            let h = mix(base ^ rev.wrapping_mul(0xA24B_AED4_963E_E407));
            // A restatement takes all activity from about one entity in
            // ten, which the platform then leaves out of its report.
            if rev > 0 && (h >> 56).is_multiple_of(10) {
                return None;
            }
            let impressions = 1 + h % 20_000;
            let clicks = (h >> 16) % (impressions / 20 + 1);
            let mut cost_micros =
                i64::try_from(clicks * (50_000 + (h >> 24) % 2_500_000)).unwrap_or(0);
            if self.cents {
                cost_micros -= cost_micros % 10_000;
            }
            let conversions = (h >> 40) % (clicks / 10 + 1);
            let conversion_halves = if self.whole_conversions {
                conversions * 2
            } else {
                conversions * 2 + (h >> 50) % 2
            };
            let value_cents = conversion_halves * (1_000 + (h >> 33) % 9_000);
            Some(Metrics {
                impressions,
                clicks,
                cost_micros,
                conversion_halves,
                value_cents,
            })
        }

        /// Every row of `level` for the days `from..=to`, ordered by day then
        /// ids. Cached for the last range asked (paging asks again and again).
        pub fn rows(&self, level: Level, from: NaiveDate, to: NaiveDate) -> Arc<Vec<Row>> {
            let key = (
                level,
                from,
                to,
                self.generation.load(std::sync::atomic::Ordering::SeqCst),
            );
            if let Some((k, rows)) = self.cache.lock().unwrap().as_ref() {
                if *k == key {
                    return rows.clone();
                }
            }
            let rows = Arc::new(self.generate(level, from, to));
            *self.cache.lock().unwrap() = Some((key, rows.clone()));
            rows
        }

        fn generate(&self, level: Level, from: NaiveDate, to: NaiveDate) -> Vec<Row> {
            let mut out = Vec::new();
            let mut day = from;
            while day <= to {
                let rev = self.revision(day);
                for c in 0..self.campaigns {
                    let mut campaign = Metrics::default();
                    let mut campaign_active = false;
                    for g in 0..self.ad_groups_per_campaign {
                        let mut group = Metrics::default();
                        let mut group_active = false;
                        for a in 0..self.ads_per_ad_group {
                            if let Some(m) = self.ad_metrics(day, c, g, a, rev) {
                                group.add(&m);
                                group_active = true;
                                if level == Level::Ad {
                                    out.push(Row {
                                        day,
                                        campaign: c,
                                        ad_group: Some(g),
                                        ad: Some(a),
                                        m,
                                    });
                                }
                            }
                        }
                        if group_active {
                            campaign.add(&group);
                            campaign_active = true;
                            if level == Level::AdGroup {
                                out.push(Row {
                                    day,
                                    campaign: c,
                                    ad_group: Some(g),
                                    ad: None,
                                    m: group,
                                });
                            }
                        }
                    }
                    if campaign_active && level == Level::Campaign {
                        out.push(Row {
                            day,
                            campaign: c,
                            ad_group: None,
                            ad: None,
                            m: campaign,
                        });
                    }
                }
                day += Duration::days(1);
            }
            out
        }
    }

    /// Sums per day and campaign: what a test compares.
    #[derive(Debug, Clone, Default, PartialEq, Eq)]
    pub struct Sums {
        /// Rows.
        pub rows: u64,
        /// Impressions.
        pub impressions: u64,
        /// Clicks.
        pub clicks: u64,
        /// Spend.
        pub spend: Decimal,
        /// Platform conversions.
        pub conversions: Decimal,
        /// Platform conversion value.
        pub value: Decimal,
    }

    /// Totals keyed by (day, campaign id).
    pub type Totals = BTreeMap<(NaiveDate, String), Sums>;

    /// Totals of generated rows.
    pub fn truth_totals(rows: &[Row]) -> Totals {
        let mut t = Totals::new();
        for r in rows {
            let s = t.entry((r.day, r.campaign_id())).or_default();
            s.rows += 1;
            s.impressions += r.m.impressions;
            s.clicks += r.m.clicks;
            s.spend += r.m.cost();
            s.conversions += r.m.conversions();
            s.value += r.m.value();
        }
        t
    }

    /// Totals of canonical spend records. Rows without activity (the ones
    /// the host set to zero when a complete re-pull no longer had them) are
    /// not rows of the platform's report: the fakes' rows all have
    /// impressions.
    pub fn spend_totals<'a>(records: impl IntoIterator<Item = &'a plugin_api::Spend>) -> Totals {
        let mut t = Totals::new();
        for r in records {
            if r.impressions == 0 && r.spend.amount.is_zero() {
                continue;
            }
            let s = t.entry((r.day, r.campaign_id.clone())).or_default();
            s.rows += 1;
            s.impressions += r.impressions;
            s.clicks += r.clicks;
            s.spend += r.spend.amount;
            s.conversions += r.platform_conversions.unwrap_or_default();
            s.value += r
                .platform_conversion_value
                .as_ref()
                .map(|m| m.amount)
                .unwrap_or_default();
        }
        t
    }

    /// A real-time limit of requests per second (the fake's own throttling).
    #[derive(Debug)]
    pub struct PerSecond {
        limit: u32,
        window: Mutex<(Instant, u32)>,
    }

    impl PerSecond {
        /// At most `limit` requests in any one-second window.
        pub fn new(limit: u32) -> PerSecond {
            PerSecond {
                limit,
                window: Mutex::new((Instant::now(), 0)),
            }
        }
        /// True if this request is within the limit.
        pub fn admit(&self) -> bool {
            let mut w = self.window.lock().unwrap();
            if w.0.elapsed() >= std::time::Duration::from_secs(1) {
                *w = (Instant::now(), 0);
            }
            w.1 += 1;
            w.1 <= self.limit
        }
    }

    /// Data requests still to refuse with the platform's rate-limit error,
    /// set while the fake runs (`reckon-fakes`' `throttle google_ads 5`).
    #[derive(Debug, Default)]
    pub struct Countdown(std::sync::atomic::AtomicU64);

    impl Countdown {
        /// Refuse the next `n` data requests.
        pub fn set(&self, n: u64) {
            self.0.store(n, std::sync::atomic::Ordering::SeqCst);
        }
        /// True, one fewer left, while any remain.
        pub fn take(&self) -> bool {
            use std::sync::atomic::Ordering::SeqCst;
            self.0
                .fetch_update(SeqCst, SeqCst, |n| n.checked_sub(1))
                .is_ok()
        }
    }

    /// A JSON string literal.
    pub fn json_str(s: &str) -> String {
        serde_json::to_string(s).expect("strings serialise")
    }

    /// Parses `YYYY-MM-DD`.
    pub fn date(s: &str) -> Option<NaiveDate> {
        NaiveDate::parse_from_str(s.get(..10)?, "%Y-%m-%d").ok()
    }
}

/// Credentials the fake accepts (and the bridge sends).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Credentials {
    /// OAuth2 client id.
    pub client_id: String,
    /// OAuth2 client secret.
    pub client_secret: String,
    /// OAuth2 refresh token.
    pub refresh_token: String,
    /// `developer-token` header.
    pub developer_token: String,
}

impl Default for Credentials {
    fn default() -> Self {
        Credentials {
            client_id: "fake-client.apps.googleusercontent.com".into(),
            client_secret: "fake-client-secret".into(),
            refresh_token: "1//fake-refresh-token".into(),
            developer_token: "fake-developer-token".into(),
        }
    }
}

/// How the fake behaves.
#[derive(Debug, Clone)]
pub struct Config {
    /// Client customer id (digits).
    pub customer_id: String,
    /// Required `login-customer-id`, if any.
    pub login_customer_id: Option<String>,
    /// Accepted credentials.
    pub credentials: Credentials,
    /// `customer.currencyCode`.
    pub currency: String,
    /// `customer.timeZone` (non-UTC by default).
    pub timezone: String,
    /// Rows per stream batch (Google uses 10 000).
    pub batch_rows: usize,
    /// searchStream data requests (1-based, customer queries not counted)
    /// answered with a quota error instead.
    pub quota_errors_at: BTreeSet<u64>,
    /// `retryDelay` of quota errors, in seconds.
    pub retry_delay_secs: u64,
    /// Real-time limit of searchStream requests per second (quota errors beyond).
    pub max_requests_per_sec: Option<u32>,
    /// A day whose first row carries a malformed `costMicros`.
    pub corrupt_day: Option<NaiveDate>,
}

impl Default for Config {
    fn default() -> Self {
        Config {
            customer_id: "1234567890".into(),
            login_customer_id: None,
            credentials: Credentials::default(),
            currency: "EUR".into(),
            timezone: "Europe/Berlin".into(),
            batch_rows: 10_000,
            quota_errors_at: BTreeSet::new(),
            retry_delay_secs: 1,
            max_requests_per_sec: None,
            corrupt_day: None,
        }
    }
}

/// An API drift the fake serves instead of the reference's answer (QA35d),
/// set while it runs ([`GoogleFake::set_drift`]): how a changed API looks
/// the morning after, to check the plugin refuses it rather than reading
/// "no rows" or "no cost".
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub enum Drift {
    /// The reference's answers.
    #[default]
    None,
    /// Data batches carry their rows under `rows` instead of `results`.
    ResultsRenamed,
    /// `metrics.costMicros` is sent as `metrics.costAmount`.
    CostRenamed,
    /// `metrics.costMicros` is left out of every row.
    CostMissing,
    /// The rows of the first campaign served have no `metrics` object.
    MetricsMissing,
    /// No rows at all, as Google answers for an account with no spend (a
    /// batch without `results`): a documented answer, read as "nothing".
    NoRows,
}

/// The fake: config, data and counters.
#[derive(Debug)]
pub struct GoogleFake {
    /// Behaviour.
    pub config: Config,
    /// The data.
    pub universe: Universe,
    tokens: Mutex<BTreeSet<String>>,
    token_counter: AtomicU64,
    data_requests: AtomicU64,
    /// Quota errors sent so far.
    pub quota_errors_sent: AtomicU64,
    limiter: Option<wire::PerSecond>,
    /// Data requests to answer with a quota error, set at run time.
    pub throttle: wire::Countdown,
    drift: Mutex<Drift>,
}

impl GoogleFake {
    /// Serves `drift` from the next data request on.
    pub fn set_drift(&self, drift: Drift) {
        *self.drift.lock().unwrap() = drift;
    }

    fn drift(&self) -> Drift {
        *self.drift.lock().unwrap()
    }

    /// A fake over `universe` (micros and fractional conversions are kept).
    pub fn new(config: Config, mut universe: Universe) -> Arc<GoogleFake> {
        universe.cents = false;
        universe.whole_conversions = false;
        Arc::new(GoogleFake {
            limiter: config.max_requests_per_sec.map(wire::PerSecond::new),
            config,
            universe,
            tokens: Mutex::new(BTreeSet::new()),
            token_counter: AtomicU64::new(0),
            data_requests: AtomicU64::new(0),
            quota_errors_sent: AtomicU64::new(0),
            throttle: wire::Countdown::default(),
            drift: Mutex::new(Drift::None),
        })
    }

    /// The rows a sync of `level` over `from..=to` must store: at the
    /// `ad_group` and `ad` levels, the other campaigns' rows of that level
    /// plus the Performance Max campaigns' rows by campaign.
    pub fn truth(&self, level: Level, from: NaiveDate, to: NaiveDate) -> Arc<Vec<wire::Row>> {
        if level == Level::Campaign {
            return self.universe.rows(level, from, to);
        }
        let mut rows = self.served(level, false, from, to);
        rows.extend(self.served(Level::Campaign, true, from, to));
        Arc::new(rows)
    }

    /// What a query of `level` answers: Performance Max campaigns have no ad
    /// groups (nor ads), so only `FROM campaign` reports them; `pmax_only`
    /// is its `advertising_channel_type = 'PERFORMANCE_MAX'` filter.
    fn served(
        &self,
        level: Level,
        pmax_only: bool,
        from: NaiveDate,
        to: NaiveDate,
    ) -> Vec<wire::Row> {
        self.universe
            .rows(level, from, to)
            .iter()
            .filter(|r| match level {
                Level::Campaign => !pmax_only || is_performance_max(r.campaign),
                Level::AdGroup | Level::Ad => !pmax_only && !is_performance_max(r.campaign),
            })
            .cloned()
            .collect()
    }

    /// Restates a day.
    pub fn restate(&self, day: NaiveDate) {
        self.universe.restate(day);
    }

    /// searchStream data requests served (quota errors included).
    pub fn data_requests(&self) -> u64 {
        self.data_requests.load(Ordering::SeqCst)
    }

    fn token(&self, req: &FakeRequest) -> FakeResponse {
        let form = req.form();
        let get = |k: &str| {
            form.iter()
                .find(|(a, _)| a == k)
                .map(|(_, v)| v.as_str())
                .unwrap_or("")
        };
        let c = &self.config.credentials;
        if get("grant_type") != "refresh_token" {
            return FakeResponse::json(
                400,
                r#"{"error":"unsupported_grant_type","error_description":"Invalid grant_type: "}"#,
            );
        }
        if get("client_id") != c.client_id || get("client_secret") != c.client_secret {
            return FakeResponse::json(
                401,
                r#"{"error":"invalid_client","error_description":"The OAuth client was not found."}"#,
            );
        }
        if get("refresh_token") != c.refresh_token {
            return FakeResponse::json(
                400,
                r#"{"error":"invalid_grant","error_description":"Token has been expired or revoked."}"#,
            );
        }
        let n = self.token_counter.fetch_add(1, Ordering::SeqCst);
        let token = format!("ya29.fake-access-{n}");
        self.tokens.lock().unwrap().insert(token.clone());
        FakeResponse::json(
            200,
            format!(
                r#"{{"access_token":"{token}","expires_in":3599,"scope":"https://www.googleapis.com/auth/adwords","token_type":"Bearer"}}"#
            ),
        )
    }

    fn error(
        &self,
        code: u16,
        status: &str,
        message: &str,
        error_code: Option<(&str, &str)>,
    ) -> FakeResponse {
        let details = match error_code {
            None => String::new(),
            Some((k, v)) => format!(
                r#","details":[{{"@type":"type.googleapis.com/google.ads.googleads.v24.errors.GoogleAdsFailure","errors":[{{"errorCode":{{"{k}":"{v}"}},"message":{}}}],"requestId":"fake-req"}}]"#,
                json_str(message)
            ),
        };
        FakeResponse::json(
            code,
            format!(
                r#"{{"error":{{"code":{code},"message":{},"status":"{status}"{details}}}}}"#,
                json_str(message)
            ),
        )
    }

    fn quota_error(&self) -> FakeResponse {
        self.quota_errors_sent.fetch_add(1, Ordering::SeqCst);
        let d = self.config.retry_delay_secs;
        FakeResponse::json(
            429,
            format!(
                r#"{{"error":{{"code":429,"message":"Resource has been exhausted (e.g. check quota).","status":"RESOURCE_EXHAUSTED","details":[{{"@type":"type.googleapis.com/google.ads.googleads.v24.errors.GoogleAdsFailure","errors":[{{"errorCode":{{"quotaError":"RESOURCE_EXHAUSTED"}},"message":"Too many requests. Retry in {d} seconds.","details":{{"quotaErrorDetails":{{"rateScope":"ACCOUNT","rateName":"Requests per account","retryDelay":"{d}s"}}}}}}],"requestId":"fake-quota"}}]}}}}"#
            ),
        )
    }

    fn search_stream(&self, req: &FakeRequest, customer: &str) -> FakeResponse {
        let auth_ok = req
            .header("authorization")
            .and_then(|a| a.strip_prefix("Bearer "))
            .is_some_and(|t| self.tokens.lock().unwrap().contains(t));
        if !auth_ok {
            return self.error(
                401,
                "UNAUTHENTICATED",
                "Request had invalid authentication credentials. Expected OAuth 2 access token.",
                Some(("authenticationError", "OAUTH_TOKEN_INVALID")),
            );
        }
        if req.header("developer-token") != Some(self.config.credentials.developer_token.as_str()) {
            return self.error(
                401,
                "UNAUTHENTICATED",
                "The developer token is not valid.",
                Some(("authenticationError", "DEVELOPER_TOKEN_INVALID")),
            );
        }
        if customer != self.config.customer_id
            || req.header("login-customer-id") != self.config.login_customer_id.as_deref()
        {
            return self.error(
                403,
                "PERMISSION_DENIED",
                "User doesn't have permission to access customer.",
                Some(("authorizationError", "USER_PERMISSION_DENIED")),
            );
        }
        let query = serde_json::from_slice::<serde_json::Value>(&req.body)
            .ok()
            .and_then(|v| v.get("query").and_then(|q| q.as_str()).map(str::to_owned));
        let Some(query) = query else {
            return self.error(
                400,
                "INVALID_ARGUMENT",
                "Request contains an invalid argument.",
                Some(("requestError", "BAD_REQUEST")),
            );
        };
        let resource = query
            .split(" FROM ")
            .nth(1)
            .and_then(|r| r.split_whitespace().next())
            .unwrap_or("");
        if resource == "customer" {
            let c = &self.config;
            return FakeResponse::json(
                200,
                format!(
                    r#"[{{"results":[{{"customer":{{"resourceName":"customers/{id}","id":"{id}","descriptiveName":"Fake shop","currencyCode":"{}","timeZone":"{}"}}}}],"fieldMask":"customer.id,customer.descriptiveName,customer.currencyCode,customer.timeZone","requestId":"fake-customer","queryResourceConsumption":"1"}}]"#,
                    c.currency,
                    c.timezone,
                    id = c.customer_id
                ),
            );
        }
        let level = match resource {
            "campaign" => Level::Campaign,
            "ad_group" => Level::AdGroup,
            "ad_group_ad" => Level::Ad,
            other => {
                return self.error(
                    400,
                    "INVALID_ARGUMENT",
                    &format!("Error in FROM: unsupported resource '{other}'."),
                    Some(("queryError", "INVALID_RESOURCE_NAME")),
                )
            }
        };
        let n = self.data_requests.fetch_add(1, Ordering::SeqCst) + 1;
        if self.config.quota_errors_at.contains(&n)
            || self.limiter.as_ref().is_some_and(|l| !l.admit())
            || self.throttle.take()
        {
            return self.quota_error();
        }
        let dates: Vec<NaiveDate> = query.split('\'').filter_map(wire::date).collect();
        let (Some(from), Some(to)) = (dates.first().copied(), dates.get(1).copied()) else {
            return self.error(
                400,
                "INVALID_ARGUMENT",
                "Error in WHERE: segments.date needs a finite range.",
                Some(("queryError", "EXPECTED_FILTERS_ON_DATE_RANGE")),
            );
        };
        let pmax_only = query.contains("campaign.advertising_channel_type = 'PERFORMANCE_MAX'");
        let rows = if self.drift() == Drift::NoRows {
            Vec::new()
        } else {
            self.served(level, pmax_only, from, to)
        };
        FakeResponse::json(200, self.render(&rows, level))
    }

    /// Renders rows as a searchStream body.
    pub fn render(&self, rows: &[wire::Row], level: Level) -> String {
        let cid = &self.config.customer_id;
        let drift = self.drift();
        let rows_key = if drift == Drift::ResultsRenamed {
            "rows"
        } else {
            "results"
        };
        let cost_key = if drift == Drift::CostRenamed {
            "costAmount"
        } else {
            "costMicros"
        };
        let no_metrics = rows.first().map(|r| r.campaign);
        let mut s = String::with_capacity(rows.len() * 520 + 64);
        s.push('[');
        let mut corrupted = false;
        for (b, batch) in rows.chunks(self.config.batch_rows.max(1)).enumerate() {
            if b > 0 {
                s.push(',');
            }
            let _ = write!(s, r#"{{"{rows_key}":["#);
            for (i, r) in batch.iter().enumerate() {
                if i > 0 {
                    s.push(',');
                }
                let c = r.campaign;
                let kind = channel_type(c);
                let _ = write!(
                    s,
                    r#"{{"segments":{{"date":"{}"}},"campaign":{{"resourceName":"customers/{cid}/campaigns/{id}","id":"{id}","name":{},"advertisingChannelType":"{kind}"}}"#,
                    r.day,
                    json_str(&wire::campaign_name(c)),
                    id = r.campaign_id()
                );
                if let Some(g) = r.ad_group {
                    let _ = write!(
                        s,
                        r#","adGroup":{{"resourceName":"customers/{cid}/adGroups/{id}","id":"{id}","name":{}}}"#,
                        json_str(&wire::ad_group_name(c, g)),
                        id = wire::ad_group_id(c, g)
                    );
                }
                if let (Some(g), Some(a), Level::Ad) = (r.ad_group, r.ad, level) {
                    let _ = write!(
                        s,
                        r#","adGroupAd":{{"resourceName":"customers/{cid}/adGroupAds/{}~{id}","ad":{{"resourceName":"customers/{cid}/ads/{id}","id":"{id}"}}}}"#,
                        wire::ad_group_id(c, g),
                        id = wire::ad_id(c, g, a)
                    );
                }
                if drift == Drift::MetricsMissing && Some(c) == no_metrics {
                    s.push('}');
                    continue;
                }
                // proto3 JSON: fields at their default are left out.
                s.push_str(r#","metrics":{"#);
                let mut fields: Vec<String> = Vec::with_capacity(5);
                let m = &r.m;
                if m.impressions > 0 {
                    fields.push(format!(r#""impressions":"{}""#, m.impressions));
                }
                if m.clicks > 0 {
                    fields.push(format!(r#""clicks":"{}""#, m.clicks));
                }
                if Some(r.day) == self.config.corrupt_day && !corrupted {
                    corrupted = true;
                    fields.push(r#""costMicros":"12x5""#.to_owned());
                } else if m.cost_micros > 0 && drift != Drift::CostMissing {
                    fields.push(format!(r#""{cost_key}":"{}""#, m.cost_micros));
                }
                if m.conversion_halves > 0 {
                    fields.push(format!(r#""conversions":{}"#, m.conversions()));
                }
                if m.value_cents > 0 {
                    fields.push(format!(r#""conversionsValue":{}"#, m.value()));
                }
                s.push_str(&fields.join(","));
                s.push_str("}}");
            }
            let _ = write!(
                s,
                r#"],"fieldMask":"segments.date,campaign.id,campaign.name,metrics.impressions,metrics.clicks,metrics.costMicros,metrics.conversions,metrics.conversionsValue","requestId":"fake-{b}"}}"#
            );
        }
        if rows.is_empty() {
            // proto3 JSON leaves an empty `results` out.
            s.push_str(r#"{"fieldMask":"segments.date","requestId":"fake-empty"}"#);
        }
        s.push(']');
        s
    }
}

impl wire::Handle for GoogleFake {
    fn handle(&self, req: &FakeRequest) -> FakeResponse {
        if req.method == "POST" && req.path == "/token" {
            return self.token(req);
        }
        // /{version}/customers/{id}/googleAds:searchStream
        let parts: Vec<&str> = req.path.trim_start_matches('/').split('/').collect();
        match (req.method.as_str(), parts.as_slice()) {
            ("POST", [version, "customers", id, "googleAds:searchStream"])
                if version.starts_with('v') =>
            {
                self.search_stream(req, id)
            }
            _ => self.error(
                404,
                "NOT_FOUND",
                &format!("No route for {} {}", req.method, req.path),
                None,
            ),
        }
    }
}

/// `campaign.advertisingChannelType` of campaign `c` (one in five is
/// Performance Max).
pub fn channel_type(c: u32) -> &'static str {
    ["SEARCH", "DISPLAY", "VIDEO", "SHOPPING", "PERFORMANCE_MAX"][(c % 5) as usize]
}

/// True for the Performance Max campaigns, which have no ad groups.
pub fn is_performance_max(c: u32) -> bool {
    channel_type(c) == "PERFORMANCE_MAX"
}

/// The axum router of the fake (token endpoint and searchStream).
pub fn router(fake: Arc<GoogleFake>) -> axum::Router {
    wire::router(fake)
}

/// An in-process bridge for `FakeHost::handler`: plays the daemon's part
/// (OAuth2 refresh at `/token`, `Authorization` and `developer-token`
/// headers from `creds`) and answers from the fake.
pub fn bridge(
    fake: Arc<GoogleFake>,
    creds: Credentials,
) -> impl FnMut(&plugin_api::protocol::HttpRequest) -> plugin_api::testing::Reply {
    use wire::Handle;
    let mut token: Option<String> = None;
    move |req| {
        let mut r = FakeRequest::from_plugin(req);
        if token.is_none() {
            let form = url::form_urlencoded::Serializer::new(String::new())
                .append_pair("grant_type", "refresh_token")
                .append_pair("client_id", &creds.client_id)
                .append_pair("client_secret", &creds.client_secret)
                .append_pair("refresh_token", &creds.refresh_token)
                .finish();
            let answer = fake.handle(&FakeRequest {
                method: "POST".into(),
                path: "/token".into(),
                body: form.into_bytes(),
                ..FakeRequest::default()
            });
            if answer.status != 200 {
                // The host would fail the session; hand the refusal to the plugin.
                return answer.into_reply();
            }
            let v: serde_json::Value = serde_json::from_slice(&answer.body).expect("token JSON");
            token = v["access_token"].as_str().map(str::to_owned);
        }
        r.headers.insert(
            "authorization".into(),
            format!("Bearer {}", token.as_deref().unwrap_or("")),
        );
        r.headers
            .insert("developer-token".into(), creds.developer_token.clone());
        fake.handle(&r).into_reply()
    }
}

/// Totals of the fake's truth, for comparing with a sync's records.
pub fn truth_totals(
    fake: &GoogleFake,
    level: Level,
    from: NaiveDate,
    to: NaiveDate,
) -> wire::Totals {
    wire::truth_totals(&fake.truth(level, from, to))
}

/// Exact decimal helper for tests.
pub fn dec(s: &str) -> Decimal {
    s.parse().expect("decimal literal")
}
