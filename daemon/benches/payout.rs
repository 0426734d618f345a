//! Benchmark: draft statements for 10k partners and 1M payable lines.
//!
//! Builds 1,000,000 payable decisions (100 per partner, sales under a
//! percent rule and leads under a flat rule, one partner group with a tiered
//! rule, a bonus) in memory, then times `payout::generate` for one month:
//! every partner's JSON, CSV and HTML plus `summary.csv`, each file fsynced.
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
id = "top-tiered"
effective_from = "2026-01-01"
groups = ["top"]
kind = "tiered"
tier_mode = "marginal"
tiers = [{ from_volume = "0", percent = "8" }, { from_volume = "5000", percent = "10" }]
[[rules]]
id = "lead"
effective_from = "2026-01-01"
event_types = ["lead"]
kind = "flat"
amount = "1.50"
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

fn main() {
    let partners: usize = std::env::var("PAYOUT_BENCH_PARTNERS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(10_000);
    let per_partner = 100usize;
    let config: CommissionConfig = toml::from_str(CONFIG).expect("bench config");
    let t0 = Instant::now();
    let base = Utc.with_ymd_and_hms(2026, 11, 1, 0, 0, 0).unwrap();
    let decided = Utc.with_ymd_and_hms(2026, 12, 2, 0, 0, 0).unwrap();
    let mut decisions = Vec::with_capacity(partners * per_partner);
    let mut seed: u64 = 0x9e3779b97f4a7c15;
    for p in 0..partners {
        let partner = format!("partner-{p:05}");
        for i in 0..per_partner {
            seed ^= seed << 13;
            seed ^= seed >> 7;
            seed ^= seed << 17;
            let lead = seed % 10 == 0;
            let cents = (seed >> 8) % 50_000 + 100;
            let at = base + chrono::Duration::seconds(((seed >> 20) % (29 * 86_400)) as i64);
            let id = format!("{p}-{i}");
            let amount = (!lead).then(|| Money::new(Decimal::new(cents as i64, 2), "EUR"));
            decisions.push(Decision {
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
                decided_at: decided,
                order_fx_rate: None,
                inputs: Default::default(),
            });
        }
    }
    let built = t0.elapsed();
    let rss_after_build = peak_rss_kib();
    let tmp = tempfile::tempdir().expect("tempdir");
    let book = MemoryBook::new();
    let fx: BTreeMap<(String, String, chrono::NaiveDate), Decimal> = BTreeMap::new();
    let inputs = reckon::payout::Inputs {
        program: "bench",
        config: &config,
        decisions: &decisions,
        fx: &fx,
        book: &book,
        output_dir: tmp.path(),
        step: &|_| {},
    };
    let t1 = Instant::now();
    let report = reckon::payout::generate(&inputs, "2026-11").expect("generate");
    let gen = t1.elapsed();
    let bytes: u64 = std::fs::read_dir(&report.dir)
        .map(|rd| {
            rd.filter_map(|e| e.ok()?.metadata().ok())
                .map(|m| m.len())
                .sum()
        })
        .unwrap_or(0);
    println!(
        "payout bench: {partners} partners, {} decisions",
        decisions.len()
    );
    println!(
        "  build decisions in memory: {:.2?} (peak RSS so far {} MiB)",
        built,
        rss_after_build / 1024
    );
    println!(
        "  generate drafts: {:.2?} for {} statements, {} lines, {} files, {} MiB written",
        gen,
        report.partners,
        report.lines,
        report.partners * 3 + 1,
        bytes / (1024 * 1024)
    );
    println!(
        "  total payable {} EUR, carried {} EUR",
        report.total_payable, report.carried_out
    );
    println!("  peak RSS (VmHWM): {} MiB", peak_rss_kib() / 1024);
}
