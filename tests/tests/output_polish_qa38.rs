//! QA38c C-L2 and C-L5: the CSV formula guard is lossless, and the
//! discrepancy report writes a tolerance as statements do.
//!
//! C-L2: a cell starting with `=`, `+`, `-`, `@`, a tab or a carriage
//! return gets a leading `'`, and from statement format 16 (and in every
//! CSV that is not a statement's) so does one already starting with `'`:
//! `=x` and `'=x` are written `'=x` and `''=x`, not both `'=x`. A
//! format-15 statement renders, restores and verifies as issued.
//!
//! C-L3: payees whose file stems are equal ignoring case (`awin:ABC`,
//! `awin:abc`) get names a case-insensitive filesystem tells apart, from
//! format 16; a format-15 period keeps the names recorded for it.
//!
//! C-L5: `tolerance_applied` read `0` in the report and `0.00` on the
//! statement line of the same decision.

mod payout_support;

use payout_support::*;
use reckon::payout::book::MemoryBook;
use reckon::payout::model::FORMAT_VERSION;
use reckon::reconcile::model::Decision;
use reckon::reconcile::report::{self, Format, Period};
use std::collections::BTreeMap;

/// Two partners the format-15 guard wrote alike: `-5` named `=x` with
/// claim `=x`, and `'-5` named `'=x` with claim `'=x`.
fn look_alikes() -> Vec<Decision> {
    let mut plain = sale("=x", "-5", "2026-10-05T10:00:00Z", "100.00");
    plain.partner_name = Some("=x".into());
    let mut quoted = sale("'=x", "'-5", "2026-10-06T10:00:00Z", "200.00");
    quoted.partner_name = Some("'=x".into());
    vec![plain, quoted]
}

/// The `line` rows' `claim_id` cells of a statement CSV.
fn claim_cells(csv: &[u8]) -> Vec<String> {
    rows_by_name(csv, "line")
        .into_iter()
        .map(|r| r["claim_id"].clone())
        .collect()
}

/// `summary.csv`'s `partner_name` cell of each row, by its `partner_id`.
fn summary_names(csv: &[u8]) -> BTreeMap<String, String> {
    let text = std::str::from_utf8(csv).unwrap();
    let mut lines = text.lines();
    let head = cells(lines.next().unwrap());
    let at = |name: &str| head.iter().position(|h| h == name).unwrap();
    lines
        .map(cells)
        .map(|row| {
            (
                row[at("partner_id")].clone(),
                row[at("partner_name")].clone(),
            )
        })
        .collect()
}

/// Taking one `'` off a cell that starts with one: how an importer undoes
/// the guard.
fn unguard(cell: &str) -> &str {
    cell.strip_prefix('\'').unwrap_or(cell)
}

#[test]
fn the_formula_guard_tells_a_quoted_text_from_the_text_it_quotes() {
    let c = config(CPS_EUR);
    let tmp = tempfile::tempdir().unwrap();
    let b = MemoryBook::new();
    let rates = no_fx();
    let oct = look_alikes();
    let r = reckon::payout::finalize(&inputs(&c, &oct, &rates, &b, tmp.path()), "2026-10").unwrap();
    let files = read_dir(&r.dir);
    let statements = statements_in(&r.dir);
    let format = statements["-5"].format_version;
    assert!(format == FORMAT_VERSION && format >= 16, "{format}");

    // Each statement's claim cell reads back as the claim id.
    assert_eq!(claim_cells(&files["awin.-5.csv"]), ["'=x"]);
    assert_eq!(claim_cells(&files["awin.%27-5.csv"]), ["''=x"]);
    for (stem, s) in [("awin.-5", "-5"), ("awin.%27-5", "'-5")] {
        let cell = &claim_cells(&files[&format!("{stem}.csv")])[0];
        assert_eq!(unguard(cell), statements[s].lines[0].claim_id);
    }
    // The summary's partner names too.
    let names = summary_names(&files["summary.csv"]);
    assert_eq!(names["awin:-5"], "'=x");
    assert_eq!(names["awin:'-5"], "''=x");

    // The same period as format 15 issued it: restored byte for byte, its
    // guard as it was (both `'=x`), and verified.
    reissue_as_format(&b, &r.dir, "2026-10", 15);
    let again =
        reckon::payout::generate(&inputs(&c, &oct, &rates, &b, tmp.path()), "2026-10").unwrap();
    assert!(again.already_finalised);
    let v15 = read_dir(&r.dir);
    assert_eq!(claim_cells(&v15["awin.%27-5.csv"]), ["'=x"]);
    assert_eq!(claim_cells(&v15["awin.-5.csv"]), ["'=x"]);
    let names = summary_names(&v15["summary.csv"]);
    assert_eq!(names["awin:-5"], "'=x");
    assert_eq!(names["awin:'-5"], "'=x");
    let v = reckon::payout::verify(&b, tmp.path(), "shop", "2026-10").unwrap();
    assert!(v.problems.is_empty(), "{:?}", v.problems);
}

/// The discrepancy report's summary and listing: the two partners'
/// `partner_id` and `partner_name` cells differ, and read back exactly.
#[test]
fn the_discrepancy_report_tells_the_look_alike_partners_apart() {
    let period: Period = "2026-10".parse().unwrap();
    let oct = look_alikes();
    let r = report::build_with("shop", "EUR", period, chrono_tz::UTC, &oct, true);
    let csv = report::render(&r, Format::Csv);
    let mut tables = csv.split("\n\n");
    for table in [tables.next().unwrap(), tables.next().unwrap()] {
        let mut lines = table.lines();
        let head = cells(lines.next().unwrap());
        let at = |name: &str| head.iter().position(|h| h == name).unwrap();
        let rows: Vec<Vec<String>> = lines.map(cells).collect();
        let ids: Vec<&str> = rows.iter().map(|r| r[at("partner_id")].as_str()).collect();
        // In partner and in claim order, `'` before `-` and `=`.
        assert_eq!(ids, ["''-5", "'-5"], "{table}");
        for (row, d) in rows.iter().zip(oct.iter().rev()) {
            assert_eq!(unguard(&row[at("partner_id")]), d.partner_id);
        }
        if let Some(name) = head.iter().position(|h| h == "partner_name") {
            let names: Vec<&str> = rows.iter().map(|r| r[name].as_str()).collect();
            assert_eq!(names, ["''=x", "'=x"], "{table}");
        }
        if let Some(claim) = head.iter().position(|h| h == "claim_id") {
            let claims: Vec<&str> = rows.iter().map(|r| r[claim].as_str()).collect();
            assert_eq!(claims, ["''=x", "'=x"], "{table}");
        }
    }
}

/// C-L5: a decision compared with a tolerance of 0 EUR: `0.00` on the
/// statement line and in the report's listing and JSON.
#[test]
fn the_report_writes_a_tolerance_as_the_statement_does() {
    let c = config(CPS_EUR);
    let tmp = tempfile::tempdir().unwrap();
    let b = MemoryBook::new();
    let rates = no_fx();
    let mut sale = sale("C1", "p1", "2026-10-05T10:00:00Z", "100.00");
    sale.inputs.tolerance_applied = Some(d("0"));
    let oct = vec![sale];
    let r = reckon::payout::generate(&inputs(&c, &oct, &rates, &b, tmp.path()), "2026-10").unwrap();
    let files = read_dir(&r.dir);
    let line = &rows_by_name(&files["awin.p1.csv"], "line")[0];
    assert_eq!(line["tolerance_applied"], "0.00");

    let period: Period = "2026-10".parse().unwrap();
    let report = report::build_with("shop", "EUR", period, chrono_tz::UTC, &oct, true);
    let csv = report::render(&report, Format::Csv);
    let listing = csv.split("\n\n").nth(1).unwrap();
    let mut lines = listing.lines();
    let head = cells(lines.next().unwrap());
    let row = cells(lines.next().unwrap());
    let at = head.iter().position(|h| h == "tolerance_applied").unwrap();
    assert_eq!(row[at], line["tolerance_applied"]);
    let json: serde_json::Value =
        serde_json::from_str(&report::render(&report, Format::Json)).unwrap();
    let inputs = &json["discrepancies"][0]["inputs"];
    assert_eq!(inputs["tolerance_applied"], "0.00", "{inputs}");
    assert_eq!(inputs["amount_tolerance_abs"], "0.00", "{inputs}");
}

/// C-L3: `awin:ABC` keeps `awin.ABC.*`; `awin:abc`, the same name ignoring
/// case, gets a hash of its payee key. Verify, show and restore find them;
/// the period as format 15 issued it keeps the names it was recorded with.
#[test]
fn payees_equal_ignoring_case_get_file_names_a_case_insensitive_share_tells_apart() {
    let c = config(CPS_EUR);
    let tmp = tempfile::tempdir().unwrap();
    let b = MemoryBook::new();
    let rates = no_fx();
    let oct = vec![
        sale("C1", "ABC", "2026-10-05T10:00:00Z", "100.00"),
        sale("C2", "abc", "2026-10-06T10:00:00Z", "200.00"),
        sale("C3", "abd", "2026-10-07T10:00:00Z", "300.00"),
    ];
    let r = reckon::payout::finalize(&inputs(&c, &oct, &rates, &b, tmp.path()), "2026-10").unwrap();
    let hash = &reckon::payout::render::sha256_hex(b"awin:abc")[..16];
    let names: Vec<String> = read_dir(&r.dir).into_keys().collect();
    let mut want: Vec<String> = ["awin.ABC", &format!("awin.abc~{hash}"), "awin.abd"]
        .iter()
        .flat_map(|stem| ["csv", "html", "json"].map(|ext| format!("{stem}.{ext}")))
        .chain(["summary.csv".to_string()])
        .collect();
    want.sort();
    assert_eq!(names, want);
    let folded: std::collections::BTreeSet<String> =
        names.iter().map(|n| n.to_ascii_lowercase()).collect();
    assert_eq!(folded.len(), names.len(), "{names:?}");
    let statements = statements_in(&r.dir);
    assert_eq!(statements["abc"].lines[0].claim_id, "C2");

    let v = reckon::payout::verify(&b, tmp.path(), "shop", "2026-10").unwrap();
    assert!(v.problems.is_empty(), "{:?}", v.problems);
    let shown = reckon::payout::lifecycle::show(&b, tmp.path(), "shop", "2026-10").unwrap();
    assert_eq!(shown.rows.len(), 3);
    // Lost files are restored under the same names.
    std::fs::remove_dir_all(&r.dir).unwrap();
    let again =
        reckon::payout::generate(&inputs(&c, &oct, &rates, &b, tmp.path()), "2026-10").unwrap();
    assert!(again.already_finalised);
    assert_eq!(read_dir(&r.dir).into_keys().collect::<Vec<_>>(), want);

    // As format 15 issued it: the names it was recorded with.
    reissue_as_format(&b, &r.dir, "2026-10", 15);
    let again =
        reckon::payout::generate(&inputs(&c, &oct, &rates, &b, tmp.path()), "2026-10").unwrap();
    assert!(again.already_finalised);
    let v15 = read_dir(&r.dir);
    assert!(v15.contains_key("awin.ABC.json") && v15.contains_key("awin.abc.json"));
    let v = reckon::payout::verify(&b, tmp.path(), "shop", "2026-10").unwrap();
    assert!(v.problems.is_empty(), "{:?}", v.problems);
}
