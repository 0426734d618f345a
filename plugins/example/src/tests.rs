//! Recorded-exchange tests: the fake host replays `fixtures/*.json`.

use super::*;
use plugin_api::chrono::NaiveDate;
use plugin_api::protocol::{ErrorKind, Window};
use plugin_api::testing::{open_read, Cassette, FakeHost, Reply};
use plugin_api::{ConversionStatus, Record};

fn window() -> Window {
    Window {
        from: NaiveDate::from_ymd_opt(2026, 11, 1).unwrap(),
        to: NaiveDate::from_ymd_opt(2026, 11, 2).unwrap(),
    }
}

fn conv(r: &Record) -> &plugin_api::Conversion {
    match r {
        Record::Conversion(c) => c,
        other => panic!("expected a conversion, got {other:?}"),
    }
}

#[test]
fn reads_two_pages_and_the_reversal_stream() {
    let cassette = Cassette::from_json(include_str!("../fixtures/two_pages.json")).unwrap();
    let out = FakeHost::replay(cassette).run::<Example>(open_read(
        "net1",
        "http://fake",
        json!({ "page_size": 2 }),
        window(),
    ));
    out.result.as_ref().unwrap();
    assert!(out.uncommitted.is_empty());
    let ids: Vec<_> = out
        .committed
        .iter()
        .map(|r| conv(r).external_id.as_str())
        .collect();
    assert_eq!(ids, ["c1", "c2", "c3", "c1"]);
    let c2 = conv(&out.committed[1]);
    assert_eq!(c2.occurred_at.to_rfc3339(), "2026-11-02T04:59:59+00:00");
    assert_eq!(c2.commission.as_ref().unwrap().amount.to_string(), "5");
    assert!(c2.sale_amount.is_none());
    assert_eq!(
        conv(&out.committed[0])
            .sale_amount
            .as_ref()
            .unwrap()
            .currency,
        "USD"
    );
    assert_eq!(conv(&out.committed[3]).status, ConversionStatus::Reversed);
    // One checkpoint per page; the last of each stream closes the window.
    assert_eq!(out.checkpoints.len(), 3);
    assert_eq!(
        out.checkpoints[1].watermark.to_rfc3339(),
        "2026-11-03T00:00:00+00:00"
    );
    assert_eq!(out.checkpoints[0].state["cursor"], "cur-2");
}

#[test]
fn resumes_mid_window_from_its_checkpoint() {
    let mut open = open_read("net1", "http://fake", json!({ "page_size": 2 }), window());
    open.streams = vec![CONVERSIONS.into()];
    open.checkpoints.insert(
        CONVERSIONS.into(),
        Checkpoint {
            stream: CONVERSIONS.into(),
            watermark: window().from.and_time(NaiveTime::MIN).and_utc(),
            state: json!({ "window": "2026-11-01..2026-11-02", "cursor": "cur-2" }),
            covers: None,
        },
    );
    let out = FakeHost::handler(|req| {
        assert!(
            req.url.ends_with("&cursor=cur-2"),
            "resumed at the wrong page: {}",
            req.url
        );
        Reply::json(200, &json!({ "data": [], "next": null }))
    })
    .run::<Example>(open);
    out.result.as_ref().unwrap();
    assert_eq!(out.requests.len(), 1);
}

#[test]
fn a_malformed_record_names_stream_page_record_and_field_and_commits_nothing() {
    let out = FakeHost::handler(|_| {
        Reply::json(
            200,
            &json!({ "data": [{ "id": "bad1", "partner": {"id": "p"}, "created": "2026-11-01T00:00:00Z",
                                "amount": "12,5", "currency": "USD", "state": "approved" }], "next": null }),
        )
    })
    .run::<Example>(open_read("net1", "http://fake", json!({}), window()));
    let err = out.result.clone().unwrap_err();
    assert_eq!(err.kind, ErrorKind::BadResponse);
    assert!(
        err.message.contains("stream `conversions` page 1"),
        "{}",
        err.message
    );
    assert!(err.message.contains("bad1"), "{}", err.message);
    assert!(err.message.contains("field `amount`"), "{}", err.message);
    assert!(out.committed.is_empty() && out.checkpoints.is_empty());
}

#[test]
fn a_refused_key_is_an_auth_error() {
    let out = FakeHost::handler(|_| Reply::json(401, &json!({"error": "bad key"}))).run::<Example>(
        plugin_api::testing::open_check("net1", "http://fake", json!({})),
    );
    assert_eq!(out.result.unwrap_err().kind, ErrorKind::Auth);
}

#[test]
fn garbage_body_is_a_bad_response_not_a_panic() {
    let out = FakeHost::handler(|_| Reply {
        status: 200,
        headers: Default::default(),
        body: b"\xff\xfe<html>".to_vec(),
    })
    .run::<Example>(open_read("net1", "http://fake", json!({}), window()));
    assert_eq!(out.result.unwrap_err().kind, ErrorKind::BadResponse);
}
