//! QA35d "API drift" on Impact: its answers stray from what the reference
//! documents (a missing next-page URI, an empty amount, a timestamp without
//! an offset, an id sent as a float), and the connector must fail naming
//! the page, action and field, or read the value as the same thing, never
//! store a wrong one silently. In-process, against the loopback fake and its
//! drift controls (`ImpactFake::next_page`, `ImpactFake::set_field`).
//! PartnerStack's are in `partnerstack_drift_qa35.rs` (one plugin per test
//! binary: each exports the plugin entry symbol).

mod affiliate_support;

use affiliate_support::{conversions, find, run, window};
use plugin_api::protocol::ErrorKind;
use plugin_api::testing::{open_read, FakeHost, Outcome};
use plugin_api::{Connector, Window};
use reckon_plugin_impact::Impact;
use reckon_tests::fakes::affiliate::{in_process, shared, Shared, Truth};
use reckon_tests::fakes::impact::{ImpactFake, NextPage, Params};
use serde_json::{json, Value};

const IMPACT_SECRETS: &[(&str, &str)] = &[("auth_token", "tok-impact")];

fn impact_settings() -> Value {
    json!({ "account_sid": "IRfakeSID1", "campaign_ids": [1000, 2000], "page_size": 2000 })
}

/// The whole world of `Params::small`.
fn impact_window() -> Window {
    window((2026, 10, 20), (2026, 11, 27))
}

fn impact(fake: &Shared<ImpactFake>) -> Outcome {
    run::<Impact, _>(fake, IMPACT_SECRETS, impact_settings(), impact_window())
}

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

/// The id of the first (newest) action of campaign 1000: on its first page.
fn first_action(fake: &Shared<ImpactFake>) -> (String, u64) {
    let f = fake.lock().unwrap();
    let a = f
        .actions()
        .iter()
        .filter(|a| a.campaign_id == 1000)
        .max_by(|a, b| a.event_date.cmp(&b.event_date).then(b.id.cmp(&a.id)))
        .unwrap();
    (a.id.clone(), a.partner_id)
}

/// QA35d H3: a page whose `@page` < `@numpages` but whose `@nextpageuri` is
/// missing (renamed) or empty ended the stream "ok" after it, with the rest
/// never read and the window marked complete. Now the page fails the run
/// naming stream, campaign, page and what was expected; the pages before it
/// stay committed, nothing of it is, and the window is not complete, so the
/// next run resumes at that page and, once Impact sends the URI again,
/// reads everything.
#[test]
fn impact_page_saying_more_follow_without_a_next_page_uri_fails_and_keeps_the_pages_before() {
    // 4500 actions per campaign at 2000 a page: 3 pages each.
    let world = || ImpactFake::new(Params::small(35, 9_000));

    // The reporter's case: renamed on every page; nothing is stored.
    let mut fake = world();
    fake.next_page = NextPage::Renamed { from: 1 };
    let fake = shared(fake);
    let out = impact(&fake);
    bad_response(
        &out,
        &[
            "stream `actions` campaign 1000 page 1: ",
            "Impact's paging envelope says more pages follow (@page 1, @numpages 3)",
            "@nextpageuri is missing",
            "expected the relative URI of page 2",
        ],
    );
    assert!(out.committed.is_empty() && out.uncommitted.is_empty());
    assert!(out.checkpoints.is_empty(), "{:?}", out.checkpoints);

    // Empty from page 2 on: page 1 is kept, page 2 is not, not complete.
    let mut fake = world();
    fake.next_page = NextPage::Empty { from: 2 };
    let fake = shared(fake);
    let out = impact(&fake);
    bad_response(
        &out,
        &[
            "stream `actions` campaign 1000 page 2: ",
            "(@page 2, @numpages 3)",
            "@nextpageuri is empty",
            "page 3",
        ],
    );
    assert_eq!(out.committed.len(), 2_000);
    assert!(out.uncommitted.is_empty());
    assert_eq!(out.checkpoints.len(), 1);
    let cp = &out.checkpoints[0];
    assert_eq!(cp.state["complete"], json!(false));
    assert!(
        cp.state["next"].as_str().unwrap().ends_with("&Page=2"),
        "{}",
        cp.state
    );

    // The next run resumes at page 2 and, paging fixed, reads the rest.
    fake.lock().unwrap().next_page = NextPage::AsDocumented;
    let handler = in_process(
        fake.clone(),
        Impact::manifest().auth,
        IMPACT_SECRETS,
        &impact_settings(),
    );
    let mut open = open_read("aff", "http://fake", impact_settings(), impact_window());
    open.streams = vec!["actions".into()];
    open.checkpoints.insert("actions".into(), cp.clone());
    let again = FakeHost::handler(handler).run::<Impact>(open);
    again.result.as_ref().unwrap();
    assert!(again.requests[0].url.ends_with("&Page=2"));
    let all: Vec<_> = out.committed.iter().chain(&again.committed).collect();
    let w = impact_window();
    assert_eq!(
        Truth::of_records(all),
        fake.lock().unwrap().truth(w.from, w.to)
    );
}

/// QA35d M1: `Payout` or `Amount` sent as `""` or null silently replaced the
/// stored commission or sale amount with "unknown" in a new revision. Both
/// are on every action (0 when there is none): now the page fails naming
/// the action and the field, and nothing of it is stored.
#[test]
fn impact_empty_or_null_payout_or_amount_fails_naming_the_action_and_field() {
    let world = || shared(ImpactFake::new(Params::small(36, 200)));
    let fake = world();
    let (id, _) = first_action(&fake);
    let before = impact(&fake);
    before.result.as_ref().unwrap();
    assert!(find(&before, &id).commission.is_some());
    assert!(find(&before, &id).sale_amount.is_some());

    for (field, value) in [
        ("Payout", json!("")),
        ("Payout", Value::Null),
        ("Amount", json!("")),
        ("Amount", Value::Null),
    ] {
        let fake = world();
        fake.lock().unwrap().set_field(&id, field, value.clone());
        let out = impact(&fake);
        bad_response(
            &out,
            &[
                "stream `actions` campaign 1000 page 1: ",
                &format!("(Id {id}): field `{field}` is "),
                "Impact sends it on every action (0 when there is none)",
            ],
        );
        assert!(
            conversions(&out).iter().all(|c| c.external_id != id),
            "{field} {value}"
        );
        assert!(out.committed.is_empty(), "{field} {value}");
    }
}

/// QA35d M2: an `EventDate` (or `LockingDate`, `ReferringDate`) without a
/// UTC offset was read as UTC, moving the action by the account's offset.
/// Impact's timestamps carry one; an offset-less one fails the page naming
/// the action and the field.
#[test]
fn impact_timestamp_without_an_offset_fails_naming_the_action_and_field() {
    for field in ["EventDate", "LockingDate", "ReferringDate"] {
        let fake = shared(ImpactFake::new(Params::small(37, 200)));
        let (id, _) = first_action(&fake);
        fake.lock()
            .unwrap()
            .set_field(&id, field, json!("2026-11-03T00:30:00"));
        let out = impact(&fake);
        bad_response(
            &out,
            &[
                "stream `actions` campaign 1000 page 1: ",
                &format!("(Id {id}): field `{field}`: \"2026-11-03T00:30:00\" has no UTC offset"),
            ],
        );
        assert!(out.committed.is_empty(), "{field}");
    }
}

/// QA35d M3: a `MediaPartnerId` drifting from `10003` to `10003.0` re-keyed
/// the claim to a new payee "10003.0". Ids are now the same whichever shape
/// they come in (`CampaignId` too), and an id with a fraction is refused.
#[test]
fn impact_ids_sent_as_whole_floats_are_the_same_ids_and_fractions_are_refused() {
    let fake = shared(ImpactFake::new(Params::small(38, 200)));
    let (id, partner) = first_action(&fake);
    let before = impact(&fake);
    before.result.as_ref().unwrap();
    {
        let mut f = fake.lock().unwrap();
        f.set_field(&id, "MediaPartnerId", json!(partner as f64));
        f.set_field(&id, "CampaignId", json!(1000.0));
    }
    let after = impact(&fake);
    after.result.as_ref().unwrap();
    let (b, a) = (find(&before, &id), find(&after, &id));
    assert_eq!(a.partner_id, partner.to_string());
    assert_eq!(a.partner_id, b.partner_id);
    assert_eq!(a.campaign_id.as_deref(), Some("1000"));
    assert_eq!(a, b, "the same action, read the same");

    fake.lock()
        .unwrap()
        .set_field(&id, "MediaPartnerId", json!(10003.5));
    let out = impact(&fake);
    bad_response(
        &out,
        &[&format!(
            "(Id {id}): field `MediaPartnerId`: 10003.5 has a fraction"
        )],
    );
    assert!(out.committed.is_empty());
}
