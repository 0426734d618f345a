//! QA35d "API drift" on PartnerStack: an embedded transaction's `amount`
//! turning into `""` or null, and ids sent as floats. In-process, against
//! the loopback fake and its drift control (`PartnerStackFake::set_field`).
//! Impact's are in `impact_drift_qa35.rs`.

mod affiliate_support;

use affiliate_support::{find, run_at, window};
use plugin_api::protocol::ErrorKind;
use plugin_api::rust_decimal::Decimal;
use plugin_api::testing::Outcome;
use plugin_api::Window;
use reckon_plugin_partnerstack::PartnerStack;
use reckon_tests::fakes::affiliate::{shared, Shared};
use reckon_tests::fakes::partnerstack::{Params, PartnerStackFake, Reward};
use serde_json::{json, Value};

const SECRETS: &[(&str, &str)] = &[
    ("public_key", "pk_live_fake"),
    ("private_key", "sk_live_fake"),
];

/// Asserts a `BadResponse` whose message holds every one of `parts`.
fn bad_response(out: &Outcome, parts: &[&str]) {
    let err = out.result.as_ref().unwrap_err();
    assert_eq!(err.kind, ErrorKind::BadResponse, "{}", err.message);
    for part in parts {
        assert!(
            err.message.contains(part),
            "{part:?} not in {}",
            err.message
        );
    }
}

fn ps_window() -> Window {
    window((2026, 10, 1), (2026, 11, 27))
}

fn ps(fake: &Shared<PartnerStackFake>) -> Outcome {
    run_at::<PartnerStack, _>(
        "http://fake/api/v2",
        fake,
        SECRETS,
        json!({ "page_size": 100, "review_days": 0 }),
        ps_window(),
    )
}

/// A reward that embeds its transaction whole.
fn embedding_reward(fake: &Shared<PartnerStackFake>) -> Reward {
    let f = fake.lock().unwrap();
    f.rewards().iter().find(|r| r.embed_txn).unwrap().clone()
}

/// QA35d H4: an embedded transaction whose `amount` turned into `""` stored
/// a sale of 0.00 (and a null one fell back to the lookup). A transaction's
/// amount "may be 0 but not null" (reference): both fail the page naming
/// the reward and `transaction.amount`. A transaction embedded with its key
/// only still takes its amount from the transactions list.
#[test]
fn partnerstack_empty_or_null_transaction_amount_fails_naming_the_reward_and_field() {
    let world = || shared(PartnerStackFake::new(Params::small(39, 40)));
    let fake = world();
    let reward = embedding_reward(&fake);
    let before = ps(&fake);
    before.result.as_ref().unwrap();
    assert_eq!(
        find(&before, &reward.key)
            .sale_amount
            .as_ref()
            .unwrap()
            .amount,
        Decimal::new(reward.txn_amount, 2)
    );

    for value in [json!(""), Value::Null] {
        let fake = world();
        fake.lock()
            .unwrap()
            .set_field(&reward.key, "/transaction/amount", value.clone());
        let out = ps(&fake);
        bad_response(
            &out,
            &[
                "stream `rewards` page 1: ",
                &format!("(key {}): field `transaction.amount` is ", reward.key),
                "never empty or null",
            ],
        );
        assert!(out.committed.is_empty(), "{value}");
    }

    // Embedded with its key only: the amount comes from the transactions list.
    let fake = world();
    {
        let mut f = fake.lock().unwrap();
        let key = reward.key.clone();
        let r = f.rewards_mut().iter_mut().find(|r| r.key == key).unwrap();
        r.embed_txn = false;
    }
    let out = ps(&fake);
    out.result.as_ref().unwrap();
    assert_eq!(
        find(&out, &reward.key).sale_amount.as_ref().unwrap().amount,
        Decimal::new(reward.txn_amount, 2)
    );
}

/// QA35d M3 for PartnerStack: its keys are strings, but where one comes as
/// a number (`partner_key` 101, then 101.0) it is the same id.
#[test]
fn partnerstack_ids_sent_as_whole_floats_are_the_same_ids() {
    let fake = shared(PartnerStackFake::new(Params::small(40, 40)));
    let key = embedding_reward(&fake).key;
    let set = |partner: Value, offer: Value, txn: Value| {
        let mut f = fake.lock().unwrap();
        f.set_field(&key, "/partnership/partner_key", partner);
        f.set_field(&key, "/offer/key", offer);
        f.set_field(&key, "/transaction/key", txn);
    };
    set(json!(101), json!(7), json!(5501));
    let before = ps(&fake);
    before.result.as_ref().unwrap();
    set(json!(101.0), json!(7.0), json!(5501.0));
    let after = ps(&fake);
    after.result.as_ref().unwrap();
    let (b, a) = (find(&before, &key), find(&after, &key));
    assert_eq!(a.partner_id, "101");
    assert_eq!(a.campaign_id.as_deref(), Some("7"));
    assert_eq!(a.order_id.as_deref(), Some("5501"));
    assert_eq!(a, b);
}
