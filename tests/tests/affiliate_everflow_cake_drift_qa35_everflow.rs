//! QA35d, API drift on Everflow: its answers change from what the
//! reference documents (a renamed records key, an id sent as a float, an
//! amount sent empty, rows left out of a page, an object sent as an array
//! or a number), served by the loopback fake's `drift` controls. The
//! connector must notice each: fail the run naming the stream, page,
//! record and field (earlier pages kept, nothing of the bad page stored,
//! the window not marked complete), or read the drifted value as the same
//! value. (CAKE's part is `affiliate_everflow_cake_drift_qa35_cake.rs`: two
//! plugins cannot link into one test binary.)

mod affiliate_support;

use affiliate_support::{conversions, find, run, window};
use plugin_api::protocol::ErrorKind;
use plugin_api::testing::Outcome;
use reckon_plugin_everflow::Everflow;
use reckon_tests::fakes::affiliate::{shared, Shared};
use reckon_tests::fakes::everflow::{EverflowFake, Params as EfParams};
use serde_json::json;

const EF_SECRETS: &[(&str, &str)] = &[("api_key", "ef-network-key")];

/// Everflow with its default page size (2000): a small world is one page.
fn everflow(fake: &Shared<EverflowFake>, page_size: u32) -> Outcome {
    run::<Everflow, _>(
        fake,
        EF_SECRETS,
        json!({ "page_size": page_size }),
        window((2026, 10, 1), (2026, 11, 27)),
    )
}

/// The fake's conversion ids in the order its pages serve them.
fn everflow_order(fake: &Shared<EverflowFake>) -> Vec<String> {
    let f = fake.lock().unwrap();
    let mut rows: Vec<_> = f.rows().iter().collect();
    rows.sort_by(|a, b| b.at.cmp(&a.at).then(a.id.cmp(&b.id)));
    rows.into_iter().map(|r| r.id.clone()).collect()
}

fn assert_contains(message: &str, parts: &[&str]) {
    for part in parts {
        assert!(message.contains(part), "{part:?} not in {message}");
    }
}

/// D-H1: with the rows under `data` instead of `conversions` on a single
/// page (the usual case at the default page size), the run said `ok`,
/// stored nothing and marked the window complete.
#[test]
fn everflow_a_renamed_records_key_on_a_single_page_fails_and_completes_nothing() {
    let fake = shared(EverflowFake::new(EfParams::small(41, 30)));
    fake.lock().unwrap().drift.records_key = Some("data");
    let out = everflow(&fake, 2000);
    let e = out.result.as_ref().unwrap_err();
    assert_eq!(e.kind, ErrorKind::BadResponse);
    assert_contains(
        &e.message,
        &[
            "stream `conversions` page 1: the answer has no `conversions` array",
            "paging.total_count is 30",
            "its keys: `data`, `paging`",
        ],
    );
    assert!(out.committed.is_empty() && out.uncommitted.is_empty());
    assert!(out.checkpoints.is_empty(), "the window is not complete");
    // The same page under its documented key reads.
    fake.lock().unwrap().drift.records_key = None;
    let out = everflow(&fake, 2000);
    out.result.as_ref().unwrap();
    assert_eq!(out.committed.len(), 30);
}

/// D-M4: rows left out of a page while `paging.total_count` counts them
/// were not noticed (3 of 5 stored, `ok`). A short middle page, a short
/// last page and a short single page each fail naming the page and the
/// counts; the pages before stay committed.
#[test]
fn everflow_rows_missing_from_a_page_fail_the_run_naming_the_page_and_counts() {
    let fake = shared(EverflowFake::new(EfParams::small(42, 10)));
    let order = everflow_order(&fake);
    // Pages of 4: rows 1-4, 5-8, 9-10. A row of page 2 left out.
    fake.lock().unwrap().drift.left_out = vec![order[5].clone()];
    let out = everflow(&fake, 4);
    let e = out.result.as_ref().unwrap_err();
    assert_eq!(e.kind, ErrorKind::BadResponse);
    assert_contains(
        &e.message,
        &["stream `conversions` page 2: 3 rows, but paging.total_count 10 with paging.page_size 4 puts 4 on page 2 (rows 5..=8)"],
    );
    assert_eq!(out.committed.len(), 4, "page 1 stays committed");
    assert_eq!(out.checkpoints.len(), 1);
    assert_eq!(out.checkpoints[0].state["complete"], json!(false));
    // A row of the last page.
    fake.lock().unwrap().drift.left_out = vec![order[9].clone()];
    let out = everflow(&fake, 4);
    assert_contains(
        &out.result.as_ref().unwrap_err().message,
        &["page 3: 1 rows, but paging.total_count 10 with paging.page_size 4 puts 2 on page 3 (rows 9..=10)"],
    );
    assert_eq!(out.committed.len(), 8);
    assert!(out
        .checkpoints
        .iter()
        .all(|c| c.state["complete"] == json!(false)));
    // One page holding everything.
    let out = everflow(&fake, 2000);
    assert_contains(
        &out.result.as_ref().unwrap_err().message,
        &["page 1: 9 rows, but paging.total_count 10 with paging.page_size 2000 puts 10 on page 1"],
    );
    assert!(out.committed.is_empty() && out.checkpoints.is_empty());
    // Nothing left out: the run completes.
    fake.lock().unwrap().drift.left_out.clear();
    let out = everflow(&fake, 4);
    out.result.as_ref().unwrap();
    assert_eq!(out.committed.len(), 10);
}

/// D-M1: `payout` or `sale_amount` sent as `null` or `""` replaced a stored
/// commission (or sale amount) with unknown in a new revision, silently.
/// The reference types both as numbers on every raw conversion, so either
/// empty fails the page naming the record and the field.
#[test]
fn everflow_an_amount_sent_empty_fails_naming_the_record_and_field() {
    let fake = shared(EverflowFake::new(EfParams::small(43, 20)));
    let first = everflow(&fake, 2000);
    first.result.as_ref().unwrap();
    let id = everflow_order(&fake)[3].clone();
    assert!(find(&first, &id).commission.is_some());
    for (field, value, shown) in [
        ("payout", json!(null), "field `payout` is missing or null"),
        ("payout", json!(""), "field `payout` is \"\""),
        ("sale_amount", json!(""), "field `sale_amount` is \"\""),
        ("sale_amount", json!("-"), "field `sale_amount` is \"-\""),
    ] {
        fake.lock().unwrap().drift.fields = vec![(id.clone(), field, value)];
        let out = everflow(&fake, 2000);
        let e = out.result.as_ref().unwrap_err();
        assert_eq!(e.kind, ErrorKind::BadResponse, "{field}");
        assert_contains(
            &e.message,
            &[
                "stream `conversions` page 1: record 4",
                &format!("conversion_id {id}"),
                shown,
                "the amount is not stored as unknown",
            ],
        );
        assert!(out.committed.is_empty(), "{field}: nothing of the page");
    }
    // A payout of 0 is an amount (a conversion that pays nothing).
    fake.lock().unwrap().drift.fields = vec![(id.clone(), "payout", json!(0))];
    let out = everflow(&fake, 2000);
    out.result.as_ref().unwrap();
    assert!(find(&out, &id)
        .commission
        .as_ref()
        .unwrap()
        .amount
        .is_zero());
}

/// D-M3: `network_affiliate_id` drifting from 11 to 11.0 re-keyed every
/// claim to a new payee "11.0". Ids are the same id whichever shape they
/// come in; an id with a fraction is refused naming the field.
#[test]
fn everflow_ids_sent_as_whole_floats_are_the_same_ids_and_a_fraction_is_refused() {
    let fake = shared(EverflowFake::new(EfParams::small(44, 40)));
    let before = everflow(&fake, 2000);
    before.result.as_ref().unwrap();
    fake.lock().unwrap().drift.float_ids = true;
    let after = everflow(&fake, 2000);
    after.result.as_ref().unwrap();
    assert_eq!(after.committed.len(), 40);
    for c in conversions(&after) {
        let b = find(&before, &c.external_id);
        assert_eq!(c.partner_id, b.partner_id);
        assert_eq!(c.campaign_id, b.campaign_id);
        assert!(!c.partner_id.contains('.'), "{}", c.partner_id);
    }
    assert_eq!(after.committed, before.committed, "nothing changed");
    let id = everflow_order(&fake)[0].clone();
    fake.lock().unwrap().drift.fields = vec![(
        id.clone(),
        "relationship.affiliate.network_affiliate_id",
        json!(11.5),
    )];
    let e = everflow(&fake, 2000).result.unwrap_err();
    assert_contains(
        &e.message,
        &[
            &format!("conversion_id {id}"),
            "field `relationship.affiliate.network_affiliate_id`: 11.5 has a fraction",
        ],
    );
}

/// D-L1: `relationship.affiliate` sent as an array was read as an affiliate
/// without an id ("field ... network_affiliate_id is missing"); serde reads
/// a struct from an array element by element. It now names the field and
/// what came instead, as does a number where an object belongs.
#[test]
fn everflow_an_object_sent_as_an_array_or_a_number_is_named() {
    let fake = shared(EverflowFake::new(EfParams::small(45, 5)));
    let id = everflow_order(&fake)[1].clone();
    for (path, value, shown) in [
        (
            "relationship.affiliate",
            json!([{"network_affiliate_id": 7, "name": "Aff"}]),
            "field `relationship.affiliate`: expected an object, got an array",
        ),
        (
            "relationship.affiliate",
            json!([7, "Aff"]),
            "field `relationship.affiliate`: expected an object, got an array",
        ),
        (
            "relationship",
            json!(7),
            "field `relationship`: expected an object, got a number (7)",
        ),
        (
            "query_parameters",
            json!("utm_source=x"),
            "field `query_parameters`: expected an object, got a string (\"utm_source=x\")",
        ),
    ] {
        fake.lock().unwrap().drift.fields = vec![(id.clone(), path, value)];
        let out = everflow(&fake, 2000);
        let e = out.result.as_ref().unwrap_err();
        assert_eq!(e.kind, ErrorKind::BadResponse);
        assert_contains(
            &e.message,
            &[
                "stream `conversions` page 1: record 2",
                &format!("conversion_id {id}"),
                shown,
            ],
        );
        assert!(out.committed.is_empty());
    }
}
