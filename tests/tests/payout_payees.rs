//! A payee is one partner of one network: the same partner id on two
//! networks is two statements, each with its own volume, rules, caps,
//! minimum and balance. And a store written before payees had a network
//! (statement format 1, balances under the bare partner id) carries on.

mod payout_support;

use payout_support::*;
use plugin_api::EventType;
use reckon::payout::book::{self, Balance, MemoryBook, StatementBook};
use reckon::payout::model::{PaidClaim, Statement, Status};
use reckon::payout::{lifecycle, render};

const RULES: &str = r#"
payout_currency = "EUR"
minimum_payout = "25.00"
[[rules]]
id = "vip"
effective_from = "2026-01-01"
partners = ["awin:201"]
kind = "percent"
percent = "20"
[[rules]]
id = "cps"
effective_from = "2026-01-01"
kind = "percent"
percent = "10"
[[bonuses]]
id = "all-201"
effective_from = "2026-01-01"
partners = ["201"]
threshold_volume = "100"
amount = "1.00"
"#;

fn sale_on(
    net: &str,
    id: &str,
    partner: &str,
    occurred: &str,
    amount: &str,
) -> reckon::reconcile::model::Decision {
    claim(
        net,
        id,
        partner,
        EventType::Sale,
        occurred,
        Some((amount, "EUR")),
    )
}

fn read(dir: &std::path::Path, stem: &str) -> Statement {
    let bytes = std::fs::read(dir.join(format!("{stem}.json"))).unwrap();
    render::read_json_file(&bytes).unwrap().0
}

#[test]
fn the_same_partner_id_on_two_networks_is_two_payees() {
    let c = config(RULES);
    let ds = vec![
        // As the network sent it: "200" (stated as 200.00).
        sale_on("awin", "A1", "201", "2026-10-03T10:00:00Z", "200"),
        sale_on("cj", "B1", "201", "2026-10-04T10:00:00Z", "150.00"),
        sale_on("cj", "B2", "201", "2026-10-05T10:00:00Z", "50.00"),
    ];
    let tmp = tempfile::tempdir().unwrap();
    let book = MemoryBook::new();
    let fxr = no_fx();
    let report =
        reckon::payout::finalize(&inputs(&c, &ds, &fxr, &book, tmp.path()), "2026-10").unwrap();
    assert_eq!(report.partners, 2);
    let files = read_dir(&report.dir);
    assert!(
        files.contains_key("awin.201.json") && files.contains_key("cj.201.json"),
        "{:?}",
        files.keys()
    );

    // awin:201: the qualified `vip` rule, 200.00 × 20 % = 40.00, bonus.
    let awin = read(&report.dir, "awin.201");
    assert_eq!(
        (awin.network.as_deref(), awin.partner_id.as_str()),
        (Some("awin"), "201")
    );
    assert_eq!(awin.statement_id, "shop/2026-10/awin:201");
    assert_eq!(awin.lines.len(), 1);
    assert_eq!(awin.lines[0].rule_id, "vip");
    let basis = awin.lines[0].basis.as_ref().unwrap();
    assert_eq!(basis.amount.to_string(), "200.00");
    assert_eq!(awin.volume.as_ref().unwrap().amount.to_string(), "200.00");
    assert_eq!(awin.totals.lines.to_string(), "40.00");
    assert_eq!(
        awin.bonuses.len(),
        1,
        "a bare id in `partners` names the id on every network"
    );
    assert_eq!(awin.totals.total_payable.to_string(), "41.00");

    // cj:201: its own volume (200.00), `cps` at 10 % = 20.00, bonus 1.00:
    // 21.00 < the 25.00 minimum, carried, whatever awin:201 earned.
    let cj = read(&report.dir, "cj.201");
    assert!(cj
        .lines
        .iter()
        .all(|l| l.rule_id == "cps" && l.network == "cj"));
    assert_eq!(cj.volume.as_ref().unwrap().amount.to_string(), "200.00");
    assert_eq!(cj.totals.subtotal.to_string(), "21.00");
    assert_eq!(cj.totals.total_payable.to_string(), "0.00");
    assert_eq!(cj.totals.carried_out.to_string(), "21.00");

    let summary = String::from_utf8(files["summary.csv"].clone()).unwrap();
    assert!(
        summary.contains("\nawin:201,") && summary.contains("\ncj:201,"),
        "{summary}"
    );

    // The balance is cj:201's alone: next month it is carried into cj:201.
    let more = vec![sale_on("cj", "B3", "201", "2026-11-02T10:00:00Z", "100.00")];
    let all: Vec<_> = ds.iter().cloned().chain(more).collect();
    let nov =
        reckon::payout::finalize(&inputs(&c, &all, &fxr, &book, tmp.path()), "2026-11").unwrap();
    assert_eq!(nov.partners, 1);
    let cj = read(&nov.dir, "cj.201");
    // 100.00 × 10 % = 10.00, bonus 1.00 (volume 100 reaches it), 21.00 in.
    assert_eq!(cj.totals.carried_in.to_string(), "21.00");
    assert_eq!(cj.totals.total_payable.to_string(), "32.00");
}

/// What a version before payees (statement format 1) recorded for `p1` on
/// awin in October: the finalised statement and files under the bare id,
/// the paid claim, and a balance under the bare id. Built by finalising
/// with today's code and rewriting the records as format 1 wrote them.
fn format_1_october(
    c: &reckon::payout::config::CommissionConfig,
    book: &MemoryBook,
    out: &std::path::Path,
) {
    let ds = vec![sale("C1", "p1", "2026-10-10T10:00:00Z", "200.00")];
    let fxr = no_fx();
    let report = reckon::payout::finalize(&inputs(c, &ds, &fxr, book, out), "2026-10").unwrap();
    let rec = lifecycle::period_records(book, "shop").unwrap().remove(0);
    let (mut s, _) = lifecycle::finalised_statements(book, &rec)
        .unwrap()
        .remove(0);
    s.format_version = 1;
    s.network = None;
    s.statement_id = "shop/2026-10/p1".into();
    let (files, bytes) = lifecycle::render_statement(&s).unwrap();
    assert_eq!(
        (files.partner_id.as_str(), files.stem.as_str()),
        ("p1", "p1")
    );
    let summary = render::summary_csv(&[render::SummaryRow::of(&s, &files.content_hash)]).unwrap();
    let mut old_rec = rec.clone();
    old_rec.partners = vec![files.clone()];
    old_rec.summary_sha256 = render::sha256_hex(&summary);
    let paid = PaidClaim {
        partner_id: "p1".into(),
        statement_id: s.statement_id.clone(),
        line_no: 1,
        order_id: s.lines[0].order_id.clone(),
        original_basis: Some(d("200.00")),
        original_commission: d("20.00"),
        paid_total: d("20.00"),
        date: None,
        event: None,
        basis: None,
        fx_rate: None,
        claim_fx_rate: None,
        order_fx_rate: None,
        terms: None,
    };
    book.apply(vec![
        (book::key(&["final", "shop", "2026-10", "awin:p1"]), None),
        (book::key(&["balance", "shop", "awin:p1"]), None),
        (
            book::key(&["final", "shop", "2026-10", "p1"]),
            Some(book::encode(&book::FinalRecord {
                book_version: book::BOOK_VERSION,
                canonical_json: String::from_utf8(bytes.canonical).unwrap(),
                content_hash: files.content_hash.clone(),
            })),
        ),
        (
            book::key(&["period", "shop", "2026-10"]),
            Some(book::encode(&old_rec)),
        ),
        (
            book::key(&["paid", "shop", "awin", "C1"]),
            Some(book::encode(&paid)),
        ),
        (
            book::key(&["balance", "shop", "p1"]),
            Some(book::encode(&Balance {
                period: "2026-10".into(),
                carried_out: d("20.00"),
            })),
        ),
    ])
    .unwrap();
    std::fs::remove_dir_all(&report.dir).unwrap();
}

#[test]
fn a_format_1_store_reproduces_its_statements_and_carries_its_balances_to_the_payee() {
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
    format_1_october(&c, &book, tmp.path());
    let fxr = no_fx();
    let ds = vec![
        sale("C1", "p1", "2026-10-10T10:00:00Z", "200.00"),
        sale("C2", "p1", "2026-11-10T10:00:00Z", "400.00"),
    ];

    // The finalised format-1 period comes back byte for byte, and verifies.
    let oct =
        reckon::payout::generate(&inputs(&c, &ds, &fxr, &book, tmp.path()), "2026-10").unwrap();
    assert!(oct.already_finalised);
    assert!(read_dir(&oct.dir).contains_key("p1.json"));
    let v = reckon::payout::verify(&book, tmp.path(), "shop", "2026-10").unwrap();
    assert!(v.problems.is_empty(), "{:?}", v.problems);

    // November: the 20.00 carried under `p1` goes to awin:p1, once.
    let nov =
        reckon::payout::finalize(&inputs(&c, &ds, &fxr, &book, tmp.path()), "2026-11").unwrap();
    let s = read(&nov.dir, "awin.p1");
    assert_eq!(s.lines.len(), 1, "C1 was paid in October");
    assert_eq!(s.totals.carried_in.to_string(), "20.00");
    assert_eq!(s.totals.total_payable.to_string(), "60.00");
    assert_eq!(s.status, Status::Finalised);
    let balances = book
        .scan_prefix(&book::prefix(&["balance", "shop"]))
        .unwrap();
    assert!(
        balances.is_empty(),
        "the old key went with the new write: {balances:?}"
    );
    let dec =
        reckon::payout::generate(&inputs(&c, &ds, &fxr, &book, tmp.path()), "2026-12").unwrap();
    assert_eq!(dec.partners, 0, "nothing carried twice");
}
