//! Shopify Admin REST API (2024-10): the `orders` stream.
//!
//! `GET /admin/api/2024-10/orders.json?status=any&updated_at_min=..&updated_at_max=..&limit=N`,
//! then the `Link` header's `rel="next"` URL (`?limit=N&page_info=CURSOR`; with
//! `page_info` Shopify accepts no other filter) until there is none. Each page
//! is committed with a checkpoint holding the window and the next cursor, so a
//! crashed session resumes at the page it was on.
//!
//! Days: the window's days are the connector's `timezone`'s
//! ([`Cx::timezone`]), as for the affiliate connectors: `updated_at_min` is
//! the instant the window's first day begins in that zone, `updated_at_max`
//! the instant the day after its last begins (both written in UTC), and the
//! watermark of a finished window is that end. Shopify counts both bounds
//! as inclusive, so an order updated at exactly the end instant is read by
//! two windows: an upsert of the same key.
//!
//! Throttling: Shopify's REST bucket holds 40 requests and leaks 2 per second;
//! a full bucket answers 429 with `Retry-After` (seconds, may be fractional).
//! The plugin sleeps for `Retry-After` and retries the same page (the host may
//! already absorb 429s; this covers hosts that pass them through), and slows
//! down before the bucket is full by reading `X-Shopify-Shop-Api-Call-Limit`.
//!
//! Mapping of one order to a canonical [`Order`] is in [`to_order`]; the
//! decisions (net amount, refund amount, status) are documented there and in
//! docs/arch/orders.md. What this is not: no customer lookups (the order's
//! `customer.orders_count` is used when present, see [`to_order`]).

use crate::attribution::Attribution;
use crate::config::Settings;
use plugin_api::chrono::{DateTime, Duration, Utc};
use plugin_api::json_object::LiteralNumbers;
use plugin_api::parse;
use plugin_api::protocol::Checkpoint;
use plugin_api::rust_decimal::Decimal;
use plugin_api::sdk::day_start;
use plugin_api::serde_json::{json, Value};
use plugin_api::{Cx, Money, Order, OrderStatus, PluginError, Record, Refund, Request, Response};

/// The Admin API version requested.
pub const API_VERSION: &str = "2024-10";
/// Stream name of Shopify orders.
pub const STREAM: &str = "orders";

/// Pulls orders updated in the session window, page by page.
pub async fn read(cx: &Cx, settings: &Settings) -> Result<(), PluginError> {
    if !(1..=250).contains(&settings.page_size) {
        return Err(PluginError::config(format!(
            "connector `{}`: settings.page_size = {} is out of range: Shopify accepts 1..=250",
            cx.connector_id(),
            settings.page_size
        )));
    }
    let window = cx.window()?;
    let window_key = format!("{}..{}", window.from, window.to);
    // The window's days are the connector's zone's (QA30 L2: they were UTC
    // days whatever the zone): from the instant its first day begins there
    // to the instant the day after its last begins.
    let tz = cx.timezone()?;
    let from = day_start(window.from, tz);
    let to = day_start(window.to + Duration::days(1), tz);

    let resumed = cx
        .checkpoint(STREAM)
        .filter(|cp| cp.state.get("window").and_then(Value::as_str) == Some(window_key.as_str()));
    let mut page_info: Option<String> = resumed
        .and_then(|cp| cp.state.get("page_info").and_then(Value::as_str))
        .map(str::to_owned);
    let mut watermark = cx
        .checkpoint(STREAM)
        .map(|cp| cp.watermark.max(from))
        .unwrap_or(from);

    let endpoint = format!("{}/admin/api/{API_VERSION}/orders.json", cx.base_url());
    let mut page = 1u32;
    let mut orders_total = 0usize;
    loop {
        let what = format!("stream `{STREAM}` page {page}");
        let req = match &page_info {
            // With page_info Shopify accepts only limit (and fields).
            Some(cursor) => Request::get(&endpoint)
                .query("limit", settings.page_size)
                .query("page_info", cursor),
            None => Request::get(&endpoint)
                .query("status", "any")
                .query("updated_at_min", rfc3339(from))
                .query("updated_at_max", rfc3339(to))
                .query("limit", settings.page_size),
        }
        .label(format!("orders page {page}"));
        let resp = send_throttled(cx, settings, req, &what).await?;
        let orders = parse_page(&resp.body)
            .map_err(|e| PluginError::bad_response(format!("{what}: {e}")))?;
        for (i, o) in orders.iter().enumerate() {
            let order = to_order(o, settings).map_err(|e| {
                PluginError::bad_response(format!(
                    "{what}, record {n} (order {}): {e}",
                    order_label(o),
                    n = i + 1
                ))
            })?;
            cx.emit(Record::Order(order));
        }
        orders_total += orders.len();
        page_info = next_page_info(&resp)?;
        if page_info.is_none() {
            watermark = watermark.max(to);
        }
        cx.commit(Checkpoint {
            stream: STREAM.into(),
            watermark,
            state: json!({ "window": window_key, "page_info": page_info }),
            covers: None,
        });
        if page_info.is_none() {
            break;
        }
        page += 1;
    }
    cx.debug(
        "stream done",
        &[
            ("stream", &STREAM),
            ("pages", &page),
            ("orders", &orders_total),
        ],
    );
    Ok(())
}

/// The fields of an order [`to_order`] reads. Deserialising into this skips
/// everything else (line items, addresses, fulfillments, money bags) without
/// building it, which is most of a real order's bytes. The fields that carry
/// money are [`LiteralNumbers`]: Shopify sends amounts as strings, but one
/// sent as a JSON number keeps its literal (as a string) and is read exactly,
/// never through `f64`.
#[derive(Debug, Default, serde::Deserialize)]
#[serde(default)]
struct SlimOrder {
    id: Value,
    name: Value,
    order_number: Value,
    created_at: Value,
    currency: Value,
    taxes_included: Value,
    subtotal_price: LiteralNumbers,
    total_tax: LiteralNumbers,
    shipping_lines: LiteralNumbers,
    refunds: LiteralNumbers,
    financial_status: Value,
    fulfillment_status: Value,
    cancelled_at: Value,
    customer: Value,
    discount_codes: Value,
    landing_site: Value,
    note_attributes: Value,
}

impl SlimOrder {
    fn into_value(self) -> Value {
        let mut m = plugin_api::serde_json::Map::new();
        for (k, v) in [
            ("id", self.id),
            ("name", self.name),
            ("order_number", self.order_number),
            ("created_at", self.created_at),
            ("currency", self.currency),
            ("taxes_included", self.taxes_included),
            ("subtotal_price", self.subtotal_price.0),
            ("total_tax", self.total_tax.0),
            ("shipping_lines", self.shipping_lines.0),
            ("refunds", self.refunds.0),
            ("financial_status", self.financial_status),
            ("fulfillment_status", self.fulfillment_status),
            ("cancelled_at", self.cancelled_at),
            ("customer", self.customer),
            ("discount_codes", self.discount_codes),
            ("landing_site", self.landing_site),
            ("note_attributes", self.note_attributes),
        ] {
            if !v.is_null() {
                m.insert(k.to_owned(), v);
            }
        }
        Value::Object(m)
    }
}

#[derive(Debug, serde::Deserialize)]
struct SlimPage {
    orders: Vec<SlimOrder>,
}

/// Parses an `orders.json` body into the orders' fields that matter (each
/// order as a JSON object for [`to_order`]).
pub fn parse_page(body: &[u8]) -> Result<Vec<Value>, String> {
    match plugin_api::serde_json::from_slice::<SlimPage>(body) {
        Ok(page) => Ok(page.orders.into_iter().map(SlimOrder::into_value).collect()),
        // Say precisely what is wrong with the shape.
        Err(slim_err) => {
            let v: Value = plugin_api::serde_json::from_slice(body)
                .map_err(|e| plugin_api::sdk::malformed_json(body, &e))?;
            match v.get("orders") {
                Some(Value::Array(a)) => match a.iter().position(|o| !o.is_object()) {
                    Some(i) => Err(format!("record {} is not a JSON object", i + 1)),
                    None => Err(format!("unexpected page shape: {slim_err}")),
                },
                _ => Err("no `orders` array".into()),
            }
        }
    }
}

/// Checks credentials with one cheap request.
pub async fn check(cx: &Cx) -> Result<(), PluginError> {
    let url = format!("{}/admin/api/{API_VERSION}/shop.json", cx.base_url());
    cx.http(Request::get(url).label("check")).await?.ok()?;
    Ok(())
}

/// Sends a request; on a 429 the host has already waited out and retried
/// up to its own limit (5), sleeps `Retry-After` and asks again, at most
/// `max_throttle_retries` times (each ask is up to 6 requests: QA found the
/// default of 10 meant 66 requests per page); slows down when the call-limit
/// header says the bucket is nearly full. Other statuses go through
/// [`Response::ok`] with `what` prefixed to the message.
async fn send_throttled(
    cx: &Cx,
    settings: &Settings,
    req: Request,
    what: &str,
) -> Result<Response, PluginError> {
    let mut throttled = 0u32;
    loop {
        let resp = cx.http(req.clone()).await?;
        if resp.status == 429 {
            throttled += 1;
            if throttled > settings.max_throttle_retries {
                return Err(PluginError::retryable(
                    plugin_api::ErrorKind::RateLimited,
                    format!(
                        "{what}: still throttled (HTTP 429) after {throttled} asks, each retried by the host (max_throttle_retries = {}); the next run tries again",
                        settings.max_throttle_retries
                    ),
                ));
            }
            let wait_ms = retry_after_ms(resp.header("retry-after")).unwrap_or(2_000);
            cx.warn(
                "throttled by Shopify, waiting",
                &[
                    ("page", &what),
                    ("wait_ms", &wait_ms),
                    ("attempt", &throttled),
                ],
            );
            cx.sleep_for(Duration::milliseconds(wait_ms)).await?;
            continue;
        }
        let resp = resp.ok().map_err(|e| PluginError {
            message: format!("{what}: {}", e.message),
            ..e
        })?;
        let call_limit = resp.header("x-shopify-shop-api-call-limit");
        if let Some(wait_ms) = call_limit_pause_ms(call_limit) {
            // Up to 10 minutes: said, not silent (QA25 N6).
            cx.info(
                "pausing for Shopify's call limit",
                &[
                    ("page", &what),
                    ("wait_ms", &wait_ms),
                    ("call_limit", &call_limit.unwrap_or_default()),
                ],
            );
            cx.sleep_for(Duration::milliseconds(wait_ms)).await?;
        }
        return Ok(resp);
    }
}

/// The longest wait a header can ask for: 10 minutes (the host caps one
/// timer at 15).
const MAX_WAIT_MS: i64 = 600_000;

/// `Retry-After` in milliseconds: seconds, possibly fractional (`"2.0"`),
/// clamped to 0..=[`MAX_WAIT_MS`] before the multiply (`1e26` overflowed
/// it: QA24 F4-D).
fn retry_after_ms(h: Option<&str>) -> Option<i64> {
    let secs = parse::decimal_str(h?).ok()??;
    let secs = secs.clamp(Decimal::ZERO, Decimal::from(MAX_WAIT_MS / 1000));
    i64::try_from((secs * Decimal::from(1000)).round()).ok()
}

/// Pause before the next request when `X-Shopify-Shop-Api-Call-Limit: used/size`
/// says the bucket is at least 80% full: long enough for it to leak back to
/// half full at 2 requests per second, at most [`MAX_WAIT_MS`]. The header's
/// numbers are compared in `i128` and the pause is clamped before the
/// multiply, so no value wraps or overflows (QA24 F4-C).
fn call_limit_pause_ms(h: Option<&str>) -> Option<i64> {
    let (used, size) = h?.split_once('/')?;
    let used: i64 = used.trim().parse().ok()?;
    let size: i64 = size.trim().parse().ok()?;
    if size <= 0 || i128::from(used) * 10 < i128::from(size) * 8 {
        return None;
    }
    let over_half = used.saturating_sub(size / 2);
    Some(over_half.clamp(0, MAX_WAIT_MS / 500) * 500)
}

/// The `page_info` of the `Link` header's `rel="next"` URL, if any.
fn next_page_info(resp: &Response) -> Result<Option<String>, PluginError> {
    let Some(link) = resp.header("link") else {
        return Ok(None);
    };
    for part in link.split(',') {
        let mut pieces = part.split(';');
        let url = pieces.next().unwrap_or("").trim();
        let is_next = pieces.any(|p| {
            let p = p.trim().replace(' ', "");
            p == "rel=\"next\"" || p == "rel=next"
        });
        if !is_next {
            continue;
        }
        let url = url.trim_start_matches('<').trim_end_matches('>');
        let query = url.split_once('?').map(|(_, q)| q).unwrap_or("");
        for pair in query.split('&') {
            if let Some(v) = pair.strip_prefix("page_info=") {
                return Ok(Some(crate::attribution::percent_decode(v)));
            }
        }
        return Err(PluginError::bad_response(format!(
            "Link header's next URL has no page_info: {url}"
        )));
    }
    Ok(None)
}

fn rfc3339(t: DateTime<Utc>) -> String {
    t.format("%Y-%m-%dT%H:%M:%SZ").to_string()
}

fn order_label(o: &Value) -> String {
    let id = o.get("id").map(|v| v.to_string()).unwrap_or("?".into());
    match o.get("name").and_then(Value::as_str) {
        Some(n) => format!("{id} {n}"),
        None => id,
    }
}

fn field<'a>(o: &'a Value, name: &str) -> &'a Value {
    o.get(name).unwrap_or(&Value::Null)
}

fn id_text(v: &Value, name: &str) -> Result<String, String> {
    match v {
        Value::Number(n) if n.is_u64() || n.is_i64() => Ok(n.to_string()),
        Value::String(s) if !s.trim().is_empty() => Ok(s.trim().to_owned()),
        Value::Null => Err(format!("field `{name}` is missing")),
        other => Err(format!("field `{name}`: expected an id, got {other}")),
    }
}

fn money_field(o: &Value, name: &str) -> Result<Decimal, String> {
    parse::decimal(field(o, name))
        .map_err(|e| format!("field `{name}`: {e}"))?
        .ok_or_else(|| format!("field `{name}` is missing"))
}

fn opt_money_field(o: &Value, name: &str) -> Result<Decimal, String> {
    Ok(parse::decimal(field(o, name))
        .map_err(|e| format!("field `{name}`: {e}"))?
        .unwrap_or_default())
}

fn time_field(o: &Value, name: &str) -> Result<Option<DateTime<Utc>>, String> {
    match field(o, name) {
        Value::Null => Ok(None),
        Value::String(s) if s.trim().is_empty() => Ok(None),
        Value::String(s) => parse::timestamp(s)
            .map(Some)
            .map_err(|e| format!("field `{name}`: {e}")),
        other => Err(format!("field `{name}`: expected a timestamp, got {other}")),
    }
}

fn array<'a>(o: &'a Value, name: &str) -> Result<&'a [Value], String> {
    match field(o, name) {
        Value::Null => Ok(&[]),
        Value::Array(a) => Ok(a),
        other => Err(format!("field `{name}`: expected an array, got {other}")),
    }
}

/// The error for amounts of a response whose sum or difference leaves
/// `Decimal`'s range: each amount is read without a bound (the host bounds
/// only the finished record), so they are added with `checked_*` (QA24 F4).
fn beyond_range(what: String) -> String {
    format!("{what} beyond the amount range (about ±7.9e28)")
}

/// Sum of `tax_lines[].price` of each element of `items`.
fn tax_lines_sum(items: &[Value], path: &str) -> Result<Decimal, String> {
    let mut sum = Decimal::ZERO;
    for (i, item) in items.iter().enumerate() {
        for (j, t) in array(item, "tax_lines")
            .map_err(|e| format!("{path}[{i}].{e}"))?
            .iter()
            .enumerate()
        {
            let price =
                opt_money_field(t, "price").map_err(|e| format!("{path}[{i}].tax_lines: {e}"))?;
            sum = sum.checked_add(price).ok_or_else(|| {
                beyond_range(format!(
                    "{path}[{i}].tax_lines[{j}]: field `price`: the tax lines' prices add up"
                ))
            })?;
        }
    }
    Ok(sum)
}

/// Converts one Shopify order to a canonical [`Order`]; the error names the field.
///
/// - `order_id` is the numeric `id`; `alt_ids` are `name` (`#1001`), the
///   name without `#`, and `order_number` (deduplicated): affiliate pixels
///   usually quote the human number.
/// - `amount` is net of tax and shipping, in the shop currency (`currency`):
///   `subtotal_price` (line items after discounts, before shipping) minus,
///   when `taxes_included` is true, the tax on the line items (`total_tax`
///   minus the shipping lines' tax). Duties and tips are not in `subtotal_price`.
/// - each refund's amount is also net of tax and shipping: the sum of its
///   `refund_line_items[].subtotal` (minus their `total_tax` when taxes are
///   included); a refund without line items (an amount-only refund) counts its
///   successful `refund` transactions minus any `shipping_refund` adjustment.
///   Time: `processed_at`, else `created_at`. Zero refunds are dropped.
/// - status: `cancelled_at` set or `voided` → cancelled; `refunded`,
///   `partially_refunded`; `paid` → fulfilled when `fulfillment_status` is
///   `fulfilled`, else paid; `pending`/`authorized`/`partially_paid`/`expired` → open.
/// - `customer.id`; `new_customer` from `customer.orders_count` (≤ 1 → new)
///   when present (Shopify removed it from the order's customer in 2022-04;
///   the fake and older proxies send it), else unknown.
/// - `coupon`: the first `discount_codes[].code`.
/// - click ids / UTM: `landing_site` query parameters, then `note_attributes`.
pub fn to_order(o: &Value, settings: &Settings) -> Result<Order, String> {
    let order_id = id_text(field(o, "id"), "id")?;
    let mut alt_ids: Vec<String> = Vec::new();
    let mut push_alt = |s: String| {
        if !s.is_empty() && s != order_id && !alt_ids.contains(&s) {
            alt_ids.push(s);
        }
    };
    if let Some(name) = field(o, "name").as_str() {
        push_alt(name.trim().to_owned());
        push_alt(name.trim().trim_start_matches('#').to_owned());
    }
    match field(o, "order_number") {
        Value::Null => {}
        v => push_alt(id_text(v, "order_number")?),
    }

    let created_at = time_field(o, "created_at")?.ok_or("field `created_at` is missing")?;
    let currency = field(o, "currency")
        .as_str()
        .map(|c| c.trim().to_ascii_uppercase())
        .filter(|c| plugin_api::currency::minor_unit_digits(c).is_some())
        .ok_or_else(|| {
            format!(
                "field `currency`: expected an ISO-4217 code, got {}",
                field(o, "currency")
            )
        })?;
    let taxes_included = field(o, "taxes_included").as_bool().unwrap_or(false);

    let subtotal = money_field(o, "subtotal_price")?;
    let amount = if taxes_included {
        let total_tax = opt_money_field(o, "total_tax")?;
        let shipping_tax = tax_lines_sum(array(o, "shipping_lines")?, "shipping_lines")?;
        let line_tax = total_tax.checked_sub(shipping_tax).ok_or_else(|| {
            beyond_range("field `total_tax`: the total tax less the shipping lines' tax is".into())
        })?;
        subtotal
            .checked_sub(line_tax.max(Decimal::ZERO))
            .ok_or_else(|| {
                beyond_range(
                    "field `subtotal_price`: the subtotal less the line items' tax is".into(),
                )
            })?
    } else {
        subtotal
    };

    let mut refunds = Vec::new();
    for (i, r) in array(o, "refunds")?.iter().enumerate() {
        let at = match time_field(r, "processed_at").map_err(|e| format!("refunds[{i}].{e}"))? {
            Some(t) => t,
            None => time_field(r, "created_at")
                .map_err(|e| format!("refunds[{i}].{e}"))?
                .ok_or_else(|| format!("refunds[{i}]: field `created_at` is missing"))?,
        };
        let refund_amount =
            refund_net(r, taxes_included).map_err(|e| format!("refunds[{i}].{e}"))?;
        if refund_amount > Decimal::ZERO {
            refunds.push(Refund {
                amount: Money::new(refund_amount, currency.clone()),
                at,
            });
        }
    }

    let financial = field(o, "financial_status").as_str().unwrap_or("pending");
    let cancelled = !matches!(field(o, "cancelled_at"), Value::Null);
    let status = if cancelled || financial == "voided" {
        OrderStatus::Cancelled
    } else {
        match financial {
            "refunded" => OrderStatus::Refunded,
            "partially_refunded" => OrderStatus::PartiallyRefunded,
            "paid" if field(o, "fulfillment_status").as_str() == Some("fulfilled") => {
                OrderStatus::Fulfilled
            }
            "paid" => OrderStatus::Paid,
            "pending" | "authorized" | "partially_paid" | "expired" => OrderStatus::Open,
            other => return Err(format!("field `financial_status`: unknown value {other:?}")),
        }
    };

    let customer = field(o, "customer");
    let (customer_id, new_customer) = match customer {
        Value::Null => (None, None),
        c => {
            let id = match field(c, "id") {
                Value::Null => None,
                v => Some(id_text(v, "customer.id")?),
            };
            let count = parse::count(field(c, "orders_count"))
                .map_err(|e| format!("field `customer.orders_count`: {e}"))?;
            (id, count.map(|n| n <= 1))
        }
    };

    let coupon = array(o, "discount_codes")?
        .iter()
        .filter_map(|d| d.get("code").and_then(Value::as_str))
        .map(str::trim)
        .find(|c| !c.is_empty())
        .map(str::to_owned);

    let mut attribution = Attribution::default();
    if let Some(landing) = field(o, "landing_site").as_str() {
        attribution.add_url(settings, landing);
    }
    for a in array(o, "note_attributes")? {
        if let (Some(name), Some(value)) = (
            a.get("name").and_then(Value::as_str),
            a.get("value").and_then(Value::as_str),
        ) {
            attribution.add(settings, name, value);
        }
    }

    Ok(Order {
        source: String::new(),
        order_id,
        alt_ids,
        created_at,
        amount: Money::new(amount, currency),
        customer_id,
        new_customer,
        coupon,
        click_ids: attribution.click_ids,
        utm: attribution.utm,
        refunds,
        status,
    })
}

/// A refund's amount net of tax and shipping (see [`to_order`]).
fn refund_net(r: &Value, taxes_included: bool) -> Result<Decimal, String> {
    let items = array(r, "refund_line_items")?;
    if !items.is_empty() {
        let mut sum = Decimal::ZERO;
        for (i, li) in items.iter().enumerate() {
            let subtotal = opt_money_field(li, "subtotal")
                .map_err(|e| format!("refund_line_items[{i}]: {e}"))?;
            sum = sum.checked_add(subtotal).ok_or_else(|| {
                beyond_range(format!(
                    "refund_line_items[{i}]: field `subtotal`: the refund line items' subtotals add up"
                ))
            })?;
            if taxes_included {
                let tax = opt_money_field(li, "total_tax")
                    .map_err(|e| format!("refund_line_items[{i}]: {e}"))?;
                sum = sum.checked_sub(tax).ok_or_else(|| {
                    beyond_range(format!(
                        "refund_line_items[{i}]: field `total_tax`: the refund line items' subtotals less their tax are"
                    ))
                })?;
            }
        }
        return Ok(sum.max(Decimal::ZERO));
    }
    let mut sum = Decimal::ZERO;
    for (i, t) in array(r, "transactions")?.iter().enumerate() {
        let kind = t.get("kind").and_then(Value::as_str);
        let status = t.get("status").and_then(Value::as_str);
        if kind == Some("refund") && status.is_none_or(|s| s == "success") {
            let amount = money_field(t, "amount").map_err(|e| format!("transactions[{i}]: {e}"))?;
            sum = sum.checked_add(amount).ok_or_else(|| {
                beyond_range(format!(
                    "transactions[{i}]: field `amount`: the refund transactions' amounts add up"
                ))
            })?;
        }
    }
    for (i, adj) in array(r, "order_adjustments")?.iter().enumerate() {
        if adj.get("kind").and_then(Value::as_str) == Some("shipping_refund") {
            let a = opt_money_field(adj, "amount")
                .map_err(|e| format!("order_adjustments[{i}]: {e}"))?;
            let t = opt_money_field(adj, "tax_amount")
                .map_err(|e| format!("order_adjustments[{i}]: {e}"))?;
            sum = a
                .abs()
                .checked_add(t.abs())
                .and_then(|shipping| sum.checked_sub(shipping))
                .ok_or_else(|| {
                    beyond_range(format!(
                        "order_adjustments[{i}]: fields `amount` and `tax_amount`: the refund less its shipping refund is"
                    ))
                })?;
        }
    }
    Ok(sum.max(Decimal::ZERO))
}

#[cfg(test)]
mod unit {
    use super::*;

    #[test]
    fn retry_after_and_call_limit() {
        assert_eq!(retry_after_ms(Some("2.0")), Some(2000));
        assert_eq!(retry_after_ms(Some(" 0.5 ")), Some(500));
        assert_eq!(retry_after_ms(Some("soon")), None);
        assert_eq!(call_limit_pause_ms(Some("10/40")), None);
        assert_eq!(call_limit_pause_ms(Some("32/40")), Some(6000));
        assert_eq!(call_limit_pause_ms(Some("garbage")), None);
    }

    /// QA24 F4-C/D: header values overflowed the multiplies (`secs * 1000`,
    /// `used * 10`, `(used - size / 2) * 500`) or gave a wait past the
    /// clock's range; each is clamped to MAX_WAIT_MS first.
    #[test]
    fn huge_retry_after_and_call_limit_headers_are_clamped_not_overflowed() {
        assert_eq!(retry_after_ms(Some("1e26")), Some(MAX_WAIT_MS));
        assert_eq!(
            retry_after_ms(Some("79228162514264337593543950335")),
            Some(MAX_WAIT_MS)
        );
        assert_eq!(retry_after_ms(Some("-5")), Some(0));
        assert_eq!(
            call_limit_pause_ms(Some("18014398509481983/1")),
            Some(MAX_WAIT_MS)
        );
        assert_eq!(
            call_limit_pause_ms(Some("9223372036854775807/9223372036854775807")),
            Some(MAX_WAIT_MS)
        );
        assert_eq!(
            call_limit_pause_ms(Some("-9223372036854775808/9223372036854775807")),
            None
        );
        assert_eq!(call_limit_pause_ms(Some("400/400")), Some(100_000));
    }

    #[test]
    fn link_header_next_cursor() {
        let resp = |link: &str| Response {
            status: 200,
            headers: [("link".to_owned(), link.to_owned())].into(),
            body: Vec::new(),
        };
        let both = r#"<https://s.myshopify.com/admin/api/2024-10/orders.json?limit=2&page_info=abc>; rel="previous", <https://s.myshopify.com/admin/api/2024-10/orders.json?limit=2&page_info=def%3D>; rel="next""#;
        assert_eq!(
            next_page_info(&resp(both)).unwrap().as_deref(),
            Some("def=")
        );
        let prev_only = r#"<https://s.myshopify.com/admin/api/2024-10/orders.json?limit=2&page_info=abc>; rel="previous""#;
        assert_eq!(next_page_info(&resp(prev_only)).unwrap(), None);
        assert!(next_page_info(&resp(r#"<https://x/o.json?limit=2>; rel="next""#)).is_err());
    }
}
