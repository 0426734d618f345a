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
//!
//! `/healthz` answers 503 `failed: …` from the failure until the process
//! exits (ops QA: that answer was untested). A run busy in a plugin step
//! keeps the daemon stopping for its grace period, long enough to ask.

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
        .env("RECKON_ALLOW_SUB_MINUTE_SCHEDULES", "1")
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
        .env("RECKON_ALLOW_SUB_MINUTE_SCHEDULES", "1")
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

/// While a daemon whose store failed stops, `/healthz` answers 503 with
/// `failed:` and the store's error. The stop is held open by a run whose
/// plugin spins in a step (the faulty plugin's `loop`): the daemon waits
/// out its grace period (8 s) for it, serving HTTP meanwhile. The store
/// fails at the next write after the limit: the scheduler persists each
/// fire (every second) even while the run is busy.
///
/// The daemon logs to a file, which the same limit stops it writing, as a
/// full disk stops a log file on it: tracing-subscriber reported the lost
/// line with `eprintln!`, which panicked (stderr refused too) inside the
/// store's failure report, so `/healthz` kept saying ok and the process
/// hung instead of exiting with 75 (found writing this test).
#[test]
fn healthz_answers_503_failed_once_the_store_fails() {
    let dir = tempfile::tempdir().unwrap();
    let plugins = dir.path().join("plugins");
    std::fs::create_dir(&plugins).unwrap();
    let file = format!(
        "{}reckon_fault_behaviour{}",
        std::env::consts::DLL_PREFIX,
        std::env::consts::DLL_SUFFIX
    );
    std::fs::copy(reckon_tests::profile_dir().join(&file), plugins.join(&file)).unwrap();
    let port = reckon_tests::free_port();
    let config = dir.path().join("reckon.toml");
    // The step after the first page spins for 60 s; its deadline is 120 s.
    std::fs::write(
        &config,
        format!(
            "[daemon]\ndata_dir = \"data\"\nplugin_dir = \"plugins\"\nlisten = \"127.0.0.1:{port}\"\n\n\
             [[connectors]]\nid = \"faultynet\"\nplugin = \"faulty\"\nschedule = \"* * * * * *\"\n\
             isolation = \"subprocess\"\ntimeout_secs = 30\n\n\
             [connectors.settings]\nfault = \"loop\"\nloop_millis = 60000\n"
        ),
    )
    .unwrap();
    let data_dir = dir.path().join("data");
    let log = std::fs::File::create(dir.path().join("daemon.log")).unwrap();
    let mut daemon = std::process::Command::new("sh")
        .args(["-c", "trap '' XFSZ; exec \"$0\" \"$@\""])
        .arg(reckon_tests::reckon_bin())
        .arg("--config")
        .arg(&config)
        .arg("run")
        .env("RECKON_ALLOW_SUB_MINUTE_SCHEDULES", "1")
        .env_remove("RUST_LOG")
        .stderr(log)
        .spawn()
        .unwrap();
    let log = || std::fs::read_to_string(dir.path().join("daemon.log")).unwrap_or_default();
    // Busy: the first page is stored and the run is still going.
    let busy = reckon_tests::poll_until(Duration::from_secs(60), || {
        let (_, body) = reckon_tests::http_get(port, "/status")?;
        let v: serde_json::Value = serde_json::from_str(&body).ok()?;
        let c = &v["connectors"][0];
        (c["running"] == true && c["records"].as_u64()? >= 1).then_some(())
    });
    if busy.is_none() {
        let _ = daemon.kill();
        panic!("the run never got busy in its step:\n{}", log());
    }
    assert_eq!(
        reckon_tests::http_get(port, "/healthz"),
        Some((200, "ok\n".to_string()))
    );
    let db_len = std::fs::metadata(data_dir.join("store/db")).unwrap().len();
    let limited = std::process::Command::new("prlimit")
        .arg(format!("--pid={}", daemon.id()))
        .arg(format!("--fsize={db_len}:unlimited"))
        .status()
        .unwrap();
    assert!(limited.success());

    let failed = reckon_tests::poll_until(Duration::from_secs(60), || {
        reckon_tests::http_get(port, "/healthz").filter(|(code, _)| *code != 200)
    });
    let exited = reckon_tests::poll_until(Duration::from_secs(60), || daemon.try_wait().unwrap());
    if exited.is_none() {
        let _ = daemon.kill();
    }
    let log = log();
    let (code, body) = failed.unwrap_or_else(|| panic!("/healthz never stopped saying ok:\n{log}"));
    assert_eq!(code, 503, "{body}\n{log}");
    assert!(
        body.starts_with("failed: the store refuses every write until reckon restarts: "),
        "{body}"
    );
    assert!(body.contains(&data_dir.display().to_string()), "{body}");
    assert!(body.contains("file too large"), "{body}");
    assert!(body.ends_with('\n'), "{body:?}");
    assert_eq!(exited.and_then(|s| s.code()), Some(75), "{log}");
}
