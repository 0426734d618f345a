//! Disk full: `reckon sync` writing into a data directory on a tiny tmpfs
//! (mounted in a private mount namespace with `unshare -rm`, so no root is
//! needed) must stop with a clear "disk is full" error, and everything it
//! committed before must survive: the store opens elsewhere, holds only
//! correct records, and a rerun with space completes to exactly the clean
//! run's records.

mod core_support;

use core_support::*;
use std::collections::BTreeSet;
use std::process::Command;
use std::sync::Arc;

fn sync_args() -> [&'static str; 6] {
    [
        "sync",
        "examplenet",
        "--from",
        "2026-01-01",
        "--to",
        "2026-01-31",
    ]
}

#[test]
fn a_full_disk_is_a_clear_error_and_loses_nothing_committed() {
    let data = Arc::new(FakeData {
        per_day: 120,
        requests: Default::default(),
    });
    let server = reckon_tests::fakes::server::FakeServer::start(router(data.clone()));

    let clean = setup(&server.base_url, "0 0 * * *", "");
    let out = reckon(&clean.config).args(sync_args()).output().unwrap();
    assert!(
        out.status.success(),
        "clean run failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    let truth = export_conversions(&clean.config);
    assert_eq!(truth.len(), 31 * 120);

    // The same sync into a 1 MiB filesystem, which fills part-way.
    let full = setup(&server.base_url, "0 0 * * *", "");
    std::fs::create_dir_all(&full.data_dir).unwrap();
    let saved = full.dir.path().join("saved");
    let out = Command::new("unshare")
        .args(["-rm", "sh", "-c"])
        .arg(
            r#"mount -t tmpfs -o size=1m tmpfs "$1" || exit 99
"$2" --config "$3" sync examplenet --from 2026-01-01 --to 2026-01-31
code=$?
cp -a "$1" "$4"
exit $code"#,
        )
        .arg("sh")
        .arg(&full.data_dir)
        .arg(reckon_tests::reckon_bin())
        .arg(&full.config)
        .arg(&saved)
        .env("RECKON_TEST_EXAMPLE_KEY", API_KEY)
        .env("RUST_LOG", "warn")
        .output()
        .expect("run unshare (util-linux)");
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_ne!(
        out.status.code(),
        Some(99),
        "cannot mount a tmpfs in a user namespace here: {stderr}"
    );
    assert_eq!(out.status.code(), Some(1), "{stderr}");
    assert!(
        stderr.contains("the disk is full; free space and rerun"),
        "{stderr}"
    );
    assert!(!stderr.contains("panicked"), "{stderr}");

    // What was committed before the disk filled is intact: the saved store
    // (on a disk with space) opens and holds only correct, unique records.
    std::fs::remove_dir_all(&full.data_dir).unwrap();
    std::fs::rename(&saved, &full.data_dir).unwrap();
    let partial = export_conversions(&full.config);
    let truth_set: BTreeSet<&String> = truth.iter().collect();
    assert!(partial.iter().all(|r| truth_set.contains(r)));
    let unique: BTreeSet<&String> = partial.iter().collect();
    assert_eq!(unique.len(), partial.len(), "duplicated records");
    assert!(
        partial.len() < truth.len(),
        "the disk never filled ({} records fit)",
        partial.len()
    );

    // With space again, the same sync completes: nothing lost or doubled.
    let out = reckon(&full.config).args(sync_args()).output().unwrap();
    assert!(
        out.status.success(),
        "rerun failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    let after = export_conversions(&full.config);
    println!(
        "disk full: {} of {} records committed before the 1 MiB filesystem filled; after the rerun {}",
        partial.len(),
        truth.len(),
        after.len()
    );
    assert_eq!(after, truth);
}

/// Ops QA13 OPS-14: a `reckon sync` a client runs through the daemon fills
/// the disk; the daemon stops with exit status 75, and the client is told
/// so, not only "free space and rerun".
#[test]
fn a_client_whose_sync_fills_the_disk_is_told_the_daemon_stops() {
    let data = Arc::new(FakeData {
        per_day: 120,
        requests: Default::default(),
    });
    let server = reckon_tests::fakes::server::FakeServer::start(router(data));
    let listen = format!("listen = \"127.0.0.1:{}\"", reckon_tests::free_port());
    let full = setup(&server.base_url, "0 0 1 1 *", &listen);
    std::fs::create_dir_all(&full.data_dir).unwrap();
    // The daemon and its client in one mount namespace (the socket is in
    // the data directory): the client waits for the socket, polling with a
    // deadline of 30 s.
    let out = Command::new("unshare")
        .args(["-rm", "sh", "-c"])
        .arg(
            r#"mount -t tmpfs -o size=1m tmpfs "$1" || exit 99
"$2" --config "$3" run 2>"$4/daemon.log" &
daemon=$!
i=0
until [ -S "$1/reckon.sock" ]; do
  i=$((i+1)); [ $i -gt 300 ] && { kill $daemon; exit 98; }
  sleep 0.1
done
"$2" --config "$3" sync examplenet --from 2026-01-01 --to 2026-01-31
client=$?
wait $daemon
echo "client=$client daemon=$?" >&2"#,
        )
        .arg("sh")
        .arg(&full.data_dir)
        .arg(reckon_tests::reckon_bin())
        .arg(&full.config)
        .arg(full.dir.path())
        .env("RECKON_TEST_EXAMPLE_KEY", API_KEY)
        .env("RUST_LOG", "warn")
        .output()
        .expect("run unshare (util-linux)");
    let stderr = String::from_utf8_lossy(&out.stderr);
    let log = std::fs::read_to_string(full.dir.path().join("daemon.log")).unwrap_or_default();
    assert_ne!(
        out.status.code(),
        Some(99),
        "cannot mount a tmpfs in a user namespace here: {stderr}"
    );
    assert_ne!(out.status.code(), Some(98), "no socket: {log}");
    assert!(stderr.contains("client=1 daemon=75"), "{stderr}\n{log}");
    assert!(stderr.contains("the disk is full"), "{stderr}");
    assert!(
        stderr.contains("error: the daemon is stopping (exit status 75): store I/O failed at "),
        "{stderr}"
    );
    assert!(
        stderr.contains("; once that is fixed, restart the daemon too: its store refuses every write until then"),
        "{stderr}"
    );
    assert!(
        !stderr.contains("panicked") && !log.contains("panicked"),
        "{stderr}\n{log}"
    );
}
