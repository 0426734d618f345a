//! Parse throughput of report pages (rows/s), in-process.
//!
//! Builds 200 pages of 1000 ad-group rows (200k rows, every metric a string,
//! some `"-"`) and times `rows::parse_page` over them. Target: ≥ 100k spend
//! rows/s.

use reckon_plugin_tiktok_ads::rows::{parse_page, Account, Metrics};
use reckon_plugin_tiktok_ads::Level;
use std::fmt::Write;
use std::time::Instant;

fn page(p: usize, rows: usize, pages: usize) -> String {
    let mut s = String::with_capacity(rows * 400);
    write!(s, "{{\"code\":0,\"message\":\"OK\",\"request_id\":\"bench{p}\",\"data\":{{\"page_info\":{{\"page\":{},\"page_size\":{rows},\"total_number\":{},\"total_page\":{pages}}},\"list\":[", p + 1, rows * pages).unwrap();
    for r in 0..rows {
        let i = p * rows + r;
        if r > 0 {
            s.push(',');
        }
        let conv = match i % 5 {
            0 => "\"-\"".to_owned(),
            _ => format!("\"{}\"", i % 9),
        };
        write!(
            s,
            "{{\"dimensions\":{{\"adgroup_id\":\"{i}\",\"stat_time_day\":\"2026-11-{:02} 00:00:00\"}},\"metrics\":{{\"campaign_id\":\"{c}\",\"campaign_name\":\"Campaign {c}\",\"adgroup_name\":\"Ad group {i}\",\"spend\":\"{}.{:02}\",\"impressions\":\"{}\",\"clicks\":\"{}\",\"conversion\":{conv}}}}}",
            1 + i % 28,
            i % 500,
            i % 100,
            10_000 + i % 977,
            i % 301,
            c = 1_000 + i / 20,
        )
        .unwrap();
    }
    s.push_str("]}}");
    s
}

fn main() {
    let (pages, per_page) = (200, 1000);
    let bodies: Vec<String> = (0..pages).map(|p| page(p, per_page, pages)).collect();
    let bytes: usize = bodies.iter().map(String::len).sum();
    let account = Account {
        advertiser_id: "7001".into(),
        currency: "USD".into(),
        timezone: "America/New_York".into(),
    };
    let which = Metrics {
        level: Level::AdGroup,
        conversions: "conversion",
        value: "",
    };
    let mut best = u128::MAX;
    for _ in 0..5 {
        let t = Instant::now();
        let mut n = 0;
        for b in &bodies {
            n += parse_page(b.as_bytes(), &account, which)
                .unwrap()
                .spend
                .len();
        }
        let nanos = t.elapsed().as_nanos().max(1);
        assert_eq!(n, pages * per_page);
        best = best.min(nanos);
    }
    let rows = pages * per_page;
    println!(
        "tiktok_ads parse: {rows} rows, {} kB, best {} ms = {} rows/s",
        bytes / 1000,
        best / 1_000_000,
        rows as u128 * 1_000_000_000 / best
    );
}
