//! A 90-day backfill of 500 campaigns × 20 ad sets through the real daemon:
//! `reckon sync --from --to` (release build, subprocess plugin host, HTTP over
//! loopback, sled store) against the Meta fake with async report runs and
//! pages of 5000 rows. Target: under 60 s. Needs
//! `cargo build --release -p reckon -p reckon-plugin-meta_ads` first.

use reckon_tests::fakes::google_ads::wire::{Level, Universe};
use reckon_tests::fakes::meta_ads::{router, Config, MetaFake};
use reckon_tests::fakes::server::FakeServer;

fn main() {
    let config = Config::default();
    let token = config.access_token.clone();
    let fake = MetaFake::new(config, Universe::new(90, 500, 20));
    let (from, to) = ("2026-08-01", "2026-10-29");
    let truth = fake
        .truth(Level::AdGroup, from.parse().unwrap(), to.parse().unwrap())
        .len();
    let server = FakeServer::start(router(fake.clone()));
    let settings = format!(
        r#"ad_account_id = "4242"
access_token = {{ secret = "env:META_BENCH_TOKEN" }}
base_url = "{}"
report_mode = "async"
days_per_request = 7
page_size = 5000
poll_interval_secs = 1
"#,
        server.base_url
    );
    let dir = tempfile::tempdir().unwrap();
    let (stored, ms) = reckon_tests::spend_backfill(
        dir.path(),
        reckon_tests::BenchConnector {
            id: "meta_bench",
            plugin: "meta_ads",
            timezone: "America/Los_Angeles",
            settings: &settings,
        },
        &[("META_BENCH_TOKEN", &token)],
        (from, to),
        truth,
    );
    println!(
        "meta_ads backfill through the daemon: 90 days × 500 campaigns × 20 ad sets = {stored} rows in {ms} ms ({} rows/s, {} requests, {} report runs)",
        stored as u128 * 1000 / ms,
        fake.requests(),
        fake.jobs_created()
    );
}
