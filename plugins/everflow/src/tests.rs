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
fn resolves_the_timezone_then_pages_by_total_count() {
    let cassette = Cassette::from_json(include_str!("../fixtures/two_pages.json")).unwrap();
    let out = FakeHost::replay(cassette).run::<Everflow>(open_read(
        "ef",
        "http://fake",
        json!({ "page_size": 2 }),
        window(),
    ));
    out.result.as_ref().unwrap();
    let ids: Vec<_> = out
        .committed
        .iter()
        .map(|r| conv(r).external_id.as_str())
        .collect();
    assert_eq!(ids, ["c1", "c2", "c3"]);
    let c1 = conv(&out.committed[0]);
    assert_eq!(c1.click_id.as_deref(), Some("tx-1"));
    assert_eq!(c1.partner_id, "7");
    assert_eq!(c1.campaign_id.as_deref(), Some("12"));
    assert_eq!(
        c1.commission.as_ref().unwrap().amount,
        Decimal::from_str("4.1").unwrap()
    );
    assert_eq!(
        c1.sale_amount.as_ref().unwrap().amount,
        Decimal::from_str("41.00").unwrap()
    );
    assert_eq!(c1.occurred_at.to_rfc3339(), "2026-11-01T10:00:00+00:00");
    assert_eq!(c1.utm.source.as_deref(), Some("newsletter"));
    assert_eq!(conv(&out.committed[1]).status, ConversionStatus::Reversed);
    assert_eq!(conv(&out.committed[2]).status, ConversionStatus::Rejected);
    assert_eq!(out.checkpoints.len(), 2);
    assert_eq!(
        out.checkpoints[1].watermark.to_rfc3339(),
        "2026-11-03T00:00:00+00:00"
    );
}

#[test]
fn statuses_map_with_scrubs_as_rejections() {
    use row::status;
    assert_eq!(
        status("approved", false).unwrap(),
        ConversionStatus::Approved
    );
    assert_eq!(status("pending", false).unwrap(), ConversionStatus::Pending);
    assert_eq!(
        status("invalid", false).unwrap(),
        ConversionStatus::Rejected
    );
    assert_eq!(
        status("rejected", true).unwrap(),
        ConversionStatus::Rejected
    );
    assert_eq!(
        status("rejected", false).unwrap(),
        ConversionStatus::Reversed
    );
    assert!(status("weird", false)
        .unwrap_err()
        .contains("field `status`"));
}

#[test]
fn an_unknown_timezone_name_is_a_config_error() {
    let out = FakeHost::handler(|_| {
        Reply::json(
            200,
            &json!({"timezones": [{"timezone_id": 67, "timezone": "UTC"}]}),
        )
    })
    .run::<Everflow>(open_read(
        "ef",
        "http://fake",
        json!({ "timezone": "Mars/Olympus" }),
        window(),
    ));
    let err = out.result.unwrap_err();
    assert_eq!(err.kind, ErrorKind::Config);
    assert!(err.message.contains("Mars/Olympus"), "{}", err.message);
}

#[test]
fn a_429_waits_one_window_and_remaining_zero_pauses_before_the_next_page() {
    let mut n = 0;
    let out = FakeHost::handler(move |req| {
        n += 1;
        if req.url.contains("timezones") {
            return Reply::json(
                200,
                &json!({"timezones": [{"timezone_id": 67, "timezone": "UTC"}]}),
            );
        }
        if n == 2 {
            return Reply::json(429, &json!({"error": "rate limit exceeded"}));
        }
        let mut r = Reply::json(
            200,
            &json!({"conversions": [], "paging": {"page": 1, "page_size": 50, "total_count": 0}}),
        );
        r.headers.insert("x-ratelimit-remaining".into(), "0".into());
        r
    })
    .with_http_latency(plugin_api::chrono::Duration::seconds(5))
    .run::<Everflow>(open_read(
        "ef",
        "http://fake",
        json!({ "rate_limit_window_secs": 30 }),
        window(),
    ));
    out.result.unwrap();
    // Each answer takes 5 s: the retry goes 30 s after the 429's answer.
    let t = &out.request_times;
    assert_eq!(t.len(), 3);
    assert_eq!((t[2] - t[1]).num_seconds(), 5 + 30);
}

#[test]
fn a_completed_window_is_pulled_again_from_page_one() {
    // Regression: the last page's checkpoint made a re-pull of the same
    // window start after it, so restatements were never seen.
    let mut open = open_read("ef", "http://fake", json!({}), window());
    open.checkpoints.insert(
        CONVERSIONS.into(),
        plugin_api::Checkpoint {
            stream: CONVERSIONS.into(),
            watermark: "2026-11-03T00:00:00Z".parse().unwrap(),
            state: json!({ "window": "2026-11-01..2026-11-02", "page_done": 4, "complete": true }),
            covers: None,
        },
    );
    let out = FakeHost::handler(|req| {
        if req.url.contains("timezones") {
            return Reply::json(
                200,
                &json!({"timezones": [{"timezone_id": 67, "timezone": "UTC"}]}),
            );
        }
        assert!(req.url.contains("page=1&"), "{}", req.url);
        Reply::json(
            200,
            &json!({"conversions": [], "paging": {"page": 1, "page_size": 2000, "total_count": 0}}),
        )
    })
    .run::<Everflow>(open);
    out.result.unwrap();
    assert_eq!(out.checkpoints.len(), 1);
}

#[test]
fn an_echoed_page_size_of_zero_with_rows_left_is_a_bad_response_not_the_end() {
    let out = FakeHost::handler(|req| {
        if req.url.contains("timezones") {
            return Reply::json(
                200,
                &json!({"timezones": [{"timezone_id": 67, "timezone": "UTC"}]}),
            );
        }
        Reply::json(
            200,
            &json!({"conversions": [], "paging": {"page": 1, "page_size": 0, "total_count": 100}}),
        )
    })
    .run::<Everflow>(open_read("ef", "http://fake", json!({}), window()));
    let e = out.result.unwrap_err();
    assert_eq!(e.kind, plugin_api::ErrorKind::BadResponse);
    assert!(
        e.message
            .contains("paging.page_size is 0 while paging.total_count is 100"),
        "{}",
        e.message
    );
    assert!(out.checkpoints.is_empty(), "nothing may be marked complete");
}
