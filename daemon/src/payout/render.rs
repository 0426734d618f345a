//! Statement files: canonical JSON (with its content hash), CSV, printable
//! HTML, and the period's `summary.csv`.
//!
//! Every output is a pure function of the [`Statement`] (or of the period's
//! summary rows), so re-rendering a stored finalised statement reproduces its
//! files byte for byte. Nothing here reads a clock, the environment or the
//! network; the HTML carries its own CSS.

use super::model::{Statement, Status};
use crate::reconcile::model::ALL_OUTCOMES;
use sha2::{Digest, Sha256};
use std::fmt::Write as _;

/// Errors rendering or reading a statement file.
#[derive(Debug, thiserror::Error)]
pub enum RenderError {
    /// Serialising or parsing JSON failed.
    #[error("statement JSON: {0}")]
    Json(#[from] serde_json::Error),
    /// Writing CSV failed.
    #[error("statement CSV: {0}")]
    Csv(#[from] csv::Error),
    /// The file is not in the canonical form this version writes.
    #[error("{0}")]
    NotCanonical(String),
}

/// Hex SHA-256 of bytes.
pub fn sha256_hex(bytes: &[u8]) -> String {
    hex::encode(Sha256::digest(bytes))
}

/// The canonical JSON of a statement: compact, fields in declaration order,
/// decimals as strings. Its SHA-256 is the statement's content hash.
pub fn canonical_json(s: &Statement) -> Result<Vec<u8>, RenderError> {
    Ok(serde_json::to_vec(s)?)
}

/// The `<partner>.json` file: the canonical JSON with `"content_hash"`
/// appended as the last field, and a final newline.
pub fn json_file(canonical: &[u8], content_hash: &str) -> Vec<u8> {
    let mut out = Vec::with_capacity(canonical.len() + 90);
    out.extend_from_slice(&canonical[..canonical.len().saturating_sub(1)]);
    out.extend_from_slice(b",\"content_hash\":\"");
    out.extend_from_slice(content_hash.as_bytes());
    out.extend_from_slice(b"\"}\n");
    out
}

/// Reads a `<partner>.json` file back: the statement, the hash it claims,
/// and the hash its content actually has. Fails if the file is not exactly
/// what [`json_file`] would write for that statement.
pub fn read_json_file(bytes: &[u8]) -> Result<(Statement, String, String), RenderError> {
    const MARK: &[u8] = b",\"content_hash\":\"";
    let pos = bytes
        .windows(MARK.len())
        .rposition(|w| w == MARK)
        .ok_or_else(|| {
            let has_hash = serde_json::from_slice::<serde_json::Value>(bytes)
                .is_ok_and(|v| v.get("content_hash").is_some());
            RenderError::NotCanonical(if has_hash {
                "the JSON is not laid out as issued (re-formatted or edited?): its content hash cannot be checked; restore it with `statements generate`".into()
            } else {
                "no content_hash field".into()
            })
        })?;
    let mut canonical = bytes[..pos].to_vec();
    canonical.push(b'}');
    let claimed = std::str::from_utf8(&bytes[pos + MARK.len()..])
        .map_err(|_| RenderError::NotCanonical("content_hash is not UTF-8".into()))?
        .trim_end_matches('\n')
        .trim_end_matches("\"}")
        .to_string();
    let statement: Statement = serde_json::from_slice(&canonical)?;
    let again = canonical_json(&statement)?;
    if again != canonical {
        return Err(RenderError::NotCanonical(
            "the JSON is not in canonical form (edited by hand?)".into(),
        ));
    }
    if json_file(&canonical, &claimed) != bytes {
        return Err(RenderError::NotCanonical(
            "bytes after the content hash differ from the canonical layout".into(),
        ));
    }
    let actual = sha256_hex(&canonical);
    Ok((statement, claimed, actual))
}

fn opt<T: ToString>(v: &Option<T>) -> String {
    v.as_ref().map(|x| x.to_string()).unwrap_or_default()
}

/// The `<partner>.csv` file: one row per line, adjustment, bonus
/// adjustment (format 7), bonus, manual adjustment (format 14) and
/// `not_paid` entry (format 14), then one row per total, one
/// `total_network_reported` row per currency (format 13) and a
/// `closed_early_at` row (format 11, closed early only). A bonus
/// adjustment's original volume, original bonus and previously paid are
/// under `original_basis`, `original_commission` and `previously_paid`
/// from format 12; formats 10 and 11 are rendered with them under the last
/// three decision columns, as they were issued. From format 17 every row
/// ends with [`STATEMENT_COLUMNS`]: the statement id, payee, status and
/// version, as `summary.csv` writes them.
pub fn csv_file(s: &Statement) -> Result<Vec<u8>, RenderError> {
    // Format 3 guards text cells against formulas and adds each line's
    // trace, format 16 guards them losslessly; earlier formats are
    // rendered exactly as they were issued.
    let v3 = s.format_version >= 3;
    let guard = Guard::of_format(s.format_version);
    let v4 = s.format_version >= 4;
    let v5 = s.format_version >= 5;
    let v10 = s.format_version >= 10;
    let v12 = s.format_version >= 12;
    let v13 = s.format_version >= 13;
    let v14 = s.format_version >= 14;
    // Format 15 (QA38c C-L1): a manual adjustment's references one per
    // line of their cell; a space (format 14) also occurs in partner ids.
    let references = if s.format_version >= 15 { "\n" } else { " " };
    let t = |x: &str| guarded_cell(x, guard);
    // The program currency: of the bases, the volume and the tolerance.
    let program_currency = s.volume.as_ref().map(|v| v.currency.as_str());
    // A format-13 cell; empty before (formats 12 and earlier had none).
    let now = |cell: String| if v13 { cell } else { String::new() };
    let mut w = csv::WriterBuilder::new().from_writer(Vec::new());
    let mut head = vec![
        "section",
        "line_no",
        "network",
        "claim_id",
        "order_id",
        "date",
        "event",
        "basis",
        "basis_currency",
        "rule_id",
        "override_id",
        "rate_percent",
        "flat_amount",
        "rate_detail",
        "fx_rate",
        "amount",
        "currency",
        "refers_to",
        "note",
    ];
    if v3 {
        head.extend(TRACE_COLUMNS);
    }
    if v4 {
        head.extend(FX_COLUMNS);
    }
    if v13 {
        // QA33d L9: credited, not necessarily paid out.
        head.extend(ADJUSTMENT_COLUMNS_13);
    } else if v5 {
        head.extend(ADJUSTMENT_COLUMNS);
    }
    // Where a line row's outcome goes (format 10), and a bonus
    // adjustment row's adjustment cells (format 12).
    let outcome_at = head.len().saturating_sub(ADJUSTMENT_COLUMNS.len());
    if v10 {
        head.extend(DECISION_COLUMNS);
    }
    if v13 {
        head.extend(FORMAT_13_COLUMNS);
    }
    // Where the format-14 cells start.
    let dates_at = head.len();
    if v14 {
        head.extend(FORMAT_14_COLUMNS);
    }
    // The cells of a row before the format-17 ones.
    let width = head.len();
    // Format 17 (QA38c C-M1): every row names the statement it is of, so
    // a CSV read on its own (copied out of its directory, or a draft
    // picked up as the month's bill) says whose, which and whether final.
    let named = if s.format_version >= 17 {
        head.extend(STATEMENT_COLUMNS);
        statement_cells(s, guard)
    } else {
        Vec::new()
    };
    w.write_record(&head)?;
    // A row's format-14 cells: the rate's date and the trace's rates'
    // dates (QA34c M2), then, on `not_paid` rows, status and lock date.
    let dated = |row: &mut Vec<String>,
                 fx_rate_date: Option<chrono::NaiveDate>,
                 trace: Option<&super::model::Trace>| {
        if v14 {
            row.resize(dates_at, String::new());
            row.extend([
                opt(&fx_rate_date),
                opt(&trace.and_then(|t| t.claim_fx_rate_date)),
                opt(&trace.and_then(|t| t.order_fx_rate_date)),
            ]);
        }
    };
    let cur = s.currency.as_str();
    for l in &s.lines {
        let mut row: Vec<String> = vec![
            "line".into(),
            l.line_no.to_string(),
            t(&l.network),
            t(&l.claim_id),
            t(&opt(&l.order_id)),
            l.date.to_string(),
            l.event.as_str().into(),
            opt(&l.basis.as_ref().map(|b| b.amount)),
            opt(&l.basis.as_ref().map(|b| b.currency.clone())),
            t(&l.rule_id),
            t(&opt(&l.override_id)),
            opt(&l.rate_percent),
            opt(&l.flat_amount),
            t(&opt(&l.rate_detail)),
            opt(&l.fx_rate),
            l.commission.to_string(),
            cur.into(),
            String::new(),
            t(&opt(&l.note)),
        ];
        if v3 {
            row.extend(trace_cells(l.trace.as_ref(), guard));
        }
        if v4 {
            row.extend(fx_cells(l.trace.as_ref()));
        }
        if v10 {
            row.resize(outcome_at, String::new());
            row.push(opt(&l.outcome.map(|o| o.as_str())));
            row.resize(outcome_at + ADJUSTMENT_COLUMNS.len(), String::new());
            row.extend(decision_cells(l.trace.as_ref()));
        }
        if v13 {
            row.extend(format_13_cells(
                l.network_commission.as_ref(),
                None,
                l.trace.as_ref(),
                program_currency,
            ));
        }
        dated(&mut row, l.fx_rate_date, l.trace.as_ref());
        row.resize(width, String::new());
        write_row(&mut w, &row, &named)?;
    }
    for a in &s.adjustments {
        let mut row: Vec<String> = vec![
            "adjustment".into(),
            a.line_no.to_string(),
            t(&a.network),
            t(&a.claim_id),
            t(&opt(&a.order_id)),
            String::new(),
            String::new(),
            opt(&a.current_basis),
            // The basis is in the program currency (format 3 names it).
            if v3 && a.current_basis.is_some() {
                opt(&s.volume.as_ref().map(|v| v.currency.clone()))
            } else {
                String::new()
            },
            // Format 13 (QA33d M4): how the claim is priced now.
            now(t(&opt(&a.rule_id))),
            now(t(&opt(&a.override_id))),
            now(opt(&a.rate_percent)),
            now(opt(&a.flat_amount)),
            now(t(&opt(&a.rate_detail))),
            now(opt(&a.fx_rate)),
            a.amount.to_string(),
            cur.into(),
            t(&format!(
                "{}#{}",
                a.original_statement_id, a.original_line_no
            )),
            t(&a.reason),
        ];
        if v3 {
            row.extend(trace_cells(a.trace.as_ref(), guard));
        }
        if v4 {
            row.extend(fx_cells(a.trace.as_ref()));
        }
        if v5 {
            row.extend([
                a.outcome.as_str().to_string(),
                opt(&a.original_basis),
                a.original_commission.to_string(),
                a.previously_paid.to_string(),
            ]);
        }
        if v10 {
            row.extend(decision_cells(a.trace.as_ref()));
        }
        if v13 {
            row.extend(format_13_cells(
                a.network_commission.as_ref(),
                a.volume_now,
                a.trace.as_ref(),
                program_currency,
            ));
        }
        if v14 {
            dated(&mut row, a.fx_rate_date, a.trace.as_ref());
            row.resize(width, String::new());
        }
        write_row(&mut w, &row, &named)?;
    }
    // Format 7: the bonus of an earlier statement corrected, in the bonus
    // row's columns (volume now as the basis, the bonus id as the rule),
    // with the adjustment columns of a claim's adjustment.
    for a in &s.bonus_adjustments {
        let mut row: Vec<String> = vec![
            "bonus_adjustment".into(),
            a.line_no.to_string(),
            String::new(),
            String::new(),
            String::new(),
            String::new(),
            String::new(),
            a.current_volume.to_string(),
            opt(&s.volume.as_ref().map(|v| v.currency.clone())),
            t(&a.bonus_id),
            String::new(),
            opt(&a.percent),
            opt(&a.fixed_amount),
            format!("threshold {}", a.threshold_volume),
            opt(&a.fx_rate),
            a.amount.to_string(),
            cur.into(),
            t(&match a.original_line_no {
                Some(n) => format!("{}#{n}", a.original_statement_id),
                None => a.original_statement_id.clone(),
            }),
            t(&a.reason),
        ];
        if v5 {
            // Format 12 (QA32d F1): under the adjustment columns, as a
            // claim's adjustment has them. Formats 10 and 11 counted the
            // decision columns in `width` and so wrote the four cells under
            // `tolerance_applied` and the two before it; they are issued
            // (their CSV's SHA-256 is recorded), so they keep that layout.
            let at = if v12 {
                outcome_at
            } else {
                width - ADJUSTMENT_COLUMNS.len()
            };
            row.resize(at, String::new());
            row.extend([
                String::new(),
                a.original_volume.to_string(),
                a.original_amount.to_string(),
                a.previously_paid.to_string(),
            ]);
        }
        dated(&mut row, a.fx_rate_date, None);
        row.resize(width, String::new());
        write_row(&mut w, &row, &named)?;
    }
    for b in &s.bonuses {
        let mut row: Vec<String> = vec![
            "bonus".into(),
            b.line_no.to_string(),
            String::new(),
            String::new(),
            String::new(),
            String::new(),
            String::new(),
            b.volume.to_string(),
            opt(&s.volume.as_ref().map(|v| v.currency.clone())),
            t(&b.bonus_id),
            String::new(),
            opt(&b.percent),
            opt(&b.fixed_amount),
            format!("threshold {}", b.threshold_volume),
            opt(&b.fx_rate),
            b.amount.to_string(),
            cur.into(),
        ];
        dated(&mut row, b.fx_rate_date, None);
        row.resize(width, String::new());
        write_row(&mut w, &row, &named)?;
    }
    // Format 14 (QA34c M4): manual adjustments, the id in `rule_id` (as
    // a bonus row's bonus), the lines corrected in `refers_to` (from
    // format 15 one per line: no reference holds a control character), the
    // reason in `note`.
    for m in &s.manual_adjustments {
        let mut row: Vec<String> = vec![
            "manual_adjustment".into(),
            m.line_no.to_string(),
            String::new(),
            String::new(),
            String::new(),
            String::new(),
            String::new(),
            String::new(),
            String::new(),
            t(&m.id),
            String::new(),
            String::new(),
            String::new(),
            String::new(),
            String::new(),
            m.amount.to_string(),
            cur.into(),
            t(&m.refers_to.join(references)),
            t(&m.reason),
        ];
        row.resize(width, String::new());
        write_row(&mut w, &row, &named)?;
    }
    // Format 14 (QA34c M1): the payee's claims this statement does not
    // pay, with why; no amount (they count in no total).
    for n in &s.not_paid {
        let mut row: Vec<String> = vec![
            "not_paid".into(),
            String::new(),
            t(&opt(&n.network)),
            t(&opt(&n.claim_id)),
            t(&opt(&n.order_id)),
            opt(&n.date),
            String::new(),
            String::new(),
            String::new(),
            t(&opt(&n.bonus_id)),
            String::new(),
            String::new(),
            String::new(),
            String::new(),
            String::new(),
            String::new(),
            String::new(),
            String::new(),
            t(&n.reason),
        ];
        row.resize(outcome_at, String::new());
        row.push(opt(&n.outcome.map(|o| o.as_str())));
        row.resize(outcome_at + ADJUSTMENT_COLUMNS.len(), String::new());
        row.extend([
            opt(&n.claimed_amount.as_ref().map(|m| m.amount)),
            opt(&n.claimed_amount.as_ref().map(|m| m.currency.clone())),
        ]);
        row.resize(dates_at + 3, String::new());
        row.extend([
            n.status.as_str().to_string(),
            opt(&n
                .lock_at
                .map(|l| l.to_rfc3339_opts(chrono::SecondsFormat::AutoSi, true))),
        ]);
        row.resize(width, String::new());
        write_row(&mut w, &row, &named)?;
    }
    let t = &s.totals;
    for (name, v) in [
        ("total_lines", t.lines),
        ("total_adjustments", t.adjustments),
        ("total_bonuses", t.bonuses),
        ("carried_in", t.carried_in),
        ("subtotal", t.subtotal),
        ("minimum_payout", t.minimum_payout),
        ("total_payable", t.total_payable),
        ("carried_out", t.carried_out),
    ] {
        let amount = v.to_string();
        let mut row = vec![""; width];
        row[0] = name;
        row[15] = &amount;
        row[16] = cur;
        write_row(&mut w, &row, &named)?;
    }
    // Format 13 (QA33d M2): what the network reported for the lines, one
    // row per currency it reported in, beside `total_lines`.
    for m in s.totals.network_reported.iter().filter(|_| v13) {
        let amount = m.amount.to_string();
        let mut row = vec![""; width];
        row[0] = "total_network_reported";
        row[15] = &amount;
        row[16] = &m.currency;
        write_row(&mut w, &row, &named)?;
    }
    // Format 11 (QA31-A L4): the instant a period finalised early was
    // closed, in `date`, and what it means, in `note`.
    if let Some(at) = s.closed_early_at {
        let instant = at.to_rfc3339_opts(chrono::SecondsFormat::Secs, true);
        let note = format!(
            "closed early, before the period ended: conversions of period {} after this instant are on the next statement",
            s.period
        );
        let mut row = vec![""; width];
        row[0] = "closed_early_at";
        row[5] = &instant;
        row[18] = &note;
        write_row(&mut w, &row, &named)?;
    }
    w.into_inner()
        .map_err(|e| RenderError::NotCanonical(format!("csv buffer: {e}")))
}

/// Writes one row of a statement CSV: its cells, then the format-17
/// cells `named` (none before format 17).
fn write_row<T: AsRef<[u8]>>(
    w: &mut csv::Writer<Vec<u8>>,
    row: &[T],
    named: &[String],
) -> Result<(), csv::Error> {
    w.write_record(
        row.iter()
            .map(AsRef::as_ref)
            .chain(named.iter().map(String::as_bytes)),
    )
}

/// The columns every row of a format-17 statement CSV ends with (QA38c
/// C-M1): the statement it is of, its payee (`<network>:<partner id>`),
/// status (`draft` or `finalised`) and version, as `summary.csv` has
/// them, so a CSV read on its own tells a draft from a final bill and
/// names the vendor.
const STATEMENT_COLUMNS: [&str; 4] = ["statement_id", "payee", "status", "version"];

/// A statement's [`STATEMENT_COLUMNS`] cells, the text ones guarded as
/// `summary.csv` guards them ([`SummaryRow`]).
fn statement_cells(s: &Statement, guard: Guard) -> Vec<String> {
    vec![
        guarded_cell(&s.statement_id, guard),
        guarded_cell(&s.payee(), guard),
        s.status.as_str().to_string(),
        s.version.to_string(),
    ]
}

/// The trace columns of a format-3 statement CSV.
const TRACE_COLUMNS: [&str; 4] = [
    "claim_revision",
    "order_source",
    "order_revision",
    "decided_at",
];

fn trace_cells(t: Option<&super::model::Trace>, guard: Guard) -> Vec<String> {
    match t {
        None => vec![String::new(); TRACE_COLUMNS.len()],
        Some(t) => vec![
            t.claim_revision.to_string(),
            guarded_cell(&opt(&t.order_source), guard),
            opt(&t.order_revision),
            t.decided_at
                .to_rfc3339_opts(chrono::SecondsFormat::AutoSi, true),
        ],
    }
}

/// The reconciliation rate columns of a format-4 statement CSV.
const FX_COLUMNS: [&str; 2] = ["claim_fx_rate", "order_fx_rate"];

fn fx_cells(t: Option<&super::model::Trace>) -> Vec<String> {
    vec![
        opt(&t.and_then(|t| t.claim_fx_rate)),
        opt(&t.and_then(|t| t.order_fx_rate)),
    ]
}

/// The columns an adjustment row of a format-5 statement CSV adds: what the
/// claim is now and what the line it corrects paid, so the correction can be
/// checked in a spreadsheet without the JSON (empty on other rows).
const ADJUSTMENT_COLUMNS: [&str; 4] = [
    "outcome",
    "original_basis",
    "original_commission",
    "previously_paid",
];

/// [`ADJUSTMENT_COLUMNS`] from format 13: what earlier statements gave for
/// the claim was credited, paid out or carried forward (QA33d L9).
const ADJUSTMENT_COLUMNS_13: [&str; 4] = [
    "outcome",
    "original_basis",
    "original_commission",
    "previously_credited",
];

/// The columns a format-13 statement CSV adds: the commission the network
/// reported for the claim and its currency (QA33d M2), what an adjusted
/// claim counts in the volume of the statement it corrects now (M3), and
/// the currency of `tolerance_applied`, the program's (L1).
const FORMAT_13_COLUMNS: [&str; 4] = [
    "network_commission",
    "network_commission_currency",
    "volume_now",
    "tolerance_currency",
];

/// The columns a format-14 statement CSV adds (QA34c): the date of the
/// `[fx]` row behind `fx_rate`, and of those behind the trace's
/// `claim_fx_rate` and `order_fx_rate`; on `not_paid` rows, why the claim
/// is not paid (`held_back`, `adjustment_waits`, `pending`, `undecided`,
/// `not_earning`) and its lock date.
const FORMAT_14_COLUMNS: [&str; 5] = [
    "fx_rate_date",
    "claim_fx_rate_date",
    "order_fx_rate_date",
    "not_paid_status",
    "lock_at",
];

fn format_13_cells(
    network_commission: Option<&plugin_api::Money>,
    volume_now: Option<rust_decimal::Decimal>,
    t: Option<&super::model::Trace>,
    program_currency: Option<&str>,
) -> Vec<String> {
    let tolerance = t.and_then(|t| t.tolerance_applied);
    vec![
        opt(&network_commission.map(|m| m.amount)),
        opt(&network_commission.map(|m| m.currency.clone())),
        opt(&volume_now),
        opt(&program_currency.filter(|_| tolerance.is_some())),
    ]
}

/// The columns a format-10 statement CSV adds: what the decision compared
/// (the claimed amount, the order's amount and refunds, in their
/// currencies, and the tolerance in the program currency), filled on line
/// and adjustment rows.
const DECISION_COLUMNS: [&str; 6] = [
    "claimed_amount",
    "claimed_currency",
    "order_amount",
    "refunded_amount",
    "order_currency",
    "tolerance_applied",
];

fn decision_cells(t: Option<&super::model::Trace>) -> Vec<String> {
    let Some(t) = t else {
        return vec![String::new(); DECISION_COLUMNS.len()];
    };
    let amount = |m: &Option<plugin_api::Money>| opt(&m.as_ref().map(|m| m.amount));
    let order_currency = t.order_amount.as_ref().or(t.refunded_amount.as_ref());
    vec![
        amount(&t.claimed_amount),
        opt(&t.claimed_amount.as_ref().map(|m| m.currency.clone())),
        amount(&t.order_amount),
        amount(&t.refunded_amount),
        opt(&order_currency.map(|m| m.currency.clone())),
        opt(&t.tolerance_applied),
    ]
}

/// Where a line's basis came from when not the claimed amount (the HTML
/// of format 10, under the basis): `order amount; claimed 301.00 EUR`;
/// for a partly refunded order, the order's net when that is the basis
/// (`order 240.80 EUR less 45.04 EUR refunded`), else the claimed amount
/// less the refunded share (`claimed 227.00 USD less the refunded share
/// (76.11 of 228.33 USD)`; QA19 NEW-1: the note gave the net's working
/// for such a basis).
fn basis_source(l: &super::model::Line) -> Option<String> {
    use crate::reconcile::model::Outcome;
    let t = l.trace.as_ref()?;
    let shown = |m: &plugin_api::Money| {
        let amount = plugin_api::currency::at_minor_scale(m.amount, &m.currency);
        format!("{amount} {}", m.currency)
    };
    match l.outcome? {
        Outcome::AmountMismatch => Some(format!(
            "order amount; claimed {}",
            shown(t.claimed_amount.as_ref()?)
        )),
        Outcome::PartiallyRefunded => {
            let (order, refunded) = (t.order_amount.as_ref()?, t.refunded_amount.as_ref()?);
            let basis = l.basis.as_ref()?;
            // The net in the basis currency, as the engine converts and
            // rounds it.
            let net = order.amount - refunded.amount;
            let net = if order.currency == basis.currency {
                Some(net)
            } else {
                t.order_fx_rate.map(|r| {
                    let digits =
                        plugin_api::currency::minor_unit_digits(&basis.currency).unwrap_or(2);
                    (net * r).round_dp_with_strategy(
                        digits,
                        rust_decimal::RoundingStrategy::MidpointAwayFromZero,
                    )
                })
            };
            if net == Some(basis.amount) {
                Some(format!(
                    "order {} less {} refunded",
                    shown(order),
                    shown(refunded)
                ))
            } else {
                Some(format!(
                    "claimed {} less the refunded share ({} of {})",
                    shown(t.claimed_amount.as_ref()?),
                    plugin_api::currency::at_minor_scale(refunded.amount, &refunded.currency),
                    shown(order)
                ))
            }
        }
        _ => None,
    }
}

/// A line's trace under its claim id in the HTML (format 3).
fn trace_html(t: Option<&super::model::Trace>) -> String {
    let Some(t) = t else {
        return String::new();
    };
    let order = match (&t.order_source, t.order_revision) {
        (Some(src), Some(rev)) => format!(", order at {} rev {rev}", esc(src)),
        _ => String::new(),
    };
    let mut fx = String::new();
    if let Some(r) = t.claim_fx_rate {
        fx.push_str(&format!("; claim converted at {r}"));
    }
    if let Some(r) = t.order_fx_rate {
        fx.push_str(&format!("; order converted at {r}"));
    }
    format!(
        "<br><small>rev {}{order}; decided {}{fx}</small>",
        t.claim_revision,
        t.decided_at
            .to_rfc3339_opts(chrono::SecondsFormat::AutoSi, true)
    )
}

/// A reason as the partner reads it (HTML from format 6): back-quoted
/// spans lose their back-quotes, and an outcome code in one is written in
/// words (`` `partially_refunded` `` → `partially refunded`); ids and rule
/// names are kept as they are. The JSON and CSV keep the reason as stored.
pub fn plain_reason(reason: &str) -> String {
    let mut out = String::with_capacity(reason.len());
    let mut parts = reason.split('`');
    if let Some(first) = parts.next() {
        out.push_str(first);
    }
    // Odd pieces are inside back-quotes (an unpaired quote just goes).
    for (i, part) in parts.enumerate() {
        if i % 2 == 0 && ALL_OUTCOMES.iter().any(|o| o.as_str() == part) {
            out.push_str(&part.replace('_', " "));
        } else {
            out.push_str(part);
        }
    }
    out
}

/// How the partner's HTML writes an instant, in the statement's timezone.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Clock {
    /// `2026-11-30 01:22` (formats 9 to 11).
    Minute,
    /// `2026-11-01 01:30:00 EDT` (format 12): the two 01:30s of a
    /// fall-back night, and two clicks in one minute, stay apart (QA32-C
    /// M1: "wins on last click (2026-11-01 01:30 vs 2026-11-01 01:30)").
    SecondAndZone,
}

impl Clock {
    /// The clock of a statement of `format_version`.
    pub fn of(format_version: u32) -> Clock {
        if format_version >= 12 {
            Clock::SecondAndZone
        } else {
            Clock::Minute
        }
    }

    fn show(self, at: chrono::DateTime<chrono_tz::Tz>) -> String {
        match self {
            Clock::Minute => at.format("%Y-%m-%d %H:%M").to_string(),
            Clock::SecondAndZone => at.format("%Y-%m-%d %H:%M:%S %Z").to_string(),
        }
    }
}

/// A reason as the partner reads it from format 9 (new-user QA16 N8):
/// [`plain_reason`], and what is Reckon's own bookkeeping is left out: an
/// order is named by its id, not `<connector>/<id>`; another claim that
/// won the order is "another claim", not its network and id; an instant is
/// shown by `clock` in the statement's timezone `tz`. The JSON and CSV keep the
/// reason as stored.
pub fn partner_reason(reason: &str, tz: chrono_tz::Tz, clock: Clock) -> String {
    let plain = plain_reason(reason);
    let mut out = String::with_capacity(plain.len());
    let mut rest = plain.as_str();
    while let Some(c) = rest.chars().next() {
        // Phrases start a word ("border " is not "order ").
        if out.chars().last().is_some_and(char::is_alphanumeric) {
            out.push(c);
            rest = &rest[c.len_utf8()..];
            continue;
        }
        if let Some(after) = rest.strip_prefix("also claimed by ") {
            if let Some(end) = after.find(", which") {
                out.push_str("also claimed by another claim");
                rest = &after[end..];
                continue;
            }
        }
        if let Some(after) = rest.strip_prefix("order ") {
            out.push_str("order ");
            rest = after;
            // `<connector>/`: a connector id, then the record's own id.
            let id_len = after
                .find(|ch: char| {
                    !(ch.is_ascii_lowercase() || ch.is_ascii_digit() || ch == '_' || ch == '-')
                })
                .unwrap_or(after.len());
            if id_len > 0 && after[id_len..].starts_with('/') {
                rest = &after[id_len + 1..];
            }
            continue;
        }
        if let Some((date, len)) = instant_at(rest, tz, clock) {
            out.push_str(&date);
            rest = &rest[len..];
            continue;
        }
        out.push(c);
        rest = &rest[c.len_utf8()..];
    }
    out
}

/// A moved claim's reason as its former partner reads it from format 10:
/// "claim moved to another partner", not the payee that got it (QA18 A5:
/// one affiliate learnt which other one got the sale).
fn another_partner(reason: String) -> String {
    match reason
        .strip_prefix("claim moved to partner ")
        .and_then(|rest| rest.find(" by the network").map(|i| &rest[i..]))
    {
        Some(tail) => format!("claim moved to another partner{tail}"),
        None => reason,
    }
}

/// An RFC 3339 UTC instant (`2026-11-30T06:22:30Z`, fractions allowed) at
/// the start of `s`: as `clock` shows it in `tz` (`2026-11-30 01:22`: two
/// click times of one day must stay apart, QA17 NEW-4), and the instant's
/// length.
fn instant_at(s: &str, tz: chrono_tz::Tz, clock: Clock) -> Option<(String, usize)> {
    let b = s.as_bytes();
    if b.len() < 20 || b[4] != b'-' || b[10] != b'T' || !b[0].is_ascii_digit() {
        return None;
    }
    let mut end = 19;
    if b.get(end) == Some(&b'.') {
        end += 1;
        while b.get(end).is_some_and(u8::is_ascii_digit) {
            end += 1;
        }
    }
    if b.get(end) != Some(&b'Z') {
        return None;
    }
    let at = chrono::DateTime::parse_from_rfc3339(s.get(..=end)?).ok()?;
    Some((clock.show(at.with_timezone(&tz)), end + 1))
}

/// How a CSV text cell is guarded against spreadsheet formulas
/// ([`guarded_cell`]).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Guard {
    /// The text as is (statements of formats 1 and 2).
    None,
    /// A `'` before text starting with `=`, `+`, `-`, `@`, a tab or a
    /// carriage return (statements of formats 3 to 15). Lossy: text that
    /// already starts with `'` is left as is, so `=x` and `'=x` are both
    /// written `'=x` (QA38c C-L2).
    Formulas,
    /// As [`Guard::Formulas`], and a `'` before text starting with `'` too
    /// (statements from format 16, and every other CSV Reckon writes):
    /// `=x` is written `'=x` and `'=x` `''=x`, so taking one `'` off a
    /// cell that starts with one always gives the text back.
    Lossless,
}

impl Guard {
    /// The guard of a statement of format `version`.
    pub fn of_format(version: u32) -> Guard {
        match version {
            0..=2 => Guard::None,
            3..=15 => Guard::Formulas,
            _ => Guard::Lossless,
        }
    }
}

/// A text cell for a CSV a spreadsheet may open: one starting with `=`,
/// `+`, `-`, `@`, a tab or a carriage return would run as a formula there
/// (a partner names itself `=HYPERLINK(...)`), so it gets a leading `'`
/// (OWASP's advice), which spreadsheets show as text; with
/// [`Guard::Lossless`] so does one starting with `'`. Amounts are never
/// passed through here: "-5.00" stays a number.
pub fn guarded_cell(s: &str, guard: Guard) -> String {
    let formula = s.starts_with(['=', '+', '-', '@', '\t', '\r']);
    let quoted = s.starts_with('\'');
    match guard {
        Guard::Formulas if formula => format!("'{s}"),
        Guard::Lossless if formula || quoted => format!("'{s}"),
        _ => s.to_owned(),
    }
}

/// [`guarded_cell`] with [`Guard::Lossless`], or the text as is when
/// `guard` is false: for the CSVs that are not statements (reports, KPI
/// tables, record exports, `held_back.csv`).
pub fn text_cell(s: &str, guard: bool) -> String {
    guarded_cell(s, if guard { Guard::Lossless } else { Guard::None })
}

fn esc(s: &str) -> String {
    let mut o = String::with_capacity(s.len());
    for c in s.chars() {
        match c {
            '&' => o.push_str("&amp;"),
            '<' => o.push_str("&lt;"),
            '>' => o.push_str("&gt;"),
            '"' => o.push_str("&quot;"),
            '\'' => o.push_str("&#39;"),
            c => o.push(c),
        }
    }
    o
}

const CSS: &str = "body{font-family:-apple-system,'Segoe UI',Helvetica,Arial,sans-serif;color:#111;margin:2rem;font-size:13px}\
h1{font-size:20px;margin:0 0 .3rem}h2{font-size:15px;margin:1.6rem 0 .4rem;border-bottom:1px solid #ccc}\
table{border-collapse:collapse;width:100%}th,td{padding:3px 6px;border-bottom:1px solid #e3e3e3;text-align:left;vertical-align:top}\
th{background:#f4f4f4;font-weight:600}td.n,th.n{text-align:right;font-variant-numeric:tabular-nums;white-space:nowrap}\
.meta td{border:none;padding:1px 12px 1px 0}.draft{color:#b00;font-weight:700}.total td{font-weight:700;border-top:2px solid #111}\
.hash{font-family:monospace;font-size:11px;word-break:break-all;color:#555}\
@media print{body{margin:1cm}h2{page-break-after:avoid}tr{page-break-inside:avoid}}";

/// The `<partner>.html` file: a printable statement for the partner.
///
/// From format 6 it is partner-facing: no audit trace under the claims
/// (it stays in the JSON and CSV), reasons in plain words
/// ([`plain_reason`]), and what earlier statements gave for an adjusted
/// claim is "Credited earlier" (paid out, or carried forward while the
/// balance was below the minimum payout). Format 7 adds a table of bonus
/// adjustments (only statements of format 7 have any). From format 8 every
/// text from outside (names, ids, reasons) has its bidirectional and
/// control characters shown as `<U+202E>` ([`crate::display_safe`]), so a
/// name cannot reorder the text around it. Format 9 gives reasons as
/// [`partner_reason`] writes them. Earlier formats are rendered exactly as
/// they were issued (their file hashes are recorded).
pub fn html_file(s: &Statement, content_hash: &str) -> String {
    let v6 = s.format_version >= 6;
    // Format 8: names and ids from outside cannot reorder the page.
    let v8 = s.format_version >= 8;
    // Format 9: reasons without Reckon's connector ids and instants.
    let v9 = s.format_version >= 9;
    // Format 10: where a basis other than the claimed amount came from.
    let v10 = s.format_version >= 10;
    // Format 12: instants to the second, with the zone's abbreviation.
    let clock = Clock::of(s.format_version);
    let tz: chrono_tz::Tz = s.timezone.parse().unwrap_or(chrono_tz::UTC);
    let e = |x: &str| {
        if v8 {
            esc(&crate::display_safe::visible(x))
        } else {
            esc(x)
        }
    };
    let trace = |t: Option<&super::model::Trace>| {
        if v6 {
            String::new()
        } else {
            trace_html(t)
        }
    };
    let cur = e(&s.currency);
    // Format 14 (QA34c M2): a rate with the date of its `[fx]` row.
    let v14 = s.format_version >= 14;
    let rate_of =
        |rate: &Option<rust_decimal::Decimal>, date: &Option<chrono::NaiveDate>| match (rate, date)
        {
            (Some(r), Some(d)) if v14 => format!("{r} (rate of {d})"),
            _ => opt(rate),
        };
    // Format 13 (QA33b L3): the FX columns name the conversion when the
    // program's currency is not the payout's.
    let fx_head = match s.volume.as_ref().map(|v| v.currency.as_str()) {
        Some(vc) if s.format_version >= 13 && vc != s.currency => {
            format!("FX {}→{cur}", e(vc))
        }
        _ => "FX".to_string(),
    };
    let mut h = String::with_capacity(4096 + s.lines.len() * 400);
    let name = s.partner_name.as_deref().unwrap_or(&s.partner_id);
    let _ = write!(
        h,
        "<!DOCTYPE html>\n<html lang=\"en\"><head><meta charset=\"utf-8\"><title>Statement {id}</title><style>{CSS}</style></head><body>\n\
<h1>Payout statement — {name}</h1>\n<table class=\"meta\">\
<tr><td>Statement</td><td>{id}</td></tr>\
<tr><td>Program</td><td>{program}</td></tr>\
<tr><td>Partner</td><td>{partner}</td></tr>\
<tr><td>Period</td><td>{period} ({start} to {end}, {tz})</td></tr>\
<tr><td>Status</td><td class=\"{status}\">{status} (version {version})</td></tr>\
<tr><td>Currency</td><td>{cur}</td></tr></table>\n",
        id = e(&s.statement_id),
        name = e(name),
        program = e(&s.program),
        partner = e(&s.payee()),
        period = e(&s.period),
        start = s.period_start,
        end = s.period_end,
        tz = e(&s.timezone),
        status = s.status.as_str(),
        version = s.version,
    );
    if s.status == Status::Draft {
        h.push_str("<p class=\"draft\">DRAFT — not for payment.</p>\n");
    }
    // Format 11 (QA31-A L4): a period finalised before it ended says so.
    if let Some(at) = s.closed_early_at {
        let _ = writeln!(
            h,
            "<p class=\"early\">Closed early, on {} ({}), before the period ended: conversions of period {} after that are on the next statement.</p>",
            clock.show(at.with_timezone(&tz)),
            e(&s.timezone),
            e(&s.period)
        );
    }
    if !s.lines.is_empty() {
        let _ = writeln!(h, "<h2>Commission</h2>\n<table><tr><th class=\"n\">#</th><th>Date</th><th>Network</th><th>Claim</th><th>Order</th><th>Event</th><th class=\"n\">Basis</th><th>Rule</th><th class=\"n\">Rate</th><th class=\"n\">{fx_head}</th><th class=\"n\">Commission</th></tr>");
        for l in &s.lines {
            let rate = match (&l.rate_percent, &l.flat_amount, &l.rate_detail) {
                (_, _, Some(d)) => e(d),
                (Some(p), _, _) => format!("{p}%"),
                (_, Some(a), _) => format!("{a} {cur} flat"),
                _ => String::new(),
            };
            let rule = match &l.override_id {
                Some(o) => format!("{} ({})", e(&l.rule_id), e(o)),
                None => e(&l.rule_id),
            };
            let note = l
                .note
                .as_deref()
                .map(|n| format!("<br><small>{}</small>", e(n)))
                .unwrap_or_default();
            let basis_from = basis_source(l)
                .filter(|_| v10)
                .map(|b| format!("<br><small>{}</small>", e(&b)))
                .unwrap_or_default();
            let _ = writeln!(
                h,
                "<tr><td class=\"n\">{}</td><td>{}</td><td>{}</td><td>{}{}</td><td>{}</td><td>{}</td><td class=\"n\">{}</td><td>{}</td><td class=\"n\">{}</td><td class=\"n\">{}</td><td class=\"n\">{}{}</td></tr>",
                l.line_no,
                l.date,
                e(&l.network),
                e(&l.claim_id),
                trace(l.trace.as_ref()),
                e(l.order_id.as_deref().unwrap_or("")),
                l.event.as_str(),
                l.basis.as_ref().map(|b| e(&b.to_string())).unwrap_or_default() + &basis_from,
                rule,
                rate,
                rate_of(&l.fx_rate, &l.fx_rate_date),
                l.commission,
                note,
            );
        }
        h.push_str("</table>\n");
    }
    if !s.adjustments.is_empty() {
        let earlier = if v6 {
            "Credited earlier"
        } else {
            "Previously paid"
        };
        let _ = writeln!(
            h,
            "<h2>Adjustments to earlier statements</h2>\n<table><tr><th class=\"n\">#</th><th>Network</th><th>Claim</th><th>Order</th><th>Refers to</th><th>Reason</th><th class=\"n\">{earlier}</th><th class=\"n\">Amount</th></tr>"
        );
        for a in &s.adjustments {
            let reason = if v10 {
                another_partner(partner_reason(&a.reason, tz, clock))
            } else if v9 {
                partner_reason(&a.reason, tz, clock)
            } else if v6 {
                plain_reason(&a.reason)
            } else {
                a.reason.clone()
            };
            // Format 13 (QA33d M4): the terms the claim is priced on now.
            let priced = match &a.rule_id {
                Some(rule) if s.format_version >= 13 => {
                    let rule = match &a.override_id {
                        Some(o) => format!("{} ({})", e(rule), e(o)),
                        None => e(rule),
                    };
                    let rate = match (&a.rate_percent, &a.flat_amount, &a.rate_detail) {
                        (_, _, Some(d)) => e(d),
                        (Some(p), _, _) => format!("{p}%"),
                        (_, Some(f), _) => format!("{f} {cur} flat"),
                        _ => String::new(),
                    };
                    let fx = a
                        .fx_rate
                        .filter(|r| *r != rust_decimal::Decimal::ONE)
                        .map(|r| format!(", {fx_head} {}", rate_of(&Some(r), &a.fx_rate_date)))
                        .unwrap_or_default();
                    format!("<br><small>priced now: {rule} {rate}{fx}</small>")
                }
                _ => String::new(),
            };
            let _ = writeln!(
                h,
                "<tr><td class=\"n\">{}</td><td>{}</td><td>{}{}</td><td>{}</td><td>{} line {}</td><td>{}{priced}</td><td class=\"n\">{}</td><td class=\"n\">{}</td></tr>",
                a.line_no,
                e(&a.network),
                e(&a.claim_id),
                trace(a.trace.as_ref()),
                e(a.order_id.as_deref().unwrap_or("")),
                e(&a.original_statement_id),
                a.original_line_no,
                e(&reason),
                a.previously_paid,
                a.amount,
            );
        }
        h.push_str("</table>\n");
        if v6 {
            h.push_str("<p><small>Credited earlier: what earlier finalised statements credited for the claim (its line and any earlier adjustments), whether it was paid out or carried forward as a balance below the minimum payout. Amount: the correction on this statement.</small></p>\n");
        }
    }
    if !s.bonus_adjustments.is_empty() {
        h.push_str("<h2>Bonus adjustments to earlier statements</h2>\n<table><tr><th class=\"n\">#</th><th>Bonus</th><th>Refers to</th><th>Reason</th><th class=\"n\">Volume now</th><th class=\"n\">Credited earlier</th><th class=\"n\">Amount</th></tr>\n");
        for a in &s.bonus_adjustments {
            let refers = match a.original_line_no {
                Some(n) => format!("{} line {n}", e(&a.original_statement_id)),
                None => e(&a.original_statement_id),
            };
            let _ = writeln!(
                h,
                "<tr><td class=\"n\">{}</td><td>{}</td><td>{refers}</td><td>{}</td><td class=\"n\">{}</td><td class=\"n\">{}</td><td class=\"n\">{}</td></tr>",
                a.line_no,
                e(&a.bonus_id),
                e(&if v9 {
                    partner_reason(&a.reason, tz, clock)
                } else {
                    plain_reason(&a.reason)
                }),
                a.current_volume,
                a.previously_paid,
                a.amount,
            );
        }
        h.push_str("</table>\n<p><small>A bonus follows the volume of the statement that paid it: when that volume changes (refunds, restated amounts), the bonus it reaches now less what was credited for it earlier is corrected here.</small></p>\n");
    }
    if !s.bonuses.is_empty() {
        let _ = writeln!(h, "<h2>Bonuses</h2>\n<table><tr><th class=\"n\">#</th><th>Bonus</th><th class=\"n\">Threshold</th><th class=\"n\">Volume</th><th class=\"n\">Rate</th><th class=\"n\">{fx_head}</th><th class=\"n\">Amount</th></tr>");
        for b in &s.bonuses {
            let rate = match (&b.percent, &b.fixed_amount) {
                (Some(p), _) => format!("{p}%"),
                (_, Some(a)) => format!("{a} {cur} fixed"),
                _ => String::new(),
            };
            let _ = writeln!(
                h,
                "<tr><td class=\"n\">{}</td><td>{}</td><td class=\"n\">{}</td><td class=\"n\">{}</td><td class=\"n\">{}</td><td class=\"n\">{}</td><td class=\"n\">{}</td></tr>",
                b.line_no,
                e(&b.bonus_id),
                b.threshold_volume,
                b.volume,
                rate,
                rate_of(&b.fx_rate, &b.fx_rate_date),
                b.amount,
            );
        }
        h.push_str("</table>\n");
    }
    // Format 14 (QA34c M4): amounts paid by hand, with why and the lines
    // they correct.
    if !s.manual_adjustments.is_empty() {
        h.push_str("<h2>Manual adjustments</h2>\n<table><tr><th class=\"n\">#</th><th>Reference</th><th>Reason</th><th>Corrects</th><th class=\"n\">Amount</th></tr>\n");
        for m in &s.manual_adjustments {
            let corrects = m
                .refers_to
                .iter()
                .map(|r| match r.rsplit_once('#') {
                    Some((id, line)) => format!("{} line {}", e(id), e(line)),
                    None => e(r),
                })
                .collect::<Vec<_>>()
                .join("<br>");
            let _ = writeln!(
                h,
                "<tr><td class=\"n\">{}</td><td>{}</td><td>{}</td><td>{corrects}</td><td class=\"n\">{}</td></tr>",
                m.line_no,
                e(&m.id),
                e(&m.reason),
                m.amount,
            );
        }
        h.push_str("</table>\n<p><small>Corrections made by hand, for what the statements could not compute (for example lines paid at a rate that was wrong at the time). They count in Adjustments below.</small></p>\n");
    }
    let t = &s.totals;
    h.push_str("<h2>Totals</h2>\n<table>\n");
    for (label, v) in [
        ("Commission", t.lines),
        ("Adjustments", t.adjustments),
        ("Bonuses", t.bonuses),
        ("Balance carried in", t.carried_in),
        ("Subtotal", t.subtotal),
        ("Minimum payout", t.minimum_payout),
        ("Carried to next statement", t.carried_out),
    ] {
        let _ = writeln!(h, "<tr><td>{label}</td><td class=\"n\">{v} {cur}</td></tr>");
    }
    // Format 13 (QA33d M2): beside the commission, what the network
    // reported for the same claims.
    for m in s
        .totals
        .network_reported
        .iter()
        .filter(|_| s.format_version >= 13)
    {
        let _ = writeln!(
            h,
            "<tr><td>Commission the network reported for these lines</td><td class=\"n\">{} {}</td></tr>",
            m.amount,
            e(&m.currency)
        );
    }
    let _ = writeln!(
        h,
        "<tr class=\"total\"><td>Total payable</td><td class=\"n\">{} {cur}</td></tr>\n</table>",
        t.total_payable
    );
    if v14 && !s.not_paid.is_empty() {
        not_paid_html(&mut h, s, &e, tz, clock);
    }
    let _ = write!(
        h,
        "<p class=\"hash\">Content hash (SHA-256 of the canonical JSON): {}</p>\n</body></html>\n",
        e(content_hash)
    );
    h
}

/// The section "Your claims not paid on this statement" of a format-14
/// HTML (QA34c M1): each of the payee's claims the statement does not
/// pay, with why in the partner's words. `e` escapes text from outside.
fn not_paid_html(
    h: &mut String,
    s: &Statement,
    e: &dyn Fn(&str) -> String,
    tz: chrono_tz::Tz,
    clock: Clock,
) {
    use super::model::NotPaidStatus;
    h.push_str("<h2>Your claims not paid on this statement</h2>\n<table><tr><th>Date</th><th>Network</th><th>Claim</th><th>Order</th><th class=\"n\">Claimed</th><th>Status</th><th>Why</th></tr>\n");
    for n in &s.not_paid {
        let claim = match (&n.claim_id, &n.bonus_id) {
            (Some(c), _) => e(c),
            (None, Some(b)) => format!("bonus {}", e(b)),
            (None, None) => String::new(),
        };
        let status = match n.status {
            NotPaidStatus::HeldBack => "Held back: payable, paid on a later statement".to_string(),
            NotPaidStatus::AdjustmentWaits => "Paid earlier; its correction waits".to_string(),
            NotPaidStatus::Pending => "Not payable yet".to_string(),
            NotPaidStatus::NotEarning => match n.outcome {
                Some(o) => format!("Earns no commission ({})", o.as_str().replace('_', " ")),
                None => "Earns no commission".to_string(),
            },
            NotPaidStatus::Undecided => match n.outcome {
                Some(crate::reconcile::model::Outcome::FxMissing) => {
                    "Not decided yet: an exchange rate is missing".to_string()
                }
                _ => "Not decided yet: its order is awaited".to_string(),
            },
        };
        let reason = match n.status {
            // What `held_back.csv` tells the operator to do is not the
            // partner's to do.
            NotPaidStatus::HeldBack | NotPaidStatus::AdjustmentWaits | NotPaidStatus::Undecided => {
                let r = n
                    .reason
                    .replace("; add it to [fx]", "")
                    .replace("; add or widen a rule", "");
                partner_reason(&r, tz, clock)
            }
            NotPaidStatus::Pending | NotPaidStatus::NotEarning => {
                another_partner(partner_reason(&n.reason, tz, clock))
            }
        };
        let _ = writeln!(
            h,
            "<tr><td>{}</td><td>{}</td><td>{claim}</td><td>{}</td><td class=\"n\">{}</td><td>{status}</td><td>{}</td></tr>",
            opt(&n.date),
            e(n.network.as_deref().unwrap_or("")),
            e(n.order_id.as_deref().unwrap_or("")),
            n.claimed_amount.as_ref().map(|m| e(&m.to_string())).unwrap_or_default(),
            e(&reason),
        );
    }
    // The sentence of statements issued before `Undecided` existed is kept,
    // so they render as issued.
    let undecided = s
        .not_paid
        .iter()
        .any(|n| n.status == NotPaidStatus::Undecided);
    h.push_str(if undecided {
        "</table>\n<p><small>These claims count in none of the totals above. A claim held back or not payable yet is paid on a later statement once it can be; one not decided yet is judged again once its order or exchange rate is in, and paid on a later statement if it earns; one that earns no commission is not paid.</small></p>\n"
    } else {
        "</table>\n<p><small>These claims count in none of the totals above. A claim held back or not payable yet is paid on a later statement once it can be; one that earns no commission is not paid.</small></p>\n"
    });
}

/// One row of `summary.csv`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SummaryRow {
    /// Payee: `<network>:<partner id>` (the bare partner id in format 1).
    pub partner_id: String,
    /// Partner name.
    pub partner_name: String,
    /// Statement id.
    pub statement_id: String,
    /// draft / finalised.
    pub status: String,
    /// Statement version.
    pub version: u32,
    /// Total payable now.
    pub total_payable: String,
    /// Currency.
    pub currency: String,
    /// Balance carried in.
    pub carried_in: String,
    /// Balance carried out.
    pub carried_out: String,
    /// Content hash.
    pub content_hash: String,
    /// Guard the text cells against formulas (statements of format 3 on).
    pub guard: bool,
    /// The statement's format version: how the text cells are guarded
    /// ([`Guard::of_format`]).
    pub format_version: u32,
}

impl SummaryRow {
    /// The summary row of a statement.
    pub fn of(s: &Statement, content_hash: &str) -> SummaryRow {
        SummaryRow {
            partner_id: s.payee(),
            partner_name: s.partner_name.clone().unwrap_or_default(),
            guard: s.format_version >= 3,
            format_version: s.format_version,
            statement_id: s.statement_id.clone(),
            status: s.status.as_str().into(),
            version: s.version,
            total_payable: s.totals.total_payable.to_string(),
            currency: s.currency.clone(),
            carried_in: s.totals.carried_in.to_string(),
            carried_out: s.totals.carried_out.to_string(),
            content_hash: content_hash.into(),
        }
    }
}

/// `summary.csv` for accounts payable: one row per partner, in partner order.
pub fn summary_csv(rows: &[SummaryRow]) -> Result<Vec<u8>, RenderError> {
    let mut w = csv::WriterBuilder::new().from_writer(Vec::new());
    w.write_record([
        "partner_id",
        "partner_name",
        "amount",
        "currency",
        "carried_in",
        "carried_out",
        "status",
        "version",
        "statement_id",
        "content_hash",
    ])?;
    for r in rows {
        let t = |x: &str| guarded_cell(x, Guard::of_format(r.format_version));
        w.write_record([
            &t(&r.partner_id),
            &t(&r.partner_name),
            &r.total_payable,
            &r.currency,
            &r.carried_in,
            &r.carried_out,
            &r.status,
            &r.version.to_string(),
            &t(&r.statement_id),
            &r.content_hash,
        ])?;
    }
    w.into_inner()
        .map_err(|e| RenderError::NotCanonical(format!("csv buffer: {e}")))
}

/// `held_back.csv`: what a run could not settle, one row each, so the
/// period's files say it: `payee`, `claim` (`network/claim id`, or `bonus
/// <id>`), `reason`, `kind`. Kind `held_back`: a claim (or bonus) payable
/// but left out (no FX rate, no rule, no basis), owed and not yet paid.
/// Kind `adjustment_waits` (QA33d M5: a refund after payment was in no file
/// of the period, only a warning): a line or bonus already paid whose data
/// changed but that cannot be priced today; it stays as credited and its
/// adjustment is on the first statement generated once it can be priced.
/// `None` when there is neither.
pub fn held_back_csv(
    skipped: &[super::statement::Skipped],
) -> Result<Option<Vec<u8>>, RenderError> {
    if skipped.is_empty() {
        return Ok(None);
    }
    let mut w = csv::WriterBuilder::new().from_writer(Vec::new());
    w.write_record(["payee", "claim", "reason", "kind"])?;
    // Those held back first, as the file listed them before it had kinds.
    for s in skipped
        .iter()
        .filter(|s| !s.waits)
        .chain(skipped.iter().filter(|s| s.waits))
    {
        w.write_record([
            text_cell(&s.partner_id, true),
            text_cell(&s.claim, true),
            text_cell(&s.reason, true),
            if s.waits {
                "adjustment_waits".into()
            } else {
                "held_back".into()
            },
        ])?;
    }
    w.into_inner()
        .map(Some)
        .map_err(|e| RenderError::NotCanonical(format!("csv buffer: {e}")))
}

/// The cells of one `summary.csv` row as written (text cells keep their
/// formula guard), read back by [`read_summary_csv`].
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct SummaryCells {
    /// `partner_id` column.
    pub partner_id: String,
    /// `amount` column (total payable).
    pub amount: String,
    /// `carried_out` column.
    pub carried_out: String,
    /// `status` column.
    pub status: String,
    /// `version` column, when it is a number.
    pub version: Option<u32>,
    /// `content_hash` column.
    pub content_hash: String,
}

/// The rows of a `summary.csv` ([`summary_csv`]'s output), columns found
/// by header name. `None` when the header lacks one of the columns read;
/// a row that cannot be read is skipped.
pub fn read_summary_csv(bytes: &[u8]) -> Option<Vec<SummaryCells>> {
    let mut r = csv::Reader::from_reader(bytes);
    let headers = r.headers().ok()?.clone();
    let col = |name: &str| headers.iter().position(|h| h == name);
    let (partner, amount, carried, status, version, hash) = (
        col("partner_id")?,
        col("amount")?,
        col("carried_out")?,
        col("status")?,
        col("version")?,
        col("content_hash")?,
    );
    let cell = |row: &csv::StringRecord, i: usize| row.get(i).unwrap_or_default().to_string();
    Some(
        r.records()
            .flatten()
            .map(|row| SummaryCells {
                partner_id: cell(&row, partner),
                amount: cell(&row, amount),
                carried_out: cell(&row, carried),
                status: cell(&row, status),
                version: row.get(version).and_then(|v| v.parse().ok()),
                content_hash: cell(&row, hash),
            })
            .collect(),
    )
}

/// The file stem of a statement's files.
pub fn statement_stem(s: &Statement) -> String {
    payee_stem(&s.payee())
}

/// The file stems of one period directory's statements, asked for in the
/// order they are written and recorded (payee order): [`statement_stem`]
/// of each, except that from format 16 a stem equal, ignoring case, to one
/// given before (`awin.abc` after `awin.ABC`: one file on a case-insensitive
/// filesystem, macOS's or a Windows share's, which one would overwrite)
/// gets `~` and the first 16 hex digits of the SHA-256 of its payee key,
/// as a stem too long for a name does (QA38c C-L3). Stems are ASCII
/// ([`encode_id`]), so ASCII case is all there is to fold. A stem that
/// collides with none keeps the name it always had; statements of earlier
/// formats keep [`statement_stem`] (their names are recorded).
#[derive(Debug, Default)]
pub struct PeriodStems {
    /// The stems given so far, in lower case.
    folded: std::collections::HashSet<String>,
}

impl PeriodStems {
    /// The stem of `s`, the next statement of the period.
    pub fn stem(&mut self, s: &Statement) -> String {
        self.next(&s.payee(), s.format_version)
    }

    fn next(&mut self, payee: &str, format_version: u32) -> String {
        let stem = payee_stem(payee);
        if format_version < 16 || self.folded.insert(stem.to_ascii_lowercase()) {
            return stem;
        }
        // `~` is never in a stem that was not given a hash (`encode_id`
        // writes it `%7E`), and the hash is of this payee alone.
        let max = MAX_NAME_BYTES - LONGEST_EXTENSION.len();
        let hashed = if stem.len() + HASH_SUFFIX_BYTES <= max {
            format!("{stem}~{}", id_hash(payee))
        } else {
            shortened(&stem, payee)
        };
        self.folded.insert(hashed.to_ascii_lowercase());
        hashed
    }
}

/// The longest file or directory name that ext4, XFS, btrfs, APFS and NTFS
/// take, in bytes.
pub const MAX_NAME_BYTES: usize = 255;

/// The longest extension a statement file has (`.html`).
const LONGEST_EXTENSION: &str = ".html";

/// How much of a stem too long for a name is kept before `~` and the hash
/// (at most; less when a `%XX` would be cut): 200 + 17 bytes, well under
/// [`MAX_NAME_BYTES`] with room for an extension or a tool's suffix.
const SHORTENED_PREFIX_BYTES: usize = 200;

/// The file stem of a payee key: `<network>.<partner stem>` (connector ids
/// hold no `.`, so stems of different payees differ); a format-1 key (no
/// network) is the partner stem alone. A stem that would make a file name
/// longer than [`MAX_NAME_BYTES`] is shortened ([`fit_name`]).
pub fn payee_stem(payee: &str) -> String {
    let stem = match super::model::split_payee(payee) {
        (Some(n), partner) => format!("{n}.{}", encode_id(partner)),
        (None, partner) => encode_id(partner),
    };
    fit_name(stem, payee, MAX_NAME_BYTES - LONGEST_EXTENSION.len())
}

/// The directory name of an id (a program's directory; a period's under
/// `set-aside`): [`encode_id`], shortened by [`fit_name`] when longer than
/// [`MAX_NAME_BYTES`].
pub fn file_stem(id: &str) -> String {
    fit_name(encode_id(id), id, MAX_NAME_BYTES)
}

/// An id written safely for a file name: every byte outside
/// `[A-Za-z0-9_-]` (and `.`, except leading) as `%XX`, so any id maps to
/// one safe, distinct name; `summary` is escaped so it cannot clash with
/// `summary.csv`.
fn encode_id(id: &str) -> String {
    let mut o = String::with_capacity(id.len());
    for (i, b) in id.bytes().enumerate() {
        let keep = b.is_ascii_alphanumeric() || b == b'_' || b == b'-' || (b == b'.' && i > 0);
        if keep {
            o.push(b as char);
        } else {
            let _ = write!(o, "%{b:02X}");
        }
    }
    if o == "summary" {
        o.replace_range(0..1, "%73");
    }
    if o.is_empty() {
        o.push_str("%00");
    }
    o
}

/// `stem` as it is when it has at most `max` bytes (every name that fits
/// keeps the name it always had); else its first bytes up to
/// [`SHORTENED_PREFIX_BYTES`], cut before a `%XX` rather than inside one,
/// then `~` and the first 16 hex digits of the SHA-256 of `id` (QA10 L6: a
/// partner id of 250 `/` made a 755-byte name, and `ENAMETOOLONG` failed
/// the statements of the whole period). [`encode_id`] writes `~` as
/// `%7E`, so a shortened stem never equals one that was not; two ids
/// sharing a long prefix differ in their hashes.
fn fit_name(stem: String, id: &str, max: usize) -> String {
    if stem.len() <= max {
        return stem;
    }
    shortened(&stem, id)
}

/// `~` and [`id_hash`]: what a stem is given to tell it apart.
const HASH_SUFFIX_BYTES: usize = 17;

/// The first 16 hex digits of the SHA-256 of `id`.
fn id_hash(id: &str) -> String {
    sha256_hex(id.as_bytes())[..16].to_owned()
}

/// `stem`'s first bytes up to [`SHORTENED_PREFIX_BYTES`], cut before a
/// `%XX` rather than inside one, then `~` and [`id_hash`] of `id`.
fn shortened(stem: &str, id: &str) -> String {
    let bytes = stem.as_bytes();
    let mut cut = 0;
    while cut < bytes.len() {
        let step = if bytes[cut] == b'%' { 3 } else { 1 };
        if cut + step > SHORTENED_PREFIX_BYTES {
            break;
        }
        cut += step;
    }
    format!("{}~{}", &stem[..cut], id_hash(id))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn file_stems_are_safe_and_distinct() {
        assert_eq!(file_stem("p-1"), "p-1");
        assert_eq!(file_stem("impact/123"), "impact%2F123");
        assert_eq!(file_stem("../x"), "%2E.%2Fx");
        assert_eq!(file_stem("summary"), "%73ummary");
        assert_ne!(file_stem("a b"), file_stem("a%20b"));
    }

    /// QA10 L6: a stem too long for a file name is cut and given a hash of
    /// the whole id; every stem that fits is as it always was.
    #[test]
    fn a_stem_too_long_for_a_file_name_is_shortened_with_a_hash_of_the_id() {
        // The longest that fits is unchanged: 250 bytes + `.html` = 255.
        let fits = format!("awin:{}", "a".repeat(245));
        assert_eq!(payee_stem(&fits), format!("awin.{}", "a".repeat(245)));
        let over = format!("awin:{}", "a".repeat(246));
        let short = payee_stem(&over);
        assert_eq!(
            short,
            format!(
                "awin.{}~{}",
                "a".repeat(195),
                &sha256_hex(over.as_bytes())[..16]
            )
        );

        // 250 `/` (750 bytes encoded): cut between two `%2F`.
        let slashes = format!("impact:{}", "/".repeat(250));
        let stem = payee_stem(&slashes);
        assert_eq!(stem.len(), "impact.".len() + 3 * 64 + 17, "{stem}");
        // The same on every platform and run (README's example).
        assert_eq!(
            stem,
            format!("impact.{}~8c3e5199ff401717", "%2F".repeat(64))
        );
        // 30 CJK characters are 90 bytes, 270 once encoded.
        let cjk = format!("cj:{}", "合".repeat(30));
        let stem = payee_stem(&cjk);
        assert!(
            stem.len() + ".html".len() <= 255 && stem.contains('~'),
            "{stem}"
        );
        let (before, _) = stem.split_once('~').unwrap();
        assert_eq!(before.len() % 3, "cj.".len() % 3, "cut on a %XX: {stem}");

        // Deterministic, and ids sharing a long prefix get distinct names.
        let a = format!("awin:{}-1", "p".repeat(300));
        let b = format!("awin:{}-2", "p".repeat(300));
        assert_eq!(payee_stem(&a), payee_stem(&a.clone()));
        assert_ne!(payee_stem(&a), payee_stem(&b));
        // An id that spells a shortened stem is encoded, so cannot clash.
        let spelled = payee_stem(&a).replacen('.', ":", 1);
        assert_ne!(payee_stem(&spelled), payee_stem(&a));

        // A format-1 key and a program directory: the same rule.
        assert!(payee_stem(&"x".repeat(300)).contains('~'));
        assert_eq!(file_stem(&"x".repeat(255)), "x".repeat(255));
        let dir = file_stem(&"x".repeat(256));
        assert_eq!(dir.len(), 200 + 17);
    }

    /// QA38c C-L2: `=x` and `'=x` (and `-5`, `'-5`) were written alike;
    /// the lossless guard also quotes a leading `'`, so taking one `'` off
    /// a cell that starts with one gives the text back. Statements of
    /// formats 3 to 15 keep the guard they were issued with.
    #[test]
    fn the_lossless_guard_tells_every_two_texts_apart() {
        let texts = [
            "=x", "'=x", "''=x", "-5", "'-5", "'", "''", "x", "'x", "@a", "\tb", "",
        ];
        let unguard = |c: &str| c.strip_prefix('\'').unwrap_or(c).to_owned();
        for t in texts {
            let cell = guarded_cell(t, Guard::Lossless);
            let safe = !cell.starts_with(['=', '+', '-', '@', '\t', '\r']);
            assert!(safe, "{t:?} → {cell:?}");
            let reads = if cell.starts_with('\'') {
                unguard(&cell)
            } else {
                cell.clone()
            };
            assert_eq!(reads, t, "{cell:?}");
            assert_eq!(text_cell(t, true), cell);
            assert_eq!(text_cell(t, false), t);
        }
        assert_eq!(guarded_cell("'=x", Guard::Lossless), "''=x");
        assert_eq!(guarded_cell("'x", Guard::Lossless), "''x");
        // As issued before format 16: lossy; before format 3: none.
        assert_eq!(Guard::of_format(15), Guard::Formulas);
        assert_eq!(guarded_cell("=x", Guard::Formulas), "'=x");
        assert_eq!(guarded_cell("'=x", Guard::Formulas), "'=x");
        assert_eq!(Guard::of_format(2), Guard::None);
        assert_eq!(guarded_cell("=x", Guard::None), "=x");
        assert_eq!(Guard::of_format(16), Guard::Lossless);
        assert_eq!(
            Guard::of_format(super::super::model::FORMAT_VERSION),
            Guard::Lossless
        );
    }

    /// QA38c C-L3: `awin:ABC` and `awin:abc` had the stems `awin.ABC` and
    /// `awin.abc`, one file on a case-insensitive filesystem. From format
    /// 16 every stem after the first of those equal ignoring case gets a
    /// hash of its payee; every other stem is as it always was.
    #[test]
    fn stems_equal_ignoring_case_are_told_apart_from_format_16() {
        let mut stems = PeriodStems::default();
        let given: Vec<String> = ["awin:ABC", "awin:Abc", "awin:abc", "awin:abd", "cj:abc"]
            .iter()
            .map(|p| stems.next(p, 16))
            .collect();
        assert_eq!(
            given,
            [
                "awin.ABC".to_owned(),
                format!("awin.Abc~{}", id_hash("awin:Abc")),
                format!("awin.abc~{}", id_hash("awin:abc")),
                "awin.abd".to_owned(),
                "cj.abc".to_owned(),
            ]
        );
        let folded: std::collections::HashSet<String> =
            given.iter().map(|s| s.to_ascii_lowercase()).collect();
        assert_eq!(folded.len(), given.len());
        // A name that needs its hash still fits, cut as a long one is.
        let long = format!("awin:{}", "a".repeat(245));
        let first = stems.next(&long.to_uppercase().replacen("AWIN", "awin", 1), 16);
        assert_eq!(first.len(), 250);
        let second = stems.next(&long, 16);
        assert_eq!(
            second,
            format!("awin.{}~{}", "a".repeat(195), id_hash(&long))
        );
        // Statements of earlier formats keep the names recorded for them.
        let mut old = PeriodStems::default();
        assert_eq!(old.next("awin:ABC", 15), "awin.ABC");
        assert_eq!(old.next("awin:abc", 15), "awin.abc");
    }

    #[test]
    fn a_moved_claim_does_not_name_the_partner_that_got_it() {
        let stored = "claim moved to partner `everflow:202` by the network (`matched`: order id matches); the commission paid here is taken back and paid to that partner";
        assert_eq!(
            another_partner(partner_reason(stored, chrono_tz::UTC, Clock::Minute)),
            "claim moved to another partner by the network (matched: order id matches); the commission paid here is taken back and paid to that partner"
        );
        assert_eq!(another_partner("basis 1 → 2".into()), "basis 1 → 2");
    }

    #[test]
    fn partner_reasons_leave_out_connector_ids_other_claims_and_instants() {
        let ny: chrono_tz::Tz = "America/New_York".parse().unwrap();
        assert_eq!(
            partner_reason(
                "basis 120.00 → 90.00; repriced to 7.20 (`partially_refunded`: order erp_orders/E-2 was partly refunded (30.00 of 120.00 USD))",
                ny,
                Clock::Minute
            ),
            "basis 120.00 → 90.00; repriced to 7.20 (partially refunded: order E-2 was partly refunded (30.00 of 120.00 USD))"
        );
        // 06:22 UTC on the 30th is 01:22 in New York; 02:00 UTC on the 1st
        // is 21:00 on the 30th.
        assert_eq!(
            partner_reason(
                "claim is now network reversed: the network reversed the claim (2026-11-30T06:22:30Z); was 2026-12-01T02:00:00.250Z",
                ny,
                Clock::Minute
            ),
            "claim is now network reversed: the network reversed the claim (2026-11-30 01:22); was 2026-11-30 21:00"
        );
        // Format 12 (QA32-C M1): the two 01:30s of New York's fall-back
        // night, 01:30 EDT and 01:30 EST, and seconds.
        assert_eq!(
            partner_reason(
                "wins on last click (2026-11-01T06:30:00Z (conversion time) vs 2026-11-01T05:30:00Z (conversion time)); was 2026-12-01T02:00:07.250Z",
                ny,
                Clock::SecondAndZone
            ),
            "wins on last click (2026-11-01 01:30:00 EST (conversion time) vs 2026-11-01 01:30:00 EDT (conversion time)); was 2026-11-30 21:00:07 EST"
        );
        assert_eq!(
            partner_reason(
                "order shop/gid://shopify/Order/7 is also claimed by impact/1000.4.5, which wins on last click",
                chrono_tz::UTC,
                Clock::Minute
            ),
            "order gid://shopify/Order/7 is also claimed by another claim, which wins on last click"
        );
        // Words that only contain a phrase, and ids without a connector,
        // stay as they are.
        assert_eq!(
            partner_reason(
                "border a/b; order 123 (no slash); 2026-11-30",
                chrono_tz::UTC,
                Clock::Minute
            ),
            "border a/b; order 123 (no slash); 2026-11-30"
        );
    }

    #[test]
    fn plain_reasons_lose_back_quotes_and_name_outcomes_in_words() {
        assert_eq!(
            plain_reason("basis 200.00 → 150.00; repriced to 15.00 (`partially_refunded`: order partly refunded)"),
            "basis 200.00 → 150.00; repriced to 15.00 (partially refunded: order partly refunded)"
        );
        assert_eq!(
            plain_reason(
                "event sale → lead; rule `cps_x` → `lead`; no order matches order id `O_1`"
            ),
            "event sale → lead; rule cps_x → lead; no order matches order id O_1"
        );
        assert_eq!(plain_reason("unpaired ` quote"), "unpaired  quote");
        assert_eq!(plain_reason("plain"), "plain");
    }
}
