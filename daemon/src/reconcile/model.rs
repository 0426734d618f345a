//! The output of reconciliation: one [`Decision`] per claim per program.
//!
//! Payout statements and KPI summaries read decisions only (never raw claims),
//! so this type is the contract between reconcile, payout and kpi. Add fields
//! at the end with `#[serde(default)]`; never change the meaning of one.

use chrono::{DateTime, NaiveDate, Utc};
use plugin_api::{EventType, Money};
use rust_decimal::Decimal;
use serde::{Deserialize, Serialize};

/// Exactly one outcome per claim.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Outcome {
    /// Matched an order; amounts agree within tolerance.
    Matched,
    /// Matched, but the claimed amount differs beyond tolerance; the basis is
    /// the order's net amount.
    AmountMismatch,
    /// The order was fully refunded.
    Refunded,
    /// The order was partly refunded; the basis is net of refunds.
    PartiallyRefunded,
    /// Another claim for the same order won under the attribution rule.
    Duplicate,
    /// The network itself reversed the claim.
    NetworkReversed,
    /// The network itself rejected the claim.
    NetworkRejected,
    /// No order found after the grace period.
    NoOrder,
    /// No order found yet; still within the grace period.
    AwaitingOrder,
    /// Currencies differ and no FX rate exists for the date.
    FxMissing,
}

/// Every outcome, in the order reports list them.
pub const ALL_OUTCOMES: [Outcome; 10] = [
    Outcome::Matched,
    Outcome::AmountMismatch,
    Outcome::PartiallyRefunded,
    Outcome::Refunded,
    Outcome::Duplicate,
    Outcome::NetworkReversed,
    Outcome::NetworkRejected,
    Outcome::NoOrder,
    Outcome::AwaitingOrder,
    Outcome::FxMissing,
];

impl Outcome {
    /// snake_case name as used in files.
    pub fn as_str(self) -> &'static str {
        match self {
            Outcome::Matched => "matched",
            Outcome::AmountMismatch => "amount_mismatch",
            Outcome::Refunded => "refunded",
            Outcome::PartiallyRefunded => "partially_refunded",
            Outcome::Duplicate => "duplicate",
            Outcome::NetworkReversed => "network_reversed",
            Outcome::NetworkRejected => "network_rejected",
            Outcome::NoOrder => "no_order",
            Outcome::AwaitingOrder => "awaiting_order",
            Outcome::FxMissing => "fx_missing",
        }
    }
    /// Outcomes that can earn commission (given the lock date has passed).
    pub fn earns(self) -> bool {
        matches!(
            self,
            Outcome::Matched | Outcome::AmountMismatch | Outcome::PartiallyRefunded
        )
    }
}

/// How a claim was matched to its order.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum MatchedBy {
    /// The claim's order id (normalised) equals the order's id or an alt id.
    OrderId,
    /// The claim's click id is one of the order's click ids.
    ClickId,
    /// Same coupon, amount within tolerance, time within the window.
    Coupon,
}

impl MatchedBy {
    /// snake_case name as used in files.
    pub fn as_str(self) -> &'static str {
        match self {
            MatchedBy::OrderId => "order_id",
            MatchedBy::ClickId => "click_id",
            MatchedBy::Coupon => "coupon",
        }
    }
}

/// A reference to a stored record at a revision.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
pub struct RecordRef {
    /// Connector id.
    pub source: String,
    /// The record's key within the source (claim external id / order id).
    pub id: String,
    /// The record revision the decision used (1 = first version).
    pub revision: u32,
}

/// The judgement of one claim in one program, with everything it used.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Decision {
    /// Program id.
    pub program: String,
    /// The claim (a stored `Conversion`).
    pub claim: RecordRef,
    /// Partner id as the network names it.
    pub partner_id: String,
    /// Partner display name, if known.
    pub partner_name: Option<String>,
    /// Event type of the claim.
    pub event_type: EventType,
    /// When the conversion happened (UTC).
    pub occurred_at: DateTime<Utc>,
    /// The matched order, if any.
    pub order: Option<RecordRef>,
    /// How it matched.
    pub matched_by: Option<MatchedBy>,
    /// The outcome.
    pub outcome: Outcome,
    /// True when commission may be paid now: earning outcome and lock passed.
    pub payable: bool,
    /// When the claim can no longer change (network lock, else order time +
    /// return window). `payable` needs `now >= lock_at`.
    pub lock_at: Option<DateTime<Utc>>,
    /// What commission is computed on, in the program currency (a converted
    /// amount rounded to its minor unit). `matched`: the claimed amount (converted at the
    /// order's day rate when claim and order share a currency, else at the
    /// claim's), or the order amount when the claim has none.
    /// `amount_mismatch` (including a negative claim): the order amount.
    /// `partially_refunded`: order amount − refunds, or, for a claim within
    /// tolerance, claimed × (order net ÷ order amount). `None` for the other
    /// outcomes. See the precedence list in `reconcile::engine`.
    pub basis: Option<Money>,
    /// The claim's sale amount as the network reported it.
    pub claimed_amount: Option<Money>,
    /// The order's amount (net, before refunds).
    pub order_amount: Option<Money>,
    /// Refunds on the order so far.
    pub refunded_amount: Option<Money>,
    /// The network's own commission figure, to compare with ours.
    pub network_commission: Option<Money>,
    /// FX rate applied to reach the program currency (claim → program).
    pub fx_rate: Option<Decimal>,
    /// For `duplicate`: the winning claim. For the winner: none.
    pub winner: Option<RecordRef>,
    /// A sentence a person can check, e.g. "order A-1 also claimed by
    /// impact/123, which wins on last click (2026-11-02T10:00Z)".
    pub reason: String,
    /// When this decision was made (the reconcile run's `now`). A later run
    /// that reaches the same judgement (outcome, payable flag and basis,
    /// for the same order and winner) keeps the earlier `decided_at`.
    pub decided_at: DateTime<Utc>,
    /// FX rate applied to the order's amounts to reach the program currency
    /// (order → program), when an order was used.
    #[serde(default)]
    pub order_fx_rate: Option<Decimal>,
    /// The rule and tolerances the decision used.
    #[serde(default)]
    pub inputs: DecisionInputs,
}

/// The program settings a decision was made with, so a later reader can tell
/// whether a different decision came from different data or different rules.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct DecisionInputs {
    /// Attribution rule (`last_click`, `first_click`, `source_priority`).
    #[serde(default)]
    pub attribution: String,
    /// Absolute amount tolerance, program currency.
    #[serde(default)]
    pub amount_tolerance_abs: Decimal,
    /// Percent amount tolerance.
    #[serde(default)]
    pub amount_tolerance_pct: Decimal,
    /// The tolerance applied to this claim: max(abs, pct × order amount), in
    /// the program currency (none when no amounts were compared).
    #[serde(default)]
    pub tolerance_applied: Option<Decimal>,
    /// Program return window, days.
    #[serde(default)]
    pub return_window_days: u32,
    /// Program no-order grace period, days.
    #[serde(default)]
    pub no_order_grace_days: u32,
    /// Coupon matching window, hours.
    #[serde(default)]
    pub fuzzy_window_hours: u32,
    /// Whether coupon matching was enabled.
    #[serde(default)]
    pub coupon_matching: bool,
    /// The date of the `[fx]` row behind `fx_rate` (the claim's day, or up
    /// to `max_age_days` before it); none when no rate was needed.
    /// Decisions judged before `JUDGE_VERSION` 14 have none. Left out of
    /// JSON when none, so a decision without a conversion reads as before.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub fx_rate_date: Option<NaiveDate>,
    /// The date of the `[fx]` row behind `order_fx_rate`, as `fx_rate_date`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub order_fx_rate_date: Option<NaiveDate>,
    /// `[programs.match] order_window_days`: the most days between the
    /// conversion and an order matched by id or click id. This and the two
    /// below are none in decisions judged before `JUDGE_VERSION` 20 (QA39a
    /// A-L4), and left out of JSON when none.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub order_window_days: Option<u32>,
    /// The program's `source_priority` list (empty when it has none).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub source_priority: Option<Vec<String>>,
    /// The program's `require_network_approval`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub require_network_approval: Option<bool>,
}
