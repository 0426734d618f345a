//! Where a claim was paid (QA33d M1): every statement line and adjustment
//! of one claim across a program's finalised periods (from the statement
//! book's canonical JSON of each finalised statement) and its current
//! drafts (their JSON files), with the net the finalised periods credited.
//! The library behind `reckon statements trace`.
//!
//! Cost: one pass over the program's `final` records; a statement is
//! parsed only when its canonical JSON holds `"claim_id":<the claim>`
//! (a substring test), so the pass reads the program's finalised
//! statements once and decodes a handful. Drafts are read from their
//! files the same way. Nothing is written.
use super::book::{self, StatementBook};
use super::lifecycle::{period_dir, period_records, PayoutError};
use super::model::{PaidClaim, Status};
use rust_decimal::Decimal;
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;
use std::path::Path;

/// What an entry of a claim's trace is.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum EntryKind {
    /// A statement line: the claim paid for the first time (or, after it
    /// moved, to its new partner).
    Line,
    /// A correction of an earlier line that leaves something credited.
    Adjustment,
    /// A correction that takes back everything credited so far.
    TakeBack,
}

impl EntryKind {
    /// `line`, `adjustment`, `take-back`.
    pub fn as_str(self) -> &'static str {
        match self {
            EntryKind::Line => "line",
            EntryKind::Adjustment => "adjustment",
            EntryKind::TakeBack => "take-back",
        }
    }
}

/// One line or adjustment of the claim.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct TraceEntry {
    /// Period name.
    pub period: String,
    /// Draft or finalised.
    pub status: Status,
    /// The statement's version.
    pub version: u32,
    /// The statement id (`<program>/<period>/<network>:<partner>`).
    pub statement_id: String,
    /// Its payee (`<network>:<partner>`).
    pub payee: String,
    /// The line number on that statement.
    pub line_no: u32,
    /// Line, adjustment or take-back.
    pub kind: EntryKind,
    /// The commission (line) or correction (adjustment), payout currency.
    pub amount: Decimal,
    /// The statement's payout currency.
    pub currency: String,
    /// The claim's outcome on this entry, when the statement records it.
    pub outcome: Option<String>,
    /// A line: its rule, override, rate and note; an adjustment: its
    /// reason.
    pub reason: String,
    /// An adjustment: the line it corrects, `<statement id>#<line>`.
    pub refers_to: Option<String>,
}

/// Every entry of one claim, and what finalised periods credited for it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ClaimTrace {
    /// Program id.
    pub program: String,
    /// The claim's network (claims connector id).
    pub network: String,
    /// The claim id at the network.
    pub claim_id: String,
    /// Entries of finalised periods, then of drafts, each in period order,
    /// then statement and line order.
    pub entries: Vec<TraceEntry>,
    /// Net credited by finalised periods, per payee, per currency (a
    /// moved claim nets to 0 for the partner it left).
    pub net_finalised: Vec<PayeeNet>,
    /// The `paid` ledger's entry for the claim: who it is paid to now and
    /// what finalised statements credited in total (none when no
    /// finalised line pays it now).
    pub ledger: Option<LedgerEntry>,
    /// Draft statements whose file could not be read (missing, not JSON).
    pub unread_drafts: Vec<String>,
}

/// The net credited to one payee in one currency.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct PayeeNet {
    /// Payee key.
    pub payee: String,
    /// Currency.
    pub currency: String,
    /// Sum of the finalised entries' amounts.
    pub amount: Decimal,
}

/// The ledger's view of a paid claim.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct LedgerEntry {
    /// Payee key it is paid to.
    pub payee: String,
    /// The statement of the line that paid it, `<statement id>#<line>`.
    pub paid_on: String,
    /// Credited in total by finalised statements.
    pub paid_total: Decimal,
}

/// The fields of a statement a trace reads (any format; unknown fields are
/// skipped, so a later format reads too).
#[derive(Deserialize)]
struct StatementView {
    statement_id: String,
    version: u32,
    status: Status,
    period: String,
    currency: String,
    #[serde(default)]
    network: Option<String>,
    partner_id: String,
    #[serde(default)]
    lines: Vec<LineView>,
    #[serde(default)]
    adjustments: Vec<AdjustmentView>,
}

#[derive(Deserialize)]
struct LineView {
    line_no: u32,
    network: String,
    claim_id: String,
    rule_id: String,
    #[serde(default)]
    override_id: Option<String>,
    #[serde(default)]
    rate_percent: Option<Decimal>,
    #[serde(default)]
    flat_amount: Option<Decimal>,
    #[serde(default)]
    basis: Option<plugin_api::Money>,
    commission: Decimal,
    #[serde(default)]
    note: Option<String>,
    #[serde(default)]
    outcome: Option<String>,
}

#[derive(Deserialize)]
struct AdjustmentView {
    line_no: u32,
    network: String,
    claim_id: String,
    outcome: String,
    reason: String,
    original_statement_id: String,
    original_line_no: u32,
    previously_paid: Decimal,
    amount: Decimal,
}

/// The claim's entries of one statement's canonical JSON, when it names
/// the claim (a substring test first: most statements do not).
fn entries_of(
    json: &str,
    needle: &str,
    network: &str,
    claim: &str,
) -> Result<Vec<TraceEntry>, serde_json::Error> {
    if !json.contains(needle) {
        return Ok(Vec::new());
    }
    let s: StatementView = serde_json::from_str(json)?;
    let payee = match &s.network {
        Some(n) => super::model::payee_key(n, &s.partner_id),
        None => s.partner_id.clone(),
    };
    let entry = |line_no, kind, amount, outcome, reason, refers_to| TraceEntry {
        period: s.period.clone(),
        status: s.status,
        version: s.version,
        statement_id: s.statement_id.clone(),
        payee: payee.clone(),
        line_no,
        kind,
        amount,
        currency: s.currency.clone(),
        outcome,
        reason,
        refers_to,
    };
    let mut out = Vec::new();
    for l in s
        .lines
        .iter()
        .filter(|l| l.network == network && l.claim_id == claim)
    {
        let mut reason = format!("rule {}", l.rule_id);
        if let Some(o) = &l.override_id {
            reason.push_str(&format!(", override {o}"));
        }
        match (l.rate_percent, l.flat_amount) {
            (Some(p), _) => {
                reason.push_str(&format!(", {} %", p.normalize()));
                if let Some(b) = &l.basis {
                    reason.push_str(&format!(" of {} {}", b.amount, b.currency));
                }
            }
            (None, Some(a)) => reason.push_str(&format!(", {a} flat")),
            (None, None) => {}
        }
        if let Some(n) = &l.note {
            reason.push_str(&format!("; {n}"));
        }
        out.push(entry(
            l.line_no,
            EntryKind::Line,
            l.commission,
            l.outcome.clone(),
            reason,
            None,
        ));
    }
    for a in s
        .adjustments
        .iter()
        .filter(|a| a.network == network && a.claim_id == claim)
    {
        let kind = if !a.amount.is_zero() && (a.previously_paid + a.amount).is_zero() {
            EntryKind::TakeBack
        } else {
            EntryKind::Adjustment
        };
        out.push(entry(
            a.line_no,
            kind,
            a.amount,
            Some(a.outcome.clone()),
            a.reason.clone(),
            Some(format!(
                "{}#{}",
                a.original_statement_id, a.original_line_no
            )),
        ));
    }
    Ok(out)
}

/// Every line and adjustment of claim `claim` of `network` on the
/// statements of `program`: finalised ones from the book, drafts from
/// their files under `output_dir`.
pub fn trace_claim(
    b: &dyn StatementBook,
    output_dir: &Path,
    program: &str,
    network: &str,
    claim: &str,
) -> Result<ClaimTrace, PayoutError> {
    let needle = format!(
        "\"claim_id\":{}",
        serde_json::to_string(claim).unwrap_or_default()
    );
    let mut records = period_records(b, program)?;
    records.sort_by(|a, c| (a.period_start, &a.period).cmp(&(c.period_start, &c.period)));
    let order: BTreeMap<&str, usize> = records
        .iter()
        .enumerate()
        .map(|(i, r)| (r.period.as_str(), i))
        .collect();
    let mut finalised = Vec::new();
    let prefix = book::prefix(&["final", program]);
    b.each_prefix(&prefix, &mut |k, v| {
        let Some(json) = v.get("canonical_json").and_then(|j| j.as_str()) else {
            return Err(book::BookError::Corrupt {
                key: book::printable(&k),
                message: "no canonical_json".into(),
            });
        };
        let found =
            entries_of(json, &needle, network, claim).map_err(|e| book::BookError::Corrupt {
                key: book::printable(&k),
                message: e.to_string(),
            })?;
        finalised.extend(found);
        Ok(())
    })?;
    let rank = |e: &TraceEntry| order.get(e.period.as_str()).copied().unwrap_or(usize::MAX);
    finalised.sort_by(|a, c| {
        (rank(a), &a.statement_id, a.line_no).cmp(&(rank(c), &c.statement_id, c.line_no))
    });
    let mut net: BTreeMap<(String, String), Decimal> = BTreeMap::new();
    for e in &finalised {
        *net.entry((e.payee.clone(), e.currency.clone()))
            .or_default() += e.amount;
    }
    let mut entries = finalised;
    let mut unread_drafts = Vec::new();
    for rec in records.iter().filter(|r| r.status == Status::Draft) {
        let dir = period_dir(output_dir, program, &rec.period);
        for p in &rec.partners {
            let file = dir.join(format!("{}.json", p.stem));
            let found = std::fs::read_to_string(&file)
                .map_err(|e| e.to_string())
                .and_then(|j| entries_of(&j, &needle, network, claim).map_err(|e| e.to_string()));
            match found {
                Ok(mut found) => {
                    found.sort_by_key(|e| e.line_no);
                    entries.extend(found);
                }
                Err(why) => unread_drafts.push(format!("{}: {why}", file.display())),
            }
        }
    }
    let ledger_key = book::key(&["paid", program, network, claim]);
    let ledger = match b.get(&ledger_key)? {
        Some(v) => {
            let paid: PaidClaim = book::decode(&ledger_key, v)?;
            Some(LedgerEntry {
                payee: super::model::payee_key(network, &paid.partner_id),
                paid_on: format!("{}#{}", paid.statement_id, paid.line_no),
                paid_total: paid.paid_total,
            })
        }
        None => None,
    };
    Ok(ClaimTrace {
        program: program.to_owned(),
        network: network.to_owned(),
        claim_id: claim.to_owned(),
        entries,
        net_finalised: net
            .into_iter()
            .map(|((payee, currency), amount)| PayeeNet {
                payee,
                currency,
                amount,
            })
            .collect(),
        ledger,
        unread_drafts,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    const STATEMENT: &str = r#"{"format_version":12,"statement_id":"acme/2026-11/net:p1","version":1,"status":"finalised","program":"acme","network":"net","partner_id":"p1","partner_name":null,"period":"2026-11","period_start":"2026-11-01","period_end":"2026-11-30","timezone":"UTC","currency":"EUR","volume":null,"lines":[{"line_no":1,"network":"net","claim_id":"C-1","order_id":null,"date":"2026-11-02","occurred_at":"2026-11-02T10:00:00Z","event":"sale","basis":{"amount":"80.00","currency":"EUR"},"rule_id":"cps","override_id":null,"rate_percent":"11","flat_amount":null,"rate_detail":null,"fx_rate":"1","commission":"8.80","note":null}],"adjustments":[{"line_no":2,"network":"net","claim_id":"C-10","order_id":null,"outcome":"refunded","reason":"claim is now refunded","original_statement_id":"acme/2026-10/net:p1","original_line_no":4,"original_commission":"40.00","previously_paid":"40.00","original_basis":"400","current_basis":null,"amount":"-40.00"}],"bonuses":[],"totals":{}}"#;

    /// A claim id that is a prefix of another's (`C-1` of `C-10`) finds
    /// only its own entries; a full take-back is named as one.
    #[test]
    fn entries_are_the_claims_own_and_a_full_correction_is_a_take_back() {
        let needle = |c: &str| format!("\"claim_id\":{}", serde_json::to_string(c).unwrap());
        let one = entries_of(STATEMENT, &needle("C-1"), "net", "C-1").unwrap();
        assert_eq!(one.len(), 1);
        assert_eq!(one[0].kind, EntryKind::Line);
        assert_eq!(one[0].reason, "rule cps, 11 % of 80.00 EUR");
        let ten = entries_of(STATEMENT, &needle("C-10"), "net", "C-10").unwrap();
        assert_eq!(ten.len(), 1);
        assert_eq!(ten[0].kind, EntryKind::TakeBack);
        assert_eq!(ten[0].refers_to.as_deref(), Some("acme/2026-10/net:p1#4"));
        assert!(entries_of(STATEMENT, &needle("C-2"), "net", "C-2")
            .unwrap()
            .is_empty());
        assert!(entries_of(STATEMENT, &needle("C-1"), "other", "C-1")
            .unwrap()
            .is_empty());
    }
}
