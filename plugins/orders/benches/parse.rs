//! Parse throughput of the orders connector (run with `cargo bench -p reckon-plugin-orders`).
//!
//! Generates Shopify order pages and CSV / JSONL files in memory and times
//! [`to_order`](reckon_plugin_orders::shopify::to_order) and the file parsers.
//! Target: ≥ 100k order rows per second.

use plugin_api::serde_json::{self, json, Value};
use reckon_plugin_orders::config::Settings;
use reckon_plugin_orders::{files, shopify};
use std::time::Instant;

fn settings() -> Settings {
    serde_json::from_value(json!({ "mode": "files", "directory": "/x", "default_currency": "USD" }))
        .expect("settings")
}

fn shopify_page(n: usize) -> String {
    let orders: Vec<Value> = (0..n)
        .map(|i| {
            json!({
                "id": 450_000_000u64 + i as u64, "name": format!("#{}", 1000 + i), "order_number": 1000 + i,
                "created_at": "2026-11-01T10:00:00-05:00", "updated_at": "2026-11-02T10:00:00-05:00",
                "currency": "USD", "subtotal_price": format!("{}.{:02}", 10 + i % 300, i % 100),
                "total_tax": "3.20", "taxes_included": i % 2 == 0, "financial_status": if i % 10 == 0 { "partially_refunded" } else { "paid" },
                "fulfillment_status": "fulfilled", "cancelled_at": null,
                "landing_site": format!("/products/p{i}?utm_source=impact&utm_medium=affiliate&irclickid=IR{i}"),
                "note_attributes": [{"name": "gclid", "value": format!("G{i}")}],
                "discount_codes": [{"code": "SAVE10", "amount": "1.00", "type": "fixed_amount"}],
                "customer": {"id": 7_000_000 + i, "orders_count": i % 3},
                "shipping_lines": [{"price": "5.00", "tax_lines": [{"price": "0.50"}]}],
                // Fields a real order carries that the connector skips.
                "email": format!("buyer{i}@example.com"), "browser_ip": "203.0.113.7", "source_name": "web",
                "billing_address": {"first_name": "Ada", "last_name": "Lovelace", "address1": "1 Main St", "city": "Berlin", "zip": "10115", "country_code": "DE"},
                "line_items": [
                    {"id": i * 10, "title": "Tee", "quantity": 1, "price": "20.00", "sku": "TEE-1", "vendor": "Shop", "taxable": true,
                     "tax_lines": [{"price": "1.60", "rate": 0.08, "title": "Tax"}], "discount_allocations": []},
                    {"id": i * 10 + 1, "title": "Mug", "quantity": 2, "price": "8.00", "sku": "MUG-2", "vendor": "Shop", "taxable": true,
                     "tax_lines": [{"price": "1.28", "rate": 0.08, "title": "Tax"}], "discount_allocations": []}
                ],
                "refunds": if i % 10 == 0 { json!([{"created_at": "2026-11-03T00:00:00Z", "processed_at": "2026-11-03T00:00:00Z",
                    "refund_line_items": [{"subtotal": "5.00", "total_tax": "0.50"}], "transactions": [], "order_adjustments": []}]) } else { json!([]) },
            })
        })
        .collect();
    json!({ "orders": orders }).to_string()
}

fn csv_file(n: usize) -> String {
    let mut s = String::from("order_id,created_at,amount,currency,alt_ids,coupon,click_ids,utm_source,utm_medium,refund_amount,refunded_at,status,customer_id,new_customer\n");
    for i in 0..n {
        let refund = if i % 10 == 0 {
            "5.00,2026-11-03T00:00:00Z"
        } else {
            ","
        };
        s.push_str(&format!(
            "O-{i},2026-11-01T10:00:00Z,{}.{:02},USD,#{i}|{i},SAVE10,gc{i}|ir{i},google,cpc,{refund},,cust{},{}\n",
            10 + i % 300,
            i % 100,
            i % 5000,
            i % 2 == 0
        ));
    }
    s
}

fn jsonl_file(n: usize) -> String {
    let mut s = String::new();
    for i in 0..n {
        s.push_str(
            &json!({"order_id": format!("J-{i}"), "created_at": "2026-11-01T10:00:00Z", "amount": format!("{}.5", i % 300),
                    "currency": "EUR", "click_ids": [format!("k{i}")], "utm_source": "meta", "customer_id": format!("c{i}")})
            .to_string(),
        );
        s.push('\n');
    }
    s
}

/// CPU time this thread has used (Linux `schedstat`), to separate the code's
/// speed from a loaded machine's scheduling; `None` elsewhere.
fn thread_cpu() -> Option<std::time::Duration> {
    let s = std::fs::read_to_string("/proc/thread-self/schedstat").ok()?;
    let ns: u64 = s.split_whitespace().next()?.parse().ok()?;
    Some(std::time::Duration::from_nanos(ns))
}

struct Timer {
    wall: Instant,
    cpu: Option<std::time::Duration>,
}

fn timer() -> Timer {
    Timer {
        wall: Instant::now(),
        cpu: thread_cpu(),
    }
}

fn report(what: &str, rows: usize, t: Timer) {
    let wall = t.wall.elapsed();
    let per_sec = rows as u128 * 1_000_000 / wall.as_micros().max(1);
    let cpu = match (t.cpu, thread_cpu()) {
        (Some(a), Some(b)) => {
            let c = b.saturating_sub(a);
            let per_cpu_sec = rows as u128 * 1_000_000 / c.as_micros().max(1);
            format!("  ({c:.1?} CPU: {per_cpu_sec:>8} rows per CPU-second)")
        }
        _ => String::new(),
    };
    println!("{what:<28} {rows:>7} rows in {wall:>8.1?} wall: {per_sec:>8} rows/s{cpu}");
}

fn main() {
    let settings = settings();
    let rows = 200_000;

    // Shopify: JSON page decode + mapping, 250 orders per page as the API sends.
    let page = shopify_page(250);
    let pages = rows / 250;
    let start = timer();
    let mut n = 0usize;
    for _ in 0..pages {
        for o in &shopify::parse_page(page.as_bytes()).expect("page") {
            shopify::to_order(o, &settings).expect("order");
            n += 1;
        }
    }
    report("shopify page parse + map", n, start);
    let start = timer();
    let mut n = 0usize;
    for _ in 0..pages {
        n += shopify::parse_page(page.as_bytes()).expect("page").len();
    }
    report("  of which JSON page parse", n, start);

    let csv = csv_file(rows);
    let start = timer();
    let n = files::parse_csv("bench.csv", csv.as_bytes(), &settings)
        .expect("csv")
        .len();
    report("csv file parse + map", n, start);

    let jsonl = jsonl_file(rows);
    let start = timer();
    let n = files::parse_jsonl("bench.jsonl", jsonl.as_bytes(), &settings)
        .expect("jsonl")
        .len();
    report("jsonl file parse + map", n, start);
}
