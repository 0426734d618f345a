//! PartnerStack connector against the PartnerStack fake, in-process (FakeHost
//! bridging to the fake's state machine, with the host's Basic auth emulated),
//! and its review of older rewards through the real daemon (`reckon sync`
//! with the plugin in a `reckon plugin-host` child; needs
//! `cargo build -p reckon -p reckon-plugin-partnerstack` first).

mod affiliate_support;

use affiliate_support::{assert_reads_la_days, conversion_ids, find, run_at, run_in, window, LA};
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
    let pages = |stream: &str| {
        out.checkpoints
            .iter()
            .filter(|c| c.stream == stream)
            .count()
    };
    assert_eq!(pages("rewards"), 30);
    // A first run: nothing stored before the window, nothing to review.
    assert_eq!(pages("rewards_review"), 1);
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

/// Regression (QA M6): the reference's Reward has no `currency`, yet the
/// fake put one on every reward, hiding that a reward's currency could fall
/// back to `default_currency` without a word. The fake now sends it on every
/// third reward only (else on the transaction); a reward whose currency
/// nothing names (its key-only transaction created before the window) is
/// stored in the default currency and reported once, with a count, naming
/// the setting.
#[test]
fn partnerstack_reward_currency_comes_from_its_transaction_and_a_default_is_reported() {
    let fake = shared(PartnerStackFake::new(Params::small(43, 900)));
    let w = window((2026, 10, 1), (2026, 11, 27));
    let settings = json!({ "page_size": 100, "review_days": 0 });
    let out = run_at::<PartnerStack, _>(BASE, &fake, SECRETS, settings.clone(), w);
    out.result.as_ref().unwrap();
    let warned = |out: &plugin_api::testing::Outcome| {
        out.logs
            .iter()
            .filter(|l| l.message.contains("default currency"))
            .cloned()
            .collect::<Vec<_>>()
    };
    {
        let f = fake.lock().unwrap();
        for r in f.rewards() {
            let c = find(&out, &r.key);
            assert_eq!(
                c.commission.as_ref().unwrap().currency,
                r.currency,
                "{}",
                r.key
            );
        }
        let without = |cur: &str| {
            f.rewards()
                .iter()
                .filter(|r| !r.currency_on_reward && r.currency == cur)
                .count()
        };
        assert!(without("EUR") > 0 && without("USD") > 0);
    }
    assert!(warned(&out).is_empty(), "{:?}", warned(&out));

    // A EUR reward naming only its transaction's key, the transaction
    // created a month before the window: nothing names its currency.
    let key = {
        let mut f = fake.lock().unwrap();
        let key = f
            .rewards()
            .iter()
            .find(|r| r.currency == "EUR" && !r.currency_on_reward && !r.embed_txn)
            .unwrap()
            .key
            .clone();
        let r = f.rewards_mut().iter_mut().find(|r| r.key == key).unwrap();
        r.txn_created_at = Some("2026-09-01T12:00:00Z".parse().unwrap());
        key
    };
    let out = run_at::<PartnerStack, _>(BASE, &fake, SECRETS, settings, w);
    out.result.as_ref().unwrap();
    let c = find(&out, &key);
    assert_eq!(c.commission.as_ref().unwrap().currency, "USD");
    assert!(c.sale_amount.is_none());
    let w = warned(&out);
    assert_eq!(w.len(), 1, "once per session: {w:?}");
    assert_eq!(w[0].fields["count"], "1");
    assert_eq!(w[0].fields["examples"], key);
    assert!(
        w[0].message.contains("settings.default_currency"),
        "{}",
        w[0].message
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

/// The defect: PartnerStack filters rewards by creation date only, so a
/// reward refunded after it left the lookback was never read again and
/// stayed approved (finance paid it). Through the real binary: a sync whose
/// window does not include a July reward, refunded since at PartnerStack,
/// stores it reversed (revision 2), and no other reward changes.
///
/// The daemon's clock cannot be moved in a test, so the first sync runs with
/// the review off (`review_days = 0`); with it on (the default), the next
/// run's review is due at once, as after an upgrade.
/// A config for the real daemon: the plugin from `plugins`, its keys from
/// `T_PS_PUB` and `T_PS_PRIV`; `extra` is appended to its settings.
fn daemon_config(base_url: &str, extra: &str) -> String {
    format!(
        "[daemon]\ndata_dir = \"data\"\nplugin_dir = \"plugins\"\ntimezone = \"UTC\"\n\n\
         [[connectors]]\nid = \"partnerstack\"\nplugin = \"partnerstack\"\n\
         schedule = \"30 4 * * *\"\ntimezone = \"UTC\"\n\n[connectors.settings]\n\
         public_key = {{ secret = \"env:T_PS_PUB\" }}\n\
         private_key = {{ secret = \"env:T_PS_PRIV\" }}\n\
         page_size = 100\nbase_url = \"{base_url}\"\n{extra}"
    )
}

/// Ops QA13 OPS-11: a `base_url` without PartnerStack's `/api/v2` failed
/// with a bare "request failed (HTTP 404)"; the error names the request
/// (not its query) and the setting to check.
#[test]
fn a_base_url_without_the_api_path_names_the_request_that_got_404() {
    use reckon_tests::fakes::affiliate::router;
    use reckon_tests::fakes::server::FakeServer;

    let fake = shared(PartnerStackFake::new(Params::small(47, 10)));
    let server = FakeServer::start(router(fake));
    let dir = tempfile::tempdir().unwrap();
    reckon_tests::install_plugins(&dir.path().join("plugins"), &["partnerstack"]);
    let config = dir.path().join("reckon.toml");
    std::fs::write(&config, daemon_config(&server.base_url, "")).unwrap();
    let out = std::process::Command::new(reckon_tests::reckon_bin())
        .arg("--config")
        .arg(&config)
        .args(["sync", "partnerstack", "--check"])
        .env("RUST_LOG", "warn")
        .env("T_PS_PUB", "pk_live_fake")
        .env("T_PS_PRIV", "sk_live_fake")
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(!out.status.success(), "{stderr}");
    let said = format!(
        "request failed (HTTP 404): {{\"message\":\"Not found\",\"status\":404}} (the request was `GET {}/",
        server.base_url
    );
    assert!(stderr.contains(&said), "{stderr}");
    assert!(
        stderr.contains(
            "`: check the connector's `settings.base_url`, including the API's path prefix)"
        ),
        "{stderr}"
    );
}

#[test]
fn partnerstack_sync_reviews_an_old_reward_refunded_outside_its_window_as_reversed() {
    use chrono::{Datelike, NaiveDate};
    use plugin_api::Record;
    use reckon_tests::fakes::affiliate::router;
    use reckon_tests::fakes::server::FakeServer;
    use std::collections::BTreeMap;

    let day = |m, d| NaiveDate::from_ymd_opt(2026, m, d).unwrap();
    let fake = shared(PartnerStackFake::new(Params {
        from: day(6, 1),
        to: day(11, 27),
        ..Params::small(46, 900)
    }));
    let server = FakeServer::start(router(fake.clone()));
    let dir = tempfile::tempdir().unwrap();
    reckon_tests::install_plugins(&dir.path().join("plugins"), &["partnerstack"]);
    let config = dir.path().join("reckon.toml");
    let write_config = |extra: &str| {
        std::fs::write(
            &config,
            daemon_config(&format!("{}/api/v2", server.base_url), extra),
        )
        .unwrap()
    };
    let reckon = |args: &[&str]| {
        let out = std::process::Command::new(reckon_tests::reckon_bin())
            .arg("--config")
            .arg(&config)
            .args(args)
            .env("RUST_LOG", "warn")
            .env("T_PS_PUB", "pk_live_fake")
            .env("T_PS_PRIV", "sk_live_fake")
            .output()
            .unwrap();
        assert!(
            out.status.success(),
            "reckon {args:?} failed:\n{}\n{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        );
        out.stdout
    };
    // Stored conversions by key: (record, revision).
    let export = || -> BTreeMap<String, (plugin_api::Conversion, u64)> {
        let out = reckon(&[
            "records",
            "export",
            "--kind",
            "conversions",
            "--format",
            "jsonl",
        ]);
        String::from_utf8(out)
            .unwrap()
            .lines()
            .map(|l| {
                let v: serde_json::Value = serde_json::from_str(l).unwrap();
                match serde_json::from_value(v["record"].clone()).unwrap() {
                    Record::Conversion(c) => {
                        (c.external_id.clone(), (c, v["revision"].as_u64().unwrap()))
                    }
                    other => panic!("not a conversion: {other:?}"),
                }
            })
            .collect()
    };

    write_config("review_days = 0\n");
    reckon(&[
        "sync",
        "partnerstack",
        "--from",
        "2026-06-01",
        "--to",
        "2026-11-27",
    ]);
    let first = export();
    assert_eq!(first.len(), 900);
    let july = fake
        .lock()
        .unwrap()
        .rewards()
        .iter()
        .filter(|r| r.status == "approved" && r.created_at.date_naive().month() == 7)
        .map(|r| r.key.clone())
        .next()
        .expect("an approved July reward");
    assert_eq!(first[&july].0.status, ConversionStatus::Approved);

    // Refunded in November, long after it left a 62-day lookback.
    fake.lock().unwrap().refund(&july);
    write_config("");
    reckon(&[
        "sync",
        "partnerstack",
        "--from",
        "2026-10-01",
        "--to",
        "2026-11-27",
    ]);
    let second = export();
    assert!(first[&july].0.occurred_at.date_naive() < day(10, 1));
    let (c, rev) = &second[&july];
    assert_eq!((c.status, *rev), (ConversionStatus::Reversed, 2));
    // Every other reward re-read by the review or the window is unchanged
    // (no new revision), and nothing else was added.
    assert_eq!(second.len(), 900);
    let changed: Vec<_> = second
        .iter()
        .filter(|(_, (_, rev))| *rev != 1)
        .map(|(k, _)| k.as_str())
        .collect();
    assert_eq!(changed, [july.as_str()]);
    let records: Vec<Record> = second
        .values()
        .map(|(c, _)| Record::Conversion(c.clone()))
        .collect();
    assert_eq!(
        Truth::of_records(&records),
        fake.lock().unwrap().truth(day(6, 1), day(11, 27))
    );

    // The review's watermark does not drag the next scheduled window back:
    // the oldest watermark (the host's anchor) is still `rewards'`.
    let store = reckon::store::Store::open(&dir.path().join("data")).unwrap();
    let cps = store.checkpoints("partnerstack").unwrap();
    let (rewards, review) = (&cps["rewards"], &cps["rewards_review"]);
    assert!(review.watermark >= rewards.watermark, "{cps:?}");
    assert_eq!(review.state["complete"], json!(true), "{cps:?}");
    assert_eq!(
        review.state["range"],
        json!({"from": "2026-06-01", "to": "2026-09-30"}),
        "180 days before the window, from the first day read"
    );
}

/// QA20 F2: a connector in Los Angeles reads Los Angeles days: a one-day
/// sync returns exactly the rewards created between that day's midnight
/// there and the next (UTC midnights before the fix), also on 1 November
/// (25 hours).
#[test]
fn partnerstack_reads_the_days_of_the_connectors_timezone() {
    let fake = shared(PartnerStackFake::new(Params::small(47, 3_000)));
    assert_reads_la_days(
        &[(2026, 10, 14), (2026, 11, 1)],
        21,
        |w| {
            let settings = json!({ "page_size": 100, "review_days": 0 });
            let out = run_in::<PartnerStack, _>(LA, BASE, &fake, SECRETS, settings, w);
            out.result.as_ref().unwrap();
            conversion_ids(&out)
        },
        |s, e| {
            let f = fake.lock().unwrap();
            f.rewards()
                .iter()
                .filter(|r| s <= r.created_at && r.created_at < e)
                .map(|r| r.key.clone())
                .collect()
        },
    );
}

/// QA20 F4: a non-USD transaction's `amount_usd` is its amount in USD, not
/// the same number; the reward's commission stays in the transaction's
/// currency (the documented assumption), whatever `amount_usd` says.
#[test]
fn partnerstack_amount_usd_is_a_conversion_and_the_commission_keeps_the_transactions_currency() {
    use reckon_tests::fakes::affiliate::FakeApi;
    let fake = shared(PartnerStackFake::new(Params::small(43, 900)));
    let reply = fake
        .lock()
        .unwrap()
        .handle(&plugin_api::protocol::HttpRequest {
            id: 1,
            method: "GET".into(),
            url: "/api/v2/transactions?limit=250".into(),
            headers: [(
                "authorization".to_owned(),
                reckon_tests::fakes::affiliate::basic_auth("pk_live_fake", "sk_live_fake"),
            )]
            .into(),
            body: None,
            idempotent: true,
            label: String::new(),
        });
    assert_eq!(reply.status, 200);
    let body: serde_json::Value = serde_json::from_slice(&reply.body).unwrap();
    let items = body["data"]["items"].as_array().unwrap();
    let eur: Vec<_> = items.iter().filter(|t| t["currency"] == "EUR").collect();
    assert!(!eur.is_empty());
    for t in &eur {
        let (amount, usd) = (
            t["amount"].as_i64().unwrap(),
            t["amount_usd"].as_i64().unwrap(),
        );
        assert_ne!(amount, usd, "{t}");
        assert_eq!(
            Decimal::from(usd),
            (Decimal::from(amount) * Decimal::new(1085, 3)).round()
        );
    }
    for t in items.iter().filter(|t| t["currency"] == "USD") {
        assert_eq!(t["amount"], t["amount_usd"]);
    }
    let w = window((2026, 10, 1), (2026, 11, 27));
    let out = run_at::<PartnerStack, _>(BASE, &fake, SECRETS, json!({ "review_days": 0 }), w);
    out.result.as_ref().unwrap();
    let f = fake.lock().unwrap();
    let r = f.rewards().iter().find(|r| r.currency == "EUR").unwrap();
    let c = find(&out, &r.key);
    assert_eq!(c.commission.as_ref().unwrap().currency, "EUR");
    assert_eq!(
        c.commission.as_ref().unwrap().amount,
        Decimal::new(r.amount, 2)
    );
}

/// A read session at `now` (page size 100) that carries on from
/// `previous`'s checkpoints, as the daemon opens the next one.
fn session_after(
    fake: &Shared<PartnerStackFake>,
    previous: Option<&plugin_api::testing::Outcome>,
    w: plugin_api::Window,
) -> plugin_api::testing::Outcome {
    use plugin_api::Connector;
    let settings = json!({ "page_size": 100 });
    let mut open = plugin_api::testing::open_read("aff", BASE, settings.clone(), w);
    for cp in previous.iter().flat_map(|o| &o.checkpoints) {
        open.checkpoints.insert(cp.stream.clone(), cp.clone());
    }
    let handler = reckon_tests::fakes::affiliate::in_process(
        fake.clone(),
        PartnerStack::manifest().auth,
        SECRETS,
        &settings,
    );
    plugin_api::testing::FakeHost::handler(handler).run::<PartnerStack>(open)
}

/// D-H1: a rewards page with no items and `has_more: true` was taken as the
/// last page: the run was `ok` with the older rewards missing and the
/// checkpoint said `complete: true`. Now the page fails the run naming the
/// stream and page, the first page stays committed, the window is not
/// complete, and the next run resumes after the committed page and stores
/// the rest.
#[test]
fn partnerstack_an_empty_rewards_page_mid_paging_fails_the_run_and_the_next_run_reads_the_rest() {
    let fake = shared(PartnerStackFake::new(Params::small(341, 300)));
    let w = window((2026, 10, 1), (2026, 11, 27));
    // The second rewards page of 100 comes back empty, still `has_more`.
    fake.lock().unwrap().empty_page("rewards", 1);
    let first = run(&fake, w);
    let e = first.result.as_ref().unwrap_err();
    assert_eq!(e.kind, ErrorKind::BadResponse);
    assert!(
        e.message.contains(
            "stream `rewards` page 2: no rows, yet data.has_more is true: more pages said to \
             remain after an empty one"
        ),
        "{}",
        e.message
    );
    assert_eq!(first.committed.len(), 100, "page 1 stays committed");
    let rewards: Vec<_> = first
        .checkpoints
        .iter()
        .filter(|c| c.stream == "rewards")
        .collect();
    assert_eq!(rewards.len(), 1);
    assert_eq!(rewards[0].state["complete"], json!(false));
    // The next run carries on after the committed page: nothing is lost.
    let second = session_after(&fake, Some(&first), w);
    second.result.as_ref().unwrap();
    assert_eq!(second.committed.len(), 200);
    let all: Vec<_> = first.committed.iter().chain(&second.committed).collect();
    assert_eq!(
        Truth::of_records(all),
        fake.lock().unwrap().truth(w.from, w.to)
    );
}

/// D-H1, the transactions read before the rewards: an empty transactions
/// page with `has_more` ended the lookup early, and rewards naming a later
/// transaction lost their sale amount without a word.
#[test]
fn partnerstack_an_empty_transactions_page_mid_paging_fails_the_run() {
    let fake = shared(PartnerStackFake::new(Params::small(342, 300)));
    fake.lock().unwrap().empty_page("transactions", 1);
    let w = window((2026, 10, 1), (2026, 11, 27));
    let out = run(&fake, w);
    let e = out.result.as_ref().unwrap_err();
    assert_eq!(e.kind, ErrorKind::BadResponse);
    assert!(
        e.message.contains(
            "transactions page 2: no rows, yet data.has_more is true: more pages said to remain \
             after an empty one"
        ),
        "{}",
        e.message
    );
    assert!(out.committed.is_empty());
    assert!(out.checkpoints.is_empty());
}
