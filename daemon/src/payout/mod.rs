//! Commission rules and payout statements (issue 7).
//!
//! Reads reconciled decisions only (never raw claims), prices each payable
//! claim with the program's commission rules, and issues one statement per
//! partner and period: drafts that are replaced at will, then finalised
//! statements that are immutable, content-hashed and recorded in the store.
//! It does not reconcile, fetch FX rates or schedule itself: those inputs
//! come from `reconcile`, `fx` and `schedule`.
//!
//! | module | job |
//! |---|---|
//! | [`config`] | `[programs.commission]`: rules, bonuses, overrides, payout settings |
//! | [`period`] | monthly, semi-monthly and weekly periods |
//! | [`rules`] | rule resolution, tier arithmetic, rounding |
//! | [`model`] | the statement document |
//! | [`statement`] | decisions → statements (pure) |
//! | [`render`] | JSON, CSV, HTML, summary.csv |
//! | [`files`] | durable all-or-nothing directory replacement |
//! | [`book`] | what is recorded in the store's `statements` tree |
//! | [`issued`] | refuses runs over finalised files the store did not issue |
//! | [`lifecycle`] | generate, finalize, show, verify, scheduled drafts |
//! | [`terms`] | the terms a finalised period was paid under, and edits since |
//! | [`trace`] | where a claim was paid: its lines and adjustments |
//! | [`hook`] | scheduled drafts after syncs (`draft_schedule`) |
//! | [`cli`] | `reckon statements ...` |
pub mod book;
pub mod cli;
pub mod config;
pub mod files;
pub mod hook;
pub mod issued;
pub mod lifecycle;
pub mod model;
pub mod period;
pub mod render;
pub mod rules;
pub mod statement;
pub mod terms;
pub mod trace;

pub use lifecycle::{
    finalize, finalize_early, finalize_partitioned, generate, generate_open_drafts,
    generate_partitioned, show, verify, DecisionSource, Decisions, Inputs, Partition, PayoutError,
    Report, StoredDecisions,
};
pub use statement::FxRates;
