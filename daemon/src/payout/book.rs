//! The statements book: what payout records in the store (tree
//! `statements`): period records, finalised statements, the ledgers of paid
//! claims, of released lines, of bonuses and of settled statements, and
//! partner balances.
//!
//! [`StatementBook`] is the narrow storage interface payout needs; it is
//! implemented over the daemon's [`crate::store::Store`] domain tree and over
//! a bare `sled::Tree` (used by the crash-test harness). Keys use the unit
//! separator `\x1f` between parts, so ids containing `/` cannot collide.
//!
//! | key | value |
//! |---|---|
//! | `period␟<program>␟<period>` | [`PeriodRecord`] |
//! | `final␟<program>␟<period>␟<partner>` | [`FinalRecord`] |
//! | `paid␟<program>␟<network>␟<claim>` | [`super::model::PaidClaim`] |
//! | `balance␟<program>␟<partner>` | [`Balance`] |
//! | `bonus␟<program>␟<statement id>␟<bonus id>` | [`super::model::PaidBonus`] |
//! | `bonus_ledger␟<program>` | `{"book_version": 1}`: the bonus ledger is complete (absent in stores finalised before it existed: `lifecycle::load_history` derives it from the `final` records and the next run writes it) |
//! | `released␟<program>␟<statement id>␟<network>␟<claim>` | [`super::model::PaidClaim`]: a line of that finalised statement whose claim the `paid` ledger no longer holds for it (the network moved the claim to another partner): it stays in the volume the statement's other lines were paid on |
//! | `released_ledger␟<program>` | `{"book_version": 1}`: the released-lines ledger is complete (absent in stores finalised before it existed: derived and written as the bonus ledger is) |
//! | `redo␟<program>␟<n>` | a JSON string: part `n` (8 digits) of a write being committed ([`commit`]) |
//! | `redo␟<program>␟head` | [`RedoHead`]: the parts' count and SHA-256s; written once every part is durable, the commit point |
//! | `terms␟<program>␟<period>` | [`super::terms::PeriodTerms`]: the terms in force when the period was finalised (payout config, matching settings, `[fx]` and its rates' fingerprint) and the rule, override and bonus ids its statements used; absent for periods finalised before it existed (nothing is derived) and for finalises without terms (library callers) |
//! | `settled␟<program>␟<statement id>` | [`super::model::SettledStatement`]: the inputs of that finalised statement's lines when a later finalised statement last repriced it and applied every target in full; repricing it with the same inputs adjusts nothing, whatever the rules say (absent in stores finalised before it existed: nothing is derived, the next finalised repricing writes it) |

use chrono::NaiveDate;
use rust_decimal::Decimal;
use serde::{Deserialize, Serialize};
use serde_json::value::RawValue;
use serde_json::Value;

/// Version of the values this module writes.
pub const BOOK_VERSION: u32 = 1;

/// A store failure, naming the key.
#[derive(Debug, thiserror::Error)]
pub enum BookError {
    /// The underlying store failed.
    #[error("statements store: {0}")]
    Store(String),
    /// A stored value could not be decoded.
    #[error("statements store: unreadable value at key `{key}`: {message}")]
    Corrupt {
        /// The key, with `␟` for separators.
        key: String,
        /// The decoding error.
        message: String,
    },
}

/// Key/value storage for the statements book.
pub trait StatementBook {
    /// One value.
    fn get(&self, key: &str) -> Result<Option<Value>, BookError>;
    /// Values whose key starts with `prefix`, in key order.
    fn scan_prefix(&self, prefix: &str) -> Result<Vec<(String, Value)>, BookError>;
    /// [`StatementBook::scan_prefix`] one entry at a time, for prefixes as
    /// large as the ledger of paid claims (a million entries held at once
    /// as JSON values took ~1 GB).
    fn each_prefix(
        &self,
        prefix: &str,
        f: &mut dyn FnMut(String, Value) -> Result<(), BookError>,
    ) -> Result<(), BookError> {
        for (k, v) in self.scan_prefix(prefix)? {
            f(k, v)?;
        }
        Ok(())
    }
    /// The first key at or after `from`, without reading its value, for
    /// walking the distinct parts of a large prefix.
    fn first_key_from(&self, from: &str) -> Result<Option<String>, BookError>;
    /// Puts (`Some`) and deletes (`None`), atomically.
    fn apply(&self, batch: Vec<(String, Option<Encoded>)>) -> Result<(), BookError>;
    /// Makes everything applied so far survive a process crash.
    fn flush(&self) -> Result<(), BookError>;
    /// `Err` when the disk holding the book has not room for about `bytes`
    /// more: checked before a commit writes anything, so a full disk
    /// refuses it whole instead of failing (or, in sled, blocking) part way.
    fn room_for(&self, _bytes: u64) -> Result<(), BookError> {
        Ok(())
    }
}

/// What a complete redo log of one commit holds ([`commit`]).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct RedoHead {
    /// [`BOOK_VERSION`].
    pub book_version: u32,
    /// SHA-256 of each part's text, in order.
    pub parts: Vec<String>,
}

/// Bytes of a redo part (the batch's JSON, cut between entries).
const REDO_PART_BYTES: usize = 4 << 20;

/// Serialises commits and recoveries of this process: a recovery must not
/// take a commit in progress for one cut short.
static COMMITS: std::sync::Mutex<()> = std::sync::Mutex::new(());

fn sha256_hex(bytes: &[u8]) -> String {
    use sha2::Digest as _;
    format!("{:x}", sha2::Sha256::digest(bytes))
}

/// Applies `batch` (puts and deletes of one program's book) so that no
/// failure part way leaves part of it: sled's `apply_batch` is atomic
/// against a crash, but a write that fails on a full disk left some of a
/// finalised period's entries and not others (QA28-A F1: claims in the
/// surviving `paid` ledger entries were then never paid). The batch is
/// first written whole as a redo log (`redo␟<program>␟<n>` parts, flushed,
/// then `redo␟<program>␟head` naming their SHA-256s, flushed: the commit
/// point), then applied a part at a time in order and flushed, then the
/// log is removed. [`recover`] completes a log whose head is there and
/// drops one whose head is not. Between the parts a reader in this process
/// sees part of the batch; writers take turns ([`crate::schedule::hooks::exclusive`]).
/// Putting a key after deleting it in one batch leaves it put, as in one
/// sled batch.
pub fn commit(
    book: &dyn StatementBook,
    program: &str,
    batch: Vec<(String, Option<Encoded>)>,
) -> Result<(), BookError> {
    commit_in_parts(book, program, batch, REDO_PART_BYTES)
}

/// [`commit`] with redo parts of about `part_bytes`.
fn commit_in_parts(
    book: &dyn StatementBook,
    program: &str,
    batch: Vec<(String, Option<Encoded>)>,
    part_bytes: usize,
) -> Result<(), BookError> {
    let _one = COMMITS.lock().unwrap_or_else(|p| p.into_inner());
    recover_locked(book, program)?;
    // Each part is written as it is made (one part in memory beside the
    // batch, not a second copy of a finalise's gigabyte), after a check
    // that the disk has room for it and sled's copies of it.
    let mut log = RedoParts {
        book,
        program,
        hashes: Vec::new(),
        bytes: 0,
    };
    let mut part = String::from("[");
    // Where each part's entries end in `batch`.
    let mut ends = Vec::new();
    for (i, (k, v)) in batch.iter().enumerate() {
        if part.len() > 1 {
            part.push(',');
        }
        part.push_str(
            &serde_json::to_string(&(k, v)).map_err(|e| BookError::Store(e.to_string()))?,
        );
        if part.len() >= part_bytes {
            part.push(']');
            log.write(std::mem::replace(&mut part, String::from("[")))?;
            ends.push(i + 1);
        }
    }
    // The last part; an empty batch still makes one (`[]`).
    if part.len() > 1 || log.hashes.is_empty() {
        part.push(']');
        log.write(part)?;
    }
    let RedoParts { hashes, bytes, .. } = log;
    book.flush()?;
    // The batch and sled's copies of it, before the commit point: a full
    // disk refuses it here, with the log dropped, not part way.
    if let Err(e) = book.room_for(2 * bytes + (16 << 20)) {
        drop_log(book, program, hashes.len())?;
        return Err(e);
    }
    let head = RedoHead {
        book_version: BOOK_VERSION,
        parts: hashes,
    };
    book.apply(vec![(redo_head_key(program), Some(encode(&head)))])?;
    book.flush()?;
    // Past the commit point the log makes the batch whole, so it is
    // applied a part at a time, in order: sled keeps every version of a
    // leaf one batch makes until the batch ends, and a 12,000-statement
    // finalise as one batch peaked at 6.5 GB (QA32-B H1).
    ends.push(batch.len());
    let mut entries = batch.into_iter();
    let mut start = 0;
    for end in ends {
        book.apply(entries.by_ref().take(end - start).collect())?;
        start = end;
    }
    book.flush()?;
    drop_log(book, program, head.parts.len())
}

/// The parts of a redo log being written ([`commit`]).
struct RedoParts<'a> {
    book: &'a dyn StatementBook,
    program: &'a str,
    hashes: Vec<String>,
    bytes: u64,
}

impl RedoParts<'_> {
    /// Writes the next part, once the disk has room for it and sled's
    /// copies of it.
    fn write(&mut self, part: String) -> Result<(), BookError> {
        self.book.room_for(3 * part.len() as u64 + (16 << 20))?;
        self.bytes += part.len() as u64;
        self.hashes.push(sha256_hex(part.as_bytes()));
        let key = redo_part_key(self.program, self.hashes.len() - 1);
        self.book.apply(vec![(key, Some(encode(part.as_str())))])
    }
}

/// Completes or drops what a commit cut short left (see [`commit`]), for
/// every program: run before the book is read. A complete log is applied
/// again (its puts and deletes are the values the commit meant to leave);
/// parts without a head are removed.
pub fn recover(book: &dyn StatementBook) -> Result<(), BookError> {
    let _one = COMMITS.lock().unwrap_or_else(|p| p.into_inner());
    let mut programs = std::collections::BTreeSet::new();
    book.each_prefix(&prefix(&["redo"]), &mut |k, _| {
        if let Some(program) = k.split('\x1f').nth(1) {
            programs.insert(program.to_owned());
        }
        Ok(())
    })?;
    for program in programs {
        recover_locked(book, &program)?;
    }
    Ok(())
}

fn recover_locked(book: &dyn StatementBook, program: &str) -> Result<(), BookError> {
    let head_key = redo_head_key(program);
    let Some(head) = book.get(&head_key)? else {
        let stray = book.scan_prefix(&prefix(&["redo", program]))?;
        if !stray.is_empty() {
            book.apply(stray.into_iter().map(|(k, _)| (k, None)).collect())?;
            book.flush()?;
        }
        return Ok(());
    };
    let head: RedoHead = decode(&head_key, head)?;
    let damaged = |message: String| BookError::Corrupt {
        key: printable(&head_key),
        message,
    };
    // Every part is checked before any is applied (a damaged log is
    // reported with the book as it was), then each is read again and
    // applied in order, as `commit` applies them: one part decoded at a
    // time, not the whole finalise.
    let part = |n: usize| -> Result<Vec<(String, Option<Encoded>)>, BookError> {
        let text = match book.get(&redo_part_key(program, n))? {
            Some(Value::String(t)) => t,
            _ => return Err(damaged(format!("part {n} of the write log is missing"))),
        };
        if sha256_hex(text.as_bytes()) != head.parts[n] {
            return Err(damaged(format!(
                "part {n} of the write log does not match its hash"
            )));
        }
        serde_json::from_str(&text).map_err(|e| damaged(e.to_string()))
    };
    let mut entries = 0;
    // The periods it records (QA42b B-M1: the warning named no period).
    let period_prefix = prefix(&["period", program]);
    let mut periods = Vec::new();
    for n in 0..head.parts.len() {
        let part = part(n)?;
        entries += part.len();
        periods.extend(
            part.iter()
                .filter_map(|(k, _)| k.strip_prefix(&period_prefix))
                .map(str::to_owned),
        );
    }
    let periods = if periods.is_empty() {
        "none".to_owned()
    } else {
        periods.join(", ")
    };
    tracing::warn!(
        program,
        periods = %periods,
        entries,
        "statements: a write cut short (a full disk, a crash) is completed from its log"
    );
    for n in 0..head.parts.len() {
        book.apply(part(n)?)?;
    }
    book.flush()?;
    drop_log(book, program, head.parts.len())
}

fn drop_log(book: &dyn StatementBook, program: &str, parts: usize) -> Result<(), BookError> {
    // The head first: parts without a head are dropped by a later recovery.
    book.apply(vec![(redo_head_key(program), None)])?;
    book.apply(
        (0..parts)
            .map(|n| (redo_part_key(program, n), None))
            .collect(),
    )?;
    book.flush()
}

fn redo_head_key(program: &str) -> String {
    key(&["redo", program, "head"])
}

fn redo_part_key(program: &str, n: usize) -> String {
    key(&["redo", program, &format!("{n:08}")])
}

fn key_text(k: &[u8]) -> String {
    String::from_utf8_lossy(k).into_owned()
}

/// The daemon store's `statements` domain tree.
#[derive(Debug, Clone)]
pub struct StoreBook {
    store: crate::store::Store,
    tree: crate::store::DomainTree,
}

impl StoreBook {
    /// Opens the `statements` tree of a store, completing or dropping what
    /// a write cut short left ([`recover`]).
    pub fn open(store: &crate::store::Store) -> Result<StoreBook, BookError> {
        let book = StoreBook::open_as_is(store)?;
        recover(&book)?;
        Ok(book)
    }

    /// [`StoreBook::open`] without the recovery, for a glance that must not
    /// wait for a commit in progress (`/status`).
    pub fn open_as_is(store: &crate::store::Store) -> Result<StoreBook, BookError> {
        let tree = store
            .domain("statements")
            .map_err(|e| BookError::Store(e.to_string()))?;
        Ok(StoreBook {
            store: store.clone(),
            tree,
        })
    }
}

impl StatementBook for StoreBook {
    fn get(&self, key: &str) -> Result<Option<Value>, BookError> {
        self.tree
            .get::<Value>(key)
            .map_err(|e| BookError::Store(e.to_string()))
    }
    fn scan_prefix(&self, prefix: &str) -> Result<Vec<(String, Value)>, BookError> {
        self.tree
            .scan_prefix::<Value>(prefix)
            .map(|r| r.map_err(|e| BookError::Store(e.to_string())))
            .collect()
    }
    fn each_prefix(
        &self,
        prefix: &str,
        f: &mut dyn FnMut(String, Value) -> Result<(), BookError>,
    ) -> Result<(), BookError> {
        for r in self.tree.scan_prefix::<Value>(prefix) {
            let (k, v) = r.map_err(|e| BookError::Store(e.to_string()))?;
            f(k, v)?;
        }
        Ok(())
    }
    fn first_key_from(&self, from: &str) -> Result<Option<String>, BookError> {
        match self.tree.range_from_raw(from.as_bytes()).next() {
            None => Ok(None),
            Some(r) => r
                .map(|(k, _)| Some(key_text(&k)))
                .map_err(|e| BookError::Store(e.to_string())),
        }
    }
    fn apply(&self, batch: Vec<(String, Option<Encoded>)>) -> Result<(), BookError> {
        // The store's value format (`codec::encode_json`) of each text as
        // it is: written verbatim, never parsed.
        self.tree
            .apply_raw(
                batch
                    .into_iter()
                    .map(|(k, v)| {
                        (
                            k.into_bytes(),
                            v.map(|v| crate::store::codec::encode_json(&*v.0)),
                        )
                    })
                    .collect(),
            )
            .map_err(|e| BookError::Store(e.to_string()))
    }
    fn flush(&self) -> Result<(), BookError> {
        self.store
            .fsync()
            .map_err(|e| BookError::Store(e.to_string()))
    }
    fn room_for(&self, bytes: u64) -> Result<(), BookError> {
        let dir = self.store.dir();
        let Ok(fs) = rustix::fs::statvfs(dir) else {
            return Ok(());
        };
        let free = fs.f_bavail.saturating_mul(fs.f_frsize);
        if free >= bytes {
            return Ok(());
        }
        Err(BookError::Store(no_room(dir, free, bytes)))
    }
}

/// [`StoreBook::room_for`]'s refusal: what is free rounded down, what is
/// needed rounded up, and the difference (QA44a A-L1: both rounded up read
/// "has 17 MiB free; … needs about 17 MiB"). `free < bytes`.
fn no_room(dir: &std::path::Path, free: u64, bytes: u64) -> String {
    // KiB below 1 MiB, else MiB to a tenth (QA45 R-L4: whole MiB read
    // "10 MiB free; needs about 18 MiB; free at least 7 MiB more").
    let size = |b: u64, up: bool| {
        let (unit, tenths) = if b < 1 << 20 {
            (1 << 10, false)
        } else {
            (1 << 20, true)
        };
        let b = if tenths { b * 10 } else { b };
        let n = if up { b.div_ceil(unit) } else { b / unit };
        match tenths {
            true => format!("{}.{} MiB", n / 10, n % 10),
            false => format!("{n} KiB"),
        }
    };
    format!(
        "the disk holding {} has {} free; recording these statements needs about {} \
         (with a 16 MiB reserve): free at least {} more and rerun (nothing was recorded)",
        dir.display(),
        size(free, false),
        size(bytes, true),
        size(bytes.saturating_sub(free), true)
    )
}

fn sled_err(e: sled::Error) -> BookError {
    BookError::Store(e.to_string())
}

impl StatementBook for sled::Tree {
    fn get(&self, key: &str) -> Result<Option<Value>, BookError> {
        match sled::Tree::get(self, key.as_bytes()).map_err(sled_err)? {
            None => Ok(None),
            Some(v) => serde_json::from_slice(&v)
                .map(Some)
                .map_err(|e| BookError::Corrupt {
                    key: printable(key),
                    message: e.to_string(),
                }),
        }
    }
    fn scan_prefix(&self, prefix: &str) -> Result<Vec<(String, Value)>, BookError> {
        sled::Tree::scan_prefix(self, prefix.as_bytes())
            .map(|r| {
                let (k, v) = r.map_err(sled_err)?;
                let key = String::from_utf8_lossy(&k).into_owned();
                let value = serde_json::from_slice(&v).map_err(|e| BookError::Corrupt {
                    key: printable(&key),
                    message: e.to_string(),
                })?;
                Ok((key, value))
            })
            .collect()
    }
    fn first_key_from(&self, from: &str) -> Result<Option<String>, BookError> {
        match self.range(from.as_bytes()..).next() {
            None => Ok(None),
            Some(r) => r.map(|(k, _)| Some(key_text(&k))).map_err(sled_err),
        }
    }
    fn apply(&self, batch: Vec<(String, Option<Encoded>)>) -> Result<(), BookError> {
        let mut b = sled::Batch::default();
        for (k, v) in batch {
            match v {
                Some(v) => b.insert(k.as_bytes(), v.text().as_bytes()),
                None => b.remove(k.as_bytes()),
            }
        }
        self.apply_batch(b).map_err(sled_err)
    }
    fn flush(&self) -> Result<(), BookError> {
        sled::Tree::flush(self).map(|_| ()).map_err(sled_err)
    }
}

/// A key with separators shown as `␟`, for messages.
pub fn printable(key: &str) -> String {
    key.replace('\x1f', "␟")
}

/// Joins key parts with the separator.
pub fn key(parts: &[&str]) -> String {
    parts.join("\x1f")
}

/// Prefix of all keys of `kind` under `parts`.
pub fn prefix(parts: &[&str]) -> String {
    let mut k = parts.join("\x1f");
    k.push('\x1f');
    k
}

/// The files of one partner's statement and their hashes.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct PartnerFiles {
    /// Partner id.
    pub partner_id: String,
    /// File name stem (`<stem>.json`, `.csv`, `.html`).
    pub stem: String,
    /// SHA-256 of the canonical JSON (the statement's content hash).
    pub content_hash: String,
    /// SHA-256 of the `.json` file's bytes.
    pub json_sha256: String,
    /// SHA-256 of the `.csv` file's bytes.
    pub csv_sha256: String,
    /// SHA-256 of the `.html` file's bytes.
    pub html_sha256: String,
}

/// What is recorded of a period once its files are durable.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct PeriodRecord {
    /// [`BOOK_VERSION`].
    pub book_version: u32,
    /// Program id.
    pub program: String,
    /// Period name.
    pub period: String,
    /// First day of the period (for ordering).
    pub period_start: NaiveDate,
    /// `draft` or `finalised`.
    pub status: super::model::Status,
    /// The version stamped on the statements.
    pub version: u32,
    /// Every partner's files, in partner order.
    pub partners: Vec<PartnerFiles>,
    /// SHA-256 of `summary.csv`.
    pub summary_sha256: String,
    /// `held_back.csv` as written (claims payable but left out of the
    /// period, and why); absent when none was (and in records written
    /// before 2026-11-29). Kept whole so a finalised period's file is
    /// reproduced and verified like the statements.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub held_back_csv: Option<String>,
    /// When this version was recorded: generated (a draft) or finalised.
    /// Not in any file (a file regenerated from the store stays byte for
    /// byte the same); `statements show` prints it, the instant to give
    /// `reckon reconcile report --as-of` (QA18 A2). None in records
    /// written before 2026-11-30.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub recorded_at: Option<chrono::DateTime<chrono::Utc>>,
}

/// A finalised statement as recorded: its canonical JSON (so the files can
/// be reproduced and verified without the data it came from).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct FinalRecord {
    /// [`BOOK_VERSION`].
    pub book_version: u32,
    /// The canonical JSON, as a string.
    pub canonical_json: String,
    /// Its SHA-256.
    pub content_hash: String,
}

/// A partner's balance carried out of its latest finalised statement.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Balance {
    /// The period of that statement.
    pub period: String,
    /// The amount carried into the next statement.
    pub carried_out: Decimal,
}

/// Decodes a stored value, naming the key on failure.
pub fn decode<T: serde::de::DeserializeOwned>(key: &str, v: Value) -> Result<T, BookError> {
    serde_json::from_value(v).map_err(|e| BookError::Corrupt {
        key: printable(key),
        message: e.to_string(),
    })
}

/// Encodes a value as its JSON text, the form a write batch holds it in
/// ([`Encoded`]).
pub fn encode<T: Serialize + ?Sized>(v: &T) -> Encoded {
    Encoded(serde_json::value::to_raw_value(v).unwrap_or_else(|_| null()))
}

fn null() -> Box<RawValue> {
    RawValue::from_string("null".to_owned()).expect("`null` is JSON")
}

/// A value to write, as its JSON text ([`encode`]). A write batch holds
/// its values so, from [`encode`] to the store: a finalise's batch of
/// 254,000 paid claims held as [`Value`] trees, each several times the
/// size of its text, then copied into the redo log's text and encoded
/// again by the store, was a fifth of its memory (QA32-B H1). The redo
/// log ([`commit`]) and [`StoreBook`] write the text as it is. Fields are
/// in the order the type serialises them (a [`Value`]'s are sorted): the
/// book's values are read by decoding, never compared as text.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(transparent)]
pub struct Encoded(Box<RawValue>);

impl Encoded {
    /// The JSON text.
    pub fn text(&self) -> &str {
        self.0.get()
    }

    /// The value parsed.
    pub fn value(&self) -> Result<Value, BookError> {
        serde_json::from_str(self.text()).map_err(|e| BookError::Store(e.to_string()))
    }
}

impl From<Value> for Encoded {
    fn from(v: Value) -> Encoded {
        encode(&v)
    }
}

/// An in-memory book (tests, dry runs). Not durable.
#[derive(Debug, Default)]
pub struct MemoryBook {
    map: std::sync::Mutex<std::collections::BTreeMap<String, Value>>,
}

impl MemoryBook {
    /// An empty book.
    pub fn new() -> MemoryBook {
        MemoryBook::default()
    }
    fn lock(&self) -> std::sync::MutexGuard<'_, std::collections::BTreeMap<String, Value>> {
        self.map.lock().unwrap_or_else(|p| p.into_inner())
    }
}

impl StatementBook for MemoryBook {
    fn get(&self, key: &str) -> Result<Option<Value>, BookError> {
        Ok(self.lock().get(key).cloned())
    }
    fn scan_prefix(&self, prefix: &str) -> Result<Vec<(String, Value)>, BookError> {
        Ok(self
            .lock()
            .range(prefix.to_string()..)
            .take_while(|(k, _)| k.starts_with(prefix))
            .map(|(k, v)| (k.clone(), v.clone()))
            .collect())
    }
    fn each_prefix(
        &self,
        prefix: &str,
        f: &mut dyn FnMut(String, Value) -> Result<(), BookError>,
    ) -> Result<(), BookError> {
        let m = self.lock();
        for (k, v) in m
            .range(prefix.to_string()..)
            .take_while(|(k, _)| k.starts_with(prefix))
        {
            f(k.clone(), v.clone())?;
        }
        Ok(())
    }
    fn first_key_from(&self, from: &str) -> Result<Option<String>, BookError> {
        Ok(self
            .lock()
            .range(from.to_string()..)
            .next()
            .map(|(k, _)| k.clone()))
    }
    fn apply(&self, batch: Vec<(String, Option<Encoded>)>) -> Result<(), BookError> {
        // Parsed before anything is put: the batch stays atomic.
        let batch = batch
            .into_iter()
            .map(|(k, v)| Ok((k, v.map(|v| v.value()).transpose()?)))
            .collect::<Result<Vec<_>, BookError>>()?;
        let mut m = self.lock();
        for (k, v) in batch {
            match v {
                Some(v) => {
                    m.insert(k, v);
                }
                None => {
                    m.remove(&k);
                }
            }
        }
        Ok(())
    }
    fn flush(&self) -> Result<(), BookError> {
        Ok(())
    }
}

#[cfg(test)]
mod commit_tests {
    use super::*;
    use serde_json::json;

    /// A [`MemoryBook`] whose `fail_at`-th apply (and every later one)
    /// fails, as sled's writes do once a full disk refused one.
    struct Failing<'a> {
        book: &'a MemoryBook,
        applies: std::cell::Cell<usize>,
        fail_at: usize,
        room: bool,
    }

    impl StatementBook for Failing<'_> {
        fn get(&self, key: &str) -> Result<Option<Value>, BookError> {
            self.book.get(key)
        }
        fn scan_prefix(&self, prefix: &str) -> Result<Vec<(String, Value)>, BookError> {
            self.book.scan_prefix(prefix)
        }
        fn first_key_from(&self, from: &str) -> Result<Option<String>, BookError> {
            self.book.first_key_from(from)
        }
        fn apply(&self, batch: Vec<(String, Option<Encoded>)>) -> Result<(), BookError> {
            let n = self.applies.get() + 1;
            self.applies.set(n);
            if n >= self.fail_at {
                // Part of the batch lands, as QA28-A F1 saw on disk.
                let half = batch.len() / 2;
                self.book.apply(batch.into_iter().take(half).collect())?;
                return Err(BookError::Store("No space left on device".into()));
            }
            self.book.apply(batch)
        }
        fn flush(&self) -> Result<(), BookError> {
            Ok(())
        }
        fn room_for(&self, bytes: u64) -> Result<(), BookError> {
            match self.room {
                true => Ok(()),
                false => Err(BookError::Store(format!("no room for {bytes}"))),
            }
        }
    }

    #[test]
    fn a_refusal_for_room_never_reads_as_enough() {
        let mib = 1u64 << 20;
        let text = no_room(
            std::path::Path::new("/d"),
            17 * mib + mib / 3,
            17 * mib + mib / 2,
        );
        assert_eq!(
            text,
            "the disk holding /d has 17.3 MiB free; recording these statements needs about 17.5 MiB \
             (with a 16 MiB reserve): free at least 171 KiB more and rerun (nothing was recorded)"
        );
        let text = no_room(
            std::path::Path::new("/d"),
            10 * mib + mib * 95 / 100,
            17 * mib + mib / 20,
        );
        assert!(
            text.contains("has 10.9 MiB free; recording these statements needs about 17.1 MiB")
                && text.contains("free at least 6.1 MiB more"),
            "{text}"
        );
    }

    fn contents(book: &MemoryBook) -> Vec<(String, Value)> {
        book.scan_prefix("").unwrap()
    }

    fn batch() -> Vec<(String, Option<Encoded>)> {
        let mut b: Vec<(String, Option<Encoded>)> = (0..40)
            .map(|i| {
                (
                    key(&["paid", "p", "net", &format!("c{i:02}")]),
                    Some(json!({ "i": i }).into()),
                )
            })
            .collect();
        b.push((key(&["paid", "p", "net", "c03"]), None));
        b.push((
            key(&["paid", "p", "net", "c03"]),
            Some(json!({ "again": 3 }).into()),
        ));
        b.push((key(&["final", "p", "old"]), None));
        b.push((
            key(&["period", "p", "2026-10"]),
            Some(json!("finalised").into()),
        ));
        b
    }

    /// QA28-A F1: a commit that fails at any write leaves, once the book is
    /// recovered, either nothing of its batch or all of it, never part.
    #[test]
    fn a_commit_cut_short_anywhere_recovers_to_nothing_or_everything() {
        cut_short_anywhere(REDO_PART_BYTES, 8);
    }

    /// The same with the batch in many parts, which a commit applies one
    /// at a time after its commit point (QA32-B H1): cut between any two,
    /// the recovery completes it; a key deleted and put again in the batch
    /// (a moved claim's released line, written anew) ends put, as in one
    /// batch.
    #[test]
    fn a_commit_in_many_parts_cut_short_anywhere_recovers_to_nothing_or_everything() {
        let whole = MemoryBook::new();
        commit_in_parts(&whole, "p", batch(), 64).unwrap();
        let one = MemoryBook::new();
        one.apply(batch()).unwrap();
        assert_eq!(contents(&whole), contents(&one));
        let readded = key(&["paid", "p", "net", "c03"]);
        assert_eq!(whole.get(&readded).unwrap(), Some(json!({ "again": 3 })));
        cut_short_anywhere(64, 2 * batch().len() + 8);
    }

    fn cut_short_anywhere(part_bytes: usize, writes: usize) {
        let before = vec![
            (
                key(&["final", "p", "old"]),
                Some(json!("kept until the commit").into()),
            ),
            (
                key(&["period", "p", "2026-10"]),
                Some(json!("draft").into()),
            ),
        ];
        let whole = MemoryBook::new();
        whole.apply(before.clone()).unwrap();
        commit_in_parts(&whole, "p", batch(), part_bytes).unwrap();
        let after = contents(&whole);
        assert!(
            after.iter().all(|(k, _)| !k.starts_with("redo")),
            "{after:?}"
        );
        let old = MemoryBook::new();
        old.apply(before.clone()).unwrap();
        let old = contents(&old);
        let mut outcomes = std::collections::BTreeSet::new();
        for fail_at in 1..=writes {
            let book = MemoryBook::new();
            book.apply(before.clone()).unwrap();
            let failing = Failing {
                book: &book,
                applies: 0.into(),
                fail_at,
                room: true,
            };
            let r = commit_in_parts(&failing, "p", batch(), part_bytes);
            // The next process: the book is recovered before it is read.
            recover(&book).unwrap();
            let now = contents(&book);
            if r.is_ok() || now == after {
                assert_eq!(now, after, "fail_at {fail_at}");
                outcomes.insert("all");
            } else {
                assert_eq!(now, old, "fail_at {fail_at}");
                outcomes.insert("none");
            }
        }
        assert_eq!(outcomes.len(), 2, "both cases were cut: {outcomes:?}");
    }

    /// A commit to the store writes each value's text as the store encodes
    /// any value (its version byte, then the JSON), without a [`Value`] in
    /// between, and it reads back as what was encoded; a redo log written
    /// while batches held [`Value`]s (fields sorted) still recovers.
    #[test]
    fn the_store_book_writes_each_text_as_it_is() {
        let dir = tempfile::tempdir().unwrap();
        let store = crate::store::Store::open(dir.path()).unwrap();
        let book = StoreBook::open(&store).unwrap();
        let bal = Balance {
            period: "2026-10".into(),
            carried_out: Decimal::new(-1234, 2),
        };
        let k = key(&["balance", "p", "awin:p1"]);
        commit(&book, "p", vec![(k.clone(), Some(encode(&bal)))]).unwrap();
        let raw = book.tree.get_raw(k.as_bytes()).unwrap().unwrap();
        assert_eq!(&raw[..], &crate::store::codec::encode_json(&bal)[..]);
        let read: Balance = decode(&k, book.get(&k).unwrap().unwrap()).unwrap();
        assert_eq!(read, bal);

        let old = key(&["balance", "p", "awin:p2"]);
        let text =
            serde_json::to_string(&[(&old, Some(serde_json::to_value(&bal).unwrap()))]).unwrap();
        let head = RedoHead {
            book_version: BOOK_VERSION,
            parts: vec![sha256_hex(text.as_bytes())],
        };
        book.apply(vec![
            (redo_part_key("p", 0), Some(encode(text.as_str()))),
            (redo_head_key("p"), Some(encode(&head))),
        ])
        .unwrap();
        recover(&book).unwrap();
        let read: Balance = decode(&old, book.get(&old).unwrap().unwrap()).unwrap();
        assert_eq!(read, bal);
        assert!(book.scan_prefix("redo").unwrap().is_empty());
    }

    /// A disk without room for the commit refuses it before anything is
    /// written (QA28-A F2: sled blocked forever part way).
    #[test]
    fn a_commit_without_room_writes_nothing() {
        let book = MemoryBook::new();
        let failing = Failing {
            book: &book,
            applies: 0.into(),
            fail_at: usize::MAX,
            room: false,
        };
        let e = commit(&failing, "p", batch()).unwrap_err();
        assert!(e.to_string().contains("no room for"), "{e}");
        assert!(contents(&book).is_empty());
    }

    /// A log part that does not match its head is damage, not a commit to
    /// complete: it is named, and the log is kept for the restore to
    /// replace (never dropped as if nothing had been written).
    #[test]
    fn a_damaged_log_is_refused() {
        let book = MemoryBook::new();
        // The third write (the batch) fails: the head is there.
        let failing = Failing {
            book: &book,
            applies: 0.into(),
            fail_at: 3,
            room: true,
        };
        assert!(commit(&failing, "p", batch()).is_err());
        book.apply(vec![(redo_part_key("p", 0), Some(encode("[]")))])
            .unwrap();
        let e = recover(&book).unwrap_err();
        assert!(
            e.to_string().contains("redo␟p␟head")
                && e.to_string()
                    .contains("part 0 of the write log does not match its hash"),
            "{e}"
        );
        assert!(book.get(&redo_head_key("p")).unwrap().is_some());
    }
}
