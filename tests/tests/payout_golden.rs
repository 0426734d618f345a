//! Golden statements: each scenario's figures are worked out by hand in the
//! comments and compared with what the payout library computes.

mod payout_support;

use payout_support::*;
use plugin_api::EventType;
use reckon::payout::book::MemoryBook;
use reckon::payout::config::CommissionConfig;
use reckon::payout::model::{Statement, Status};
use reckon::payout::period::Period;
use reckon::payout::statement::{build_all, Context, FxRates, History};
use reckon::reconcile::model::Decision;

fn statements(
    config: &CommissionConfig,
    decisions: &[Decision],
    fx: &dyn FxRates,
    period: &str,
) -> Vec<Statement> {
    let cx = Context {
        program: "shop",
        config,
        period: Period::parse(config.period, period).unwrap(),
        status: Status::Draft,
        version: 1,
        judged_at: None,
        closed_early_at: None,
    };
    let (s, skipped) = build_all(&cx, decisions, &History::default(), fx);
    assert!(skipped.is_empty(), "unexpected skipped claims: {skipped:?}");
    s
}

fn commissions(s: &Statement) -> Vec<String> {
    s.lines.iter().map(|l| l.commission.to_string()).collect()
}

#[test]
fn cps_with_a_partial_refund() {
    let c = config(CPS_EUR);
    let ds = vec![
        sale("A", "p1", "2026-11-03T10:00:00Z", "200.00"),
        // order 150.00, 50.00 refunded before the statement: basis 100.00
        partly_refunded(sale("B", "p1", "2026-11-04T10:00:00Z", "150.00"), "100.00"),
        // refunded in full: not payable, no line
        refunded(sale("C", "p1", "2026-11-05T10:00:00Z", "80.00")),
    ];
    let s = statements(&c, &ds, &no_fx(), "2026-11");
    assert_eq!(s.len(), 1);
    // 200.00 × 10 % = 20.00; 100.00 × 10 % = 10.00
    assert_eq!(commissions(&s[0]), ["20.00", "10.00"]);
    assert_eq!(s[0].lines[1].basis.as_ref().unwrap().amount, d("100.00"));
    assert_eq!(s[0].lines[1].rule_id, "cps");
    assert_eq!(s[0].lines[1].rate_percent, Some(d("10")));
    assert_eq!(s[0].totals.total_payable.to_string(), "30.00");
}

#[test]
fn cpa_per_lead() {
    let c = config(
        r#"
payout_currency = "EUR"
[[rules]]
id = "cpa-lead"
effective_from = "2026-01-01"
event_types = ["lead"]
kind = "flat"
amount = "2.50"
[[rules]]
id = "cps"
effective_from = "2026-01-01"
kind = "percent"
percent = "5"
"#,
    );
    let lead = |id: &str, at: &str| claim("awin", id, "p1", EventType::Lead, at, None);
    let ds = vec![
        lead("L1", "2026-11-01T09:00:00Z"),
        lead("L2", "2026-11-02T09:00:00Z"),
        lead("L3", "2026-11-03T09:00:00Z"),
        // 99.99 × 5 % = 4.9995 → 5.00 (half away from zero)
        sale("S1", "p1", "2026-11-04T09:00:00Z", "99.99"),
    ];
    let s = statements(&c, &ds, &no_fx(), "2026-11");
    assert_eq!(commissions(&s[0]), ["2.50", "2.50", "2.50", "5.00"]);
    assert_eq!(s[0].lines[0].rule_id, "cpa-lead");
    assert_eq!(s[0].lines[0].flat_amount, Some(d("2.50")));
    assert_eq!(s[0].lines[0].fx_rate, None);
    assert_eq!(s[0].lines[3].rule_id, "cps");
    assert_eq!(s[0].totals.total_payable.to_string(), "12.50");
}

const TIERS: &str = r#"
payout_currency = "EUR"
[[rules]]
id = "tiered"
effective_from = "2026-01-01"
kind = "tiered"
tier_mode = "MODE"
tiers = [{ from_volume = "0", percent = "5" }, { from_volume = "1000", percent = "8" }]
"#;

fn tier_claims() -> Vec<Decision> {
    vec![
        sale("T1", "p1", "2026-11-02T10:00:00Z", "600.00"),
        sale("T2", "p1", "2026-11-09T10:00:00Z", "300.00"),
        sale("T3", "p1", "2026-11-16T10:00:00Z", "400.00"),
        sale("T4", "p1", "2026-11-23T10:00:00Z", "200.00"),
    ]
}

#[test]
fn tier_crossing_within_the_month_marginal() {
    let c = config(&TIERS.replace("MODE", "marginal"));
    let s = statements(&c, &tier_claims(), &no_fx(), "2026-11");
    // cumulative volume: 600 | 900 | 1300 | 1500; the boundary is 1000.
    // T1 600 × 5 % = 30.00; T2 300 × 5 % = 15.00;
    // T3 100 × 5 % + 300 × 8 % = 5 + 24 = 29.00; T4 200 × 8 % = 16.00
    assert_eq!(commissions(&s[0]), ["30.00", "15.00", "29.00", "16.00"]);
    assert_eq!(
        s[0].lines[2].rate_detail.as_deref(),
        Some("5% × 100.00 + 8% × 300.00")
    );
    assert_eq!(s[0].lines[3].rate_percent, Some(d("8")));
    assert_eq!(s[0].volume.as_ref().unwrap().amount, d("1500.00"));
    assert_eq!(s[0].totals.total_payable.to_string(), "90.00");
}

#[test]
fn tier_crossing_within_the_month_all_volume() {
    let c = config(&TIERS.replace("MODE", "all_volume"));
    let s = statements(&c, &tier_claims(), &no_fx(), "2026-11");
    // volume 1500 reaches the 8 % tier, which prices every line:
    // 48.00 + 24.00 + 32.00 + 16.00 = 120.00
    assert_eq!(commissions(&s[0]), ["48.00", "24.00", "32.00", "16.00"]);
    assert_eq!(s[0].totals.total_payable.to_string(), "120.00");
    // the same month with only T1 stays in the 5 % tier
    let s = statements(&c, &tier_claims()[..1], &no_fx(), "2026-11");
    assert_eq!(commissions(&s[0]), ["30.00"]);
}

#[test]
fn bonus_thresholds() {
    let c = config(
        r#"
payout_currency = "EUR"
[[rules]]
id = "cps"
effective_from = "2026-01-01"
kind = "percent"
percent = "10"
[[bonuses]]
id = "fixed-1k"
effective_from = "2026-01-01"
threshold_volume = "1000"
amount = "50"
[[bonuses]]
id = "pct-2k"
effective_from = "2026-01-01"
threshold_volume = "2000"
percent = "1"
"#,
    );
    let ds = vec![
        sale("X1", "px", "2026-11-02T10:00:00Z", "900.00"),
        sale("X2", "px", "2026-11-20T10:00:00Z", "600.00"),
        sale("Y1", "py", "2026-11-02T10:00:00Z", "2500.00"),
        sale("Z1", "pz", "2026-11-02T10:00:00Z", "999.99"),
    ];
    let s = statements(&c, &ds, &no_fx(), "2026-11");
    let by = |p: &str| s.iter().find(|s| s.partner_id == p).unwrap();
    // px: volume 1500 → fixed 50.00 only; lines 90 + 60
    let px = by("px");
    assert_eq!(px.bonuses.len(), 1);
    assert_eq!(px.bonuses[0].bonus_id, "fixed-1k");
    assert_eq!(px.bonuses[0].amount.to_string(), "50.00");
    assert_eq!(px.bonuses[0].line_no, 3);
    assert_eq!(px.totals.total_payable.to_string(), "200.00");
    // py: volume 2500 → 50.00 + 1 % × 2500 = 25.00; line 250.00
    let py = by("py");
    let amounts: Vec<String> = py.bonuses.iter().map(|b| b.amount.to_string()).collect();
    assert_eq!(amounts, ["50.00", "25.00"]);
    assert_eq!(py.totals.total_payable.to_string(), "325.00");
    // pz: 999.99 misses the threshold by a cent
    let pz = by("pz");
    assert!(pz.bonuses.is_empty());
    assert_eq!(pz.totals.total_payable.to_string(), "100.00");
}

#[test]
fn cap_per_partner_per_period() {
    let c = config(
        r#"
payout_currency = "EUR"
[[rules]]
id = "cps"
effective_from = "2026-01-01"
kind = "percent"
percent = "10"
cap_per_period = "100"
"#,
    );
    let s = statements(&c, &tier_claims(), &no_fx(), "2026-11");
    // 60 + 30 = 90; T3 40 is cut to the 10 left; T4 20 is cut to 0.
    assert_eq!(commissions(&s[0]), ["60.00", "30.00", "10.00", "0.00"]);
    assert!(s[0].lines[2].note.as_deref().unwrap().contains("capped"));
    assert_eq!(s[0].totals.total_payable.to_string(), "100.00");
}

#[test]
fn partner_override() {
    let c = config(
        r#"
payout_currency = "EUR"
[partner_groups]
vips = ["vip"]
[[rules]]
id = "cps"
effective_from = "2026-01-01"
kind = "percent"
percent = "10"
[[overrides]]
id = "vip-15"
partner = "vip"
rule = "cps"
percent = "15"
"#,
    );
    let ds = vec![
        sale("V1", "vip", "2026-11-02T10:00:00Z", "100.00"),
        sale("N1", "normal", "2026-11-02T10:00:00Z", "100.00"),
    ];
    let s = statements(&c, &ds, &no_fx(), "2026-11");
    let normal = &s[0];
    let vip = &s[1];
    assert_eq!(normal.partner_id, "normal");
    assert_eq!(commissions(normal), ["10.00"]);
    assert_eq!(normal.lines[0].override_id, None);
    assert_eq!(commissions(vip), ["15.00"]);
    assert_eq!(vip.lines[0].rule_id, "cps");
    assert_eq!(vip.lines[0].override_id.as_deref(), Some("vip-15"));
    assert_eq!(vip.lines[0].rate_percent, Some(d("15")));
}

#[test]
fn partner_group_rule_matches_first() {
    let c = config(
        r#"
payout_currency = "EUR"
[partner_groups]
influencers = ["inf-1", "inf-2"]
[[rules]]
id = "influencers"
effective_from = "2026-01-01"
groups = ["influencers"]
kind = "percent"
percent = "20"
[[rules]]
id = "default"
effective_from = "2026-01-01"
kind = "percent"
percent = "10"
"#,
    );
    let ds = vec![
        sale("I1", "inf-2", "2026-11-02T10:00:00Z", "50.00"),
        sale("D1", "other", "2026-11-02T10:00:00Z", "50.00"),
    ];
    let s = statements(&c, &ds, &no_fx(), "2026-11");
    assert_eq!(
        (s[0].partner_id.as_str(), s[0].lines[0].rule_id.as_str()),
        ("inf-2", "influencers")
    );
    assert_eq!(commissions(&s[0]), ["10.00"]);
    assert_eq!(
        (s[1].partner_id.as_str(), s[1].lines[0].rule_id.as_str()),
        ("other", "default")
    );
    assert_eq!(commissions(&s[1]), ["5.00"]);
}

#[test]
fn rule_changing_mid_month() {
    let c = config(
        r#"
payout_currency = "EUR"
timezone = "Europe/Berlin"
[[rules]]
id = "cps-old"
effective_from = "2026-01-01"
effective_to = "2026-11-14"
kind = "percent"
percent = "10"
[[rules]]
id = "cps-new"
effective_from = "2026-11-15"
kind = "percent"
percent = "12"
"#,
    );
    let ds = vec![
        sale("M1", "p1", "2026-11-10T10:00:00Z", "100.00"),
        // 23:30 UTC on the 14th is 00:30 on the 15th in Berlin: new rule
        sale("M2", "p1", "2026-11-14T23:30:00Z", "100.00"),
        sale("M3", "p1", "2026-11-14T22:30:00Z", "100.00"),
        sale("M4", "p1", "2026-11-20T10:00:00Z", "100.00"),
    ];
    let s = statements(&c, &ds, &no_fx(), "2026-11");
    let got: Vec<(String, String, String)> = s[0]
        .lines
        .iter()
        .map(|l| {
            (
                l.claim_id.clone(),
                l.rule_id.clone(),
                l.commission.to_string(),
            )
        })
        .collect();
    let want = [
        ("M1", "cps-old", "10.00"),
        ("M3", "cps-old", "10.00"),
        ("M2", "cps-new", "12.00"),
        ("M4", "cps-new", "12.00"),
    ];
    assert_eq!(
        got,
        want.map(|(a, b, c)| (a.to_string(), b.to_string(), c.to_string()))
    );
    assert_eq!(s[0].lines[2].date, day("2026-11-15"));
}

#[test]
fn fx_conversion_records_the_rate() {
    let c = config(CPS_EUR);
    let rates = fx(&[
        ("USD", "EUR", "2026-11-05", "0.9234"),
        ("USD", "EUR", "2026-11-20", "0.9100"),
    ]);
    let usd = |id: &str, at: &str, amt: &str| {
        claim("cj", id, "p1", EventType::Sale, at, Some((amt, "USD")))
    };
    let ds = vec![
        usd("F1", "2026-11-05T12:00:00Z", "123.45"),
        usd("F2", "2026-11-20T12:00:00Z", "80.05"),
    ];
    let s = statements(&c, &ds, &rates, "2026-11");
    // F1: 123.45 × 10 % × 0.9234 = 11.399373 → 11.40
    // F2: 80.05 × 10 % × 0.9100 = 7.28455 → 7.28
    assert_eq!(commissions(&s[0]), ["11.40", "7.28"]);
    assert_eq!(s[0].lines[0].fx_rate, Some(d("0.9234")));
    assert_eq!(s[0].lines[1].fx_rate, Some(d("0.9100")));
    assert_eq!(s[0].currency, "EUR");
    assert_eq!(s[0].volume.as_ref().unwrap().currency, "USD");
    // totals are sums of rounded lines: 18.68, not round(18.683823)
    assert_eq!(s[0].totals.total_payable.to_string(), "18.68");

    // a missing rate leaves the claim out (it stays unpaid) and says why
    let cx = Context {
        program: "shop",
        config: &c,
        period: Period::parse(c.period, "2026-11").unwrap(),
        status: Status::Draft,
        version: 1,
        judged_at: None,
        closed_early_at: None,
    };
    let ds2 = vec![usd("F3", "2026-11-06T12:00:00Z", "10.00")];
    let (s, skipped) = build_all(&cx, &ds2, &History::default(), &rates);
    assert!(s.is_empty());
    assert!(
        skipped[0]
            .reason
            .contains("no USD→EUR rate for 2026-11-06; add it to [fx]"),
        "{skipped:?}"
    );
}

#[test]
fn below_minimum_carries_forward_across_two_months() {
    let c = config(
        r#"
payout_currency = "EUR"
minimum_payout = "50.00"
[[rules]]
id = "cps"
effective_from = "2026-01-01"
kind = "percent"
percent = "10"
"#,
    );
    let tmp = tempfile::tempdir().unwrap();
    let book = MemoryBook::new();
    let ds = vec![
        sale("C1", "p1", "2026-10-10T10:00:00Z", "200.00"), // 20.00 in Oct
        sale("C2", "p1", "2026-11-10T10:00:00Z", "150.00"), // 15.00 in Nov
        sale("C3", "p1", "2026-12-10T10:00:00Z", "300.00"), // 30.00 in Dec
    ];
    let fxr = no_fx();
    let read = |period: &str| -> Statement {
        let bytes = std::fs::read(
            tmp.path()
                .join(format!("statements/shop/{period}/awin.p1.json")),
        )
        .unwrap();
        reckon::payout::render::read_json_file(&bytes).unwrap().0
    };
    // October: 20.00 < 50.00 → nothing payable, 20.00 carried out.
    let inp = inputs(&c, &ds[..1], &fxr, &book, tmp.path());
    reckon::payout::finalize(&inp, "2026-10").unwrap();
    let oct = read("2026-10");
    assert_eq!(
        (
            oct.totals.carried_in.to_string(),
            oct.totals.total_payable.to_string(),
            oct.totals.carried_out.to_string()
        ),
        ("0.00".into(), "0.00".into(), "20.00".into())
    );
    // November: 15.00 + 20.00 carried in = 35.00 < 50.00 → carried again.
    let inp = inputs(&c, &ds[..2], &fxr, &book, tmp.path());
    reckon::payout::finalize(&inp, "2026-11").unwrap();
    let nov = read("2026-11");
    assert_eq!(commissions(&nov), ["15.00"]);
    assert_eq!(
        (
            nov.totals.carried_in.to_string(),
            nov.totals.total_payable.to_string(),
            nov.totals.carried_out.to_string()
        ),
        ("20.00".into(), "0.00".into(), "35.00".into())
    );
    // December: 30.00 + 35.00 = 65.00 ≥ 50.00 → all paid.
    let inp = inputs(&c, &ds, &fxr, &book, tmp.path());
    reckon::payout::finalize(&inp, "2026-12").unwrap();
    let dec = read("2026-12");
    assert_eq!(commissions(&dec), ["30.00"]);
    assert_eq!(
        (
            dec.totals.carried_in.to_string(),
            dec.totals.total_payable.to_string(),
            dec.totals.carried_out.to_string()
        ),
        ("35.00".into(), "65.00".into(), "0.00".into())
    );
    assert_eq!(dec.totals.minimum_payout.to_string(), "50.00");
}

#[test]
fn refund_after_finalisation_is_clawed_back_next_period() {
    let c = config(CPS_EUR);
    let tmp = tempfile::tempdir().unwrap();
    let book = MemoryBook::new();
    let fxr = no_fx();
    let a = sale("A", "p1", "2026-10-05T10:00:00Z", "200.00");
    let b = sale("B", "p1", "2026-10-06T10:00:00Z", "100.00");
    let oct_data = vec![a.clone(), b.clone()];
    reckon::payout::finalize(&inputs(&c, &oct_data, &fxr, &book, tmp.path()), "2026-10").unwrap();
    let oct_dir = tmp.path().join("statements/shop/2026-10");
    let oct_files = read_dir(&oct_dir);

    // After finalisation: B refunded in full, A refunded down to 150.00,
    // and a new November sale C.
    let nov_data = vec![
        partly_refunded(a, "150.00"),
        refunded(b),
        sale("C", "p1", "2026-11-07T10:00:00Z", "300.00"),
    ];
    let inp = inputs(&c, &nov_data, &fxr, &book, tmp.path());
    let report = reckon::payout::finalize(&inp, "2026-11").unwrap();
    assert_eq!((report.lines, report.adjustments), (1, 2));
    let bytes = std::fs::read(tmp.path().join("statements/shop/2026-11/awin.p1.json")).unwrap();
    let nov = reckon::payout::render::read_json_file(&bytes).unwrap().0;
    // C: 300 × 10 % = 30.00 (line 1)
    assert_eq!(commissions(&nov), ["30.00"]);
    // A: paid 20.00 on 200.00; now 150.00 → 15.00: adjustment −5.00
    // B: paid 10.00; refunded → −10.00
    let adj: Vec<(String, String, u32, String)> = nov
        .adjustments
        .iter()
        .map(|a| {
            (
                a.claim_id.clone(),
                a.original_statement_id.clone(),
                a.original_line_no,
                a.amount.to_string(),
            )
        })
        .collect();
    assert_eq!(
        adj,
        vec![
            ("A".into(), "shop/2026-10/awin:p1".into(), 1, "-5.00".into()),
            (
                "B".into(),
                "shop/2026-10/awin:p1".into(),
                2,
                "-10.00".into()
            ),
        ]
    );
    assert_eq!(nov.adjustments[0].line_no, 2);
    assert_eq!(nov.totals.adjustments.to_string(), "-15.00");
    assert_eq!(nov.totals.total_payable.to_string(), "15.00");

    // October's files did not change, and regenerating October (with the
    // new data) reproduces them byte for byte.
    assert_eq!(read_dir(&oct_dir), oct_files);
    let again = reckon::payout::generate(&inp, "2026-10").unwrap();
    assert!(again.already_finalised && again.restored.is_empty());
    assert_eq!(read_dir(&oct_dir), oct_files);

    // December with nothing new: no statement, nothing clawed back twice.
    let dec = reckon::payout::finalize(&inp, "2026-12").unwrap();
    assert_eq!((dec.partners, dec.adjustments), (0, 0));

    // January: B's refund is undone (matched again at 100.00): the 10.00
    // reversed in November is paid back, and the line says so.
    let jan_data = vec![
        partly_refunded(nov_data[0].clone(), "150.00"),
        sale("B", "p1", "2026-10-06T10:00:00Z", "100.00"),
        nov_data[2].clone(),
    ];
    let inp = inputs(&c, &jan_data, &fxr, &book, tmp.path());
    let jan = reckon::payout::finalize(&inp, "2027-01").unwrap();
    assert_eq!((jan.lines, jan.adjustments), (0, 1));
    let bytes = std::fs::read(tmp.path().join("statements/shop/2027-01/awin.p1.json")).unwrap();
    let jan = reckon::payout::render::read_json_file(&bytes).unwrap().0;
    let a = &jan.adjustments[0];
    assert_eq!(
        (a.claim_id.as_str(), a.amount.to_string()),
        ("B", "10.00".into())
    );
    assert!(
        a.reason.starts_with("claim earns again (`matched`")
            && a.reason
                .ends_with("the commission reversed earlier is paid back"),
        "{}",
        a.reason
    );
}

#[test]
fn a_clawback_larger_than_the_earnings_is_reported_as_owed_back() {
    // October pays A (20.00) to p1 and B (10.00) to p2; in November A is
    // refunded in full and p1 earns nothing new: p1 carries −20.00 (owes it
    // back), p2 earns C (30.00, payable). The report keeps the two apart.
    let c = config(CPS_EUR);
    let tmp = tempfile::tempdir().unwrap();
    let book = MemoryBook::new();
    let fxr = no_fx();
    let a = sale("A", "p1", "2026-10-05T10:00:00Z", "200.00");
    let b = sale("B", "p2", "2026-10-06T10:00:00Z", "100.00");
    let oct = vec![a.clone(), b.clone()];
    reckon::payout::finalize(&inputs(&c, &oct, &fxr, &book, tmp.path()), "2026-10").unwrap();
    let nov = vec![
        refunded(a),
        b,
        sale("C", "p2", "2026-11-07T10:00:00Z", "300.00"),
    ];
    let r =
        reckon::payout::finalize(&inputs(&c, &nov, &fxr, &book, tmp.path()), "2026-11").unwrap();
    assert_eq!(r.total_payable.to_string(), "30.00");
    assert_eq!(r.owed_back.to_string(), "-20.00");
    assert_eq!(r.carried_out.to_string(), "-20.00");
}

/// A sale of `amount` EUR claimed on network `g1`.
fn g1_sale(id: &str, partner: &str, occurred: &str, amount: &str) -> Decision {
    claim(
        "g1",
        id,
        partner,
        EventType::Sale,
        occurred,
        Some((amount, "EUR")),
    )
}

/// Every finalised statement of the book, in period and payee order.
fn finalised(book: &MemoryBook) -> Vec<Statement> {
    let mut v = Vec::new();
    for rec in reckon::payout::lifecycle::period_records(book, "shop").unwrap() {
        if rec.status == Status::Finalised {
            for (s, _) in reckon::payout::lifecycle::finalised_statements(book, &rec).unwrap() {
                v.push(s);
            }
        }
    }
    v
}

/// The bookkeeping invariant: for every claim, what the finalised
/// statements paid each payee (lines plus adjustments) is zero except for
/// the payee in the ledger of paid claims, which was paid its `paid_total`.
fn assert_ledger_matches_statements(book: &MemoryBook) {
    let mut net = PaidByPayee::new();
    for s in finalised(book) {
        add_paid(&mut net, &s);
    }
    let history = reckon::payout::lifecycle::load_history(book, "shop").unwrap();
    assert_paid_matches_ledger(&net, &history, "ledger");
}

const WEEKLY_CPS: &str = r#"
payout_currency = "EUR"
period = "weekly"
[[rules]]
id = "cps"
effective_from = "2026-01-01"
kind = "percent"
percent = "10"
"#;

/// QA finding of 2026-11-29: claim k2 of network g1, paid 10.00 to g1:p1
/// on the finalised statement of 2026-W40, was restated by the network
/// with partner p9. No later statement corrected it: p9 was never paid,
/// and a later reversal of k2 was taken from p1.
fn a_claim_moved_after_payment(make: MakeInputs) {
    let c = config(WEEKLY_CPS);
    let tmp = tempfile::tempdir().unwrap();
    let book = MemoryBook::new();
    let fxr = no_fx();
    let read = |period: &str, stem: &str| -> Statement {
        let path = tmp
            .path()
            .join(format!("statements/shop/{period}/{stem}.json"));
        let bytes = std::fs::read(&path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
        reckon::payout::render::read_json_file(&bytes).unwrap().0
    };
    let money = |x: rust_decimal::Decimal| x.to_string();

    // W40 (2026-09-28 .. 10-04): p1 is paid k1 (50.00 × 10 % = 5.00) and
    // k2 (100.00 × 10 % = 10.00).
    let k1 = g1_sale("k1", "p1", "2026-09-29T10:00:00Z", "50.00");
    let k2 = g1_sale("k2", "p1", "2026-09-30T10:00:00Z", "100.00");
    // k5 is p1's too, but converted in W43: unpaid when it moves.
    let k5 = g1_sale("k5", "p1", "2026-10-20T10:00:00Z", "150.00");
    let w40 = vec![k1.clone(), k2.clone(), k5.clone()];
    reckon::payout::finalize(&make(&c, &w40, &fxr, &book, tmp.path()), "2026-W40").unwrap();
    let s = read("2026-W40", "g1.p1");
    assert_eq!(commissions(&s), ["5.00", "10.00"]);
    assert_eq!(money(s.totals.total_payable), "15.00");

    // W42 (10-12 .. 10-18): the network restates k2 with partner p9. New
    // sales: k4 of p9 (200.00 → 20.00), k6 of p1 (300.00 → 30.00).
    let mut k2_moved = k2.clone();
    k2_moved.partner_id = "p9".into();
    k2_moved.partner_name = Some("Partner p9".into());
    k2_moved.claim.revision = 2;
    let k4 = g1_sale("k4", "p9", "2026-10-13T10:00:00Z", "200.00");
    let k6 = g1_sale("k6", "p1", "2026-10-14T10:00:00Z", "300.00");
    let w42 = vec![
        k1.clone(),
        k2_moved.clone(),
        k4.clone(),
        k5.clone(),
        k6.clone(),
    ];
    let inp = make(&c, &w42, &fxr, &book, tmp.path());
    // The daemon's scheduled drafts on Tuesday of W43 (W42 and W43) carry
    // the correction already ...
    let drafts = reckon::payout::generate_open_drafts(&inp, day("2026-10-20")).unwrap();
    let names: Vec<&str> = drafts.iter().map(|r| r.period.as_str()).collect();
    assert_eq!(names, ["2026-W42", "2026-W43"]);
    assert_eq!(
        read("2026-W42", "g1.p1").totals.adjustments.to_string(),
        "-10.00"
    );
    assert_eq!(commissions(&read("2026-W42", "g1.p9")), ["10.00", "20.00"]);
    // ... and so does the finalised W42.
    let r = reckon::payout::finalize(&inp, "2026-W42").unwrap();
    assert_eq!((r.partners, r.lines, r.adjustments), (2, 3, 1));
    // p1: k6 30.00, k2 taken back −10.00 → 20.00 payable.
    let p1 = read("2026-W42", "g1.p1");
    assert_eq!(commissions(&p1), ["30.00"]);
    assert_eq!(p1.partner_name.as_deref(), Some("Partner p1"));
    let a = &p1.adjustments[0];
    assert_eq!(
        (
            a.claim_id.as_str(),
            a.original_statement_id.as_str(),
            a.original_line_no,
            money(a.previously_paid),
            money(a.amount),
            a.line_no
        ),
        (
            "k2",
            "shop/2026-W40/g1:p1",
            2,
            "10.00".into(),
            "-10.00".into(),
            2
        )
    );
    assert!(
        a.reason
            .starts_with("claim moved to partner `g1:p9` by the network (`matched`")
            && a.reason
                .ends_with("the commission paid here is taken back and paid to that partner"),
        "{}",
        a.reason
    );
    assert_eq!(a.trace.as_ref().unwrap().claim_revision, 2);
    assert_eq!(money(p1.totals.total_payable), "20.00");
    // p9: k2 as a new line of its own, dated as converted (10.00), then k4
    // (20.00) → 30.00 payable.
    let p9 = read("2026-W42", "g1.p9");
    let lines: Vec<(&str, String, String)> = p9
        .lines
        .iter()
        .map(|l| (l.claim_id.as_str(), l.date.to_string(), money(l.commission)))
        .collect();
    assert_eq!(
        lines,
        [
            ("k2", "2026-09-30".into(), "10.00".into()),
            ("k4", "2026-10-13".into(), "20.00".into())
        ]
    );
    assert!(p9.adjustments.is_empty());
    assert_eq!(money(p9.totals.total_payable), "30.00");
    // The ledger now says p9 was paid k2, by its W42 line 1.
    let history = reckon::payout::lifecycle::load_history(&book, "shop").unwrap();
    let paid = &history.paid[&("g1".to_string(), "k2".to_string())];
    assert_eq!(
        (
            paid.partner_id.as_str(),
            paid.statement_id.as_str(),
            paid.line_no,
            money(paid.paid_total)
        ),
        ("p9", "shop/2026-W42/g1:p9", 1, "10.00".into())
    );
    assert_ledger_matches_statements(&book);

    // W44 (10-26 .. 11-01): the network reverses k2, now p9's; and k5,
    // unpaid, moves to p9 too (nothing to take back from p1).
    let mut k2_reversed = k2_moved.clone();
    k2_reversed.outcome = reckon::reconcile::model::Outcome::NetworkReversed;
    k2_reversed.payable = false;
    k2_reversed.reason = "the network reversed the claim".into();
    k2_reversed.claim.revision = 3;
    let mut k5_moved = k5.clone();
    k5_moved.partner_id = "p9".into();
    let w44 = vec![k1, k2_reversed, k4, k5_moved, k6];
    let r = reckon::payout::finalize(&make(&c, &w44, &fxr, &book, tmp.path()), "2026-W44").unwrap();
    // Only p9 has a statement: p1 has nothing to correct.
    assert_eq!((r.partners, r.lines, r.adjustments), (1, 1, 1));
    let p9 = read("2026-W44", "g1.p9");
    // k5: 150.00 × 10 % = 15.00; k2: the 10.00 paid in W42 reversed
    // → 5.00 payable.
    assert_eq!(commissions(&p9), ["15.00"]);
    assert_eq!(p9.lines[0].claim_id, "k5");
    let a = &p9.adjustments[0];
    assert_eq!(
        (
            a.claim_id.as_str(),
            a.original_statement_id.as_str(),
            a.original_line_no,
            money(a.amount)
        ),
        ("k2", "shop/2026-W42/g1:p9", 1, "-10.00".into())
    );
    assert!(
        a.reason.starts_with("claim is now `network_reversed`"),
        "{}",
        a.reason
    );
    assert_eq!(money(p9.totals.total_payable), "5.00");
    assert!(!tmp
        .path()
        .join("statements/shop/2026-W44/g1.p1.json")
        .exists());
    assert_ledger_matches_statements(&book);

    // Regenerating W44 reproduces it; nothing is taken back twice.
    let again =
        reckon::payout::generate(&make(&c, &w44, &fxr, &book, tmp.path()), "2026-W44").unwrap();
    assert!(again.already_finalised && again.restored.is_empty());
}

type MakeInputs = for<'a> fn(
    &'a CommissionConfig,
    &'a [Decision],
    &'a dyn FxRates,
    &'a MemoryBook,
    &'a std::path::Path,
) -> reckon::payout::Inputs<'a>;

#[test]
fn a_claim_moved_after_payment_is_taken_back_from_the_old_partner_and_paid_to_the_new() {
    a_claim_moved_after_payment(inputs);
}

#[test]
fn a_claim_moved_after_payment_is_corrected_with_decisions_from_a_slice_too() {
    a_claim_moved_after_payment(inputs_slice);
}
