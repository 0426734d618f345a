//! Properties of reconciliation over random claim/order sets (proptest):
//! every claim gets exactly one outcome, no order has more than one payable
//! (or earning) claim, decisions do not depend on input order, a second run
//! with no new data changes nothing, and an incremental run equals a full
//! run (also when only time passed).

mod reconcile_support;

use chrono::{DateTime, Duration, Utc};
use plugin_api::{Conversion, ConversionStatus, Order, OrderStatus, Record};
use proptest::prelude::*;
use reckon::fx::FxTable;
use reckon::reconcile::backend::MemoryBackend;
use reckon::reconcile::engine::{decide, ClaimInput, OrderInput};
use reckon::reconcile::incremental::{load_stored_decisions, logical_entries};
use reckon::reconcile::model::Decision;
use reckon::reconcile::run_with;
use reconcile_support::*;
use std::collections::{BTreeMap, BTreeSet};

const SOURCES: [&str; 3] = ["impact", "everflow", "awin"];
const ORDER_SOURCES: [&str; 2] = ["shop", "pos"];

fn base() -> DateTime<Utc> {
    t("2026-11-01T00:00:00Z")
}

fn fx() -> FxTable {
    // EUR→USD only for the first half of November: later EUR amounts are fx_missing.
    FxTable::from_rates(
        (0..15).map(|d| {
            (
                (base() + Duration::days(d)).date_naive(),
                "EUR".to_string(),
                "USD".to_string(),
                "1.08".parse().unwrap(),
            )
        }),
        2,
    )
}

fn id_variant(n: u8, v: u8) -> String {
    match v {
        0 => format!("A-{n}"),
        1 => format!("  a-{n} "),
        _ => format!("#{n}"),
    }
}

#[derive(Debug, Clone)]
struct ClaimSpec {
    source: usize,
    oid: Option<(u8, u8)>,
    click: Option<u8>,
    coupon: Option<u8>,
    cents: i64,
    status: u8,
    clicked: Option<u16>,
    occurred: u16,
    locked: Option<u16>,
    eur: bool,
}

#[derive(Debug, Clone)]
struct OrderSpec {
    source: usize,
    id: u8,
    alt: Option<u8>,
    clicks: Vec<u8>,
    coupon: Option<u8>,
    cents: i64,
    refund: u8,
    created: u16,
    eur: bool,
    cancelled: bool,
}

fn claim_spec() -> impl Strategy<Value = ClaimSpec> {
    (
        0..3usize,
        proptest::option::weighted(0.8, (0..10u8, 0..3u8)),
        proptest::option::of(0..8u8),
        proptest::option::of(0..2u8),
        1000..20000i64,
        0..6u8,
        proptest::option::of(0..1500u16),
        0..1500u16,
        proptest::option::weighted(0.2, 0..2000u16),
        proptest::bool::weighted(0.15),
    )
        .prop_map(
            |(source, oid, click, coupon, cents, status, clicked, occurred, locked, eur)| {
                ClaimSpec {
                    source,
                    oid,
                    click,
                    coupon,
                    cents,
                    status,
                    clicked,
                    occurred,
                    locked,
                    eur,
                }
            },
        )
}

fn order_spec() -> impl Strategy<Value = OrderSpec> {
    (
        0..2usize,
        0..10u8,
        proptest::option::of(10..14u8),
        proptest::collection::vec(0..8u8, 0..2),
        proptest::option::of(0..2u8),
        1000..20000i64,
        0..4u8,
        0..1500u16,
        proptest::bool::weighted(0.1),
        proptest::bool::weighted(0.05),
    )
        .prop_map(
            |(source, id, alt, clicks, coupon, cents, refund, created, eur, cancelled)| OrderSpec {
                source,
                id,
                alt,
                clicks,
                coupon,
                cents,
                refund,
                created,
                eur,
                cancelled,
            },
        )
}

fn hours(h: u16) -> DateTime<Utc> {
    base() + Duration::hours(i64::from(h))
}

fn build_claim(i: usize, s: &ClaimSpec) -> Conversion {
    let mut c = claim(SOURCES[s.source], &format!("X{i}"), None);
    c.order_id = s.oid.map(|(n, v)| id_variant(n, v));
    c.click_id = s.click.map(|k| format!("clk{k}"));
    c.coupon = s.coupon.map(|k| format!("code{k}"));
    let cur = if s.eur { "EUR" } else { "USD" };
    c.sale_amount = Some(plugin_api::Money::from_minor(s.cents, cur));
    c.status = match s.status {
        0 => ConversionStatus::Reversed,
        1 => ConversionStatus::Rejected,
        2 => ConversionStatus::Pending,
        _ => ConversionStatus::Approved,
    };
    c.clicked_at = s.clicked.map(hours);
    c.occurred_at = hours(s.occurred);
    c.locked_at = s.locked.map(hours);
    c.partner_id = format!("p{}", i % 3);
    c
}

fn build_order(s: &OrderSpec) -> Order {
    let mut o = order(&format!("A-{}", s.id));
    o.source = ORDER_SOURCES[s.source].into();
    o.alt_ids = s.alt.map(|a| vec![format!("#{a}")]).unwrap_or_default();
    o.click_ids = s.clicks.iter().map(|k| format!("clk{k}")).collect();
    o.coupon = s.coupon.map(|k| format!("CODE{k}"));
    let cur = if s.eur { "EUR" } else { "USD" };
    o.amount = plugin_api::Money::from_minor(s.cents, cur);
    o.created_at = hours(s.created);
    let refund = |cents| plugin_api::Refund {
        amount: plugin_api::Money::from_minor(cents, cur),
        at: hours(s.created.saturating_add(48)),
    };
    match s.refund {
        1 => o.refunds = vec![refund(s.cents / 3)],
        2 => o.refunds = vec![refund(s.cents)],
        _ => {}
    }
    if s.cancelled {
        o.status = OrderStatus::Cancelled;
    }
    o
}

/// Unique-key claims and orders from specs (later duplicates of an order key dropped).
fn build(cs: &[ClaimSpec], os: &[OrderSpec]) -> (Vec<Conversion>, Vec<Order>) {
    let claims: Vec<Conversion> = cs
        .iter()
        .enumerate()
        .map(|(i, s)| build_claim(i, s))
        .collect();
    let mut seen = BTreeSet::new();
    let orders = os
        .iter()
        .map(build_order)
        .filter(|o| seen.insert((o.source.clone(), o.order_id.clone())))
        .collect();
    (claims, orders)
}

fn inputs(cs: &[Conversion], os: &[Order]) -> (Vec<ClaimInput>, Vec<OrderInput>) {
    (claims(cs.to_vec()), orders(os.to_vec()))
}

fn records(cs: &[Conversion], os: &[Order]) -> Vec<Record> {
    cs.iter()
        .cloned()
        .map(Record::Conversion)
        .chain(os.iter().cloned().map(Record::Order))
        .collect()
}

/// Decisions with `decided_at` blanked (it records when, not what).
fn judgements(mut ds: Vec<Decision>) -> Vec<Decision> {
    for d in &mut ds {
        d.decided_at = base();
    }
    ds
}

/// The test program; with `mirrored`, `awin`'s claims are copies of
/// `everflow`'s (`[[postbacks]] mirrors`, QA28-E F12).
fn config(mirrored: bool) -> ProgramConfig {
    let mut p = program();
    if mirrored {
        p.mirrors.insert("awin".into(), "everflow".into());
    }
    p
}
use reckon::reconcile::config::ProgramConfig;

fn now_at(days: i64) -> DateTime<Utc> {
    base() + Duration::days(days)
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 96, ..ProptestConfig::default() })]

    #[test]
    fn every_claim_gets_exactly_one_outcome_and_orders_at_most_one_payable(
        cs in proptest::collection::vec(claim_spec(), 0..30),
        os in proptest::collection::vec(order_spec(), 0..16),
        now_days in 20i64..90,
        mirrored in any::<bool>(),
    ) {
        let (cs, os) = build(&cs, &os);
        let (ci, oi) = inputs(&cs, &os);
        let ds = decide(&config(mirrored), &ci, &oi, &fx(), now_at(now_days));
        prop_assert_eq!(ds.len(), cs.len());
        let keys: BTreeSet<(String, String)> =
            ds.iter().map(|d| (d.claim.source.clone(), d.claim.id.clone())).collect();
        prop_assert_eq!(keys.len(), cs.len());
        let mut earning: BTreeMap<(String, String), usize> = BTreeMap::new();
        let mut payable: BTreeMap<(String, String), usize> = BTreeMap::new();
        for d in &ds {
            prop_assert!(!d.payable || d.outcome.earns());
            if let Some(o) = &d.order {
                let k = (o.source.clone(), o.id.clone());
                if d.outcome.earns() { *earning.entry(k.clone()).or_default() += 1; }
                if d.payable { *payable.entry(k).or_default() += 1; }
            }
            if d.outcome == reckon::reconcile::model::Outcome::Duplicate {
                prop_assert!(d.winner.is_some(), "duplicate names its winner");
            }
        }
        prop_assert!(earning.values().all(|&n| n <= 1), "{:?}", earning);
        prop_assert!(payable.values().all(|&n| n <= 1));
        // A copy on the same order as a claim it copies never earns.
        if mirrored {
            let originals: BTreeSet<(String, String)> = (ds.iter())
                .filter(|d| d.claim.source == "everflow")
                .filter_map(|d| d.order.as_ref().map(|o| (o.source.clone(), o.id.clone())))
                .collect();
            for d in ds.iter().filter(|d| d.claim.source == "awin") {
                if let Some(o) = d.order.as_ref().filter(|o| originals.contains(&(o.source.clone(), o.id.clone()))) {
                    prop_assert!(!d.outcome.earns(), "copy {} on {}/{}: {:?}", d.claim.id, o.source, o.id, d.outcome);
                }
            }
        }
    }

    #[test]
    fn decisions_do_not_depend_on_input_order(
        cs in proptest::collection::vec(claim_spec(), 0..30),
        os in proptest::collection::vec(order_spec(), 0..16),
        rot in 0usize..30,
        mirrored in any::<bool>(),
    ) {
        let (cs, os) = build(&cs, &os);
        let (ci, oi) = inputs(&cs, &os);
        let a = decide(&config(mirrored), &ci, &oi, &fx(), now_at(45));
        let (mut ci2, mut oi2) = (ci.clone(), oi.clone());
        ci2.reverse();
        oi2.reverse();
        if !ci2.is_empty() { let n = rot % ci2.len(); ci2.rotate_left(n); }
        let b = decide(&config(mirrored), &ci2, &oi2, &fx(), now_at(45));
        prop_assert_eq!(a, b);
    }

    #[test]
    fn second_run_with_no_new_data_changes_nothing(
        cs in proptest::collection::vec(claim_spec(), 0..30),
        os in proptest::collection::vec(order_spec(), 0..16),
        mirrored in any::<bool>(),
    ) {
        let (cs, os) = build(&cs, &os);
        let b = MemoryBackend::new();
        b.commit(&records(&cs, &os), base());
        let p = [config(mirrored)];
        let first = run_with(&b, &p, &fx(), now_at(45), false).unwrap();
        prop_assert!(first.programs[0].full);
        let snap = b.kv_snapshot();
        let second = run_with(&b, &p, &fx(), now_at(45), false).unwrap();
        prop_assert!(!second.programs[0].full);
        prop_assert_eq!(second.programs[0].decisions_changed, 0);
        prop_assert_eq!(&snap, &b.kv_snapshot());
        let forced = run_with(&b, &p, &fx(), now_at(45), true).unwrap();
        prop_assert_eq!(forced.programs[0].decisions_changed, 0);
        prop_assert_eq!(&snap, &b.kv_snapshot());
    }

    #[test]
    fn incremental_run_equals_full_run(
        cs in proptest::collection::vec(claim_spec(), 0..30),
        os in proptest::collection::vec(order_spec(), 0..16),
        cs2 in proptest::collection::vec(claim_spec(), 0..30),
        os2 in proptest::collection::vec(order_spec(), 0..16),
        cs3 in proptest::collection::vec(claim_spec(), 0..20),
        os3 in proptest::collection::vec(order_spec(), 0..8),
        first_part in 0usize..30,
        now1 in 10i64..60,
        later in 0i64..40,
        later2 in 0i64..20,
        fold_at in prop_oneof![Just(1usize), Just(12), Just(usize::MAX)],
        mirrored in any::<bool>(),
    ) {
        // Final state: claims X0.. from cs, then changed versions from cs2
        // and cs3 (same external ids, so they are revisions) and orders from
        // os, os2 then os3; two incremental runs, so the decision log holds
        // two values (or is folded by the second or both: `fold_at`).
        let (c1, o1) = build(&cs, &os);
        let (c2, o2) = build(&cs2, &os2);
        let (c3, o3) = build(&cs3, &os3);
        let b = MemoryBackend::folding_at(fold_at);
        let k = first_part.min(c1.len());
        b.commit(&records(&c1[..k], &o1), base());
        let p = [config(mirrored)];
        run_with(&b, &p, &fx(), now_at(now1), false).unwrap();
        b.commit(&records(&c1[k..], &[]), base());
        b.commit(&records(&c2, &o2), base());
        let inc = run_with(&b, &p, &fx(), now_at(now1 + later), false).unwrap();
        prop_assert!(!inc.programs[0].full);
        b.commit(&records(&c3, &o3), base());
        let now2 = now_at(now1 + later + later2);
        let inc = run_with(&b, &p, &fx(), now2, false).unwrap();
        prop_assert!(!inc.programs[0].full);
        let inc_decisions = judgements(load_stored_decisions(&b, "shop-us").unwrap());
        // Indexes must match too (decision values are compared above, without
        // `decided_at` and revisions).
        let without_decision_values = |m: BTreeMap<String, Vec<u8>>| -> BTreeMap<String, Vec<u8>> {
            m.into_iter()
                .map(|(k, v)| if k.starts_with("d/") { (k, Vec::new()) } else { (k, v) })
                .collect()
        };
        let inc_kv = without_decision_values(logical_entries(&b, "shop-us").unwrap());

        // The same final records, reconciled once from scratch.
        let mut final_claims: BTreeMap<(String, String), Conversion> = BTreeMap::new();
        for c in c1.iter().chain(c2.iter()).chain(c3.iter()) {
            final_claims.insert((c.source.clone(), c.external_id.clone()), c.clone());
        }
        let mut final_orders: BTreeMap<(String, String), Order> = BTreeMap::new();
        for o in o1.iter().chain(o2.iter()).chain(o3.iter()) {
            final_orders.insert((o.source.clone(), o.order_id.clone()), o.clone());
        }
        let fresh = MemoryBackend::new();
        let fc: Vec<Conversion> = final_claims.into_values().collect();
        let fo: Vec<Order> = final_orders.into_values().collect();
        fresh.commit(&records(&fc, &fo), base());
        let full = run_with(&fresh, &p, &fx(), now2, false).unwrap();
        let full_decisions = judgements(load_stored_decisions(&fresh, "shop-us").unwrap());
        // The program's payable count an incremental run keeps (its state
        // plus what it changed) is the one a full run counts.
        let payable = full_decisions.iter().filter(|d| d.payable).count() as u64;
        prop_assert_eq!(full.programs[0].payable_total, Some(payable));
        prop_assert_eq!(inc.programs[0].payable_total, Some(payable));
        // Revisions differ (the incremental store saw two versions): compare
        // everything else.
        let strip = |ds: Vec<Decision>| -> Vec<Decision> {
            ds.into_iter().map(|mut d| {
                d.claim.revision = 0;
                if let Some(o) = &mut d.order { o.revision = 0; }
                if let Some(w) = &mut d.winner { w.revision = 0; }
                d
            }).collect()
        };
        prop_assert_eq!(strip(inc_decisions), strip(full_decisions));
        prop_assert_eq!(inc_kv, without_decision_values(logical_entries(&fresh, "shop-us").unwrap()));
    }
}
