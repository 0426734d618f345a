//! `reckon reconcile`.
use std::path::Path;
use std::process::ExitCode;

/// Arguments of `reckon reconcile`.
#[derive(Debug, clap::Args)]
pub struct ReconcileArgs {
    /// Only this program.
    #[arg(long)]
    pub program: Option<String>,
}

/// Runs reconciliation.
pub fn run(_config: &Path, _args: ReconcileArgs) -> anyhow::Result<ExitCode> {
    anyhow::bail!("`reckon reconcile` is not built yet")
}
