//! A manual adjustment's `refers_to` (QA38c C-M2, C-L1): the config
//! refuses a reference to another program, to a period after the
//! adjustment's or to its own; `generate` and `finalize` refuse one that
//! names a statement or line the store never issued; and the statement
//! CSV gives several references one per line of their cell (a partner id
//! may hold a space), from format 15, while a format-14 statement renders
//! as issued.

mod payout_support;

use payout_support::*;
use reckon::payout::book::MemoryBook;
use reckon::payout::config::CommissionConfig;
use reckon::reconcile::model::Decision;

/// Program `shop`: claims of `awin`, 10 % of EUR bases paid in EUR,
/// monthly, then `manual` (`[[programs.commission.manual_adjustments]]`).
fn config_text(manual: &str) -> String {
    shop_config("", manual)
}

/// A manual adjustment of 5.00 to `awin:p1` on `period`, referring to
/// `refs`.
fn manual(id: &str, period: &str, refs: &[&str]) -> String {
    format!(
        "\n[[programs.commission.manual_adjustments]]\nid = {id:?}\npartner = \"awin:p1\"\nperiod = {period:?}\namount = \"5.00\"\nreason = \"paid at 10 % instead of 11 %\"\nrefers_to = {refs:?}\n"
    )
}

/// The config parsed as `reckon config check` parses it, and the
/// program's commission.
fn parsed(manual: &str) -> Result<CommissionConfig, String> {
    let cfg =
        reckon::config::parse(&config_text(manual), "reckon.toml").map_err(|e| e.to_string())?;
    Ok(cfg.programs[0]
        .commission
        .clone()
        .unwrap()
        .with_default_timezone(cfg.daemon.timezone.0))
}

/// October: one sale each of `p1` and of `+44 20` (a partner id with a
/// space, as a postback may send it).
fn october() -> Vec<Decision> {
    vec![
        sale("C1", "p1", "2026-10-05T10:00:00Z", "500.00"),
        sale("C2", "+44 20", "2026-10-06T10:00:00Z", "600.00"),
    ]
}

/// The `refers_to` cell of the CSV's one `manual_adjustment` row.
fn manual_refers_to(csv: &[u8]) -> String {
    let rows = records(csv);
    let col = rows[0].iter().position(|h| h == "refers_to").unwrap();
    let manual: Vec<_> = rows
        .iter()
        .filter(|r| r[0] == "manual_adjustment")
        .collect();
    assert_eq!(manual.len(), 1, "{rows:?}");
    assert_eq!(manual[0].len(), rows[0].len());
    manual[0][col].clone()
}

/// C-M2: what the config alone tells is a config error at the
/// adjustment's `refers_to`, naming its id and the reference.
#[test]
fn a_reference_to_another_program_or_a_later_period_is_a_config_error() {
    let e = parsed(
        &[
            manual("other", "2026-12", &["zz/2026-10/awin:p1#1"]),
            manual("future", "2026-12", &["shop/2031-01/awin:p1#1"]),
            manual("own", "2026-12", &["shop/2026-12/awin:p1#1"]),
            manual("fine", "2026-12", &["shop/2026-10/awin:+44 20#1"]),
        ]
        .concat(),
    )
    .unwrap_err();
    let lines: Vec<&str> = e.lines().collect();
    let expect = [
        (
            "manual_adjustments[0].refers_to",
            "refers_to[0] \"zz/2026-10/awin:p1#1\" names program `zz`, not `shop`",
        ),
        (
            "manual_adjustments[1].refers_to",
            "refers_to[0] \"shop/2031-01/awin:p1#1\" names period 2031-01, after the adjustment's period 2026-12",
        ),
        (
            "manual_adjustments[2].refers_to",
            "refers_to[0] \"shop/2026-12/awin:p1#1\" names period 2026-12, the adjustment's own period",
        ),
    ];
    assert_eq!(lines.len(), expect.len(), "{e}");
    for (line, (key, message)) in lines.iter().zip(expect) {
        assert!(
            line.contains(&format!("`programs[0].commission.{key}`")),
            "{key}: {line}"
        );
        assert!(line.contains(message), "{message}: {line}");
    }
}

/// C-M2: a reference into a finalised period must name one of its
/// statements and a line it has: `generate` and `finalize` refuse one that
/// does not, naming the adjustment and the reference, and write nothing.
/// A reference into a period this store never finalised and never will
/// (another period kind, before a finalised period, before the period
/// being finalised) cannot be checked (a statement issued before Reckon
/// is named the same way): a warning. One into a period that may still be
/// finalised first passes a draft run silently.
#[test]
fn generate_and_finalize_refuse_a_reference_to_a_statement_or_line_never_issued() {
    let tmp = tempfile::tempdir().unwrap();
    let b = MemoryBook::new();
    let rates = no_fx();
    let oct = october();
    let c = parsed("").unwrap();
    reckon::payout::finalize(&inputs(&c, &oct, &rates, &b, tmp.path()), "2026-10").unwrap();

    let refused = [
        (
            "shop/2026-10/awin:nobody#1",
            "names no finalised statement: period 2026-10 was finalised without a statement of `awin:nobody` (2 statement(s); `reckon statements show --program shop --period 2026-10` lists them); correct the reference",
        ),
        (
            "shop/2026-10/awin:p1#99",
            "names no line: the finalised statement shop/2026-10/awin:p1 has lines 1 to 1; correct the line number",
        ),
        (
            "shop/2026-10/awin:+44 20#2",
            "names no line: the finalised statement shop/2026-10/awin:+44 20 has lines 1 to 1; correct the line number",
        ),
    ];
    for (reference, why) in refused {
        let c = parsed(&manual(
            "fix",
            "2026-11",
            &["shop/2026-10/awin:+44 20#1", reference],
        ))
        .unwrap();
        let want = format!("[programs.commission] of program `shop`, manual_adjustments[0].refers_to (id `fix`): refers_to[1] {reference:?} {why}");
        let e = reckon::payout::generate(&inputs(&c, &oct, &rates, &b, tmp.path()), "2026-11")
            .unwrap_err()
            .to_string();
        assert_eq!(e, want);
        let e = reckon::payout::finalize(&inputs(&c, &oct, &rates, &b, tmp.path()), "2026-11")
            .unwrap_err()
            .to_string();
        assert_eq!(e, want);
        assert!(
            !tmp.path().join("statements/shop/2026-11").exists(),
            "{reference}"
        );
    }

    // Lines and whole statements that 2026-10 issued pass; periods never
    // finalised are warned about.
    let c = parsed(&manual(
        "fix",
        "2026-11",
        &[
            "shop/2026-10/awin:+44 20#1",
            "shop/2026-10/awin:p1",
            "shop/2026-W40/awin:p1#1",
            "shop/2026-09/awin:p1#1",
        ],
    ))
    .unwrap();
    let r = reckon::payout::generate(&inputs(&c, &oct, &rates, &b, tmp.path()), "2026-11").unwrap();
    assert_eq!(r.manual_adjustments, 1);
    let warned: Vec<&String> = (r.warnings.iter())
        .filter(|w| w.contains("refers_to["))
        .collect();
    assert_eq!(
        warned,
        [
            "manual adjustment `fix` of program `shop` (5.00 to `awin:p1` on 2026-11): refers_to[2] \"shop/2026-W40/awin:p1#1\" names period 2026-W40, which this store never finalised and never will (program `shop` has monthly periods), so the reference cannot be checked and is printed as written; correct it if it should name a statement Reckon issued",
            "manual adjustment `fix` of program `shop` (5.00 to `awin:p1` on 2026-11): refers_to[3] \"shop/2026-09/awin:p1#1\" names period 2026-09, which this store never finalised and never will (it starts before 2026-10, which is finalised), so the reference cannot be checked and is printed as written; correct it if it should name a statement Reckon issued",
        ]
    );

    // 2026-12 refers to 2026-11, a draft: a draft run says nothing (it
    // may be finalised first); finalising 2026-12 leaves it never
    // finalised, and says so.
    let c = parsed(&manual("next", "2026-12", &["shop/2026-11/awin:p1#1"])).unwrap();
    let r = reckon::payout::generate(&inputs(&c, &oct, &rates, &b, tmp.path()), "2026-12").unwrap();
    assert_eq!(r.manual_adjustments, 1);
    assert!(
        !r.warnings.iter().any(|w| w.contains("refers_to[")),
        "{:?}",
        r.warnings
    );
    let r = reckon::payout::finalize(&inputs(&c, &oct, &rates, &b, tmp.path()), "2026-12").unwrap();
    assert!(
        r.warnings.iter().any(|w| w.contains("refers_to[0] \"shop/2026-11/awin:p1#1\" names period 2026-11, which this store never finalised and never will (it starts before 2026-12, being finalised now)")),
        "{:?}",
        r.warnings
    );
}

/// C-L1: several references are one per line of their CSV cell (a
/// partner id may hold a space, never a line break), one per line in the
/// HTML, an array in the JSON; the statement is format 15. A format-14
/// statement (space-separated) renders, restores and verifies as issued.
#[test]
fn several_references_are_one_per_line_of_their_csv_cell() {
    let tmp = tempfile::tempdir().unwrap();
    let b = MemoryBook::new();
    let rates = no_fx();
    let oct = october();
    let refs = ["shop/2026-10/awin:+44 20#1", "shop/2026-10/awin:p1#1"];
    let c = parsed(&manual("two", "2026-11", &refs)).unwrap();
    reckon::payout::finalize(&inputs(&c, &oct, &rates, &b, tmp.path()), "2026-10").unwrap();
    let r = reckon::payout::finalize(&inputs(&c, &oct, &rates, &b, tmp.path()), "2026-11").unwrap();
    let files = read_dir(&r.dir);
    let s = statements_in(&r.dir).remove("p1").unwrap();
    assert!(s.format_version >= 15, "{}", s.format_version);
    assert_eq!(s.manual_adjustments[0].refers_to, refs);
    assert_eq!(
        manual_refers_to(&files["awin.p1.csv"]),
        "shop/2026-10/awin:+44 20#1\nshop/2026-10/awin:p1#1"
    );
    let html = String::from_utf8(files["awin.p1.html"].clone()).unwrap();
    assert!(
        html.contains("<td>shop/2026-10/awin:+44 20 line 1<br>shop/2026-10/awin:p1 line 1</td>"),
        "{html}"
    );

    // The same statement as format 14 issued it: its references joined by
    // a space, restored byte for byte and verified.
    reissue_as_format(&b, &r.dir, "2026-11", 14);
    let again =
        reckon::payout::generate(&inputs(&c, &oct, &rates, &b, tmp.path()), "2026-11").unwrap();
    assert!(again.already_finalised);
    let v14 = read_dir(&r.dir);
    assert_eq!(
        manual_refers_to(&v14["awin.p1.csv"]),
        "shop/2026-10/awin:+44 20#1 shop/2026-10/awin:p1#1"
    );
    let v = reckon::payout::verify(&b, tmp.path(), "shop", "2026-11").unwrap();
    assert!(v.problems.is_empty(), "{:?}", v.problems);
}
