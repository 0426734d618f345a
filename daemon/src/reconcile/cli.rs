//! `reckon reconcile` (run now) and `reckon reconcile report` (discrepancy
//! report). A thin shell: load config and store, call [`super::run`] or
//! [`super::report`], print.
use super::config::ProgramConfig;
use super::report::{self, Format, Period};
use crate::cli::Console;
use crate::fx::FxTable;
use anyhow::Context as _;
use std::io::Write as _;
use std::path::{Path, PathBuf};
use std::process::ExitCode;

/// Arguments of `reckon reconcile`.
#[derive(Debug, clap::Args)]
#[command(args_conflicts_with_subcommands = true)]
pub struct ReconcileArgs {
    /// A report instead of a run.
    #[command(subcommand)]
    pub command: Option<ReconcileCommand>,
    /// Only this program (default: every program).
    #[arg(long)]
    pub program: Option<String>,
    /// Judge every claim again instead of only those touched since the last
    /// run (the result is the same; this is slower).
    #[arg(long)]
    pub full: bool,
    /// Judge as of this instant (RFC 3339, e.g. `2026-10-31T23:59:59Z`):
    /// every record as Reckon had stored it then (later syncs, refunds and
    /// status changes left out), grace periods and lock dates compared with
    /// it, changed decisions stamped with it. Reproduces what a run at that
    /// instant decided; implies `--full`, and the next plain run is a full
    /// one, back to the present.
    #[arg(long, value_name = "RFC3339", value_parser = parse_now)]
    pub now: Option<chrono::DateTime<chrono::Utc>>,
}

fn parse_now(s: &str) -> Result<chrono::DateTime<chrono::Utc>, String> {
    chrono::DateTime::parse_from_rfc3339(s)
        .map(|t| t.with_timezone(&chrono::Utc))
        .map_err(|e| format!("{e}; expected an RFC 3339 time such as 2026-10-31T23:59:59Z"))
}

/// `reckon reconcile <command>`.
#[derive(Debug, clap::Subcommand)]
pub enum ReconcileCommand {
    /// Print a program's discrepancy report for one month.
    Report(ReportArgs),
}

/// Arguments of `reckon reconcile report`.
#[derive(Debug, clap::Args)]
pub struct ReportArgs {
    /// The program.
    #[arg(long)]
    pub program: String,
    /// The period, by the claims' conversion time on the program's
    /// calendar (the commission timezone, else `daemon.timezone`): a
    /// month, YYYY-MM, or a period as the program's statements name it
    /// (`[programs.commission] period`): YYYY-MM-H1 / YYYY-MM-H2 when
    /// semi-monthly, an ISO week YYYY-Www when weekly.
    #[arg(long)]
    pub period: Period,
    /// Output format.
    #[arg(long, value_enum, default_value = "csv")]
    pub format: Format,
    /// Write to this file instead of stdout: a file is replaced whole (a
    /// temporary file renamed over it), a link is followed, a device or
    /// FIFO is written to (`/dev/stdout` prints).
    #[arg(long)]
    pub out: Option<PathBuf>,
    /// Judge the claims as of this instant (RFC 3339), from the claims and
    /// orders as Reckon had stored them then, instead of reading the stored
    /// decisions. Nothing stored changes (unlike `reckon reconcile --now`);
    /// costs a full run of the program in memory.
    #[arg(long, value_name = "RFC3339", value_parser = parse_now)]
    pub as_of: Option<chrono::DateTime<chrono::Utc>>,
    /// List every claim of the month, `matched` ones too, not only the
    /// discrepancies (each with its order, amounts and reason).
    #[arg(long)]
    pub all: bool,
}

/// The parts of the config file reconciliation needs.
struct Loaded {
    programs: Vec<ProgramConfig>,
    fx: FxTable,
    data_dir: PathBuf,
}

fn load(config: &Path) -> anyhow::Result<Loaded> {
    let cfg = crate::config::load(config)?;
    super::config::validate_programs(&cfg.programs)
        .with_context(|| format!("config file {}", config.display()))?;
    Ok(Loaded {
        fx: super::fx_table(&cfg)?,
        programs: cfg.programs,
        data_dir: cfg.daemon.data_dir,
    })
}

fn select(programs: &[ProgramConfig], id: Option<&str>) -> anyhow::Result<Vec<ProgramConfig>> {
    match id {
        None => Ok(programs.to_vec()),
        Some(id) => programs
            .iter()
            .find(|p| p.id == id)
            .map(|p| vec![p.clone()])
            .ok_or_else(|| {
                let ids: Vec<&str> = programs.iter().map(|p| p.id.as_str()).collect();
                super::ReconcileError::UnknownProgram(
                    id.to_owned(),
                    crate::config::source::not_configured(id, &ids),
                )
                .into()
            }),
    }
}

/// Runs reconciliation now, or prints a report.
pub fn run(config: &Path, args: ReconcileArgs, con: &mut Console) -> anyhow::Result<ExitCode> {
    let loaded = load(config)?;
    // A report only reads: a mistyped data_dir is an error, not a new
    // empty store reported as "nothing" (QA).
    let store = if matches!(args.command, Some(ReconcileCommand::Report(_))) {
        con.existing_store(&loaded.data_dir)?
    } else {
        con.store(&loaded.data_dir)?
    };
    match args.command {
        Some(ReconcileCommand::Report(r)) => {
            let program = select(&loaded.programs, Some(&r.program))?.remove(0);
            if let Some(path) = &r.out {
                // Before the work, not after it (QA20 F9).
                crate::cli::out_file::check_out_dir(path)?;
            }
            let period = r.period;
            period
                .check_kind(&program)
                .map_err(|e| anyhow::anyhow!("{e}"))?;
            // The statements' calendar: the commission timezone, else the
            // daemon's reporting timezone.
            let tz = program.calendar();
            let in_period = |d: &super::model::Decision| period.contains(d.occurred_at, tz);
            let present = chrono::Utc::now();
            // The instant the decisions were judged at, and those judged
            // before a deadline of their own that has passed since (stored
            // decisions only: `--as-of` judges at the instant asked for).
            let mut ran = true;
            let (decisions, judged_at, stale, store_as_of) = match r.as_of {
                None => {
                    let j = super::load_judgements_where(&store, &program.id, in_period)?;
                    ran = j.ran;
                    let stale =
                        report::stale(j.decisions.iter().zip(j.due.iter().copied()), present);
                    (j.decisions, j.judged_at, stale, j.store_as_of)
                }
                Some(at) => (
                    super::decisions_as_of(&store, &program, &loaded.fx, at, in_period)?,
                    Some(at),
                    None,
                    None,
                ),
            };
            let mut rep = report::build_judged(
                &program.id,
                &program.currency,
                r.period,
                tz,
                &decisions,
                r.all,
                judged_at,
            );
            rep.as_of = r.as_of;
            rep.stale = stale;
            if ran && r.as_of.is_none() {
                rep.out_of_date = super::out_of_date_notes(
                    &store,
                    &program,
                    &super::unjudged(&store, &program)?,
                    &loaded.fx.fingerprint(),
                    "a refund, a reversal or a new claim since is not in this report",
                )?;
            }
            rep.store_as_of = store_as_of;
            rep.not_reconciled = !ran;
            if !ran {
                writeln!(
                    con.err,
                    "warning: {}",
                    report::not_reconciled_sentence(&program.id)
                )?;
            }
            if let Some(t) = store_as_of {
                writeln!(
                    con.err,
                    "note: these decisions were stored by `reckon reconcile --now {}`: only records stored by then were judged; a plain `reckon reconcile` judges the present",
                    t.to_rfc3339_opts(chrono::SecondsFormat::Secs, true)
                )?;
            }
            if let Some(at) = r.as_of.filter(|_| decisions.is_empty()) {
                // Ops QA13 OPS-20: an empty report read as "no discrepancies".
                writeln!(
                    con.err,
                    "note: no claim of program `{}` in {} was stored at {}: records are stored when first synced, so a store synced after that instant has nothing to judge then",
                    program.id,
                    r.period,
                    at.to_rfc3339_opts(chrono::SecondsFormat::Secs, true)
                )?;
            }
            if ran && r.as_of.is_none() && rep.claims == 0 {
                // QA20 F9: bare headers and nothing else read as a failure.
                writeln!(
                    con.err,
                    "note: program `{}` has no claims in {} (the {} of their conversion time in {}): the report is empty",
                    program.id,
                    r.period,
                    r.period.unit(),
                    tz.name()
                )?;
            }
            if let Some(at) = r.as_of {
                let at_text = at.to_rfc3339_opts(chrono::SecondsFormat::AutoSi, true);
                if at > chrono::Utc::now() {
                    // QA24-B F7: the past-tense note read oddly for a
                    // future instant.
                    writeln!(
                        con.err,
                        "note: --as-of {at_text} is in the future: the records stored now are judged as of then (locks and grace periods that will have passed count as passed), with today's [[programs]] and [fx]"
                    )?;
                } else {
                    writeln!(
                        con.err,
                        "note: --as-of judges the records stored at {at_text} with today's [[programs]] and [fx]: rates added or restated since are used, so this is what today's rules make of the store then, not necessarily what was decided or paid then (statements record what they paid)"
                    )?;
                }
            }
            if r.as_of.is_none() {
                match judged_at {
                    None if ran && !decisions.is_empty() => writeln!(
                        con.err,
                        "note: these decisions do not record when they were judged (stored by an earlier version); run `reckon reconcile` to record it"
                    )?,
                    Some(at) if at > present => writeln!(
                        con.err,
                        "warning: these decisions were judged as of {}, later than now (`reckon reconcile --now`): they take grace periods and lock dates as passed that have not; run `reckon reconcile` to judge them as of now",
                        at.to_rfc3339_opts(chrono::SecondsFormat::Secs, true)
                    )?,
                    _ => {}
                }
            }
            if let Some(s) = &rep.stale {
                writeln!(con.err, "warning: {}", s.sentence(judged_at))?;
            }
            for note in &rep.out_of_date {
                writeln!(con.err, "warning: {note}")?;
            }
            let text = report::render(&rep, r.format);
            match &r.out {
                Some(path) => con.write_out(path, text.as_bytes())?,
                None => con.out.write_all(text.as_bytes())?,
            }
            // The report is written either way; a scheduled export must
            // notice it holds no claims because nothing was judged (ops
            // QA13 OPS-13: the CSV has no place for the warning).
            Ok(if ran {
                ExitCode::SUCCESS
            } else {
                ExitCode::FAILURE
            })
        }
        None => {
            let programs = select(&loaded.programs, args.program.as_deref())?;
            if programs.is_empty() {
                anyhow::bail!(
                    "config file {} has no [[programs]]; add one to reconcile",
                    config.display()
                );
            }
            let summary = match args.now {
                None => super::run_with(
                    &super::backend::StoreBackend::new(&store)?,
                    &programs,
                    &loaded.fx,
                    chrono::Utc::now(),
                    args.full,
                )?,
                Some(at) => super::run_with(
                    &super::backend::AsOf::new(&store, at)?,
                    &programs,
                    &loaded.fx,
                    at,
                    true,
                )?,
            };
            for p in &summary.programs {
                let outcomes: Vec<String> = p
                    .by_outcome
                    .iter()
                    .map(|(o, n)| format!("{}={n}", o.as_str()))
                    .collect();
                // The judged claims' outcomes; nothing when none was judged.
                let outcomes = if outcomes.is_empty() {
                    String::new()
                } else {
                    format!(" [judged: {}]", outcomes.join(" "))
                };
                let removed = removed_text(p, &programs, args.now.is_some());
                let total = match p.payable_total {
                    Some(n) => format!("; {n} payable in the program"),
                    None => String::new(),
                };
                writeln!(
                    con.out,
                    "{}: {} run, {} claims judged ({} of them payable), {} decisions changed ({} with a new outcome, basis or payable flag){removed}{outcomes}{total}",
                    p.program,
                    if p.full { "full" } else { "incremental" },
                    p.claims_judged,
                    p.payable,
                    p.decisions_changed,
                    p.outcomes_changed,
                )?;
                warn_if_paid_connector_removed(&store, p, &programs, con)?;
            }
            if let Some(at) = args.now {
                writeln!(
                    con.out,
                    "decisions now stored as of {}: only what was stored by then was judged; the next plain `reckon reconcile` is a full run back to the present",
                    at.to_rfc3339_opts(chrono::SecondsFormat::Secs, true)
                )?;
            }
            Ok(ExitCode::SUCCESS)
        }
    }
}

/// A run that dropped the decisions of a connector whose claims finalised
/// statements paid succeeds (putting the connector back restores them),
/// but says now what `reckon statements` will refuse (QA8 F3).
fn warn_if_paid_connector_removed(
    store: &crate::store::Store,
    p: &super::ProgramSummary,
    programs: &[super::config::ProgramConfig],
    con: &mut Console,
) -> anyhow::Result<()> {
    if let Some(warning) = paid_connector_removed(store, p, programs)? {
        writeln!(con.err, "warning: {warning}")?;
    }
    Ok(())
}

/// What [`warn_if_paid_connector_removed`] says, for the daemon's log too
/// (QA29-A M1: a reload that took a paid network out of `claims` had the
/// daemon drop its decisions without a word).
pub(crate) fn paid_connector_removed(
    store: &crate::store::Store,
    p: &super::ProgramSummary,
    programs: &[super::config::ProgramConfig],
) -> Result<Option<String>, crate::payout::lifecycle::PayoutError> {
    use crate::payout::lifecycle::{check_settled, PayoutError};
    let Some(program) = programs.iter().find(|c| c.id == p.program) else {
        return Ok(None);
    };
    let Some(commission) = &program.commission else {
        return Ok(None);
    };
    if p.removed_by_source.is_empty() {
        return Ok(None);
    }
    let book = crate::payout::book::StoreBook::open(store)?;
    Ok(match check_settled(&book, program, commission) {
        Err(PayoutError::PaidConnectorRemoved {
            connector,
            statement,
            ..
        }) => Some(format!(
            "claims of `{connector}` were paid on finalised statements of `{}` (the first: {statement}), but `{connector}` is no longer in its `claims`: `reckon statements` refuses the program until `{connector}` is back in `claims`, which restores its decisions (README, Payout statements, \"Program ids and connectors after finalising\")",
            program.id
        )),
        _ => None,
    })
}

/// ", N decisions removed (why)" for a run that deleted stored decisions,
/// by cause: a connector no longer among the program's `claims` (finance
/// QA F8), else claims the run did not see (not stored yet at `--now`).
pub(crate) fn removed_text(
    p: &super::ProgramSummary,
    programs: &[super::config::ProgramConfig],
    as_of: bool,
) -> String {
    if p.decisions_removed == 0 {
        return String::new();
    }
    let claims: &[String] = programs
        .iter()
        .find(|c| c.id == p.program)
        .map_or(&[], |c| &c.claims);
    let mut parts = Vec::new();
    let mut other = 0;
    for (source, n) in &p.removed_by_source {
        if !source.is_empty() && !claims.contains(source) {
            parts.push(format!(
                "{n} decisions removed (`{source}` is no longer a claims connector of {})",
                p.program
            ));
        } else {
            other += n;
        }
    }
    if other > 0 {
        parts.push(if as_of {
            format!("{other} decisions removed (their claims were not stored yet)")
        } else {
            format!("{other} decisions removed (their claims are no longer stored)")
        });
    }
    format!(", {}", parts.join(", "))
}
