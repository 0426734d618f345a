//! `reckon kpi`: a thin shell over [`super::summary::produce`].
use std::path::{Path, PathBuf};

use std::process::ExitCode;

use anyhow::Context;
use chrono::Utc;
use std::io::Write as _;

use super::engine::KpiContext;
use super::period::{Period, ReportingZone};
use super::{Dim, Format, Query, View};

/// Arguments of `reckon kpi`.
#[derive(Debug, clap::Args)]
pub struct KpiArgs {
    /// The period: a month `YYYY-MM`, days `YYYY-MM-DD..YYYY-MM-DD` (inclusive),
    /// an ISO week `YYYY-Www` or a half month `YYYY-MM-H1` / `YYYY-MM-H2`
    /// (as weekly and semi-monthly statements name them), in the reporting
    /// timezone (`[daemon] timezone`).
    #[arg(long)]
    pub period: Period,
    /// Dimensions to group by, comma-separated (e.g. `channel,campaign`);
    /// `--by ''` gives one total row.
    #[arg(long, value_delimiter = ',', default_value = "channel")]
    pub by: Vec<DimArg>,
    /// Which numbers: each platform's own (`reported`), order-backed and
    /// deduplicated (`reconciled`), or `both` with the difference.
    #[arg(long, value_enum, default_value = "both")]
    pub view: View,
    /// Output format.
    #[arg(long, value_enum, default_value = "table")]
    pub format: Format,
    /// Write to this file instead of standard output: a file is replaced
    /// whole (a temporary file renamed over it), a link is followed, a
    /// device or FIFO is written to (`/dev/stdout` prints).
    #[arg(long)]
    pub out: Option<PathBuf>,
}

/// A `--by` item: a dimension, or empty for none.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct DimArg(pub Option<Dim>);

impl std::str::FromStr for DimArg {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, String> {
        let s = s.trim();
        if s.is_empty() {
            return Ok(DimArg(None));
        }
        <Dim as clap::ValueEnum>::from_str(s, true)
            .map(|d| DimArg(Some(d)))
            .map_err(|_| {
                format!("unknown dimension {s:?}; use day, channel, source, campaign, partner")
            })
    }
}

/// Dimensions in order, without repeats or empties.
pub fn dims(args: &[DimArg]) -> Vec<Dim> {
    let mut out = Vec::new();
    for d in args.iter().filter_map(|d| d.0) {
        if !out.contains(&d) {
            out.push(d);
        }
    }
    out
}

/// The notes `reckon kpi` also prints on stderr as `warning:` lines: all of
/// them for CSV (which has no room for notes); none for a table on
/// standard output (the notes head it, on the same terminal); otherwise
/// (JSON, HTML, a table written to a file) the reconciliation freshness
/// notes, which ask for an action (`reckon reconcile`) before the numbers
/// are used.
pub fn warnings<'a>(
    format: Format,
    to_file: bool,
    notes: &'a [String],
    inputs: &'a super::KpiInputs,
) -> Vec<&'a String> {
    match format {
        Format::Csv => notes.iter().collect(),
        Format::Table if !to_file => Vec::new(),
        _ => notes
            .iter()
            .filter(|n| inputs.reconcile_notes.contains(n))
            .collect(),
    }
}

/// Prints (or writes) a KPI summary.
pub fn run(
    config: &Path,
    args: KpiArgs,
    con: &mut crate::cli::Console,
) -> anyhow::Result<ExitCode> {
    let cfg = crate::config::load(config).map_err(|e| anyhow::anyhow!("{e}"))?;
    let zone = ReportingZone::from_tz(cfg.daemon.timezone.0);
    let data_dir = cfg.daemon.data_dir.clone();
    let kpi = cfg.kpi.clone().unwrap_or_default();
    kpi.validate()?;
    // Read-only: a missing store is an error, not a new empty one.
    let store = con.existing_store(&data_dir)?;
    let query = Query {
        period: args.period,
        by: dims(&args.by),
        view: args.view,
    };
    let fx = crate::reconcile::fx_table(&cfg).context("loading [fx] rates")?;
    let inputs =
        super::load::load_inputs(&store, &cfg.programs, &fx, zone, &query.period, Utc::now())?;
    let rules = super::commission::from_rules(&cfg.programs);
    let ctx = KpiContext {
        zone,
        config: &kpi,
        fx: &fx,
        commission: Some(&rules),
        programs: &cfg.programs,
    };
    let (out, notes) = super::summary::produce_with_notes(ctx, &inputs, &query, args.format)?;
    match &args.out {
        Some(path) => con.write_out(path, out.as_bytes())?,
        None => std::io::Write::write_all(&mut con.out, out.as_bytes())?,
    }
    // After the output: a failed write is the one message.
    for n in warnings(args.format, args.out.is_some(), &notes, &inputs) {
        writeln!(con.err, "warning: {n}")?;
    }
    // The report is written; its reconciled figures are not (QA35a L6:
    // exit 0 where `reconcile report` exits 1 for the same state).
    // The reported view reads no decision: nothing is missing from it
    // (QA37 R-M1: a scheduled export of the platforms' numbers failed).
    if query.view != super::View::Reported && !inputs.not_reconciled.is_empty() {
        writeln!(
            con.err,
            "error: program(s) {} not reconciled: the report's reconciled figures leave out their affiliate orders; run `reckon reconcile` and report again",
            inputs.not_reconciled.join(", ")
        )?;
        return Ok(ExitCode::FAILURE);
    }
    Ok(ExitCode::SUCCESS)
}
