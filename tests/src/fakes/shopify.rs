//! Loopback fake of Shopify's Admin REST API (2024-10), orders only.
//!
//! Faithful to what the orders connector relies on:
//! - `GET /admin/api/2024-10/orders.json` with `status` (default `open`, as
//!   Shopify), `updated_at_min` / `updated_at_max`, `limit` (≤ 250, default 50);
//!   cursor paging by the `Link` header (`rel="next"` / `rel="previous"`,
//!   opaque base64 `page_info` that carries the filters; any filter beside
//!   `limit`/`fields` together with `page_info` is a 400, as on Shopify);
//! - `GET /admin/api/2024-10/shop.json` for credential checks;
//! - `X-Shopify-Access-Token` auth (401 with Shopify's error body);
//! - throttling on demand: 429 with `Retry-After: 1.0` and
//!   `X-Shopify-Shop-Api-Call-Limit: 40/40`; the call-limit header of other
//!   answers set on demand ([`ShopifyFake::set_call_limit`]);
//! - cursors that expire on demand ([`ShopifyFake::expire_cursors`]): 400
//!   `{"errors":{"page_info":["Invalid value."]}}`, as Shopify answers one;
//! - orders with money as decimal strings, `-05:00` offsets, taxes included
//!   or not, shipping lines with tax, discount codes, landing-site click ids
//!   and UTM, note attributes, customers with `orders_count`, refunds with
//!   `refund_line_items` (plain fields and money bags, or the bags only:
//!   [`ShopifyFake::serve_money_bags_only`]) and transactions, amount-only
//!   refunds (no line items; shipping refunded as `refund_shipping_lines`,
//!   as since 2024-10: [`ShopifyFake::add_amount_only_refund`]),
//!   cancellations, any `financial_status` ([`ShopifyFake::set_financial_status`]).
//!
//! The data come from a seeded generator ([`ShopifyFake::generate`]); the
//! canonical orders the connector must produce are [`ShopifyFake::truth`]
//! (amounts net of tax and shipping, refunds net the same way). Between two
//! pulls a test can add a refund or cancel an order; both move `updated_at`.
//!
//! [`ShopifyFake::handle`] answers one request without a socket (for
//! `plugin_api::testing::FakeHost`); [`router`] serves the same over HTTP.

use axum::body::Body;
use axum::http::{Request, Response, StatusCode};
use axum::Router;
use base64::Engine;
use chrono::{DateTime, Duration, FixedOffset, TimeZone, Utc};
use plugin_api::testing::Reply;
use plugin_api::{Money, Order, OrderStatus, Refund, Utm};
use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};
use rust_decimal::Decimal;
use serde_json::{json, Value};
use std::collections::BTreeMap;
use std::sync::{Arc, Mutex};

/// The API version served.
pub const API_VERSION: &str = "2024-10";

/// How to generate a shop.
#[derive(Debug, Clone)]
pub struct ShopifyConfig {
    /// RNG seed: the same seed gives the same shop.
    pub seed: u64,
    /// Number of orders.
    pub orders: usize,
    /// The access token the fake accepts.
    pub token: String,
    /// Orders are created from this instant on, spread over `days`.
    pub start: DateTime<Utc>,
    /// Days the orders are spread over.
    pub days: u32,
    /// Shop currency.
    pub currency: String,
}

impl Default for ShopifyConfig {
    fn default() -> Self {
        ShopifyConfig {
            seed: 7,
            orders: 100,
            token: "shpat_test_token".into(),
            start: Utc.with_ymd_and_hms(2026, 11, 1, 0, 0, 0).unwrap(),
            days: 7,
            currency: "USD".into(),
        }
    }
}

/// One generated refund (net = what the connector must report).
#[derive(Debug, Clone)]
pub struct FakeRefund {
    /// Refund id.
    pub id: u64,
    /// When it was processed.
    pub at: DateTime<Utc>,
    /// Refunded merchandise net of tax.
    pub net: Decimal,
    /// Tax on the refunded merchandise.
    pub tax: Decimal,
}

/// One generated order.
#[derive(Debug, Clone)]
pub struct FakeOrder {
    /// Numeric id.
    pub id: u64,
    /// Order number (name is `#<number>`).
    pub number: u64,
    /// Creation time.
    pub created_at: DateTime<Utc>,
    /// Last change.
    pub updated_at: DateTime<Utc>,
    /// Merchandise after discounts, net of tax.
    pub net: Decimal,
    /// Tax on the merchandise.
    pub items_tax: Decimal,
    /// Shipping price and its tax.
    pub shipping: Decimal,
    /// Tax on shipping.
    pub shipping_tax: Decimal,
    /// Whether prices include tax.
    pub taxes_included: bool,
    /// Discount code, if any.
    pub coupon: Option<String>,
    /// Customer id and lifetime order count.
    pub customer: Option<(u64, u64)>,
    /// Click id carried on the landing site (`irclickid`).
    pub landing_click: Option<String>,
    /// Click id carried in note attributes (`_ef_transaction_id`).
    pub note_click: Option<String>,
    /// `utm_source` on the landing site.
    pub utm_source: Option<String>,
    /// Shopify `financial_status` before refunds (`paid`, `pending`, ...).
    pub base_financial: &'static str,
    /// Fulfilled?
    pub fulfilled: bool,
    /// Cancellation time.
    pub cancelled_at: Option<DateTime<Utc>>,
    /// Refunds.
    pub refunds: Vec<FakeRefund>,
    /// Fields replaced verbatim in the served JSON (to serve malformed orders).
    pub overrides: Vec<(String, Value)>,
}

impl FakeOrder {
    fn refunded(&self) -> Decimal {
        self.refunds.iter().map(|r| r.net).sum()
    }

    fn financial_status(&self) -> &'static str {
        if self.cancelled_at.is_some() && self.base_financial != "paid" {
            return "voided";
        }
        let r = self.refunded();
        if r > Decimal::ZERO && r >= self.net {
            "refunded"
        } else if r > Decimal::ZERO {
            "partially_refunded"
        } else {
            self.base_financial
        }
    }

    fn status(&self) -> OrderStatus {
        if self.cancelled_at.is_some() {
            return OrderStatus::Cancelled;
        }
        match self.financial_status() {
            // An authorization voided, or lapsed uncaptured: no revenue.
            "voided" | "expired" => OrderStatus::Cancelled,
            "refunded" => OrderStatus::Refunded,
            "partially_refunded" => OrderStatus::PartiallyRefunded,
            "paid" if self.fulfilled => OrderStatus::Fulfilled,
            "paid" => OrderStatus::Paid,
            _ => OrderStatus::Open,
        }
    }

    fn to_json(&self, inner: &Inner) -> Value {
        let currency = inner.config.currency.as_str();
        let tz = FixedOffset::west_opt(5 * 3600).expect("offset");
        let t = |d: DateTime<Utc>| d.with_timezone(&tz).to_rfc3339();
        let subtotal = if self.taxes_included {
            self.net + self.items_tax
        } else {
            self.net
        };
        let total_tax = self.items_tax + self.shipping_tax;
        let total = subtotal
            + self.shipping
            + if self.taxes_included {
                Decimal::ZERO
            } else {
                total_tax
            };
        let mut landing = format!("/products/p{}", self.id % 97);
        let mut q = Vec::new();
        if let Some(s) = &self.utm_source {
            q.push(format!("utm_source={s}&utm_medium=affiliate"));
        }
        if let Some(c) = &self.landing_click {
            q.push(format!("irclickid={}", c.replace('/', "%2F")));
        }
        if !q.is_empty() {
            landing = format!("{landing}?{}", q.join("&"));
        }
        let mut notes = vec![json!({"name": "gift_wrap", "value": "no"})];
        if let Some(c) = &self.note_click {
            notes.push(json!({"name": "_ef_transaction_id", "value": c}));
        }
        let bag = |amount: Decimal| {
            json!({"shop_money": {"amount": amount.to_string(), "currency_code": currency},
                   "presentment_money": {"amount": amount.to_string(), "currency_code": currency}})
        };
        let refunds: Vec<Value> = self
            .refunds
            .iter()
            .map(|r| {
                let (line_items, shipping_lines, paid_back) = match inner.amount_only.get(&r.id) {
                    // No line items: the transactions say what went back
                    // (merchandise with its tax, and the shipping refunded,
                    // which the refund shipping lines detail).
                    Some(&with_shipping) => {
                        let mut paid_back = r.net + r.tax;
                        let mut lines = Vec::new();
                        if with_shipping {
                            let shipping_net = if self.taxes_included {
                                self.shipping - self.shipping_tax
                            } else {
                                self.shipping
                            };
                            paid_back += shipping_net + self.shipping_tax;
                            lines.push(json!({
                                "id": r.id + 3, "shipping_line_id": self.id * 10 + 1,
                                "subtotal_amount_set": bag(shipping_net),
                                "tax_amount_set": bag(self.shipping_tax)
                            }));
                        }
                        (Vec::new(), lines, paid_back)
                    }
                    None => {
                        let line_subtotal = if self.taxes_included {
                            r.net + r.tax
                        } else {
                            r.net
                        };
                        let mut line = json!({
                            "id": r.id + 1, "quantity": 1, "line_item_id": self.id * 10,
                            "subtotal": line_subtotal.to_string(), "total_tax": r.tax.to_string(),
                            "subtotal_set": bag(line_subtotal), "total_tax_set": bag(r.tax)
                        });
                        if inner.money_bags_only {
                            if let Some(m) = line.as_object_mut() {
                                m.remove("subtotal");
                                m.remove("total_tax");
                            }
                        }
                        (vec![line], Vec::new(), r.net + r.tax)
                    }
                };
                json!({
                    "id": r.id, "order_id": self.id,
                    "created_at": t(r.at), "processed_at": t(r.at),
                    "note": null, "restock": true,
                    "refund_line_items": line_items,
                    "refund_shipping_lines": shipping_lines,
                    "transactions": [{
                        "id": r.id + 2, "kind": "refund", "status": "success",
                        "amount": paid_back.to_string(), "currency": currency, "gateway": "bogus"
                    }],
                    "order_adjustments": []
                })
            })
            .collect();
        let mut v = json!({
            "id": self.id,
            "admin_graphql_api_id": format!("gid://shopify/Order/{}", self.id),
            "name": format!("#{}", self.number),
            "order_number": self.number,
            "number": self.number - 1000,
            "email": format!("buyer{}@example.com", self.id % 1000),
            "created_at": t(self.created_at),
            "updated_at": t(self.updated_at),
            "processed_at": t(self.created_at),
            "cancelled_at": self.cancelled_at.map(t),
            "cancel_reason": self.cancelled_at.map(|_| "customer"),
            "currency": currency,
            "presentment_currency": currency,
            "subtotal_price": subtotal.to_string(),
            "total_price": total.to_string(),
            "total_tax": total_tax.to_string(),
            "total_discounts": if self.coupon.is_some() { "5.00" } else { "0.00" },
            "taxes_included": self.taxes_included,
            "financial_status": self.financial_status(),
            "fulfillment_status": if self.fulfilled { Value::from("fulfilled") } else { Value::Null },
            "landing_site": landing,
            "referring_site": "https://www.google.com/",
            "source_name": "web",
            "note_attributes": notes,
            "discount_codes": self.coupon.as_ref().map(|c| json!([{"code": c, "amount": "5.00", "type": "fixed_amount"}])).unwrap_or(json!([])),
            "customer": self.customer.map(|(id, n)| json!({"id": id, "orders_count": n, "email": format!("c{id}@example.com")})),
            "line_items": [{"id": self.id * 10, "quantity": 1, "price": subtotal.to_string(),
                            "tax_lines": [{"price": self.items_tax.to_string(), "rate": 0.1, "title": "Tax"}]}],
            "shipping_lines": [{"id": self.id * 10 + 1, "price": self.shipping.to_string(),
                                "tax_lines": [{"price": self.shipping_tax.to_string(), "rate": 0.1, "title": "Tax"}]}],
            "refunds": refunds,
        });
        for (k, val) in &self.overrides {
            v[k.as_str()] = val.clone();
        }
        v
    }

    /// The canonical order the connector must produce.
    pub fn truth(&self, currency: &str) -> Order {
        Order {
            source: String::new(),
            order_id: self.id.to_string(),
            alt_ids: vec![format!("#{}", self.number), self.number.to_string()],
            created_at: self.created_at,
            amount: Money::new(self.net, currency),
            customer_id: self.customer.map(|(id, _)| id.to_string()),
            new_customer: self.customer.map(|(_, n)| n <= 1),
            coupon: self.coupon.clone(),
            click_ids: self
                .landing_click
                .iter()
                .chain(self.note_click.iter())
                .cloned()
                .collect(),
            utm: Utm {
                source: self.utm_source.clone(),
                medium: self.utm_source.as_ref().map(|_| "affiliate".to_owned()),
                ..Utm::default()
            },
            refunds: self
                .refunds
                .iter()
                .map(|r| Refund {
                    amount: Money::new(r.net, currency),
                    at: r.at,
                })
                .collect(),
            status: self.status(),
        }
    }
}

#[derive(Debug)]
struct Inner {
    config: ShopifyConfig,
    orders: Vec<FakeOrder>,
    next_refund_id: u64,
    /// Successful requests to let through before throttling starts.
    throttle_after: Option<u64>,
    /// How many 429s to answer once throttling starts.
    throttle_count: u64,
    requests: u64,
    throttled: u64,
    /// Refunds served without line items (amount-only), by id: whether
    /// they also refund the shipping.
    amount_only: BTreeMap<u64, bool>,
    /// Serve refund line items' amounts as money bags only.
    money_bags_only: bool,
    /// Cursors of an earlier generation are refused ([`ShopifyFake::expire_cursors`]).
    cursor_generation: u64,
    /// The used part of `X-Shopify-Shop-Api-Call-Limit: used/40` on answers.
    call_limit_used: u32,
}

/// A fake shop; cheap to clone (shared state).
#[derive(Debug, Clone)]
pub struct ShopifyFake {
    inner: Arc<Mutex<Inner>>,
}

fn cents(rng: &mut StdRng, lo: i64, hi: i64) -> Decimal {
    Decimal::new(rng.gen_range(lo..hi), 2)
}

impl ShopifyFake {
    /// A shop serving exactly these orders (the demo's story).
    pub fn from_orders(config: ShopifyConfig, orders: Vec<FakeOrder>) -> ShopifyFake {
        let fake = ShopifyFake::generate(ShopifyConfig {
            orders: 0,
            ..config
        });
        fake.lock().orders = orders;
        fake
    }

    /// Generates a shop from the config (deterministic in the seed).
    pub fn generate(config: ShopifyConfig) -> ShopifyFake {
        let mut rng = StdRng::seed_from_u64(config.seed);
        let span_secs = i64::from(config.days.max(1)) * 86_400;
        let mut orders = Vec::with_capacity(config.orders);
        let mut next_refund_id = 900_000_000u64;
        for i in 0..config.orders {
            let created_at = config.start
                + Duration::seconds(span_secs * i as i64 / config.orders.max(1) as i64);
            let net = cents(&mut rng, 500, 50_000);
            let items_tax = (net * Decimal::new(8, 2)).round_dp(2);
            let taxes_included = rng.gen_bool(0.3);
            let base_financial = match rng.gen_range(0..20) {
                0 => "pending",
                1 => "authorized",
                _ => "paid",
            };
            let mut o = FakeOrder {
                id: 5_000_000_000 + i as u64 * 7,
                number: 1001 + i as u64,
                created_at,
                updated_at: created_at,
                net,
                items_tax,
                shipping: Decimal::new(595, 2),
                shipping_tax: Decimal::new(48, 2),
                taxes_included,
                coupon: rng
                    .gen_bool(0.2)
                    .then(|| format!("SAVE{}", rng.gen_range(5..30))),
                customer: rng.gen_bool(0.9).then(|| {
                    (
                        7_000_000 + rng.gen_range(0..5_000u64),
                        rng.gen_range(1..6u64),
                    )
                }),
                landing_click: rng
                    .gen_bool(0.5)
                    .then(|| format!("IR-{}/{}", rng.gen_range(0..1_000_000u32), i)),
                note_click: rng
                    .gen_bool(0.3)
                    .then(|| format!("ef{:08x}", rng.gen::<u32>())),
                utm_source: rng.gen_bool(0.6).then(|| {
                    ["impact", "everflow", "google", "meta"][rng.gen_range(0..4)].to_owned()
                }),
                base_financial,
                fulfilled: base_financial == "paid" && rng.gen_bool(0.6),
                cancelled_at: None,
                refunds: Vec::new(),
                overrides: Vec::new(),
            };
            if base_financial == "paid" && rng.gen_bool(0.15) {
                let at = created_at + Duration::hours(rng.gen_range(1..72));
                let full = rng.gen_bool(0.4);
                let refund_net = if full {
                    o.net
                } else {
                    (o.net / Decimal::from(rng.gen_range(2..5))).round_dp(2)
                };
                let tax = (refund_net * Decimal::new(8, 2)).round_dp(2);
                o.refunds.push(FakeRefund {
                    id: next_refund_id,
                    at,
                    net: refund_net,
                    tax,
                });
                next_refund_id += 10;
                o.updated_at = at;
            } else if rng.gen_bool(0.03) {
                let at = created_at + Duration::hours(2);
                o.cancelled_at = Some(at);
                o.updated_at = at;
            }
            orders.push(o);
        }
        ShopifyFake {
            inner: Arc::new(Mutex::new(Inner {
                config,
                orders,
                next_refund_id,
                throttle_after: None,
                throttle_count: 0,
                requests: 0,
                throttled: 0,
                amount_only: BTreeMap::new(),
                money_bags_only: false,
                cursor_generation: 0,
                call_limit_used: 1,
            })),
        }
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Inner> {
        self.inner.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// The access token the fake accepts.
    pub fn token(&self) -> String {
        self.lock().config.token.clone()
    }

    /// The fake as a `FakeHost` handler, adding the access token to each
    /// request as the host does (a plugin never sees the secret).
    pub fn host_handler(
        &self,
    ) -> impl FnMut(&plugin_api::protocol::HttpRequest) -> Reply + 'static {
        let fake = self.clone();
        let token = fake.token();
        move |req| {
            let mut headers = req.headers.clone();
            headers.insert("x-shopify-access-token".into(), token.clone());
            fake.handle(&req.method, &req.url, &headers)
        }
    }

    /// The canonical orders the connector must produce, by order id order.
    pub fn truth(&self) -> Vec<Order> {
        let inner = self.lock();
        inner
            .orders
            .iter()
            .map(|o| o.truth(&inner.config.currency))
            .collect()
    }

    /// The generated orders.
    pub fn orders(&self) -> Vec<FakeOrder> {
        self.lock().orders.clone()
    }

    /// Adds a refund of `net` (net of tax) to the order at `index`, processed
    /// at `at` (which becomes its `updated_at`). Returns the order id.
    pub fn add_refund(&self, index: usize, net: Decimal, at: DateTime<Utc>) -> u64 {
        let mut inner = self.lock();
        let id = inner.next_refund_id;
        inner.next_refund_id += 10;
        let o = &mut inner.orders[index];
        o.refunds.push(FakeRefund {
            id,
            at,
            net,
            tax: (net * Decimal::new(8, 2)).round_dp(2),
        });
        o.updated_at = at;
        o.id
    }

    /// Adds an amount-only refund (no line items) to the order at `index`,
    /// processed at `at`: `paid_back` of the merchandise, tax included,
    /// and, if `with_shipping`, all of the shipping with its tax (detailed
    /// as a refund shipping line). What the connector must report is the
    /// merchandise net of tax, pro rata: `paid_back × net / (net +
    /// items_tax)`, to the cent, half away from zero. Returns the order id.
    pub fn add_amount_only_refund(
        &self,
        index: usize,
        paid_back: Decimal,
        with_shipping: bool,
        at: DateTime<Utc>,
    ) -> u64 {
        let mut inner = self.lock();
        let id = inner.next_refund_id;
        inner.next_refund_id += 10;
        inner.amount_only.insert(id, with_shipping);
        let o = &mut inner.orders[index];
        let net = (paid_back * o.net / (o.net + o.items_tax))
            .round_dp_with_strategy(2, rust_decimal::RoundingStrategy::MidpointAwayFromZero);
        o.refunds.push(FakeRefund {
            id,
            at,
            net,
            tax: paid_back - net,
        });
        o.updated_at = at;
        o.id
    }

    /// Serves refund line items' amounts only as money bags
    /// (`subtotal_set`, `total_tax_set`), without `subtotal` / `total_tax`.
    pub fn serve_money_bags_only(&self, on: bool) {
        self.lock().money_bags_only = on;
    }

    /// Sets the order at `index`'s `financial_status` before refunds
    /// (`paid`, `pending`, `expired`, ...). Returns the order id.
    pub fn set_financial_status(&self, index: usize, status: &'static str) -> u64 {
        let mut inner = self.lock();
        let o = &mut inner.orders[index];
        o.base_financial = status;
        o.fulfilled &= status == "paid";
        o.id
    }

    /// Expires every cursor handed out so far: a request with one is
    /// answered 400 `{"errors":{"page_info":["Invalid value."]}}`.
    pub fn expire_cursors(&self) {
        self.lock().cursor_generation += 1;
    }

    /// Answers carry `X-Shopify-Shop-Api-Call-Limit: <used>/40` (default 1).
    pub fn set_call_limit(&self, used: u32) {
        self.lock().call_limit_used = used;
    }

    /// Cancels the order at `index` at `at`. Returns the order id.
    pub fn cancel(&self, index: usize, at: DateTime<Utc>) -> u64 {
        let mut inner = self.lock();
        let o = &mut inner.orders[index];
        o.cancelled_at = Some(at);
        o.updated_at = at;
        o.id
    }

    /// Serves `field` of the order at `index` as `value` (e.g. a malformed
    /// amount). Returns the order id.
    pub fn corrupt(&self, index: usize, field: &str, value: Value) -> u64 {
        let mut inner = self.lock();
        let o = &mut inner.orders[index];
        o.overrides.push((field.to_owned(), value));
        o.id
    }

    /// After `after` more successful requests, answer the next `count`
    /// requests with 429 and `Retry-After: 1.0`.
    pub fn throttle(&self, after: u64, count: u64) {
        let mut inner = self.lock();
        let at = inner.requests + after;
        inner.throttle_after = Some(at);
        inner.throttle_count = count;
    }

    /// (requests answered, of which 429s).
    pub fn request_counts(&self) -> (u64, u64) {
        let inner = self.lock();
        (inner.requests, inner.throttled)
    }

    /// Answers one request. `url` is absolute or a path with query; `headers`
    /// have lower-case names. The `Link` header points at `host` (from the
    /// URL, else the `host` header).
    pub fn handle(&self, method: &str, url: &str, headers: &BTreeMap<String, String>) -> Reply {
        let mut inner = self.lock();
        inner.requests += 1;
        let (origin, path_query) = split_origin(url, headers);
        let (path, query) = path_query.split_once('?').unwrap_or((path_query, ""));
        let params: Vec<(String, String)> = url::form_urlencoded::parse(query.as_bytes())
            .into_owned()
            .collect();

        if headers.get("x-shopify-access-token") != Some(&inner.config.token) {
            return error(
                401,
                json!({"errors": "[API] Invalid API key or access token (unrecognized login or wrong password)"}),
            );
        }
        if let Some(at) = inner.throttle_after {
            if inner.requests > at && inner.throttle_count > 0 {
                inner.throttle_count -= 1;
                inner.throttled += 1;
                let mut r = error(
                    429,
                    json!({"errors": "Exceeded 2 calls per second for api client. Reduce request rates to resume uninterrupted service."}),
                );
                r.headers.insert("retry-after".into(), "1.0".into());
                r.headers
                    .insert("x-shopify-shop-api-call-limit".into(), "40/40".into());
                return r;
            }
        }
        if method != "GET" {
            return error(406, json!({"errors": "Not Acceptable"}));
        }
        let orders_path = format!("/admin/api/{API_VERSION}/orders.json");
        let shop_path = format!("/admin/api/{API_VERSION}/shop.json");
        let call_limit = format!("{}/40", inner.call_limit_used);
        let mut reply = if path == shop_path {
            ok(
                json!({"shop": {"id": 1, "name": "Fake Shop", "currency": inner.config.currency}}),
                None,
            )
        } else if path != orders_path {
            return error(404, json!({"errors": "Not Found"}));
        } else {
            match list_orders(&inner, &origin, &params) {
                Ok(r) => r,
                Err(msg) => error(400, json!({"errors": msg})),
            }
        };
        reply
            .headers
            .insert("x-shopify-shop-api-call-limit".into(), call_limit);
        reply
    }
}

#[derive(serde::Serialize, serde::Deserialize)]
struct Cursor {
    last_id: u64,
    status: String,
    min: Option<String>,
    max: Option<String>,
    /// The fake's cursor generation when handed out.
    #[serde(default)]
    generation: u64,
}

fn list_orders(inner: &Inner, origin: &str, params: &[(String, String)]) -> Result<Reply, Value> {
    let get = |k: &str| params.iter().find(|(n, _)| n == k).map(|(_, v)| v.as_str());
    let limit: usize = match get("limit") {
        None => 50,
        Some(l) => match l.parse::<usize>() {
            Ok(n @ 1..=250) => n,
            _ => return Err(json!({"limit": ["must be between 1 and 250"]})),
        },
    };
    let cursor = match get("page_info") {
        Some(p) => {
            if params
                .iter()
                .any(|(k, _)| k != "page_info" && k != "limit" && k != "fields")
            {
                return Err(
                    json!({"page_info": ["Invalid value: other filters are not allowed with page_info"]}),
                );
            }
            let bytes = base64::engine::general_purpose::URL_SAFE_NO_PAD
                .decode(p)
                .map_err(|_| json!({"page_info": ["Invalid value."]}))?;
            serde_json::from_slice::<Cursor>(&bytes)
                .ok()
                .filter(|c| c.generation == inner.cursor_generation)
                .ok_or_else(|| json!({"page_info": ["Invalid value."]}))?
        }
        None => Cursor {
            last_id: 0,
            status: get("status").unwrap_or("open").to_owned(),
            min: get("updated_at_min").map(str::to_owned),
            max: get("updated_at_max").map(str::to_owned),
            generation: inner.cursor_generation,
        },
    };
    let parse_t = |s: &Option<String>, name: &str| -> Result<Option<DateTime<Utc>>, Value> {
        s.as_deref()
            .map(|s| {
                DateTime::parse_from_rfc3339(s)
                    .map(|d| d.with_timezone(&Utc))
                    .map_err(|_| json!({name: ["is not a valid date"]}))
            })
            .transpose()
    };
    let min = parse_t(&cursor.min, "updated_at_min")?;
    let max = parse_t(&cursor.max, "updated_at_max")?;
    let matches = |o: &FakeOrder| {
        let status_ok = match cursor.status.as_str() {
            "any" => true,
            "open" => o.cancelled_at.is_none(),
            "cancelled" => o.cancelled_at.is_some(),
            _ => false,
        };
        status_ok && min.is_none_or(|m| o.updated_at >= m) && max.is_none_or(|m| o.updated_at <= m)
    };
    let mut page: Vec<&FakeOrder> = Vec::with_capacity(limit + 1);
    for o in inner.orders.iter().filter(|o| o.id > cursor.last_id) {
        if matches(o) {
            page.push(o);
            if page.len() > limit {
                break;
            }
        }
    }
    let has_next = page.len() > limit;
    page.truncate(limit);
    let body = json!({"orders": page.iter().map(|o| o.to_json(inner)).collect::<Vec<_>>()});
    let url_for = |c: &Cursor| {
        let token = base64::engine::general_purpose::URL_SAFE_NO_PAD
            .encode(serde_json::to_vec(c).unwrap_or_default());
        format!("{origin}/admin/api/{API_VERSION}/orders.json?limit={limit}&page_info={token}")
    };
    let mut links = Vec::new();
    if cursor.last_id > 0 {
        let prev = Cursor {
            last_id: 0,
            status: cursor.status.clone(),
            min: cursor.min.clone(),
            max: cursor.max.clone(),
            generation: cursor.generation,
        };
        links.push(format!("<{}>; rel=\"previous\"", url_for(&prev)));
    }
    if has_next {
        let next = Cursor {
            last_id: page.last().map(|o| o.id).unwrap_or(0),
            status: cursor.status.clone(),
            min: cursor.min.clone(),
            max: cursor.max.clone(),
            generation: cursor.generation,
        };
        links.push(format!("<{}>; rel=\"next\"", url_for(&next)));
    }
    Ok(ok(body, (!links.is_empty()).then(|| links.join(", "))))
}

fn split_origin<'a>(url: &'a str, headers: &BTreeMap<String, String>) -> (String, &'a str) {
    if let Some(rest) = url
        .strip_prefix("http://")
        .or_else(|| url.strip_prefix("https://"))
    {
        let scheme = if url.starts_with("https") {
            "https"
        } else {
            "http"
        };
        let (host, path) = rest.split_at(rest.find('/').unwrap_or(rest.len()));
        return (format!("{scheme}://{host}"), path);
    }
    let host = headers
        .get("host")
        .cloned()
        .unwrap_or_else(|| "fake-shop.myshopify.com".into());
    (format!("http://{host}"), url)
}

fn ok(body: Value, link: Option<String>) -> Reply {
    let mut r = Reply::json(200, &body);
    r.headers.insert(
        "content-type".into(),
        "application/json; charset=utf-8".into(),
    );
    r.headers
        .insert("x-shopify-shop-api-call-limit".into(), "1/40".into());
    r.headers
        .insert("x-shopify-api-version".into(), API_VERSION.into());
    if let Some(l) = link {
        r.headers.insert("link".into(), l);
    }
    r
}

fn error(status: u16, body: Value) -> Reply {
    let mut r = Reply::json(status, &body);
    r.headers.insert(
        "content-type".into(),
        "application/json; charset=utf-8".into(),
    );
    r
}

/// Serves the fake over HTTP (mount it at the root).
pub fn router(state: ShopifyFake) -> Router {
    Router::new().fallback(move |req: Request<Body>| {
        let state = state.clone();
        async move {
            let headers: BTreeMap<String, String> = req
                .headers()
                .iter()
                .filter_map(|(k, v)| {
                    Some((k.as_str().to_ascii_lowercase(), v.to_str().ok()?.to_owned()))
                })
                .collect();
            let path_query = req
                .uri()
                .path_and_query()
                .map(|p| p.as_str().to_owned())
                .unwrap_or_else(|| "/".into());
            let reply = state.handle(req.method().as_str(), &path_query, &headers);
            let mut resp = Response::builder().status(
                StatusCode::from_u16(reply.status).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR),
            );
            for (k, v) in &reply.headers {
                resp = resp.header(k.as_str(), v.as_str());
            }
            resp.body(Body::from(reply.body))
                .unwrap_or_else(|_| Response::new(Body::from("bad fake response")))
        }
    })
}

/// A canonical total for assertions: (count, Σ amount, Σ refunds).
pub fn totals(orders: &[Order]) -> (usize, Decimal, Decimal) {
    (
        orders.len(),
        orders.iter().map(|o| o.amount.amount).sum(),
        orders.iter().map(Order::refunded).sum(),
    )
}
