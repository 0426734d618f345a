//! `reckon statements ...`.
use std::path::Path;
use std::process::ExitCode;

/// `reckon statements` subcommands.
#[derive(Debug, clap::Subcommand)]
pub enum StatementsCommand {
    /// Generate draft statements.
    Generate,
}

/// Runs a statements subcommand.
pub fn run(_config: &Path, _cmd: StatementsCommand) -> anyhow::Result<ExitCode> {
    anyhow::bail!("`reckon statements` is not built yet")
}
