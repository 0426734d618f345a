//! Google Ads connector against its fake, in-process: the plugin runs in the
//! SDK's fake host, whose HTTP is answered by the fake's handler through a
//! bridge that plays the daemon's auth part (OAuth2 refresh, developer token).

use chrono::NaiveDate;
use plugin_api::protocol::{ErrorKind, Window};
use plugin_api::serde_json::json;
use plugin_api::testing::{open_check, open_read, FakeHost, Outcome};
use plugin_api::{Record, Spend};
use reckon_plugin_google_ads::GoogleAds;
use reckon_tests::fakes::google_ads::wire::{campaign_id, spend_totals, Level, Totals, Universe};
use reckon_tests::fakes::google_ads::{
    bridge, is_performance_max, truth_totals, Config, Credentials, GoogleFake,
};
use std::collections::BTreeSet;
use std::sync::Arc;

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

fn run(fake: &Arc<GoogleFake>, settings: plugin_api::serde_json::Value, w: Window) -> Outcome {
    FakeHost::handler(bridge(fake.clone(), Credentials::default())).run::<GoogleAds>(open_read(
        "gads",
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
fn records_equal_the_fake_ground_truth_per_day_and_campaign() {
    let fake = GoogleFake::new(Config::default(), Universe::new(7, 30, 5));
    let w = window("2026-10-01", "2026-10-10");
    let out = run(&fake, json!({ "customer_id": "123-456-7890" }), w);
    out.result.as_ref().unwrap();
    assert!(out.uncommitted.is_empty());
    let records = spend(&out);
    let truth = fake.truth(Level::AdGroup, w.from, w.to);
    assert_eq!(records.len(), truth.len());
    assert!(truth.len() > 1000, "{}", truth.len());
    assert_eq!(
        spend_totals(records.iter().copied()),
        truth_totals(&fake, Level::AdGroup, w.from, w.to)
    );
    // Account timezone and currency come from the customer resource.
    assert!(records
        .iter()
        .all(|s| s.timezone == "Europe/Berlin" && s.spend.currency == "EUR"));
    // Keys are unique: no duplicates.
    let keys: BTreeSet<String> = records.iter().map(|s| s.key()).collect();
    assert_eq!(keys.len(), records.len());
    // One checkpoint per day-request.
    assert_eq!(out.checkpoints.len(), 10);
}

#[test]
fn campaign_and_ad_levels_match_their_truth_too() {
    let fake = GoogleFake::new(Config::default(), Universe::new(8, 12, 4));
    let w = window("2026-10-01", "2026-10-03");
    for (level, name) in [(Level::Campaign, "campaign"), (Level::Ad, "ad")] {
        let out = run(
            &fake,
            json!({ "customer_id": "1234567890", "level": name }),
            w,
        );
        out.result.as_ref().unwrap();
        let records = spend(&out);
        assert_eq!(
            spend_totals(records.iter().copied()),
            truth_totals(&fake, level, w.from, w.to),
            "{name}"
        );
        match level {
            Level::Campaign => assert!(records.iter().all(|s| s.ad_group_id.is_none())),
            // Performance Max rows have no ad group and no ad.
            _ => assert!(records
                .iter()
                .all(|s| s.ad_id.is_some() == s.ad_group_id.is_some())),
        }
    }
}

/// Regression: at the default `ad_group` level (and at `ad`) the cost of
/// Performance Max campaigns was missing. They have asset groups, not ad
/// groups, so `FROM ad_group` never reports them; only `FROM campaign` does.
#[test]
fn performance_max_cost_is_kept_at_the_ad_group_and_ad_levels() {
    let fake = GoogleFake::new(Config::default(), Universe::new(10, 10, 3));
    let w = window("2026-10-01", "2026-10-04");
    // Per day and campaign, whatever the granularity (row counts differ).
    let per_campaign = |mut t: Totals| {
        t.values_mut().for_each(|s| s.rows = 0);
        t
    };
    let want = per_campaign(truth_totals(&fake, Level::Campaign, w.from, w.to));
    let pmax: BTreeSet<String> = (0..10)
        .filter(|c| is_performance_max(*c))
        .map(campaign_id)
        .collect();
    assert!(want.keys().any(|(_, c)| pmax.contains(c)));
    for name in ["ad_group", "ad"] {
        let out = run(
            &fake,
            json!({ "customer_id": "1234567890", "level": name }),
            w,
        );
        out.result.as_ref().unwrap();
        let records = spend(&out);
        assert_eq!(
            per_campaign(spend_totals(records.iter().copied())),
            want,
            "{name}"
        );
        for s in &records {
            let is_pmax = pmax.contains(&s.campaign_id);
            assert_eq!(s.ad_group_id.is_none(), is_pmax, "{name}: {s:?}");
            assert_eq!(
                s.ad_id.is_none(),
                is_pmax || name == "ad_group",
                "{name}: {s:?}"
            );
        }
    }
}

#[test]
fn many_batches_and_multi_day_requests_are_read_whole() {
    let config = Config {
        batch_rows: 7,
        ..Config::default()
    };
    let fake = GoogleFake::new(config, Universe::new(9, 10, 6));
    let w = window("2026-10-01", "2026-10-08");
    let out = run(
        &fake,
        json!({ "customer_id": "1234567890", "days_per_request": 3 }),
        w,
    );
    out.result.as_ref().unwrap();
    // Three requests of three days, each with its Performance Max query.
    assert_eq!(fake.data_requests(), 6);
    assert_eq!(
        spend_totals(spend(&out)),
        truth_totals(&fake, Level::AdGroup, w.from, w.to)
    );
}

#[test]
fn quota_errors_mid_sync_are_waited_out_and_the_sync_completes() {
    let config = Config {
        quota_errors_at: BTreeSet::from([3, 4]),
        retry_delay_secs: 30,
        ..Config::default()
    };
    let fake = GoogleFake::new(config, Universe::new(10, 5, 3));
    let w = window("2026-10-01", "2026-10-05");
    let out = run(&fake, json!({ "customer_id": "1234567890" }), w);
    out.result.as_ref().unwrap();
    assert_eq!(waits(&out), [30, 30]);
    assert_eq!(
        spend_totals(spend(&out)),
        truth_totals(&fake, Level::AdGroup, w.from, w.to)
    );
}

#[test]
fn a_restated_day_is_pulled_again_with_its_new_figures() {
    let fake = GoogleFake::new(Config::default(), Universe::new(11, 6, 3));
    let w = window("2026-10-01", "2026-10-03");
    let first = run(&fake, json!({ "customer_id": "1234567890" }), w);
    first.result.as_ref().unwrap();
    let before = spend_totals(spend(&first));
    fake.restate(day("2026-10-02"));
    let second = run(&fake, json!({ "customer_id": "1234567890" }), w);
    second.result.as_ref().unwrap();
    let after = spend_totals(spend(&second));
    assert_eq!(after, truth_totals(&fake, Level::AdGroup, w.from, w.to));
    for ((d, c), sums) in &after {
        if *d == day("2026-10-02") {
            continue;
        }
        assert_eq!(before.get(&(*d, c.clone())), Some(sums));
    }
    let changed = after
        .iter()
        .filter(|((d, c), s)| *d == day("2026-10-02") && before.get(&(*d, c.clone())) != Some(s))
        .count();
    assert!(changed > 0, "the restated day did not change");
}

#[test]
fn a_wrong_developer_token_is_an_auth_error_naming_connector_and_setting() {
    let fake = GoogleFake::new(Config::default(), Universe::new(1, 1, 1));
    let creds = Credentials {
        developer_token: "wrong".into(),
        ..Credentials::default()
    };
    let out = FakeHost::handler(bridge(fake, creds)).run::<GoogleAds>(open_check(
        "gads",
        "http://fake",
        json!({ "customer_id": "1234567890" }),
    ));
    let err = out.result.clone().unwrap_err();
    assert_eq!(err.kind, ErrorKind::Auth);
    assert!(err.message.contains("connector `gads`"), "{}", err.message);
    assert!(err.message.contains("`developer_token`"), "{}", err.message);
}

#[test]
fn a_customer_the_credentials_cannot_see_is_an_auth_error_naming_the_settings() {
    let fake = GoogleFake::new(Config::default(), Universe::new(1, 1, 1));
    let out = FakeHost::handler(bridge(fake, Credentials::default())).run::<GoogleAds>(open_check(
        "gads",
        "http://fake",
        json!({ "customer_id": "999-999-9999" }),
    ));
    let err = out.result.clone().unwrap_err();
    assert_eq!(err.kind, ErrorKind::Auth);
    assert!(err.message.contains("`customer_id`"), "{}", err.message);
    assert!(
        err.message.contains("USER_PERMISSION_DENIED"),
        "{}",
        err.message
    );
}

#[test]
fn a_malformed_row_names_stream_request_and_field_and_no_checkpoint_passes_it() {
    let config = Config {
        corrupt_day: Some(day("2026-10-03")),
        ..Config::default()
    };
    let fake = GoogleFake::new(config, Universe::new(12, 4, 2));
    let out = run(
        &fake,
        json!({ "customer_id": "1234567890" }),
        window("2026-10-01", "2026-10-05"),
    );
    let err = out.result.clone().unwrap_err();
    assert_eq!(err.kind, ErrorKind::BadResponse);
    for part in [
        "connector `gads`",
        "stream `spend`",
        "request 3 (days 2026-10-03..2026-10-03)",
        "batch 1, row 1",
        "field `metrics.costMicros`",
    ] {
        assert!(err.message.contains(part), "{part}: {}", err.message);
    }
    let last = out.checkpoints.last().unwrap();
    assert_eq!(last.state["done_through"], "2026-10-02");
    assert!(out
        .committed
        .iter()
        .all(|r| matches!(r, Record::Spend(s) if s.day < day("2026-10-03"))));
}
