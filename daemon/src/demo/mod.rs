//! `reckon demo`. Owned by issue 9.
use std::process::ExitCode;

/// Arguments of `reckon demo`.
#[derive(Debug, clap::Args)]
pub struct DemoArgs {}

/// Runs the demo.
pub fn run(_args: DemoArgs) -> anyhow::Result<ExitCode> {
    anyhow::bail!("`reckon demo` is not built yet")
}
