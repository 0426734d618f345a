//! Recorded-exchange tests: the fake host replays `fixtures/*.json`.

use super::*;
use plugin_api::chrono::{Duration, NaiveDate};
use plugin_api::protocol::{ErrorKind, Window};
use plugin_api::rust_decimal::Decimal;
use plugin_api::serde_json::Value;
use plugin_api::testing::{open_check, open_read, Cassette, FakeHost, Reply};
use plugin_api::{Conversion, ConversionStatus, EventType, Record};
use std::collections::BTreeMap;
use std::str::FromStr;

fn window() -> Window {
    Window {
        from: NaiveDate::from_ymd_opt(2026, 11, 1).unwrap(),
        to: NaiveDate::from_ymd_opt(2026, 11, 2).unwrap(),
    }
}

fn settings() -> Value {
    json!({ "account_sid": "IRsid1", "campaign_ids": [1000], "page_size": 2000 })
}

fn conv(r: &Record) -> &Conversion {
    match r {
        Record::Conversion(c) => c,
        other => panic!("expected a conversion, got {other:?}"),
    }
}

fn dec(s: &str) -> Decimal {
    Decimal::from_str(s).unwrap()
}

#[test]
fn reads_pages_by_relative_next_uri_then_old_actions_by_update_and_locking_date() {
    let cassette = Cassette::from_json(include_str!(
        "../fixtures/two_pages_then_updated_and_locked.json"
    ))
    .unwrap();
    let out = FakeHost::replay(cassette).run::<Impact>(open_read(
        "imp",
        "http://fake",
        settings(),
        window(),
    ));
    out.result.as_ref().unwrap();
    assert!(out.uncommitted.is_empty());
    let ids: Vec<_> = out
        .committed
        .iter()
        .map(|r| conv(r).external_id.as_str())
        .collect();
    // The update pass returns 1000.1.1 (already emitted by `actions`) and
    // 1000.0.9; the locking pass 1000.0.9 again (emitted by the update pass)
    // and 1000.0.7. Each action is emitted once.
    assert_eq!(
        ids,
        ["1000.1.1", "1000.1.2", "1000.1.3", "1000.0.9", "1000.0.7"]
    );
    let a1 = conv(&out.committed[0]);
    assert_eq!(a1.occurred_at.to_rfc3339(), "2026-11-01T17:00:00+00:00");
    assert_eq!(
        a1.locked_at.unwrap().to_rfc3339(),
        "2026-12-27T08:00:00+00:00"
    );
    assert_eq!(a1.order_id.as_deref(), Some("A-100"));
    assert_eq!(a1.partner_id, "501");
    assert_eq!(a1.status, ConversionStatus::Pending);
    assert_eq!(a1.event_type, EventType::Sale);
    assert_eq!(a1.commission.as_ref().unwrap().amount, dec("12.00"));
    assert_eq!(a1.sale_amount.as_ref().unwrap().currency, "USD");
    let a2 = conv(&out.committed[1]);
    assert_eq!(a2.partner_id, "502", "numeric ids are accepted too");
    assert_eq!(a2.sale_amount.as_ref().unwrap().amount, dec("80.5"));
    assert_eq!(a2.coupon.as_deref(), Some("SAVE10"));
    assert_eq!(a2.event_type, EventType::Lead);
    assert_eq!(a2.status, ConversionStatus::Approved);
    assert_eq!(conv(&out.committed[2]).status, ConversionStatus::Reversed);
    let updated = conv(&out.committed[3]);
    assert_eq!(updated.status, ConversionStatus::Reversed);
    assert_eq!(updated.commission.as_ref().unwrap().amount, dec("0"));
    assert_eq!(
        updated.occurred_at.to_rfc3339(),
        "2026-08-01T08:00:00+00:00"
    );
    // EventCode `EVT-22` names no type: the tracker name (Online Sale) does.
    assert_eq!(updated.event_type, EventType::Sale);
    let locked = conv(&out.committed[4]);
    assert_eq!(locked.status, ConversionStatus::Approved);
    assert_eq!(locked.occurred_at.to_rfc3339(), "2026-09-20T08:00:00+00:00");
    assert_eq!(
        locked.locked_at.unwrap().to_rfc3339(),
        "2026-11-01T07:00:00+00:00"
    );
    assert_eq!(locked.event_type, EventType::Lead);
    // One checkpoint per page: 2 for `actions` (the second closes its
    // window), 1 per pass of `action_updates` (the locking pass closes it).
    assert_eq!(out.checkpoints.len(), 4);
    assert_eq!(out.checkpoints[2].state["pass"], json!("locking_date"));
    assert_eq!(out.checkpoints[2].state["complete"], json!(false));
    assert_eq!(out.checkpoints[3].state["complete"], json!(true));
    // Only `/Actions` queries: no changelog, no single-action route.
    for r in &out.requests {
        assert!(
            r.url.starts_with("http://fake/Advertisers/IRsid1/Actions?"),
            "{}",
            r.url
        );
    }
    assert_eq!(out.checkpoints[0].state["next"], json!("/Advertisers/IRsid1/Actions?CampaignId=1000&ActionDateStart=2026-11-01T00%3A00%3A00Z&ActionDateEnd=2026-11-03T00%3A00%3A00Z&PageSize=2000&Page=2"));
    assert_eq!(
        out.checkpoints[1].watermark.to_rfc3339(),
        "2026-11-03T00:00:00+00:00"
    );
    // Every request carries the JSON and version headers; none carries a secret.
    for r in &out.requests {
        assert_eq!(
            r.headers.get("accept").map(String::as_str),
            Some("application/json")
        );
        assert_eq!(r.headers.get("ir-version").map(String::as_str), Some("14"));
        assert!(!r.headers.contains_key("authorization"));
    }
}

#[test]
fn resumes_at_the_page_after_the_last_commit() {
    let mut open = open_read("imp", "http://fake", settings(), window());
    open.streams = vec![ACTIONS.into()];
    open.checkpoints.insert(
        ACTIONS.into(),
        plugin_api::Checkpoint {
            stream: ACTIONS.into(),
            watermark: window().from.and_hms_opt(0, 0, 0).unwrap().and_utc(),
            state: json!({ "window": "2026-11-01..2026-11-02", "campaign_pos": 0,
                           "next": "/Advertisers/IRsid1/Actions?x=1&Page=3" }),
            covers: None,
        },
    );
    let out = FakeHost::handler(|req| {
        assert_eq!(req.url, "http://fake/Advertisers/IRsid1/Actions?x=1&Page=3");
        Reply::json(
            200,
            &json!({"@page": "3", "@numpages": "3", "@nextpageuri": "", "Actions": []}),
        )
    })
    .run::<Impact>(open);
    out.result.unwrap();
    assert_eq!(out.requests.len(), 1);
    // Named by the platform's page, not the session's first (QA20 R20-5:
    // errors of a resumed session said "page 1" while fetching Page=3).
    assert!(
        out.requests[0].label.ends_with("page 3"),
        "{}",
        out.requests[0].label
    );
}

fn action(id: &str, payout: Value) -> Value {
    json!({"Id": id, "CampaignId": "1000", "MediaPartnerId": "9", "State": "APPROVED",
           "Payout": payout, "Amount": "10.00", "Currency": "USD",
           "EventDate": "2026-11-01T00:00:00Z", "LockingDate": ""})
}

#[test]
fn a_malformed_action_names_page_id_and_field_and_commits_nothing_of_its_page() {
    let mut n = 0;
    let out = FakeHost::handler(move |_| {
        n += 1;
        if n == 1 {
            Reply::json(
                200,
                &json!({"@page": "1", "@numpages": "2", "@nextpageuri": "/p2",
                                      "Actions": [action("ok.1", json!("1.00"))]}),
            )
        } else {
            Reply::json(
                200,
                &json!({"@page": "2", "@numpages": "2", "@nextpageuri": "",
                                      "Actions": [action("ok.2", json!("2.00")),
                                                  action("bad.3", json!("1,50"))]}),
            )
        }
    })
    .run::<Impact>(open_read("imp", "http://fake", settings(), window()));
    let err = out.result.unwrap_err();
    assert_eq!(err.kind, ErrorKind::BadResponse);
    for part in [
        "stream `actions` campaign 1000 page 2",
        "bad.3",
        "field `Payout`",
    ] {
        assert!(
            err.message.contains(part),
            "{part:?} not in {}",
            err.message
        );
    }
    // Page 1 is committed; nothing of page 2 (not even the good row) is.
    let ids: Vec<_> = out
        .committed
        .iter()
        .map(|r| conv(r).external_id.clone())
        .collect();
    assert_eq!(ids, ["ok.1"]);
    assert!(out.uncommitted.is_empty());
    assert_eq!(out.checkpoints.len(), 1);
}

#[test]
fn a_429_reaching_the_plugin_waits_for_the_reset_then_retries() {
    let mut n = 0;
    let out = FakeHost::handler(move |_| {
        n += 1;
        if n == 1 {
            let mut r = Reply::json(
                429,
                &json!({"Status": "ERROR", "Message": "Too many requests"}),
            );
            r.headers.insert("x-ratelimit-remaining".into(), "0".into());
            r.headers.insert("x-ratelimit-reset".into(), "30".into());
            r
        } else {
            Reply::json(
                200,
                &json!({"@page": "1", "@numpages": "1", "@nextpageuri": "",
                                      "Actions": [action("a.1", json!(3))]}),
            )
        }
    })
    .with_http_latency(Duration::seconds(5))
    .run::<Impact>(open_read(
        "imp",
        "http://fake",
        json!({ "account_sid": "IRsid1", "campaign_ids": [1000], "page_size": 2000 }),
        window(),
    ));
    out.result.as_ref().unwrap();
    // Each answer takes 5 s; the retry waits X-RateLimit-Reset (30 s) from
    // the 429's answer.
    let t = &out.request_times;
    assert_eq!((t[1] - t[0]).num_seconds(), 5 + 30);
    assert_eq!(out.committed.len(), 1);
}

#[test]
fn low_remaining_quota_pauses_before_the_next_request() {
    let mut n = 0;
    let out = FakeHost::handler(move |_| {
        n += 1;
        let mut r = Reply::json(
            200,
            &json!({"@page": n.to_string(), "@numpages": "2",
            "@nextpageuri": if n == 1 { "/p2" } else { "" }, "Actions": []}),
        );
        r.headers
            .insert("x-ratelimit-remaining-hour".into(), "0".into());
        r.headers.insert("ratelimit-reset".into(), "5".into());
        r
    })
    .with_http_latency(Duration::seconds(1))
    .run::<Impact>(open_read("imp", "http://fake", settings(), window()));
    out.result.unwrap();
    // A 5 s pause (from each answer) before page 2 and before each pass of
    // `action_updates`.
    let gaps: Vec<i64> = out
        .request_times
        .windows(2)
        .map(|w| (w[1] - w[0]).num_seconds())
        .collect();
    assert_eq!(gaps, [1 + 5, 1 + 5, 1 + 5]);
}

#[test]
fn a_window_wider_than_44_days_is_a_config_error() {
    let wide = Window {
        from: NaiveDate::from_ymd_opt(2026, 9, 1).unwrap(),
        to: NaiveDate::from_ymd_opt(2026, 11, 2).unwrap(),
    };
    let out = FakeHost::handler(|_| Reply::json(200, &json!({}))).run::<Impact>(open_read(
        "imp",
        "http://fake",
        settings(),
        wide,
    ));
    let err = out.result.unwrap_err();
    assert_eq!(err.kind, ErrorKind::Config);
    assert!(err.message.contains("45"), "{}", err.message);
    assert!(out.requests.is_empty());
}

#[test]
fn check_refuses_a_campaign_the_account_cannot_see() {
    let out = FakeHost::handler(|req| {
        assert!(
            req.url.ends_with("/Advertisers/IRsid1/Campaigns"),
            "{}",
            req.url
        );
        Reply::json(
            200,
            &json!({"@page": "1", "@numpages": "1", "Campaigns": [{"Id": "999"}]}),
        )
    })
    .run::<Impact>(open_check("imp", "http://fake", settings()));
    let err = out.result.unwrap_err();
    assert_eq!(err.kind, ErrorKind::Config);
    assert!(err.message.contains("campaign 1000"), "{}", err.message);
}

/// QA30 L1: the check read only the first page of `/Campaigns`, so a
/// campaign listed on page 2 was "not visible to account".
#[test]
fn check_follows_the_campaign_lists_next_page_uri_and_stops_when_all_are_seen() {
    let page = |n: u32, ids: &[&str], next: &str| {
        let rows: Vec<Value> = ids.iter().map(|id| json!({ "Id": id })).collect();
        Reply::json(
            200,
            &json!({"@page": n.to_string(), "@numpages": "3", "@nextpageuri": next,
                    "Campaigns": rows}),
        )
    };
    let out = FakeHost::handler(move |req| match req.url.as_str() {
        "http://fake/Advertisers/IRsid1/Campaigns" => {
            page(1, &["999", "998"], "/Advertisers/IRsid1/Campaigns?Page=2")
        }
        "http://fake/Advertisers/IRsid1/Campaigns?Page=2" => {
            page(2, &["1000"], "/Advertisers/IRsid1/Campaigns?Page=3")
        }
        other => panic!("unexpected request {other}"),
    })
    .run::<Impact>(open_check("imp", "http://fake", settings()));
    out.result.unwrap();
    // Page 3 is not asked for: campaign 1000 was on page 2.
    assert_eq!(out.requests.len(), 2);
    assert_eq!(
        out.requests[1]
            .headers
            .get("ir-version")
            .map(String::as_str),
        Some("14")
    );
}

#[test]
fn check_reads_to_the_last_page_before_refusing_a_campaign() {
    // `@page == @numpages` ends the list even with a next URI.
    let out = FakeHost::handler(|req| {
        let (n, next) = if req.url.ends_with("?Page=2") {
            ("2", "/Advertisers/IRsid1/Campaigns?Page=3")
        } else {
            ("1", "/Advertisers/IRsid1/Campaigns?Page=2")
        };
        Reply::json(
            200,
            &json!({"@page": n, "@numpages": "2", "@nextpageuri": next,
                    "Campaigns": [{"Id": format!("99{n}")}]}),
        )
    })
    .run::<Impact>(open_check("imp", "http://fake", settings()));
    let err = out.result.unwrap_err();
    assert_eq!(err.kind, ErrorKind::Config);
    assert!(
        err.message.contains("campaign 1000 is not visible"),
        "{}",
        err.message
    );
    assert_eq!(out.requests.len(), 2);
}

#[test]
fn check_ends_cleanly_on_a_next_page_uri_that_does_not_advance() {
    // Every page names page 2 as the next: the check asks for it once.
    let out = FakeHost::handler(|_| {
        Reply::json(
            200,
            &json!({"@page": "1", "@numpages": "5",
                    "@nextpageuri": "/Advertisers/IRsid1/Campaigns?Page=2",
                    "Campaigns": [{"Id": "999"}]}),
        )
    })
    .run::<Impact>(open_check("imp", "http://fake", settings()));
    let err = out.result.unwrap_err();
    assert_eq!(err.kind, ErrorKind::BadResponse);
    assert!(
        err.message.contains("names a page already read")
            && err
                .message
                .contains("campaign 1000 not seen in the 2 pages read"),
        "{}",
        err.message
    );
    assert_eq!(out.requests.len(), 2);
    // A next URI pointing back at the first page is caught as well.
    let out = FakeHost::handler(|_| {
        Reply::json(
            200,
            &json!({"@page": "1", "@numpages": "5",
                    "@nextpageuri": "/Advertisers/IRsid1/Campaigns",
                    "Campaigns": []}),
        )
    })
    .run::<Impact>(open_check("imp", "http://fake", settings()));
    assert_eq!(out.result.unwrap_err().kind, ErrorKind::BadResponse);
    assert_eq!(out.requests.len(), 1);
}

#[test]
fn check_refuses_an_answer_without_a_campaign_list() {
    let out = FakeHost::handler(|_| {
        Reply::json(200, &json!({"Status": "ERROR", "Message": "Not allowed"}))
    })
    .run::<Impact>(open_check("imp", "http://fake", settings()));
    let err = out.result.unwrap_err();
    assert_eq!(err.kind, ErrorKind::BadResponse);
    assert!(
        err.message.contains("no `Campaigns` array")
            && err
                .message
                .contains("Impact answered: Status ERROR; Not allowed"),
        "{}",
        err.message
    );
}

#[test]
fn a_refused_token_is_an_auth_error() {
    let out = FakeHost::handler(|_| {
        Reply::json(
            401,
            &json!({"Status": "ERROR", "Message": "Invalid credentials"}),
        )
    })
    .run::<Impact>(open_check("imp", "http://fake", settings()));
    let err = out.result.unwrap_err();
    assert_eq!(err.kind, ErrorKind::Auth);
    // QA: the message names the settings to check, as Google's and Meta's do.
    assert!(
        err.message.contains("credentials refused (HTTP 401)"),
        "{}",
        err.message
    );
    assert!(
        err.message
            .ends_with("; check settings `account_sid` and `auth_token`"),
        "{}",
        err.message
    );
}

#[test]
fn manifest_marks_the_token_secret_and_caps_the_window() {
    let m = Impact::manifest();
    assert_eq!(m.id, "impact");
    assert_eq!(m.max_window_days, Some(44));
    // "start ≤ 3 years ago".
    assert_eq!(m.max_history_days, Some(1095));
    assert_eq!(
        m.config_schema["properties"]["auth_token"]["x-secret"],
        json!(true)
    );
    assert!(m.config_schema["properties"]["account_sid"]
        .get("x-secret")
        .is_none());
    assert!(m.streams.iter().all(|s| s.default_lookback_days >= 60));
    let _: BTreeMap<String, Value> = BTreeMap::new();
}

#[test]
fn a_completed_window_is_pulled_again_from_its_first_page() {
    // Regression: a finished window's checkpoint (campaign_pos past the end)
    // made the next run of the same window skip everything.
    let mut open = open_read("imp", "http://fake", settings(), window());
    open.streams = vec![ACTIONS.into()];
    open.checkpoints.insert(
        ACTIONS.into(),
        plugin_api::Checkpoint {
            stream: ACTIONS.into(),
            watermark: "2026-11-03T00:00:00Z".parse().unwrap(),
            state: json!({ "window": "2026-11-01..2026-11-02", "campaign_pos": 1,
                           "next": null, "complete": true }),
            covers: None,
        },
    );
    let out = FakeHost::handler(|req| {
        assert!(req.url.contains("/Actions?CampaignId=1000&"), "{}", req.url);
        Reply::json(
            200,
            &json!({"@page": "1", "@numpages": "1", "@nextpageuri": "",
                                  "Actions": [action("again.1", json!("1"))]}),
        )
    })
    .run::<Impact>(open);
    out.result.unwrap();
    assert_eq!(out.committed.len(), 1);
    assert_eq!(out.checkpoints[0].state["complete"], json!(true));
}

/// Impact's refusal of a query over 10 × `PageSize` rows, as the fake sends it.
fn too_many() -> Reply {
    let m = "Too many results: reduce the date range or increase PageSize";
    Reply::json(
        400,
        &json!({"Status": "ERROR", "Message": m, "Errors": [{"Field": "PageSize", "Message": m}]}),
    )
}

/// The day before `day` (`YYYY-MM-DD`): the last day of a range whose end
/// is the next day's midnight.
fn day_before(day: &str) -> String {
    (day.parse::<NaiveDate>().unwrap() - Duration::days(1)).to_string()
}

/// The UTC days `(from, to)` of an `/Actions` request (`ActionDateStart/End`).
fn days_of(url: &str) -> (String, String) {
    let day = |name: &str| {
        let at = url.find(&format!("{name}=")).unwrap() + name.len() + 1;
        url[at..at + 10].to_owned()
    };
    (day("ActionDateStart"), day_before(&day("ActionDateEnd")))
}

/// An Impact that refuses `/Actions` over more than `max_days` days and
/// otherwise answers one action per day, on one page.
fn capped(max_days: i64) -> FakeHost {
    FakeHost::handler(move |req| {
        let (from, to) = days_of(&req.url);
        let (from, to): (NaiveDate, NaiveDate) = (from.parse().unwrap(), to.parse().unwrap());
        if (to - from).num_days() + 1 > max_days {
            return too_many();
        }
        let actions: Vec<Value> = from
            .iter_days()
            .take_while(|d| *d <= to)
            .map(|d| action(&format!("1000.{d}"), json!("1.00")))
            .collect();
        Reply::json(
            200,
            &json!({"@page": "1", "@numpages": "1", "@nextpageuri": "", "Actions": actions}),
        )
    })
}

fn four_days() -> Window {
    Window {
        from: NaiveDate::from_ymd_opt(2026, 11, 1).unwrap(),
        to: NaiveDate::from_ymd_opt(2026, 11, 4).unwrap(),
    }
}

#[test]
fn a_range_refused_as_too_many_actions_is_read_in_halves_with_each_half_committed() {
    let mut open = open_read("imp", "http://fake", settings(), four_days());
    open.streams = vec![ACTIONS.into()];
    let out = capped(2).run::<Impact>(open.clone());
    out.result.as_ref().unwrap();
    let asked: Vec<_> = out.requests.iter().map(|r| days_of(&r.url)).collect();
    let d = |a: &str, b: &str| (a.to_owned(), b.to_owned());
    assert_eq!(
        asked,
        [
            d("2026-11-01", "2026-11-04"),
            d("2026-11-01", "2026-11-02"),
            d("2026-11-03", "2026-11-04")
        ]
    );
    let ids: Vec<_> = out
        .committed
        .iter()
        .map(|r| conv(r).external_id.clone())
        .collect();
    assert_eq!(
        ids,
        [
            "1000.2026-11-01",
            "1000.2026-11-02",
            "1000.2026-11-03",
            "1000.2026-11-04"
        ]
    );
    assert!(out.uncommitted.is_empty());
    // The first half's checkpoint says only the second half is left, and the
    // watermark stays at the window start until the window is done.
    assert_eq!(out.checkpoints.len(), 2);
    let first = &out.checkpoints[0];
    assert_eq!(first.state["ranges"], json!([["2026-11-03", "2026-11-04"]]));
    assert_eq!(first.state["complete"], json!(false));
    assert_eq!(first.watermark.to_rfc3339(), "2026-11-01T00:00:00+00:00");
    assert_eq!(out.checkpoints[1].state["complete"], json!(true));
    assert_eq!(
        out.checkpoints[1].watermark.to_rfc3339(),
        "2026-11-05T00:00:00+00:00"
    );

    // A session that died after the first half resumes with the second.
    open.checkpoints.insert(ACTIONS.into(), first.clone());
    let resumed = capped(2).run::<Impact>(open);
    resumed.result.as_ref().unwrap();
    let asked: Vec<_> = resumed.requests.iter().map(|r| days_of(&r.url)).collect();
    assert_eq!(asked, [d("2026-11-03", "2026-11-04")]);
    assert_eq!(resumed.committed.len(), 2);
}

#[test]
fn a_single_day_still_over_the_cap_fails_naming_the_campaign_the_day_and_page_size() {
    let out = capped(0).run::<Impact>(open_read("imp", "http://fake", settings(), window()));
    let err = out.result.unwrap_err();
    assert_eq!(err.kind, ErrorKind::Config);
    for part in [
        "stream `actions` campaign 1000",
        "single day 2026-11-01",
        "20000 rows",
        "settings.page_size (now 2000",
        "Too many results",
    ] {
        assert!(
            err.message.contains(part),
            "{part:?} not in {}",
            err.message
        );
    }
    // 11-01..02 refused, then 11-01 alone; nothing was committed.
    assert_eq!(out.requests.len(), 2);
    assert!(out.checkpoints.is_empty());
}

#[test]
fn other_refusals_are_not_split() {
    let out = FakeHost::handler(|_| {
        Reply::json(
            400,
            &json!({"Status": "ERROR", "Message": "The date range cannot exceed 45 days",
                    "Errors": [{"Field": "ActionDateStart", "Message": "The date range cannot exceed 45 days"}]}),
        )
    })
    .run::<Impact>(open_read("imp", "http://fake", settings(), four_days()));
    let err = out.result.unwrap_err();
    assert_eq!(err.kind, ErrorKind::Upstream);
    assert!(err.message.contains("HTTP 400"), "{}", err.message);
    assert_eq!(out.requests.len(), 1);
}

/// The UTC days `(from, to)` of an `/Actions` request filtered by `start`/`end`.
fn days_by(url: &str, start: &str, end: &str) -> Option<(String, String)> {
    let day = |name: &str| {
        let at = url.find(&format!("{name}="))? + name.len() + 1;
        Some(url[at..at + 10].to_owned())
    };
    Some((day(start)?, day_before(&day(end)?)))
}

#[test]
fn both_update_passes_are_split_the_same_way_and_resume_in_their_pass() {
    let mut open = open_read("imp", "http://fake", settings(), four_days());
    open.streams = vec![ACTION_UPDATES.into()];
    let handler = |req: &plugin_api::protocol::HttpRequest| {
        let by_update = days_by(&req.url, "&StartDate", "&EndDate");
        let by_locking = days_by(&req.url, "LockingDateStart", "LockingDateEnd");
        assert!(by_update.is_some() != by_locking.is_some(), "{}", req.url);
        let (from, to) = by_update.or(by_locking).unwrap();
        if (from.as_str(), to.as_str()) == ("2026-11-01", "2026-11-04") {
            return too_many();
        }
        Reply::json(
            200,
            &json!({"@page": "1", "@numpages": "1", "@nextpageuri": "", "Actions": []}),
        )
    };
    let out = FakeHost::handler(handler).run::<Impact>(open.clone());
    out.result.as_ref().unwrap();
    let urls: Vec<_> = out.requests.iter().map(|r| r.url.as_str()).collect();
    assert_eq!(urls.len(), 6, "{urls:#?}");
    for (i, (param, from)) in [
        ("StartDate", "2026-11-01"),
        ("StartDate", "2026-11-01"),
        ("StartDate", "2026-11-03"),
        ("LockingDateStart", "2026-11-01"),
        ("LockingDateStart", "2026-11-01"),
        ("LockingDateStart", "2026-11-03"),
    ]
    .into_iter()
    .enumerate()
    {
        assert!(
            urls[i].contains(&format!("?CampaignId=1000&{param}={from}T00%3A00%3A00Z")),
            "{i}: {}",
            urls[i]
        );
    }
    // One checkpoint per half; the pass moves on after the update pass's
    // second half, and only the locking pass's last half closes the window
    // (its state then points at the next campaign's first pass).
    let passes: Vec<_> = out
        .checkpoints
        .iter()
        .map(|c| c.state["pass"].clone())
        .collect();
    assert_eq!(
        passes[..3],
        [
            json!("update_date"),
            json!("locking_date"),
            json!("locking_date")
        ]
    );
    let done: Vec<_> = out
        .checkpoints
        .iter()
        .map(|c| c.state["complete"].clone())
        .collect();
    assert_eq!(
        done,
        [json!(false), json!(false), json!(false), json!(true)]
    );
    assert_eq!(
        out.checkpoints[1].state["ranges"],
        json!([["2026-11-01", "2026-11-04"]])
    );

    // A session that died after the update pass resumes with the locking pass.
    open.checkpoints
        .insert(ACTION_UPDATES.into(), out.checkpoints[1].clone());
    let resumed = FakeHost::handler(handler).run::<Impact>(open.clone());
    resumed.result.as_ref().unwrap();
    assert_eq!(resumed.requests.len(), 3);
    assert!(resumed.requests[0]
        .url
        .contains("LockingDateStart=2026-11-01"));

    // A checkpoint of the stream when it read the `/ActionUpdates` changelog
    // (no pass, a changelog next-page URI) is not resumed: the window starts over.
    open.checkpoints.insert(
        ACTION_UPDATES.into(),
        plugin_api::Checkpoint {
            stream: ACTION_UPDATES.into(),
            watermark: "2026-11-01T00:00:00Z".parse().unwrap(),
            state: json!({ "window": "2026-11-01..2026-11-04", "campaign_pos": 0,
                           "ranges": [["2026-11-03", "2026-11-04"]],
                           "next": "/Advertisers/IRsid1/ActionUpdates?Page=2", "complete": false }),
            covers: None,
        },
    );
    let legacy = FakeHost::handler(handler).run::<Impact>(open);
    legacy.result.as_ref().unwrap();
    assert_eq!(legacy.requests.len(), 6);
    assert!(legacy.requests[0].url.contains("StartDate=2026-11-01"));
}

#[test]
fn a_single_day_over_the_cap_in_an_update_pass_names_the_pass() {
    let mut open = open_read("imp", "http://fake", settings(), window());
    open.streams = vec![ACTION_UPDATES.into()];
    let out = FakeHost::handler(|req| {
        if req.url.contains("LockingDateStart") {
            too_many()
        } else {
            Reply::json(
                200,
                &json!({"@page": "1", "@numpages": "1", "@nextpageuri": "", "Actions": []}),
            )
        }
    })
    .run::<Impact>(open);
    let err = out.result.unwrap_err();
    assert_eq!(err.kind, ErrorKind::Config);
    assert!(
        err.message
            .contains("stream `action_updates` campaign 1000 by locking date: Impact refuses even the single day 2026-11-01"),
        "{}",
        err.message
    );
}

#[test]
fn event_code_decides_the_event_type_when_it_names_one_else_the_tracker_name() {
    let row = |code: &str, tracker: &str| {
        let mut a = action("e.1", json!("1.00"));
        a["EventCode"] = json!(code);
        a["ActionTrackerName"] = json!(tracker);
        a
    };
    let cases = [
        (row("", "Online Sale"), EventType::Sale),
        (row("lead_form", "Online Sale"), EventType::Lead),
        // Brand-defined codes without a type word fall back to the tracker.
        (row("EVT-22", "Online Sale"), EventType::Sale),
        (row("CPA_7", "Newsletter Sign Up"), EventType::Signup),
        (row("EVT-22", "Custom Tracker"), EventType::Other),
    ];
    let rows: Vec<Value> = cases.iter().map(|(r, _)| r.clone()).collect();
    let body = json!({"@page": "1", "@numpages": "1", "@nextpageuri": "", "Actions": rows});
    let (_, records) = parse_actions_page(body.to_string().as_bytes()).unwrap();
    let got: Vec<_> = records.iter().map(|r| conv(r).event_type).collect();
    let want: Vec<_> = cases.iter().map(|(_, t)| *t).collect();
    assert_eq!(got, want);
}

/// The refusal's text went into the error as it came: a body that is not
/// Impact's envelope (a proxy's HTML page) kept its newlines and lost its
/// status. Now it is `HTTP <status>` and `sdk::body_suffix`'s one trimmed
/// line, with nothing dangling after an empty body.
#[test]
fn a_refusals_text_is_its_status_and_one_line() {
    let resp = |status: u16, body: &str| plugin_api::Response {
        status,
        headers: BTreeMap::new(),
        body: body.as_bytes().to_vec(),
    };
    assert_eq!(
        action::error_message(&resp(400, "\n<html>\n  <p>bad\r\n request</p>\n</html>\n")),
        "HTTP 400: <html> <p>bad request</p> </html>"
    );
    assert_eq!(action::error_message(&resp(400, "")), "HTTP 400");
    let m = "Too many results:\n reduce the date range or increase PageSize";
    let body = json!({"Status": "ERROR", "Message": m,
                      "Errors": [{"Field": "PageSize", "Message": m}, {"Field": "EndDate", "Message": "too late"}]});
    assert_eq!(
        action::error_message(&resp(400, &body.to_string())),
        "HTTP 400: Too many results: reduce the date range or increase PageSize; EndDate: too late"
    );
    // JSON without Impact's messages: its start, like any other body.
    assert_eq!(
        action::error_message(&resp(400, r#"{"error": "nope"}"#)),
        r#"HTTP 400: {"error": "nope"}"#
    );
}

/// QA6 F6: a 200 JSON answer without `Actions` (Impact's error object, an
/// API change) was read as an empty page: the sync reported ok with 0
/// records and committed its checkpoints, so a wrong campaign id looked like
/// "no sales" forever.
#[test]
fn a_page_without_actions_is_a_bad_response_naming_what_came_back() {
    let out = FakeHost::handler(|_| {
        Reply::json(
            200,
            &json!({"Status": "ERROR", "Message": "Invalid CampaignId"}),
        )
    })
    .run::<Impact>(open_read("imp", "http://fake", settings(), window()));
    let err = out.result.unwrap_err();
    assert_eq!(err.kind, ErrorKind::BadResponse);
    assert_eq!(
        err.message,
        "stream `actions` campaign 1000 page 1: the answer has no `Actions` array \
         (not a page of actions): Impact answered: Status ERROR; Invalid CampaignId"
    );
    assert!(out.checkpoints.is_empty(), "{:?}", out.checkpoints);
    assert!(out.committed.is_empty());
    // Any other object says what it got; an empty list is still a page.
    let e = parse_actions_page(br#"{"@page":"1","Items":[]}"#).unwrap_err();
    assert!(e.ends_with(r#": got {"@page":"1","Items":[]}"#), "{e}");
    let (_, records) =
        parse_actions_page(br#"{"@page":"1","@numpages":"1","Actions":[]}"#).unwrap();
    assert!(records.is_empty());
}

/// QA20 F2: the window's days are the connector's zone's: every filter runs
/// from the first instant of the first day there to the first instant of
/// the day after the last (not `23:59:59Z` of UTC days), DST days included,
/// and the watermark ends at the zone's midnight.
#[test]
fn date_filters_are_the_connectors_zone_days_as_instants() {
    let page = || {
        Reply::json(
            200,
            &json!({"@page": "1", "@numpages": "1", "@nextpageuri": "", "Actions": []}),
        )
    };
    let run = |from: (u32, u32), to: (u32, u32), tz: Option<&str>| {
        let d = |(m, dd)| NaiveDate::from_ymd_opt(2026, m, dd).unwrap();
        let mut open = open_read(
            "imp",
            "http://fake",
            settings(),
            Window {
                from: d(from),
                to: d(to),
            },
        );
        open.timezone = tz.map(str::to_owned);
        let out = FakeHost::handler(move |_| page()).run::<Impact>(open);
        out.result.as_ref().unwrap();
        out
    };
    let la = Some("America/Los_Angeles");
    let out = run((10, 2), (10, 2), la);
    let urls: Vec<&str> = out.requests.iter().map(|r| r.url.as_str()).collect();
    assert_eq!(urls.len(), 3, "{urls:?}");
    for (url, (start, end)) in urls.iter().zip([
        ("ActionDateStart", "ActionDateEnd"),
        ("StartDate", "EndDate"),
        ("LockingDateStart", "LockingDateEnd"),
    ]) {
        assert!(
            url.contains(&format!(
                "&{start}=2026-10-02T07%3A00%3A00Z&{end}=2026-10-03T07%3A00%3A00Z&"
            )),
            "{url}"
        );
    }
    let last = out.checkpoints.last().unwrap();
    assert_eq!(
        last.watermark,
        "2026-10-03T07:00:00Z"
            .parse::<plugin_api::chrono::DateTime<plugin_api::chrono::Utc>>()
            .unwrap()
    );
    // 1 November is 25 hours long in Los Angeles; 8 March 23.
    let out = run((10, 31), (11, 1), la);
    assert!(
        out.requests[0].url.contains(
            "ActionDateStart=2026-10-31T07%3A00%3A00Z&ActionDateEnd=2026-11-02T08%3A00%3A00Z&"
        ),
        "{}",
        out.requests[0].url
    );
    // Without a zone from the host (an older host or recording): UTC days.
    let out = run((11, 1), (11, 2), None);
    assert!(
        out.requests[0].url.contains(
            "ActionDateStart=2026-11-01T00%3A00%3A00Z&ActionDateEnd=2026-11-03T00%3A00%3A00Z&"
        ),
        "{}",
        out.requests[0].url
    );
    // Tokyo's days begin the evening before, in UTC.
    let out = run((11, 1), (11, 1), Some("Asia/Tokyo"));
    assert!(
        out.requests[0].url.contains(
            "ActionDateStart=2026-10-31T15%3A00%3A00Z&ActionDateEnd=2026-11-01T15%3A00%3A00Z&"
        ),
        "{}",
        out.requests[0].url
    );
}

/// The widest window (44 days) spans at most 45 days from start to end in
/// any zone, DST change included: Impact's limit.
#[test]
fn the_widest_window_stays_within_impacts_45_days_across_a_dst_change() {
    let tz = plugin_api::chrono_tz::America::Los_Angeles;
    let from = NaiveDate::from_ymd_opt(2026, 10, 1).unwrap();
    let to = from + Duration::days(i64::from(MAX_WINDOW_DAYS) - 1);
    let (s, e) = day_bounds(from, to, tz);
    let at = |t: &str| {
        t.parse::<plugin_api::chrono::DateTime<plugin_api::chrono::Utc>>()
            .unwrap()
    };
    let span = at(&e) - at(&s);
    assert_eq!(span, Duration::days(44) + Duration::hours(1));
    assert!(span <= Duration::days(45));
}

/// QA35d H3, for `check`: a `/Campaigns` page saying more follow
/// (`@page` < `@numpages`) without a `@nextpageuri` ended the list there,
/// and a campaign on a later page was reported "not visible to account".
/// Now the check fails naming the page and what was expected.
#[test]
fn check_refuses_a_campaign_page_saying_more_follow_without_a_next_page_uri() {
    for next in [None, Some("")] {
        let out = FakeHost::handler(move |_| {
            let mut body = json!({"@page": "1", "@numpages": "2", "Campaigns": [{"Id": "999"}]});
            if let Some(n) = next {
                body["@nextpageuri"] = json!(n);
            }
            Reply::json(200, &body)
        })
        .run::<Impact>(open_check("imp", "http://fake", settings()));
        let err = out.result.unwrap_err();
        assert_eq!(err.kind, ErrorKind::BadResponse, "{}", err.message);
        let sent = if next.is_none() { "missing" } else { "empty" };
        assert_eq!(
            err.message,
            format!(
                "check: campaigns page 1: Impact's paging envelope says more pages follow \
                 (@page 1, @numpages 2) but its @nextpageuri is {sent}: expected the relative \
                 URI of page 2; the page is refused rather than taken as the last one"
            )
        );
    }
    // The last page may have an empty (or no) next URI, and a campaign Id
    // sent as a whole float is that campaign (QA35d M3).
    let (env, ids) = campaigns::parse_campaigns_page(
        br#"{"@page":"2","@numpages":"2","Campaigns":[{"Id":1000.0},{"Id":"998"}]}"#,
    )
    .unwrap();
    assert!(env.next.is_none());
    assert_eq!(ids, ["1000", "998"]);
    let e = campaigns::parse_campaigns_page(
        br#"{"@page":"1","@numpages":"1","Campaigns":[{"Id":1000.5}]}"#,
    )
    .unwrap_err();
    assert!(e.starts_with("record 1: field `Id`: 1000.5"), "{e}");
}

/// The envelope of a page of `n` actions whose `@` fields are `envelope`,
/// or the parse error.
fn page_of(envelope: Value, n: usize) -> Result<Envelope, String> {
    let mut body = envelope;
    body["Actions"] = (0..n)
        .map(|i| action(&format!("a.{i}"), json!("1.00")))
        .collect();
    parse_actions_page(body.to_string().as_bytes()).map(|(env, _)| env)
}

/// QA37 R-M2: a page holding 19 `Actions` under `"@start": "0", "@end":
/// "19", "@total": "20"` synced ok, a row silently missed (a missed action
/// update is a missed reversal). Now a page whose rows differ from
/// `@end - @start + 1` is refused, whether fewer or more, as Everflow
/// refuses one short of its `total_count`.
#[test]
fn a_page_with_fewer_or_more_rows_than_its_start_and_end_count_is_refused() {
    let env = json!({"@page": "1", "@numpages": "1", "@pagesize": "20000",
                     "@total": "20", "@start": "0", "@end": "19", "@nextpageuri": ""});
    assert_eq!(
        page_of(env.clone(), 19).unwrap_err(),
        "19 rows, but Impact's paging envelope counts 20 on this page (@start 0, @end 19): \
         rows are missing from the answer"
    );
    assert_eq!(
        page_of(env.clone(), 21).unwrap_err(),
        "21 rows, but Impact's paging envelope counts 20 on this page (@start 0, @end 19): \
         the answer holds rows its envelope does not count"
    );
    page_of(env, 20).unwrap();
    // Numbers as JSON numbers are read the same; a later page too.
    let later = json!({"@page": 3, "@numpages": 3, "@start": 40, "@end": 44,
                       "@total": 45, "@nextpageuri": ""});
    page_of(later.clone(), 5).unwrap();
    assert!(page_of(later, 4)
        .unwrap_err()
        .starts_with("4 rows, but Impact's paging envelope counts 5 on this page"));
}

/// A page other than the last holds `@pagesize` rows: one short of it is
/// refused even when its own `@start`/`@end` agree with its rows.
#[test]
fn a_page_short_of_its_page_size_that_is_not_the_last_is_refused() {
    let env = |end: &str| {
        json!({"@page": "1", "@numpages": "2", "@pagesize": "20", "@total": "40",
               "@start": "0", "@end": end, "@nextpageuri": "/Advertisers/IRsid1/Actions?Page=2"})
    };
    assert_eq!(
        page_of(env("18"), 19).unwrap_err(),
        "19 rows, but Impact's paging envelope counts 20 on this page (@pagesize 20, not the \
         last page): rows are missing from the answer"
    );
    let full = page_of(env("19"), 20).unwrap();
    assert!(full.next.is_some());
}

/// The last page's rows end at `@total`: one short of it (its `@start` and
/// `@end` agreeing with its rows) is refused, and so is one past it.
#[test]
fn a_last_page_short_of_or_past_its_total_is_refused() {
    let env = |end: &str| {
        json!({"@page": "2", "@numpages": "2", "@pagesize": "20", "@total": "40",
               "@start": "20", "@end": end, "@nextpageuri": ""})
    };
    assert_eq!(
        page_of(env("38"), 19).unwrap_err(),
        "19 rows, but Impact's paging envelope counts 20 on this page (@start 20, @total 40, \
         the last page): rows are missing from the answer"
    );
    assert_eq!(
        page_of(env("40"), 21).unwrap_err(),
        "21 rows, but Impact's paging envelope counts 20 on this page (@start 20, @total 40, \
         the last page): the answer holds rows its envelope does not count"
    );
    assert!(page_of(env("39"), 20).unwrap().next.is_none());
}

/// An empty answer is read as one: Impact's inclusive `@start..@end` cannot
/// count zero rows, so `@end` at `@start` (what the fake writes) or below
/// it is taken as none, and `@total` says whether rows are due. An empty
/// page whose range or total counts rows is refused.
#[test]
fn an_empty_answer_is_read_unless_its_envelope_counts_rows() {
    for end in ["0", "-1"] {
        let env = json!({"@page": "1", "@numpages": "1", "@pagesize": "20000",
                         "@total": "0", "@start": "0", "@end": end, "@nextpageuri": ""});
        page_of(env, 0).unwrap();
    }
    let env = json!({"@page": "1", "@numpages": "1", "@start": "0", "@end": "19",
                     "@nextpageuri": ""});
    assert_eq!(
        page_of(env, 0).unwrap_err(),
        "0 rows, but Impact's paging envelope counts 20 on this page (@start 0, @end 19): \
         rows are missing from the answer"
    );
    let env = json!({"@page": "1", "@numpages": "1", "@total": "1", "@start": "0",
                     "@end": "0", "@nextpageuri": ""});
    assert_eq!(
        page_of(env, 0).unwrap_err(),
        "0 rows, but Impact's paging envelope counts 1 on this page (@start 0, @total 1, the \
         last page): rows are missing from the answer"
    );
}

/// Each count is checked only when the envelope sends it (older or other
/// endpoints may not): the same short page is read without the count and
/// refused with it.
#[test]
fn a_count_the_envelope_does_not_send_skips_its_check() {
    let last = json!({"@page": "2", "@numpages": "2", "@nextpageuri": ""});
    let not_last = json!({"@page": "1", "@numpages": "2", "@nextpageuri": "/p2"});
    let with = |base: &Value, extra: Value| {
        let mut env = base.clone();
        for (k, v) in extra.as_object().unwrap() {
            env[k] = v.clone();
        }
        env
    };
    let cases = [
        // Only one of @start / @end: no range to count.
        (with(&last, json!({"@start": "20"})), true),
        (with(&last, json!({"@end": "39"})), true),
        (with(&last, json!({"@start": "20", "@end": "39"})), false),
        // @total without @start: where the page begins is unknown.
        (with(&last, json!({"@total": "40"})), true),
        (with(&last, json!({"@total": "40", "@start": "20"})), false),
        // @pagesize: only pages before the last are full.
        (with(&last, json!({"@pagesize": "20"})), true),
        (with(&not_last, json!({})), true),
        (with(&not_last, json!({"@pagesize": "20"})), false),
    ];
    for (env, read) in cases {
        let got = page_of(env.clone(), 19);
        assert_eq!(got.is_ok(), read, "{env}: {got:?}");
        if let Err(e) = got {
            assert!(e.ends_with("rows are missing from the answer"), "{e}");
        }
    }
    // All absent: any number of rows is a page.
    page_of(json!({"@page": "1", "@numpages": "1"}), 19).unwrap();
}

/// A count that is there but is no whole number is an error naming it,
/// not a check silently skipped.
#[test]
fn a_count_that_is_not_a_number_is_an_error_naming_it() {
    let cases = [
        (
            "@total",
            json!("twenty"),
            "field `@total`: \"twenty\" is not an integer",
        ),
        ("@start", json!(""), "field `@start`: \"\" is not a number"),
        (
            "@end",
            json!("19.5"),
            "field `@end`: \"19.5\" is not an integer",
        ),
        (
            "@pagesize",
            json!(true),
            "field `@pagesize`: expected an integer, got true",
        ),
        (
            "@end",
            json!([19]),
            "field `@end`: expected an integer, got an array",
        ),
        (
            "@start",
            json!("-1"),
            "field `@start`: -1 is negative, not a row count",
        ),
    ];
    for (key, value, says) in cases {
        let mut env = json!({"@page": "1", "@numpages": "1", "@start": "0", "@end": "0",
                             "@nextpageuri": ""});
        env[key] = value;
        assert_eq!(
            page_of(env, 1).unwrap_err(),
            format!("Impact's paging envelope: {says}; its row counts cannot be checked")
        );
    }
}

/// Through the stream: the page short of its envelope's count fails the
/// run as a bad answer naming stream, campaign and page; the page before
/// stays committed, nothing of the short one is, and the window is not
/// complete. The campaign list (`check`) is checked the same way.
#[test]
fn a_short_page_fails_the_stream_and_the_check_keeping_the_pages_before() {
    let mut n = 0;
    let out = FakeHost::handler(move |_| {
        n += 1;
        let (page, next, ids) = if n == 1 {
            ("1", "/p2", vec!["ok.1", "ok.2"])
        } else {
            ("2", "", vec!["lost.3"])
        };
        let start = if n == 1 { "0" } else { "2" };
        let end = if n == 1 { "1" } else { "3" };
        let rows: Vec<Value> = ids.iter().map(|id| action(id, json!("1.00"))).collect();
        Reply::json(
            200,
            &json!({"@page": page, "@numpages": "2", "@pagesize": "2", "@total": "4",
                    "@start": start, "@end": end, "@nextpageuri": next, "Actions": rows}),
        )
    })
    .run::<Impact>(open_read("imp", "http://fake", settings(), window()));
    let err = out.result.unwrap_err();
    assert_eq!(err.kind, ErrorKind::BadResponse, "{}", err.message);
    assert_eq!(
        err.message,
        "stream `actions` campaign 1000 page 2: 1 row, but Impact's paging envelope counts 2 \
         on this page (@start 2, @end 3): rows are missing from the answer"
    );
    let ids: Vec<_> = out
        .committed
        .iter()
        .map(|r| conv(r).external_id.clone())
        .collect();
    assert_eq!(ids, ["ok.1", "ok.2"]);
    assert!(out.uncommitted.is_empty());
    assert_eq!(out.checkpoints.len(), 1);
    assert_eq!(out.checkpoints[0].state["complete"], json!(false));

    let out = FakeHost::handler(|_| {
        Reply::json(
            200,
            &json!({"@page": "1", "@numpages": "1", "@total": "2", "@start": "0",
                    "@end": "1", "@nextpageuri": "", "Campaigns": [{"Id": "1000"}]}),
        )
    })
    .run::<Impact>(open_check("imp", "http://fake", settings()));
    let err = out.result.unwrap_err();
    assert_eq!(err.kind, ErrorKind::BadResponse, "{}", err.message);
    assert_eq!(
        err.message,
        "check: campaigns page 1: 1 row, but Impact's paging envelope counts 2 on this page \
         (@start 0, @end 1): rows are missing from the answer"
    );
}

/// Impact's refusal of a range starting more than 3 years back, as the
/// fake sends it.
fn too_old() -> Reply {
    let m = "StartDate cannot be more than 3 years in the past";
    Reply::json(
        400,
        &json!({"Status": "ERROR", "Message": m, "Errors": [{"Field": "ActionDateStart", "Message": m}]}),
    )
}

/// An Impact that answers every request with `reply`.
fn answering(reply: fn() -> Reply) -> FakeHost {
    FakeHost::handler(move |_| reply())
}

fn empty_page() -> Reply {
    Reply::json(
        200,
        &json!({"@page": "1", "@numpages": "1", "@nextpageuri": "", "Actions": []}),
    )
}

fn not_found() -> Reply {
    Reply::json(404, &json!({"Status": "ERROR", "Message": "Not found"}))
}

/// QA44c C-L1: a window starting before the first day Impact serves (3 years
/// back, with a day's margin) that Impact refuses fails with a config error
/// saying why and from which day to sync, in every pass, not with the bare
/// 400. The first day is the host's `max_history_days` rule on the UTC date
/// of the session's clock (2026-11-28).
#[test]
fn a_window_impact_refuses_as_older_than_3_years_names_the_day_to_sync_from() {
    let now = open_read("imp", "http://fake", settings(), window()).now;
    let first = earliest_day(now);
    assert_eq!(first, NaiveDate::from_ymd_opt(2023, 11, 30).unwrap());
    assert_eq!(
        first,
        plugin_api::protocol::first_served_day(
            Impact::manifest().max_history_days.unwrap(),
            now.date_naive()
        )
    );
    let old = Window {
        from: first - Duration::days(3),
        to: first + Duration::days(1),
    };
    for stream in [ACTIONS, ACTION_UPDATES] {
        let mut open = open_read("imp", "http://fake", settings(), old);
        open.streams = vec![stream.into()];
        let out = answering(too_old).run::<Impact>(open);
        let err = out.result.unwrap_err();
        assert_eq!(err.kind, ErrorKind::Config, "{stream}: {}", err.message);
        assert!(!err.retryable);
        assert_eq!(
            err.message,
            "connector `imp`: window 2023-11-27..2023-12-01 starts before 2023-11-30: Impact \
             serves actions for only the prior 3 years, so days before 2023-11-30 cannot be \
             read; sync from 2023-11-30 or later (Impact said: HTTP 400: StartDate cannot be \
             more than 3 years in the past)",
            "{stream}"
        );
        // One query, and nothing committed.
        assert_eq!(out.requests.len(), 1, "{stream}");
        assert!(out.checkpoints.is_empty(), "{stream}");
    }
}

/// Impact decides: an old window it serves is read (never refused or cut
/// before asking); its refusal of a window from the first served day on, or
/// a 404 of an old one, is not put down to age.
#[test]
fn only_a_refusal_of_a_window_starting_before_the_first_served_day_is_put_down_to_age() {
    let now = open_read("imp", "http://fake", settings(), window()).now;
    let first = earliest_day(now);
    let from = |from: NaiveDate| Window {
        from,
        to: from + Duration::days(4),
    };
    let run = |w: Window, reply: fn() -> Reply| {
        answering(reply).run::<Impact>(open_read("imp", "http://fake", settings(), w))
    };

    let out = run(from(first - Duration::days(400)), empty_page);
    out.result.as_ref().unwrap();
    let (asked, _) = days_of(&out.requests[0].url);
    assert_eq!(asked, (first - Duration::days(400)).to_string(), "not cut");
    assert_eq!(out.checkpoints.len(), 3);

    let err = run(from(first), too_old).result.unwrap_err();
    assert_eq!(err.kind, ErrorKind::Upstream, "{}", err.message);
    assert!(err.message.contains("HTTP 400"), "{}", err.message);
    assert!(!err.message.contains("sync from"), "{}", err.message);

    let err = run(from(first - Duration::days(1)), not_found)
        .result
        .unwrap_err();
    assert_eq!(err.kind, ErrorKind::Upstream, "{}", err.message);
    assert!(err.message.contains("HTTP 404"), "{}", err.message);
    assert!(!err.message.contains("sync from"), "{}", err.message);
}
