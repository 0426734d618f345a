//! QA35d, API drift on CAKE: its answers change from what the reference
//! documents (a renamed records key, an id sent as a float, an amount sent
//! empty or as a number, an unknown disposition), served by the loopback
//! fake's `drift` controls. The connector must notice each: fail the run
//! naming the stream, row, record and field (nothing of the bad page
//! stored, the stream not marked complete), read the drifted value as the
//! same value, or warn. (Everflow's part is
//! `affiliate_everflow_cake_drift_qa35_everflow.rs`.)

mod affiliate_support;

use affiliate_support::{conversions, find, run, window};
use plugin_api::protocol::{ErrorKind, LogLevel};
use plugin_api::testing::Outcome;
use plugin_api::ConversionStatus;
use reckon_plugin_cake::Cake;
use reckon_tests::fakes::affiliate::{shared, Shared};
use reckon_tests::fakes::cake::{CakeFake, Params as CakeParams};
use serde_json::json;

const CAKE_SECRETS: &[(&str, &str)] = &[("api_key", "cake-key")];

fn assert_contains(message: &str, parts: &[&str]) {
    for part in parts {
        assert!(message.contains(part), "{part:?} not in {message}");
    }
}

fn cake_settings() -> serde_json::Value {
    json!({ "base_url": "http://fake", "row_limit": 700 })
}

fn cake(fake: &Shared<CakeFake>, w: plugin_api::protocol::Window) -> Outcome {
    run::<Cake, _>(fake, CAKE_SECRETS, cake_settings(), w)
}

/// D-H1: `EventConversionChanges` answering its rows under another key
/// (`event_conversion_changes`) was read as "no changes": the run said
/// `ok`, the reversal of an older conversion was never stored and the
/// stream was marked complete. It now fails naming the stream and the keys
/// sent; the next run without the drift stores the reversal.
#[test]
fn cake_a_renamed_records_key_in_the_changes_fails_and_the_reversal_is_not_lost() {
    let fake = shared(CakeFake::new(CakeParams::small(51, 300)));
    let first = cake(&fake, window((2026, 11, 1), (2026, 11, 27)));
    first.result.as_ref().unwrap();
    let old = {
        let f = fake.lock().unwrap();
        let cut: chrono::DateTime<chrono::Utc> = "2026-11-20T00:00:00Z".parse().unwrap();
        f.rows()
            .iter()
            .find(|r| r.at < cut && r.disposition == Some("Approved"))
            .unwrap()
            .id
    };
    {
        let mut f = fake.lock().unwrap();
        f.reverse(old);
        f.drift.records_key = Some(("EventConversionChanges", "event_conversion_changes"));
    }
    let recent = window((2026, 11, 20), (2026, 11, 27));
    let out = cake(&fake, recent);
    let e = out.result.as_ref().unwrap_err();
    assert_eq!(e.kind, ErrorKind::BadResponse);
    assert_contains(
        &e.message,
        &[
            "stream `event_conversion_changes`",
            "the answer has no `d.event_conversions` array",
            "`event_conversion_changes`",
        ],
    );
    assert!(
        !out.checkpoints
            .iter()
            .any(|c| c.stream == "event_conversion_changes"),
        "the changes stream is not marked complete"
    );
    assert!(conversions(&out)
        .iter()
        .all(|c| c.external_id != old.to_string()));
    // The conversions stream read before it is unaffected.
    assert!(out
        .checkpoints
        .iter()
        .any(|c| c.stream == "event_conversions" && c.state["complete"] == json!(true)));
    fake.lock().unwrap().drift.records_key = None;
    let out = cake(&fake, recent);
    out.result.as_ref().unwrap();
    assert_eq!(
        find(&out, &old.to_string()).status,
        ConversionStatus::Reversed
    );
}

/// D-H1 for `EventConversions`: the same drift there fails too (its
/// `row_count` is named).
#[test]
fn cake_a_renamed_records_key_in_the_conversions_fails_naming_row_count() {
    let fake = shared(CakeFake::new(CakeParams::small(52, 50)));
    fake.lock().unwrap().drift.records_key = Some(("EventConversions", "conversions"));
    let out = cake(&fake, window((2026, 11, 1), (2026, 11, 27)));
    let e = out.result.as_ref().unwrap_err();
    assert_eq!(e.kind, ErrorKind::BadResponse);
    assert_contains(
        &e.message,
        &[
            "stream `event_conversions`",
            "no `d.event_conversions` array",
            "row_count is 50",
            "`conversions`",
        ],
    );
    assert!(out.committed.is_empty() && out.checkpoints.is_empty());
}

/// D-M1: `paid.amount` sent as `""` (or null) erased a stored commission
/// into unknown, silently. `paid` is on every record the reference lists,
/// so it fails the page naming the record and field.
#[test]
fn cake_a_paid_amount_sent_empty_fails_naming_the_record_and_field() {
    let fake = shared(CakeFake::new(CakeParams::small(53, 40)));
    let w = window((2026, 11, 1), (2026, 11, 27));
    let first = cake(&fake, w);
    first.result.as_ref().unwrap();
    let id = fake.lock().unwrap().rows()[7].id;
    assert!(find(&first, &id.to_string()).commission.is_some());
    for (path, value, shown) in [
        ("paid.amount", json!(""), "field `paid.amount` is \"\""),
        (
            "paid.amount",
            json!(null),
            "field `paid.amount` is missing or null",
        ),
        ("paid", json!(null), "field `paid` is missing or null"),
        (
            "paid",
            json!(6.5),
            "field `paid`: expected an object {currency_id, amount}, got a number (6.5)",
        ),
    ] {
        fake.lock().unwrap().drift.fields = vec![(id, path, value)];
        let out = cake(&fake, w);
        let e = out.result.as_ref().unwrap_err();
        assert_eq!(e.kind, ErrorKind::BadResponse, "{path}");
        assert_contains(
            &e.message,
            &[
                "stream `event_conversions` rows from 1",
                &format!("(event_conversion_id {id})"),
                shown,
            ],
        );
        assert!(out.committed.is_empty(), "{path}: nothing of the page");
    }
}

/// D-M1 for the optional `order_total` (not in the reference): sent empty,
/// the sale amount is unknown, and a warning names the field and records.
#[test]
fn cake_an_order_total_sent_empty_is_unknown_with_a_warning_naming_the_records() {
    let fake = shared(CakeFake::new(CakeParams::small(54, 30)));
    let w = window((2026, 11, 1), (2026, 11, 27));
    let (a, b) = {
        let mut f = fake.lock().unwrap();
        f.send_order_total = true;
        let (a, b) = (f.rows()[2].id, f.rows()[9].id);
        f.drift.fields = vec![
            (a, "order_total", json!("")),
            (b, "order_total", json!(null)),
        ];
        (a, b)
    };
    let out = cake(&fake, w);
    out.result.as_ref().unwrap();
    assert!(find(&out, &a.to_string()).sale_amount.is_none());
    assert!(find(&out, &b.to_string()).sale_amount.is_none());
    let c = fake.lock().unwrap().rows()[3].id;
    assert!(find(&out, &c.to_string()).sale_amount.is_some());
    let warned: Vec<_> = out
        .logs
        .iter()
        .filter(|l| {
            l.level == LogLevel::Warn
                && l.fields.get("field").map(String::as_str) == Some("order_total")
        })
        .collect();
    assert_eq!(warned.len(), 1, "{:?}", out.logs);
    let mut ids = [a, b];
    ids.sort_unstable();
    assert_eq!(warned[0].fields["records"], "2");
    assert_eq!(
        warned[0].fields["event_conversion_ids"],
        format!("{}, {}", ids[0], ids[1])
    );
    assert!(warned[0].message.contains("stored as unknown"));
}

/// D-M3 on CAKE: affiliate and offer ids sent as `201.0` are the same ids.
#[test]
fn cake_ids_sent_as_whole_floats_are_the_same_ids() {
    let fake = shared(CakeFake::new(CakeParams::small(55, 60)));
    let w = window((2026, 11, 1), (2026, 11, 27));
    let before = cake(&fake, w);
    before.result.as_ref().unwrap();
    fake.lock().unwrap().drift.float_ids = true;
    let after = cake(&fake, w);
    after.result.as_ref().unwrap();
    assert_eq!(after.committed.len(), 60);
    assert_eq!(after.committed, before.committed, "nothing changed");
    assert!(conversions(&after)
        .iter()
        .all(|c| !c.partner_id.contains('.')));
}

/// D-L1: an unknown disposition was quoted lower-cased and without the
/// expected values.
#[test]
fn cake_an_unknown_disposition_is_quoted_as_sent_with_the_expected_values() {
    let fake = shared(CakeFake::new(CakeParams::small(56, 10)));
    let id = fake.lock().unwrap().rows()[4].id;
    fake.lock().unwrap().set_disposition(id, Some("On Hold"));
    let e = cake(&fake, window((2026, 11, 1), (2026, 11, 27)))
        .result
        .unwrap_err();
    assert_contains(
        &e.message,
        &[
            &format!("(event_conversion_id {id})"),
            "unknown value \"On Hold\" (expected Approved, Pending, Rejected or Returned",
        ],
    );
}
