//! Command-line interface: clap definitions and dispatch.
//!
//! Each subcommand's arguments and behaviour live in the module that owns the
//! feature (`plugins::cli`, `config::cli`, ...); this file only wires them.

pub mod out_file;
pub mod output;
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
        default_value = crate::config::DEFAULT_CONFIG
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

/// Parses the process's command line (exits with clap's message and
/// status 2 on a usage error). A `RECKON_CONFIG` set to nothing, with no
/// `--config` given, is refused naming the variable: clap's own message
/// blamed `--config`, which the user had not typed.
pub fn parse() -> Cli {
    let args: Vec<std::ffi::OsString> = std::env::args_os().collect();
    if let Some(why) = empty_config_env(std::env::var_os("RECKON_CONFIG"), &args) {
        crate::errln!("error: {why}");
        std::process::exit(2);
    }
    <Cli as clap::Parser>::parse_from(args)
}

/// The error for an empty `RECKON_CONFIG` (`env`) that `args` do not
/// override with `--config`.
pub fn empty_config_env(
    env: Option<std::ffi::OsString>,
    args: &[std::ffi::OsString],
) -> Option<String> {
    let empty = env.is_some_and(|v| v.to_string_lossy().trim().is_empty());
    let flag = args.iter().skip(1).any(|a| {
        let a = a.to_string_lossy();
        a == "--config" || a.starts_with("--config=")
    });
    (empty && !flag).then(|| {
        "the environment variable RECKON_CONFIG is set but empty: set it to the config file, or unset it (`unset RECKON_CONFIG`) to use --config or ./reckon.toml".to_owned()
    })
}

/// Runs a parsed command line; errors are printed with their causes.
///
/// When the reader of the output goes away (`reckon ... | head`): a
/// command whose only result is its output ([`output_is_the_result`])
/// stops there and exits 0, as Unix tools do; every other command (one that
/// changes state, or whose exit status is a verdict) finishes its work
/// without the output and exits with the status of that work.
pub fn main(cli: Cli) -> ExitCode {
    // `config` and `plugins` too: their warnings (a secret file readable by
    // everyone, a group-writable plugin directory) are `tracing` WARNs.
    if matches!(
        cli.command,
        Command::Records(_)
            | Command::Reconcile(_)
            | Command::Statements(_)
            | Command::Kpi(_)
            | Command::Config(_)
            | Command::Plugins(_)
    ) {
        crate::schedule::cli::init_command_logging();
    }
    let output_only = output_is_the_result(&cli.command);
    if remote::forwardable(&cli.command) {
        let sync = matches!(cli.command, Command::Sync(_));
        match remote::forward(&cli.config, cli.log_format, sync, output_only) {
            Ok(None) => {}
            Ok(Some(code)) => return code,
            Err(e) if output_only && is_broken_pipe(&e) => return ExitCode::SUCCESS,
            Err(e) => {
                crate::errln!("error: {e:#}");
                return ExitCode::FAILURE;
            }
        }
    }
    let console = &mut if output_only {
        Console::terminal()
    } else {
        Console::terminal_unread()
    };
    let result = match cli.command {
        Command::PluginHost(args) => crate::plugins::cli::plugin_host(args),
        Command::Plugins(cmd) => crate::plugins::cli::run(&cli.config, cmd),
        Command::Config(cmd) => crate::config::cli::run(&cli.config, cmd, console),
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
        // an error of ours, end quietly as Unix tools do. (For the other
        // commands a broken pipe is not their console's, which drops what
        // nobody reads: a plugin subprocess that died, say.)
        Err(e) if output_only && is_broken_pipe(&e) => ExitCode::SUCCESS,
        Err(e) => {
            crate::errln!("error: {e:#}");
            ExitCode::FAILURE
        }
    }
}

/// Whether `cmd`'s only result is what it prints, so that it may stop when
/// nobody reads any more: `records`, `reconcile report` and `kpi` (without
/// `--out`), `statements show`, `plugins list|describe`, `status`. The
/// others write state or files (`run`, `sync`, `reconcile`, `statements
/// generate|finalize`, `reconcile report|kpi --out`, `demo`) or answer
/// with their exit status (`config check`, `plugins check`, `statements
/// verify`, `sync --check`): they finish regardless.
pub fn output_is_the_result(cmd: &Command) -> bool {
    use crate::payout::cli::StatementsCommand as S;
    use crate::plugins::cli::PluginsCommand as P;
    use crate::reconcile::cli::ReconcileCommand as R;
    match cmd {
        // A reset changes the store: it finishes whoever reads its output.
        Command::Records(r) => !matches!(
            r,
            crate::store::cli::RecordsCommand::Checkpoints { reset: true, .. }
        ),
        Command::Status(_) => true,
        Command::Kpi(k) => k.out.is_none(),
        Command::Reconcile(r) => match &r.command {
            Some(R::Report(a)) => a.out.is_none(),
            None => false,
        },
        Command::Statements(s) => matches!(s, S::Show(_)),
        Command::Plugins(p) => matches!(p, P::List { .. } | P::Describe { .. }),
        Command::Run(_)
        | Command::Config(_)
        | Command::Sync(_)
        | Command::Demo(_)
        | Command::PluginHost(_) => false,
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

    /// The process's own stdout and stderr, each dropping what is written
    /// once its reader has gone ([`output::Unread`]); the command opens the
    /// store.
    pub fn terminal_unread() -> Console {
        Console {
            out: Box::new(output::Unread::new(std::io::stdout())),
            err: Box::new(output::Unread::new(std::io::stderr())),
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
        // A lock file without the store: the store was there and is gone,
        // which opening it explains (restore it from a backup).
        let missing = missing && !data_dir.join("reckon.lock").exists();
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
    // QA6 F12: `RECKON_CONFIG=` failed every command with "a value is
    // required for '--config <CONFIG>'", though no --config was given.
    #[test]
    fn an_empty_reckon_config_is_named() {
        let args = |a: &[&str]| a.iter().map(std::ffi::OsString::from).collect::<Vec<_>>();
        let e = super::empty_config_env(Some("".into()), &args(&["reckon", "status"])).unwrap();
        assert!(e.contains("RECKON_CONFIG is set but empty"), "{e}");
        assert!(super::empty_config_env(Some(" ".into()), &args(&["reckon", "status"])).is_some());
        for a in [
            &["reckon", "--config", "x.toml", "status"][..],
            &["reckon", "status", "--config=x.toml"],
        ] {
            assert_eq!(super::empty_config_env(Some("".into()), &args(a)), None);
        }
        assert_eq!(
            super::empty_config_env(Some("r.toml".into()), &args(&["reckon", "status"])),
            None
        );
        assert_eq!(
            super::empty_config_env(None, &args(&["reckon", "status"])),
            None
        );
    }

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
