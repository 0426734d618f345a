//! Reconciliation benchmark (harness = false). One run prints a table:
//!
//! (a) the in-memory matching core (normalised order-id hash join with the
//!     amount tolerance, `reconcile::join`'s radix-partitioned join, 2
//!     threads, and 1 for reference)
//!     against DuckDB (Python wheel, 2 threads) running the same matching as
//!     SQL on the same seeded data, at 1M and 5M claims × orders; both print
//!     the checksum (matched count, matched sum in minor units).
//! (b) end to end from the sled store, writing decisions durably:
//!     `reconcile::run` on 1M orders × 1.1M claims (10 % duplicates, 5 %
//!     refunds, 3 % mismatches, 1 % reversals, 1 % ghosts), its time and the
//!     child process's peak RSS; DuckDB recomputing every decision on the
//!     same data (outcome counts compared), in memory and into a database
//!     file it commits and checkpoints (the like-for-like of a durable write).
//! (b') a rerun with no new data; (b'') `load_decisions` reading every
//!     decision back, as payout and kpi do; (b''') the same decisions judged
//!     in memory as `reconcile report --as-of` does.
//! (c) an incremental run after 10k claims changed, against (b)'s DuckDB
//!     full recomputes (in memory, and durable), in a fresh process (cold
//!     store cache); (c') the same as the daemon runs it: 10k other claims
//!     committed, then the run, in one process whose store cache is warm;
//!     once with the default cache (64 MiB), once with `[daemon]
//!     store_cache_mb` holding the whole store, warmed as `reckon run` warms it.
//!
//! Phases that need their own peak RSS run in child processes of this
//! binary (`--phase ...`; with `RUST_LOG=reckon=debug` a phase run by hand
//! logs where an incremental run's time goes). Usage:
//! `cargo bench -p reckon --bench reconcile -- [--sizes 1000000,5000000] [--e2e 1000000] [--skip-duckdb]`
//! Data goes to `target/reconcile-bench/`.

// Timings and ratios are floats; no money is computed here.
#![allow(clippy::float_arithmetic)]

use chrono::Utc;
use reckon::fx::FxTable;
use reckon::reconcile::config::ProgramConfig;
use reckon::reconcile::join;
use reckon::reconcile::synth::{self, SplitMix64, SynthSpec};
use reckon::store::Store;
use std::io::Write as _;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Instant;

fn arg(args: &[String], name: &str) -> Option<String> {
    args.iter()
        .position(|a| a == name)
        .and_then(|i| args.get(i + 1).cloned())
}

fn bench_dir() -> PathBuf {
    let exe = std::env::current_exe().expect("bench exe");
    // target/release/deps/reconcile-xxxx → target/
    let target = exe
        .ancestors()
        .find(|p| p.file_name().is_some_and(|n| n == "target"))
        .map(Path::to_path_buf)
        .unwrap_or_else(|| PathBuf::from("target"));
    target.join("reconcile-bench")
}

fn workspace_root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .expect("workspace root")
        .to_path_buf()
}

fn peak_rss_mib() -> u64 {
    std::fs::read_to_string("/proc/self/status")
        .ok()
        .and_then(|s| {
            s.lines()
                .find(|l| l.starts_with("VmHWM:"))
                .and_then(|l| l.split_whitespace().nth(1).map(str::to_owned))
        })
        .and_then(|kb| kb.parse::<u64>().ok())
        .map_or(0, |kb| kb / 1024)
}

// ---------------------------------------------------------------- (a) core

struct CoreData {
    claim_ids: Vec<String>,
    claim_cents: Vec<i64>,
    order_ids: Vec<String>,
    order_cents: Vec<i64>,
}

/// n orders, n claims: 90 % quote an existing order (a random one, so some
/// orders are claimed twice and some never) with case/space variations, 10 %
/// quote an unknown id; 3 % of amounts are 20 % off.
fn core_data(n: usize, seed: u64) -> CoreData {
    let mut rng = SplitMix64(seed);
    let order_ids: Vec<String> = (0..n).map(synth::order_id).collect();
    let order_cents: Vec<i64> = (0..n).map(|_| 1_000 + rng.below(49_000) as i64).collect();
    let mut claim_ids = Vec::with_capacity(n);
    let mut claim_cents = Vec::with_capacity(n);
    for _ in 0..n {
        let r = rng.below(100);
        let i = rng.below(n as u64) as usize;
        if r < 10 {
            claim_ids.push(format!("GHOST-{i:08}"));
            claim_cents.push(order_cents[i]);
        } else {
            claim_ids.push(synth::quoted_order_id(i, rng.next_u64()));
            let c = order_cents[i];
            claim_cents.push(if r < 13 { c * 6 / 5 } else { c });
        }
    }
    CoreData {
        claim_ids,
        claim_cents,
        order_ids,
        order_cents,
    }
}

fn write_core_csv(d: &CoreData, dir: &Path, n: usize) -> (PathBuf, PathBuf) {
    let claims = dir.join(format!("core_{n}_claims.csv"));
    let orders = dir.join(format!("core_{n}_orders.csv"));
    let mut w = std::io::BufWriter::new(std::fs::File::create(&claims).expect("claims csv"));
    writeln!(w, "order_id,amount_cents").unwrap();
    for (id, c) in d.claim_ids.iter().zip(&d.claim_cents) {
        // Ids with spaces are quoted so both sides read the same bytes.
        writeln!(w, "\"{id}\",{c}").unwrap();
    }
    w.flush().unwrap();
    let mut w = std::io::BufWriter::new(std::fs::File::create(&orders).expect("orders csv"));
    writeln!(w, "order_id,amount_cents").unwrap();
    for (id, c) in d.order_ids.iter().zip(&d.order_cents) {
        writeln!(w, "\"{id}\",{c}").unwrap();
    }
    w.flush().unwrap();
    (claims, orders)
}

/// The matching core on `threads` threads: the radix-partitioned join of
/// claims' and orders' normalised ids (`reconcile::join`, each side carrying
/// its amount), keeping matches within max(50 minor units, 1 % of the order).
/// Timed from the raw columns: normalising, hashing, partitioning, building
/// and probing are all inside.
fn core_match(d: &CoreData, threads: usize) -> (u64, i64) {
    let per_thread = join::join_first(
        threads,
        d.order_ids.len(),
        |i| Some((d.order_ids[i].as_str(), d.order_cents[i])),
        d.claim_ids.len(),
        |j| Some((d.claim_ids[j].as_str(), d.claim_cents[j])),
        |acc: &mut (u64, i64), c: i64, oc: i64| {
            if (c - oc).abs() <= (oc / 100).max(50) {
                acc.0 += 1;
                acc.1 += c;
            }
        },
    );
    per_thread
        .iter()
        .fold((0, 0), |(n, s), (n2, s2)| (n + n2, s + s2))
}

#[derive(Debug, Default, Clone)]
struct DuckResult {
    seconds: f64,
    checksum: String,
}

fn duckdb(args: &[&str]) -> Option<DuckResult> {
    let script = workspace_root().join("bench/reconcile_duckdb.py");
    let out = Command::new("python3").arg(&script).args(args).output();
    let out = match out {
        Ok(o) if o.status.success() => o,
        Ok(o) => {
            eprintln!(
                "duckdb script failed: {}",
                String::from_utf8_lossy(&o.stderr)
            );
            return None;
        }
        Err(e) => {
            eprintln!("cannot run python3: {e}");
            return None;
        }
    };
    let v: serde_json::Value = serde_json::from_slice(&out.stdout).ok()?;
    Some(DuckResult {
        seconds: v["seconds"].as_f64()?,
        checksum: v["checksum"].as_str()?.to_owned(),
    })
}

// ---------------------------------------------------------------- (b)/(c)

fn program() -> ProgramConfig {
    toml::from_str(
        r#"
id = "bench"
currency = "USD"
claims = ["impact", "everflow", "awin"]
orders = ["shop"]
return_window_days = 30
no_order_grace_days = 7
[match]
amount_tolerance_abs = "0.50"
amount_tolerance_pct = "1"
"#,
    )
    .expect("bench program")
}

fn phase_prepare(dir: &Path, n: usize) {
    let _ = std::fs::remove_dir_all(dir);
    std::fs::create_dir_all(dir).unwrap();
    let spec = SynthSpec::benchmark(n, 2026);
    let data = synth::generate(&spec);
    // CSVs for DuckDB's full recompute.
    let mut w = std::io::BufWriter::new(std::fs::File::create(dir.join("claims.csv")).unwrap());
    writeln!(w, "source,external_id,order_id,t,amount_cents,status").unwrap();
    for c in &data.claims {
        let t = c.clicked_at.unwrap_or(c.occurred_at).timestamp();
        let cents = c
            .sale_amount
            .as_ref()
            .map(|m| (m.amount * rust_decimal::Decimal::ONE_HUNDRED).to_string())
            .unwrap_or_default();
        let status = match c.status {
            plugin_api::ConversionStatus::Reversed => "reversed",
            plugin_api::ConversionStatus::Rejected => "rejected",
            plugin_api::ConversionStatus::Pending => "pending",
            plugin_api::ConversionStatus::Approved => "approved",
        };
        writeln!(
            w,
            "{},{},\"{}\",{t},{},{status}",
            c.source,
            c.external_id,
            c.order_id.as_deref().unwrap_or(""),
            cents.split('.').next().unwrap_or("0")
        )
        .unwrap();
    }
    w.flush().unwrap();
    let mut w = std::io::BufWriter::new(std::fs::File::create(dir.join("orders.csv")).unwrap());
    writeln!(w, "order_id,amount_cents,refunded_cents").unwrap();
    for o in &data.orders {
        let c = |d: rust_decimal::Decimal| (d * rust_decimal::Decimal::ONE_HUNDRED).trunc();
        writeln!(
            w,
            "\"{}\",{},{}",
            o.order_id,
            c(o.amount.amount),
            c(o.refunded())
        )
        .unwrap();
    }
    w.flush().unwrap();

    let store = Store::open(&dir.join("data")).unwrap();
    let started = Instant::now();
    for net in synth::NETWORKS {
        let recs: Vec<_> = data
            .claims
            .iter()
            .filter(|c| c.source == net)
            .cloned()
            .map(plugin_api::Record::Conversion)
            .collect();
        for chunk in recs.chunks(20_000) {
            store.commit_page(net, chunk, None, spec.start).unwrap();
        }
    }
    let orders: Vec<_> = data
        .orders
        .iter()
        .cloned()
        .map(plugin_api::Record::Order)
        .collect();
    for chunk in orders.chunks(20_000) {
        store
            .commit_page(synth::SHOP, chunk, None, spec.start)
            .unwrap();
    }
    store.flush().unwrap();
    let mut expected = std::collections::BTreeMap::new();
    for (_, _, o) in &data.expected {
        *expected.entry(o.as_str()).or_insert(0u64) += 1;
    }
    println!(
        "{{\"claims\":{},\"orders\":{},\"ingest_seconds\":{:.3},\"expected\":{}}}",
        data.claims.len(),
        data.orders.len(),
        started.elapsed().as_secs_f64(),
        serde_json::to_string(&expected).unwrap()
    );
}

fn phase_run(dir: &Path, now_offset_days: i64) {
    let store = Store::open(&dir.join("data")).unwrap();
    let spec = SynthSpec::benchmark(0, 0);
    let now = spec.settled_now() + chrono::Duration::days(now_offset_days);
    let started = Instant::now();
    let summary = reckon::reconcile::run(&store, &[program()], &FxTable::empty(), now).unwrap();
    let secs = started.elapsed().as_secs_f64();
    let p = &summary.programs[0];
    let counts: std::collections::BTreeMap<&str, u64> =
        p.by_outcome.iter().map(|(o, n)| (o.as_str(), *n)).collect();
    println!(
        "{{\"seconds\":{secs:.3},\"peak_rss_mib\":{},\"full\":{},\"judged\":{},\"changed\":{},\"outcomes\":{}}}",
        peak_rss_mib(),
        p.full,
        p.claims_judged,
        p.decisions_changed,
        serde_json::to_string(&counts).unwrap()
    );
}

/// Reads every stored decision back, as payout and kpi do.
fn phase_load(dir: &Path) {
    let store = Store::open(&dir.join("data")).unwrap();
    let started = Instant::now();
    let decisions = reckon::reconcile::load_decisions(&store, &program().id).unwrap();
    let secs = started.elapsed().as_secs_f64();
    println!(
        "{{\"seconds\":{secs:.3},\"peak_rss_mib\":{},\"decisions\":{}}}",
        peak_rss_mib(),
        decisions.len()
    );
}

/// `reckon reconcile report --as-of`: every decision judged in memory as of
/// the bench's `now`, nothing stored.
fn phase_as_of(dir: &Path) {
    let store = Store::open(&dir.join("data")).unwrap();
    let now = SynthSpec::benchmark(0, 0).settled_now();
    let started = Instant::now();
    let decisions =
        reckon::reconcile::decisions_as_of(&store, &program(), &FxTable::empty(), now, |_| true)
            .unwrap();
    let secs = started.elapsed().as_secs_f64();
    println!(
        "{{\"seconds\":{secs:.3},\"peak_rss_mib\":{},\"decisions\":{}}}",
        peak_rss_mib(),
        decisions.len()
    );
}

/// `reckon statements generate` of the month holding every claim, from the
/// stored decisions: `slice` decodes them all first (as before
/// 2026-11-29), `stored` keeps the period's as stored, by payee.
fn phase_statements(dir: &Path, mode: &str) {
    use reckon::payout::{self, book::StoreBook, config::CommissionConfig, Decisions};
    let store = Store::open(&dir.join("data")).unwrap();
    let mut config: CommissionConfig = toml::from_str(
        "payout_currency = \"USD\"\n[[rules]]\nid = \"cps\"\neffective_from = \"2026-01-01\"\nkind = \"percent\"\npercent = \"8\"\n",
    )
    .unwrap();
    config = config.with_default_timezone(chrono_tz::UTC);
    let out = dir.join(format!("statements-{mode}"));
    let _ = std::fs::remove_dir_all(&out);
    let book = StoreBook::open(&store).unwrap();
    let fx = FxTable::empty();
    let program = program().id;
    let started = Instant::now();
    let (slice, source);
    let decisions = match mode {
        "slice" => {
            slice = reckon::reconcile::load_decisions(&store, &program).unwrap();
            Decisions::Slice(&slice)
        }
        _ => {
            source = payout::StoredDecisions {
                store: &store,
                program: &program,
            };
            Decisions::Source(&source)
        }
    };
    let inputs = payout::Inputs {
        program: &program,
        config: &config,
        decisions,
        fx: &fx,
        book: &book,
        output_dir: &out,
        step: &|_| {},
    };
    // Drafts are never recorded as final: both modes start from the same
    // book, and a rerun only bumps the draft version.
    let r = payout::generate(&inputs, "2027-01").unwrap();
    let secs = started.elapsed().as_secs_f64();
    println!(
        "{{\"seconds\":{secs:.3},\"peak_rss_mib\":{},\"statements\":{},\"lines\":{},\"total\":\"{}\"}}",
        peak_rss_mib(),
        r.partners,
        r.lines,
        r.total_payable
    );
    let _ = std::fs::remove_dir_all(&out);
}

/// Changes `count` claims (every n/count-th): status → reversed for half,
/// amount +20 % for the other half.
fn phase_touch(dir: &Path, count: usize) {
    let store = Store::open(&dir.join("data")).unwrap();
    let n = touch(&store, count, 0);
    println!("{{\"touched\":{n}}}");
}

/// What the daemon does: a sync commits changed claims, then reconciliation
/// runs in the same process, with the store's cache warm from earlier runs.
/// Touches `count` claims other than `phase_touch`'s (every n/count-th from
/// the `offset`-th), then times the run. With `cache_mb` (`[daemon]
/// store_cache_mb`), the store opens with that cache and is warmed as
/// `reckon run` warms it at start ([`reckon::store::Store::warm`]).
fn phase_warm(dir: &Path, count: usize, offset: usize, cache_mb: Option<u64>) {
    let path = dir.join("data");
    let store = match cache_mb {
        Some(mb) => Store::open_with_cache(&path, mb).unwrap(),
        None => Store::open(&path).unwrap(),
    };
    let spec = SynthSpec::benchmark(0, 0);
    let now = spec.settled_now();
    let run = || reckon::reconcile::run(&store, &[program()], &FxTable::empty(), now).unwrap();
    // Chosen before the warm-up, so finding them is not part of what follows.
    let picked = pick(&store, count, offset);
    run();
    let mut warm = String::new();
    if let Some(mb) = cache_mb {
        // What `reckon run` does at start with this cache.
        let budget = (mb << 20) / 100 * reckon::store::warm::WARM_SHARE;
        let started = Instant::now();
        let warmed = store.warm(budget, &Default::default()).unwrap();
        assert!(
            warmed.complete,
            "the cache is to hold the whole store: {warmed:?}"
        );
        warm = format!(
            ",\"warm_seconds\":{:.3},\"warm_mib\":{}",
            started.elapsed().as_secs_f64(),
            warmed.bytes >> 20
        );
    }
    let touched = commit(&store, picked);
    let started = Instant::now();
    let summary = run();
    let secs = started.elapsed().as_secs_f64();
    let p = &summary.programs[0];
    println!(
        "{{\"seconds\":{secs:.3},\"peak_rss_mib\":{},\"touched\":{touched},\"full\":{},\"judged\":{},\"changed\":{}{warm}}}",
        peak_rss_mib(),
        p.full, p.claims_judged, p.decisions_changed
    );
}

type Touched = std::collections::BTreeMap<&'static str, Vec<plugin_api::Record>>;

/// Changes `count` claims (every n/count-th, from the `offset`-th), commits
/// them; returns how many.
fn touch(store: &Store, count: usize, offset: usize) -> usize {
    let picked = pick(store, count, offset);
    commit(store, picked)
}

/// `count` claims changed (every n/count-th, from the `offset`-th): status
/// → reversed for half, amount +20 % for the other half. Nothing written.
fn pick(store: &Store, count: usize, offset: usize) -> Touched {
    let mut keys = Vec::new();
    for net in synth::NETWORKS {
        let n = store.count_records(plugin_api::RecordKind::Conversion, Some(net)) as usize;
        keys.extend((0..n).map(|i| (net, i)));
    }
    let step = (keys.len() / count).max(1);
    let wanted: std::collections::BTreeSet<(&str, usize)> = keys
        .into_iter()
        .skip(offset)
        .step_by(step)
        .take(count)
        .collect();
    let mut by_source = Touched::new();
    for net in synth::NETWORKS {
        let scan = store.scan_records(plugin_api::RecordKind::Conversion, Some(net));
        for (i, s) in scan.enumerate() {
            if !wanted.contains(&(net, i)) {
                continue;
            }
            let plugin_api::Record::Conversion(mut c) = s.unwrap().record else {
                continue;
            };
            if by_source.values().map(Vec::len).sum::<usize>() % 2 == 0 {
                c.status = plugin_api::ConversionStatus::Reversed;
            } else if let Some(m) = &mut c.sale_amount {
                m.amount = (m.amount * rust_decimal::Decimal::new(12, 1)).round_dp(2);
            }
            by_source
                .entry(net)
                .or_default()
                .push(plugin_api::Record::Conversion(c));
        }
    }
    by_source
}

/// Commits `touched` as a sync would, then flushes; returns how many.
fn commit(store: &Store, touched: Touched) -> usize {
    let mut n = 0;
    for (net, recs) in touched {
        n += recs.len();
        for page in recs.chunks(1000) {
            store.commit_page(net, page, None, Utc::now()).unwrap();
        }
    }
    store.flush().unwrap();
    n
}

fn child(phase: &str, extra: &[&str]) -> serde_json::Value {
    let exe = std::env::current_exe().unwrap();
    let out = Command::new(exe)
        .args(["--phase", phase])
        .args(extra)
        .output()
        .expect("run bench phase");
    if !out.status.success() {
        panic!(
            "phase {phase} failed: {}",
            String::from_utf8_lossy(&out.stderr)
        );
    }
    let text = String::from_utf8_lossy(&out.stdout);
    let line = text
        .lines()
        .rev()
        .find(|l| l.starts_with('{'))
        .unwrap_or("{}");
    serde_json::from_str(line).unwrap_or_default()
}

fn main() {
    let args: Vec<String> = std::env::args().collect();
    let dir = bench_dir();
    std::fs::create_dir_all(&dir).unwrap();
    if let Some(phase) = arg(&args, "--phase") {
        // A phase run by hand with RUST_LOG set shows the run's own logs,
        // e.g. RUST_LOG=reckon=debug for an incremental run's phase times.
        if std::env::var_os("RUST_LOG").is_some() {
            reckon::schedule::cli::init_command_logging();
        }
        let e2e = dir.join("e2e");
        match phase.as_str() {
            "prepare" => phase_prepare(&e2e, arg(&args, "--n").unwrap().parse().unwrap()),
            "run" => phase_run(&e2e, arg(&args, "--days").map_or(0, |d| d.parse().unwrap())),
            "load" => phase_load(&e2e),
            "as-of" => phase_as_of(&e2e),
            "statements" => phase_statements(&e2e, &arg(&args, "--mode").unwrap()),
            "touch" => phase_touch(&e2e, arg(&args, "--count").unwrap().parse().unwrap()),
            "warm" => phase_warm(
                &e2e,
                arg(&args, "--count").unwrap().parse().unwrap(),
                arg(&args, "--offset").map_or(1, |o| o.parse().unwrap()),
                arg(&args, "--cache-mb").map(|m| m.parse().unwrap()),
            ),
            other => panic!("unknown phase {other}"),
        }
        return;
    }
    let sizes: Vec<usize> = arg(&args, "--sizes")
        .unwrap_or_else(|| "1000000,5000000".into())
        .split(',')
        .map(|s| s.parse().expect("--sizes"))
        .collect();
    let e2e_n: usize = arg(&args, "--e2e").map_or(1_000_000, |s| s.parse().expect("--e2e"));
    let skip_duck = args.iter().any(|a| a == "--skip-duckdb");
    let mut rows: Vec<(String, String, String, String)> = Vec::new();

    // (a)
    for &n in &sizes {
        let d = core_data(n, 7 + n as u64);
        let (cpath, opath) = write_core_csv(&d, &dir, n);
        // Reckon on 2 threads (DuckDB's count), and on 1 for reference.
        let mut best = [f64::MAX; 2];
        let mut sums = [(0, 0); 2];
        for (k, threads) in [2, 1].into_iter().enumerate() {
            for _ in 0..3 {
                let t = Instant::now();
                sums[k] = std::hint::black_box(core_match(&d, threads));
                best[k] = best[k].min(t.elapsed().as_secs_f64());
            }
        }
        assert_eq!(sums[0], sums[1], "the thread count changed the result");
        let (best, best1, sum) = (best[0], best[1], sums[0]);
        drop(d);
        let ours = format!("{} / {}", sum.0, sum.1);
        let duck = if skip_duck {
            None
        } else {
            duckdb(&[
                "core",
                "--claims",
                cpath.to_str().unwrap(),
                "--orders",
                opath.to_str().unwrap(),
                "--threads",
                "2",
            ])
        };
        let (dt, dsum) = duck.as_ref().map_or(("-".into(), "-".into()), |r| {
            (format!("{:.3}", r.seconds), r.checksum.clone())
        });
        let ratio = duck
            .as_ref()
            .map_or("-".into(), |r| format!("{:.2}", best / r.seconds));
        rows.push((
            format!(
                "(a) matching core {}M × {}M: Reckon (2 threads)",
                n / 1_000_000,
                n / 1_000_000
            ),
            format!("{best:.3} s"),
            format!("checksum {ours}"),
            String::new(),
        ));
        rows.push((
            format!(
                "(a) matching core {}M × {}M: Reckon (1 thread)",
                n / 1_000_000,
                n / 1_000_000
            ),
            format!("{best1:.3} s"),
            format!("checksum {ours}"),
            duck.as_ref().map_or(String::new(), |r| {
                format!("Reckon 1 thread/DuckDB = {:.2}", best1 / r.seconds)
            }),
        ));
        rows.push((
            format!(
                "(a) matching core {}M × {}M: DuckDB (2 threads)",
                n / 1_000_000,
                n / 1_000_000
            ),
            format!("{dt} s"),
            format!(
                "checksum {dsum}{}",
                if dsum == ours {
                    " (same)"
                } else {
                    " (DIFFERS)"
                }
            ),
            format!("Reckon/DuckDB = {ratio} (goal ≤ 1)"),
        ));
        print_table(&rows);
    }

    // (b) and (c)
    if e2e_n > 0 {
        let prep = child("prepare", &["--n", &e2e_n.to_string()]);
        let full = child("run", &[]);
        let e2e = dir.join("e2e");
        let duck_full = if skip_duck {
            None
        } else {
            duckdb(&[
                "full",
                "--claims",
                e2e.join("claims.csv").to_str().unwrap(),
                "--orders",
                e2e.join("orders.csv").to_str().unwrap(),
                "--threads",
                "2",
            ])
        };
        // The like-for-like of (b)/(c)'s durable writes: the same SQL
        // against a database file, committed and checkpointed.
        let duck_durable = if skip_duck {
            None
        } else {
            duckdb(&[
                "durable",
                "--claims",
                e2e.join("claims.csv").to_str().unwrap(),
                "--orders",
                e2e.join("orders.csv").to_str().unwrap(),
                "--db",
                e2e.join("duckdb.db").to_str().unwrap(),
                "--threads",
                "2",
            ])
        };
        let ours_counts = full["outcomes"].to_string();
        rows.push((
            format!(
                "(b) end to end {} orders × {} claims, full run from the store",
                prep["orders"], prep["claims"]
            ),
            format!("{} s", full["seconds"]),
            format!(
                "peak RSS {} MiB; outcomes {ours_counts}",
                full["peak_rss_mib"]
            ),
            format!(
                "goal ≤ 15 s, ≤ 1 GB (953 MiB); expected {}",
                prep["expected"]
            ),
        ));
        if let Some(d) = &duck_full {
            rows.push((
                "(b) DuckDB recomputing every decision (2 threads)".into(),
                format!("{:.3} s", d.seconds),
                format!("outcomes {}", d.checksum),
                String::new(),
            ));
        }
        if let Some(d) = &duck_durable {
            rows.push((
                "(b) DuckDB recomputing every decision into a database file (committed, checkpointed)".into(),
                format!("{:.3} s", d.seconds),
                format!("outcomes {}", d.checksum),
                String::new(),
            ));
        }
        let again = child("run", &[]);
        rows.push((
            "(b') rerun with no new data".into(),
            format!("{} s", again["seconds"]),
            format!("judged {}, changed {}", again["judged"], again["changed"]),
            String::new(),
        ));
        let load = child("load", &[]);
        rows.push((
            "(b'') load_decisions, every decision back (payout/kpi read path)".into(),
            format!("{} s", load["seconds"]),
            format!(
                "{} decisions, peak RSS {} MiB",
                load["decisions"], load["peak_rss_mib"]
            ),
            String::new(),
        ));
        let as_of = child("as-of", &[]);
        rows.push((
            "(b''') `reconcile report --as-of`: every claim judged in memory, nothing stored"
                .into(),
            format!("{} s", as_of["seconds"]),
            format!(
                "{} decisions, peak RSS {} MiB",
                as_of["decisions"], as_of["peak_rss_mib"]
            ),
            String::new(),
        ));
        for mode in ["slice", "stored"] {
            let st = child("statements", &["--mode", mode]);
            rows.push((
                format!("(d) `statements generate` of the month, decisions read {mode}"),
                format!("{} s", st["seconds"]),
                format!(
                    "{} statements, {} lines, total {}, peak RSS {} MiB",
                    st["statements"], st["lines"], st["total"], st["peak_rss_mib"]
                ),
                String::new(),
            ));
        }
        let touched = child("touch", &["--count", "10000"]);
        let inc = child("run", &[]);
        let inc_s = inc["seconds"].as_f64().unwrap_or(f64::NAN);
        rows.push((
            format!("(c) incremental run, {} claims changed", touched["touched"]),
            format!("{inc_s:.3} s"),
            format!(
                "judged {}, changed {}, peak RSS {} MiB",
                inc["judged"], inc["changed"], inc["peak_rss_mib"]
            ),
            duck_full.as_ref().map_or("goal ≤ 1 s".into(), |d| {
                format!(
                    "goal ≤ 1 s; DuckDB full / incremental = {:.1}× (goal ≥ 10×)",
                    d.seconds / inc_s
                )
            }),
        ));
        if let Some(d) = &duck_durable {
            rows.push((
                "(c) against DuckDB's durable full recompute".into(),
                format!("{inc_s:.3} s"),
                String::new(),
                format!(
                    "DuckDB durable full / incremental = {:.1}× (goal ≥ 10×)",
                    d.seconds / inc_s
                ),
            ));
        }
        let cache = format!("{WARM_CACHE_MB}");
        for (what, extra) in [
            (
                "store cache warm (64 MiB, the default)",
                vec!["--offset", "1"],
            ),
            (
                "`store_cache_mb` holding the whole store, warmed at start",
                vec!["--offset", "2", "--cache-mb", cache.as_str()],
            ),
        ] {
            let mut args = vec!["--count", "10000"];
            args.extend(extra);
            let warm = child("warm", &args);
            let warm_s = warm["seconds"].as_f64().unwrap_or(f64::NAN);
            rows.push((
                format!(
                    "(c') the same in a running daemon: {} more claims changed, {what}",
                    warm["touched"]
                ),
                format!("{warm_s:.3} s"),
                format!(
                    "judged {}, changed {}, peak RSS {} MiB{}",
                    warm["judged"],
                    warm["changed"],
                    warm["peak_rss_mib"],
                    warm.get("warm_seconds").map_or(String::new(), |s| format!(
                        "; the start's warm-up read {} MiB in {s} s",
                        warm["warm_mib"]
                    ))
                ),
                duck_full.as_ref().map_or(String::new(), |d| {
                    let durable = duck_durable.as_ref().map_or(String::new(), |dd| {
                        format!("; durable / incremental = {:.1}×", dd.seconds / warm_s)
                    });
                    format!(
                        "DuckDB full / incremental = {:.1}×{durable}",
                        d.seconds / warm_s
                    )
                }),
            ));
        }
    }
    print_table(&rows);
}

/// The (c') daemon's `store_cache_mb` in the bench: more than the 1M × 1.1M
/// store (~1.1 GB on disk) needs.
const WARM_CACHE_MB: u64 = 4096;

fn print_table(rows: &[(String, String, String, String)]) {
    println!();
    println!("| measurement | time | result | goal / ratio |");
    println!("|---|---|---|---|");
    for (a, b, c, d) in rows {
        println!("| {a} | {b} | {c} | {d} |");
    }
}
