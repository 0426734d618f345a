//! Regressions of the QA33d audit-trail review and QA33b (FX) about what a
//! payout statement says: the network's commission beside Reckon's (D-M2),
//! a moved claim's share of the volume a bonus is judged on (D-M3), how an
//! adjustment is priced now (D-M4), a take-back that waits (D-M5), the
//! tolerance's digits and currency (D-L1), a flat line's original basis
//! (D-L7), `previously_credited` (D-L9), one wording for a missing rate
//! (B-L2) and the HTML's FX column (B-L3). All from statement format 13;
//! a format-12 statement renders as issued.

mod payout_support;

use chrono::NaiveDate;
use payout_support::*;
use plugin_api::Money;
use reckon::payout::book::MemoryBook;
use reckon::payout::model::FORMAT_VERSION;
use reckon::payout::statement::FxRates;
use rust_decimal::Decimal;
use std::collections::BTreeMap;
use std::path::Path;

fn file(dir: &Path, name: &str) -> Vec<u8> {
    std::fs::read(dir.join(name)).unwrap()
}

/// Rates from a map, with a `max_age_days` as `[fx]` has one.
struct AgedRates(BTreeMap<(String, String, NaiveDate), Decimal>, u32);

impl FxRates for AgedRates {
    fn rate(&self, base: &str, quote: &str, date: NaiveDate) -> Option<Decimal> {
        self.0.rate(base, quote, date)
    }
    fn max_age_days(&self) -> u32 {
        self.1
    }
}

/// D-M2: the network's commission is on each line, and the totals give
/// its sum beside the commission paid (CSV, JSON, HTML).
#[test]
fn each_line_and_the_totals_show_the_commission_the_network_reported() {
    let c = config(CPS_EUR);
    let tmp = tempfile::tempdir().unwrap();
    let b = MemoryBook::new();
    let fxr = no_fx();
    let mut a = sale("A", "p1", "2026-10-05T10:00:00Z", "202.85");
    a.network_commission = Some(Money::new(d("20.28"), "EUR"));
    let mut b2 = sale("B", "p1", "2026-10-06T10:00:00Z", "300.00");
    b2.network_commission = Some(Money::new(d("33"), "EUR"));
    let ds = vec![a, b2];
    let r = reckon::payout::generate(&inputs(&c, &ds, &fxr, &b, tmp.path()), "2026-10").unwrap();
    let s = statements_in(&r.dir).remove("p1").unwrap();
    assert_eq!(s.format_version, FORMAT_VERSION);
    assert!(s.format_version >= 13);
    // 10 % of 202.85 = 20.285 → 20.29 paid, 20.28 reported.
    assert_eq!(s.lines[0].commission, d("20.29"));
    assert_eq!(
        s.lines[0].network_commission,
        Some(Money::new(d("20.28"), "EUR"))
    );
    assert_eq!(
        s.lines[1]
            .network_commission
            .as_ref()
            .unwrap()
            .amount
            .to_string(),
        "33.00"
    );
    assert_eq!(s.totals.lines, d("50.29"));
    assert_eq!(s.totals.network_reported, [Money::new(d("53.28"), "EUR")]);
    let csv = file(&r.dir, "awin.p1.csv");
    let lines = rows_by_name(&csv, "line");
    assert_eq!(
        (
            lines[0]["network_commission"].as_str(),
            lines[0]["network_commission_currency"].as_str(),
            lines[0]["amount"].as_str()
        ),
        ("20.28", "EUR", "20.29")
    );
    let reported = rows_by_name(&csv, "total_network_reported");
    assert_eq!(
        (
            reported[0]["amount"].as_str(),
            reported[0]["currency"].as_str()
        ),
        ("53.28", "EUR")
    );
    let html = String::from_utf8(file(&r.dir, "awin.p1.html")).unwrap();
    assert!(
        html.contains("<tr><td>Commission the network reported for these lines</td><td class=\"n\">53.28 EUR</td></tr>"),
        "{html}"
    );
}

/// D-M3: a claim moved to another partner shows its basis on its
/// adjustment but counts 0 in the volume its bonus is judged on; the
/// adjustment rows' `volume_now` and the unchanged lines' bases add up to
/// the bonus adjustment's volume now.
#[test]
fn a_moved_claim_counts_nothing_in_volume_now_and_the_volume_adds_up() {
    let c = config(
        r#"
payout_currency = "EUR"
[[rules]]
id = "cps"
effective_from = "2026-01-01"
kind = "percent"
percent = "10"
[[bonuses]]
id = "p1-volume-1000"
effective_from = "2026-01-01"
threshold_volume = "1000"
amount = "25"
"#,
    );
    let tmp = tempfile::tempdir().unwrap();
    let b = MemoryBook::new();
    let fxr = no_fx();
    let oct = vec![
        sale("C1", "p1", "2026-10-02T10:00:00Z", "500.00"),
        sale("C2", "p1", "2026-10-03T10:00:00Z", "350.00"),
        sale("C8", "p1", "2026-10-04T10:00:00Z", "150.00"),
    ];
    reckon::payout::finalize(&inputs(&c, &oct, &fxr, &b, tmp.path()), "2026-10").unwrap();
    // November: C1 partly refunded to 400, C8 moved to p2.
    let mut moved = oct[2].clone();
    moved.partner_id = "p2".into();
    let nov = vec![
        partly_refunded(oct[0].clone(), "400.00"),
        oct[1].clone(),
        moved,
    ];
    let r = reckon::payout::generate(&inputs(&c, &nov, &fxr, &b, tmp.path()), "2026-11").unwrap();
    let s = statements_in(&r.dir).remove("p1").unwrap();
    let c8 = s.adjustments.iter().find(|a| a.claim_id == "C8").unwrap();
    assert_eq!(c8.current_basis, Some(d("150.00")));
    assert_eq!(c8.volume_now, Some(d("0.00")));
    let c1 = s.adjustments.iter().find(|a| a.claim_id == "C1").unwrap();
    assert_eq!(c1.volume_now, Some(d("400.00")));
    let bonus = &s.bonus_adjustments[0];
    assert_eq!(bonus.current_volume, d("750.00"));
    // The unchanged line C2 (350.00) + the adjustments' volume now.
    let csv = file(&r.dir, "awin.p1.csv");
    let rows = rows_by_name(&csv, "adjustment");
    let adjusted: Decimal = rows.iter().map(|r| d(&r["volume_now"])).sum();
    assert_eq!(adjusted + d("350.00"), bonus.current_volume);
    let moved_row = rows.iter().find(|r| r["claim_id"] == "C8").unwrap();
    assert_eq!(
        (
            moved_row["basis"].as_str(),
            moved_row["volume_now"].as_str()
        ),
        ("150.00", "0.00")
    );
}

/// D-M4: a repriced adjustment says how the new amount was priced: the
/// rule and rate of the terms it was paid on (an in-place edit 10 % → 11 %
/// since changes nothing), the FX rate, a marginal tier split.
#[test]
fn a_repriced_adjustment_shows_the_rule_rate_split_and_fx_it_is_priced_on() {
    let before = config(CPS_EUR);
    let edited = config(&CPS_EUR.replace("percent = \"10\"", "percent = \"11\""));
    let tmp = tempfile::tempdir().unwrap();
    let b = MemoryBook::new();
    let fxr = no_fx();
    let oct = vec![sale("C1", "p1", "2026-10-02T10:00:00Z", "500.00")];
    reckon::payout::finalize(&inputs(&before, &oct, &fxr, &b, tmp.path()), "2026-10").unwrap();
    let nov = vec![partly_refunded(oct[0].clone(), "400.00")];
    let r =
        reckon::payout::generate(&inputs(&edited, &nov, &fxr, &b, tmp.path()), "2026-11").unwrap();
    let s = statements_in(&r.dir).remove("p1").unwrap();
    let a = &s.adjustments[0];
    // 10 % × 400.00 = 40.00: −10.00 of the 50.00 paid.
    assert_eq!(a.amount, d("-10.00"));
    assert_eq!(
        (
            a.rule_id.as_deref(),
            a.rate_percent,
            a.rate_detail.as_deref()
        ),
        (Some("cps"), Some(d("10")), None)
    );
    let row = &rows_by_name(&file(&r.dir, "awin.p1.csv"), "adjustment")[0];
    assert_eq!(
        (row["rule_id"].as_str(), row["rate_percent"].as_str()),
        ("cps", "10")
    );
    let html = String::from_utf8(file(&r.dir, "awin.p1.html")).unwrap();
    assert!(
        html.contains("<br><small>priced now: cps 10%</small>"),
        "{html}"
    );

    // Marginal tiers in USD paid in EUR: the repriced line's split and
    // rate, and the volume then and now in its reason.
    let (c, w44) = marginal_usd_paid_in_eur();
    let tmp = tempfile::tempdir().unwrap();
    let b = MemoryBook::new();
    let fxr = fx(&[
        ("USD", "EUR", "2026-10-27", "0.9300"),
        ("USD", "EUR", "2026-10-28", "0.9300"),
    ]);
    reckon::payout::finalize(&inputs(&c, &w44, &fxr, &b, tmp.path()), "2026-10").unwrap();
    let nov = vec![partly_refunded(w44[0].clone(), "200.00"), w44[1].clone()];
    let r = reckon::payout::generate(&inputs(&c, &nov, &fxr, &b, tmp.path()), "2026-11").unwrap();
    let s = statements_in(&r.dir).remove("q1").unwrap();
    let d2 = s.adjustments.iter().find(|a| a.claim_id == "D-2").unwrap();
    // Now: 5 % × 300.00 + 10 % × 100.00 = 25.00 USD × 0.9300 = 23.25.
    assert_eq!(
        (d2.rate_detail.as_deref(), d2.fx_rate, d2.rule_id.as_deref()),
        (
            Some("5% × 300.00 + 10% × 100.00"),
            Some(d("0.9300")),
            Some("tiers")
        )
    );
    assert!(
        d2.reason.contains("their volume changed (700.00 → 600.00)"),
        "{}",
        d2.reason
    );
    let html = String::from_utf8(file(&r.dir, "net.q1.html")).unwrap();
    assert!(
        html.contains("priced now: tiers 5% × 300.00 + 10% × 100.00, FX USD→EUR 0.9300"),
        "{html}"
    );
}

/// D-M5: a paid line that cannot be priced today (no FX rate) has its
/// take-back wait: `held_back.csv` lists it (kind `adjustment_waits`), and
/// the other lines repriced because of it name it.
#[test]
fn a_take_back_that_waits_is_in_held_back_csv_and_named_by_the_lines_it_moves() {
    let (c, w44) = marginal_usd_paid_in_eur();
    let tmp = tempfile::tempdir().unwrap();
    let b = MemoryBook::new();
    let both = fx(&[
        ("USD", "EUR", "2026-10-27", "0.9300"),
        ("USD", "EUR", "2026-10-28", "0.9300"),
    ]);
    reckon::payout::finalize(&inputs(&c, &w44, &both, &b, tmp.path()), "2026-10").unwrap();
    // D-1 refunded to 200, and the 27th's rate is gone.
    let only_28 = fx(&[("USD", "EUR", "2026-10-28", "0.9300")]);
    let nov = vec![partly_refunded(w44[0].clone(), "200.00"), w44[1].clone()];
    let r =
        reckon::payout::finalize(&inputs(&c, &nov, &only_28, &b, tmp.path()), "2026-11").unwrap();
    let s = statements_in(&r.dir).remove("q1").unwrap();
    assert!(s.adjustments.iter().all(|a| a.claim_id != "D-1"));
    let d2 = s.adjustments.iter().find(|a| a.claim_id == "D-2").unwrap();
    assert!(
        d2.reason.contains("the volume counts `net/D-1` (no USD→EUR rate for 2026-10-27; add it to [fx]) as it is now, though its own adjustment waits (listed in held_back.csv)"),
        "{}",
        d2.reason
    );
    let held = String::from_utf8(file(&r.dir, "held_back.csv")).unwrap();
    assert_eq!(
        held,
        "payee,claim,reason,kind\nnet:q1,net/D-1,\"no USD→EUR rate for 2026-10-27; add it to [fx]; left as paid, its adjustment waits until it can be priced (line 1 of statement shop/2026-10/net:q1)\",adjustment_waits\n"
    );
    // Verify covers it, as every file of the period.
    let v = reckon::payout::verify(&b, tmp.path(), "shop", "2026-11").unwrap();
    assert!(v.problems.is_empty(), "{:?}", v.problems);
}

/// D-L1: the tolerance is cut to the program currency's minor unit and its
/// currency is named; D-L7: a flat line's take-back gives the basis the line
/// was printed with; D-L9: the CSV names what earlier statements gave
/// `previously_credited`.
#[test]
fn tolerance_flat_original_basis_and_previously_credited() {
    let c = config(
        r#"
payout_currency = "EUR"
[[rules]]
id = "lead"
effective_from = "2026-01-01"
kind = "flat"
event_types = ["lead"]
amount = "2.50"
[[rules]]
id = "cps"
effective_from = "2026-01-01"
event_types = ["sale"]
kind = "percent"
percent = "10"
"#,
    );
    let tmp = tempfile::tempdir().unwrap();
    let b = MemoryBook::new();
    let fxr = no_fx();
    let mut usd = sale("C-202", "p2", "2026-10-14T10:00:00Z", "100.00");
    usd.claimed_amount = Some(Money::new(d("110.00"), "USD"));
    usd.inputs.tolerance_applied = Some(d("1.00000000000010"));
    let lead = claim(
        "awin",
        "C-111",
        "p2",
        plugin_api::EventType::Lead,
        "2026-10-15T10:00:00Z",
        Some(("0.00", "EUR")),
    );
    let oct = vec![usd.clone(), lead.clone()];
    let r = reckon::payout::finalize(&inputs(&c, &oct, &fxr, &b, tmp.path()), "2026-10").unwrap();
    let s = statements_in(&r.dir).remove("p2").unwrap();
    let t = s.lines[0].trace.as_ref().unwrap();
    assert_eq!(t.tolerance_applied.unwrap().to_string(), "1.00");
    let row = &rows_by_name(&file(&r.dir, "awin.p2.csv"), "line")[0];
    assert_eq!(
        (
            row["tolerance_applied"].as_str(),
            row["tolerance_currency"].as_str(),
            row["claimed_currency"].as_str()
        ),
        ("1.00", "EUR", "USD")
    );
    // The lead reversed: its take-back shows the basis its line printed.
    let mut gone = lead;
    gone.outcome = reckon::reconcile::model::Outcome::NetworkReversed;
    gone.payable = false;
    gone.basis = None;
    let nov = vec![usd, gone];
    let r = reckon::payout::generate(&inputs(&c, &nov, &fxr, &b, tmp.path()), "2026-11").unwrap();
    let s = statements_in(&r.dir).remove("p2").unwrap();
    let a = &s.adjustments[0];
    assert_eq!((a.amount, a.original_basis), (d("-2.50"), Some(d("0.00"))));
    let csv = file(&r.dir, "awin.p2.csv");
    let head = String::from_utf8(csv.clone()).unwrap();
    let head = head.lines().next().unwrap();
    assert!(head.contains(",previously_credited,"), "{head}");
    assert!(!head.contains("previously_paid"), "{head}");
    let row = &rows_by_name(&csv, "adjustment")[0];
    assert_eq!(
        (
            row["original_basis"].as_str(),
            row["previously_credited"].as_str(),
            row["volume_now"].as_str()
        ),
        ("0.00", "2.50", "0.00")
    );
}

/// B-L2: a claim held back for want of a rate is worded as reconciliation
/// words it, with `[fx] max_age_days`' window; B-L3: the HTML's FX columns
/// name the conversion when the program's currency is not the payout's.
#[test]
fn a_missing_rate_reads_as_in_reconciliation_and_the_fx_column_names_its_currencies() {
    let c = config(CPS_EUR);
    let tmp = tempfile::tempdir().unwrap();
    let b = MemoryBook::new();
    let usd = |id: &str, at: &str| {
        claim(
            "net",
            id,
            "q1",
            plugin_api::EventType::Sale,
            at,
            Some(("100.00", "USD")),
        )
    };
    let rates = AgedRates(fx(&[("USD", "EUR", "2026-10-05", "0.9300")]), 3);
    let ds = vec![
        usd("A", "2026-10-05T10:00:00Z"),
        usd("B", "2026-10-20T10:00:00Z"),
    ];
    let r = reckon::payout::generate(&inputs(&c, &ds, &rates, &b, tmp.path()), "2026-10").unwrap();
    let held = String::from_utf8(file(&r.dir, "held_back.csv")).unwrap();
    assert_eq!(
        held,
        "payee,claim,reason,kind\nnet:q1,net/B,no USD→EUR rate for 2026-10-20 or the 3 days before; add it to [fx],held_back\n"
    );
    let html = String::from_utf8(file(&r.dir, "net.q1.html")).unwrap();
    assert!(
        html.contains("<th class=\"n\">FX USD→EUR</th><th class=\"n\">Commission</th>"),
        "{html}"
    );
    // The same currency: a bare "FX".
    let tmp = tempfile::tempdir().unwrap();
    let ds = vec![sale("E", "p1", "2026-10-05T10:00:00Z", "10.00")];
    let fxr = no_fx();
    let r = reckon::payout::generate(&inputs(&c, &ds, &fxr, &b, tmp.path()), "2026-10").unwrap();
    let html = String::from_utf8(file(&r.dir, "awin.p1.html")).unwrap();
    assert!(html.contains("<th class=\"n\">FX</th>"), "{html}");
}

/// Formats up to 12 render as issued: no format-13 column, the old
/// `previously_paid` header, a bare "FX", no reported total; and a
/// format-12 period restores and verifies.
#[test]
fn a_format_12_statement_renders_restores_and_verifies_as_issued() {
    let c = config(CPS_EUR);
    let tmp = tempfile::tempdir().unwrap();
    let b = MemoryBook::new();
    let fxr = fx(&[("USD", "EUR", "2026-10-05", "0.9300")]);
    let mut a = claim(
        "net",
        "A",
        "q1",
        plugin_api::EventType::Sale,
        "2026-10-05T10:00:00Z",
        Some(("100.00", "USD")),
    );
    a.network_commission = Some(Money::new(d("9.00"), "USD"));
    let ds = vec![a];
    let r = reckon::payout::finalize(&inputs(&c, &ds, &fxr, &b, tmp.path()), "2026-10").unwrap();
    reissue_as_format(&b, &r.dir, "2026-10", 12);
    let r = reckon::payout::finalize(&inputs(&c, &ds, &fxr, &b, tmp.path()), "2026-10").unwrap();
    assert!(r.already_finalised);
    let s = statements_in(&r.dir).remove("q1").unwrap();
    assert_eq!(s.format_version, 12);
    let csv = String::from_utf8(file(&r.dir, "net.q1.csv")).unwrap();
    let head = csv.lines().next().unwrap();
    assert!(head.ends_with(",previously_paid,claimed_amount,claimed_currency,order_amount,refunded_amount,order_currency,tolerance_applied"), "{head}");
    assert!(!csv.contains("total_network_reported"), "{csv}");
    let html = String::from_utf8(file(&r.dir, "net.q1.html")).unwrap();
    assert!(html.contains("<th class=\"n\">FX</th>"), "{html}");
    assert!(!html.contains("the network reported"), "{html}");
    let v = reckon::payout::verify(&b, tmp.path(), "shop", "2026-10").unwrap();
    assert!(v.problems.is_empty(), "{:?}", v.problems);
}

/// A program of marginal tiers (5 %, 10 % from 500) in USD paid in EUR, and
/// week 44's two USD sales of partner `net:q1`: D-1 300.00 on the 27th,
/// D-2 400.00 on the 28th.
fn marginal_usd_paid_in_eur() -> (
    reckon::payout::config::CommissionConfig,
    Vec<reckon::reconcile::model::Decision>,
) {
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
    let usd = |id: &str, at: &str, amount: &str| {
        claim(
            "net",
            id,
            "q1",
            plugin_api::EventType::Sale,
            at,
            Some((amount, "USD")),
        )
    };
    let w44 = vec![
        usd("D-1", "2026-10-27T10:00:00Z", "300.00"),
        usd("D-2", "2026-10-28T10:00:00Z", "400.00"),
    ];
    (c, w44)
}
