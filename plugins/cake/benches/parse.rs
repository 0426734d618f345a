//! Parse throughput of EventConversions answers (rows per second), in-process.
//!
//! Run with `cargo bench -p reckon-plugin-cake`. Prints one line per run.

use plugin_api::ConversionStatus::Approved;
use reckon_plugin_cake::Currencies;
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
        let ms = 1_793_527_200_000u64 + i as u64 * 1000;
        out.push(format!(
            r#"{{"event_conversion_id":{id},"event_conversion_date":"/Date({ms})/","last_updated":"/Date({ms})/","click_date":"/Date({ms})/","source_affiliate":{{"source_affiliate_id":{p},"source_affiliate_name":"Aff {p}"}},"brand_advertiser":{{"brand_advertiser_id":3,"brand_advertiser_name":"Shop"}},"site_offer":{{"site_offer_id":{o},"site_offer_name":"Offer"}},"creative":{{"creative_id":1}},"sub_id_1":"s","sub_id_2":"","sub_id_3":"","sub_id_4":"","sub_id_5":"","source_type":"Affiliate","paid":{{"currency_id":1,"amount":{pa}.{c:02}}},"received":{{"currency_id":1,"amount":{a}.{c:02}}},"paid_unbilled":{{"amount":0}},"received_unbilled":{{"amount":0}},"transaction_id":"T-{id}","click_request_session_id":"req{id}","tracking_id":"","udid":"","pixel_dropped":false,"current_disposition":{disp},"event_info":{{"event_id":1,"event_name":"Sale"}},"price_format":{{"price_format_name":"CPA"}}}}"#,
            id = 1_000_000 + i,
            p = 100 + i % 50,
            o = 10 + i % 7,
            pa = 1 + i % 50,
            a = 10 + i % 500,
            c = i % 100,
            disp = if i % 3 == 0 { "null".to_owned() } else {
                format!(r#"{{"disposition_id":4,"disposition_name":"x","disposition_type":{{"disposition_type_id":2,"disposition_type_name":"{}"}}}}"#,
                    ["Approved", "Pending", "Rejected", "Returned"][i % 4]) },
        ));
    }
    format!(
        r#"{{"d":{{"__type":"Cake.Reports","success":true,"message":"","row_count":{rows},"event_conversions":[{}]}}}}"#,
        out.join(",")
    )
    .into_bytes()
}

fn main() {
    let rows = 20_000;
    let body = page(rows);
    let currencies: Currencies = [(1, "USD".to_owned())].into_iter().collect();
    let runs = 10;
    let start = Instant::now();
    let cpu_start = cpu_ns();
    for _ in 0..runs {
        let page =
            reckon_plugin_cake::parse_page(&body, &currencies, Approved, None).expect("parses");
        assert_eq!(page.records.len(), rows);
    }
    let elapsed = start.elapsed();
    let cpu = cpu_ns().zip(cpu_start).map(|(b, a)| b.saturating_sub(a));
    let total = (rows * runs) as u128;
    let per_sec = total * 1_000_000 / elapsed.as_micros().max(1);
    println!("cake: parsed {total} event conversion rows in {elapsed:?}: {per_sec} rows/s");
    if let Some(cpu) = cpu {
        println!(
            "{}: on-CPU time {:.3?}: {} rows/s per core",
            env!("CARGO_PKG_NAME"),
            std::time::Duration::from_nanos(cpu as u64),
            total * 1_000_000_000 / cpu.max(1)
        );
    }
}
