//! Store faults end to end: a second process on the same data directory is
//! refused; a read-only data directory is a clear error that loses nothing;
//! `reckon records export` shows what is stored.

mod core_support;

use plugin_api::protocol::{
    Checkpoint, Conversion, ConversionStatus, EventType, Money, Record, Utm,
};
use reckon::store::Store;
use std::process::Command;

fn conv(id: &str) -> Record {
    Record::Conversion(Conversion {
        source: "net".into(),
        external_id: id.into(),
        order_id: Some(format!("o-{id}")),
        click_id: None,
        clicked_at: None,
        partner_id: "p1".into(),
        partner_name: Some("Partner, One".into()),
        campaign_id: None,
        event_type: EventType::Sale,
        occurred_at: "2026-01-02T03:04:05Z".parse().unwrap(),
        sale_amount: Some(Money::from_minor(12345, "EUR")),
        commission: Some(Money::from_minor(1234, "EUR")),
        status: ConversionStatus::Approved,
        status_changed_at: None,
        locked_at: None,
        coupon: None,
        utm: Utm::default(),
    })
}

fn config_for(dir: &std::path::Path) -> std::path::PathBuf {
    let cfg = dir.join("reckon.toml");
    std::fs::write(
        &cfg,
        "[daemon]\ndata_dir = \"data\"\n\n[[connectors]]\nid = \"net\"\nplugin = \"example\"\n\
         schedule = \"0 * * * *\"\nenabled = false\n",
    )
    .unwrap();
    cfg
}

fn seed(data: &std::path::Path) {
    let store = Store::open(data).unwrap();
    let cp = Checkpoint {
        stream: "conversions".into(),
        watermark: "2026-01-03T00:00:00Z".parse().unwrap(),
        state: serde_json::json!({}),
        covers: None,
    };
    let now = "2026-01-03T00:00:00Z".parse().unwrap();
    // `b` has no commission (a null beside `a`'s object) and a name that
    // would run as a formula in a spreadsheet (QA findings on the CSV).
    let mut b = conv("b");
    if let Record::Conversion(c) = &mut b {
        c.commission = None;
        c.partner_name = Some("=HYPERLINK(\"http://x\")".into());
    }
    store
        .commit_page("net", &[conv("a"), b], Some(&cp), now)
        .unwrap();
    store.flush().unwrap();
}

#[test]
fn second_process_on_the_same_data_dir_is_refused() {
    let dir = tempfile::tempdir().unwrap();
    let cfg = config_for(dir.path());
    let _held = Store::open(&dir.path().join("data")).unwrap();
    let out = Command::new(reckon_tests::reckon_bin())
        .args(["records", "export", "--kind", "conversions", "--config"])
        .arg(&cfg)
        .output()
        .unwrap();
    // 75 (EX_TEMPFAIL): busy, run it again later (QA35a L5).
    assert_eq!(out.status.code(), Some(75));
    let err = String::from_utf8_lossy(&out.stderr);
    // The holder (this test process) wrote its pid into the lock file.
    let holder = std::process::id();
    // And its command line, as `ps` shows it (QA29-A L5).
    let command = reckon::store::process_command(holder).unwrap();
    assert!(
        err.contains(&format!(
            "is in use by another reckon process (pid {holder}, `{command}`, lock held); wait for it to finish and run this again (or stop it)"
        )),
        "{err}"
    );
}

/// QA, 2026-11-29: a `db` file cut short made every command panic (exit
/// 101) and `rm -rf data/store` made every command start an empty store
/// (`records export`: 0 records, exit 0). Both are now a clear error.
#[test]
fn a_damaged_or_missing_store_is_a_clear_error_not_a_panic_or_an_empty_store() {
    let export = |cfg: &std::path::Path| {
        Command::new(reckon_tests::reckon_bin())
            .args(["records", "export", "--kind", "conversions", "--config"])
            .arg(cfg)
            .output()
            .unwrap()
    };
    // Damaged: a few MB of records, then the `db` file cut in half.
    let dir = tempfile::tempdir().unwrap();
    let cfg = config_for(dir.path());
    let data = dir.path().join("data");
    {
        let store = Store::open(&data).unwrap();
        let now = "2026-01-03T00:00:00Z".parse().unwrap();
        for page in 0..40 {
            let records: Vec<Record> = (0..200)
                .map(|i| conv(&format!("k{page:03}-{i:04}-{}", "x".repeat(200))))
                .collect();
            store.commit_page("net", &records, None, now).unwrap();
        }
        store.flush().unwrap();
    }
    // sled writes its page-table snapshot while it opens: this one covers
    // every segment of the `db` file, so cutting it leaves the snapshot
    // pointing past the end (what made sled panic).
    drop(Store::open(&data).unwrap());
    let db = data.join("store/db");
    let len = std::fs::metadata(&db).unwrap().len();
    std::fs::OpenOptions::new()
        .write(true)
        .open(&db)
        .unwrap()
        .set_len(len / 2)
        .unwrap();
    let out = export(&cfg);
    let err = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(1), "{err}");
    // No panic escaped (the detail may quote the panic sled raised inside
    // the open, when that is how it met the damage: "sled panicked: ...").
    assert!(!err.contains("thread 'main' panicked"), "{err}");
    assert!(
        err.contains(&format!(
            "store at {} is damaged (",
            data.join("store").display()
        )),
        "{err}"
    );
    assert!(
        err.contains(&format!("restore {} from a backup", data.display())),
        "{err}"
    );

    // Missing: the store directory removed.
    std::fs::remove_dir_all(data.join("store")).unwrap();
    let out = export(&cfg);
    let err = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(1), "{err}");
    assert!(out.stdout.is_empty());
    assert!(
        err.contains(&format!(
            "data_dir {} held a store but {} is missing",
            data.display(),
            data.join("store").display()
        )),
        "{err}"
    );
    assert!(!data.join("store").exists());
}

#[test]
fn records_export_shows_what_is_stored() {
    let dir = tempfile::tempdir().unwrap();
    let cfg = config_for(dir.path());
    seed(&dir.path().join("data"));
    let run = |fmt: &str, extra: &[&str]| {
        let out = Command::new(reckon_tests::reckon_bin())
            .args([
                "records",
                "export",
                "--kind",
                "conversions",
                "--format",
                fmt,
                "--config",
            ])
            .arg(&cfg)
            .args(extra)
            .output()
            .unwrap();
        assert!(
            out.status.success(),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
        String::from_utf8(out.stdout).unwrap()
    };
    let csv = run("csv", &[]);
    // first_seen/changed_at are the commit time given above, so stable.
    insta::assert_snapshot!(csv);
    let jsonl = run(
        "jsonl",
        &[
            "--source",
            "net",
            "--from",
            "2026-01-02",
            "--to",
            "2026-01-02",
        ],
    );
    assert_eq!(jsonl.lines().count(), 2);
    assert_eq!(run("jsonl", &["--from", "2026-01-03"]).lines().count(), 0);

    // Filters that can match nothing are errors, not empty exports: one
    // the config refuses is the command's (1), days that contradict each
    // other a usage error (2) as in `kpi` (QA30-C L3: it was 1).
    let fails = |code: i32, extra: &[&str]| {
        let out = Command::new(reckon_tests::reckon_bin())
            .args(["records", "export", "--kind", "conversions", "--config"])
            .arg(&cfg)
            .args(extra)
            .output()
            .unwrap();
        let stderr = String::from_utf8(out.stderr).unwrap();
        assert_eq!(out.status.code(), Some(code), "{stderr}");
        assert!(out.stdout.is_empty());
        stderr
    };
    let e = fails(1, &["--source", "nte"]);
    assert!(
        e.contains("error: --source `nte` is not a connector or postback endpoint in ")
            && e.contains("; did you mean `net`? (configured: net)"),
        "{e}"
    );
    let e = fails(2, &["--from", "2026-01-03", "--to", "2026-01-02"]);
    assert!(
        e.contains("error: --from 2026-01-03 is after --to 2026-01-02")
            && e.contains("Usage: reckon records export"),
        "{e}"
    );
    // QA29-A L1: a connector taken out of the config keeps its records,
    // and they can still be exported (with a note).
    std::fs::write(&cfg, "[daemon]\ndata_dir = \"data\"\n").unwrap();
    let out = Command::new(reckon_tests::reckon_bin())
        .args([
            "records",
            "export",
            "--kind",
            "conversions",
            "--source",
            "net",
        ])
        .args(["--format", "jsonl", "--config"])
        .arg(&cfg)
        .output()
        .unwrap();
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "{err}");
    assert!(
        err.contains("note: `net` is not a connector or postback endpoint in ")
            && err.contains(" any more; exporting the records stored from it"),
        "{err}"
    );
    assert_eq!(String::from_utf8_lossy(&out.stdout).lines().count(), 2);
}

#[test]
fn read_only_data_dir_is_a_clear_error_and_loses_nothing() {
    use std::os::unix::fs::PermissionsExt;
    use std::os::unix::process::CommandExt;
    let dir = tempfile::tempdir().unwrap();
    std::fs::set_permissions(dir.path(), std::fs::Permissions::from_mode(0o755)).unwrap();
    let cfg = config_for(dir.path());
    let data = dir.path().join("data");
    seed(&data);
    let set_mode = |mode: u32| {
        for e in walk(&data) {
            let m = if e.is_dir() { mode | 0o111 } else { mode };
            std::fs::set_permissions(&e, std::fs::Permissions::from_mode(m)).unwrap();
        }
    };
    set_mode(0o444);
    // The child may run as `nobody` (below), who cannot reach a binary inside
    // a private checkout: run a copy from this world-readable directory.
    let bin = dir.path().join("reckon");
    std::fs::copy(reckon_tests::reckon_bin(), &bin).unwrap();
    let mut cmd = Command::new(&bin);
    cmd.args(["records", "export", "--kind", "conversions", "--config"])
        .arg(&cfg);
    // root ignores permissions: run the child as `nobody` then.
    let is_root = std::fs::metadata("/proc/self").map(|m| {
        use std::os::unix::fs::MetadataExt;
        m.uid() == 0
    });
    if is_root.unwrap_or(false) {
        cmd.uid(65534).gid(65534);
    }
    let out = cmd.output().unwrap();
    set_mode(0o644);
    assert_eq!(out.status.code(), Some(1));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("reckon.lock"), "{err}");
    assert!(
        err.contains(&format!("data_dir {} is not writable", data.display())),
        "{err}"
    );
    // Nothing committed was lost.
    let store = Store::open(&data).unwrap();
    assert_eq!(
        store.count_records(plugin_api::protocol::RecordKind::Conversion, Some("net")),
        2
    );
    assert!(store
        .checkpoints("net")
        .unwrap()
        .contains_key("conversions"));
}

fn walk(p: &std::path::Path) -> Vec<std::path::PathBuf> {
    let mut out = vec![p.to_path_buf()];
    if p.is_dir() {
        for e in std::fs::read_dir(p).unwrap().flatten() {
            out.extend(walk(&e.path()));
        }
    }
    out
}

#[test]
fn a_reader_that_stops_early_ends_the_export_quietly() {
    // `reckon records export | head`: the pipe closes while reckon writes;
    // that is not an error and must not panic.
    let dir = tempfile::tempdir().unwrap();
    let cfg = config_for(dir.path());
    let store = Store::open(&dir.path().join("data")).unwrap();
    let many: Vec<Record> = (0..2000).map(|i| conv(&format!("k{i:05}"))).collect();
    let now = "2026-01-03T00:00:00Z".parse().unwrap();
    store.commit_page("net", &many, None, now).unwrap();
    store.flush().unwrap();
    drop(store);
    for format in ["jsonl", "csv"] {
        let mut child = Command::new(reckon_tests::reckon_bin())
            .arg("--config")
            .arg(&cfg)
            .args([
                "records",
                "export",
                "--kind",
                "conversions",
                "--format",
                format,
            ])
            .stdout(std::process::Stdio::piped())
            .stderr(std::process::Stdio::piped())
            .spawn()
            .unwrap();
        // Close the read end before reckon has written its ~600 KB.
        drop(child.stdout.take());
        let out = child.wait_with_output().unwrap();
        let err = String::from_utf8_lossy(&out.stderr);
        assert!(!err.contains("panicked"), "{format}: {err}");
        assert!(!err.contains("error"), "{format}: {err}");
        assert_eq!(out.status.code(), Some(0), "{format}: {err}");
    }
}

#[test]
fn records_history_lists_every_revision_with_when_it_was_current() {
    let dir = tempfile::tempdir().unwrap();
    let cfg = config_for(dir.path());
    seed(&dir.path().join("data"));
    {
        // The network restates `b` a day later: revision 2.
        let store = Store::open(&dir.path().join("data")).unwrap();
        let mut b = conv("b");
        if let Record::Conversion(c) = &mut b {
            c.status = ConversionStatus::Reversed;
        }
        let later = "2026-01-04T00:00:00Z".parse().unwrap();
        store.commit_page("net", &[b], None, later).unwrap();
        store.flush().unwrap();
    }
    let run = |args: &[&str]| {
        Command::new(reckon_tests::reckon_bin())
            .args([
                "records",
                "history",
                "--kind",
                "conversions",
                "--source",
                "net",
            ])
            .args(args)
            .arg("--config")
            .arg(&cfg)
            .output()
            .unwrap()
    };
    let out = run(&["--key", "b"]);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let rows: Vec<serde_json::Value> = String::from_utf8_lossy(&out.stdout)
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    assert_eq!(rows.len(), 2);
    assert_eq!(
        (rows[0]["revision"].as_u64(), rows[1]["revision"].as_u64()),
        (Some(1), Some(2))
    );
    assert_eq!(rows[0]["current_to"], rows[1]["current_from"]);
    assert_eq!(rows[0]["current_to"], "2026-01-04T00:00:00Z");
    assert!(rows[1]["current_to"].is_null());
    assert_eq!(rows[0]["record"]["status"], "approved");
    assert_eq!(rows[1]["record"]["status"], "reversed");
    let csv = run(&["--key", "b", "--format", "csv"]);
    let csv = String::from_utf8_lossy(&csv.stdout);
    assert!(
        csv.starts_with("source,key,revision,current_from,current_to,"),
        "{csv}"
    );
    // A key that is not stored is named.
    let out = run(&["--key", "zz"]);
    assert_eq!(out.status.code(), Some(1));
    assert!(String::from_utf8_lossy(&out.stderr).contains("no conversions record `zz` from `net`"));
    // QA29-D L2: a source the config does not name is said to be so, not
    // sent to an export that refuses it.
    let out = Command::new(reckon_tests::reckon_bin())
        .args(["records", "history", "--kind", "conversions"])
        .args(["--source", "nte", "--key", "b", "--config"])
        .arg(&cfg)
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(1));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.contains("no conversions record `b` from `nte` is stored, and --source `nte` is not a connector or postback endpoint in")
            && err.contains("did you mean `net`?"),
        "{err}"
    );
}
