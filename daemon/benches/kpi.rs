//! KPI benchmark: a month of 1M spend rows and 1M orders (plus 300k claims
//! and their decisions), every single `--by` summary in every view.
//! Target: each summary ≤ 5 s. Run: `cargo bench -p reckon --bench kpi`.
//!
//! Measures the in-memory summary (indexing + grouping + rendering CSV);
//! reading the store is measured by the store's own benchmark.
// Seconds for the printed timings are floats; no money is computed in them.
#![allow(clippy::float_arithmetic)]
use std::time::Instant;

use chrono::{Duration, NaiveDate, TimeZone, Utc};
use plugin_api::{
    Channel, Conversion, ConversionStatus, EventType, Money, Order, OrderStatus, Spend, Utm,
};
use reckon::fx::FxTable;
use reckon::kpi::config::KpiConfig;
use reckon::kpi::engine::Engine;
use reckon::kpi::render::render;
use reckon::kpi::{Dim, Format, KpiContext, KpiInputs, Period, Query, ReportingZone, View};
use reckon::reconcile::model::{Decision, MatchedBy, Outcome, RecordRef};
use rust_decimal::Decimal;

/// A small deterministic generator (xorshift), so the bench needs no crate.
struct Rng(u64);
impl Rng {
    fn next(&mut self) -> u64 {
        let mut x = self.0;
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        self.0 = x;
        x
    }
    fn below(&mut self, n: u64) -> u64 {
        self.next() % n
    }
}

/// CPU seconds this process has used (user + system), from /proc; the
/// machine is shared, so wall time overstates the work when others build.
fn cpu_secs() -> f64 {
    let stat = std::fs::read_to_string("/proc/self/stat").unwrap_or_default();
    // Fields after the command name: state is field 3; utime 14, stime 15.
    let after = stat.rsplit(')').next().unwrap_or("");
    let f: Vec<&str> = after.split_whitespace().collect();
    let ticks = |i: usize| f.get(i).and_then(|x| x.parse::<f64>().ok()).unwrap_or(0.0);
    // CLK_TCK is 100 on Linux.
    (ticks(11) + ticks(12)) / 100.0
}

const SPEND_ROWS: usize = 1_000_000;
const ORDERS: usize = 1_000_000;

fn usd(cents: u64) -> Money {
    Money::new(Decimal::new(cents as i64, 2), "EUR")
}

fn generate() -> KpiInputs {
    let mut rng = Rng(0x9e37_79b9_7f4a_7c15);
    let first = NaiveDate::from_ymd_opt(2026, 11, 1).expect("date");
    let sources = [
        ("google_ads", "America/New_York", Channel::Search),
        ("meta_ads", "Europe/Berlin", Channel::Social),
        ("tiktok_ads", "UTC", Channel::Video),
    ];
    // 3 sources × 30 days × 100 campaigns × 112 ad groups ≈ 1M rows.
    let per_campaign = SPEND_ROWS / (3 * 30 * 100) + 1;
    let mut spend = Vec::with_capacity(SPEND_ROWS);
    'outer: for (src, tz, channel) in sources {
        for d in 0..30 {
            for c in 0..100 {
                for ag in 0..per_campaign {
                    if spend.len() >= SPEND_ROWS {
                        break 'outer;
                    }
                    let impressions = 100 + rng.below(10_000);
                    let clicks = impressions * rng.below(50) / 1000;
                    spend.push(Spend {
                        source: src.into(),
                        account_id: format!("{src}-1"),
                        day: first + Duration::days(d),
                        timezone: tz.into(),
                        campaign_id: format!("{src}-c{c}"),
                        campaign_name: format!("Campaign {c} of {src}"),
                        ad_group_id: Some(format!("ag{ag}")),
                        ad_group_name: None,
                        ad_id: None,
                        channel,
                        impressions,
                        clicks,
                        spend: usd(clicks * (20 + rng.below(200))),
                        platform_conversions: Some(Decimal::from(clicks / 20)),
                        platform_conversion_value: Some(usd(clicks / 20 * 9_000)),
                    });
                }
            }
        }
    }
    let start = Utc
        .with_ymd_and_hms(2026, 10, 31, 23, 0, 0)
        .single()
        .expect("start");
    let month_secs = 30 * 86_400;
    let mut orders = Vec::with_capacity(ORDERS);
    let mut claims = Vec::new();
    let mut decisions = Vec::new();
    let networks = ["awin", "impact", "everflow"];
    for i in 0..ORDERS {
        let created_at = start + Duration::seconds(rng.below(month_secs) as i64);
        let mut o = Order {
            source: "shop".into(),
            order_id: format!("O-{i}"),
            alt_ids: Vec::new(),
            created_at,
            amount: usd(2_000 + rng.below(30_000)),
            customer_id: None,
            new_customer: None,
            coupon: None,
            click_ids: Vec::new(),
            utm: Utm::default(),
            refunds: Vec::new(),
            status: OrderStatus::Paid,
        };
        let roll = rng.below(100);
        if roll < 40 {
            o.utm.source = Some("google".into());
            o.utm.campaign = Some(format!("google_ads-c{}", rng.below(100)));
        } else if roll < 55 {
            o.click_ids.push(format!("fbclid-{i}"));
            o.utm.campaign = Some(format!("Campaign {} of meta_ads", rng.below(100)));
        } else if roll < 85 {
            let net = networks[rng.below(3) as usize];
            let claim = claim(net, i, &o, &mut rng);
            decisions.push(decision(&claim, &o, Outcome::Matched));
            claims.push(claim);
            if rng.below(10) == 0 {
                let other = networks[(rng.below(2) as usize
                    + 1
                    + networks.iter().position(|n| *n == net).unwrap_or(0))
                    % 3];
                let dup = claim_for(other, i, &o, &mut rng);
                decisions.push(decision(&dup, &o, Outcome::Duplicate));
                claims.push(dup);
            }
        }
        orders.push(o);
    }
    KpiInputs {
        spend,
        claims,
        orders,
        decisions,
        reconcile_notes: Vec::new(),
        campaigns: Default::default(),
        claim_campaigns: Default::default(),
        ..Default::default()
    }
}

fn claim(net: &str, i: usize, o: &Order, rng: &mut Rng) -> Conversion {
    claim_for(net, i, o, rng)
}

fn claim_for(net: &str, i: usize, o: &Order, rng: &mut Rng) -> Conversion {
    Conversion {
        source: net.into(),
        external_id: format!("{net}-{i}"),
        order_id: Some(o.order_id.clone()),
        click_id: None,
        clicked_at: None,
        partner_id: format!("p{}", rng.below(500)),
        partner_name: None,
        campaign_id: Some(format!("{net}-prog")),
        event_type: EventType::Sale,
        occurred_at: o.created_at,
        sale_amount: Some(o.amount.clone()),
        commission: Some(Money::new(o.amount.amount / Decimal::from(10), "EUR")),
        status: ConversionStatus::Approved,
        status_changed_at: None,
        locked_at: None,
        coupon: None,
        utm: Utm::default(),
    }
}

fn decision(c: &Conversion, o: &Order, outcome: Outcome) -> Decision {
    Decision {
        program: "main".into(),
        claim: RecordRef {
            source: c.source.clone(),
            id: c.external_id.clone(),
            revision: 1,
        },
        partner_id: c.partner_id.clone(),
        partner_name: None,
        event_type: EventType::Sale,
        occurred_at: c.occurred_at,
        order: Some(RecordRef {
            source: o.source.clone(),
            id: o.order_id.clone(),
            revision: 1,
        }),
        matched_by: Some(MatchedBy::OrderId),
        outcome,
        payable: true,
        lock_at: None,
        basis: Some(o.amount.clone()),
        claimed_amount: c.sale_amount.clone(),
        order_amount: Some(o.amount.clone()),
        refunded_amount: None,
        network_commission: c.commission.clone(),
        fx_rate: None,
        winner: None,
        reason: String::new(),
        decided_at: o.created_at,
        order_fx_rate: None,
        inputs: Default::default(),
    }
}

fn main() {
    let t = Instant::now();
    let inputs = generate();
    println!(
        "generated {} spend rows, {} orders, {} claims, {} decisions in {:.1?}",
        inputs.spend.len(),
        inputs.orders.len(),
        inputs.claims.len(),
        inputs.decisions.len(),
        t.elapsed()
    );
    // What `load_inputs` adds per stored spend row (QA6 F10): the
    // campaign index, one entry per campaign.
    let mut inputs = inputs;
    let t = Instant::now();
    let cpu = cpu_secs();
    let mut index = reckon::kpi::CampaignIndex::default();
    for s in &inputs.spend {
        index.add(s);
    }
    println!(
        "campaign index over {} spend rows: {} campaigns in {:.1?} wall, {:.2} s CPU",
        inputs.spend.len(),
        index.len(),
        t.elapsed(),
        cpu_secs() - cpu
    );
    inputs.campaigns = index;
    let cfg: KpiConfig = toml::from_str(
        r#"
        currency = "EUR"
        [[attribution]]
        utm_source = "google"
        connector = "google_ads"
        [[attribution]]
        click_id_prefix = "fbclid-"
        connector = "meta_ads"
        "#,
    )
    .expect("config");
    let fx = FxTable::default();
    let ctx = KpiContext {
        zone: ReportingZone::parse("Europe/Berlin").expect("zone"),
        config: &cfg,
        fx: &fx,
        commission: None,
        programs: &[],
    };
    let period: Period = "2026-11".parse().expect("period");
    let mut worst = 0f64;
    let mut worst_cpu = 0f64;
    println!(
        "{:<10} {:<11} {:>6} {:>10} {:>10} {:>9}",
        "by", "view", "rows", "index+sum", "+csv wall", "+csv cpu"
    );
    for view in [View::Reported, View::Reconciled, View::Both] {
        for dim in [
            Dim::Day,
            Dim::Channel,
            Dim::Source,
            Dim::Campaign,
            Dim::Partner,
        ] {
            let q = Query {
                period,
                by: vec![dim],
                view,
            };
            let t = Instant::now();
            let c0 = cpu_secs();
            let engine = Engine::new(ctx, &inputs).expect("engine");
            let report = engine.report(&q).expect("report");
            let summed = t.elapsed();
            let csv = render(Format::Csv, &report, None).expect("csv");
            let total = t.elapsed();
            let cpu = cpu_secs() - c0;
            worst = worst.max(total.as_secs_f64());
            worst_cpu = worst_cpu.max(cpu);
            println!(
                "{:<10} {:<11} {:>6} {:>9.2}s {:>9.2}s {:>8.2}s",
                dim.as_str(),
                view.as_str(),
                report.rows.len(),
                summed.as_secs_f64(),
                total.as_secs_f64(),
                cpu,
            );
            std::hint::black_box(csv);
        }
    }
    let q = Query {
        period,
        by: vec![Dim::Channel],
        view: View::Both,
    };
    let t = Instant::now();
    let c0 = cpu_secs();
    let html = reckon::kpi::summary::produce(ctx, &inputs, &q, Format::Html).expect("html");
    let html_secs = t.elapsed().as_secs_f64();
    let html_cpu = cpu_secs() - c0;
    println!(
        "html (by channel, both, with its 3 charts): {html_secs:.2}s wall, {html_cpu:.2}s cpu, {} bytes",
        html.len()
    );
    println!(
        "slowest single --by summary: {worst:.2}s wall, {worst_cpu:.2}s cpu (target ≤ 5 s); load average: {}",
        std::fs::read_to_string("/proc/loadavg").unwrap_or_default().trim()
    );
}
