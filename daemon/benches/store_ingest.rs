//! Store ingest benchmark (`cargo bench -p reckon --bench store_ingest`).
//!
//! On the same N canonical records (default 1,000,000; `RECKON_BENCH_RECORDS`
//! overrides), pages of 1,000:
//! 1. Reckon's ingest path as `reckon sync` runs it: decode each record from
//!    JSON (as the plugin host receives it), validate it, hand the page to
//!    the store writer thread (`store::writer::PageWriter`: `commit_page` =
//!    revision check, upsert, change log, checkpoint in one atomic batch)
//!    while the next page is decoded; flush at the end.
//! 2. A full re-pull of the same pages: every record unchanged, nothing written.
//!    Then a restatement re-pull: one record in 20 changed (reported, no goal).
//! 3. Raw sled: `Tree::apply_batch` of the same keys and stored values
//!    (encoded untimed; building the `sled::Batch` from them and applying it
//!    timed), flush at the end.
//!
//! 4. The schema 2 → 3 migration of the same records at `Store::open`.
//!
//! Phases 1-2, 3 and 4 run in separate fresh child processes of this binary, so
//! neither inherits the other's warmed-up heap.
//!
//! Reports records/s, Reckon vs raw ratio, bytes on disk vs logical size,
//! peak RSS (VmHWM, measured after phases 1-2, before raw sled runs), and the
//! idle CPU of the scheduler with 50 connectors (`RECKON_BENCH_IDLE_SECS`,
//! default 20).

use chrono::{DateTime, Duration, Utc};
use plugin_api::protocol::{
    Checkpoint, Conversion, ConversionStatus, EventType, Money, Record, Utm,
};
use plugin_api::Connector;
use reckon::store::writer::PageWriter;
use reckon::store::Store;
use std::time::Instant;

const PAGE: usize = 1000;

/// Every `RESTATED`th record changes status in the restatement re-pull.
const RESTATED: u64 = 20;

fn record(i: u64) -> Record {
    record_as(i, false)
}

/// Record ids in page order (`cv-000000001`, ...), as networks with
/// increasing ids send them; with `RECKON_BENCH_RANDOM_IDS=1`, 16 hex digits
/// of a hash of `i` instead (ids like Everflow's transaction ids: every page
/// spread over the whole key space).
fn external_id(i: u64) -> String {
    static RANDOM: std::sync::OnceLock<bool> = std::sync::OnceLock::new();
    if *RANDOM.get_or_init(|| std::env::var_os("RECKON_BENCH_RANDOM_IDS").is_some()) {
        // splitmix64: a bijection, so ids stay distinct.
        let mut z = i.wrapping_add(0x9E37_79B9_7F4A_7C15);
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        format!("cv-{:016x}", z ^ (z >> 31))
    } else {
        format!("cv-{i:09}")
    }
}

/// Record `i`, or its restated version (approved, for every [`RESTATED`]th).
fn record_as(i: u64, restated: bool) -> Record {
    let t0: DateTime<Utc> = "2026-01-01T00:00:00Z".parse().unwrap();
    Record::Conversion(Conversion {
        source: "bench".into(),
        external_id: external_id(i),
        order_id: Some(format!("ord-{:09}", i * 7 % 1_000_003)),
        click_id: Some(format!("clk-{i:x}")),
        clicked_at: None,
        partner_id: format!("p{}", i % 500),
        partner_name: Some(format!("Partner {}", i % 500)),
        campaign_id: Some(format!("c{}", i % 40)),
        event_type: EventType::Sale,
        occurred_at: t0 + Duration::seconds((i * 31) as i64),
        sale_amount: Some(Money::from_minor((i % 50_000) as i64 + 100, "USD")),
        commission: Some(Money::from_minor((i % 5_000) as i64 + 10, "USD")),
        status: if restated && i.is_multiple_of(RESTATED) {
            ConversionStatus::Approved
        } else {
            ConversionStatus::Pending
        },
        status_changed_at: None,
        locked_at: None,
        coupon: None,
        utm: Utm::default(),
    })
}

/// One page as the host receives it from a plugin: JSON per record.
fn page_json(page: u64, restated: bool) -> Vec<Vec<u8>> {
    (page * PAGE as u64..(page + 1) * PAGE as u64)
        .map(|i| serde_json::to_vec(&record_as(i, restated)).unwrap())
        .collect()
}

fn validate(r: &Record) -> Result<(), String> {
    if r.key().is_empty() {
        return Err("empty key".into());
    }
    if let Record::Conversion(c) = r {
        for m in [&c.sale_amount, &c.commission].into_iter().flatten() {
            if m.currency.len() != 3 || !m.currency.bytes().all(|b| b.is_ascii_uppercase()) {
                return Err(format!("bad currency {}", m.currency));
            }
        }
    }
    Ok(())
}

fn rate(n: u64, micros: u128) -> u64 {
    (u128::from(n) * 1_000_000 / micros.max(1)) as u64
}

fn vm_hwm_kb() -> u64 {
    std::fs::read_to_string("/proc/self/status")
        .ok()
        .and_then(|s| {
            s.lines()
                .find(|l| l.starts_with("VmHWM:"))
                .and_then(|l| l.split_whitespace().nth(1).and_then(|v| v.parse().ok()))
        })
        .unwrap_or(0)
}

fn cpu_ticks() -> u64 {
    let s = std::fs::read_to_string("/proc/self/stat").unwrap_or_default();
    let after = s.rsplit(')').next().unwrap_or("");
    let f: Vec<&str> = after.split_whitespace().collect();
    // fields after ')' start at index 2 (state); utime = 14th overall → f[11], stime f[12]
    f.get(11).and_then(|v| v.parse::<u64>().ok()).unwrap_or(0)
        + f.get(12).and_then(|v| v.parse::<u64>().ok()).unwrap_or(0)
}

/// CPU time of the calling thread in ns (`/proc/thread-self/schedstat`):
/// on a shared, oversubscribed machine wall-clock rates measure the queue,
/// so rates per CPU-second of the ingesting thread are reported too.
fn thread_cpu_ns() -> u64 {
    std::fs::read_to_string("/proc/thread-self/schedstat")
        .ok()
        .and_then(|s| s.split_whitespace().next().and_then(|v| v.parse().ok()))
        .unwrap_or(0)
}

fn dir_size(p: &std::path::Path) -> u64 {
    let mut n = 0;
    if let Ok(rd) = std::fs::read_dir(p) {
        for e in rd.flatten() {
            let m = e.metadata().unwrap();
            n += if m.is_dir() {
                dir_size(&e.path())
            } else {
                m.len()
            };
        }
    }
    n
}

fn main() {
    let n: u64 = std::env::var("RECKON_BENCH_RECORDS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(1_000_000);
    let pages = n / PAGE as u64;
    let n = pages * PAGE as u64;
    let args: Vec<String> = std::env::args().collect();
    match args
        .iter()
        .position(|a| a == "--phase")
        .map(|i| args[i + 1].as_str())
    {
        Some("reckon") => return reckon_phase(n, pages),
        Some("raw") => return raw_phase(n, pages),
        Some("migrate") => return migrate_phase(n, pages),
        _ => {}
    }
    println!("store_ingest: {n} conversion records, {pages} pages of {PAGE}");
    // Each side runs in a fresh child process, so neither inherits the
    // other's warmed-up heap and page cache of freed memory.
    let child = |phase: &str| -> u64 {
        let out = std::process::Command::new(std::env::current_exe().unwrap())
            .args(["--phase", phase])
            .output()
            .expect("run bench phase");
        print!("{}", String::from_utf8_lossy(&out.stdout));
        assert!(
            out.status.success(),
            "phase {phase} failed: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        String::from_utf8_lossy(&out.stdout)
            .lines()
            .find_map(|l| l.strip_prefix("RATE "))
            .and_then(|v| v.trim().parse().ok())
            .unwrap_or(0)
    };
    let raw_rate = child("raw");
    let reckon_rate = child("reckon");
    println!(
        "reckon / raw sled: {}% wall clock (goal >= 90%)",
        u128::from(reckon_rate) * 100 / u128::from(raw_rate.max(1)),
    );
    child("migrate");

    // 4. Idle scheduler with 50 connectors.
    let idle_secs: u64 = std::env::var("RECKON_BENCH_IDLE_SECS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(20);
    if idle_secs > 0 {
        let tmp = tempfile::tempdir().unwrap();
        idle_cpu(tmp.path(), idle_secs);
    }
}

fn reckon_phase(n: u64, pages: u64) {
    let tmp = tempfile::tempdir().unwrap();
    let now = Utc::now();

    // 1. Reckon ingest, as a sync does it: the host decodes and validates a
    // page, hands it to the store writer thread (`PageWriter`, the one
    // `reckon sync` uses) and decodes the next while the store writes.
    // Test data is generated in chunks of pages between timed sections
    // (the writer is drained first, so no store work hides in them).
    let store = Store::open(&tmp.path().join("reckon")).unwrap();
    let cpu0 = cpu_ticks();
    let mut gen_us = 0u128;
    let mut logical: u64 = 0;
    let (timed, decode_us, cpu_ns) = ingest(
        &store,
        pages,
        now,
        &mut gen_us,
        false,
        |stats| assert_eq!(stats.new, PAGE as u64),
        Some(&mut logical),
    );
    let reckon_rate = rate(n, timed);
    let reckon_cpu_rate = rate(n, u128::from(cpu_ns / 1000));
    println!(
        "reckon ingest, per CPU-second (ingesting thread + store writer thread): {reckon_cpu_rate} rec/s ({} ms CPU)",
        cpu_ns / 1_000_000
    );
    println!(
        "reckon ingest:   {:>8} ms  {:>9} rec/s  (of which decode+validate {} ms on the ingesting thread, overlapped with the writes)",
        timed / 1000,
        reckon_rate,
        decode_us / 1000,
    );
    let seq = store.last_seq().unwrap();
    let cpu_ingest = cpu_ticks() - cpu0;
    println!(
        "  process CPU during ingest: {} ms (incl. ~{} ms generating test data, not timed above)",
        cpu_ingest * 10,
        gen_us / 1000
    );
    let cpu1 = cpu_ticks();

    // 2. Re-pull, unchanged.
    let mut gen2 = 0u128;
    let (timed2, _, cpu2_ns) = ingest(
        &store,
        pages,
        now,
        &mut gen2,
        false,
        |stats| assert_eq!(stats.unchanged, PAGE as u64),
        None,
    );
    store.flush().unwrap();
    assert_eq!(
        store.last_seq().unwrap(),
        seq,
        "a re-pull must write no record"
    );
    let repull_rate = rate(n, timed2);
    println!(
        "reckon re-pull, per CPU-second (both threads): {} rec/s ({} ms CPU)",
        rate(n, u128::from(cpu2_ns / 1000)),
        cpu2_ns / 1_000_000
    );
    println!(
        "  process CPU during re-pull: {} ms (incl. data generation)",
        (cpu_ticks() - cpu1) * 10
    );
    println!(
        "reckon re-pull:  {:>8} ms  {:>9} rec/s (unchanged, change seq stayed {seq})",
        timed2 / 1000,
        repull_rate
    );
    let on_disk = store.size_on_disk().unwrap();
    let on_disk_files = dir_size(&tmp.path().join("reckon"));
    let hwm = vm_hwm_kb();
    println!(
        "bytes on disk after ingest + re-pull: {on_disk} (sled size_on_disk), {on_disk_files} (files); logical {logical}; ratio {}.{:02}x",
        on_disk_files / logical.max(1),
        on_disk_files * 100 / logical.max(1) % 100
    );
    println!("peak RSS (VmHWM) after ingest + re-pull: {} MB", hwm / 1024);

    // 2b. A restatement: the same pages again, one record in RESTATED
    // changed (status), spread evenly. Each change keeps a revision, and
    // rewrites the block that holds the record.
    let mut gen3 = 0u128;
    let (timed3, _, _) = ingest(
        &store,
        pages,
        now,
        &mut gen3,
        true,
        |stats| assert_eq!(stats.changed, PAGE as u64 / RESTATED),
        None,
    );
    let after = dir_size(&tmp.path().join("reckon"));
    println!(
        "reckon restatement re-pull ({}% changed): {:>8} ms  {:>9} rec/s; {} changed; disk {} -> {} bytes",
        100 / RESTATED,
        timed3 / 1000,
        rate(n, timed3),
        store.last_seq().unwrap() - seq,
        on_disk_files,
        after
    );
    println!("RATE {reckon_rate}");
}

fn raw_phase(n: u64, pages: u64) {
    let tmp = tempfile::tempdir().unwrap();
    // 3. Raw sled apply_batch of the same keys and values.
    let db = sled::Config::new()
        .path(tmp.path().join("raw"))
        .cache_capacity(64 * 1024 * 1024)
        .mode(sled::Mode::HighThroughput)
        .open()
        .unwrap();
    let tree = db.open_tree("data").unwrap();
    let mut timed3 = 0u128;
    let mut cpu_raw = 0u64;
    let mut cpu3_ns = 0u64;
    for p in 0..pages {
        // Keys and values encoded untimed; building the `sled::Batch` from
        // them (copying into sled's buffers) and applying it are timed: any
        // sled writer pays both.
        let page: Vec<(Vec<u8>, Vec<u8>)> = (p * PAGE as u64..(p + 1) * PAGE as u64)
            .map(|i| {
                let r = record(i);
                let body = reckon::store::codec::encode_record_body(&r);
                (
                    reckon::store::record_key(
                        plugin_api::RecordKind::Conversion,
                        "bench",
                        &r.key(),
                    ),
                    reckon::store::codec::encode_stored(1, i + 1, 0, 0, &body),
                )
            })
            .collect();
        let c = cpu_ticks();
        let ct = thread_cpu_ns();
        let t = Instant::now();
        let mut batch = sled::Batch::default();
        for (k, v) in &page {
            batch.insert(k.as_slice(), v.as_slice());
        }
        tree.apply_batch(batch).unwrap();
        timed3 += t.elapsed().as_micros();
        cpu3_ns += thread_cpu_ns() - ct;
        cpu_raw += cpu_ticks() - c;
    }
    let c = cpu_ticks();
    let ct = thread_cpu_ns();
    let t = Instant::now();
    db.flush().unwrap();
    timed3 += t.elapsed().as_micros();
    cpu3_ns += thread_cpu_ns() - ct;
    cpu_raw += cpu_ticks() - c;
    let raw_cpu_rate = rate(n, u128::from(cpu3_ns / 1000));
    println!(
        "raw sled, per CPU-second of the ingesting thread: {raw_cpu_rate} rec/s ({} ms CPU)",
        cpu3_ns / 1_000_000
    );
    println!(
        "  process CPU during raw apply_batch + flush: {} ms",
        cpu_raw * 10
    );
    let raw_rate = rate(n, timed3);
    println!(
        "raw sled batch:  {:>8} ms  {:>9} rec/s",
        timed3 / 1000,
        raw_rate
    );
    println!("RATE {raw_rate}");
    drop(tree);
    drop(db);
}

/// The upgrade from schema 2: the same records written as a schema-2 store
/// holds them (one `r` key per record, the raw phase's keys and values),
/// then `Store::open` regroups them into blocks.
fn migrate_phase(n: u64, pages: u64) {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path().join("v2");
    {
        let db = sled::open(dir.join("store")).unwrap();
        let data = db.open_tree("data").unwrap();
        for p in 0..pages {
            let mut batch = sled::Batch::default();
            for i in p * PAGE as u64..(p + 1) * PAGE as u64 {
                let r = record(i);
                let body = reckon::store::codec::encode_record_body(&r);
                batch.insert(
                    reckon::store::record_key(
                        plugin_api::RecordKind::Conversion,
                        "bench",
                        &r.key(),
                    ),
                    reckon::store::codec::encode_stored(1, i + 1, 0, 0, &body),
                );
            }
            data.apply_batch(batch).unwrap();
        }
        db.open_tree("meta")
            .unwrap()
            .insert("schema_version", &2u32.to_be_bytes())
            .unwrap();
        db.flush().unwrap();
    }
    let t = Instant::now();
    let store = Store::open(&dir).unwrap();
    let took = t.elapsed();
    assert_eq!(
        store.schema_version().unwrap(),
        reckon::store::SCHEMA_VERSION
    );
    assert_eq!(
        store
            .scan_records(plugin_api::RecordKind::Conversion, None)
            .count() as u64,
        n
    );
    println!(
        "schema 2 -> 3 migration at open: {} ms for {n} records ({} rec/s)",
        took.as_millis(),
        rate(n, took.as_micros())
    );
}

/// Pages generated per untimed chunk (~9 MB of JSON).
const CHUNK: u64 = 20;

/// Runs the ingest path over every page; returns (timed µs, decode µs,
/// CPU ns of the ingesting and writer threads). Includes the final flush.
fn ingest(
    store: &Store,
    pages: u64,
    now: DateTime<Utc>,
    gen_us: &mut u128,
    restated: bool,
    check: impl Fn(&reckon::store::CommitStats),
    mut logical: Option<&mut u64>,
) -> (u128, u128, u64) {
    let mut writer = PageWriter::new(store.clone(), 1).unwrap();
    let (mut timed, mut decode_us, mut cpu_ns) = (0u128, 0u128, 0u64);
    let mut p = 0;
    while p < pages {
        let tg = Instant::now();
        let chunk: Vec<Vec<Vec<u8>>> = (p..(p + CHUNK).min(pages))
            .map(|p| page_json(p, restated))
            .collect();
        *gen_us += tg.elapsed().as_micros();
        let c = thread_cpu_ns();
        let w0 = writer_cpu_ns();
        let t = Instant::now();
        for raw in &chunk {
            let td = Instant::now();
            let mut recs = Vec::with_capacity(PAGE);
            for bytes in raw {
                let r: Record = serde_json::from_slice(bytes).unwrap();
                validate(&r).unwrap();
                recs.push(r);
            }
            decode_us += td.elapsed().as_micros();
            if let Some(l) = logical.as_deref_mut() {
                for (r, b) in recs.iter().zip(raw) {
                    *l += (r.key().len() + "bench/".len() + b.len()) as u64;
                }
            }
            let cp = Checkpoint {
                stream: "conversions".into(),
                watermark: now,
                state: serde_json::json!({ "page": p }),
                covers: None,
            };
            p += 1;
            for done in writer.submit("bench", recs, Some(cp), now).unwrap() {
                check(&done.stats);
            }
        }
        for done in writer.drain().unwrap() {
            check(&done.stats);
        }
        if p == pages {
            store.flush().unwrap();
        }
        timed += t.elapsed().as_micros();
        cpu_ns += thread_cpu_ns() - c + (writer_cpu_ns() - w0);
    }
    (timed, decode_us, cpu_ns)
}

/// CPU time of the store writer thread(s) in ns.
fn writer_cpu_ns() -> u64 {
    let mut total = 0;
    if let Ok(rd) = std::fs::read_dir("/proc/self/task") {
        for e in rd.flatten() {
            let comm = std::fs::read_to_string(e.path().join("comm")).unwrap_or_default();
            if comm.trim().starts_with("reckon-store") {
                total += std::fs::read_to_string(e.path().join("schedstat"))
                    .ok()
                    .and_then(|s| {
                        s.split_whitespace()
                            .next()
                            .and_then(|v| v.parse::<u64>().ok())
                    })
                    .unwrap_or(0);
            }
        }
    }
    total
}

fn idle_cpu(dir: &std::path::Path, secs: u64) {
    let mut text = String::from("[daemon]\nlisten = \"127.0.0.1:0\"\n");
    for i in 0..50 {
        text.push_str(&format!(
            "[[connectors]]\nid = \"c{i}\"\nplugin = \"example\"\nschedule = \"{} {} * * *\"\ntimezone = \"Europe/Berlin\"\n[connectors.settings]\napi_key = {{ secret = \"env:X\" }}\n",
            i % 60,
            (i / 60 + 3) % 24
        ));
    }
    let cfg = reckon::config::parse(&text, &dir.join("idle.toml").display().to_string()).unwrap();
    let loader = |d: &std::path::Path, _: &str, _: Option<&str>| {
        Ok(std::sync::Arc::new(reckon::plugins::Plugin::from_manifest(
            d.join("example.so"),
            reckon_plugin_example::Example::manifest(),
        )))
    };
    let secrets = |_: &reckon::config::SecretRef| Ok("x".to_string());
    let connectors = reckon::config::resolve(&cfg, &loader, &secrets).unwrap();
    let store = Store::open(&dir.join("idle")).unwrap();
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap();
    let path = dir.join("idle.toml");
    let listener = reckon::schedule::bind_listener(&path, cfg.daemon.listen).unwrap();
    rt.spawn(reckon::schedule::run_daemon(
        path,
        reckon::schedule::Runtime {
            config: cfg,
            connectors,
            fx_fingerprint: None,
            status_token: None,
        },
        store,
        listener,
        None,
    ));
    std::thread::sleep(std::time::Duration::from_secs(2));
    let c0 = cpu_ticks();
    let t = Instant::now();
    std::thread::sleep(std::time::Duration::from_secs(secs));
    let ticks = cpu_ticks() - c0;
    let wall_ms = t.elapsed().as_millis() as u64;
    // ticks are 1/100 s on Linux.
    let cpu_ms = ticks * 10;
    println!(
        "idle `reckon run` scheduler, 50 connectors, {secs} s: {cpu_ms} ms CPU = {}.{:02}% of one core",
        cpu_ms * 100 / wall_ms.max(1),
        cpu_ms * 10_000 / wall_ms.max(1) % 100
    );
}
