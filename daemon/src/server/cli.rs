//! `reckon status`.
use std::path::Path;
use std::process::ExitCode;

/// Arguments of `reckon status`.
#[derive(Debug, clap::Args)]
pub struct StatusArgs {}

/// Prints the status of a running daemon.
pub fn run(_config: &Path, _args: StatusArgs) -> anyhow::Result<ExitCode> {
    anyhow::bail!("`reckon status` is not built yet")
}
