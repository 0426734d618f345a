//! Loopback fake of Everflow's Network API (`/v1`).
//!
//! Faithful to what the connector relies on: `X-Eflow-API-Key` auth (401
//! with `{"error": ...}` without it or for an unknown key; a key of another
//! family, [`EverflowFake::affiliate_key`], reads `/v1/meta/*` and gets 403
//! on `/v1/networks/*`); `GET /v1/meta/timezones` (UTC, New York, Los
//! Angeles, Berlin); `POST /v1/networks/reporting/conversions` with
//! `page`/`page_size` in the query string (1-based, at most 2000) and
//! `from`/`to`/`timezone_id` in the body (400 for an unknown zone, a span over
//! a year or a start older than 365 days); `{conversions, paging}` answers
//! with money as JSON numbers and epoch-second timestamps; base conversions
//! (`event: "Base"`) only with `show_conversions: true` and event rows
//! (`is_event`, `event` named) only with `show_events: true`, as the real API
//! filters them; the untyped flags `is_event`/`is_scrub` as JSON bools, `1`/`0`
//! or `"1"`/`"0"`, by row;
//! `X-RateLimit-Limit`/`X-RateLimit-Remaining` on every answer, with a real
//! per-window request budget (429 until the window resets, no `Retry-After`)
//! plus 429s on demand.
//!
//! Data comes from a seed ([`Params`]); [`EverflowFake::truth`] is the ground
//! truth of a UTC window. Tests change the world between pulls with
//! [`EverflowFake::set_status`], [`EverflowFake::set_payout`],
//! [`EverflowFake::reverse`] and [`EverflowFake::corrupt`], and serve API
//! drift (a renamed key, an id as a float, an amount sent empty, rows left
//! out of a page) with [`EverflowFake::drift`] (QA35d).

use super::affiliate::{self, param, split_url, FakeApi, Shared, Throttle, Truth};
use chrono::{DateTime, Duration, NaiveDate, NaiveDateTime, NaiveTime, TimeZone, Utc};
use plugin_api::protocol::HttpRequest;
use plugin_api::rust_decimal::prelude::ToPrimitive;
use plugin_api::rust_decimal::Decimal;
use plugin_api::testing::Reply;
use plugin_api::ConversionStatus;
use rand::{Rng, SeedableRng};
use serde_json::{json, Value};
use std::time::{Duration as StdDuration, Instant};

/// What to generate.
#[derive(Debug, Clone)]
pub struct Params {
    /// RNG seed.
    pub seed: u64,
    /// Number of conversions.
    pub conversions: usize,
    /// Number of affiliates.
    pub affiliates: u64,
    /// First conversion day (UTC).
    pub from: NaiveDate,
    /// Last conversion day (UTC).
    pub to: NaiveDate,
    /// The network API key accepted.
    pub api_key: String,
}

impl Params {
    /// A small world in November 2026.
    pub fn small(seed: u64, conversions: usize) -> Params {
        Params {
            seed,
            conversions,
            affiliates: 9,
            from: NaiveDate::from_ymd_opt(2026, 10, 1).unwrap(),
            to: NaiveDate::from_ymd_opt(2026, 11, 27).unwrap(),
            api_key: "ef-network-key".into(),
        }
    }
}

/// One conversion as the fake stores it.
#[derive(Debug, Clone)]
pub struct Row {
    pub id: String,
    pub at: DateTime<Utc>,
    pub affiliate: u64,
    pub offer: u64,
    pub status: &'static str,
    pub is_scrub: bool,
    pub payout: Decimal,
    pub revenue: Decimal,
    pub sale_amount: Decimal,
    pub currency: &'static str,
    pub order_id: String,
    /// Everflow's click id (`transaction_id`), one per click.
    pub click_id: String,
    pub clicked_at: DateTime<Utc>,
    /// `None` for a base conversion, else the event's name (`is_event`).
    pub event: Option<&'static str>,
}

/// Ways Everflow's answers could drift from the reference, served on
/// demand so that tests see the connector notice them (QA35d). The default
/// serves none.
#[derive(Debug, Clone, Default)]
pub struct Drift {
    /// The rows under this key instead of `conversions` (`paging` as
    /// before).
    pub records_key: Option<&'static str>,
    /// The affiliate's and the offer's ids as JSON floats (`11.0`) instead
    /// of integers.
    pub float_ids: bool,
    /// Fields of one conversion sent as another value: `(conversion id,
    /// dotted path, value)`, e.g. `payout` as `null`, or
    /// `relationship.affiliate` as an array. A path that does not exist is
    /// added.
    pub fields: Vec<(String, &'static str, Value)>,
    /// Conversions left out of every answer while `paging.total_count`
    /// still counts them (their page comes back short).
    pub left_out: Vec<String>,
}

/// Sets the dotted `path` of `v` to `value` (adding the last key if needed).
pub(crate) fn set_path(v: &mut Value, path: &str, value: Value) {
    let (parent, key) = match path.rsplit_once('.') {
        Some((p, k)) => (format!("/{}", p.replace('.', "/")), k),
        None => (String::new(), path),
    };
    if let Some(Value::Object(o)) = v.pointer_mut(&parent) {
        o.insert(key.to_owned(), value);
    }
}

/// The fake's state.
#[derive(Debug)]
pub struct EverflowFake {
    params: Params,
    rows: Vec<Row>,
    /// "Today" for the 365-day rule.
    pub now: DateTime<Utc>,
    /// 429 injection for report requests.
    pub throttle: Throttle,
    /// Requests allowed per rate-limit window.
    pub limit_per_window: u32,
    /// Length of the rate-limit window (30 s on the real API).
    pub window: StdDuration,
    window_start: Option<Instant>,
    used: u32,
    corrupt: Option<(String, &'static str)>,
    /// A key of another family (an affiliate's): it reads
    /// `/v1/meta/timezones` like any key, and gets 403 on `/v1/networks/*`.
    pub affiliate_key: String,
    /// API drift served (none by default).
    pub drift: Drift,
}

/// The time zones `/v1/meta/timezones` lists. 67 (UTC) and 80 (New York)
/// are the ids third-party scripts hard-code; the others are the fake's.
const TIMEZONES: &[(i64, &str, &str)] = &[
    (80, "America/New_York", "(UTC-05:00) Eastern Time"),
    (84, "America/Los_Angeles", "(UTC-08:00) Pacific Time"),
    (67, "UTC", "(UTC) Coordinated Universal Time"),
    (90, "Europe/Berlin", "(UTC+01:00) Berlin"),
];

fn day_start(d: NaiveDate) -> DateTime<Utc> {
    d.and_time(NaiveTime::MIN).and_utc()
}

impl EverflowFake {
    /// A fake serving exactly these conversions (the demo's story).
    pub fn from_rows(params: Params, rows: Vec<Row>) -> EverflowFake {
        let mut fake = EverflowFake::new(Params {
            conversions: 0,
            ..params
        });
        fake.rows = rows;
        fake
    }

    /// Generates the world.
    pub fn new(params: Params) -> EverflowFake {
        let mut rng = rand::rngs::StdRng::seed_from_u64(params.seed);
        let span = (day_start(params.to) + Duration::days(1) - day_start(params.from))
            .num_seconds()
            .max(1);
        let statuses = ["approved", "approved", "pending", "rejected", "invalid"];
        let rows = (0..params.conversions)
            .map(|i| {
                let status = statuses[rng.gen_range(0..statuses.len())];
                let sale = Decimal::new(rng.gen_range(1_000..80_000), 2);
                let payout = (sale * Decimal::new(rng.gen_range(5..20), 2)).round_dp(2);
                let at = day_start(params.from) + Duration::seconds(rng.gen_range(0..span));
                Row {
                    id: format!("{:032x}", (params.seed as u128) << 64 | i as u128),
                    at,
                    affiliate: 100 + rng.gen_range(0..params.affiliates),
                    offer: 10 + rng.gen_range(0..4),
                    status,
                    is_scrub: status == "rejected" && i % 3 == 0,
                    payout,
                    revenue: (payout * Decimal::new(15, 1)).round_dp(2),
                    sale_amount: if i % 11 == 0 { Decimal::ZERO } else { sale },
                    currency: if i % 8 == 7 { "EUR" } else { "USD" },
                    order_id: format!("EF-{}", 700_000 + i),
                    click_id: format!("{:032x}", (params.seed as u128 + 1) << 64 | i as u128),
                    clicked_at: at - Duration::minutes(rng.gen_range(1..600)),
                    // Every tenth conversion is an event of an earlier click.
                    event: (i % 10 == 9).then_some("Upsell"),
                }
            })
            .collect();
        EverflowFake {
            now: day_start(params.to) + Duration::days(1),
            params,
            rows,
            throttle: Throttle::default(),
            limit_per_window: 1_000_000,
            window: StdDuration::from_secs(30),
            window_start: None,
            used: 0,
            corrupt: None,
            affiliate_key: "ef-affiliate-key".into(),
            drift: Drift::default(),
        }
    }

    /// All rows.
    pub fn rows(&self) -> &[Row] {
        &self.rows
    }

    /// The canonical status, as the connector documents it.
    pub fn canonical(r: &Row) -> ConversionStatus {
        match (r.status, r.is_scrub) {
            ("approved", _) => ConversionStatus::Approved,
            ("pending", _) => ConversionStatus::Pending,
            ("rejected", false) => ConversionStatus::Reversed,
            _ => ConversionStatus::Rejected,
        }
    }

    /// Ground truth of the conversions in the UTC days `from..=to`.
    pub fn truth(&self, from: NaiveDate, to: NaiveDate) -> Truth {
        let (s, e) = (day_start(from), day_start(to) + Duration::days(1));
        let mut t = Truth::default();
        for r in self.rows.iter().filter(|r| r.at >= s && r.at < e) {
            let sale = (!r.sale_amount.is_zero()).then_some(r.sale_amount);
            t.add(
                &r.affiliate.to_string(),
                Self::canonical(r),
                Some(r.payout),
                sale,
            );
        }
        t
    }

    fn row_mut(&mut self, id: &str) -> &mut Row {
        self.rows
            .iter_mut()
            .find(|r| r.id == id)
            .unwrap_or_else(|| panic!("no conversion {id}"))
    }

    /// Changes a status (`approved`, `pending`, `rejected`, `invalid`).
    pub fn set_status(&mut self, id: &str, status: &'static str) {
        self.row_mut(id).status = status;
    }

    /// Changes a payout.
    pub fn set_payout(&mut self, id: &str, payout: Decimal) {
        self.row_mut(id).payout = payout;
    }

    /// Rejects a conversion manually (after approval: a reversal).
    pub fn reverse(&mut self, id: &str) {
        let r = self.row_mut(id);
        r.status = "rejected";
        r.is_scrub = false;
    }

    /// Serves `field` of conversion `id` as garbage from now on.
    pub fn corrupt(&mut self, id: &str, field: &'static str) {
        self.corrupt = Some((id.to_owned(), field));
    }

    fn render(&self, r: &Row) -> Value {
        let num = money;
        let id = |n: u64| {
            if self.drift.float_ids {
                json!(n as f64)
            } else {
                json!(n)
            }
        };
        let mut v = json!({
            "conversion_id": r.id,
            "conversion_unix_timestamp": r.at.timestamp(),
            "click_unix_timestamp": r.clicked_at.timestamp(),
            "transaction_id": r.click_id,
            "status": r.status,
            "payout": num(r.payout),
            "revenue": num(r.revenue),
            "sale_amount": num(r.sale_amount),
            "payout_type": "cpa", "revenue_type": "rpa",
            "currency_id": r.currency,
            "order_id": r.order_id,
            "coupon_code": "",
            "sub1": format!("sub-{}", r.affiliate), "sub2": "", "sub3": "", "sub4": "", "sub5": "",
            "source_id": "", "adv1": "", "adv2": "", "adv3": "", "adv4": "", "adv5": "",
            "is_event": Self::flag(&r.id, r.event.is_some()),
            "is_scrub": Self::flag(&r.id, r.is_scrub),
            "is_view_through": Self::flag(&r.id, false),
            "event": r.event.unwrap_or("Base"),
            "error_code": 0, "error_message": "", "notes": "",
            "query_parameters": {"utm_source": "partner", "utm_medium": "affiliate"},
            "relationship": {
                "offer": {"network_offer_id": id(r.offer), "network_id": 1, "name": format!("Offer {}", r.offer), "offer_status": "active"},
                "advertiser": {"network_advertiser_id": 3, "network_id": 1, "name": "Shop"},
                "affiliate": {"network_affiliate_id": id(r.affiliate), "network_id": 1, "name": format!("Affiliate {}", r.affiliate), "account_status": "active"}
            }
        });
        if let Some((id, field)) = &self.corrupt {
            if *id == r.id {
                v[*field] = json!("twelve");
            }
        }
        for (id, path, value) in &self.drift.fields {
            if *id == r.id {
                set_path(&mut v, path, value.clone());
            }
        }
        v
    }

    /// A flag in one of the shapes the reference allows: it gives `is_event`,
    /// `is_scrub` and `is_view_through` no type, so by the conversion id's
    /// last digit the fake sends a JSON bool, `1`/`0`, or `"1"`/`"0"`.
    fn flag(id: &str, on: bool) -> Value {
        match id.bytes().last().unwrap_or(0) % 3 {
            0 => json!(on),
            1 => json!(u8::from(on)),
            _ => json!(if on { "1" } else { "0" }),
        }
    }

    fn error(status: u16, message: &str, headers: &[(&str, String)]) -> Reply {
        affiliate::json(status, &json!({ "error": message }), headers)
    }

    /// Counts a request against the window; `None` if it is over budget.
    fn budget(&mut self) -> Option<u32> {
        let now = Instant::now();
        match self.window_start {
            Some(s) if now.duration_since(s) < self.window => {}
            _ => {
                self.window_start = Some(now);
                self.used = 0;
            }
        }
        if self.used >= self.limit_per_window {
            return None;
        }
        self.used += 1;
        Some(self.limit_per_window - self.used)
    }

    fn timezone(id: i64) -> Option<chrono_tz::Tz> {
        TIMEZONES
            .iter()
            .find(|(i, _, _)| *i == id)
            .and_then(|(_, name, _)| name.parse().ok())
    }

    fn report(&self, q: &[(String, String)], body: &Value) -> Result<Value, String> {
        let page = param(q, "page")
            .unwrap_or("1")
            .parse::<usize>()
            .map_err(|_| "page must be an integer")?;
        let size = param(q, "page_size")
            .unwrap_or("50")
            .parse::<usize>()
            .map_err(|_| "page_size must be an integer")?;
        if page == 0 || size == 0 || size > 2000 {
            return Err("page must be >= 1 and page_size between 1 and 2000".into());
        }
        let tz = body
            .get("timezone_id")
            .and_then(Value::as_i64)
            .and_then(Self::timezone)
            .ok_or("timezone_id is required and must be a valid time zone id")?;
        let when = |k: &str| -> Result<DateTime<Utc>, String> {
            let s = body
                .get(k)
                .and_then(Value::as_str)
                .ok_or(format!("{k} is required"))?;
            let naive = NaiveDateTime::parse_from_str(s, "%Y-%m-%d %H:%M:%S")
                .or_else(|_| {
                    NaiveDate::parse_from_str(s, "%Y-%m-%d").map(|d| d.and_time(NaiveTime::MIN))
                })
                .map_err(|_| format!("{k} must be YYYY-MM-DD or YYYY-MM-DD HH:mm:ss"))?;
            tz.from_local_datetime(&naive)
                .earliest()
                .map(|d| d.with_timezone(&Utc))
                .ok_or(format!("{k} does not exist in the time zone"))
        };
        let (from, to) = (when("from")?, when("to")?);
        if to < from || to - from > Duration::days(366) {
            return Err("the date range must be positive and at most one year".into());
        }
        if from < self.now - Duration::days(365) {
            return Err("only the last 365 days can be queried".into());
        }
        let shown = |k: &str| body.get(k).and_then(Value::as_bool).unwrap_or(false);
        let (base, events) = (shown("show_conversions"), shown("show_events"));
        let mut rows: Vec<&Row> = self
            .rows
            .iter()
            .filter(|r| r.at >= from && r.at <= to)
            .filter(|r| if r.event.is_some() { events } else { base })
            .collect();
        rows.sort_by(|a, b| b.at.cmp(&a.at).then(a.id.cmp(&b.id)));
        let total = rows.len();
        let conversions: Vec<Value> = rows
            .into_iter()
            .skip((page - 1) * size)
            .take(size)
            .filter(|r| !self.drift.left_out.contains(&r.id))
            .map(|r| self.render(r))
            .collect();
        let mut answer = json!({
            "conversions": conversions,
            "paging": {"page": page, "page_size": size, "total_count": total},
        });
        if let Some(key) = self.drift.records_key {
            let rows = answer["conversions"].take();
            let o = answer.as_object_mut().expect("an object");
            o.remove("conversions");
            o.insert(key.to_owned(), rows);
        }
        Ok(answer)
    }
}

impl FakeApi for EverflowFake {
    fn handle(&mut self, req: &HttpRequest) -> Reply {
        let (path, q) = split_url(&req.url);
        let network = match req.headers.get("x-eflow-api-key") {
            None => return Self::error(401, "No Authentication Method Found", &[]),
            Some(k) if *k == self.params.api_key => true,
            Some(k) if *k == self.affiliate_key => false,
            Some(_) => return Self::error(401, "Invalid API key", &[]),
        };
        let remaining = match self.budget() {
            Some(r) => r,
            None => {
                return Self::error(
                    429,
                    "rate limit exceeded",
                    &[
                        ("x-ratelimit-limit", self.limit_per_window.to_string()),
                        ("x-ratelimit-remaining", "0".into()),
                    ],
                )
            }
        };
        let headers = [
            ("x-ratelimit-limit", self.limit_per_window.to_string()),
            ("x-ratelimit-remaining", remaining.to_string()),
        ];
        if !network && !path.starts_with("/v1/meta/") {
            return Self::error(403, "This API key cannot access this resource", &headers);
        }
        match (req.method.as_str(), path.as_str()) {
            ("GET", "/v1/meta/timezones") => affiliate::json(
                200,
                &json!({"timezones": TIMEZONES
                    .iter()
                    .map(|(id, name, label)| json!({"timezone_id": id, "timezone": name, "label": label}))
                    .collect::<Vec<_>>()}),
                &headers,
            ),
            ("POST", "/v1/networks/reporting/conversions") => {
                if self.throttle.refuse() {
                    return Self::error(
                        429,
                        "rate limit exceeded",
                        &[
                            ("x-ratelimit-limit", self.limit_per_window.to_string()),
                            ("x-ratelimit-remaining", "0".into()),
                        ],
                    );
                }
                let body: Value = match req.body.as_deref().map(serde_json::from_str) {
                    Some(Ok(v)) => v,
                    _ => return Self::error(400, "invalid JSON body", &headers),
                };
                match self.report(&q, &body) {
                    Ok(v) => {
                        let mut reply = affiliate::json(200, &v, &headers);
                        reply.body = exact_numbers(&reply.body);
                        reply
                    }
                    Err(e) => Self::error(400, &e, &headers),
                }
            }
            (_, p) if p.starts_with("/v1/affiliates/") || p.starts_with("/v1/advertisers/") => {
                Self::error(403, "This API key cannot access this resource", &headers)
            }
            _ => Self::error(404, "Not found", &headers),
        }
    }
}

/// Quotes around an amount `f64` cannot carry (see [`money`]), removed from
/// the body by [`exact_numbers`].
const EXACT_OPEN: &str = "\"@@number:";
const EXACT_CLOSE: &str = ":number@@\"";

/// An amount as Everflow sends it, a JSON number: through `f64` as a real
/// serializer would when it has at most 15 significant digits, else as its
/// exact literal (QA6 F4: a connector must read a long literal exactly),
/// which a `Value` cannot hold: it is marked here and unquoted in the body.
fn money(d: Decimal) -> Value {
    if d.mantissa().unsigned_abs() < 10u128.pow(15) {
        json!(d.to_f64().unwrap_or_default())
    } else {
        json!(format!("@@number:{d}:number@@"))
    }
}

/// The body with each amount marked by [`money`] as a bare number literal.
fn exact_numbers(body: &[u8]) -> Vec<u8> {
    String::from_utf8_lossy(body)
        .replace(EXACT_OPEN, "")
        .replace(EXACT_CLOSE, "")
        .into_bytes()
}

/// Serves the fake over HTTP.
pub fn router(state: Shared<EverflowFake>) -> axum::Router {
    affiliate::router(state)
}
