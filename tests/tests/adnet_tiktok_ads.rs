//! TikTok Ads connector against its fake, in-process: the plugin runs in the
//! SDK's fake host, whose HTTP is answered by the fake's handler through a
//! bridge that adds the `Access-Token` header as the daemon does.

use chrono::NaiveDate;
use plugin_api::protocol::{ErrorKind, Window};
use plugin_api::serde_json::{json, Value};
use plugin_api::testing::{open_check, open_read, FakeHost, Outcome};
use plugin_api::{Record, Spend};
use reckon_plugin_tiktok_ads::TiktokAds;
use reckon_tests::fakes::google_ads::wire::{spend_totals, Level, Universe};
use reckon_tests::fakes::tiktok_ads::{bridge, truth_totals, Config, TiktokFake};
use std::collections::BTreeSet;
use std::sync::Arc;

const TOKEN: &str = "fake-tiktok-access-token";
const ADVERTISER: &str = "7012345678901234567";

fn day(s: &str) -> NaiveDate {
    NaiveDate::parse_from_str(s, "%Y-%m-%d").unwrap()
}

fn window(from: &str, to: &str) -> Window {
    Window {
        from: day(from),
        to: day(to),
    }
}

fn spend(out: &Outcome) -> Vec<&Spend> {
    out.committed
        .iter()
        .map(|r| match r {
            Record::Spend(s) => s,
            other => panic!("expected spend, got {other:?}"),
        })
        .collect()
}

fn settings(extra: Value) -> Value {
    let mut s = json!({ "advertiser_id": ADVERTISER, "conversion_value_metric": "total_complete_payment_rate" });
    for (k, v) in extra.as_object().unwrap() {
        s[k] = v.clone();
    }
    s
}

fn run(fake: &Arc<TiktokFake>, settings: Value, w: Window) -> Outcome {
    FakeHost::handler(bridge(fake.clone(), TOKEN)).run::<TiktokAds>(open_read(
        "tt",
        "http://fake",
        settings,
        w,
    ))
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
fn records_over_many_pages_equal_the_ground_truth() {
    let fake = TiktokFake::new(Config::default(), Universe::new(31, 25, 4));
    let w = window("2026-10-01", "2026-10-07");
    let out = run(&fake, settings(json!({ "page_size": 40 })), w);
    out.result.as_ref().unwrap();
    assert!(out.uncommitted.is_empty());
    let records = spend(&out);
    let truth = fake.truth(Level::AdGroup, w.from, w.to);
    assert_eq!(records.len(), truth.len());
    assert_eq!(
        spend_totals(records.iter().copied()),
        truth_totals(&fake, Level::AdGroup, w.from, w.to)
    );
    assert!(records
        .iter()
        .all(|s| s.timezone == "America/New_York" && s.spend.currency == "USD"));
    let keys: BTreeSet<String> = records.iter().map(|s| s.key()).collect();
    assert_eq!(keys.len(), records.len());
    // The fake sends "-" for the value of a row without purchases: stored
    // as missing, not as 0 (QA20 F6).
    let dashes = truth.iter().filter(|r| r.m.value_cents == 0).count();
    assert!(dashes > 0);
    let missing: BTreeSet<(NaiveDate, Option<String>)> = records
        .iter()
        .filter(|s| s.platform_conversion_value.is_none())
        .map(|s| (s.day, s.ad_group_id.clone()))
        .collect();
    let want: BTreeSet<(NaiveDate, Option<String>)> = truth
        .iter()
        .filter(|r| r.m.value_cents == 0)
        .map(|r| (r.day, r.ad_group_id()))
        .collect();
    assert_eq!(missing, want);
    let pages = truth.len().div_ceil(40);
    assert_eq!(out.checkpoints.len(), pages);
    assert_eq!(fake.report_requests() as usize, pages);
}

#[test]
fn campaign_and_ad_levels_and_a_long_window_split_at_30_days() {
    let fake = TiktokFake::new(Config::default(), Universe::new(32, 5, 3));
    let w = window("2026-08-01", "2026-10-15");
    for (level, name) in [(Level::Campaign, "campaign"), (Level::Ad, "ad")] {
        let out = run(&fake, settings(json!({ "level": name })), w);
        out.result.as_ref().unwrap();
        assert_eq!(
            spend_totals(spend(&out)),
            truth_totals(&fake, level, w.from, w.to),
            "{name}"
        );
    }
    // 76 days: three requests per level (30 + 30 + 16).
    assert_eq!(fake.report_requests(), 6);
}

#[test]
fn a_query_too_large_is_asked_again_for_fewer_days_and_one_day_too_large_is_an_error() {
    // TikTok answers 40067 to a query over too much data: the range is
    // halved until it is answered, pages already read included.
    let config = Config {
        max_days_per_query: Some(4),
        ..Config::default()
    };
    let fake = TiktokFake::new(config, Universe::new(35, 6, 3));
    let w = window("2026-10-01", "2026-10-20");
    let out = run(&fake, settings(json!({ "level": "ad" })), w);
    out.result.as_ref().unwrap();
    assert_eq!(
        spend_totals(spend(&out)),
        truth_totals(&fake, Level::Ad, w.from, w.to)
    );
    // 20 days refused; 10 + 10 refused; 5 + 5 + 5 + 5 refused; eight
    // ranges of 2–3 days answered.
    assert_eq!(fake.report_requests(), 1 + 2 + 4 + 8);
    assert!(out
        .logs
        .iter()
        .any(|l| l.message.contains("query too large")));

    let config = Config {
        max_days_per_query: Some(0),
        ..Config::default()
    };
    let fake = TiktokFake::new(config, Universe::new(35, 6, 3));
    let out = run(&fake, settings(json!({ "level": "ad" })), w);
    let e = out.result.unwrap_err();
    assert_eq!(e.kind, ErrorKind::Config);
    assert!(
        e.message.contains("too large even for one day"),
        "{}",
        e.message
    );
    assert!(e.message.contains("`page_size`"), "{}", e.message);
}

#[test]
fn rate_limit_answers_mid_sync_back_off_and_the_sync_completes() {
    let config = Config {
        rate_limit_at: BTreeSet::from([2, 3, 5]),
        ..Config::default()
    };
    let fake = TiktokFake::new(config, Universe::new(33, 10, 3));
    let w = window("2026-10-01", "2026-10-03");
    let out = run(
        &fake,
        settings(json!({ "page_size": 10, "rate_limit_backoff_secs": 4 })),
        w,
    );
    out.result.as_ref().unwrap();
    assert_eq!(
        fake.rate_limits_sent
            .load(std::sync::atomic::Ordering::SeqCst),
        3
    );
    // 4 s then 8 s for the double refusal, 4 s for the single one.
    assert_eq!(waits(&out), [4, 8, 4]);
    assert_eq!(
        spend_totals(spend(&out)),
        truth_totals(&fake, Level::AdGroup, w.from, w.to)
    );
}

#[test]
fn a_restated_day_is_pulled_again_with_its_new_figures() {
    let fake = TiktokFake::new(Config::default(), Universe::new(34, 6, 3));
    let w = window("2026-10-01", "2026-10-03");
    let first = run(&fake, settings(json!({})), w);
    first.result.as_ref().unwrap();
    let before = spend_totals(spend(&first));
    fake.restate(day("2026-10-01"));
    let second = run(&fake, settings(json!({})), w);
    second.result.as_ref().unwrap();
    let after = spend_totals(spend(&second));
    assert_eq!(after, truth_totals(&fake, Level::AdGroup, w.from, w.to));
    assert!(after
        .iter()
        .any(|((d, c), s)| *d == day("2026-10-01") && before.get(&(*d, c.clone())) != Some(s)));
    assert!(after
        .iter()
        .filter(|((d, _), _)| *d > day("2026-10-01"))
        .all(|(k, s)| before.get(k) == Some(s)));
}

#[test]
fn an_invalid_token_is_an_auth_error_naming_connector_and_setting() {
    let fake = TiktokFake::new(Config::default(), Universe::new(1, 1, 1));
    let out = FakeHost::handler(bridge(fake, "wrong")).run::<TiktokAds>(open_check(
        "tt",
        "http://fake",
        json!({ "advertiser_id": ADVERTISER }),
    ));
    let err = out.result.clone().unwrap_err();
    assert_eq!(err.kind, ErrorKind::Auth);
    assert!(err.message.contains("connector `tt`"), "{}", err.message);
    assert!(err.message.contains("`access_token`"), "{}", err.message);
    assert!(err.message.contains("40105"), "{}", err.message);
}

#[test]
fn another_advertiser_is_an_auth_error_naming_the_advertiser_setting() {
    let fake = TiktokFake::new(Config::default(), Universe::new(1, 1, 1));
    let out = FakeHost::handler(bridge(fake, TOKEN)).run::<TiktokAds>(open_check(
        "tt",
        "http://fake",
        json!({ "advertiser_id": "123" }),
    ));
    let err = out.result.clone().unwrap_err();
    assert_eq!(err.kind, ErrorKind::Auth);
    assert!(err.message.contains("`advertiser_id`"), "{}", err.message);
}

#[test]
fn a_malformed_page_names_stream_page_and_field_and_no_checkpoint_passes_it() {
    let config = Config {
        corrupt_day: Some(day("2026-10-02")),
        ..Config::default()
    };
    let fake = TiktokFake::new(config, Universe::new(35, 5, 2));
    let out = run(
        &fake,
        settings(json!({ "days_per_request": 1 })),
        window("2026-10-01", "2026-10-03"),
    );
    let err = out.result.clone().unwrap_err();
    assert_eq!(err.kind, ErrorKind::BadResponse);
    for part in [
        "connector `tt`",
        "stream `spend`",
        "days 2026-10-02..2026-10-02 page 1",
        "row 1",
        "field `metrics.spend`",
    ] {
        assert!(err.message.contains(part), "{part}: {}", err.message);
    }
    assert_eq!(
        out.checkpoints.last().unwrap().state["done_through"],
        "2026-10-01"
    );
    assert!(spend(&out).iter().all(|s| s.day == day("2026-10-01")));
}

/// Regression (QA L5): the fake answered a malformed request parameter with
/// 40002, which the reference gives as "no access" and the plugin reads as
/// wrong credentials, so a request-building bug looked like an auth problem
/// in the tests. A parameter error now comes back as an upstream error that
/// quotes TikTok's message and names no credential setting.
#[test]
fn a_malformed_request_parameter_is_not_reported_as_an_auth_problem() {
    use plugin_api::protocol::HttpRequest;
    use reckon_plugin_tiktok_ads::api::{verdict, Verdict};
    let fake = TiktokFake::new(Config::default(), Universe::new(1, 1, 1));
    let mut handler = bridge(fake, TOKEN);
    let url = format!(
        "http://fake/open_api/v1.3/report/integrated/get/?advertiser_id={ADVERTISER}\
         &service_type=AUCTION&report_type=BASIC&data_level=AUCTION_NOPE\
         &dimensions=%5B%22campaign_id%22%2C%22stat_time_day%22%5D&metrics=%5B%22spend%22%5D\
         &start_date=2026-10-01&end_date=2026-10-02&page=1&page_size=10"
    );
    let reply = handler(&HttpRequest {
        id: 1,
        method: "GET".into(),
        url,
        headers: Default::default(),
        body: None,
        idempotent: true,
        label: "report".into(),
    });
    let body: Value = plugin_api::serde_json::from_slice(&reply.body).unwrap();
    assert_ne!(body["code"], json!(40002), "{body}");
    let resp = plugin_api::Response {
        status: reply.status,
        headers: reply.headers,
        body: reply.body,
    };
    match verdict("tt", &resp) {
        Verdict::Fatal(e) => {
            assert_eq!(e.kind, ErrorKind::Upstream, "{}", e.message);
            assert!(e.message.contains("data_level"), "{}", e.message);
            assert!(!e.message.contains("access_token"), "{}", e.message);
        }
        other => panic!("expected a fatal upstream error, got {other:?}"),
    }
}
