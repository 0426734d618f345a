//! `reckon config check`: validate everything and show when connectors fire.
use chrono::Utc;
use std::path::Path;
use std::process::ExitCode;

/// `reckon config` subcommands.
#[derive(Debug, clap::Subcommand)]
pub enum ConfigCommand {
    /// Validate the config (syntax, keys, cron, timezones, plugins, settings
    /// against each plugin's schema, secrets) and print each connector's next
    /// three fire times in its timezone. Exit 0 if valid, 1 otherwise.
    Check,
}

/// Runs a config subcommand.
pub fn run(config: &Path, cmd: ConfigCommand) -> anyhow::Result<ExitCode> {
    match cmd {
        ConfigCommand::Check => Ok(check(
            config,
            &mut std::io::stdout(),
            &mut std::io::stderr(),
        )),
    }
}

/// `reckon config check`, writing the report to `out` and errors to `err`.
pub fn check(
    config: &Path,
    out: &mut dyn std::io::Write,
    err: &mut dyn std::io::Write,
) -> ExitCode {
    let cfg = match super::load(config) {
        Ok(c) => c,
        Err(e) => {
            let _ = writeln!(err, "{e}");
            let _ = writeln!(
                err,
                "{}: {} error(s); nothing was started",
                config.display(),
                e.0.len()
            );
            return ExitCode::FAILURE;
        }
    };
    // The same resolution as `reckon run` and SIGHUP (connectors and
    // postback endpoints): what passes here, the daemon runs.
    let runtime = match crate::schedule::Runtime::resolve(cfg) {
        Ok(r) => r,
        Err(e) => {
            let n = e.len();
            let _ = writeln!(err, "{}", super::ConfigErrors(e));
            let _ = writeln!(
                err,
                "{}: {n} error(s); nothing was started",
                config.display()
            );
            return ExitCode::FAILURE;
        }
    };
    let (cfg, connectors) = (&runtime.config, &runtime.connectors);
    let _ = writeln!(
        out,
        "{}: ok ({} connector(s); data_dir {}, plugin_dir {}, listen {}, reporting timezone {})",
        config.display(),
        connectors.len(),
        cfg.daemon.data_dir.display(),
        cfg.daemon.plugin_dir.display(),
        cfg.daemon.listen,
        cfg.daemon.timezone
    );
    let now = Utc::now();
    for c in connectors {
        let m = &c.plugin.manifest;
        let _ = writeln!(
            out,
            "\n{} (plugin {} {}, schedule `{}` in {}, lookback {} days{})",
            c.config.id,
            m.id,
            m.version,
            c.config.schedule.expr,
            c.timezone.name(),
            c.lookback_days,
            if c.config.enabled { "" } else { ", DISABLED" }
        );
        if !c.config.enabled {
            let _ = writeln!(out, "  never fires while disabled");
            continue;
        }
        for t in c.config.schedule.next_n(c.timezone, now, 3) {
            let _ = writeln!(
                out,
                "  next: {}",
                t.with_timezone(&c.timezone)
                    .format("%Y-%m-%d %H:%M:%S %Z (%:z)")
            );
        }
    }
    ExitCode::SUCCESS
}
