//! Impact connector against the Impact fake, in-process (FakeHost bridging to
//! the fake's state machine, with the host's Basic auth emulated).

mod affiliate_support;

use affiliate_support::{assert_reads_la_days, conversion_ids, conversions, find, run, window, LA};
use plugin_api::protocol::ErrorKind;
use plugin_api::rust_decimal::Decimal;
use plugin_api::testing::Outcome;
use plugin_api::{Connector, ConversionStatus, EventType};
use reckon_plugin_impact::Impact;
use reckon_tests::fakes::affiliate::{shared, Shared, Throttle, Truth};
use reckon_tests::fakes::impact::{event_code, ImpactFake, Params};
use serde_json::json;

const SECRETS: &[(&str, &str)] = &[("auth_token", "tok-impact")];

fn settings() -> serde_json::Value {
    json!({ "account_sid": "IRfakeSID1", "campaign_ids": [1000, 2000], "page_size": 2000 })
}

#[test]
fn impact_sync_stores_exactly_the_fakes_ground_truth() {
    let fake = shared(ImpactFake::new(Params::small(7, 9_000)));
    let w = window((2026, 10, 20), (2026, 11, 27));
    let out = run::<Impact, _>(&fake, SECRETS, settings(), w);
    out.result.as_ref().unwrap();
    assert!(out.uncommitted.is_empty());
    let truth = fake.lock().unwrap().truth(w.from, w.to);
    assert_eq!(truth.total.count, 9_000);
    assert_eq!(Truth::of_records(&out.committed), truth);
    // 4500 per campaign at 2000 per page: 3 pages each, all through @nextpageuri.
    assert!(out.checkpoints.len() >= 6, "{}", out.checkpoints.len());
    assert!(
        out.requests
            .iter()
            .filter(|r| r.url.contains("&Page="))
            .count()
            >= 4
    );
}

#[test]
fn impact_status_change_amount_change_and_reversal_become_revisions_of_the_same_key() {
    let fake = shared(ImpactFake::new(Params::small(11, 3_000)));
    let first_w = window((2026, 10, 20), (2026, 11, 27));
    let first = run::<Impact, _>(&fake, SECRETS, settings(), first_w);
    first.result.as_ref().unwrap();

    // Pick: a pending action in the re-pulled window (to approve), another (to
    // change the payout), an approved one in the window and an approved one
    // *before* the second window (both to reverse).
    let second_w = window((2026, 11, 10), (2026, 11, 27));
    let cut = second_w.from.and_hms_opt(0, 0, 0).unwrap().and_utc();
    let (pending, repriced, in_window, old) = {
        let f = fake.lock().unwrap();
        let pick = |state: &str, after: bool, skip: usize| {
            f.actions()
                .iter()
                .filter(|a| {
                    a.state == state && (a.event_date >= cut) == after && a.currency == "USD"
                })
                .nth(skip)
                .unwrap()
                .id
                .clone()
        };
        (
            pick("PENDING", true, 0),
            pick("PENDING", true, 1),
            pick("APPROVED", true, 0),
            pick("APPROVED", false, 0),
        )
    };
    {
        let mut f = fake.lock().unwrap();
        f.now = "2026-11-27T12:00:00Z".parse().unwrap();
        f.approve(&pending);
        f.set_payout(&repriced, Decimal::new(4242, 2));
        f.reverse(&in_window);
        f.reverse(&old);
    }
    let second = run::<Impact, _>(&fake, SECRETS, settings(), second_w);
    second.result.as_ref().unwrap();

    assert_eq!(find(&first, &pending).status, ConversionStatus::Pending);
    assert_eq!(find(&second, &pending).status, ConversionStatus::Approved);
    assert_eq!(
        find(&second, &repriced).commission.as_ref().unwrap().amount,
        Decimal::new(4242, 2)
    );
    assert_eq!(find(&first, &in_window).status, ConversionStatus::Approved);
    assert_eq!(find(&second, &in_window).status, ConversionStatus::Reversed);
    // The old action is outside the second window: it comes back through
    // `/Actions` by last-updated date, under the same key.
    assert_eq!(find(&first, &old).status, ConversionStatus::Approved);
    let old_again = find(&second, &old);
    assert_eq!(old_again.status, ConversionStatus::Reversed);
    assert_eq!(old_again.external_id, find(&first, &old).external_id);

    // Upserting both pulls (last wins) equals the fake's whole truth now.
    let all: Vec<_> = first.committed.iter().chain(&second.committed).collect();
    let truth = fake.lock().unwrap().truth(first_w.from, first_w.to);
    assert_eq!(Truth::of_records(all), truth);
    only_documented_routes(&second);
}

/// Every request of a session is a documented `/Actions` list query (QA M3:
/// the connector fetched changed actions one by one from `/Actions/{Id}`, a
/// route the reference does not have).
fn only_documented_routes(out: &Outcome) {
    assert!(!out.requests.is_empty());
    for r in &out.requests {
        let path = r.url.split('?').next().unwrap();
        assert!(
            path.ends_with("/Advertisers/IRfakeSID1/Actions"),
            "{}",
            r.url
        );
    }
}

/// A first pull of the whole world, then the fake's clock at the end of the
/// second window (11-10..11-27) and the id of a `state` USD action whose event
/// lies *before* that window (skipping `skip` of them).
fn pulled_world(seed: u64) -> (Shared<ImpactFake>, Outcome) {
    let fake = shared(ImpactFake::new(Params::small(seed, 3_000)));
    let first = run::<Impact, _>(
        &fake,
        SECRETS,
        settings(),
        window((2026, 10, 20), (2026, 11, 27)),
    );
    first.result.as_ref().unwrap();
    fake.lock().unwrap().now = "2026-11-27T12:00:00Z".parse().unwrap();
    (fake, first)
}

fn old_action(fake: &Shared<ImpactFake>, state: &str, skip: usize) -> String {
    let cut = "2026-11-10T00:00:00Z"
        .parse::<chrono::DateTime<chrono::Utc>>()
        .unwrap();
    let f = fake.lock().unwrap();
    f.actions()
        .iter()
        .filter(|a| a.state == state && a.event_date < cut && a.currency == "USD")
        .nth(skip)
        .unwrap()
        .id
        .clone()
}

/// QA M3: an action whose event date is older than the re-pulled window and
/// that is modified in the window comes back whole, with its new state and
/// amounts, from `/Actions` by last-updated date.
#[test]
fn impact_old_action_modified_in_the_window_is_re_pulled_with_its_new_state_and_amounts() {
    let (fake, first) = pulled_world(21);
    let (reversed, repriced, untouched) = (
        old_action(&fake, "APPROVED", 0),
        old_action(&fake, "PENDING", 0),
        old_action(&fake, "PENDING", 1),
    );
    {
        let mut f = fake.lock().unwrap();
        f.reverse(&reversed);
        f.set_payout(&repriced, Decimal::new(1234, 2));
    }
    let second = run::<Impact, _>(
        &fake,
        SECRETS,
        settings(),
        window((2026, 11, 10), (2026, 11, 27)),
    );
    second.result.as_ref().unwrap();

    let before = find(&first, &reversed);
    assert_eq!(before.status, ConversionStatus::Approved);
    assert!(before.commission.as_ref().unwrap().amount > Decimal::ZERO);
    let after = find(&second, &reversed);
    assert_eq!(after.status, ConversionStatus::Reversed);
    assert_eq!(after.commission.as_ref().unwrap().amount, Decimal::ZERO);
    assert_eq!(after.sale_amount.as_ref().unwrap().amount, Decimal::ZERO);
    assert_eq!(after.occurred_at, before.occurred_at);
    let after = find(&second, &repriced);
    assert_eq!(after.status, ConversionStatus::Pending);
    assert_eq!(
        after.commission.as_ref().unwrap().amount,
        Decimal::new(1234, 2)
    );
    // Only what changed comes back from before the window, each once.
    assert!(conversions(&second)
        .iter()
        .all(|c| c.external_id != untouched));
    for id in [&reversed, &repriced] {
        let n = conversions(&second)
            .iter()
            .filter(|c| c.external_id == *id)
            .count();
        assert_eq!(n, 1, "{id}");
    }
    only_documented_routes(&second);
    assert!(second
        .requests
        .iter()
        .any(|r| r.url.contains("StartDate=2026-11-10T")));
}

/// QA L2: PENDING → APPROVED at the locking date is no update in Impact's
/// sense, so an old action that locks in the window is only found by
/// `/Actions` by locking date; it comes back approved.
#[test]
fn impact_old_pending_action_that_locks_in_the_window_is_re_pulled_as_approved() {
    let (fake, first) = pulled_world(22);
    let (locks, untouched) = (
        old_action(&fake, "PENDING", 0),
        old_action(&fake, "PENDING", 1),
    );
    fake.lock().unwrap().approve(&locks);
    let second = run::<Impact, _>(
        &fake,
        SECRETS,
        settings(),
        window((2026, 11, 10), (2026, 11, 27)),
    );
    second.result.as_ref().unwrap();

    assert_eq!(find(&first, &locks).status, ConversionStatus::Pending);
    let after = find(&second, &locks);
    assert_eq!(after.status, ConversionStatus::Approved);
    assert_eq!(
        after.locked_at.unwrap().to_rfc3339(),
        "2026-11-27T12:00:00+00:00"
    );
    assert_eq!(after.commission, find(&first, &locks).commission);
    assert!(conversions(&second)
        .iter()
        .all(|c| c.external_id != untouched));
    only_documented_routes(&second);
    assert!(second
        .requests
        .iter()
        .any(|r| r.url.contains("LockingDateStart=2026-11-10T")));
    // Upserting both pulls (last wins) equals the fake's whole truth now.
    let all: Vec<_> = first.committed.iter().chain(&second.committed).collect();
    let f = fake.lock().unwrap();
    assert_eq!(
        Truth::of_records(all),
        f.truth(f.params().from, f.params().to)
    );
}

/// QA L1: `EventCode` decides the event type when it names one; a
/// brand-defined code that does not (`EVT-22`) falls back to the tracker
/// name instead of giving `Other`.
#[test]
fn impact_event_code_without_a_type_word_falls_back_to_the_tracker_name() {
    let fake = shared(ImpactFake::new(Params::small(9, 600)));
    let out = run::<Impact, _>(
        &fake,
        SECRETS,
        settings(),
        window((2026, 10, 20), (2026, 11, 27)),
    );
    out.result.as_ref().unwrap();
    let f = fake.lock().unwrap();
    let mut codes = std::collections::BTreeMap::new();
    for a in f.actions() {
        let want = match a.tracker {
            "Online Sale" => EventType::Sale,
            "Lead" => EventType::Lead,
            "Sign Up" => EventType::Signup,
            other => panic!("tracker {other}"),
        };
        assert_eq!(
            find(&out, &a.id).event_type,
            want,
            "{} {:?}",
            a.tracker,
            event_code(a)
        );
        *codes.entry(event_code(a)).or_insert(0) += 1;
    }
    // The fake sent all three kinds of code.
    for code in ["", "online_purchase", "EVT-22"] {
        assert!(codes.get(code).copied().unwrap_or(0) > 10, "{codes:?}");
    }
}

#[test]
fn impact_429s_mid_sync_slow_down_and_the_sync_completes() {
    let fake = shared(ImpactFake::new(Params::small(3, 5_000)));
    fake.lock().unwrap().throttle = Throttle::new(2, 3);
    fake.lock().unwrap().reset_secs = 20;
    let w = window((2026, 10, 20), (2026, 11, 27));
    let out = run::<Impact, _>(&fake, SECRETS, settings(), w);
    out.result.as_ref().unwrap();
    assert_eq!(fake.lock().unwrap().throttle.refused, 3);
    assert_eq!(out.sleeps.len(), 3, "one pause per 429");
    assert!(out.sleeps.windows(2).all(|s| s[1] > s[0]));
    assert_eq!(
        Truth::of_records(&out.committed),
        fake.lock().unwrap().truth(w.from, w.to)
    );
}

/// The documented rate-limit headers: `X-RateLimit-Remaining` reaching 0
/// makes the connector pause *before* its next request until the window
/// resets, and a reset sent as an epoch (the docs' example) is read against
/// the answer's `Date` (connector QA 2026-11-29: the fake never counted down
/// to 0 nor sent an epoch, so neither path ran against it).
#[test]
fn impact_pauses_when_the_window_runs_out_and_reads_an_epoch_reset() {
    let fake = shared(ImpactFake::new(Params::small(3, 5_000)));
    {
        let mut f = fake.lock().unwrap();
        f.limit_per_window = 3;
        f.epoch_reset = true;
    }
    let w = window((2026, 10, 20), (2026, 11, 27));
    let out = run::<Impact, _>(&fake, SECRETS, settings(), w);
    out.result.as_ref().unwrap();
    // Requests 2, 5, 8, ... leave 0: a pause of the hour to the reset before
    // the next request (the fake's clock stands still, so each reset is an
    // hour ahead). The zero-length timers that refresh the plugin's clock are
    // left out. (The waits were once counted from the first pause, which
    // matched `(requests - 1) / 3` only by chance for 6 requests.)
    let mut waits = Vec::new();
    let mut at = out.request_times[0];
    for s in &out.sleeps {
        if *s > at {
            waits.push((*s - at).num_seconds());
            at = *s;
        }
    }
    let requests = out.requests.len() as i64;
    assert_eq!(
        waits,
        vec![3600; (requests / 3) as usize],
        "{requests} requests"
    );
    assert_eq!(
        Truth::of_records(&out.committed),
        fake.lock().unwrap().truth(w.from, w.to)
    );
}

#[test]
fn impact_malformed_action_is_reported_with_its_id_and_field_and_its_page_is_not_committed() {
    let fake = shared(ImpactFake::new(Params::small(5, 5_000)));
    let w = window((2026, 10, 20), (2026, 11, 27));
    // The 2101st action of campaign 1000 sits on its second page.
    let bad = {
        let f = fake.lock().unwrap();
        let mut rows: Vec<_> = f
            .actions()
            .iter()
            .filter(|a| a.campaign_id == 1000)
            .collect();
        rows.sort_by(|a, b| b.event_date.cmp(&a.event_date).then(a.id.cmp(&b.id)));
        rows[2_100].id.clone()
    };
    fake.lock().unwrap().corrupt(&bad, "Payout");
    let out = run::<Impact, _>(&fake, SECRETS, settings(), w);
    let err = out.result.unwrap_err();
    assert_eq!(err.kind, ErrorKind::BadResponse);
    for part in [
        format!("Id {bad}"),
        "field `Payout`".into(),
        "campaign 1000 page 2".into(),
    ] {
        assert!(err.message.contains(&part), "{part} not in {}", err.message);
    }
    // Exactly page 1 (2000 rows) is committed; none of page 2.
    assert_eq!(out.committed.len(), 2_000);
    assert!(out.committed.iter().all(|r| r.key() != bad));
    assert!(out.uncommitted.is_empty());
}

#[test]
fn impact_wrong_token_is_an_auth_error_and_nothing_is_committed() {
    let fake = shared(ImpactFake::new(Params::small(1, 100)));
    let out = run::<Impact, _>(
        &fake,
        &[("auth_token", "wrong")],
        settings(),
        window((2026, 11, 1), (2026, 11, 2)),
    );
    assert_eq!(out.result.unwrap_err().kind, ErrorKind::Auth);
    assert!(out.committed.is_empty());
}

/// Runs `reckon sync impact --check`'s session against the fake.
fn check(fake: &Shared<ImpactFake>, settings: serde_json::Value) -> Outcome {
    use plugin_api::testing::{open_check, FakeHost};
    let handler = reckon_tests::fakes::affiliate::in_process(
        fake.clone(),
        Impact::manifest().auth,
        SECRETS,
        &settings,
    );
    FakeHost::handler(handler).run::<Impact>(open_check("aff", "http://fake", settings))
}

/// QA30 L1: the check read only the first page of `/Campaigns` and called a
/// campaign listed on page 2 "not visible to account".
#[test]
fn impact_check_finds_a_campaign_listed_on_the_second_page() {
    let mut fake = ImpactFake::new(Params {
        campaigns: vec![1000, 2000, 4242],
        ..Params::small(3, 10)
    });
    fake.campaigns_page_size = 2;
    let fake = shared(fake);
    let only = |id: u64| json!({ "account_sid": "IRfakeSID1", "campaign_ids": [id] });

    let out = check(&fake, only(4242));
    out.result.unwrap();
    let urls: Vec<&str> = out.requests.iter().map(|r| r.url.as_str()).collect();
    assert_eq!(
        urls,
        [
            "http://fake/Advertisers/IRfakeSID1/Campaigns",
            "http://fake/Advertisers/IRfakeSID1/Campaigns?Page=2",
        ]
    );
    // A campaign on the first page needs no second request.
    let out = check(&fake, only(1000));
    out.result.unwrap();
    assert_eq!(out.requests.len(), 1);
    // One on no page is refused after the last page.
    let out = check(&fake, only(777));
    let err = out.result.unwrap_err();
    assert_eq!(err.kind, ErrorKind::Config);
    assert!(
        err.message
            .contains("campaign 777 is not visible to account IRfakeSID1"),
        "{}",
        err.message
    );
    assert_eq!(out.requests.len(), 2);
}

/// Regression: a campaign with more than 10 × `page_size` actions in one
/// window failed the whole run with Impact's "Too many results" (ops had to
/// lower `window_days` by hand). The plugin now reads the refused range in
/// halves.
#[test]
fn impact_campaign_over_ten_times_page_size_in_one_window_syncs_fully_in_halves() {
    let fake = shared(ImpactFake::new(Params {
        campaigns: vec![1000],
        ..Params::small(8, 25_000)
    }));
    let w = window((2026, 10, 20), (2026, 11, 27));
    let settings =
        json!({ "account_sid": "IRfakeSID1", "campaign_ids": [1000], "page_size": 2000 });
    let out = run::<Impact, _>(&fake, SECRETS, settings, w);
    out.result.as_ref().unwrap();
    assert!(out.uncommitted.is_empty());
    // Every action exactly once: 25,000 > 10 × 2000 in the 39-day window.
    assert_eq!(out.committed.len(), 25_000);
    let truth = fake.lock().unwrap().truth(w.from, w.to);
    assert_eq!(truth.total.count, 25_000);
    assert_eq!(Truth::of_records(&out.committed), truth);
    // The whole window was asked for once (refused), then its two halves.
    let firsts: Vec<_> = out
        .requests
        .iter()
        .filter(|r| r.url.contains("ActionDateStart=") && !r.url.contains("&Page="))
        .map(|r| r.url.clone())
        .collect();
    assert_eq!(firsts.len(), 3, "{firsts:#?}");
    // Each range ends at the midnight after its last day.
    assert!(
        firsts[0].contains("ActionDateStart=2026-10-20T")
            && firsts[0].contains("ActionDateEnd=2026-11-28T")
    );
    assert!(
        firsts[1].contains("ActionDateStart=2026-10-20T")
            && firsts[1].contains("ActionDateEnd=2026-11-09T")
    );
    assert!(
        firsts[2].contains("ActionDateStart=2026-11-09T")
            && firsts[2].contains("ActionDateEnd=2026-11-28T")
    );
    let last = out
        .checkpoints
        .iter()
        .rfind(|c| c.stream == "actions")
        .unwrap();
    assert_eq!(last.state["complete"], json!(true));
}

/// QA20 F2: a connector in Los Angeles reads Los Angeles days: a one-day
/// sync returns exactly the actions from that day's midnight there to the
/// next (07:00Z to 07:00Z), not the UTC day (which it did: two actions of
/// the day before in, two of the day's last hours out); also on 1 November,
/// when clocks go back and the day lasts 25 hours.
#[test]
fn impact_reads_the_days_of_the_connectors_timezone() {
    let fake = shared(ImpactFake::new(Params::small(31, 3_000)));
    assert_reads_la_days(
        &[(2026, 10, 25), (2026, 11, 1)],
        41,
        |w| {
            let mut open = plugin_api::testing::open_read("aff", "http://fake", settings(), w);
            open.timezone = Some(LA.into());
            open.streams = vec!["actions".into()];
            let handler = reckon_tests::fakes::affiliate::in_process(
                fake.clone(),
                Impact::manifest().auth,
                SECRETS,
                &settings(),
            );
            let out = plugin_api::testing::FakeHost::handler(handler).run::<Impact>(open);
            out.result.as_ref().unwrap();
            conversion_ids(&out)
        },
        |s, e| {
            let f = fake.lock().unwrap();
            f.actions()
                .iter()
                .filter(|a| s <= a.event_date && a.event_date < e)
                .map(|a| a.id.clone())
                .collect()
        },
    );
}

/// QA20 F9: `DeltaPayout` is the change since tracking, not the payout; the
/// stored commission is `Payout`.
#[test]
fn impact_commission_is_the_payout_not_the_delta() {
    let (fake, _) = pulled_world(23);
    let id = old_action(&fake, "PENDING", 0);
    let (before, campaign) = {
        let f = fake.lock().unwrap();
        let a = f.actions().iter().find(|a| a.id == id).unwrap();
        (a.payout, a.campaign_id)
    };
    fake.lock()
        .unwrap()
        .set_payout(&id, before + Decimal::new(500, 2));
    let out = run::<Impact, _>(
        &fake,
        SECRETS,
        settings(),
        window((2026, 11, 10), (2026, 11, 27)),
    );
    out.result.as_ref().unwrap();
    assert_eq!(
        find(&out, &id).commission.as_ref().unwrap().amount,
        before + Decimal::new(500, 2)
    );
    // What the fake served for it: the delta and the tracked payout.
    let mut handler = reckon_tests::fakes::affiliate::in_process(
        fake.clone(),
        Impact::manifest().auth,
        SECRETS,
        &settings(),
    );
    let reply = handler(&plugin_api::protocol::HttpRequest {
        id: 1,
        method: "GET".into(),
        url: format!("/Advertisers/IRfakeSID1/Actions?CampaignId={campaign}&StartDate=2026-11-27T00:00:00Z&EndDate=2026-11-28T00:00:00Z&PageSize=2000"),
        headers: Default::default(),
        body: None,
        idempotent: true,
        label: String::new(),
    });
    let body: serde_json::Value = serde_json::from_slice(&reply.body).unwrap();
    let row = body["Actions"]
        .as_array()
        .unwrap()
        .iter()
        .find(|a| a["Id"] == id.as_str())
        .unwrap_or_else(|| panic!("{id} not updated on 11-27: {body}"));
    let dec = |v: &serde_json::Value| {
        let text = v.as_str().map_or_else(|| v.to_string(), str::to_owned);
        text.parse::<Decimal>().unwrap()
    };
    assert_eq!(dec(&row["DeltaPayout"]), Decimal::new(500, 2));
    assert_eq!(dec(&row["IntendedPayout"]), before);
    assert_eq!(dec(&row["Payout"]), before + Decimal::new(500, 2));
    assert_eq!(dec(&row["DeltaAmount"]), Decimal::ZERO);
}
