//! Parse throughput of `/Actions` pages (rows per second), in-process.
//!
//! Run with `cargo bench -p reckon-plugin-impact`. Prints one line per run.

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
    let mut actions = Vec::with_capacity(rows);
    for i in 0..rows {
        actions.push(format!(
            r#"{{"Id":"1000.{i}.77","CampaignId":"1000","CampaignName":"Acme","ActionTrackerId":"22","ActionTrackerName":"Online Sale","EventCode":"","MediaPartnerId":"{p}","MediaPartnerName":"Partner {p}","State":"{s}","AdId":"7","Amount":"{a}.{c:02}","DeltaAmount":"{a}.{c:02}","IntendedAmount":"{a}.{c:02}","Payout":"{pa}.{c:02}","DeltaPayout":"{pa}.{c:02}","IntendedPayout":"{pa}.{c:02}","ClientCost":"1.00","Currency":"USD","ReferringDate":"2026-11-01T09:00:00-07:00","EventDate":"2026-11-01T10:00:00-07:00","CreationDate":"2026-11-01T10:01:00-07:00","LockingDate":"2026-12-27T00:00:00-08:00","ClearedDate":"","Oid":"A-{i}","PromoCode":"","CustomerId":"c{i}","CustomerStatus":"NEW","SubId1":"","SharedId":"","IpAddress":"979823c536b3","Uri":"/Advertisers/IRsid1/Actions/1000.{i}.77"}}"#,
            p = 100 + i % 50,
            s = ["PENDING", "APPROVED", "REVERSED"][i % 3],
            a = 10 + i % 500,
            pa = 1 + i % 50,
            c = i % 100
        ));
    }
    format!(
        r#"{{"@page":"1","@numpages":"1","@pagesize":"20000","@total":"{rows}","@nextpageuri":"","Actions":[{}]}}"#,
        actions.join(",")
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
        let (_, records) = reckon_plugin_impact::parse_actions_page(&body).expect("parses");
        assert_eq!(records.len(), rows);
    }
    let elapsed = start.elapsed();
    let cpu = cpu_ns().zip(cpu_start).map(|(b, a)| b.saturating_sub(a));
    let total = (rows * runs) as u128;
    let per_sec = total * 1_000_000 / elapsed.as_micros().max(1);
    println!(
        "impact: parsed {total} action rows ({} MiB per page) in {elapsed:?}: {per_sec} rows/s",
        body.len() / (1 << 20)
    );
    if let Some(cpu) = cpu {
        println!(
            "{}: on-CPU time {:.3?}: {} rows/s per core",
            env!("CARGO_PKG_NAME"),
            std::time::Duration::from_nanos(cpu as u64),
            total * 1_000_000_000 / cpu.max(1)
        );
    }
}
