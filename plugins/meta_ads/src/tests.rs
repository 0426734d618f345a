//! Recorded-exchange tests: the fake host replays `fixtures/*.json` or answers
//! from a closure.

use super::*;
use plugin_api::chrono::NaiveDate;
use plugin_api::protocol::HttpRequest;
use plugin_api::rust_decimal::Decimal;
use plugin_api::testing::{open_check, open_read, Cassette, FakeHost, Reply};
use plugin_api::{Channel, Spend};
use std::collections::BTreeMap;
use std::str::FromStr;

fn day(s: &str) -> NaiveDate {
    NaiveDate::parse_from_str(s, "%Y-%m-%d").unwrap()
}

fn window(from: &str, to: &str) -> Window {
    Window {
        from: day(from),
        to: day(to),
    }
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

fn account_reply() -> Reply {
    Reply::json(
        200,
        &json!({"account_id": "42", "currency": "EUR", "timezone_name": "Europe/Paris", "id": "act_42"}),
    )
}

fn row(d: &str, campaign: &str, spend: &str) -> Value {
    json!({"campaign_id": campaign, "campaign_name": "C", "adset_id": "9", "adset_name": "S",
           "impressions": "10", "clicks": "1", "spend": spend, "date_start": d, "date_stop": d})
}

fn query(req: &HttpRequest, key: &str) -> Option<String> {
    param(req.url.split_once('?')?.1, key)
}

/// A parameter of a query string or form body, decoded.
fn param(q: &str, key: &str) -> Option<String> {
    q.split('&').find_map(|kv| {
        let (k, v) = kv.split_once('=')?;
        (k == key).then(|| {
            // Decode %XX (enough for tests).
            let b = v.as_bytes();
            let mut out = Vec::new();
            let mut i = 0;
            while i < b.len() {
                if b[i] == b'%' && i + 2 < b.len() + 1 {
                    out.push(u8::from_str_radix(&v[i + 1..i + 3], 16).unwrap());
                    i += 3;
                } else {
                    out.push(b[i]);
                    i += 1;
                }
            }
            String::from_utf8(out).unwrap()
        })
    })
}

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
fn reads_two_pages_by_cursor_and_counts_one_purchase_type() {
    let cassette = Cassette::from_json(include_str!("../fixtures/sync_two_pages.json")).unwrap();
    let out = FakeHost::replay(cassette).run::<MetaAds>(open_read(
        "meta",
        "http://fake",
        json!({ "ad_account_id": "act_42", "page_size": 2 }),
        window("2026-11-01", "2026-11-02"),
    ));
    out.result.as_ref().unwrap();
    assert_eq!(out.committed.len(), 3);
    let first = spend(&out.committed[0]);
    assert_eq!(first.account_id, "42");
    assert_eq!(first.timezone, "America/Los_Angeles");
    assert_eq!(first.channel, Channel::Social);
    assert_eq!((first.impressions, first.clicks), (91839, 1204));
    assert_eq!(first.spend.amount, dec("1234.56"));
    assert_eq!(first.spend.currency, "USD");
    // omni_purchase only: not 7 + 7 + 8.
    assert_eq!(first.platform_conversions, Some(dec("8")));
    assert_eq!(
        first.platform_conversion_value.as_ref().unwrap().amount,
        dec("401.25")
    );
    // No actions at all: zero conversions, not missing.
    assert_eq!(
        spend(&out.committed[1]).platform_conversions,
        Some(Decimal::ZERO)
    );
    assert_eq!(spend(&out.committed[2]).spend.amount, dec("0.07"));
    // One commit per page; the last finishes the window.
    assert_eq!(out.checkpoints.len(), 2);
    assert_eq!(out.checkpoints[0].state["done_through"], Value::Null);
    assert_eq!(out.checkpoints[1].state["done_through"], "2026-11-02");
    // The `next` URL (with its token) is never requested verbatim.
    assert!(out.requests.iter().all(|r| !r.url.contains("SECRET")));
}

#[test]
fn long_windows_use_async_report_runs_polled_until_complete() {
    let mut polls = 0;
    let out = FakeHost::handler(move |req| {
        let path = req.url.split('?').next().unwrap().to_owned();
        match (req.method.as_str(), path.as_str()) {
            ("GET", "http://fake/v22.0/act_42") => account_reply(),
            ("POST", "http://fake/v22.0/act_42/insights") => {
                let body = req.body.as_deref().unwrap();
                assert!(body.contains("time_increment=1"), "{body}");
                assert!(body.contains("level=adset"), "{body}");
                Reply::json(200, &json!({"report_run_id": "6001"}))
            }
            ("GET", "http://fake/v22.0/6001") => {
                polls += 1;
                let (s, p) = match polls {
                    1 => ("Job Not Started", 0),
                    2 => ("Job Running", 40),
                    _ => ("Job Completed", 100),
                };
                Reply::json(200, &json!({"id": "6001", "async_status": s, "async_percent_completion": p}))
            }
            ("GET", "http://fake/v22.0/6001/insights") => Reply::json(
                200,
                &json!({"data": [row("2026-11-03", "1", "5.5")], "paging": {"cursors": {"before": "a", "after": "b"}}}),
            ),
            other => panic!("unexpected {other:?}"),
        }
    })
    .run::<MetaAds>(open_read(
        "meta",
        "http://fake",
        json!({ "ad_account_id": "42", "days_per_request": 30, "poll_interval_secs": 10 }),
        window("2026-11-01", "2026-11-10"),
    ));
    out.result.as_ref().unwrap();
    assert_eq!(out.committed.len(), 1);
    assert_eq!(spend(&out.committed[0]).spend.currency, "EUR");
    assert_eq!(spend(&out.committed[0]).timezone, "Europe/Paris");
    // Two waits between three polls, 10 s apart on the host's clock.
    assert_eq!(waits(&out), [10, 10]);
    // QA: each wait is logged, naming the run and how far it is.
    let waiting: Vec<String> = out
        .logs
        .iter()
        .filter(|l| l.message == "waiting for report run")
        .map(|l| {
            assert_eq!(l.level, plugin_api::protocol::LogLevel::Info);
            assert_eq!(l.fields["report_run"], "6001");
            assert_eq!(l.fields["days"], "2026-11-01..2026-11-10");
            format!("{} {}", l.fields["status"], l.fields["percent_complete"])
        })
        .collect();
    assert_eq!(waiting, ["Job Not Started 0", "Job Running 40"]);
}

/// Soak QA31-D M1: a report run Meta no longer knows (expired, purged) was
/// called an unknown ad account, a config error not retried.
#[test]
fn a_report_run_that_vanished_is_retried_not_blamed_on_the_account() {
    let out = FakeHost::handler(move |req| {
        let path = req.url.split('?').next().unwrap().to_owned();
        match (req.method.as_str(), path.as_str()) {
            ("GET", "http://fake/v22.0/act_42") => account_reply(),
            ("POST", "http://fake/v22.0/act_42/insights") => {
                Reply::json(200, &json!({"report_run_id": "6001"}))
            }
            ("GET", "http://fake/v22.0/6001") => Reply::json(
                400,
                &json!({"error": {"message": "Unsupported get request. Object with ID '6001' does not exist.",
                    "type": "GraphMethodException", "code": 100, "error_subcode": 33}}),
            ),
            other => panic!("unexpected {other:?}"),
        }
    })
    .run::<MetaAds>(open_read(
        "meta",
        "http://fake",
        json!({ "ad_account_id": "42", "days_per_request": 30, "poll_interval_secs": 10 }),
        window("2026-11-01", "2026-11-10"),
    ));
    let e = out.result.unwrap_err();
    assert!(e.retryable, "{e:?}");
    assert!(
        e.message
            .contains("report run 6001 no longer exists at Meta (expired, or purged)"),
        "{}",
        e.message
    );
    assert!(
        e.message.contains("the next run starts a new one"),
        "{}",
        e.message
    );
    // The account lookup's own "does not exist" stays a config error.
    let out = FakeHost::handler(move |_| {
        Reply::json(
            400,
            &json!({"error": {"message": "Object with ID 'act_42' does not exist.",
                "code": 100, "error_subcode": 33}}),
        )
    })
    .run::<MetaAds>(open_read(
        "meta",
        "http://fake",
        json!({ "ad_account_id": "42" }),
        window("2026-11-01", "2026-11-10"),
    ));
    let e = out.result.unwrap_err();
    assert!(
        !e.retryable && e.message.contains("check setting `ad_account_id`"),
        "{e:?}"
    );
}

#[test]
fn a_failed_report_run_is_split_in_halves() {
    let mut runs: BTreeMap<String, String> = BTreeMap::new();
    let out = FakeHost::handler(move |req| {
        let path = req.url.split('?').next().unwrap().to_owned();
        if path.ends_with("/act_42") {
            return account_reply();
        }
        if req.method == "POST" {
            let body = req.body.clone().unwrap();
            let id = format!("r{}", runs.len() + 1);
            runs.insert(id.clone(), body);
            return Reply::json(200, &json!({"report_run_id": id}));
        }
        let id = path
            .rsplit('/')
            .find(|s| s.starts_with('r'))
            .unwrap()
            .to_owned();
        if path.ends_with("/insights") {
            return Reply::json(200, &json!({"data": [], "paging": {}}));
        }
        // The first (4-day) run fails; the halves succeed.
        let status = if id == "r1" {
            "Job Failed"
        } else {
            "Job Completed"
        };
        Reply::json(
            200,
            &json!({"async_status": status, "async_percent_completion": 100}),
        )
    })
    .run::<MetaAds>(open_read(
        "meta",
        "http://fake",
        json!({ "ad_account_id": "42", "report_mode": "async", "days_per_request": 4 }),
        window("2026-11-01", "2026-11-04"),
    ));
    out.result.as_ref().unwrap();
    let posts: Vec<_> = out.requests.iter().filter(|r| r.method == "POST").collect();
    assert_eq!(posts.len(), 3);
    let ranges: Vec<String> = out
        .checkpoints
        .iter()
        .map(|c| c.state["done_through"].as_str().unwrap().to_owned())
        .collect();
    assert_eq!(ranges, ["2026-11-02", "2026-11-04"]);
}

#[test]
fn throttling_errors_back_off_and_high_usage_slows_down() {
    let mut calls = 0;
    let out = FakeHost::handler(move |req| {
        calls += 1;
        if req.url.contains("/act_42?") {
            return account_reply();
        }
        match calls {
            2 => Reply::json(
                400,
                &json!({"error": {"message": "(#80000) There have been too many calls from this ad-account.",
                    "type": "OAuthException", "code": 80000, "error_subcode": 2446079, "fbtrace_id": "t"}}),
            ),
            _ => {
                let mut r = Reply::json(
                    200,
                    &json!({"data": [row("2026-11-01", "1", "1.00")], "paging": {"cursors": {"after": "x"}}}),
                );
                r.headers.insert(
                    "x-fb-ads-insights-throttle".into(),
                    r#"{"app_id_util_pct": 90, "acc_id_util_pct": 20}"#.into(),
                );
                r
            }
        }
    })
    .run::<MetaAds>(open_read(
        "meta",
        "http://fake",
        json!({ "ad_account_id": "42", "report_mode": "sync", "throttle_backoff_secs": 5,
                "slow_down_at_pct": 80, "max_pause_secs": 100 }),
        window("2026-11-01", "2026-11-01"),
    ));
    out.result.as_ref().unwrap();
    assert_eq!(out.committed.len(), 1);
    // 5 s back-off after the error, then a 50 s pause at 90 % usage.
    assert_eq!(waits(&out), [5, 50]);
}

#[test]
fn throttling_beyond_the_retry_budget_fails_retryable_with_nothing_committed() {
    let out = FakeHost::handler(|req| {
        if req.url.contains("/act_42?") {
            return account_reply();
        }
        Reply::json(
            400,
            &json!({"error": {"message": "(#17) User request limit reached", "type": "OAuthException",
                "code": 17, "error_subcode": 2446079, "is_transient": true, "fbtrace_id": "t"}}),
        )
    })
    .run::<MetaAds>(open_read(
        "meta",
        "http://fake",
        json!({ "ad_account_id": "42", "report_mode": "sync", "max_throttle_retries": 2, "throttle_backoff_secs": 1 }),
        window("2026-11-01", "2026-11-01"),
    ));
    let err = out.result.clone().unwrap_err();
    assert_eq!(err.kind, ErrorKind::RateLimited);
    assert!(err.retryable);
    assert_eq!(waits(&out), [1, 2]);
    assert!(out.checkpoints.is_empty());
}

#[test]
fn a_malformed_page_names_stream_page_row_and_field_and_is_not_committed() {
    let out = FakeHost::handler(|req| {
        if req.url.contains("/act_42?") {
            return account_reply();
        }
        match query(req, "after").as_deref() {
            None => Reply::json(
                200,
                &json!({"data": [row("2026-11-01", "1", "1.00")], "paging": {"cursors": {"after": "p2"}, "next": "http://x"}}),
            ),
            Some(_) => Reply::json(
                200,
                &json!({"data": [row("2026-11-01", "1", "1.00"), row("2026-11-01", "77", "1,5")], "paging": {}}),
            ),
        }
    })
    .run::<MetaAds>(open_read(
        "meta",
        "http://fake",
        json!({ "ad_account_id": "42", "report_mode": "sync" }),
        window("2026-11-01", "2026-11-01"),
    ));
    let err = out.result.clone().unwrap_err();
    assert_eq!(err.kind, ErrorKind::BadResponse);
    for part in [
        "stream `spend`",
        "page 2",
        "row 2",
        "campaign 77",
        "field `spend`",
    ] {
        assert!(err.message.contains(part), "{part}: {}", err.message);
    }
    // Page 1 was committed, but no day was finished.
    assert_eq!(out.checkpoints.len(), 1);
    assert_eq!(out.checkpoints[0].state["done_through"], Value::Null);
    assert!(out.uncommitted.is_empty());
}

#[test]
fn an_invalid_token_is_an_auth_error_naming_connector_and_setting() {
    let out = FakeHost::handler(|_| {
        Reply::json(
            400,
            &json!({"error": {"message": "Invalid OAuth access token - Cannot parse access token",
                "type": "OAuthException", "code": 190, "fbtrace_id": "t"}}),
        )
    })
    .run::<MetaAds>(open_check(
        "meta",
        "http://fake",
        json!({ "ad_account_id": "42" }),
    ));
    let err = out.result.clone().unwrap_err();
    assert_eq!(err.kind, ErrorKind::Auth);
    assert!(err.message.contains("connector `meta`"), "{}", err.message);
    assert!(err.message.contains("`access_token`"), "{}", err.message);
}

#[test]
fn sync_requests_carry_time_range_and_daily_increment() {
    let out = FakeHost::handler(|req| {
        if req.url.contains("/act_42?") {
            return account_reply();
        }
        assert_eq!(
            query(req, "time_range").as_deref(),
            Some(r#"{"since":"2026-11-01","until":"2026-11-01"}"#)
        );
        assert_eq!(query(req, "time_increment").as_deref(), Some("1"));
        assert_eq!(
            query(req, "action_attribution_windows").as_deref(),
            Some(r#"["7d_click","1d_view"]"#)
        );
        // QA20 F1: every ad set status, or Meta leaves archived and deleted
        // ad sets out (and the host zeroes their stored spend).
        assert_eq!(
            query(req, "filtering").as_deref(),
            Some(
                r#"[{"field":"adset.effective_status","operator":"IN","value":["ACTIVE","PAUSED","DELETED","CAMPAIGN_PAUSED","ARCHIVED","IN_PROCESS","WITH_ISSUES"]}]"#
            )
        );
        assert!(query(req, "access_token").is_none());
        Reply::json(200, &json!({"data": [], "paging": {}}))
    })
    .run::<MetaAds>(open_read(
        "meta",
        "http://fake",
        json!({ "ad_account_id": "42", "action_attribution_windows": ["7d_click", "1d_view"] }),
        window("2026-11-01", "2026-11-01"),
    ));
    out.result.as_ref().unwrap();
}

#[test]
fn manifest_is_an_ad_network_with_a_28_day_lookback() {
    let m = MetaAds::manifest();
    assert_eq!(m.id, "meta_ads");
    assert_eq!(m.streams[0].default_lookback_days, 28);
    assert!(matches!(m.auth, Some(AuthSpec::Query { .. })));
}

#[test]
fn manifest_snapshot() {
    insta::assert_json_snapshot!(MetaAds::manifest());
}

#[test]
fn a_next_link_without_a_cursor_or_a_repeated_cursor_is_an_error_not_a_silent_stop_or_a_loop() {
    for paging in [
        json!({"next": "http://x"}),
        json!({"cursors": {"after": "same"}, "next": "http://x"}),
    ] {
        let p = paging.clone();
        let out = FakeHost::handler(move |req| {
            if req.url.contains("/act_42?") {
                return account_reply();
            }
            Reply::json(
                200,
                &json!({"data": [row("2026-11-01", "1", "1.00")], "paging": p}),
            )
        })
        .run::<MetaAds>(open_read(
            "meta",
            "http://fake",
            json!({ "ad_account_id": "42", "report_mode": "sync" }),
            window("2026-11-01", "2026-11-01"),
        ));
        let err = out.result.clone().unwrap_err();
        assert_eq!(err.kind, ErrorKind::BadResponse, "{paging}");
        assert!(
            err.message.contains("paging.cursors.after"),
            "{}",
            err.message
        );
        assert!(
            out.requests.len() <= 3,
            "{paging}: {} requests",
            out.requests.len()
        );
    }
}

/// QA6 F6 (found on Impact, checked here): a 200 answer without `data` was
/// read as an empty page, so the sync succeeded with nothing.
#[test]
fn a_page_without_data_is_a_bad_response_not_an_empty_page() {
    let out = FakeHost::handler(|req| {
        if req.url.contains("/act_42?") {
            return account_reply();
        }
        Reply::json(200, &json!({"status": "maintenance"}))
    })
    .run::<MetaAds>(open_read(
        "meta",
        "http://fake",
        json!({ "ad_account_id": "42", "report_mode": "sync" }),
        window("2026-11-01", "2026-11-01"),
    ));
    let err = out.result.clone().unwrap_err();
    assert_eq!(err.kind, ErrorKind::BadResponse);
    assert!(
        err.message.contains(
            "field `data` is missing (not a page of insights): {\"status\":\"maintenance\"}"
        ),
        "{}",
        err.message
    );
    assert!(out.checkpoints.is_empty());
}

/// QA20 F1: insights leave out archived and deleted objects unless the
/// request filters on their effective status. Report runs (form body) and
/// direct reads (query) both send the filter, with every documented status
/// of the level's object and nothing else (an unknown value is code 100).
#[test]
fn every_request_filters_on_all_effective_statuses_of_its_level() {
    let statuses = |filtering: &str| -> (String, Vec<String>) {
        let v: Value = plugin_api::serde_json::from_str(filtering).unwrap();
        assert_eq!(v.as_array().unwrap().len(), 1, "{v}");
        assert_eq!(v[0]["operator"], "IN");
        let values = v[0]["value"]
            .as_array()
            .unwrap()
            .iter()
            .map(|x| x.as_str().unwrap().to_owned())
            .collect();
        (v[0]["field"].as_str().unwrap().to_owned(), values)
    };
    for (level, mode, want) in [
        (
            "campaign",
            "async",
            vec![
                "ACTIVE",
                "PAUSED",
                "DELETED",
                "ARCHIVED",
                "IN_PROCESS",
                "WITH_ISSUES",
            ],
        ),
        (
            "adset",
            "async",
            vec![
                "ACTIVE",
                "PAUSED",
                "DELETED",
                "CAMPAIGN_PAUSED",
                "ARCHIVED",
                "IN_PROCESS",
                "WITH_ISSUES",
            ],
        ),
        (
            "ad",
            "sync",
            vec![
                "ACTIVE",
                "PAUSED",
                "DELETED",
                "PENDING_REVIEW",
                "DISAPPROVED",
                "PREAPPROVED",
                "PENDING_BILLING_INFO",
                "CAMPAIGN_PAUSED",
                "ARCHIVED",
                "ADSET_PAUSED",
                "IN_PROCESS",
                "WITH_ISSUES",
            ],
        ),
        (
            "ad",
            "async",
            vec![
                "ACTIVE",
                "PAUSED",
                "DELETED",
                "PENDING_REVIEW",
                "DISAPPROVED",
                "PREAPPROVED",
                "PENDING_BILLING_INFO",
                "CAMPAIGN_PAUSED",
                "ARCHIVED",
                "ADSET_PAUSED",
                "IN_PROCESS",
                "WITH_ISSUES",
            ],
        ),
    ] {
        let out = FakeHost::handler(|req| {
            let path = req.url.split('?').next().unwrap().to_owned();
            match (req.method.as_str(), path.as_str()) {
                ("GET", "http://fake/v22.0/act_42") => account_reply(),
                ("GET", "http://fake/v22.0/act_42/insights") => {
                    Reply::json(200, &json!({"data": [], "paging": {}}))
                }
                ("POST", "http://fake/v22.0/act_42/insights") => {
                    Reply::json(200, &json!({"report_run_id": "6001"}))
                }
                ("GET", "http://fake/v22.0/6001") => Reply::json(
                    200,
                    &json!({"async_status": "Job Completed", "async_percent_completion": 100}),
                ),
                ("GET", "http://fake/v22.0/6001/insights") => {
                    Reply::json(200, &json!({"data": [], "paging": {}}))
                }
                other => panic!("unexpected {other:?}"),
            }
        })
        .run::<MetaAds>(open_read(
            "meta",
            "http://fake",
            json!({ "ad_account_id": "42", "level": level, "report_mode": mode }),
            window("2026-11-01", "2026-11-02"),
        ));
        out.result.as_ref().unwrap();
        let sent: Vec<String> = out
            .requests
            .iter()
            .filter(|r| r.url.starts_with("http://fake/v22.0/act_42/insights"))
            .map(|r| match r.method.as_str() {
                "POST" => param(r.body.as_deref().unwrap(), "filtering").unwrap(),
                _ => query(r, "filtering").unwrap(),
            })
            .collect();
        assert_eq!(sent.len(), 1, "{level} {mode}");
        let (field, values) = statuses(&sent[0]);
        assert_eq!(field, format!("{level}.effective_status"));
        assert_eq!(values, want, "{level} {mode}");
    }
}

/// QA20 F7: Meta's `clicks` are all clicks (likes, expands, profile
/// clicks...); `clicks_metric = "inline_link_clicks"` asks for and stores
/// link clicks instead, like Google's and TikTok's clicks.
#[test]
fn clicks_metric_picks_the_field_asked_for_and_stored() {
    for (setting, asked, stored) in [
        (None, "clicks", 120),
        (Some("clicks"), "clicks", 120),
        (Some("inline_link_clicks"), "inline_link_clicks", 95),
    ] {
        let out = FakeHost::handler(move |req| {
            if req.url.contains("/act_42?") {
                return account_reply();
            }
            let fields = query(req, "fields").unwrap();
            let fields: Vec<&str> = fields.split(',').collect();
            assert!(fields.contains(&asked), "{fields:?}");
            let other = if asked == "clicks" {
                "inline_link_clicks"
            } else {
                "clicks"
            };
            assert!(!fields.contains(&other), "{fields:?}");
            let mut r = row("2026-11-01", "1", "1.00");
            r["clicks"] = json!("120");
            r["inline_link_clicks"] = json!("95");
            Reply::json(200, &json!({"data": [r], "paging": {}}))
        })
        .run::<MetaAds>(open_read(
            "meta",
            "http://fake",
            match setting {
                None => json!({ "ad_account_id": "42" }),
                Some(m) => json!({ "ad_account_id": "42", "clicks_metric": m }),
            },
            window("2026-11-01", "2026-11-01"),
        ));
        out.result.as_ref().unwrap();
        assert_eq!(spend(&out.committed[0]).clicks, stored, "{setting:?}");
    }
}

/// QA24: the figures of the requested attribution windows were added with
/// `+` and panicked the plugin (`Addition overflowed`) when they left
/// `Decimal`'s range; the row is now an error naming the field and window.
#[test]
fn attribution_window_figures_beyond_the_decimal_range_are_a_row_error() {
    let big = "70000000000000000000000000000";
    let mut r = row("2026-11-01", "5", "1.00");
    r["actions"] = json!([{ "action_type": "purchase", "7d_click": big, "1d_view": big }]);
    let body = json!({ "data": [r] }).to_string();
    let account = rows::Account {
        account_id: "42".into(),
        currency: "EUR".into(),
        timezone: "Europe/Paris".into(),
    };
    let windows = ["7d_click".to_owned(), "1d_view".to_owned()];
    let counted = rows::Counted {
        clicks: ClicksMetric::Clicks,
        action_type: "purchase",
        windows: &windows,
    };
    let err = rows::parse_page(body.as_bytes(), &account, Level::Adset, counted).unwrap_err();
    assert_eq!(
        err,
        "row 1 (campaign 5, adset 9): field `actions` (purchase, `1d_view`): the attribution \
         windows' figures add up beyond the amount range (about ±7.9e28)"
    );
}

/// QA35d M1 (found on TikTok, the same here): `spend` sent as `""` or
/// `"-"` was read as 0 and replaced the stored spend beside the clicks.
/// It is a bad answer naming the row and field; a left-out `spend` (a
/// row without a figure) stays 0.
#[test]
fn an_empty_or_dash_spend_is_a_bad_answer_not_zero() {
    let run = |spend: Option<&'static str>| {
        FakeHost::handler(move |req| {
            if req.url.contains("/act_42?") {
                return account_reply();
            }
            let mut r = row("2026-11-01", "77", "0");
            match spend {
                Some(s) => r["spend"] = json!(s),
                None => {
                    r.as_object_mut().unwrap().remove("spend");
                }
            }
            Reply::json(200, &json!({"data": [r], "paging": {}}))
        })
        .run::<MetaAds>(open_read(
            "meta",
            "http://fake",
            json!({ "ad_account_id": "42", "report_mode": "sync" }),
            window("2026-11-01", "2026-11-01"),
        ))
    };
    for s in ["", " ", "-"] {
        let out = run(Some(s));
        let err = out.result.clone().unwrap_err();
        assert_eq!(err.kind, ErrorKind::BadResponse);
        for part in [
            "row 1",
            "campaign 77",
            &format!("field `spend`: {s:?} is not an amount"),
        ] {
            assert!(err.message.contains(part), "{part}: {}", err.message);
        }
        assert!(out.committed.is_empty());
    }
    let out = run(None);
    out.result.as_ref().unwrap();
    assert_eq!(spend(&out.committed[0]).spend.amount, Decimal::ZERO);
    let out = run(Some("0"));
    out.result.as_ref().unwrap();
}

/// Runs a one-day sync read whose insights pages come from `page(after)`
/// (`after` the cursor asked for, `None` for the first page).
fn run_pages(
    settings: Value,
    page: impl Fn(Option<String>) -> Value + 'static,
) -> plugin_api::testing::Outcome {
    let mut settings = settings;
    settings["ad_account_id"] = json!("42");
    settings["report_mode"] = json!("sync");
    FakeHost::handler(move |req| {
        if req.url.contains("/act_42?") {
            return account_reply();
        }
        Reply::json(200, &page(query(req, "after")))
    })
    .run::<MetaAds>(open_read(
        "meta",
        "http://fake",
        settings,
        window("2026-11-01", "2026-11-01"),
    ))
}

fn bad(out: &plugin_api::testing::Outcome, parts: &[&str]) {
    let err = out.result.clone().unwrap_err();
    assert_eq!(err.kind, ErrorKind::BadResponse, "{}", err.message);
    for part in parts {
        assert!(err.message.contains(part), "{part}: {}", err.message);
    }
    // The window is never complete: the host zeroes nothing.
    assert!(out.checkpoints.iter().all(|c| c.covers.is_none()));
}

/// QA36 A-H1: a page of rows whose `paging` is renamed, or whose
/// `paging` lacks `next` but has a key Graph does not send, ended the pull
/// there (the host then zeroed the rows of the pages never asked for).
#[test]
fn a_page_of_rows_without_paging_or_with_a_renamed_next_is_a_bad_answer() {
    let two = || {
        json!([
            row("2026-11-01", "1", "1.00"),
            row("2026-11-01", "2", "2.00")
        ])
    };
    let out = run_pages(
        json!({}),
        move |_| json!({"data": two(), "pagination": {"cursors": {"after": "p1"}, "next": "http://x"}}),
    );
    bad(
        &out,
        &[
            "page 1",
            "field `paging` is missing beside 2 rows (the page has `data`, `pagination`)",
        ],
    );
    assert!(out.committed.is_empty());
    let out = run_pages(
        json!({}),
        move |_| json!({"data": two(), "paging": {"cursors": {"after": "p1"}, "next_page": "http://x"}}),
    );
    bad(&out, &["no `paging.next`, but `paging.next_page`"]);
    // A page without rows needs no `paging`: the end.
    let out = run_pages(json!({}), |_| json!({"data": []}));
    out.result.as_ref().unwrap();
    assert!(out.checkpoints.last().unwrap().covers.is_some());
}

/// QA36 A-H1: a full page without `next` is followed once more with its
/// cursor (a real last page then answers no rows); without a cursor it is
/// a bad answer. A page that is not full ends the pull as before.
#[test]
fn a_full_page_without_next_is_followed_once_more_never_taken_for_the_end() {
    let out = run_pages(json!({"page_size": 2}), |after| match after.as_deref() {
        None => json!({"data": [row("2026-11-01", "1", "1.00"), row("2026-11-01", "2", "2.00")],
                       "paging": {"cursors": {"before": "b", "after": "p1"}}}),
        Some("p1") => {
            json!({"data": [row("2026-11-01", "3", "3.00"), row("2026-11-01", "4", "4.00")],
                            "paging": {"cursors": {"before": "p1", "after": "p2"}}})
        }
        Some("p2") => json!({"data": []}),
        other => panic!("cursor {other:?}"),
    });
    out.result.as_ref().unwrap();
    assert_eq!(out.committed.len(), 4);
    assert_eq!(out.requests.len(), 4);
    assert!(out.checkpoints.last().unwrap().covers.is_some());

    let out = run_pages(
        json!({"page_size": 2}),
        |_| json!({"data": [row("2026-11-01", "1", "1.00"), row("2026-11-01", "2", "2.00")], "paging": {}}),
    );
    bad(
        &out,
        &[
            "page 1",
            "a full page (2 rows, `limit` 2) without `paging.next` or `paging.cursors.after`",
        ],
    );

    let out = run_pages(json!({"page_size": 3}), |_| {
        json!({"data": [row("2026-11-01", "1", "1.00"), row("2026-11-01", "2", "2.00")],
               "paging": {"cursors": {"before": "b", "after": "a"}}})
    });
    out.result.as_ref().unwrap();
    assert_eq!(out.requests.len(), 2);
}

/// A change made to a row.
type Edit = fn(&mut Value);

/// QA36 A-M2, A-M3, A-L1: figures sent as null, `""` or `"-"`, or with a
/// digit separator, are bad answers naming row and field, never 0; a
/// figure left out is 0 (Insights' "no figure").
#[test]
fn figures_sent_as_null_or_empty_are_bad_answers_and_left_out_ones_are_zero() {
    let one = |edit: Edit| {
        run_pages(json!({}), move |_| {
            let mut r = row("2026-11-01", "7", "10.25");
            r["actions"] = json!([{"action_type": "omni_purchase", "value": "3"}]);
            r["action_values"] = json!([{"action_type": "omni_purchase", "value": "120.5"}]);
            edit(&mut r);
            json!({"data": [r], "paging": {"cursors": {"after": "a"}}})
        })
    };
    let cases: [(Edit, &str); 8] = [
        (
            |r| r["spend"] = Value::Null,
            "field `spend` is null: expected a number such as \"12.34\"",
        ),
        (
            |r| r["impressions"] = json!(""),
            "field `impressions`: \"\" is not a count",
        ),
        (|r| r["clicks"] = Value::Null, "field `clicks` is null"),
        (
            |r| r["impressions"] = json!("-"),
            "field `impressions`: \"-\" is not a count",
        ),
        (
            |r| r["action_values"][0]["value"] = json!(""),
            "field `action_values` (omni_purchase, `value`): \"\" is not an amount",
        ),
        (
            |r| r["actions"][0]["value"] = Value::Null,
            "field `actions` (omni_purchase, `value`) is null",
        ),
        (
            |r| r["spend"] = json!("1_010.25"),
            "field `spend`: \"1_010.25\" has a digit separator",
        ),
        (
            |r| {
                r["date_start"] = json!("2026-11-01xyz");
                r["date_stop"] = json!("2026-11-01xyz");
            },
            "field `date_start`: \"2026-11-01xyz\" is not a YYYY-MM-DD date",
        ),
    ];
    for (edit, want) in cases {
        let out = one(edit);
        bad(&out, &["page 1", "row 1 (campaign 7, adset 9)", want]);
        assert!(out.committed.is_empty());
    }
    let out = one(|r| {
        let o = r.as_object_mut().unwrap();
        o.remove("spend");
        o.remove("impressions");
    });
    out.result.as_ref().unwrap();
    let s = spend(&out.committed[0]);
    assert_eq!((s.spend.amount, s.impressions), (Decimal::ZERO, 0));
    assert_eq!(s.platform_conversions, Some(dec("3")));
}

/// QA36 A-M4: with attribution windows, a counted action whose window keys
/// were renamed is a bad answer; one with only a non-zero `value` (Meta
/// leaves out a window without a figure) counts 0 with a WARN naming it.
#[test]
fn an_action_without_the_requested_windows_is_an_error_or_a_warning() {
    let windows = json!({"action_attribution_windows": ["7d_click", "1d_view"]});
    let out = run_pages(windows.clone(), |_| {
        let mut r = row("2026-11-01", "7", "1.00");
        r["actions"] = json!([{"action_type": "omni_purchase", "value": "3", "7d_click_v2": "3"}]);
        json!({"data": [r], "paging": {"cursors": {"after": "a"}}})
    });
    bad(
        &out,
        &["row 1", "field `actions` (omni_purchase): none of the requested attribution windows `7d_click`, `1d_view`, but `7d_click_v2`"],
    );
    let out = run_pages(windows.clone(), |_| {
        let mut r = row("2026-11-01", "7", "1.00");
        r["actions"] = json!([{"action_type": "omni_purchase", "value": "3"}]);
        json!({"data": [r], "paging": {"cursors": {"after": "a"}}})
    });
    out.result.as_ref().unwrap();
    assert_eq!(
        spend(&out.committed[0]).platform_conversions,
        Some(Decimal::ZERO)
    );
    let warn = out
        .logs
        .iter()
        .find(|l| l.level == plugin_api::protocol::LogLevel::Warn)
        .unwrap_or_else(|| panic!("no warning: {:?}", out.logs));
    assert!(
        warn.message
            .contains("none of the requested attribution windows"),
        "{warn:?}"
    );
    assert!(
        warn.fields["first"].contains("row 1 (campaign 7, adset 9)")
            && warn.fields["first"].contains("`actions` (omni_purchase) has `value` 3"),
        "{warn:?}"
    );
    // One window present, the other left out (no figure): read.
    let out = run_pages(windows, |_| {
        let mut r = row("2026-11-01", "7", "1.00");
        r["actions"] = json!([{"action_type": "omni_purchase", "value": "3", "7d_click": "2"}]);
        json!({"data": [r], "paging": {"cursors": {"after": "a"}}})
    });
    out.result.as_ref().unwrap();
    assert_eq!(
        spend(&out.committed[0]).platform_conversions,
        Some(dec("2"))
    );
    assert!(out
        .logs
        .iter()
        .all(|l| l.level != plugin_api::protocol::LogLevel::Warn));
}

/// QA36 A-M5: ids are the same whichever shape they come in (`77`,
/// `"77"`, `77.0`, `" 77 "`); a fraction or an exponent is refused.
#[test]
fn ids_read_the_same_in_every_shape_and_fractions_are_refused() {
    for (campaign, adset) in [
        (json!("77"), json!("9")),
        (json!(77), json!(9)),
        (json!(77.0), json!(" 9")),
        (json!(" 77 "), json!("9 ")),
    ] {
        let (c, a) = (campaign.clone(), adset.clone());
        let out = run_pages(json!({}), move |_| {
            let mut r = row("2026-11-01", "0", "1.00");
            r["campaign_id"] = c.clone();
            r["adset_id"] = a.clone();
            json!({"data": [r], "paging": {"cursors": {"after": "a"}}})
        });
        out.result.as_ref().unwrap();
        let s = spend(&out.committed[0]);
        assert_eq!(s.key(), "42/2026-11-01/77/9/-", "{campaign} {adset}");
    }
    for bad_id in [json!(77.5), json!(1e20)] {
        let out = run_pages(json!({}), move |_| {
            let mut r = row("2026-11-01", "0", "1.00");
            r["campaign_id"] = bad_id.clone();
            json!({"data": [r], "paging": {"cursors": {"after": "a"}}})
        });
        bad(
            &out,
            &[
                "row 1",
                "field `campaign_id`",
                "an id sent as a number must be a whole number",
            ],
        );
    }
}

/// QA36 A-M6: a key given again on a later page of the pull with other
/// figures is a WARN naming it (the later one is stored); an identical
/// repeat is not worth a line.
#[test]
fn a_key_repeated_on_a_later_page_with_other_figures_is_a_warning() {
    for (spend_again, warned) in [("99.99", true), ("2.00", false)] {
        let out = run_pages(json!({"page_size": 2}), move |after| {
            match after.as_deref() {
                None => {
                    json!({"data": [row("2026-11-01", "1", "1.00"), row("2026-11-01", "2", "2.00")],
                           "paging": {"cursors": {"after": "p1"}, "next": "http://x"}})
                }
                Some("p1") => json!({"data": [row("2026-11-01", "2", spend_again)],
                                "paging": {"cursors": {"after": "p2"}}}),
                other => panic!("cursor {other:?}"),
            }
        });
        out.result.as_ref().unwrap();
        let warns: Vec<_> = out
            .logs
            .iter()
            .filter(|l| l.level == plugin_api::protocol::LogLevel::Warn)
            .collect();
        assert_eq!(warns.len(), usize::from(warned), "{:?}", out.logs);
        if warned {
            assert!(warns[0].message.contains("twice with different figures"));
            assert_eq!(warns[0].fields["key"], "42/2026-11-01/2/9/-");
            assert!(warns[0].fields["page"].contains("page 2"));
        }
    }
}

/// QA36 A-M1: a report run that says `Job Completed` below 100 % is not
/// read: it is polled again (a WARN says why) and read at 100 %. Without
/// a percentage, `Job Completed` is a bad answer.
#[test]
fn a_report_run_is_read_only_once_it_says_100_percent() {
    let run = |statuses: Vec<Value>| {
        let mut polls = 0usize;
        FakeHost::handler(move |req| {
            let path = req.url.split('?').next().unwrap().to_owned();
            match (req.method.as_str(), path.as_str()) {
                ("GET", "http://fake/v22.0/act_42") => account_reply(),
                ("POST", _) => Reply::json(200, &json!({"report_run_id": "6001"})),
                ("GET", "http://fake/v22.0/6001") => {
                    polls += 1;
                    Reply::json(200, &statuses[(polls - 1).min(statuses.len() - 1)])
                }
                ("GET", "http://fake/v22.0/6001/insights") => {
                    assert!(polls >= statuses.len(), "read at poll {polls}");
                    Reply::json(200, &json!({"data": [row("2026-11-01", "1", "5.5")], "paging": {"cursors": {"after": "a"}}}))
                }
                other => panic!("unexpected {other:?}"),
            }
        })
        .run::<MetaAds>(open_read(
            "meta",
            "http://fake",
            json!({ "ad_account_id": "42", "report_mode": "async", "poll_interval_secs": 0 }),
            window("2026-11-01", "2026-11-01"),
        ))
    };
    let out = run(vec![
        json!({"async_status": "Job Completed", "async_percent_completion": 40}),
        json!({"async_status": "Job Completed", "async_percent_completion": 40}),
        json!({"async_status": "Job Completed", "async_percent_completion": 100}),
    ]);
    out.result.as_ref().unwrap();
    assert_eq!(out.committed.len(), 1);
    let warns: Vec<_> = out
        .logs
        .iter()
        .filter(|l| l.level == plugin_api::protocol::LogLevel::Warn)
        .collect();
    assert_eq!(warns.len(), 1, "{:?}", out.logs);
    assert!(warns[0].message.contains("below 100 %"), "{:?}", warns[0]);
    assert_eq!(warns[0].fields["report_run"], "6001");

    let out = run(vec![json!({"async_status": "Job Completed"})]);
    bad(
        &out,
        &[
            "report run 6001 poll 1",
            "`Job Completed` without a number in `async_percent_completion`",
        ],
    );
}

/// QA36 A-L2, A-L5: a row in another currency than the account's is a bad
/// answer (an ad account has one currency); an account `currency` of the
/// wrong type is said as such, not as missing.
#[test]
fn another_currency_is_refused_and_a_currency_of_the_wrong_type_is_named() {
    let out = run_pages(json!({}), |_| {
        let mut r = row("2026-11-01", "7", "1.00");
        r["account_currency"] = json!("USD");
        json!({"data": [r], "paging": {"cursors": {"after": "a"}}})
    });
    bad(
        &out,
        &[
            "row 1",
            "field `account_currency`: \"USD\", but the ad account's currency is EUR",
        ],
    );
    let out = run_pages(json!({}), |_| {
        let mut r = row("2026-11-01", "7", "1.00");
        r["account_currency"] = json!("eur");
        json!({"data": [r], "paging": {"cursors": {"after": "a"}}})
    });
    out.result.as_ref().unwrap();
    assert_eq!(spend(&out.committed[0]).spend.currency, "EUR");

    let out = FakeHost::handler(|_| {
        Reply::json(
            200,
            &json!({"account_id": "42", "currency": 840, "timezone_name": "Europe/Paris"}),
        )
    })
    .run::<MetaAds>(open_read(
        "meta",
        "http://fake",
        json!({ "ad_account_id": "42" }),
        window("2026-11-01", "2026-11-01"),
    ));
    let err = out.result.unwrap_err();
    assert!(
        err.message
            .contains("field `currency` is a number (840): expected a string such as \"USD\""),
        "{}",
        err.message
    );
}
