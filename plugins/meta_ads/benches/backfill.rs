//! A 90-day backfill of 500 campaigns × 20 ad sets through the loopback fake,
//! in-process: the plugin runs in the SDK's fake host and its HTTP is answered
//! by the fake's handler (async report runs, cursor pages of 5000 rows).
//! Three 30-day sessions, as a host splits a backfill. Target: under 60 s.

use plugin_api::protocol::Window;
use plugin_api::serde_json::json;
use plugin_api::testing::{open_read, FakeHost};
use reckon_plugin_meta_ads::MetaAds;
use reckon_tests::fakes::google_ads::wire::{Level, Universe};
use reckon_tests::fakes::meta_ads::{bridge, Config, MetaFake};
use std::time::Instant;

fn main() {
    let config = Config::default();
    let token = config.access_token.clone();
    let fake = MetaFake::new(config, Universe::new(90, 500, 20));
    let first = plugin_api::chrono::NaiveDate::from_ymd_opt(2026, 8, 1).unwrap();
    let t = Instant::now();
    let (mut rows, mut truth) = (0usize, 0usize);
    for w in 0..3 {
        let from = first + plugin_api::chrono::Duration::days(30 * w);
        let to = from + plugin_api::chrono::Duration::days(29);
        let out = FakeHost::handler(bridge(fake.clone(), &token)).run::<MetaAds>(open_read(
            "meta",
            "http://fake",
            json!({ "ad_account_id": "4242", "page_size": 5000, "days_per_request": 7 }),
            Window { from, to },
        ));
        out.result.unwrap();
        rows += out.committed.len();
        truth += fake.truth(Level::AdGroup, from, to).len();
    }
    let ms = t.elapsed().as_millis().max(1);
    assert_eq!(rows, truth);
    println!(
        "meta_ads backfill (in-process, fake host): 90 days × 500 campaigns × 20 ad sets = {rows} rows in {ms} ms ({} rows/s, {} requests, {} report runs)",
        rows as u128 * 1000 / ms,
        fake.requests(),
        fake.jobs_created()
    );
}
