//! Load benchmark of the postback endpoint: a tokio + reqwest client sends
//! postbacks over loopback to the postback router backed by a real sled
//! store in a temp dir, and reports accepted postbacks per second and
//! latency percentiles. Run: `cargo bench -p reckon-tests --bench postback_load`.
//!
//! Two runs: closed loop (64 clients send as fast as answers come back: the
//! maximum throughput) and open loop at a fixed arrival rate (default 5,000/s;
//! latency is measured from each request's scheduled send time, so a stall
//! counts against every request queued behind it).
//!
//! Knobs (environment): `POSTBACK_BENCH_N` (postbacks per run, default 50000),
//! `POSTBACK_BENCH_CONCURRENCY` (max in-flight requests, default 64),
//! `POSTBACK_BENCH_RATE` (open-loop arrivals per second, default 5000).
//! Target: ≥ 5,000 accepted postbacks/s with p99 < 20 ms.

use plugin_api::protocol::RecordKind;
use reckon::server::postback::{self, PostbackConfig, PostbackState};
use reckon::store::Store;
use reckon_tests::fakes::server::FakeServer;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

fn env_usize(name: &str, default: usize) -> usize {
    std::env::var(name)
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(default)
}

fn percentile(sorted: &[Duration], p_per_mille: usize) -> Duration {
    if sorted.is_empty() {
        return Duration::ZERO;
    }
    let idx = (sorted.len() * p_per_mille / 1000).min(sorted.len() - 1);
    sorted[idx]
}

async fn run(
    base: String,
    prefix: &'static str,
    n: usize,
    concurrency: usize,
    rate_per_sec: Option<u64>,
) -> (Duration, Vec<Duration>, usize) {
    let client = reqwest::Client::builder()
        .pool_max_idle_per_host(concurrency)
        .build()
        .expect("client");
    let next = Arc::new(AtomicUsize::new(0));
    let start = Instant::now();
    let mut tasks = Vec::new();
    for _ in 0..concurrency {
        let (client, base, next) = (client.clone(), base.clone(), next.clone());
        tasks.push(tokio::spawn(async move {
            let mut lat = Vec::new();
            let mut failed = 0usize;
            loop {
                let i = next.fetch_add(1, Ordering::Relaxed);
                if i >= n {
                    return (lat, failed);
                }
                let url = format!(
                    "{base}/postback/bench?transaction_id={prefix}{i}&order_id=O{i}&amount={}.{:02}&payout=1.50&currency=USD&affiliate_id=p{}&status=pending&token=s3cret",
                    10 + i % 500,
                    i % 100,
                    i % 50
                );
                // Open loop: request i is due at start + i / rate.
                let t = match rate_per_sec {
                    Some(rate) => {
                        let due = start + Duration::from_nanos(i as u64 * 1_000_000_000 / rate.max(1));
                        tokio::time::sleep_until(due.into()).await;
                        due
                    }
                    None => Instant::now(),
                };
                match client.get(url).send().await {
                    Ok(r) if r.status().as_u16() == 200 => {
                        let _ = r.bytes().await;
                        lat.push(t.elapsed());
                    }
                    _ => failed += 1,
                }
            }
        }));
    }
    let mut all = Vec::with_capacity(n);
    let mut failed = 0;
    for t in tasks {
        let (lat, f) = t.await.expect("client task");
        all.extend(lat);
        failed += f;
    }
    (start.elapsed(), all, failed)
}

fn main() {
    let n = env_usize("POSTBACK_BENCH_N", 50_000);
    let concurrency = env_usize("POSTBACK_BENCH_CONCURRENCY", 64);
    let dir = tempfile::tempdir().expect("temp dir");
    let store = Store::open(dir.path()).expect("store");
    let mut cfg: PostbackConfig = toml::from_str(
        "id = \"bench\"\nsecret = { secret = \"env:UNUSED\" }\ndefault_currency = \"USD\"",
    )
    .expect("config");
    cfg.resolved_secret = Some("s3cret".into());
    let server = FakeServer::start(postback::router(PostbackState {
        store: store.clone(),
        postbacks: vec![cfg],
    }));
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .expect("client runtime");

    let rate = env_usize("POSTBACK_BENCH_RATE", 5_000) as u64;
    // Warm-up: connections, sled caches.
    rt.block_on(run(server.base_url.clone(), "w", 2_000, concurrency, None));

    println!("postback load: loopback, sled store with group commit, {concurrency} max in flight");
    for (label, prefix, rate) in [("closed loop", "c", None), ("open loop", "o", Some(rate))] {
        let (elapsed, mut lat, failed) =
            rt.block_on(run(server.base_url.clone(), prefix, n, concurrency, rate));
        lat.sort_unstable();
        let ok = lat.len();
        let per_sec = ok as u128 * 1_000_000 / elapsed.as_micros().max(1);
        match rate {
            Some(r) => println!("{label} at {r}/s: {n} postbacks"),
            None => println!("{label}: {n} postbacks"),
        }
        println!("  accepted        {ok} ({failed} failed) in {elapsed:.2?}");
        println!("  throughput      {per_sec} accepted postbacks/s");
        println!(
            "  latency         p50 {:.2?}  p90 {:.2?}  p99 {:.2?}  p99.9 {:.2?}  max {:.2?}",
            percentile(&lat, 500),
            percentile(&lat, 900),
            percentile(&lat, 990),
            percentile(&lat, 999),
            lat.last().copied().unwrap_or_default()
        );
    }
    let stored = store.count_records(RecordKind::Conversion, Some("bench"));
    println!("stored {stored} conversions (expected {})", 2 * n + 2_000);
    assert_eq!(
        stored as usize,
        2 * n + 2_000,
        "every postback stored exactly once"
    );
    drop(server);
}
