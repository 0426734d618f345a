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
use reckon_tests::fakes::cake::{CakeFake, DateStyle, Params};
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
    next_run_with(fake, settings(), previous, w, now)
}

/// [`next_run`] with other settings.
fn next_run_with(
    fake: &reckon_tests::fakes::affiliate::Shared<CakeFake>,
    settings: serde_json::Value,
    previous: &Outcome,
    w: plugin_api::protocol::Window,
    now: &str,
) -> Outcome {
    let mut open = open_read("aff", "http://fake", settings.clone(), w);
    open.now = now.parse().unwrap();
    for cp in &previous.checkpoints {
        open.checkpoints.insert(cp.stream.clone(), cp.clone());
    }
    let handler = in_process(fake.clone(), Cake::manifest().auth, SECRETS, &settings);
    FakeHost::handler(handler).run::<Cake>(open)
}

/// The `changes_since` of a session's changes stream.
fn changes_since_sent(out: &Outcome) -> serde_json::Value {
    let req = out
        .requests
        .iter()
        .find(|r| r.url.contains("EventConversionChanges"))
        .expect("a changes request");
    let body: serde_json::Value = serde_json::from_str(req.body.as_deref().unwrap()).unwrap();
    body["changes_since"].clone()
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
    assert_eq!(changes_since_sent(&second), "2026-11-27");
}

/// With `instance_timezone` set, the changes stream asks from the instance's
/// date a few hours before the last run, no longer from the day before the
/// last run's UTC date: a change made during the evening before (read by the
/// last run) is not read again, while one made in the hours just before the
/// last run (which its report may not have had yet) and one made after it
/// are both pulled.
#[test]
fn cake_changes_with_a_known_instance_time_zone_are_re_read_from_that_days_midnight_only() {
    let fake = shared(CakeFake::new(Params::small(36, 1_000)));
    fake.lock().unwrap().timezone = chrono_tz::America::Los_Angeles;
    let settings = json!({ "base_url": "http://fake", "row_limit": 700,
                           "instance_timezone": "America/Los_Angeles" });
    let w = window((2026, 11, 1), (2026, 11, 27));
    let mut first = run::<Cake, _>(&fake, SECRETS, settings.clone(), w);
    first.result.as_ref().unwrap();
    // The last run was at 12:00 UTC on the 28th: 04:00 in Los Angeles.
    for cp in &mut first.checkpoints {
        if cp.stream == "event_conversion_changes" {
            cp.watermark = "2026-11-28T12:00:00Z".parse().unwrap();
        }
    }
    let cut = "2026-11-20T00:00:00Z"
        .parse::<chrono::DateTime<chrono::Utc>>()
        .unwrap();
    let old: Vec<u64> = {
        let f = fake.lock().unwrap();
        f.rows()
            .iter()
            .filter(|r| r.at < cut && r.disposition != Some("Returned"))
            .take(3)
            .map(|r| r.id)
            .collect()
    };
    {
        let mut f = fake.lock().unwrap();
        // Noon of the 27th in Los Angeles: long before the last run.
        f.now = "2026-11-27T20:00:00Z".parse().unwrap();
        f.reverse(old[0]);
        // 01:30 on the 28th in Los Angeles, 2.5 hours before the last run.
        f.now = "2026-11-28T09:30:00Z".parse().unwrap();
        f.reverse(old[1]);
        // After the last run.
        f.now = "2026-11-28T13:00:00Z".parse().unwrap();
        f.reverse(old[2]);
    }
    let second = next_run_with(
        &fake,
        settings,
        &first,
        window((2026, 11, 27), (2026, 11, 28)),
        "2026-11-28T18:00:00Z",
    );
    second.result.as_ref().unwrap();
    // The instance's date three hours before the last run (01:00 on the 28th
    // in Los Angeles); it used to be the 27th, a whole day more.
    assert_eq!(changes_since_sent(&second), "2026-11-28");
    for id in &old[1..] {
        assert_eq!(
            find(&second, &id.to_string()).status,
            ConversionStatus::Reversed
        );
    }
    assert!(
        !read_ids(&second).contains(&old[0]),
        "a change from before the instance's day was read again"
    );
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
    // After the first page (3 rows; the report before it asks for row 0
    // alone), the second change is changed again.
    let again = changed[1];
    fake.lock().unwrap().after_reports(2, move |f| {
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
    // Row 0, the first page, the shifted second page, then the stream again
    // from row 0.
    assert!(fake.lock().unwrap().reports() >= 7);
}

/// Five older conversions restated, one minute apart; returns their ids.
fn restate_five(fake: &reckon_tests::fakes::affiliate::Shared<CakeFake>) -> Vec<u64> {
    let cut = "2026-11-20T00:00:00Z"
        .parse::<chrono::DateTime<chrono::Utc>>()
        .unwrap();
    let mut f = fake.lock().unwrap();
    let ids: Vec<u64> = f
        .rows()
        .iter()
        .filter(|r| r.at < cut)
        .take(5)
        .map(|r| r.id)
        .collect();
    f.now = "2026-11-27T21:00:00Z".parse().unwrap();
    for id in &ids {
        f.now += chrono::Duration::minutes(1);
        f.set_paid(*id, Decimal::new(1_000, 2));
    }
    ids
}

fn changes_only(
    fake: &reckon_tests::fakes::affiliate::Shared<CakeFake>,
    settings: serde_json::Value,
) -> Outcome {
    let mut open = open_read(
        "aff",
        "http://fake",
        settings.clone(),
        window((2026, 11, 20), (2026, 11, 27)),
    );
    open.streams = vec!["event_conversion_changes".into()];
    let handler = in_process(fake.clone(), Cake::manifest().auth, SECRETS, &settings);
    FakeHost::handler(handler).run::<Cake>(open)
}

fn read_ids(out: &Outcome) -> std::collections::BTreeSet<u64> {
    affiliate_support::conversions(out)
        .iter()
        .map(|c| c.external_id.parse().unwrap())
        .collect()
}

/// Regression (QA M1): EventConversionChanges documents no `row_count`; the
/// fake invented one, hiding that the plugin read its absence as 0, ended
/// the stream after the first page and marked it complete, so later changes
/// of older conversions were never stored. The fake now omits it.
#[test]
fn cake_changes_without_row_count_are_paged_to_the_end_and_every_change_is_stored() {
    let fake = shared(CakeFake::new(Params::small(37, 400)));
    let changed = restate_five(&fake);
    let out = changes_only(&fake, json!({ "base_url": "http://fake", "row_limit": 2 }));
    out.result.as_ref().unwrap();
    assert_eq!(read_ids(&out), changed.iter().copied().collect());
    for id in &changed {
        assert_eq!(
            find(&out, &id.to_string())
                .commission
                .as_ref()
                .unwrap()
                .amount,
            Decimal::new(1_000, 2)
        );
    }
    let changes: Vec<serde_json::Value> = out
        .requests
        .iter()
        .filter(|r| r.url.contains("EventConversionChanges"))
        .map(|r| serde_json::from_str(r.body.as_deref().unwrap()).unwrap())
        .collect();
    // Row 0 alone, then rows 1-2, 2-4 (with the overlap row), 4-5: the short
    // page ends it.
    let starts: Vec<u64> = changes
        .iter()
        .map(|b| b["start_at_row"].as_u64().unwrap())
        .collect();
    assert_eq!(starts, [0, 1, 2, 4]);
    assert_eq!(
        out.checkpoints.last().unwrap().state["complete"],
        json!(true)
    );
}

/// The other reading of the reference (no paging for EventConversionChanges
/// at all): an instance that answers every change to the first request.
#[test]
fn cake_changes_answered_whole_by_an_instance_that_does_not_page_them_are_all_stored() {
    let fake = shared(CakeFake::new(Params::small(38, 400)));
    fake.lock().unwrap().changes_ignore_paging = true;
    let changed = restate_five(&fake);
    let out = changes_only(&fake, json!({ "base_url": "http://fake", "row_limit": 2 }));
    out.result.as_ref().unwrap();
    assert_eq!(read_ids(&out), changed.iter().copied().collect());
    // The request for row 0 alone (answered whole too, so not used), then
    // the first page, which holds every change.
    assert_eq!(fake.lock().unwrap().reports(), 2);
}

/// Regression (QA M4): only `/Date(ms)/` dates were read. CAKE may send ISO
/// date-times; without an offset they are the instance's time, read in the
/// `instance_timezone` setting, and refused (naming it) when it is not set.
#[test]
fn cake_iso_dates_are_read_in_the_instance_time_zone_or_refused_naming_the_setting() {
    let w = window((2026, 11, 1), (2026, 11, 27));
    for style in [DateStyle::IsoLocal, DateStyle::IsoOffset] {
        let fake = shared(CakeFake::new(Params::small(39, 300)));
        {
            let mut f = fake.lock().unwrap();
            f.timezone = chrono_tz::America::Los_Angeles;
            f.dates = style;
        }
        let settings = json!({ "base_url": "http://fake", "row_limit": 700,
                               "instance_timezone": "America/Los_Angeles" });
        let out = run::<Cake, _>(&fake, SECRETS, settings, w);
        out.result.as_ref().unwrap();
        let f = fake.lock().unwrap();
        assert_eq!(Truth::of_records(&out.committed), f.truth(w.from, w.to));
        let read_from: chrono::DateTime<chrono::Utc> = "2026-11-02T00:00:00Z".parse().unwrap();
        for r in f.rows().iter().filter(|r| r.at >= read_from) {
            let c = find(&out, &r.id.to_string());
            assert_eq!(c.occurred_at, r.at, "{style:?} {}", r.id);
            assert_eq!(c.status_changed_at, Some(r.last_updated), "{style:?}");
        }
    }
    // Offset-less times without the setting: a config error naming it.
    let fake = shared(CakeFake::new(Params::small(39, 300)));
    fake.lock().unwrap().dates = DateStyle::IsoLocal;
    let out = run::<Cake, _>(&fake, SECRETS, settings(), w);
    let err = out.result.unwrap_err();
    assert_eq!(err.kind, ErrorKind::Config, "{}", err.message);
    assert!(
        err.message.contains("`instance_timezone`"),
        "{}",
        err.message
    );
    assert!(out.committed.is_empty());
}

/// Regression (QA M5): the fake invented an `order_total` the reference's
/// record does not have, hiding that CAKE claims carry no sale amount.
/// By default none is stored; an instance that does send `order_total`
/// still gets it.
#[test]
fn cake_conversions_carry_no_sale_amount_unless_the_instance_sends_order_total() {
    let w = window((2026, 11, 1), (2026, 11, 27));
    let fake = shared(CakeFake::new(Params::small(40, 200)));
    let out = run::<Cake, _>(&fake, SECRETS, settings(), w);
    out.result.as_ref().unwrap();
    let stored = affiliate_support::conversions(&out);
    assert_eq!(stored.len(), 200);
    assert!(stored.iter().all(|c| c.sale_amount.is_none()));
    assert!(stored.iter().all(|c| c.commission.is_some()));
    assert_eq!(
        Truth::of_records(&out.committed),
        fake.lock().unwrap().truth(w.from, w.to)
    );

    fake.lock().unwrap().send_order_total = true;
    let out = run::<Cake, _>(&fake, SECRETS, settings(), w);
    out.result.as_ref().unwrap();
    let f = fake.lock().unwrap();
    for r in f.rows() {
        let c = find(&out, &r.id.to_string());
        assert_eq!(c.sale_amount.as_ref().unwrap().amount, r.order_total);
    }
    assert_eq!(Truth::of_records(&out.committed), f.truth(w.from, w.to));
}

/// QA20 F3: the whole window, and restatements through the changes stream,
/// are stored whether the instance counts `start_at_row` from 1 or from 0
/// (before, from 0, the first row of every read was lost: the lowest
/// `event_conversion_id` of the window and of the changes).
#[test]
fn cake_stores_every_row_whether_rows_count_from_0_or_1() {
    for zero_based in [false, true] {
        let mut fake = CakeFake::new(Params::small(34, 1_500));
        fake.zero_based_rows = zero_based;
        let fake = shared(fake);
        let w = window((2026, 11, 1), (2026, 11, 27));
        let out = run::<Cake, _>(&fake, SECRETS, settings(), w);
        out.result.as_ref().unwrap();
        let truth = fake.lock().unwrap().truth(w.from, w.to);
        assert_eq!(truth.total.count, 1_500, "zero_based {zero_based}");
        assert_eq!(
            Truth::of_records(&out.committed),
            truth,
            "zero_based {zero_based}"
        );
        let lowest = fake
            .lock()
            .unwrap()
            .rows()
            .iter()
            .map(|r| r.id)
            .min()
            .unwrap();
        assert!(read_ids(&out).contains(&lowest), "zero_based {zero_based}");
        // Restatements: the changed conversion with the lowest id arrives too.
        let changed = restate_five(&fake);
        let out = changes_only(&fake, settings());
        out.result.as_ref().unwrap();
        let ids = read_ids(&out);
        for id in &changed {
            assert!(
                ids.contains(id),
                "zero_based {zero_based}: change {id} lost"
            );
        }
    }
}

/// CAKE clients send `row_limit = 0` (with `start_at_row = 0`) for "every
/// row"; the fake answers them so, under either count.
#[test]
fn cake_fake_answers_row_limit_0_with_every_row() {
    for zero_based in [false, true] {
        let mut fake = CakeFake::new(Params::small(35, 40));
        fake.zero_based_rows = zero_based;
        let fake = shared(fake);
        let mut handler = in_process(fake.clone(), Cake::manifest().auth, SECRETS, &settings());
        let ask = |start: u64, limit: u64| plugin_api::protocol::HttpRequest {
            id: 1,
            method: "POST".into(),
            url: "/api/18/reports.asmx/EventConversions".into(),
            headers: Default::default(),
            body: Some(
                json!({
                    "start_date": "2026-11-01", "end_date": "2026-11-28", "event_type": "all",
                    "event_id": 0, "channel_id": 0, "source_affiliate_id": 0,
                    "brand_advertiser_id": 0, "site_offer_id": 0, "site_offer_contract_id": 0,
                    "campaign_id": 0, "creative_id": 0, "source_affiliate_tag_id": 0,
                    "brand_advertiser_tag_id": 0, "site_offer_tag_id": 0, "price_format_id": 0,
                    "source_type": "all", "payment_percentage_filter": "both",
                    "disposition_type": "all", "disposition_id": 0,
                    "source_affiliate_billing_status": "all",
                    "brand_advertiser_billing_status": "all", "test_filter": "non_tests",
                    "start_at_row": start, "row_limit": limit,
                    "sort_field": "event_conversion_id", "sort_descending": "FALSE",
                })
                .to_string(),
            ),
            idempotent: true,
            label: String::new(),
        };
        let ids = |reply: plugin_api::testing::Reply| -> Vec<u64> {
            let v: serde_json::Value = serde_json::from_slice(&reply.body).unwrap();
            assert_eq!(v["d"]["success"], true, "{v}");
            v["d"]["event_conversions"]
                .as_array()
                .unwrap()
                .iter()
                .map(|r| r["event_conversion_id"].as_u64().unwrap())
                .collect()
        };
        let all = ids(handler(&ask(0, 0)));
        assert_eq!(all.len(), 40, "zero_based {zero_based}");
        // Row 1 is the first row counted from 1, the second from 0.
        let one = ids(handler(&ask(1, 1)));
        assert_eq!(
            one,
            [all[usize::from(zero_based)]],
            "zero_based {zero_based}"
        );
        assert_eq!(ids(handler(&ask(0, 1))), [all[0]]);
    }
}

/// A read session at `now` (`row_limit` 200) that carries on from the
/// checkpoints of `previous` (the later ones win), as the daemon opens the
/// next one.
fn session(
    fake: &reckon_tests::fakes::affiliate::Shared<CakeFake>,
    previous: &[&Outcome],
    w: plugin_api::protocol::Window,
    now: &str,
) -> Outcome {
    let settings = json!({ "base_url": "http://fake", "row_limit": 200 });
    let mut open = open_read("aff", "http://fake", settings.clone(), w);
    open.now = now.parse().unwrap();
    for cp in previous.iter().flat_map(|o| &o.checkpoints) {
        open.checkpoints.insert(cp.stream.clone(), cp.clone());
    }
    let handler = in_process(fake.clone(), Cake::manifest().auth, SECRETS, &settings);
    FakeHost::handler(handler).run::<Cake>(open)
}

/// The session clock of the QA34 tests: the day after the fake's last day.
const NOW: &str = "2026-11-28T12:00:00Z";

fn at(s: &str) -> chrono::DateTime<chrono::Utc> {
    s.parse().unwrap()
}

fn stream_checkpoints<'a>(
    out: &'a Outcome,
    stream: &'a str,
) -> impl Iterator<Item = &'a plugin_api::Checkpoint> {
    out.checkpoints.iter().filter(move |c| c.stream == stream)
}

/// D-H2: the first page of `event_conversions` (after the request for row 0
/// alone) came back empty while `row_count` counted every conversion; the
/// stream ended as complete and the run was `ok` without them. Now the run
/// fails naming the stream, the rows and `row_count`, the window is not
/// complete, and the next run stores every conversion.
#[test]
fn cake_an_empty_page_while_row_count_says_more_remain_fails_the_run() {
    let fake = shared(CakeFake::new(Params::small(343, 1_000)));
    let w = window((2026, 11, 1), (2026, 11, 27));
    // Report 0 is the request for row 0 alone; report 1 the first page.
    fake.lock().unwrap().empty_report(1);
    let first = session(&fake, &[], w, NOW);
    let e = first.result.as_ref().unwrap_err();
    assert_eq!(e.kind, ErrorKind::BadResponse);
    assert!(
        e.message
            .contains("stream `event_conversions` rows from 1: no rows, yet row_count is 1000")
            && e.message
                .contains("more pages said to remain after an empty one"),
        "{}",
        e.message
    );
    assert!(
        stream_checkpoints(&first, "event_conversions").all(|c| c.state["complete"] != json!(true)),
        "the window is not complete"
    );
    let second = session(&fake, &[&first], w, NOW);
    second.result.as_ref().unwrap();
    assert_eq!(
        Truth::of_records(&second.committed),
        fake.lock().unwrap().truth(w.from, w.to)
    );
}

/// An emptied page *after* the first (its overlap row missing too) is a
/// shifted set: the stream is read again from row 1 and every row stored.
#[test]
fn cake_an_empty_later_page_is_read_again_and_every_row_stored() {
    let fake = shared(CakeFake::new(Params::small(344, 1_000)));
    let w = window((2026, 11, 1), (2026, 11, 27));
    fake.lock().unwrap().empty_report(3);
    let out = session(&fake, &[], w, NOW);
    out.result.as_ref().unwrap();
    assert!(out.logs.iter().any(|l| l.message.contains("shifted")));
    assert_eq!(
        Truth::of_records(&out.committed),
        fake.lock().unwrap().truth(w.from, w.to)
    );
}

/// A CAKE world from 1 October to 27 November 2026.
fn autumn(seed: u64) -> reckon_tests::fakes::affiliate::Shared<CakeFake> {
    shared(CakeFake::new(Params {
        from: chrono::NaiveDate::from_ymd_opt(2026, 10, 1).unwrap(),
        ..Params::small(seed, 1_200)
    }))
}

/// The first conversion (by id) that occurred in `from..to` and is not
/// returned yet.
fn conversion_in(
    fake: &reckon_tests::fakes::affiliate::Shared<CakeFake>,
    from: &str,
    to: &str,
) -> u64 {
    let (from, to) = (at(from), at(to));
    let f = fake.lock().unwrap();
    f.rows()
        .iter()
        .filter(|r| r.at >= from && r.at < to && r.disposition != Some("Returned"))
        .map(|r| r.id)
        .min()
        .unwrap()
}

/// B-M1: a backfill's changes stream asked `changes_since` its first day
/// with no upper bound, and stored every conversion changed since, up to
/// today, whatever `--to` said. Now it stores what its days hold (and the
/// restatements of older conversions), leaves out the changes of
/// conversions after the window (logging how many), and its watermark
/// stops at the window's end, so the next run still reads them.
#[test]
fn cake_backfill_stores_no_conversion_that_occurred_after_its_window() {
    let fake = autumn(345);
    let before = conversion_in(&fake, "2026-10-01T00:00:00Z", "2026-10-10T00:00:00Z");
    let inside = conversion_in(&fake, "2026-10-12T00:00:00Z", "2026-10-20T00:00:00Z");
    let after = conversion_in(&fake, "2026-11-05T00:00:00Z", "2026-11-20T00:00:00Z");
    {
        let mut f = fake.lock().unwrap();
        f.now = at("2026-11-21T10:00:00Z");
        for id in [before, inside, after] {
            f.reverse(id);
        }
    }
    // `reckon sync cake --from 2026-10-10 --to 2026-10-20` on the 28th.
    let w = window((2026, 10, 10), (2026, 10, 20));
    let backfill = session(&fake, &[], w, NOW);
    backfill.result.as_ref().unwrap();
    let end = at("2026-10-21T00:00:00Z");
    let late: Vec<_> = affiliate_support::conversions(&backfill)
        .into_iter()
        .filter(|c| c.occurred_at >= end)
        .map(|c| c.external_id.clone())
        .collect();
    assert!(late.is_empty(), "stored after the window: {late:?}");
    assert_eq!(
        find(&backfill, &inside.to_string()).status,
        ConversionStatus::Reversed
    );
    assert_eq!(
        find(&backfill, &before.to_string()).status,
        ConversionStatus::Reversed,
        "a restatement of an older conversion is still stored"
    );
    let left_out = backfill
        .logs
        .iter()
        .find(|l| {
            l.message
                .contains("changes of conversions after the window left out")
        })
        .expect("the rows left out are logged");
    assert_eq!(left_out.fields["rows"], "1");
    let changes = stream_checkpoints(&backfill, "event_conversion_changes")
        .last()
        .unwrap();
    assert_eq!(changes.watermark, end, "up to the window's end, not now");

    // The scheduled run after it (window ending today) reads every change:
    // the conversion left out arrives, returned.
    let scheduled = session(
        &fake,
        &[&backfill],
        window((2026, 10, 29), (2026, 11, 28)),
        NOW,
    );
    scheduled.result.as_ref().unwrap();
    assert_eq!(
        find(&scheduled, &after.to_string()).status,
        ConversionStatus::Reversed
    );
    let changes = stream_checkpoints(&scheduled, "event_conversion_changes")
        .last()
        .unwrap();
    assert_eq!(changes.watermark, at(NOW));
}

/// The other side of B-M1: on a connector that already runs on schedule, a
/// backfill of older days leaves out a restatement of a conversion after
/// its window that the last scheduled run has not read. Had the backfill
/// moved the changes watermark to its own start, the next scheduled run
/// (whose conversions window no longer holds that conversion) would ask
/// only from the backfill's day and never store the restatement.
#[test]
fn cake_backfill_leaves_the_changes_it_skips_to_the_next_scheduled_run() {
    let fake = autumn(346);
    // A scheduled run on 28 November at noon.
    let scheduled = session(&fake, &[], window((2026, 10, 29), (2026, 11, 28)), NOW);
    scheduled.result.as_ref().unwrap();
    // An hour later a conversion of 25 October is returned: after the
    // backfill's window, and before the next run's.
    let late = conversion_in(&fake, "2026-10-25T00:00:00Z", "2026-10-26T00:00:00Z");
    {
        let mut f = fake.lock().unwrap();
        f.now = at("2026-11-28T13:00:00Z");
        f.reverse(late);
    }
    // A backfill of early October the next evening.
    let backfill = session(
        &fake,
        &[&scheduled],
        window((2026, 10, 1), (2026, 10, 20)),
        "2026-11-29T20:00:00Z",
    );
    backfill.result.as_ref().unwrap();
    assert!(
        !affiliate_support::conversions(&backfill)
            .iter()
            .any(|c| c.external_id == late.to_string()),
        "after the backfill's window"
    );
    let changes = stream_checkpoints(&backfill, "event_conversion_changes")
        .last()
        .unwrap();
    assert_eq!(changes.watermark, at(NOW), "the backfill did not move it");
    // The next scheduled run, on the 30th: its conversions window starts on
    // 31 October, so only the changes stream can bring the return.
    let next = session(
        &fake,
        &[&scheduled, &backfill],
        window((2026, 10, 31), (2026, 11, 30)),
        "2026-11-30T06:00:00Z",
    );
    next.result.as_ref().unwrap();
    assert_eq!(
        find(&next, &late.to_string()).status,
        ConversionStatus::Reversed
    );
}
