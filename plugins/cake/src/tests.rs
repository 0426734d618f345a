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

#[test]
fn changes_since_is_the_day_before_the_watermark_or_the_window_start() {
    let d = |s: &str| NaiveDate::parse_from_str(s, "%Y-%m-%d").unwrap();
    let at = |s: &str| s.parse::<DateTime<Utc>>().unwrap();
    assert_eq!(changes_since(None, d("2026-11-01")), d("2026-11-01"));
    // Midnight of the answer, in any zone from UTC-12 to UTC+14, is before
    // the watermark.
    for w in [
        "2026-11-28T00:00:00Z",
        "2026-11-28T02:00:00Z",
        "2026-11-28T23:59:59Z",
    ] {
        let since = changes_since(Some(at(w)), d("2026-11-01"));
        let midnight = since.and_time(NaiveTime::MIN).and_utc();
        assert!(midnight + Duration::hours(12) <= at(w), "{w}: {since}");
        assert!(midnight - Duration::hours(14) <= at(w), "{w}: {since}");
    }
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
    let cassette = Cassette::from_json(include_str!("../fixtures/pages_and_changes.json")).unwrap();
    let out = FakeHost::replay(cassette).run::<Cake>(open_read(
        "cake",
        "http://fake",
        json!({ "base_url": "http://fake", "row_limit": 2 }),
        window(),
    ));
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
    assert_eq!(
        out.checkpoints[2].watermark.to_rfc3339(),
        "2026-11-28T12:00:00+00:00"
    );
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
    assert_eq!(out.result.unwrap_err().kind, ErrorKind::Auth);
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
        },
    );
    let out = FakeHost::handler(|req| {
        if req.url.contains("Currencies") {
            return Reply::json(200, &json!({"d": {"success": true, "currencies": [{"currency_id": 1, "currency_abbr": "USD"}]}}));
        }
        let body: Value = plugin_api::serde_json::from_str(req.body.as_deref().unwrap()).unwrap();
        assert_eq!(body["start_at_row"], json!(1));
        Reply::json(200, &json!({"d": {"success": true, "row_count": 0, "event_conversions": []}}))
    })
    .run::<Cake>(open);
    out.result.unwrap();
    assert_eq!(out.checkpoints.len(), 1);
}
