//! The statement document: what a partner is paid for one period and why,
//! line by line.
//!
//! These types are serialised as the statement's canonical JSON: fields in
//! declaration order, compact, every decimal as a string, no timestamps of
//! generation (so regenerating a finalised statement reproduces its bytes).
//! Add fields only together with a new [`FORMAT_VERSION`].

use chrono::{DateTime, NaiveDate, Utc};
use plugin_api::{EventType, Money};
use rust_decimal::Decimal;
use serde::{Deserialize, Serialize};

use crate::reconcile::model::Outcome;

/// Version of the statement file format. 2 added `network` (a payee is one
/// partner of one network); 3 added each line's and adjustment's `trace`
/// (the claim and order revisions and the decision time it was computed
/// from) and CSV cells guarded against spreadsheet formulas. Statements of
/// earlier versions have neither and are reproduced byte for byte as they
/// were. 4 adds to the trace the exchange rates reconciliation converted
/// the basis with (`claim_fx_rate`, `order_fx_rate`, when the claim's or
/// order's currency is not the program's), and their CSV columns. 5 adds
/// to the CSV's adjustment rows the claim's outcome and the corrected line's
/// original basis, original commission and what was paid for it so far
/// (the JSON and HTML had them already). 6 changes only the HTML, which is
/// for the partner: no audit trace (claim and order revisions, decision
/// times, reconciliation rates: they stay in the JSON and CSV), reasons in
/// plain words (no back-ticks, outcomes as words), and "Credited earlier"
/// instead of "Previously paid" over `previously_paid` (a finalised
/// statement below the minimum payout credited its lines without paying
/// them: they were carried). The JSON and CSV of format 6 are those of
/// format 5 but for `format_version`. 7 adds `bonus_adjustments`: a bonus
/// of an earlier finalised statement follows that statement's volume as its
/// lines are repriced (taken back when no longer reached, paid when newly
/// reached, a percent bonus rescaled), with `bonus_adjustment` rows in the
/// CSV and a table in the HTML; `totals.adjustments` counts them. A
/// statement without one has the JSON, CSV and HTML of format 6 but for
/// `format_version`. 8 changes only the HTML: the bidirectional and control
/// characters of every text from outside (partner name and id, claim and
/// order ids, reasons) are shown as `<U+202E>`, so a name cannot reorder
/// the text around it (QA10 L6). The JSON and CSV of format 8 are those
/// of format 7 but for `format_version`, and keep every value as sent.
/// 9 changes only the HTML: adjustment reasons name an order by its id
/// (not `<connector>/<id>`), another claim that won an order as "another
/// claim", and instants as date and minute in the statement's timezone
/// (`render::partner_reason`, new-user QA16 N8); JSON and CSV are format
/// 8's but for `format_version`. 10 adds what a line's basis was taken
/// from (QA18 A1: an auditor could not tell why 240.80 was paid on a claim
/// of 301.00): each line's `outcome` (`matched`, `amount_mismatch`,
/// `partially_refunded`), and in every trace the claimed amount, the
/// order's amount and refunds and the tolerance applied; the CSV fills
/// `outcome` on line rows and adds [`render`]'s decision columns, the HTML
/// says under a basis that is not the claimed amount what it is, and a
/// moved claim's HTML reason no longer names the partner that got it.
/// 11 adds `closed_early_at` (QA31-A L4): the instant a statement
/// finalised with `--early`, before its period ended, was closed; its
/// period's later conversions are on the next statement. The CSV has a
/// `closed_early_at` row after the totals and the HTML a "Closed early"
/// note. A statement not closed early has the JSON, CSV and HTML of
/// format 10 but for `format_version`.
/// 12 (QA32d) writes a CSV `bonus_adjustment` row's original volume,
/// original bonus and previously paid under `original_basis`,
/// `original_commission` and `previously_paid`, with the decision columns
/// empty (formats 10 and 11 put them under `refunded_amount`,
/// `order_currency` and `tolerance_applied`, and render so as issued: F1).
/// Its statements are built with two fixes of content that the version
/// tells apart for a reader of the JSON: an adjustment's `order_id` is the
/// order its `trace` matched (before 12 it was the corrected line's, also
/// when the network had restated the claim's order since), and its reason
/// says "order id \`O9\` → \`O23\`" when that differs from the line's (F3); a
/// marginal tier split's slices have the program currency's minor-unit
/// digits (`5% × 500.00`, not the config's `500`; F6). Its HTML shows an
/// instant (in reasons, and the closed-early note) to the second with the
/// zone's abbreviation, `2026-11-01 01:30:00 EDT`, so the two 01:30s of a
/// fall-back night differ (QA32c M1; [`super::render::Clock`]). A statement
/// without a bonus adjustment renders its CSV as format 11 would.
/// 13 (QA33d M2–M5, L1, L7, L9; QA33b L2, L3) answers "why paid X and not
/// the Y the network reported" and lets every adjustment be recomputed from
/// the file: each line and adjustment carries the commission the network
/// reported for the claim (`network_commission`) and the totals the sums of
/// it per currency (`network_reported`); an adjustment of a claim still
/// earning for the payee says how it is priced now (`rule_id`,
/// `override_id`, `rate_percent`, `flat_amount`, `rate_detail`, `fx_rate`:
/// the terms the line is priced on, as a line gives them) and every
/// adjustment what its claim counts in the volume of the statement it
/// corrects now (`volume_now`: 0 for a claim moved to another partner,
/// refunded or reversed, whatever basis its decision has). Its trace's
/// `tolerance_applied` is cut to the program currency's minor unit (an
/// amount at that unit is within it exactly when it was within the exact
/// tolerance). A flat line's adjustment gives the basis the line was
/// printed with as `original_basis` (it did not scale the commission). The
/// CSV adds the columns `network_commission`, `network_commission_currency`,
/// `volume_now` and `tolerance_currency`, fills the pricing cells of
/// adjustment rows, writes `total_network_reported` rows and names the
/// credited-so-far column `previously_credited` (it was `previously_paid`,
/// and counted amounts carried forward, not paid out); the HTML's FX
/// columns name the conversion (`FX EUR→USD`) and its totals the
/// commission the network reported for the lines. Formats up to 12 render
/// as issued.
/// 14 (QA34c M1, M2) dates every exchange rate a statement shows: each
/// line, adjustment, bonus and bonus adjustment carries `fx_rate_date`, the
/// date of the `[fx]` row behind its `fx_rate` (a Saturday's claim is
/// priced at the Friday's rate, up to `max_age_days` old), and each trace
/// `claim_fx_rate_date` / `order_fx_rate_date`, the rows behind the
/// reconciliation rates (from the decision, when it recorded them). And a
/// statement lists the payee's claims it does not pay (`not_paid`, a
/// [`NotPaid`] each): those held back on it (its rows of `held_back.csv`,
/// adjustments that wait included), and the payee's claims dated in the
/// period that are not payable yet (lock date, network approval) or earn
/// nothing (duplicate, no order, refunded, ...), each with its reason.
/// Totals are unchanged. The CSV adds the columns `fx_rate_date`,
/// `claim_fx_rate_date`, `order_fx_rate_date`, `not_paid_status` and
/// `lock_at`, and `not_paid` rows; the HTML shows "(rate of <date>)"
/// beside a rate and a section "Your claims not paid on this statement".
/// A statement of format 13 or earlier has none of them and renders as
/// issued. Format 14 also adds `manual_adjustments` (QA34c M4, absent
/// when there are none): the amounts `[[programs.commission.
/// manual_adjustments]]` pays the payee on the statement of their period,
/// each with its id, reason and the lines it corrects; `totals.adjustments`
/// counts them. The CSV has a `manual_adjustment` row for each (the id in
/// `rule_id`, the reason in `note`, the lines in `refers_to`) and the HTML
/// a section "Manual adjustments".
/// 15 (QA38c C-L1) separates a manual adjustment's references in its CSV
/// `refers_to` cell with a newline (one per line, as the HTML lists them),
/// not a space: a partner id may hold a space, never a control character
/// (nor may a reference: [`super::config::Reference`]). JSON, HTML and
/// every other CSV cell are format 14's but for `format_version`; a
/// format-14 statement renders as issued.
/// 16 (QA38c C-L2) guards the CSV's text cells losslessly
/// ([`super::render::Guard::Lossless`]): a cell that starts with `'` gets
/// a `'` before it too, as one starting with `=`, `+`, `-`, `@`, a tab or
/// a carriage return does, so `=x` and `'=x` are written `'=x` and `''=x`
/// (format 15 wrote both `'=x`); so does the period's `summary.csv` for
/// its format-16 rows. JSON and HTML are format 15's but for
/// `format_version`, and a statement whose text cells start with no `'`
/// has format 15's CSV; a format-15 statement renders as issued.
/// And (QA38c C-L3) from format 16 a period's file stems equal ignoring
/// case (`awin.ABC`, `awin.abc`) are told apart by a hash of the payee on
/// all but the first in payee order (`render::PeriodStems`); stems of
/// earlier formats are as recorded.
/// 17 (QA38c C-M1) adds four columns at the end of the CSV, filled on
/// every row: the statement's `statement_id`, `payee` (`<network>:<partner
/// id>`), `status` and `version`, as `summary.csv` has them
/// (`render::STATEMENT_COLUMNS`): a CSV read on its own names its payee
/// and statement, and a draft's CSV differs from the finalised one. JSON and
/// HTML are format 16's but for `format_version`; a format-16 statement
/// renders as issued.
pub const FORMAT_VERSION: u32 = 17;

/// The payee key of a network's partner: `<network>:<partner id>`. Partner
/// ids are the network's own, so the same id on two networks is two payees.
/// Connector ids never contain `:`, so the first `:` splits the key.
pub fn payee_key(network: &str, partner_id: &str) -> String {
    format!("{network}:{partner_id}")
}

/// Splits a payee key into (network, partner id); a key from before format
/// 2 (no network) is `(None, partner id)`.
pub fn split_payee(key: &str) -> (Option<&str>, &str) {
    match key.split_once(':') {
        Some((n, p)) if is_connector_id(n) => (Some(n), p),
        _ => (None, key),
    }
}

fn is_connector_id(s: &str) -> bool {
    !s.is_empty()
        && s.bytes()
            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'_' || b == b'-')
}

/// Draft or final.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Status {
    /// Replaced at every generation; not for payment.
    Draft,
    /// Frozen: immutable, hashed, recorded in the store; pay from this.
    Finalised,
}

impl Status {
    /// `draft` / `finalised`.
    pub fn as_str(self) -> &'static str {
        match self {
            Status::Draft => "draft",
            Status::Finalised => "finalised",
        }
    }
}

/// One partner's statement for one period of one program.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Statement {
    /// [`FORMAT_VERSION`].
    pub format_version: u32,
    /// `<program>/<period>/<network>:<partner>` (format 1:
    /// `<program>/<period>/<partner>`): stable across versions.
    pub statement_id: String,
    /// 1 for the first generation of the period, +1 for each regeneration;
    /// never changes once finalised.
    pub version: u32,
    /// Draft or finalised.
    pub status: Status,
    /// Program id.
    pub program: String,
    /// The network (claims connector id) the partner belongs to; absent in
    /// format 1, which keyed partners by id alone.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub network: Option<String>,
    /// Partner id at that network.
    pub partner_id: String,
    /// Partner display name, if known.
    pub partner_name: Option<String>,
    /// Period name (`2026-11`).
    pub period: String,
    /// First day of the period.
    pub period_start: NaiveDate,
    /// Last day of the period (inclusive).
    pub period_end: NaiveDate,
    /// When the period was finalised early (`--early`, before its end):
    /// the instant it was closed. Conversions of the period after it are
    /// on the next statement. Format 11; absent otherwise.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub closed_early_at: Option<DateTime<Utc>>,
    /// Timezone the dates are in.
    pub timezone: String,
    /// Payout currency of every amount below except bases and volume.
    pub currency: String,
    /// The partner's payable volume (sum of the bases of `lines`), in the
    /// program currency; drives tiers and bonuses.
    pub volume: Option<Money>,
    /// Payable claims paid for the first time.
    pub lines: Vec<Line>,
    /// Corrections of claims paid on earlier finalised statements.
    pub adjustments: Vec<Adjustment>,
    /// Corrections of the bonuses of earlier finalised statements whose
    /// volume changed (format 7; absent when there are none).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub bonus_adjustments: Vec<BonusAdjustment>,
    /// Bonuses reached in the period.
    pub bonuses: Vec<BonusLine>,
    /// Amounts the program's config pays this payee on this period's
    /// statement by hand, with why (format 14; absent when there are
    /// none): corrections Reckon cannot compute, such as a rule that was
    /// wrong when lines were paid. `totals.adjustments` counts them.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub manual_adjustments: Vec<ManualAdjustment>,
    /// The sums.
    pub totals: Totals,
    /// The payee's claims this statement does not pay, with why (format
    /// 14; absent when there are none): held back on it, not payable yet,
    /// or earning nothing. They count in no total.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub not_paid: Vec<NotPaid>,
}

/// Why a claim of the payee is not paid on a statement ([`NotPaid`]).
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum NotPaidStatus {
    /// Payable but left out of this statement (no FX rate for its date,
    /// no rule in force, no basis): its row of `held_back.csv`. Paid by
    /// the first statement generated once the cause is fixed.
    HeldBack,
    /// Paid earlier; its data changed but it cannot be priced today, so it
    /// stays as credited and its adjustment waits (`held_back.csv` kind
    /// `adjustment_waits`).
    AdjustmentWaits,
    /// Earning, but not payable yet: its lock date has not passed, or the
    /// network has not approved it.
    Pending,
    /// Earns nothing: duplicate, no order, refunded, reversed, rejected
    /// (and, on statements generated before 2026-12-02, the two of
    /// `Undecided`).
    NotEarning,
    /// Not judged for good yet: awaiting its order (within the grace
    /// period) or an exchange rate into the program currency. Judged again
    /// when it comes, and paid if it earns (QA36b M1: the partner read
    /// "Earns no commission (fx missing)" and Reckon's own "add it to
    /// [fx]").
    Undecided,
}

impl NotPaidStatus {
    /// snake_case name as used in files.
    pub fn as_str(self) -> &'static str {
        match self {
            NotPaidStatus::HeldBack => "held_back",
            NotPaidStatus::AdjustmentWaits => "adjustment_waits",
            NotPaidStatus::Pending => "pending",
            NotPaidStatus::NotEarning => "not_earning",
            NotPaidStatus::Undecided => "undecided",
        }
    }
}

/// A claim (or bonus) of the payee that a statement does not pay, and why
/// (format 14): its claims dated in the period that it does not pay, and
/// claims of earlier periods it holds back.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct NotPaid {
    /// Why in one word.
    pub status: NotPaidStatus,
    /// The claim's network (none for a bonus).
    pub network: Option<String>,
    /// The claim's id at the network (none for a bonus).
    pub claim_id: Option<String>,
    /// A bonus held back (its id), instead of a claim.
    pub bonus_id: Option<String>,
    /// The matched order id, if any.
    pub order_id: Option<String>,
    /// Conversion date in the statement's timezone.
    pub date: Option<NaiveDate>,
    /// The claim's outcome.
    pub outcome: Option<Outcome>,
    /// A pending claim's lock date: when it can no longer change, payable
    /// from then on (network approval aside); none for the others.
    pub lock_at: Option<DateTime<Utc>>,
    /// The amount the network claimed, in its currency.
    pub claimed_amount: Option<Money>,
    /// Why, in a sentence: `held_back.csv`'s reason for a claim held back,
    /// the decision's for one that earns nothing.
    pub reason: String,
}

/// A payable claim priced by a rule.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Line {
    /// Line number, unique within the statement (lines, then adjustments,
    /// then bonus adjustments, then bonuses, then manual adjustments).
    pub line_no: u32,
    /// The network (connector id) the claim came from.
    pub network: String,
    /// The claim's id at the network.
    pub claim_id: String,
    /// The matched order id.
    pub order_id: Option<String>,
    /// Conversion date in the statement's timezone.
    pub date: NaiveDate,
    /// Conversion time (UTC).
    pub occurred_at: DateTime<Utc>,
    /// Event type.
    pub event: EventType,
    /// Commission basis in the program currency.
    pub basis: Option<Money>,
    /// The rule that priced the line.
    pub rule_id: String,
    /// The per-partner override applied, if any.
    pub override_id: Option<String>,
    /// Percentage applied (percent and tiered rules).
    pub rate_percent: Option<Decimal>,
    /// Amount per event (flat rules), payout currency.
    pub flat_amount: Option<Decimal>,
    /// How a marginal-tier line was split, e.g. `5% × 200.00 + 7% × 50.00`.
    pub rate_detail: Option<String>,
    /// FX rate program currency → payout currency used (percent and tiered
    /// rules).
    pub fx_rate: Option<Decimal>,
    /// The date of the `[fx]` row behind `fx_rate` (format 14): the
    /// line's date, or up to `max_age_days` before it; none when no row
    /// was needed (one currency).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub fx_rate_date: Option<NaiveDate>,
    /// Commission, rounded to the payout currency's minor unit.
    pub commission: Decimal,
    /// A remark, e.g. that a cap cut the line.
    pub note: Option<String>,
    /// What the line was computed from (format 3).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub trace: Option<Trace>,
    /// The claim's outcome, which says where the basis came from (format
    /// 10): the claimed amount (`matched`), the order's (`amount_mismatch`)
    /// or the order's net of refunds (`partially_refunded`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub outcome: Option<crate::reconcile::model::Outcome>,
    /// The commission the network reported for the claim, in its currency
    /// (format 13): what the partner saw at the network, beside what this
    /// line pays.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub network_commission: Option<Money>,
}

/// The inputs of a line or adjustment, for an auditor to find them: the
/// reconciliation decision it used and the record revisions that decision
/// judged (`reckon records export` shows a record's current revision).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Trace {
    /// Revision of the claim (1 = as first stored).
    pub claim_revision: u32,
    /// Connector id of the matched order.
    pub order_source: Option<String>,
    /// Revision of the matched order.
    pub order_revision: Option<u32>,
    /// When reconciliation made the decision (UTC).
    pub decided_at: DateTime<Utc>,
    /// The rate that converted the claimed amount into the program
    /// currency, when it was in another (format 4).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub claim_fx_rate: Option<Decimal>,
    /// The rate that converted the order's amount and refunds into the
    /// program currency, when it was in another (format 4).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub order_fx_rate: Option<Decimal>,
    /// The date of the `[fx]` row behind `claim_fx_rate` (format 14; none
    /// for decisions judged before reconciliation recorded it).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub claim_fx_rate_date: Option<NaiveDate>,
    /// The date of the `[fx]` row behind `order_fx_rate` (format 14).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub order_fx_rate_date: Option<NaiveDate>,
    /// The amount the network claimed, in its currency (format 10).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub claimed_amount: Option<Money>,
    /// The matched order's amount, in its currency (format 10).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub order_amount: Option<Money>,
    /// What was refunded of the order, in its currency (format 10).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub refunded_amount: Option<Money>,
    /// The amount tolerance the claim was compared with, in the program
    /// currency: max(absolute, percent × order amount) (format 10).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub tolerance_applied: Option<Decimal>,
}

/// `m` with at least its currency's minor-unit digits, as statements write
/// amounts (a network's `301.0` reads `301.00`; QA21: the CSV and JSON
/// printed it as sent, the HTML and the report padded it).
fn minor_scale(m: &Money) -> Money {
    let amount = plugin_api::currency::at_minor_scale(m.amount, &m.currency);
    Money::new(amount, m.currency.clone())
}

impl Trace {
    /// The trace of a decision. A rate is kept only where a currency was
    /// converted (the same-currency rate 1 says nothing), as in the
    /// discrepancy report; the rates and the claim and order revisions
    /// reproduce the basis even after `[fx]` is restated.
    pub fn of(d: &crate::reconcile::model::Decision) -> Trace {
        let program = d.basis.as_ref().map(|b| b.currency.as_str());
        let converted = |m: &Option<Money>| {
            m.as_ref()
                .is_some_and(|m| program.is_some_and(|p| p != m.currency))
        };
        Trace {
            claim_revision: d.claim.revision,
            order_source: d.order.as_ref().map(|o| o.source.clone()),
            order_revision: d.order.as_ref().map(|o| o.revision),
            decided_at: d.decided_at,
            claim_fx_rate: d.fx_rate.filter(|_| converted(&d.claimed_amount)),
            order_fx_rate: d.order_fx_rate.filter(|_| converted(&d.order_amount)),
            claim_fx_rate_date: d
                .inputs
                .fx_rate_date
                .filter(|_| d.fx_rate.is_some() && converted(&d.claimed_amount)),
            order_fx_rate_date: d
                .inputs
                .order_fx_rate_date
                .filter(|_| d.order_fx_rate.is_some() && converted(&d.order_amount)),
            claimed_amount: d.claimed_amount.as_ref().map(minor_scale),
            order_amount: d.order_amount.as_ref().map(minor_scale),
            refunded_amount: d.refunded_amount.as_ref().map(minor_scale),
            tolerance_applied: d.inputs.tolerance_applied,
        }
    }
}

impl Trace {
    /// The trace with its `tolerance_applied` cut to `currency`'s minor
    /// unit (format 13, QA33d L1: 1.1 USD × 0.909090909091 read
    /// `1.00000000000010`). Cut toward zero, not rounded: the compared
    /// amounts are at that unit, so one is within the cut tolerance exactly
    /// when it was within the exact one.
    pub fn tolerance_in(mut self, currency: Option<&str>) -> Trace {
        if let (Some(t), Some(c)) = (self.tolerance_applied, currency) {
            let digits = plugin_api::currency::minor_unit_digits(c).unwrap_or(2);
            let cut = t.round_dp_with_strategy(digits, rust_decimal::RoundingStrategy::ToZero);
            self.tolerance_applied = Some(plugin_api::currency::at_minor_scale(cut, c));
        }
        self
    }
}

/// A correction of a line on an earlier finalised statement.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Adjustment {
    /// Line number within this statement.
    pub line_no: u32,
    /// Network of the claim.
    pub network: String,
    /// Claim id.
    pub claim_id: String,
    /// Order id: from format 12 the order the claim's current decision
    /// matched (the one `trace` names), else, when it matches none now, the
    /// order the corrected line was paid for. Before 12 always the latter.
    pub order_id: Option<String>,
    /// The claim's outcome now.
    pub outcome: Outcome,
    /// Why, in a sentence.
    pub reason: String,
    /// The statement that first paid the claim.
    pub original_statement_id: String,
    /// Its line number there.
    pub original_line_no: u32,
    /// The commission of that line.
    pub original_commission: Decimal,
    /// What finalised statements credited the partner for the claim so far
    /// (original line plus earlier adjustments). Credited, not necessarily
    /// paid out: a statement below the minimum payout carried its total
    /// forward (the name is kept: it is a field of the canonical JSON; the
    /// CSV of format 13 names its column `previously_credited`).
    pub previously_paid: Decimal,
    /// The basis the original line used. Before format 13 none for a flat
    /// (per-event) line, whose commission does not scale with it; from 13
    /// the basis it was printed with (its `flat_amount` priced it).
    pub original_basis: Option<Decimal>,
    /// The basis now.
    pub current_basis: Option<Decimal>,
    /// The correction (negative: clawback), payout currency.
    pub amount: Decimal,
    /// What the correction was computed from (format 3).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub trace: Option<Trace>,
    /// What the claim counts in the volume of the statement it corrects
    /// now, program currency (format 13): its basis while it earns for this
    /// payee, 0 once it no longer does (refunded, reversed, moved to
    /// another partner), so the "volume now" of a bonus adjustment is the
    /// sum of these and of the unchanged lines' bases.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub volume_now: Option<Decimal>,
    /// The rule that prices the claim now (format 13; none when it no
    /// longer earns for this payee): the terms its line was paid on while
    /// its event and date are those it was paid with.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub rule_id: Option<String>,
    /// The per-partner override applied now (format 13).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub override_id: Option<String>,
    /// Percentage applied now (format 13).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub rate_percent: Option<Decimal>,
    /// Amount per event now, flat rules (format 13).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub flat_amount: Option<Decimal>,
    /// The marginal tier split now (format 13).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub rate_detail: Option<String>,
    /// FX rate program → payout currency it is priced at now (format 13).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub fx_rate: Option<Decimal>,
    /// The date of the `[fx]` row behind `fx_rate` (format 14).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub fx_rate_date: Option<NaiveDate>,
    /// The commission the network reports for the claim now, in its
    /// currency (format 13).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub network_commission: Option<Money>,
}

/// A bonus reached in the period.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct BonusLine {
    /// Line number within this statement.
    pub line_no: u32,
    /// Bonus id from the config.
    pub bonus_id: String,
    /// The volume threshold (program currency).
    pub threshold_volume: Decimal,
    /// The partner's volume in the period (program currency).
    pub volume: Decimal,
    /// Percentage of the volume, for percent bonuses.
    pub percent: Option<Decimal>,
    /// Fixed amount (payout currency), for fixed bonuses.
    pub fixed_amount: Option<Decimal>,
    /// FX rate program → payout currency on the period's last day (percent
    /// bonuses).
    pub fx_rate: Option<Decimal>,
    /// The date of the `[fx]` row behind `fx_rate` (format 14).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub fx_rate_date: Option<NaiveDate>,
    /// The bonus, rounded to the payout currency's minor unit.
    pub amount: Decimal,
}

/// A correction of a bonus of an earlier finalised statement (format 7):
/// that statement's volume changed since (its lines were repriced), so the
/// bonus it reaches now differs from what it was credited for the bonus.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct BonusAdjustment {
    /// Line number within this statement.
    pub line_no: u32,
    /// Bonus id.
    pub bonus_id: String,
    /// Why, in a sentence.
    pub reason: String,
    /// The statement whose bonus is corrected.
    pub original_statement_id: String,
    /// Its bonus line there; none when that statement did not reach the
    /// bonus (it is reached now).
    pub original_line_no: Option<u32>,
    /// The volume threshold (program currency).
    pub threshold_volume: Decimal,
    /// Percentage of the volume, for percent bonuses.
    pub percent: Option<Decimal>,
    /// Fixed amount (payout currency), for fixed bonuses.
    pub fixed_amount: Option<Decimal>,
    /// FX rate program → payout currency on that statement's last day
    /// (percent bonuses).
    pub fx_rate: Option<Decimal>,
    /// The date of the `[fx]` row behind `fx_rate`, when that row still
    /// gives it (format 14).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub fx_rate_date: Option<NaiveDate>,
    /// That statement's volume when the bonus was first judged: its bonus
    /// line's `volume`, else the volume its lines were paid on (program
    /// currency).
    pub original_volume: Decimal,
    /// That statement's volume now, its lines repriced with today's data.
    pub current_volume: Decimal,
    /// The amount of the original bonus line (0 without one).
    pub original_amount: Decimal,
    /// What finalised statements credited the partner for this bonus of
    /// that statement so far (original line plus earlier bonus adjustments).
    pub previously_paid: Decimal,
    /// The correction (negative: taken back), payout currency.
    pub amount: Decimal,
}

/// A manual adjustment (format 14): an amount the program's config pays
/// the payee on the statement of one period
/// (`[[programs.commission.manual_adjustments]]`), once.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ManualAdjustment {
    /// Line number within this statement (after the bonuses).
    pub line_no: u32,
    /// Its id in the config.
    pub id: String,
    /// The amount (negative: taken back), payout currency.
    pub amount: Decimal,
    /// Why, as the config writes it.
    pub reason: String,
    /// The statement lines it corrects (`<statement id>#<line>`), as the
    /// config lists them.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub refers_to: Vec<String>,
}

/// The statement's sums, all in the payout currency.
///
/// `subtotal = lines + adjustments + bonuses + carried_in` (`adjustments`
/// counting the manual ones); when `subtotal >=
/// minimum_payout` (and positive) it is all payable, otherwise it is all
/// carried out: `total_payable + carried_out = subtotal` always.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Totals {
    /// Sum of `lines[].commission`.
    pub lines: Decimal,
    /// Sum of `adjustments[].amount`, (format 7)
    /// `bonus_adjustments[].amount` and (format 14)
    /// `manual_adjustments[].amount`: the corrections of earlier
    /// statements.
    pub adjustments: Decimal,
    /// Sum of `bonuses[].amount`.
    pub bonuses: Decimal,
    /// Balance carried in from the partner's previous finalised statement.
    pub carried_in: Decimal,
    /// lines + adjustments + bonuses + carried_in.
    pub subtotal: Decimal,
    /// The program's minimum payout.
    pub minimum_payout: Decimal,
    /// What to pay now.
    pub total_payable: Decimal,
    /// What is carried into the next statement.
    pub carried_out: Decimal,
    /// The commission the network reported for the claims of `lines`, one
    /// sum per currency it reported in, in currency order (format 13;
    /// absent when it reported none): beside `lines`, what Reckon pays.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub network_reported: Vec<Money>,
}

impl Statement {
    /// The payee key (`<network>:<partner>`; the bare partner id in format 1).
    pub fn payee(&self) -> String {
        match &self.network {
            Some(n) => payee_key(n, &self.partner_id),
            None => self.partner_id.clone(),
        }
    }
}

/// What the store remembers of a claim paid on a finalised statement.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct PaidClaim {
    /// Partner it was paid to (the network's partner id; the network is
    /// the claim's, in the ledger key).
    pub partner_id: String,
    /// The statement of the original line.
    pub statement_id: String,
    /// The original line's number.
    pub line_no: u32,
    /// Order id of the original line.
    pub order_id: Option<String>,
    /// Basis of the original line.
    pub original_basis: Option<Decimal>,
    /// Commission of the original line.
    pub original_commission: Decimal,
    /// Paid so far (original + adjustments on finalised statements).
    pub paid_total: Decimal,
    /// What the original line was priced from (ledger entries written
    /// since 2026-11-29; older ones lack them and adjustments take the
    /// claim's current values for them instead): its conversion date ...
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub date: Option<NaiveDate>,
    /// ... its event ...
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub event: Option<EventType>,
    /// ... its basis in the program currency, flat lines included (they
    /// count in the statement's volume) ...
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub basis: Option<Decimal>,
    /// ... and the FX rate its basis was converted at.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub fx_rate: Option<Decimal>,
    /// The rates reconciliation converted its basis with (claim → program,
    /// order → program), from its trace, so an adjustment can say that a
    /// restated rate moved the basis (ledger entries since 2026-11-30).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub claim_fx_rate: Option<Decimal>,
    /// See `claim_fx_rate`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub order_fx_rate: Option<Decimal>,
    /// The terms the line was priced on (its rule, override and their
    /// figures then), so a later change of its data is priced on them even
    /// if the rule was edited since (ledger entries since 2026-11-30; older
    /// ones are repriced under the rules now, scaled: see `reprice`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub terms: Option<PaidTerms>,
}

/// The figures a line was priced with: the rule and override that priced
/// it, identified by id, and what they said then.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct PaidTerms {
    /// The rule's id.
    pub rule_id: String,
    /// The override's id, if one applied.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub override_id: Option<String>,
    /// `flat`, `percent` or `tiered`.
    pub kind: super::config::RuleKind,
    /// Flat: the amount per event.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub amount: Option<Decimal>,
    /// Percent: the percentage.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub percent: Option<Decimal>,
    /// Tiered: how tiers apply, and the tiers.
    #[serde(default)]
    pub tier_mode: super::config::TierMode,
    /// See `tier_mode`.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub tiers: Vec<super::config::TierConfig>,
    /// Cap per partner per period.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub cap: Option<Decimal>,
}

impl PaidClaim {
    /// The ledger entry of a line of a statement being finalised.
    pub fn of_line(s: &Statement, l: &Line) -> PaidClaim {
        PaidClaim {
            partner_id: s.partner_id.clone(),
            statement_id: s.statement_id.clone(),
            line_no: l.line_no,
            order_id: l.order_id.clone(),
            // A flat (per-event) line does not scale with the basis.
            original_basis: if l.flat_amount.is_some() {
                None
            } else {
                l.basis.as_ref().map(|b| b.amount)
            },
            original_commission: l.commission,
            paid_total: l.commission,
            date: Some(l.date),
            event: Some(l.event),
            basis: l.basis.as_ref().map(|b| b.amount),
            fx_rate: l.fx_rate,
            claim_fx_rate: l.trace.as_ref().and_then(|t| t.claim_fx_rate),
            order_fx_rate: l.trace.as_ref().and_then(|t| t.order_fx_rate),
            terms: None,
        }
    }
}

/// What the store remembers of a bonus of a finalised statement (the
/// bonus ledger, `bonus␟<program>␟<statement id>␟<bonus id>`): the terms it
/// was paid on and what was credited for it, so a later change of the
/// statement's volume corrects it exactly once.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct PaidBonus {
    /// The bonus line on the statement; none when the statement did not
    /// reach the bonus and a later bonus adjustment paid it.
    pub line_no: Option<u32>,
    /// The volume threshold (program currency).
    pub threshold_volume: Decimal,
    /// Percentage of the volume, for percent bonuses.
    pub percent: Option<Decimal>,
    /// Fixed amount (payout currency), for fixed bonuses.
    pub fixed_amount: Option<Decimal>,
    /// FX rate program → payout currency of the statement's last day
    /// (percent bonuses).
    pub fx_rate: Option<Decimal>,
    /// The volume it was first judged on.
    pub original_volume: Decimal,
    /// The bonus line's amount (0 without one).
    pub original_amount: Decimal,
    /// Credited so far (original line plus bonus adjustments on finalised
    /// statements).
    pub paid_total: Decimal,
}

impl PaidBonus {
    /// The ledger entry of a bonus line of a statement being finalised.
    pub fn of_line(b: &BonusLine) -> PaidBonus {
        PaidBonus {
            line_no: Some(b.line_no),
            threshold_volume: b.threshold_volume,
            percent: b.percent,
            fixed_amount: b.fixed_amount,
            fx_rate: b.fx_rate,
            original_volume: b.volume,
            original_amount: b.amount,
            paid_total: b.amount,
        }
    }

    /// The ledger entry after a finalised bonus adjustment: `earlier` plus
    /// its amount, or (a bonus not paid before) the adjustment's terms.
    pub fn adjusted(earlier: Option<&PaidBonus>, a: &BonusAdjustment) -> PaidBonus {
        match earlier {
            Some(p) => PaidBonus {
                paid_total: p.paid_total + a.amount,
                ..p.clone()
            },
            None => PaidBonus {
                line_no: a.original_line_no,
                threshold_volume: a.threshold_volume,
                percent: a.percent,
                fixed_amount: a.fixed_amount,
                fx_rate: a.fx_rate,
                original_volume: a.original_volume,
                original_amount: a.original_amount,
                paid_total: a.previously_paid + a.amount,
            },
        }
    }
}

/// What the store remembers of a finalised statement once a later
/// finalised statement repriced it and applied every target of its lines
/// in full (the settled ledger, `settled␟<program>␟<statement id>`): the
/// inputs each of its lines was priced from *now* then. Repricing it again
/// with the same inputs changes nothing, whatever the rules say since; with
/// changed inputs, each line is repriced from these inputs and what was
/// paid for it, not from the line as first paid.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct SettledStatement {
    /// Every line repriced (those whose claim moved away included), in
    /// (network, claim id) order.
    pub lines: Vec<SettledLine>,
}

/// One line of a [`SettledStatement`].
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct SettledLine {
    /// The claim's network.
    pub network: String,
    /// The claim id.
    pub claim_id: String,
    /// Its inputs; none when it no longer earned for the partner paid (not
    /// earning, moved to another partner, released).
    pub inputs: Option<LineInputs>,
}

/// The inputs a repriced line is priced from, the rules aside.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct LineInputs {
    /// Basis in the program currency (none without one, or in another
    /// currency).
    pub basis: Option<Decimal>,
    /// Conversion date (program timezone).
    pub date: NaiveDate,
    /// Event.
    pub event: EventType,
    /// FX rate program → payout currency of `date` (none without a basis,
    /// or without a rate).
    pub fx_rate: Option<Decimal>,
    /// The rates reconciliation converted the basis with (its trace's).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub claim_fx_rate: Option<Decimal>,
    /// See `claim_fx_rate`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub order_fx_rate: Option<Decimal>,
}
