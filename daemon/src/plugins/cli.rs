//! `reckon plugins ...` and the hidden `reckon plugin-host`.
use std::path::Path;
use std::process::ExitCode;

/// `reckon plugins` subcommands.
#[derive(Debug, clap::Subcommand)]
pub enum PluginsCommand {
    /// List plugins in the plugin directory.
    List,
}

/// Arguments of the hidden `reckon plugin-host`.
#[derive(Debug, clap::Args)]
pub struct PluginHostArgs {
    /// The library to host.
    #[arg(long)]
    pub lib: std::path::PathBuf,
}

/// Runs a plugins subcommand.
pub fn run(_config: &Path, _cmd: PluginsCommand) -> anyhow::Result<ExitCode> {
    anyhow::bail!("`reckon plugins` is not built yet")
}

/// Hosts one plugin over stdio.
pub fn plugin_host(_args: PluginHostArgs) -> anyhow::Result<ExitCode> {
    anyhow::bail!("`reckon plugin-host` is not built yet")
}
