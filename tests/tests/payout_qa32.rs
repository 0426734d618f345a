//! Regressions of the QA32d audit (the payouts accountant over six months):
//! a `bonus_adjustment` CSV row wrote its original volume, original bonus
//! and previously paid under the decision columns (F1), an adjustment of a
//! claim whose order the network restated named the old order beside the
//! new order's trace (F3), and a marginal tier split printed the config's
//! `500` for a slice ending at a tier boundary (F6).

mod payout_support;

use payout_support::*;
use reckon::payout::book::MemoryBook;
use reckon::payout::model::{Statement, FORMAT_VERSION};
use reckon::payout::render;
use reckon::reconcile::model::{Outcome, RecordRef};

/// QA32d F1 (MEDIUM): eu/2026-07's `bonus_adjustment` row read by header
/// gave `refunded_amount` 700.00, `order_currency` 20.00 and
/// `tolerance_applied` 20.00, and nothing under `original_basis`,
/// `original_commission` and `previously_paid`, which README names. From
/// format 12 the cells are under those; a format-11 statement, issued and
/// hashed, still renders (and is restored and verifies) as it was issued.
#[test]
fn a_bonus_adjustment_row_fills_the_adjustment_columns_from_format_12_and_format_11_renders_as_issued(
) {
    let c = config(
        r#"
payout_currency = "EUR"
[[rules]]
id = "cps"
effective_from = "2026-01-01"
kind = "percent"
percent = "10"
[[bonuses]]
id = "bonus600"
effective_from = "2026-01-01"
threshold_volume = "600"
amount = "20"
"#,
    );
    let tmp = tempfile::tempdir().unwrap();
    let b = MemoryBook::new();
    let fxr = no_fx();
    // June: 400.00 + 300.00 = 700.00 reaches bonus600 (20.00).
    let e1 = sale("E1", "q2", "2026-06-05T10:00:00Z", "400.00");
    let e2 = sale("E2", "q2", "2026-06-06T10:00:00Z", "300.00");
    let jun = vec![e1.clone(), e2.clone()];
    reckon::payout::finalize(&inputs(&c, &jun, &fxr, &b, tmp.path()), "2026-06").unwrap();
    // July: E2's order refunded, June's volume is 400.00: the bonus goes.
    let jul = vec![e1, refunded(e2)];
    let r = reckon::payout::finalize(&inputs(&c, &jul, &fxr, &b, tmp.path()), "2026-07").unwrap();
    let s = statements_in(&r.dir).remove("q2").unwrap();
    assert_eq!(s.format_version, FORMAT_VERSION);
    assert!(s.format_version >= 12);
    let a = &s.bonus_adjustments[0];
    assert_eq!(
        (
            a.original_volume,
            a.original_amount,
            a.previously_paid,
            a.amount
        ),
        (d("700.00"), d("20.00"), d("20.00"), d("-20.00"))
    );

    // Format 12: read by header name, the three figures are where README
    // says; the claim adjustment columns and the decision columns say
    // nothing of a bonus.
    let csv13 = read_dir(&r.dir).remove("awin.q2.csv").unwrap();
    assert_eq!(csv13, render::csv_file(&s).unwrap());
    // Format 13 (QA33d) adds columns after these and names the last
    // adjustment column `previously_credited`; the cells read here are
    // where format 12 puts them.
    let s = Statement {
        format_version: 12,
        ..s.clone()
    };
    let csv12 = render::csv_file(&s).unwrap();
    let rows = rows_by_name(&csv12, "bonus_adjustment");
    assert_eq!(rows.len(), 1);
    let row = &rows[0];
    for (column, want) in [
        ("basis", "400.00"),
        ("rule_id", "bonus600"),
        ("amount", "-20.00"),
        ("refers_to", "shop/2026-06/awin:q2#3"),
        ("outcome", ""),
        ("original_basis", "700.00"),
        ("original_commission", "20.00"),
        ("previously_paid", "20.00"),
        ("claimed_amount", ""),
        ("claimed_currency", ""),
        ("order_amount", ""),
        ("refunded_amount", ""),
        ("order_currency", ""),
        ("tolerance_applied", ""),
    ] {
        assert_eq!(row[column], want, "{column}: {row:?}");
    }
    // A claim's adjustment row (E2 taken back) has the same columns filled
    // the same way.
    let claim_row = &rows_by_name(&csv12, "adjustment")[0];
    assert_eq!(
        (
            claim_row["original_basis"].as_str(),
            claim_row["original_commission"].as_str(),
            claim_row["previously_paid"].as_str(),
            claim_row["order_currency"].as_str(),
        ),
        ("300.00", "30.00", "30.00", "EUR")
    );

    // Format 11 renders its old bytes: the four cells at the end of the
    // row, under `refunded_amount`, `order_currency`, `tolerance_applied`
    // (the empty outcome under `order_amount`); every other row as in 12.
    let v11 = Statement {
        format_version: 11,
        ..s.clone()
    };
    let csv11 = String::from_utf8(render::csv_file(&v11).unwrap()).unwrap();
    let old_row = "bonus_adjustment,2,,,,,,400.00,EUR,bonus600,,,20.00,threshold 600.00,,-20.00,EUR,shop/2026-06/awin:q2#3,bonus `bonus600` of statement shop/2026-06/awin:q2 no longer reached: volume 400.00 < threshold 600.00; the bonus credited for it is taken back,,,,,,,,,,,,,,700.00,20.00,20.00";
    let csv12 = String::from_utf8(csv12).unwrap();
    let new_row = csv12
        .lines()
        .find(|l| l.starts_with("bonus_adjustment,"))
        .unwrap();
    assert_eq!(csv11, csv12.replace(new_row, old_row), "{csv11}");
    let old = &rows_by_name(csv11.as_bytes(), "bonus_adjustment")[0];
    assert_eq!(
        (
            old["refunded_amount"].as_str(),
            old["order_currency"].as_str(),
            old["tolerance_applied"].as_str(),
            old["original_basis"].as_str(),
        ),
        ("700.00", "20.00", "20.00", "")
    );
    // Format 10 the same (bonus adjustments and decision columns together).
    let v10 = Statement {
        format_version: 10,
        ..s.clone()
    };
    assert_eq!(
        String::from_utf8(render::csv_file(&v10).unwrap()).unwrap(),
        csv11
    );

    // Issued as format 11: `generate` writes those bytes back from the
    // store and `verify` finds them as recorded.
    reissue_as_format(&b, &r.dir, "2026-07", 11);
    let again =
        reckon::payout::generate(&inputs(&c, &jul, &fxr, &b, tmp.path()), "2026-07").unwrap();
    assert!(again.already_finalised);
    let files = read_dir(&again.dir);
    assert_eq!(
        String::from_utf8(files["awin.q2.csv"].clone()).unwrap(),
        csv11
    );
    assert_eq!(statements_in(&again.dir)["q2"].format_version, 11);
    let v = reckon::payout::verify(&b, tmp.path(), "shop", "2026-07").unwrap();
    assert!(v.problems.is_empty(), "{:?}", v.problems);
}

/// `d` matched to order `id` (revision `rev`) of connector `shop`.
fn on_order(
    mut d: reckon::reconcile::model::Decision,
    id: &str,
    rev: u32,
) -> reckon::reconcile::model::Decision {
    d.order = Some(RecordRef {
        source: "shop".into(),
        id: id.into(),
        revision: rev,
    });
    d
}

/// QA32d F3 (MEDIUM): the network restated C9's order reference (O9 →
/// O23, 450.00 → 500.00); the +5.00 adjustment said `order_id` O9 beside
/// a trace of O23's revision and amount, and its reason said only `basis
/// 450.00 → 500.00`. Now `order_id` is the order the trace names and the
/// reason says `order id `O9` → `O23``; a claim that matches no order now
/// keeps the order its line was paid for, and a moved claim's reason keeps
/// its start (the HTML's "another partner" and "credited here" rewrite it).
#[test]
fn an_adjustment_names_the_order_its_trace_matched_and_says_the_order_changed() {
    let c = config(CPS_EUR);
    let tmp = tempfile::tempdir().unwrap();
    let b = MemoryBook::new();
    let fxr = no_fx();
    let c9 = on_order(sale("C9", "p3", "2026-06-05T10:00:00Z", "450.00"), "O9", 1);
    let r1 = on_order(sale("R1", "p3", "2026-06-06T10:00:00Z", "200.00"), "O10", 1);
    let n1 = on_order(sale("N1", "p3", "2026-06-07T10:00:00Z", "100.00"), "O11", 1);
    let m1 = on_order(sale("M1", "p3", "2026-06-08T10:00:00Z", "300.00"), "O12", 1);
    let jun = vec![c9.clone(), r1.clone(), n1.clone(), m1.clone()];
    reckon::payout::finalize(&inputs(&c, &jun, &fxr, &b, tmp.path()), "2026-06").unwrap();

    // C9 restated to O23 (its revision 1: 500.00); R1's order restated to
    // O24, which is refunded; N1 now quotes an order that does not exist;
    // M1 moved to p4 and restated to O25.
    let mut c9_now = on_order(sale("C9", "p3", "2026-06-05T10:00:00Z", "500.00"), "O23", 1);
    c9_now.claim.revision = 2;
    let r1_now = refunded(on_order(r1, "O24", 1));
    let mut n1_now = n1;
    n1_now.order = None;
    n1_now.outcome = Outcome::NoOrder;
    n1_now.payable = false;
    n1_now.basis = None;
    n1_now.order_amount = None;
    n1_now.reason = "no order matches order id `O99` after the grace period".into();
    let mut m1_now = on_order(m1, "O25", 1);
    m1_now.partner_id = "p4".into();
    m1_now.partner_name = Some("Partner p4".into());
    let dec = vec![c9_now, r1_now, n1_now, m1_now];
    let r = reckon::payout::finalize(&inputs(&c, &dec, &fxr, &b, tmp.path()), "2026-07").unwrap();
    let s = statements_in(&r.dir).remove("p3").unwrap();
    let adj = |claim: &str| s.adjustments.iter().find(|a| a.claim_id == claim).unwrap();

    let a = adj("C9");
    assert_eq!(a.amount, d("5.00"));
    assert_eq!(a.order_id.as_deref(), Some("O23"));
    let t = a.trace.as_ref().unwrap();
    assert_eq!(
        (
            t.order_source.as_deref(),
            t.order_revision,
            t.claim_revision
        ),
        (Some("shop"), Some(1), 2)
    );
    assert_eq!(t.order_amount.as_ref().unwrap().amount, d("500.00"));
    assert_eq!(
        a.reason,
        "order id `O9` → `O23`; basis 450.00 → 500.00; repriced to 50.00 (`matched`: order id matches)"
    );

    let a = adj("R1");
    assert_eq!(a.amount, d("-20.00"));
    assert_eq!(a.order_id.as_deref(), Some("O24"));
    assert_eq!(
        a.reason,
        "order id `O10` → `O24`; claim is now `refunded`: order refunded in full; the earlier commission is reversed"
    );

    // No order now: the trace names none, the adjustment keeps the order
    // the line was paid for, and the outcome's reason says what the claim
    // quotes now.
    let a = adj("N1");
    assert_eq!(a.amount, d("-10.00"));
    assert_eq!(a.order_id.as_deref(), Some("O11"));
    let t = a.trace.as_ref().unwrap();
    assert_eq!((t.order_source.as_deref(), t.order_revision), (None, None));
    assert_eq!(
        a.reason,
        "claim is now `no_order`: no order matches order id `O99` after the grace period; the earlier commission is reversed"
    );

    // Moved and restated: the change after the moved claim's sentence.
    let a = adj("M1");
    assert_eq!(a.amount, d("-30.00"));
    assert_eq!(a.order_id.as_deref(), Some("O25"));
    assert_eq!(
        a.reason,
        "claim moved to partner `awin:p4` by the network (`matched`: order id matches); the commission paid here is taken back and paid to that partner; order id `O12` → `O25`"
    );
    // p4's new line is on the order too.
    let p4 = statements_in(&r.dir).remove("p4").unwrap();
    assert_eq!(p4.lines[0].order_id.as_deref(), Some("O25"));

    // The CSV row and the partner's HTML give the new order, and the
    // reason both.
    let files = read_dir(&r.dir);
    let rows = rows_by_name(&files["awin.p3.csv"], "adjustment");
    let c9_row = rows.iter().find(|r| r["claim_id"] == "C9").unwrap();
    assert_eq!(
        (
            c9_row["order_id"].as_str(),
            c9_row["order_source"].as_str(),
            c9_row["order_revision"].as_str(),
            c9_row["order_amount"].as_str(),
            c9_row["refers_to"].as_str(),
        ),
        ("O23", "shop", "1", "500.00", "shop/2026-06/awin:p3#1")
    );
    let html = String::from_utf8(files["awin.p3.html"].clone()).unwrap();
    assert!(
        html.contains("<td>C9</td><td>O23</td><td>shop/2026-06/awin:p3 line 1</td><td>order id O9 → O23; basis 450.00 → 500.00; repriced to 50.00 (matched: order id matches)<br><small>priced now: cps 10%</small></td>"),
        "{html}"
    );
    assert!(
        html.contains("<td>claim moved to another partner by the network (matched: order id matches); the commission paid here is taken back and paid to that partner; order id O12 → O25</td>"),
        "{html}"
    );

    // Said against the line: a later change of C9 says it again, with only
    // what changed since it was settled in the change list.
    let mut c9_later = on_order(sale("C9", "p3", "2026-06-05T10:00:00Z", "520.00"), "O23", 2);
    c9_later.claim.revision = 2;
    let mut aug = dec.clone();
    aug[0] = c9_later;
    let r = reckon::payout::generate(&inputs(&c, &aug, &fxr, &b, tmp.path()), "2026-08").unwrap();
    let s = statements_in(&r.dir).remove("p3").unwrap();
    let a = &s.adjustments[0];
    assert_eq!((a.amount, a.order_id.as_deref()), (d("2.00"), Some("O23")));
    assert_eq!(
        a.reason,
        "order id `O9` → `O23`; basis 500.00 → 520.00; repriced to 52.00 (`matched`: order id matches)"
    );
}

/// QA32d F6 (LOW): with `from_volume = "500"`, a line of 700.00 starting at
/// volume 0 read `5% × 500 + 10% × 200.00`: the slice ending at the tier
/// boundary was the config's literal. Slices are amounts: at least the
/// currency's minor-unit digits.
#[test]
fn a_marginal_split_writes_each_slice_with_minor_unit_digits() {
    let c = config(
        r#"
payout_currency = "EUR"
[[rules]]
id = "tiers"
effective_from = "2026-01-01"
kind = "tiered"
tier_mode = "marginal"
tiers = [{ from_volume = "0", percent = "5" }, { from_volume = "500", percent = "10" }]
"#,
    );
    let tmp = tempfile::tempdir().unwrap();
    let b = MemoryBook::new();
    let fxr = no_fx();
    let jul = vec![
        sale("E1", "q2", "2026-07-05T10:00:00Z", "700.00"),
        // A network's `50` (no digits) is a slice of 50.00 too.
        sale("E2", "q2", "2026-07-06T10:00:00Z", "50"),
    ];
    let r = reckon::payout::generate(&inputs(&c, &jul, &fxr, &b, tmp.path()), "2026-07").unwrap();
    let s = statements_in(&r.dir).remove("q2").unwrap();
    assert_eq!(
        s.lines[0].rate_detail.as_deref(),
        Some("5% × 500.00 + 10% × 200.00")
    );
    // 25.00 + 20.00
    assert_eq!(s.lines[0].commission, d("45.00"));
    assert_eq!(
        (s.lines[1].rate_detail.as_deref(), s.lines[1].rate_percent),
        (None, Some(d("10")))
    );
    let csv = read_dir(&r.dir).remove("awin.q2.csv").unwrap();
    assert_eq!(
        rows_by_name(&csv, "line")[0]["rate_detail"],
        "5% × 500.00 + 10% × 200.00"
    );

    // A line crossing from a volume without digits: both slices padded.
    let aug = vec![
        sale("F1", "q2", "2026-08-05T10:00:00Z", "450"),
        sale("F2", "q2", "2026-08-06T10:00:00Z", "100"),
    ];
    let r = reckon::payout::generate(&inputs(&c, &aug, &fxr, &b, tmp.path()), "2026-08").unwrap();
    let s = statements_in(&r.dir).remove("q2").unwrap();
    assert_eq!(
        s.lines[1].rate_detail.as_deref(),
        Some("5% × 50.00 + 10% × 50.00")
    );
}
