//! QA-10 M2, end to end: a connector whose platform answers `401` and
//! echoes the request (its `Authorization` header, and the decoded
//! credential JSON-escaped as Python writes it). The plugin cuts the body
//! for its error; the daemon must have masked it whole before: neither the
//! Basic form straddling the cut nor the JSON-escaped secret may show.

use axum::http::{HeaderMap, StatusCode};
use axum::Router;
use base64::Engine;
use reckon::plugins::{
    load, run_session_with, HttpPolicy, Isolation, Secret, SessionOptions, SessionSink,
    SessionTuning,
};
use reckon_tests::fakes::server::FakeServer;
use serde_json::json;
use std::time::Duration;

const SID: &str = "IRdemoSID";
const TOKEN: &str = "p@ss w/rd+=&?#%x é\"q";

/// `s` as a JSON string body with every non-ASCII character as `\uXXXX`
/// (Python's `json.dumps` default), without the quotes.
fn python_json(s: &str) -> String {
    let serde = serde_json::to_string(s).unwrap();
    let mut out = String::new();
    for c in serde[1..serde.len() - 1].chars() {
        if c.is_ascii() {
            out.push(c);
        } else {
            for u in c.encode_utf16(&mut [0; 2]) {
                out.push_str(&format!("\\u{u:04x}"));
            }
        }
    }
    out
}

/// The body: the JSON-escaped token early, then padding so that the plugin's
/// cut (Impact keeps the first 300 characters) falls inside the echoed
/// Basic credential.
async fn echo(headers: HeaderMap) -> (StatusCode, String) {
    let auth = headers
        .get("authorization")
        .and_then(|v| v.to_str().ok())
        .unwrap_or_default()
        .to_owned();
    let head = format!(r#"{{"decoded":"{}","pad":""#, python_json(TOKEN));
    let mid = r#"","authorization":"Basic "#;
    let pad = "x".repeat(300 - head.chars().count() - mid.len() - 10);
    let basic = auth.strip_prefix("Basic ").unwrap_or(&auth);
    let body = format!(r#"{head}{pad}{mid}{basic}"}}"#);
    (StatusCode::UNAUTHORIZED, body)
}

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

/// True if `text` shows 4 or more consecutive characters of `secret`.
fn shows_part(text: &str, secret: &str) -> Option<String> {
    let c: Vec<char> = secret.chars().collect();
    c.windows(4)
        .map(|w| w.iter().collect::<String>())
        .find(|w| text.contains(w.as_str()))
}

/// The error of an Impact session against `server`, with `token` as its
/// secret.
fn session_error(server: &FakeServer, token: &str) -> String {
    let dir = tempfile::tempdir().unwrap();
    reckon_tests::install_plugins(dir.path(), &["impact"]);
    let plugin = load(dir.path(), "impact", None).unwrap();
    let mut policy = HttpPolicy::new("impact_echo");
    policy.secrets = [("auth_token".to_owned(), Secret(token.to_owned()))].into();
    let from = chrono::NaiveDate::from_ymd_opt(2026, 11, 1).unwrap();
    let open = plugin_api::testing::open_read(
        "impact_echo",
        &server.base_url,
        json!({ "account_sid": SID, "campaign_ids": [1000], "page_size": 2000 }),
        plugin_api::Window { from, to: from },
    );
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    rt.block_on(run_session_with(
        plugin,
        open,
        policy,
        SessionOptions {
            isolation: Isolation::InProcess,
            step_deadline: Duration::from_secs(10),
            host_exe: reckon_tests::reckon_bin(),
            max_requests: 100,
        },
        &mut Discard,
        SessionTuning::default(),
    ))
    .expect_err("the session fails")
    .to_string()
}

#[test]
fn an_echoed_credential_is_masked_before_the_plugin_cuts_it() {
    let basic = base64::engine::general_purpose::STANDARD.encode(format!("{SID}:{TOKEN}"));
    let server = FakeServer::start(Router::new().fallback(echo));
    let err = session_error(&server, TOKEN);
    assert!(err.contains("HTTP 401"), "{err}");
    assert!(err.contains(r#""decoded":"***""#), "{err}");
    assert!(err.contains("\"authorization\":\"Basic ***"), "{err}");
    // The plain token has a 4-character run `ss w`; the Basic form's first
    // characters encode the SID (not a secret), so only its secret part is
    // looked for.
    for (what, secret) in [
        ("token", TOKEN.to_owned()),
        ("JSON-escaped token", python_json(TOKEN)),
        ("Basic credential", basic[16..].to_owned()),
    ] {
        assert_eq!(shows_part(&err, &secret), None, "{what} shown: {err}");
    }
}

/// A `200` that is not JSON (a login page echoing the request's token) is
/// data, not masked before the plugin: Impact quotes its first 120
/// characters in its error, and that cut falls inside the token. What the
/// cut left of it (12 of its 24 characters) was shown.
#[test]
fn a_credential_cut_short_in_a_2xx_body_the_plugin_quotes_is_masked() {
    const LONG: &str = "tok_9f8e7d6c5b4a32109876";
    let server = FakeServer::start(Router::new().fallback(|| async {
        let head = "<html><body>Session expired. Sign in again; your token ";
        let pad = "x".repeat(120 - head.len() - 12 - 1);
        (
            StatusCode::OK,
            format!("{head}{pad} {LONG} was not accepted.</body></html>"),
        )
    }));
    let err = session_error(&server, LONG);
    assert!(err.contains("the answer is not JSON"), "{err}");
    assert!(err.contains(" ***"), "{err}");
    assert_eq!(shows_part(&err, &LONG[..12]), None, "{err}");
}
