//! Benchmark: draft statements for 10k partners and 1M payable lines.
//!
//! 1,000,000 payable decisions (100 per partner, sales under a percent rule
//! with a cap, leads under a flat rule, one partner group with marginal
//! tiers, a bonus). Times drafts for one month: every partner's JSON, CSV and
//! HTML plus `summary.csv`, made durable. The time includes producing the
//! decisions in `partitioned` mode (default), not in `slice` mode.
//! Prints wall time and peak RSS (VmHWM). Targets: ≤ 20 s, ≤ 1 GB.
//!
//! Run: `cargo bench -p reckon --bench payout` (optionally
//! `PAYOUT_BENCH_PARTNERS=1000` for a smaller run).
use chrono::{TimeZone, Utc};
use plugin_api::{EventType, Money};
use reckon::payout::book::MemoryBook;
use reckon::payout::config::CommissionConfig;
use reckon::reconcile::model::{Decision, MatchedBy, Outcome, RecordRef};
use rust_decimal::Decimal;
use std::collections::BTreeMap;
use std::time::Instant;

const CONFIG: &str = r#"
payout_currency = "EUR"
minimum_payout = "50.00"
[partner_groups]
top = ["partner-00001", "partner-00002", "partner-00003"]
[[rules]]
id = "lead"
effective_from = "2026-01-01"
event_types = ["lead"]
kind = "flat"
amount = "1.50"
[[rules]]
id = "top-tiered"
effective_from = "2026-01-01"
groups = ["top"]
kind = "tiered"
tier_mode = "marginal"
tiers = [{ from_volume = "0", percent = "8" }, { from_volume = "5000", percent = "10" }]
[[rules]]
id = "cps"
effective_from = "2026-01-01"
kind = "percent"
percent = "7.5"
cap_per_period = "100000"
[[bonuses]]
id = "volume-10k"
effective_from = "2026-01-01"
threshold_volume = "10000"
amount = "25"
"#;

fn peak_rss_kib() -> u64 {
    std::fs::read_to_string("/proc/self/status")
        .ok()
        .and_then(|s| {
            s.lines()
                .find(|l| l.starts_with("VmHWM:"))
                .and_then(|l| l.split_whitespace().nth(1).and_then(|v| v.parse().ok()))
        })
        .unwrap_or(0)
}

struct Gen {
    seed: u64,
    base: chrono::DateTime<Utc>,
    decided: chrono::DateTime<Utc>,
}

impl Gen {
    fn partner(&mut self, p: usize, per_partner: usize) -> Vec<Decision> {
        let partner = format!("partner-{p:05}");
        let mut v = Vec::with_capacity(per_partner);
        for i in 0..per_partner {
            self.seed ^= self.seed << 13;
            self.seed ^= self.seed >> 7;
            self.seed ^= self.seed << 17;
            let seed = self.seed;
            let lead = seed.is_multiple_of(10);
            let cents = (seed >> 8) % 50_000 + 100;
            let at = self.base + chrono::Duration::seconds(((seed >> 20) % (29 * 86_400)) as i64);
            let id = format!("{p}-{i}");
            let amount = (!lead).then(|| Money::new(Decimal::new(cents as i64, 2), "EUR"));
            v.push(Decision {
                program: "bench".into(),
                claim: RecordRef {
                    source: "awin".into(),
                    id: id.clone(),
                    revision: 1,
                },
                partner_id: partner.clone(),
                partner_name: Some(format!("Partner {p}")),
                event_type: if lead {
                    EventType::Lead
                } else {
                    EventType::Sale
                },
                occurred_at: at,
                order: Some(RecordRef {
                    source: "shop".into(),
                    id: format!("O-{id}"),
                    revision: 1,
                }),
                matched_by: Some(MatchedBy::OrderId),
                outcome: Outcome::Matched,
                payable: true,
                lock_at: Some(at),
                basis: amount.clone(),
                claimed_amount: amount,
                order_amount: None,
                refunded_amount: None,
                network_commission: None,
                fx_rate: None,
                winner: None,
                reason: "order id matches".into(),
                decided_at: self.decided,
                order_fx_rate: None,
                inputs: Default::default(),
            });
        }
        v
    }
}

fn main() {
    let partners: usize = std::env::var("PAYOUT_BENCH_PARTNERS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(10_000);
    // `partitioned` (default): decisions are produced partner by partner, as
    // a store scan by partner would; `slice`: all 1M decisions in one Vec
    // (what `reconcile::load_decisions` returns today).
    let mode = std::env::var("PAYOUT_BENCH_MODE").unwrap_or_else(|_| "partitioned".into());
    let per_partner = 100usize;
    let config: CommissionConfig = toml::from_str(CONFIG).expect("bench config");
    let mut gen = Gen {
        seed: 0x9e3779b97f4a7c15,
        base: Utc.with_ymd_and_hms(2026, 11, 1, 0, 0, 0).unwrap(),
        decided: Utc.with_ymd_and_hms(2026, 12, 2, 0, 0, 0).unwrap(),
    };
    // PAYOUT_BENCH_DIR: where to write (default: a temp dir under $TMPDIR).
    let tmp = match std::env::var("PAYOUT_BENCH_DIR") {
        Ok(d) => tempfile::tempdir_in(d).expect("tempdir"),
        Err(_) => tempfile::tempdir().expect("tempdir"),
    };
    let steps = std::cell::RefCell::new(Vec::new());
    let step = |name: &str| steps.borrow_mut().push((name.to_string(), Instant::now()));
    let book = MemoryBook::new();
    let fx: BTreeMap<(String, String, chrono::NaiveDate), Decimal> = BTreeMap::new();
    let mut all = Vec::new();
    let t0 = Instant::now();
    if mode == "slice" {
        all.reserve(partners * per_partner);
        for p in 0..partners {
            all.extend(gen.partner(p, per_partner));
        }
        println!(
            "  built {} decisions in memory in {:.2?} (peak RSS so far {} MiB)",
            all.len(),
            t0.elapsed(),
            peak_rss_kib() / 1024
        );
    }
    let inputs = reckon::payout::Inputs {
        program: "bench",
        config: &config,
        decisions: reckon::payout::Decisions::Slice(&all),
        fx: &fx,
        book: &book,
        output_dir: tmp.path(),
        step: &step,
    };
    let t1 = Instant::now();
    let report = if mode == "slice" {
        reckon::payout::generate(&inputs, "2026-11").expect("generate")
    } else {
        let mut parts = (0..partners)
            .map(|p| Ok((format!("awin:partner-{p:05}"), gen.partner(p, per_partner))));
        reckon::payout::generate_partitioned(&inputs, "2026-11", Some("EUR".into()), &mut parts)
            .expect("generate")
    };
    let gen_time = t1.elapsed();
    let bytes: u64 = std::fs::read_dir(&report.dir)
        .map(|rd| {
            rd.filter_map(|e| e.ok()?.metadata().ok())
                .map(|m| m.len())
                .sum()
        })
        .unwrap_or(0);
    println!("payout bench ({mode}): {partners} partners x {per_partner} payable decisions");
    println!(
        "  generate drafts (JSON + CSV + HTML + summary.csv, durable): {:.2?} for {} statements, {} lines, {} files, {} MiB",
        gen_time,
        report.partners,
        report.lines,
        report.partners * 3 + 1,
        bytes / (1024 * 1024)
    );
    println!(
        "  total payable {} EUR, carried {} EUR",
        report.total_payable, report.carried_out
    );
    let mut prev = t1;
    let timeline: Vec<String> = steps
        .borrow()
        .iter()
        .map(|(n, t)| {
            let s = format!("{n} +{:.2?}", t.duration_since(prev));
            prev = *t;
            s
        })
        .collect();
    println!("  steps: {}", timeline.join(", "));
    println!(
        "  skipped claims: {} {:?}",
        report.skipped.len(),
        report.skipped.first().map(|s| &s.reason)
    );
    println!("  peak RSS (VmHWM): {} MiB", peak_rss_kib() / 1024);
    // PAYOUT_BENCH_NEXT=1: finalise the month, restate one claim in ten
    // (basis -20 %), and time the next month's drafts: every paid claim's
    // statement is repriced to find the adjustments (partitioned mode).
    if std::env::var("PAYOUT_BENCH_NEXT").is_ok_and(|v| v == "1") && mode != "slice" {
        let seed = 0x9e3779b97f4a7c15;
        let (base, decided) = (gen.base, gen.decided);
        // Produced partner by partner, as a store scan would (never all
        // 1M decisions at once).
        let parts = |restate: bool| {
            let mut g = Gen {
                seed,
                base,
                decided,
            };
            (0..partners).map(move |p| {
                let mut ds = g.partner(p, per_partner);
                if restate {
                    for d in ds.iter_mut().step_by(10) {
                        if let Some(b) = &mut d.basis {
                            b.amount = (b.amount * Decimal::new(8, 1)).round_dp(2);
                            d.outcome = Outcome::PartiallyRefunded;
                        }
                    }
                }
                Ok((format!("awin:partner-{p:05}"), ds))
            })
        };
        let t = Instant::now();
        reckon::payout::finalize_partitioned(
            &inputs,
            "2026-11",
            Some("EUR".into()),
            &mut parts(false),
        )
        .expect("finalize");
        println!(
            "  finalize 2026-11: {:.2?}; peak RSS so far {} MiB (the in-memory book holds the ledger and every statement)",
            t.elapsed(),
            peak_rss_kib() / 1024
        );
        let t = Instant::now();
        let next = reckon::payout::generate_partitioned(
            &inputs,
            "2026-12",
            Some("EUR".into()),
            &mut parts(true),
        )
        .expect("generate next");
        println!(
            "  next month's drafts, {} paid claims repriced: {:.2?}, {} adjustments, {} lines; peak RSS {} MiB",
            partners * per_partner,
            t.elapsed(),
            next.adjustments,
            next.lines,
            peak_rss_kib() / 1024
        );
    }
    // Removing the files (slow on a busy disk) is not part of the timing.
    drop(tmp);
}
