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
//! ## Layout
//! | tree | key | value |
//! |---|---|---|
//! | `spend`, `conversions`, `orders` | `source/key` | [`Stored`] (see [`codec`]) |
//! | `revisions` | `kind/source/key\0` + revision (u32 BE) | superseded time + old record |
//! | `changes` | seq (u64 BE) | kind, source, key |
//! | `checkpoints` | `source/stream` | a [`Checkpoint`] |
//! | `runs` | `source/` + start (i64 µs BE) | a [`RunRecord`] |
//! | `meta` | name | schema version, change seq, record counts per kind and source, last fire per connector |
//! | any other name | domain key | versioned JSON ([`DomainTree`]) |
//!
//! Records and the checkpoint that covers them are written in one multi-tree
//! sled transaction ([`Store::commit_page`]); commits are serialised by a mutex
//! so the revision check (done against the committed state just before the
//! transaction) cannot race another writer in this process, and the directory
//! lock keeps other processes out.
pub mod cli;
pub mod codec;

use chrono::{DateTime, Utc};
use plugin_api::protocol::{Checkpoint, Record, RecordKind};
use serde::{Deserialize, Serialize};
use sled::transaction::{ConflictableTransactionError, TransactionError, TransactionalTree};
use sled::Transactional;
use std::collections::BTreeMap;
use std::fs::File;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};

/// The schema version this binary writes. Older stores are migrated at open.
pub const SCHEMA_VERSION: u32 = 1;

/// Tree names the store itself uses; [`Store::domain`] refuses them.
pub const RESERVED_TREES: &[&str] = &[
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
        "data directory {path} is in use by another reckon process (lock held); stop it first"
    )]
    Locked { path: String },
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
}

struct Inner {
    dir: PathBuf,
    db: sled::Db,
    records: [sled::Tree; 3],
    revisions: sled::Tree,
    changes: sled::Tree,
    checkpoints: sled::Tree,
    runs: sled::Tree,
    meta: sled::Tree,
    commit_lock: Mutex<()>,
    _lock: File,
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

fn kind_index(kind: RecordKind) -> usize {
    match kind {
        RecordKind::Spend => 0,
        RecordKind::Conversion => 1,
        RecordKind::Order => 2,
    }
}

fn record_key(source: &str, key: &str) -> Vec<u8> {
    let mut k = Vec::with_capacity(source.len() + 1 + key.len());
    k.extend_from_slice(source.as_bytes());
    k.push(b'/');
    k.extend_from_slice(key.as_bytes());
    k
}

fn revision_prefix(kind: RecordKind, source: &str, key: &str) -> Vec<u8> {
    let mut k = Vec::new();
    k.extend_from_slice(kind.as_str().as_bytes());
    k.push(b'/');
    k.extend_from_slice(&record_key(source, key));
    k.push(0);
    k
}

const META_SCHEMA: &str = "schema_version";
const META_SEQ: &str = "change_seq";
const LAST_FIRE_PREFIX: &str = "last_fire/";
const COUNT_PREFIX: &str = "count/";

fn count_key(kind: RecordKind, source: &str) -> Vec<u8> {
    format!("{COUNT_PREFIX}{}/{source}", kind.as_str()).into_bytes()
}

fn io_err(path: &Path, e: impl std::fmt::Display) -> StoreError {
    StoreError::Io {
        path: path.display().to_string(),
        message: e.to_string(),
    }
}

fn sled_err(dir: &Path, e: sled::Error) -> StoreError {
    let msg = match &e {
        sled::Error::Io(io) => match io.raw_os_error() {
            Some(28) => {
                format!("{io}: the disk is full; free space and rerun (nothing committed was lost)")
            }
            Some(30) | Some(13) => {
                format!("{io}: the data directory is not writable; fix its permissions or mount")
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

fn tx_err(dir: &Path, e: TransactionError<StoreError>) -> StoreError {
    match e {
        TransactionError::Abort(e) => e,
        TransactionError::Storage(e) => sled_err(dir, e),
    }
}

impl Store {
    /// Opens (creating if needed) the store in `dir`, takes the directory
    /// lock, and runs migrations (logged, never silent).
    pub fn open(dir: &Path) -> Result<Store, StoreError> {
        std::fs::create_dir_all(dir).map_err(|e| {
            io_err(
                dir,
                format!("cannot create the data directory: {e}; check `[daemon] data_dir`"),
            )
        })?;
        let lock_path = dir.join("reckon.lock");
        let lock = std::fs::OpenOptions::new()
            .read(true)
            .write(true)
            .create(true)
            .truncate(false)
            .open(&lock_path)
            .map_err(|e| {
                let hint = match e.raw_os_error() {
                    Some(30) | Some(13) => {
                        "the data directory is not writable; fix its permissions or point `[daemon] data_dir` elsewhere"
                    }
                    _ => "cannot open the lock file",
                };
                io_err(&lock_path, format!("{e}: {hint}"))
            })?;
        if fs2::FileExt::try_lock_exclusive(&lock).is_err() {
            return Err(StoreError::Locked {
                path: dir.display().to_string(),
            });
        }
        {
            use std::io::{Seek, Write};
            let mut l = &lock;
            let _ = l.set_len(0);
            let _ = l.seek(std::io::SeekFrom::Start(0));
            let _ = writeln!(l, "{}", std::process::id());
        }
        let db_dir = dir.join("store");
        let db = sled::Config::new()
            .path(&db_dir)
            .cache_capacity(64 * 1024 * 1024)
            .mode(sled::Mode::HighThroughput)
            .open()
            .map_err(|e| sled_err(&db_dir, e))?;
        let t = |name: &str| db.open_tree(name).map_err(|e| sled_err(&db_dir, e));
        let inner = Inner {
            records: [t("spend")?, t("conversions")?, t("orders")?],
            revisions: t("revisions")?,
            changes: t("changes")?,
            checkpoints: t("checkpoints")?,
            runs: t("runs")?,
            meta: t("meta")?,
            dir: dir.to_path_buf(),
            db,
            commit_lock: Mutex::new(()),
            _lock: lock,
        };
        let store = Store {
            inner: Arc::new(inner),
        };
        store.migrate()?;
        Ok(store)
    }

    /// The data directory.
    pub fn dir(&self) -> &Path {
        &self.inner.dir
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

    /// Runs migrations from the stored schema version to [`SCHEMA_VERSION`].
    fn migrate(&self) -> Result<(), StoreError> {
        let found = self.schema_version()?;
        if found > SCHEMA_VERSION {
            return Err(StoreError::SchemaTooNew {
                found,
                supported: SCHEMA_VERSION,
            });
        }
        let mut v = found;
        while v < SCHEMA_VERSION {
            // Each step migrates v → v+1. Version 0 is a fresh store: nothing to
            // convert, only the version is written.
            tracing::info!(
                from = v,
                to = v + 1,
                dir = %self.inner.dir.display(),
                "store migration"
            );
            v += 1;
            self.inner
                .meta
                .insert(META_SCHEMA, &v.to_be_bytes())
                .map_err(|e| sled_err(&self.inner.dir, e))?;
        }
        if found != SCHEMA_VERSION {
            self.flush()?;
        }
        Ok(())
    }

    fn meta_get(&self, key: &str) -> Result<Option<sled::IVec>, StoreError> {
        self.inner
            .meta
            .get(key)
            .map_err(|e| sled_err(&self.inner.dir, e))
    }

    /// Upserts records of one source and (optionally) saves the checkpoint
    /// that covers them, in one transaction. Unchanged records write nothing;
    /// a changed record keeps its previous value as a [`Revision`].
    pub fn commit_page(
        &self,
        source: &str,
        records: &[Record],
        checkpoint: Option<&Checkpoint>,
        now: DateTime<Utc>,
    ) -> Result<CommitStats, StoreError> {
        let inner = &*self.inner;
        let _guard = inner.commit_lock.lock().unwrap_or_else(|p| p.into_inner());
        let mut stats = CommitStats::default();

        // Plan: decide new / changed / unchanged against the committed state.
        // Safe outside the transaction: all record writers hold commit_lock.
        struct Write {
            kind: usize,
            key: Vec<u8>,
            value: Vec<u8>,
            old: Option<(u32, Vec<u8>)>,
            change: Vec<u8>,
        }
        // The same key twice in one page: only the last occurrence counts
        // (the earlier one was never current).
        let mut last_index: std::collections::HashMap<(usize, String), usize> =
            std::collections::HashMap::with_capacity(records.len());
        let keyed: Vec<(usize, String)> = records
            .iter()
            .map(|r| (kind_index(r.kind()), r.key()))
            .collect();
        for (i, k) in keyed.iter().enumerate() {
            last_index.insert(k.clone(), i);
        }
        let mut writes: Vec<Write> = Vec::new();
        let now_us = now.timestamp_micros();
        for (i, rec) in records.iter().enumerate() {
            if last_index.get(&keyed[i]) != Some(&i) {
                continue;
            }
            let kind = rec.kind();
            let ki = keyed[i].0;
            let rkey = &keyed[i].1;
            let key = record_key(source, rkey);
            let body = codec::encode_record_body(rec);
            let existing = inner.records[ki]
                .get(&key)
                .map_err(|e| sled_err(&inner.dir, e))?;
            match existing {
                Some(bytes) => {
                    let h = codec::decode_header(&bytes).map_err(|m| StoreError::Corrupt {
                        tree: kind.as_str().into(),
                        key: String::from_utf8_lossy(&key).into_owned(),
                        message: m,
                    })?;
                    if codec::body_of(&bytes) == body.as_slice() {
                        stats.unchanged += 1;
                        continue;
                    }
                    stats.changed += 1;
                    writes.push(Write {
                        kind: ki,
                        value: codec::encode_stored(
                            h.revision + 1,
                            0,
                            h.first_seen_us,
                            now_us,
                            &body,
                        ),
                        old: Some((h.revision, codec::body_of(&bytes).to_vec())),
                        change: codec::encode_change(kind, source, rkey),
                        key,
                    });
                }
                None => {
                    stats.new += 1;
                    writes.push(Write {
                        kind: ki,
                        value: codec::encode_stored(1, 0, now_us, now_us, &body),
                        old: None,
                        change: codec::encode_change(kind, source, rkey),
                        key,
                    });
                }
            }
        }

        let cp_write: Option<(Vec<u8>, Vec<u8>)> = match checkpoint {
            None => None,
            Some(cp) => {
                let key = format!("{source}/{}", cp.stream).into_bytes();
                let value = codec::encode_json(cp);
                let same = inner
                    .checkpoints
                    .get(&key)
                    .map_err(|e| sled_err(&inner.dir, e))?
                    .is_some_and(|v| v.as_ref() == value.as_slice());
                if same {
                    None
                } else {
                    Some((key, value))
                }
            }
        };
        if writes.is_empty() && cp_write.is_none() {
            return Ok(stats);
        }

        let base_seq = self.last_seq()?;
        // Record counts per kind and source, kept in `meta` so /status and
        // `count_records` never scan.
        let mut counts: Vec<(Vec<u8>, u64)> = Vec::new();
        for ki in 0..3 {
            let added = writes
                .iter()
                .filter(|w| w.kind == ki && w.old.is_none())
                .count() as u64;
            if added > 0 {
                let key = count_key(
                    [RecordKind::Spend, RecordKind::Conversion, RecordKind::Order][ki],
                    source,
                );
                let current = self.read_u64_meta(&key)?;
                counts.push((key, current + added));
            }
        }
        let trees = (
            &inner.records[0],
            &inner.records[1],
            &inner.records[2],
            &inner.revisions,
            &inner.changes,
            &inner.checkpoints,
            &inner.meta,
        );
        let result = trees.transaction(
            |(spend, conv, ord, revs, changes, cps, meta)| -> Result<(), ConflictableTransactionError<StoreError>> {
                let rec_trees: [&TransactionalTree; 3] = [spend, conv, ord];
                let mut seq = base_seq;
                for w in writes.iter() {
                    if let Some((rev, old_body)) = &w.old {
                        let kind = [RecordKind::Spend, RecordKind::Conversion, RecordKind::Order][w.kind];
                        let mut rk = Vec::with_capacity(w.key.len() + 20);
                        rk.extend_from_slice(kind.as_str().as_bytes());
                        rk.push(b'/');
                        rk.extend_from_slice(&w.key);
                        rk.push(0);
                        rk.extend_from_slice(&rev.to_be_bytes());
                        revs.insert(rk, codec::encode_revision(now_us, old_body))?;
                    }
                    seq += 1;
                    let mut value = w.value.clone();
                    codec::set_seq(&mut value, seq);
                    rec_trees[w.kind].insert(w.key.as_slice(), value)?;
                    changes.insert(&seq.to_be_bytes(), w.change.as_slice())?;
                }
                if seq != base_seq {
                    meta.insert(META_SEQ, &seq.to_be_bytes())?;
                }
                for (k, n) in &counts {
                    meta.insert(k.as_slice(), &n.to_be_bytes())?;
                }
                if let Some((k, v)) = &cp_write {
                    cps.insert(k.as_slice(), v.as_slice())?;
                }
                Ok(())
            },
        );
        result.map_err(|e| tx_err(&inner.dir, e))?;
        Ok(stats)
    }

    /// Makes everything committed so far durable (flush; see ARCHITECTURE.md).
    pub fn flush(&self) -> Result<(), StoreError> {
        self.inner
            .db
            .flush()
            .map(|_| ())
            .map_err(|e| sled_err(&self.inner.dir, e))
    }

    /// Flushes, then fsyncs sled's files and the data directory: use before an
    /// irreversible output (a finalised statement) that depends on the data.
    /// sled's own flush uses `sync_file_range` on Linux, which does not
    /// survive power loss; this does.
    pub fn fsync(&self) -> Result<(), StoreError> {
        self.flush()?;
        let db_dir = self.inner.dir.join("store");
        let mut dirs = vec![db_dir.clone(), self.inner.dir.clone()];
        let entries = std::fs::read_dir(&db_dir).map_err(|e| io_err(&db_dir, e))?;
        for e in entries.flatten() {
            let p = e.path();
            if p.is_file() {
                let f = File::open(&p).map_err(|e| io_err(&p, e))?;
                f.sync_all().map_err(|e| io_err(&p, e))?;
            } else if p.is_dir() {
                dirs.push(p);
            }
        }
        for d in dirs {
            if let Ok(f) = File::open(&d) {
                let _ = f.sync_all();
            }
        }
        Ok(())
    }

    /// Bytes sled uses on disk.
    pub fn size_on_disk(&self) -> Result<u64, StoreError> {
        self.inner
            .db
            .size_on_disk()
            .map_err(|e| sled_err(&self.inner.dir, e))
    }

    /// The committed checkpoints of a connector, by stream.
    pub fn checkpoints(&self, source: &str) -> Result<BTreeMap<String, Checkpoint>, StoreError> {
        let prefix = format!("{source}/");
        let mut out = BTreeMap::new();
        for kv in self.inner.checkpoints.scan_prefix(prefix.as_bytes()) {
            let (k, v) = kv.map_err(|e| sled_err(&self.inner.dir, e))?;
            let key = String::from_utf8_lossy(&k).into_owned();
            let cp: Checkpoint = codec::decode_json(&v).map_err(|message| StoreError::Corrupt {
                tree: "checkpoints".into(),
                key: key.clone(),
                message,
            })?;
            out.insert(cp.stream.clone(), cp);
        }
        Ok(out)
    }

    /// Deletes a connector's checkpoints (a full re-pull starts from scratch).
    pub fn reset_checkpoints(&self, source: &str) -> Result<(), StoreError> {
        let prefix = format!("{source}/");
        let mut batch = sled::Batch::default();
        for kv in self.inner.checkpoints.scan_prefix(prefix.as_bytes()) {
            let (k, _) = kv.map_err(|e| sled_err(&self.inner.dir, e))?;
            batch.remove(k);
        }
        self.inner
            .checkpoints
            .apply_batch(batch)
            .map_err(|e| sled_err(&self.inner.dir, e))
    }

    /// All records of a kind, optionally of one source, in key order.
    pub fn scan_records(
        &self,
        kind: RecordKind,
        source: Option<&str>,
    ) -> Box<dyn Iterator<Item = Result<Stored, StoreError>> + '_> {
        let tree = &self.inner.records[kind_index(kind)];
        let iter = match source {
            Some(s) => tree.scan_prefix(format!("{s}/").as_bytes()),
            None => tree.iter(),
        };
        let dir = self.inner.dir.clone();
        Box::new(iter.map(move |kv| {
            let (k, v) = kv.map_err(|e| sled_err(&dir, e))?;
            codec::decode_stored(&v).map_err(|message| StoreError::Corrupt {
                tree: kind.as_str().into(),
                key: String::from_utf8_lossy(&k).into_owned(),
                message,
            })
        }))
    }

    /// Number of records of a kind (of one source, if given), from the
    /// counters `commit_page` keeps in `meta` (no scan). 0 if unreadable.
    pub fn count_records(&self, kind: RecordKind, source: Option<&str>) -> u64 {
        match source {
            Some(s) => self.read_u64_meta(&count_key(kind, s)).unwrap_or(0),
            None => {
                let prefix = format!("{COUNT_PREFIX}{}/", kind.as_str());
                self.inner
                    .meta
                    .scan_prefix(prefix.as_bytes())
                    .filter_map(Result::ok)
                    .filter_map(|(_, v)| <[u8; 8]>::try_from(v.as_ref()).ok())
                    .map(u64::from_be_bytes)
                    .sum()
            }
        }
    }

    fn read_u64_meta(&self, key: &[u8]) -> Result<u64, StoreError> {
        match self
            .inner
            .meta
            .get(key)
            .map_err(|e| sled_err(&self.inner.dir, e))?
        {
            None => Ok(0),
            Some(v) => <[u8; 8]>::try_from(v.as_ref())
                .map(u64::from_be_bytes)
                .map_err(|_| StoreError::Corrupt {
                    tree: "meta".into(),
                    key: String::from_utf8_lossy(key).into_owned(),
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
        let k = record_key(source, key);
        match self.inner.records[kind_index(kind)]
            .get(&k)
            .map_err(|e| sled_err(&self.inner.dir, e))?
        {
            None => Ok(None),
            Some(v) => codec::decode_stored(&v)
                .map(Some)
                .map_err(|message| StoreError::Corrupt {
                    tree: kind.as_str().into(),
                    key: String::from_utf8_lossy(&k).into_owned(),
                    message,
                }),
        }
    }

    /// Previous values of a record, oldest first.
    pub fn revisions(
        &self,
        kind: RecordKind,
        source: &str,
        key: &str,
    ) -> Result<Vec<Revision>, StoreError> {
        let prefix = revision_prefix(kind, source, key);
        let mut out = Vec::new();
        for kv in self.inner.revisions.scan_prefix(&prefix) {
            let (k, v) = kv.map_err(|e| sled_err(&self.inner.dir, e))?;
            let corrupt = |message: String| StoreError::Corrupt {
                tree: "revisions".into(),
                key: String::from_utf8_lossy(&k).into_owned(),
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
        match self.meta_get(META_SEQ)? {
            None => Ok(0),
            Some(v) => {
                let b: [u8; 8] = v.as_ref().try_into().map_err(|_| StoreError::Corrupt {
                    tree: "meta".into(),
                    key: META_SEQ.into(),
                    message: format!("expected 8 bytes, found {}", v.len()),
                })?;
                Ok(u64::from_be_bytes(b))
            }
        }
    }

    /// Changes with `seq > after`, in sequence order.
    pub fn changes_since(
        &self,
        after: u64,
    ) -> Box<dyn Iterator<Item = Result<Change, StoreError>> + '_> {
        let start = after.saturating_add(1).to_be_bytes();
        let dir = self.inner.dir.clone();
        Box::new(self.inner.changes.range(start..).map(move |kv| {
            let (k, v) = kv.map_err(|e| sled_err(&dir, e))?;
            let corrupt = |message: String| StoreError::Corrupt {
                tree: "changes".into(),
                key: hex::encode(&k),
                message,
            };
            let seq_bytes: [u8; 8] = k
                .as_ref()
                .try_into()
                .map_err(|_| corrupt("sequence key is not 8 bytes".into()))?;
            let (kind, source, key) = codec::decode_change(&v).map_err(corrupt)?;
            Ok(Change {
                seq: u64::from_be_bytes(seq_bytes),
                kind,
                source,
                key,
            })
        }))
    }

    /// Saves (inserts or replaces) a run history entry.
    pub fn save_run(&self, run: &RunRecord) -> Result<(), StoreError> {
        let key = run_key(&run.source, run.started_at);
        self.inner
            .runs
            .insert(key, codec::encode_json(run))
            .map_err(|e| sled_err(&self.inner.dir, e))?;
        Ok(())
    }

    /// Run history of a connector, newest first, at most `limit` entries.
    pub fn runs(&self, source: &str, limit: usize) -> Result<Vec<RunRecord>, StoreError> {
        let prefix = format!("{source}/");
        let mut out = Vec::new();
        for kv in self.inner.runs.scan_prefix(prefix.as_bytes()).rev() {
            if out.len() >= limit {
                break;
            }
            let (k, v) = kv.map_err(|e| sled_err(&self.inner.dir, e))?;
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
            .map_err(|e| sled_err(&self.inner.dir, e))?;
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
        let tree = self
            .inner
            .db
            .open_tree(name)
            .map_err(|e| sled_err(&self.inner.dir, e))?;
        Ok(DomainTree {
            name: name.to_owned(),
            tree,
            dir: self.inner.dir.clone(),
        })
    }
}

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
    dir: PathBuf,
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
        match self.tree.get(key).map_err(|e| sled_err(&self.dir, e))? {
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
            let (k, v) = kv.map_err(|e| sled_err(&self.dir, e))?;
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
        self.tree.apply_batch(b).map_err(|e| sled_err(&self.dir, e))
    }

    /// The tree's name.
    pub fn name(&self) -> &str {
        &self.name
    }

    /// One raw value (the module owns its byte format).
    pub fn get_raw(&self, key: &[u8]) -> Result<Option<sled::IVec>, StoreError> {
        self.tree.get(key).map_err(|e| sled_err(&self.dir, e))
    }

    /// Raw (key, value) pairs whose key starts with `prefix`, in key order.
    pub fn scan_prefix_raw(
        &self,
        prefix: &[u8],
    ) -> impl DoubleEndedIterator<Item = Result<(sled::IVec, sled::IVec), StoreError>> + '_ {
        self.tree
            .scan_prefix(prefix)
            .map(move |kv| kv.map_err(|e| sled_err(&self.dir, e)))
    }

    /// Raw (key, value) pairs with `from <= key`, in key order.
    pub fn range_from_raw(
        &self,
        from: &[u8],
    ) -> impl DoubleEndedIterator<Item = Result<(sled::IVec, sled::IVec), StoreError>> + '_ {
        self.tree
            .range(from..)
            .map(move |kv| kv.map_err(|e| sled_err(&self.dir, e)))
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
        self.tree.apply_batch(b).map_err(|e| sled_err(&self.dir, e))
    }
}

#[cfg(test)]
mod tests;
