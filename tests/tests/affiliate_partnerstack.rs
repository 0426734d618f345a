//! PartnerStack connector against the PartnerStack fake, in-process (FakeHost
//! bridging to the fake's state machine, with the host's Basic auth emulated).

mod affiliate_support;

use affiliate_support::{find, run_at, window};
use plugin_api::protocol::ErrorKind;
use plugin_api::rust_decimal::Decimal;
use plugin_api::ConversionStatus;
use reckon_plugin_partnerstack::PartnerStack;
use reckon_tests::fakes::affiliate::{shared, Shared, Throttle, Truth};
use reckon_tests::fakes::partnerstack::{Params, PartnerStackFake};
use serde_json::json;

const SECRETS: &[(&str, &str)] = &[
    ("public_key", "pk_live_fake"),
    ("private_key", "sk_live_fake"),
];
const BASE: &str = "http://fake/api/v2";

fn run(fake: &Shared<PartnerStackFake>, w: plugin_api::Window) -> plugin_api::testing::Outcome {
    run_at::<PartnerStack, _>(BASE, fake, SECRETS, json!({ "page_size": 100 }), w)
}

#[test]
fn partnerstack_sync_stores_exactly_the_fakes_ground_truth() {
    let fake = shared(PartnerStackFake::new(Params::small(41, 3_000)));
    let w = window((2026, 10, 1), (2026, 11, 27));
    let out = run(&fake, w);
    out.result.as_ref().unwrap();
    let truth = fake.lock().unwrap().truth(w.from, w.to);
    assert_eq!(truth.total.count, 3_000);
    assert_eq!(Truth::of_records(&out.committed), truth);
    assert_eq!(out.checkpoints.len(), 30);
    // Rewards that embed only their transaction's key got the sale amount
    // from the transactions list.
    let key_only = fake
        .lock()
        .unwrap()
        .rewards()
        .iter()
        .find(|r| !r.embed_txn)
        .unwrap()
        .clone();
    assert_eq!(
        find(&out, &key_only.key)
            .sale_amount
            .as_ref()
            .unwrap()
            .amount,
        Decimal::new(key_only.txn_amount, 2)
    );
}

#[test]
fn partnerstack_review_changes_and_a_refund_become_revisions_of_the_same_key() {
    let fake = shared(PartnerStackFake::new(Params::small(42, 1_000)));
    let w = window((2026, 10, 1), (2026, 11, 27));
    let first = run(&fake, w);
    first.result.as_ref().unwrap();
    let (new, approved, approved2) = {
        let f = fake.lock().unwrap();
        let pick = |s: &str, n: usize| {
            f.rewards()
                .iter()
                .filter(|r| r.status == s)
                .nth(n)
                .unwrap()
                .key
                .clone()
        };
        (pick("new", 0), pick("approved", 0), pick("approved", 1))
    };
    {
        let mut f = fake.lock().unwrap();
        f.set_status(&new, "approved");
        f.set_amount(&new, 777);
        f.refund(&approved);
        f.set_status(&approved2, "declined");
    }
    let second = run(&fake, w);
    second.result.as_ref().unwrap();
    assert_eq!(find(&first, &new).status, ConversionStatus::Pending);
    let n2 = find(&second, &new);
    assert_eq!(n2.status, ConversionStatus::Approved);
    assert_eq!(n2.commission.as_ref().unwrap().amount, Decimal::new(777, 2));
    assert!(n2.status_changed_at > find(&first, &new).status_changed_at);
    assert_eq!(find(&first, &approved).status, ConversionStatus::Approved);
    assert_eq!(find(&second, &approved).status, ConversionStatus::Reversed);
    assert_eq!(find(&second, &approved2).status, ConversionStatus::Rejected);
    let all: Vec<_> = first.committed.iter().chain(&second.committed).collect();
    assert_eq!(
        Truth::of_records(all),
        fake.lock().unwrap().truth(w.from, w.to)
    );
}

#[test]
fn partnerstack_429s_mid_sync_slow_down_and_the_sync_completes() {
    let fake = shared(PartnerStackFake::new(Params::small(43, 1_500)));
    fake.lock().unwrap().throttle = Throttle::new(20, 3);
    let w = window((2026, 10, 1), (2026, 11, 27));
    let out = run(&fake, w);
    out.result.as_ref().unwrap();
    assert_eq!(fake.lock().unwrap().throttle.refused, 3);
    assert_eq!(out.sleeps.len(), 3);
    assert_eq!(
        Truth::of_records(&out.committed),
        fake.lock().unwrap().truth(w.from, w.to)
    );
}

#[test]
fn partnerstack_malformed_reward_is_reported_with_its_key_and_field_and_its_page_is_not_committed()
{
    let fake = shared(PartnerStackFake::new(Params::small(44, 1_000)));
    let w = window((2026, 10, 1), (2026, 11, 27));
    // Newest first; the 450th reward is on page 5 of 100.
    let bad = {
        let f = fake.lock().unwrap();
        let mut rows: Vec<_> = f.rewards().iter().collect();
        rows.sort_by(|a, b| b.created_at.cmp(&a.created_at).then(b.key.cmp(&a.key)));
        rows[450].key.clone()
    };
    fake.lock().unwrap().corrupt(&bad, "amount");
    let out = run(&fake, w);
    let err = out.result.unwrap_err();
    assert_eq!(err.kind, ErrorKind::BadResponse);
    for part in [
        format!("key {bad}"),
        "field `amount`".into(),
        "page 5".into(),
    ] {
        assert!(err.message.contains(&part), "{part} not in {}", err.message);
    }
    assert_eq!(out.committed.len(), 400);
    assert!(out.uncommitted.is_empty());
}

#[test]
fn partnerstack_wrong_keys_are_an_auth_error() {
    let fake = shared(PartnerStackFake::new(Params::small(1, 10)));
    let out = run_at::<PartnerStack, _>(
        BASE,
        &fake,
        &[("public_key", "pk_live_fake"), ("private_key", "wrong")],
        json!({}),
        window((2026, 11, 1), (2026, 11, 2)),
    );
    assert_eq!(out.result.unwrap_err().kind, ErrorKind::Auth);
}
