//! Recorded-exchange tests: the fake host replays `fixtures/*.json`.

use super::*;
use plugin_api::chrono::{DateTime, NaiveDate, Utc};
use plugin_api::protocol::{ErrorKind, Window};
use plugin_api::rust_decimal::Decimal;
use plugin_api::testing::{open_read, Cassette, FakeHost, Reply};
use plugin_api::{Checkpoint, Conversion, ConversionStatus, Record};
use std::str::FromStr;

fn window() -> Window {
    Window {
        from: NaiveDate::from_ymd_opt(2026, 11, 1).unwrap(),
        to: NaiveDate::from_ymd_opt(2026, 11, 2).unwrap(),
    }
}

fn conv(r: &Record) -> &Conversion {
    match r {
        Record::Conversion(c) => c,
        other => panic!("expected a conversion, got {other:?}"),
    }
}

#[test]
fn statuses_map_and_refunds_are_reversals() {
    use ConversionStatus::*;
    assert_eq!(row::status("new", None).unwrap(), Pending);
    assert_eq!(row::status("hold", None).unwrap(), Pending);
    assert_eq!(row::status("approved", None).unwrap(), Approved);
    assert_eq!(row::status("paid", Some("available")).unwrap(), Approved);
    assert_eq!(
        row::status("paid", Some("paid_and_refunded")).unwrap(),
        Reversed
    );
    assert_eq!(row::status("declined", None).unwrap(), Rejected);
    assert!(row::status("lost", None)
        .unwrap_err()
        .contains("field `reward_status`"));
}

#[test]
fn reads_transactions_then_rewards_by_cursor_in_cents_and_millis() {
    let cassette = Cassette::from_json(include_str!("../fixtures/cursor_pages.json")).unwrap();
    let out = FakeHost::replay(cassette).run::<PartnerStack>(open_read(
        "ps",
        "http://fake/api/v2",
        json!({ "page_size": 2 }),
        window(),
    ));
    out.result.as_ref().unwrap();
    let ids: Vec<_> = out
        .committed
        .iter()
        .map(|r| conv(r).external_id.as_str())
        .collect();
    assert_eq!(ids, ["rew_3", "rew_2", "rew_1"]);
    let r3 = conv(&out.committed[0]);
    assert_eq!(
        r3.commission.as_ref().unwrap().amount,
        Decimal::from_str("12.34").unwrap()
    );
    assert_eq!(r3.commission.as_ref().unwrap().currency, "EUR");
    assert_eq!(
        r3.sale_amount.as_ref().unwrap().amount,
        Decimal::from_str("123.40").unwrap(),
        "from the lookup"
    );
    assert_eq!(r3.order_id.as_deref(), Some("txn_3"));
    assert_eq!(r3.occurred_at.to_rfc3339(), "2026-11-01T10:00:00+00:00");
    assert_eq!(r3.partner_id, "part_a");
    assert_eq!(
        conv(&out.committed[1]).sale_amount.as_ref().unwrap().amount,
        Decimal::from(50),
        "embedded"
    );
    assert_eq!(conv(&out.committed[2]).status, ConversionStatus::Rejected);
    let rewards: Vec<_> = out
        .checkpoints
        .iter()
        .filter(|c| c.stream == REWARDS)
        .collect();
    assert_eq!(rewards.len(), 2);
    assert_eq!(rewards[0].state["after"], json!("rew_2"));
    assert_eq!(rewards[1].state["since"], json!("2026-11-01"));
    // A first run: nothing is stored before the window, so the review has
    // nothing to read (the cassette holds no other request).
    let review = last_cp(&out, REVIEW).expect("a review checkpoint");
    assert_eq!(review.state["complete"], json!(true));
    assert_eq!(review.state["range"], json!(null));
}

#[test]
fn an_error_body_is_reported_with_its_message() {
    let out = FakeHost::handler(|_| {
        Reply::json(
            400,
            &json!({"message": "limit must be <= 250", "status": 400}),
        )
    })
    .run::<PartnerStack>(open_read("ps", "http://fake", json!({}), window()));
    let err = out.result.unwrap_err();
    assert_eq!(err.kind, ErrorKind::Upstream);
    assert!(
        err.message.contains("limit must be <= 250"),
        "{}",
        err.message
    );
}

#[test]
fn a_completed_window_is_pulled_again_from_the_start() {
    // Regression: the last page's cursor made a re-pull of the same window
    // start after the last reward, so review changes were never seen.
    let mut open = open_read("ps", "http://fake", json!({}), window());
    open.streams = vec![REWARDS.into()];
    open.checkpoints.insert(
        REWARDS.into(),
        plugin_api::Checkpoint {
            stream: REWARDS.into(),
            watermark: "2026-11-03T00:00:00Z".parse().unwrap(),
            state: json!({ "window": "2026-11-01..2026-11-02", "after": "rew_9", "complete": true }), covers: None,
        },
    );
    let out = FakeHost::handler(|req| {
        assert!(!req.url.contains("starting_after"), "{}", req.url);
        Reply::json(
            200,
            &json!({"data": {"has_more": false, "items": []}, "message": "ok", "status": 200}),
        )
    })
    .run::<PartnerStack>(open);
    out.result.unwrap();
    assert_eq!(out.requests.len(), 2);
}

// ---- The review (stream `rewards_review`) -------------------------------
//
// The stream is named by its string here, not the constant, so that these
// tests compile (and fail) against the connector before the review existed.

const REVIEW: &str = "rewards_review";
/// `open_read`'s clock.
const NOW: &str = "2026-11-28T12:00:00Z";

fn at(s: &str) -> DateTime<Utc> {
    s.parse().unwrap()
}

fn ms(day: &str) -> i64 {
    day.parse::<NaiveDate>()
        .unwrap()
        .and_hms_opt(0, 0, 0)
        .unwrap()
        .and_utc()
        .timestamp_millis()
}

/// A scheduled run's window: the lookback (62 days) through today.
fn lookback() -> Window {
    Window {
        from: NaiveDate::from_ymd_opt(2026, 9, 28).unwrap(),
        to: NaiveDate::from_ymd_opt(2026, 11, 28).unwrap(),
    }
}

/// A reward as PartnerStack sends it. Every other one embeds only its
/// transaction's key (the sale amount then comes from the transactions).
fn reward(key: &str, created: &str, status: &str, payment: &str) -> Value {
    let t = at(created).timestamp_millis();
    let n: i64 = key.bytes().map(i64::from).sum();
    let txn = if n % 2 == 0 {
        json!({"key": format!("txn_{key}"), "amount": 10_000 + n, "currency": "USD"})
    } else {
        json!({"key": format!("txn_{key}")})
    };
    json!({
        "key": key, "amount": 1_000 + n, "currency": "USD", "reward_status": status,
        "payment_status": payment, "created_at": t, "updated_at": t + 60_000,
        "partnership": {"key": "pshp_1", "partner_key": "part_a"},
        "transaction": txn, "offer": {"key": "offr_1"}, "trigger": {"name": "Payment"},
    })
}

fn query(url: &str) -> Vec<(String, String)> {
    url.split_once('?')
        .map(|(_, q)| {
            q.split('&')
                .filter_map(|p| p.split_once('='))
                .map(|(k, v)| (k.to_owned(), v.to_owned()))
                .collect()
        })
        .unwrap_or_default()
}

fn param(url: &str, key: &str) -> Option<String> {
    query(url)
        .into_iter()
        .find(|(k, _)| k == key)
        .map(|(_, v)| v)
}

/// A small PartnerStack: `/rewards` and `/transactions` (one per reward)
/// filtered by `min_created`/`max_created`, newest first, `limit` and
/// `starting_after` (an unknown key is a 400), in the v2 envelope.
fn api(rewards: Vec<Value>) -> impl FnMut(&plugin_api::protocol::HttpRequest) -> Reply {
    move |req| {
        let url = &req.url;
        let num = |k: &str| param(url, k).map(|v| v.parse::<i64>().unwrap());
        let (min, max) = (num("min_created"), num("max_created"));
        let limit = num("limit").unwrap_or(10) as usize;
        let mut rows: Vec<&Value> = rewards
            .iter()
            .filter(|r| {
                let c = r["created_at"].as_i64().unwrap();
                min.is_none_or(|m| c >= m) && max.is_none_or(|m| c <= m)
            })
            .collect();
        rows.sort_by_key(|r| {
            (
                std::cmp::Reverse(r["created_at"].as_i64().unwrap()),
                std::cmp::Reverse(r["key"].as_str().unwrap().to_owned()),
            )
        });
        let transactions = url.contains("/transactions?");
        let key = |r: &Value| {
            if transactions {
                r["transaction"]["key"].as_str().unwrap().to_owned()
            } else {
                r["key"].as_str().unwrap().to_owned()
            }
        };
        let start = match param(url, "starting_after") {
            None => 0,
            Some(k) => match rows.iter().position(|r| key(r) == k) {
                Some(p) => p + 1,
                None => return Reply::json(400, &json!({"message": "no such key", "status": 400})),
            },
        };
        let items: Vec<Value> = rows
            .iter()
            .skip(start)
            .take(limit)
            .map(|r| {
                if transactions {
                    let n: i64 = r["key"].as_str().unwrap().bytes().map(i64::from).sum();
                    json!({"key": key(r), "amount": 10_000 + n, "currency": "USD",
                           "created_at": r["created_at"]})
                } else {
                    (*r).clone()
                }
            })
            .collect();
        let has_more = start + items.len() < rows.len();
        Reply::json(
            200,
            &json!({"data": {"has_more": has_more, "items": items}, "message": "ok", "status": 200}),
        )
    }
}

fn cp(stream: &str, watermark: &str, state: Value) -> (String, plugin_api::Checkpoint) {
    (
        stream.into(),
        plugin_api::Checkpoint {
            stream: stream.into(),
            watermark: at(watermark),
            state,
            covers: None,
        },
    )
}

/// The checkpoints of a connector that has run daily since 2026-01-01,
/// whose last review started at `last_review`.
fn history(last_review: &str) -> Vec<(String, plugin_api::Checkpoint)> {
    vec![
        cp(
            REWARDS,
            "2026-11-28T00:00:00Z",
            json!({"window": "2026-09-27..2026-11-27", "after": null, "complete": true,
                   "since": "2026-01-01"}),
        ),
        cp(
            REVIEW,
            last_review,
            json!({"range": {"from": "2026-03-31", "to": "2026-09-26"}, "after": "rew_x",
                   "complete": true, "started_at": last_review, "last_review": last_review}),
        ),
    ]
}

fn session(
    settings: Value,
    window: Window,
    checkpoints: Vec<(String, plugin_api::Checkpoint)>,
) -> plugin_api::protocol::SessionOpen {
    let mut open = open_read("ps", "http://fake/api/v2", settings, window);
    open.checkpoints.extend(checkpoints);
    open
}

/// The world of the review tests: two rewards in the window; older ones,
/// among them a subscription paid 100 days ago (2026-08-20) and refunded
/// since; and one created the day before the review's first day.
fn world() -> Vec<Value> {
    vec![
        reward("rew_new1", "2026-11-20T09:00:00Z", "approved", "available"),
        reward("rew_new2", "2026-10-02T09:00:00Z", "new", "available"),
        reward("rew_edge", "2026-09-27T23:59:59Z", "approved", "available"),
        reward(
            "rew_sub",
            "2026-08-20T10:00:00Z",
            "paid",
            "paid_and_refunded",
        ),
        reward("rew_gone", "2026-07-01T10:00:00Z", "declined", "available"),
        reward("rew_mar", "2026-04-01T00:00:00Z", "paid", "available"),
        reward("rew_old", "2026-03-31T23:59:59Z", "paid", "available"),
        reward("rew_may", "2026-05-12T08:00:00Z", "approved", "available"),
    ]
}

fn last_cp<'a>(out: &'a plugin_api::testing::Outcome, stream: &str) -> Option<&'a Checkpoint> {
    out.checkpoints.iter().rev().find(|c| c.stream == stream)
}

/// Committed keys, in order, of rewards created inside `lookback()` (read by
/// `rewards`) or before it (read by the review: `Outcome` does not say which
/// stream emitted a record, and `rewards` asks only for the window, as the
/// tests' request checks pin).
fn keys_of(out: &plugin_api::testing::Outcome, stream: &str) -> Vec<String> {
    let w = |c: &Conversion| c.occurred_at.date_naive() >= lookback().from;
    out.committed
        .iter()
        .map(conv)
        .filter(|c| if stream == REWARDS { w(c) } else { !w(c) })
        .map(|c| c.external_id.clone())
        .collect()
}

/// The review's watermark is never behind `rewards`': the host anchors a
/// scheduled run's window on the oldest stream watermark.
fn assert_review_keeps_up(out: &plugin_api::testing::Outcome) {
    let rewards = last_cp(out, REWARDS).expect("a rewards checkpoint");
    let review = last_cp(out, REVIEW).expect("a review checkpoint");
    assert!(
        review.watermark >= rewards.watermark,
        "review watermark {} is behind rewards' {}",
        review.watermark,
        rewards.watermark
    );
    assert_eq!(
        review.watermark,
        at("2026-11-29T00:00:00Z"),
        "the window's end"
    );
}

fn review_requests(out: &plugin_api::testing::Outcome) -> Vec<&str> {
    out.requests
        .iter()
        .map(|r| r.url.as_str())
        .filter(|u| {
            param(u, "min_created").map(|m| m.parse::<i64>().unwrap()) != Some(ms("2026-09-28"))
        })
        .collect()
}

#[test]
fn review_rereads_the_review_days_before_the_window_when_due() {
    // The last review started exactly `review_every_days` (7) ago: due.
    let out = FakeHost::handler(api(world())).run::<PartnerStack>(session(
        json!({}),
        lookback(),
        history("2026-11-21T12:00:00Z"),
    ));
    out.result.as_ref().unwrap();
    // Transactions, then rewards, of 2026-04-01..=2026-09-27 (180 days before
    // the window's first day 2026-09-28, up to its last millisecond).
    let reviewed = review_requests(&out);
    assert_eq!(reviewed.len(), 2, "{reviewed:?}");
    for (url, path) in reviewed.iter().zip(["/transactions?", "/rewards?"]) {
        assert!(url.contains(path), "{url}");
        assert_eq!(
            param(url, "min_created"),
            Some(ms("2026-04-01").to_string())
        );
        assert_eq!(
            param(url, "max_created"),
            Some((ms("2026-09-28") - 1).to_string())
        );
    }
    assert_eq!(keys_of(&out, REWARDS), ["rew_new1", "rew_new2"]);
    assert_eq!(
        keys_of(&out, REVIEW),
        ["rew_edge", "rew_sub", "rew_gone", "rew_may", "rew_mar"]
    );
    let review = last_cp(&out, REVIEW).unwrap();
    assert_eq!(review.state["complete"], json!(true));
    assert_eq!(review.state["last_review"], json!(NOW));
    assert_eq!(
        review.state["range"],
        json!({"from": "2026-04-01", "to": "2026-09-27"})
    );
    // A reward that embeds only its transaction's key keeps its sale amount.
    for c in out.committed.iter().map(conv) {
        assert!(
            c.sale_amount.is_some(),
            "{} lost its sale amount",
            c.external_id
        );
    }
    assert_review_keeps_up(&out);
}

#[test]
fn review_brings_back_a_100_day_old_reward_refunded_since_as_reversed() {
    let out = FakeHost::handler(api(world())).run::<PartnerStack>(session(
        json!({}),
        lookback(),
        history("2026-11-01T00:00:00Z"),
    ));
    out.result.as_ref().unwrap();
    let sub = out
        .committed
        .iter()
        .map(conv)
        .find(|c| c.external_id == "rew_sub")
        .expect("the refunded subscription reward was read again");
    assert_eq!(sub.status, ConversionStatus::Reversed);
    assert_eq!(sub.occurred_at, at("2026-08-20T10:00:00Z"));
    let gone = out
        .committed
        .iter()
        .map(conv)
        .find(|c| c.external_id == "rew_gone");
    assert_eq!(gone.unwrap().status, ConversionStatus::Rejected);
}

#[test]
fn review_is_skipped_when_not_due_by_the_host_clock_and_its_watermark_keeps_up() {
    // Six days and 23 hours after the last review (by `cx.now()`): not due.
    let prev = history("2026-11-21T12:00:01Z");
    let prev_state = prev[1].1.state.clone();
    let out =
        FakeHost::handler(api(world())).run::<PartnerStack>(session(json!({}), lookback(), prev));
    out.result.as_ref().unwrap();
    assert!(
        review_requests(&out).is_empty(),
        "{:?}",
        review_requests(&out)
    );
    assert_eq!(
        out.requests.len(),
        2,
        "the window's transactions and rewards"
    );
    assert_eq!(keys_of(&out, REVIEW), Vec::<String>::new());
    // One checkpoint, its state unchanged, its watermark up with rewards'.
    let review: Vec<_> = out
        .checkpoints
        .iter()
        .filter(|c| c.stream == REVIEW)
        .collect();
    assert_eq!(review.len(), 1);
    assert_eq!(review[0].state, prev_state);
    assert_review_keeps_up(&out);
}

#[test]
fn review_is_due_again_when_the_host_clock_went_back_before_the_last_one() {
    let out = FakeHost::handler(api(world())).run::<PartnerStack>(session(
        json!({}),
        lookback(),
        history("2027-01-01T00:00:00Z"),
    ));
    out.result.as_ref().unwrap();
    assert_eq!(review_requests(&out).len(), 2);
    assert_eq!(
        last_cp(&out, REVIEW).unwrap().state["last_review"],
        json!(NOW)
    );
}

#[test]
fn review_cut_short_resumes_after_its_last_committed_page_without_skipping() {
    let settings = json!({ "page_size": 2 });
    // The first session dies on the review's second rewards page.
    let mut fake = api(world());
    let first = FakeHost::handler(move |req| {
        let reviewing = param(&req.url, "min_created") == Some(ms("2026-04-01").to_string());
        if reviewing && req.url.contains("/rewards?") && req.url.contains("starting_after") {
            return Reply::json(500, &json!({"message": "Internal error", "status": 500}));
        }
        fake(req)
    })
    .run::<PartnerStack>(session(
        settings.clone(),
        lookback(),
        history("2026-11-01T00:00:00Z"),
    ));
    assert!(first.result.is_err());
    let cut = last_cp(&first, REVIEW).expect("the review's first page was committed");
    assert_eq!(cut.state["complete"], json!(false));
    assert_eq!(cut.state["after"], json!("rew_sub"));
    assert_eq!(
        cut.state["last_review"],
        json!("2026-11-01T00:00:00Z"),
        "not done yet"
    );
    assert_eq!(keys_of(&first, REVIEW), ["rew_edge", "rew_sub"]);

    // The next session, a day later and with a later window (the review is
    // not due by then: it resumes anyway, over the range it started with).
    let mut checkpoints = history("2026-11-01T00:00:00Z");
    checkpoints[0].1 = last_cp(&first, REWARDS).unwrap().clone();
    checkpoints[1].1 = cut.clone();
    let later = Window {
        from: NaiveDate::from_ymd_opt(2026, 9, 29).unwrap(),
        to: NaiveDate::from_ymd_opt(2026, 11, 29).unwrap(),
    };
    let mut open = session(settings, later, checkpoints);
    open.now = at("2026-11-29T12:00:00Z");
    let second = FakeHost::handler(api(world())).run::<PartnerStack>(open);
    second.result.as_ref().unwrap();
    let resumed: Vec<_> = second
        .requests
        .iter()
        .map(|r| r.url.as_str())
        .filter(|u| {
            u.contains("/rewards?") && param(u, "min_created") == Some(ms("2026-04-01").to_string())
        })
        .collect();
    assert_eq!(
        param(resumed[0], "starting_after").as_deref(),
        Some("rew_sub")
    );
    for u in &resumed {
        assert_eq!(
            param(u, "max_created"),
            Some((ms("2026-09-28") - 1).to_string())
        );
    }
    let again: Vec<_> = second
        .committed
        .iter()
        .map(conv)
        .filter(|c| c.occurred_at < at("2026-09-28T00:00:00Z"))
        .map(|c| c.external_id.as_str())
        .collect();
    assert_eq!(again, ["rew_gone", "rew_may", "rew_mar"]);
    let done = last_cp(&second, REVIEW).unwrap();
    assert_eq!(done.state["complete"], json!(true));
    assert_eq!(
        done.state["last_review"],
        json!(NOW),
        "the time the review started, in the first session"
    );
    assert!(done.watermark >= last_cp(&second, REWARDS).unwrap().watermark);
}

#[test]
fn review_days_0_turns_the_review_off() {
    let prev = history("2026-10-01T00:00:00Z");
    let prev_state = prev[1].1.state.clone();
    let out = FakeHost::handler(api(world())).run::<PartnerStack>(session(
        json!({ "review_days": 0 }),
        lookback(),
        prev,
    ));
    out.result.as_ref().unwrap();
    assert!(review_requests(&out).is_empty());
    assert_eq!(keys_of(&out, REVIEW), Vec::<String>::new());
    // Its old checkpoint still keeps up, unchanged otherwise.
    assert_eq!(last_cp(&out, REVIEW).unwrap().state, prev_state);
    assert_review_keeps_up(&out);

    // Off from the start: the stream never gets a checkpoint.
    let out = FakeHost::handler(api(world())).run::<PartnerStack>(session(
        json!({ "review_days": 0 }),
        lookback(),
        vec![],
    ));
    out.result.as_ref().unwrap();
    assert!(last_cp(&out, REVIEW).is_none());
}

#[test]
fn review_never_reads_before_the_first_day_the_connector_read() {
    // A new installation: nothing stored before its first window, so the
    // first review has nothing to read and makes no request.
    let first =
        FakeHost::handler(api(world())).run::<PartnerStack>(session(json!({}), lookback(), vec![]));
    first.result.as_ref().unwrap();
    assert!(review_requests(&first).is_empty());
    assert_eq!(
        last_cp(&first, REWARDS).unwrap().state["since"],
        json!("2026-09-28")
    );
    let review = last_cp(&first, REVIEW).unwrap();
    assert_eq!(review.state["last_review"], json!(NOW));
    assert_review_keeps_up(&first);

    // A week later the review reads only the days that left the window.
    let later = Window {
        from: NaiveDate::from_ymd_opt(2026, 10, 5).unwrap(),
        to: NaiveDate::from_ymd_opt(2026, 12, 5).unwrap(),
    };
    let mut open = session(
        json!({}),
        later,
        vec![
            (REWARDS.into(), last_cp(&first, REWARDS).unwrap().clone()),
            (REVIEW.into(), review.clone()),
        ],
    );
    open.now = at("2026-12-05T12:00:00Z");
    let week = FakeHost::handler(api(world())).run::<PartnerStack>(open);
    week.result.as_ref().unwrap();
    let reviewed: Vec<_> = week
        .requests
        .iter()
        .map(|r| r.url.as_str())
        .filter(|u| param(u, "min_created") != Some(ms("2026-10-05").to_string()))
        .collect();
    assert_eq!(reviewed.len(), 2, "{reviewed:?}");
    for u in reviewed {
        assert_eq!(param(u, "min_created"), Some(ms("2026-09-28").to_string()));
        assert_eq!(
            param(u, "max_created"),
            Some((ms("2026-10-05") - 1).to_string())
        );
    }
    let ids: Vec<_> = week
        .committed
        .iter()
        .map(|r| conv(r).external_id.as_str())
        .collect();
    assert_eq!(ids, ["rew_new1", "rew_new2"], "rew_new2 from the review");
    // A backfill of older days lowers `since` for the reviews after it.
    let backfill = Window {
        from: NaiveDate::from_ymd_opt(2026, 3, 1).unwrap(),
        to: NaiveDate::from_ymd_opt(2026, 5, 31).unwrap(),
    };
    let mut open = session(
        json!({}),
        backfill,
        vec![
            (REWARDS.into(), last_cp(&week, REWARDS).unwrap().clone()),
            (REVIEW.into(), last_cp(&week, REVIEW).unwrap().clone()),
        ],
    );
    open.now = at("2026-12-05T13:00:00Z");
    let old = FakeHost::handler(api(world())).run::<PartnerStack>(open);
    old.result.as_ref().unwrap();
    assert_eq!(
        last_cp(&old, REWARDS).unwrap().state["since"],
        json!("2026-03-01")
    );
    assert_eq!(
        last_cp(&old, REWARDS).unwrap().watermark,
        at("2026-12-06T00:00:00Z"),
        "a backfill moves no watermark back"
    );
    assert_eq!(old.requests.len(), 2, "the review is not due");
}

#[test]
fn bad_review_settings_are_config_errors_naming_the_field() {
    let run = |settings: Value| {
        FakeHost::handler(api(world()))
            .run::<PartnerStack>(session(settings, lookback(), vec![]))
            .result
    };
    for (settings, field) in [
        (json!({ "review_days": 731 }), "settings.review_days"),
        (
            json!({ "review_every_days": 0 }),
            "settings.review_every_days",
        ),
        (
            json!({ "review_every_days": 366 }),
            "settings.review_every_days",
        ),
    ] {
        let err = run(settings.clone()).unwrap_err();
        assert_eq!(err.kind, ErrorKind::Config, "{settings}");
        assert!(
            err.message.contains(field),
            "{field} not in {}",
            err.message
        );
    }
    // Not even a number of days (the host's schema check names the field
    // before a session opens; serde's message does not).
    assert_eq!(
        run(json!({ "review_days": -1 })).unwrap_err().kind,
        ErrorKind::Config
    );
    // In range, they are accepted.
    run(json!({ "review_days": 730, "review_every_days": 365 })).unwrap();
    // The host validates them against the manifest's schema first.
    let schema = PartnerStack::manifest().config_schema;
    assert_eq!(schema["properties"]["review_days"]["maximum"], json!(730));
    assert_eq!(
        schema["properties"]["review_every_days"]["minimum"],
        json!(1)
    );
}

/// Regression (QA M6): the reference's Reward has no `currency`; only its
/// transaction does. A reward without one whose embedded transaction named
/// its currency but carried no amount fell to the transactions lookup, and,
/// when that did not have it (created before the window), silently to
/// `default_currency`. Now the embedded transaction's currency is read
/// whenever it is there, and rewards left with only the default are
/// reported once per session, counted, naming the setting.
#[test]
fn a_reward_takes_its_transactions_currency_and_the_default_is_reported_once() {
    let out = FakeHost::handler(|req| {
        if req.url.contains("/transactions") {
            return Reply::json(
                200,
                &json!({"data": {"has_more": false, "items": [
                {"key": "txn_c", "amount": 5_000, "currency": "GBP"},
                {"key": "txn_d", "amount": 6_000},
            ]}, "message": "ok", "status": 200}),
            );
        }
        let reward = |key: &str, txn: Value| {
            json!({
                "key": key, "amount": 1_000, "reward_status": "approved",
                "created_at": 1_793_527_200_000i64, "updated_at": 1_793_527_200_000i64,
                "partnership": {"partner_key": "part_1"}, "transaction": txn,
            })
        };
        Reply::json(
            200,
            &json!({"data": {"has_more": false, "items": [
            reward("rew_a", json!({"key": "txn_a", "currency": "EUR"})),
            reward("rew_b", json!({"key": "txn_b"})),
            reward("rew_c", json!({"key": "txn_c"})),
            reward("rew_d", json!({"key": "txn_d"})),
            reward("rew_e", json!({"key": "txn_e", "amount": 2_000, "currency": "CHF"})),
        ]}, "message": "ok", "status": 200}),
        )
    })
    .run::<PartnerStack>(open_read(
        "ps",
        "http://fake/api/v2",
        json!({ "review_days": 0 }),
        window(),
    ));
    out.result.as_ref().unwrap();
    let cur = |key: &str| {
        let c = out
            .committed
            .iter()
            .map(conv)
            .find(|c| c.external_id == key)
            .unwrap();
        (
            c.commission.as_ref().unwrap().currency.clone(),
            c.sale_amount.as_ref().map(|m| m.currency.clone()),
        )
    };
    // Embedded without an amount: its currency still counts.
    assert_eq!(cur("rew_a"), ("EUR".into(), None));
    // Neither the reward nor a known transaction names one: the default.
    assert_eq!(cur("rew_b"), ("USD".into(), None));
    assert_eq!(cur("rew_c"), ("GBP".into(), Some("GBP".into())));
    assert_eq!(cur("rew_d"), ("USD".into(), Some("USD".into())));
    assert_eq!(cur("rew_e"), ("CHF".into(), Some("CHF".into())));
    let warnings: Vec<_> = out
        .logs
        .iter()
        .filter(|l| l.message.contains("default currency"))
        .collect();
    assert_eq!(warnings.len(), 1, "{:?}", out.logs);
    let w = warnings[0];
    assert_eq!(w.level, plugin_api::protocol::LogLevel::Warn);
    assert!(
        w.message.contains("settings.default_currency"),
        "{}",
        w.message
    );
    assert_eq!(w.fields["count"], "2");
    assert_eq!(w.fields["default_currency"], "USD");
    assert_eq!(w.fields["examples"], "rew_b,rew_d");
}

/// QA20 F2: the window's days (and the review's) are the connector's
/// zone's: `min_created`/`max_created` are Los Angeles' midnights, not UTC's,
/// and a reward created late on the window's last day there (after UTC's
/// midnight) is read; the watermarks end at Los Angeles' midnight.
#[test]
fn created_bounds_are_the_connectors_zone_days() {
    let la_ms = |s: &str| at(s).timestamp_millis();
    let rewards = vec![
        // 2026-10-02 in Los Angeles: 07:00Z on the 2nd to 07:00Z on the 3rd.
        reward(
            "rew_late",
            "2026-10-03T06:59:59.999Z",
            "approved",
            "available",
        ),
        reward("rew_early", "2026-10-02T07:00:00Z", "approved", "available"),
        // The day before in Los Angeles, though the 2nd in UTC.
        reward(
            "rew_before",
            "2026-10-02T06:59:59Z",
            "approved",
            "available",
        ),
        // The review's last day (Los Angeles' 2026-10-01), and its first.
        reward(
            "rew_rev_last",
            "2026-10-02T06:00:00Z",
            "approved",
            "available",
        ),
        reward(
            "rew_rev_first",
            "2026-09-29T07:30:00Z",
            "approved",
            "available",
        ),
        reward(
            "rew_rev_out",
            "2026-09-29T06:30:00Z",
            "approved",
            "available",
        ),
    ];
    let one_day = Window {
        from: NaiveDate::from_ymd_opt(2026, 10, 2).unwrap(),
        to: NaiveDate::from_ymd_opt(2026, 10, 2).unwrap(),
    };
    // Rewards read since January (so the review reaches its 3 days); the
    // last review long ago (so it is due).
    let mut open = session(
        json!({ "review_days": 3 }),
        one_day,
        vec![
            cp(
                REWARDS,
                "2026-09-01T00:00:00Z",
                json!({"since": "2026-01-01"}),
            ),
            cp(
                REVIEW,
                "2026-09-01T00:00:00Z",
                json!({"complete": true, "last_review": "2026-09-01T00:00:00Z"}),
            ),
        ],
    );
    open.timezone = Some("America/Los_Angeles".into());
    let out = FakeHost::handler(api(rewards)).run::<PartnerStack>(open);
    out.result.as_ref().unwrap();
    let first = &out.requests[0].url;
    assert!(first.contains("/transactions?"), "{first}");
    assert_eq!(
        param(first, "min_created"),
        Some(la_ms("2026-10-02T07:00:00Z").to_string())
    );
    assert_eq!(
        param(first, "max_created"),
        Some((la_ms("2026-10-03T07:00:00Z") - 1).to_string())
    );
    let keys: Vec<&str> = out
        .committed
        .iter()
        .map(|r| conv(r).external_id.as_str())
        .collect();
    // `rewards` (newest first), then the review's 2026-09-29..=10-01.
    assert_eq!(
        keys,
        [
            "rew_late",
            "rew_early",
            "rew_before",
            "rew_rev_last",
            "rew_rev_first"
        ]
    );
    for stream in [REWARDS, REVIEW] {
        assert_eq!(
            last_cp(&out, stream).unwrap().watermark,
            at("2026-10-03T07:00:00Z"),
            "{stream}"
        );
    }
}

/// QA35d M3/H4: ids are read with `Scalar::id` both in the transactions
/// list and in a reward's embedded `transaction.key`, so a list key sent as
/// `5501.0` still gives the reward that names `5501` its sale amount; a
/// listed transaction whose `amount` is `""` is refused naming it.
#[test]
fn transactions_list_keys_match_rewards_whatever_their_shape_and_need_an_amount() {
    let rewards = json!({"data": {"has_more": false, "items": [{
        "key": "rew_n", "amount": 500, "reward_status": "approved",
        "created_at": 1_793_527_200_000i64, "partnership": {"partner_key": 101.0},
        "transaction": {"key": 5501}, "offer": {"key": 7.0},
    }]}, "message": "ok", "status": 200});
    let run = |txns: Value| {
        let rewards = rewards.clone();
        FakeHost::handler(move |req| {
            if req.url.contains("/transactions") {
                Reply::json(200, &txns)
            } else {
                Reply::json(200, &rewards)
            }
        })
        .run::<PartnerStack>(open_read(
            "ps",
            "http://fake/api/v2",
            json!({ "review_days": 0 }),
            window(),
        ))
    };
    let list = |amount: Value| {
        json!({"data": {"has_more": false, "items": [
            {"key": 5501.0, "amount": amount, "currency": "EUR"},
        ]}, "message": "ok", "status": 200})
    };
    let out = run(list(json!(12_345)));
    out.result.as_ref().unwrap();
    let c = conv(&out.committed[0]);
    assert_eq!(c.order_id.as_deref(), Some("5501"));
    assert_eq!(c.partner_id, "101");
    assert_eq!(c.campaign_id.as_deref(), Some("7"));
    let sale = c.sale_amount.as_ref().unwrap();
    assert_eq!(
        (sale.amount, sale.currency.as_str()),
        (Decimal::new(12_345, 2), "EUR")
    );
    let out = run(list(json!("")));
    let err = out.result.unwrap_err();
    assert_eq!(err.kind, ErrorKind::BadResponse);
    assert!(
        err.message.starts_with(
            "transactions page 1: record 1 (key 5501.0): field `amount` is \"\": a \
             transaction's amount is integer cents"
        ),
        "{}",
        err.message
    );
    assert!(out.committed.is_empty());
}

/// QA37 R-M3: a null `partnership.partner_key` filed the claim under the
/// partnership's own key (`pshp_1`, another payee), though
/// `customer.partner_key` named the partner.
#[test]
fn a_null_partnership_partner_key_falls_back_to_the_customers_partner() {
    let mut r = reward("rew_x", "2026-11-02T10:00:00Z", "approved", "available");
    r["partnership"]["partner_key"] = Value::Null;
    r["customer"] = json!({"key": "cust_1", "partner_key": "part_b"});
    let body = json!({"data": {"items": [r], "has_more": false}}).to_string();
    let page = row::parse_rewards_page(body.as_bytes(), &row::Transactions::new(), "USD").unwrap();
    let Record::Conversion(c) = &page.records[0] else {
        panic!("not a conversion")
    };
    assert_eq!(c.partner_id, "part_b");
    // With neither partner key, the partnership's key is still the last resort.
    let mut r = reward("rew_y", "2026-11-02T10:00:00Z", "approved", "available");
    r["partnership"]["partner_key"] = Value::Null;
    let body = json!({"data": {"items": [r], "has_more": false}}).to_string();
    let page = row::parse_rewards_page(body.as_bytes(), &row::Transactions::new(), "USD").unwrap();
    let Record::Conversion(c) = &page.records[0] else {
        panic!("not a conversion")
    };
    assert_eq!(c.partner_id, "pshp_1");
}
