//! Statement format 14 (QA34c M1, M2): every exchange rate a statement
//! shows has the date of its `[fx]` row (a Saturday's claim priced at the
//! Friday's rate says so), and a payee's statement lists the payee's own
//! claims it does not pay, with why (held back, not payable yet, earning
//! nothing), totals unchanged. A format-13 statement still renders,
//! restores and verifies as issued.

mod payout_support;

use payout_support::*;
use reckon::fx::FxTable;
use reckon::payout::book::MemoryBook;
use reckon::payout::model::{NotPaidStatus, Statement, FORMAT_VERSION};
use reckon::reconcile::model::{Decision, Outcome};
use std::path::Path;

const RULES: &str = r#"
payout_currency = "EUR"
[[rules]]
id = "cps"
effective_from = "2026-01-01"
kind = "percent"
percent = "10"
[[bonuses]]
id = "pct1"
effective_from = "2026-01-01"
threshold_volume = "100"
percent = "1"
"#;

/// A payable, matched sale of `amount` USD (the program currency) by
/// `partner` on network `net`.
fn usd(id: &str, partner: &str, occurred: &str, amount: &str) -> Decision {
    claim(
        "net",
        id,
        partner,
        plugin_api::EventType::Sale,
        occurred,
        Some((amount, "USD")),
    )
}

/// `x` lost its order to another network's claim.
fn duplicate(mut x: Decision) -> Decision {
    x.outcome = Outcome::Duplicate;
    x.payable = false;
    x.basis = None;
    x.reason = "order `shop/O-C1` also claimed by `other/77`, which wins on last click (2026-10-03T09:00:00Z)".into();
    x
}

/// USD→EUR rows as `[fx]` holds them, a rate valid for up to 7 days.
fn usd_eur(rows: &[(&str, &str)]) -> FxTable {
    FxTable::from_rates(
        rows.iter()
            .map(|(date, rate)| (day(date), "USD".to_string(), "EUR".to_string(), d(rate))),
        7,
    )
}

fn text(dir: &Path, name: &str) -> String {
    String::from_utf8(std::fs::read(dir.join(name)).unwrap()).unwrap()
}

/// M2: a claim of Saturday 2026-10-10 is priced at Friday's 0.94 and its
/// line says the rate is of 2026-10-09, in the JSON, the CSV and the
/// HTML; so do the reconciliation rates of its trace (it was claimed in
/// EUR), the adjustment of a September line (priced now at the rate of
/// its Saturday, the Friday's), the bonus (the period's last day, a
/// Saturday) and the bonus adjustment (the rate its statement's bonus was
/// paid at).
#[test]
fn each_rate_shown_gives_the_date_of_its_fx_row() {
    let c = config(RULES);
    let tmp = tempfile::tempdir().unwrap();
    let b = MemoryBook::new();
    let rates = usd_eur(&[
        ("2026-09-04", "0.91"),
        ("2026-09-30", "0.92"),
        ("2026-10-09", "0.94"),
        ("2026-10-30", "0.95"),
    ]);
    // Saturday 2026-09-05.
    let sep = vec![usd("C1", "p1", "2026-09-05T10:00:00Z", "100.00")];
    reckon::payout::finalize(&inputs(&c, &sep, &rates, &b, tmp.path()), "2026-09").unwrap();
    // Claimed and ordered in EUR; reconciliation converted it at the
    // inverse of Friday's row.
    let mut c8 = usd("C8", "p1", "2026-10-10T09:00:00Z", "106.38");
    c8.claimed_amount = Some(plugin_api::Money::new(d("100.00"), "EUR"));
    c8.order_amount = Some(plugin_api::Money::new(d("100.00"), "EUR"));
    c8.fx_rate = Some(d("1.063829787234"));
    c8.order_fx_rate = Some(d("1.063829787234"));
    c8.inputs.fx_rate_date = Some(day("2026-10-09"));
    c8.inputs.order_fx_rate_date = Some(day("2026-10-09"));
    let oct = vec![partly_refunded(sep[0].clone(), "60.00"), c8];
    let r = reckon::payout::generate(&inputs(&c, &oct, &rates, &b, tmp.path()), "2026-10").unwrap();
    let s = statements_in(&r.dir).remove("p1").unwrap();
    assert_eq!(s.format_version, FORMAT_VERSION);
    assert!(s.format_version >= 14, "{}", s.format_version);

    let l = &s.lines[0];
    assert_eq!(
        (l.claim_id.as_str(), l.date, l.fx_rate, l.fx_rate_date),
        (
            "C8",
            day("2026-10-10"),
            Some(d("0.94")),
            Some(day("2026-10-09"))
        )
    );
    let t = l.trace.as_ref().unwrap();
    assert_eq!(
        (t.claim_fx_rate_date, t.order_fx_rate_date),
        (Some(day("2026-10-09")), Some(day("2026-10-09")))
    );
    let a = &s.adjustments[0];
    assert_eq!(
        (a.claim_id.as_str(), a.fx_rate, a.fx_rate_date),
        ("C1", Some(d("0.91")), Some(day("2026-09-04")))
    );
    let bonus = &s.bonuses[0];
    assert_eq!(
        (bonus.fx_rate, bonus.fx_rate_date),
        (Some(d("0.95")), Some(day("2026-10-30")))
    );
    let ba = &s.bonus_adjustments[0];
    assert_eq!(
        (ba.fx_rate, ba.fx_rate_date),
        (Some(d("0.92")), Some(day("2026-09-30")))
    );

    let csv = std::fs::read(r.dir.join("net.p1.csv")).unwrap();
    let line = &rows_by_name(&csv, "line")[0];
    assert_eq!(
        [
            line["date"].as_str(),
            line["fx_rate"].as_str(),
            line["fx_rate_date"].as_str(),
            line["claim_fx_rate"].as_str(),
            line["claim_fx_rate_date"].as_str(),
            line["order_fx_rate_date"].as_str(),
        ],
        [
            "2026-10-10",
            "0.94",
            "2026-10-09",
            "1.063829787234",
            "2026-10-09",
            "2026-10-09"
        ]
    );
    let adjustment = &rows_by_name(&csv, "adjustment")[0];
    assert_eq!(
        (
            adjustment["fx_rate"].as_str(),
            adjustment["fx_rate_date"].as_str()
        ),
        ("0.91", "2026-09-04")
    );
    let bonus = &rows_by_name(&csv, "bonus")[0];
    assert_eq!(bonus["fx_rate_date"], "2026-10-30");
    let ba = &rows_by_name(&csv, "bonus_adjustment")[0];
    assert_eq!(ba["fx_rate_date"], "2026-09-30");

    let html = text(&r.dir, "net.p1.html");
    assert!(
        html.contains("<td class=\"n\">0.94 (rate of 2026-10-09)</td>"),
        "{html}"
    );
    assert!(
        html.contains("FX USD→EUR 0.91 (rate of 2026-09-04)"),
        "{html}"
    );
    assert!(
        html.contains("<td class=\"n\">0.95 (rate of 2026-10-30)</td>"),
        "{html}"
    );
}

/// M1: each payee's statement lists its own claims that it does not pay,
/// with why: one held back (no USD→EUR rate for its date), one whose lock
/// date has not passed, one duplicate; another payee's duplicate is on
/// that payee's statement only, and claims dated outside the period are
/// not listed. Nothing of it counts in the totals. The decisions read as
/// `reckon statements` reads them (`Decisions::Source`, which keeps only
/// what the period's statements read) give the same files as all of them.
#[test]
fn a_statement_lists_its_payees_claims_it_does_not_pay_with_why() {
    let c = config(RULES);
    // No rate for 2026-10-20 or the 7 days before.
    let rates = usd_eur(&[
        ("2026-10-01", "0.93"),
        ("2026-10-09", "0.94"),
        ("2026-10-28", "0.95"),
        ("2026-10-30", "0.95"),
    ]);
    let mut pending = usd("C5", "p1", "2026-10-22T10:00:00Z", "80.00");
    pending.payable = false;
    pending.lock_at = Some(at("2099-01-01T00:00:00Z"));
    let mut november = usd("C10", "p1", "2026-11-02T10:00:00Z", "80.00");
    november.payable = false;
    november.lock_at = Some(at("2099-01-01T00:00:00Z"));
    let paid = vec![
        usd("C2", "p1", "2026-10-05T10:00:00Z", "200.00"),
        usd("C4", "p1", "2026-10-20T10:00:00Z", "150.00"),
        usd("C7", "p2", "2026-10-06T10:00:00Z", "100.00"),
    ];
    let mut all = paid.clone();
    all.extend([
        pending,
        duplicate(usd("C6", "p1", "2026-10-23T10:00:00Z", "50.00")),
        duplicate(usd("C9", "p1", "2026-09-15T10:00:00Z", "50.00")),
        november,
        duplicate(usd("C11", "p2", "2026-10-07T10:00:00Z", "40.00")),
    ]);
    let run = |ds: &[Decision], source: bool| {
        let tmp = tempfile::tempdir().unwrap();
        let b = MemoryBook::new();
        let i = if source {
            inputs(&c, ds, &rates, &b, tmp.path())
        } else {
            inputs_slice(&c, ds, &rates, &b, tmp.path())
        };
        let r = reckon::payout::generate(&i, "2026-10").unwrap();
        (read_dir(&r.dir), statements_in(&r.dir), tmp)
    };
    let (files, statements, _tmp) = run(&all, true);
    assert_eq!(run(&all, false).0, files);

    let p1 = &statements["p1"];
    let listed: Vec<_> = p1
        .not_paid
        .iter()
        .map(|n| (n.status, n.claim_id.as_deref().unwrap(), n.outcome.unwrap()))
        .collect();
    assert_eq!(
        listed,
        [
            (NotPaidStatus::HeldBack, "C4", Outcome::Matched),
            (NotPaidStatus::Pending, "C5", Outcome::Matched),
            (NotPaidStatus::NotEarning, "C6", Outcome::Duplicate),
        ]
    );
    // The held-back claim says what held_back.csv says for it.
    let held = String::from_utf8(files["held_back.csv"].clone()).unwrap();
    let missing = "no USD→EUR rate for 2026-10-20 or the 7 days before; add it to [fx]";
    assert!(
        held.contains(&format!("net:p1,net/C4,{missing},held_back")),
        "{held}"
    );
    assert_eq!(p1.not_paid[0].reason, missing);
    assert_eq!(p1.not_paid[0].date, Some(day("2026-10-20")));
    assert_eq!(
        p1.not_paid[0].claimed_amount,
        Some(plugin_api::Money::new(d("150.00"), "USD"))
    );
    assert_eq!(p1.not_paid[1].lock_at, Some(at("2099-01-01T00:00:00Z")));
    assert!(
        p1.not_paid[1]
            .reason
            .starts_with("earns commission once its lock date passes, 2099-01-01T00:00:00Z"),
        "{}",
        p1.not_paid[1].reason
    );
    assert!(p1.not_paid[2].reason.contains("also claimed by `other/77`"));
    let p2 = &statements["p2"];
    assert_eq!(p2.not_paid.len(), 1);
    assert_eq!(p2.not_paid[0].claim_id.as_deref(), Some("C11"));

    // Totals as without the claims not paid.
    let (_, alone, _tmp2) = run(&paid, true);
    assert_eq!(p1.totals, alone["p1"].totals);
    assert_eq!(p2.totals, alone["p2"].totals);
    assert!(alone["p1"]
        .not_paid
        .iter()
        .all(|n| n.status == NotPaidStatus::HeldBack));

    // CSV: `not_paid` rows, with no amount.
    let rows = rows_by_name(&files["net.p1.csv"], "not_paid");
    let cells: Vec<_> = rows
        .iter()
        .map(|r| {
            [
                r["claim_id"].as_str(),
                r["date"].as_str(),
                r["not_paid_status"].as_str(),
                r["outcome"].as_str(),
                r["amount"].as_str(),
                r["claimed_amount"].as_str(),
                r["lock_at"].as_str(),
            ]
        })
        .collect();
    assert_eq!(
        cells,
        [
            ["C4", "2026-10-20", "held_back", "matched", "", "150.00", ""],
            [
                "C5",
                "2026-10-22",
                "pending",
                "matched",
                "",
                "80.00",
                "2099-01-01T00:00:00Z"
            ],
            [
                "C6",
                "2026-10-23",
                "not_earning",
                "duplicate",
                "",
                "50.00",
                ""
            ],
        ]
    );
    assert_eq!(rows[0]["note"], missing);
    // Each payee's files name its own claims only.
    for name in ["net.p1.json", "net.p1.csv", "net.p1.html"] {
        let f = String::from_utf8(files[name].clone()).unwrap();
        for other in ["C7", "C9", "C10", "C11"] {
            assert!(
                !f.contains(&format!("\"{other}\""))
                    && !f.contains(&format!(",{other},"))
                    && !f.contains(&format!(">{other}<")),
                "{name}: {other}"
            );
        }
    }
    for name in ["net.p2.json", "net.p2.csv", "net.p2.html"] {
        let f = String::from_utf8(files[name].clone()).unwrap();
        for other in ["C4", "C5", "C6"] {
            assert!(!f.contains(other), "{name}: {other}");
        }
    }

    // HTML: in the partner's words.
    let html = String::from_utf8(files["net.p1.html"].clone()).unwrap();
    assert!(
        html.contains("<h2>Your claims not paid on this statement</h2>"),
        "{html}"
    );
    assert!(html.contains("<td>Held back: payable, paid on a later statement</td><td>no USD→EUR rate for 2026-10-20 or the 7 days before</td>"), "{html}");
    assert!(!html.contains("[fx]"), "{html}");
    assert!(html.contains("<td>Not payable yet</td><td>earns commission once its lock date passes, 2099-01-01 00:00:00 UTC:"), "{html}");
    assert!(html.contains("<td>Earns no commission (duplicate)</td><td>order O-C1 also claimed by another claim, which wins on last click (2026-10-03 09:00:00 UTC)</td>"), "{html}");
    assert!(!html.contains("other/77"), "{html}");
}

/// A statement of format 13 as `finalize` issued it before format 14 (a
/// USD program paid in EUR: a line, a refund's adjustment, a bonus
/// adjustment and a percent bonus, and a duplicate the statement did not
/// list), with the SHA-256 of its CSV and HTML.
const FORMAT_13_JSON: &str = r#"{"format_version":13,"statement_id":"shop/2026-10/net:p1","version":1,"status":"finalised","program":"shop","network":"net","partner_id":"p1","partner_name":"Partner p1","period":"2026-10","period_start":"2026-10-01","period_end":"2026-10-31","timezone":"UTC","currency":"EUR","volume":{"amount":"200.00","currency":"USD"},"lines":[{"line_no":1,"network":"net","claim_id":"C2","order_id":"O-C2","date":"2026-10-09","occurred_at":"2026-10-09T10:00:00Z","event":"sale","basis":{"amount":"200.00","currency":"USD"},"rule_id":"cps","override_id":null,"rate_percent":"10","flat_amount":null,"rate_detail":null,"fx_rate":"0.94","commission":"18.80","note":null,"trace":{"claim_revision":1,"order_source":"shop","order_revision":1,"decided_at":"2026-12-01T00:00:00Z","claimed_amount":{"amount":"200.00","currency":"USD"},"order_amount":{"amount":"200.00","currency":"USD"}},"outcome":"matched"}],"adjustments":[{"line_no":2,"network":"net","claim_id":"C1","order_id":"O-C1","outcome":"partially_refunded","reason":"basis 100.00 → 60.00; repriced to 5.46 (`partially_refunded`: order partly refunded)","original_statement_id":"shop/2026-09/net:p1","original_line_no":1,"original_commission":"9.10","previously_paid":"9.10","original_basis":"100.00","current_basis":"60.00","amount":"-3.64","trace":{"claim_revision":1,"order_source":"shop","order_revision":1,"decided_at":"2026-12-01T00:00:00Z","claimed_amount":{"amount":"100.00","currency":"USD"},"order_amount":{"amount":"100.00","currency":"USD"},"refunded_amount":{"amount":"40.00","currency":"USD"}},"volume_now":"60.00","rule_id":"cps","rate_percent":"10","fx_rate":"0.91"}],"bonus_adjustments":[{"line_no":3,"bonus_id":"pct1","reason":"bonus `pct1` of statement shop/2026-09/net:p1 no longer reached: volume 60.00 < threshold 100.00; the bonus credited for it is taken back","original_statement_id":"shop/2026-09/net:p1","original_line_no":2,"threshold_volume":"100.00","percent":"1","fixed_amount":null,"fx_rate":"0.92","original_volume":"100.00","current_volume":"60.00","original_amount":"0.92","previously_paid":"0.92","amount":"-0.92"}],"bonuses":[{"line_no":4,"bonus_id":"pct1","threshold_volume":"100.00","volume":"200.00","percent":"1","fixed_amount":null,"fx_rate":"0.95","amount":"1.90"}],"totals":{"lines":"18.80","adjustments":"-4.56","bonuses":"1.90","carried_in":"0.00","subtotal":"16.14","minimum_payout":"0.00","total_payable":"16.14","carried_out":"0.00"},"content_hash":"8b8eda963e93e05458fd1c9bcbdefedbe451718d4e4ef690eafe4e0b79f7d188"}"#;
const FORMAT_13_CSV_SHA256: &str =
    "423023c3e8e7554e498c4c74caf0727a722942b36f74e136aa70858cfd24f415";
const FORMAT_13_HTML_SHA256: &str =
    "96f9c04711c73117a21e699c114249e26ed492222cbcec7e4f690e887c1c358e";

/// Format 13 and earlier render, restore and verify as issued: the files
/// of a stored format-13 statement are those it was issued with, byte for
/// byte (no rate dates, no `not_paid`), `generate` of its finalised period
/// writes them back and `verify` finds nothing.
#[test]
fn a_format_13_statement_renders_restores_and_verifies_as_issued() {
    let json = format!("{FORMAT_13_JSON}\n");
    let (issued, claimed, actual) =
        reckon::payout::render::read_json_file(json.as_bytes()).unwrap();
    assert_eq!(claimed, actual);
    assert_eq!(issued.format_version, 13);
    let csv = reckon::payout::render::csv_file(&issued).unwrap();
    assert_eq!(
        reckon::payout::render::sha256_hex(&csv),
        FORMAT_13_CSV_SHA256
    );
    let html = reckon::payout::render::html_file(&issued, &actual);
    assert_eq!(
        reckon::payout::render::sha256_hex(html.as_bytes()),
        FORMAT_13_HTML_SHA256
    );

    // The same period finalised today, then recorded as format 13 issued it.
    let c = config(RULES);
    let tmp = tempfile::tempdir().unwrap();
    let b = MemoryBook::new();
    let rates = fx(&[
        ("USD", "EUR", "2026-09-04", "0.91"),
        ("USD", "EUR", "2026-09-30", "0.92"),
        ("USD", "EUR", "2026-10-09", "0.94"),
        ("USD", "EUR", "2026-10-31", "0.95"),
    ]);
    let sep = vec![usd("C1", "p1", "2026-09-04T10:00:00Z", "100.00")];
    reckon::payout::finalize(&inputs(&c, &sep, &rates, &b, tmp.path()), "2026-09").unwrap();
    let oct = vec![
        partly_refunded(sep[0].clone(), "60.00"),
        usd("C2", "p1", "2026-10-09T10:00:00Z", "200.00"),
        duplicate(usd("C3", "p1", "2026-10-10T10:00:00Z", "50.00")),
    ];
    let r = reckon::payout::finalize(&inputs(&c, &oct, &rates, &b, tmp.path()), "2026-10").unwrap();
    let today: Statement = statements_in(&r.dir).remove("p1").unwrap();
    assert!(today.format_version >= 14, "{}", today.format_version);
    assert_eq!(today.not_paid.len(), 1);
    assert_eq!(today.totals, issued.totals);
    reissue_with(&b, &r.dir, "2026-10", &|s| *s = issued.clone());
    let again =
        reckon::payout::generate(&inputs(&c, &oct, &rates, &b, tmp.path()), "2026-10").unwrap();
    assert!(again.already_finalised);
    assert_eq!(
        std::fs::read(r.dir.join("net.p1.json")).unwrap(),
        json.as_bytes()
    );
    let csv = std::fs::read(r.dir.join("net.p1.csv")).unwrap();
    assert_eq!(
        reckon::payout::render::sha256_hex(&csv),
        FORMAT_13_CSV_SHA256
    );
    let html = std::fs::read(r.dir.join("net.p1.html")).unwrap();
    assert_eq!(
        reckon::payout::render::sha256_hex(&html),
        FORMAT_13_HTML_SHA256
    );
    let v = reckon::payout::verify(&b, tmp.path(), "shop", "2026-10").unwrap();
    assert!(v.problems.is_empty(), "{:?}", v.problems);
}
