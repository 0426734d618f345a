//! `reckon sync`.
use std::path::Path;
use std::process::ExitCode;

/// Arguments of `reckon sync`.
#[derive(Debug, clap::Args)]
pub struct SyncArgs {
    /// Connector id.
    pub connector: String,
}

/// Runs one sync.
pub fn run(_config: &Path, _args: SyncArgs) -> anyhow::Result<ExitCode> {
    anyhow::bail!("`reckon sync` is not built yet")
}
