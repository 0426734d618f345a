//! The HTTP executor's auth injection and redaction against loopback fakes:
//! basic, header, query, bearer, OAuth2 refresh token (with caching) and
//! `All[...]`; plus a whole session with secrets whose every log line is
//! captured and searched for the secret values.

use axum::extract::{Form, Query, State};
use axum::http::HeaderMap;
use axum::routing::{get, post};
use axum::{Json, Router};
use plugin_api::protocol::{AuthSpec, Event, HttpFailureKind, HttpRequest};
use reckon::plugins::http::HttpExecutor;
use reckon::plugins::{HttpPolicy, Secret, SessionTuning};
use reckon_tests::fakes::server::FakeServer;
use serde_json::{json, Value};
use std::collections::{BTreeMap, HashMap};
use std::sync::atomic::{AtomicU32, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

#[derive(Default)]
struct Seen {
    token_calls: AtomicU32,
    requests: Mutex<Vec<(HeaderMap, HashMap<String, String>)>>,
}

fn echo_server() -> (Arc<Seen>, FakeServer) {
    let seen = Arc::new(Seen::default());
    let app = Router::new()
        .route(
            "/data",
            get(
                |State(s): State<Arc<Seen>>,
                 headers: HeaderMap,
                 Query(q): Query<HashMap<String, String>>| async move {
                    s.requests.lock().unwrap().push((headers, q));
                    Json(json!({ "ok": true }))
                },
            ),
        )
        .route(
            "/oauth/token",
            post(
                |State(s): State<Arc<Seen>>, Form(f): Form<HashMap<String, String>>| async move {
                    s.token_calls.fetch_add(1, Ordering::SeqCst);
                    if f.get("grant_type").map(String::as_str) != Some("refresh_token")
                        || f.get("refresh_token").map(String::as_str) != Some("rt-SECRET-1")
                        || f.get("client_secret").map(String::as_str) != Some("cs-SECRET-2")
                    {
                        return (
                            axum::http::StatusCode::BAD_REQUEST,
                            Json(json!({ "error": "invalid_grant" })),
                        );
                    }
                    (
                        axum::http::StatusCode::OK,
                        Json(json!({ "access_token": "at-SECRET-3", "expires_in": 3600 })),
                    )
                },
            ),
        )
        .with_state(seen.clone());
    (seen, FakeServer::start(app))
}

fn secrets(pairs: &[(&str, &str)]) -> BTreeMap<String, Secret> {
    pairs
        .iter()
        .map(|(k, v)| ((*k).to_owned(), Secret((*v).to_owned())))
        .collect()
}

fn executor(
    connector: &str,
    base_url: &str,
    auth: AuthSpec,
    secrets: BTreeMap<String, Secret>,
    settings: Value,
) -> HttpExecutor {
    let mut policy = HttpPolicy::new(connector);
    policy.timeout = Duration::from_secs(5);
    policy.secrets = secrets;
    HttpExecutor::new(
        policy,
        Some(auth),
        &[],
        base_url,
        settings,
        SessionTuning::default(),
    )
}

fn get_req(base: &str, path: &str) -> HttpRequest {
    HttpRequest {
        id: 1,
        method: "GET".into(),
        url: format!("{base}{path}"),
        headers: BTreeMap::new(),
        body: None,
        idempotent: true,
        label: "test".into(),
    }
}

fn status(ev: &(Event, Vec<u8>)) -> u16 {
    match &ev.0 {
        Event::HttpResponse(h) => h.status,
        other => panic!("expected a response, got {other:?}"),
    }
}

#[tokio::test]
async fn basic_header_and_query_auth_are_injected_by_the_host() {
    let (seen, server) = echo_server();
    let base = server.base_url.clone();
    let mut basic = executor(
        "aff_basic",
        &base,
        AuthSpec::Basic {
            username: "account_sid".into(),
            password: "auth_token".into(),
        },
        secrets(&[("auth_token", "tok-SECRET")]),
        json!({ "account_sid": "AC123" }),
    );
    assert_eq!(
        status(&basic.execute(&get_req(&base, "/data")).await.unwrap()),
        200
    );
    let mut header = executor(
        "aff_header",
        &base,
        AuthSpec::Header {
            name: "X-Api-Key".into(),
            value: "api_key".into(),
        },
        secrets(&[("api_key", "hdr-SECRET")]),
        json!({}),
    );
    assert_eq!(
        status(&header.execute(&get_req(&base, "/data")).await.unwrap()),
        200
    );
    let mut query = executor(
        "aff_query",
        &base,
        AuthSpec::Query {
            name: "api_key".into(),
            value: "api_key".into(),
        },
        secrets(&[("api_key", "q SECRET&=")]),
        json!({}),
    );
    assert_eq!(
        status(
            &query
                .execute(&get_req(&base, "/data?page=2"))
                .await
                .unwrap()
        ),
        200
    );
    let reqs = seen.requests.lock().unwrap();
    use base64::Engine;
    let expected = base64::engine::general_purpose::STANDARD.encode("AC123:tok-SECRET");
    assert_eq!(
        reqs[0].0.get("authorization").unwrap(),
        &format!("Basic {expected}")
    );
    assert_eq!(reqs[1].0.get("x-api-key").unwrap(), "hdr-SECRET");
    assert_eq!(reqs[2].1.get("api_key").unwrap(), "q SECRET&=");
    assert_eq!(reqs[2].1.get("page").unwrap(), "2");
}

#[tokio::test]
async fn query_auth_secrets_are_masked_in_failure_messages() {
    // Nothing listens on this port: the connect error must not show the key.
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let base = format!("http://{}", listener.local_addr().unwrap());
    drop(listener);
    let mut policy = HttpPolicy::new("aff_query");
    policy.max_retries = 0;
    policy.secrets = secrets(&[("api_key", "QUERY-SECRET-9")]);
    let mut exec = HttpExecutor::new(
        policy,
        Some(AuthSpec::Query {
            name: "key".into(),
            value: "api_key".into(),
        }),
        &[],
        &base,
        json!({}),
        SessionTuning::default(),
    );
    let (ev, _) = exec.execute(&get_req(&base, "/data")).await.unwrap();
    match ev {
        Event::HttpFailure { kind, message, .. } => {
            assert_eq!(kind, HttpFailureKind::Connect, "{message}");
            assert!(!message.contains("QUERY-SECRET-9"), "{message}");
        }
        other => panic!("expected a failure, got {other:?}"),
    }
}

#[tokio::test]
async fn oauth2_refresh_token_is_exchanged_once_and_cached_alongside_a_header() {
    let (seen, server) = echo_server();
    let base = server.base_url.clone();
    let auth = AuthSpec::All {
        schemes: vec![
            AuthSpec::Oauth2RefreshToken {
                token_url: "/oauth/token".into(),
                client_id: "client_id".into(),
                client_secret: "client_secret".into(),
                refresh_token: "refresh_token".into(),
            },
            AuthSpec::Header {
                name: "developer-token".into(),
                value: "developer_token".into(),
            },
        ],
    };
    let mut exec = executor(
        "gads_oauth_test",
        &base,
        auth,
        secrets(&[
            ("client_secret", "cs-SECRET-2"),
            ("refresh_token", "rt-SECRET-1"),
            ("developer_token", "dev-SECRET-4"),
        ]),
        json!({ "client_id": "cid" }),
    );
    for _ in 0..3 {
        assert_eq!(
            status(&exec.execute(&get_req(&base, "/data")).await.unwrap()),
            200
        );
    }
    assert_eq!(seen.token_calls.load(Ordering::SeqCst), 1);
    let reqs = seen.requests.lock().unwrap();
    assert_eq!(reqs.len(), 3);
    for (h, _) in reqs.iter() {
        assert_eq!(h.get("authorization").unwrap(), "Bearer at-SECRET-3");
        assert_eq!(h.get("developer-token").unwrap(), "dev-SECRET-4");
    }
    // The access token is masked like the configured secrets.
    assert_eq!(exec.redactor().redact("x at-SECRET-3 y"), "x *** y");
    assert_eq!(exec.stats.requests, 4);
}

#[tokio::test]
async fn a_refused_refresh_token_reaches_the_plugin_as_a_401() {
    let (_seen, server) = echo_server();
    let base = server.base_url.clone();
    let mut exec = executor(
        "gads_bad_refresh",
        &base,
        AuthSpec::Oauth2RefreshToken {
            token_url: format!("{base}/oauth/token"),
            client_id: "client_id".into(),
            client_secret: "client_secret".into(),
            refresh_token: "refresh_token".into(),
        },
        secrets(&[
            ("client_id", "cid"),
            ("client_secret", "cs-SECRET-2"),
            ("refresh_token", "rt-WRONG"),
        ]),
        json!({}),
    );
    let ev = exec.execute(&get_req(&base, "/data")).await.unwrap();
    assert_eq!(status(&ev), 401);
    let body = String::from_utf8(ev.1).unwrap();
    assert!(body.contains("OAuth2 token refresh"), "{body}");
    assert!(body.contains("invalid_grant"), "{body}");
}

/// QA6 F5: a token endpoint answering 500 (after the retries), an HTML
/// page with 200, or a redirect was reported to the plugin as a 401
/// ("refused the credentials") and so not retried. Now it is a retryable
/// failure with the real status; a 400 `invalid_grant` stays a 401 (above).
#[tokio::test]
async fn a_failing_token_endpoint_is_a_retryable_failure_with_its_real_status_not_a_401() {
    let calls = Arc::new(AtomicU32::new(0));
    let app = Router::new()
        .route(
            "/token500",
            post(|State(c): State<Arc<AtomicU32>>| async move {
                c.fetch_add(1, Ordering::SeqCst);
                (axum::http::StatusCode::INTERNAL_SERVER_ERROR, "oops")
            }),
        )
        .route(
            "/token-html",
            post(|| async {
                (
                    [(axum::http::header::CONTENT_TYPE, "text/html")],
                    "<html><body>Down for maintenance</body></html>",
                )
            }),
        )
        .route(
            "/token302",
            post(|| async {
                (
                    axum::http::StatusCode::FOUND,
                    [(axum::http::header::LOCATION, "/elsewhere")],
                    "",
                )
            }),
        )
        .with_state(calls.clone());
    let server = FakeServer::start(app);
    let base = server.base_url.clone();
    for (path, want) in [
        ("/token500", "failed with HTTP 500: oops"),
        ("/token-html", "(HTTP 200) is malformed"),
        ("/token302", "failed with HTTP 302"),
    ] {
        let mut policy = HttpPolicy::new(format!("gads_token_down{path}").replace('/', "_"));
        policy.timeout = Duration::from_secs(5);
        policy.max_retries = 1;
        policy.secrets = secrets(&[
            ("client_id", "cid"),
            ("client_secret", "cs-SECRET-2"),
            ("refresh_token", "rt-SECRET-1"),
        ]);
        let tuning = SessionTuning {
            backoff_base: Duration::from_millis(1),
            backoff_cap: Duration::from_millis(2),
            ..SessionTuning::default()
        };
        let mut exec = HttpExecutor::new(
            policy,
            Some(AuthSpec::Oauth2RefreshToken {
                token_url: path.into(),
                client_id: "client_id".into(),
                client_secret: "client_secret".into(),
                refresh_token: "refresh_token".into(),
            }),
            &[],
            &base,
            json!({}),
            tuning,
        );
        let ev = exec.execute(&get_req(&base, "/data")).await.unwrap();
        match &ev.0 {
            Event::HttpFailure { kind, message, .. } => {
                assert_eq!(*kind, HttpFailureKind::Other, "{path}: {message}");
                assert!(message.contains(want), "{path}: {message}");
                assert!(
                    message.contains("not a refusal of the credentials"),
                    "{path}: {message}"
                );
                assert!(!message.contains("401"), "{path}: {message}");
                assert!(!message.contains("SECRET"), "{path}: {message}");
            }
            other => panic!("{path}: expected a failure, got {other:?}"),
        }
    }
    // The 500 was retried (max_retries = 1) before giving up. The SDK makes
    // an `HttpFailure` of kind `Other` a retryable transport error, so the
    // daemon retries the run; a 401 becomes the plugin's `Auth` error.
    assert_eq!(calls.load(Ordering::SeqCst), 2);
}

// ---------------------------------------------------------------------------
// No secret in any log line
// ---------------------------------------------------------------------------

use reckon_tests::CapturedLogs as Captured;

#[test]
fn no_secret_appears_in_any_log_line_of_a_run() {
    use reckon::plugins::{load, run_session_with, Isolation, SessionOptions, SessionSink};
    use reckon_tests::fakes::example::{router, ExampleApi, ExampleData};

    const KEY: &str = "sk_live_NEVER_LOG_ME_31337";
    let captured = Captured::default();
    let writer = captured.clone();
    let subscriber = tracing_subscriber::fmt()
        .with_max_level(tracing::Level::TRACE)
        .with_ansi(false)
        .with_writer(move || writer.clone())
        .finish();
    let _guard = tracing::subscriber::set_default(subscriber);

    let dir = tempfile::tempdir().unwrap();
    reckon_tests::install_plugins(dir.path(), &["example"]);
    let plugin = load(dir.path(), "example", None).unwrap();
    let from = chrono::NaiveDate::from_ymd_opt(2026, 11, 1).unwrap();
    let to = chrono::NaiveDate::from_ymd_opt(2026, 11, 3).unwrap();
    let api = ExampleApi::new(ExampleData::generate(3, 30, from, to), KEY);
    // One throttle and one 500 so retry paths log too.
    api.faults.throttle.store(1, Ordering::SeqCst);
    api.faults.fail_500.store(1, Ordering::SeqCst);
    let server = FakeServer::start(router(api.clone()));

    struct Discard;
    impl SessionSink for Discard {
        fn commit(
            &mut self,
            records: Vec<plugin_api::Record>,
            _: plugin_api::Checkpoint,
        ) -> Result<reckon::store::CommitStats, String> {
            Ok(reckon::store::CommitStats {
                new: records.len() as u64,
                ..Default::default()
            })
        }
    }

    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    let mut errors = Vec::new();
    for (iso, key) in [
        (Isolation::InProcess, KEY),
        (Isolation::Subprocess, KEY),
        // A wrong key that the fake echoes back in its 401 body.
        (Isolation::Subprocess, "sk_wrong_ALSO_SECRET_555"),
    ] {
        let mut policy = HttpPolicy::new("net_secret");
        policy.secrets = secrets(&[("api_key", key)]);
        let open = plugin_api::testing::open_read(
            "net_secret",
            &server.base_url,
            json!({ "page_size": 7 }),
            plugin_api::Window { from, to },
        );
        let tuning = SessionTuning {
            backoff_base: Duration::from_millis(5),
            ..SessionTuning::default()
        };
        let r = rt.block_on(run_session_with(
            plugin.clone(),
            open,
            policy,
            SessionOptions {
                isolation: iso,
                step_deadline: Duration::from_secs(10),
                host_exe: reckon_tests::reckon_bin(),
                max_requests: 100_000,
            },
            &mut Discard,
            tuning,
        ));
        if let Err(e) = r {
            errors.push(e.to_string());
        }
    }
    drop(server);
    let logs = captured.text();
    assert!(logs.contains("session finished"), "{logs}");
    assert!(
        logs.contains("connector=\"net_secret\"") || logs.contains("connector=net_secret"),
        "{logs}"
    );
    assert_eq!(errors.len(), 1, "{errors:?}");
    for secret in [KEY, "sk_wrong_ALSO_SECRET_555"] {
        assert!(!logs.contains(secret), "secret found in logs:\n{logs}");
        assert!(!errors.iter().any(|e| e.contains(secret)), "{errors:?}");
    }
}

/// QA (ops #11): retries after a 5xx or a connection error were silent (a
/// run sat 17-20 s per request with no log line); 429 waits were logged.
/// Now each retry logs one line: attempt, wait and cause.
#[test]
fn each_retry_after_a_server_error_or_a_dead_port_is_logged() {
    let (captured, _guard) = Captured::at(tracing::Level::INFO);

    // Two 500s, then the answer.
    let failures = Arc::new(AtomicU32::new(2));
    let app = Router::new()
        .route(
            "/data",
            get(|State(left): State<Arc<AtomicU32>>| async move {
                let failing = left
                    .fetch_update(Ordering::SeqCst, Ordering::SeqCst, |n| n.checked_sub(1))
                    .is_ok();
                if failing {
                    (axum::http::StatusCode::INTERNAL_SERVER_ERROR, "oops\n")
                } else {
                    (axum::http::StatusCode::OK, "{}")
                }
            }),
        )
        .with_state(failures);
    let server = FakeServer::start(app);
    let tuning = SessionTuning {
        backoff_base: Duration::from_millis(1),
        backoff_cap: Duration::from_millis(4),
        ..SessionTuning::default()
    };
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    let base = server.base_url.clone();
    let mut policy = HttpPolicy::new("flaky");
    policy.timeout = Duration::from_secs(5);
    let mut ok = HttpExecutor::new(policy, None, &[], &base, json!({}), tuning.clone());
    let answer = rt.block_on(ok.execute(&get_req(&base, "/data"))).unwrap();
    assert_eq!(status(&answer), 200);

    // Nothing listens: every attempt is refused, 5 retries.
    let dead = format!("http://127.0.0.1:{}", reckon_tests::free_port());
    let mut policy = HttpPolicy::new("dead");
    policy.timeout = Duration::from_secs(5);
    let max = policy.max_retries;
    let mut refused = HttpExecutor::new(policy, None, &[], &dead, json!({}), tuning);
    let answer = rt
        .block_on(refused.execute(&get_req(&dead, "/data")))
        .unwrap();
    assert!(
        matches!(
            answer.0,
            Event::HttpFailure {
                kind: HttpFailureKind::Connect,
                ..
            }
        ),
        "{answer:?}"
    );

    let text = captured.text();
    let retries: Vec<Value> = text
        .lines()
        .map(|l| serde_json::from_str::<Value>(l).unwrap())
        .filter(|l| l["fields"]["message"] == "request failed; retrying")
        .collect();
    let of = |connector: &str| -> Vec<&Value> {
        retries
            .iter()
            .filter(|l| l["fields"]["connector"] == connector)
            .collect()
    };
    let flaky = of("flaky");
    assert_eq!(flaky.len(), 2, "{text}");
    for (n, l) in flaky.iter().enumerate() {
        assert_eq!(l["level"], "WARN", "{l}");
        assert_eq!(l["fields"]["attempt"], n as u64 + 1, "{l}");
        assert_eq!(l["fields"]["cause"], "HTTP 500", "{l}");
        assert!(l["fields"]["wait_ms"].as_u64().is_some(), "{l}");
    }
    let dead = of("dead");
    assert_eq!(dead.len(), max as usize, "{text}");
    assert!(
        dead.iter().all(|l| l["fields"]["cause"]
            .as_str()
            .is_some_and(|c| c.contains("failed"))),
        "{text}"
    );
}

/// QA: a 429 asking for more than the longest wait failed the request with
/// a bare "rate limited (HTTP 429)" and no word of the Retry-After or the cap.
#[test]
fn a_429_asking_to_wait_longer_than_a_request_waits_is_logged_and_handed_over() {
    let (captured, _guard) = Captured::at(tracing::Level::INFO);
    let app = Router::new().route(
        "/data",
        get(|| async {
            (
                axum::http::StatusCode::TOO_MANY_REQUESTS,
                [("retry-after", "3600")],
                "slow down",
            )
        }),
    );
    let server = FakeServer::start(app);
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    let base = server.base_url.clone();
    let mut exec = HttpExecutor::new(
        HttpPolicy::new("busy"),
        None,
        &[],
        &base,
        json!({}),
        SessionTuning::default(),
    );
    let answer = rt.block_on(exec.execute(&get_req(&base, "/data"))).unwrap();
    assert_eq!(status(&answer), 429);
    let text = captured.text();
    let line: Value = text
        .lines()
        .map(|l| serde_json::from_str::<Value>(l).unwrap())
        .find(|l| {
            l["fields"]["message"].as_str().is_some_and(|m| {
                m.starts_with("throttled (HTTP 429) for longer than a request waits")
            })
        })
        .unwrap_or_else(|| panic!("no warning in {text}"));
    assert_eq!(line["level"], "WARN");
    assert_eq!(line["fields"]["wait_secs"], 3600);
    assert_eq!(line["fields"]["max_wait_secs"], 900);
}

/// QA re-test: a 429 with `Retry-After: 0` was retried for ever (the retry
/// count only moved on a non-zero wait): 1.2 million requests in 10 min.
#[test]
fn a_429_with_retry_after_0_counts_against_the_retries() {
    let (captured, _guard) = Captured::at(tracing::Level::INFO);
    let hits = Arc::new(AtomicU32::new(0));
    let app = Router::new()
        .route(
            "/data",
            get(|State(hits): State<Arc<AtomicU32>>| async move {
                hits.fetch_add(1, Ordering::SeqCst);
                (
                    axum::http::StatusCode::TOO_MANY_REQUESTS,
                    [("retry-after", "0")],
                    "slow down",
                )
            }),
        )
        .with_state(hits.clone());
    let server = FakeServer::start(app);
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    let base = server.base_url.clone();
    let policy = HttpPolicy::new("zero");
    let max = policy.max_retries;
    let mut exec = HttpExecutor::new(
        policy,
        None,
        &[],
        &base,
        json!({}),
        SessionTuning::default(),
    );
    let answer = rt.block_on(exec.execute(&get_req(&base, "/data"))).unwrap();
    assert_eq!(status(&answer), 429);
    assert_eq!(hits.load(Ordering::SeqCst), max + 1);
    // The 429 handed over is logged with the retries and waits before it
    // (QA20 R20-9: the plugin's error said nothing of them).
    let text = captured.text();
    let line: Value = text
        .lines()
        .map(|l| serde_json::from_str::<Value>(l).unwrap())
        .find(|l| {
            l["fields"]["message"]
                .as_str()
                .is_some_and(|m| m.starts_with("still throttled (HTTP 429) after every retry"))
        })
        .unwrap_or_else(|| panic!("no warning in {text}"));
    assert_eq!(line["level"], "WARN");
    assert_eq!(line["fields"]["retries"], max);
    assert_eq!(line["fields"]["waited_secs"], 0);
}

/// QA24 F3: a token endpoint answering `expires_in` near u64::MAX made the
/// host's cache deadline overflow (`Instant + Duration` panicked, in the
/// daemon's worker or the CLI). The lifetime is capped at a day.
#[tokio::test]
async fn an_absurd_token_lifetime_is_capped_not_a_panic() {
    let app = Router::new()
        .route(
            "/token",
            post(|| async { Json(json!({ "access_token": "at-HUGE-1", "expires_in": u64::MAX })) }),
        )
        .route("/data", get(|| async { Json(json!({ "ok": true })) }));
    let server = FakeServer::start(app);
    let base = server.base_url.clone();
    let mut exec = executor(
        "oauth_huge_life_test",
        &base,
        AuthSpec::Oauth2RefreshToken {
            token_url: "/token".into(),
            client_id: "client_id".into(),
            client_secret: "client_secret".into(),
            refresh_token: "refresh_token".into(),
        },
        secrets(&[("client_secret", "cs-1"), ("refresh_token", "rt-1")]),
        json!({ "client_id": "cid" }),
    );
    for _ in 0..2 {
        assert_eq!(
            status(&exec.execute(&get_req(&base, "/data")).await.unwrap()),
            200
        );
    }
}
