//! Parse throughput of insights pages (rows/s), in-process.
//!
//! Builds 400 pages of 500 ad-set rows (200k rows, every metric a string,
//! with overlapping purchase action types) and times `rows::parse_page` over
//! them. Target: ≥ 100k spend rows/s.

use reckon_plugin_meta_ads::rows::{parse_page, Account, Counted};
use reckon_plugin_meta_ads::Level;
use std::fmt::Write;
use std::time::Instant;

fn page(p: usize, rows: usize) -> String {
    let mut s = String::with_capacity(rows * 700);
    s.push_str("{\"data\":[");
    for r in 0..rows {
        let i = p * rows + r;
        if r > 0 {
            s.push(',');
        }
        write!(
            s,
            "{{\"account_id\":\"42\",\"account_currency\":\"USD\",\"campaign_id\":\"{c}\",\"campaign_name\":\"Campaign {c}\",\"adset_id\":\"{i}\",\"adset_name\":\"Ad set {i}\",\"impressions\":\"{}\",\"clicks\":\"{}\",\"spend\":\"{}.{:02}\",\"actions\":[{{\"action_type\":\"link_click\",\"value\":\"{}\"}},{{\"action_type\":\"purchase\",\"value\":\"{}\"}},{{\"action_type\":\"omni_purchase\",\"value\":\"{}\"}}],\"action_values\":[{{\"action_type\":\"purchase\",\"value\":\"{}.5\"}},{{\"action_type\":\"omni_purchase\",\"value\":\"{}.75\"}}],\"date_start\":\"2026-11-{d:02}\",\"date_stop\":\"2026-11-{d:02}\"}}",
            10_000 + i % 977,
            i % 301,
            i % 500,
            i % 100,
            i % 301,
            i % 7,
            i % 8,
            i % 300,
            i % 310,
            c = 1_000 + i / 20,
            d = 1 + i % 28,
        )
        .unwrap();
    }
    write!(s, "],\"paging\":{{\"cursors\":{{\"before\":\"QVFI{p}\",\"after\":\"QVFJ{p}\"}},\"next\":\"https://graph.facebook.com/v22.0/act_42/insights?after=QVFJ{p}\"}}}}").unwrap();
    s
}

fn main() {
    let (pages, per_page) = (400, 500);
    let bodies: Vec<String> = (0..pages).map(|p| page(p, per_page)).collect();
    let bytes: usize = bodies.iter().map(String::len).sum();
    let account = Account {
        account_id: "42".into(),
        currency: "USD".into(),
        timezone: "America/Los_Angeles".into(),
    };
    let counted = Counted {
        clicks: reckon_plugin_meta_ads::ClicksMetric::Clicks,
        action_type: "omni_purchase",
        windows: &[],
    };
    let mut best = u128::MAX;
    for _ in 0..5 {
        let t = Instant::now();
        let mut n = 0;
        for b in &bodies {
            n += parse_page(b.as_bytes(), &account, Level::Adset, counted)
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
        "meta_ads parse: {rows} rows, {} kB, best {} ms = {} rows/s",
        bytes / 1000,
        best / 1_000_000,
        rows as u128 * 1_000_000_000 / best
    );
}
