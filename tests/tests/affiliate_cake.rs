//! CAKE connector against the CAKE fake, in-process (FakeHost bridging to the
//! fake's state machine, with the host's `api_key` query parameter emulated).

mod affiliate_support;

use affiliate_support::{find, run, window};
use plugin_api::protocol::ErrorKind;
use plugin_api::rust_decimal::Decimal;
use plugin_api::ConversionStatus;
use reckon_plugin_cake::Cake;
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
