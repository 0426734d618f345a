//! A 90-day backfill of 500 campaigns × 20 ad sets through the real daemon:
//! `reckon sync --from --to` (release build, subprocess plugin host, HTTP over
//! loopback, sled store) against the Meta fake with async report runs and
//! pages of 5000 rows. Target: under 60 s. Needs
//! `cargo build --release -p reckon -p reckon-plugin-meta_ads` first.

use reckon_tests::fakes::google_ads::wire::{Level, Universe};
use reckon_tests::fakes::meta_ads::{router, Config, MetaFake};
use reckon_tests::fakes::server::FakeServer;
use std::process::Command;
use std::time::Instant;

fn main() {
    let config = Config::default();
    let token = config.access_token.clone();
    let fake = MetaFake::new(config, Universe::new(90, 500, 20));
    let (from, to) = ("2026-08-01", "2026-10-29");
    let truth = fake
        .truth(Level::AdGroup, from.parse().unwrap(), to.parse().unwrap())
        .len();
    let server = FakeServer::start(router(fake.clone()));
    let dir = tempfile::tempdir().unwrap();
    reckon_tests::install_plugins(&dir.path().join("plugins"), &["meta_ads"]);
    let cfg = dir.path().join("reckon.toml");
    std::fs::write(
        &cfg,
        format!(
            r#"[daemon]
data_dir = "data"
plugin_dir = "plugins"

[[connectors]]
id = "meta_bench"
plugin = "meta_ads"
schedule = "0 6 * * *"
timezone = "America/Los_Angeles"
timeout_secs = 120

[connectors.settings]
ad_account_id = "4242"
access_token = {{ secret = "env:META_BENCH_TOKEN" }}
base_url = "{}"
report_mode = "async"
days_per_request = 7
page_size = 5000
poll_interval_secs = 1
"#,
            server.base_url
        ),
    )
    .unwrap();
    let t = Instant::now();
    let out = Command::new(reckon_tests::reckon_bin())
        .arg("--config")
        .arg(&cfg)
        .args(["sync", "meta_bench", "--from", from, "--to", to])
        .env("META_BENCH_TOKEN", &token)
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
            "meta_bench",
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
        "meta_ads backfill through the daemon: 90 days × 500 campaigns × 20 ad sets = {stored} rows in {ms} ms ({} rows/s, {} requests, {} report runs)",
        stored as u128 * 1000 / ms,
        fake.requests(),
        fake.jobs_created()
    );
}
