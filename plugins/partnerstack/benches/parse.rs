//! Parse throughput of rewards pages (rows per second), in-process.
//!
//! Run with `cargo bench -p reckon-plugin-partnerstack`. Prints one line per run.

use reckon_plugin_partnerstack::Transactions;
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
        let ts = 1_793_527_200_000u64 + i as u64 * 1000;
        out.push(format!(
            r#"{{"key":"rew_{i:08}","amount":{a},"reward_status":"{s}","payment_status":"available","description":"10% of payment","created_at":{ts},"updated_at":{ts},"partnership":{{"key":"pshp_{p}","partner_key":"part_{p}","first_name":"Ann","last_name":"Lee","email":"a{p}@x.io"}},"customer":{{"key":"cust_{i}","email":"c{i}@y.io","partner_key":"part_{p}"}},"transaction":{{"key":"txn_{i}","amount":{t},"currency":"USD","approved":true}},"offer":{{"key":"offr_1"}},"invoice":null,"trigger":{{"name":"Payment"}},"action":null}}"#,
            a = 100 + i % 5000,
            t = 1000 + i % 50000,
            p = i % 50,
            s = ["new", "approved", "declined", "hold", "paid"][i % 5],
        ));
    }
    format!(
        r#"{{"data":{{"has_more":false,"items":[{}]}},"message":"ok","status":200}}"#,
        out.join(",")
    )
    .into_bytes()
}

fn main() {
    let rows = 20_000;
    let body = page(rows);
    let lookup = Transactions::new();
    let runs = 10;
    let start = Instant::now();
    let cpu_start = cpu_ns();
    for _ in 0..runs {
        let page =
            reckon_plugin_partnerstack::parse_rewards_page(&body, &lookup, "USD").expect("parses");
        assert_eq!(page.records.len(), rows);
    }
    let elapsed = start.elapsed();
    let cpu = cpu_ns().zip(cpu_start).map(|(b, a)| b.saturating_sub(a));
    let total = (rows * runs) as u128;
    let per_sec = total * 1_000_000 / elapsed.as_micros().max(1);
    println!("partnerstack: parsed {total} reward rows in {elapsed:?}: {per_sec} rows/s");
    if let Some(cpu) = cpu {
        println!(
            "{}: on-CPU time {:.3?}: {} rows/s per core",
            env!("CARGO_PKG_NAME"),
            std::time::Duration::from_nanos(cpu as u64),
            total * 1_000_000_000 / cpu.max(1)
        );
    }
}
