//! Plugin host end to end: real libraries, both transports, the example's
//! loopback fake, and the faulty test plugin. Needs `cargo build --workspace`
//! first (plugins and the `reckon` binary for subprocess isolation).

use chrono::{NaiveDate, TimeZone, Utc};
use plugin_api::protocol::{Checkpoint, ErrorKind, Record, SessionMode, SessionOpen, Window};
use reckon::plugins::{
    load, run_session_with, HttpPolicy, Isolation, Plugin, RateLimit, Secret, SessionError,
    SessionOptions, SessionReport, SessionSink, SessionTuning,
};
use reckon::store::CommitStats;
use reckon_tests::fakes::example::{router, BodyFault, ExampleApi, ExampleData};
use reckon_tests::fakes::server::FakeServer;
use serde_json::json;
use std::collections::BTreeMap;
use std::path::Path;
use std::sync::atomic::Ordering;
use std::sync::Arc;
use std::time::Duration;

const KEY: &str = "sk_live_TOPSECRET_4242";
const BOTH: [Isolation; 2] = [Isolation::InProcess, Isolation::Subprocess];

/// A plugin directory with the example and the faulty test plugin.
fn plugin_dir() -> tempfile::TempDir {
    let dir = tempfile::tempdir().unwrap();
    reckon_tests::install_plugins(dir.path(), &["example"]);
    install_fault(dir.path(), "behaviour");
    dir
}

fn install_fault(dir: &Path, name: &str) -> std::path::PathBuf {
    let file = format!(
        "{}reckon_fault_{name}{}",
        std::env::consts::DLL_PREFIX,
        std::env::consts::DLL_SUFFIX
    );
    let src = reckon_tests::profile_dir().join(&file);
    assert!(
        src.exists(),
        "{} missing: run `cargo build --workspace` first",
        src.display()
    );
    let dst = dir.join(&file);
    std::fs::copy(&src, &dst).unwrap();
    dst
}

#[derive(Debug, Default)]
struct MemSink {
    pages: Vec<(Vec<Record>, Checkpoint)>,
}

impl SessionSink for MemSink {
    fn commit(
        &mut self,
        records: Vec<Record>,
        checkpoint: Checkpoint,
    ) -> Result<CommitStats, String> {
        let n = records.len() as u64;
        self.pages.push((records, checkpoint));
        Ok(CommitStats {
            new: n,
            ..CommitStats::default()
        })
    }
}

impl MemSink {
    fn keys(&self) -> Vec<String> {
        self.pages
            .iter()
            .flat_map(|(r, _)| r.iter().map(Record::key))
            .collect()
    }
}

fn options(isolation: Isolation, deadline: Duration) -> SessionOptions {
    SessionOptions {
        isolation,
        step_deadline: deadline,
        host_exe: reckon_tests::reckon_bin(),
        max_requests: 100_000,
    }
}

fn tuning() -> SessionTuning {
    SessionTuning {
        backoff_base: Duration::from_millis(5),
        backoff_cap: Duration::from_millis(20),
        ..SessionTuning::default()
    }
}

fn policy(connector: &str) -> HttpPolicy {
    let mut p = HttpPolicy::new(connector);
    p.timeout = Duration::from_secs(5);
    p.max_retries = 3;
    p.secrets = BTreeMap::from([("api_key".to_owned(), Secret(KEY.to_owned()))]);
    p
}

fn window() -> Window {
    Window {
        from: NaiveDate::from_ymd_opt(2026, 11, 1).unwrap(),
        to: NaiveDate::from_ymd_opt(2026, 11, 7).unwrap(),
    }
}

fn open(connector: &str, base_url: &str, settings: serde_json::Value) -> SessionOpen {
    SessionOpen {
        mode: SessionMode::Read,
        connector_id: connector.to_owned(),
        settings,
        base_url: base_url.to_owned(),
        streams: Vec::new(),
        window: Some(window()),
        checkpoints: BTreeMap::new(),
        now: Utc.with_ymd_and_hms(2026, 11, 28, 12, 0, 0).unwrap(),
        timezone: None,
    }
}

async fn run(
    plugin: &Arc<Plugin>,
    open: SessionOpen,
    policy: HttpPolicy,
    options: SessionOptions,
    sink: &mut MemSink,
) -> Result<SessionReport, SessionError> {
    run_session_with(plugin.clone(), open, policy, options, sink, tuning()).await
}

fn example_fake(n: usize) -> (Arc<ExampleApi>, FakeServer) {
    let w = window();
    let api = ExampleApi::new(ExampleData::generate(7, n, w.from, w.to), KEY);
    let server = FakeServer::start(router(api.clone()));
    (api, server)
}

async fn faulty(
    isolation: Isolation,
    settings: serde_json::Value,
    deadline: Duration,
) -> (Result<SessionReport, SessionError>, MemSink) {
    let dir = plugin_dir();
    let plugin = load(dir.path(), "faulty", None).unwrap();
    let mut sink = MemSink::default();
    let r = run(
        &plugin,
        open("flaky_net", "https://faulty.invalid", settings),
        policy("flaky_net"),
        options(isolation, deadline),
        &mut sink,
    )
    .await;
    (r, sink)
}

fn expect_err(r: Result<SessionReport, SessionError>) -> SessionError {
    match r {
        Ok(rep) => panic!("session unexpectedly succeeded: {rep:?}"),
        Err(e) => {
            assert_eq!(e.connector, "flaky_net");
            assert!(e.to_string().starts_with("connector `flaky_net`: "), "{e}");
            e
        }
    }
}

// ---------------------------------------------------------------------------
// The example against its fake
// ---------------------------------------------------------------------------

#[tokio::test]
async fn example_reads_every_fake_conversion_in_both_transports() {
    let dir = plugin_dir();
    let plugin = load(dir.path(), "example", None).unwrap();
    let (api, server) = example_fake(230);
    let w = window();
    let truth_conv = api.data.created_in(w.from, w.to).len();
    let truth_rev = api.data.reversed_in(w.from, w.to).len();
    for iso in BOTH {
        let mut sink = MemSink::default();
        let report = run(
            &plugin,
            open("net1", &server.base_url, json!({ "page_size": 50 })),
            policy("net1"),
            options(iso, Duration::from_secs(10)),
            &mut sink,
        )
        .await
        .unwrap_or_else(|e| panic!("{iso:?}: {e}"));
        let records: Vec<&Record> = sink.pages.iter().flat_map(|(r, _)| r).collect();
        assert_eq!(records.len(), truth_conv + truth_rev, "{iso:?}");
        assert!(records.iter().all(|r| r.source() == "net1"));
        assert_eq!(report.pages, sink.pages.len() as u64);
        assert_eq!(report.new, (truth_conv + truth_rev) as u64);
        // 5 pages of conversions (230 rows / 50) + reversal pages.
        assert!(report.requests >= 6, "{report:?}");
        assert_eq!(report.retries, 0);
        // Euros arrive lower-case from the API and are normalised.
        assert!(records.iter().any(|r| matches!(r, Record::Conversion(c)
            if c.sale_amount.as_ref().is_some_and(|m| m.currency == "EUR"))));
    }
    let seen = api.auth_seen.lock().unwrap();
    assert!(seen.iter().all(|a| *a == format!("Bearer {KEY}")));
}

use reckon_tests::CapturedLogs as Captured;

/// QA7 F14 and F9, daemon side: the platform echoes the request's
/// Authorization header into a field the plugin maps (`order_ref` →
/// `order_id`), and sends a commission computed through floats
/// (`0.30000000000000004`). The echoed credential is stored masked, the
/// float noise as sent, each with one WARN (not one per record); a micros
/// amount, two-decimal amounts and values holding a short secret are
/// stored untouched.
#[tokio::test]
async fn an_echoed_credential_is_stored_masked_and_float_noise_kept_with_one_warning_each() {
    let dir = plugin_dir();
    let plugin = load(dir.path(), "example", None).unwrap();
    let w = window();
    let mut data = ExampleData::generate(7, 40, w.from, w.to);
    for (i, row) in data.conversions.iter_mut().take(4).enumerate() {
        row["state"] = json!("approved");
        row["updated"] = row["created"].clone();
        row["currency"] = json!("USD");
        match i {
            0 | 1 => {
                row["order_ref"] = json!(format!("Bearer {KEY}"));
                row["commission"] = serde_json::from_str("0.30000000000000004").unwrap();
            }
            2 => row["commission"] = serde_json::from_str("0.123456").unwrap(),
            _ => {}
        }
    }
    let rows = data.conversions.clone();
    let api = ExampleApi::new(data, KEY);
    let server = FakeServer::start(router(api.clone()));
    // A short secret (under 8 characters) that every order reference
    // holds: not looked for in records.
    let mut p = policy("net1");
    p.secrets.insert("pin".into(), Secret("ORD-1".into()));
    for iso in BOTH {
        let (captured, guard) = Captured::at(tracing::Level::WARN);
        let mut sink = MemSink::default();
        run(
            &plugin,
            open("net1", &server.base_url, json!({ "page_size": 10 })),
            p.clone(),
            options(iso, Duration::from_secs(10)),
            &mut sink,
        )
        .await
        .unwrap_or_else(|e| panic!("{iso:?}: {e}"));
        drop(guard);
        let records: Vec<&Record> = sink.pages.iter().flat_map(|(r, _)| r).collect();
        let stored = serde_json::to_string(&records).unwrap();
        assert!(!stored.contains(KEY), "{iso:?}: the key was stored");
        let by_id = |id: &serde_json::Value| -> &plugin_api::Conversion {
            records
                .iter()
                .find_map(|r| match r {
                    Record::Conversion(c) if c.external_id == id.as_str().unwrap() => Some(c),
                    _ => None,
                })
                .unwrap()
        };
        for (i, row) in rows.iter().enumerate() {
            let c = by_id(&row["id"]);
            let order_id = c.order_id.as_deref().unwrap();
            let commission = c.commission.as_ref().unwrap().amount.to_string();
            match i {
                0 | 1 => {
                    assert_eq!(order_id, "Bearer ***", "{iso:?}");
                    assert_eq!(commission, "0.30000000000000004", "{iso:?}");
                }
                _ => {
                    assert_eq!(order_id, row["order_ref"].as_str().unwrap(), "{iso:?}");
                    assert!(order_id.starts_with("ORD-1"));
                    assert_eq!(commission, row["commission"].to_string(), "{iso:?}");
                }
            }
        }
        assert_eq!(
            by_id(&rows[2]["id"])
                .commission
                .as_ref()
                .unwrap()
                .amount
                .to_string(),
            "0.123456"
        );
        let warns: Vec<serde_json::Value> = captured
            .lines()
            .into_iter()
            .filter(|l| l["target"] == "reckon::plugins::session")
            .map(|l| l["fields"].clone())
            .collect();
        assert_eq!(warns.len(), 2, "{iso:?}: {warns:#?}");
        let first = rows[0]["id"].as_str().unwrap();
        assert_eq!(
            warns[0],
            json!({
                "message": "the platform echoed a credential; it was masked",
                "plugin": "example", "connector": "net1", "stream": "conversions",
                "key": first, "field": "order_id",
            }),
            "{iso:?}"
        );
        assert_eq!(warns[1]["key"], first, "{iso:?}");
        assert_eq!(warns[1]["field"], "commission");
        assert_eq!(warns[1]["value"], "0.30000000000000004 USD");
        let message = warns[1]["message"].as_str().unwrap();
        assert!(
            message.contains("17 decimal places, more than plausible for USD (at most 6): looks like a float computation; build amounts from the platform's text with Decimal"),
            "{message}"
        );
    }
}

/// QA7 F14, every way out of a plugin: a credential the platform echoed
/// reaches the store masked in records and in the checkpoint's state, and
/// the plugin's log line and error show it masked too; one WARN per field.
#[tokio::test]
async fn an_echoed_credential_is_masked_in_records_checkpoint_log_and_error() {
    let app = axum::Router::new().route(
        "/echo",
        axum::routing::get(|| async { axum::Json(json!({ "ref": format!("Bearer {KEY}") })) }),
    );
    let server = FakeServer::start(app);
    let dir = plugin_dir();
    let plugin = load(dir.path(), "faulty", None).unwrap();
    for iso in BOTH {
        let (captured, guard) = Captured::at(tracing::Level::INFO);
        let mut sink = MemSink::default();
        let r = run(
            &plugin,
            open("flaky_net", &server.base_url, json!({ "fault": "echo" })),
            policy("flaky_net"),
            options(iso, Duration::from_secs(10)),
            &mut sink,
        )
        .await;
        drop(guard);
        let e = expect_err(r);
        assert_eq!(e.kind, ErrorKind::BadResponse, "{iso:?}: {e}");
        assert!(
            e.message.ends_with("page 2 unreadable near \"Bearer ***\""),
            "{iso:?}: {e}"
        );
        assert_eq!(sink.pages.len(), 1, "{iso:?}");
        let (records, cp) = &sink.pages[0];
        for r in records {
            let Record::Conversion(c) = r else {
                panic!("{r:?}")
            };
            assert_eq!(c.order_id.as_deref(), Some("Bearer ***"), "{iso:?}");
        }
        assert_eq!(
            cp.state,
            json!({ "next": format!("{}/echo?key=Bearer ***", server.base_url) }),
            "{iso:?}"
        );
        let lines = captured.lines();
        let text = serde_json::to_string(&lines).unwrap();
        assert!(!text.contains(KEY), "{iso:?}: {text}");
        let read = lines
            .iter()
            .find(|l| l["fields"]["message"] == "echo read")
            .unwrap_or_else(|| panic!("{iso:?}: {lines:#?}"));
        assert_eq!(read["fields"]["field.ref"], "Bearer ***");
        let warned: Vec<(&str, &str)> = lines
            .iter()
            .filter(|l| l["level"] == "WARN" && l["fields"]["field"].is_string())
            .map(|l| {
                (
                    l["fields"]["field"].as_str().unwrap(),
                    l["fields"]["message"].as_str().unwrap(),
                )
            })
            .collect();
        assert_eq!(
            warned,
            [
                ("order_id", "the platform echoed a credential; it was masked"),
                (
                    "state.next",
                    "the plugin's checkpoint held a credential (a next-page URL echoing the key?); \
                     it was masked: keep only the platform's cursor in the state"
                ),
            ],
            "{iso:?}"
        );
    }
}

/// QA28-B F2, F3: what a subprocess plugin prints is logged with the
/// connector's secrets masked (a platform echoing the key into a body the
/// plugin printed showed it in clear), and a byte that is not UTF-8 does
/// not stop the relay (the plugin's next `eprintln!` failed on the closed
/// pipe and panicked the session).
#[tokio::test]
async fn a_subprocess_plugins_prints_are_masked_and_survive_bytes_that_are_not_utf8() {
    let app = axum::Router::new().route(
        "/echo",
        axum::routing::get(|| async { axum::Json(json!({ "ref": format!("Bearer {KEY}") })) }),
    );
    let server = FakeServer::start(app);
    let dir = plugin_dir();
    let plugin = load(dir.path(), "faulty", None).unwrap();
    let (captured, guard) = Captured::at(tracing::Level::INFO);
    let mut sink = MemSink::default();
    let r = run(
        &plugin,
        open(
            "flaky_net",
            &server.base_url,
            json!({ "fault": "print_echo" }),
        ),
        policy("flaky_net"),
        options(Isolation::Subprocess, Duration::from_secs(10)),
        &mut sink,
    )
    .await;
    drop(guard);
    r.expect("the session ends well");
    let lines = captured.lines();
    let text = serde_json::to_string(&lines).unwrap();
    assert!(!text.contains(KEY), "{text}");
    let printed: Vec<&str> = lines
        .iter()
        .filter(|l| {
            l["fields"]["message"] == "plugin process printed a line (its stdout or stderr)"
        })
        .map(|l| l["fields"]["line"].as_str().unwrap())
        .collect();
    assert_eq!(
        printed,
        [
            "DEBUG body: {\"ref\":\"Bearer ***\"}",
            "bad bytes: \u{fffd}\u{fffd}",
            "still printing after them"
        ],
        "{text}"
    );
}

#[tokio::test]
async fn http_429_with_retry_after_is_waited_out_and_counted() {
    let dir = plugin_dir();
    let plugin = load(dir.path(), "example", None).unwrap();
    let (api, server) = example_fake(20);
    api.faults.throttle.store(1, Ordering::SeqCst);
    api.faults.retry_after_secs.store(1, Ordering::SeqCst);
    let mut sink = MemSink::default();
    let report = run(
        &plugin,
        open("net1", &server.base_url, json!({})),
        policy("net1"),
        options(Isolation::InProcess, Duration::from_secs(10)),
        &mut sink,
    )
    .await
    .unwrap();
    assert_eq!(report.rate_limit_waits, 1, "{report:?}");
    assert_eq!(report.retries, 1);
    assert_eq!(
        sink.keys().len(),
        api.data.created_in(window().from, window().to).len()
            + api.data.reversed_in(window().from, window().to).len()
    );
}

#[tokio::test]
async fn http_500s_then_success_are_retried_in_both_transports() {
    let dir = plugin_dir();
    let plugin = load(dir.path(), "example", None).unwrap();
    let (api, server) = example_fake(20);
    for iso in BOTH {
        api.faults.fail_500.store(2, Ordering::SeqCst);
        let mut sink = MemSink::default();
        let report = run(
            &plugin,
            open("net1", &server.base_url, json!({})),
            policy("net1"),
            options(iso, Duration::from_secs(10)),
            &mut sink,
        )
        .await
        .unwrap();
        assert_eq!(report.retries, 2, "{iso:?} {report:?}");
        assert!(!sink.pages.is_empty());
    }
}

#[tokio::test]
async fn http_500s_beyond_the_retries_fail_retryable_naming_the_connector() {
    let dir = plugin_dir();
    let plugin = load(dir.path(), "example", None).unwrap();
    let (api, server) = example_fake(20);
    api.faults.fail_500.store(100, Ordering::SeqCst);
    let mut sink = MemSink::default();
    let e = run(
        &plugin,
        open("net1", &server.base_url, json!({})),
        policy("net1"),
        options(Isolation::InProcess, Duration::from_secs(10)),
        &mut sink,
    )
    .await
    .unwrap_err();
    assert_eq!(e.connector, "net1");
    assert!(e.retryable);
    assert_eq!(e.kind, ErrorKind::Upstream);
    assert!(e.message.contains("HTTP 500"), "{e}");
    assert!(e.message.contains("stream `conversions` page 1"), "{e}");
    assert!(sink.pages.is_empty());
}

#[tokio::test]
async fn a_timeout_fails_the_session_as_a_retryable_transport_error() {
    let dir = plugin_dir();
    let plugin = load(dir.path(), "example", None).unwrap();
    let (api, server) = example_fake(5);
    api.faults.slow_ms.store(3_000, Ordering::SeqCst);
    let mut p = policy("net1");
    p.timeout = Duration::from_millis(200);
    p.max_retries = 1;
    for iso in BOTH {
        let mut sink = MemSink::default();
        let e = run(
            &plugin,
            open("net1", &server.base_url, json!({})),
            p.clone(),
            options(iso, Duration::from_secs(10)),
            &mut sink,
        )
        .await
        .unwrap_err();
        assert_eq!(e.kind, ErrorKind::Transport, "{e}");
        assert!(e.retryable);
        assert!(e.message.contains("timed out"), "{e}");
        assert!(sink.pages.is_empty());
    }
}

async fn body_fault(fault: BodyFault, max_bytes: usize) -> SessionError {
    let dir = plugin_dir();
    let plugin = load(dir.path(), "example", None).unwrap();
    let (api, server) = example_fake(20);
    *api.faults.body.lock().unwrap() = fault;
    let mut p = policy("net1");
    p.max_response_bytes = max_bytes;
    let mut last = None;
    for iso in BOTH {
        let mut sink = MemSink::default();
        let e = run(
            &plugin,
            open("net1", &server.base_url, json!({})),
            p.clone(),
            options(iso, Duration::from_secs(10)),
            &mut sink,
        )
        .await
        .unwrap_err();
        assert_eq!(e.connector, "net1");
        assert!(sink.pages.is_empty(), "{iso:?}");
        last = Some(e);
    }
    last.unwrap()
}

#[tokio::test]
async fn a_garbage_body_fails_naming_stream_and_page() {
    let e = body_fault(BodyFault::Garbage, 1 << 20).await;
    assert_eq!(e.kind, ErrorKind::BadResponse);
    assert!(
        e.message
            .contains("stream `conversions` page 1: HTTP 200, content-type `application/json`: the answer is not JSON: \"<html><body>502 Bad Gateway</body></html>\""),
        "{e}"
    );
}

#[tokio::test]
async fn a_truncated_body_fails_naming_stream_and_page() {
    let e = body_fault(BodyFault::Truncated, 1 << 20).await;
    assert_eq!(e.kind, ErrorKind::BadResponse);
    assert!(e.message.contains("malformed JSON"), "{e}");
    assert!(e.message.contains("EOF"), "{e}");
}

#[tokio::test]
async fn an_oversize_body_is_refused_by_the_host() {
    let e = body_fault(BodyFault::Oversize(200_000), 64 * 1024).await;
    assert_eq!(e.kind, ErrorKind::BadResponse);
    assert!(
        e.message
            .contains("exceeds the host's limit of 65536 bytes"),
        "{e}"
    );
}

#[tokio::test]
async fn our_own_rate_limit_spaces_requests() {
    let dir = plugin_dir();
    let plugin = load(dir.path(), "example", None).unwrap();
    let (_api, server) = example_fake(40);
    let mut p = policy("rate_limited_net");
    p.rate_limit = Some(RateLimit {
        requests: 20,
        per_secs: 1,
    });
    let mut sink = MemSink::default();
    let report = run(
        &plugin,
        open(
            "rate_limited_net",
            &server.base_url,
            json!({ "page_size": 1 }),
        ),
        p,
        options(Isolation::InProcess, Duration::from_secs(10)),
        &mut sink,
    )
    .await
    .unwrap();
    assert!(report.requests > 20, "{report:?}");
    assert!(report.rate_limit_waits >= 1, "{report:?}");
}

#[tokio::test]
async fn wrong_credentials_fail_as_auth_without_leaking_the_key() {
    let dir = plugin_dir();
    let plugin = load(dir.path(), "example", None).unwrap();
    let (_api, server) = example_fake(5);
    let mut p = policy("net1");
    let wrong = "sk_wrong_but_still_secret_777";
    p.secrets = BTreeMap::from([("api_key".to_owned(), Secret(wrong.to_owned()))]);
    let mut sink = MemSink::default();
    let e = run(
        &plugin,
        open("net1", &server.base_url, json!({})),
        p,
        options(Isolation::Subprocess, Duration::from_secs(10)),
        &mut sink,
    )
    .await
    .unwrap_err();
    assert_eq!(e.kind, ErrorKind::Auth);
    assert!(!e.retryable);
    // The fake echoes the presented token in its 401 body; the host masks it.
    assert!(e.message.contains("Bearer ***"), "{e}");
    assert!(!e.to_string().contains(wrong), "{e}");
}

// ---------------------------------------------------------------------------
// Faulty plugin
// ---------------------------------------------------------------------------

#[tokio::test]
async fn a_panicking_plugin_fails_retryable_and_keeps_only_committed_pages() {
    for iso in BOTH {
        let (r, sink) = faulty(iso, json!({ "fault": "panic" }), Duration::from_secs(10)).await;
        let e = expect_err(r);
        assert!(e.retryable, "{iso:?}");
        assert_eq!(e.kind, ErrorKind::Internal);
        assert!(
            e.message
                .contains("plugin `faulty`: plugin panicked: faulty plugin panics on purpose"),
            "{iso:?}: {e}"
        );
        // The shim's panic hook recorded where (and printed nothing itself).
        assert!(
            e.message
                .contains("(at tests/fault-plugins/behaviour/src/lib.rs:"),
            "{iso:?}: {e}"
        );
        assert_eq!(sink.keys(), ["c1"], "{iso:?}");
    }
}

#[tokio::test]
async fn an_aborting_plugin_kills_only_its_subprocess() {
    let (r, sink) = faulty(
        Isolation::Subprocess,
        json!({ "fault": "abort" }),
        Duration::from_secs(10),
    )
    .await;
    let e = expect_err(r);
    assert!(e.retryable);
    assert!(e.message.contains("plugin process crashed"), "{e}");
    assert!(e.message.contains("SIGABRT"), "{e}");
    assert_eq!(sink.keys(), ["c1"]);
    // We are still alive and can run another session.
    let (r, sink) = faulty(
        Isolation::Subprocess,
        json!({ "fault": "none" }),
        Duration::from_secs(10),
    )
    .await;
    r.unwrap();
    assert_eq!(sink.keys(), ["c1", "c2"]);
}

#[tokio::test]
async fn a_looping_plugin_is_killed_at_the_step_deadline() {
    let (r, sink) = faulty(
        Isolation::Subprocess,
        json!({ "fault": "loop" }),
        Duration::from_millis(500),
    )
    .await;
    let e = expect_err(r);
    assert!(e.retryable);
    assert!(e.message.contains("exceeded its deadline of 500 ms"), "{e}");
    assert!(e.message.contains("process was killed"), "{e}");
    assert_eq!(sink.keys(), ["c1"]);
}

/// The thread of a looping in-process plugin cannot be killed; while it
/// still runs the call, the connector's next in-process sessions are
/// refused at once (QA28-B F1: every run and retry stranded one more
/// spinning thread), and once the call returns they run again. Its own
/// connector id: other tests run `flaky_net` in process meanwhile.
#[tokio::test]
async fn a_looping_in_process_plugin_fails_at_the_deadline_and_is_abandoned() {
    let dir = plugin_dir();
    let plugin = load(dir.path(), "faulty", None).unwrap();
    let session = |settings: serde_json::Value| {
        let plugin = plugin.clone();
        async move {
            let mut sink = MemSink::default();
            let r = run(
                &plugin,
                open("looping_net", "https://faulty.invalid", settings),
                policy("looping_net"),
                options(Isolation::InProcess, Duration::from_millis(300)),
                &mut sink,
            )
            .await;
            (r, sink)
        }
    };
    let (r, sink) = session(json!({ "fault": "loop", "loop_millis": 1500 })).await;
    let e = r.expect_err("the loop passes the deadline");
    assert!(e.retryable);
    assert!(
        e.message
            .contains("exceeded its deadline of 300 ms, 4 × the connector's `timeout_secs`"),
        "{e}"
    );
    assert!(e.message.contains("abandoned"), "{e}");
    assert_eq!(sink.keys(), ["c1"]);
    // The call still runs: refused at once, not retried, naming the fix.
    let started = std::time::Instant::now();
    let (r, sink) = session(json!({ "fault": "none" })).await;
    let e = r.expect_err("refused while the thread still runs");
    assert!(started.elapsed() < Duration::from_millis(300));
    assert!(!e.retryable, "{e}");
    assert!(
        e.message
            .contains("still runs it on a thread that cannot be killed")
            && e.message.contains("isolation = \"subprocess\""),
        "{e}"
    );
    assert!(sink.keys().is_empty());
    // Once the loop's call returns (1.5 s), the connector runs again.
    let deadline = std::time::Instant::now() + Duration::from_secs(30);
    loop {
        let (r, sink) = session(json!({ "fault": "none" })).await;
        match r {
            Ok(_) => {
                assert_eq!(sink.keys(), ["c1", "c2"]);
                break;
            }
            Err(e) if std::time::Instant::now() < deadline && !e.retryable => {
                tokio::time::sleep(Duration::from_millis(50)).await;
            }
            Err(e) => panic!("still refused: {e}"),
        }
    }
}

async fn invalid_output(settings: serde_json::Value, needle: &str) {
    for iso in BOTH {
        let (r, sink) = faulty(iso, settings.clone(), Duration::from_secs(10)).await;
        let e = expect_err(r);
        assert_eq!(e.kind, ErrorKind::Protocol, "{iso:?}: {e}");
        assert!(!e.retryable);
        assert!(
            e.message
                .contains("plugin `faulty` produced invalid output"),
            "{e}"
        );
        assert!(e.message.contains(needle), "{iso:?}: {e}");
        assert_eq!(sink.keys(), ["c1"], "{iso:?}");
    }
}

#[tokio::test]
async fn an_unknown_currency_is_rejected_naming_stream_and_record() {
    invalid_output(
        json!({ "fault": "invalid_record" }),
        "stream `conversions`, page 2 of this session, record 2 of 2 (key `c3`): field `sale_amount`: currency `XYZ` is not an ISO-4217 code; the page is not stored",
    )
    .await;
}

#[tokio::test]
async fn finishing_with_uncommitted_records_fails_instead_of_losing_them() {
    invalid_output(
        json!({ "fault": "no_commit" }),
        "it finished with 1 record(s) after its last checkpoint, which are not stored",
    )
    .await;
}

/// QA7 F8: a cursor that never advanced made 100,000 identical requests
/// (the default budget) and committed 100,000 pages before it stopped.
#[tokio::test]
async fn a_cursor_that_does_not_advance_stops_after_three_repeats() {
    let hits = Arc::new(std::sync::atomic::AtomicU32::new(0));
    let seen = hits.clone();
    let server = FakeServer::start(axum::Router::new().route(
        "/page",
        axum::routing::get(move || {
            seen.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
            async { axum::Json(json!({ "data": [], "next_cursor": "1" })) }
        }),
    ));
    let dir = plugin_dir();
    let plugin = load(dir.path(), "faulty", None).unwrap();
    for iso in BOTH {
        hits.store(0, std::sync::atomic::Ordering::SeqCst);
        let mut sink = MemSink::default();
        let e = run(
            &plugin,
            open(
                "flaky_net",
                &server.base_url,
                json!({ "fault": "same_cursor" }),
            ),
            policy("flaky_net"),
            options(iso, Duration::from_secs(10)),
            &mut sink,
        )
        .await
        .unwrap_err();
        assert_eq!(e.kind, ErrorKind::Protocol, "{iso:?}: {e}");
        assert!(!e.retryable);
        let needle = format!(
            "plugin `faulty` asked for the same request (GET {}/page?cursor=1) again after committing its answer, 3 times in a row: a cursor that does not advance?",
            server.base_url
        );
        assert!(e.message.contains(&needle), "{iso:?}: {e}");
        // The good page, then three pages of the same request; the fourth
        // identical request is never sent.
        assert_eq!(hits.load(std::sync::atomic::Ordering::SeqCst), 3, "{iso:?}");
        assert_eq!(sink.pages.len(), 4, "{iso:?}");
    }
}

#[tokio::test]
async fn a_plugin_asking_for_pages_without_end_stops_at_the_request_budget() {
    let dir = plugin_dir();
    let plugin = load(dir.path(), "faulty", None).unwrap();
    for iso in BOTH {
        let mut o = options(iso, Duration::from_secs(10));
        o.max_requests = 50;
        let mut sink = MemSink::default();
        let e = run(
            &plugin,
            open(
                "flaky_net",
                "https://faulty.invalid",
                json!({ "fault": "endless" }),
            ),
            policy("flaky_net"),
            o,
            &mut sink,
        )
        .await
        .unwrap_err();
        assert_eq!(e.kind, ErrorKind::Protocol, "{iso:?}: {e}");
        assert!(!e.retryable);
        assert!(
            e.message.contains("asked for more than 50 requests in one run (`max_requests_per_run` of connector `flaky_net`)"),
            "{iso:?}: {e}"
        );
        assert_eq!(sink.keys(), ["c1"], "{iso:?}: the committed page stays");
    }
}

#[tokio::test]
async fn an_empty_id_is_rejected() {
    invalid_output(
        json!({ "fault": "empty_id" }),
        "record 2 of 2 (key ``): field `external_id` is empty",
    )
    .await;
}

/// QA7 F4: the value was escaped, the key went raw into the WARN line,
/// `reckon status` and `last_error`, so platform data could forge a line.
#[tokio::test]
async fn a_key_with_a_newline_is_escaped_in_the_error() {
    let needle = "record 2 of 2 (key `c3\\n2026-11-29T00:00:00Z ERROR reckon::store: forged`): field `external_id`: \"c3\\n2026-11-29T00:00:00Z ERROR reckon::store: forged\" holds a control character";
    invalid_output(json!({ "fault": "control_id" }), needle).await;
    let (r, _) = faulty(
        Isolation::InProcess,
        json!({ "fault": "control_id" }),
        Duration::from_secs(10),
    )
    .await;
    let e = expect_err(r);
    assert!(!e.message.contains('\n'), "{e}");
}

/// Plugin-developer QA16 N1: the message of an error the plugin returns
/// often quotes the platform; its newline forged a log line and an escape
/// code reached the terminal. Escaped as log messages are.
#[tokio::test]
async fn a_plugin_errors_control_characters_are_escaped() {
    for iso in BOTH {
        let (r, _) = faulty(
            iso,
            json!({ "fault": "control_error" }),
            Duration::from_secs(10),
        )
        .await;
        let e = expect_err(r);
        assert!(!e.message.contains(['\n', '\u{1b}']), "{iso:?}: {e}");
        assert!(
            e.message.ends_with(
                "plugin `faulty` failed: page 1: bad\\n2026-11-29T00:00:00Z ERROR reckon::store: forged\\u{1b}[31mred"
            ),
            "{iso:?}: {e}"
        );
    }
}

/// QA21 F8: a plugin's error that starts with its connector (as the SDK's
/// settings errors do) names the connector once, not twice.
#[tokio::test]
async fn a_plugin_error_names_its_connector_once() {
    let (r, _) = faulty(
        Isolation::InProcess,
        json!({ "fault": "connector_error" }),
        Duration::from_secs(10),
    )
    .await;
    let e = expect_err(r).to_string();
    assert!(
        e.ends_with("connector `flaky_net`: plugin `faulty` failed: setting `x`: missing"),
        "{e}"
    );
}

#[tokio::test]
async fn a_record_of_the_wrong_kind_is_rejected() {
    invalid_output(
        json!({ "fault": "wrong_kind" }),
        "record is of kind `spend` but the stream holds `conversions`",
    )
    .await;
}

#[tokio::test]
async fn a_backwards_checkpoint_is_rejected() {
    invalid_output(
        json!({ "fault": "backwards_checkpoint" }),
        "stream `conversions`: checkpoint watermark 2026-11-01T00:00:00+00:00 moves backwards from 2026-11-01T01:00:00+00:00",
    )
    .await;
}

/// QA7 F1: a watermark a year ahead was stored silently; every later run
/// then started at "today less the lookback".
#[tokio::test]
async fn a_watermark_in_the_future_is_rejected() {
    // The fault commits the window's first day plus its 7 days and a year.
    // After the plugin's first yield the session's clock is the host's real
    // one, so the window is the week up to today: with the fixed
    // `window()`, that watermark (2027-11-08) stops being in the future once
    // the real clock passes it.
    let today = Utc::now().date_naive();
    let w = Window {
        from: today - chrono::Days::new(6),
        to: today,
    };
    let future =
        w.from.and_time(chrono::NaiveTime::MIN).and_utc() + chrono::Duration::days(7 + 365);
    let needle = format!(
        "stream `conversions`: checkpoint watermark {} is in the future: after ",
        future.to_rfc3339()
    );
    for iso in BOTH {
        let dir = plugin_dir();
        let plugin = load(dir.path(), "faulty", None).unwrap();
        let mut o = open(
            "flaky_net",
            "https://faulty.invalid",
            json!({ "fault": "future_checkpoint" }),
        );
        o.window = Some(w);
        o.now = Utc::now();
        let mut sink = MemSink::default();
        let r = run(
            &plugin,
            o,
            policy("flaky_net"),
            options(iso, Duration::from_secs(10)),
            &mut sink,
        )
        .await;
        let e = expect_err(r);
        assert_eq!(e.kind, ErrorKind::Protocol, "{iso:?}: {e}");
        assert!(!e.retryable);
        assert!(
            e.message
                .contains("plugin `faulty` produced invalid output"),
            "{e}"
        );
        assert!(e.message.contains(&needle), "{iso:?}: {e}");
        assert_eq!(sink.keys(), ["c1"], "{iso:?}");
    }
}

/// QA7 F5: a stream's first watermark 400 days before the window made the
/// next run a 433-day backfill.
#[tokio::test]
async fn a_first_watermark_before_the_window_is_rejected() {
    for iso in BOTH {
        let (r, sink) = faulty(
            iso,
            json!({ "fault": "early_checkpoint" }),
            Duration::from_secs(10),
        )
        .await;
        let e = expect_err(r);
        assert!(
            e.message.contains("plugin `faulty` produced invalid output: stream `conversions`: checkpoint watermark 2025-09-27T00:00:00+00:00 is before the session's window 2026-11-01..2026-11-07"),
            "{iso:?}: {e}"
        );
        assert!(sink.pages.is_empty(), "{iso:?}");
    }
}

#[tokio::test]
async fn a_checkpoint_behind_the_committed_one_is_rejected() {
    let dir = plugin_dir();
    let plugin = load(dir.path(), "faulty", None).unwrap();
    let mut o = open("flaky_net", "https://faulty.invalid", json!({}));
    o.checkpoints.insert(
        "conversions".into(),
        Checkpoint {
            stream: "conversions".into(),
            watermark: Utc.with_ymd_and_hms(2026, 11, 5, 0, 0, 0).unwrap(),
            state: json!({}),
            covers: None,
        },
    );
    let mut sink = MemSink::default();
    let e = run(
        &plugin,
        o,
        policy("flaky_net"),
        options(Isolation::InProcess, Duration::from_secs(10)),
        &mut sink,
    )
    .await
    .unwrap_err();
    assert!(e.message.contains("moves backwards from 2026-11-05"), "{e}");
    assert!(sink.pages.is_empty());
}

#[tokio::test]
async fn a_checkpoint_for_an_undeclared_stream_is_rejected() {
    invalid_output(
        json!({ "fault": "unknown_stream" }),
        "checkpoint for stream `nope`, which the manifest does not declare",
    )
    .await;
}

#[tokio::test]
async fn a_complete_pass_outside_a_spend_stream_is_rejected() {
    invalid_output(
        json!({ "fault": "false_pass" }),
        "stream `conversions`: checkpoint declares a complete pass over account `a1` days 2026-11-01..2026-11-01, but a pass must be of a spend stream",
    )
    .await;
}

#[tokio::test]
async fn a_request_to_a_foreign_host_is_refused() {
    for iso in BOTH {
        let (r, sink) = faulty(
            iso,
            json!({ "fault": "foreign_host" }),
            Duration::from_secs(10),
        )
        .await;
        let e = expect_err(r);
        assert_eq!(e.kind, ErrorKind::Config);
        assert!(
            e.message.contains(
                "origin `https://elsewhere.invalid:443` is not allowed for connector `flaky_net` (allowed: https://faulty.invalid:443)"
            ),
            "{e}"
        );
        assert_eq!(sink.keys(), ["c1"]);
    }
}

/// The base URL's host over plain http, on another port, or with a user in
/// the URL: the connector's credentials would go there (QA: an API key
/// was sent in clear text to another port of the base URL's host).
#[tokio::test]
async fn a_request_to_another_scheme_or_port_of_the_base_host_is_refused() {
    for (url, says) in [
        (
            "http://faulty.invalid/x",
            "origin `http://faulty.invalid:80` is not allowed",
        ),
        (
            "https://faulty.invalid:8443/x",
            "origin `https://faulty.invalid:8443` is not allowed",
        ),
        (
            "https://u:p@faulty.invalid/x",
            "a URL with a user or password is not allowed",
        ),
    ] {
        let (r, _) = faulty(
            Isolation::InProcess,
            json!({ "fault": "foreign_host", "url": url }),
            Duration::from_secs(10),
        )
        .await;
        let e = expect_err(r);
        assert_eq!(e.kind, ErrorKind::Config, "{url}");
        assert!(e.message.contains(says), "{url}: {e}");
    }
}

#[tokio::test]
async fn a_plugin_printing_to_stdout_does_not_corrupt_the_subprocess_protocol() {
    let (r, sink) = faulty(
        Isolation::Subprocess,
        json!({ "fault": "stdout" }),
        Duration::from_secs(10),
    )
    .await;
    r.unwrap();
    assert_eq!(sink.keys(), ["c1", "c2"]);
}

#[tokio::test]
async fn the_file_capability_reads_inside_its_directory_only() {
    let drop_dir = tempfile::tempdir().unwrap();
    std::fs::write(drop_dir.path().join("a.csv"), "id\n1\n").unwrap();
    std::fs::write(drop_dir.path().join("b.txt"), "hello").unwrap();
    std::fs::write(drop_dir.path().join("c.json"), "{}").unwrap();
    for iso in BOTH {
        let (r, _) = faulty(
            iso,
            json!({ "fault": "files", "directory": drop_dir.path() }),
            Duration::from_secs(10),
        )
        .await;
        r.unwrap_or_else(|e| panic!("{iso:?}: {e}"));
        let (r, _) = faulty(
            iso,
            json!({ "fault": "read_file", "file": "../../etc/passwd.txt", "directory": drop_dir.path() }),
            Duration::from_secs(10),
        )
        .await;
        let e = expect_err(r);
        assert!(
            e.message.contains("cannot be opened") || e.message.contains("outside"),
            "{e}"
        );
        let (r, _) = faulty(
            iso,
            json!({ "fault": "read_file", "file": "c.json", "directory": drop_dir.path() }),
            Duration::from_secs(10),
        )
        .await;
        let e = expect_err(r);
        assert!(e.message.contains("only names ending in .csv, .txt"), "{e}");
    }
}

#[tokio::test]
async fn long_sleeps_are_capped_and_end_on_shutdown() {
    let dir = plugin_dir();
    let plugin = load(dir.path(), "faulty", None).unwrap();
    // The plugin sleeps a day past the session's `now`; the host waits only
    // for a time still ahead of its clock, so `now` must be the real one
    // (a fixed date made this test pass only until that date's next day).
    let open = |connector: &str, base_url: &str, settings: serde_json::Value| SessionOpen {
        now: Utc::now(),
        ..open(connector, base_url, settings)
    };
    let capped = SessionTuning {
        max_sleep: Duration::from_millis(10),
        ..tuning()
    };
    let mut sink = MemSink::default();
    run_session_with(
        plugin.clone(),
        open(
            "flaky_net",
            "https://faulty.invalid",
            json!({ "fault": "sleep" }),
        ),
        policy("flaky_net"),
        options(Isolation::InProcess, Duration::from_secs(10)),
        &mut sink,
        capped,
    )
    .await
    .unwrap();
    let (tx, rx) = tokio::sync::watch::channel(false);
    tx.send(true).unwrap();
    let stopping = SessionTuning {
        shutdown: Some(rx),
        ..tuning()
    };
    let e = run_session_with(
        plugin,
        open(
            "flaky_net",
            "https://faulty.invalid",
            json!({ "fault": "sleep" }),
        ),
        policy("flaky_net"),
        options(Isolation::Subprocess, Duration::from_secs(10)),
        &mut sink,
        stopping,
    )
    .await
    .unwrap_err();
    assert!(e.retryable);
    assert!(e.message.contains("shutting down"), "{e}");
}

#[tokio::test]
async fn a_check_session_makes_one_request_and_commits_nothing() {
    let dir = plugin_dir();
    let plugin = load(dir.path(), "example", None).unwrap();
    let (_api, server) = example_fake(5);
    let mut o = open("net1", &server.base_url, json!({}));
    o.mode = SessionMode::Check;
    o.window = None;
    let mut sink = MemSink::default();
    let report = run(
        &plugin,
        o,
        policy("net1"),
        options(Isolation::Subprocess, Duration::from_secs(10)),
        &mut sink,
    )
    .await
    .unwrap();
    assert_eq!(report.requests, 1);
    assert!(sink.pages.is_empty());
}

// ---------------------------------------------------------------------------
// Loader
// ---------------------------------------------------------------------------

#[test]
fn a_sha256_pin_is_checked_before_loading() {
    let dir = plugin_dir();
    let file = dir.path().join(reckon_tests::plugin_file_name("example"));
    let sha = reckon::plugins::loader::sha256_hex(&std::fs::read(&file).unwrap());
    let p = load(dir.path(), "example", Some(&sha)).unwrap();
    assert_eq!(p.sha256, sha);
    let wrong = "0".repeat(64);
    let e = load(dir.path(), "example", Some(&wrong))
        .unwrap_err()
        .to_string();
    assert!(
        e.contains("no library has the sha256 pinned for plugin `example`"),
        "{e}"
    );
    let e = load(dir.path(), "nope", None).unwrap_err().to_string();
    assert!(e.contains("no plugin with id `nope`"), "{e}");
    // Ops QA13 OPS-8: what is installed, and the nearest id.
    let e = load(dir.path(), "exampel", None).unwrap_err().to_string();
    assert!(
        e.contains("no plugin with id `exampel` in the plugin directory (installed: example, faulty); did you mean `example`?"),
        "{e}"
    );
}

/// Regression (conformance audit): the pin was checked on bytes read by
/// path and the library then `dlopen`ed by path again, so a library renamed
/// over the file in between was loaded unverified. The loader now loads the
/// file it hashed, whatever the path points at by then.
#[test]
fn the_library_loaded_is_the_file_whose_hash_was_checked() {
    use reckon::plugins::loader::{open_library, sha256_of, LibraryFile};
    let dir = plugin_dir();
    let path = dir.path().join(reckon_tests::plugin_file_name("example"));
    let pin = sha256_of(std::fs::File::open(&path).unwrap()).unwrap();
    let vetted = LibraryFile::open(&path, Some(&pin)).unwrap();
    // Another plugin renamed over the path after the hash was checked.
    let swap = dir.path().join("swap.tmp");
    std::fs::copy(install_fault(dir.path(), "behaviour"), &swap).unwrap();
    std::fs::rename(&swap, &path).unwrap();
    let (header, _) = open_library(vetted).unwrap();
    assert_eq!(header.plugin_id, "example");
    // Checked again now, the file at the path is refused.
    let e = LibraryFile::open(&path, Some(&pin))
        .unwrap_err()
        .to_string();
    assert!(e.contains("sha256 mismatch: pinned"), "{e}");
    // Loaded without a pin, it is the other plugin: the dynamic loader knows
    // the first library as `/proc/self/fd/N` and hands it back for the same
    // name, so that descriptor must never be closed and its number reused.
    let (header, _) = open_library(LibraryFile::open(&path, None).unwrap()).unwrap();
    assert_eq!(header.plugin_id, "faulty");
}

#[cfg(unix)]
#[test]
fn world_writable_files_and_symlinks_out_of_the_directory_are_refused() {
    use std::os::unix::fs::PermissionsExt;
    let outside = plugin_dir();
    let dir = tempfile::tempdir().unwrap();
    let src = outside
        .path()
        .join(reckon_tests::plugin_file_name("example"));
    std::os::unix::fs::symlink(&src, dir.path().join("libsneaky.so")).unwrap();
    let e = reckon::plugins::loader::load_file(dir.path(), &dir.path().join("libsneaky.so"), None)
        .unwrap_err()
        .to_string();
    assert!(
        e.contains("symlink leads outside the plugin directory"),
        "{e}"
    );

    let ww = dir.path().join("libww.so");
    std::fs::copy(&src, &ww).unwrap();
    std::fs::set_permissions(&ww, std::fs::Permissions::from_mode(0o666)).unwrap();
    let e = reckon::plugins::loader::load_file(dir.path(), &ww, None)
        .unwrap_err()
        .to_string();
    assert!(e.contains("world-writable"), "{e}");
}

// ---------------------------------------------------------------------------
// QA31-C: hostile platforms
// ---------------------------------------------------------------------------

/// An ExampleNet whose `/v1/conversions` answers `page(cursor)` (the
/// request's `cursor`, empty on the first page), counting requests; its
/// `/v1/reversals` has none.
fn conversions_fake(
    page: impl Fn(&str) -> serde_json::Value + Clone + Send + Sync + 'static,
) -> (Arc<std::sync::atomic::AtomicU32>, FakeServer) {
    let hits = Arc::new(std::sync::atomic::AtomicU32::new(0));
    let seen = hits.clone();
    let server = FakeServer::start(
        axum::Router::new()
            .route(
                "/v1/conversions",
                axum::routing::get(
                    move |axum::extract::Query(q): axum::extract::Query<
                        BTreeMap<String, String>,
                    >| {
                        seen.fetch_add(1, Ordering::SeqCst);
                        let body = page(q.get("cursor").map_or("", String::as_str));
                        async move { axum::Json(body) }
                    },
                ),
            )
            .route(
                "/v1/reversals",
                axum::routing::get(|| async { axum::Json(json!({ "data": [], "next": null })) }),
            ),
    );
    (hits, server)
}

/// QA31-C F2: an API whose cursor always advances over empty pages kept a
/// sync running until the daemon stopped (the request budget, 100,000 by
/// default, is over an hour of it). After `MAX_EMPTY_PAGES` such pages the
/// next request is refused; retryable, naming connector, stream and count.
#[tokio::test]
async fn a_cursor_advancing_over_empty_pages_without_end_fails_retryable() {
    use reckon::plugins::session::MAX_EMPTY_PAGES;
    let (hits, server) = conversions_fake(|cursor| {
        let n: u64 = cursor.parse().unwrap_or(0);
        json!({ "data": [], "next": (n + 1).to_string() })
    });
    let dir = plugin_dir();
    let plugin = load(dir.path(), "example", None).unwrap();
    for iso in BOTH {
        hits.store(0, Ordering::SeqCst);
        let mut o = options(iso, Duration::from_secs(10));
        // Far above the pages the bound allows, so only the bound stops it.
        o.max_requests = u64::from(MAX_EMPTY_PAGES) * 3;
        let mut sink = MemSink::default();
        let e = run(
            &plugin,
            open("net1", &server.base_url, json!({ "page_size": 50 })),
            policy("net1"),
            o,
            &mut sink,
        )
        .await
        .unwrap_err();
        assert_eq!(e.connector, "net1");
        assert_eq!(e.kind, ErrorKind::Upstream, "{iso:?}: {e}");
        assert!(e.retryable, "{iso:?}: {e}");
        assert!(
            e.to_string().contains(&format!(
                "connector `net1`: plugin `example` committed {MAX_EMPTY_PAGES} pages in a row that held no records and moved no watermark (stream `conversions`), and asked for another: the platform says more pages remain but sends none"
            )),
            "{iso:?}: {e}"
        );
        // The first page sets the stream's watermark; the next
        // MAX_EMPTY_PAGES move nothing; the one after is not asked for.
        assert_eq!(hits.load(Ordering::SeqCst), MAX_EMPTY_PAGES + 1, "{iso:?}");
        assert_eq!(sink.pages.len() as u32, MAX_EMPTY_PAGES + 1, "{iso:?}");
        assert_eq!(e.report.pages, u64::from(MAX_EMPTY_PAGES) + 1, "{iso:?}");
        // QA33-C M1: the plugin's own FakeHost test stops it alike, in the
        // same words (`plugin_api::validate::EmptyPages`).
        let fake = plugin_api::testing::FakeHost::handler(|req| {
            let q = req.url.split_once('?').map_or("", |(_, q)| q);
            let cursor = (q.split('&'))
                .find_map(|kv| kv.strip_prefix("cursor="))
                .unwrap_or("");
            let body = if req.url.contains("/v1/reversals") {
                json!({ "data": [], "next": null })
            } else {
                let n: u64 = cursor.parse().unwrap_or(0);
                json!({ "data": [], "next": (n + 1).to_string() })
            };
            plugin_api::testing::Reply::json(200, &body)
        })
        .run::<reckon_plugin_example::Example>(open(
            "net1",
            &server.base_url,
            json!({ "page_size": 50 }),
        ));
        let fake_e = fake.result.unwrap_err();
        assert_eq!(fake_e.message, e.message, "{iso:?}");
        assert_eq!((fake_e.kind, fake_e.retryable), (e.kind, e.retryable));
        assert_eq!(fake.checkpoints.len() as u32, MAX_EMPTY_PAGES + 1);
    }
}

/// QA31-C F2, the other side: a long run of pages in which empty ones
/// are broken by one with a record now and then is read to its end.
#[tokio::test]
async fn empty_pages_broken_by_records_are_read_to_the_end() {
    use reckon::plugins::session::MAX_EMPTY_PAGES;
    let (hits, server) = conversions_fake(|cursor| {
        let n: u32 = cursor.parse().unwrap_or(0);
        let next = (n < MAX_EMPTY_PAGES * 3).then(|| (n + 1).to_string());
        let data = if n.is_multiple_of(MAX_EMPTY_PAGES / 2) {
            json!([{ "id": format!("c{n}"), "currency": "USD", "state": "approved",
                "partner": { "id": "p1" }, "created": "2026-11-02T10:00:00Z",
                "amount": "10.00", "commission": "1.00" }])
        } else {
            json!([])
        };
        json!({ "data": data, "next": next })
    });
    let dir = plugin_dir();
    let plugin = load(dir.path(), "example", None).unwrap();
    let mut sink = MemSink::default();
    let report = run(
        &plugin,
        open("net1", &server.base_url, json!({ "page_size": 50 })),
        policy("net1"),
        options(Isolation::InProcess, Duration::from_secs(10)),
        &mut sink,
    )
    .await
    .unwrap();
    assert_eq!(hits.load(Ordering::SeqCst), MAX_EMPTY_PAGES * 3 + 1);
    assert_eq!(report.new, 7);
}

/// QA31-C F3: a plugin's error quoting a URL with a huge cursor made lines
/// and a `/status` of megabytes. Cut as a log message is, saying so.
#[tokio::test]
async fn a_huge_plugin_error_is_cut_saying_so() {
    use reckon::plugins::plugin_log::MAX_MESSAGE_BYTES;
    let huge = format!("1{}", "x".repeat(300_000));
    let (_, server) = conversions_fake(move |cursor| {
        if cursor.is_empty() {
            json!({ "data": [], "next": huge })
        } else {
            json!({ "data": [], "next": null })
        }
    });
    let dir = plugin_dir();
    let plugin = load(dir.path(), "example", None).unwrap();
    for iso in BOTH {
        let mut sink = MemSink::default();
        let e = run(
            &plugin,
            open("net1", &server.base_url, json!({ "page_size": 50 })),
            policy("net1"),
            options(iso, Duration::from_secs(10)),
            &mut sink,
        )
        .await
        .unwrap_err();
        let shown = e.to_string();
        assert!(
            shown.starts_with("connector `net1`: plugin `example` failed: "),
            "{iso:?}: {}",
            &shown[..200]
        );
        assert!(
            shown.len() < MAX_MESSAGE_BYTES + 200,
            "{iso:?}: {} bytes",
            shown.len()
        );
        assert!(shown.contains("…[cut, "), "{iso:?}: {shown}");
        assert!(shown.ends_with(" bytes]"), "{iso:?}: {shown}");
    }
}

/// QA31-C F6: a right-to-left override in a record id reached the error
/// line raw (`(id "abc<U+202E>0.001 DSU lluf ni diap")` shows as "paid in
/// full USD 100.0"). Escaped as control characters are.
#[tokio::test]
async fn a_text_direction_control_in_a_plugin_error_is_escaped() {
    let (_, server) = conversions_fake(
        |_| json!({ "data": [{ "id": "abc\u{202E}0.001 DSU lluf ni diap", "state": "bogus" }], "next": null }),
    );
    let dir = plugin_dir();
    let plugin = load(dir.path(), "example", None).unwrap();
    for iso in BOTH {
        let mut sink = MemSink::default();
        let e = run(
            &plugin,
            open("net1", &server.base_url, json!({ "page_size": 50 })),
            policy("net1"),
            options(iso, Duration::from_secs(10)),
            &mut sink,
        )
        .await
        .unwrap_err();
        assert!(!e.message.contains('\u{202E}'), "{iso:?}: {e}");
        assert!(
            e.message
                .contains("(id \"abc\\u{202e}0.001 DSU lluf ni diap\")"),
            "{iso:?}: {e}"
        );
    }
}
