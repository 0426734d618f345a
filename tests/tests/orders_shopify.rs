//! The orders connector (shopify mode) against the fake Shopify, in process:
//! `plugin_api::testing::FakeHost` stands in for the daemon's plugin host
//! (it injects the access token the way the host's `AuthSpec::Header` does).

use plugin_api::protocol::{Checkpoint, ErrorKind, SessionOpen, Window};
use plugin_api::testing::{open_read, FakeHost, Outcome};
use plugin_api::{Order, OrderStatus, Record};
use reckon_plugin_orders::Orders;
use reckon_tests::fakes::shopify::{totals, ShopifyConfig, ShopifyFake};
use rust_decimal::Decimal;
use serde_json::json;

fn window() -> Window {
    Window {
        from: chrono::NaiveDate::from_ymd_opt(2026, 11, 1).unwrap(),
        to: chrono::NaiveDate::from_ymd_opt(2026, 11, 20).unwrap(),
    }
}

fn open(page_size: u32) -> SessionOpen {
    open_read(
        "shop",
        "http://fake-shop.test",
        json!({ "mode": "shopify", "base_url": "http://fake-shop.test", "page_size": page_size }),
        window(),
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

#[test]
fn orders_equal_the_fakes_ground_truth() {
    let fake = ShopifyFake::generate(ShopifyConfig {
        orders: 640,
        ..ShopifyConfig::default()
    });
    let out = pull(&fake, open(100));
    out.result.as_ref().unwrap();
    assert!(out.uncommitted.is_empty());
    let got = orders(&out);
    let truth = fake.truth();
    assert_eq!(totals(&got), totals(&truth));
    assert_eq!(got, truth);
    // 7 pages of 100, one checkpoint each.
    assert_eq!(out.requests.len(), 7);
    assert_eq!(out.checkpoints.len(), 7);
    // The generator covers the interesting cases.
    let count = |s: OrderStatus| got.iter().filter(|o| o.status == s).count();
    assert!(count(OrderStatus::PartiallyRefunded) > 0 && count(OrderStatus::Refunded) > 0);
    assert!(count(OrderStatus::Cancelled) > 0 && count(OrderStatus::Open) > 0);
    assert!(got.iter().any(|o| o.click_ids.len() == 2));
}

#[test]
fn a_refund_between_pulls_repulls_the_order_with_its_refund() {
    let fake = ShopifyFake::generate(ShopifyConfig {
        orders: 50,
        ..ShopifyConfig::default()
    });
    let first = pull(&fake, open(250));
    first.result.as_ref().unwrap();
    let idx = fake
        .orders()
        .iter()
        .position(|o| {
            o.refunds.is_empty() && o.cancelled_at.is_none() && o.base_financial == "paid"
        })
        .unwrap();
    let before = orders(&first)[idx].clone();
    let at = chrono::DateTime::parse_from_rfc3339("2026-11-15T10:00:00Z")
        .unwrap()
        .to_utc();
    let id = fake.add_refund(idx, Decimal::new(100, 2), at);

    // The next run's window starts after the first pull's data: only the
    // changed order is updated in it.
    let mut next = open(250);
    next.window = Some(Window {
        from: chrono::NaiveDate::from_ymd_opt(2026, 11, 15).unwrap(),
        to: chrono::NaiveDate::from_ymd_opt(2026, 11, 20).unwrap(),
    });
    next.checkpoints.insert(
        "orders".into(),
        Checkpoint {
            ..first.checkpoints.last().unwrap().clone()
        },
    );
    let second = pull(&fake, next);
    second.result.as_ref().unwrap();
    let again = orders(&second);
    assert_eq!(
        again.len(),
        1,
        "only the refunded order was updated in the window"
    );
    let after = &again[0];
    assert_eq!(after.order_id, id.to_string());
    assert_eq!(
        after.order_id, before.order_id,
        "same key: the store keeps a revision"
    );
    assert_ne!(after, &before);
    assert_eq!(after.refunded(), Decimal::new(100, 2));
    assert_eq!(after.status, OrderStatus::PartiallyRefunded);
    assert_eq!(after, &fake.truth()[idx]);

    // Through the store, as the daemon commits pages: the refund is a new
    // revision of the same order, the old value is kept.
    let dir = tempfile::tempdir().unwrap();
    let store = reckon::store::Store::open(dir.path()).unwrap();
    for out in [&first, &second] {
        let records: Vec<Record> = out
            .committed
            .iter()
            .cloned()
            .map(|mut r| {
                r.set_source("shop");
                r
            })
            .collect();
        store
            .commit_page("shop", &records, out.checkpoints.last(), chrono::Utc::now())
            .unwrap();
    }
    let stored = store
        .get_record(plugin_api::RecordKind::Order, "shop", &after.order_id)
        .unwrap()
        .unwrap();
    assert_eq!(stored.revision, 2);
    let old = store
        .revisions(plugin_api::RecordKind::Order, "shop", &after.order_id)
        .unwrap();
    assert_eq!(old.len(), 1);
    match &old[0].record {
        Record::Order(o) => assert!(o.refunds.is_empty()),
        other => panic!("{other:?}"),
    }
    assert_eq!(
        store.count_records(plugin_api::RecordKind::Order, Some("shop")),
        50
    );
}

#[test]
fn a_429_mid_sync_slows_down_and_completes() {
    let fake = ShopifyFake::generate(ShopifyConfig {
        orders: 300,
        ..ShopifyConfig::default()
    });
    fake.throttle(2, 3);
    // FakeHost does not retry as the daemon's host does: the plugin's own
    // asks (max_throttle_retries) meet all three 429s.
    let mut o = open(50);
    o.settings["max_throttle_retries"] = json!(3);
    let out = pull(&fake, o);
    out.result.as_ref().unwrap();
    assert_eq!(orders(&out), fake.truth());
    assert_eq!(fake.request_counts(), (6 + 3, 3));
    // Each 429 made the plugin wait Retry-After (1 s) before trying again.
    assert_eq!(out.sleeps.len(), 3);
    assert!(out.sleeps.windows(2).all(|w| w[1] > w[0]));
}

#[test]
fn a_malformed_order_is_reported_with_its_id_and_field() {
    let fake = ShopifyFake::generate(ShopifyConfig {
        orders: 120,
        ..ShopifyConfig::default()
    });
    let id = fake.corrupt(70, "subtotal_price", json!("12,34"));
    let out = pull(&fake, open(50));
    let err = out.result.unwrap_err();
    assert_eq!(err.kind, ErrorKind::BadResponse);
    assert!(err.message.contains("page 2"), "{}", err.message);
    assert!(
        err.message.contains(&format!("order {id} #1071")),
        "{}",
        err.message
    );
    assert!(
        err.message.contains("field `subtotal_price`"),
        "{}",
        err.message
    );
    // Page 1 is committed; nothing of page 2.
    assert_eq!(out.committed.len(), 50);
    assert_eq!(out.checkpoints.len(), 1);
}

#[test]
fn a_wrong_token_is_an_auth_error() {
    let fake = ShopifyFake::generate(ShopifyConfig::default());
    let out = FakeHost::handler(move |req| {
        let mut headers = req.headers.clone();
        headers.insert("x-shopify-access-token".into(), "wrong".into());
        fake.handle(&req.method, &req.url, &headers)
    })
    .run::<Orders>(open(50));
    let err = out.result.unwrap_err();
    assert_eq!(err.kind, ErrorKind::Auth);
    assert!(err.message.contains("401"), "{}", err.message);
}

/// QA30 L2: a window's days were UTC days whatever the connector's
/// `timezone`. In America/New_York, 1 November 2026 (the end of daylight
/// time, 25 hours) runs from 04:00Z to 05:00Z the next day: the orders read
/// are exactly those the fake holds as updated in that span (both bounds
/// inclusive, as Shopify's `updated_at_min`/`updated_at_max`), and the
/// finished window's watermark is its end.
#[test]
fn a_window_reads_the_connectors_timezone_days() {
    let fake = ShopifyFake::generate(ShopifyConfig {
        orders: 288,
        start: "2026-10-31T00:00:00Z".parse().unwrap(),
        days: 3,
        ..ShopifyConfig::default()
    });
    let day = chrono::NaiveDate::from_ymd_opt(2026, 11, 1).unwrap();
    let mut session = open(50);
    session.window = Some(Window { from: day, to: day });
    session.timezone = Some("America/New_York".into());
    let out = pull(&fake, session);
    out.result.as_ref().unwrap();
    let (start, end) = (
        "2026-11-01T04:00:00Z"
            .parse::<chrono::DateTime<chrono::Utc>>()
            .unwrap(),
        "2026-11-02T05:00:00Z"
            .parse::<chrono::DateTime<chrono::Utc>>()
            .unwrap(),
    );
    let ids_in = |s, e| -> Vec<String> {
        fake.orders()
            .iter()
            .filter(|o| s <= o.updated_at && o.updated_at <= e)
            .map(|o| o.id.to_string())
            .collect()
    };
    let got: Vec<String> = orders(&out).into_iter().map(|o| o.order_id).collect();
    assert_eq!(got, ids_in(start, end));
    // The test tells the zone's day from the UTC day: orders updated in the
    // hours where they differ exist on both sides.
    let utc_day = ids_in(
        "2026-11-01T00:00:00Z".parse().unwrap(),
        "2026-11-02T00:00:00Z".parse().unwrap(),
    );
    assert!(utc_day.iter().any(|id| !got.contains(id)));
    assert!(got.iter().any(|id| !utc_day.contains(id)));
    assert!(out.requests[0].url.contains(
        "updated_at_min=2026-11-01T04%3A00%3A00Z&updated_at_max=2026-11-02T05%3A00%3A00Z"
    ));
    assert_eq!(out.checkpoints.last().unwrap().watermark, end);
}
