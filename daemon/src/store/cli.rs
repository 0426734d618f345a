//! `reckon records ...`.
use std::path::Path;
use std::process::ExitCode;

/// `reckon records` subcommands.
#[derive(Debug, clap::Subcommand)]
pub enum RecordsCommand {
    /// Export stored records.
    Export,
}

/// Runs a records subcommand.
pub fn run(_config: &Path, _cmd: RecordsCommand) -> anyhow::Result<ExitCode> {
    anyhow::bail!("`reckon records` is not built yet")
}
