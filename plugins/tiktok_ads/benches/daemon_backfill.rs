//! A 90-day backfill of 500 campaigns × 20 ad groups through the real daemon:
//! `reckon sync --from --to` (release build, subprocess plugin host, HTTP over
//! loopback, sled store) against the TikTok fake: 30-day reports in pages of
//! 1000 rows. Target: under 60 s. Needs
//! `cargo build --release -p reckon -p reckon-plugin-tiktok_ads` first.

use reckon_tests::fakes::google_ads::wire::{Level, Universe};
use reckon_tests::fakes::server::FakeServer;
use reckon_tests::fakes::tiktok_ads::{router, Config, TiktokFake};
use std::process::Command;
use std::time::Instant;

fn main() {
    let config = Config::default();
    let (token, advertiser) = (config.access_token.clone(), config.advertiser_id.clone());
    let fake = TiktokFake::new(config, Universe::new(90, 500, 20));
    let (from, to) = ("2026-08-01", "2026-10-29");
    let truth = fake
        .truth(Level::AdGroup, from.parse().unwrap(), to.parse().unwrap())
        .len();
    let server = FakeServer::start(router(fake.clone()));
    let dir = tempfile::tempdir().unwrap();
    reckon_tests::install_plugins(&dir.path().join("plugins"), &["tiktok_ads"]);
    let cfg = dir.path().join("reckon.toml");
    std::fs::write(
        &cfg,
        format!(
            r#"[daemon]
data_dir = "data"
plugin_dir = "plugins"

[[connectors]]
id = "tiktok_bench"
plugin = "tiktok_ads"
schedule = "0 6 * * *"
timezone = "America/New_York"
timeout_secs = 120

[connectors.settings]
advertiser_id = "{advertiser}"
access_token = {{ secret = "env:TIKTOK_BENCH_TOKEN" }}
base_url = "{}"
"#,
            server.base_url
        ),
    )
    .unwrap();
    let t = Instant::now();
    let out = Command::new(reckon_tests::reckon_bin())
        .arg("--config")
        .arg(&cfg)
        .args(["sync", "tiktok_bench", "--from", from, "--to", to])
        .env("TIKTOK_BENCH_TOKEN", &token)
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
            "tiktok_bench",
        ])
        .output()
        .unwrap();
    let stored = export.stdout.iter().filter(|b| **b == b'\n').count();
    assert_eq!(
        stored,
        truth,
        "stored rows differ from the fake's truth; sync log tail: {}",
        String::from_utf8_lossy(&out.stderr)
            .lines()
            .rev()
            .take(8)
            .collect::<Vec<_>>()
            .join("\n")
    );
    println!(
        "tiktok_ads backfill through the daemon: 90 days × 500 campaigns × 20 ad groups = {stored} rows in {ms} ms ({} rows/s, {} report requests)",
        stored as u128 * 1000 / ms,
        fake.report_requests()
    );
}
