//! What reconciliation needs from storage, as a small trait: records with
//! revisions and the change log (read), and the `recon` domain tree
//! (read/write, raw bytes: reconcile owns its value format, see
//! [`super::codec`]). [`crate::store::Store`] implements it; [`MemoryBackend`] is
//! an in-memory stand-in with the same upsert/revision/change-log semantics,
//! used by tests and benchmarks of the engine. It is not a store: nothing is
//! durable.

use crate::store::{Change, Store, StoreError, Stored};
use chrono::{DateTime, Utc};
use plugin_api::protocol::{Record, RecordKind};
use std::collections::BTreeMap;
use std::sync::Mutex;

/// A raw (key, value) pair of the `recon` tree.
pub type KeyValue = (Vec<u8>, Vec<u8>);
/// A put (`Some`) or delete (`None`) of a raw key.
pub type KeyWrite = (Vec<u8>, Option<Vec<u8>>);

/// Records, change log and the `recon` key-value tree. `Sync`: an
/// incremental run reads ahead on worker threads.
pub trait ReconBackend: Sync {
    /// Highest change sequence so far.
    fn last_seq(&self) -> Result<u64, StoreError>;
    /// Changes with `seq > after`, in order.
    fn changes_since(
        &self,
        after: u64,
    ) -> Box<dyn Iterator<Item = Result<Change, StoreError>> + '_>;
    /// All records of a kind and source, in key order.
    fn scan_records(
        &self,
        kind: RecordKind,
        source: &str,
    ) -> Box<dyn Iterator<Item = Result<Stored, StoreError>> + '_>;
    /// How many records [`ReconBackend::scan_records`] will give, if known
    /// cheaply (a capacity hint; 0 when unknown).
    fn count_records(&self, _kind: RecordKind, _source: &str) -> u64 {
        0
    }
    /// One record.
    fn get_record(
        &self,
        kind: RecordKind,
        source: &str,
        key: &str,
    ) -> Result<Option<Stored>, StoreError>;
    /// One value of the `recon` tree: sled's own value, shared with its
    /// cache, not copied (an incremental run reads ~36k buckets).
    fn kv_get(&self, key: &[u8]) -> Result<Option<sled::IVec>, StoreError>;
    /// Entries of the `recon` tree under `prefix`, in key order.
    fn kv_scan(&self, prefix: &[u8])
        -> Box<dyn Iterator<Item = Result<KeyValue, StoreError>> + '_>;
    /// Applies puts and deletes to the `recon` tree atomically.
    fn kv_apply(&self, batch: Vec<KeyWrite>) -> Result<(), StoreError>;
    /// Makes applied batches durable.
    fn flush(&self) -> Result<(), StoreError>;
    /// The instant the records are seen as of ([`AsOf`]); `None` for the
    /// records as they are now. A run over a past view judges every claim
    /// and makes the next run a full one.
    fn as_of(&self) -> Option<DateTime<Utc>> {
        None
    }
    /// Decision-log entries at which an incremental run folds a program's
    /// log into its buckets ([`super::incremental::FOLD_ENTRIES`]; tests
    /// set it low to fold often).
    fn fold_entries(&self) -> usize {
        super::incremental::FOLD_ENTRIES
    }
}

/// The real store seen through [`ReconBackend`].
#[derive(Debug)]
pub struct StoreBackend<'a> {
    store: &'a Store,
    recon: crate::store::DomainTree,
}

impl<'a> StoreBackend<'a> {
    /// Opens the `recon` domain tree of `store`.
    pub fn new(store: &'a Store) -> Result<Self, StoreError> {
        Ok(StoreBackend {
            store,
            recon: store.domain("recon")?,
        })
    }
}

impl ReconBackend for StoreBackend<'_> {
    fn last_seq(&self) -> Result<u64, StoreError> {
        self.store.last_seq()
    }
    fn changes_since(
        &self,
        after: u64,
    ) -> Box<dyn Iterator<Item = Result<Change, StoreError>> + '_> {
        self.store.changes_since(after)
    }
    fn scan_records(
        &self,
        kind: RecordKind,
        source: &str,
    ) -> Box<dyn Iterator<Item = Result<Stored, StoreError>> + '_> {
        self.store.scan_records(kind, Some(source))
    }
    fn count_records(&self, kind: RecordKind, source: &str) -> u64 {
        self.store.count_records(kind, Some(source))
    }
    fn get_record(
        &self,
        kind: RecordKind,
        source: &str,
        key: &str,
    ) -> Result<Option<Stored>, StoreError> {
        self.store.get_record(kind, source, key)
    }
    fn kv_get(&self, key: &[u8]) -> Result<Option<sled::IVec>, StoreError> {
        self.recon.get_raw(key)
    }
    fn kv_scan(
        &self,
        prefix: &[u8],
    ) -> Box<dyn Iterator<Item = Result<KeyValue, StoreError>> + '_> {
        Box::new(
            self.recon
                .scan_prefix_raw(prefix)
                .map(|r| r.map(|(k, v)| (k.to_vec(), v.to_vec()))),
        )
    }
    fn kv_apply(&self, batch: Vec<KeyWrite>) -> Result<(), StoreError> {
        self.recon.apply_raw(batch)
    }
    fn flush(&self) -> Result<(), StoreError> {
        self.store.flush()
    }
}

/// The store as Reckon knew it at an instant: every record as its revision
/// current then, records first stored later left out. The `recon` tree
/// is the real one (a run over this view writes its decisions there),
/// or, for [`AsOf::scratch`], an empty one in memory that is dropped with
/// the view (a report as of the instant that changes nothing stored).
#[derive(Debug)]
pub struct AsOf<'a> {
    inner: StoreBackend<'a>,
    at: DateTime<Utc>,
    scratch: Option<Scratch>,
}

/// [`AsOf::scratch`]'s in-memory `recon` tree: the keys under the `keep`
/// prefixes only; writes of other keys are dropped.
#[derive(Debug)]
struct Scratch {
    tree: Mutex<BTreeMap<Vec<u8>, Vec<u8>>>,
    keep: Vec<Vec<u8>>,
}

impl<'a> AsOf<'a> {
    /// `store` as of `at`.
    pub fn new(store: &'a Store, at: DateTime<Utc>) -> Result<Self, StoreError> {
        Ok(AsOf {
            inner: StoreBackend::new(store)?,
            at,
            scratch: None,
        })
    }

    /// `store` as of `at`, with a `recon` tree of its own in memory,
    /// starting empty and keeping only the keys under the `keep` prefixes
    /// (writes of others are dropped: a full run never reads back what it
    /// wrote outside the bucket it is merging). A run over it is a full run
    /// whose decisions never reach the store.
    pub fn scratch(
        store: &'a Store,
        at: DateTime<Utc>,
        keep: &[&[u8]],
    ) -> Result<Self, StoreError> {
        Ok(AsOf {
            scratch: Some(Scratch {
                tree: Mutex::new(BTreeMap::new()),
                keep: keep.iter().map(|k| k.to_vec()).collect(),
            }),
            ..AsOf::new(store, at)?
        })
    }

    fn scratch_tree(&self) -> Option<std::sync::MutexGuard<'_, BTreeMap<Vec<u8>, Vec<u8>>>> {
        self.scratch.as_ref().map(|s| {
            s.tree
                .lock()
                .unwrap_or_else(std::sync::PoisonError::into_inner)
        })
    }

    /// `s` as it was at `self.at`, if it existed then.
    fn view(&self, s: Stored) -> Result<Option<Stored>, StoreError> {
        if s.first_seen > self.at {
            return Ok(None);
        }
        if s.changed_at <= self.at {
            return Ok(Some(s));
        }
        let (kind, source, key) = (s.record.kind(), s.record.source(), s.record.key());
        let revisions = self.inner.store.revisions(kind, source, &key)?;
        // Revision r was current from the previous one's superseded_at (or
        // first_seen) until its own superseded_at.
        let mut from = s.first_seen;
        for r in revisions {
            if r.superseded_at > self.at {
                return Ok(Some(Stored {
                    record: r.record,
                    revision: r.revision,
                    seq: s.seq,
                    first_seen: s.first_seen,
                    changed_at: from,
                }));
            }
            from = r.superseded_at;
        }
        Err(StoreError::Corrupt {
            tree: "revisions".into(),
            key: format!("{}/{source}/{key}", kind.as_str()),
            message: format!(
                "revision {} was stored at {} but no earlier revision covers {}",
                s.revision, s.changed_at, self.at
            ),
        })
    }
}

impl ReconBackend for AsOf<'_> {
    fn last_seq(&self) -> Result<u64, StoreError> {
        self.inner.last_seq()
    }
    fn changes_since(
        &self,
        after: u64,
    ) -> Box<dyn Iterator<Item = Result<Change, StoreError>> + '_> {
        self.inner.changes_since(after)
    }
    fn scan_records(
        &self,
        kind: RecordKind,
        source: &str,
    ) -> Box<dyn Iterator<Item = Result<Stored, StoreError>> + '_> {
        Box::new(
            self.inner
                .scan_records(kind, source)
                .filter_map(|r| r.and_then(|s| self.view(s)).transpose()),
        )
    }
    fn count_records(&self, kind: RecordKind, source: &str) -> u64 {
        self.inner.count_records(kind, source)
    }
    fn get_record(
        &self,
        kind: RecordKind,
        source: &str,
        key: &str,
    ) -> Result<Option<Stored>, StoreError> {
        match self.inner.get_record(kind, source, key)? {
            Some(s) => self.view(s),
            None => Ok(None),
        }
    }
    fn kv_get(&self, key: &[u8]) -> Result<Option<sled::IVec>, StoreError> {
        match self.scratch_tree() {
            Some(tree) => Ok(tree.get(key).map(|v| v.as_slice().into())),
            None => self.inner.kv_get(key),
        }
    }
    fn kv_scan(
        &self,
        prefix: &[u8],
    ) -> Box<dyn Iterator<Item = Result<KeyValue, StoreError>> + '_> {
        match self.scratch_tree() {
            Some(tree) => Box::new(scan_map(&tree, prefix).into_iter().map(Ok)),
            None => self.inner.kv_scan(prefix),
        }
    }
    fn kv_apply(&self, batch: Vec<KeyWrite>) -> Result<(), StoreError> {
        match (&self.scratch, self.scratch_tree()) {
            (Some(s), Some(mut tree)) => {
                let kept =
                    (batch.into_iter()).filter(|(k, _)| s.keep.iter().any(|p| k.starts_with(p)));
                apply_map(&mut tree, kept.collect());
                Ok(())
            }
            _ => self.inner.kv_apply(batch),
        }
    }
    fn flush(&self) -> Result<(), StoreError> {
        match self.scratch {
            Some(_) => Ok(()),
            None => self.inner.flush(),
        }
    }
    fn as_of(&self) -> Option<DateTime<Utc>> {
        Some(self.at)
    }
}

#[derive(Debug, Default)]
struct MemoryState {
    records: BTreeMap<(&'static str, String, String), Stored>,
    changes: Vec<Change>,
    kv: BTreeMap<Vec<u8>, Vec<u8>>,
}

/// An in-memory [`ReconBackend`] with the store's upsert semantics: an
/// unchanged record writes nothing, a changed one bumps its revision and
/// appends to the change log.
#[derive(Debug, Default)]
pub struct MemoryBackend {
    state: Mutex<MemoryState>,
    fold_entries: Option<usize>,
}

impl MemoryBackend {
    /// An empty backend.
    pub fn new() -> Self {
        Self::default()
    }

    /// An empty backend on which incremental runs fold the decision log at
    /// `n` entries ([`ReconBackend::fold_entries`]).
    pub fn folding_at(n: usize) -> Self {
        MemoryBackend {
            fold_entries: Some(n),
            ..Self::default()
        }
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, MemoryState> {
        self.state.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Upserts records (each carries its source), like `Store::commit_page`.
    /// Returns how many were new or changed.
    pub fn commit(&self, records: &[Record], now: DateTime<Utc>) -> u64 {
        let mut st = self.lock();
        let mut written = 0;
        for r in records {
            let key = (r.kind().as_str(), r.source().to_owned(), r.key());
            let seq = st.changes.len() as u64 + 1;
            let revision = match st.records.get(&key) {
                Some(old) if old.record == *r => continue,
                Some(old) => old.revision + 1,
                None => 1,
            };
            let first_seen = st.records.get(&key).map_or(now, |o| o.first_seen);
            st.records.insert(
                key.clone(),
                Stored {
                    record: r.clone(),
                    revision,
                    seq,
                    first_seen,
                    changed_at: now,
                },
            );
            st.changes.push(Change {
                seq,
                kind: r.kind(),
                source: key.1,
                key: key.2,
            });
            written += 1;
        }
        written
    }

    /// A backend whose `recon` tree is `kv` and that holds no records (for
    /// tests comparing trees).
    pub fn from_snapshot(kv: BTreeMap<Vec<u8>, Vec<u8>>) -> Self {
        let b = MemoryBackend::new();
        b.lock().kv = kv;
        b
    }

    /// Number of keys in the `recon` tree (for tests).
    pub fn kv_len(&self) -> usize {
        self.lock().kv.len()
    }

    /// A copy of the whole `recon` tree (for tests comparing runs).
    pub fn kv_snapshot(&self) -> BTreeMap<Vec<u8>, Vec<u8>> {
        self.lock().kv.clone()
    }
}

impl ReconBackend for MemoryBackend {
    fn last_seq(&self) -> Result<u64, StoreError> {
        Ok(self.lock().changes.len() as u64)
    }
    fn changes_since(
        &self,
        after: u64,
    ) -> Box<dyn Iterator<Item = Result<Change, StoreError>> + '_> {
        let v: Vec<_> = self
            .lock()
            .changes
            .iter()
            .filter(|c| c.seq > after)
            .cloned()
            .map(Ok)
            .collect();
        Box::new(v.into_iter())
    }
    fn scan_records(
        &self,
        kind: RecordKind,
        source: &str,
    ) -> Box<dyn Iterator<Item = Result<Stored, StoreError>> + '_> {
        let v: Vec<_> = self
            .lock()
            .records
            .iter()
            .filter(|((k, s, _), _)| *k == kind.as_str() && s == source)
            .map(|(_, v)| Ok(v.clone()))
            .collect();
        Box::new(v.into_iter())
    }
    fn get_record(
        &self,
        kind: RecordKind,
        source: &str,
        key: &str,
    ) -> Result<Option<Stored>, StoreError> {
        Ok(self
            .lock()
            .records
            .get(&(kind.as_str(), source.to_owned(), key.to_owned()))
            .cloned())
    }
    fn kv_get(&self, key: &[u8]) -> Result<Option<sled::IVec>, StoreError> {
        Ok(self.lock().kv.get(key).map(|v| v.as_slice().into()))
    }
    fn kv_scan(
        &self,
        prefix: &[u8],
    ) -> Box<dyn Iterator<Item = Result<KeyValue, StoreError>> + '_> {
        Box::new(scan_map(&self.lock().kv, prefix).into_iter().map(Ok))
    }
    fn kv_apply(&self, batch: Vec<KeyWrite>) -> Result<(), StoreError> {
        apply_map(&mut self.lock().kv, batch);
        Ok(())
    }
    fn flush(&self) -> Result<(), StoreError> {
        Ok(())
    }
    fn fold_entries(&self) -> usize {
        self.fold_entries
            .unwrap_or(super::incremental::FOLD_ENTRIES)
    }
}

/// The pairs of an in-memory tree under `prefix`, in key order.
fn scan_map(tree: &BTreeMap<Vec<u8>, Vec<u8>>, prefix: &[u8]) -> Vec<KeyValue> {
    tree.range(prefix.to_vec()..)
        .take_while(|(k, _)| k.starts_with(prefix))
        .map(|(k, v)| (k.clone(), v.clone()))
        .collect()
}

/// Applies a batch to an in-memory tree (`None` deletes).
fn apply_map(tree: &mut BTreeMap<Vec<u8>, Vec<u8>>, batch: Vec<KeyWrite>) {
    for (k, v) in batch {
        match v {
            Some(v) => {
                tree.insert(k, v);
            }
            None => {
                tree.remove(&k);
            }
        }
    }
}
