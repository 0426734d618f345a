//! A 90-day backfill of 500 campaigns × 20 ad groups through the real daemon:
//! `reckon sync --from --to` (release build, subprocess plugin host, HTTP over
//! loopback, sled store) against the TikTok fake: 30-day reports in pages of
//! 1000 rows. Target: under 60 s. Needs
//! `cargo build --release -p reckon -p reckon-plugin-tiktok_ads` first.

use reckon_tests::fakes::google_ads::wire::{Level, Universe};
use reckon_tests::fakes::server::FakeServer;
use reckon_tests::fakes::tiktok_ads::{router, Config, TiktokFake};

fn main() {
    let config = Config::default();
    let (token, advertiser) = (config.access_token.clone(), config.advertiser_id.clone());
    let fake = TiktokFake::new(config, Universe::new(90, 500, 20));
    let (from, to) = ("2026-08-01", "2026-10-29");
    let truth = fake
        .truth(Level::AdGroup, from.parse().unwrap(), to.parse().unwrap())
        .len();
    let server = FakeServer::start(router(fake.clone()));
    let settings = format!(
        r#"advertiser_id = "{advertiser}"
access_token = {{ secret = "env:TIKTOK_BENCH_TOKEN" }}
base_url = "{}"
"#,
        server.base_url
    );
    let dir = tempfile::tempdir().unwrap();
    let (stored, ms) = reckon_tests::spend_backfill(
        dir.path(),
        reckon_tests::BenchConnector {
            id: "tiktok_bench",
            plugin: "tiktok_ads",
            timezone: "America/New_York",
            settings: &settings,
        },
        &[("TIKTOK_BENCH_TOKEN", &token)],
        (from, to),
        truth,
    );
    println!(
        "tiktok_ads backfill through the daemon: 90 days × 500 campaigns × 20 ad groups = {stored} rows in {ms} ms ({} rows/s, {} report requests)",
        stored as u128 * 1000 / ms,
        fake.report_requests()
    );
}
