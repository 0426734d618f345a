//! `reckon run` whose store fails for good (QA, 2026-11-29): sled keeps the
//! first error of a write to its log and returns it from every later call,
//! even after space is freed, so before this the daemon failed every run
//! and command until restarted while `/healthz` said ok. Now it logs at
//! ERROR that it must be restarted, stops, and exits with status 75; the
//! restart works on the store as it was.
//!
//! The fault is the file size limit (`RLIMIT_FSIZE`, set on the running
//! daemon with `prlimit`; SIGXFSZ ignored): sled's next write past the end
//! of its log fails with EFBIG as a full disk fails it with ENOSPC. No root
//! or tmpfs needed.

mod core_support;

use core_support::*;
use std::sync::Arc;
use std::time::Duration;

#[test]
fn a_daemon_whose_store_fails_stops_with_status_75_and_restarts_cleanly() {
    let data = Arc::new(FakeData {
        per_day: 120,
        requests: Default::default(),
    });
    let server = reckon_tests::fakes::server::FakeServer::start(router(data));
    let port = reckon_tests::free_port();
    let s = setup(
        &server.base_url,
        "*/2 * * * * *",
        &format!("listen = \"127.0.0.1:{port}\""),
    );
    let healthz = || reckon_tests::http_get(port, "/healthz");
    let mut daemon = std::process::Command::new("sh")
        .args(["-c", "trap '' XFSZ; exec \"$0\" \"$@\""])
        .arg(reckon_tests::reckon_bin())
        .arg("--config")
        .arg(&s.config)
        .arg("run")
        .env("RECKON_TEST_EXAMPLE_KEY", API_KEY)
        .env_remove("RUST_LOG")
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    let up = reckon_tests::poll_until(Duration::from_secs(30), || {
        healthz().filter(|(code, _)| *code == 200)
    });
    assert!(up.is_some(), "the daemon did not answer /healthz");
    let db_len = std::fs::metadata(s.data_dir.join("store/db"))
        .unwrap()
        .len();
    let limited = std::process::Command::new("prlimit")
        .arg(format!("--pid={}", daemon.id()))
        .arg(format!("--fsize={db_len}:unlimited"))
        .status()
        .unwrap();
    assert!(limited.success());

    let exited = reckon_tests::poll_until(Duration::from_secs(60), || daemon.try_wait().unwrap());
    let Some(status) = exited else {
        let _ = daemon.kill();
        panic!("the daemon did not stop after its store failed");
    };
    let mut log = String::new();
    std::io::Read::read_to_string(daemon.stderr.as_mut().unwrap(), &mut log).unwrap();
    assert_eq!(status.code(), Some(75), "{log}");
    assert!(
        log.contains("the store refuses every write until reckon restarts: stopping"),
        "{log}"
    );
    assert!(log.contains("ERROR"), "{log}");
    // sled's own line per dropped tree is left out of the default filter.
    assert!(!log.contains("failed to flush data to disk"), "{log}");

    // A new process opens the store as it was and syncs on.
    let mut daemon = reckon(&s.config)
        .arg("run")
        .stderr(std::process::Stdio::null())
        .spawn()
        .unwrap();
    let synced = reckon_tests::poll_until(Duration::from_secs(60), || {
        let (_, body) = reckon_tests::http_get(port, "/status")?;
        let v: serde_json::Value = serde_json::from_str(&body).ok()?;
        (v["connectors"][0]["last_run"]["outcome"] == "success").then_some(())
    });
    let ok = healthz();
    let _ = std::process::Command::new("kill")
        .args(["-TERM", &daemon.id().to_string()])
        .status();
    let stopped = reckon_tests::poll_until(Duration::from_secs(15), || daemon.try_wait().unwrap());
    if stopped.is_none() {
        let _ = daemon.kill();
    }
    assert!(synced.is_some(), "no successful run after the restart");
    assert_eq!(ok, Some((200, "ok\n".to_string())));
}
