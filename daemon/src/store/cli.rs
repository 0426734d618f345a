//! `reckon records export|history`: what is stored, as JSON lines or CSV;
//! `reckon records checkpoints`: a connector's checkpoints, shown or reset.
//!
//! Opens the store itself, or, while `reckon run` holds it, is run by the
//! daemon with its store (`cli::remote`).
use super::{Store, Stored};
use chrono::NaiveDate;
use plugin_api::protocol::{Record, RecordKind};
use serde_json::{json, Value};
use std::collections::{BTreeMap, BTreeSet};
use std::io::Write;
use std::path::Path;
use std::process::ExitCode;

/// Record kinds on the command line.
#[derive(Debug, Clone, Copy, clap::ValueEnum)]
pub enum KindArg {
    /// Ad spend.
    Spend,
    /// Affiliate claims.
    Conversions,
    /// Advertiser orders.
    Orders,
}

impl From<KindArg> for RecordKind {
    fn from(k: KindArg) -> Self {
        match k {
            KindArg::Spend => RecordKind::Spend,
            KindArg::Conversions => RecordKind::Conversion,
            KindArg::Orders => RecordKind::Order,
        }
    }
}

/// Output formats.
#[derive(Debug, Clone, Copy, clap::ValueEnum)]
pub enum FormatArg {
    /// One JSON object per line.
    Jsonl,
    /// CSV with a header; nested fields flattened with `.`.
    Csv,
}

/// `reckon records` subcommands.
#[derive(Debug, clap::Subcommand)]
pub enum RecordsCommand {
    /// Export stored records (current revision) in key order.
    Export {
        /// Which records.
        #[arg(long, value_enum)]
        kind: KindArg,
        /// Only this connector (or postback endpoint) id; it must be in the config.
        #[arg(long)]
        source: Option<String>,
        /// Only records on or after this day (spend: its day; conversions:
        /// occurred date, UTC; orders: created date, UTC).
        #[arg(long, value_parser = crate::cli::parse_day)]
        from: Option<NaiveDate>,
        /// Only records on or before this day.
        #[arg(long, value_parser = crate::cli::parse_day)]
        to: Option<NaiveDate>,
        /// Output format.
        #[arg(long, value_enum, default_value = "jsonl")]
        format: FormatArg,
    },
    /// Every revision of one record, oldest first, each with the time it
    /// was current from and to: what a statement line's `trace` (claim or
    /// order revision) refers to.
    History {
        /// Which records.
        #[arg(long, value_enum)]
        kind: KindArg,
        /// The connector (or postback endpoint) id.
        #[arg(long)]
        source: String,
        /// The record's key: a claim's external id, an order's id, a spend
        /// row's `account/day/campaign/ad_group/ad` key (`-` for none, e.g.
        /// `1234567890/2026-11-08/20000000000/30000000000/-`), as `records
        /// export` shows it in `key`.
        #[arg(long)]
        key: String,
        /// Output format.
        #[arg(long, value_enum, default_value = "jsonl")]
        format: FormatArg,
    },
    /// A connector's stored checkpoints (per stream: the watermark, how far
    /// its data was read, and the plugin's state), and with `--reset` a way
    /// out of a bad one: the checkpoint is deleted, the records are kept,
    /// and the next run of the connector starts as its first (re-pulled
    /// records are upserts: nothing is duplicated).
    Checkpoints {
        /// The connector id.
        #[arg(long)]
        source: String,
        /// Delete the checkpoint(s) instead of showing them.
        #[arg(long)]
        reset: bool,
        /// Only this stream (with `--reset`; default: every stream).
        #[arg(long, requires = "reset")]
        stream: Option<String>,
    },
}

/// The revisions of one record as rows (`revision`, `current_from`,
/// `current_to`, empty for the current one, then the record), oldest
/// first; `None` if no such record is stored.
pub fn history_values(
    store: &Store,
    kind: RecordKind,
    source: &str,
    key: &str,
) -> anyhow::Result<Option<Vec<Value>>> {
    let Some(current) = store.get_record(kind, source, key)? else {
        return Ok(None);
    };
    let mut rows = Vec::new();
    let mut from = current.first_seen;
    for old in store.revisions(kind, source, key)? {
        rows.push(json!({
            "source": source,
            "key": key,
            "revision": old.revision,
            "current_from": from,
            "current_to": old.superseded_at,
            "record": old.record,
        }));
        from = old.superseded_at;
    }
    rows.push(json!({
        "source": source,
        "key": key,
        "revision": current.revision,
        "current_from": current.changed_at,
        "current_to": Value::Null,
        "record": current.record,
    }));
    Ok(Some(rows))
}

fn write_rows(
    rows: &[Value],
    first: &[&str],
    format: FormatArg,
    out: &mut dyn Write,
) -> anyhow::Result<()> {
    match format {
        FormatArg::Jsonl => {
            for v in rows {
                writeln!(out, "{v}")?;
            }
        }
        FormatArg::Csv => {
            let flat: Vec<BTreeMap<String, String>> = rows.iter().map(flat_row).collect();
            let header = csv_header(flat.iter().flat_map(|r| r.keys().cloned()).collect(), first);
            let mut w = csv::Writer::from_writer(out);
            w.write_record(&header)?;
            for r in &flat {
                write_flat(&mut w, &header, r)?;
            }
            w.flush()?;
        }
    }
    Ok(())
}

/// A row's fields by dotted path ([`flatten`]).
fn flat_row(v: &Value) -> BTreeMap<String, String> {
    let mut m = BTreeMap::new();
    flatten("", v, &mut m);
    m
}

/// The CSV header over the rows' dotted paths: bookkeeping (`first`)
/// first, then record fields. A field that is null in one record and an
/// object in another (`record.commission`) is its object's columns only.
fn csv_header(paths: BTreeSet<String>, first: &[&str]) -> Vec<String> {
    let objects: BTreeSet<&str> = paths
        .iter()
        .filter_map(|h| h.rsplit_once('.').map(|(parent, _)| parent))
        .collect();
    let rest = paths
        .iter()
        .filter(|h| !first.contains(&h.as_str()) && !objects.contains(h.as_str()));
    first
        .iter()
        .map(|s| s.to_string())
        .chain(rest.cloned())
        .collect()
}

fn write_flat<W: Write>(
    w: &mut csv::Writer<W>,
    header: &[String],
    row: &BTreeMap<String, String>,
) -> csv::Result<()> {
    w.write_record(
        header
            .iter()
            .map(|h| row.get(h).map(String::as_str).unwrap_or("")),
    )
}

/// The day a record belongs to for `--from/--to`.
pub fn record_day(r: &Record) -> NaiveDate {
    match r {
        Record::Spend(s) => s.day,
        Record::Conversion(c) => c.occurred_at.date_naive(),
        Record::Order(o) => o.created_at.date_naive(),
    }
}

/// One exported row: bookkeeping fields plus the record.
pub fn export_value(s: &Stored) -> Value {
    json!({
        "source": s.record.source(),
        "key": s.record.key(),
        "revision": s.revision,
        "first_seen": s.first_seen,
        "changed_at": s.changed_at,
        "record": s.record,
    })
}

fn flatten(prefix: &str, v: &Value, out: &mut BTreeMap<String, String>) {
    match v {
        Value::Object(m) => {
            for (k, v) in m {
                let p = if prefix.is_empty() {
                    k.clone()
                } else {
                    format!("{prefix}.{k}")
                };
                flatten(&p, v, out);
            }
        }
        Value::Null => {
            out.insert(prefix.to_owned(), String::new());
        }
        // Text from the platforms (names, ids) could run as a formula where
        // the CSV is opened; amounts are decimal strings and stay numbers.
        Value::String(s) if s.parse::<rust_decimal::Decimal>().is_ok() => {
            out.insert(prefix.to_owned(), s.clone());
        }
        Value::String(s) => {
            out.insert(prefix.to_owned(), crate::payout::render::text_cell(s, true));
        }
        Value::Array(_) => {
            out.insert(prefix.to_owned(), v.to_string());
        }
        other => {
            out.insert(prefix.to_owned(), other.to_string());
        }
    }
}

/// Writes the selected records.
pub fn export(
    store: &Store,
    kind: RecordKind,
    source: Option<&str>,
    from: Option<NaiveDate>,
    to: Option<NaiveDate>,
    format: FormatArg,
    out: &mut dyn Write,
) -> anyhow::Result<u64> {
    let selected = |s: &Stored| {
        let day = record_day(&s.record);
        !(from.is_some_and(|f| day < f) || to.is_some_and(|t| day > t))
    };
    let mut n = 0u64;
    match format {
        // Streamed: an export may hold millions of records.
        FormatArg::Jsonl => {
            for s in store.scan_records(kind, source) {
                let s = s?;
                if selected(&s) {
                    n += 1;
                    writeln!(out, "{}", export_value(&s))?;
                }
            }
        }
        // Two passes, so that memory holds the header, not the records
        // (QA: 2.9 GB for 300k conversions): the columns are every path
        // some record has, then the rows.
        FormatArg::Csv => {
            let mut paths = BTreeSet::new();
            for s in store.scan_records(kind, source) {
                let s = s?;
                if selected(&s) {
                    paths.extend(flat_row(&export_value(&s)).into_keys());
                }
            }
            let header = csv_header(
                paths.clone(),
                &["source", "key", "revision", "first_seen", "changed_at"],
            );
            let mut w = csv::Writer::from_writer(out);
            w.write_record(&header)?;
            let mut left_out = 0u64;
            for s in store.scan_records(kind, source) {
                let s = s?;
                if !selected(&s) {
                    continue;
                }
                n += 1;
                let row = flat_row(&export_value(&s));
                left_out += row.keys().filter(|k| !paths.contains(*k)).count() as u64;
                write_flat(&mut w, &header, &row)?;
            }
            w.flush()?;
            if left_out > 0 {
                tracing::warn!(
                    cells = left_out,
                    "records stored during the export have fields no column of it has; those cells are left out (export again for them)"
                );
            }
        }
    }
    Ok(n)
}

/// Runs a records subcommand.
pub fn run(
    config: &Path,
    cmd: RecordsCommand,
    con: &mut crate::cli::Console,
) -> anyhow::Result<ExitCode> {
    let cfg = crate::config::load(config).map_err(|e| anyhow::anyhow!("{e}"))?;
    match cmd {
        RecordsCommand::Export {
            kind,
            source,
            from,
            to,
            format,
        } => {
            // `--from` after `--to` is a usage error: `crate::cli::contradiction`.
            let store = con.existing_store(&cfg.daemon.data_dir)?;
            if let Some((s, why)) = source
                .as_deref()
                .and_then(|s| unknown_source(&cfg, config, s).map(|why| (s, why)))
            {
                // A connector taken out of the config keeps its records:
                // they are exported (QA29-A L1: refused, with no way to
                // get them).
                if store.count_records(kind.into(), Some(s)) == 0 {
                    anyhow::bail!("{why}");
                }
                writeln!(
                    con.err,
                    "note: `{s}` is not a connector or postback endpoint in {} any more; exporting the records stored from it",
                    config.display()
                )?;
            }
            let mut out = std::io::BufWriter::with_capacity(64 * 1024, &mut con.out);
            let n = export(
                &store,
                kind.into(),
                source.as_deref(),
                from,
                to,
                format,
                &mut out,
            )?;
            out.flush()?;
            drop(out);
            writeln!(con.err, "{n} record(s) exported")?;
            Ok(ExitCode::SUCCESS)
        }
        RecordsCommand::Checkpoints {
            source,
            reset,
            stream,
        } => {
            let Some(connector) = cfg.connectors.iter().find(|c| c.id == source) else {
                let known: Vec<&str> = cfg.connectors.iter().map(|c| c.id.as_str()).collect();
                anyhow::bail!("{}", not_configured(&source, &known, "a connector", config));
            };
            let store = con.existing_store(&cfg.daemon.data_dir)?;
            checkpoints(&store, &connector.id, reset, stream.as_deref(), con)
        }
        RecordsCommand::History {
            kind,
            source,
            key,
            format,
        } => {
            let store = con.existing_store(&cfg.daemon.data_dir)?;
            let kind: RecordKind = kind.into();
            let Some(rows) = history_values(&store, kind, &source, &key)? else {
                // A source no longer configured keeps its records (they are
                // looked up all the same), but export cannot list its keys
                // (QA29-D L2: the advice named a command that failed).
                if let Some(why) = unknown_source(&cfg, config, &source) {
                    anyhow::bail!(
                        "no {} record `{key}` from `{source}` is stored, and {why}",
                        kind.as_str()
                    );
                }
                anyhow::bail!(
                    "no {} record `{key}` from `{source}` is stored; `reckon records export --kind {} --source {source}` lists the keys",
                    kind.as_str(),
                    kind.as_str()
                );
            };
            let first = ["source", "key", "revision", "current_from", "current_to"];
            write_rows(&rows, &first, format, &mut con.out)?;
            writeln!(con.err, "{} revision(s)", rows.len())?;
            Ok(ExitCode::SUCCESS)
        }
    }
}

/// Why `source` names nothing in the config at `config`: not a connector
/// nor a postback endpoint, with the nearest id and the configured ones.
fn unknown_source(
    cfg: &crate::config::Config,
    config: &std::path::Path,
    source: &str,
) -> Option<String> {
    let known: Vec<&str> = cfg
        .connectors
        .iter()
        .map(|c| c.id.as_str())
        .chain(cfg.postbacks.iter().map(|p| p.id.as_str()))
        .collect();
    (!known.contains(&source))
        .then(|| not_configured(source, &known, "a connector or postback endpoint", config))
}

/// "--source `x` is not `what` in <config>; did you mean `y`? (configured:
/// ...)".
fn not_configured(source: &str, known: &[&str], what: &str, config: &std::path::Path) -> String {
    let hint = crate::config::source::nearest(source, known.iter().copied())
        .map(|n| format!("; did you mean `{n}`?"))
        .unwrap_or_default();
    format!(
        "--source `{source}` is not {what} in {}{hint} (configured: {})",
        config.display(),
        if known.is_empty() {
            "none".to_owned()
        } else {
            known.join(", ")
        }
    )
}

/// `reckon records checkpoints`: shows a connector's checkpoints, or
/// deletes them (`reset`, one `stream` or all).
fn checkpoints(
    store: &Store,
    source: &str,
    reset: bool,
    stream: Option<&str>,
    con: &mut crate::cli::Console,
) -> anyhow::Result<ExitCode> {
    let stored = store.checkpoints(source)?;
    // A watermark the host would refuse today (stored before it checked):
    // the later of now and today's end, plus the slack.
    let now = chrono::Utc::now();
    let latest = now
        + chrono::Duration::days(1)
        + chrono::Duration::hours(plugin_api::validate::WATERMARK_SLACK_HOURS);
    if !reset {
        for cp in stored.values() {
            let future = if cp.watermark > latest {
                " (in the future: no run moves past it; `--reset` clears it)"
            } else {
                ""
            };
            writeln!(
                con.out,
                "{}: watermark {}{future}; state {}",
                cp.stream,
                cp.watermark.to_rfc3339(),
                cp.state
            )?;
        }
        writeln!(
            con.err,
            "{} checkpoint(s) of connector `{source}`",
            stored.len()
        )?;
        return Ok(ExitCode::SUCCESS);
    }
    if let Some(s) = stream {
        if !stored.contains_key(s) {
            anyhow::bail!(
                "connector `{source}` has no stored checkpoint for stream `{s}` (stored: {})",
                if stored.is_empty() {
                    "none".to_owned()
                } else {
                    stored
                        .keys()
                        .map(|k| format!("`{k}`"))
                        .collect::<Vec<_>>()
                        .join(", ")
                }
            );
        }
    }
    let n = store.reset_checkpoints(source, stream)?;
    for cp in stored
        .values()
        .filter(|c| stream.is_none_or(|s| s == c.stream))
    {
        writeln!(
            con.err,
            "reset: connector `{source}` stream `{}` (its watermark was {}); its records are kept",
            cp.stream,
            cp.watermark.to_rfc3339()
        )?;
    }
    writeln!(
        con.err,
        "{n} checkpoint(s) deleted. The next run of `{source}` starts as its first: it pulls today less \
         its `lookback_days`, and each stream starts over within its window; to re-pull \
         older days that were never read, run `reckon sync {source} --from YYYY-MM-DD --to YYYY-MM-DD` \
         (re-pulled records are upserts, nothing is duplicated). A sync of `{source}` running right now \
         stores its next checkpoint again: reset while none runs"
    )?;
    Ok(ExitCode::SUCCESS)
}
