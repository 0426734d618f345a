//! A 90-day backfill of 500 campaigns × 20 ad groups through the real daemon:
//! `reckon sync --from --to` (release build, subprocess plugin host, OAuth2
//! through the fake's token endpoint via `settings.token_url`, HTTP over
//! loopback, sled store) against the Google Ads fake. Target: under 60 s.
//! Needs `cargo build --release -p reckon -p reckon-plugin-google_ads` first.

use reckon_tests::fakes::google_ads::wire::{Level, Universe};
use reckon_tests::fakes::google_ads::{router, Config, GoogleFake};
use reckon_tests::fakes::server::FakeServer;
use std::process::Command;
use std::time::Instant;

fn main() {
    let config = Config::default();
    let creds = config.credentials.clone();
    let customer = config.customer_id.clone();
    let fake = GoogleFake::new(config, Universe::new(90, 500, 20));
    let (from, to) = ("2026-08-01", "2026-10-29");
    let truth = fake
        .truth(Level::AdGroup, from.parse().unwrap(), to.parse().unwrap())
        .len();
    let server = FakeServer::start(router(fake.clone()));
    let dir = tempfile::tempdir().unwrap();
    reckon_tests::install_plugins(&dir.path().join("plugins"), &["google_ads"]);
    let cfg = dir.path().join("reckon.toml");
    std::fs::write(
        &cfg,
        format!(
            r#"[daemon]
data_dir = "data"
plugin_dir = "plugins"

[[connectors]]
id = "google_bench"
plugin = "google_ads"
schedule = "0 6 * * *"
timezone = "Europe/Berlin"
timeout_secs = 120

[connectors.settings]
base_url = "{url}"
token_url = "{url}/token"
customer_id = "{customer}"
developer_token = {{ secret = "env:GB_DEV" }}
client_id = {{ secret = "env:GB_ID" }}
client_secret = {{ secret = "env:GB_SECRET" }}
refresh_token = {{ secret = "env:GB_REFRESH" }}
level = "ad_group"
days_per_request = 7
"#,
            url = server.base_url
        ),
    )
    .unwrap();
    let t = Instant::now();
    let out = Command::new(reckon_tests::reckon_bin())
        .arg("--config")
        .arg(&cfg)
        .args(["sync", "google_bench", "--from", from, "--to", to])
        .env("GB_DEV", &creds.developer_token)
        .env("GB_ID", &creds.client_id)
        .env("GB_SECRET", &creds.client_secret)
        .env("GB_REFRESH", &creds.refresh_token)
        .output()
        .unwrap();
    let ms = t.elapsed().as_millis().max(1);
    assert!(
        out.status.success(),
        "sync failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    let export = Command::new(reckon_tests::reckon_bin())
        .arg("--config")
        .arg(&cfg)
        .args([
            "records",
            "export",
            "--kind",
            "spend",
            "--source",
            "google_bench",
        ])
        .output()
        .unwrap();
    let stored = export.stdout.iter().filter(|b| **b == b'\n').count();
    assert_eq!(stored, truth, "stored rows differ from the fake's truth");
    println!(
        "google_ads backfill through the daemon: 90 days × 500 campaigns × 20 ad groups = {stored} rows in {ms} ms ({} rows/s, {} data requests)",
        stored as u128 * 1000 / ms,
        fake.data_requests()
    );
}
