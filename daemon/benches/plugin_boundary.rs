//! Benchmark of the plugin boundary: canonical records per second across it
//! (in-process and subprocess) and the host's per-step overhead.
//!
//! Uses the test plugin `faulty` in its `flood` and `steps` modes, which do
//! no HTTP: what is measured is the plugin producing and serialising records,
//! the transport, and the host decoding and validating them and handing them
//! to a sink (a no-op here, so the store is not measured).
//!
//! Both wall time and CPU time (user + system of this process and its
//! children, from `/proc/self/stat`) are reported: on a shared machine the
//! wall time mostly measures the neighbours.
//!
//! Run: `cargo build --release -p reckon -p reckon-fault-behaviour &&
//! cargo bench -p reckon --bench plugin_boundary`.
//! Targets: in-process ≥ 300k records/s, subprocess ≥ 100k records/s,
//! per-step overhead < 50 µs in-process.

use plugin_api::protocol::{Checkpoint, Record, SessionMode, SessionOpen, Window};
use reckon::plugins::{
    load, run_session, HttpPolicy, Isolation, Plugin, SessionOptions, SessionSink,
};
use std::collections::BTreeMap;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::{Duration, Instant};

struct CountingSink(u64);

impl SessionSink for CountingSink {
    fn commit(
        &mut self,
        records: Vec<Record>,
        _checkpoint: Checkpoint,
    ) -> Result<reckon::store::CommitStats, String> {
        self.0 += records.len() as u64;
        Ok(reckon::store::CommitStats::default())
    }
}

fn profile_dir() -> PathBuf {
    let exe = std::env::current_exe().expect("bench path");
    let mut dir = exe.parent().expect("deps").to_path_buf();
    if dir.ends_with("deps") {
        dir.pop();
    }
    dir
}

fn open(settings: serde_json::Value) -> SessionOpen {
    SessionOpen {
        mode: SessionMode::Read,
        connector_id: "bench".into(),
        settings,
        base_url: "https://faulty.invalid".into(),
        streams: Vec::new(),
        window: Some(Window {
            from: chrono::NaiveDate::from_ymd_opt(2026, 11, 1).expect("date"),
            to: chrono::NaiveDate::from_ymd_opt(2026, 11, 2).expect("date"),
        }),
        checkpoints: BTreeMap::new(),
        now: chrono::Utc::now(),
        timezone: None,
    }
}

/// CPU time (user + system) of this process and its waited-for children,
/// from `/proc/self/stat` (clock ticks of 10 ms).
fn cpu_time() -> Duration {
    let stat = std::fs::read_to_string("/proc/self/stat").unwrap_or_default();
    let after_name = stat.rsplit_once(')').map(|(_, r)| r).unwrap_or("");
    let fields: Vec<u64> = after_name
        .split_whitespace()
        .map(|f| f.parse().unwrap_or(0))
        .collect();
    // stat(5) fields 14..=17 are utime, stime, cutime, cstime; after the
    // name, field n sits at index n - 3.
    let ticks: u64 = (11..=14).map(|i| fields.get(i).copied().unwrap_or(0)).sum();
    Duration::from_millis(ticks * 10)
}

struct Run {
    wall: Duration,
    cpu: Duration,
    records: u64,
}

async fn timed(plugin: &Arc<Plugin>, isolation: Isolation, settings: serde_json::Value) -> Run {
    let options = SessionOptions {
        isolation,
        step_deadline: Duration::from_secs(60),
        host_exe: profile_dir().join("reckon"),
        max_requests: u64::MAX,
    };
    let mut sink = CountingSink(0);
    let cpu = cpu_time();
    let start = Instant::now();
    run_session(
        plugin.clone(),
        open(settings),
        HttpPolicy::new("bench"),
        options,
        &mut sink,
    )
    .await
    .expect("bench session");
    Run {
        wall: start.elapsed(),
        cpu: cpu_time().saturating_sub(cpu),
        records: sink.0,
    }
}

fn per_sec(n: u64, d: Duration) -> u64 {
    (u128::from(n) * 1_000_000 / d.as_micros().max(1)) as u64
}

fn per_step(d: Duration, steps: u64) -> String {
    let ns = d.as_nanos() / u128::from(steps.max(1));
    format!("{}.{:01} µs", ns / 1000, (ns % 1000) / 100)
}

fn main() {
    let lib = profile_dir().join(format!(
        "{}reckon_fault_behaviour{}",
        std::env::consts::DLL_PREFIX,
        std::env::consts::DLL_SUFFIX
    ));
    if !lib.exists() || !profile_dir().join("reckon").exists() {
        eprintln!(
            "{} or the reckon binary is missing: run `cargo build --release -p reckon -p reckon-fault-behaviour` first",
            lib.display()
        );
        std::process::exit(2);
    }
    let dir = tempfile::tempdir().expect("tempdir");
    std::fs::copy(&lib, dir.path().join(lib.file_name().expect("name"))).expect("copy");
    let plugin = load(dir.path(), "faulty", None).expect("load faulty");
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .expect("runtime");
    let records: u64 = std::env::var("BENCH_RECORDS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(300_000);
    let steps: u64 = 50_000;
    let load = std::fs::read_to_string("/proc/loadavg").unwrap_or_default();
    println!(
        "plugin boundary benchmark: {records} records per run in pages of 1000, {steps} empty steps; best of 3\nload average: {}",
        load.trim()
    );
    for (name, iso) in [
        ("in-process", Isolation::InProcess),
        ("subprocess", Isolation::Subprocess),
    ] {
        let flood = serde_json::json!({ "fault": "flood", "records": records, "page": 1000 });
        let runs: Vec<Run> = (0..3)
            .map(|_| rt.block_on(timed(&plugin, iso, flood.clone())))
            .collect();
        assert!(runs.iter().all(|r| r.records == records));
        let wall = runs.iter().map(|r| r.wall).min().expect("runs");
        let cpu = runs.iter().map(|r| r.cpu).min().expect("runs");
        println!(
            "  {name:<11} records: {:>8}/s wall ({} ms) | {:>8} per CPU-second ({} ms CPU, host + plugin)",
            per_sec(records, wall),
            wall.as_millis(),
            per_sec(records, cpu),
            cpu.as_millis()
        );
        let stepping = serde_json::json!({ "fault": "steps", "steps": steps });
        let runs: Vec<Run> = (0..3)
            .map(|_| rt.block_on(timed(&plugin, iso, stepping.clone())))
            .collect();
        let wall = runs.iter().map(|r| r.wall).min().expect("runs");
        let cpu = runs.iter().map(|r| r.cpu).min().expect("runs");
        println!(
            "  {name:<11} per step: {} wall | {} CPU",
            per_step(wall, steps),
            per_step(cpu, steps)
        );
    }
}
