//! Loopback fake of ExampleNet, the template connector's API (documented in
//! `plugins/example/src/lib.rs`).
//!
//! - [`ExampleData::generate`]: seeded conversions (the ground truth) over a
//!   date range; some are later reversed and also listed by `/v1/reversals`.
//! - [`router`]: `GET /v1/me`, `/v1/conversions`, `/v1/reversals` with bearer
//!   auth (401 echoing the presented token, like careless real APIs do),
//!   cursor paging (`limit`, `cursor`), and faults on demand through
//!   [`Faults`]: 429s with `Retry-After`, 500s then success, slow responses,
//!   garbage, truncated and oversize bodies.

use axum::extract::{Query, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use axum::Router;
use chrono::{Duration, NaiveDate, NaiveTime};
use rand::{Rng, SeedableRng};
use serde::Deserialize;
use serde_json::{json, Value};
use std::collections::HashMap;
use std::sync::atomic::{AtomicU32, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};

/// The generated data.
#[derive(Debug, Clone)]
pub struct ExampleData {
    /// All conversion rows, ordered by `created`.
    pub conversions: Vec<Value>,
}

impl ExampleData {
    /// `n` conversions spread over `from..=to` (UTC days), from `seed`.
    /// About one in ten is reversed two days after it was created.
    pub fn generate(seed: u64, n: usize, from: NaiveDate, to: NaiveDate) -> Self {
        let mut rng = rand::rngs::StdRng::seed_from_u64(seed);
        let days = (to - from).num_days().max(0) + 1;
        let mut rows: Vec<Value> = (0..n)
            .map(|i| {
                let day = from + Duration::days(rng.gen_range(0..days));
                let at = day.and_time(NaiveTime::MIN).and_utc()
                    + Duration::seconds(rng.gen_range(0..86_400));
                let cents: i64 = rng.gen_range(1_000..100_000);
                let reversed = rng.gen_range(0..10) == 0;
                let currency = if rng.gen_range(0..4) == 0 { "eur" } else { "USD" };
                json!({
                    "id": format!("cv-{seed}-{i}"),
                    "order_ref": format!("ORD-{}", 10_000 + i),
                    "click": format!("clk{i:06}"),
                    "clicked_at": (at - Duration::minutes(30)).to_rfc3339(),
                    "partner": { "id": format!("p{}", i % 7), "name": format!("Partner {}", i % 7) },
                    "type": "sale",
                    "created": at.to_rfc3339(),
                    // Amounts as strings, commissions as numbers, like the docs say.
                    "amount": format!("{}.{:02}", cents / 100, cents % 100),
                    "commission": serde_json::from_str::<Value>(&format!("{}.{:02}", cents / 1000, (cents / 10) % 100)).unwrap_or(Value::Null),
                    "currency": currency,
                    "state": if reversed { "reversed" } else { "approved" },
                    "updated": if reversed { (at + Duration::days(2)).to_rfc3339() } else { at.to_rfc3339() },
                })
            })
            .collect();
        rows.sort_by(|a, b| {
            a["created"]
                .as_str()
                .cmp(&b["created"].as_str())
                .then(a["id"].as_str().cmp(&b["id"].as_str()))
        });
        ExampleData { conversions: rows }
    }

    /// Conversions created in `from..=to`.
    pub fn created_in(&self, from: NaiveDate, to: NaiveDate) -> Vec<&Value> {
        self.conversions
            .iter()
            .filter(|r| in_days(&r["created"], from, to))
            .collect()
    }

    /// Reversed conversions whose state changed in `from..=to`.
    pub fn reversed_in(&self, from: NaiveDate, to: NaiveDate) -> Vec<&Value> {
        self.conversions
            .iter()
            .filter(|r| r["state"] == "reversed" && in_days(&r["updated"], from, to))
            .collect()
    }
}

fn in_days(v: &Value, from: NaiveDate, to: NaiveDate) -> bool {
    v.as_str()
        .and_then(|s| chrono::DateTime::parse_from_rfc3339(s).ok())
        .map(|d| {
            let day = d.naive_utc().date();
            day >= from && day <= to
        })
        .unwrap_or(false)
}

/// A body fault for data pages.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum BodyFault {
    /// Normal JSON.
    #[default]
    None,
    /// A 200 with an HTML error page.
    Garbage,
    /// A 200 whose JSON is cut in half.
    Truncated,
    /// A 200 with this many bytes of padding JSON.
    Oversize(usize),
}

/// Faults to inject, changeable while the server runs.
#[derive(Debug, Default)]
pub struct Faults {
    /// The next this-many data requests get a 429.
    pub throttle: AtomicU32,
    /// `Retry-After` seconds sent with a 429.
    pub retry_after_secs: AtomicU32,
    /// The next this-many data requests get a 500.
    pub fail_500: AtomicU32,
    /// Delay before answering a data request, in milliseconds.
    pub slow_ms: AtomicU64,
    /// Body fault of data pages.
    pub body: Mutex<BodyFault>,
}

/// The fake's state.
#[derive(Debug)]
pub struct ExampleApi {
    /// Ground truth.
    pub data: ExampleData,
    /// The API key that is accepted.
    pub api_key: String,
    /// Fault switches.
    pub faults: Faults,
    /// Requests received.
    pub requests: AtomicU64,
    /// `Authorization` headers seen, in order.
    pub auth_seen: Mutex<Vec<String>>,
}

impl ExampleApi {
    /// A fake with this data and key.
    pub fn new(data: ExampleData, api_key: &str) -> Arc<Self> {
        Arc::new(ExampleApi {
            data,
            api_key: api_key.to_owned(),
            faults: Faults::default(),
            requests: AtomicU64::new(0),
            auth_seen: Mutex::new(Vec::new()),
        })
    }
}

/// The router.
pub fn router(api: Arc<ExampleApi>) -> Router {
    Router::new()
        .route("/v1/me", get(me))
        .route("/v1/conversions", get(conversions))
        .route("/v1/reversals", get(reversals))
        .with_state(api)
}

fn authorise(api: &ExampleApi, headers: &HeaderMap) -> Result<(), Box<Response>> {
    api.requests.fetch_add(1, Ordering::SeqCst);
    let auth = headers
        .get("authorization")
        .and_then(|v| v.to_str().ok())
        .unwrap_or("")
        .to_owned();
    if let Ok(mut seen) = api.auth_seen.lock() {
        seen.push(auth.clone());
    }
    if auth == format!("Bearer {}", api.api_key) {
        Ok(())
    } else {
        Err(Box::new(
            (
                StatusCode::UNAUTHORIZED,
                Json(json!({ "error": format!("invalid credentials: {auth}") })),
            )
                .into_response(),
        ))
    }
}

use axum::Json;

async fn me(State(api): State<Arc<ExampleApi>>, headers: HeaderMap) -> Response {
    if let Err(r) = authorise(&api, &headers) {
        return *r;
    }
    Json(json!({ "account": "acct-1" })).into_response()
}

#[derive(Debug, Deserialize)]
struct PageQuery {
    start: NaiveDate,
    end: NaiveDate,
    limit: usize,
    #[serde(default)]
    cursor: Option<String>,
}

async fn conversions(
    State(api): State<Arc<ExampleApi>>,
    headers: HeaderMap,
    Query(q): Query<PageQuery>,
) -> Response {
    page(&api, &headers, &q, |d| d.created_in(q.start, q.end)).await
}

async fn reversals(
    State(api): State<Arc<ExampleApi>>,
    headers: HeaderMap,
    Query(q): Query<PageQuery>,
) -> Response {
    page(&api, &headers, &q, |d| d.reversed_in(q.start, q.end)).await
}

fn take_one(counter: &AtomicU32) -> bool {
    counter
        .fetch_update(Ordering::SeqCst, Ordering::SeqCst, |n| n.checked_sub(1))
        .is_ok()
}

async fn page<'a>(
    api: &'a ExampleApi,
    headers: &HeaderMap,
    q: &PageQuery,
    rows: impl FnOnce(&'a ExampleData) -> Vec<&'a Value>,
) -> Response {
    if let Err(r) = authorise(api, headers) {
        return *r;
    }
    let slow = api.faults.slow_ms.load(Ordering::SeqCst);
    if slow > 0 {
        tokio::time::sleep(std::time::Duration::from_millis(slow)).await;
    }
    if take_one(&api.faults.throttle) {
        let secs = api.faults.retry_after_secs.load(Ordering::SeqCst);
        return (
            StatusCode::TOO_MANY_REQUESTS,
            [("retry-after", secs.to_string())],
            Json(json!({ "error": "slow down" })),
        )
            .into_response();
    }
    if take_one(&api.faults.fail_500) {
        return (
            StatusCode::INTERNAL_SERVER_ERROR,
            Json(json!({ "error": "internal" })),
        )
            .into_response();
    }
    let all = rows(&api.data);
    let offset: usize = q
        .cursor
        .as_deref()
        .and_then(|c| c.parse().ok())
        .unwrap_or(0);
    let limit = q.limit.clamp(1, 1000);
    let slice: Vec<&Value> = all.iter().skip(offset).take(limit).copied().collect();
    let next = (offset + limit < all.len()).then(|| (offset + limit).to_string());
    let body = json!({ "data": slice, "next": next }).to_string();
    let fault = api.faults.body.lock().map(|b| *b).unwrap_or_default();
    let body = match fault {
        BodyFault::None => body,
        BodyFault::Garbage => "<html><body>502 Bad Gateway</body></html>".to_owned(),
        BodyFault::Truncated => body[..body.len() / 2].to_owned(),
        BodyFault::Oversize(n) => {
            let pad: HashMap<&str, String> = HashMap::from([("pad", "x".repeat(n))]);
            json!({ "data": [], "next": null, "pad": pad }).to_string()
        }
    };
    (StatusCode::OK, [("content-type", "application/json")], body).into_response()
}
