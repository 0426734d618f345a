//! Everflow connector against the Everflow fake, in-process (FakeHost bridging
//! to the fake's state machine, with the host's API-key header emulated).

mod affiliate_support;

use affiliate_support::{assert_reads_la_days, conversion_ids, find, run, run_in, window, LA};
use plugin_api::protocol::ErrorKind;
use plugin_api::rust_decimal::Decimal;
use plugin_api::ConversionStatus;
use reckon_plugin_everflow::Everflow;
use reckon_tests::fakes::affiliate::{shared, Throttle, Truth};
use reckon_tests::fakes::everflow::{EverflowFake, Params};
use serde_json::json;

const SECRETS: &[(&str, &str)] = &[("api_key", "ef-network-key")];

fn settings() -> serde_json::Value {
    json!({ "page_size": 500 })
}

#[test]
fn everflow_sync_stores_exactly_the_fakes_ground_truth() {
    let fake = shared(EverflowFake::new(Params::small(21, 6_000)));
    let w = window((2026, 10, 1), (2026, 11, 27));
    let out = run::<Everflow, _>(&fake, SECRETS, settings(), w);
    out.result.as_ref().unwrap();
    let truth = fake.lock().unwrap().truth(w.from, w.to);
    assert_eq!(truth.total.count, 6_000);
    assert_eq!(Truth::of_records(&out.committed), truth);
    assert_eq!(out.checkpoints.len(), 12);
    // Everflow's click ids (`transaction_id`, one per click) become click
    // ids, and event rows (asked for with `show_events`) arrive as events.
    let f = fake.lock().unwrap();
    let stored = affiliate_support::conversions(&out);
    let events = stored
        .iter()
        .filter(|c| c.event_type == plugin_api::EventType::Other)
        .count();
    assert_eq!(
        events,
        f.rows().iter().filter(|r| r.event.is_some()).count()
    );
    assert_eq!(events, 600);
    for row in f.rows() {
        let c = find(&out, &row.id);
        assert_eq!(c.click_id.as_deref(), Some(row.click_id.as_str()));
        assert_eq!(c.clicked_at, Some(row.clicked_at));
    }
}

/// Regression (QA M2): the fake sent `is_event`/`is_scrub` only as JSON
/// bools, hiding that the plugin read `1` as `false` (a scrub stored as a
/// reversal, an upsell as a sale). It now sends bools, `1`/`0` and
/// `"1"`/`"0"` by row; every row keeps its status and event type.
#[test]
fn everflow_flags_sent_as_numbers_or_strings_keep_scrubs_and_events_apart() {
    let fake = shared(EverflowFake::new(Params::small(22, 1_500)));
    let w = window((2026, 10, 1), (2026, 11, 27));
    let out = run::<Everflow, _>(&fake, SECRETS, settings(), w);
    out.result.as_ref().unwrap();
    let f = fake.lock().unwrap();
    let mut shapes = std::collections::BTreeSet::new();
    for row in f.rows() {
        let c = find(&out, &row.id);
        assert_eq!(c.status, EverflowFake::canonical(row), "{}", row.id);
        let event = row.event.is_some();
        assert_eq!(
            c.event_type == plugin_api::EventType::Other,
            event,
            "{}",
            row.id
        );
        if row.is_scrub || event {
            shapes.insert(row.id.bytes().last().unwrap() % 3);
        }
    }
    assert_eq!(
        shapes.len(),
        3,
        "bool, number and string flags were all sent"
    );
    assert!(f.rows().iter().any(|r| r.is_scrub));
}

#[test]
fn everflow_status_change_amount_change_and_reversal_become_revisions() {
    let fake = shared(EverflowFake::new(Params::small(22, 2_000)));
    let w = window((2026, 10, 1), (2026, 11, 27));
    let first = run::<Everflow, _>(&fake, SECRETS, settings(), w);
    first.result.as_ref().unwrap();
    let (pending, approved) = {
        let f = fake.lock().unwrap();
        let pick = |s: &str, n: usize| {
            f.rows()
                .iter()
                .filter(|r| r.status == s)
                .nth(n)
                .unwrap()
                .id
                .clone()
        };
        (pick("pending", 0), pick("approved", 0))
    };
    {
        let mut f = fake.lock().unwrap();
        f.set_status(&pending, "approved");
        f.set_payout(&pending, Decimal::new(999, 2));
        f.reverse(&approved);
    }
    let second = run::<Everflow, _>(&fake, SECRETS, settings(), w);
    second.result.as_ref().unwrap();
    assert_eq!(find(&first, &pending).status, ConversionStatus::Pending);
    let p2 = find(&second, &pending);
    assert_eq!(p2.status, ConversionStatus::Approved);
    assert_eq!(p2.commission.as_ref().unwrap().amount, Decimal::new(999, 2));
    assert_eq!(find(&first, &approved).status, ConversionStatus::Approved);
    assert_eq!(find(&second, &approved).status, ConversionStatus::Reversed);
    let truth = fake.lock().unwrap().truth(w.from, w.to);
    let all: Vec<_> = first.committed.iter().chain(&second.committed).collect();
    assert_eq!(Truth::of_records(all), truth);
}

/// Regression (money from JSON numbers): Everflow sends amounts as JSON
/// numbers; one with more than 15 significant digits was read through `f64`
/// and stored rounded (`12345678901234567.89` as `12345678901234568`). It is
/// now stored exactly as the literal the network sent (below 10^15, the
/// largest amount stored: 19 significant digits here).
#[test]
fn everflow_amount_with_many_digits_is_stored_exactly() {
    let fake = shared(EverflowFake::new(Params::small(24, 200)));
    let w = window((2026, 10, 1), (2026, 11, 27));
    let exact: Decimal = "123456789012345.6789".parse().unwrap();
    let id = fake.lock().unwrap().rows()[7].id.clone();
    fake.lock().unwrap().set_payout(&id, exact);
    let out = run::<Everflow, _>(&fake, SECRETS, settings(), w);
    out.result.as_ref().unwrap();
    let stored = find(&out, &id).commission.as_ref().unwrap().amount;
    assert_eq!(stored, exact);
    assert_eq!(stored.to_string(), "123456789012345.6789");
}

#[test]
fn everflow_429s_mid_sync_slow_down_and_the_sync_completes() {
    let fake = shared(EverflowFake::new(Params::small(23, 3_000)));
    fake.lock().unwrap().throttle = Throttle::new(2, 2);
    let w = window((2026, 10, 1), (2026, 11, 27));
    let out = run::<Everflow, _>(&fake, SECRETS, settings(), w);
    out.result.as_ref().unwrap();
    assert_eq!(fake.lock().unwrap().throttle.refused, 2);
    assert_eq!(out.sleeps.len(), 2);
    assert_eq!(
        Truth::of_records(&out.committed),
        fake.lock().unwrap().truth(w.from, w.to)
    );
}

#[test]
fn everflow_malformed_row_is_reported_with_its_id_and_field_and_its_page_is_not_committed() {
    let fake = shared(EverflowFake::new(Params::small(24, 2_000)));
    let w = window((2026, 10, 1), (2026, 11, 27));
    // Rows come newest first; the 1200th sits on page 3 of 500.
    let bad = {
        let f = fake.lock().unwrap();
        let mut rows: Vec<_> = f.rows().iter().collect();
        rows.sort_by(|a, b| b.at.cmp(&a.at).then(a.id.cmp(&b.id)));
        rows[1_200].id.clone()
    };
    fake.lock().unwrap().corrupt(&bad, "payout");
    let out = run::<Everflow, _>(&fake, SECRETS, settings(), w);
    let err = out.result.unwrap_err();
    assert_eq!(err.kind, ErrorKind::BadResponse);
    for part in [
        format!("conversion_id {bad}"),
        "field `payout`".into(),
        "page 3".into(),
    ] {
        assert!(err.message.contains(&part), "{part} not in {}", err.message);
    }
    assert_eq!(out.committed.len(), 1_000);
    assert!(out.uncommitted.is_empty());
}

#[test]
fn everflow_wrong_key_is_an_auth_error() {
    let fake = shared(EverflowFake::new(Params::small(1, 10)));
    let out = run::<Everflow, _>(
        &fake,
        &[("api_key", "nope")],
        settings(),
        window((2026, 11, 1), (2026, 11, 2)),
    );
    assert_eq!(out.result.unwrap_err().kind, ErrorKind::Auth);
}

/// QA20 F2: with `timezone` unset, a connector in Los Angeles reads Los
/// Angeles days (the report in that zone): exactly the conversions from that
/// day's midnight there to the next (UTC days before the fix), also on 1
/// November (25 hours).
#[test]
fn everflow_reads_the_days_of_the_connectors_timezone() {
    let fake = shared(EverflowFake::new(Params::small(29, 6_000)));
    assert_reads_la_days(
        &[(2026, 10, 14), (2026, 11, 1)],
        41,
        |w| {
            let out = run_in::<Everflow, _>(LA, "http://fake", &fake, SECRETS, settings(), w);
            out.result.as_ref().unwrap();
            conversion_ids(&out)
        },
        |s, e| {
            let f = fake.lock().unwrap();
            f.rows()
                .iter()
                .filter(|r| s <= r.at && r.at < e)
                .map(|r| r.id.clone())
                .collect()
        },
    );
}

/// QA20 F8: an affiliate's key reads `/v1/meta/timezones` like any key, but
/// fails the check on the network's conversions, saying why.
#[test]
fn everflow_check_refuses_a_key_of_another_family() {
    use plugin_api::testing::{open_check, FakeHost};
    use plugin_api::Connector;
    use reckon_tests::fakes::affiliate::in_process;
    let fake = shared(EverflowFake::new(Params::small(29, 100)));
    let check = |key: &str| {
        let handler = in_process(
            fake.clone(),
            Everflow::manifest().auth,
            &[("api_key", key)],
            &settings(),
        );
        FakeHost::handler(handler).run::<Everflow>(open_check("aff", "http://fake", settings()))
    };
    check("ef-network-key").result.unwrap();
    let out = check("ef-affiliate-key");
    assert_eq!(out.requests.len(), 2);
    let err = out.result.unwrap_err();
    assert_eq!(err.kind, ErrorKind::Auth);
    assert!(
        err.message
            .contains("settings.api_key is not a network API key"),
        "{}",
        err.message
    );
}
