//! `reckon run`, and log setup shared by the long-running commands.
use std::path::Path;
use std::process::ExitCode;

/// Arguments of `reckon run`.
#[derive(Debug, clap::Args)]
pub struct RunArgs {}

/// What the default log filters leave out of sled's own log lines (they
/// reach `tracing` through its `log` bridge): `sled::tree` logs only
/// "failed to flush data to disk" as each open tree is dropped, once per
/// tree, after an I/O error reckon has already reported (6+ lines per
/// process after a full disk). sled's other lines (its flusher's first
/// error, damaged config) stay. `RUST_LOG` replaces the default, this too.
const QUIET_SLED: &str = "sled::tree=off";

/// Whether log lines are coloured: only on a terminal, and not when
/// `NO_COLOR` is set to anything but the empty string (no-color.org; QA30-C
/// L2: the log lines ignored it, clap's own errors honour it).
pub fn log_colours() -> bool {
    colours(
        std::io::IsTerminal::is_terminal(&std::io::stderr()),
        std::env::var_os("NO_COLOR"),
    )
}

/// [`log_colours`] for a given terminal and `NO_COLOR`.
fn colours(terminal: bool, no_color: Option<std::ffi::OsString>) -> bool {
    terminal && no_color.is_none_or(|v| v.is_empty())
}

/// Sets up `tracing` (stderr, `RUST_LOG` or `info`). `cli` (from
/// `--log-format`) wins over `config` (`[daemon] log_format`). In JSON,
/// the command's errors are JSON lines too
/// ([`crate::cli::output::errors_as_json`]).
pub fn init_logging(
    cli: Option<crate::config::LogFormat>,
    config: Option<crate::config::LogFormat>,
) {
    use tracing_subscriber::EnvFilter;
    let json = cli.or(config) == Some(crate::config::LogFormat::Json);
    if json {
        crate::cli::output::errors_as_json();
    }
    let filter = EnvFilter::try_from_default_env()
        .unwrap_or_else(|_| EnvFilter::new(format!("info,{QUIET_SLED}")));
    use tracing_subscriber::layer::SubscriberExt as _;
    use tracing_subscriber::util::SubscriberInitExt as _;
    let builder = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_ansi(log_colours())
        .with_writer(crate::cli::output::log_writer)
        // It reports an unwritable line with `eprintln!`, which panics when
        // stderr is gone or full: a line that cannot be written is dropped.
        .log_internal_errors(false);
    // A connector's lines also go to a daemon's client running its sync
    // (`crate::sync::forward`).
    let forward = crate::sync::forward::Layer;
    let _ = if json {
        builder.json().finish().with(forward).try_init()
    } else {
        builder.finish().with(forward).try_init()
    };
}

/// Whether `run` or `sync` logs JSON when the config file `text` (if it
/// could be read) did not load: `--log-format` (`cli`), else the file's
/// `[daemon] log_format` if the TOML itself parses. A file that is not
/// TOML, or cannot be read, gives no format: text.
pub fn json_requested(cli: Option<crate::config::LogFormat>, text: Option<&str>) -> bool {
    match cli {
        Some(format) => format == crate::config::LogFormat::Json,
        None => text
            .and_then(|t| toml_edit::ImDocument::parse(t).ok())
            .is_some_and(|doc| {
                doc.get("daemon")
                    .and_then(|d| d.get("log_format"))
                    .and_then(|f| f.as_str())
                    == Some("json")
            }),
    }
}

/// Log setup of the one-shot commands that open the store (`records`,
/// `reconcile`, `statements`, `kpi`): stderr, `RUST_LOG` or warnings only,
/// except the store's own info lines, so a schema migration at open (which
/// may take seconds per million records) is never silent.
pub fn init_command_logging() {
    use tracing_subscriber::EnvFilter;
    let filter = EnvFilter::try_from_default_env()
        .unwrap_or_else(|_| EnvFilter::new(format!("warn,reckon::store=info,{QUIET_SLED}")));
    let _ = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_ansi(log_colours())
        .with_writer(crate::cli::output::log_writer)
        // It reports an unwritable line with `eprintln!`, which panics when
        // stderr is gone or full: a line that cannot be written is dropped.
        .log_internal_errors(false)
        .try_init();
}

/// Runs the daemon until SIGTERM/SIGINT.
pub fn run(
    config: &Path,
    log_format: Option<crate::config::LogFormat>,
    _args: RunArgs,
) -> anyhow::Result<ExitCode> {
    // Signal handlers first (ops QA32a F1): the default action of a SIGHUP
    // (`systemctl reload` right after `start`) or SIGTERM during the
    // start-up below (plugins loaded, the store opened, perhaps migrated)
    // killed the process without a log line. The runtime's I/O driver
    // delivers them, on its own threads, while the start-up runs.
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()?;
    let mut signals = {
        let _context = rt.enter();
        super::Signals::install()?
    };
    // A SIGTERM or SIGINT during start-up: a clean stop, logged, after the
    // step under way (a store migration is not cut short).
    let stop_now = |signals: &mut super::Signals, before: &str| {
        let signal = signals.stop_requested()?;
        tracing::info!("{signal} during start-up: stopping before {before}; nothing was started");
        Some(ExitCode::SUCCESS)
    };
    // The text too: `/status` compares it with the file later.
    use crate::cli::output::fail;
    let (text, parsed) = super::config_state::read_config(config);
    // Errors in the file: listed as `reckon config check` lists them.
    let refuse = |errors: Vec<crate::config::ConfigError>| {
        let n = errors.len();
        fail(&format!(
            "{}\n{}: {n} error(s); nothing was started",
            crate::config::ConfigErrors(errors),
            config.display()
        ));
        Ok(ExitCode::FAILURE)
    };
    let cfg = match parsed {
        Ok(c) => c,
        Err(e) => {
            if json_requested(log_format, text.as_deref()) {
                crate::cli::output::errors_as_json();
            }
            if text.is_some() {
                return refuse(e.0);
            }
            // The file cannot be read: `error:` as every command's failure
            // starts.
            fail(&format!("error: {e}"));
            return Ok(ExitCode::FAILURE);
        }
    };
    init_logging(log_format, Some(cfg.daemon.log_format));
    if let Some(code) = stop_now(&mut signals, "loading the plugins") {
        return Ok(code);
    }
    // The same resolution as `reckon config check`: run refuses what check rejects.
    let runtime = match super::Runtime::resolve(cfg) {
        Ok(r) => r,
        Err(e) => return refuse(e),
    };
    if let Some(code) = stop_now(&mut signals, "listening and opening the store") {
        return Ok(code);
    }
    // Nothing is created before the listener is bound: a start that cannot
    // listen (the port is taken) must not leave a new empty store behind
    // (ops QA). A daemon already holding the data directory is named first:
    // it is the likelier reason the port is taken.
    let data_dir = &runtime.config.daemon.data_dir;
    if let Err(e) = crate::store::held_by_another_process(data_dir) {
        fail(&format!("error: {e}"));
        return Ok(ExitCode::FAILURE);
    }
    let listener = match super::bind_listener(config, runtime.config.daemon.listen) {
        Ok(l) => l,
        Err(e) => {
            fail(&format!("error: {e}"));
            return Ok(ExitCode::FAILURE);
        }
    };
    if let Some(code) = stop_now(&mut signals, "opening the store") {
        return Ok(code);
    }
    let store = match crate::store::Store::open_with_cache(
        data_dir,
        runtime.config.daemon.store_cache_mb,
    ) {
        Ok(s) => s,
        Err(e) => {
            fail(&format!("error: {e}"));
            return Ok(ExitCode::FAILURE);
        }
    };
    if let Some(code) = stop_now(&mut signals, "running any sync") {
        return Ok(code);
    }
    // A cache larger than the default is filled with what reconciliation
    // reads, on a thread of its own, while the daemon starts and syncs.
    let warming = crate::store::warm::Warming::start(&store, runtime.config.daemon.store_cache_mb);
    let stopped = rt.block_on(super::run_daemon_with_signals(
        config.to_path_buf(),
        runtime,
        store,
        listener,
        text,
        signals,
    ))?;
    // A warm-up still reading stops within 256 keys.
    drop(warming);
    // Sessions stuck in a plugin step are not waited for beyond the grace period.
    rt.shutdown_timeout(std::time::Duration::from_secs(1));
    Ok(match stopped {
        super::Stopped::Signal => ExitCode::SUCCESS,
        super::Stopped::StoreFailed(reason) => {
            fail(&format!(
                "error: {reason}\nthe store refuses every write until reckon restarts; free space (or fix the cause), then start reckon again (exit status {})",
                super::EXIT_STORE_FAILED
            ));
            ExitCode::from(super::EXIT_STORE_FAILED)
        }
    })
}
