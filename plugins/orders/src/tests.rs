//! Recorded-exchange tests: the fake host replays `fixtures/*.json` and
//! serves in-memory files.

use super::*;
use plugin_api::chrono::{NaiveDate, NaiveTime};
use plugin_api::protocol::{Checkpoint, ErrorKind, Window};
use plugin_api::rust_decimal::Decimal;
use plugin_api::testing::{open_read, Cassette, FakeHost, Reply};
use plugin_api::{Order, OrderStatus, Record};
use std::str::FromStr;

fn window() -> Window {
    Window {
        from: NaiveDate::from_ymd_opt(2026, 11, 1).unwrap(),
        to: NaiveDate::from_ymd_opt(2026, 11, 2).unwrap(),
    }
}

fn d(s: &str) -> Decimal {
    Decimal::from_str(s).unwrap()
}

fn order(r: &Record) -> &Order {
    match r {
        Record::Order(o) => o,
        other => panic!("expected an order, got {other:?}"),
    }
}

fn shopify_settings(page_size: u32) -> plugin_api::serde_json::Value {
    json!({ "mode": "shopify", "base_url": "http://fake", "page_size": page_size })
}

#[test]
fn shopify_reads_two_pages_waits_out_a_429_and_maps_every_field() {
    let cassette = Cassette::from_json(include_str!("../fixtures/shopify_two_pages.json")).unwrap();
    let out = FakeHost::replay(cassette)
        .with_http_latency(plugin_api::chrono::Duration::seconds(1))
        .run::<Orders>(open_read(
            "shop",
            "http://fake",
            shopify_settings(2),
            window(),
        ));
    out.result.as_ref().unwrap();
    assert!(out.uncommitted.is_empty());
    assert_eq!(out.committed.len(), 3);
    // The 429 made the plugin sleep Retry-After (2 s) from its answer
    // (answers take 1 s) before retrying.
    let gaps: Vec<i64> = out
        .request_times
        .windows(2)
        .map(|w| (w[1] - w[0]).num_seconds())
        .collect();
    assert_eq!(gaps, [1, 1 + 2]);

    let o1 = order(&out.committed[0]);
    assert_eq!(o1.order_id, "450789469");
    assert_eq!(o1.alt_ids, ["#1001", "1001"]);
    assert_eq!(o1.created_at.to_rfc3339(), "2026-11-01T15:00:00+00:00");
    assert_eq!(o1.amount.amount, d("90.00"));
    assert_eq!(o1.amount.currency, "USD");
    assert_eq!(o1.click_ids, ["IR-abc/1", "G-1"]);
    assert_eq!(o1.utm.source.as_deref(), Some("impact"));
    assert_eq!(o1.utm.campaign.as_deref(), Some("fall"));
    assert_eq!(o1.coupon.as_deref(), Some("FALL10"));
    assert_eq!(o1.customer_id.as_deref(), Some("207119551"));
    assert_eq!(o1.new_customer, Some(true));
    assert_eq!(o1.status, OrderStatus::Fulfilled);
    assert!(o1.refunds.is_empty());

    // Taxes included: 121.00 - (21.95 total tax - 0.95 shipping tax) = 100.00;
    // the refund is its line items' subtotal minus their tax.
    let o2 = order(&out.committed[1]);
    assert_eq!(o2.amount.amount, d("100.00"));
    assert_eq!(o2.amount.currency, "EUR");
    assert_eq!(o2.refunds.len(), 1);
    assert_eq!(o2.refunds[0].amount.amount, d("50.00"));
    assert_eq!(o2.refunds[0].at.to_rfc3339(), "2026-11-02T09:00:00+00:00");
    assert_eq!(o2.status, OrderStatus::PartiallyRefunded);
    assert_eq!(o2.new_customer, Some(false));
    assert_eq!(o2.click_ids, ["EF-77"]);

    let o3 = order(&out.committed[2]);
    assert_eq!(o3.status, OrderStatus::Cancelled);
    assert_eq!(o3.customer_id, None);

    // One checkpoint per page; the last closes the window.
    assert_eq!(out.checkpoints.len(), 2);
    assert_eq!(
        out.checkpoints[0].state["page_info"],
        "eyJsYXN0X2lkIjo0NTA3ODk0NzB9"
    );
    assert_eq!(
        out.checkpoints[1].watermark.to_rfc3339(),
        "2026-11-03T00:00:00+00:00"
    );
    plugin_api::serde_json::to_string(&out.committed).unwrap();
}

#[test]
fn shopify_resumes_at_the_checkpointed_page() {
    let mut open = open_read("shop", "http://fake", shopify_settings(250), window());
    open.checkpoints.insert(
        shopify::STREAM.into(),
        Checkpoint {
            stream: shopify::STREAM.into(),
            watermark: window().from.and_time(NaiveTime::MIN).and_utc(),
            state: json!({ "window": "2026-11-01..2026-11-02", "page_info": "CUR" }),
            covers: None,
        },
    );
    let out = FakeHost::handler(|req| {
        assert!(
            req.url.ends_with("orders.json?limit=250&page_info=CUR"),
            "resumed at the wrong page: {}",
            req.url
        );
        Reply::json(200, &json!({ "orders": [] }))
    })
    .run::<Orders>(open);
    out.result.unwrap();
    assert_eq!(out.requests.len(), 1);
}

/// QA30 L2: the bounds were UTC days whatever the connector's `timezone`.
/// Now they are that zone's days, a DST change's 25-hour day included, and
/// the finished window's watermark is the zone's end of its last day.
#[test]
fn shopify_window_bounds_are_the_connectors_zone_days() {
    let day = |y, m, d| NaiveDate::from_ymd_opt(y, m, d).unwrap();
    for (tz, from, to, min, max) in [
        // New York leaves daylight time on 1 November 2026: 25 hours.
        (
            "America/New_York",
            day(2026, 11, 1),
            day(2026, 11, 1),
            "2026-11-01T04%3A00%3A00Z",
            "2026-11-02T05%3A00%3A00Z",
        ),
        (
            "America/New_York",
            day(2026, 10, 31),
            day(2026, 11, 2),
            "2026-10-31T04%3A00%3A00Z",
            "2026-11-03T05%3A00%3A00Z",
        ),
        // East of UTC the day begins the evening before, in UTC.
        (
            "Asia/Tokyo",
            day(2026, 11, 7),
            day(2026, 11, 7),
            "2026-11-06T15%3A00%3A00Z",
            "2026-11-07T15%3A00%3A00Z",
        ),
        // Without a zone from the host (an older host): UTC days.
        (
            "",
            day(2026, 11, 7),
            day(2026, 11, 7),
            "2026-11-07T00%3A00%3A00Z",
            "2026-11-08T00%3A00%3A00Z",
        ),
    ] {
        let mut open = open_read(
            "shop",
            "http://fake",
            shopify_settings(250),
            Window { from, to },
        );
        open.timezone = (!tz.is_empty()).then(|| tz.to_owned());
        let out =
            FakeHost::handler(|_| Reply::json(200, &json!({ "orders": [] }))).run::<Orders>(open);
        out.result.unwrap();
        assert_eq!(out.requests.len(), 1);
        let expected =
            format!("orders.json?status=any&updated_at_min={min}&updated_at_max={max}&limit=250");
        assert!(
            out.requests[0].url.ends_with(&expected),
            "{tz} {from}..{to}: {}",
            out.requests[0].url
        );
        let watermark = out.checkpoints.last().unwrap().watermark;
        assert_eq!(
            watermark.format("%Y-%m-%dT%H%%3A%M%%3A%SZ").to_string(),
            max,
            "{tz} {from}..{to}"
        );
    }
}

#[test]
fn shopify_malformed_order_names_page_order_and_field_and_commits_nothing() {
    let out = FakeHost::handler(|_| {
        Reply::json(
            200,
            &json!({ "orders": [{ "id": 42, "name": "#1042", "created_at": "2026-11-01T00:00:00Z",
                                  "currency": "USD", "subtotal_price": "12,50", "financial_status": "paid" }] }),
        )
    })
    .run::<Orders>(open_read("shop", "http://fake", shopify_settings(250), window()));
    let err = out.result.unwrap_err();
    assert_eq!(err.kind, ErrorKind::BadResponse);
    assert!(
        err.message.contains("stream `orders` page 1"),
        "{}",
        err.message
    );
    assert!(err.message.contains("order 42 #1042"), "{}", err.message);
    assert!(
        err.message.contains("field `subtotal_price`"),
        "{}",
        err.message
    );
    assert!(out.committed.is_empty() && out.checkpoints.is_empty());
}

/// One order of a page, `extra` replacing or adding its fields: USD,
/// subtotal 100.00, paid.
fn shopify_order(extra: plugin_api::serde_json::Value) -> plugin_api::serde_json::Value {
    let mut o = json!({ "id": 1001, "name": "#1001", "created_at": "2026-11-01T10:00:00Z",
                        "currency": "USD", "subtotal_price": "100.00", "financial_status": "paid" });
    for (k, v) in extra.as_object().unwrap() {
        o[k] = v.clone();
    }
    o
}

/// Runs a session on one page holding `body` (a JSON text, so a number's
/// literal is served as written).
fn shopify_page(body: String) -> plugin_api::testing::Outcome {
    FakeHost::handler(move |_| Reply {
        status: 200,
        headers: Default::default(),
        body: body.clone().into_bytes(),
    })
    .run::<Orders>(open_read(
        "shop",
        "http://fake",
        shopify_settings(250),
        window(),
    ))
}

/// The order one page of `order` gives, or the session's error message.
fn shopify_one(order: plugin_api::serde_json::Value) -> Result<Order, String> {
    let out = shopify_page(json!({ "orders": [order] }).to_string());
    match out.result {
        Ok(()) => Ok(order_of(&out)),
        Err(e) => {
            assert_eq!((e.kind, e.retryable), (ErrorKind::BadResponse, false));
            assert!(
                e.message
                    .starts_with("stream `orders` page 1, record 1 (order 1001 #1001): "),
                "{}",
                e.message
            );
            assert!(out.committed.is_empty());
            Err(e.message)
        }
    }
}

fn order_of(out: &plugin_api::testing::Outcome) -> Order {
    assert_eq!(out.committed.len(), 1, "{:?}", out.result);
    order(&out.committed[0]).clone()
}

/// QA24 F4-A/B: amounts read without a bound were added with the `Decimal`
/// operators and panicked the plugin (`Addition overflowed`). Since QA35
/// C-M2 every amount is refused at 10^15 when read (as in files mode), so
/// no sum of them leaves the range: each is a bad response naming the
/// order and the field.
#[test]
fn shopify_amounts_of_a_quadrillion_or_more_name_order_and_field() {
    let big = "70000000000000000000000000000";
    let neg = "-70000000000000000000000000000";
    let cases = [
        (
            json!({ "refunds": [{ "created_at": "2026-11-02T00:00:00Z",
                "refund_line_items": [{ "subtotal": "1" }, { "subtotal": big }] }] }),
            "refunds[0].refund_line_items[1]: field `subtotal`: ",
        ),
        (
            json!({ "taxes_included": true, "refunds": [{ "created_at": "2026-11-02T00:00:00Z",
                "refund_line_items": [{ "subtotal": "1", "total_tax": big }] }] }),
            "refunds[0].refund_line_items[0]: field `total_tax`: ",
        ),
        (
            json!({ "refunds": [{ "created_at": "2026-11-02T00:00:00Z", "transactions": [
                { "kind": "refund", "amount": "1" }, { "kind": "refund", "amount": big }] }] }),
            "refunds[0].transactions[1]: field `amount`: ",
        ),
        (
            json!({ "refunds": [{ "created_at": "2026-11-02T00:00:00Z",
                "transactions": [{ "kind": "refund", "amount": "1" }],
                "order_adjustments": [{ "kind": "shipping_refund", "amount": neg }] }] }),
            "refunds[0].order_adjustments[0]: field `amount`: ",
        ),
        (
            json!({ "taxes_included": true, "total_tax": neg }),
            "field `total_tax`: ",
        ),
        (
            json!({ "shipping_lines": [{ "tax_lines": [{ "price": "1" }, { "price": big }] }] }),
            "shipping_lines[0].tax_lines[1]: field `price`: ",
        ),
        (
            json!({ "subtotal_price": "1000000000000000" }),
            "field `subtotal_price`: ",
        ),
    ];
    for (extra, field) in cases {
        let err = shopify_one(shopify_order(extra)).unwrap_err();
        assert!(err.contains(field), "{err}");
        assert!(err.contains("is not below 1000000000000000"), "{err}");
    }
}

/// QA35 C-M2: Shopify amounts were read leniently: `"1.23457E+05"` (a
/// spreadsheet's 123456.78) was stored as 123457, `"1_000.00"` as 1000,
/// `"10.005"` USD as is, where files mode and postbacks refuse them. Now
/// they follow the same rules, with an error naming page, record, order
/// and field.
#[test]
fn shopify_amounts_follow_the_rules_of_files_mode() {
    let refund = |field: &str, value: &str| {
        json!({ "refunds": [{ "created_at": "2026-11-02T00:00:00Z",
            "refund_line_items": [{ field: value, "total_tax": "0.00" }] }] })
    };
    let cases = [
        (
            json!({ "subtotal_price": "1.23457E+05" }),
            "field `subtotal_price`: \"1.23457E+05\" is in scientific notation",
        ),
        (
            json!({ "subtotal_price": "1_000.00" }),
            "field `subtotal_price`: \"1_000.00\" has a digit separator",
        ),
        (
            json!({ "subtotal_price": "10.005" }),
            "field `subtotal_price`: 10.005 has more decimals than USD has (2)",
        ),
        (
            json!({ "currency": "JPY", "subtotal_price": "1000.5" }),
            "field `subtotal_price`: 1000.5 has more decimals than JPY has (0)",
        ),
        (
            json!({ "total_tax": "1.9E+1" }),
            "field `total_tax`: \"1.9E+1\" is in scientific notation",
        ),
        (
            refund("subtotal", "1e1"),
            "refunds[0].refund_line_items[0]: field `subtotal`: \"1e1\" is in scientific notation",
        ),
        (
            refund("subtotal_set", "x"),
            "refunds[0].refund_line_items[0]: field `subtotal_set`: expected a money bag",
        ),
        (
            json!({ "refunds": [{ "created_at": "2026-11-02T00:00:00Z",
                "transactions": [{ "kind": "refund", "amount": "5e1" }] }] }),
            "refunds[0].transactions[0]: field `amount`: \"5e1\" is in scientific notation",
        ),
        (
            json!({ "shipping_lines": [{ "tax_lines": [{ "price": "0.955" }] }] }),
            "shipping_lines[0].tax_lines[0]: field `price`: 0.955 has more decimals",
        ),
        (
            json!({ "refunds": [{ "created_at": "2026-11-02T00:00:00Z",
                "transactions": [{ "kind": "refund", "amount": "10.00" }],
                "refund_shipping_lines": [{ "subtotal_amount_set": { "shop_money": { "amount": "1,5" } } }] }] }),
            "refunds[0].refund_shipping_lines[0]: field `subtotal_amount_set.shop_money.amount`: \"1,5\" is not a decimal number",
        ),
    ];
    for (extra, expected) in cases {
        let err = shopify_one(shopify_order(extra)).unwrap_err();
        assert!(err.contains(expected), "{expected}\n{err}");
    }
    // The refund set as a money bag in place of the plain field.
    let set_case = json!({ "refunds": [{ "created_at": "2026-11-02T00:00:00Z",
        "refund_line_items": [{ "subtotal_set": { "shop_money": { "amount": "1.5e1" } } }] }] });
    let err = shopify_one(shopify_order(set_case)).unwrap_err();
    assert!(err.contains("is in scientific notation"), "{err}");

    // Numbers are read from their literal under the same rules: Shopify
    // sends a refund line item's `subtotal` as a JSON number (`60.5`).
    let page = |subtotal: &str| {
        format!(
            r##"{{"orders": [{{"id": 1001, "name": "#1001", "created_at": "2026-11-01T10:00:00Z",
            "currency": "USD", "subtotal_price": 100.50, "financial_status": "partially_refunded",
            "refunds": [{{"created_at": "2026-11-02T00:00:00Z",
                          "refund_line_items": [{{"subtotal": {subtotal}, "total_tax": 0.0}}]}}]}}]}}"##
        )
    };
    let out = shopify_page(page("60.5"));
    out.result.as_ref().unwrap();
    let o = order_of(&out);
    assert_eq!(o.amount.amount, d("100.50"));
    assert_eq!(o.refunds[0].amount.amount, d("60.5"));
    let out = shopify_page(page("6.05e1"));
    let err = out.result.unwrap_err().message;
    assert!(
        err.contains("refunds[0].refund_line_items[0]: field `subtotal`: \"6.05e1\" is in scientific notation"),
        "{err}"
    );
    // Trailing zeros are no decimals: 1000.00 JPY is 1000.
    let o = shopify_one(shopify_order(
        json!({ "currency": "JPY", "subtotal_price": "1000.00" }),
    ))
    .unwrap();
    assert_eq!(o.amount.amount, d("1000"));
}

/// QA35 C-M5: `cancelled_at` cancelled the order whatever it held (`""`,
/// `false`, `"not a date"`), and `taxes_included: "true"` counted as
/// false (the amount then kept its tax). Now `cancelled_at` is read like
/// any time and `taxes_included` must be a boolean.
#[test]
fn shopify_cancelled_at_and_taxes_included_are_read_strictly() {
    let status = |extra| shopify_one(shopify_order(extra)).map(|o| o.status);
    assert_eq!(status(json!({ "cancelled_at": "" })), Ok(OrderStatus::Paid));
    assert_eq!(
        status(json!({ "cancelled_at": null })),
        Ok(OrderStatus::Paid)
    );
    assert_eq!(
        status(json!({ "cancelled_at": "2026-11-01T12:00:00-05:00" })),
        Ok(OrderStatus::Cancelled)
    );
    for (bad, expected) in [
        (
            json!({ "cancelled_at": "not a date" }),
            "field `cancelled_at`: \"not a date\" is not an RFC 3339 timestamp",
        ),
        (
            json!({ "cancelled_at": false }),
            "field `cancelled_at`: expected a timestamp, got false",
        ),
        (
            json!({ "taxes_included": "true" }),
            "field `taxes_included`: expected true or false, got \"true\"",
        ),
        (
            json!({ "taxes_included": 1 }),
            "field `taxes_included`: expected true or false, got 1",
        ),
        (
            json!({ "financial_status": 1 }),
            "field `financial_status`: expected a status, got 1",
        ),
    ] {
        let err = status(bad).unwrap_err();
        assert!(err.contains(expected), "{expected}\n{err}");
    }
    let amount = |extra| shopify_one(shopify_order(extra)).unwrap().amount.amount;
    let taxed = json!({ "subtotal_price": "119.00", "total_tax": "19.00" });
    assert_eq!(amount(taxed.clone()), d("119.00"));
    let mut included = taxed;
    included["taxes_included"] = json!(true);
    assert_eq!(amount(included), d("100.00"));
}

/// QA35 C-M5: a refund line item without `subtotal` counted as zero, so
/// its refund vanished (a claim on a half-refunded order stayed matched
/// at the full amount); the newer money-bag form (`subtotal_set`) was not
/// read; transactions written `"Refund"` / `"SUCCESS"` were skipped.
#[test]
fn shopify_refund_line_items_read_their_money_bags_and_never_vanish() {
    let bag = |amount: &str| json!({ "shop_money": { "amount": amount, "currency_code": "EUR" } });
    let refund = |line: plugin_api::serde_json::Value| {
        json!({ "currency": "EUR", "subtotal_price": "119.00", "total_tax": "19.00",
                "taxes_included": true, "financial_status": "partially_refunded",
                "refunds": [{ "created_at": "2026-11-02T00:00:00Z", "refund_line_items": [line],
                    "transactions": [{ "kind": "refund", "status": "success", "amount": "59.50" }] }] })
    };
    let refunded = |extra| -> Result<Vec<Decimal>, String> {
        shopify_one(shopify_order(extra))
            .map(|o| o.refunds.iter().map(|r| r.amount.amount).collect())
    };
    // The money bags alone.
    assert_eq!(
        refunded(refund(json!({ "line_item_id": 1, "quantity": 1,
            "subtotal_set": bag("59.50"), "total_tax_set": bag("9.50") }))),
        Ok(vec![d("50.00")])
    );
    // Both forms: the bag (the exact decimal string) is read.
    assert_eq!(
        refunded(refund(json!({ "subtotal": 59.5, "total_tax": 9.5,
            "subtotal_set": bag("59.50"), "total_tax_set": bag("9.50") }))),
        Ok(vec![d("50.00")])
    );
    // Neither: an error naming the line item, not a vanished refund.
    let err = refunded(refund(json!({ "line_item_id": 1, "quantity": 1 }))).unwrap_err();
    assert!(
        err.contains(
            "refunds[0].refund_line_items[0]: field `subtotal` is missing (and so is `subtotal_set.shop_money.amount`)"
        ),
        "{err}"
    );
    // Taxes included: the line item's tax is needed to take it off.
    let err = refunded(refund(json!({ "subtotal": "59.50" }))).unwrap_err();
    assert!(
        err.contains("refunds[0].refund_line_items[0]: field `total_tax` is missing"),
        "{err}"
    );
    // An amount-only refund's transaction kind and status, in any case.
    let amount_only = json!({ "financial_status": "refunded", "refunds": [{
        "created_at": "2026-11-02T00:00:00Z",
        "transactions": [{ "kind": "Refund", "status": "SUCCESS", "amount": "100.00" },
                         { "kind": "refund", "status": "failure", "amount": "100.00" },
                         { "kind": "sale", "status": "success", "amount": "100.00" }] }] });
    assert_eq!(refunded(amount_only), Ok(vec![d("100.00")]));
}

/// QA35 C-M6: an `expired` order (authorized, never captured: no revenue)
/// was open, so its claims became payable; it is cancelled, like `voided`.
#[test]
fn shopify_expired_orders_are_cancelled_and_unpaid_ones_open() {
    for (financial, expected) in [
        ("expired", OrderStatus::Cancelled),
        ("voided", OrderStatus::Cancelled),
        ("pending", OrderStatus::Open),
        ("authorized", OrderStatus::Open),
        ("partially_paid", OrderStatus::Open),
        ("paid", OrderStatus::Paid),
    ] {
        let o = shopify_one(shopify_order(json!({ "financial_status": financial }))).unwrap();
        assert_eq!(o.status, expected, "{financial}");
    }
    let err = shopify_one(shopify_order(json!({ "financial_status": "EXPIRED" }))).unwrap_err();
    assert!(
        err.contains("field `financial_status`: unknown value \"EXPIRED\""),
        "{err}"
    );
}

/// QA35 C-L2: an amount-only refund counted the transactions, which carry
/// the tax, against an order amount net of tax: half of a 119.00 payment
/// (100.00 + 19.00 tax) back lowered the basis by 59.50, not 50.00. The
/// refund is now net of tax pro rata, `paid back × amount / (amount + line
/// items' tax)`, after taking off the shipping it refunds, rounded to the
/// currency's minor unit.
#[test]
fn shopify_amount_only_refunds_are_net_of_tax() {
    let refund_of = |order: plugin_api::serde_json::Value,
                     refund: plugin_api::serde_json::Value| {
        let mut extra = order;
        let mut r = refund;
        r["created_at"] = json!("2026-11-02T00:00:00Z");
        extra["financial_status"] = json!("partially_refunded");
        extra["refunds"] = json!([r]);
        let o = shopify_one(shopify_order(extra)).unwrap();
        (o.amount.amount, o.refunds[0].amount.amount)
    };
    let paid_back = |amount: &str| {
        json!({ "refund_line_items": [],
                "transactions": [{ "kind": "refund", "status": "success", "amount": amount }] })
    };
    let excluded =
        json!({ "subtotal_price": "100.00", "total_tax": "19.00", "taxes_included": false });
    let included =
        json!({ "subtotal_price": "119.00", "total_tax": "19.00", "taxes_included": true });
    assert_eq!(
        refund_of(excluded.clone(), paid_back("59.50")),
        (d("100.00"), d("50.00"))
    );
    assert_eq!(
        refund_of(included.clone(), paid_back("59.50")),
        (d("100.00"), d("50.00"))
    );
    // 10.00 × 100 / 119 = 8.403…
    assert_eq!(refund_of(excluded, paid_back("10.00")).1, d("8.40"));
    // Half away from zero at the minor unit: 0.21 × 50 / 100 = 0.105.
    let half_taxed = json!({ "subtotal_price": "50.00", "total_tax": "50.00" });
    assert_eq!(refund_of(half_taxed, paid_back("0.21")).1, d("0.11"));
    // JPY: no decimals.
    let yen = json!({ "currency": "JPY", "subtotal_price": "1000", "total_tax": "100" });
    assert_eq!(refund_of(yen, paid_back("333")).1, d("303"));
    // No tax: the refund as paid back.
    assert_eq!(refund_of(json!({}), paid_back("12.34")).1, d("12.34"));

    // Everything back, shipping (6.00 + 1.14 tax) included: the shipping
    // and its tax are taken off first, as a refund shipping line (2024-10)
    // or an order adjustment (earlier versions); the shipping line's tax
    // is not the line items'.
    let shipped = json!({ "subtotal_price": "100.00", "total_tax": "20.14",
        "shipping_lines": [{ "price": "6.00", "tax_lines": [{ "price": "1.14" }] }] });
    let bag = |amount: &str| json!({ "shop_money": { "amount": amount, "currency_code": "USD" } });
    let mut with_lines = paid_back("126.14");
    with_lines["refund_shipping_lines"] = json!([{ "subtotal_amount_set": bag("6.00"),
                                                    "tax_amount_set": bag("1.14") }]);
    assert_eq!(
        refund_of(shipped.clone(), with_lines),
        (d("100.00"), d("100.00"))
    );
    let mut with_adjustment = paid_back("126.14");
    with_adjustment["order_adjustments"] = json!([{ "kind": "shipping_refund",
                                                    "amount": "-6.00", "tax_amount": "-1.14" }]);
    assert_eq!(
        refund_of(shipped, with_adjustment),
        (d("100.00"), d("100.00"))
    );
}

#[test]
fn shopify_refused_token_is_an_auth_error() {
    let out = FakeHost::handler(|_| {
        Reply::json(401, &json!({"errors": "[API] Invalid API key or access token (unrecognized login or wrong password)"}))
    })
    .run::<Orders>(plugin_api::testing::open_check("shop", "http://fake", shopify_settings(250)));
    assert_eq!(out.result.unwrap_err().kind, ErrorKind::Auth);
}

#[test]
fn shopify_endless_throttling_gives_up_with_a_retryable_error() {
    let out = FakeHost::handler(|_| Reply {
        status: 429,
        headers: [("retry-after".to_owned(), "1.0".to_owned())].into(),
        body: b"{\"errors\":\"Exceeded 2 calls per second\"}".to_vec(),
    })
    .run::<Orders>(open_read(
        "shop",
        "http://fake",
        json!({ "mode": "shopify", "base_url": "http://fake", "max_throttle_retries": 3 }),
        window(),
    ));
    let err = out.result.unwrap_err();
    assert_eq!(err.kind, ErrorKind::RateLimited);
    assert!(err.retryable);
    assert_eq!(out.requests.len(), 4);
}

/// QA25 N6: the pause for a nearly full call-limit bucket (up to 10
/// minutes) slept without a word. QA35 C-L3: it was also taken after the
/// last page, when no request follows; it is taken before the next one.
#[test]
fn shopify_call_limit_pause_is_logged_and_taken_before_the_next_page_only() {
    let page = |link: Option<&str>| {
        let mut headers: std::collections::BTreeMap<String, String> = [(
            "x-shopify-shop-api-call-limit".to_owned(),
            "400/400".to_owned(),
        )]
        .into();
        if let Some(l) = link {
            headers.insert("link".into(), format!("<{l}>; rel=\"next\""));
        }
        Reply {
            status: 200,
            headers,
            body: b"{\"orders\": []}".to_vec(),
        }
    };
    let open = || open_read("shop", "http://fake", shopify_settings(250), window());
    // One page: nothing follows, no pause.
    let out = FakeHost::handler(move |_| page(None)).run::<Orders>(open());
    out.result.as_ref().unwrap();
    assert!(out.sleeps.is_empty(), "{:?}", out.sleeps);
    assert!(out
        .logs
        .iter()
        .all(|l| l.message != "pausing for Shopify's call limit"));

    // Two pages: one pause, before the second request.
    let out = FakeHost::handler(move |req| {
        if req.url.contains("page_info") {
            page(None)
        } else {
            page(Some(
                "http://fake/admin/api/2024-10/orders.json?limit=250&page_info=P2",
            ))
        }
    })
    .run::<Orders>(open());
    out.result.as_ref().unwrap();
    assert_eq!(out.requests.len(), 2);
    assert_eq!(out.sleeps.len(), 1);
    assert_eq!(
        (out.request_times[1] - out.request_times[0]).num_seconds(),
        100
    );
    let pause = out
        .logs
        .iter()
        .find(|l| l.message == "pausing for Shopify's call limit")
        .expect("the pause is logged");
    assert_eq!(pause.level, plugin_api::protocol::LogLevel::Info);
    assert_eq!(pause.fields["wait_ms"], "100000");
    assert_eq!(pause.fields["call_limit"], "400/400");
    assert_eq!(pause.fields["page"], "stream `orders` page 2");
}

/// A checkpoint of window 2026-11-01..2026-11-02 whose cursor is `CUR`,
/// with the page number it points at when `page` is given.
fn resumed_open(page: Option<u32>) -> plugin_api::protocol::SessionOpen {
    let mut open = open_read("shop", "http://fake", shopify_settings(250), window());
    let mut state = json!({ "window": "2026-11-01..2026-11-02", "page_info": "CUR" });
    if let Some(p) = page {
        state["page"] = json!(p);
    }
    open.checkpoints.insert(
        shopify::STREAM.into(),
        Checkpoint {
            stream: shopify::STREAM.into(),
            watermark: window().from.and_time(NaiveTime::MIN).and_utc(),
            state,
            covers: None,
        },
    );
    open
}

/// QA35 C-L1: a stored cursor Shopify no longer accepts (HTTP 400, as for
/// an expired `page_info`) failed every rerun of the window, as "page 1".
/// The window is read again from its first page instead.
#[test]
fn shopify_a_refused_stored_cursor_reads_the_window_again_from_its_first_page() {
    let out = FakeHost::handler(|req| {
        if req.url.contains("page_info=CUR") {
            Reply::json(
                400,
                &json!({ "errors": { "page_info": ["Invalid value."] } }),
            )
        } else {
            assert!(
                req.url.contains("status=any&updated_at_min="),
                "{}",
                req.url
            );
            Reply::json(200, &json!({ "orders": [shopify_order(json!({}))] }))
        }
    })
    .run::<Orders>(resumed_open(Some(3)));
    out.result.as_ref().unwrap();
    assert_eq!(out.requests.len(), 2);
    assert_eq!(out.committed.len(), 1);
    let warn = out
        .logs
        .iter()
        .find(|l| l.message.starts_with("the stored cursor was refused"))
        .expect("the restart is logged");
    assert_eq!(warn.fields["page"], "stream `orders` page 3");
    assert_eq!(
        out.checkpoints.last().unwrap().watermark.to_rfc3339(),
        "2026-11-03T00:00:00+00:00"
    );

    // A 400 for a cursor of this session is an error, not a loop.
    let out = FakeHost::handler(|req| {
        if req.url.contains("page_info") {
            Reply::json(
                400,
                &json!({ "errors": { "page_info": ["Invalid value."] } }),
            )
        } else {
            let mut r = Reply::json(200, &json!({ "orders": [] }));
            r.headers.insert(
                "link".into(),
                "<http://fake/admin/api/2024-10/orders.json?limit=250&page_info=P2>; rel=\"next\""
                    .into(),
            );
            r
        }
    })
    .run::<Orders>(resumed_open(Some(3)));
    let err = out.result.unwrap_err();
    assert!(
        err.message
            .starts_with("stream `orders` page 2: request failed (HTTP 400)"),
        "{}",
        err.message
    );
    assert_eq!(out.requests.len(), 3);
}

/// QA35 C-L1: an error on a page resumed from a checkpoint said "page 1".
/// The checkpoint now holds the page number its cursor points at; one of
/// an older version (without it) says the count starts at the resume.
#[test]
fn shopify_a_resumed_page_is_named_by_its_number() {
    let bad = || {
        FakeHost::handler(|_| {
            Reply::json(
                200,
                &json!({ "orders": [shopify_order(json!({ "subtotal_price": "1e3" }))] }),
            )
        })
    };
    let err = bad()
        .run::<Orders>(resumed_open(Some(3)))
        .result
        .unwrap_err();
    assert!(
        err.message
            .starts_with("stream `orders` page 3, record 1 (order 1001 #1001): "),
        "{}",
        err.message
    );
    let err = bad().run::<Orders>(resumed_open(None)).result.unwrap_err();
    assert!(
        err.message.starts_with(
            "stream `orders` page 1 of this session, which resumed at a stored cursor, record 1"
        ),
        "{}",
        err.message
    );

    // Each page's checkpoint holds the number of the page its cursor
    // points at; the last (no cursor) none; a session resumed at an
    // unnumbered cursor numbers none.
    let two_pages = || {
        FakeHost::handler(|req| {
            let mut r = Reply::json(200, &json!({ "orders": [] }));
            if !req.url.contains("page_info=P2") {
                r.headers.insert(
                    "link".into(),
                    "<http://fake/admin/api/2024-10/orders.json?limit=250&page_info=P2>; rel=\"next\""
                        .into(),
                );
            }
            r
        })
    };
    let pages = |out: plugin_api::testing::Outcome| {
        out.result.unwrap();
        out.checkpoints
            .iter()
            .map(|c| c.state["page"].clone())
            .collect::<Vec<_>>()
    };
    let fresh = open_read("shop", "http://fake", shopify_settings(250), window());
    assert_eq!(
        pages(two_pages().run::<Orders>(fresh)),
        [json!(2), json!(null)]
    );
    assert_eq!(
        pages(two_pages().run::<Orders>(resumed_open(Some(4)))),
        [json!(5), json!(null)]
    );
    assert_eq!(
        pages(two_pages().run::<Orders>(resumed_open(None))),
        [json!(null), json!(null)]
    );
}

fn files_settings() -> plugin_api::serde_json::Value {
    json!({ "mode": "files", "directory": "/srv/orders", "default_currency": "EUR" })
}

const CSV: &str = "\
order_id,created_at,amount,currency,alt_ids,coupon,click_ids,utm_source,refund_amount,refunded_at,status,customer_id,new_customer
A-1,2026-11-01T10:00:00+01:00,100.00,USD,1001|#1001,SAVE5,gc-1|ir-2,google,,,,c1,true
A-2,2026-11-01 12:00:00,50,,,,,,50,2026-11-03T00:00:00Z,,c2,0
A-3,2026-11-02,20.5,usd,,,,,5,2026-11-03T00:00:00Z,fulfilled,,
";

const JSONL: &str = r#"{"order_id":"B-1","created_at":"2026-11-01T00:00:00Z","amount":12.5,"currency":"GBP","click_ids":["k1"],"utm":{"source":"tiktok"},"refunds":[{"amount":"2.5","at":"2026-11-02T00:00:00Z"}]}

{"order_id":"B-2","created_at":"2026-11-01T00:00:00Z","amount":"7","status":"cancelled"}
"#;

#[test]
fn files_reads_csv_and_jsonl_and_maps_every_column() {
    let out = FakeHost::handler(|_| panic!("files mode makes no HTTP request"))
        .with_file("a.csv", CSV)
        .with_file("b.jsonl", JSONL)
        .with_file("notes.txt", "ignored")
        .run::<Orders>(open_read("drop", "", files_settings(), window()));
    out.result.as_ref().unwrap();
    let ids: Vec<_> = out
        .committed
        .iter()
        .map(|r| order(r).order_id.as_str())
        .collect();
    assert_eq!(ids, ["A-1", "A-2", "A-3", "B-1", "B-2"]);
    let a1 = order(&out.committed[0]);
    assert_eq!(a1.created_at.to_rfc3339(), "2026-11-01T09:00:00+00:00");
    assert_eq!(a1.alt_ids, ["1001", "#1001"]);
    assert_eq!(a1.click_ids, ["gc-1", "ir-2"]);
    assert_eq!(a1.utm.source.as_deref(), Some("google"));
    assert_eq!(a1.coupon.as_deref(), Some("SAVE5"));
    assert_eq!(a1.new_customer, Some(true));
    assert_eq!(a1.status, OrderStatus::Paid);
    let a2 = order(&out.committed[1]);
    assert_eq!(a2.amount.currency, "EUR"); // default_currency
    assert_eq!(a2.status, OrderStatus::Refunded);
    assert_eq!(a2.new_customer, Some(false));
    let a3 = order(&out.committed[2]);
    assert_eq!(a3.created_at.to_rfc3339(), "2026-11-02T00:00:00+00:00");
    assert_eq!(a3.amount.currency, "USD");
    assert_eq!(a3.status, OrderStatus::Fulfilled);
    assert_eq!(a3.refunded(), d("5"));
    let b1 = order(&out.committed[3]);
    assert_eq!(b1.amount.amount, d("12.5"));
    assert_eq!(b1.utm.source.as_deref(), Some("tiktok"));
    assert_eq!(b1.status, OrderStatus::PartiallyRefunded);
    assert_eq!(order(&out.committed[4]).status, OrderStatus::Cancelled);
    // One checkpoint per file plus the closing one, remembering both files.
    assert_eq!(out.checkpoints.len(), 3);
    let files = out.checkpoints[2].state["files"].as_object().unwrap();
    assert_eq!(files.len(), 2);
    assert_eq!(files["a.csv"]["size"], CSV.len());
}

#[test]
fn files_unchanged_are_skipped_and_changed_are_read_again() {
    let first = FakeHost::handler(|_| panic!("no HTTP"))
        .with_file("a.csv", CSV)
        .with_file("b.jsonl", JSONL)
        .run::<Orders>(open_read("drop", "", files_settings(), window()));
    first.result.as_ref().unwrap();
    let cp = first.checkpoints.last().unwrap().clone();

    let changed_csv = CSV.replace("A-3,2026-11-02,20.5", "A-3,2026-11-02,20.6");
    let mut open = open_read("drop", "", files_settings(), window());
    open.checkpoints.insert(files::STREAM.into(), cp);
    let second = FakeHost::handler(|_| panic!("no HTTP"))
        .with_file("a.csv", changed_csv)
        .with_file("b.jsonl", JSONL)
        .run::<Orders>(open);
    second.result.as_ref().unwrap();
    // Only the changed file was parsed again.
    let ids: Vec<_> = second
        .committed
        .iter()
        .map(|r| order(r).order_id.as_str())
        .collect();
    assert_eq!(ids, ["A-1", "A-2", "A-3"]);
    assert_eq!(order(&second.committed[2]).amount.amount, d("20.6"));
    let files = second.checkpoints.last().unwrap().state["files"]
        .as_object()
        .unwrap()
        .clone();
    assert_eq!(files.len(), 2);
}

#[test]
fn files_bad_csv_value_names_file_line_column_field_and_order() {
    let bad = "order_id,created_at,amount,currency\nA-1,2026-11-01T00:00:00Z,1,USD\nA-2,2026-11-01T00:00:00Z,12;5,USD\n";
    let out = FakeHost::handler(|_| panic!("no HTTP"))
        .with_file("a.csv", CSV)
        .with_file("z.csv", bad)
        .run::<Orders>(open_read("drop", "", files_settings(), window()));
    let err = out.result.unwrap_err();
    assert_eq!(err.kind, ErrorKind::BadResponse);
    assert_eq!(
        err.message,
        "file `z.csv` line 3, column 3 (`amount`), order A-2: \"12;5\" is not a decimal number"
    );
    // The good file before it is committed; nothing of the bad one.
    assert_eq!(out.committed.len(), 3);
    assert!(out.uncommitted.is_empty());
}

#[test]
fn files_bad_jsonl_line_names_file_line_and_column() {
    let bad = "{\"order_id\":\"B-1\",\"created_at\":\"2026-11-01T00:00:00Z\",\"amount\":\"1\",\"currency\":\"USD\"}\n{\"order_id\":\"B-2\",\"created_at\":\"2026-11-01T00:00:00Z\",\"amount\":1,\"currency\":\"USD\",}\n";
    let err = files::parse_jsonl("b.jsonl", bad.as_bytes(), &cx_settings()).unwrap_err();
    assert_eq!(err.line, 2);
    assert!(err.column.is_some());
    assert!(
        err.to_string()
            .starts_with("file `b.jsonl` line 2, column "),
        "{err}"
    );

    let bad_field =
        "{\"order_id\":\"B-9\",\"created_at\":\"yesterday\",\"amount\":1,\"currency\":\"USD\"}\n";
    let err = files::parse_jsonl("b.jsonl", bad_field.as_bytes(), &cx_settings()).unwrap_err();
    assert_eq!(
        err.to_string(),
        "file `b.jsonl` line 1, column 19 (`created_at`), order B-9: \"yesterday\" is not a time reckon reads: \
         write RFC 3339 (`2026-11-02T10:00:00+01:00`, `2026-11-02T09:00:00Z`), `YYYY-MM-DD HH:MM:SS` (UTC) or `YYYY-MM-DD` (UTC)"
    );

    let unknown = "{\"order_id\":\"B-9\",\"created_at\":\"2026-11-01\",\"amount\":1,\"currency\":\"USD\",\"amout\":2}\n";
    let err = files::parse_jsonl("b.jsonl", unknown.as_bytes(), &cx_settings()).unwrap_err();
    assert_eq!(err.field.as_deref(), Some("amout"));
}

#[test]
fn files_unknown_csv_column_is_reported_on_the_header() {
    let err = files::parse_csv(
        "a.csv",
        b"order_id,created_at,amount,curency\n",
        &cx_settings(),
    )
    .unwrap_err();
    assert_eq!(err.line, 1);
    assert_eq!(err.column, Some(4));
    assert_eq!(err.field.as_deref(), Some("curency"));
}

/// QA: a `;`-separated (or tab-separated) file said `unknown column
/// order_id;created_at;amount;currency`; it names the separator instead.
#[test]
fn files_csv_with_another_separator_says_columns_need_commas() {
    for (csv, sep) in [
        "order_id;created_at;amount;currency\nA;2026-11-01;1;USD\n",
        "\u{feff}order_id\tcreated_at\tamount\nA\t2026-11-01\t1\n",
    ]
    .into_iter()
    .zip(["semicolons", "tabs"])
    {
        let err = files::parse_csv("s.csv", csv.as_bytes(), &cx_settings()).unwrap_err();
        assert_eq!(
            err.to_string(),
            format!(
                "file `s.csv` line 1: the header row is separated by {sep}: columns must be \
                 separated by commas (save the file as comma-separated CSV)"
            )
        );
    }
    // Excel's `sep=;` line before the header (QA8 F4).
    for (csv, line) in [
        ("sep=;\norder_id;created_at;amount;currency\n", "sep=;"),
        ("\u{feff}SEP=,\norder_id,created_at,amount\n", "SEP=,"),
    ] {
        let err = files::parse_csv("s.csv", csv.as_bytes(), &cx_settings()).unwrap_err();
        assert_eq!(
            err.to_string(),
            format!(
                "file `s.csv` line 1: the first line `{line}` is Excel's separator line, not the \
                 header row: remove it; columns must be separated by commas (save the file as \
                 comma-separated CSV)"
            )
        );
    }
    // A lone unknown column with a `;` in it is still an unknown column.
    let err =
        files::parse_csv("s.csv", b"order_id,created_at,amount,a;b\n", &cx_settings()).unwrap_err();
    assert!(err.message.starts_with("unknown column"), "{err}");
}

/// QA24 F5: a first header whose byte 4 falls inside a character
/// (`Numéro`, any CJK header) panicked slicing it for Excel's `sep=`.
#[test]
fn files_csv_with_a_non_ascii_first_header_is_an_unknown_column_not_a_panic() {
    for first in ["Numéro", "注文番号", "é"] {
        let csv = format!("{first},created_at,amount\nA-1,2026-11-01,1000\n");
        let err = files::parse_csv("commandes.csv", csv.as_bytes(), &cx_settings()).unwrap_err();
        assert_eq!((err.line, err.column), (1, Some(1)), "{err}");
        assert_eq!(err.field.as_deref(), Some(first));
        assert!(err.message.starts_with("unknown column"), "{err}");
    }
}

/// QA: `02/11/2026 10:00` said only "is not an RFC 3339 timestamp"; the
/// message lists every form the file reader accepts.
#[test]
fn files_bad_created_at_lists_the_accepted_forms() {
    for bad in ["02/11/2026 10:00", "02/11/2026"] {
        let csv = format!("order_id,created_at,amount,currency\nA,{bad},1,USD\n");
        let err = files::parse_csv("t.csv", csv.as_bytes(), &cx_settings()).unwrap_err();
        assert!(
            err.message.contains("RFC 3339")
                && err.message.contains("`YYYY-MM-DD HH:MM:SS` (UTC)")
                && err.message.contains("or `YYYY-MM-DD` (UTC)"),
            "{err}"
        );
    }
}

#[test]
fn files_mode_without_directory_is_a_config_error() {
    let out = FakeHost::handler(|_| panic!("no HTTP")).run::<Orders>(open_read(
        "drop",
        "",
        json!({ "mode": "files" }),
        window(),
    ));
    let err = out.result.unwrap_err();
    assert_eq!(err.kind, ErrorKind::Config);
    assert!(
        err.message.contains("settings.directory"),
        "{}",
        err.message
    );
}

fn cx_settings() -> config::Settings {
    plugin_api::serde_json::from_value(files_settings()).unwrap()
}

#[test]
fn manifest_declares_the_file_capability_and_serialises() {
    let m = Orders::manifest();
    assert_eq!(m.id, "orders");
    assert_eq!(m.kind, plugin_api::PluginKind::Orders);
    let cap = m.file_capability.as_ref().unwrap();
    assert_eq!(cap.directory_setting, "directory");
    assert_eq!(cap.suffixes, [".csv", ".jsonl"]);
    plugin_api::serde_json::to_string(&m).unwrap();
}

#[test]
fn files_same_order_id_twice_in_one_file_names_both_lines() {
    let csv = "order_id,created_at,amount,currency\n\
               A-1,2026-11-01T10:00:00Z,10.00,USD\n\
               A-2,2026-11-01T10:00:00Z,11.00,USD\n\
               A-1,2026-11-01T12:00:00Z,12.00,USD\n";
    let err = files::parse_csv("d.csv", csv.as_bytes(), &cx_settings()).unwrap_err();
    assert_eq!(
        err.to_string(),
        "file `d.csv` line 4, column 1 (`order_id`), order A-1: order id `A-1` appears twice \
         in this file (lines 2 and 4); give each order once per file"
    );
    let jsonl = "{\"order_id\":\"B-1\",\"created_at\":\"2026-11-01\",\"amount\":1,\"currency\":\"USD\"}\n\n\
                 {\"order_id\":\"B-1\",\"created_at\":\"2026-11-02\",\"amount\":2,\"currency\":\"USD\"}\n";
    let err = files::parse_jsonl("d.jsonl", jsonl.as_bytes(), &cx_settings()).unwrap_err();
    assert_eq!(
        err.to_string(),
        "file `d.jsonl` line 3, column 2 (`order_id`), order B-1: order id `B-1` appears twice \
         in this file (lines 1 and 3); give each order once per file"
    );
}

#[test]
fn files_ids_differing_only_in_case_or_spaces_are_the_same_order() {
    let csv = "order_id,created_at,amount,currency\n\
               A-1,2026-11-01T10:00:00Z,10.00,USD\n\
               a-1 ,2026-11-01T12:00:00Z,12.00,USD\n";
    let err = files::parse_csv("d.csv", csv.as_bytes(), &cx_settings()).unwrap_err();
    let msg = err.to_string();
    assert!(
        msg.contains("line 3")
            && msg.contains("is order `A-1` of line 2")
            && msg.contains("case-folded"),
        "{msg}"
    );
}

#[test]
fn files_refund_more_than_the_order_or_before_it_is_a_row_error() {
    let head = "order_id,created_at,amount,currency,refund_amount,refunded_at\n";
    let err = files::parse_csv(
        "r.csv",
        format!("{head}A-1,2026-11-01T10:00:00Z,10.00,USD,10.01,2026-11-02T00:00:00Z\n").as_bytes(),
        &cx_settings(),
    )
    .unwrap_err();
    assert_eq!(
        err.to_string(),
        "file `r.csv` line 2, column 5 (`refund_amount`), order A-1: refund 10.01 is more than \
         the order amount 10.00"
    );
    let err = files::parse_csv(
        "r.csv",
        format!("{head}A-1,2026-11-01T10:00:00Z,10.00,USD,5,2026-10-31T00:00:00Z\n").as_bytes(),
        &cx_settings(),
    )
    .unwrap_err();
    assert_eq!(
        err.to_string(),
        "file `r.csv` line 2, column 6 (`refunded_at`), order A-1: refund time \
         2026-10-31T00:00:00+00:00 is before the order was created (2026-11-01T10:00:00+00:00)"
    );
    // A full refund at the order's own time is fine.
    files::parse_csv(
        "r.csv",
        format!("{head}A-1,2026-11-01T10:00:00Z,10.00,USD,10.00,2026-11-01T10:00:00Z\n").as_bytes(),
        &cx_settings(),
    )
    .unwrap();
    // JSONL refund lists: each refund and their total.
    let jsonl = "{\"order_id\":\"B-1\",\"created_at\":\"2026-11-01\",\"amount\":\"10\",\"currency\":\"USD\",\
                 \"refunds\":[{\"amount\":\"6\",\"at\":\"2026-11-02\"},{\"amount\":\"5\",\"at\":\"2026-11-03\"}]}\n";
    let err = files::parse_jsonl("r.jsonl", jsonl.as_bytes(), &cx_settings()).unwrap_err();
    assert_eq!(err.field.as_deref(), Some("refunds"));
    assert!(
        err.message
            .contains("refunds total 11, more than the order amount 10"),
        "{err}"
    );
    let jsonl = "{\"order_id\":\"B-1\",\"created_at\":\"2026-11-02\",\"amount\":\"10\",\"currency\":\"USD\",\
                 \"refunds\":[{\"amount\":\"6\",\"at\":\"2026-11-01\"}]}\n";
    let err = files::parse_jsonl("r.jsonl", jsonl.as_bytes(), &cx_settings()).unwrap_err();
    assert!(err.message.starts_with("[0]: refund time"), "{err}");
}

#[test]
fn files_negative_amount_is_a_row_error_with_file_line_and_column() {
    let csv = "order_id,created_at,amount,currency\nA-1,2026-11-01T10:00:00Z,-10.00,USD\n";
    let err = files::parse_csv("n.csv", csv.as_bytes(), &cx_settings()).unwrap_err();
    assert_eq!(
        err.to_string(),
        "file `n.csv` line 2, column 3 (`amount`), order A-1: amount -10.00 is negative; give \
         the order amount (refunds go in refund_amount)"
    );
    let csv = "order_id,created_at,amount,currency,refund_amount,refunded_at\n\
               A-1,2026-11-01T10:00:00Z,10.00,USD,-1,2026-11-02\n";
    let err = files::parse_csv("n.csv", csv.as_bytes(), &cx_settings()).unwrap_err();
    assert_eq!(err.column, Some(5));
    assert!(err.message.contains("refund -1 is negative"), "{err}");
}

/// QA: `{"amount":"10","amount":"1000"}` synced and stored 1000.
#[test]
fn files_jsonl_key_given_twice_is_a_row_error() {
    let jsonl = "{\"order_id\":\"A-1\",\"created_at\":\"2026-11-01\",\"amount\":\"10\",\"amount\":\"1000\"}\n";
    let err = files::parse_jsonl("k.jsonl", jsonl.as_bytes(), &cx_settings()).unwrap_err();
    assert_eq!(
        err.to_string(),
        "file `k.jsonl` line 1, column 59 (`amount`), order A-1: key `amount` appears twice in \
         this line; which value is meant is unknown: give it once"
    );
    // Even with the same value: one key per line.
    let jsonl =
        "{\"order_id\":\"A-1\",\"order_id\":\"A-1\",\"created_at\":\"2026-11-01\",\"amount\":1}\n";
    let err = files::parse_jsonl("k.jsonl", jsonl.as_bytes(), &cx_settings()).unwrap_err();
    assert_eq!(err.field.as_deref(), Some("order_id"));
    assert_eq!(err.column, Some(19));
    // Inside `utm` or a refund, too.
    let jsonl = "{\"order_id\":\"A-1\",\"created_at\":\"2026-11-01\",\"amount\":\"10\",\
                 \"refunds\":[{\"amount\":\"1\",\"amount\":\"10\",\"at\":\"2026-11-02\"}]}\n";
    let err = files::parse_jsonl("k.jsonl", jsonl.as_bytes(), &cx_settings()).unwrap_err();
    assert_eq!(err.line, 1);
    assert!(
        err.message
            .starts_with("malformed JSON: key `amount` appears twice in an object"),
        "{err}"
    );
}

/// QA: a JSONL file saved with a byte-order mark failed "line 1, column 1:
/// malformed JSON".
#[test]
fn files_jsonl_with_a_byte_order_mark_is_read() {
    let jsonl =
        "\u{feff}{\"order_id\":\"A-1\",\"created_at\":\"2026-11-01\",\"amount\":\"10\"}\r\n\
                 {\"order_id\":\"A-2\",\"created_at\":\"2026-11-01\",\"amount\":\"11\"}\r\n";
    let orders = files::parse_jsonl("b.jsonl", jsonl.as_bytes(), &cx_settings()).unwrap();
    assert_eq!(orders.len(), 2);
    assert_eq!(orders[0].order_id, "A-1");
    // Only at the start of the file.
    let later = "{\"order_id\":\"A-1\",\"created_at\":\"2026-11-01\",\"amount\":\"10\"}\n\
                 \u{feff}{\"order_id\":\"A-2\",\"created_at\":\"2026-11-01\",\"amount\":\"11\"}\n";
    let err = files::parse_jsonl("b.jsonl", later.as_bytes(), &cx_settings()).unwrap_err();
    assert_eq!(err.line, 2);
}

/// QA: `1.23457E+05` (Excel's display of 123456.78) was stored as 123457,
/// `1_000` and `1e3` as 1000.
#[test]
fn files_amounts_with_an_exponent_or_digit_separators_are_row_errors() {
    let head = "order_id,created_at,amount,currency,refund_amount,refunded_at\n";
    let err = |row: &str| {
        files::parse_csv("s.csv", format!("{head}{row}\n").as_bytes(), &cx_settings())
            .unwrap_err()
            .to_string()
    };
    assert_eq!(
        err("A-1,2026-11-01,1.23457E+05,USD,,"),
        "file `s.csv` line 2, column 3 (`amount`), order A-1: \"1.23457E+05\" is in scientific \
         notation: write the amount in full, e.g. 123456.78; a spreadsheet may have shortened it"
    );
    assert!(err("A-1,2026-11-01,1e3,USD,,").contains("scientific notation"));
    assert!(err("A-1,2026-11-01,1_000,USD,,").contains("\"1_000\" has a digit separator"));
    assert!(err("A-1,2026-11-01,100,USD,1E1,2026-11-02").contains("column 5 (`refund_amount`)"));
    let jsonl = "{\"order_id\":\"B-1\",\"created_at\":\"2026-11-01\",\"amount\":\"10\",\
                 \"refunds\":[{\"amount\":\"5e0\",\"at\":\"2026-11-02\"}]}\n";
    let e = files::parse_jsonl("s.jsonl", jsonl.as_bytes(), &cx_settings()).unwrap_err();
    assert!(
        e.message
            .starts_with("[0].amount: \"5e0\" is in scientific"),
        "{e}"
    );
}

/// QA21: an amount too large to store was refused by the host's check,
/// which named a page and record, not the file and line.
#[test]
fn files_amounts_of_a_quadrillion_or_more_are_row_errors() {
    let head = "order_id,created_at,amount,currency,refund_amount,refunded_at\n";
    let err = |row: &str| {
        files::parse_csv(
            "big.csv",
            format!("{head}{row}\n").as_bytes(),
            &cx_settings(),
        )
        .unwrap_err()
        .to_string()
    };
    assert_eq!(
        err("A-9,2026-11-02,12345678901234567.89,USD,,"),
        "file `big.csv` line 2, column 3 (`amount`), order A-9: 12345678901234567.89 is not \
         below 1000000000000000 in size, the largest Reckon stores (a misread number?)"
    );
    let ok = "A-9,2026-11-02,999999999999999.99,USD,,";
    assert!(files::parse_csv(
        "big.csv",
        format!("{head}{ok}\n").as_bytes(),
        &cx_settings()
    )
    .is_ok());
    let jsonl = "{\"order_id\":\"J-1\",\"created_at\":\"2026-11-02\",\"amount\":1000000000000000,\"currency\":\"USD\"}\n";
    let e = files::parse_jsonl("big.jsonl", jsonl.as_bytes(), &cx_settings()).unwrap_err();
    assert!(
        e.to_string().contains("1000000000000000 is not below"),
        "{e}"
    );
}

/// QA: fractional JPY (`10.5`) was accepted.
#[test]
fn files_more_decimals_than_the_currency_has_are_row_errors() {
    let head = "order_id,created_at,amount,currency,refund_amount,refunded_at\n";
    let parse =
        |row: &str| files::parse_csv("j.csv", format!("{head}{row}\n").as_bytes(), &cx_settings());
    assert_eq!(
        parse("A-1,2026-11-01,10.5,JPY,,").unwrap_err().to_string(),
        "file `j.csv` line 2, column 3 (`amount`), order A-1: 10.5 has more decimals than JPY \
         has (0); check the amount and the currency"
    );
    assert_eq!(
        parse("A-1,2026-11-01,100,JPY,0.5,2026-11-02")
            .unwrap_err()
            .column,
        Some(5)
    );
    assert!(parse("A-1,2026-11-01,1.005,USD,,").is_err());
    // Trailing zeros are not decimals; BHD has three.
    assert_eq!(
        parse("A-1,2026-11-01,1000.00,JPY,,").unwrap()[0]
            .amount
            .amount,
        d("1000")
    );
    parse("A-1,2026-11-01,1.005,BHD,,").unwrap();
}

/// QA: `paid` with a full refund, `partially_refunded` with none and
/// `refunded` with a refund of 0 were accepted.
#[test]
fn files_a_status_contradicting_the_refunds_is_a_row_error() {
    let head = "order_id,created_at,amount,currency,refund_amount,refunded_at,status\n";
    let parse =
        |row: &str| files::parse_csv("c.csv", format!("{head}{row}\n").as_bytes(), &cx_settings());
    let err = |row: &str| parse(row).unwrap_err().to_string();
    assert_eq!(
        err("A-1,2026-11-01,10,USD,10,2026-11-02,paid"),
        "file `c.csv` line 2, column 7 (`status`), order A-1: status paid, but the order is \
         refunded in full (10 of 10): write status refunded (or leave it empty)"
    );
    assert!(err("A-1,2026-11-01,10,USD,,,partially_refunded")
        .contains("status partially_refunded, but the refunds total 0 of the order amount 10"));
    assert!(
        err("A-1,2026-11-01,10,USD,10,2026-11-02,partially_refunded")
            .contains("partially_refunded")
    );
    assert!(err("A-1,2026-11-01,10,USD,0,2026-11-02,refunded")
        .contains("status refunded, but the refunds total 0 of the order amount 10"));
    assert!(err("A-1,2026-11-01,10,USD,4,2026-11-02,refunded").contains("total 4 of"));
    // Consistent or uninformative combinations are accepted.
    for (row, status) in [
        ("A-1,2026-11-01,10,USD,,,refunded", OrderStatus::Refunded),
        (
            "A-1,2026-11-01,10,USD,10,2026-11-02,refunded",
            OrderStatus::Refunded,
        ),
        (
            "A-1,2026-11-01,10,USD,4,2026-11-02,partially_refunded",
            OrderStatus::PartiallyRefunded,
        ),
        (
            "A-1,2026-11-01,10,USD,4,2026-11-02,fulfilled",
            OrderStatus::Fulfilled,
        ),
        ("A-1,2026-11-01,10,USD,0,2026-11-02,paid", OrderStatus::Paid),
        (
            "A-1,2026-11-01,10,USD,10,2026-11-02,cancelled",
            OrderStatus::Cancelled,
        ),
        ("A-1,2026-11-01,10,USD,,,cancelled", OrderStatus::Cancelled),
    ] {
        assert_eq!(parse(row).unwrap()[0].status, status, "{row}");
    }
}

/// QA6 F4: JSONL amounts sent as JSON numbers went through f64:
/// `12345678901234567.89` was stored as `12345678901234568`, and `1e3`,
/// `1.005e2` and a refund of `5e0` were accepted although the same values
/// as strings are refused.
#[test]
fn files_jsonl_number_amounts_are_read_exactly_and_refuse_exponents() {
    let line = |amount: &str, refunds: &str| {
        format!(
            "{{\"order_id\":\"B1\",\"created_at\":\"2026-11-01T10:00:00Z\",\"amount\":{amount},\"currency\":\"USD\"{refunds}}}\n"
        )
    };
    let parse = |text: String| files::parse_jsonl("n.jsonl", text.as_bytes(), &cx_settings());
    // 17 significant digits (f64 would give 1000000000000000), below the
    // 10^15 amounts are kept under.
    let orders = parse(line("999999999999999.99", "")).unwrap();
    assert_eq!(orders[0].amount.amount, d("999999999999999.99"));
    assert_eq!(orders[0].amount.amount.to_string(), "999999999999999.99");
    let orders = parse(line(
        "100.10",
        ",\"refunds\":[{\"amount\":0.10,\"at\":\"2026-11-02T00:00:00Z\"}]",
    ))
    .unwrap();
    assert_eq!(orders[0].amount.amount.to_string(), "100.10");
    assert_eq!(orders[0].refunds[0].amount.amount.to_string(), "0.10");
    for amount in ["1e3", "1.005e2", "1E+3"] {
        let e = parse(line(amount, "")).unwrap_err();
        assert_eq!(e.field.as_deref(), Some("amount"), "{amount}: {e}");
        assert_eq!(e.line, 1);
        assert!(
            e.to_string().contains(&format!(
                "line 1, column 54 (`amount`), order B1: \"{amount}\" is in scientific notation"
            )),
            "{amount}: {e}"
        );
    }
    let e = parse(line(
        "\"10\"",
        ",\"refunds\":[{\"amount\":5e0,\"at\":\"2026-11-02T00:00:00Z\"}]",
    ))
    .unwrap_err();
    assert_eq!(e.field.as_deref(), Some("refunds"));
    assert!(
        e.message
            .starts_with("[0].amount: \"5e0\" is in scientific"),
        "{e}"
    );
    let e = parse(line("99999999999999999999999999999999", "")).unwrap_err();
    assert!(
        e.message.contains("more digits than an amount can hold"),
        "{e}"
    );
}

// QA38b H1: an order id in two files of the drop. The file last in name
// order wins on every run; a re-read older file leaves such orders alone.

const HEADER: &str = "order_id,created_at,amount,currency,refund_amount,refunded_at\n";
/// The older export: X5 not refunded, X6 only here.
const OLD: &str = "X5,2026-10-07T12:00:00Z,60.00,USD,,\nX6,2026-10-08T12:00:00Z,50.00,USD,,\n";
/// A later export: X5 refunded.
const NEW: &str = "X5,2026-10-07T12:00:00Z,60.00,USD,60.00,2026-11-12T00:00:00Z\n";

/// One files-mode session over `files` (name, content), resuming from `cp`.
fn drop_run(
    files: &[(&str, String)],
    settings: plugin_api::serde_json::Value,
    cp: Option<&Checkpoint>,
) -> plugin_api::testing::Outcome {
    let mut open = open_read("drop", "", settings, window());
    if let Some(cp) = cp {
        open.checkpoints.insert(files::STREAM.into(), cp.clone());
    }
    let mut host = FakeHost::handler(|_| panic!("no HTTP"));
    for (name, content) in files {
        host = host.with_file(name, content.clone());
    }
    host.run::<Orders>(open)
}

/// The committed orders as `(id, refunded)`.
fn stored(out: &plugin_api::testing::Outcome) -> Vec<(String, Decimal)> {
    out.committed
        .iter()
        .map(|r| (order(r).order_id.clone(), order(r).refunded()))
        .collect()
}

fn pairs(v: &[(&str, &str)]) -> Vec<(String, Decimal)> {
    v.iter().map(|(id, r)| (id.to_string(), d(r))).collect()
}

/// The QA reproduction: the older file is read again (a line appended);
/// X5 is not emitted from it, so the later file's refund stays, and the
/// skip is said once for the file. Without the fix X5 came back unrefunded.
#[test]
fn files_a_reread_older_file_leaves_an_order_of_a_later_file_to_it() {
    let a = format!("{HEADER}{OLD}");
    let y = format!("{HEADER}{NEW}");
    let first = drop_run(&[("a.csv", a.clone())], files_settings(), None);
    first.result.as_ref().unwrap();
    let cp = first.checkpoints.last().unwrap();
    let second = drop_run(
        &[("a.csv", a.clone()), ("y.csv", y.clone())],
        files_settings(),
        Some(cp),
    );
    second.result.as_ref().unwrap();
    assert_eq!(stored(&second), pairs(&[("X5", "60.00")]));
    let cp = second.checkpoints.last().unwrap();

    let appended = format!("{a}X8,2026-11-07T12:00:00Z,1.00,USD,,\n");
    let third = drop_run(
        &[("a.csv", appended), ("y.csv", y)],
        files_settings(),
        Some(cp),
    );
    third.result.as_ref().unwrap();
    // X6 and X8 are only in a.csv: emitted; X5 is y.csv's.
    assert_eq!(stored(&third), pairs(&[("X6", "0"), ("X8", "0")]));
    let info = third
        .logs
        .iter()
        .find(|l| l.message == "orders also in a later file are left to it")
        .expect("the skip is logged");
    assert_eq!(info.level, plugin_api::protocol::LogLevel::Info);
    assert_eq!(info.fields["file"], "a.csv");
    assert_eq!(info.fields["orders"], "1");
    assert_eq!(info.fields["example"], "X5");
    assert_eq!(info.fields["later_file"], "y.csv");
    let done = third
        .logs
        .iter()
        .find(|l| l.message == "files done")
        .unwrap();
    assert_eq!(done.fields["left_to_later_files"], "1");
    // The checkpoint still remembers both files, in the same format.
    let files = third.checkpoints.last().unwrap().state["files"]
        .as_object()
        .unwrap();
    assert_eq!(files.len(), 2);
    assert!(files["a.csv"]["sha256"].is_string());
}

/// Both files new (or both changed) in one run: X5 is emitted once, from
/// the later file; X6, only in the older one, is emitted from it. Without
/// the fix X5 was emitted twice (older values, then later ones).
#[test]
fn files_changed_together_give_each_shared_order_once_from_the_later_file() {
    let a = format!("{HEADER}{OLD}");
    let y = format!("{HEADER}{NEW}");
    let first = drop_run(
        &[("a.csv", a.clone()), ("y.csv", y.clone())],
        files_settings(),
        None,
    );
    first.result.as_ref().unwrap();
    assert_eq!(
        stored(&first),
        pairs(&[("X6", "0"), ("X5", "60.00")]),
        "X6 from a.csv, X5 from y.csv only"
    );

    // Both change in the next run.
    let a2 = format!("{a}X8,2026-11-07T12:00:00Z,1.00,USD,,\n");
    let y2 = format!("{y}X9,2026-11-08T12:00:00Z,2.00,USD,,\n");
    let second = drop_run(
        &[("a.csv", a2), ("y.csv", y2)],
        files_settings(),
        first.checkpoints.last(),
    );
    second.result.as_ref().unwrap();
    assert_eq!(
        stored(&second),
        pairs(&[("X6", "0"), ("X8", "0"), ("X5", "60.00"), ("X9", "0")])
    );
}

/// The later file deleted: nothing is emitted until the older file changes;
/// then its values are stored, as no listed later file gives X5 any more.
#[test]
fn files_a_deleted_later_file_leaves_its_values_until_the_older_file_changes() {
    let a = format!("{HEADER}{OLD}");
    let y = format!("{HEADER}{NEW}");
    let first = drop_run(
        &[("a.csv", a.clone()), ("y.csv", y)],
        files_settings(),
        None,
    );
    first.result.as_ref().unwrap();

    let second = drop_run(
        &[("a.csv", a.clone())],
        files_settings(),
        first.checkpoints.last(),
    );
    second.result.as_ref().unwrap();
    assert!(second.committed.is_empty(), "{:?}", stored(&second));
    let cp = second.checkpoints.last().unwrap();
    assert!(cp.state["files"].get("y.csv").is_none());

    let a2 = format!("{a}X8,2026-11-07T12:00:00Z,1.00,USD,,\n");
    let third = drop_run(&[("a.csv", a2)], files_settings(), Some(cp));
    third.result.as_ref().unwrap();
    assert_eq!(
        stored(&third),
        pairs(&[("X5", "0"), ("X6", "0"), ("X8", "0")])
    );
}

/// A later file that does not parse fails the session, even unchanged (it
/// is parsed for its ids when an earlier file changed); as it was stored
/// before, nothing of the earlier file is stored until it is fixed.
#[test]
fn files_a_later_file_that_does_not_parse_fails_the_session_and_stores_nothing() {
    let a = format!("{HEADER}{OLD}");
    // No currency column: read with default_currency EUR.
    let y = "order_id,created_at,amount,refund_amount,refunded_at\n\
             X5,2026-10-07T12:00:00Z,60.00,60.00,2026-11-12T00:00:00Z\n"
        .to_owned();
    let first = drop_run(
        &[("a.csv", a.clone()), ("y.csv", y.clone())],
        files_settings(),
        None,
    );
    first.result.as_ref().unwrap();
    let cp = first.checkpoints.last().unwrap();

    // default_currency removed, a.csv changed: y.csv, unchanged, no longer parses.
    let no_default = json!({ "mode": "files", "directory": "/srv/orders" });
    let a2 = format!("{a}X8,2026-11-07T12:00:00Z,1.00,USD,,\n");
    let out = drop_run(&[("a.csv", a2.clone()), ("y.csv", y)], no_default, Some(cp));
    let err = out.result.as_ref().unwrap_err();
    assert_eq!(err.kind, ErrorKind::BadResponse);
    assert!(
        err.message.starts_with("file `y.csv` line 2")
            && err.message.contains("(`currency`)")
            && err.message.ends_with(
                "(the file is unchanged: it was read again because `a.csv` before it \
                 changed, and an order in both is taken from the later file)"
            ),
        "{}",
        err.message
    );
    assert!(out.committed.is_empty() && out.uncommitted.is_empty());
    assert!(out.checkpoints.is_empty());

    // A changed later file with a bad value: the same, without the note.
    let bad_y = format!("{HEADER}X5,2026-10-07T12:00:00Z,6O.00,USD,,\n");
    let out = drop_run(
        &[("a.csv", a2), ("y.csv", bad_y)],
        files_settings(),
        Some(cp),
    );
    assert_eq!(
        out.result.as_ref().unwrap_err().message,
        "file `y.csv` line 2, column 3 (`amount`), order X5: \"6O.00\" is not a decimal number"
    );
    assert!(out.committed.is_empty());
}
