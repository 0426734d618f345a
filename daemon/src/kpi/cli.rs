//! `reckon kpi`.
use std::path::Path;
use std::process::ExitCode;

/// Arguments of `reckon kpi`.
#[derive(Debug, clap::Args)]
pub struct KpiArgs {}

/// Prints a KPI summary.
pub fn run(_config: &Path, _args: KpiArgs) -> anyhow::Result<ExitCode> {
    anyhow::bail!("`reckon kpi` is not built yet")
}
