//! QA38b H1, end to end into a real store: an order id in two files of a
//! file drop keeps the later file's values when the older file is read
//! again (before: a refund given by the later file vanished as a new
//! revision with the older values).

use plugin_api::protocol::{RecordKind, SessionOpen, Window};
use plugin_api::testing::{open_read, FakeHost, Outcome};
use plugin_api::Record;
use reckon::store::Store;
use reckon_plugin_orders::Orders;
use rust_decimal::Decimal;
use serde_json::json;
use std::str::FromStr;

const SOURCE: &str = "erp";
const HEADER: &str = "order_id,created_at,amount,currency,refund_amount,refunded_at\n";

fn sync(store: &Store, files: &[(&str, &str)]) -> Outcome {
    let mut open: SessionOpen = open_read(
        SOURCE,
        "",
        json!({ "mode": "files", "directory": "/srv/orders" }),
        Window {
            from: chrono::NaiveDate::from_ymd_opt(2026, 11, 1).unwrap(),
            to: chrono::NaiveDate::from_ymd_opt(2026, 11, 1).unwrap(),
        },
    );
    open.checkpoints = store.checkpoints(SOURCE).unwrap();
    let mut host = FakeHost::handler(|_| panic!("no HTTP"));
    for (name, content) in files {
        host = host.with_file(name, *content);
    }
    let out = host.run::<Orders>(open);
    out.result.as_ref().unwrap();
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
        .unwrap();
    out
}

fn refunded(store: &Store, key: &str) -> Decimal {
    match store
        .get_record(RecordKind::Order, SOURCE, key)
        .unwrap()
        .expect("stored")
        .record
    {
        Record::Order(o) => o.refunded(),
        other => panic!("{other:?}"),
    }
}

#[test]
fn a_reread_older_file_does_not_undo_a_refund_given_by_a_later_file() {
    let dir = tempfile::tempdir().unwrap();
    let store = Store::open(dir.path()).unwrap();
    let a = format!("{HEADER}X5,2026-10-07T12:00:00Z,60.00,USD,,\n");
    let y = format!("{HEADER}X5,2026-10-07T12:00:00Z,60.00,USD,60.00,2026-11-12T00:00:00Z\n");

    sync(&store, &[("a.csv", &a)]);
    sync(&store, &[("a.csv", &a), ("y.csv", &y)]);
    assert_eq!(refunded(&store, "X5"), Decimal::from_str("60.00").unwrap());
    // One previous value: the unrefunded one of a.csv.
    let previous = store.revisions(RecordKind::Order, SOURCE, "X5").unwrap();
    assert_eq!(previous.len(), 1);

    // An unrelated order appended to the older file.
    let a2 = format!("{a}X8,2026-11-07T12:00:00Z,1.00,USD,,\n");
    sync(&store, &[("a.csv", &a2), ("y.csv", &y)]);
    assert_eq!(refunded(&store, "X5"), Decimal::from_str("60.00").unwrap());
    assert_eq!(
        store
            .revisions(RecordKind::Order, SOURCE, "X5")
            .unwrap()
            .len(),
        1,
        "no new revision with the older file's values"
    );
    assert!(store
        .get_record(RecordKind::Order, SOURCE, "X8")
        .unwrap()
        .is_some());
}
