//! QA35 tester C's findings on the orders connector (shopify mode), against
//! the fake Shopify in process (`plugin_api::testing::FakeHost` stands in
//! for the daemon's plugin host and injects the access token as it does).
//! Each test is named after what now holds; the finding is in its doc.

use chrono::{DateTime, Utc};
use plugin_api::protocol::{ErrorKind, SessionOpen, Window};
use plugin_api::testing::{open_read, FakeHost, Outcome};
use plugin_api::{Order, OrderStatus, Record};
use reckon_plugin_orders::Orders;
use reckon_tests::fakes::shopify::{ShopifyConfig, ShopifyFake};
use rust_decimal::Decimal;
use serde_json::json;

fn open(page_size: u32) -> SessionOpen {
    open_read(
        "shop",
        "http://fake-shop.test",
        json!({ "mode": "shopify", "base_url": "http://fake-shop.test", "page_size": page_size }),
        Window {
            from: chrono::NaiveDate::from_ymd_opt(2026, 11, 1).unwrap(),
            to: chrono::NaiveDate::from_ymd_opt(2026, 11, 20).unwrap(),
        },
    )
}

/// Runs one session against the fake, injecting auth like the host.
fn pull(fake: &ShopifyFake, open: SessionOpen) -> Outcome {
    FakeHost::handler(fake.host_handler()).run::<Orders>(open)
}

fn orders(out: &Outcome) -> Vec<Order> {
    out.committed
        .iter()
        .map(|r| match r {
            Record::Order(o) => o.clone(),
            other => panic!("expected orders, got {other:?}"),
        })
        .collect()
}

fn shop(orders: usize) -> ShopifyFake {
    ShopifyFake::generate(ShopifyConfig {
        orders,
        ..ShopifyConfig::default()
    })
}

/// Indexes of paid orders without refunds or cancellation, with taxes
/// included (`true`) or not.
fn plain_paid(fake: &ShopifyFake, taxes_included: bool) -> Vec<usize> {
    fake.orders()
        .iter()
        .enumerate()
        .filter(|(_, o)| {
            o.refunds.is_empty()
                && o.cancelled_at.is_none()
                && o.base_financial == "paid"
                && o.taxes_included == taxes_included
        })
        .map(|(i, _)| i)
        .collect()
}

fn at(s: &str) -> DateTime<Utc> {
    s.parse().unwrap()
}

/// C-L2: an amount-only refund (no line items) was counted as the
/// transactions' amount, tax included, against an order amount net of tax.
/// C-M5: refund line items served with their money bags only (`subtotal_set`,
/// no `subtotal`) counted as zero and their refunds vanished. Now both
/// equal the fake's truth: amount-only refunds net of tax pro rata, after
/// the shipping they refund (as `refund_shipping_lines`, 2024-10).
#[test]
fn amount_only_refunds_are_net_of_tax_and_money_bag_refunds_are_read() {
    let fake = shop(120);
    let excluded = plain_paid(&fake, false);
    let included = plain_paid(&fake, true);
    let when = at("2026-11-12T10:00:00Z");
    for (idx, paid_back, with_shipping) in [
        (excluded[0], "20.00", false),
        (excluded[1], "7.77", true),
        (included[0], "20.00", false),
        (included[1], "13.13", true),
    ] {
        fake.add_amount_only_refund(idx, paid_back.parse().unwrap(), with_shipping, when);
    }
    fake.serve_money_bags_only(true);
    let out = pull(&fake, open(50));
    out.result.as_ref().unwrap();
    let got = orders(&out);
    let truth = fake.truth();
    assert_eq!(got, truth);
    // The generator's refunds (line items, served as money bags) are there.
    let refunds = |os: &[Order]| os.iter().filter(|o| !o.refunds.is_empty()).count();
    assert!(refunds(&got) >= 4 + 10, "{}", refunds(&got));
    // One by hand: 20.00 back on a tax-exclusive order of net N with 8%
    // tax T is 20.00 × N / (N + T), to the cent.
    let o = &fake.orders()[excluded[0]];
    let expected = (Decimal::new(2000, 2) * o.net / (o.net + o.items_tax))
        .round_dp_with_strategy(2, rust_decimal::RoundingStrategy::MidpointAwayFromZero);
    let refund = &got[excluded[0]].refunds[0].amount.amount;
    assert_eq!(refund, &expected);
    assert!(*refund < Decimal::new(2000, 2));
}

/// C-M6: an `expired` order (authorized, never captured) was open, so its
/// claims became payable; it is cancelled like a voided one. Pending,
/// authorized and partially paid orders stay open.
#[test]
fn expired_orders_are_cancelled() {
    let fake = shop(60);
    let paid = plain_paid(&fake, false);
    let expired = fake.set_financial_status(paid[0], "expired");
    fake.set_financial_status(paid[1], "pending");
    fake.set_financial_status(paid[2], "partially_paid");
    let out = pull(&fake, open(50));
    out.result.as_ref().unwrap();
    let got = orders(&out);
    assert_eq!(got, fake.truth());
    let status = |i: usize| got[i].status;
    assert_eq!(got[paid[0]].order_id, expired.to_string());
    assert_eq!(status(paid[0]), OrderStatus::Cancelled);
    assert_eq!(status(paid[1]), OrderStatus::Open);
    assert_eq!(status(paid[2]), OrderStatus::Open);
}

/// C-M2: `"1.23457E+05"` (a spreadsheet's 123456.78) was stored as 123457;
/// C-M5: `cancelled_at: ""` cancelled the order. Amounts now follow the
/// rules of files mode, with an error naming page, record, order and
/// field; an empty `cancelled_at` is no cancellation.
#[test]
fn amounts_in_scientific_notation_are_refused_and_an_empty_cancelled_at_is_not_a_cancellation() {
    let fake = shop(80);
    let idx = plain_paid(&fake, false)[0];
    fake.corrupt(idx, "cancelled_at", json!(""));
    let out = pull(&fake, open(50));
    out.result.as_ref().unwrap();
    assert_eq!(orders(&out), fake.truth());
    assert_ne!(orders(&out)[idx].status, OrderStatus::Cancelled);

    let id = fake.corrupt(61, "subtotal_price", json!("1.23457E+05"));
    let out = pull(&fake, open(50));
    let err = out.result.unwrap_err();
    assert_eq!(err.kind, ErrorKind::BadResponse);
    let expected = format!(
        "stream `orders` page 2, record 12 (order {id} #1062): field `subtotal_price`: \"1.23457E+05\" is in scientific notation"
    );
    assert!(err.message.starts_with(&expected), "{}", err.message);
    assert_eq!(out.committed.len(), 50);
}

/// C-L1: a sync resuming a stored cursor the shop no longer accepts
/// (Shopify's cursors expire; it answers 400) failed every rerun of the
/// window, as "page 1". It now reads the window again from its first
/// page, and ends with every order.
#[test]
fn a_stored_cursor_the_shop_expired_reads_the_window_again() {
    let fake = shop(130);
    let first = pull(&fake, open(50));
    first.result.as_ref().unwrap();
    // The checkpoint of page 1, as a session that failed on page 2 leaves it.
    let stored = first.checkpoints[0].clone();
    assert!(stored.state["page_info"].is_string());
    assert_eq!(stored.state["page"], 2);
    fake.expire_cursors();

    let mut resumed = open(50);
    resumed.checkpoints.insert("orders".into(), stored);
    let (requests_before, _) = fake.request_counts();
    let out = pull(&fake, resumed);
    out.result.as_ref().unwrap();
    assert_eq!(orders(&out), fake.truth());
    // The refused cursor, then the window's three pages.
    assert_eq!(fake.request_counts().0 - requests_before, 1 + 3);
    assert!(out
        .logs
        .iter()
        .any(|l| l.message.starts_with("the stored cursor was refused")));
}

/// C-L3: the pause for a nearly full call-limit bucket was also taken
/// after the last page, when no request follows (7 s for a one-page sync
/// at 34/40). It is taken before each next page only.
#[test]
fn the_call_limit_pause_comes_before_a_next_page_only() {
    let fake = shop(130);
    fake.set_call_limit(34);
    let out = pull(&fake, open(50));
    out.result.as_ref().unwrap();
    assert_eq!(orders(&out), fake.truth());
    assert_eq!(out.requests.len(), 3);
    // 34/40: 14 over half full, at 2 a second: 7 s, before pages 2 and 3.
    assert_eq!(out.sleeps.len(), 2);
    let gaps: Vec<i64> = out
        .request_times
        .windows(2)
        .map(|w| (w[1] - w[0]).num_seconds())
        .collect();
    assert_eq!(gaps, [7, 7]);

    let one_page = shop(30);
    one_page.set_call_limit(34);
    let out = pull(&one_page, open(50));
    out.result.as_ref().unwrap();
    assert!(out.sleeps.is_empty(), "{:?}", out.sleeps);
}
