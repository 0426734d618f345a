//! `reckon run`.
use std::path::Path;
use std::process::ExitCode;

/// Arguments of `reckon run`.
#[derive(Debug, clap::Args)]
pub struct RunArgs {}

/// Runs the daemon.
pub fn run(_config: &Path, _log_format: Option<&str>, _args: RunArgs) -> anyhow::Result<ExitCode> {
    anyhow::bail!("`reckon run` is not built yet")
}
