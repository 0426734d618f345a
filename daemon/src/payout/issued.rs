//! What a program's statement directory says was issued, checked against
//! the store before any run writes there.
//!
//! Finance pays from the files; the store holds the ledger of what they
//! paid. A store that is older than the files (restored from a backup taken
//! before a later finalize), new (a deleted or empty data directory) or not
//! the one that issued them (a mistyped `data_dir`) does not know they were
//! paid: a run over it would replace finalised statements with drafts and
//! pay their claims again. [`unknown_finalised`] finds such statement sets
//! so that the lifecycle refuses to run.
//!
//! The check is cheap: one directory listing and each period's
//! `summary.csv` (a row per payee: status, version, content hash), never the
//! statements themselves. Only when a period directory has no `summary.csv`
//! is one statement JSON read for its status.
//!
//! It is not a verification of the files (that is `verify`): a finalised
//! period the store records with the same statements (content hashes) passes
//! even if a file was edited, so `generate` can still restore it. So does a
//! `summary.csv` whose content hashes were edited by hand, when the store
//! records the period as finalised at the version it claims, for the same
//! payees, and some of its rows are statements this store issued: a
//! finalised record never changes, so no later state of this store can
//! have issued the others. When every row differs (another store's set,
//! or every row edited) the run is refused, and the message says how to
//! let `generate` restore an edited set.

use super::book::{PeriodRecord, StatementBook};
use super::files::FileError;
use super::lifecycle::{period_records, PayoutError};
use super::model::Status;
use super::render;
use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};

/// A period directory whose files say finalised and which the store does
/// not record as finalised with the same statements.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct UnknownSet {
    /// The period (the directory's name).
    pub period: String,
    /// The file that says the set is finalised (`summary.csv`, or a
    /// statement's JSON when there is no summary).
    pub file: PathBuf,
    /// The version the files carry.
    pub version: u32,
    /// What the store has for the period, in words.
    pub store_has: String,
}

impl std::fmt::Display for UnknownSet {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "{} ({} says finalised, version {}; the store has {})",
            self.period,
            self.file.display(),
            self.version,
            self.store_has
        )
    }
}

/// What a period directory says it holds, read from its `summary.csv`.
struct Issued {
    file: PathBuf,
    finalised: bool,
    version: u32,
    content_hashes: BTreeSet<String>,
    /// The payees of its rows (`partner_id`, as written: a format-3 cell
    /// may carry a leading `'`).
    payees: BTreeSet<String>,
    /// Read from one JSON only (no summary): the set of hashes is partial.
    partial: bool,
}

fn io_error(action: &'static str, path: &Path, error: std::io::Error) -> FileError {
    FileError {
        action,
        path: path.display().to_string(),
        error,
    }
}

/// What a period directory says was issued: its `summary.csv`; else (no
/// summary, one that cannot be read as Reckon wrote it, or one that says
/// draft) the first statement JSON. A summary re-saved by a spreadsheet
/// with `;` separators, or cut short, is no evidence that nothing was
/// finalised (QA: it let a store older than the files pay paid claims
/// again). `None` when the directory holds no statements.
fn read_issued(dir: &Path) -> Result<Option<Issued>, PayoutError> {
    let summary = dir.join("summary.csv");
    let from_summary = match std::fs::read(&summary) {
        Ok(bytes) => parse_summary(&summary, &bytes),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => None,
        Err(e) => return Err(io_error("read", &summary, e).into()),
    };
    match from_summary {
        Some(s) if s.finalised => Ok(Some(s)),
        Some(s) => Ok(Some(
            read_one_json(dir)?.filter(|j| j.finalised).unwrap_or(s),
        )),
        None => read_one_json(dir),
    }
}

/// The status, version and content hashes of `summary.csv`'s rows
/// ([`render::read_summary_csv`]); a row that cannot be read counts for
/// nothing. `None` when the file cannot be read as a summary or lists no
/// statement.
fn parse_summary(path: &Path, bytes: &[u8]) -> Option<Issued> {
    let rows = render::read_summary_csv(bytes)?;
    if rows.is_empty() {
        return None;
    }
    let mut issued = Issued {
        file: path.to_path_buf(),
        finalised: false,
        version: 0,
        content_hashes: BTreeSet::new(),
        payees: BTreeSet::new(),
        partial: false,
    };
    for row in rows {
        issued.finalised |= row.status == Status::Finalised.as_str();
        issued.version = issued.version.max(row.version.unwrap_or(0));
        issued.content_hashes.insert(row.content_hash);
        issued.payees.insert(row.partner_id);
    }
    Some(issued)
}

/// The status a `summary.csv` gives its statements (finalised when any row
/// says so) and their highest version; `None` when no row gives a version
/// (not a summary as written, or no statements).
pub fn summary_status(bytes: &[u8]) -> Option<(Status, u32)> {
    let issued = parse_summary(Path::new("summary.csv"), bytes)?;
    let status = if issued.finalised {
        Status::Finalised
    } else {
        Status::Draft
    };
    (issued.version > 0).then_some((status, issued.version))
}

/// Whether a `summary.csv` lists exactly the statements (content hashes)
/// of `rec`, whatever its other cells say.
pub fn summary_lists(bytes: &[u8], rec: &PeriodRecord) -> bool {
    let Some(issued) = parse_summary(Path::new("summary.csv"), bytes) else {
        return false;
    };
    issued.content_hashes.iter().map(String::as_str).eq(rec
        .partners
        .iter()
        .map(|p| p.content_hash.as_str())
        .collect::<BTreeSet<_>>())
}

/// Without a `summary.csv`: the status, version and hash of the first
/// statement JSON (by name).
fn read_one_json(dir: &Path) -> Result<Option<Issued>, PayoutError> {
    #[derive(serde::Deserialize)]
    struct Head {
        status: String,
        version: u32,
        content_hash: String,
    }
    let Some(name) = list(dir)?
        .into_iter()
        .find(|n| n.ends_with(".json") && !n.starts_with('.'))
    else {
        return Ok(None);
    };
    let path = dir.join(name);
    let bytes = std::fs::read(&path).map_err(|e| io_error("read", &path, e))?;
    let Ok(head) = serde_json::from_slice::<Head>(&bytes) else {
        return Ok(None);
    };
    Ok(Some(Issued {
        file: path,
        finalised: head.status == Status::Finalised.as_str(),
        version: head.version,
        content_hashes: BTreeSet::from([head.content_hash]),
        payees: BTreeSet::new(),
        partial: true,
    }))
}

fn list(dir: &Path) -> Result<Vec<String>, FileError> {
    let mut v = Vec::new();
    for e in std::fs::read_dir(dir).map_err(|e| io_error("list", dir, e))? {
        let e = e.map_err(|e| io_error("list", dir, e))?;
        v.push(e.file_name().to_string_lossy().into_owned());
    }
    v.sort();
    Ok(v)
}

/// `<output_dir>/statements/<program>`.
pub fn program_dir(output_dir: &Path, program: &str) -> PathBuf {
    output_dir
        .join("statements")
        .join(render::file_stem(program))
}

/// Whether the store records `issued` as issued: finalised, same version,
/// same statements.
fn store_has(rec: Option<&PeriodRecord>, issued: &Issued) -> Result<(), String> {
    let Some(rec) = rec else {
        return Err("no record of this period".into());
    };
    if rec.status != Status::Finalised {
        return Err(format!(
            "it as {} version {}",
            rec.status.as_str(),
            rec.version
        ));
    }
    let recorded: BTreeSet<&str> = rec
        .partners
        .iter()
        .map(|p| p.content_hash.as_str())
        .collect();
    let same = if issued.partial {
        issued
            .content_hashes
            .iter()
            .all(|h| recorded.contains(h.as_str()))
    } else {
        issued
            .content_hashes
            .iter()
            .map(String::as_str)
            .eq(recorded.iter().copied())
    };
    let some_issued_here = issued
        .content_hashes
        .iter()
        .any(|h| recorded.contains(h.as_str()));
    if rec.version == issued.version
        && !same
        && !issued.partial
        && some_issued_here
        && same_payees(rec, issued)
    {
        // Finalised at this version, for these payees, and some of its
        // statements are the ones this store issued: a finalised record
        // never changes, so no later state of this store issued the
        // others. The summary was edited (finance QA F5: every run was
        // refused as "an older store", and `generate`, which restores the
        // edited file, could not run); `verify` names the edit and
        // `generate` of the period restores it.
        return Ok(());
    }
    // Finalised at this version, and every statement the summary lists in
    // whole is one this store recorded: a summary cut short (its last row
    // cut mid-hash) or with rows deleted, not another store's (QA52 M3:
    // refused as "the store is older than these files", advising a store
    // restore). `verify` names the damage; `generate` restores the file.
    let whole = |h: &&String| h.len() == 64 && h.bytes().all(|b| b.is_ascii_hexdigit());
    if rec.version == issued.version
        && !issued.partial
        && some_issued_here
        && issued
            .content_hashes
            .iter()
            .filter(whole)
            .all(|h| recorded.contains(h.as_str()))
    {
        return Ok(());
    }
    if rec.version != issued.version || !same {
        let edited = if rec.version == issued.version {
            // Every statement differs: another store's set, or every row
            // edited; nothing here tells which.
            format!(
                "; if these files were edited by hand, move the directory {} out of the statements directory (keep it for the record), and `reckon statements generate --program {} --period {}` writes the issued ones back",
                issued.file.parent().map_or(String::new(), |d| d.display().to_string()),
                rec.program,
                rec.period
            )
        } else {
            String::new()
        };
        return Err(format!(
            "it as finalised version {} with other statements{edited}",
            rec.version
        ));
    }
    Ok(())
}

/// Whether a summary's rows name exactly the payees `rec` recorded (a
/// cell guarded against formulas counts as its payee).
fn same_payees(rec: &PeriodRecord, issued: &Issued) -> bool {
    let recorded: BTreeSet<&str> = rec.partners.iter().map(|p| p.partner_id.as_str()).collect();
    issued.payees.len() == recorded.len()
        && issued.payees.iter().all(|p| {
            recorded.contains(p.as_str())
                || p.strip_prefix('\'').is_some_and(|q| recorded.contains(q))
        })
}

/// The finalised statement sets under `<output_dir>/statements/<program>/`
/// that the store does not record as finalised with the same statements
/// (content hashes), by period. Empty when every finalised set is known
/// (or there is no directory yet).
pub fn unknown_finalised(
    book: &dyn StatementBook,
    output_dir: &Path,
    program: &str,
) -> Result<Vec<UnknownSet>, PayoutError> {
    let dir = program_dir(output_dir, program);
    let names = match list(&dir) {
        Ok(n) => n,
        Err(e) if e.error.kind() == std::io::ErrorKind::NotFound => return Ok(Vec::new()),
        Err(e) => return Err(e.into()),
    };
    let mut records: Option<BTreeMap<String, PeriodRecord>> = None;
    let mut unknown = Vec::new();
    for name in names {
        let path = dir.join(&name);
        // staging and old directories are dot-named; `files::recover`
        // resolves them
        if name.starts_with('.') || !path.is_dir() {
            continue;
        }
        let Some(issued) = read_issued(&path)? else {
            continue;
        };
        if !issued.finalised {
            continue;
        }
        let records = match &mut records {
            Some(r) => r,
            None => records.insert(
                period_records(book, program)?
                    .into_iter()
                    .map(|r| (r.period.clone(), r))
                    .collect(),
            ),
        };
        if let Err(store_has) = store_has(records.get(&name), &issued) {
            unknown.push(UnknownSet {
                period: name,
                file: issued.file,
                version: issued.version,
                store_has,
            });
        }
    }
    Ok(unknown)
}

/// Refuses a run when the statement directory holds finalised statements
/// the store does not know ([`unknown_finalised`]).
pub fn check(
    book: &dyn StatementBook,
    output_dir: &Path,
    program: &str,
) -> Result<(), PayoutError> {
    let sets = unknown_finalised(book, output_dir, program)?;
    if sets.is_empty() {
        return Ok(());
    }
    Err(PayoutError::UnknownFinalised {
        program: program.into(),
        dir: program_dir(output_dir, program),
        sets,
    })
}
