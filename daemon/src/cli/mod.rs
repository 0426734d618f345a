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
#[command(name = "reckon", version = crate::VERSION, about, long_about = None)]
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
/// status 2 on a usage error, [`try_parse_from`]). A `RECKON_CONFIG` set
/// to nothing, with no `--config` given, is refused naming the variable:
/// clap's own message blamed `--config`, which the user had not typed.
///
/// `run` and `sync` given `--log-format json` get their usage error as a
/// JSON log line, as every other line of their stderr ([`json_logs_asked`]).
pub fn parse() -> Cli {
    let args: Vec<std::ffi::OsString> = std::env::args_os().collect();
    if json_logs_asked(&args) {
        output::errors_as_json();
    }
    let env = std::env::var_os("RECKON_CONFIG");
    let empty_env = empty_config_env(env.clone(), &args);
    if env.is_some_and(|v| v.to_string_lossy().trim().is_empty()) {
        // Set but empty: clap refuses the empty value before looking at
        // `--config` (QA35a M2: "a value is required for '--config'"), so
        // it is removed; `--config` wins, as over any value, and a command
        // that reads the config without one is refused below. Nothing
        // else runs yet: no thread reads the environment while it changes.
        std::env::remove_var("RECKON_CONFIG");
    }
    let cli = match try_parse_from(args.clone()) {
        Ok(cli) => cli,
        // clap's error, up to its first blank line (`error: the following
        // required arguments were not provided:` and the arguments), on
        // one line; the usage and tips after it are for people.
        Err(e) if e.use_stderr() && json_logs_asked(&args) => {
            let text = e.render().to_string();
            let error: Vec<&str> = text
                .lines()
                .take_while(|l| !l.trim().is_empty())
                .map(str::trim)
                .collect();
            output::fail(&error.join(" "));
            std::process::exit(e.exit_code());
        }
        Err(e) => e.exit(),
    };
    // Only where the config would be read: `--version`, `--help`, `demo`
    // and `status --addr` never read it (QA37 R-L5).
    if let Some(why) = empty_env.filter(|_| reads_config(&cli.command)) {
        output::fail(&format!("error: {why}"));
        std::process::exit(2);
    }
    cli
}

/// Whether `command` reads the config file (`--config`, `RECKON_CONFIG`).
fn reads_config(command: &Command) -> bool {
    match command {
        Command::Demo(_) | Command::PluginHost(_) => false,
        Command::Status(a) => a.addr.is_none(),
        _ => true,
    }
}

/// Whether the raw command line `args` is `run` or `sync` with
/// `--log-format json`: read before clap, which may refuse the line.
pub fn json_logs_asked(args: &[std::ffi::OsString]) -> bool {
    let mut command = None;
    let mut json = false;
    let mut args = args.iter().skip(1).map(|a| a.to_string_lossy());
    while let Some(a) = args.next() {
        match a.as_ref() {
            "--" => break,
            "--log-format" => json = args.next().is_some_and(|v| v == "json"),
            "--config" => {
                args.next();
            }
            a if a.starts_with("--log-format=") => json = a == "--log-format=json",
            a if !a.starts_with('-') && command.is_none() => command = Some(a.to_owned()),
            _ => {}
        }
    }
    json && matches!(command.as_deref(), Some("run" | "sync"))
}

/// Parses a command line (`reckon` first) as this process and the daemon
/// (a command a client has it run) both do. A bad argument is a usage
/// error, clap's, exit status 2, whichever command it is given to, and
/// before any config is read (QA30-C L3: `statements --period 2026-13`,
/// `records export` and `sync` with `--from` after `--to` were exit 1, the
/// same mistakes in `kpi` and `reconcile report` 2): a value that is
/// malformed or out of its range, or two that contradict each other
/// ([`contradiction`]). What only the config, the store or today's date
/// can refuse (an unknown connector or program, a period of another kind
/// than the program's, a `--to` after today) is the command's error, 1.
pub fn try_parse_from<I, T>(args: I) -> Result<Cli, clap::Error>
where
    I: IntoIterator<Item = T>,
    T: Into<std::ffi::OsString> + Clone,
{
    let mut command = command();
    let matches = command.try_get_matches_from_mut(args)?;
    let cli = <Cli as clap::FromArgMatches>::from_arg_matches(&matches)
        .map_err(|e| e.format(&mut command))?;
    if let Some((path, why)) = contradiction(&cli) {
        command.build();
        return Err(usage_error(&mut command, path, why));
    }
    Ok(cli)
}

/// clap's usage error `why`, with the usage of the subcommand at `path`.
fn usage_error(command: &mut clap::Command, path: &[&str], why: String) -> clap::Error {
    if let Some((name, rest)) = path.split_first() {
        if let Some(sub) = command.find_subcommand_mut(name) {
            return usage_error(sub, rest, why);
        }
    }
    command.error(clap::error::ErrorKind::ArgumentConflict, why)
}

/// The clap command of [`Cli`].
pub fn command() -> clap::Command {
    <Cli as clap::CommandFactory>::command()
}

/// Two arguments that contradict each other, or a day out of its range
/// given with another, as (the subcommand's path, the message): a usage
/// error ([`try_parse_from`]).
pub fn contradiction(cli: &Cli) -> Option<(&'static [&'static str], String)> {
    let after = |from: Option<chrono::NaiveDate>, to: Option<chrono::NaiveDate>| {
        from.zip(to)
            .filter(|(f, t)| f > t)
            .map(|(f, t)| format!("--from {f} is after --to {t}"))
    };
    match &cli.command {
        Command::Sync(s) => after(s.from, s.to)
            .or_else(|| {
                // Records before 2000 are refused anyway: such a --from is
                // a typo that would run thousands of empty windows.
                let earliest = plugin_api::validate::EARLIEST;
                s.from.filter(|f| *f < earliest).map(|f| {
                    format!("--from {f} is before {earliest}, the earliest day reckon stores")
                })
            })
            .map(|why| (&["sync"][..], why)),
        Command::Records(crate::store::cli::RecordsCommand::Export { from, to, .. }) => {
            // A filter that can match nothing is a mistake, not an empty
            // export.
            after(*from, *to).map(|why| (&["records", "export"][..], why))
        }
        _ => None,
    }
}

/// `statements --period`: a period name of one of the kinds a program's
/// statements may have (`YYYY-MM`, `YYYY-MM-H1`/`H2`, `YYYY-Www`, read by
/// `payout::period`), whose month or week exists, and not before 1970, as
/// `kpi` and `reconcile report` refuse (QA30-C L4: `finalize --period
/// 0001-01` was recorded for good). Whether it is of the program's kind is
/// the command's check.
pub fn parse_statement_period(s: &str) -> Result<String, String> {
    use crate::payout::config::PeriodKind;
    use chrono::Datelike as _;
    for kind in [
        PeriodKind::Monthly,
        PeriodKind::SemiMonthly,
        PeriodKind::Weekly,
    ] {
        match crate::payout::period::Period::parse(kind, s) {
            Ok(period) => {
                return match crate::kpi::period::year_refused(period.last_day().year()) {
                    Some(why) => Err(format!("period `{s}`: {why}")),
                    None => Ok(s.to_owned()),
                };
            }
            // The form of this kind, with a month or week that does not exist.
            Err(e) if e.out_of_range.is_some() => return Err(e.to_string()),
            Err(_) => {}
        }
    }
    Err(format!(
        "`{s}` is not a period: write YYYY-MM (monthly, e.g. 2026-11), YYYY-MM-H1 or YYYY-MM-H2 (semi-monthly) or YYYY-Www (weekly, an ISO week, e.g. 2026-W48), as the program's `commission.period` is"
    ))
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
        "the environment variable RECKON_CONFIG is set but empty: set it to the config file, pass --config FILE, or unset it (`unset RECKON_CONFIG`) to use ./reckon.toml".to_owned()
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
                output::fail(&format!("error: {}", error_text(&e)));
                return ExitCode::FAILURE;
            }
        }
    }
    let console = &mut if output_only {
        Console::terminal()
    } else {
        Console::terminal_unread()
    };
    // `run` refused a store in use (another daemon) is not "try again
    // soon", nor is the demo's choice of directory.
    let may_be_busy = !matches!(cli.command, Command::Run(_) | Command::Demo(_));
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
            // JSON lines for `run` and `sync` logging JSON.
            output::fail(&format!("error: {}", error_text(&e)));
            if may_be_busy && is_busy(&e) {
                ExitCode::from(EX_BUSY)
            } else {
                ExitCode::FAILURE
            }
        }
    }
}

/// The exit status of a command refused because something else holds
/// what it needs for now: the data directory (another reckon process, a
/// backup holding `reckon.lock`), or, through the daemon, the connector
/// (a run of it in progress). EX_TEMPFAIL: run it again later; a script
/// can tell it from a failure (QA35a L5: all were 1, so a nightly job
/// could not tell "busy" from "failed").
pub const EX_BUSY: u8 = 75;

/// Whether `e` is the store refusing a data directory another process
/// holds.
fn is_busy(e: &anyhow::Error) -> bool {
    e.chain().any(|c| {
        matches!(
            c.downcast_ref::<crate::store::StoreError>(),
            Some(crate::store::StoreError::Locked { .. })
        )
    })
}

/// A command's error as printed: with its causes, except that output this
/// process could not write to stdout is said as such, alone (what the
/// command was doing, running through the daemon's socket say, is not
/// what failed).
pub fn error_text(e: &anyhow::Error) -> String {
    match output::StdoutFailed::find(e) {
        Some(failed) => failed.to_string(),
        None => format!("{e:#}"),
    }
}

/// Whether `cmd`'s only result is what it prints, so that it may stop when
/// nobody reads any more: `records`, `reconcile report` and `kpi` (without
/// `--out`), `statements show|trace`, `plugins list|describe`, `status`. The
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
        Command::Statements(s) => matches!(s, S::Show(_) | S::Trace(_)),
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
            out: Box::new(output::stdout()),
            err: Box::new(output::diagnostics()),
            daemon_store: None,
        }
    }

    /// The process's own stdout and stderr, each dropping what is written
    /// once its reader has gone ([`output::Unread`]); the command opens the
    /// store.
    pub fn terminal_unread() -> Console {
        Console {
            out: Box::new(output::Unread::new(output::stdout())),
            err: Box::new(output::diagnostics()),
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
    let mut out = output::stdout();
    out.write_all(text.as_bytes())?;
    out.flush()
}

pub(crate) fn is_broken_pipe(e: &anyhow::Error) -> bool {
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

    /// `statements --period` is checked on each subcommand (the arg's
    /// `value_parser` in `payout::cli::PeriodArgs`).
    #[test]
    fn every_statements_period_is_checked() {
        for cmd in ["generate", "finalize", "show", "verify"] {
            let parse = |period| {
                super::try_parse_from([
                    "reckon",
                    "statements",
                    cmd,
                    "--program",
                    "p",
                    "--period",
                    period,
                ])
            };
            let e = parse("1969-12").unwrap_err();
            assert_eq!(e.kind(), clap::error::ErrorKind::ValueValidation, "{cmd}");
            assert!(parse("1970-01").is_ok(), "{cmd}");
        }
        // Each kind, by the name's year: 1970-W01 starts on 1969-12-29.
        for ok in [
            "1970-01",
            "1970-01-H1",
            "2026-11-H2",
            "1970-W01",
            "2026-W53",
        ] {
            assert_eq!(super::parse_statement_period(ok), Ok(ok.to_owned()));
        }
        for bad in ["1969-W52", "2026-W54", "2026-11-H3", "2026-1", ""] {
            assert!(super::parse_statement_period(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn json_logs_are_asked_by_run_and_sync_with_the_flag() {
        let asked = |a: &[&str]| {
            let args: Vec<std::ffi::OsString> = a.iter().map(Into::into).collect();
            super::json_logs_asked(&args)
        };
        assert!(asked(&["reckon", "--log-format", "json", "sync", "x"]));
        assert!(asked(&["reckon", "sync", "x", "--log-format=json"]));
        assert!(asked(&[
            "reckon",
            "--config",
            "sync",
            "run",
            "--log-format",
            "json"
        ]));
        assert!(!asked(&["reckon", "sync", "x", "--log-format", "human"]));
        assert!(!asked(&["reckon", "kpi", "--log-format", "json"]));
        assert!(!asked(&["reckon", "sync", "x"]));
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
