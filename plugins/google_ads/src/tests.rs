//! Recorded-exchange tests: the fake host replays `fixtures/*.json` or answers
//! from a closure.

use super::*;
use plugin_api::chrono::NaiveDate;
use plugin_api::protocol::{Checkpoint, Window};
use plugin_api::rust_decimal::Decimal;
use plugin_api::serde_json::Value;
use plugin_api::testing::{open_check, open_read, Cassette, FakeHost, Reply};
use plugin_api::{Channel, Spend};
use std::str::FromStr;

fn day(s: &str) -> NaiveDate {
    NaiveDate::parse_from_str(s, "%Y-%m-%d").unwrap()
}

fn window() -> Window {
    Window {
        from: day("2026-11-01"),
        to: day("2026-11-02"),
    }
}

fn settings() -> Value {
    json!({ "customer_id": "123-456-7890" })
}

fn spend(r: &Record) -> &Spend {
    match r {
        Record::Spend(s) => s,
        other => panic!("expected spend, got {other:?}"),
    }
}

fn dec(s: &str) -> Decimal {
    Decimal::from_str(s).unwrap()
}

const CUSTOMER: &str = r#"[{"results":[{"customer":{"id":"1234567890","currencyCode":"EUR","timeZone":"Europe/Berlin"}}],"requestId":"x"}]"#;

/// The real waits: how far each sleep moved the host's clock (the
/// zero-length sleeps that refresh the clock are left out).
fn waits(out: &plugin_api::testing::Outcome) -> Vec<i64> {
    let mut now: plugin_api::chrono::DateTime<plugin_api::chrono::Utc> =
        "2026-11-28T12:00:00Z".parse().unwrap();
    let mut v = Vec::new();
    for s in &out.sleeps {
        if *s > now {
            v.push((*s - now).num_seconds());
            now = *s;
        }
    }
    v
}

#[test]
fn reads_two_days_with_exact_micros_and_account_timezone() {
    let cassette = Cassette::from_json(include_str!("../fixtures/two_days.json")).unwrap();
    let out = FakeHost::replay(cassette).run::<GoogleAds>(open_read(
        "gads",
        "http://fake",
        settings(),
        window(),
    ));
    out.result.as_ref().unwrap();
    assert!(out.uncommitted.is_empty());
    assert_eq!(out.committed.len(), 5);
    let first = spend(&out.committed[0]);
    assert_eq!(first.account_id, "1234567890");
    assert_eq!(first.timezone, "Europe/Berlin");
    assert_eq!(first.campaign_name, "Brand \"DE\"");
    assert_eq!(first.ad_group_id.as_deref(), Some("222"));
    assert_eq!(first.channel, Channel::Search);
    assert_eq!(first.spend.amount, dec("12.345678"));
    assert_eq!(first.spend.currency, "EUR");
    assert_eq!(first.platform_conversions, Some(dec("2.5")));
    assert_eq!(
        first.platform_conversion_value.as_ref().unwrap().amount,
        dec("99.9")
    );
    // Fields at their proto3 default are absent and read as zero.
    let display = spend(&out.committed[1]);
    assert_eq!((display.clicks, display.spend.amount), (0, Decimal::ZERO));
    assert_eq!(display.channel, Channel::Display);
    let video = spend(&out.committed[2]);
    assert_eq!(video.spend.amount, dec("0.000001"));
    assert_eq!(video.platform_conversions, Some(dec("0.333333")));
    assert_eq!(video.channel, Channel::Video);
    // Performance Max comes from its own by-campaign query: no ad group.
    let pmax = spend(&out.committed[4]);
    assert_eq!(pmax.day, day("2026-11-02"));
    assert_eq!(
        (pmax.campaign_id.as_str(), pmax.ad_group_id.as_deref()),
        ("999", None)
    );
    assert_eq!(pmax.spend.amount, dec("55.5"));
    assert_eq!(pmax.channel, Channel::Other);
    // One checkpoint per day-request, the last closing the window.
    assert_eq!(out.checkpoints.len(), 2);
    assert_eq!(out.checkpoints[0].state["done_through"], "2026-11-01");
    assert_eq!(
        out.checkpoints[1].watermark.to_rfc3339(),
        "2026-11-03T00:00:00+00:00"
    );
    // The session pulled the whole window: its last checkpoint says so, so
    // the host can set rows no longer reported to zero.
    assert_eq!(out.checkpoints[0].covers, None);
    assert_eq!(
        out.checkpoints[1].covers,
        Some(plugin_api::Covers {
            account_id: "1234567890".into(),
            days: window(),
        })
    );
}

#[test]
fn resumes_after_the_last_finished_day_of_the_same_window() {
    let mut open = open_read("gads", "http://fake", settings(), window());
    open.checkpoints.insert(
        SPEND.into(),
        Checkpoint {
            stream: SPEND.into(),
            watermark: day("2026-11-02").and_hms_opt(0, 0, 0).unwrap().and_utc(),
            state: json!({ "window": "2026-11-01..2026-11-02", "done_through": "2026-11-01" }),
            covers: None,
        },
    );
    let out = FakeHost::handler(|req| {
        let body = req.body.as_deref().unwrap_or("");
        if body.contains("FROM customer") {
            return Reply::json(200, &plugin_api::serde_json::from_str(CUSTOMER).unwrap());
        }
        assert!(
            body.contains("BETWEEN '2026-11-02' AND '2026-11-02'"),
            "{body}"
        );
        Reply::json(200, &json!([{ "results": [], "requestId": "r" }]))
    })
    .run::<GoogleAds>(open);
    out.result.as_ref().unwrap();
    // Customer, then the day by ad group and its Performance Max query.
    assert_eq!(out.requests.len(), 3);
    // The first day came from an earlier session: no complete pass.
    assert_eq!(out.checkpoints.len(), 1);
    assert_eq!(out.checkpoints[0].covers, None);
}

/// Regression (found by the demo's end-to-end test): a second run over a
/// window that was already finished skipped every day, so a restated day was
/// never re-read. A finished window is now pulled again from its start.
#[test]
fn a_finished_window_is_pulled_again_so_restatements_are_seen() {
    let mut open = open_read("gads", "http://fake", settings(), window());
    open.checkpoints.insert(
        SPEND.into(),
        Checkpoint {
            stream: SPEND.into(),
            watermark: day("2026-11-03").and_hms_opt(0, 0, 0).unwrap().and_utc(),
            state: json!({ "window": "2026-11-01..2026-11-02", "done_through": "2026-11-02" }),
            covers: None,
        },
    );
    let out = FakeHost::handler(|req| {
        let body = req.body.as_deref().unwrap_or("");
        if body.contains("FROM customer") {
            return Reply::json(200, &plugin_api::serde_json::from_str(CUSTOMER).unwrap());
        }
        Reply::json(200, &json!([{ "results": [], "requestId": "r" }]))
    })
    .run::<GoogleAds>(open);
    out.result.as_ref().unwrap();
    let data: Vec<&str> = out
        .requests
        .iter()
        .filter_map(|r| r.body.as_deref())
        .filter(|b| !b.contains("FROM customer"))
        .collect();
    assert!(
        data.first().is_some_and(|b| b.contains("'2026-11-01'")),
        "the finished window must be pulled again from its first day: {data:?}"
    );
}

#[test]
fn login_customer_id_header_is_sent_without_dashes() {
    let out = FakeHost::handler(|req| {
        assert_eq!(
            req.headers.get("login-customer-id").map(String::as_str),
            Some("9998887777")
        );
        assert!(req
            .url
            .ends_with("/v24/customers/1234567890/googleAds:searchStream"));
        Reply::json(200, &plugin_api::serde_json::from_str(CUSTOMER).unwrap())
    })
    .run::<GoogleAds>(open_check(
        "gads",
        "http://fake",
        json!({ "customer_id": "1234567890", "login_customer_id": "999-888-7777" }),
    ));
    out.result.as_ref().unwrap();
}

fn quota_reply(delay: &str) -> Reply {
    Reply::json(
        429,
        &json!({"error": {"code": 429, "message": "Resource has been exhausted (e.g. check quota).",
          "status": "RESOURCE_EXHAUSTED",
          "details": [{"@type": "type.googleapis.com/google.ads.googleads.v24.errors.GoogleAdsFailure",
            "errors": [{"errorCode": {"quotaError": "RESOURCE_EXHAUSTED"}, "message": "Too many requests.",
              "details": {"quotaErrorDetails": {"rateScope": "ACCOUNT", "rateName": "Requests per account", "retryDelay": delay}}}],
            "requestId": "q1"}]}}),
    )
}

#[test]
fn quota_errors_are_waited_out_with_the_retry_delay() {
    let mut calls = 0;
    let out = FakeHost::handler(move |req| {
        calls += 1;
        let body = req.body.as_deref().unwrap_or("");
        if body.contains("FROM customer") {
            return Reply::json(200, &plugin_api::serde_json::from_str(CUSTOMER).unwrap());
        }
        if calls == 2 {
            return quota_reply("17s");
        }
        Reply::json(200, &json!([{ "results": [], "requestId": "r" }]))
    })
    .run::<GoogleAds>(open_read("gads", "http://fake", settings(), window()));
    out.result.as_ref().unwrap();
    assert_eq!(waits(&out), [17]);
    assert_eq!(out.checkpoints.len(), 2);
}

/// QA25 N5: a day's wait was logged as `wait_secs=86400` with nothing to
/// say that the host sleeps it in 15-minute turns.
#[test]
fn a_days_quota_wait_is_logged_as_slept_in_turns() {
    let mut calls = 0;
    let out = FakeHost::handler(move |req| {
        calls += 1;
        if req.body.as_deref().unwrap_or("").contains("FROM customer") {
            return Reply::json(200, &plugin_api::serde_json::from_str(CUSTOMER).unwrap());
        }
        if calls == 2 {
            return quota_reply("86400s");
        }
        Reply::json(200, &json!([{ "results": [], "requestId": "r" }]))
    })
    .run::<GoogleAds>(open_read("gads", "http://fake", settings(), window()));
    out.result.as_ref().unwrap();
    // One day in 96 timers of the host's 15 min, all asking for the same end.
    assert_eq!(waits(&out), [86_400]);
    assert_eq!(out.sleeps.len(), 96);
    let line = out
        .logs
        .iter()
        .find(|l| l.message.starts_with("quota exhausted, waiting"))
        .unwrap();
    assert_eq!(
        line.message,
        "quota exhausted, waiting in turns of at most 15 min (the host's timer cap)"
    );
    assert_eq!(line.fields["wait_secs"], "86400");
}

#[test]
fn quota_errors_beyond_the_retry_budget_fail_retryable() {
    let out = FakeHost::handler(|req| {
        if req.body.as_deref().unwrap_or("").contains("FROM customer") {
            return Reply::json(200, &plugin_api::serde_json::from_str(CUSTOMER).unwrap());
        }
        quota_reply("1s")
    })
    .run::<GoogleAds>(open_read(
        "gads",
        "http://fake",
        json!({ "customer_id": "1234567890", "max_quota_retries": 2 }),
        window(),
    ));
    let err = out.result.clone().unwrap_err();
    assert_eq!(err.kind, ErrorKind::RateLimited);
    assert!(err.retryable);
    assert_eq!(waits(&out), [1, 1]);
    assert!(out.checkpoints.is_empty());
}

#[test]
fn an_error_inside_the_stream_is_not_taken_for_data() {
    let out = FakeHost::handler(|req| {
        if req.body.as_deref().unwrap_or("").contains("FROM customer") {
            return Reply::json(200, &plugin_api::serde_json::from_str(CUSTOMER).unwrap());
        }
        Reply::json(
            200,
            &json!([{ "results": [], "requestId": "r" },
                    { "error": { "code": 400, "status": "INVALID_ARGUMENT", "message": "bad query",
                       "details": [{"errors": [{"errorCode": {"queryError": "BAD_FIELD_NAME"}}]}] } }]),
        )
    })
    .run::<GoogleAds>(open_read("gads", "http://fake", settings(), window()));
    let err = out.result.clone().unwrap_err();
    assert_eq!(err.kind, ErrorKind::Upstream);
    assert!(err.message.contains("BAD_FIELD_NAME"), "{}", err.message);
    assert!(out.committed.is_empty());
}

#[test]
fn a_malformed_row_names_stream_request_row_and_field_and_commits_nothing_past_it() {
    let out = FakeHost::handler(|req| {
        let body = req.body.as_deref().unwrap_or("");
        if body.contains("FROM customer") {
            return Reply::json(200, &plugin_api::serde_json::from_str(CUSTOMER).unwrap());
        }
        let cost = if body.contains("'2026-11-02'") { "12x" } else { "5" };
        Reply::json(
            200,
            &json!([{ "results": [{ "segments": {"date": if cost == "5" {"2026-11-01"} else {"2026-11-02"}},
               "campaign": {"id": "7", "name": "C"}, "adGroup": {"id": "8", "name": "G"},
               "metrics": {"costMicros": cost} }] }]),
        )
    })
    .run::<GoogleAds>(open_read("gads", "http://fake", settings(), window()));
    let err = out.result.clone().unwrap_err();
    assert_eq!(err.kind, ErrorKind::BadResponse);
    for part in [
        "stream `spend`",
        "request 2",
        "row 1",
        "campaign 7",
        "field `metrics.costMicros`",
    ] {
        assert!(err.message.contains(part), "{part}: {}", err.message);
    }
    assert_eq!(out.checkpoints.len(), 1);
    assert_eq!(out.checkpoints[0].state["done_through"], "2026-11-01");
    assert!(out.uncommitted.is_empty());
}

#[test]
fn a_refused_developer_token_is_an_auth_error_naming_the_setting() {
    let out = FakeHost::handler(|_| {
        Reply::json(
            401,
            &json!({"error": {"code": 401, "status": "UNAUTHENTICATED", "message": "The developer token is not valid.",
                "details": [{"errors": [{"errorCode": {"authenticationError": "DEVELOPER_TOKEN_INVALID"}}]}]}}),
        )
    })
    .run::<GoogleAds>(open_check("gads", "http://fake", settings()));
    let err = out.result.clone().unwrap_err();
    assert_eq!(err.kind, ErrorKind::Auth);
    assert!(err.message.contains("connector `gads`"), "{}", err.message);
    assert!(err.message.contains("`developer_token`"), "{}", err.message);
}

#[test]
fn a_bad_customer_id_is_a_config_error_naming_the_setting() {
    let out = FakeHost::handler(|_| Reply::json(500, &json!({}))).run::<GoogleAds>(open_check(
        "gads",
        "http://fake",
        json!({"customer_id": "12a"}),
    ));
    let err = out.result.clone().unwrap_err();
    assert_eq!(err.kind, ErrorKind::Config);
    assert!(err.message.contains("`customer_id`"), "{}", err.message);
    assert!(out.requests.is_empty());
}

#[test]
fn manifest_declares_oauth_plus_developer_token() {
    let m = GoogleAds::manifest();
    assert_eq!(m.id, "google_ads");
    // Google's default conversion window is 30 days (QA20 F5: it was 14, so
    // conversions of days 15-30 back were never re-read).
    assert_eq!(m.streams[0].default_lookback_days, 30);
    let Some(AuthSpec::All { schemes }) = &m.auth else {
        panic!("{:?}", m.auth)
    };
    assert!(matches!(schemes[0], AuthSpec::Oauth2RefreshToken { .. }));
    assert!(
        matches!(&schemes[1], AuthSpec::Header { name, value } if name == "developer-token" && value == "developer_token")
    );
}

#[test]
fn manifest_snapshot() {
    insta::assert_json_snapshot!(GoogleAds::manifest());
}

#[test]
fn a_finished_window_is_pulled_whole_again_by_the_next_session() {
    let mut open = open_read("gads", "http://fake", settings(), window());
    open.checkpoints.insert(
        SPEND.into(),
        Checkpoint {
            stream: SPEND.into(),
            watermark: day("2026-11-03").and_hms_opt(0, 0, 0).unwrap().and_utc(),
            state: json!({ "window": "2026-11-01..2026-11-02", "done_through": "2026-11-02", "complete": true }), covers: None,
        },
    );
    let out = FakeHost::handler(|req| {
        if req.body.as_deref().unwrap_or("").contains("FROM customer") {
            return Reply::json(200, &plugin_api::serde_json::from_str(CUSTOMER).unwrap());
        }
        Reply::json(200, &json!([{ "results": [], "requestId": "r" }]))
    })
    .run::<GoogleAds>(open);
    out.result.as_ref().unwrap();
    // Customer query plus both days (each by ad group and Performance Max):
    // restatements are picked up.
    assert_eq!(out.requests.len(), 5);
    // The watermark does not move backwards.
    assert!(out
        .checkpoints
        .iter()
        .all(|c| c.watermark.to_rfc3339() == "2026-11-03T00:00:00+00:00"));
    assert_eq!(out.checkpoints[1].state["complete"], true);
}

/// QA37 R-L4: an id sent as a JSON number is the id it names, `8.0` the
/// same as `"8"` (a float id had split a spend row in two); a fraction or
/// an exponent is a bad answer naming the field.
#[test]
fn ids_sent_as_numbers_are_the_same_ids_and_fractions_are_refused() {
    let run = |campaign: Value, ad_group: Value| {
        FakeHost::handler(move |req| {
            let body = req.body.as_deref().unwrap_or("");
            if body.contains("FROM customer") {
                return Reply::json(200, &plugin_api::serde_json::from_str(CUSTOMER).unwrap());
            }
            let date = if body.contains("'2026-11-02'") {
                "2026-11-02"
            } else {
                "2026-11-01"
            };
            Reply::json(
                200,
                &json!([{ "results": [{ "segments": {"date": date},
                   "campaign": {"id": campaign, "name": "C"}, "adGroup": {"id": ad_group, "name": "G"},
                   "metrics": {"costMicros": "5000000"} }] }]),
            )
        })
        .run::<GoogleAds>(open_read("gads", "http://fake", settings(), window()))
    };
    for (campaign, ad_group) in [
        (json!("7"), json!("8")),
        (json!(7), json!(8)),
        (json!(7.0), json!(8.00)),
    ] {
        let out = run(campaign.clone(), ad_group.clone());
        out.result.as_ref().unwrap();
        // The Performance Max query gets the same rows: campaign level.
        let keys: std::collections::BTreeSet<_> = out
            .committed
            .iter()
            .map(|r| {
                let s = spend(r);
                (s.campaign_id.clone(), s.ad_group_id.clone())
            })
            .collect();
        assert_eq!(
            keys,
            [
                ("7".to_owned(), None),
                ("7".to_owned(), Some("8".to_owned()))
            ]
            .into(),
            "{campaign} {ad_group}"
        );
    }
    for (ad_group, why) in [
        (json!(8.5), "has a fraction"),
        (json!(8e20), "has an exponent"),
    ] {
        let out = run(json!("7"), ad_group);
        let err = out.result.clone().unwrap_err();
        assert_eq!(err.kind, ErrorKind::BadResponse);
        assert!(
            err.message.contains("field `adGroup.id`") && err.message.contains(why),
            "{}",
            err.message
        );
    }
}
