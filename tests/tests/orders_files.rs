//! The orders connector (files mode) end to end in process: the fake host
//! serves the files, and what it commits goes into a real sled store the way
//! the daemon's sync does (records + checkpoint in one transaction).

use plugin_api::protocol::{RecordKind, SessionOpen, Window};
use plugin_api::testing::{open_read, FakeHost, Outcome};
use plugin_api::{OrderStatus, Record};
use reckon::store::{CommitStats, Store};
use reckon_plugin_orders::Orders;
use rust_decimal::Decimal;
use serde_json::json;
use std::str::FromStr;

const SOURCE: &str = "erp";

fn open(store: &Store) -> SessionOpen {
    let mut o = open_read(
        SOURCE,
        "",
        json!({ "mode": "files", "directory": "/srv/orders", "default_currency": "EUR" }),
        Window {
            from: chrono::NaiveDate::from_ymd_opt(2026, 11, 1).unwrap(),
            to: chrono::NaiveDate::from_ymd_opt(2026, 11, 1).unwrap(),
        },
    );
    o.checkpoints = store.checkpoints(SOURCE).unwrap();
    o
}

/// Commits what the session committed, like the daemon's store sink.
fn commit(store: &Store, out: &Outcome) -> CommitStats {
    let records: Vec<Record> = out
        .committed
        .iter()
        .cloned()
        .map(|mut r| {
            r.set_source(SOURCE);
            r
        })
        .collect();
    store
        .commit_page(SOURCE, &records, out.checkpoints.last(), chrono::Utc::now())
        .unwrap()
}

fn csv(n: usize, amount_of_7: &str) -> String {
    let mut s =
        String::from("order_id,created_at,amount,currency,click_ids,refund_amount,refunded_at\n");
    for i in 0..n {
        let amount = if i == 7 {
            amount_of_7.to_owned()
        } else {
            format!("{}.25", 10 + i)
        };
        let refund = if i % 5 == 0 {
            "2.00,2026-11-02T00:00:00Z"
        } else {
            ","
        };
        s.push_str(&format!(
            "C-{i},2026-11-01T08:00:00Z,{amount},USD,ck{i},{refund}\n"
        ));
    }
    s
}

fn jsonl(n: usize) -> String {
    (0..n)
        .map(|i| {
            json!({"order_id": format!("J-{i}"), "created_at": "2026-11-01T09:00:00+01:00",
                   "amount": format!("{i}.5"), "alt_ids": [format!("#{i}")], "status": "fulfilled"})
            .to_string()
                + "\n"
        })
        .collect()
}

fn d(s: &str) -> Decimal {
    Decimal::from_str(s).unwrap()
}

fn sum_amounts(store: &Store) -> (u64, Decimal, Decimal) {
    let mut amount = Decimal::ZERO;
    let mut refunds = Decimal::ZERO;
    for s in store.scan_records(RecordKind::Order, Some(SOURCE)) {
        if let Record::Order(o) = s.unwrap().record {
            amount += o.amount.amount;
            refunds += o.refunded();
        }
    }
    (
        store.count_records(RecordKind::Order, Some(SOURCE)),
        amount,
        refunds,
    )
}

#[test]
fn csv_and_jsonl_files_are_stored_once_and_a_changed_file_makes_revisions() {
    let dir = tempfile::tempdir().unwrap();
    let store = Store::open(dir.path()).unwrap();

    let run = |csv_text: String| {
        FakeHost::handler(|_| panic!("files mode makes no HTTP request"))
            .with_file("2026-11-01.csv", csv_text)
            .with_file("2026-11-01.jsonl", jsonl(30))
            .with_file("README.txt", "not an order file")
            .run::<Orders>(open(&store))
    };

    let first = run(csv(40, "17.25"));
    first.result.as_ref().unwrap();
    let stats = commit(&store, &first);
    assert_eq!(stats.new, 70);
    // Ground truth: 40 CSV orders 10.25..49.25, 8 refunds of 2.00; 30 JSONL orders 0.5..29.5.
    let csv_sum: Decimal = (0..40).map(|i| d(&format!("{}.25", 10 + i))).sum();
    let jsonl_sum: Decimal = (0..30).map(|i| d(&format!("{i}.5"))).sum();
    assert_eq!(sum_amounts(&store), (70, csv_sum + jsonl_sum, d("16.00")));
    let j = store
        .get_record(RecordKind::Order, SOURCE, "J-3")
        .unwrap()
        .unwrap();
    match j.record {
        Record::Order(o) => {
            assert_eq!(o.amount.currency, "EUR");
            assert_eq!(o.status, OrderStatus::Fulfilled);
            assert_eq!(o.created_at.to_rfc3339(), "2026-11-01T08:00:00+00:00");
        }
        other => panic!("{other:?}"),
    }

    // The same files again: nothing is re-emitted, nothing written.
    let second = run(csv(40, "17.25"));
    second.result.as_ref().unwrap();
    assert!(second.committed.is_empty());
    assert_eq!(commit(&store, &second), CommitStats::default());

    // One order changed in the CSV: that file is read again, one revision.
    let third = run(csv(40, "99.99"));
    third.result.as_ref().unwrap();
    assert_eq!(third.committed.len(), 40);
    let stats = commit(&store, &third);
    assert_eq!((stats.new, stats.changed, stats.unchanged), (0, 1, 39));
    let c7 = store
        .get_record(RecordKind::Order, SOURCE, "C-7")
        .unwrap()
        .unwrap();
    assert_eq!(c7.revision, 2);
    assert_eq!(
        store
            .revisions(RecordKind::Order, SOURCE, "C-7")
            .unwrap()
            .len(),
        1
    );
}

#[test]
fn a_bad_line_names_file_line_and_column_and_stores_nothing_of_that_file() {
    let dir = tempfile::tempdir().unwrap();
    let store = Store::open(dir.path()).unwrap();
    let mut bad = jsonl(5);
    bad.push_str(
        "{\"order_id\":\"J-5\",\"created_at\":\"2026-11-01T09:00:00Z\",\"amount\":\"7.O0\"}\n",
    );
    let out = FakeHost::handler(|_| panic!("no HTTP"))
        .with_file("a.csv", csv(10, "17.25"))
        .with_file("b.jsonl", bad)
        .run::<Orders>(open(&store));
    let err = out.result.as_ref().unwrap_err();
    assert_eq!(
        err.message,
        "file `b.jsonl` line 6, column 55 (`amount`), order J-5: \"7.O0\" is not a decimal number"
    );
    commit(&store, &out);
    // a.csv is stored and checkpointed; nothing of b.jsonl.
    assert_eq!(store.count_records(RecordKind::Order, Some(SOURCE)), 10);
    let cp = &store.checkpoints(SOURCE).unwrap()["order_files"];
    assert!(cp.state["files"].get("a.csv").is_some());
    assert!(cp.state["files"].get("b.jsonl").is_none());

    // A CSV row with a bad date: file, line, column and field are named.
    let bad_csv = "order_id,created_at,amount\nX-1,2026-13-01T00:00:00Z,1\n";
    let out = FakeHost::handler(|_| panic!("no HTTP"))
        .with_file("c.csv", bad_csv)
        .run::<Orders>(open(&store));
    let msg = out.result.unwrap_err().message;
    assert!(
        msg.starts_with("file `c.csv` line 2, column 2 (`created_at`), order X-1:"),
        "{msg}"
    );
}
