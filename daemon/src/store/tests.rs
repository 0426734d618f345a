use super::*;
use plugin_api::protocol::{Conversion, ConversionStatus, EventType, Money, Utm};

fn conv(id: &str, commission: i64) -> Record {
    Record::Conversion(Conversion {
        source: "net".into(),
        external_id: id.into(),
        order_id: Some(format!("o-{id}")),
        click_id: None,
        clicked_at: None,
        partner_id: "p1".into(),
        partner_name: None,
        campaign_id: None,
        event_type: EventType::Sale,
        occurred_at: "2026-01-02T03:04:05Z".parse().unwrap(),
        sale_amount: None,
        commission: Some(Money::from_minor(commission, "USD")),
        status: ConversionStatus::Pending,
        status_changed_at: None,
        locked_at: None,
        coupon: None,
        utm: Utm::default(),
    })
}

fn cp(stream: &str, n: i64) -> Checkpoint {
    Checkpoint {
        stream: stream.into(),
        watermark: DateTime::from_timestamp(1_700_000_000 + n, 0).unwrap(),
        state: serde_json::json!({ "page": n }),
    }
}

fn t(n: i64) -> DateTime<Utc> {
    DateTime::from_timestamp(1_800_000_000 + n, 0).unwrap()
}

#[test]
fn upsert_counts_new_changed_unchanged_and_keeps_revisions() {
    let dir = tempfile::tempdir().unwrap();
    let store = Store::open(dir.path()).unwrap();
    let s = store
        .commit_page(
            "net",
            &[conv("a", 100), conv("b", 200)],
            Some(&cp("c", 1)),
            t(0),
        )
        .unwrap();
    assert_eq!(
        s,
        CommitStats {
            new: 2,
            changed: 0,
            unchanged: 0
        }
    );
    assert_eq!(store.last_seq().unwrap(), 2);

    let s = store
        .commit_page(
            "net",
            &[conv("a", 100), conv("b", 250)],
            Some(&cp("c", 2)),
            t(10),
        )
        .unwrap();
    assert_eq!(
        s,
        CommitStats {
            new: 0,
            changed: 1,
            unchanged: 1
        }
    );
    assert_eq!(store.last_seq().unwrap(), 3);

    let b = store
        .get_record(RecordKind::Conversion, "net", "b")
        .unwrap()
        .unwrap();
    assert_eq!(b.revision, 2);
    assert_eq!(b.seq, 3);
    assert_eq!(b.first_seen, t(0));
    assert_eq!(b.changed_at, t(10));
    assert_eq!(b.record, conv("b", 250));
    let revs = store.revisions(RecordKind::Conversion, "net", "b").unwrap();
    assert_eq!(revs.len(), 1);
    assert_eq!(revs[0].revision, 1);
    assert_eq!(revs[0].record, conv("b", 200));
    assert_eq!(revs[0].superseded_at, t(10));
    // "a" has no revisions; a key that is a prefix of another does not leak.
    assert!(store
        .revisions(RecordKind::Conversion, "net", "a")
        .unwrap()
        .is_empty());

    let changes: Vec<Change> = store.changes_since(1).map(Result::unwrap).collect();
    assert_eq!(
        changes
            .iter()
            .map(|c| (c.seq, c.key.as_str()))
            .collect::<Vec<_>>(),
        vec![(2, "b"), (3, "b")]
    );
    assert_eq!(store.checkpoints("net").unwrap()["c"], cp("c", 2));
}

#[test]
fn unchanged_repull_writes_nothing() {
    let dir = tempfile::tempdir().unwrap();
    let store = Store::open(dir.path()).unwrap();
    store
        .commit_page("net", &[conv("a", 1)], Some(&cp("c", 1)), t(0))
        .unwrap();
    let seq = store.last_seq().unwrap();
    let s = store
        .commit_page("net", &[conv("a", 1)], Some(&cp("c", 1)), t(99))
        .unwrap();
    assert_eq!(s.unchanged, 1);
    assert_eq!(store.last_seq().unwrap(), seq);
    let a = store
        .get_record(RecordKind::Conversion, "net", "a")
        .unwrap()
        .unwrap();
    assert_eq!(a.changed_at, t(0));
}

#[test]
fn a_key_twice_in_one_page_is_stored_once() {
    let dir = tempfile::tempdir().unwrap();
    let store = Store::open(dir.path()).unwrap();
    let s = store
        .commit_page("net", &[conv("a", 1), conv("a", 2)], None, t(0))
        .unwrap();
    assert_eq!(
        s,
        CommitStats {
            new: 1,
            changed: 0,
            unchanged: 0
        }
    );
    let a = store
        .get_record(RecordKind::Conversion, "net", "a")
        .unwrap()
        .unwrap();
    assert_eq!((a.revision, a.record), (1, conv("a", 2)));
}

#[test]
fn scans_are_per_source_and_in_key_order() {
    let dir = tempfile::tempdir().unwrap();
    let store = Store::open(dir.path()).unwrap();
    store
        .commit_page("net", &[conv("b", 1), conv("a", 1)], None, t(0))
        .unwrap();
    store
        .commit_page("net2", &[conv("c", 1)], None, t(0))
        .unwrap();
    let keys: Vec<String> = store
        .scan_records(RecordKind::Conversion, Some("net"))
        .map(|s| s.unwrap().record.key())
        .collect();
    assert_eq!(keys, vec!["a", "b"]);
    assert_eq!(store.count_records(RecordKind::Conversion, None), 3);
    assert_eq!(store.count_records(RecordKind::Conversion, Some("net")), 2);
    // A change is not a new record.
    store
        .commit_page("net", &[conv("a", 9)], None, t(1))
        .unwrap();
    assert_eq!(store.count_records(RecordKind::Conversion, Some("net")), 2);
    assert_eq!(store.count_records(RecordKind::Spend, None), 0);
}

#[test]
fn second_open_of_the_same_dir_is_refused() {
    let dir = tempfile::tempdir().unwrap();
    let _store = Store::open(dir.path()).unwrap();
    let err = Store::open(dir.path()).unwrap_err();
    assert!(matches!(err, StoreError::Locked { .. }), "{err}");
    assert!(err.to_string().contains("in use by another reckon process"));
}

#[test]
fn data_survives_reopen() {
    let dir = tempfile::tempdir().unwrap();
    {
        let store = Store::open(dir.path()).unwrap();
        store
            .commit_page("net", &[conv("a", 1)], Some(&cp("c", 5)), t(0))
            .unwrap();
        store.flush().unwrap();
    }
    let store = Store::open(dir.path()).unwrap();
    assert_eq!(store.schema_version().unwrap(), SCHEMA_VERSION);
    assert_eq!(store.checkpoints("net").unwrap()["c"], cp("c", 5));
    assert!(store
        .get_record(RecordKind::Conversion, "net", "a")
        .unwrap()
        .is_some());
}

#[test]
fn unreadable_value_is_reported_with_its_key() {
    let dir = tempfile::tempdir().unwrap();
    let store = Store::open(dir.path()).unwrap();
    store
        .commit_page("net", &[conv("a", 1)], None, t(0))
        .unwrap();
    store
        .inner
        .data
        .insert(
            record_key(RecordKind::Conversion, "net", "zz"),
            &[9u8, 1, 2][..],
        )
        .unwrap();
    let results: Vec<_> = store.scan_records(RecordKind::Conversion, None).collect();
    assert!(results[0].is_ok());
    let err = results[1].as_ref().unwrap_err().to_string();
    assert_eq!(
        err,
        "unreadable value in tree `conversions` at key `net/zz`: unknown record format version 9 (this reckon reads 1 and 2)"
    );
    // A commit over a corrupt value refuses instead of overwriting it.
    let err = store
        .commit_page("net", &[conv("zz", 1)], None, t(1))
        .unwrap_err();
    assert!(matches!(err, StoreError::Corrupt { .. }));
}

#[test]
fn newer_schema_is_refused() {
    let dir = tempfile::tempdir().unwrap();
    {
        let store = Store::open(dir.path()).unwrap();
        store
            .inner
            .meta
            .insert(META_SCHEMA, &99u32.to_be_bytes())
            .unwrap();
        store.flush().unwrap();
    }
    let err = Store::open(dir.path()).unwrap_err();
    assert!(
        matches!(err, StoreError::SchemaTooNew { found: 99, .. }),
        "{err}"
    );
}

#[test]
fn runs_last_fire_and_domain_trees() {
    let dir = tempfile::tempdir().unwrap();
    let store = Store::open(dir.path()).unwrap();
    let mut run = RunRecord {
        source: "net".into(),
        started_at: t(0),
        ended_at: None,
        outcome: RunOutcome::Running,
        windows: vec![],
        pages: 0,
        requests: 0,
        retries: 0,
        rate_limit_waits: 0,
        records_new: 0,
        records_changed: 0,
        records_unchanged: 0,
        error: None,
    };
    store.save_run(&run).unwrap();
    run.outcome = RunOutcome::Success;
    run.ended_at = Some(t(5));
    store.save_run(&run).unwrap();
    let mut later = run.clone();
    later.started_at = t(100);
    store.save_run(&later).unwrap();
    let runs = store.runs("net", 10).unwrap();
    assert_eq!(runs.len(), 2);
    assert_eq!(runs[0].started_at, t(100));
    assert_eq!(runs[1].outcome, RunOutcome::Success);

    assert_eq!(store.last_fire("net").unwrap(), None);
    store.set_last_fire("net", t(7)).unwrap();
    assert_eq!(store.last_fire("net").unwrap(), Some(t(7)));

    assert!(store.domain("spend").is_err());
    let recon = store.domain("recon").unwrap();
    recon
        .apply(vec![
            ("p1/a".into(), Some(serde_json::json!({"x": 1}))),
            ("p1/b".into(), Some(serde_json::json!({"x": 2}))),
            ("p2/a".into(), Some(serde_json::json!({"x": 3}))),
        ])
        .unwrap();
    recon.apply(vec![("p1/b".into(), None)]).unwrap();
    let got: Vec<(String, serde_json::Value)> =
        recon.scan_prefix("p1/").map(Result::unwrap).collect();
    assert_eq!(got, vec![("p1/a".to_string(), serde_json::json!({"x": 1}))]);
    assert_eq!(
        recon.get::<serde_json::Value>("p2/a").unwrap(),
        Some(serde_json::json!({"x": 3}))
    );
}

#[test]
fn pages_of_keys_spread_over_the_store_are_judged_like_ordered_ones() {
    // Many stored keys between the page's smallest and largest key make the
    // range scan give up and fall back to point lookups: same results.
    let dir = tempfile::tempdir().unwrap();
    let store = Store::open(dir.path()).unwrap();
    let all: Vec<Record> = (0..3000).map(|i| conv(&format!("k{i:05}"), 1)).collect();
    for chunk in all.chunks(500) {
        store.commit_page("net", chunk, None, t(0)).unwrap();
    }
    // Every 100th key changed, every 100th+1 unchanged, plus new keys
    // spread between them.
    let mut page = Vec::new();
    for i in (0..3000).step_by(100) {
        page.push(conv(&format!("k{i:05}"), 2));
        page.push(conv(&format!("k{:05}", i + 1), 1));
        page.push(conv(&format!("k{i:05}x"), 1));
    }
    let s = store.commit_page("net", &page, None, t(1)).unwrap();
    assert_eq!(
        s,
        CommitStats {
            new: 30,
            changed: 30,
            unchanged: 30
        }
    );
    assert_eq!(
        store.count_records(RecordKind::Conversion, Some("net")),
        3030
    );
    let changes: Vec<Change> = store.changes_since(3000).map(Result::unwrap).collect();
    assert_eq!(changes.len(), 60);
    assert_eq!(changes[0].seq, 3001);
    assert_eq!(changes[59].seq, 3060);
    assert_eq!(store.changes_since(0).count(), 3060);
    assert_eq!(store.changes_since(3059).count(), 1);
    assert_eq!(store.changes_since(3060).count(), 0);
}

/// Writes a schema-1 store (the layout before this binary): records in
/// per-kind trees with JSON bodies, a revision, per-change log entries,
/// a checkpoint and counters in `meta`.
fn write_v1_store(dir: &Path) {
    let db = sled::open(dir.join("store")).unwrap();
    let v1_stored = |rev: u32, seq: u64, first: i64, changed: i64, r: &Record| {
        let mut v = vec![1u8];
        v.extend_from_slice(&rev.to_be_bytes());
        v.extend_from_slice(&seq.to_be_bytes());
        v.extend_from_slice(&first.to_be_bytes());
        v.extend_from_slice(&changed.to_be_bytes());
        v.extend_from_slice(&serde_json::to_vec(r).unwrap());
        v
    };
    let conv_tree = db.open_tree("conversions").unwrap();
    conv_tree
        .insert("net/a", v1_stored(1, 1, 10, 10, &conv("a", 1)))
        .unwrap();
    conv_tree
        .insert("net/b", v1_stored(2, 3, 10, 20, &conv("b", 3)))
        .unwrap();
    let mut rev = vec![1u8];
    rev.extend_from_slice(&20i64.to_be_bytes());
    rev.extend_from_slice(&serde_json::to_vec(&conv("b", 2)).unwrap());
    db.open_tree("revisions")
        .unwrap()
        .insert(b"conversions/net/b\x00\x00\x00\x00\x01", rev)
        .unwrap();
    let changes = db.open_tree("changes").unwrap();
    for (seq, key) in [(1u64, "a"), (2, "b"), (3, "b")] {
        let mut v = vec![1u8, 2];
        v.extend_from_slice(&3u16.to_be_bytes());
        v.extend_from_slice(b"net");
        v.extend_from_slice(key.as_bytes());
        changes.insert(seq.to_be_bytes(), v).unwrap();
    }
    db.open_tree("checkpoints")
        .unwrap()
        .insert("net/c", codec::encode_json(&cp("c", 7)))
        .unwrap();
    for t in ["spend", "orders", "runs"] {
        db.open_tree(t).unwrap();
    }
    let meta = db.open_tree("meta").unwrap();
    meta.insert(META_SCHEMA, &1u32.to_be_bytes()).unwrap();
    meta.insert(SEQ_NAME, &3u64.to_be_bytes()).unwrap();
    meta.insert("count/conversions/net", &2u64.to_be_bytes())
        .unwrap();
    meta.insert("last_fire/net", &5i64.to_be_bytes()).unwrap();
    db.flush().unwrap();
}

#[test]
fn a_schema_1_store_is_migrated_on_open() {
    let dir = tempfile::tempdir().unwrap();
    write_v1_store(dir.path());
    let store = Store::open(dir.path()).unwrap();
    assert_eq!(store.schema_version().unwrap(), SCHEMA_VERSION);
    let b = store
        .get_record(RecordKind::Conversion, "net", "b")
        .unwrap()
        .unwrap();
    assert_eq!((b.revision, b.seq, &b.record), (2, 3, &conv("b", 3)));
    assert_eq!(b.first_seen.timestamp_micros(), 10);
    assert_eq!(b.changed_at.timestamp_micros(), 20);
    let revs = store.revisions(RecordKind::Conversion, "net", "b").unwrap();
    assert_eq!(revs.len(), 1);
    assert_eq!((revs[0].revision, &revs[0].record), (1, &conv("b", 2)));
    let changes: Vec<(u64, String)> = store
        .changes_since(1)
        .map(|c| c.map(|c| (c.seq, c.key)).unwrap())
        .collect();
    assert_eq!(changes, vec![(2, "b".to_string()), (3, "b".to_string())]);
    assert_eq!(store.last_seq().unwrap(), 3);
    assert_eq!(store.count_records(RecordKind::Conversion, Some("net")), 2);
    assert_eq!(store.checkpoints("net").unwrap()["c"], cp("c", 7));
    assert_eq!(
        store.last_fire("net").unwrap(),
        DateTime::from_timestamp_micros(5)
    );
    // The old trees are gone and the values are in the new format: a
    // re-pull of the same records writes nothing.
    let names: Vec<String> = store
        .inner
        .db
        .tree_names()
        .iter()
        .map(|n| String::from_utf8_lossy(n).into_owned())
        .collect();
    assert!(
        !names.iter().any(|n| V1_TREES.contains(&n.as_str())),
        "{names:?}"
    );
    let s = store
        .commit_page("net", &[conv("a", 1), conv("b", 3)], None, t(0))
        .unwrap();
    assert_eq!(s.unchanged, 2);
    assert_eq!(store.last_seq().unwrap(), 3);
    // New changes continue the sequence.
    store
        .commit_page("net", &[conv("c", 1)], None, t(0))
        .unwrap();
    assert_eq!(
        store
            .get_record(RecordKind::Conversion, "net", "c")
            .unwrap()
            .unwrap()
            .seq,
        4
    );
    drop(store);
    // Reopening does not migrate again.
    let store = Store::open(dir.path()).unwrap();
    assert_eq!(store.count_records(RecordKind::Conversion, Some("net")), 3);
    assert_eq!(store.changes_since(0).count(), 4);
}
