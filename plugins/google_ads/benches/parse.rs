//! Parse throughput of a searchStream body (rows/s), in-process.
//!
//! Builds a body of 200k ad-group rows in 20 batches of 10 000 (the
//! real batch size) and times `rows::parse_stream` over it. Target: ≥ 100k
//! spend rows/s.

use reckon_plugin_google_ads::rows::{parse_stream, Account};
use reckon_plugin_google_ads::Level;
use std::fmt::Write;
use std::time::Instant;

fn body(rows: usize) -> String {
    let mut s = String::with_capacity(rows * 420);
    s.push('[');
    for b in 0..rows / 10_000 {
        if b > 0 {
            s.push(',');
        }
        s.push_str("{\"results\":[");
        for r in 0..10_000 {
            let i = b * 10_000 + r;
            if r > 0 {
                s.push(',');
            }
            write!(
                s,
                "{{\"segments\":{{\"date\":\"2026-11-{:02}\"}},\"campaign\":{{\"resourceName\":\"customers/1234567890/campaigns/{c}\",\"id\":\"{c}\",\"name\":\"Campaign {c}\",\"advertisingChannelType\":\"SEARCH\"}},\"adGroup\":{{\"resourceName\":\"customers/1234567890/adGroups/{i}\",\"id\":\"{i}\",\"name\":\"Ad group {i}\"}},\"metrics\":{{\"impressions\":\"{}\",\"clicks\":\"{}\",\"costMicros\":\"{}\",\"conversions\":{}.5,\"conversionsValue\":{}.25}}}}",
                1 + i % 28,
                10_000 + i % 977,
                i % 301,
                1_234_567 + i * 13,
                i % 7,
                i % 300,
                c = 1_000 + i / 20,
            )
            .unwrap();
        }
        s.push_str("],\"fieldMask\":\"segments.date,campaign.id\",\"requestId\":\"bench\"}");
    }
    s.push(']');
    s
}

fn main() {
    let rows = 200_000;
    let body = body(rows);
    let account = Account {
        customer_id: "1234567890".into(),
        currency: "EUR".into(),
        timezone: "Europe/Berlin".into(),
    };
    let mut best = u128::MAX;
    for _ in 0..5 {
        let mut out = Vec::with_capacity(rows);
        let t = Instant::now();
        parse_stream(body.as_bytes(), &account, Level::AdGroup, &mut out).unwrap();
        let nanos = t.elapsed().as_nanos().max(1);
        assert_eq!(out.len(), rows);
        best = best.min(nanos);
    }
    println!(
        "google_ads parse: {rows} rows, {} kB, best {} ms = {} rows/s",
        body.len() / 1000,
        best / 1_000_000,
        rows as u128 * 1_000_000_000 / best
    );
}
