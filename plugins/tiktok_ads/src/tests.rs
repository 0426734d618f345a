//! Recorded-exchange tests: the fake host replays `fixtures/*.json` or answers
//! from a closure.

use super::*;
use plugin_api::chrono::NaiveDate;
use plugin_api::protocol::{HttpRequest, Window};
use plugin_api::rust_decimal::Decimal;
use plugin_api::serde_json::Value;
use plugin_api::testing::{open_check, open_read, Cassette, FakeHost, Reply};
use plugin_api::{Channel, Spend};
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

fn info_reply() -> Reply {
    Reply::json(
        200,
        &json!({"code": 0, "message": "OK", "request_id": "r", "data": {"list": [
            {"advertiser_id": "7001", "currency": "USD", "timezone": "America/New_York"}]}}),
    )
}

fn query(req: &HttpRequest, key: &str) -> Option<String> {
    let q = req.url.split_once('?')?.1;
    q.split('&').find_map(|kv| {
        let (k, v) = kv.split_once('=')?;
        (k == key).then(|| {
            let b = v.as_bytes();
            let mut out = Vec::new();
            let mut i = 0;
            while i < b.len() {
                if b[i] == b'%' {
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

fn page(rows: Vec<Value>, page: u64, total_page: u64) -> Reply {
    Reply::json(
        200,
        &json!({"code": 0, "message": "OK", "request_id": "r", "data": {
            "page_info": {"page": page, "page_size": 1000, "total_number": rows.len(), "total_page": total_page},
            "list": rows }}),
    )
}

fn row(d: &str, spend: &str) -> Value {
    json!({"dimensions": {"adgroup_id": "5", "stat_time_day": format!("{d} 00:00:00")},
           "metrics": {"campaign_id": "9", "campaign_name": "C", "adgroup_name": "G",
                       "spend": spend, "impressions": "10", "clicks": "1", "conversion": "-"}})
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
fn reads_two_pages_with_dashes_for_missing_metrics() {
    let cassette = Cassette::from_json(include_str!("../fixtures/two_pages.json")).unwrap();
    let out = FakeHost::replay(cassette).run::<TiktokAds>(open_read(
        "tt",
        "http://fake",
        json!({ "advertiser_id": "7001", "page_size": 2 }),
        window("2026-11-01", "2026-11-02"),
    ));
    out.result.as_ref().unwrap();
    assert_eq!(out.committed.len(), 3);
    let first = spend(&out.committed[0]);
    assert_eq!(first.account_id, "7001");
    assert_eq!(first.timezone, "Asia/Tokyo");
    assert_eq!(first.channel, Channel::Social);
    assert_eq!(first.spend.amount, dec("1250"));
    assert_eq!(first.spend.currency, "JPY");
    assert_eq!(first.campaign_id, "50");
    assert_eq!(first.ad_group_name.as_deref(), Some("AG 501"));
    assert_eq!(first.platform_conversions, Some(dec("3")));
    let dashes = spend(&out.committed[1]);
    assert_eq!((dashes.impressions, dashes.clicks), (0, 0));
    assert_eq!(dashes.spend.amount, Decimal::ZERO);
    // "-" is no figure: missing, not zero (QA20 F6).
    assert_eq!(dashes.platform_conversions, None);
    assert_eq!(out.checkpoints.len(), 2);
    assert_eq!(out.checkpoints[0].state["done_through"], Value::Null);
    assert_eq!(out.checkpoints[1].state["done_through"], "2026-11-02");
}

#[test]
fn windows_longer_than_30_days_are_split() {
    let out = FakeHost::handler(|req| {
        if req.url.contains("advertiser/info") {
            return info_reply();
        }
        let (s, e) = (
            day(&query(req, "start_date").unwrap()),
            day(&query(req, "end_date").unwrap()),
        );
        assert!((e - s).num_days() < 30, "{s}..{e}");
        page(vec![], 1, 0)
    })
    .run::<TiktokAds>(open_read(
        "tt",
        "http://fake",
        json!({ "advertiser_id": "7001" }),
        window("2026-09-01", "2026-11-15"),
    ));
    out.result.as_ref().unwrap();
    let ranges: Vec<(String, String)> = out.requests[1..]
        .iter()
        .map(|r| {
            (
                query(r, "start_date").unwrap(),
                query(r, "end_date").unwrap(),
            )
        })
        .collect();
    assert_eq!(
        ranges,
        [
            ("2026-09-01".into(), "2026-09-30".into()),
            ("2026-10-01".into(), "2026-10-30".into()),
            ("2026-10-31".into(), "2026-11-15".into())
        ]
    );
}

#[test]
fn code_40100_with_http_200_backs_off_and_retries() {
    let mut calls = 0;
    let out = FakeHost::handler(move |req| {
        calls += 1;
        if req.url.contains("advertiser/info") {
            return info_reply();
        }
        if calls == 2 || calls == 3 {
            return Reply::json(
                200,
                &json!({"code": 40100, "message": "Too many requests. Please retry in some time.", "request_id": "x", "data": {}}),
            );
        }
        page(vec![row("2026-11-01", "3.30")], 1, 1)
    })
    .run::<TiktokAds>(open_read(
        "tt",
        "http://fake",
        json!({ "advertiser_id": "7001", "rate_limit_backoff_secs": 3 }),
        window("2026-11-01", "2026-11-01"),
    ));
    out.result.as_ref().unwrap();
    assert_eq!(out.committed.len(), 1);
    assert_eq!(spend(&out.committed[0]).spend.amount, dec("3.3"));
    assert_eq!(spend(&out.committed[0]).timezone, "America/New_York");
    assert_eq!(waits(&out), [3, 6]);
}

#[test]
fn a_malformed_page_names_stream_page_row_and_field() {
    let out = FakeHost::handler(|req| {
        if req.url.contains("advertiser/info") {
            return info_reply();
        }
        match query(req, "page").as_deref() {
            Some("1") => page(vec![row("2026-11-01", "1.00")], 1, 2),
            _ => page(
                vec![row("2026-11-01", "1.00"), row("2026-11-01", "abc")],
                2,
                2,
            ),
        }
    })
    .run::<TiktokAds>(open_read(
        "tt",
        "http://fake",
        json!({ "advertiser_id": "7001" }),
        window("2026-11-01", "2026-11-01"),
    ));
    let err = out.result.clone().unwrap_err();
    assert_eq!(err.kind, ErrorKind::BadResponse);
    for part in [
        "stream `spend`",
        "page 2",
        "row 2",
        "campaign 9",
        "field `metrics.spend`",
    ] {
        assert!(err.message.contains(part), "{part}: {}", err.message);
    }
    assert_eq!(out.checkpoints.len(), 1);
    assert_eq!(out.checkpoints[0].state["done_through"], Value::Null);
}

#[test]
fn an_invalid_token_answered_with_http_200_is_an_auth_error_naming_the_setting() {
    let out = FakeHost::handler(|_| {
        Reply::json(
            200,
            &json!({"code": 40105, "message": "Access token is incorrect or has been revoked.", "request_id": "x", "data": {}}),
        )
    })
    .run::<TiktokAds>(open_check("tt", "http://fake", json!({ "advertiser_id": "7001" })));
    let err = out.result.clone().unwrap_err();
    assert_eq!(err.kind, ErrorKind::Auth);
    assert!(err.message.contains("connector `tt`"), "{}", err.message);
    assert!(err.message.contains("`access_token`"), "{}", err.message);
}

#[test]
fn value_metric_and_ad_level_ids_are_read_from_metrics() {
    let out = FakeHost::handler(|req| {
        if req.url.contains("advertiser/info") {
            return info_reply();
        }
        assert_eq!(query(req, "data_level").as_deref(), Some("AUCTION_AD"));
        assert_eq!(
            query(req, "metrics").as_deref(),
            Some(r#"["campaign_id","campaign_name","adgroup_id","adgroup_name","ad_name","spend","impressions","clicks","conversion","total_complete_payment_rate"]"#)
        );
        page(
            vec![json!({"dimensions": {"ad_id": "77", "stat_time_day": "2026-11-01 00:00:00"},
                "metrics": {"campaign_id": "9", "campaign_name": "C", "adgroup_id": "5", "adgroup_name": "G",
                            "ad_name": "A", "spend": "2.5", "impressions": "3", "clicks": "2",
                            "conversion": "2", "total_complete_payment_rate": "59.80"}})],
            1,
            1,
        )
    })
    .run::<TiktokAds>(open_read(
        "tt",
        "http://fake",
        json!({ "advertiser_id": "7001", "level": "ad", "conversion_value_metric": "total_complete_payment_rate" }),
        window("2026-11-01", "2026-11-01"),
    ));
    out.result.as_ref().unwrap();
    let s = spend(&out.committed[0]);
    assert_eq!(s.ad_id.as_deref(), Some("77"));
    assert_eq!(s.ad_group_id.as_deref(), Some("5"));
    assert_eq!(
        s.platform_conversion_value.as_ref().unwrap().amount,
        dec("59.8")
    );
}

/// QA20 F6: TikTok's `"-"` (no figure) was stored as 0 in the optional
/// fields, so "unknown" read as "zero". Now they are missing; the fields
/// `Spend` does not make optional (spend, impressions, clicks) stay 0.
#[test]
fn a_dash_is_missing_in_optional_fields_and_zero_in_the_others() {
    let out = FakeHost::handler(|req| {
        if req.url.contains("advertiser/info") {
            return info_reply();
        }
        page(
            vec![
                json!({"dimensions": {"adgroup_id": "5", "stat_time_day": "2026-11-01 00:00:00"},
                    "metrics": {"campaign_id": "9", "campaign_name": "C", "adgroup_name": "G",
                                "spend": "-", "impressions": "-", "clicks": "-",
                                "conversion": "-", "total_complete_payment_rate": "-"}}),
                json!({"dimensions": {"adgroup_id": "6", "stat_time_day": "2026-11-01 00:00:00"},
                    "metrics": {"campaign_id": "9", "campaign_name": "C", "adgroup_name": "H",
                                "spend": "1.5", "impressions": "4", "clicks": "1",
                                "conversion": "0", "total_complete_payment_rate": "0.00"}}),
            ],
            1,
            1,
        )
    })
    .run::<TiktokAds>(open_read(
        "tt",
        "http://fake",
        json!({ "advertiser_id": "7001", "conversion_value_metric": "total_complete_payment_rate" }),
        window("2026-11-01", "2026-11-01"),
    ));
    out.result.as_ref().unwrap();
    let dashes = spend(&out.committed[0]);
    assert_eq!(dashes.platform_conversions, None);
    assert_eq!(dashes.platform_conversion_value, None);
    assert_eq!(dashes.spend.amount, Decimal::ZERO);
    assert_eq!(dashes.spend.currency, "USD");
    assert_eq!((dashes.impressions, dashes.clicks), (0, 0));
    // A real zero stays zero.
    let zeros = spend(&out.committed[1]);
    assert_eq!(zeros.platform_conversions, Some(Decimal::ZERO));
    assert_eq!(
        zeros.platform_conversion_value.as_ref().unwrap().amount,
        Decimal::ZERO
    );
}

#[test]
fn manifest_uses_the_access_token_header_and_a_3_day_lookback() {
    let m = TiktokAds::manifest();
    assert_eq!(m.id, "tiktok_ads");
    assert_eq!(m.streams[0].default_lookback_days, 3);
    assert!(
        matches!(&m.auth, Some(AuthSpec::Header { name, value }) if name == "Access-Token" && value == "access_token")
    );
}

#[test]
fn manifest_snapshot() {
    insta::assert_json_snapshot!(TiktokAds::manifest());
}

/// Bodies went into errors as they came (newlines and all), a 4xx printed
/// its code as `Some(..)`/`None`, and a gateway's non-JSON 504 said nothing
/// but its status; now the envelope's message, else the body's start, is
/// `sdk::body_suffix`'s one trimmed line.
#[test]
fn http_errors_quote_the_message_or_the_body_on_one_line() {
    use api::{verdict, Verdict};
    let resp = |status: u16, body: &str| Response {
        status,
        headers: Default::default(),
        body: body.as_bytes().to_vec(),
    };
    let html = "\n<html>\n  <p>gateway\r\n timeout</p>\n</html>\n";
    assert_eq!(
        verdict("tt", &resp(504, html)),
        Verdict::Retry(
            ErrorKind::Upstream,
            "HTTP 504: <html> <p>gateway timeout</p> </html>".into()
        )
    );
    assert_eq!(
        verdict(
            "tt",
            &resp(429, r#"{"code": 40100, "message": "Too many\nrequests"}"#)
        ),
        Verdict::Retry(ErrorKind::RateLimited, "HTTP 429: Too many requests".into())
    );
    assert_eq!(
        verdict("tt", &resp(503, "")),
        Verdict::Retry(ErrorKind::Upstream, "HTTP 503".into())
    );
    match verdict("tt", &resp(404, "")) {
        Verdict::Fatal(e) => assert_eq!(
            e.message,
            "connector `tt`: TikTok rejected the request (HTTP 404)"
        ),
        other => panic!("{other:?}"),
    }
    match verdict("tt", &resp(400, r#"{"code": 40002, "message": "bad\n"}"#)) {
        Verdict::Fatal(e) => assert_eq!(
            e.message,
            "connector `tt`: TikTok rejected the request (HTTP 400, code 40002): bad"
        ),
        other => panic!("{other:?}"),
    }
    match verdict("tt", &resp(200, "<html>\n maintenance \n</html>")) {
        Verdict::Fatal(e) => {
            assert_eq!(e.kind, ErrorKind::BadResponse);
            assert_eq!(
                e.message,
                "connector `tt`: TikTok answered without a numeric `code`: <html> maintenance </html>"
            );
        }
        other => panic!("{other:?}"),
    }
}

/// QA25 N4: an empty page did not stop the paging while
/// `page_info.total_page` said more remain (10^18 pages: 13,029 requests in
/// 15 s); the answer's `page_info.page` was not compared with the request.
#[test]
fn an_empty_page_before_total_page_or_an_answer_for_another_page_is_a_bad_response() {
    let run = |reply: fn(u64) -> Reply| {
        FakeHost::handler(move |req| {
            if req.url.contains("advertiser/info") {
                return info_reply();
            }
            reply(query(req, "page").unwrap().parse().unwrap())
        })
        .run::<TiktokAds>(open_read(
            "tt",
            "http://fake",
            json!({ "advertiser_id": "7001" }),
            window("2026-11-01", "2026-11-01"),
        ))
    };
    let out = run(|p| {
        let rows = if p == 1 {
            vec![row("2026-11-01", "1")]
        } else {
            vec![]
        };
        page(rows, p, 1_000_000_000_000_000_000)
    });
    let e = out.result.unwrap_err();
    assert_eq!(e.kind, ErrorKind::BadResponse);
    assert!(
        e.message.contains(
            "stream `spend` days 2026-11-01..2026-11-01 page 2: no rows, yet data.page_info.total_page is 1000000000000000000"
        ),
        "{}",
        e.message
    );
    assert_eq!(out.committed.len(), 1, "page 1 stays committed");

    let out = run(|_| page(vec![row("2026-11-01", "1")], 1, 3));
    let e = out.result.unwrap_err();
    assert_eq!(e.kind, ErrorKind::BadResponse);
    assert!(
        e.message
            .contains("page 2: data.page_info.page is 1, not the page requested (2)"),
        "{}",
        e.message
    );
    assert_eq!(out.requests.len(), 3, "advertiser info, page 1, page 2");
    // The last page of a report still ends it (see
    // `reads_two_pages_with_dashes_for_missing_metrics`), as does an empty
    // report (total_page 0).
    run(|p| page(vec![], p, 0)).result.unwrap();
}

/// QA35d M1: `""` in `spend` was stored as 0 beside the clicks. `"-"` is
/// TikTok's only "no figure"; `""`, null or a metric left out that was
/// asked for is a bad answer naming the row and field, in every metric.
#[test]
fn an_empty_null_or_left_out_metric_is_a_bad_answer_naming_the_field() {
    let run = |field: &'static str, value: Option<Value>| {
        FakeHost::handler(move |req| {
            if req.url.contains("advertiser/info") {
                return info_reply();
            }
            let mut r = row("2026-11-01", "4.20");
            r["metrics"]["total_complete_payment_rate"] = json!("9.90");
            match &value {
                Some(v) => r["metrics"][field] = v.clone(),
                None => {
                    r["metrics"].as_object_mut().unwrap().remove(field);
                }
            }
            let mut first = row("2026-11-01", "1");
            first["metrics"]["total_complete_payment_rate"] = json!("-");
            page(vec![first, r], 1, 1)
        })
        .run::<TiktokAds>(open_read(
            "tt",
            "http://fake",
            json!({ "advertiser_id": "7001", "conversion_value_metric": "total_complete_payment_rate" }),
            window("2026-11-01", "2026-11-01"),
        ))
    };
    for field in [
        "spend",
        "impressions",
        "clicks",
        "conversion",
        "total_complete_payment_rate",
    ] {
        for (value, what) in [
            (Some(json!("")), " is an empty string"),
            (Some(json!(" ")), " is an empty string"),
            (Some(Value::Null), " is null"),
            (None, " is missing: it was asked for"),
            (Some(json!("--")), r#": "--" is not a number"#),
        ] {
            let out = run(field, value.clone());
            let e = out.result.unwrap_err();
            assert_eq!(e.kind, ErrorKind::BadResponse, "{field} {value:?}");
            for part in [
                "stream `spend` days 2026-11-01..2026-11-01 page 1",
                "row 2 (campaign 9, ad group 5)",
                &format!("field `metrics.{field}`{what}"),
            ] {
                assert!(e.message.contains(part), "{part}: {}", e.message);
            }
            assert!(out.committed.is_empty(), "{field} {value:?}");
        }
    }
}

/// QA35d H2: a page whose rows moved from `data.list` to another key, or
/// an empty `data.list` while `page_info.total_number` counts rows on it,
/// was read as "no rows": the window was complete, and the host zeroed
/// every stored row of its days.
#[test]
fn a_page_without_its_list_or_with_rows_counted_but_missing_is_a_bad_answer() {
    let run = |data: Value| {
        FakeHost::handler(move |req| {
            if req.url.contains("advertiser/info") {
                return info_reply();
            }
            Reply::json(
                200,
                &json!({"code": 0, "message": "OK", "request_id": "r", "data": data.clone()}),
            )
        })
        .run::<TiktokAds>(open_read(
            "tt",
            "http://fake",
            json!({ "advertiser_id": "7001", "page_size": 2 }),
            window("2026-11-01", "2026-11-01"),
        ))
    };
    let info = json!({"page": 1, "page_size": 2, "total_number": 6, "total_page": 1});
    let out = run(json!({"page_info": info, "rows": [row("2026-11-01", "1")]}));
    let e = out.result.unwrap_err();
    assert_eq!(e.kind, ErrorKind::BadResponse);
    assert!(
        e.message.contains("page 1: field `data.list` is missing (`data` has `page_info`, `rows`, and data.page_info.total_number is 6)"),
        "{}",
        e.message
    );
    assert!(out.checkpoints.is_empty());

    let out = run(json!({"page_info": info, "list": []}));
    let e = out.result.unwrap_err();
    assert_eq!(e.kind, ErrorKind::BadResponse);
    assert!(
        e.message.contains(
            "page 1: no rows, yet data.page_info.total_number is 6 (0 on the pages before)"
        ),
        "{}",
        e.message
    );
    assert!(out.checkpoints.is_empty());

    // QA37 R-M2: a page short of what the count puts on it (2 asked, 3
    // counted, 1 sent).
    let short = json!({"page": 1, "page_size": 2, "total_number": 3, "total_page": 2});
    let out = run(json!({"page_info": short, "list": [row("2026-11-01", "1")]}));
    let e = out.result.unwrap_err();
    assert_eq!(e.kind, ErrorKind::BadResponse);
    assert!(
        e.message.contains(
            "page 1: 1 rows, but data.page_info.total_number 3 with page_size 2 puts 2 on page 1"
        ),
        "{}",
        e.message
    );
    assert!(out.checkpoints.is_empty());

    // An empty report still ends the window (total_number 0), and so does
    // a report without the count.
    for info in [
        json!({"page": 1, "page_size": 2, "total_number": 0, "total_page": 0}),
        json!({"page": 1, "page_size": 2, "total_page": 0}),
    ] {
        let out = run(json!({"page_info": info, "list": []}));
        out.result.unwrap();
        assert_eq!(out.checkpoints.len(), 1);
        assert!(out.checkpoints[0].covers.is_some());
    }
}

/// QA37 R-L4: an id sent as a JSON number is the id it names, `5.0` the
/// same as `"5"` (a float id had split a spend row in two); a fraction or
/// an exponent is a bad answer naming the field.
#[test]
fn ids_sent_as_numbers_are_the_same_ids_and_fractions_are_refused() {
    let run = |adgroup: Value, campaign: Value| {
        FakeHost::handler(move |req| {
            if req.url.contains("advertiser/info") {
                return info_reply();
            }
            let mut r = row("2026-11-01", "1.00");
            r["dimensions"]["adgroup_id"] = adgroup.clone();
            r["metrics"]["campaign_id"] = campaign.clone();
            page(vec![r], 1, 1)
        })
        .run::<TiktokAds>(open_read(
            "tt",
            "http://fake",
            json!({ "advertiser_id": "7001" }),
            window("2026-11-01", "2026-11-01"),
        ))
    };
    for (adgroup, campaign) in [
        (json!("5"), json!("9")),
        (json!(5), json!(9)),
        (json!(5.0), json!(9.00)),
    ] {
        let out = run(adgroup.clone(), campaign.clone());
        out.result.as_ref().unwrap();
        let s = spend(&out.committed[0]);
        assert_eq!(
            (s.campaign_id.as_str(), s.ad_group_id.as_deref()),
            ("9", Some("5")),
            "{adgroup} {campaign}"
        );
    }
    for (adgroup, why) in [
        (json!(5.5), "has a fraction"),
        (json!(5e20), "has an exponent"),
    ] {
        let out = run(adgroup, json!("9"));
        let err = out.result.clone().unwrap_err();
        assert_eq!(err.kind, ErrorKind::BadResponse);
        assert!(
            err.message.contains("field `adgroup_id`") && err.message.contains(why),
            "{}",
            err.message
        );
    }
}
