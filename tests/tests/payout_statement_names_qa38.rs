//! QA38c C-M1: the per-payee statement CSV names the statement it is of.
//!
//! Up to format 16 `<network>.<partner>.csv` had no statement id, payee,
//! status or version: a draft's CSV was byte for byte the finalised one,
//! and a CSV copied out of its directory named neither its bill nor its
//! vendor (the file name is percent-encoded, and cut and hashed for long
//! ids). From format 17 every row ends with `statement_id`, `payee`,
//! `status` and `version`, as `summary.csv` has them. A format-16
//! statement renders, restores and verifies as issued.

mod payout_support;

use payout_support::*;
use reckon::payout::book::MemoryBook;
use reckon::payout::model::{Statement, FORMAT_VERSION};
use reckon::payout::render;
use std::collections::BTreeMap;

/// The columns format 17 adds at the end of every row.
const NAMES: [&str; 4] = ["statement_id", "payee", "status", "version"];

/// The cells of a format-17 statement CSV: the 44 of format 16 and
/// [`NAMES`].
const WIDTH: usize = 48;

/// `summary.csv`'s `[statement_id, partner_id, status, version]` cells,
/// by `partner_id`.
fn summary_names(csv: &[u8]) -> BTreeMap<String, Vec<String>> {
    let mut rows = records(csv).into_iter();
    let head = rows.next().unwrap();
    let at = |name: &str| head.iter().position(|h| h == name).unwrap();
    rows.map(|row| {
        let cells: Vec<String> = ["statement_id", "partner_id", "status", "version"]
            .iter()
            .map(|c| row[at(c)].clone())
            .collect();
        (row[at("partner_id")].clone(), cells)
    })
    .collect()
}

/// The per-payee CSVs of a period directory, by file name.
fn statement_csvs(files: &BTreeMap<String, Vec<u8>>) -> BTreeMap<String, Vec<u8>> {
    files
        .iter()
        .filter(|(name, _)| name.ends_with(".csv") && *name != "summary.csv")
        .map(|(name, bytes)| (name.clone(), bytes.clone()))
        .collect()
}

/// Checks every per-payee CSV of `files`: a header and rows of
/// [`WIDTH`] cells, each row ending with its payee's `summary.csv` cells
/// and the statement's own id, payee, status and version; every payee of
/// the summary has one.
fn assert_rows_name_their_statement(files: &BTreeMap<String, Vec<u8>>, status: &str) {
    let summary = summary_names(&files["summary.csv"]);
    let mut seen = Vec::new();
    for (name, csv) in statement_csvs(files) {
        let rows = records(&csv);
        assert_eq!(rows[0].len(), WIDTH, "{name}: {:?}", rows[0]);
        assert_eq!(rows[0][WIDTH - 4..], NAMES, "{name}");
        let payee = rows[1][WIDTH - 3].clone();
        let want = &summary[&payee];
        assert_eq!(want[2], status, "{name}");
        for row in &rows[1..] {
            assert_eq!(row.len(), WIDTH, "{name}: {row:?}");
            assert_eq!(&row[WIDTH - 4..], want, "{name}: {row:?}");
        }
        let json = &files[&name.replace(".csv", ".json")];
        let (s, _, _) = render::read_json_file(json).unwrap();
        let own = [
            s.statement_id.clone(),
            s.payee(),
            s.status.as_str().to_owned(),
            s.version.to_string(),
        ];
        assert_eq!(want, &own, "{name}");
        seen.push(payee);
    }
    seen.sort();
    assert_eq!(seen, summary.into_keys().collect::<Vec<_>>());
}

/// A draft's CSV and the finalised one differ exactly in `status` and
/// `version` (the draft was version 1, the finalize is version 2); every
/// row of both names its statement as `summary.csv` does. `verify` passes
/// and `generate` restores the finalised files byte for byte.
#[test]
fn a_draft_csv_and_the_finalised_csv_differ_in_status_and_version() {
    let c = config(CPS_EUR);
    let tmp = tempfile::tempdir().unwrap();
    let b = MemoryBook::new();
    let rates = no_fx();
    let oct = vec![
        sale("A", "p1", "2026-10-05T10:00:00Z", "200.00"),
        sale("B", "p1", "2026-10-06T10:00:00Z", "100.00"),
        // A `not_paid` row.
        refunded(sale("R", "p1", "2026-10-07T10:00:00Z", "80.00")),
        // A payee whose id must be quoted in a CSV.
        sale("C", "p,2", "2026-10-08T10:00:00Z", "50.00"),
    ];
    let draft =
        reckon::payout::generate(&inputs(&c, &oct, &rates, &b, tmp.path()), "2026-10").unwrap();
    assert_eq!(draft.version, 1);
    let drafts = read_dir(&draft.dir);
    assert_eq!(statement_csvs(&drafts).len(), 2);
    assert_rows_name_their_statement(&drafts, "draft");
    let not_paid = rows_by_name(&drafts["awin.p1.csv"], "not_paid");
    assert_eq!(not_paid[0]["payee"], "awin:p1");
    assert_eq!(not_paid[0]["statement_id"], "shop/2026-10/awin:p1");

    let r = reckon::payout::finalize(&inputs(&c, &oct, &rates, &b, tmp.path()), "2026-10").unwrap();
    let finals = read_dir(&r.dir);
    assert_rows_name_their_statement(&finals, "finalised");
    for (name, final_csv) in statement_csvs(&finals) {
        let draft_csv = &drafts[&name];
        assert_ne!(draft_csv, &final_csv, "{name}");
        let (was, now) = (records(draft_csv), records(&final_csv));
        assert_eq!(was.len(), now.len(), "{name}");
        assert_eq!(was[0], now[0], "{name}");
        for (was, now) in was[1..].iter().zip(&now[1..]) {
            assert_eq!(was[..WIDTH - 2], now[..WIDTH - 2], "{name}");
            assert_eq!(was[WIDTH - 2..], ["draft", "1"], "{name}");
            assert_eq!(now[WIDTH - 2..], ["finalised", "2"], "{name}");
        }
    }

    let v = reckon::payout::verify(&b, tmp.path(), "shop", "2026-10").unwrap();
    assert!(v.problems.is_empty(), "{:?}", v.problems);
    std::fs::remove_dir_all(&r.dir).unwrap();
    let again =
        reckon::payout::generate(&inputs(&c, &oct, &rates, &b, tmp.path()), "2026-10").unwrap();
    assert!(again.already_finalised);
    assert_eq!(read_dir(&r.dir), finals);
}

/// The statement of `payout_lifecycle::statement_outputs_snapshot`
/// (partner `awin:p<1>`, 2026-11: lines, adjustments, a bonus adjustment
/// and a bonus) as format 16 issued it: its content hash, and the SHA-256
/// of its CSV and HTML as that snapshot recorded them before format 17.
const FORMAT_16_CONTENT_HASH: &str =
    "f08cb08a010b35e51195ec37311548e943fc6bc75390bf20b881a3195b0939db";
const FORMAT_16_CSV_SHA256: &str =
    "e7c3974619fe82cf28a49ac21085e8587b37b3d01cbe3a291b3e329b95bd13f1";
const FORMAT_16_HTML_SHA256: &str =
    "2e79dfd26c3af5e02513f11a080472110b450f65c9af89ac9a211cedeb79295b";

/// A format-16 statement renders as issued (44 cells, no names), is
/// restored byte for byte by `generate` of its finalised period and
/// verifies; the format-17 statement's JSON and HTML are its own but for
/// `format_version`, and its CSV is its own with the four cells added.
#[test]
fn a_format_16_statement_renders_restores_and_verifies_as_issued() {
    let c = config(SNAPSHOT_RULES);
    let tmp = tempfile::tempdir().unwrap();
    let b = MemoryBook::new();
    let (oct, nov, rates) = snapshot_months();
    reckon::payout::finalize(&inputs(&c, &oct, &rates, &b, tmp.path()), "2026-10").unwrap();
    let r = reckon::payout::finalize(&inputs(&c, &nov, &rates, &b, tmp.path()), "2026-11").unwrap();
    let today: Statement = statements_in(&r.dir).remove("p<1>").unwrap();
    assert_eq!(today.format_version, FORMAT_VERSION);
    assert!(today.format_version >= 17, "{}", today.format_version);
    let issued = Statement {
        format_version: 16,
        ..today.clone()
    };
    // The statement format 16 issued, rendered as it was.
    let canonical = render::canonical_json(&issued).unwrap();
    assert_eq!(render::sha256_hex(&canonical), FORMAT_16_CONTENT_HASH);
    let csv16 = render::csv_file(&issued).unwrap();
    assert_eq!(render::sha256_hex(&csv16), FORMAT_16_CSV_SHA256);
    let rows16 = records(&csv16);
    assert!(rows16.iter().all(|r| r.len() == 44), "{rows16:?}");
    assert_eq!(rows16[0].last().unwrap(), "lock_at");
    let html16 = render::html_file(&issued, FORMAT_16_CONTENT_HASH);
    assert_eq!(render::sha256_hex(html16.as_bytes()), FORMAT_16_HTML_SHA256);

    // Format 17: JSON and HTML but for `format_version` (and so the
    // content hash the HTML prints); the CSV with the four cells added.
    let json17 = String::from_utf8(render::canonical_json(&today).unwrap()).unwrap();
    assert_eq!(
        json17.replacen("\"format_version\":17", "\"format_version\":16", 1),
        String::from_utf8(canonical).unwrap()
    );
    assert_eq!(
        render::html_file(&today, FORMAT_16_CONTENT_HASH),
        html16,
        "the HTML of format 17 is format 16's"
    );
    let rows17 = records(&render::csv_file(&today).unwrap());
    let names = [
        "shop/2026-11/awin:p<1>",
        "awin:p<1>",
        "finalised",
        &today.version.to_string(),
    ];
    assert_eq!(rows17.len(), rows16.len());
    assert_eq!(rows17[0][44..], NAMES);
    for (r17, r16) in rows17.iter().zip(&rows16).skip(1) {
        assert_eq!(r17[..44], r16[..], "{r17:?}");
        assert_eq!(r17[44..], names, "{r17:?}");
    }

    // The period recorded as format 16 issued it: restored byte for byte
    // and verified.
    reissue_as_format(&b, &r.dir, "2026-11", 16);
    let again =
        reckon::payout::generate(&inputs(&c, &nov, &rates, &b, tmp.path()), "2026-11").unwrap();
    assert!(again.already_finalised);
    let stem = render::payee_stem("awin:p<1>");
    let files = read_dir(&r.dir);
    assert_eq!(
        render::sha256_hex(&files[&format!("{stem}.csv")]),
        FORMAT_16_CSV_SHA256
    );
    assert_eq!(
        render::sha256_hex(&files[&format!("{stem}.html")]),
        FORMAT_16_HTML_SHA256
    );
    let (restored, claimed, actual) =
        render::read_json_file(&files[&format!("{stem}.json")]).unwrap();
    assert_eq!(
        (claimed.as_str(), actual.as_str()),
        (FORMAT_16_CONTENT_HASH, FORMAT_16_CONTENT_HASH)
    );
    assert_eq!(restored, issued);
    let v = reckon::payout::verify(&b, tmp.path(), "shop", "2026-11").unwrap();
    assert!(v.problems.is_empty(), "{:?}", v.problems);
}
