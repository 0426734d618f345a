//! `reckon demo`: the whole product against loopback fakes, in one command.
//!
//! It starts `reckon-fakes` (built beside `reckon` from the `tests` crate),
//! which serves one seeded story from fakes of every platform; writes a config
//! (`config/demo.toml` with the fakes' real addresses) and copies the plugin
//! libraries into the output directory; then runs the same commands an
//! operator would (`config check`, `sync` per connector, a second Google sync
//! after a restated day, `reconcile`, `statements generate|finalize`,
//! `reconcile report`, `kpi`), each as a child `reckon` process with
//! subprocess plugin isolation, logging to `DIR/logs/`. It ends with a
//! summary read back from the store and the statement files.
//!
//! What it is not: a test. The end-to-end test (`tests/tests/demo_e2e.rs`)
//! runs it and checks the totals against the story's own ground truth.

use anyhow::{bail, Context};
use chrono::{Datelike, NaiveDate};
use plugin_api::RecordKind;
use serde::Deserialize;
use std::collections::BTreeMap;
use std::io::{BufRead, BufReader, Write};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, ExitCode, Stdio};
use std::time::Instant;

/// `println!` for the demo's walk-through: a line nobody reads any more
/// (`reckon demo | head`) is dropped and the demo carries on.
macro_rules! say {
    ($($arg:tt)*) => {{
        let _ = writeln!(std::io::stdout(), $($arg)*);
    }};
}

/// Arguments of `reckon demo`.
#[derive(Debug, clap::Args)]
pub struct DemoArgs {
    /// Output directory: new or empty, or an earlier demo's (replaced). A
    /// directory with anything else in it is refused.
    #[arg(long, default_value = "reckon-demo")]
    pub out: PathBuf,
    /// Days of business in the story (1 to 358; the story's syncs reach at
    /// most 365 days back, Everflow's limit).
    #[arg(long, default_value_t = 45, value_parser = clap::value_parser!(u32).range(1..=MAX_DAYS as i64))]
    pub days: u32,
    /// Seed of the story (same seed and end date, same figures: records,
    /// decisions, statements' amounts; run times and hashes differ).
    #[arg(long, default_value_t = 42)]
    pub seed: u64,
    /// Last day of the story, today at the latest (default: 20 days ago, so
    /// every lock date has passed).
    #[arg(long, value_parser = crate::cli::parse_day)]
    pub end: Option<NaiveDate>,
    // The global `--config` and `--log-format` mean nothing here (the demo
    // writes its own config; its commands log to files): these hidden
    // arguments of the same names keep them out of `demo --help`. (They
    // cannot be refused: clap copies the global's default into them.)
    #[arg(long, hide = true)]
    #[doc(hidden)]
    pub config: Option<PathBuf>,
    #[arg(long, hide = true, value_enum)]
    #[doc(hidden)]
    pub log_format: Option<crate::config::LogFormat>,
}

/// Most `--days` of a story: with `--end` today, its syncs (from a week
/// before its first day) reach back [`EVERFLOW_DAYS`] days.
const MAX_DAYS: u32 = EVERFLOW_DAYS - 7;

/// How far back Everflow's reporting API (and its fake) serves: "only the
/// prior 365 days" (reference/connector-apis.md), the shortest reach of the
/// demo's platforms.
const EVERFLOW_DAYS: u32 = 365;

/// The story's last day when `--end` is not given: every lock date
/// (network locks, 7-day return window, 3-day grace) has passed when the
/// demo reconciles. `reckon-fakes` has the same default.
const DEFAULT_END_DAYS_AGO: i64 = 20;

/// Refuses arguments the demo would fail on half way (after starting the
/// fakes and syncing): an `--end` after `today` (the syncs may not pull
/// days that have not happened), and a story whose syncs (from a week
/// before its first day) reach further back than Everflow serves (QA43
/// C-M3: `--days 1000` failed at the Everflow sync; `--days` read "1 to
/// 3650"). (`--days` out of 1..=[`MAX_DAYS`] is refused by the parser.)
pub fn validate(args: &DemoArgs, today: NaiveDate) -> anyhow::Result<()> {
    let days = chrono::Duration::days;
    let end = match args.end {
        Some(end) if end > today => {
            bail!("--end {end} is in the future (today is {today}): the demo syncs the story's days, which must have happened. Give a day up to today, or leave --end out (20 days ago, so every lock date has passed)");
        }
        Some(end) => end,
        None => today - days(DEFAULT_END_DAYS_AGO),
    };
    // The syncs start a week before the story's first day.
    let first_synced = end - days(i64::from(args.days) - 1 + 7);
    // Everflow refuses a start before this instant's day less 365 days.
    let earliest = today - days(i64::from(EVERFLOW_DAYS) - 1);
    if first_synced < earliest {
        let story_start = end - days(i64::from(args.days) - 1);
        let most = (end - earliest).num_days() + 1 - 7;
        let fewer = if most >= 1 {
            format!("give at most {most} --days with this --end, or a later --end")
        } else {
            format!("give an --end from {} on", earliest + days(7))
        };
        bail!(
            "--days {} with --end {end} starts the story on {story_start}, and the demo syncs from a week before it ({first_synced}): more than {EVERFLOW_DAYS} days before today ({today}), further back than Everflow's reporting API serves (the prior {EVERFLOW_DAYS} days); {fewer}",
            args.days
        );
    }
    Ok(())
}

/// The connectors of the demo config, in sync order, with the fake each uses.
const CONNECTORS: [(&str, &str, u16); 8] = [
    ("shopify", "orders", 18081),
    ("impact", "impact", 18082),
    ("everflow", "everflow", 18083),
    ("cake", "cake", 18084),
    ("partnerstack", "partnerstack", 18085),
    ("google_ads", "google_ads", 18086),
    ("meta_ads", "meta_ads", 18087),
    ("tiktok_ads", "tiktok_ads", 18088),
];

/// The demo config template (its addresses are replaced with the fakes').
const DEMO_CONFIG: &str = include_str!("../../../config/demo.toml");

/// Program id in the demo config.
pub const PROGRAM: &str = "northwind";

#[derive(Debug, Deserialize)]
struct FakesReady {
    from: NaiveDate,
    to: NaiveDate,
    urls: BTreeMap<String, String>,
    google: BTreeMap<String, String>,
    meta: BTreeMap<String, String>,
    tiktok: BTreeMap<String, String>,
}

/// Kills the fakes when the demo ends, however it ends.
struct FakesProcess(Child);

impl Drop for FakesProcess {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

/// Marks a directory as the demo's, so a later demo may replace it.
const MARKER: &str = ".reckon-demo";

/// Checks that `out` may be (re)filled: it is new or empty, or an earlier
/// demo's (its marker) that no reckon process is using. Anything else is
/// refused: the demo replaces `data/`, `reckon.toml` and the output
/// directories, and must never do that to a real installation. A
/// directory whose `reckon.toml` is the demo's config without the marker
/// is refused too (QA29-D H1: it was taken for an earlier demo's, but the
/// README has users copy `config/demo.toml` to try their own setup, and
/// the demo wiped that store). Then marks it.
fn make_room(out: &Path) -> anyhow::Result<()> {
    let is_empty = match std::fs::read_dir(out) {
        Ok(mut entries) => entries.next().is_none(),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => true,
        Err(e) => bail!("cannot read {}: {e}", out.display()),
    };
    if !is_empty && !out.join(MARKER).exists() {
        bail!(
            "{} is not empty and is not an earlier demo's output (it has no {MARKER} file): the demo replaces its data, config and statements, so it only writes into a new or empty directory or one it made. Choose another --out (a directory made by a demo from before 2026-11-29 has no marker either: delete it yourself if it holds nothing you need)",
            out.display()
        );
    }
    if out.join("data").exists() {
        // A daemon (or a command) on the demo's store holds its lock.
        crate::store::Store::open(&out.join("data")).map_err(|e| {
            anyhow::anyhow!(
                "{}: {e} (or choose another --out), then run the demo again",
                out.display()
            )
        })?;
    }
    std::fs::create_dir_all(out).with_context(|| format!("cannot create {}", out.display()))?;
    std::fs::write(
        out.join(MARKER),
        "Written by `reckon demo`: a later demo may replace this directory.\n",
    )
    .with_context(|| format!("cannot write {}", out.join(MARKER).display()))?;
    Ok(())
}

/// Runs the demo.
pub fn run(args: DemoArgs) -> anyhow::Result<ExitCode> {
    validate(&args, chrono::Utc::now().date_naive())?;
    let started = Instant::now();
    let exe = std::env::current_exe().context("cannot find the reckon executable")?;
    let bin_dir = exe
        .parent()
        .context("reckon executable has no directory")?
        .to_path_buf();
    let fakes_bin = bin_dir.join(format!("reckon-fakes{}", std::env::consts::EXE_SUFFIX));
    if !fakes_bin.exists() {
        bail!(
            "{} not found: build the whole workspace first (`cargo build --release --workspace`)",
            fakes_bin.display()
        );
    }
    let out = &args.out;
    make_room(out)?;
    if out.join("data").exists() {
        std::fs::remove_dir_all(out.join("data"))
            .with_context(|| format!("cannot clear {}", out.display()))?;
    }
    for sub in ["statements", "reports", "kpi", "logs", "plugins"] {
        let p = out.join(sub);
        if p.exists() {
            std::fs::remove_dir_all(&p).with_context(|| format!("cannot clear {}", p.display()))?;
        }
        std::fs::create_dir_all(&p).with_context(|| format!("cannot create {}", p.display()))?;
    }
    // The plugins the demo uses, copied from beside the reckon binary.
    for (_, plugin, _) in CONNECTORS {
        let name = format!(
            "{}reckon_plugin_{plugin}{}",
            std::env::consts::DLL_PREFIX,
            std::env::consts::DLL_SUFFIX
        );
        let src = bin_dir.join(&name);
        if !src.exists() {
            bail!(
                "plugin library {} not found: build the whole workspace first",
                src.display()
            );
        }
        std::fs::copy(&src, out.join("plugins").join(&name))
            .with_context(|| format!("cannot copy {}", src.display()))?;
    }

    // The fakes.
    let mut cmd = Command::new(&fakes_bin);
    cmd.args([
        "--seed",
        &args.seed.to_string(),
        "--days",
        &args.days.to_string(),
        // The restatement's confirmation on stdout, where it is read below
        // (by default it goes to stderr, for a person).
        "--confirm-on-stdout",
    ]);
    if let Some(end) = args.end {
        cmd.args(["--end", &end.to_string()]);
    }
    let mut child = FakesProcess(
        cmd.stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::inherit())
            .spawn()
            .with_context(|| format!("cannot start {}", fakes_bin.display()))?,
    );
    let mut line = String::new();
    let mut fakes_out = BufReader::new(child.0.stdout.take().context("fakes stdout")?);
    fakes_out
        .read_line(&mut line)
        .context("reading the fakes' addresses")?;
    let ready: FakesReady =
        serde_json::from_str(&line).with_context(|| format!("reckon-fakes said {line:?}"))?;
    say!(
        "Reckon demo: Northwind Outfitters, {} to {} (seed {}), fakes of 8 platforms on loopback.",
        ready.from,
        ready.to,
        args.seed
    );

    // The config.
    let mut config = DEMO_CONFIG.to_owned();
    for (id, _, port) in CONNECTORS {
        let url = ready
            .urls
            .get(id)
            .with_context(|| format!("no fake for {id}"))?;
        config = config.replace(&format!("http://127.0.0.1:{port}"), url);
    }
    config = config
        .replace(
            "customer_id = \"1234567890\"",
            &format!("customer_id = \"{}\"", ready.google["customer_id"]),
        )
        .replace(
            "act_1234567890",
            &format!("act_{}", ready.meta["ad_account_id"]),
        )
        .replace("7012345678901234567", &ready.tiktok["advertiser_id"]);
    let config_path = out.join("reckon.toml");
    std::fs::write(&config_path, config)
        .with_context(|| format!("cannot write {}", config_path.display()))?;
    let env: Vec<(&str, String)> = vec![
        ("RECKON_DEMO_SHOPIFY_TOKEN", "shpat_demo_token".into()),
        ("RECKON_DEMO_IMPACT_TOKEN", "demo-impact-token".into()),
        ("RECKON_DEMO_EVERFLOW_KEY", "demo-everflow-key".into()),
        ("RECKON_DEMO_CAKE_KEY", "demo-cake-key".into()),
        ("RECKON_DEMO_PARTNERSTACK_PUBLIC", "pk_demo".into()),
        ("RECKON_DEMO_PARTNERSTACK_PRIVATE", "sk_demo".into()),
        (
            "RECKON_DEMO_GOOGLE_DEVELOPER_TOKEN",
            ready.google["developer_token"].clone(),
        ),
        (
            "RECKON_DEMO_GOOGLE_CLIENT_ID",
            ready.google["client_id"].clone(),
        ),
        (
            "RECKON_DEMO_GOOGLE_CLIENT_SECRET",
            ready.google["client_secret"].clone(),
        ),
        (
            "RECKON_DEMO_GOOGLE_REFRESH_TOKEN",
            ready.google["refresh_token"].clone(),
        ),
        ("RECKON_DEMO_META_TOKEN", ready.meta["access_token"].clone()),
        (
            "RECKON_DEMO_TIKTOK_TOKEN",
            ready.tiktok["access_token"].clone(),
        ),
    ];
    let step = |name: &str, argv: &[&str]| -> anyhow::Result<()> {
        let log = out.join("logs").join(format!("{name}.log"));
        let file = std::fs::File::create(&log)
            .with_context(|| format!("cannot create {}", log.display()))?;
        let t = Instant::now();
        let status = Command::new(&exe)
            .arg("--config")
            .arg(&config_path)
            .args(argv)
            .envs(env.iter().map(|(k, v)| (*k, v.as_str())))
            .stdin(Stdio::null())
            .stdout(file.try_clone()?)
            .stderr(file)
            .status()
            .with_context(|| format!("cannot run reckon {}", argv.join(" ")))?;
        say!(
            "  {:<44} {:>6} ms  {}",
            format!("reckon {}", argv.join(" ")),
            t.elapsed().as_millis(),
            if status.success() { "ok" } else { "FAILED" }
        );
        if !status.success() {
            bail!("`reckon {}` failed; see {}", argv.join(" "), log.display());
        }
        Ok(())
    };

    // Pull a week past the story's last day: refunds and status changes land
    // after the sale (the shop's orders are pulled by their update time).
    let today = chrono::Utc::now().date_naive();
    // Also a few days before its first day: a network may date a claim
    // before the sale it claims (an earlier click).
    let (from, to) = (
        (ready.from - chrono::Duration::days(7)).to_string(),
        (ready.to + chrono::Duration::days(7))
            .min(today)
            .to_string(),
    );
    step("config-check", &["config", "check"])?;
    for (id, _, _) in CONNECTORS {
        step(
            &format!("sync-{id}"),
            &["sync", id, "--from", &from, "--to", &to],
        )?;
    }
    // Google restates a day; the next scheduled-style sync re-pulls its lookback.
    if let Some(stdin) = child.0.stdin.as_mut() {
        writeln!(stdin, "restate google_ads").context("asking the fakes to restate a day")?;
        stdin.flush().ok();
        let mut ack = String::new();
        fakes_out
            .read_line(&mut ack)
            .context("waiting for the restatement")?;
        say!(
            "  (google_ads restated {})",
            ack.trim().trim_start_matches("restated ")
        );
    }
    step(
        "sync-google_ads-again",
        &["sync", "google_ads", "--from", &from, "--to", &to],
    )?;
    step("reconcile", &["reconcile"])?;
    let months = months(ready.from, ready.to);
    for (i, month) in months.iter().enumerate() {
        step(
            &format!("statements-generate-{month}"),
            &[
                "statements",
                "generate",
                "--program",
                PROGRAM,
                "--period",
                month,
            ],
        )?;
        if i + 1 < months.len() {
            step(
                &format!("statements-finalize-{month}"),
                &[
                    "statements",
                    "finalize",
                    "--program",
                    PROGRAM,
                    "--period",
                    month,
                ],
            )?;
        }
        for fmt in ["html", "csv", "json"] {
            let file = out
                .join("reports")
                .join(format!("discrepancies-{month}.{fmt}"));
            let file = file.to_string_lossy();
            step(
                &format!("report-{month}-{fmt}"),
                &[
                    "reconcile",
                    "report",
                    "--program",
                    PROGRAM,
                    "--period",
                    month,
                    "--format",
                    fmt,
                    "--out",
                    &file,
                ],
            )?;
        }
    }
    let period = format!("{}..{}", ready.from, ready.to);
    for (by, fmt) in [
        ("channel", "html"),
        ("channel", "csv"),
        ("source,campaign", "csv"),
        ("day", "json"),
        ("partner", "csv"),
    ] {
        let file = out
            .join("kpi")
            .join(format!("kpi-by-{}.{fmt}", by.replace(',', "-")));
        let file = file.to_string_lossy();
        step(
            &format!("kpi-{}-{fmt}", by.replace(',', "-")),
            &[
                "kpi", "--period", &period, "--by", by, "--view", "both", "--format", fmt, "--out",
                &file,
            ],
        )?;
    }
    drop(child);
    summary(out, &months, started)?;
    Ok(ExitCode::SUCCESS)
}

/// `YYYY-MM` of every month touched by `from..=to`.
fn months(from: NaiveDate, to: NaiveDate) -> Vec<String> {
    let mut out = Vec::new();
    let mut d = from.with_day(1).unwrap_or(from);
    while d <= to {
        out.push(format!("{:04}-{:02}", d.year(), d.month()));
        d = if d.month() == 12 {
            NaiveDate::from_ymd_opt(d.year() + 1, 1, 1)
        } else {
            NaiveDate::from_ymd_opt(d.year(), d.month() + 1, 1)
        }
        .unwrap_or(to + chrono::Duration::days(1));
    }
    out
}

fn summary(out: &Path, months: &[String], started: Instant) -> anyhow::Result<()> {
    let store = crate::store::Store::open(&out.join("data"))?;
    say!("\nSynced (records stored per source):");
    for kind in [RecordKind::Order, RecordKind::Conversion, RecordKind::Spend] {
        let mut per: BTreeMap<String, u64> = BTreeMap::new();
        for r in store.scan_records(kind, None) {
            *per.entry(r?.record.source().to_owned()).or_default() += 1;
        }
        let list: Vec<String> = per.iter().map(|(s, n)| format!("{s} {n}")).collect();
        say!("  {:<12} {}", kind.as_str(), list.join(", "));
    }
    let decisions = crate::reconcile::load_decisions(&store, PROGRAM)?;
    let mut outcomes: BTreeMap<&str, u64> = BTreeMap::new();
    for d in &decisions {
        *outcomes.entry(d.outcome.as_str()).or_default() += 1;
    }
    let payable = decisions.iter().filter(|d| d.payable).count();
    say!(
        "\nReconciled {} claims ({payable} payable):",
        decisions.len()
    );
    let list: Vec<String> = outcomes.iter().map(|(o, n)| format!("{o} {n}")).collect();
    say!("  {}", list.join(", "));
    say!("\nFiles:");
    for m in months {
        say!(
            "  {}",
            out.join("statements")
                .join(PROGRAM)
                .join(m)
                .join("summary.csv")
                .display()
        );
        say!(
            "  {}",
            out.join("reports")
                .join(format!("discrepancies-{m}.html"))
                .display()
        );
    }
    say!(
        "  {}",
        out.join("kpi").join("kpi-by-channel.html").display()
    );
    say!(
        "\nOpen {} (KPIs) and a partner's statement under {} in a browser. Done in {:.1?}.",
        out.join("kpi").join("kpi-by-channel.html").display(),
        out.join("statements").join(PROGRAM).display(),
        started.elapsed()
    );
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use clap::Parser as _;

    fn parse(argv: &[&str]) -> Result<DemoArgs, clap::Error> {
        let cli = crate::cli::Cli::try_parse_from(["reckon", "demo"].iter().chain(argv))?;
        match cli.command {
            crate::cli::Command::Demo(a) => Ok(a),
            other => panic!("parsed {other:?}"),
        }
    }

    fn day(s: &str) -> NaiveDate {
        s.parse().unwrap()
    }

    // QA6 F13: `--end` in the future failed at the first sync, after the
    // fakes had started.
    #[test]
    fn an_end_in_the_future_is_refused_up_front() {
        let a = parse(&["--end", "2099-01-01", "--days", "2"]).unwrap();
        let e = validate(&a, day("2026-11-20")).unwrap_err().to_string();
        assert!(
            e.contains("--end 2099-01-01 is in the future (today is 2026-11-20)"),
            "{e}"
        );
        let a = parse(&["--end", "2026-11-20"]).unwrap();
        validate(&a, day("2026-11-20")).unwrap();
    }

    // QA43 C-M3: `--days 1000` failed half way, at the Everflow sync (its
    // API serves the prior 365 days); the demo syncs from a week before
    // the story's first day.
    #[test]
    fn a_story_further_back_than_everflow_serves_is_refused_up_front() {
        let today = day("2026-11-20");
        // With `--end` today: 358 days reach back to 365 days ago.
        let a = parse(&["--end", "2026-11-20", "--days", "358"]).unwrap();
        validate(&a, today).unwrap();
        assert!(parse(&["--days", "359"]).is_err());
        // With the default end (20 days ago): 338.
        validate(&parse(&["--days", "338"]).unwrap(), today).unwrap();
        let e = validate(&parse(&["--days", "339"]).unwrap(), today)
            .unwrap_err()
            .to_string();
        assert!(
            e.contains("--days 339 with --end 2026-10-31 starts the story on 2025-11-27")
                && e.contains("(2025-11-20): more than 365 days before today (2026-11-20)")
                && e.ends_with("give at most 338 --days with this --end, or a later --end"),
            "{e}"
        );
        // An end so far back that no story fits.
        let a = parse(&["--end", "2025-11-25", "--days", "1"]).unwrap();
        let e = validate(&a, today).unwrap_err().to_string();
        assert!(e.ends_with("give an --end from 2025-11-28 on"), "{e}");
        validate(
            &parse(&["--end", "2025-11-28", "--days", "1"]).unwrap(),
            today,
        )
        .unwrap();
    }

    // QA6 F13: `--days 0` ran the whole demo on an empty story.
    #[test]
    fn days_must_be_between_1_and_358() {
        let e = parse(&["--days", "0"]).unwrap_err().to_string();
        assert!(e.contains("--days") && e.contains("1..=358"), "{e}");
        assert!(parse(&["--days", "359"]).is_err());
        assert_eq!(parse(&["--days", "1"]).unwrap().days, 1);
    }

    // QA6 F13: `demo --help` listed `--config` and `--log-format`, which
    // the demo does not use.
    #[test]
    fn help_lists_only_the_demos_options() {
        let help = parse(&["--help"]).unwrap_err();
        assert_eq!(help.kind(), clap::error::ErrorKind::DisplayHelp);
        let help = help.to_string();
        assert!(help.contains("--out") && help.contains("--days"), "{help}");
        assert!(
            !help.contains("--config") && !help.contains("--log-format"),
            "{help}"
        );
        // Still accepted (and unused) where they were before.
        let a = parse(&["--config", "x.toml"]).unwrap();
        validate(&a, day("2026-11-20")).unwrap();
        let top = crate::cli::Cli::try_parse_from(["reckon", "--log-format", "json", "demo"]);
        assert!(top.is_ok());
    }
}
