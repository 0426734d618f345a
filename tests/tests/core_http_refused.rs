//! Regressions of the HTTP counters.
//!
//! - (QA) A connector whose platform refuses connections retried for 18 s,
//!   yet its run said `failed (0 pages, 0 requests ...)` and `/metrics` had
//!   no request or retry counts for it. Attempts that get no response are
//!   requests (and `reckon_http_responses_total{status="error"}`), and
//!   waiting to try again is a retry.
//! - (ops QA) A request in flight when the daemon stopped was counted in
//!   `reckon_http_requests_total` but under no status of
//!   `reckon_http_responses_total`, so the two never added up again. It is
//!   counted as `status="cancelled"`.

use reckon::server::metrics::Metrics;
use reckon::store::{RunOutcome, Store};
use reckon::sync::{NoProgress, SyncContext};
use std::path::Path;
use std::sync::Arc;

/// A loopback port nothing listens on (bound, then released).
fn refused_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

/// The example connector `id` (in-process) against `base_url`, with its
/// config parsed from a file in `dir`.
fn connector(
    dir: &Path,
    id: &str,
    base_url: &str,
) -> (reckon::config::Config, reckon::config::ResolvedConnector) {
    let plugin_dir = dir.join("plugins");
    reckon_tests::install_plugins(&plugin_dir, &["example"]);
    let text = format!(
        r#"[daemon]
data_dir = "data"
plugin_dir = "plugins"

[[connectors]]
id = "{id}"
plugin = "example"
schedule = "0 6 * * *"
isolation = "in_process"
timeout_secs = 5
[connectors.settings]
api_key = {{ secret = "env:UNUSED" }}
base_url = "{base_url}"
"#
    );
    let file = dir.join("reckon.toml");
    let cfg = reckon::config::parse(&text, &file.display().to_string()).unwrap();
    let mut connectors =
        reckon::config::resolve(&cfg, &reckon::plugins::load, &|_| Ok("k".to_string())).unwrap();
    (cfg, connectors.remove(0))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn requests_that_never_connect_are_counted_in_the_run_and_metrics() {
    let dir = tempfile::tempdir().unwrap();
    let port = refused_port();
    let (cfg, mut c) = connector(dir.path(), "refused", &format!("http://127.0.0.1:{port}"));
    // One retry keeps the test short (the default backoff starts at 0.5 s).
    c.policy.max_retries = 1;

    let store = Store::open(&cfg.daemon.data_dir).unwrap();
    let metrics = Arc::new(Metrics::default());
    let ctx = SyncContext {
        store: store.clone(),
        host_exe: reckon_tests::reckon_bin(),
        shutdown: reckon::sync::Shutdown::new(),
        metrics: metrics.clone(),
    };
    let result = reckon::sync::run_sync(&ctx, &c, None, &NoProgress).await;
    let err = result.expect_err("a refused connection cannot succeed");
    assert!(err.retryable(), "{err}");

    let run = store.runs("refused", 1).unwrap().remove(0);
    assert_eq!(run.outcome, RunOutcome::Failed);
    assert_eq!((run.requests, run.retries), (2, 1), "{run:?}");
    // The host counts requests and retries in the process's metrics as
    // they happen (not when the session ends).
    let global = reckon::server::metrics::global();
    let by = [("connector", "refused")];
    assert_eq!(global.get("reckon_http_requests_total", &by), 2);
    assert_eq!(global.get("reckon_http_retries_total", &by), 1);
    // Each attempt is also counted by status, `error` when nothing answered.
    let responses = global.get(
        "reckon_http_responses_total",
        &[("connector", "refused"), ("status", "error")],
    );
    assert_eq!(responses, 2);
    let text = global.render(None);
    assert!(
        text.contains("reckon_http_requests_total{connector=\"refused\"} 2"),
        "{text}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_request_in_flight_at_shutdown_is_counted_as_cancelled() {
    // The platform takes the request and never answers; the test hears
    // when it has it.
    let (arrived, mut has_request) = tokio::sync::mpsc::unbounded_channel::<()>();
    let app = axum::Router::new().fallback(move || {
        let arrived = arrived.clone();
        async move {
            let _ = arrived.send(());
            std::future::pending::<&'static str>().await
        }
    });
    let server = reckon_tests::fakes::server::FakeServer::start(app);
    let dir = tempfile::tempdir().unwrap();
    let (cfg, c) = connector(dir.path(), "cancelled", &server.base_url);
    let store = Store::open(&cfg.daemon.data_dir).unwrap();
    let shutdown = reckon::sync::Shutdown::new();
    let ctx = SyncContext {
        store: store.clone(),
        host_exe: reckon_tests::reckon_bin(),
        shutdown: shutdown.clone(),
        metrics: Arc::new(Metrics::default()),
    };
    let sync =
        tokio::spawn(async move { reckon::sync::run_sync(&ctx, &c, None, &NoProgress).await });
    let heard = tokio::time::timeout(std::time::Duration::from_secs(60), has_request.recv()).await;
    assert!(
        matches!(heard, Ok(Some(()))),
        "the request never reached the platform"
    );
    shutdown.request();
    let result = tokio::time::timeout(std::time::Duration::from_secs(60), sync)
        .await
        .expect("the sync did not stop at the shutdown")
        .unwrap();
    assert!(result.is_err(), "a sync stopped mid-request cannot succeed");
    let run = store.runs("cancelled", 1).unwrap().remove(0);
    assert_eq!(run.outcome, RunOutcome::Interrupted, "{run:?}");
    assert_eq!(run.requests, 1, "{run:?}");

    let global = reckon::server::metrics::global();
    let by = [("connector", "cancelled")];
    let requests = global.get("reckon_http_requests_total", &by);
    let responses = global.get("reckon_http_responses_total", &by);
    let cancelled = global.get(
        "reckon_http_responses_total",
        &[("connector", "cancelled"), ("status", "cancelled")],
    );
    assert_eq!(
        (requests, responses, cancelled),
        (1, 1, 1),
        "{}",
        global.render(None)
    );
    let text = global.render(None);
    assert!(
        text.contains(
            "reckon_http_responses_total{connector=\"cancelled\",status=\"cancelled\"} 1"
        ),
        "{text}"
    );
}
