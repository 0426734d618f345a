//! `reckon config check`: validate everything and show when connectors fire.
use super::settled::Settled;
use chrono::Utc;
use std::path::Path;
use std::process::ExitCode;

/// `reckon config` subcommands.
#[derive(Debug, clap::Subcommand)]
pub enum ConfigCommand {
    /// Validate the config (syntax, keys, cron, timezones, plugins, settings
    /// against each plugin's schema, secrets, and what finalised statements
    /// settled: payout currency, commission timezone, paid networks in
    /// `claims`) and print each connector's next three fire times in its
    /// timezone. Warns when a rule, override or bonus that a finalised
    /// period used now has other terms. Exit 0 if valid, 1 otherwise.
    Check,
    /// Internal: the settled checks of `config check` over the store, as
    /// JSON (the daemon holding the store runs them for `config check`).
    #[command(hide = true)]
    Settled {
        /// Answer with the terms' findings too (an object, not the array
        /// of refusals an older `config check` reads).
        #[arg(long)]
        terms: bool,
    },
}

/// Runs a config subcommand, writing to `con`.
pub fn run(
    config: &Path,
    cmd: ConfigCommand,
    con: &mut crate::cli::Console,
) -> anyhow::Result<ExitCode> {
    match cmd {
        ConfigCommand::Check => Ok(check(config, &mut con.out, &mut con.err)),
        ConfigCommand::Settled { terms } => super::settled::run_command(config, terms, con),
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
    let loaded = cfg.clone();
    let resolved = crate::schedule::Runtime::resolve(cfg);
    let mut errors = resolved.as_ref().err().cloned().unwrap_or_default();
    // In the same round: what finalised statements settled, which
    // `statements` and the scheduled drafts would refuse (ops QA: found
    // only when drafts were refused). A `data_dir` refused above is not
    // opened.
    let settled = if errors.iter().any(|e| e.path == "daemon.data_dir") {
        None
    } else {
        // The check opens the store without migrating it (an older
        // release must still open it); what sled logs as it opens goes to
        // stderr, as for every command that opens it.
        crate::schedule::cli::init_command_logging();
        Some(super::settled::check(config, &loaded))
    };
    match &settled {
        Some(Settled::Checked { refusals, .. }) => {
            errors.extend(refusals.iter().map(|r| r.to_config_error(&loaded)));
        }
        Some(Settled::Unreadable(why)) => errors.push(loaded.source.error(
            "daemon.data_dir",
            format!(
                "the store cannot be read for the check of what finalised statements settled: {why}"
            ),
        )),
        _ => {}
    }
    if let Some(Settled::Skipped(why)) = &settled {
        let _ = writeln!(
            err,
            "warning: not checked: what finalised statements settled (payout currency, commission timezone, paid networks in `claims`): {why}"
        );
    }
    let runtime = match resolved {
        Ok(r) if errors.is_empty() => r,
        _ => {
            errors.sort_by_key(|e| (e.line.unwrap_or(usize::MAX), e.column.unwrap_or(0)));
            let n = errors.len();
            let _ = writeln!(err, "{}", super::ConfigErrors(errors));
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
    let token = runtime.status_token.is_some();
    if token {
        let _ = writeln!(
            out,
            "/status and /metrics require the bearer token of `[daemon] status_token`"
        );
    }
    if let Some(exposure) = crate::server::listener::public_exposure(cfg.daemon.listen, token) {
        let _ = writeln!(err, "warning: {exposure}");
    }
    // Valid, but a file cut short or emptied looks like this too (QA20
    // R20-3); a SIGHUP refuses one with no programs either.
    if connectors.is_empty() {
        let _ = writeln!(
            err,
            "warning: {} has no [[connectors]]: nothing will be synced (an empty or truncated file?)",
            config.display()
        );
    }
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
        for why in c.plugin.warnings() {
            let _ = writeln!(
                out,
                "  warning: its plugin library {} is {why}",
                c.plugin.path.display()
            );
        }
        // QA44c C-M1: a lookback the platform cannot serve in full.
        if let Some(w) = crate::sync::lookback_warning(c) {
            let _ = writeln!(out, "  warning: {w}");
        }
        if !c.config.enabled {
            let _ = writeln!(out, "  never fires while disabled");
            continue;
        }
        for t in c.config.schedule.next_n(c.timezone, now, 3) {
            let _ = writeln!(out, "  next: {}", local_time(t, c.timezone));
        }
    }
    // What else was read, so ops see it was: endpoints, programs and the
    // schedules of drafts and KPI summaries (the next fire of each).
    if !cfg.postbacks.is_empty() {
        let _ = writeln!(out);
    }
    for p in &cfg.postbacks {
        let auth = match p.auth {
            crate::server::postback::PostbackAuth::Token => "token",
            crate::server::postback::PostbackAuth::Hmac => "hmac",
        };
        let mirrors = match &p.mirrors {
            Some(m) => format!(", mirrors {m}"),
            None => String::new(),
        };
        let _ = writeln!(
            out,
            "postback {} (/postback/{}, auth {auth}{mirrors})",
            p.id, p.id
        );
        if let Some(weak) = crate::server::postback::weak_secret(p) {
            let _ = writeln!(err, "warning: {weak}");
        }
    }
    for p in &cfg.programs {
        let _ = writeln!(
            out,
            "\nprogram {} (claims {}; orders {})",
            p.id,
            p.claims.join(", "),
            p.orders.join(", ")
        );
        // A copy is linked only to claims the program has.
        for pb in cfg.postbacks.iter().filter(|pb| p.claims.contains(&pb.id)) {
            if let Some(m) = pb.mirrors.as_ref().filter(|m| !p.claims.contains(m)) {
                let _ = writeln!(
                    err,
                    "warning: program `{}`: postback `{}` mirrors `{m}`, which is not in its `claims`: its postbacks are judged as claims of their own there; add `{m}` to `claims` to judge them as copies",
                    p.id, pb.id
                );
            }
        }
        let Some(commission) = &p.commission else {
            let _ = writeln!(out, "  no [programs.commission]: no statements");
            continue;
        };
        // A rule an earlier one hides (QA20 R20-8): valid, and dead.
        for (i, j) in crate::payout::rules::unreachable_rules(commission) {
            let (a, b) = (&commission.rules[i].id, &commission.rules[j].id);
            let _ = writeln!(
                err,
                "warning: program `{}`: commission rule `{b}` (rules[{j}]) never prices a claim: rule `{a}` (rules[{i}]) comes before it and matches every claim it would (in force on each of its days, for its event types and partners), and the first rule that matches prices the claim; move `{b}` above `{a}`, narrow `{a}`, or delete `{b}`",
                p.id
            );
        }
        // An override no claim reaches (QA31-A M2): valid, and dead.
        for (j, why) in crate::payout::rules::unreachable_overrides(commission) {
            let _ = writeln!(
                err,
                "warning: program `{}`: {}",
                p.id,
                why.describe(commission, j)
            );
        }
        let commission = commission
            .clone()
            .with_default_timezone(cfg.daemon.timezone.0);
        let tz = commission.tz();
        match commission
            .draft_schedule
            .as_deref()
            .map(|e| (e, e.parse::<super::CronSchedule>()))
        {
            None => {
                let _ = writeln!(out, "  drafts: on demand only (no draft_schedule)");
            }
            Some((expr, schedule)) => {
                let next = schedule
                    .ok()
                    .and_then(|s| s.next_after(tz, now))
                    .map(|t| local_time(t, tz))
                    .unwrap_or_else(|| "never".into());
                let _ = writeln!(
                    out,
                    "  drafts: schedule `{expr}` in {}, next: {next}",
                    tz.name()
                );
            }
        }
    }
    match settled {
        Some(Settled::Checked {
            by_daemon, terms, ..
        }) => {
            for edit in (terms.edits.iter())
                .chain(&terms.unpaid)
                .chain(&terms.unchecked_references)
            {
                let _ = writeln!(err, "warning: {}", crate::display_safe::visible(edit));
            }
            let _ = writeln!(
                out,
                "\nsettled: no change to what finalised statements settled (store in {}{}){}",
                cfg.daemon.data_dir.display(),
                if by_daemon {
                    ", checked by the running daemon"
                } else {
                    ""
                },
                match terms.edits.len() {
                    0 => String::new(),
                    n => format!(
                        "; {n} change(s) to the terms finalised periods were paid under (see the warnings)"
                    ),
                }
            );
            for note in &terms.unrecorded {
                let _ = writeln!(out, "  note: {}", crate::display_safe::visible(note));
            }
        }
        Some(Settled::NoStore) => {
            let _ = writeln!(
                out,
                "\nsettled: no store in {} yet: nothing finalised",
                cfg.daemon.data_dir.display()
            );
        }
        Some(Settled::Skipped(_)) => {
            let _ = writeln!(out, "\nsettled: NOT CHECKED (see the warning)");
        }
        _ => {}
    }
    if let Some(kpi) = &cfg.kpi {
        let s = &kpi.summaries;
        if s.enabled {
            let tz = cfg.daemon.timezone.0;
            let next = crate::kpi::summary::parse_schedule(&s.schedule)
                .ok()
                .and_then(|c| c.next_after(tz, now))
                .map(|t| local_time(t, tz))
                .unwrap_or_else(|| "never".into());
            let _ = writeln!(
                out,
                "\nkpi summaries (schedule `{}` in {}, reporting timezone)\n  next: {next}",
                s.schedule,
                tz.name()
            );
        } else {
            let _ = writeln!(out, "\nkpi summaries: disabled");
        }
    }
    ExitCode::SUCCESS
}

/// `t` on the clock of `tz`, with the zone's abbreviation and offset
/// (`2026-11-28 18:15:00 EST (-05:00)`); the offset once for a zone whose
/// abbreviation is its offset (QA24-B F5: `+0545 (+05:45)` in Kathmandu).
fn local_time(t: chrono::DateTime<Utc>, tz: chrono_tz::Tz) -> String {
    let local = t.with_timezone(&tz);
    if local.format("%Z").to_string().starts_with(['+', '-']) {
        local.format("%Y-%m-%d %H:%M:%S %:z").to_string()
    } else {
        local.format("%Y-%m-%d %H:%M:%S %Z (%:z)").to_string()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_local_time_names_its_zone_and_offset_once() {
        let t: chrono::DateTime<Utc> = "2026-11-28T23:15:00Z".parse().unwrap();
        assert_eq!(
            local_time(t, chrono_tz::America::New_York),
            "2026-11-28 18:15:00 EST (-05:00)"
        );
        assert_eq!(
            local_time(t, chrono_tz::Asia::Kathmandu),
            "2026-11-29 05:00:00 +05:45"
        );
    }
}
