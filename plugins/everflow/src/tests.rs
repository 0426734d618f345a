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

fn one_row_page(fields: Value) -> Vec<u8> {
    let mut row = json!({
        "conversion_id": "c1", "conversion_unix_timestamp": 1793527200,
        "transaction_id": "tx-1", "status": "approved", "payout": 4.1,
        "sale_amount": 41, "currency_id": "USD", "order_id": "ORD-1",
        "relationship": {"affiliate": {"network_affiliate_id": 7}},
    });
    for (k, v) in fields.as_object().unwrap() {
        row[k] = v.clone();
    }
    plugin_api::serde_json::to_vec(
        &json!({"conversions": [row], "paging": {"page": 1, "page_size": 50, "total_count": 1}}),
    )
    .unwrap()
}

fn one_row(fields: Value) -> Result<Conversion, String> {
    let (_, mut records) = row::parse_page(&one_row_page(fields))?;
    match records.pop() {
        Some(Record::Conversion(c)) => Ok(c),
        other => panic!("expected one conversion, got {other:?}"),
    }
}

/// Regression (QA M2): `is_event`/`is_scrub`, untyped in the reference, were
/// read only as JSON booleans, so `1` became `false`: an upsell was stored as
/// a sale of the same order, and a scrubbed (never accepted) conversion as a
/// reversal of an accepted one.
#[test]
fn flags_sent_as_one_and_zero_are_read_and_event_names_an_event() {
    use plugin_api::EventType;
    let upsell = one_row(json!({"event": "Upsell", "is_event": 1})).unwrap();
    assert_eq!(upsell.event_type, EventType::Other);
    let scrub = one_row(json!({"status": "rejected", "is_scrub": 1})).unwrap();
    assert_eq!(scrub.status, ConversionStatus::Rejected);
    let scrub = one_row(json!({"status": "rejected", "is_scrub": "1"})).unwrap();
    assert_eq!(scrub.status, ConversionStatus::Rejected);
    let manual = one_row(json!({"status": "rejected", "is_scrub": "0"})).unwrap();
    assert_eq!(manual.status, ConversionStatus::Reversed);
    // `event` alone decides, as documented ("Base" for the base conversion).
    let event = one_row(json!({"event": "Upsell"})).unwrap();
    assert_eq!(event.event_type, EventType::Other);
    let base = one_row(json!({"event": "Base", "is_event": 0})).unwrap();
    assert_eq!(base.event_type, EventType::Sale);
    let base = one_row(json!({"is_event": "false"})).unwrap();
    assert_eq!(base.event_type, EventType::Sale);
    assert_eq!(one_row(json!({})).unwrap().event_type, EventType::Sale);
}

#[test]
fn a_flag_in_another_shape_or_flags_that_disagree_fail_the_row() {
    let e = one_row(json!({"status": "rejected", "is_scrub": 2})).unwrap_err();
    assert!(e.contains("field `is_scrub`"), "{e}");
    let e = one_row(json!({"is_event": "yes"})).unwrap_err();
    assert!(e.contains("field `is_event`"), "{e}");
    let e = one_row(json!({"event": "Base", "is_event": true})).unwrap_err();
    assert!(e.contains("`event`") && e.contains("`is_event`"), "{e}");
    assert!(e.contains("conversion_id"), "{e}");
}

/// C-M1: the manifest declares Everflow's 365 days, and the host's first
/// day for it is the plugin's own [`earliest_day`] (on the UTC date).
#[test]
fn the_manifest_declares_the_365_days_everflow_serves() {
    let m = Everflow::manifest();
    assert_eq!(m.max_history_days, Some(365));
    let now: DateTime<Utc> = "2028-01-06T10:00:00Z".parse().unwrap();
    assert_eq!(
        plugin_api::protocol::first_served_day(m.max_history_days.unwrap(), now.date_naive()),
        earliest_day(now)
    );
    assert_eq!(
        earliest_day(now),
        NaiveDate::from_ymd_opt(2027, 1, 7).unwrap()
    );
}

/// Regression (QA L7): a window older than Everflow's 365 days failed on
/// Everflow's bare 400. The 400 now says why and names the earliest day;
/// the platform decides, so nothing is refused before it answers.
#[test]
fn everflows_400_for_a_window_older_than_365_days_says_why() {
    // The fake host's clock is 2026-11-28T12:00Z: the earliest day is
    // 2025-11-29 (today counts as one of the 365).
    assert_eq!(
        earliest_day("2026-11-28T12:00:00Z".parse().unwrap()),
        NaiveDate::from_ymd_opt(2025, 11, 29).unwrap()
    );
    let everflow = |req: &plugin_api::protocol::HttpRequest| {
        if req.url.contains("timezones") {
            return Reply::json(
                200,
                &json!({"timezones": [{"timezone_id": 67, "timezone": "UTC"}]}),
            );
        }
        Reply::json(
            400,
            &json!({"Error": "only the last 365 days can be queried"}),
        )
    };
    let old = Window {
        from: NaiveDate::from_ymd_opt(2025, 11, 28).unwrap(),
        to: NaiveDate::from_ymd_opt(2026, 1, 10).unwrap(),
    };
    let out =
        FakeHost::handler(everflow).run::<Everflow>(open_read("ef", "http://fake", json!({}), old));
    let err = out.result.unwrap_err();
    assert_eq!(err.kind, ErrorKind::Config);
    assert!(!err.retryable);
    for part in [
        "connector `ef`",
        "365 days",
        "2025-11-29",
        "2025-11-28..2026-01-10",
        "only the last 365 days can be queried",
    ] {
        assert!(err.message.contains(part), "{part}: {}", err.message);
    }
    assert!(out.checkpoints.is_empty());
    // A 400 for a window within the 365 days stays Everflow's own error.
    let recent = Window {
        from: NaiveDate::from_ymd_opt(2025, 11, 29).unwrap(),
        to: NaiveDate::from_ymd_opt(2025, 11, 29).unwrap(),
    };
    let out = FakeHost::handler(everflow).run::<Everflow>(open_read(
        "ef",
        "http://fake",
        json!({}),
        recent,
    ));
    let err = out.result.unwrap_err();
    assert_ne!(err.kind, ErrorKind::Config, "{}", err.message);
    assert!(!err.message.contains("prior 365 days"), "{}", err.message);
}

/// A small Everflow answering the time zones (UTC 67, New York 80, Los
/// Angeles 84) and an empty conversions page; it records every body.
fn zones_and_empty_pages(bodies: std::rc::Rc<std::cell::RefCell<Vec<Value>>>) -> FakeHost {
    FakeHost::handler(move |req| {
        if req.url.contains("/v1/meta/timezones") {
            return Reply::json(
                200,
                &json!({"timezones": [
                    {"timezone_id": 67, "timezone": "UTC"},
                    {"timezone_id": 80, "timezone": "America/New_York"},
                    {"timezone_id": 84, "timezone": "America/Los_Angeles"},
                ]}),
            );
        }
        bodies
            .borrow_mut()
            .push(serde_json::from_str(req.body.as_deref().unwrap()).unwrap());
        Reply::json(
            200,
            &json!({"conversions": [], "paging": {"page": 1, "page_size": 2000, "total_count": 0}}),
        )
    })
}

/// QA20 F2: without `settings.timezone` the window is read in the
/// connector's zone (it was UTC), so its days are the connector's; the
/// watermark ends at that zone's midnight. An explicit setting still wins.
#[test]
fn the_timezone_defaults_to_the_connectors_and_an_explicit_setting_wins() {
    let run = |settings: Value, tz: Option<&str>| {
        let bodies = std::rc::Rc::new(std::cell::RefCell::new(Vec::new()));
        let mut open = open_read("ef", "http://fake", settings, window());
        open.timezone = tz.map(str::to_owned);
        let out = zones_and_empty_pages(bodies.clone()).run::<Everflow>(open);
        out.result.as_ref().unwrap();
        let body = bodies.borrow()[0].clone();
        let warned: Vec<_> = (out.logs.iter())
            .filter(|l| {
                l.message
                    .contains("in settings.timezone, not the connector's")
            })
            .map(|l| l.fields.clone())
            .collect();
        (
            body,
            out.checkpoints.last().unwrap().watermark.to_rfc3339(),
            warned,
        )
    };
    let (body, watermark, warned) = run(json!({}), Some("America/Los_Angeles"));
    assert_eq!(body["timezone_id"], 84);
    assert_eq!(body["from"], "2026-11-01 00:00:00");
    assert_eq!(body["to"], "2026-11-02 23:59:59");
    assert_eq!(watermark, "2026-11-03T08:00:00+00:00");
    assert!(warned.is_empty());
    let (body, watermark, warned) = run(
        json!({ "timezone": "America/New_York" }),
        Some("America/Los_Angeles"),
    );
    assert_eq!(body["timezone_id"], 80);
    assert_eq!(watermark, "2026-11-03T05:00:00+00:00");
    // ... and says so (QA32-C L1).
    assert_eq!(warned.len(), 1);
    assert_eq!(warned[0]["settings_timezone"], "America/New_York");
    assert_eq!(warned[0]["connector_timezone"], "America/Los_Angeles");
    // The same zone named again, or a host that sends no zone: no warning.
    let (_, _, warned) = run(
        json!({ "timezone": "America/New_York" }),
        Some("America/New_York"),
    );
    assert!(warned.is_empty());
    // A host that sends no zone (older, or a recording): UTC, as before.
    let (body, watermark, warned) = run(json!({}), None);
    assert_eq!(body["timezone_id"], 67);
    assert_eq!(watermark, "2026-11-03T00:00:00+00:00");
    assert!(warned.is_empty());
}

#[test]
fn a_connector_timezone_everflow_does_not_list_names_the_setting_to_set() {
    let mut open = open_read("ef", "http://fake", json!({}), window());
    open.timezone = Some("Europe/Berlin".into());
    let bodies = std::rc::Rc::new(std::cell::RefCell::new(Vec::new()));
    let err = zones_and_empty_pages(bodies)
        .run::<Everflow>(open)
        .result
        .unwrap_err();
    assert_eq!(err.kind, ErrorKind::Config);
    assert!(
        err.message.contains(
            "the connector's timezone (settings.timezone unset): Everflow knows no time zone named \"Europe/Berlin\"; set settings.timezone"
        ),
        "{}",
        err.message
    );
}

/// QA20 F8: any key family reads `/v1/meta/timezones`; the check also reads
/// one row of the network's conversions, so an affiliate or advertiser key
/// (403 there) fails it with an error saying what is wrong.
#[test]
fn check_reads_one_network_row_and_a_non_network_key_fails_it() {
    let check = |network: bool| {
        FakeHost::handler(move |req| {
            if req.url.contains("/v1/meta/timezones") {
                Reply::json(
                    200,
                    &json!({"timezones": [{"timezone_id": 67, "timezone": "UTC"}]}),
                )
            } else if !network {
                Reply::json(403, &json!({"error": "This API key cannot access this resource"}))
            } else {
                Reply::json(
                    200,
                    &json!({"conversions": [], "paging": {"page": 1, "page_size": 1, "total_count": 0}}),
                )
            }
        })
        .run::<Everflow>(plugin_api::testing::open_check("ef", "http://fake", json!({})))
    };
    let ok = check(true);
    ok.result.as_ref().unwrap();
    assert_eq!(ok.requests.len(), 2);
    let probe = &ok.requests[1];
    assert_eq!(probe.method, "POST");
    assert!(
        probe
            .url
            .ends_with("/v1/networks/reporting/conversions?page=1&page_size=1"),
        "{}",
        probe.url
    );
    let body: Value = serde_json::from_str(probe.body.as_deref().unwrap()).unwrap();
    assert_eq!(body["from"], "2026-11-28 00:00:00");
    assert_eq!(body["timezone_id"], 67);
    let err = check(false).result.unwrap_err();
    assert_eq!(err.kind, ErrorKind::Auth);
    assert!(
        err.message
            .contains("settings.api_key is not a network API key"),
        "{}",
        err.message
    );
    assert!(err.message.contains("HTTP 403"), "{}", err.message);
}

/// An Everflow answering the time zones, then `page(requested)` for each
/// conversions request.
fn paged(page: impl Fn(u64) -> Value + 'static) -> FakeHost {
    FakeHost::handler(move |req| {
        if req.url.contains("/v1/meta/timezones") {
            return Reply::json(
                200,
                &json!({"timezones": [{"timezone_id": 67, "timezone": "UTC"}]}),
            );
        }
        let requested = req
            .url
            .split(['?', '&'])
            .find_map(|kv| kv.strip_prefix("page="))
            .unwrap()
            .parse()
            .unwrap();
        Reply::json(200, &page(requested))
    })
}

/// QA25 N4: whether more pages remain was read from the page the answer
/// echoed, so an answer stuck at `page: 1` (a proxy or cache ignoring the
/// query string) was paged until the host's request limit.
#[test]
fn an_echoed_page_other_than_the_one_requested_is_a_bad_response() {
    let rows = plugin_api::serde_json::from_slice::<Value>(&one_row_page(json!({}))).unwrap()
        ["conversions"]
        .clone();
    let out = paged(move |_| {
        json!({"conversions": rows, "paging": {"page": 1, "page_size": 1, "total_count": 3}})
    })
    .run::<Everflow>(open_read(
        "ef",
        "http://fake",
        json!({ "page_size": 1 }),
        window(),
    ));
    let e = out.result.unwrap_err();
    assert_eq!(e.kind, ErrorKind::BadResponse);
    assert!(
        e.message
            .contains("stream `conversions` page 2: paging.page is 1, not the page requested (2)"),
        "{}",
        e.message
    );
    assert_eq!(out.requests.len(), 3, "time zones, page 1, page 2");
    assert_eq!(out.checkpoints.len(), 1);
    assert_eq!(out.checkpoints[0].state["complete"], false);
}

/// QA25 N4: an empty page did not stop the paging when `total_count` said
/// more rows remain (the QA repro, and a correct echo with a huge
/// `total_count`); the last page of a sync must still end it (see
/// `resolves_the_timezone_then_pages_by_total_count`).
#[test]
fn an_empty_page_while_paging_says_more_remain_is_a_bad_response() {
    let empty = |page: u64| json!({"conversions": [], "paging": {"page": page, "page_size": 200, "total_count": 1000}});
    let out = paged(move |_| empty(1)).run::<Everflow>(open_read(
        "ef",
        "http://fake",
        json!({ "page_size": 200 }),
        window(),
    ));
    let e = out.result.unwrap_err();
    assert_eq!(e.kind, ErrorKind::BadResponse);
    assert!(
        e.message.contains(
            "stream `conversions` page 1: no rows, yet paging.total_count is 1000 with paging.page_size 200"
        ),
        "{}",
        e.message
    );
    assert!(out.checkpoints.is_empty());

    let rows = plugin_api::serde_json::from_slice::<Value>(&one_row_page(json!({}))).unwrap()
        ["conversions"]
        .clone();
    let out = paged(move |page| {
        let rows = if page == 1 { rows.clone() } else { json!([]) };
        json!({"conversions": rows, "paging": {"page": page, "page_size": 1, "total_count": 1_000_000_000_000_000_000u64}})
    })
    .run::<Everflow>(open_read(
        "ef",
        "http://fake",
        json!({ "page_size": 1 }),
        window(),
    ));
    let e = out.result.unwrap_err();
    assert!(
        e.message.contains(
            "stream `conversions` page 2: no rows, yet paging.total_count is 1000000000000000000"
        ),
        "{}",
        e.message
    );
    assert_eq!(out.committed.len(), 1, "page 1 stays committed");
}

/// QA35d H1/L1: an answer without the `conversions` array (null, renamed)
/// is no empty page, and a page part of another shape names the field.
#[test]
fn a_page_without_its_conversions_array_or_of_another_shape_is_an_error() {
    let paging = json!({"page": 1, "page_size": 2000, "total_count": 0});
    let parse = |body: Value| row::parse_page(&plugin_api::serde_json::to_vec(&body).unwrap());
    parse(json!({"conversions": [], "paging": paging})).unwrap();
    for (body, expected) in [
        (
            json!({"conversions": null, "paging": paging}),
            "the answer has no `conversions` array (not a page of conversions; paging.total_count is 0; its keys: `conversions`, `paging`)",
        ),
        (
            json!({"rows": [], "paging": paging}),
            "its keys: `paging`, `rows`",
        ),
        (
            json!({"conversions": {"c1": {}}, "paging": paging}),
            "field `conversions`: expected an array of conversions, got an object",
        ),
        (
            json!({"conversions": [], "paging": [1, 2000, 0]}),
            "field `paging`: expected an object, got an array",
        ),
        (
            json!({"conversions": ["c1"], "paging": paging}),
            "record 1: expected an object, got a string (\"c1\")",
        ),
    ] {
        let e = parse(body).unwrap_err();
        assert!(e.contains(expected), "{expected:?} not in {e}");
    }
}
