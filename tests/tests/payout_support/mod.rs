//! Shared builders for the payout suites: decisions, configs, FX tables and
//! the lifecycle inputs over an in-memory book.
#![allow(dead_code)]

use chrono::{DateTime, NaiveDate, Utc};
use plugin_api::{EventType, Money};
use reckon::payout::book::MemoryBook;
use reckon::payout::config::CommissionConfig;
use reckon::payout::statement::FxRates;
use reckon::payout::{DecisionSource, Decisions, PayoutError};
use reckon::reconcile::model::{Decision, MatchedBy, Outcome, RecordRef};
use rust_decimal::Decimal;
use std::collections::BTreeMap;
use std::path::Path;
use std::str::FromStr;

/// A decimal from a literal.
pub fn d(s: &str) -> Decimal {
    Decimal::from_str(s).unwrap()
}

/// A UTC instant from RFC 3339.
pub fn at(s: &str) -> DateTime<Utc> {
    DateTime::parse_from_rfc3339(s).unwrap().with_timezone(&Utc)
}

/// A date.
pub fn day(s: &str) -> NaiveDate {
    NaiveDate::from_str(s).unwrap()
}

/// Program `id` of networks `claims` with bases in `currency` (EUR in
/// these tests), as the settled checks take it.
pub fn program_of(
    id: &str,
    claims: &[&str],
    currency: &str,
) -> reckon::reconcile::config::ProgramConfig {
    toml::from_str(&format!(
        "id = {id:?}\ncurrency = {currency:?}\nclaims = {claims:?}\norders = [\"shop\"]\n"
    ))
    .expect("test program")
}

/// The commission config from a TOML snippet of `[programs.commission]`.
pub fn config(toml_text: &str) -> CommissionConfig {
    let c: CommissionConfig = toml::from_str(toml_text).expect("commission config parses");
    c.validate("shop").expect("commission config is valid");
    c
}

/// A payable, matched sale (or other event) of `partner` on network `net`.
pub fn claim(
    net: &str,
    id: &str,
    partner: &str,
    event: EventType,
    occurred: &str,
    basis: Option<(&str, &str)>,
) -> Decision {
    Decision {
        program: "shop".into(),
        claim: RecordRef {
            source: net.into(),
            id: id.into(),
            revision: 1,
        },
        partner_id: partner.into(),
        partner_name: Some(format!("Partner {partner}")),
        event_type: event,
        occurred_at: at(occurred),
        order: Some(RecordRef {
            source: "shop".into(),
            id: format!("O-{id}"),
            revision: 1,
        }),
        matched_by: Some(MatchedBy::OrderId),
        outcome: Outcome::Matched,
        payable: true,
        lock_at: Some(at(occurred) + chrono::Duration::days(1)),
        basis: basis.map(|(a, c)| Money::new(d(a), c)),
        claimed_amount: basis.map(|(a, c)| Money::new(d(a), c)),
        order_amount: basis.map(|(a, c)| Money::new(d(a), c)),
        refunded_amount: None,
        network_commission: None,
        fx_rate: None,
        winner: None,
        reason: "order id matches".into(),
        decided_at: at("2026-12-01T00:00:00Z"),
        order_fx_rate: None,
        inputs: Default::default(),
    }
}

/// A payable sale of `amount` EUR.
pub fn sale(id: &str, partner: &str, occurred: &str, amount: &str) -> Decision {
    claim(
        "awin",
        id,
        partner,
        EventType::Sale,
        occurred,
        Some((amount, "EUR")),
    )
}

/// The claim refunded in full (not payable any more).
pub fn refunded(mut dcs: Decision) -> Decision {
    dcs.outcome = Outcome::Refunded;
    dcs.payable = false;
    dcs.refunded_amount = dcs.order_amount.clone();
    dcs.basis = dcs.basis.map(|b| Money::new(Decimal::ZERO, b.currency));
    dcs.reason = "order refunded in full".into();
    dcs
}

/// The claim partly refunded: basis now `net`.
pub fn partly_refunded(mut dcs: Decision, net: &str) -> Decision {
    dcs.outcome = Outcome::PartiallyRefunded;
    let cur = dcs
        .basis
        .as_ref()
        .map(|b| b.currency.clone())
        .unwrap_or_default();
    let before = dcs.basis.as_ref().map(|b| b.amount).unwrap_or_default();
    dcs.refunded_amount = Some(Money::new(before - d(net), cur.clone()));
    dcs.basis = Some(Money::new(d(net), cur));
    dcs.reason = "order partly refunded".into();
    dcs
}

/// FX rates by (base, quote, date), as [`fx`] builds them.
pub type Rates = BTreeMap<(String, String, NaiveDate), Decimal>;

/// An FX table from `(base, quote, date, rate)` rows.
pub fn fx(rows: &[(&str, &str, &str, &str)]) -> Rates {
    rows.iter()
        .map(|(b, q, dt, r)| ((b.to_string(), q.to_string(), day(dt)), d(r)))
        .collect()
}

/// No FX rates (same-currency programs).
pub fn no_fx() -> BTreeMap<(String, String, NaiveDate), Decimal> {
    BTreeMap::new()
}

/// Lifecycle inputs over an in-memory book, with the decisions read as
/// `reckon statements` reads them ([`Decisions::Source`]).
pub fn inputs<'a>(
    config: &'a CommissionConfig,
    decisions: &'a [Decision],
    fx: &'a dyn FxRates,
    book: &'a MemoryBook,
    out: &'a Path,
) -> reckon::payout::Inputs<'a> {
    let source: &'static JsonSource = Box::leak(Box::new(JsonSource(decisions.to_vec())));
    reckon::payout::Inputs {
        decisions: Decisions::Source(source),
        ..inputs_slice(config, decisions, fx, book, out)
    }
}

/// [`inputs`] with the decisions as one decoded slice ([`Decisions::Slice`]).
pub fn inputs_slice<'a>(
    config: &'a CommissionConfig,
    decisions: &'a [Decision],
    fx: &'a dyn FxRates,
    book: &'a MemoryBook,
    out: &'a Path,
) -> reckon::payout::Inputs<'a> {
    reckon::payout::Inputs {
        program: "shop",
        config,
        decisions: Decisions::Slice(decisions),
        fx,
        book,
        output_dir: out,
        step: &|_| {},
    }
}

/// Decisions as stored (JSON here; the store keeps reconcile's codec),
/// scanned newest first: the store's order is not claim order either.
pub struct JsonSource(pub Vec<Decision>);

impl DecisionSource for JsonSource {
    fn scan(&self, each: &mut dyn FnMut(&Decision, &[u8])) -> Result<(), PayoutError> {
        for d in self.0.iter().rev() {
            each(d, &serde_json::to_vec(d).unwrap());
        }
        Ok(())
    }
    fn decode(&self, stored: &[u8]) -> Result<Decision, PayoutError> {
        Ok(serde_json::from_slice(stored).unwrap())
    }
}

/// All files of a directory with their bytes, by name.
pub fn read_dir(dir: &Path) -> BTreeMap<String, Vec<u8>> {
    let mut m = BTreeMap::new();
    for e in std::fs::read_dir(dir).unwrap() {
        let e = e.unwrap();
        m.insert(
            e.file_name().to_string_lossy().into_owned(),
            std::fs::read(e.path()).unwrap(),
        );
    }
    m
}

/// Per claim (network, claim id), what finalised statements paid each payee
/// (lines plus adjustments).
pub type PaidByPayee = BTreeMap<(String, String), BTreeMap<String, Decimal>>;

/// Adds one finalised statement's lines and adjustments to `net`.
pub fn add_paid(net: &mut PaidByPayee, s: &reckon::payout::model::Statement) {
    let payee = s.payee();
    let amounts = s
        .lines
        .iter()
        .map(|l| (&l.network, &l.claim_id, l.commission))
        .chain(
            s.adjustments
                .iter()
                .map(|a| (&a.network, &a.claim_id, a.amount)),
        );
    for (network, claim, amount) in amounts {
        *net.entry((network.clone(), claim.clone()))
            .or_default()
            .entry(payee.clone())
            .or_default() += amount;
    }
}

/// The bookkeeping invariant: for every claim, what the finalised
/// statements paid each payee is zero except for the payee in the ledger of
/// paid claims, which was paid its `paid_total`; and every ledger entry is
/// on some finalised statement.
pub fn assert_paid_matches_ledger(
    net: &PaidByPayee,
    history: &reckon::payout::statement::History,
    context: &str,
) {
    for (claim, by_payee) in net {
        let paid = history.paid.get(claim);
        for (payee, amount) in by_payee {
            let want = match paid {
                Some(p) if *payee == format!("{}:{}", claim.0, p.partner_id) => p.paid_total,
                _ => Decimal::ZERO,
            };
            assert_eq!(
                *amount, want,
                "{context}: claim {claim:?}, payee {payee}: {by_payee:?}, ledger {paid:?}"
            );
        }
    }
    for claim in history.paid.keys() {
        assert!(
            net.contains_key(claim),
            "{context}: claim {claim:?} in the ledger but on no finalised statement"
        );
    }
}

/// The released-lines ledger against the finalised statements (`finalised`,
/// all of them): every finalised line whose claim's entry in the ledger of
/// paid claims is not that line (the claim moved to another partner) is in
/// it under its statement, with its line number and, as `paid_total`, its
/// commission plus the later adjustments of it; and nothing else is.
pub fn assert_released_matches_statements(
    finalised: &[reckon::payout::model::Statement],
    history: &reckon::payout::statement::History,
    context: &str,
) {
    let mut want: BTreeMap<(String, String, String), (u32, Decimal)> = BTreeMap::new();
    for s in finalised {
        for l in &s.lines {
            let held = history
                .paid
                .get(&(l.network.clone(), l.claim_id.clone()))
                .is_some_and(|p| p.statement_id == s.statement_id && p.line_no == l.line_no);
            if !held {
                want.insert(
                    (
                        s.statement_id.clone(),
                        l.network.clone(),
                        l.claim_id.clone(),
                    ),
                    (l.line_no, l.commission),
                );
            }
        }
    }
    for a in finalised.iter().flat_map(|s| &s.adjustments) {
        let key = (
            a.original_statement_id.clone(),
            a.network.clone(),
            a.claim_id.clone(),
        );
        if let Some(w) = want.get_mut(&key) {
            w.1 += a.amount;
        }
    }
    let got: BTreeMap<(String, String, String), (u32, Decimal)> = history
        .released
        .iter()
        .flat_map(|(sid, lines)| {
            lines.iter().map(move |((network, claim), p)| {
                (
                    (sid.clone(), network.clone(), claim.clone()),
                    (p.line_no, p.paid_total),
                )
            })
        })
        .collect();
    assert_eq!(
        got, want,
        "{context}: the released-lines ledger vs the finalised statements"
    );
}

/// Rewrites a period finalised by today's code as an earlier format
/// recorded it: each stored statement as `format_version`, rendered
/// with that format's files, and the period record with their hashes. The
/// period's files are removed (`generate` writes them back from the
/// store).
pub fn reissue_as_format(book: &MemoryBook, dir: &Path, period: &str, format_version: u32) {
    reissue_with(book, dir, period, &|s| s.format_version = format_version);
}

/// Rewrites each statement of a period finalised by today's code with
/// `edit` (an earlier format's content), recorded as [`reissue_as_format`]
/// does: rendered with its format's files, the period record with their
/// hashes, the period's files removed.
pub fn reissue_with(
    book: &MemoryBook,
    dir: &Path,
    period: &str,
    edit: &dyn Fn(&mut reckon::payout::model::Statement),
) {
    use reckon::payout::book::{self, StatementBook};
    use reckon::payout::{lifecycle, render};
    let mut rec = lifecycle::period_records(book, "shop")
        .unwrap()
        .into_iter()
        .find(|r| r.period == period)
        .unwrap();
    let mut writes = Vec::new();
    let mut summary = Vec::new();
    let mut stems = render::PeriodStems::default();
    rec.partners = lifecycle::finalised_statements(book, &rec)
        .unwrap()
        .into_iter()
        .map(|(mut s, _)| {
            edit(&mut s);
            let (mut files, bytes) = lifecycle::render_statement(&s).unwrap();
            files.stem = stems.stem(&s);
            summary.push(render::SummaryRow::of(&s, &files.content_hash));
            writes.push((
                book::key(&["final", "shop", period, &s.payee()]),
                Some(book::encode(&book::FinalRecord {
                    book_version: book::BOOK_VERSION,
                    canonical_json: String::from_utf8(bytes.canonical).unwrap(),
                    content_hash: files.content_hash.clone(),
                })),
            ));
            files
        })
        .collect();
    rec.summary_sha256 = render::sha256_hex(&render::summary_csv(&summary).unwrap());
    writes.push((
        book::key(&["period", "shop", period]),
        Some(book::encode(&rec)),
    ));
    book.apply(writes).unwrap();
    std::fs::remove_dir_all(dir).unwrap();
}

/// The statements of a period directory, by partner id, their content
/// hashes checked.
pub fn statements_in(dir: &Path) -> BTreeMap<String, reckon::payout::model::Statement> {
    read_dir(dir)
        .into_iter()
        .filter(|(n, _)| n.ends_with(".json"))
        .map(|(_, b)| {
            let (s, claimed, actual) = reckon::payout::render::read_json_file(&b).unwrap();
            assert_eq!(claimed, actual);
            (s.partner_id.clone(), s)
        })
        .collect()
}

/// The records of a CSV (RFC 4180: a quoted cell may hold commas, doubled
/// quotes and line breaks, as a format-15 `refers_to` cell does).
pub fn records(csv: &[u8]) -> Vec<Vec<String>> {
    let (mut out, mut row, mut cell, mut quoted) = (Vec::new(), Vec::new(), String::new(), false);
    let text = std::str::from_utf8(csv).unwrap();
    let mut chars = text.chars().peekable();
    while let Some(ch) = chars.next() {
        match ch {
            '"' if quoted && chars.peek() == Some(&'"') => {
                cell.push('"');
                chars.next();
            }
            '"' => quoted = !quoted,
            ',' if !quoted => row.push(std::mem::take(&mut cell)),
            '\n' if !quoted => {
                row.push(std::mem::take(&mut cell));
                out.push(std::mem::take(&mut row));
            }
            ch => cell.push(ch),
        }
    }
    if !cell.is_empty() || !row.is_empty() {
        row.push(cell);
        out.push(row);
    }
    out
}

/// The cells of one CSV record.
pub fn cells(line: &str) -> Vec<String> {
    records(line.as_bytes())
        .into_iter()
        .next()
        .unwrap_or_default()
}

/// The CSV's rows of `section`, each as (column name → cell), read by
/// header name as an AP or audit system reads them.
pub fn rows_by_name(csv: &[u8], section: &str) -> Vec<BTreeMap<String, String>> {
    let mut rows = records(csv).into_iter();
    let head = rows.next().unwrap();
    rows.filter(|row| row[0] == section)
        .map(|row| {
            assert_eq!(row.len(), head.len(), "{row:?}");
            head.iter().cloned().zip(row).collect()
        })
        .collect()
}

/// Commission terms: 10 % of every claim's basis, paid in EUR (the body of
/// a `[programs.commission]` table, for [`config`]).
pub const CPS_EUR: &str = r#"
payout_currency = "EUR"
[[rules]]
id = "cps"
effective_from = "2026-01-01"
kind = "percent"
percent = "10"
"#;

/// A whole config: connectors `shop` (orders) and `awin` (claims) and
/// program `shop`, 10 % of EUR bases paid in EUR, monthly; `commission`
/// goes into its `[programs.commission]` table (e.g. a `minimum_payout`),
/// `manual` after its rules (`[[programs.commission.manual_adjustments]]`
/// tables).
pub fn shop_config(commission: &str, manual: &str) -> String {
    format!(
        r#"
[[connectors]]
id = "shop"
plugin = "example"
schedule = "0 * * * *"

[[connectors]]
id = "awin"
plugin = "example"
schedule = "0 * * * *"

[[programs]]
id = "shop"
currency = "EUR"
claims = ["awin"]
orders = ["shop"]

[programs.commission]
payout_currency = "EUR"
{commission}
[[programs.commission.rules]]
id = "cps"
effective_from = "2026-01-01"
kind = "percent"
percent = "10"
{manual}"#
    )
}

/// The statement of the snapshot tests (`payout_lifecycle`'s
/// `statement_outputs_snapshot`, and the format tests that compare with
/// it): a lead rule, a marginal tier and a bonus, paid in EUR with a
/// 10.00 minimum.
pub const SNAPSHOT_RULES: &str = r#"
payout_currency = "EUR"
minimum_payout = "10"
[[rules]]
id = "cpa-lead"
effective_from = "2026-01-01"
event_types = ["lead"]
kind = "flat"
amount = "2.50"
[[rules]]
id = "cps"
effective_from = "2026-01-01"
kind = "tiered"
tier_mode = "marginal"
tiers = [{ from_volume = "0", percent = "10" }, { from_volume = "400", percent = "12" }]
[[bonuses]]
id = "fixed-300"
effective_from = "2026-01-01"
threshold_volume = "300"
amount = "5"
"#;

/// The snapshot statement's months for payee `awin:p<1>`: October's two
/// sales (finalise it first), then November's decisions: one of them
/// partly refunded, the other refunded, two new sales and a lead. The
/// rates: USD→EUR 0.9 on 2026-11-09.
pub fn snapshot_months() -> (Vec<Decision>, Vec<Decision>, Rates) {
    let a = sale("A", "p<1>", "2026-10-05T10:00:00Z", "200.00");
    let b = sale("B", "p<1>", "2026-10-06T10:00:00Z", "100.00");
    let october = vec![a.clone(), b.clone()];
    let november = vec![
        partly_refunded(a, "150.00"),
        refunded(b),
        sale("C", "p<1>", "2026-11-07T10:00:00Z", "300.00"),
        sale("D", "p<1>", "2026-11-08T10:00:00Z", "250.00"),
        claim(
            "awin",
            "L",
            "p<1>",
            EventType::Lead,
            "2026-11-09T10:00:00Z",
            None,
        ),
    ];
    (
        october,
        november,
        fx(&[("USD", "EUR", "2026-11-09", "0.9")]),
    )
}
