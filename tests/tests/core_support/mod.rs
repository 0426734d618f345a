//! Support for the daemon-core end-to-end tests (`core_*.rs`): a minimal
//! loopback ExampleNet (the API the example plugin talks to, see
//! `plugins/example/src/lib.rs`) with deterministic data, and helpers to
//! write configs and run the `reckon` binary.
#![allow(dead_code)]

use axum::extract::{Query, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use axum::{Json, Router};
use serde_json::{json, Value};
use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;

/// The API key the fake accepts.
pub const API_KEY: &str = "test-key-123";

/// Deterministic data: `per_day` conversions created on each day.
#[derive(Debug)]
pub struct FakeData {
    pub per_day: u32,
    pub requests: AtomicU64,
}

fn row(day: chrono::NaiveDate, i: u32) -> Value {
    json!({
        "id": format!("cv-{day}-{i:04}"),
        "order_ref": format!("ord-{day}-{i}"),
        "click": format!("clk{i}"),
        "partner": {"id": format!("p{}", i % 7), "name": format!("Partner {}", i % 7)},
        "type": "sale",
        "created": format!("{day}T{:02}:{:02}:00Z", i % 24, i % 60),
        "amount": format!("{}.{:02}", 10 + i, i % 100),
        "commission": format!("{}.50", 1 + i % 9),
        "currency": "usd",
        "state": if i.is_multiple_of(5) { "approved" } else { "pending" },
    })
}

async fn list(
    State(d): State<Arc<FakeData>>,
    headers: HeaderMap,
    Query(q): Query<HashMap<String, String>>,
    reversals: bool,
) -> Response {
    d.requests.fetch_add(1, Ordering::SeqCst);
    if headers.get("authorization").and_then(|v| v.to_str().ok())
        != Some(&format!("Bearer {API_KEY}"))
    {
        return (StatusCode::UNAUTHORIZED, Json(json!({"error": "bad key"}))).into_response();
    }
    let parse = |k: &str| q.get(k).and_then(|v| v.parse::<chrono::NaiveDate>().ok());
    let (Some(start), Some(end)) = (parse("start"), parse("end")) else {
        return (StatusCode::BAD_REQUEST, Json(json!({"error": "start/end"}))).into_response();
    };
    let limit: usize = q.get("limit").and_then(|v| v.parse().ok()).unwrap_or(100);
    let offset: usize = q.get("cursor").and_then(|v| v.parse().ok()).unwrap_or(0);
    let mut all = Vec::new();
    if !reversals {
        let mut day = start;
        while day <= end {
            for i in 0..d.per_day {
                all.push(row(day, i));
            }
            day += chrono::Duration::days(1);
        }
    }
    let data: Vec<Value> = all.iter().skip(offset).take(limit).cloned().collect();
    let next = (offset + limit < all.len()).then(|| (offset + limit).to_string());
    Json(json!({"data": data, "next": next})).into_response()
}

/// The fake's router.
pub fn router(d: Arc<FakeData>) -> Router {
    Router::new()
        .route("/v1/me", get(|| async { Json(json!({"account": "acme"})) }))
        .route(
            "/v1/conversions",
            get(|s, h, q| async move { list(s, h, q, false).await }),
        )
        .route(
            "/v1/reversals",
            get(|s, h, q| async move { list(s, h, q, true).await }),
        )
        .with_state(d)
}

/// A test directory with plugins installed and a config written.
pub struct Setup {
    pub dir: tempfile::TempDir,
    pub config: PathBuf,
    pub data_dir: PathBuf,
}

/// Writes a config with one example connector pointed at `base_url`.
pub fn setup(base_url: &str, schedule: &str, extra_daemon: &str) -> Setup {
    let dir = tempfile::tempdir().unwrap();
    let plugin_dir = dir.path().join("plugins");
    reckon_tests::install_plugins(&plugin_dir, &["example"]);
    let data_dir = dir.path().join("data");
    let config = dir.path().join("reckon.toml");
    std::fs::write(
        &config,
        format!(
            r#"[daemon]
data_dir = "data"
plugin_dir = "plugins"
timezone = "UTC"
{extra_daemon}

[[connectors]]
id = "examplenet"
plugin = "example"
schedule = "{schedule}"
timezone = "UTC"
lookback_days = 2
isolation = "subprocess"

[connectors.settings]
api_key = {{ secret = "env:RECKON_TEST_EXAMPLE_KEY" }}
page_size = 7
base_url = "{base_url}"
"#
        ),
    )
    .unwrap();
    Setup {
        dir,
        config,
        data_dir,
    }
}

/// A `reckon` command with the test's secret in its environment.
pub fn reckon(config: &Path) -> std::process::Command {
    let mut c = std::process::Command::new(reckon_tests::reckon_bin());
    c.arg("--config").arg(config);
    c.env("RECKON_TEST_EXAMPLE_KEY", API_KEY);
    c.env("RUST_LOG", "warn");
    // The daemon tests fire every second or two, which a config refuses
    // otherwise (ops QA13 OPS-2).
    c.env("RECKON_ALLOW_SUB_MINUTE_SCHEDULES", "1");
    c
}

/// Exports conversions as sorted JSON lines of (key, record) without
/// bookkeeping times.
pub fn export_conversions(config: &Path) -> Vec<String> {
    let out = reckon(config)
        .args([
            "records",
            "export",
            "--kind",
            "conversions",
            "--format",
            "jsonl",
        ])
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "export failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    let mut lines: Vec<String> = String::from_utf8(out.stdout)
        .unwrap()
        .lines()
        .map(|l| {
            let v: Value = serde_json::from_str(l).unwrap();
            format!("{} {}", v["key"], v["record"])
        })
        .collect();
    lines.sort();
    lines
}
