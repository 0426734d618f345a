//! A 90-day backfill of 500 campaigns × 20 ad groups through the loopback
//! fake, in-process: the plugin runs in the SDK's fake host and its HTTP is
//! answered by the fake's handler (rendering real searchStream JSON). Three
//! 30-day sessions, as a host splits a backfill. Target: under 60 s.

use plugin_api::protocol::Window;
use plugin_api::serde_json::json;
use plugin_api::testing::{open_read, FakeHost};
use reckon_plugin_google_ads::GoogleAds;
use reckon_tests::fakes::google_ads::wire::{Level, Universe};
use reckon_tests::fakes::google_ads::{bridge, Config, Credentials, GoogleFake};
use std::time::Instant;

fn main() {
    let fake = GoogleFake::new(Config::default(), Universe::new(90, 500, 20));
    let first = plugin_api::chrono::NaiveDate::from_ymd_opt(2026, 8, 1).unwrap();
    let t = Instant::now();
    let (mut rows, mut truth) = (0usize, 0usize);
    for w in 0..3 {
        let from = first + plugin_api::chrono::Duration::days(30 * w);
        let to = from + plugin_api::chrono::Duration::days(29);
        let out = FakeHost::handler(bridge(fake.clone(), Credentials::default())).run::<GoogleAds>(
            open_read(
                "gads",
                "http://fake",
                json!({ "customer_id": "1234567890" }),
                Window { from, to },
            ),
        );
        out.result.unwrap();
        rows += out.committed.len();
        truth += fake.truth(Level::AdGroup, from, to).len();
    }
    let ms = t.elapsed().as_millis().max(1);
    assert_eq!(rows, truth);
    println!(
        "google_ads backfill (in-process, fake host): 90 days × 500 campaigns × 20 ad groups = {rows} rows in {ms} ms ({} rows/s, {} requests)",
        rows as u128 * 1000 / ms,
        fake.data_requests()
    );
}
