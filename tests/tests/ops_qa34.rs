//! Ops QA34 (the daemon against misbehaving networks; a 12-month backfill).
//!
//! - D-M2: a 429 asking to wait longer than a run waits failed the run, and
//!   the scheduler retried it after 30 s, 60 s, ... inside the platform's
//!   lock-out: the wait the platform asked for now reaches the scheduler.
//! - D-M1: an answer that could not be read (a malformed record, a cut-off
//!   body) failed the run as not retryable, so it waited a whole schedule
//!   period: the scheduler fetches it again a few times.
//! - B-M3: a run without a cut-off backfill's days replaced it, and its days
//!   were never pulled, without a word: a WARN names them and the command.
//!
//! The scheduler's side of each is tested in `reckon::schedule`'s tests.

use reckon::schedule::{Failure, BAD_ANSWER_RETRIES, MAX_RETRIES};
use reckon::server::metrics::Metrics;
use reckon::store::{RunOutcome, RunRecord, Store};
use reckon::sync::{NoProgress, SyncContext};
use std::path::Path;
use std::sync::Arc;

/// The config text of the example connector `net` (in-process) against
/// `base_url`, storing in `dir/data`.
fn config_text(base_url: &str) -> String {
    format!(
        r#"[daemon]
data_dir = "data"
plugin_dir = "plugins"

[[connectors]]
id = "net"
plugin = "example"
schedule = "0 6 * * *"
isolation = "in_process"
timeout_secs = 5
[connectors.settings]
api_key = {{ secret = "file:key.txt" }}
base_url = "{base_url}"
"#
    )
}

/// The example connector `net` against `base_url`, its config written to
/// `dir/reckon.toml`.
fn connector(dir: &Path, base_url: &str) -> reckon::config::ResolvedConnector {
    reckon_tests::install_plugins(&dir.join("plugins"), &["example"]);
    let file = dir.join("reckon.toml");
    std::fs::write(&file, config_text(base_url)).unwrap();
    std::fs::write(dir.join("key.txt"), "k").unwrap();
    let cfg = reckon::config::parse(&config_text(base_url), &file.display().to_string()).unwrap();
    let mut connectors =
        reckon::config::resolve(&cfg, &reckon::plugins::load, &|_| Ok("k".to_string())).unwrap();
    connectors.remove(0)
}

/// How the scheduler would treat a sync of `net` against a platform that
/// answers every request with `answer`, and the run as recorded.
async fn failure_against(answer: axum::Router) -> (Failure, RunRecord) {
    let server = reckon_tests::fakes::server::FakeServer::start(answer);
    let dir = tempfile::tempdir().unwrap();
    let c = connector(dir.path(), &server.base_url);
    let ctx = SyncContext {
        store: Store::open(&dir.path().join("data")).unwrap(),
        host_exe: reckon_tests::reckon_bin(),
        shutdown: reckon::sync::Shutdown::new(),
        metrics: Arc::new(Metrics::default()),
    };
    let err = reckon::sync::run_sync(&ctx, &c, None, &NoProgress)
        .await
        .expect_err("the platform's answer cannot succeed");
    let run = ctx.store.runs("net", 1).unwrap().remove(0);
    (Failure::of(&err), run)
}

/// D-M2: the host did not wait out `Retry-After: 1200`, and the run's
/// failure now says how long the platform asked to wait, which the
/// scheduler keeps to.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_429_asking_for_a_long_wait_carries_the_wait_to_the_scheduler() {
    let answer = axum::Router::new().fallback(|| async {
        (
            axum::http::StatusCode::TOO_MANY_REQUESTS,
            [("retry-after", "1200")],
            "slow down",
        )
    });
    let (failure, run) = failure_against(answer).await;
    assert_eq!(
        failure.wait,
        Some(chrono::Duration::seconds(1200)),
        "{failure:?}"
    );
    assert_eq!(failure.retries, MAX_RETRIES, "{failure:?}");
    // Recorded with the run, so a restart keeps to it too.
    let end = run.ended_at.unwrap();
    assert_eq!(
        run.not_before,
        Some(end + chrono::Duration::seconds(1200)),
        "{run:?}"
    );
}

/// D-M1: a body that is not the JSON the platform documents is a bad
/// answer, which the scheduler fetches again a few times.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_answer_that_cannot_be_read_is_retried_a_few_times() {
    let answer = axum::Router::new().fallback(|| async { "{\"data\": [" });
    let (failure, run) = failure_against(answer).await;
    assert!(failure.bad_answer, "{failure:?}");
    assert_eq!(failure.retries, BAD_ANSWER_RETRIES, "{failure:?}");
    assert_eq!(failure.wait, None);
    assert_eq!(run.not_before, None);
}

/// B-M3: `reckon sync net` without dates, run after a backfill of `net`
/// was cut off (its process killed), replaces it: the command now says so
/// with the backfill's days and the command that pulls them.
#[test]
fn a_run_that_replaces_a_cut_off_backfill_says_which_days_and_what_to_run() {
    let answer = axum::Router::new()
        .fallback(|| async { axum::Json(serde_json::json!({"data": [], "next": null})) });
    let server = reckon_tests::fakes::server::FakeServer::start(answer);
    let dir = tempfile::tempdir().unwrap();
    connector(dir.path(), &server.base_url);
    {
        let store = Store::open(&dir.path().join("data")).unwrap();
        let at = "2026-06-01T10:00:00Z".parse().unwrap();
        store
            .save_run(&RunRecord {
                source: "net".into(),
                started_at: at,
                ended_at: Some(at),
                outcome: RunOutcome::Interrupted,
                windows: vec![
                    "2026-01-01..2026-03-31".into(),
                    "2026-04-01..2026-05-31".into(),
                ],
                pages: 0,
                requests: 0,
                retries: 0,
                rate_limit_waits: 0,
                records_new: 0,
                records_changed: 0,
                records_unchanged: 0,
                error: Some("stopped".into()),
                retryable: None,
                not_before: None,
            })
            .unwrap();
        store.flush().unwrap();
    }
    let out = std::process::Command::new(reckon_tests::reckon_bin())
        .current_dir(dir.path())
        .args(["--config", "reckon.toml", "sync", "net"])
        .env("RUST_LOG", "info")
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "{stderr}");
    assert!(
        stderr.contains("this run replaces a backfill cut off before its end (2026-01-01..2026-05-31): the daemon no longer runs its days again, and days of it may be missing; run `reckon sync net --from 2026-01-01 --to 2026-05-31` to pull them"),
        "{stderr}"
    );
    // Said once: the next run has nothing to replace.
    let again = std::process::Command::new(reckon_tests::reckon_bin())
        .current_dir(dir.path())
        .args(["--config", "reckon.toml", "sync", "net"])
        .env("RUST_LOG", "info")
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&again.stderr);
    assert!(again.status.success(), "{stderr}");
    assert!(!stderr.contains("replaces a backfill"), "{stderr}");
}

/// B-L1: a backfill the daemon ran for its client showed the client only
/// window and page lines, not the 429 waits a standalone run prints, so a
/// throttled backfill looked hung. The client gets the run's log lines too.
#[test]
fn a_backfill_run_by_the_daemon_shows_its_client_the_rate_limit_waits() {
    use reckon_tests::fakes::example::{router, ExampleApi, ExampleData};
    use std::sync::atomic::Ordering;
    let tmp = tempfile::tempdir().unwrap();
    let root = tmp.path();
    let day = chrono::NaiveDate::from_ymd_opt(2026, 10, 1).unwrap();
    let api = ExampleApi::new(ExampleData::generate(4, 5, day, day), "k");
    // Two 429s asking to wait 1 s, which the host waits out.
    api.faults.throttle.store(2, Ordering::SeqCst);
    api.faults.retry_after_secs.store(1, Ordering::SeqCst);
    let server = reckon_tests::fakes::server::FakeServer::start(router(api.clone()));
    reckon_tests::install_plugins(&root.join("plugins"), &["example"]);
    std::fs::write(root.join("key.txt"), "k").unwrap();
    std::fs::write(
        root.join("reckon.toml"),
        format!(
            "[daemon]\ndata_dir = \"data\"\nplugin_dir = \"plugins\"\nlisten = \"127.0.0.1:{}\"\n\n\
             [[connectors]]\nid = \"net\"\nplugin = \"example\"\nschedule = \"0 0 1 1 *\"\n\
             [connectors.settings]\napi_key = {{ secret = \"file:key.txt\" }}\nbase_url = \"{}\"\n",
            reckon_tests::free_port(),
            server.base_url
        ),
    )
    .unwrap();
    let mut command = reckon_tests::run_command(&root.join("reckon.toml"));
    command.current_dir(root);
    let mut daemon = reckon_tests::RunningDaemon::spawn(&mut command, root.join("run.log"));
    daemon.wait_for_log(&["daemon started"]);
    let day = day.to_string();
    let out = std::process::Command::new(reckon_tests::reckon_bin())
        .current_dir(root)
        .args([
            "--config",
            "reckon.toml",
            "sync",
            "net",
            "--from",
            &day,
            "--to",
            &day,
        ])
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "{stderr}\n{}", daemon.log_text());
    assert!(
        daemon.log_text().contains("sync for a client done"),
        "run by the daemon: {}",
        daemon.log_text()
    );
    let waits: Vec<&str> = stderr
        .lines()
        .filter(|l| l.contains("throttled (HTTP 429); waiting before retrying"))
        .collect();
    assert_eq!(waits.len(), 2, "{stderr}");
    assert!(waits[0].starts_with(" INFO "), "{stderr}");
    // Its own lines only: nothing of the daemon's other work.
    assert!(!stderr.contains("daemon started"), "{stderr}");
    // QA35a M1: as JSON, a forwarded line keeps its numbers and its
    // connector, as a standalone run's line does.
    let out = std::process::Command::new(reckon_tests::reckon_bin())
        .current_dir(root)
        .args([
            "--config",
            "reckon.toml",
            "--log-format",
            "json",
            "sync",
            "net",
        ])
        .args(["--from", &day, "--to", &day])
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "{stderr}");
    let finished: serde_json::Value = stderr
        .lines()
        .filter_map(|l| serde_json::from_str::<serde_json::Value>(l).ok())
        .find(|l| l["fields"]["message"] == "sync finished")
        .unwrap_or_else(|| panic!("no `sync finished` line: {stderr}"));
    assert_eq!(finished["fields"]["connector"], "net", "{finished}");
    for n in ["new", "changed", "unchanged", "pages", "requests"] {
        assert!(finished["fields"][n].is_u64(), "{n}: {finished}");
    }
    daemon.stop();
}
