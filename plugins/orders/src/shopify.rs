//! Shopify Admin REST API (2024-10): the `orders` stream.
//!
//! `GET /admin/api/2024-10/orders.json?status=any&updated_at_min=..&updated_at_max=..&limit=N`,
//! then the `Link` header's `rel="next"` URL (`?limit=N&page_info=CURSOR`; with
//! `page_info` Shopify accepts no other filter) until there is none. Each page
//! is committed with a checkpoint holding the window, the next cursor and
//! that page's number, so a crashed session resumes at the page it was on.
//! A stored cursor Shopify refuses (HTTP 400: cursors expire) is dropped
//! and the window read again from its first page.
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
//! down before the bucket is full by reading `X-Shopify-Shop-Api-Call-Limit`
//! (a pause before the next page's request; none after the last page).
//!
//! Mapping of one order to a canonical [`Order`] is in [`to_order`]; the
//! decisions (net amount, refund amount, status) are documented there and in
//! ARCHITECTURE.md, "Orders connector and postbacks". What this is not: no
//! customer lookups (the order's `customer.orders_count` is used when
//! present, see [`to_order`]).

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
    // The number of the page a stored cursor points at (QA35 C-L1: errors
    // called a resumed page "page 1"). A checkpoint of an older version
    // has none: its pages are then counted from the resumed one.
    let stored_page = resumed
        .and_then(|cp| cp.state.get("page").and_then(Value::as_u64))
        .and_then(|p| u32::try_from(p).ok());
    let mut resuming = page_info.is_some();
    let mut page = if resuming {
        stored_page.unwrap_or(1)
    } else {
        1
    };
    let mut counted_from_resume = resuming && stored_page.is_none();
    let mut watermark = cx
        .checkpoint(STREAM)
        .map(|cp| cp.watermark.max(from))
        .unwrap_or(from);

    let endpoint = format!("{}/admin/api/{API_VERSION}/orders.json", cx.base_url());
    let mut orders_total = 0usize;
    // The pause the last answer's call-limit header asks for, taken before
    // the next request only (QA35 C-L3: it was also taken after the last).
    let mut pause: Option<(i64, String)> = None;
    loop {
        let what = if counted_from_resume {
            format!(
                "stream `{STREAM}` page {page} of this session, which resumed at a stored cursor"
            )
        } else {
            format!("stream `{STREAM}` page {page}")
        };
        if let Some((wait_ms, call_limit)) = pause.take() {
            // Up to 10 minutes: said, not silent (QA25 N6).
            cx.info(
                "pausing for Shopify's call limit",
                &[
                    ("page", &what),
                    ("wait_ms", &wait_ms),
                    ("call_limit", &call_limit),
                ],
            );
            cx.sleep_for(Duration::milliseconds(wait_ms)).await?;
        }
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
        pause = call_limit_pause(&resp);
        if resuming && resp.status == 400 {
            // Shopify answers 400 (`{"errors":{"page_info":["Invalid
            // value."]}}`) for a cursor it no longer accepts: a stored one
            // may be days old. The window is read again from its first
            // page: its orders are upserts (QA35 C-L1: every rerun failed).
            cx.warn(
                "the stored cursor was refused; reading the window again from its first page",
                &[
                    ("page", &what),
                    ("status", &resp.status),
                    ("window", &window_key),
                ],
            );
            resuming = false;
            counted_from_resume = false;
            page_info = None;
            page = 1;
            continue;
        }
        resuming = false;
        let resp = resp.ok().map_err(|e| PluginError {
            message: format!("{what}: {}", e.message),
            ..e
        })?;
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
        let next_page = page.saturating_add(1);
        cx.commit(Checkpoint {
            stream: STREAM.into(),
            watermark,
            state: json!({
                "window": window_key,
                "page_info": page_info,
                // The number of the page the cursor points at, for errors
                // of a session that resumes there (unknown when this
                // session's own count began at an unnumbered cursor).
                "page": page_info.as_ref().filter(|_| !counted_from_resume).map(|_| next_page),
            }),
            covers: None,
        });
        if page_info.is_none() {
            break;
        }
        page = next_page;
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
/// default of 10 meant 66 requests per page). Any other answer is returned
/// as is, for the caller to check ([`Response::ok`]).
async fn send_throttled(
    cx: &Cx,
    settings: &Settings,
    req: Request,
    what: &str,
) -> Result<Response, PluginError> {
    let mut throttled = 0u32;
    loop {
        let resp = cx.http(req.clone()).await?;
        if resp.status != 429 {
            return Ok(resp);
        }
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
    }
}

/// The pause an answer's `X-Shopify-Shop-Api-Call-Limit` asks for before
/// the next request ([`call_limit_pause_ms`]) and the header, for the log.
fn call_limit_pause(resp: &Response) -> Option<(i64, String)> {
    let header = resp.header("x-shopify-shop-api-call-limit");
    call_limit_pause_ms(header).map(|ms| (ms, header.unwrap_or_default().to_owned()))
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

/// Reads the amounts of one order under the rules of files mode and
/// postbacks (QA35 C-M2: `1.23457E+05` was stored as 123457): written in
/// full ([`parse::plain_decimal_str`]: no exponent, no digit separators),
/// no more decimals than the order's currency has, below 10^15
/// ([`plugin_api::validate::amount_too_large`]). Shopify sends amounts as
/// strings; a JSON number is read from its literal ([`LiteralNumbers`]).
/// As every amount is below 10^15, the sums of an order's amounts stay far
/// inside `Decimal`'s range (about 7.9e28): they are added without checks.
struct Amounts<'a> {
    currency: &'a str,
    digits: u32,
}

impl Amounts<'_> {
    /// One amount; `Ok(None)` for null, `""` and `"-"`.
    fn value(&self, v: &Value) -> Result<Option<Decimal>, String> {
        let d = match v {
            Value::Null => None,
            Value::String(s) => parse::plain_decimal_str(s)?,
            // Only integers are numbers here: LiteralNumbers keeps any
            // other number as a string of its literal.
            Value::Number(n) => parse::plain_decimal_str(&n.to_string())?,
            other => return Err(format!("expected an amount, got {other}")),
        };
        if let Some(d) = d {
            if let Some(why) = plugin_api::validate::amount_too_large(d) {
                return Err(format!("{d} {why}"));
            }
            crate::files::check_decimals(d, self.currency, self.digits)?;
        }
        Ok(d)
    }

    /// Field `name` of `o`, if given.
    fn field(&self, o: &Value, name: &str) -> Result<Option<Decimal>, String> {
        self.value(field(o, name))
            .map_err(|e| format!("field `{name}`: {e}"))
    }

    /// Field `name` of `o`, which must be given.
    fn required(&self, o: &Value, name: &str) -> Result<Decimal, String> {
        self.field(o, name)?
            .ok_or_else(|| format!("field `{name}` is missing"))
    }

    /// Field `name` of `o`; absent is zero.
    fn or_zero(&self, o: &Value, name: &str) -> Result<Decimal, String> {
        Ok(self.field(o, name)?.unwrap_or_default())
    }

    /// The shop-currency amount of money bag `name`
    /// (`name.shop_money.amount`), if given.
    fn bag(&self, o: &Value, name: &str) -> Result<Option<Decimal>, String> {
        match field(o, name) {
            Value::Null => Ok(None),
            bag => match bag.pointer("/shop_money/amount") {
                Some(amount) => self
                    .value(amount)
                    .map_err(|e| format!("field `{name}.shop_money.amount`: {e}")),
                None => Err(format!(
                    "field `{name}`: expected a money bag {{\"shop_money\": {{\"amount\": ..}}}}, got {bag}"
                )),
            },
        }
    }

    /// A refund line item's amount `name` (`subtotal`, `total_tax`): its
    /// money bag `<name>_set` (a decimal string in the shop currency, what
    /// newer API versions are built on), else `name` (which Shopify sends
    /// as a JSON number); one of them must be given (QA35 C-M5: a line item
    /// without `subtotal` counted as zero and its refund vanished).
    fn bag_or_field(&self, o: &Value, name: &str) -> Result<Decimal, String> {
        let bag = format!("{name}_set");
        match self.bag(o, &bag)? {
            Some(d) => Ok(d),
            None => self.field(o, name)?.ok_or_else(|| {
                format!("field `{name}` is missing (and so is `{bag}.shop_money.amount`)")
            }),
        }
    }
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

/// Text field `name` compared without case (`"Refund"` is `"refund"`).
fn text_is(o: &Value, name: &str, expected: &str) -> bool {
    field(o, name)
        .as_str()
        .is_some_and(|s| s.trim().eq_ignore_ascii_case(expected))
}

/// Sum of `tax_lines[].price` of each element of `items`.
fn tax_lines_sum(amounts: &Amounts, items: &[Value], path: &str) -> Result<Decimal, String> {
    let mut sum = Decimal::ZERO;
    for (i, item) in items.iter().enumerate() {
        for (j, t) in array(item, "tax_lines")
            .map_err(|e| format!("{path}[{i}].{e}"))?
            .iter()
            .enumerate()
        {
            sum += amounts
                .or_zero(t, "price")
                .map_err(|e| format!("{path}[{i}].tax_lines[{j}]: {e}"))?;
        }
    }
    Ok(sum)
}

/// Converts one Shopify order to a canonical [`Order`]; the error names the field.
///
/// - `order_id` is the numeric `id`; `alt_ids` are `name` (`#1001`), the
///   name without `#`, and `order_number` (deduplicated): affiliate pixels
///   usually quote the human number.
/// - every amount is read as in files mode ([`Amounts`]): written in full,
///   no more decimals than `currency` has, below 10^15.
/// - `amount` is net of tax and shipping, in the shop currency (`currency`):
///   `subtotal_price` (line items after discounts, before shipping) minus,
///   when `taxes_included` is true, the tax on the line items (`total_tax`
///   minus the shipping lines' tax). Duties and tips are not in `subtotal_price`.
///   `taxes_included` must be `true` or `false`; absent or null is false.
/// - each refund's amount is also net of tax and shipping:
///   - with line items: the sum of their `subtotal` (minus their
///     `total_tax` when taxes are included), each read from its money bag
///     (`subtotal_set.shop_money.amount`) or else the plain field; a line
///     item with neither is an error;
///   - without (an amount-only refund): its successful `refund`
///     transactions (`kind` and `status` compared without case), less
///     the shipping it refunds with its tax (`order_adjustments` of kind
///     `shipping_refund`, `amount` + `tax_amount`; `refund_shipping_lines`,
///     `subtotal_amount_set` + `tax_amount_set`), times the order's share
///     net of tax, `amount / (amount + line items' tax)`, rounded to the
///     currency's minor unit half away from zero. The transactions are
///     what the customer got back, tax included, so this removes the
///     refund's tax pro rata (QA35 C-L2) and it is net like `amount`.
///
///   Time: `processed_at`, else `created_at`. Zero refunds are dropped.
/// - status: `cancelled_at` set (an RFC 3339 time; null or `""` is not
///   cancelled, anything else an error), `voided` or `expired` (an
///   authorization never captured: no revenue) → cancelled; `refunded`,
///   `partially_refunded`; `paid` → fulfilled when `fulfillment_status` is
///   `fulfilled`, else paid; `pending`/`authorized`/`partially_paid` → open;
///   `financial_status` absent or null is `pending`; any other value is an error.
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
    let amounts = Amounts {
        currency: &currency,
        digits: plugin_api::currency::minor_unit_digits(&currency).unwrap_or(2),
    };
    // A boolean, as Shopify sends it (QA35 C-M5: `"true"` read as false).
    let taxes_included = match field(o, "taxes_included") {
        Value::Null => false,
        Value::Bool(b) => *b,
        other => {
            return Err(format!(
                "field `taxes_included`: expected true or false, got {other}"
            ))
        }
    };

    let subtotal = amounts.required(o, "subtotal_price")?;
    let total_tax = amounts.or_zero(o, "total_tax")?;
    let shipping_tax = tax_lines_sum(&amounts, array(o, "shipping_lines")?, "shipping_lines")?;
    let line_tax = (total_tax - shipping_tax).max(Decimal::ZERO);
    let amount = if taxes_included {
        subtotal - line_tax
    } else {
        subtotal
    };
    // The part of what the customer paid for the line items that is net of
    // tax, for amount-only refunds.
    let gross = amount + line_tax;
    let net_share = if gross > Decimal::ZERO {
        (amount / gross).clamp(Decimal::ZERO, Decimal::ONE)
    } else {
        Decimal::ONE
    };

    let mut refunds = Vec::new();
    for (i, r) in array(o, "refunds")?.iter().enumerate() {
        let at = match time_field(r, "processed_at").map_err(|e| format!("refunds[{i}].{e}"))? {
            Some(t) => t,
            None => time_field(r, "created_at")
                .map_err(|e| format!("refunds[{i}].{e}"))?
                .ok_or_else(|| format!("refunds[{i}]: field `created_at` is missing"))?,
        };
        let refund_amount = refund_net(r, &amounts, taxes_included, net_share)
            .map_err(|e| format!("refunds[{i}].{e}"))?;
        if refund_amount > Decimal::ZERO {
            refunds.push(Refund {
                amount: Money::new(refund_amount, currency.clone()),
                at,
            });
        }
    }

    let financial = match field(o, "financial_status") {
        Value::Null => "pending",
        Value::String(s) => s.as_str(),
        other => {
            return Err(format!(
                "field `financial_status`: expected a status, got {other}"
            ))
        }
    };
    // Read like any time (QA35 C-M5: `""`, `false` or `"not a date"`
    // cancelled the order).
    let cancelled = time_field(o, "cancelled_at")?.is_some();
    let status = if cancelled || matches!(financial, "voided" | "expired") {
        // `expired`: the authorization lapsed uncaptured, no revenue, as
        // `voided` (QA35 C-M6: it was open, and its claims payable).
        OrderStatus::Cancelled
    } else {
        match financial {
            "refunded" => OrderStatus::Refunded,
            "partially_refunded" => OrderStatus::PartiallyRefunded,
            "paid" if field(o, "fulfillment_status").as_str() == Some("fulfilled") => {
                OrderStatus::Fulfilled
            }
            "paid" => OrderStatus::Paid,
            "pending" | "authorized" | "partially_paid" => OrderStatus::Open,
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

/// A refund's amount net of tax and shipping (see [`to_order`]);
/// `net_share` is the order's `amount / (amount + line items' tax)`.
fn refund_net(
    r: &Value,
    amounts: &Amounts,
    taxes_included: bool,
    net_share: Decimal,
) -> Result<Decimal, String> {
    let items = array(r, "refund_line_items")?;
    if !items.is_empty() {
        let mut sum = Decimal::ZERO;
        for (i, li) in items.iter().enumerate() {
            let at = |e: String| format!("refund_line_items[{i}]: {e}");
            sum += amounts.bag_or_field(li, "subtotal").map_err(at)?;
            if taxes_included {
                sum -= amounts.bag_or_field(li, "total_tax").map_err(at)?;
            }
        }
        return Ok(sum.max(Decimal::ZERO));
    }
    // An amount-only refund: what the customer got back, tax included.
    let mut paid_back = Decimal::ZERO;
    for (i, t) in array(r, "transactions")?.iter().enumerate() {
        let succeeded = match field(t, "status") {
            Value::Null => true,
            _ => text_is(t, "status", "success"),
        };
        if text_is(t, "kind", "refund") && succeeded {
            paid_back += amounts
                .required(t, "amount")
                .map_err(|e| format!("transactions[{i}]: {e}"))?;
        }
    }
    // Less the shipping it refunds, with the shipping's tax: an order
    // adjustment in versions before 2024-10, a refund shipping line since.
    let mut shipping = Decimal::ZERO;
    for (i, adj) in array(r, "order_adjustments")?.iter().enumerate() {
        if text_is(adj, "kind", "shipping_refund") {
            let at = |e: String| format!("order_adjustments[{i}]: {e}");
            shipping += amounts.or_zero(adj, "amount").map_err(at)?.abs();
            shipping += amounts.or_zero(adj, "tax_amount").map_err(at)?.abs();
        }
    }
    for (i, line) in array(r, "refund_shipping_lines")?.iter().enumerate() {
        let at = |e: String| format!("refund_shipping_lines[{i}]: {e}");
        for bag in ["subtotal_amount_set", "tax_amount_set"] {
            shipping += amounts
                .bag(line, bag)
                .map_err(at)?
                .unwrap_or_default()
                .abs();
        }
    }
    let merchandise = (paid_back - shipping).max(Decimal::ZERO);
    Ok((merchandise * net_share).round_dp_with_strategy(
        amounts.digits,
        plugin_api::rust_decimal::RoundingStrategy::MidpointAwayFromZero,
    ))
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
