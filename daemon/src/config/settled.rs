//! The settled checks of `reckon config check`: each program with a
//! `[programs.commission]` against what its finalised statements settled
//! in the store ([`crate::payout::lifecycle::settled_refusals`]: a changed
//! `payout_currency` or commission `timezone`, a network whose claims were
//! paid no longer in `claims`, claims paid under another program id).
//! `reckon statements generate|finalize` and the daemon's scheduled drafts
//! refuse such a config; the check says so when the config is edited, not
//! when the next drafts are refused (ops QA).
//!
//! The store is read where it is: opened here when no process holds it;
//! when `reckon run` holds it, the daemon runs the checks over its own
//! store through the command socket ([`crate::cli::remote`]) as the hidden
//! command `reckon config settled`, which answers with the refusals as
//! JSON. A data directory without a store (a fresh install) has nothing
//! settled.
//!
//! It also warns (never refuses) when a rule, override or bonus id that a
//! finalised period used now has other terms than were recorded with that
//! period ([`crate::payout::terms::term_changes`], QA33d M6: `cps-10`
//! edited in place from 10 % to 11 % was unexplained in every output) or
//! the matching or `[fx]` settings differ from those recorded with the
//! latest finalised period (a new tolerance re-judges claims already
//! paid), and notes the finalised periods that have no recorded terms (finalised
//! before they were recorded). It warns too about each manual adjustment
//! no statement will ever pay: its period is finalised without it, or
//! starts before a finalised period (QA34c M4). The daemon's reload logs
//! the same warnings ([`log_term_changes`]).
//!
//! What it is not: it reads the store only (the statements in
//! `output_dir` are checked by `reckon statements`), and it is not part of
//! [`crate::schedule::Runtime::resolve`]: `reckon run` and SIGHUP do not
//! refuse a config for it (the drafts of such a program are refused and
//! shown in `/status`).
use super::{Config, ConfigError};
use crate::payout::book::{BookError, StatementBook, StoreBook};
use crate::payout::lifecycle::{self, PayoutError};
use serde::{Deserialize, Serialize};
use std::io::Write as _;
use std::path::Path;

/// One refusal: the program, the key it is about and what to do.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Refusal {
    /// Program id.
    pub program: String,
    /// Key path in the config, e.g.
    /// `programs[0].commission.payout_currency`.
    pub path: String,
    /// What changed and what to do: the message `reckon statements`
    /// refuses with, beginning with ``program `id` ``.
    pub message: String,
}

impl Refusal {
    /// The refusal as a config error of `cfg`'s file, at its key.
    pub fn to_config_error(&self, cfg: &Config) -> ConfigError {
        cfg.source.error(&self.path, self.message.clone())
    }
}

/// What the settled checks found.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Settled {
    /// No program has a `[programs.commission]`: nothing to check.
    NoPrograms,
    /// `data_dir` holds no store yet: nothing is finalised.
    NoStore,
    /// Every program with a commission was checked.
    Checked {
        /// What would be refused (empty: nothing).
        refusals: Vec<Refusal>,
        /// Rule, override and bonus edits since finalised periods used
        /// them, and periods without recorded terms.
        terms: Terms,
        /// Whether the daemon holding the store ran the checks.
        by_daemon: bool,
    },
    /// The store could not be read (damaged, missing files, a newer
    /// schema): an error of the config check.
    Unreadable(String),
    /// Not checked, why and how to check: another process holds the store
    /// and could not run them.
    Skipped(String),
}

/// What the check says of the terms finalised periods were paid under.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Terms {
    /// One warning per rule, override or bonus id whose terms changed
    /// since finalised periods used it
    /// ([`crate::payout::terms::TermChange`]'s text), then one per
    /// matching or `[fx]` section that differs from the latest finalised
    /// period's ([`crate::payout::terms::SettingsChange`]).
    #[serde(default)]
    pub edits: Vec<String>,
    /// One note per program with finalised periods that have no recorded
    /// terms.
    #[serde(default)]
    pub unrecorded: Vec<String>,
    /// One warning per manual adjustment no statement will ever pay (its
    /// period is finalised without it, or starts before a finalised one:
    /// [`crate::payout::lifecycle::unpaid_manual_adjustments`], QA34c M4).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub unpaid: Vec<String>,
    /// One warning per manual adjustment reference into a period this
    /// store never finalised and never will, which cannot be checked
    /// ([`crate::payout::lifecycle::check_refers_to`], QA38c C-M2).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub unchecked_references: Vec<String>,
}

/// The answer of `reckon config settled --terms` (the daemon's).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
struct Answer {
    refusals: Vec<Refusal>,
    terms: Terms,
}

/// The `refers_to` findings of one program's manual adjustments
/// ([`lifecycle::check_all_refers_to`]), which both [`refusals`] and
/// [`terms`] report: found once per check, as they read the period
/// records and every statement referred to by line.
struct References {
    /// Every reference its drafts would refuse, or why the store could not
    /// tell.
    refused: Vec<PayoutError>,
    /// The references into periods this store never finalised and never
    /// will (warnings).
    unchecked: Vec<String>,
}

/// Each program of `cfg` with a commission: its index, itself and its
/// commission (with the reporting timezone when it sets none).
fn commissions(
    cfg: &Config,
) -> impl Iterator<
    Item = (
        usize,
        &crate::reconcile::config::ProgramConfig,
        crate::payout::config::CommissionConfig,
    ),
> {
    cfg.programs.iter().enumerate().filter_map(|(i, program)| {
        let commission = program.commission.as_ref()?;
        Some((
            i,
            program,
            commission
                .clone()
                .with_default_timezone(cfg.daemon.timezone.0),
        ))
    })
}

/// [`References`] of each program of [`commissions`], in that order.
fn references(book: &dyn StatementBook, cfg: &Config) -> Vec<References> {
    commissions(cfg)
        .map(|(_, program, commission)| {
            match lifecycle::check_all_refers_to(book, &program.id, &commission) {
                Ok((refused, unchecked)) => References { refused, unchecked },
                Err(e) => References {
                    refused: vec![e],
                    unchecked: Vec::new(),
                },
            }
        })
        .collect()
}

/// [`Terms`] of `cfg`'s programs with a commission over `book`: edits
/// since finalised periods, and periods without recorded terms. Cheap: one
/// period scan and one key per finalised period of each program.
pub fn terms(book: &dyn StatementBook, cfg: &Config) -> Terms {
    terms_with(book, cfg, &references(book, cfg))
}

/// [`terms`], with the programs' [`References`] found already.
fn terms_with(book: &dyn StatementBook, cfg: &Config, references: &[References]) -> Terms {
    let mut out = Terms::default();
    for ((_, program, commission), refs) in commissions(cfg).zip(references) {
        let now = crate::payout::terms::CurrentSettings {
            program: crate::payout::terms::program_terms(program),
            fx: crate::payout::terms::fx_settings(cfg.fx.as_ref()),
        };
        match crate::payout::terms::term_changes(book, &program.id, &commission, &now) {
            Ok(review) => {
                out.edits
                    .extend(review.changes.iter().map(ToString::to_string));
                out.edits
                    .extend(review.added.iter().map(ToString::to_string));
                out.edits
                    .extend(review.settings.iter().map(ToString::to_string));
                if !review.unrecorded.is_empty() {
                    out.unrecorded.push(format!(
                        "program `{}`: {} {} finalised before Reckon recorded the terms in force: edits of their rules since cannot be checked",
                        program.id,
                        review.unrecorded.join(", "),
                        if review.unrecorded.len() == 1 { "was" } else { "were" }
                    ));
                }
            }
            // A damaged record is the settled checks' to report; here it
            // only means the terms cannot be compared.
            Err(e) => out.unrecorded.push(format!(
                "program `{}`: the recorded terms cannot be read: {e}",
                program.id
            )),
        }
        // Damage is reported above or by the settled checks.
        if let Ok(unpaid) = crate::payout::lifecycle::unpaid_manual_adjustments(
            book,
            &program.id,
            &commission,
            None,
        ) {
            out.unpaid.extend(unpaid);
        }
        // References the store cannot check (refusals are the settled
        // checks').
        out.unchecked_references
            .extend(refs.unchecked.iter().cloned());
    }
    out
}

/// Logs, for the daemon's reload, each edit [`terms`] finds (WARN). Reads
/// the book as it is ([`StoreBook::open_as_is`]): a reload never waits
/// for a finalise in progress.
pub fn log_term_changes(store: &crate::store::Store, cfg: &Config) {
    if cfg.programs.iter().all(|p| p.commission.is_none()) {
        return;
    }
    let book = match StoreBook::open_as_is(store) {
        Ok(b) => b,
        Err(e) => {
            tracing::warn!(error = %e, "SIGHUP: the terms of finalised periods could not be compared with the new config");
            return;
        }
    };
    let terms = terms(&book, cfg);
    for edit in (terms.edits.iter())
        .chain(&terms.unpaid)
        .chain(&terms.unchecked_references)
    {
        tracing::warn!("SIGHUP: {edit}");
    }
}

/// Every refusal of `cfg`'s programs with a commission over the store
/// `store`, in program order.
pub fn refusals(store: &crate::store::Store, cfg: &Config) -> Result<Vec<Refusal>, BookError> {
    let book = StoreBook::open(store)?;
    let references = references(&book, cfg);
    Ok(refusals_with(&book, cfg, references))
}

/// [`refusals`] over `book`, with the programs' [`References`] found
/// already.
fn refusals_with(
    book: &dyn StatementBook,
    cfg: &Config,
    references: Vec<References>,
) -> Vec<Refusal> {
    let mut out = Vec::new();
    for ((i, program, commission), refs) in commissions(cfg).zip(references) {
        let mut found = match lifecycle::settled_refusals(book, program, &commission) {
            Ok(found) => found,
            // What the drafts would fail with (a damaged statement,
            // say): an error too.
            Err(e) => vec![e],
        };
        // QA38c C-M2: a manual adjustment's `refers_to` naming a statement
        // or line its finalised period never issued: the drafts of its
        // period would refuse it.
        found.extend(refs.refused);
        // Finalised statements in `output_dir` this store did not issue (a
        // store restored from an older backup): every run would refuse.
        if let Err(e) = crate::payout::issued::check(book, &cfg.daemon.output_dir, &program.id) {
            found.push(e);
        }
        out.extend(found.into_iter().map(|e| Refusal {
            program: program.id.clone(),
            path: path_of(cfg, i, &e),
            message: match &e {
                // Its own "[programs.commission] of program `id`, " would
                // repeat what the key path and this prefix say.
                PayoutError::Config(c) => {
                    format!("program `{}`, {}: {}", program.id, c.entry, c.message)
                }
                _ if e.program() == Some(program.id.as_str()) => e.to_string(),
                _ => format!("program `{}`: {e}", program.id),
            },
        }));
    }
    out
}

/// The key path a refusal of `cfg.programs[i]` is about.
fn path_of(cfg: &Config, i: usize, e: &PayoutError) -> String {
    let program = &cfg.programs[i];
    match e {
        PayoutError::PaidElsewhere { connector, .. } => {
            match program.claims.iter().position(|c| c == connector) {
                Some(j) => format!("programs[{i}].claims[{j}]"),
                None => format!("programs[{i}].claims"),
            }
        }
        PayoutError::PaidConnectorRemoved { .. } => format!("programs[{i}].claims"),
        // `manual_adjustments[k].refers_to (id `x`)`: the key before the id.
        PayoutError::Config(c) if c.entry.starts_with("manual_adjustments[") => {
            let key = c.entry.split(" (").next().unwrap_or_default();
            format!("programs[{i}].commission.{key}")
        }
        PayoutError::SettledChanged {
            key: "currency", ..
        } => format!("programs[{i}].currency"),
        PayoutError::SettledChanged { key, .. } => {
            let own = format!("programs[{i}].commission.{key}");
            // A commission without its own timezone has the reporting
            // timezone: the key that changed is that one.
            if *key == "timezone" && !cfg.source.sets(&own) && cfg.source.sets("daemon.timezone") {
                "daemon.timezone".to_owned()
            } else {
                own
            }
        }
        _ => format!("programs[{i}]"),
    }
}

/// Runs the settled checks of `cfg` (loaded from `config_path`): through
/// the daemon when one holds its `data_dir`, else over the store opened
/// here.
pub fn check(config_path: &Path, cfg: &Config) -> Settled {
    if cfg.programs.iter().all(|p| p.commission.is_none()) {
        return Settled::NoPrograms;
    }
    let data_dir = &cfg.daemon.data_dir;
    if let Some(stream) = crate::cli::remote::connect(data_dir) {
        return through_daemon(stream, config_path, data_dir);
    }
    // As `Console::existing_store`: a lock file without the store is a
    // store that was there and is gone, which opening it reports.
    let no_store = !data_dir.join("store").is_dir() && !data_dir.join("reckon.lock").exists();
    if no_store {
        return Settled::NoStore;
    }
    if let Some(why) = not_the_owner(data_dir) {
        return Settled::Skipped(why);
    }
    // Opened as it is: a check before an upgrade must not migrate the
    // store, which would make the running release refuse it (QA44b B-M1).
    let opened = crate::store::Store::open_unmigrated(data_dir, crate::store::DEFAULT_CACHE_MB);
    match opened {
        Ok(store) => match older_schema(&store) {
            Some(why) => Settled::Skipped(why),
            None => match answer(&store, cfg) {
                Ok(Answer { refusals, terms }) => Settled::Checked {
                    refusals,
                    terms,
                    by_daemon: false,
                },
                Err(e) => Settled::Unreadable(e.to_string()),
            },
        },
        Err(crate::store::StoreError::Locked { path, pid, command }) => Settled::Skipped(format!(
            "another process holds the store in {path}{} and no reckon daemon answers on its command socket (a `reckon sync` or another command, a backup holding the lock, or a daemon without its socket); run `reckon config check` again once it has finished",
            crate::store::holder(pid, command.as_deref())
                .map(|h| format!(" ({h})"))
                .unwrap_or_default()
        )),
        Err(e) => Settled::Unreadable(e.to_string()),
    }
}

/// Why the store is not checked when an older release wrote it: its layout
/// may not be this release's, and migrating it here would make that release
/// refuse it. `None` at this release's schema.
fn older_schema(store: &crate::store::Store) -> Option<String> {
    let found = store.schema_version().ok()?;
    (found < crate::store::SCHEMA_VERSION).then(|| {
        format!(
            "the store in {} was written by an older release (store schema {found}; this reckon's is {}). This check does not migrate it, so that release can still open it; the check runs once this release has migrated the store, at its first start (`reckon run`, or any command that opens the store)",
            store.dir().display(),
            crate::store::SCHEMA_VERSION
        )
    })
}

/// Why the store in `data_dir` is not opened by this process, when its
/// user is not the store's owner: sled writes files as it opens a store (a
/// snapshot), and a check run as root (`sudo reckon config check`) would
/// leave files in it that the daemon's user cannot write. Another user
/// who cannot write it is refused by [`super::dirs`] already.
fn not_the_owner(data_dir: &Path) -> Option<String> {
    use std::os::unix::fs::MetadataExt as _;
    let store = data_dir.join("store");
    let owner = std::fs::metadata(&store).ok()?.uid();
    let me = rustix::process::geteuid().as_raw();
    (owner != me).then(|| {
        format!(
            "{} belongs to uid {owner}, and this check runs as uid {me}: opening the store would leave files in it that its owner cannot write. Run the check as the store's owner, the daemon's user (e.g. `sudo -u reckon reckon config check ...`)",
            store.display()
        )
    })
}

/// Has the daemon on `stream` run `reckon config settled` with the config
/// file `config_path`.
fn through_daemon(
    stream: std::os::unix::net::UnixStream,
    config_path: &Path,
    data_dir: &Path,
) -> Settled {
    let skipped = |why: String| {
        Settled::Skipped(format!(
            "the reckon daemon holds {} and did not run them ({why}). A daemon older than this reckon cannot: restart it with this binary (systemctl restart reckon), or stop it and run `reckon config check` again",
            data_dir.display()
        ))
    };
    let (Ok(cwd), Ok(config)) = (std::env::current_dir(), std::path::absolute(config_path)) else {
        return skipped("the working directory or the config file's path is unknown".into());
    };
    let request = crate::cli::remote::Request {
        argv: vec!["config".into(), SETTLED_COMMAND.into(), "--terms".into()],
        cwd,
        config,
        version: Some(crate::VERSION.to_owned()),
    };
    let (mut out, mut err) = (Vec::new(), Vec::new());
    let code = match crate::cli::remote::exchange(stream, &request, &mut out, &mut err) {
        Ok(code) => code,
        Err(e) => return skipped(format!("{e:#}")),
    };
    // Its first line: clap's usage follows an older daemon's refusal.
    let said = || {
        let err = String::from_utf8_lossy(&err);
        err.lines().next().unwrap_or_default().trim().to_owned()
    };
    if code != 0 {
        return skipped(format!("it answered: {}", said()));
    }
    match serde_json::from_slice::<Answer>(&out) {
        Ok(Answer { refusals, terms }) => Settled::Checked {
            refusals,
            terms,
            by_daemon: true,
        },
        Err(e) => skipped(format!("its answer is not the checks' ({e})")),
    }
}

/// The name of the hidden `reckon config` subcommand the daemon runs.
pub const SETTLED_COMMAND: &str = "settled";

/// The refusals and the terms' findings of `cfg` over `store`, the manual
/// adjustments' references checked once for both.
fn answer(store: &crate::store::Store, cfg: &Config) -> Result<Answer, BookError> {
    let book = StoreBook::open(store)?;
    let references = references(&book, cfg);
    let terms = terms_with(&book, cfg, &references);
    let refusals = refusals_with(&book, cfg, references);
    Ok(Answer { refusals, terms })
}

/// `reckon config settled`: the refusals of the config at `config_path`
/// over the store `con` hands out (the daemon's, when it runs the
/// command), as a JSON array of [`Refusal`] on `con.out`; with `terms`
/// (what this version's `config check` asks), an object: the refusals and
/// the [`Terms`] (an older `config check` asks without and reads the
/// array).
pub fn run_command(
    config_path: &Path,
    terms: bool,
    con: &mut crate::cli::Console,
) -> anyhow::Result<std::process::ExitCode> {
    let cfg = super::load(config_path)?;
    let store = con.existing_store(&cfg.daemon.data_dir)?;
    if terms {
        serde_json::to_writer(&mut con.out, &answer(&store, &cfg)?)?;
    } else {
        serde_json::to_writer(&mut con.out, &refusals(&store, &cfg)?)?;
    }
    con.out.write_all(b"\n")?;
    con.out.flush()?;
    Ok(std::process::ExitCode::SUCCESS)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A config of one program `shop` with the commission `commission`.
    fn config(daemon: &str, commission: &str) -> Config {
        let text = format!(
            r#"[daemon]
{daemon}

[[connectors]]
id = "impact"
plugin = "impact"
schedule = "0 * * * *"

[[connectors]]
id = "awin"
plugin = "impact"
schedule = "0 * * * *"

[[connectors]]
id = "shop"
plugin = "orders"
schedule = "0 * * * *"

[[programs]]
id = "shop"
currency = "USD"
claims = ["impact", "awin"]
orders = ["shop"]

[programs.commission]
payout_currency = "USD"
{commission}

[[programs.commission.rules]]
id = "cps"
effective_from = "2026-01-01"
kind = "percent"
percent = "10"
"#
        );
        super::super::parse(&text, "reckon.toml").unwrap()
    }

    fn changed(key: &'static str) -> PayoutError {
        PayoutError::SettledChanged {
            program: "shop".into(),
            key,
            was: "x".into(),
            now: "y".into(),
            period: "2026-08".into(),
        }
    }

    #[test]
    fn each_refusal_is_located_at_the_key_that_changed() {
        let cfg = config("", "timezone = \"Europe/Berlin\"");
        let at = |e: &PayoutError| path_of(&cfg, 0, e);
        assert_eq!(
            at(&changed("payout_currency")),
            "programs[0].commission.payout_currency"
        );
        assert_eq!(at(&changed("timezone")), "programs[0].commission.timezone");
        assert_eq!(
            at(&PayoutError::PaidElsewhere {
                program: "shop".into(),
                connector: "awin".into(),
                other: "old".into(),
            }),
            "programs[0].claims[1]"
        );
        assert_eq!(
            at(&PayoutError::PaidConnectorRemoved {
                program: "shop".into(),
                connector: "everflow".into(),
                statement: "s".into(),
            }),
            "programs[0].claims"
        );
        assert_eq!(at(&PayoutError::NoCommission("shop".into())), "programs[0]");
        let e = Refusal {
            program: "shop".into(),
            path: at(&changed("payout_currency")),
            message: changed("payout_currency").to_string(),
        }
        .to_config_error(&cfg);
        assert_eq!(
            (e.line, e.path.as_str()),
            (Some(26), "programs[0].commission.payout_currency"),
            "{e}"
        );
    }

    /// A commission without its own timezone has the reporting one: a
    /// change of `daemon.timezone` is what changed its timezone.
    #[test]
    fn a_defaulted_timezone_is_located_at_the_reporting_timezone() {
        let cfg = config("timezone = \"Europe/Berlin\"", "");
        assert_eq!(path_of(&cfg, 0, &changed("timezone")), "daemon.timezone");
        let cfg = config("", "");
        assert_eq!(
            path_of(&cfg, 0, &changed("timezone")),
            "programs[0].commission.timezone"
        );
    }

    #[test]
    fn a_data_dir_without_a_store_has_nothing_settled_and_is_not_created() {
        let tmp = tempfile::tempdir().unwrap();
        let data = tmp.path().join("data");
        let cfg = config(&format!("data_dir = {:?}", data.display().to_string()), "");
        assert_eq!(
            check(&tmp.path().join("reckon.toml"), &cfg),
            Settled::NoStore
        );
        assert!(!data.exists(), "the check created the data directory");
    }

    /// Root checking the daemon user's store does not open it (sled would
    /// leave root's files in it). Needs root to give the store away; as
    /// another user only its own store is tried.
    #[test]
    fn a_store_of_another_user_is_not_opened() {
        let tmp = tempfile::tempdir().unwrap();
        let store = tmp.path().join("store");
        std::fs::create_dir(&store).unwrap();
        assert_eq!(not_the_owner(tmp.path()), None);
        if rustix::process::geteuid().is_root() {
            std::os::unix::fs::chown(&store, Some(65534), None).unwrap();
            let why = not_the_owner(tmp.path()).unwrap();
            assert!(
                why.contains("belongs to uid 65534, and this check runs as uid 0")
                    && why.contains("sudo -u reckon"),
                "{why}"
            );
        }
    }

    #[test]
    fn a_store_without_finalised_statements_refuses_nothing() {
        let tmp = tempfile::tempdir().unwrap();
        let data = tmp.path().join("data");
        crate::store::Store::open(&data).unwrap();
        let cfg = config(&format!("data_dir = {:?}", data.display().to_string()), "");
        assert_eq!(
            check(&tmp.path().join("reckon.toml"), &cfg),
            Settled::Checked {
                refusals: Vec::new(),
                terms: Terms::default(),
                by_daemon: false
            }
        );
    }

    /// QA44b B-M1: the new release's check before switching migrated the
    /// store (schema 3 → 4), and the running release then refused it.
    #[test]
    fn a_store_of_an_older_release_is_skipped_and_not_migrated() {
        let tmp = tempfile::tempdir().unwrap();
        let data = tmp.path().join("data");
        crate::store::Store::open(&data)
            .unwrap()
            .set_schema_version(3)
            .unwrap();
        let cfg = config(&format!("data_dir = {:?}", data.display().to_string()), "");
        let Settled::Skipped(why) = check(&tmp.path().join("reckon.toml"), &cfg) else {
            panic!("not skipped");
        };
        assert!(
            why.contains("written by an older release (store schema 3; this reckon's is 4)")
                && why.contains("does not migrate it"),
            "{why}"
        );
        let store = crate::store::Store::open_unmigrated(&data, 64).unwrap();
        assert_eq!(store.schema_version().unwrap(), 3);
    }

    #[test]
    fn a_store_held_by_another_process_is_skipped_saying_why() {
        let tmp = tempfile::tempdir().unwrap();
        let data = tmp.path().join("data");
        let held = crate::store::Store::open(&data).unwrap();
        let cfg = config(&format!("data_dir = {:?}", data.display().to_string()), "");
        let Settled::Skipped(why) = check(&tmp.path().join("reckon.toml"), &cfg) else {
            panic!("not skipped");
        };
        assert!(
            why.starts_with(&format!(
                "another process holds the store in {} (pid {}, `{}`)",
                data.display(),
                std::process::id(),
                crate::store::process_command(std::process::id()).unwrap()
            )) && why.contains("run `reckon config check` again"),
            "{why}"
        );
        drop(held);
    }
}
