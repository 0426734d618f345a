//! Recorded-exchange tests: the fake host replays `fixtures/*.json`.

use super::*;
use plugin_api::chrono::NaiveDate;
use plugin_api::protocol::Window;
use plugin_api::rust_decimal::Decimal;
use plugin_api::testing::{open_read, Cassette, FakeHost, Reply};
use plugin_api::{Conversion, Record};
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
fn aspnet_dates_parse_with_and_without_offsets() {
    assert_eq!(
        row::aspnet_date("/Date(1425337200000)/")
            .unwrap()
            .to_rfc3339(),
        "2015-03-02T23:00:00+00:00"
    );
    assert_eq!(
        row::aspnet_date("/Date(1425337200000-0500)/")
            .unwrap()
            .to_rfc3339(),
        "2015-03-02T23:00:00+00:00"
    );
    assert!(row::aspnet_date("2015-03-02").is_err());
}

/// Regression (QA M4): only `/Date(ms)/` was read, although the reference
/// calls CAKE's JSON date format an open question; an ISO date-time failed
/// every page. ISO text with an offset is that instant; without one it is
/// instance time, read in `instance_timezone`, and refused (naming the
/// setting) when that is not set: never read as UTC.
#[test]
fn iso_date_times_are_read_with_their_offset_or_in_the_instance_time_zone() {
    use row::{date_time, PageError};
    let ny: Option<chrono_tz::Tz> = Some(chrono_tz::America::New_York);
    let utc = |s: &str, tz| date_time(s, tz).unwrap().to_rfc3339();
    // Offsets: the instant, whatever the instance's zone.
    assert_eq!(
        utc("2015-03-02T13:04:27.567-05:00", None),
        "2015-03-02T18:04:27.567+00:00"
    );
    assert_eq!(
        utc("2015-03-02T13:04:27-0500", None),
        "2015-03-02T18:04:27+00:00"
    );
    assert_eq!(utc("2015-03-02T13:04:27Z", ny), "2015-03-02T13:04:27+00:00");
    // No offset: instance time (New York is UTC-5 in March before the
    // change, UTC-4 in July), with or without a fraction, `T` or a space.
    assert_eq!(
        utc("2015-03-02T13:04:27.567", ny),
        "2015-03-02T18:04:27.567+00:00"
    );
    assert_eq!(utc("2015-03-02T13:04:27", ny), "2015-03-02T18:04:27+00:00");
    assert_eq!(utc("2015-07-02 13:04:27", ny), "2015-07-02T17:04:27+00:00");
    // CAKE's `#sourcetime#` shape (seven fraction digits).
    assert_eq!(
        utc("2013-11-12T13:04:27.5670000", ny),
        "2013-11-12T18:04:27.567+00:00"
    );
    // `/Date(ms)/` is unchanged.
    assert_eq!(
        utc("/Date(1425337200000)/", None),
        "2015-03-02T23:00:00+00:00"
    );
    // Without the setting: refused, naming it.
    match date_time("2015-03-02T13:04:27.567", None) {
        Err(PageError::NeedsTimezone(m)) => {
            assert!(
                m.contains("`instance_timezone`") && m.contains("never read as UTC"),
                "{m}"
            )
        }
        other => panic!("expected NeedsTimezone, got {other:?}"),
    }
    // A date alone is not a conversion time; garbage is garbage.
    for bad in ["2015-03-02", "yesterday", "2015-03-02T25:00:00"] {
        assert!(
            matches!(date_time(bad, ny), Err(PageError::Malformed(_))),
            "{bad}"
        );
    }
    // A local time a DST change skips does not exist.
    assert!(matches!(
        date_time("2015-03-08T02:30:00", ny),
        Err(PageError::Malformed(_))
    ));
}

fn iso_page(date: &str) -> Value {
    json!({"d": {"success": true, "row_count": 1, "event_conversions": [{
        "event_conversion_id": 7,
        "event_conversion_date": date,
        "source_affiliate": {"source_affiliate_id": 55},
        "paid": {"currency_id": 1, "amount": 2.5},
    }]}})
}

fn iso_host(date: &'static str) -> FakeHost {
    FakeHost::handler(move |req| {
        if req.url.contains("Currencies") {
            return Reply::json(
                200,
                &json!({"d": {"success": true, "currencies": [{"currency_id": 1, "currency_abbr": "USD"}]}}),
            );
        }
        Reply::json(200, &iso_page(date))
    })
}

#[test]
fn an_offset_less_time_without_instance_timezone_is_a_config_error_naming_the_setting() {
    let mut open = open_stream(EVENT_CONVERSIONS, 10);
    open.connector_id = "cake_eu".into();
    let out = iso_host("2026-11-01T10:00:00").run::<Cake>(open);
    let err = out.result.unwrap_err();
    assert_eq!(err.kind, ErrorKind::Config);
    for part in [
        "connector `cake_eu`",
        "`instance_timezone`",
        "event_conversion_id 7",
        "field `event_conversion_date`",
    ] {
        assert!(err.message.contains(part), "{part}: {}", err.message);
    }
    assert!(out.committed.is_empty());
    // With the setting, the same page is read in the instance's zone.
    let mut open = open_read(
        "cake",
        "http://fake",
        json!({ "base_url": "http://fake", "instance_timezone": "Europe/Berlin" }),
        window(),
    );
    open.streams = vec![EVENT_CONVERSIONS.into()];
    let out = iso_host("2026-11-01T10:00:00").run::<Cake>(open);
    out.result.as_ref().unwrap();
    assert_eq!(
        conv(&out.committed[0]).occurred_at.to_rfc3339(),
        "2026-11-01T09:00:00+00:00"
    );
    // A name that is not a zone is refused before any request.
    let open = open_read(
        "cake",
        "http://fake",
        json!({ "base_url": "http://fake", "instance_timezone": "Mars/Olympus" }),
        window(),
    );
    let out = iso_host("2026-11-01T10:00:00").run::<Cake>(open);
    let err = out.result.unwrap_err();
    assert_eq!(err.kind, ErrorKind::Config);
    assert!(
        err.message.contains("settings.instance_timezone"),
        "{}",
        err.message
    );
    assert!(out.requests.is_empty());
}

/// `changes_since` is a date read as midnight in the instance's zone. That
/// midnight must fall at or before the last watermark less the margin (else a
/// change made just after the last run is never pulled: a missed
/// restatement), and with a known zone it is less than a day and the margin
/// before it (the re-read used to be a whole extra day, up to 62 hours).
#[test]
fn changes_since_starts_a_margin_before_the_watermark_and_no_more_than_a_day_earlier() {
    use plugin_api::chrono::TimeZone;
    let d = |s: &str| NaiveDate::parse_from_str(s, "%Y-%m-%d").unwrap();
    let at = |s: &str| s.parse::<DateTime<Utc>>().unwrap();
    assert_eq!(changes_since(None, d("2026-11-01"), None), d("2026-11-01"));
    assert_eq!(
        changes_since(None, d("2026-11-01"), Some(chrono_tz::Asia::Tokyo)),
        d("2026-11-01")
    );
    let margin = Duration::hours(CHANGES_MARGIN_HOURS);
    // Midnight of `day` in `tz`, the earlier one if it repeats, the first
    // instant after it if it is skipped.
    let midnight = |day: NaiveDate, tz: chrono_tz::Tz| {
        (0..=120)
            .find_map(|m| {
                tz.from_local_datetime(&(day.and_time(NaiveTime::MIN) + Duration::minutes(m)))
                    .earliest()
            })
            .unwrap()
            .with_timezone(&Utc)
    };
    let zones = [
        chrono_tz::Etc::GMTPlus12,
        chrono_tz::America::Los_Angeles,
        chrono_tz::America::Sao_Paulo,
        chrono_tz::UTC,
        chrono_tz::Europe::Berlin,
        chrono_tz::Australia::Lord_Howe,
        chrono_tz::Pacific::Kiritimati,
        chrono_tz::Etc::GMTMinus14,
    ];
    // Every 20 minutes over two days, and around DST changes in spring and
    // autumn (US, EU, southern hemisphere).
    let mut watermarks = Vec::new();
    for start in [
        "2026-11-27T00:00:00Z",
        "2026-03-07T00:00:00Z",
        "2026-03-28T00:00:00Z",
        "2026-04-04T00:00:00Z",
        "2026-10-03T00:00:00Z",
        "2026-10-24T00:00:00Z",
        "2026-10-31T00:00:00Z",
    ] {
        for i in 0..(3 * 48) {
            watermarks.push(at(start) + Duration::minutes(20 * i));
        }
    }
    for w in watermarks {
        // Unknown zone: before the margin in every zone.
        let since = changes_since(Some(w), d("2026-01-01"), None);
        for tz in zones {
            assert!(
                midnight(since, tz) <= w - margin,
                "{w}, no zone, {tz}: {since}"
            );
        }
        assert!(
            midnight(since, chrono_tz::Etc::GMTMinus14) >= w - margin - Duration::hours(50),
            "{w}, no zone: {since}"
        );
        // Known zone: before the margin, within a day of it.
        for tz in zones {
            let since = changes_since(Some(w), d("2026-01-01"), Some(tz));
            let m = midnight(since, tz);
            assert!(m <= w - margin, "{w} {tz}: {since}");
            assert!(m >= w - margin - Duration::hours(25), "{w} {tz}: {since}");
        }
    }
    // The regression case of `affiliate_cake`: a run at 02:00 UTC is 18:00
    // the evening before in Los Angeles.
    let w = at("2026-11-28T02:00:00Z");
    assert_eq!(
        changes_since(
            Some(w),
            d("2026-11-01"),
            Some(chrono_tz::America::Los_Angeles)
        ),
        d("2026-11-27")
    );
    assert_eq!(
        changes_since(Some(w), d("2026-11-01"), None),
        d("2026-11-27")
    );
    // In Berlin that is 06:00 on the 28th; three hours earlier is the 28th too.
    let w = at("2026-11-28T05:00:00Z");
    assert_eq!(
        changes_since(Some(w), d("2026-11-01"), Some(chrono_tz::Europe::Berlin)),
        d("2026-11-28")
    );
}

#[test]
fn dispositions_map_and_undispositioned_follows_the_setting() {
    use ConversionStatus::*;
    assert_eq!(row::status(Some("Approved"), Pending).unwrap(), Approved);
    assert_eq!(row::status(Some("returned"), Pending).unwrap(), Reversed);
    assert_eq!(row::status(Some("Rejected"), Pending).unwrap(), Rejected);
    assert_eq!(row::status(None, Pending).unwrap(), Pending);
    assert_eq!(row::status(None, Approved).unwrap(), Approved);
    assert!(row::status(Some("Thrown Out"), Approved).is_err());
}

#[test]
fn reads_offset_pages_and_changes_with_currency_lookup() {
    // A scheduled run: the window reaches the session's day.
    let out = pages_and_changes_at("2026-11-02T12:00:00Z");
    assert_eq!(
        out.checkpoints[2].watermark.to_rfc3339(),
        "2026-11-02T12:00:00+00:00",
        "every change up to the session start"
    );
    // A backfill (the session is on the 28th): conversion 90, older than
    // the window, is still restated, and the changes are read up to the
    // window's end only (QA34-B M1).
    let out = pages_and_changes_at("2026-11-28T12:00:00Z");
    assert_eq!(
        out.checkpoints[2].watermark.to_rfc3339(),
        "2026-11-03T00:00:00+00:00"
    );
}

/// Replays `pages_and_changes.json` in a session at `now` and checks what
/// does not depend on it.
fn pages_and_changes_at(now: &str) -> plugin_api::testing::Outcome {
    let cassette = Cassette::from_json(include_str!("../fixtures/pages_and_changes.json")).unwrap();
    let mut open = open_read(
        "cake",
        "http://fake",
        json!({ "base_url": "http://fake", "row_limit": 2 }),
        window(),
    );
    open.now = now.parse().unwrap();
    let out = FakeHost::replay(cassette).run::<Cake>(open);
    out.result.as_ref().unwrap();
    let ids: Vec<_> = out
        .committed
        .iter()
        .map(|r| conv(r).external_id.as_str())
        .collect();
    assert_eq!(ids, ["101", "102", "103", "90"]);
    let c = conv(&out.committed[0]);
    assert_eq!(
        c.commission.as_ref().unwrap().amount,
        Decimal::from_str("12.50").unwrap()
    );
    assert_eq!(c.commission.as_ref().unwrap().currency, "EUR");
    assert_eq!(c.order_id.as_deref(), Some("T-101"));
    assert_eq!(c.click_id.as_deref(), Some("req-101"));
    assert_eq!(c.partner_id, "55");
    assert_eq!(
        c.status,
        ConversionStatus::Approved,
        "no disposition: the default"
    );
    assert_eq!(conv(&out.committed[3]).status, ConversionStatus::Reversed);
    assert_eq!(out.checkpoints.len(), 3);
    assert_eq!(
        out.checkpoints[1].watermark.to_rfc3339(),
        "2026-11-03T00:00:00+00:00"
    );
    out
}

#[test]
fn a_refused_key_is_an_auth_error() {
    let out = FakeHost::handler(|_| {
        Reply::json(
            200,
            &json!({"d": {"success": false, "message": "API Key is not valid"}}),
        )
    })
    .run::<Cake>(open_read(
        "cake",
        "http://fake",
        json!({ "base_url": "http://fake" }),
        window(),
    ));
    let err = out.result.unwrap_err();
    assert_eq!(err.kind, ErrorKind::Auth);
    assert!(
        err.message.contains("API Key is not valid")
            && err.message.ends_with("; check setting `api_key`"),
        "{}",
        err.message
    );
}

#[test]
fn a_completed_window_is_pulled_again_from_row_one() {
    // Regression: a finished window's checkpoint (next_row past the total)
    // made a re-pull of the same window read nothing.
    let mut open = open_read(
        "cake",
        "http://fake",
        json!({ "base_url": "http://fake" }),
        window(),
    );
    open.streams = vec![EVENT_CONVERSIONS.into()];
    open.checkpoints.insert(
        EVENT_CONVERSIONS.into(),
        plugin_api::Checkpoint {
            stream: EVENT_CONVERSIONS.into(),
            watermark: "2026-11-03T00:00:00Z".parse().unwrap(),
            state: json!({ "key": "2026-11-01..2026-11-02", "next_row": 901, "complete": true }),
            covers: None,
        },
    );
    let out = FakeHost::handler(|req| {
        if req.url.contains("Currencies") {
            return Reply::json(200, &json!({"d": {"success": true, "currencies": [{"currency_id": 1, "currency_abbr": "USD"}]}}));
        }
        let body: Value = plugin_api::serde_json::from_str(req.body.as_deref().unwrap()).unwrap();
        // Row 0 alone, then the first page from row 1.
        assert!(
            [json!(0), json!(1)].contains(&body["start_at_row"]),
            "{body}"
        );
        Reply::json(200, &json!({"d": {"success": true, "row_count": 0, "event_conversions": []}}))
    })
    .run::<Cake>(open);
    out.result.unwrap();
    assert_eq!(out.checkpoints.len(), 1);
}

/// A tiny CAKE instance for the paging tests: conversion ids in the order
/// the instance keeps them, sorted by id only when asked and `sorts` is set
/// (EventConversionChanges does not document `sort_field`), and `shift`
/// called with the report's number (1-based) before each report is answered:
/// that is how a test changes the result set between two pages. Rows count
/// from 1 (`start_at_row = 0` reads as 1); the plugin's request for row 0
/// alone is answered without counting as a report.
fn instance(
    ids: Vec<u64>,
    sorts: bool,
    shift: impl FnMut(usize, &mut Vec<u64>) + 'static,
) -> FakeHost {
    instance_with(ids, sorts, true, shift)
}

/// [`instance`], sending `row_count` or not.
fn instance_with(
    ids: Vec<u64>,
    sorts: bool,
    row_count: bool,
    shift: impl FnMut(usize, &mut Vec<u64>) + 'static,
) -> FakeHost {
    instance_based(1, ids, sorts, row_count, shift)
}

/// Whether a request body is the plugin's request for row 0 alone.
fn is_probe(body: &Value) -> bool {
    body["start_at_row"] == json!(0) && body["row_limit"] == json!(1)
}

/// [`instance_with`] whose rows count from `base` (0 or 1).
fn instance_based(
    base: usize,
    ids: Vec<u64>,
    sorts: bool,
    row_count: bool,
    mut shift: impl FnMut(usize, &mut Vec<u64>) + 'static,
) -> FakeHost {
    let mut ids = ids;
    let mut reports = 0;
    FakeHost::handler(move |req| {
        if req.url.contains("Currencies") {
            return Reply::json(
                200,
                &json!({"d": {"success": true, "currencies": [{"currency_id": 1, "currency_abbr": "USD"}]}}),
            );
        }
        let body: Value = plugin_api::serde_json::from_str(req.body.as_deref().unwrap()).unwrap();
        if !is_probe(&body) {
            reports += 1;
            shift(reports, &mut ids);
        }
        let mut rows = ids.clone();
        if sorts && body["sort_field"] == json!("event_conversion_id") {
            rows.sort_unstable();
        }
        let start = body["start_at_row"].as_u64().unwrap() as usize;
        let limit = body["row_limit"].as_u64().unwrap() as usize;
        let page: Vec<Value> = rows
            .iter()
            .skip(start.saturating_sub(base))
            .take(limit)
            .map(|id| {
                json!({
                    "event_conversion_id": id,
                    "event_conversion_date": "/Date(1793527200000)/",
                    "last_updated": "/Date(1793527260000)/",
                    "source_affiliate": {"source_affiliate_id": 55},
                    "paid": {"currency_id": 1, "amount": 2.5},
                })
            })
            .collect();
        let mut d = json!({"success": true, "event_conversions": page});
        if row_count {
            d["row_count"] = json!(rows.len());
        }
        Reply::json(200, &json!({ "d": d }))
    })
}

fn open_stream(stream: &str, row_limit: u32) -> plugin_api::protocol::SessionOpen {
    let mut open = open_read(
        "cake",
        "http://fake",
        json!({ "base_url": "http://fake", "row_limit": row_limit }),
        window(),
    );
    open.streams = vec![stream.into()];
    open
}

fn committed_ids(out: &plugin_api::testing::Outcome) -> std::collections::BTreeSet<u64> {
    out.committed
        .iter()
        .map(|r| conv(r).external_id.parse().unwrap())
        .collect()
}

/// The bodies of the report requests, without the requests for row 0 alone.
fn report_bodies(out: &plugin_api::testing::Outcome) -> Vec<Value> {
    all_report_bodies(out)
        .into_iter()
        .filter(|b| !is_probe(b))
        .collect()
}

fn all_report_bodies(out: &plugin_api::testing::Outcome) -> Vec<Value> {
    out.requests
        .iter()
        .filter(|r| r.url.contains("reports.asmx"))
        .map(|r| plugin_api::serde_json::from_str(r.body.as_deref().unwrap()).unwrap())
        .collect()
}

/// Regression: a conversion that left the result set between two pages
/// (e.g. flagged as a test) moved every later row one place up, and plain
/// offset paging skipped the row that slid onto the page already read.
#[test]
fn a_row_leaving_the_set_between_pages_restarts_the_stream_instead_of_skipping_one() {
    let out = instance((1..=6).collect(), true, |n, ids| {
        if n == 2 {
            ids.retain(|&id| id != 2);
        }
    })
    .run::<Cake>(open_stream(EVENT_CONVERSIONS, 2));
    out.result.as_ref().unwrap();
    assert_eq!(
        committed_ids(&out),
        (1..=6).collect(),
        "3 must not be skipped"
    );
    let starts: Vec<_> = report_bodies(&out)
        .iter()
        .map(|b| {
            (
                b["start_at_row"].as_u64().unwrap(),
                b["row_limit"].as_u64().unwrap(),
            )
        })
        .collect();
    // Page 2 asks from row 2 (the overlap), finds 3 instead of 2, and the
    // stream is read again from row 1.
    assert_eq!(starts, [(1, 2), (2, 3), (1, 2), (2, 3), (4, 3)]);
    assert!(out.logs.iter().any(|l| l.message.contains("shifted")));
    let last = out.checkpoints.last().unwrap();
    assert_eq!(last.state["complete"], json!(true));
    assert_eq!(last.state["last_id"], json!("6"));
}

/// Regression: EventConversionChanges was paged without any sort, so a
/// conversion changed again while the changes were read moved to the end of
/// the set (in an instance that keeps changes in change order) and the row
/// after it was skipped. The plugin now asks for id order and, where that is
/// not honoured (as here), the overlap row shows the shift.
#[test]
fn changes_ask_for_id_order_and_a_row_changed_again_mid_read_is_not_skipped() {
    let out = instance(vec![40, 10, 30, 20, 50], false, |n, ids| {
        if n == 2 {
            // 10 is changed again: it moves to the end.
            ids.retain(|&id| id != 10);
            ids.push(10);
        }
    })
    .run::<Cake>(open_stream(EVENT_CONVERSION_CHANGES, 2));
    out.result.as_ref().unwrap();
    assert_eq!(committed_ids(&out), [10, 20, 30, 40, 50].into());
    for body in report_bodies(&out) {
        assert_eq!(body["sort_field"], json!("event_conversion_id"));
        assert_eq!(body["sort_descending"], json!("FALSE"));
    }
}

/// Regression: a session resuming a stream at the checkpoint's `next_row`
/// skipped a row when the set had shifted since the last session.
#[test]
fn a_resumed_stream_checks_the_last_committed_row_before_carrying_on() {
    let resume = |state: Value| {
        let mut open = open_stream(EVENT_CONVERSIONS, 2);
        open.checkpoints.insert(
            EVENT_CONVERSIONS.into(),
            plugin_api::Checkpoint {
                stream: EVENT_CONVERSIONS.into(),
                watermark: "2026-11-01T00:00:00Z".parse().unwrap(),
                state,
                covers: None,
            },
        );
        open
    };
    let state = json!({ "key": "2026-11-01..2026-11-02", "next_row": 3, "last_id": "2", "complete": false });
    // Unchanged: carries on after the overlap row, which is not emitted again.
    let out = instance((1..=5).collect(), true, |_, _| {}).run::<Cake>(resume(state.clone()));
    out.result.as_ref().unwrap();
    assert_eq!(committed_ids(&out), [3, 4, 5].into());
    assert_eq!(out.committed.len(), 3);
    assert_eq!(report_bodies(&out)[0]["start_at_row"], json!(2));
    // Conversion 1 left since: row 2 is now 3, so the stream restarts.
    let out = instance(vec![2, 3, 4, 5], true, |_, _| {}).run::<Cake>(resume(state));
    out.result.as_ref().unwrap();
    assert_eq!(committed_ids(&out), [2, 3, 4, 5].into());
    // A checkpoint without `last_id` (older plugin) cannot be checked.
    let out = instance((1..=5).collect(), true, |_, _| {}).run::<Cake>(resume(
        json!({ "key": "2026-11-01..2026-11-02", "next_row": 3, "complete": false }),
    ));
    out.result.as_ref().unwrap();
    assert_eq!(committed_ids(&out), (1..=5).collect());
}

#[test]
fn a_set_that_keeps_shifting_fails_the_session_naming_the_stream() {
    // Before every report the lowest id leaves: each second page finds a
    // shifted set.
    let out = instance((1..=40).collect(), true, |_, ids| {
        ids.remove(0);
    })
    .run::<Cake>(open_stream(EVENT_CONVERSION_CHANGES, 3));
    let err = out.result.unwrap_err();
    assert_eq!(err.kind, ErrorKind::Upstream);
    assert!(err.retryable);
    assert!(
        err.message.contains("stream `event_conversion_changes`")
            && err.message.contains("restarts"),
        "{}",
        err.message
    );
    // One first page per attempt, each committed, nothing left uncommitted.
    assert_eq!(out.checkpoints.len(), MAX_RESTARTS as usize + 1);
    assert!(out.uncommitted.is_empty());
}

/// Regression (QA M1): an absent `row_count` (not documented for
/// EventConversionChanges) was read as 0, so the stream ended after its
/// first page, marked complete, and the other changes were never read.
#[test]
fn without_row_count_the_stream_pages_until_a_short_page() {
    for stream in [EVENT_CONVERSION_CHANGES, EVENT_CONVERSIONS] {
        let out = instance_with(vec![1, 2, 3, 4, 5], true, false, |_, _| {})
            .run::<Cake>(open_stream(stream, 2));
        out.result.as_ref().unwrap();
        assert_eq!(committed_ids(&out), (1..=5).collect(), "{stream}");
        assert_eq!(out.committed.len(), 5, "{stream}: no row read twice");
        let starts: Vec<_> = report_bodies(&out)
            .iter()
            .map(|b| b["start_at_row"].as_u64().unwrap())
            .collect();
        // Rows 1-2, 2-4 (the overlap row, then 2 new), 4-5 (short: done).
        assert_eq!(starts, [1, 2, 4], "{stream}");
        assert_eq!(
            out.checkpoints.last().unwrap().state["complete"],
            json!(true)
        );
    }
    // A full last page needs one more (empty) answer to be sure.
    let out = instance_with(vec![1, 2, 3, 4], true, false, |_, _| {})
        .run::<Cake>(open_stream(EVENT_CONVERSION_CHANGES, 2));
    out.result.as_ref().unwrap();
    assert_eq!(committed_ids(&out), (1..=4).collect());
    assert_eq!(report_bodies(&out).len(), 3);
}

/// An instance of rows 1..=5 (`row_count` 5 on every answer) whose answer to
/// report `report` (1-based, requests for row 0 alone not counted) keeps
/// only its first `keep` rows. Rows count from 1: row 0 is none.
fn short_answer(report: usize, keep: usize) -> FakeHost {
    let mut reports = 0;
    FakeHost::handler(move |req| {
        if req.url.contains("Currencies") {
            return Reply::json(
                200,
                &json!({"d": {"success": true, "currencies": [{"currency_id": 1, "currency_abbr": "USD"}]}}),
            );
        }
        let body: Value = plugin_api::serde_json::from_str(req.body.as_deref().unwrap()).unwrap();
        let start = body["start_at_row"].as_u64().unwrap();
        let limit = body["row_limit"].as_u64().unwrap();
        let mut ids: Vec<u64> = (start..start + limit)
            .filter(|id| (1..=5).contains(id))
            .collect();
        if !is_probe(&body) {
            reports += 1;
            if reports == report {
                ids.truncate(keep);
            }
        }
        let rows: Vec<Value> = ids
            .iter()
            .map(|id| {
                json!({
                    "event_conversion_id": id,
                    "event_conversion_date": "/Date(1793527200000)/",
                    "source_affiliate": {"source_affiliate_id": 55},
                    "paid": {"currency_id": 1, "amount": 2.5},
                })
            })
            .collect();
        Reply::json(
            200,
            &json!({"d": {"success": true, "row_count": 5, "event_conversions": rows}}),
        )
    })
}

/// Regression (QA34-D H2): a page with no new row while `row_count` said
/// more remain ended the stream as complete, the rest never read. It now
/// fails the session naming the stream, the page and the counts; the
/// pages before it stay committed and the window is not complete.
#[test]
fn an_empty_page_while_row_count_says_more_remain_is_a_bad_response() {
    for stream in [EVENT_CONVERSIONS, EVENT_CONVERSION_CHANGES] {
        // The first page empty.
        let out = short_answer(1, 0).run::<Cake>(open_stream(stream, 2));
        let e = out.result.unwrap_err();
        assert_eq!(e.kind, ErrorKind::BadResponse, "{stream}");
        assert!(
            e.message.contains(&format!(
                "stream `{stream}` rows from 1: no rows, yet row_count is 5 (0 read so far): more \
                 pages said to remain after an empty one"
            )),
            "{}",
            e.message
        );
        assert!(out.checkpoints.is_empty(), "{stream}");
        // The second page holds only its overlap row (the last one stored).
        let out = short_answer(2, 1).run::<Cake>(open_stream(stream, 2));
        let e = out.result.as_ref().unwrap_err();
        assert!(
            e.message.contains(&format!(
                "stream `{stream}` rows from 3: no rows, yet row_count is 5 (2 read so far)"
            )),
            "{}",
            e.message
        );
        assert_eq!(committed_ids(&out), [1, 2].into(), "{stream}");
        assert_eq!(out.checkpoints.len(), 1, "{stream}");
        assert_eq!(out.checkpoints[0].state["complete"], json!(false));
    }
    // The same instance paged to its end completes.
    let out = short_answer(0, 0).run::<Cake>(open_stream(EVENT_CONVERSIONS, 2));
    out.result.as_ref().unwrap();
    assert_eq!(committed_ids(&out), (1..=5).collect());
    assert_eq!(
        out.checkpoints.last().unwrap().state["complete"],
        json!(true)
    );
}

/// QA34-B M1: a backfill (the window ends before the session's day) keeps
/// the changes of the conversions of its days and before, leaves out those
/// of later conversions (logged with their count), and commits no page
/// whose rows were all left out (the host would count it as an empty one);
/// its watermark stops at the window's end.
#[test]
fn a_backfill_leaves_out_the_changes_of_conversions_after_its_window() {
    // Conversions 1-5 occurred on 10 November, after the window (1-2
    // November); 6 and 7 on 1 November. No `row_count` (as CAKE documents
    // none for the changes).
    let out = FakeHost::handler(|req| {
        if req.url.contains("Currencies") {
            return Reply::json(
                200,
                &json!({"d": {"success": true, "currencies": [{"currency_id": 1, "currency_abbr": "USD"}]}}),
            );
        }
        let body: Value = plugin_api::serde_json::from_str(req.body.as_deref().unwrap()).unwrap();
        let start = body["start_at_row"].as_u64().unwrap();
        let limit = body["row_limit"].as_u64().unwrap();
        let rows: Vec<Value> = (start..start + limit)
            .filter(|id| (1..=7).contains(id))
            .map(|id| {
                let ms: u64 = if id <= 5 { 1_794_304_800_000 } else { 1_793_527_200_000 };
                json!({
                    "event_conversion_id": id,
                    "event_conversion_date": format!("/Date({ms})/"),
                    "source_affiliate": {"source_affiliate_id": 55},
                    "paid": {"currency_id": 1, "amount": 2.5},
                })
            })
            .collect();
        Reply::json(200, &json!({"d": {"success": true, "event_conversions": rows}}))
    })
    .run::<Cake>(open_stream(EVENT_CONVERSION_CHANGES, 2));
    out.result.as_ref().unwrap();
    assert_eq!(committed_ids(&out), [6, 7].into());
    // Rows 1-2 and 2-4 held only later conversions: not committed.
    assert_eq!(out.checkpoints.len(), 2);
    let last = out.checkpoints.last().unwrap();
    assert_eq!(last.state["complete"], json!(true));
    assert_eq!(last.watermark.to_rfc3339(), "2026-11-03T00:00:00+00:00");
    let log = out
        .logs
        .iter()
        .find(|l| {
            l.message
                .contains("changes of conversions after the window left out")
        })
        .unwrap();
    assert_eq!(log.fields["rows"], "5");
    assert_eq!(log.fields["from"], "2026-11-03T00:00:00+00:00");
}

/// An instance that does not page EventConversionChanges at all answers the
/// whole set to the first request: that is all of it, not a page to go on
/// from (going on would see the same rows as a shifted set).
#[test]
fn an_answer_longer_than_row_limit_on_the_first_page_is_the_whole_set() {
    let out = FakeHost::handler(|req| {
        if req.url.contains("Currencies") {
            return Reply::json(200, &json!({"d": {"success": true, "currencies": [{"currency_id": 1, "currency_abbr": "USD"}]}}));
        }
        let rows: Vec<Value> = (1..=5)
            .map(|id| json!({
                "event_conversion_id": id,
                "event_conversion_date": "/Date(1793527200000)/",
                "source_affiliate": {"source_affiliate_id": 55},
                "paid": {"currency_id": 1, "amount": 2.5},
            }))
            .collect();
        Reply::json(200, &json!({"d": {"success": true, "event_conversions": rows}}))
    })
    .run::<Cake>(open_stream(EVENT_CONVERSION_CHANGES, 2));
    out.result.as_ref().unwrap();
    assert_eq!(committed_ids(&out), (1..=5).collect());
    assert_eq!(report_bodies(&out).len(), 1);
    assert_eq!(
        out.checkpoints.last().unwrap().state["complete"],
        json!(true)
    );
}

/// QA20 F3: whether `start_at_row` counts from 0 or 1 is unverified. If from
/// 0, row 1 is the second row: every read lost its first row (the lowest id)
/// and the overlap check passed. Both streams, with and without `row_count`,
/// now read every row once under either count, and a resumed stream keeps
/// counting row 0.
#[test]
fn every_row_is_read_once_whether_rows_count_from_0_or_1() {
    for base in [0, 1] {
        for stream in [EVENT_CONVERSIONS, EVENT_CONVERSION_CHANGES] {
            for row_count in [true, false] {
                for n in [0u64, 1, 2, 5, 6] {
                    let ids: Vec<u64> = (1..=n).collect();
                    let out = instance_based(base, ids.clone(), true, row_count, |_, _| {})
                        .run::<Cake>(open_stream(stream, 2));
                    let case = format!("base {base}, {stream}, row_count {row_count}, {n} rows");
                    out.result.as_ref().expect(&case);
                    assert_eq!(committed_ids(&out), ids.iter().copied().collect(), "{case}");
                    assert_eq!(out.committed.len(), ids.len(), "{case}: a row read twice");
                    let last = out.checkpoints.last().unwrap();
                    assert_eq!(last.state["complete"], json!(true), "{case}");
                    // Row 0 alone first, once.
                    let bodies = all_report_bodies(&out);
                    assert!(is_probe(&bodies[0]), "{case}");
                    assert_eq!(bodies.iter().filter(|b| is_probe(b)).count(), 1, "{case}");
                    assert_eq!(last.state["row_zero"], json!(base == 0 && n > 0), "{case}");
                }
            }
        }
    }
    // With `row_count`, counted from 0: 6 rows at 2 a page end without an
    // empty page (row 0 counts), and a resumed stream remembers row 0.
    let out = instance_based(0, (1..=6).collect(), true, true, |_, _| {})
        .run::<Cake>(open_stream(EVENT_CONVERSIONS, 2));
    let starts: Vec<_> = report_bodies(&out)
        .iter()
        .map(|b| b["start_at_row"].as_u64().unwrap())
        .collect();
    assert_eq!(starts, [1, 2, 4]);
    let first = out.checkpoints[0].clone();
    assert_eq!(first.state["row_zero"], json!(true));
    assert_eq!(first.state["next_row"], json!(3));
    let mut open = open_stream(EVENT_CONVERSIONS, 2);
    open.checkpoints.insert(EVENT_CONVERSIONS.into(), first);
    let out = instance_based(0, (1..=6).collect(), true, true, |_, _| {}).run::<Cake>(open);
    out.result.as_ref().unwrap();
    assert_eq!(committed_ids(&out), (4..=6).collect());
    assert!(all_report_bodies(&out).iter().all(|b| !is_probe(b)));
    assert_eq!(report_bodies(&out).len(), 2);
}

/// An instance that refuses row 0 (`success: false`) counts from 1: the
/// first page is read as before; any other answer error fails the session.
#[test]
fn row_0_refused_means_rows_count_from_1() {
    let out = FakeHost::handler(|req| {
        if req.url.contains("Currencies") {
            return Reply::json(200, &json!({"d": {"success": true, "currencies": [{"currency_id": 1, "currency_abbr": "USD"}]}}));
        }
        let body: Value = plugin_api::serde_json::from_str(req.body.as_deref().unwrap()).unwrap();
        if body["start_at_row"] == json!(0) {
            return Reply::json(200, &json!({"d": {"success": false, "message": "start_at_row must be positive"}}));
        }
        let rows: Vec<Value> = (1..=2)
            .map(|id| json!({
                "event_conversion_id": id,
                "event_conversion_date": "/Date(1793527200000)/",
                "source_affiliate": {"source_affiliate_id": 55},
                "paid": {"currency_id": 1, "amount": 2.5},
            }))
            .collect();
        Reply::json(200, &json!({"d": {"success": true, "row_count": 2, "event_conversions": rows}}))
    })
    .run::<Cake>(open_stream(EVENT_CONVERSIONS, 5));
    out.result.as_ref().unwrap();
    assert_eq!(committed_ids(&out), [1, 2].into());
    assert_eq!(
        out.checkpoints.last().unwrap().state["row_zero"],
        json!(false)
    );
    let out = FakeHost::handler(|req| {
        if req.url.contains("Currencies") {
            return Reply::json(200, &json!({"d": {"success": true, "currencies": [{"currency_id": 1, "currency_abbr": "USD"}]}}));
        }
        Reply::json(500, &json!({"Message": "boom"}))
    })
    .run::<Cake>(open_stream(EVENT_CONVERSIONS, 5));
    let err = out.result.unwrap_err();
    assert!(err.message.contains("row 0"), "{}", err.message);
}

/// QA20 F2: CAKE reads the window's dates in the instance's zone; when that
/// is not the connector's, the session says so.
#[test]
fn an_instance_zone_other_than_the_connectors_is_warned_about() {
    let run = |instance: &str, connector: Option<&str>| {
        let mut open = open_read(
            "cake",
            "http://fake",
            json!({ "base_url": "http://fake", "instance_timezone": instance }),
            window(),
        );
        open.timezone = connector.map(str::to_owned);
        let out = instance_with(vec![1], true, true, |_, _| {}).run::<Cake>(open);
        out.result.as_ref().unwrap();
        out.logs
            .iter()
            .filter(|l| {
                l.message
                    .contains("instance's time zone, not the connector's")
            })
            .map(|l| l.fields.clone())
            .collect::<Vec<_>>()
    };
    let warned = run("America/New_York", Some("America/Los_Angeles"));
    assert_eq!(warned.len(), 1);
    assert_eq!(warned[0]["instance_timezone"], "America/New_York");
    assert_eq!(warned[0]["connector_timezone"], "America/Los_Angeles");
    assert!(run("America/New_York", Some("America/New_York")).is_empty());
    assert!(run("America/New_York", None).is_empty());
}

/// QA35d H1: an answer without `d.event_conversions` (null, renamed) is no
/// empty page; `success: false` is still CAKE's refusal (which the row-0
/// request reads as "rows count from 1").
#[test]
fn an_answer_without_its_event_conversions_array_is_an_error() {
    let currencies: Currencies = [(1, "USD".to_owned())].into_iter().collect();
    let parse = |body: Value| {
        row::parse_page(
            &plugin_api::serde_json::to_vec(&body).unwrap(),
            &currencies,
            ConversionStatus::Approved,
            None,
        )
    };
    assert!(
        parse(json!({"d": {"success": true, "event_conversions": []}}))
            .unwrap()
            .records
            .is_empty()
    );
    for body in [
        json!({"d": {"success": true, "event_conversions": null}}),
        json!({"d": {"success": true, "conversions": []}}),
    ] {
        let e = parse(body).unwrap_err().to_string();
        assert!(
            e.starts_with("the answer has no `d.event_conversions` array"),
            "{e}"
        );
    }
    let e = parse(json!({"d": {"success": true, "row_count": 3, "rows": []}}))
        .unwrap_err()
        .to_string();
    assert!(
        e.contains("row_count is 3; `d` has: `row_count`, `rows`, `success`"),
        "{e}"
    );
    let e = parse(json!({"d": {"success": false, "message": "Invalid start_at_row"}}))
        .unwrap_err()
        .to_string();
    assert_eq!(e, "CAKE answered success=false: Invalid start_at_row");
    let e = parse(json!({"d": {"success": true, "event_conversions": {"1": {}}}}))
        .unwrap_err()
        .to_string();
    assert!(
        e.contains(
            "field `d.event_conversions`: expected an array of event conversions, got an object"
        ),
        "{e}"
    );
}
