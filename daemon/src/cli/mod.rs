//! Command-line interface: clap definitions and dispatch.
//!
//! Each subcommand's arguments and behaviour live in the module that owns the
//! feature (`plugins::cli`, `config::cli`, ...); this file only wires them.

pub mod remote;

use clap::{Parser, Subcommand};
use std::io::Write;
use std::path::Path;
use std::process::ExitCode;

/// Reckon: reconcile ad spend, affiliate claims and orders; issue payout
/// statements and KPI summaries.
#[derive(Debug, Parser)]
#[command(name = "reckon", version, about, long_about = None)]
pub struct Cli {
    /// Path to the config file.
    #[arg(
        long,
        global = true,
        env = "RECKON_CONFIG",
        default_value = "reckon.toml"
    )]
    pub config: std::path::PathBuf,
    /// Log format of `run` and `sync` (overrides `[daemon] log_format`).
    #[arg(long, global = true, value_enum)]
    pub log_format: Option<crate::config::LogFormat>,
    /// The command to run.
    #[command(subcommand)]
    pub command: Command,
}

/// Subcommands.
#[derive(Debug, Subcommand)]
pub enum Command {
    /// Run the daemon: schedules, server, reconciliation, statements.
    Run(crate::schedule::cli::RunArgs),
    /// Validate configuration.
    #[command(subcommand)]
    Config(crate::config::cli::ConfigCommand),
    /// Inspect and check plugin libraries.
    #[command(subcommand)]
    Plugins(crate::plugins::cli::PluginsCommand),
    /// Run one connector once, or backfill a date range.
    Sync(crate::sync::cli::SyncArgs),
    /// Show stored records.
    #[command(subcommand)]
    Records(crate::store::cli::RecordsCommand),
    /// Reconcile claims against orders, or print a discrepancy report.
    Reconcile(crate::reconcile::cli::ReconcileArgs),
    /// Generate, finalise, show and verify payout statements.
    #[command(subcommand)]
    Statements(crate::payout::cli::StatementsCommand),
    /// KPI summaries.
    Kpi(crate::kpi::cli::KpiArgs),
    /// Status of a running daemon.
    Status(crate::server::cli::StatusArgs),
    /// Run the whole pipeline against built-in loopback fakes.
    Demo(crate::demo::DemoArgs),
    /// Internal: host one plugin library over stdio (subprocess isolation).
    #[command(hide = true)]
    PluginHost(crate::plugins::cli::PluginHostArgs),
}

/// Runs a parsed command line; errors are printed with their causes.
pub fn main(cli: Cli) -> ExitCode {
    if matches!(
        cli.command,
        Command::Records(_) | Command::Reconcile(_) | Command::Statements(_) | Command::Kpi(_)
    ) {
        crate::schedule::cli::init_command_logging();
    }
    if remote::forwardable(&cli.command) {
        match remote::forward(&cli.config, cli.log_format) {
            Ok(None) => {}
            Ok(Some(code)) => return code,
            Err(e) if is_broken_pipe(&e) => return ExitCode::SUCCESS,
            Err(e) => {
                eprintln!("error: {e:#}");
                return ExitCode::FAILURE;
            }
        }
    }
    let console = &mut Console::terminal();
    let result = match cli.command {
        Command::PluginHost(args) => crate::plugins::cli::plugin_host(args),
        Command::Plugins(cmd) => crate::plugins::cli::run(&cli.config, cmd),
        Command::Config(cmd) => crate::config::cli::run(&cli.config, cmd),
        Command::Run(args) => crate::schedule::cli::run(&cli.config, cli.log_format, args),
        Command::Sync(args) => crate::sync::cli::run(&cli.config, cli.log_format, args),
        Command::Records(cmd) => crate::store::cli::run(&cli.config, cmd, console),
        Command::Reconcile(args) => crate::reconcile::cli::run(&cli.config, args, console),
        Command::Statements(cmd) => crate::payout::cli::run(&cli.config, cmd, console),
        Command::Kpi(args) => crate::kpi::cli::run(&cli.config, args, console),
        Command::Status(args) => crate::server::cli::run(&cli.config, args),
        Command::Demo(args) => crate::demo::run(args),
    };
    match result {
        Ok(code) => code,
        // The reader of our output stopped early (`reckon ... | head`): not
        // an error of ours, end quietly as Unix tools do.
        Err(e) if is_broken_pipe(&e) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("error: {e:#}");
            ExitCode::FAILURE
        }
    }
}

/// Where a command that opens the store writes its output, and which store
/// it uses: the terminal and a store it opens itself, or, for a command the
/// daemon runs for a client ([`remote`]), the client's socket and the
/// daemon's open store.
pub struct Console {
    /// Standard output.
    pub out: Box<dyn Write + Send>,
    /// Standard error (warnings, counts).
    pub err: Box<dyn Write + Send>,
    /// The daemon's store, when the daemon runs the command.
    daemon_store: Option<crate::store::Store>,
}

impl std::fmt::Debug for Console {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Console")
            .field("daemon_store", &self.daemon_store)
            .finish_non_exhaustive()
    }
}

impl Console {
    /// The process's own stdout and stderr; the command opens the store.
    pub fn terminal() -> Console {
        Console {
            out: Box::new(std::io::stdout()),
            err: Box::new(std::io::stderr()),
            daemon_store: None,
        }
    }

    /// Output to `out` and `err`, using the daemon's open `store`.
    pub fn in_daemon(
        out: Box<dyn Write + Send>,
        err: Box<dyn Write + Send>,
        store: crate::store::Store,
    ) -> Console {
        Console {
            out,
            err,
            daemon_store: Some(store),
        }
    }

    /// The store in `data_dir`: opened here, or the daemon's, which must be
    /// the same directory (the config the client named could point
    /// elsewhere).
    pub fn store(&self, data_dir: &Path) -> anyhow::Result<crate::store::Store> {
        let Some(store) = &self.daemon_store else {
            return Ok(crate::store::Store::open(data_dir)?);
        };
        let same = |p: &Path| std::fs::canonicalize(p).unwrap_or_else(|_| p.to_path_buf());
        if same(data_dir) != same(store.dir()) {
            anyhow::bail!(
                "the config names data_dir {}, but the daemon that answered serves {}",
                data_dir.display(),
                store.dir().display()
            );
        }
        Ok(store.clone())
    }
}

impl Console {
    /// [`Console::store`] for a read-only command: a `data_dir` without a
    /// store (mistyped, or nothing synced yet) is an error naming it, and
    /// is not created.
    pub fn existing_store(&self, data_dir: &Path) -> anyhow::Result<crate::store::Store> {
        // Only a store that is not there is "no store": one this user may
        // not look into is opened, and refused with the reason (not
        // writable), rather than called missing.
        let missing = match std::fs::metadata(data_dir.join("store")) {
            Ok(m) => !m.is_dir(),
            Err(e) => e.kind() == std::io::ErrorKind::NotFound,
        };
        if self.daemon_store.is_none() && missing {
            anyhow::bail!(
                "no Reckon store in {}: check `[daemon] data_dir` in the config (relative paths are from the config file's directory), or run `reckon sync` first",
                data_dir.display()
            );
        }
        anyhow::Context::with_context(self.store(data_dir), || {
            format!("opening the store in {}", data_dir.display())
        })
    }
}

/// A day given on the command line (`YYYY-MM-DD`), with an error a person
/// can act on: chrono alone says "input is out of range" for 2026-11-31.
pub fn parse_day(s: &str) -> Result<chrono::NaiveDate, String> {
    s.parse::<chrono::NaiveDate>().map_err(|e| {
        let shaped = s.len() == 10 && s.as_bytes()[4] == b'-' && s.as_bytes()[7] == b'-';
        if shaped {
            format!("`{s}` is not a day of the calendar ({e}); check the month and day")
        } else {
            format!("`{s}` is not a day: write it as YYYY-MM-DD, e.g. 2026-11-01")
        }
    })
}

/// Writes a command's output to stdout. Unlike `print!`, which panics when
/// the reader has closed the pipe, this returns the error, and [`main`]
/// ends the command quietly.
pub fn write_stdout(text: &str) -> std::io::Result<()> {
    use std::io::Write as _;
    let mut out = std::io::stdout().lock();
    out.write_all(text.as_bytes())?;
    out.flush()
}

fn is_broken_pipe(e: &anyhow::Error) -> bool {
    let pipe = |io: &std::io::Error| io.kind() == std::io::ErrorKind::BrokenPipe;
    e.chain().any(|c| {
        c.downcast_ref::<std::io::Error>().is_some_and(pipe)
            || c.downcast_ref::<csv::Error>()
                .is_some_and(|ce| matches!(ce.kind(), csv::ErrorKind::Io(io) if pipe(io)))
    })
}

#[cfg(test)]
mod tests {
    #[test]
    fn a_day_that_is_not_one_says_why() {
        assert_eq!(
            super::parse_day("2026-11-01"),
            Ok(chrono::NaiveDate::from_ymd_opt(2026, 11, 1).unwrap())
        );
        let e = super::parse_day("2026-11-31").unwrap_err();
        assert!(
            e.contains("not a day of the calendar") && e.contains("month and day"),
            "{e}"
        );
        let e = super::parse_day("11/01/2026").unwrap_err();
        assert!(e.contains("YYYY-MM-DD"), "{e}");
    }
}
