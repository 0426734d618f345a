//! A 90-day backfill of 500 campaigns × 20 ad groups through the real daemon:
//! `reckon sync --from --to` (release build, subprocess plugin host, OAuth2
//! through the fake's token endpoint via `settings.token_url`, HTTP over
//! loopback, sled store) against the Google Ads fake. Target: under 60 s.
//! Needs `cargo build --release -p reckon -p reckon-plugin-google_ads` first.

use reckon_tests::fakes::google_ads::wire::{Level, Universe};
use reckon_tests::fakes::google_ads::{router, Config, GoogleFake};
use reckon_tests::fakes::server::FakeServer;

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
    let settings = format!(
        r#"base_url = "{url}"
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
    );
    let dir = tempfile::tempdir().unwrap();
    let (stored, ms) = reckon_tests::spend_backfill(
        dir.path(),
        reckon_tests::BenchConnector {
            id: "google_bench",
            plugin: "google_ads",
            timezone: "Europe/Berlin",
            settings: &settings,
        },
        &[
            ("GB_DEV", &creds.developer_token),
            ("GB_ID", &creds.client_id),
            ("GB_SECRET", &creds.client_secret),
            ("GB_REFRESH", &creds.refresh_token),
        ],
        (from, to),
        truth,
    );
    println!(
        "google_ads backfill through the daemon: 90 days × 500 campaigns × 20 ad groups = {stored} rows in {ms} ms ({} rows/s, {} data requests)",
        stored as u128 * 1000 / ms,
        fake.data_requests()
    );
}
