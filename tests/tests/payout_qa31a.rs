//! Regressions of the QA31-A audit of commission rules and payout
//! statements: later drafts after a finalise (M1), overrides that never
//! apply (M2, in `config check`), the name of a payee whose only line is a
//! take-back (L2), the take-back reason of a claim only carried (L3), and
//! a statement closed early (L4).

mod payout_support;

use payout_support::*;
use reckon::payout::book::{self, MemoryBook, StatementBook as _};
use reckon::payout::model::{Statement, Status};
use reckon::payout::render;
use std::path::Path;

const CPS: &str = r#"
payout_currency = "EUR"
[[rules]]
id = "cps"
effective_from = "2026-01-01"
kind = "percent"
percent = "10"
"#;

fn statements_in(dir: &Path) -> Vec<Statement> {
    read_dir(dir)
        .into_iter()
        .filter(|(n, _)| n.ends_with(".json"))
        .map(|(_, b)| render::read_json_file(&b).unwrap().0)
        .collect()
}

fn claims_listed(dir: &Path) -> Vec<String> {
    statements_in(dir)
        .iter()
        .flat_map(|s| s.lines.iter().map(|l| l.claim_id.clone()))
        .collect()
}

/// QA31-A M1: a November draft generated before October was finalised
/// kept listing claim `a`, which October then paid, and `show`/`verify`
/// said it was fine. Finalising October regenerates it (and says so); a
/// streamed finalise, which cannot, retires it; a draft left out of date
/// anyway is called so by `verify` and `show`.
#[test]
fn finalising_a_period_brings_the_drafts_of_later_periods_up_to_date() {
    let c = config(CPS);
    let tmp = tempfile::tempdir().unwrap();
    let book = MemoryBook::new();
    let fxr = no_fx();
    let ds = vec![
        sale("a", "z", "2026-10-05T10:00:00Z", "100.00"),
        sale("b", "z", "2026-11-03T10:00:00Z", "50.00"),
    ];
    let inp = inputs(&c, &ds, &fxr, &book, tmp.path());
    let nov = reckon::payout::generate(&inp, "2026-11").unwrap();
    assert_eq!(claims_listed(&nov.dir), ["a", "b"]);
    let oct = reckon::payout::finalize(&inp, "2026-10").unwrap();
    assert_eq!(claims_listed(&oct.dir), ["a"]);
    assert!(
        oct.warnings.iter().any(|w| w.starts_with(
            "regenerated the draft of period 2026-11 (now version 2: 1 statement(s), total payable 5.00 EUR): its version 1 was generated before 2026-10 was finalised"
        )),
        "{:?}",
        oct.warnings
    );
    // November no longer offers `a`, and its files are the recorded ones.
    assert_eq!(claims_listed(&nov.dir), ["b"]);
    let v = reckon::payout::verify(&book, tmp.path(), "shop", "2026-11").unwrap();
    assert!(v.problems.is_empty(), "{:?}", v.problems);
    assert_eq!(v.status, Status::Draft);
    let shown = reckon::payout::show(&book, tmp.path(), "shop", "2026-11").unwrap();
    assert_eq!(shown.record.version, 2);
    assert_eq!(shown.stale, None);
    assert_eq!(shown.rows[0].total_payable, "5.00");

    // A draft left as it was (a store written before finalise refreshed
    // drafts: here the November draft's record says it was generated
    // before October was finalised) is out of date for `verify` and
    // `show`.
    let record = |period: &str| {
        let key = book::key(&["period", "shop", period]);
        let rec: book::PeriodRecord = book::decode(&key, book.get(&key).unwrap().unwrap()).unwrap();
        (key, rec)
    };
    let (_, october) = record("2026-10");
    let (key, mut rec) = record("2026-11");
    rec.recorded_at = october
        .recorded_at
        .map(|t| t - chrono::Duration::seconds(1));
    book.apply(vec![(key, Some(book::encode(&rec)))]).unwrap();
    let v = reckon::payout::verify(&book, tmp.path(), "shop", "2026-11").unwrap();
    assert_eq!(
        v.problems,
        ["draft version 2 of 2026-11 is out of date: it was generated before 2026-10 was finalised, which may have paid claims it lists; run `reckon statements generate --program shop --period 2026-11` for a draft from the current data"]
    );
    let shown = reckon::payout::show(&book, tmp.path(), "shop", "2026-11").unwrap();
    assert!(shown.stale.is_some());
    // Regenerated, it is up to date again.
    reckon::payout::generate(&inp, "2026-11").unwrap();
    let v = reckon::payout::verify(&book, tmp.path(), "shop", "2026-11").unwrap();
    assert!(v.problems.is_empty(), "{:?}", v.problems);

    // A streamed finalise reads its partitions once: the December draft is
    // retired, named in a warning.
    let dec = reckon::payout::generate(&inp, "2026-12").unwrap();
    assert_eq!(claims_listed(&dec.dir), ["b"]);
    let mut parts = std::iter::once(Ok(("awin:z".to_string(), ds.clone())));
    let nov = reckon::payout::finalize_partitioned(&inp, "2026-11", Some("EUR".into()), &mut parts)
        .unwrap();
    assert_eq!(claims_listed(&nov.dir), ["b"]);
    assert!(
        nov.warnings.iter().any(|w| w.starts_with(
            "retired the draft of period 2026-12: it was generated before 2026-11 was finalised and could list claims 2026-11 has now paid"
        )),
        "{:?}",
        nov.warnings
    );
    assert!(!dec.dir.exists());
    assert!(tmp
        .path()
        .join("statements/shop/set-aside/2026-12/summary.csv")
        .exists());
}
