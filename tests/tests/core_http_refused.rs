//! Regression (QA): a connector whose platform refuses connections retried
//! for 18 s, yet its run said `failed (0 pages, 0 requests ...)` and
//! `/metrics` had no request or retry counts for it. Attempts that get no
//! response are requests (and `reckon_http_responses_total{status="error"}`),
//! and waiting to try again is a retry.

use reckon::server::metrics::Metrics;
use reckon::store::{RunOutcome, Store};
use reckon::sync::{NoProgress, SyncContext};
use std::sync::Arc;

/// A loopback port nothing listens on (bound, then released).
fn refused_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn requests_that_never_connect_are_counted_in_the_run_and_metrics() {
    let dir = tempfile::tempdir().unwrap();
    let plugin_dir = dir.path().join("plugins");
    reckon_tests::install_plugins(&plugin_dir, &["example"]);
    let port = refused_port();
    let text = format!(
        r#"[daemon]
data_dir = "data"
plugin_dir = "plugins"

[[connectors]]
id = "refused"
plugin = "example"
schedule = "0 6 * * *"
isolation = "in_process"
timeout_secs = 5
[connectors.settings]
api_key = {{ secret = "env:UNUSED" }}
base_url = "http://127.0.0.1:{port}"
"#
    );
    let file = dir.path().join("reckon.toml");
    let cfg = reckon::config::parse(&text, &file.display().to_string()).unwrap();
    let mut connectors =
        reckon::config::resolve(&cfg, &reckon::plugins::load, &|_| Ok("k".to_string())).unwrap();
    let mut c = connectors.remove(0);
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
