//! `reckon config ...`.
use std::path::Path;
use std::process::ExitCode;

/// `reckon config` subcommands.
#[derive(Debug, clap::Subcommand)]
pub enum ConfigCommand {
    /// Validate the config and print each connector's next fire times.
    Check,
}

/// Runs a config subcommand.
pub fn run(_config: &Path, _cmd: ConfigCommand) -> anyhow::Result<ExitCode> {
    anyhow::bail!("`reckon config` is not built yet")
}
