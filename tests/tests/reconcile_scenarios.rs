//! One hand-computed scenario per outcome, plus the edge cases of issue 6.
//! Each test asserts the hand-computed facts and compares the full decisions
//! with a reviewed golden file under `tests/golden/reconcile/`.

mod reconcile_support;

use plugin_api::{ConversionStatus, OrderStatus};
use reckon::fx::FxTable;
use reckon::reconcile::engine::decide;
use reckon::reconcile::model::{Decision, MatchedBy, Outcome};
use reconcile_support::*;

const NOW: &str = "2026-12-15T00:00:00Z";

fn run(cs: Vec<plugin_api::Conversion>, os: Vec<plugin_api::Order>) -> Vec<Decision> {
    decide(
        &program(),
        &claims(cs),
        &orders(os),
        &FxTable::empty(),
        t(NOW),
    )
}

fn amount(d: &Decision) -> String {
    d.basis.as_ref().map(|b| b.to_string()).unwrap_or_default()
}

#[test]
fn matched_within_tolerance_is_payable_after_return_window() {
    // Order 100.40, claim 100.00: tolerance max(0.50, 1 % × 100.40 = 1.004)
    // = 1.004 ≥ 0.40 → matched; basis = the claimed 100.00; lock = order
    // time + 30 days = 2026-12-02T10:00Z ≤ now → payable.
    let mut o = order("A-100");
    o.amount = m("100.40", "USD");
    let d = run(vec![claim("impact", "C1", Some("A-100"))], vec![o]);
    assert_eq!(d.len(), 1);
    assert_eq!(d[0].outcome, Outcome::Matched);
    assert_eq!(d[0].matched_by, Some(MatchedBy::OrderId));
    assert_eq!(amount(&d[0]), "100.00 USD");
    assert_eq!(d[0].lock_at, Some(t("2026-12-02T10:00:00Z")));
    assert!(d[0].payable);
    // The tolerance in the reason is cut to the cent (was 1.004).
    assert!(
        d[0].reason
            .contains("claimed 100.00 USD vs order 100.40 USD within tolerance 1.00"),
        "{}",
        d[0].reason
    );
    assert_golden("matched", &d);
}

/// QA (new user, 2026-11-30): "beyond tolerance 1.6882" (1 % of 168.82).
/// The reason gives the tolerance cut to the cent, which keeps it true at
/// the edge: 1.69 is beyond 1.6882 and beyond 1.68; 1.68 is within both.
#[test]
fn a_percentage_tolerance_is_given_to_the_cent_in_reasons() {
    let judge = |claimed: &str| {
        let mut o = order("A-168");
        o.amount = m("168.82", "USD");
        let mut c = claim("impact", "C168", Some("A-168"));
        c.sale_amount = Some(m(claimed, "USD"));
        run(vec![c], vec![o]).remove(0)
    };
    let over = judge("170.51");
    assert_eq!(over.outcome, Outcome::AmountMismatch);
    assert_eq!(
        over.reason,
        "claimed 170.51 USD but order shop/A-168 is 168.82 USD (difference 1.69 over, beyond tolerance 1.68); basis is the order amount"
    );
    let within = judge("170.50");
    assert_eq!(within.outcome, Outcome::Matched);
    assert!(
        within
            .reason
            .ends_with("claimed 170.50 USD vs order 168.82 USD within tolerance 1.68"),
        "{}",
        within.reason
    );
    // The exact tolerance stays in the decision's inputs.
    assert_eq!(
        over.inputs
            .tolerance_applied
            .map(|t| t.to_string())
            .as_deref(),
        Some("1.6882")
    );
}

/// QA30-D F4: a network's amount with more decimals than the currency's
/// minor unit (stored as sent) was compared with the exact tolerance but
/// the reason cut it to the cent: "within tolerance 1.68" for a difference
/// of 1.6882. The tolerance is now cut to the compared amounts' digits.
#[test]
fn a_tolerance_is_given_to_the_digits_of_the_amounts_it_was_compared_with() {
    let mut o = order("A-169");
    o.amount = m("168.82", "USD");
    let mut c = claim("impact", "C169", Some("A-169"));
    c.sale_amount = Some(m("170.5082", "USD"));
    let d = run(vec![c.clone()], vec![o.clone()]).remove(0);
    assert_eq!(d.outcome, Outcome::Matched);
    assert!(
        d.reason
            .ends_with("claimed 170.5082 USD vs order 168.82 USD within tolerance 1.6882"),
        "{}",
        d.reason
    );
    c.sale_amount = Some(m("101.004", "USD"));
    o.amount = m("100.00", "USD");
    let d = run(vec![c], vec![o]).remove(0);
    assert!(
        d.reason
            .contains("(difference 1.004 over, beyond tolerance 1.000)"),
        "{}",
        d.reason
    );
}

/// QA30-B L3: amounts in reasons had two decimals whatever the currency
/// ("1.50 of 123.457 KWD", "2345.00 of 12345 JPY"). Now at least the
/// currency's minor-unit digits.
#[test]
fn reason_amounts_have_their_currencys_digits() {
    let program_in = |cur: &str| {
        program_from(&format!(
            "id = \"p\"\ncurrency = \"{cur}\"\nclaims = [\"impact\"]\norders = [\"shop\"]\n"
        ))
    };
    let judge = |cur: &str, amount: &str, refunded: &str| {
        let mut o = order("A-1");
        o.amount = m(amount, cur);
        o.refunds = vec![plugin_api::Refund {
            amount: m(refunded, cur),
            at: t("2026-11-06T00:00:00Z"),
        }];
        o.status = OrderStatus::PartiallyRefunded;
        let mut c = claim("impact", "C1", Some("A-1"));
        c.sale_amount = Some(m(amount, cur));
        decide(
            &program_in(cur),
            &claims(vec![c]),
            &orders(vec![o]),
            &FxTable::empty(),
            t(NOW),
        )
        .remove(0)
    };
    let jpy = judge("JPY", "12345", "2345");
    assert!(
        jpy.reason.starts_with(
            "order shop/A-1 was partly refunded (2345 of 12345 JPY); basis is the net 10000 JPY"
        ),
        "{}",
        jpy.reason
    );
    let kwd = judge("KWD", "123.457", "1.5");
    assert!(
        kwd.reason
            .starts_with("order shop/A-1 was partly refunded (1.500 of 123.457 KWD); basis is the net 121.957 KWD"),
        "{}",
        kwd.reason
    );
}

/// QA30-B L2: a claim of exactly the converted (rounded) order amount took
/// the order's converted net as its basis: 46.02 EUR × 1.2 = 55.22 USD,
/// where the README's formula gives 110.44 × 46.02 ÷ 92.03 = 55.23.
#[test]
fn a_partly_refunded_claim_of_the_converted_order_amount_takes_its_share() {
    let fx = FxTable::from_rates(
        [(
            t("2026-11-02T00:00:00Z").date_naive(),
            "EUR".to_owned(),
            "USD".to_owned(),
            "1.2000".parse().unwrap(),
        )],
        7,
    );
    let mut o = order("A-E5");
    o.amount = m("92.03", "EUR");
    o.refunds = vec![plugin_api::Refund {
        amount: m("46.01", "EUR"),
        at: t("2026-11-06T00:00:00Z"),
    }];
    o.status = OrderStatus::PartiallyRefunded;
    let mut c = claim("impact", "C-E5", Some("A-E5"));
    c.sale_amount = Some(m("110.44", "USD"));
    let d = decide(
        &program(),
        &claims(vec![c]),
        &orders(vec![o.clone()]),
        &fx,
        t(NOW),
    )
    .remove(0);
    assert_eq!(d.outcome, Outcome::PartiallyRefunded);
    assert_eq!(amount(&d), "55.23 USD", "{}", d.reason);
    assert!(
        d.reason
            .contains("basis is the claimed 110.44 USD less the refunded share, 55.23 USD"),
        "{}",
        d.reason
    );
    // In one currency, a claim of the order's amount is still "the net".
    let mut same = o;
    same.amount = m("92.03", "USD");
    same.refunds[0].amount = m("46.01", "USD");
    let mut c = claim("impact", "C-U5", Some("A-E5"));
    c.sale_amount = Some(m("92.03", "USD"));
    let d = decide(
        &program(),
        &claims(vec![c]),
        &orders(vec![same]),
        &fx,
        t(NOW),
    )
    .remove(0);
    assert_eq!(amount(&d), "46.02 USD");
    assert!(
        d.reason.contains("basis is the net 46.02 USD"),
        "{}",
        d.reason
    );
}

#[test]
fn amount_mismatch_uses_the_order_amount() {
    // Claim 120.00 vs order 100.00: tolerance max(0.50, 1.00) = 1.00 < 20.00.
    let mut c = claim("impact", "C2", Some("A-200"));
    c.sale_amount = Some(m("120.00", "USD"));
    let d = run(vec![c], vec![order("A-200")]);
    assert_eq!(d[0].outcome, Outcome::AmountMismatch);
    assert_eq!(amount(&d[0]), "100.00 USD");
    assert!(d[0].payable);
    assert!(
        d[0].reason
            .contains("difference 20.00 over, beyond tolerance 1.00"),
        "{}",
        d[0].reason
    );
    assert_golden("amount_mismatch", &d);
}

#[test]
fn a_negative_claimed_amount_never_becomes_a_negative_basis() {
    // An order of 0.10 and a price adjustment claimed as -0.30: the
    // difference 0.40 is within tolerance 0.50, but a negative claim is never
    // `matched` (its basis would be negative); basis = the order's 0.10.
    let mut o = order("A-250");
    o.amount = m("0.10", "USD");
    let mut c = claim("cake", "C25", Some("A-250"));
    c.sale_amount = Some(m("-0.30", "USD"));
    let d = run(vec![c], vec![o]);
    assert_eq!(d[0].outcome, Outcome::AmountMismatch);
    assert_eq!(amount(&d[0]), "0.10 USD");
    assert!(
        d[0].reason.contains("negative amount -0.30 USD"),
        "{}",
        d[0].reason
    );
}

#[test]
fn refunded_order_earns_nothing() {
    let mut o = order("A-300");
    o.refunds = vec![refund("100.00", "2026-11-05T00:00:00Z")];
    o.status = OrderStatus::Refunded;
    let d = run(vec![claim("impact", "C3", Some("A-300"))], vec![o]);
    assert_eq!(d[0].outcome, Outcome::Refunded);
    assert!(d[0].basis.is_none());
    assert!(!d[0].payable);
    assert_golden("refunded", &d);
}

/// QA 2026-11-29: a shop that marks an order refunded without giving the
/// amount (a file drop's `status = refunded`) is a full refund, said so
/// plainly, not "fully refunded (0.00 USD)".
#[test]
fn an_order_marked_refunded_without_an_amount_is_refunded_in_full() {
    let mut o = order("A-301");
    o.status = OrderStatus::Refunded;
    let d = run(vec![claim("impact", "C3", Some("A-301"))], vec![o.clone()]);
    assert_eq!(d[0].outcome, Outcome::Refunded);
    assert!(!d[0].payable);
    assert_eq!(
        d[0].reason,
        "order shop/A-301 is marked refunded (no refund amount given), so refunded in full"
    );
    o.refunds = vec![refund("30.00", "2026-11-05T00:00:00Z")];
    let d = run(vec![claim("impact", "C3", Some("A-301"))], vec![o]);
    assert_eq!(
        d[0].reason,
        "order shop/A-301 is marked refunded (30.00 USD of 100.00 USD given as refunds), so refunded in full"
    );
}

#[test]
fn partially_refunded_basis_is_net_of_refunds() {
    // 100.00 − 30.00 = 70.00.
    let mut o = order("A-400");
    o.refunds = vec![refund("30.00", "2026-11-06T00:00:00Z")];
    o.status = OrderStatus::PartiallyRefunded;
    let d = run(vec![claim("impact", "C4", Some("A-400"))], vec![o]);
    assert_eq!(d[0].outcome, Outcome::PartiallyRefunded);
    assert_eq!(amount(&d[0]), "70.00 USD");
    assert!(d[0].payable);
    assert_golden("partially_refunded", &d);
}

#[test]
fn a_refund_never_raises_the_basis_of_a_claim_matched_within_tolerance() {
    // Claim 99.50 on order 100.00 (tolerance 1.00): matched, basis 99.50.
    // A 5.00 refund leaves the order at 95.00; the basis is the claimed
    // 99.50 × 95 / 100 = 94.525 → 94.53, not the order's net 95.00
    // (QA: a 90.00 claim within a 10 % tolerance was raised to 95.00).
    let mut c = claim("impact", "C41", Some("A-410"));
    c.sale_amount = Some(m("99.50", "USD"));
    let d = run(vec![c.clone()], vec![order("A-410")]);
    assert_eq!(d[0].outcome, Outcome::Matched);
    assert_eq!(amount(&d[0]), "99.50 USD");
    let mut o = order("A-410");
    o.refunds = vec![refund("5.00", "2026-11-06T00:00:00Z")];
    o.status = OrderStatus::PartiallyRefunded;
    let d = run(vec![c.clone()], vec![o.clone()]);
    assert_eq!(d[0].outcome, Outcome::PartiallyRefunded);
    assert_eq!(amount(&d[0]), "94.53 USD");
    assert!(
        d[0].reason
            .contains("basis is the claimed 99.50 USD less the refunded share, 94.53 USD"),
        "{}",
        d[0].reason
    );
    // The tolerance that chose the formula is recorded (QA19 NEW-1).
    assert_eq!(
        d[0].inputs.tolerance_applied,
        Some(rust_decimal::Decimal::ONE)
    );
    // Beyond tolerance the order's net stays the basis (amount_mismatch
    // takes the order amount; a refund reduces it).
    c.sale_amount = Some(m("120.00", "USD"));
    let d = run(vec![c], vec![o]);
    assert_eq!(amount(&d[0]), "95.00 USD");
}

#[test]
fn duplicate_loses_on_last_click_and_names_the_winner() {
    // impact clicked 09:00, everflow 12:00 → everflow wins on last click.
    let mut a = claim("impact", "C5", Some("A-500"));
    a.clicked_at = Some(t("2026-11-01T09:00:00Z"));
    let mut b = claim("everflow", "E5", Some("a-500"));
    b.clicked_at = Some(t("2026-11-01T12:00:00Z"));
    b.partner_id = "p2".into();
    let d = run(vec![a, b], vec![order("A-500")]);
    // Sorted by (source, id): everflow/E5, impact/C5.
    assert_eq!(d[0].claim.id, "E5");
    assert_eq!(d[0].outcome, Outcome::Matched);
    assert!(d[0].winner.is_none());
    assert!(d[0].payable);
    assert_eq!(d[1].claim.id, "C5");
    assert_eq!(d[1].outcome, Outcome::Duplicate);
    assert!(!d[1].payable);
    let w = d[1].winner.as_ref().expect("winner named");
    assert_eq!((w.source.as_str(), w.id.as_str()), ("everflow", "E5"));
    assert_golden("duplicate", &d);
}

#[test]
fn duplicate_tie_breaks_on_conversion_time_then_source_priority_then_id() {
    // No click times: conversion times decide (later wins) ...
    let mut a = claim("impact", "C6", Some("A-600"));
    a.occurred_at = t("2026-11-02T11:00:00Z");
    let b = claim("everflow", "E6", Some("A-600"));
    let d = run(vec![a.clone(), b.clone()], vec![order("A-600")]);
    assert_eq!(d[1].claim.id, "C6");
    assert_eq!(d[1].outcome, Outcome::Matched);
    assert_eq!(d[0].outcome, Outcome::Duplicate);
    // ... equal times: source priority (impact before everflow) ...
    a.occurred_at = b.occurred_at;
    let d = run(vec![a.clone(), b], vec![order("A-600")]);
    assert_eq!(d[1].outcome, Outcome::Matched, "impact ranks first");
    // ... same source and time: the smaller external id.
    let mut a2 = a.clone();
    a2.external_id = "C0".into();
    let d = run(vec![a, a2], vec![order("A-600")]);
    assert_eq!(d[0].claim.id, "C0");
    assert_eq!(d[0].outcome, Outcome::Matched);
    assert_eq!(d[1].outcome, Outcome::Duplicate);
}

/// QA38a H1, H3: a claim whose time cannot be right loses the contest to
/// one whose time can, whatever the rule says of the times themselves: a
/// click after its own conversion, a click sent in the future, or a
/// postback dated when it arrived months after the order (its conversion
/// time, with no click time). Its reason says why.
#[test]
fn a_claim_whose_time_cannot_be_right_loses_to_one_whose_time_can() {
    // The order: 2026-11-02 10:00; the honest claim clicked 09:00.
    let mut honest = claim("impact", "C9", Some("A-900"));
    honest.clicked_at = Some(t("2026-11-02T09:00:00Z"));
    let cheats = [
        // Clicked 55 minutes after its own conversion (10:05).
        (
            Some("2026-11-02T11:00:00Z"),
            "2026-11-02T10:05:00Z",
            "is after its conversion",
        ),
        // Clicked four weeks in the future.
        (
            Some("2026-12-30T00:00:00Z"),
            "2026-11-02T10:05:00Z",
            "is after its conversion",
        ),
        // A postback with no click time, dated when it arrived, weeks
        // after the sale (within `order_window_days`, so it matches).
        (
            None,
            "2026-11-20T04:38:00Z",
            "more than 24 h (`fuzzy_window_hours`) after the order was created",
        ),
    ];
    for (click, conversion, why) in cheats {
        let mut cheat = claim("everflow", "E9", Some("a-900"));
        cheat.partner_id = "cheat".into();
        cheat.clicked_at = click.map(t);
        cheat.occurred_at = t(conversion);
        let d = run(vec![honest.clone(), cheat], vec![order("A-900")]);
        // Sorted by (source, id): everflow/E9, impact/C9.
        assert_eq!(d[1].outcome, Outcome::Matched, "{click:?}: {}", d[1].reason);
        assert!(
            d[1].reason
                .contains("a time that can be right, while the other's"),
            "{}",
            d[1].reason
        );
        assert_eq!(d[0].outcome, Outcome::Duplicate, "{click:?}");
        assert!(d[0].reason.contains(why), "{}", d[0].reason);
        assert!(
            d[0].reason
                .contains("which wins on a time that can be right, while this claim's"),
            "{}",
            d[0].reason
        );
    }
    // Both times wrong: the rule decides between them as before.
    let mut late = honest.clone();
    late.clicked_at = Some(t("2026-11-05T00:00:00Z"));
    let mut later = claim("everflow", "E9", Some("A-900"));
    later.clicked_at = Some(t("2026-11-06T00:00:00Z"));
    let d = run(vec![late, later], vec![order("A-900")]);
    assert_eq!(d[0].outcome, Outcome::Matched, "{}", d[0].reason);
    assert!(d[0].reason.contains("last click"), "{}", d[0].reason);
    // Within the window, a conversion time after the order is a time that
    // can be right: the rule decides (a later conversion wins last click).
    let mut soon = claim("everflow", "E9", Some("A-900"));
    soon.occurred_at = t("2026-11-02T12:00:00Z");
    let d = run(vec![honest.clone(), soon], vec![order("A-900")]);
    assert_eq!(d[0].outcome, Outcome::Matched, "{}", d[0].reason);
    assert!(d[0].reason.contains("last click"), "{}", d[0].reason);
}

/// QA38a H2: an order its order id (or click id) names is not the claim's
/// sale when it was created more than `order_window_days` (30) from the
/// conversion, either way: a conversion months before the order existed,
/// or an old order's id guessed, was matched and paid. The claim is
/// `no_order` at once, its reason naming the order and the gap.
#[test]
fn an_order_too_far_in_time_from_the_conversion_is_not_its_sale() {
    // The order: 2026-11-02 10:00.
    let mut early = claim("impact", "C10", Some("A-1000"));
    early.occurred_at = t("2026-06-24T12:00:00Z");
    let mut guess = claim("everflow", "E10", Some("a-1000"));
    guess.occurred_at = t("2026-12-10T12:00:00Z");
    let mut by_click = claim("awin", "W10", None);
    by_click.click_id = Some("clk-1000".into());
    by_click.occurred_at = t("2026-06-24T12:00:00Z");
    let mut o = order("A-1000");
    o.click_ids = vec!["clk-1000".into()];
    let d = run(vec![early, guess, by_click], vec![o.clone()]);
    // Sorted by (source, id): awin/W10, everflow/E10, impact/C10.
    for (d, quoted, days, side) in [
        (&d[0], "click id", 130, "after"),
        (&d[1], "order id", 38, "before"),
        (&d[2], "order id", 130, "after"),
    ] {
        assert_eq!(d.outcome, Outcome::NoOrder, "{}", d.reason);
        assert!(!d.payable);
        assert!(d.order.is_none());
        assert!(
            d.reason.starts_with(&format!(
                "order shop/A-1000 carries its {quoted} but was created 2026-11-02T10:00:00Z ({days} days {side} the conversion"
            )) && d.reason.contains("more than `order_window_days` (30 days) apart"),
            "{}",
            d.reason
        );
    }
    // Within the window, either way: matched as before.
    let mut soon = claim("impact", "C11", Some("A-1000"));
    soon.occurred_at = t("2026-12-01T10:00:00Z");
    let mut before = claim("everflow", "E11", Some("A-1000"));
    before.occurred_at = t("2026-10-04T10:00:00Z");
    for c in [soon, before] {
        let d = run(vec![c], vec![o.clone()]);
        assert_eq!(d[0].outcome, Outcome::Matched, "{}", d[0].reason);
    }
    // A wider window matches the far claim.
    let mut p = program();
    p.matching.order_window_days = 200;
    let mut early = claim("impact", "C10", Some("A-1000"));
    early.occurred_at = t("2026-06-24T12:00:00Z");
    let d = decide(
        &p,
        &claims(vec![early]),
        &orders(vec![order("A-1000")]),
        &FxTable::empty(),
        t(NOW),
    );
    assert_eq!(d[0].outcome, Outcome::Matched, "{}", d[0].reason);
    // A gap under two days is given in hours.
    p.matching.order_window_days = 1;
    let mut near = claim("impact", "C12", Some("A-1000"));
    near.occurred_at = t("2026-10-31T20:00:00Z");
    let d = decide(
        &p,
        &claims(vec![near]),
        &orders(vec![order("A-1000")]),
        &FxTable::empty(),
        t(NOW),
    );
    assert!(
        d[0].reason.contains("(38 hours after the conversion at 2026-10-31T20:00:00Z), more than `order_window_days` (1 day) apart"),
        "{}",
        d[0].reason
    );
}

/// QA39a A-H1: `order_window_days` leaves the orders too far in time out
/// before rule 1 or 2 chooses among the orders sharing an id or a click id,
/// and a click id that names only orders too far in time falls through to
/// the coupon rule. Before, the tie-breaks chose first (an order's own id
/// before an alternative id, the id as the claim writes it, the amount
/// within tolerance), the chosen order was then too far, and the claim was
/// `no_order` although a sale of the same id, or its coupon, was there.
#[test]
fn orders_too_far_in_time_are_left_out_before_the_tie_breaks() {
    // The claims convert 2026-11-02 10:05; "old" orders are from June.
    let june = "2026-06-01T10:00:00Z";
    let old = |id: &str| {
        let mut o = order(id);
        o.created_at = t(june);
        o
    };
    // 1. The claim's id is an old order's own id and a new order's
    //    alternative id.
    let mut own_old = old("7777");
    own_old.amount = m("20.00", "USD");
    let mut alt_new = order("N-7777");
    alt_new.alt_ids = vec!["7777".into()];
    // 2. Written as the claim writes it (old) vs case-folded (new).
    let exact_old = old("WW-1");
    let folded_new = order("ww-1");
    // 3. A click shared by an old order whose amount fits and a new one
    //    that does not.
    let mut click_old = old("CK-OLD");
    click_old.click_ids = vec!["ck-10".into()];
    let mut click_new = order("CK-NEW");
    click_new.click_ids = vec!["ck-10".into()];
    click_new.amount = m("70.00", "USD");
    // 4. A click naming only an old order, and a coupon naming a new one.
    let mut click_only_old = old("CW-OLD");
    click_only_old.click_ids = vec!["cw-clk".into()];
    let mut coupon_new = order("CW-NEW");
    coupon_new.coupon = Some("CWNEW".into());

    let mut by_click = claim("impact", "C-CK", None);
    by_click.click_id = Some("ck-10".into());
    let mut click_then_coupon = claim("impact", "C-CW", None);
    click_then_coupon.click_id = Some("cw-clk".into());
    click_then_coupon.coupon = Some("cwnew".into());
    let mut d = run(
        vec![
            claim("impact", "C-7777", Some("7777")),
            claim("impact", "C-WW", Some("WW-1")),
            by_click,
            click_then_coupon,
        ],
        vec![
            own_old,
            alt_new,
            exact_old,
            folded_new,
            click_old,
            click_new,
            click_only_old,
            coupon_new,
        ],
    );
    d.sort_by(|a, b| a.claim.id.cmp(&b.claim.id));
    let by = |id: &str| d.iter().find(|d| d.claim.id == id).expect(id);
    let got: Vec<(&str, Outcome, Option<&str>, Option<MatchedBy>)> = (d.iter())
        .map(|d| {
            let o = d.order.as_ref().map(|o| o.id.as_str());
            (d.claim.id.as_str(), d.outcome, o, d.matched_by)
        })
        .collect();
    assert_eq!(
        got,
        [
            (
                "C-7777",
                Outcome::Matched,
                Some("N-7777"),
                Some(MatchedBy::OrderId)
            ),
            (
                "C-CK",
                Outcome::AmountMismatch,
                Some("CK-NEW"),
                Some(MatchedBy::ClickId)
            ),
            (
                "C-CW",
                Outcome::Matched,
                Some("CW-NEW"),
                Some(MatchedBy::Coupon)
            ),
            (
                "C-WW",
                Outcome::Matched,
                Some("ww-1"),
                Some(MatchedBy::OrderId)
            ),
        ]
    );
    for id in ["C-7777", "C-WW"] {
        assert!(
            by(id).reason.contains(
                "; 2 orders carry order id `"
            ) && by(id).reason.contains(
                "once trimmed and case-folded: this one is the only one created within `order_window_days` (30 days) of the conversion"
            ),
            "{id}: {}",
            by(id).reason
        );
    }
    assert!(d.iter().all(|d| d.payable), "{d:#?}");

    // Every order too far: `no_order`, naming the one the tie-breaks pick.
    let d = run(
        vec![claim("impact", "C-7777", Some("7777"))],
        vec![old("7777"), {
            let mut o = old("N-7777");
            o.alt_ids = vec!["7777".into()];
            o
        }],
    );
    assert_eq!(d[0].outcome, Outcome::NoOrder, "{}", d[0].reason);
    assert!(
        d[0].reason.starts_with(
            "order shop/7777 carries its order id but was created 2026-06-01T10:00:00Z"
        ),
        "{}",
        d[0].reason
    );

    // Three orders share the id, two of them new: of those, rule 1 as
    // before (the one written as the claim writes it), and the reason
    // says so.
    let mut newer = order("ww-1 ");
    newer.created_at = t("2026-11-01T10:00:00Z");
    let d = run(
        vec![claim("impact", "C-WW", Some("ww-1"))],
        vec![old("WW-1"), order("Ww-1"), newer],
    );
    assert_eq!(d[0].order.as_ref().map(|o| o.id.as_str()), Some("ww-1 "));
    assert!(
        d[0].reason.contains(
            "; 3 orders carry order id `ww-1` once trimmed and case-folded: this one has it written as the claim writes it, of the 2 created within `order_window_days` (30 days) of the conversion"
        ),
        "{}",
        d[0].reason
    );
    assert_golden(
        "order_window_ties",
        &run(
            vec![claim("impact", "C-7777", Some("7777"))],
            vec![old("7777"), {
                let mut o = order("N-7777");
                o.alt_ids = vec!["7777".into()];
                o
            }],
        ),
    );
}

#[test]
fn network_reversed_and_rejected_keep_their_order_but_never_compete() {
    let mut rev = claim("impact", "C7", Some("A-700"));
    rev.status = ConversionStatus::Reversed;
    rev.status_changed_at = Some(t("2026-11-20T00:00:00Z"));
    rev.clicked_at = Some(t("2026-11-02T09:00:00Z"));
    let mut rej = claim("awin", "W7", Some("A-700"));
    rej.status = ConversionStatus::Rejected;
    rej.clicked_at = Some(t("2026-11-02T09:30:00Z"));
    let mut ok = claim("everflow", "E7", Some("A-700"));
    ok.clicked_at = Some(t("2026-11-01T00:00:00Z"));
    let d = run(vec![rev, rej, ok], vec![order("A-700")]);
    // awin/W7, everflow/E7, impact/C7
    assert_eq!(d[0].outcome, Outcome::NetworkRejected);
    assert_eq!(
        d[1].outcome,
        Outcome::Matched,
        "the earlier click wins: the later ones are out"
    );
    assert_eq!(d[2].outcome, Outcome::NetworkReversed);
    assert!(d[2].order.is_some());
    assert!(!d[0].payable && !d[2].payable);
    assert_golden("network_reversed_rejected", &d);
}

/// QA28-E F12: a postback endpoint that mirrors an API connector
/// (`[[postbacks]] mirrors`) delivers copies of that connector's
/// conversions. A copy matched to the same order as the connector's claim
/// never competes: it is reversed or rejected with that claim, else its
/// duplicate; a copy whose original has not arrived competes as any claim.
#[test]
fn a_mirrored_copy_takes_the_status_of_the_claim_it_copies() {
    let mut p = program_from(
        r#"
id = "shop-us"
currency = "USD"
claims = ["impact", "everflow", "ef_s2s"]
orders = ["shop"]
"#,
    );
    p.mirrors.insert("ef_s2s".into(), "everflow".into());
    // The copy arrives later than the API's claim: under last click (on the
    // conversion time, no click time) it would win every contest.
    let copy = |id: &str, order: &str| {
        let mut c = claim("ef_s2s", id, Some(order));
        c.occurred_at = t("2026-11-02T10:06:00Z");
        c
    };
    // A-1: the network reversed the sale; only its API says so.
    let mut e1 = claim("everflow", "E1", Some("A-1"));
    e1.status = ConversionStatus::Reversed;
    e1.status_changed_at = Some(t("2026-11-20T00:00:00Z"));
    // A-2: both approved: the API's claim is judged, the copy is its duplicate.
    let e2 = claim("everflow", "E2", Some("A-2"));
    // A-3: impact wins the order over everflow (later click).
    let mut c3 = claim("impact", "C3", Some("A-3"));
    c3.clicked_at = Some(t("2026-11-02T09:00:00Z"));
    let mut e3 = claim("everflow", "E3", Some("A-3"));
    e3.clicked_at = Some(t("2026-11-02T08:00:00Z"));
    // A-4: the API has not delivered it yet: the copy competes and wins.
    // A-5: the network rejected it, and so says the API.
    let mut e5 = claim("everflow", "E5", Some("A-5"));
    e5.status = ConversionStatus::Rejected;
    let cs = vec![
        e1,
        copy("P1", "A-1"),
        e2,
        copy("P2", "A-2"),
        c3,
        e3,
        copy("P3", "A-3"),
        copy("P4", "A-4"),
        e5,
        copy("P5", "a-5 "),
    ];
    let os = ["A-1", "A-2", "A-3", "A-4", "A-5"].map(order).to_vec();
    let d = decide(&p, &claims(cs), &orders(os), &FxTable::empty(), t(NOW));
    let by_id = |id: &str| d.iter().find(|d| d.claim.id == id).unwrap();
    let winner = |id: &str| {
        let w = by_id(id)
            .winner
            .as_ref()
            .expect("a duplicate names its winner");
        format!("{}/{}", w.source, w.id)
    };

    assert_eq!(by_id("E1").outcome, Outcome::NetworkReversed);
    let p1 = by_id("P1");
    assert_eq!(p1.outcome, Outcome::NetworkReversed);
    assert!(!p1.payable);
    assert_eq!(
        p1.reason,
        "this postback is a copy of everflow/E1 (`ef_s2s` mirrors `everflow`), which the network reversed (2026-11-20T00:00:00Z)"
    );

    assert_eq!(by_id("E2").outcome, Outcome::Matched);
    assert!(by_id("E2").payable);
    let p2 = by_id("P2");
    assert_eq!(p2.outcome, Outcome::Duplicate);
    assert!(!p2.payable);
    assert_eq!(winner("P2"), "everflow/E2");
    assert_eq!(
        p2.reason,
        "this postback is a copy of everflow/E2 (`ef_s2s` mirrors `everflow`), which is judged in its place"
    );

    assert_eq!(by_id("C3").outcome, Outcome::Matched);
    assert_eq!(by_id("E3").outcome, Outcome::Duplicate);
    assert_eq!(winner("E3"), "impact/C3");
    assert_eq!(winner("P3"), "impact/C3");
    assert_eq!(
        by_id("P3").reason,
        "this postback is a copy of everflow/E3 (`ef_s2s` mirrors `everflow`), which is judged in its place; order shop/A-3 is won by impact/C3"
    );

    assert_eq!(by_id("P4").outcome, Outcome::Matched);
    assert!(by_id("P4").payable);

    assert_eq!(by_id("E5").outcome, Outcome::NetworkRejected);
    assert_eq!(by_id("P5").outcome, Outcome::NetworkRejected);

    // Without the link, the copy competes and wins its order from E2 on
    // its later time (the QA finding: the partner is paid as `ef_s2s`, and
    // a reversal only the API reports leaves the copy paid).
    p.mirrors.clear();
    let unlinked = decide(
        &p,
        &claims(vec![
            copy("P2", "A-2"),
            claim("everflow", "E2", Some("A-2")),
        ]),
        &orders(vec![order("A-2")]),
        &FxTable::empty(),
        t(NOW),
    );
    assert_eq!(unlinked[0].claim.id, "P2");
    assert_eq!(unlinked[0].outcome, Outcome::Matched);
    assert_golden("mirrored_copy", &d);
}

#[test]
fn no_order_after_grace_and_awaiting_within_it() {
    // Occurred 2026-11-20 → grace ends 11-27 < now: no_order.
    let mut late = claim("impact", "C8", Some("ZZZ-1"));
    late.occurred_at = t("2026-11-20T00:00:00Z");
    // Occurred 2026-12-10 → grace ends 12-17 > now: awaiting_order.
    let mut fresh = claim("impact", "C9", Some("ZZZ-2"));
    fresh.occurred_at = t("2026-12-10T00:00:00Z");
    let d = run(vec![late, fresh], vec![order("A-800")]);
    assert_eq!(d[0].outcome, Outcome::NoOrder);
    assert_eq!(d[1].outcome, Outcome::AwaitingOrder);
    assert!(d.iter().all(|d| !d.payable && d.order.is_none()));
    assert_golden("no_order_awaiting_order", &d);
}

#[test]
fn fx_missing_when_no_rate_and_converted_when_there_is_one() {
    let mut c = claim("impact", "C10", Some("A-1000"));
    c.sale_amount = Some(m("92.00", "EUR"));
    let d = run(vec![c.clone()], vec![order("A-1000")]);
    assert_eq!(d[0].outcome, Outcome::FxMissing);
    assert!(d[0].reason.contains("EUR→USD"), "{}", d[0].reason);
    assert!(!d[0].payable);
    assert_golden("fx_missing", &d);
    // With EUR→USD 1.0870 on 2026-10-30 (3 days old, max age 7):
    // 92.00 × 1.0870 = 100.004 → 100.00 USD, matched.
    let fx = FxTable::from_rates(
        vec![(
            "2026-10-30".parse().unwrap(),
            "EUR".to_string(),
            "USD".to_string(),
            "1.0870".parse().unwrap(),
        )],
        7,
    );
    let d = decide(
        &program(),
        &claims(vec![c]),
        &orders(vec![order("A-1000")]),
        &fx,
        t(NOW),
    );
    assert_eq!(d[0].outcome, Outcome::Matched);
    assert_eq!(amount(&d[0]), "100.00 USD");
    assert_eq!(d[0].fx_rate, Some("1.0870".parse().unwrap()));
    // The reason names what was converted (QA20 F7), at the rate's digits
    // as given, as `fx_rate` and the statement trace write it (QA21 B-F6).
    assert!(
        d[0].reason
            .contains("claimed 100.00 USD (92.00 EUR at 1.0870 of 2026-10-30) vs order 100.00 USD"),
        "{}",
        d[0].reason
    );
}

/// QA25 N2: a claim of 150.00 EUR for an order of 150.00 EUR placed 4 h
/// earlier, across a day on which the EUR rate moved (1.0650 → 1.0700),
/// was `amount_mismatch` ("0.75 over"): each side was converted at its own
/// day's rate. A claim in its order's currency is now converted at the
/// order's rate, by order id and by coupon alike; one in another currency
/// still at its own day's.
#[test]
fn a_claim_in_its_orders_currency_is_converted_at_the_orders_rate() {
    let mut program = program();
    program.matching.amount_tolerance_pct = "0".parse().unwrap();
    let rate = |day: &str, base: &str, r: &str| {
        (
            day.parse().unwrap(),
            base.to_string(),
            "USD".to_string(),
            r.parse().unwrap(),
        )
    };
    let fx = FxTable::from_rates(
        vec![
            rate("2026-11-01", "EUR", "1.0650"),
            rate("2026-11-02", "EUR", "1.0700"),
            rate("2026-11-01", "GBP", "1.2500"),
            rate("2026-11-02", "GBP", "1.2600"),
        ],
        7,
    );
    let mut o = order("E-1");
    o.created_at = t("2026-11-01T23:50:00Z");
    o.amount = m("150.00", "EUR");
    o.coupon = Some("SAVE".into());
    let mut c = claim("impact", "C1", Some("E-1"));
    c.occurred_at = t("2026-11-02T04:10:00Z");
    c.sale_amount = Some(m("150.00", "EUR"));
    let judge = |c: &plugin_api::Conversion| {
        decide(
            &program,
            &claims(vec![c.clone()]),
            &orders(vec![o.clone()]),
            &fx,
            t(NOW),
        )
        .remove(0)
    };
    // 150.00 × 1.0650 = 159.75 on both sides: matched.
    let d = judge(&c);
    assert_eq!(d.outcome, Outcome::Matched, "{}", d.reason);
    assert_eq!(amount(&d), "159.75 USD");
    assert_eq!(d.fx_rate, Some("1.0650".parse().unwrap()));
    // By coupon too (no order id; 0.50 tolerance, 4 h 20 min apart).
    let mut by_coupon = c.clone();
    by_coupon.order_id = None;
    by_coupon.coupon = Some("save".into());
    let d = judge(&by_coupon);
    assert_eq!(
        (d.outcome, d.matched_by),
        (Outcome::Matched, Some(MatchedBy::Coupon)),
        "{}",
        d.reason
    );
    // A claim in GBP is converted at its own day: 119.20 × 1.26 = 150.19
    // against 159.75: a real difference.
    let mut gbp = c.clone();
    gbp.sale_amount = Some(m("119.20", "GBP"));
    let d = judge(&gbp);
    assert_eq!(d.outcome, Outcome::AmountMismatch, "{}", d.reason);
    assert!(
        d.reason
            .contains("claimed 150.19 USD (119.20 GBP at 1.2600 of 2026-11-02)"),
        "{}",
        d.reason
    );
    // QA26 F1: compared in EUR, exactly: 151.50 against 150.00 is at the
    // 1 % edge (1.50), so matched; rounding both to cents at 1.105 first
    // made it 1.66 against 1.6575, a mismatch (the same edge in USD was
    // matched). 151.50 × 1.105 = 167.4075 → 167.41 USD.
    let mut pct = program.clone();
    pct.matching.amount_tolerance_pct = "1".parse().unwrap();
    pct.matching.amount_tolerance_abs = "0".parse().unwrap();
    let same_day = FxTable::from_rates(vec![rate("2026-11-01", "EUR", "1.105")], 7);
    let at_edge = |amount: &str| {
        let mut c = c.clone();
        c.occurred_at = t("2026-11-01T23:55:00Z");
        c.sale_amount = Some(m(amount, "EUR"));
        decide(
            &pct,
            &claims(vec![c]),
            &orders(vec![o.clone()]),
            &same_day,
            t(NOW),
        )
        .remove(0)
    };
    let d = at_edge("151.50");
    assert_eq!(d.outcome, Outcome::Matched, "{}", d.reason);
    assert_eq!(amount(&d), "167.41 USD");
    let d = at_edge("148.50");
    assert_eq!(d.outcome, Outcome::Matched, "{}", d.reason);
    // The reason's tolerance is the EUR one it was held to (QA27 N2).
    assert!(
        d.reason.contains("within tolerance 1.50 EUR"),
        "{}",
        d.reason
    );
    // By coupon and by click id alike (QA27 N1: they still compared the
    // amounts rounded in USD). Two orders share the click: the one at the
    // edge is within tolerance, the other (closer in time) is not.
    let mut near = o.clone();
    near.order_id = "E-near".into();
    near.click_ids = vec!["clk-9".into()];
    let mut far = near.clone();
    far.order_id = "E-far".into();
    far.amount = m("200.00", "EUR");
    far.created_at = t("2026-11-01T23:54:00Z");
    let mut by_click = c.clone();
    by_click.order_id = None;
    by_click.click_id = Some("clk-9".into());
    by_click.occurred_at = t("2026-11-01T23:55:00Z");
    by_click.sale_amount = Some(m("151.50", "EUR"));
    let mut by_coupon = by_click.clone();
    by_coupon.external_id = "C2".into();
    by_coupon.click_id = None;
    by_coupon.coupon = Some("save".into());
    let d = decide(
        &pct,
        &claims(vec![by_click]),
        &orders(vec![near.clone(), far]),
        &same_day,
        t(NOW),
    )
    .remove(0);
    assert_eq!(
        (d.outcome, d.order.map(|r| r.id)),
        (Outcome::Matched, Some("E-near".to_string())),
        "{}",
        d.reason
    );
    let d = decide(
        &pct,
        &claims(vec![by_coupon]),
        &orders(vec![near]),
        &same_day,
        t(NOW),
    )
    .remove(0);
    assert_eq!(
        (d.outcome, d.matched_by),
        (Outcome::Matched, Some(MatchedBy::Coupon)),
        "{}",
        d.reason
    );
    // Beyond it, the reason says so in EUR.
    let d = at_edge("151.51");
    assert_eq!(d.outcome, Outcome::AmountMismatch, "{}", d.reason);
    assert!(
        d.reason
            .contains("(difference 1.51 EUR over, beyond tolerance 1.50 EUR)"),
        "{}",
        d.reason
    );
}

#[test]
fn click_id_then_coupon_matching() {
    let mut by_click = claim("impact", "C11", Some("unknown"));
    by_click.click_id = Some(" clk-1 ".into());
    let mut o1 = order("A-1100");
    o1.click_ids = vec!["clk-1".into()];
    // Coupon: same coupon (case-folded), 100.80 vs 100.00 within 1.00, 3 h apart.
    let mut by_coupon = claim("everflow", "E11", None);
    by_coupon.coupon = Some("save10".into());
    by_coupon.sale_amount = Some(m("100.80", "USD"));
    by_coupon.occurred_at = t("2026-11-03T13:00:00Z");
    let mut o2 = order("A-1101");
    o2.coupon = Some("SAVE10".into());
    o2.created_at = t("2026-11-03T10:00:00Z");
    let d = run(vec![by_click, by_coupon], vec![o1, o2]);
    assert_eq!(d[0].matched_by, Some(MatchedBy::Coupon));
    assert_eq!(d[0].order.as_ref().unwrap().id, "A-1101");
    assert_eq!(d[1].matched_by, Some(MatchedBy::ClickId));
    assert_eq!(d[1].order.as_ref().unwrap().id, "A-1100");
    assert_golden("click_and_coupon", &d);
}

/// QA 2026-11-29: one click, two purchases. Orders TWO-1 (100.00, 10:00)
/// and TWO-2 (60.00, 14:00) carry the same click id; the network reports
/// two sales, 100.00 at 10:01 and 60.00 at 14:01. Each claim fits its own
/// order (amount within tolerance, closest in time): both are matched,
/// basis 100.00 and 60.00. Before, both went to the earliest order: one
/// duplicate, one amount mismatch, 100.00 paid instead of 160.00.
#[test]
fn claims_sharing_a_click_id_each_match_the_order_they_fit() {
    let mut o1 = order("TWO-1");
    o1.click_ids = vec!["same-click".into()];
    o1.created_at = t("2026-11-02T10:00:00Z");
    let mut o2 = order("TWO-2");
    o2.click_ids = vec!["same-click".into()];
    o2.created_at = t("2026-11-02T14:00:00Z");
    o2.amount = m("60.00", "USD");
    let mut c1 = claim("impact", "SC1", None);
    c1.click_id = Some("same-click".into());
    c1.occurred_at = t("2026-11-02T10:01:00Z");
    let mut c2 = claim("impact", "SC2", None);
    c2.click_id = Some("same-click".into());
    c2.occurred_at = t("2026-11-02T14:01:00Z");
    c2.sale_amount = Some(m("60.00", "USD"));
    let d = run(vec![c1.clone(), c2.clone()], vec![o1.clone(), o2.clone()]);
    let got: Vec<(&str, Outcome, &str, String)> = d
        .iter()
        .map(|d| {
            (
                d.claim.id.as_str(),
                d.outcome,
                d.order.as_ref().unwrap().id.as_str(),
                amount(d),
            )
        })
        .collect();
    assert_eq!(
        got,
        [
            ("SC1", Outcome::Matched, "TWO-1", "100.00 USD".to_owned()),
            ("SC2", Outcome::Matched, "TWO-2", "60.00 USD".to_owned()),
        ]
    );
    // The amount decides before time: a 60.00 claim at 10:01 still takes
    // the 60.00 order, the one within tolerance.
    c2.occurred_at = t("2026-11-02T10:01:00Z");
    let d = run(vec![c2.clone()], vec![o1.clone(), o2.clone()]);
    assert_eq!(d[0].order.as_ref().unwrap().id, "TWO-2");
    // No amount to compare: the order closest in time.
    c2.sale_amount = None;
    let d = run(vec![c2], vec![o1, o2]);
    assert_eq!(d[0].order.as_ref().unwrap().id, "TWO-1");
}

/// QA 2026-11-29: a claim naming the order (order id) beats one that found
/// it only by coupon, whatever the click times say; the reason says so.
#[test]
fn a_claim_naming_the_order_beats_a_coupon_match() {
    let mut o = order("C-1");
    o.coupon = Some("CODE7".into());
    let mut named = claim("impact", "N1", Some("C-1"));
    named.occurred_at = t("2026-11-02T10:00:00Z");
    let mut guessed = claim("everflow", "G1", None);
    guessed.coupon = Some("code7".into());
    guessed.occurred_at = t("2026-11-02T12:00:00Z"); // later: last click would pick it
    let d = run(vec![named, guessed], vec![o]);
    // everflow/G1, impact/N1
    assert_eq!(d[0].matched_by, Some(MatchedBy::Coupon));
    assert_eq!(d[0].outcome, Outcome::Duplicate);
    assert!(
        d[0].reason
            .contains("naming the order, while this claim matched it only by coupon"),
        "{}",
        d[0].reason
    );
    assert_eq!(d[1].outcome, Outcome::Matched);
}

/// QA 2026-11-29: a duplicate's reason names the criterion that told the
/// claims apart, not the rule's first one when that was a tie.
#[test]
fn a_duplicate_names_the_tie_break_that_decided() {
    // Equal click times: source priority (impact ranks 1, everflow 2).
    let mut a = claim("impact", "T1", Some("A-900"));
    a.clicked_at = Some(t("2026-11-02T09:00:00Z"));
    let mut b = claim("everflow", "T2", Some("A-900"));
    b.clicked_at = a.clicked_at;
    let d = run(vec![a.clone(), b], vec![order("A-900")]);
    assert_eq!(d[0].outcome, Outcome::Duplicate);
    assert!(
        d[0].reason.contains(
            "source priority (impact ranks 1 vs everflow ranks 2), the tie-break after equal last click times"
        ),
        "{}",
        d[0].reason
    );
    // Same source and time: the claim id.
    let mut a2 = a.clone();
    a2.external_id = "T0".into();
    let d = run(vec![a, a2], vec![order("A-900")]);
    assert_eq!(d[1].outcome, Outcome::Duplicate);
    assert!(
        d[1].reason.contains("claim id, the last tie-break"),
        "{}",
        d[1].reason
    );
}

/// QA 2026-11-29: a 0.00 order without a refund is not "fully refunded",
/// and a claim with no id to match says so plainly.
#[test]
fn a_zero_order_is_not_refunded_and_an_idless_claim_says_what_it_lacks() {
    let mut o = order("Z-0");
    o.amount = m("0.00", "USD");
    let mut c = claim("impact", "Z1", Some("Z-0"));
    c.sale_amount = Some(m("0.00", "USD"));
    let d = run(vec![c], vec![o]);
    assert_eq!(d[0].outcome, Outcome::Matched, "{}", d[0].reason);
    let d = run(vec![claim("impact", "Z2", None)], vec![]);
    assert_eq!(d[0].outcome, Outcome::NoOrder);
    assert!(
        d[0].reason.starts_with(
            "the claim carries no order id or click id to match; the 7-day grace period ended"
        ),
        "{}",
        d[0].reason
    );
}

#[test]
fn order_ids_differing_in_case_and_whitespace_and_alt_ids_match() {
    let mut o = order("A-1200");
    o.alt_ids = vec!["#1200".into(), "5550001200".into()];
    let c1 = claim("impact", "C12", Some("  a-1200\t"));
    let c2 = claim("everflow", "E12", Some(" #1200 "));
    let d = run(vec![c1, c2], vec![o]);
    assert!(d.iter().all(|d| d.matched_by == Some(MatchedBy::OrderId)));
    // Both quote the same order: one wins (everflow: the later claim key? no:
    // equal times → source priority → impact).
    assert_eq!(d[1].claim.source, "impact");
    assert_eq!(d[1].outcome, Outcome::Matched);
    assert_eq!(d[0].outcome, Outcome::Duplicate);
}

/// QA30-D F1: orders sharing an order id once trimmed and case-folded (in
/// two files of one file-drop connector, or in two orders connectors) were
/// matched by position: a claim quoting the other's exact id lost as a
/// duplicate on the first, and a claim fitting the other's amount was an
/// amount mismatch. Now: an order's own id before an alternative id, then
/// the id written as the claim writes it, then the best fit (as for a
/// shared click id); the reason says several orders carry the id.
#[test]
fn orders_sharing_an_id_are_told_apart_by_exact_id_then_fit() {
    // Case A: `DUP-1` and `dup-1` in one connector.
    let exact = claim("impact", "N17", Some("dup-1"));
    let folded = claim("impact", "N16", Some("Dup-1"));
    let d = run(vec![exact, folded], vec![order("DUP-1"), order("dup-1")]);
    let by_claim = |id: &str| d.iter().find(|d| d.claim.id == id).unwrap();
    let n17 = by_claim("N17");
    assert_eq!(n17.outcome, Outcome::Matched, "{}", n17.reason);
    assert_eq!(n17.order.as_ref().unwrap().id, "dup-1");
    assert!(
        n17.reason.contains(
            "; 2 orders carry order id `dup-1` once trimmed and case-folded: this one has it written as the claim writes it"
        ),
        "{}",
        n17.reason
    );
    // `Dup-1` is written like neither: the best fit, here (all equal) the
    // first by position; a match of its own, not a duplicate of N17.
    let n16 = by_claim("N16");
    assert_eq!(n16.outcome, Outcome::Matched, "{}", n16.reason);
    assert_eq!(n16.order.as_ref().unwrap().id, "DUP-1");
    assert!(
        n16.reason.contains("this one fits the claim best"),
        "{}",
        n16.reason
    );

    // Case B: `SHARED-1` in two orders connectors, 80.00 and 100.00: the
    // 100.00 claim takes the order its amount fits.
    let mut p = program();
    p.orders.push("pos".into());
    let mut cheap = order("SHARED-1");
    cheap.amount = m("80.00", "USD");
    let mut other = order("SHARED-1");
    other.source = "pos".into();
    let c = claim("impact", "N18", Some("SHARED-1"));
    let d = decide(
        &p,
        &claims(vec![c]),
        &orders(vec![cheap, other]),
        &FxTable::empty(),
        t(NOW),
    );
    assert_eq!(d[0].outcome, Outcome::Matched, "{}", d[0].reason);
    assert_eq!(d[0].order.as_ref().unwrap().source, "pos");
    assert_eq!(amount(&d[0]), "100.00 USD");

    // An order's own id wins over another's alternative id, however written.
    let mut alt = order("B-2");
    alt.alt_ids = vec!["x-7".into()];
    let d = run(
        vec![claim("impact", "N19", Some("x-7"))],
        vec![order("X-7"), alt],
    );
    assert_eq!(d[0].order.as_ref().unwrap().id, "X-7", "{}", d[0].reason);
    assert!(
        d[0].reason
            .contains("this one has it as its own id, the others as an alternative id"),
        "{}",
        d[0].reason
    );
}

/// QA30-D F3: the grace period's end in a reason lost its fraction of a
/// second ("ends 2026-12-02T12:00:00Z" for a claim at 12:00:00.5, false
/// when judged at 12:00:00.4).
#[test]
fn a_grace_end_with_a_fraction_of_a_second_is_said_with_it() {
    let mut c = claim("impact", "G2", Some("NOPE-2"));
    c.occurred_at = t("2026-12-08T00:00:00.5Z");
    let d = run(vec![c], vec![]);
    assert_eq!(d[0].outcome, Outcome::AwaitingOrder);
    assert!(
        d[0].reason
            .ends_with("the 7-day grace period ends 2026-12-15T00:00:00.500Z"),
        "{}",
        d[0].reason
    );
}

#[test]
fn claim_exactly_at_the_grace_boundary_is_no_order() {
    let mut c = claim("impact", "C13", Some("NOPE"));
    c.occurred_at = t("2026-12-08T00:00:00Z"); // + 7 days = NOW exactly
    let d = run(vec![c.clone()], vec![]);
    assert_eq!(d[0].outcome, Outcome::NoOrder);
    c.occurred_at = t("2026-12-08T00:00:01Z"); // one second later: still waiting
    let d = run(vec![c], vec![]);
    assert_eq!(d[0].outcome, Outcome::AwaitingOrder);
}

#[test]
fn dst_day_uses_instants_not_wall_clock() {
    // Europe/Berlin switched to summer time at 2026-03-29T01:00Z.
    // Order 00:45Z (01:45 CET); the network reports 03:30+02:00 (01:30Z):
    // 45 minutes apart although the wall clocks differ by 1 h 45.
    let p = program_from(
        r#"
id = "dst"
currency = "USD"
claims = ["impact"]
orders = ["shop"]
return_window_days = 30
[match]
fuzzy_window_hours = 1
coupon_matching = true
amount_tolerance_abs = "0.50"
"#,
    );
    let mut o = order("A-DST");
    o.created_at = t("2026-03-29T00:45:00Z");
    o.coupon = Some("SPRING".into());
    let mut c = claim("impact", "C-DST", None);
    c.occurred_at = t("2026-03-29T03:30:00+02:00");
    c.coupon = Some("spring".into());
    let d = decide(
        &p,
        &claims(vec![c]),
        &orders(vec![o]),
        &FxTable::empty(),
        t(NOW),
    );
    assert_eq!(d[0].matched_by, Some(MatchedBy::Coupon));
    // Lock: exactly 30 × 24 h later in UTC, whatever the local clocks did.
    assert_eq!(d[0].lock_at, Some(t("2026-04-28T00:45:00Z")));
    assert!(d[0].payable);
}

#[test]
fn network_lock_date_wins_over_return_window() {
    let mut c = claim("impact", "C14", Some("A-1400"));
    c.locked_at = Some(t("2026-12-20T00:00:00Z"));
    let d = run(vec![c], vec![order("A-1400")]);
    assert_eq!(d[0].outcome, Outcome::Matched);
    assert_eq!(d[0].lock_at, Some(t("2026-12-20T00:00:00Z")));
    assert!(!d[0].payable, "lock date not reached");
}

#[test]
fn the_report_writes_amounts_with_the_currency_minor_digits() {
    // The network sends "95" and the order says "80.5": the report reads
    // 95.00 and 80.50, in the listing and the sums.
    let mut c = claim("impact", "C30", Some("A-3000"));
    c.sale_amount = Some(m("95", "USD"));
    c.commission = Some(m("9.5", "USD"));
    let mut o = order("A-3000");
    o.amount = m("80.5", "USD");
    let d = run(vec![c], vec![o]);
    assert_eq!(d[0].outcome, Outcome::AmountMismatch);
    let period: reckon::reconcile::report::Period = "2026-11".parse().unwrap();
    let r = reckon::reconcile::report::build("shop-us", "USD", period, chrono_tz::UTC, &d);
    let row = &r.discrepancies[0];
    assert_eq!(row.claimed_amount.as_deref(), Some("95.00 USD"));
    assert_eq!(row.order_amount.as_deref(), Some("80.50 USD"));
    assert_eq!(row.network_commission.as_deref(), Some("9.50 USD"));
    assert_eq!(r.summary[0].claimed_amount.unwrap().to_string(), "95.00");
    assert_eq!(
        r.summary[0].basis.map(|b| b.to_string()).as_deref(),
        Some("80.50")
    );
    // A network that sends no sale amount (CAKE): the row's claimed amount
    // is unknown, empty in the CSV, not 0.00 (QA new-user F17).
    let mut c = claim("cake", "C34", Some("A-3000"));
    c.sale_amount = None;
    let d = run(vec![c], vec![order("A-3000")]);
    let r = reckon::reconcile::report::build("shop-us", "USD", period, chrono_tz::UTC, &d);
    assert_eq!(r.summary[0].claimed_amount, None);
    let csv = reckon::reconcile::report::render(&r, reckon::reconcile::report::Format::Csv);
    assert!(csv.lines().nth(1).unwrap().starts_with("cake,"), "{csv}");
    assert!(csv.contains(",USD,1,1,,10.00,USD,"), "{csv}");
}

#[test]
fn the_report_sums_network_commission_in_its_own_currency() {
    // A sale claimed in USD with the commission paid in EUR (CAKE pays and
    // receives in different currencies): the commission is summed under
    // EUR on its own row, not dropped.
    let mut c1 = claim("cake", "C31", Some("A-3100"));
    c1.commission = Some(m("7.5", "EUR"));
    let mut c2 = claim("cake", "C32", Some("A-3200"));
    c2.commission = Some(m("2.5", "EUR"));
    let mut c3 = claim("cake", "C33", Some("A-3300"));
    c3.commission = None;
    let d = run(
        vec![c1, c2, c3],
        vec![order("A-3100"), order("A-3200"), order("A-3300")],
    );
    let period: reckon::reconcile::report::Period = "2026-11".parse().unwrap();
    let r = reckon::reconcile::report::build("shop-us", "USD", period, chrono_tz::UTC, &d);
    let by_cur: Vec<(&str, &str, String, u64)> = r
        .summary
        .iter()
        .map(|s| {
            (
                s.currency.as_str(),
                s.commission_currency.as_str(),
                s.network_commission
                    .map(|c| c.to_string())
                    .unwrap_or_default(),
                s.claims,
            )
        })
        .collect();
    assert!(
        by_cur.contains(&("USD", "EUR", "10.00".into(), 2)),
        "{by_cur:?}"
    );
    // C33 reported no commission: its row's is empty, not 0.00 (QA L4).
    assert!(
        by_cur.contains(&("USD", "USD", String::new(), 1)),
        "{by_cur:?}"
    );
    assert_eq!(r.summary.iter().map(|s| s.claims).sum::<u64>(), 3);
    // Its CSV row has no commission currency either: a currency beside no
    // amount read as "the network said 0 USD" (finance QA13 F5).
    let csv = reckon::reconcile::report::render(&r, reckon::reconcile::report::Format::Csv);
    let summary = csv.split("\n\n").next().unwrap();
    let rows: Vec<&str> = summary.lines().filter(|l| l.starts_with("cake,")).collect();
    assert_eq!(rows.len(), 2, "{csv}");
    assert!(rows.iter().any(|l| l.contains(",10.00,EUR,")), "{csv}");
    assert!(
        rows.iter().any(|l| l.contains(",100.00,,,100.00,")),
        "{csv}"
    );
}

#[test]
fn the_report_month_is_on_the_statement_timezone_calendar() {
    // 23:30 UTC on 31 October is already 1 November in Berlin: the claim is
    // in Berlin's November report (as on its November statement), not
    // October's.
    let mut c = claim("impact", "C40", Some("A-4000"));
    c.occurred_at = t("2026-10-31T23:30:00Z");
    let d = run(vec![c], vec![order("A-4000")]);
    let berlin: chrono_tz::Tz = "Europe/Berlin".parse().unwrap();
    let build = |month: &str, tz| {
        reckon::reconcile::report::build("shop-us", "USD", month.parse().unwrap(), tz, &d)
    };
    assert_eq!(build("2026-11", berlin).claims, 1);
    assert_eq!(build("2026-10", berlin).claims, 0);
    assert_eq!(build("2026-10", chrono_tz::UTC).claims, 1);
    assert_eq!(build("2026-11", berlin).timezone, "Europe/Berlin");
}

#[test]
fn fx_rates_are_taken_on_the_programs_day() {
    // 2026-10-14T15:30Z is 10-15 00:30 in Tokyo. EUR→USD is 1.20 on 10-14
    // and 1.08 on 10-15 (max age 0). The claim is 100.00 EUR, the order
    // 108.00 USD (the program's currency): on Tokyo's day 100.00 × 1.08 =
    // 108.00, matched; on the UTC day × 1.20 = 120.00, a mismatch.
    let at = t("2026-10-14T15:30:00Z");
    let mut c = claim("impact", "C40", Some("A-4000"));
    c.sale_amount = Some(m("100.00", "EUR"));
    c.occurred_at = at;
    c.clicked_at = None;
    let mut o = order("A-4000");
    o.amount = m("108.00", "USD");
    o.created_at = at;
    let rate = |day: &str, r: &str| {
        (
            day.parse().unwrap(),
            "EUR".to_string(),
            "USD".to_string(),
            r.parse().unwrap(),
        )
    };
    let fx = FxTable::from_rates(
        vec![rate("2026-10-14", "1.20"), rate("2026-10-15", "1.08")],
        0,
    );
    let judge = |p: &reckon::reconcile::config::ProgramConfig| {
        decide(
            p,
            &claims(vec![c.clone()]),
            &orders(vec![o.clone()]),
            &fx,
            t(NOW),
        )
    };
    let mut tokyo = program();
    tokyo.default_timezone = Some(chrono_tz::Asia::Tokyo);
    let d = judge(&tokyo);
    assert_eq!(d[0].outcome, Outcome::Matched, "{}", d[0].reason);
    assert_eq!(d[0].fx_rate, Some("1.08".parse().unwrap()));
    // A commission timezone is the program's calendar too.
    let mut utc_daemon = program();
    let commission: reckon::payout::config::CommissionConfig =
        toml::from_str("payout_currency = \"USD\"\ntimezone = \"Asia/Tokyo\"\n").unwrap();
    utc_daemon.commission = Some(commission);
    assert_eq!(judge(&utc_daemon)[0].fx_rate, Some("1.08".parse().unwrap()));
    // On UTC days (the default) the 10-14 rate applies.
    let d = judge(&program());
    assert_eq!(d[0].outcome, Outcome::AmountMismatch);
    assert_eq!(d[0].fx_rate, Some("1.20".parse().unwrap()));
    // Only 10-14's rate, Tokyo: none for the program's day, named in the reason.
    let only = FxTable::from_rates(vec![rate("2026-10-14", "1.20")], 0);
    let d = decide(
        &tokyo,
        &claims(vec![c.clone()]),
        &orders(vec![o.clone()]),
        &only,
        t(NOW),
    );
    assert_eq!(d[0].outcome, Outcome::FxMissing);
    assert!(
        d[0].reason.contains("rate for 2026-10-15"),
        "{}",
        d[0].reason
    );
    // The calendar is part of the program's fingerprint (a change re-judges
    // every claim), except UTC's, so existing UTC programs keep theirs.
    assert_ne!(tokyo.fingerprint(), program().fingerprint());
    let mut utc = program();
    utc.default_timezone = Some(chrono_tz::UTC);
    assert_eq!(utc.fingerprint(), program().fingerprint());
}

#[test]
fn the_report_csv_names_the_basis_currency_and_guards_text_against_formulas() {
    let mut c = claim("impact", "-C34", Some("A-3400"));
    c.partner_name = Some("=HYPERLINK(\"http://x.test\",\"Click\")".into());
    c.sale_amount = Some(m("120.00", "USD"));
    let d = run(vec![c], vec![order("A-3400")]);
    let period: reckon::reconcile::report::Period = "2026-11".parse().unwrap();
    let r = reckon::reconcile::report::build("shop-us", "USD", period, chrono_tz::UTC, &d);
    use reckon::reconcile::report::{render, Format};
    let csv = render(&r, Format::Csv);
    let mut lines = csv.lines();
    assert!(
        lines
            .next()
            .unwrap()
            .ends_with(",basis,basis_currency,as_of,timezone,judged_at,payee"),
        "{csv}"
    );
    let row = lines.next().unwrap();
    assert!(
        row.contains(",\"'=HYPERLINK(") && row.ends_with(",100.00,USD,,UTC,,impact:p1"),
        "{row}"
    );
    assert!(csv.contains("\n'-C34,") || csv.contains(",'-C34,"), "{csv}");
    // The HTML shows the text as it is (escaped, no quote added).
    let html = render(&r, Format::Html);
    assert!(
        html.contains("=HYPERLINK(") && !html.contains("'=HYPERLINK"),
        "{html}"
    );
}

#[test]
fn the_report_lists_the_fx_rates_behind_a_converted_basis() {
    // QA finding M5 of 2026-11-29: decisions keep the rates a basis was
    // converted with, the report showed neither. A 92.00 EUR claim against
    // an 80.00 GBP order in a USD program: 92.00 × 1.0870 = 100.00 and
    // 80.00 × 1.25 = 100.00, each rate listed so the basis can be
    // recomputed; a claim and order in USD list none.
    let mut eur = claim("impact", "C50", Some("A-5000"));
    eur.sale_amount = Some(m("92.00", "EUR"));
    let mut gbp = order("A-5000");
    gbp.amount = m("80.00", "GBP");
    let rate = |base: &str, r: &str| {
        (
            "2026-11-01".parse().unwrap(),
            base.to_string(),
            "USD".to_string(),
            r.parse().unwrap(),
        )
    };
    let fx = FxTable::from_rates(vec![rate("EUR", "1.0870"), rate("GBP", "1.25")], 7);
    let d = decide(
        &program(),
        &claims(vec![eur, claim("impact", "C51", Some("A-5100"))]),
        &orders(vec![gbp, order("A-5100")]),
        &fx,
        t(NOW),
    );
    assert_eq!(d[0].outcome, Outcome::Matched, "{}", d[0].reason);
    let period: reckon::reconcile::report::Period = "2026-11".parse().unwrap();
    use reckon::reconcile::report::{build_with, render, Format};
    let r = build_with("shop-us", "USD", period, chrono_tz::UTC, &d, true);
    let (converted, plain) = (&r.discrepancies[0], &r.discrepancies[1]);
    assert_eq!(converted.claim_fx_rate, Some("1.0870".parse().unwrap()));
    assert_eq!(converted.order_fx_rate, Some("1.25".parse().unwrap()));
    assert_eq!((plain.claim_fx_rate, plain.order_fx_rate), (None, None));
    let csv = render(&r, Format::Csv);
    let listing: Vec<&str> = csv.split("\n\n").nth(1).unwrap().lines().collect();
    // Appended after the existing columns, which keep their places.
    assert!(
        listing[0].starts_with("network,claim_id,partner_id,occurred_at,outcome,order,")
            && listing[0].contains(",winner,reason,claim_fx_rate,order_fx_rate,decided_at,"),
        "{csv}"
    );
    assert!(
        listing[1].contains(",1.0870,1.25,2026-12-15T00:00:00Z,"),
        "{csv}"
    );
    assert!(listing[2].contains(",,,2026-12-15T00:00:00Z,"), "{csv}");
    let json: serde_json::Value = serde_json::from_str(&render(&r, Format::Json)).unwrap();
    assert_eq!(json["discrepancies"][0]["claim_fx_rate"], "1.0870");
    assert_eq!(json["discrepancies"][0]["order_fx_rate"], "1.25");
    assert!(json["discrepancies"][1]["claim_fx_rate"].is_null());
    let html = render(&r, Format::Html);
    assert!(
        html.contains("<th>claim fx rate</th><th>order fx rate</th>")
            && html.contains("<td>1.0870</td><td>1.25</td>"),
        "{html}"
    );
}

#[test]
fn the_report_says_when_its_decisions_were_judged_and_which_are_out_of_date() {
    // QA finding M2 of 2026-11-29: a report of stored decisions did not
    // say when they were judged, and showed a claim whose grace period had
    // ended since as still awaiting its order. Judged at NOW (12-15): C60
    // awaits its order until 12-17; C61 is matched but locked by its
    // network until 12-20; C62 is payable (nothing left to change).
    use reckon::reconcile::engine::next_change_at;
    use reckon::reconcile::report::{build, render, stale, Format};
    let mut waiting = claim("impact", "C60", Some("ZZZ-60"));
    waiting.occurred_at = t("2026-12-10T00:00:00Z");
    let mut locked = claim("impact", "C61", Some("A-6100"));
    locked.locked_at = Some(t("2026-12-20T00:00:00Z"));
    locked.occurred_at = t("2026-12-02T00:00:00Z");
    let mut paid = claim("impact", "C62", Some("A-6200"));
    paid.occurred_at = t("2026-12-02T00:00:00Z");
    let cs = vec![waiting, locked, paid];
    let d = run(cs.clone(), vec![order("A-6100"), order("A-6200")]);
    let outcomes: Vec<(Outcome, bool)> = d.iter().map(|d| (d.outcome, d.payable)).collect();
    assert_eq!(
        outcomes,
        [
            (Outcome::AwaitingOrder, false),
            (Outcome::Matched, false),
            (Outcome::Matched, true)
        ]
    );
    let due: Vec<_> = d
        .iter()
        .zip(&cs)
        .map(|(d, c)| next_change_at(&program(), d, c))
        .collect();
    let judged = || d.iter().zip(due.iter().copied());
    // Nothing has passed yet on 12-16.
    assert_eq!(stale(judged(), t("2026-12-16T00:00:00Z")), None);
    // On 12-18 the grace period has ended; on 12-21 the lock too.
    let s = stale(judged(), t("2026-12-18T00:00:00Z")).unwrap();
    assert_eq!((s.decisions, s.grace_ended, s.lock_passed), (1, 1, 0));
    let s = stale(judged(), t("2026-12-21T00:00:00Z")).unwrap();
    assert_eq!((s.decisions, s.grace_ended, s.lock_passed), (2, 1, 1));
    assert_eq!(s.since, t("2026-12-17T00:00:00Z"));

    let period: reckon::reconcile::report::Period = "2026-12".parse().unwrap();
    let mut r = build("shop-us", "USD", period, chrono_tz::UTC, &d);
    r.judged_at = Some(t(NOW));
    r.stale = Some(s);
    let csv = render(&r, Format::Csv);
    let mut lines = csv.lines();
    assert!(
        lines
            .next()
            .unwrap()
            .ends_with(",basis_currency,as_of,timezone,judged_at,payee"),
        "{csv}"
    );
    assert!(
        lines
            .next()
            .unwrap()
            .ends_with(",USD,,UTC,2026-12-15T00:00:00Z,impact:p1"),
        "{csv}"
    );
    let json: serde_json::Value = serde_json::from_str(&render(&r, Format::Json)).unwrap();
    assert_eq!(json["judged_at"], "2026-12-15T00:00:00Z");
    assert_eq!(json["stale"]["decisions"], 2);
    assert_eq!(json["stale"]["since"], "2026-12-17T00:00:00Z");
    assert!(json.get("as_of").is_none(), "a report of the present");
    let html = render(&r, Format::Html);
    assert!(
        html.contains("Decisions as judged by the reconcile run of 2026-12-15T00:00:00Z."),
        "{html}"
    );
    assert!(
        html.contains("<strong>Out of date:</strong> 2 decision(s) in this report were judged at 2026-12-15T00:00:00Z, before a deadline of their own passed (the earliest 2026-12-17T00:00:00Z): 1 awaiting_order past the end of their grace period, 1 not yet payable past their lock date.")
            && html.contains("run `reckon reconcile` and report again"),
        "{html}"
    );
    // Unknown (stored by an earlier version): null, and the HTML says so.
    r.judged_at = None;
    r.stale = None;
    let json: serde_json::Value = serde_json::from_str(&render(&r, Format::Json)).unwrap();
    assert!(json["judged_at"].is_null() && json.get("stale").is_none());
    assert!(render(&r, Format::Html).contains("is not recorded"));
}

/// QA20 F1: a contest's winner says what beat the runner-up, as the
/// loser's reason does (it named the program's rule: "won on last click"
/// beside the loser's "wins on source priority ... after equal last click
/// times"); F4: a conversion time standing in for a missing click time
/// says so; F10: the last tie-break compares ids as text.
#[test]
fn a_contest_winner_names_what_beat_the_runner_up() {
    // Equal click times: source priority decides, for both reasons.
    let mut a = claim("impact", "T1", Some("A-900"));
    a.clicked_at = Some(t("2026-11-02T09:00:00Z"));
    let mut b = claim("everflow", "T2", Some("A-900"));
    b.clicked_at = a.clicked_at;
    let d = run(vec![a.clone(), b.clone()], vec![order("A-900")]);
    // everflow/T2, impact/T1
    assert_eq!(d[1].outcome, Outcome::Matched);
    assert!(
        d[1].reason.ends_with(
            "; won over 1 other claim on source priority (impact ranks 1 vs everflow ranks 2), the tie-break after equal last click times (2026-11-02T09:00:00Z vs 2026-11-02T09:00:00Z)"
        ),
        "{}",
        d[1].reason
    );
    // Same network and time: the claim id, compared as text (X-10 < X-9).
    let (mut x9, mut x10) = (a.clone(), a.clone());
    x9.external_id = "X-9".into();
    x10.external_id = "X-10".into();
    let d = run(vec![x9, x10], vec![order("A-900")]);
    assert_eq!(
        (d[0].claim.id.as_str(), d[0].outcome),
        ("X-10", Outcome::Matched)
    );
    assert!(
        d[0].reason.contains("won over 1 other claim on claim id, the last tie-break (last click times (2026-11-02T09:00:00Z vs 2026-11-02T09:00:00Z) and source priority equal; this claim's network and claim id sort first, as text)"),
        "{}",
        d[0].reason
    );
    assert!(
        d[1].reason
            .contains("its network and claim id sort first, as text"),
        "{}",
        d[1].reason
    );
    // No click time: the conversion time competes, and is called that.
    let mut c = claim("everflow", "T3", Some("A-900"));
    c.occurred_at = t("2026-11-02T12:00:00Z");
    let d = run(vec![a, c, b], vec![order("A-900")]);
    // everflow/T2, everflow/T3, impact/T1: T3's 12:00 conversion beats the 09:00 clicks.
    assert_eq!(d[1].outcome, Outcome::Matched);
    assert!(
        d[1].reason.ends_with(
            "; won over 2 other claims, the closest on last click (2026-11-02T12:00:00Z (conversion time, no click time) vs 2026-11-02T09:00:00Z)"
        ),
        "{}",
        d[1].reason
    );
    assert!(
        d[2].reason.contains(
            "which wins on last click (2026-11-02T12:00:00Z (conversion time, no click time) vs 2026-11-02T09:00:00Z)"
        ),
        "{}",
        d[2].reason
    );
}

/// QA28-C F1: under `source_priority` the claim-id tie-break named the
/// times it compared "source priority times"; they are last click times
/// (the rule's second criterion).
#[test]
fn a_source_priority_tie_on_claim_id_names_last_click_times() {
    let mut p = program();
    p.attribution = reckon::reconcile::config::AttributionRule::SourcePriority;
    let mut x9 = claim("impact", "X-9", Some("A-900"));
    x9.clicked_at = Some(t("2026-11-02T09:00:00Z"));
    let mut x10 = x9.clone();
    x10.external_id = "X-10".into();
    let d = decide(
        &p,
        &claims(vec![x9, x10]),
        &orders(vec![order("A-900")]),
        &FxTable::empty(),
        t(NOW),
    );
    assert_eq!(
        (d[0].claim.id.as_str(), d[0].outcome),
        ("X-10", Outcome::Matched)
    );
    assert!(
        d[1].reason.contains("wins on claim id, the last tie-break (last click times (2026-11-02T09:00:00Z vs 2026-11-02T09:00:00Z) and source priority equal;"),
        "{}",
        d[1].reason
    );
}

/// QA20 F6: a partial refund or a reversal after the lock date says so,
/// as a full refund after it did: the claim may have been paid.
#[test]
fn a_partial_refund_or_a_reversal_after_the_lock_date_says_so() {
    // Order 2026-11-02T10:00Z + 30 days: locks 2026-12-02T10:00Z.
    let mut o = order("L-1");
    o.refunds.push(refund("10.00", "2026-12-05T00:00:00Z"));
    let mut early = order("L-2");
    early.refunds.push(refund("10.00", "2026-11-05T00:00:00Z"));
    let mut rev = claim("impact", "L3", Some("L-3"));
    rev.status = ConversionStatus::Reversed;
    rev.status_changed_at = Some(t("2026-12-10T00:00:00Z"));
    let mut rev_early = claim("impact", "L4", Some("L-4"));
    rev_early.status = ConversionStatus::Reversed;
    rev_early.status_changed_at = Some(t("2026-11-10T00:00:00Z"));
    let d = run(
        vec![
            claim("impact", "L1", Some("L-1")),
            claim("impact", "L2", Some("L-2")),
            rev,
            rev_early,
        ],
        vec![o, early, order("L-3"), order("L-4")],
    );
    assert!(
        d[0].reason
            .contains("was partly refunded (10.00 of 100.00 USD) after the lock date; basis"),
        "{}",
        d[0].reason
    );
    assert!(!d[1].reason.contains("lock date"), "{}", d[1].reason);
    assert_eq!(
        d[2].reason,
        "the network reversed the claim (2026-12-10T00:00:00Z) after the lock date"
    );
    assert_eq!(
        d[3].reason,
        "the network reversed the claim (2026-11-10T00:00:00Z)"
    );
}

/// QA20 F7: a no-order claim whose coupon was not tried says coupon
/// matching is off, so nobody looks for a coupon match.
#[test]
fn a_no_order_claim_says_when_its_coupon_was_not_tried() {
    let mut c = claim("impact", "K1", None);
    c.coupon = Some(" SAVE10 ".into());
    c.occurred_at = t("2026-11-20T00:00:00Z");
    let mut off = program();
    off.matching.coupon_matching = false;
    let d = decide(
        &off,
        &claims(vec![c.clone()]),
        &orders(vec![]),
        &FxTable::empty(),
        t(NOW),
    );
    assert_eq!(d[0].outcome, Outcome::NoOrder);
    assert!(
        d[0].reason.ends_with(
            "; its coupon `SAVE10` was not tried: coupon matching is off in this program"
        ),
        "{}",
        d[0].reason
    );
    let d = run(vec![c], vec![]);
    assert!(!d[0].reason.contains("not tried"), "{}", d[0].reason);
}

/// QA20 F7: a no-order claim whose coupon found orders, each outside the
/// tolerance, names the nearest, so the near miss can be checked. Orders
/// outside the time window are not candidates and are not named.
#[test]
fn a_no_order_claim_names_its_nearest_coupon_miss() {
    let mut c = claim("impact", "K2", None);
    c.coupon = Some("summer".into());
    c.sale_amount = Some(m("80.00", "USD"));
    c.occurred_at = t("2026-11-03T12:00:00Z");
    let at = |id: &str, amount: &str, created: &str| {
        let mut o = order(id);
        o.coupon = Some("SUMMER".into());
        o.amount = m(amount, "USD");
        o.created_at = t(created);
        o
    };
    let near = at("A-1053", "75.00", "2026-11-03T11:00:00Z");
    let farther = at("A-1054", "60.00", "2026-11-03T12:30:00Z");
    // Nearest in amount, but two days off: not a candidate.
    let late = at("A-1055", "79.50", "2026-11-05T12:00:00Z");
    let d = run(vec![c.clone()], vec![farther, near, late.clone()]);
    assert_eq!(d[0].outcome, Outcome::NoOrder);
    assert!(
        d[0].reason.ends_with(
            "; nearest: order shop/A-1053 with that coupon at 75.00 USD against the claimed 80.00 USD, beyond tolerance 0.75"
        ),
        "{}",
        d[0].reason
    );
    // Only a candidate out of the window: nothing named.
    let d = run(vec![c], vec![late]);
    assert!(!d[0].reason.contains("nearest"), "{}", d[0].reason);
}

/// QA38a A-M2: the network's event type picks the commission rule, and
/// leads and signups are recorded as orders of amount 0.00 (README). A lead
/// on an order with an amount, or a sale on an order of 0.00, is judged as
/// usual (the order is found, the amounts agree), and its reason says the
/// two disagree; a lead on a 0.00 order, a sale on a priced one, and an
/// `other` event (an upsell) on a priced one say nothing.
#[test]
fn a_lead_on_a_priced_order_or_a_sale_on_a_zero_order_says_so() {
    use plugin_api::EventType;
    let priced = order("S-1");
    let mut zero = order("L-1");
    zero.amount = m("0.00", "USD");
    let mut zero2 = order("L-2");
    zero2.amount = m("0.00", "USD");
    let with = |id: &str, oid: &str, event: EventType, amount: Option<&str>| {
        let mut c = claim("impact", id, Some(oid));
        c.event_type = event;
        c.sale_amount = amount.map(|a| m(a, "USD"));
        c
    };
    let priced_upsell = order("S-2");
    let mut d = run(
        vec![
            with("LEAD-ON-SALE", "S-1", EventType::Lead, Some("100.00")),
            with("SALE-ON-LEAD", "L-1", EventType::Sale, Some("0.00")),
            with("LEAD-ON-LEAD", "L-2", EventType::Signup, None),
            with("UPSELL", "S-2", EventType::Other, Some("100.00")),
        ],
        vec![priced, zero, zero2, priced_upsell],
    );
    d.sort_by(|a, b| a.claim.id.cmp(&b.claim.id));
    let by = |id: &str| d.iter().find(|d| d.claim.id == id).expect(id);
    for id in ["LEAD-ON-SALE", "SALE-ON-LEAD", "LEAD-ON-LEAD", "UPSELL"] {
        assert_eq!(by(id).outcome, Outcome::Matched, "{id}");
        assert!(by(id).payable, "{id}");
    }
    assert!(
        by("LEAD-ON-SALE").reason.ends_with(
            "; the network reports a lead, but order shop/S-1 has an amount of 100.00 USD, \
             as a sale has: the lead commission rules price it; check the event with the network"
        ),
        "{}",
        by("LEAD-ON-SALE").reason
    );
    assert!(
        by("SALE-ON-LEAD").reason.ends_with(
            "; the network reports a sale, but order shop/L-1 has an amount of 0.00 USD, \
             as a lead or signup has: the sale commission rules price it; check the event with the network"
        ),
        "{}",
        by("SALE-ON-LEAD").reason
    );
    for id in ["LEAD-ON-LEAD", "UPSELL"] {
        assert!(
            !by(id).reason.contains("network reports"),
            "{id}: {}",
            by(id).reason
        );
    }
    for (id, conflict) in [
        ("LEAD-ON-SALE", true),
        ("SALE-ON-LEAD", true),
        ("LEAD-ON-LEAD", false),
        ("UPSELL", false),
    ] {
        assert_eq!(
            reckon::reconcile::engine::event_conflict(by(id)),
            conflict,
            "{id}"
        );
    }
    assert_golden("event_conflict", &d);
}

/// QA39a A-L2: "created within 1 hours".
#[test]
fn a_one_hour_coupon_window_is_one_hour_in_reasons() {
    let mut p = program();
    p.matching.fuzzy_window_hours = 1;
    let mut c = claim("impact", "C-H", None);
    c.coupon = Some("SAVE".into());
    let d = decide(
        &p,
        &claims(vec![c]),
        &orders(vec![]),
        &FxTable::empty(),
        t(NOW),
    );
    assert!(
        d[0].reason
            .contains("coupon `SAVE` (amount within tolerance, created within 1 hour)"),
        "{}",
        d[0].reason
    );
}

/// QA41 A-M1: a 0.00 order (a recorded lead) that is cancelled, or marked
/// refunded with no refund amount, is `refunded` and its reason says
/// which; it read "was fully refunded (0.00 USD)", a refund that never
/// happened.
#[test]
fn a_cancelled_zero_order_says_it_was_cancelled_not_refunded() {
    let mut cancelled = order("L-1");
    cancelled.amount = m("0.00", "USD");
    cancelled.status = OrderStatus::Cancelled;
    let mut marked = order("L-2");
    marked.amount = m("0.00", "USD");
    marked.status = OrderStatus::Refunded;
    let d = run(
        vec![
            claim("impact", "C-1", Some("L-1")),
            claim("impact", "C-2", Some("L-2")),
        ],
        vec![cancelled, marked],
    );
    assert_eq!(d[0].outcome, Outcome::Refunded);
    assert!(
        d[0].reason.starts_with("order shop/L-1 was cancelled"),
        "{}",
        d[0].reason
    );
    assert_eq!(d[1].outcome, Outcome::Refunded);
    assert!(
        d[1].reason
            .starts_with("order shop/L-2 is marked refunded (no refund amount given)"),
        "{}",
        d[1].reason
    );
}
