//! `reckon run` end to end: syncs the example connector on its schedule,
//! serves /healthz, /status and /metrics, refuses a second daemon on the
//! same data directory, rejects a broken config on SIGHUP (the old one keeps
//! running) and applies a valid one, stops on SIGTERM within 10 s, and
//! carries on after a restart without duplicating records.

mod core_support;

use core_support::*;
use serde_json::Value;
use std::sync::Arc;
use std::time::Duration;

/// The body of `GET path` if it answers 200.
fn http_get(port: u16, path: &str) -> Option<String> {
    reckon_tests::http_get(port, path)
        .filter(|(status, _)| *status == 200)
        .map(|(_, body)| body)
}

fn status(port: u16) -> Option<Value> {
    serde_json::from_str(&http_get(port, "/status")?).ok()
}

fn last_success(port: u16) -> Option<(String, u64)> {
    let s = status(port)?;
    let c = &s["connectors"][0];
    let run = &c["last_run"];
    (run["outcome"] == "success").then(|| {
        (
            run["started_at"].as_str().unwrap_or("").to_owned(),
            c["records"].as_u64().unwrap_or(0),
        )
    })
}

fn signal(child: &std::process::Child, sig: &str) {
    let ok = std::process::Command::new("kill")
        .args([sig, &child.id().to_string()])
        .status()
        .unwrap();
    assert!(ok.success());
}

fn terminate(child: &mut std::process::Child) -> Duration {
    let start = std::time::Instant::now();
    let ok = std::process::Command::new("kill")
        .args(["-TERM", &child.id().to_string()])
        .status()
        .unwrap();
    assert!(ok.success());
    let exited = reckon_tests::poll_until(Duration::from_secs(10), || child.try_wait().unwrap());
    assert!(
        exited.is_some(),
        "reckon run did not exit within 10 s of SIGTERM"
    );
    assert!(
        exited.unwrap().success(),
        "reckon run exited with {exited:?}"
    );
    start.elapsed()
}

#[test]
fn run_syncs_on_schedule_through_a_restart() {
    let data = Arc::new(FakeData {
        per_day: 10,
        requests: Default::default(),
    });
    let server = reckon_tests::fakes::server::FakeServer::start(router(data));
    let port = reckon_tests::free_port();
    // Every 2 seconds (6-field cron with seconds).
    let s = setup(
        &server.base_url,
        "*/2 * * * * *",
        &format!("listen = \"127.0.0.1:{port}\""),
    );

    let mut daemon = reckon(&s.config).arg("run").spawn().unwrap();
    let first = reckon_tests::poll_until(Duration::from_secs(60), || last_success(port));
    let (_, records) = first.expect("no successful scheduled run within 60 s");
    assert!(records >= 30, "records {records}");
    assert_eq!(http_get(port, "/healthz").as_deref(), Some("ok\n"));
    let metrics = http_get(port, "/metrics").unwrap();
    assert!(
        metrics.contains("reckon_syncs_total{connector=\"examplenet\",outcome=\"success\"}"),
        "{metrics}"
    );
    assert!(metrics.contains("reckon_store_size_bytes"), "{metrics}");

    // `reckon status` prints the same from the running daemon.
    let out = reckon(&s.config).arg("status").output().unwrap();
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(out.status.success(), "{text}");
    assert!(text.contains("examplenet (example):"), "{text}");
    assert!(text.contains("next fire:"), "{text}");
    // The address may name the host.
    let out = reckon(&s.config)
        .args(["status", "--addr", &format!("localhost:{port}")])
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );

    // A second daemon on the same data_dir is refused.
    let out = reckon(&s.config).arg("run").output().unwrap();
    assert_eq!(out.status.code(), Some(1));
    // A daemon does not finish on its own (QA42b B-L3: a one-shot holder
    // is waited for instead).
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.contains("in use by another reckon process")
            && err.contains("stop it first (one daemon per data directory)"),
        "{err}"
    );

    // SIGHUP with a broken config: rejected, the old config keeps running.
    let good = std::fs::read_to_string(&s.config).unwrap();
    std::fs::write(
        &s.config,
        good.replace(
            "schedule = \"*/2 * * * * *\"",
            "schedule = \"*/2 * * *\"\nbogus = 1",
        ),
    )
    .unwrap();
    signal(&daemon, "-HUP");
    let (before_hup, _) = last_success(port).unwrap();
    let after_bad_hup = reckon_tests::poll_until(Duration::from_secs(30), || {
        last_success(port).filter(|(start, _)| *start > before_hup)
    });
    assert!(
        after_bad_hup.is_some(),
        "syncs stopped after a rejected reload"
    );
    assert_eq!(
        status(port).unwrap()["connectors"][0]["schedule"],
        "*/2 * * * * *"
    );
    // SIGHUP with a valid new schedule: applied.
    std::fs::write(
        &s.config,
        good.replace(
            "schedule = \"*/2 * * * * *\"",
            "schedule = \"*/3 * * * * *\"",
        ),
    )
    .unwrap();
    signal(&daemon, "-HUP");
    let applied = reckon_tests::poll_until(Duration::from_secs(10), || {
        (status(port)?["connectors"][0]["schedule"] == "*/3 * * * * *").then_some(())
    });
    assert!(applied.is_some(), "valid config was not reloaded");

    let took = terminate(&mut daemon);
    assert!(took < Duration::from_secs(10));

    // Restart: it runs again on schedule; the re-pull duplicates nothing.
    let restarted_at = chrono::Utc::now();
    let mut daemon = reckon(&s.config).arg("run").spawn().unwrap();
    let again = reckon_tests::poll_until(Duration::from_secs(60), || {
        last_success(port).filter(|(start, _)| {
            start
                .parse::<chrono::DateTime<chrono::Utc>>()
                .is_ok_and(|t| t > restarted_at)
        })
    });
    let (_, records_after) = again.expect("no run after the restart within 60 s");
    terminate(&mut daemon);
    // Same window (unless the UTC day changed during the test): same records.
    assert!(
        records_after == records || records_after == records + 10,
        "{records} → {records_after}"
    );
    let exported = export_conversions(&s.config);
    assert_eq!(exported.len() as u64, records_after);
}

/// Ops QA13 OPS-4: a connector added with a new `env:` secret passed
/// `config check` in the operator's shell, and the SIGHUP was rejected
/// saying "export it before starting reckon". The reload now says that
/// the running daemon's environment lacks it and a restart with the
/// variable set is needed.
#[test]
fn a_reload_missing_a_new_env_secret_says_the_daemon_needs_a_restart() {
    let port = reckon_tests::free_port();
    let s = setup(
        "http://127.0.0.1:9",
        "0 0 * * *",
        &format!("listen = \"127.0.0.1:{port}\""),
    );
    let log = s.dir.path().join("run.log");
    let mut daemon = reckon(&s.config)
        .env("RUST_LOG", "info")
        .env_remove("RECKON_TEST_NEW_KEY")
        .arg("run")
        .stderr(std::fs::File::create(&log).unwrap())
        .spawn()
        .unwrap();
    let log_text = || std::fs::read_to_string(&log).unwrap_or_default();
    let up = reckon_tests::poll_until(Duration::from_secs(20), || {
        log_text().contains("daemon started").then_some(())
    });
    assert!(up.is_some(), "{}", log_text());
    let mut text = std::fs::read_to_string(&s.config).unwrap();
    text.push_str(
        "\n[[connectors]]\nid = \"second\"\nplugin = \"example\"\nschedule = \"0 0 * * *\"\n\
         [connectors.settings]\napi_key = { secret = \"env:RECKON_TEST_NEW_KEY\" }\n",
    );
    std::fs::write(&s.config, text).unwrap();
    signal(&daemon, "-HUP");
    let rejected = reckon_tests::poll_until(Duration::from_secs(20), || {
        let l = log_text();
        l.contains("the old config keeps running").then_some(l)
    });
    terminate(&mut daemon);
    let l = rejected.expect("the reload was not rejected");
    assert!(
        l.contains("environment variable `RECKON_TEST_NEW_KEY` is not set; the running daemon's environment does not have it")
            && l.contains("systemd: the unit's `EnvironmentFile=`) and restart the daemon"),
        "{l}"
    );
    assert!(!l.contains("export it before starting reckon"), "{l}");
}

/// Ops QA13 OPS-17: the README says the open-file limit is logged at
/// start, but only a limit that lowered `max_http_connections` was. The
/// `daemon started` line now always names it, and the store's cache
/// (`store_cache_mb`, read at start), which is then warmed.
#[test]
fn the_start_line_names_the_open_file_limit() {
    let port = reckon_tests::free_port();
    let s = setup(
        "http://127.0.0.1:9",
        "0 0 * * *",
        &format!("listen = \"127.0.0.1:{port}\"\nstore_cache_mb = 256"),
    );
    let log = s.dir.path().join("run.log");
    let mut daemon = std::process::Command::new("sh")
        .args(["-c", "ulimit -n 4000 && exec \"$0\" \"$@\""])
        .arg(reckon_tests::reckon_bin())
        .arg("--config")
        .arg(&s.config)
        .arg("run")
        .env("RECKON_TEST_EXAMPLE_KEY", API_KEY)
        .env("RUST_LOG", "info")
        .stderr(std::fs::File::create(&log).unwrap())
        .spawn()
        .unwrap();
    let log_text = || std::fs::read_to_string(&log).unwrap_or_default();
    let line_with = |what: &str| {
        reckon_tests::poll_until(Duration::from_secs(20), || {
            log_text()
                .lines()
                .find(|l| l.contains(what))
                .map(str::to_owned)
        })
    };
    let started = line_with("daemon started");
    // A cache above the default is warmed at start, on a thread of its own.
    let warmed = line_with("store cache warmed");
    terminate(&mut daemon);
    let line = started.unwrap_or_else(|| panic!("not started: {}", log_text()));
    assert!(
        line.contains("max_http_connections=512 open_file_limit=4000"),
        "{line}"
    );
    assert!(line.contains("store_cache_mb=256"), "{line}");
    let warmed = warmed.unwrap_or_else(|| panic!("no warm-up line: {}", log_text()));
    assert!(
        warmed.contains("store_cache_mb=256") && warmed.contains("complete=true"),
        "{warmed}"
    );
}
