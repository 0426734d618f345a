//! CAKE connector against the CAKE fake, in-process (FakeHost bridging to the
//! fake's state machine, with the host's `api_key` query parameter emulated).

mod affiliate_support;

use affiliate_support::{find, run, window};
use plugin_api::protocol::ErrorKind;
use plugin_api::rust_decimal::Decimal;
use plugin_api::testing::{open_read, FakeHost, Outcome};
use plugin_api::Connector;
use plugin_api::ConversionStatus;
use reckon_plugin_cake::Cake;
use reckon_tests::fakes::affiliate::in_process;
use reckon_tests::fakes::affiliate::{shared, Throttle, Truth};
use reckon_tests::fakes::cake::{CakeFake, Params};
use serde_json::json;

const SECRETS: &[(&str, &str)] = &[("api_key", "cake-key")];

fn settings() -> serde_json::Value {
    json!({ "base_url": "http://fake", "row_limit": 700 })
}

#[test]
fn cake_sync_stores_exactly_the_fakes_ground_truth() {
    let fake = shared(CakeFake::new(Params::small(31, 5_000)));
    let w = window((2026, 11, 1), (2026, 11, 27));
    let out = run::<Cake, _>(&fake, SECRETS, settings(), w);
    out.result.as_ref().unwrap();
    let truth = fake.lock().unwrap().truth(w.from, w.to);
    assert_eq!(truth.total.count, 5_000);
    assert_eq!(Truth::of_records(&out.committed), truth);
    // 5000 rows at 700 per request: 8 pages, plus the (empty) changes stream.
    assert_eq!(out.checkpoints.len(), 9);
    let currencies: std::collections::BTreeSet<_> = affiliate_support::conversions(&out)
        .iter()
        .map(|c| c.commission.as_ref().unwrap().currency.clone())
        .collect();
    assert_eq!(
        currencies.into_iter().collect::<Vec<_>>(),
        ["EUR", "GBP", "USD"]
    );
}

#[test]
fn cake_restatements_arrive_through_changes_as_revisions_of_the_same_key() {
    let fake = shared(CakeFake::new(Params::small(32, 2_000)));
    let w1 = window((2026, 11, 1), (2026, 11, 27));
    let first = run::<Cake, _>(&fake, SECRETS, settings(), w1);
    first.result.as_ref().unwrap();
    let cut = chrono::NaiveDate::from_ymd_opt(2026, 11, 20)
        .unwrap()
        .and_hms_opt(0, 0, 0)
        .unwrap()
        .and_utc();
    let (pending_old, approved_old, repriced) = {
        let f = fake.lock().unwrap();
        let pick = |d: Option<&str>, n: usize| {
            f.rows()
                .iter()
                .filter(|r| r.disposition == d && r.at < cut)
                .nth(n)
                .unwrap()
                .id
        };
        (
            pick(Some("Pending"), 0),
            pick(Some("Approved"), 0),
            pick(None, 0),
        )
    };
    {
        let mut f = fake.lock().unwrap();
        f.set_disposition(pending_old, Some("Approved"));
        f.reverse(approved_old);
        f.set_paid(repriced, Decimal::new(1, 2));
    }
    // The second run re-pulls only Nov 20..27; older restatements come from
    // EventConversionChanges.
    let second = run::<Cake, _>(
        &fake,
        SECRETS,
        settings(),
        window((2026, 11, 20), (2026, 11, 27)),
    );
    second.result.as_ref().unwrap();
    let key = |id: u64| id.to_string();
    assert_eq!(
        find(&first, &key(pending_old)).status,
        ConversionStatus::Pending
    );
    assert_eq!(
        find(&second, &key(pending_old)).status,
        ConversionStatus::Approved
    );
    assert_eq!(
        find(&first, &key(approved_old)).status,
        ConversionStatus::Approved
    );
    assert_eq!(
        find(&second, &key(approved_old)).status,
        ConversionStatus::Reversed
    );
    assert_eq!(
        find(&second, &key(repriced))
            .commission
            .as_ref()
            .unwrap()
            .amount,
        Decimal::new(1, 2)
    );
    assert!(
        find(&second, &key(repriced)).status_changed_at
            > find(&first, &key(repriced)).status_changed_at
    );
    let all: Vec<_> = first.committed.iter().chain(&second.committed).collect();
    assert_eq!(
        Truth::of_records(all),
        fake.lock().unwrap().truth(w1.from, w1.to)
    );
}

/// A session at `now` that carries on from `previous`'s checkpoints, as the
/// daemon would run the next scheduled sync.
fn next_run(
    fake: &reckon_tests::fakes::affiliate::Shared<CakeFake>,
    previous: &Outcome,
    w: plugin_api::protocol::Window,
    now: &str,
) -> Outcome {
    let mut open = open_read("aff", "http://fake", settings(), w);
    open.now = now.parse().unwrap();
    for cp in &previous.checkpoints {
        open.checkpoints.insert(cp.stream.clone(), cp.clone());
    }
    let handler = in_process(fake.clone(), Cake::manifest().auth, SECRETS, &settings());
    FakeHost::handler(handler).run::<Cake>(open)
}

/// Regression: `changes_since` went out as a UTC date-time one hour before the
/// last run, but CAKE takes a date and reads it in the instance's time zone.
/// An instance west of UTC read that time as several hours later, and a
/// change made in between was never pulled.
#[test]
fn cake_change_right_after_a_run_is_pulled_by_the_next_run_whatever_the_instance_time_zone() {
    let fake = shared(CakeFake::new(Params::small(35, 1_000)));
    fake.lock().unwrap().timezone = chrono_tz::America::Los_Angeles;
    let w = window((2026, 11, 1), (2026, 11, 27));
    let mut first = run::<Cake, _>(&fake, SECRETS, settings(), w);
    first.result.as_ref().unwrap();
    // The first run's changes checkpoint as of a run at 02:00 UTC (18:00 the
    // evening before in Los Angeles).
    for cp in &mut first.checkpoints {
        if cp.stream == "event_conversion_changes" {
            cp.watermark = "2026-11-28T02:00:00Z".parse().unwrap();
        }
    }
    // An hour later an old conversion is reversed.
    let cut = "2026-11-20T00:00:00Z"
        .parse::<chrono::DateTime<chrono::Utc>>()
        .unwrap();
    let old = {
        let f = fake.lock().unwrap();
        f.rows()
            .iter()
            .find(|r| r.at < cut && r.disposition != Some("Returned"))
            .unwrap()
            .id
    };
    {
        let mut f = fake.lock().unwrap();
        f.now = "2026-11-28T03:00:00Z".parse().unwrap();
        f.reverse(old);
    }
    let second = next_run(
        &fake,
        &first,
        window((2026, 11, 27), (2026, 11, 28)),
        "2026-11-28T06:00:00Z",
    );
    second.result.as_ref().unwrap();
    assert_eq!(
        find(&second, &old.to_string()).status,
        ConversionStatus::Reversed
    );
    let changes: Vec<_> = second
        .requests
        .iter()
        .filter(|r| r.url.contains("EventConversionChanges"))
        .collect();
    let body: serde_json::Value =
        serde_json::from_str(changes[0].body.as_deref().unwrap()).unwrap();
    assert_eq!(body["changes_since"], "2026-11-27");
}

#[test]
fn cake_429s_mid_sync_slow_down_and_the_sync_completes() {
    let fake = shared(CakeFake::new(Params::small(33, 3_000)));
    fake.lock().unwrap().throttle = Throttle::new(1, 2);
    let w = window((2026, 11, 1), (2026, 11, 27));
    let out = run::<Cake, _>(&fake, SECRETS, settings(), w);
    out.result.as_ref().unwrap();
    assert_eq!(fake.lock().unwrap().throttle.refused, 2);
    assert_eq!(out.sleeps.len(), 2);
    assert_eq!(
        Truth::of_records(&out.committed),
        fake.lock().unwrap().truth(w.from, w.to)
    );
}

#[test]
fn cake_malformed_row_is_reported_with_its_id_and_field_and_its_page_is_not_committed() {
    let fake = shared(CakeFake::new(Params::small(34, 2_000)));
    let w = window((2026, 11, 1), (2026, 11, 27));
    // Rows are sorted by id; the 1500th is on the third page of 700.
    let bad = {
        let f = fake.lock().unwrap();
        let mut ids: Vec<_> = f.rows().iter().map(|r| r.id).collect();
        ids.sort();
        ids[1_500]
    };
    fake.lock().unwrap().corrupt(bad, "paid");
    let out = run::<Cake, _>(&fake, SECRETS, settings(), w);
    let err = out.result.unwrap_err();
    assert_eq!(err.kind, ErrorKind::BadResponse);
    for part in [
        format!("event_conversion_id {bad}"),
        "field `paid.amount`".into(),
        "rows from 1401".into(),
    ] {
        assert!(err.message.contains(&part), "{part} not in {}", err.message);
    }
    assert_eq!(out.committed.len(), 1_400);
    assert!(out.uncommitted.is_empty());
}

#[test]
fn cake_wrong_key_is_an_auth_error() {
    let fake = shared(CakeFake::new(Params::small(1, 10)));
    let out = run::<Cake, _>(
        &fake,
        &[("api_key", "nope")],
        settings(),
        window((2026, 11, 1), (2026, 11, 2)),
    );
    let err = out.result.unwrap_err();
    assert_eq!(err.kind, ErrorKind::Auth, "{}", err.message);
}

/// Regression: offset paging skipped rows when the result set changed while
/// it was read. Here a conversion on the first page of the changes is
/// changed again before the second page: the fake keeps changes in change
/// order, so it moves to the end and every later row moves up one place; the
/// plugin used to skip the row that slid onto the page already read. Now the
/// overlap row shows the shift and the stream is read again from row 1.
#[test]
fn cake_a_conversion_changed_again_between_two_pages_of_changes_skips_no_change() {
    let fake = shared(CakeFake::new(Params::small(36, 500)));
    let cut = "2026-11-20T00:00:00Z"
        .parse::<chrono::DateTime<chrono::Utc>>()
        .unwrap();
    // Seven older conversions restated, one minute apart.
    let changed: Vec<u64> = {
        let mut f = fake.lock().unwrap();
        let ids: Vec<u64> = f
            .rows()
            .iter()
            .filter(|r| r.at < cut)
            .take(7)
            .map(|r| r.id)
            .collect();
        f.now = "2026-11-27T21:00:00Z".parse().unwrap();
        for id in &ids {
            f.now += chrono::Duration::minutes(1);
            f.set_paid(*id, Decimal::new(1_000, 2));
        }
        ids
    };
    // After the first page (3 rows), the second change is changed again.
    let again = changed[1];
    fake.lock().unwrap().after_reports(1, move |f| {
        f.now += chrono::Duration::hours(1);
        f.set_paid(again, Decimal::new(777, 2));
    });
    let settings = json!({ "base_url": "http://fake", "row_limit": 3 });
    let mut open = open_read(
        "aff",
        "http://fake",
        settings.clone(),
        window((2026, 11, 20), (2026, 11, 27)),
    );
    open.streams = vec!["event_conversion_changes".into()];
    let handler = in_process(fake.clone(), Cake::manifest().auth, SECRETS, &settings);
    let out = FakeHost::handler(handler).run::<Cake>(open);
    out.result.as_ref().unwrap();

    let read: std::collections::BTreeSet<u64> = affiliate_support::conversions(&out)
        .iter()
        .map(|c| c.external_id.parse().unwrap())
        .collect();
    assert_eq!(
        read,
        changed.iter().copied().collect(),
        "a change was skipped"
    );
    assert_eq!(
        find(&out, &again.to_string())
            .commission
            .as_ref()
            .unwrap()
            .amount,
        Decimal::new(777, 2)
    );
    // First page, the shifted second page, then the stream again from row 1.
    assert!(fake.lock().unwrap().reports() >= 5);
}
