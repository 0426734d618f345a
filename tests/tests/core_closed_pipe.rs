//! Output nobody reads any more (QA6 F1, F2, F3): `reckon sync 2>&1 | head
//! -1`, a log shipper that died under `reckon run`, `reckon statements
//! finalize | logger` with logger gone. A command that changes state
//! finishes its work and exits with the status of that work; the daemon
//! never dies because its stderr's reader went away.
//!
//! "Closed" here is a stream whose reader is gone before the command
//! starts (one end of a socket pair, the other dropped), so every write
//! fails with a broken pipe, deterministically; the daemon test closes a
//! real pipe after reading its first line, as `| head -1` does.

mod core_support;

use core_support::*;
use std::io::BufRead as _;
use std::os::fd::OwnedFd;
use std::process::{Command, Stdio};
use std::sync::Arc;
use std::time::Duration;

/// A stream for a child's stdout or stderr whose reader has gone: each
/// write fails with EPIPE.
fn closed() -> Stdio {
    let (ours, theirs) = std::os::unix::net::UnixStream::pair().unwrap();
    drop(ours);
    Stdio::from(OwnedFd::from(theirs))
}

fn fake() -> (Arc<FakeData>, reckon_tests::fakes::server::FakeServer) {
    let data = Arc::new(FakeData {
        per_day: 9,
        requests: Default::default(),
    });
    let server = reckon_tests::fakes::server::FakeServer::start(router(data.clone()));
    (data, server)
}

/// Waits for `child` (at most 60 s) and returns its exit status.
fn wait(child: &mut std::process::Child) -> std::process::ExitStatus {
    reckon_tests::poll_until(Duration::from_secs(60), || child.try_wait().unwrap())
        .expect("reckon did not exit within 60 s")
}

/// F1: `reckon sync ... 2>&1 | head -1` panicked (exit 101) at its first
/// progress line, and the backfill stopped there.
#[test]
fn a_backfill_whose_output_nobody_reads_finishes() {
    let (_data, server) = fake();
    let s = setup(&server.base_url, "0 0 1 1 *", "");
    let to = chrono::Utc::now().date_naive();
    let from = to - chrono::Duration::days(2);
    for format in ["human", "json"] {
        let mut child = reckon(&s.config)
            .env("RUST_LOG", "info")
            .args(["--log-format", format, "sync", "examplenet"])
            .args(["--from", &from.to_string(), "--to", &to.to_string()])
            .stdout(closed())
            .stderr(closed())
            .spawn()
            .unwrap();
        let status = wait(&mut child);
        assert_eq!(status.code(), Some(0), "--log-format {format}: {status:?}");
    }
    // Three days of 9 conversions, all stored.
    assert_eq!(export_conversions(&s.config).len(), 27);
}

use reckon_tests::PAYOUT_CONFIG;

/// F2: `statements finalize ... 2>&1 | true` exited 0 having finalised
/// nothing (its first line failed, and any broken pipe counted as
/// success). Now it finalises; and a command that fails says so in its
/// status (it used to panic printing its error: 101).
#[test]
fn a_finalize_whose_output_nobody_reads_finalises() {
    let tmp = tempfile::tempdir().unwrap();
    let config = tmp.path().join("reckon.toml");
    std::fs::write(&config, PAYOUT_CONFIG).unwrap();
    let run = |args: &[&str]| {
        let mut child = Command::new(reckon_tests::reckon_bin())
            .arg("--config")
            .arg(&config)
            .args(args)
            .stdout(closed())
            .stderr(closed())
            .spawn()
            .unwrap();
        wait(&mut child)
    };
    let period = ["--program", "shop", "--period", "2026-10"];
    let status = run(&[&["statements", "generate"][..], &period].concat());
    assert_eq!(status.code(), Some(0));
    assert!(tmp
        .path()
        .join("out/statements/shop/2026-10/summary.csv")
        .exists());
    let status = run(&[&["statements", "finalize"][..], &period].concat());
    assert_eq!(status.code(), Some(0));
    let show = Command::new(reckon_tests::reckon_bin())
        .arg("--config")
        .arg(&config)
        .args([&["statements", "show"][..], &period].concat())
        .output()
        .unwrap();
    let text = String::from_utf8_lossy(&show.stdout);
    assert!(text.contains("finalised (version 2)"), "{text}");
    // verify's status is its verdict, read or not.
    let status = run(&[&["statements", "verify"][..], &period].concat());
    assert_eq!(status.code(), Some(0));
    std::fs::write(
        tmp.path().join("out/statements/shop/2026-10/summary.csv"),
        "forged\n",
    )
    .unwrap();
    let status = run(&[&["statements", "verify"][..], &period].concat());
    assert_eq!(status.code(), Some(1));
    // A refusal is a failure, not a panic.
    let status = run(&[
        "statements",
        "finalize",
        "--program",
        "shop",
        "--period",
        "2999-01",
        "--early",
    ]);
    assert_eq!(status.code(), Some(1));
}

fn http_ok(port: u16, path: &str) -> Option<String> {
    reckon_tests::http_get(port, path)
        .filter(|(status, _)| *status == 200)
        .map(|(_, body)| body)
}

/// The start time and outcome of the connector's last run, from /status.
fn last_run(port: u16) -> Option<(String, String)> {
    let s: serde_json::Value = serde_json::from_str(&http_ok(port, "/status")?).ok()?;
    let run = &s["connectors"][0]["last_run"];
    Some((
        run["started_at"].as_str()?.to_owned(),
        run["outcome"].as_str()?.to_owned(),
    ))
}

fn kill(child: &std::process::Child, sig: &str) {
    let ok = Command::new("kill")
        .args([sig, &child.id().to_string()])
        .status()
        .unwrap();
    assert!(ok.success());
}

/// F3: with its stderr's reader gone, `reckon run` panicked (exit 101) at
/// its next log line: the first scheduled sync, a SIGHUP, a client's
/// command, SIGTERM; and left a stale `reckon.sock`.
#[test]
fn the_daemon_outlives_the_reader_of_its_log() {
    let (_data, server) = fake();
    let port = reckon_tests::free_port();
    let s = setup(
        &server.base_url,
        "*/2 * * * * *",
        &format!("listen = \"127.0.0.1:{port}\""),
    );
    let mut daemon = reckon(&s.config)
        .env("RUST_LOG", "info")
        .arg("run")
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    // `| head -1`: one line read, then the pipe closed.
    let mut log = std::io::BufReader::new(daemon.stderr.take().unwrap());
    let mut first = String::new();
    log.read_line(&mut first).unwrap();
    assert!(!first.is_empty(), "reckon run wrote nothing");
    drop(log);

    let alive = |daemon: &mut std::process::Child| {
        if let Some(status) = daemon.try_wait().unwrap() {
            panic!("reckon run exited with {status:?}");
        }
    };
    // Scheduled syncs, each logging, succeed.
    let after = |since: &str| {
        let since = since.to_owned();
        move || last_run(port).filter(|(at, outcome)| *at > since && outcome == "success")
    };
    let (first_run, _) = reckon_tests::poll_until(Duration::from_secs(60), after(""))
        .expect("no successful scheduled run within 60 s");
    alive(&mut daemon);

    // SIGHUP reloads (and logs); a later run still succeeds.
    kill(&daemon, "-HUP");
    reckon_tests::poll_until(Duration::from_secs(60), after(&first_run))
        .expect("no successful run after SIGHUP");
    alive(&mut daemon);

    // A client's command runs in the daemon (which logs it).
    let out = reckon(&s.config)
        .args(["records", "export", "--kind", "conversions"])
        .output()
        .unwrap();
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "{err}");
    assert!(err.contains("note: the reckon daemon holds"), "{err}");
    alive(&mut daemon);

    // SIGTERM: a clean stop, the socket removed.
    kill(&daemon, "-TERM");
    let status = reckon_tests::poll_until(Duration::from_secs(10), || daemon.try_wait().unwrap())
        .expect("reckon run did not stop within 10 s of SIGTERM");
    assert_eq!(status.code(), Some(0), "{status:?}");
    assert!(!s.data_dir.join("reckon.sock").exists());
}

/// QA35a L2: `reckon records export | head -1` through the daemon exits 0,
/// as a standalone export does, but the daemon logged a WARN `command for
/// a client failed … broken pipe` for it, which WARN-based alerting picks
/// up. The client stopping to read is not a failure.
#[test]
fn an_export_whose_reader_stops_is_no_failure_in_the_daemons_log() {
    let data = Arc::new(FakeData {
        per_day: 3000,
        requests: Default::default(),
    });
    let server = reckon_tests::fakes::server::FakeServer::start(router(data));
    let port = reckon_tests::free_port();
    let s = setup(
        &server.base_url,
        "0 0 1 1 *",
        &format!("listen = \"127.0.0.1:{port}\""),
    );
    let to = chrono::Utc::now().date_naive();
    let from = (to - chrono::Duration::days(1)).to_string();
    let sync = reckon(&s.config)
        .args([
            "sync",
            "examplenet",
            "--from",
            &from,
            "--to",
            &to.to_string(),
        ])
        .output()
        .unwrap();
    assert!(
        sync.status.success(),
        "{}",
        String::from_utf8_lossy(&sync.stderr)
    );
    let mut command = reckon(&s.config);
    command.env("RUST_LOG", "reckon=debug").arg("run");
    let mut daemon = reckon_tests::RunningDaemon::spawn(&mut command, s.dir.path().join("run.log"));
    daemon.wait_for_log(&["daemon started"]);
    // 6,000 conversions, ~2 MB of JSON lines: far more than the socket
    // holds, so the daemon is still writing when the client has gone.
    let mut child = reckon(&s.config)
        .args([
            "records",
            "export",
            "--kind",
            "conversions",
            "--format",
            "jsonl",
        ])
        .stdout(closed())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    assert_eq!(wait(&mut child).code(), Some(0));
    daemon.wait_for_log(&["the client stopped reading the command's output"]);
    let log = daemon.log_text();
    assert!(!log.contains("command for a client failed"), "{log}");
    daemon.stop();
}
