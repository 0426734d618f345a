//! Parse throughput of raw-conversion pages (rows per second), in-process.
//!
//! Run with `cargo bench -p reckon-plugin-everflow`. Prints one line per run.

use std::time::Instant;

/// CPU time this process has run, in nanoseconds (Linux `schedstat`): the
/// machine is shared, so wall time alone understates the parser.
fn cpu_ns() -> Option<u128> {
    std::fs::read_to_string("/proc/self/schedstat")
        .ok()?
        .split_whitespace()
        .next()?
        .parse()
        .ok()
}

fn page(rows: usize) -> Vec<u8> {
    let mut out = Vec::with_capacity(rows);
    for i in 0..rows {
        out.push(format!(
            r#"{{"conversion_id":"9e6e4d83{i:024x}","conversion_unix_timestamp":{ts},"click_unix_timestamp":{cts},"transaction_id":"tx{i:030x}","status":"{s}","payout":{pa}.{c:02},"revenue":{a}.{c:02},"sale_amount":{a}.{c:02},"payout_type":"cpa","revenue_type":"rpa","currency_id":"USD","order_id":"O-{i}","coupon_code":"","sub1":"s{i}","sub2":"","sub3":"","sub4":"","sub5":"","source_id":"","adv1":"","adv2":"","is_event":false,"is_scrub":false,"is_view_through":false,"event":"Base","error_code":0,"notes":"","query_parameters":{{"utm_source":"mail"}},"relationship":{{"offer":{{"network_offer_id":{o},"network_id":1,"name":"Offer {o}","offer_status":"active"}},"advertiser":{{"network_advertiser_id":3,"name":"Adv"}},"affiliate":{{"network_affiliate_id":{p},"network_id":1,"name":"Affiliate {p}","account_status":"active"}}}}}}"#,
            ts = 1_793_527_200 + i,
            cts = 1_793_527_000 + i,
            s = ["approved", "pending", "rejected", "invalid"][i % 4],
            pa = 1 + i % 50,
            a = 10 + i % 500,
            c = i % 100,
            o = 10 + i % 7,
            p = 100 + i % 50,
        ));
    }
    format!(
        r#"{{"conversions":[{}],"paging":{{"page":1,"page_size":{rows},"total_count":{rows}}}}}"#,
        out.join(",")
    )
    .into_bytes()
}

fn main() {
    let rows = 20_000;
    let body = page(rows);
    let runs = 10;
    let start = Instant::now();
    let cpu_start = cpu_ns();
    for _ in 0..runs {
        let (_, records) = reckon_plugin_everflow::parse_page(&body).expect("parses");
        assert_eq!(records.len(), rows);
    }
    let elapsed = start.elapsed();
    let cpu = cpu_ns().zip(cpu_start).map(|(b, a)| b.saturating_sub(a));
    let total = (rows * runs) as u128;
    let per_sec = total * 1_000_000 / elapsed.as_micros().max(1);
    println!("everflow: parsed {total} conversion rows in {elapsed:?}: {per_sec} rows/s");
    if let Some(cpu) = cpu {
        println!(
            "{}: on-CPU time {:.3?}: {} rows/s per core",
            env!("CARGO_PKG_NAME"),
            std::time::Duration::from_nanos(cpu as u64),
            total * 1_000_000_000 / cpu.max(1)
        );
    }
}
