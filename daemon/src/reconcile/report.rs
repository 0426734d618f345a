//! Discrepancy reports: one program, one period, built from stored decisions
//! only (pure over a slice of [`Decision`]s; the CLI loads and writes).
//!
//! A claim belongs to the period of its conversion time (`occurred_at`) on
//! the calendar of the program's statement timezone (`[programs.commission]
//! timezone`, else the daemon's reporting timezone), so a report and the
//! statements of the same period hold the same claims. The period is a
//! calendar month, or a half month or ISO week when the program's
//! statements are cut so ([`Period`]). The report has two parts:
//! - **summary**: per network, partner, outcome, claim currency and
//!   commission currency: claims, payable claims, claimed amounts (claim
//!   currency), network-reported commission (its own currency, which may
//!   differ: CAKE pays in one and receives in another) and Reckon's
//!   commission basis (program currency);
//! - **totals** of money per network (and claim and commission currency)
//!   and for the program: the summary rows' sums, plus the basis of the
//!   payable claims ([`NetworkTotal`], [`ProgramTotals`]);
//! - **discrepancies**: every claim whose outcome is not `matched`, with its
//!   reason, claim id, order id, amounts, payable flag, lock date and,
//!   when it earns but is not payable, why ([`NotPayable`]).
//!
//! Formats: JSON (the [`Report`] struct), CSV (the summary table, a blank
//! line, then the discrepancy table, each with its header; no totals
//! table: a third would break readers of the second to its end) and a
//! printable HTML page (with a totals table). Columns are only ever appended (other tools read them by
//! position). The HTML shows the bidirectional and control characters of
//! names and ids as `<U+202E>` ([`visible`]); JSON and CSV keep them as
//! the networks sent them.
//!
//! Every format names the instant the decisions were judged at
//! ([`Report::judged_at`]: the `now` of the run that stored them, or the
//! `--as-of` instant) and, for stored decisions, warns when some were
//! judged before a deadline of their own that has passed since
//! ([`Report::stale`], from [`stale`]): a grace period or a lock date that
//! only a new run takes into account.

use super::model::{Decision, Outcome};
use crate::display_safe::visible;
use crate::payout::model::payee_key;
use crate::payout::render::text_cell;
use chrono::{DateTime, Utc};
use chrono::{Datelike, NaiveDate};
use rust_decimal::Decimal;
use serde::Serialize;
use std::collections::BTreeMap;
use std::fmt::Write as _;

/// Report output format.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum Format {
    /// Two CSV tables (summary, discrepancies) separated by a blank line.
    Csv,
    /// One JSON document.
    Json,
    /// A printable HTML page.
    Html,
}

/// The period of a report: a calendar month (`2026-11`), or a half month
/// (`2026-11-H1`) or ISO week (`2026-W44`) when the program's statements
/// are cut so (QA33-D L3: a weekly statement had no report to match it).
/// A range of local dates `[start, end)` on the program's calendar, as
/// statements cut it ([`crate::payout::period::Period`]).
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub struct Period(crate::payout::period::Period);

impl std::str::FromStr for Period {
    type Err = String;
    /// Any period name statements take; [`Period::check_kind`] then
    /// checks a half month or a week against the program's statements.
    fn from_str(s: &str) -> Result<Self, String> {
        use crate::payout::config::PeriodKind;
        use crate::payout::period::Period as Cut;
        let given = s.trim();
        let bad = || {
            format!(
                "period `{s}` is not YYYY-MM (e.g. 2026-11), nor a statement period YYYY-MM-H1 / YYYY-MM-H2 (semi-monthly) or YYYY-Www (weekly, an ISO week, e.g. 2026-W48)"
            )
        };
        let cut = [
            PeriodKind::Monthly,
            PeriodKind::SemiMonthly,
            PeriodKind::Weekly,
        ]
        .into_iter()
        .find_map(|kind| match Cut::parse(kind, given) {
            Ok(p) => Some(Ok(p)),
            // The form of this kind, with a month or week that does not exist.
            Err(e) if e.out_of_range.is_some() => Some(Err(e.to_string())),
            Err(_) => None,
        })
        .unwrap_or_else(|| Err(bad()))?;
        // As `kpi` and statements (QA29-D L3: `0000-01` was an empty report).
        if let Some(why) = crate::kpi::period::year_refused(cut.last_day().year()) {
            return Err(format!("period `{s}`: {why}"));
        }
        Ok(Period(cut))
    }
}

impl std::fmt::Display for Period {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        self.0.fmt(f)
    }
}

impl Period {
    /// Whether an instant falls in this period on `tz`'s calendar.
    pub fn contains(&self, t: chrono::DateTime<chrono::Utc>, tz: chrono_tz::Tz) -> bool {
        self.0.contains(t.with_timezone(&tz).date_naive())
    }

    /// The first local date of the period.
    pub fn start(&self) -> NaiveDate {
        self.0.start
    }

    /// The first local date after the period.
    pub fn end(&self) -> NaiveDate {
        self.0.end
    }

    /// What the period is a unit of: `month`, `half month`, `ISO week`.
    pub fn unit(&self) -> &'static str {
        use crate::payout::period::PeriodKindOrd;
        match self.0.kind {
            PeriodKindOrd::Monthly => "month",
            PeriodKindOrd::SemiMonthly => "half month",
            PeriodKindOrd::Weekly => "ISO week",
        }
    }

    /// A month always; a half month or a week only when `program`'s
    /// statements are cut so (`[programs.commission] period`): a report
    /// of another cut would match no statement.
    pub fn check_kind(&self, program: &super::config::ProgramConfig) -> Result<(), String> {
        use crate::payout::config::PeriodKind;
        use crate::payout::period::PeriodKindOrd;
        let kind = program
            .commission
            .as_ref()
            .map(|c| c.period)
            .unwrap_or_default();
        let this = match self.0.kind {
            PeriodKindOrd::Monthly => return Ok(()),
            k if PeriodKindOrd::from(kind) == k => return Ok(()),
            PeriodKindOrd::SemiMonthly => "a half month",
            PeriodKindOrd::Weekly => "an ISO week",
        };
        let theirs = match kind {
            PeriodKind::Monthly => "monthly: write a month, YYYY-MM (e.g. 2026-11)",
            PeriodKind::SemiMonthly => {
                "semi-monthly: write a month, YYYY-MM, or a half month, YYYY-MM-H1 or YYYY-MM-H2"
            }
            PeriodKind::Weekly => {
                "weekly: write a month, YYYY-MM, or an ISO week, YYYY-Www (e.g. 2026-W48)"
            }
        };
        Err(format!(
            "period `{self}` is {this}, but the statements of program `{}` are {theirs} ([programs.commission] period)",
            program.id
        ))
    }
}

/// One summary row.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct SummaryRow {
    /// Claim connector id.
    pub network: String,
    /// Partner id.
    pub partner_id: String,
    /// Partner name, if known.
    pub partner_name: Option<String>,
    /// Outcome.
    pub outcome: Outcome,
    /// Currency of the claimed amounts.
    pub currency: String,
    /// Currency of the network commission (the claim currency when the
    /// claims report none).
    pub commission_currency: String,
    /// Number of claims.
    pub claims: u64,
    /// Of which payable now.
    pub payable: u64,
    /// Sum of claimed sale amounts (claim currency); `None` when no claim
    /// of the row carried one (CAKE sends none: unknown, not 0.00).
    pub claimed_amount: Option<Decimal>,
    /// Sum of network-reported commission (`commission_currency`); `None`
    /// when no claim of the row reported one (not "the network says 0").
    pub network_commission: Option<Decimal>,
    /// Sum of Reckon's commission basis (program currency); `None` when no
    /// claim of the row has one (a duplicate, refunded or no-order claim
    /// earns on nothing: none, not 0.00, as in the listing; QA22 C-3).
    pub basis: Option<Decimal>,
    /// The payee key statements, `summary.csv` and KPI use,
    /// `<network>:<partner id>` (QA33-D L5: `partner_id` alone is the same
    /// `P1` for two networks); `partner_id` stays for older readers.
    pub payee: String,
}

/// `totals` with every outcome of [`super::model::ALL_OUTCOMES`], in its order.
fn every_outcome<S: serde::Serializer>(
    totals: &BTreeMap<Outcome, u64>,
    s: S,
) -> Result<S::Ok, S::Error> {
    use serde::ser::SerializeMap;
    let mut m = s.serialize_map(Some(super::model::ALL_OUTCOMES.len()))?;
    for o in super::model::ALL_OUTCOMES {
        m.serialize_entry(&o, totals.get(&o).unwrap_or(&0))?;
    }
    m.end()
}

/// Money totals of one network's claims in one claim currency and
/// commission currency: the sums of its summary rows (all partners and
/// outcomes), and the basis of its payable claims.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct NetworkTotal {
    /// Claim connector id.
    pub network: String,
    /// Currency of the claimed amounts.
    pub currency: String,
    /// Currency of the network commission.
    pub commission_currency: String,
    /// Number of claims.
    pub claims: u64,
    /// Of which payable.
    pub payable: u64,
    /// Sum of claimed sale amounts (`currency`); `None` when no claim
    /// carried one.
    pub claimed_amount: Option<Decimal>,
    /// Sum of network-reported commission (`commission_currency`); `None`
    /// when no claim reported one.
    pub network_commission: Option<Decimal>,
    /// Sum of Reckon's basis (program currency).
    pub basis: Decimal,
    /// Of `basis`, the part of the payable claims (program currency).
    pub payable_basis: Decimal,
}

/// Totals of the whole program for the month, in the program currency
/// (claimed amounts and network commissions are in several currencies:
/// see [`Report::network_totals`]).
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct ProgramTotals {
    /// Payable claims.
    pub payable: u64,
    /// Sum of Reckon's basis.
    pub basis: Decimal,
    /// Of `basis`, the part of the payable claims.
    pub payable_basis: Decimal,
}

/// One discrepancy line.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct DiscrepancyRow {
    /// Claim connector id.
    pub network: String,
    /// Claim external id.
    pub claim_id: String,
    /// Partner id.
    pub partner_id: String,
    /// Conversion time (UTC, RFC 3339).
    pub occurred_at: String,
    /// Outcome.
    pub outcome: Outcome,
    /// `source/order id` of the matched order, if any.
    pub order: Option<String>,
    /// How it matched.
    pub matched_by: Option<String>,
    /// Claimed amount with currency.
    pub claimed_amount: Option<String>,
    /// Order amount with currency.
    pub order_amount: Option<String>,
    /// Refunds with currency.
    pub refunded_amount: Option<String>,
    /// Reckon's basis with currency.
    pub basis: Option<String>,
    /// Network commission with currency.
    pub network_commission: Option<String>,
    /// Winning claim for duplicates (`source/id`).
    pub winner: Option<String>,
    /// Why.
    pub reason: String,
    /// The rate that converted the claimed amount to the program currency
    /// (1 claim currency = this many program currency units), on the
    /// claim's day; none when the claim is in the program currency or no
    /// conversion was made.
    pub claim_fx_rate: Option<Decimal>,
    /// The rate that converted the order's amounts (order, refunds) to the
    /// program currency, on the order's day; none when the order is in the
    /// program currency or no conversion was made.
    pub order_fx_rate: Option<Decimal>,
    /// When this judgement was first made (UTC, RFC 3339, fractions of a
    /// second kept as statement traces print them): the `now` of the run
    /// that first reached it (later runs reaching the same keep it).
    pub decided_at: String,
    // The amounts again as plain decimals (at the currency's minor unit),
    // each with its currency in a field of its own, so a spreadsheet can
    // sum the CSV's columns (QA, new user: `211.02 USD` is text there).
    // Appended after the text columns, which stay as they were.
    /// `claimed_amount` as a decimal.
    pub claimed_value: Option<Decimal>,
    /// Currency of `claimed_value`.
    pub claim_currency: Option<String>,
    /// `order_amount` as a decimal.
    pub order_value: Option<Decimal>,
    /// `refunded_amount` as a decimal.
    pub refunded_value: Option<Decimal>,
    /// Currency of `order_value` and `refunded_value` (refunds are in the
    /// order's currency).
    pub order_currency: Option<String>,
    /// `basis` as a decimal.
    pub basis_value: Option<Decimal>,
    /// Currency of `basis_value` (the program currency).
    pub basis_currency: Option<String>,
    /// `network_commission` as a decimal.
    pub network_commission_value: Option<Decimal>,
    /// Currency of `network_commission_value`.
    pub commission_currency: Option<String>,
    /// The program settings the decision was made with (tolerances, the
    /// exact `tolerance_applied`, windows, attribution): a config edited
    /// since does not change what this decision used (QA18 A3). The CSV
    /// has `tolerance_applied`, appended after `commission_currency`.
    pub inputs: super::model::DecisionInputs,
    /// Whether commission may be paid on the claim (as of
    /// [`Report::judged_at`]): the summary's `payable` counts these.
    pub payable: bool,
    /// The claim's lock date (UTC, RFC 3339, as `decided_at`): the
    /// network's, else the order's time + the return window; none without
    /// either.
    pub lock_at: Option<String>,
    /// Why an earning claim is not payable ([`NotPayable`]); none for a
    /// payable claim, a claim whose outcome does not earn (the outcome
    /// says why), and when the decisions do not record when they were
    /// judged and the lock date is after `decided_at` (either could hold).
    pub not_payable_reason: Option<NotPayable>,
    // Appended 2026-12 (QA33): the payee key and the order reference as
    // statements write them, and the dates of the `[fx]` rows.
    /// The payee key statements use, `<network>:<partner id>`.
    pub payee: String,
    /// The matched order's connector (`order` is `<order_source>/<order_id>`),
    /// as a statement line's `order_source`.
    pub order_source: Option<String>,
    /// The matched order's id, as a statement line's `order_id`.
    pub order_id: Option<String>,
    /// The date of the `[fx]` row behind `claim_fx_rate` (the claim's day,
    /// or up to `max_age_days` before it: a Saturday's claim takes the
    /// Friday's rate); none where `claim_fx_rate` is, and for decisions
    /// judged before it was recorded.
    pub claim_fx_rate_date: Option<NaiveDate>,
    /// The date of the `[fx]` row behind `order_fx_rate`, as
    /// `claim_fx_rate_date`.
    pub order_fx_rate_date: Option<NaiveDate>,
    // Appended 2026-12-02 (QA38a A-M2).
    /// The event type the network reported; it chooses the commission rule.
    pub event_type: plugin_api::EventType,
    /// The network's event type and the order disagree
    /// ([`engine::event_conflict`](super::engine::event_conflict)): a lead
    /// or signup on an order with an amount, or a sale on an order of 0.00.
    /// Such a claim is listed even when `matched`.
    pub event_conflict: bool,
}

/// Why an earning claim (`matched`, `amount_mismatch`,
/// `partially_refunded`) is not payable.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum NotPayable {
    /// Its lock date had not passed when it was judged.
    LockPending,
    /// Its lock date had passed, but the program pays only
    /// network-approved claims (`require_network_approval`) and the network
    /// still has it pending.
    AwaitingNetworkApproval,
}

impl NotPayable {
    /// snake_case name as used in files.
    pub fn as_str(self) -> &'static str {
        match self {
            NotPayable::LockPending => "lock_pending",
            NotPayable::AwaitingNetworkApproval => "awaiting_network_approval",
        }
    }

    /// Why `d` is not payable, judged at `judged_at` (the run's `now`):
    /// the engine makes an earning decision payable once `judged_at >=
    /// lock_at`, unless the network's approval is still required. So a
    /// lock date at or before `judged_at` leaves the approval as the
    /// cause. Stored decisions not judged again by the run of `judged_at`
    /// were judged earlier; those whose lock date passed in between are
    /// judged again by that run (the lock date is their next change), so
    /// the rule holds for them too. Without `judged_at`, `decided_at`
    /// (a lower bound) decides only the approval case.
    pub fn of(d: &Decision, judged_at: Option<DateTime<Utc>>) -> Option<NotPayable> {
        if d.payable || !d.outcome.earns() {
            return None;
        }
        let lock = d.lock_at?;
        match judged_at {
            Some(at) if lock > at => Some(NotPayable::LockPending),
            Some(_) => Some(NotPayable::AwaitingNetworkApproval),
            None if lock <= d.decided_at => Some(NotPayable::AwaitingNetworkApproval),
            None => None,
        }
    }
}

/// Decisions of a report judged before a deadline of their own that has
/// passed since: a new run may judge them differently.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Stale {
    /// How many.
    pub decisions: u64,
    /// Of which `awaiting_order` whose grace period has ended (a run makes
    /// them `no_order`).
    pub grace_ended: u64,
    /// Of which earning but not payable, whose lock date has passed (a run
    /// makes them payable).
    pub lock_passed: u64,
    /// The earliest of those deadlines.
    pub since: DateTime<Utc>,
    /// The present they were compared with.
    pub checked_at: DateTime<Utc>,
}

/// Which of the stored decisions, each with the instant it changes with
/// time alone (`StoredDecision::due`: the end of an `awaiting_order`
/// grace period, the lock date of an earning decision not yet payable),
/// have such an instant at or before `now`. A run judges every decision
/// whose instant has come, so these were judged before it: they are out
/// of date until the next `reckon reconcile`.
pub fn stale<'a>(
    decisions: impl IntoIterator<Item = (&'a Decision, Option<DateTime<Utc>>)>,
    now: DateTime<Utc>,
) -> Option<Stale> {
    let mut out: Option<Stale> = None;
    for (d, due) in decisions {
        let Some(due) = due.filter(|t| *t <= now) else {
            continue;
        };
        let s = out.get_or_insert(Stale {
            decisions: 0,
            grace_ended: 0,
            lock_passed: 0,
            since: due,
            checked_at: now,
        });
        s.decisions += 1;
        s.since = s.since.min(due);
        if d.outcome == Outcome::AwaitingOrder {
            s.grace_ended += 1;
        } else {
            s.lock_passed += 1;
        }
    }
    out
}

impl Stale {
    /// One sentence for people: what is out of date and what to do.
    pub fn sentence(&self, judged_at: Option<DateTime<Utc>>) -> String {
        let mut what = Vec::new();
        if self.grace_ended > 0 {
            what.push(format!(
                "{} awaiting_order past the end of their grace period",
                self.grace_ended
            ));
        }
        if self.lock_passed > 0 {
            what.push(format!(
                "{} not yet payable past their lock date",
                self.lock_passed
            ));
        }
        let when = judged_at.map_or_else(
            || "before".to_owned(),
            |t| format!("at {}, before", rfc3339(t)),
        );
        format!(
            "{n} decision(s) in this report were judged {when} a deadline of their own passed (the earliest {since}): {what}. They may have changed; run `reckon reconcile` and report again.",
            n = self.decisions,
            since = rfc3339(self.since),
            what = what.join(", "),
        )
    }
}

/// An instant as every format of the report prints it: UTC, fractions of
/// a second kept when there are any (QA28-C F3: the CSV and HTML cut the
/// run's `judged_at` to the second, the JSON and `decided_at` did not).
fn rfc3339(t: DateTime<Utc>) -> String {
    t.to_rfc3339_opts(chrono::SecondsFormat::AutoSi, true)
}

/// A discrepancy report.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Report {
    /// Program id.
    pub program: String,
    /// Program currency (of `basis`).
    pub currency: String,
    /// The period's name (`2026-11`, `2026-11-H1`, `2026-W44`).
    pub period: String,
    /// The timezone whose calendar the period is (IANA name).
    pub timezone: String,
    /// Judged as of this instant, from the store as Reckon knew it then
    /// (`reckon reconcile report --as-of`); absent: the stored decisions.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub as_of: Option<chrono::DateTime<chrono::Utc>>,
    /// The instant the decisions were judged at: grace periods and lock
    /// dates were compared with it. For stored decisions the `now` of the
    /// last `reckon reconcile` run (its `--now`, if given); with `--as-of`,
    /// that instant. Null when not recorded (decisions stored by a version
    /// before 2026-11-29, until the next run).
    pub judged_at: Option<chrono::DateTime<chrono::Utc>>,
    /// Stored decisions judged before a deadline of their own that has
    /// passed since (absent when none, and for `--as-of` reports).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub stale: Option<Stale>,
    /// Why else the stored decisions may be out of date, one sentence each
    /// ([`super::out_of_date_notes`]): the program's config, `[fx]` or the
    /// judging rules changed since its last run, or claims or orders were
    /// stored after it. Absent when none, and for `--as-of` reports.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub out_of_date: Vec<String>,
    /// Stored decisions of a `reckon reconcile --now T` run: judged from
    /// the store as it stood at `T` (records stored later left out).
    /// Absent otherwise.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub store_as_of: Option<chrono::DateTime<chrono::Utc>>,
    /// Claims in the period.
    pub claims: u64,
    /// Claims by outcome. The JSON names every outcome, 0 for those with
    /// no claim, so a loader with a fixed schema reads each month
    /// (QA35a L3: `network_reversed` was absent from a month without one).
    #[serde(serialize_with = "every_outcome")]
    pub totals: BTreeMap<Outcome, u64>,
    /// Per network, partner, outcome, claim and commission currency.
    pub summary: Vec<SummaryRow>,
    /// Money totals per network, claim currency and commission currency
    /// (the sums of `summary`'s rows).
    pub network_totals: Vec<NetworkTotal>,
    /// Totals of the program, in its currency.
    pub program_totals: ProgramTotals,
    /// Every non-`matched` claim; with [`Report::all_claims`], every claim.
    pub discrepancies: Vec<DiscrepancyRow>,
    /// `discrepancies` lists `matched` claims too (`report --all`).
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub all_claims: bool,
    /// The program has no reconcile run whose decisions this version reads
    /// (never reconciled, a full run cut short, or the store was upgraded
    /// since): the report holds no claims, whatever the store holds
    /// ([`not_reconciled_sentence`]). Absent otherwise.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub not_reconciled: bool,
}

/// What a report of a program without a usable reconcile run says.
pub fn not_reconciled_sentence(program: &str) -> String {
    format!(
        "program `{program}` has not been reconciled (never, its last full run did not finish, or the store was upgraded since and every claim must be judged again): this report lists no claims, whatever the store holds; run `reckon reconcile` and report again."
    )
}

/// The decision's inputs with its amounts written as statements write
/// them (QA38c C-L5: a tolerance of 0 read `0` here and `0.00` on the
/// statement): `tolerance_applied` exactly as a statement line's trace has
/// it ([`crate::payout::model::Trace::tolerance_in`]: cut toward zero to
/// the program currency's minor unit, at least that many digits), and
/// `amount_tolerance_abs` with at least those digits (never cut: it is the
/// configured value).
fn inputs_as_statements_write_them(d: &Decision, currency: &str) -> super::model::DecisionInputs {
    let mut inputs = d.inputs.clone();
    inputs.amount_tolerance_abs =
        plugin_api::currency::at_minor_scale(inputs.amount_tolerance_abs, currency);
    inputs.tolerance_applied = crate::payout::model::Trace::of(d)
        .tolerance_in(Some(currency))
        .tolerance_applied;
    inputs
}

fn money(m: &Option<plugin_api::Money>) -> Option<String> {
    m.as_ref().map(|m| format!("{} {}", value(m), m.currency))
}

/// An amount at its currency's minor unit.
fn value(m: &plugin_api::Money) -> Decimal {
    plugin_api::currency::at_minor_scale(m.amount, &m.currency)
}

fn currency_of(m: &Option<plugin_api::Money>) -> Option<String> {
    m.as_ref().map(|m| m.currency.clone())
}

/// Builds the report of `period` from a program's decisions.
pub fn build(
    program: &str,
    currency: &str,
    period: Period,
    tz: chrono_tz::Tz,
    decisions: &[Decision],
) -> Report {
    build_with(program, currency, period, tz, decisions, false)
}

/// [`build`]; with `all_claims`, the listing holds every claim of the
/// month, `matched` ones too (an auditor's view: each claim's order,
/// amounts and reason).
pub fn build_with(
    program: &str,
    currency: &str,
    period: Period,
    tz: chrono_tz::Tz,
    decisions: &[Decision],
    all_claims: bool,
) -> Report {
    build_judged(program, currency, period, tz, decisions, all_claims, None)
}

/// [`build_with`] of decisions judged at `judged_at` (the run's `now` or
/// the `--as-of` instant, [`Report::judged_at`]), which tells why an
/// earning claim is not payable ([`NotPayable::of`]).
pub fn build_judged(
    program: &str,
    currency: &str,
    period: Period,
    tz: chrono_tz::Tz,
    decisions: &[Decision],
    all_claims: bool,
    judged_at: Option<DateTime<Utc>>,
) -> Report {
    type GroupKey = (String, String, Outcome, String, String);
    let mut groups: BTreeMap<GroupKey, SummaryRow> = BTreeMap::new();
    let mut totals = BTreeMap::new();
    let mut discrepancies = Vec::new();
    let mut claims = 0;
    let mut names: BTreeMap<(&str, &str), &String> = BTreeMap::new();
    // Per network, claim currency and commission currency.
    let mut payable_basis: BTreeMap<(String, String, String), Decimal> = BTreeMap::new();
    let mut sorted: Vec<&Decision> = decisions
        .iter()
        .filter(|d| d.program == program && period.contains(d.occurred_at, tz))
        .collect();
    sorted.sort_by(|a, b| (&a.claim.source, &a.claim.id).cmp(&(&b.claim.source, &b.claim.id)));
    for d in sorted {
        claims += 1;
        *totals.entry(d.outcome).or_insert(0) += 1;
        // The claim's currency is known only from its amounts: a claim
        // that reported neither is grouped under no currency (empty), not
        // under the program's, which it may never have had (QA31-B L1).
        let cur = d
            .claimed_amount
            .as_ref()
            .or(d.network_commission.as_ref())
            .map_or("", |m| m.currency.as_str())
            .to_owned();
        let commission_cur = d
            .network_commission
            .as_ref()
            .map_or(cur.as_str(), |m| m.currency.as_str())
            .to_owned();
        let row = groups
            .entry((
                d.claim.source.clone(),
                d.partner_id.clone(),
                d.outcome,
                cur.clone(),
                commission_cur.clone(),
            ))
            .or_insert_with(|| SummaryRow {
                network: d.claim.source.clone(),
                partner_id: d.partner_id.clone(),
                partner_name: None,
                outcome: d.outcome,
                currency: cur.clone(),
                commission_currency: commission_cur.clone(),
                claims: 0,
                payable: 0,
                claimed_amount: None,
                network_commission: None,
                basis: None,
                payee: payee_key(&d.claim.source, &d.partner_id),
            });
        row.claims += 1;
        row.payable += u64::from(d.payable);
        if let Some(m) = d.claimed_amount.as_ref().filter(|m| m.currency == cur) {
            *row.claimed_amount.get_or_insert(Decimal::ZERO) += m.amount;
        }
        if let Some(m) = &d.network_commission {
            *row.network_commission.get_or_insert(Decimal::ZERO) += m.amount;
        }
        if let Some(m) = &d.basis {
            *row.basis.get_or_insert(Decimal::ZERO) += m.amount;
            if d.payable {
                *payable_basis
                    .entry((d.claim.source.clone(), cur.clone(), commission_cur.clone()))
                    .or_default() += m.amount;
            }
        }
        if let Some(name) = &d.partner_name {
            // The statement's rule: the last name in key order, on every
            // row of the partner (a name sent on one claim only).
            names.insert((d.claim.source.as_str(), d.partner_id.as_str()), name);
        }
        let event_conflict = super::engine::event_conflict(d);
        if all_claims || d.outcome != Outcome::Matched || event_conflict {
            // A rate is shown only where a currency was converted (a
            // same-currency "rate" is 1 and says nothing).
            let claim_converted =
                (d.claimed_amount.as_ref()).is_some_and(|m| m.currency != currency);
            let order_converted = (d.order_amount.as_ref()).is_some_and(|m| m.currency != currency);
            discrepancies.push(DiscrepancyRow {
                network: d.claim.source.clone(),
                claim_id: d.claim.id.clone(),
                partner_id: d.partner_id.clone(),
                occurred_at: d
                    .occurred_at
                    .to_rfc3339_opts(chrono::SecondsFormat::AutoSi, true),
                outcome: d.outcome,
                order: d.order.as_ref().map(|o| format!("{}/{}", o.source, o.id)),
                matched_by: d.matched_by.map(|m| m.as_str().to_owned()),
                claimed_amount: money(&d.claimed_amount),
                order_amount: money(&d.order_amount),
                refunded_amount: money(&d.refunded_amount),
                basis: money(&d.basis),
                network_commission: money(&d.network_commission),
                winner: d.winner.as_ref().map(|w| format!("{}/{}", w.source, w.id)),
                reason: d.reason.clone(),
                claim_fx_rate: d.fx_rate.filter(|_| claim_converted),
                order_fx_rate: d.order_fx_rate.filter(|_| order_converted),
                // As statement traces print it, fractions kept, so the two
                // join (QA18 A4).
                decided_at: rfc3339(d.decided_at),
                claimed_value: d.claimed_amount.as_ref().map(value),
                claim_currency: currency_of(&d.claimed_amount),
                order_value: d.order_amount.as_ref().map(value),
                refunded_value: d.refunded_amount.as_ref().map(value),
                order_currency: currency_of(&d.order_amount)
                    .or_else(|| currency_of(&d.refunded_amount)),
                basis_value: d.basis.as_ref().map(value),
                basis_currency: currency_of(&d.basis),
                network_commission_value: d.network_commission.as_ref().map(value),
                commission_currency: currency_of(&d.network_commission),
                inputs: inputs_as_statements_write_them(d, currency),
                payable: d.payable,
                lock_at: d
                    .lock_at
                    .map(|t| t.to_rfc3339_opts(chrono::SecondsFormat::AutoSi, true)),
                not_payable_reason: NotPayable::of(d, judged_at),
                payee: payee_key(&d.claim.source, &d.partner_id),
                order_source: d.order.as_ref().map(|o| o.source.clone()),
                order_id: d.order.as_ref().map(|o| o.id.clone()),
                claim_fx_rate_date: (d.inputs.fx_rate_date).filter(|_| claim_converted),
                order_fx_rate_date: (d.inputs.order_fx_rate_date).filter(|_| order_converted),
                event_type: d.event_type,
                event_conflict,
            });
        }
    }
    let summary: Vec<SummaryRow> = groups
        .into_values()
        .map(|mut r| {
            use plugin_api::currency::at_minor_scale;
            r.partner_name = names
                .get(&(r.network.as_str(), r.partner_id.as_str()))
                .map(|n| (*n).clone());
            r.claimed_amount = r.claimed_amount.map(|c| at_minor_scale(c, &r.currency));
            r.network_commission = r
                .network_commission
                .map(|c| at_minor_scale(c, &r.commission_currency));
            r.basis = r.basis.map(|b| at_minor_scale(b, currency));
            r
        })
        .collect();
    let (network_totals, program_totals) = money_totals(&summary, &payable_basis, currency);
    Report {
        program: program.to_owned(),
        currency: currency.to_owned(),
        period: period.to_string(),
        timezone: tz.name().to_owned(),
        as_of: None,
        judged_at,
        stale: None,
        out_of_date: Vec::new(),
        store_as_of: None,
        claims,
        totals,
        summary,
        network_totals,
        program_totals,
        discrepancies,
        all_claims,
        not_reconciled: false,
    }
}

/// The summary rows summed per network, claim currency and commission
/// currency, and over the program (program currency), so a CSV reader
/// gets the same figures by summing the summary table; with the basis of
/// the payable claims (`payable_basis`, by the same key), which the
/// summary does not have.
fn money_totals(
    summary: &[SummaryRow],
    payable_basis: &BTreeMap<(String, String, String), Decimal>,
    currency: &str,
) -> (Vec<NetworkTotal>, ProgramTotals) {
    use plugin_api::currency::at_minor_scale;
    let mut by_network: BTreeMap<(&str, &str, &str), NetworkTotal> = BTreeMap::new();
    let mut program = ProgramTotals {
        payable: 0,
        basis: at_minor_scale(Decimal::ZERO, currency),
        payable_basis: at_minor_scale(Decimal::ZERO, currency),
    };
    let add = |sum: &mut Option<Decimal>, x: Option<Decimal>| {
        if let Some(x) = x {
            *sum = Some(sum.unwrap_or_default() + x);
        }
    };
    for r in summary {
        let t = by_network
            .entry((&r.network, &r.currency, &r.commission_currency))
            .or_insert_with(|| NetworkTotal {
                network: r.network.clone(),
                currency: r.currency.clone(),
                commission_currency: r.commission_currency.clone(),
                claims: 0,
                payable: 0,
                claimed_amount: None,
                network_commission: None,
                basis: Decimal::ZERO,
                payable_basis: at_minor_scale(
                    payable_basis
                        .get(&(
                            r.network.clone(),
                            r.currency.clone(),
                            r.commission_currency.clone(),
                        ))
                        .copied()
                        .unwrap_or_default(),
                    currency,
                ),
            });
        t.claims += r.claims;
        t.payable += r.payable;
        add(&mut t.claimed_amount, r.claimed_amount);
        add(&mut t.network_commission, r.network_commission);
        // A row without a basis adds 0 at the currency's scale (`0.00`).
        let basis = r
            .basis
            .unwrap_or_else(|| plugin_api::currency::at_minor_scale(Decimal::ZERO, currency));
        t.basis += basis;
        program.payable += r.payable;
        program.basis += basis;
    }
    for t in by_network.values() {
        program.payable_basis += t.payable_basis;
    }
    (by_network.into_values().collect(), program)
}

const SUMMARY_HEADER: [&str; 16] = [
    "network",
    "partner_id",
    "partner_name",
    "outcome",
    "currency",
    "claims",
    "payable",
    "claimed_amount",
    "network_commission",
    "commission_currency",
    "basis",
    "basis_currency",
    "as_of",
    "timezone",
    "judged_at",
    "payee",
];
/// The listing's columns up to `decided_at`; the plain amounts and their
/// currencies follow (appended 2026-11-30), then `tolerance_applied`, then
/// the payable flag, the lock date and why not payable (appended
/// 2026-12-01, [`PAYABLE_COLUMNS`]), then the payee key, the order's
/// source and id (2026-12-01), and the `[fx]` rows' dates
/// ([`FX_DATE_COLUMNS`]).
const DISCREPANCY_TEXT_COLUMNS: usize = 17;
/// Where `payable`, `lock_at` and `not_payable_reason` are.
const PAYABLE_COLUMNS: std::ops::Range<usize> = 27..30;
/// Where the `[fx]` rows' dates are (the HTML shows them; it leaves out
/// the payee key and the order's source and id before them, which its
/// network and order columns already say).
const FX_DATE_COLUMNS: std::ops::Range<usize> = 33..35;
/// Where the event type and whether it disagrees with the order are
/// (appended 2026-12-02).
const EVENT_COLUMNS: std::ops::Range<usize> = 35..37;
const DISCREPANCY_HEADER: [&str; 37] = [
    "network",
    "claim_id",
    "partner_id",
    "occurred_at",
    "outcome",
    "order",
    "matched_by",
    "claimed_amount",
    "order_amount",
    "refunded_amount",
    "basis",
    "network_commission",
    "winner",
    "reason",
    "claim_fx_rate",
    "order_fx_rate",
    "decided_at",
    "claimed_value",
    "claim_currency",
    "order_value",
    "refunded_value",
    "order_currency",
    "basis_value",
    "basis_currency",
    "network_commission_value",
    "commission_currency",
    "tolerance_applied",
    "payable",
    "lock_at",
    "not_payable_reason",
    "payee",
    "order_source",
    "order_id",
    "claim_fx_rate_date",
    "order_fx_rate_date",
    "event_type",
    "event_conflict",
];

/// The HTML's totals table (JSON `network_totals`, `program_totals`).
const TOTALS_HEADER: [&str; 10] = [
    "network",
    "currency",
    "claims",
    "payable",
    "claimed_amount",
    "network_commission",
    "commission_currency",
    "basis",
    "payable_basis",
    "basis_currency",
];

/// With `guard` (the CSV), text cells go through [`text_cell`]: a partner
/// naming itself `=HYPERLINK(..)` must not run as a formula where the CSV
/// is opened.
fn summary_cells(report: &Report, r: &SummaryRow, guard: bool) -> [String; 16] {
    let t = |s: &str| text_cell(s, guard);
    [
        t(&r.network),
        t(&r.partner_id),
        t(r.partner_name.as_deref().unwrap_or_default()),
        r.outcome.as_str().to_owned(),
        r.currency.clone(),
        r.claims.to_string(),
        r.payable.to_string(),
        r.claimed_amount.map(|c| c.to_string()).unwrap_or_default(),
        r.network_commission
            .map(|c| c.to_string())
            .unwrap_or_default(),
        // A currency only beside an amount (finance QA13 F5).
        r.network_commission
            .map(|_| r.commission_currency.clone())
            .unwrap_or_default(),
        r.basis.map(|b| b.to_string()).unwrap_or_default(),
        r.basis.map(|_| report.currency.clone()).unwrap_or_default(),
        report.as_of.map(rfc3339).unwrap_or_default(),
        report.timezone.clone(),
        report.judged_at.map(rfc3339).unwrap_or_default(),
        t(&r.payee),
    ]
}

fn discrepancy_cells(r: &DiscrepancyRow, guard: bool) -> [String; 37] {
    let rate = |r: &Option<Decimal>| r.map(|r| r.to_string()).unwrap_or_default();
    let date = |d: &Option<NaiveDate>| d.map(|d| d.to_string()).unwrap_or_default();
    let o = |s: &Option<String>| s.clone().unwrap_or_default();
    let t = |s: &str| text_cell(s, guard);
    [
        t(&r.network),
        t(&r.claim_id),
        t(&r.partner_id),
        r.occurred_at.clone(),
        r.outcome.as_str().to_owned(),
        t(&o(&r.order)),
        o(&r.matched_by),
        o(&r.claimed_amount),
        o(&r.order_amount),
        o(&r.refunded_amount),
        o(&r.basis),
        o(&r.network_commission),
        t(&o(&r.winner)),
        t(&r.reason),
        rate(&r.claim_fx_rate),
        rate(&r.order_fx_rate),
        r.decided_at.clone(),
        rate(&r.claimed_value),
        o(&r.claim_currency),
        rate(&r.order_value),
        rate(&r.refunded_value),
        o(&r.order_currency),
        rate(&r.basis_value),
        o(&r.basis_currency),
        rate(&r.network_commission_value),
        o(&r.commission_currency),
        rate(&r.inputs.tolerance_applied),
        r.payable.to_string(),
        o(&r.lock_at),
        r.not_payable_reason
            .map(|n| n.as_str().to_owned())
            .unwrap_or_default(),
        t(&r.payee),
        t(&o(&r.order_source)),
        t(&o(&r.order_id)),
        date(&r.claim_fx_rate_date),
        date(&r.order_fx_rate_date),
        r.event_type.as_str().to_owned(),
        r.event_conflict.to_string(),
    ]
}

/// Renders the report in `format`.
pub fn render(report: &Report, format: Format) -> String {
    match format {
        Format::Json => {
            let mut s = serde_json::to_string_pretty(report).unwrap_or_default();
            s.push('\n');
            s
        }
        Format::Csv => {
            let mut out = Vec::new();
            {
                let mut w = csv::Writer::from_writer(&mut out);
                let _ = w.write_record(SUMMARY_HEADER);
                for r in &report.summary {
                    let _ = w.write_record(summary_cells(report, r, true));
                }
                let _ = w.flush();
            }
            out.push(b'\n');
            {
                let mut w = csv::Writer::from_writer(&mut out);
                let _ = w.write_record(DISCREPANCY_HEADER);
                for r in &report.discrepancies {
                    let _ = w.write_record(discrepancy_cells(r, true));
                }
                let _ = w.flush();
            }
            String::from_utf8_lossy(&out).into_owned()
        }
        Format::Html => html(report),
    }
}

fn esc(s: &str) -> String {
    s.replace('&', "&amp;")
        .replace('<', "&lt;")
        .replace('>', "&gt;")
        .replace('"', "&quot;")
}

/// An HTML table of the first `header.len()` cells of each row.
fn table<R: IntoIterator<Item = String>>(
    out: &mut String,
    header: &[&str],
    rows: impl Iterator<Item = R>,
) {
    out.push_str("<table>\n<thead><tr>");
    for h in header {
        let _ = write!(out, "<th>{}</th>", esc(&h.replace('_', " ")));
    }
    out.push_str("</tr></thead>\n<tbody>\n");
    for r in rows {
        out.push_str("<tr>");
        for c in r.into_iter().take(header.len()) {
            let _ = write!(out, "<td>{}</td>", esc(&visible(&c)));
        }
        out.push_str("</tr>\n");
    }
    out.push_str("</tbody>\n</table>\n");
}

fn html(r: &Report) -> String {
    let mut out = String::new();
    let title = format!("Reconciliation: {} {}", r.program, r.period);
    let _ = write!(
        out,
        "<!DOCTYPE html>\n<html lang=\"en\">\n<head>\n<meta charset=\"utf-8\">\n<title>{t}</title>\n<style>\nbody{{font-family:sans-serif;font-size:12px;margin:2em}}\ntable{{border-collapse:collapse;margin-bottom:2em}}\nth,td{{border:1px solid #999;padding:2px 6px;text-align:left;vertical-align:top}}\nthead{{background:#eee}}\n.stale{{border:2px solid #c00;padding:4px 8px}}\n@media print{{body{{margin:0}}}}\n</style>\n</head>\n<body>\n<h1>{t}</h1>\n<p>{u} in {z}. Program currency {c}; {n} claims.",
        u = match r.period.parse::<Period>().map(|p| p.unit()) {
            Ok("half month") => "Half month",
            Ok("ISO week") => "ISO week",
            _ => "Month",
        },
        t = esc(&title),
        z = esc(&r.timezone),
        c = esc(&r.currency),
        n = r.claims
    );
    for (o, n) in &r.totals {
        let _ = write!(out, " {}: {n};", o.as_str());
    }
    match (r.as_of, r.judged_at) {
        (Some(at), _) => {
            let _ = write!(
                out,
                " Judged as of {}, from the claims and orders as Reckon had stored them then, with today's programs and exchange rates (a rate added or restated since is used).",
                esc(&rfc3339(at))
            );
        }
        (None, Some(at)) => {
            let _ = write!(
                out,
                " Decisions as judged by the reconcile run of {}.",
                esc(&rfc3339(at))
            );
            if let Some(t) = r.store_as_of {
                let _ = write!(
                    out,
                    " That run (<code>reckon reconcile --now</code>) judged the claims and orders as Reckon had stored them at {}: later records were left out.",
                    esc(&rfc3339(t))
                );
            }
        }
        (None, None) if r.not_reconciled => {}
        (None, None) => out.push_str(
            " When these decisions were judged is not recorded (stored by an earlier version): run <code>reckon reconcile</code> to record it.",
        ),
    }
    out.push_str("</p>\n");
    if r.not_reconciled {
        let _ = writeln!(
            out,
            "<p class=\"stale\"><strong>Not reconciled:</strong> {}</p>",
            esc(&not_reconciled_sentence(&r.program))
        );
    }
    if let Some(s) = &r.stale {
        let _ = writeln!(
            out,
            "<p class=\"stale\"><strong>Out of date:</strong> {}</p>",
            esc(&s.sentence(r.judged_at))
        );
    }
    for note in &r.out_of_date {
        let _ = writeln!(
            out,
            "<p class=\"stale\"><strong>Out of date:</strong> {}</p>",
            esc(note)
        );
    }
    if r.claims == 0 && !r.not_reconciled {
        let _ = writeln!(
            out,
            "<p>No claims: no claim of program {} converted in {} on the calendar of {}.</p>",
            esc(&r.program),
            esc(&r.period),
            esc(&r.timezone)
        );
    }
    out.push_str("<h2>Summary by network and partner</h2>\n");
    table(
        &mut out,
        &SUMMARY_HEADER,
        r.summary.iter().map(|row| summary_cells(r, row, false)),
    );
    out.push_str("<h2>Totals by network</h2>\n");
    let amount = |a: Option<Decimal>| a.map(|a| a.to_string()).unwrap_or_default();
    table(
        &mut out,
        &TOTALS_HEADER,
        r.network_totals
            .iter()
            .map(|t| {
                [
                    t.network.clone(),
                    t.currency.clone(),
                    t.claims.to_string(),
                    t.payable.to_string(),
                    amount(t.claimed_amount),
                    amount(t.network_commission),
                    t.network_commission
                        .map(|_| t.commission_currency.clone())
                        .unwrap_or_default(),
                    t.basis.to_string(),
                    t.payable_basis.to_string(),
                    r.currency.clone(),
                ]
            })
            .chain(std::iter::once([
                "all networks".to_owned(),
                String::new(),
                r.claims.to_string(),
                r.program_totals.payable.to_string(),
                String::new(),
                String::new(),
                String::new(),
                r.program_totals.basis.to_string(),
                r.program_totals.payable_basis.to_string(),
                r.currency.clone(),
            ])),
    );
    let _ = writeln!(
        out,
        "<h2>{} ({})</h2>",
        if r.all_claims {
            "Claims"
        } else {
            "Discrepancies"
        },
        r.discrepancies.len()
    );
    // The HTML shows each amount once, with its currency: the plain
    // decimal columns appended for spreadsheets are left out; the payable
    // flag, the lock date and why not payable follow the text columns,
    // then the `[fx]` rows' dates (the payee key and the order's source
    // and id repeat the network, partner and order columns), then the event
    // type and "yes" where it disagrees with the order.
    let shown = |i: &usize| {
        *i < DISCREPANCY_TEXT_COLUMNS
            || PAYABLE_COLUMNS.contains(i)
            || FX_DATE_COLUMNS.contains(i)
            || EVENT_COLUMNS.contains(i)
    };
    let header: Vec<&str> = (0..DISCREPANCY_HEADER.len())
        .filter(shown)
        .map(|i| DISCREPANCY_HEADER[i])
        .collect();
    table(
        &mut out,
        &header,
        r.discrepancies.iter().map(|row| {
            let mut cells = discrepancy_cells(row, false).to_vec();
            cells[PAYABLE_COLUMNS.start] = if row.payable { "yes" } else { "no" }.to_owned();
            cells[EVENT_COLUMNS.start + 1] = if row.event_conflict { "yes" } else { "" }.to_owned();
            let cells: Vec<String> = (cells.into_iter().enumerate())
                .filter(|(i, _)| shown(i))
                .map(|(_, c)| c)
                .collect();
            cells
        }),
    );
    out.push_str("</body>\n</html>\n");
    out
}

#[cfg(test)]
mod period_tests {
    // QA6 F12: `2026-00` was "not YYYY-MM", which it is written as.
    #[test]
    fn a_month_that_does_not_exist_is_named() {
        let e = "2026-00".parse::<super::Period>().unwrap_err();
        assert_eq!(
            e,
            "period `2026-00`: there is no month 00: months are 01 to 12, e.g. 2026-01"
        );
        let e = "2026-1".parse::<super::Period>().unwrap_err();
        assert!(e.contains("is not YYYY-MM"), "{e}");
        let december = "2026-12".parse::<super::Period>().unwrap();
        assert_eq!(december.start().to_string(), "2026-12-01");
        assert_eq!(december.end().to_string(), "2027-01-01");
        for s in ["0000-01", "1969-12"] {
            let e = s.parse::<super::Period>().unwrap_err();
            assert!(e.contains("years before 1970 are not accepted"), "{e}");
        }
        assert!("1970-01".parse::<super::Period>().is_ok());
    }
}

#[cfg(test)]
mod amount_tests {
    use super::*;
    use crate::reconcile::model::{DecisionInputs, MatchedBy, RecordRef};
    use plugin_api::{EventType, Money};
    use std::str::FromStr;

    fn d(s: &str) -> Decimal {
        Decimal::from_str(s).unwrap()
    }

    fn rr(source: &str, id: &str) -> RecordRef {
        RecordRef {
            source: source.into(),
            id: id.into(),
            revision: 1,
        }
    }

    /// A claim in EUR against a USD order, partly refunded.
    fn decision() -> Decision {
        let t = DateTime::parse_from_rfc3339("2026-11-10T10:00:00Z")
            .unwrap()
            .with_timezone(&Utc);
        Decision {
            program: "shop".into(),
            claim: rr("awin", "c1"),
            partner_id: "p1".into(),
            partner_name: None,
            event_type: EventType::Sale,
            occurred_at: t,
            order: Some(rr("shop", "A-1")),
            matched_by: Some(MatchedBy::OrderId),
            outcome: Outcome::PartiallyRefunded,
            payable: true,
            lock_at: None,
            basis: Some(Money::new(d("190.5"), "USD")),
            claimed_amount: Some(Money::new(d("195.4"), "EUR")),
            order_amount: Some(Money::new(d("211.02"), "USD")),
            refunded_amount: Some(Money::new(d("20.52"), "USD")),
            network_commission: Some(Money::new(d("19.54"), "EUR")),
            fx_rate: Some(d("1.08")),
            winner: None,
            reason: "order shop/A-1 was partly refunded".into(),
            decided_at: t,
            order_fx_rate: None,
            inputs: DecisionInputs::default(),
        }
    }

    /// QA7 finance F10: a partner's name came on one claim only, and the
    /// summary rows of its other outcomes had an empty name. Every row of
    /// the partner carries the name the statement uses (the last in key
    /// order).
    #[test]
    fn every_summary_row_of_a_partner_carries_its_name() {
        let period: Period = "2026-11".parse().unwrap();
        let mut named = decision();
        named.claim = rr("awin", "c2");
        named.partner_name = Some("Alpha One".into());
        named.outcome = Outcome::Matched;
        let mut other_partner = decision();
        other_partner.partner_id = "p2".into();
        let r = build(
            "shop",
            "USD",
            period,
            chrono_tz::UTC,
            &[decision(), named, other_partner],
        );
        let names: Vec<(&str, Outcome, Option<&str>)> = r
            .summary
            .iter()
            .map(|row| {
                (
                    row.partner_id.as_str(),
                    row.outcome,
                    row.partner_name.as_deref(),
                )
            })
            .collect();
        assert_eq!(
            names,
            [
                ("p1", Outcome::Matched, Some("Alpha One")),
                ("p1", Outcome::PartiallyRefunded, Some("Alpha One")),
                ("p2", Outcome::PartiallyRefunded, None),
            ]
        );
    }

    /// QA38a A-M2: a lead matched to an order with an amount is listed
    /// although `matched`, with its event type and `event_conflict` in
    /// every format; a plain matched sale is not listed.
    #[test]
    fn a_matched_claim_whose_event_disagrees_with_its_order_is_listed() {
        let period: Period = "2026-11".parse().unwrap();
        let mut lead = decision();
        lead.claim = rr("awin", "lead-on-sale");
        lead.event_type = EventType::Lead;
        lead.outcome = Outcome::Matched;
        let mut sale = decision();
        sale.claim = rr("awin", "sale");
        sale.outcome = Outcome::Matched;
        let r = build("shop", "USD", period, chrono_tz::UTC, &[lead, sale]);
        let listed: Vec<(&str, EventType, bool)> = (r.discrepancies.iter())
            .map(|d| (d.claim_id.as_str(), d.event_type, d.event_conflict))
            .collect();
        assert_eq!(listed, [("lead-on-sale", EventType::Lead, true)]);
        let csv = render(&r, Format::Csv);
        let listing = csv.split("\n\n").nth(1).unwrap();
        let mut rows = listing.lines();
        assert!(rows.next().unwrap().ends_with(",event_type,event_conflict"));
        assert!(rows.next().unwrap().ends_with(",lead,true"), "{listing}");
        let json = render(&r, Format::Json);
        assert!(json.contains("\"event_type\": \"lead\""), "{json}");
        assert!(json.contains("\"event_conflict\": true"), "{json}");
        let html = render(&r, Format::Html);
        assert!(
            html.contains("<th>event type</th><th>event conflict</th>"),
            "{html}"
        );
        assert!(html.contains("<td>lead</td><td>yes</td>"), "{html}");
    }

    /// QA10 L6: a partner name with a right-to-left override and a
    /// newline, and a claim id with a right-to-left isolate. The HTML shows
    /// them as escapes; CSV and JSON keep them as the network sent them.
    #[test]
    fn the_html_shows_bidi_and_control_characters_of_names_and_ids_as_escapes() {
        let period: Period = "2026-11".parse().unwrap();
        let mut spoof = decision();
        spoof.partner_name = Some("Acme\u{202E}00.001\nx".into());
        spoof.claim = rr("awin", "c\u{2067}9");
        let r = build("shop", "USD", period, chrono_tz::UTC, &[spoof]);
        let html = render(&r, Format::Html);
        assert!(!html.contains(['\u{202E}', '\u{2067}']), "{html}");
        assert!(
            html.contains("<td>Acme&lt;U+202E&gt;00.001&lt;U+000A&gt;x</td>"),
            "{html}"
        );
        assert!(html.contains("<td>c&lt;U+2067&gt;9</td>"), "{html}");
        let csv = render(&r, Format::Csv);
        assert!(csv.contains("\"Acme\u{202E}00.001\nx\""), "{csv}");
        assert!(csv.contains("c\u{2067}9"), "{csv}");
        let json = render(&r, Format::Json);
        assert!(json.contains("Acme\u{202E}00.001\\nx"), "{json}");
    }

    /// QA28-C F3: the CSV summary and the HTML cut the run's `judged_at`
    /// to the second while the JSON and every `decided_at` kept its
    /// fraction, so a claim judged by that run did not join to it.
    #[test]
    fn judged_at_keeps_its_fraction_in_every_format() {
        let period: Period = "2026-11".parse().unwrap();
        let mut d = decision();
        d.decided_at += chrono::Duration::nanoseconds(680_489_174);
        let at = d.decided_at;
        let r = build_judged("shop", "USD", period, chrono_tz::UTC, &[d], false, Some(at));
        let text = "2026-11-10T10:00:00.680489174Z";
        let csv = render(&r, Format::Csv);
        let mut summary = csv::Reader::from_reader(csv.split("\n\n").next().unwrap().as_bytes());
        let head = summary.headers().unwrap().clone();
        let col = head.iter().position(|h| h == "judged_at").unwrap();
        assert_eq!(&summary.records().next().unwrap().unwrap()[col], text);
        assert!(render(&r, Format::Html).contains(text));
        assert!(render(&r, Format::Json).contains(text));
    }

    /// QA38c C-L5: a tolerance of 0 read `0` in the listing and the JSON
    /// but `0.00` on the statement line of the same decision. Both now
    /// write it as the statement does: cut toward zero to the program
    /// currency's minor unit, with at least its digits; the configured
    /// absolute tolerance with at least those digits.
    #[test]
    fn tolerances_are_written_as_statements_write_them() {
        let period: Period = "2026-11".parse().unwrap();
        let shown = |currency: &str, abs: &str, applied: &str| {
            let mut decided = decision();
            decided.basis = Some(Money::new(d("190.5"), currency));
            decided.inputs.amount_tolerance_abs = d(abs);
            decided.inputs.tolerance_applied = Some(d(applied));
            let r = build("shop", currency, period, chrono_tz::UTC, &[decided.clone()]);
            let csv = render(&r, Format::Csv);
            let listing = csv.split("\n\n").nth(1).unwrap();
            let mut listing = csv::Reader::from_reader(listing.as_bytes());
            let at = listing
                .headers()
                .unwrap()
                .iter()
                .position(|h| h == "tolerance_applied")
                .unwrap();
            let cell = listing.records().next().unwrap().unwrap()[at].to_string();
            let json: serde_json::Value = serde_json::from_str(&render(&r, Format::Json)).unwrap();
            let inputs = json["discrepancies"][0]["inputs"].clone();
            // The statement line's trace of the same decision.
            let trace = crate::payout::model::Trace::of(&decided).tolerance_in(Some(currency));
            let on_statement = trace.tolerance_applied.unwrap().to_string();
            assert_eq!(cell, on_statement);
            assert_eq!(inputs["tolerance_applied"], on_statement.as_str());
            (
                cell,
                inputs["amount_tolerance_abs"].as_str().unwrap().to_owned(),
            )
        };
        assert_eq!(shown("USD", "0", "0"), ("0.00".into(), "0.00".into()));
        // 1 % of 168.82; a configured 0.005 is kept, never cut.
        assert_eq!(
            shown("USD", "0.005", "1.6882"),
            ("1.68".into(), "0.005".into())
        );
        assert_eq!(shown("JPY", "0", "0"), ("0".into(), "0".into()));
        assert_eq!(shown("KWD", "1", "0.5"), ("0.500".into(), "1.000".into()));
    }

    /// QA (new user, 2026-11-30): the listing's amounts were only text
    /// (`211.02 USD`), which a spreadsheet cannot sum. Plain decimals and
    /// their currencies are appended to the CSV and added to the JSON;
    /// the text columns stay where they were.
    #[test]
    fn the_listing_appends_plain_amounts_with_their_currencies() {
        let period: Period = "2026-11".parse().unwrap();
        let mut d = decision();
        // Fractions of a second kept, as statement traces print them (QA18
        // A4: the two did not join).
        d.decided_at += chrono::Duration::nanoseconds(448_915_073);
        // The settings the decision used (QA18 A3).
        d.inputs.tolerance_applied = Some(Decimal::new(211, 2));
        let r = build("shop", "USD", period, chrono_tz::UTC, &[d]);
        let csv = render(&r, Format::Csv);
        let mut tables = csv.split("\n\n");
        let _summary = tables.next().unwrap();
        let mut listing = csv::Reader::from_reader(tables.next().unwrap().as_bytes());
        let head: Vec<String> = listing
            .headers()
            .unwrap()
            .iter()
            .map(String::from)
            .collect();
        assert_eq!(head, DISCREPANCY_HEADER);
        assert_eq!(head[16], "decided_at", "old columns keep their places");
        let row = listing.records().next().unwrap().unwrap();
        let cell = |name: &str| row[head.iter().position(|h| h == name).unwrap()].to_string();
        assert_eq!(cell("order_amount"), "211.02 USD");
        assert_eq!(cell("claimed_amount"), "195.40 EUR");
        assert_eq!(cell("decided_at"), "2026-11-10T10:00:00.448915073Z");
        assert_eq!(cell("tolerance_applied"), "2.11");
        for (name, want) in [
            ("claimed_value", "195.40"),
            ("claim_currency", "EUR"),
            ("order_value", "211.02"),
            ("refunded_value", "20.52"),
            ("order_currency", "USD"),
            ("basis_value", "190.50"),
            ("basis_currency", "USD"),
            ("network_commission_value", "19.54"),
            ("commission_currency", "EUR"),
        ] {
            assert_eq!(cell(name), want, "{name}");
        }
        let json: serde_json::Value = serde_json::from_str(&render(&r, Format::Json)).unwrap();
        let row = &json["discrepancies"][0];
        assert_eq!(row["inputs"]["tolerance_applied"], "2.11", "{row}");
        assert_eq!(row["order_amount"], "211.02 USD");
        assert_eq!(row["order_value"], "211.02");
        assert_eq!(row["order_currency"], "USD");
        assert_eq!(row["claimed_value"], "195.40");
        // The HTML shows each amount once (the text columns).
        let html = render(&r, Format::Html);
        assert!(html.contains("<td>211.02 USD</td>"), "{html}");
        assert!(!html.contains("<th>order value</th>"), "{html}");
        // No amount: empty cells, JSON null.
        let mut none = decision();
        none.claimed_amount = None;
        none.refunded_amount = None;
        let r = build("shop", "USD", period, chrono_tz::UTC, &[none]);
        let json: serde_json::Value = serde_json::from_str(&render(&r, Format::Json)).unwrap();
        assert!(json["discrepancies"][0]["claimed_value"].is_null());
        assert!(json["discrepancies"][0]["claim_currency"].is_null());
        assert!(json["discrepancies"][0]["refunded_value"].is_null());
        assert_eq!(json["discrepancies"][0]["order_currency"], "USD");
    }
}

#[cfg(test)]
mod payable_tests {
    use super::*;
    use crate::reconcile::model::{DecisionInputs, MatchedBy, RecordRef};
    use plugin_api::{EventType, Money};

    fn t(s: &str) -> DateTime<Utc> {
        DateTime::parse_from_rfc3339(s).unwrap().with_timezone(&Utc)
    }

    fn usd(s: &str) -> Option<Money> {
        Some(Money::new(s.parse().unwrap(), "USD"))
    }

    /// A matched claim of `source`, judged on 2026-11-20, locked on
    /// 2026-11-15.
    fn decision(source: &str, id: &str) -> Decision {
        Decision {
            program: "shop".into(),
            claim: RecordRef {
                source: source.into(),
                id: id.into(),
                revision: 1,
            },
            partner_id: "p1".into(),
            partner_name: None,
            event_type: EventType::Sale,
            occurred_at: t("2026-11-10T10:00:00Z"),
            order: Some(RecordRef {
                source: "shop".into(),
                id: format!("A-{id}"),
                revision: 1,
            }),
            matched_by: Some(MatchedBy::OrderId),
            outcome: Outcome::Matched,
            payable: true,
            lock_at: Some(t("2026-11-15T00:00:00Z")),
            basis: usd("100.00"),
            claimed_amount: usd("100.00"),
            order_amount: usd("100.00"),
            refunded_amount: None,
            network_commission: usd("10.00"),
            fx_rate: None,
            winner: None,
            reason: "matched".into(),
            decided_at: t("2026-11-20T00:00:00Z"),
            order_fx_rate: None,
            inputs: DecisionInputs::default(),
        }
    }

    /// QA20 F2: the listing could not explain the summary's `payable`
    /// count: no payable flag, no lock date. a-80 (order lock not passed)
    /// and I-2 (network lock ahead) were among 20 claims, 18 payable,
    /// and nothing said which two.
    #[test]
    fn each_listed_claim_says_whether_it_is_payable_its_lock_date_and_why_not() {
        let judged_at = t("2026-11-20T00:00:00Z");
        let paid = decision("neta", "a-1");
        let mut pending = decision("neta", "a-80");
        pending.payable = false;
        pending.lock_at = Some(t("2026-11-30T12:00:00.5Z"));
        // Lock passed at the run, not payable: the network's approval.
        let mut approval = decision("neta", "a-81");
        approval.payable = false;
        let mut lost = decision("neta", "a-82");
        lost.outcome = Outcome::Duplicate;
        lost.payable = false;
        lost.basis = None;
        let decisions = [paid, pending, approval, lost];
        let period: Period = "2026-11".parse().unwrap();
        let r = build_judged(
            "shop",
            "USD",
            period,
            chrono_tz::UTC,
            &decisions,
            true,
            Some(judged_at),
        );
        assert_eq!(r.judged_at, Some(judged_at));
        let rows: Vec<(&str, bool, Option<&str>, Option<NotPayable>)> = r
            .discrepancies
            .iter()
            .map(|d| {
                (
                    d.claim_id.as_str(),
                    d.payable,
                    d.lock_at.as_deref(),
                    d.not_payable_reason,
                )
            })
            .collect();
        assert_eq!(
            rows,
            [
                ("a-1", true, Some("2026-11-15T00:00:00Z"), None),
                (
                    "a-80",
                    false,
                    Some("2026-11-30T12:00:00.500Z"),
                    Some(NotPayable::LockPending)
                ),
                (
                    "a-81",
                    false,
                    Some("2026-11-15T00:00:00Z"),
                    Some(NotPayable::AwaitingNetworkApproval)
                ),
                // The outcome says why.
                ("a-82", false, Some("2026-11-15T00:00:00Z"), None),
            ]
        );
        // The listing's payable flags add up to the summary's count.
        let listed = r.discrepancies.iter().filter(|d| d.payable).count() as u64;
        assert_eq!(listed, r.summary.iter().map(|s| s.payable).sum::<u64>());

        // CSV: appended at the end; the old columns keep their places.
        let csv = render(&r, Format::Csv);
        let listing = csv.split("\n\n").nth(1).unwrap();
        let mut reader = csv::Reader::from_reader(listing.as_bytes());
        let head: Vec<String> = reader.headers().unwrap().iter().map(String::from).collect();
        assert_eq!(head.len(), 37);
        assert_eq!(head[16], "decided_at");
        assert_eq!(head[26], "tolerance_applied");
        assert_eq!(&head[27..30], ["payable", "lock_at", "not_payable_reason"]);
        let cells: Vec<Vec<String>> = reader
            .records()
            .map(|r| {
                r.unwrap()
                    .iter()
                    .skip(27)
                    .take(3)
                    .map(String::from)
                    .collect()
            })
            .collect();
        assert_eq!(
            cells,
            [
                ["true", "2026-11-15T00:00:00Z", ""],
                ["false", "2026-11-30T12:00:00.500Z", "lock_pending"],
                ["false", "2026-11-15T00:00:00Z", "awaiting_network_approval"],
                ["false", "2026-11-15T00:00:00Z", ""],
            ]
        );

        // JSON.
        let json: serde_json::Value = serde_json::from_str(&render(&r, Format::Json)).unwrap();
        let row = &json["discrepancies"][1];
        assert_eq!(row["payable"], false, "{row}");
        assert_eq!(row["lock_at"], "2026-11-30T12:00:00.500Z");
        assert_eq!(row["not_payable_reason"], "lock_pending");
        assert!(json["discrepancies"][0]["not_payable_reason"].is_null());
        assert_eq!(json["discrepancies"][0]["payable"], true);

        // HTML: after the text columns, people's yes/no.
        let html = render(&r, Format::Html);
        assert!(
            html.contains("<th>decided at</th><th>payable</th><th>lock at</th><th>not payable reason</th><th>claim fx rate date</th><th>order fx rate date</th><th>event type</th><th>event conflict</th></tr>"),
            "{html}"
        );
        assert!(
            html.contains(
                "<td>2026-11-20T00:00:00Z</td><td>no</td><td>2026-11-30T12:00:00.500Z</td><td>lock_pending</td><td></td><td></td><td>sale</td><td></td></tr>"
            ),
            "{html}"
        );
        assert!(
            html.contains("<td>2026-11-20T00:00:00Z</td><td>yes</td><td>2026-11-15T00:00:00Z</td><td></td><td></td><td></td><td>sale</td><td></td></tr>"),
            "{html}"
        );
    }

    /// When the run's instant is not recorded (decisions of an earlier
    /// version), `decided_at` tells only the approval case apart: a
    /// judgement kept since may have been reached again after the lock.
    #[test]
    fn without_the_run_instant_only_a_lock_before_the_decision_says_why() {
        let mut d = decision("neta", "a-1");
        d.payable = false;
        assert_eq!(
            NotPayable::of(&d, None),
            Some(NotPayable::AwaitingNetworkApproval)
        );
        d.lock_at = Some(t("2026-11-25T00:00:00Z"));
        assert_eq!(NotPayable::of(&d, None), None);
        // The run that judged it (`reckon reconcile --now` before the
        // first judgement was kept) is what counts.
        assert_eq!(
            NotPayable::of(&d, Some(t("2026-11-24T00:00:00Z"))),
            Some(NotPayable::LockPending)
        );
        assert_eq!(
            NotPayable::of(&d, Some(t("2026-11-25T00:00:00Z"))),
            Some(NotPayable::AwaitingNetworkApproval)
        );
    }

    /// QA20 F8: no format gave money totals; an analyst summed the
    /// summary rows by hand to compare what a network claims with what is
    /// owed.
    #[test]
    fn totals_per_network_and_for_the_program_are_the_sums_of_the_summary_rows() {
        let a1 = decision("neta", "a-1");
        let mut a2 = decision("neta", "a-2");
        a2.partner_id = "p2".into();
        a2.claimed_amount = usd("102.00");
        a2.basis = usd("102.00");
        a2.network_commission = usd("10.20");
        let mut a3 = decision("neta", "a-3");
        a3.payable = false;
        a3.lock_at = Some(t("2026-12-01T00:00:00Z"));
        a3.basis = usd("50.00");
        let mut a4 = decision("neta", "a-4");
        a4.outcome = Outcome::NoOrder;
        a4.payable = false;
        a4.basis = None;
        a4.claimed_amount = usd("75.00");
        a4.network_commission = None;
        // A EUR claim converted to a USD basis.
        let mut e1 = decision("neta", "e-1");
        e1.claimed_amount = Some(Money::new("92".parse().unwrap(), "EUR"));
        e1.network_commission = Some(Money::new("9.2".parse().unwrap(), "EUR"));
        e1.basis = usd("100.00");
        let mut b1 = decision("netb", "b-1");
        b1.outcome = Outcome::Duplicate;
        b1.payable = false;
        b1.basis = None;
        b1.network_commission = None;
        let period: Period = "2026-11".parse().unwrap();
        let r = build_judged(
            "shop",
            "USD",
            period,
            chrono_tz::UTC,
            &[a1, a2, a3, a4, e1, b1],
            false,
            Some(t("2026-11-20T00:00:00Z")),
        );
        let json: serde_json::Value = serde_json::from_str(&render(&r, Format::Json)).unwrap();
        assert_eq!(
            json["network_totals"],
            serde_json::json!([
                {"network": "neta", "currency": "EUR", "commission_currency": "EUR",
                 "claims": 1, "payable": 1, "claimed_amount": "92.00",
                 "network_commission": "9.20", "basis": "100.00", "payable_basis": "100.00"},
                {"network": "neta", "currency": "USD", "commission_currency": "USD",
                 "claims": 4, "payable": 2, "claimed_amount": "377.00",
                 "network_commission": "30.20", "basis": "252.00", "payable_basis": "202.00"},
                {"network": "netb", "currency": "USD", "commission_currency": "USD",
                 "claims": 1, "payable": 0, "claimed_amount": "100.00",
                 "network_commission": null, "basis": "0.00", "payable_basis": "0.00"},
            ]),
            "{json}"
        );
        assert_eq!(
            json["program_totals"],
            serde_json::json!({"payable": 3, "basis": "352.00", "payable_basis": "302.00"})
        );
        // The outcome counts are untouched; every outcome is named, 0 for
        // those with no claim (QA35a L3).
        assert_eq!(json["totals"]["matched"], 4);
        let named: std::collections::BTreeSet<&str> = json["totals"]
            .as_object()
            .unwrap()
            .keys()
            .map(|k| k.as_str())
            .collect();
        let all: std::collections::BTreeSet<&str> = super::super::model::ALL_OUTCOMES
            .iter()
            .map(|o| o.as_str())
            .collect();
        assert_eq!(named, all);
        assert_eq!(json["totals"]["fx_missing"], 0);
        // Each network total is the sum of its summary rows.
        for n in &r.network_totals {
            let rows = r.summary.iter().filter(|s| {
                (&s.network, &s.currency, &s.commission_currency)
                    == (&n.network, &n.currency, &n.commission_currency)
            });
            let (claims, basis) = rows.fold((0, Decimal::ZERO), |(c, b), s| {
                (c + s.claims, b + s.basis.unwrap_or_default())
            });
            assert_eq!((claims, basis), (n.claims, n.basis), "{}", n.network);
        }
        // The HTML has a totals table, ending with the program's.
        let html = render(&r, Format::Html);
        assert!(html.contains("<h2>Totals by network</h2>"), "{html}");
        assert!(
            html.contains("<tr><td>neta</td><td>USD</td><td>4</td><td>2</td><td>377.00</td><td>30.20</td><td>USD</td><td>252.00</td><td>202.00</td><td>USD</td></tr>"),
            "{html}"
        );
        assert!(
            html.contains("<tr><td>all networks</td><td></td><td>6</td><td>3</td><td></td><td></td><td></td><td>352.00</td><td>302.00</td><td>USD</td></tr>"),
            "{html}"
        );
        // The CSV keeps its two tables.
        let csv = render(&r, Format::Csv);
        assert_eq!(csv.split("\n\n").count(), 2, "{csv}");
        assert!(!csv.contains("payable_basis"), "{csv}");
    }

    /// QA31-B L1: a claim that reported neither an amount nor a commission
    /// was grouped under the program currency, which the network may never
    /// have used; Reckon knows no currency for it, so its row has none.
    #[test]
    fn a_claim_without_amounts_is_grouped_under_no_currency() {
        let mut bare = decision("netc", "k-1");
        bare.outcome = Outcome::NoOrder;
        bare.payable = false;
        bare.claimed_amount = None;
        bare.network_commission = None;
        bare.basis = None;
        let period: Period = "2026-11".parse().unwrap();
        let r = build_judged("shop", "USD", period, chrono_tz::UTC, &[bare], false, None);
        assert_eq!(r.summary.len(), 1);
        assert_eq!(
            (
                r.summary[0].currency.as_str(),
                r.summary[0].commission_currency.as_str()
            ),
            ("", "")
        );
        assert_eq!(r.network_totals[0].currency, "");
        let csv = render(&r, Format::Csv);
        assert!(csv.contains("\nnetc,p1,,no_order,,1,0,"), "{csv}");
    }

    /// QA20 F9: a month without claims printed bare headers, nothing else.
    #[test]
    fn an_empty_month_says_so_in_the_html() {
        let period: Period = "2025-01".parse().unwrap();
        let r = build("shop", "USD", period, chrono_tz::America::New_York, &[]);
        let html = render(&r, Format::Html);
        assert!(
            html.contains("<p>No claims: no claim of program shop converted in 2025-01 on the calendar of America/New_York.</p>"),
            "{html}"
        );
        let json: serde_json::Value = serde_json::from_str(&render(&r, Format::Json)).unwrap();
        assert_eq!(json["claims"], 0);
        assert_eq!(json["network_totals"], serde_json::json!([]));
        assert_eq!(
            json["program_totals"],
            serde_json::json!({"payable": 0, "basis": "0.00", "payable_basis": "0.00"})
        );
        let mut one = build(
            "shop",
            "USD",
            "2026-11".parse().unwrap(),
            chrono_tz::UTC,
            &[decision("neta", "a-1")],
        );
        assert!(!render(&one, Format::Html).contains("No claims"));
        // A program not reconciled says that instead.
        one = build("shop", "USD", period, chrono_tz::UTC, &[]);
        one.not_reconciled = true;
        assert!(!render(&one, Format::Html).contains("No claims"));
    }
}
