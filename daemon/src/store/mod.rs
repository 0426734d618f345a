//! The sled store: canonical records with revisions, checkpoints, run history,
//! the change log, and named trees for domain modules.
//!
//! CONTRACT (used by sync, reconcile, payout, kpi, server): the signatures in
//! this file are the narrow interface every other module codes against (upsert
//! with revision, scans by key range, atomic batch with checkpoint), so that a
//! server database could be added later as a second backend. sled 0.34.7 is the
//! embedded default and the only backend today.
//!
//! What it is not: it does not know about platforms, reconciliation or
//! statements; domain modules keep their own data in [`DomainTree`]s.
//!
//! ## Layout (schema 3)
//! | tree | key | value |
//! |---|---|---|
//! | `data` | `b` · kind (`s`/`c`/`o`) · `source/` · last key of the block | a [`block`] of ~4 KB of records, each a [`Stored`] value: header + binary record (see [`codec`], [`binrec`]) |
//! | `data` | `v` · kind · `source/key` · `\0` · revision (u32 BE) | superseded time + old record |
//! | `data` | `c` · first seq (u64 BE) | one change-log page: the changes of one commit, seq = first, first+1, … |
//! | `data` | `k` · `source/stream` | a [`Checkpoint`] |
//! | `data` | `m` · `change_seq` / `count/<kind>/<source>` | counters (u64 BE) |
//! | `runs` | `source/` + start (i64 µs BE) | a [`RunRecord`] |
//! | `meta` | name | schema version, last fire per connector |
//! | any other name | domain key | versioned JSON ([`DomainTree`]) or the module's own bytes |
//!
//! Schema 2 kept one `r` · kind · `source/key` entry per record; sled's
//! per-key cost made that the whole cost of an ingest, so schema 3 groups
//! neighbouring records into blocks (see [`block`]); open migrates.
//!
//! Everything one page commits (records, revisions, its change-log page,
//! counters, the checkpoint) lives in the one `data` tree, so it is written
//! by one `sled::Tree::apply_batch`, which sled applies atomically (and
//! recovers all-or-nothing after a crash). sled 0.34's multi-tree
//! transactions read every key they write first and cost ~4× more; schema 1
//! used them (see ARCHITECTURE.md, departures). Commits are serialised by a
//! mutex so the revision check (done against the committed state just before
//! the batch) cannot race another writer in this process, and the directory
//! lock keeps other processes out.
pub mod binrec;
pub mod block;
pub mod cli;
pub mod codec;
pub mod warm;
pub mod writer;

use chrono::{DateTime, Utc};
use plugin_api::protocol::{Checkpoint, Conversion, ConversionStatus, Record, RecordKind};
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;
use std::fs::File;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};

/// The schema version this binary writes. Older stores are migrated at open.
///
/// Raised also when a release starts keeping state that older binaries
/// would open but not keep up to date (4: the statement book's bonus and
/// released-lines ledgers, judging rules past 3, statement formats past
/// 3): an older binary then refuses the store (`SchemaTooNew`) instead of
/// writing beside state it does not know (QA33-A H2: a release of
/// 2026-11-29 finalised a period on a store this release had used, and the
/// bonus ledger, which it never updated, hid a take-back of 75.00).
pub const SCHEMA_VERSION: u32 = 4;

/// Tree names the store itself uses; [`Store::domain`] refuses them.
pub const RESERVED_TREES: &[&str] = &[
    "data",
    "spend",
    "conversions",
    "orders",
    "revisions",
    "changes",
    "checkpoints",
    "runs",
    "meta",
];

/// Errors from the store. Every message names the tree and key concerned.
#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    /// Another process holds the data directory.
    #[error(
        "data directory {path} is in use by another reckon process{}; {}",
        match holder(*pid, command.as_deref()) {
            Some(h) => format!(" ({h}, lock held)"),
            // No live reckon wrote the lock file (ops QA13 OPS-12: the
            // README's backup recipe holds it with `flock`).
            None => " or a backup holding reckon.lock (lock held)".to_owned(),
        },
        // QA42b B-L3: "stop it first" told an operator to stop a backfill
        // or a finalize that ends on its own (stopping a finalize is what
        // leaves it interrupted).
        match pid.and_then(is_daemon_process) {
            Some(true) => "stop it first (one daemon per data directory)",
            _ => "wait for it to finish and run this again (or stop it)",
        }
    )]
    Locked {
        path: String,
        /// The holder's process id, as it wrote it into the lock file.
        pid: Option<u32>,
        /// The holder's command line ([`process_command`]), where known.
        command: Option<String>,
    },
    /// The data directory held a store (its lock file is there) but the
    /// sled files are gone: opening would silently start an empty store.
    #[error(
        "data_dir {data_dir} held a store but {missing} is missing: restore it from a backup (see README, Backup and restore), or, to start a new empty store, remove {lock}"
    )]
    Missing {
        data_dir: String,
        missing: String,
        lock: String,
    },
    /// The data directory or a store file in it cannot be written (its
    /// permissions, or a read-only mount). sled opens its files for
    /// writing, so this refuses the commands that only read too.
    #[error(
        "data_dir {data_dir} is not writable ({user}): {path}: {cause}. Reckon opens its store for writing, also for commands that only read it (`records export`, `statements show`, `reconcile report`, `kpi`): run the command as the user that owns {data_dir} (the daemon's user, e.g. `sudo -u reckon reckon ...`), or fix the permissions or mount; to read it without write access, copy the whole data_dir with no reckon process writing it (README, Backup and restore) and point the config's `data_dir` at the copy"
    )]
    NotWritable {
        data_dir: String,
        /// The file or directory refused.
        path: String,
        /// Effective uid and gid of this process.
        user: String,
        /// The OS error.
        cause: String,
    },
    /// The data directory's filesystem is mounted read-only (QA52 L4: the
    /// commands said to run as the owner or fix the permissions, where
    /// `config check` said to remount).
    #[error(
        "data_dir {data_dir} is on a read-only filesystem ({path}: Read-only file system (os error 30)): remount it read-write (`mount -o remount,rw` on its mount point, or fix `/etc/fstab`). Reckon opens its store for writing, also for commands that only read it (`records export`, `statements show`, `reconcile report`, `kpi`); to read it where it is, copy the whole data_dir to a writable directory (README, Backup and restore) and point the config's `data_dir` at the copy"
    )]
    ReadOnlyFilesystem {
        data_dir: String,
        /// The file or directory refused.
        path: String,
    },
    /// A running reckon (the daemon) of another user holds the data
    /// directory, which this user may neither write nor reach through the
    /// daemon's command socket (QA28-E F8: the error said to `chown -R`
    /// the live directory to this user, which would stop the daemon).
    /// Boxed, as [`StoreError::WouldCreateInAnothers`].
    #[error("{0}")]
    HeldByAnotherUser(Box<HeldBy>),
    /// Root was about to open a store that another user (the daemon's)
    /// owns: sled would leave root-owned files in it, which the owner
    /// cannot write, and the daemon would then refuse to start.
    #[error(
        "{path} belongs to {owner}, and this command runs as root: it would leave root-owned files in the store that {who} cannot write, and the daemon (running as {who}) would then refuse to start. Nothing was changed. Run it as the store's owner: `sudo -u {sudo} {command}` (or start the daemon: it runs these commands for any user who may use its socket)"
    )]
    OwnedByAnother {
        /// The data directory, or its `store/`, that another user owns.
        path: String,
        /// Its owner: `reckon (uid 998)`, or `uid 998` without a name.
        owner: String,
        /// Its owner's name, or `uid 998`.
        who: String,
        /// The `sudo -u` argument for the owner.
        sudo: String,
        /// This process's command line.
        command: String,
    },
    /// Root was about to create `data_dir` inside a directory another
    /// user (the daemon's) owns: the new directory would be root's, and
    /// the daemon could not write it (new-user QA16 N3). Boxed: the error
    /// is carried by every domain's error.
    #[error("{0}")]
    WouldCreateInAnothers(Box<WouldCreate>),
    /// A value could not be decoded.
    #[error("unreadable value in tree `{tree}` at key `{key}`: {message}")]
    Corrupt {
        tree: String,
        key: String,
        message: String,
    },
    /// sled or the filesystem failed (disk full, read-only, ...).
    #[error("store I/O failed at {path}: {message}")]
    Io { path: String, message: String },
    /// sled found the store's files damaged (cut short, overwritten, a
    /// file missing): nothing this process can repair.
    #[error(
        "store at {path} is damaged ({detail}); restore {data_dir} from a backup (see README, Backup and restore)"
    )]
    Damaged {
        path: String,
        data_dir: String,
        detail: String,
    },
    /// The on-disk schema is newer than this binary.
    #[error(
        "store schema version {found} is newer than this reckon ({supported}); upgrade reckon"
    )]
    SchemaTooNew { found: u32, supported: u32 },
}

/// A stored canonical record with its revision bookkeeping.
#[derive(Debug, Clone, PartialEq)]
pub struct Stored {
    /// The current value.
    pub record: Record,
    /// 1 for the first version; +1 for every change.
    pub revision: u32,
    /// Global change sequence of the last change (monotonic across the store).
    pub seq: u64,
    /// When the record was first stored.
    pub first_seen: DateTime<Utc>,
    /// When the current revision was stored.
    pub changed_at: DateTime<Utc>,
}

/// A previous value of a record.
#[derive(Debug, Clone, PartialEq)]
pub struct Revision {
    /// Revision number of this old value.
    pub revision: u32,
    /// The old value.
    pub record: Record,
    /// When it stopped being current.
    pub superseded_at: DateTime<Utc>,
}

/// What one commit did.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct CommitStats {
    /// Records seen for the first time.
    pub new: u64,
    /// Records whose value changed (a revision was kept).
    pub changed: u64,
    /// Records identical to what was stored (nothing written).
    pub unchanged: u64,
}

impl std::ops::AddAssign for CommitStats {
    fn add_assign(&mut self, o: CommitStats) {
        self.new += o.new;
        self.changed += o.changed;
        self.unchanged += o.unchanged;
    }
}

/// One change in the store's change log, for incremental consumers.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Change {
    /// Sequence number (monotonic).
    pub seq: u64,
    /// Record kind.
    pub kind: RecordKind,
    /// Connector id.
    pub source: String,
    /// Record key within the source.
    pub key: String,
}

/// How a run ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum RunOutcome {
    /// Every window finished and the store was flushed.
    Success,
    /// The run failed; pages committed before the failure are kept.
    Failed,
    /// Stopped by shutdown after committing its current page.
    Interrupted,
    /// Still running (or the process died during it).
    Running,
}

/// How the error of a run whose process died during it (killed, crashed)
/// begins: an `interrupted` run that, unlike a stop on purpose, counts as
/// a failure (`schedule::failures_from_history`).
pub const DIED_UNFINISHED: &str = "the reckon process running it ended without finishing it";

/// What becomes of a run that did not finish (stopped, or its process
/// died), as its recorded error and a stopped sync's message say it: the
/// daemon runs a connector whose last run did not finish once at its start
/// (`schedule::resume`), a cut-off backfill over its own days. Ops QA32a
/// L1: the message said a backfill whose command was interrupted "must be
/// run again", and the next start ran it again as well.
pub const CUT_OFF_RUNS: &str = "a scheduled run resumes from the checkpoints; a backfill (`reckon sync --from/--to`) is run again over its own days by the daemon, at the connector's next fire or the daemon's next start, as long as it is still the connector's last run: `reckon sync` without dates before then replaces it (with a warning naming its days), and then only running the backfill again pulls the rest of its days";

impl RunOutcome {
    /// Lower-case name.
    pub fn as_str(self) -> &'static str {
        match self {
            RunOutcome::Success => "success",
            RunOutcome::Failed => "failed",
            RunOutcome::Interrupted => "interrupted",
            RunOutcome::Running => "running",
        }
    }
}

/// One entry of the run history.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RunRecord {
    /// Connector id.
    pub source: String,
    /// When the run started.
    pub started_at: DateTime<Utc>,
    /// When it ended (`None` while running).
    pub ended_at: Option<DateTime<Utc>>,
    /// How it ended.
    pub outcome: RunOutcome,
    /// Windows pulled, e.g. `2026-01-01..2026-01-31`.
    #[serde(default)]
    pub windows: Vec<String>,
    /// Pages (checkpoints) committed.
    pub pages: u64,
    /// HTTP requests sent.
    pub requests: u64,
    /// HTTP retries.
    #[serde(default)]
    pub retries: u64,
    /// Rate-limit waits.
    #[serde(default)]
    pub rate_limit_waits: u64,
    /// Records stored for the first time.
    pub records_new: u64,
    /// Records changed (revision kept).
    pub records_changed: u64,
    /// Records re-pulled unchanged.
    pub records_unchanged: u64,
    /// The error, for failed runs.
    pub error: Option<String>,
    /// For a failed run: whether retrying later may help (the scheduler
    /// retries it, also after a restart). `None` for other outcomes and in
    /// runs recorded before this was kept.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub retryable: Option<bool>,
    /// For a failed run: the platform asked not to be called again before
    /// this instant (a 429 whose wait is longer than a run waits). The
    /// scheduler holds the connector's retries and fires until then, also
    /// after a restart (ops QA34 D-M2).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub not_before: Option<DateTime<Utc>>,
}

impl RunRecord {
    /// `, 2 retries, 5 rate-limit waits` when there were any, for the lines
    /// that count a run's pages and requests (QA21: the README said
    /// `reckon status` counts 429 waits; only `--json` did).
    pub fn waits_text(&self) -> String {
        let mut out = String::new();
        if self.retries > 0 {
            out.push_str(&format!(", {} retries", self.retries));
        }
        if self.rate_limit_waits > 0 {
            out.push_str(&format!(", {} rate-limit waits", self.rate_limit_waits));
        }
        out
    }
}

/// Whether sled has failed for good ([`Store::failure`]).
struct Health {
    /// The data directory, for messages.
    dir: PathBuf,
    /// The config the store was opened with: it shares sled's sticky error
    /// (`Config::global_error`, public but doc-hidden in sled 0.34.7, which
    /// the workspace pins).
    config: sled::Config,
    /// The first sticky error, as a message.
    failure: tokio::sync::watch::Sender<Option<String>>,
}

impl std::fmt::Debug for Health {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Health")
            .field("failure", &*self.failure.borrow())
            .finish()
    }
}

impl Health {
    /// Maps a sled error, noting whether sled now keeps an error for good.
    fn err(&self, e: sled::Error) -> StoreError {
        let err = sled_err(&self.dir, e);
        self.check();
        err
    }

    /// Records sled's sticky error, the first time it is there.
    fn check(&self) {
        if self.failure.borrow().is_some() {
            return;
        }
        if let Err(sticky) = self.config.global_error() {
            let reason = sled_err(&self.dir, sticky).to_string();
            self.failure.send_if_modified(|f| {
                let first = f.is_none();
                if first {
                    tracing::error!(
                        dir = %self.dir.display(),
                        error = %reason,
                        "the store failed: sled refuses every write from now on, even after the cause is fixed; only a restart of reckon recovers"
                    );
                    *f = Some(reason.clone());
                }
                first
            });
        }
    }
}

struct Inner {
    dir: PathBuf,
    health: Arc<Health>,
    db: sled::Db,
    /// Records, revisions, change log, checkpoints and their counters, under
    /// one-byte key prefixes, so one page commits as one `apply_batch`.
    data: sled::Tree,
    runs: sled::Tree,
    meta: sled::Tree,
    commit_lock: Mutex<()>,
    /// The flush counter and its mark file ([`FlushMark`]).
    flushes: Mutex<FlushMark>,
    _lock: File,
}

/// How long a store's close waits for its last flush with no error from
/// sled (see `Drop for Inner`).
const CLOSE_FLUSH_LIMIT: std::time::Duration = std::time::Duration::from_secs(60);

/// sled flushes as the last handle of a tree drops, and after a write
/// failed for good (a full disk) that flush can wait forever for a write
/// that will never come (QA44a A-H1: a `statements finalize` whose disk
/// filled never exited, holding `reckon.lock`; sled 0.34.7 waits in
/// `make_stable` when the failing write's notice comes before the wait).
/// So the close flush runs on a thread of its own: while it has not
/// returned, sled's sticky error is looked at every 100 ms, and once there
/// (or after [`CLOSE_FLUSH_LIMIT`], a flush no disk needs: sled flushes
/// every 500 ms as it goes, and the writes that matter flush themselves)
/// the sled handles are leaked instead of dropped; the process's exit ends
/// the waiting thread, which to sled is a crash after its last flush.
impl Drop for Inner {
    fn drop(&mut self) {
        use std::sync::mpsc::RecvTimeoutError;
        let started = std::time::Instant::now();
        let db = self.db.clone();
        let (done, flushed) = std::sync::mpsc::channel();
        let closing = std::thread::Builder::new()
            .name("reckon-close".into())
            .spawn(move || {
                let _ = db.flush();
                // Dropped before the answer: the store's own handles are
                // then the last, and sled's files are closed (its lock
                // released) when this drop returns.
                drop(db);
                let _ = done.send(());
            });
        if closing.is_err() {
            return;
        }
        loop {
            match flushed.recv_timeout(std::time::Duration::from_millis(100)) {
                Ok(()) | Err(RecvTimeoutError::Disconnected) => return,
                Err(RecvTimeoutError::Timeout) => {
                    let failed = self.health.config.global_error().is_err();
                    if failed || started.elapsed() > CLOSE_FLUSH_LIMIT {
                        tracing::warn!(
                            dir = %self.dir.display(),
                            failed,
                            waited_ms = started.elapsed().as_millis() as u64,
                            "the store is closed without its last flush, which waits for a write that does not come (a full disk?); what sled flushed before is kept"
                        );
                        std::mem::forget(self.db.clone());
                        return;
                    }
                }
            }
        }
    }
}

/// The store handle. Cheap to clone.
#[derive(Clone)]
pub struct Store {
    inner: Arc<Inner>,
}

impl std::fmt::Debug for Store {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Store")
            .field("dir", &self.inner.dir)
            .finish()
    }
}

/// Schema-2 per-record keys; read only by the schema-3 migration.
const P_RECORD: u8 = b'r';
const P_BLOCK: u8 = b'b';
const P_REVISION: u8 = b'v';
const P_CHANGE: u8 = b'c';
const P_CHECKPOINT: u8 = b'k';
const P_COUNTER: u8 = b'm';

fn kind_char(kind: RecordKind) -> u8 {
    match kind {
        RecordKind::Spend => b's',
        RecordKind::Conversion => b'c',
        RecordKind::Order => b'o',
    }
}

/// A record's own key: `r` · kind char · `source/key`. Schema 2 stored each
/// record under it; schema 3 stores records in blocks ([`block`]) and
/// derives only revision keys from it. Public so the ingest benchmark
/// writes raw sled with one key per record, the simple way to use sled.
pub fn record_key(kind: RecordKind, source: &str, key: &str) -> Vec<u8> {
    let mut k = Vec::with_capacity(3 + source.len() + key.len());
    k.push(P_RECORD);
    k.push(kind_char(kind));
    k.extend_from_slice(source.as_bytes());
    k.push(b'/');
    k.extend_from_slice(key.as_bytes());
    k
}

/// `b` · kind char · `source/`: the start of every block key of a source's
/// records of one kind. A block's key is this followed by the last record
/// key it holds ([`block`]).
fn block_prefix(kind: RecordKind, source: &str) -> Vec<u8> {
    let mut k = record_key(kind, source, "");
    k[0] = P_BLOCK;
    k
}

/// `source/key` of a record key, for messages.
fn logical_key(data_key: &[u8]) -> String {
    String::from_utf8_lossy(data_key.get(2..).unwrap_or_default()).into_owned()
}

/// The records of block `v` (at data key `k`) whose keys `keep` accepts,
/// decoded.
fn block_records(
    kind: RecordKind,
    k: &[u8],
    v: &[u8],
    keep: impl Fn(&[u8]) -> bool,
) -> Vec<Result<Stored, StoreError>> {
    // `source/` of the block key, to name records in errors.
    let source = logical_key(k);
    let source = &source[..source.find('/').map_or(0, |i| i + 1)];
    let corrupt = |key: &[u8], message| StoreError::Corrupt {
        tree: kind.as_str().into(),
        key: format!("{source}{}", String::from_utf8_lossy(key)),
        message,
    };
    match block::spans(v) {
        Err(m) => vec![Err(corrupt(
            k.get(2 + source.len()..).unwrap_or_default(),
            m,
        ))],
        Ok(spans) => spans
            .into_iter()
            .filter(|(key, _)| keep(&v[key.clone()]))
            .map(|(key, value)| codec::decode_stored(&v[value]).map_err(|m| corrupt(&v[key], m)))
            .collect(),
    }
}

fn revision_key(record_key: &[u8], revision: u32) -> Vec<u8> {
    let mut k = Vec::with_capacity(record_key.len() + 5);
    k.push(P_REVISION);
    k.extend_from_slice(&record_key[1..]);
    k.push(0);
    k.extend_from_slice(&revision.to_be_bytes());
    k
}

fn change_key(seq: u64) -> [u8; 9] {
    let mut k = [P_CHANGE; 9];
    k[1..].copy_from_slice(&seq.to_be_bytes());
    k
}

fn checkpoint_key(source: &str, stream: &str) -> Vec<u8> {
    let mut k = vec![P_CHECKPOINT];
    k.extend_from_slice(source.as_bytes());
    k.push(b'/');
    k.extend_from_slice(stream.as_bytes());
    k
}

const META_SCHEMA: &str = "schema_version";
const LAST_FIRE_PREFIX: &str = "last_fire/";
/// `meta` keys `running/<run key>` (value: the run key) for each run saved
/// as `running` and not yet saved with its outcome.
const RUNNING_PREFIX: &str = "running/";
const SEQ_NAME: &str = "change_seq";
const COUNT_PREFIX: &str = "count/";

fn counter_key(name: &str) -> Vec<u8> {
    let mut k = vec![P_COUNTER];
    k.extend_from_slice(name.as_bytes());
    k
}

fn count_key(kind: RecordKind, source: &str) -> Vec<u8> {
    counter_key(&format!("{COUNT_PREFIX}{}/{source}", kind.as_str()))
}

/// What [`StoreError::HeldByAnotherUser`] names.
#[derive(Debug, thiserror::Error)]
#[error(
    "data_dir {data_dir} is held by a running reckon (pid {pid}, user {who}), and this user ({user}) may neither write it nor use that daemon's command socket: run the command as {who} (`sudo -u {sudo} {command}`), and the daemon runs it for you. Do not give the directory to this user (`chown`) while the daemon runs: it would lose write access to its store and stop"
)]
pub struct HeldBy {
    /// The data directory.
    pub data_dir: String,
    /// The holder's process id.
    pub pid: u32,
    /// The holder's user name, or `uid N`.
    pub who: String,
    /// The `sudo -u` argument for it.
    pub sudo: String,
    /// Effective uid and gid of this process.
    pub user: String,
    /// This process's command line.
    pub command: String,
}

/// What [`StoreError::WouldCreateInAnothers`] names.
#[derive(Debug, thiserror::Error)]
#[error("{data_dir} does not exist, and this command runs as root: it would create it, owned by root, inside {parent}, which belongs to {owner}; the daemon (running as {who}) could then not write it and would refuse to start. Nothing was changed. Run it as {who}: `sudo -u {sudo} {command}` (the directory is then {who}'s), or create the directory for {who} first: `install -d -o {user} -g {group} -m 0750 {data_dir}`")]
pub struct WouldCreate {
    /// The data directory, missing.
    pub data_dir: String,
    /// Its nearest existing ancestor, another user's.
    pub parent: String,
    /// Its owner: `reckon (uid 998)`, or `uid 998` without a name.
    pub owner: String,
    /// Its owner's name, or `uid 998`.
    pub who: String,
    /// The `sudo -u` argument for the owner.
    pub sudo: String,
    /// The owner for `install -o`: its name, or its uid.
    pub user: String,
    /// The ancestor's group for `install -g`: its name, or its gid.
    pub group: String,
    /// This process's command line.
    pub command: String,
}

/// The first key after every key starting with `prefix`.
fn prefix_end(prefix: &[u8]) -> Vec<u8> {
    let mut end = prefix.to_vec();
    while let Some(last) = end.pop() {
        if last < u8::MAX {
            end.push(last + 1);
            return end;
        }
    }
    vec![u8::MAX; prefix.len() + 1]
}

/// Refuses root ([`StoreError::OwnedByAnother`]) when `data_dir`, or the
/// store in it, belongs to another user: opening the store (sled writes a
/// snapshot file as it opens) would leave root-owned files that the owner,
/// the daemon's user, cannot write. A `data_dir` that does not exist yet
/// is refused ([`StoreError::WouldCreateInAnothers`]) when its nearest
/// existing ancestor belongs to another user (`/var/lib/reckon`, the
/// daemon's): root would create it root-owned there. Checked before
/// anything is created. A store root owns, and every other user, are let
/// through (another user who cannot write the store is refused by the
/// open itself).
pub fn refuse_another_owner(data_dir: &Path) -> Result<(), StoreError> {
    if !rustix::process::geteuid().is_root() {
        return Ok(());
    }
    refuse_for_root(data_dir, &crate::config::dirs::this_command_line())
}

/// [`refuse_another_owner`] for a process that runs as root, `command`
/// its command line.
fn refuse_for_root(data_dir: &Path, command: &str) -> Result<(), StoreError> {
    use std::os::unix::fs::MetadataExt as _;
    let owner = |uid: u32| {
        let name = crate::config::dirs::user_name(uid);
        let owner = match &name {
            Some(n) => format!("{n} (uid {uid})"),
            None => format!("uid {uid}"),
        };
        (owner, name.unwrap_or_else(|| format!("uid {uid}")))
    };
    for path in [data_dir.to_path_buf(), data_dir.join("store")] {
        let Ok(meta) = std::fs::metadata(&path) else {
            continue;
        };
        let uid = meta.uid();
        if uid != 0 {
            let (owner, who) = owner(uid);
            return Err(StoreError::OwnedByAnother {
                path: path.display().to_string(),
                owner,
                who,
                sudo: crate::config::dirs::sudo_user(uid),
                command: command.to_owned(),
            });
        }
    }
    if std::fs::symlink_metadata(data_dir).is_err() {
        let parent = data_dir
            .ancestors()
            .skip(1)
            .map(|a| {
                if a.as_os_str().is_empty() {
                    Path::new(".")
                } else {
                    a
                }
            })
            .find_map(|a| std::fs::metadata(a).ok().map(|m| (a.to_path_buf(), m)));
        if let Some((parent, meta)) = parent.filter(|(_, m)| m.uid() != 0) {
            let (owner, who) = owner(meta.uid());
            let gid = meta.gid();
            // Absolute: the commands in the message work from anywhere.
            let absolute = |p: &Path| {
                std::path::absolute(p)
                    .unwrap_or_else(|_| p.to_path_buf())
                    .display()
                    .to_string()
            };
            return Err(StoreError::WouldCreateInAnothers(Box::new(WouldCreate {
                data_dir: absolute(data_dir),
                parent: absolute(&parent),
                owner,
                who,
                sudo: crate::config::dirs::sudo_user(meta.uid()),
                user: crate::config::dirs::user_name(meta.uid())
                    .unwrap_or_else(|| meta.uid().to_string()),
                group: crate::config::dirs::group_name(gid).unwrap_or_else(|| gid.to_string()),
                command: command.to_owned(),
            })));
        }
    }
    Ok(())
}

/// [`StoreError::NotWritable`] if `e` refused a write to `path` in `data_dir`
/// (permission denied, or a read-only filesystem).
fn not_writable(data_dir: &Path, path: &Path, e: &std::io::Error) -> Option<StoreError> {
    use std::io::ErrorKind;
    let refused = matches!(
        e.kind(),
        ErrorKind::PermissionDenied | ErrorKind::ReadOnlyFilesystem
    ) || matches!(e.raw_os_error(), Some(13) | Some(30));
    // Whose it is (new-user QA16 N3); a file it could not create is the
    // directory's (QA17: the lock file of a root-owned data_dir).
    let owner = match std::fs::metadata(path) {
        // Another user's file (root's lock file, after a backfill run as
        // root): the whole data_dir is given to this user (QA18 R2).
        Ok(m) if std::os::unix::fs::MetadataExt::uid(&m) != rustix::process::geteuid().as_raw() => {
            format!(
                "{}{}",
                crate::config::dirs::owned_by(&m),
                crate::config::dirs::take_over(data_dir, &m)
            )
        }
        Ok(m) => crate::config::dirs::owned_by(&m),
        Err(_) => {
            let dir = path.parent().unwrap_or(data_dir);
            std::fs::metadata(dir)
                .map(|m| {
                    format!(
                        "; {} {}{}",
                        dir.display(),
                        crate::config::dirs::owned_by(&m).trim_start_matches("; it "),
                        crate::config::dirs::take_over(dir, &m)
                    )
                })
                .unwrap_or_default()
        }
    };
    if !refused {
        return None;
    }
    if e.kind() == ErrorKind::ReadOnlyFilesystem || e.raw_os_error() == Some(30) {
        return Some(StoreError::ReadOnlyFilesystem {
            data_dir: data_dir.display().to_string(),
            path: path.display().to_string(),
        });
    }
    // The daemon of another user holds it: run as that user, not `chown`.
    if let Err(StoreError::Locked { pid: Some(pid), .. }) = held_by_another_process(data_dir) {
        if let Ok(m) = std::fs::metadata(format!("/proc/{pid}")) {
            let uid = std::os::unix::fs::MetadataExt::uid(&m);
            if uid != rustix::process::geteuid().as_raw() {
                return Some(StoreError::HeldByAnotherUser(Box::new(HeldBy {
                    data_dir: data_dir.display().to_string(),
                    pid,
                    who: crate::config::dirs::user_name(uid)
                        .unwrap_or_else(|| format!("uid {uid}")),
                    sudo: crate::config::dirs::sudo_user(uid),
                    user: format!(
                        "uid {}, gid {}",
                        rustix::process::geteuid().as_raw(),
                        rustix::process::getegid().as_raw()
                    ),
                    command: crate::config::dirs::this_command_line(),
                })));
            }
        }
    }
    Some(StoreError::NotWritable {
        data_dir: data_dir.display().to_string(),
        path: path.display().to_string(),
        user: format!(
            "uid {}, gid {}",
            rustix::process::geteuid().as_raw(),
            rustix::process::getegid().as_raw()
        ),
        cause: format!("{e}{owner}"),
    })
}

fn io_err(path: &Path, e: impl std::fmt::Display) -> StoreError {
    StoreError::Io {
        path: path.display().to_string(),
        message: e.to_string(),
    }
}

/// Maps a sled error. `dir` is the data directory (the sled files are in
/// its `store/`); errors say what to do, and never carry sled's debug
/// output (its `Corruption` error prints "backtrace ()").
fn sled_err(dir: &Path, e: sled::Error) -> StoreError {
    use std::io::ErrorKind;
    let damaged = |detail: String| StoreError::Damaged {
        path: dir.join("store").display().to_string(),
        data_dir: dir.display().to_string(),
        detail,
    };
    let msg = match &e {
        sled::Error::Corruption { at, .. } => {
            return damaged(match at {
                Some(at) => format!("sled read corrupted data at log offset {}", at.lid()),
                None => "sled read corrupted data".to_string(),
            })
        }
        // sled turns a `Corruption` into an `io::Error` in some paths.
        sled::Error::Io(io)
            if io.kind() == ErrorKind::InvalidData && io.to_string().contains("orrupt") =>
        {
            return damaged("sled read corrupted data".to_string());
        }
        // sled wraps some OS errors in a custom error that keeps only the
        // kind, so match on the kind rather than the raw OS code.
        sled::Error::Io(io) => match (io.kind(), io.raw_os_error()) {
            (ErrorKind::StorageFull, _) | (_, Some(28)) => {
                "no space left on device: the disk is full; free space and rerun (nothing committed was lost)".to_string()
            }
            // sled's copy of the error kept only its kind (its text is
            // `Os { code: 27, .. }` in Debug form).
            (ErrorKind::FileTooLarge, _) | (_, Some(27)) => {
                "file too large: a store file reached the process's file size limit (`ulimit -f`, RLIMIT_FSIZE) or the filesystem's largest file; raise the limit and rerun (nothing committed was lost)".to_string()
            }
            (ErrorKind::ReadOnlyFilesystem | ErrorKind::PermissionDenied, _)
            | (_, Some(30) | Some(13)) => {
                format!("{}: the data directory is not writable; fix its permissions or mount", io.kind())
            }
            _ => io.to_string(),
        },
        other => other.to_string(),
    };
    StoreError::Io {
        path: dir.display().to_string(),
        message: msg,
    }
}

/// Trees of the schema-1 layout, removed by the schema-2 migration.
const V1_TREES: [&str; 6] = [
    "spend",
    "conversions",
    "orders",
    "revisions",
    "changes",
    "checkpoints",
];

/// The `data` key of a record, without building its key string where the
/// record's id is the key.
fn key_of(r: &Record, source: &str) -> Vec<u8> {
    match r {
        Record::Conversion(c) => record_key(RecordKind::Conversion, source, &c.external_id),
        Record::Order(o) => record_key(RecordKind::Order, source, &o.order_id),
        Record::Spend(_) => record_key(RecordKind::Spend, source, &r.key()),
    }
}

// Two record bodies whose bytes differ may hold the same record: the same
// values, amounts compared by value (`301` and `301.0`: a plugin reading a
// JSON number from its literal, where an older one went through f64, must
// not make a revision of every such claim; upgrade QA F3). `commit_prepared`
// decodes only bodies whose bytes differ (a changed record, rare), so the
// common unchanged record stays one byte comparison; bodies that do not
// decode differ (the new one is stored as before).

/// WARNs when a re-sent conversion's status is older than the stored
/// one's (QA28-B F4: a stale re-send turned `reversed` back into
/// `pending` without a word; a lagging replica or an old snapshot looks
/// like this). It is stored as sent: a re-pull is an upsert, and only the
/// platform knows which is current.
fn warn_stale_status(source: &str, key: &[u8], was: &Conversion, now: &Conversion) {
    let (Some(stored_at), Some(sent_at)) = (was.status_changed_at, now.status_changed_at) else {
        return;
    };
    if sent_at < stored_at && was.status != now.status {
        let name = |s: ConversionStatus| format!("{s:?}").to_lowercase();
        tracing::warn!(
            connector = source,
            key = %String::from_utf8_lossy(key),
            stored = %format!("{} (changed {})", name(was.status), stored_at.to_rfc3339()),
            sent = %format!("{} (changed {})", name(now.status), sent_at.to_rfc3339()),
            "a re-sent conversion's status changed before the stored one's: stored as sent (a re-pull \
             replaces the record); if the platform served stale data, the next pull corrects it"
        );
    }
}

/// One record of a [`PreparedPage`].
struct Prepared {
    /// [`record_key`] of the record.
    key: Vec<u8>,
    kind: RecordKind,
    /// A zeroed header, then the binary body.
    value: Vec<u8>,
    /// Position in the page.
    pos: usize,
}

/// A page's records encoded and sorted by key, ready for
/// [`Store::commit_prepared`].
pub struct PreparedPage {
    source: String,
    entries: Vec<Prepared>,
}

impl std::fmt::Debug for PreparedPage {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("PreparedPage")
            .field("source", &self.source)
            .field("records", &self.entries.len())
            .finish()
    }
}

/// A stored block a page touches, or the place for a first block.
struct Touched {
    kind: RecordKind,
    /// The stored block: its key and value.
    old: Option<(sled::IVec, sled::IVec)>,
    /// The page's entries (indices, in key order) that fall in it (the
    /// source's last block also takes those past its last key).
    page: std::ops::Range<usize>,
}

/// How far a page's range scan walks over blocks holding none of its keys
/// before it seeks to the next key instead (keys spread over the store).
/// A seek costs about what one step onto the next leaf node does, so more
/// than one step rarely pays: with 8, pages of random ids ingested ~15%
/// slower (store_ingest with `RECKON_BENCH_RANDOM_IDS=1`).
const MAX_SKIP: usize = 1;

/// Finds the blocks that `entries[range]` (one kind, sorted by key, of a
/// source whose record keys start after `skip` bytes) fall in, appending
/// them to `out` in key order. One forward scan from the first key serves
/// a page of neighbouring keys; after [`MAX_SKIP`] blocks without a key of
/// the page it seeks again, so a page spread over the store costs a seek
/// per key, like point lookups.
fn locate(
    tree: &sled::Tree,
    prefix: &[u8],
    entries: &[Prepared],
    range: std::ops::Range<usize>,
    skip: usize,
    out: &mut Vec<Touched>,
) -> Result<(), sled::Error> {
    let Some(first) = entries.get(range.start) else {
        return Ok(());
    };
    let kind = first.kind;
    let end = prefix_end(prefix);
    let suffix = |i: usize| &entries[i].key[skip..];
    let key_at = |i: usize| [prefix, suffix(i)].concat();
    let mut pos = range.start;
    let mut iter = tree.range(key_at(pos)..end.clone());
    // The last block the current scan gave: an index into `out` or a block
    // without keys of the page.
    enum Last {
        None,
        Touched(usize),
        Skipped(sled::IVec, sled::IVec),
    }
    let mut last = Last::None;
    let mut skipped = 0;
    while pos < range.end {
        match iter.next() {
            Some(kv) => {
                let (k, v) = kv?;
                let start = pos;
                while pos < range.end && suffix(pos) <= &k[prefix.len()..] {
                    pos += 1;
                }
                if pos > start {
                    out.push(Touched {
                        kind,
                        old: Some((k, v)),
                        page: start..pos,
                    });
                    last = Last::Touched(out.len() - 1);
                    skipped = 0;
                } else if skipped == MAX_SKIP {
                    iter = tree.range(key_at(pos)..end.clone());
                    last = Last::None;
                    skipped = 0;
                } else {
                    last = Last::Skipped(k, v);
                    skipped += 1;
                }
            }
            None => {
                // Entries `pos..` lie past every block of the source: they
                // go to its last block.
                match last {
                    Last::Touched(t) => out[t].page.end = range.end,
                    Last::Skipped(k, v) => out.push(Touched {
                        kind,
                        old: Some((k, v)),
                        page: pos..range.end,
                    }),
                    Last::None => {
                        let before = tree.range(prefix.to_vec()..key_at(pos)).next_back();
                        let old = before.transpose()?;
                        match out.last_mut() {
                            Some(t)
                                if old.is_some()
                                    && t.old.as_ref().map(|o| &o.0)
                                        == old.as_ref().map(|o| &o.0) =>
                            {
                                t.page.end = range.end;
                            }
                            _ => out.push(Touched {
                                kind,
                                old,
                                page: pos..range.end,
                            }),
                        }
                    }
                }
                break;
            }
        }
    }
    Ok(())
}

/// One entry of a touched block's new contents.
enum Item {
    /// A stored entry, unchanged: its index in the old block's spans.
    Old(usize),
    /// A page entry (new or changed): its index in the page.
    Page(usize),
}

/// A touched block's new contents.
struct Layout {
    /// The stored block's entries.
    spans: Vec<block::Span>,
    /// Stored and page entries, in key order.
    items: Vec<Item>,
}

/// Writes a touched block's new contents into `batch`, cut into blocks of
/// about [`block::TARGET_BYTES`]. The entries up to the stored block's last
/// key replace it (its key stays: the last cut ends with that key); entries
/// past it (new keys at the end of the source) fill new blocks, and the
/// stored block is not rewritten for them.
fn write_block(
    batch: &mut sled::Batch,
    t: &Touched,
    layout: &Layout,
    entries: &[Prepared],
    skip: usize,
    source: &str,
) {
    let Layout { spans, items } = layout;
    let old = t.old.as_ref().map(|(_, v)| v.as_ref()).unwrap_or_default();
    let pairs: Vec<(&[u8], &[u8])> = items
        .iter()
        .map(|it| match it {
            Item::Old(o) => (&old[spans[*o].0.clone()], &old[spans[*o].1.clone()]),
            Item::Page(p) => (&entries[*p].key[skip..], entries[*p].value.as_slice()),
        })
        .collect();
    let head = spans.last().map_or(0, |(k, _)| {
        pairs.partition_point(|(pk, _)| *pk <= &old[k.clone()])
    });
    let sizes: Vec<usize> = pairs.iter().map(|(k, v)| block::entry_len(k, v)).collect();
    let mut groups = Vec::new();
    if items[..head].iter().any(|it| matches!(it, Item::Page(_))) {
        groups.extend(block::split(&sizes[..head], block::TARGET_BYTES, false));
    }
    groups.extend(
        block::split(&sizes[head..], block::TARGET_BYTES, true)
            .into_iter()
            .map(|g| g.start + head..g.end + head),
    );
    let prefix = block_prefix(t.kind, source);
    for g in groups {
        let key = [prefix.as_slice(), pairs[g.end - 1].0].concat();
        batch.insert(key, block::encode(pairs[g].iter().copied()));
    }
}

/// Opens the sled database in `data_dir/store`. We hold the directory's
/// lock, so no other store has it open; but sled's own file lock can
/// outlive a handle this process just dropped while one of sled's
/// background writes still holds the file (a test or the demo reopening a
/// store). That lock is waited for, up to [`SLED_LOCK_WAIT`].
///
/// sled 0.34.7 panics on some damaged files instead of returning an error
/// (a `db` file cut short: "index out of bounds" in its segment
/// accounting); that panic is caught here and reported as
/// [`StoreError::Damaged`]. Returns the config too: it holds sled's sticky
/// error ([`Health`]).
fn open_sled(data_dir: &Path, cache_mb: u64) -> Result<(sled::Db, sled::Config), StoreError> {
    let db_dir = data_dir.join("store");
    create_private_dir(data_dir, &db_dir)?;
    remove_unfinished_snapshots(&db_dir)?;
    let config = sled::Config::new()
        .path(&db_dir)
        .cache_capacity(cache_mb.saturating_mul(1 << 20))
        .mode(sled::Mode::HighThroughput);
    enum Failure {
        Sled(sled::Error),
        Panicked(String),
    }
    let open = || match catch_quietly(|| config.open()) {
        Ok(opened) => opened.map_err(Failure::Sled),
        Err(panic) => Err(Failure::Panicked(panic)),
    };
    let locked = |e: &Failure| matches!(e, Failure::Sled(sled::Error::Io(e)) if e.to_string().contains("could not acquire lock"));
    match retry_while_locked(SLED_LOCK_WAIT, open, locked) {
        Ok(db) => Ok((db, config)),
        Err(Failure::Sled(e)) => Err(match &e {
            sled::Error::Io(io) => not_writable(
                data_dir,
                &crate::config::dirs::first_unwritable(&db_dir).unwrap_or_else(|| db_dir.clone()),
                io,
            ),
            _ => None,
        }
        .unwrap_or_else(|| sled_err(data_dir, e))),
        Err(Failure::Panicked(panic)) => Err(StoreError::Damaged {
            path: db_dir.display().to_string(),
            data_dir: data_dir.display().to_string(),
            detail: panic,
        }),
    }
}

thread_local! {
    /// Set while this thread runs [`catch_quietly`].
    static QUIET_PANICS: std::cell::Cell<bool> = const { std::cell::Cell::new(false) };
}

/// Runs `f`, returning a panic in it as `Err(its message)` without the
/// panic being printed (the caller reports it as an error of its own).
///
/// The panic hook is process-wide, so swapping it around the call would
/// also silence, or race with, a panic on another thread. Instead the
/// first call installs, once, a hook that stays silent only on a thread
/// inside this function and hands every other panic to the hook it
/// replaced: a panic of one of sled's own threads, a plugin or another test
/// is printed as before. (A hook installed later by someone else replaces
/// ours; the panic is then printed but still caught.) `AssertUnwindSafe`:
/// nothing `f` touches outlives it when it panics (sled's half-opened
/// state is dropped while unwinding).
fn catch_quietly<T>(f: impl FnOnce() -> T) -> Result<T, String> {
    static HOOK: std::sync::Once = std::sync::Once::new();
    HOOK.call_once(|| {
        let previous = std::panic::take_hook();
        std::panic::set_hook(Box::new(move |info| {
            if !QUIET_PANICS.with(std::cell::Cell::get) {
                previous(info);
            }
        }));
    });
    QUIET_PANICS.with(|q| q.set(true));
    let result = std::panic::catch_unwind(std::panic::AssertUnwindSafe(f));
    QUIET_PANICS.with(|q| q.set(false));
    result.map_err(|payload| format!("sled panicked: {}", crate::panic_message(&*payload)))
}

/// Removes the snapshots sled began but never finished.
///
/// sled 0.34.7 writes a snapshot of its page table to
/// `snap.<lsn>.generating` while it opens (recovery), then renames it to
/// `snap.<lsn>`. But when it opens, it reads the last `snap.*` file by name,
/// an unfinished one included, and refuses a cut one as "Read corrupted
/// data" (sled issue #1527). A process killed during that write (kill -9
/// while `reckon` started) would leave a store no command could open.
/// The unfinished file holds nothing the log and the finished snapshot do
/// not: the rename is sled's commit point. We hold the directory's lock and
/// sled writes snapshots only while opening, so no other writer can be
/// finishing it.
/// Creates the store's directory `db_dir` readable by the owner only
/// (0700): it holds customer ids and payouts, and sled creates its files
/// with the process umask (security QA L3). A directory that exists keeps
/// its mode: the operator may have made it.
fn create_private_dir(data_dir: &Path, db_dir: &Path) -> Result<(), StoreError> {
    use std::os::unix::fs::DirBuilderExt as _;
    match std::fs::DirBuilder::new().mode(0o700).create(db_dir) {
        Err(e) if e.kind() != std::io::ErrorKind::AlreadyExists => {
            Err(not_writable(data_dir, db_dir, &e).unwrap_or_else(|| {
                io_err(db_dir, format!("cannot create the store directory: {e}"))
            }))
        }
        _ => Ok(()),
    }
}

fn remove_unfinished_snapshots(db_dir: &Path) -> Result<(), StoreError> {
    let entries = match std::fs::read_dir(db_dir) {
        Ok(entries) => entries,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(()),
        Err(e) => return Err(io_err(db_dir, format!("cannot list the store: {e}"))),
    };
    for entry in entries.flatten() {
        let name = entry.file_name();
        let name = name.to_string_lossy();
        if name.starts_with("snap.") && name.ends_with(".generating") {
            let path = entry.path();
            tracing::warn!(
                path = %path.display(),
                "removing an unfinished store snapshot (sled writes one while it opens the store; a process stopped during that, or an open that failed, e.g. on a full disk, leaves it)"
            );
            std::fs::remove_file(&path).map_err(|e| {
                io_err(
                    &path,
                    format!("cannot remove an unfinished store snapshot: {e}; remove it by hand"),
                )
            })?;
        }
    }
    Ok(())
}

/// Takes the data directory's lock, waiting up to [`DIR_LOCK_WAIT`]: a
/// handle this process just dropped may still hold it for a moment through
/// a child process being spawned (the child shares the lock file's open
/// description from fork until exec closes it). Another process holding it
/// for longer is [`StoreError::Locked`].
fn lock_exclusive(lock: &File, dir: &Path) -> Result<(), StoreError> {
    retry_while_locked(
        DIR_LOCK_WAIT,
        || fs2::FileExt::try_lock_exclusive(lock),
        |_| true,
    )
    .map_err(|_| locked(dir))
}

/// [`StoreError::Locked`] for `dir`, naming the holder's pid if it is known.
fn locked(dir: &Path) -> StoreError {
    // The holder wrote its pid after it took the lock; a pid no process
    // has is an older holder's (the lock is held by something else, e.g.
    // `flock` during a backup): not named.
    let pid = std::fs::read_to_string(dir.join(LOCK_FILE))
        .ok()
        .and_then(|s| s.trim().parse().ok())
        .filter(|pid: &u32| Path::new(&format!("/proc/{pid}")).exists());
    StoreError::Locked {
        path: dir.display().to_string(),
        pid,
        command: pid.and_then(process_command),
    }
}

/// Process `pid`'s arguments, its program first (`/proc/PID/cmdline`).
fn process_args(pid: u32) -> Option<Vec<String>> {
    let raw = std::fs::read(format!("/proc/{pid}/cmdline")).ok()?;
    let args: Vec<String> = (raw.split(|b| *b == 0))
        .filter(|a| !a.is_empty())
        .map(|a| String::from_utf8_lossy(a).into_owned())
        .collect();
    (!args.is_empty()).then_some(args)
}

/// Whether process `pid` is a reckon daemon (`reckon [options] run`):
/// `None` where `/proc` does not say.
pub fn is_daemon_process(pid: u32) -> Option<bool> {
    Some(reckon_subcommand(&process_args(pid)?) == Some("run"))
}

/// The subcommand of a reckon command line (program first): its first
/// argument that is neither an option nor the value of `--config` or
/// `--log-format` (the global options that take one).
fn reckon_subcommand(args: &[String]) -> Option<&str> {
    let mut words = args.iter().skip(1);
    while let Some(w) = words.next() {
        if w == "--config" || w == "--log-format" {
            words.next();
        } else if !w.starts_with('-') {
            return Some(w);
        }
    }
    None
}

/// A store's holder as messages name it: "pid 42, `reckon sync x`" (the
/// command where known); `None` without a pid.
pub fn holder(pid: Option<u32>, command: Option<&str>) -> Option<String> {
    pid.map(|p| match command {
        Some(c) => format!("pid {p}, `{c}`"),
        None => format!("pid {p}"),
    })
}

/// Process `pid`'s command line as `ps` shows it: the program's file name,
/// then its arguments, control characters shown as `?`, at most 160
/// characters. `None` where `/proc` does not say (the process is gone, or
/// another system). What holds a store is named by it (QA29-A L5: a
/// one-shot `reckon sync` was taken for the daemon).
pub fn process_command(pid: u32) -> Option<String> {
    let args = process_args(pid)?;
    let (program, args) = args.split_first()?;
    let mut out = Path::new(program)
        .file_name()?
        .to_string_lossy()
        .into_owned();
    for a in args {
        out.push(' ');
        out.push_str(a);
    }
    let mut shown: String = out
        .chars()
        .map(|c| if c.is_control() { '?' } else { c })
        .take(160)
        .collect();
    if out.chars().count() > 160 {
        shown.push('…');
    }
    Some(shown)
}

/// [`StoreError::Locked`] if another process holds `dir`'s lock now (a
/// running `reckon run`, a command, or `flock` during a backup). Checked
/// without creating or changing anything: a `dir` without a lock file, or
/// one that cannot be opened, is not held. `reckon run` asks before it
/// binds its listener and opens (maybe creates) the store; `reckon status`
/// asks when no daemon answers. The answer may be stale at once: only
/// [`Store::open`] takes the lock.
pub fn held_by_another_process(dir: &Path) -> Result<(), StoreError> {
    let Ok(lock) = File::open(dir.join(LOCK_FILE)) else {
        return Ok(());
    };
    match fs2::FileExt::try_lock_shared(&lock) {
        // Released when `lock` is closed, here.
        Ok(()) => Ok(()),
        Err(_) => Err(locked(dir)),
    }
}

/// Whether `dir`'s lock file is there but this user may not open it, or
/// may not reach it: whether a process holds the store cannot be told
/// (QA48 I-M1: `reckon status` as another user took that for "no daemon
/// holds it" and blamed another config's daemon).
pub fn lock_unreadable(dir: &Path) -> bool {
    matches!(File::open(dir.join(LOCK_FILE)), Err(e) if e.kind() == std::io::ErrorKind::PermissionDenied)
}

/// The data directory's lock file. Every open writes its pid into it; it
/// stays when the process ends, so it also shows that the directory has
/// held a store ([`StoreError::Missing`]).
const LOCK_FILE: &str = "reckon.lock";

/// `meta` key of the flush counter: [`Store::flush`] puts `n + 1` there
/// (8 bytes, big-endian) before it asks sled to flush.
const META_FLUSHES: &str = "flushes";

/// The data directory's record of the flushes made: `flushed N synced M`,
/// N the last flush sled returned from, M the last one [`Store::fsync`]
/// made durable. Written after them, so a store whose counter is below M
/// has lost what was durable (its files cut short, damaged, or an older
/// copy put in their place), and one below N what sled had flushed (also
/// what a power loss takes).
pub const FLUSH_MARK: &str = "flushes.mark";

/// The flush counter as this process knows it, and the mark file.
#[derive(Debug)]
struct FlushMark {
    /// The last number put in `meta`.
    next: u64,
    /// The last number the mark file was given as flushed.
    flushed: u64,
    /// The last number made durable ([`Store::fsync`]).
    synced: u64,
    /// The mark file, opened at the first write.
    file: Option<File>,
}

impl FlushMark {
    /// Reads `flushed N synced M` from the mark file; `None` when there is
    /// none (a store of a release before it, or never flushed) or it
    /// cannot be read as written (then it is written anew).
    fn read(path: &Path) -> Option<(u64, u64)> {
        let text = std::fs::read_to_string(path).ok()?;
        let mut w = text.split_whitespace();
        match (w.next(), w.next(), w.next(), w.next()) {
            (Some("flushed"), Some(f), Some("synced"), Some(s)) => {
                Some((f.parse().ok()?, s.parse().ok()?))
            }
            _ => None,
        }
    }

    /// Records flush `n` (made durable when `synced`) in the mark file.
    /// The mark may lag behind the store (a write that failed is only
    /// logged) but is never ahead of it.
    fn record(&mut self, dir: &Path, n: u64, synced: bool) {
        use std::io::{Seek, Write};
        if n <= self.flushed && !(synced && n > self.synced) {
            return;
        }
        self.flushed = self.flushed.max(n);
        if synced {
            self.synced = self.synced.max(n);
        }
        let path = dir.join(FLUSH_MARK);
        let text = format!("flushed {:020} synced {:020}\n", self.flushed, self.synced);
        let written = (|| -> std::io::Result<()> {
            let created = self.file.is_none();
            if created {
                self.file = Some(
                    std::fs::OpenOptions::new()
                        .write(true)
                        .create(true)
                        .truncate(false)
                        .open(&path)?,
                );
            }
            let mut f = self.file.as_ref().expect("opened above");
            // The same length every time: one small write over the last.
            f.seek(std::io::SeekFrom::Start(0))?;
            f.write_all(text.as_bytes())?;
            if synced {
                f.sync_data()?;
                if created {
                    File::open(dir)?.sync_all()?;
                }
            }
            Ok(())
        })();
        if let Err(error) = written {
            tracing::debug!(path = %path.display(), %error, "the flush mark was not written");
        }
    }
}

/// Calls `attempt` until it succeeds, fails other than `locked`, or `wait`
/// has passed, polling every 5 ms: the two locks [`Store::open`] takes are
/// released moments after a handle of this same process is dropped.
fn retry_while_locked<T, E>(
    wait: std::time::Duration,
    mut attempt: impl FnMut() -> Result<T, E>,
    locked: impl Fn(&E) -> bool,
) -> Result<T, E> {
    let started = std::time::Instant::now();
    loop {
        match attempt() {
            Err(e) if locked(&e) && started.elapsed() < wait => {
                std::thread::sleep(std::time::Duration::from_millis(5));
            }
            other => return other,
        }
    }
}

/// How long [`lock_exclusive`] waits for the data directory's lock.
const DIR_LOCK_WAIT: std::time::Duration = std::time::Duration::from_millis(500);

/// How long [`open_sled`] waits for sled's lock left by a dropped handle.
const SLED_LOCK_WAIT: std::time::Duration = std::time::Duration::from_secs(3);

/// sled's page cache, in MiB, of a store opened by a command (and by the
/// daemon unless `[daemon] store_cache_mb` says otherwise).
pub const DEFAULT_CACHE_MB: u64 = 64;

impl Store {
    /// Opens (creating if needed) the store in `dir`, takes the directory
    /// lock, and runs migrations (logged, never silent). sled's cache is
    /// [`DEFAULT_CACHE_MB`].
    pub fn open(dir: &Path) -> Result<Store, StoreError> {
        Store::open_with_cache(dir, DEFAULT_CACHE_MB)
    }

    /// [`Store::open`] with sled's page cache holding up to `cache_mb` MiB
    /// of the store's pages (`[daemon] store_cache_mb`). Pages read stay
    /// decoded in memory until the cache is full: a long-running daemon
    /// whose cache holds the whole store reads nodes without decoding them
    /// again (an incremental reconciliation reads ~60k random keys).
    pub fn open_with_cache(dir: &Path, cache_mb: u64) -> Result<Store, StoreError> {
        let store = Store::open_unmigrated(dir, cache_mb)?;
        store.migrate()?;
        store.close_stale_runs()?;
        Ok(store)
    }

    /// Opens the store as it is, for a check that must change nothing an
    /// older release could not read (`reckon config check` before an
    /// upgrade, QA44b B-M1): no migration, and runs left `running` stay
    /// so. A store written by a newer Reckon is refused as by
    /// [`Store::open`]; one written by an older release opens, and
    /// [`Store::schema_version`] says which (below [`SCHEMA_VERSION`]: its
    /// layout may not be this release's, so read nothing of it).
    pub fn open_unmigrated(dir: &Path, cache_mb: u64) -> Result<Store, StoreError> {
        refuse_another_owner(dir)?;
        std::fs::create_dir_all(dir).map_err(|e| {
            not_writable(dir, dir, &e).unwrap_or_else(|| {
                io_err(
                    dir,
                    format!("cannot create the data directory: {e}; check `[daemon] data_dir`"),
                )
            })
        })?;
        let lock_path = dir.join(LOCK_FILE);
        // A lock file left by an earlier open: this directory held a store.
        let held_a_store = lock_path.exists();
        let lock = std::fs::OpenOptions::new()
            .read(true)
            .write(true)
            .create(true)
            .truncate(false)
            .open(&lock_path)
            .map_err(|e| {
                not_writable(dir, &lock_path, &e).unwrap_or_else(|| {
                    io_err(&lock_path, format!("{e}: cannot open the lock file"))
                })
            })?;
        lock_exclusive(&lock, dir)?;
        {
            use std::io::{Seek, Write};
            let mut l = &lock;
            let _ = l.set_len(0);
            let _ = l.seek(std::io::SeekFrom::Start(0));
            let _ = writeln!(l, "{}", std::process::id());
        }
        let db_dir = dir.join("store");
        // sled creates its files when they are missing: after `rm -rf
        // store` (or of its `db` file) every command would silently work
        // on a new, empty store.
        if held_a_store {
            let missing = [db_dir.clone(), db_dir.join("db")]
                .into_iter()
                .find(|p| !p.exists());
            if let Some(missing) = missing {
                return Err(StoreError::Missing {
                    data_dir: dir.display().to_string(),
                    missing: missing.display().to_string(),
                    lock: lock_path.display().to_string(),
                });
            }
        }
        let (db, config) = open_sled(dir, cache_mb)?;
        let t = |name: &str| db.open_tree(name).map_err(|e| sled_err(dir, e));
        let inner = Inner {
            health: Arc::new(Health {
                dir: dir.to_path_buf(),
                config,
                failure: tokio::sync::watch::channel(None).0,
            }),
            data: t("data")?,
            runs: t("runs")?,
            meta: t("meta")?,
            dir: dir.to_path_buf(),
            db,
            commit_lock: Mutex::new(()),
            flushes: Mutex::new(FlushMark {
                next: 0,
                flushed: 0,
                synced: 0,
                file: None,
            }),
            _lock: lock,
        };
        let store = Store {
            inner: Arc::new(inner),
        };
        // A directory that held a store whose files now hold no schema
        // version: sled recovered nothing (QA21 A21-2: `db` cut short with
        // its snapshot gone opened as an empty store, exit 0, and sled
        // removed blob files). A new store's version is flushed as soon as
        // it is written (`migrate`), so only damage (or a first start cut
        // short within that moment) leaves a used directory without one.
        if held_a_store && store.schema_version()? == 0 {
            return Err(StoreError::Damaged {
                path: db_dir.display().to_string(),
                data_dir: dir.display().to_string(),
                detail: "it holds no data although this data directory held a store; if it never held data (a first start cut short), remove the data directory and start again".into(),
            });
        }
        let found = store.schema_version()?;
        if found > SCHEMA_VERSION {
            return Err(StoreError::SchemaTooNew {
                found,
                supported: SCHEMA_VERSION,
            });
        }
        store.check_flushes(&db_dir)?;
        Ok(store)
    }

    /// Compares the store's flush counter with the data directory's mark
    /// ([`FLUSH_MARK`]): sled recovers a `db` cut short (or an older copy)
    /// to what it still holds and says nothing (QA: 200 of 8,000 records
    /// gone, exit 0). Below what was made durable: refused as damaged.
    /// Below what was flushed only (also what a power loss takes): opened,
    /// with an ERROR naming what is missing.
    fn check_flushes(&self, db_dir: &Path) -> Result<(), StoreError> {
        let stored = match self.inner.meta.get(META_FLUSHES).map_err(|e| self.err(e))? {
            None => 0,
            Some(v) => <[u8; 8]>::try_from(v.as_ref())
                .map(u64::from_be_bytes)
                .map_err(|_| StoreError::Corrupt {
                    tree: "meta".into(),
                    key: META_FLUSHES.into(),
                    message: format!("expected 8 bytes, found {}", v.len()),
                })?,
        };
        let dir = &self.inner.dir;
        let mark_path = dir.join(FLUSH_MARK);
        let (flushed, synced) = FlushMark::read(&mark_path).unwrap_or((0, 0));
        if stored < synced {
            return Err(StoreError::Damaged {
                path: db_dir.display().to_string(),
                data_dir: dir.display().to_string(),
                detail: format!(
                    "it holds the store as of flush {stored}, but flush {synced} had been made durable before ({}): its files were cut short or damaged, or an older copy was put in their place. After restoring a backup of the store alone, restore the whole data directory (its `{FLUSH_MARK}` belongs with it); to open the store as it is and accept what it lost, remove {}",
                    mark_path.display(),
                    mark_path.display()
                ),
            });
        }
        if stored < flushed {
            tracing::error!(
                data_dir = %dir.display(),
                store_flush = stored,
                last_flush = flushed,
                "the store has lost what it held after flush {stored} (flushes up to {flushed} had completed): power was lost before the disk kept them, or its files were cut short or replaced by an older copy; syncs fetch again what their lookback_days cover, postbacks received since are lost, run `reckon reconcile` and check `reckon status`"
            );
        }
        let mut m = self.inner.flushes.lock().unwrap_or_else(|p| p.into_inner());
        (m.next, m.flushed, m.synced) = (stored, stored, synced.min(stored));
        Ok(())
    }

    /// Marks runs recorded as `running` as `interrupted`: the store is
    /// single-process, so a run still `running` when it is opened belongs
    /// to a process that died (kill -9, a crash, power loss) and would
    /// otherwise show as running until the connector's next run.
    /// Only the runs marked under [`RUNNING_PREFIX`] are read, not the
    /// whole (never pruned) history.
    fn close_stale_runs(&self) -> Result<(), StoreError> {
        let marks: Vec<(sled::IVec, sled::IVec)> = self
            .inner
            .meta
            .scan_prefix(RUNNING_PREFIX.as_bytes())
            .collect::<Result<_, _>>()
            .map_err(|e| self.err(e))?;
        for (mark, k) in marks {
            self.inner.meta.remove(mark).map_err(|e| self.err(e))?;
            let Some(v) = self.inner.runs.get(&k).map_err(|e| self.err(e))? else {
                continue;
            };
            let Ok(mut run) = codec::decode_json::<RunRecord>(&v) else {
                continue;
            };
            if run.outcome != RunOutcome::Running {
                continue;
            }
            run.outcome = RunOutcome::Interrupted;
            run.error = Some(format!(
                "{DIED_UNFINISHED} (killed or crashed); the pages it committed are kept (its page and record counts were not saved); {CUT_OFF_RUNS}"
            ));
            self.inner
                .runs
                .insert(k, codec::encode_json(&run))
                .map_err(|e| self.err(e))?;
        }
        Ok(())
    }

    /// The data directory.
    pub fn dir(&self) -> &Path {
        &self.inner.dir
    }

    fn err(&self, e: sled::Error) -> StoreError {
        self.inner.health.err(e)
    }

    /// Why the store refuses every write for the rest of this process, once
    /// it does: sled 0.34 keeps the first I/O error of a write to its log
    /// (a full disk, a failing device) and returns it from every later call,
    /// even after space is freed. Only a new process (a new open) recovers.
    /// `None` while the store works. Checked at each call (an atomic load),
    /// so an error of sled's own background flush shows here too.
    pub fn failure(&self) -> Option<String> {
        self.inner.health.check();
        self.inner.health.failure.borrow().clone()
    }

    /// Changes when the store fails for good (see [`Store::failure`]), for
    /// the daemon, which must stop and be restarted then.
    pub fn watch_failure(&self) -> tokio::sync::watch::Receiver<Option<String>> {
        self.inner.health.failure.subscribe()
    }

    /// The schema version stored in `meta` (0 for a store never written).
    pub fn schema_version(&self) -> Result<u32, StoreError> {
        match self.meta_get(META_SCHEMA)? {
            None => Ok(0),
            Some(v) => {
                let b: [u8; 4] = v.as_ref().try_into().map_err(|_| StoreError::Corrupt {
                    tree: "meta".into(),
                    key: META_SCHEMA.into(),
                    message: format!("expected 4 bytes, found {}", v.len()),
                })?;
                Ok(u32::from_be_bytes(b))
            }
        }
    }

    pub(crate) fn set_schema_version(&self, v: u32) -> Result<(), StoreError> {
        self.inner
            .meta
            .insert(META_SCHEMA, &v.to_be_bytes())
            .map_err(|e| self.err(e))?;
        self.flush()
    }

    /// Runs migrations from the stored schema version to [`SCHEMA_VERSION`].
    /// Each step is restartable: a crash part-way leaves the old version
    /// number, and the step runs again (it only overwrites) at the next open.
    fn migrate(&self) -> Result<(), StoreError> {
        let found = self.schema_version()?;
        if found > SCHEMA_VERSION {
            return Err(StoreError::SchemaTooNew {
                found,
                supported: SCHEMA_VERSION,
            });
        }
        if found < SCHEMA_VERSION {
            // Version 0 is a store never written: nothing to convert.
            if found == 1 {
                tracing::info!(
                    from = found,
                    to = SCHEMA_VERSION,
                    dir = %self.inner.dir.display(),
                    "store migration: rewriting records, revisions, change log and checkpoints into the one-tree binary layout"
                );
                let n = self.migrate_v1_to_v2()?;
                tracing::info!(values = n, "store migration to schema 2 done");
                // Each step is recorded, so a crash in the next one does
                // not run this one again over its output.
                self.set_schema_version(2)?;
            }
            if found == 1 || found == 2 {
                tracing::info!(
                    from = 2,
                    to = 3,
                    dir = %self.inner.dir.display(),
                    "store migration: grouping records into blocks"
                );
                let (records, blocks) = self.migrate_v2_to_v3()?;
                tracing::info!(records, blocks, "store migration to schema 3 done");
                self.set_schema_version(3)?;
            }
            if (1..=3).contains(&found) {
                // Nothing is rewritten: the version alone makes releases
                // before it refuse the store (see `SCHEMA_VERSION`).
                tracing::info!(
                    from = 3,
                    to = 4,
                    dir = %self.inner.dir.display(),
                    "store migration: no data rewritten; releases before schema 4 (2026-12-01) now refuse this store, so restore the backup taken before the upgrade to roll back"
                );
            }
            self.set_schema_version(SCHEMA_VERSION)?;
            if found == 0 {
                // Durable at once: a used directory without it is damage
                // (see `open`).
                self.inner.db.flush().map_err(|e| self.err(e))?;
            }
        }
        // Schema-1 trees, migrated just now or left by a migration that
        // stopped after writing the new version (their content is in `data`).
        let has_v1_trees = self
            .inner
            .db
            .tree_names()
            .iter()
            .any(|n| V1_TREES.iter().any(|t| n.as_ref() == t.as_bytes()));
        if has_v1_trees {
            for t in V1_TREES {
                self.inner
                    .db
                    .drop_tree(t.as_bytes())
                    .map_err(|e| self.err(e))?;
            }
            for k in self
                .inner
                .meta
                .iter()
                .keys()
                .filter_map(Result::ok)
                .filter(|k| {
                    k.as_ref() == SEQ_NAME.as_bytes() || k.starts_with(COUNT_PREFIX.as_bytes())
                })
                .collect::<Vec<_>>()
            {
                self.inner.meta.remove(k).map_err(|e| self.err(e))?;
            }
            self.flush()?;
        }
        Ok(())
    }

    /// Schema 1 → 2: records and revisions re-encoded (binary body) under
    /// `data` prefixes; each old change becomes a one-change page;
    /// checkpoints and counters copied. Returns the number of values written.
    fn migrate_v1_to_v2(&self) -> Result<u64, StoreError> {
        let db = &self.inner.db;
        let data = &self.inner.data;
        let mut batch = sled::Batch::default();
        let mut pending = 0usize;
        let mut total = 0u64;
        let mut put = |batch: &mut sled::Batch, k: Vec<u8>, v: Vec<u8>| -> Result<(), StoreError> {
            batch.insert(k, v);
            pending += 1;
            total += 1;
            if pending >= 10_000 {
                data.apply_batch(std::mem::take(batch))
                    .map_err(|e| self.err(e))?;
                pending = 0;
            }
            Ok(())
        };
        let corrupt = |tree: &str, k: &[u8], message: String| StoreError::Corrupt {
            tree: tree.into(),
            key: String::from_utf8_lossy(k).into_owned(),
            message,
        };
        let open = |name: &str| db.open_tree(name).map_err(|e| self.err(e));
        for kind in [RecordKind::Spend, RecordKind::Conversion, RecordKind::Order] {
            let name = kind.as_str();
            for kv in open(name)?.iter() {
                let (k, v) = kv.map_err(|e| self.err(e))?;
                let h = codec::decode_header(&v).map_err(|m| corrupt(name, &k, m))?;
                let s = codec::decode_stored(&v).map_err(|m| corrupt(name, &k, m))?;
                let body = codec::encode_record_body(&s.record);
                let mut nk = vec![P_RECORD, kind_char(kind)];
                nk.extend_from_slice(&k);
                put(
                    &mut batch,
                    nk,
                    codec::encode_stored(
                        h.revision,
                        h.seq,
                        h.first_seen_us,
                        h.changed_at_us,
                        &body,
                    ),
                )?;
            }
        }
        for kv in open("revisions")?.iter() {
            let (k, v) = kv.map_err(|e| self.err(e))?;
            let slash = k.iter().position(|&b| b == b'/').unwrap_or(0);
            let kind = [RecordKind::Spend, RecordKind::Conversion, RecordKind::Order]
                .into_iter()
                .find(|kd| kd.as_str().as_bytes() == &k[..slash])
                .ok_or_else(|| corrupt("revisions", &k, "unknown record kind".into()))?;
            let (at, rec) = codec::decode_revision(&v).map_err(|m| corrupt("revisions", &k, m))?;
            let mut nk = vec![P_REVISION, kind_char(kind)];
            nk.extend_from_slice(&k[slash + 1..]);
            put(
                &mut batch,
                nk,
                codec::encode_revision(at.timestamp_micros(), &codec::encode_record_body(&rec)),
            )?;
        }
        for kv in open("changes")?.iter() {
            let (k, v) = kv.map_err(|e| self.err(e))?;
            let seq: [u8; 8] = k
                .as_ref()
                .try_into()
                .map_err(|_| corrupt("changes", &k, "sequence key is not 8 bytes".into()))?;
            let (kind, source, key) =
                codec::decode_change_v1(&v).map_err(|m| corrupt("changes", &k, m))?;
            let mut page = vec![codec::V1];
            codec::push_change(&mut page, kind, &source, &key);
            put(
                &mut batch,
                change_key(u64::from_be_bytes(seq)).to_vec(),
                page,
            )?;
        }
        for kv in open("checkpoints")?.iter() {
            let (k, v) = kv.map_err(|e| self.err(e))?;
            let mut nk = vec![P_CHECKPOINT];
            nk.extend_from_slice(&k);
            put(&mut batch, nk, v.to_vec())?;
        }
        for kv in self.inner.meta.iter() {
            let (k, v) = kv.map_err(|e| self.err(e))?;
            if k.as_ref() == SEQ_NAME.as_bytes() || k.starts_with(COUNT_PREFIX.as_bytes()) {
                let mut nk = vec![P_COUNTER];
                nk.extend_from_slice(&k);
                put(&mut batch, nk, v.to_vec())?;
            }
        }
        data.apply_batch(batch).map_err(|e| self.err(e))?;
        Ok(total)
    }

    /// Schema 2 → 3: the per-record values (`r` keys) regrouped, in key
    /// order, into blocks ([`block`]). Each `apply_batch` writes whole
    /// blocks and removes the keys they hold, so a crash leaves every record
    /// in exactly one place; the next open regroups the keys left, which
    /// all lie after the blocks of their source. Returns (records, blocks).
    fn migrate_v2_to_v3(&self) -> Result<(u64, u64), StoreError> {
        let data = &self.inner.data;
        let (mut records, mut blocks) = (0u64, 0u64);
        let mut batch = sled::Batch::default();
        let mut in_batch = 0usize;
        // The block being filled: its prefix and (key, old `r` key, value).
        let mut prefix: Vec<u8> = Vec::new();
        let mut pending: Vec<(sled::IVec, sled::IVec)> = Vec::new();
        let mut bytes = 0usize;
        let mut close = |prefix: &[u8],
                         pending: &mut Vec<(sled::IVec, sled::IVec)>,
                         batch: &mut sled::Batch,
                         last: bool|
         -> Result<(), StoreError> {
            if let Some((k, _)) = pending.last() {
                let skip = prefix.len();
                // `b` · kind · `source/` · last key (the `r` key's own prefix
                // with the block marker).
                let mut key = [prefix, &k[skip..]].concat();
                key[0] = P_BLOCK;
                let value = block::encode(pending.iter().map(|(k, v)| (&k[skip..], v.as_ref())));
                batch.insert(key, value);
                for (k, _) in pending.iter() {
                    batch.remove(k.clone());
                }
                records += pending.len() as u64;
                blocks += 1;
                in_batch += pending.len();
                pending.clear();
            }
            if in_batch >= 10_000 || (last && in_batch > 0) {
                data.apply_batch(std::mem::take(batch))
                    .map_err(|e| self.err(e))?;
                in_batch = 0;
            }
            Ok(())
        };
        for kv in data.scan_prefix([P_RECORD]) {
            let (k, v) = kv.map_err(|e| self.err(e))?;
            let slash =
                k.iter()
                    .skip(2)
                    .position(|&b| b == b'/')
                    .ok_or_else(|| StoreError::Corrupt {
                        tree: "data".into(),
                        key: logical_key(&k),
                        message: "record key without `source/`".into(),
                    })?;
            let p = &k[..2 + slash + 1];
            let size = block::entry_len(&k[p.len()..], &v);
            if p != prefix.as_slice() || (!pending.is_empty() && bytes + size > block::TARGET_BYTES)
            {
                close(&prefix, &mut pending, &mut batch, false)?;
                prefix = p.to_vec();
                bytes = 0;
            }
            bytes += size;
            pending.push((k, v));
        }
        close(&prefix, &mut pending, &mut batch, true)?;
        Ok((records, blocks))
    }

    /// Tests: stores `value` as the raw stored value of one record, in a
    /// block of its own (replacing the block it was in, if that held only it).
    #[cfg(test)]
    pub(crate) fn put_raw_record(&self, kind: RecordKind, source: &str, key: &str, value: &[u8]) {
        let bk = [block_prefix(kind, source).as_slice(), key.as_bytes()].concat();
        let v = block::encode([(key.as_bytes(), value)].into_iter());
        self.inner.data.insert(bk, v).unwrap();
    }

    fn meta_get(&self, key: &str) -> Result<Option<sled::IVec>, StoreError> {
        self.inner.meta.get(key).map_err(|e| self.err(e))
    }

    /// Upserts records of one source and (optionally) saves the checkpoint
    /// that covers them, as one atomic sled batch. Unchanged records write
    /// nothing; a changed record keeps its previous value as a [`Revision`].
    ///
    /// Cost per page: keys and binary values encoded and sorted
    /// ([`Store::prepare_page`]), one range scan (or a seek per key, for
    /// keys spread over the store) to find the blocks they fall in, and one
    /// `apply_batch` holding the blocks that changed, the revisions, one
    /// change-log page, the counters and the checkpoint.
    pub fn commit_page(
        &self,
        source: &str,
        records: &[Record],
        checkpoint: Option<&Checkpoint>,
        now: DateTime<Utc>,
    ) -> Result<CommitStats, StoreError> {
        self.commit_prepared(Store::prepare_page(source, records), checkpoint, now)
    }

    /// The store-independent half of [`Store::commit_page`]: keys and values
    /// encoded, sorted by key, a key given twice reduced to its last
    /// occurrence (the earlier one was never current). Pure CPU work, so
    /// [`writer::PageWriter`] runs it on the caller's thread while the writer
    /// thread commits the previous page.
    pub fn prepare_page(source: &str, records: &[Record]) -> PreparedPage {
        let mut entries: Vec<Prepared> = records
            .iter()
            .enumerate()
            .map(|(pos, r)| {
                let mut value = Vec::with_capacity(codec::HEADER + 224);
                value.resize(codec::HEADER, 0);
                binrec::encode(r, &mut value);
                Prepared {
                    key: key_of(r, source),
                    kind: r.kind(),
                    value,
                    pos,
                }
            })
            .collect();
        entries.sort_unstable_by(|a, b| a.key.cmp(&b.key).then(b.pos.cmp(&a.pos)));
        entries.dedup_by(|later_in_sort, kept| later_in_sort.key == kept.key);
        PreparedPage {
            source: source.to_owned(),
            entries,
        }
    }

    /// Commits a page made by [`Store::prepare_page`] (see [`Store::commit_page`]).
    pub fn commit_prepared(
        &self,
        page: PreparedPage,
        checkpoint: Option<&Checkpoint>,
        now: DateTime<Utc>,
    ) -> Result<CommitStats, StoreError> {
        let inner = &*self.inner;
        let source = page.source.as_str();
        let _guard = inner.commit_lock.lock().unwrap_or_else(|p| p.into_inner());
        let mut stats = CommitStats::default();

        // Find the blocks the page's keys fall in. Safe outside the batch:
        // every record writer holds commit_lock.
        let mut entries = page.entries;
        let skip = 2 + source.len() + 1;
        let mut touched: Vec<Touched> = Vec::new();
        let mut i = 0;
        while i < entries.len() {
            let kind = entries[i].kind;
            let j = i + entries[i..].iter().take_while(|e| e.kind == kind).count();
            locate(
                &inner.data,
                &block_prefix(kind, source),
                &entries,
                i..j,
                skip,
                &mut touched,
            )
            .map_err(|e| self.err(e))?;
            i = j;
        }

        // Decide new / changed / unchanged per record, block by block, and
        // lay out each block's new contents.
        let now_us = now.timestamp_micros();
        let mut batch = sled::Batch::default();
        // (revision, first seen) of each new or changed entry.
        let mut verdicts: Vec<Option<(u32, i64)>> = vec![None; entries.len()];
        let mut layouts: Vec<Option<Layout>> = Vec::with_capacity(touched.len());
        let mut added = [0u64; 3];
        for t in &touched {
            let old = t.old.as_ref().map(|(_, v)| v.as_ref()).unwrap_or_default();
            let corrupt = |key: &[u8], m: String| StoreError::Corrupt {
                tree: t.kind.as_str().into(),
                key: format!("{source}/{}", String::from_utf8_lossy(key)),
                message: m,
            };
            let spans: Vec<block::Span> = match &t.old {
                None => Vec::new(),
                Some((k, v)) => block::spans(v).map_err(|m| corrupt(&k[skip..], m))?,
            };
            let mut items = Vec::with_capacity(spans.len() + t.page.len());
            let mut dirty = false;
            let mut o = 0;
            for p in t.page.clone() {
                let key = &entries[p].key[skip..];
                while o < spans.len() && &old[spans[o].0.clone()] < key {
                    items.push(Item::Old(o));
                    o += 1;
                }
                let cur = (o < spans.len() && &old[spans[o].0.clone()] == key)
                    .then(|| &old[spans[o].1.clone()]);
                let Some(bytes) = cur else {
                    stats.new += 1;
                    added[kind_index(t.kind)] += 1;
                    verdicts[p] = Some((1, now_us));
                    items.push(Item::Page(p));
                    dirty = true;
                    continue;
                };
                let h = codec::decode_header(bytes).map_err(|m| corrupt(key, m))?;
                let old_body: std::borrow::Cow<'_, [u8]> = if bytes[0] == codec::V2 {
                    codec::body_of(bytes).into()
                } else {
                    // A format-1 value (none remain after the schema-2
                    // migration): compare by meaning, keep it re-encoded.
                    let s = codec::decode_stored(bytes).map_err(|m| corrupt(key, m))?;
                    codec::encode_record_body(&s.record).into()
                };
                o += 1;
                let new_body = &entries[p].value[codec::HEADER..];
                let decoded = (*old_body != *new_body)
                    .then(|| (binrec::decode(&old_body), binrec::decode(new_body)));
                let same = match &decoded {
                    None => true,
                    Some((Ok(a), Ok(b))) => a == b,
                    Some(_) => false,
                };
                if same {
                    stats.unchanged += 1;
                    items.push(Item::Old(o - 1));
                    continue;
                }
                stats.changed += 1;
                if let Some((Ok(Record::Conversion(was)), Ok(Record::Conversion(now)))) = &decoded {
                    warn_stale_status(source, key, was, now);
                }
                batch.insert(
                    revision_key(&entries[p].key, h.revision),
                    codec::encode_revision(now_us, &old_body),
                );
                verdicts[p] = Some((h.revision + 1, h.first_seen_us));
                items.push(Item::Page(p));
                dirty = true;
            }
            items.extend((o..spans.len()).map(Item::Old));
            layouts.push(dirty.then_some(Layout { spans, items }));
        }

        // Sequence numbers follow the order of the page.
        let mut seq = self.last_seq()?;
        let base_seq = seq;
        let mut change_page = vec![codec::V1];
        let mut order: Vec<usize> = (0..entries.len())
            .filter(|&p| verdicts[p].is_some())
            .collect();
        order.sort_unstable_by_key(|&p| entries[p].pos);
        for p in order {
            let Some((revision, first_us)) = verdicts[p] else {
                continue;
            };
            seq += 1;
            let e = &mut entries[p];
            let rkey = std::str::from_utf8(&e.key[skip..]).unwrap_or_default();
            codec::push_change(&mut change_page, e.kind, source, rkey);
            codec::put_header(&mut e.value, revision, seq, first_us, now_us);
        }

        // Write each changed block, split where it grew past the target.
        for (t, layout) in touched.iter().zip(layouts) {
            if let Some(layout) = layout {
                write_block(&mut batch, t, &layout, &entries, skip, source);
            }
        }

        let mut cp_changed = false;
        if let Some(cp) = checkpoint {
            let key = checkpoint_key(source, &cp.stream);
            let value = codec::encode_json(cp);
            let same = inner
                .data
                .get(&key)
                .map_err(|e| self.err(e))?
                .is_some_and(|v| v.as_ref() == value.as_slice());
            if !same {
                batch.insert(key, value);
                cp_changed = true;
            }
        }
        if seq == base_seq && !cp_changed {
            return Ok(stats);
        }
        if seq != base_seq {
            batch.insert(&change_key(base_seq + 1)[..], change_page);
            batch.insert(counter_key(SEQ_NAME), &seq.to_be_bytes());
        }
        // Record counts per kind and source, so /status and
        // `count_records` never scan.
        for (ki, n) in added.iter().enumerate() {
            if *n > 0 {
                let key = count_key(KINDS[ki], source);
                let current = self.read_u64_counter(&key)?;
                batch.insert(key, &(current + n).to_be_bytes());
            }
        }
        inner.data.apply_batch(batch).map_err(|e| self.err(e))?;
        Ok(stats)
    }

    /// Makes everything committed so far durable (flush; see ARCHITECTURE.md).
    pub fn flush(&self) -> Result<(), StoreError> {
        self.numbered_flush().map(|_| ())
    }

    /// [`Store::flush`], numbered: the counter goes to `meta` first (in
    /// order, under the lock, so it only grows), then sled flushes, then
    /// the mark file records the number. Returns it.
    fn numbered_flush(&self) -> Result<u64, StoreError> {
        let n = {
            let mut m = self.inner.flushes.lock().unwrap_or_else(|p| p.into_inner());
            let n = m.next + 1;
            self.inner
                .meta
                .insert(META_FLUSHES, &n.to_be_bytes())
                .map_err(|e| self.err(e))?;
            m.next = n;
            n
        };
        self.inner.db.flush().map_err(|e| self.err(e))?;
        self.record_flush(n, false);
        Ok(n)
    }

    fn record_flush(&self, n: u64, synced: bool) {
        let mut m = self.inner.flushes.lock().unwrap_or_else(|p| p.into_inner());
        m.record(&self.inner.dir, n, synced);
    }

    /// Flushes, then fsyncs sled's files and the data directory: use before an
    /// irreversible output (a finalised statement) that depends on the data.
    /// sled's own flush uses `sync_file_range` on Linux, which does not
    /// survive power loss; this does. That includes `store/blobs/`, where
    /// sled writes values larger than a quarter segment (~128 KiB, e.g. a
    /// big program's period record) without ever syncing them.
    pub fn fsync(&self) -> Result<(), StoreError> {
        let n = self.numbered_flush()?;
        let db_dir = self.inner.dir.join("store");
        let mut dirs = vec![self.inner.dir.clone()];
        let mut todo = vec![db_dir];
        while let Some(dir) = todo.pop() {
            let entries = std::fs::read_dir(&dir).map_err(|e| io_err(&dir, e))?;
            for e in entries.flatten() {
                let p = e.path();
                if p.is_file() {
                    let f = File::open(&p).map_err(|e| io_err(&p, e))?;
                    f.sync_all().map_err(|e| io_err(&p, e))?;
                } else if p.is_dir() {
                    todo.push(p);
                }
            }
            dirs.push(dir);
        }
        for d in dirs {
            if let Ok(f) = File::open(&d) {
                let _ = f.sync_all();
            }
        }
        // Only now is flush `n` durable.
        self.record_flush(n, true);
        Ok(())
    }

    /// Bytes sled uses on disk.
    pub fn size_on_disk(&self) -> Result<u64, StoreError> {
        self.inner.db.size_on_disk().map_err(|e| self.err(e))
    }

    /// The committed checkpoints of a connector, by stream.
    pub fn checkpoints(&self, source: &str) -> Result<BTreeMap<String, Checkpoint>, StoreError> {
        let prefix = checkpoint_key(source, "");
        let mut out = BTreeMap::new();
        for kv in self.inner.data.scan_prefix(&prefix) {
            let (k, v) = kv.map_err(|e| self.err(e))?;
            let key = String::from_utf8_lossy(&k[1..]).into_owned();
            let cp: Checkpoint = codec::decode_json(&v).map_err(|message| StoreError::Corrupt {
                tree: "checkpoints".into(),
                key: key.clone(),
                message,
            })?;
            out.insert(cp.stream.clone(), cp);
        }
        Ok(out)
    }

    /// Deletes a connector's checkpoints, of every stream or of one
    /// (`reckon records checkpoints --reset`): the records stay; the next
    /// run of the connector starts as a first one. Returns how many were
    /// deleted.
    pub fn reset_checkpoints(
        &self,
        source: &str,
        stream: Option<&str>,
    ) -> Result<usize, StoreError> {
        let mut batch = sled::Batch::default();
        let mut n = 0;
        match stream {
            Some(stream) => {
                let key = checkpoint_key(source, stream);
                if self
                    .inner
                    .data
                    .get(&key)
                    .map_err(|e| self.err(e))?
                    .is_some()
                {
                    batch.remove(key);
                    n = 1;
                }
            }
            None => {
                for kv in self.inner.data.scan_prefix(checkpoint_key(source, "")) {
                    let (k, _) = kv.map_err(|e| self.err(e))?;
                    batch.remove(k);
                    n += 1;
                }
            }
        }
        self.inner
            .data
            .apply_batch(batch)
            .map_err(|e| self.err(e))?;
        self.flush()?;
        Ok(n)
    }

    /// All records of a kind, optionally of one source, in key order.
    pub fn scan_records(
        &self,
        kind: RecordKind,
        source: Option<&str>,
    ) -> Box<dyn Iterator<Item = Result<Stored, StoreError>> + '_> {
        let prefix = match source {
            Some(s) => block_prefix(kind, s),
            None => vec![P_BLOCK, kind_char(kind)],
        };
        let dir = self.inner.dir.clone();
        Box::new(
            self.inner
                .data
                .scan_prefix(prefix)
                .flat_map(move |kv| match kv {
                    Ok((k, v)) => block_records(kind, &k, &v, |_| true),
                    Err(e) => vec![Err(sled_err(&dir, e))],
                }),
        )
    }

    /// The records of one source and kind whose keys lie in
    /// `first..=last`, in key order: only the blocks holding such keys
    /// are read (a spend pass reads one account's days, not the source).
    pub fn records_between(
        &self,
        kind: RecordKind,
        source: &str,
        first: &str,
        last: &str,
    ) -> Result<Vec<Stored>, StoreError> {
        let prefix = block_prefix(kind, source);
        let mut start = prefix.clone();
        start.extend_from_slice(first.as_bytes());
        let mut out = Vec::new();
        // A block's key is its last record's key: the first block at or
        // after `first` holds it, and the first block ending after `last`
        // is the last one to read.
        for kv in self.inner.data.range(start..prefix_end(&prefix)) {
            let (k, v) = kv.map_err(|e| self.err(e))?;
            let within = |key: &[u8]| key >= first.as_bytes() && key <= last.as_bytes();
            for r in block_records(kind, &k, &v, within) {
                out.push(r?);
            }
            if &k[prefix.len()..] >= last.as_bytes() {
                break;
            }
        }
        Ok(out)
    }

    /// Number of records of a kind (of one source, if given), from the
    /// counters `commit_page` keeps (no scan). 0 if unreadable.
    pub fn count_records(&self, kind: RecordKind, source: Option<&str>) -> u64 {
        match source {
            Some(s) => self.read_u64_counter(&count_key(kind, s)).unwrap_or(0),
            None => self
                .inner
                .data
                .scan_prefix(counter_key(&format!("{COUNT_PREFIX}{}/", kind.as_str())))
                .filter_map(Result::ok)
                .filter_map(|(_, v)| <[u8; 8]>::try_from(v.as_ref()).ok())
                .map(u64::from_be_bytes)
                .sum(),
        }
    }

    fn read_u64_counter(&self, key: &[u8]) -> Result<u64, StoreError> {
        match self.inner.data.get(key).map_err(|e| self.err(e))? {
            None => Ok(0),
            Some(v) => <[u8; 8]>::try_from(v.as_ref())
                .map(u64::from_be_bytes)
                .map_err(|_| StoreError::Corrupt {
                    tree: "meta".into(),
                    key: String::from_utf8_lossy(&key[1..]).into_owned(),
                    message: format!("expected 8 bytes, found {}", v.len()),
                }),
        }
    }

    /// One record by kind, source and key.
    pub fn get_record(
        &self,
        kind: RecordKind,
        source: &str,
        key: &str,
    ) -> Result<Option<Stored>, StoreError> {
        let prefix = block_prefix(kind, source);
        let from = [prefix.as_slice(), key.as_bytes()].concat();
        let corrupt = |message| StoreError::Corrupt {
            tree: kind.as_str().into(),
            key: format!("{source}/{key}"),
            message,
        };
        // The block holding `key` is the first whose last key is `>= key`.
        let Some(kv) = self.inner.data.range(from..prefix_end(&prefix)).next() else {
            return Ok(None);
        };
        let (_, v) = kv.map_err(|e| self.err(e))?;
        match block::find(&v, key.as_bytes()).map_err(corrupt)? {
            None => Ok(None),
            Some(value) => codec::decode_stored(value).map(Some).map_err(corrupt),
        }
    }

    /// Previous values of a record, oldest first.
    pub fn revisions(
        &self,
        kind: RecordKind,
        source: &str,
        key: &str,
    ) -> Result<Vec<Revision>, StoreError> {
        let rk = record_key(kind, source, key);
        let mut prefix = revision_key(&rk, 0);
        prefix.truncate(prefix.len() - 4);
        let mut out = Vec::new();
        for kv in self.inner.data.scan_prefix(&prefix) {
            let (k, v) = kv.map_err(|e| self.err(e))?;
            let corrupt = |message: String| StoreError::Corrupt {
                tree: "revisions".into(),
                key: String::from_utf8_lossy(&k[2..]).into_owned(),
                message,
            };
            let rev_bytes: [u8; 4] = k[prefix.len()..]
                .try_into()
                .map_err(|_| corrupt("revision number is not 4 bytes".into()))?;
            let (superseded_at, record) = codec::decode_revision(&v).map_err(corrupt)?;
            out.push(Revision {
                revision: u32::from_be_bytes(rev_bytes),
                record,
                superseded_at,
            });
        }
        Ok(out)
    }

    /// The highest change sequence number so far (0 for an empty store).
    pub fn last_seq(&self) -> Result<u64, StoreError> {
        self.read_u64_counter(&counter_key(SEQ_NAME))
    }

    /// Changes with `seq > after`, in sequence order. The change log holds
    /// one entry per committed page, keyed by its first sequence number.
    pub fn changes_since(
        &self,
        after: u64,
    ) -> Box<dyn Iterator<Item = Result<Change, StoreError>> + '_> {
        let start = after.saturating_add(1);
        let data = &self.inner.data;
        let dir = self.inner.dir.clone();
        // The page holding `start` begins at or before it.
        let begin = match data.range(change_key(0)..=change_key(start)).next_back() {
            Some(Ok((k, _))) => k.to_vec(),
            Some(Err(e)) => return Box::new(std::iter::once(Err(self.err(e)))),
            None => change_key(start).to_vec(),
        };
        let end = prefix_end(&[P_CHANGE]);
        Box::new(
            data.range(begin..end)
                .flat_map(move |kv| -> Vec<Result<Change, StoreError>> {
                    let (k, v) = match kv {
                        Ok(kv) => kv,
                        Err(e) => return vec![Err(sled_err(&dir, e))],
                    };
                    let corrupt = |message: String| StoreError::Corrupt {
                        tree: "changes".into(),
                        key: hex::encode(&k[1..]),
                        message,
                    };
                    let first = match <[u8; 8]>::try_from(&k[1..]) {
                        Ok(b) => u64::from_be_bytes(b),
                        Err(_) => return vec![Err(corrupt("sequence key is not 8 bytes".into()))],
                    };
                    match codec::decode_change_page(&v) {
                        Err(m) => vec![Err(corrupt(m))],
                        Ok(changes) => changes
                            .into_iter()
                            .enumerate()
                            .map(|(i, (kind, source, key))| Change {
                                seq: first + i as u64,
                                kind,
                                source,
                                key,
                            })
                            .filter(|c| c.seq > after)
                            .map(Ok)
                            .collect(),
                    }
                }),
        )
    }
    pub fn save_run(&self, run: &RunRecord) -> Result<(), StoreError> {
        let key = run_key(&run.source, run.started_at);
        let mut mark = RUNNING_PREFIX.as_bytes().to_vec();
        mark.extend_from_slice(key.as_ref());
        self.inner
            .runs
            .insert(key.clone(), codec::encode_json(run))
            .map_err(|e| self.err(e))?;
        // A run saved as `running` is marked until saved with its outcome,
        // so the next open finds a dead process's runs without a scan.
        let marked = if run.outcome == RunOutcome::Running {
            self.inner.meta.insert(mark, key)
        } else {
            self.inner.meta.remove(mark)
        };
        marked.map_err(|e| self.err(e))?;
        // A run's start is made durable at once: a process killed in its
        // first half second (sled's own flush interval) would otherwise
        // leave no record of it, and status would show an older run.
        if run.outcome == RunOutcome::Running {
            self.flush()?;
        } else {
            self.prune_runs(&run.source)?;
        }
        Ok(())
    }

    /// Deletes a connector's runs older than its newest [`RUNS_KEPT`],
    /// except its last successful one (what [`Store::runs_since_success`]
    /// and [`Store::runs`] read; nothing reads older runs). Run when a run
    /// ends: every run wrote ~0.75 KB that stayed for good, so a connector
    /// synced every minute grew the store by ~1 MB a day with nothing
    /// changed (soak QA31-D H1).
    fn prune_runs(&self, source: &str) -> Result<(), StoreError> {
        let prefix = format!("{source}/");
        let corrupt = |k: &[u8], message| StoreError::Corrupt {
            tree: "runs".into(),
            key: String::from_utf8_lossy(k).into_owned(),
            message,
        };
        let is_success = |k: &[u8], v: &[u8]| -> Result<bool, StoreError> {
            let run: RunRecord = codec::decode_json(v).map_err(|m| corrupt(k, m))?;
            Ok(run.outcome == RunOutcome::Success)
        };
        let mut newest = self.inner.runs.scan_prefix(prefix.as_bytes()).rev();
        // Whether a success is among the kept runs: read only until one is.
        let mut success_kept = false;
        for kv in newest.by_ref().take(RUNS_KEPT) {
            let (k, v) = kv.map_err(|e| self.err(e))?;
            if !success_kept {
                success_kept = is_success(&k, &v)?;
            }
        }
        let mut batch = sled::Batch::default();
        let mut deleted = 0usize;
        for kv in newest {
            let (k, v) = kv.map_err(|e| self.err(e))?;
            if !success_kept && is_success(&k, &v)? {
                success_kept = true;
                continue;
            }
            batch.remove(k);
            deleted += 1;
        }
        if deleted > 0 {
            self.inner
                .runs
                .apply_batch(batch)
                .map_err(|e| self.err(e))?;
        }
        Ok(())
    }

    /// The runs of a connector since its last successful one, newest first
    /// (all of them if none succeeded), and that successful run: what the
    /// scheduler reads at start to restore `consecutive_failures`,
    /// `last_error`, `last_success_at` and a pending retry.
    pub fn runs_since_success(
        &self,
        source: &str,
    ) -> Result<(Vec<RunRecord>, Option<RunRecord>), StoreError> {
        let prefix = format!("{source}/");
        let mut out = Vec::new();
        for kv in self.inner.runs.scan_prefix(prefix.as_bytes()).rev() {
            let (k, v) = kv.map_err(|e| self.err(e))?;
            let run: RunRecord = codec::decode_json(&v).map_err(|message| StoreError::Corrupt {
                tree: "runs".into(),
                key: String::from_utf8_lossy(&k[..prefix.len()]).into_owned(),
                message,
            })?;
            if run.outcome == RunOutcome::Success {
                return Ok((out, Some(run)));
            }
            out.push(run);
        }
        Ok((out, None))
    }

    /// Run history of a connector, newest first, at most `limit` entries.
    pub fn runs(&self, source: &str, limit: usize) -> Result<Vec<RunRecord>, StoreError> {
        let prefix = format!("{source}/");
        let mut out = Vec::new();
        for kv in self.inner.runs.scan_prefix(prefix.as_bytes()).rev() {
            if out.len() >= limit {
                break;
            }
            let (k, v) = kv.map_err(|e| self.err(e))?;
            out.push(
                codec::decode_json(&v).map_err(|message| StoreError::Corrupt {
                    tree: "runs".into(),
                    key: String::from_utf8_lossy(&k[..prefix.len()]).into_owned(),
                    message,
                })?,
            );
        }
        Ok(out)
    }

    /// When the scheduler last fired a connector (persisted so missed fires
    /// are caught up once after a restart).
    pub fn last_fire(&self, connector: &str) -> Result<Option<DateTime<Utc>>, StoreError> {
        let key = format!("{LAST_FIRE_PREFIX}{connector}");
        match self.meta_get(&key)? {
            None => Ok(None),
            Some(v) => {
                let b: [u8; 8] = v.as_ref().try_into().map_err(|_| StoreError::Corrupt {
                    tree: "meta".into(),
                    key: key.clone(),
                    message: format!("expected 8 bytes, found {}", v.len()),
                })?;
                Ok(DateTime::from_timestamp_micros(i64::from_be_bytes(b)))
            }
        }
    }

    /// Records that the scheduler fired a connector at `at`.
    pub fn set_last_fire(&self, connector: &str, at: DateTime<Utc>) -> Result<(), StoreError> {
        let key = format!("{LAST_FIRE_PREFIX}{connector}");
        self.inner
            .meta
            .insert(key, &at.timestamp_micros().to_be_bytes())
            .map_err(|e| self.err(e))?;
        Ok(())
    }

    /// A named tree for a domain module's own data (`recon`, `statements`,
    /// `fx`, `kpi`, `postbacks`, ...). Values are JSON, versioned by the module.
    pub fn domain(&self, name: &str) -> Result<DomainTree, StoreError> {
        if RESERVED_TREES.contains(&name) || name.is_empty() || name.starts_with("__sled") {
            return Err(StoreError::Io {
                path: name.into(),
                message: format!(
                    "`{name}` is not a valid domain tree name (reserved: {})",
                    RESERVED_TREES.join(", ")
                ),
            });
        }
        let tree = self.inner.db.open_tree(name).map_err(|e| self.err(e))?;
        Ok(DomainTree {
            name: name.to_owned(),
            tree,
            health: self.inner.health.clone(),
        })
    }
}

const KINDS: [RecordKind; 3] = [RecordKind::Spend, RecordKind::Conversion, RecordKind::Order];

fn kind_index(kind: RecordKind) -> usize {
    match kind {
        RecordKind::Spend => 0,
        RecordKind::Conversion => 1,
        RecordKind::Order => 2,
    }
}

/// The runs kept per connector (with its last successful one, however
/// old): over two weeks of a schedule firing every 15 minutes, and what
/// `consecutive_failures` can count back to after a restart.
pub const RUNS_KEPT: usize = 1000;

fn run_key(source: &str, started: DateTime<Utc>) -> Vec<u8> {
    let mut k = format!("{source}/").into_bytes();
    k.extend_from_slice(&started.timestamp_micros().to_be_bytes());
    k
}

/// A domain module's tree: ordered byte keys, JSON values, atomic batches.
#[derive(Clone)]
pub struct DomainTree {
    name: String,
    tree: sled::Tree,
    health: Arc<Health>,
}

impl std::fmt::Debug for DomainTree {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("DomainTree")
            .field("name", &self.name)
            .finish()
    }
}

impl DomainTree {
    /// Reads and decodes one value.
    pub fn get<T: serde::de::DeserializeOwned>(&self, key: &str) -> Result<Option<T>, StoreError> {
        match self.tree.get(key).map_err(|e| self.health.err(e))? {
            None => Ok(None),
            Some(v) => codec::decode_json(&v)
                .map(Some)
                .map_err(|message| StoreError::Corrupt {
                    tree: self.name.clone(),
                    key: key.into(),
                    message,
                }),
        }
    }
    /// Decoded values whose key starts with `prefix`, in key order.
    pub fn scan_prefix<T: serde::de::DeserializeOwned + 'static>(
        &self,
        prefix: &str,
    ) -> Box<dyn Iterator<Item = Result<(String, T), StoreError>> + '_> {
        Box::new(self.tree.scan_prefix(prefix.as_bytes()).map(move |kv| {
            let (k, v) = kv.map_err(|e| self.health.err(e))?;
            let key = String::from_utf8_lossy(&k).into_owned();
            match codec::decode_json(&v) {
                Ok(t) => Ok((key, t)),
                Err(message) => Err(StoreError::Corrupt {
                    tree: self.name.clone(),
                    key,
                    message,
                }),
            }
        }))
    }
    /// Applies puts (`Some`) and deletes (`None`) atomically.
    pub fn apply(&self, batch: Vec<(String, Option<serde_json::Value>)>) -> Result<(), StoreError> {
        let mut b = sled::Batch::default();
        for (k, v) in batch {
            match v {
                Some(v) => b.insert(k.as_bytes(), codec::encode_json(&v)),
                None => b.remove(k.as_bytes()),
            }
        }
        self.tree.apply_batch(b).map_err(|e| self.health.err(e))
    }

    /// The tree's name.
    pub fn name(&self) -> &str {
        &self.name
    }

    /// One raw value (the module owns its byte format).
    pub fn get_raw(&self, key: &[u8]) -> Result<Option<sled::IVec>, StoreError> {
        self.tree.get(key).map_err(|e| self.health.err(e))
    }

    /// Raw (key, value) pairs whose key starts with `prefix`, in key order.
    pub fn scan_prefix_raw(
        &self,
        prefix: &[u8],
    ) -> impl DoubleEndedIterator<Item = Result<(sled::IVec, sled::IVec), StoreError>> + '_ {
        self.tree
            .scan_prefix(prefix)
            .map(move |kv| kv.map_err(|e| self.health.err(e)))
    }

    /// Raw (key, value) pairs with `from <= key`, in key order.
    pub fn range_from_raw(
        &self,
        from: &[u8],
    ) -> impl DoubleEndedIterator<Item = Result<(sled::IVec, sled::IVec), StoreError>> + '_ {
        self.tree
            .range(from..)
            .map(move |kv| kv.map_err(|e| self.health.err(e)))
    }

    /// Applies raw puts (`Some`) and deletes (`None`) atomically.
    pub fn apply_raw(&self, batch: Vec<(Vec<u8>, Option<Vec<u8>>)>) -> Result<(), StoreError> {
        let mut b = sled::Batch::default();
        for (k, v) in batch {
            match v {
                Some(v) => b.insert(k, v),
                None => b.remove(k),
            }
        }
        self.tree.apply_batch(b).map_err(|e| self.health.err(e))
    }
}

#[cfg(test)]
mod tests;
