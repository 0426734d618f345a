//! QA41 A-L1: a percent line on a basis of 0.00 (a sale matched to an
//! order of 0.00) is 0.00 at any rate, so it asks `[fx]` for none: it was
//! held back for want of a rate (a warning, a `held_back.csv` row, a
//! `not_paid` `held_back` entry), as percent bonuses on a volume of 0.00
//! were before QA39b B-L1.

mod payout_support;

use payout_support::*;
use plugin_api::EventType;
use reckon::payout::book::MemoryBook;

/// A sale on a 0.00 EUR basis with no EUR→USD rate for its day is a line
/// of 0.00 with no rate and no rate date, held back nowhere; a flat lead
/// on a 0.00 basis is paid its flat amount; a sale of 100.00 on a day with
/// no rate is still held back. A rate added for the day before finalising
/// changes nothing of the line (the draft and the finalised statement
/// agree, `verify` passes), and neither that rate nor later periods adjust
/// it.
#[test]
fn a_percent_line_on_a_basis_of_nothing_needs_no_fx_rate() {
    // 10 % of a sale's EUR basis and 2.50 USD a lead, paid in USD.
    let c = config(
        r#"
payout_currency = "USD"
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
percent = "10"
"#,
    );
    let ds = vec![
        sale("Z", "p1", "2026-09-11T10:00:00Z", "0.00"),
        claim(
            "awin",
            "L",
            "p1",
            EventType::Lead,
            "2026-09-11T11:00:00Z",
            Some(("0.00", "EUR")),
        ),
        sale("A", "p1", "2026-09-12T10:00:00Z", "100.00"),
        sale("B", "p1", "2026-09-13T10:00:00Z", "50.00"),
    ];
    // No rate for 2026-09-11 (Z, L) nor 2026-09-13 (B).
    let before = fx(&[("EUR", "USD", "2026-09-12", "0.90")]);
    let tmp = tempfile::tempdir().unwrap();
    let book = MemoryBook::new();

    let draft =
        reckon::payout::generate(&inputs(&c, &ds, &before, &book, tmp.path()), "2026-09").unwrap();
    let held: Vec<&str> = draft.skipped.iter().map(|s| s.claim.as_str()).collect();
    assert_eq!(held, ["awin/B"], "{:?}", draft.skipped);
    let dir = tmp.path().join("statements/shop/2026-09");
    let lines_of = |s: &reckon::payout::model::Statement| {
        s.lines
            .iter()
            .map(|l| {
                (
                    l.claim_id.clone(),
                    l.commission.to_string(),
                    l.fx_rate.map(|r| r.to_string()),
                    l.fx_rate_date,
                )
            })
            .collect::<Vec<_>>()
    };
    let s = &statements_in(&dir)["p1"];
    let expected = vec![
        ("Z".to_owned(), "0.00".to_owned(), None, None),
        ("L".to_owned(), "2.50".to_owned(), None, None),
        (
            "A".to_owned(),
            "9.00".to_owned(),
            Some("0.90".to_owned()),
            Some(day("2026-09-12")),
        ),
    ];
    assert_eq!(lines_of(s), expected);
    let not_paid: Vec<_> = s.not_paid.iter().map(|n| n.claim_id.as_deref()).collect();
    assert_eq!(not_paid, [Some("B")], "{:?}", s.not_paid);
    let held_csv = std::fs::read_to_string(dir.join("held_back.csv")).unwrap();
    assert!(!held_csv.contains("awin/Z"), "{held_csv}");

    // The rates of every day added before finalising: Z's line is as the
    // draft had it, B is paid.
    let after = fx(&[
        ("EUR", "USD", "2026-09-11", "0.80"),
        ("EUR", "USD", "2026-09-12", "0.90"),
        ("EUR", "USD", "2026-09-13", "0.95"),
    ]);
    let nov =
        reckon::payout::finalize(&inputs(&c, &ds, &after, &book, tmp.path()), "2026-09").unwrap();
    assert!(nov.skipped.is_empty(), "{:?}", nov.skipped);
    let s = &statements_in(&dir)["p1"];
    let mut paid = expected.clone();
    paid.push((
        "B".to_owned(),
        "4.75".to_owned(),
        Some("0.95".to_owned()),
        Some(day("2026-09-13")),
    ));
    assert_eq!(lines_of(s), paid);
    let v = reckon::payout::verify(&book, tmp.path(), "shop", "2026-09").unwrap();
    assert!(v.problems.is_empty(), "{:?}", v.problems);

    // Later periods, with the rate there, adjust nothing of it.
    for period in ["2026-10", "2026-11"] {
        let r =
            reckon::payout::finalize(&inputs(&c, &ds, &after, &book, tmp.path()), period).unwrap();
        assert!(r.skipped.is_empty(), "{period}: {:?}", r.skipped);
        assert_eq!(r.adjustments, 0, "{period}: {:?}", r.warnings);
    }
    let v = reckon::payout::verify(&book, tmp.path(), "shop", "2026-09").unwrap();
    assert!(v.problems.is_empty(), "{:?}", v.problems);
}
