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
use super::book::PeriodRecord;
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
    /// The rows of `held_back.csv` naming the claim, of the latest
    /// finalised period and the drafts after it: payable but left off
    /// those statements (no FX rate, no rule in force), or paid and its
    /// adjustment waiting. Left out of JSON when none.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub held_back: Vec<HeldBack>,
}

/// A row of a period's `held_back.csv` naming the claim.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct HeldBack {
    /// Period name.
    pub period: String,
    /// Draft or finalised.
    pub status: Status,
    /// The payee (`<network>:<partner>`) as the row gives it.
    pub payee: String,
    /// Why, as the row gives it.
    pub reason: String,
    /// `held_back` (payable, left off the period's statements) or
    /// `adjustment_waits` (paid; its correction waits until it can be
    /// priced).
    pub kind: String,
}

/// The rows naming `network/claim` in the `held_back.csv` of the latest
/// finalised period and of the drafts after it (`records` in period
/// order): the statements a claim is paid on next. An older period's rows
/// are history: a later period settled or listed the claim again.
fn held_back_rows(records: &[PeriodRecord], network: &str, claim: &str) -> Vec<HeldBack> {
    let name = format!("{network}/{claim}");
    let from = records
        .iter()
        .rposition(|r| r.status == Status::Finalised)
        .unwrap_or(0);
    let mut out = Vec::new();
    for rec in &records[from..] {
        let Some(text) = &rec.held_back_csv else {
            continue;
        };
        let mut rows = csv::ReaderBuilder::new()
            .flexible(true)
            .from_reader(text.as_bytes());
        for row in rows.records().flatten() {
            let cell = |i: usize| unguarded(row.get(i).unwrap_or_default()).to_owned();
            if cell(1) != name {
                continue;
            }
            out.push(HeldBack {
                period: rec.period.clone(),
                status: rec.status,
                payee: cell(0),
                reason: cell(2),
                // Files written before rows had a kind list claims held
                // back only.
                kind: Some(cell(3))
                    .filter(|k| !k.is_empty())
                    .unwrap_or_else(|| "held_back".to_owned()),
            });
        }
    }
    out
}

/// A CSV text cell without the `'` [`super::render::text_cell`] puts
/// before text a spreadsheet would run as a formula.
fn unguarded(cell: &str) -> &str {
    match cell.strip_prefix('\'') {
        Some(rest) if rest.starts_with(['=', '+', '-', '@', '\t', '\r']) => rest,
        _ => cell,
    }
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
    #[serde(default)]
    rate_detail: Option<String>,
    #[serde(default)]
    fx_rate: Option<Decimal>,
    /// The date of the `[fx]` row behind `fx_rate`, in statements that
    /// record it.
    #[serde(default)]
    fx_rate_date: Option<chrono::NaiveDate>,
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

/// What priced a line, as its statement gives it: the rule and override,
/// the rate (a marginal tier split as its slices), the basis and, when the
/// basis is converted into the statement's currency, the rate (and its
/// date, when the statement records it), then the line's note.
fn line_reason(l: &LineView, currency: &str) -> String {
    let mut reason = format!("rule {}", l.rule_id);
    if let Some(o) = &l.override_id {
        reason.push_str(&format!(", override {o}"));
    }
    let basis = l
        .basis
        .as_ref()
        .map(|b| format!("{} {}", b.amount, b.currency));
    match (&l.rate_detail, l.rate_percent, l.flat_amount) {
        (Some(d), _, _) => {
            reason.push_str(&format!(", {d}"));
            if let Some(b) = &basis {
                reason.push_str(&format!(" (of {b})"));
            }
        }
        (None, Some(p), _) => {
            reason.push_str(&format!(", {} %", p.normalize()));
            if let Some(b) = &basis {
                reason.push_str(&format!(" of {b}"));
            }
        }
        (None, None, Some(a)) => reason.push_str(&format!(", {a} {currency} flat")),
        (None, None, None) => {}
    }
    // A basis in the statement's currency is not converted (its rate is 1).
    let from = l.basis.as_ref().map(|b| b.currency.as_str());
    if let Some(rate) = l
        .fx_rate
        .filter(|r| from.map_or(*r != Decimal::ONE, |f| f != currency))
    {
        let pair = from.map_or_else(|| "FX".to_owned(), |f| format!("FX {f}→{currency}"));
        reason.push_str(&format!(", {pair} {rate}"));
        if let Some(day) = l.fx_rate_date {
            reason.push_str(&format!(" (rate of {day})"));
        }
    }
    if let Some(n) = &l.note {
        reason.push_str(&format!("; {n}"));
    }
    reason
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
        let reason = line_reason(l, &s.currency);
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
        held_back: held_back_rows(&records, network, claim),
    })
}

/// What `statements trace` answers for a claim on no statement: Reckon's
/// decision `d` (its outcome, whether it is payable, its reason) and why
/// it is not on a statement yet. A payable claim that `held` lists is
/// held back there (its period and reason); one that is not is paid by
/// the next drafts. An earning claim not payable gives its lock date and
/// why (`lock_pending`, `awaiting_network_approval`, as `reconcile report`
/// names them, from the instant the program's last run judged it at,
/// `judged_at`), or that the lock date has passed since it was judged
/// (before `now`), so the next run makes it payable.
pub fn unpaid_answer(
    d: &crate::reconcile::model::Decision,
    judged_at: Option<chrono::DateTime<chrono::Utc>>,
    now: chrono::DateTime<chrono::Utc>,
    require_network_approval: bool,
    held: &[HeldBack],
) -> String {
    use crate::reconcile::report::NotPayable;
    let when =
        |t: chrono::DateTime<chrono::Utc>| t.to_rfc3339_opts(chrono::SecondsFormat::AutoSi, true);
    let holding = held.iter().any(|h| h.kind == "held_back");
    let mut text = format!(
        "Reckon's decision for it: {}, {}: {}",
        d.outcome.as_str(),
        match (d.payable, holding) {
            (true, true) => "payable, but held back (not paid on a statement yet)",
            (true, false) => "payable (not paid on a statement yet: the next drafts of its period pay it, or, once that period is finalised (a claim converted after an early close), of a later one)",
            (false, _) => "not payable",
        },
        d.reason
    );
    if let Some(lock) = d.lock_at.filter(|_| !d.payable && d.outcome.earns()) {
        // Judged before its lock date, which has passed since: the next
        // run judges it again (a run judges every claim whose lock date
        // came). Without the run's instant, `decided_at` (when the
        // judgement was first reached) stands in for it.
        let judged = judged_at.unwrap_or(d.decided_at);
        let approval = if require_network_approval {
            " once the network has approved it (the program has require_network_approval)"
        } else {
            ""
        };
        if lock <= now && judged < lock {
            text.push_str(&format!(
                "; its lock date {} has passed since it was judged (at {}, not payable then: lock_pending): `reckon reconcile` or the daemon's next run judges it again and makes it payable{approval}",
                when(lock),
                when(judged),
            ));
        } else {
            match NotPayable::of(d, judged_at) {
                Some(NotPayable::LockPending) => text.push_str(&format!(
                    "; not_payable_reason lock_pending: its lock date is {} (the claim may still change until then); the first run after it makes it payable{approval}",
                    when(lock)
                )),
                Some(NotPayable::AwaitingNetworkApproval) => text.push_str(&format!(
                    "; not_payable_reason awaiting_network_approval: its lock date {} has passed, but the program pays only claims the network approved (require_network_approval) and the network has not approved it yet",
                    when(lock)
                )),
                None => text.push_str(&format!("; its lock date is {}", when(lock))),
            }
        }
    }
    for h in held {
        text.push_str(&format!("; {}", h.sentence()));
    }
    text
}

impl HeldBack {
    /// The row in words: which statements hold the claim back, and why.
    pub fn sentence(&self) -> String {
        format!(
            "the {} statements of {} {} (their held_back.csv, payee {}): {}",
            self.status.as_str(),
            self.period,
            if self.kind == "adjustment_waits" {
                "leave its adjustment waiting"
            } else {
                "hold it back"
            },
            self.payee,
            self.reason
        )
    }
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

    fn record(period: &str, status: Status, held: Option<&str>) -> PeriodRecord {
        PeriodRecord {
            held_back_csv: held.map(Into::into),
            ..crate::test_support::period_record(period, status)
        }
    }

    /// The rows of the latest finalised period and the drafts after it
    /// name the claim (a cell read without the formula guard; a file
    /// without kinds lists claims held back); an older period's rows are
    /// history.
    #[test]
    fn held_back_rows_are_those_of_the_statements_that_pay_next() {
        let old = "payee,claim,reason,kind\nnet:p1,net/-7,old reason,held_back\n";
        let last = "payee,claim,reason\n'=p2,net/-7,no USD→EUR rate\nnet:p3,net/-70,other\n";
        let draft = "payee,claim,reason,kind\nnet:p1,net/-7,waits,adjustment_waits\n";
        let records = [
            record("2026-09", Status::Finalised, Some(old)),
            record("2026-10", Status::Finalised, Some(last)),
            record("2026-11", Status::Draft, Some(draft)),
        ];
        let rows = held_back_rows(&records, "net", "-7");
        let got: Vec<_> = rows
            .iter()
            .map(|h| (h.period.as_str(), h.payee.as_str(), h.kind.as_str()))
            .collect();
        assert_eq!(
            got,
            [
                ("2026-10", "=p2", "held_back"),
                ("2026-11", "net:p1", "adjustment_waits")
            ]
        );
        assert_eq!(
            rows[1].sentence(),
            "the draft statements of 2026-11 leave its adjustment waiting (their held_back.csv, payee net:p1): waits"
        );
    }

    /// A line converted into the statement's currency gives the rate and
    /// its date; a marginal split its slices.
    #[test]
    fn a_converted_tiered_line_gives_its_split_and_rate() {
        let json = STATEMENT
            .replace(
                r#""basis":{"amount":"80.00","currency":"EUR"}"#,
                r#""basis":{"amount":"400.00","currency":"USD"}"#,
            )
            .replace(r#""rate_percent":"11""#, "\"rate_percent\":null")
            .replace(
                r#""rate_detail":null"#,
                r#""rate_detail":"5% × 200.00 + 8% × 200.00""#,
            )
            .replace(
                r#""fx_rate":"1""#,
                r#""fx_rate":"0.91","fx_rate_date":"2026-11-01""#,
            );
        let needle = format!("\"claim_id\":{}", serde_json::to_string("C-1").unwrap());
        let one = entries_of(&json, &needle, "net", "C-1").unwrap();
        assert_eq!(
            one[0].reason,
            "rule cps, 5% × 200.00 + 8% × 200.00 (of 400.00 USD), FX USD→EUR 0.91 (rate of 2026-11-01)"
        );
    }
}
