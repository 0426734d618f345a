//! The statement lifecycle: generate drafts, finalise, reproduce, show and
//! verify — the library behind `reckon statements ...` and the scheduler's
//! draft runs.
//!
//! Order of durable effects (what makes a kill at any point safe):
//! 1. every file of the period is written into a staging directory and
//!    made durable ([`super::files::Staging::stage`]); a failure here
//!    changes nothing (the staging directory is dropped);
//! 2. the period is recorded in the store (one batch, made whole against a
//!    crash or a full disk by its redo log, [`book::commit`]: finalised
//!    statements, paid-claims ledger, bonus ledger, released-lines ledger,
//!    settled ledger, balances, and the period record last), and the store
//!    flushed;
//! 3. the staging directory replaces the period directory
//!    ([`super::files::Staging::swap`]); a half-done swap is repaired by
//!    the next command.
//!
//! So files never say `finalised` before the store does: finalised files
//! the store does not record come from another (older, new, wrong) store
//! and are refused ([`super::issued`]). A kill before 2 leaves the period
//! as it was; a kill between 2 and 3 leaves the store recorded and the
//! previous files in place: `verify` and `show` say so, and running the
//! command again writes the files (a finalised period byte for byte from
//! the store).

use super::book::{self, Balance, FinalRecord, PartnerFiles, PeriodRecord, StatementBook};
use super::config::{CommissionConfig, CommissionConfigError, Reference};
use super::files::{self, FileError, Staging};
use super::model::{
    payee_key, split_payee, BonusAdjustment, BonusLine, PaidBonus, PaidClaim, Statement, Status,
};
use super::period::{Period, PeriodError};
use super::render::{self, RenderError, SummaryRow};
use super::statement::{self, Context, FxRates, History, ProgramFacts, Skipped};
use crate::reconcile::config::ProgramConfig;
use crate::reconcile::model::Decision;
use chrono::NaiveDate;
use rust_decimal::Decimal;
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

/// Errors of the statement lifecycle; each says what to do.
#[derive(Debug, thiserror::Error)]
pub enum PayoutError {
    /// Claims of one of the program's connectors were paid on finalised
    /// statements of another program id.
    #[error("program `{program}`: claims of connector `{connector}` were paid on finalised statements of program `{other}`. Paying is recorded per program, so statements of `{program}` would pay them again; nothing was written. If `{other}` was renamed to `{program}`, give it its old id back (program ids are permanent once a period is finalised); if `{connector}` moved from `{other}`, put it back there (README, Payout statements, \"Program ids and connectors after finalising\")")]
    PaidElsewhere {
        /// The program asked for.
        program: String,
        /// Its claims connector.
        connector: String,
        /// The program id whose statements paid it.
        other: String,
    },
    /// A connector whose claims the program's finalised statements paid is
    /// no longer one of its `claims`.
    #[error("program `{program}`: claims of connector `{connector}` were paid on finalised statements of `{program}` (the first in its ledger: {statement}), but `{connector}` is no longer in the program's `claims`. Without it those claims are no longer judged: a later reversal or refund of them would never be taken back, and another network's claim for an order `{connector}` was paid for could win that order and be paid again; nothing was written. Put `{connector}` back in `claims`. When the contract with that network ends, keep it listed and stop its data instead: `enabled = false` on its [[connectors]] entry (a postback endpoint stays in [[postbacks]] and stores only what the network still sends), ideally once its paid claims can no longer be reversed (README, Payout statements, \"Program ids and connectors after finalising\")")]
    PaidConnectorRemoved {
        /// The program asked for.
        program: String,
        /// The connector no longer in its `claims`.
        connector: String,
        /// A statement that paid one of its claims.
        statement: String,
    },
    /// The payout currency or the commission timezone differs from the one
    /// the latest finalised period was issued in.
    #[error("program `{program}`: the {} is {now} in the config, but finalised period {period} was issued in {was}. {}; nothing was written. Set `{key} = \"{was}\"` back in {}: a program's {} is permanent once a period is finalised (README, Payout statements, \"Program ids and connectors after finalising\")", settled_what(key), settled_why(key), settled_where(key), settled_what(key))]
    SettledChanged {
        /// The program asked for.
        program: String,
        /// The config key: `payout_currency` or `timezone` of the
        /// commission, or the program's `currency`.
        key: &'static str,
        /// What the finalised period used.
        was: String,
        /// What the config says now.
        now: String,
        /// The latest finalised period.
        period: String,
    },
    /// The commission config is invalid.
    #[error(transparent)]
    Config(#[from] CommissionConfigError),
    /// The program has no `[programs.commission]`.
    #[error("program `{0}` has no [programs.commission] section; add payout_currency and rules")]
    NoCommission(String),
    /// The period name is malformed.
    #[error(transparent)]
    Period(#[from] PeriodError),
    /// The store failed.
    #[error(transparent)]
    Book(#[from] book::BookError),
    /// A file operation failed.
    #[error(transparent)]
    File(#[from] FileError),
    /// Rendering failed.
    #[error(transparent)]
    Render(#[from] RenderError),
    /// A later period is already finalised.
    #[error("program `{program}`: period {period} starts before finalised period {later} (periods are generated in order); generate {next} (from {next_start}) or a later period: a claim is paid by the first period generated once it is payable, so {next} pays those of {period} not paid yet")]
    Superseded {
        /// Program.
        program: String,
        /// The period asked for.
        period: String,
        /// The finalised period starting last.
        later: String,
        /// The first period of the asked-for kind that may be generated
        /// (finance QA16 M1: the advice named a finalised weekly period
        /// to a program now monthly).
        next: String,
        /// Its first day (QA17: it may not have started yet).
        next_start: chrono::NaiveDate,
    },
    /// Nothing recorded for the period.
    #[error("program `{program}`: no statements recorded for period {period}; run `reckon statements generate --program {program} --period {period}` first")]
    NotGenerated {
        /// Program.
        program: String,
        /// Period.
        period: String,
    },
    /// Nothing recorded for a period that precedes a finalised one: it
    /// never will have statements.
    #[error("program `{program}`: period {period} has no statements and will not have any: {later}, the first period finalised from its start on, paid its payable claims (a claim is paid by the first period generated once it is payable). Show or verify {later} instead{}", retired.as_ref().map(|d| format!("; a draft of {period} that was never finalised is kept in {}", d.display())).unwrap_or_default())]
    NoStatements {
        /// Program.
        program: String,
        /// The period asked for.
        period: String,
        /// The first finalised period after it.
        later: String,
        /// Where its retired draft's files are, if there are any.
        retired: Option<PathBuf>,
    },
    /// The period has not started yet: finalising it would close every
    /// earlier period for good.
    #[error("program `{program}`: period {period} starts on {start} ({tz}), after today ({today}); only a period that has begun has statements to generate or finalise. {}", not_started_hint(*start, *today))]
    NotStarted {
        /// Program.
        program: String,
        /// The period asked for.
        period: String,
        /// Its first day.
        start: NaiveDate,
        /// Today in the program's timezone.
        today: NaiveDate,
        /// The program's timezone.
        tz: chrono_tz::Tz,
    },
    /// The period is still running and `early` was not given.
    #[error("program `{program}`: period {period} runs until {last} ({tz}); finalising it now closes it early, and claims converted from now until then go to the next period. Pass --early to finalise it anyway, or wait until {next}")]
    StillOpen {
        /// Program.
        program: String,
        /// The period asked for.
        period: String,
        /// Its last day.
        last: NaiveDate,
        /// The first day after it.
        next: NaiveDate,
        /// The program's timezone.
        tz: chrono_tz::Tz,
    },
    /// The program's decisions could not be read.
    #[error("reading the decisions of program `{program}`: {reason}")]
    Decisions {
        /// Program.
        program: String,
        /// What failed.
        reason: String,
    },
    /// The statement directory holds finalised statements that the store
    /// does not record as finalised with the same content
    /// ([`super::issued`]).
    #[error("program `{program}`: {dir} holds finalised statements that this store did not issue: {}. The store is older than these files or not the one that issued them (restored from an older backup, a new or empty store, or a wrong daemon.data_dir). Generating or finalising now would overwrite statements that may already have been paid and pay their claims again, so no statement of this program is generated or finalised until then. Restore the store that finalised them (a backup taken after finalising {}) or point daemon.data_dir at it (README, Payout statements, \"Backups and restoring the store\"). If these files are not this program's statements, move them out of {dir} or set daemon.output_dir to another directory", sets.iter().map(ToString::to_string).collect::<Vec<_>>().join("; "), sets.last().map_or("", |s| s.period.as_str()), dir = dir.display())]
    UnknownFinalised {
        /// Program.
        program: String,
        /// `<output_dir>/statements/<program>`.
        dir: PathBuf,
        /// The sets, by period.
        sets: Vec<super::issued::UnknownSet>,
    },
    /// The period was recorded but its staged files could not be swapped
    /// in.
    #[error("{error}. The store has recorded {period} as {} version {version}, but its files are not in place: fix that and run `reckon statements {} --program {program} --period {period}` again{}", status.as_str(), command(*status), if *status == Status::Finalised { ", which writes the recorded statements byte for byte" } else { "" })]
    NotSwappedIn {
        /// Program.
        program: String,
        /// Period.
        period: String,
        /// Status recorded.
        status: Status,
        /// Version recorded.
        version: u32,
        /// What failed.
        error: FileError,
    },
    /// A finalise recorded in the store whose files were not swapped in
    /// (the run was cut short) could not be completed from the store
    /// ([`complete_interrupted`]).
    #[error("program `{program}`: a finalize of {period} was interrupted (the store records it finalised, but its files are not in place) and writing its files back from the store failed: {error}. Fix that and run `reckon statements finalize --program {program} --period {period}`, which writes the recorded statements byte for byte")]
    FinaliseInterrupted {
        /// Program.
        program: String,
        /// Period.
        period: String,
        /// Why the files could not be written back.
        error: Box<PayoutError>,
    },
    /// Streamed partitions were not in partner order.
    #[error("statement input: {0}")]
    Partitions(String),
    /// A finalised statement in the store does not reproduce its hash.
    #[error("program `{program}` period {period}: the stored finalised statement of partner `{partner}` does not match its recorded hash; the store is damaged. Stop the daemon and restore the store (daemon.data_dir) from the latest backup taken after this program's latest finalize (README, Payout statements, \"Backups and restoring the store\"); an older backup is refused")]
    StoreMismatch {
        /// Program.
        program: String,
        /// Period.
        period: String,
        /// Partner.
        partner: String,
    },
}

impl PayoutError {
    /// The program this error's message begins with (``program `id` ...``),
    /// for those that begin with it: whoever names the program of another
    /// error (the scheduled drafts, [`super::hook`]) adds nothing to these.
    /// Its tests hold every variant's message to this.
    pub fn program(&self) -> Option<&str> {
        use PayoutError as E;
        match self {
            E::PaidElsewhere { program, .. }
            | E::PaidConnectorRemoved { program, .. }
            | E::SettledChanged { program, .. }
            | E::Superseded { program, .. }
            | E::NotGenerated { program, .. }
            | E::NoStatements { program, .. }
            | E::NotStarted { program, .. }
            | E::StillOpen { program, .. }
            | E::UnknownFinalised { program, .. }
            | E::StoreMismatch { program, .. }
            | E::FinaliseInterrupted { program, .. }
            | E::NoCommission(program) => Some(program),
            E::Config(_)
            | E::Period(_)
            | E::Book(_)
            | E::File(_)
            | E::Render(_)
            | E::Decisions { .. }
            | E::NotSwappedIn { .. }
            | E::Partitions(_) => None,
        }
    }
}

/// What a [`PayoutError::SettledChanged`] key is, in words.
fn settled_what(key: &str) -> &'static str {
    match key {
        "payout_currency" => "payout currency",
        "currency" => "program currency",
        _ => "timezone",
    }
}

/// Why a [`PayoutError::SettledChanged`] key cannot change.
fn settled_why(key: &str) -> &'static str {
    match key {
        "payout_currency" => "Its statements paid lines and carried balances in that currency, and later statements carry those balances and reprice those lines: in another currency they would add and subtract amounts of two currencies (Reckon converts nothing it has paid)",
        "currency" => "Its paid lines' commission bases and its partners' volumes are in that currency, and later statements reprice those lines against today's decisions: in another currency every claim not in it would need a rate into it, and one without would read as unpriceable and be reversed (QA30-B L1: every paid line was)",
        _ => "Its paid claims were dated, put in periods and priced by the rules in force on their dates in that timezone: in another one, claims near midnight change date, period and rule, and would be repriced as if the network had restated them",
    }
}

/// Where a [`PayoutError::SettledChanged`] key is set.
fn settled_where(key: &str) -> &'static str {
    if key == "currency" {
        "the program's [[programs]] entry"
    } else {
        "[programs.commission]"
    }
}

/// The command that writes a period's statements with `status`.
fn command(status: Status) -> &'static str {
    match status {
        Status::Finalised => "finalize",
        Status::Draft => "generate",
    }
}

/// Everything generation and finalisation read.
#[derive(Clone, Copy)]
pub struct Inputs<'a> {
    /// Program id.
    pub program: &'a str,
    /// Its commission config.
    pub config: &'a CommissionConfig,
    /// The program's decisions.
    pub decisions: Decisions<'a>,
    /// Exchange rates.
    pub fx: &'a dyn FxRates,
    /// The statements book in the store.
    pub book: &'a dyn StatementBook,
    /// The config's output directory (statements go under
    /// `<output_dir>/statements/<program>/<period>/`).
    pub output_dir: &'a Path,
    /// Called after each durable step with its name (crash tests abort
    /// here); pass `&|_| {}` otherwise.
    pub step: &'a dyn Fn(&str),
}

impl std::fmt::Debug for Inputs<'_> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Inputs")
            .field("program", &self.program)
            .field("decisions", &self.decisions)
            .field("output_dir", &self.output_dir)
            .finish_non_exhaustive()
    }
}

/// Where a statement run reads the program's decisions.
#[derive(Clone, Copy)]
pub enum Decisions<'a> {
    /// All of them, decoded (tests, small programs).
    Slice(&'a [Decision]),
    /// Read where they are stored, in one pass per run: only the decisions
    /// the period's statements read ([`statement::concerns`]) are kept, as
    /// their stored bytes grouped by payee, and each payee's are decoded
    /// when its statement is built.
    Source(&'a dyn DecisionSource),
}

impl std::fmt::Debug for Decisions<'_> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Decisions::Slice(d) => write!(f, "Slice({} decisions)", d.len()),
            Decisions::Source(_) => f.write_str("Source"),
        }
    }
}

/// A program's stored decisions (`reconcile`'s tree; tests use memory).
pub trait DecisionSource {
    /// Calls `each` with every decision of the program, in any order, as
    /// decoded and as stored.
    fn scan(&self, each: &mut dyn FnMut(&Decision, &[u8])) -> Result<(), PayoutError>;
    /// Decodes what [`DecisionSource::scan`] gave as stored.
    fn decode(&self, stored: &[u8]) -> Result<Decision, PayoutError>;
}

/// A program's decisions in the store, as the last reconcile run left them.
#[derive(Debug, Clone, Copy)]
pub struct StoredDecisions<'s> {
    /// The store.
    pub store: &'s crate::store::Store,
    /// The program.
    pub program: &'s str,
}

impl DecisionSource for StoredDecisions<'_> {
    fn scan(&self, each: &mut dyn FnMut(&Decision, &[u8])) -> Result<(), PayoutError> {
        let whole =
            crate::reconcile::scan_decisions(self.store, self.program, each).map_err(|e| {
                PayoutError::Decisions {
                    program: self.program.into(),
                    reason: e.to_string(),
                }
            })?;
        if !whole {
            return Err(PayoutError::Decisions {
                program: self.program.into(),
                reason: format!("the program has no finished reconcile run (never reconciled, or its last full run was cut short), so its stored decisions may be partial; run `reckon reconcile --program {}` and try again", self.program),
            });
        }
        Ok(())
    }
    fn decode(&self, stored: &[u8]) -> Result<Decision, PayoutError> {
        crate::reconcile::decode_stored_decision(stored).map_err(|e| PayoutError::Decisions {
            program: self.program.into(),
            reason: format!(
                "a stored decision is unreadable ({e}); run `reckon reconcile --full --program {}`",
                self.program
            ),
        })
    }
}

/// What a generate or finalise did.
#[derive(Debug, Clone, PartialEq)]
pub struct Report {
    /// Program.
    pub program: String,
    /// Period.
    pub period: String,
    /// Status of the statements now.
    pub status: Status,
    /// Their version.
    pub version: u32,
    /// Directory of the files.
    pub dir: PathBuf,
    /// Partners with a statement.
    pub partners: usize,
    /// Payable lines over all statements.
    pub lines: usize,
    /// Adjustment lines over all statements (of claims and of bonuses).
    pub adjustments: usize,
    /// Of `adjustments`, those of bonuses.
    pub bonus_adjustments: usize,
    /// Manual adjustments over all statements (not in `adjustments`).
    pub manual_adjustments: usize,
    /// Sum of total payable (payout currency).
    pub total_payable: Decimal,
    /// Sum of balances carried out.
    pub carried_out: Decimal,
    /// The negative part of `carried_out`: what partners owe back (their
    /// clawbacks exceeded their earnings); `carried_out - owed_back` is
    /// what is owed to partners.
    pub owed_back: Decimal,
    /// True when the period was already finalised and nothing was recomputed
    /// (files restored from the store if they had changed).
    pub already_finalised: bool,
    /// Files restored from the store (already-finalised periods only).
    pub restored: Vec<String>,
    /// Claims left out, with reasons.
    pub skipped: Vec<Skipped>,
    /// Warnings for the operator.
    pub warnings: Vec<String>,
}

/// What to do about a period that has not begun: wait for a near one
/// (QA18: "a year typo?" for one starting tomorrow), check a far one.
fn not_started_hint(start: NaiveDate, today: NaiveDate) -> String {
    match (start - today).num_days() {
        1 => "It begins tomorrow: run this again then".to_owned(),
        2..=31 => format!(
            "It begins in {} days: run this again then",
            (start - today).num_days()
        ),
        _ => "Check the period (a year typo?)".to_owned(),
    }
}

/// `<output_dir>/statements/<program>/<period>`.
pub fn period_dir(output_dir: &Path, program: &str, period: &str) -> PathBuf {
    output_dir
        .join("statements")
        .join(render::file_stem(program))
        .join(period)
}

/// [`period_dir`], after refusing a symbolic link where the statements,
/// program or set-aside directories are (the period directory itself and
/// its staging siblings are checked by [`files::recover`], which every
/// operation on a period runs first). `output_dir` itself may be a link.
pub fn checked_period_dir(
    output_dir: &Path,
    program: &str,
    period: &str,
) -> Result<PathBuf, FileError> {
    let program_dir = super::issued::program_dir(output_dir, program);
    for dir in [
        output_dir.join("statements"),
        program_dir.clone(),
        program_dir.join("set-aside"),
        set_aside_dir(output_dir, program, period),
    ] {
        files::refuse_symlink(&dir)?;
    }
    Ok(period_dir(output_dir, program, period))
}

fn period_key(program: &str, period: &str) -> String {
    book::key(&["period", program, period])
}

fn load_period(
    b: &dyn StatementBook,
    program: &str,
    period: &str,
) -> Result<Option<PeriodRecord>, PayoutError> {
    let k = period_key(program, period);
    match b.get(&k)? {
        None => Ok(None),
        Some(v) => Ok(Some(book::decode(&k, v)?)),
    }
}

/// All period records of a program, by key.
pub fn period_records(
    b: &dyn StatementBook,
    program: &str,
) -> Result<Vec<PeriodRecord>, PayoutError> {
    b.scan_prefix(&book::prefix(&["period", program]))?
        .into_iter()
        .map(|(k, v)| book::decode(&k, v).map_err(PayoutError::from))
        .collect()
}

/// The program's payout history: claims paid and balances of finalised
/// statements.
pub fn load_history(b: &dyn StatementBook, program: &str) -> Result<History, PayoutError> {
    let mut h = History::default();
    let paid_prefix = book::prefix(&["paid", program]);
    // One entry at a time: the ledger holds every claim ever paid.
    b.each_prefix(&paid_prefix, &mut |k, v| {
        let rest = &k[paid_prefix.len()..];
        let Some((network, claim)) = rest.split_once('\x1f') else {
            return Err(book::BookError::Corrupt {
                key: book::printable(&k),
                message: "key has no network/claim parts".into(),
            });
        };
        let paid: PaidClaim = book::decode(&k, v)?;
        h.paid
            .insert((network.to_string(), claim.to_string()), paid);
        Ok(())
    })?;
    let bal_prefix = book::prefix(&["balance", program]);
    let balances = b.scan_prefix(&bal_prefix)?;
    // Networks each partner id was paid on, built once and only when a
    // format-1 balance (bare partner id) needs it.
    let mut paid_on: Option<BTreeMap<String, std::collections::BTreeSet<String>>> = None;
    for (k, v) in balances {
        let stored = &k[bal_prefix.len()..];
        let bal: Balance = book::decode(&k, v)?;
        let payee = match split_payee(stored) {
            (Some(_), _) => stored.to_string(),
            (None, partner) => {
                let index = paid_on.get_or_insert_with(|| {
                    let mut m: BTreeMap<String, std::collections::BTreeSet<String>> =
                        BTreeMap::new();
                    for ((n, _), p) in &h.paid {
                        m.entry(p.partner_id.clone()).or_default().insert(n.clone());
                    }
                    m
                });
                legacy_payee(index.get(partner), partner, &mut h.warnings)
            }
        };
        if payee != stored {
            h.legacy_balances.insert(payee.clone(), stored.to_string());
        }
        *h.balances.entry(payee).or_default() += bal.carried_out;
    }
    load_derived_ledgers(b, program, &mut h)?;
    let settled_prefix = book::prefix(&["settled", program]);
    b.each_prefix(&settled_prefix, &mut |k, v| {
        let statement = k[settled_prefix.len()..].to_string();
        h.settled.insert(statement, book::decode(&k, v)?);
        Ok(())
    })?;
    for rec in period_records(b, program)? {
        if rec.status != Status::Finalised {
            continue;
        }
        if let Some(at) = closed_early_at(b, &rec)? {
            h.closed_early.insert(rec.period.clone(), at);
        }
        let Some(text) = &rec.held_back_csv else {
            continue;
        };
        match held_back_bonuses(text) {
            Ok(rows) => {
                for (payee_cell, bonus) in rows {
                    h.held_back_bonuses
                        .entry(super::statement::held_back_key(
                            program,
                            &rec.period,
                            &payee_cell,
                        ))
                        .or_default()
                        .insert(bonus);
                }
            }
            Err(e) => h.warnings.push(format!(
                "the record of finalised period {program}/{} holds a held_back.csv that does not read ({e}); bonuses it held back are not paid until it is regenerated",
                rec.period
            )),
        }
    }
    Ok(h)
}

/// When a finalised period was closed early (`--early`): its statements'
/// `closed_early_at`, read from the first (they all have the same; the
/// rest of its JSON is skipped, not kept).
fn closed_early_at(
    b: &dyn StatementBook,
    rec: &PeriodRecord,
) -> Result<Option<chrono::DateTime<chrono::Utc>>, PayoutError> {
    #[derive(serde::Deserialize)]
    struct ClosedEarly {
        closed_early_at: Option<chrono::DateTime<chrono::Utc>>,
    }
    let Some(first) = rec.partners.first() else {
        return Ok(None);
    };
    let (c, _): (ClosedEarly, _) = final_record(b, &rec.program, &rec.period, &first.partner_id)?;
    Ok(c.closed_early_at)
}

/// The bonuses a period's `held_back.csv` lists: (payee cell as written,
/// bonus id). A bonus's row names it `bonus <id>`; a claim's row names
/// `<network>/<claim id>` (a network id holds no space).
fn held_back_bonuses(text: &str) -> Result<Vec<(String, String)>, csv::Error> {
    let mut r = csv::Reader::from_reader(text.as_bytes());
    let mut out = Vec::new();
    for row in r.records() {
        let row = row?;
        if let (Some(payee), Some(bonus)) = (
            row.get(0),
            row.get(1).and_then(|c| c.strip_prefix("bonus ")),
        ) {
            out.push((payee.to_string(), bonus.to_string()));
        }
    }
    Ok(out)
}

/// The key of the bonus ledger's marker: present once the program's bonus
/// ledger (`bonus␟<program>␟...`) records every finalised statement's
/// bonuses.
fn bonus_ledger_key(program: &str) -> String {
    book::key(&["bonus_ledger", program])
}

/// The key of the released-lines ledger's marker: present once the
/// program's released-lines ledger (`released␟<program>␟...`) records every
/// finalised line whose claim the ledger of paid claims no longer holds
/// for it.
fn released_ledger_key(program: &str) -> String {
    book::key(&["released_ledger", program])
}

/// A ledger's marker's value.
#[derive(Debug, serde::Serialize, serde::Deserialize)]
struct LedgerMarker {
    /// [`book::BOOK_VERSION`].
    book_version: u32,
}

/// Reads the bonus ledger into `h.bonuses` and the released-lines ledger
/// into `h.released`. A store whose periods were finalised before a ledger
/// existed has no marker for it: that ledger is then derived from the
/// finalised statements' canonical JSON, replayed in period order (one
/// pass for both), and `h.bonus_ledger_derived` or
/// `h.released_ledger_derived` makes the run record it.
///
/// The bonus ledger replays bonus lines and (format 7) bonus adjustments.
/// The released-lines ledger is every finalised line whose claim's entry in
/// `h.paid` (read first) is not that line (a moved claim: its entry was
/// released or replaced since; nothing else removes or replaces one), as
/// [`PaidClaim::of_line`] records it, with the adjustments later
/// statements made to it added to its `paid_total`.
fn load_derived_ledgers(
    b: &dyn StatementBook,
    program: &str,
    h: &mut History,
) -> Result<(), PayoutError> {
    let marker = bonus_ledger_key(program);
    let derive_bonuses = match b.get(&marker)? {
        Some(v) => {
            book::decode::<LedgerMarker>(&marker, v)?;
            let prefix = book::prefix(&["bonus", program]);
            b.each_prefix(&prefix, &mut |k, v| {
                let Some((statement, bonus)) = k[prefix.len()..].rsplit_once('\x1f') else {
                    return Err(book::BookError::Corrupt {
                        key: book::printable(&k),
                        message: "key has no statement/bonus parts".into(),
                    });
                };
                let paid: PaidBonus = book::decode(&k, v)?;
                h.bonuses
                    .entry(statement.to_string())
                    .or_default()
                    .insert(bonus.to_string(), paid);
                Ok(())
            })?;
            false
        }
        None => true,
    };
    let marker = released_ledger_key(program);
    let derive_released = match b.get(&marker)? {
        Some(v) => {
            book::decode::<LedgerMarker>(&marker, v)?;
            let prefix = book::prefix(&["released", program]);
            b.each_prefix(&prefix, &mut |k, v| {
                let mut parts = k[prefix.len()..].splitn(3, '\x1f');
                let (Some(statement), Some(network), Some(claim)) =
                    (parts.next(), parts.next(), parts.next())
                else {
                    return Err(book::BookError::Corrupt {
                        key: book::printable(&k),
                        message: "key has no statement/network/claim parts".into(),
                    });
                };
                let paid: PaidClaim = book::decode(&k, v)?;
                h.released
                    .entry(statement.to_string())
                    .or_default()
                    .insert((network.to_string(), claim.to_string()), paid);
                Ok(())
            })?;
            false
        }
        None => true,
    };
    if !derive_bonuses && !derive_released {
        return Ok(());
    }
    let mut finalised: Vec<PeriodRecord> = period_records(b, program)?
        .into_iter()
        .filter(|r| r.status == Status::Finalised)
        .collect();
    finalised.sort_by_key(|r| r.period_start);
    for rec in &finalised {
        for p in &rec.partners {
            let (s, _): (Statement, _) = final_record(b, program, &rec.period, &p.partner_id)?;
            if derive_bonuses {
                record_bonuses(
                    &s.statement_id,
                    &s.bonuses,
                    &s.bonus_adjustments,
                    &mut h.bonuses,
                );
            }
            if derive_released {
                // An adjustment always follows its line (a later period).
                for a in &s.adjustments {
                    if let Some(e) = h
                        .released
                        .get_mut(&a.original_statement_id)
                        .and_then(|m| m.get_mut(&(a.network.clone(), a.claim_id.clone())))
                    {
                        e.paid_total += a.amount;
                    }
                }
                for l in &s.lines {
                    let claim = (l.network.clone(), l.claim_id.clone());
                    let held = h.paid.get(&claim).is_some_and(|p| {
                        p.statement_id == s.statement_id && p.line_no == l.line_no
                    });
                    if !held {
                        h.released
                            .entry(s.statement_id.clone())
                            .or_default()
                            .insert(claim, PaidClaim::of_line(&s, l));
                    }
                }
            }
        }
    }
    h.bonus_ledger_derived = derive_bonuses;
    h.released_ledger_derived = derive_released;
    h.ledgers_derived_from = finalised.len();
    Ok(())
}

/// Applies a finalised statement's bonus lines and bonus adjustments to
/// the bonus ledger `ledger` (statement id → bonus id → entry); returns
/// the (statement id, bonus id) entries it wrote.
fn record_bonuses(
    statement_id: &str,
    bonuses: &[BonusLine],
    adjustments: &[BonusAdjustment],
    ledger: &mut std::collections::HashMap<String, BTreeMap<String, PaidBonus>>,
) -> Vec<(String, String)> {
    let mut written = Vec::new();
    for l in bonuses {
        ledger
            .entry(statement_id.to_string())
            .or_default()
            .insert(l.bonus_id.clone(), PaidBonus::of_line(l));
        written.push((statement_id.to_string(), l.bonus_id.clone()));
    }
    for a in adjustments {
        let of = ledger.entry(a.original_statement_id.clone()).or_default();
        let paid = PaidBonus::adjusted(of.get(&a.bonus_id), a);
        of.insert(a.bonus_id.clone(), paid);
        written.push((a.original_statement_id.clone(), a.bonus_id.clone()));
    }
    written
}

/// The payee of a balance stored by format 1 under the bare partner id: the
/// network of the claims the ledger paid to that partner. Format 1 merged
/// partners of different networks that share an id; such a balance cannot
/// be split, so it goes to the first of those networks, with a warning.
fn legacy_payee(
    networks: Option<&std::collections::BTreeSet<String>>,
    partner: &str,
    warnings: &mut Vec<String>,
) -> String {
    let Some(networks) = networks else {
        return partner.to_string();
    };
    let Some(first) = networks.first() else {
        return partner.to_string();
    };
    if networks.len() > 1 {
        warnings.push(format!(
            "partner `{partner}`: the balance carried by an earlier version, which paid this id on {} as one partner, goes to {first}:{partner}; check it with the other networks' statements",
            networks.iter().map(String::as_str).collect::<Vec<_>>().join(", ")
        ));
    }
    payee_key(first, partner)
}

fn check_not_superseded(
    b: &dyn StatementBook,
    program: &str,
    period: &Period,
) -> Result<Vec<String>, PayoutError> {
    let mut warnings = Vec::new();
    let records = period_records(b, program)?;
    let latest = records
        .iter()
        .filter(|r| r.status == Status::Finalised && r.period_start > period.start)
        .max_by_key(|r| r.period_start);
    if let Some(r) = latest {
        // The first period of this kind that the rule above lets through
        // and that is not finalised itself.
        let mut next = *period;
        while next.start < r.period_start
            || records
                .iter()
                .any(|f| f.status == Status::Finalised && f.period == next.to_string())
        {
            next = next.next();
        }
        return Err(PayoutError::Superseded {
            program: program.into(),
            period: period.to_string(),
            later: r.period.clone(),
            next: next.to_string(),
            next_start: next.start,
        });
    }
    let name = period.to_string();
    for r in records {
        // A draft of another kind starting the same day counts (finance
        // QA16 L5: a monthly 2026-11 draft when 2026-11-H1 is generated).
        let earlier =
            r.period_start < period.start || (r.period_start == period.start && r.period != name);
        if r.status == Status::Draft && earlier {
            warnings.push(format!(
                "period {} has drafts that are not finalised; its payable claims are included in {period} too, and finalising {period} retires those drafts (their files move to set-aside)",
                r.period
            ));
        }
    }
    Ok(warnings)
}

/// The manual adjustments of `config` that no statement pays and none
/// ever will (QA34c M4), one warning each: those whose period is finalised
/// without them (added or moved there after the finalise, or its payee's
/// statement lacks them), and those whose period starts before a finalised
/// one (such a period can no longer be generated). `closing` is a period
/// being finalised now, counted as finalised with its manual adjustments
/// paid. Reads the period records and, per manual adjustment of a
/// finalised period, its payee's statement.
pub fn unpaid_manual_adjustments(
    b: &dyn StatementBook,
    program: &str,
    config: &CommissionConfig,
    closing: Option<&Period>,
) -> Result<Vec<String>, PayoutError> {
    if config.manual_adjustments.is_empty() {
        return Ok(Vec::new());
    }
    #[derive(serde::Deserialize)]
    struct Id {
        id: String,
    }
    #[derive(serde::Deserialize)]
    struct Paid {
        #[serde(default)]
        manual_adjustments: Vec<Id>,
    }
    let finalised: Vec<PeriodRecord> = period_records(b, program)?
        .into_iter()
        .filter(|r| r.status == Status::Finalised)
        .collect();
    let is_finalised =
        |p: &Period| closing == Some(p) || finalised.iter().any(|r| r.period == p.to_string());
    let latest = (finalised.iter().map(|r| (r.period_start, r.period.clone())))
        .chain(closing.map(|c| (c.start, c.to_string())))
        .max();
    // The first period of the program's kind a manual adjustment can
    // still be paid on: not finalised, starting no earlier than the latest
    // finalised one.
    let first_open = |from: Period| {
        let mut next = from;
        while latest
            .as_ref()
            .is_some_and(|(start, _)| next.start < *start)
            || is_finalised(&next)
        {
            next = next.next();
        }
        next
    };
    let mut out = Vec::new();
    for m in &config.manual_adjustments {
        let Some(p) = m.period_of(config.period) else {
            continue;
        };
        let never = if closing == Some(&p) {
            None
        } else if let Some(rec) = finalised.iter().find(|r| r.period == p.to_string()) {
            let paid = rec.partners.iter().any(|f| f.partner_id == m.partner)
                && (final_record::<Paid>(b, program, &rec.period, &m.partner)?.0)
                    .manual_adjustments
                    .iter()
                    .any(|a| a.id == m.id);
            (!paid).then(|| format!("period {p} was finalised without it"))
        } else {
            latest
                .as_ref()
                .filter(|(start, _)| p.start < *start)
                .map(|(_, later)| {
                    format!("period {p} starts before {later}, which is finalised, so no statement of {p} can be generated any more")
                })
        };
        if let Some(why) = never {
            out.push(format!(
                "manual adjustment `{}` of program `{program}` ({} to `{}` on {p}) is never paid: {why}; to pay it, give it a period not finalised yet (the first is {})",
                m.id,
                m.amount,
                m.partner,
                first_open(p)
            ));
        }
    }
    Ok(out)
}

/// What the store tells of the `refers_to` of the manual adjustments the
/// statements of `period` pay (QA38c C-M2; the config alone checks form,
/// program and period order: [`Reference`]):
///
/// - a reference into a finalised period must name one of its statements,
///   and a line that statement has: else a config error at the
///   adjustment's `refers_to`, one per such reference (QA41 A-L3: `config
///   check` showed the first only, so three took three runs to find);
/// - a reference into a period the store has not finalised cannot be
///   checked: a warning (with the adjustment's id and the reference) when
///   that period never will be finalised (of another kind than the
///   program's periods, or starting before a finalised period; or
///   `closing`: `period` is being finalised). Not an error: a statement
///   issued before Reckon (or outside this store) is named the same way.
///   A period that may still be finalised first passes a draft run.
///
/// Returns the refusals and the warnings; an error only when the store
/// cannot be read. Reads the period records and the statements referred
/// to by line.
fn refers_to_findings(
    b: &dyn StatementBook,
    program: &str,
    config: &CommissionConfig,
    period: &Period,
    closing: bool,
) -> Result<(Vec<PayoutError>, Vec<String>), PayoutError> {
    #[derive(serde::Deserialize)]
    struct Numbered {
        line_no: u32,
    }
    /// The numbered rows of a statement (a `not_paid` entry has none).
    #[derive(serde::Deserialize)]
    struct Lines {
        #[serde(default)]
        lines: Vec<Numbered>,
        #[serde(default)]
        adjustments: Vec<Numbered>,
        #[serde(default)]
        bonus_adjustments: Vec<Numbered>,
        #[serde(default)]
        bonuses: Vec<Numbered>,
        #[serde(default)]
        manual_adjustments: Vec<Numbered>,
    }
    let ours = (config.manual_adjustments.iter().enumerate())
        .filter(|(_, m)| m.period_of(config.period) == Some(*period) && !m.refers_to.is_empty())
        .collect::<Vec<_>>();
    let (mut refused, mut warnings) = (Vec::new(), Vec::new());
    if ours.is_empty() {
        return Ok((refused, warnings));
    }
    let finalised: Vec<PeriodRecord> = period_records(b, program)?
        .into_iter()
        .filter(|r| r.status == Status::Finalised)
        .collect();
    let kind = super::period::PeriodKindOrd::from(config.period);
    for (i, m) in ours {
        for (j, r) in m.refers_to.iter().enumerate() {
            // Form, program and order are the config's to refuse.
            let Ok(rf) = Reference::parse(program, r) else {
                continue;
            };
            let q = rf.period;
            let refusal = |message: String| {
                PayoutError::from(CommissionConfigError {
                    program: program.into(),
                    entry: format!("manual_adjustments[{i}].refers_to (id `{}`)", m.id),
                    message: format!("refers_to[{j}] {r:?} {message}"),
                })
            };
            let Some(rec) = finalised.iter().find(|f| f.period == q.to_string()) else {
                let later = (finalised.iter())
                    .filter(|f| f.period_start > q.start)
                    .min_by_key(|f| f.period_start);
                let never = if q.kind != kind {
                    Some(format!(
                        "program `{program}` has {} periods",
                        kind_name(config.period)
                    ))
                } else if let Some(f) = later {
                    Some(format!("it starts before {}, which is finalised", f.period))
                } else {
                    closing.then(|| format!("it starts before {period}, being finalised now"))
                };
                if let Some(why) = never {
                    warnings.push(format!(
                        "manual adjustment `{}` of program `{program}` ({} to `{}` on {period}): refers_to[{j}] {r:?} names period {q}, which this store never finalised and never will ({why}), so the reference cannot be checked and is printed as written; correct it if it should name a statement Reckon issued",
                        m.id, m.amount, m.partner
                    ));
                }
                continue;
            };
            if !rec.partners.iter().any(|f| f.partner_id == rf.payee) {
                refused.push(refusal(format!(
                    "names no finalised statement: period {q} was finalised without a statement of `{}` ({} statement(s); `reckon statements show --program {program} --period {q}` lists them); correct the reference",
                    rf.payee,
                    rec.partners.len()
                )));
                continue;
            }
            let Some(n) = rf.line else {
                continue;
            };
            let s: Lines = final_record(b, program, &rec.period, rf.payee)?.0;
            let numbers: Vec<u32> = (s.lines.iter())
                .chain(&s.adjustments)
                .chain(&s.bonus_adjustments)
                .chain(&s.bonuses)
                .chain(&s.manual_adjustments)
                .map(|l| l.line_no)
                .collect();
            if !numbers.contains(&n) {
                refused.push(refusal(format!(
                    "names no line: the finalised statement {program}/{q}/{} has {}; correct the line number",
                    rf.payee,
                    match numbers.iter().max() {
                        Some(last) => format!("lines 1 to {last}"),
                        None => "no lines".into(),
                    }
                )));
            }
        }
    }
    Ok((refused, warnings))
}

/// [`refers_to_findings`] for the drafts of `period` (or its finalise:
/// `closing`): the warnings, or the first reference refused.
pub fn check_refers_to(
    b: &dyn StatementBook,
    program: &str,
    config: &CommissionConfig,
    period: &Period,
    closing: bool,
) -> Result<Vec<String>, PayoutError> {
    let (refused, warnings) = refers_to_findings(b, program, config, period, closing)?;
    match refused.into_iter().next() {
        Some(first) => Err(first),
        None => Ok(warnings),
    }
}

/// [`refers_to_findings`] for every period a manual adjustment with a
/// `refers_to` is paid in, as `reckon config check` runs it (no period is
/// being finalised): every reference the drafts of its period would
/// refuse, and the warnings about references that cannot be checked.
pub fn check_all_refers_to(
    b: &dyn StatementBook,
    program: &str,
    config: &CommissionConfig,
) -> Result<(Vec<PayoutError>, Vec<String>), PayoutError> {
    let periods: std::collections::BTreeSet<Period> = (config.manual_adjustments.iter())
        .filter(|m| !m.refers_to.is_empty())
        .filter_map(|m| m.period_of(config.period))
        .collect();
    let (mut refused, mut warnings) = (Vec::new(), Vec::new());
    for period in periods {
        let (r, w) = refers_to_findings(b, program, config, &period, false)?;
        refused.extend(r);
        warnings.extend(w);
    }
    Ok((refused, warnings))
}

/// A period kind as the config writes it.
fn kind_name(kind: super::config::PeriodKind) -> &'static str {
    match kind {
        super::config::PeriodKind::Monthly => "monthly",
        super::config::PeriodKind::SemiMonthly => "semi_monthly",
        super::config::PeriodKind::Weekly => "weekly",
    }
}

fn config_for<'a>(inputs: &Inputs<'a>) -> Result<&'a CommissionConfig, PayoutError> {
    inputs.config.validate(inputs.program)?;
    Ok(inputs.config)
}

/// Generates the drafts of a period (replacing earlier drafts). For a
/// finalised period nothing is recomputed: files that differ from the store
/// are restored byte for byte.
pub fn generate(inputs: &Inputs<'_>, period: &str) -> Result<Report, PayoutError> {
    run(inputs, period, Status::Draft, None, None)
}

/// Whether `period` may be finalised on `today` (a local date in the
/// program's timezone): never before it starts; while it runs only when
/// `early` (the operator closes it early on purpose). A period that is
/// already finalised passes (finalising again changes nothing).
pub fn check_finalizable(
    b: &dyn StatementBook,
    program: &str,
    config: &CommissionConfig,
    period: &str,
    today: NaiveDate,
    early: bool,
) -> Result<(), PayoutError> {
    check_generatable(b, program, config, period, today)?;
    let p = named_period(b, program, config, period)?;
    if today < p.end && !early && !is_finalised(b, program, &p.to_string())? {
        return Err(PayoutError::StillOpen {
            program: program.into(),
            period: p.to_string(),
            last: p.last_day(),
            next: p.end,
            tz: config.tz(),
        });
    }
    Ok(())
}

/// Refuses statements of `program` when the config changed something a
/// finalised period of the program settled (README, Payout statements,
/// "Program ids and connectors after finalising"); nothing is written:
///
/// - claims of one of its `claims` connectors were paid on finalised
///   statements of another program id (the program was renamed, or the
///   connector moved from another program): the ledger that pays a claim
///   once is kept per program, so they would be paid again (QA: a renamed
///   program's draft paid 446 paid claims a second time);
/// - a connector whose claims the program's ledger paid is no longer in
///   its `claims`: its decisions are dropped, so its paid claims are never
///   adjusted again and another network's claim can win (and be paid for)
///   an order it was paid for (finance QA F2);
/// - the payout currency or the commission timezone differs from the one
///   the latest finalised period was issued in: balances carried and paid
///   lines would be repriced in another currency, paid claims re-dated
///   (finance QA F1, F4).
///
/// The first of [`settled_refusals`]. Cheap: one key read per program id
/// and per network of the ledger (not its entries), one period scan and
/// one stored statement.
pub fn check_settled(
    b: &dyn StatementBook,
    program: &ProgramConfig,
    config: &CommissionConfig,
) -> Result<(), PayoutError> {
    match settled_refusals(b, program, config)?.into_iter().next() {
        Some(refusal) => Err(refusal),
        None => Ok(()),
    }
}

/// Every refusal of [`check_settled`], in its order (`reckon config
/// check` reports them all at once): [`PayoutError::PaidElsewhere`] per
/// connector, [`PayoutError::PaidConnectorRemoved`] per network,
/// [`PayoutError::SettledChanged`] for the currency, then the timezone.
/// `Err` when the store cannot be read.
pub fn settled_refusals(
    b: &dyn StatementBook,
    program: &ProgramConfig,
    config: &CommissionConfig,
) -> Result<Vec<PayoutError>, PayoutError> {
    let (id, claims) = (program.id.as_str(), program.claims.as_slice());
    let mut refusals = Vec::new();
    check_paid_elsewhere(b, id, claims, &mut refusals)?;
    check_paid_networks(b, id, claims, &mut refusals)?;
    check_settled_terms(b, id, &program.currency, config, &mut refusals)?;
    Ok(refusals)
}

/// Claims of one of `claims` paid under another program id (the first
/// such id per connector).
fn check_paid_elsewhere(
    b: &dyn StatementBook,
    program: &str,
    claims: &[String],
    refusals: &mut Vec<PayoutError>,
) -> Result<(), PayoutError> {
    let root = book::prefix(&["paid"]);
    let mut from = root.clone();
    let mut named = std::collections::BTreeSet::new();
    while let Some(k) = b.first_key_from(&from)? {
        let Some(rest) = k.strip_prefix(root.as_str()) else {
            break;
        };
        let other = rest.split('\x1f').next().unwrap_or_default().to_string();
        if other != program {
            for c in claims {
                if named.contains(c) {
                    continue;
                }
                let p = book::prefix(&["paid", &other, c]);
                if b.first_key_from(&p)?.is_some_and(|k| k.starts_with(&p)) {
                    named.insert(c.clone());
                    refusals.push(PayoutError::PaidElsewhere {
                        program: program.into(),
                        connector: c.clone(),
                        other: other.clone(),
                    });
                }
            }
        }
        // Past every key of this program id (ids never hold a byte below
        // the space that follows the separator).
        from = format!("{}\x20", book::key(&["paid", &other]));
    }
    Ok(())
}

/// The networks of the program's ledger that are no longer in `claims`.
fn check_paid_networks(
    b: &dyn StatementBook,
    program: &str,
    claims: &[String],
    refusals: &mut Vec<PayoutError>,
) -> Result<(), PayoutError> {
    let root = book::prefix(&["paid", program]);
    let mut from = root.clone();
    while let Some(k) = b.first_key_from(&from)? {
        let Some(rest) = k.strip_prefix(root.as_str()) else {
            break;
        };
        let network = rest.split('\x1f').next().unwrap_or_default().to_string();
        if !claims.contains(&network) {
            let paid_on = match b.get(&k)? {
                Some(v) => book::decode::<PaidClaim>(&k, v)?.statement_id,
                None => String::new(),
            };
            refusals.push(PayoutError::PaidConnectorRemoved {
                program: program.into(),
                connector: network.clone(),
                statement: paid_on,
            });
        }
        from = format!("{}\x20", book::key(&["paid", program, &network]));
    }
    Ok(())
}

/// The payout currency and timezone the latest finalised period with a
/// statement was issued in (each statement carries both), and the program
/// currency its bases were in (its volume's, else a line's basis'),
/// against the config's.
fn check_settled_terms(
    b: &dyn StatementBook,
    program: &str,
    program_currency: &str,
    config: &CommissionConfig,
    refusals: &mut Vec<PayoutError>,
) -> Result<(), PayoutError> {
    #[derive(serde::Deserialize)]
    struct Currency {
        currency: String,
    }
    #[derive(serde::Deserialize)]
    struct Basis {
        #[serde(default)]
        basis: Option<Currency>,
    }
    #[derive(serde::Deserialize)]
    struct Terms {
        currency: String,
        timezone: String,
        #[serde(default)]
        volume: Option<Currency>,
        #[serde(default)]
        lines: Vec<Basis>,
    }
    let mut finalised: Vec<PeriodRecord> = period_records(b, program)?
        .into_iter()
        .filter(|r| r.status == Status::Finalised)
        .collect();
    finalised.sort_by_key(|r| std::cmp::Reverse(r.period_start));
    let Some((rec, first)) = finalised
        .iter()
        .find_map(|r| r.partners.first().map(|p| (r, p)))
    else {
        return Ok(());
    };
    let (was, _): (Terms, _) = final_record(b, program, &rec.period, &first.partner_id)?;
    let changed = |key: &'static str, was: String, now: &str| PayoutError::SettledChanged {
        program: program.into(),
        key,
        was,
        now: now.to_string(),
        period: rec.period.clone(),
    };
    let bases_in = (was.volume.map(|v| v.currency)).or_else(|| {
        was.lines
            .into_iter()
            .find_map(|l| l.basis.map(|b| b.currency))
    });
    if let Some(bases_in) = bases_in.filter(|c| c != program_currency) {
        refusals.push(changed("currency", bases_in, program_currency));
    }
    if was.currency != config.payout_currency {
        refusals.push(changed(
            "payout_currency",
            was.currency,
            &config.payout_currency,
        ));
    }
    let same_zone = was.timezone == config.timezone_name()
        || was.timezone.parse::<chrono_tz::Tz>().ok() == Some(config.tz());
    if !same_zone {
        refusals.push(changed("timezone", was.timezone, config.timezone_name()));
    }
    Ok(())
}

/// The period `name` names: of the program's period kind, or of another
/// kind when the store records it finalised. A period issued before the
/// config's `period` changed is still restored byte for byte from the
/// store by `generate` (or `finalize`) as it was issued (QA32-D F2:
/// `verify` of a monthly period, after the switch to semi-monthly, said to
/// run `generate`, which refused the name). Otherwise the error of the
/// program's kind.
pub fn named_period(
    b: &dyn StatementBook,
    program: &str,
    config: &CommissionConfig,
    name: &str,
) -> Result<Period, PayoutError> {
    match Period::parse(config.period, name) {
        Ok(p) => Ok(p),
        Err(e) => match Period::of_any_kind(name) {
            Some(p) if is_finalised(b, program, &p.to_string())? => Ok(p),
            _ => Err(e.into()),
        },
    }
}

/// Whether the store records `period` (as printed) of `program` as finalised.
pub fn is_finalised(
    b: &dyn StatementBook,
    program: &str,
    period: &str,
) -> Result<bool, PayoutError> {
    Ok(load_period(b, program, period)?.is_some_and(|r| r.status == Status::Finalised))
}

/// Checks that drafts of `period` may be generated: the period parses and
/// has begun by `today` (the program's timezone). A draft of a period still
/// to come would hold every unpaid claim, payable-looking, and no schedule
/// would ever refresh it. Nor may a later period be finalised
/// ([`PayoutError::Superseded`]). A finalised period is always fine (its
/// files are restored).
pub fn check_generatable(
    b: &dyn StatementBook,
    program: &str,
    config: &CommissionConfig,
    period: &str,
    today: NaiveDate,
) -> Result<(), PayoutError> {
    let p = named_period(b, program, config, period)?;
    let name = p.to_string();
    if is_finalised(b, program, &name)? {
        return Ok(());
    }
    if today < p.start {
        return Err(PayoutError::NotStarted {
            program: program.into(),
            period: name,
            start: p.start,
            today,
            tz: config.tz(),
        });
    }
    // Refused here, before the command reconciles the program (QA21: the
    // refusal came after a reconcile run that wrote decisions).
    check_not_superseded(b, program, &p).map(drop)
}

/// Finalises a period: recomputes its statements from the current data,
/// writes them with status `finalised`, and records them (with the ledger of
/// paid claims and the balances carried out) in the store. Finalising an
/// already finalised period changes nothing.
///
/// The drafts of later periods were generated before this period paid its
/// claims, and may list them as payable again: each is regenerated from
/// the same data, as `generate` would (QA31-A M1), with a warning naming
/// it ([`refresh_later_drafts`]).
pub fn finalize(inputs: &Inputs<'_>, period: &str) -> Result<Report, PayoutError> {
    finalize_at(inputs, period, None, None)
}

/// [`finalize`] of a period that has not ended yet (`--early`), closed at
/// `closed_at` (now): each statement says so (`closed_early_at`, format
/// 11: QA31-A L4, a statement closed early read as covering the whole
/// period). Finalising an already finalised period changes nothing, and
/// says nothing new.
pub fn finalize_early(
    inputs: &Inputs<'_>,
    period: &str,
    closed_at: chrono::DateTime<chrono::Utc>,
) -> Result<Report, PayoutError> {
    finalize_at(inputs, period, Some(closed_at), None)
}

/// [`finalize`] (or [`finalize_early`] when `early` is the instant it is
/// closed at) that also records `terms`, the terms in force, with the
/// period in the book (`terms␟<program>␟<period>`, in the period's batch;
/// QA33d M6): `reckon statements show --terms` prints them and `reckon
/// config check` compares the config with them. `reckon statements
/// finalize` calls this; the library's [`finalize`] records none.
pub fn finalize_with_terms(
    inputs: &Inputs<'_>,
    period: &str,
    early: Option<chrono::DateTime<chrono::Utc>>,
    terms: &super::terms::TermsInForce,
) -> Result<Report, PayoutError> {
    finalize_at(inputs, period, early, Some(terms))
}

fn finalize_at(
    inputs: &Inputs<'_>,
    period: &str,
    early: Option<chrono::DateTime<chrono::Utc>>,
    terms: Option<&super::terms::TermsInForce>,
) -> Result<Report, PayoutError> {
    let mut report = run(inputs, period, Status::Finalised, early, terms)?;
    if !report.already_finalised {
        // The finalise's crash steps are its own: the regeneration is a
        // draft run of its own (a kill in it leaves the older draft, which
        // verify and show then call out of date).
        let quiet = Inputs {
            step: &|_| {},
            ..*inputs
        };
        let regenerate = |name: &str| run(&quiet, name, Status::Draft, None, None);
        let warnings = refresh_later_drafts(inputs, &report.period, Some(&regenerate));
        report.warnings.extend(warnings);
    }
    Ok(report)
}

/// Decisions of one partner: borrowed from the program-wide slice, or owned
/// (streamed partition).
enum Batch<'a> {
    Borrowed(Vec<&'a Decision>),
    Owned(Vec<Decision>),
}

/// One partner's decisions, as a streamed partition.
pub type Partition = (String, Vec<Decision>);

fn run(
    inputs: &Inputs<'_>,
    period_name: &str,
    status: Status,
    early: Option<chrono::DateTime<chrono::Utc>>,
    terms: Option<&super::terms::TermsInForce>,
) -> Result<Report, PayoutError> {
    let when = Closing { early, terms };
    match inputs.decisions {
        Decisions::Slice(all) => {
            run_with(inputs, period_name, status, when, |history, period, tz| {
                let standing = statement::standing_payees(history, inputs.config, period);
                let groups = statement::group_by_partner(all, history, tz, standing);
                Ok((
                    ProgramFacts::of(all),
                    Box::new(groups.into_iter().map(|(p, v)| Ok((p, Batch::Borrowed(v))))),
                ))
            })
        }
        Decisions::Source(source) => {
            run_with(inputs, period_name, status, when, |history, period, tz| {
                let standing = statement::standing_payees(history, inputs.config, period);
                by_payee(source, history, period, tz, standing)
            })
        }
    }
}

/// What a finalising run records beyond its statements: the instant a
/// period closed early (`--early`) and the terms in force.
#[derive(Debug, Clone, Copy, Default)]
struct Closing<'t> {
    early: Option<chrono::DateTime<chrono::Utc>>,
    terms: Option<&'t super::terms::TermsInForce>,
}

/// One pass over `source`: the program facts from every decision, and the
/// decisions a statement of `period` reads, kept as stored
/// (about a quarter of a decoded [`Decision`]) under their payee. Each
/// payee's are decoded when the groups reach it, and dropped after.
fn by_payee<'s>(
    source: &'s dyn DecisionSource,
    history: &History,
    period: &Period,
    tz: chrono_tz::Tz,
    standing: std::collections::BTreeSet<String>,
) -> Result<(ProgramFacts, Groups<'s>), PayoutError> {
    /// One payee's decisions as stored, end to end.
    #[derive(Default)]
    struct Stored {
        bytes: Vec<u8>,
        ends: Vec<usize>,
    }
    let mut facts = statement::FactsCount::default();
    let mut by: BTreeMap<String, Stored> = BTreeMap::new();
    source.scan(&mut |d, stored| {
        facts.add(d);
        if statement::concerns(d, history, period, tz) {
            let (paid_to, moved_to) = statement::payees_of(d, history);
            for payee in std::iter::once(paid_to).chain(moved_to) {
                let group = by.entry(payee).or_default();
                group.bytes.extend_from_slice(stored);
                group.ends.push(group.bytes.len());
            }
        }
    })?;
    for payee in standing {
        by.entry(payee).or_default();
    }
    let groups = by.into_iter().map(move |(payee, group)| {
        let mut start = 0;
        let mut decisions = Vec::with_capacity(group.ends.len());
        for &end in &group.ends {
            decisions.push(source.decode(&group.bytes[start..end])?);
            start = end;
        }
        Ok((payee, Batch::Owned(decisions)))
    });
    Ok((facts.facts(), Box::new(groups)))
}

/// Like [`generate`], but reads the decisions partner by partner instead of
/// from `inputs.decisions` (which is ignored), so a large program never has
/// all its decisions in memory at once. `partitions` must yield each payee
/// once, in ascending payee key order (`<network>:<partner id>`,
/// [`super::model::payee_key`]), with that payee's decisions;
/// `volume_currency` is the program currency of the bases.
pub fn generate_partitioned(
    inputs: &Inputs<'_>,
    period: &str,
    volume_currency: Option<String>,
    partitions: &mut dyn Iterator<Item = Result<Partition, PayoutError>>,
) -> Result<Report, PayoutError> {
    run_partitioned(inputs, period, Status::Draft, volume_currency, partitions)
}

/// Like [`finalize`], reading partitions as [`generate_partitioned`] does.
///
/// The partitions are read once, so the drafts of later periods, which
/// may list claims this period paid, cannot be regenerated here: they are
/// retired, with a warning naming each ([`refresh_later_drafts`]).
pub fn finalize_partitioned(
    inputs: &Inputs<'_>,
    period: &str,
    volume_currency: Option<String>,
    partitions: &mut dyn Iterator<Item = Result<Partition, PayoutError>>,
) -> Result<Report, PayoutError> {
    let mut report = run_partitioned(
        inputs,
        period,
        Status::Finalised,
        volume_currency,
        partitions,
    )?;
    if !report.already_finalised {
        let warnings = refresh_later_drafts(inputs, &report.period, None);
        report.warnings.extend(warnings);
    }
    Ok(report)
}

fn run_partitioned(
    inputs: &Inputs<'_>,
    period_name: &str,
    status: Status,
    volume_currency: Option<String>,
    partitions: &mut dyn Iterator<Item = Result<Partition, PayoutError>>,
) -> Result<Report, PayoutError> {
    let facts = ProgramFacts {
        volume_currency,
        ..ProgramFacts::default()
    };
    run_with(
        inputs,
        period_name,
        status,
        Closing::default(),
        move |history, period, _tz| {
            // Partners that only have a balance carried in (or a manual
            // adjustment of the period) get a statement too: merge them
            // (sorted) with the partitions (sorted).
            let standing = statement::standing_payees(history, inputs.config, period);
            let mut balances = standing.into_iter().peekable();
            let mut parts = partitions.peekable();
            let mut last: Option<String> = None;
            let groups: Groups<'_> = Box::new(std::iter::from_fn(move || {
                let next_part = match parts.peek() {
                    Some(Ok((p, _))) => Some(p.clone()),
                    Some(Err(_)) => {
                        return parts.next().map(|r| r.map(|(p, v)| (p, Batch::Owned(v))))
                    }
                    None => None,
                };
                let item = match (balances.peek(), next_part) {
                    (Some(b), Some(p)) if *b < p => {
                        balances.next().map(|b| Ok((b, Batch::Owned(Vec::new()))))
                    }
                    (Some(b), Some(p)) if *b == p => {
                        balances.next();
                        parts.next().map(|r| r.map(|(p, v)| (p, Batch::Owned(v))))
                    }
                    (_, Some(_)) => parts.next().map(|r| r.map(|(p, v)| (p, Batch::Owned(v)))),
                    (Some(_), None) => balances.next().map(|b| Ok((b, Batch::Owned(Vec::new())))),
                    (None, None) => None,
                }?;
                if let Ok((p, _)) = &item {
                    if last.as_ref().is_some_and(|l| l >= p) {
                        return Some(Err(PayoutError::Partitions(format!(
                        "partner `{p}` came after `{}`; partitions must be in ascending partner order, each partner once",
                        last.as_deref().unwrap_or_default()
                    ))));
                    }
                    last = Some(p.clone());
                }
                Some(item)
            }));
            Ok((facts, groups))
        },
    )
}

type Groups<'g> = Box<dyn Iterator<Item = Result<(String, Batch<'g>), PayoutError>> + 'g>;

fn run_with<'g>(
    inputs: &Inputs<'_>,
    period_name: &str,
    status: Status,
    Closing { early, terms }: Closing<'_>,
    groups: impl FnOnce(
        &History,
        &Period,
        chrono_tz::Tz,
    ) -> Result<(ProgramFacts, Groups<'g>), PayoutError>,
) -> Result<Report, PayoutError> {
    let config = config_for(inputs)?;
    let period = named_period(inputs.book, inputs.program, config, period_name)?;
    let period_name = period.to_string();
    let dir = checked_period_dir(inputs.output_dir, inputs.program, &period_name)?;
    files::recover(&dir)?;
    super::issued::check(inputs.book, inputs.output_dir, inputs.program)?;
    let existing = load_period(inputs.book, inputs.program, &period_name)?;
    if let Some(rec) = existing.as_ref().filter(|r| r.status == Status::Finalised) {
        return reproduce(inputs.book, inputs.output_dir, rec, inputs.step);
    }
    let mut warnings = check_not_superseded(inputs.book, inputs.program, &period)?;
    // QA34c M4: a manual adjustment this finalise (or an earlier one)
    // leaves unpaid for good.
    let closing = (status == Status::Finalised).then_some(&period);
    warnings.extend(unpaid_manual_adjustments(
        inputs.book,
        inputs.program,
        config,
        closing,
    )?);
    // QA38c C-M2: a manual adjustment that refers to a statement or line
    // its finalised period never issued is refused before anything is
    // written.
    warnings.extend(check_refers_to(
        inputs.book,
        inputs.program,
        config,
        &period,
        closing.is_some(),
    )?);
    let version = existing.as_ref().map_or(1, |r| r.version + 1);
    let history = load_history(inputs.book, inputs.program)?;
    warnings.extend(history.warnings.iter().cloned());
    let cx = Context {
        program: inputs.program,
        config,
        period,
        status,
        version,
        // Statements reconcile first: the decisions are judged now.
        judged_at: Some(chrono::Utc::now()),
        closed_early_at: early.filter(|_| status == Status::Finalised),
    };
    let tz = config.tz();
    let (facts, groups) = groups(&history, &period, tz)?;
    // Claims reconciliation could not convert into the program currency
    // are on no statement and in no `held_back.csv` (QA36b M2: an EUR
    // program over USD orders without `[fx]` gave "0 statement(s)" and no
    // word).
    if facts.fx_missing > 0 {
        warnings.push(format!(
            "{} claim(s) of program `{}` have no exchange rate into the program currency (`fx_missing`; the earliest: {}): no statement pays them until `[fx]` has the rates (their partners' statements list them as not decided yet); add them and run `reckon reconcile` (the next drafts pay those that earn)",
            facts.fx_missing,
            inputs.program,
            facts.fx_missing_first.as_deref().unwrap_or("?")
        ));
    }

    let staging = Staging::new(&dir)?;
    let mut report = Report {
        program: inputs.program.into(),
        period: period_name.clone(),
        status,
        version,
        dir: dir.clone(),
        partners: 0,
        lines: 0,
        adjustments: 0,
        bonus_adjustments: 0,
        manual_adjustments: 0,
        total_payable: Decimal::ZERO,
        carried_out: Decimal::ZERO,
        owed_back: Decimal::ZERO,
        already_finalised: false,
        restored: Vec::new(),
        skipped: Vec::new(),
        warnings: Vec::new(),
    };
    let mut partners = Vec::new();
    let mut stems = render::PeriodStems::default();
    let mut summary = Vec::new();
    let mut batch: Vec<(String, Option<book::Encoded>)> = Vec::new();
    // Ledger entries released by moved claims, deleted before `batch` so
    // that the new partner's line, written in the same batch, stays.
    let mut released: Vec<(String, Option<book::Encoded>)> = Vec::new();
    let mut moves = Moves::default();
    let mut earlier = Earlier::default();
    // Finalising: the claims whose `paid/` entry this run releases or
    // replaces (moved claims), for the released-lines ledger.
    let mut releases = Releases::default();
    // The bonus ledger as this run leaves it (finalising: updated by each
    // statement), and the entries to write.
    let mut bonus_ledger = history.bonuses.clone();
    let mut bonus_writes: std::collections::BTreeSet<(String, String)> =
        std::collections::BTreeSet::new();
    // The rule, override and bonus ids the statements use (recorded with
    // the terms).
    let mut used = super::terms::UsedTerms::default();
    if history.bonus_ledger_derived {
        // Recorded by this run, whatever its status: derived from
        // finalised statements only.
        for (statement, bonuses) in &bonus_ledger {
            for bonus in bonuses.keys() {
                bonus_writes.insert((statement.clone(), bonus.clone()));
            }
        }
    }
    for group in groups {
        let (partner, decisions) = group?;
        let refs: Vec<&Decision> = match &decisions {
            Batch::Borrowed(v) => v.clone(),
            Batch::Owned(v) => {
                let mut r: Vec<&Decision> = v.iter().collect();
                statement::sort_for_statement(&mut r, tz);
                r
            }
        };
        let moved_away = moves.see(&partner, &refs, &history);
        let mut settlements = Vec::new();
        let built = statement::build_partner(
            &cx,
            &facts,
            &partner,
            &refs,
            &history,
            inputs.fx,
            &mut report.skipped,
            &mut settlements,
        );
        if status == Status::Finalised {
            // The settled ledger: each statement this run settles, when
            // its record changes (drafts record nothing).
            for st in settlements {
                if history.settled.get(&st.statement_id) != Some(&st.record) {
                    batch.push((
                        book::key(&["settled", inputs.program, &st.statement_id]),
                        Some(book::encode(&st.record)),
                    ));
                }
            }
        }
        let Some(mut s) = built else {
            continue;
        };
        earlier.complete(inputs.book, inputs.program, &mut s)?;
        if status == Status::Finalised {
            s.closed_early_at = early;
            used.add(&s);
        }
        let (files, canonical) = write_statement(&staging, &s, &mut stems)?;
        report.partners += 1;
        report.lines += s.lines.len();
        report.adjustments += s.adjustments.len() + s.bonus_adjustments.len();
        report.bonus_adjustments += s.bonus_adjustments.len();
        report.manual_adjustments += s.manual_adjustments.len();
        report.total_payable += s.totals.total_payable;
        report.carried_out += s.totals.carried_out;
        report.owed_back += s.totals.carried_out.min(Decimal::ZERO);
        summary.push(SummaryRow::of(&s, &files.content_hash));
        if status == Status::Finalised {
            bonus_writes.extend(record_bonuses(
                &s.statement_id,
                &s.bonuses,
                &s.bonus_adjustments,
                &mut bonus_ledger,
            ));
            ledger_entries(
                &cx,
                &s,
                &history,
                &moved_away,
                &mut releases,
                &mut released,
                &mut batch,
            );
            batch.push((
                book::key(&["final", inputs.program, &period_name, &partner]),
                Some(book::encode(&FinalRecord {
                    book_version: book::BOOK_VERSION,
                    canonical_json: String::from_utf8(canonical).unwrap_or_default(),
                    content_hash: files.content_hash.clone(),
                })),
            ));
        }
        partners.push(files);
    }
    moves.check()?;
    // Read before anything is staged: it may read finalised statements.
    let release_writes = releases.entries(inputs.book, inputs.program, &history)?;
    let summary_bytes = render::summary_csv(&summary)?;
    let summary_sha256 = render::sha256_hex(&summary_bytes);
    if status == Status::Finalised {
        match existing.as_ref().filter(|r| r.status == Status::Draft) {
            Some(draft) => warnings.extend(differs_from_draft(&dir, draft.version, &summary)),
            // QA (new user): finalising a period nobody reviewed said
            // nothing; it is allowed (the figures are today's data), but
            // said.
            None => warnings.push(format!(
                "no draft of {period_name} was generated for review: these statements were finalised straight from the current data (`reckon statements generate --program {} --period {period_name}` writes a draft to review first)",
                inputs.program
            )),
        }
    }
    staging.write("summary.csv", summary_bytes)?;
    let held_back = render::held_back_csv(&report.skipped)?;
    if let Some(bytes) = &held_back {
        staging.write("held_back.csv", bytes.clone())?;
    }
    let mut staging = staging;
    staging.stage(inputs.step)?;

    let recorded_at = chrono::Utc::now();
    // Recorded before the files are swapped in: files never say
    // `finalised` before the store does (so finalised files the store
    // does not know come from another store, never from an interrupted
    // run, see `issued`), and an interrupted swap is repaired from the
    // store by running the command again.
    let record = PeriodRecord {
        book_version: book::BOOK_VERSION,
        program: inputs.program.into(),
        period: period_name.clone(),
        period_start: period.start,
        status,
        version,
        partners,
        summary_sha256,
        held_back_csv: held_back.map(|b| String::from_utf8_lossy(&b).into_owned()),
        recorded_at: Some(recorded_at),
    };
    // Files someone put beside the statements are moved aside before
    // anything is recorded, so a failure later never loses them.
    let ours: std::collections::BTreeSet<String> = set_names(&record)
        .chain(existing.iter().flat_map(set_names))
        .collect();
    let aside = set_aside_dir(inputs.output_dir, inputs.program, &period_name);
    let moved = files::set_aside(&dir, &aside, &|n| ours.contains(n))?;
    warnings.extend(set_aside_warning(&moved, &aside));
    if history.bonus_ledger_derived {
        // A program with nothing finalised yet just starts its ledger
        // (QA29-A L4: a new program logged this as a derivation).
        if history.ledgers_derived_from == 0 {
            tracing::debug!(program = %inputs.program, "statements: starting the bonus ledger");
        } else {
            tracing::info!(
                program = %inputs.program,
                bonuses = bonus_writes.len(),
                periods = history.ledgers_derived_from,
                "statements: recording the bonus ledger, derived from the finalised statements (periods finalised before it existed)"
            );
        }
        batch.push((
            bonus_ledger_key(inputs.program),
            Some(book::encode(&LedgerMarker {
                book_version: book::BOOK_VERSION,
            })),
        ));
    }
    for (statement, bonus) in bonus_writes {
        let paid = bonus_ledger.get(&statement).and_then(|m| m.get(&bonus));
        batch.push((
            book::key(&["bonus", inputs.program, &statement, &bonus]),
            paid.map(book::encode),
        ));
    }
    if history.released_ledger_derived {
        // Recorded by this run, whatever its status, as the bonus ledger.
        if history.ledgers_derived_from == 0 {
            tracing::debug!(program = %inputs.program, "statements: starting the released-lines ledger");
        } else {
            tracing::info!(
                program = %inputs.program,
                lines = history.released.values().map(BTreeMap::len).sum::<usize>(),
                periods = history.ledgers_derived_from,
                "statements: recording the released-lines ledger, derived from the finalised statements (periods finalised before it existed)"
            );
        }
        batch.push((
            released_ledger_key(inputs.program),
            Some(book::encode(&LedgerMarker {
                book_version: book::BOOK_VERSION,
            })),
        ));
        for (statement, lines) in &history.released {
            for ((network, claim), paid) in lines {
                batch.push((
                    book::key(&["released", inputs.program, statement, network, claim]),
                    Some(book::encode(paid)),
                ));
            }
        }
    }
    batch.extend(release_writes);
    if let Some(t) = terms.filter(|_| status == Status::Finalised) {
        batch.push((
            super::terms::terms_key(inputs.program, &period_name),
            Some(book::encode(&super::terms::PeriodTerms {
                book_version: book::BOOK_VERSION,
                program: inputs.program.into(),
                period: period_name.clone(),
                recorded_at,
                commission: t.commission.clone(),
                program_settings: t.program.clone(),
                fx: t.fx.clone(),
                used,
            })),
        ));
    }
    // Moved, not copied: the values are encoded text ([`book::Encoded`]),
    // and `batch`'s own buffer goes with it.
    released.extend(batch);
    // What the run read is not needed past here: a program's whole ledger
    // of paid claims, decoded, is not held through the commit.
    drop(history);
    // The period record last: the batch is applied a part at a time after
    // its commit point (`book::commit`), and a reader in this process (a
    // `show` during the daemon's finalise) sees the period recorded only
    // once its ledgers are.
    released.push((
        period_key(inputs.program, &period_name),
        Some(book::encode(&record)),
    ));
    book::commit(inputs.book, inputs.program, released)?;
    (inputs.step)("recorded");
    staging
        .swap(inputs.step)
        .map_err(|error| PayoutError::NotSwappedIn {
            program: inputs.program.into(),
            period: period_name.clone(),
            status,
            version,
            error,
        })?;
    (inputs.step)("files-durable");
    if status == Status::Finalised {
        warnings.extend(retire_drafts(inputs, &period));
    }
    warnings.extend(report.skipped.iter().map(|s| {
        let (what, done) = if s.waits {
            ("", "not adjusted")
        } else if s.claim.starts_with("bonus ") {
            ("", "left out")
        } else {
            ("claim ", "left out")
        };
        format!(
            "partner `{}`: {what}{} {done}: {}",
            s.partner_id, s.claim, s.reason
        )
    }));
    report.warnings = warnings;
    Ok(report)
}

/// Retires the drafts that can never be finalised now that `period` is:
/// those of periods starting before it (a later finalised period
/// supersedes them), and those of another period kind starting before it
/// ends (finance QA13 F3: a monthly draft left after `period` became
/// semi-monthly warned on every run, forever). Their files move to
/// set-aside and their records go. Best effort: the finalise has
/// succeeded, so a failure is a warning and the next finalise tries again.
fn retire_drafts(inputs: &Inputs<'_>, period: &Period) -> Vec<String> {
    let records = match period_records(inputs.book, inputs.program) {
        Ok(r) => r,
        Err(e) => return vec![format!("drafts of earlier periods not retired: {e}")],
    };
    let mut warnings = Vec::new();
    for r in records.into_iter().filter(|r| r.status == Status::Draft) {
        let other_kind = Period::parse(inputs.config.period, &r.period).is_err();
        if !(r.period_start < period.start || other_kind && r.period_start < period.end) {
            continue;
        }
        let (retired, aside) = retire_draft(inputs, &r.period);
        warnings.push(match retired {
            Ok(()) => format!(
                "retired the draft of period {} (never finalised, and it cannot be now that {period} is; its payable claims are paid by {period} and the statements after it): its files moved to {}",
                r.period,
                aside.display()
            ),
            Err(e) => format!(
                "the draft of period {} could not be retired ({e}); the next finalise tries again",
                r.period
            ),
        });
    }
    warnings
}

/// Moves the files of the draft of `period` to set-aside and deletes its
/// record; returns the outcome and the set-aside directory.
fn retire_draft(inputs: &Inputs<'_>, period: &str) -> (Result<(), PayoutError>, PathBuf) {
    let aside = set_aside_dir(inputs.output_dir, inputs.program, period);
    let retired = (|| -> Result<(), PayoutError> {
        let dir = checked_period_dir(inputs.output_dir, inputs.program, period)?;
        files::set_aside(&dir, &aside, &|_| false)?;
        let _ = std::fs::remove_dir(&dir);
        inputs
            .book
            .apply(vec![(period_key(inputs.program, period), None)])?;
        inputs.book.flush()?;
        Ok(())
    })();
    (retired, aside)
}

/// A draft run of a period, by name ([`refresh_later_drafts`]).
type Regenerate<'r> = &'r dyn Fn(&str) -> Result<Report, PayoutError>;

/// Brings the drafts of the periods after `finalised` (just finalised) up
/// to date: they were generated before it paid its claims, so they may
/// list those claims as payable again (QA31-A M1: the November draft kept
/// offering what October had just paid, and `show`/`verify` called it
/// fine). A draft of the configured period kind is regenerated with
/// `regenerate` (a draft run over the same data, as `generate` writes
/// it); one of another kind, or any when there is no `regenerate` (the
/// partitions of a streamed finalise are read once), is retired as
/// [`retire_drafts`] retires one. One warning per draft, naming it. Best
/// effort, as [`retire_drafts`]: the finalise has succeeded; a draft left
/// as it was is called out of date by `verify` and `show`
/// ([`stale_draft`]).
fn refresh_later_drafts(
    inputs: &Inputs<'_>,
    finalised: &str,
    regenerate: Option<Regenerate<'_>>,
) -> Vec<String> {
    let program = inputs.program;
    let records = match period_records(inputs.book, program) {
        Ok(r) => r,
        Err(e) => {
            return vec![format!(
                "drafts of periods after {finalised} not brought up to date ({e}): they may list claims {finalised} paid; run `reckon statements generate` for each before reviewing it"
            )]
        }
    };
    let Some(start) = records
        .iter()
        .find(|r| r.period == finalised)
        .map(|r| r.period_start)
    else {
        return Vec::new();
    };
    let mut later: Vec<PeriodRecord> = records
        .into_iter()
        .filter(|r| r.status == Status::Draft && r.period_start >= start && r.period != finalised)
        .collect();
    later.sort_by_key(|r| r.period_start);
    let mut warnings = Vec::new();
    for r in later {
        let name = r.period.as_str();
        let generate = format!("`reckon statements generate --program {program} --period {name}`");
        let same_kind = Period::parse(inputs.config.period, name).is_ok();
        match regenerate.filter(|_| same_kind) {
            Some(regenerate) => warnings.push(match regenerate(name) {
                Ok(rep) => format!(
                    "regenerated the draft of period {name} (now version {}: {} statement(s), total payable {} {}): its version {} was generated before {finalised} was finalised and could list claims {finalised} has now paid",
                    rep.version,
                    rep.partners,
                    plugin_api::currency::at_minor_scale(rep.total_payable, &inputs.config.payout_currency),
                    inputs.config.payout_currency,
                    r.version,
                ),
                Err(e) => format!(
                    "the draft of period {name} could not be regenerated ({e}): it was generated before {finalised} was finalised and may list claims {finalised} has now paid; run {generate} before reviewing it"
                ),
            }),
            None => {
                let (retired, aside) = retire_draft(inputs, name);
                warnings.push(match retired {
                    Ok(()) => format!(
                        "retired the draft of period {name}: it was generated before {finalised} was finalised and could list claims {finalised} has now paid; its files moved to {}; run {generate} for a draft from the current data",
                        aside.display()
                    ),
                    Err(e) => format!(
                        "the draft of period {name} could not be retired ({e}): it was generated before {finalised} was finalised and may list claims {finalised} has now paid; run {generate} before reviewing it"
                    ),
                });
            }
        }
    }
    warnings
}

/// Why a draft is out of date, if it is: a period starting before it was
/// finalised after the draft was generated, and may have paid claims the
/// draft lists ([`refresh_later_drafts`] regenerates such drafts; one that
/// could not be, or a store written before it did, is left). `None` for a
/// finalised period, or when either time was not recorded.
pub fn stale_draft(
    b: &dyn StatementBook,
    rec: &PeriodRecord,
) -> Result<Option<String>, PayoutError> {
    let Some(generated) = rec.recorded_at.filter(|_| rec.status == Status::Draft) else {
        return Ok(None);
    };
    let paid_since = period_records(b, &rec.program)?
        .into_iter()
        .filter(|f| f.status == Status::Finalised && f.period_start < rec.period_start)
        .filter(|f| f.recorded_at.is_some_and(|t| t > generated))
        .max_by_key(|f| f.period_start);
    Ok(paid_since.map(|f| {
        format!(
            "draft version {} of {} is out of date: it was generated before {} was finalised, which may have paid claims it lists; run `reckon statements generate --program {} --period {}` for a draft from the current data",
            rec.version, rec.period, f.period, rec.program, rec.period
        )
    }))
}

/// What a statement takes from the payee's earlier finalised statements,
/// read from the store when needed (once per statement in a run): the
/// payee's name when today's decisions give none (QA31-A L2: a payee whose
/// only line is a take-back had none, the claim being another partner's
/// now), and whether the statement that credited a moved claim paid it
/// out (QA31-A L3: "paid here" for a commission only carried forward).
#[derive(Debug, Default)]
struct Earlier {
    /// Statement id → (period start, partner name, total payable).
    read: BTreeMap<String, Option<(NaiveDate, Option<String>, Decimal)>>,
}

impl Earlier {
    /// The finalised statement `statement_id` of `program`, as far as
    /// [`Earlier`] reads it; `None` when the store has none.
    fn get(
        &mut self,
        b: &dyn StatementBook,
        program: &str,
        statement_id: &str,
    ) -> Result<Option<(NaiveDate, Option<String>, Decimal)>, PayoutError> {
        #[derive(serde::Deserialize)]
        struct Totals {
            total_payable: Decimal,
        }
        #[derive(serde::Deserialize)]
        struct Seen {
            period_start: NaiveDate,
            partner_name: Option<String>,
            totals: Totals,
        }
        if let Some(seen) = self.read.get(statement_id) {
            return Ok(seen.clone());
        }
        let seen = match statement_id
            .strip_prefix(program)
            .and_then(|r| r.strip_prefix('/'))
            .and_then(|r| r.split_once('/'))
        {
            Some((period, payee))
                if b.get(&book::key(&["final", program, period, payee]))?
                    .is_some() =>
            {
                let (s, _): (Seen, _) = final_record(b, program, period, payee)?;
                Some((s.period_start, s.partner_name, s.totals.total_payable))
            }
            _ => None,
        };
        self.read.insert(statement_id.to_string(), seen.clone());
        Ok(seen)
    }

    /// Completes `s` from the payee's earlier finalised statements: a
    /// moved claim's reason says "credited here" when the statement that
    /// credited it paid nothing out, and a statement without a partner
    /// name takes the latest name those statements (the ones its
    /// adjustments correct, and the one its balance was carried from)
    /// give. Nothing is stored.
    fn complete(
        &mut self,
        b: &dyn StatementBook,
        program: &str,
        s: &mut Statement,
    ) -> Result<(), PayoutError> {
        for a in &mut s.adjustments {
            if !a.reason.starts_with("claim moved to partner ") {
                continue;
            }
            if let Some((_, _, paid_out)) = self.get(b, program, &a.original_statement_id)? {
                if paid_out.is_zero() {
                    statement::credited_not_paid(&mut a.reason);
                }
            }
        }
        if s.partner_name.is_some() {
            return Ok(());
        }
        let payee = s.payee();
        let mut ids: Vec<String> = s
            .adjustments
            .iter()
            .map(|a| a.original_statement_id.clone())
            .chain(
                s.bonus_adjustments
                    .iter()
                    .map(|a| a.original_statement_id.clone()),
            )
            .collect();
        let balance_key = book::key(&["balance", program, &payee]);
        if let Some(v) = b.get(&balance_key)? {
            let bal: Balance = book::decode(&balance_key, v)?;
            ids.push(format!("{program}/{}/{payee}", bal.period));
        }
        ids.sort();
        ids.dedup();
        let mut latest: Option<(NaiveDate, String)> = None;
        for id in ids {
            if let Some((start, Some(name), _)) = self.get(b, program, &id)? {
                if latest.as_ref().is_none_or(|(at, _)| start > *at) {
                    latest = Some((start, name));
                }
            }
        }
        s.partner_name = latest.map(|(_, name)| name);
        Ok(())
    }
}

/// The claims the network moved to another partner after a finalised
/// statement paid them, as the statement groups of one run meet them: each
/// such claim must reach both the partner that was paid (which takes the
/// payment back) and the one it belongs to now (which is paid it as a new
/// line). [`Decisions::Slice`] and [`Decisions::Source`] group it under
/// both ([`statement::payees_of`]); streamed partitions that give it only
/// under its new partner would pay it twice, and are refused.
#[derive(Default)]
struct Moves {
    /// Seen under the partner that was paid.
    taken_back: std::collections::HashSet<(String, String)>,
    /// Seen under another partner, with that partner's key.
    paid_anew: BTreeMap<(String, String), String>,
}

impl Moves {
    /// Notes the moved claims among one payee's decisions; returns those
    /// this payee was paid for (its statement takes them back).
    fn see(
        &mut self,
        payee: &str,
        decisions: &[&Decision],
        history: &History,
    ) -> std::collections::HashSet<(String, String)> {
        let mut moved_away = std::collections::HashSet::new();
        if history.paid.is_empty() {
            return moved_away;
        }
        let (network, partner) = split_payee(payee);
        for d in decisions {
            let Some(paid) = statement::paid_entry(d, history) else {
                continue;
            };
            let claim = || (d.claim.source.clone(), d.claim.id.clone());
            if network == Some(d.claim.source.as_str()) && paid.partner_id == partner {
                if d.partner_id != paid.partner_id {
                    moved_away.insert(claim());
                    self.taken_back.insert(claim());
                }
            } else {
                self.paid_anew.insert(claim(), payee.to_string());
            }
        }
        moved_away
    }

    /// Refuses a run in which a moved claim reached its new partner but
    /// not the partner that was paid.
    fn check(&self) -> Result<(), PayoutError> {
        match self
            .paid_anew
            .iter()
            .find(|(claim, _)| !self.taken_back.contains(*claim))
        {
            None => Ok(()),
            Some(((network, claim), payee)) => Err(PayoutError::Partitions(format!(
                "claim {network}/{claim} was paid to another partner and is now `{payee}`'s; give its decision under the partner that was paid as well, which takes the payment back"
            ))),
        }
    }
}

/// A warning when the figures being finalised differ from the draft on
/// disk (`summary.csv` of draft `version`): finalising recomputes from the
/// current data, which may have changed since the draft was reviewed.
fn differs_from_draft(dir: &Path, version: u32, rows: &[SummaryRow]) -> Option<String> {
    let text = std::fs::read(dir.join("summary.csv")).ok()?;
    let draft: BTreeMap<String, (String, String)> = render::read_summary_csv(&text)?
        .into_iter()
        .map(|row| (row.partner_id, (row.amount, row.carried_out)))
        .collect();
    let now: BTreeMap<String, (String, String)> = rows
        .iter()
        .map(|r| {
            (
                render::text_cell(&r.partner_id, r.guard),
                (r.total_payable.clone(), r.carried_out.clone()),
            )
        })
        .collect();
    let keys: std::collections::BTreeSet<&String> = draft.keys().chain(now.keys()).collect();
    let none = ("-".to_string(), "-".to_string());
    let changes: Vec<String> = keys
        .into_iter()
        .filter(|k| draft.get(*k) != now.get(*k))
        .map(|k| {
            let (a, b) = (draft.get(k).unwrap_or(&none), now.get(k).unwrap_or(&none));
            format!("{k} payable {} → {}, carried {} → {}", a.0, b.0, a.1, b.1)
        })
        .collect();
    if changes.is_empty() {
        return None;
    }
    let shown = changes
        .iter()
        .take(5)
        .cloned()
        .collect::<Vec<_>>()
        .join("; ");
    let more = changes.len().saturating_sub(5);
    Some(format!(
        "the finalised figures differ from draft version {version} (its data changed since it was generated, or an earlier period was finalised since and paid some of its claims): {shown}{}",
        if more > 0 { format!("; and {more} more") } else { String::new() }
    ))
}

/// Renders one statement's three files into the staging directory, named
/// by the period's next stem ([`render::PeriodStems`]).
fn write_statement(
    staging: &Staging,
    s: &Statement,
    stems: &mut render::PeriodStems,
) -> Result<(PartnerFiles, Vec<u8>), PayoutError> {
    let (mut files, bytes) = render_statement(s)?;
    files.stem = stems.stem(s);
    let stem = &files.stem;
    staging.write(&format!("{stem}.json"), bytes.json)?;
    staging.write(&format!("{stem}.csv"), bytes.csv)?;
    staging.write(&format!("{stem}.html"), bytes.html.into_bytes())?;
    Ok((files, bytes.canonical))
}

/// The rendered files of one statement.
#[derive(Debug, Clone)]
pub struct RenderedFiles {
    /// The canonical JSON (hashed).
    pub canonical: Vec<u8>,
    /// `<partner>.json`.
    pub json: Vec<u8>,
    /// `<partner>.csv`.
    pub csv: Vec<u8>,
    /// `<partner>.html`.
    pub html: String,
}

/// Renders a statement's files and their hashes; `stem` is
/// [`render::statement_stem`], which a period's writer replaces with its
/// [`render::PeriodStems`] stem.
pub fn render_statement(s: &Statement) -> Result<(PartnerFiles, RenderedFiles), PayoutError> {
    let canonical = render::canonical_json(s)?;
    let content_hash = render::sha256_hex(&canonical);
    let json = render::json_file(&canonical, &content_hash);
    let csv = render::csv_file(s)?;
    let html = render::html_file(s, &content_hash);
    let files = PartnerFiles {
        partner_id: s.payee(),
        stem: render::statement_stem(s),
        json_sha256: render::sha256_hex(&json),
        csv_sha256: render::sha256_hex(&csv),
        html_sha256: render::sha256_hex(html.as_bytes()),
        content_hash,
    };
    Ok((
        files,
        RenderedFiles {
            canonical,
            json,
            csv,
            html,
        },
    ))
}

/// Ledger updates of a finalised statement: new lines become paid claims,
/// adjustments update what was paid, the balance carried out is recorded.
///
/// A claim the network moved to another partner (in `moved_away`) leaves
/// the ledger when its payment is taken back: it is unpaid again, and the
/// new partner's line (this batch or a later one) records it anew. Those
/// deletions go to `released`, which is applied before `batch`. Every
/// entry released or replaced (a new line of a claim the ledger holds for
/// another statement: a moved claim) is noted in `releases`: the line it
/// described stays in the volume of its statement.
fn ledger_entries(
    cx: &Context<'_>,
    s: &Statement,
    history: &History,
    moved_away: &std::collections::HashSet<(String, String)>,
    releases: &mut Releases,
    released: &mut Vec<(String, Option<book::Encoded>)>,
    batch: &mut Vec<(String, Option<book::Encoded>)>,
) {
    let program = cx.program;
    for l in &s.lines {
        let mut paid = PaidClaim::of_line(s, l);
        // The terms it was priced on: the same config, the same inputs.
        paid.terms = super::rules::resolve(cx.config, &l.network, &s.partner_id, l.event, l.date)
            .map(|r| super::rules::terms_of(&r));
        let claim = (l.network.clone(), l.claim_id.clone());
        if history.paid.contains_key(&claim) {
            releases.claims.insert(claim);
        }
        batch.push((
            book::key(&["paid", program, &l.network, &l.claim_id]),
            Some(book::encode(&paid)),
        ));
    }
    for a in &s.adjustments {
        let claim = (a.network.clone(), a.claim_id.clone());
        *releases.adjusted.entry(claim.clone()).or_default() += a.amount;
        if moved_away.contains(&claim) {
            released.push((book::key(&["paid", program, &a.network, &a.claim_id]), None));
            releases.claims.insert(claim);
            continue;
        }
        if let Some(prev) = history.paid.get(&claim) {
            let mut paid = prev.clone();
            paid.paid_total += a.amount;
            batch.push((
                book::key(&["paid", program, &a.network, &a.claim_id]),
                Some(book::encode(&paid)),
            ));
        }
    }
    let bal_key = book::key(&["balance", program, &s.payee()]);
    // A balance carried in under a format-1 key (the bare partner id) now
    // lives under the payee key: drop the old key with the same write.
    if let Some(old) = history.legacy_balances.get(&s.payee()) {
        batch.push((book::key(&["balance", program, old]), None));
    }
    if s.totals.carried_out.is_zero() {
        batch.push((bal_key, None));
    } else {
        batch.push((
            bal_key,
            Some(book::encode(&Balance {
                period: s.period.clone(),
                carried_out: s.totals.carried_out,
            })),
        ));
    }
}

/// The `paid/` entries a finalising run releases (a moved claim's payment
/// taken back) or replaces (a moved claim paid to its new partner), by
/// claim, and what the run's adjustments add to each claim's `paid_total`.
#[derive(Debug, Default)]
struct Releases {
    claims: std::collections::BTreeSet<(String, String)>,
    adjusted: std::collections::HashMap<(String, String), Decimal>,
}

impl Releases {
    /// The released-lines ledger's new entries: each claim's entry as the
    /// history has it (read from its finalised statement if it was written
    /// before entries kept the line's date and event), `paid_total` brought
    /// up to date, under its statement.
    fn entries(
        &self,
        b: &dyn StatementBook,
        program: &str,
        history: &History,
    ) -> Result<Vec<(String, Option<book::Encoded>)>, PayoutError> {
        let mut statements: BTreeMap<&str, Statement> = BTreeMap::new();
        let mut out = Vec::with_capacity(self.claims.len());
        for claim in &self.claims {
            let Some(prev) = history.paid.get(claim) else {
                continue;
            };
            let mut entry = if prev.date.is_some() && prev.event.is_some() {
                prev.clone()
            } else {
                let sid = prev.statement_id.as_str();
                if !statements.contains_key(sid) {
                    statements.insert(sid, finalised_statement(b, program, sid)?);
                }
                let s = &statements[sid];
                match s.lines.iter().find(|l| l.line_no == prev.line_no) {
                    Some(l) => PaidClaim::of_line(s, l),
                    None => prev.clone(),
                }
            };
            entry.paid_total =
                prev.paid_total + self.adjusted.get(claim).copied().unwrap_or_default();
            out.push((
                book::key(&["released", program, &prev.statement_id, &claim.0, &claim.1]),
                Some(book::encode(&entry)),
            ));
        }
        Ok(out)
    }
}

/// A finalised statement of the program by its id
/// (`<program>/<period>/<payee>`), from the store.
fn finalised_statement(
    b: &dyn StatementBook,
    program: &str,
    statement_id: &str,
) -> Result<Statement, PayoutError> {
    let (period, payee) = statement_id
        .strip_prefix(program)
        .and_then(|r| r.strip_prefix('/'))
        .and_then(|r| r.split_once('/'))
        .unwrap_or_default();
    Ok(final_record(b, program, period, payee)?.0)
}

/// The finalised record of `payee`'s statement of `period`, with its
/// canonical JSON read as `T` (the whole [`Statement`], or only the fields
/// a caller needs); a record the period lists but the store lacks is
/// [`PayoutError::StoreMismatch`].
fn final_record<T: serde::de::DeserializeOwned>(
    b: &dyn StatementBook,
    program: &str,
    period: &str,
    payee: &str,
) -> Result<(T, FinalRecord), PayoutError> {
    let k = book::key(&["final", program, period, payee]);
    let v = b.get(&k)?.ok_or_else(|| PayoutError::StoreMismatch {
        program: program.into(),
        period: period.into(),
        partner: payee.into(),
    })?;
    let fr: FinalRecord = book::decode(&k, v)?;
    let t = serde_json::from_str(&fr.canonical_json).map_err(|e| book::BookError::Corrupt {
        key: book::printable(&k),
        message: e.to_string(),
    })?;
    Ok((t, fr))
}

/// The stored finalised statements of a period, in partner order.
pub fn finalised_statements(
    b: &dyn StatementBook,
    rec: &PeriodRecord,
) -> Result<Vec<(Statement, FinalRecord)>, PayoutError> {
    rec.partners
        .iter()
        .map(|p| final_record(b, &rec.program, &rec.period, &p.partner_id))
        .collect()
}

/// Re-renders a finalised period from the store; rewrites the directory only
/// if a file on disk differs.
fn reproduce(
    b: &dyn StatementBook,
    output_dir: &Path,
    rec: &PeriodRecord,
    step: &dyn Fn(&str),
) -> Result<Report, PayoutError> {
    let dir = checked_period_dir(output_dir, &rec.program, &rec.period)?;
    let mut wanted: BTreeMap<String, Vec<u8>> = BTreeMap::new();
    let mut summary = Vec::new();
    let mut report = Report {
        program: rec.program.clone(),
        period: rec.period.clone(),
        status: Status::Finalised,
        version: rec.version,
        dir: dir.clone(),
        partners: rec.partners.len(),
        lines: 0,
        adjustments: 0,
        bonus_adjustments: 0,
        manual_adjustments: 0,
        total_payable: Decimal::ZERO,
        carried_out: Decimal::ZERO,
        owed_back: Decimal::ZERO,
        already_finalised: true,
        restored: Vec::new(),
        skipped: Vec::new(),
        warnings: Vec::new(),
    };
    // The stems as the period's files were written: in recorded order.
    let mut stems = render::PeriodStems::default();
    for ((s, fr), p) in finalised_statements(b, rec)?.into_iter().zip(&rec.partners) {
        let (mut files, bytes) = render_statement(&s)?;
        files.stem = stems.stem(&s);
        if files != *p || fr.content_hash != p.content_hash {
            return Err(PayoutError::StoreMismatch {
                program: rec.program.clone(),
                period: rec.period.clone(),
                partner: p.partner_id.clone(),
            });
        }
        report.lines += s.lines.len();
        report.adjustments += s.adjustments.len() + s.bonus_adjustments.len();
        report.bonus_adjustments += s.bonus_adjustments.len();
        report.manual_adjustments += s.manual_adjustments.len();
        report.total_payable += s.totals.total_payable;
        report.carried_out += s.totals.carried_out;
        report.owed_back += s.totals.carried_out.min(Decimal::ZERO);
        summary.push(SummaryRow::of(&s, &files.content_hash));
        wanted.insert(format!("{}.json", p.stem), bytes.json);
        wanted.insert(format!("{}.csv", p.stem), bytes.csv);
        wanted.insert(format!("{}.html", p.stem), bytes.html.into_bytes());
    }
    wanted.insert("summary.csv".into(), render::summary_csv(&summary)?);
    if let Some(held) = &rec.held_back_csv {
        wanted.insert("held_back.csv".into(), held.clone().into_bytes());
    }
    let aside = set_aside_dir(output_dir, &rec.program, &rec.period);
    let moved = files::set_aside(&dir, &aside, &|n| wanted.contains_key(n))?;
    report.warnings.extend(set_aside_warning(&moved, &aside));
    let mut differs = Vec::new();
    for (name, bytes) in &wanted {
        if std::fs::read(dir.join(name)).ok().as_deref() != Some(bytes.as_slice()) {
            differs.push(name.clone());
        }
    }
    if !differs.is_empty() {
        let staging = Staging::new(&dir)?;
        for (name, bytes) in &wanted {
            staging.write(name, bytes.clone())?;
        }
        staging.commit(step)?;
        report.restored = differs;
    }
    Ok(report)
}

/// Where files found in a period directory that are not part of its
/// statements are moved: `<output_dir>/statements/<program>/set-aside/<period>/`.
pub fn set_aside_dir(output_dir: &Path, program: &str, period: &str) -> PathBuf {
    super::issued::program_dir(output_dir, program)
        .join("set-aside")
        .join(render::file_stem(period))
}

/// The file names of a recorded set.
fn set_names(rec: &PeriodRecord) -> impl Iterator<Item = String> + '_ {
    rec.partners
        .iter()
        .flat_map(|p| ["json", "csv", "html"].map(|ext| format!("{}.{ext}", p.stem)))
        .chain(["summary.csv".to_string(), "held_back.csv".to_string()])
}

fn set_aside_warning(moved: &[String], aside: &Path) -> Option<String> {
    (!moved.is_empty()).then(|| {
        format!(
            "moved {} file(s) that are not part of the statements to {}: {} (the period directory holds only the statements; keep other files elsewhere)",
            moved.len(),
            aside.display(),
            moved.join(", ")
        )
    })
}

fn list_files(dir: &Path) -> Vec<String> {
    let mut v: Vec<String> = std::fs::read_dir(dir)
        .map(|rd| {
            rd.filter_map(|e| e.ok())
                .map(|e| e.file_name().to_string_lossy().into_owned())
                .collect()
        })
        .unwrap_or_default();
    v.sort();
    v
}

/// When a period's files are not the set the store recorded for it because
/// a run stopped between recording and swapping the files in (or the
/// store is not the one that wrote them): one sentence saying which and
/// what to do. `None` when `summary.csv` is the recorded one, or the files
/// are of the recorded status and version (then they were changed, which
/// [`verify`] reports file by file).
///
/// With no files at all, `staged` (a staging directory was there before
/// [`files::recover`] removed it) or a record of version 1 (no earlier
/// files to leave in place) may mean an interrupted run; otherwise the
/// directory was removed or moved, or `daemon.output_dir` changed (finance
/// QA F6: that read "a finalize was interrupted").
pub fn files_not_recorded(rec: &PeriodRecord, dir: &Path, staged: bool) -> Option<String> {
    let on_disk = match std::fs::read(dir.join("summary.csv")) {
        Ok(bytes) if render::sha256_hex(&bytes) == rec.summary_sha256 => return None,
        // A summary listing this record's statements was edited, not
        // written by another store: the per-file checks say what changed
        // (QA: an edited status read as "the store is older").
        Ok(bytes) if super::issued::summary_lists(&bytes, rec) => return None,
        Ok(bytes) => Some(super::issued::summary_status(&bytes)?),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound && !dir.exists() => None,
        Err(_) => return None,
    };
    let (program, period) = (&rec.program, &rec.period);
    let recorded = format!("{} version {}", rec.status.as_str(), rec.version);
    let behind = match on_disk {
        None => true,
        Some((status, version)) => {
            if (status, version) == (rec.status, rec.version) {
                return None;
            }
            status == Status::Draft && version < rec.version
        }
    };
    let files = match on_disk {
        None => "there are no files".to_string(),
        Some((status, version)) => format!("the files are {} version {version}", status.as_str()),
    };
    let restores = if rec.status == Status::Finalised {
        "which writes the recorded statements back byte for byte from the store"
    } else {
        "which writes new drafts"
    };
    if on_disk.is_none() && !staged {
        // `generate` restores a finalised period and redrafts a draft one.
        let run = format!(
            "run `reckon statements generate --program {program} --period {period}`, {restores}"
        );
        return Some(if rec.version > 1 {
            format!(
                "no files for {recorded} of {period} in {}: the directory was removed or moved, or daemon.output_dir changed since it was written (an interrupted run leaves the previous files, version {}, in place); {run}",
                dir.display(),
                rec.version - 1
            )
        } else {
            format!(
                "no files for {recorded} of {period} in {}: the directory was removed or moved, daemon.output_dir changed since it was written, or the run that recorded it stopped before writing its files; {run}",
                dir.display()
            )
        });
    }
    if behind {
        let cmd = command(rec.status);
        Some(format!(
            "a {cmd} of {period} was interrupted: the store recorded {recorded} but {files} (the run stopped before swapping its files in); run `reckon statements {cmd} --program {program} --period {period}` again{}",
            if rec.status == Status::Finalised {
                ", which writes the recorded statements byte for byte"
            } else {
                ""
            }
        ))
    } else {
        Some(format!(
            "the store recorded {recorded} but {files}: the store is older than the files or not the one that wrote them (restored from an older backup, or a wrong daemon.data_dir); see README, Payout statements, \"Backups and restoring the store\""
        ))
    }
}

/// Why `period` has no record: it precedes a finalised period (whose
/// statements paid its claims; finance QA F7: `verify` said to generate
/// it, which is refused), else it was never generated.
fn not_recorded(
    b: &dyn StatementBook,
    output_dir: &Path,
    program: &str,
    period: &str,
) -> Result<PayoutError, PayoutError> {
    use super::config::PeriodKind;
    let Some(start) = Period::of_any_kind(period).map(|p| p.start) else {
        // No period of any kind (QA24 L3: `2026-13` was told to be
        // generated first, which then refused it): the parse error of the
        // kind it looks like, as `generate` gives it.
        let kind = if period.contains(['W', 'w']) {
            PeriodKind::Weekly
        } else if period.contains(['H', 'h']) {
            PeriodKind::SemiMonthly
        } else {
            PeriodKind::Monthly
        };
        return Ok(match Period::parse(kind, period) {
            Err(e) => PayoutError::Period(e),
            Ok(_) => PayoutError::NotGenerated {
                program: program.into(),
                period: period.into(),
            },
        });
    };
    let later = Some(start).and_then(|start| {
        let mut r = period_records(b, program).ok()?;
        // A period of another kind starting the same day counts too (a
        // monthly draft retired when `2026-11-H1` was finalised: QA14 L1).
        r.retain(|r| {
            r.status == Status::Finalised && r.period_start >= start && r.period != period
        });
        r.into_iter().min_by_key(|r| r.period_start)
    });
    Ok(match later {
        Some(r) => PayoutError::NoStatements {
            program: program.into(),
            period: period.into(),
            later: r.period,
            // QA15 P2: `retire_drafts` moved it there.
            retired: Some(set_aside_dir(output_dir, program, period)).filter(|d| d.is_dir()),
        },
        None => PayoutError::NotGenerated {
            program: program.into(),
            period: period.into(),
        },
    })
}

/// Whether `name` is a period's name as its directory is named.
fn is_period_name(name: &str) -> bool {
    Period::of_any_kind(name).is_some_and(|p| p.to_string() == name)
}

/// Removes what a run of `period` that recorded nothing left beside its
/// directory (QA42b B-L2: after a first `generate` was killed, `show` and
/// `verify` said "no statements recorded" and left `.<period>.staging`).
/// The store records nothing of the period, so nothing is lost; a name
/// that is no period is left alone.
fn drop_unrecorded_staging(
    output_dir: &Path,
    program: &str,
    period: &str,
) -> Result<(), PayoutError> {
    if is_period_name(period) {
        files::recover_to_read(&checked_period_dir(output_dir, program, period)?)?;
    }
    Ok(())
}

/// The result of [`verify`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Verification {
    /// Program.
    pub program: String,
    /// Period.
    pub period: String,
    /// Status recorded in the store.
    pub status: Status,
    /// Files checked.
    pub files_checked: usize,
    /// Every mismatch found, one sentence each; empty = verified.
    pub problems: Vec<String>,
    /// The directory checked.
    pub dir: PathBuf,
}

/// Recomputes the hashes of a period's files and compares them with the
/// store (and, for finalised periods, with the stored statements).
pub fn verify(
    b: &dyn StatementBook,
    output_dir: &Path,
    program: &str,
    period: &str,
) -> Result<Verification, PayoutError> {
    let Some(rec) = load_period(b, program, period)? else {
        // Files the store never recorded (a store restored from before
        // them) are named as such, not "generate it first" (QA).
        super::issued::check(b, output_dir, program)?;
        drop_unrecorded_staging(output_dir, program, period)?;
        return Err(not_recorded(b, output_dir, program, period)?);
    };
    let dir = checked_period_dir(output_dir, program, period)?;
    let staged = files::staging_dir(&dir).exists();
    // a swap stopped between its renames is completed before reading
    files::recover_to_read(&dir)?;
    let mut v = Verification {
        program: program.into(),
        period: period.into(),
        status: rec.status,
        files_checked: 0,
        problems: Vec::new(),
        dir: dir.clone(),
    };
    // Not the recorded set at all: one sentence instead of a mismatch per
    // file.
    if let Some(why) = files_not_recorded(&rec, &dir, staged) {
        v.files_checked = 1;
        v.problems.push(why);
        return Ok(v);
    }
    // Files as recorded, but figures an earlier finalise overtook (QA31-A
    // M1: verified as fine).
    v.problems.extend(stale_draft(b, &rec)?);
    let stored = if rec.status == Status::Finalised {
        Some(finalised_statements(b, &rec)?)
    } else {
        None
    };
    let mut expected_names = vec!["summary.csv".to_string()];
    for (i, p) in rec.partners.iter().enumerate() {
        let json_name = format!("{}.json", p.stem);
        let csv_name = format!("{}.csv", p.stem);
        let html_name = format!("{}.html", p.stem);
        expected_names.extend([json_name.clone(), csv_name.clone(), html_name.clone()]);
        let mut check_bytes = |name: &str, want: &str| -> Option<Vec<u8>> {
            v.files_checked += 1;
            match std::fs::read(dir.join(name)) {
                Err(e) => {
                    v.problems.push(format!("{name}: cannot read ({e})"));
                    None
                }
                Ok(bytes) => {
                    let got = render::sha256_hex(&bytes);
                    if got != want {
                        v.problems.push(format!(
                            "{name}: SHA-256 {got} differs from the recorded {want} (file changed)"
                        ));
                    }
                    Some(bytes)
                }
            }
        };
        let json = check_bytes(&json_name, &p.json_sha256);
        check_bytes(&csv_name, &p.csv_sha256);
        check_bytes(&html_name, &p.html_sha256);
        if let Some(json) = json {
            match render::read_json_file(&json) {
                Err(e) => v.problems.push(format!("{json_name}: {e}")),
                Ok((_, claimed, actual)) => {
                    if claimed != actual {
                        v.problems.push(format!(
                            "{json_name}: content hash in the file {claimed} differs from the hash of its content {actual}"
                        ));
                    }
                    if actual != p.content_hash {
                        v.problems.push(format!(
                            "{json_name}: content hash {actual} differs from the recorded {}",
                            p.content_hash
                        ));
                    }
                }
            }
        }
        if let Some(stored) = &stored {
            let (s, fr) = &stored[i];
            let again = render::canonical_json(s)?;
            if render::sha256_hex(&again) != p.content_hash || fr.content_hash != p.content_hash {
                v.problems.push(format!(
                    "partner `{}`: the stored finalised statement does not match its recorded hash",
                    p.partner_id
                ));
            }
        }
    }
    v.files_checked += 1;
    match std::fs::read(dir.join("summary.csv")) {
        Err(e) => v.problems.push(format!("summary.csv: cannot read ({e})")),
        Ok(bytes) => {
            let got = render::sha256_hex(&bytes);
            if got != rec.summary_sha256 {
                v.problems.push(format!(
                    "summary.csv: SHA-256 {got} differs from the recorded {}",
                    rec.summary_sha256
                ));
            }
        }
    }
    if let Some(held) = &rec.held_back_csv {
        v.files_checked += 1;
        expected_names.push("held_back.csv".into());
        match std::fs::read(dir.join("held_back.csv")) {
            Err(e) => v.problems.push(format!("held_back.csv: cannot read ({e})")),
            Ok(bytes) if bytes != held.as_bytes() => v.problems.push(
                "held_back.csv: differs from the recorded list of held-back claims (file changed)"
                    .into(),
            ),
            Ok(_) => {}
        }
    }
    for name in list_files(&dir) {
        if !expected_names.contains(&name) {
            v.problems
                .push(format!("{name}: not part of the recorded statements"));
        }
    }
    Ok(v)
}

/// One partner's line in [`show`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ShownPeriod {
    /// The period record.
    pub record: PeriodRecord,
    /// The summary rows, read from the statements' JSON files (finalised:
    /// from the store).
    pub rows: Vec<SummaryRow>,
    /// Set when the files are not the recorded set
    /// ([`files_not_recorded`]): why, and what to do. A draft period then
    /// shows no rows.
    pub files_not_recorded: Option<String>,
    /// Set when the period is a draft generated before an earlier period
    /// was finalised ([`stale_draft`]): why, and what to do.
    pub stale: Option<String>,
}

/// The recorded statements of a period, for `reckon statements show`.
pub fn show(
    b: &dyn StatementBook,
    output_dir: &Path,
    program: &str,
    period: &str,
) -> Result<ShownPeriod, PayoutError> {
    let Some(rec) = load_period(b, program, period)? else {
        // As `verify` (finance QA16 L3: "run generate first", which a store
        // older than the files is refused).
        super::issued::check(b, output_dir, program)?;
        drop_unrecorded_staging(output_dir, program, period)?;
        return Err(not_recorded(b, output_dir, program, period)?);
    };
    let mut rows = Vec::new();
    let dir = checked_period_dir(output_dir, program, period)?;
    let staged = files::staging_dir(&dir).exists();
    // a swap stopped between its renames is completed before reading
    files::recover_to_read(&dir)?;
    let not_recorded = files_not_recorded(&rec, &dir, staged);
    if rec.status == Status::Finalised {
        for (s, fr) in finalised_statements(b, &rec)? {
            rows.push(SummaryRow::of(&s, &fr.content_hash));
        }
    } else if not_recorded.is_none() {
        for p in &rec.partners {
            let path = dir.join(format!("{}.json", p.stem));
            let bytes = std::fs::read(&path).map_err(|error| FileError {
                action: "read",
                path: path.display().to_string(),
                error,
            })?;
            let (s, _, actual) = render::read_json_file(&bytes)?;
            rows.push(SummaryRow::of(&s, &actual));
        }
    }
    let stale = stale_draft(b, &rec)?;
    Ok(ShownPeriod {
        record: rec,
        rows,
        files_not_recorded: not_recorded,
        stale,
    })
}

/// What [`complete_interrupted`] did about a run of one period that was cut
/// short.
#[derive(Debug, Clone, PartialEq)]
pub enum Completion {
    /// A finalise the store records (its redo log completed, or recorded
    /// before the kill) whose files were not swapped in: the finalised
    /// files were written back from the store, as `generate` restores
    /// them (the report's `restored` names the files rewritten).
    Finalised(Box<Report>),
    /// A run the store recorded nothing of (a first `generate` or
    /// `finalize` killed before recording): its staging directory was
    /// removed, losing nothing.
    Unrecorded,
    /// A period the store records as a draft of this version: what a run
    /// cut short left beside its files was completed or removed
    /// ([`files::recover`]), losing nothing.
    Draft(u32),
}

/// The periods of `program` with a staging (`.<period>.staging`) or
/// set-aside (`.<period>.old`) directory beside their directory under
/// `output_dir`: what a run cut short (a kill, a crash) leaves. Sorted;
/// none when the program has no directory.
pub fn cut_short_periods(output_dir: &Path, program: &str) -> Result<Vec<String>, FileError> {
    let dir = super::issued::program_dir(output_dir, program);
    let entries = match std::fs::read_dir(&dir) {
        Ok(rd) => rd,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(Vec::new()),
        Err(error) => {
            return Err(FileError {
                action: "list",
                path: dir.display().to_string(),
                error,
            })
        }
    };
    let mut periods = std::collections::BTreeSet::new();
    for e in entries {
        let name = e
            .map_err(|error| FileError {
                action: "list",
                path: dir.display().to_string(),
                error,
            })?
            .file_name()
            .to_string_lossy()
            .into_owned();
        let period = name.strip_prefix('.').and_then(|n| {
            n.strip_suffix(".staging")
                .or_else(|| n.strip_suffix(".old"))
        });
        // Only a period's name: another hidden directory is not ours.
        if let Some(p) = period.filter(|p| is_period_name(p)) {
            periods.insert(p.to_owned());
        }
    }
    Ok(periods.into_iter().collect())
}

/// The periods of `program` the store records finalised whose files are
/// an earlier draft (`summary.csv`: `draft`, a version below the record's):
/// a finalise cut short between recording and swapping its files in whose
/// staging directory is gone, so [`cut_short_periods`] does not see it
/// (QA43 C-M1: a `verify` between the crash and the daemon's restart
/// reported the interrupted finalise and its `files::recover` removed the
/// staging directory; the period then stayed draft files for good). A
/// period without files is left out: a removed directory is not a run cut
/// short (`verify` says to run `generate`).
pub fn behind_record_periods(
    b: &dyn StatementBook,
    output_dir: &Path,
    program: &str,
) -> Result<Vec<String>, PayoutError> {
    let dir = super::issued::program_dir(output_dir, program);
    let mut out = Vec::new();
    for rec in period_records(b, program)? {
        if rec.status != Status::Finalised {
            continue;
        }
        let Ok(bytes) = std::fs::read(dir.join(&rec.period).join("summary.csv")) else {
            continue;
        };
        if render::sha256_hex(&bytes) == rec.summary_sha256 {
            continue;
        }
        if let Some((Status::Draft, version)) = super::issued::summary_status(&bytes) {
            if version < rec.version {
                out.push(rec.period);
            }
        }
    }
    Ok(out)
}

/// Completes the file side of `program`'s runs that were cut short, for
/// the daemon (at its start and after each sync, QA42b
/// B-M1: after a kill between recording a finalise and swapping its files
/// in, the store was completed from its redo log but the period directory
/// kept the drafts and the staging directory until someone ran a command
/// of that period). For each period in `periods` (usually
/// [`cut_short_periods`]):
/// - recorded finalised: its files are made the recorded ones, as
///   `generate` does for a finalised period (the swap completed or the
///   files written back byte for byte from the store);
/// - recorded nothing: the staging directory is removed;
/// - a draft: its files are put as every command puts them first
///   ([`files::recover`]): a swap stopped half way is completed with the
///   staged set (which the store recorded), a staging directory the store
///   never recorded (a `finalize` or `generate` killed before recording) is
///   removed (QA44b B-L2: it stayed, its files saying `finalised`, until a
///   command of that period ran).
///
/// Run after the book is recovered ([`book::StoreBook::open`]) and with no
/// statements run of the program under way (the daemon's turn to write).
/// One result per period acted on, in order; a failure of one does not
/// stop the others.
pub fn complete_interrupted(
    b: &dyn StatementBook,
    output_dir: &Path,
    program: &str,
    periods: &[String],
) -> Vec<(String, Result<Completion, PayoutError>)> {
    let mut out = Vec::new();
    for period in periods {
        let done = (|| match load_period(b, program, period)? {
            Some(rec) if rec.status == Status::Finalised => {
                let restore = || {
                    let dir = checked_period_dir(output_dir, program, period)?;
                    files::recover(&dir)?;
                    super::issued::check(b, output_dir, program)?;
                    reproduce(b, output_dir, &rec, &|_| {})
                };
                restore()
                    .map(|r| Some(Completion::Finalised(Box::new(r))))
                    .map_err(|e| PayoutError::FinaliseInterrupted {
                        program: program.into(),
                        period: period.clone(),
                        error: Box::new(e),
                    })
            }
            Some(rec) => {
                let dir = checked_period_dir(output_dir, program, period)?;
                let left = files::staging_dir(&dir).exists() || files::old_dir(&dir).exists();
                files::recover(&dir)?;
                Ok(left.then_some(Completion::Draft(rec.version)))
            }
            None => {
                files::recover(&checked_period_dir(output_dir, program, period)?)?;
                Ok(Some(Completion::Unrecorded))
            }
        })();
        match done {
            Ok(None) => {}
            Ok(Some(c)) => out.push((period.clone(), Ok(c))),
            Err(e) => out.push((period.clone(), Err(e))),
        }
    }
    out
}

/// For the scheduler: regenerates the drafts of the open periods — the one
/// containing `today` and the one before it — unless finalised. Call it at
/// the times of `draft_schedule`.
pub fn generate_open_drafts(
    inputs: &Inputs<'_>,
    today: NaiveDate,
) -> Result<Vec<Report>, PayoutError> {
    let config = config_for(inputs)?;
    let current = Period::containing(config.period, today);
    let mut out = Vec::new();
    for p in [current.previous(), current] {
        let name = p.to_string();
        if load_period(inputs.book, inputs.program, &name)?
            .is_some_and(|r| r.status == Status::Finalised)
        {
            continue;
        }
        match generate(inputs, &name) {
            Ok(r) => out.push(r),
            Err(PayoutError::Superseded { .. }) => continue,
            Err(e) => return Err(e),
        }
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// QA18: a period starting tomorrow was met with "a year typo?".
    #[test]
    fn a_period_not_begun_is_waited_for_when_near_and_checked_when_far() {
        let today = NaiveDate::from_ymd_opt(2026, 11, 30).unwrap();
        let day = |m, d| NaiveDate::from_ymd_opt(2026, m, d).unwrap();
        assert_eq!(
            not_started_hint(day(12, 1), today),
            "It begins tomorrow: run this again then"
        );
        assert_eq!(
            not_started_hint(day(12, 8), today),
            "It begins in 8 days: run this again then"
        );
        let far = NaiveDate::from_ymd_opt(2999, 1, 1).unwrap();
        assert_eq!(
            not_started_hint(far, today),
            "Check the period (a year typo?)"
        );
    }
}
