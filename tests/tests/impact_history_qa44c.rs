//! QA44c C-L1: Impact serves actions for only the prior 3 years. A
//! connector off for longer failed every run with Impact's bare HTTP 400
//! ("StartDate cannot be more than 3 years in the past") and no word of
//! what to do; it now fails with a config error naming the first day it can
//! sync from, as Everflow's does. Impact decides: an old window it serves is
//! read, not refused or cut beforehand.
//!
//! In-process against the Impact fake, whose 3-year rule counts from its
//! `now`; the plugin's clock is the test host's (2026-11-28T12:00:00Z).

mod affiliate_support;

use affiliate_support::run;
use chrono::{DateTime, Duration, NaiveDate, Utc};
use plugin_api::protocol::{ErrorKind, Window};
use plugin_api::testing::open_read;
use reckon_plugin_impact::{earliest_day, Impact};
use reckon_tests::fakes::affiliate::{shared, Shared, Truth};
use reckon_tests::fakes::impact::{ImpactFake, Params};
use serde_json::json;

const SECRETS: &[(&str, &str)] = &[("auth_token", "tok-impact")];

fn settings() -> serde_json::Value {
    json!({ "account_sid": "IRfakeSID1", "campaign_ids": [1000, 2000], "page_size": 2000 })
}

/// The plugin's clock in these sessions.
fn now() -> DateTime<Utc> {
    open_read(
        "aff",
        "http://fake",
        settings(),
        window(NaiveDate::from_ymd_opt(2026, 11, 1).unwrap(), 1),
    )
    .now
}

fn window(from: NaiveDate, days: i64) -> Window {
    Window {
        from,
        to: from + Duration::days(days - 1),
    }
}

/// Actions over the 21 days around the first day Impact serves, the fake's
/// clock at `now`.
fn world(first: NaiveDate, now: DateTime<Utc>) -> Shared<ImpactFake> {
    let fake = shared(ImpactFake::new(Params {
        from: first - Duration::days(10),
        to: first + Duration::days(10),
        ..Params::small(44, 2_000)
    }));
    fake.lock().unwrap().now = now;
    fake
}

#[test]
fn a_window_impact_refuses_as_too_old_names_the_day_to_sync_from() {
    let first = earliest_day(now());
    assert_eq!(first, NaiveDate::from_ymd_opt(2023, 11, 30).unwrap());
    let fake = world(first, now());

    let old = window(first - Duration::days(3), 5);
    let out = run::<Impact, _>(&fake, SECRETS, settings(), old);
    let err = out.result.as_ref().unwrap_err();
    assert_eq!(err.kind, ErrorKind::Config, "{}", err.message);
    for part in [
        "connector `aff`: window 2023-11-27..2023-12-01 starts before 2023-11-30",
        "Impact serves actions for only the prior 3 years",
        "sync from 2023-11-30 or later",
        "(Impact said: HTTP 400: StartDate cannot be more than 3 years in the past)",
    ] {
        assert!(
            err.message.contains(part),
            "{part:?} not in {}",
            err.message
        );
    }
    assert!(out.committed.is_empty() && out.checkpoints.is_empty());

    // The advised day is served.
    let from_first = window(first, 11);
    let out = run::<Impact, _>(&fake, SECRETS, settings(), from_first);
    out.result.as_ref().unwrap();
    let truth = fake.lock().unwrap().truth(from_first.from, from_first.to);
    assert!(truth.total.count > 0);
    assert_eq!(Truth::of_records(&out.committed), truth);
}

/// The plugin never refuses before asking: with Impact's clock ten days
/// behind, it serves a window that starts before the plugin's first day,
/// and the plugin reads it whole.
#[test]
fn an_old_window_impact_still_serves_is_read_not_refused_or_cut() {
    let first = earliest_day(now());
    let fake = world(first, now() - Duration::days(10));
    let w = window(first - Duration::days(5), 10);
    let out = run::<Impact, _>(&fake, SECRETS, settings(), w);
    out.result.as_ref().unwrap();
    let truth = fake.lock().unwrap().truth(w.from, w.to);
    assert!(truth.total.count > 0);
    assert_eq!(Truth::of_records(&out.committed), truth);
}
