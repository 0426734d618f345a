//! Recorded-exchange tests: the fake host replays `fixtures/*.json`.

use super::*;
use plugin_api::chrono::NaiveDate;
use plugin_api::protocol::{ErrorKind, Window};
use plugin_api::rust_decimal::Decimal;
use plugin_api::testing::{open_read, Cassette, FakeHost, Reply};
use plugin_api::{Conversion, ConversionStatus, Record};
use std::str::FromStr;

fn window() -> Window {
    Window {
        from: NaiveDate::from_ymd_opt(2026, 11, 1).unwrap(),
        to: NaiveDate::from_ymd_opt(2026, 11, 2).unwrap(),
    }
}

fn conv(r: &Record) -> &Conversion {
    match r {
        Record::Conversion(c) => c,
        other => panic!("expected a conversion, got {other:?}"),
    }
}

#[test]
fn statuses_map_and_refunds_are_reversals() {
    use ConversionStatus::*;
    assert_eq!(row::status("new", None).unwrap(), Pending);
    assert_eq!(row::status("hold", None).unwrap(), Pending);
    assert_eq!(row::status("approved", None).unwrap(), Approved);
    assert_eq!(row::status("paid", Some("available")).unwrap(), Approved);
    assert_eq!(
        row::status("paid", Some("paid_and_refunded")).unwrap(),
        Reversed
    );
    assert_eq!(row::status("declined", None).unwrap(), Rejected);
    assert!(row::status("lost", None)
        .unwrap_err()
        .contains("field `reward_status`"));
}

#[test]
fn reads_transactions_then_rewards_by_cursor_in_cents_and_millis() {
    let cassette = Cassette::from_json(include_str!("../fixtures/cursor_pages.json")).unwrap();
    let out = FakeHost::replay(cassette).run::<PartnerStack>(open_read(
        "ps",
        "http://fake/api/v2",
        json!({ "page_size": 2 }),
        window(),
    ));
    out.result.as_ref().unwrap();
    let ids: Vec<_> = out
        .committed
        .iter()
        .map(|r| conv(r).external_id.as_str())
        .collect();
    assert_eq!(ids, ["rew_3", "rew_2", "rew_1"]);
    let r3 = conv(&out.committed[0]);
    assert_eq!(
        r3.commission.as_ref().unwrap().amount,
        Decimal::from_str("12.34").unwrap()
    );
    assert_eq!(r3.commission.as_ref().unwrap().currency, "EUR");
    assert_eq!(
        r3.sale_amount.as_ref().unwrap().amount,
        Decimal::from_str("123.40").unwrap(),
        "from the lookup"
    );
    assert_eq!(r3.order_id.as_deref(), Some("txn_3"));
    assert_eq!(r3.occurred_at.to_rfc3339(), "2026-11-01T10:00:00+00:00");
    assert_eq!(r3.partner_id, "part_a");
    assert_eq!(
        conv(&out.committed[1]).sale_amount.as_ref().unwrap().amount,
        Decimal::from(50),
        "embedded"
    );
    assert_eq!(conv(&out.committed[2]).status, ConversionStatus::Rejected);
    assert_eq!(out.checkpoints.len(), 2);
    assert_eq!(out.checkpoints[0].state["after"], json!("rew_2"));
}

#[test]
fn an_error_body_is_reported_with_its_message() {
    let out = FakeHost::handler(|_| {
        Reply::json(
            400,
            &json!({"message": "limit must be <= 250", "status": 400}),
        )
    })
    .run::<PartnerStack>(open_read("ps", "http://fake", json!({}), window()));
    let err = out.result.unwrap_err();
    assert_eq!(err.kind, ErrorKind::Upstream);
    assert!(
        err.message.contains("limit must be <= 250"),
        "{}",
        err.message
    );
}

#[test]
fn a_completed_window_is_pulled_again_from_the_start() {
    // Regression: the last page's cursor made a re-pull of the same window
    // start after the last reward, so review changes were never seen.
    let mut open = open_read("ps", "http://fake", json!({}), window());
    open.checkpoints.insert(
        REWARDS.into(),
        plugin_api::Checkpoint {
            stream: REWARDS.into(),
            watermark: "2026-11-03T00:00:00Z".parse().unwrap(),
            state: json!({ "window": "2026-11-01..2026-11-02", "after": "rew_9", "complete": true }),
        },
    );
    let out = FakeHost::handler(|req| {
        assert!(!req.url.contains("starting_after"), "{}", req.url);
        Reply::json(
            200,
            &json!({"data": {"has_more": false, "items": []}, "message": "ok", "status": 200}),
        )
    })
    .run::<PartnerStack>(open);
    out.result.unwrap();
    assert_eq!(out.requests.len(), 2);
}
