//! Stored runs (in-memory backend): changes after a decision was payable,
//! what incremental runs touch, and time-only changes.

mod reconcile_support;

use plugin_api::{ConversionStatus, OrderStatus, Record};
use reckon::fx::FxTable;
use reckon::reconcile::backend::MemoryBackend;
use reckon::reconcile::incremental::load_stored_decisions;
use reckon::reconcile::model::Outcome;
use reckon::reconcile::run_with;
use reconcile_support::*;

fn setup() -> MemoryBackend {
    let b = MemoryBackend::new();
    let mut c2 = claim("everflow", "E1", Some("A-2"));
    c2.partner_id = "p2".into();
    b.commit(
        &[
            Record::Conversion(claim("impact", "C1", Some("A-1"))),
            Record::Conversion(c2),
            Record::Order(order("A-1")),
            Record::Order(order("A-2")),
        ],
        t("2026-11-03T00:00:00Z"),
    );
    b
}

#[test]
fn reversal_after_payable_makes_the_claim_unpayable() {
    let b = setup();
    let p = [program()];
    let s = run_with(&b, &p, &FxTable::empty(), t("2026-12-10T00:00:00Z"), false).unwrap();
    assert!(s.programs[0].full);
    let d = load_stored_decisions(&b, "shop-us").unwrap();
    assert!(d[1].payable && d[1].claim.id == "C1");
    let decided = d[1].decided_at;

    let mut c = claim("impact", "C1", Some("A-1"));
    c.status = ConversionStatus::Reversed;
    c.status_changed_at = Some(t("2026-12-11T00:00:00Z"));
    b.commit(&[Record::Conversion(c)], t("2026-12-11T00:00:00Z"));
    let s = run_with(&b, &p, &FxTable::empty(), t("2026-12-12T00:00:00Z"), false).unwrap();
    assert!(!s.programs[0].full);
    assert_eq!(s.programs[0].claims_judged, 1, "only the touched claim");
    let d = load_stored_decisions(&b, "shop-us").unwrap();
    assert_eq!(d[1].outcome, Outcome::NetworkReversed);
    assert!(!d[1].payable);
    assert_eq!(d[1].claim.revision, 2);
    assert_eq!(d[1].decided_at, t("2026-12-12T00:00:00Z"));
    assert_ne!(d[1].decided_at, decided);
    // The untouched claim kept its decision, decided_at included.
    assert_eq!(d[0].decided_at, t("2026-12-10T00:00:00Z"));
}

#[test]
fn refund_after_payable_makes_the_claim_refunded() {
    let b = setup();
    let p = [program()];
    run_with(&b, &p, &FxTable::empty(), t("2026-12-10T00:00:00Z"), false).unwrap();
    let mut o = order("A-1");
    o.refunds = vec![refund("100.00", "2026-12-11T00:00:00Z")];
    o.status = OrderStatus::Refunded;
    b.commit(&[Record::Order(o)], t("2026-12-11T00:00:00Z"));
    let s = run_with(&b, &p, &FxTable::empty(), t("2026-12-12T00:00:00Z"), false).unwrap();
    assert_eq!(
        s.programs[0].claims_judged, 1,
        "only the claim of the touched order"
    );
    let d = load_stored_decisions(&b, "shop-us").unwrap();
    assert_eq!(d[1].outcome, Outcome::Refunded);
    assert!(!d[1].payable);
    assert_eq!(d[1].order.as_ref().unwrap().revision, 2);
    assert!(
        d[1].reason.ends_with("after the lock date"),
        "{}",
        d[1].reason
    );
}

#[test]
fn a_late_order_turns_awaiting_into_matched_and_time_turns_it_payable() {
    let b = MemoryBackend::new();
    let p = [program()];
    b.commit(
        &[Record::Conversion(claim("impact", "C1", Some("LATE-1")))],
        t("2026-11-03T00:00:00Z"),
    );
    run_with(&b, &p, &FxTable::empty(), t("2026-11-04T00:00:00Z"), false).unwrap();
    assert_eq!(
        load_stored_decisions(&b, "shop-us").unwrap()[0].outcome,
        Outcome::AwaitingOrder
    );
    b.commit(
        &[Record::Order(order("late-1 "))],
        t("2026-11-05T00:00:00Z"),
    );
    run_with(&b, &p, &FxTable::empty(), t("2026-11-06T00:00:00Z"), false).unwrap();
    let d = &load_stored_decisions(&b, "shop-us").unwrap()[0];
    assert_eq!(d.outcome, Outcome::Matched);
    assert!(!d.payable, "lock 2026-12-02T10:00Z not reached");
    // No new data; only time passes the lock date.
    let s = run_with(&b, &p, &FxTable::empty(), t("2026-12-02T10:00:00Z"), false).unwrap();
    assert_eq!(s.programs[0].claims_judged, 1);
    assert!(load_stored_decisions(&b, "shop-us").unwrap()[0].payable);
    // And then nothing is due any more.
    let s = run_with(&b, &p, &FxTable::empty(), t("2026-12-30T00:00:00Z"), false).unwrap();
    assert_eq!(s.programs[0].claims_judged, 0);
}

#[test]
fn a_changed_program_config_triggers_a_full_run() {
    let b = setup();
    let mut p = program();
    run_with(
        &b,
        std::slice::from_ref(&p),
        &FxTable::empty(),
        t("2026-12-10T00:00:00Z"),
        false,
    )
    .unwrap();
    p.return_window_days = 60;
    let s = run_with(
        &b,
        &[p],
        &FxTable::empty(),
        t("2026-12-10T00:00:00Z"),
        false,
    )
    .unwrap();
    assert!(s.programs[0].full);
    assert_eq!(s.programs[0].decisions_changed, 2);
    assert!(load_stored_decisions(&b, "shop-us")
        .unwrap()
        .iter()
        .all(|d| !d.payable));
}

#[test]
fn a_new_duplicate_claim_rejudges_the_existing_winner() {
    let b = setup();
    let p = [program()];
    run_with(&b, &p, &FxTable::empty(), t("2026-12-10T00:00:00Z"), false).unwrap();
    let mut later = claim("awin", "W1", Some("a-1"));
    later.clicked_at = Some(t("2026-11-02T09:59:00Z"));
    later.occurred_at = t("2026-11-02T10:30:00Z");
    b.commit(&[Record::Conversion(later)], t("2026-12-11T00:00:00Z"));
    let s = run_with(&b, &p, &FxTable::empty(), t("2026-12-12T00:00:00Z"), false).unwrap();
    assert_eq!(
        s.programs[0].claims_judged, 2,
        "the new claim and the one sharing its order"
    );
    let d = load_stored_decisions(&b, "shop-us").unwrap();
    // awin/W1 (click 09:59) vs impact/C1 (no click: conversion 10:05) → C1 wins.
    assert_eq!(d[0].claim.id, "W1");
    assert_eq!(d[0].outcome, Outcome::Duplicate);
    assert_eq!(d[0].winner.as_ref().unwrap().id, "C1");
    assert_eq!(d[2].outcome, Outcome::Matched);
}

#[test]
fn a_new_order_winning_the_id_tie_takes_over_matched_claims() {
    // Two order sources hold the same id once case-folded; the one written
    // as the claim writes it wins (QA30-D F1), so a late pos order `a-1`
    // takes the claim quoting `a-1` from shop's `A-1` in an incremental run.
    let b = MemoryBackend::new();
    let mut p = program();
    p.orders = vec!["shop".into(), "pos".into()];
    let p = [p];
    b.commit(
        &[
            Record::Conversion(claim("impact", "C1", Some("a-1"))),
            Record::Order(order("A-1")),
        ],
        t("2026-11-03T00:00:00Z"),
    );
    run_with(&b, &p, &FxTable::empty(), t("2026-12-10T00:00:00Z"), false).unwrap();
    assert_eq!(
        load_stored_decisions(&b, "shop-us").unwrap()[0]
            .order
            .as_ref()
            .unwrap()
            .source,
        "shop"
    );
    let mut o = order("a-1");
    o.source = "pos".into();
    b.commit(&[Record::Order(o)], t("2026-12-11T00:00:00Z"));
    let s = run_with(&b, &p, &FxTable::empty(), t("2026-12-12T00:00:00Z"), false).unwrap();
    assert!(!s.programs[0].full);
    let d = &load_stored_decisions(&b, "shop-us").unwrap()[0];
    let o = d.order.as_ref().unwrap();
    assert_eq!((o.source.as_str(), o.id.as_str()), ("pos", "a-1"));
}

#[test]
fn with_require_network_approval_a_pending_claim_waits_for_the_network_not_the_clock() {
    // C1 pending at the network, order lock 2026-12-02T10:00Z.
    let mut p = program();
    p.require_network_approval = true;
    let p = [p];
    let b = MemoryBackend::new();
    let mut c = claim("impact", "C1", Some("A-1"));
    c.status = ConversionStatus::Pending;
    b.commit(
        &[Record::Conversion(c.clone()), Record::Order(order("A-1"))],
        t("2026-11-03T00:00:00Z"),
    );
    run_with(&b, &p, &FxTable::empty(), t("2026-11-04T00:00:00Z"), false).unwrap();
    let d = &load_stored_decisions(&b, "shop-us").unwrap()[0];
    assert_eq!(d.outcome, Outcome::Matched);
    assert!(!d.payable);
    // The lock date passes: re-judged once, still not payable, and says why.
    let s = run_with(&b, &p, &FxTable::empty(), t("2026-12-03T00:00:00Z"), false).unwrap();
    assert_eq!(s.programs[0].claims_judged, 1);
    let d = &load_stored_decisions(&b, "shop-us").unwrap()[0];
    assert!(!d.payable);
    assert!(
        d.reason.contains("network has the claim pending"),
        "{}",
        d.reason
    );
    // Time alone changes nothing more: the claim is not re-judged.
    let s = run_with(&b, &p, &FxTable::empty(), t("2026-12-20T00:00:00Z"), false).unwrap();
    assert_eq!(s.programs[0].claims_judged, 0);
    // The network approves it (a sync): payable.
    c.status = ConversionStatus::Approved;
    b.commit(&[Record::Conversion(c)], t("2026-12-21T00:00:00Z"));
    let s = run_with(&b, &p, &FxTable::empty(), t("2026-12-22T00:00:00Z"), false).unwrap();
    assert!(!s.programs[0].full);
    assert_eq!(s.programs[0].claims_judged, 1);
    let d = &load_stored_decisions(&b, "shop-us").unwrap()[0];
    assert!(d.payable);
    assert!(!d.reason.contains("pending"), "{}", d.reason);
}

#[test]
fn by_default_a_pending_claim_is_paid_on_reckons_own_judgement() {
    let b = MemoryBackend::new();
    let mut c = claim("impact", "C1", Some("A-1"));
    c.status = ConversionStatus::Pending;
    b.commit(
        &[Record::Conversion(c), Record::Order(order("A-1"))],
        t("2026-11-03T00:00:00Z"),
    );
    run_with(
        &b,
        &[program()],
        &FxTable::empty(),
        t("2026-12-03T00:00:00Z"),
        false,
    )
    .unwrap();
    assert!(load_stored_decisions(&b, "shop-us").unwrap()[0].payable);
}

#[test]
fn turning_require_network_approval_on_is_a_full_run_and_off_keeps_the_old_fingerprint() {
    let off = program();
    let mut on = program();
    on.require_network_approval = true;
    assert_ne!(off.fingerprint(), on.fingerprint());
    // The fingerprint of a program without the setting is what it was
    // before the setting existed, so upgrading does not force a full run.
    assert_eq!(
        off.fingerprint(),
        program_from(
            r#"
id = "shop-us"
currency = "USD"
claims = ["impact", "everflow", "awin"]
orders = ["shop"]
return_window_days = 30
no_order_grace_days = 7
attribution = "last_click"
source_priority = ["impact", "everflow"]
require_network_approval = false
[match]
amount_tolerance_abs = "0.50"
amount_tolerance_pct = "1"
fuzzy_window_hours = 24
coupon_matching = true
"#
        )
        .fingerprint()
    );
}
